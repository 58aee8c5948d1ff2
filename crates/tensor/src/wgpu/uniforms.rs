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

/// Size and field offsets of one mirror, by WGSL name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniformLayout {
    /// The WGSL struct name.
    pub name: &'static str,
    pub size: usize,
    /// `(field name, byte offset)` in declaration order.
    pub fields: Vec<(&'static str, usize)>,
}

/// Every uniform mirror's layout.
pub fn layouts() -> Vec<UniformLayout> {
    vec![UniformLayout {
        name: "MatmulParams",
        size: size_of::<MatmulParams>(),
        fields: vec![
            ("m", std::mem::offset_of!(MatmulParams, m)),
            ("n", std::mem::offset_of!(MatmulParams, n)),
            ("k", std::mem::offset_of!(MatmulParams, k)),
            ("has_bias", std::mem::offset_of!(MatmulParams, has_bias)),
        ],
    }]
}
