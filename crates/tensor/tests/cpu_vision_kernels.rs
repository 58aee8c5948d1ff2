//! LayerNorm and the two GELUs on every CPU tier against their f64
//! references (`kernels/layer_norm.md`, `kernels/gelu.md`): shared edge
//! lengths plus the model widths, misaligned starts (padded both sides,
//! padding checked untouched), rows with a large mean offset, constant rows,
//! outliers, NaN/±inf rows; GELU densely over [−20, 20], at ±100, ±1e4 and
//! at special values. Tolerances: `testing::tolerance::{LAYER_NORM,
//! GELU_TANH, GELU_ERF}`. Names are `{op}_{isa}_{case}`; a tier the host
//! lacks prints a skip line.

#[macro_use]
mod common;

use common::{Worst, assert_pad, check, merge, padded, token};
use tensor::Gelu;
use tensor::cpu::{Isa, vision};
use tensor::testing::tolerance::{GELU_ERF, GELU_TANH, LAYER_NORM, Tolerance};
use tensor::testing::{rng::Rng, shapes};

/// Widths of the SigLIP2 towers and connector (768, 1152, 3072 = 4·768,
/// 4608 = 4·1152) and small head-like ones.
const MODEL_DS: [usize; 6] = [32, 40, 768, 1152, 3072, 4608];

#[derive(Clone, Copy, Debug)]
struct LnCase {
    isa: Isa,
    rows: usize,
    d: usize,
    /// Rows are `offset + uniform(±scale)`.
    offset: f32,
    scale: f32,
    eps: f32,
    /// Start offsets (elements) of x, w, b and out inside padded buffers.
    offs: [usize; 4],
}

fn ln_run(c: LnCase, x: &[f32], w: &[f32], b: &[f32]) -> Worst {
    let [xo, wo, bo, oo] = c.offs;
    let (xb, wb, bb) = (padded(x, xo), padded(w, wo), padded(b, bo));
    let n = c.rows * c.d;
    let mut ob = padded(&vec![0.0; n], oo);
    vision::layer_norm(
        token(c.isa),
        &xb[xo..xo + n],
        &wb[wo..wo + c.d],
        &bb[bo..bo + c.d],
        c.eps,
        &mut ob[oo..oo + n],
    );
    assert_pad(&c, &ob, oo, n);
    let want = vision::reference::layer_norm(x, w, b, c.eps);
    let worst = check(LAYER_NORM, &c, &ob[oo..oo + n], &want, &[]);
    // Cancellation between `n·w` and `b` makes |x − r|/|r| meaningless
    // here; record instead the absolute floor that a relative 1e-6 needs.
    let floor = ob[oo..oo + n]
        .iter()
        .zip(&want)
        .filter(|(g, r)| !(g.is_nan() && r.is_nan()))
        .map(|(&g, &r)| (g as f64 - r as f64).abs() - 1e-6 * (r as f64).abs())
        .fold(0.0, f64::max);
    LN_FLOOR.set(LN_FLOOR.get().max(floor));
    worst
}

thread_local! {
    /// max(|x − r| − 1e-6·|r|) over a layer_norm sweep (one test, one thread).
    static LN_FLOOR: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

fn report_floor(isa: Isa, sweep: &str, worst: Worst) -> Worst {
    println!(
        "layer_norm {isa} {sweep}: |x-r| <= {:.3e} + 1e-6·|r| everywhere",
        LN_FLOOR.get()
    );
    worst
}

fn ln_inputs(c: &LnCase) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = Rng::for_case("layer_norm", &format!("{c:?}"));
    let x = rng
        .vec(c.rows * c.d, c.scale)
        .into_iter()
        .map(|v| c.offset + v)
        .collect();
    let w = rng.vec(c.d, 0.5).into_iter().map(|v| 1.0 + v).collect();
    let b = rng.vec(c.d, 0.5);
    (x, w, b)
}

fn ln_case(c: LnCase) -> Worst {
    let (x, w, b) = ln_inputs(&c);
    ln_run(c, &x, &w, &b)
}

