"""rmx.nn.Module API versus mlx.nn.Module: parameter trees, freezing,
updates and their errors, weight files (both directions), modes, dtypes,
nn.value_and_grad and laziness."""

import gc

import numpy as np
import pytest

import mlx.core as REF
import mlx.nn as mnn
import mlx.utils as mutils

from nnutil import both, copy_params, inputs, rnn, rx, same, seeded, to_rmx
from nnutil import no_mlx_compile  # noqa: F401

pytestmark = pytest.mark.usefixtures("no_mlx_compile")


def build(nn):
    """A model with nested modules, a list and a dict of modules, a plain
    array, a private array and non-array attributes."""
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.norm = nn.BatchNorm(4)
            self.scale = (nn.Linear(1, 1).weight * 0 + 1.5)  # a bare parameter
            self._hidden = nn.Linear(1, 2).weight  # private: not a parameter
            self.factor = 3  # not a parameter

        def __call__(self, x):
            return self.norm(self.lin(x)) * self.scale * self.factor

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(3, 4)
            self.blocks = [Block(), Block()]
            self.heads = {"a": nn.Linear(4, 2, bias=False), "b": nn.Sequential(nn.ReLU(), nn.Linear(4, 1))}
            self.drop = nn.Dropout(0.5)

        def __call__(self, x):
            x = self.embed(x)
            for b in self.blocks:
                x = b(x)
            x = self.drop(x)
            return self.heads["a"](x).sum(-1) + self.heads["b"](x)[..., 0]

    return Model()


def models():
    ml, rl = build(mnn), build(rnn())
    copy_params(ml, rl)
    for bm, br in zip(ml.blocks, rl.blocks):
        br._hidden = to_rmx(bm._hidden)
    return ml, rl


def keys_shapes(tree, flatten):
    return [(k, tuple(v.shape)) for k, v in flatten(tree)]


def rflat(t):
    from rmx.utils import tree_flatten
    return tree_flatten(t)


def test_parameters_tree_matches():
    ml, rl = models()
    same(rl.parameters(), ml.parameters())
    assert keys_shapes(rl.parameters(), rflat) == keys_shapes(ml.parameters(), mutils.tree_flatten)
    assert "_hidden" not in rl.blocks[0].parameters()
    assert "factor" not in rl.blocks[0].parameters() and rl.blocks[0].factor == 3


def test_trainable_parameters_and_freeze():
    ml, rl = models()
    same(rl.trainable_parameters(), ml.trainable_parameters())  # BatchNorm stats frozen
    cases = [
        lambda m: m.freeze(),
        lambda m: m.freeze(keys="bias"),
        lambda m: m.freeze(keys=["weight", "scale"]),
        lambda m: m.freeze(recurse=False),
        lambda m: m.blocks[1].freeze(),
        lambda m: (m.freeze(), m.unfreeze(keys="bias")),
        lambda m: (m.freeze(), m.blocks[0].unfreeze()),
        lambda m: (m.freeze(), m.unfreeze(recurse=False)),
        lambda m: (m.freeze(keys="weight"), m.heads["b"].unfreeze()),
    ]
    for i, case in enumerate(cases):
        ml, rl = models()
        case(ml), case(rl)
        same(rl.trainable_parameters(), ml.trainable_parameters(), where=f"case {i}")
        same(rl.parameters(), ml.parameters(), where=f"case {i} params")


def test_freeze_strict_keys():
    ml, rl = models()
    for call in (lambda m: m.freeze(keys="nope", strict=True),
                 lambda m: m.unfreeze(keys=["bias", "nope"], strict=True),
                 lambda m: m.blocks[0].lin.freeze(keys="scale", strict=True, recurse=False)):
        with pytest.raises(KeyError) as em:
            call(ml)
        with pytest.raises(KeyError) as er:
            call(rl)
        assert str(er.value) == str(em.value)
    # strict with a key present somewhere in the model is fine (recursive validation)
    ml.freeze(keys="scale", strict=True)
    rl.freeze(keys="scale", strict=True)
    same(rl.trainable_parameters(), ml.trainable_parameters())
    # non-strict unknown keys are accepted
    ml.freeze(keys="nope"), rl.freeze(keys="nope")
    same(rl.trainable_parameters(), ml.trainable_parameters())


