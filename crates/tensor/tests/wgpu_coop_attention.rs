//! The bidirectional tensor-core attention
//! (`shaders/attention/coop_split.wgsl`, `attention_coop.wgsl`,
//! `kernels/attention.md`) against the f64 reference: every plan at its
//! edges, the automatic choice, NaN, out-of-range values, a peaked softmax,
//! threads sharing the scratch, the start-up self-check, and the errors
//! where it cannot run. Tolerance: `testing::tolerance::GPU_ATTENTION`
//! (and the bound of `attention_wgpu_coop_peaked_softmax`). Skips without
//! an adapter that has cooperative matrices unless `LFM_REQUIRE_COOP=1`
//! (`.ci/lavapipe-coop` sets it).
#![cfg(feature = "wgpu")]

mod attention_cases;
mod wgpu_common;

use attention_cases::{AttnCase, Kernel, NanIn, attn_run, attn_run_nan, edge_sweep};
use half::f16;
use tensor::cpu::attention::{self, AttnDims};
use tensor::testing::rng::Rng;
use tensor::testing::tolerance::{AttnStats, GPU_ATTENTION};
use tensor::wgpu::attention::coop::{
    AttnCoop, SELF_CHECK_HD, attention_coop_with, coop_attention_plan,
    self_check as attention_self_check,
};
use tensor::wgpu::attention::{AttnRows, attention_rows_with};
use tensor::wgpu::{WgpuBackend, gpu_or_skip};
use tensor::{Backend, DType, HostData, Shape, op};
use wgpu_common::{coop_or_skip, down, nan_out, up};

/// The device's subgroup size and fragment side (coop devices only).
fn sg_cm(be: &WgpuBackend) -> (u32, u32) {
    let dev = be.device();
    (
        dev.subgroup_size.expect("fixed subgroups"),
        dev.coop_fragment.expect("coop"),
    )
}

/// The tensor-core attention on every plan the device fits, at its edges:
/// t ∈ {2, BQ − 1, BQ, BQ + 1, 100} (BQ query rows per workgroup),
/// kv_len = t, kv_len off the key-block grid and kv_len = 1; head widths
/// 1 (all padding), 8, 40, 64 and 72 (the towers'), 128 (the most it
/// takes); GQA ratios 1, 2 and 4 in turn; rows of k and v past kv_len
/// hold NaN. Tolerance `GPU_ATTENTION`, as for the f32 kernels.
#[test]
fn attention_wgpu_coop_edges() {
    let Some(be) = coop_or_skip() else { return };
    let (sg, cm) = sg_cm(&be);
    let limits = &be.device().limits;
    let mut worst = AttnStats::default();
    let mut n = 0;
    let mut plans_run = Vec::new();
    for (i, hd) in [1, 8, 40, 64, 72, 128].into_iter().enumerate() {
        for (ns, kf) in AttnCoop::PLANS {
            let plan = AttnCoop::with_plan(hd, cm, ns, kf).expect("a plan");
            if !plan.fits(limits, sg) {
                continue;
            }
            plans_run.push((hd, ns, kf));
            let bq = plan.rows() as usize;
            let ts: Vec<usize> = [2, bq - 1, bq, bq + 1, 100]
                .into_iter()
                .filter(|&t| t >= 2)
                .collect();
            let bkv = plan.bkv() as usize;
            n += edge_sweep(&be, hd, i, &ts, bkv, Kernel::Coop(plan), &mut worst);
        }
    }
    // Every width gets the preferred plan's fallbacks at least.
    for hd in [1, 8, 40, 64, 72, 128] {
        assert!(
            plans_run.iter().any(|p| p.0 == hd),
            "hd {hd}: no plan fits {}",
            be.describe()
        );
    }
    println!(
        "tensor-core attention on {}: {n} cases, plans (hd, subgroups, key fragments) \
         {plans_run:?}, worst |x-r| = {:.3e}, worst NMSE = {:.3e}",
        be.describe(),
        worst.max_abs,
        worst.nmse
    );
}

