//! The LFM2 short-conv core ([`ShortConv`]). Kernel spec:
//! `kernels/short_conv.md`.

use super::{all_f32, mismatch};
use crate::{Backend, Result, Tensor};

/// The LFM2 short-conv core for one sequence, prefill (`t > 1`) or decode
/// (`t = 1`) alike. `bcx`'s rows are the in_proj output's chunks
/// `B | C | X` in that order. With `bx = B ⊙ X`, the depthwise causal conv
/// of kernel length `l` over the sequence `state ++ bx`:
/// `conv[t, c] = Σ_{i<l} w[c, i] · seq[t + i, c]` (the last tap multiplies
/// the current token), and `out[t, c] = C[t, c] · conv[t, c]`.
pub struct ShortConv<'a, B: Backend> {
    /// f32 `[t, 3d]`, the in_proj output.
    pub bcx: &'a Tensor<B>,
    /// f32 `[d, l]` (the checkpoint's `[d, 1, l]`).
    pub w: &'a Tensor<B>,
    /// f32 `[l − 1, d]`, the previous `l − 1` rows of `bx` (zeros at
    /// sequence start); replaced by the last `l − 1` rows of `state ++ bx`.
    pub state: &'a mut Tensor<B>,
    /// f32 `[t, d]`.
    pub out: &'a mut Tensor<B>,
}

impl<B: Backend> ShortConv<'_, B> {
    pub const NAME: &'static str = "short_conv";

    /// Returns `(t, d, l)`.
    pub fn check(&self) -> Result<(usize, usize, usize)> {
        short_conv_dims(self.bcx, self.w, self.state, self.out)
    }
}

/// The short conv's checks, shared with [`super::MatmulShortConv`]:
/// `w` `[d, l]`, `bcx` `[t, 3d]`, `state` `[l − 1, d]`, `out` `[t, d]`;
/// returns `(t, d, l)`.
pub(crate) fn short_conv_dims<B: Backend>(
    bcx: &Tensor<B>,
    w: &Tensor<B>,
    state: &Tensor<B>,
    out: &Tensor<B>,
) -> Result<(usize, usize, usize)> {
    let op = ShortConv::<B>::NAME;
    all_f32(
        op,
        &[("bcx", bcx), ("w", w), ("state", state), ("out", out)],
    )?;
    let &[d, l] = w.shape().dims() else {
        return Err(mismatch(op, "w (must be [d, l])", [0, 0], w.shape()));
    };
    if l == 0 || d == 0 {
        return Err(mismatch(
            op,
            "w (must be [d, l], both > 0)",
            [1, 1],
            w.shape(),
        ));
    }
    let t = out.shape().rows();
    if out.shape().last() != d {
        return Err(mismatch(op, "out", [t, d], out.shape()));
    }
    if bcx.shape().dims() != [t, 3 * d] {
        return Err(mismatch(op, "bcx", [t, 3 * d], bcx.shape()));
    }
    if state.shape().dims() != [l - 1, d] {
        return Err(mismatch(op, "state", [l - 1, d], state.shape()));
    }
    Ok((t, d, l))
}