def test_children_leaf_modules_modules():
    ml, rl = models()

    def names(tree, flat):
        return [(k, type(v).__name__) for k, v in flat(tree, is_leaf=lambda x: isinstance(x, (mnn.Module, rnn().Module)))]

    from rmx.utils import tree_flatten as rtf
    assert names(rl.children(), rtf) == names(ml.children(), mutils.tree_flatten)
    assert names(rl.leaf_modules(), rtf) == names(ml.leaf_modules(), mutils.tree_flatten)
    assert [type(m).__name__ for m in rl.modules()] == [type(m).__name__ for m in ml.modules()]
    assert [(k, type(m).__name__) for k, m in rl.named_modules()] == \
        [(k, type(m).__name__) for k, m in ml.named_modules()]
    paths_m, paths_r = [], []
    ml.apply_to_modules(lambda k, m: paths_m.append(k))
    rl.apply_to_modules(lambda k, m: paths_r.append(k))
    assert paths_r == paths_m


def test_repr_matches():
    ml, rl = models()
    assert repr(rl).replace("rmx", "mlx") == repr(ml)
    assert repr(rnn().Linear(3, 2, bias=False)) == repr(mnn.Linear(3, 2, bias=False))


def test_update_partial_and_strict_errors():
    ml, rl = models()
    new = inputs((4, 4))[0]
    nm, nr = both({"blocks": [{"lin": {"weight": new}}]})
    ml.update(nm), rl.update(nr)
    same(rl.parameters(), ml.parameters())
    bad = [
        {"nope": np.zeros(1, np.float32)},
        {"embed": {"weight": 3.0}},
        {"blocks": [{}, {}, {"lin": {}}]},
        {"embed": 5},
        {"blocks": [{"lin": {"weight": [1, 2]}}]},
    ]
    for b in bad:
        bm, br = both(b)
        with pytest.raises(ValueError) as em:
            ml.update(bm)
        with pytest.raises(ValueError) as er:
            rl.update(br)
        assert str(er.value) == str(em.value), b
        # non-strict ignores what does not fit
        ml2, rl2 = models()
        try:
            ml2.update(bm, strict=False)
        except Exception as e:  # noqa: BLE001
            with pytest.raises(type(e)):
                rl2.update(br, strict=False)
        else:
            rl2.update(br, strict=False)


def test_apply_and_set_dtype():
    ml, rl = models()
    ml.apply(lambda x: x * 2), rl.apply(lambda x: x * 2)
    same(rl.parameters(), ml.parameters())
    ml.set_dtype(REF.float16), rl.set_dtype(rx().float16)
    same(rl.parameters(), ml.parameters())
    ml.set_dtype(REF.bfloat16, predicate=None), rl.set_dtype(rx().bfloat16, predicate=None)
    same(rl.parameters(), ml.parameters())
    ml, rl = models()
    f = lambda mod, k, v: k == "bias" or isinstance(v, (dict, list))  # noqa: E731
    ml.apply(lambda x: x + 1, f), rl.apply(lambda x: x + 1, f)
    same(rl.parameters(), ml.parameters())


def test_filter_and_map():
    ml, rl = models()
    fm = ml.filter_and_map(lambda m, k, v: isinstance(v, (dict, list, REF.array)) and k != "bias",
                           lambda x: x.sum())
    fr = rl.filter_and_map(lambda m, k, v: isinstance(v, (dict, list, rx().array)) and k != "bias",
                           lambda x: x.sum())
    same(fr, fm)


