//! The wgpu backend's model ops other than matmul: each runs its
//! [`crate::op`] descriptor's checks (the same typed errors as the CPU
//! backend), then records one or two dispatches of the WGSL kernels in
//! `shaders/{elementwise,gather,vision,norm,rope,conv}/`, or a buffer copy
//! for `copy_rows` and `slice_rows`.
//! Attention is in [`super::attention`]. Nothing here waits for the device.
//!
//! - Elementwise kernels, gathers, pixel unshuffle and rope use one thread
//!   per element (or rotated pair) in workgroups of [`ELEM_WG`].
//! - `rms_norm`, `add_rms_norm` and `layer_norm` use one workgroup of
//!   [`NORM_WG`] per row.
//! - `short_conv` is two dispatches for a prefill: the output (one thread
//!   per element, reading the old state), then the state shift (one thread
//!   per channel); a decode step (t = 1) is one dispatch doing both.
//!
//! Tolerances: `testing::tolerance::GPU_*`.

use super::matmul::grid;
use super::shaders::ShaderId;
use super::uniforms::{
    ConvParams, CopyColsParams, ElementwiseParams, GatherParams, NormParams, PixelUnshuffleParams,
    QkvNormRopeParams, RopeParams, SwigluParams,
};
use super::{Dispatch, WgpuBackend};
use crate::{DType, Gelu, Result, Tensor, TensorError, op};

type T = Tensor<WgpuBackend>;

/// Threads per workgroup of the one-thread-per-element kernels.
pub const ELEM_WG: u32 = 256;
/// Threads per workgroup (one row each) of the normalisations.
pub const NORM_WG: u32 = 256;

/// `v` as a shader index (u32), or an error naming the op.
pub(super) fn u32_of(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| TensorError::Gpu {
        what: op,
        detail: format!("size {v} overflows the shaders' u32 indexing"),
    })
}

/// A 2D grid of `groups` workgroups within the device's per-dimension limit.
pub(super) fn groups(be: &WgpuBackend, groups: u64) -> Result<[u32; 3]> {
    grid(
        groups,
        be.device().limits.max_compute_workgroups_per_dimension,
    )
}

/// Records a one-thread-per-element kernel over `n` threads.
fn dispatch_1d(
    be: &WgpuBackend,
    shader: ShaderId,
    params: &[u8],
    buffers: &[(u32, &wgpu::Buffer)],
    host: Option<(u32, &[u8])>,
    n: u64,
) -> Result<()> {
    be.record(&Dispatch {
        shader,
        constants: &[("WG", ELEM_WG)],
        params,
        buffers,
        groups: groups(be, n.div_ceil(u64::from(ELEM_WG)))?,
        host,
    })
}

fn elementwise_params(op: &'static str, n: usize) -> Result<ElementwiseParams> {
    Ok(ElementwiseParams {
        n: u32_of(op, n)?,
        ..Default::default()
    })
}

/// See [`op::AddAssign`].
pub(crate) fn add_assign(be: &WgpuBackend, op: op::AddAssign<'_, WgpuBackend>) -> Result<()> {
    const OP: &str = op::AddAssign::<WgpuBackend>::NAME;
    op.check()?;
    let op::AddAssign { x, y } = op;
    let n = x.elem_count();
    if n == 0 {
        return Ok(());
    }
    let p = elementwise_params(OP, n)?;
    dispatch_1d(
        be,
        ShaderId::AddF32F32,
        bytemuck::bytes_of(&p),
        &[(1, y.storage().buffer()), (3, x.storage().buffer())],
        None,
        n as u64,
    )
}

/// See [`op::SiluMul`].
pub(crate) fn silu_mul(be: &WgpuBackend, op: op::SiluMul<'_, WgpuBackend>) -> Result<()> {
    const OP: &str = op::SiluMul::<WgpuBackend>::NAME;
    op.check()?;
    let op::SiluMul { gate, up, out } = op;
    let n = gate.elem_count();
    if n == 0 {
        return Ok(());
    }
    let p = elementwise_params(OP, n)?;
    dispatch_1d(
        be,
        ShaderId::SiluMulF32F32,
        bytemuck::bytes_of(&p),
        &[
            (1, gate.storage().buffer()),
            (2, up.storage().buffer()),
            (3, out.storage().buffer()),
        ],
        None,
        n as u64,
    )
}

