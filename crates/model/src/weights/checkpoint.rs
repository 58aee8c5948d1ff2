//! Safetensors checkpoints, memory-mapped: one `model.safetensors`, or
//! shards listed by `model.safetensors.index.json`. Every tensor read is
//! recorded so that [`WeightSource::finish`] can report the ones nothing used.
//!
//! Tensor bytes are handed out as `&[u8]` at whatever offset the file has
//! (often odd); backends copy them into aligned storage on upload.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata, SafeTensors};
use serde_json::Value;
use tensor::{DType, HostData, Shape};

use super::WeightSource;
use crate::error::{ModelError, Result};

struct File {
    path: PathBuf,
    mmap: Mmap,
    /// Byte offset of the data section (8 + header length).
    data_start: usize,
    meta: Metadata,
}

/// One tensor's bytes in a checkpoint file.
#[derive(Clone, Copy, Debug)]
pub struct RawTensor<'a> {
    pub dtype: DType,
    pub shape: &'a [usize],
    pub bytes: &'a [u8],
}

impl<'a> RawTensor<'a> {
    pub fn host(&self) -> HostData<'a> {
        HostData::new(self.dtype, self.bytes)
    }

    pub fn shape(&self) -> Shape {
        Shape::from(self.shape)
    }

    /// The values widened to f32 (exact for f32/bf16/f16; block formats
    /// decoded as ggml does).
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        Ok(tensor::quant::dequantize_vec(self.dtype, self.bytes)?)
    }
}

/// A (possibly sharded) safetensors checkpoint.
pub struct Checkpoint {
    files: Vec<File>,
    /// Tensor name → index into `files`.
    index: BTreeMap<String, usize>,
    used: Mutex<BTreeSet<String>>,
}

impl Checkpoint {
    /// Opens `dir/model.safetensors.index.json` (sharded) or
    /// `dir/model.safetensors`.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let index = dir.join("model.safetensors.index.json");
        if index.is_file() {
            let text = std::fs::read_to_string(&index).map_err(|source| ModelError::Io {
                path: index.clone(),
                source,
            })?;
            let v: Value = serde_json::from_str(&text).map_err(|source| ModelError::Json {
                path: index.clone(),
                source,
            })?;
            let map = v
                .get("weight_map")
                .and_then(Value::as_object)
                .ok_or_else(|| ModelError::Safetensors {
                    path: index.clone(),
                    detail: "no `weight_map` object".into(),
                })?;
            let shards: BTreeSet<&str> = map.values().filter_map(Value::as_str).collect();
            let paths: Vec<PathBuf> = shards.into_iter().map(|s| dir.join(s)).collect();
            return Self::open_files(&paths);
        }
        Self::open_files(&[dir.join("model.safetensors")])
    }

    /// Opens and validates the given files; a tensor in two files is an error.
    pub fn open_files(paths: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        let mut index = BTreeMap::new();
        for path in paths {
            let file = open_file(path)?;
            for name in file.meta.tensors().keys() {
                if let Some(&prev) = index.get(name) {
                    let first: &File = &files[prev];
                    return Err(ModelError::DuplicateTensor {
                        name: name.clone(),
                        first: first.path.clone(),
                        second: path.clone(),
                    });
                }
                index.insert(name.clone(), files.len());
            }
            files.push(file);
        }
        Ok(Checkpoint {
            files,
            index,
            used: Mutex::new(BTreeSet::new()),
        })
    }

    fn file_list(&self) -> String {
        self.files
            .iter()
            .map(|f| f.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// All tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// Like [`get`](Self::get), checking the shape.
    pub fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<RawTensor<'_>> {
        WeightSource::get_shaped(self, name, shape)
    }

    /// Errors if a tensor was never read, unless a prefix in `ignore` matches it.
    pub fn finish(&self, ignore: &[&str]) -> Result<()> {
        WeightSource::finish(self, ignore)
    }

    /// The tensor `name`, marked as used.
    pub fn get(&self, name: &str) -> Result<RawTensor<'_>> {
        let &fi = self
            .index
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.into(),
                files: self.file_list(),
            })?;
        let f = &self.files[fi];
        let info = f
            .meta
            .info(name)
            .expect("index built from this file's metadata");
        let dtype = match info.dtype {
            Dtype::F32 => DType::F32,
            Dtype::BF16 => DType::BF16,
            Dtype::F16 => DType::F16,
            other => {
                return Err(ModelError::TensorDType {
                    name: name.into(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        let (start, end) = info.data_offsets;
        // read_metadata checked that the offsets lie inside the data section.
        let bytes = &f.mmap[f.data_start + start..f.data_start + end];
        if let Ok(mut used) = self.used.lock() {
            used.insert(name.to_string());
        }
        Ok(RawTensor {
            dtype,
            shape: &info.shape,
            bytes,
        })
    }
}

impl WeightSource for Checkpoint {
    fn contains(&self, name: &str) -> bool {
        Checkpoint::contains(self, name)
    }

    fn get(&self, name: &str) -> Result<RawTensor<'_>> {
        Checkpoint::get(self, name)
    }

    fn names(&self) -> Vec<&str> {
        Checkpoint::names(self).collect()
    }

    fn used(&self) -> BTreeSet<String> {
        self.used.lock().map(|u| u.clone()).unwrap_or_default()
    }
}

fn open_file(path: &Path) -> Result<File> {
    let file = std::fs::File::open(path).map_err(|source| ModelError::Io {
        path: path.into(),
        source,
    })?;
    // SAFETY: the map is read-only and lives as long as the Checkpoint; a
    // checkpoint modified by another process while mapped is outside what we
    // can defend against (as for every mmap-based loader).
    let mmap = unsafe { Mmap::map(&file) }.map_err(|source| ModelError::Io {
        path: path.into(),
        source,
    })?;
    let bad = |detail: String| ModelError::Safetensors {
        path: path.into(),
        detail,
    };
    let (header_len, meta) =
        SafeTensors::read_metadata(&mmap[..]).map_err(|e| bad(e.to_string()))?;
    let data_start = 8 + header_len;
    // read_metadata checks the offsets against the buffer; check the total
    // length too, so a truncated file is caught here and not at first use.
    let needed = data_start + meta.data_len();
    if mmap.len() < needed {
        return Err(bad(format!(
            "truncated: {} bytes, header describes {needed}",
            mmap.len()
        )));
    }
    Ok(File {
        path: path.into(),
        mmap,
        data_start,
        meta,
    })
}
