//! AVX2 dot products of block-quantized weight rows with int8 activation
//! blocks (the layouts and scalar twins are in `qdot.rs`). Run by the AVX2
//! and AVX-512 tiers (the latter's wrapper enables AVX2 too), and Q8_0 /
//! Q4_0 with `VNNI` by `qblock`'s GEMV and the interleaved GEMM
//! (`matmul/qx8.rs`) under an `Avx512Vnni` token (`vpdpbusd` on 256-bit
//! vectors, one instruction for the two below). The eight-row interleaved
//! bodies (`quant/x8.rs`) follow the row-major ones.
//!
//! The integer core is `vpmaddubsw` (u8 × i8 → i16 pair sums) then
//! `vpmaddwd` (i16 pairs → i32, times 1 or a sub-block scale). Weights are
//! made unsigned: Q4_0 and Q4_K nibbles already are, Q6_K's six bits before
//! the −32 offset (taken off through the activation sums), Q8_0 by moving
//! each weight's sign onto its activation (`vpsignb`). No i16 sum can
//! saturate: |pair| ≤ 2·128·127 (Q8_0), 2·15·127 (Q4), 2·63·127 (Q6_K).
//!
//! # Safety
//! Every function here needs AVX2, FMA and F16C (the caller's token proves
//! them), and AVX512-VNNI and AVX512-VL with `VNNI`; all loads stay inside
//! the blocks' arrays.

use std::arch::x86_64::*;

use super::avx2::hsum;
use super::qdot::{XBlock, XBlockK};
use crate::quant::blocks::{BlockQ4_0, BlockQ4K, BlockQ6K, BlockQ8_0, scale_min_k4};
use crate::quant::x8::{BlockQ4_0x8, BlockQ4Kx8, BlockQ6Kx8, BlockQ8_0x8, ROWS};

/// An f16 scale by F16C (`half` would test for the feature at run time).
#[inline(always)]
unsafe fn f16(bits: u16) -> f32 {
    // SAFETY: the caller guarantees F16C.
    unsafe { _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16(bits as i16))) }
}

/// `f16(bits) · x` in every lane. The broadcast before the conversion
/// keeps the f16 load off the accumulators' registers (an insert into the
/// low lane of a live register made each block wait for the last).
#[inline(always)]
unsafe fn scale8(bits: u16, x: f32) -> __m256 {
    // SAFETY: the caller guarantees AVX2 and F16C.
    unsafe {
        _mm256_mul_ps(
            _mm256_cvtph_ps(_mm_set1_epi16(bits as i16)),
            _mm256_set1_ps(x),
        )
    }
}

/// 32 bytes from an array of at least 32.
#[inline(always)]
unsafe fn load32<T>(a: &[T]) -> __m256i {
    debug_assert!(size_of_val(a) >= 32);
    // SAFETY: the caller guarantees AVX2; `a` holds at least 32 bytes.
    unsafe { _mm256_loadu_si256(a.as_ptr().cast()) }
}

/// Σ over blocks of `scale(block) · Σ lanes of int(block)`, two blocks per
/// step into two accumulators (one would chain every block on the last
/// block's FMA).
#[inline(always)]
unsafe fn blocks2<W, X>(
    w: &[W],
    x: &[X],
    int: impl Fn(&W, &X) -> __m256i,
    scale: impl Fn(&W, &X) -> __m256,
) -> f32 {
    // SAFETY: the caller guarantees AVX2 and FMA.
    unsafe {
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let n = w.len().min(x.len());
        let mut i = 0;
        while i + 2 <= n {
            let f0 = _mm256_cvtepi32_ps(int(&w[i], &x[i]));
            let f1 = _mm256_cvtepi32_ps(int(&w[i + 1], &x[i + 1]));
            a0 = _mm256_fmadd_ps(scale(&w[i], &x[i]), f0, a0);
            a1 = _mm256_fmadd_ps(scale(&w[i + 1], &x[i + 1]), f1, a1);
            i += 2;
        }
        if i < n {
            let f0 = _mm256_cvtepi32_ps(int(&w[i], &x[i]));
            a0 = _mm256_fmadd_ps(scale(&w[i], &x[i]), f0, a0);
        }
        hsum(_mm256_add_ps(a0, a1))
    }
}