/// The backend takes the tensor-core attention (its split and attention
/// passes) for bidirectional calls with t > 1 only (causal prefill keeps
/// the rows kernel, decode its own), with results within tolerance on the
/// towers' shapes.
#[test]
fn attention_wgpu_coop_choice() {
    let Some(be) = coop_or_skip() else { return };
    let (_, cm) = sg_cm(&be);
    assert!(coop_attention_plan(&be, 2, 64, false).is_some());
    assert!(coop_attention_plan(&be, 1024, 72, false).is_some());
    assert!(coop_attention_plan(&be, 1024, 64, true).is_none());
    assert!(coop_attention_plan(&be, 1, 64, false).is_none());
    assert!(coop_attention_plan(&be, 64, 129, false).is_none());
    let mut worst = AttnStats::default();
    for (t, h, hd) in [(256, 12, 64), (100, 16, 72)] {
        let c = AttnCase {
            t,
            s: t,
            kv_len: t,
            h,
            h_kv: h,
            hd,
            causal: false,
        };
        let st = attn_run(&be, c);
        worst.max_abs = worst.max_abs.max(st.max_abs);
        worst.nmse = worst.nmse.max(st.nmse);
    }
    println!(
        "tensor-core attention (backend's choice) on {}: worst |x-r| = {:.3e}, NMSE = {:.3e}",
        be.describe(),
        worst.max_abs,
        worst.nmse
    );
    // The kernel that ran, from the profiler.
    let prof = be.clone().with_profiling();
    let coop = vec![
        format!("attention_coop{cm}_f32_f32"),
        format!("attention_coop{cm}_split_f32_f16"),
    ];
    for (t, causal, want) in [
        (40, false, coop),
        (40, true, vec!["attention_rows_f32_f32".to_string()]),
        (1, false, vec!["attention_decode_f32_f32".to_string()]),
    ] {
        let q = prof.zeros(DType::F32, Shape::from([t, 2, 64])).expect("q");
        let kv = prof
            .zeros(DType::F32, Shape::from([40, 2, 64]))
            .expect("kv");
        let mut out = prof
            .zeros(DType::F32, Shape::from([t, 2, 64]))
            .expect("out");
        prof.attention(op::Attention {
            q: &q,
            k: &kv,
            v: &kv,
            kv_len: 40,
            causal,
            scale: 0.125,
            out: &mut out,
        })
        .expect("attention");
        prof.sync().expect("sync");
        let mut ops: Vec<String> = prof.profile().iter().map(|o| o.op.to_string()).collect();
        ops.sort();
        assert_eq!(ops, want, "t = {t}, causal {causal}");
    }
}

/// NaN in a visible k row makes every row NaN, in a visible v row that
/// column of every row, as the reference says (bidirectional: every row
/// sees every key).
#[test]
fn attention_wgpu_coop_nan_rows() {
    let Some(be) = coop_or_skip() else { return };
    let (sg, cm) = sg_cm(&be);
    let plan = AttnCoop::new(64, cm, sg, &be.device().limits).expect("plan");
    let c = AttnCase {
        t: 40,
        s: 53,
        kv_len: 50,
        h: 4,
        h_kv: 2,
        hd: 64,
        causal: false,
    };
    for which in [NanIn::K, NanIn::V] {
        for j in [0, 30, 49] {
            attn_run_nan(&be, c, Some((which, j)), Kernel::Coop(plan));
        }
    }
}

