//! A small GGUF writer for tests: synthetic files for the reader's error
//! paths (with the byte positions of every field, so a test can corrupt one)
//! and files converted from the tiny safetensors checkpoints
//! ([`crate::gguf_convert`]).

use model::weights::gguf::MetaValue;

/// Where the fields of a written file are, for corrupting them.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub version_at: usize,
    pub tensor_count_at: usize,
    pub kv_count_at: usize,
    /// Per metadata entry: where its value type (u32) is.
    pub kv_type_at: Vec<usize>,
    /// Per tensor: where its n_dims (u32), first dim (u64), type (u32) and
    /// offset (u64) are.
    pub n_dims_at: Vec<usize>,
    pub dims_at: Vec<usize>,
    pub type_at: Vec<usize>,
    pub offset_at: Vec<usize>,
    /// End of the tensor table, start of the data section.
    pub infos_end: usize,
    pub data_start: usize,
}

struct Tensor {
    name: String,
    ne: Vec<u64>,
    type_id: u32,
    data: Vec<u8>,
}

/// Builds a GGUF file in memory.
pub struct GgufWriter {
    pub version: u32,
    pub alignment: usize,
    kvs: Vec<(String, MetaValue)>,
    tensors: Vec<Tensor>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter {
            version: 3,
            alignment: 32,
            kvs: Vec::new(),
            tensors: Vec::new(),
        }
    }
}

fn type_id(v: &MetaValue) -> u32 {
    match v {
        MetaValue::U8(_) => 0,
        MetaValue::I8(_) => 1,
        MetaValue::U16(_) => 2,
        MetaValue::I16(_) => 3,
        MetaValue::U32(_) => 4,
        MetaValue::I32(_) => 5,
        MetaValue::F32(_) => 6,
        MetaValue::Bool(_) => 7,
        MetaValue::String(_) => 8,
        MetaValue::Array(_) => 9,
        MetaValue::U64(_) => 10,
        MetaValue::I64(_) => 11,
        MetaValue::F64(_) => 12,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &MetaValue) {
    match v {
        MetaValue::U8(x) => out.push(*x),
        MetaValue::I8(x) => out.extend(x.to_le_bytes()),
        MetaValue::U16(x) => out.extend(x.to_le_bytes()),
        MetaValue::I16(x) => out.extend(x.to_le_bytes()),
        MetaValue::U32(x) => out.extend(x.to_le_bytes()),
        MetaValue::I32(x) => out.extend(x.to_le_bytes()),
        MetaValue::F32(x) => out.extend(x.to_le_bytes()),
        MetaValue::Bool(x) => out.push(u8::from(*x)),
        MetaValue::String(s) => put_str(out, s),
        MetaValue::Array(a) => {
            out.extend(a.first().map_or(4, type_id).to_le_bytes());
            out.extend((a.len() as u64).to_le_bytes());
            for x in a {
                put_value(out, x);
            }
        }
        MetaValue::U64(x) => out.extend(x.to_le_bytes()),
        MetaValue::I64(x) => out.extend(x.to_le_bytes()),
        MetaValue::F64(x) => out.extend(x.to_le_bytes()),
    }
}

/// Shorthands for metadata values.
pub fn s(v: &str) -> MetaValue {
    MetaValue::String(v.into())
}
pub fn u32v(v: u32) -> MetaValue {
    MetaValue::U32(v)
}
pub fn f32v(v: f32) -> MetaValue {
    MetaValue::F32(v)
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn kv(&mut self, key: &str, v: MetaValue) -> &mut Self {
        self.kvs.push((key.into(), v));
        self
    }

    /// A tensor with ggml dims `ne` (innermost first), ggml type id and bytes.
    pub fn tensor(&mut self, name: &str, ne: &[u64], type_id: u32, data: Vec<u8>) -> &mut Self {
        self.tensors.push(Tensor {
            name: name.into(),
            ne: ne.to_vec(),
            type_id,
            data,
        });
        self
    }

    /// An f32 tensor of row-major `shape` (written as ggml dims, reversed).
    pub fn f32_tensor(&mut self, name: &str, shape: &[usize], v: &[f32]) -> &mut Self {
        let ne: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.tensor(name, &ne, 0, data)
    }

    /// The file's bytes and where each field went.
    pub fn to_bytes(&self) -> (Vec<u8>, Layout) {
        let mut out = b"GGUF".to_vec();
        let mut l = Layout {
            version_at: out.len(),
            ..Layout::default()
        };
        out.extend(self.version.to_le_bytes());
        l.tensor_count_at = out.len();
        out.extend((self.tensors.len() as u64).to_le_bytes());
        l.kv_count_at = out.len();
        out.extend((self.kvs.len() as u64).to_le_bytes());
        for (k, v) in &self.kvs {
            put_str(&mut out, k);
            l.kv_type_at.push(out.len());
            out.extend(type_id(v).to_le_bytes());
            put_value(&mut out, v);
        }
        let mut offset = 0usize;
        let mut offsets = Vec::new();
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            l.n_dims_at.push(out.len());
            out.extend((t.ne.len() as u32).to_le_bytes());
            l.dims_at.push(out.len());
            for d in &t.ne {
                out.extend(d.to_le_bytes());
            }
            l.type_at.push(out.len());
            out.extend(t.type_id.to_le_bytes());
            l.offset_at.push(out.len());
            out.extend((offset as u64).to_le_bytes());
            offsets.push(offset);
            offset = (offset + t.data.len()).next_multiple_of(self.alignment);
        }
        l.infos_end = out.len();
        out.resize(out.len().next_multiple_of(self.alignment), 0);
        l.data_start = out.len();
        for (t, &o) in self.tensors.iter().zip(&offsets) {
            out.resize(l.data_start + o, 0);
            out.extend(&t.data);
        }
        (out, l)
    }

    /// Writes the file to `path`.
    pub fn write(&self, path: &std::path::Path) -> std::io::Result<Layout> {
        let (bytes, l) = self.to_bytes();
        std::fs::write(path, bytes)?;
        Ok(l)
    }
}
