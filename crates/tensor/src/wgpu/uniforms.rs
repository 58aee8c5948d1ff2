//! Rust mirrors of every WGSL uniform struct (`#[repr(C)]`, `bytemuck::Pod`).
//!
//! [`layouts`] lists each mirror's size and field offsets; a test compares
//! them with naga's reflection of the WGSL struct of the same name in every
//! shader that binds it, and fails on a uniform struct with no mirror.

use bytemuck::{Pod, Zeroable};

/// Mirror of `MatmulParams` in `shaders/matmul/io.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    /// 1 when the bias binding holds `n` values, 0 for the placeholder.
    pub has_bias: u32,
}

/// Mirror of `ElementwiseParams` in `shaders/elementwise/io.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ElementwiseParams {
    pub n: u32,
    pub pad0: u32,
    pub pad1: u32,
    pub pad2: u32,
}

/// Mirror of `QkvNormRopeParams` in `shaders/rope/qkv_norm_rope.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct QkvNormRopeParams {
    pub t: u32,
    pub h: u32,
    pub h_kv: u32,
    pub hd: u32,
    pub eps: f32,
    pub kv_row0: u32,
    pub pad0: u32,
    pub pad1: u32,
}

/// Mirror of `SwigluParams` in `shaders/elementwise/swiglu.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SwigluParams {
    /// Output elements (t · f).
    pub n: u32,
    /// Half width f of the stacked gate | up rows.
    pub f: u32,
    pub pad0: u32,
    pub pad1: u32,
}

/// Mirror of `CopyColsParams` in `shaders/gather/copy_cols.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct CopyColsParams {
    /// Output elements (rows · c).
    pub n: u32,
    /// Columns of `src` and of `out`.
    pub c_src: u32,
    pub c: u32,
    pub col0: u32,
}

/// Mirror of `GatherParams` in `shaders/gather/io.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct GatherParams {
    pub d: u32,
    /// Output elements (ids · d).
    pub n: u32,
    pub pad0: u32,
    pub pad1: u32,
}

/// Mirror of `PixelUnshuffleParams` in `shaders/vision/pixel_unshuffle.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct PixelUnshuffleParams {
    pub w: u32,
    pub d: u32,
    /// Output elements.
    pub n: u32,
    pub pad0: u32,
}

/// Mirror of `NormParams` in `shaders/norm/params.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct NormParams {
    pub rows: u32,
    pub d: u32,
    pub eps: f32,
    pub pad0: u32,
}

/// Mirror of `RopeParams` in `shaders/rope/rope.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RopeParams {
    pub t: u32,
    pub h: u32,
    pub hd: u32,
    pub pad0: u32,
}

/// Mirror of `GemvConvParams` in `shaders/matmul/gemv_x8_sg_conv.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct GemvConvParams {
    pub d: u32,
    pub k: u32,
    pub l: u32,
    pub pad0: u32,
}

/// Mirror of `ConvParams` in `shaders/conv/io.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ConvParams {
    pub t: u32,
    pub d: u32,
    pub l: u32,
    pub pad0: u32,
}

/// Mirror of `AttnParams` in `shaders/attention/params.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct AttnParams {
    pub t: u32,
    pub h: u32,
    pub h_kv: u32,
    pub hd: u32,
    pub kv_len: u32,
    /// 1 for causal, 0 for bidirectional.
    pub causal: u32,
    pub scale: f32,
    pub pad0: u32,
}

/// Size and field offsets of one mirror, by WGSL name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniformLayout {
    /// The WGSL struct name.
    pub name: &'static str,
    pub size: usize,
    /// `(field name, byte offset)` in declaration order.
    pub fields: Vec<(&'static str, usize)>,
}

/// The [`UniformLayout`] of a mirror: `layout!(Type { field, … })`.
macro_rules! layout {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        UniformLayout {
            name: stringify!($ty),
            size: size_of::<$ty>(),
            fields: vec![$((stringify!($field), std::mem::offset_of!($ty, $field))),*],
        }
    };
}

/// Every uniform mirror's layout.
pub fn layouts() -> Vec<UniformLayout> {
    vec![
        layout!(MatmulParams { m, n, k, has_bias }),
        layout!(ElementwiseParams {
            n,
            pad0,
            pad1,
            pad2
        }),
        layout!(GatherParams { d, n, pad0, pad1 }),
        layout!(CopyColsParams { n, c_src, c, col0 }),
        layout!(SwigluParams { n, f, pad0, pad1 }),
        layout!(QkvNormRopeParams {
            t,
            h,
            h_kv,
            hd,
            eps,
            kv_row0,
            pad0,
            pad1
        }),
        layout!(PixelUnshuffleParams { w, d, n, pad0 }),
        layout!(NormParams { rows, d, eps, pad0 }),
        layout!(RopeParams { t, h, hd, pad0 }),
        layout!(ConvParams { t, d, l, pad0 }),
        layout!(GemvConvParams { d, k, l, pad0 }),
        layout!(AttnParams {
            t,
            h,
            h_kv,
            hd,
            kv_len,
            causal,
            scale,
            pad0
        }),
    ]
}
