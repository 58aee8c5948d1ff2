//! bf16 dot-product weights (opt-in on CPUs with AVX512-BF16:
//! `--weights bf16dot`), `kernels/matmul.md` § bf16 dot product.
//!
//! `vdpbf16ps` multiplies pairs of bf16 and adds both products into an f32
//! lane: twice the multiply-adds per instruction of an f32 FMA, so a
//! compute-bound GEMM (prefill) can run up to twice as fast. The price is
//! that `x` is rounded to bf16 (nearest even) before every matmul of more
//! than one row, as llama.cpp's BF16 path and PyTorch's bf16 `Linear` do.
//! bf16 checkpoint weights pass through exactly (f32 and f16 ones are
//! rounded to bf16 at load), products are exact in f32, and sums stay f32.
//! Decode's GEMV (`m = 1`) is memory-bound, so it gains nothing from
//! `vdpbf16ps`: it widens the same panels to f32 and is exact on `x`
//! (`benches/README.md` § CPU tuning has the measurement).
//!
//! Panels hold [`NR`] weight rows, k-pair-major: u32 word `(t, j)` of a
//! panel is `w[j, 2t]` (low half) and `w[j, 2t + 1]` (high half), the pair
//! `vdpbf16ps` consumes per lane. Rows past `n` and the odd `k` tail are 0.

use half::bf16;
use rayon::prelude::*;

/// Weight rows per panel (4 zmm of 16 lanes).
pub const NR: usize = 64;
/// Rows of `x` per register tile (6 × 4 accumulators + 4 weight vectors).
pub const MR: usize = 6;

/// u32 words of the packed `w[n, k]`.
pub fn packed_len(n: usize, k: usize) -> usize {
    n.div_ceil(NR) * NR * k.div_ceil(2)
}

/// `x` as the kernels see it: rounded to bf16 (nearest even, NaN kept).
pub fn round(x: f32) -> f32 {
    bf16::from_f32(x).to_f32()
}

/// One pair of values as a `vdpbf16ps` operand word.
#[inline(always)]
pub(crate) fn pair(lo: bf16, hi: bf16) -> u32 {
    lo.to_bits() as u32 | (hi.to_bits() as u32) << 16
}

/// Packs row-major `w[n, k]` (bf16, exact) into k-pair panels, panels in
/// parallel on the current rayon pool (model load).
pub fn pack(w: &[bf16], n: usize, k: usize) -> Vec<u32> {
    assert_eq!(w.len(), n * k, "w is not [n, k]");
    let kp = k.div_ceil(2);
    let mut out = crate::cpu::alloc::filled_vec(packed_len(n, k), 0u32);
    if kp == 0 {
        return out;
    }
    out.par_chunks_mut(NR * kp)
        .enumerate()
        .for_each(|(q, panel)| {
            let rows = NR.min(n - q * NR);
            // Blocks of 32 pairs: the block's outputs stay in L1 while
            // every row of the panel fills them.
            for t0 in (0..kp).step_by(32) {
                let t1 = kp.min(t0 + 32);
                for jj in 0..rows {
                    let row = &w[(q * NR + jj) * k..(q * NR + jj + 1) * k];
                    for t in t0..t1 {
                        let hi = row.get(2 * t + 1).copied().unwrap_or(bf16::ZERO);
                        panel[t * NR + jj] = pair(row[2 * t], hi);
                    }
                }
            }
        });
    out
}

/// Unpacks row `row` of packed `[n, k]` into `out` (`k` values, exact).
pub fn unpack_row(packed: &[u32], k: usize, row: usize, out: &mut [f32]) {
    let kp = k.div_ceil(2);
    let (q, jj) = (row / NR, row % NR);
    let panel = &packed[q * NR * kp..(q + 1) * NR * kp];
    for (p, o) in out[..k].iter_mut().enumerate() {
        let word = panel[(p / 2) * NR + jj];
        let bits = if p % 2 == 0 {
            word << 16
        } else {
            word & 0xffff_0000
        };
        *o = f32::from_bits(bits);
    }
}

