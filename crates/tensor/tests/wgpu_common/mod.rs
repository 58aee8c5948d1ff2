//! Helpers shared by the WGSL op tests (`wgpu_ops.rs`, `wgpu_attention.rs`,
//! `wgpu_coop.rs`, `wgpu_coop_attention.rs`).
#![allow(dead_code)]

use tensor::wgpu::matmul::coop::coop_gemm;
use tensor::wgpu::{WgpuBackend, gpu_or_skip};
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

/// The backend, or `None` (skip) where the adapter has no cooperative
/// matrices (the tensor-core kernels' tests); `LFM_REQUIRE_COOP=1` makes
/// that a failure (CI sets it where it runs these tests on an adapter that
/// has them).
pub fn coop_or_skip() -> Option<WgpuBackend> {
    let be = gpu_or_skip()?;
    if coop_gemm(&be).is_some() {
        return Some(be);
    }
    if tensor::testing::env::require_coop() {
        panic!(
            "LFM_REQUIRE_COOP=1 but {} has no cooperative matrices",
            be.describe()
        );
    }
    println!(
        "SKIP: {} has no cooperative matrices; set LFM_REQUIRE_COOP=1 to fail instead",
        be.describe()
    );
    None
}