/// See [`op::Swiglu`].
pub(crate) fn swiglu(be: &WgpuBackend, op: op::Swiglu<'_, WgpuBackend>) -> Result<()> {
    const OP: &str = op::Swiglu::<WgpuBackend>::NAME;
    let (t, f) = op.check()?;
    let op::Swiglu { gu, out } = op;
    let n = t * f;
    if n == 0 {
        return Ok(());
    }
    u32_of(OP, 2 * n)?;
    let p = SwigluParams {
        n: u32_of(OP, n)?,
        f: u32_of(OP, f)?,
        ..Default::default()
    };
    dispatch_1d(
        be,
        ShaderId::SwigluF32F32,
        bytemuck::bytes_of(&p),
        &[(1, gu.storage().buffer()), (2, out.storage().buffer())],
        None,
        n as u64,
    )
}

/// See [`op::Gelu`].
pub(crate) fn gelu(be: &WgpuBackend, op: op::Gelu<'_, WgpuBackend>) -> Result<()> {
    const OP: &str = op::Gelu::<WgpuBackend>::NAME;
    op.check()?;
    let op::Gelu { x, kind, out } = op;
    let n = x.elem_count();
    if n == 0 {
        return Ok(());
    }
    let shader = match kind {
        Gelu::Tanh => ShaderId::GeluTanhF32F32,
        Gelu::Erf => ShaderId::GeluErfF32F32,
    };
    let p = elementwise_params(OP, n)?;
    dispatch_1d(
        be,
        shader,
        bytemuck::bytes_of(&p),
        &[(1, x.storage().buffer()), (3, out.storage().buffer())],
        None,
        n as u64,
    )
}

/// Rows and width of a rank ≥ 1 tensor viewed as `[rows, w]`.
fn rows_width(t: &T) -> (usize, usize) {
    (t.shape().rows(), t.shape().last())
}

/// See [`op::CopyRows`].
pub(crate) fn copy_rows(be: &WgpuBackend, op: op::CopyRows<'_, WgpuBackend>) -> Result<()> {
    let (t, w) = op.check()?;
    let op::CopyRows { src, dst, row0 } = op;
    be.record_copy(
        src.storage().buffer(),
        0,
        dst.storage().buffer(),
        (row0 * w * 4) as u64,
        (t * w * 4) as u64,
    )
}

/// See [`op::SliceRows`].
pub(crate) fn slice_rows(be: &WgpuBackend, op: op::SliceRows<'_, WgpuBackend>) -> Result<()> {
    let (t, w) = op.check()?;
    let op::SliceRows { src, row0, out } = op;
    be.record_copy(
        src.storage().buffer(),
        (row0 * w * 4) as u64,
        out.storage().buffer(),
        0,
        (t * w * 4) as u64,
    )
}

/// See [`op::CopyCols`].
pub(crate) fn copy_cols(be: &WgpuBackend, op: op::CopyCols<'_, WgpuBackend>) -> Result<()> {
    const OP: &str = op::CopyCols::<WgpuBackend>::NAME;
    let (rows, c_src, c) = op.check()?;
    let op::CopyCols { src, col0, out } = op;
    let n = rows * c;
    if n == 0 {
        return Ok(());
    }
    u32_of(OP, rows * c_src)?;
    let p = CopyColsParams {
        n: u32_of(OP, n)?,
        c_src: u32_of(OP, c_src)?,
        c: u32_of(OP, c)?,
        col0: u32_of(OP, col0)?,
    };
    dispatch_1d(
        be,
        ShaderId::CopyColsF32F32,
        bytemuck::bytes_of(&p),
        &[(1, src.storage().buffer()), (2, out.storage().buffer())],
        None,
        n as u64,
    )
}