def test_update_modules():
    ml, rl = models()
    ml.update_modules({"heads": {"a": mnn.Identity()}, "blocks": [{}, {"lin": mnn.ReLU()}]})
    rl.update_modules({"heads": {"a": rnn().Identity()}, "blocks": [{}, {"lin": rnn().ReLU()}]})
    same(rl.parameters(), ml.parameters())
    assert repr(rl) == repr(ml)
    for bad_m, bad_r in [({"nope": mnn.ReLU()}, {"nope": rnn().ReLU()}),
                         ({"embed": 3}, {"embed": 3}),
                         ({"blocks": [{}, {}, mnn.ReLU()]}, {"blocks": [{}, {}, rnn().ReLU()]}),
                         (5, 5)]:
        with pytest.raises(ValueError) as em:
            ml.update_modules(bad_m)
        with pytest.raises(ValueError) as er:
            rl.update_modules(bad_r)
        assert str(er.value) == str(em.value)
        ml.update_modules(bad_m, strict=False) if not isinstance(bad_m, dict) or "embed" not in bad_m else None


def test_attribute_semantics():
    for nn, lib in ((mnn, REF), (rnn(), rx())):
        m = nn.Linear(2, 3)
        assert "weight" in m and m.weight is m["weight"]
        m.extra = lib.zeros((2,))
        assert "extra" in m.parameters()
        m.extra = 7  # a non-array replaces the parameter
        assert "extra" not in m and m.extra == 7
        del m.bias
        assert "bias" not in m.parameters()
        with pytest.raises(AttributeError):
            m.nope
        assert m.state is m
        assert m.training
        m.items_list = [nn.Linear(1, 1)]
        assert "items_list" in m.children()


def test_train_eval_flags_recursive():
    ml, rl = models()
    rl.eval()
    assert all(not m.training for m in rl.modules())
    rl.train()
    assert all(m.training for m in rl.modules())
    rl.blocks[0].train(False)
    assert [m.training for m in rl.modules()] == \
        [m.training for m in ml.blocks[0].train(False) and ml.modules()]


def test_forward_train_and_eval_with_dropout_and_batchnorm():
    ml, rl = models()
    (x,) = inputs((6, 3))
    xm, xr = both(x)
    ym, yr = seeded(11, lambda: ml(xm), lambda: rl(xr))
    same(yr, ym, 1e-5, 1e-5, "train")
    same(rl.parameters(), ml.parameters(), 1e-5, 1e-6, "running stats")
    ml.eval(), rl.eval()
    same(rl(xr), ml(xm), 1e-5, 1e-5, "eval")
    ye = np.array(rl(xr))
    assert np.array_equal(ye, np.array(rl(xr)))  # eval is deterministic


def test_nn_value_and_grad_respects_freezing():
    ml, rl = models()
    (x, y) = inputs((5, 3), (5,))
    (xm, ym), (xr, yr) = both([x, y])
    ml.blocks[0].freeze(), rl.blocks[0].freeze()
    ml.heads["a"].freeze(keys="weight"), rl.heads["a"].freeze(keys="weight")

    def loss_m(a, b):
        return mnn.losses.mse_loss(ml(a), b)

    def loss_r(a, b):
        return rnn().losses.mse_loss(rl(a), b)

    (vm, gm), (vr, gr) = seeded(1, lambda: mnn.value_and_grad(ml, loss_m)(xm, ym),
                                lambda: rnn().value_and_grad(rl, loss_r)(xr, yr))
    same(vr, vm, 1e-5, 1e-6)
    same(gr, gm, 1e-4, 1e-5)
    assert mutils.tree_flatten(gm["blocks"][0]) == []
    assert rutils_flat(gr["blocks"][0]) == [] and rutils_flat(gr["heads"]["a"]) == []


def rutils_flat(t):
    from rmx.utils import tree_flatten
    return tree_flatten(t)


