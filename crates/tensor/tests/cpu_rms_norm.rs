//! RMSNorm on every CPU tier against the f64 reference
//! (`kernels/rms_norm.md`): shared edge lengths, misaligned starts (padded
//! both sides, padding checked untouched), several rows, zero/NaN/Inf rows.
//! Tolerance: `testing::tolerance::RMS_NORM`. Names are `{op}_{isa}_{case}`;
//! a tier the host lacks prints a skip line.

#[macro_use]
mod common;

use common::{Worst, assert_pad, check, merge, padded, token};
use tensor::cpu::{Isa, norm};
use tensor::testing::tolerance::RMS_NORM;
use tensor::testing::{rng::Rng, shapes};

#[derive(Clone, Copy, Debug)]
struct NormCase {
    isa: Isa,
    rows: usize,
    d: usize,
    scale: f32,
    eps: f32,
    /// Start offsets (elements) of x, w and out inside padded buffers.
    offs: [usize; 3],
}

fn norm_run(c: NormCase, x: &[f32], w: &[f32]) -> Worst {
    let [xo, wo, oo] = c.offs;
    let (xb, wb) = (padded(x, xo), padded(w, wo));
    let n = c.rows * c.d;
    let mut ob = padded(&vec![0.0; n], oo);
    norm::rms_norm(
        token(c.isa),
        &xb[xo..xo + n],
        &wb[wo..wo + c.d],
        c.eps,
        &mut ob[oo..oo + n],
    );
    assert_pad(&c, &ob, oo, n);
    let want = norm::reference::rms_norm(x, w, c.eps);
    check(RMS_NORM, &c, &ob[oo..oo + n], &want, &[])
}

fn norm_inputs(c: &NormCase) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::for_case("rms_norm", &format!("{c:?}"));
    let x = rng.vec(c.rows * c.d, c.scale);
    let w = rng.vec(c.d, 0.5).into_iter().map(|v| 1.0 + v).collect();
    (x, w)
}

fn rms_norm_edges(isa: Isa) -> Worst {
    let v = isa.lanes();
    let mut worst = Worst::default();
    let base = NormCase {
        isa,
        rows: 1,
        d: 1,
        scale: 1.0,
        eps: 1e-5,
        offs: [0; 3],
    };
    // Lengths around the vector width and the 4-vector unrolled block, plus
    // model sizes; several rows; small and large magnitudes.
    let mut ds = shapes::edge_lengths(v, 4 * v);
    ds.extend([1024, 2048, 8192]);
    for (i, &d) in ds.iter().enumerate() {
        for rows in [1, 3] {
            for (scale, eps) in [(1.0, 1e-5), (1e-3, 1e-6), (30.0, 1e-5)] {
                let c = NormCase {
                    rows,
                    d,
                    scale,
                    eps,
                    offs: [i % v, (i + 1) % v, 0],
                    ..base
                };
                let (x, w) = norm_inputs(&c);
                merge(&mut worst, norm_run(c, &x, &w));
            }
        }
    }
    // Misaligned starts of each operand.
    for off in shapes::misaligned_offsets(v) {
        for d in [4 * v + 3, 63] {
            let c = NormCase {
                rows: 2,
                d,
                offs: [off, (off + 1) % v, (2 * off + 1) % v],
                ..base
            };
            let (x, w) = norm_inputs(&c);
            merge(&mut worst, norm_run(c, &x, &w));
        }
    }
    worst
}

fn rms_norm_special(isa: Isa) -> Worst {
    let mut worst = Worst::default();
    for d in [1, 2 * isa.lanes() + 1, 65] {
        let c = NormCase {
            isa,
            rows: 5,
            d,
            scale: 1.0,
            eps: 1e-5,
            offs: [1, 0, 2],
        };
        let (mut x, w) = norm_inputs(&c);
        x[..d].fill(0.0); // row 0: zeros → zeros (eps keeps it finite)
        x[d + d / 2] = f32::NAN; // row 1: all NaN
        x[2 * d + d / 3] = f32::INFINITY; // row 2: NaN there, ±0 elsewhere
        x[3 * d] = f32::NEG_INFINITY; // row 3: likewise
        let st = norm_run(c, &x, &w);
        merge(&mut worst, st);
        let mut out = vec![0.0; x.len()];
        norm::rms_norm(token(isa), &x, &w, 1e-5, &mut out);
        assert!(out[..d].iter().all(|v| *v == 0.0), "{c:?}: zero row");
        assert!(out[d..2 * d].iter().all(|v| v.is_nan()), "{c:?}: NaN row");
        assert!(
            out[4 * d..].iter().all(|v| v.is_finite()),
            "{c:?}: clean row"
        );
    }
    worst
}

tests!(Isa::Scalar;
    rms_norm_scalar_edges => rms_norm_edges,
    rms_norm_scalar_special => rms_norm_special,
);
tests!(Isa::Avx2;
    rms_norm_avx2_edges => rms_norm_edges,
    rms_norm_avx2_special => rms_norm_special,
);
tests!(Isa::Avx512;
    rms_norm_avx512_edges => rms_norm_edges,
    rms_norm_avx512_special => rms_norm_special,
);
tests!(Isa::Neon;
    rms_norm_neon_edges => rms_norm_edges,
    rms_norm_neon_special => rms_norm_special,
);
