//! RMSNorm (`kernels/rms_norm.md`): `out = w ⊙ x · 1/sqrt(mean(x²) + eps)`
//! per row of `d`, statistics in f32.

use super::IsaToken;

/// `x`, `out`: `[rows, d]`; `w`: `[d]`.
pub fn rms_norm(_isa: IsaToken, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    assert_eq!(x.len(), out.len());
    if d == 0 {
        return;
    }
    assert_eq!(x.len() % d, 0);
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let ss: f32 = xr.iter().map(|v| v * v).sum();
        let inv = 1.0 / (ss / d as f32 + eps).sqrt();
        for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
            *o = g * (v * inv);
        }
    }
}
