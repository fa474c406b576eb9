//! Phi-3: a Llama-shaped decoder whose checkpoints fuse q/k/v into `qkv_proj` and the MLP's
//! gate and up projections into `gate_up_proj`. The fused matrices are split by rows (the
//! packed rows of a quantized one split the same way) and the Llama code runs the rest.

use super::llama::Llama;
use crate::config::ModelArgs;
use crate::error::Result;
use crate::weights::Weights;
use rmx_core::{ops, Array};

/// Rows `start..stop` of `a` (first axis).
fn rows(a: &Array, start: usize, stop: usize) -> Result<Array> {
    let mut lo = vec![0i64; a.ndim()];
    lo[0] = start as i64;
    let mut hi: Vec<i64> = a.shape().iter().map(|&v| v as i64).collect();
    hi[0] = stop as i64;
    Ok(ops::slice(a, &lo, &hi, None)?)
}

/// Replaces module `fused` by modules `parts` (name, rows) cut from its rows in order.
fn split(w: &mut Weights, fused: &str, parts: &[(&str, usize)]) -> Result<()> {
    for suffix in ["weight", "scales", "biases", "bias"] {
        let Some(a) = w.arrays.remove(&format!("{fused}.{suffix}")) else {
            continue;
        };
        let base = fused.rsplit_once('.').map_or("", |(b, _)| b);
        let mut start = 0;
        for (name, n) in parts {
            let key = if base.is_empty() {
                format!("{name}.{suffix}")
            } else {
                format!("{base}.{name}.{suffix}")
            };
            w.arrays.insert(key, rows(&a, start, start + n)?);
            start += n;
        }
    }
    Ok(())
}

pub fn load(mut w: Weights, args: ModelArgs) -> Result<Llama> {
    let (hd, q, kv) = (args.head_dim, args.num_heads, args.num_kv_heads);
    for i in 0..args.num_layers {
        let p = format!("model.layers.{i}");
        split(
            &mut w,
            &format!("{p}.self_attn.qkv_proj"),
            &[("q_proj", q * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)],
        )?;
        let f = args.intermediate_size;
        split(
            &mut w,
            &format!("{p}.mlp.gate_up_proj"),
            &[("gate_proj", f), ("up_proj", f)],
        )?;
    }
    Llama::load(&w, args)
}
