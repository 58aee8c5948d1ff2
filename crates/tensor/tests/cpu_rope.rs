//! Rope on every CPU tier against the f64 reference (`kernels/rope.md`):
//! head dims 2…514 (real ones and 2·edge lengths), several heads and rows,
//! positions up to 2²⁴, misaligned starts, NaN/Inf pairs, and bit-identity of
//! every tier with the scalar one. Tolerance: `testing::tolerance::ROPE`.

#[macro_use]
mod common;

use common::{Worst, assert_pad, check, merge, padded, token};
use tensor::cpu::{Isa, rope};
use tensor::testing::tolerance::ROPE;
use tensor::testing::{rng::Rng, shapes};

#[derive(Clone, Copy, Debug)]
struct RopeCase {
    isa: Isa,
    t: usize,
    h: usize,
    hd: usize,
    pos0: usize,
    theta: f32,
    off: usize,
}

/// Runs `c` on its ISA and on the scalar tier: checks the tolerance against
/// the reference, the padding, and bit-identity with the scalar tier.
fn rope_run(c: RopeCase, x: &[f32]) -> Worst {
    let n = c.t * c.h * c.hd;
    let go = |isa: Isa| {
        let mut b = padded(x, c.off);
        rope::rope(
            token(isa),
            &mut b[c.off..c.off + n],
            c.h,
            c.hd,
            c.pos0,
            c.theta,
        );
        assert_pad(&c, &b, c.off, n);
        b[c.off..c.off + n].to_vec()
    };
    let got = go(c.isa);
    let (want, scale) = rope::reference::rope(x, c.h, c.hd, c.pos0, c.theta);
    let st = check(ROPE, &c, &got, &want, &scale);
    let scalar = go(Isa::Scalar);
    if let Some(i) = (0..n).find(|&i| got[i].to_bits() != scalar[i].to_bits()) {
        panic!(
            "{c:?}: index {i}: {} differs from scalar {} (tiers must agree bit for bit)",
            got[i], scalar[i]
        );
    }
    st
}

fn rope_case(c: RopeCase) -> Worst {
    let mut rng = Rng::for_case("rope", &format!("{c:?}"));
    let x = rng.vec(c.t * c.h * c.hd, 2.0);
    rope_run(c, &x)
}

/// Head dims of real models plus `2·half` for every shared edge length `half`.
fn rope_hds(v: usize) -> Vec<usize> {
    let mut hds = vec![2, 8, 12, 64, 72, 128];
    hds.extend(
        shapes::edge_lengths(v, 0)
            .into_iter()
            .filter(|&h| h > 0)
            .map(|h| 2 * h),
    );
    hds.sort_unstable();
    hds.dedup();
    hds
}

fn rope_edges(isa: Isa) -> Worst {
    let v = isa.lanes();
    let mut worst = Worst::default();
    let base = RopeCase {
        isa,
        t: 1,
        h: 1,
        hd: 2,
        pos0: 0,
        theta: 1e6,
        off: 0,
    };
    for hd in rope_hds(v) {
        for (h, t) in [(1, 1), (3, 4)] {
            for (pos0, theta) in [(0, 1e6), (7, 1e4), (4093, 1e6)] {
                merge(
                    &mut worst,
                    rope_case(RopeCase {
                        t,
                        h,
                        hd,
                        pos0,
                        theta,
                        ..base
                    }),
                );
            }
        }
    }
    // t = 0 is a no-op; misaligned starts.
    merge(
        &mut worst,
        rope_case(RopeCase {
            t: 0,
            h: 2,
            hd: 64,
            ..base
        }),
    );
    for off in shapes::misaligned_offsets(v) {
        for hd in [12, 2 * (2 * v + 1), 72] {
            merge(
                &mut worst,
                rope_case(RopeCase {
                    t: 2,
                    h: 3,
                    hd,
                    pos0: 11,
                    off,
                    ..base
                }),
            );
        }
    }
    worst
}

fn rope_large_pos(isa: Isa) -> Worst {
    let mut worst = Worst::default();
    for hd in [2, 8, 12, 64, 72, 128] {
        for pos0 in [100_000, 1_000_000, (1 << 24) - 2] {
            for theta in [1e4, 1e6] {
                let c = RopeCase {
                    isa,
                    t: 3,
                    h: 2,
                    hd,
                    pos0,
                    theta,
                    off: 1,
                };
                merge(&mut worst, rope_case(c));
            }
        }
    }
    worst
}

