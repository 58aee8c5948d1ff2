//! The WGSL attention kernels against the CPU f64 reference
//! (`crates/tensor/src/cpu/attention/reference.rs`, kernels/attention.md):
//! the decode kernels (t = 1, vec4 and scalar), the tiled kernel with every
//! block size the device fits, the rows kernel with its plans, GQA ratios 1, 2, 4, kv_len > t, causal and
//! bidirectional, rows past kv_len and chosen rows holding NaN. Outputs start
//! as NaN. Tolerance: `testing::tolerance::GPU_ATTENTION`. Skips without an
//! adapter unless `LFM_REQUIRE_GPU=1`.
#![cfg(feature = "wgpu")]

use tensor::testing::tolerance::AttnStats;
use tensor::wgpu::attention::{AttnRows, AttnTiles, attention_tiled_with};
use tensor::wgpu::gpu_or_skip;
use tensor::{Backend, op};

mod wgpu_common;
use wgpu_common::{nan_out, up};

mod attention_cases;
use attention_cases::{AttnCase, HEADS, Kernel, NanIn, attn_run, attn_run_nan, edge_sweep};

#[test]
fn wgpu_attention() {
    let Some(be) = gpu_or_skip() else { return };
    let mut worst = AttnStats::default();
    let mut n = 0;
    let heads = [(1, 1), (2, 1), (4, 1), (4, 2), (8, 2)];
    let mut cases = Vec::new();
    for (i, &(h, h_kv)) in heads.iter().enumerate() {
        for hd in [1, 3, 17, 64, 65] {
            // Decode over a cache longer than kv_len, a causal prefill that
            // crosses key tiles, bidirectional with t ≠ kv_len.
            cases.push(AttnCase {
                t: 1,
                s: 70,
                kv_len: 65 + i,
                h,
                h_kv,
                hd,
                causal: true,
            });
            cases.push(AttnCase {
                t: 17,
                s: 80,
                kv_len: 66,
                h,
                h_kv,
                hd,
                causal: true,
            });
            cases.push(AttnCase {
                t: 3,
                s: 63,
                kv_len: 63,
                h,
                h_kv,
                hd,
                causal: false,
            });
        }
    }
    cases.push(AttnCase {
        t: 65,
        s: 257,
        kv_len: 257,
        h: 2,
        h_kv: 1,
        hd: 72,
        causal: false,
    });
    cases.push(AttnCase {
        t: 64,
        s: 130,
        kv_len: 129,
        h: 4,
        h_kv: 2,
        hd: 64,
        causal: true,
    });
    cases.push(AttnCase {
        t: 2,
        s: 4,
        kv_len: 0,
        h: 2,
        h_kv: 1,
        hd: 8,
        causal: false,
    });
    cases.push(AttnCase {
        t: 1,
        s: 1,
        kv_len: 1,
        h: 1,
        h_kv: 1,
        hd: 256,
        causal: true,
    });
    for c in cases {
        let st = attn_run(&be, c);
        worst.max_abs = worst.max_abs.max(st.max_abs);
        worst.nmse = worst.nmse.max(st.nmse);
        n += 1;
    }
    println!(
        "attention on {}: {n} cases, worst |x-r| = {:.3e}, worst NMSE = {:.3e}",
        be.describe(),
        worst.max_abs,
        worst.nmse
    );
}

