//! WGSL matmul (`kernels/matmul.md`): `y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n])`
//! with x f32, w bf16 / f16 (packed two per u32) or f32 in PyTorch Linear
//! layout, f32 accumulation, f32 output.
//!
//! Two kernels, chosen by `m`:
//! - m = 1 (decode): `shaders/matmul/gemv.wgsl`, memory-bound, `TPR` threads
//!   per weight row reducing through workgroup memory.
//! - m ≥ 2: `shaders/matmul/matmul.wgsl`, a tiled GEMM with 64 × 64 output
//!   tiles (16 × 16 threads, 4 × 4 registers each) and a k-step of 16.
//!
//! Tolerance class: `testing::tolerance::GPU_MATMUL`.

use super::shaders::ShaderId;
use super::uniforms::MatmulParams;
use super::{Dispatch, WgpuBackend};
use crate::backend::matmul_dims;
use crate::{DType, Result, Tensor, TensorError};

/// GEMM override constants: threads per workgroup in x (n) and y (m), k-step.
pub const GEMM_WG_X: u32 = 16;
pub const GEMM_WG_Y: u32 = 16;
pub const GEMM_BK: u32 = 16;
/// Register tile per thread (`TM`, `TN` consts in the shader).
pub const GEMM_TM: u32 = 4;
pub const GEMM_TN: u32 = 4;
/// Output tile of one GEMM workgroup.
pub const GEMM_BM: u32 = GEMM_WG_Y * GEMM_TM;
pub const GEMM_BN: u32 = GEMM_WG_X * GEMM_TN;

/// GEMV threads per workgroup.
pub const GEMV_WG: u32 = 256;

/// Override constants of the tiled GEMM (`shaders/matmul/matmul.wgsl`).
pub fn gemm_constants() -> [(&'static str, u32); 3] {
    [("WG_X", GEMM_WG_X), ("WG_Y", GEMM_WG_Y), ("BK", GEMM_BK)]
}

/// Override constants of the GEMV (`shaders/matmul/gemv.wgsl`) with `tpr`
/// threads per row.
pub fn gemv_constants(tpr: u32) -> [(&'static str, u32); 2] {
    [("WG", GEMV_WG), ("TPR", tpr)]
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

/// Records the matmul (see [`crate::Backend::matmul`]).
pub(crate) fn matmul(
    be: &WgpuBackend,
    x: &Tensor<WgpuBackend>,            // [m, k] f32
    w: &Tensor<WgpuBackend>,            // [n, k] f32, bf16 or f16
    bias: Option<&Tensor<WgpuBackend>>, // [n] f32
    out: &mut Tensor<WgpuBackend>,      // [m, n] f32
) -> Result<()> {
    let (m, n, k) = matmul_dims(x, w, bias, out)?;
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
    // Shader indices are u32 element offsets.
    if [m * k, n * k, m * n]
        .iter()
        .any(|&e| u32::try_from(e).is_err())
    {
        return Err(TensorError::Gpu {
            what: "matmul",
            detail: format!("m={m} n={n} k={k} overflows u32 indexing"),
        });
    }
    let gemv = m == 1;
    let shader = match (w.dtype(), gemv) {
        (DType::BF16, false) => ShaderId::MatmulBf16F32,
        (DType::F16, false) => ShaderId::MatmulF16F32,
        (DType::F32, false) => ShaderId::MatmulF32F32,
        (DType::BF16, true) => ShaderId::GemvBf16F32,
        (DType::F16, true) => ShaderId::GemvF16F32,
        (DType::F32, true) => ShaderId::GemvF32F32,
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
    let gemv_c;
    let gemm_c;
    let (constants, groups): (&[(&'static str, u32)], u64) = if gemv {
        let tpr = gemv_threads_per_row(k, w.dtype());
        let rows_per_group = u64::from(GEMV_WG / tpr);
        gemv_c = gemv_constants(tpr);
        (&gemv_c, (n as u64).div_ceil(rows_per_group))
    } else {
        let tiles =
            (m as u64).div_ceil(u64::from(GEMM_BM)) * (n as u64).div_ceil(u64::from(GEMM_BN));
        gemm_c = gemm_constants();
        (&gemm_c, tiles)
    };
    let groups = grid(groups, limits.max_compute_workgroups_per_dimension)?;
    let bias_buf = bias.map_or(be.placeholder(), |b| b.storage().buffer());
    be.record(&Dispatch {
        shader,
        constants,
        params: bytemuck::bytes_of(&params),
        buffers: &[
            (1, w.storage().buffer()),
            (2, x.storage().buffer()),
            (3, bias_buf),
            (4, out.storage().buffer()),
        ],
        groups,
        host: None,
    })
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
}
