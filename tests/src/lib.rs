//! Test support shared by the workspace's integration tests: loading the
//! committed transformers parity fixtures (`tests/fixtures/`, see its
//! README.md) and comparing tensors.
//!
//! Everything here reads committed files only (no Python, no torch), so it runs
//! in CI. Loaders return `anyhow` errors with the offending path; [`compare`]
//! returns a typed [`Mismatch`] whose `Display` says what went wrong where.
//!
//! ```no_run
//! use tests::{Case, Tolerance, compare};
//! let case = Case::load("single_image")?;
//! let want = case.f32("vision.crop0.last_hidden_state")?;
//! let got = want.clone(); // ... the engine's output
//! let report = compare("vision.crop0.last_hidden_state", &got, &want, Tolerance::new(1e-5, 1e-4))?;
//! println!("{report}");
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

/// `<image>` placeholder id (spec §7.1).
pub const IMAGE_TOKEN_ID: i64 = 396;
/// `<|im_end|>`: eos.
pub const EOS_TOKEN_ID: i64 = 7;
/// `<|img_thumbnail|>`.
pub const IMG_THUMBNAIL_ID: i64 = 497;
/// `<|image_start|>`.
pub const IMAGE_START_ID: i64 = 498;
/// `<|image_end|>`.
pub const IMAGE_END_ID: i64 = 499;

/// Id of `<|img_row_{row}_col_{col}|>` (1-based row = tile row, col = tile column).
pub fn img_row_col_id(row: usize, col: usize) -> i64 {
    397 + 10 * (row as i64 - 1) + (col as i64 - 1)
}

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

// ---------------------------------------------------------------------------
// Tensors
// ---------------------------------------------------------------------------

/// Element types that occur in the fixtures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    BF16,
    F16,
    I64,
    I32,
    U8,
    Bool,
}

