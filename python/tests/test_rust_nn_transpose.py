"""Differential test of the Rust transposed convolutions and Muon (crates/rmx-nn) against
real MLX.

The Rust example `parity_transpose` (`cargo build --release -p rmx-nn --examples`) loads
weights written here by `mlx.nn.Module.save_weights` into a net of
ConvTranspose1d/2d/3d layers (stride, padding, dilation, output padding; groups through
`mx.conv_transpose*d`, since MLX's layers have no `groups`) and two Linear heads, and
writes its outputs, loss gradients, Muon steps and fresh initialisations to an npz that
is compared here with the same computation in `mlx.nn` / `mlx.optimizers`."""

import os
import subprocess

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_unflatten

from test_rust_nn import close, parity_binary


class GroupedConvTranspose(nn.Module):
    """A transposed convolution with groups, as the Rust layers take them: weight
    `(out, *kernel, in / groups)`, `mx.conv_transpose{1,2}d(..., groups)` plus the bias."""

    def __init__(self, fn, cin, cout, kernel, groups, **kw):
        super().__init__()
        self.weight = 0.3 * mx.random.normal((cout, *kernel, cin // groups))
        self.bias = mx.zeros((cout,))
        self.fn, self.groups, self.kw = fn, groups, kw

    def __call__(self, x):
        return self.fn(x, self.weight, groups=self.groups, **self.kw) + self.bias


class TransposeNet(nn.Module):
    """The Rust example's TransposeNet, layer for layer."""

    def __init__(self):
        super().__init__()
        self.t1a = nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1)
        self.t1b = nn.ConvTranspose1d(6, 4, 2, dilation=2, bias=False)
        self.t1g = GroupedConvTranspose(mx.conv_transpose1d, 6, 6, (5,), 3,
                                        stride=3, padding=2, dilation=2)
        self.t2a = nn.ConvTranspose2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 0),
                                      dilation=(1, 2), output_padding=(1, 0))
        self.t2b = nn.ConvTranspose2d(5, 4, 3, stride=2, padding=1)
        self.t2g = GroupedConvTranspose(mx.conv_transpose2d, 3, 6, (2, 2), 3,
                                        stride=2, output_padding=1)
        self.t3a = nn.ConvTranspose3d(2, 3, 2, stride=2, padding=1, output_padding=1)
        self.t3b = nn.ConvTranspose3d(3, 2, (2, 1, 3), stride=(1, 2, 1), padding=(0, 0, 1),
                                      dilation=(2, 1, 1), bias=False)
        self.tall = nn.Linear(4, 10)
        self.wide = nn.Linear(4, 3)

    def trace(self, x1, x2, x3):
        t1a = self.t1a(x1)
        t1b = self.t1b(t1a)
        t2a = self.t2a(x2)
        t2b = self.t2b(nn.relu(t2a))
        t3a = self.t3a(x3)
        return {"fwd.t1a": t1a, "fwd.t1b": t1b, "fwd.t1g": self.t1g(nn.relu(t1a)),
                "fwd.t2a": t2a, "fwd.t2b": t2b, "fwd.t2g": self.t2g(x2),
                "fwd.t3a": t3a, "fwd.t3b": self.t3b(t3a),
                "fwd.tall": self.tall(t1b.mean(axis=1)),
                "fwd.wide": self.wide(t2b.mean(axis=(1, 2)))}


def loss_fn(model, x1, x2, x3):
    outs = model.trace(x1, x2, x3)
    return sum(mx.mean(mx.square(y)) for k, y in outs.items()
               if k not in ("fwd.t1a", "fwd.t2a", "fwd.t3a"))


