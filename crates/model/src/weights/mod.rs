//! Weight loading: where tensors come from ([`WeightSource`]: safetensors
//! [`Checkpoint`]s or [`gguf`] files), tensor names ([`names`]) and the
//! typed loader that uploads them to a backend ([`Loader`]).

mod checkpoint;
pub mod gguf;
mod loader;
pub mod names;
mod source;

pub use checkpoint::{Checkpoint, RawTensor};
pub use loader::Loader;
pub use names::Prefix;
pub use source::WeightSource;
