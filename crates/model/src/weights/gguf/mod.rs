//! GGUF files (llama.cpp's format): the container ([`reader`], over a
//! memory map), metadata values ([`meta`]), ggml tensor types ([`types`]),
//! the tensor names llama.cpp's converter writes for LFM2 and its mmproj
//! ([`names`]), a [`WeightSource`](super::WeightSource) over a text file
//! and an optional mmproj ([`GgufWeights`]), and the model config built
//! from their metadata ([`config`]).

pub mod config;
pub mod error;
pub mod meta;
pub mod names;
pub mod reader;
mod source;
pub mod types;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

pub use self::error::GgufError;
pub use self::meta::{MetaValue, Metadata};
pub use self::reader::{Header, TensorInfo};
pub use self::source::GgufWeights;
pub use self::types::GgmlType;
use crate::error::{ModelError, Result};

/// Files smaller than this are read instead of mapped (an empty file
/// cannot be mapped on every platform).
const MAP_MIN_BYTES: u64 = 1 << 16;

enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// One opened GGUF file: header and tensor table checked, data mapped.
pub struct GgufFile {
    path: PathBuf,
    bytes: Bytes,
    header: Header,
    index: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.header.version)
            .field("metadata", &self.header.metadata.len())
            .field("tensors", &self.header.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and checks `path` (see [`reader::parse`]).
    pub fn open(path: &Path) -> Result<GgufFile> {
        let io = |source| ModelError::Io {
            path: path.into(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let bytes = if len < MAP_MIN_BYTES {
            Bytes::Owned(std::fs::read(path).map_err(io)?)
        } else {
            // SAFETY: the map is read-only and lives as long as the
            // GgufFile; a file modified by another process while mapped is
            // outside what we can defend against (as for every mmap-based
            // loader).
            Bytes::Mapped(unsafe { Mmap::map(&file) }.map_err(io)?)
        };
        let header = reader::parse(bytes.as_slice()).map_err(|kind| ModelError::Gguf {
            path: path.into(),
            kind,
        })?;
        let index = header
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(GgufFile {
            path: path.into(),
            bytes,
            header,
            index,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file name, for messages.
    pub fn file_name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into(),
        )
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn metadata(&self) -> &Metadata {
        &self.header.metadata
    }

    /// Tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.index.get(name).map(|&i| &self.header.tensors[i])
    }

    /// A tensor's data (checked to lie inside the file at open).
    pub fn data(&self, t: &TensorInfo) -> &[u8] {
        let start = (self.header.data_start + t.offset) as usize;
        &self.bytes.as_slice()[start..start + t.nbytes as usize]
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<&str> {
        self.metadata()
            .str("general.architecture")
            .map_err(|kind| self.error(kind))
    }

    /// `kind` as a [`ModelError`] naming this file.
    pub fn error(&self, kind: GgufError) -> ModelError {
        ModelError::Gguf {
            path: self.path.clone(),
            kind,
        }
    }

    /// Tensor count and bytes per ggml type, by type name.
    pub fn type_histogram(&self) -> BTreeMap<&'static str, (usize, u64)> {
        let mut h = BTreeMap::new();
        for t in self.tensors() {
            let e = h.entry(t.ty.name).or_insert((0, 0));
            e.0 += 1;
            e.1 += t.nbytes;
        }
        h
    }
}
