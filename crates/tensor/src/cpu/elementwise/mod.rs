//! Elementwise and data-movement kernels (`kernels/elementwise.md`):
//! `silu_mul`, `add_assign`, row gather and row copies.

use super::IsaToken;

/// `out = silu(gate) ⊙ up`.
pub fn silu_mul(_isa: IsaToken, gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(gate.len() == up.len() && up.len() == out.len());
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = g / (1.0 + (-g).exp()) * u;
    }
}

/// `x += y`.
pub fn add_assign(_isa: IsaToken, x: &mut [f32], y: &[f32]) {
    assert_eq!(x.len(), y.len());
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
