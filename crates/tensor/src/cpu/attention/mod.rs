//! Grouped-query attention (`kernels/attention.md`), causal over a KV cache
//! or bidirectional, with an online softmax over key tiles (never
//! materialising `t × kv_len` scores).
//!
//! The output is cut into work items (blocks of query rows, or head ranges
//! of one row for decode) that rayon runs in parallel; each item runs the
//! generic body (`item.rs`: the query-block path in `blocked.rs`, the
//! per-query path in `per_query.rs`) on the backend's tier through
//! `Simd::vectorize`. [`reference`](mod@reference) is the f64 twin.

#[cfg(target_arch = "x86_64")]
mod bf16;
mod blocked;
mod item;
mod per_query;
pub mod reference;

use std::cell::Cell;

use rayon::prelude::*;

use self::item::ItemOp;
use crate::cpu::dispatch::{IsaToken, SimdOp};
use crate::cpu::simd::Simd;

/// Keys per tile: the K and V rows of a tile (2 · 128 · hd f32, 64 KiB at
/// hd = 64) stay in L1/L2 while every query of the item uses them.
pub const KT: usize = 128;

/// Shapes of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttnDims {
    /// Query rows.
    pub t: usize,
    /// Query heads.
    pub h: usize,
    /// KV heads (`h % h_kv = 0`).
    pub h_kv: usize,
    /// Head dim (any `hd ≥ 1`).
    pub hd: usize,
    /// KV rows used (a cache may hold more).
    pub kv_len: usize,
    /// Causal: query row `r` sits at position `kv_len − t + r`.
    pub causal: bool,
    /// Score scale (`hd^-0.5` in the models).
    pub scale: f32,
}

/// The inputs of one call (lengths checked by the entry).
#[derive(Clone, Copy)]
pub(super) struct Inputs<'a> {
    pub q: &'a [f32], // [t, h, hd]
    pub k: &'a [f32], // [≥ kv_len, h_kv, hd]
    pub v: &'a [f32], // [≥ kv_len, h_kv, hd]
    pub a: AttnDims,
}

/// One work item: query rows `r0..r1` × query heads `ha..hb`. Its output is
/// contiguous in `out` (`[r1 − r0, hb − ha, hd]`): either one row, or whole
/// rows (`ha = 0, hb = h`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Item {
    pub r0: usize,
    pub r1: usize,
    pub ha: usize,
    pub hb: usize,
}

/// Query rows per work item at most: the K/V tile is reused by
/// `rows × (h / h_kv)` queries while it sits in cache.
const MAX_ROWS: usize = 32;
/// Below this many multiply-adds the call stays on the caller's thread.
const MIN_PARALLEL_MACS: usize = 1 << 16;

thread_local! {
    /// Per-thread accumulators and score buffer, grown once and reused.
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// `out[r, i, :] = softmax(scale · q[r, i, :] · k[0..seen(r), g, :]ᵀ) ·
/// v[0..seen(r), g, :]` with `g = i / (h / h_kv)` (GQA) and `seen(r) =
/// kv_len − t + r + 1` (causal) or `kv_len` (bidirectional).
///
/// `q`, `out`: f32 `[t, h, hd]` row-major; `k`, `v`: f32 `[s, h_kv, hd]`
/// with `s ≥ kv_len`, rows past `kv_len` never read. Softmax and
/// accumulation in f32 (vectorised `exp`); tolerance class "attention"
/// (`testing::tolerance::ATTENTION`). A row that sees no key (only with
/// `kv_len = 0`, bidirectional) is zeros. NaN and Inf propagate as in the
/// reference. `pool`: rayon threads (`None`: the caller's thread).
///
/// Panics if a slice length disagrees with the dims, `h % h_kv ≠ 0`, or a
/// causal call has `kv_len < t` (the backend checks first and returns errors).
#[track_caller]
pub fn attention(
    isa: IsaToken,
    pool: Option<&rayon::ThreadPool>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    a: AttnDims,
) {
    check_call(q, k, v, out, &a);
    if out.is_empty() {
        return;
    }
    let inp = Inputs { q, k, v, a };
    isa.dispatch(F32Attention { pool, inp, out })
}

/// The f32 attention on a tier: every work item enters the tier's wrapper
/// through `Simd::vectorize`, on whichever thread runs it.
struct F32Attention<'a, 'p> {
    pool: Option<&'p rayon::ThreadPool>,
    inp: Inputs<'a>,
    out: &'a mut [f32],
}

impl SimdOp for F32Attention<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let F32Attention { pool, inp, out } = self;
        drive(pool, out, inp.a, &|it, out, scratch| {
            s.vectorize(ItemOp {
                inp,
                it,
                out,
                scratch,
            })
        });
    }
}

