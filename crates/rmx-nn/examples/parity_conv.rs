//! Differential-test driver for python/tests/test_rust_nn.py (convolutions, pooling and
//! the adaptive optimizers; built by `cargo build --release -p rmx-nn --examples`).
//!
//! `parity_conv IN.npz WEIGHTS.npz OUT.npz`: loads inputs (`x1`, `x2`, `x3`, `targets`,
//! `seed`) and MLX-written weights of a small net of Conv1d/Conv2d/Conv3d layers (strides,
//! padding, dilation, groups) and max/average pools feeding a Linear head, then writes
//! every intermediate, the cross-entropy loss and its gradients; the parameters and
//! optimizer state after three steps with given gradients (`g0.*`, `g1.*`, `g2.*`) of each
//! of RMSprop, Adagrad, AdaDelta, Adamax, Lion and Adafactor (three configurations); and
//! conv layers freshly initialised after `random::seed(seed)`.

mod parity_io;

use parity_io::Inputs;
use rmx_core::ops::{self, random};
use rmx_core::{Array, Result};
use rmx_nn::activations::relu;
use rmx_nn::losses::{cross_entropy, CrossEntropy, Reduction};
use rmx_nn::optim::{AdaDelta, Adafactor, Adagrad, Adamax, Lion, Optimizer, RMSprop, Schedule};
use rmx_nn::{
    value_and_grad, AvgPool1d, AvgPool2d, AvgPool3d, Conv1d, Conv2d, Conv3d, ConvConfig, Layer,
    Linear, MaxPool1d, MaxPool2d, MaxPool3d, Module, Params,
};

#[derive(Module)]
struct ConvNet {
    c1: Conv1d,
    c2a: Conv2d,
    c2b: Conv2d,
    c3: Conv3d,
    head: Linear,
}

fn flat(x: &Array) -> Result<Array> {
    ops::reshape(x, &[x.shape()[0] as i64, -1])
}

impl ConvNet {
    fn new() -> Result<ConvNet> {
        Ok(ConvNet {
            c1: Conv1d::with_config(
                4,
                6,
                3,
                ConvConfig::default().stride(2).padding(1).groups(2),
            )?,
            c2a: Conv2d::with_config(
                3,
                8,
                [3, 2],
                ConvConfig {
                    stride: [2, 1],
                    padding: [1, 0],
                    dilation: [1, 2],
                    ..Default::default()
                },
            )?,
            c2b: Conv2d::with_config(
                8,
                8,
                [3, 3],
                ConvConfig::default().padding(1).groups(4).bias(false),
            )?,
            c3: Conv3d::with_config(2, 4, [2, 2, 2], ConvConfig::default().padding(1))?,
            head: Linear::new(18 + 32 + 32 + 48 + 108, 5, true)?,
        })
    }

    /// Every intermediate, the logits last.
    fn trace(&self, x: &[Array]) -> Result<Vec<(&'static str, Array)>> {
        let c1 = self.c1.forward(&x[0])?;
        let p1 = MaxPool1d::new([2], Some([1]), [1])?.forward(&relu(&c1)?)?;
        let q1 = AvgPool1d::new([2], None, [0])?.forward(&p1)?;
        let c2a = self.c2a.forward(&x[1])?;
        let p2a = MaxPool2d::new([2, 2], None, [0, 0])?.forward(&relu(&c2a)?)?;
        let c2b = self.c2b.forward(&c2a)?;
        let p2b = AvgPool2d::new([3, 3], Some([2, 2]), [1, 1])?.forward(&c2b)?;
        let c3 = self.c3.forward(&x[2])?;
        let p3 = MaxPool3d::new([2, 2, 2], Some([2, 2, 1]), [0, 0, 0])?.forward(&c3)?;
        let q3 = AvgPool3d::new([2, 2, 2], None, [1, 1, 1])?.forward(&c3)?;
        let feats = ops::concatenate(
            &[flat(&q1)?, flat(&p2a)?, flat(&p2b)?, flat(&p3)?, flat(&q3)?],
            Some(1),
        )?;
        let logits = self.head.forward(&feats)?;
        Ok(vec![
            ("fwd.c1", c1),
            ("fwd.p1", p1),
            ("fwd.q1", q1),
            ("fwd.c2a", c2a),
            ("fwd.p2a", p2a),
            ("fwd.c2b", c2b),
            ("fwd.p2b", p2b),
            ("fwd.c3", c3),
            ("fwd.p3", p3),
            ("fwd.q3", q3),
            ("fwd.logits", logits),
        ])
    }
}

