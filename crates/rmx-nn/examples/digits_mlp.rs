//! Trains a two-hidden-layer MLP on scikit-learn's 8x8 handwritten digits with rmx-nn.
//!
//! Data: `python3 scripts/export_digits.py` writes `.fixtures/digits.npz` (or pass a
//! path). Run: `cargo run --release -p rmx-nn --example digits_mlp [--quick] [--seed N]`
//! (`--quick`: 4 epochs on the first 600 training images, for tests).

mod digits;

use rmx_core::ops::random;
use rmx_core::{Array, Result};
use rmx_nn::activations::relu;
use rmx_nn::{Dropout, Layer, Linear, Module};

const EPOCHS: usize = 40;
const HIDDEN: usize = 256;

#[derive(Module)]
struct Mlp {
    layers: Vec<Linear>,
    dropout: Dropout,
}

impl Mlp {
    fn new(dims: &[usize]) -> Result<Mlp> {
        let layers = dims
            .windows(2)
            .map(|w| Linear::new(w[0], w[1], true))
            .collect::<Result<Vec<_>>>()?;
        Ok(Mlp {
            layers,
            dropout: Dropout::new(0.2)?,
        })
    }
}

impl Layer for Mlp {
    fn forward(&self, x: &Array) -> Result<Array> {
        let (last, hidden) = self.layers.split_last().expect("at least one layer");
        let mut h = x.clone();
        for l in hidden {
            h = self.dropout.forward(&relu(&l.forward(&h)?)?)?;
        }
        last.forward(&h)
    }
}

fn main() -> std::result::Result<(), digits::Error> {
    let args = digits::args()?;
    let data = digits::prepare(&args)?;
    random::seed(args.seed)?;
    let mut model = Mlp::new(&[data[0].shape()[1], HIDDEN, HIDDEN, 10])?;
    let cfg = digits::Training {
        epochs: if args.quick {
            digits::QUICK_EPOCHS
        } else {
            EPOCHS
        },
        batch: 32,
        lr: 3e-3,
        end_lr: 1e-4,
        weight_decay: 1e-4,
    };
    let test_acc = digits::train(&mut model, &data, &cfg)?;
    digits::check(&args, test_acc)
}
