//! Model hyper-parameters, read from a Hugging Face `config.json` or from GGUF metadata
//! into one shape every model family uses.

use crate::error::Result;
use crate::metadata::Meta;
use crate::model_err;
use serde_json::Value;

/// How RoPE pairs the dimensions of a head.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RopeStyle {
    /// Adjacent pairs (x0, x1), (x2, x3)...: MLX's `traditional=True`. GGUF Llama weights
    /// need it because llama.cpp's converter permutes the Q/K rows.
    Adjacent,
    /// The two halves of the head, (x0, x_{d/2})...: MLX's `traditional=False`, the
    /// Hugging Face layout.
    HalfSplit,
}

/// Weight quantization in MLX's affine format (`mlx-lm`'s `"quantization"` entry).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantConfig {
    pub group_size: usize,
    pub bits: usize,
}

#[derive(Clone, Debug)]
pub struct ModelArgs {
    /// The family: one of `SUPPORTED`.
    pub arch: String,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub norm_eps: f32,
    pub rope_theta: f32,
    pub rope_style: RopeStyle,
    /// Llama-3 style frequency scaling: (factor, low_freq_factor, high_freq_factor, original_max_position).
    pub rope_llama3: Option<(f32, f32, f32, f32)>,
    /// Linear RoPE scaling (positions divided by this).
    pub rope_linear_factor: f32,
    pub tie_word_embeddings: bool,
    /// The fraction of each head's features RoPE rotates (Phi-3 variants use < 1).
    pub partial_rotary_factor: f32,
    pub max_position_embeddings: usize,
    pub attention_bias: bool,
    /// Qwen3: RMSNorm of each head of q and k before RoPE.
    pub qk_norm: bool,
    /// Gemma: logits soft-capping, embeddings scaled by sqrt(hidden), norms with (1 + w).
    pub final_logit_softcap: Option<f32>,
    pub attn_logit_softcap: Option<f32>,
    pub query_pre_attn_scalar: Option<f32>,
    pub sliding_window: Option<usize>,
    /// Gemma 3: every n-th layer is global, the others use the sliding window.
    pub sliding_window_pattern: Option<usize>,
    pub rope_local_base: Option<f32>,
    /// Gemma from GGUF: llama.cpp's converter already added 1 to the norm weights.
    pub norms_plus_one: bool,
    pub quantization: Option<QuantConfig>,
    pub eos_token_ids: Vec<u32>,
}

fn get_usize(c: &Value, key: &str) -> Option<usize> {
    c.get(key).and_then(Value::as_u64).map(|v| v as usize)
}

fn get_f32(c: &Value, key: &str) -> Option<f32> {
    c.get(key).and_then(Value::as_f64).map(|v| v as f32)
}

fn require(c: &Value, key: &str) -> Result<usize> {
    get_usize(c, key).ok_or_else(|| model_err!("config.json: '{key}' is missing or not a number"))
}

pub const SUPPORTED: &[&str] = &[
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "phi3",
    "gemma2",
    "gemma3_text",
    "gemma3",
];

