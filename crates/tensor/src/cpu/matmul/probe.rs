//! Whether `vdpbf16ps` out-computes the f32 FMA on this core, measured once
//! per process (about a millisecond) rather than read off the feature flags:
//! Zen 5 and Intel's Sapphire Rapids both report AVX512-BF16, but on Zen 5
//! one `vdpbf16ps` does twice an FMA's multiply-adds at the FMA's rate (its
//! GEMM runs 1.9× the f32 one, `kernels/matmul.md`), while on a Sapphire
//! Rapids class Xeon it does half the FMA's multiply-adds per second (peaks
//! 172 against 352 GFLOPS on 2 cores; this probe reads 0.53 there), so it
//! loses and the rounding of `x` is paid for nothing. The block formats' prefill (`qblock::bf16_prefill`) asks this.

use std::sync::OnceLock;

use crate::cpu::dispatch::Avx512Bf16;

/// The multiply-add rate of `vdpbf16ps` over that of f32 FMAs above which
/// the bf16 GEMM is chosen: the two known cores are near 2 (Zen 5, from its
/// GEMMs) and 0.5 (Sapphire Rapids, measured).
const PAYS: f64 = 1.4;

/// Whether `tok`'s `vdpbf16ps` does at least [`PAYS`] times the f32 FMA's
/// multiply-adds per second on this core (probed once per process).
pub fn bf16_dot_pays(tok: Avx512Bf16) -> bool {
    static RATIO: OnceLock<f64> = OnceLock::new();
    *RATIO.get_or_init(|| bf16_over_fma(tok)) >= PAYS
}

/// `vdpbf16ps` multiply-adds per second over f32 FMA multiply-adds per
/// second on one thread (best of three short runs of each, interleaved).
pub fn bf16_over_fma(tok: Avx512Bf16) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        x86::ratio(tok)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = tok;
        0.0
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::hint::black_box;
    use std::time::Instant;

    use crate::cpu::dispatch::{Avx512Bf16, Bf16Op, SimdOp};
    use crate::cpu::simd::Simd;

    /// Independent chains: more than latency × pipes on current cores.
    const CHAINS: usize = 12;
    /// Per run: 240 000 instructions, tens of microseconds.
    const ITERS: usize = 20_000;

    pub(super) fn ratio(tok: Avx512Bf16) -> f64 {
        let (mut fma, mut dot) = (f64::MAX, f64::MAX);
        for _ in 0..3 {
            let t = Instant::now();
            black_box(tok.avx512().vectorize(Fma));
            fma = fma.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            black_box(tok.dispatch(Dot));
            dot = dot.min(t.elapsed().as_secs_f64());
        }
        // Per instruction: 16 multiply-adds (FMA), 32 (vdpbf16ps).
        (32.0 / dot.max(1e-9)) / (16.0 / fma.max(1e-9))
    }

    struct Fma;

    impl SimdOp for Fma {
        type Output = f32;

        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> f32 {
            let (a, b) = (s.splat(black_box(1.000_000_1)), s.splat(black_box(1e-9)));
            let mut acc = [s.splat(0.5); CHAINS];
            for _ in 0..ITERS {
                for c in &mut acc {
                    *c = s.fma(*c, a, b);
                }
            }
            let t = acc.into_iter().fold(s.zero(), |t, c| s.add(t, c));
            s.reduce_sum(t)
        }
    }

    struct Dot;

    impl Bf16Op for Dot {
        type Output = f32;

        #[inline(always)]
        fn run(self, tok: Avx512Bf16) -> f32 {
            let s = tok.avx512();
            let a = tok.splat_pair(black_box(0x3f80_3f80)); // (1.0, 1.0)
            let b = tok.splat_pair(black_box(0x2f80_2f80)); // (2^-32, 2^-32)
            let mut acc = [s.zero(); CHAINS];
            for _ in 0..ITERS {
                for c in &mut acc {
                    *c = tok.dot_pairs(*c, a, b);
                }
            }
            let t = acc.into_iter().fold(s.zero(), |t, c| s.add(t, c));
            s.reduce_sum(t)
        }
    }
}
