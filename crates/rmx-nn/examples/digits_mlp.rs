//! Trains a two-hidden-layer MLP on scikit-learn's 8x8 handwritten digits with rmx-nn.
//!
//! Data: `python3 scripts/export_digits.py` writes `.fixtures/digits.npz` (or pass a
//! path as the first argument). Run: `cargo run --release -p rmx-nn --example digits_mlp`.

use rmx_core::ops::{self, random};
use rmx_core::{Array, Dtype, Result};
use rmx_nn::activations::relu;
use rmx_nn::losses::{cross_entropy, CrossEntropy, Reduction};
use rmx_nn::optim::{AdamW, Optimizer, Schedule};
use rmx_nn::{value_and_grad, Dropout, Layer, Linear, Module};
use std::io::Write;
use std::time::Instant;

const EPOCHS: usize = 40;
const BATCH: usize = 32;
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

fn loss_fn(model: &Mlp, batch: &[Array]) -> Result<Array> {
    let logits = model.forward(&batch[0])?;
    let opts = CrossEntropy {
        reduction: Reduction::Mean,
        ..Default::default()
    };
    cross_entropy(&logits, &batch[1], &opts)
}

fn accuracy(model: &Mlp, x: &Array, y: &Array) -> Result<f64> {
    let pred = ops::argmax(&model.forward(x)?, Some(-1), false)?;
    let hits = ops::astype(
        &ops::equal(&pred, &ops::astype(y, pred.dtype())?)?,
        Dtype::Float32,
    )?;
    ops::mean(&hits, None, false)?
        .item_as::<f32>()
        .map(|v| v as f64)
}

fn load(path: &str) -> std::result::Result<[Array; 4], Box<dyn std::error::Error>> {
    let loaded = rmx_io::load(path)
        .map_err(|e| format!("{e}\n(create the data with `python3 scripts/export_digits.py`)"))?;
    let arrays = match loaded {
        rmx_io::Loaded::Arrays(a) => a,
        rmx_io::Loaded::Array(_) => return Err(format!("{path} is not an .npz archive").into()),
    };
    let get = |k: &str| {
        arrays
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, a)| a.clone())
            .ok_or_else(|| format!("{path} has no array {k:?}"))
    };
    Ok([
        get("x_train")?,
        get("y_train")?,
        get("x_test")?,
        get("y_test")?,
    ])
}

fn bar(done: usize, total: usize) -> String {
    let width = 30;
    let filled = done * width / total.max(1);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.fixtures/digits.npz");
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| default.to_string());
    let [x_train, y_train, x_test, y_test] = load(&path)?;
    let n = x_train.shape()[0];
    let features = x_train.shape()[1];
    println!(
        "digits: {n} train / {} test samples, {features} features",
        x_test.shape()[0]
    );

    random::seed(0)?;
    let mut model = Mlp::new(&[features, HIDDEN, HIDDEN, 10])?;
    let steps_per_epoch = n.div_ceil(BATCH);
    let total = (EPOCHS * steps_per_epoch) as u64;
    let mut opt = AdamW::new(Schedule::cosine_decay(3e-3, total, 1e-4)?).weight_decay(1e-4);
    let step = value_and_grad(loss_fn);

    let start = Instant::now();
    for epoch in 1..=EPOCHS {
        model.train(true);
        let perm = random::permutation_n(n, None)?;
        let (xs, ys) = (
            ops::take(&x_train, &perm, Some(0))?,
            ops::take(&y_train, &perm, Some(0))?,
        );
        let mut epoch_loss = 0.0;
        for b in 0..steps_per_epoch {
            let (lo, hi) = ((b * BATCH) as i64, ((b + 1) * BATCH).min(n) as i64);
            let xb = ops::slice(&xs, &[lo, 0], &[hi, features as i64], None)?;
            let yb = ops::slice(&ys, &[lo], &[hi], None)?;
            let (loss, grads) = step(&mut model, &[xb, yb])?;
            opt.update(&mut model, &grads)?;
            let mut live: Vec<Array> = model.parameters().into_iter().map(|p| p.1).collect();
            live.extend(opt.state_arrays());
            live.push(loss.clone());
            rmx_core::eval(&live)?;
            epoch_loss += loss.item_as::<f32>()? as f64;
            print!(
                "\repoch {epoch:>2}/{EPOCHS} {}",
                bar(b + 1, steps_per_epoch)
            );
            std::io::stdout().flush()?;
        }
        model.train(false);
        let test_acc = accuracy(&model, &x_test, &y_test)?;
        println!(
            " loss {:.4}  test acc {:.2}%  ({:.1}s)",
            epoch_loss / steps_per_epoch as f64,
            100.0 * test_acc,
            start.elapsed().as_secs_f64()
        );
    }
    model.train(false);
    let train_acc = accuracy(&model, &x_train, &y_train)?;
    let test_acc = accuracy(&model, &x_test, &y_test)?;
    println!(
        "final: train accuracy {:.2}%, test accuracy {:.2}% after {EPOCHS} epochs in {:.1}s ({} parameters)",
        100.0 * train_acc,
        100.0 * test_acc,
        start.elapsed().as_secs_f64(),
        model.num_parameters()
    );
    if test_acc < 0.97 {
        return Err(format!("test accuracy {:.2}% is below 97%", 100.0 * test_acc).into());
    }
    Ok(())
}
