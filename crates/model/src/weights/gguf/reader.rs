//! The GGUF container, parsed from bytes: header (magic, version 2 or 3,
//! tensor and metadata counts), metadata, tensor table, the aligned data
//! section. Little-endian only. Every count, length and offset is checked
//! against the bytes left with checked arithmetic before anything is
//! allocated, so a corrupt file gives a [`GgufError`], never a panic or a
//! huge allocation.

use tensor::DType;

use super::error::GgufError;
use super::meta::{MetaValue, Metadata};
use super::types::GgmlType;

/// The data section's alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Most dimensions a ggml tensor has.
pub const MAX_DIMS: u32 = 4;
/// Deepest nesting of metadata arrays accepted.
const MAX_ARRAY_DEPTH: usize = 4;
/// Most elements of one metadata array (vocabularies and merge lists are
/// well under a million): a parsed value is larger than its bytes, so the
/// file size alone does not bound the memory.
pub const MAX_ARRAY_LEN: u64 = 1 << 22;

/// One entry of the tensor table.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml's `ne`: the innermost (fastest) dimension first.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    /// Size of the data in bytes.
    pub nbytes: u64,
}

impl TensorInfo {
    /// The row-major shape (outermost first): `dims` reversed.
    pub fn shape(&self) -> Vec<usize> {
        // Each dim fits usize: their product was checked to fit the file.
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    /// Element count.
    pub fn elems(&self) -> u64 {
        self.dims.iter().product()
    }

    /// The engine's dtype, or [`GgufError::UnsupportedType`] naming the tensor.
    pub fn dtype(&self) -> Result<DType, GgufError> {
        self.ty.dtype().ok_or_else(|| GgufError::UnsupportedType {
            name: self.name.clone(),
            type_name: self.ty.name.into(),
        })
    }
}

/// Everything before the data section.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub version: u32,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_start: u64,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.b.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.pos as u64,
                need: n,
                len: self.b.len() as u64,
            });
        }
        let n = n as usize; // ≤ remaining, which is a usize
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let len = self.u64(&|| format!("{} (length)", what()))?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::BadUtf8 { what: what() })
    }

    /// Checks that `count` items of at least `min_bytes` each can fit.
    fn bound(
        &self,
        what: &dyn Fn() -> String,
        count: u64,
        min_bytes: u64,
    ) -> Result<(), GgufError> {
        let max = self.remaining() / min_bytes.max(1);
        if count > max {
            return Err(GgufError::CountTooLarge {
                what: what(),
                count,
                remaining: self.remaining(),
                max,
            });
        }
        Ok(())
    }
}

/// Smallest encoding of one value of GGUF type `ty` (for count bounds).
fn min_value_bytes(ty: u32) -> u64 {
    match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => 8,  // string: its length
        9 => 12, // array: type + count
        _ => 8,  // 64-bit scalars
    }
}

fn read_value(
    c: &mut Cursor<'_>,
    key: &str,
    ty: u32,
    depth: usize,
) -> Result<MetaValue, GgufError> {
    let what = || format!("metadata `{key}`");
    Ok(match ty {
        0 => MetaValue::U8(c.array::<1>(&what)?[0]),
        1 => MetaValue::I8(i8::from_le_bytes(c.array(&what)?)),
        2 => MetaValue::U16(u16::from_le_bytes(c.array(&what)?)),
        3 => MetaValue::I16(i16::from_le_bytes(c.array(&what)?)),
        4 => MetaValue::U32(u32::from_le_bytes(c.array(&what)?)),
        5 => MetaValue::I32(i32::from_le_bytes(c.array(&what)?)),
        6 => MetaValue::F32(f32::from_le_bytes(c.array(&what)?)),
        7 => MetaValue::Bool(c.array::<1>(&what)?[0] != 0),
        8 => MetaValue::String(c.string(&what)?),
        9 => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(GgufError::NestedTooDeep {
                    key: key.into(),
                    max: MAX_ARRAY_DEPTH,
                });
            }
            let elem = c.u32(&|| format!("metadata `{key}` (array type)"))?;
            let count = c.u64(&|| format!("metadata `{key}` (array count)"))?;
            if elem > 12 {
                return Err(GgufError::BadValueType {
                    key: key.into(),
                    ty: elem,
                });
            }
            c.bound(
                &|| format!("metadata `{key}` array"),
                count,
                min_value_bytes(elem),
            )?;
            if count > MAX_ARRAY_LEN {
                return Err(GgufError::CountTooLarge {
                    what: format!("metadata `{key}` array"),
                    count,
                    remaining: c.remaining(),
                    max: MAX_ARRAY_LEN,
                });
            }
            let mut v = Vec::with_capacity(count as usize);
            for _ in 0..count {
                v.push(read_value(c, key, elem, depth + 1)?);
            }
            MetaValue::Array(v)
        }
        10 => MetaValue::U64(u64::from_le_bytes(c.array(&what)?)),
        11 => MetaValue::I64(i64::from_le_bytes(c.array(&what)?)),
        12 => MetaValue::F64(f64::from_le_bytes(c.array(&what)?)),
        other => {
            return Err(GgufError::BadValueType {
                key: key.into(),
                ty: other,
            });
        }
    })
}

