//! Shape and dtype checks shared by every backend's ops, so that each op
//! validates its operands once, in one place, with the same typed errors on
//! every backend. Each returns the dimensions the kernels need.

use crate::{Backend, DType, Result, Shape, Tensor, TensorError};

pub(crate) fn mismatch(
    op: &'static str,
    what: &'static str,
    expected: impl Into<Shape>,
    got: &Shape,
) -> TensorError {
    TensorError::ShapeMismatch {
        op,
        what,
        expected: expected.into(),
        got: got.clone(),
    }
}

pub(crate) fn same_shape<B: Backend>(
    op: &'static str,
    what: &'static str,
    a: &Tensor<B>,
    b: &Tensor<B>,
) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(mismatch(op, what, a.shape().clone(), b.shape()));
    }
    Ok(())
}

/// Errors unless every tensor is f32.
pub(crate) fn all_f32<B: Backend>(
    op: &'static str,
    ts: &[(&'static str, &Tensor<B>)],
) -> Result<()> {
    for &(what, t) in ts {
        if t.dtype() != DType::F32 {
            return Err(TensorError::UnsupportedDType {
                op,
                what,
                dtype: t.dtype(),
            });
        }
    }
    Ok(())
}

fn out_of_range(op: &'static str, what: &'static str, value: usize, limit: usize) -> TensorError {
    TensorError::OutOfRange {
        op,
        what,
        value,
        limit,
    }
}

/// RMSNorm / LayerNorm: `x`, `out` f32 of one shape, each param f32 `[d]`; returns `d`.
pub(crate) fn norm<B: Backend>(
    op: &'static str,
    x: &Tensor<B>,
    params: &[(&'static str, &Tensor<B>)],
    out: &Tensor<B>,
) -> Result<usize> {
    all_f32(op, &[("x", x), ("out", out)])?;
    all_f32(op, params)?;
    same_shape(op, "out", x, out)?;
    let d = x.shape().last();
    for &(what, p) in params {
        if p.shape().dims() != [d] {
            return Err(mismatch(op, what, [d], p.shape()));
        }
    }
    Ok(d)
}

/// RoPE: `x` f32 `[t, h, hd]`, `hd` even, `h > 0`; returns `(t, h, hd)`.
pub(crate) fn rope<B: Backend>(x: &Tensor<B>) -> Result<(usize, usize, usize)> {
    const OP: &str = "rope";
    all_f32(OP, &[("x", x)])?;
    let &[t, h, hd] = x.shape().dims() else {
        return Err(mismatch(OP, "x (must be [t, h, hd])", [0, 0, 0], x.shape()));
    };
    if !hd.is_multiple_of(2) || h == 0 {
        return Err(mismatch(
            OP,
            "x (hd must be even, h > 0)",
            [t, h.max(1), hd + 1],
            x.shape(),
        ));
    }
    Ok((t, h, hd))
}

/// Short conv: `w` `[d, l]`, `bcx` `[t, 3d]`, `state` `[l − 1, d]`, `out` `[t, d]`;
/// returns `(t, d, l)`.
pub(crate) fn short_conv<B: Backend>(
    bcx: &Tensor<B>,
    w: &Tensor<B>,
    state: &Tensor<B>,
    out: &Tensor<B>,
) -> Result<(usize, usize, usize)> {
    const OP: &str = "short_conv";
    all_f32(
        OP,
        &[("bcx", bcx), ("w", w), ("state", state), ("out", out)],
    )?;
    let &[d, l] = w.shape().dims() else {
        return Err(mismatch(OP, "w (must be [d, l])", [0, 0], w.shape()));
    };
    if l == 0 || d == 0 {
        return Err(mismatch(
            OP,
            "w (must be [d, l], both > 0)",
            [1, 1],
            w.shape(),
        ));
    }
    let t = out.shape().rows();
    if out.shape().last() != d {
        return Err(mismatch(OP, "out", [t, d], out.shape()));
    }
    if bcx.shape().dims() != [t, 3 * d] {
        return Err(mismatch(OP, "bcx", [t, 3 * d], bcx.shape()));
    }
    if state.shape().dims() != [l - 1, d] {
        return Err(mismatch(OP, "state", [l - 1, d], state.shape()));
    }
    Ok((t, d, l))
}

/// The dimensions of one attention call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttnShape {
    pub t: usize,
    pub h: usize,
    pub h_kv: usize,
    pub hd: usize,
}

/// Attention: `q`, `out` `[t, h, hd]`; `k`, `v` `[s, h_kv, hd]` with
/// `h % h_kv = 0`; `kv_len ≤ s` (and `≥ t` when causal).
pub(crate) fn attention<B: Backend>(
    q: &Tensor<B>,
    k: &Tensor<B>,
    v: &Tensor<B>,
    kv_len: usize,
    causal: bool,
    out: &Tensor<B>,
) -> Result<AttnShape> {
    const OP: &str = "attention";
    all_f32(OP, &[("q", q), ("k", k), ("v", v), ("out", out)])?;
    let &[t, h, hd] = q.shape().dims() else {
        return Err(mismatch(OP, "q (must be [t, h, hd])", [0, 0, 0], q.shape()));
    };
    let &[s, h_kv, hd_k] = k.shape().dims() else {
        return Err(mismatch(
            OP,
            "k (must be [s, h_kv, hd])",
            [0, 0, hd],
            k.shape(),
        ));
    };
    if hd_k != hd || h_kv == 0 || !h.is_multiple_of(h_kv) {
        return Err(mismatch(
            OP,
            "k (hd must match, h % h_kv = 0)",
            [s, h_kv.max(1), hd],
            k.shape(),
        ));
    }
    same_shape(OP, "v", k, v)?;
    same_shape(OP, "out", q, out)?;
    if kv_len > s || (causal && kv_len < t) {
        return Err(out_of_range(OP, "kv_len", kv_len, s));
    }
    Ok(AttnShape { t, h, h_kv, hd })
}

/// Gather: `table` `[vocab, d]`, `out` f32 `[ids.len(), d]`, every id < vocab;
/// returns `(vocab, d)`.
pub(crate) fn gather_rows<B: Backend>(
    table: &Tensor<B>,
    ids: &[u32],
    out: &Tensor<B>,
) -> Result<(usize, usize)> {
    const OP: &str = "gather_rows";
    all_f32(OP, &[("out", out)])?;
    let &[vocab, d] = table.shape().dims() else {
        return Err(mismatch(
            OP,
            "table (must be [vocab, d])",
            [0, 0],
            table.shape(),
        ));
    };
    if out.shape().dims() != [ids.len(), d] {
        return Err(mismatch(OP, "out", [ids.len(), d], out.shape()));
    }
    if let Some(&bad) = ids.iter().find(|&&i| i as usize >= vocab) {
        return Err(out_of_range(OP, "token id", bad as usize, vocab));
    }
    Ok((vocab, d))
}

/// Row copies: `part` `[t, w]` at rows `row0..row0 + t` of `whole` `[rows, w]`;
/// `part_name` names `part` in errors. Returns `(t, w)`.
pub(crate) fn rows<B: Backend>(
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

/// Column copies: `out` `[rows, c]` from columns `col0..col0 + c` of `src`
/// `[rows, c_src]` (both f32, viewed as rows × last dimension). Returns
/// `(rows, c_src, c)`.
pub(crate) fn cols<B: Backend>(
    op: &'static str,
    src: &Tensor<B>,
    col0: usize,
    out: &Tensor<B>,
) -> Result<(usize, usize, usize)> {
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

/// The attention layer's input side (`Backend::qkv_norm_rope`): `q_out`
/// as for rope (`[t, h, hd]`, `hd` even), `q_w` and `k_w` f32 `[hd]`, `qkv`
/// `[t, (h + 2·h_kv)·hd]`, the caches of one shape holding `s·h_kv` rows of
/// `hd` (`[s, h_kv, hd]` where they are 3-D) with `h_kv` dividing `h` and
/// `pos0 + t ≤ s`. Returns
/// `(t, h, h_kv, hd)`.
pub(crate) fn qkv_norm_rope<B: Backend>(
    qkv: &Tensor<B>,
    q_w: &Tensor<B>,
    k_w: &Tensor<B>,
    pos0: usize,
    q_out: &Tensor<B>,
    k_cache: &Tensor<B>,
    v_cache: &Tensor<B>,
) -> Result<(usize, usize, usize, usize)> {
    const OP: &str = "qkv_norm_rope";
    all_f32(
        OP,
        &[
            ("qkv", qkv),
            ("q_w", q_w),
            ("k_w", k_w),
            ("k_cache", k_cache),
            ("v_cache", v_cache),
        ],
    )?;
    let (t, h, hd) = rope(q_out)?;
    for (what, w) in [("q_w", q_w), ("k_w", k_w)] {
        if w.shape().dims() != [hd] {
            return Err(mismatch(OP, what, [hd], w.shape()));
        }
    }
    same_shape(OP, "v_cache (as k_cache)", k_cache, v_cache)?;
    let width = qkv.shape().last();
    let per_kv = 2 * hd.max(1);
    let h_kv = width.saturating_sub(h * hd) / per_kv;
    if qkv.shape().rows() != t
        || h_kv == 0
        || width != (h + 2 * h_kv) * hd
        || !h.is_multiple_of(h_kv)
    {
        return Err(mismatch(
            OP,
            "qkv (as [t, (h + 2·h_kv)·hd], h_kv dividing h)",
            [t, (h + 2 * h_kv.max(1)) * hd],
            qkv.shape(),
        ));
    }
    let rows = k_cache.shape().elem_count() / (h_kv * hd).max(1);
    let heads_ok = match k_cache.shape().dims() {
        &[_, heads, _] => heads == h_kv,
        _ => true,
    };
    if k_cache.shape().last() != hd || rows * h_kv * hd != k_cache.shape().elem_count() || !heads_ok
    {
        return Err(mismatch(
            OP,
            "k_cache (as [s, h_kv, hd])",
            [rows, h_kv, hd],
            k_cache.shape(),
        ));
    }
    if pos0 + t > rows {
        return Err(out_of_range(OP, "pos0 + t (cache rows)", pos0 + t, rows));
    }
    Ok((t, h, h_kv, hd))
}

/// SwiGLU over stacked halves: `gu` `[t, 2f]` (gate | up), `out` `[t, f]`;
/// returns `(t, f)`.
pub(crate) fn swiglu<B: Backend>(gu: &Tensor<B>, out: &Tensor<B>) -> Result<(usize, usize)> {
    const OP: &str = "swiglu";
    all_f32(OP, &[("gu", gu), ("out", out)])?;
    let (t, f) = (out.shape().rows(), out.shape().last());
    if gu.shape().rows() != t || gu.shape().last() != 2 * f {
        return Err(mismatch(OP, "gu (gate | up)", [t, 2 * f], gu.shape()));
    }
    Ok((t, f))
}

/// Pixel unshuffle: `x` `[h·w, d]` with `h`, `w` even, `out` `[(h/2)(w/2), 4d]`; returns `d`.
pub(crate) fn pixel_unshuffle<B: Backend>(
    x: &Tensor<B>,
    h: usize,
    w: usize,
    out: &Tensor<B>,
) -> Result<usize> {
    const OP: &str = "pixel_unshuffle";
    all_f32(OP, &[("x", x), ("out", out)])?;
    let d = x.shape().last();
    if !h.is_multiple_of(2) || !w.is_multiple_of(2) || x.shape().dims() != [h * w, d] {
        return Err(mismatch(
            OP,
            "x (must be [h·w, d], h and w even)",
            [h * w, d],
            x.shape(),
        ));
    }
    if out.shape().dims() != [h * w / 4, 4 * d] {
        return Err(mismatch(OP, "out", [h * w / 4, 4 * d], out.shape()));
    }
    Ok(d)
}

/// Elementwise ops: every tensor f32 and of the first one's shape.
pub(crate) fn elementwise<B: Backend>(
    op: &'static str,
    ts: &[(&'static str, &Tensor<B>)],
) -> Result<()> {
    all_f32(op, ts)?;
    if let Some(&(_, first)) = ts.first() {
        for &(what, t) in &ts[1..] {
            same_shape(op, what, first, t)?;
        }
    }
    Ok(())
}
