//! The wgpu backend's model ops other than matmul: shape and dtype checks
//! (the same typed errors as the CPU backend), then one or two recorded
//! dispatches of the WGSL kernels in `shaders/{elementwise,gather,vision,
//! norm,rope,conv,attention}/`, or a buffer copy for `copy_rows` and
//! `slice_rows`. Nothing here waits for the device.
//!
//! - Elementwise kernels, gathers, pixel unshuffle and rope use one thread
//!   per element (or rotated pair) in workgroups of [`ELEM_WG`].
//! - `rms_norm` and `layer_norm` use one workgroup of [`NORM_WG`] per row.
//! - `short_conv` is two dispatches: the output (one thread per element,
//!   reading the old state), then the state shift (one thread per channel).
//! - `attention` uses one workgroup of [`ATTN_WG`] threads per (query row,
//!   head), key tiles of [`ATTN_WG`] and an online softmax.
//!
//! Tolerances: `testing::tolerance::GPU_*`.

use super::matmul::grid;
use super::shaders::ShaderId;
use super::uniforms::{
    AttnParams, ConvParams, ElementwiseParams, GatherParams, NormParams, PixelUnshuffleParams,
    RopeParams,
};
use super::{Dispatch, WgpuBackend};
use crate::{DType, Gelu, Result, Shape, Tensor, TensorError};

type T = Tensor<WgpuBackend>;

/// Threads per workgroup of the one-thread-per-element kernels.
pub const ELEM_WG: u32 = 256;
/// Threads per workgroup (one row each) of the normalisations.
pub const NORM_WG: u32 = 256;
/// Threads per workgroup (one (row, head) each) of attention, and keys per tile.
pub const ATTN_WG: u32 = 64;
/// Largest head width the attention kernel takes (`MAX_HD` in the shader,
/// also ≤ `HD_PER_THREAD · ATTN_WG`).
pub const ATTN_MAX_HD: usize = 256;

fn mismatch(
    op: &'static str,
    what: &'static str,
    expected: impl Into<Shape>,
    got: &Shape,
) -> TensorError {
    TensorError::ShapeMismatch {
        op,
        what,
        expected: expected.into(),
        got: got.clone(),
    }
}

fn same_shape(op: &'static str, what: &'static str, a: &T, b: &T) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(mismatch(op, what, a.shape().clone(), b.shape()));
    }
    Ok(())
}

/// Errors unless every tensor is f32.
fn all_f32(op: &'static str, ts: &[(&'static str, &T)]) -> Result<()> {
    for &(what, t) in ts {
        if t.dtype() != DType::F32 {
            return Err(TensorError::UnsupportedDType {
                op,
                what,
                dtype: t.dtype(),
            });
        }
    }
    Ok(())
}

/// `v` as a shader index (u32), or an error naming the op.
fn u32_of(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| TensorError::Gpu {
        what: op,
        detail: format!("size {v} overflows the shaders' u32 indexing"),
    })
}

