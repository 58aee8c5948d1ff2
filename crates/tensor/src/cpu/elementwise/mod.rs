//! Elementwise kernels (`kernels/elementwise.md`): `silu_mul`, `add_assign`
//! and the vectorised `exp` they are built on.
//!
//! One generic body per kernel (`body.rs`, over [`Simd`]); each ISA
//! instantiates it through a thin `#[target_feature]` wrapper stamped by
//! `isa!` into [`ElementwiseIsa`]. Single-threaded: these ops are
//! memory-bound per call. Slices may start at any element offset.

mod body;
/// The vectorised `exp_v` body, shared with other kernels (softmax, gelu).
pub(crate) mod exp;
pub mod reference;

use crate::cpu::dispatch::{IsaToken, Scalar};
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
    match isa {
        IsaToken::Scalar(s) => s.silu_mul(gate, up, out),
        #[cfg(target_arch = "x86_64")]
        IsaToken::Avx2(s) => s.silu_mul(gate, up, out),
        #[cfg(target_arch = "x86_64")]
        IsaToken::Avx512(s) => s.silu_mul(gate, up, out),
        #[cfg(target_arch = "aarch64")]
        IsaToken::Neon(s) => s.silu_mul(gate, up, out),
    }
}

/// `x[i] += y[i]`, bit-exact (one IEEE f32 addition per element).
///
/// Panics unless the slices have the same length.
#[track_caller]
pub fn add_assign(isa: IsaToken, x: &mut [f32], y: &[f32]) {
    assert_eq!(x.len(), y.len(), "add_assign: x and y lengths differ");
    match isa {
        IsaToken::Scalar(s) => s.add_assign(x, y),
        #[cfg(target_arch = "x86_64")]
        IsaToken::Avx2(s) => s.add_assign(x, y),
        #[cfg(target_arch = "x86_64")]
        IsaToken::Avx512(s) => s.add_assign(x, y),
        #[cfg(target_arch = "aarch64")]
        IsaToken::Neon(s) => s.add_assign(x, y),
    }
}

/// `out[i] = eˣ⁽ⁱ⁾` with the vectorised f32 `exp` that [`silu_mul`] uses
/// (tolerance `testing::tolerance::EXP`, in ulps). `exp(+inf) = +inf`,
/// `exp(−inf) = +0`, NaN stays NaN; underflow is gradual (subnormals).
///
/// Panics unless the slices have the same length.
#[track_caller]
pub fn exp(isa: IsaToken, x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "exp: x and out lengths differ");
    match isa {
        IsaToken::Scalar(s) => s.exp(x, out),
        #[cfg(target_arch = "x86_64")]
        IsaToken::Avx2(s) => s.exp(x, out),
        #[cfg(target_arch = "x86_64")]
        IsaToken::Avx512(s) => s.exp(x, out),
        #[cfg(target_arch = "aarch64")]
        IsaToken::Neon(s) => s.exp(x, out),
    }
}

/// The elementwise kernels of one ISA: the generic bodies behind
/// `#[target_feature]`.
pub(crate) trait ElementwiseIsa: Simd {
    fn silu_mul(self, gate: &[f32], up: &[f32], out: &mut [f32]);
    fn add_assign(self, x: &mut [f32], y: &[f32]);
    fn exp(self, x: &[f32], out: &mut [f32]);
}

impl ElementwiseIsa for Scalar {
    fn silu_mul(self, gate: &[f32], up: &[f32], out: &mut [f32]) {
        body::silu_mul(self, gate, up, out)
    }
    fn add_assign(self, x: &mut [f32], y: &[f32]) {
        body::add_assign(self, x, y)
    }
    fn exp(self, x: &[f32], out: &mut [f32]) {
        body::exp(self, x, out)
    }
}

/// Stamps module `$m` of `#[target_feature(enable = $feat)]` wrappers around
/// the generic bodies and the [`ElementwiseIsa`] impl of token `$tok`.
macro_rules! isa {
    ($m:ident, $tok:ident, $feat:literal) => {
        mod $m {
            use super::body;
            use crate::cpu::dispatch::$tok;

            #[target_feature(enable = $feat)]
            pub(super) fn silu_mul(s: $tok, gate: &[f32], up: &[f32], out: &mut [f32]) {
                body::silu_mul(s, gate, up, out)
            }
            #[target_feature(enable = $feat)]
            pub(super) fn add_assign(s: $tok, x: &mut [f32], y: &[f32]) {
                body::add_assign(s, x, y)
            }
            #[target_feature(enable = $feat)]
            pub(super) fn exp(s: $tok, x: &[f32], out: &mut [f32]) {
                body::exp(s, x, out)
            }
        }

        impl ElementwiseIsa for crate::cpu::dispatch::$tok {
            fn silu_mul(self, gate: &[f32], up: &[f32], out: &mut [f32]) {
                // SAFETY: the token proves the features the wrapper enables.
                unsafe { $m::silu_mul(self, gate, up, out) }
            }
            fn add_assign(self, x: &mut [f32], y: &[f32]) {
                // SAFETY: the token proves the features the wrapper enables.
                unsafe { $m::add_assign(self, x, y) }
            }
            fn exp(self, x: &[f32], out: &mut [f32]) {
                // SAFETY: the token proves the features the wrapper enables.
                unsafe { $m::exp(self, x, out) }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
isa!(avx2, Avx2, "avx2,fma,f16c");
#[cfg(target_arch = "x86_64")]
isa!(avx512, Avx512, "avx512f,avx2,fma,f16c");
#[cfg(target_arch = "aarch64")]
isa!(neon, Neon, "neon");