/// `acc` + the sums of each 4 adjacent products `u · i` (u8 × i8) in each
/// i32 lane: one `vpdpbusd` with `VNNI`, else `vpmaddubsw` + `vpmaddwd`
/// (the same integers: no pair sum here can saturate, see the module docs).
///
/// # Safety
/// AVX2; with `VNNI`, also AVX512-VNNI and AVX512-VL.
#[inline(always)]
unsafe fn dot_u8i8<const VNNI: bool>(acc: __m256i, u: __m256i, i: __m256i) -> __m256i {
    // SAFETY: the caller guarantees the features above.
    unsafe {
        if VNNI {
            _mm256_dpbusd_epi32(acc, u, i)
        } else {
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, i), _mm256_set1_epi16(1));
            _mm256_add_epi32(acc, p)
        }
    }
}

/// # Safety
/// As for [`dot_u8i8`].
#[inline(always)]
pub(crate) unsafe fn dot_q8_0<const VNNI: bool>(w: &[BlockQ8_0], x: &[XBlock]) -> f32 {
    // SAFETY: the caller guarantees the features; every load is of a
    // block's own 32-byte array.
    unsafe {
        blocks2(
            w,
            x,
            |b, xb| {
                let (wv, xv) = (load32(&b.qs), load32(&xb.qs));
                let z = _mm256_setzero_si256();
                dot_u8i8::<VNNI>(z, _mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv))
            },
            |b, xb| scale8(b.d, xb.d),
        )
    }
}

/// # Safety
/// As for [`dot_u8i8`].
#[inline(always)]
pub(crate) unsafe fn dot_q4_0<const VNNI: bool>(w: &[BlockQ4_0], x: &[XBlock]) -> f32 {
    // SAFETY: as in `dot_q8_0`; `qs` of a Q4_0 block is 16 bytes.
    unsafe {
        let low4 = _mm256_set1_epi8(0x0F);
        blocks2(
            w,
            x,
            |b, xb| {
                let q = _mm_loadu_si128(b.qs.as_ptr().cast());
                let nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16::<4>(q), q), low4);
                // The nibbles' +8, exactly: 8 lanes × Σ qs, taken off
                // through the accumulator's start.
                dot_u8i8::<VNNI>(_mm256_set1_epi32(-xb.sum), nib, load32(&xb.qs))
            },
            |b, xb| scale8(b.d, xb.d),
        )
    }
}

/// Four activations from byte `4·step` of a block's `qs`, in every 32-bit
/// lane.
#[inline(always)]
unsafe fn x4(x: &XBlock, step: usize) -> __m256i {
    debug_assert!(4 * step + 4 <= x.qs.len());
    // SAFETY: the caller guarantees AVX2; the 4-byte read is inside `qs`.
    unsafe { _mm256_set1_epi32(x.qs.as_ptr().add(4 * step).cast::<i32>().read_unaligned()) }
}

/// How far ahead of the block being read the weight dots prefetch.
const PREFETCH_BYTES: usize = 1024;

/// Prefetches the cache lines of the block `PREFETCH_BYTES` after `b`
/// (past the slice's end they are harmless hints).
#[inline(always)]
fn prefetch_ahead<W>(b: &W) {
    prefetch_part::<W, 1>(b, 0);
}

/// Prefetches part `i` of `N` of the block `PREFETCH_BYTES` after `b`:
/// blocks larger than the distance spread their prefetches over their loop.
#[inline(always)]
fn prefetch_part<W, const N: usize>(b: &W, i: usize) {
    let part = size_of::<W>().div_ceil(N);
    let at = (b as *const W)
        .cast::<i8>()
        .wrapping_add(PREFETCH_BYTES + i * part);
    for line in (0..part).step_by(64) {
        // SAFETY: a prefetch reads nothing and cannot fault.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(line)) };
    }
}

