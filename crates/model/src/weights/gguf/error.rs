//! What can be wrong with a GGUF file. [`crate::ModelError::Gguf`] pairs
//! one of these with the file's path.

/// One problem found in a GGUF file (header, metadata, tensor table, data,
/// or what the model needs from them).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GgufError {
    #[error("not a GGUF file (magic {found:?}, expected \"GGUF\")")]
    BadMagic { found: [u8; 4] },
    #[error("GGUF version {version} is not supported (versions 2 and 3 are)")]
    UnsupportedVersion { version: u32 },
    #[error("big-endian GGUF (version field {raw:#010x}) is not supported")]
    BigEndian { raw: u32 },
    #[error(
        "truncated while reading {what}: needs {need} byte(s) at offset {offset}, the file has {len}"
    )]
    Truncated {
        what: String,
        offset: u64,
        need: u64,
        len: u64,
    },
    #[error("{what} count {count} cannot fit in the {remaining} byte(s) left (at most {max})")]
    CountTooLarge {
        what: String,
        count: u64,
        remaining: u64,
        max: u64,
    },
    #[error("metadata `{key}`: unknown value type {ty}")]
    BadValueType { key: String, ty: u32 },
    #[error("metadata `{key}`: arrays nested deeper than {max} levels")]
    NestedTooDeep { key: String, max: usize },
    #[error("{what} is not valid UTF-8")]
    BadUtf8 { what: String },
    #[error("metadata key `{key}` appears twice")]
    DuplicateKey { key: String },
    #[error("tensor `{name}` appears twice")]
    DuplicateTensor { name: String },
    #[error("`general.alignment` = {alignment} is not a power of two ≥ 1")]
    BadAlignment { alignment: u64 },
    #[error("tensor `{name}` has {n_dims} dimensions (at most 4)")]
    TooManyDims { name: String, n_dims: u32 },
    #[error("tensor `{name}`: dimensions {dims:?} overflow")]
    DimsOverflow { name: String, dims: Vec<u64> },
    #[error("tensor `{name}` has an unknown ggml type id {type_id}")]
    UnknownType { name: String, type_id: u32 },
    #[error(
        "unsupported tensor type {type_name} ({name}): this engine reads f32, f16, bf16, q8_0, q4_0, q4_k and q6_k"
    )]
    UnsupportedType { name: String, type_name: String },
    #[error("tensor `{name}`: rows of {ne0} elements are not whole {type_name} blocks of {block}")]
    PartialBlock {
        name: String,
        ne0: u64,
        type_name: String,
        block: u64,
    },
    #[error("tensor `{name}`: data offset {offset} is not a multiple of the alignment {alignment}")]
    MisalignedOffset {
        name: String,
        offset: u64,
        alignment: u64,
    },
    #[error("tensor `{name}`: data [{start}, {end}) lies outside the file of {len} bytes")]
    DataOutOfBounds {
        name: String,
        start: u64,
        end: u64,
        len: u64,
    },
    #[error("tensors `{first}` and `{second}` overlap in the data section")]
    Overlap { first: String, second: String },
    #[error("metadata `{key}` is missing")]
    MissingKey { key: String },
    #[error("metadata `{key}`: expected {expected}, found {found}")]
    KeyType {
        key: String,
        expected: &'static str,
        found: String,
    },
    #[error("metadata `{key}`: {detail}")]
    BadValue { key: String, detail: String },
    #[error("architecture {found:?} is not supported here (expected {expected})")]
    Architecture {
        found: String,
        expected: &'static str,
    },
    #[error("tensor `{name}` (as `{hf}`) has shape {got:?}, expected {expected:?}")]
    TensorShape {
        name: String,
        hf: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
}
