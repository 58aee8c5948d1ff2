//! The committed fixtures on disk: their paths, JSON helpers, the
//! stage-by-stage reference [`Case`]s (with their [`CropInfo`]) and the
//! preprocessing-only [`Preprocess`] references.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

use crate::TensorFile;

/// `tests/fixtures/`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A path inside `tests/fixtures/` from the '/'-separated relative form used in the JSON files.
pub fn fixture_path(rel: &str) -> PathBuf {
    let mut p = fixtures_dir();
    for part in rel.split('/') {
        p.push(part);
    }
    p
}

/// Reads and parses a JSON file.
pub fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// One stage-by-stage reference case: `cases/<name>.json` + `cases/<name>.safetensors`.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// The case JSON (sorted keys): messages, prompt_text, images, crops, generation, tensors, ...
    pub meta: Value,
    pub tensors: TensorFile,
}

/// Crop metadata of a case (`crops[k]` in the JSON), in crop order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CropInfo {
    /// Index of the image (in prompt order) this crop belongs to.
    pub image: usize,
    /// "tile", "thumbnail" or "single".
    pub kind: String,
    /// 0-based tile row / column (0 for thumbnails and single crops).
    pub row: usize,
    pub col: usize,
    /// (h_patches, w_patches).
    pub spatial_shape: (usize, usize),
    /// Image tokens this crop contributes: (h/2)*(w/2).
    pub num_tokens: usize,
}

impl Case {
    /// Names of all committed cases (sorted).
    pub fn names() -> Result<Vec<String>> {
        let dir = fixtures_dir().join("cases");
        let mut names = Vec::new();
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) == Some("json")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                names.push(stem.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    pub fn load(name: &str) -> Result<Case> {
        let dir = fixtures_dir().join("cases");
        let meta = read_json(&dir.join(format!("{name}.json")))?;
        let tensors = TensorFile::load(&dir.join(format!("{name}.safetensors")))?;
        Ok(Case {
            name: name.to_string(),
            meta,
            tensors,
        })
    }

    /// The checkpoint folder this case was computed with (`models/<tiny>`).
    pub fn model_dir(&self) -> Result<PathBuf> {
        Ok(fixture_path(json_str(&self.meta, "model")?))
    }

    pub fn f32(&self, name: &str) -> Result<Vec<f32>> {
        self.tensors.f32(name)
    }

    pub fn i64(&self, name: &str) -> Result<Vec<i64>> {
        self.tensors.i64(name)
    }

    pub fn input_ids(&self) -> Result<Vec<i64>> {
        self.i64("input_ids")
    }

    pub fn seq_len(&self) -> Result<usize> {
        json_usize(&self.meta, "seq_len")
    }

    /// The case's crops as views into its `pixel_values` `pv` (none when
    /// `pv` is empty).
    pub fn crop_patches<'a>(&self, pv: &'a [f32]) -> Result<Vec<model::CropPatches<'a>>> {
        if pv.is_empty() {
            return Ok(Vec::new());
        }
        let shape = self.tensors.shape("pixel_values")?;
        let (mp, pd) = (shape[1], shape[2]);
        Ok(self
            .crops()?
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let (h, w) = c.spatial_shape;
                model::CropPatches {
                    patches: &pv[k * mp * pd..(k * mp + h * w) * pd],
                    h,
                    w,
                }
            })
            .collect())
    }

    pub fn crops(&self) -> Result<Vec<CropInfo>> {
        let crops = self
            .meta
            .get("crops")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("case {}: no crops array", self.name))?;
        crops
            .iter()
            .map(|c| {
                let ss = c
                    .get("spatial_shape")
                    .and_then(Value::as_array)
                    .ok_or_else(|| anyhow!("crop without spatial_shape"))?;
                let dim = |i: usize| {
                    ss.get(i)
                        .and_then(Value::as_u64)
                        .map(|v| v as usize)
                        .ok_or_else(|| anyhow!("bad spatial_shape"))
                };
                Ok(CropInfo {
                    image: json_usize(c, "image")?,
                    kind: json_str(c, "kind")?.to_string(),
                    row: json_usize(c, "row")?,
                    col: json_usize(c, "col")?,
                    spatial_shape: (dim(0)?, dim(1)?),
                    num_tokens: json_usize(c, "num_tokens")?,
                })
            })
            .collect()
    }

    /// Greedy ids generated by `generate()`.
    pub fn generated_ids(&self) -> Result<Vec<i64>> {
        self.i64("generate.ids")
    }
}

/// Preprocessing-only references with the real processor knobs:
/// `preprocess/<setting>.json` + `.safetensors` (settings "lfm2-vl-450m", "lfm2-vl-1.6b",
/// "lfm2.5-vl-450m": the 450M's knobs with 32 minimum image tokens).
#[derive(Debug, Clone)]
pub struct Preprocess {
    pub setting: String,
    pub meta: Value,
    pub tensors: TensorFile,
}

impl Preprocess {
    pub const SETTINGS: [&'static str; 3] = ["lfm2-vl-1.6b", "lfm2-vl-450m", "lfm2.5-vl-450m"];

    pub fn load(setting: &str) -> Result<Preprocess> {
        let dir = fixtures_dir().join("preprocess");
        let meta = read_json(&dir.join(format!("{setting}.json")))?;
        let tensors = TensorFile::load(&dir.join(format!("{setting}.safetensors")))?;
        Ok(Preprocess {
            setting: setting.to_string(),
            meta,
            tensors,
        })
    }

    /// The per-image entries (`images` in the JSON).
    pub fn images(&self) -> Result<&Vec<Value>> {
        self.meta
            .get("images")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("{}: no images array", self.setting))
    }
}

/// `obj[key]` as a string.
pub fn json_str<'a>(obj: &'a Value, key: &str) -> Result<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("missing string field {key:?}"))
}

/// `obj[key]` as a non-negative integer.
pub fn json_usize(obj: &Value, key: &str) -> Result<usize> {
    obj.get(key)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .ok_or_else(|| anyhow!("missing integer field {key:?}"))
}

/// Lower-case hex SHA-256 of `bytes` (crop hashes and MANIFEST.json use it).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
