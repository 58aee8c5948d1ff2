//! Token selection with transformers' semantics and order (spec §9):
//! repetition penalty → temperature → top-k → top-p → min-p → sample
//! (or argmax when greedy). A seeded generator makes a run reproducible.

use crate::constraint::Constrained;

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

/// Sampling as a user states it (command-line flags, a Python call): a
/// preset, then each knob given over it. Giving any of `temperature`,
/// `top_k`, `top_p` or `min_p` turns sampling on; `temperature: 0` is
/// greedy. Nothing given: greedy, as a bare `generate()`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SamplingKnobs {
    /// `greedy` or `model-card` ([`SamplingConfig::preset`]).
    pub preset: Option<String>,
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub repetition_penalty: Option<f32>,
    pub seed: u64,
}

impl SamplingKnobs {
    /// The configuration, validated ([`SamplingConfig::validate`]).
    pub fn resolve(&self) -> Result<SamplingConfig, String> {
        let mut s = match &self.preset {
            Some(name) => SamplingConfig::preset(name).ok_or_else(|| {
                format!("unknown sampling preset {name:?} (greedy or model-card)")
            })?,
            None => SamplingConfig::default(),
        };
        let sampled = self.temperature.is_some()
            || self.top_p.is_some()
            || self.min_p.is_some()
            || self.top_k.is_some();
        if sampled {
            s.greedy = false;
        }
        if let Some(t) = self.temperature {
            s.temperature = t;
            if t == 0.0 {
                s.greedy = true;
            }
        }
        if let Some(k) = self.top_k {
            s.top_k = k;
        }
        if let Some(p) = self.top_p {
            s.top_p = p;
        }
        if let Some(p) = self.min_p {
            s.min_p = p;
        }
        if let Some(r) = self.repetition_penalty {
            s.repetition_penalty = r;
        }
        s.seed = self.seed;
        s.validate()?;
        Ok(s)
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
    /// Top-k's running selection.
    kth: Vec<f32>,
    /// The ids that can still be drawn, ascending.
    cand: Vec<u32>,
    /// Softmax probabilities.
    probs: Vec<f64>,
    /// Structured output: what may come next (masked before each draw).
    pub constraint: Option<Constrained>,
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
            cand: Vec::new(),
            probs: Vec::new(),
            constraint: None,
        }
    }

    /// A sampler that draws only what `constraint` allows.
    pub fn constrained(cfg: SamplingConfig, constraint: Option<Constrained>) -> Self {
        Sampler {
            constraint,
            ..Sampler::new(cfg)
        }
    }

    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        if let Some(c) = &mut self.constraint {
            c.mask(logits);
        }
        let id = match self.distribution(logits, history) {
            Some(id) => id,
            None => self.draw(logits, None),
        };
        if let Some(c) = &mut self.constraint {
            c.accept(id);
        }
        id
    }

    /// What the target makes of a drafted token `draft` at a position
    /// whose logits are `logits` (modified in place) after `history`
    /// (speculative decoding): `None` keeps it, `Some(y)` replaces it with
    /// `y`, and generation goes on from there. Greedy: kept if and only if
    /// it is the argmax (else the argmax replaces it), so the tokens are
    /// exactly [`Sampler::sample`]'s. Sampling: kept with the probability
    /// `p(draft)` the target's distribution gives it, else replaced by a
    /// draw from that distribution with `draft` taken out. For a draft
    /// that is a fixed token (prompt lookup, a greedy draft model) this is
    /// the rejection rule of speculative sampling with `q = δ(draft)`:
    /// the token that comes out is distributed exactly as `p`.
    ///
    /// Under a constraint the target's distribution is the masked one, and
    /// the token that comes out advances the constraint.
    pub fn judge(&mut self, logits: &mut [f32], history: &[u32], draft: u32) -> Option<u32> {
        if let Some(c) = &mut self.constraint {
            c.mask(logits);
        }
        let judged = self.judge_unconstrained(logits, history, draft);
        if let Some(c) = &mut self.constraint {
            c.accept(judged.unwrap_or(draft));
        }
        judged
    }

    /// Drops the drafts from the first one the constraint forbids on (a
    /// draft it forbids could never be kept).
    pub fn cut_drafts(&mut self, drafts: &mut Vec<u32>) {
        if let Some(c) = &mut self.constraint
            && !drafts.is_empty()
        {
            drafts.truncate(c.valid_prefix(drafts));
        }
    }

    fn judge_unconstrained(
        &mut self,
        logits: &mut [f32],
        history: &[u32],
        draft: u32,
    ) -> Option<u32> {
        if let Some(id) = self.distribution(logits, history) {
            return (id != draft).then_some(id);
        }
        let p = match self.cand.binary_search(&draft) {
            Ok(_) => self.probs[draft as usize],
            Err(_) => 0.0,
        };
        if self.rng.uniform() < p || p >= 1.0 {
            return None;
        }
        Some(self.draw(logits, Some((draft, p))))
    }

    /// Applies the settings to `logits`: `Some(id)` when greedy, else
    /// `None` with the candidates and their probabilities in `self.cand`
    /// and `self.probs`.
    fn distribution(&mut self, logits: &mut [f32], history: &[u32]) -> Option<u32> {
        let c = &self.cfg;
        if c.repetition_penalty != 1.0 {
            apply_repetition_penalty(logits, history, c.repetition_penalty, &mut self.seen);
        }
        if c.greedy || c.temperature <= 0.0 {
            return Some(argmax(logits) as u32);
        }
        if c.temperature != 1.0 {
            logits.iter_mut().for_each(|z| *z /= c.temperature);
        }
        // From here on only the candidates (the ids whose logit is not
        // −inf, ascending) can be drawn; top-k leaves at most k of them plus
        // ties, so the steps below cost O(k), not O(vocabulary).
        let cand = &mut self.cand;
        cand.clear();
        if c.top_k > 0 && c.top_k < logits.len() {
            let kth = kth_largest(logits, c.top_k, &mut self.kth);
            for (i, z) in logits.iter_mut().enumerate() {
                if *z < kth {
                    *z = f32::NEG_INFINITY;
                } else if *z != f32::NEG_INFINITY {
                    cand.push(i as u32);
                }
            }
        } else {
            cand.extend(
                (0..logits.len() as u32).filter(|&i| logits[i as usize] != f32::NEG_INFINITY),
            );
        }
        if c.top_p < 1.0 {
            // Ascending by probability; drop the low tail whose mass is ≤ 1 − top_p,
            // always keeping the most likely token.
            self.order.clear();
            self.order.extend(
                cand.iter()
                    .map(|&i| i as usize)
                    .filter(|&i| logits[i] > f32::NEG_INFINITY),
            );
            self.order.sort_by(|&a, &b| logits[a].total_cmp(&logits[b]));
            softmax_over(logits, cand, &mut self.probs);
            let mut cum = 0.0f64;
            let last = self.order.len().saturating_sub(1);
            for (rank, &i) in self.order.iter().enumerate() {
                cum += self.probs[i];
                if cum <= 1.0 - c.top_p as f64 && rank < last {
                    logits[i] = f32::NEG_INFINITY;
                }
            }
            cand.retain(|&i| logits[i as usize] != f32::NEG_INFINITY);
        }
        if c.min_p > 0.0 {
            softmax_over(logits, cand, &mut self.probs);
            let top = cand
                .iter()
                .map(|&i| self.probs[i as usize])
                .fold(0.0, f64::max);
            let best = argmax_of(logits, cand);
            for &i in cand.iter() {
                let i = i as usize;
                if self.probs[i] < c.min_p as f64 * top && i != best {
                    logits[i] = f32::NEG_INFINITY;
                }
            }
            cand.retain(|&i| logits[i as usize] != f32::NEG_INFINITY);
        }
        softmax_over(logits, cand, &mut self.probs);
        None
    }

    /// Draws from the distribution [`Sampler::distribution`] left, with
    /// `without = (id, p)` taken out (its mass `p` removed, the rest
    /// renormalised).
    fn draw(&mut self, logits: &[f32], without: Option<(u32, f64)>) -> u32 {
        let (skip, mass) = without.map_or((None, 1.0), |(id, p)| (Some(id), 1.0 - p));
        let mut u = self.rng.uniform() * mass;
        let mut last = None;
        for &i in self.cand.iter().filter(|&&i| Some(i) != skip) {
            let p = self.probs[i as usize];
            if u < p {
                return i;
            }
            u -= p;
            last = Some(i);
        }
        // Rounding left `u` past the last candidate: the argmax, or with a
        // token taken out (it may be the argmax), the last candidate left.
        match skip {
            None => argmax(logits) as u32,
            Some(_) => last.unwrap_or_else(|| argmax(logits) as u32),
        }
    }
}

