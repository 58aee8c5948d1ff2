//! Elementwise kernels (`kernels/elementwise.md`): `silu_mul`, `add_assign`
//! and the vectorised `exp` they are built on.
//!
//! One generic body per kernel (`body.rs`, over [`Simd`]), run on the
//! backend's tier by `IsaToken::dispatch`. Single-threaded: these ops are
//! memory-bound per call. Slices may start at any element offset.

mod body;
/// The vectorised `exp_v` body, shared with other kernels (softmax, gelu).
pub(crate) mod exp;
pub mod reference;

use crate::cpu::dispatch::{IsaToken, SimdOp};
use crate::cpu::simd::Simd;

/// `out[i] = silu(gate[i]) · up[i]` with `silu(g) = g / (1 + e⁻ᵍ)`, in f32
/// with the vectorised `exp` (tolerance class: exp-based elementwise,
/// `testing::tolerance::SILU_MUL`). `gate = −inf` gives NaN (`−inf/inf`),
/// as in PyTorch; NaN in either input gives NaN.
///
/// Panics unless the three slices have the same length.
#[track_caller]
pub fn silu_mul(isa: IsaToken, gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(
        gate.len() == out.len() && up.len() == out.len(),
        "silu_mul: gate {}, up {}, out {} elements",
        gate.len(),
        up.len(),
        out.len()
    );
    isa.dispatch(SiluMul { gate, up, out })
}

/// `x[i] += y[i]`, bit-exact (one IEEE f32 addition per element).
///
/// Panics unless the slices have the same length.
#[track_caller]
pub fn add_assign(isa: IsaToken, x: &mut [f32], y: &[f32]) {
    assert_eq!(x.len(), y.len(), "add_assign: x and y lengths differ");
    isa.dispatch(AddAssign { x, y })
}

/// `out[i] = eˣ⁽ⁱ⁾` with the vectorised f32 `exp` that [`silu_mul`] uses
/// (tolerance `testing::tolerance::EXP`, in ulps). `exp(+inf) = +inf`,
/// `exp(−inf) = +0`, NaN stays NaN; underflow is gradual (subnormals).
///
/// Panics unless the slices have the same length.
#[track_caller]
pub fn exp(isa: IsaToken, x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "exp: x and out lengths differ");
    isa.dispatch(Exp { x, out })
}

/// [`silu_mul`]'s body as a [`SimdOp`].
struct SiluMul<'a> {
    gate: &'a [f32],
    up: &'a [f32],
    out: &'a mut [f32],
}

impl SimdOp for SiluMul<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        body::silu_mul(s, self.gate, self.up, self.out)
    }
}

/// [`add_assign`]'s body as a [`SimdOp`].
struct AddAssign<'a> {
    x: &'a mut [f32],
    y: &'a [f32],
}

impl SimdOp for AddAssign<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        body::add_assign(s, self.x, self.y)
    }
}

/// [`exp`]'s body as a [`SimdOp`].
struct Exp<'a> {
    x: &'a [f32],
    out: &'a mut [f32],
}

impl SimdOp for Exp<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        body::exp(s, self.x, self.out)
    }
}
