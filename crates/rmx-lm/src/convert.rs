//! `rmx-lm convert`: a GGUF file or a Hugging Face / mlx-lm folder to MLX's on-disk format
//! (`config.json`, `model.safetensors`, `tokenizer.json`, `tokenizer_config.json`), as
//! `mlx-lm` reads it; optionally quantized (affine, MLX's layout) or dequantized to floats.
//!
//! GGUF Llama weights keep llama.cpp's row order for Q and K and are marked
//! `"rope_traditional": true`, which mlx-lm's Llama honours: no re-permutation needed.

use crate::config::{ModelArgs, QuantConfig, RopeStyle};
use crate::error::{LmError, Result};
use crate::loader;
use crate::weights::Weights;
use crate::{invalid, model_err};
use rmx_core::{ops, Array, Dtype};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, Default)]
pub struct ConvertOptions {
    /// Quantize float matrices to this many bits / group size.
    pub quantize: Option<QuantConfig>,
    /// Turn quantized matrices back into floats.
    pub dequantize: bool,
    /// Float dtype of the written floats (default float16).
    pub dtype: Option<Dtype>,
}

fn io(e: impl std::fmt::Display) -> LmError {
    LmError::Io(e.to_string())
}

/// The `config.json` of a model read from GGUF.
fn hf_config(args: &ModelArgs) -> Value {
    json!({
        "model_type": args.arch,
        "hidden_size": args.hidden_size,
        "num_hidden_layers": args.num_layers,
        "intermediate_size": args.intermediate_size,
        "num_attention_heads": args.num_heads,
        "num_key_value_heads": args.num_kv_heads,
        "head_dim": args.head_dim,
        "rms_norm_eps": args.norm_eps,
        "vocab_size": args.vocab_size,
        "rope_theta": args.rope_theta,
        "rope_traditional": args.rope_style == RopeStyle::Adjacent,
        "max_position_embeddings": args.max_position_embeddings,
        "tie_word_embeddings": args.tie_word_embeddings,
    })
}

/// Module prefixes whose weight is packed (they have `.scales`).
fn quantized_prefixes(w: &Weights) -> Vec<String> {
    let mut v: Vec<String> = w
        .arrays
        .keys()
        .filter_map(|k| k.strip_suffix(".scales").map(str::to_owned))
        .collect();
    v.sort();
    v
}