/// The tiled kernel (t > 1) on edge shapes around its blocks: t ∈ {1, 2,
/// BQ − 1, BQ, BQ + 1, 100}; causal with kv_len = t and with a cached
/// prefix, bidirectional with kv_len = t and kv_len ≠ t, kv_len off the
/// key-block grid; GQA ratios 1, 2 (h = 4 and 16) and 4 in turn; every tile
/// plan from hd = 1 to 256 (the head widths of the models: 64, 72).
#[test]
fn wgpu_attention_tiled_edges() {
    let Some(be) = gpu_or_skip() else { return };
    let limits = &be.device().limits;
    let mut worst = AttnStats::default();
    let mut n = 0;
    let mut plans_run = Vec::new();
    for (i, hd) in [1, 5, 33, 64, 72, 80, 128, 256].into_iter().enumerate() {
        // The largest plan, and the largest without 64-row blocks (what
        // the backend takes when 64 rows make too few workgroups).
        let largest = AttnTiles::new(hd, limits).expect("a tile plan fits the default limits");
        let smaller = AttnTiles::with_blocks(hd, limits, None, 64).expect("a plan");
        // An odd key block (as LFM_WGPU_ATTN_BLOCK may ask for): one key per
        // score tile, so the last key of a block is scored too.
        let odd = AttnTiles::with_blocks(hd, limits, Some((32, 15)), 0).expect("a plan");
        // (hd 256 does not fit 32 × 15 and takes the usual plan.)
        assert!(odd.bkv != 15 || odd.rk == 1, "hd {hd}: {odd:?}");
        let mut plans = vec![largest];
        for p in [smaller, odd] {
            if !plans.contains(&p) {
                plans.push(p);
            }
        }
        for tiles in plans {
            plans_run.push((hd, tiles.bq(), tiles.bkv));
            let (bq, bkv) = (tiles.bq() as usize, tiles.bkv as usize);
            let ts = [1, 2, bq - 1, bq, bq + 1, 100];
            n += edge_sweep(&be, hd, i, &ts, bkv, Kernel::Tiled(tiles), &mut worst);
        }
    }
    println!(
        "tiled attention on {}: {n} cases, plans (hd, rows, keys) {plans_run:?}, \
         worst |x-r| = {:.3e}, worst NMSE = {:.3e}",
        be.describe(),
        worst.max_abs,
        worst.nmse
    );
}

/// The rows kernel (t > 1, hd % 4 = 0, hd ≤ 128) on edge shapes around
/// its blocks: t ∈ {2, R − 1, R, R + 1, 100, 300} (R rows per workgroup);
/// causal with kv_len = t and with a cached prefix, bidirectional with
/// kv_len = t and kv_len ≠ t, kv_len off the key-block grid; GQA ratios 1,
/// 2 (h = 4 and 16) and 4 in turn; hd ∈ {4, 8, 64, 72, 128}, each with the
/// plan the backend takes on this device, the one it takes under WebGPU's
/// default limits and small plans (one split; 8-key splits), so that keys
/// cross blocks and splits.
#[test]
fn wgpu_attention_rows_edges() {
    let Some(be) = gpu_or_skip() else { return };
    let limits = &be.device().limits;
    let default = wgpu::Limits::default();
    let mut worst = AttnStats::default();
    let mut n = 0;
    let mut plans_run = Vec::new();
    for (i, hd) in [4, 8, 64, 72, 128].into_iter().enumerate() {
        let mut plans = vec![AttnRows::new(hd, limits).expect("a rows plan fits")];
        for p in [
            AttnRows::new(hd, &default),
            AttnRows::with_plan(hd, 32, 4, 16),
            AttnRows::with_plan(hd, 16, 2, 8),
            AttnRows::with_plan(hd, 8, 1, 8),
        ]
        .into_iter()
        .flatten()
        {
            if p.fits(limits) && !plans.contains(&p) {
                plans.push(p);
            }
        }
        for plan in plans {
            plans_run.push((hd, plan.rows, plan.splits, plan.ks));
            let (r, bkv) = (plan.rows as usize, plan.bkv() as usize);
            // t ≥ 2: the rows kernel serves prefills (t = 1 is decode's).
            let ts: Vec<usize> = [2, r - 1, r, r + 1, 100, 300]
                .into_iter()
                .filter(|&t| t >= 2)
                .collect();
            n += edge_sweep(&be, hd, i, &ts, bkv, Kernel::Rows(plan), &mut worst);
        }
    }
    println!(
        "rows attention on {}: {n} cases, plans (hd, rows, splits, keys per split) \
         {plans_run:?}, worst |x-r| = {:.3e}, worst NMSE = {:.3e}",
        be.describe(),
        worst.max_abs,
        worst.nmse
    );
}

