//! NeoX ("rotate half") rotary embedding (`kernels/rope.md`), in place on
//! `[t, h, hd]`.
//!
//! The angle tables are scalar code shared by every ISA (`tables.rs`,
//! computed in f32 exactly as transformers does); only the rotation is
//! vectorised (`rotate.rs`, generic over [`Simd`], across the half
//! dimension of each head). The rotation uses separate products and one
//! add/sub per element, no FMA, so every ISA gives bit-identical results and
//! the same roundings as transformers' `q·cos + rotate_half(q)·sin`.

pub mod reference;
mod rotate;
pub mod tables;

use crate::cpu::dispatch::{IsaToken, SimdOp};
use crate::cpu::simd::Simd;

/// Head dims up to this size keep their tables on the stack (no allocation
/// per call); larger ones allocate once per call.
const STACK_HALF: usize = 256;

/// Rotates `x`: `[t, h, hd]` row-major, contiguous, in place; row `i` is at
/// position `pos0 + i`. For each head and `j < hd/2`, with
/// `θⱼ = f32(pos) · inv_freq[j]` ([`tables::inv_freq`]):
/// `x[j] ← x[j]·cos θⱼ − x[j + hd/2]·sin θⱼ`,
/// `x[j + hd/2] ← x[j + hd/2]·cos θⱼ + x[j]·sin θⱼ`.
/// f32 throughout; bit-identical across ISAs (tolerance class: dot,
/// `testing::tolerance::ROPE`). NaN/Inf in an element reach only its pair.
///
/// Panics unless `hd` is even, `h > 0` and `x` is whole rows of `h·hd`.
#[track_caller]
pub fn rope(isa: IsaToken, x: &mut [f32], h: usize, hd: usize, pos0: usize, theta: f32) {
    assert!(
        hd.is_multiple_of(2) && h > 0,
        "rope: hd = {hd} must be even, h = {h} > 0"
    );
    if hd == 0 {
        assert!(x.is_empty(), "rope: hd = 0 but x is not empty");
        return;
    }
    assert_eq!(x.len() % (h * hd), 0, "rope: x is not [t, {h}, {hd}]");
    let half = hd / 2;
    let mut stack = [0.0f32; 3 * STACK_HALF];
    let mut heap = Vec::new();
    let buf = if half <= STACK_HALF {
        &mut stack[..3 * half]
    } else {
        heap.resize(3 * half, 0.0);
        &mut heap[..]
    };
    let (inv, cos_sin) = buf.split_at_mut(half);
    tables::inv_freq(theta, hd, inv);
    let args = rotate::Args {
        h,
        hd,
        pos0,
        inv,
        cos_sin,
    };
    isa.dispatch(Rope { x, args })
}

/// [`rope`]'s body as a [`SimdOp`].
struct Rope<'a> {
    x: &'a mut [f32],
    args: rotate::Args<'a>,
}

impl SimdOp for Rope<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        rotate::rope_rows(s, self.x, self.args)
    }
}
