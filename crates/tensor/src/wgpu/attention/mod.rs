//! The wgpu attention op (`Backend::attention`, kernels/attention.md):
//! checks, then one dispatch of one of the kernels below (two for the
//! tensor-core one).
//!
//! - One query row (decode): one workgroup per head with an online softmax
//!   over key tiles: `attention/decode.wgsl` ([`ATTN_DECODE_WG`] threads,
//!   16-byte loads) where hd % 4 = 0, else `attention/attention.wgsl`
//!   ([`ATTN_WG`]).
//! - t > 1, bidirectional, on a device with cooperative matrices: the
//!   tensor-core kernel of [`coop`] (split pass, then
//!   `attention/attention_coop.wgsl`) where it applies.
//! - t > 1 otherwise: `attention/rows.wgsl` where hd % 4 = 0 and hd ≤ 128 (one query
//!   row per thread, plan from [`AttnRows::for_shape`]), else
//!   `attention/attention_tiled.wgsl` (one workgroup per block of query rows
//!   of one head, key blocks staged in workgroup memory, tile sizes from
//!   [`AttnTiles::for_shape`]); [`WgpuOptions::attn_kernel`] forces either.
//!
//! Tolerance: `testing::tolerance::GPU_ATTENTION`.

pub mod coop;

use self::coop::{AttnCoop, coop_attention_plan};
use crate::wgpu::ops::{groups, u32_of};
use crate::wgpu::shaders::ShaderId;
use crate::wgpu::uniforms::AttnParams;
use crate::wgpu::{Dispatch, WgpuBackend, WgpuOptions};
use crate::{Result, TensorError, op};

/// Threads per workgroup (one (row, head) each) of attention, and keys per tile.
pub const ATTN_WG: u32 = 64;
/// Threads (= keys per tile) of `attention/decode.wgsl`, the row kernel for
/// head widths that are a multiple of 4 (a power of two ≥ 64, since the
/// kernel splits the keys over `ATTN_DECODE_WG / (hd / 4)` slices).
pub const ATTN_DECODE_WG: u32 = 128;
/// Largest head width the attention kernels take (`MAX_HD` in the decode
/// shader, also ≤ `HD_PER_THREAD · ATTN_WG`).
pub const ATTN_MAX_HD: usize = 256;

/// Fewest workgroups a 64-row attention block must give to be chosen (see
/// [`AttnTiles::for_shape`]): about two per multiprocessor of a large GPU.
pub const ATTN_MIN_GROUPS: usize = 256;

/// Tile sizes of `attention_tiled.wgsl` for one head width: its override
/// constants. A workgroup holds `bq = 4·qg` query rows of one head and
/// walks keys in blocks of `bkv`; thread (query group, dim group) keeps 4
/// rows × `dv` vec4s of the output in registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnTiles {
    /// Query groups of 4 rows (`QG`).
    pub qg: u32,
    /// Keys per block (`BKV`).
    pub bkv: u32,
    /// vec4s per head row, `ceil(hd / 4)` (`H4`).
    pub h4: u32,
    /// Stride of staged rows in vec4s, `h4` or `h4 + 1` (`H4S`).
    pub h4s: u32,
    /// Output vec4s per thread and row (`DV`).
    pub dv: u32,
    /// Keys per score tile, 1 or 2 (`RK`).
    pub rk: u32,
}

impl AttnTiles {
    /// (query rows, keys) per block, most reuse first.
    const BLOCKS: [(u32, u32); 10] = [
        (64, 32),
        (64, 16),
        (32, 16),
        (32, 8),
        (16, 16),
        (16, 8),
        (8, 8),
        (8, 4),
        (4, 4),
        (4, 2),
    ];

    /// The largest blocks whose threads and workgroup memory fit `limits`,
    /// an odd row stride (no bank conflicts) preferred; `None` if even the
    /// smallest does not fit (the caller falls back to the decode kernel).
    /// Under WebGPU's default 16 KiB: hd 64: 32 × 16 keys, 64 threads,
    /// 14.9 KiB; hd 72: 32 × 16, 72 threads, 15.6 KiB (even stride); hd 128:
    /// 16 × 8, 32 threads. With the 48 KiB of most desktop GPUs (the device
    /// asks for the adapter's limit), hd 64 and 72 fit 64 × 32; the backend
    /// takes those only for large shapes ([`AttnTiles::for_shape`]).
    pub fn new(hd: usize, limits: &wgpu::Limits) -> Option<Self> {
        Self::with_blocks(hd, limits, None, 0)
    }

