//! The decode GEMVs with a fused epilogue (`kernels/matmul.md`): the x8
//! subgroup GEMV over stacked rows whose results feed SwiGLU
//! ([`crate::Backend::matmul_swiglu`], `gemv_x8_sg_swiglu.wgsl`) or the
//! short-conv decode step ([`crate::Backend::matmul_short_conv`],
//! `gemv_x8_sg_conv.wgsl`), one dispatch instead of two. Each returns
//! `false` where it does not apply or [`crate::wgpu::WgpuOptions::fused_gemv`] is
//! off, and the backend then runs the two ops.

use super::{GEMV_WG, GemvKind, gemv_constants, gemv_kind, gemv_subgroup, grid};
use crate::wgpu::shaders::ShaderId;
use crate::wgpu::uniforms::{GemvConvParams, MatmulParams};
use crate::wgpu::{Dispatch, WgpuBackend};
use crate::{Result, op};

/// The fused m = 1 form of [`crate::Backend::matmul_swiglu`]
/// (`gemv_x8_sg_swiglu.wgsl`): records it and returns `true` where it
/// applies (one row, the subgroup GEMV kind for `w13`, an even row count);
/// `false` leaves the call to the two-op default. Operands are checked as
/// the two ops would check them.
pub(crate) fn gemv_swiglu(
    be: &WgpuBackend,
    op: &op::MatmulSwiglu<'_, WgpuBackend>,
) -> Result<bool> {
    let (m, f, k) = op.check()?;
    // x [1, k] f32; w13 [2f, k] bf16: w1 | w3; gu left unwritten.
    let (x, w13, out) = (op.x, op.w13, &*op.out);
    if m != 1 || gemv_kind(be, k, w13.dtype()) != GemvKind::X8Subgroup || !be.options().fused_gemv {
        return Ok(false);
    }
    if f == 0 {
        return Ok(true);
    }
    let limits = &be.device().limits;
    if w13.storage().buffer().size() > limits.max_storage_buffer_binding_size
        || u32::try_from(2 * f * k).is_err()
    {
        return Ok(false);
    }
    let Some(sg) = gemv_subgroup(be) else {
        return Ok(false);
    };
    let params = MatmulParams {
        m: 1,
        n: f as u32,
        k: k as u32,
        has_bias: 0,
    };
    let constants = gemv_constants(GemvKind::X8Subgroup, sg);
    let groups = grid(
        (f as u64).div_ceil(u64::from(GEMV_WG / sg)),
        limits.max_compute_workgroups_per_dimension,
    )?;
    be.record(&Dispatch {
        shader: ShaderId::GemvSwigluBf16X8SgF32,
        constants: &constants,
        params: bytemuck::bytes_of(&params),
        buffers: &[
            (1, w13.storage().buffer()),
            (2, x.storage().buffer()),
            (4, out.storage().buffer()),
        ],
        groups,
        host: None,
    })?;
    Ok(true)
}

/// The fused decode form of [`crate::Backend::matmul_short_conv`]
/// (`gemv_x8_sg_conv.wgsl`): records it and returns `true` where it applies
/// (one row, a kernel of length ≥ 2, the subgroup GEMV kind for `in_proj`);
/// `false` leaves the call to the two-op default. Operands are checked as
/// the two ops would check them.
pub(crate) fn gemv_short_conv(
    be: &WgpuBackend,
    op: &op::MatmulShortConv<'_, WgpuBackend>,
) -> Result<bool> {
    let (t, d, l, k) = op.check()?;
    // x [1, k] f32; in_proj [3d, k] bf16: B | C | X; w [d, l] f32; bcx left
    // unwritten.
    let (x, in_proj, w) = (op.x, op.in_proj, op.w);
    let (state, out) = (&*op.state, &*op.out);
    if t != 1
        || l < 2
        || gemv_kind(be, k, in_proj.dtype()) != GemvKind::X8Subgroup
        || !be.options().fused_gemv
    {
        return Ok(false);
    }
    if d == 0 {
        return Ok(true);
    }
    let limits = &be.device().limits;
    if in_proj.storage().buffer().size() > limits.max_storage_buffer_binding_size
        || u32::try_from(3 * d * k).is_err()
        || u32::try_from(d * l).is_err()
    {
        return Ok(false);
    }
    let Some(sg) = gemv_subgroup(be) else {
        return Ok(false);
    };
    let params = GemvConvParams {
        d: d as u32,
        k: k as u32,
        l: l as u32,
        pad0: 0,
    };
    let groups = grid(
        (d as u64).div_ceil(u64::from(GEMV_WG / sg)),
        limits.max_compute_workgroups_per_dimension,
    )?;
    be.record(&Dispatch {
        shader: ShaderId::GemvConvBf16X8SgF32,
        constants: &[("WG", GEMV_WG), ("SG", sg)],
        params: bytemuck::bytes_of(&params),
        buffers: &[
            (1, in_proj.storage().buffer()),
            (2, x.storage().buffer()),
            (3, w.storage().buffer()),
            (4, out.storage().buffer()),
            (5, state.storage().buffer()),
        ],
        groups,
        host: None,
    })?;
    Ok(true)
}
