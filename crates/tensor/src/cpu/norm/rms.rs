//! Generic RMSNorm body (`kernels/rms_norm.md`), run per tier by `mod.rs`.

use crate::cpu::simd::Simd;

/// Widest vector of any ISA (AVX-512: 16 f32).
const MAX_LANES: usize = 16;
/// Independent accumulators of the sum of squares (hides FMA latency).
const ACC: usize = 4;

#[inline(always)]
pub(super) fn rms_norm<S: Simd>(
    s: S,
    x: &[f32], // [rows, d]
    w: &[f32], // [d]
    eps: f32,
    out: &mut [f32], // [rows, d]
) {
    let d = w.len();
    assert!(d > 0 && x.len() == out.len() && x.len().is_multiple_of(d));
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        // mean(x²) then 1/sqrt(· + eps), each rounded in f32 as torch does.
        let mean = sum_squares(s, xr) / d as f32;
        let inv = 1.0 / (mean + eps).sqrt();
        scale_row(s, xr, w, inv, or);
    }
}

/// `Σ x²` in f32: `ACC` vector accumulators, then the padded tail.
#[inline(always)]
fn sum_squares<S: Simd>(s: S, x: &[f32]) -> f32 {
    const { assert!(S::LANES <= MAX_LANES) };
    let (n, l) = (x.len(), S::LANES);
    let xp = x.as_ptr();
    let mut acc = [s.zero(); ACC];
    let mut i = 0;
    while i + ACC * l <= n {
        for (a, v) in acc.iter_mut().zip(0..ACC) {
            // SAFETY: i + (v + 1)·LANES ≤ i + ACC·LANES ≤ n = x.len().
            let xv = unsafe { s.load(xp.wrapping_add(i + v * l)) };
            *a = s.fma(xv, xv, *a);
        }
        i += ACC * l;
    }
    while i + l <= n {
        // SAFETY: i + LANES ≤ n.
        let xv = unsafe { s.load(xp.wrapping_add(i)) };
        acc[0] = s.fma(xv, xv, acc[0]);
        i += l;
    }
    if i < n {
        // Zero padding adds exactly 0.
        let mut b = [0.0f32; MAX_LANES];
        b[..n - i].copy_from_slice(&x[i..]);
        // SAFETY: LANES ≤ MAX_LANES: the buffer holds a whole vector.
        let xv = unsafe { s.load(b.as_ptr()) };
        acc[1] = s.fma(xv, xv, acc[1]);
    }
    let total = s.add(s.add(acc[0], acc[1]), s.add(acc[2], acc[3]));
    s.reduce_sum(total)
}

/// `out = w ⊙ (x · inv)`: two IEEE products per element, so the scalar tail
/// is bit-identical to the vector lanes.
#[inline(always)]
fn scale_row<S: Simd>(s: S, x: &[f32], w: &[f32], inv: f32, out: &mut [f32]) {
    let (n, l) = (out.len(), S::LANES);
    assert!(x.len() == n && w.len() == n);
    let (xp, wp, op) = (x.as_ptr(), w.as_ptr(), out.as_mut_ptr());
    let iv = s.splat(inv);
    let mut i = 0;
    while i + l <= n {
        // SAFETY: i + LANES ≤ n, the length of all three slices.
        let xv = unsafe { s.load(xp.wrapping_add(i)) };
        // SAFETY: as above.
        let wv = unsafe { s.load(wp.wrapping_add(i)) };
        // SAFETY: as above.
        unsafe { s.store(op.wrapping_add(i), s.mul(wv, s.mul(xv, iv))) };
        i += l;
    }
    for ((o, &v), &g) in out[i..].iter_mut().zip(&x[i..]).zip(&w[i..]) {
        *o = g * (v * inv);
    }
}
