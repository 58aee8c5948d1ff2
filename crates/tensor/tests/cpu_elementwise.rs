//! silu_mul, exp and add_assign on every CPU tier against their f64
//! references (`kernels/elementwise.md`): shared edge lengths, misaligned
//! starts, large (±88, ±100, ±1e4) and special (±inf, NaN, subnormal)
//! inputs, and a dense sweep of `exp` over its whole finite range.
//! Tolerances: `testing::tolerance::{SILU_MUL, EXP, ADD}`.

#[macro_use]
mod common;

use common::{Worst, assert_pad, check, merge, padded, token};
use tensor::cpu::{Isa, elementwise};
use tensor::testing::tolerance::{ADD, EXP, SILU_MUL};
use tensor::testing::{rng::Rng, shapes};

#[derive(Clone, Copy, Debug)]
struct EwCase {
    isa: Isa,
    n: usize,
    /// gate (or x) drawn uniform in ±scale.
    scale: f32,
    /// Start offsets (elements) of gate, up and out (x, y for add).
    offs: [usize; 3],
}

fn silu_run(c: EwCase, g: &[f32], u: &[f32]) -> Worst {
    let [go, uo, oo] = c.offs;
    let (gb, ub) = (padded(g, go), padded(u, uo));
    let mut ob = padded(&vec![0.0; c.n], oo);
    elementwise::silu_mul(
        token(c.isa),
        &gb[go..go + c.n],
        &ub[uo..uo + c.n],
        &mut ob[oo..oo + c.n],
    );
    assert_pad(&c, &ob, oo, c.n);
    check(
        SILU_MUL,
        &c,
        &ob[oo..oo + c.n],
        &elementwise::reference::silu_mul(g, u),
        &[],
    )
}

fn silu_case(c: EwCase) -> Worst {
    let mut rng = Rng::for_case("silu_mul", &format!("{c:?}"));
    let g = rng.vec(c.n, c.scale);
    let u = rng.vec(c.n, 2.0);
    silu_run(c, &g, &u)
}

fn silu_mul_edges(isa: Isa) -> Worst {
    let v = isa.lanes();
    let mut worst = Worst::default();
    let base = EwCase {
        isa,
        n: 0,
        scale: 8.0,
        offs: [0; 3],
    };
    let mut ns = shapes::edge_lengths(v, 0);
    ns.push(8192);
    for (i, &n) in ns.iter().enumerate() {
        for scale in [1.0, 8.0, 100.0, 1e4] {
            let offs = [i % v, (i + 1) % v, (i + 2) % v];
            merge(
                &mut worst,
                silu_case(EwCase {
                    n,
                    scale,
                    offs,
                    ..base
                }),
            );
        }
    }
    for off in shapes::misaligned_offsets(v) {
        let offs = [off, (off + 1) % v, (2 * off + 3) % v];
        merge(
            &mut worst,
            silu_case(EwCase {
                n: 4 * v + 3,
                offs,
                ..base
            }),
        );
    }
    worst
}

fn silu_mul_special(isa: Isa) -> Worst {
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let gs = [
        0.0, -0.0, 1.0, -1.0, 1e-40, -1e-40, 20.0, -20.0, 87.0, -87.0, 88.0, -88.0, 88.72, -88.72,
        89.0, -89.0, 100.0, -100.0, 1e4, -1e4, 3e38, -3e38, inf, -inf, nan,
    ];
    let mut g = Vec::new();
    let mut u = Vec::new();
    for &gv in &gs {
        for uv in [1.0, -2.5, 0.0, nan] {
            g.push(gv);
            u.push(uv);
        }
        // u = ±inf only where silu(g) is not an f32 underflow of a nonzero
        // value (the f64 reference would give ∓inf there, f32 gives NaN);
        // NaN and −inf gates still get them.
        if gv.is_nan() || gv >= -80.0 || gv == -inf {
            g.extend([gv, gv]);
            u.extend([inf, -inf]);
        }
    }
    let c = EwCase {
        isa,
        n: g.len(),
        scale: 0.0,
        offs: [1, 2, 3],
    };
    let st = silu_run(c, &g, &u);
    let mut out = vec![0.0; 4];
    elementwise::silu_mul(
        token(isa),
        &[-inf, inf, nan, 1.0],
        &[1.0, 1.0, 1.0, nan],
        &mut out,
    );
    assert!(
        out[0].is_nan() && out[1] == inf && out[2].is_nan() && out[3].is_nan(),
        "{isa}: {out:?}"
    );
    st
}

fn exp_run(c: EwCase, x: &[f32]) -> Worst {
    let [xo, _, oo] = c.offs;
    let xb = padded(x, xo);
    let mut ob = padded(&vec![0.0; c.n], oo);
    elementwise::exp(token(c.isa), &xb[xo..xo + c.n], &mut ob[oo..oo + c.n]);
    assert_pad(&c, &ob, oo, c.n);
    check(
        EXP,
        &c,
        &ob[oo..oo + c.n],
        &elementwise::reference::exp(x),
        &[],
    )
}

