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

from _common import load_backend, parser, train_digits


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
    train_digits(args, mx, nn, optim, lambda: build(nn, dropout=args.dropout))


if __name__ == "__main__":
    main()