/// No WGSL kernel reads i8 (int8 weights are a CPU backend format).
pub(crate) fn no_i8(op: &'static str) -> TensorError {
    TensorError::UnsupportedDType {
        op,
        what: "a tensor on wgpu (int8 weights are CPU-only)",
        dtype: DType::I8,
    }
}

/// See [`op::GatherRows`].
pub(crate) fn gather_rows(be: &WgpuBackend, op: op::GatherRows<'_, WgpuBackend>) -> Result<()> {
    const OP: &str = op::GatherRows::<WgpuBackend>::NAME;
    let (vocab, d) = op.check()?;
    let op::GatherRows { table, ids, out } = op;
    let n = ids.len() * d;
    if n == 0 {
        return Ok(());
    }
    u32_of(OP, vocab * d)?;
    let shader = match table.dtype() {
        DType::F32 => ShaderId::GatherF32F32,
        DType::BF16 => ShaderId::GatherBf16F32,
        DType::F16 => ShaderId::GatherF16F32,
        DType::Q8_0 => ShaderId::GatherQ80F32,
        DType::Q4_0 => ShaderId::GatherQ40F32,
        DType::Q4K => ShaderId::GatherQ4KF32,
        DType::Q6K => ShaderId::GatherQ6KF32,
        other => {
            return Err(TensorError::UnsupportedDType {
                op: OP,
                what: "table",
                dtype: other,
            });
        }
    };
    if !be.device().downlevel.contains(shader.required_downlevel()) {
        return Err(TensorError::UnsupportedDType {
            op: "gather_rows (wgpu, this adapter)",
            what: "table",
            dtype: table.dtype(),
        });
    }
    let p = GatherParams {
        d: u32_of(OP, d)?,
        n: u32_of(OP, n)?,
        ..Default::default()
    };
    dispatch_1d(
        be,
        shader,
        bytemuck::bytes_of(&p),
        &[(1, table.storage().buffer()), (3, out.storage().buffer())],
        Some((2, bytemuck::cast_slice(ids))),
        n as u64,
    )
}

/// See [`op::PixelUnshuffle`].
pub(crate) fn pixel_unshuffle(
    be: &WgpuBackend,
    op: op::PixelUnshuffle<'_, WgpuBackend>,
) -> Result<()> {
    const OP: &str = op::PixelUnshuffle::<WgpuBackend>::NAME;
    let d = op.check()?;
    let op::PixelUnshuffle { x, h, w, out } = op;
    let n = h * w * d;
    if n == 0 {
        return Ok(());
    }
    let p = PixelUnshuffleParams {
        w: u32_of(OP, w)?,
        d: u32_of(OP, d)?,
        n: u32_of(OP, n)?,
        pad0: 0,
    };
    dispatch_1d(
        be,
        ShaderId::PixelUnshuffleF32F32,
        bytemuck::bytes_of(&p),
        &[(1, x.storage().buffer()), (2, out.storage().buffer())],
        None,
        n as u64,
    )
}

/// Records one workgroup per row of a normalisation kernel.
fn norm(
    be: &WgpuBackend,
    op: &'static str,
    shader: ShaderId,
    x: &T,
    eps: f32,
    buffers: &[(u32, &wgpu::Buffer)],
) -> Result<()> {
    let (rows, d) = rows_width(x);
    if rows == 0 || d == 0 {
        return Ok(());
    }
    u32_of(op, rows * d)?;
    let p = NormParams {
        rows: u32_of(op, rows)?,
        d: u32_of(op, d)?,
        eps,
        pad0: 0,
    };
    be.record(&Dispatch {
        shader,
        constants: &[("WG", NORM_WG)],
        params: bytemuck::bytes_of(&p),
        buffers,
        groups: groups(be, rows as u64)?,
        host: None,
    })
}

