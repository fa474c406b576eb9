//! The generation loop: prompt processing in chunks, then one token at a time through the
//! KV cache, sampling, stop conditions and streamed text.

use crate::cache::KvCache;
use crate::error::Result;
use crate::invalid;
use crate::models::LanguageModel;
use crate::sample::{Sampler, SamplerConfig};
use crate::static_decode::{self, StaticDecoder};
use crate::tokenizer::{StreamingDetokenizer, Tokenizer};
use rmx_core::{ops, Array, Device, Dtype};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    pub sampler: SamplerConfig,
    /// Prompt tokens per forward pass while processing the prompt.
    pub prefill_step: usize,
    /// Generation stops when the text contains one of these (it is cut before it).
    pub stop: Vec<String>,
    /// Keep going past end-of-sequence tokens (benchmarks).
    pub ignore_eos: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            sampler: SamplerConfig::default(),
            prefill_step: 512,
            stop: vec![],
            ignore_eos: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FinishReason {
    Stop,
    Length,
}

#[derive(Clone, Debug)]
pub struct Generation {
    pub tokens: Vec<u32>,
    pub text: String,
    pub finish: FinishReason,
    pub prompt_tokens: usize,
    pub prompt_tps: f64,
    pub generation_tps: f64,
    pub peak_memory_bytes: usize,
}

/// Logits of the last position of `tokens` after running them through the model.
pub fn forward_last(
    model: &dyn LanguageModel,
    tokens: &[u32],
    cache: &mut [KvCache],
) -> Result<Vec<f32>> {
    let last = last_logits(model, tokens, cache)?;
    eval_with_cache(&last, cache)?;
    Ok(last.to_vec::<f32>()?)
}

/// The float32 logits of the last position of `tokens`, lazy (the graph of one step).
pub fn last_logits(
    model: &dyn LanguageModel,
    tokens: &[u32],
    cache: &mut [KvCache],
) -> Result<Array> {
    let ids = Array::from_slice(tokens, &[1, tokens.len()])?;
    Ok(ops::astype(
        &last_position(model, &ids, cache)?,
        Dtype::Float32,
    )?)
}

/// The logits (`[1, vocab]`) of the last position of `ids` (`[1, L]`), lazy.
fn last_position(model: &dyn LanguageModel, ids: &Array, cache: &mut [KvCache]) -> Result<Array> {
    let logits = model.forward(ids, cache)?;
    let (l, v) = (logits.shape()[1] as i64, logits.shape()[2] as i64);
    let last = ops::slice(&logits, &[0, l - 1, 0], &[1, l, v], None)?;
    Ok(ops::reshape(&last, &[1, v])?)
}

/// `out` and the caches' new state: what a step evaluates.
pub(crate) fn with_cache_state(out: &Array, cache: &[KvCache]) -> Vec<Array> {
    let mut state: Vec<Array> = cache.iter().flat_map(|c| c.state()).collect();
    state.push(out.clone());
    state
}

/// Evaluates `out` and the caches' new state.
pub fn eval_with_cache(out: &Array, cache: &[KvCache]) -> Result<()> {
    Ok(rmx_core::eval(&with_cache_state(out, cache))?)
}

/// The greedy next token after `ids` (`[1, L]` token ids, or a lazy `[1]` token from the
/// previous step): a lazy `[1]` uint32 array computed where the model runs, so only four
/// bytes come back to the host. Ties go to the lowest id, as `sample::argmax`.
pub fn forward_argmax(
    model: &dyn LanguageModel,
    ids: &Array,
    cache: &mut [KvCache],
) -> Result<Array> {
    let last = last_position(model, &ops::reshape(ids, &[1, -1])?, cache)?;
    Ok(ops::argmax(&last, Some(1), false)?)
}

/// Queues the computation of `token` and of the caches' new state.
fn queue(token: &Array, cache: &[KvCache]) -> Result<()> {
    Ok(rmx_core::async_eval(&with_cache_state(token, cache))?)
}

/// Whether greedy decoding runs one step ahead (see `generate`): on a GPU; on the CPU the
/// step ahead competes with the running step for the same cores and costs more than it
/// saves (SmolLM2-135M on two cores: 104 against 141 tok/s). `RMX_LM_STEP_AHEAD=1` or `0`
/// forces the choice (the tests run the path on the CPU).
fn step_ahead() -> bool {
    match std::env::var("RMX_LM_STEP_AHEAD").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => rmx_core::device::default_device() != Device::CPU,
    }
}

/// Runs the prompt through the model (in chunks) and returns the last position's logits.
pub fn prefill(
    model: &dyn LanguageModel,
    prompt: &[u32],
    cache: &mut [KvCache],
    step: usize,
) -> Result<Vec<f32>> {
    if prompt.is_empty() {
        return Err(invalid!("the prompt is empty"));
    }
    let step = step.max(1);
    let mut logits = Vec::new();
    for chunk in prompt.chunks(step) {
        logits = forward_last(model, chunk, cache)?;
    }
    Ok(logits)
}

