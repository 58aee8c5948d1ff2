//! [`GgufWeights`]: a text GGUF (`general.architecture = lfm2`) and an
//! optional mmproj GGUF (`clip`) seen as one [`WeightSource`] under the
//! Hugging Face names ([`super::names`]). The text model is named as in an
//! LFM2-VL checkpoint (`model.language_model.*`) when an mmproj is given,
//! else as a plain LFM2 (`model.*`). Layout changes are undone here: the
//! conv weight gets its `[d, 1, l]` shape back, and the patch embedding is
//! permuted back to the Linear layout once at open (kept in its dtype when
//! plain, decoded to f32 when block-quantized).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

use tensor::DType;

use super::error::GgufError;
use super::names::{self, Layout};
use super::{GgufFile, TensorInfo};
use crate::error::{ModelError, Result};
use crate::weights::{RawTensor, WeightSource, names as hf_names};

/// The architecture of a text GGUF this engine loads.
pub const TEXT_ARCH: &str = "lfm2";
/// The architecture of an mmproj GGUF.
pub const MMPROJ_ARCH: &str = "clip";

/// A tensor rewritten at open: (dtype, bytes).
type Owned = Option<(DType, Vec<u8>)>;

struct Entry {
    file: usize,
    tensor: usize,
    /// The Hugging Face shape.
    shape: Vec<usize>,
    /// The patch embedding in the Linear layout (dtype, bytes).
    owned: Owned,
}

/// A text GGUF and an optional mmproj GGUF, by Hugging Face tensor names.
pub struct GgufWeights {
    /// `[text]` or `[text, mmproj]`.
    files: Vec<GgufFile>,
    text_prefix: &'static str,
    index: BTreeMap<String, Entry>,
    used: Mutex<BTreeSet<String>>,
}

impl GgufWeights {
    /// Opens `text` and, if given, `mmproj`, checking their architectures.
    pub fn open(text: &Path, mmproj: Option<&Path>) -> Result<GgufWeights> {
        let text = GgufFile::open(text)?;
        let mmproj = mmproj.map(GgufFile::open).transpose()?;
        Self::from_files(text, mmproj)
    }

    /// [`GgufWeights::open`] on already opened files.
    pub fn from_files(text: GgufFile, mmproj: Option<GgufFile>) -> Result<GgufWeights> {
        check_arch(&text, TEXT_ARCH)?;
        if let Some(m) = &mmproj {
            check_arch(m, MMPROJ_ARCH)?;
        }
        let text_prefix = if mmproj.is_some() {
            hf_names::VL_TEXT
        } else {
            hf_names::LM_TEXT
        };
        let mut files = vec![text];
        files.extend(mmproj);
        let mut index = BTreeMap::new();
        for (fi, f) in files.iter().enumerate() {
            for (ti, t) in f.tensors().iter().enumerate() {
                let mapped = if fi == 0 {
                    names::text_to_hf(&t.name, text_prefix)
                } else {
                    names::mmproj_to_hf(&t.name)
                };
                // A tensor the model does not know keeps its GGUF name, so
                // that `finish` reports it.
                let (hf, layout) = mapped.unwrap_or_else(|| (t.name.clone(), Layout::Same));
                let (shape, owned) = match layout {
                    Layout::Same => (t.shape(), None),
                    Layout::ConvSqueezed => {
                        let s = t.shape();
                        match s[..] {
                            [d, l] => (vec![d, 1, l], None),
                            _ => (s, None),
                        }
                    }
                    Layout::PatchConv => patch_linear(f, t)?,
                };
                if let Some(prev) = index.insert(
                    hf.clone(),
                    Entry {
                        file: fi,
                        tensor: ti,
                        shape,
                        owned,
                    },
                ) {
                    return Err(ModelError::DuplicateTensor {
                        name: hf,
                        first: files[prev.file].path().into(),
                        second: f.path().into(),
                    });
                }
            }
        }
        Ok(GgufWeights {
            files,
            text_prefix,
            index,
            used: Mutex::new(BTreeSet::new()),
        })
    }

    /// The text file.
    pub fn text(&self) -> &GgufFile {
        &self.files[0]
    }

    /// The mmproj file, if one was given.
    pub fn mmproj(&self) -> Option<&GgufFile> {
        self.files.get(1)
    }

