//! Gemma 2 and Gemma 3 (text), after mlx-lm 0.28.4's `gemma2.py` and `gemma3_text.py`:
//! embeddings scaled by sqrt(hidden), RMSNorms scaling by (1 + w), a tanh-GELU gated MLP,
//! norms before and after both attention and MLP, attention scaled by
//! `query_pre_attn_scalar`, and local sliding-window layers between global ones.
//! Gemma 2 soft-caps the attention scores and the final logits (cap * tanh(x / cap)) and
//! always ties the output to the embeddings; Gemma 3 normalizes each head of q and k, gives
//! the local layers their own RoPE base and uses `lm_head` when the checkpoint has one.

use super::base::{Attention, Mlp};
use super::LanguageModel;
use crate::cache::{CacheKind, KvCache};
use crate::config::ModelArgs;
use crate::error::Result;
use crate::kernels;
use crate::layers::{Embedding, Linear, RmsNorm};
use crate::weights::Weights;
use rmx_core::ops::fast::{self, SdpaMask};
use rmx_core::{ops, Array};
use serde_json::{json, Value};

/// The config mlx-lm builds for `model_type` (gemma2, gemma3_text, or gemma3, whose text
/// model's settings sit in `text_config`): its defaults filled in, the fields it ignores
/// (`rope_scaling`; Gemma 3's soft-capping) dropped, and the layer pattern made explicit.
pub fn hf_config(model_type: &str, top: &Value) -> Value {
    let mut c = if model_type == "gemma3" {
        match &top["text_config"] {
            Value::Object(_) => top["text_config"].clone(),
            _ => json!({}),
        }
    } else {
        top.clone()
    };
    let obj = c.as_object_mut().expect("a JSON object");
    fn set_default(obj: &mut serde_json::Map<String, Value>, k: &str, v: Value) {
        if obj.get(k).is_none_or(Value::is_null) {
            obj.insert(k.to_string(), v);
        }
    }
    // Keys mlx-lm reads from the outer config of a multimodal checkpoint.
    for k in ["quantization", "eos_token_id"] {
        if !top[k].is_null() {
            set_default(obj, k, top[k].clone());
        }
    }
    match model_type {
        "gemma2" => {
            set_default(obj, "rope_theta", json!(10000.0));
            set_default(obj, "attn_logit_softcapping", json!(50.0));
            set_default(obj, "final_logit_softcapping", json!(30.0));
            set_default(obj, "query_pre_attn_scalar", json!(144.0));
            // Hugging Face's Gemma 2: even layers see a window of 4096, odd ones all.
            set_default(obj, "sliding_window", json!(4096));
            obj.insert("sliding_window_pattern".into(), json!(2));
            obj.insert("tie_word_embeddings".into(), json!(true));
        }
        _ => {
            if model_type == "gemma3" {
                let vocab = top["vocab_size"].as_u64().unwrap_or(262208);
                obj.insert("vocab_size".into(), json!(vocab));
                set_default(obj, "num_attention_heads", json!(8));
                set_default(obj, "num_key_value_heads", json!(4));
            }
            for (k, v) in [
                ("hidden_size", json!(1152)),
                ("num_hidden_layers", json!(26)),
                ("intermediate_size", json!(6912)),
                ("num_attention_heads", json!(4)),
                ("head_dim", json!(256)),
                ("rms_norm_eps", json!(1e-6)),
                ("vocab_size", json!(262144)),
                ("num_key_value_heads", json!(1)),
                ("rope_local_base_freq", json!(10000.0)),
                ("query_pre_attn_scalar", json!(256.0)),
                ("sliding_window", json!(512)),
                ("sliding_window_pattern", json!(6)),
            ] {
                set_default(obj, k, v);
            }
            // mlx-lm's global layers use `rope_global_base_freq` (default 1e6), never
            // `rope_theta`; it has no soft-capping, and `lm_head` decides the tying.
            let global = obj
                .get("rope_global_base_freq")
                .and_then(Value::as_f64)
                .unwrap_or(1_000_000.0);
            obj.insert("rope_theta".into(), json!(global));
            obj.remove("attn_logit_softcapping");
            obj.remove("final_logit_softcapping");
            obj.insert("tie_word_embeddings".into(), json!(false));
        }
    }
    obj.remove("rope_scaling");
    c
}

