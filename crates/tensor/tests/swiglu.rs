//! `swiglu` over stacked gate | up rows (the LFM2 MLP's w1 | w3 matmul):
//! on the CPU (every ISA this host runs) bit-identical to `silu_mul` of the
//! two halves, and on wgpu (when an adapter exists) bit-identical to the
//! GPU's own `silu_mul` and within `GPU_SILU_MUL` of the f64 reference;
//! rows of width 1, vector width ± 1, odd; wrong shapes are errors.

use tensor::cpu::elementwise::reference;
use tensor::cpu::{CpuBackend, Isa};
use tensor::testing::rng::Rng;
use tensor::testing::tolerance::SILU_MUL;
use tensor::{Backend, DType, HostData, Shape, Tensor};

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
    be.swiglu(&up_t(&gu, 2 * f), &mut out).expect("swiglu");
    let mut two = be.zeros(DType::F32, Shape::from([t, f])).expect("zeros");
    be.silu_mul(&up_t(&gate, f), &up_t(&up, f), &mut two)
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
        assert!(be.swiglu(&gu, &mut out).is_err(), "{dims:?}");
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
