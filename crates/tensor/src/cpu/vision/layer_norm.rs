//! Generic LayerNorm body (`kernels/layer_norm.md`), instantiated per ISA by
//! the wrappers in `mod.rs`.
//!
//! Per row, three passes over `d` f32 (the row stays in L1):
//! 1. a shift `m = k + Σ(x − k)/d` with `k = x[0]`: an approximate mean
//!    that is within about one ulp of the exact one whenever the row's
//!    spread is small next to its offset (`x − k` is then exact);
//! 2. `s₁ = Σ(x − m)` and `s₂ = Σ(x − m)²`, so `c = s₁/d` (the residual of
//!    the mean) and `var = s₂/d − c²` (the corrected two-pass algorithm of
//!    Chan, Golub and LeVeque: `c` is tiny, so the subtraction cancels
//!    nothing);
//! 3. `out = ((x − m) − c) · rstd · w + b`, `rstd = 1/sqrt(var + eps)`.
//!
//! Deviations are never formed from a rounded mean of a large offset, so a
//! row like `1e3 + noise` normalises as accurately as `noise` alone.

use crate::cpu::simd::Simd;

/// Widest vector of any ISA (AVX-512: 16 f32).
const MAX_LANES: usize = 16;
/// Independent accumulators per sum (hides add/FMA latency).
const ACC: usize = 4;
/// Block of the two-level sums: a multiple of `ACC·MAX_LANES`.
const CHUNK: usize = 256;

#[inline(always)]
pub(super) fn layer_norm<S: Simd>(
    s: S,
    x: &[f32], // [rows, d]
    w: &[f32], // [d]
    b: &[f32], // [d]
    eps: f32,
    out: &mut [f32], // [rows, d]
) {
    let d = w.len();
    assert!(d > 0 && b.len() == d && x.len() == out.len() && x.len().is_multiple_of(d));
    let df = d as f32;
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let k = xr[0];
        let m = k + sums::<S, false>(s, xr, k).0 / df;
        let (s1, s2) = sums::<S, true>(s, xr, m);
        let c = s1 / df;
        let v = s2 / df - c * c;
        // Rounding can leave a zero variance slightly negative; NaN stays NaN.
        let var = if v < 0.0 { 0.0 } else { v };
        let rstd = 1.0 / (var + eps).sqrt();
        normalize_row(s, xr, w, b, (m, c, rstd), or);
    }
}

/// `(Σ(x − k), Σ(x − k)²)` in f32 (the second only if `SQ`, else 0), summed
/// in two levels: [`chunk_sums`] over blocks of `CHUNK` elements, whose
/// vector partials are added into a running vector total. Each lane then
/// sees at most `CHUNK/(ACC·LANES) + d/CHUNK` additions instead of
/// `d/(ACC·LANES)` (64 + 18 rather than 1152 on the scalar tier at
/// d = 4608), which keeps the variance within a few ulps.
#[inline(always)]
fn sums<S: Simd, const SQ: bool>(s: S, x: &[f32], k: f32) -> (f32, f32) {
    let (mut t1, mut t2) = (s.zero(), s.zero());
    for xc in x.chunks(CHUNK) {
        let (p1, p2) = chunk_sums::<S, SQ>(s, xc, k);
        t1 = s.add(t1, p1);
        t2 = s.add(t2, p2);
    }
    (s.reduce_sum(t1), s.reduce_sum(t2))
}

