//! Every WGSL op of `tensor::wgpu::ops` but attention (`wgpu_attention.rs`)
//! and the copies and gathers (`wgpu_gather.rs`)
//! against the CPU f64 references (`crates/tensor/src/cpu/<op>/reference.rs`)
//! or exact host arithmetic, on edge shapes (lengths 1, 2, 3, 17, 63, 64, 65,
//! 257; odd hd; conv l ∈ {2, 3, 4} with the state carried across calls).
//! Outputs start as NaN so that every element must be written. Tolerances:
//! `testing::tolerance::GPU_*` (`Exact` for add, copies, gathers, unshuffle).
//! Skips without an adapter unless `LFM_REQUIRE_GPU=1`.
#![cfg(feature = "wgpu")]

use half::bf16;
use tensor::cpu::{conv, elementwise, norm, rope, vision};
use tensor::testing::rng::Rng;
use tensor::testing::tolerance::{
    ADD, ErrorStats, GPU_GELU_ERF, GPU_GELU_TANH, GPU_LAYER_NORM, GPU_RMS_NORM, GPU_ROPE,
    GPU_SHORT_CONV, GPU_SILU_MUL, Tolerance,
};
use tensor::wgpu::{WgpuBackend, gpu_or_skip};
use tensor::{Backend, DType, Gelu, HostData, Shape, op};

mod wgpu_common;
use wgpu_common::{down, nan_out, up};

/// The edge lengths of the brief.
const LENS: [usize; 8] = [1, 2, 3, 17, 63, 64, 65, 257];

/// Worst errors of one op over its cases.
#[derive(Default)]
struct Worst {
    st: ErrorStats,
    /// max |x − r| / |r| over the elements with |r| ≥ 1e-6.
    rel_1e6: f64,
    cases: usize,
}

impl Worst {
    fn check(&mut self, tol: Tolerance, got: &[f32], want: &[f32], scale: &[f64], case: &str) {
        match tol.check(got, want, scale) {
            Ok(st) => {
                self.st.max_abs = self.st.max_abs.max(st.max_abs);
                self.st.max_rel = self.st.max_rel.max(st.max_rel);
                self.st.max_ulp = self.st.max_ulp.max(st.max_ulp);
                self.cases += 1;
                for (&g, &w) in got.iter().zip(want) {
                    if w.abs() >= 1e-6 && g.is_finite() {
                        let rel = (f64::from(g) - f64::from(w)).abs() / f64::from(w.abs());
                        self.rel_1e6 = self.rel_1e6.max(rel);
                    }
                }
            }
            Err(e) => panic!(
                "{case}: first bad index {}: got {}, want {}, bound {:e}",
                e.index, e.got, e.want, e.bound
            ),
        }
    }

    fn report(&self, what: &str, be: &WgpuBackend) {
        println!(
            "{what} on {}: {} cases, worst |x-r| = {:.3e}, worst rel = {:.3e} \
             (|r| ≥ 1e-6: {:.3e}), worst ulp = {}",
            be.describe(),
            self.cases,
            self.st.max_abs,
            self.st.max_rel,
            self.rel_1e6,
            self.st.max_ulp
        );
    }
}

// ------------------------------------------------------------ elementwise

#[test]
fn wgpu_add_assign_silu_mul() {
    let Some(be) = gpu_or_skip() else { return };
    let (mut w_add, mut w_silu) = (Worst::default(), Worst::default());
    for n in LENS.into_iter().chain([1000]) {
        let case = format!("n={n}");
        let mut rng = Rng::for_case("wgpu_elementwise", &case);
        let (a, b) = (rng.vec(n, 12.0), rng.vec(n, 2.0));
        let (ta, tb) = (up(&be, &a, &[n]), up(&be, &b, &[n]));

        let mut out = nan_out(&be, &[n]);
        be.silu_mul(op::SiluMul {
            gate: &ta,
            up: &tb,
            out: &mut out,
        })
        .expect("silu_mul");
        let want = elementwise::reference::silu_mul(&a, &b);
        w_silu.check(GPU_SILU_MUL, &down(&be, &out), &want, &[], &case);

        let mut x = up(&be, &a, &[n]);
        be.add_assign(op::AddAssign { x: &mut x, y: &tb })
            .expect("add_assign");
        let want = elementwise::reference::add(&a, &b);
        w_add.check(ADD, &down(&be, &x), &want, &[], &case);
    }
    w_add.report("add_assign", &be);
    w_silu.report("silu_mul", &be);
}