SUFFIXES = [".npz", ".safetensors"]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_save_weights_rmx_to_mlx_and_back(tmp_path, suffix):
    ml, rl = models()
    rl.apply(lambda x: x + 0.25)
    f = str(tmp_path / ("r" + suffix))
    rl.save_weights(f)
    m2 = build(mnn)
    m2.load_weights(f)
    same(rl.parameters(), m2.parameters(), 0, 0)
    # mlx -> rmx
    f2 = str(tmp_path / ("m" + suffix))
    ml.save_weights(f2)
    r2 = build(rnn())
    r2.load_weights(f2)
    same(r2.parameters(), ml.parameters(), 0, 0)
    # rmx -> rmx
    r3 = build(rnn())
    r3.load_weights(f)
    same(r3.parameters(), m2.parameters(), 0, 0)


def test_save_weights_bad_extension(tmp_path):
    ml, rl = models()
    with pytest.raises(ValueError) as em:
        ml.save_weights(str(tmp_path / "w.pt"))
    with pytest.raises(ValueError) as er:
        rl.save_weights(str(tmp_path / "w.pt"))
    assert str(er.value).replace(str(tmp_path), "") == str(em.value).replace(str(tmp_path), "")


def test_load_weights_strict_errors(tmp_path):
    ml, rl = models()
    flat_m = mutils.tree_flatten(ml.parameters())
    from rmx.utils import tree_flatten
    flat_r = tree_flatten(rl.parameters())

    def variants(flat, lib):
        yield flat[1:]  # missing one
        yield flat + [("blocks.0.extra", lib.zeros((2,)))]  # extra one
        yield [(k, lib.zeros((7, 7)) if k == "embed.weight" else v) for k, v in flat]  # shape
        yield [(k, 1.0 if k == "embed.bias" else v) for k, v in flat]  # not an array
        yield flat[2:] + [("nope.weight", lib.zeros((1,)))]

    msgs = []
    for wm, wr in zip(variants(flat_m, REF), variants(flat_r, rx())):
        with pytest.raises(ValueError) as em:
            ml.load_weights(wm)
        with pytest.raises(ValueError) as er:
            rl.load_weights(wr)
        assert str(er.value) == str(em.value)
        msgs.append(str(er.value))
    # the shape message names the parameter path and both shapes
    assert "embed.weight" in msgs[2] and "(7, 7)" in msgs[2] and "(4, 3)" in msgs[2]
    assert "blocks.0.lin.bias" in msgs[0] or "Missing 1" in msgs[0]

    # non-strict: loads what exists, ignores shapes and extras
    ml2, rl2 = models()
    part_m = [(k, v * 0 + 2) for k, v in flat_m[:3]] + [("zzz", REF.ones((1,)))]
    part_r = [(k, v * 0 + 2) for k, v in flat_r[:3]] + [("zzz", rx().ones((1,)))]
    ml2.load_weights(part_m, strict=False), rl2.load_weights(part_r, strict=False)
    same(rl2.parameters(), ml2.parameters())


def test_load_weights_file_with_wrong_shapes(tmp_path):
    small_m = mnn.Linear(3, 2)
    f = str(tmp_path / "small.safetensors")
    small_m.save_weights(f)
    with pytest.raises(ValueError) as em:
        mnn.Linear(3, 4).load_weights(f)
    with pytest.raises(ValueError) as er:
        rnn().Linear(3, 4).load_weights(f)
    assert str(er.value) == str(em.value)
    assert "(4, 3)" in str(er.value) and "(2, 3)" in str(er.value) and "weight" in str(er.value)


def test_load_weights_missing_file(tmp_path):
    f = str(tmp_path / "none.npz")
    with pytest.raises(Exception) as em:
        mnn.Linear(1, 1).load_weights(f)
    with pytest.raises(Exception) as er:
        rnn().Linear(1, 1).load_weights(f)
    from diff import exc_kind
    assert exc_kind(er.value) is exc_kind(em.value)


@pytest.mark.parametrize("suffix,data", [(".safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json"),
                                         (".npz", b"PK\x03\x04garbage"),
                                         (".safetensors", b"")])
