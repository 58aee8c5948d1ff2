//! The attention layer's ops: [`Attention`], the rotary embedding
//! ([`Rope`]) and the fused input side ([`QkvNormRope`]: per-head norms,
//! rotation and the KV-cache append). Kernel specs: `kernels/attention.md`,
//! `kernels/rope.md`.

use super::{all_f32, mismatch, out_of_range, same_shape};
use crate::{Backend, Result, Tensor};

/// Multi-head attention with grouped KV heads, for one sequence. Of `k` and
/// `v`, rows `0..kv_len` are used (a KV cache may be longer); query head `i`
/// reads kv head `i / (h / h_kv)`. Causal: query row `r` sits at position
/// `kv_len − t + r` and sees keys `0..=kv_len − t + r`; non-causal: every
/// query sees all `kv_len` keys.
/// `out[r, i, :] = softmax(scale · q[r, i, :] · kᵀ) · v`, softmax in f32.
/// Long `kv_len` must not materialise `t × kv_len`.
pub struct Attention<'a, B: Backend> {
    /// f32 `[t, h, hd]`.
    pub q: &'a Tensor<B>,
    /// f32 `[s, h_kv, hd]` with `h % h_kv = 0`.
    pub k: &'a Tensor<B>,
    /// f32 `[s, h_kv, hd]`.
    pub v: &'a Tensor<B>,
    /// Keys used: `kv_len ≤ s`, and `≥ t` when causal.
    pub kv_len: usize,
    pub causal: bool,
    pub scale: f32,
    /// f32 `[t, h, hd]`.
    pub out: &'a mut Tensor<B>,
}

/// The dimensions of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnShape {
    /// Query rows.
    pub t: usize,
    /// Query heads.
    pub h: usize,
    /// KV heads (dividing `h`).
    pub h_kv: usize,
    /// Head width.
    pub hd: usize,
}

impl<B: Backend> Attention<'_, B> {
    pub const NAME: &'static str = "attention";

    pub fn check(&self) -> Result<AttnShape> {
        let op = Self::NAME;
        let (q, k, v, out) = (self.q, self.k, self.v, &*self.out);
        all_f32(op, &[("q", q), ("k", k), ("v", v), ("out", out)])?;
        let &[t, h, hd] = q.shape().dims() else {
            return Err(mismatch(op, "q (must be [t, h, hd])", [0, 0, 0], q.shape()));
        };
        let &[s, h_kv, hd_k] = k.shape().dims() else {
            return Err(mismatch(
                op,
                "k (must be [s, h_kv, hd])",
                [0, 0, hd],
                k.shape(),
            ));
        };
        if hd_k != hd || h_kv == 0 || !h.is_multiple_of(h_kv) {
            return Err(mismatch(
                op,
                "k (hd must match, h % h_kv = 0)",
                [s, h_kv.max(1), hd],
                k.shape(),
            ));
        }
        same_shape(op, "v", k, v)?;
        same_shape(op, "out", q, out)?;
        let kv_len = self.kv_len;
        if kv_len > s || (self.causal && kv_len < t) {
            return Err(out_of_range(op, "kv_len", kv_len, s));
        }
        Ok(AttnShape { t, h, h_kv, hd })
    }
}

/// NeoX (half-split) rotary embedding, in place; row `i` of `x` has
/// position `pos0 + i`. For pair `j < hd/2`: `inv = theta^(−2j/hd)` and
/// `a = pos · inv`, both computed in f32 as transformers does;
/// `(x_j, x_{j+hd/2}) ← (x_j·cos a − x_{j+hd/2}·sin a,
/// x_{j+hd/2}·cos a + x_j·sin a)`.
pub struct Rope<'a, B: Backend> {
    /// f32 `[t, h, hd]`, `hd` even; rotated in place.
    pub x: &'a mut Tensor<B>,
    pub pos0: usize,
    pub theta: f32,
}

impl<B: Backend> Rope<'_, B> {
    pub const NAME: &'static str = "rope";

    /// Returns `(t, h, hd)`.
    pub fn check(&self) -> Result<(usize, usize, usize)> {
        rope_dims(self.x)
    }
}

