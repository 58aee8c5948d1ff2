//! The block-format matmul (`cpu/matmul/qblock.rs`, `kernels/matmul.md`
//! § Block formats) on every CPU tier against the f64 reference, for each
//! of Q8_0, Q4_0, Q4_K and Q6_K, on edge shapes and 1–3 threads.
//!
//! Weights are random block bytes (every bit pattern a file may hold: Q8_0's
//! −128, every six-bit scale and min), with sane f16 scales. The GEMV
//! (m = 1) quantizes `x` to int8 per block; its reference is the f64 dot
//! product of the decoded weights with the decoded quantized `x` (the
//! kernel's own error, `MATMUL`), and a second check bounds the error the
//! quantization of `x` adds against the unquantized product. Up to
//! `matmul::GEMV_ROWS` rows (a batched decode step) run a GEMV a row, with
//! the GEMV's reference. The GEMM (more rows) keeps `x` in f32 (but for
//! Q8_0 / Q4_0 interleaved by eight rows, whose GEMM is integer as the
//! GEMV, with the GEMV's reference):
//! its reference is decoded weights · `x`; where
//! it runs on bf16 panels (`qblock::bf16_prefill`, or asked for through
//! `qblock::matmul_with`: both bodies run wherever the CPU has them), both
//! rounded to bf16. On the neon tier of a CPU with the dot-product
//! extension the GEMV runs both its SDOT bodies and (asked for through
//! `qblock::matmul_with`) the `smull` ones.

mod common;

use common::pool;
use tensor::cpu::dispatch::Avx512Bf16;
use tensor::cpu::matmul::qblock::{self, BlockData, BlockRef};
use tensor::cpu::matmul::{self, MatmulArgs, WeightRef, bf16dot, reference};
use tensor::cpu::simd::qdot::{self, XBlock, XBlockK};
use tensor::cpu::{Isa, IsaToken};
use tensor::testing::expected_isas_present;
use tensor::testing::rng::Rng;
use tensor::testing::tolerance::MATMUL;
use tensor::{DType, quant};

const FORMATS: [DType; 4] = [DType::Q8_0, DType::Q4_0, DType::Q4K, DType::Q6K];

#[derive(Clone, Copy, Debug)]
struct Case {
    isa: Isa,
    dtype: DType,
    m: usize,
    n: usize,
    k: usize,
    bias: bool,
    threads: usize,
    /// Ask for the GEMM on bf16 panels (`qblock::matmul_with`) instead of
    /// letting `qblock::bf16_prefill` choose.
    force_bf16: bool,
    /// Allow the GEMV's SDOT bodies (`qblock::neon_dotprod`, the default);
    /// `false` asks for the neon tier's others (`qblock::matmul_with`).
    dotprod: bool,
    /// Rows interleaved by eight
    /// (`BlockData::interleaved`, what the x86 backends hold when `n` is a
    /// multiple of 8).
    x8: bool,
}

/// Whether the GEMM's bf16 panels can run on tier `isa` here (they need
/// the avx512 tier of a CPU with AVX512-BF16).
fn bf16_possible(isa: Isa) -> bool {
    isa == Isa::Avx512 && Avx512Bf16::try_new().is_some()
}

/// The decoded quantized `x` of a GEMV, as the kernel sees it.
fn quantized_x(dtype: DType, x: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    if matches!(dtype, DType::Q8_0 | DType::Q4_0) {
        let mut q = vec![XBlock::default(); x.len() / 32];
        qdot::quantize_x(x, &mut q);
        for (b, o) in q.iter().zip(out.chunks_exact_mut(32)) {
            for (o, &v) in o.iter_mut().zip(&b.qs) {
                *o = b.d * v as f32;
            }
        }
    } else {
        let mut q = vec![XBlockK::default(); x.len() / 256];
        qdot::quantize_x_k(x, &mut q);
        for (b, o) in q.iter().zip(out.chunks_exact_mut(256)) {
            for (o, &v) in o.iter_mut().zip(&b.qs) {
                *o = b.d * v as f32;
            }
        }
    }
    out
}

