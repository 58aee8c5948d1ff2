//! The WGSL matmul (tiled GEMM and GEMV) against the f64 reference
//! (`kernels/matmul.md`) on the shared edge shapes, bf16 / f16 / f32 weights,
//! odd k (bf16 rows starting mid-word), misaligned host bytes, every GEMM
//! variant at its tile and k-step edges, grids over 65535 workgroups, and
//! chains of ops with no readback in between.
//! Tolerance: `testing::tolerance::GPU_MATMUL`. Skips without an adapter
//! unless `LFM_REQUIRE_GPU=1`.
#![cfg(feature = "wgpu")]

mod matmul_cases;

use half::{bf16, f16};
use matmul_cases::{BASE, Case, DTYPES, Worst, bytes_at, run};
use tensor::cpu::matmul::reference;
use tensor::testing::rng::Rng;
use tensor::testing::shapes;
use tensor::testing::tolerance::GPU_MATMUL;
use tensor::wgpu::device::GpuDevice;
use tensor::wgpu::matmul::{
    GEMM_LARGE, GEMM_LARGE_DB, GEMM_LARGE_DB16, GEMM_MEDIUM, GEMM_SMALL, GEMM_VARIANTS, GemvKind,
    gemm_variant, gemm_with, gemv_kind, gemv_with,
};
use tensor::wgpu::{WgpuBackend, gpu_or_skip};
use tensor::{Backend, DType, HostData, Shape, op};

#[test]
fn matmul_wgpu_small_cross() {
    let Some(be) = gpu_or_skip() else { return };
    let mut worst = Worst::default();
    let small = [1, 2, 3, 17];
    for &m in &small {
        for &n in &small {
            for &k in &small {
                for (i, &dtype) in DTYPES.iter().enumerate() {
                    worst.add(run(
                        &be,
                        Case {
                            m,
                            n,
                            k,
                            dtype,
                            bias: (m + n + k + i) % 2 == 0,
                            ..BASE
                        },
                    ));
                }
            }
        }
    }
    worst.report("matmul_wgpu_small_cross", &be);
}

#[test]
fn matmul_wgpu_edges() {
    let Some(be) = gpu_or_skip() else { return };
    let mut worst = Worst::default();
    // The shared edge lengths around the k-step and the output tile of the
    // variant small shapes get.
    let mut lens = shapes::edge_lengths(GEMM_SMALL.bk() as usize, GEMM_SMALL.tile as usize);
    lens.retain(|&l| l > 0);
    for &len in &lens {
        for dtype in DTYPES {
            worst.add(run(
                &be,
                Case {
                    m: 1,
                    n: len,
                    k: len,
                    dtype,
                    bias: true,
                    ..BASE
                },
            ));
            worst.add(run(
                &be,
                Case {
                    m: len,
                    n: 65,
                    k: 63,
                    dtype,
                    ..BASE
                },
            ));
            worst.add(run(
                &be,
                Case {
                    m: 5,
                    n: 33,
                    k: len,
                    dtype,
                    bias: true,
                    ..BASE
                },
            ));
            worst.add(run(
                &be,
                Case {
                    m: 3,
                    n: len,
                    k: 17,
                    dtype,
                    bias: len % 2 == 0,
                    ..BASE
                },
            ));
        }
    }
    // Tile ±1 in m and n at once, with odd and even k.
    let t = GEMM_SMALL.tile as usize;
    for &m in &[t - 1, t, t + 1, 2 * t + 1] {
        for &n in &[t - 1, t, t + 1] {
            for &k in &[15, 16, 33] {
                worst.add(run(
                    &be,
                    Case {
                        m,
                        n,
                        k,
                        dtype: DType::BF16,
                        bias: true,
                        ..BASE
                    },
                ));
            }
        }
    }
    worst.report("matmul_wgpu_edges", &be);
}

