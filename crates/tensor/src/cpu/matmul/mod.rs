//! Matmul `y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n])`, the spec is
//! `kernels/matmul.md`. x f32; w f32, bf16 or f16, prepacked once into the
//! ISA's [`panels`] (from PyTorch Linear layout); f32 accumulation. Two
//! opt-in formats: int8 panels with one scale per weight row ([`quant`]),
//! and bf16 k-pair panels for the AVX512-BF16 dot product ([`bf16dot`]).
//!
//! - `m = 1` (decode): GEMV, weight panels split across threads.
//! - `m ≥ 2` (prefill): GEMM, rows of `x` split across threads when there
//!   are enough of them, else weight panels.
//!
//! One generic body per regime (`gemv.rs`, `gemm.rs`) with the tier's tile
//! sizes (`Simd::MR`, `Simd::NRV`, `Simd::KC`, `Simd::MC`); each thread
//! enters it through `Simd::vectorize`.

pub mod bf16dot;
mod gemm;
mod gemv;
pub mod panels;
pub mod probe;
pub mod qblock;
pub mod quant;
mod qx8;
pub mod reference;

use half::{bf16, f16};
use rayon::prelude::*;

use self::gemm::Gemm;
use self::gemv::{Gemv, GemvRows};
use self::panels::PanelLayout;
use crate::cpu::dispatch::{Avx512Bf16, IsaToken, SimdOp};
use crate::cpu::simd::Simd;
use crate::dtype::Element;

/// Rows of `x` up to which a matmul runs as [`GemvRows`] (weights streamed
/// once, each row as its own GEMV would sum it: a batched decode step gives
/// each sequence exactly its one-row result) rather than the blocked GEMM.
/// Nine: a batched decode step of up to eight sequences, or a speculative
/// verify of the last token and up to eight drafts, is exactly the decode
/// steps it stands for.
pub const GEMV_ROWS: usize = 9;

