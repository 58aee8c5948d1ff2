//! The GEMV and GEMM bodies of Q8_0 / Q4_0 weights interleaved by eight
//! rows (`quant/x8.rs`, [`super::qblock`]): `x` quantized to int8 per 32
//! (`qdot::quantize_x`), one group of eight weight rows against one (GEMV)
//! or four (GEMM) rows of `x` per call of the dot product, the eight rows'
//! sums in the lanes of one vector. Interleaved Q4_K and Q6_K have the GEMV
//! only.
//! Called inside the tier's features (`Simd::vectorize`, or an
//! `Avx512Vnni` token's wrapper).

use super::qblock::BlockRef;
use crate::cpu::simd::Simd;
use crate::cpu::simd::qdot::{self, XBlock, XBlockK};
use crate::quant::blocks;
use crate::quant::x8::ROWS;

/// The dot products of one group of interleaved weights against `R` rows
/// of int8 `x`: `out[i][r]` is row `i` of `x` times weight row `r`. A
/// trait, not a closure: a closure is an LLVM function of its own without
/// the caller's target features, and the intrinsics it reaches stay calls
/// (measured: 20× slower).
pub(super) trait TileX8: Copy {
    fn tile<const R: usize>(self, w: BlockRef<'_>, x: [&[XBlock]; R]) -> [[f32; ROWS]; R];
}

/// The tier's own dot products (`Simd::dot_q8_0x8`, `Simd::dot_q4_0x8`).
#[derive(Clone, Copy)]
pub(super) struct TierDots<S>(pub S);

impl<S: Simd> TileX8 for TierDots<S> {
    #[inline(always)]
    fn tile<const R: usize>(self, w: BlockRef<'_>, x: [&[XBlock]; R]) -> [[f32; ROWS]; R] {
        match w {
            BlockRef::Q8_0x8(w) => self.0.dot_q8_0x8(w, x),
            BlockRef::Q4_0x8(w) => self.0.dot_q4_0x8(w, x),
            _ => unreachable!("only interleaved weights have groups"),
        }
    }
}

/// The same integers on `vpdpbusd` (256-bit, AVX512-VNNI and -VL); only
/// under the token's wrapper.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(super) struct VnniDots(pub crate::cpu::dispatch::Avx512Vnni);

#[cfg(target_arch = "x86_64")]
impl TileX8 for VnniDots {
    #[inline(always)]
    fn tile<const R: usize>(self, w: BlockRef<'_>, x: [&[XBlock]; R]) -> [[f32; ROWS]; R] {
        use crate::cpu::simd::avx2_qdot;
        // The token proves AVX-512F, -BW, -VNNI and -VL, AVX2, FMA and
        // F16C, and this is inlined into its wrapper.
        match w {
            // SAFETY: as above.
            BlockRef::Q8_0x8(w) => unsafe { avx2_qdot::dot_x8::<_, true, R>(w, x) },
            // SAFETY: as above.
            BlockRef::Q4_0x8(w) => unsafe { avx2_qdot::dot_x8::<_, true, R>(w, x) },
            _ => unreachable!("only interleaved weights have groups"),
        }
    }
}

/// One GEMM or GEMV call on interleaved weights: `w` of `per` blocks a
/// row, `x` all its rows' blocks.
pub(super) struct Args<'a> {
    pub w: BlockRef<'a>,
    pub x: &'a [XBlock],
    pub bias: Option<&'a [f32]>,
    pub per: usize,
}

/// `sums` (+ `bias`, the group's eight) into `out`.
#[inline(always)]
fn store(out: &mut [f32], sums: [f32; ROWS], bias: Option<&[f32]>) {
    for (r, (o, v)) in out.iter_mut().zip(sums).enumerate() {
        *o = v + bias.map_or(0.0, |b| b[r]);
    }
}

/// Rows `j0..j1` (whole groups of eight) of a GEMV.
#[inline(always)]
pub(super) fn gemv<T: TileX8>(t: T, a: &Args<'_>, (j0, j1): (usize, usize), y: &mut [f32]) {
    debug_assert!(j0.is_multiple_of(ROWS) && j1.is_multiple_of(ROWS));
    for (g, out) in (j0 / ROWS..j1 / ROWS).zip(y.chunks_exact_mut(ROWS)) {
        let bias = a.bias.map(|b| &b[ROWS * g..ROWS * (g + 1)]);
        store(out, t.tile(a.w.group(g, a.per), [a.x])[0], bias);
    }
}