    /// The plan the backend runs for `t` query rows of `h` heads: the block
    /// `first` ([`WgpuOptions::attn_block`]) if given and fitting, else as
    /// [`AttnTiles::new`] except that 64-row blocks are taken only when they
    /// still make at least [`ATTN_MIN_GROUPS`] workgroups: below that, more
    /// and smaller blocks keep a large GPU busier (measured:
    /// `benches/gpu/README.md`).
    pub fn for_shape(
        hd: usize,
        t: usize,
        h: usize,
        limits: &wgpu::Limits,
        first: Option<(u32, u32)>,
    ) -> Option<Self> {
        let groups = |bq: u32| t.div_ceil(bq as usize) * h;
        let skip = if groups(64) >= ATTN_MIN_GROUPS { 0 } else { 64 };
        Self::with_blocks(hd, limits, first, skip)
    }

    /// As [`AttnTiles::new`], trying the block `first` (query rows, keys)
    /// before the usual order, whose blocks of `skip_rows` query rows are
    /// left out (0: none).
    pub fn with_blocks(
        hd: usize,
        limits: &wgpu::Limits,
        first: Option<(u32, u32)>,
        skip_rows: u32,
    ) -> Option<Self> {
        let h4 = u32::try_from(hd.div_ceil(4)).ok().filter(|&h4| h4 >= 1)?;
        let dv = match h4 {
            ..=8 => 1,
            9..=24 => 2,
            _ => 4,
        };
        let max_threads = limits
            .max_compute_invocations_per_workgroup
            .min(limits.max_compute_workgroup_size_x);
        let usual = Self::BLOCKS.into_iter().filter(|&(bq, _)| bq != skip_rows);
        for (bq, bkv) in first.into_iter().chain(usual) {
            for h4s in [h4 | 1, h4] {
                let mut tiles = AttnTiles {
                    qg: bq / 4,
                    bkv,
                    h4,
                    h4s,
                    dv,
                    rk: 2,
                };
                // One key per score tile when two would leave over a
                // quarter of the threads idle.
                // Also with an odd key block: a score tile of two keys
                // would leave the last key unscored.
                if !bkv.is_multiple_of(2) || 4 * (tiles.qg * bkv / 2) < 3 * tiles.threads() {
                    tiles.rk = 1;
                }
                if tiles.threads() <= max_threads
                    && tiles.shared_bytes() <= u64::from(limits.max_compute_workgroup_storage_size)
                {
                    return Some(tiles);
                }
            }
        }
        None
    }

    /// Whether this plan is one the kernel can run for `hd` within `limits`
    /// (what [`attention_tiled_with`] accepts from a caller).
    pub fn valid_for(&self, hd: usize, limits: &wgpu::Limits) -> bool {
        let max_threads = limits
            .max_compute_invocations_per_workgroup
            .min(limits.max_compute_workgroup_size_x);
        self.h4 as usize == hd.div_ceil(4)
            && (self.h4s == self.h4 || self.h4s == (self.h4 | 1))
            && matches!(self.dv, 1 | 2 | 4)
            && (1..=64).contains(&self.qg)
            && (1..=256).contains(&self.bkv)
            && matches!(self.rk, 1 | 2)
            && self.bkv.is_multiple_of(self.rk)
            && self.threads() <= max_threads
            && self.shared_bytes() <= u64::from(limits.max_compute_workgroup_storage_size)
    }

    /// Query rows per workgroup.
    pub fn bq(&self) -> u32 {
        4 * self.qg
    }

    /// Threads per workgroup (`WG`): query groups × dim groups, at least
    /// one per query row.
    pub fn threads(&self) -> u32 {
        (self.qg * self.h4.div_ceil(self.dv)).max(self.bq())
    }

    /// Workgroup memory: q block, k/v block, scores, per-row factors.
    pub fn shared_bytes(&self) -> u64 {
        let vec4s = (self.bq() + self.bkv) * self.h4s + self.bkv * self.qg + self.qg;
        16 * u64::from(vec4s)
    }

