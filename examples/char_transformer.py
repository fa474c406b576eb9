"""A character-level transformer language model trained on English text on this machine.

Corpus: the 14 licence texts in ``/usr/share/common-licenses`` (GPL 1-3, LGPL, GFDL,
Apache, MPL, Artistic, BSD, CC0: 228,107 characters of English prose once runs of
whitespace are collapsed to one space, 83 distinct characters). Debian's ``base-files``
package ships that directory on every Debian or Ubuntu system, so nothing is downloaded.
Where it is missing, Python's own ``LICENSE.txt`` (about 14,000 characters, in the
interpreter's ``lib/python3.X``) is used instead. The last 10 % is held out for validation.

Model: a GPT-style decoder: token and learned position embeddings, 2 pre-norm blocks of
causal multi-head self-attention (4 heads) and a 4x GELU MLP, model width 128, context
64 characters, dropout 0.1 (0.43 M parameters). Attention and layer norm are written
with plain ops (``softmax(q @ k.T * scale + mask) @ v``; mean/variance normalisation),
the same arithmetic as ``nn.MultiHeadAttention`` and ``nn.LayerNorm``, which need
``mx.fast`` kernels that rmx gets from another branch. AdamW (learning rate 2e-3 after
50 warm-up steps, cosine-decayed to 2e-4, weight decay 0.01), batch 32 windows of 64
characters, the step ``mx.compile``d with model, optimizer and random key as state.

The training loss (mean over the last 50 steps) starts at ln(83) ~ 4.4 and falls below
1.5 within the default 800 steps (measured on rmx: 1.52 at step 400, 1.25 at step 800;
validation loss ~1.7). That took 315 s (393 ms per step) on this 2-core machine while it
was shared with Rust builds (load average 12); a step costs about 180 ms of CPU time, so
an idle 2-core machine needs about 1.5-2.5 minutes. The script ends by sampling 400
characters (temperature 0.8) after a prompt: licence-like English, e.g. "...free make
Software Foundation must a GNU License ... you may license pate to program use...".
``--quick`` runs 30 steps of batch 8 (what the test suite checks: the loss falls).

    PYTHONPATH=python python3 examples/char_transformer.py [--backend mlx] [--quick]
"""

import math
import os
import re
import sys
import time
from functools import partial

import numpy as np

from _common import load_backend, parser, progress

LICENSES = "/usr/share/common-licenses"


def corpus_text():
    """The licence texts (symlinks skipped), whitespace runs collapsed; Python's own
    LICENSE.txt where the directory is missing."""
    paths = []
    if os.path.isdir(LICENSES):
        paths = [os.path.join(LICENSES, f) for f in sorted(os.listdir(LICENSES))
                 if not os.path.islink(os.path.join(LICENSES, f))]
    if not paths:
        paths = [os.path.join(sys.base_prefix, "lib",
                              f"python{sys.version_info[0]}.{sys.version_info[1]}", "LICENSE.txt")]
    texts = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            texts.append(re.sub(r"\s+", " ", f.read()).strip())
    where = LICENSES if len(paths) > 1 else paths[0]
    return f"{where} ({len(paths)} files)", " ".join(texts)