    /// Where the text model's tensors are named (`model.language_model` or `model`).
    pub fn text_prefix(&self) -> &'static str {
        self.text_prefix
    }

    /// The GGUF tensor behind a Hugging Face name.
    pub fn gguf_tensor(&self, hf: &str) -> Option<(&GgufFile, &TensorInfo)> {
        let e = self.index.get(hf)?;
        let f = &self.files[e.file];
        Some((f, &f.tensors()[e.tensor]))
    }

    fn file_list(&self) -> String {
        self.files
            .iter()
            .map(|f| f.path().display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn check_arch(f: &GgufFile, expected: &'static str) -> Result<()> {
    let found = f.architecture()?;
    if found != expected {
        return Err(f.error(GgufError::Architecture {
            found: found.into(),
            expected: if expected == TEXT_ARCH {
                "\"lfm2\" for the model file"
            } else {
                "\"clip\" for the --mmproj file"
            },
        }));
    }
    Ok(())
}

/// The patch embedding `[D, 3, p, p]` (GGUF) back in the Linear layout
/// `[D, p·p·3]` with inputs in (py, px, c) order: `out[o][(py·p + px)·3 + c]
/// = in[o][(c·p + py)·p + px]`, the inverse of the converter's
/// `view(D, p, p, 3).permute(0, 3, 1, 2)`.
fn patch_linear(f: &GgufFile, t: &TensorInfo) -> Result<(Vec<usize>, Owned)> {
    let s = t.shape();
    let [d, c, p, p2] = s[..] else {
        return Err(f.error(GgufError::TensorShape {
            name: t.name.clone(),
            hf: "patch_embedding.weight".into(),
            expected: vec![0, 3, 16, 16],
            got: s,
        }));
    };
    if c != 3 || p != p2 {
        return Err(f.error(GgufError::TensorShape {
            name: t.name.clone(),
            hf: "patch_embedding.weight".into(),
            expected: vec![d, 3, p, p],
            got: s,
        }));
    }
    let shape = vec![d, p * p * c];
    // An unsupported type is reported when the tensor is read.
    let Ok(dtype) = t.dtype() else {
        return Ok((shape, None));
    };
    let (dtype, src): (DType, std::borrow::Cow<'_, [u8]>) = if dtype.is_block() {
        let v = tensor::quant::dequantize_vec(dtype, f.data(t))?;
        (DType::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
    } else {
        (dtype, f.data(t).into())
    };
    let es = dtype.block_bytes();
    let mut out = vec![0u8; src.len()];
    let row = c * p * p;
    for o in 0..d {
        for ci in 0..c {
            for py in 0..p {
                for px in 0..p {
                    let from = (o * row + (ci * p + py) * p + px) * es;
                    let to = (o * row + (py * p + px) * c + ci) * es;
                    out[to..to + es].copy_from_slice(&src[from..from + es]);
                }
            }
        }
    }
    Ok((shape, Some((dtype, out))))
}

impl WeightSource for GgufWeights {
    fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    fn get(&self, name: &str) -> Result<RawTensor<'_>> {
        let e = self
            .index
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: match names::hf_to_gguf(name, self.text_prefix) {
                    Some((g, _, _)) => format!("{g}` (`{name}`)"),
                    None => name.into(),
                },
                files: self.file_list(),
            })?;
        let f = &self.files[e.file];
        let t = &f.tensors()[e.tensor];
        let dtype = t.dtype().map_err(|kind| f.error(kind))?;
        let (dtype, bytes) = match &e.owned {
            Some((dt, b)) => (*dt, b.as_slice()),
            None => (dtype, f.data(t)),
        };
        if let Ok(mut used) = self.used.lock() {
            used.insert(name.to_string());
        }
        Ok(RawTensor {
            dtype,
            shape: &e.shape,
            bytes,
        })
    }

    fn names(&self) -> Vec<&str> {
        self.index.keys().map(String::as_str).collect()
    }

    fn used(&self) -> BTreeSet<String> {
        self.used.lock().map(|u| u.clone()).unwrap_or_default()
    }

    fn describe(&self, name: &str) -> String {
        match self.gguf_tensor(name) {
            Some((f, t)) if t.name != name => {
                format!("{}` (`{name}`) in `{}", t.name, f.file_name())
            }
            Some((f, t)) => format!("{}` in `{}", t.name, f.file_name()),
            None => name.into(),
        }
    }
}
