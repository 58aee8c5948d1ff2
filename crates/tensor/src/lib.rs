//! The tensor engine of lfm2vl-rs: dtypes, shapes, tensors whose storage
//! belongs to a backend, the coarse model-shaped [`Backend`] trait (each op
//! takes one descriptor of [`op`]: its operands by name, its checks), the
//! CPU backend with runtime-dispatched SIMD kernels (scalar, AVX2, AVX-512,
//! NEON) and, behind the default `wgpu` feature, the WGSL backend.
//!
//! Nothing here knows about LFM2: the model crate composes these ops.
//!
//! ```
//! use tensor::{Backend, DType, HostData, Shape, op};
//! use tensor::cpu::{CpuBackend, CpuOptions};
//!
//! let be = CpuBackend::new(CpuOptions::default())?;
//! // y[m, n] = x[m, k] · w[n, k]ᵀ
//! let x = be.upload(HostData::f32(&[1.0, 2.0]), Shape::from([1, 2]))?;
//! let w = be.upload(HostData::f32(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]), Shape::from([3, 2]))?;
//! let mut y = be.zeros(DType::F32, Shape::from([1, 3]))?;
//! be.matmul(op::Matmul { x: &x, w: &w, bias: None, out: &mut y })?;
//! assert_eq!(be.download_f32(&y)?, vec![1.0, 2.0, 3.0]);
//! # Ok::<(), tensor::TensorError>(())
//! ```

pub mod backend;
pub mod cpu;
pub mod dtype;
pub mod error;
pub mod op;
pub mod quant;
pub mod shape;
pub mod tensor;
pub mod testing;
#[cfg(feature = "wgpu")]
pub mod wgpu;

pub use backend::{Backend, Gelu, HostData};
pub use dtype::DType;
pub use error::{Result, TensorError};
pub use shape::Shape;
pub use tensor::Tensor;
