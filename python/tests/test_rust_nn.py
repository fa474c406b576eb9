"""Differential test of the Rust nn layer (crates/rmx-nn) against real MLX.

The Rust example `parity` (built by scripts/setup.sh with
`cargo build --release -p rmx-nn --examples`) loads weights written here by
`mlx.nn.Module.save_weights`, runs Embedding/LayerNorm/Linear/gelu/RMSNorm/Linear and a
label-smoothed cross entropy, its gradients and three steps each of Adam, AdamW and SGD
(with a cosine schedule), and writes everything to an npz compared here with the same
computation in `mlx.nn` / `mlx.optimizers`."""

import os
import re
import subprocess
import sys

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


# --- convolutions, pooling and the adaptive optimizers (example `parity_conv`) ---

class ConvNet(nn.Module):
    """The Rust example's ConvNet, layer for layer."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2)
        self.c2a = nn.Conv2d(3, 8, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))
        self.c2b = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
        self.c3 = nn.Conv3d(2, 4, 2, padding=1)
        self.head = nn.Linear(18 + 32 + 32 + 48 + 108, 5)

    def trace(self, x1, x2, x3):
        flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731
        c1 = self.c1(x1)
        p1 = nn.MaxPool1d(2, stride=1, padding=1)(nn.relu(c1))
        q1 = nn.AvgPool1d(2)(p1)
        c2a = self.c2a(x2)
        p2a = nn.MaxPool2d(2)(nn.relu(c2a))
        c2b = self.c2b(c2a)
        p2b = nn.AvgPool2d(3, stride=2, padding=1)(c2b)
        c3 = self.c3(x3)
        p3 = nn.MaxPool3d(2, stride=(2, 2, 1))(c3)
        q3 = nn.AvgPool3d(2, padding=1)(c3)
        feats = mx.concatenate([flat(q1), flat(p2a), flat(p2b), flat(p3), flat(q3)], axis=1)
        return {"fwd.c1": c1, "fwd.p1": p1, "fwd.q1": q1, "fwd.c2a": c2a, "fwd.p2a": p2a,
                "fwd.c2b": c2b, "fwd.p2b": p2b, "fwd.c3": c3, "fwd.p3": p3, "fwd.q3": q3,
                "fwd.logits": self.head(feats)}

    def __call__(self, x1, x2, x3):
        return self.trace(x1, x2, x3)["fwd.logits"]


def conv_loss(model, x1, x2, x3, targets):
    return nn.losses.cross_entropy(model(x1, x2, x3), targets, reduction="mean")


def conv_binary():
    return os.path.join(os.path.dirname(parity_binary()), "parity_conv")


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory):
    binary = conv_binary()
    if not os.path.exists(binary):
        pytest.fail(f"{binary} is missing: run `cargo build --release -p rmx-nn --examples`")
    d = tmp_path_factory.mktemp("rust_nn_conv")
    mx.random.seed(5)
    model = ConvNet()
    # non-zero biases, so their forward effect and updates are exercised
    model.update(tree_unflatten([(k, 0.1 * mx.random.normal(v.shape))
                                 for k, v in tree_flatten(model.parameters())
                                 if k.endswith("bias")]))
    weights = str(d / "weights.npz")
    model.save_weights(weights)
    rng = np.random.default_rng(11)
    inputs = {
        "x1": rng.standard_normal((3, 9, 4)).astype(np.float32),
        "x2": rng.standard_normal((3, 7, 6, 3)).astype(np.float32),
        "x3": rng.standard_normal((3, 4, 4, 3, 2)).astype(np.float32),
        "targets": rng.integers(0, 5, size=3).astype(np.int32),
        "seed": np.array(int(rng.integers(0, 2**31)), dtype=np.int64),
    }
    # the optimizers' gradients: given, so each side applies its rule to the same numbers
    # (an Adagrad or Lion first step is nearly sign(g): rounding noise in a near-zero
    # computed gradient would flip it); scales vary per step and per parameter
    for i, scale in enumerate((1.0, 0.1, 3.0)):
        for k, v in tree_flatten(model.parameters()):
            g = rng.standard_normal(v.shape) * scale * rng.choice([1e-3, 1.0])
            inputs[f"g{i}.{k}"] = g.astype(np.float32)
    np.savez(d / "inputs.npz", **inputs)
    out = d / "out.npz"
    proc = subprocess.run([binary, str(d / "inputs.npz"), weights, str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    batch = [mx.array(inputs[k]) for k in ("x1", "x2", "x3", "targets")]
    grads = [tree_unflatten([(k[3:], mx.array(v)) for k, v in inputs.items()
                             if k.startswith(f"g{i}.")]) for i in range(3)]
    return dict(np.load(out)), weights, batch, int(inputs["seed"]), grads


def load_conv_net(weights):
    model = ConvNet()
    model.load_weights(weights, strict=True)
    return model


def test_conv_and_pool_forward(conv_run):
    got, weights, batch, _, _ = conv_run
    for k, v in load_conv_net(weights).trace(*batch[:3]).items():
        assert got[k].shape == v.shape, k
        close(k, got[k], v)


def test_conv_loss_and_gradients(conv_run):
    got, weights, batch, _, _ = conv_run
    model = load_conv_net(weights)
    loss, grads = nn.value_and_grad(model, conv_loss)(model, *batch)
    close("loss", got["loss"], loss)
    flat = dict(tree_flatten(grads))
    assert sorted(k[len("grad."):] for k in got if k.startswith("grad.")) == sorted(flat)
    assert "c2b.bias" not in flat  # bias=False leaves no parameter
    for k, v in flat.items():
        close(f"grad.{k}", got[f"grad.{k}"], v)


def test_conv_init_matches_mlx_draws(conv_run):
    """Same seed, same layers: MLX's uniform(+-sqrt(1/fan_in)) weights and zero biases,
    draw for draw."""
    got, _, _, seed, _ = conv_run
    mx.random.seed(seed)
    layers = {"conv1d": nn.Conv1d(6, 4, 5), "conv2d": nn.Conv2d(6, 4, (3, 2), groups=3),
              "conv3d": nn.Conv3d(2, 3, (2, 3, 1))}
    for name, layer in layers.items():
        for k, v in tree_flatten(layer.parameters()):
            key = f"init.{name}.{k}"
            assert got[key].shape == v.shape, key
            close(key, got[key], v)


CONV_OPTIMIZERS = {
    "rmsprop": lambda: optim.RMSprop(optim.exponential_decay(0.01, 0.9), alpha=0.9),
    "adagrad": lambda: optim.Adagrad(0.05),
    "adadelta": lambda: optim.AdaDelta(0.5, rho=0.95),
    "adamax": lambda: optim.Adamax(0.01),
    "lion": lambda: optim.Lion(0.001, weight_decay=0.1),
    "adafactor": lambda: optim.Adafactor(),
    "adafactor_fixed": lambda: optim.Adafactor(learning_rate=0.01, relative_step=False,
                                               scale_parameter=False, beta_1=0.9,
                                               weight_decay=0.01),
    "adafactor_warmup": lambda: optim.Adafactor(warmup_init=True, clip_threshold=0.5),
}


@pytest.mark.parametrize("name", sorted(CONV_OPTIMIZERS))
def test_three_steps_of_adaptive_optimizers(conv_run, name):
    got, weights, _, _, grads = conv_run
    model = load_conv_net(weights)
    start = dict(tree_flatten(model.parameters()))
    opt = CONV_OPTIMIZERS[name]()
    for g in grads:
        opt.update(model, g)
        mx.eval(model.parameters(), opt.state)
    for k, v in tree_flatten(model.parameters()):
        close(f"{name}.{k}", got[f"{name}.{k}"], v)
        # the steps changed every parameter (so a no-op optimizer cannot pass)
        assert not np.array_equal(np.asarray(v), np.asarray(start[k])), k
        # the state in the order MLX's init_single creates it
        node = opt.state
        for part in k.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        want = list(node.values())
        have = sorted((int(s.rsplit(".", 1)[1]), s) for s in got
                      if s.startswith(f"{name}.state.{k}."))
        assert len(have) == len(want), (k, list(node))
        for (_, key), w in zip(have, want):
            assert got[key].shape == w.shape, key
            # squared-gradient averages span many scales: tolerance relative to theirs
            w = np.asarray(w)
            np.testing.assert_allclose(got[key], w, rtol=RTOL, atol=1e-6 * np.abs(w).max(),
                                       err_msg=key)


# --- the Rust training examples, quick runs ---

@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("digits") / "digits.npz"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "export_digits.py"),
                           str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return str(path)


@pytest.mark.parametrize("example,bar", [("digits_mlp", 0.90), ("digits_cnn", 0.85)])
def test_rust_digits_examples_learn(digits_npz, example, bar):
    """`--quick`: 4 epochs on the first 600 training images, about a second. Measured
    test accuracy on seeds 0-9: MLP 92.8-94.4 %, CNN 90.0-95.0 % (chance is 10 %; the full
    runs give >= 97 %). The bars are those of the Python examples' quick tests."""
    binary = os.path.join(os.path.dirname(parity_binary()), example)
    if not os.path.exists(binary):
        pytest.fail(f"{binary} is missing: run `cargo build --release -p rmx-nn --examples`")
    proc = subprocess.run([binary, "--quick", digits_npz], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout.replace("\r", "\n")
    losses = [float(v) for v in re.findall(r"\] loss (\S+)", out)]
    assert len(losses) == 4 and losses[-1] < 0.5 * losses[0], out
    acc = float(re.search(r"^final: .*test accuracy (\S+)%", out, re.M).group(1)) / 100
    assert acc >= bar, out