/// The decode kernels (t = 1): the vec4 one for hd % 4 = 0 and the scalar
/// one otherwise, with kv_len around its key tile (128) and long caches,
/// causal and bidirectional, GQA; rows past kv_len hold NaN.
#[test]
fn wgpu_attention_decode_edges() {
    let Some(be) = gpu_or_skip() else { return };
    let mut worst = AttnStats::default();
    let mut n = 0;
    for (i, hd) in [4, 8, 64, 72, 128, 256, 6, 65].into_iter().enumerate() {
        for (j, kv_len) in [1, 2, 63, 127, 128, 129, 300, 1000].into_iter().enumerate() {
            let (h, h_kv) = HEADS[(i + j) % HEADS.len()];
            for causal in [true, false] {
                let c = AttnCase {
                    t: 1,
                    s: kv_len + 2,
                    kv_len,
                    h,
                    h_kv,
                    hd,
                    causal,
                };
                let st = attn_run(&be, c);
                worst.max_abs = worst.max_abs.max(st.max_abs);
                worst.nmse = worst.nmse.max(st.nmse);
                n += 1;
            }
        }
    }
    println!(
        "decode attention on {}: {n} cases, worst |x-r| = {:.3e}, worst NMSE = {:.3e}",
        be.describe(),
        worst.max_abs,
        worst.nmse
    );
}

/// A NaN in key or value row j reaches exactly the rows that see key j
/// (causal: later rows of the same query block do, earlier ones must not),
/// on every kernel: the backend's choice (t = 1: `decode.wgsl`; t = 40: the
/// rows kernel), the tiled kernel and small rows plans (key 30 on a block's
/// causal diagonal, in a split other than the first).
#[test]
fn wgpu_attention_nan_rows() {
    let Some(be) = gpu_or_skip() else { return };
    let limits = &be.device().limits;
    let mut kernels = vec![Kernel::Backend];
    kernels.push(Kernel::Tiled(AttnTiles::new(64, limits).expect("plan")));
    for p in [
        AttnRows::new(64, limits),
        AttnRows::with_plan(64, 16, 2, 8),
        AttnRows::with_plan(64, 8, 1, 8),
    ]
    .into_iter()
    .flatten()
    {
        kernels.push(Kernel::Rows(p));
    }
    for t in [1, 40] {
        for which in [NanIn::K, NanIn::V] {
            let c = AttnCase {
                t,
                s: 53,
                kv_len: 50,
                h: 4,
                h_kv: 2,
                hd: 64,
                causal: true,
            };
            for &kernel in &kernels {
                // Position 30: query rows 20.. of the t = 40 chunk see it.
                attn_run_nan(&be, c, Some((which, 30)), kernel);
                attn_run_nan(
                    &be,
                    AttnCase { causal: false, ..c },
                    Some((which, 30)),
                    kernel,
                );
            }
        }
    }
}

/// A caller's tiled plan is validated: a wrong head width, a row stride
/// narrower than the row, or an output split the kernel lacks is an error,
/// not a wrong result.
#[test]
fn wgpu_attention_tiled_with_rejects_bad_plans() {
    let Some(be) = gpu_or_skip() else { return };
    let limits = &be.device().limits;
    let good = AttnTiles::new(64, limits).expect("plan");
    let q = up(&be, &[0.5; 2 * 64], &[2, 1, 64]);
    let kv = up(&be, &[0.5; 2 * 64], &[2, 1, 64]);
    let run = |tiles: AttnTiles| {
        let mut out = nan_out(&be, &[2, 1, 64]);
        attention_tiled_with(
            &be,
            op::Attention {
                q: &q,
                k: &kv,
                v: &kv,
                kv_len: 2,
                causal: true,
                scale: 0.125,
                out: &mut out,
            },
            tiles,
        )
    };
    assert!(run(good).is_ok());
    for bad in [
        AttnTiles { h4: 17, ..good },
        AttnTiles {
            h4s: good.h4 - 1,
            ..good
        },
        AttnTiles { dv: 3, ..good },
        AttnTiles { qg: 0, ..good },
        AttnTiles {
            bkv: 5,
            rk: 2,
            ..good
        },
    ] {
        assert!(run(bad).is_err(), "{bad:?}");
    }
}
