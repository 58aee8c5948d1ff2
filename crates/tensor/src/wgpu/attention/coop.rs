//! Bidirectional attention on cooperative matrices (tensor cores):
//! `shaders/attention/attention_coop.wgsl`, kernels/attention.md
//! ("Cooperative matrices"). The vision tower's attention (t > 1, no
//! mask) runs here where the device was granted cooperative matrices, has
//! a fixed subgroup size that is a multiple of the fragment side, and the
//! start-up self-check ([`self_check`]) passed; causal calls (prefill) keep
//! the rows kernel, whose per-row key skipping the contract needs (a NaN
//! in a v row a causal row does not see must not reach it).
//!
//! Every operand is carried as two f16 halves, so the result stays within
//! `testing::tolerance::GPU_ATTENTION`, like the f32 kernels.

use super::{AttnKernel, AttnPlan, attention_impl};
use crate::cpu::attention::{AttnDims, reference};
use crate::wgpu::ops::groups;
use crate::wgpu::shaders::ShaderId;
use crate::wgpu::uniforms::AttnParams;
use crate::wgpu::{Dispatch, WgpuBackend};
use crate::{Backend, DType, HostData, Result, Shape, Tensor, TensorError, op};

type T = Tensor<WgpuBackend>;

/// Plan of the two passes (`coop_split.wgsl`, `attention_coop.wgsl`; their
/// override constants, with the device's subgroup size): a workgroup of
/// `ns` subgroups owns `ns · cm` query rows of one head (`cm` per
/// subgroup) and walks the keys in blocks of `kf · cm`; head rows are
/// padded with zeros to `df · cm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnCoop {
    /// Fragment side (the device's [`crate::wgpu::device::GpuDevice::coop_fragment`]).
    pub cm: u32,
    /// Subgroups per workgroup (`NS`).
    pub ns: u32,
    /// Key fragments per block, 1 or 2 (`KF`).
    pub kf: u32,
    /// Head-width fragments, `ceil(hd / cm)` (`DF`).
    pub df: u32,
}

/// Threads per workgroup of the split pass.
const SPLIT_WG: u32 = 256;

impl AttnCoop {
    /// Largest head width the kernel takes.
    pub const MAX_HD: usize = 128;

    /// (subgroups, key fragments), most preferred first: four subgroups
    /// and 32-key blocks (16 × 16 fragments) fit hd 64 in 36 KiB and hd 72
    /// in 40 KiB, under NVIDIA's 48 KiB; hd 128 takes 16-key blocks there.
    pub const PLANS: [(u32, u32); 6] = [(4, 2), (4, 1), (2, 2), (2, 1), (1, 2), (1, 1)];

    /// The plan `(ns, kf)` for head width `hd` on `cm`-wide fragments, if
    /// the kernel takes them (not checked against a device: see
    /// [`AttnCoop::fits`]).
    pub fn with_plan(hd: usize, cm: u32, ns: u32, kf: u32) -> Option<Self> {
        if hd == 0 || hd > Self::MAX_HD || !matches!(cm, 8 | 16) {
            return None;
        }
        if !(1..=4).contains(&ns) || !(1..=2).contains(&kf) {
            return None;
        }
        Some(AttnCoop {
            cm,
            ns,
            kf,
            df: (hd as u32).div_ceil(cm),
        })
    }

    /// The first plan of [`AttnCoop::PLANS`] that fits a device with
    /// `limits` and `sg`-wide subgroups.
    pub fn new(hd: usize, cm: u32, sg: u32, limits: &wgpu::Limits) -> Option<Self> {
        Self::PLANS
            .into_iter()
            .filter_map(|(ns, kf)| Self::with_plan(hd, cm, ns, kf))
            .find(|p| p.fits(limits, sg))
    }

    /// Query rows per workgroup (`BQ`).
    pub fn rows(self) -> u32 {
        self.ns * self.cm
    }

    /// Keys per block (`BKV`).
    pub fn bkv(self) -> u32 {
        self.kf * self.cm
    }