fn rope_nan_inf(isa: Isa) -> Worst {
    let mut worst = Worst::default();
    for hd in [8, 72] {
        let c = RopeCase {
            isa,
            t: 2,
            h: 3,
            hd,
            pos0: 100_000,
            theta: 1e6,
            off: 3,
        };
        let half = hd / 2;
        let mut x = Rng::for_case("rope_nan", &format!("{c:?}")).vec(2 * 3 * hd, 1.0);
        // Row 0, head 1, pair j = 1: NaN; row 1, head 2, pair j = half − 1: inf.
        let nan_at = hd + 1;
        let inf_at = 3 * hd + 2 * hd + half + half - 1;
        x[nan_at] = f32::NAN;
        x[inf_at] = f32::INFINITY;
        merge(&mut worst, rope_run(c, &x));
        rope::rope(token(isa), &mut x, 3, hd, c.pos0, c.theta);
        for (i, v) in x.iter().enumerate() {
            // The partner of element `at` sits half a head away, same head.
            let pair = |at: usize| i == at || i == (at / hd) * hd + (at % hd + half) % hd;
            assert_eq!(
                v.is_finite(),
                !pair(nan_at) && !pair(inf_at),
                "{c:?}: index {i} = {v}"
            );
        }
    }
    worst
}

tests!(Isa::Scalar;
    rope_scalar_edges => rope_edges,
    rope_scalar_large_pos => rope_large_pos,
    rope_scalar_nan_inf => rope_nan_inf,
);
tests!(Isa::Avx2;
    rope_avx2_edges => rope_edges,
    rope_avx2_large_pos => rope_large_pos,
    rope_avx2_nan_inf => rope_nan_inf,
);
tests!(Isa::Avx512;
    rope_avx512_edges => rope_edges,
    rope_avx512_large_pos => rope_large_pos,
    rope_avx512_nan_inf => rope_nan_inf,
);
tests!(Isa::Neon;
    rope_neon_edges => rope_edges,
    rope_neon_large_pos => rope_large_pos,
    rope_neon_nan_inf => rope_nan_inf,
);