#[test]
fn wgpu_gelu() {
    let Some(be) = gpu_or_skip() else { return };
    for (kind, tol) in [(Gelu::Tanh, GPU_GELU_TANH), (Gelu::Erf, GPU_GELU_ERF)] {
        let mut worst = Worst::default();
        for n in LENS {
            let case = format!("{kind:?} n={n}");
            let mut rng = Rng::for_case("wgpu_gelu", &case);
            let x = rng.vec(n, 6.0);
            let mut out = nan_out(&be, &[n]);
            be.gelu(op::Gelu {
                x: &up(&be, &x, &[n]),
                kind,
                out: &mut out,
            })
            .expect("gelu");
            let want = vision::reference::gelu(&x, kind);
            worst.check(tol, &down(&be, &out), &want, &[], &case);
        }
        // A dense sweep over [−16, 16) (both regimes of erf, both tails).
        let x: Vec<f32> = (0..8192).map(|i| (i as f32 - 4096.0) / 256.0).collect();
        let mut out = nan_out(&be, &[x.len()]);
        be.gelu(op::Gelu {
            x: &up(&be, &x, &[x.len()]),
            kind,
            out: &mut out,
        })
        .expect("gelu");
        let want = vision::reference::gelu(&x, kind);
        worst.check(
            tol,
            &down(&be, &out),
            &want,
            &[],
            &format!("{kind:?} sweep"),
        );
        worst.report(&format!("gelu {kind:?}"), &be);
    }
}

// ----------------------------------------------------------- normalisation

#[test]
fn wgpu_rms_norm_layer_norm() {
    let Some(be) = gpu_or_skip() else { return };
    let (mut w_rms, mut w_ln) = (Worst::default(), Worst::default());
    for d in LENS.into_iter().chain([1024, 2048]) {
        for rows in [1, 3, 17] {
            let case = format!("rows={rows} d={d}");
            let mut rng = Rng::for_case("wgpu_norm", &case);
            // An offset mean exercises layer_norm's two passes.
            let x: Vec<f32> = rng.vec(rows * d, 2.0).iter().map(|v| v + 3.0).collect();
            let (w, b) = (rng.vec(d, 1.5), rng.vec(d, 0.5));
            let (tx, tw, tb) = (
                up(&be, &x, &[rows, d]),
                up(&be, &w, &[d]),
                up(&be, &b, &[d]),
            );

            let mut out = nan_out(&be, &[rows, d]);
            be.rms_norm(op::RmsNorm {
                x: &tx,
                w: &tw,
                eps: 1e-5,
                out: &mut out,
            })
            .expect("rms_norm");
            let want = norm::reference::rms_norm(&x, &w, 1e-5);
            w_rms.check(GPU_RMS_NORM, &down(&be, &out), &want, &[], &case);

            let mut out = nan_out(&be, &[rows, d]);
            be.layer_norm(op::LayerNorm {
                x: &tx,
                w: &tw,
                b: &tb,
                eps: 1e-6,
                out: &mut out,
            })
            .expect("layer_norm");
            let want = vision::reference::layer_norm(&x, &w, &b, 1e-6);
            w_ln.check(GPU_LAYER_NORM, &down(&be, &out), &want, &[], &case);
        }
    }
    w_rms.report("rms_norm", &be);
    w_ln.report("layer_norm", &be);
}

#[test]
fn wgpu_add_rms_norm_matches_add_then_norm() {
    let Some(be) = gpu_or_skip() else { return };
    let mut worst = Worst::default();
    for d in LENS.into_iter().chain([1024, 2048]) {
        for rows in [1, 3, 17] {
            let case = format!("rows={rows} d={d}");
            let mut rng = Rng::for_case("wgpu_add_rms_norm", &case);
            let (x, y, w) = (
                rng.vec(rows * d, 2.0),
                rng.vec(rows * d, 2.0),
                rng.vec(d, 1.5),
            );
            let mut tx = up(&be, &x, &[rows, d]);
            let mut out = nan_out(&be, &[rows, d]);
            be.add_rms_norm(op::AddRmsNorm {
                x: &mut tx,
                y: &up(&be, &y, &[rows, d]),
                w: &up(&be, &w, &[d]),
                eps: 1e-5,
                out: &mut out,
            })
            .expect("add_rms_norm");
            let sum: Vec<f32> = x.iter().zip(&y).map(|(a, b)| a + b).collect();
            assert_eq!(down(&be, &tx), sum, "{case}: x += y is one f32 add");
            let want = norm::reference::rms_norm(&sum, &w, 1e-5);
            worst.check(GPU_RMS_NORM, &down(&be, &out), &want, &[], &case);
        }
    }
    worst.report("add_rms_norm", &be);
}