/// Unpacks packed `[n, k]` to row-major f32 (exact).
pub fn unpack(packed: &[u32], n: usize, k: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; n * k];
    if k > 0 {
        for (row, o) in out.chunks_exact_mut(k).enumerate() {
            unpack_row(packed, k, row, o);
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
pub(crate) use self::x86::{gemm_panels, matmul};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::__m512i;
    use std::cell::RefCell;

    use half::bf16;

    use super::{MR, NR, pair};
    use crate::cpu::dispatch::{Avx512, Avx512Bf16, Bf16Op};
    use crate::cpu::matmul::gemm::{Acc, MAX_MR, MAX_NRV, Tile, store_tile};
    use crate::cpu::matmul::{Kernels, panel_slice, split};
    use crate::cpu::simd::Simd;

    const NRV: usize = NR / 16;
    // The register tile is the largest generic one: `store_tile` takes it.
    const _: () = assert!(MR == MAX_MR && NRV == MAX_NRV);
    /// k pairs per cache block (k = 1024: a 128 KiB, L2-resident slice of a
    /// panel). Chosen by measurement, as [`MC`]: `benches/README.md`.
    const KCP: usize = 512;
    /// Rows of `x` per cache block.
    const MC: usize = 96;

    thread_local! {
        /// Packed `x` (bf16 pairs), reused by every call on this thread.
        static SCRATCH: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    }

    /// `y[m, n] = bf16(x)[m, k] · w[n, k]ᵀ (+ bias)` over k-pair panels `w`,
    /// on `pool`'s threads.
    pub(crate) fn matmul(
        tok: Avx512Bf16,
        pool: Option<&rayon::ThreadPool>,
        x: &[f32],
        w: &[u32],
        bias: Option<&[f32]>,
        (m, n, k): (usize, usize, usize),
        y: &mut [f32],
    ) {
        // Checked products: a wrapped length check would let the tile
        // stores run past `y`.
        let prod = |p: usize, q: usize| p.checked_mul(q);
        assert_eq!(Some(x.len()), prod(m, k), "x is not [m, k]");
        let words = prod(n.div_ceil(NR), NR).and_then(|r| prod(r, k.div_ceil(2)));
        assert_eq!(Some(w.len()), words, "w is not k-pair panels");
        assert_eq!(Some(y.len()), prod(m, n), "y is not [m, n]");
        if let Some(b) = bias {
            assert_eq!(b.len(), n, "bias is not [n]");
        }
        let kern = Dot { tok, x, w, bias, k };
        split(pool, &kern, x, (m, n, k), y);
    }

    /// The GEMM body alone on `w`'s k-pair panels of `[n, k]` into
    /// `y` (row stride `ldy`), this thread: for callers that make panels
    /// per call (the block formats' prefill, `qblock.rs`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gemm_panels(
        tok: Avx512Bf16,
        x: &[f32],
        m: usize,
        w: &[u32],
        bias: Option<&[f32]>,
        (n, k): (usize, usize),
        y: &mut [f32],
        ldy: usize,
    ) {
        tok.dispatch(Gemm {
            x,
            w,
            bias,
            y,
            ldy,
            m,
            n,
            k,
        });
    }

    struct Dot<'a> {
        tok: Avx512Bf16,
        x: &'a [f32],
        w: &'a [u32],
        bias: Option<&'a [f32]>,
        k: usize,
    }

    impl Dot<'_> {
        fn part(&self, j0: usize, j1: usize) -> (&[u32], Option<&[f32]>) {
            let w = panel_slice(self.w, (j0, j1), NR, self.k.div_ceil(2));
            (w, self.bias.map(|b| &b[j0..j1]))
        }
    }

    impl Kernels for Dot<'_> {
        fn nr(&self) -> usize {
            NR
        }

        fn mr(&self) -> usize {
            MR
        }

        fn gemv(&self, j0: usize, j1: usize, y: &mut [f32]) {
            let (w, bias) = self.part(j0, j1);
            let x = self.x;
            self.tok.dispatch(Gemv { x, w, bias, y });
        }

        fn gemm(&self, x: &[f32], m: usize, (j0, j1): (usize, usize), y: &mut [f32], ldy: usize) {
            let (w, bias) = self.part(j0, j1);
            let (n, k) = (j1 - j0, self.k);
            self.tok.dispatch(Gemm {
                x,
                w,
                bias,
                y,
                ldy,
                m,
                n,
                k,
            });
        }
    }

    /// The `NRV` pair vectors of one word row of a panel.
    ///
    /// # Safety
    /// `p` must be valid for reads of `NR` u32.
    #[inline(always)]
    unsafe fn load_row(tok: Avx512Bf16, p: *const u32) -> [__m512i; NRV] {
        let mut v = [tok.splat_pair(0); NRV];
        for (i, vi) in v.iter_mut().enumerate() {
            // SAFETY: the caller guarantees NR = 16·NRV readable words.
            *vi = unsafe { tok.load_pairs(p.wrapping_add(16 * i)) };
        }
        v
    }

    /// Decode (`m = 1`) in f32, exact like the native panels: each pair
    /// word splits into its two bf16 halves widened to f32 (a shift and a
    /// mask, `load_bf16_pairs`), which FMA with `x[2t]` and `x[2t + 1]`
    /// (not rounded: a GEMV is memory-bound, so `vdpbf16ps` would save
    /// nothing here).
    struct Gemv<'a> {
        x: &'a [f32],            // [k]
        w: &'a [u32],            // k-pair panels of [n, k]
        bias: Option<&'a [f32]>, // [n]
        y: &'a mut [f32],        // [n]
    }

    impl Bf16Op for Gemv<'_> {
        type Output = ();

        #[inline(always)]
        fn run(self, tok: Avx512Bf16) {
            gemv(tok, self)
        }
    }

    #[inline(always)]
    fn gemv(tok: Avx512Bf16, g: Gemv<'_>) {
        let Gemv { x, w, bias, y } = g;
        let s = tok.avx512();
        let k = x.len();
        let kp = k.div_ceil(2);
        let n = y.len();
        assert_eq!(w.len(), n.div_ceil(NR) * NR * kp);
        for q in 0..n.div_ceil(NR) {
            let panel = w[q * NR * kp..(q + 1) * NR * kp].as_ptr();
            let mut a0 = [s.zero(); NRV];
            let mut a1 = a0;
            for t in 0..kp {
                // The pad half of an odd k's last pair is 0: so is x1.
                let x0 = s.splat(x[2 * t]);
                let x1 = s.splat(x.get(2 * t + 1).copied().unwrap_or(0.0));
                for v in 0..NRV {
                    let p = panel.wrapping_add(t * NR + 16 * v).cast::<u16>();
                    // SAFETY: t < kp: word row t of the panel holds NR = 16·NRV
                    // words, 32 u16 from 16·v.
                    let (lo, hi) = unsafe { s.load_bf16_pairs(p) };
                    a0[v] = s.fma(x0, lo, a0[v]);
                    a1[v] = s.fma(x1, hi, a1[v]);
                }
            }
            let mut out = [0.0f32; NR];
            for v in 0..NRV {
                // SAFETY: 16·v + 16 ≤ NR.
                unsafe { s.store(out.as_mut_ptr().wrapping_add(16 * v), s.add(a0[v], a1[v])) };
            }
            let j0 = q * NR;
            for j in 0..NR.min(n - j0) {
                y[j0 + j] = out[j] + bias.map_or(0.0, |b| b[j0 + j]);
            }
        }
    }

    /// One GEMM call: `y[m, ldy]` (its first `n` columns) `= bf16(x)[m, k]
    /// · w[n, k]ᵀ (+ bias[n])`.
    struct Gemm<'a> {
        x: &'a [f32],
        w: &'a [u32],
        bias: Option<&'a [f32]>,
        y: &'a mut [f32],
        ldy: usize,
        m: usize,
        n: usize,
        k: usize,
    }

    impl Bf16Op for Gemm<'_> {
        type Output = ();

        #[inline(always)]
        fn run(self, tok: Avx512Bf16) {
            gemm(tok, self)
        }
    }

    #[inline(always)]
    fn gemm(tok: Avx512Bf16, g: Gemm<'_>) {
        let Gemm {
            x,
            w,
            bias,
            y,
            ldy,
            m,
            n,
            k,
        } = g;
        let kp = k.div_ceil(2);
        assert_eq!(x.len(), m * k);
        assert_eq!(w.len(), n.div_ceil(NR) * NR * kp);
        if m == 0 || n == 0 {
            return;
        }
        assert!(ldy >= n && y.len() >= (m - 1) * ldy + n);
        if k == 0 {
            for i in 0..m {
                for j in 0..n {
                    y[i * ldy + j] = bias.map_or(0.0, |b| b[j]);
                }
            }
            return;
        }
        let kcp_max = KCP.min(kp);
        let mc_max = MC.min(m.next_multiple_of(MR));
        let mut apack = SCRATCH.take();
        if apack.len() < mc_max * kcp_max {
            apack.resize(mc_max * kcp_max, 0);
        }
        for pc in (0..kp).step_by(kcp_max) {
            let kcp = kcp_max.min(kp - pc);
            for ic in (0..m).step_by(mc_max) {
                let mc = mc_max.min(m - ic);
                pack_x(tok, x, k, (ic, mc), (pc, kcp), &mut apack);
                for q in 0..n.div_ceil(NR) {
                    let col0 = q * NR;
                    let nr_eff = NR.min(n - col0);
                    let bp = &w[q * NR * kp + pc * NR..][..kcp * NR];
                    for ir in (0..mc).step_by(MR) {
                        let ap = &apack[ir * kcp..(ir + MR) * kcp];
                        let tile = Tile {
                            ldy,
                            mr: MR.min(mc - ir),
                            nr: nr_eff,
                            first: pc == 0,
                            scale: None,
                            bias: bias.map(|b| &b[col0..col0 + nr_eff]),
                        };
                        let yoff = (ic + ir) * ldy + col0;
                        micro(tok, kcp, ap, bp, &mut y[yoff..], tile);
                    }
                }
            }
        }
        SCRATCH.set(apack);
    }

    /// Packs rows `ic..ic+mc` of `x`, pairs `pc..pc+kcp`, into `⌈mc/MR⌉`
    /// panels of `kcp × MR` words, rounding to bf16; rows and the odd tail
    /// past the input are 0.
    #[inline(always)]
    fn pack_x(
        tok: Avx512Bf16,
        x: &[f32],
        k: usize,
        (ic, mc): (usize, usize),
        (pc, kcp): (usize, usize),
        out: &mut [u32],
    ) {
        let mut row_pairs = [0u32; KCP];
        for (panel, i0) in (0..mc).step_by(MR).enumerate() {
            let dst = &mut out[panel * kcp * MR..(panel + 1) * kcp * MR];
            let rows = MR.min(mc - i0);
            for i in 0..MR {
                if i < rows {
                    let r = ic + i0 + i;
                    let seg = &x[r * k + 2 * pc..r * k + k.min(2 * (pc + kcp))];
                    to_pairs(tok, seg, &mut row_pairs[..kcp]);
                } else {
                    row_pairs[..kcp].fill(0);
                }
                for (t, &word) in row_pairs[..kcp].iter().enumerate() {
                    dst[t * MR + i] = word;
                }
            }
        }
    }

    /// `out[t] = (bf16(x[2t]), bf16(x[2t + 1]))` as pair words, the value
    /// past an odd end 0; `out.len() = ⌈x.len() / 2⌉`. Rounds to nearest
    /// even; the vector part flushes denormals to 0, which `vdpbf16ps` does
    /// with its inputs anyway.
    #[inline(always)]
    fn to_pairs(tok: Avx512Bf16, x: &[f32], out: &mut [u32]) {
        assert_eq!(out.len(), x.len().div_ceil(2));
        let mut t = 0;
        while 2 * t + 32 <= x.len() {
            // SAFETY: x[2t..2t + 32] and out[t..t + 16] are in bounds.
            unsafe {
                tok.round_pairs(
                    x.as_ptr().wrapping_add(2 * t),
                    out.as_mut_ptr().wrapping_add(t),
                )
            };
            t += 16;
        }
        for (o, p) in out[t..].iter_mut().zip((2 * t..).step_by(2)) {
            let hi = x.get(p + 1).copied().unwrap_or(0.0);
            *o = pair(bf16::from_f32(x[p]), bf16::from_f32(hi));
        }
    }

    /// The `MR × NR` register tile of one `kcp`-pair slice, written to `y`
    /// at `t`.
    #[inline(always)]
    fn micro(tok: Avx512Bf16, kcp: usize, a: &[u32], b: &[u32], y: &mut [f32], t: Tile<'_>) {
        assert!(a.len() >= kcp * MR && b.len() >= kcp * NR);
        let s = tok.avx512();
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        let mut acc: Acc<Avx512> = [[s.zero(); NRV]; MR];
        for p in 0..kcp {
            // SAFETY: p < kcp, so the NR words lie inside b[..kcp·NR].
            let bv = unsafe { load_row(tok, bp.wrapping_add(p * NR)) };
            for (i, row) in acc.iter_mut().enumerate() {
                // SAFETY: p < kcp and i < MR: inside a[..kcp·MR].
                let av = tok.splat_pair(unsafe { ap.wrapping_add(p * MR + i).read() });
                for v in 0..NRV {
                    row[v] = tok.dot_pairs(row[v], av, bv[v]);
                }
            }
        }
        store_tile(s, acc, (MR, NRV), y, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_every_edge() {
        for (n, k) in [(1, 1), (3, 2), (64, 3), (65, 7), (130, 64), (5, 0)] {
            let w: Vec<bf16> = (0..n * k)
                .map(|i| bf16::from_f32(i as f32 * 0.37 - 11.0))
                .collect();
            let packed = pack(&w, n, k);
            assert_eq!(packed.len(), packed_len(n, k));
            let back = unpack(&packed, n, k);
            let want: Vec<f32> = w.iter().map(|v| v.to_f32()).collect();
            assert_eq!(back, want, "n={n} k={k}");
        }
    }
}