impl ModelArgs {
    /// From a Hugging Face / mlx-lm `config.json`.
    pub fn from_hf_config(c: &Value) -> Result<ModelArgs> {
        let arch = c["model_type"]
            .as_str()
            .ok_or_else(|| model_err!("config.json: 'model_type' is missing"))?
            .to_string();
        if !SUPPORTED.contains(&arch.as_str()) {
            return Err(model_err!(
                "unsupported architecture '{arch}'; supported: {}",
                SUPPORTED.join(", ")
            ));
        }
        // Gemma: mlx-lm's defaults; Gemma 3 multimodal configs keep the text model's
        // settings in "text_config" (only the text model is run).
        let gemma_config;
        let c = if arch.starts_with("gemma") {
            gemma_config = crate::models::gemma::hf_config(&arch, c);
            &gemma_config
        } else {
            c
        };
        let arch = match arch.as_str() {
            "gemma3" => "gemma3_text".to_string(),
            _ => arch,
        };
        let hidden_size = require(c, "hidden_size")?;
        let num_heads = require(c, "num_attention_heads")?;
        let head_dim = get_usize(c, "head_dim").unwrap_or(hidden_size / num_heads.max(1));
        let rope = &c["rope_scaling"];
        let rope_type = rope["rope_type"].as_str().or(rope["type"].as_str());
        let rope_llama3 = (rope_type == Some("llama3")).then(|| {
            (
                get_f32(rope, "factor").unwrap_or(1.0),
                get_f32(rope, "low_freq_factor").unwrap_or(1.0),
                get_f32(rope, "high_freq_factor").unwrap_or(4.0),
                get_f32(rope, "original_max_position_embeddings").unwrap_or(8192.0),
            )
        });
        let rope_linear_factor = if rope_type == Some("linear") {
            get_f32(rope, "factor").unwrap_or(1.0)
        } else {
            1.0
        };
        let quantization = c.get("quantization").and_then(|q| {
            Some(QuantConfig {
                group_size: get_usize(q, "group_size")?,
                bits: get_usize(q, "bits")?,
            })
        });
        let eos_token_ids = match &c["eos_token_id"] {
            Value::Number(n) => n.as_u64().map(|v| vec![v as u32]).unwrap_or_default(),
            Value::Array(v) => v
                .iter()
                .filter_map(Value::as_u64)
                .map(|v| v as u32)
                .collect(),
            _ => vec![],
        };
        let gemma = arch.starts_with("gemma");
        Ok(ModelArgs {
            hidden_size,
            num_layers: require(c, "num_hidden_layers")?,
            num_heads,
            num_kv_heads: get_usize(c, "num_key_value_heads").unwrap_or(num_heads),
            head_dim,
            intermediate_size: require(c, "intermediate_size")?,
            vocab_size: require(c, "vocab_size")?,
            norm_eps: get_f32(c, "rms_norm_eps").unwrap_or(1e-6),
            rope_theta: get_f32(c, "rope_theta").unwrap_or(10000.0),
            rope_style: if c["rope_traditional"].as_bool() == Some(true) {
                RopeStyle::Adjacent
            } else {
                RopeStyle::HalfSplit
            },
            rope_llama3,
            rope_linear_factor,
            tie_word_embeddings: c["tie_word_embeddings"].as_bool().unwrap_or(gemma),
            partial_rotary_factor: get_f32(c, "partial_rotary_factor").unwrap_or(1.0),
            max_position_embeddings: get_usize(c, "max_position_embeddings").unwrap_or(4096),
            attention_bias: c["attention_bias"].as_bool().unwrap_or(arch == "qwen2"),
            qk_norm: arch == "qwen3" || arch == "gemma3_text",
            final_logit_softcap: get_f32(c, "final_logit_softcapping"),
            attn_logit_softcap: get_f32(c, "attn_logit_softcapping"),
            query_pre_attn_scalar: get_f32(c, "query_pre_attn_scalar"),
            sliding_window: get_usize(c, "sliding_window"),
            sliding_window_pattern: get_usize(c, "sliding_window_pattern"),
            rope_local_base: get_f32(c, "rope_local_base_freq"),
            norms_plus_one: false,
            quantization,
            eos_token_ids,
            arch,
        })
    }

    /// From GGUF metadata (`general.architecture` and its `<arch>.*` keys).
    pub fn from_gguf(meta: &Meta) -> Result<ModelArgs> {
        let arch = meta.str("general.architecture")?.to_string();
        let (family, style) = match arch.as_str() {
            "llama" => ("llama", RopeStyle::Adjacent),
            "qwen2" => ("qwen2", RopeStyle::HalfSplit),
            "qwen3" => ("qwen3", RopeStyle::HalfSplit),
            "gemma2" => ("gemma2", RopeStyle::HalfSplit),
            "gemma3" => ("gemma3_text", RopeStyle::HalfSplit),
            other => {
                return Err(model_err!(
                    "unsupported GGUF architecture '{other}'; supported in GGUF: llama, qwen2, qwen3, gemma2, gemma3 (other families load from Hugging Face or MLX folders)"
                ))
            }
        };
        let k = |name: &str| format!("{arch}.{name}");
        let hidden_size = meta.usize(&k("embedding_length"))?;
        let num_heads = meta.usize(&k("attention.head_count"))?;
        let vocab_size = match meta.usize(&k("vocab_size")) {
            Ok(v) => v,
            Err(_) => meta.strs("tokenizer.ggml.tokens")?.len(),
        };
        let mut args = ModelArgs {
            arch: family.to_string(),
            hidden_size,
            num_layers: meta.usize(&k("block_count"))?,
            num_heads,
            num_kv_heads: meta
                .usize(&k("attention.head_count_kv"))
                .unwrap_or(num_heads),
            head_dim: meta
                .usize(&k("attention.key_length"))
                .unwrap_or(hidden_size / num_heads.max(1)),
            intermediate_size: meta.usize(&k("feed_forward_length"))?,
            vocab_size,
            norm_eps: meta
                .num(&k("attention.layer_norm_rms_epsilon"))
                .unwrap_or(1e-5) as f32,
            rope_theta: meta.num(&k("rope.freq_base")).unwrap_or(10000.0) as f32,
            rope_style: style,
            rope_llama3: None,
            rope_linear_factor: meta
                .num(&k("rope.scaling.factor"))
                .ok()
                .filter(|_| meta.opt_str(&k("rope.scaling.type")) == Some("linear"))
                .unwrap_or(1.0) as f32,
            tie_word_embeddings: false, // decided by the presence of output.weight
            partial_rotary_factor: 1.0,
            max_position_embeddings: meta.usize(&k("context_length")).unwrap_or(4096),
            attention_bias: family == "qwen2",
            qk_norm: family == "qwen3",
            final_logit_softcap: None,
            attn_logit_softcap: None,
            query_pre_attn_scalar: None,
            sliding_window: None,
            sliding_window_pattern: None,
            rope_local_base: None,
            norms_plus_one: false,
            quantization: None,
            eos_token_ids: vec![],
        };
        if family.starts_with("gemma") {
            crate::models::gemma::gguf_args(&mut args, meta, &arch);
        }
        Ok(args)
    }
}
