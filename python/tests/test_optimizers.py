"""rmx.optimizers versus mlx.optimizers: several training steps of a small
model (parameters and optimizer state after each step), schedules,
clip_grad_norm, MultiOptimizer, state save/load across libraries and the
constructor errors."""

import numpy as np
import pytest

import mlx.core as REF
import mlx.nn as mnn
import mlx.optimizers as mopt
import mlx.utils as mutils

from nnutil import both, copy_params, inputs, ropt, rnn, rx, same, to_rmx
from nnutil import no_mlx_compile  # noqa: F401

pytestmark = pytest.mark.usefixtures("no_mlx_compile")


def build(nn):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(4, 6)
            self.l2 = nn.Linear(6, 3)
            self.extra = [nn.Linear(3, 3, bias=False)]
            self.scale = nn.Linear(1, 1).bias  # 1-D parameter

        def __call__(self, x):
            return self.extra[0](nn.gelu(self.l2(nn.tanh(self.l1(x))))) * self.scale

    return Net()


def models():
    REF.random.seed(0)
    ml, rl = build(mnn), build(rnn())
    copy_params(ml, rl)
    return ml, rl


def train(opt_m, opt_r, steps=4, ml=None, rl=None, check_state=True, rtol=1e-5, atol=1e-6,
          compare_lr=True):
    if ml is None:
        ml, rl = models()
    x, y = inputs((8, 4), (8, 3), seed=3)
    (xm, ym), (xr, yr) = both([x, y])
    lm = mnn.value_and_grad(ml, lambda a, b: mnn.losses.mse_loss(ml(a), b))
    lr_ = rnn().value_and_grad(rl, lambda a, b: rnn().losses.mse_loss(rl(a), b))
    for s in range(steps):
        vm, gm = lm(xm, ym)
        vr, gr = lr_(xr, yr)
        same(vr, vm, rtol, atol, f"loss step {s}")
        same(gr, gm, rtol, atol, f"grads step {s}")
        opt_m.update(ml, gm)
        opt_r.update(rl, gr)
        REF.eval(ml.parameters(), opt_m.state)
        rx().eval(rl.parameters(), opt_r.state)
        same(rl.parameters(), ml.parameters(), rtol, atol, f"params step {s}")
        if check_state == "unordered":
            same_unordered(opt_r.state, opt_m.state, rtol, atol, f"state step {s}")
        elif check_state:
            same(opt_r.state, opt_m.state, rtol, atol, f"state step {s}")
        if compare_lr:
            same(opt_r.learning_rate, opt_m.learning_rate, 1e-6, 0, f"lr step {s}")
    return ml, rl


def same_unordered(got, exp, rtol=0, atol=0, where="state"):
    """Same leaves under the same paths, whatever the key order (loaded
    files come back in each library's own order)."""
    from rmx.utils import tree_flatten as rflat
    same(dict(sorted(rflat(got))), dict(sorted(mutils.tree_flatten(exp))), rtol, atol, where)


def both_opt(name, *args, **kwargs):
    return getattr(mopt, name)(*args, **kwargs), getattr(ropt(), name)(*args, **kwargs)


OPTS = [
    ("SGD", (0.1,), {}),
    ("SGD", (0.1,), {"momentum": 0.9}),
    ("SGD", (0.1,), {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", (0.05,), {"momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1}),
    ("RMSprop", (0.01,), {}),
    ("RMSprop", (0.01,), {"alpha": 0.9, "eps": 1e-5}),
    ("Adagrad", (0.1,), {}),
    ("Adagrad", (0.1,), {"eps": 1e-4}),
    ("AdaDelta", (1.0,), {}),
    ("AdaDelta", (0.5,), {"rho": 0.5, "eps": 1e-4}),
    ("Adam", (0.01,), {}),
    ("Adam", (0.01,), {"betas": [0.8, 0.9], "eps": 1e-6, "bias_correction": True}),
    ("AdamW", (0.01,), {}),
    ("AdamW", (0.01,), {"weight_decay": 0.1, "bias_correction": True}),
    ("Adamax", (0.01,), {}),
    ("Adamax", (0.02,), {"betas": [0.5, 0.7], "eps": 1e-3}),
    ("Lion", (0.01,), {}),
    ("Lion", (0.01,), {"betas": [0.5, 0.8], "weight_decay": 0.1}),
    ("Adafactor", (), {}),
    ("Adafactor", (0.01,), {"relative_step": False, "beta_1": 0.9, "weight_decay": 0.1}),
    ("Adafactor", (), {"warmup_init": True, "scale_parameter": False, "clip_threshold": 0.5}),
    ("Muon", (0.02,), {}),
    ("Muon", (0.02,), {"nesterov": False, "weight_decay": 0.0, "momentum": 0.8, "ns_steps": 3}),
]