fn layer_norm_edges(isa: Isa) -> Worst {
    let v = isa.lanes();
    let mut worst = Worst::default();
    let base = LnCase {
        isa,
        rows: 1,
        d: 1,
        offset: 0.0,
        scale: 1.0,
        eps: 1e-6,
        offs: [0; 4],
    };
    // Lengths around the vector width and the 4-vector unrolled block, the
    // model widths; several rows; small and large magnitudes; both epsilons.
    let mut ds = shapes::edge_lengths(v, 4 * v);
    ds.extend(MODEL_DS);
    for (i, &d) in ds.iter().enumerate() {
        for rows in [1, 3] {
            for (scale, eps) in [(1.0, 1e-6), (1e-3, 1e-5), (30.0, 1e-6)] {
                let offs = [i % v, (i + 1) % v, (i + 2) % v, (i + 3) % v];
                merge(
                    &mut worst,
                    ln_case(LnCase {
                        rows,
                        d,
                        scale,
                        eps,
                        offs,
                        ..base
                    }),
                );
            }
        }
    }
    // Misaligned starts of each operand.
    for off in shapes::misaligned_offsets(v) {
        for d in [4 * v + 3, 63] {
            let offs = [off, (off + 1) % v, (2 * off + 1) % v, (3 * off + 2) % v];
            merge(
                &mut worst,
                ln_case(LnCase {
                    rows: 2,
                    d,
                    offs,
                    ..base
                }),
            );
        }
    }
    report_floor(isa, "edges", worst)
}

/// Rows far from zero mean (the classic f32 trap: a one-pass `E[x²] − E[x]²`
/// or a rounded mean subtracted from `x` loses the small spread), and rows
/// with a few large outliers, as SigLIP's residual stream has.
fn layer_norm_offset(isa: Isa) -> Worst {
    let v = isa.lanes();
    let mut worst = Worst::default();
    let mut ds = MODEL_DS.to_vec();
    ds.extend([1, 2, v + 1, 4 * v + 3, 257]);
    for (i, &d) in ds.iter().enumerate() {
        for (offset, scale) in [
            (1e3, 1.0),
            (-5e3, 0.1),
            (1e4, 1.0),
            (3e2, 1e-2),
            (1e3, 1e-3),
        ] {
            let c = LnCase {
                isa,
                rows: 3,
                d,
                offset,
                scale,
                eps: 1e-6,
                offs: [i % v, 0, (i + 1) % v, (i + 2) % v],
            };
            merge(&mut worst, ln_case(c));
        }
        // Outliers: a few elements of ±200 in unit noise around 5.
        let c = LnCase {
            isa,
            rows: 2,
            d,
            offset: 5.0,
            scale: 1.0,
            eps: 1e-6,
            offs: [1, 0, 0, 1],
        };
        let (mut x, w, b) = ln_inputs(&c);
        for j in (0..x.len()).step_by(97) {
            x[j] = if j % 2 == 0 { 200.0 } else { -200.0 };
        }
        merge(&mut worst, ln_run(c, &x, &w, &b));
    }
    report_floor(isa, "offset", worst)
}

/// Constant rows (variance 0: the output is `b` exactly), zero rows,
/// NaN/±inf rows, and a clean row after them.
fn layer_norm_special(isa: Isa) -> Worst {
    let v = isa.lanes();
    let mut worst = Worst::default();
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    for d in [1, 2, v + 1, 2 * v + 1, 65, 768] {
        let c = LnCase {
            isa,
            rows: 9,
            d,
            offset: 0.0,
            scale: 1.0,
            eps: 1e-6,
            offs: [1, 0, 2, 3],
        };
        let (mut x, w, b) = ln_inputs(&c);
        let consts = [0.0, 1.0, 1e3, -7.25, 0.1];
        for (r, &k) in consts.iter().enumerate() {
            x[r * d..(r + 1) * d].fill(k);
        }
        x[5 * d + d / 2] = nan; // row 5: all NaN
        x[6 * d + d / 3] = inf; // row 6: all NaN
        x[7 * d] = -inf; // row 7: all NaN (first element: the shift)
        if d > 1 {
            x[7 * d + d - 1] = inf;
        }
        merge(&mut worst, ln_run(c, &x, &w, &b));
        let mut out = vec![0.0; x.len()];
        vision::layer_norm(token(isa), &x, &w, &b, 1e-6, &mut out);
        for r in 0..consts.len() {
            assert!(
                out[r * d..(r + 1) * d]
                    .iter()
                    .zip(&b)
                    .all(|(o, bb)| o.to_bits() == bb.to_bits() || (*o == 0.0 && *bb == 0.0)),
                "{c:?}: constant row {r} is not b: {:?}",
                &out[r * d..(r + 1) * d]
            );
        }
        assert!(
            out[5 * d..8 * d].iter().all(|v| v.is_nan()),
            "{c:?}: NaN/inf rows"
        );
        assert!(
            out[8 * d..].iter().all(|v| v.is_finite()),
            "{c:?}: clean row"
        );
    }
    // d = 0 and rows = 0 are no-ops.
    vision::layer_norm(token(isa), &[], &[], &[], 1e-6, &mut []);
    vision::layer_norm(token(isa), &[], &[1.0; 3], &[0.0; 3], 1e-6, &mut []);
    report_floor(isa, "special", worst)
}