/// [`attention`] on bf16 dot products (`vdpbf16ps`) for the `bf16dot`
/// weight format: `q`, `k`, `p` and `v` are rounded to bf16 (nearest
/// even) and every product summed in f32, as a bf16 flash attention does
/// (`bf16.rs`; softmax, running max and sums in f32), in every work item
/// (decode is better served by [`attention`]: it reads K and V once, in
/// f32). Same contract and panics as [`attention`]; tolerance class
/// "bf16 attention" (`testing::tolerance::ATTENTION_BF16`).
#[cfg(target_arch = "x86_64")]
#[track_caller]
pub fn attention_bf16(
    tok: crate::cpu::dispatch::Avx512Bf16,
    pool: Option<&rayon::ThreadPool>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    a: AttnDims,
) {
    check_call(q, k, v, out, &a);
    if out.is_empty() {
        return;
    }
    bf16::run(tok, pool, q, k, v, out, a)
}

/// The length checks every entry makes before any raw-pointer load.
#[track_caller]
fn check_call(q: &[f32], k: &[f32], v: &[f32], out: &[f32], a: &AttnDims) {
    let AttnDims {
        t,
        h,
        h_kv,
        hd,
        kv_len,
        causal,
        ..
    } = *a;
    assert!(
        h_kv > 0 && h.is_multiple_of(h_kv),
        "h must be a multiple of h_kv > 0"
    );
    assert!(!causal || kv_len >= t, "causal attention needs kv_len ≥ t");
    // Checked products: a wrapped length check would let the raw-pointer
    // loads in the body read past `k`/`v` in release builds.
    let prod3 = |a: usize, b: usize, c: usize| a.checked_mul(b).and_then(|x| x.checked_mul(c));
    assert_eq!(Some(q.len()), prod3(t, h, hd), "q is not [t, h, hd]");
    assert_eq!(Some(out.len()), prod3(t, h, hd), "out is not [t, h, hd]");
    let kv_need = prod3(kv_len, h_kv, hd).expect("kv_len · h_kv · hd overflows");
    assert!(k.len() >= kv_need, "k holds fewer than kv_len rows");
    assert!(v.len() >= kv_need, "v holds fewer than kv_len rows");
}

/// How `out` is cut into work items: `rows` query rows × all heads, or
/// (`rows = 1`) `heads` consecutive heads of one row. Either way an item's
/// output is one contiguous chunk of `chunk` f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan {
    rows: usize,
    heads: usize,
    chunk: usize,
}

impl Plan {
    fn new(a: &AttnDims, threads: usize) -> Plan {
        let (t, h, hd) = (a.t, a.h, a.hd);
        let rows_plan = |rows: usize| Plan {
            rows,
            heads: h,
            chunk: rows * h * hd,
        };
        if threads <= 1 {
            return rows_plan(t.min(MAX_ROWS));
        }
        // About four items per thread: causal rows differ in cost.
        let want = 4 * threads;
        if t >= 2 * threads {
            return rows_plan(t.div_ceil(want).clamp(1, MAX_ROWS));
        }
        // Few rows (decode): split each row's heads. The largest divisor of
        // h giving enough items keeps a GQA group's heads together.
        let per_row = want.div_ceil(t);
        let heads = (1..=h)
            .rev()
            .find(|&c| h.is_multiple_of(c) && h / c >= per_row)
            .unwrap_or(1);
        Plan {
            rows: 1,
            heads,
            chunk: heads * hd,
        }
    }