/// Values f16 cannot carry (beyond 65504; q counts after its scaling by
/// scale·log2 e = 0.18) and NaN in q: never a silently wrong finite number.
/// A bad q makes its row non-finite; a bad v its column of every row; a
/// bad k every row whose score with that key comes out +inf or NaN, while
/// a row whose score is −inf gets p = 0 there, as the reference's
/// e^(−8750·|q|) does; a row whose scores are all −inf is NaN. Everything
/// else matches the reference (`GPU_ATTENTION`). q = 7e4 (12 600 after
/// the scaling) stays in range.
#[test]
fn attention_wgpu_coop_out_of_range() {
    let Some(be) = coop_or_skip() else { return };
    let (sg, cm) = sg_cm(&be);
    let plan = AttnCoop::new(64, cm, sg, &be.device().limits).expect("plan");
    let (t, hd) = (33, 64);
    let mut rng = Rng::for_case("coop_range", "");
    let q0 = rng.vec(t * hd, 1.0);
    let mut k0 = rng.vec(t * hd, 1.0);
    let v0 = rng.vec(t * hd, 1.0);
    // q's dim 32 meets zeros in k (scores stay O(1) for a large finite q);
    // q's dim 7 is +0.5 on even rows, −0.5 on odd ones.
    for r in 0..t {
        k0[r * hd + 32] = 0.0;
    }
    let q0: Vec<f32> = (0..t * hd)
        .map(|i| match i % hd {
            7 => 0.5 - (i / hd % 2) as f32,
            _ => q0[i],
        })
        .collect();
    // Runs one case; returns the output and the reference.
    let run = |q: &[f32], k: &[f32], v: &[f32]| {
        let dims = [t, 1, hd];
        let (tq, tk, tv) = (up(&be, q, &dims), up(&be, k, &dims), up(&be, v, &dims));
        let mut out = nan_out(&be, &dims);
        attention_coop_with(
            &be,
            op::Attention {
                q: &tq,
                k: &tk,
                v: &tv,
                kv_len: t,
                causal: false,
                scale: 0.125,
                out: &mut out,
            },
            plan,
        )
        .expect("attend");
        let d = AttnDims {
            t,
            h: 1,
            h_kv: 1,
            hd,
            kv_len: t,
            causal: false,
            scale: 0.125,
        };
        (down(&be, &out), attention::reference::attention(q, k, v, d))
    };
    // Checks the elements `keep` selects against the reference.
    let matches =
        |what: &str, y: &[f32], r: &attention::reference::AttnRef, keep: &dyn Fn(usize) -> bool| {
            let idx: Vec<usize> = (0..y.len()).filter(|&i| keep(i)).collect();
            let pick = |x: &[f32]| idx.iter().map(|&i| x[i]).collect::<Vec<f32>>();
            let mag: Vec<f64> = idx.iter().map(|&i| r.mag[i]).collect();
            GPU_ATTENTION
                .check(&pick(y), &pick(&r.out), &mag)
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        };
    let non_finite = |what: &str, y: &[f32], bad: &dyn Fn(usize) -> bool| {
        for (i, v) in y.iter().enumerate().filter(|(i, _)| bad(*i)) {
            assert!(
                !v.is_finite(),
                "{what}: element {i} is {v}, want non-finite"
            );
        }
    };
    for bad in [7e4, 1e6, -6e5, f32::INFINITY, f32::NAN] {
        let mut q = q0.clone();
        q[32] = bad; // row 0
        let (y, r) = run(&q, &k0, &v0);
        let what = format!("q = {bad}");
        if bad == 7e4 {
            matches(&what, &y, &r, &|_| true);
        } else {
            non_finite(&what, &y, &|i| i < hd);
            matches(&what, &y, &r, &|i| i >= hd);
        }
    }
    // k: key 5, dim 7 (split into (inf, 0)). q there is ±0.5, whose f16
    // halves have the same sign (0.0901 + 2e-5 after the scaling), so even
    // rows score +inf (non-finite) and odd rows −inf (p = 0, as the
    // reference's underflow); halves of opposite signs would give NaN.
    let mut k = k0.clone();
    k[5 * hd + 7] = 7e4;
    let (y, r) = run(&q0, &k, &v0);
    non_finite("k = 7e4", &y, &|i| (i / hd).is_multiple_of(2));
    matches("k = 7e4", &y, &r, &|i| !(i / hd).is_multiple_of(2));
    // v: key 5, dim 9: column 9 of every row.
    let mut v = v0.clone();
    v[5 * hd + 9] = -7e4;
    let (y, r) = run(&q0, &k0, &v);
    non_finite("v = -7e4", &y, &|i| i % hd == 9);
    matches("v = -7e4", &y, &r, &|i| i % hd != 9);
    // Every score of row 0 −inf: q = −6e5 (beyond f16 after the scaling:
    // (−inf, 0)) on dim 0 only, against k = 1/3 there (halves 0.33325 and
    // +8.1e-5, both positive) for every key. The reference's scores are all
    // −25 000 (a uniform softmax); the kernel has l = 0 and must give NaN,
    // not zeros. Other rows are as before.
    let mut q = vec![0.0f32; hd];
    q[0] = -6e5;
    q.extend_from_slice(&q0[hd..]);
    let mut k = k0.clone();
    for r in 0..t {
        k[r * hd] = 1.0 / 3.0;
    }
    let (y, r) = run(&q, &k, &v0);
    non_finite("no finite score", &y, &|i| i < hd);
    matches("no finite score", &y, &r, &|i| i >= hd);
}

