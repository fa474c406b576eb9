"""Shared by the training examples: the ``--backend rmx|mlx`` and ``--quick`` flags, the
backend import, a progress bar and the handwritten-digits data set."""

import argparse
import sys
import time


def parser(doc):
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--backend", choices=["rmx", "mlx"], default="rmx",
                   help="rmx (default) or real MLX, running the same code")
    p.add_argument("--quick", action="store_true",
                   help="a few steps on little data (what the test suite runs)")
    p.add_argument("--seed", type=int, default=0)
    return p


def load_backend(name):
    """``(mx, nn, optim)`` of the chosen library."""
    if name == "mlx":
        import mlx.core as mx
        import mlx.nn as nn
        import mlx.optimizers as optim
    else:
        import rmx.core as mx
        import rmx.nn as nn
        import rmx.optimizers as optim
    return mx, nn, optim


def progress(iterable, total, desc):
    """``tqdm`` when it is installed, else a one-line text bar on stderr. The returned
    object has ``set_postfix_str`` either way."""
    try:
        from tqdm import tqdm
        return tqdm(iterable, total=total, desc=desc, file=sys.stderr, leave=False,
                    dynamic_ncols=True)
    except ImportError:
        return _TextBar(iterable, total, desc)


class _TextBar:
    def __init__(self, iterable, total, desc):
        self.iterable, self.total, self.desc, self.post = iterable, total, desc, ""

    def set_postfix_str(self, s):
        self.post = s

    def __iter__(self):
        t0 = time.perf_counter()
        for i, item in enumerate(self.iterable, 1):
            yield item
            done = int(30 * i / max(self.total, 1))
            rate = i / max(time.perf_counter() - t0, 1e-9)
            sys.stderr.write(f"\r{self.desc} [{'#' * done}{'.' * (30 - done)}] {i}/{self.total} "
                             f"{rate:.1f} it/s {self.post}")
            sys.stderr.flush()
        sys.stderr.write("\r" + " " * 100 + "\r")


def digits(seed, test_fraction=0.2, image=False):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download), scaled to
    [0, 1] and split by ``seed`` into train and test sets, stratified by class. Images are
    ``(N, 64)`` or, with ``image``, ``(N, 8, 8, 1)`` (channels last, as MLX's conv)."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)
    x = x[..., None] if image else x.reshape(len(x), -1)
    y = data.target.astype(np.int32)
    return train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)


def batches(rng, n, batch_size):
    """Index arrays of a shuffled epoch (the last, short batch is dropped so that the
    compiled step sees one shape)."""
    order = rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


def train_digits(args, mx, nn, optim, build_model, image=False):
    """Trains ``build_model()`` on the digits with AdamW + cosine decay, the step compiled
    with its state captured; prints per-epoch loss, test accuracy and time."""
    import numpy as np
    from functools import partial

    mx.random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x_train, x_test, y_train, y_test = digits(args.seed, image=image)
    epochs = args.epochs
    if args.quick:
        x_train, y_train, epochs = x_train[:600], y_train[:600], 4
    x_train, y_train = mx.array(x_train), mx.array(y_train)
    x_test, y_test = mx.array(x_test), mx.array(y_test)

    model = build_model()
    mx.eval(model.parameters())
    steps = epochs * (x_train.shape[0] // args.batch_size)
    optimizer = optim.AdamW(learning_rate=optim.cosine_decay(args.lr, steps, args.lr / 100),
                            weight_decay=args.weight_decay)

    def loss_fn(model, x, y):
        return nn.losses.cross_entropy(model(x), y, reduction="mean")

    state = [model.state, optimizer.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x, y):
        loss, grads = nn.value_and_grad(model, loss_fn)(model, x, y)
        optimizer.update(model, grads)
        return loss

    def accuracy(x, y):
        model.eval()
        acc = mx.mean(mx.argmax(model(x), axis=1) == y).item()
        model.train()
        return acc

    print(f"backend {args.backend}: {x_train.shape[0]} training and {x_test.shape[0]} test "
          f"images, {epochs} epochs")
    times = []
    for epoch in range(1, epochs + 1):
        tic = time.perf_counter()
        losses = []
        bar = progress(batches(rng, x_train.shape[0], args.batch_size),
                       x_train.shape[0] // args.batch_size, f"epoch {epoch}")
        for idx in bar:
            idx = mx.array(idx)
            loss = step(x_train[idx], y_train[idx])
            mx.eval(state, loss)
            losses.append(loss.item())
            bar.set_postfix_str(f"loss {losses[-1]:.3f}")
        times.append(time.perf_counter() - tic)
        print(f"epoch {epoch:3d}  loss {np.mean(losses):.4f}  test accuracy "
              f"{accuracy(x_test, y_test):.4f}  epoch time {times[-1] * 1000:.0f} ms")
    print(f"median epoch time {np.median(times) * 1000:.0f} ms")
    print(f"final test accuracy {accuracy(x_test, y_test):.4f}")
