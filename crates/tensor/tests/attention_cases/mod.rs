//! The attention cases shared by the WGSL attention tests
//! (`wgpu_attention.rs`, `wgpu_coop_attention.rs`): a case runs one attention call
//! through the backend's choice or a forced kernel and plan and checks it
//! against the f64 reference (`cpu/attention/reference.rs`) with
//! `testing::tolerance::GPU_ATTENTION`. Outputs start as NaN.
#![allow(dead_code)]

use tensor::cpu::attention;
use tensor::cpu::attention::AttnDims;
use tensor::testing::rng::Rng;
use tensor::testing::tolerance::{AttnStats, GPU_ATTENTION};
use tensor::wgpu::WgpuBackend;
use tensor::wgpu::attention::coop::{AttnCoop, attention_coop_with};
use tensor::wgpu::attention::{AttnRows, AttnTiles, attention_rows_with, attention_tiled_with};
use tensor::{Backend, op};

use super::wgpu_common::{down, nan_out, up};

/// (query heads, kv heads) taken in turn by the edge tests: GQA ratios
/// 1, 2, 2 and 4.
pub const HEADS: [(usize, usize); 4] = [(1, 1), (4, 2), (16, 8), (8, 2)];

/// The edge sweep of one plan: for each `t` in `ts`, causal with kv_len = t
/// and with a prefix, bidirectional with kv_len = t and kv_len ≠ t (kv_len
/// off the `bkv` key-block grid), GQA ratios taken in turn from `i`; the
/// causal cases are left out for a bidirectional-only kernel
/// ([`Kernel::Coop`]), which gets kv_len = 1 instead.
/// Returns the number of cases run.
pub fn edge_sweep(
    be: &WgpuBackend,
    hd: usize,
    i: usize,
    ts: &[usize],
    bkv: usize,
    kernel: Kernel,
    worst: &mut AttnStats,
) -> usize {
    let odd = |x: usize| if x.is_multiple_of(bkv) { x + 1 } else { x };
    let mut n = 0;
    for (j, &t) in ts.iter().enumerate() {
        let (h, h_kv) = HEADS[(i + j) % HEADS.len()];
        let modes = if matches!(kernel, Kernel::Coop(_)) {
            vec![(false, t), (false, odd(2 * bkv + 5)), (false, 1)]
        } else {
            vec![
                (true, t),
                (true, odd(t + bkv + 3)),
                (false, t),
                (false, odd(2 * bkv + 5)),
            ]
        };
        for (causal, kv_len) in modes {
            let c = AttnCase {
                t,
                s: kv_len + 3,
                kv_len,
                h,
                h_kv,
                hd,
                causal,
            };
            let st = attn_run_nan(be, c, None, kernel);
            worst.max_abs = worst.max_abs.max(st.max_abs);
            worst.nmse = worst.nmse.max(st.nmse);
            n += 1;
        }
    }
    n
}

#[derive(Clone, Copy, Debug)]
pub struct AttnCase {
    pub t: usize,
    pub s: usize,
    pub kv_len: usize,
    pub h: usize,
    pub h_kv: usize,
    pub hd: usize,
    pub causal: bool,
}

pub fn attn_run(be: &WgpuBackend, c: AttnCase) -> AttnStats {
    attn_run_nan(be, c, None, Kernel::Backend)
}

/// The kernel [`attn_run_nan`] runs.
#[derive(Clone, Copy, Debug)]
pub enum Kernel {
    /// The backend's choice (`Backend::attention`).
    Backend,
    /// The tiled kernel with this plan (`attention_tiled_with`).
    Tiled(AttnTiles),
    /// The rows kernel with this plan (`attention_rows_with`).
    Rows(AttnRows),
    /// The tensor-core kernel with this plan (`attention_coop_with`).
    Coop(AttnCoop),
}

/// Which input of [`attn_run_nan`] gets a NaN row.
#[derive(Clone, Copy, Debug)]
pub enum NanIn {
    K,
    V,
}

/// One attention case against the reference. Rows `kv_len..s` of k and v
/// hold NaN (they must not be read); `nan` also puts NaN in row `j <
/// kv_len` of k or v (every kv head), which the reference spreads to the
/// rows that see key `j` and to no other.
/// `kernel`: the backend's choice or a forced kernel and plan.
pub fn attn_run_nan(
    be: &WgpuBackend,
    c: AttnCase,
    nan: Option<(NanIn, usize)>,
    kernel: Kernel,
) -> AttnStats {
    let case = match nan {
        None => format!("{c:?}"),
        Some(n) => format!("{c:?} nan {n:?}"),
    };
    // The inputs depend on the case only, not on the kernel.
    let label = match kernel {
        Kernel::Backend => case.clone(),
        _ => format!("{case} {kernel:?}"),
    };
    let mut rng = Rng::for_case("wgpu_attention", &case);
    let q = rng.vec(c.t * c.h * c.hd, 1.0);
    let mut k = rng.vec(c.s * c.h_kv * c.hd, 1.0);
    let mut v = rng.vec(c.s * c.h_kv * c.hd, 1.0);
    let row = c.h_kv * c.hd;
    k[c.kv_len * row..].fill(f32::NAN);
    v[c.kv_len * row..].fill(f32::NAN);
    match nan {
        Some((NanIn::K, j)) => k[j * row..][..row].fill(f32::NAN),
        Some((NanIn::V, j)) => v[j * row..][..row].fill(f32::NAN),
        None => {}
    }
    let scale = 1.0 / (c.hd as f32).sqrt();
    let mut out = nan_out(be, &[c.t, c.h, c.hd]);
    let (tq, tk, tv) = (
        up(be, &q, &[c.t, c.h, c.hd]),
        up(be, &k, &[c.s, c.h_kv, c.hd]),
        up(be, &v, &[c.s, c.h_kv, c.hd]),
    );
    let op = op::Attention {
        q: &tq,
        k: &tk,
        v: &tv,
        kv_len: c.kv_len,
        causal: c.causal,
        scale,
        out: &mut out,
    };
    match kernel {
        Kernel::Tiled(p) => attention_tiled_with(be, op, p),
        Kernel::Rows(p) => attention_rows_with(be, op, p),
        Kernel::Coop(p) => attention_coop_with(be, op, p),
        Kernel::Backend => be.attention(op),
    }
    .unwrap_or_else(|e| panic!("{label}: {e}"));
    let dims = AttnDims {
        t: c.t,
        h: c.h,
        h_kv: c.h_kv,
        hd: c.hd,
        kv_len: c.kv_len,
        causal: c.causal,
        scale,
    };
    let r = attention::reference::attention(&q, &k, &v, dims);
    GPU_ATTENTION
        .check(&down(be, &out), &r.out, &r.mag)
        .unwrap_or_else(|e| panic!("{label}: {e:?}"))
}
