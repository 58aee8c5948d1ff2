//! The tensor-core GEMM (`shaders/matmul/matmul_coop*.wgsl`,
//! `kernels/matmul.md`): the matmul of [`super`] on cooperative
//! matrices, for bf16 and f16 weights on adapters whose device was granted
//! them ([`crate::wgpu::device::GpuDevice::coop_fragment`]): its grids and
//! variants, the forced entry points ([`coop_with`], [`coop_presplit_with`];
//! re-exported by [`super`]), the presplit variant's first pass and
//! the start-up self-check's problem. [`super`] makes the automatic
//! choice and records the GEMM.
//!
//! x is carried as two f16 halves (hi and lo), so the result stays within
//! the f32 GEMM's tolerance class (`testing::tolerance::GPU_MATMUL`) for
//! |x|, |w| ≤ 65504.

use half::bf16;

use super::{Choice, grid, record};
use crate::wgpu::shaders::ShaderId;
use crate::wgpu::uniforms::MatmulParams;
use crate::wgpu::{Dispatch, WgpuBackend};
use crate::{Backend, DType, HostData, Result, Shape, Tensor, TensorError, op};

/// A workgroup layout of the tensor-core GEMM: `sgm × sgn` subgroups, each
/// owning `frag_m × frag_n` fragments (1 or 2 each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoopGrid {
    pub sgm: u32,
    pub sgn: u32,
    pub frag_m: u32,
    pub frag_n: u32,
}

impl CoopGrid {
    /// `sgm × sgn` subgroups of 2 × 2 fragments.
    pub const fn of(sgm: u32, sgn: u32) -> Self {
        CoopGrid {
            sgm,
            sgn,
            frag_m: 2,
            frag_n: 2,
        }
    }

    /// `sgm × sgn` subgroups of `frag_m × frag_n` fragments.
    pub const fn with_frags(sgm: u32, sgn: u32, frag_m: u32, frag_n: u32) -> Self {
        CoopGrid {
            sgm,
            sgn,
            frag_m,
            frag_n,
        }
    }
}

/// One pipeline variant: `grid` (subgroups per workgroup, fragments per
/// subgroup) of `cm × cm` fragments; the tile is `frag_m·cm·sgm` rows by
/// `frag_n·cm·sgn` columns and the k-step `2·cm`. `presplit`: x is split
/// into f16 halves once per call by a first pass (`coop_split_x.wgsl`)
/// into the backend's scratch and loaded from there
/// (`matmul_coop_presplit.wgsl`), instead of being split per workgroup and
/// k-step (`matmul_coop.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoopGemm {
    /// Fragment side (the device's [`crate::wgpu::device::GpuDevice::coop_fragment`]).
    pub cm: u32,
    pub grid: CoopGrid,
    pub presplit: bool,
}

/// Threads per workgroup of the presplit GEMM's first pass.
pub const SPLIT_X_WG: u32 = 256;

/// The grids [`coop_with`] accepts, the default
/// ([`coop_gemm`]) first: 64 × 64 tiles (16-wide fragments) of 4 subgroups
/// with 2 × 2 fragments each; 128 × 64 and 64 × 128 tiles of 8; and smaller
/// subgroup blocks for shapes with few tiles (1024 × 768: 192 of 64 × 64,
/// 768 subgroups, a few per multiprocessor of a large GPU; see
/// `benches/gpu/README.md`): 64 × 64 tiles of 8 subgroups with 1 × 2
/// fragments, 32 × 32 tiles of 4 with one fragment each (2× and 4× the
/// subgroups). At most 8 subgroups: the device keeps WebGPU's 256
/// invocations per workgroup.
pub const COOP_GRIDS: [CoopGrid; 5] = [
    CoopGrid::of(2, 2),
    CoopGrid::of(4, 2),
    CoopGrid::of(2, 4),
    CoopGrid::with_frags(4, 2, 1, 2),
    CoopGrid::with_frags(2, 2, 1, 1),
];

