//! The tensor-core GEMM (`shaders/matmul/matmul_coop*.wgsl`,
//! `kernels/matmul.md`) against the f64 reference: every subgroup grid,
//! staged and presplit, at its edges, the automatic choice, non-finite and
//! out-of-range inputs, the start-up self-check, and the errors where it
//! cannot run. Tolerance: `testing::tolerance::GPU_MATMUL`, plus the bound
//! of `matmul_wgpu_coop_edges`. Skips without an adapter that has
//! cooperative matrices unless `LFM_REQUIRE_COOP=1` (`.ci/lavapipe-coop`
//! sets it). The tensor-core attention: `wgpu_coop_attention.rs`.
#![cfg(feature = "wgpu")]

mod matmul_cases;
mod wgpu_common;

use half::{bf16, f16};
use matmul_cases::{BASE, Case, DTYPES, Worst, run};
use tensor::wgpu::matmul::coop::{
    COOP_GRIDS, COOP_MIN_M, CoopGrid, coop_applies, coop_gemm, self_check,
};
use tensor::wgpu::matmul::{GEMM_SMALL, coop_presplit_with, coop_with, gemm_with};
use tensor::wgpu::{WgpuBackend, WgpuOptions, gpu_or_skip, gpu_with_or_skip};
use tensor::{Backend, DType, HostData, Shape, op};
use wgpu_common::coop_or_skip;

/// The tensor-core GEMM on every subgroup grid, staged and presplit, at
/// its edges: m and n at the tile ±1 (and m = 1), k = 1, k below, at and
/// above the k-step, k over several steps with a tail, odd k (rows starting
/// mid-word); bf16 and f16 weights, with and without bias, odd weight
/// offsets. Besides the shared matmul tolerance, the worst error relative
/// to Σ|ab| must stay within 2e-6 (measured on lavapipe's 8 × 8 fragments:
/// 2.0e-7 over every grid): x is carried in two f16 halves. With the high half alone
/// (plain f16 inputs) the shared tolerance already fails, at 3.6e-4
/// relative on the first k = 1 case.
#[test]
fn matmul_wgpu_coop_edges() {
    let Some(be) = coop_or_skip() else { return };
    let cm = coop_gemm(&be).expect("coop").cm as usize;
    let mut all = Worst::default();
    let mut ran = Vec::new();
    for presplit in [false, true] {
        for grid in COOP_GRIDS {
            let tm = (grid.frag_m * grid.sgm) as usize * cm;
            let tn = (grid.frag_n * grid.sgn) as usize * cm;
            let bk = 2 * cm;
            let mut worst = Worst::default();
            let mut i = 0;
            let case = |m, n, k, dtype, bias, w_off| Case {
                m,
                n,
                k,
                dtype,
                bias,
                w_off,
                coop: Some(grid),
                presplit,
                ..BASE
            };
            for &m in &[1, 2, tm - 1, tm, tm + 1] {
                for &n in &[1, tn - 1, tn, tn + 1] {
                    for &k in &[1, bk - 1, bk, bk + 1, 3 * bk + 5] {
                        for dtype in [DType::BF16, DType::F16] {
                            i += 1;
                            worst.add(run(&be, case(m, n, k, dtype, i % 2 == 0, i % 3)));
                        }
                    }
                }
            }
            // Several tiles both ways and a long k.
            for dtype in [DType::BF16, DType::F16] {
                worst.add(run(&be, case(2 * tm + 3, 3 * tn - 1, 517, dtype, true, 0)));
            }
            let name = if presplit { "presplit " } else { "" };
            worst.report(&format!("matmul_wgpu_coop_edges {name}{grid:?}"), &be);
            all.add(worst.0);
            ran.push((grid, presplit));
        }
    }
    assert!(
        all.0.max_rel <= 2e-6,
        "worst |x-r|/Σ|ab| = {:e}: x lost its low f16 half?",
        all.0.max_rel
    );
    println!("grids run (grid, presplit): {ran:?}");
}

