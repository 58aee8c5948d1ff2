//! Helpers shared by the WGSL op tests (`wgpu_ops.rs`, `wgpu_attention.rs`).

use tensor::wgpu::WgpuBackend;
use tensor::{Backend, HostData, Shape, Tensor};

pub fn up(be: &WgpuBackend, v: &[f32], dims: &[usize]) -> Tensor<WgpuBackend> {
    be.upload(HostData::f32(v), Shape::from(dims.to_vec()))
        .expect("upload")
}

/// An output tensor filled with NaN: the kernel must overwrite all of it.
pub fn nan_out(be: &WgpuBackend, dims: &[usize]) -> Tensor<WgpuBackend> {
    let n: usize = dims.iter().product();
    up(be, &vec![f32::NAN; n], dims)
}

pub fn down(be: &WgpuBackend, t: &Tensor<WgpuBackend>) -> Vec<f32> {
    be.download_f32(t).expect("download")
}