/// The CPU backend's `qkv_norm_rope` on every tier equals the unfused ops
/// (rms_norm and rope on the split q and k, v copied into the caches) bit
/// for bit, leaves the other cache rows alone, and rejects bad operands
/// with typed errors: a qkv width that is not (h + 2·h_kv)·hd, caches too
/// short for pos0 + t, mismatched caches.
#[test]
fn cpu_qkv_norm_rope_equals_the_unfused_ops() {
    use tensor::cpu::CpuBackend;
    use tensor::{Backend, HostData, Shape, TensorError, op};
    for isa in Isa::available() {
        let be = CpuBackend::with(isa, 1).expect("backend");
        let up = |v: &[f32], d: &[usize]| {
            be.upload(HostData::f32(v), Shape::from(d.to_vec()))
                .expect("upload")
        };
        let down = |t: &tensor::Tensor<CpuBackend>| be.download_f32(t).expect("download");
        for (t, h, h_kv, hd, pos0) in [(1, 1, 1, 2, 0), (3, 4, 2, 64, 5), (5, 6, 2, 18, 40)] {
            let mut rng = Rng::for_case("cpu_qkv_norm_rope", &format!("{t} {h} {h_kv} {hd}"));
            let (nq, nk) = (h * hd, h_kv * hd);
            let qkv = rng.vec(t * (nq + 2 * nk), 2.0);
            let part = |o: usize, n: usize| -> Vec<f32> {
                qkv.chunks_exact(nq + 2 * nk)
                    .flat_map(|r| r[o..o + n].to_vec())
                    .collect()
            };
            let (qw, kw) = (rng.vec(hd, 1.5), rng.vec(hd, 1.5));
            let (eps, theta, s) = (1e-5, 1e6, pos0 + t + 3);
            let sentinel = vec![7.0f32; s * nk];
            let (mut q_out, mut kc, mut vc) = (
                up(&vec![0.0; t * nq], &[t, h, hd]),
                up(&sentinel, &[s, h_kv, hd]),
                up(&sentinel, &[s, h_kv, hd]),
            );
            let (tqkv, tqw, tkw) = (up(&qkv, &[t, nq + 2 * nk]), up(&qw, &[hd]), up(&kw, &[hd]));
            be.qkv_norm_rope(op::QkvNormRope {
                qkv: &tqkv,
                q_w: &tqw,
                k_w: &tkw,
                eps,
                pos0,
                theta,
                q_out: &mut q_out,
                k_cache: &mut kc,
                v_cache: &mut vc,
            })
            .expect("qkv_norm_rope");
            // The unfused ops.
            let (mut q2, mut k2) = (
                up(&vec![0.0; t * nq], &[t, h, hd]),
                up(&vec![0.0; t * nk], &[t, h_kv, hd]),
            );
            be.rms_norm(op::RmsNorm {
                x: &up(&part(0, nq), &[t, h, hd]),
                w: &tqw,
                eps,
                out: &mut q2,
            })
            .expect("norm");
            be.rms_norm(op::RmsNorm {
                x: &up(&part(nq, nk), &[t, h_kv, hd]),
                w: &tkw,
                eps,
                out: &mut k2,
            })
            .expect("norm");
            be.rope(op::Rope {
                x: &mut q2,
                pos0,
                theta,
            })
            .expect("rope");
            be.rope(op::Rope {
                x: &mut k2,
                pos0,
                theta,
            })
            .expect("rope");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&down(&q_out)), bits(&down(&q2)), "{isa:?}: q");
            let new = pos0 * nk..(pos0 + t) * nk;
            let (kh, vh) = (down(&kc), down(&vc));
            assert_eq!(bits(&kh[new.clone()]), bits(&down(&k2)), "{isa:?}: k");
            assert_eq!(&vh[new.clone()], &part(nq + nk, nk)[..], "{isa:?}: v");
            for c in [&kh, &vh] {
                assert!(
                    c[..new.start]
                        .iter()
                        .chain(&c[new.end..])
                        .all(|&e| e == 7.0)
                );
            }
            // Typed errors, nothing written.
            let short = pos0 + t - 1;
            let (mut ks, mut vs) = (
                up(&vec![0.0; short * nk], &[short, h_kv, hd]),
                up(&vec![0.0; short * nk], &[short, h_kv, hd]),
            );
            let e = be.qkv_norm_rope(op::QkvNormRope {
                qkv: &tqkv,
                q_w: &tqw,
                k_w: &tkw,
                eps,
                pos0,
                theta,
                q_out: &mut q_out,
                k_cache: &mut ks,
                v_cache: &mut vs,
            });
            assert!(matches!(e, Err(TensorError::OutOfRange { .. })), "{e:?}");
            let narrow = up(&qkv[..t * (nq + 2 * nk - 1)], &[t, nq + 2 * nk - 1]);
            let e = be.qkv_norm_rope(op::QkvNormRope {
                qkv: &narrow,
                q_w: &tqw,
                k_w: &tkw,
                eps,
                pos0,
                theta,
                q_out: &mut q_out,
                k_cache: &mut kc,
                v_cache: &mut vc,
            });
            assert!(matches!(e, Err(TensorError::ShapeMismatch { .. })), "{e:?}");
            let e = be.qkv_norm_rope(op::QkvNormRope {
                qkv: &tqkv,
                q_w: &tqw,
                k_w: &tkw,
                eps,
                pos0,
                theta,
                q_out: &mut q_out,
                k_cache: &mut kc,
                v_cache: &mut vs,
            });
            assert!(matches!(e, Err(TensorError::ShapeMismatch { .. })), "{e:?}");
            // 3-D caches whose heads are not h_kv wide, with as many elements.
            let wide = [s, 2 * h_kv, hd];
            let (mut kw, mut vw) = (
                up(&vec![0.0; s * 2 * nk], &wide),
                up(&vec![0.0; s * 2 * nk], &wide),
            );
            let e = be.qkv_norm_rope(op::QkvNormRope {
                qkv: &tqkv,
                q_w: &tqw,
                k_w: &tkw,
                eps,
                pos0,
                theta,
                q_out: &mut q_out,
                k_cache: &mut kw,
                v_cache: &mut vw,
            });
            assert!(matches!(e, Err(TensorError::ShapeMismatch { .. })), "{e:?}");
        }
    }
}