    /// The pipeline's override constants.
    pub fn constants(&self) -> [(&'static str, u32); 6] {
        [
            ("QG", self.qg),
            ("BKV", self.bkv),
            ("H4", self.h4),
            ("H4S", self.h4s),
            ("DV", self.dv),
            ("RK", self.rk),
        ]
    }
}

/// The attention kernels for t > 1 ([`WgpuOptions::attn_kernel`] forces
/// one, for A/B runs on a GPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttnKernel {
    /// `attention/attention_coop.wgsl` (bidirectional, cooperative
    /// matrices: [`coop`]).
    Coop,
    /// `attention/rows.wgsl` (hd % 4 = 0, hd ≤ [`AttnRows::MAX_HD`]).
    Rows,
    /// `attention/attention_tiled.wgsl` (any hd ≤ [`ATTN_MAX_HD`]).
    Tiled,
}

/// Plan of `attention/rows.wgsl` (its override constants): a workgroup of
/// `rows · splits` threads owns `rows` query rows of one head, one row and
/// one key split per thread (q and the output accumulator in registers),
/// and walks the keys in blocks of `bkv() = splits · ks` staged in
/// workgroup memory; split `s` takes keys `s·ks .. (s + 1)·ks` of each
/// block, and the splits of a row are merged at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnRows {
    /// Query rows per workgroup (`R`).
    pub rows: u32,
    /// Key splits, threads per row (`S`).
    pub splits: u32,
    /// Keys per split and block, a multiple of 8 (`KS`).
    pub ks: u32,
    /// vec4s per head row, `hd / 4` (`H4`).
    pub h4: u32,
}

impl AttnRows {
    /// Largest head width the kernel takes (its q and accumulator live in
    /// registers: 2·hd floats per thread).
    pub const MAX_HD: usize = 128;

    /// (rows, splits, keys per split), most preferred first: 32 rows make
    /// a warp of one split (its k and v reads are broadcasts), 4 splits
    /// quadruple the threads of a vision-tower call (t · h · 4).
    const PLANS: [(u32, u32, u32); 7] = [
        (32, 4, 16),
        (32, 4, 8),
        (32, 2, 16),
        (32, 2, 8),
        (32, 1, 8),
        (16, 1, 8),
        (8, 1, 8),
    ];

    /// The plan `(rows, splits, ks)` for head width `hd`, if the kernel
    /// takes `hd` and the plan is well formed (not checked against any
    /// device: see [`AttnRows::fits`]).
    pub fn with_plan(hd: usize, rows: u32, splits: u32, ks: u32) -> Option<Self> {
        if hd == 0 || !hd.is_multiple_of(4) || hd > Self::MAX_HD {
            return None;
        }
        // Bounded so that the thread and byte counts cannot overflow.
        if !(1..=256).contains(&rows)
            || !(1..=64).contains(&splits)
            || !(8..=512).contains(&ks)
            || !ks.is_multiple_of(8)
        {
            return None;
        }
        Some(AttnRows {
            rows,
            splits,
            ks,
            h4: (hd / 4) as u32,
        })
    }

    /// The first plan of the usual list that fits `limits`; `None` when
    /// `hd` is not a multiple of 4, exceeds [`AttnRows::MAX_HD`] or no
    /// plan fits; head widths up to 64 try 32 × 4 × 8 first (measured:
    /// `benches/gpu/README.md`). hd 64: 32 rows × 4 splits × 8 keys (128
    /// threads, 16 KiB); hd 72: 32 × 4 × 16 (36 KiB) with 48 KiB of workgroup
    /// memory, 32 × 2 × 8 (10 KiB) within WebGPU's default 16 KiB.
    pub fn new(hd: usize, limits: &wgpu::Limits) -> Option<Self> {
        Self::with_first(hd, limits, None)
    }

    /// As [`AttnRows::new`], the plan `first` ([`WgpuOptions::attn_rows`])
    /// first if given and fitting.
    pub fn for_shape(
        hd: usize,
        limits: &wgpu::Limits,
        first: Option<(u32, u32, u32)>,
    ) -> Option<Self> {
        Self::with_first(hd, limits, first)
    }

    /// As [`AttnRows::new`], trying `first` (rows, splits, ks) before the
    /// usual list.
    pub fn with_first(
        hd: usize,
        limits: &wgpu::Limits,
        first: Option<(u32, u32, u32)>,
    ) -> Option<Self> {
        // Narrow heads (the 450M tower's 64) take 8 keys per split before the
        // usual list, whose first plan suits hd 72 (measured:
        // benches/gpu/README.md).
        let narrow = (hd <= 64).then_some((32, 4, 8));
        first
            .into_iter()
            .chain(narrow)
            .chain(Self::PLANS)
            .filter_map(|(r, s, ks)| Self::with_plan(hd, r, s, ks))
            .find(|p| p.fits(limits))
    }

