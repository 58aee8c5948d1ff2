//! The wgpu rows of the matmul benchmark.

use super::*;
use tensor::wgpu::WgpuBackend;
use tensor::wgpu::matmul::coop::{COOP_GRIDS, CoopGemm, coop_gemm};
use tensor::wgpu::matmul::{GEMM_VARIANTS, coop_presplit_with, coop_with, gemm_with};

/// One matmul `y = x · wᵀ` through some kernel choice.
type MatmulCall<'a> = dyn Fn(&Tensor<WgpuBackend>, &Tensor<WgpuBackend>, &mut Tensor<WgpuBackend>) -> tensor::Result<()>
    + 'a;

/// Matmuls recorded back to back per timed sample, so a sample measures
/// the kernels and not one submit-and-wait round trip per call.
const BATCH: usize = 16;

/// Median seconds per matmul of batches of [`BATCH`] calls rotating over
/// `ws`, each batch ended by one sync.
fn bench_batched(
    be: &WgpuBackend,
    ws: &[Tensor<WgpuBackend>],
    dtype: DType,
    (m, n, k): (usize, usize, usize),
    budget: Budget,
    rng: &mut Rng,
    call: &MatmulCall<'_>,
) -> Result<Result1> {
    let x = be.upload(HostData::f32(&rng.vec(m * k, 1.0)), Shape::from([m, k]))?;
    let mut y = be.zeros(DType::F32, Shape::from([m, n]))?;
    let mut i = 0;
    let mut err = None;
    let secs = median_secs(budget, || {
        for _ in 0..BATCH {
            let w = &ws[i % ws.len()];
            i += 1;
            if let Err(e) = call(&x, w, &mut y) {
                err.get_or_insert(e);
            }
        }
        if let Err(e) = be.sync() {
            err.get_or_insert(e);
        }
    }) / BATCH as f64;
    if let Some(e) = err {
        return Err(e.into());
    }
    let flops = 2.0 * (m * n * k) as f64;
    let bytes = (dtype.bytes_for(n * k) + 4 * (m * k + m * n)) as f64;
    Ok(Result1 {
        median_s: secs,
        gflops: flops / secs / 1e9,
        gbps: bytes / secs / 1e9,
    })
}

/// The wgpu backend on the same shapes, when an adapter exists (opened with
/// the environment's options, `runtime::options::wgpu_from_env`); with
/// `variants`, every GEMM variant the device can run (`GemmVariant::fits`)
/// on each m > 1 shape as well, reported as `GemmVariant::name`, and,
/// where the device has cooperative matrices, every tensor-core grid for
/// bf16 weights, staged and presplit (`CoopGemm::name`).
pub fn run(o: &Opts, rng: &mut Rng) -> Result<()> {
    let be = match WgpuBackend::new(runtime::options::wgpu_from_env()?) {
        Ok(be) => be,
        Err(e @ tensor::TensorError::NoAdapter(_)) => {
            eprintln!("SKIP: wgpu: {e}");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let name = be.describe();
    // A software adapter (lavapipe) takes minutes on the large shapes:
    // there the GPU run only proves the path works.
    let software = be.is_software();
    if !o.json {
        println!("\nwgpu: {name}; time per call in batches of {BATCH} (one sync per batch)");
        if software {
            println!(
                "{name} is a software adapter: GPU shapes limited to m <= 64, n <= 4608, \
                 attention t <= 64"
            );
        }
    }
    let isa = format!("wgpu:{}", be.device().info.name);
    let matmul_dtypes = o
        .dtypes
        .iter()
        .filter(|d| matches!(d, DType::BF16 | DType::F32) && o.ops.contains(&Op::Matmul));
    for &dtype in matmul_dtypes {
        let extra = if o.nk == NK { &GPU_EXTRA_NK[..] } else { &[] };
        for &(n, k) in
            o.nk.iter()
                .chain(extra)
                .filter(|&&(n, _)| !software || n <= 4608)
        {
            let ws = cold_weights(&be, dtype, n, k, rng)?;
            for &m in o.ms.iter().filter(|&&m| !software || m <= 64) {
                let shape = (m, n, k);
                let r = bench_batched(&be, &ws, dtype, shape, o.budget, rng, &|x, w, y| {
                    be.matmul(op::Matmul {
                        x,
                        w,
                        bias: None,
                        out: y,
                    })
                })?;
                let row = MatmulRow {
                    op: "matmul",
                    mnk: shape,
                    dtype: dtype.name(),
                    isa: &isa,
                    threads: 0,
                };
                report(o, &row, &r, "gpu", f64::NAN);
                if !o.variants || m == 1 {
                    continue;
                }
                // Variants whose workgroup memory the device does not
                // grant are skipped (gemm_with would refuse them).
                for v in GEMM_VARIANTS
                    .into_iter()
                    .filter(|v| v.fits(&be.device().limits))
                {
                    let r = bench_batched(&be, &ws, dtype, shape, o.budget, rng, &|x, w, y| {
                        gemm_with(
                            &be,
                            op::Matmul {
                                x,
                                w,
                                bias: None,
                                out: y,
                            },
                            v,
                        )
                    })?;
                    let row = MatmulRow {
                        op: &v.name(),
                        mnk: shape,
                        dtype: dtype.name(),
                        isa: &isa,
                        threads: 0,
                    };
                    report(o, &row, &r, "gpu", f64::NAN);
                }
                let Some(coop) = coop_gemm(&be).filter(|_| dtype == DType::BF16) else {
                    continue;
                };
                let sg = be.device().subgroup_size.unwrap_or(0);
                for presplit in [false, true] {
                    for grid in COOP_GRIDS {
                        let c = CoopGemm {
                            grid,
                            presplit,
                            ..coop
                        };
                        if !c.fits(&be.device().limits, sg) {
                            continue;
                        }
                        let r =
                            bench_batched(&be, &ws, dtype, shape, o.budget, rng, &|x, w, y| {
                                match presplit {
                                    true => coop_presplit_with(
                                        &be,
                                        op::Matmul {
                                            x,
                                            w,
                                            bias: None,
                                            out: y,
                                        },
                                        grid,
                                    ),
                                    false => coop_with(
                                        &be,
                                        op::Matmul {
                                            x,
                                            w,
                                            bias: None,
                                            out: y,
                                        },
                                        grid,
                                    ),
                                }
                            })?;
                        let row = MatmulRow {
                            op: &c.name(),
                            mnk: shape,
                            dtype: dtype.name(),
                            isa: &isa,
                            threads: 0,
                        };
                        report(o, &row, &r, "gpu", f64::NAN);
                    }
                }
            }
        }
    }
    if o.ops.contains(&Op::Attention) {
        attention::header(o);
        // A software adapter takes seconds per call on the long shapes.
        for &s in o.shapes.iter().filter(|s| !software || s.t <= 64) {
            let r = attention::bench_attention(&be, s, BATCH, o, rng)?;
            attention::report(o, s, &isa, 0, &r, f64::NAN);
        }
    }
    Ok(())
}