    /// The work item writing chunk `idx`.
    fn item(self, a: &AttnDims, idx: usize) -> Item {
        if self.heads == a.h {
            let r0 = idx * self.rows;
            Item {
                r0,
                r1: (r0 + self.rows).min(a.t),
                ha: 0,
                hb: a.h,
            }
        } else {
            let per_row = a.h / self.heads;
            let ha = (idx % per_row) * self.heads;
            Item {
                r0: idx / per_row,
                r1: idx / per_row + 1,
                ha,
                hb: ha + self.heads,
            }
        }
    }
}

/// Multiply-adds of the call (q·k and p·v), to decide on threading.
fn macs(a: &AttnDims) -> usize {
    let keys = if a.causal {
        a.t * (a.kv_len - a.t) + a.t * (a.t + 1) / 2
    } else {
        a.t * a.kv_len
    };
    2 * keys * a.h * a.hd
}

/// Runs one work item: the item, its output chunk, this thread's scratch.
type RunItem<'f> = dyn Fn(Item, &mut [f32], &mut Vec<f32>) + Sync + 'f;

/// Runs `item` over the work items of `out` (a call of dims `a`), on
/// `pool`'s threads when the call is large enough. `item` gets the item,
/// its output chunk and this thread's scratch.
fn drive(pool: Option<&rayon::ThreadPool>, out: &mut [f32], a: AttnDims, item: &RunItem<'_>) {
    let threads = pool.map_or(1, |p| p.current_num_threads());
    let pool = pool.filter(|_| threads > 1 && macs(&a) >= MIN_PARALLEL_MACS);
    let Some(pool) = pool else {
        let plan = Plan::new(&a, 1);
        let mut scratch = SCRATCH.take();
        for (idx, chunk) in out.chunks_mut(plan.chunk).enumerate() {
            item(plan.item(&a, idx), chunk, &mut scratch);
        }
        SCRATCH.set(scratch);
        return;
    };
    let plan = Plan::new(&a, threads);
    pool.install(|| {
        out.par_chunks_mut(plan.chunk)
            .enumerate()
            .for_each(|(idx, chunk)| {
                let mut scratch = SCRATCH.take();
                item(plan.item(&a, idx), chunk, &mut scratch);
                SCRATCH.set(scratch);
            })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(t: usize, h: usize, kv_len: usize) -> AttnDims {
        AttnDims {
            t,
            h,
            h_kv: 2,
            hd: 8,
            kv_len,
            causal: true,
            scale: 1.0,
        }
    }

    /// Every plan's chunks tile `out` exactly and map back to in-range items.
    #[test]
    fn plans_cover_the_output() {
        for (t, h) in [(1, 16), (1, 2), (3, 32), (17, 4), (65, 6), (1000, 16)] {
            for threads in 1..=5 {
                let a = dims(t, h, t + 3);
                let p = Plan::new(&a, threads);
                let n = (t * h * a.hd).div_ceil(p.chunk);
                let mut seen = vec![0u8; t * h];
                for idx in 0..n {
                    let it = p.item(&a, idx);
                    assert!(it.r0 < it.r1 && it.r1 <= t && it.ha < it.hb && it.hb <= h);
                    assert!(it.r1 - it.r0 == 1 || (it.ha, it.hb) == (0, h));
                    for r in it.r0..it.r1 {
                        for i in it.ha..it.hb {
                            seen[r * h + i] += 1;
                        }
                    }
                }
                assert!(
                    seen.iter().all(|&c| c == 1),
                    "t={t} h={h} threads={threads} {p:?}"
                );
            }
        }
    }
}