    /// Every plan of the usual list that fits `limits` (tests).
    pub fn all(hd: usize, limits: &wgpu::Limits) -> Vec<Self> {
        Self::PLANS
            .into_iter()
            .filter_map(|(r, s, ks)| Self::with_plan(hd, r, s, ks))
            .filter(|p| p.fits(limits))
            .collect()
    }

    /// Whether the threads and workgroup memory fit `limits`.
    pub fn fits(&self, limits: &wgpu::Limits) -> bool {
        let max_threads = limits
            .max_compute_invocations_per_workgroup
            .min(limits.max_compute_workgroup_size_x);
        self.threads() <= max_threads
            && self.shared_bytes() <= u64::from(limits.max_compute_workgroup_storage_size)
    }

    /// Keys per block (`BKV`).
    pub fn bkv(&self) -> u32 {
        self.splits * self.ks
    }

    /// Threads per workgroup (`WG`).
    pub fn threads(&self) -> u32 {
        self.rows * self.splits
    }

    /// Workgroup memory: the K and V block, which the split merge reuses
    /// (`rows · h4` partial outputs and one (m, l) per thread).
    pub fn shared_bytes(&self) -> u64 {
        let vec4s = (2 * self.bkv() * self.h4).max(self.rows * self.h4 + self.threads());
        16 * u64::from(vec4s)
    }

