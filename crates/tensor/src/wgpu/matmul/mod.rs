//! WGSL matmul (`kernels/matmul.md`): `y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n])`
//! with x f32, w bf16 / f16 (packed two per u32) or f32 in PyTorch Linear
//! layout, f32 accumulation, f32 output.
//!
//! Two kernel families, chosen by `m`:
//! - m = 1 (decode), memory-bound, in the kinds of [`GemvKind`] picked by
//!   [`gemv_kind`]: bf16 rows of a multiple of 8 elements are read 16 bytes
//!   at a time (`gemv_x8*.wgsl`, reduced with `subgroupAdd` where the adapter
//!   has fixed-size subgroups, else in workgroup memory); anything else goes
//!   through `gemv.wgsl` (4-byte words, `TPR` threads per row).
//! - m ≥ 2: `shaders/matmul/matmul.wgsl`, a tiled GEMM in the variants of
//!   [`GemmVariant`] (tile side, outputs per thread, k-slices, k-step,
//!   single or double buffered staging), picked by
//!   [`gemm_variant`] so that small shapes still fill a large GPU.
//! - m ≥ [`coop::COOP_MIN_M`] with bf16 or f16 weights, where the device has
//!   cooperative matrices: the tensor-core GEMM of [`coop`]
//!   (`matmul_coop.wgsl`, or with [`crate::wgpu::WgpuOptions::coop_presplit`] the
//!   presplit `matmul_coop_presplit.wgsl` after its first pass).
//!
//! Tolerance class: `testing::tolerance::GPU_MATMUL`.

pub mod coop;
pub mod gemv_fused;

use self::coop::{CoopGemm, coop_applies, coop_shader, presplit_fits};
pub use self::coop::{coop_presplit_with, coop_with};
use crate::op;
use crate::wgpu::shaders::ShaderId;
use crate::wgpu::uniforms::MatmulParams;
use crate::wgpu::{Dispatch, WgpuBackend};
use crate::{DType, Result, TensorError};

/// One pipeline variant of the tiled GEMM (`shaders/matmul/matmul.wgsl`):
/// a `tile × tile` output tile per workgroup, `tm × tm` outputs per thread
/// (4 or 8), `ks` k-slices (a power of two) whose partial sums are added in
/// workgroup memory, `ld` vec4s of x and of w staged per thread per k-step
/// (1 or 2) and `nb` staging buffers (1: two barriers per k-step; 2: double
/// buffered, one barrier per k-step, tiles swizzled instead of padded).
/// Threads per workgroup: `ks · (tile / tm)²`; the k-step is
/// `ld · 4 · (tile / tm)² / tile`. A variant runs only where the device
/// grants its workgroup memory ([`GemmVariant::fits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmVariant {
    pub tile: u32,
    pub tm: u32,
    pub ks: u32,
    pub ld: u32,
    pub nb: u32,
}