/// An interleaved block format of eight rows (`quant/x8.rs`) as the x8
/// dot products see it. Methods, not closures: a closure is a function of
/// its own without the caller's target features, and the intrinsics in it
/// stay calls (measured: 20× slower).
pub(crate) trait X8: Sized {
    /// The eight rows' f16 scales.
    fn d(&self) -> &[u16; ROWS];
    /// The eight rows' integer sums against each of `R` activation blocks
    /// (`R` rows of `x`): the weights are loaded and unpacked once.
    ///
    /// # Safety
    /// As for [`dot_u8i8`].
    unsafe fn ints<const VNNI: bool, const R: usize>(&self, x: [&XBlock; R]) -> [__m256i; R];
}

impl X8 for BlockQ8_0x8 {
    #[inline(always)]
    fn d(&self) -> &[u16; ROWS] {
        &self.d
    }

    /// Lane `r` of each step is four weights of row `r` against the same
    /// four activations, the weights' signs moved onto them.
    #[inline(always)]
    unsafe fn ints<const VNNI: bool, const R: usize>(&self, x: [&XBlock; R]) -> [__m256i; R] {
        // SAFETY: the caller guarantees the features; loads at 32·t of
        // the 256-byte `qs`.
        unsafe {
            let mut sum = [_mm256_setzero_si256(); R];
            for t in 0..8 {
                let wv = load32(&self.qs[32 * t..]);
                let u = _mm256_sign_epi8(wv, wv);
                for (s, xb) in sum.iter_mut().zip(x) {
                    *s = dot_u8i8::<VNNI>(*s, u, _mm256_sign_epi8(x4(xb, t), wv));
                }
            }
            sum
        }
    }
}

impl X8 for BlockQ4_0x8 {
    #[inline(always)]
    fn d(&self) -> &[u16; ROWS] {
        &self.d
    }

    /// Without `VNNI` the eight steps' pair sums add up in i16 before one
    /// widening: each is at most 2·15·128 = 3840 in size, eight of them
    /// 30720 < 2^15.
    #[inline(always)]
    unsafe fn ints<const VNNI: bool, const R: usize>(&self, x: [&XBlock; R]) -> [__m256i; R] {
        // SAFETY: the caller guarantees the features; loads at 32·t of
        // the 128-byte `qs`.
        unsafe {
            let low4 = _mm256_set1_epi8(0x0F);
            // The nibbles' +8, exactly: −8 · Σ qs in every row's lane.
            let mut init = [_mm256_setzero_si256(); R];
            for (v, xb) in init.iter_mut().zip(x) {
                *v = _mm256_set1_epi32(-8 * xb.sum);
            }
            let (mut sum, mut sum16) = (init, [_mm256_setzero_si256(); R]);
            for t in 0..4 {
                let q = load32(&self.qs[32 * t..]);
                let lo = _mm256_and_si256(q, low4);
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), low4);
                for i in 0..R {
                    let (xlo, xhi) = (x4(x[i], t), x4(x[i], 4 + t));
                    if VNNI {
                        sum[i] = dot_u8i8::<true>(sum[i], lo, xlo);
                        sum[i] = dot_u8i8::<true>(sum[i], hi, xhi);
                    } else {
                        let p = _mm256_add_epi16(
                            _mm256_maddubs_epi16(lo, xlo),
                            _mm256_maddubs_epi16(hi, xhi),
                        );
                        sum16[i] = _mm256_add_epi16(sum16[i], p);
                    }
                }
            }
            if !VNNI {
                for i in 0..R {
                    let wide = _mm256_madd_epi16(sum16[i], _mm256_set1_epi16(1));
                    sum[i] = _mm256_add_epi32(init[i], wide);
                }
            }
            sum
        }
    }
}

