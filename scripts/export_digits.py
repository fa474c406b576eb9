#!/usr/bin/env python3
"""Writes scikit-learn's handwritten-digits data to .fixtures/digits.npz for the Rust
example crates/rmx-nn/examples/digits_mlp.rs: features float32 scaled to [0, 1]
(pixel values are 0..16), labels int32, a fixed-seed stratified 80/20 split."""

import os
import sys

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main(out: str) -> None:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=y)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    np.savez(out, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    print(f"wrote {out}: {len(x_train)} train, {len(x_test)} test, {x.shape[1]} features")


if __name__ == "__main__":
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".fixtures", "digits.npz"))
