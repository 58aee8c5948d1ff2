//! GGUF metadata values and typed look-ups that name the key on error.

use std::collections::BTreeMap;

use super::error::GgufError;

/// One metadata value (GGUF value types 0–12).
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<MetaValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl MetaValue {
    /// The GGUF name of the value's type.
    pub fn type_name(&self) -> String {
        match self {
            MetaValue::U8(_) => "uint8".into(),
            MetaValue::I8(_) => "int8".into(),
            MetaValue::U16(_) => "uint16".into(),
            MetaValue::I16(_) => "int16".into(),
            MetaValue::U32(_) => "uint32".into(),
            MetaValue::I32(_) => "int32".into(),
            MetaValue::F32(_) => "float32".into(),
            MetaValue::Bool(_) => "bool".into(),
            MetaValue::String(_) => "string".into(),
            MetaValue::Array(a) => match a.first() {
                Some(v) => format!("array of {} {}", a.len(), v.type_name()),
                None => "empty array".into(),
            },
            MetaValue::U64(_) => "uint64".into(),
            MetaValue::I64(_) => "int64".into(),
            MetaValue::F64(_) => "float64".into(),
        }
    }

    /// An integer of any width, if non-negative.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v.into()),
            MetaValue::U16(v) => Some(v.into()),
            MetaValue::U32(v) => Some(v.into()),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// An integer of any width as i64 (u64 above `i64::MAX` is `None`).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            MetaValue::U64(v) => i64::try_from(v).ok(),
            MetaValue::I64(v) => Some(v),
            _ => self
                .as_u64()
                .and_then(|v| i64::try_from(v).ok())
                .or(match *self {
                    MetaValue::I8(v) => Some(v.into()),
                    MetaValue::I16(v) => Some(v.into()),
                    MetaValue::I32(v) => Some(v.into()),
                    _ => None,
                }),
        }
    }

    /// A float (either width) or an integer.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A short rendering for `lfm2vl info` (arrays summarised).
    pub fn summary(&self) -> String {
        match self {
            MetaValue::String(s) if s.len() > 60 => {
                let cut = (0..=60).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                format!("{:?}… ({} bytes)", &s[..cut], s.len())
            }
            MetaValue::String(s) => format!("{s:?}"),
            MetaValue::Array(a) if a.len() > 8 => format!("[{}]", self.type_name()),
            MetaValue::Array(a) => format!(
                "[{}]",
                a.iter().map(|v| v.summary()).collect::<Vec<_>>().join(", ")
            ),
            MetaValue::F32(v) => format!("{v}"),
            MetaValue::F64(v) => format!("{v}"),
            MetaValue::Bool(v) => format!("{v}"),
            other => other.as_i64().map_or_else(String::new, |v| v.to_string()),
        }
    }
}

/// The metadata of one file, in file order, with typed getters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, MetaValue)>,
    index: BTreeMap<String, usize>,
}

impl Metadata {
    /// Adds an entry; a repeated key is an error.
    pub(crate) fn insert(&mut self, key: String, value: MetaValue) -> Result<(), GgufError> {
        if self.index.contains_key(&key) {
            return Err(GgufError::DuplicateKey { key });
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push((key, value));
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// Entries in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &MetaValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn need(&self, key: &str) -> Result<&MetaValue, GgufError> {
        self.get(key)
            .ok_or_else(|| GgufError::MissingKey { key: key.into() })
    }

    fn wrong(key: &str, expected: &'static str, v: &MetaValue) -> GgufError {
        GgufError::KeyType {
            key: key.into(),
            expected,
            found: v.type_name(),
        }
    }

    /// A required non-negative integer that fits `usize`.
    pub fn usize(&self, key: &str) -> Result<usize, GgufError> {
        let v = self.need(key)?;
        v.as_u64()
            .and_then(|x| usize::try_from(x).ok())
            .ok_or_else(|| Self::wrong(key, "a non-negative integer", v))
    }

    /// An optional non-negative integer (present with another type is an error).
    pub fn usize_opt(&self, key: &str) -> Result<Option<usize>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.usize(key).map(Some),
        }
    }

    /// An optional number.
    pub fn f64_opt(&self, key: &str) -> Result<Option<f64>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| Self::wrong(key, "a number", v)),
        }
    }

    /// A required string.
    pub fn str(&self, key: &str) -> Result<&str, GgufError> {
        let v = self.need(key)?;
        v.as_str().ok_or_else(|| Self::wrong(key, "a string", v))
    }

    /// An optional string.
    pub fn str_opt(&self, key: &str) -> Result<Option<&str>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.str(key).map(Some),
        }
    }

    /// An optional bool.
    pub fn bool_opt(&self, key: &str) -> Result<Option<bool>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| Self::wrong(key, "a bool", v)),
        }
    }

    /// A required array.
    pub fn array(&self, key: &str) -> Result<&[MetaValue], GgufError> {
        let v = self.need(key)?;
        v.as_array().ok_or_else(|| Self::wrong(key, "an array", v))
    }

    /// An optional array of numbers (e.g. `clip.vision.image_mean`).
    pub fn f64_array_opt(&self, key: &str) -> Result<Option<Vec<f64>>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => {
                let a = v
                    .as_array()
                    .ok_or_else(|| Self::wrong(key, "an array of numbers", v))?;
                a.iter()
                    .map(|x| {
                        x.as_f64()
                            .ok_or_else(|| Self::wrong(key, "an array of numbers", v))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            }
        }
    }

    /// An integer or an array of integers (one per layer), as a per-layer list
    /// of `n` entries.
    pub fn per_layer(&self, key: &str, n: usize) -> Result<Vec<usize>, GgufError> {
        let v = self.need(key)?;
        let bad = || Self::wrong(key, "an integer or an array of them", v);
        match v {
            MetaValue::Array(a) => {
                if a.len() != n {
                    return Err(GgufError::BadValue {
                        key: key.into(),
                        detail: format!("{} entries for {n} layers", a.len()),
                    });
                }
                a.iter()
                    .map(|x| {
                        x.as_u64()
                            .and_then(|x| usize::try_from(x).ok())
                            .ok_or_else(bad)
                    })
                    .collect()
            }
            other => {
                let x = other
                    .as_u64()
                    .and_then(|x| usize::try_from(x).ok())
                    .ok_or_else(bad)?;
                Ok(vec![x; n])
            }
        }
    }
}