/// `x` f32 `[t, h, hd]`, `hd` even, `h > 0`; returns `(t, h, hd)`.
fn rope_dims<B: Backend>(x: &Tensor<B>) -> Result<(usize, usize, usize)> {
    let op = Rope::<B>::NAME;
    all_f32(op, &[("x", x)])?;
    let &[t, h, hd] = x.shape().dims() else {
        return Err(mismatch(op, "x (must be [t, h, hd])", [0, 0, 0], x.shape()));
    };
    if !hd.is_multiple_of(2) || h == 0 {
        return Err(mismatch(
            op,
            "x (hd must be even, h > 0)",
            [t, h.max(1), hd + 1],
            x.shape(),
        ));
    }
    Ok((t, h, hd))
}

/// The input side of an LFM2 attention layer from the stacked projection
/// `qkv`, each row `q | k | v` (h, h_kv and h_kv heads of `hd`). Writes
/// `q_out = rope(rms_norm(q, q_w, eps), pos0, theta)`, appends
/// `rope(rms_norm(k, k_w, eps), pos0, theta)` to `k_cache` and `v` to
/// `v_cache` at rows `pos0 .. pos0 + t`. The norm and the rotation are
/// those of [`super::RmsNorm`] and [`Rope`] per head.
pub struct QkvNormRope<'a, B: Backend> {
    /// f32 `[t, (h + 2·h_kv)·hd]`.
    pub qkv: &'a Tensor<B>,
    /// f32 `[hd]`.
    pub q_w: &'a Tensor<B>,
    /// f32 `[hd]`.
    pub k_w: &'a Tensor<B>,
    pub eps: f32,
    pub pos0: usize,
    pub theta: f32,
    /// f32 `[t, h, hd]`.
    pub q_out: &'a mut Tensor<B>,
    /// f32 `[s, h_kv, hd]`, or any shape of `s·h_kv` rows of `hd`;
    /// `pos0 + t ≤ s`.
    pub k_cache: &'a mut Tensor<B>,
    /// f32, `k_cache`'s shape.
    pub v_cache: &'a mut Tensor<B>,
}

impl<B: Backend> QkvNormRope<'_, B> {
    pub const NAME: &'static str = "qkv_norm_rope";

    /// `q_out` as for [`Rope`] (`[t, h, hd]`, `hd` even), `q_w` and `k_w`
    /// f32 `[hd]`, `qkv` `[t, (h + 2·h_kv)·hd]`, the caches of one shape
    /// holding `s·h_kv` rows of `hd` (`[s, h_kv, hd]` where they are 3-D)
    /// with `h_kv` dividing `h` and `pos0 + t ≤ s`.
    pub fn check(&self) -> Result<AttnShape> {
        let op = Self::NAME;
        let (qkv, q_w, k_w) = (self.qkv, self.q_w, self.k_w);
        let (k_cache, v_cache) = (&*self.k_cache, &*self.v_cache);
        all_f32(
            op,
            &[
                ("qkv", qkv),
                ("q_w", q_w),
                ("k_w", k_w),
                ("k_cache", k_cache),
                ("v_cache", v_cache),
            ],
        )?;
        let (t, h, hd) = rope_dims(self.q_out)?;
        for (what, w) in [("q_w", q_w), ("k_w", k_w)] {
            if w.shape().dims() != [hd] {
                return Err(mismatch(op, what, [hd], w.shape()));
            }
        }
        same_shape(op, "v_cache (as k_cache)", k_cache, v_cache)?;
        let width = qkv.shape().last();
        let per_kv = 2 * hd.max(1);
        let h_kv = width.saturating_sub(h * hd) / per_kv;
        if qkv.shape().rows() != t
            || h_kv == 0
            || width != (h + 2 * h_kv) * hd
            || !h.is_multiple_of(h_kv)
        {
            return Err(mismatch(
                op,
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
        if k_cache.shape().last() != hd
            || rows * h_kv * hd != k_cache.shape().elem_count()
            || !heads_ok
        {
            return Err(mismatch(
                op,
                "k_cache (as [s, h_kv, hd])",
                [rows, h_kv, hd],
                k_cache.shape(),
            ));
        }
        if self.pos0 + t > rows {
            return Err(out_of_range(
                op,
                "pos0 + t (cache rows)",
                self.pos0 + t,
                rows,
            ));
        }
        Ok(AttnShape { t, h, h_kv, hd })
    }
}
