//! Tensors of the fixtures' safetensors files: [`TensorFile`] (every tensor
//! of one file, by name), [`TensorData`] (dtype, shape, little-endian bytes,
//! converted to f32 or i64 on demand) and [`FixtureDType`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use half::{bf16, f16};
use tensor::DType;

/// Element types that occur in the fixtures. The float ones are the
/// engine's own [`DType`]s; ids, positions, pixels and masks also come as
/// I64, I32, U8 and BOOL, which the engine never holds as tensors and
/// [`DType`] therefore lacks, hence this enum around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixtureDType {
    /// A dtype the engine's tensors have (F32, BF16, F16 in the fixtures).
    Tensor(DType),
    I64,
    I32,
    U8,
    Bool,
}

impl FixtureDType {
    /// The safetensors spelling ("F32", "BF16", ...), also used in the case JSON.
    pub fn name(self) -> String {
        match self {
            FixtureDType::Tensor(d) => d.name().to_ascii_uppercase(),
            FixtureDType::I64 => "I64".into(),
            FixtureDType::I32 => "I32".into(),
            FixtureDType::U8 => "U8".into(),
            FixtureDType::Bool => "BOOL".into(),
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            FixtureDType::Tensor(d) => d.block_bytes(),
            FixtureDType::I64 => 8,
            FixtureDType::I32 => 4,
            FixtureDType::U8 | FixtureDType::Bool => 1,
        }
    }

    fn from_safetensors(d: safetensors::Dtype) -> Result<FixtureDType> {
        use safetensors::Dtype as S;
        Ok(match d {
            S::F32 => FixtureDType::Tensor(DType::F32),
            S::BF16 => FixtureDType::Tensor(DType::BF16),
            S::F16 => FixtureDType::Tensor(DType::F16),
            S::I8 => FixtureDType::Tensor(DType::I8),
            S::I64 => FixtureDType::I64,
            S::I32 => FixtureDType::I32,
            S::U8 => FixtureDType::U8,
            S::BOOL => FixtureDType::Bool,
            other => bail!("unsupported safetensors dtype {other:?}"),
        })
    }
}

impl fmt::Display for FixtureDType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One tensor read from a safetensors file (little-endian bytes, row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorData {
    pub dtype: FixtureDType,
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
        let half_bits = |c: &[u8]| u16::from_le_bytes([c[0], c[1]]);
        Ok(match self.dtype {
            FixtureDType::Tensor(DType::F32) => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            FixtureDType::Tensor(DType::BF16) => b
                .chunks_exact(2)
                .map(|c| bf16::from_bits(half_bits(c)).to_f32())
                .collect(),
            FixtureDType::Tensor(DType::F16) => b
                .chunks_exact(2)
                .map(|c| f16::from_bits(half_bits(c)).to_f32())
                .collect(),
            FixtureDType::Tensor(DType::I8)
            | FixtureDType::I64
            | FixtureDType::I32
            | FixtureDType::U8
            | FixtureDType::Bool => self.to_i64()?.into_iter().map(|v| v as f32).collect(),
            other => bail!("tensor has dtype {other}, which has no f32 conversion here"),
        })
    }

    /// Values as i64 (integer dtypes only).
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        self.check_len()?;
        let b = &self.bytes;
        Ok(match self.dtype {
            FixtureDType::I64 => b
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
            FixtureDType::I32 => b
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
            FixtureDType::Tensor(DType::I8) => b.iter().map(|&v| v as i8 as i64).collect(),
            FixtureDType::U8 | FixtureDType::Bool => b.iter().map(|&v| v as i64).collect(),
            other => bail!("tensor has dtype {other}, not an integer type"),
        })
    }

    /// The raw bytes of a U8 tensor.
    pub fn as_u8(&self) -> Result<&[u8]> {
        self.check_len()?;
        match self.dtype {
            FixtureDType::U8 => Ok(&self.bytes),
            other => bail!("tensor has dtype {other}, not U8"),
        }
    }
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
                dtype: FixtureDType::from_safetensors(view.dtype())
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

#[cfg(test)]
mod unit {
    use super::*;

    fn widened(dtype: DType, bits: u16) -> f32 {
        let t = TensorData {
            dtype: FixtureDType::Tensor(dtype),
            shape: vec![1],
            bytes: bits.to_le_bytes().to_vec(),
        };
        t.to_f32().unwrap()[0]
    }

    #[test]
    fn half_floats_widen_exactly() {
        assert_eq!(widened(DType::BF16, 0x3f80), 1.0);
        assert_eq!(widened(DType::F16, 0x3c00), 1.0);
        assert_eq!(widened(DType::F16, 0x0001), 2f32.powi(-24));
    }
}
