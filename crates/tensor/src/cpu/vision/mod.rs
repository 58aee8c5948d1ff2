//! Kernels of the vision tower and connector (`kernels/vision.md`):
//! LayerNorm, the two GELUs and pixel unshuffle. Statistics and the
//! transcendental functions are evaluated in f64 and rounded once, so every
//! ISA gives the reference result; these ops are a few percent of a vision
//! forward pass (the matmuls dominate).

use crate::Gelu;

/// `x`, `out`: `[rows, d]`; `w`, `b`: `[d]`.
pub fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    assert!(d > 0 && b.len() == d && x.len() == out.len() && x.len().is_multiple_of(d));
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let mean = xr.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var = xr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        for (((o, &v), &g), &bb) in or.iter_mut().zip(xr).zip(w).zip(b) {
            *o = ((v as f64 - mean) * inv * g as f64 + bb as f64) as f32;
        }
    }
}

/// Elementwise GELU of `kind`.
pub fn gelu(x: &[f32], kind: Gelu, out: &mut [f32]) {
    assert_eq!(x.len(), out.len());
    const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
    for (o, &v) in out.iter_mut().zip(x) {
        let z = v as f64;
        let y = match kind {
            Gelu::Tanh => 0.5 * z * (1.0 + (SQRT_2_OVER_PI * (z + 0.044715 * z * z * z)).tanh()),
            Gelu::Erf => 0.5 * z * (1.0 + libm::erf(z * std::f64::consts::FRAC_1_SQRT_2)),
        };
        *o = y as f32;
    }
}

/// `x`: `[h·w, d]`; `out`: `[(h/2)·(w/2), 4d]`.
pub fn pixel_unshuffle(x: &[f32], h: usize, w: usize, d: usize, out: &mut [f32]) {
    assert!(
        h.is_multiple_of(2) && w.is_multiple_of(2) && x.len() == h * w * d && out.len() == x.len()
    );
    let mut o = 0;
    for a in 0..h / 2 {
        for b in 0..w / 2 {
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let src = ((2 * a + dy) * w + 2 * b + dx) * d;
                out[o..o + d].copy_from_slice(&x[src..src + d]);
                o += d;
            }
        }
    }
}
