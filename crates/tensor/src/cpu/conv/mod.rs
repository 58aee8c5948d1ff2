//! The LFM2 short-conv core (`kernels/short_conv.md`): `B ⊙ X`, a causal
//! depthwise conv over a carried state, gated by `C`, in one pass over the
//! channels (vectorised over `d`) with no allocation.
//!
//! One generic body (`body.rs`), run on the backend's tier by
//! `IsaToken::dispatch`. [`reference`](mod@reference) is the f64 twin.

mod body;
pub mod reference;

use crate::cpu::dispatch::{IsaToken, SimdOp};
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
    isa.dispatch(ShortConv {
        bcx,
        w,
        state,
        out,
        d,
        l,
    })
}

/// [`short_conv`]'s body as a [`SimdOp`].
struct ShortConv<'a> {
    bcx: &'a [f32],
    w: &'a [f32],
    state: &'a mut [f32],
    out: &'a mut [f32],
    d: usize,
    l: usize,
}

impl SimdOp for ShortConv<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let ShortConv {
            bcx,
            w,
            state,
            out,
            d,
            l,
        } = self;
        body::short_conv(s, bcx, w, state, out, d, l)
    }
}