    /// The pipeline's override constants.
    pub fn constants(&self) -> [(&'static str, u32); 4] {
        [
            ("R", self.rows),
            ("S", self.splits),
            ("KS", self.ks),
            ("H4", self.h4),
        ]
    }
}

/// The kernel and plan of one attention call (t > 1).
#[derive(Clone, Copy, Debug)]
pub(super) enum AttnPlan {
    Tiled(AttnTiles),
    Rows(AttnRows),
    Coop(AttnCoop),
}

/// See [`op::Attention`].
pub(crate) fn attention(be: &WgpuBackend, op: op::Attention<'_, WgpuBackend>) -> Result<()> {
    attention_impl(be, op, None)
}

/// The attention through the tiled kernel with the plan `tiles`, whatever
/// the shape (t = 1 included): for tests of every block size and for tuning
/// on a real GPU. Same contract as [`crate::Backend::attention`]; `tiles`
/// must fit the device (see [`AttnTiles::new`]) and match the head width.
pub fn attention_tiled_with(
    be: &WgpuBackend,
    op: op::Attention<'_, WgpuBackend>,
    tiles: AttnTiles,
) -> Result<()> {
    attention_impl(be, op, Some(AttnPlan::Tiled(tiles)))
}

/// The attention through the rows kernel with the plan `plan`, whatever
/// the shape (t = 1 included): for tests and tuning. Same contract as
/// [`crate::Backend::attention`]; `plan` must fit the device (see
/// [`AttnRows::fits`]) and match the head width (`hd = 4 · plan.h4`).
pub fn attention_rows_with(
    be: &WgpuBackend,
    op: op::Attention<'_, WgpuBackend>,
    plan: AttnRows,
) -> Result<()> {
    attention_impl(be, op, Some(AttnPlan::Rows(plan)))
}

/// The checks, the plan (`forced`, or the automatic choice) and the
/// dispatch of every attention call; the `*_with` entry points force a plan.
pub(super) fn attention_impl(
    be: &WgpuBackend,
    op: op::Attention<'_, WgpuBackend>,
    forced: Option<AttnPlan>,
) -> Result<()> {
    const OP: &str = op::Attention::<WgpuBackend>::NAME;
    let op::AttnShape { t, h, h_kv, hd } = op.check()?;
    let op::Attention {
        q,
        k,
        v,
        kv_len,
        causal,
        scale,
        out,
    } = op;
    if hd > ATTN_MAX_HD {
        return Err(TensorError::OutOfRange {
            op: "attention (wgpu)",
            what: "head width",
            value: hd,
            limit: ATTN_MAX_HD,
        });
    }
    if t == 0 || h == 0 || hd == 0 {
        return Ok(());
    }
    u32_of(OP, k.shape().rows() * hd)?;
    u32_of(OP, t * h * hd)?;
    let p = AttnParams {
        t: u32_of(OP, t)?,
        h: u32_of(OP, h)?,
        h_kv: u32_of(OP, h_kv)?,
        hd: u32_of(OP, hd)?,
        kv_len: u32_of(OP, kv_len)?,
        causal: u32::from(causal),
        scale,
        pad0: 0,
    };
    let buffers = [
        (1, q.storage().buffer()),
        (2, k.storage().buffer()),
        (3, v.storage().buffer()),
        (4, out.storage().buffer()),
    ];
    let limits = &be.device().limits;
    let misfit = |what: String| TensorError::Gpu {
        what: "attention",
        detail: format!("{what} does not fit hd {hd} on this device"),
    };
    // The tensor-core kernel's scratch must fit one binding.
    let scratch_fits = |c: AttnCoop| {
        let bytes = 2 * c.scratch_len(t, h, kv_len, h_kv);
        bytes <= limits.max_storage_buffer_binding_size && bytes <= limits.max_buffer_size
    };
    let plan = match forced {
        Some(AttnPlan::Tiled(tiles)) => {
            if !tiles.valid_for(hd, limits) {
                return Err(misfit(format!("{tiles:?}")));
            }
            Some(AttnPlan::Tiled(tiles))
        }
        Some(AttnPlan::Rows(rows)) => {
            if 4 * rows.h4 as usize != hd
                || AttnRows::with_plan(hd, rows.rows, rows.splits, rows.ks) != Some(rows)
                || !rows.fits(limits)
            {
                return Err(misfit(format!("{rows:?}")));
            }
            Some(AttnPlan::Rows(rows))
        }
        Some(AttnPlan::Coop(plan)) => {
            let dev = be.device();
            let Some((cm, sg)) = dev.coop_fragment.zip(dev.subgroup_size) else {
                return Err(TensorError::Gpu {
                    what: "attention",
                    detail: format!("{} has no cooperative matrices", dev.describe()),
                });
            };
            if causal {
                return Err(TensorError::Gpu {
                    what: "attention",
                    detail: "the tensor-core kernel is bidirectional only".into(),
                });
            }
            if plan.cm != cm
                || AttnCoop::with_plan(hd, cm, plan.ns, plan.kf) != Some(plan)
                || !plan.fits(limits, sg)
                || !scratch_fits(plan)
            {
                return Err(misfit(format!("{plan:?}")));
            }
            Some(AttnPlan::Coop(plan))
        }
        None if t > 1 => {
            let opts: &WgpuOptions = be.options();
            let rows = match opts.attn_kernel {
                Some(AttnKernel::Tiled) => None,
                _ => AttnRows::for_shape(hd, limits, opts.attn_rows),
            };
            let coop = coop_attention_plan(be, t, hd, causal).filter(|&c| scratch_fits(c));
            match (coop, rows) {
                (Some(plan), _) => Some(AttnPlan::Coop(plan)),
                (None, Some(rows)) => Some(AttnPlan::Rows(rows)),
                (None, None) => {
                    AttnTiles::for_shape(hd, t, h, limits, opts.attn_block).map(AttnPlan::Tiled)
                }
            }
        }
        None => None,
    };
    match plan {
        Some(AttnPlan::Tiled(tiles)) => be.record(&Dispatch {
            shader: ShaderId::AttentionTiledF32F32,
            constants: &tiles.constants(),
            params: bytemuck::bytes_of(&p),
            buffers: &buffers,
            groups: groups(be, t.div_ceil(tiles.bq() as usize) as u64 * h as u64)?,
            host: None,
        }),
        Some(AttnPlan::Coop(plan)) => coop::record(
            be,
            &p,
            q.storage().buffer(),
            k.storage().buffer(),
            v.storage().buffer(),
            out.storage().buffer(),
            plan,
        ),
        Some(AttnPlan::Rows(rows)) => be.record(&Dispatch {
            shader: ShaderId::AttentionRowsF32F32,
            constants: &rows.constants(),
            params: bytemuck::bytes_of(&p),
            buffers: &buffers,
            groups: groups(be, t.div_ceil(rows.rows as usize) as u64 * h as u64)?,
            host: None,
        }),
        None => be.record(&Dispatch {
            // One workgroup per (row, head): 16-byte loads where hd allows.
            shader: if hd.is_multiple_of(4) {
                ShaderId::AttentionDecodeF32F32
            } else {
                ShaderId::AttentionF32F32
            },
            constants: &[(
                "WG",
                if hd.is_multiple_of(4) {
                    ATTN_DECODE_WG
                } else {
                    ATTN_WG
                },
            )],
            params: bytemuck::bytes_of(&p),
            buffers: &buffers,
            groups: groups(be, (t * h) as u64)?,
            host: None,
        }),
    }
}
