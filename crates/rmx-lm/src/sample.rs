//! Turning logits into the next token: greedy, temperature, top-k, top-p, min-p and a
//! repetition penalty, seeded for reproducibility. Runs on the host over one row of logits.

use crate::error::Result;
use crate::invalid;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Debug)]
pub struct SamplerConfig {
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    /// 0 means off.
    pub top_k: usize,
    pub min_p: f32,
    pub repetition_penalty: f32,
    /// How many recent tokens the repetition penalty looks at.
    pub repetition_context: usize,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            repetition_context: 20,
            seed: 0,
        }
    }
}

impl SamplerConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(invalid!(
                "temperature must be >= 0, got {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(invalid!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(invalid!("min_p must be in [0, 1], got {}", self.min_p));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(invalid!(
                "repetition_penalty must be > 0, got {}",
                self.repetition_penalty
            ));
        }
        Ok(())
    }
}

pub struct Sampler {
    config: SamplerConfig,
    rng: StdRng,
}

impl Sampler {
    pub fn new(config: SamplerConfig) -> Result<Sampler> {
        config.validate()?;
        Ok(Sampler {
            rng: StdRng::seed_from_u64(config.seed),
            config,
        })
    }

    /// Plain greedy decoding: the next token is the logits' argmax, whatever came before.
    pub fn is_greedy(&self) -> bool {
        self.config.temperature == 0.0 && self.config.repetition_penalty == 1.0
    }

    /// The next token given one row of logits and the tokens so far.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        let c = &self.config;
        if c.repetition_penalty != 1.0 {
            let start = history.len().saturating_sub(c.repetition_context);
            for &t in &history[start..] {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l < 0.0 {
                        *l * c.repetition_penalty
                    } else {
                        *l / c.repetition_penalty
                    };
                }
            }
        }
        if c.temperature == 0.0 {
            return argmax(logits);
        }
        // Candidates sorted by logit, then cut by top-k, min-p and top-p.
        let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
        idx.sort_unstable_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]));
        if c.top_k > 0 {
            idx.truncate(c.top_k);
        }
        let max = logits[idx[0] as usize];
        let mut probs: Vec<f64> = idx
            .iter()
            .map(|&i| (((logits[i as usize] - max) / c.temperature) as f64).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if c.min_p > 0.0 {
            let floor = probs[0] * c.min_p as f64;
            let keep = probs.iter().take_while(|&&p| p >= floor).count().max(1);
            probs.truncate(keep);
        }
        if c.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                acc += p;
                if acc >= c.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
        }
        let total: f64 = probs.iter().sum();
        let mut u = self.rng.gen::<f64>() * total;
        for (i, p) in probs.iter().enumerate() {
            u -= p;
            if u <= 0.0 {
                return idx[i];
            }
        }
        idx[probs.len() - 1]
    }
}

pub fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_largest_logit() {
        let mut s = Sampler::new(SamplerConfig::default()).unwrap();
        assert_eq!(s.sample(&mut [0.1, 3.0, -1.0, 2.9], &[]), 1);
    }

    #[test]
    fn top_k_one_is_greedy_at_any_temperature() {
        let cfg = SamplerConfig {
            temperature: 5.0,
            top_k: 1,
            ..Default::default()
        };
        let mut s = Sampler::new(cfg).unwrap();
        for _ in 0..20 {
            assert_eq!(s.sample(&mut [0.1, 3.0, -1.0, 2.9], &[]), 1);
        }
    }

    #[test]
    fn min_p_drops_unlikely_tokens() {
        // p(0) ~ 0.73, p(1) ~ 0.27, p(2) ~ 1e-9: min_p 0.1 never draws token 2.
        let cfg = SamplerConfig {
            temperature: 1.0,
            min_p: 0.1,
            seed: 7,
            ..Default::default()
        };
        let mut s = Sampler::new(cfg).unwrap();
        let mut seen = [0; 3];
        for _ in 0..2000 {
            seen[s.sample(&mut [1.0, 0.0, -20.0], &[]) as usize] += 1;
        }
        assert_eq!(seen[2], 0);
        assert!(seen[1] > 400 && seen[0] > 1200, "{seen:?}");
    }

    #[test]
    fn repetition_penalty_demotes_seen_tokens() {
        let cfg = SamplerConfig {
            repetition_penalty: 2.0,
            ..Default::default()
        };
        let mut s = Sampler::new(cfg).unwrap();
        assert_eq!(s.sample(&mut [1.0, 1.5], &[1]), 0);
    }

    #[test]
    fn bad_values_are_errors() {
        for cfg in [
            SamplerConfig {
                temperature: -1.0,
                ..Default::default()
            },
            SamplerConfig {
                top_p: 0.0,
                ..Default::default()
            },
            SamplerConfig {
                min_p: 2.0,
                ..Default::default()
            },
            SamplerConfig {
                repetition_penalty: 0.0,
                ..Default::default()
            },
        ] {
            assert!(Sampler::new(cfg).is_err());
        }
    }
}