/// Borrowed weight panels of one matmul (see [`panels`]), in any supported dtype.
#[derive(Clone, Copy, Debug)]
pub enum WeightRef<'a> {
    F32(&'a [f32]),
    BF16(&'a [bf16]),
    F16(&'a [f16]),
    /// int8 panels and one f32 scale per weight row (`[n]`):
    /// `w[j, p] ≈ q[j, p] · scale[j]` ([`quant`]).
    I8 {
        q: &'a [i8],
        scale: &'a [f32],
    },
    /// bf16 k-pair panels for the AVX512-BF16 dot product ([`bf16dot`]):
    /// `x` is rounded to bf16. The token proves the CPU can run them; they
    /// run on those kernels whatever the tier.
    Bf16Pairs {
        w: &'a [u32],
        tok: Avx512Bf16,
    },
    /// Block-quantized rows in ggml's layout, not panels ([`qblock`]).
    Blocks(qblock::BlockRef<'a>),
}

impl WeightRef<'_> {
    /// Elements of the panels (the scales not counted).
    pub fn len(&self) -> usize {
        match self {
            WeightRef::F32(w) => w.len(),
            WeightRef::BF16(w) => w.len(),
            WeightRef::F16(w) => w.len(),
            WeightRef::I8 { q, .. } => q.len(),
            WeightRef::Bf16Pairs { w, .. } => w.len(),
            WeightRef::Blocks(b) => b.elems(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The inputs of one matmul. Slices are checked against `m, n, k` by
/// [`matmul`] before any kernel runs.
#[derive(Clone, Copy, Debug)]
pub struct MatmulArgs<'a> {
    pub x: &'a [f32],            // [m, k]
    pub w: WeightRef<'a>,        // panels of [n, k] in the ISA's layout
    pub bias: Option<&'a [f32]>, // [n]
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

/// The microkernel geometry of one ISA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Rows of `x` per register tile.
    pub mr: usize,
    /// Weight rows per register tile (= per panel).
    pub nr: usize,
    /// f32 lanes per vector.
    pub lanes: usize,
    /// Depth of one `k` block.
    pub kc: usize,
}

impl Geometry {
    /// The weight panel layout of this ISA.
    pub fn panels(self) -> PanelLayout {
        PanelLayout {
            nr: self.nr,
            lanes: self.lanes,
        }
    }
}

/// The microkernel geometry of `isa`'s matmul (tests aim at its edges; the
/// backend packs weights with [`Geometry::panels`]).
pub fn geometry(isa: IsaToken) -> Geometry {
    struct Of;
    impl SimdOp for Of {
        type Output = Geometry;

        #[inline(always)]
        fn run<S: Simd>(self, _: S) -> Geometry {
            Geometry {
                mr: S::MR,
                nr: S::NRV * S::LANES,
                lanes: S::LANES,
                kc: S::KC,
            }
        }
    }
    isa.dispatch(Of)
}

/// Runs the matmul on `isa` with `pool`'s threads (`None`: the caller's thread).
///
/// Panics if the slice lengths disagree with `m, n, k` and `isa`'s panel
/// layout (the backend checks tensor shapes first and returns errors; this
/// is the kernel's contract).
#[track_caller]
pub fn matmul(isa: IsaToken, pool: Option<&rayon::ThreadPool>, a: &MatmulArgs<'_>, y: &mut [f32]) {
    let layout = geometry(isa).panels();
    // Checked products: a wrapped length check would let the raw-pointer
    // tile stores below run past `y` in release builds. This holds for
    // every weight format, so it comes before they part ways.
    let prod = |p: usize, q: usize| p.checked_mul(q);
    assert_eq!(Some(a.x.len()), prod(a.m, a.k), "x is not [m, k]");
    if let Some(b) = a.bias {
        assert_eq!(b.len(), a.n, "bias is not [n]");
    }
    if let WeightRef::Blocks(w) = a.w {
        assert_eq!(Some(y.len()), prod(a.m, a.n), "y is not [m, n]");
        return qblock::matmul(isa, pool, a, w, y);
    }
    // Panel words per weight row: k elements, or ⌈k/2⌉ bf16 pairs.
    let (nr, per_row) = match a.w {
        WeightRef::Bf16Pairs { .. } => (bf16dot::NR, a.k.div_ceil(2)),
        _ => (layout.nr, a.k),
    };
    let panels_len = prod(a.n.div_ceil(nr), nr).and_then(|r| prod(r, per_row));
    assert_eq!(
        Some(a.w.len()),
        panels_len,
        "w is not the panels of [n, k] ({nr} rows each)"
    );
    assert_eq!(Some(y.len()), prod(a.m, a.n), "y is not [m, n]");
    if let WeightRef::I8 { scale, .. } = a.w {
        assert_eq!(scale.len(), a.n, "the int8 weight's scales are not [n]");
    }
    if let WeightRef::Bf16Pairs { w, tok } = a.w {
        return bf16_pairs(tok, pool, a, w, y);
    }
    isa.dispatch(ByDtype { pool, a, y })
}

/// The AVX512-BF16 kernels, on the token the weights carry.
fn bf16_pairs(
    tok: Avx512Bf16,
    pool: Option<&rayon::ThreadPool>,
    a: &MatmulArgs<'_>,
    w: &[u32],
    y: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    bf16dot::matmul(tok, pool, a.x, w, a.bias, (a.m, a.n, a.k), y);
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (tok, pool, a, w, y);
        unreachable!("an Avx512Bf16 token exists only on x86-64");
    }
}

/// The tier's generic kernels over the weights' element type, split across
/// the pool ([`split`]); each thread enters the kernels through
/// `Simd::vectorize`.
struct ByDtype<'a, 'p> {
    pool: Option<&'p rayon::ThreadPool>,
    a: &'a MatmulArgs<'a>,
    y: &'a mut [f32],
}

impl SimdOp for ByDtype<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let ByDtype { pool, a, y } = self;
        match a.w {
            WeightRef::F32(w) => drive(s, pool, a, w, None, y),
            WeightRef::BF16(w) => drive(s, pool, a, w, None, y),
            WeightRef::F16(w) => drive(s, pool, a, w, None, y),
            WeightRef::I8 { q, scale } => drive(s, pool, a, q, Some(scale), y),
            WeightRef::Bf16Pairs { w, tok } => bf16_pairs(tok, pool, a, w, y),
            WeightRef::Blocks(_) => unreachable!("block weights take qblock::matmul"),
        }
    }
}

/// The kernels of one matmul call over its weight panels: what [`split`]
/// hands each thread. Column ranges `j0..j1` start on a panel boundary.
pub(crate) trait Kernels: Sync {
    /// Weight rows per panel.
    fn nr(&self) -> usize;
    /// Rows of `x` per register tile.
    fn mr(&self) -> usize;
    /// `y = x · w[j0..j1]ᵀ (+ epilogue)` for the call's one row of `x` (m = 1).
    fn gemv(&self, j0: usize, j1: usize, y: &mut [f32]);
    /// `y[m, ldy]` (its first `j1 − j0` columns) `= x[m, k] · w[j0..j1]ᵀ (+ epilogue)`.
    fn gemm(&self, x: &[f32], m: usize, cols: (usize, usize), y: &mut [f32], ldy: usize);
    /// Whether GEMM may split the rows of `x` across threads (each thread
    /// then reads every weight). `false` where using a weight costs more
    /// than reading it (block formats decode each weight first).
    fn split_rows_of_x(&self) -> bool {
        true
    }
}

/// Splits one matmul across `pool`'s threads: GEMV by whole weight panels,
/// GEMM by rows of `x` when there are enough of them, else by weight panels
/// (the column parts stitched back into `y`).
pub(crate) fn split<K: Kernels>(
    pool: Option<&rayon::ThreadPool>,
    kern: &K,
    x: &[f32],
    (m, n, k): (usize, usize, usize),
    y: &mut [f32],
) {
    let (nr, mr) = (kern.nr(), kern.mr());
    let threads = pool.map_or(1, |p| p.current_num_threads());
    // k = 0 stays on one thread (rayon's chunking needs non-empty chunks).
    let pool = pool.filter(|_| threads > 1 && k > 0 && m * n * k >= 1 << 16);
    let Some(pool) = pool else {
        if m == 1 {
            kern.gemv(0, n, y);
        } else {
            kern.gemm(x, m, (0, n), y, n);
        }
        return;
    };
    if m == 1 {
        let rows = n.div_ceil(threads).next_multiple_of(nr);
        pool.install(|| {
            y.par_chunks_mut(rows).enumerate().for_each(|(c, yc)| {
                let j0 = c * rows;
                kern.gemv(j0, j0 + yc.len(), yc);
            })
        });
    } else if m >= 2 * mr * threads && kern.split_rows_of_x() {
        // Rows of x per task: a multiple of MR.
        let rows = m.div_ceil(threads).next_multiple_of(mr);
        pool.install(|| {
            y.par_chunks_mut(rows * n)
                .zip(x.par_chunks(rows * k))
                .for_each(|(yc, xc)| kern.gemm(xc, yc.len() / n, (0, n), yc, n))
        });
    } else {
        // Few rows: split the weight panels and stitch the parts back.
        let cols = n.div_ceil(threads).next_multiple_of(nr);
        let parts: Vec<(usize, Vec<f32>)> = pool.install(|| {
            (0..n)
                .step_by(cols)
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(|j0| {
                    let j1 = (j0 + cols).min(n);
                    let nc = j1 - j0;
                    let mut part = vec![0.0f32; m * nc];
                    kern.gemm(x, m, (j0, j1), &mut part, nc);
                    (j0, part)
                })
                .collect()
        });
        for (j0, part) in parts {
            let nc = part.len() / m;
            for i in 0..m {
                y[i * n + j0..i * n + j0 + nc].copy_from_slice(&part[i * nc..(i + 1) * nc]);
            }
        }
    }
}

/// The panels of weight rows `j0..j1` (`j0` on a panel boundary) in `w`,
/// whose panels hold `nr` rows of `per_row` words each.
pub(crate) fn panel_slice<T>(w: &[T], (j0, j1): (usize, usize), nr: usize, per_row: usize) -> &[T] {
    &w[j0 * per_row..(j0 + (j1 - j0).next_multiple_of(nr)) * per_row]
}

/// The generic bodies of one ISA over panels of `E` (`scale`: int8 weights).
struct Generic<'a, S, E> {
    s: S,
    x: &'a [f32],
    w: &'a [E],
    scale: Option<&'a [f32]>,
    bias: Option<&'a [f32]>,
    k: usize,
}

impl<S: Simd, E: Element> Generic<'_, S, E> {
    /// The panels and epilogue slices of weight rows `j0..j1`.
    fn part(&self, j0: usize, j1: usize) -> (&[E], Cols<'_>) {
        let w = panel_slice(self.w, (j0, j1), S::NRV * S::LANES, self.k);
        let cols = Cols {
            scale: self.scale.map(|sc| &sc[j0..j1]),
            bias: self.bias.map(|b| &b[j0..j1]),
        };
        (w, cols)
    }
}