/// The fewest rows for which [`super`]'s automatic choice takes the
/// tensor-core GEMM: below that a 64-row tile (16-wide fragments) is mostly padding and
/// the few tiles of a short prompt would leave most of the GPU idle.
pub const COOP_MIN_M: usize = 32;

impl CoopGemm {
    /// Output rows per workgroup.
    pub fn tile_m(self) -> u32 {
        self.grid.frag_m * self.cm * self.grid.sgm
    }

    /// Output columns per workgroup.
    pub fn tile_n(self) -> u32 {
        self.grid.frag_n * self.cm * self.grid.sgn
    }

    /// Threads per workgroup on a device whose subgroups are `sg` wide.
    pub fn threads(self, sg: u32) -> u32 {
        sg * self.grid.sgm * self.grid.sgn
    }

    /// Workgroups (output tiles) for an `m × n` output.
    pub fn tiles(self, m: usize, n: usize) -> u64 {
        (m as u64).div_ceil(u64::from(self.tile_m()))
            * (n as u64).div_ceil(u64::from(self.tile_n()))
    }

    /// Bytes of workgroup memory: x's hi and lo tiles (not when presplit)
    /// and w's tile in f16 (rows of `2·cm + 8`), and one `cm × (cm + 4)`
    /// f32 scratch per subgroup.
    pub fn workgroup_bytes(self) -> u32 {
        let sa = 2 * self.cm + 8;
        let x_rows = if self.presplit { 0 } else { 2 * self.tile_m() };
        2 * (x_rows + self.tile_n()) * sa
            + 4 * self.grid.sgm * self.grid.sgn * self.cm * (self.cm + 4)
    }

    /// f16 elements of the presplit variant's scratch for an `m × k` x:
    /// hi and lo, rows padded to the tile and columns to the k-step.
    pub fn scratch_len(self, m: usize, k: usize) -> u64 {
        let (bm, bk) = (u64::from(self.tile_m()), u64::from(2 * self.cm));
        2 * (m as u64).div_ceil(bm) * bm * (k as u64).div_ceil(bk) * bk
    }

    /// Whether a device with `limits` and subgroups of `sg` can run it.
    pub fn fits(self, limits: &wgpu::Limits, sg: u32) -> bool {
        let t = self.threads(sg);
        t <= limits.max_compute_invocations_per_workgroup
            && t <= limits.max_compute_workgroup_size_x
            && self.workgroup_bytes() <= limits.max_compute_workgroup_storage_size
    }