#[derive(Clone, Copy, Debug)]
struct GeluCase {
    isa: Isa,
    kind: Gelu,
    n: usize,
    /// x drawn uniform in ±scale.
    scale: f32,
    /// Start offsets (elements) of x and out.
    offs: [usize; 2],
}

fn tol(kind: Gelu) -> Tolerance {
    match kind {
        Gelu::Tanh => GELU_TANH,
        Gelu::Erf => GELU_ERF,
    }
}

fn gelu_run(c: GeluCase, x: &[f32]) -> Worst {
    let [xo, oo] = c.offs;
    let xb = padded(x, xo);
    let mut ob = padded(&vec![0.0; c.n], oo);
    vision::gelu(
        token(c.isa),
        &xb[xo..xo + c.n],
        c.kind,
        &mut ob[oo..oo + c.n],
    );
    assert_pad(&c, &ob, oo, c.n);
    let want = vision::reference::gelu(x, c.kind);
    check(tol(c.kind), &c, &ob[oo..oo + c.n], &want, &[])
}

fn gelu_edges(isa: Isa, kind: Gelu) -> Worst {
    let v = isa.lanes();
    let mut worst = Worst::default();
    let mut ns = shapes::edge_lengths(v, 0);
    ns.push(8192);
    let mut cases = Vec::new();
    for (i, &n) in ns.iter().enumerate() {
        for scale in [1.0, 4.0, 20.0] {
            cases.push(GeluCase {
                isa,
                kind,
                n,
                scale,
                offs: [i % v, (i + 1) % v],
            });
        }
    }
    for off in shapes::misaligned_offsets(v) {
        cases.push(GeluCase {
            isa,
            kind,
            n: 4 * v + 3,
            scale: 4.0,
            offs: [off, (2 * off + 1) % v],
        });
    }
    for c in cases {
        let mut rng = Rng::for_case("gelu", &format!("{c:?}"));
        let x = rng.vec(c.n, c.scale);
        merge(&mut worst, gelu_run(c, &x));
    }
    worst
}

/// A dense sweep of [−20, 20] (2¹⁸ points, both tails included) and a
/// finer one of the transition region [−6, 6].
fn gelu_dense(isa: Isa, kind: Gelu) -> Worst {
    let mut worst = Worst::default();
    for (lo, hi, n) in [(-20.0f32, 20.0f32, 1 << 18), (-6.0, 6.0, 1 << 18)] {
        let x: Vec<f32> = (0..=n)
            .map(|i| lo + (hi - lo) * (i as f32 / n as f32))
            .collect();
        let c = GeluCase {
            isa,
            kind,
            n: x.len(),
            scale: hi,
            offs: [0, 1],
        };
        merge(&mut worst, gelu_run(c, &x));
    }
    worst
}