/// 128 × 128 tiles, 8 × 8 outputs per thread, 256 threads, k-step 8: the
/// most reuse per load, for shapes with enough tiles to fill the GPU.
pub const GEMM_LARGE: GemmVariant = GemmVariant {
    tile: 128,
    tm: 8,
    ks: 1,
    ld: 1,
    nb: 1,
};
/// 64 × 64 tiles, 8 × 8 outputs per thread, 64 threads, k-step 4.
pub const GEMM_MEDIUM: GemmVariant = GemmVariant {
    tile: 64,
    tm: 8,
    ks: 1,
    ld: 1,
    nb: 1,
};
/// 64 × 64 tiles, 8 × 8 outputs per thread, 4 k-slices: 256 threads.
pub const GEMM_MEDIUM_SPLIT: GemmVariant = GemmVariant {
    tile: 64,
    tm: 8,
    ks: 4,
    ld: 1,
    nb: 1,
};
/// 32 × 32 tiles, 4 × 4 outputs per thread, 4 k-slices: 256 threads,
/// k-step 8. For small `m · n` (short prompts), where tiles are few.
pub const GEMM_SMALL: GemmVariant = GemmVariant {
    tile: 32,
    tm: 4,
    ks: 4,
    ld: 1,
    nb: 1,
};
/// [`GEMM_LARGE`] double buffered: k-step 8, 16 KiB (fits WebGPU's default).
pub const GEMM_LARGE_DB: GemmVariant = GemmVariant {
    tile: 128,
    tm: 8,
    ks: 1,
    ld: 1,
    nb: 2,
};
/// [`GEMM_LARGE`] double buffered with k-step 16: 32 KiB.
pub const GEMM_LARGE_DB16: GemmVariant = GemmVariant {
    tile: 128,
    tm: 8,
    ks: 1,
    ld: 2,
    nb: 2,
};
/// [`GEMM_MEDIUM`] double buffered with k-step 8: 8 KiB.
pub const GEMM_MEDIUM_DB: GemmVariant = GemmVariant {
    tile: 64,
    tm: 8,
    ks: 1,
    ld: 2,
    nb: 2,
};
/// [`GEMM_MEDIUM_SPLIT`] double buffered with k-step 8: 32 KiB.
pub const GEMM_MEDIUM_SPLIT_DB: GemmVariant = GemmVariant {
    tile: 64,
    tm: 8,
    ks: 4,
    ld: 2,
    nb: 2,
};
/// Every variant: those [`gemm_variant`] can pick (the first four, within
/// WebGPU's default limits), then the double-buffered ones, for
/// [`gemm_with`] (tests, tuning).
pub const GEMM_VARIANTS: [GemmVariant; 8] = [
    GEMM_LARGE,
    GEMM_MEDIUM,
    GEMM_MEDIUM_SPLIT,
    GEMM_SMALL,
    GEMM_LARGE_DB,
    GEMM_LARGE_DB16,
    GEMM_MEDIUM_DB,
    GEMM_MEDIUM_SPLIT_DB,
];

/// Workgroups a variant needs before it is picked (see [`gemm_variant`]):
/// about two per SM of a 132-SM GPU for the 256-thread large tile, four for
/// the 64-thread medium tile, one for the k-sliced medium tile.
const LARGE_MIN_TILES: u64 = 256;
const MEDIUM_MIN_TILES: u64 = 512;
const MEDIUM_SPLIT_MIN_TILES: u64 = 128;