def load_net(weights):
    model = TransposeNet()
    model.load_weights(weights, strict=True)
    return model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    binary = os.path.join(os.path.dirname(parity_binary()), "parity_transpose")
    if not os.path.exists(binary):
        pytest.fail(f"{binary} is missing: run `cargo build --release -p rmx-nn --examples`")
    d = tmp_path_factory.mktemp("rust_nn_transpose")
    mx.random.seed(3)
    model = TransposeNet()
    # non-zero biases, so their forward effect and updates are exercised
    model.update(tree_unflatten([(k, 0.1 * mx.random.normal(v.shape))
                                 for k, v in tree_flatten(model.parameters())
                                 if k.endswith("bias")]))
    weights = str(d / "weights.npz")
    model.save_weights(weights)
    rng = np.random.default_rng(13)
    inputs = {
        "x1": rng.standard_normal((2, 7, 4)).astype(np.float32),
        "x2": rng.standard_normal((2, 5, 4, 3)).astype(np.float32),
        "x3": rng.standard_normal((2, 3, 3, 2, 2)).astype(np.float32),
        "seed": np.array(int(rng.integers(0, 2**31)), dtype=np.int64),
    }
    # Muon's gradients: given, so each side orthogonalizes the same numbers; scales vary
    # per step and per parameter
    for i, scale in enumerate((1.0, 0.1, 3.0, 0.5)):
        for k, v in tree_flatten(model.parameters()):
            g = rng.standard_normal(v.shape) * scale * rng.choice([1e-3, 1.0])
            inputs[f"g{i}.{k}"] = g.astype(np.float32)
    np.savez(d / "inputs.npz", **inputs)
    out = d / "out.npz"
    proc = subprocess.run([binary, str(d / "inputs.npz"), weights, str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    x = [mx.array(inputs[k]) for k in ("x1", "x2", "x3")]
    grads = [tree_unflatten([(k[3:], mx.array(v)) for k, v in inputs.items()
                             if k.startswith(f"g{i}.")]) for i in range(4)]
    return dict(np.load(out)), weights, x, int(inputs["seed"]), grads


def test_conv_transpose_forward(run):
    got, weights, x, _, _ = run
    want = load_net(weights).trace(*x)
    assert sorted(k for k in got if k.startswith("fwd.")) == sorted(want)
    for k, v in want.items():
        assert got[k].shape == v.shape, k
        close(k, got[k], v)


def test_conv_transpose_loss_and_gradients(run):
    got, weights, x, _, _ = run
    model = load_net(weights)
    loss, grads = nn.value_and_grad(model, loss_fn)(model, *x)
    close("loss", got["loss"], loss)
    flat = dict(tree_flatten(grads))
    assert sorted(k[len("grad."):] for k in got if k.startswith("grad.")) == sorted(flat)
    assert "t1b.bias" not in flat and "t3b.bias" not in flat  # bias=False: no parameter
    for k, v in flat.items():
        assert got[f"grad.{k}"].shape == v.shape, k
        close(f"grad.{k}", got[f"grad.{k}"], v)


def test_conv_transpose_init_matches_mlx_draws(run):
    """Same seed, same layers: MLX's uniform(+-sqrt(1/(in * prod(kernel)))) weights and
    zero biases, draw for draw."""
    got, _, _, seed, _ = run
    mx.random.seed(seed)
    layers = {"t1": nn.ConvTranspose1d(6, 4, 5), "t2": nn.ConvTranspose2d(3, 4, (3, 2)),
              "t3": nn.ConvTranspose3d(2, 3, (2, 3, 1))}
    for name, layer in layers.items():
        for k, v in tree_flatten(layer.parameters()):
            key = f"init.{name}.{k}"
            assert got[key].shape == v.shape, key
            close(key, got[key], v)


def check_params_and_state(got, name, model, opt, start):
    for k, v in tree_flatten(model.parameters()):
        close(f"{name}.{k}", got[f"{name}.{k}"], v)
        # the steps changed every parameter (so a no-op optimizer cannot pass)
        assert not np.array_equal(np.asarray(v), np.asarray(start[k])), k
        node = opt.state
        for part in k.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        want = list(node.values())  # ["v"], the momentum
        have = sorted(s for s in got if s.startswith(f"{name}.state.{k}."))
        assert len(have) == len(want) == 1, (k, list(node))
        assert got[have[0]].shape == want[0].shape, have[0]
        close(have[0], got[have[0]], want[0])


MUON = {
    "muon": lambda: optim.Muon(0.02),
    "muon_plain": lambda: optim.Muon(optim.exponential_decay(0.05, 0.8), momentum=0.9,
                                     weight_decay=0.0, nesterov=False, ns_steps=3),
}


@pytest.mark.parametrize("name", sorted(MUON))
def test_four_muon_steps_with_given_gradients(run, name):
    """Muon on parameters of rank 1 (plain momentum step), 2 (tall and wide Linear
    weights: Newton-Schulz on the matrix or its transpose) and 3-5 (conv weights,
    flattened to (out, -1))."""
    got, weights, _, _, grads = run
    model = load_net(weights)
    start = dict(tree_flatten(model.parameters()))
    opt = MUON[name]()
    for g in grads:
        opt.update(model, g)
        mx.eval(model.parameters(), opt.state)
    check_params_and_state(got, name, model, opt, start)


def test_muon_training_steps(run):
    got, weights, x, _, _ = run
    model = load_net(weights)
    start = dict(tree_flatten(model.parameters()))
    opt = optim.Muon(0.05, momentum=0.9)
    vg = nn.value_and_grad(model, loss_fn)
    losses = []
    for _ in range(3):
        loss, g = vg(model, *x)
        opt.update(model, g)
        mx.eval(model.parameters(), opt.state)
        losses.append(loss)
    close("muon_train.losses", got["muon_train.losses"], mx.stack(losses))
    assert losses[-1].item() < losses[0].item()
    check_params_and_state(got, "muon_train", model, opt, start)


class MatrixRatioMuon(optim.Muon):
    """Muon with the rate scaled by the orthogonalized matrix's own shape: rank > 2
    parameters are stepped as their (out, -1) flattening."""

    def apply_single(self, gradient, parameter, state):
        if parameter.ndim <= 2:
            return super().apply_single(gradient, parameter, state)
        shape, flat = parameter.shape, (parameter.shape[0], -1)
        st = {"v": state["v"].reshape(flat)}
        new = super().apply_single(gradient.reshape(flat), parameter.reshape(flat), st)
        state["v"] = st["v"].reshape(shape)
        return new.reshape(shape)


@pytest.mark.mlx_quirk
def test_muon_scales_by_the_unflattened_last_axes(run):
    """MLX scales a rank > 2 update's rate by sqrt(max(1, shape[-2] / shape[-1])) of the
    unflattened update: sqrt(2.5) for t1g's weight (6, 5, 2) and sqrt(2) for t2g's
    (6, 2, 2, 1), although the orthogonalized matrices (6, 10) and (6, 4) would give 1 and
    sqrt(1.5). The Rust steps follow MLX, not the matrix's ratio; where the two rules
    agree (the other weights), so do the results."""
    got, weights, _, _, grads = run
    model = load_net(weights)
    opt = MatrixRatioMuon(0.02)
    for g in grads:
        opt.update(model, g)
        mx.eval(model.parameters(), opt.state)
    quirky = {"t1g.weight", "t2g.weight"}
    for k, v in tree_flatten(model.parameters()):
        v, rust = np.asarray(v), got[f"muon.{k}"]
        if k in quirky:
            assert not np.allclose(rust, v, rtol=1e-3, atol=1e-4), k
        else:
            close(f"matrix-ratio {k}", rust, v)