// -------------------------------------------------------------------- rope

#[test]
fn wgpu_rope() {
    let Some(be) = gpu_or_skip() else { return };
    let mut worst = Worst::default();
    for (t, h, hd) in [
        (1, 1, 2),
        (2, 3, 6),
        (17, 2, 64),
        (3, 1, 66),
        (65, 1, 64),
        (1, 8, 128),
    ] {
        for pos0 in [0, 5, 4000, 100_000] {
            for theta in [10_000.0f32, 1_000_000.0] {
                let case = format!("t={t} h={h} hd={hd} pos0={pos0} theta={theta}");
                let mut rng = Rng::for_case("wgpu_rope", &case);
                let x = rng.vec(t * h * hd, 2.0);
                let mut tx = up(&be, &x, &[t, h, hd]);
                be.rope(op::Rope {
                    x: &mut tx,
                    pos0,
                    theta,
                })
                .expect("rope");
                let (want, scale) = rope::reference::rope(&x, h, hd, pos0, theta);
                worst.check(GPU_ROPE, &down(&be, &tx), &want, &scale, &case);
            }
        }
    }
    worst.report("rope", &be);
}

/// The attention input op (`qkv_norm_rope`: per-head q/k norm + RoPE from
/// stacked q | k | v, k and v appended to the caches) against the f64
/// reference chain (rms_norm, then rope of its f32 output): GQA head counts,
/// odd pairs, several rows and positions; q and the new cache rows checked
/// with `GPU_ROPE`, v copied exactly, every other cache row untouched.
#[test]
fn wgpu_qkv_norm_rope_matches_norm_then_rope() {
    let Some(be) = gpu_or_skip() else { return };
    let mut worst = Worst::default();
    for (t, h, h_kv) in [(1, 1, 1), (3, 4, 2), (17, 16, 8), (2, 2, 1)] {
        for hd in [2, 6, 64, 72, 130] {
            for pos0 in [0, 5, 1000] {
                let case = format!("t={t} h={h} h_kv={h_kv} hd={hd} pos0={pos0}");
                let mut rng = Rng::for_case("wgpu_qkv_norm_rope", &case);
                let (nq, nk) = (h * hd, h_kv * hd);
                let qkv = rng.vec(t * (nq + 2 * nk), 2.0);
                let part = |o: usize, n: usize| -> Vec<f32> {
                    qkv.chunks_exact(nq + 2 * nk)
                        .flat_map(|r| r[o..o + n].to_vec())
                        .collect()
                };
                let (q, k, v) = (part(0, nq), part(nq, nk), part(nq + nk, nk));
                let (qw, kw) = (rng.vec(hd, 1.5), rng.vec(hd, 1.5));
                let (theta, eps) = (1_000_000.0f32, 1e-5f32);
                let s = pos0 + t + 2;
                let sentinel = vec![7.0f32; s * nk];
                let mut q_out = nan_out(&be, &[t, h, hd]);
                let mut k_cache = up(&be, &sentinel, &[s, h_kv, hd]);
                let mut v_cache = up(&be, &sentinel, &[s, h_kv, hd]);
                be.qkv_norm_rope(op::QkvNormRope {
                    qkv: &up(&be, &qkv, &[t, nq + 2 * nk]),
                    q_w: &up(&be, &qw, &[hd]),
                    k_w: &up(&be, &kw, &[hd]),
                    eps,
                    pos0,
                    theta,
                    q_out: &mut q_out,
                    k_cache: &mut k_cache,
                    v_cache: &mut v_cache,
                })
                .expect("qkv_norm_rope");
                let (kc, vc) = (down(&be, &k_cache), down(&be, &v_cache));
                let new = pos0 * nk..(pos0 + t) * nk;
                for (x, w, heads, got, what) in [
                    (&q, &qw, h, down(&be, &q_out), "q"),
                    (&k, &kw, h_kv, kc[new.clone()].to_vec(), "k"),
                ] {
                    let normed = norm::reference::rms_norm(x, w, eps);
                    let (want, scale) = rope::reference::rope(&normed, heads, hd, pos0, theta);
                    worst.check(GPU_ROPE, &got, &want, &scale, &format!("{case} {what}"));
                }
                assert_eq!(&vc[new.clone()], &v[..], "{case}: v copied exactly");
                for (c, what) in [(&kc, "k"), (&vc, "v")] {
                    let untouched = c[..new.start].iter().chain(&c[new.end..]);
                    assert!(
                        untouched.clone().all(|&e| e == 7.0),
                        "{case}: {what} cache rows outside pos0..pos0 + t"
                    );
                }
            }
        }
    }
    worst.report("qkv_norm_rope", &be);
}

