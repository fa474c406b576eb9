//! `rmx-lm benchmark`: fixed prompt and generation lengths, repeated trials, a table.

use crate::error::Result;
use crate::generate::{generate, GenerateOptions};
use crate::loader::Loaded;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Debug)]
pub struct Trial {
    pub prompt_tps: f64,
    pub generation_tps: f64,
    pub peak_memory_bytes: usize,
}

/// Runs `trials` generations of `gen_tokens` tokens after a random `prompt_tokens`-token
/// prompt (fixed seed; end-of-sequence ignored so every trial does the same work).
pub fn run(
    l: &Loaded,
    prompt_tokens: usize,
    gen_tokens: usize,
    trials: usize,
) -> Result<Vec<Trial>> {
    let vocab = l
        .model
        .args()
        .vocab_size
        .min(l.tokenizer.vocab_size())
        .max(2) as u32;
    let mut rng = StdRng::seed_from_u64(0);
    let prompt: Vec<u32> = (0..prompt_tokens)
        .map(|_| rng.gen_range(0..vocab))
        .collect();
    let opts = GenerateOptions {
        max_tokens: gen_tokens,
        ignore_eos: true,
        ..Default::default()
    };
    let mut out = Vec::new();
    for _ in 0..trials {
        let mut cache = l.model.new_cache();
        let g = generate(
            l.model.as_ref(),
            &l.tokenizer,
            &prompt,
            &mut cache,
            &opts,
            |_| true,
        )?;
        out.push(Trial {
            prompt_tps: g.prompt_tps,
            generation_tps: g.generation_tps,
            peak_memory_bytes: g.peak_memory_bytes,
        });
    }
    Ok(out)
}

/// Where a decode step's time goes: after a `prompt_tokens` prefill, `gen_tokens` greedy
/// steps with the scheduler's trace on; per primitive, the time from its inputs being
/// ready to its kernel returning (on a GPU: launched), against the wall time per token.
pub fn profile(l: &Loaded, prompt_tokens: usize, gen_tokens: usize) -> Result<String> {
    use crate::generate::{eval_with_cache, forward_last, last_logits};
    use rmx_core::scheduler::trace;
    use std::time::Instant;
    let mut cache = l.model.new_cache();
    let vocab = l.model.args().vocab_size.max(2) as u32;
    let prompt: Vec<u32> = (0..prompt_tokens.max(1) as u32)
        .map(|i| i % vocab)
        .collect();
    let mut logits = forward_last(l.model.as_ref(), &prompt, &mut cache)?;
    let argmax = |v: &[f32]| {
        v.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i as u32)
    };
    // RMX_LM_PROFILE_SYNC=1: each node waits for the device, so times include the GPU's
    let synced = std::env::var("RMX_LM_PROFILE_SYNC").as_deref() == Ok("1");
    trace::set_synced(synced);
    // the fixed-shape step when greedy decoding would use it (uncaptured with
    // RMX_LM_CUDA_GRAPH=0, so its nodes show)
    let total = prompt.len() + gen_tokens + 1;
    let mut fixed = if crate::static_decode::enabled() {
        crate::static_decode::StaticDecoder::new(l.model.as_ref(), &mut cache, total)?
    } else {
        None
    };
    let mut token = argmax(&logits);
    trace::enable(true);
    let t0 = Instant::now();
    // (graph building, evaluation, reading the logits back), seconds in all
    let mut split = [0f64; 3];
    for _ in 0..gen_tokens {
        if let Some(d) = fixed.as_mut() {
            token = d.step(l.model.as_ref(), &mut cache, token)?;
            continue;
        }
        let a = Instant::now();
        let last = last_logits(l.model.as_ref(), &[token], &mut cache)?;
        let b = Instant::now();
        eval_with_cache(&last, &cache)?;
        let c = Instant::now();
        logits = last.to_vec::<f32>()?;
        token = argmax(&logits);
        split[0] += (b - a).as_secs_f64();
        split[1] += (c - b).as_secs_f64();
        split[2] += c.elapsed().as_secs_f64();
    }
    let wall = t0.elapsed().as_secs_f64() / gen_tokens.max(1) as f64;
    trace::enable(false);
    trace::set_synced(false);
    let events = trace::take();
    let mut by: std::collections::BTreeMap<&str, (f64, usize)> = Default::default();
    for e in &events {
        let s = by.entry(e.primitive).or_default();
        s.0 += e.end_ns.saturating_sub(e.start_ns) as f64 * 1e-9;
        s.1 += 1;
    }
    let mut rows: Vec<_> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    let n = gen_tokens.max(1) as f64;
    let kernels: f64 = rows.iter().map(|r| r.1 .0).sum::<f64>() / n;
    let mut out = format!(
        "wall {:.3} ms/token ({:.1} tok/s); in primitives {:.3} ms/token; {:.0} nodes/token\n",
        wall * 1e3,
        1.0 / wall,
        kernels * 1e3,
        events.len() as f64 / n
    );
    if synced {
        out += "(each node waited for the device: times include the GPU's)\n";
    }
    match fixed.as_mut() {
        Some(d) => {
            out += "fixed-shape steps (static_decode.rs)\n";
            out += &d.profile_report()?;
        }
        None => {
            out += &format!(
            "per token: building the graph {:.3} ms, eval {:.3} ms, reading the logits {:.3} ms\n",
            split[0] / n * 1e3,
            split[1] / n * 1e3,
            split[2] / n * 1e3
        )
        }
    }
    #[cfg(feature = "cuda")]
    if rmx_core::device::default_device() == rmx_core::Device::GPU {
        let (launch, alloc, sync) = rmx_cuda::driver_costs(10_000)?;
        out += &format!(
            "driver calls: {launch:.2} us per kernel launch, {alloc:.2} us per allocation + free, {sync:.2} us per idle synchronization\n"
        );
    }
    out += "| primitive | ms/token | calls/token | us/call |\n|---|---|---|---|\n";
    for (name, (t, c)) in rows {
        out += &format!(
            "| {name} | {:.3} | {:.1} | {:.2} |\n",
            t / n * 1e3,
            c as f64 / n,
            t / c as f64 * 1e6
        );
    }
    Ok(out)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// The table `rmx-lm benchmark` prints.
pub fn table(name: &str, prompt_tokens: usize, gen_tokens: usize, trials: &[Trial]) -> String {
    let mut s = "| model | trial | prompt tokens | prompt tok/s | generated tokens | generation tok/s | peak memory GB |\n|---|---|---|---|---|---|---|\n".to_string();
    for (i, t) in trials.iter().enumerate() {
        s += &format!(
            "| {name} | {} | {prompt_tokens} | {:.1} | {gen_tokens} | {:.1} | {:.3} |\n",
            i + 1,
            t.prompt_tps,
            t.generation_tps,
            t.peak_memory_bytes as f64 / 1e9
        );
    }
    s += &format!(
        "| {name} | median | {prompt_tokens} | {:.1} | {gen_tokens} | {:.1} | |\n",
        median(trials.iter().map(|t| t.prompt_tps).collect()),
        median(trials.iter().map(|t| t.generation_tps).collect())
    );
    s
}