impl<S: Simd, E: Element> Kernels for Generic<'_, S, E> {
    fn nr(&self) -> usize {
        S::NRV * S::LANES
    }

    fn mr(&self) -> usize {
        S::MR
    }

    fn gemv(&self, j0: usize, j1: usize, y: &mut [f32]) {
        let (w, cols) = self.part(j0, j1);
        let x = self.x;
        self.s.vectorize(Gemv { x, w, cols, y });
    }

    fn gemm(&self, x: &[f32], m: usize, (j0, j1): (usize, usize), y: &mut [f32], ldy: usize) {
        let (w, cols) = self.part(j0, j1);
        let (n, k) = (j1 - j0, self.k);
        if m <= GEMV_ROWS {
            self.s.vectorize(GemvRows {
                x,
                m,
                w,
                cols,
                y,
                ldy,
                n,
                k,
            });
            return;
        }
        self.s.vectorize(Gemm {
            x,
            w,
            cols,
            y,
            ldy,
            m,
            n,
            k,
        });
    }
}

/// Runs the generic bodies of `s` over `w` (`scale`: int8 weights).
#[inline(always)]
fn drive<S: Simd, E: Element>(
    s: S,
    pool: Option<&rayon::ThreadPool>,
    a: &MatmulArgs<'_>,
    w: &[E],
    scale: Option<&[f32]>,
    y: &mut [f32],
) {
    let kern = Generic {
        s,
        x: a.x,
        w,
        scale,
        bias: a.bias,
        k: a.k,
    };
    split(pool, &kern, a.x, (a.m, a.n, a.k), y);
}

/// The per-output-column epilogue of one kernel call: `y[·, j] = acc[·, j]
/// (· scale[j]) (+ bias[j])`, both slices `[n]` of the call's columns.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cols<'a> {
    pub scale: Option<&'a [f32]>,
    pub bias: Option<&'a [f32]>,
}