fn gelu_special(isa: Isa, kind: Gelu) -> Worst {
    let v = isa.lanes();
    let mut worst = Worst::default();
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let sp = [
        0.0,
        -0.0,
        1e-45,
        -1e-45,
        1e-40,
        -1e-40,
        1e-30,
        -1e-30,
        1e-7,
        -1e-7,
        5.0,
        -5.0,
        5.65,
        -5.65,
        9.5,
        -9.5,
        14.0,
        -14.0,
        100.0,
        -100.0,
        1e4,
        -1e4,
        1e13,
        -1e13,
        2e19,
        -2e19,
        3e38,
        -3e38,
        f32::MAX,
        f32::MIN,
        inf,
        -inf,
        nan,
    ];
    for off in shapes::misaligned_offsets(v) {
        for &n in &shapes::edge_lengths(v, 0) {
            let x: Vec<f32> = (0..n).map(|i| sp[(i + off) % sp.len()]).collect();
            let c = GeluCase {
                isa,
                kind,
                n,
                scale: 0.0,
                offs: [off, (off + 1) % v],
            };
            merge(&mut worst, gelu_run(c, &x));
        }
    }
    let x = [inf, -inf, nan, 1e4, -1e4, 100.0, -100.0, 0.0];
    let mut out = [0.0f32; 8];
    vision::gelu(token(isa), &x, kind, &mut out);
    assert!(
        out[0] == inf
            && out[1].is_nan()
            && out[2].is_nan()
            && out[3] == 1e4
            && out[4] == 0.0
            && out[5] == 100.0
            && out[6] == 0.0
            && out[7] == 0.0,
        "{isa} {kind:?}: {out:?}"
    );
    worst
}

fn gelu_tanh_edges(isa: Isa) -> Worst {
    gelu_edges(isa, Gelu::Tanh)
}
fn gelu_tanh_dense(isa: Isa) -> Worst {
    gelu_dense(isa, Gelu::Tanh)
}
fn gelu_tanh_special(isa: Isa) -> Worst {
    gelu_special(isa, Gelu::Tanh)
}
fn gelu_erf_edges(isa: Isa) -> Worst {
    gelu_edges(isa, Gelu::Erf)
}
fn gelu_erf_dense(isa: Isa) -> Worst {
    gelu_dense(isa, Gelu::Erf)
}
fn gelu_erf_special(isa: Isa) -> Worst {
    gelu_special(isa, Gelu::Erf)
}

tests!(Isa::Scalar;
    layer_norm_scalar_edges => layer_norm_edges,
    layer_norm_scalar_offset => layer_norm_offset,
    layer_norm_scalar_special => layer_norm_special,
    gelu_tanh_scalar_edges => gelu_tanh_edges,
    gelu_tanh_scalar_dense => gelu_tanh_dense,
    gelu_tanh_scalar_special => gelu_tanh_special,
    gelu_erf_scalar_edges => gelu_erf_edges,
    gelu_erf_scalar_dense => gelu_erf_dense,
    gelu_erf_scalar_special => gelu_erf_special,
);
tests!(Isa::Avx2;
    layer_norm_avx2_edges => layer_norm_edges,
    layer_norm_avx2_offset => layer_norm_offset,
    layer_norm_avx2_special => layer_norm_special,
    gelu_tanh_avx2_edges => gelu_tanh_edges,
    gelu_tanh_avx2_dense => gelu_tanh_dense,
    gelu_tanh_avx2_special => gelu_tanh_special,
    gelu_erf_avx2_edges => gelu_erf_edges,
    gelu_erf_avx2_dense => gelu_erf_dense,
    gelu_erf_avx2_special => gelu_erf_special,
);
tests!(Isa::Avx512;
    layer_norm_avx512_edges => layer_norm_edges,
    layer_norm_avx512_offset => layer_norm_offset,
    layer_norm_avx512_special => layer_norm_special,
    gelu_tanh_avx512_edges => gelu_tanh_edges,
    gelu_tanh_avx512_dense => gelu_tanh_dense,
    gelu_tanh_avx512_special => gelu_tanh_special,
    gelu_erf_avx512_edges => gelu_erf_edges,
    gelu_erf_avx512_dense => gelu_erf_dense,
    gelu_erf_avx512_special => gelu_erf_special,
);
tests!(Isa::Neon;
    layer_norm_neon_edges => layer_norm_edges,
    layer_norm_neon_offset => layer_norm_offset,
    layer_norm_neon_special => layer_norm_special,
    gelu_tanh_neon_edges => gelu_tanh_edges,
    gelu_tanh_neon_dense => gelu_tanh_dense,
    gelu_tanh_neon_special => gelu_tanh_special,
    gelu_erf_neon_edges => gelu_erf_edges,
    gelu_erf_neon_dense => gelu_erf_dense,
    gelu_erf_neon_special => gelu_erf_special,
);
