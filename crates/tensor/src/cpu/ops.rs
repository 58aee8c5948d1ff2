//! Tensor-level glue of the CPU backend's model ops: shape and dtype checks
//! (typed errors), then one call into the kernel module chosen by the ISA.

use half::{bf16, f16};

use super::attention::{self, AttnDims};
use super::matmul::panels;
use super::{CpuBackend, CpuStorage, conv, elementwise, norm, rope, vision};
use crate::{Gelu, Result, Shape, Tensor, TensorError};

type T = Tensor<CpuBackend>;

fn mismatch(
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

fn same_shape(op: &'static str, what: &'static str, a: &T, b: &T) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(mismatch(op, what, a.shape().clone(), b.shape()));
    }
    Ok(())
}

impl CpuBackend {
    pub(super) fn op_rms_norm(&self, x: &T, w: &T, eps: f32, out: &mut T) -> Result<()> {
        const OP: &str = "rms_norm";
        same_shape(OP, "out", x, out)?;
        let d = x.shape().last();
        if w.shape().dims() != [d] {
            return Err(mismatch(OP, "w", [d], w.shape()));
        }
        let (xs, ws) = (x.storage().as_f32(OP, "x")?, w.storage().as_f32(OP, "w")?);
        norm::rms_norm(
            self.isa,
            xs,
            ws,
            eps,
            out.storage_mut().as_f32_mut(OP, "out")?,
        );
        Ok(())
    }

    pub(super) fn op_rope(&self, x: &mut T, pos0: usize, theta: f32) -> Result<()> {
        const OP: &str = "rope";
        let &[_, h, hd] = x.shape().dims() else {
            return Err(mismatch(OP, "x (must be [t, h, hd])", [0, 0, 0], x.shape()));
        };
        if hd % 2 != 0 || h == 0 {
            return Err(mismatch(
                OP,
                "x (hd must be even, h > 0)",
                [0, h.max(1), hd + 1],
                x.shape(),
            ));
        }
        rope::rope(
            self.isa,
            x.storage_mut().as_f32_mut(OP, "x")?,
            h,
            hd,
            pos0,
            theta,
        );
        Ok(())
    }

    pub(super) fn op_short_conv(&self, bcx: &T, w: &T, state: &mut T, out: &mut T) -> Result<()> {
        const OP: &str = "short_conv";
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
        let (b, ws) = (
            bcx.storage().as_f32(OP, "bcx")?,
            w.storage().as_f32(OP, "w")?,
        );
        let st = state.storage_mut().as_f32_mut(OP, "state")?;
        conv::short_conv(
            self.isa,
            b,
            ws,
            st,
            out.storage_mut().as_f32_mut(OP, "out")?,
            d,
            l,
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn op_attention(
        &self,
        q: &T,
        k: &T,
        v: &T,
        kv_len: usize,
        causal: bool,
        scale: f32,
        out: &mut T,
    ) -> Result<()> {
        const OP: &str = "attention";
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
        if hd_k != hd || h_kv == 0 || h % h_kv != 0 {
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
            return Err(TensorError::OutOfRange {
                op: OP,
                what: "kv_len",
                value: kv_len,
                limit: s,
            });
        }
        let dims = AttnDims {
            t,
            h,
            h_kv,
            hd,
            kv_len,
            causal,
            scale,
        };
        let (qs, ks, vs) = (
            q.storage().as_f32(OP, "q")?,
            k.storage().as_f32(OP, "k")?,
            v.storage().as_f32(OP, "v")?,
        );
        attention::attention(
            self.isa,
            self.pool(),
            qs,
            ks,
            vs,
            out.storage_mut().as_f32_mut(OP, "out")?,
            dims,
        );
        Ok(())
    }

    pub(super) fn op_silu_mul(&self, gate: &T, up: &T, out: &mut T) -> Result<()> {
        const OP: &str = "silu_mul";
        same_shape(OP, "up", gate, up)?;
        same_shape(OP, "out", gate, out)?;
        let (g, u) = (
            gate.storage().as_f32(OP, "gate")?,
            up.storage().as_f32(OP, "up")?,
        );
        elementwise::silu_mul(self.isa, g, u, out.storage_mut().as_f32_mut(OP, "out")?);
        Ok(())
    }

    pub(super) fn op_add_assign(&self, x: &mut T, y: &T) -> Result<()> {
        const OP: &str = "add_assign";
        same_shape(OP, "y", x, y)?;
        let ys = y.storage().as_f32(OP, "y")?;
        elementwise::add_assign(self.isa, x.storage_mut().as_f32_mut(OP, "x")?, ys);
        Ok(())
    }

    pub(super) fn op_gather_rows(&self, table: &T, ids: &[u32], out: &mut T) -> Result<()> {
        const OP: &str = "gather_rows";
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
            return Err(TensorError::OutOfRange {
                op: OP,
                what: "token id",
                value: bad as usize,
                limit: vocab,
            });
        }
        let o = out.storage_mut().as_f32_mut(OP, "out")?;
        gather(table.storage(), vocab, d, ids, o);
        Ok(())
    }

    pub(super) fn op_copy_rows(&self, src: &T, dst: &mut T, row0: usize) -> Result<()> {
        const OP: &str = "copy_rows";
        let w = dst.shape().last();
        let rows = dst.shape().rows();
        if src.shape().last() != w {
            return Err(mismatch(OP, "src", [src.shape().rows(), w], src.shape()));
        }
        let t = src.shape().rows();
        if row0 + t > rows {
            return Err(TensorError::OutOfRange {
                op: OP,
                what: "row0 + t",
                value: row0 + t,
                limit: rows,
            });
        }
        let s = src.storage().as_f32(OP, "src")?;
        dst.storage_mut().as_f32_mut(OP, "dst")?[row0 * w..(row0 + t) * w].copy_from_slice(s);
        Ok(())
    }

    pub(super) fn op_slice_rows(&self, src: &T, row0: usize, out: &mut T) -> Result<()> {
        const OP: &str = "slice_rows";
        let w = src.shape().last();
        let rows = src.shape().rows();
        if out.shape().last() != w {
            return Err(mismatch(OP, "out", [out.shape().rows(), w], out.shape()));
        }
        let t = out.shape().rows();
        if row0 + t > rows {
            return Err(TensorError::OutOfRange {
                op: OP,
                what: "row0 + t",
                value: row0 + t,
                limit: rows,
            });
        }
        let s = src.storage().as_f32(OP, "src")?;
        out.storage_mut()
            .as_f32_mut(OP, "out")?
            .copy_from_slice(&s[row0 * w..(row0 + t) * w]);
        Ok(())
    }
}

impl CpuBackend {
    pub(super) fn op_layer_norm(&self, x: &T, w: &T, b: &T, eps: f32, out: &mut T) -> Result<()> {
        const OP: &str = "layer_norm";
        same_shape(OP, "out", x, out)?;
        let d = x.shape().last();
        for (what, t) in [("w", w), ("b", b)] {
            if t.shape().dims() != [d] {
                return Err(mismatch(OP, what, [d], t.shape()));
            }
        }
        let (xs, ws, bs) = (
            x.storage().as_f32(OP, "x")?,
            w.storage().as_f32(OP, "w")?,
            b.storage().as_f32(OP, "b")?,
        );
        vision::layer_norm(
            self.isa,
            xs,
            ws,
            bs,
            eps,
            out.storage_mut().as_f32_mut(OP, "out")?,
        );
        Ok(())
    }

