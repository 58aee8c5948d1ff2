//! `swiglu` over stacked gate | up rows (the LFM2 MLP's w1 | w3 matmul):
//! on the CPU (every ISA this host runs) bit-identical to `silu_mul` of the
//! two halves, and on wgpu (when an adapter exists) bit-identical to the
//! GPU's own `silu_mul` and within `GPU_SILU_MUL` of the f64 reference;
//! rows of width 1, vector width ± 1, odd; wrong shapes are errors.

use tensor::cpu::elementwise::reference;
use tensor::cpu::{CpuBackend, Isa};
use tensor::testing::rng::Rng;
use tensor::testing::tolerance::SILU_MUL;
use tensor::{Backend, DType, HostData, Shape, Tensor, op};

const SHAPES: [(usize, usize); 7] = [
    (1, 1),
    (1, 7),
    (3, 8),
    (2, 15),
    (1, 16),
    (5, 17),
    (17, 4608),
];

/// (gate | up rows, gate, up) for `t` rows of half width `f`.
fn inputs(t: usize, f: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = Rng::for_case("swiglu", &format!("t={t} f={f}"));
    let gu = rng.vec(t * 2 * f, 6.0);
    let (mut gate, mut up) = (Vec::new(), Vec::new());
    for row in gu.chunks_exact(2 * f) {
        gate.extend_from_slice(&row[..f]);
        up.extend_from_slice(&row[f..]);
    }
    (gu, gate, up)
}

