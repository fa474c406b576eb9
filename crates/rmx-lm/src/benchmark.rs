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
