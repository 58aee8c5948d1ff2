//! Every CPU matmul tier against the f64 reference (`kernels/matmul.md`),
//! on the shared edge shapes, all weight dtypes, misaligned inputs and
//! 1–3 threads. Tolerance: `testing::tolerance::MATMUL`. Int8 weights are
//! checked against the reference over their dequantized values (the
//! kernel's own error; the quantization error is `quant.rs`'s business).

mod common;

use common::pool;
use half::{bf16, f16};
use tensor::DType;
use tensor::cpu::matmul::{self, MatmulArgs, WeightRef, panels, quant, reference};
use tensor::cpu::{Isa, IsaToken};
use tensor::dtype::Element;
use tensor::testing::tolerance::{ErrorStats, MATMUL};
use tensor::testing::{expected_isas_present, rng::Rng, shapes};

#[derive(Clone, Copy, Debug)]
struct Case {
    isa: Isa,
    dtype: DType,
    m: usize,
    n: usize,
    k: usize,
    bias: bool,
    threads: usize,
    /// Start offsets (elements) of x and w inside larger buffers.
    x_off: usize,
    w_off: usize,
}

trait Wrap: Element {
    fn wrap(w: &[Self]) -> WeightRef<'_>;
}
impl Wrap for f32 {
    fn wrap(w: &[Self]) -> WeightRef<'_> {
        WeightRef::F32(w)
    }
}
impl Wrap for bf16 {
    fn wrap(w: &[Self]) -> WeightRef<'_> {
        WeightRef::BF16(w)
    }
}
impl Wrap for f16 {
    fn wrap(w: &[Self]) -> WeightRef<'_> {
        WeightRef::F16(w)
    }
}

/// Row-major `q · scale` of quantized rows `[n, k]`.
fn dequantized(rows: &quant::QuantRows, k: usize) -> Vec<f32> {
    (rows.q.iter().enumerate())
        .map(|(i, &q)| q as f32 * rows.scale[i / k])
        .collect()
}

/// The kernel under test on case `c`'s shape.
fn call(
    c: &Case,
    x: &[f32],
    w: WeightRef<'_>,
    bias: Option<&[f32]>,
    (tok, pool): (IsaToken, Option<&rayon::ThreadPool>),
    y: &mut [f32],
) {
    let args = MatmulArgs {
        x,
        w,
        bias,
        m: c.m,
        n: c.n,
        k: c.k,
    };
    matmul::matmul(tok, pool, &args, y);
}

fn run(c: Case, pools: &[Option<rayon::ThreadPool>]) -> ErrorStats {
    let tok = IsaToken::new(c.isa).expect("caller checked availability");
    let mut rng = Rng::for_case("matmul", &format!("{c:?}"));
    let xbuf = rng.vec(c.x_off + c.m * c.k, 1.0);
    let wf = rng.vec(c.w_off + c.n * c.k, 0.5);
    let bias = c.bias.then(|| rng.vec(c.n, 0.5));
    let x = &xbuf[c.x_off..];
    let mut y = vec![f32::NAN; c.m * c.n];
    let pool = pools[c.threads - 1].as_ref();
    fn go<E: Wrap>(
        c: &Case,
        wf: &[f32],
        x: &[f32],
        bias: Option<&[f32]>,
        tok: IsaToken,
        pool: Option<&rayon::ThreadPool>,
        y: &mut [f32],
    ) -> (Vec<f32>, Vec<f64>) {
        let wbuf: Vec<E> = wf.iter().map(|&v| E::from_f32(v)).collect();
        let w = &wbuf[c.w_off..];
        // Panels live in a larger buffer too, at the same odd offset.
        let layout = matmul::geometry(tok).panels();
        let mut pbuf = vec![E::from_f32(f32::NAN); c.w_off];
        pbuf.extend(panels::pack(w, c.n, c.k, layout));
        call(c, x, E::wrap(&pbuf[c.w_off..]), bias, (tok, pool), y);
        reference::matmul(x, w, bias, c.m, c.n, c.k)
    }
    fn go_i8(
        c: &Case,
        wf: &[f32],
        x: &[f32],
        bias: Option<&[f32]>,
        tok: IsaToken,
        pool: Option<&rayon::ThreadPool>,
        y: &mut [f32],
    ) -> (Vec<f32>, Vec<f64>) {
        let rows = quant::quantize_rows(&wf[c.w_off..], c.n, c.k).unwrap();
        let layout = matmul::geometry(tok).panels();
        let mut pbuf = vec![-128i8; c.w_off];
        pbuf.extend(panels::pack(&rows.q, c.n, c.k, layout));
        let w = WeightRef::I8 {
            q: &pbuf[c.w_off..],
            scale: &rows.scale,
        };
        call(c, x, w, bias, (tok, pool), y);
        reference::matmul(x, &dequantized(&rows, c.k), bias, c.m, c.n, c.k)
    }
    let b = bias.as_deref();
    let (want, mag) = match c.dtype {
        DType::F32 => go::<f32>(&c, &wf, x, b, tok, pool, &mut y),
        DType::BF16 => go::<bf16>(&c, &wf, x, b, tok, pool, &mut y),
        DType::F16 => go::<f16>(&c, &wf, x, b, tok, pool, &mut y),
        DType::I8 => go_i8(&c, &wf, x, b, tok, pool, &mut y),
        _ => unreachable!(),
    };
    match MATMUL.check(&y, &want, &mag) {
        Ok(st) => st,
        Err(e) => panic!(
            "{c:?}: first bad index {} (row {}, col {}): got {}, want {}, bound {:e}",
            e.index,
            e.index / c.n.max(1),
            e.index % c.n.max(1),
            e.got,
            e.want,
            e.bound
        ),
    }
}