/// The Gemma settings of a GGUF file, as llama.cpp reads them: soft-caps and window from
/// the metadata, Gemma 2 alternating local and global layers, Gemma 3 five local layers per
/// global one with a local RoPE base of 10000, queries scaled by 1/sqrt(head_dim) except
/// in the 27B models (1/sqrt(hidden / heads)), and norms stored with their 1 added.
pub fn gguf_args(args: &mut ModelArgs, meta: &crate::metadata::Meta, arch: &str) {
    let k = |name: &str| format!("{arch}.{name}");
    let num = |name: &str| meta.opt_num(&k(name)).map(|v| v as f32);
    let gemma2 = arch == "gemma2";
    args.norms_plus_one = true;
    args.norm_eps = num("attention.layer_norm_rms_epsilon").unwrap_or(1e-6);
    args.rope_theta = num("rope.freq_base").unwrap_or(if gemma2 { 10000.0 } else { 1e6 });
    args.rope_linear_factor = 1.0; // mlx-lm applies no RoPE scaling to Gemma
    args.sliding_window = meta
        .opt_num(&k("attention.sliding_window"))
        .map(|v| v as usize);
    let pattern = meta.opt_num(&k("attention.sliding_window_pattern"));
    args.sliding_window_pattern = Some(pattern.map_or(if gemma2 { 2 } else { 6 }, |v| v as usize));
    let big = args.num_layers == if gemma2 { 46 } else { 62 };
    args.query_pre_attn_scalar = Some(match big {
        true => (args.hidden_size / args.num_heads.max(1)) as f32,
        false => args.head_dim as f32,
    });
    if gemma2 {
        args.attn_logit_softcap = Some(num("attn_logit_softcapping").unwrap_or(50.0));
        args.final_logit_softcap = Some(num("final_logit_softcapping").unwrap_or(30.0));
    } else {
        args.rope_local_base = Some(10000.0);
    }
}

/// llama.cpp's names for the Gemma norms, after `weights::hf_name` mapped them the Llama way
/// (its `ffn_norm` is Gemma's norm before the MLP).
fn gguf_norm_names(w: &mut Weights) {
    let renames = [
        (".post_attention_layernorm.", ".pre_feedforward_layernorm."),
        (".post_attention_norm.", ".post_attention_layernorm."),
        (".post_ffw_norm.", ".post_feedforward_layernorm."),
    ];
    w.arrays = std::mem::take(&mut w.arrays)
        .into_iter()
        .map(|(k, v)| {
            let k = renames
                .iter()
                .find(|(from, _)| k.contains(from))
                .map_or(k.clone(), |(from, to)| k.replace(from, to));
            (k, v)
        })
        .collect();
}

struct Block {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    pre_feedforward_layernorm: RmsNorm,
    post_feedforward_layernorm: RmsNorm,
    mlp: Mlp,
    /// Local layers attend to the last `window` positions only.
    window: Option<usize>,
}

pub struct Gemma {
    args: ModelArgs,
    embed_tokens: Embedding,
    embed_scale: f32,
    layers: Vec<Block>,
    norm: RmsNorm,
    lm_head: Option<Linear>,
}

/// Whether layer `i` is a local (sliding-window) one: all but every `pattern`-th.
fn is_sliding(args: &ModelArgs, i: usize) -> bool {
    match (args.sliding_window, args.sliding_window_pattern) {
        (Some(_), Some(p)) if p > 0 => !(i + 1).is_multiple_of(p),
        _ => false,
    }
}

/// A checkpoint of mlx-lm's `gemma3` (multimodal) model keeps the text model under
/// `language_model.`: strip that and drop the vision tower.
fn text_weights(w: &mut Weights) {
    const PREFIX: &str = "language_model.";
    if !w.arrays.keys().any(|k| k.starts_with(PREFIX)) {
        return;
    }
    let strip = |k: String| -> Option<String> { k.strip_prefix(PREFIX).map(str::to_string) };
    w.arrays = std::mem::take(&mut w.arrays)
        .into_iter()
        .filter_map(|(k, v)| strip(k).map(|k| (k, v)))
        .collect();
    w.quant_overrides = std::mem::take(&mut w.quant_overrides)
        .into_iter()
        .filter_map(|(k, v)| strip(k).map(|k| (k, v)))
        .collect();
}