impl DType {
    /// The safetensors spelling ("F32", "BF16", ...), also used in the case JSON.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::BF16 => "BF16",
            DType::F16 => "F16",
            DType::I64 => "I64",
            DType::I32 => "I32",
            DType::U8 => "U8",
            DType::Bool => "BOOL",
        }
    }

    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::BF16 | DType::F16 => 2,
            DType::I64 => 8,
            DType::U8 | DType::Bool => 1,
        }
    }

    fn from_safetensors(d: safetensors::Dtype) -> Result<DType> {
        use safetensors::Dtype as S;
        Ok(match d {
            S::F32 => DType::F32,
            S::BF16 => DType::BF16,
            S::F16 => DType::F16,
            S::I64 => DType::I64,
            S::I32 => DType::I32,
            S::U8 => DType::U8,
            S::BOOL => DType::Bool,
            other => bail!("unsupported safetensors dtype {other:?}"),
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor read from a safetensors file (little-endian bytes, row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorData {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl TensorData {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    fn check_len(&self) -> Result<()> {
        let want = self.numel() * self.dtype.size();
        if self.bytes.len() != want {
            bail!(
                "tensor {:?} {:?} holds {} bytes, expected {want}",
                self.dtype,
                self.shape,
                self.bytes.len()
            );
        }
        Ok(())
    }

    /// Values as f32: F32 as is, BF16/F16 widened exactly, integers converted.
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        self.check_len()?;
        let b = &self.bytes;
        Ok(match self.dtype {
            DType::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::BF16 => b
                .chunks_exact(2)
                .map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            DType::F16 => b
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            DType::I64 | DType::I32 | DType::U8 | DType::Bool => {
                self.to_i64()?.into_iter().map(|v| v as f32).collect()
            }
        })
    }

    /// Values as i64 (integer dtypes only).
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        self.check_len()?;
        let b = &self.bytes;
        Ok(match self.dtype {
            DType::I64 => b
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
            DType::I32 => b
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
            DType::U8 | DType::Bool => b.iter().map(|&v| v as i64).collect(),
            other => bail!("tensor has dtype {other}, not an integer type"),
        })
    }

    /// The raw bytes of a U8 tensor.
    pub fn as_u8(&self) -> Result<&[u8]> {
        self.check_len()?;
        match self.dtype {
            DType::U8 => Ok(&self.bytes),
            other => bail!("tensor has dtype {other}, not U8"),
        }
    }
}

/// Exact bf16 → f32 widening.
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// Exact IEEE half → f32 widening.
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exp = ((bits >> 10) & 0x1f) as u32;
    let man = (bits & 0x3ff) as u32;
    let out = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // subnormal: normalise
            let mut e = 127 - 15 + 1;
            let mut m = m;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((m & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(out)
}

/// All tensors of one safetensors file, by name.
#[derive(Debug, Clone)]
pub struct TensorFile {
    pub path: PathBuf,
    pub tensors: BTreeMap<String, TensorData>,
}

impl TensorFile {
    pub fn load(path: &Path) -> Result<TensorFile> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| anyhow!("parsing {}: {e}", path.display()))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let t = TensorData {
                dtype: DType::from_safetensors(view.dtype())
                    .with_context(|| format!("{} in {}", name, path.display()))?,
                shape: view.shape().to_vec(),
                bytes: view.data().to_vec(),
            };
            t.check_len()
                .with_context(|| format!("{} in {}", name, path.display()))?;
            tensors.insert(name, t);
        }
        Ok(TensorFile {
            path: path.to_path_buf(),
            tensors,
        })
    }

    pub fn get(&self, name: &str) -> Result<&TensorData> {
        self.tensors
            .get(name)
            .ok_or_else(|| anyhow!("no tensor {name:?} in {}", self.path.display()))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn f32(&self, name: &str) -> Result<Vec<f32>> {
        self.get(name)?
            .to_f32()
            .with_context(|| format!("{name} in {}", self.path.display()))
    }

    pub fn i64(&self, name: &str) -> Result<Vec<i64>> {
        self.get(name)?
            .to_i64()
            .with_context(|| format!("{name} in {}", self.path.display()))
    }

    pub fn shape(&self, name: &str) -> Result<&[usize]> {
        Ok(&self.get(name)?.shape)
    }
}

// ---------------------------------------------------------------------------
// Fixture cases
// ---------------------------------------------------------------------------

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
/// `preprocess/<setting>.json` + `.safetensors` (settings "lfm2-vl-450m", "lfm2-vl-1.6b").
#[derive(Debug, Clone)]
pub struct Preprocess {
    pub setting: String,
    pub meta: Value,
    pub tensors: TensorFile,
}

impl Preprocess {
    pub const SETTINGS: [&'static str; 2] = ["lfm2-vl-1.6b", "lfm2-vl-450m"];

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

// ---------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------

/// Element-wise tolerance: an element passes when `|got - want| <= abs + rel * |want|`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub abs: f32,
    pub rel: f32,
}

impl Tolerance {
    pub const fn new(abs: f32, rel: f32) -> Tolerance {
        Tolerance { abs, rel }
    }

    pub const fn abs(abs: f32) -> Tolerance {
        Tolerance { abs, rel: 0.0 }
    }

    pub const fn exact() -> Tolerance {
        Tolerance { abs: 0.0, rel: 0.0 }
    }

    fn allows(&self, got: f32, want: f32) -> bool {
        if got == want {
            return true; // also equal infinities
        }
        let diff = (got - want).abs();
        diff <= self.abs + self.rel * want.abs() // false for NaN
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "abs {:e} + rel {:e}", self.abs, self.rel)
    }
}

/// Statistics of a comparison (returned on success, embedded in a failure).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub name: String,
    pub len: usize,
    /// max |got - want| and where.
    pub max_abs: f32,
    pub max_abs_index: usize,
    /// max |got - want| / |want| over elements with want != 0, and where.
    pub max_rel: f32,
    pub max_rel_index: usize,
    pub tol: Tolerance,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} values, max abs err {:.3e} at [{}], max rel err {:.3e} at [{}] (tolerance {})",
            self.name,
            self.len,
            self.max_abs,
            self.max_abs_index,
            self.max_rel,
            self.max_rel_index,
            self.tol
        )
    }
}

/// Why a comparison failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Mismatch {
    /// The slices have different lengths.
    Length {
        name: String,
        got: usize,
        want: usize,
    },
    /// Some elements are outside the tolerance (or NaN).
    OutOfTolerance {
        report: Report,
        /// The first failing flat index, with its values.
        first_bad_index: usize,
        got: f32,
        want: f32,
        /// How many elements fail.
        num_bad: usize,
    },
    /// Exact (integer) comparison failed.
    NotEqual {
        name: String,
        first_bad_index: usize,
        got: String,
        want: String,
        num_bad: usize,
        len: usize,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Length { name, got, want } => {
                write!(f, "{name}: length mismatch: got {got} values, want {want}")
            }
            Mismatch::OutOfTolerance {
                report,
                first_bad_index,
                got,
                want,
                num_bad,
            } => write!(
                f,
                "{}: {num_bad} of {} values out of tolerance ({}); first bad index {first_bad_index}: got {got:e}, want {want:e} (diff {:.3e}); max abs err {:.3e} at [{}], max rel err {:.3e} at [{}]",
                report.name,
                report.len,
                report.tol,
                (got - want).abs(),
                report.max_abs,
                report.max_abs_index,
                report.max_rel,
                report.max_rel_index
            ),
            Mismatch::NotEqual {
                name,
                first_bad_index,
                got,
                want,
                num_bad,
                len,
            } => write!(
                f,
                "{name}: {num_bad} of {len} values differ; first at index {first_bad_index}: got {got}, want {want}"
            ),
        }
    }
}