/// See [`op::RmsNorm`].
pub(crate) fn rms_norm(be: &WgpuBackend, op: op::RmsNorm<'_, WgpuBackend>) -> Result<()> {
    const OP: &str = op::RmsNorm::<WgpuBackend>::NAME;
    op.check()?;
    let op::RmsNorm { x, w, eps, out } = op;
    norm(
        be,
        OP,
        ShaderId::RmsNormF32F32,
        x,
        eps,
        &[
            (1, x.storage().buffer()),
            (2, w.storage().buffer()),
            (4, out.storage().buffer()),
        ],
    )
}

/// See [`op::AddRmsNorm`]: one dispatch.
pub(crate) fn add_rms_norm(be: &WgpuBackend, op: op::AddRmsNorm<'_, WgpuBackend>) -> Result<()> {
    const OP: &str = op::AddRmsNorm::<WgpuBackend>::NAME;
    op.check()?;
    let op::AddRmsNorm { x, y, w, eps, out } = op;
    norm(
        be,
        OP,
        ShaderId::AddRmsNormF32F32,
        x,
        eps,
        &[
            (1, x.storage().buffer()),
            (2, w.storage().buffer()),
            (3, y.storage().buffer()),
            (4, out.storage().buffer()),
        ],
    )
}

/// See [`op::LayerNorm`].
pub(crate) fn layer_norm(be: &WgpuBackend, op: op::LayerNorm<'_, WgpuBackend>) -> Result<()> {
    const OP: &str = op::LayerNorm::<WgpuBackend>::NAME;
    op.check()?;
    let op::LayerNorm { x, w, b, eps, out } = op;
    norm(
        be,
        OP,
        ShaderId::LayerNormF32F32,
        x,
        eps,
        &[
            (1, x.storage().buffer()),
            (2, w.storage().buffer()),
            (3, b.storage().buffer()),
            (4, out.storage().buffer()),
        ],
    )
}

/// The rope table of rows `pos0..pos0 + t`: `(cos a, sin a)` per row and
/// pair `j < hd/2`, with `inv = 1/theta^(2j/hd)` and `a = pos · inv` in f32
/// exactly as transformers (and the CPU backend) computes them, and cos/sin
/// of that f32 angle in f64, rounded once.
pub fn rope_table(t: usize, hd: usize, pos0: usize, theta: f32) -> Vec<f32> {
    let mut cs = Vec::new();
    rope_table_into(t, hd, pos0, theta, &mut cs);
    cs
}

/// [`rope_table`] into a reused buffer (cleared first): no allocation once
/// `cs` has grown to the table size.
pub fn rope_table_into(t: usize, hd: usize, pos0: usize, theta: f32, cs: &mut Vec<f32>) {
    let half = hd / 2;
    cs.clear();
    cs.reserve(t * half * 2);
    for i in 0..t {
        let pos = (pos0 + i) as f32;
        for j in 0..half {
            let inv = 1.0 / theta.powf((2 * j) as f32 / hd as f32);
            let (s, c) = f64::from(pos * inv).sin_cos();
            cs.push(c as f32);
            cs.push(s as f32);
        }
    }
}

/// See [`op::Rope`].
pub(crate) fn rope(be: &WgpuBackend, op: op::Rope<'_, WgpuBackend>) -> Result<()> {
    const OP: &str = op::Rope::<WgpuBackend>::NAME;
    let (t, h, hd) = op.check()?;
    let op::Rope { x, pos0, theta } = op;
    let pairs = t * h * hd / 2;
    if pairs == 0 {
        return Ok(());
    }
    u32_of(OP, t * h * hd)?;
    // The backend's reused table buffer: the bytes are copied into the host
    // ring by `record`, so the lock is held only for this call.
    let mut cs = be.rope_scratch()?;
    rope_table_into(t, hd, pos0, theta, &mut cs);
    let p = RopeParams {
        t: u32_of(OP, t)?,
        h: u32_of(OP, h)?,
        hd: u32_of(OP, hd)?,
        pad0: 0,
    };
    dispatch_1d(
        be,
        ShaderId::RopeF32F32,
        bytemuck::bytes_of(&p),
        &[(2, x.storage().buffer())],
        Some((1, bytemuck::cast_slice(&cs))),
        pairs as u64,
    )
}