@pytest.mark.parametrize("name,args,kw", OPTS, ids=[f"{o[0]}{o[2]}" for o in OPTS])
def test_optimizer_steps(name, args, kw):
    om, orr = both_opt(name, *args, **kw)
    has_lr = "learning_rate" in om.state
    tol = (1e-4, 1e-5) if name in ("Muon", "Adafactor") else (2e-5, 1e-6)
    train(om, orr, steps=4, rtol=tol[0], atol=tol[1], compare_lr=has_lr)
    assert list(orr.state.keys()) == list(om.state.keys())
    same(orr.step, om.step)


SCHEDULES = [
    ("exponential_decay", (0.1, 0.9)),
    ("step_decay", (0.1, 0.5, 2)),
    ("cosine_decay", (0.1, 5)),
    ("cosine_decay", (0.1, 5, 0.01)),
    ("linear_schedule", (0.0, 0.1, 3)),
    ("linear_schedule", (0.1, 0.01, 10)),
]


@pytest.mark.parametrize("name,args", SCHEDULES, ids=[f"{s[0]}{s[1]}" for s in SCHEDULES])
def test_schedules_values(name, args):
    sm = getattr(mopt, name)(*args)
    sr = getattr(ropt(), name)(*args)
    for step in range(12):
        same(sr(rx().array(step)), sm(REF.array(step)), 1e-6, 1e-9, f"step {step}")
    # python int steps too
    vm, vr = sm(4), sr(4)
    if isinstance(vm, REF.array):
        same(vr, vm, 1e-6, 1e-9)
    else:
        assert type(vr) is type(vm) and abs(vr - vm) <= 1e-12


def test_join_schedules():
    def mk(o):
        warm = o.linear_schedule(0.0, 0.1, 3)
        cos = o.cosine_decay(0.1, 6, 0.001)
        return o.join_schedules([warm, cos, o.exponential_decay(0.01, 0.5)], [3, 8])
    sm, sr = mk(mopt), mk(ropt())
    for step in range(14):
        same(sr(rx().array(step)), sm(REF.array(step)), 1e-6, 1e-9, f"step {step}")


@pytest.mark.parametrize("call", [
    lambda o: o.step_decay(0.1, 0.9, 0),
    lambda o: o.cosine_decay(0.1, 0),
    lambda o: o.linear_schedule(0.1, 0.2, 0),
    lambda o: o.join_schedules([], []),
    lambda o: o.join_schedules([o.exponential_decay(0.1, 0.9)] * 2, [1, 2]),
])
def test_schedule_errors(call):
    with pytest.raises(ValueError) as em:
        call(mopt)
    with pytest.raises(ValueError) as er:
        call(ropt())
    assert str(er.value) == str(em.value)


@pytest.mark.parametrize("name,kw", [("SGD", {"momentum": 0.9}), ("Adam", {}), ("AdamW", {}),
                                     ("Lion", {}), ("Muon", {})])
def test_scheduled_learning_rate(name, kw):
    om = getattr(mopt, name)(learning_rate=mopt.cosine_decay(0.05, 3), **kw)
    orr = getattr(ropt(), name)(learning_rate=ropt().cosine_decay(0.05, 3), **kw)
    same(orr.learning_rate, om.learning_rate)
    train(om, orr, steps=5, rtol=1e-4 if name == "Muon" else 2e-5, atol=1e-5)


def test_learning_rate_setter_and_step():
    om, orr = both_opt("SGD", 0.1)
    om.learning_rate = 0.5
    orr.learning_rate = 0.5
    same(orr.learning_rate, om.learning_rate)
    train(om, orr, steps=2)
    om.learning_rate = REF.array(0.01)
    orr.learning_rate = rx().array(0.01)
    train(om, orr, steps=2)
    same(orr.step, om.step)
    assert orr.step.item() == 4
    assert str(orr.step.dtype).endswith("uint64")


