//! Generic bodies of the elementwise kernels (`kernels/elementwise.md`),
//! run per tier by `mod.rs`.
//!
//! Every loop runs whole vectors; the tail (fewer than `LANES` elements) is
//! copied into a zero-padded stack vector and goes through the same vector
//! code, so each element gets identical arithmetic wherever it sits.

use super::exp::exp_v;
use crate::cpu::simd::Simd;

/// Widest vector of any ISA (AVX-512: 16 f32).
const MAX_LANES: usize = 16;

/// `silu(g)·u = g / (1 + e⁻ᵍ) · u` per lane.
#[inline(always)]
fn silu_mul_v<S: Simd>(s: S, g: S::V, u: S::V) -> S::V {
    let zero = s.zero();
    let e = exp_v(s, s.sub(zero, g));
    s.mul(s.div(g, s.add(s.splat(1.0), e)), u)
}

#[inline(always)]
pub(super) fn silu_mul<S: Simd>(s: S, gate: &[f32], up: &[f32], out: &mut [f32]) {
    const { assert!(S::LANES <= MAX_LANES) };
    let (n, l) = (out.len(), S::LANES);
    assert!(gate.len() == n && up.len() == n);
    let (gp, up_, op) = (gate.as_ptr(), up.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    while i + l <= n {
        // SAFETY: i + LANES ≤ n, the length of all three slices.
        let g = unsafe { s.load(gp.wrapping_add(i)) };
        // SAFETY: as above.
        let u = unsafe { s.load(up_.wrapping_add(i)) };
        // SAFETY: as above.
        unsafe { s.store(op.wrapping_add(i), silu_mul_v(s, g, u)) };
        i += l;
    }
    if i < n {
        let r = n - i;
        let (mut g, mut u) = ([0.0f32; MAX_LANES], [0.0f32; MAX_LANES]);
        g[..r].copy_from_slice(&gate[i..]);
        u[..r].copy_from_slice(&up[i..]);
        // SAFETY: LANES ≤ MAX_LANES: both buffers hold a whole vector.
        let gv = unsafe { s.load(g.as_ptr()) };
        // SAFETY: as above.
        let uv = unsafe { s.load(u.as_ptr()) };
        // SAFETY: as above.
        unsafe { s.store(g.as_mut_ptr(), silu_mul_v(s, gv, uv)) };
        out[i..].copy_from_slice(&g[..r]);
    }
}

#[inline(always)]
pub(super) fn exp<S: Simd>(s: S, x: &[f32], out: &mut [f32]) {
    const { assert!(S::LANES <= MAX_LANES) };
    let (n, l) = (out.len(), S::LANES);
    assert_eq!(x.len(), n);
    let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    while i + l <= n {
        // SAFETY: i + LANES ≤ n, the length of both slices.
        let v = unsafe { s.load(xp.wrapping_add(i)) };
        // SAFETY: as above.
        unsafe { s.store(op.wrapping_add(i), exp_v(s, v)) };
        i += l;
    }
    if i < n {
        let r = n - i;
        let mut b = [0.0f32; MAX_LANES];
        b[..r].copy_from_slice(&x[i..]);
        // SAFETY: LANES ≤ MAX_LANES: the buffer holds a whole vector.
        let v = unsafe { s.load(b.as_ptr()) };
        // SAFETY: as above.
        unsafe { s.store(b.as_mut_ptr(), exp_v(s, v)) };
        out[i..].copy_from_slice(&b[..r]);
    }
}

/// `x += y`, exact (one IEEE addition per element), so the tail is plain.
#[inline(always)]
pub(super) fn add_assign<S: Simd>(s: S, x: &mut [f32], y: &[f32]) {
    let (n, l) = (x.len(), S::LANES);
    assert_eq!(y.len(), n);
    let (xp, yp) = (x.as_mut_ptr(), y.as_ptr());
    let mut i = 0;
    while i + l <= n {
        // SAFETY: i + LANES ≤ n.
        let a = unsafe { s.load(xp.wrapping_add(i)) };
        // SAFETY: as above.
        let b = unsafe { s.load(yp.wrapping_add(i)) };
        // SAFETY: as above.
        unsafe { s.store(xp.wrapping_add(i), s.add(a, b)) };
        i += l;
    }
    for (a, b) in x[i..].iter_mut().zip(&y[i..]) {
        *a += b;
    }
}