/// [`argmax`] of `v` where every entry outside `cand` (ascending) is −inf:
/// the first candidate holding the largest value, in O(|cand|). With a NaN
/// among the candidates (or none) the whole-vector rule decides.
fn argmax_of(v: &[f32], cand: &[u32]) -> usize {
    let mut best: Option<usize> = None;
    for &i in cand {
        let x = v[i as usize];
        if x.is_nan() {
            return argmax(v);
        }
        if best.is_none_or(|b| x > v[b]) {
            best = Some(i as usize);
        }
    }
    best.unwrap_or_else(|| argmax(v))
}

/// Divides positive logits of ids in `history` by `penalty` and multiplies
/// negative ones, each id once however often it occurs (`seen`: scratch).
fn apply_repetition_penalty(
    logits: &mut [f32],
    history: &[u32],
    penalty: f32,
    seen: &mut Vec<bool>,
) {
    seen.clear();
    seen.resize(logits.len(), false);
    for &id in history {
        let i = id as usize;
        if i < logits.len() && !seen[i] {
            seen[i] = true;
            let z = &mut logits[i];
            *z = if *z < 0.0 { *z * penalty } else { *z / penalty };
        }
    }
}

/// The k-th largest of `v` in `f32::total_cmp` order (1 ≤ k < v.len()),
/// as `select_nth_unstable` over a copy of `v` would give, in one pass:
/// `buf` keeps every value above the running k-th largest and is cut back
/// to its top k whenever it reaches 4k. A value dropped was at most the
/// running threshold, which only grows, so every value above the final
/// threshold is in `buf`, and `buf` holds at least k values at or above it.
fn kth_largest(v: &[f32], k: usize, buf: &mut Vec<f32>) -> f32 {
    let desc = |a: &f32, b: &f32| b.total_cmp(a);
    buf.clear();
    buf.extend_from_slice(&v[..k]);
    buf.select_nth_unstable_by(k - 1, desc);
    let mut kth = buf[k - 1];
    for &z in &v[k..] {
        // Not below kth (z ≥ kth, or a NaN): one comparison skips most
        // values before the exact total-order test.
        if z.partial_cmp(&kth) != Some(std::cmp::Ordering::Less) && z.total_cmp(&kth).is_gt() {
            buf.push(z);
            if buf.len() >= 4 * k {
                buf.select_nth_unstable_by(k - 1, desc);
                buf.truncate(k);
                kth = buf[k - 1];
            }
        }
    }
    buf.select_nth_unstable_by(k - 1, desc);
    buf[k - 1]
}

/// Softmax in f64 over the ids in `cand` (ascending; every other logit is
/// −inf) into `out`, indexed by id: the same values, summed in the same
/// order, as [`softmax_dense`] over the whole vector (the −inf entries add
/// exact zeros there). Entries of `out` outside `cand` are stale.
fn softmax_over(z: &[f32], cand: &[u32], out: &mut Vec<f64>) {
    if cand.len() == z.len() {
        // Every id (no top-k): the dense form, without the indirection.
        return softmax_dense(z, out);
    }
    out.resize(z.len(), 0.0);
    let m = cand
        .iter()
        .map(|&i| z[i as usize])
        .fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut s = 0.0f64;
    for &i in cand {
        let e = (z[i as usize] as f64 - m).exp();
        out[i as usize] = e;
        s += e;
    }
    for &i in cand {
        out[i as usize] /= s;
    }
}

/// Softmax in f64 (−inf entries get 0) into `out` (reused): the whole-vector
/// form ([`softmax_over`] when every id is a candidate; the reference
/// sampler's).
fn softmax_dense(z: &[f32], out: &mut Vec<f64>) {
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
#[path = "sampling_tests.rs"]
mod sampling_tests;
