//! Differential-test driver for python/tests/test_rust_nn_transpose.py (transposed
//! convolutions and Muon; built by `cargo build --release -p rmx-nn --examples`).
//!
//! `parity_transpose IN.npz WEIGHTS.npz OUT.npz`: loads inputs (`x1`, `x2`, `x3`, `seed`)
//! and MLX-written weights of a small net of ConvTranspose1d/2d/3d layers (strides,
//! padding, dilation, output padding, groups) and two Linear heads, then writes every
//! output, a sum-of-mean-squares loss and its gradients; the parameters and Muon state
//! after four steps with given gradients (`g0.*` .. `g3.*`) of two Muon configurations,
//! and after three steps of training with computed gradients; and transposed-conv layers
//! freshly initialised after `random::seed(seed)`.

mod parity_io;

use parity_io::Inputs;
use rmx_core::ops::{self, random};
use rmx_core::{Array, Result};
use rmx_nn::activations::relu;
use rmx_nn::optim::{Muon, Optimizer, Schedule};
use rmx_nn::{
    value_and_grad, ConvConfig, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d,
    ConvTransposeConfig, Layer, Linear, Module, Params,
};

#[derive(Module)]
struct TransposeNet {
    t1a: ConvTranspose1d,
    t1b: ConvTranspose1d,
    t1g: ConvTranspose1d,
    t2a: ConvTranspose2d,
    t2b: ConvTranspose2d,
    t2g: ConvTranspose2d,
    t3a: ConvTranspose3d,
    t3b: ConvTranspose3d,
    tall: Linear,
    wide: Linear,
}

impl TransposeNet {
    fn new() -> Result<TransposeNet> {
        Ok(TransposeNet {
            t1a: ConvTranspose1d::with_config(
                4,
                6,
                3,
                ConvConfig::default().stride(2).padding(1).output_padding(1),
            )?,
            t1b: ConvTranspose1d::with_config(
                6,
                4,
                2,
                ConvConfig::default().dilation(2).bias(false),
            )?,
            t1g: ConvTranspose1d::with_config(
                6,
                6,
                5,
                ConvConfig::default()
                    .stride(3)
                    .padding(2)
                    .dilation(2)
                    .groups(3),
            )?,
            t2a: ConvTranspose2d::with_config(
                3,
                5,
                [3, 2],
                ConvTransposeConfig {
                    conv: ConvConfig {
                        stride: [2, 1],
                        padding: [1, 0],
                        dilation: [1, 2],
                        ..Default::default()
                    },
                    output_padding: [1, 0],
                },
            )?,
            t2b: ConvTranspose2d::with_config(
                5,
                4,
                [3, 3],
                ConvConfig::default().stride(2).padding(1),
            )?,
            t2g: ConvTranspose2d::with_config(
                3,
                6,
                [2, 2],
                ConvConfig::default().stride(2).groups(3).output_padding(1),
            )?,
            t3a: ConvTranspose3d::with_config(
                2,
                3,
                [2, 2, 2],
                ConvConfig::default().stride(2).padding(1).output_padding(1),
            )?,
            t3b: ConvTranspose3d::with_config(
                3,
                2,
                [2, 1, 3],
                ConvConfig {
                    stride: [1, 2, 1],
                    padding: [0, 0, 1],
                    dilation: [2, 1, 1],
                    groups: 1,
                    bias: false,
                },
            )?,
            tall: Linear::new(4, 10, true)?,
            wide: Linear::new(4, 3, true)?,
        })
    }

    /// Every layer's output.
    fn trace(&self, x: &[Array]) -> Result<Vec<(&'static str, Array)>> {
        let t1a = self.t1a.forward(&x[0])?;
        let t1b = self.t1b.forward(&t1a)?;
        let t1g = self.t1g.forward(&relu(&t1a)?)?;
        let t2a = self.t2a.forward(&x[1])?;
        let t2b = self.t2b.forward(&relu(&t2a)?)?;
        let t2g = self.t2g.forward(&x[1])?;
        let t3a = self.t3a.forward(&x[2])?;
        let t3b = self.t3b.forward(&t3a)?;
        let tall = self.tall.forward(&ops::mean(&t1b, Some(&[1]), false)?)?;
        let wide = self.wide.forward(&ops::mean(&t2b, Some(&[1, 2]), false)?)?;
        Ok(vec![
            ("fwd.t1a", t1a),
            ("fwd.t1b", t1b),
            ("fwd.t1g", t1g),
            ("fwd.t2a", t2a),
            ("fwd.t2b", t2b),
            ("fwd.t2g", t2g),
            ("fwd.t3a", t3a),
            ("fwd.t3b", t3b),
            ("fwd.tall", tall),
            ("fwd.wide", wide),
        ])
    }
}