    /// Override constants on a device whose subgroups are `sg` wide.
    pub fn constants(self, sg: u32) -> [(&'static str, u32); 5] {
        let g = self.grid;
        [
            ("SG", sg),
            ("SGM", g.sgm),
            ("SGN", g.sgn),
            ("FM", g.frag_m),
            ("FN", g.frag_n),
        ]
    }

    /// Override constants of the presplit variant's first pass.
    pub fn split_constants(self) -> [(&'static str, u32); 3] {
        [
            ("WG", SPLIT_X_WG),
            ("SGM", self.grid.sgm),
            ("FM", self.grid.frag_m),
        ]
    }

    /// A short name for reports: `coop{cm}_{sgm}x{sgn}`, with `_f{m}x{n}`
    /// for fragments other than 2 × 2 and `_presplit` added.
    pub fn name(self) -> String {
        let g = self.grid;
        let frags = if (g.frag_m, g.frag_n) == (2, 2) {
            String::new()
        } else {
            format!("_f{}x{}", g.frag_m, g.frag_n)
        };
        let split = if self.presplit { "_presplit" } else { "" };
        format!("coop{}_{}x{}{frags}{split}", self.cm, g.sgm, g.sgn)
    }
}

/// The device's tensor-core GEMM in its default grid (staged, or presplit
/// with [`crate::wgpu::WgpuOptions::coop_presplit`]), where it has one: the
/// fragment side and a fixed subgroup size.
pub fn coop_gemm(be: &WgpuBackend) -> Option<CoopGemm> {
    let dev = be.device();
    dev.coop_fragment
        .filter(|_| dev.subgroup_size.is_some())
        .map(|cm| CoopGemm {
            cm,
            grid: COOP_GRIDS[0],
            presplit: be.options().coop_presplit,
        })
}

/// Whether the automatic choice runs an `m`-row matmul with `dtype` weights
/// on the tensor cores.
pub fn coop_applies(be: &WgpuBackend, m: usize, dtype: DType) -> Option<CoopGemm> {
    coop_gemm(be).filter(|_| m >= COOP_MIN_M && matches!(dtype, DType::BF16 | DType::F16))
}

/// One matmul `out = x · wᵀ + bias` through some kernel.
pub type MatmulFn<'a> = dyn Fn(
        &Tensor<WgpuBackend>,
        &Tensor<WgpuBackend>,
        &Tensor<WgpuBackend>,
        &mut Tensor<WgpuBackend>,
    ) -> Result<()>
    + 'a;

/// Runs `matmul` on a small problem whose exact result f32 holds, over
/// partial tiles in m, n and k, and errors unless every output is exact.
/// x is `a + b·2⁻¹²` (a, b small integers), and `2⁻⁸` times that on odd
/// rows: f16 holds `a` but not the `2⁻¹²` part, so a kernel that drops x's
/// low half fails, and so does one that mislays a fragment, the bias or an
/// edge; on the odd rows the low half is an f16 subnormal, so a device that
/// flushes f16 subnormals fails too. The backend runs it on the tensor-core
/// GEMM once at start-up (cooperative matrices are an experimental wgpu
/// feature): where it fails, the f32 GEMM is used.
pub fn self_check(be: &WgpuBackend, matmul: &MatmulFn<'_>) -> Result<()> {
    let (m, n, k) = (37usize, 70usize, 45usize);
    let x: Vec<f32> = (0..m * k)
        .map(|i| {
            let v = ((i * 7) % 9) as f32 - 4.0 + ((i * 5) % 7) as f32 * (1.0 / 4096.0);
            if (i / k) % 2 == 1 { v / 256.0 } else { v }
        })
        .collect();
    let w: Vec<f32> = (0..n * k).map(|i| ((i * 3) % 7) as f32 - 3.0).collect();
    let bias: Vec<f32> = (0..n).map(|i| (i % 5) as f32 * 0.25 - 0.5).collect();
    let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
    let xt = be.upload(HostData::f32(&x), Shape::from([m, k]))?;
    let wt = be.upload(HostData::bf16(&wb), Shape::from([n, k]))?;
    let bt = be.upload(HostData::f32(&bias), Shape::from([n]))?;
    let mut out = be.zeros(DType::F32, Shape::from([m, n]))?;
    matmul(&xt, &wt, &bt, &mut out)?;
    let got = be.download_f32(&out)?;
    // (row, col, got, want) of the inexact outputs.
    let mut wrong = Vec::new();
    for (i, &g) in got.iter().enumerate() {
        let (r, c) = (i / n, i % n);
        // Exact in f64 and in f32: |Σ| < 2¹⁰ on a 2⁻¹² grid (even rows), or
        // < 2² on a 2⁻²⁰ grid (odd rows); |bias| ≤ 0.5 on a 2⁻² grid.
        let want: f64 = (0..k)
            .map(|p| f64::from(x[r * k + p]) * f64::from(w[c * k + p]))
            .sum::<f64>()
            + f64::from(bias[c]);
        if f64::from(g) != want {
            wrong.push((r, c, g, want));
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    let first: Vec<String> = wrong
        .iter()
        .take(4)
        .map(|(r, c, g, w)| format!("({r}, {c}) is {g}, want {w}"))
        .collect();
    Err(TensorError::Gpu {
        what: "tensor-core GEMM self-check",
        detail: format!(
            "{} of {} outputs inexact: {}",
            wrong.len(),
            m * n,
            first.join("; ")
        ),
    })
}

/// The matmul through the tensor-core GEMM on `grid` (one of
/// [`COOP_GRIDS`]), whatever the shape (m = 1
/// included): for tests and for timing the grids on a real GPU. Errors
/// where the device has no cooperative matrices, the weights are not bf16
/// or f16, or the grid does not fit the device. Same contract as
/// [`crate::Backend::matmul`].
pub fn coop_with(be: &WgpuBackend, op: op::Matmul<'_, WgpuBackend>, grid: CoopGrid) -> Result<()> {
    coop_variant_with(be, op, grid, false)
}

/// As [`coop_with`], through the presplit variant (x split into f16
/// halves once by a first pass, see [`CoopGemm::presplit`]).
pub fn coop_presplit_with(
    be: &WgpuBackend,
    op: op::Matmul<'_, WgpuBackend>,
    grid: CoopGrid,
) -> Result<()> {
    coop_variant_with(be, op, grid, true)
}

fn coop_variant_with(
    be: &WgpuBackend,
    op: op::Matmul<'_, WgpuBackend>,
    grid: CoopGrid,
    presplit: bool,
) -> Result<()> {
    let w = op.w;
    let dev = be.device();
    let Some(cm) = dev.coop_fragment.filter(|_| dev.subgroup_size.is_some()) else {
        return Err(TensorError::Gpu {
            what: "matmul",
            detail: format!("{} has no cooperative matrices", be.device().describe()),
        });
    };
    if !COOP_GRIDS.contains(&grid) {
        return Err(TensorError::Gpu {
            what: "matmul",
            detail: format!("{grid:?} is not one of {COOP_GRIDS:?}"),
        });
    }
    if !matches!(w.dtype(), DType::BF16 | DType::F16) {
        return Err(TensorError::UnsupportedDType {
            op: "matmul (tensor-core GEMM)",
            what: "w",
            dtype: w.dtype(),
        });
    }
    let c = CoopGemm { cm, grid, presplit };
    record(be, op, Choice::Coop(c))
}

/// Records the presplit GEMM's first pass (x's halves into the backend's
/// scratch) and then, with the scratch still held, `gemm` (the GEMM's
/// dispatch, given the scratch). Errors where x's halves do not fit.
pub(super) fn record_presplit(
    be: &WgpuBackend,
    c: CoopGemm,
    (m, k): (usize, usize),
    x: &Tensor<WgpuBackend>,
    params: &MatmulParams,
    gemm: impl FnOnce(&wgpu::Buffer) -> Result<()>,
) -> Result<()> {
    let limits = &be.device().limits;
    let len = c.scratch_len(m, k);
    if !presplit_fits(c, m, k, limits) {
        return Err(TensorError::Gpu {
            what: "matmul",
            detail: format!(
                "x's halves ({len} f16) overflow u32 indexing or the device's max_storage_buffer_binding_size of {}",
                limits.max_storage_buffer_binding_size
            ),
        });
    }
    be.with_scratch(2 * len, |sc| {
        be.record(&Dispatch {
            shader: split_x_shader(c),
            constants: &c.split_constants(),
            params: bytemuck::bytes_of(params),
            buffers: &[(2, x.storage().buffer()), (5, sc)],
            groups: grid(
                (len / 2).div_ceil(u64::from(SPLIT_X_WG)),
                limits.max_compute_workgroups_per_dimension,
            )?,
            host: None,
        })?;
        gemm(sc)
    })
}

/// Whether the presplit GEMM's scratch for an `m × k` x fits u32 indexing
/// and one binding.
pub(super) fn presplit_fits(c: CoopGemm, m: usize, k: usize, limits: &wgpu::Limits) -> bool {
    let len = c.scratch_len(m, k);
    len <= u64::from(u32::MAX)
        && 2 * len <= limits.max_storage_buffer_binding_size
        && 2 * len <= limits.max_buffer_size
}

/// The tensor-core GEMM's shader for `c` and `dtype` weights (bf16 or f16).
pub(super) fn coop_shader(c: CoopGemm, dtype: DType) -> ShaderId {
    match (c.cm == 16, c.presplit, dtype == DType::BF16) {
        (true, false, true) => ShaderId::MatmulCoop16Bf16F32,
        (true, false, false) => ShaderId::MatmulCoop16F16F32,
        (false, false, true) => ShaderId::MatmulCoop8Bf16F32,
        (false, false, false) => ShaderId::MatmulCoop8F16F32,
        (true, true, true) => ShaderId::MatmulCoopPresplit16Bf16F32,
        (true, true, false) => ShaderId::MatmulCoopPresplit16F16F32,
        (false, true, true) => ShaderId::MatmulCoopPresplit8Bf16F32,
        (false, true, false) => ShaderId::MatmulCoopPresplit8F16F32,
    }
}

/// The presplit GEMM's first pass for `c`'s fragment side.
fn split_x_shader(c: CoopGemm) -> ShaderId {
    if c.cm == 16 {
        ShaderId::CoopSplitX16F32F16
    } else {
        ShaderId::CoopSplitX8F32F16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coop_tiles_and_memory() {
        let v = CoopGemm {
            cm: 16,
            grid: COOP_GRIDS[0],
            presplit: false,
        };
        assert_eq!((v.tile_m(), v.tile_n()), (64, 64));
        assert_eq!(v.threads(32), 128);
        // x hi + lo: 2 · 64 · 40 f16; w: 64 · 40 f16; 4 scratches of 16 · 20 f32.
        assert_eq!(
            v.workgroup_bytes(),
            2 * 64 * 40 * 2 + 64 * 40 * 2 + 4 * 16 * 20 * 4
        );
        assert_eq!(v.tiles(1024, 768), 16 * 12);
        assert_eq!(v.tiles(1, 1), 1);
        assert_eq!(v.name(), "coop16_2x2");
        // 8 subgroups of 1 × 2 fragments: the same 64 × 64 tile, 256 threads.
        let f = CoopGemm {
            grid: COOP_GRIDS[3],
            ..v
        };
        assert_eq!((f.tile_m(), f.tile_n(), f.threads(32)), (64, 64, 256));
        assert_eq!(f.name(), "coop16_4x2_f1x2");
        // Every grid fits a 48 KiB device with 32-wide subgroups (NVIDIA's
        // Vulkan limit) and WebGPU's 256 invocations, and the 8-wide
        // fragments fit WebGPU's 16 KiB.
        let limits = wgpu::Limits {
            max_compute_workgroup_storage_size: 48 << 10,
            ..wgpu::Limits::default()
        };
        for grid in COOP_GRIDS {
            for presplit in [false, true] {
                let v = CoopGemm {
                    cm: 16,
                    grid,
                    presplit,
                };
                assert!(v.fits(&limits, 32), "{v:?}: {} B", v.workgroup_bytes());
                let v = CoopGemm { cm: 8, ..v };
                assert!(v.fits(&wgpu::Limits::default(), 8), "{v:?}");
            }
        }
        // Presplit: w's tile (64 · 40 f16) and the scratches only; x's
        // scratch pads 1024 × 768 to whole tiles and k-steps (exact here).
        let p = CoopGemm {
            presplit: true,
            ..v
        };
        assert_eq!(p.workgroup_bytes(), 64 * 40 * 2 + 4 * 16 * 20 * 4);
        assert_eq!(p.scratch_len(1024, 768), 2 * 1024 * 768);
        assert_eq!(p.scratch_len(65, 33), 2 * 128 * 64);
    }
}
