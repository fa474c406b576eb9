//! Llama 2/3, SmolLM2, TinyLlama, Mistral, Qwen2/2.5 (biases on q/k/v) and Qwen3 (q/k
//! norms): pre-norm decoder blocks of attention and a SiLU-gated MLP.

use super::base::{Attention, Mlp};
use super::LanguageModel;
use crate::cache::KvCache;
use crate::config::ModelArgs;
use crate::error::Result;
use crate::kernels;
use crate::layers::{Embedding, Linear, RmsNorm};
use crate::weights::Weights;
use rmx_core::Array;

struct Block {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

pub struct Llama {
    args: ModelArgs,
    embed_tokens: Embedding,
    layers: Vec<Block>,
    norm: RmsNorm,
    lm_head: Option<Linear>,
}

impl Llama {
    pub fn load(w: &Weights, args: ModelArgs) -> Result<Llama> {
        let layers = (0..args.num_layers)
            .map(|i| {
                let p = format!("model.layers.{i}");
                Ok(Block {
                    input_layernorm: RmsNorm::load(
                        w,
                        &format!("{p}.input_layernorm"),
                        args.norm_eps,
                    )?,
                    self_attn: Attention::load(w, &format!("{p}.self_attn"), &args)?,
                    post_attention_layernorm: RmsNorm::load(
                        w,
                        &format!("{p}.post_attention_layernorm"),
                        args.norm_eps,
                    )?,
                    mlp: Mlp::load(w, &format!("{p}.mlp"), false)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let lm_head = if args.tie_word_embeddings || w.opt("lm_head.weight").is_none() {
            None
        } else {
            Some(Linear::load(w, "lm_head")?)
        };
        Ok(Llama {
            embed_tokens: Embedding::load(w, "model.embed_tokens")?,
            norm: RmsNorm::load(w, "model.norm", args.norm_eps)?,
            layers,
            lm_head,
            args,
        })
    }
}

impl LanguageModel for Llama {
    fn args(&self) -> &ModelArgs {
        &self.args
    }
    fn static_decode(&self) -> bool {
        true
    }

    fn forward(&self, tokens: &Array, cache: &mut [KvCache]) -> Result<Array> {
        let mut h = self
            .embed_tokens
            .forward(tokens, crate::layers::compute_dtype())?;
        // each block's output is added to the residual stream by the next block's norm;
        // on a GPU the add, the norm and the block's first product are one kernel
        // (`forward_prenorm`, `fast::rms_norm_linear`)
        let mut mlp_out: Option<Array> = None;
        for (layer, c) in self.layers.iter().zip(cache.iter_mut()) {
            let (r, a) =
                layer
                    .self_attn
                    .forward_prenorm(&h, mlp_out.as_ref(), &layer.input_layernorm, c)?;
            let (r, m) =
                layer
                    .mlp
                    .forward_prenorm(&r, Some(&a), &layer.post_attention_layernorm)?;
            mlp_out = Some(m);
            h = r;
        }
        let head = match &self.lm_head {
            Some(head) => head,
            None => &self.embed_tokens.0,
        };
        if let Some((_, logits)) =
            kernels::rms_norm_linear(&h, mlp_out.as_ref(), &self.norm, head, false)?
        {
            return Ok(logits);
        }
        let (_, h) = self.norm.forward_residual(&h, mlp_out.as_ref())?;
        head.forward(&h)
    }
}