/// Eight interleaved Q8_0 or Q4_0 rows (`quant/x8.rs`) against `R` rows
/// of `x` (blocks `x[i][..w.len()]`): Σ over blocks of
/// `d_w[r] · d_x · int[r]` in lane `r`, one scale multiply and one FMA per
/// eight blocks; `out[i][r]` is row `i` of `x` times weight row `r`.
///
/// # Safety
/// As for [`dot_u8i8`].
#[inline(always)]
pub(crate) unsafe fn dot_x8<W: X8, const VNNI: bool, const R: usize>(
    w: &[W],
    x: [&[XBlock]; R],
) -> [[f32; ROWS]; R] {
    // SAFETY: the caller guarantees the features; `d` is 16 bytes.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); R];
        for (p, b) in w.iter().enumerate() {
            prefetch_ahead(b);
            let xb = x.map(|xr| &xr[p]);
            let ints = b.ints::<VNNI, R>(xb);
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(b.d().as_ptr().cast()));
            for i in 0..R {
                let scale = _mm256_mul_ps(dw, _mm256_set1_ps(xb[i].d));
                acc[i] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(ints[i]), acc[i]);
            }
        }
        let mut out = [[0.0f32; ROWS]; R];
        for (o, a) in out.iter_mut().zip(acc) {
            _mm256_storeu_ps(o.as_mut_ptr(), a);
        }
        out
    }
}

#[inline(always)]
pub(super) unsafe fn dot_q4k(w: &[BlockQ4K], x: &[XBlockK]) -> f32 {
    // SAFETY: as in `dot_q8_0`; the 32-byte loads are at offsets 32·p of
    // the 128-byte `qs` and 64·p, 64·p + 32 of the 256-byte `x.qs`.
    unsafe {
        let low4 = _mm256_set1_epi8(0x0F);
        let mut acc = _mm256_setzero_ps();
        let mut mins = 0.0f32;
        for (b, xb) in w.iter().zip(x) {
            let mut sumi = _mm256_setzero_si256();
            let mut summ = 0i32;
            for p in 0..4 {
                let (sc0, m0) = scale_min_k4(2 * p, &b.scales);
                let (sc1, m1) = scale_min_k4(2 * p + 1, &b.scales);
                let q = load32(&b.qs[32 * p..]);
                let lo = _mm256_and_si256(q, low4);
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), low4);
                let p0 = _mm256_maddubs_epi16(lo, load32(&xb.qs[64 * p..]));
                let p1 = _mm256_maddubs_epi16(hi, load32(&xb.qs[64 * p + 32..]));
                let p0 = _mm256_madd_epi16(p0, _mm256_set1_epi16(sc0 as i16));
                let p1 = _mm256_madd_epi16(p1, _mm256_set1_epi16(sc1 as i16));
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
                let bs = &xb.bsums[4 * p..4 * p + 4];
                summ += m0 as i32 * (bs[0] as i32 + bs[1] as i32)
                    + m1 as i32 * (bs[2] as i32 + bs[3] as i32);
            }
            let dx = xb.d;
            acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(b.d) * dx), _mm256_cvtepi32_ps(sumi), acc);
            mins += f16(b.dmin) * dx * summ as f32;
        }
        hsum(acc) - mins
    }
}

/// The six-bit values of one quarter of a Q6_K half: low nibbles of `ql`
/// (shifted down by `LO`) with bits `HI..HI + 2` of `qh` on top.
#[inline(always)]
unsafe fn q6_quarter<const LO: i32, const HI: i32>(ql: __m256i, qh: __m256i) -> __m256i {
    // SAFETY: the caller guarantees AVX2.
    unsafe {
        let low = _mm256_and_si256(_mm256_srli_epi16::<LO>(ql), _mm256_set1_epi8(0x0F));
        let high = _mm256_and_si256(_mm256_srli_epi16::<HI>(qh), _mm256_set1_epi8(3));
        _mm256_or_si256(low, _mm256_slli_epi16::<4>(high))
    }
}

