//! Block-quantized weights (ggml's Q8_0, Q4_0, Q4_K, Q6_K; `crate::quant`)
//! on the CPU: the file's blocks (no panels), row-major, but with eight
//! rows interleaved ([`BlockData::interleaved`], at
//! upload on the x86 vector tiers ([`interleaves`]) whenever `n` is a
//! multiple of 8); `kernels/matmul.md` § Block formats.
//!
//! - GEMV (m = 1, decode): `x` is quantized to int8 per block (32 for
//!   Q8_0/Q4_0, 256 for the k-quants) once per call, then each weight row
//!   is one integer dot product (`Simd::dot_*`, `cpu/simd/qdot.rs`),
//!   rows split across threads. Memory-bound: the weights are read once,
//!   at their stored size. Interleaved weights give eight rows' sums per
//!   vector (`qx8.rs`). On the avx512 tier of a CPU with AVX512-VNNI,
//!   Q8_0 and Q4_0 dots run on `vpdpbusd` ([`vnni_gemv`]), same integers;
//!   row-major Q4_0 two blocks per 512-bit instruction against `x` laid
//!   out to match (`cpu/simd/avx512_qdot.rs`). On the neon tier of a CPU
//!   with the dot-product extension, every format's dots run on SDOT
//!   ([`neon_dotprod`]), same integers. The row loops: `qblock/rows.rs`.
//! - GEMM (m ≥ 2, prefill) of interleaved Q8_0 / Q4_0: integer too, every
//!   row of `x` quantized as the GEMV's, four rows of `x` per group of
//!   eight weight rows (`qx8.rs`; `vpdpbusd` as above).
//! - GEMM of the other formats (and of Q8_0 / Q4_0 whose `n` is not a
//!   multiple of 8): weight rows are decoded to f32 panels a chunk at a
//!   time and the f32 GEMM body runs on them, `x` unquantized. Threads
//!   split the weight rows, so each weight is decoded once per call. On
//!   the avx512 tier of a CPU with AVX512-BF16 whose `vdpbf16ps`
//!   out-computes its FMA (measured: `probe.rs`), the 4- and 6-bit formats
//!   (Q4_0, Q4_K, Q6_K) are decoded to bf16 pair panels instead and run
//!   the `vdpbf16ps` GEMM (`bf16dot.rs`, twice the f32 FMA's work per
//!   instruction), `x` rounded to bf16: each rounding is 2^-9 relative,
//!   far below those formats' own steps (Q8_0, whose step is near it,
//!   keeps f32).

use std::cell::RefCell;

mod batch;
mod rows;

use self::rows::QGemv;
#[cfg(target_arch = "aarch64")]
use self::rows::QGemvDot;
#[cfg(target_arch = "x86_64")]
use self::rows::QGemvVnni;
use super::gemm::Gemm;
use super::panels::PanelLayout;
use super::probe;
use super::{Cols, Kernels, MatmulArgs, qx8, split};
use crate::DType;
use crate::cpu::dispatch::{Avx512Bf16, Avx512Vnni, IsaToken, NeonDot, SimdOp};
use crate::cpu::simd::Simd;
use crate::cpu::simd::qdot::{self, XBlock, XBlockK, XPair};
use crate::quant::blocks::{self, BlockQ4_0, BlockQ4K, BlockQ6K, BlockQ8_0};
use crate::quant::x8::{self, BlockQ4_0x8, BlockQ4Kx8, BlockQ6Kx8, BlockQ8_0x8, ROWS};

/// Owned blocks of one weight `[n, k]`: row-major, or (any format) with
/// eight rows interleaved ([`BlockData::interleaved`], `quant/x8.rs`).
#[derive(Clone, Debug, PartialEq)]
pub enum BlockData {
    Q8_0(Vec<BlockQ8_0>),
    Q4_0(Vec<BlockQ4_0>),
    Q4K(Vec<BlockQ4K>),
    Q6K(Vec<BlockQ6K>),
    Q8_0x8(Vec<BlockQ8_0x8>),
    Q4_0x8(Vec<BlockQ4_0x8>),
    Q4Kx8(Vec<BlockQ4Kx8>),
    Q6Kx8(Vec<BlockQ6Kx8>),
}

