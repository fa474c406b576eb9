//! Differential-test driver for python/tests/test_rust_nn.py (built by scripts/setup.sh).
//!
//! `parity IN.npz WEIGHTS.npz OUT.npz OUT_WEIGHTS.safetensors`: loads inputs (`tokens`,
//! `targets`) and MLX-written weights of a small Embedding → LayerNorm → Linear → gelu →
//! RMSNorm → Linear model, then writes the layer outputs, the loss (cross entropy with
//! label smoothing), its gradients, and the parameters after three steps of Adam, AdamW
//! and SGD; the AdamW-trained weights also go to a safetensors file for MLX to load.

mod parity_io;

use parity_io::Inputs;
use rmx_core::{Array, Result};
use rmx_nn::activations::gelu;
use rmx_nn::losses::{cross_entropy, CrossEntropy, Reduction};
use rmx_nn::optim::{Adam, AdamW, Optimizer, Schedule, Sgd};
use rmx_nn::{value_and_grad, Embedding, Layer, LayerNorm, Linear, Module, RMSNorm};

#[derive(Module)]
struct Net {
    emb: Embedding,
    ln: LayerNorm,
    lin: Linear,
    rms: RMSNorm,
    head: Linear,
}

impl Net {
    fn new() -> Result<Net> {
        Ok(Net {
            emb: Embedding::new(11, 8)?,
            ln: LayerNorm::new(8, 1e-5, true, true)?,
            lin: Linear::new(8, 16, true)?,
            rms: RMSNorm::new(16, 1e-5)?,
            head: Linear::new(16, 5, true)?,
        })
    }

    /// Every intermediate, the logits last.
    fn trace(&self, tokens: &Array) -> Result<Vec<(&'static str, Array)>> {
        let e = self.emb.forward(tokens)?;
        let n = self.ln.forward(&e)?;
        let l = self.lin.forward(&n)?;
        let g = gelu(&l)?;
        let r = self.rms.forward(&g)?;
        let o = self.head.forward(&r)?;
        Ok(vec![
            ("fwd.emb", e),
            ("fwd.ln", n),
            ("fwd.lin", l),
            ("fwd.gelu", g),
            ("fwd.rms", r),
            ("fwd.logits", o),
        ])
    }
}

fn loss(model: &Net, b: &[Array]) -> Result<Array> {
    let logits = model.trace(&b[0])?.pop().expect("logits").1;
    let opts = CrossEntropy {
        label_smoothing: 0.1,
        reduction: Reduction::Mean,
        ..Default::default()
    };
    cross_entropy(&logits, &b[1], &opts)
}

fn train(
    name: &str,
    opt: &mut impl Optimizer,
    weights: &str,
    batch: &[Array],
    out: &mut Vec<(String, Array)>,
) -> Result<Net> {
    let mut model = Net::new()?;
    model.load_weights(weights, true)?;
    let vg = value_and_grad(loss);
    let mut losses = Vec::new();
    for _ in 0..3 {
        let (l, g) = vg(&mut model, batch)?;
        opt.update(&mut model, &g)?;
        losses.push(l);
    }
    out.push((format!("{name}.losses"), rmx_core::ops::stack(&losses, 0)?));
    for (k, v) in model.parameters() {
        out.push((format!("{name}.{k}"), v));
    }
    Ok(model)
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        return Err("usage: parity IN.npz WEIGHTS.npz OUT.npz OUT_WEIGHTS.safetensors".into());
    }
    let inputs = Inputs::load(&args[1])?;
    let get = |k: &str| inputs.get(k);
    let batch = [get("tokens")?, get("targets")?];

    let mut model = Net::new()?;
    model.load_weights(&args[2], true)?;
    let mut out: Vec<(String, Array)> = model
        .trace(&batch[0])?
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let (l, grads) = value_and_grad(loss)(&mut model, &batch)?;
    out.push(("loss".into(), l));
    for (k, v) in grads {
        out.push((format!("grad.{k}"), v));
    }

    let mut adam = Adam::new(0.01).bias_correction(true);
    train("adam", &mut adam, &args[2], &batch, &mut out)?;
    let mut adamw = AdamW::new(0.02).weight_decay(0.05);
    let trained = train("adamw", &mut adamw, &args[2], &batch, &mut out)?;
    let sched = Schedule::cosine_decay(0.1, 3, 0.01)?;
    let mut sgd = Sgd::new(sched)
        .momentum(0.9)
        .weight_decay(0.01)
        .nesterov(true);
    train("sgd", &mut sgd, &args[2], &batch, &mut out)?;

    rmx_io::savez(&args[3], &out)?;
    trained.save_weights(&args[4])?;
    Ok(())
}