impl GemmVariant {
    /// Override constants of the pipeline.
    pub fn constants(self) -> [(&'static str, u32); 5] {
        [
            ("TILE", self.tile),
            ("TM", self.tm),
            ("KS", self.ks),
            ("LD", self.ld),
            ("NB", self.nb),
        ]
    }

    /// Workgroups (output tiles) for an `m × n` output.
    pub fn tiles(self, m: usize, n: usize) -> u64 {
        let t = u64::from(self.tile);
        (m as u64).div_ceil(t) * (n as u64).div_ceil(t)
    }

    /// Threads per workgroup.
    pub fn threads(self) -> u32 {
        let p = self.tile / self.tm;
        self.ks * p * p
    }

    /// The k-step: each thread stages `ld` vec4s (4 rows at one k) of x and
    /// of w.
    pub fn bk(self) -> u32 {
        let p = self.tile / self.tm;
        self.ld * 4 * p * p / self.tile
    }

    /// Bytes of workgroup memory (`SMEM_LEN` vec4s in the shader): per
    /// buffer and k-slice an x and a w tile of `bk` k rows of `tile / 4`
    /// vec4s (plus the bank padding when single buffered), or the k-slice
    /// reduction's if larger.
    pub fn workgroup_bytes(self) -> u32 {
        let p = self.tile / self.tm;
        let slice = p * p;
        let bkl = 4 * slice / self.tile;
        let pad = (8 / bkl).max(1);
        let row = self.tile / 4 + if self.nb == 1 { pad } else { 0 };
        let staging = self.nb * self.ks * 2 * self.bk() * row;
        let reduction = (self.ks / 2) * slice * 4;
        16 * staging.max(reduction)
    }

    /// Whether a device with `limits` can run the variant (workgroup size
    /// and memory).
    pub fn fits(self, limits: &wgpu::Limits) -> bool {
        self.threads() <= limits.max_compute_invocations_per_workgroup
            && self.threads() <= limits.max_compute_workgroup_size_x
            && self.workgroup_bytes() <= limits.max_compute_workgroup_storage_size
    }

    /// A short name for reports: `gemm{tile}x{tm}k{ks}`, with `_bk{bk}` and
    /// `_db` where the staging differs from the single-buffered one vec4.
    pub fn name(self) -> String {
        let mut s = format!("gemm{}x{}k{}", self.tile, self.tm, self.ks);
        if self.ld != 1 || self.nb != 1 {
            s.push_str(&format!("_bk{}", self.bk()));
        }
        if self.nb == 2 {
            s.push_str("_db");
        }
        s
    }
}

/// The GEMM variant for an `m × n` output (m ≥ 2): the largest tile that
/// still yields enough workgroups to spread over the GPU, else k-slices to
/// multiply the threads of the few tiles there are. Always single buffered,
/// within WebGPU's default limits.
pub fn gemm_variant(m: usize, n: usize) -> GemmVariant {
    if GEMM_LARGE.tiles(m, n) >= LARGE_MIN_TILES {
        GEMM_LARGE
    } else if GEMM_MEDIUM.tiles(m, n) >= MEDIUM_MIN_TILES {
        GEMM_MEDIUM
    } else if GEMM_MEDIUM_SPLIT.tiles(m, n) >= MEDIUM_SPLIT_MIN_TILES {
        GEMM_MEDIUM_SPLIT
    } else {
        GEMM_SMALL
    }
}

/// GEMV threads per workgroup.
pub const GEMV_WG: u32 = 256;

/// Override constants of the GEMV `kind` with `per_row` threads per row
/// (`TPR`; for `X8Subgroup`, the subgroup size `SG`).
pub fn gemv_constants(kind: GemvKind, per_row: u32) -> [(&'static str, u32); 2] {
    let name = if kind == GemvKind::X8Subgroup {
        "SG"
    } else {
        "TPR"
    };
    [("WG", GEMV_WG), (name, per_row)]
}

/// The m = 1 kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemvKind {
    /// `gemv.wgsl`: 4-byte loads; any weight dtype and k.
    Words,
    /// `gemv_x8_wg.wgsl`: bf16 weights, k a positive multiple of 8, 16-byte
    /// loads, reduction in workgroup memory.
    X8,
    /// `gemv_x8_sg.wgsl`: as `X8`, one subgroup per row and `subgroupAdd`;
    /// needs the device's fixed subgroup size ([`crate::wgpu::device::GpuDevice::subgroup_size`]).
    X8Subgroup,
    /// `gemv_blocks.wgsl`: ggml block-format weights as stored, in groups
    /// of 32 weights; the only kind for them.
    Blocks,
}

/// The fastest GEMV kind that applies to `k` and `dtype` on `be`'s device.
pub fn gemv_kind(be: &WgpuBackend, k: usize, dtype: DType) -> GemvKind {
    if dtype.is_block() {
        GemvKind::Blocks
    } else if dtype != DType::BF16 || k == 0 || !k.is_multiple_of(8) {
        GemvKind::Words
    } else if gemv_subgroup(be).is_some() {
        GemvKind::X8Subgroup
    } else {
        GemvKind::X8
    }
}

/// The subgroup size the subgroup GEMV runs with: the device's fixed size,
/// if it divides the workgroup.
pub(crate) fn gemv_subgroup(be: &WgpuBackend) -> Option<u32> {
    let dev = be.device();
    dev.subgroup_size
        .filter(|&s| s > 0 && GEMV_WG.is_multiple_of(s))
        .filter(|_| dev.features.contains(wgpu::Features::SUBGROUP))
}

/// Threads per row of the block GEMV (`gemv_blocks.wgsl`): enough to cover
/// the row's groups of 32 weights in a few strides.
pub fn gemv_blocks_threads_per_row(k: usize) -> u32 {
    let groups = k / 32;
    if groups >= 128 {
        64
    } else if groups >= 16 {
        16
    } else {
        4
    }
}

/// Threads per row of the x8 GEMV (`gemv_x8_wg.wgsl`): enough to cover the
/// row's 16-byte vectors in a few strides.
pub fn gemv_x8_threads_per_row(k: usize) -> u32 {
    let vectors = k / 8;
    if vectors >= 128 {
        64
    } else if vectors >= 32 {
        32
    } else {
        8
    }
}

/// GEMV threads per row: enough to cover a row's storage words in a few
/// strides, from a small fixed set so few pipeline variants exist.
pub fn gemv_threads_per_row(k: usize, dtype: DType) -> u32 {
    let words = if dtype == DType::F32 {
        k
    } else {
        k.div_ceil(2)
    };
    if words >= 256 {
        64
    } else if words >= 32 {
        32
    } else {
        8
    }
}

/// Spreads `groups` workgroups over a 2D grid with at most `max_per_dim`
/// per dimension. Returns `[x, y, 1]` with `x · y ≥ groups` (the shaders
/// linearise `wid.y · nwg.x + wid.x` and skip the surplus, fewer than `y`).
pub fn grid(groups: u64, max_per_dim: u32) -> Result<[u32; 3]> {
    let max = u64::from(max_per_dim.max(1));
    let y = groups.div_ceil(max).max(1);
    let x = groups.div_ceil(y);
    if y > max {
        return Err(TensorError::Gpu {
            what: "matmul dispatch",
            detail: format!("{groups} workgroups exceed the device's {max} × {max} grid"),
        });
    }
    // Both fit in u32: x, y ≤ max ≤ u32::MAX.
    Ok([x as u32, y as u32, 1])
}

/// Records the matmul (see [`op::Matmul`]).
pub(crate) fn matmul(be: &WgpuBackend, op: op::Matmul<'_, WgpuBackend>) -> Result<()> {
    record(be, op, Choice::Auto)
}

/// Which kernel [`record`] runs.
#[derive(Clone, Copy)]
pub(super) enum Choice {
    /// The GEMV for m = 1 ([`gemv_kind`]), the tensor-core GEMM where
    /// [`coop_applies`], the GEMM of [`gemm_variant`] else.
    Auto,
    Gemm(GemmVariant),
    Gemv(GemvKind),
    Coop(CoopGemm),
}

/// The kernel [`record`] resolved a [`Choice`] to.
#[derive(Clone, Copy)]
enum Kernel {
    Gemm(GemmVariant),
    Gemv(GemvKind),
    Coop(CoopGemm),
}

/// The matmul of an m = 1 `x` through the GEMV `kind`: for tests of every
/// kind and for timing them on a real GPU. Errors where the kind does not
/// apply (dtype, k, or the device's subgroups). Same contract as
/// [`crate::Backend::matmul`].
pub fn gemv_with(be: &WgpuBackend, op: op::Matmul<'_, WgpuBackend>, kind: GemvKind) -> Result<()> {
    let (x, w) = (op.x, op.w);
    let k = x.shape().last();
    let best = gemv_kind(be, k, w.dtype());
    let applies = match kind {
        GemvKind::Words => best != GemvKind::Blocks,
        GemvKind::X8 => matches!(best, GemvKind::X8 | GemvKind::X8Subgroup),
        GemvKind::X8Subgroup | GemvKind::Blocks => best == kind,
    };
    if x.shape().rows() != 1 || !applies {
        return Err(TensorError::Gpu {
            what: "matmul",
            detail: format!(
                "GEMV {kind:?} does not apply to x {} and w {} {} on this device",
                x.shape(),
                w.dtype(),
                w.shape()
            ),
        });
    }
    record(be, op, Choice::Gemv(kind))
}

/// The matmul through the tiled GEMM in `variant`, whatever the shape
/// (m = 1 included): for tests of every variant and for tuning
/// [`gemm_variant`] on a real GPU. Errors where the device does not grant
/// the variant's workgroup size or memory ([`GemmVariant::fits`]). Same
/// contract as [`crate::Backend::matmul`].
pub fn gemm_with(
    be: &WgpuBackend,
    op: op::Matmul<'_, WgpuBackend>,
    variant: GemmVariant,
) -> Result<()> {
    if !GEMM_VARIANTS.contains(&variant) {
        return Err(TensorError::Gpu {
            what: "matmul",
            detail: format!("{variant:?} is not one of GEMM_VARIANTS"),
        });
    }
    record(be, op, Choice::Gemm(variant))
}

/// Checks and records the matmul: the GEMV for m = 1, the tensor-core GEMM
/// where [`coop_applies`] and the GEMM variant of [`gemm_variant`]
/// otherwise, unless `choice` names a kernel.
pub(super) fn record(
    be: &WgpuBackend,
    op: op::Matmul<'_, WgpuBackend>,
    choice: Choice,
) -> Result<()> {
    let (m, n, k) = op.check()?;
    let op::Matmul { x, w, bias, out } = op;
    if m == 0 || n == 0 {
        return Ok(());
    }
    let limits = &be.device().limits;
    for (what, t) in [("x", x), ("w", w), ("out", &*out)]
        .into_iter()
        .chain(bias.map(|b| ("bias", b)))
    {
        let size = t.storage().buffer().size();
        if size > limits.max_storage_buffer_binding_size {
            return Err(TensorError::Gpu {
                what: "matmul",
                detail: format!(
                    "{what} {} {} takes {size} bytes, over the device's max_storage_buffer_binding_size of {}",
                    t.dtype(),
                    t.shape(),
                    limits.max_storage_buffer_binding_size
                ),
            });
        }
    }
    // Shader indices are u32 element (and block-byte) offsets.
    if [m * k, n * k, m * n]
        .iter()
        .any(|&e| u32::try_from(e).is_err())
        || u32::try_from(w.storage().byte_len()).is_err()
    {
        return Err(TensorError::Gpu {
            what: "matmul",
            detail: format!("m={m} n={n} k={k} overflows u32 indexing"),
        });
    }
    let sg = be.device().subgroup_size.unwrap_or(0);
    let kernel = match choice {
        Choice::Auto if m == 1 => Kernel::Gemv(gemv_kind(be, k, w.dtype())),
        Choice::Auto => match coop_applies(be, m, w.dtype()).filter(|c| c.fits(limits, sg)) {
            // x's halves must fit one binding; else the staged kernel.
            Some(c) if c.presplit && !presplit_fits(c, m, k, limits) => Kernel::Coop(CoopGemm {
                presplit: false,
                ..c
            }),
            Some(c) => Kernel::Coop(c),
            // A device granted less than WebGPU's defaults: the 64-thread tile.
            None => Kernel::Gemm(
                Some(gemm_variant(m, n))
                    .filter(|v| v.fits(limits))
                    .unwrap_or(GEMM_MEDIUM),
            ),
        },
        Choice::Gemm(v) => Kernel::Gemm(v),
        Choice::Gemv(kind) => Kernel::Gemv(kind),
        Choice::Coop(c) => Kernel::Coop(c),
    };
    let refused = match kernel {
        Kernel::Gemm(v) if !v.fits(limits) => Some((v.name(), v.threads(), v.workgroup_bytes())),
        Kernel::Coop(c) if !c.fits(limits, sg) => {
            Some((c.name(), c.threads(sg), c.workgroup_bytes()))
        }
        _ => None,
    };
    if let Some((name, threads, bytes)) = refused {
        return Err(TensorError::Gpu {
            what: "matmul",
            detail: format!(
                "GEMM {name} needs {threads} threads and {bytes} B of workgroup memory; the device grants {} and {} B",
                limits.max_compute_invocations_per_workgroup,
                limits.max_compute_workgroup_storage_size
            ),
        });
    }
    let shader = match (w.dtype(), kernel) {
        (_, Kernel::Gemv(GemvKind::X8)) => ShaderId::GemvBf16X8F32,
        (_, Kernel::Gemv(GemvKind::X8Subgroup)) => ShaderId::GemvBf16X8SgF32,
        (DType::BF16, Kernel::Gemv(_)) => ShaderId::GemvBf16F32,
        (DType::F16, Kernel::Gemv(_)) => ShaderId::GemvF16F32,
        (DType::F32, Kernel::Gemv(_)) => ShaderId::GemvF32F32,
        (DType::BF16, Kernel::Gemm(_)) => ShaderId::MatmulBf16F32,
        (DType::F16, Kernel::Gemm(_)) => ShaderId::MatmulF16F32,
        (DType::F32, Kernel::Gemm(_)) => ShaderId::MatmulF32F32,
        (DType::BF16 | DType::F16, Kernel::Coop(c)) => coop_shader(c, w.dtype()),
        (DType::Q8_0, Kernel::Gemv(GemvKind::Blocks)) => ShaderId::GemvQ80F32,
        (DType::Q4_0, Kernel::Gemv(GemvKind::Blocks)) => ShaderId::GemvQ40F32,
        (DType::Q4K, Kernel::Gemv(GemvKind::Blocks)) => ShaderId::GemvQ4KF32,
        (DType::Q6K, Kernel::Gemv(GemvKind::Blocks)) => ShaderId::GemvQ6KF32,
        (DType::Q8_0, Kernel::Gemm(_)) => ShaderId::MatmulQ80F32,
        (DType::Q4_0, Kernel::Gemm(_)) => ShaderId::MatmulQ40F32,
        (DType::Q4K, Kernel::Gemm(_)) => ShaderId::MatmulQ4KF32,
        (DType::Q6K, Kernel::Gemm(_)) => ShaderId::MatmulQ6KF32,
        (dtype, _) => {
            return Err(TensorError::UnsupportedDType {
                op: "matmul (wgpu)",
                what: "w",
                dtype,
            });
        }
    };
    let dev = be.device();
    if !dev.features.contains(shader.required_features())
        || !dev.downlevel.contains(shader.required_downlevel())
    {
        return Err(TensorError::UnsupportedDType {
            op: "matmul (wgpu, this adapter)",
            what: "w",
            dtype: w.dtype(),
        });
    }
    let params = MatmulParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        has_bias: u32::from(bias.is_some()),
    };
    // Stack arrays: no allocation per call.
    let two;
    let three;
    let five;
    let (constants, groups): (&[(&'static str, u32)], u64) = match kernel {
        Kernel::Gemv(kind) => {
            let per_row = match kind {
                GemvKind::Words => gemv_threads_per_row(k, w.dtype()),
                GemvKind::X8 => gemv_x8_threads_per_row(k),
                GemvKind::Blocks => gemv_blocks_threads_per_row(k),
                // gemv_kind and gemv_with checked that the device has one.
                GemvKind::X8Subgroup => gemv_subgroup(be).unwrap_or(GEMV_WG),
            };
            two = gemv_constants(kind, per_row);
            (&two, (n as u64).div_ceil(u64::from(GEMV_WG / per_row)))
        }
        Kernel::Gemm(variant) => {
            five = variant.constants();
            (&five, variant.tiles(m, n))
        }
        Kernel::Coop(c) => {
            three = c.constants(sg);
            (&three, c.tiles(m, n))
        }
    };
    let groups = grid(groups, limits.max_compute_workgroups_per_dimension)?;
    let bias_buf = bias.map_or(be.placeholder(), |b| b.storage().buffer());
    let buffers = [
        (1, w.storage().buffer()),
        (2, x.storage().buffer()),
        (3, bias_buf),
        (4, out.storage().buffer()),
    ];
    // The presplit GEMM reads x's halves from the scratch instead of x.
    let dispatch = |scratch: Option<&wgpu::Buffer>| {
        let presplit;
        be.record(&Dispatch {
            shader,
            constants,
            params: bytemuck::bytes_of(&params),
            buffers: match scratch {
                Some(sc) => {
                    presplit = [buffers[0], buffers[2], buffers[3], (5, sc)];
                    &presplit
                }
                None => &buffers,
            },
            groups,
            host: None,
        })
    };
    match kernel {
        Kernel::Coop(c) if c.presplit => {
            coop::record_presplit(be, c, (m, k), x, &params, |sc| dispatch(Some(sc)))
        }
        _ => dispatch(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_respects_the_per_dimension_limit() {
        assert_eq!(grid(1, 65535).ok(), Some([1, 1, 1]));
        assert_eq!(grid(65535, 65535).ok(), Some([65535, 1, 1]));
        assert_eq!(grid(65536, 65535).ok(), Some([32768, 2, 1]));
        for groups in [1u64, 7, 100, 65535, 65536, 200_000, 1 << 31] {
            let [x, y, _] = grid(groups, 65535).expect("fits");
            assert!(x <= 65535 && y <= 65535);
            let total = u64::from(x) * u64::from(y);
            assert!(
                total >= groups && total - groups < u64::from(y),
                "{groups}: {x} × {y}"
            );
        }
        assert!(grid(65536 * 65536, 65535).is_err());
    }

    #[test]
    fn gemm_variant_spreads_small_shapes() {
        // Short prompts and the m = 64 case: the k-sliced 32 × 32 tile.
        assert_eq!(gemm_variant(2, 1024), GEMM_SMALL);
        assert_eq!(gemm_variant(64, 1024), GEMM_SMALL);
        // pp512 and one vision crop (1024 patches) of the 450M model.
        assert_eq!(gemm_variant(512, 1024), GEMM_MEDIUM_SPLIT);
        assert_eq!(gemm_variant(1024, 768), GEMM_MEDIUM_SPLIT);
        assert_eq!(gemm_variant(512, 4608), GEMM_MEDIUM);
        assert_eq!(gemm_variant(1024, 3072), GEMM_MEDIUM);
        assert_eq!(gemm_variant(2048, 4608), GEMM_LARGE);
        assert_eq!(gemm_variant(512, 65536), GEMM_LARGE);
        for v in GEMM_VARIANTS {
            let p = v.tile / v.tm;
            assert!(v.tm == 4 || v.tm == 8, "{v:?}");
            assert!(v.ks.is_power_of_two(), "{v:?}");
            assert!(v.ld == 1 || v.ld == 2, "{v:?}");
            assert!(v.nb == 1 || v.nb == 2, "{v:?}");
            // Each thread stages exactly `ld` vec4s of x and of w per step.
            assert_eq!(v.bk() * v.tile, v.ld * 4 * p * p, "{v:?}");
            assert!(v.threads() <= 256, "{v:?}");
            if v.nb == 2 {
                // The swizzle permutes aligned groups of 8 vec4s of a k row
                // and reads the second half of a block at + P.
                assert!((v.tile / 4).is_multiple_of(8), "{v:?}");
                assert!(v.tm == 4 || p.is_multiple_of(8), "{v:?}");
            }
        }
        let names: std::collections::BTreeSet<String> =
            GEMM_VARIANTS.iter().map(|v| v.name()).collect();
        assert_eq!(names.len(), GEMM_VARIANTS.len(), "names are unique");
    }

    #[test]
    fn gemm_variant_fits_webgpu_defaults() {
        let default = wgpu::Limits::default();
        for (m, n) in [(2, 1), (64, 1024), (512, 1024), (1024, 3072), (4096, 65536)] {
            let v = gemm_variant(m, n);
            assert!(v.fits(&default), "{m} x {n}: {v:?}");
            assert_eq!(
                v.nb, 1,
                "{m} x {n}: the default choice stays single buffered"
            );
        }
        for v in GEMM_VARIANTS.iter().take(4) {
            assert!(v.fits(&default), "{v:?}");
        }
        assert!(
            GEMM_MEDIUM.workgroup_bytes() <= 4096,
            "the fallback fits anything"
        );
        // The workgroup memory of each variant (kernels/matmul.md).
        let bytes: Vec<u32> = GEMM_VARIANTS.iter().map(|v| v.workgroup_bytes()).collect();
        assert_eq!(bytes, [8448, 2304, 9216, 9216, 16384, 32768, 8192, 32768]);
        let small = wgpu::Limits {
            max_compute_workgroup_storage_size: 16 << 10,
            ..default
        };
        assert!(GEMM_LARGE_DB.fits(&small));
        assert!(!GEMM_LARGE_DB16.fits(&small));
        assert!(!GEMM_MEDIUM_SPLIT_DB.fits(&small));
    }
}