/// The sum over the outputs that feed no other layer of `mean(y ** 2)`.
fn loss(model: &TransposeNet, x: &[Array]) -> Result<Array> {
    let mut total: Option<Array> = None;
    for (name, y) in model.trace(x)? {
        if ["fwd.t1a", "fwd.t2a", "fwd.t3a"].contains(&name) {
            continue;
        }
        let m = ops::mean(&ops::square(&y)?, None, false)?;
        total = Some(match total {
            Some(t) => ops::add(&t, &m)?,
            None => m,
        });
    }
    Ok(total.expect("outputs"))
}

fn load(weights: &str) -> Result<TransposeNet> {
    let mut model = TransposeNet::new()?;
    model.load_weights(weights, true)?;
    Ok(model)
}

fn record(name: &str, model: &TransposeNet, opt: &Muon, out: &mut Vec<(String, Array)>) {
    for (k, v) in model.parameters() {
        for (i, st) in opt.state(&k).unwrap_or(&[]).iter().enumerate() {
            out.push((format!("{name}.state.{k}.{i}"), st.clone()));
        }
        out.push((format!("{name}.{k}"), v));
    }
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        return Err("usage: parity_transpose IN.npz WEIGHTS.npz OUT.npz".into());
    }
    let inputs = Inputs::load(&args[1])?;
    let x = [inputs.get("x1")?, inputs.get("x2")?, inputs.get("x3")?];
    let weights = &args[2];

    let mut model = load(weights)?;
    let mut out: Vec<(String, Array)> = model
        .trace(&x)?
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let vg = value_and_grad(loss);
    let (l, grads) = vg(&mut model, &x)?;
    out.push(("loss".into(), l));
    for (k, v) in grads {
        out.push((format!("grad.{k}"), v));
    }

    // Muon on given gradients, so both sides orthogonalize the same numbers
    let step_grads: Vec<Params> = (0..4)
        .map(|i| inputs.with_prefix(&format!("g{i}")))
        .collect();
    let configs = [
        ("muon", Muon::new(0.02)),
        (
            "muon_plain",
            Muon::new(Schedule::exponential_decay(0.05, 0.8))
                .momentum(0.9)
                .weight_decay(0.0)
                .nesterov(false)
                .ns_steps(3),
        ),
    ];
    for (name, mut opt) in configs {
        let mut model = load(weights)?;
        for g in &step_grads {
            opt.update(&mut model, g)?;
        }
        record(name, &model, &opt, &mut out);
    }

    // Muon training: each step's gradients computed from the loss
    let mut model = load(weights)?;
    let mut opt = Muon::new(0.05).momentum(0.9);
    let mut losses = Vec::new();
    for _ in 0..3 {
        let (l, g) = vg(&mut model, &x)?;
        opt.update(&mut model, &g)?;
        losses.push(l);
    }
    out.push(("muon_train.losses".into(), ops::stack(&losses, 0)?));
    record("muon_train", &model, &opt, &mut out);

    // MLX's initialisation, draw for draw from the same seed
    random::seed(inputs.get("seed")?.item_as::<i64>()? as u64)?;
    let inits = [
        ("init.t1", ConvTranspose1d::new(6, 4, 5)?.parameters()),
        ("init.t2", ConvTranspose2d::new(3, 4, [3, 2])?.parameters()),
        (
            "init.t3",
            ConvTranspose3d::new(2, 3, [2, 3, 1])?.parameters(),
        ),
    ];
    for (name, params) in inits {
        for (k, v) in params {
            out.push((format!("{name}.{k}"), v));
        }
    }

    rmx_io::savez(&args[3], &out)?;
    Ok(())
}
