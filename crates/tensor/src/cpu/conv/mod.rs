//! The LFM2 short-conv core (`kernels/short_conv.md`): `B ⊙ X`, a causal
//! depthwise conv over a carried state, gated by `C`, in one pass over the
//! channels (vectorised over `d`) with no allocation.
//!
//! One generic body ([`body`]); each ISA instantiates it through a thin
//! `#[target_feature]` wrapper in [`ConvIsa`]. [`reference`] is the f64 twin.

mod body;
pub mod reference;

use super::IsaToken;
use crate::cpu::dispatch::Scalar;
use crate::cpu::simd::Simd;

/// `bcx`: f32 `[t, 3d]` row-major, the chunks B | C | X in that order;
/// `w`: f32 `[d, l]` (channel `c`'s taps contiguous, the last tap multiplies
/// the current token); `state`: f32 `[l − 1, d]`, the previous `l − 1` rows
/// of `bx = B ⊙ X` (zeros at sequence start), replaced by the last `l − 1`
/// rows of `state ++ bx`; `out`: f32 `[t, d]`, overwritten with
/// `C ⊙ causal_conv(state ++ bx)`. `t = out.len() / d` (0 is a no-op).
///
/// f32 accumulation over the `l` taps in order; tolerance class "dot"
/// (`testing::tolerance::SHORT_CONV`); the new state is bit-exact. Any
/// split of a sequence into calls (prefill, chunks, single-token decode)
/// gives bit-identical outputs and state.
///
/// Panics if a slice length disagrees with `d, l` (the backend checks
/// tensor shapes first and returns errors).
#[track_caller]
pub fn short_conv(
    isa: IsaToken,
    bcx: &[f32],
    w: &[f32],
    state: &mut [f32],
    out: &mut [f32],
    d: usize,
    l: usize,
) {
    assert!(l >= 1 && d > 0, "short_conv needs d ≥ 1 and l ≥ 1");
    let t = out.len() / d;
    assert_eq!(out.len(), t * d, "out is not [t, d]");
    assert_eq!(bcx.len(), t * 3 * d, "bcx is not [t, 3d]");
    assert_eq!(w.len(), d * l, "w is not [d, l]");
    assert_eq!(state.len(), (l - 1) * d, "state is not [l - 1, d]");
    match isa {
        IsaToken::Scalar(s) => s.short_conv(bcx, w, state, out, d, l),
        #[cfg(target_arch = "x86_64")]
        IsaToken::Avx2(s) => s.short_conv(bcx, w, state, out, d, l),
        #[cfg(target_arch = "x86_64")]
        IsaToken::Avx512(s) => s.short_conv(bcx, w, state, out, d, l),
        #[cfg(target_arch = "aarch64")]
        IsaToken::Neon(s) => s.short_conv(bcx, w, state, out, d, l),
    }
}

/// The short-conv body of one ISA, behind `#[target_feature]`.
trait ConvIsa: Simd {
    fn short_conv(
        self,
        bcx: &[f32],
        w: &[f32],
        state: &mut [f32],
        out: &mut [f32],
        d: usize,
        l: usize,
    );
}

impl ConvIsa for Scalar {
    fn short_conv(
        self,
        bcx: &[f32],
        w: &[f32],
        state: &mut [f32],
        out: &mut [f32],
        d: usize,
        l: usize,
    ) {
        body::short_conv(self, bcx, w, state, out, d, l)
    }
}

/// Stamps the `#[target_feature]` wrapper and the [`ConvIsa`] impl of one
/// SIMD ISA: `isa!(Token, "features", wrapper_name)`.
macro_rules! isa {
    ($tok:ty, $feat:literal, $f:ident) => {
        #[target_feature(enable = $feat)]
        fn $f(
            s: $tok,
            bcx: &[f32],
            w: &[f32],
            state: &mut [f32],
            out: &mut [f32],
            d: usize,
            l: usize,
        ) {
            body::short_conv(s, bcx, w, state, out, d, l)
        }

        impl ConvIsa for $tok {
            fn short_conv(
                self,
                bcx: &[f32],
                w: &[f32],
                state: &mut [f32],
                out: &mut [f32],
                d: usize,
                l: usize,
            ) {
                // SAFETY: the token proves the features the wrapper enables.
                unsafe { $f(self, bcx, w, state, out, d, l) }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use crate::cpu::dispatch::{Avx2, Avx512};

    isa!(Avx2, "avx2,fma,f16c", short_conv_avx2);
    isa!(Avx512, "avx512f,avx2,fma,f16c", short_conv_avx512);
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::*;
    use crate::cpu::dispatch::Neon;

    isa!(Neon, "neon", short_conv_neon);
}