/// Threads per workgroup of the fused q/k norm + RoPE and cache append (one
/// head row each).
pub const QKV_NORM_ROPE_WG: u32 = 64;

/// See [`op::QkvNormRope`]: one dispatch.
pub(crate) fn qkv_norm_rope(be: &WgpuBackend, op: op::QkvNormRope<'_, WgpuBackend>) -> Result<()> {
    const OP: &str = op::QkvNormRope::<WgpuBackend>::NAME;
    let op::AttnShape { t, h, h_kv, hd } = op.check()?;
    if t == 0 {
        return Ok(());
    }
    let op::QkvNormRope {
        qkv,
        q_w,
        k_w,
        eps,
        pos0,
        theta,
        q_out,
        k_cache,
        v_cache,
    } = op;
    u32_of(OP, t * (h + 2 * h_kv) * hd)?;
    u32_of(OP, k_cache.shape().elem_count())?;
    let mut cs = be.rope_scratch()?;
    rope_table_into(t, hd, pos0, theta, &mut cs);
    let p = QkvNormRopeParams {
        t: u32_of(OP, t)?,
        h: u32_of(OP, h)?,
        h_kv: u32_of(OP, h_kv)?,
        hd: u32_of(OP, hd)?,
        eps,
        kv_row0: u32_of(OP, pos0 * h_kv)?,
        ..Default::default()
    };
    be.record(&Dispatch {
        shader: ShaderId::QkvNormRopeF32F32,
        constants: &[("WG", QKV_NORM_ROPE_WG)],
        params: bytemuck::bytes_of(&p),
        buffers: &[
            (2, qkv.storage().buffer()),
            (4, q_w.storage().buffer()),
            (5, k_w.storage().buffer()),
            (6, q_out.storage().buffer()),
            (7, k_cache.storage().buffer()),
            (8, v_cache.storage().buffer()),
        ],
        groups: groups(be, (t * (h + 2 * h_kv)) as u64)?,
        host: Some((1, bytemuck::cast_slice(&cs))),
    })
}

/// See [`op::ShortConv`].
pub(crate) fn short_conv(be: &WgpuBackend, op: op::ShortConv<'_, WgpuBackend>) -> Result<()> {
    const OP: &str = op::ShortConv::<WgpuBackend>::NAME;
    let (t, d, l) = op.check()?;
    let op::ShortConv { bcx, w, state, out } = op;
    if t == 0 {
        return Ok(());
    }
    u32_of(OP, (t + l) * 3 * d)?;
    let p = ConvParams {
        t: u32_of(OP, t)?,
        d: u32_of(OP, d)?,
        l: u32_of(OP, l)?,
        pad0: 0,
    };
    if t == 1 && l > 1 {
        // Decode: output and state shift in one dispatch.
        return dispatch_1d(
            be,
            ShaderId::ConvStepF32F32,
            bytemuck::bytes_of(&p),
            &[
                (1, bcx.storage().buffer()),
                (2, w.storage().buffer()),
                (3, state.storage().buffer()),
                (4, out.storage().buffer()),
            ],
            None,
            d as u64,
        );
    }
    dispatch_1d(
        be,
        ShaderId::ShortConvF32F32,
        bytemuck::bytes_of(&p),
        &[
            (1, bcx.storage().buffer()),
            (2, w.storage().buffer()),
            (3, state.storage().buffer()),
            (4, out.storage().buffer()),
        ],
        None,
        (t * d) as u64,
    )?;
    if l == 1 {
        return Ok(());
    }
    dispatch_1d(
        be,
        ShaderId::ConvStateF32F32,
        bytemuck::bytes_of(&p),
        &[(1, bcx.storage().buffer()), (3, state.storage().buffer())],
        None,
        d as u64,
    )
}
