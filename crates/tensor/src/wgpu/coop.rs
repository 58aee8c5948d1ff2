//! The tensor-core GEMM (`shaders/matmul/matmul_coop.wgsl`,
//! `kernels/matmul.md`): the matmul of [`super::matmul`] on cooperative
//! matrices, for bf16 and f16 weights on adapters whose device was granted
//! them ([`super::device::GpuDevice::coop_fragment`]).
//!
//! x is carried as two f16 halves (hi and lo), so the result stays within
//! the f32 GEMM's tolerance class (`testing::tolerance::GPU_MATMUL`) for
//! |x|, |w| ≤ 65504.

use super::WgpuBackend;
use crate::DType;

/// One pipeline variant: `sgm × sgn` subgroups per workgroup, each owning
/// 2 × 2 fragments of `cm × cm` outputs; the tile is `2·cm·sgm` rows by
/// `2·cm·sgn` columns and the k-step `2·cm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoopGemm {
    /// Fragment side (the device's [`super::device::GpuDevice::coop_fragment`]).
    pub cm: u32,
    pub sgm: u32,
    pub sgn: u32,
}

/// The subgroup grids [`coop_with`](super::matmul::coop_with) accepts, the
/// default ([`coop_gemm`]) first.
pub const COOP_GRIDS: [(u32, u32); 3] = [(2, 2), (4, 2), (2, 4)];

/// The fewest rows for which [`super::matmul`]'s automatic choice takes the
/// tensor-core GEMM: below that a 2·cm·sgm-row tile is mostly padding and
/// the few tiles of a short prompt would leave most of the GPU idle.
pub const COOP_MIN_M: usize = 32;

impl CoopGemm {
    /// Output rows per workgroup.
    pub fn tile_m(self) -> u32 {
        2 * self.cm * self.sgm
    }

    /// Output columns per workgroup.
    pub fn tile_n(self) -> u32 {
        2 * self.cm * self.sgn
    }

    /// Threads per workgroup on a device whose subgroups are `sg` wide.
    pub fn threads(self, sg: u32) -> u32 {
        sg * self.sgm * self.sgn
    }

    /// Workgroups (output tiles) for an `m × n` output.
    pub fn tiles(self, m: usize, n: usize) -> u64 {
        (m as u64).div_ceil(u64::from(self.tile_m()))
            * (n as u64).div_ceil(u64::from(self.tile_n()))
    }

    /// Bytes of workgroup memory: x's hi and lo tiles and w's tile in f16
    /// (rows of `2·cm + 8`), and one `cm × (cm + 4)` f32 scratch per subgroup.
    pub fn workgroup_bytes(self) -> u32 {
        let sa = 2 * self.cm + 8;
        2 * (2 * self.tile_m() + self.tile_n()) * sa
            + 4 * self.sgm * self.sgn * self.cm * (self.cm + 4)
    }

    /// Whether a device with `limits` and subgroups of `sg` can run it.
    pub fn fits(self, limits: &wgpu::Limits, sg: u32) -> bool {
        let t = self.threads(sg);
        t <= limits.max_compute_invocations_per_workgroup
            && t <= limits.max_compute_workgroup_size_x
            && self.workgroup_bytes() <= limits.max_compute_workgroup_storage_size
    }

    /// Override constants on a device whose subgroups are `sg` wide.
    pub fn constants(self, sg: u32) -> [(&'static str, u32); 3] {
        [("SG", sg), ("SGM", self.sgm), ("SGN", self.sgn)]
    }

    /// A short name for reports: `coop{cm}_{sgm}x{sgn}`.
    pub fn name(self) -> String {
        format!("coop{}_{}x{}", self.cm, self.sgm, self.sgn)
    }
}

/// The device's tensor-core GEMM in its default grid, where it has one:
/// the fragment side and a fixed subgroup size.
pub fn coop_gemm(be: &WgpuBackend) -> Option<CoopGemm> {
    let dev = be.device();
    let (sgm, sgn) = COOP_GRIDS[0];
    dev.coop_fragment
        .filter(|_| dev.subgroup_size.is_some())
        .map(|cm| CoopGemm { cm, sgm, sgn })
}

/// Whether the automatic choice runs an `m`-row matmul with `dtype` weights
/// on the tensor cores.
pub fn coop_applies(be: &WgpuBackend, m: usize, dtype: DType) -> Option<CoopGemm> {
    coop_gemm(be).filter(|_| m >= COOP_MIN_M && matches!(dtype, DType::BF16 | DType::F16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coop_tiles_and_memory() {
        let v = CoopGemm {
            cm: 16,
            sgm: 2,
            sgn: 2,
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
        // Every grid fits a 48 KiB device with 32-wide subgroups (NVIDIA's
        // Vulkan limit), and the 8-wide fragments fit WebGPU's 16 KiB.
        let limits = wgpu::Limits {
            max_compute_workgroup_storage_size: 48 << 10,
            ..wgpu::Limits::default()
        };
        for (sgm, sgn) in COOP_GRIDS {
            let v = CoopGemm { cm: 16, sgm, sgn };
            assert!(v.fits(&limits, 32), "{v:?}: {} B", v.workgroup_bytes());
            let v = CoopGemm { cm: 8, sgm, sgn };
            assert!(v.fits(&wgpu::Limits::default(), 8), "{v:?}");
        }
    }
}