    pub(super) fn op_gelu(&self, x: &T, kind: Gelu, out: &mut T) -> Result<()> {
        const OP: &str = "gelu";
        same_shape(OP, "out", x, out)?;
        vision::gelu(
            self.isa,
            x.storage().as_f32(OP, "x")?,
            kind,
            out.storage_mut().as_f32_mut(OP, "out")?,
        );
        Ok(())
    }

    pub(super) fn op_pixel_unshuffle(&self, x: &T, h: usize, w: usize, out: &mut T) -> Result<()> {
        const OP: &str = "pixel_unshuffle";
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
        let xs = x.storage().as_f32(OP, "x")?;
        vision::pixel_unshuffle(xs, h, w, d, out.storage_mut().as_f32_mut(OP, "out")?);
        Ok(())
    }
}

/// Row gather from plain or panel storage, widening to f32 (exact).
fn gather(table: &CpuStorage, vocab: usize, d: usize, ids: &[u32], out: &mut [f32]) {
    fn plain<E: crate::dtype::Element>(t: &[E], d: usize, ids: &[u32], out: &mut [f32]) {
        for (o, &id) in out.chunks_exact_mut(d).zip(ids) {
            for (o, v) in o.iter_mut().zip(&t[id as usize * d..][..d]) {
                *o = v.to_f32();
            }
        }
    }
    fn packed<E: crate::dtype::Element>(
        t: &[E],
        layout: panels::PanelLayout,
        d: usize,
        ids: &[u32],
        out: &mut [f32],
    ) {
        for (o, &id) in out.chunks_exact_mut(d).zip(ids) {
            panels::unpack_row(t, d, id as usize, layout, o);
        }
    }
    match table {
        CpuStorage::F32(t) => plain(t, d, ids, out),
        CpuStorage::BF16(t) => plain::<bf16>(t, d, ids, out),
        CpuStorage::F16(t) => plain::<f16>(t, d, ids, out),
        CpuStorage::Panels { layout, data, .. } => match &**data {
            CpuStorage::F32(t) => packed(t, *layout, d, ids, out),
            CpuStorage::BF16(t) => packed(t, *layout, d, ids, out),
            CpuStorage::F16(t) => packed(t, *layout, d, ids, out),
            CpuStorage::Panels { .. } => unreachable!("panels never nest"),
        },
    }
    let _ = vocab;
}
