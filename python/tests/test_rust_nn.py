"""Differential test of the Rust nn layer (crates/rmx-nn) against real MLX.

The Rust example `parity` (built by scripts/setup.sh with
`cargo build --release -p rmx-nn --examples`) loads weights written here by
`mlx.nn.Module.save_weights`, runs Embedding/LayerNorm/Linear/gelu/RMSNorm/Linear and a
label-smoothed cross entropy, its gradients and three steps each of Adam, AdamW and SGD
(with a cosine schedule), and writes everything to an npz compared here with the same
computation in `mlx.nn` / `mlx.optimizers`."""

import os
import subprocess

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_unflatten

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RTOL, ATOL = 1e-5, 1e-6


def parity_binary():
    override = os.environ.get("RMX_PARITY_BIN")
    if override:
        return override
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "examples", "parity")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 8)
        self.ln = nn.LayerNorm(8)
        self.lin = nn.Linear(8, 16)
        self.rms = nn.RMSNorm(16)
        self.head = nn.Linear(16, 5)

    def trace(self, tokens):
        e = self.emb(tokens)
        n = self.ln(e)
        lin = self.lin(n)
        g = nn.gelu(lin)
        r = self.rms(g)
        o = self.head(r)
        return {"fwd.emb": e, "fwd.ln": n, "fwd.lin": lin, "fwd.gelu": g,
                "fwd.rms": r, "fwd.logits": o}

    def __call__(self, tokens):
        return self.trace(tokens)["fwd.logits"]


def loss_fn(model, tokens, targets):
    return nn.losses.cross_entropy(model(tokens), targets, label_smoothing=0.1,
                                   reduction="mean")


def make_model(weights=None):
    model = Net()
    if weights is not None:
        model.load_weights(weights, strict=True)
    return model


def train(opt, weights, tokens, targets):
    model = make_model(weights)
    vg = nn.value_and_grad(model, loss_fn)
    losses = []
    for _ in range(3):
        loss, grads = vg(model, tokens, targets)
        opt.update(model, grads)
        mx.eval(model.parameters(), opt.state)
        losses.append(loss)
    return model, mx.stack(losses)


def close(name, got, want):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=RTOL, atol=ATOL,
                               err_msg=name)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    binary = parity_binary()
    if not os.path.exists(binary):
        pytest.fail(f"{binary} is missing: run `cargo build --release -p rmx-nn --examples` "
                    "(scripts/setup.sh does)")
    d = tmp_path_factory.mktemp("rust_nn")
    mx.random.seed(42)
    model = Net()
    # non-trivial norm parameters, so their gradients and updates are exercised
    model.update(tree_unflatten([
        ("ln.weight", 1.0 + 0.3 * mx.random.normal((8,))),
        ("ln.bias", 0.2 * mx.random.normal((8,))),
        ("rms.weight", 1.0 + 0.3 * mx.random.normal((16,))),
    ]))
    weights = str(d / "weights.npz")
    model.save_weights(weights)
    rng = np.random.default_rng(7)
    tokens = rng.integers(0, 11, size=12).astype(np.int32)
    targets = rng.integers(0, 5, size=12).astype(np.int32)
    np.savez(d / "inputs.npz", tokens=tokens, targets=targets)
    out, trained = d / "out.npz", d / "trained.safetensors"
    proc = subprocess.run([binary, str(d / "inputs.npz"), weights, str(out), str(trained)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = dict(np.load(out))
    return got, weights, mx.array(tokens), mx.array(targets), str(trained)


def test_forward_layers(run):
    got, weights, tokens, _, _ = run
    want = make_model(weights).trace(tokens)
    for k, v in want.items():
        close(k, got[k], v)


def test_loss_and_gradients(run):
    got, weights, tokens, targets, _ = run
    model = make_model(weights)
    loss, grads = nn.value_and_grad(model, loss_fn)(model, tokens, targets)
    close("loss", got["loss"], loss)
    flat = dict(tree_flatten(grads))
    assert sorted(k[len("grad."):] for k in got if k.startswith("grad.")) == sorted(flat)
    for k, v in flat.items():
        close(f"grad.{k}", got[f"grad.{k}"], v)


@pytest.mark.parametrize("name,make", [
    ("adam", lambda: optim.Adam(0.01, bias_correction=True)),
    ("adamw", lambda: optim.AdamW(0.02, weight_decay=0.05)),
    ("sgd", lambda: optim.SGD(optim.cosine_decay(0.1, 3, 0.01), momentum=0.9,
                              weight_decay=0.01, nesterov=True)),
])
def test_three_optimizer_steps(run, name, make):
    got, weights, tokens, targets, _ = run
    model, losses = train(make(), weights, tokens, targets)
    close(f"{name}.losses", got[f"{name}.losses"], losses)
    for k, v in tree_flatten(model.parameters()):
        close(f"{name}.{k}", got[f"{name}.{k}"], v)


def test_rust_weights_load_in_mlx(run):
    got, _, _, _, trained = run
    model = make_model(trained)  # strict: same names and shapes as mlx.nn
    for k, v in tree_flatten(model.parameters()):
        close(k, v, got[f"adamw.{k}"])