#[inline(always)]
pub(super) unsafe fn dot_q6k(w: &[BlockQ6K], x: &[XBlockK]) -> f32 {
    // SAFETY: as in `dot_q8_0`; loads at 64·h (+32) of the 128-byte `ql`,
    // 32·h of the 64-byte `qh`, 128·h + 32·q of the 256-byte `x.qs`.
    unsafe {
        let mut acc = _mm256_setzero_ps();
        let mut offset = 0.0f32;
        for (b, xb) in w.iter().zip(x) {
            let mut sumi = _mm256_setzero_si256();
            for h in 0..2 {
                let (ql0, ql1) = (load32(&b.ql[64 * h..]), load32(&b.ql[64 * h + 32..]));
                let qh = load32(&b.qh[32 * h..]);
                let quarters = [
                    q6_quarter::<0, 0>(ql0, qh),
                    q6_quarter::<0, 2>(ql1, qh),
                    q6_quarter::<4, 4>(ql0, qh),
                    q6_quarter::<4, 6>(ql1, qh),
                ];
                for (q, u) in quarters.into_iter().enumerate() {
                    let g = 8 * h + 2 * q;
                    let sc = _mm256_set_m128i(
                        _mm_set1_epi16(b.scales[g + 1] as i16),
                        _mm_set1_epi16(b.scales[g] as i16),
                    );
                    let p = _mm256_maddubs_epi16(u, load32(&xb.qs[128 * h + 32 * q..]));
                    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, sc));
                }
            }
            let corr: i32 = b
                .scales
                .iter()
                .zip(&xb.bsums)
                .map(|(&s, &t)| s as i32 * t as i32)
                .sum();
            let d = f16(b.d) * xb.d;
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
            offset += d * corr as f32;
        }
        hsum(acc) - 32.0 * offset
    }
}

/// Four activations from `qs[e..e + 4]` of a k-quant block, in every 32-bit
/// lane.
#[inline(always)]
unsafe fn x4k(x: &XBlockK, e: usize) -> __m256i {
    debug_assert!(e + 4 <= x.qs.len());
    // SAFETY: the caller guarantees AVX2; the 4-byte read is inside `qs`.
    unsafe { _mm256_set1_epi32(x.qs.as_ptr().add(e).cast::<i32>().read_unaligned()) }
}

/// Six-bit values from their low four bits and high two (each byte's own).
#[inline(always)]
unsafe fn six(lo: __m256i, hi: __m256i) -> __m256i {
    // SAFETY: the caller guarantees AVX2.
    unsafe { _mm256_or_si256(lo, _mm256_slli_epi16::<4>(hi)) }
}

/// Sub-block `sb`'s eight scales as i16 pairs: lanes `2r, 2r + 1` both
/// row `r`'s scale (`vpmaddwd` against them widens and scales at once).
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn q6_scales16(b: &BlockQ6Kx8, sb: usize) -> __m256i {
    // SAFETY: the caller guarantees AVX2; 8 bytes at 8·sb < 128.
    unsafe {
        let s8 = _mm_loadl_epi64(b.scales[ROWS * sb..].as_ptr().cast());
        _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(s8, s8))
    }
}