    /// Padded head width (`DP`).
    pub fn dp(self) -> u32 {
        self.df * self.cm
    }

    /// Threads per workgroup on a device whose subgroups are `sg` wide.
    pub fn threads(self, sg: u32) -> u32 {
        sg * self.ns
    }

    /// Bytes of workgroup memory: p split in f16 (rows of `bkv + 8`), the
    /// scores and the output accumulator in f32 (rows of `bkv + 4` and
    /// `df·cm + 4`).
    pub fn shared_bytes(self) -> u32 {
        let (bq, bkv) = (self.rows(), self.bkv());
        // ps (f16), then ss and os (f32).
        2 * (2 * bq * (bkv + 8)) + 4 * (bq * (bkv + 4) + bq * (self.dp() + 4))
    }

    /// Whether a device with `limits` and `sg`-wide subgroups can run it:
    /// the softmax gives each row `sg / cm` lanes of a subgroup.
    pub fn fits(self, limits: &wgpu::Limits, sg: u32) -> bool {
        let t = self.threads(sg).max(SPLIT_WG);
        sg >= self.cm
            && sg.is_multiple_of(self.cm)
            && t <= limits.max_compute_invocations_per_workgroup
            && t <= limits.max_compute_workgroup_size_x
            && self.shared_bytes() <= limits.max_compute_workgroup_storage_size
    }

    /// f16 elements of the scratch for `t` query rows of `h` heads and
    /// `kv_len` keys of `h_kv` heads (`coop_layout.wgsl`): q, k and v,
    /// each in two halves, rows padded to whole blocks.
    pub fn scratch_len(self, t: usize, h: usize, kv_len: usize, h_kv: usize) -> u64 {
        let (bq, bkv, dp) = (
            u64::from(self.rows()),
            u64::from(self.bkv()),
            u64::from(self.dp()),
        );
        let tp = (t as u64).div_ceil(bq) * bq;
        let kp = (kv_len as u64).div_ceil(bkv) * bkv;
        2 * h as u64 * tp * dp + 4 * h_kv as u64 * kp * dp
    }