/// The per-lane partial sums of `x − k` and (if `SQ`) `(x − k)²` over one
/// block: `ACC` accumulators of whole vectors, then the tail padded with `k`
/// (whose deviation is exactly 0).
#[inline(always)]
fn chunk_sums<S: Simd, const SQ: bool>(s: S, x: &[f32], k: f32) -> (S::V, S::V) {
    const { assert!(S::LANES <= MAX_LANES) };
    let (n, l) = (x.len(), S::LANES);
    let xp = x.as_ptr();
    let kv = s.splat(k);
    let mut a1 = [s.zero(); ACC];
    let mut a2 = [s.zero(); ACC];
    let mut i = 0;
    while i + ACC * l <= n {
        for v in 0..ACC {
            // SAFETY: i + (v + 1)·LANES ≤ i + ACC·LANES ≤ n = x.len().
            let xv = unsafe { s.load(xp.wrapping_add(i + v * l)) };
            let dv = s.sub(xv, kv);
            a1[v] = s.add(a1[v], dv);
            if SQ {
                a2[v] = s.fma(dv, dv, a2[v]);
            }
        }
        i += ACC * l;
    }
    while i + l <= n {
        // SAFETY: i + LANES ≤ n.
        let xv = unsafe { s.load(xp.wrapping_add(i)) };
        let dv = s.sub(xv, kv);
        a1[0] = s.add(a1[0], dv);
        if SQ {
            a2[0] = s.fma(dv, dv, a2[0]);
        }
        i += l;
    }
    if i < n {
        let mut t = [k; MAX_LANES];
        t[..n - i].copy_from_slice(&x[i..]);
        // SAFETY: LANES ≤ MAX_LANES: the buffer holds a whole vector.
        let xv = unsafe { s.load(t.as_ptr()) };
        let dv = s.sub(xv, kv);
        a1[1] = s.add(a1[1], dv);
        if SQ {
            a2[1] = s.fma(dv, dv, a2[1]);
        }
    }
    (
        s.add(s.add(a1[0], a1[1]), s.add(a1[2], a1[3])),
        s.add(s.add(a2[0], a2[1]), s.add(a2[2], a2[3])),
    )
}

/// `((x − m) − c) · rstd · w + b` for one vector of each operand.
#[inline(always)]
fn normalize_v<S: Simd>(s: S, xv: S::V, wv: S::V, bv: S::V, mv: S::V, cv: S::V, rv: S::V) -> S::V {
    let n = s.mul(s.sub(s.sub(xv, mv), cv), rv);
    s.fma(n, wv, bv)
}

/// Pass 3 over one row: whole vectors, then the tail through the same
/// vector code on zero-padded stack copies (identical arithmetic for every
/// element wherever it sits).
#[inline(always)]
fn normalize_row<S: Simd>(
    s: S,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    (m, c, rstd): (f32, f32, f32),
    out: &mut [f32],
) {
    const { assert!(S::LANES <= MAX_LANES) };
    let (n, l) = (out.len(), S::LANES);
    assert!(x.len() == n && w.len() == n && b.len() == n);
    let (xp, wp, bp, op) = (x.as_ptr(), w.as_ptr(), b.as_ptr(), out.as_mut_ptr());
    let (mv, cv, rv) = (s.splat(m), s.splat(c), s.splat(rstd));
    let mut i = 0;
    while i + l <= n {
        // SAFETY: i + LANES ≤ n, the length of all four slices.
        let xv = unsafe { s.load(xp.wrapping_add(i)) };
        // SAFETY: as above.
        let wv = unsafe { s.load(wp.wrapping_add(i)) };
        // SAFETY: as above.
        let bv = unsafe { s.load(bp.wrapping_add(i)) };
        let y = normalize_v(s, xv, wv, bv, mv, cv, rv);
        // SAFETY: as above.
        unsafe { s.store(op.wrapping_add(i), y) };
        i += l;
    }
    if i < n {
        let r = n - i;
        let mut t = [[0.0f32; MAX_LANES]; 3];
        t[0][..r].copy_from_slice(&x[i..]);
        t[1][..r].copy_from_slice(&w[i..]);
        t[2][..r].copy_from_slice(&b[i..]);
        // SAFETY: LANES ≤ MAX_LANES: each buffer holds a whole vector.
        let xv = unsafe { s.load(t[0].as_ptr()) };
        // SAFETY: as above.
        let wv = unsafe { s.load(t[1].as_ptr()) };
        // SAFETY: as above.
        let bv = unsafe { s.load(t[2].as_ptr()) };
        let y = normalize_v(s, xv, wv, bv, mv, cv, rv);
        // SAFETY: as above.
        unsafe { s.store(t[0].as_mut_ptr(), y) };
        out[i..].copy_from_slice(&t[0][..r]);
    }
}
