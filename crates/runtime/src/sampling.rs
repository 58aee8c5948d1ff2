//! Token selection with transformers' semantics and order (spec §9):
//! repetition penalty → temperature → top-k → top-p → min-p → sample
//! (or argmax when greedy). A seeded generator makes a run reproducible.

/// Sampling settings. `temperature == 0` (or `greedy`) means argmax.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingConfig {
    pub greedy: bool,
    pub temperature: f32,
    /// Keep the `top_k` largest logits (ties kept); 0 disables.
    pub top_k: usize,
    /// Nucleus: keep the smallest set of tokens whose probability sum
    /// reaches `top_p`; 1.0 disables.
    pub top_p: f32,
    /// Drop tokens with probability below `min_p · p_max`; 0 disables.
    pub min_p: f32,
    /// > 1 discourages tokens already in the sequence (prompt included); 1 disables.
    pub repetition_penalty: f32,
    pub seed: u64,
}

impl Default for SamplingConfig {
    /// Greedy, as a bare `generate()` with the checkpoints' generation config.
    fn default() -> Self {
        SamplingConfig {
            greedy: true,
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            seed: 0,
        }
    }
}

impl SamplingConfig {
    /// The model card's recommendation: `temperature 0.1, min_p 0.15,
    /// repetition_penalty 1.05`, with transformers' default `top_k 50`.
    pub fn model_card() -> Self {
        SamplingConfig {
            greedy: false,
            temperature: 0.1,
            top_k: 50,
            top_p: 1.0,
            min_p: 0.15,
            repetition_penalty: 1.05,
            seed: 0,
        }
    }

    /// Rejects settings transformers rejects (and NaN): a non-positive
    /// repetition penalty, a negative or non-finite temperature, `top_p` or
    /// `min_p` outside [0, 1].
    pub fn validate(&self) -> Result<(), String> {
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(format!(
                "repetition_penalty must be > 0, got {}",
                self.repetition_penalty
            ));
        }
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(format!(
                "temperature must be finite and ≥ 0, got {}",
                self.temperature
            ));
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return Err(format!("top_p must be in [0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(format!("min_p must be in [0, 1], got {}", self.min_p));
        }
        Ok(())
    }

    /// A named preset: `greedy` or `model-card`.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "greedy" => Some(Self::default()),
            "model-card" | "recommended" => Some(Self::model_card()),
            _ => None,
        }
    }
}

/// SplitMix64: small, fast, and reproducible everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The index of the largest value (the first one on ties, as `torch.argmax`).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] || (v[best].is_nan() && !x.is_nan()) {
            best = i;
        }
    }
    best
}

/// Picks the next token from `logits` (modified in place) given the ids
/// of the sequence so far (`history`: prompt and generated).
pub struct Sampler {
    pub cfg: SamplingConfig,
    rng: Rng,
    /// Scratch, reused across steps (no allocation per token once grown).
    order: Vec<usize>,
    seen: Vec<bool>,
    /// A copy of the logits for top-k's selection.
    kth: Vec<f32>,
    /// Softmax probabilities.
    probs: Vec<f64>,
}

impl Sampler {
    pub fn new(cfg: SamplingConfig) -> Self {
        let rng = Rng::new(cfg.seed);
        Sampler {
            cfg,
            rng,
            order: Vec::new(),
            seen: Vec::new(),
            kth: Vec::new(),
            probs: Vec::new(),
        }
    }

    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        let c = &self.cfg;
        if c.repetition_penalty != 1.0 {
            // Each id once, however often it occurs.
            self.seen.clear();
            self.seen.resize(logits.len(), false);
            for &id in history {
                let i = id as usize;
                if i < logits.len() && !self.seen[i] {
                    self.seen[i] = true;
                    let z = &mut logits[i];
                    *z = if *z < 0.0 {
                        *z * c.repetition_penalty
                    } else {
                        *z / c.repetition_penalty
                    };
                }
            }
        }
        if c.greedy || c.temperature <= 0.0 {
            return argmax(logits) as u32;
        }
        if c.temperature != 1.0 {
            logits.iter_mut().for_each(|z| *z /= c.temperature);
        }
        if c.top_k > 0 && c.top_k < logits.len() {
            let sorted = &mut self.kth;
            sorted.clear();
            sorted.extend_from_slice(logits);
            let k = c.top_k;
            sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            let kth = sorted[k - 1];
            logits
                .iter_mut()
                .filter(|z| **z < kth)
                .for_each(|z| *z = f32::NEG_INFINITY);
        }
        if c.top_p < 1.0 {
            // Ascending by probability; drop the low tail whose mass is ≤ 1 − top_p,
            // always keeping the most likely token.
            self.order.clear();
            self.order
                .extend((0..logits.len()).filter(|&i| logits[i] > f32::NEG_INFINITY));
            self.order.sort_by(|&a, &b| logits[a].total_cmp(&logits[b]));
            softmax_into(logits, &mut self.probs);
            let probs = &self.probs;
            let mut cum = 0.0f64;
            let last = self.order.len().saturating_sub(1);
            for (rank, &i) in self.order.iter().enumerate() {
                cum += probs[i];
                if cum <= 1.0 - c.top_p as f64 && rank < last {
                    logits[i] = f32::NEG_INFINITY;
                }
            }
        }
        if c.min_p > 0.0 {
            softmax_into(logits, &mut self.probs);
            let probs = &self.probs;
            let top = probs.iter().cloned().fold(0.0, f64::max);
            let best = argmax(logits);
            for (i, z) in logits.iter_mut().enumerate() {
                if probs[i] < c.min_p as f64 * top && i != best {
                    *z = f32::NEG_INFINITY;
                }
            }
        }
        softmax_into(logits, &mut self.probs);
        let mut u = self.rng.uniform();
        for (i, p) in self.probs.iter().enumerate() {
            if u < *p {
                return i as u32;
            }
            u -= p;
        }
        argmax(logits) as u32
    }
}

