//! The gathers and copies: the embedding lookup ([`GatherRows`]), row and
//! column copies ([`CopyRows`], [`SliceRows`], [`CopyCols`]) and the vision
//! connector's [`PixelUnshuffle`].

use super::{all_f32, mismatch, out_of_range};
use crate::{Backend, Result, Tensor};

/// Embedding gather: `out[i, :] = table[ids[i], :]` widened to f32. An id
/// ≥ vocab is an `OutOfRange` error.
pub struct GatherRows<'a, B: Backend> {
    /// `[vocab, d]` f32/bf16/f16, plain or from `upload_weight` (the tied LM
    /// head shares it).
    pub table: &'a Tensor<B>,
    pub ids: &'a [u32],
    /// f32 `[ids.len(), d]`.
    pub out: &'a mut Tensor<B>,
}

impl<B: Backend> GatherRows<'_, B> {
    pub const NAME: &'static str = "gather_rows";

    /// Returns `(vocab, d)`.
    pub fn check(&self) -> Result<(usize, usize)> {
        let op = Self::NAME;
        let (table, ids, out) = (self.table, self.ids, &*self.out);
        all_f32(op, &[("out", out)])?;
        let &[vocab, d] = table.shape().dims() else {
            return Err(mismatch(
                op,
                "table (must be [vocab, d])",
                [0, 0],
                table.shape(),
            ));
        };
        if out.shape().dims() != [ids.len(), d] {
            return Err(mismatch(op, "out", [ids.len(), d], out.shape()));
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(out_of_range(op, "token id", bad as usize, vocab));
        }
        Ok((vocab, d))
    }
}

/// Copies `src` into rows `row0..row0 + t` of `dst`: appending to a KV
/// cache. Rows past `s` are an `OutOfRange` error.
pub struct CopyRows<'a, B: Backend> {
    /// f32 `[t, w]`.
    pub src: &'a Tensor<B>,
    /// f32 `[s, w]`.
    pub dst: &'a mut Tensor<B>,
    pub row0: usize,
}

impl<B: Backend> CopyRows<'_, B> {
    pub const NAME: &'static str = "copy_rows";

    /// Returns `(t, w)`.
    pub fn check(&self) -> Result<(usize, usize)> {
        rows(Self::NAME, "src", self.src, self.dst, self.row0)
    }
}

/// Copies rows `row0..row0 + t` of `src` into `out`: e.g. the last
/// position's hidden state for the head.
pub struct SliceRows<'a, B: Backend> {
    /// f32 `[s, w]`.
    pub src: &'a Tensor<B>,
    pub row0: usize,
    /// f32 `[t, w]`.
    pub out: &'a mut Tensor<B>,
}

impl<B: Backend> SliceRows<'_, B> {
    pub const NAME: &'static str = "slice_rows";

    /// Returns `(t, w)`.
    pub fn check(&self) -> Result<(usize, usize)> {
        rows(Self::NAME, "out", self.out, self.src, self.row0)
    }
}

/// Row copies: `part` `[t, w]` at rows `row0..row0 + t` of `whole` `[rows, w]`;
/// `part_name` names `part` in errors. Returns `(t, w)`.
fn rows<B: Backend>(
    op: &'static str,
    part_name: &'static str,
    part: &Tensor<B>,
    whole: &Tensor<B>,
    row0: usize,
) -> Result<(usize, usize)> {
    all_f32(op, &[(part_name, part), ("whole", whole)])?;
    let (rows, w) = (whole.shape().rows(), whole.shape().last());
    let t = part.shape().rows();
    if part.shape().last() != w {
        return Err(mismatch(op, part_name, [t, w], part.shape()));
    }
    if row0 + t > rows {
        return Err(out_of_range(op, "row0 + t", row0 + t, rows));
    }
    Ok((t, w))
}

/// Copies columns `col0..col0 + c` of every row of `src` into `out`:
/// splitting a fused projection (e.g. q | k | v) into its parts. Past
/// `c_src` is an `OutOfRange` error.
pub struct CopyCols<'a, B: Backend> {
    /// f32 `[rows, c_src]` (viewed as rows × last dimension).
    pub src: &'a Tensor<B>,
    pub col0: usize,
    /// f32 `[rows, c]`.
    pub out: &'a mut Tensor<B>,
}

impl<B: Backend> CopyCols<'_, B> {
    pub const NAME: &'static str = "copy_cols";

    /// Returns `(rows, c_src, c)`.
    pub fn check(&self) -> Result<(usize, usize, usize)> {
        let op = Self::NAME;
        let (src, col0, out) = (self.src, self.col0, &*self.out);
        all_f32(op, &[("src", src), ("out", out)])?;
        let (rows, c_src) = (src.shape().rows(), src.shape().last());
        let c = out.shape().last();
        if out.shape().rows() != rows {
            return Err(mismatch(op, "out", [rows, c], out.shape()));
        }
        if col0.checked_add(c).is_none_or(|end| end > c_src) {
            return Err(out_of_range(
                op,
                "col0 + out columns",
                col0.saturating_add(c),
                c_src,
            ));
        }
        Ok((rows, c_src, c))
    }
}

/// Pixel unshuffle by 2 of one crop's features `x` (row-major over an
/// `h × w` grid, both even): output token `(a, b)` is the concatenation of
/// `x[2a, 2b]`, `x[2a, 2b+1]`, `x[2a+1, 2b]`, `x[2a+1, 2b+1]` (spec §5).
pub struct PixelUnshuffle<'a, B: Backend> {
    /// f32 `[h·w, d]`.
    pub x: &'a Tensor<B>,
    pub h: usize,
    pub w: usize,
    /// f32 `[(h/2)·(w/2), 4d]`.
    pub out: &'a mut Tensor<B>,
}

impl<B: Backend> PixelUnshuffle<'_, B> {
    pub const NAME: &'static str = "pixel_unshuffle";

    /// Returns `d`.
    pub fn check(&self) -> Result<usize> {
        let op = Self::NAME;
        let (x, h, w, out) = (self.x, self.h, self.w, &*self.out);
        all_f32(op, &[("x", x), ("out", out)])?;
        let d = x.shape().last();
        if !h.is_multiple_of(2) || !w.is_multiple_of(2) || x.shape().dims() != [h * w, d] {
            return Err(mismatch(
                op,
                "x (must be [h·w, d], h and w even)",
                [h * w, d],
                x.shape(),
            ));
        }
        if out.shape().dims() != [h * w / 4, 4 * d] {
            return Err(mismatch(op, "out", [h * w / 4, 4 * d], out.shape()));
        }
        Ok(d)
    }
}
