//! LFM2-VL model definition on top of `tensor`: config, weight loading, the
//! SigLIP2 NaFlex vision tower, the pixel-unshuffle connector and the LFM2
//! hybrid decoder. Generic over `tensor::Backend`; never names wgpu or an ISA.

pub mod config;
pub mod connector;
pub mod error;
pub mod lfm2vl;
pub mod preprocess;
pub mod prompt;
pub mod text;
pub mod vision;
pub mod weights;

pub use config::{ModelConfig, TextConfig};
pub use error::{ModelError, Result};
pub use lfm2vl::{CropPatches, Lfm2Vl};

pub use tensor;