// -------------------------------------------------------------- short conv

#[test]
fn wgpu_short_conv_with_state_carry() {
    let Some(be) = gpu_or_skip() else { return };
    let mut worst = Worst::default();
    for l in [2, 3, 4] {
        for d in [1, 3, 17, 65] {
            let case = format!("l={l} d={d}");
            let mut rng = Rng::for_case("wgpu_short_conv", &case);
            let w = rng.vec(d * l, 1.0);
            let tw = up(&be, &w, &[d, l]);
            let mut state = vec![0.0f32; (l - 1) * d];
            let mut tstate = be
                .zeros(DType::F32, Shape::from([l - 1, d]))
                .expect("zeros");
            // Prefill, decode steps, then a prefill shorter than l − 1.
            for (step, t) in [5usize, 1, 1, 17, 1, 2, 1].into_iter().enumerate() {
                let bcx = rng.vec(t * 3 * d, 1.0);
                let mut out = nan_out(&be, &[t, d]);
                be.short_conv(op::ShortConv {
                    bcx: &up(&be, &bcx, &[t, 3 * d]),
                    w: &tw,
                    state: &mut tstate,
                    out: &mut out,
                })
                .expect("short_conv");
                let r = conv::reference::short_conv(&bcx, &w, &state, d, l);
                let c = format!("{case} step={step} t={t}");
                worst.check(GPU_SHORT_CONV, &down(&be, &out), &r.out, &r.mag, &c);
                let got_state = down(&be, &tstate);
                assert!(
                    got_state
                        .iter()
                        .zip(&r.state)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{c}: state\n got {got_state:?}\nwant {:?}",
                    r.state
                );
                state = r.state;
            }
        }
    }
    worst.report("short_conv", &be);
}

