//! The machine's own limits, measured rather than looked up: FMA throughput
//! per ISA and thread count, and memory read bandwidth. Benchmarks report
//! their results as a percentage of these.

use std::hint::black_box;
use std::time::Instant;

use rayon::prelude::*;
use tensor::cpu::IsaToken;
use tensor::cpu::dispatch::{Avx512Bf16, SimdOp};
use tensor::cpu::simd::Simd;

/// Independent FMA chains: more than latency × pipes on current cores.
const CHAINS: usize = 12;

#[inline(always)]
fn fma_body<S: Simd>(s: S, iters: usize, seed: f32) -> f32 {
    let a = s.splat(black_box(1.000_000_1));
    let b = s.splat(black_box(1e-9));
    let mut acc = [s.splat(seed); CHAINS];
    for _ in 0..iters {
        for c in &mut acc {
            *c = s.fma(*c, a, b);
        }
    }
    let mut t = s.zero();
    for c in acc {
        t = s.add(t, c);
    }
    s.reduce_sum(t)
}

/// The FMA loop on one tier: flops performed.
struct Fma {
    iters: usize,
}

impl SimdOp for Fma {
    type Output = f64;

    #[inline(always)]
    fn run<S: Simd>(self, s: S) -> f64 {
        black_box(fma_body(s, self.iters, 0.5));
        (self.iters * CHAINS * S::LANES * 2) as f64
    }
}

/// The `vdpbf16ps` loop: flops performed.
#[cfg(target_arch = "x86_64")]
struct Bf16Dot {
    iters: usize,
}

#[cfg(target_arch = "x86_64")]
impl tensor::cpu::dispatch::Bf16Op for Bf16Dot {
    type Output = f64;

    #[inline(always)]
    fn run(self, tok: Avx512Bf16) -> f64 {
        let s = tok.avx512();
        let a = tok.splat_pair(black_box(0x3f80_3f80)); // (1.0, 1.0)
        let b = tok.splat_pair(black_box(0x2f80_2f80)); // (2^-32, 2^-32)
        let mut acc = [s.zero(); CHAINS];
        for _ in 0..self.iters {
            for c in &mut acc {
                *c = tok.dot_pairs(*c, a, b);
            }
        }
        let mut t = s.zero();
        for c in acc {
            t = s.add(t, c);
        }
        black_box(s.reduce_sum(t));
        // 16 lanes × 2 products × 2 flops per instruction.
        (self.iters * CHAINS * 64) as f64
    }
}

/// Best of 5 runs of `run(iters)` (flops performed) on each of `threads`
/// threads at once, in GFLOPS.
fn best_gflops(threads: usize, run: impl Fn(usize) -> f64 + Sync) -> f64 {
    let iters = 20_000_000 / threads.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let mut best = 0.0f64;
    for _ in 0..5 {
        let t = Instant::now();
        let flops: f64 = pool.install(|| (0..threads).into_par_iter().map(|_| run(iters)).sum());
        best = best.max(flops / t.elapsed().as_secs_f64() / 1e9);
    }
    best
}

/// Peak `vdpbf16ps` GFLOPS (AVX512-BF16) on `threads` threads (best of 5
/// runs; a multiply-add counts 2 flops, as for [`peak_gflops`]). The token
/// only exists on x86-64; elsewhere this is never called with one.
pub fn bf16dot_peak_gflops(tok: Avx512Bf16, threads: usize) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        best_gflops(threads, |iters| tok.dispatch(Bf16Dot { iters }))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (tok, threads);
        0.0
    }
}

/// Peak f32 FMA GFLOPS of `isa` on `threads` threads (best of 5 runs).
pub fn peak_gflops(isa: IsaToken, threads: usize) -> f64 {
    best_gflops(threads, |iters| isa.dispatch(Fma { iters }))
}

#[inline(always)]
fn sum_body<S: Simd>(s: S, v: &[f32]) -> f32 {
    let l = S::LANES;
    let mut acc = [s.zero(); 8];
    let chunks = v.len() / (8 * l);
    let p = v.as_ptr();
    for c in 0..chunks {
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: (c·8 + j + 1)·l ≤ chunks·8·l ≤ v.len().
            let x = unsafe { s.load(p.wrapping_add((c * 8 + j) * l)) };
            *a = s.add(*a, x);
        }
    }
    let mut t = s.zero();
    for a in acc {
        t = s.add(t, a);
    }
    s.reduce_sum(t) + v[chunks * 8 * l..].iter().sum::<f32>()
}

/// A streaming read of a slice with the tier's vector loads.
struct Sum<'a>(&'a [f32]);

impl SimdOp for Sum<'_> {
    type Output = f32;

    #[inline(always)]
    fn run<S: Simd>(self, s: S) -> f32 {
        sum_body(s, self.0)
    }
}

/// A streaming read of `v` with the widest vector loads the host has.
fn sum(isa: IsaToken, v: &[f32]) -> f32 {
    isa.dispatch(Sum(v))
}

/// Memory read bandwidth in GB/s on `threads` threads: a streaming sum with
/// the best ISA's vector loads over a buffer 16× larger than a 32 MiB L3.
/// Median of 7 passes, like the kernel timings it is compared with (the
/// bandwidth varies run to run: `benches/README.md` § CPU tuning).
pub fn mem_read_gbps(threads: usize) -> f64 {
    let isa = IsaToken::new(tensor::cpu::Isa::best()).expect("the best tier is available");
    let len: usize = 512 << 20 >> 2; // 512 MiB of f32
    let buf: Vec<f32> = (0..len).map(|i| (i % 7) as f32).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let chunk = len.div_ceil(threads);
    let mut rates = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let s: f32 = pool.install(|| buf.par_chunks(chunk).map(|c| sum(isa, c)).sum());
        black_box(s);
        rates.push((len * 4) as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}