def build(mx, nn, vocab, dims=128, heads=4, layers=2, context=64, dropout=0.1):
    class LayerNorm(nn.Module):
        """``nn.LayerNorm``'s arithmetic with plain ops."""

        def __init__(self, d, eps=1e-5):
            super().__init__()
            self.weight, self.bias, self.eps = mx.ones((d,)), mx.zeros((d,)), eps

        def __call__(self, x):
            mu = mx.mean(x, axis=-1, keepdims=True)
            var = mx.var(x, axis=-1, keepdims=True)
            return (x - mu) * mx.rsqrt(var + self.eps) * self.weight + self.bias

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(dims, 3 * dims)
            self.out = nn.Linear(dims, dims)

        def __call__(self, x, mask):
            b, t, _ = x.shape
            q, k, v = mx.split(self.qkv(x), 3, axis=-1)
            q, k, v = (a.reshape(b, t, heads, -1).transpose(0, 2, 1, 3) for a in (q, k, v))
            scores = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(dims // heads)) + mask
            y = mx.softmax(scores, axis=-1) @ v
            return self.out(y.transpose(0, 2, 1, 3).reshape(b, t, dims))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = LayerNorm(dims), LayerNorm(dims)
            self.attn = CausalSelfAttention()
            self.fc1, self.fc2 = nn.Linear(dims, 4 * dims), nn.Linear(4 * dims, dims)
            self.drop = nn.Dropout(dropout)

        def __call__(self, x, mask):
            x = x + self.drop(self.attn(self.ln1(x), mask))
            return x + self.drop(self.fc2(nn.gelu(self.fc1(self.ln2(x)))))

    class CharGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.context = context
            self.tok = nn.Embedding(vocab, dims)
            self.pos = nn.Embedding(context, dims)
            self.blocks = [Block() for _ in range(layers)]
            self.ln = LayerNorm(dims)
            self.head = nn.Linear(dims, vocab)

        def __call__(self, idx):
            t = idx.shape[1]
            causal = mx.triu(mx.full((t, t), -1e9), k=1)
            x = self.tok(idx) + self.pos(mx.arange(t))
            for blk in self.blocks:
                x = blk(x, causal)
            return self.head(self.ln(x))

    return CharGPT()


def sample(mx, model, encode, decode, prompt, n, temperature=0.8):
    model.eval()
    ids = list(encode(prompt))
    for _ in range(n):
        ctx = mx.array([ids[-model.context:]])
        logits = model(ctx)[0, -1] / temperature
        ids.append(mx.random.categorical(logits).item())
    model.train()
    return decode(ids)


def main():
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    args = p.parse_args()
    mx, nn, optim = load_backend(args.backend)
    mx.random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    steps = 30 if args.quick else args.steps
    batch_size = 8 if args.quick else args.batch_size

    path, text = corpus_text()
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    data = np.array([lookup[c] for c in text], dtype=np.int32)
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    model = build(mx, nn, len(chars))
    mx.eval(model.parameters())
    n_params = sum(v.size for _, v in _flat(model.parameters()))
    print(f"backend {args.backend}: corpus {path} ({len(text)} characters, vocabulary "
          f"{len(chars)}), {n_params / 1e6:.2f} M parameters, {steps} steps")

    warmup = min(50, steps // 4)
    schedule = optim.join_schedules(
        [optim.linear_schedule(args.lr / 10, args.lr, warmup),
         optim.cosine_decay(args.lr, steps - warmup, args.lr / 10)], [warmup])
    optimizer = optim.AdamW(learning_rate=schedule, weight_decay=0.01)

    def loss_fn(model, x, y):
        return nn.losses.cross_entropy(model(x), y, reduction="mean")

    state = [model.state, optimizer.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x, y):
        loss, grads = nn.value_and_grad(model, loss_fn)(model, x, y)
        optimizer.update(model, grads)
        return loss

    def windows(src, n):
        starts = rng.integers(0, len(src) - model.context - 1, n)
        x = np.stack([src[s:s + model.context] for s in starts])
        y = np.stack([src[s + 1:s + model.context + 1] for s in starts])
        return mx.array(x), mx.array(y)

    def val_loss():
        model.eval()
        x, y = windows(val, 64)
        out = loss_fn(model, x, y).item()
        model.train()
        return out

    losses, tic = [], time.perf_counter()
    bar = progress(range(1, steps + 1), steps, "train")
    for it in bar:
        loss = step(*windows(train, batch_size))
        mx.eval(state, loss)
        losses.append(loss.item())
        bar.set_postfix_str(f"loss {losses[-1]:.3f}")
        if it % (10 if args.quick else 100) == 0 or it == 1:
            print(f"step {it:5d}  loss {np.mean(losses[-50:]):.4f}  validation loss "
                  f"{val_loss():.4f}  {time.perf_counter() - tic:.1f} s", flush=True)
    elapsed = time.perf_counter() - tic
    print(f"trained {steps} steps in {elapsed:.1f} s ({elapsed / steps * 1000:.0f} ms per step)")
    tail = min(50, steps // 3)
    print(f"first loss {losses[0]:.4f}, final loss (mean of the last {tail} steps) "
          f"{np.mean(losses[-tail:]):.4f}")
    text_out = sample(mx, model, lambda s: [lookup[c] for c in s if c in lookup],
                      lambda ids: "".join(chars[i] for i in ids),
                      "The licenses for most software", 80 if args.quick else 400)
    print("sample:\n" + text_out)


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _flat(v, f"{prefix}{k}.")
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _flat(v, f"{prefix}{i}.")
    else:
        yield prefix[:-1], tree


if __name__ == "__main__":
    main()
