"""A small CNN that learns scikit-learn's handwritten digits (8x8 images, 10 classes).

Same data and split as ``digits_mlp.py`` (``sklearn.datasets.load_digits``, 20 % held
out, stratified, split by ``--seed``), as ``(N, 8, 8, 1)`` channels-last images. The
model is MLX-style: ``nn.Conv2d`` 1->16 and 16->32 (3x3, padding 1, ReLU, 2x2 max-pool
after each: 8x8 -> 4x4 -> 2x2), then dropout 0.2 and a linear layer 128->10. AdamW
(learning rate 3e-3 cosine-decayed to 3e-5, weight decay 1e-4, batch 32), cross-entropy,
and the step ``mx.compile``d with the model, optimizer and random key as state.

A full run (20 epochs) reaches >= 97 % test accuracy: ``--backend mlx`` gave 98.1-99.2 %
(seeds 0-2). ``--quick`` trains 4 epochs on the first 600 images.

    PYTHONPATH=python python3 examples/digits_cnn.py [--backend mlx] [--quick]
"""

from _common import load_backend, parser, train_digits


def build(nn, dropout=0.2):
    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.dropout = nn.Dropout(dropout)
            self.out = nn.Linear(2 * 2 * 32, 10)

        def __call__(self, x):
            x = self.pool(nn.relu(self.conv1(x)))  # (N, 4, 4, 16)
            x = self.pool(nn.relu(self.conv2(x)))  # (N, 2, 2, 32)
            return self.out(self.dropout(x.reshape(x.shape[0], -1)))

    return CNN()


def main():
    p = parser(__doc__)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    args = p.parse_args()
    mx, nn, optim = load_backend(args.backend)
    train_digits(args, mx, nn, optim, lambda: build(nn), image=True)


if __name__ == "__main__":
    main()