/// Runs case `c`; returns (worst share of the tolerance used, the worst
/// error the quantized `x` adds relative to `Σ|w·x|`, GEMV only).
fn run(c: Case, pools: &[Option<rayon::ThreadPool>]) -> (f64, Option<f64>) {
    let tok = IsaToken::new(c.isa).unwrap();
    let mut rng = Rng::for_case("qmatmul", &format!("{c:?}"));
    let blocks = c.n * c.k / c.dtype.block_elems();
    let bytes = rng.blocks(c.dtype, blocks);
    let mut data = BlockData::from_bytes(c.dtype, &bytes).unwrap();
    if c.x8 {
        data = data.interleaved(c.n);
        assert!(data.as_ref().is_x8(), "{c:?}: not interleaved");
    }
    let wf = quant::dequantize_vec(c.dtype, &bytes).unwrap();
    let x = rng.vec(c.m * c.k, 1.0);
    let bias = c.bias.then(|| rng.vec(c.n, 0.5));
    let args = MatmulArgs {
        x: &x,
        w: WeightRef::Blocks(data.as_ref()),
        bias: bias.as_deref(),
        m: c.m,
        n: c.n,
        k: c.k,
    };
    let mut y = vec![f32::NAN; c.m * c.n];
    let pool = pools[c.threads - 1].as_ref();
    if c.force_bf16 || !c.dotprod {
        let w = data.as_ref();
        qblock::matmul_with(tok, pool, &args, w, c.force_bf16, c.dotprod, &mut y);
    } else {
        matmul::matmul(tok, pool, &args, &mut y);
    }
    // The GEMM's bf16 variant rounds x and the decoded weights to bf16.
    // Interleaved Q8_0 / Q4_0 run an integer GEMM on x quantized as the
    // GEMV's, whatever was asked (interleaved Q6_K decodes to panels).
    let int_gemm = c.x8 && matches!(c.dtype, DType::Q8_0 | DType::Q4_0);
    let gemv_rows = c.m <= matmul::GEMV_ROWS;
    let bf16 = !gemv_rows
        && !int_gemm
        && if c.force_bf16 {
            bf16_possible(c.isa)
        } else {
            qblock::bf16_prefill(c.isa, c.dtype)
        };
    let round = |v: &[f32]| v.iter().map(|&e| bf16dot::round(e)).collect::<Vec<_>>();
    let (xk, wk) = match (c.m, bf16) {
        _ if gemv_rows || int_gemm => (quantized_x(c.dtype, &x), wf.clone()),
        (_, true) => (round(&x), round(&wf)),
        _ => (x.clone(), wf.clone()),
    };
    let (want, mag) = reference::matmul(&xk, &wk, bias.as_deref(), c.m, c.n, c.k);
    let st = MATMUL.check(&y, &want, &mag).unwrap_or_else(|e| {
        panic!(
            "{c:?}: index {}: got {}, want {}, bound {:e}",
            e.index, e.got, e.want, e.bound
        )
    });
    let budget = match MATMUL {
        tensor::testing::tolerance::Tolerance::Dot { rel, .. } => st.max_rel / rel,
        _ => unreachable!(),
    };
    let xerr = (gemv_rows || int_gemm).then(|| {
        let (exact, mag) = reference::matmul(&x, &wf, bias.as_deref(), c.m, c.n, c.k);
        (y.iter().zip(&exact).zip(&mag))
            .map(|((a, b), m)| (*a as f64 - *b as f64).abs() / m.max(1e-30))
            .fold(0.0, f64::max)
    });
    (budget, xerr)
}

