"""An MLP that learns scikit-learn's handwritten digits (8x8 images, 10 classes).

The data ship inside scikit-learn (``sklearn.datasets.load_digits``: 1,797 images, no
download); 20 % are held out for testing, split by ``--seed`` and stratified by class.
The model is 64-256-256-10 with ReLU and dropout 0.2, trained with AdamW (learning rate
3e-3 cosine-decayed to 3e-5, weight decay 1e-4, batch 32) and cross-entropy. The
training step is ``mx.compile``d with the model, the optimizer and the random key
captured as state (``inputs=``/``outputs=``), MLX's usual pattern: the optimizer creates
its state during the first trace, and dropout advances ``mx.random.state`` on every call.

A full run (30 epochs) reaches 97.8-98.9 % test accuracy on rmx (seeds 0-6; >= 97 % is
the bar); ``--quick`` trains 4 epochs on the first 600 training images. Runs on rmx (default) or, with
``--backend mlx``, on real MLX.

    PYTHONPATH=python python3 examples/digits_mlp.py [--backend mlx] [--quick]
"""

import time
from functools import partial

import numpy as np

from _common import batches, digits, load_backend, parser, progress


def build(nn, hidden=256, dropout=0.1):
    return nn.Sequential(
        nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, 10))


def main():
    p = parser(__doc__)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--dropout", type=float, default=0.2)
    args = p.parse_args()
    mx, nn, optim = load_backend(args.backend)
    mx.random.seed(args.seed)
    rng = np.random.default_rng(args.seed)

    x_train, x_test, y_train, y_test = digits(args.seed)
    epochs = args.epochs
    if args.quick:
        x_train, y_train, epochs = x_train[:600], y_train[:600], 4
    x_train, y_train = mx.array(x_train), mx.array(y_train)
    x_test, y_test = mx.array(x_test), mx.array(y_test)

    model = build(nn, dropout=args.dropout)
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


if __name__ == "__main__":
    main()