    /// Override constants of the attention pass on a device whose
    /// subgroups are `sg` wide.
    pub fn constants(self, sg: u32) -> [(&'static str, u32); 4] {
        [
            ("SG", sg),
            ("NS", self.ns),
            ("KF", self.kf),
            ("DF", self.df),
        ]
    }

    /// Override constants of the split pass.
    pub fn split_constants(self) -> [(&'static str, u32); 4] {
        [
            ("WG", SPLIT_WG),
            ("NS", self.ns),
            ("KF", self.kf),
            ("DF", self.df),
        ]
    }

    /// The shaders of this fragment side: (split pass, attention pass).
    pub fn shaders(self) -> (ShaderId, ShaderId) {
        if self.cm == 16 {
            (
                ShaderId::AttentionCoopSplit16F32F16,
                ShaderId::AttentionCoop16F32F32,
            )
        } else {
            (
                ShaderId::AttentionCoopSplit8F32F16,
                ShaderId::AttentionCoop8F32F32,
            )
        }
    }
}

/// The plan the backend takes for a `t`-row call with head width `hd`, or
/// `None` where the kernel does not apply: causal calls, `t = 1`, a device
/// without (or with checked-off) cooperative matrices or with a variable
/// subgroup size, no plan fitting, or [`crate::wgpu::WgpuOptions::attn_kernel`]
/// naming another kernel.
pub fn coop_attention_plan(
    be: &WgpuBackend,
    t: usize,
    hd: usize,
    causal: bool,
) -> Option<AttnCoop> {
    let forced = be.options().attn_kernel;
    if causal || t < 2 || matches!(forced, Some(AttnKernel::Rows | AttnKernel::Tiled)) {
        return None;
    }
    let dev = be.device();
    let cm = dev.coop_fragment.filter(|_| dev.coop_attention)?;
    AttnCoop::new(hd, cm, dev.subgroup_size?, &dev.limits)
}

/// Records one call with `plan` (the caller has checked the shapes and
/// that the plan fits): the split pass into the backend's scratch, then
/// the attention pass.
pub(super) fn record(
    be: &WgpuBackend,
    p: &AttnParams,
    q: &wgpu::Buffer,
    k: &wgpu::Buffer,
    v: &wgpu::Buffer,
    out: &wgpu::Buffer,
    plan: AttnCoop,
) -> Result<()> {
    let (t, h, kv_len, h_kv) = (
        p.t as usize,
        p.h as usize,
        p.kv_len as usize,
        p.h_kv as usize,
    );
    let len = plan.scratch_len(t, h, kv_len, h_kv);
    if u32::try_from(len).is_err() {
        return Err(TensorError::Gpu {
            what: "attention",
            detail: format!("a scratch of {len} f16 overflows the shaders' u32 indexing"),
        });
    }
    let sg = be.device().subgroup_size.unwrap_or(0);
    let (split, attend) = plan.shaders();
    let blocks = u64::from(p.t.div_ceil(plan.rows())) * u64::from(p.h);
    be.with_scratch(2 * len, |scratch| {
        // The split pass: one thread per padded element of q, k and v
        // (each writes its two halves).
        be.record(&Dispatch {
            shader: split,
            constants: &plan.split_constants(),
            params: bytemuck::bytes_of(p),
            buffers: &[(1, q), (2, k), (3, v), (5, scratch)],
            groups: groups(be, (len / 2).div_ceil(u64::from(SPLIT_WG)))?,
            host: None,
        })?;
        be.record(&Dispatch {
            shader: attend,
            constants: &plan.constants(sg),
            params: bytemuck::bytes_of(p),
            buffers: &[(4, out), (5, scratch)],
            groups: groups(be, blocks)?,
            host: None,
        })
    })
}

/// One bidirectional attention call `out = attention(q, k, v)` over
/// `kv_len` keys with `scale`, through some kernel.
pub type AttendFn<'a> = dyn Fn(&T, &T, &T, usize, f32, &mut T) -> Result<()> + 'a;

/// Head width of [`self_check`]'s problem: padded on 16-wide fragments.
pub const SELF_CHECK_HD: usize = 40;

/// Runs `attend` on a small bidirectional problem (hd
/// [`SELF_CHECK_HD`], t = 77 and kv_len = 45: two query blocks, the
/// second partial, even with 64-row blocks, a partial key block, two query
/// heads per kv head) and errors unless every output is
/// within 1e-5 of the f64 reference: 10× the kernels' tolerance, far below
/// what a dropped low half (≈ 1e-4), a mislaid fragment or a wrong head
/// gives. The backend runs it on the tensor-core kernel at start-up
/// (cooperative matrices are an experimental wgpu feature): where it
/// fails, the rows kernel is used.
pub fn self_check(be: &WgpuBackend, attend: &AttendFn<'_>) -> Result<()> {
    let (t, h, h_kv, hd, kv_len) = (77usize, 2usize, 1usize, SELF_CHECK_HD, 45usize);
    // Deterministic values in ±1 (an LCG: no dependence on a test RNG).
    let mut state = 0x2545_f491_u32;
    let mut next = move || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    };
    let q: Vec<f32> = (0..t * h * hd).map(|_| next()).collect();
    let k: Vec<f32> = (0..kv_len * h_kv * hd).map(|_| next()).collect();
    let v: Vec<f32> = (0..kv_len * h_kv * hd).map(|_| next()).collect();
    let scale = 1.0 / (hd as f32).sqrt();
    let up = |x: &[f32], rows: usize, heads: usize| {
        be.upload(HostData::f32(x), Shape::from([rows, heads, hd]))
    };
    let (tq, tk, tv) = (up(&q, t, h)?, up(&k, kv_len, h_kv)?, up(&v, kv_len, h_kv)?);
    let mut out = be.zeros(DType::F32, Shape::from([t, h, hd]))?;
    attend(&tq, &tk, &tv, kv_len, scale, &mut out)?;
    let got = be.download_f32(&out)?;
    let dims = AttnDims {
        t,
        h,
        h_kv,
        hd,
        kv_len,
        causal: false,
        scale,
    };
    let want = reference::attention(&q, &k, &v, dims).out;
    let wrong: Vec<(usize, f32, f32)> = got
        .iter()
        .zip(&want)
        .enumerate()
        .filter(|(_, (g, w))| {
            let err = (**g - **w).abs();
            err.is_nan() || err > 1e-5
        })
        .map(|(i, (g, w))| (i, *g, *w))
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    let first: Vec<String> = wrong
        .iter()
        .take(4)
        .map(|(i, g, w)| format!("[{i}] is {g}, want {w}"))
        .collect();
    Err(TensorError::Gpu {
        what: "tensor-core attention self-check",
        detail: format!(
            "{} of {} outputs off by more than 1e-5: {}",
            wrong.len(),
            got.len(),
            first.join("; ")
        ),
    })
}

/// The attention through the cooperative-matrix kernel with `plan`,
/// whatever `t` (t = 1 included): for tests and for timing on a real GPU.
/// Errors where the device has no cooperative matrices (or a variable
/// subgroup size), for causal calls, or where `plan` does not fit the
/// device or the head width. Same contract as [`crate::Backend::attention`].
pub fn attention_coop_with(
    be: &WgpuBackend,
    op: op::Attention<'_, WgpuBackend>,
    plan: AttnCoop,
) -> Result<()> {
    attention_impl(be, op, Some(AttnPlan::Coop(plan)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coop_attention_plans() {
        let big = wgpu::Limits {
            max_compute_workgroup_storage_size: 48 << 10,
            ..wgpu::Limits::default()
        };
        // 450M vision tower (hd 64) and 1.6B (hd 72) on an NVIDIA GPU.
        let p = AttnCoop::new(64, 16, 32, &big).expect("plan");
        assert_eq!((p.ns, p.kf, p.df, p.rows(), p.bkv()), (4, 2, 4, 64, 32));
        // p 2·64·40 f16; s 64·36 and o 64·68 f32.
        assert_eq!(
            p.shared_bytes(),
            2 * (2 * 64 * 40) + 4 * (64 * 36 + 64 * 68)
        );
        let p = AttnCoop::new(72, 16, 32, &big).expect("plan");
        assert_eq!((p.ns, p.kf, p.df), (4, 2, 5));
        assert!(p.shared_bytes() <= 48 << 10);
        let p = AttnCoop::new(128, 16, 32, &big).expect("plan");
        assert_eq!((p.ns, p.kf, p.df), (4, 1, 8));
        // Subgroups narrower than a fragment, or not a multiple of it.
        assert_eq!(AttnCoop::new(64, 16, 8, &big), None);
        assert_eq!(AttnCoop::new(64, 16, 24, &big), None);
        // 8-wide fragments on 8-wide subgroups fit WebGPU's 16 KiB.
        let p = AttnCoop::new(64, 8, 8, &wgpu::Limits::default()).expect("plan");
        assert_eq!((p.ns, p.kf), (4, 2));
        assert_eq!(AttnCoop::with_plan(129, 16, 2, 2), None);
        assert_eq!(AttnCoop::with_plan(0, 16, 2, 2), None);
        assert_eq!(AttnCoop::with_plan(64, 32, 2, 2), None);
        assert_eq!(AttnCoop::with_plan(64, 16, 2, 3), None);
        // Scratch: q 2·12·1024·64, k and v 4·12·1024·64 halves (450M tower);
        // t = 100 pads to 128 rows, kv_len = 33 to 64 keys.
        let p = AttnCoop::with_plan(64, 16, 4, 2).expect("plan");
        assert_eq!(p.scratch_len(1024, 12, 1024, 12), 6 * 12 * 1024 * 64);
        assert_eq!(p.scratch_len(100, 2, 33, 1), 2 * 2 * 128 * 64 + 4 * 64 * 64);
    }
}
