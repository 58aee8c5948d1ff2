//! `lfm2vl bench --speculative`: what speculative decoding costs and gives
//! on the model of [`crate::bench::bench`]. Random weights cannot show a
//! real acceptance rate, so the figures are the two that don't depend on
//! one, and a curve over synthetic ones:
//! - a verify step of `k` drafts (one recorded chunk of `k + 1` tokens, then
//!   the rewind to its first token) against one plain decode step;
//! - decode speed when every draft is accepted (a greedy run replayed);
//! - decode speed when each drafted token is right with probability `a`
//!   (the replayed run with wrong tokens put in at random), for a range of
//!   `a`: the acceptance-rate → speedup curve.

use std::time::{Duration, Instant};

use tensor::Backend;

use crate::bench::{BenchOptions, model_source, tokens};
use crate::engine::{Engine, Inner};
use crate::error::{Result, RuntimeError};
use crate::sampling::{Rng, SamplingConfig};
use crate::session::{Session, StopConfig};
use crate::speculative::{MAX_DRAFT, Replay, SpecCounts, Speculation};

/// Draft lengths timed (a verify of none: one row on the verify path, to
/// set beside the plain decode step).
pub const DRAFTS: [usize; 5] = [0, 1, 2, 4, MAX_DRAFT];
/// Per-token draft accuracies of the curve.
pub const ACCURACIES: [f64; 6] = [0.0, 0.25, 0.5, 0.75, 0.9, 1.0];

/// A verify step's cost.
#[derive(Clone, Debug)]
pub struct VerifyRow {
    pub k: usize,
    /// Median time of one verify of `k` drafts and its rewind.
    pub time: Duration,
}

/// Decode with drafts of a given accuracy.
#[derive(Clone, Debug)]
pub struct SpecRow {
    pub k: usize,
    /// Probability that each drafted token is the greedy one.
    pub accuracy: f64,
    pub counts: SpecCounts,
    pub tok_s: f64,
}

#[derive(Clone, Debug)]
pub struct SpecReport {
    /// Plain greedy decode: tokens per second and the median step.
    pub plain_tok_s: f64,
    pub plain_step: Duration,
    pub verify: Vec<VerifyRow>,
    /// Every draft accepted, per draft length.
    pub replay: Vec<SpecRow>,
    /// The acceptance curve, per draft length in `curve_drafts`.
    pub curve: Vec<SpecRow>,
}

/// Runs the three measurements (module docs), `o.reps` times each (the
/// median kept), on `o.prompt` prompt tokens and `o.generate` generated.
pub fn bench_speculative(o: &BenchOptions, curve_drafts: &[usize]) -> Result<SpecReport> {
    let (source, _) = model_source(o)?;
    let opts = o.engine_options(o.prompt + o.generate + MAX_DRAFT + 16);
    let engine = Engine::load_source(source, &opts)?;
    let vocab = engine.prompt.tokenizer().vocab_size();
    let ids = tokens(o.prompt, vocab, 7);
    match engine.into_inner() {
        Inner::Cpu(mut s) => run(&mut s, o, &ids, curve_drafts),
        #[cfg(feature = "wgpu")]
        Inner::Wgpu(mut s) => run(&mut s, o, &ids, curve_drafts),
    }
}

/// The median of `v` by `key`.
pub(crate) fn median<T: Clone>(mut v: Vec<T>, key: impl Fn(&T) -> f64) -> T {
    v.sort_by(|a, b| key(a).total_cmp(&key(b)));
    v[v.len() / 2].clone()
}

fn run<B: Backend>(
    s: &mut Session<B>,
    o: &BenchOptions,
    ids: &[u32],
    curve_drafts: &[usize],
) -> Result<SpecReport> {
    let reps = o.reps.max(1);
    let greedy = SamplingConfig::default();
    let stop = StopConfig {
        max_new_tokens: o.generate,
        stop_ids: Vec::new(),
    };
    // Each run starts from the same cached prompt (a rollback to its
    // snapshot): decode alone is timed.
    let generate = |s: &mut Session<B>| -> Result<(Vec<u32>, f64, SpecCounts)> {
        let g = s.generate(ids, &[], &greedy, &stop, &mut |_| true)?;
        let tok_s = g.ids.len() as f64 / g.decode_time.as_secs_f64().max(1e-9);
        Ok((g.ids, tok_s, g.speculative))
    };
    s.speculation = None;
    generate(s)?;
    let plain = median(
        (0..reps).map(|_| generate(s)).collect::<Result<Vec<_>>>()?,
        |r| r.1,
    );
    let (out, plain_tok_s) = (plain.0.clone(), plain.1);
    if out.len() < 2 * MAX_DRAFT + 2 {
        return Err(RuntimeError::Bench(format!(
            "generate at least {} tokens",
            2 * MAX_DRAFT + 2
        )));
    }

    // Verify steps: after the prompt and the first token, k drafts, rewound.
    s.start(ids, &[])?;
    let mut logits = Vec::new();
    while s.prefill_step(s.chunk, &mut logits)?.is_none() {}
    let mut rows = Vec::new();
    let mut verify = Vec::new();
    for &k in &DRAFTS {
        let mut times = Vec::new();
        for _ in 0..reps + 1 {
            let t0 = Instant::now();
            s.verify(&out[..=k], &mut rows)?;
            s.keep(0)?;
            times.push(t0.elapsed());
        }
        times.remove(0);
        verify.push(VerifyRow {
            k,
            time: median(times, |d| d.as_secs_f64()),
        });
    }
    s.reset()?;

    let with = |s: &mut Session<B>, k: usize, accuracy: f64| -> Result<SpecRow> {
        let mut rng = Rng::new(k as u64);
        let mut tokens = ids.to_vec();
        // Each wrong token is replaced by another (a rejected draft).
        tokens.extend(
            out.iter()
                .map(|&t| if rng.uniform() < accuracy { t } else { t ^ 1 }),
        );
        s.speculation = Some(Speculation::new(Box::new(Replay { tokens }), k)?);
        let runs = (0..reps).map(|_| generate(s)).collect::<Result<Vec<_>>>()?;
        s.speculation = None;
        let (got, tok_s, counts) = median(runs, |r| r.1);
        if got != out {
            return Err(RuntimeError::Bench(format!(
                "k={k}: speculative output differs from plain decoding's"
            )));
        }
        Ok(SpecRow {
            k,
            accuracy,
            counts,
            tok_s,
        })
    };
    let replay = DRAFTS[1..]
        .iter()
        .map(|&k| with(s, k, 1.0))
        .collect::<Result<Vec<_>>>()?;
    let mut curve = Vec::new();
    for &k in curve_drafts {
        for &a in &ACCURACIES {
            curve.push(with(s, k, a)?);
        }
    }
    Ok(SpecReport {
        plain_tok_s,
        plain_step: Duration::from_secs_f64(1.0 / plain_tok_s),
        verify,
        replay,
        curve,
    })
}
