//! Tensor-level glue of the CPU backend's model ops: each takes its
//! [`crate::op`] descriptor, runs the descriptor's shape and dtype checks,
//! then calls into the kernel module chosen by the ISA.

use half::{bf16, f16};
use rayon::prelude::*;

use super::attention::{self, AttnDims};
use super::matmul::{bf16dot, panels, quant};
use super::{CpuBackend, CpuStorage, conv, elementwise, norm, rope, vision};
use crate::{Result, op};

/// Below this many output elements a row-wise op stays on the caller's
/// thread: decode's rows (d ≤ 9216) never pay the pool's wake-up.
const PAR_MIN: usize = 1 << 15;

impl CpuBackend {
    /// Runs `f(first_row, rows)` over chunks of whole rows of `out`
    /// (`row_len` f32 each; 1 for elementwise ops), about four per pool
    /// thread when `out` holds at least [`PAR_MIN`] elements, else once on
    /// the caller's thread. Each kernel below computes every element from
    /// its own row only, so any chunking gives the same bits.
    fn par_rows(&self, out: &mut [f32], row_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
        let rows = out.len().checked_div(row_len).unwrap_or(0);
        let pool = self
            .pool()
            .filter(|p| p.current_num_threads() > 1 && out.len() >= PAR_MIN && rows > 1);
        let Some(pool) = pool else {
            f(0, out);
            return;
        };
        let per = rows.div_ceil(4 * pool.current_num_threads());
        pool.install(|| {
            out.par_chunks_mut(per * row_len)
                .enumerate()
                .for_each(|(i, chunk)| f(i * per, chunk))
        });
    }

    pub(super) fn op_rms_norm(&self, op: op::RmsNorm<'_, CpuBackend>) -> Result<()> {
        const OP: &str = op::RmsNorm::<CpuBackend>::NAME;
        op.check()?;
        let op::RmsNorm { x, w, eps, out } = op;
        let (xs, ws) = (x.storage().as_f32(OP, "x")?, w.storage().as_f32(OP, "w")?);
        let d = ws.len();
        self.par_rows(out.storage_mut().as_f32_mut(OP, "out")?, d, |r0, o| {
            norm::rms_norm(self.isa, &xs[r0 * d..r0 * d + o.len()], ws, eps, o)
        });
        Ok(())
    }

    pub(super) fn op_layer_norm(&self, op: op::LayerNorm<'_, CpuBackend>) -> Result<()> {
        const OP: &str = op::LayerNorm::<CpuBackend>::NAME;
        op.check()?;
        let op::LayerNorm { x, w, b, eps, out } = op;
        let (xs, ws, bs) = (
            x.storage().as_f32(OP, "x")?,
            w.storage().as_f32(OP, "w")?,
            b.storage().as_f32(OP, "b")?,
        );
        let d = ws.len();
        self.par_rows(out.storage_mut().as_f32_mut(OP, "out")?, d, |r0, o| {
            vision::layer_norm(self.isa, &xs[r0 * d..r0 * d + o.len()], ws, bs, eps, o)
        });
        Ok(())
    }

    pub(super) fn op_rope(&self, op: op::Rope<'_, CpuBackend>) -> Result<()> {
        let (_, h, hd) = op.check()?;
        let op::Rope { x, pos0, theta } = op;
        rope::rope(
            self.isa,
            x.storage_mut()
                .as_f32_mut(op::Rope::<CpuBackend>::NAME, "x")?,
            h,
            hd,
            pos0,
            theta,
        );
        Ok(())
    }

    /// See [`op::QkvNormRope`]: per head exactly the rms_norm and rope
    /// kernels, so the results equal the unfused ops bit for bit.
    pub(super) fn op_qkv_norm_rope(&self, op: op::QkvNormRope<'_, CpuBackend>) -> Result<()> {
        const OP: &str = op::QkvNormRope::<CpuBackend>::NAME;
        let op::AttnShape { t, h, h_kv, hd } = op.check()?;
        if t == 0 {
            return Ok(());
        }
        let op::QkvNormRope {
            qkv,
            q_w,
            k_w,
            eps,
            pos0,
            theta,
            q_out,
            k_cache,
            v_cache,
        } = op;
        let (nq, nk) = (h * hd, h_kv * hd);
        let src = qkv.storage().as_f32(OP, "qkv")?;
        let (qw, kw) = (
            q_w.storage().as_f32(OP, "q_w")?,
            k_w.storage().as_f32(OP, "k_w")?,
        );
        let rows = || src.chunks_exact(nq + 2 * nk);
        let q = q_out.storage_mut().as_f32_mut(OP, "q_out")?;
        for (row, out) in rows().zip(q.chunks_exact_mut(nq)) {
            norm::rms_norm(self.isa, &row[..nq], qw, eps, out);
        }
        rope::rope(self.isa, q, h, hd, pos0, theta);
        let kc = &mut k_cache.storage_mut().as_f32_mut(OP, "k_cache")?[pos0 * nk..(pos0 + t) * nk];
        for (row, out) in rows().zip(kc.chunks_exact_mut(nk)) {
            norm::rms_norm(self.isa, &row[nq..nq + nk], kw, eps, out);
        }
        rope::rope(self.isa, kc, h_kv, hd, pos0, theta);
        let vc = &mut v_cache.storage_mut().as_f32_mut(OP, "v_cache")?[pos0 * nk..(pos0 + t) * nk];
        for (row, out) in rows().zip(vc.chunks_exact_mut(nk)) {
            out.copy_from_slice(&row[nq + nk..]);
        }
        Ok(())
    }