/// All cases of one tier; returns the worst error seen.
fn sweep(isa: Isa) -> ErrorStats {
    let tok = IsaToken::new(isa).unwrap();
    let g = matmul::geometry(tok);
    let (mr, nr, kc) = (g.mr, g.nr, g.kc);
    let v = isa.lanes();
    let pools: Vec<_> = (1..=3).map(pool).collect();
    let mut worst = ErrorStats::default();
    let mut add = |st: ErrorStats| {
        worst.max_abs = worst.max_abs.max(st.max_abs);
        worst.max_rel = worst.max_rel.max(st.max_rel);
    };
    let dtypes = [DType::F32, DType::BF16, DType::F16, DType::I8];
    let base = Case {
        isa,
        dtype: DType::F32,
        m: 1,
        n: 1,
        k: 1,
        bias: false,
        threads: 1,
        x_off: 0,
        w_off: 0,
    };

    // 1. Small cross product around the vector width (GEMV at m = 1, GEMM above).
    let small = [1, 2, 3, v.saturating_sub(1).max(1), v, v + 1, 17];
    for &m in &small {
        for &n in &small {
            for &k in &small {
                for (i, &dtype) in dtypes.iter().enumerate() {
                    add(run(
                        Case {
                            m,
                            n,
                            k,
                            dtype,
                            bias: (m + n + k + i) % 2 == 0,
                            ..base
                        },
                        &pools,
                    ));
                }
            }
        }
    }
    // 2. Register-tile and k-block edges, and the shared edge lengths.
    // Int8 too: its scale multiplies every k block's partial sums.
    for &m in &[mr - 1, mr, mr + 1, 2 * mr + 1] {
        for &n in &[nr - 1, nr, nr + 1] {
            for &k in &[kc - 1, kc, kc + 1] {
                for dtype in [DType::BF16, DType::I8] {
                    add(run(
                        Case {
                            m: m.max(1),
                            n,
                            k,
                            dtype,
                            bias: true,
                            ..base
                        },
                        &pools,
                    ));
                }
            }
        }
    }
    for &len in &shapes::edge_lengths(v, nr) {
        for dtype in dtypes {
            add(run(
                Case {
                    m: 1,
                    n: len.max(1),
                    k: len,
                    dtype,
                    bias: true,
                    ..base
                },
                &pools,
            ));
            add(run(
                Case {
                    m: len,
                    n: 65,
                    k: 63,
                    dtype,
                    ..base
                },
                &pools,
            ));
            add(run(
                Case {
                    m: 5,
                    n: 33,
                    k: len,
                    dtype,
                    bias: true,
                    ..base
                },
                &pools,
            ));
        }
    }
    // 3. Larger shapes on 1–3 threads (row split, column split, GEMV split).
    for threads in 1..=3 {
        for (m, n, k) in [
            (1, 257, 1025),
            (2, 300, 257),
            (63, 65, 257),
            (65, 257, 63),
            (130, 97, 300),
        ] {
            for dtype in dtypes {
                add(run(
                    Case {
                        m,
                        n,
                        k,
                        dtype,
                        bias: true,
                        threads,
                        ..base
                    },
                    &pools,
                ));
            }
        }
    }
    // 4. Misaligned starts of x and w (odd element offsets into larger buffers).
    for off in shapes::misaligned_offsets(v) {
        for dtype in dtypes {
            add(run(
                Case {
                    m: 1,
                    n: 37,
                    k: 4 * v + 3,
                    dtype,
                    x_off: off,
                    w_off: off + 1,
                    ..base
                },
                &pools,
            ));
            add(run(
                Case {
                    m: 9,
                    n: 37,
                    k: 4 * v + 3,
                    dtype,
                    x_off: off,
                    w_off: 2 * off + 1,
                    bias: true,
                    ..base
                },
                &pools,
            ));
        }
    }
    // 5. k = 0: the output is the bias (or zero), never garbage; also on
    //    the threaded row-split path (many rows, 3 threads).
    for dtype in dtypes {
        add(run(
            Case {
                m: 6 * mr + 1,
                n: 70_000 / (6 * mr + 1),
                k: 0,
                dtype,
                bias: true,
                threads: 3,
                ..base
            },
            &pools,
        ));
        for m in [1, 3] {
            for bias in [true, false] {
                add(run(
                    Case {
                        m,
                        n: 7,
                        k: 0,
                        dtype,
                        bias,
                        ..base
                    },
                    &pools,
                ));
            }
        }
    }
    worst
}