/// `matmul_short_conv` (in_proj matmul, then the short conv) against the
/// two ops on the same backend, over a sequence of prefill and decode steps
/// whose state carries between them: decode steps with bf16 rows of 8k
/// elements are one fused GEMV (where the adapter has fixed-size
/// subgroups), whose B, C and X are the unfused GEMV's, so outputs and
/// state are equal bit for bit; prefills, f32 weights and k not a multiple
/// of 8 take the two-op default. Kernel lengths 2 to 4, channels around a
/// workgroup's 8. Measured: equal on lavapipe.
#[test]
fn wgpu_matmul_short_conv_equals_matmul_then_conv() {
    use tensor::wgpu::matmul::{GemvKind, gemv_kind};
    let Some(be) = gpu_or_skip() else { return };
    let fused = gemv_kind(&be, 8, DType::BF16) == GemvKind::X8Subgroup;
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (l, d, k, dtype) in [
        (2, 1, 8, DType::BF16),
        (3, 7, 64, DType::BF16),
        (3, 9, 1032, DType::BF16),
        (4, 33, 16, DType::BF16),
        (3, 5, 12, DType::BF16), // k not a multiple of 8: the default
        (3, 5, 16, DType::F32),  // f32 weights: the default
    ] {
        let case = format!("l={l} d={d} k={k} {dtype}");
        let mut rng = Rng::for_case("wgpu_matmul_short_conv", &case);
        let wp = rng.vec(3 * d * k, 0.3);
        let in_proj = match dtype {
            DType::BF16 => {
                let wb: Vec<bf16> = wp.iter().map(|&v| bf16::from_f32(v)).collect();
                be.upload(HostData::bf16(&wb), Shape::from([3 * d, k]))
            }
            _ => be.upload(HostData::f32(&wp), Shape::from([3 * d, k])),
        }
        .expect("in_proj");
        let w = up(&be, &rng.vec(d * l, 1.0), &[d, l]);
        let zeros = |dims: &[usize]| be.zeros(DType::F32, Shape::from(dims)).expect("zeros");
        let (mut s1, mut s2) = (zeros(&[l - 1, d]), zeros(&[l - 1, d]));
        for (step, t) in [3usize, 1, 1, 2, 1, 1].into_iter().enumerate() {
            let x = up(&be, &rng.vec(t * k, 1.0), &[t, k]);
            let (mut bcx1, mut bcx2) = (zeros(&[t, 3 * d]), zeros(&[t, 3 * d]));
            let (mut o1, mut o2) = (nan_out(&be, &[t, d]), zeros(&[t, d]));
            be.matmul_short_conv(op::MatmulShortConv {
                x: &x,
                in_proj: &in_proj,
                w: &w,
                bcx: &mut bcx1,
                state: &mut s1,
                out: &mut o1,
            })
            .expect("matmul_short_conv");
            be.matmul(op::Matmul {
                x: &x,
                w: &in_proj,
                bias: None,
                out: &mut bcx2,
            })
            .expect("matmul");
            be.short_conv(op::ShortConv {
                bcx: &bcx2,
                w: &w,
                state: &mut s2,
                out: &mut o2,
            })
            .expect("short_conv");
            let c = format!("{case} step={step} t={t}");
            assert_eq!(bits(&down(&be, &o1)), bits(&down(&be, &o2)), "{c}: out");
            assert_eq!(bits(&down(&be, &s1)), bits(&down(&be, &s2)), "{c}: state");
        }
    }
    // A decode step is one dispatch where it fuses.
    if fused {
        let prof = be.clone().with_profiling();
        let z = |dims: &[usize], dt: DType| prof.zeros(dt, Shape::from(dims)).expect("zeros");
        let (x, in_proj, w) = (
            z(&[1, 16], DType::F32),
            z(&[6, 16], DType::BF16),
            z(&[2, 3], DType::F32),
        );
        let (mut bcx, mut state, mut out) = (
            z(&[1, 6], DType::F32),
            z(&[2, 2], DType::F32),
            z(&[1, 2], DType::F32),
        );
        prof.matmul_short_conv(op::MatmulShortConv {
            x: &x,
            in_proj: &in_proj,
            w: &w,
            bcx: &mut bcx,
            state: &mut state,
            out: &mut out,
        })
        .expect("fused");
        prof.sync().expect("sync");
        let ops: Vec<(String, u64)> = prof
            .profile()
            .iter()
            .map(|o| (o.op.to_string(), o.calls))
            .collect();
        assert_eq!(ops, [("gemv_conv_bf16x8_sg_f32".to_string(), 1)], "{ops:?}");
    }
}

/// A whole chain of ops recorded with no readback in between (one encoder,
/// the uniform ring wrapping) still matches the step-by-step CPU result.
#[test]
fn wgpu_ops_chain_without_readback() {
    let Some(be) = gpu_or_skip() else { return };
    let (t, h, hd) = (3, 2, 8);
    let d = h * hd;
    let mut rng = Rng::for_case("wgpu_chain", "");
    let x0 = rng.vec(t * d, 1.0);
    let w = rng.vec(d, 1.0);
    let mut x = up(&be, &x0, &[t, d]);
    let tw = up(&be, &w, &[d]);
    let mut tmp = be.zeros(DType::F32, Shape::from([t, d])).expect("zeros");
    let mut want = x0.clone();
    let mut ropes = Vec::new();
    for step in 0..100 {
        be.rms_norm(op::RmsNorm {
            x: &x,
            w: &tw,
            eps: 1e-5,
            out: &mut tmp,
        })
        .expect("rms_norm");
        be.add_assign(op::AddAssign { x: &mut x, y: &tmp })
            .expect("add");
        let normed = norm::reference::rms_norm(&want, &w, 1e-5);
        for (a, b) in want.iter_mut().zip(&normed) {
            *a += b;
        }
        if step % 10 == 0 {
            // Each rope call's cos/sin table must survive until its pass runs.
            let mut r = up(&be, &x0, &[t, h, hd]);
            be.rope(op::Rope {
                x: &mut r,
                pos0: step,
                theta: 10_000.0,
            })
            .expect("rope");
            ropes.push((step, r));
        }
    }
    for (step, r) in &ropes {
        let (rw, scale) = rope::reference::rope(&x0, h, hd, *step, 10_000.0);
        Worst::default().check(GPU_ROPE, &down(&be, r), &rw, &scale, "chain rope");
    }
    let got = down(&be, &x);
    let rel = Tolerance::Rel {
        abs: 1e-5,
        rel: 1e-4,
    };
    Worst::default().check(rel, &got, &want, &[], "chain of 100 rms_norm + add");
}