/// Eight interleaved Q6_K rows (`quant/x8.rs`) against one row of `x`,
/// row `r`'s sum in lane `r`. Per half `h` and 4-byte step `j` of it, one
/// load each of `ql` at `64h + 4j` and `64h + 32 + 4j` and of `qh` at
/// `32h + 4j` (96 bytes side by side) gives the six-bit values of elements `128h + 32q + 4j..+4`
/// for the four quarters `q` (as [`q6_quarter`]); each quarter's pair sums
/// (at most 2·63·128 in size) meet its sub-block's scales in `vpmaddwd`,
/// so one i32 accumulator takes every sub-block. The −32 offset is
/// `32 · Σ_s scale[r][s] · Σ x` over the sub-block, eight `vpmaddwd` of
/// scale pairs against `x` sum pairs per super-block.
///
/// # Safety
/// AVX2, FMA and F16C.
#[inline(always)]
pub(super) unsafe fn dot_q6kx8(w: &[BlockQ6Kx8], x: &[XBlockK]) -> [f32; ROWS] {
    // SAFETY: the caller guarantees the features; loads at 96·i + 32·p
    // of the 1536-byte `q` (i < 16, p < 3), 8 bytes at 8·s of `scales`
    // (s < 16), four bytes at e < 256 of `x.qs`, 16 bytes of `d`.
    unsafe {
        let (m4, m2) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(3));
        let mut acc = _mm256_setzero_ps();
        for (b, xb) in w.iter().zip(x) {
            let mut isum = _mm256_setzero_si256();
            for h in 0..2 {
                for hs in 0..2 {
                    prefetch_part::<_, 4>(b, 2 * h + hs);
                    let sb = 8 * h + hs;
                    let sc = [
                        q6_scales16(b, sb),
                        q6_scales16(b, sb + 2),
                        q6_scales16(b, sb + 4),
                        q6_scales16(b, sb + 6),
                    ];
                    for j in 4 * hs..4 * hs + 4 {
                        // `ql` steps 16h + j and 16h + 8 + j, `qh` step
                        // 8h + j, side by side.
                        let step = &b.q[96 * (8 * h + j)..];
                        let (a, c, q) = (load32(step), load32(&step[32..]), load32(&step[64..]));
                        let e = [
                            six(_mm256_and_si256(a, m4), _mm256_and_si256(q, m2)),
                            six(
                                _mm256_and_si256(c, m4),
                                _mm256_and_si256(_mm256_srli_epi16::<2>(q), m2),
                            ),
                            six(
                                _mm256_and_si256(_mm256_srli_epi16::<4>(a), m4),
                                _mm256_and_si256(_mm256_srli_epi16::<4>(q), m2),
                            ),
                            six(
                                _mm256_and_si256(_mm256_srli_epi16::<4>(c), m4),
                                _mm256_and_si256(_mm256_srli_epi16::<6>(q), m2),
                            ),
                        ];
                        for qt in 0..4 {
                            let xv = x4k(xb, 128 * h + 32 * qt + 4 * j);
                            let p = _mm256_maddubs_epi16(e[qt], xv);
                            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, sc[qt]));
                        }
                    }
                }
            }
            // The offset: sub-blocks 2i, 2i + 1 per vpmaddwd.
            let mut off = _mm256_setzero_si256();
            for i in 0..8 {
                let s0 = _mm_loadl_epi64(b.scales[ROWS * 2 * i..].as_ptr().cast());
                let s1 = _mm_loadl_epi64(b.scales[ROWS * (2 * i + 1)..].as_ptr().cast());
                let pair = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(s0, s1));
                let (x0, x1) = (
                    xb.bsums[2 * i] as u16 as i32,
                    xb.bsums[2 * i + 1] as u16 as i32,
                );
                let sums = _mm256_set1_epi32(x0 | x1 << 16);
                off = _mm256_add_epi32(off, _mm256_madd_epi16(pair, sums));
            }
            isum = _mm256_sub_epi32(isum, _mm256_slli_epi32::<5>(off));
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(b.d.as_ptr().cast()));
            let scale = _mm256_mul_ps(dw, _mm256_set1_ps(xb.d));
            acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(isum), acc);
        }
        let mut out = [0.0f32; ROWS];
        _mm256_storeu_ps(out.as_mut_ptr(), acc);
        out
    }
}

/// Eight rows' unsigned bytes `v[8s..8s + 8]` (a sub-block's scales) as
/// i16 pairs: lanes `2r, 2r + 1` both row `r`'s.
///
/// # Safety
/// AVX2; `v` holds at least `8s + 8` bytes.
#[inline(always)]
unsafe fn u8_pairs16(v: &[u8], s: usize) -> __m256i {
    debug_assert!(v.len() >= ROWS * s + ROWS);
    // SAFETY: the caller guarantees AVX2; 8 bytes at 8·s.
    unsafe {
        let b = _mm_loadl_epi64(v[ROWS * s..].as_ptr().cast());
        _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(b, b))
    }
}