fn nan_propagates(isa: Isa) {
    let tok = IsaToken::new(isa).unwrap();
    let layout = matmul::geometry(tok).panels();
    let (n, k) = (20, 33);
    let wb = panels::pack(&vec![bf16::from_f32(0.5); n * k], n, k, layout);
    let rows = quant::quantize_rows(&vec![0.5f32; n * k], n, k).unwrap();
    let wq = panels::pack(&rows.q, n, k, layout);
    let formats = [
        WeightRef::BF16(&wb),
        WeightRef::I8 {
            q: &wq,
            scale: &rows.scale,
        },
    ];
    for (m, w) in [1, 9].into_iter().flat_map(|m| formats.map(|w| (m, w))) {
        nan_reaches_its_row(tok, w, (m, n, k));
    }
}

/// A NaN in row 0 of `x` reaches every output of row 0 and no other row.
fn nan_reaches_its_row(tok: IsaToken, w: WeightRef<'_>, (m, n, k): (usize, usize, usize)) {
    let isa = tok.isa();
    {
        let mut x = vec![0.25f32; m * k];
        x[k / 2] = f32::NAN; // row 0 only
        let mut y = vec![0.0; m * n];
        matmul::matmul(
            tok,
            None,
            &MatmulArgs {
                x: &x,
                w,
                bias: None,
                m,
                n,
                k,
            },
            &mut y,
        );
        assert!(
            y[..n].iter().all(|v| v.is_nan()),
            "{isa} m={m}: NaN in x row 0 must reach every output of row 0"
        );
        assert!(
            y[n..].iter().all(|v| v.is_finite()),
            "{isa} m={m}: other rows stay finite"
        );
    }
}

