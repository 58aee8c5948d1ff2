//! Shared helpers of the CPU kernel tests (`cpu_*.rs`): the one padding
//! convention (outputs and inputs sit at an offset inside a buffer filled
//! with [`SENTINEL`], [`PAD`] elements of it after them, checked untouched
//! afterwards), thread pools, the tolerance check with a readable failure,
//! worst-error bookkeeping and the per-ISA test stamp. f32 lanes per vector
//! come from `Isa::lanes`.
//!
//! Each test binary compiles this module (`mod common;`) and uses part of
//! it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::fmt::Debug;

use tensor::cpu::{Isa, IsaToken};
use tensor::testing::expected_isas_present;
use tensor::testing::tolerance::{Tolerance, ulp_distance};

pub fn token(isa: Isa) -> IsaToken {
    IsaToken::new(isa).expect("caller checked availability")
}

/// A NaN with a payload no kernel produces: marks padding around outputs
/// (compared by bits, so a kernel's own NaN does not pass for it).
pub const SENTINEL: f32 = f32::from_bits(0x7fa5_5a5a);
/// Sentinel elements after the data of a padded buffer.
pub const PAD: usize = 17;

/// `data` at element offset `off` of a buffer padded with [`SENTINEL`].
pub fn padded(data: &[f32], off: usize) -> Vec<f32> {
    let mut b = vec![SENTINEL; off];
    b.extend_from_slice(data);
    b.extend(std::iter::repeat_n(SENTINEL, PAD));
    b
}

/// A padded buffer for an `n`-element output at `off` that is all
/// [`SENTINEL`], so an output element the kernel leaves unwritten fails the
/// value check too.
pub fn padded_out(n: usize, off: usize) -> Vec<f32> {
    vec![SENTINEL; off + n + PAD]
}

/// Whether everything around `buf[off..off + n]` still holds the sentinel.
pub fn pad_intact(buf: &[f32], off: usize, n: usize) -> bool {
    first_pad_write(buf, off, n).is_none()
}

fn first_pad_write(buf: &[f32], off: usize, n: usize) -> Option<usize> {
    (buf.iter().enumerate())
        .position(|(i, v)| (i < off || i >= off + n) && v.to_bits() != SENTINEL.to_bits())
}

/// Asserts the padding around `buf[off..off + n]` still holds the sentinel.
#[track_caller]
pub fn assert_pad(case: &dyn Debug, buf: &[f32], off: usize, n: usize) {
    if let Some(i) = first_pad_write(buf, off, n) {
        panic!(
            "{case:?}: wrote outside the output at buffer index {i} (data {off}..{})",
            off + n
        );
    }
}

/// A pool of `threads` workers, or `None` (the caller's thread) for one.
pub fn pool(threads: usize) -> Option<rayon::ThreadPool> {
    (threads > 1).then(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    })
}

/// The worst errors of a sweep: `budget` is max |x − r| / bound (the share
/// of the tolerance used; for ulp classes, ulps / max), `rel` is max
/// |x − r| / |r| over results with |r| ≥ 1e-4 (where the absolute term of a
/// bound no longer dominates), `ulps` the max ulp distance over those of
/// them that are not the product of cancellation (|r| ≥ scale/4).
#[derive(Clone, Copy, Debug, Default)]
pub struct Worst {
    pub abs: f64,
    pub budget: f64,
    pub rel: f64,
    pub ulps: u64,
}

pub fn merge(worst: &mut Worst, w: Worst) {
    worst.abs = worst.abs.max(w.abs);
    worst.budget = worst.budget.max(w.budget);
    worst.rel = worst.rel.max(w.rel);
    worst.ulps = worst.ulps.max(w.ulps);
}

/// Checks `got` against `want` and on failure prints the case, the first bad
/// index, got, want, the bound and the ulp distance.
#[track_caller]
pub fn check(tol: Tolerance, case: &dyn Debug, got: &[f32], want: &[f32], scale: &[f64]) -> Worst {
    if let Err(e) = tol.check(got, want, scale) {
        panic!(
            "{case:?}: first bad index {}: got {:e} ({:#010x}), want {:e} ({:#010x}), bound {:e}, {} ulps",
            e.index,
            e.got,
            e.got.to_bits(),
            e.want,
            e.want.to_bits(),
            e.bound,
            ulp_distance(e.got, e.want)
        );
    }
    let mut w = Worst::default();
    for (i, (&g, &r)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - r as f64).abs();
        if !err.is_finite() {
            continue; // NaN = NaN or inf = inf: already checked exactly
        }
        let r64 = (r as f64).abs();
        let mag = if scale.is_empty() { r64 } else { scale[i] };
        let ulps = ulp_distance(g, r);
        w.abs = w.abs.max(err);
        w.budget = w.budget.max(match tol {
            Tolerance::Exact => err,
            Tolerance::Ulp { max } => ulps as f64 / max as f64,
            Tolerance::Rel { abs, rel } => err / (abs + rel * r64),
            Tolerance::Dot { abs, rel } | Tolerance::GpuDot { abs, rel } => err / (abs + rel * mag),
        });
        if r64 >= 1e-4 {
            w.rel = w.rel.max(err / r64);
        }
        if r64 >= 1e-4 && r64 >= mag / 4.0 {
            w.ulps = w.ulps.max(ulps);
        }
    }
    w
}

/// Runs one sweep on `isa` (or prints a skip line) and reports its worst error.
pub fn run_for(isa: Isa, name: &str, sweep: fn(Isa) -> Worst) {
    expected_isas_present();
    if !isa.is_available() {
        println!("skip: {isa} not available on this host");
        return;
    }
    let w = sweep(isa);
    println!(
        "{name}: worst |x-r| = {:.3e}, |x-r|/|r| (|r| >= 1e-4) = {:.3e}, ulps = {}, budget used = {:.3}",
        w.abs, w.rel, w.ulps, w.budget
    );
}

/// `tests!(isa_expr; name => sweep, ...)`: one `#[test]` per sweep
/// (reached through `#[macro_use] mod common;`).
#[allow(unused_macros)]
macro_rules! tests {
    ($isa:expr; $($name:ident => $sweep:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            $crate::common::run_for($isa, stringify!($name), $sweep);
        }
    )*};
}
