//! GPU profiling (`WgpuBackend::with_profiling`): every dispatch is counted
//! once under its shader's label, across several submits, with the same
//! results as the unprofiled backend; `profile()` drains. Skips without an
//! adapter (unless `LFM_REQUIRE_GPU=1`) or without timestamp queries.
#![cfg(feature = "wgpu")]

use tensor::testing::rng::Rng;
use tensor::wgpu::{WgpuBackend, gpu_or_skip};
use tensor::{Backend, DType, HostData, Shape, op};

/// More dispatches than one submit holds (64 by default), so the
/// timestamps of several submits are read back.
const STEPS: usize = 100;

fn run(be: &WgpuBackend, x0: &[f32], w: &[f32]) -> Vec<f32> {
    let x = be
        .upload(HostData::f32(x0), Shape::from([3, 40]))
        .expect("upload");
    let w = be
        .upload_weight(HostData::f32(w), Shape::from([40, 40]))
        .expect("weight");
    let mut y = be.zeros(DType::F32, Shape::from([3, 40])).expect("zeros");
    let mut acc = be.zeros(DType::F32, Shape::from([3, 40])).expect("zeros");
    for _ in 0..STEPS {
        be.matmul(op::Matmul {
            x: &x,
            w: &w,
            bias: None,
            out: &mut y,
        })
        .expect("matmul");
        be.add_assign(op::AddAssign { x: &mut acc, y: &y })
            .expect("add");
    }
    be.download_f32(&acc).expect("download")
}

#[test]
fn every_dispatch_is_timed_once_and_results_do_not_change() {
    let Some(be) = gpu_or_skip() else {
        return;
    };
    if !be
        .device()
        .features
        .contains(wgpu::Features::TIMESTAMP_QUERY)
    {
        eprintln!("SKIP: {} has no timestamp queries", be.describe());
        return;
    }
    let mut rng = Rng::for_case("wgpu_profile", "steps");
    let x = rng.vec(3 * 40, 1.0);
    let w = rng.vec(40 * 40, 0.1);
    let plain = run(&be, &x, &w);
    assert!(
        be.profile().is_empty(),
        "an unprofiled backend has no profile"
    );

    let prof = be.clone().with_profiling();
    let timed = run(&prof, &x, &w);
    assert_eq!(plain, timed, "profiling changed the results");
    let p = prof.profile();
    let calls = |op: &str| p.iter().find(|o| o.op == op).map(|o| o.calls);
    assert_eq!(calls("matmul_f32_f32"), Some(STEPS as u64), "{p:?}");
    assert_eq!(calls("add_f32_f32"), Some(STEPS as u64), "{p:?}");
    assert_eq!(p.len(), 2, "only the dispatched shaders: {p:?}");
    assert!(
        p.windows(2).all(|w| w[0].total >= w[1].total),
        "slowest first: {p:?}"
    );
    assert!(prof.profile().is_empty(), "profile() drains");
}