fn loss(model: &ConvNet, b: &[Array]) -> Result<Array> {
    let logits = model.trace(&b[..3])?.pop().expect("logits").1;
    let opts = CrossEntropy {
        reduction: Reduction::Mean,
        ..Default::default()
    };
    cross_entropy(&logits, &b[3], &opts)
}

/// Three optimizer steps from the MLX weights with the given gradients (`g0.NAME`,
/// `g1.NAME`, `g2.NAME`), so the optimizers see exactly MLX's inputs.
fn steps(
    name: &str,
    opt: &mut impl Optimizer,
    weights: &str,
    grads: &[Params; 3],
    out: &mut Vec<(String, Array)>,
) -> Result<()> {
    let mut model = ConvNet::new()?;
    model.load_weights(weights, true)?;
    for g in grads {
        opt.update(&mut model, g)?;
    }
    for (k, v) in model.parameters() {
        for (i, st) in opt.state(&k).unwrap_or(&[]).iter().enumerate() {
            out.push((format!("{name}.state.{k}.{i}"), st.clone()));
        }
        out.push((format!("{name}.{k}"), v));
    }
    Ok(())
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        return Err("usage: parity_conv IN.npz WEIGHTS.npz OUT.npz".into());
    }
    let inputs = Inputs::load(&args[1])?;
    let get = |k: &str| inputs.get(k);
    let batch = [get("x1")?, get("x2")?, get("x3")?, get("targets")?];

    let mut model = ConvNet::new()?;
    model.load_weights(&args[2], true)?;
    let mut out: Vec<(String, Array)> = model
        .trace(&batch[..3])?
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let (l, grads) = value_and_grad(loss)(&mut model, &batch)?;
    out.push(("loss".into(), l));
    for (k, v) in grads {
        out.push((format!("grad.{k}"), v));
    }

    let step_grads: [Params; 3] = std::array::from_fn(|i| inputs.with_prefix(&format!("g{i}")));
    let (w, g) = (&args[2], &step_grads);
    let lr = Schedule::exponential_decay(0.01, 0.9);
    steps("rmsprop", &mut RMSprop::new(lr).alpha(0.9), w, g, &mut out)?;
    steps("adagrad", &mut Adagrad::new(0.05), w, g, &mut out)?;
    steps(
        "adadelta",
        &mut AdaDelta::new(0.5).rho(0.95),
        w,
        g,
        &mut out,
    )?;
    steps("adamax", &mut Adamax::new(0.01), w, g, &mut out)?;
    steps(
        "lion",
        &mut Lion::new(0.001).weight_decay(0.1),
        w,
        g,
        &mut out,
    )?;
    steps("adafactor", &mut Adafactor::new(), w, g, &mut out)?;
    let mut fixed = Adafactor::with_learning_rate(0.01)
        .relative_step(false)
        .scale_parameter(false)
        .beta_1(Some(0.9))
        .weight_decay(0.01);
    steps("adafactor_fixed", &mut fixed, w, g, &mut out)?;
    let mut warm = Adafactor::new().warmup_init(true).clip_threshold(0.5);
    steps("adafactor_warmup", &mut warm, w, g, &mut out)?;

    // MLX's initialisation, draw for draw from the same seed
    let seed = get("seed")?.item_as::<i64>()? as u64;
    random::seed(seed)?;
    let inits = [
        ("init.conv1d", Conv1d::new(6, 4, 5)?.parameters()),
        (
            "init.conv2d",
            Conv2d::with_config(6, 4, [3, 2], ConvConfig::default().groups(3))?.parameters(),
        ),
        ("init.conv3d", Conv3d::new(2, 3, [2, 3, 1])?.parameters()),
    ];
    for (name, params) in inits {
        for (k, v) in params {
            out.push((format!("{name}.{k}"), v));
        }
    }

    rmx_io::savez(&args[3], &out)?;
    Ok(())
}