/// The automatic choice takes the tensor-core GEMM from COOP_MIN_M rows on,
/// for bf16 and f16 weights only (f32 weights stay on the f32 kernel),
/// staged by default and presplit on a backend with `coop_presplit` (whose
/// start-up self-check ran the presplit GEMM), and the results match the
/// reference on model-like shapes, both ways.
#[test]
fn matmul_wgpu_coop_choice() {
    let Some(staged) = coop_or_skip() else { return };
    choice(staged, false);
    let presplit = gpu_with_or_skip(WgpuOptions {
        coop_presplit: true,
        ..tensor::testing::env::wgpu_options()
    })
    .expect("the adapter opened once already");
    choice(presplit, true);
}

/// [`matmul_wgpu_coop_choice`] on `be` (cheap to clone: the device is
/// shared), whose options make the tensor-core GEMM staged or `presplit`.
fn choice(be: WgpuBackend, presplit: bool) {
    assert!(coop_applies(&be, COOP_MIN_M, DType::BF16).is_some());
    assert!(coop_applies(&be, COOP_MIN_M, DType::F16).is_some());
    assert!(coop_applies(&be, COOP_MIN_M - 1, DType::BF16).is_none());
    assert!(coop_applies(&be, 1024, DType::F32).is_none());
    let mut worst = Worst::default();
    for (m, n, k) in [(COOP_MIN_M, 300, 257), (256, 192, 768), (130, 97, 300)] {
        for dtype in DTYPES {
            worst.add(run(
                &be,
                Case {
                    m,
                    n,
                    k,
                    dtype,
                    bias: true,
                    ..BASE
                },
            ));
        }
    }
    worst.report("matmul_wgpu_coop_choice", &be);
    // The kernel that ran, per weight dtype and m, from the profiler: the
    // staged kernel, or the presplit one after its first pass.
    let prof = be.clone().with_profiling();
    let c = coop_gemm(&be).expect("coop");
    assert_eq!(c.presplit, presplit, "the options decide the default");
    let cm = c.cm;
    let coop = |w: &str| -> Vec<String> {
        if presplit {
            vec![
                format!("coop{cm}_split_x_f32_f16"),
                format!("matmul_coop{cm}_presplit_{w}_f32"),
            ]
        } else {
            vec![format!("matmul_coop{cm}_{w}_f32")]
        }
    };
    for (m, dtype, want) in [
        (COOP_MIN_M, DType::BF16, coop("bf16")),
        (COOP_MIN_M, DType::F16, coop("f16")),
        (
            COOP_MIN_M - 1,
            DType::BF16,
            vec!["matmul_bf16_f32".to_string()],
        ),
        (COOP_MIN_M, DType::F32, vec!["matmul_f32_f32".to_string()]),
    ] {
        let x = prof.zeros(DType::F32, Shape::from([m, 16])).expect("x");
        let w = prof.zeros(dtype, Shape::from([8, 16])).expect("w");
        let mut y = prof.zeros(DType::F32, Shape::from([m, 8])).expect("y");
        prof.matmul(op::Matmul {
            x: &x,
            w: &w,
            bias: None,
            out: &mut y,
        })
        .expect("matmul");
        prof.sync().expect("sync");
        let mut ops: Vec<String> = prof.profile().iter().map(|o| o.op.to_string()).collect();
        ops.sort();
        assert_eq!(ops, want, "m = {m}, {dtype} weights");
    }
}

/// Non-finite inputs and values f16 cannot carry make the outputs they
/// feed non-finite (never a silently wrong finite number); other outputs
/// are untouched. Staged and presplit (whose halves go through an f16
/// storage buffer, not workgroup memory).
#[test]
fn matmul_wgpu_coop_non_finite_and_out_of_range() {
    let Some(be) = coop_or_skip() else { return };
    let (m, n, k) = (COOP_MIN_M + 1, 20, 33);
    for bad in [f32::NAN, f32::INFINITY, 1e6, -70000.0] {
        let mut x = vec![0.25f32; m * k];
        x[k / 2] = bad; // row 0 only
        let w = vec![bf16::from_f32(0.5); n * k];
        let xt = be
            .upload(HostData::f32(&x), Shape::from([m, k]))
            .expect("x");
        let wt = be
            .upload(HostData::bf16(&w), Shape::from([n, k]))
            .expect("w");
        for presplit in [false, true] {
            let mut y = be.zeros(DType::F32, Shape::from([m, n])).expect("y");
            let op = op::Matmul {
                x: &xt,
                w: &wt,
                bias: None,
                out: &mut y,
            };
            match presplit {
                true => coop_presplit_with(&be, op, COOP_GRIDS[0]),
                false => coop_with(&be, op, COOP_GRIDS[0]),
            }
            .expect("matmul");
            let y = be.download_f32(&y).expect("download");
            assert!(
                y[..n].iter().all(|v| !v.is_finite()),
                "x = {bad} (presplit {presplit}): row 0 must be non-finite, got {:?}",
                &y[..4]
            );
            let want = 0.25 * 0.5 * k as f32;
            assert!(
                y[n..].iter().all(|&v| v == want),
                "x = {bad} (presplit {presplit}): other rows stay {want}"
            );
        }
    }
}