def test_init_explicit_and_apply_gradients():
    ml, rl = models()
    om, orr = both_opt("Adam", 0.01)
    om.init(ml.trainable_parameters())
    orr.init(rl.trainable_parameters())
    same(orr.state, om.state)
    gm = mutils.tree_map(lambda p: REF.ones_like(p) * 0.1, ml.trainable_parameters())
    gr = to_rmx(gm)
    pm = om.apply_gradients(gm, ml.trainable_parameters())
    pr = orr.apply_gradients(gr, rl.trainable_parameters())
    same(pr, pm)
    same(orr.state, om.state)


def test_frozen_parameters_are_not_updated():
    ml, rl = models()
    ml.l1.freeze(), rl.l1.freeze()
    w0 = np.array(rl.l1.weight)
    om, orr = both_opt("Adam", 0.05)
    train(om, orr, steps=3, ml=ml, rl=rl)
    assert np.array_equal(np.array(rl.l1.weight), w0)
    assert orr.state["l1"] == {} and om.state["l1"] == {}


def test_state_save_load_across_libraries(tmp_path):
    om, orr = both_opt("AdamW", 0.01, bias_correction=True)
    ml, rl = train(om, orr, steps=2)
    from rmx.utils import tree_flatten as rflat, tree_unflatten as runflat
    f = str(tmp_path / "opt_r.safetensors")
    rx().save_safetensors(f, dict(rflat(orr.state)))
    # MLX optimizer continues from rmx's state
    om2 = mopt.AdamW(0.01, bias_correction=True)
    om2.state = mutils.tree_unflatten(list(REF.load(f).items()))
    same_unordered(orr.state, om2.state)
    # and rmx continues from MLX's state
    f2 = str(tmp_path / "opt_m.safetensors")
    REF.save_safetensors(f2, dict(mutils.tree_flatten(om.state)))
    or2 = ropt().AdamW(0.01, bias_correction=True)
    or2.state = runflat(list(rx().load(f2).items()))
    same_unordered(or2.state, om.state)
    train(om2, or2, steps=2, ml=ml, rl=rl, check_state="unordered")


def test_multi_optimizer():
    def mk(o):
        return o.MultiOptimizer([o.Adam(0.01), o.SGD(0.1, momentum=0.9)],
                                [lambda path, g: path.startswith("l1") or "bias" in path])
    om, orr = mk(mopt), mk(ropt())
    train(om, orr, steps=3)
    om.learning_rate = 0.02
    orr.learning_rate = 0.02
    same(orr.learning_rate, om.learning_rate)
    same(orr.state, om.state)
    with pytest.raises(ValueError) as em:
        mopt.MultiOptimizer([mopt.SGD(0.1)], [lambda *a: True])
    with pytest.raises(ValueError) as er:
        ropt().MultiOptimizer([ropt().SGD(0.1)], [lambda *a: True])
    assert str(er.value) == str(em.value)
    with pytest.raises(ValueError) as em:
        om.state = {"states": []}
    with pytest.raises(ValueError) as er:
        orr.state = {"states": []}
    assert str(er.value) == str(em.value)
    # a single optimizer in MultiOptimizer
    train(mopt.MultiOptimizer([mopt.Lion(0.01)]), ropt().MultiOptimizer([ropt().Lion(0.01)]),
          steps=2)


@pytest.mark.parametrize("max_norm", [0.0, 0.05, 1.0, 100.0])
def test_clip_grad_norm(max_norm):
    g = {"a": inputs((3, 4))[0], "b": [inputs((5,), seed=1)[0], {"c": inputs((2, 2), seed=2)[0]}]}
    gm, gr = both(g)
    cm, nm = mopt.clip_grad_norm(gm, max_norm)
    cr, nr = ropt().clip_grad_norm(gr, max_norm)
    same(nr, nm)
    same(cr, cm)
    g16m = mutils.tree_map(lambda x: x.astype(REF.float16), gm)
    g16r = mutils.tree_map(lambda x: x.astype(rx().float16), gr)
    cm, nm = mopt.clip_grad_norm(g16m, max_norm)
    cr, nr = ropt().clip_grad_norm(g16r, max_norm)
    same(nr, nm, 1e-3, 1e-3)
    same(cr, cm, 2e-3, 2e-3)


def test_clip_grad_norm_negative():
    with pytest.raises(ValueError) as em:
        mopt.clip_grad_norm({"a": REF.ones(2)}, -1.0)
    with pytest.raises(ValueError) as er:
        ropt().clip_grad_norm({"a": rx().ones(2)}, -1.0)
    assert str(er.value) == str(em.value)