/// Softmax in f64 (−inf entries get 0) into `out` (reused).
fn softmax_into(z: &[f32], out: &mut Vec<f64>) {
    let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    out.clear();
    out.extend(z.iter().map(|&v| {
        if v == f32::NEG_INFINITY {
            0.0
        } else {
            (v as f64 - m).exp()
        }
    }));
    let s: f64 = out.iter().sum();
    out.iter_mut().for_each(|v| *v /= s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetition_penalty_hits_each_id_once_with_sign_rule() {
        let mut z = vec![2.0, -2.0, 1.0, 0.5];
        let mut s = Sampler::new(SamplingConfig {
            repetition_penalty: 2.0,
            ..Default::default()
        });
        // id 0 twice, id 1 once: each penalised once; 2 and 3 untouched.
        let id = s.sample(&mut z, &[0, 1, 0]);
        assert_eq!(z, vec![1.0, -4.0, 1.0, 0.5]);
        assert_eq!(id, 0, "greedy picks the first of the tied maxima");
    }

    #[test]
    fn top_k_keeps_ties_and_min_p_is_relative_to_the_max() {
        let cfg = SamplingConfig {
            greedy: false,
            top_k: 2,
            temperature: 1.0,
            ..Default::default()
        };
        let mut z = vec![1.0, 3.0, 3.0, 2.0, 0.0];
        let mut s = Sampler::new(cfg);
        s.sample(&mut z, &[]);
        assert_eq!(z[1], 3.0);
        assert_eq!(z[2], 3.0);
        assert!(
            z[0] == f32::NEG_INFINITY && z[3] == f32::NEG_INFINITY && z[4] == f32::NEG_INFINITY
        );

        // min_p 0.15 keeps logits within ln(1/0.15) ≈ 1.897 of the max.
        let cfg = SamplingConfig {
            greedy: false,
            top_k: 0,
            min_p: 0.15,
            ..Default::default()
        };
        let mut z = vec![0.0, -1.8, -1.95, -5.0];
        Sampler::new(cfg).sample(&mut z, &[]);
        assert!(z[1] > f32::NEG_INFINITY && z[2] == f32::NEG_INFINITY && z[3] == f32::NEG_INFINITY);
    }

    #[test]
    fn invalid_settings_are_rejected() {
        let ok = SamplingConfig::model_card();
        assert!(ok.validate().is_ok());
        for bad in [
            SamplingConfig {
                repetition_penalty: 0.0,
                ..ok.clone()
            },
            SamplingConfig {
                repetition_penalty: -1.0,
                ..ok.clone()
            },
            SamplingConfig {
                temperature: f32::NAN,
                ..ok.clone()
            },
            SamplingConfig {
                temperature: -0.5,
                ..ok.clone()
            },
            SamplingConfig {
                top_p: 1.5,
                ..ok.clone()
            },
            SamplingConfig {
                min_p: -0.1,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        let cfg = SamplingConfig {
            greedy: false,
            top_k: 0,
            top_p: 0.7,
            ..Default::default()
        };
        // probs ≈ [0.64, 0.24, 0.09, 0.03]: the nucleus for 0.7 is the top two.
        let mut z = vec![3.0, 2.0, 1.0, 0.0];
        Sampler::new(cfg).sample(&mut z, &[]);
        assert!(z[0] > f32::NEG_INFINITY && z[1] > f32::NEG_INFINITY);
        assert!(z[2] == f32::NEG_INFINITY && z[3] == f32::NEG_INFINITY);
    }

    #[test]
    fn a_seed_reproduces_a_run_and_frequencies_follow_the_distribution() {
        let cfg = SamplingConfig {
            greedy: false,
            top_k: 0,
            seed: 7,
            ..Default::default()
        };
        let base = vec![0.0f32, (2.0f32).ln(), (3.0f32).ln()]; // probs 1/6, 2/6, 3/6
        let run = |seed| {
            let mut s = Sampler::new(SamplingConfig {
                seed,
                ..cfg.clone()
            });
            (0..6000)
                .map(|_| s.sample(&mut base.clone(), &[]))
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        let count = |id| a.iter().filter(|&&x| x == id).count() as f64 / a.len() as f64;
        assert!((count(0) - 1.0 / 6.0).abs() < 0.02 && (count(2) - 0.5).abs() < 0.02);
    }
}