fn read_tensor_info(c: &mut Cursor<'_>, i: u64) -> Result<TensorInfo, GgufError> {
    let name = c.string(&|| format!("tensor info {i} (name)"))?;
    let at = |part: &'static str| {
        let name = name.clone();
        move || format!("tensor info `{name}` ({part})")
    };
    let n_dims = c.u32(&at("n_dims"))?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(GgufError::TooManyDims { name, n_dims });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(c.u64(&at("dims"))?);
    }
    let type_id = c.u32(&at("type"))?;
    let offset = c.u64(&at("offset"))?;
    let ty = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownType {
        name: name.clone(),
        type_id,
    })?;
    let elems = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| usize::try_from(n).is_ok())
        .ok_or_else(|| GgufError::DimsOverflow {
            name: name.clone(),
            dims: dims.clone(),
        })?;
    if dims[0] % ty.block_elems != 0 {
        return Err(GgufError::PartialBlock {
            name,
            ne0: dims[0],
            type_name: ty.name.into(),
            block: ty.block_elems,
        });
    }
    // elems / block_elems · block_bytes ≤ elems · 4.5, and elems < 2^64:
    // computed in u128 to be safe, then checked to fit.
    let nbytes = u64::try_from(elems as u128 / ty.block_elems as u128 * ty.block_bytes as u128)
        .map_err(|_| GgufError::DimsOverflow {
            name: name.clone(),
            dims: dims.clone(),
        })?;
    Ok(TensorInfo {
        name,
        dims,
        ty,
        offset,
        nbytes,
    })
}

/// Parses a whole GGUF file held in `bytes` and checks its tensor table
/// against them.
pub fn parse(bytes: &[u8]) -> Result<Header, GgufError> {
    let mut c = Cursor { b: bytes, pos: 0 };
    let magic: [u8; 4] = c.array(&|| "the magic".into())?;
    if &magic != b"GGUF" {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = c.u32(&|| "the version".into())?;
    if version > 0xFFFF && (1..=3).contains(&version.swap_bytes()) {
        return Err(GgufError::BigEndian { raw: version });
    }
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion { version });
    }
    let tensor_count = c.u64(&|| "the tensor count".into())?;
    let kv_count = c.u64(&|| "the metadata count".into())?;
    // A key-value pair takes at least 13 bytes (key length, type, one byte);
    // a tensor info at least 32 (name length, n_dims, one dim, type, offset).
    c.bound(&|| "metadata".into(), kv_count, 13)?;
    let mut metadata = Metadata::default();
    for i in 0..kv_count {
        let key = c.string(&|| format!("metadata key {i}"))?;
        let ty = c.u32(&|| format!("metadata `{key}` (type)"))?;
        let value = read_value(&mut c, &key, ty, 0)?;
        metadata.insert(key, value)?;
    }
    c.bound(&|| "tensor".into(), tensor_count, 32)?;
    let mut tensors = Vec::with_capacity(tensor_count.min(1 << 16) as usize);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..tensor_count {
        let t = read_tensor_info(&mut c, i)?;
        if !seen.insert(t.name.clone()) {
            return Err(GgufError::DuplicateTensor { name: t.name });
        }
        tensors.push(t);
    }
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(v) => v.as_u64().ok_or_else(|| GgufError::KeyType {
            key: "general.alignment".into(),
            expected: "an unsigned integer",
            found: v.type_name(),
        })?,
    };
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(GgufError::BadAlignment { alignment });
    }
    let len = bytes.len() as u64;
    // pos ≤ len < 2^63, alignment ≤ 2^63: no overflow in u128.
    let data_start = (c.pos as u128).next_multiple_of(alignment as u128);
    let data_start =
        u64::try_from(data_start).map_err(|_| GgufError::BadAlignment { alignment })?;
    for t in &tensors {
        if t.offset % alignment != 0 {
            return Err(GgufError::MisalignedOffset {
                name: t.name.clone(),
                offset: t.offset,
                alignment,
            });
        }
        let start = data_start.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.nbytes));
        match (start, end) {
            (Some(_), Some(end)) if end <= len => {}
            _ => {
                return Err(GgufError::DataOutOfBounds {
                    name: t.name.clone(),
                    start: start.unwrap_or(u64::MAX),
                    end: end.unwrap_or(u64::MAX),
                    len,
                });
            }
        }
    }
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().filter(|t| t.nbytes > 0).collect();
    by_offset.sort_by_key(|t| t.offset);
    for w in by_offset.windows(2) {
        // In bounds above, so the sum does not overflow.
        if w[0].offset + w[0].nbytes > w[1].offset {
            return Err(GgufError::Overlap {
                first: w[0].name.clone(),
                second: w[1].name.clone(),
            });
        }
    }
    Ok(Header {
        version,
        metadata,
        tensors,
        alignment,
        data_start,
    })
}
