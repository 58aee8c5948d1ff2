//! What the GGUF test binaries share: a case's crops and ids, greedy runs
//! and prompt logits through a runtime session, and the error measures
//! (NMSE, top-1 agreement, max abs) they report.
// Each test binary uses a different subset.
#![allow(dead_code)]

use anyhow::Result;
use model::Lfm2Vl;
use runtime::sampling::SamplingConfig;
use runtime::session::{Session, StopConfig};
use tensor::Backend;
use tensor::cpu::{CpuBackend, Isa};
use tests::Case;

pub fn backend() -> Result<CpuBackend> {
    Ok(CpuBackend::with(Isa::best(), 2)?)
}

pub fn pixel_values(case: &Case) -> Result<Vec<f32>> {
    if case.crops()?.is_empty() {
        Ok(Vec::new())
    } else {
        case.f32("pixel_values")
    }
}

pub fn ids(case: &Case) -> Result<Vec<u32>> {
    Ok(case.input_ids()?.iter().map(|&i| i as u32).collect())
}

/// Prompt logits `[t, vocab]` and `n` greedy ids of `model` on the case.
pub fn run(model: Lfm2Vl<CpuBackend>, case: &Case, n: usize) -> Result<(Vec<f32>, Vec<u32>)> {
    run_on(backend()?, model, case, n)
}

/// [`run`] on any backend `be` (the one `model` was loaded on).
pub fn run_on<B: Backend>(
    be: B,
    model: Lfm2Vl<B>,
    case: &Case,
    n: usize,
) -> Result<(Vec<f32>, Vec<u32>)> {
    let pv = pixel_values(case)?;
    let crops = case.crop_patches(&pv)?;
    let ids = ids(case)?;
    let mut s = Session::new(be, model, ids.len() + n + 8)?;
    let logits = s.prompt_logits(&ids, &crops)?;
    let stop = StopConfig {
        max_new_tokens: n,
        stop_ids: vec![],
    };
    let g = s.generate(&ids, &crops, &SamplingConfig::default(), &stop, &mut |_| {
        true
    })?;
    Ok((logits, g.ids))
}

/// Error of `got` against `want`, row by row of `vocab`.
#[derive(Debug, Clone, Copy)]
pub struct Measure {
    /// Σ(got − want)² / Σ want².
    pub nmse: f64,
    pub max_abs: f32,
    /// Rows whose argmax agrees, out of `rows`.
    pub top1: usize,
    pub rows: usize,
    /// The most, over rows, that `got`'s top-1 token scores below `want`'s
    /// top-1 in `want`'s logits: 0 where the argmaxes agree, small where
    /// `got` broke a near-tie the other way, large where it picked a token
    /// the reference ranks far down.
    pub regret: f32,
}

impl std::fmt::Display for Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "NMSE {:.3e}, max abs {:.3e}, top-1 {}/{}, regret {:.3e}",
            self.nmse, self.max_abs, self.top1, self.rows, self.regret
        )
    }
}

pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

pub fn measure(got: &[f32], want: &[f32], vocab: usize) -> Measure {
    assert_eq!(got.len(), want.len(), "lengths");
    let (mut num, mut den, mut max_abs) = (0f64, 0f64, 0f32);
    for (&g, &w) in got.iter().zip(want) {
        let d = (g - w) as f64;
        num += d * d;
        den += (w as f64) * (w as f64);
        max_abs = max_abs.max((g - w).abs());
        if g.is_nan() != w.is_nan() {
            max_abs = f32::INFINITY;
        }
    }
    let rows = got.len() / vocab;
    let top1 = (0..rows)
        .filter(|&r| {
            let s = r * vocab..(r + 1) * vocab;
            argmax(&got[s.clone()]) == argmax(&want[s])
        })
        .count();
    let regret = (0..rows)
        .map(|r| {
            let s = r * vocab..(r + 1) * vocab;
            let w = &want[s.clone()];
            w[argmax(w)] - w[argmax(&got[s])]
        })
        .fold(0f32, f32::max);
    Measure {
        nmse: num / den.max(f64::MIN_POSITIVE),
        max_abs,
        top1,
        rows,
        regret,
    }
}

/// A fresh temporary folder for one test.
pub fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("lfm2vl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