/// Packing is exact and reversible for every ISA layout and dtype, at
/// panel edges.
#[test]
fn panels_roundtrip_all_layouts() {
    for isa in expected_isas_present() {
        let layout = matmul::geometry(IsaToken::new(isa).unwrap()).panels();
        for n in [
            1,
            layout.nr - 1,
            layout.nr,
            layout.nr + 1,
            2 * layout.nr + 3,
        ] {
            for k in [1, 2, 7] {
                let mut rng = Rng::for_case("panels", &format!("{isa} {n} {k}"));
                let w: Vec<bf16> = rng
                    .vec(n * k, 1.0)
                    .into_iter()
                    .map(bf16::from_f32)
                    .collect();
                let back = panels::unpack_f32(&panels::pack(&w, n, k, layout), n, k, layout);
                let want: Vec<f32> = w.iter().map(|v| v.to_f32()).collect();
                assert_eq!(back, want, "{isa} n={n} k={k}");
                let wf: Vec<f32> = want.clone();
                assert_eq!(
                    panels::unpack_f32(&panels::pack(&wf, n, k, layout), n, k, layout),
                    want
                );
            }
        }
    }
}

macro_rules! isa_tests {
    ($($sweep:ident, $nan:ident => $isa:expr;)*) => {$(
        #[test]
        fn $sweep() {
            expected_isas_present();
            if !$isa.is_available() {
                println!("skip: {} not available on this host", $isa);
                return;
            }
            let st = sweep($isa);
            println!("matmul {}: worst |x-r| = {:.3e}, worst |x-r|/Σ|ab| = {:.3e}", $isa, st.max_abs, st.max_rel);
        }

        #[test]
        fn $nan() {
            if $isa.is_available() {
                nan_propagates($isa);
            }
        }
    )*};
}

isa_tests! {
    matmul_scalar_edges, matmul_scalar_nan => Isa::Scalar;
    matmul_avx2_edges, matmul_avx2_nan => Isa::Avx2;
    matmul_avx512_edges, matmul_avx512_nan => Isa::Avx512;
    matmul_neon_edges, matmul_neon_nan => Isa::Neon;
}

/// The backend's int8 path end to end: `upload_weight` quantizes, matmul
/// (GEMV and GEMM) equals the kernel over the dequantized weights, the
/// tensor downloads and gathers dequantized, and bad weights are errors.
#[test]
fn cpu_backend_int8_weights() {
    use tensor::cpu::{CpuBackend, WeightFormat};
    use tensor::{Backend, HostData, Shape, TensorError, op};
    let (n, k) = (37, 70);
    let mut rng = tensor::testing::rng::Rng::for_case("int8 backend", "");
    let wf = rng.vec(n * k, 0.5);
    let wb: Vec<bf16> = wf.iter().map(|&v| bf16::from_f32(v)).collect();
    for threads in [1, 2] {
        let be = CpuBackend::with(Isa::best(), threads)
            .unwrap()
            .with_weight_format(WeightFormat::Int8)
            .unwrap();
        assert!(be.describe().contains("int8"), "{}", be.describe());
        let w = be
            .upload_weight(HostData::bf16(&wb), Shape::from([n, k]))
            .unwrap();
        assert_eq!(w.dtype(), DType::I8);
        let deq = dequantized(&quant::quantize_rows(&wb, n, k).unwrap(), k);
        assert_eq!(be.download_f32(&w).unwrap(), deq);
        // Gathered rows (the tied embedding) come out dequantized.
        let mut g = be.zeros(DType::F32, Shape::from([2, k])).unwrap();
        be.gather_rows(op::GatherRows {
            table: &w,
            ids: &[5, 36],
            out: &mut g,
        })
        .unwrap();
        let g = be.download_f32(&g).unwrap();
        assert_eq!(&g[..k], &deq[5 * k..6 * k]);
        assert_eq!(&g[k..], &deq[36 * k..37 * k]);
        for m in [1, 9] {
            let xv = rng.vec(m * k, 1.0);
            let x = be.upload(HostData::f32(&xv), Shape::from([m, k])).unwrap();
            let mut y = be.zeros(DType::F32, Shape::from([m, n])).unwrap();
            be.matmul(op::Matmul {
                x: &x,
                w: &w,
                bias: None,
                out: &mut y,
            })
            .unwrap();
            let (want, mag) = reference::matmul(&xv, &deq, None, m, n, k);
            MATMUL
                .check(&be.download_f32(&y).unwrap(), &want, &mag)
                .unwrap_or_else(|e| panic!("m={m} threads={threads}: {e:?}"));
        }
        // A weight row with a NaN cannot be quantized: a typed error naming it.
        let mut bad = wb.clone();
        bad[3 * k + 1] = bf16::NAN;
        let err = be
            .upload_weight(HostData::bf16(&bad), Shape::from([n, k]))
            .unwrap_err();
        assert!(matches!(err, TensorError::Quantize { row: 3, .. }), "{err}");
        // i8 exists only as weight panels.
        assert!(be.zeros(DType::I8, Shape::from([2])).is_err());
        assert!(
            be.upload(HostData::new(DType::I8, &[0u8; 2]), Shape::from([2]))
                .is_err()
        );
    }
}

