//! LFM2-VL model definition on top of `tensor`: config, weight loading, the
//! SigLIP2 NaFlex vision tower, the pixel-unshuffle connector and the LFM2
//! hybrid decoder. Generic over `tensor::Backend`; never names wgpu or an ISA.

pub mod preprocess;
pub mod prompt;

pub use tensor;