/// `swiglu` and `silu_mul` of the halves on `be`.
fn both<B: Backend>(be: &B, t: usize, f: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (gu, gate, up) = inputs(t, f);
    let up_t = |v: &[f32], c: usize| -> Tensor<B> {
        be.upload(HostData::f32(v), Shape::from([t, c]))
            .expect("upload")
    };
    let mut out = be.zeros(DType::F32, Shape::from([t, f])).expect("zeros");
    be.swiglu(op::Swiglu {
        gu: &up_t(&gu, 2 * f),
        out: &mut out,
    })
    .expect("swiglu");
    let mut two = be.zeros(DType::F32, Shape::from([t, f])).expect("zeros");
    be.silu_mul(op::SiluMul {
        gate: &up_t(&gate, f),
        up: &up_t(&up, f),
        out: &mut two,
    })
    .expect("silu_mul");
    (
        be.download_f32(&out).expect("download"),
        be.download_f32(&two).expect("download"),
        reference::silu_mul(&gate, &up),
    )
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn swiglu_cpu_equals_silu_mul_of_the_halves() {
    for isa in Isa::available() {
        let be = CpuBackend::with(isa, 1).expect("cpu");
        for (t, f) in SHAPES {
            let (got, two, want) = both(&be, t, f);
            assert_eq!(bits(&got), bits(&two), "{isa} t={t} f={f}");
            SILU_MUL
                .check(&got, &want, &[])
                .unwrap_or_else(|e| panic!("{isa} t={t} f={f}: {e:?}"));
        }
    }
}

#[test]
fn swiglu_rejects_wrong_shapes() {
    let be = CpuBackend::with(Isa::Scalar, 1).expect("cpu");
    let gu = be.zeros(DType::F32, Shape::from([2, 6])).expect("zeros");
    for dims in [[2, 4], [3, 3], [2, 6]] {
        let mut out = be.zeros(DType::F32, Shape::from(dims)).expect("zeros");
        assert!(
            be.swiglu(op::Swiglu {
                gu: &gu,
                out: &mut out
            })
            .is_err(),
            "{dims:?}"
        );
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn swiglu_wgpu_equals_its_silu_mul() {
    let Some(be) = tensor::wgpu::gpu_or_skip() else {
        return;
    };
    for (t, f) in SHAPES {
        let (got, two, want) = both(&be, t, f);
        assert_eq!(bits(&got), bits(&two), "t={t} f={f}");
        tensor::testing::tolerance::GPU_SILU_MUL
            .check(&got, &want, &[])
            .unwrap_or_else(|e| panic!("t={t} f={f}: {e:?}"));
    }
}

/// `matmul_swiglu` (the stacked w1 | w3 matmul, then swiglu) against the two
/// ops on the same backend: on wgpu with m = 1 and bf16 rows of 8k elements
/// it is one fused GEMV (where the adapter has fixed-size subgroups), whose
/// gate and up dot products are the unfused GEMV's, so the results are
/// equal; other shapes and dtypes take the two-op default. Outputs at f = 1,
/// around a workgroup's 8 outputs, odd f, the model's 4608; k of one vector
/// up to 1032. Measured: equal on lavapipe (0 differing outputs).
#[cfg(feature = "wgpu")]
#[test]
fn matmul_swiglu_wgpu_equals_matmul_then_swiglu() {
    use half::bf16;
    use tensor::wgpu::matmul::{GemvKind, gemv_kind};
    let Some(be) = tensor::wgpu::gpu_or_skip() else {
        return;
    };
    let fused = gemv_kind(&be, 8, DType::BF16) == GemvKind::X8Subgroup;
    println!("{}: fused GEMV + SwiGLU: {fused}", be.describe());
    let mut cases = 0;
    for (m, f, k, dtype) in [
        (1, 1, 8, DType::BF16),
        (1, 7, 64, DType::BF16),
        (1, 8, 1032, DType::BF16),
        (1, 9, 16, DType::BF16),
        (1, 33, 1024, DType::BF16),
        (1, 4608, 1024, DType::BF16),
        (1, 5, 12, DType::BF16),  // k not a multiple of 8: the default
        (1, 5, 16, DType::F32),   // f32 weights: the default
        (3, 17, 64, DType::BF16), // m > 1: GEMM, then swiglu
    ] {
        let mut rng = Rng::for_case("matmul_swiglu", &format!("{m} {f} {k} {dtype}"));
        let x = rng.vec(m * k, 1.0);
        let w = rng.vec(2 * f * k, 0.3);
        let xt = be
            .upload(HostData::f32(&x), Shape::from([m, k]))
            .expect("x");
        let wt = match dtype {
            DType::BF16 => {
                let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
                be.upload(HostData::bf16(&wb), Shape::from([2 * f, k]))
            }
            _ => be.upload(HostData::f32(&w), Shape::from([2 * f, k])),
        }
        .expect("w");
        let mut gu = be.zeros(DType::F32, Shape::from([m, 2 * f])).expect("gu");
        let mut out = be
            .upload(HostData::f32(&vec![f32::NAN; m * f]), Shape::from([m, f]))
            .expect("out");
        be.matmul_swiglu(op::MatmulSwiglu {
            x: &xt,
            w13: &wt,
            gu: &mut gu,
            out: &mut out,
        })
        .expect("matmul_swiglu");
        let mut gu2 = be.zeros(DType::F32, Shape::from([m, 2 * f])).expect("gu");
        let mut two = be.zeros(DType::F32, Shape::from([m, f])).expect("out");
        be.matmul(op::Matmul {
            x: &xt,
            w: &wt,
            bias: None,
            out: &mut gu2,
        })
        .expect("matmul");
        be.swiglu(op::Swiglu {
            gu: &gu2,
            out: &mut two,
        })
        .expect("swiglu");
        let (got, want) = (
            be.download_f32(&out).expect("download"),
            be.download_f32(&two).expect("download"),
        );
        assert_eq!(got, want, "m={m} f={f} k={k} {dtype}");
        cases += 1;
    }
    // The fused kernel is what ran for m = 1: one dispatch, no GEMV or swiglu.
    if fused {
        let prof = be.clone().with_profiling();
        let x = prof.zeros(DType::F32, Shape::from([1, 16])).expect("x");
        let w = prof.zeros(DType::BF16, Shape::from([6, 16])).expect("w");
        let mut gu = prof.zeros(DType::F32, Shape::from([1, 6])).expect("gu");
        let mut out = prof.zeros(DType::F32, Shape::from([1, 3])).expect("out");
        prof.matmul_swiglu(op::MatmulSwiglu {
            x: &x,
            w13: &w,
            gu: &mut gu,
            out: &mut out,
        })
        .expect("fused");
        prof.sync().expect("sync");
        let ops: Vec<(String, u64)> = prof
            .profile()
            .iter()
            .map(|o| (o.op.to_string(), o.calls))
            .collect();
        assert_eq!(
            ops,
            [("gemv_swiglu_bf16x8_sg_f32".to_string(), 1)],
            "{ops:?}"
        );
    }
    // Wrong shapes are errors, fused or not.
    let x = be.zeros(DType::F32, Shape::from([1, 16])).expect("x");
    let w = be.zeros(DType::BF16, Shape::from([6, 16])).expect("w");
    let mut gu = be.zeros(DType::F32, Shape::from([1, 6])).expect("gu");
    let mut bad = be.zeros(DType::F32, Shape::from([1, 4])).expect("out");
    assert!(
        be.matmul_swiglu(op::MatmulSwiglu {
            x: &x,
            w13: &w,
            gu: &mut gu,
            out: &mut bad
        })
        .is_err()
    );
    println!("{cases} cases equal");
}
