//! [`WeightSource`]: where the [`Loader`](super::Loader) reads tensors from,
//! by their Hugging Face names: a safetensors [`Checkpoint`](super::Checkpoint)
//! or GGUF files ([`GgufWeights`](super::gguf::GgufWeights), which map the
//! names and undo the converter's layout changes). Sources record what was
//! read so that [`WeightSource::finish`] can report what nothing used.

use std::collections::BTreeSet;

use tensor::Shape;

use super::RawTensor;
use crate::error::{ModelError, Result};

/// Tensors by Hugging Face name.
pub trait WeightSource {
    fn contains(&self, name: &str) -> bool;

    /// The tensor `name`, marked as used.
    fn get(&self, name: &str) -> Result<RawTensor<'_>>;

    /// Every tensor name the source holds (mapped names first; a GGUF
    /// tensor the model does not know keeps its own name), sorted.
    fn names(&self) -> Vec<&str>;

    /// Names read so far.
    fn used(&self) -> BTreeSet<String>;

    /// How errors should name `name`, written between backticks (a GGUF
    /// source gives the GGUF name and the file's).
    fn describe(&self, name: &str) -> String {
        name.to_string()
    }

    /// Like [`get`](Self::get), checking the shape.
    fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<RawTensor<'_>> {
        let t = self.get(name)?;
        if t.shape != shape {
            return Err(ModelError::TensorShape {
                name: self.describe(name),
                expected: Shape::from(shape),
                got: t.shape(),
            });
        }
        Ok(t)
    }

    /// Errors if a tensor was never read, unless a prefix in `ignore` matches it.
    fn finish(&self, ignore: &[&str]) -> Result<()> {
        let used = self.used();
        let unused: Vec<&str> = self
            .names()
            .into_iter()
            .filter(|n| !used.contains(*n) && !ignore.iter().any(|p| n.starts_with(p)))
            .collect();
        if unused.is_empty() {
            return Ok(());
        }
        tracing::warn!(count = unused.len(), "unused checkpoint tensors");
        let mut names = unused
            .iter()
            .take(8)
            .map(|n| format!("`{}`", self.describe(n)))
            .collect::<Vec<_>>()
            .join(", ");
        if unused.len() > 8 {
            names.push_str(", …");
        }
        Err(ModelError::UnusedTensors {
            count: unused.len(),
            names,
        })
    }
}