pub fn convert(src: &Path, out: &Path, opts: &ConvertOptions) -> Result<()> {
    if opts.quantize.is_some() && opts.dequantize {
        return Err(invalid!("choose one of quantize (-q) and --dequantize"));
    }
    let parts = loader::load_parts(src)?;
    if parts.config.is_none() && parts.args.arch.starts_with("gemma") {
        // llama.cpp renames Gemma's norms and folds their +1 in; undoing that is not done yet.
        return Err(model_err!(
            "converting a Gemma GGUF file is not supported (run it directly, or convert the Hugging Face checkpoint)"
        ));
    }
    let mut weights = parts.weights;
    let mut config = match parts.config {
        Some(c) => c,
        None => hf_config(&parts.args),
    };
    let dtype = opts.dtype.unwrap_or(Dtype::Float16);
    // Quantization of what is already packed, per module (GGUF mixes 4- and 8-bit).
    let mut packed: BTreeMap<String, QuantConfig> = BTreeMap::new();
    for p in quantized_prefixes(&weights) {
        packed.insert(p.clone(), weights.quant_of(&p)?);
    }
    if opts.dequantize {
        for (p, q) in &packed {
            let get = |s: &str| weights.get(&format!("{p}.{s}"));
            let w = crate::kernels::dequantize(
                &get("weight")?,
                &get("scales")?,
                &get("biases")?,
                q.group_size,
                q.bits,
                dtype,
            )?;
            weights.arrays.remove(&format!("{p}.scales"));
            weights.arrays.remove(&format!("{p}.biases"));
            weights.arrays.insert(format!("{p}.weight"), w);
        }
        packed.clear();
    }
    if let Some(q) = opts.quantize {
        // Matrices of linear layers and embeddings; norms and biases stay floats.
        let names: Vec<String> = weights
            .arrays
            .iter()
            .filter(|(k, a)| {
                k.ends_with(".weight")
                    && a.ndim() == 2
                    && a.dtype().is_float()
                    && a.shape()[1] % q.group_size == 0
                    && !packed.contains_key(k.trim_end_matches(".weight"))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in names {
            let p = k.trim_end_matches(".weight").to_string();
            let w = ops::astype(&weights.get(&k)?, dtype)?;
            let mut out = ops::quantized::quantize(
                &w,
                Some(q.group_size as i64),
                Some(q.bits as i64),
                "affine",
            )?;
            let biases = out
                .pop()
                .ok_or_else(|| model_err!("quantize returned nothing"))?;
            let scales = out
                .pop()
                .ok_or_else(|| model_err!("quantize returned nothing"))?;
            let wq = out
                .pop()
                .ok_or_else(|| model_err!("quantize returned nothing"))?;
            weights.arrays.insert(k, wq);
            weights.arrays.insert(format!("{p}.scales"), scales);
            weights.arrays.insert(format!("{p}.biases"), biases);
            packed.insert(p, q);
        }
    }
    // Floats to the requested dtype (norm weights included, as mlx-lm does).
    let float_names: Vec<String> = weights
        .arrays
        .iter()
        .filter(|(_, a)| a.dtype().is_float() && a.dtype() != dtype)
        .map(|(k, _)| k.clone())
        .collect();
    for k in float_names {
        let a = ops::astype(&weights.get(&k)?, dtype)?;
        weights.arrays.insert(k, a);
    }
    // The quantization entry mlx-lm reads: a default plus per-module exceptions.
    if let Some(obj) = config.as_object_mut() {
        obj.remove("quantization");
        obj.remove("quantization_config");
        if let Some((_, &default)) = most_common(&packed) {
            let mut q = json!({"group_size": default.group_size, "bits": default.bits});
            for (p, c) in &packed {
                if *c != default {
                    q[p] = json!({"group_size": c.group_size, "bits": c.bits});
                }
            }
            obj.insert("quantization".into(), q);
        }
    }
    std::fs::create_dir_all(out).map_err(io)?;
    let mut arrays: Vec<(String, Array)> = weights.arrays.into_iter().collect();
    arrays.sort_by(|a, b| a.0.cmp(&b.0));
    rmx_io::save_safetensors(
        out.join("model.safetensors"),
        &arrays,
        &[("format".into(), "mlx".into())],
    )?;
    let text = serde_json::to_string_pretty(&config).map_err(io)?;
    std::fs::write(out.join("config.json"), text).map_err(io)?;
    // The tokenizer as Hugging Face files, whichever form it came in.
    let tok = &parts.tokenizer;
    tok.inner
        .save(out.join("tokenizer.json"), false)
        .map_err(|e| LmError::Tokenizer(e.to_string()))?;
    let name = |id: Option<u32>| id.and_then(|i| tok.token_text(i));
    let tc = json!({
        "chat_template": tok.chat_template,
        "bos_token": name(tok.bos_id),
        "eos_token": name(tok.eos_ids.first().copied()),
        "add_bos_token": tok.add_bos,
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    std::fs::write(
        out.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&tc).map_err(io)?,
    )
    .map_err(io)?;
    Ok(())
}

fn most_common(m: &BTreeMap<String, QuantConfig>) -> Option<(usize, &QuantConfig)> {
    let mut counts: Vec<(usize, &QuantConfig)> = Vec::new();
    for c in m.values() {
        match counts.iter_mut().find(|(_, x)| *x == c) {
            Some(e) => e.0 += 1,
            None => counts.push((1, c)),
        }
    }
    counts.into_iter().max_by_key(|(n, _)| *n)
}
