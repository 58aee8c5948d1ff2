//! A few rows of `x` (2 to [`GEMV_ROWS`]: a batched decode step) on block
//! weights without an integer GEMM (the k-quants, and row-major Q8_0 /
//! Q4_0): each row runs its own GEMV (its `x` quantized as a GEMV's, the
//! same dot products), so every row is bit-identical to that row decoded
//! alone, instead of the GEMM's decode to f32 panels, which a few rows
//! cannot pay for. The rows take the weights a chunk of ~128 KiB at a
//! time, so each chunk comes from memory once and from L2 for the others.

use rayon::prelude::*;

use super::{QKernels, XQ, XQuant};
use crate::cpu::dispatch::{Avx512Vnni, NeonDot};
use crate::cpu::matmul::{GEMV_ROWS, Kernels, MatmulArgs};
use crate::cpu::simd::Simd;
use crate::cpu::simd::qdot::{self, XBlock, XBlockK, XPair};
use crate::quant::blocks;

use super::BlockRef;

/// `y[m, n] = x[m, k] · wᵀ`, row by row as GEMVs (see the module docs).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn gemv_rows<S: Simd>(
    s: S,
    pool: Option<&rayon::ThreadPool>,
    a: &MatmulArgs<'_>,
    w: BlockRef<'_>,
    vnni: Option<Avx512Vnni>,
    dotprod: Option<NeonDot>,
    y: &mut [f32],
) {
    let (m, n, k) = (a.m, a.n, a.k);
    assert!((1..=GEMV_ROWS).contains(&m) && y.len() == m * n && a.x.len() == m * k);
    let mut bufs = XQ.take();
    let per = k / blocks::QK;
    let per_k = k / blocks::QK_K;
    let pairs = matches!(w, BlockRef::Q4_0(_)) && vnni.is_some();
    let k_quant = matches!(
        w,
        BlockRef::Q4K(_) | BlockRef::Q6K(_) | BlockRef::Q4Kx8(_) | BlockRef::Q6Kx8(_)
    );
    if k_quant {
        bufs.1.resize(m * per_k, XBlockK::default());
        for (x, o) in a.x.chunks_exact(k).zip(bufs.1.chunks_exact_mut(per_k)) {
            qdot::quantize_x_k(x, o);
        }
    } else {
        bufs.0.resize(m * per, XBlock::default());
        super::qx8::quantize_rows(pool, a.x, k, &mut bufs.0);
        if pairs {
            bufs.2.resize(m * (per / 2), XPair::default());
            for (b, p) in bufs
                .0
                .chunks_exact(per)
                .zip(bufs.2.chunks_exact_mut(per / 2))
            {
                qdot::pair_x(b, p);
            }
        }
    }
    let kerns: Vec<QKernels<'_, S>> = (0..m)
        .map(|i| {
            let x = if k_quant {
                XQuant::K(&bufs.1[i * per_k..(i + 1) * per_k])
            } else if pairs {
                let h = per / 2;
                XQuant::Pairs(&bufs.0[i * per..(i + 1) * per], &bufs.2[i * h..(i + 1) * h])
            } else {
                XQuant::Q8(&bufs.0[i * per..(i + 1) * per])
            };
            QKernels {
                s,
                w,
                x,
                bf16: None,
                vnni,
                dotprod,
                bias: a.bias,
                k,
            }
        })
        .collect();
    let nr = kerns[0].nr();
    // Weight rows per chunk: ~128 KiB of blocks, whole groups.
    let row_bytes = w.dtype().bytes_for(k).max(1);
    let chunk = (128 * 1024 / row_bytes).max(1).next_multiple_of(nr);
    // Columns `j0..j1` of every row into `part` (`[m, j1 − j0]`).
    let cols = |(j0, j1): (usize, usize), part: &mut [f32]| {
        let nc = j1 - j0;
        for c0 in (j0..j1).step_by(chunk) {
            let c1 = (c0 + chunk).min(j1);
            for (kern, row) in kerns.iter().zip(part.chunks_exact_mut(nc)) {
                kern.gemv(c0, c1, &mut row[c0 - j0..c1 - j0]);
            }
        }
    };
    let threads = pool.map_or(1, |p| p.current_num_threads());
    match pool.filter(|_| threads > 1 && n * k * m >= 1 << 16) {
        None => cols((0, n), y),
        Some(pool) => {
            let width = n.div_ceil(threads).next_multiple_of(nr);
            let parts: Vec<(usize, Vec<f32>)> = pool.install(|| {
                (0..n)
                    .step_by(width)
                    .collect::<Vec<_>>()
                    .into_par_iter()
                    .map(|j0| {
                        let j1 = (j0 + width).min(n);
                        let mut part = vec![0.0f32; m * (j1 - j0)];
                        cols((j0, j1), &mut part);
                        (j0, part)
                    })
                    .collect()
            });
            for (j0, part) in parts {
                let nc = part.len() / m;
                for (i, p) in part.chunks_exact(nc).enumerate() {
                    y[i * n + j0..i * n + j0 + nc].copy_from_slice(p);
                }
            }
        }
    }
    drop(kerns);
    XQ.set(bufs);
}