#[test]
fn matmul_wgpu_larger_shapes() {
    let Some(be) = gpu_or_skip() else { return };
    let mut worst = Worst::default();
    // GEMV at every threads-per-row variant (k small, medium, long) and the
    // GEMM on shapes that are not tile multiples.
    for (m, n, k) in [
        (1, 257, 1025),
        (1, 1000, 511),
        (1, 4099, 1024),
        (1, 300, 40),
        (2, 300, 257),
        (63, 65, 257),
        (65, 257, 63),
        (130, 97, 300),
        (257, 129, 1025),
    ] {
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
    worst.report("matmul_wgpu_larger_shapes", &be);
}

/// Every GEMM variant at its own edges: m and n at the tile ±1 (and tiny
/// m), k = 1, k below, at and above the k-step, k spanning several steps of
/// every k-slice with a tail, odd k (bf16/f16 rows starting mid-word); each
/// weight dtype, with and without bias. Variants whose workgroup memory the
/// device does not grant are skipped (and named).
#[test]
fn matmul_wgpu_gemm_variants_edges() {
    let Some(be) = gpu_or_skip() else { return };
    let limits = &be.device().limits;
    let (mut ran, mut skipped) = (Vec::new(), Vec::new());
    for v in GEMM_VARIANTS {
        if !v.fits(limits) {
            skipped.push(format!("{} ({} B)", v.name(), v.workgroup_bytes()));
            continue;
        }
        ran.push(v.name());
        let mut worst = Worst::default();
        let (t, bk, ks) = (v.tile as usize, v.bk() as usize, v.ks as usize);
        let mut ks_lens = vec![1, bk - 1, bk, bk + 1, 2 * ks * bk + 3, 3 * ks * bk];
        ks_lens.sort_unstable();
        ks_lens.dedup();
        let mut i = 0;
        for &m in &[2, 3, t - 1, t, t + 1] {
            for &n in &[1, t - 1, t, t + 1] {
                for &k in &ks_lens {
                    for dtype in DTYPES {
                        i += 1;
                        worst.add(run(
                            &be,
                            Case {
                                m,
                                n,
                                k,
                                dtype,
                                bias: i % 2 == 0,
                                variant: Some(v),
                                ..BASE
                            },
                        ));
                    }
                }
            }
        }
        // Several tiles in both directions, many k-steps, m = 1 too.
        for (m, n, k) in [(2 * t + 1, 3 * t - 1, 8 * ks * bk + 5), (1, t + 3, 37)] {
            for dtype in DTYPES {
                for bias in [false, true] {
                    worst.add(run(
                        &be,
                        Case {
                            m,
                            n,
                            k,
                            dtype,
                            bias,
                            variant: Some(v),
                            ..BASE
                        },
                    ));
                }
            }
        }
        worst.report(&format!("matmul_wgpu_gemm_variants_edges {v:?}"), &be);
    }
    println!(
        "{}: {} B workgroup memory; ran {ran:?}; skipped {skipped:?}",
        be.describe(),
        limits.max_compute_workgroup_storage_size
    );
    // Those gemm_variant picks (within WebGPU's defaults) always run.
    assert!(ran.len() >= 4, "ran {ran:?}");
}

/// A device that grants less workgroup memory than a variant needs: the
/// variant is refused with an error naming it, the others still run, and
/// the backend's own choice falls back to a variant that fits.
#[test]
fn matmul_wgpu_gemm_variant_refused_where_it_does_not_fit() {
    if gpu_or_skip().is_none() {
        return;
    }
    // The host sizes kernels by `limits`: pretend WebGPU's default 16 KiB,
    // then 4 KiB (below every 256-thread variant).
    for bytes in [16 << 10, 4 << 10] {
        let mut dev = GpuDevice::open(tensor::testing::env::wgpu_options()).expect("device");
        dev.limits.max_compute_workgroup_storage_size = bytes;
        let limits = dev.limits.clone();
        let be = WgpuBackend::with_device(dev).expect("backend");
        let (m, n, k) = (130, 129, 37);
        let mut rng = Rng::for_case("matmul_wgpu_refused", &format!("{bytes}"));
        let x = rng.vec(m * k, 1.0);
        let w = rng.vec(n * k, 0.5);
        let (want, mag) = reference::matmul(&x, &w, None, m, n, k);
        let xt = be
            .upload(HostData::f32(&x), Shape::from([m, k]))
            .expect("x");
        let wt = be
            .upload(HostData::f32(&w), Shape::from([n, k]))
            .expect("w");
        let mut out = be.zeros(DType::F32, Shape::from([m, n])).expect("out");
        let mut fit = 0;
        for v in GEMM_VARIANTS {
            let r = gemm_with(
                &be,
                op::Matmul {
                    x: &xt,
                    w: &wt,
                    bias: None,
                    out: &mut out,
                },
                v,
            );
            if v.fits(&limits) {
                r.unwrap_or_else(|e| panic!("{bytes} B, {v:?}: {e}"));
                let got = be.download_f32(&out).expect("download");
                GPU_MATMUL
                    .check(&got, &want, &mag)
                    .unwrap_or_else(|e| panic!("{bytes} B, {v:?}: {e:?}"));
                fit += 1;
            } else {
                let e = r.expect_err("does not fit").to_string();
                assert!(e.contains(&v.name()), "{bytes} B: {e}");
            }
        }
        if bytes == 16 << 10 {
            assert!(GEMM_LARGE_DB.fits(&limits) && !GEMM_LARGE_DB16.fits(&limits));
            assert_eq!(fit, 6, "{bytes} B");
        } else {
            assert_eq!(fit, 1, "{bytes} B: only the 64-thread tile");
        }
        // The backend's choice (GEMM_SMALL here at 16 KiB; at 4 KiB it does
        // not fit and GEMM_MEDIUM runs instead).
        be.matmul(op::Matmul {
            x: &xt,
            w: &wt,
            bias: None,
            out: &mut out,
        })
        .expect("auto");
        let got = be.download_f32(&out).expect("download");
        GPU_MATMUL
            .check(&got, &want, &mag)
            .unwrap_or_else(|e| panic!("{bytes} B, auto: {e:?}"));
        assert!(GEMM_MEDIUM.fits(&limits));
        be.sync().expect("no device errors");
    }
}

/// The backend's variant choice on model-like shapes small enough for a
/// CPU reference, covering every variant.
/// Every GEMV kind on bf16 rows of 8k elements (the 16-byte-load kernels)
/// around their strides: k = 8 (one vector), a vector short of and past one
/// stride and two, the model widths; n around the rows per workgroup.
#[test]
fn matmul_wgpu_gemv_kinds_edges() {
    let Some(be) = gpu_or_skip() else { return };
    let mut kinds = vec![GemvKind::Words, GemvKind::X8];
    if gemv_kind(&be, 8, DType::BF16) == GemvKind::X8Subgroup {
        kinds.push(GemvKind::X8Subgroup);
    } else {
        println!(
            "{}: no fixed-size subgroups, X8Subgroup not run",
            be.describe()
        );
    }
    for &kind in &kinds {
        let mut worst = Worst::default();
        for k in [8, 16, 56, 64, 248, 256, 264, 512, 1032, 1024, 4608] {
            for n in [1, 3, 7, 8, 9, 31, 32, 33, 65, 300] {
                for bias in [false, true] {
                    worst.add(run(
                        &be,
                        Case {
                            dtype: DType::BF16,
                            n,
                            k,
                            bias,
                            w_off: usize::from(bias) * 6,
                            gemv: Some(kind),
                            ..BASE
                        },
                    ));
                }
            }
        }
        worst.report(&format!("gemv {kind:?}"), &be);
    }
}

/// ggml block-format weights (Q8_0, Q4_0, Q4_K, Q6_K) as stored: the block
/// GEMV around its stride (k from one block to past two strides of
/// `TPR` groups; n around the rows per workgroup; misaligned host bytes)
/// and the tiled GEMM reading them per element, against the f64 product
/// of the decoded weights.
#[test]
fn matmul_wgpu_block_formats() {
    let Some(be) = gpu_or_skip() else { return };
    for dtype in [DType::Q8_0, DType::Q4_0, DType::Q4K, DType::Q6K] {
        let qk = dtype.block_elems();
        let mut worst = Worst::default();
        let ks: Vec<usize> = [1, 2, 3, 15, 16, 17, 33, 64, 130]
            .into_iter()
            .map(|b| b * 32)
            .filter(|k| k % qk == 0)
            .chain([qk, 2 * qk, 4 * qk + qk, 18 * qk])
            .collect();
        for &k in &ks {
            for n in [1, 3, 8, 9, 17, 65] {
                for m in [1, 2, 5, 33] {
                    worst.add(run(
                        &be,
                        Case {
                            dtype,
                            m,
                            n,
                            k,
                            bias: (m + n) % 2 == 0,
                            w_off: (n % 3) * 5,
                            ..BASE
                        },
                    ));
                }
            }
        }
        // The GEMV and the GEMM variants on the same rows.
        for v in [GEMM_SMALL, GEMM_MEDIUM, GEMM_LARGE] {
            worst.add(run(
                &be,
                Case {
                    dtype,
                    m: 1,
                    n: 130,
                    k: 4 * qk,
                    variant: Some(v),
                    ..BASE
                },
            ));
        }
        worst.report(&format!("blocks {dtype}"), &be);
        assert_eq!(gemv_kind(&be, qk, dtype), GemvKind::Blocks);
        for kind in [GemvKind::Words, GemvKind::X8] {
            let w = be
                .upload(
                    HostData::new(dtype, &vec![0u8; dtype.block_bytes()]),
                    Shape::from([1, qk]),
                )
                .expect("upload");
            let x = be.zeros(DType::F32, Shape::from([1, qk])).expect("x");
            let mut out = be.zeros(DType::F32, Shape::from([1, 1])).expect("out");
            let op = op::Matmul {
                x: &x,
                w: &w,
                bias: None,
                out: &mut out,
            };
            assert!(gemv_with(&be, op, kind).is_err(), "{dtype} {kind:?}");
        }
    }
}

/// The x8 kinds refuse what they cannot run: other dtypes, k not a multiple
/// of 8, more than one row.
#[test]
fn matmul_wgpu_gemv_kind_applies_only_where_it_can() {
    let Some(be) = gpu_or_skip() else { return };
    assert_eq!(gemv_kind(&be, 12, DType::BF16), GemvKind::Words);
    assert_eq!(gemv_kind(&be, 16, DType::F32), GemvKind::Words);
    assert_eq!(gemv_kind(&be, 16, DType::F16), GemvKind::Words);
    assert_ne!(gemv_kind(&be, 16, DType::BF16), GemvKind::Words);
    let w = be
        .upload(HostData::bf16(&[bf16::ONE; 2 * 12]), Shape::from([2, 12]))
        .expect("w");
    let x = be
        .upload(HostData::f32(&[1.0; 12]), Shape::from([1, 12]))
        .expect("x");
    let mut y = be.zeros(DType::F32, Shape::from([1, 2])).expect("y");
    assert!(
        gemv_with(
            &be,
            op::Matmul {
                x: &x,
                w: &w,
                bias: None,
                out: &mut y
            },
            GemvKind::X8
        )
        .is_err()
    );
    let x2 = be
        .upload(HostData::f32(&[1.0; 24]), Shape::from([2, 12]))
        .expect("x2");
    let mut y2 = be.zeros(DType::F32, Shape::from([2, 2])).expect("y2");
    assert!(
        gemv_with(
            &be,
            op::Matmul {
                x: &x2,
                w: &w,
                bias: None,
                out: &mut y2
            },
            GemvKind::Words
        )
        .is_err()
    );
}

#[test]
fn matmul_wgpu_gemm_variant_choice() {
    let Some(be) = gpu_or_skip() else { return };
    let mut worst = Worst::default();
    let mut seen = Vec::new();
    for (m, n, k) in [
        (2, 300, 257),
        (64, 1024, 65),
        (512, 1024, 33),
        (1024, 2049, 17),
        (2049, 2048, 9),
    ] {
        let v = gemm_variant(m, n);
        if !seen.contains(&v) {
            seen.push(v);
        }
        worst.add(run(
            &be,
            Case {
                m,
                n,
                k,
                dtype: DType::BF16,
                bias: true,
                ..BASE
            },
        ));
    }
    // The first four variants are those gemm_variant picks.
    assert_eq!(seen.len(), 4, "shapes cover every variant: {seen:?}");
    assert!(
        seen.iter().all(|v| GEMM_VARIANTS[..4].contains(v)),
        "{seen:?}"
    );
    assert_eq!(gemm_variant(4096, 4096), GEMM_LARGE);
    worst.report("matmul_wgpu_gemm_variant_choice", &be);
}

#[test]
fn matmul_wgpu_misaligned_and_k0() {
    let Some(be) = gpu_or_skip() else { return };
    let mut worst = Worst::default();
    for off in [1, 2, 3, 5] {
        for dtype in DTYPES {
            // Odd n·k too: the packed buffer ends mid-word.
            worst.add(run(
                &be,
                Case {
                    m: 1,
                    n: 37,
                    k: 19,
                    dtype,
                    w_off: off,
                    ..BASE
                },
            ));
            worst.add(run(
                &be,
                Case {
                    m: 9,
                    n: 37,
                    k: 19,
                    dtype,
                    w_off: off,
                    bias: true,
                    ..BASE
                },
            ));
        }
    }
    // Empty outputs (m = 0 or n = 0) record nothing and succeed.
    for (m, n, k) in [(0, 5, 3), (4, 0, 3), (1, 0, 0), (0, 0, 0)] {
        worst.add(run(&be, Case { m, n, k, ..BASE }));
    }
    // k = 0: the output is the bias (or zero), never garbage; through the
    // backend's choice and through every GEMM variant.
    let variants = GEMM_VARIANTS.map(|v| v.fits(&be.device().limits).then_some(v));
    for variant in [None].iter().chain(variants.iter().filter(|v| v.is_some())) {
        for m in [1, 3] {
            for bias in [true, false] {
                worst.add(run(
                    &be,
                    Case {
                        m,
                        n: 7,
                        k: 0,
                        bias,
                        variant: *variant,
                        ..BASE
                    },
                ));
            }
        }
    }
    worst.report("matmul_wgpu_misaligned_and_k0", &be);
}

#[test]
fn matmul_wgpu_grid_over_65535_workgroups() {
    let Some(be) = gpu_or_skip() else { return };
    let max = be.device().limits.max_compute_workgroups_per_dimension as usize;
    let mut worst = Worst::default();
    // GEMV: 256 threads, 8 per row (tiny k) → 32 rows per workgroup.
    worst.add(run(
        &be,
        Case {
            m: 1,
            n: 32 * max + 33,
            k: 3,
            dtype: DType::BF16,
            bias: true,
            ..BASE
        },
    ));
    // GEMM: one tile per workgroup, in the smallest tile.
    let n = (max + 1) * GEMM_SMALL.tile as usize + 1;
    worst.add(run(
        &be,
        Case {
            m: 2,
            n,
            k: 1,
            dtype: DType::F32,
            bias: true,
            variant: Some(GEMM_SMALL),
            ..BASE
        },
    ));
    worst.report("matmul_wgpu_grid_over_65535_workgroups", &be);
}

/// Many ops recorded back to back (more than the uniform ring holds), each
/// feeding the next, read back once at the end.
#[test]
fn matmul_wgpu_chained_without_readback() {
    let Some(be) = gpu_or_skip() else { return };
    let (d, steps) = (24usize, 300usize);
    let mut rng = Rng::for_case("matmul_wgpu_chained", "d24");
    let wf = rng.vec(d * d, 0.3);
    let w: Vec<bf16> = wf.iter().map(|&v| bf16::from_f32(v)).collect();
    let bias = rng.vec(d, 0.1);
    let x0 = rng.vec(2 * d, 1.0);
    let wt = be
        .upload(HostData::bf16(&w), Shape::from([d, d]))
        .expect("w");
    let bt = be
        .upload(HostData::f32(&bias), Shape::from([d]))
        .expect("bias");
    let mut a = be
        .upload(HostData::f32(&x0), Shape::from([2, d]))
        .expect("x");
    let mut b = be.zeros(DType::F32, Shape::from([2, d])).expect("zeros");
    let mut gemv_in = be
        .upload(HostData::f32(&x0[..d]), Shape::from([1, d]))
        .expect("x");
    let mut gemv_out = be.zeros(DType::F32, Shape::from([1, d])).expect("zeros");
    let (mut want, mut want_gemv) = (x0.clone(), x0[..d].to_vec());
    for _ in 0..steps {
        be.matmul(op::Matmul {
            x: &a,
            w: &wt,
            bias: Some(&bt),
            out: &mut b,
        })
        .expect("gemm");
        std::mem::swap(&mut a, &mut b);
        be.matmul(op::Matmul {
            x: &gemv_in,
            w: &wt,
            bias: Some(&bt),
            out: &mut gemv_out,
        })
        .expect("gemv");
        std::mem::swap(&mut gemv_in, &mut gemv_out);
        // Keep the values bounded: the reference of each step uses the
        // previous reference output, so errors would compound otherwise.
        want = reference::matmul(&want, &w, Some(&bias), 2, d, d).0;
        want_gemv = reference::matmul(&want_gemv, &w, Some(&bias), 1, d, d).0;
    }
    let got = be.download_f32(&a).expect("download");
    let got_gemv = be.download_f32(&gemv_in).expect("download");
    for (g, r) in [(&got, &want), (&got_gemv, &want_gemv)] {
        let max_err = g
            .iter()
            .zip(r.iter())
            .map(|(g, r)| (g - r).abs())
            .fold(0.0f32, f32::max);
        let scale = r.iter().map(|r| r.abs()).fold(0.0f32, f32::max);
        assert!(
            max_err <= 1e-4 * scale.max(1e-3),
            "after {steps} chained matmuls: max |x-r| = {max_err:e} (max |r| = {scale:e})"
        );
    }
    be.sync().expect("sync");
    println!(
        "matmul_wgpu_chained_without_readback: {} ops recorded, pipelines compiled: {}",
        2 * steps,
        be.pipeline_count()
    );
}

#[test]
fn matmul_wgpu_nan_propagates() {
    let Some(be) = gpu_or_skip() else { return };
    for m in [1, 9] {
        let (n, k) = (20, 33);
        let mut x = vec![0.25f32; m * k];
        x[k / 2] = f32::NAN; // row 0 only
        let w = vec![bf16::from_f32(0.5); n * k];
        let xt = be
            .upload(HostData::f32(&x), Shape::from([m, k]))
            .expect("x");
        let wt = be
            .upload(HostData::bf16(&w), Shape::from([n, k]))
            .expect("w");
        let mut y = be.zeros(DType::F32, Shape::from([m, n])).expect("y");
        be.matmul(op::Matmul {
            x: &xt,
            w: &wt,
            bias: None,
            out: &mut y,
        })
        .expect("matmul");
        let y = be.download_f32(&y).expect("download");
        assert!(
            y[..n].iter().all(|v| v.is_nan()),
            "m={m}: NaN in x row 0 must reach every output of row 0"
        );
        assert!(
            y[n..].iter().all(|v| v.is_finite()),
            "m={m}: other rows stay finite"
        );
    }
}

#[test]
fn matmul_wgpu_rejects_bad_shapes() {
    let Some(be) = gpu_or_skip() else { return };
    let x = be.zeros(DType::F32, Shape::from([2, 3])).expect("x");
    let w = be.zeros(DType::BF16, Shape::from([4, 5])).expect("w");
    let mut y = be.zeros(DType::F32, Shape::from([2, 4])).expect("y");
    assert!(
        be.matmul(op::Matmul {
            x: &x,
            w: &w,
            bias: None,
            out: &mut y
        })
        .is_err(),
        "k mismatch must be an error"
    );
    let xb = be.zeros(DType::BF16, Shape::from([2, 5])).expect("x");
    assert!(
        be.matmul(op::Matmul {
            x: &xb,
            w: &w,
            bias: None,
            out: &mut y
        })
        .is_err(),
        "bf16 x must be an error"
    );
}

#[test]
fn upload_download_wgpu_roundtrip() {
    let Some(be) = gpu_or_skip() else { return };
    // Odd element counts and odd byte offsets; bit-exact widening to f32.
    for len in [1usize, 2, 3, 5, 8, 17] {
        let mut rng = Rng::for_case("upload_download_wgpu_roundtrip", &len.to_string());
        let v = rng.vec(len, 3.0);
        let h: Vec<bf16> = v.iter().map(|&x| bf16::from_f32(x)).collect();
        let f: Vec<f16> = v.iter().map(|&x| f16::from_f32(x)).collect();
        for off in [0, 1, 3] {
            let hb = bytes_at(&h, off);
            let t = be
                .upload(
                    HostData::new(DType::BF16, &hb[off..off + 2 * len]),
                    Shape::from([len]),
                )
                .expect("bf16");
            let want: Vec<f32> = h.iter().map(|x| x.to_f32()).collect();
            assert_eq!(
                be.download_f32(&t).expect("download"),
                want,
                "bf16 len {len} off {off}"
            );
            let fb = bytes_at(&f, off);
            let t = be
                .upload(
                    HostData::new(DType::F16, &fb[off..off + 2 * len]),
                    Shape::from([len]),
                )
                .expect("f16");
            let want: Vec<f32> = f.iter().map(|x| x.to_f32()).collect();
            assert_eq!(
                be.download_f32(&t).expect("download"),
                want,
                "f16 len {len} off {off}"
            );
            let vb = bytes_at(&v, off);
            let t = be
                .upload(
                    HostData::new(DType::F32, &vb[off..off + 4 * len]),
                    Shape::from([len]),
                )
                .expect("f32");
            assert_eq!(
                be.download_f32(&t).expect("download"),
                v,
                "f32 len {len} off {off}"
            );
        }
    }
    let z = be.zeros(DType::BF16, Shape::from([3])).expect("zeros");
    assert_eq!(be.download_f32(&z).expect("download"), vec![0.0; 3]);
    let bad = be.upload(HostData::new(DType::F32, &[0u8; 6]), Shape::from([2]));
    assert!(bad.is_err(), "byte length mismatch must be an error");
}