/// Rows `j0..j1` (whole groups of eight) of a GEMV on interleaved Q4_K or
/// Q6_K (`w`, all groups; `x` one row's k-quant blocks).
#[inline(always)]
pub(super) fn gemv_k<S: Simd>(
    s: S,
    w: BlockRef<'_>,
    x: &[XBlockK],
    bias: Option<&[f32]>,
    (j0, j1): (usize, usize),
    y: &mut [f32],
) {
    debug_assert!(j0.is_multiple_of(ROWS) && j1.is_multiple_of(ROWS));
    let per = x.len();
    for (g, out) in (j0 / ROWS..j1 / ROWS).zip(y.chunks_exact_mut(ROWS)) {
        let bias = bias.map(|b| &b[ROWS * g..ROWS * (g + 1)]);
        let sums = match w.group(g, per) {
            BlockRef::Q4Kx8(w) => s.dot_q4kx8(w, x),
            BlockRef::Q6Kx8(w) => s.dot_q6kx8(w, x),
            _ => unreachable!("gemv_k takes interleaved k-quants"),
        };
        store(out, sums, bias);
    }
}

/// Columns `j0..j1` (whole groups of eight) of an `m`-row GEMM into `y`
/// (row stride `ldy`): tiles of four rows of `x` by one group, a chunk of
/// `x`'s rows at a time so that their blocks stay in L2 (≤ 256 KiB) while
/// the groups sweep over them; the last one to three rows of a chunk in one
/// tile.
#[inline(always)]
pub(super) fn gemm<T: TileX8>(
    t: T,
    a: &Args<'_>,
    m: usize,
    (j0, j1): (usize, usize),
    y: &mut [f32],
    ldy: usize,
) {
    const MR: usize = 4;
    debug_assert!(j0.is_multiple_of(ROWS) && j1.is_multiple_of(ROWS));
    let per = a.per;
    let mc = (256 * 1024 / (per * size_of::<XBlock>()).max(1))
        .max(MR)
        .next_multiple_of(MR);
    let xrow = |i: usize| &a.x[i * per..(i + 1) * per];
    for i0 in (0..m).step_by(mc) {
        let i1 = (i0 + mc).min(m);
        for g in j0 / ROWS..j1 / ROWS {
            let wg = a.w.group(g, per);
            let c = ROWS * g - j0;
            let bias = a.bias.map(|b| &b[ROWS * g..ROWS * (g + 1)]);
            let mut i = i0;
            while i + MR <= i1 {
                let sums = t.tile(wg, [xrow(i), xrow(i + 1), xrow(i + 2), xrow(i + 3)]);
                for (d, s) in sums.into_iter().enumerate() {
                    store(&mut y[(i + d) * ldy + c..][..ROWS], s, bias);
                }
                i += MR;
            }
            // The last 1–3 rows in one tile: the weights' unpacking is
            // shared by the rows, as in the four-row tiles.
            let mut put =
                |d: usize, s: [f32; ROWS]| store(&mut y[(i + d) * ldy + c..][..ROWS], s, bias);
            match i1 - i {
                3 => {
                    for (d, s) in t
                        .tile(wg, [xrow(i), xrow(i + 1), xrow(i + 2)])
                        .into_iter()
                        .enumerate()
                    {
                        put(d, s);
                    }
                }
                2 => {
                    for (d, s) in t.tile(wg, [xrow(i), xrow(i + 1)]).into_iter().enumerate() {
                        put(d, s);
                    }
                }
                1 => put(0, t.tile(wg, [xrow(i)])[0]),
                _ => {}
            }
        }
    }
}

/// Quantizes the rows of `x` (`[m, k]`) into `out` (`k / 32` blocks a
/// row), rows split across `pool`'s threads.
pub(super) fn quantize_rows(
    pool: Option<&rayon::ThreadPool>,
    x: &[f32],
    k: usize,
    out: &mut [XBlock],
) {
    use rayon::prelude::*;
    let per = k / blocks::QK;
    match pool {
        Some(pool) if x.len() >= 1 << 14 && per > 0 => pool.install(|| {
            out.par_chunks_mut(per)
                .zip(x.par_chunks(k))
                .for_each(|(o, x)| qdot::quantize_x(x, o))
        }),
        _ => qdot::quantize_x(x, out),
    }
}
