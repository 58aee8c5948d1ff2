//! A matmul of a few rows of `x` (up to `matmul::GEMV_ROWS`: the decode
//! step of a batch of sequences) gives every row bit for bit what a GEMV of
//! that row alone gives, on every tier, panel dtype, block format (row-major
//! and interleaved), epilogue and thread count: batching sequences must not
//! change any sequence's tokens. The values themselves are
//! `cpu_matmul.rs`'s and `cpu_qmatmul.rs`'s business (the references).

mod common;

use common::pool;
use half::{bf16, f16};
use tensor::DType;
use tensor::cpu::matmul::qblock::BlockData;
use tensor::cpu::matmul::{self, MatmulArgs, WeightRef, panels, quant};
use tensor::cpu::{Isa, IsaToken};
use tensor::dtype::Element;
use tensor::testing::{expected_isas_present, rng::Rng};

/// `y[m, n]` of `x[m, k]` against `wf` `[n, k]` packed as `dtype` panels.
fn product(
    tok: IsaToken,
    pool: Option<&rayon::ThreadPool>,
    dtype: DType,
    (x, wf, bias): (&[f32], &[f32], Option<&[f32]>),
    (m, n, k): (usize, usize, usize),
) -> Vec<f32> {
    let layout = matmul::geometry(tok).panels();
    let mut y = vec![f32::NAN; m * n];
    let go = |w: WeightRef<'_>, y: &mut [f32]| {
        let args = MatmulArgs {
            x,
            w,
            bias,
            m,
            n,
            k,
        };
        matmul::matmul(tok, pool, &args, y);
    };
    fn pack<E: Element>(wf: &[f32], n: usize, k: usize, l: panels::PanelLayout) -> Vec<E> {
        let w: Vec<E> = wf.iter().map(|&v| E::from_f32(v)).collect();
        panels::pack(&w, n, k, l)
    }
    match dtype {
        DType::F32 => go(WeightRef::F32(&pack::<f32>(wf, n, k, layout)), &mut y),
        DType::BF16 => go(WeightRef::BF16(&pack::<bf16>(wf, n, k, layout)), &mut y),
        DType::F16 => go(WeightRef::F16(&pack::<f16>(wf, n, k, layout)), &mut y),
        DType::I8 => {
            let rows = quant::quantize_rows(wf, n, k).expect("finite weights");
            let q = panels::pack(&rows.q, n, k, layout);
            go(
                WeightRef::I8 {
                    q: &q,
                    scale: &rows.scale,
                },
                &mut y,
            )
        }
        other => unreachable!("{other:?}"),
    }
    y
}

/// `run(x, m)` (the `[m, n]` product of `m` rows of `x`) on all rows of
/// `x` against each row run alone: bit for bit.
fn rows_match(
    what: &str,
    x: &[f32],
    (m, n, k): (usize, usize, usize),
    run: impl Fn(&[f32], usize) -> Vec<f32>,
) {
    let all = run(x, m);
    for i in 0..m {
        let one = run(&x[i * k..(i + 1) * k], 1);
        let got = &all[i * n..(i + 1) * n];
        let same = got
            .iter()
            .zip(&one)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{what}: row {i} differs from its GEMV");
    }
}

fn rows_equal_their_gemv(isa: Isa) -> usize {
    let tok = IsaToken::new(isa).expect("caller checked availability");
    let nr = matmul::geometry(tok).nr;
    let pools: Vec<_> = [1, 2].into_iter().map(pool).collect();
    let mut cases = 0;
    for dtype in [DType::F32, DType::BF16, DType::F16, DType::I8] {
        for &n in &[1, nr - 1, nr, nr + 1, 3 * nr + 5, 600] {
            // Past one slice of the panel (`gemv.rs`: ~8 KiB) for every dtype.
            for &k in &[1, 2, 3, 64, 129, 515, 1031] {
                for m in 2..=matmul::GEMV_ROWS {
                    for (bias_on, p) in [(false, 0), (true, 1)] {
                        let what = format!("{isa} {dtype:?} m={m} n={n} k={k} bias={bias_on}");
                        let mut rng = Rng::for_case("matmul_rows", &what);
                        let x = rng.vec(m * k, 1.0);
                        let wf = rng.vec(n * k, 0.5);
                        let bias = bias_on.then(|| rng.vec(n, 0.5));
                        let pool = pools[p].as_ref();
                        let b = bias.as_deref();
                        rows_match(&what, &x, (m, n, k), |x, m| {
                            product(tok, pool, dtype, (x, &wf, b), (m, n, k))
                        });
                        cases += 1;
                    }
                }
            }
        }
    }
    cases
}

/// The same for block weights: every format, row-major and (n a multiple
/// of 8) interleaved by eight as the x86 tiers hold them.
fn block_rows_equal_their_gemv(isa: Isa) -> usize {
    let tok = IsaToken::new(isa).expect("caller checked availability");
    let pools: Vec<_> = [1, 2].into_iter().map(pool).collect();
    let mut cases = 0;
    for dtype in [DType::Q8_0, DType::Q4_0, DType::Q4K, DType::Q6K] {
        let qk = dtype.block_elems();
        for &n in &[1, 8, 24, 72, 300] {
            for &k in &[qk, 3 * qk, 9 * qk] {
                for x8 in [false, true].into_iter().filter(|&i| !i || n % 8 == 0) {
                    for m in 2..=matmul::GEMV_ROWS {
                        let what = format!("{isa} {dtype} x8={x8} m={m} n={n} k={k}");
                        let mut rng = Rng::for_case("matmul_rows_blocks", &what);
                        let bytes = rng.blocks(dtype, n * k / qk);
                        let mut data = BlockData::from_bytes(dtype, &bytes).expect("blocks");
                        if x8 {
                            data = data.interleaved(n);
                        }
                        let x = rng.vec(m * k, 1.0);
                        let bias = rng.vec(n, 0.5);
                        let pool = pools[m % 2].as_ref();
                        let run = |x: &[f32], m: usize| {
                            let mut y = vec![f32::NAN; m * n];
                            let args = MatmulArgs {
                                x,
                                w: WeightRef::Blocks(data.as_ref()),
                                bias: Some(&bias),
                                m,
                                n,
                                k,
                            };
                            matmul::matmul(tok, pool, &args, &mut y);
                            y
                        };
                        rows_match(&what, &x, (m, n, k), run);
                        cases += 1;
                    }
                }
            }
        }
    }
    cases
}

macro_rules! isa_tests {
    ($($name:ident => $isa:expr;)*) => {$(
        #[test]
        fn $name() {
            expected_isas_present();
            if !$isa.is_available() {
                println!("skip: {} not available on this host", $isa);
                return;
            }
            let cases = rows_equal_their_gemv($isa);
            let blocks = block_rows_equal_their_gemv($isa);
            println!(
                "MATMUL_ROWS {}: {cases} panel and {blocks} block cases bit-identical to one-row GEMVs",
                $isa
            );
        }
    )*};
}

isa_tests! {
    matmul_rows_scalar => Isa::Scalar;
    matmul_rows_avx2 => Isa::Avx2;
    matmul_rows_avx512 => Isa::Avx512;
    matmul_rows_neon => Isa::Neon;
}
