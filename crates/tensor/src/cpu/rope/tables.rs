//! Rotary angle tables, computed in f32 with transformers' roundings
//! (`kernels/rope.md`). Plain scalar code, compiled once outside every
//! `#[target_feature]` context (`#[inline(never)]`), so all ISAs (and the
//! reference) see the very same angles.

/// `inv[j] = 1 / theta^(f32(2j) / f32(hd))`, each step rounded to f32, as
/// transformers' `1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))`.
#[inline(never)]
pub fn inv_freq(theta: f32, hd: usize, inv: &mut [f32]) {
    assert_eq!(inv.len(), hd / 2);
    for (j, v) in inv.iter_mut().enumerate() {
        *v = 1.0 / theta.powf((2 * j) as f32 / hd as f32);
    }
}

/// `cos_sin = [cos θ₀ … cos θ_{half−1}, sin θ₀ … sin θ_{half−1}]` with
/// `θⱼ = f32(pos) · inv[j]` (one f32 product, as transformers' `inv_freq @
/// position_ids.float()`), then f32 `cos`/`sin`.
#[inline(never)]
pub fn cos_sin(pos: usize, inv: &[f32], cos_sin: &mut [f32]) {
    let half = inv.len();
    assert_eq!(cos_sin.len(), 2 * half);
    let (cos, sin) = cos_sin.split_at_mut(half);
    let p = pos as f32;
    for ((&f, c), s) in inv.iter().zip(cos).zip(sin) {
        (*s, *c) = (p * f).sin_cos();
    }
}
