//! Weight loading: safetensors checkpoints ([`Checkpoint`]), tensor names
//! ([`names`]) and the typed loader that uploads them to a backend ([`Loader`]).

mod checkpoint;
mod loader;
pub mod names;

pub use checkpoint::{Checkpoint, RawTensor};
pub use loader::Loader;
pub use names::Prefix;
