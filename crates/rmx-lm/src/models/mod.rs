//! Model families behind one trait, and loading by architecture name.

pub mod base;
pub mod gemma;
pub mod llama;
pub mod phi3;

use crate::cache::{CacheKind, KvCache};
use crate::config::ModelArgs;
use crate::error::Result;
use crate::model_err;
use crate::weights::Weights;
use rmx_core::Array;

/// A causal language model: token ids (B, L) in, logits (B, L, vocab) out.
pub trait LanguageModel: Send + Sync {
    fn args(&self) -> &ModelArgs;
    fn forward(&self, tokens: &Array, cache: &mut [KvCache]) -> Result<Array>;
    /// Whether `forward` honours a cache's fixed-position step (`static_decode.rs`): RoPE
    /// at the cache's `rope_offset` and attention under its `fixed_mask`.
    fn static_decode(&self) -> bool {
        false
    }
    /// A fresh standard cache, one entry per layer.
    fn new_cache(&self) -> Vec<KvCache> {
        self.new_cache_of(CacheKind::Standard)
    }
    fn new_cache_of(&self, kind: CacheKind) -> Vec<KvCache> {
        (0..self.args().num_layers)
            .map(|_| KvCache::new(kind))
            .collect()
    }
}

/// Builds the model `args.arch` names from its weights.
pub fn build(weights: Weights, args: ModelArgs) -> Result<Box<dyn LanguageModel>> {
    match args.arch.as_str() {
        "phi3" => Ok(Box::new(phi3::load(weights, args)?)),
        "llama" | "mistral" | "qwen2" | "qwen3" => {
            Ok(Box::new(llama::Llama::load(&weights, args)?))
        }
        "gemma2" | "gemma3_text" => Ok(Box::new(gemma::Gemma::load(weights, args)?)),
        other => Err(model_err!(
            "unsupported architecture '{other}'; supported: {}",
            crate::config::SUPPORTED.join(", ")
        )),
    }
}