    pub(super) fn op_short_conv(&self, op: op::ShortConv<'_, CpuBackend>) -> Result<()> {
        const OP: &str = op::ShortConv::<CpuBackend>::NAME;
        let (_, d, l) = op.check()?;
        let op::ShortConv { bcx, w, state, out } = op;
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

    pub(super) fn op_attention(&self, op: op::Attention<'_, CpuBackend>) -> Result<()> {
        const OP: &str = op::Attention::<CpuBackend>::NAME;
        let op::AttnShape { t, h, h_kv, hd } = op.check()?;
        let op::Attention {
            q,
            k,
            v,
            kv_len,
            causal,
            scale,
            out,
        } = op;
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
        let os = out.storage_mut().as_f32_mut(OP, "out")?;
        // bf16dot: prompts and images on bf16 dot products too; decode
        // (t = 1) stays on the f32 kernel, which reads K and V once.
        #[cfg(target_arch = "x86_64")]
        if let Some(tok) = self.bf16.filter(|_| t > 1) {
            attention::attention_bf16(tok, self.pool(), qs, ks, vs, os, dims);
            return Ok(());
        }
        attention::attention(self.isa, self.pool(), qs, ks, vs, os, dims);
        Ok(())
    }

    pub(super) fn op_silu_mul(&self, op: op::SiluMul<'_, CpuBackend>) -> Result<()> {
        const OP: &str = op::SiluMul::<CpuBackend>::NAME;
        op.check()?;
        let op::SiluMul { gate, up, out } = op;
        let (g, u) = (
            gate.storage().as_f32(OP, "gate")?,
            up.storage().as_f32(OP, "up")?,
        );
        self.par_rows(out.storage_mut().as_f32_mut(OP, "out")?, 1, |i, o| {
            let r = i..i + o.len();
            elementwise::silu_mul(self.isa, &g[r.clone()], &u[r], o)
        });
        Ok(())
    }

    pub(super) fn op_swiglu(&self, op: op::Swiglu<'_, CpuBackend>) -> Result<()> {
        const OP: &str = op::Swiglu::<CpuBackend>::NAME;
        let (_, f) = op.check()?;
        if f == 0 {
            return Ok(());
        }
        let op::Swiglu { gu, out } = op;
        let g = gu.storage().as_f32(OP, "gu")?;
        self.par_rows(out.storage_mut().as_f32_mut(OP, "out")?, f, |r0, o| {
            for (o, row) in o
                .chunks_exact_mut(f)
                .zip(g[2 * f * r0..].chunks_exact(2 * f))
            {
                let (gate, up) = row.split_at(f);
                elementwise::silu_mul(self.isa, gate, up, o);
            }
        });
        Ok(())
    }

    pub(super) fn op_gelu(&self, op: op::Gelu<'_, CpuBackend>) -> Result<()> {
        const OP: &str = op::Gelu::<CpuBackend>::NAME;
        op.check()?;
        let op::Gelu { x, kind, out } = op;
        let xs = x.storage().as_f32(OP, "x")?;
        self.par_rows(out.storage_mut().as_f32_mut(OP, "out")?, 1, |i, o| {
            vision::gelu(self.isa, &xs[i..i + o.len()], kind, o)
        });
        Ok(())
    }

    pub(super) fn op_add_assign(&self, op: op::AddAssign<'_, CpuBackend>) -> Result<()> {
        const OP: &str = op::AddAssign::<CpuBackend>::NAME;
        op.check()?;
        let op::AddAssign { x, y } = op;
        let ys = y.storage().as_f32(OP, "y")?;
        self.par_rows(x.storage_mut().as_f32_mut(OP, "x")?, 1, |i, xc| {
            elementwise::add_assign(self.isa, xc, &ys[i..i + xc.len()])
        });
        Ok(())
    }

    pub(super) fn op_gather_rows(&self, op: op::GatherRows<'_, CpuBackend>) -> Result<()> {
        let (_, d) = op.check()?;
        let op::GatherRows { table, ids, out } = op;
        gather(
            table.storage(),
            d,
            ids,
            out.storage_mut()
                .as_f32_mut(op::GatherRows::<CpuBackend>::NAME, "out")?,
        )
    }

    pub(super) fn op_copy_rows(&self, op: op::CopyRows<'_, CpuBackend>) -> Result<()> {
        const OP: &str = op::CopyRows::<CpuBackend>::NAME;
        let (t, w) = op.check()?;
        let op::CopyRows { src, dst, row0 } = op;
        let s = src.storage().as_f32(OP, "src")?;
        dst.storage_mut().as_f32_mut(OP, "dst")?[row0 * w..(row0 + t) * w].copy_from_slice(s);
        Ok(())
    }

    pub(super) fn op_slice_rows(&self, op: op::SliceRows<'_, CpuBackend>) -> Result<()> {
        const OP: &str = op::SliceRows::<CpuBackend>::NAME;
        let (t, w) = op.check()?;
        let op::SliceRows { src, row0, out } = op;
        let s = src.storage().as_f32(OP, "src")?;
        out.storage_mut()
            .as_f32_mut(OP, "out")?
            .copy_from_slice(&s[row0 * w..(row0 + t) * w]);
        Ok(())
    }

    pub(super) fn op_copy_cols(&self, op: op::CopyCols<'_, CpuBackend>) -> Result<()> {
        const OP: &str = op::CopyCols::<CpuBackend>::NAME;
        let (_, c_src, c) = op.check()?;
        if c == 0 {
            return Ok(());
        }
        let op::CopyCols { src, col0, out } = op;
        let s = src.storage().as_f32(OP, "src")?;
        self.par_rows(out.storage_mut().as_f32_mut(OP, "out")?, c, |r0, o| {
            for (o, s) in o
                .chunks_exact_mut(c)
                .zip(s[r0 * c_src..].chunks_exact(c_src))
            {
                o.copy_from_slice(&s[col0..col0 + c]);
            }
        });
        Ok(())
    }

    pub(super) fn op_pixel_unshuffle(&self, op: op::PixelUnshuffle<'_, CpuBackend>) -> Result<()> {
        const OP: &str = op::PixelUnshuffle::<CpuBackend>::NAME;
        let d = op.check()?;
        let op::PixelUnshuffle { x, h, w, out } = op;
        let xs = x.storage().as_f32(OP, "x")?;
        vision::pixel_unshuffle(xs, h, w, d, out.storage_mut().as_f32_mut(OP, "out")?);
        Ok(())
    }
}

/// Row gather from plain or panel storage, widened to f32 (exact; int8
/// panels come out dequantized).
fn gather(table: &CpuStorage, d: usize, ids: &[u32], out: &mut [f32]) -> Result<()> {
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
        plain @ (CpuStorage::I8 { .. } | CpuStorage::BF16Pairs { .. }) => {
            return Err(super::panel_only("gather_rows", plain.dtype()));
        }
        CpuStorage::Blocks { data, .. } => {
            for (o, &id) in out.chunks_exact_mut(d).zip(ids) {
                data.as_ref().dequantize_row(id as usize, d, o);
            }
        }
        CpuStorage::Panels { layout, data, .. } => match &**data {
            CpuStorage::F32(t) => packed(t, *layout, d, ids, out),
            CpuStorage::BF16(t) => packed(t, *layout, d, ids, out),
            CpuStorage::F16(t) => packed(t, *layout, d, ids, out),
            CpuStorage::I8 { q, scale } => {
                for (o, &id) in out.chunks_exact_mut(d).zip(ids) {
                    quant::dequantize_row(q, scale, d, id as usize, *layout, o);
                }
            }
            CpuStorage::BF16Pairs { w, .. } => {
                for (o, &id) in out.chunks_exact_mut(d).zip(ids) {
                    bf16dot::unpack_row(w, d, id as usize, o);
                }
            }
            nested @ (CpuStorage::Panels { .. } | CpuStorage::Blocks { .. }) => {
                return Err(super::panel_only("gather_rows", nested.dtype()));
            }
        },
    }
    Ok(())
}
