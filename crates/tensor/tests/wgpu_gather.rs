//! The WGSL copies and gathers of `tensor::wgpu::ops` (copy and slice
//! rows, copy cols, the embedding gather from f32 / bf16 / f16 tables and
//! from ggml block-format tables as stored, pixel unshuffle) against exact
//! host arithmetic: outputs start as NaN and must come out bit-exact.
//! Skips without an adapter unless `LFM_REQUIRE_GPU=1`.
#![cfg(feature = "wgpu")]

use half::{bf16, f16};
use tensor::testing::rng::Rng;
use tensor::wgpu::{WgpuBackend, gpu_or_skip};
use tensor::{Backend, DType, HostData, Shape, Tensor, TensorError, op};

mod wgpu_common;
use wgpu_common::{down, nan_out, up};

#[test]
fn wgpu_copy_and_slice_rows() {
    let Some(be) = gpu_or_skip() else { return };
    for w in [1, 3, 17, 64] {
        for (s, t, row0) in [(1, 1, 0), (5, 2, 3), (17, 1, 16), (65, 17, 7), (4, 0, 4)] {
            let case = format!("w={w} s={s} t={t} row0={row0}");
            let mut rng = Rng::for_case("wgpu_rows", &case);
            let (big, small) = (rng.vec(s * w, 1.0), rng.vec(t * w, 1.0));

            let mut dst = up(&be, &big, &[s, w]);
            be.copy_rows(op::CopyRows {
                src: &up(&be, &small, &[t, w]),
                dst: &mut dst,
                row0,
            })
            .expect("copy_rows");
            let mut want = big.clone();
            want[row0 * w..(row0 + t) * w].copy_from_slice(&small);
            assert_eq!(down(&be, &dst), want, "copy_rows {case}");

            let mut out = nan_out(&be, &[t, w]);
            be.slice_rows(op::SliceRows {
                src: &up(&be, &big, &[s, w]),
                row0,
                out: &mut out,
            })
            .expect("slice_rows");
            assert_eq!(
                down(&be, &out),
                big[row0 * w..(row0 + t) * w],
                "slice_rows {case}"
            );
        }
        let mut dst = up(&be, &[0.0; 8], &[2, 4]);
        let err = be.copy_rows(op::CopyRows {
            src: &up(&be, &[0.0; 8], &[2, 4]),
            dst: &mut dst,
            row0: 1,
        });
        assert!(
            matches!(err, Err(TensorError::OutOfRange { .. })),
            "{err:?}"
        );
    }
}

/// Column copies (splitting a fused q | k | v projection) on wgpu and on the
/// CPU against the plain slice: exact, including one column, the last
/// columns, zero columns and ragged widths; out-of-range columns are errors.
#[test]
fn wgpu_and_cpu_copy_cols() {
    let Some(be) = gpu_or_skip() else { return };
    let cpu = tensor::cpu::CpuBackend::with(tensor::cpu::Isa::Scalar, 1).expect("cpu");
    for (rows, c_src, col0, c) in [
        (1, 1, 0, 1),
        (3, 7, 6, 1),
        (5, 12, 4, 4),
        (17, 3 * 65, 65, 65),
        (257, 2304, 1536, 768),
        (4, 9, 9, 0),
    ] {
        let case = format!("rows={rows} c_src={c_src} col0={col0} c={c}");
        let mut rng = Rng::for_case("copy_cols", &case);
        let src = rng.vec(rows * c_src, 1.0);
        let want: Vec<f32> = src
            .chunks_exact(c_src)
            .flat_map(|r| r[col0..col0 + c].iter().copied())
            .collect();
        let mut out = nan_out(&be, &[rows, c]);
        be.copy_cols(op::CopyCols {
            src: &up(&be, &src, &[rows, c_src]),
            col0,
            out: &mut out,
        })
        .expect("copy_cols");
        assert_eq!(down(&be, &out), want, "wgpu {case}");
        let cs = cpu
            .upload(HostData::f32(&src), Shape::from([rows, c_src]))
            .expect("upload");
        let mut co = cpu
            .zeros(DType::F32, Shape::from([rows, c]))
            .expect("zeros");
        cpu.copy_cols(op::CopyCols {
            src: &cs,
            col0,
            out: &mut co,
        })
        .expect("cpu copy_cols");
        assert_eq!(cpu.download_f32(&co).expect("download"), want, "cpu {case}");
    }
    let src = up(&be, &[0.0; 12], &[3, 4]);
    for (col0, c) in [(1, 4), (4, 1), (usize::MAX, 2)] {
        let mut out = nan_out(&be, &[3, c]);
        let err = be.copy_cols(op::CopyCols {
            src: &src,
            col0,
            out: &mut out,
        });
        assert!(
            matches!(err, Err(TensorError::OutOfRange { .. })),
            "{col0} {c}: {err:?}"
        );
    }
    let mut wrong_rows = nan_out(&be, &[2, 2]);
    assert!(
        be.copy_cols(op::CopyCols {
            src: &src,
            col0: 0,
            out: &mut wrong_rows
        })
        .is_err()
    );
}