/// A peaked softmax: one key at score +9 and the others at −9 (natural
/// units), so the others' p ≈ 1.5e-8 ≈ 2⁻²⁶, below f16's subnormal floor
/// unless p is carried scaled (the kernel's 2^15). With v = 0 on the peak
/// and 1 elsewhere every output is the small keys' share, 1.5e-5 (1023
/// keys). Each p carries at most 2⁻²⁵ absolute error in the kernel's
/// scaled units (its low f16 half is subnormal below 2⁻³; 2⁻²⁴ where a
/// conversion rounds to the other neighbour, as WGSL allows), against
/// l ≥ 2^15, and the 1023 equal p's err alike: 1023·2⁻³⁹ ≈ 1.9e-9, twice
/// that for the f32 accumulation (round-toward-zero on some tensor cores),
/// is the bound (measured on lavapipe: 4.4e-10; without the scaling every
/// output was 0, off by 1.5e-5). The f32 rows kernel gets 2.6e-7 relative;
/// NMSE, relative to these tiny outputs, is not the measure.
#[test]
fn attention_wgpu_coop_peaked_softmax() {
    let Some(be) = coop_or_skip() else { return };
    let (sg, cm) = sg_cm(&be);
    let plan = AttnCoop::new(64, cm, sg, &be.device().limits).expect("plan");
    let (t, s, hd) = (3, 1024, 64);
    let mut q = vec![0.0f32; t * hd];
    let mut k = vec![0.0f32; s * hd];
    let mut v = vec![1.0f32; s * hd];
    for r in 0..t {
        q[r * hd] = 72.0; // × scale 0.125 × k = ±9
    }
    for j in 0..s {
        k[j * hd] = if j == 0 { 1.0 } else { -1.0 };
    }
    v[..hd].fill(0.0);
    let dims_q = [t, 1, hd];
    let dims_k = [s, 1, hd];
    let (tq, tk, tv) = (
        up(&be, &q, &dims_q),
        up(&be, &k, &dims_k),
        up(&be, &v, &dims_k),
    );
    let mut out = nan_out(&be, &dims_q);
    attention_coop_with(
        &be,
        op::Attention {
            q: &tq,
            k: &tk,
            v: &tv,
            kv_len: s,
            causal: false,
            scale: 0.125,
            out: &mut out,
        },
        plan,
    )
    .expect("attend");
    let d = AttnDims {
        t,
        h: 1,
        h_kv: 1,
        hd,
        kv_len: s,
        causal: false,
        scale: 0.125,
    };
    let r = attention::reference::attention(&q, &k, &v, d);
    assert!((r.out[0] - 1.558e-5).abs() < 1e-8, "reference {}", r.out[0]);
    let y = down(&be, &out);
    let bound = 2.0 * 1023.0 * 2f32.powi(-39);
    let worst = y
        .iter()
        .zip(&r.out)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0f32, |a, e| if e.is_nan() { f32::NAN } else { a.max(e) });
    assert!(worst <= bound, "worst |x-r| = {worst:e}, bound {bound:e}");
    println!(
        "peaked softmax on {}: worst |x-r| = {worst:.3e}",
        be.describe()
    );
}

/// Where it cannot run, forcing the tensor-core attention is an error (not
/// a panic): no cooperative matrices, a causal call, a plan for another
/// head width or fragment side.
#[test]
fn attention_wgpu_coop_refused_where_it_cannot_run() {
    let Some(be) = gpu_or_skip() else { return };
    let q = up(&be, &[0.5; 2 * 64], &[2, 1, 64]);
    let run = |plan: AttnCoop, causal: bool| {
        let mut out = nan_out(&be, &[2, 1, 64]);
        attention_coop_with(
            &be,
            op::Attention {
                q: &q,
                k: &q,
                v: &q,
                kv_len: 2,
                causal,
                scale: 0.125,
                out: &mut out,
            },
            plan,
        )
    };
    let dev = be.device();
    let Some((sg, cm)) = dev.subgroup_size.zip(dev.coop_fragment) else {
        let plan = AttnCoop::with_plan(64, 16, 2, 2).expect("plan");
        assert!(run(plan, false).is_err());
        return;
    };
    let plan = AttnCoop::new(64, cm, sg, &dev.limits).expect("plan");
    assert!(run(plan, false).is_ok());
    assert!(run(plan, true).is_err(), "causal");
    let other = AttnCoop::with_plan(72, cm, plan.ns, plan.kf).expect("plan");
    assert!(run(other, false).is_err(), "head width");
    let side = AttnCoop::with_plan(64, 24 - cm, plan.ns, plan.kf).expect("plan");
    assert!(run(side, false).is_err(), "fragment side");
}