/// Borrowed blocks of one weight `[n, k]`, as [`BlockData`].
#[derive(Clone, Copy, Debug)]
pub enum BlockRef<'a> {
    Q8_0(&'a [BlockQ8_0]),
    Q4_0(&'a [BlockQ4_0]),
    Q4K(&'a [BlockQ4K]),
    Q6K(&'a [BlockQ6K]),
    Q8_0x8(&'a [BlockQ8_0x8]),
    Q4_0x8(&'a [BlockQ4_0x8]),
    Q4Kx8(&'a [BlockQ4Kx8]),
    Q6Kx8(&'a [BlockQ6Kx8]),
}

impl BlockData {
    /// Copies `bytes` (whole blocks of `dtype`, any alignment) into aligned
    /// blocks; `None` if `dtype` is not a block format or the length is
    /// not whole blocks.
    pub fn from_bytes(dtype: DType, bytes: &[u8]) -> Option<BlockData> {
        fn copy<T: bytemuck::Pod + Send + Sync>(bytes: &[u8]) -> Option<Vec<T>> {
            if !bytes.len().is_multiple_of(size_of::<T>()) {
                return None;
            }
            let mut v = crate::cpu::alloc::filled_vec(bytes.len() / size_of::<T>(), T::zeroed());
            bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(bytes);
            Some(v)
        }
        Some(match dtype {
            DType::Q8_0 => BlockData::Q8_0(copy(bytes)?),
            DType::Q4_0 => BlockData::Q4_0(copy(bytes)?),
            DType::Q4K => BlockData::Q4K(copy(bytes)?),
            DType::Q6K => BlockData::Q6K(copy(bytes)?),
            _ => return None,
        })
    }

    /// The layout the CPU's GEMV reads fastest: Q8_0, Q4_0, Q4_K and Q6_K
    /// weights of `n` rows (a multiple of eight) interleaved by eight rows
    /// (`quant/x8.rs`: same bytes, eight rows' sums per vector); anything
    /// else as it is.
    pub fn interleaved(self, n: usize) -> BlockData {
        let per = |len: usize| len / n.max(1);
        let fits = |len: usize| n > 0 && len > 0 && n.is_multiple_of(ROWS) && len.is_multiple_of(n);
        match self {
            BlockData::Q8_0(v) if fits(v.len()) => {
                BlockData::Q8_0x8(x8::interleave(&v, per(v.len())))
            }
            BlockData::Q4_0(v) if fits(v.len()) => {
                BlockData::Q4_0x8(x8::interleave(&v, per(v.len())))
            }
            BlockData::Q4K(v) if fits(v.len()) => {
                BlockData::Q4Kx8(x8::interleave_q4k(&v, per(v.len())))
            }
            BlockData::Q6K(v) if fits(v.len()) => {
                BlockData::Q6Kx8(x8::interleave_q6k(&v, per(v.len())))
            }
            other => other,
        }
    }

    pub fn as_ref(&self) -> BlockRef<'_> {
        match self {
            BlockData::Q8_0(v) => BlockRef::Q8_0(v),
            BlockData::Q4_0(v) => BlockRef::Q4_0(v),
            BlockData::Q4K(v) => BlockRef::Q4K(v),
            BlockData::Q6K(v) => BlockRef::Q6K(v),
            BlockData::Q8_0x8(v) => BlockRef::Q8_0x8(v),
            BlockData::Q4_0x8(v) => BlockRef::Q4_0x8(v),
            BlockData::Q4Kx8(v) => BlockRef::Q4Kx8(v),
            BlockData::Q6Kx8(v) => BlockRef::Q6Kx8(v),
        }
    }
}

impl<'a> BlockRef<'a> {
    pub fn dtype(self) -> DType {
        match self {
            BlockRef::Q8_0(_) | BlockRef::Q8_0x8(_) => DType::Q8_0,
            BlockRef::Q4_0(_) | BlockRef::Q4_0x8(_) => DType::Q4_0,
            BlockRef::Q4K(_) | BlockRef::Q4Kx8(_) => DType::Q4K,
            BlockRef::Q6K(_) | BlockRef::Q6Kx8(_) => DType::Q6K,
        }
    }

    /// Weights held (blocks × block size).
    pub fn elems(self) -> usize {
        let blocks = match self {
            BlockRef::Q8_0(v) => v.len(),
            BlockRef::Q4_0(v) => v.len(),
            BlockRef::Q4K(v) => v.len(),
            BlockRef::Q6K(v) => v.len(),
            BlockRef::Q8_0x8(v) => ROWS * v.len(),
            BlockRef::Q4_0x8(v) => ROWS * v.len(),
            BlockRef::Q4Kx8(v) => ROWS * v.len(),
            BlockRef::Q6Kx8(v) => ROWS * v.len(),
        };
        blocks * self.dtype().block_elems()
    }

    /// The raw bytes of the blocks, in the order held (interleaved for
    /// the `x8` layouts).
    pub fn bytes(self) -> &'a [u8] {
        match self {
            BlockRef::Q8_0(v) => bytemuck::cast_slice(v),
            BlockRef::Q4_0(v) => bytemuck::cast_slice(v),
            BlockRef::Q4K(v) => bytemuck::cast_slice(v),
            BlockRef::Q6K(v) => bytemuck::cast_slice(v),
            BlockRef::Q8_0x8(v) => bytemuck::cast_slice(v),
            BlockRef::Q4_0x8(v) => bytemuck::cast_slice(v),
            BlockRef::Q4Kx8(v) => bytemuck::cast_slice(v),
            BlockRef::Q6Kx8(v) => bytemuck::cast_slice(v),
        }
    }

    /// Group `g` (rows `8g..8g + 8`) of interleaved weights of `per`
    /// blocks a row.
    #[inline(always)]
    pub(super) fn group(self, g: usize, per: usize) -> BlockRef<'a> {
        match self {
            BlockRef::Q8_0x8(v) => BlockRef::Q8_0x8(&v[g * per..(g + 1) * per]),
            BlockRef::Q4_0x8(v) => BlockRef::Q4_0x8(&v[g * per..(g + 1) * per]),
            BlockRef::Q4Kx8(v) => BlockRef::Q4Kx8(&v[g * per..(g + 1) * per]),
            BlockRef::Q6Kx8(v) => BlockRef::Q6Kx8(&v[g * per..(g + 1) * per]),
            _ => unreachable!("only interleaved weights have groups"),
        }
    }

    /// Whether the rows are interleaved by eight (`quant/x8.rs`).
    pub fn is_x8(self) -> bool {
        matches!(
            self,
            BlockRef::Q8_0x8(_) | BlockRef::Q4_0x8(_) | BlockRef::Q4Kx8(_) | BlockRef::Q6Kx8(_)
        )
    }

    /// Whether the GEMM (m ≥ 2) is integer too (`qx8.rs`): interleaved
    /// Q8_0 and Q4_0. Interleaved k-quants decode to panels for the GEMM
    /// as the row-major formats do.
    pub fn int_gemm(self) -> bool {
        matches!(self, BlockRef::Q8_0x8(_) | BlockRef::Q4_0x8(_))
    }

    /// Decodes row `j` of `[·, k]` into `out[..k]`.
    #[inline(always)]
    pub fn dequantize_row(self, j: usize, k: usize, out: &mut [f32]) {
        fn row<T>(v: &[T], j: usize, per: usize, out: &mut [f32], f: impl Fn(&T, &mut [f32])) {
            let be = out.len() / per;
            for (b, o) in v[j * per..(j + 1) * per]
                .iter()
                .zip(out.chunks_exact_mut(be))
            {
                f(b, o);
            }
        }
        /// Row `j` of eight-row groups of `per` blocks each.
        fn row_x8<B: x8::Interleave + Default>(
            v: &[B::X8],
            j: usize,
            per: usize,
            out: &mut [f32],
            f: impl Fn(&B, &mut [f32]),
        ) {
            let (g, r) = (j / ROWS, j % ROWS);
            for (b, o) in v[g * per..(g + 1) * per]
                .iter()
                .zip(out.chunks_exact_mut(blocks::QK))
            {
                f(&x8::row_block::<B>(b, r), o);
            }
        }
        let per = k / self.dtype().block_elems();
        let out = &mut out[..k];
        match self {
            BlockRef::Q8_0(v) => row(v, j, per, out, blocks::dequantize_q8_0),
            BlockRef::Q4_0(v) => row(v, j, per, out, blocks::dequantize_q4_0),
            BlockRef::Q4K(v) => row(v, j, per, out, blocks::dequantize_q4k),
            BlockRef::Q6K(v) => row(v, j, per, out, blocks::dequantize_q6k),
            BlockRef::Q8_0x8(v) => row_x8(v, j, per, out, blocks::dequantize_q8_0),
            BlockRef::Q4_0x8(v) => row_x8(v, j, per, out, blocks::dequantize_q4_0),
            BlockRef::Q4Kx8(v) => {
                let (g, r) = (j / ROWS, j % ROWS);
                for (b, o) in v[g * per..(g + 1) * per]
                    .iter()
                    .zip(out.chunks_exact_mut(blocks::QK_K))
                {
                    x8::dequantize_q4kx8_row(b, r, o);
                }
            }
            BlockRef::Q6Kx8(v) => {
                let (g, r) = (j / ROWS, j % ROWS);
                for (b, o) in v[g * per..(g + 1) * per]
                    .iter()
                    .zip(out.chunks_exact_mut(blocks::QK_K))
                {
                    blocks::dequantize_q6k(&x8::row_block_q6k(b, r), o);
                }
            }
        }
    }
}

/// Quantizes row-major `w[n, k]` (f32) into `dtype` blocks, rows in
/// parallel on the current rayon pool. `k` must be whole blocks.
pub fn quantize(dtype: DType, w: &[f32], k: usize) -> crate::Result<BlockData> {
    let bytes = crate::quant::quantize_rows(dtype, w, k)?;
    BlockData::from_bytes(dtype, &bytes).ok_or(crate::TensorError::UnsupportedDType {
        op: "quantize",
        what: "the target",
        dtype,
    })
}

/// The activation row quantized for one weight format.
#[derive(Clone, Copy)]
enum XQuant<'a> {
    Q8(&'a [XBlock]),
    K(&'a [XBlockK]),
    /// Q4_0 on `vpdpbusd`: the blocks (for an odd last one) and their
    /// pairs ([`XPair`]); x86-64 only.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Pairs(&'a [XBlock], &'a [XPair]),
}

thread_local! {
    /// The quantized `x` of GEMV calls on this thread, reused (decode
    /// allocates nothing in steady state).
    static XQ: RefCell<(Vec<XBlock>, Vec<XBlockK>, Vec<XPair>)> =
        const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
    /// Decoded weight panels of GEMM calls on this thread, reused.
    static PANELS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    /// bf16 pair panels of GEMM calls on this thread, reused.
    static PAIRS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Whether the GEMM (m ≥ 2) of `dtype` weights on tier `isa` runs on bf16
/// panels with `x` and the decoded weights rounded to bf16: the 4- and
/// 6-bit formats on the avx512 tier of a CPU with AVX512-BF16 whose
/// `vdpbf16ps` out-computes its FMA ([`probe::bf16_dot_pays`]; see the
/// module docs).
pub fn bf16_prefill(isa: crate::cpu::Isa, dtype: DType) -> bool {
    isa == crate::cpu::Isa::Avx512
        && matches!(dtype, DType::Q4_0 | DType::Q4K | DType::Q6K)
        && Avx512Bf16::try_new().is_some_and(probe::bf16_dot_pays)
}

/// Runs the matmul of `a` (whose weights are `w`) on `isa` with `pool`.
pub(super) fn matmul(
    isa: IsaToken,
    pool: Option<&rayon::ThreadPool>,
    a: &MatmulArgs<'_>,
    w: BlockRef<'_>,
    y: &mut [f32],
) {
    let bf16 = a.m >= 2 && bf16_prefill(isa.isa(), w.dtype());
    matmul_with(isa, pool, a, w, bf16, true, y)
}

/// [`matmul`] with the GEMM's bf16 panels asked for (`bf16`; honoured
/// where the CPU has AVX512-BF16 and the tier is avx512, whatever
/// [`bf16_prefill`] would choose) or not, and the GEMV's SDOT bodies
/// allowed (`dotprod`; honoured where [`neon_dotprod`], as [`matmul`]
/// does) or not: the tests run both bodies on every CPU that has them.
#[track_caller]
pub fn matmul_with(
    isa: IsaToken,
    pool: Option<&rayon::ThreadPool>,
    a: &MatmulArgs<'_>,
    w: BlockRef<'_>,
    bf16: bool,
    dotprod: bool,
    y: &mut [f32],
) {
    assert!(
        a.k.is_multiple_of(w.dtype().block_elems()) && w.elems() == a.n * a.k,
        "w is not the {} blocks of [n, k]",
        w.dtype()
    );
    // Checked products, as in `matmul::matmul` (which checked these
    // before calling [`matmul`]; callers of this one reach it directly).
    let prod = |p: usize, q: usize| p.checked_mul(q);
    assert_eq!(Some(a.x.len()), prod(a.m, a.k), "x is not [m, k]");
    assert_eq!(Some(y.len()), prod(a.m, a.n), "y is not [m, n]");
    if let Some(b) = a.bias {
        assert_eq!(b.len(), a.n, "bias is not [n]");
    }
    let bf16 = if bf16 && a.m > super::GEMV_ROWS && isa.isa() == crate::cpu::Isa::Avx512 {
        Avx512Bf16::try_new()
    } else {
        None
    };
    // The GEMV's tokens serve batched rows too (`batch.rs`: a GEMV a row).
    let gemv_rows = a.m <= super::GEMV_ROWS;
    let vnni = if (gemv_rows || w.int_gemm()) && vnni_gemv(isa.isa(), w.dtype()) {
        Avx512Vnni::try_new()
    } else {
        None
    };
    let dotprod = if dotprod && gemv_rows && !w.is_x8() && neon_dotprod(isa.isa()) {
        NeonDot::try_new()
    } else {
        None
    };
    isa.dispatch(QMatmul {
        pool,
        a,
        w,
        bf16,
        vnni,
        dotprod,
        y,
    })
}

/// Whether a backend on tier `isa` holds Q8_0 / Q4_0 / Q4_K / Q6_K weights interleaved
/// by eight rows ([`BlockData::interleaved`]): the tiers with vector
/// kernels for them (AVX2 and AVX-512). The scalar tier and NEON keep the
/// row-major blocks, whose GEMM runs on decoded f32 panels: the scalar
/// twins of the interleaved dot products are the reference, not a fast
/// path.
pub fn interleaves(isa: crate::cpu::Isa) -> bool {
    matches!(isa, crate::cpu::Isa::Avx2 | crate::cpu::Isa::Avx512)
}

/// Whether the GEMV (m = 1; and the GEMM of interleaved weights) of
/// `dtype` weights on tier `isa` runs its
/// integer dot products on `vpdpbusd` (Q8_0 and Q4_0 on the avx512 tier of
/// a CPU with AVX512-VNNI: the same integers as `vpmaddubsw` + `vpmaddwd`,
/// in one instruction). The k-quants keep the AVX2 body: their sub-block
/// scales ride on `vpmaddwd`.
pub fn vnni_gemv(isa: crate::cpu::Isa, dtype: DType) -> bool {
    isa == crate::cpu::Isa::Avx512
        && matches!(dtype, DType::Q8_0 | DType::Q4_0)
        && Avx512Vnni::try_new().is_some()
}

/// Whether the GEMV (m = 1) of row-major block weights on tier `isa` runs
/// its integer dot products on SDOT (every format on the neon tier of a
/// CPU with the dot-product extension: the same integers as `smull` +
/// `sadalp`, four products per lane in one instruction). NEON never holds
/// interleaved weights ([`interleaves`]).
pub fn neon_dotprod(isa: crate::cpu::Isa) -> bool {
    isa == crate::cpu::Isa::Neon && NeonDot::try_new().is_some()
}

struct QMatmul<'a, 'p> {
    pool: Option<&'p rayon::ThreadPool>,
    a: &'a MatmulArgs<'a>,
    w: BlockRef<'a>,
    bf16: Option<Avx512Bf16>,
    vnni: Option<Avx512Vnni>,
    dotprod: Option<NeonDot>,
    y: &'a mut [f32],
}

impl SimdOp for QMatmul<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let QMatmul {
            pool,
            a,
            w,
            bf16,
            vnni,
            dotprod,
            y,
        } = self;
        let k = a.k;
        if a.m >= 2 && k > 0 && w.int_gemm() {
            // Interleaved Q8_0 / Q4_0: the GEMM is integer too, every row
            // of x quantized as the GEMV's.
            let mut bufs = XQ.take();
            bufs.0.resize(a.m * (k / blocks::QK), XBlock::default());
            qx8::quantize_rows(pool, a.x, k, &mut bufs.0);
            let kern = QKernels {
                s,
                w,
                x: XQuant::Q8(&bufs.0),
                bf16: None,
                vnni,
                dotprod: None,
                bias: a.bias,
                k,
            };
            split(pool, &kern, a.x, (a.m, a.n, k), y);
            XQ.set(bufs);
            return;
        }
        if (2..=super::GEMV_ROWS).contains(&a.m) && k > 0 {
            return batch::gemv_rows(s, pool, a, w, vnni, dotprod, y);
        }
        if a.m != 1 || k == 0 {
            let kern = QKernels {
                s,
                w,
                x: XQuant::Q8(&[]),
                bf16,
                vnni: None,
                dotprod: None,
                bias: a.bias,
                k,
            };
            return split(pool, &kern, a.x, (a.m, a.n, k), y);
        }
        let mut bufs = XQ.take();
        let x = match w {
            BlockRef::Q4_0(_) if vnni.is_some() => {
                bufs.0.resize(k / blocks::QK, XBlock::default());
                qdot::quantize_x(a.x, &mut bufs.0);
                bufs.2.resize(bufs.0.len() / 2, XPair::default());
                qdot::pair_x(&bufs.0, &mut bufs.2);
                XQuant::Pairs(&bufs.0, &bufs.2)
            }
            BlockRef::Q8_0(_) | BlockRef::Q4_0(_) | BlockRef::Q8_0x8(_) | BlockRef::Q4_0x8(_) => {
                bufs.0.resize(k / blocks::QK, XBlock::default());
                qdot::quantize_x(a.x, &mut bufs.0);
                XQuant::Q8(&bufs.0)
            }
            BlockRef::Q4K(_) | BlockRef::Q6K(_) | BlockRef::Q4Kx8(_) | BlockRef::Q6Kx8(_) => {
                bufs.1.resize(k / blocks::QK_K, XBlockK::default());
                qdot::quantize_x_k(a.x, &mut bufs.1);
                XQuant::K(&bufs.1)
            }
        };
        let kern = QKernels {
            s,
            w,
            x,
            bf16: None,
            vnni,
            dotprod,
            bias: a.bias,
            k,
        };
        split(pool, &kern, a.x, (1, a.n, k), y);
        XQ.set(bufs);
    }
}

/// The kernels of one block-quantized matmul call (see the module docs).
struct QKernels<'a, S> {
    s: S,
    w: BlockRef<'a>,
    /// The quantized `x` (GEMV only).
    x: XQuant<'a>,
    /// Run the GEMM on bf16 pair panels (see the module docs; always
    /// `None` off x86-64).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    bf16: Option<Avx512Bf16>,
    /// Run the GEMV's (and the interleaved GEMM's) dot products on
    /// `vpdpbusd` ([`vnni_gemv`]; always `None` off x86-64).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    vnni: Option<Avx512Vnni>,
    /// Run the GEMV's dot products on SDOT ([`neon_dotprod`]; always
    /// `None` off aarch64).
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    dotprod: Option<NeonDot>,
    bias: Option<&'a [f32]>,
    k: usize,
}

impl<S: Simd> Kernels for QKernels<'_, S> {
    fn nr(&self) -> usize {
        // GEMV splits rows at any boundary (whole groups of eight when
        // interleaved); GEMM decodes whole panels.
        let nr = S::NRV * S::LANES;
        if self.w.is_x8() {
            nr * ROWS / gcd(nr, ROWS)
        } else {
            nr
        }
    }

    fn mr(&self) -> usize {
        S::MR
    }

    fn split_rows_of_x(&self) -> bool {
        false
    }

    fn gemv(&self, j0: usize, j1: usize, y: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(tok) = self.vnni {
            return tok.dispatch(QGemvVnni {
                kern: self,
                j0,
                j1,
                y,
            });
        }
        #[cfg(target_arch = "aarch64")]
        if let Some(tok) = self.dotprod {
            return tok.dispatch(QGemvDot {
                kern: self,
                j0,
                j1,
                y,
            });
        }
        self.s.vectorize(QGemv {
            kern: self,
            j0,
            j1,
            y,
        })
    }

    fn gemm(&self, x: &[f32], m: usize, (j0, j1): (usize, usize), y: &mut [f32], ldy: usize) {
        if self.w.int_gemm() {
            let op = QGemmX8 {
                kern: self,
                m,
                j: (j0, j1),
                y,
                ldy,
            };
            #[cfg(target_arch = "x86_64")]
            if let Some(tok) = self.vnni {
                return tok.dispatch(op);
            }
            return self.s.vectorize(op);
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(tok) = self.bf16 {
            return self.gemm_bf16(tok, x, m, (j0, j1), y, ldy);
        }
        let (s, k) = (self.s, self.k);
        let layout = PanelLayout {
            nr: S::NRV * S::LANES,
            lanes: S::LANES,
        };
        // Rows decoded per chunk: a KC-deep slice of their panels stays
        // within 512 KiB (L2) while the GEMM sweeps the rows of x over it.
        let chunk = (512 * 1024 / (4 * S::KC.min(k).max(1)))
            .max(1)
            .next_multiple_of(layout.nr);
        let (mut panels, mut row) = PANELS.take();
        row.resize(k, 0.0);
        for c0 in (j0..j1).step_by(chunk) {
            let c1 = (c0 + chunk).min(j1);
            let nc = c1 - c0;
            panels.clear();
            panels.resize(layout.packed_len(nc, k), 0.0);
            for j in c0..c1 {
                self.w.dequantize_row(j, k, &mut row);
                let (q, r) = ((j - c0) / layout.nr, (j - c0) % layout.nr);
                let panel = &mut panels[q * layout.nr * k..(q + 1) * layout.nr * k];
                for (p, &v) in row.iter().enumerate() {
                    panel[p * layout.nr + r] = v;
                }
            }
            s.vectorize(Gemm {
                x,
                w: &panels[..],
                cols: Cols {
                    scale: None,
                    bias: self.bias.map(|b| &b[c0..c1]),
                },
                y: &mut y[c0 - j0..],
                ldy,
                m,
                n: nc,
                k,
            });
        }
        PANELS.set((panels, row));
    }
}

impl<S: Simd> QKernels<'_, S> {
    /// The interleaved weights' call ([`qx8::Args`]).
    #[inline(always)]
    fn x8_args(&self) -> qx8::Args<'_> {
        let XQuant::Q8(x) = self.x else {
            unreachable!("x is quantized for its weight format")
        };
        qx8::Args {
            w: self.w,
            x,
            bias: self.bias,
            per: self.k / blocks::QK,
        }
    }

    /// [`Kernels::gemm`] on bf16 pair panels (`bf16dot.rs`' layout),
    /// decoded a chunk of rows at a time.
    #[cfg(target_arch = "x86_64")]
    fn gemm_bf16(
        &self,
        tok: Avx512Bf16,
        x: &[f32],
        m: usize,
        (j0, j1): (usize, usize),
        y: &mut [f32],
        ldy: usize,
    ) {
        use super::bf16dot::{self, NR};
        // k is whole blocks, so even.
        let (k, kp) = (self.k, self.k / 2);
        let mut words = vec![0u32; kp];
        // A KCP-deep slice of the chunk's panels stays within 512 KiB.
        let chunk = (512 * 1024 / (4 * 512usize.min(kp).max(1)))
            .max(1)
            .next_multiple_of(NR);
        let (mut pairs, (panels, mut row)) = (PAIRS.take(), PANELS.take());
        row.resize(k, 0.0);
        for c0 in (j0..j1).step_by(chunk) {
            let c1 = (c0 + chunk).min(j1);
            pairs.clear();
            pairs.resize(bf16dot::packed_len(c1 - c0, k), 0);
            for j in c0..c1 {
                self.w.dequantize_row(j, k, &mut row);
                let (q, r) = ((j - c0) / NR, (j - c0) % NR);
                let panel = &mut pairs[q * NR * kp..(q + 1) * NR * kp];
                // Rounded in a loop the compiler vectorizes, then scattered.
                for (o, p) in words.iter_mut().zip(row.chunks_exact(2)) {
                    *o = bf16_bits(p[0]) | bf16_bits(p[1]) << 16;
                }
                for (t, &v) in words.iter().enumerate() {
                    panel[t * NR + r] = v;
                }
            }
            bf16dot::gemm_panels(
                tok,
                x,
                m,
                &pairs,
                self.bias.map(|b| &b[c0..c1]),
                (c1 - c0, k),
                &mut y[c0 - j0..],
                ldy,
            );
        }
        PAIRS.set(pairs);
        PANELS.set((panels, row));
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `v` rounded to bf16 (nearest even; NaN stays a quiet NaN), as bits.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn bf16_bits(v: f32) -> u32 {
    let b = v.to_bits();
    let rounded = b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16;
    if v.is_nan() { 0x7FC0 } else { rounded }
}

/// [`Kernels::gemm`] on interleaved Q8_0 / Q4_0 weights with `x` quantized
/// per block (`kern.x`, all `m` rows; `qx8.rs`): on the tier's dot
/// products ([`SimdOp`]) or on `vpdpbusd` (`VnniOp`).
struct QGemmX8<'a, 'k, S> {
    kern: &'k QKernels<'a, S>,
    m: usize,
    j: (usize, usize),
    y: &'k mut [f32],
    ldy: usize,
}

impl<S: Simd> SimdOp for QGemmX8<'_, '_, S> {
    type Output = ();

    #[inline(always)]
    fn run<T: Simd>(self, _: T) {
        let QGemmX8 { kern, m, j, y, ldy } = self;
        qx8::gemm(qx8::TierDots(kern.s), &kern.x8_args(), m, j, y, ldy)
    }
}

#[cfg(target_arch = "x86_64")]
impl<S: Simd> crate::cpu::dispatch::VnniOp for QGemmX8<'_, '_, S> {
    type Output = ();

    #[inline(always)]
    fn run(self, tok: Avx512Vnni) {
        let QGemmX8 { kern, m, j, y, ldy } = self;
        qx8::gemm(qx8::VnniDots(tok), &kern.x8_args(), m, j, y, ldy)
    }
}