fn exp_ulp(isa: Isa) -> Worst {
    let v = isa.lanes();
    let mut worst = Worst::default();
    // A dense sweep over the whole finite-result range, including the
    // subnormal results below −87.3 and the overflow edge at 88.72.
    let (lo, hi, n) = (-104.5f32, 89.5f32, 1 << 18);
    let x: Vec<f32> = (0..n)
        .map(|i| lo + (hi - lo) * (i as f32 / n as f32))
        .collect();
    merge(
        &mut worst,
        exp_run(
            EwCase {
                isa,
                n,
                scale: 0.0,
                offs: [0, 0, 1],
            },
            &x,
        ),
    );
    // Random small arguments (|r| ≤ ln2/2 exercises the polynomial alone).
    let mut rng = Rng::for_case("exp", isa.name());
    for scale in [0.35, 5.0, 90.0] {
        let x = rng.vec(1 << 14, scale);
        merge(
            &mut worst,
            exp_run(
                EwCase {
                    isa,
                    n: x.len(),
                    scale,
                    offs: [1, 0, 0],
                },
                &x,
            ),
        );
    }
    // Specials and edges, at every length and misalignment.
    let sp = [
        0.0,
        -0.0,
        1e-30,
        -1e-30,
        1e-45,
        88.0,
        88.72,
        88.7228,
        88.723,
        89.0,
        100.0,
        1e4,
        3e38,
        -87.33,
        -87.34,
        -100.0,
        -103.97,
        -103.98,
        -104.0,
        -1e4,
        -3e38,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MAX,
        f32::MIN,
    ];
    for off in shapes::misaligned_offsets(v) {
        for &n in &shapes::edge_lengths(v, 0) {
            let x: Vec<f32> = (0..n).map(|i| sp[(i + off) % sp.len()]).collect();
            merge(
                &mut worst,
                exp_run(
                    EwCase {
                        isa,
                        n,
                        scale: 0.0,
                        offs: [off, 0, (off + 1) % v],
                    },
                    &x,
                ),
            );
        }
    }
    let mut out = [0.0f32; 4];
    elementwise::exp(
        token(isa),
        &[f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -1e4],
        &mut out,
    );
    assert!(
        out[0] == f32::INFINITY
            && out[1].to_bits() == 0
            && out[2].is_nan()
            && out[3].to_bits() == 0,
        "{isa}: {out:?}"
    );
    worst
}

fn add_assign_edges(isa: Isa) -> Worst {
    let v = isa.lanes();
    let mut worst = Worst::default();
    let mut cases = Vec::new();
    for (i, &n) in shapes::edge_lengths(v, 0).iter().enumerate() {
        cases.push(EwCase {
            isa,
            n,
            scale: 1.0,
            offs: [i % v, (i + 3) % v, 0],
        });
    }
    for off in shapes::misaligned_offsets(v) {
        cases.push(EwCase {
            isa,
            n: 4 * v + 3,
            scale: 1e3,
            offs: [off, (2 * off + 1) % v, 0],
        });
    }
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let sp = [inf, -inf, nan, 0.0, -0.0, f32::MAX, 1e-45, -1.0];
    for c in cases {
        let mut rng = Rng::for_case("add_assign", &format!("{c:?}"));
        let mut x = rng.vec(c.n, c.scale);
        let mut y = rng.vec(c.n, c.scale);
        // Specials on a stride coprime with every lane count.
        for i in (0..c.n).step_by(3) {
            x[i] = sp[i % sp.len()];
            y[i] = sp[(i / 3) % sp.len()];
        }
        let [xo, yo, _] = c.offs;
        let mut xb = padded(&x, xo);
        let yb = padded(&y, yo);
        elementwise::add_assign(token(isa), &mut xb[xo..xo + c.n], &yb[yo..yo + c.n]);
        assert_pad(&c, &xb, xo, c.n);
        merge(
            &mut worst,
            check(
                ADD,
                &c,
                &xb[xo..xo + c.n],
                &elementwise::reference::add(&x, &y),
                &[],
            ),
        );
    }
    worst
}

tests!(Isa::Scalar;
    silu_mul_scalar_edges => silu_mul_edges,
    silu_mul_scalar_special => silu_mul_special,
    exp_scalar_ulp => exp_ulp,
    add_assign_scalar_edges => add_assign_edges,
);
tests!(Isa::Avx2;
    silu_mul_avx2_edges => silu_mul_edges,
    silu_mul_avx2_special => silu_mul_special,
    exp_avx2_ulp => exp_ulp,
    add_assign_avx2_edges => add_assign_edges,
);
tests!(Isa::Avx512;
    silu_mul_avx512_edges => silu_mul_edges,
    silu_mul_avx512_special => silu_mul_special,
    exp_avx512_ulp => exp_ulp,
    add_assign_avx512_edges => add_assign_edges,
);
tests!(Isa::Neon;
    silu_mul_neon_edges => silu_mul_edges,
    silu_mul_neon_special => silu_mul_special,
    exp_neon_ulp => exp_ulp,
    add_assign_neon_edges => add_assign_edges,
);