/// Where the adapter has no cooperative matrices, forcing the tensor-core
/// GEMM is an error (not a panic), and so are f32 weights anywhere.
#[test]
fn matmul_wgpu_coop_refused_where_it_cannot_run() {
    let Some(be) = gpu_or_skip() else { return };
    let x = be
        .upload(HostData::f32(&[1.0; 2 * 8]), Shape::from([2, 8]))
        .expect("x");
    let mut y = be.zeros(DType::F32, Shape::from([2, 3])).expect("y");
    let w32 = be
        .upload(HostData::f32(&[1.0; 3 * 8]), Shape::from([3, 8]))
        .expect("w");
    assert!(
        coop_with(
            &be,
            op::Matmul {
                x: &x,
                w: &w32,
                bias: None,
                out: &mut y
            },
            COOP_GRIDS[0]
        )
        .is_err()
    );
    let wb = be
        .upload(HostData::bf16(&[bf16::ONE; 3 * 8]), Shape::from([3, 8]))
        .expect("w");
    let r = coop_with(
        &be,
        op::Matmul {
            x: &x,
            w: &wb,
            bias: None,
            out: &mut y,
        },
        COOP_GRIDS[0],
    );
    assert_eq!(r.is_ok(), coop_gemm(&be).is_some(), "{r:?}");
    assert!(
        coop_with(
            &be,
            op::Matmul {
                x: &x,
                w: &wb,
                bias: None,
                out: &mut y
            },
            CoopGrid::of(3, 3)
        )
        .is_err()
    );
}

/// The start-up self-check of the tensor-core GEMM passes an exact kernel
/// (the f32 GEMM; the tensor-core GEMM where the adapter has it) and fails
/// one that is off (the bias dropped, or x rounded to f16 as a kernel
/// without x's low half would).
#[test]
fn matmul_wgpu_coop_self_check_tells_exact_from_wrong() {
    let Some(be) = gpu_or_skip() else { return };
    self_check(&be, &|x, w, b, y| {
        gemm_with(
            &be,
            op::Matmul {
                x,
                w,
                bias: Some(b),
                out: y,
            },
            GEMM_SMALL,
        )
    })
    .expect("the f32 GEMM is exact on the check's values");
    let no_bias = self_check(&be, &|x, w, _, y| {
        be.matmul(op::Matmul {
            x,
            w,
            bias: None,
            out: y,
        })
    });
    assert!(no_bias.is_err(), "a kernel without the bias must fail");
    let rounded = self_check(&be, &|x, w, b, y| {
        let host = be.download_f32(x)?;
        let halves: Vec<f32> = host.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
        let xr = be.upload(HostData::f32(&halves), x.shape().clone())?;
        gemm_with(
            &be,
            op::Matmul {
                x: &xr,
                w,
                bias: Some(b),
                out: y,
            },
            GEMM_SMALL,
        )
    });
    let e = rounded.expect_err("x rounded to f16 must fail").to_string();
    assert!(e.contains("self-check"), "{e}");
    if let Some(c) = coop_gemm(&be) {
        let grid = c.grid;
        self_check(&be, &|x, w, b, y| {
            coop_with(
                &be,
                op::Matmul {
                    x,
                    w,
                    bias: Some(b),
                    out: y,
                },
                grid,
            )
        })
        .expect("the tensor-core GEMM passes");
        self_check(&be, &|x, w, b, y| {
            coop_presplit_with(
                &be,
                op::Matmul {
                    x,
                    w,
                    bias: Some(b),
                    out: y,
                },
                grid,
            )
        })
        .expect("the presplit tensor-core GEMM passes");
    }
}
