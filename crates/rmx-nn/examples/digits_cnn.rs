//! Trains a small CNN on scikit-learn's 8x8 handwritten digits with rmx-nn, the model of
//! `examples/digits_cnn.py`: Conv2d 1->16 and 16->32 (3x3, padding 1, ReLU, 2x2 max-pool
//! after each: 8x8 -> 4x4 -> 2x2), dropout 0.2, Linear 128->10; AdamW (3e-3
//! cosine-decayed to 3e-5, weight decay 1e-4, batch 32), cross entropy, 30 epochs.
//!
//! Data: `python3 scripts/export_digits.py` writes `.fixtures/digits.npz` (or pass a
//! path). Run: `cargo run --release -p rmx-nn --example digits_cnn [--quick] [--seed N]`
//! (`--quick`: 4 epochs on the first 600 training images, for tests).

mod digits;

use rmx_core::ops::{self, random};
use rmx_core::{Array, Result};
use rmx_nn::activations::relu;
use rmx_nn::{Conv2d, ConvConfig, Dropout, Layer, Linear, MaxPool2d, Module};

/// 20 in `examples/digits_cnn.py`; on this fixed split 20 epochs gave 97.2-98.6 % (seeds
/// 0-9), 30 give 97.5-99.2 %, a safer margin over the 97 % bar.
const EPOCHS: usize = 30;

#[derive(Module)]
struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
    #[module(skip)]
    pool: MaxPool2d,
    dropout: Dropout,
    out: Linear,
}

impl Cnn {
    fn new() -> Result<Cnn> {
        let same = ConvConfig::default().padding(1);
        Ok(Cnn {
            conv1: Conv2d::with_config(1, 16, [3, 3], same)?,
            conv2: Conv2d::with_config(16, 32, [3, 3], same)?,
            pool: MaxPool2d::new([2, 2], None, [0, 0])?,
            dropout: Dropout::new(0.2)?,
            out: Linear::new(2 * 2 * 32, 10, true)?,
        })
    }
}

impl Layer for Cnn {
    fn forward(&self, x: &Array) -> Result<Array> {
        let x = self.pool.forward(&relu(&self.conv1.forward(x)?)?)?; // (N, 4, 4, 16)
        let x = self.pool.forward(&relu(&self.conv2.forward(&x)?)?)?; // (N, 2, 2, 32)
        let x = ops::reshape(&x, &[x.shape()[0] as i64, -1])?;
        self.out.forward(&self.dropout.forward(&x)?)
    }
}

/// `(N, 64)` rows as `(N, 8, 8, 1)` channels-last images.
fn images(x: &Array) -> Result<Array> {
    ops::reshape(x, &[x.shape()[0] as i64, 8, 8, 1])
}

fn main() -> std::result::Result<(), digits::Error> {
    let args = digits::args()?;
    let [x_train, y_train, x_test, y_test] = digits::prepare(&args)?;
    let data = [images(&x_train)?, y_train, images(&x_test)?, y_test];
    random::seed(args.seed)?;
    let mut model = Cnn::new()?;
    let cfg = digits::Training {
        epochs: if args.quick {
            digits::QUICK_EPOCHS
        } else {
            EPOCHS
        },
        batch: 32,
        lr: 3e-3,
        end_lr: 3e-5,
        weight_decay: 1e-4,
    };
    let test_acc = digits::train(&mut model, &data, &cfg)?;
    digits::check(&args, test_acc)
}