def test_load_weights_corrupt_file(tmp_path, suffix, data):
    from diff import exc_kind
    f = str(tmp_path / ("bad" + suffix))
    with open(f, "wb") as fh:
        fh.write(data)
    with pytest.raises(Exception) as em:
        mnn.Linear(2, 2).load_weights(f)
    with pytest.raises(Exception) as er:
        rnn().Linear(2, 2).load_weights(f)
    assert exc_kind(er.value) is exc_kind(em.value), (er.value, em.value)


def test_load_weights_dtype_is_taken_from_file(tmp_path):
    f = str(tmp_path / "h.safetensors")
    m16 = mnn.Linear(3, 2)
    m16.set_dtype(REF.float16)
    m16.save_weights(f)
    ml, rl = mnn.Linear(3, 2), rnn().Linear(3, 2)
    ml.load_weights(f), rl.load_weights(f)
    same(rl.parameters(), ml.parameters(), 0, 0)


def test_construction_is_lazy():
    m = rx()
    gc.collect()
    m.eval(m.zeros((1,)))
    before = m.get_active_memory()
    model = rnn().Sequential(*[rnn().Linear(1024, 1024) for _ in range(16)])  # 64 MiB of weights
    after_build = m.get_active_memory()
    assert after_build - before < 4 << 20, (before, after_build)
    m.eval(model.parameters())
    after_eval = m.get_active_memory()
    assert after_eval - before >= 48 << 20, (before, after_eval)
    del model


def test_average_gradients_single_process():
    g = {"a": inputs((2, 3))[0], "b": [inputs((4,))[0]]}
    gm, gr = both(g)
    same(rnn().average_gradients(gr), mnn.average_gradients(gm), 0, 0)


def test_nn_value_and_grad_aux_outputs_and_kwargs():
    ml, rl = models()
    ml.eval(), rl.eval()
    (x,) = inputs((4, 3))
    xm, xr = both(x)

    def fn(nn, model):
        def f(a, scale=1.0):
            y = model(a)
            return (y * y).sum() * scale, y
        return nn.value_and_grad(model, f)

    (vm, am), gm = fn(mnn, ml)(xm, scale=0.5)
    (vr, ar), gr = fn(rnn(), rl)(xr, scale=0.5)
    same([vr, ar], [vm, am], 1e-5, 1e-5)
    same(gr, gm, 1e-4, 1e-5)


def test_nn_checkpoint_with_non_array_arguments():
    """nn.checkpoint passes None/number arguments through (MLX's mx.checkpoint does)."""
    ml, rl = models()
    ml.eval(), rl.eval()
    (x,) = inputs((4, 3))
    xm, xr = both(x)

    def fn(nn, lib, model):
        def call(a, mask, scale, extra=None):
            y = model(a) * scale
            return y if mask is None else y * mask

        ck = nn.utils.checkpoint(model, call)
        return nn.value_and_grad(model, lambda a: lib.sum(ck(a, None, 0.5, extra="k") ** 2))

    vm, gm = fn(mnn, REF, ml)(xm)
    vr, gr = fn(rnn(), rx(), rl)(xr)
    same(vr, vm, 1e-5, 1e-5)
    same(gr, gm, 1e-4, 1e-5)


def test_load_weights_non_strict_into_a_later_list_slot():
    """Weights for ``blocks.1`` only: ``tree_unflatten`` keeps ``blocks[0]`` as an empty
    slot, so ``blocks[1]`` (not ``blocks[0]``) is updated, as in MLX."""
    ml, rl = models()
    names = [k for k, _ in mutils.tree_flatten(ml.parameters()) if k.startswith("blocks.1.")]
    ml.load_weights([(k, REF.full((4, 4) if k.endswith("lin.weight") else (4,), 3.0))
                     for k in names if k.endswith("lin.weight") or k.endswith("lin.bias")],
                    strict=False)
    rl.load_weights([(k, rx().full((4, 4) if k.endswith("lin.weight") else (4,), 3.0))
                     for k in names if k.endswith("lin.weight") or k.endswith("lin.bias")],
                    strict=False)
    same(rl.parameters(), ml.parameters())
    assert float(REF.sum(ml.blocks[0].lin.bias == 3.0)) < 4