/// Generates from `prompt` (token ids), continuing `cache` (pass a fresh one to start),
/// calling `on_text` with each new piece of text; `on_text` returning false stops
/// generation (a client went away).
pub fn generate(
    model: &dyn LanguageModel,
    tokenizer: &Tokenizer,
    prompt: &[u32],
    cache: &mut [KvCache],
    opts: &GenerateOptions,
    mut on_text: impl FnMut(&str) -> bool,
) -> Result<Generation> {
    let rotating = matches!(
        cache.first().map(|c| c.kind()),
        Some(crate::cache::CacheKind::Rotating { .. })
    );
    // A rotating cache bounds memory instead: positions may run past the context.
    let context = if rotating {
        usize::MAX
    } else {
        model.args().max_position_embeddings
    };
    let used = cache.first().map_or(0, |c| c.offset);
    if used + prompt.len() > context {
        return Err(invalid!(
            "the prompt has {} tokens (plus {used} in the cache), more than the model's context of {context}",
            prompt.len()
        ));
    }
    let mut sampler = Sampler::new(opts.sampler.clone())?;
    let total = (used + prompt.len() + opts.max_tokens).min(context);
    for c in cache.iter_mut() {
        c.reserve(total)?;
    }
    let t0 = Instant::now();
    let mut logits = prefill(model, prompt, cache, opts.prefill_step)?;
    let prompt_time = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut history: Vec<u32> = prompt.to_vec();
    let mut tokens = Vec::new();
    let mut detok = StreamingDetokenizer::new(tokenizer);
    let mut finish = FinishReason::Length;
    let mut text = String::new();
    // Greedy decoding one step ahead picks tokens where the model runs: the graph of the
    // step that consumes token t is built from t's lazy value before t is read, and queued
    // once it is, so the device computes it while the host handles t and builds the next
    // graph. (A step built for a token that ends generation is left unread; the cache
    // holds it, as mlx-lm's does, and callers that reuse the cache rewind.)
    let ahead_greedy = sampler.is_greedy() && step_ahead();
    // Greedy decoding on the GPU replays one captured step per token (static_decode.rs).
    let mut fixed = if sampler.is_greedy() && static_decode::enabled() && opts.max_tokens > 1 {
        let total = (used + prompt.len() + opts.max_tokens).min(context);
        StaticDecoder::new(model, cache, total)?
    } else {
        None
    };
    let mut pending: Option<Array> = None;
    let mut ready: Option<u32> = None;
    while tokens.len() < opts.max_tokens {
        let (next, ahead) = match (ready.take(), pending.take()) {
            (Some(t), _) => (t, None),
            (None, Some(y)) => {
                let more = tokens.len() + 1 < opts.max_tokens && used + history.len() + 1 < context;
                let ahead = if more {
                    Some(forward_argmax(model, &y, cache)?)
                } else {
                    None
                };
                let t = y.to_vec::<u32>()?[0];
                if let Some(a) = &ahead {
                    queue(a, cache)?;
                }
                (t, ahead)
            }
            (None, None) => (sampler.sample(&mut logits, &history), None),
        };
        if !opts.ignore_eos && tokenizer.eos_ids.contains(&next) {
            finish = FinishReason::Stop;
            break;
        }
        tokens.push(next);
        history.push(next);
        let piece = detok.push(next)?;
        if !piece.is_empty() {
            let before = text.len();
            text.push_str(&piece);
            if let Some(cut) = find_stop(&text, &opts.stop, before) {
                on_text(&text[before..cut.max(before)]);
                text.truncate(cut);
                finish = FinishReason::Stop;
                break;
            }
            if !on_text(&piece) {
                finish = FinishReason::Stop;
                break;
            }
        }
        if tokens.len() >= opts.max_tokens || used + history.len() >= context {
            break;
        }
        if let Some(d) = fixed.as_mut() {
            ready = Some(d.step(model, cache, next)?);
            continue;
        }
        pending = match ahead {
            Some(a) => Some(a),
            None if ahead_greedy => {
                let y = forward_argmax(model, &Array::from_slice(&[next], &[1, 1])?, cache)?;
                queue(&y, cache)?;
                Some(y)
            }
            None => {
                logits = forward_last(model, &[next], cache)?;
                None
            }
        };
    }
    if finish == FinishReason::Length {
        let rest = detok.finish()?;
        text.push_str(&rest);
        on_text(&rest);
    }
    let gen_time = t1.elapsed().as_secs_f64();
    Ok(Generation {
        prompt_tokens: prompt.len(),
        prompt_tps: prompt.len() as f64 / prompt_time.max(1e-9),
        generation_tps: tokens.len() as f64 / gen_time.max(1e-9),
        peak_memory_bytes: rmx_core::allocator::get_peak_memory(),
        tokens,
        text,
        finish,
    })
}

/// The byte offset where the first stop string starts, searching only text that could
/// contain a stop string completed by the newest piece.
fn find_stop(text: &str, stops: &[String], new_from: usize) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            let mut from = new_from.saturating_sub(s.len());
            while !text.is_char_boundary(from) {
                from -= 1;
            }
            text[from..].find(s.as_str()).map(|i| from + i)
        })
        .min()
}
