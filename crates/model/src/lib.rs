//! LFM2-VL model definition on top of `tensor`: config, weight loading, the
//! SigLIP2 NaFlex vision tower, the pixel-unshuffle connector and the LFM2
//! hybrid decoder. Generic over `tensor::Backend`; never names wgpu or an ISA.
//!
//! The model itself lands with the text-model and vision issues; this crate
//! holds its place in the dependency order `cli → runtime → model → tensor`.

pub use tensor;