/// A 2D grid of `groups` workgroups within the device's per-dimension limit.
fn groups(be: &WgpuBackend, groups: u64) -> Result<[u32; 3]> {
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

/// See [`crate::Backend::add_assign`].
pub(crate) fn add_assign(be: &WgpuBackend, x: &mut T, y: &T) -> Result<()> {
    const OP: &str = "add_assign";
    all_f32(OP, &[("x", x), ("y", y)])?;
    same_shape(OP, "y", x, y)?;
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

/// See [`crate::Backend::silu_mul`].
pub(crate) fn silu_mul(be: &WgpuBackend, gate: &T, up: &T, out: &mut T) -> Result<()> {
    const OP: &str = "silu_mul";
    all_f32(OP, &[("gate", gate), ("up", up), ("out", out)])?;
    same_shape(OP, "up", gate, up)?;
    same_shape(OP, "out", gate, out)?;
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

/// See [`crate::Backend::gelu`].
pub(crate) fn gelu(be: &WgpuBackend, x: &T, kind: Gelu, out: &mut T) -> Result<()> {
    const OP: &str = "gelu";
    all_f32(OP, &[("x", x), ("out", out)])?;
    same_shape(OP, "out", x, out)?;
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

/// See [`crate::Backend::copy_rows`].
pub(crate) fn copy_rows(be: &WgpuBackend, src: &T, dst: &mut T, row0: usize) -> Result<()> {
    const OP: &str = "copy_rows";
    all_f32(OP, &[("src", src), ("dst", dst)])?;
    let (rows, w) = rows_width(dst);
    let t = src.shape().rows();
    if src.shape().last() != w {
        return Err(mismatch(OP, "src", [t, w], src.shape()));
    }
    if row0 + t > rows {
        return Err(TensorError::OutOfRange {
            op: OP,
            what: "row0 + t",
            value: row0 + t,
            limit: rows,
        });
    }
    be.record_copy(
        src.storage().buffer(),
        0,
        dst.storage().buffer(),
        (row0 * w * 4) as u64,
        (t * w * 4) as u64,
    )
}

/// See [`crate::Backend::slice_rows`].
pub(crate) fn slice_rows(be: &WgpuBackend, src: &T, row0: usize, out: &mut T) -> Result<()> {
    const OP: &str = "slice_rows";
    all_f32(OP, &[("src", src), ("out", out)])?;
    let (rows, w) = rows_width(src);
    let t = out.shape().rows();
    if out.shape().last() != w {
        return Err(mismatch(OP, "out", [t, w], out.shape()));
    }
    if row0 + t > rows {
        return Err(TensorError::OutOfRange {
            op: OP,
            what: "row0 + t",
            value: row0 + t,
            limit: rows,
        });
    }
    be.record_copy(
        src.storage().buffer(),
        (row0 * w * 4) as u64,
        out.storage().buffer(),
        0,
        (t * w * 4) as u64,
    )
}

/// See [`crate::Backend::gather_rows`].
pub(crate) fn gather_rows(be: &WgpuBackend, table: &T, ids: &[u32], out: &mut T) -> Result<()> {
    const OP: &str = "gather_rows";
    all_f32(OP, &[("out", out)])?;
    let &[vocab, d] = table.shape().dims() else {
        return Err(mismatch(
            OP,
            "table (must be [vocab, d])",
            [0, 0],
            table.shape(),
        ));
    };
    if out.shape().dims() != [ids.len(), d] {
        return Err(mismatch(OP, "out", [ids.len(), d], out.shape()));
    }
    if let Some(&bad) = ids.iter().find(|&&i| i as usize >= vocab) {
        return Err(TensorError::OutOfRange {
            op: OP,
            what: "token id",
            value: bad as usize,
            limit: vocab,
        });
    }
    let n = ids.len() * d;
    if n == 0 {
        return Ok(());
    }
    u32_of(OP, vocab * d)?;
    let shader = match table.dtype() {
        DType::F32 => ShaderId::GatherF32F32,
        DType::BF16 => ShaderId::GatherBf16F32,
        DType::F16 => ShaderId::GatherF16F32,
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

/// See [`crate::Backend::pixel_unshuffle`].
pub(crate) fn pixel_unshuffle(
    be: &WgpuBackend,
    x: &T,
    h: usize,
    w: usize,
    out: &mut T,
) -> Result<()> {
    const OP: &str = "pixel_unshuffle";
    all_f32(OP, &[("x", x), ("out", out)])?;
    let d = x.shape().last();
    if !h.is_multiple_of(2) || !w.is_multiple_of(2) || x.shape().dims() != [h * w, d] {
        return Err(mismatch(
            OP,
            "x (must be [h·w, d], h and w even)",
            [h * w, d],
            x.shape(),
        ));
    }
    if out.shape().dims() != [h * w / 4, 4 * d] {
        return Err(mismatch(OP, "out", [h * w / 4, 4 * d], out.shape()));
    }
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

/// See [`crate::Backend::rms_norm`].
pub(crate) fn rms_norm(be: &WgpuBackend, x: &T, w: &T, eps: f32, out: &mut T) -> Result<()> {
    const OP: &str = "rms_norm";
    all_f32(OP, &[("x", x), ("w", w), ("out", out)])?;
    same_shape(OP, "out", x, out)?;
    let d = x.shape().last();
    if w.shape().dims() != [d] {
        return Err(mismatch(OP, "w", [d], w.shape()));
    }
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

/// See [`crate::Backend::layer_norm`].
pub(crate) fn layer_norm(
    be: &WgpuBackend,
    x: &T,
    w: &T,
    b: &T,
    eps: f32,
    out: &mut T,
) -> Result<()> {
    const OP: &str = "layer_norm";
    all_f32(OP, &[("x", x), ("w", w), ("b", b), ("out", out)])?;
    same_shape(OP, "out", x, out)?;
    let d = x.shape().last();
    for (what, t) in [("w", w), ("b", b)] {
        if t.shape().dims() != [d] {
            return Err(mismatch(OP, what, [d], t.shape()));
        }
    }
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
    let half = hd / 2;
    let inv: Vec<f32> = (0..half)
        .map(|j| 1.0 / theta.powf((2 * j) as f32 / hd as f32))
        .collect();
    let mut cs = Vec::with_capacity(t * half * 2);
    for i in 0..t {
        let pos = (pos0 + i) as f32;
        for &f in &inv {
            let (s, c) = f64::from(pos * f).sin_cos();
            cs.push(c as f32);
            cs.push(s as f32);
        }
    }
    cs
}

/// See [`crate::Backend::rope`].
pub(crate) fn rope(be: &WgpuBackend, x: &mut T, pos0: usize, theta: f32) -> Result<()> {
    const OP: &str = "rope";
    all_f32(OP, &[("x", x)])?;
    let &[t, h, hd] = x.shape().dims() else {
        return Err(mismatch(OP, "x (must be [t, h, hd])", [0, 0, 0], x.shape()));
    };
    if hd % 2 != 0 || h == 0 {
        return Err(mismatch(
            OP,
            "x (hd must be even, h > 0)",
            [0, h.max(1), hd + 1],
            x.shape(),
        ));
    }
    let pairs = t * h * hd / 2;
    if pairs == 0 {
        return Ok(());
    }
    u32_of(OP, t * h * hd)?;
    let cs = rope_table(t, hd, pos0, theta);
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

/// See [`crate::Backend::short_conv`].
pub(crate) fn short_conv(
    be: &WgpuBackend,
    bcx: &T,
    w: &T,
    state: &mut T,
    out: &mut T,
) -> Result<()> {
    const OP: &str = "short_conv";
    all_f32(
        OP,
        &[("bcx", bcx), ("w", w), ("state", state), ("out", out)],
    )?;
    let &[d, l] = w.shape().dims() else {
        return Err(mismatch(OP, "w (must be [d, l])", [0, 0], w.shape()));
    };
    if l == 0 || d == 0 {
        return Err(mismatch(
            OP,
            "w (must be [d, l], both > 0)",
            [1, 1],
            w.shape(),
        ));
    }
    let t = out.shape().rows();
    if out.shape().last() != d {
        return Err(mismatch(OP, "out", [t, d], out.shape()));
    }
    if bcx.shape().dims() != [t, 3 * d] {
        return Err(mismatch(OP, "bcx", [t, 3 * d], bcx.shape()));
    }
    if state.shape().dims() != [l - 1, d] {
        return Err(mismatch(OP, "state", [l - 1, d], state.shape()));
    }
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

/// See [`crate::Backend::attention`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention(
    be: &WgpuBackend,
    q: &T,
    k: &T,
    v: &T,
    kv_len: usize,
    causal: bool,
    scale: f32,
    out: &mut T,
) -> Result<()> {
    const OP: &str = "attention";
    all_f32(OP, &[("q", q), ("k", k), ("v", v), ("out", out)])?;
    let &[t, h, hd] = q.shape().dims() else {
        return Err(mismatch(OP, "q (must be [t, h, hd])", [0, 0, 0], q.shape()));
    };
    let &[s, h_kv, hd_k] = k.shape().dims() else {
        return Err(mismatch(
            OP,
            "k (must be [s, h_kv, hd])",
            [0, 0, hd],
            k.shape(),
        ));
    };
    if hd_k != hd || h_kv == 0 || h % h_kv != 0 {
        return Err(mismatch(
            OP,
            "k (hd must match, h % h_kv = 0)",
            [s, h_kv.max(1), hd],
            k.shape(),
        ));
    }
    same_shape(OP, "v", k, v)?;
    same_shape(OP, "out", q, out)?;
    if kv_len > s || (causal && kv_len < t) {
        return Err(TensorError::OutOfRange {
            op: OP,
            what: "kv_len",
            value: kv_len,
            limit: s,
        });
    }
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
    u32_of(OP, s * h_kv * hd)?;
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
    be.record(&Dispatch {
        shader: ShaderId::AttentionF32F32,
        constants: &[("WG", ATTN_WG)],
        params: bytemuck::bytes_of(&p),
        buffers: &[
            (1, q.storage().buffer()),
            (2, k.storage().buffer()),
            (3, v.storage().buffer()),
            (4, out.storage().buffer()),
        ],
        groups: groups(be, (t * h) as u64)?,
        host: None,
    })
}