impl Gemma {
    pub fn load(mut w: Weights, args: ModelArgs) -> Result<Gemma> {
        text_weights(&mut w);
        if args.norms_plus_one {
            gguf_norm_names(&mut w);
        }
        let gemma3 = args.arch != "gemma2";
        let eps = args.norm_eps;
        let norm = |p: &str| match args.norms_plus_one {
            true => RmsNorm::load(&w, p, eps),
            false => RmsNorm::load_offset(&w, p, eps),
        };
        let scale = 1.0 / args.query_pre_attn_scalar.unwrap_or(256.0).sqrt();
        let layers = (0..args.num_layers)
            .map(|i| {
                let p = format!("model.layers.{i}");
                let sliding = is_sliding(&args, i);
                let mut self_attn = Attention::load(&w, &format!("{p}.self_attn"), &args)?;
                self_attn.scale = scale;
                if gemma3 {
                    self_attn.q_norm = Some(norm(&format!("{p}.self_attn.q_norm"))?);
                    self_attn.k_norm = Some(norm(&format!("{p}.self_attn.k_norm"))?);
                    if sliding {
                        let base = args.rope_local_base.unwrap_or(10000.0);
                        let inv = super::base::rope_inv_freq(&args, self_attn.rope_dims, base);
                        self_attn.rope_freqs = kernels::rope_freqs(&inv)?;
                    }
                }
                Ok(Block {
                    input_layernorm: norm(&format!("{p}.input_layernorm"))?,
                    self_attn,
                    post_attention_layernorm: norm(&format!("{p}.post_attention_layernorm"))?,
                    pre_feedforward_layernorm: norm(&format!("{p}.pre_feedforward_layernorm"))?,
                    post_feedforward_layernorm: norm(&format!("{p}.post_feedforward_layernorm"))?,
                    mlp: Mlp::load(&w, &format!("{p}.mlp"), true)?,
                    window: if sliding { args.sliding_window } else { None },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let hidden_sqrt = (args.hidden_size as f64).sqrt();
        // Gemma 3 rounds the scale to bfloat16 first (`mx.array(..., mx.bfloat16)`).
        let embed_scale = if gemma3 {
            half::bf16::from_f64(hidden_sqrt).to_f32()
        } else {
            hidden_sqrt as f32
        };
        let lm_head = match gemma3 && w.opt("lm_head.weight").is_some() {
            true => Some(Linear::load(&w, "lm_head")?),
            false => None,
        };
        Ok(Gemma {
            embed_tokens: Embedding::load(&w, "model.embed_tokens")?,
            embed_scale,
            norm: norm("model.norm")?,
            layers,
            lm_head,
            args,
        })
    }
}

/// The mask of queries at positions `q_pos` over keys at `k_pos`: causal, and within
/// `window` positions when given (mlx-lm's `create_causal_mask`). None when nothing is
/// masked.
fn mask(q_pos: &[usize], k_pos: &[usize], window: Option<usize>) -> Result<Option<Array>> {
    let mut any = false;
    let mut m = Vec::with_capacity(q_pos.len() * k_pos.len());
    for &q in q_pos {
        for &k in k_pos {
            let ok = k <= q && window.is_none_or(|w| q < k + w);
            any |= !ok;
            m.push(ok);
        }
    }
    Ok(match any {
        true => Some(Array::from_vec(m, &[q_pos.len(), k_pos.len()])?),
        false => None,
    })
}

/// cap * tanh(x / cap).
fn softcap(x: &Array, cap: f32) -> Result<Array> {
    let c = Array::scalar(cap as f64);
    let c = ops::astype(&c, x.dtype())?;
    Ok(ops::multiply(&ops::tanh(&ops::divide(x, &c)?)?, &c)?)
}

/// Gemma 2's attention: scores soft-capped before masking, then a softmax (written out,
/// as mlx-lm does, since the fused kernel has no cap). q (B, Hq, L, D), k/v (B, Hkv, S, D).
fn capped_attention(
    q: &Array,
    k: &Array,
    v: &Array,
    scale: f32,
    cap: f32,
    mask: Option<&Array>,
) -> Result<Array> {
    let (b, hq, l, d) = (q.shape()[0], q.shape()[1], q.shape()[2], q.shape()[3]);
    let hkv = k.shape()[1];
    let s = |v: usize| v as i64;
    let q = ops::multiply(q, &ops::astype(&Array::scalar(scale as f64), q.dtype())?)?;
    // Grouped heads: (B, Hkv, repeats, L, D) against (B, Hkv, 1, S, D).
    let q = ops::reshape(&q, &[s(b), s(hkv), s(hq / hkv), s(l), s(d)])?;
    let k = ops::expand_dims(k, &[2])?;
    let v = ops::expand_dims(v, &[2])?;
    let scores = ops::matmul(&q, &ops::swapaxes(&k, -1, -2)?)?;
    let mut scores = softcap(&scores, cap)?;
    if let Some(m) = mask {
        let lowest = ops::astype(&Array::scalar(f32::MIN as f64), scores.dtype())?;
        scores = ops::where_(m, &scores, &lowest)?;
    }
    let p = ops::softmax(&scores, Some(&[-1]), true)?;
    let o = ops::matmul(&p, &v)?;
    Ok(ops::reshape(&o, &[s(b), s(hq), s(l), s(d)])?)
}

impl LanguageModel for Gemma {
    fn args(&self) -> &ModelArgs {
        &self.args
    }

    /// Local layers keep only their window of keys (mlx-lm's `RotatingKVCache`), unless a
    /// quantized or explicitly bounded cache is asked for.
    fn new_cache_of(&self, kind: CacheKind) -> Vec<KvCache> {
        self.layers
            .iter()
            .map(|layer| match (kind, layer.window) {
                (CacheKind::Standard, Some(w)) => KvCache::new(CacheKind::Rotating {
                    max_size: w,
                    keep: 0,
                }),
                _ => KvCache::new(kind),
            })
            .collect()
    }

    fn forward(&self, tokens: &Array, cache: &mut [KvCache]) -> Result<Array> {
        let h = self
            .embed_tokens
            .forward(tokens, crate::layers::compute_dtype())?;
        let scale = ops::astype(
            &Array::scalar(self.embed_scale as f64),
            crate::layers::compute_dtype(),
        )?;
        let mut h = ops::multiply(&h, &scale)?;
        let l = tokens.shape()[1];
        // Layers of one kind share a mask: built once per (window, key positions).
        let mut masks: Vec<(Option<usize>, Vec<usize>, Option<Array>)> = Vec::new();
        for (layer, c) in self.layers.iter().zip(cache.iter_mut()) {
            let att = &layer.self_attn;
            let (q, keys, values) = att.project(&layer.input_layernorm.forward(&h)?, c)?;
            let k_pos = c.key_positions(keys.shape()[2]);
            let known = masks
                .iter()
                .find(|(w, p, _)| *w == layer.window && *p == k_pos);
            let mask = match known {
                Some((_, _, m)) => m.clone(),
                None => {
                    let q_pos: Vec<usize> = (c.offset - l..c.offset).collect();
                    let m = mask(&q_pos, &k_pos, layer.window)?;
                    masks.push((layer.window, k_pos, m.clone()));
                    m
                }
            };
            let o = match self.args.attn_logit_softcap {
                Some(cap) => capped_attention(&q, &keys, &values, att.scale, cap, mask.as_ref())?,
                None => {
                    let m = mask.as_ref().map_or(SdpaMask::None, SdpaMask::Array);
                    fast::scaled_dot_product_attention(&q, &keys, &values, att.scale, m, None)?
                }
            };
            let r = att.output(&o)?;
            h = ops::add(&h, &layer.post_attention_layernorm.forward(&r)?)?;
            let r = layer
                .mlp
                .forward(&layer.pre_feedforward_layernorm.forward(&h)?)?;
            h = ops::add(&h, &layer.post_feedforward_layernorm.forward(&r)?)?;
        }
        let h = self.norm.forward(&h)?;
        let logits = match &self.lm_head {
            Some(head) => head.forward(&h)?,
            None => self.embed_tokens.as_linear(&h)?,
        };
        match self.args.final_logit_softcap {
            Some(cap) => softcap(&logits, cap),
            None => Ok(logits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_mask_keeps_the_last_window_positions() {
        let m = mask(&[3, 4], &[0, 1, 2, 3, 4], Some(2)).unwrap().unwrap();
        let v = m.to_vec::<bool>().unwrap();
        assert_eq!(
            v,
            [false, false, true, true, false, false, false, false, true, true]
        );
        assert!(mask(&[4], &[0, 1, 2, 3, 4], None).unwrap().is_none());
    }

    #[test]
    fn gemma2_layers_alternate_local_and_global() {
        let c = hf_config("gemma2", &json!({"sliding_window": 8}));
        assert_eq!(c["sliding_window_pattern"], 2);
        assert_eq!(c["final_logit_softcapping"], 30.0);
        let c = hf_config(
            "gemma3",
            &json!({"text_config": {"hidden_size": 8}, "vocab_size": 9}),
        );
        assert_eq!(c["vocab_size"], 9);
        assert_eq!(c["num_attention_heads"], 8);
        assert_eq!(c["rope_theta"], 1_000_000.0);
    }
}
