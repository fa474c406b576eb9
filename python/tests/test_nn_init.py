"""rmx.nn.init versus mlx.nn.init.  Both libraries draw identical random
bits from the same seed, so the initializers are compared value for value."""

import numpy as np
import pytest

import mlx.core as REF
import mlx.nn as mnn

from nnutil import rnn, rx, same, seeded

INITS = [
    ("constant", (0.5,), {}, (3, 4)),
    ("constant", (2.0, ), {"dtype": "float16"}, (5,)),
    ("normal", (), {}, (4, 5)),
    ("normal", (1.0, 0.3), {}, (2, 3, 4)),
    ("uniform", (), {}, (4, 5)),
    ("uniform", (-2.0, 3.0), {"dtype": "bfloat16"}, (6,)),
    ("identity", (), {}, (4, 4)),
    ("identity", (), {"dtype": "int32"}, (3, 3)),
    ("glorot_normal", (), {}, (6, 4)),
    ("glorot_uniform", (), {}, (6, 3, 3, 2)),
    ("he_normal", (), {}, (5, 7)),
    ("he_uniform", (), {}, (8, 2, 3)),
    ("sparse", (0.5,), {}, (4, 6)),
    ("sparse", (0.2, 1.0, 0.1), {}, (5, 3)),
]


def _mk(lib, nn, name, args, kw):
    kw = {k: (getattr(lib, v) if k == "dtype" else v) for k, v in kw.items()}
    return getattr(nn.init, name)(*args, **kw)


@pytest.mark.parametrize("name,args,kw,shape", INITS, ids=[f"{i[0]}{i[1]}{i[2]}" for i in INITS])
def test_initializers(name, args, kw, shape):
    fm = _mk(REF, mnn, name, args, kw)
    fr = _mk(rx(), rnn(), name, args, kw)
    a, b = seeded(42, lambda: fm(REF.zeros(shape)), lambda: fr(rx().zeros(shape)))
    same(b, a, 1e-6, 1e-7)


@pytest.mark.parametrize("name", ["glorot_normal", "glorot_uniform"])
def test_glorot_gain(name):
    a, b = seeded(1, lambda: getattr(mnn.init, name)()(REF.zeros((4, 6)), gain=2.5),
                  lambda: getattr(rnn().init, name)()(rx().zeros((4, 6)), gain=2.5))
    same(b, a, 1e-6, 1e-7)


@pytest.mark.parametrize("name", ["he_normal", "he_uniform"])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_he_modes(name, mode):
    a, b = seeded(2, lambda: getattr(mnn.init, name)()(REF.zeros((3, 5, 2)), mode=mode, gain=0.7),
                  lambda: getattr(rnn().init, name)()(rx().zeros((3, 5, 2)), mode=mode, gain=0.7))
    same(b, a, 1e-6, 1e-7)


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (6, 2)])
def test_orthogonal(shape):
    qm, qr = seeded(3, lambda: mnn.init.orthogonal(gain=1.5)(REF.zeros(shape)),
                    lambda: rnn().init.orthogonal(gain=1.5)(rx().zeros(shape)))
    same(qr, qm, 1e-4, 1e-5)
    q = np.array(qr) / 1.5
    small = min(shape)
    gram = q.T @ q if shape[0] >= shape[1] else q @ q.T
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)


@pytest.mark.parametrize("call", [
    lambda nn, lib: nn.init.identity()(lib.zeros((2, 3))),
    lambda nn, lib: nn.init.glorot_normal()(lib.zeros((3,))),
    lambda nn, lib: nn.init.he_uniform()(lib.zeros((3, 3)), mode="fan"),
    lambda nn, lib: nn.init.sparse(0.5)(lib.zeros((3, 3, 3))),
    lambda nn, lib: nn.init.orthogonal()(lib.zeros((3,))),
])
def test_init_errors(call):
    with pytest.raises(ValueError) as em:
        call(mnn, REF)
    with pytest.raises(ValueError) as er:
        call(rnn(), rx())
    assert str(er.value) == str(em.value)


def test_apply_initializer_to_model():
    ml, rl = seeded(5, lambda: mnn.Sequential(mnn.Linear(3, 4), mnn.Linear(4, 2)),
                    lambda: rnn().Sequential(rnn().Linear(3, 4), rnn().Linear(4, 2)))
    same(rl.parameters(), ml.parameters(), 0, 0)  # default init is reproduced too
    with pytest.raises(ValueError):
        ml.apply(mnn.init.glorot_uniform())  # biases are 1-D
    with pytest.raises(ValueError):
        rl.apply(rnn().init.glorot_uniform())
    wm = [l.weight for l in ml.layers]
    def keep(m, k, v):
        return k == "weight" or k == "layers" or isinstance(v, dict)
    seeded(6, lambda: ml.apply(mnn.init.glorot_uniform(), keep).parameters(),
           lambda: rl.apply(rnn().init.glorot_uniform(), keep).parameters())
    same(rl.parameters(), ml.parameters(), 1e-6, 1e-7)
    assert not np.array_equal(np.array(ml.layers[0].weight), np.array(wm[0]))


@pytest.mark.parametrize("name,args", [("Linear", (5, 3)), ("Bilinear", (2, 3, 4)),
                                       ("Embedding", (7, 4)), ("RNN", (3, 4)), ("GRU", (3, 4)),
                                       ("LSTM", (3, 4)), ("PReLU", (3,)),
                                       ("MultiHeadAttention", (8, 2)), ("Conv1d", (3, 4, 3)),
                                       ("Conv2d", (4, 6, 3, 1, 0, 1, 2)), ("Conv3d", (2, 3, 2)),
                                       ("ConvTranspose2d", (3, 2, (2, 3))),
                                       ("LayerNorm", (4,)), ("RMSNorm", (4,)),
                                       ("BatchNorm", (4,)), ("GroupNorm", (2, 4))])
def test_default_layer_initialization_matches_mlx(name, args):
    ml, rl = seeded(9, lambda: getattr(mnn, name)(*args), lambda: getattr(rnn(), name)(*args))
    same(rl.parameters(), ml.parameters(), 0, 0)