fn upload_table(
    be: &WgpuBackend,
    dtype: DType,
    v: &[f32],
    dims: [usize; 2],
) -> (Tensor<WgpuBackend>, Vec<f32>) {
    let shape = Shape::from(dims);
    match dtype {
        DType::F32 => (
            be.upload(HostData::f32(v), shape).expect("upload"),
            v.to_vec(),
        ),
        DType::BF16 => {
            let h: Vec<bf16> = v.iter().map(|&x| bf16::from_f32(x)).collect();
            let exact = h.iter().map(|x| x.to_f32()).collect();
            (
                be.upload_weight(HostData::bf16(&h), shape).expect("upload"),
                exact,
            )
        }
        DType::F16 => {
            let h: Vec<f16> = v.iter().map(|&x| f16::from_f32(x)).collect();
            let exact = h.iter().map(|x| x.to_f32()).collect();
            (
                be.upload_weight(HostData::f16(&h), shape).expect("upload"),
                exact,
            )
        }
        dtype if dtype.is_block() => {
            let mut rng = Rng::for_case("wgpu_gather_blocks", &format!("{dtype} {dims:?}"));
            let bytes = rng.blocks(dtype, dims[0] * dims[1] / dtype.block_elems());
            let t = be.upload_weight(HostData::new(dtype, &bytes), shape);
            let exact = tensor::quant::dequantize_vec(dtype, &bytes);
            (t.expect("upload"), exact.expect("decode"))
        }
        other => panic!("no test table for {other}"),
    }
}

#[test]
fn wgpu_gather_rows() {
    let Some(be) = gpu_or_skip() else { return };
    let mut cases = 0;
    let (plain, blocks) = (
        [DType::F32, DType::BF16, DType::F16],
        [DType::Q8_0, DType::Q4_0],
    );
    for dtype in plain
        .into_iter()
        .chain(blocks)
        .chain([DType::Q4K, DType::Q6K])
    {
        // Block tables: rows of one, two and three whole blocks.
        let ds = match dtype.block_elems() {
            1 => vec![1, 2, 3, 17, 65],
            qk => vec![qk, 2 * qk, 3 * qk],
        };
        for d in ds {
            for vocab in [1, 17, 257] {
                let case = format!("{dtype} d={d} vocab={vocab}");
                let mut rng = Rng::for_case("wgpu_gather", &case);
                let (table, exact) = upload_table(&be, dtype, &rng.vec(vocab * d, 2.0), [vocab, d]);
                let ids: Vec<u32> = (0..7)
                    .map(|i| match i {
                        0 => vocab as u32 - 1,
                        1 => 0,
                        _ => (rng.next_u64() % vocab as u64) as u32,
                    })
                    .collect();
                let mut out = nan_out(&be, &[ids.len(), d]);
                be.gather_rows(op::GatherRows {
                    table: &table,
                    ids: &ids,
                    out: &mut out,
                })
                .expect("gather_rows");
                let want: Vec<f32> = ids
                    .iter()
                    .flat_map(|&i| exact[i as usize * d..(i as usize + 1) * d].to_vec())
                    .collect();
                assert_eq!(down(&be, &out), want, "{case}");
                cases += 1;
            }
        }
    }
    // Out-of-range ids are an error, not a read past the table.
    let table = up(&be, &[1.0; 6], &[3, 2]);
    let mut out = nan_out(&be, &[1, 2]);
    let err = be.gather_rows(op::GatherRows {
        table: &table,
        ids: &[3],
        out: &mut out,
    });
    assert!(
        matches!(err, Err(TensorError::OutOfRange { .. })),
        "{err:?}"
    );
    println!("gather_rows on {}: {cases} cases, bit-exact", be.describe());
}

/// Many gathers recorded before one readback: each must see its own ids
/// (the host data ring), including ones larger than the ring.
#[test]
fn wgpu_gather_rows_chained() {
    let Some(be) = gpu_or_skip() else { return };
    let (vocab, d) = (300, 2);
    let table_v: Vec<f32> = (0..vocab * d).map(|i| i as f32).collect();
    let table = up(&be, &table_v, &[vocab, d]);
    let mut outs = Vec::new();
    let mut wants = Vec::new();
    // 300 000 ids take 1.2 MB, more than the 1 MiB ring (a buffer of their
    // own); four slices of 280 kB fill the ring (a submit mid-recording).
    let sizes = [1usize, 5, 300_000, 1, 70_000, 70_000, 70_000, 70_000, 3];
    for (k, n) in (0u32..).zip(sizes) {
        let ids: Vec<u32> = (0..n)
            .map(|i| ((i as u32) * 7 + k) % vocab as u32)
            .collect();
        let mut out = nan_out(&be, &[n, d]);
        be.gather_rows(op::GatherRows {
            table: &table,
            ids: &ids,
            out: &mut out,
        })
        .expect("gather_rows");
        wants.push(
            ids.iter()
                .flat_map(|&i| table_v[i as usize * d..(i as usize + 1) * d].to_vec())
                .collect::<Vec<f32>>(),
        );
        outs.push(out);
    }
    for (out, want) in outs.iter().zip(&wants) {
        assert!(
            down(&be, out) == *want,
            "chained gather of {} rows",
            want.len() / d
        );
    }
}

#[test]
fn wgpu_pixel_unshuffle() {
    let Some(be) = gpu_or_skip() else { return };
    for (h, w) in [(2, 2), (4, 6), (6, 4), (8, 8)] {
        for d in [1, 3, 17] {
            let case = format!("h={h} w={w} d={d}");
            let mut rng = Rng::for_case("wgpu_unshuffle", &case);
            let x = rng.vec(h * w * d, 1.0);
            let mut out = nan_out(&be, &[h * w / 4, 4 * d]);
            be.pixel_unshuffle(op::PixelUnshuffle {
                x: &up(&be, &x, &[h * w, d]),
                h,
                w,
                out: &mut out,
            })
            .expect("pixel_unshuffle");
            let mut want = Vec::with_capacity(x.len());
            for a in 0..h / 2 {
                for b in 0..w / 2 {
                    for (r, c) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        let src = (2 * a + r) * w + 2 * b + c;
                        want.extend_from_slice(&x[src * d..(src + 1) * d]);
                    }
                }
            }
            assert_eq!(down(&be, &out), want, "{case}");
        }
    }
}