@pytest.mark.parametrize("name,args,kw", [
    ("SGD", (0.1,), {"nesterov": True}),
    ("SGD", (0.1,), {"nesterov": True, "momentum": 0.9, "dampening": 0.1}),
    ("RMSprop", (0.1,), {"alpha": -0.1}), ("RMSprop", (0.1,), {"eps": 0.0}),
    ("Adagrad", (0.1,), {"eps": 0.0}),
    ("AdaDelta", (0.1,), {"rho": -1.0}), ("AdaDelta", (0.1,), {"eps": -1.0}),
    ("Adam", (0.1,), {"betas": [1.0, 0.9]}), ("Adam", (0.1,), {"eps": -1e-8}),
    ("AdamW", (0.1,), {"betas": [0.9, -0.1]}),
    ("Lion", (0.1,), {"betas": [0.9, 1.5]}),
])
def test_optimizer_argument_errors(name, args, kw):
    with pytest.raises(ValueError) as em:
        getattr(mopt, name)(*args, **kw)
    with pytest.raises(ValueError) as er:
        getattr(ropt(), name)(*args, **kw)
    assert str(er.value) == str(em.value)


def test_float16_parameters():
    ml, rl = models()
    ml.set_dtype(REF.float16), rl.set_dtype(rx().float16)
    for name in ("SGD", "Adam", "Lion"):
        om, orr = both_opt(name, 0.01)
        train(om, orr, steps=2, ml=ml, rl=rl, rtol=5e-3, atol=5e-3)


def test_muon_conv_shaped_and_vector_parameters():
    p = {"w": inputs((4, 3, 2, 2))[0], "v": inputs((5,))[0], "m": inputs((6, 3))[0]}
    g = {k: v * 0.3 + 0.1 for k, v in p.items()}
    (pm, gm), (pr, gr) = both([p, g])
    om, orr = both_opt("Muon", 0.02)
    for _ in range(3):
        pm = om.apply_gradients(gm, pm)
        pr = orr.apply_gradients(gr, pr)
        same(pr, pm, 1e-4, 1e-5)
        same(orr.state, om.state, 1e-4, 1e-5)


def test_optimizers_public_names():
    imports = {"Callable", "List", "Module", "Optional", "Tuple", "Union", "math", "mx"}
    names = [n for n in dir(mopt) if not n.startswith(("_", "tree_")) and n not in imports]
    assert "Adam" in names and "cosine_decay" in names
    assert [n for n in names if not hasattr(ropt(), n)] == []


def _training_run(lib, nn, optim, compiled, steps=8):
    from functools import partial
    lib.random.seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.GELU(), nn.BatchNorm(16), nn.Linear(16, 3))
    opt = optim.AdamW(learning_rate=optim.join_schedules(
        [optim.linear_schedule(0.0, 1e-2, 3), optim.cosine_decay(1e-2, 10)], [3]))
    # explicit init: rmx's compile cannot capture state whose structure grows
    # during the first trace (MLX can; see the report)
    opt.init(model.trainable_parameters())
    state = [model.state, opt.state]

    def loss_fn(x, y):
        return nn.losses.cross_entropy(model(x), y, reduction="mean", label_smoothing=0.1)

    def step(x, y):
        loss, g = nn.value_and_grad(model, loss_fn)(x, y)
        g, norm = optim.clip_grad_norm(g, 0.5)
        opt.update(model, g)
        return loss, norm

    if compiled:
        # (the no_mlx_compile fixture makes MLX's side the uncompiled reference)
        step = partial(lib.compile, inputs=state, outputs=state)(step)
    g = np.random.default_rng(0)
    x = lib.array(g.normal(size=(32, 4)).astype(np.float32))
    y = lib.array(g.integers(0, 3, 32).astype(np.int32))
    out = []
    for _ in range(steps):
        loss, norm = step(x, y)
        lib.eval(state, loss, norm)
        out.append((loss, norm))
    return out, model.parameters(), opt.state


@pytest.mark.parametrize("compiled", [False, True])
def test_end_to_end_training(compiled):
    m_out, m_params, m_state = _training_run(REF, mnn, mopt, compiled)
    r_out, r_params, r_state = _training_run(rx(), rnn(), ropt(), compiled)
    same(r_out, m_out, 1e-4, 1e-5)
    same(r_params, m_params, 1e-4, 1e-5)
    same(r_state, m_state, 1e-4, 1e-5)
