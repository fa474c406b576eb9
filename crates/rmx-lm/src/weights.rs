//! Model weights by Hugging Face name, from a GGUF file or a Hugging Face / mlx-lm
//! folder of (sharded) safetensors. Arrays stay lazy: memory-mapped files are read only
//! when a tensor is used.

use crate::config::QuantConfig;
use crate::error::{LmError, Result};
use crate::model_err;
use rmx_core::Array;
use std::collections::HashMap;
use std::path::Path;

/// GGUF's packed formats (Q4_0, Q4_1, Q8_0) load as MLX's affine format with groups of 32.
pub const GGUF_GROUP_SIZE: usize = 32;

pub struct Weights {
    pub arrays: HashMap<String, Array>,
    /// The default quantization of packed weights.
    pub quant: Option<QuantConfig>,
    /// Per-module overrides (mlx-lm writes these for mixed-precision models).
    pub quant_overrides: HashMap<String, QuantConfig>,
}

/// llama.cpp's tensor names -> Hugging Face's, for the parts of a name before the suffix.
fn hf_name(gguf: &str) -> String {
    let (stem, suffix) = match gguf.rsplit_once('.') {
        Some((s, x)) if ["weight", "bias", "scales", "biases"].contains(&x) => (s, x),
        _ => (gguf, ""),
    };
    let mapped = if let Some(rest) = stem.strip_prefix("blk.") {
        let (layer, part) = rest.split_once('.').unwrap_or((rest, ""));
        let part = match part {
            "attn_norm" => "input_layernorm",
            "attn_q" => "self_attn.q_proj",
            "attn_k" => "self_attn.k_proj",
            "attn_v" => "self_attn.v_proj",
            "attn_output" => "self_attn.o_proj",
            "attn_q_norm" => "self_attn.q_norm",
            "attn_k_norm" => "self_attn.k_norm",
            "ffn_norm" => "post_attention_layernorm",
            "ffn_gate" => "mlp.gate_proj",
            "ffn_up" => "mlp.up_proj",
            "ffn_down" => "mlp.down_proj",
            other => other,
        };
        format!("model.layers.{layer}.{part}")
    } else {
        match stem {
            "token_embd" => "model.embed_tokens".into(),
            "output_norm" => "model.norm".into(),
            "output" => "lm_head".into(),
            other => other.into(),
        }
    };
    if suffix.is_empty() {
        mapped
    } else {
        format!("{mapped}.{suffix}")
    }
}

impl Weights {
    pub fn from_gguf(arrays: Vec<(String, Array)>) -> Weights {
        Weights {
            arrays: arrays.into_iter().map(|(k, v)| (hf_name(&k), v)).collect(),
            quant: Some(QuantConfig {
                group_size: GGUF_GROUP_SIZE,
                bits: 4,
            }),
            quant_overrides: HashMap::new(),
        }
    }

    /// Every `*.safetensors` file of a folder (the shards of one checkpoint).
    pub fn from_folder(dir: &Path, config: &serde_json::Value) -> Result<Weights> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| LmError::Io(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(model_err!("no .safetensors files in {}", dir.display()));
        }
        let mut arrays = HashMap::new();
        for f in &files {
            match rmx_io::load(f)? {
                rmx_io::Loaded::Arrays(v) => arrays.extend(v),
                rmx_io::Loaded::Array(_) => unreachable!("safetensors holds named arrays"),
            }
        }
        let q = &config["quantization"];
        let parse = |v: &serde_json::Value| -> Option<QuantConfig> {
            Some(QuantConfig {
                group_size: v.get("group_size")?.as_u64()? as usize,
                bits: v.get("bits")?.as_u64()? as usize,
            })
        };
        let mut quant_overrides = HashMap::new();
        if let Some(obj) = q.as_object() {
            for (k, v) in obj {
                if let Some(c) = parse(v) {
                    quant_overrides.insert(k.clone(), c);
                }
            }
        }
        Ok(Weights {
            arrays,
            quant: parse(q),
            quant_overrides,
        })
    }

    pub fn get(&self, name: &str) -> Result<Array> {
        self.arrays
            .get(name)
            .cloned()
            .ok_or_else(|| model_err!("weight '{name}' is missing from the checkpoint"))
    }

    pub fn opt(&self, name: &str) -> Option<Array> {
        self.arrays.get(name).cloned()
    }

    /// The quantization of module `prefix` when its weight is packed.
    pub fn quant_of(&self, prefix: &str) -> Result<QuantConfig> {
        let base = self
            .quant_overrides
            .get(prefix)
            .copied()
            .or(self.quant)
            .ok_or_else(|| {
                model_err!("'{prefix}' is quantized but the checkpoint has no quantization config")
            })?;
        // The bit width follows from the shapes: packed columns * 32 = in_features * bits.
        let w = self.get(&format!("{prefix}.weight"))?;
        let s = self.get(&format!("{prefix}.scales"))?;
        let in_features = s.shape().last().copied().unwrap_or(0) * base.group_size;
        let packed_bits = w.shape().last().copied().unwrap_or(0) * 32;
        if in_features == 0 || packed_bits % in_features != 0 {
            return Err(model_err!(
                "'{prefix}': packed weight {:?} and scales {:?} do not fit group size {}",
                w.shape(),
                s.shape(),
                base.group_size
            ));
        }
        Ok(QuantConfig {
            group_size: base.group_size,
            bits: packed_bits / in_features,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::hf_name;

    #[test]
    fn gguf_names_map_to_hugging_face_names() {
        assert_eq!(
            hf_name("blk.3.attn_q.scales"),
            "model.layers.3.self_attn.q_proj.scales"
        );
        assert_eq!(
            hf_name("blk.12.ffn_down.weight"),
            "model.layers.12.mlp.down_proj.weight"
        );
        assert_eq!(hf_name("token_embd.biases"), "model.embed_tokens.biases");
        assert_eq!(hf_name("output_norm.weight"), "model.norm.weight");
        assert_eq!(hf_name("output.weight"), "lm_head.weight");
    }
}