/// Eight interleaved Q4_K rows (`quant/x8.rs`) against one row of `x`,
/// row `r`'s sum in lane `r`. Per pair of sub-blocks `2p, 2p + 1`, each of
/// its eight 4-byte steps gives four low nibbles (sub-block `2p`) and four
/// high (`2p + 1`) of eight rows; each sub-block's eight `vpmaddubsw` pair
/// sums add up in i16 (2·15·128 each, 30720 for eight < 2^15), then one
/// `vpmaddwd` against its eight scales widens and scales them. The mins
/// are `Σ m·Σx` per sub-block: four `vpmaddwd` of min pairs against `x`'s
/// per-32 sum pairs.
///
/// # Safety
/// AVX2, FMA and F16C.
#[inline(always)]
pub(super) unsafe fn dot_q4kx8(w: &[BlockQ4Kx8], x: &[XBlockK]) -> [f32; ROWS] {
    // SAFETY: the caller guarantees the features; loads at 32·t of the
    // 1024-byte `qs` (t < 32), 8 bytes at 8·s of `scales` / `mins`
    // (s < 8), four bytes at e < 256 of `x.qs`, 16 bytes of `d`, `dmin`.
    unsafe {
        let m4 = _mm256_set1_epi8(0x0F);
        let (mut acc, mut accm) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for (b, xb) in w.iter().zip(x) {
            let mut isum = _mm256_setzero_si256();
            for p in 0..4 {
                prefetch_part::<_, 4>(b, p);
                let (mut lo16, mut hi16) = (_mm256_setzero_si256(), _mm256_setzero_si256());
                for j in 0..8 {
                    let q = load32(&b.qs[32 * (8 * p + j)..]);
                    let lo = _mm256_and_si256(q, m4);
                    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
                    let xl = x4k(xb, 64 * p + 4 * j);
                    let xh = x4k(xb, 64 * p + 32 + 4 * j);
                    lo16 = _mm256_add_epi16(lo16, _mm256_maddubs_epi16(lo, xl));
                    hi16 = _mm256_add_epi16(hi16, _mm256_maddubs_epi16(hi, xh));
                }
                let lo = _mm256_madd_epi16(lo16, u8_pairs16(&b.scales, 2 * p));
                let hi = _mm256_madd_epi16(hi16, u8_pairs16(&b.scales, 2 * p + 1));
                isum = _mm256_add_epi32(isum, _mm256_add_epi32(lo, hi));
            }
            // Σ_s m[r][s] · (Σ x over sub-block s), two sub-blocks a step.
            let mut msum = _mm256_setzero_si256();
            for i in 0..4 {
                let m0 = _mm_loadl_epi64(b.mins[ROWS * 2 * i..].as_ptr().cast());
                let m1 = _mm_loadl_epi64(b.mins[ROWS * (2 * i + 1)..].as_ptr().cast());
                let pair = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m0, m1));
                let bs = &xb.bsums[4 * i..4 * i + 4];
                let (x0, x1) = (bs[0] as i32 + bs[1] as i32, bs[2] as i32 + bs[3] as i32);
                let sums = _mm256_set1_epi32((x0 as u16 as i32) | (x1 << 16));
                msum = _mm256_add_epi32(msum, _mm256_madd_epi16(pair, sums));
            }
            let dx = _mm256_set1_ps(xb.d);
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(b.d.as_ptr().cast()));
            let dm = _mm256_cvtph_ps(_mm_loadu_si128(b.dmin.as_ptr().cast()));
            acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx), _mm256_cvtepi32_ps(isum), acc);
            accm = _mm256_fmadd_ps(_mm256_mul_ps(dm, dx), _mm256_cvtepi32_ps(msum), accm);
        }
        let mut out = [0.0f32; ROWS];
        _mm256_storeu_ps(out.as_mut_ptr(), _mm256_sub_ps(acc, accm));
        out
    }
}