/// The bf16 dot-product kernels (AVX512-BF16) against the f64 reference of
/// the same product with `x` rounded to bf16, on the edge shapes of their
/// 6 × 64 tile, 512-pair k blocks, odd k, 1–3 threads, misaligned x and a
/// NaN in x.
#[test]
fn matmul_bf16dot_edges() {
    use tensor::cpu::matmul::bf16dot;
    use tensor::testing::expect_avx512bf16;
    let Some(bf) = expect_avx512bf16() else {
        println!("bf16dot: this CPU has no AVX512-BF16; skipped");
        return;
    };
    // The kernels do not depend on the tier: any tier's token reaches them.
    let tok = IsaToken::new(Isa::Scalar).unwrap();
    let pools: Vec<_> = (1..=3).map(pool).collect();
    let mut worst = ErrorStats::default();
    let mut cases = Vec::new();
    let (mr, nr) = (bf16dot::MR, bf16dot::NR);
    for m in [1, 2, 3, mr - 1, mr, mr + 1, 2 * mr + 1, 97] {
        for n in [1, 15, 16, 17, nr - 1, nr, nr + 1, 130] {
            for k in [0, 1, 2, 3, 31, 32, 33, 63, 64, 65, 1023, 1024, 1025, 2049] {
                cases.push((m, n, k, (m + n + k) % 2 == 0, 1, 0));
            }
        }
    }
    for threads in 1..=3 {
        for (m, n, k) in [(1, 257, 1025), (2, 300, 257), (63, 65, 257), (130, 97, 300)] {
            cases.push((m, n, k, true, threads, 0));
        }
    }
    for off in shapes::misaligned_offsets(16) {
        cases.push((1, 37, 67, true, 1, off));
        cases.push((9, 37, 67, false, 2, off));
    }
    for (m, n, k, has_bias, threads, x_off) in cases {
        let name = format!("m={m} n={n} k={k} bias={has_bias} threads={threads} x_off={x_off}");
        let mut rng = Rng::for_case("matmul bf16dot", &name);
        let xbuf = rng.vec(x_off + m * k, 1.0);
        let w: Vec<bf16> = rng
            .vec(n * k, 0.5)
            .iter()
            .map(|&v| bf16::from_f32(v))
            .collect();
        let bias = has_bias.then(|| rng.vec(n, 0.5));
        let x = &xbuf[x_off..];
        let packed = bf16dot::pack(&w, n, k);
        let mut y = vec![f32::NAN; m * n];
        let args = MatmulArgs {
            x,
            w: WeightRef::Bf16Pairs {
                w: &packed,
                tok: bf,
            },
            bias: bias.as_deref(),
            m,
            n,
            k,
        };
        matmul::matmul(tok, pools[threads - 1].as_ref(), &args, &mut y);
        // Prompts round x to bf16; decode (m = 1) runs in f32 on the exact x.
        let xr: Vec<f32> = match m {
            1 => x.to_vec(),
            _ => x.iter().map(|&v| bf16dot::round(v)).collect(),
        };
        let (want, mag) = reference::matmul(&xr, &w, bias.as_deref(), m, n, k);
        match MATMUL.check(&y, &want, &mag) {
            Ok(st) => {
                worst.max_abs = worst.max_abs.max(st.max_abs);
                worst.max_rel = worst.max_rel.max(st.max_rel);
            }
            Err(e) => panic!("{name}: {e:?}"),
        }
    }
    println!("matmul bf16dot: worst {worst:?}");
    // NaN in x[k/2]: through the vector rounding (k = 70) and the scalar
    // one (k = 5, shorter than a vector's 32 values).
    for k in [5, 70] {
        let n = 20;
        let w = bf16dot::pack(&vec![bf16::from_f32(0.5); n * k], n, k);
        for m in [1, 9] {
            nan_reaches_its_row(tok, WeightRef::Bf16Pairs { w: &w, tok: bf }, (m, n, k));
        }
    }
}

