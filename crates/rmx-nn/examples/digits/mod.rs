//! Shared by the digits examples (`digits_mlp`, `digits_cnn`): arguments, the data from
//! `scripts/export_digits.py`, and a training loop (AdamW, cosine schedule, cross entropy,
//! one progress line per epoch, the final train/test accuracy).

use rmx_core::ops::{self, random};
use rmx_core::{Array, Dtype, Result};
use rmx_nn::losses::{cross_entropy, CrossEntropy, Reduction};
use rmx_nn::optim::{AdamW, Optimizer, Schedule};
use rmx_nn::{value_and_grad, Layer};
use std::io::Write;
use std::time::Instant;

pub type Error = Box<dyn std::error::Error>;

/// `[--quick] [--seed N] [PATH]`: `--quick` trains `QUICK_EPOCHS` epochs on the first
/// `QUICK_SAMPLES` training images (for tests); PATH defaults to `.fixtures/digits.npz`.
pub struct Args {
    pub path: String,
    pub quick: bool,
    pub seed: u64,
}

pub const QUICK_EPOCHS: usize = 4;
pub const QUICK_SAMPLES: usize = 600;

pub fn args() -> std::result::Result<Args, Error> {
    let mut out = Args {
        path: concat!(env!("CARGO_MANIFEST_DIR"), "/../../.fixtures/digits.npz").to_string(),
        quick: false,
        seed: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => out.quick = true,
            "--seed" => {
                out.seed = it
                    .next()
                    .ok_or("--seed needs a value")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            _ if a.starts_with("--") => return Err(format!("unknown option {a}").into()),
            _ => out.path = a,
        }
    }
    Ok(out)
}

/// `[x_train, y_train, x_test, y_test]`; features `(N, 64)` float32 in [0, 1].
pub fn load(path: &str) -> std::result::Result<[Array; 4], Error> {
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

/// Rows `lo..hi` of `x` (every other axis whole).
pub fn rows(x: &Array, lo: usize, hi: usize) -> Result<Array> {
    let mut start = vec![0i64; x.ndim()];
    let mut stop: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
    start[0] = lo as i64;
    stop[0] = hi as i64;
    ops::slice(x, &start, &stop, None)
}

pub fn accuracy<M: Layer>(model: &M, x: &Array, y: &Array) -> Result<f64> {
    let pred = ops::argmax(&model.forward(x)?, Some(-1), false)?;
    let hits = ops::astype(
        &ops::equal(&pred, &ops::astype(y, pred.dtype())?)?,
        Dtype::Float32,
    )?;
    ops::mean(&hits, None, false)?
        .item_as::<f32>()
        .map(|v| v as f64)
}

fn bar(done: usize, total: usize) -> String {
    let width = 30;
    let filled = done * width / total.max(1);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

pub struct Training {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub end_lr: f64,
    pub weight_decay: f64,
}

fn loss_fn<M: Layer>(model: &M, batch: &[Array]) -> Result<Array> {
    let opts = CrossEntropy {
        reduction: Reduction::Mean,
        ..Default::default()
    };
    cross_entropy(&model.forward(&batch[0])?, &batch[1], &opts)
}

/// Trains `model` on `data` (`[x_train, y_train, x_test, y_test]`) with shuffled batches,
/// printing each epoch's mean loss and test accuracy; returns the final test accuracy.
pub fn train<M: Layer>(
    model: &mut M,
    data: &[Array; 4],
    cfg: &Training,
) -> std::result::Result<f64, Error> {
    let [x_train, y_train, x_test, y_test] = data;
    let n = x_train.shape()[0];
    let steps_per_epoch = n.div_ceil(cfg.batch);
    let total = (cfg.epochs * steps_per_epoch) as u64;
    let schedule = Schedule::cosine_decay(cfg.lr, total, cfg.end_lr)?;
    let mut opt = AdamW::new(schedule).weight_decay(cfg.weight_decay);
    let step = value_and_grad(loss_fn::<M>);

    let start = Instant::now();
    for epoch in 1..=cfg.epochs {
        model.train(true);
        let perm = random::permutation_n(n, None)?;
        let (xs, ys) = (
            ops::take(x_train, &perm, Some(0))?,
            ops::take(y_train, &perm, Some(0))?,
        );
        let mut epoch_loss = 0.0;
        for b in 0..steps_per_epoch {
            let (lo, hi) = (b * cfg.batch, ((b + 1) * cfg.batch).min(n));
            let (loss, grads) = step(model, &[rows(&xs, lo, hi)?, rows(&ys, lo, hi)?])?;
            opt.update(model, &grads)?;
            let mut live: Vec<Array> = model.parameters().into_iter().map(|p| p.1).collect();
            live.extend(opt.state_arrays());
            live.push(loss.clone());
            rmx_core::eval(&live)?;
            epoch_loss += loss.item_as::<f32>()? as f64;
            print!(
                "\repoch {epoch:>2}/{} {}",
                cfg.epochs,
                bar(b + 1, steps_per_epoch)
            );
            std::io::stdout().flush()?;
        }
        model.train(false);
        let test_acc = accuracy(model, x_test, y_test)?;
        println!(
            " loss {:.4}  test acc {:.2}%  ({:.1}s)",
            epoch_loss / steps_per_epoch as f64,
            100.0 * test_acc,
            start.elapsed().as_secs_f64()
        );
    }
    model.train(false);
    let train_acc = accuracy(model, x_train, y_train)?;
    let test_acc = accuracy(model, x_test, y_test)?;
    println!(
        "final: train accuracy {:.2}%, test accuracy {:.2}% after {} epochs in {:.1}s ({} parameters)",
        100.0 * train_acc,
        100.0 * test_acc,
        cfg.epochs,
        start.elapsed().as_secs_f64(),
        model.num_parameters()
    );
    Ok(test_acc)
}

/// The data to train on: everything, or the quick subset.
pub fn prepare(args: &Args) -> std::result::Result<[Array; 4], Error> {
    let [x_train, y_train, x_test, y_test] = load(&args.path)?;
    let n = x_train.shape()[0];
    let keep = if args.quick { n.min(QUICK_SAMPLES) } else { n };
    println!(
        "digits: {keep} train / {} test samples, {} features",
        x_test.shape()[0],
        x_train.shape()[1]
    );
    Ok([
        rows(&x_train, 0, keep)?,
        rows(&y_train, 0, keep)?,
        x_test,
        y_test,
    ])
}

/// Full runs must reach 97 % test accuracy; quick runs only report.
pub fn check(args: &Args, test_acc: f64) -> std::result::Result<(), Error> {
    if !args.quick && test_acc < 0.97 {
        return Err(format!("test accuracy {:.2}% is below 97%", 100.0 * test_acc).into());
    }
    Ok(())
}