impl std::error::Error for Mismatch {}

/// Compares `got` with the reference `want` element-wise under `tol`.
///
/// NaN in `got` (or `want`) always fails. Returns the error statistics either way.
pub fn compare(name: &str, got: &[f32], want: &[f32], tol: Tolerance) -> Result<Report, Mismatch> {
    if got.len() != want.len() {
        return Err(Mismatch::Length {
            name: name.to_string(),
            got: got.len(),
            want: want.len(),
        });
    }
    let mut report = Report {
        name: name.to_string(),
        len: got.len(),
        max_abs: 0.0,
        max_abs_index: 0,
        max_rel: 0.0,
        max_rel_index: 0,
        tol,
    };
    let mut first_bad: Option<usize> = None;
    let mut num_bad = 0usize;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let diff = if g == w { 0.0 } else { (g - w).abs() };
        let diff = if diff.is_nan() { f32::INFINITY } else { diff };
        if diff > report.max_abs {
            report.max_abs = diff;
            report.max_abs_index = i;
        }
        if w != 0.0 {
            let rel = diff / w.abs();
            if rel > report.max_rel {
                report.max_rel = rel;
                report.max_rel_index = i;
            }
        }
        if !tol.allows(g, w) {
            num_bad += 1;
            first_bad.get_or_insert(i);
        }
    }
    match first_bad {
        None => Ok(report),
        Some(i) => Err(Mismatch::OutOfTolerance {
            report,
            first_bad_index: i,
            got: got[i],
            want: want[i],
            num_bad,
        }),
    }
}

/// Exact comparison for ids, pixels and shapes.
pub fn compare_exact<T: PartialEq + fmt::Debug>(
    name: &str,
    got: &[T],
    want: &[T],
) -> Result<(), Mismatch> {
    if got.len() != want.len() {
        return Err(Mismatch::Length {
            name: name.to_string(),
            got: got.len(),
            want: want.len(),
        });
    }
    let mut first: Option<usize> = None;
    let mut num_bad = 0;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            num_bad += 1;
            first.get_or_insert(i);
        }
    }
    match first {
        None => Ok(()),
        Some(i) => Err(Mismatch::NotEqual {
            name: name.to_string(),
            first_bad_index: i,
            got: format!("{:?}", got[i]),
            want: format!("{:?}", want[i]),
            num_bad,
            len: got.len(),
        }),
    }
}

/// Row-major multi-index of a flat index (for messages about shaped tensors).
pub fn unravel(mut index: usize, shape: &[usize]) -> Vec<usize> {
    let mut out = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        if n == 0 {
            return out;
        }
        out[d] = index % n;
        index /= n;
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn compare_passes_and_reports() {
        let r = compare(
            "x",
            &[1.0, 2.0, 3.0],
            &[1.0, 2.001, 3.0],
            Tolerance::abs(1e-2),
        )
        .unwrap();
        assert_eq!(r.max_abs_index, 1);
        assert!((r.max_abs - 0.001).abs() < 1e-6);
        assert!(r.to_string().contains("max abs err"));
    }

    #[test]
    fn compare_fails_with_first_bad_index() {
        let e = compare(
            "y",
            &[0.0, 5.0, f32::NAN, 1.0],
            &[0.0, 1.0, 1.0, 1.0],
            Tolerance::new(1e-3, 1e-3),
        )
        .unwrap_err();
        match &e {
            Mismatch::OutOfTolerance {
                first_bad_index,
                num_bad,
                ..
            } => {
                assert_eq!(*first_bad_index, 1);
                assert_eq!(*num_bad, 2);
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = e.to_string();
        assert!(msg.contains("first bad index 1"), "{msg}");
        assert!(compare("z", &[1.0], &[1.0, 2.0], Tolerance::exact()).is_err());
    }

    #[test]
    fn exact_and_helpers() {
        assert!(compare_exact("ids", &[1i64, 2, 3], &[1, 2, 3]).is_ok());
        let e = compare_exact("ids", &[1i64, 9, 3], &[1, 2, 3]).unwrap_err();
        assert!(e.to_string().contains("first at index 1"));
        assert_eq!(unravel(7, &[2, 3, 2]), vec![1, 0, 1]);
        assert_eq!(img_row_col_id(1, 1), 397);
        assert_eq!(img_row_col_id(10, 10), 496);
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