/// Shapes whose products wrap around `usize` are refused before any kernel
/// runs, for bf16 pairs as for the other formats (a wrapped length check
/// would let the tile stores run past `y`).
#[test]
fn matmul_refuses_wrapping_shapes() {
    let (m, n, k) = (10, 0x3333_3333_3333_3380usize, 10);
    let (x, wb, wq) = (vec![0.0f32; 100], vec![bf16::ZERO; 384], vec![0i8; 384]);
    let scale = vec![1.0f32; 4];
    let mut formats = vec![WeightRef::BF16(&wb)];
    let pairs = vec![0u32; 384];
    if let Some(tok) = tensor::testing::expect_avx512bf16() {
        formats.push(WeightRef::Bf16Pairs { w: &pairs, tok });
    }
    formats.push(WeightRef::I8 {
        q: &wq,
        scale: &scale,
    });
    for w in formats {
        let args = MatmulArgs {
            x: &x,
            w,
            bias: None,
            m,
            n,
            k,
        };
        let mut y = vec![0.0f32; 768];
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            matmul::matmul(IsaToken::new(Isa::Scalar).unwrap(), None, &args, &mut y)
        }));
        let msg = run.expect_err("a wrapping shape must be refused");
        let msg = (msg.downcast_ref::<String>().cloned())
            .or_else(|| msg.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        assert!(msg.contains("w is not the panels"), "{w:?}: {msg}");
    }
}

/// `upload_weight` packs bytes aligned for their dtype in place and copies
/// misaligned ones first: every start offset gives the same panels (as
/// downloaded) and the same products, in every weight format the host has.
#[test]
fn cpu_upload_weight_any_alignment() {
    use tensor::cpu::{CpuBackend, WeightFormat};
    use tensor::{Backend, HostData, Shape, op};
    let (n, k, m) = (37, 70, 3);
    let mut rng = Rng::for_case("upload alignment", "");
    let wf = rng.vec(n * k, 0.5);
    let xv = rng.vec(m * k, 1.0);
    let mut formats = vec![WeightFormat::Native, WeightFormat::Int8];
    if tensor::testing::expect_avx512bf16().is_some() {
        formats.push(WeightFormat::Bf16Dot);
    }
    for format in formats {
        let be = CpuBackend::with(Isa::best(), 2)
            .unwrap()
            .with_weight_format(format)
            .unwrap();
        let x = be.upload(HostData::f32(&xv), Shape::from([m, k])).unwrap();
        let wb: Vec<bf16> = wf.iter().map(|&v| bf16::from_f32(v)).collect();
        let wh: Vec<f16> = wf.iter().map(|&v| f16::from_f32(v)).collect();
        let raw: [(DType, &[u8]); 3] = [
            (DType::F32, bytemuck::cast_slice(&wf)),
            (DType::BF16, bytemuck::cast_slice(&wb)),
            (DType::F16, bytemuck::cast_slice(&wh)),
        ];
        for (dtype, bytes) in raw {
            let mut first: Option<(Vec<f32>, Vec<f32>)> = None;
            for off in 0..4 {
                let mut host = vec![0xa5u8; off];
                host.extend_from_slice(bytes);
                let w = be
                    .upload_weight(HostData::new(dtype, &host[off..]), Shape::from([n, k]))
                    .unwrap();
                let mut y = be.zeros(DType::F32, Shape::from([m, n])).unwrap();
                be.matmul(op::Matmul {
                    x: &x,
                    w: &w,
                    bias: None,
                    out: &mut y,
                })
                .unwrap();
                let got = (be.download_f32(&w).unwrap(), be.download_f32(&y).unwrap());
                match &first {
                    None => first = Some(got),
                    Some(want) => assert!(
                        *want == got,
                        "{format:?} {dtype:?}: offset {off} differs from offset 0"
                    ),
                }
            }
        }
    }
}