/// The start-up self-check passes the f32 rows kernel and the tensor-core
/// kernel, and fails a kernel whose q lost its low f16 half (as one
/// without the split would).
#[test]
fn attention_wgpu_coop_self_check_tells_exact_from_wrong() {
    let Some(be) = gpu_or_skip() else { return };
    let rows = |q: &_, k: &_, v: &_, kv_len, scale, out: &mut _| {
        let plan = AttnRows::new(SELF_CHECK_HD, &be.device().limits).expect("plan");
        attention_rows_with(
            &be,
            op::Attention {
                q,
                k,
                v,
                kv_len,
                causal: false,
                scale,
                out,
            },
            plan,
        )
    };
    attention_self_check(&be, &rows).expect("the rows kernel passes");
    let rounded = attention_self_check(&be, &|q, k, v, kv_len, scale, out| {
        let host = be.download_f32(q)?;
        let halves: Vec<f32> = host.iter().map(|&x| f16::from_f32(x).to_f32()).collect();
        let qr = be.upload(HostData::f32(&halves), q.shape().clone())?;
        rows(&qr, k, v, kv_len, scale, out)
    });
    let e = rounded.expect_err("q rounded to f16 must fail").to_string();
    assert!(e.contains("self-check"), "{e}");
    let dev = be.device();
    if let Some((sg, cm)) = dev.subgroup_size.zip(dev.coop_fragment) {
        let plan = AttnCoop::new(SELF_CHECK_HD, cm, sg, &dev.limits).expect("plan");
        attention_self_check(&be, &|q, k, v, kv_len, scale, out| {
            attention_coop_with(
                &be,
                op::Attention {
                    q,
                    k,
                    v,
                    kv_len,
                    causal: false,
                    scale,
                    out,
                },
                plan,
            )
        })
        .expect("the tensor-core attention passes");
        assert!(dev.coop_attention, "the backend's own check passed too");
    }
}

/// Threads sharing one backend share the tensor-core attention's scratch:
/// each call's split and attention passes stay together (another thread's
/// split never lands between them), so every result matches the reference
/// whatever the interleaving. Each thread records 16 calls before it reads
/// any back, so the threads' recordings overlap. (With the two passes
/// taking the scratch separately, this failed in 5 of 5 runs on lavapipe.)
#[test]
fn attention_wgpu_coop_threads_share_the_scratch() {
    let Some(be) = coop_or_skip() else { return };
    let (sg, cm) = sg_cm(&be);
    let hd = 40;
    let plan = AttnCoop::new(hd, cm, sg, &be.device().limits).expect("plan");
    std::thread::scope(|s| {
        for i in 0..4usize {
            let be = be.clone();
            s.spawn(move || {
                let (t, h) = (20 + 9 * i, 1 + i % 2);
                let mut rng = Rng::for_case("coop_threads", &format!("{i}"));
                let q = rng.vec(t * h * hd, 1.0);
                let k = rng.vec(t * h * hd, 1.0);
                let v = rng.vec(t * h * hd, 1.0);
                let dims = [t, h, hd];
                let (tq, tk, tv) = (up(&be, &q, &dims), up(&be, &k, &dims), up(&be, &v, &dims));
                let outs: Vec<_> = (0..16)
                    .map(|_| {
                        let mut out = nan_out(&be, &dims);
                        attention_coop_with(
                            &be,
                            op::Attention {
                                q: &tq,
                                k: &tk,
                                v: &tv,
                                kv_len: t,
                                causal: false,
                                scale: 0.125,
                                out: &mut out,
                            },
                            plan,
                        )
                        .expect("attend");
                        out
                    })
                    .collect();
                let d = AttnDims {
                    t,
                    h,
                    h_kv: h,
                    hd,
                    kv_len: t,
                    causal: false,
                    scale: 0.125,
                };
                let r = attention::reference::attention(&q, &k, &v, d);
                for out in &outs {
                    GPU_ATTENTION
                        .check(&down(&be, out), &r.out, &r.mag)
                        .unwrap_or_else(|e| panic!("thread {i}: {e:?}"));
                }
            });
        }
    });
}