fn sweep(isa: Isa) {
    let tok = IsaToken::new(isa).unwrap();
    let g = matmul::geometry(tok);
    let pools: Vec<_> = (1..=3).map(pool).collect();
    let (mut worst, mut worst_x) = (0.0f64, 0.0f64);
    // GEMV cases run with and without SDOT (where this CPU has it).
    let (mut sdot_runs, mut no_sdot_runs) = (0usize, 0usize);
    let sdot = qblock::neon_dotprod(isa);
    if isa == Isa::Neon {
        assert_eq!(sdot, tensor::testing::expect_neon_dotprod(), "neon_dotprod");
    }
    for dtype in FORMATS {
        let qk = dtype.block_elems();
        let mut cases = Vec::new();
        for &k in &[qk, 2 * qk, 3 * qk, 9 * qk] {
            for &n in &[1, 2, 7, 8, 24, g.nr - 1, g.nr + 1, 65, 72] {
                for &m in &[1, 2, g.mr + 1, matmul::GEMV_ROWS + 1] {
                    cases.push((m, n, k, 1));
                }
            }
        }
        // Chunk edges of the GEMM's decoded panels, row split and the
        // GEMV's thread split.
        for threads in 1..=3 {
            cases.push((1, 300, 4 * qk, threads));
            cases.push((1, 296, 4 * qk, threads));
            cases.push((3, 300, 2 * qk, threads));
            cases.push((40, 150, qk, threads));
        }
        // The interleaved GEMM's chunks of x rows (≤ 256 KiB of blocks).
        if qk == 32 {
            cases.push((40, 16, 300 * qk, 2));
        }
        // The GEMM's other body too, where this CPU can run both; every
        // format row-major and, where n is a multiple of 8, interleaved.
        let both = if bf16_possible(isa) { 2 } else { 1 };
        // Likewise the GEMV with and without SDOT on row-major weights.
        let cases = cases.into_iter().flat_map(|(m, n, k, threads)| {
            (0..both).flat_map(move |f| {
                (0..2)
                    .filter(move |&i| i == 0 || n % 8 == 0)
                    .flat_map(move |i| {
                        let rows = m <= matmul::GEMV_ROWS;
                        let dots = if sdot && rows && i == 0 { 2 } else { 1 };
                        (0..dots).map(move |d| (m, n, k, threads, f == 1 && !rows, i == 1, d == 0))
                    })
            })
        });
        for (i, (m, n, k, threads, force_bf16, x8, dotprod)) in cases.enumerate() {
            let c = Case {
                isa,
                dtype,
                m,
                n,
                k,
                bias: i % 2 == 0,
                threads,
                force_bf16,
                dotprod,
                x8,
            };
            if m == 1 && !x8 && isa == Isa::Neon {
                if dotprod && sdot {
                    sdot_runs += 1;
                } else {
                    no_sdot_runs += 1;
                }
            }
            let (b, xe) = run(c, &pools);
            worst = worst.max(b);
            if let Some(e) = xe {
                // Each int8 x is off by at most half a step (amax/254 of
                // its block); against Σ|w·x| that stays well under 1%
                // (measured: ≤ 0.37% on every tier); 1% flags a broken x quantizer.
                assert!(e < 0.01, "{c:?}: quantized x adds {e:.4} of Σ|w·x|");
                worst_x = worst_x.max(e);
            }
        }
    }
    // On an AVX512-VNNI CPU the avx512 tier's Q8_0/Q4_0 GEMV is the
    // `vpdpbusd` body; the `vpmaddubsw` one is the avx2 tier's.
    let vnni = if qblock::vnni_gemv(isa, DType::Q4_0) {
        " (Q8_0/Q4_0 GEMV on vpdpbusd)"
    } else {
        ""
    };
    let bf16 = match Avx512Bf16::try_new().filter(|_| bf16_possible(isa)) {
        Some(tok) => format!(
            " (GEMM on f32 and bf16 panels; {} chosen here, vdpbf16ps/FMA rate {:.2})",
            if qblock::bf16_prefill(isa, DType::Q4_0) {
                "bf16"
            } else {
                "f32"
            },
            tensor::cpu::matmul::probe::bf16_over_fma(tok)
        ),
        None => String::new(),
    };
    let neon = if isa == Isa::Neon {
        format!(" (row-major GEMV: {sdot_runs} cases on SDOT, {no_sdot_runs} on smull/sadalp)")
    } else {
        String::new()
    };
    println!(
        "{isa}{vnni}{bf16}{neon}: worst {worst:.3} of the MATMUL budget; quantized x adds ≤ {worst_x:.4} of Σ|w·x|"
    );
}

#[test]
fn block_matmul_matches_reference_on_every_tier() {
    expected_isas_present();
    for isa in Isa::ALL {
        if isa.is_available() {
            sweep(isa);
        } else {
            println!("skip: {isa} not available on this host");
        }
    }
}

#[test]
fn block_refs_report_their_size() {
    let bytes = vec![0u8; 3 * 18];
    let d = BlockData::from_bytes(DType::Q4_0, &bytes).unwrap();
    assert_eq!(d.as_ref().elems(), 96);
    assert!(matches!(d.as_ref(), BlockRef::Q4_0(b) if b.len() == 3));
    assert!(BlockData::from_bytes(DType::Q4_0, &bytes[1..]).is_none());
    assert!(BlockData::from_bytes(DType::BF16, &bytes).is_none());
}

/// Interleaving by eight rows keeps every block: each row decodes as
/// before, only weights with `n` a multiple of 8 change layout.
#[test]
fn interleaved_blocks_decode_to_the_same_rows() {
    let mut rng = Rng::for_case("qmatmul", "interleave");
    for dtype in FORMATS {
        for (n, k) in [(8, 256), (16, 512), (7, 256), (24, 256)] {
            let bytes = rng.blocks(dtype, n * k / dtype.block_elems());
            let plain = BlockData::from_bytes(dtype, &bytes).unwrap();
            let x8 = plain.clone().interleaved(n);
            let changes = n % 8 == 0;
            assert_eq!(x8.as_ref().is_x8(), changes, "{dtype} n={n}");
            assert_eq!(x8.as_ref().dtype(), dtype);
            assert_eq!(x8.as_ref().elems(), n * k);
            // Same bytes, but Q4_K's scales and mins unpacked to a byte
            // each: 1184 bytes per eight super-blocks instead of 1152.
            let want = if changes && dtype == DType::Q4K {
                bytes.len() / 1152 * 1184
            } else {
                bytes.len()
            };
            assert_eq!(x8.as_ref().bytes().len(), want, "{dtype} n={n}");
            let (mut a, mut b) = (vec![0.0; k], vec![0.0; k]);
            for j in 0..n {
                plain.as_ref().dequantize_row(j, k, &mut a);
                x8.as_ref().dequantize_row(j, k, &mut b);
                assert_eq!(a, b, "{dtype} n={n} row {j}");
            }
        }
    }
}
