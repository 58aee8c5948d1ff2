//! Element types. Weights come as bf16 (every LFM2-VL safetensors
//! checkpoint), f16 or f32, or in ggml's block formats (Q8_0, Q4_0, Q4_K,
//! Q6_K: GGUF files, or quantized at load; `crate::quant`); activations are
//! f32. `I8` is the CPU backend's int8 weight storage (one f32 scale per
//! weight row, `cpu/matmul/quant.rs`); no checkpoint or activation has it.
//! `DType` is `#[non_exhaustive]` and sized through [`DType::block_bytes`] /
//! [`DType::block_elems`]: a block format stores `block_elems` weights of
//! one row in `block_bytes` bytes.

use half::{bf16, f16};

/// Storage element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    F32,
    BF16,
    F16,
    I8,
    /// ggml Q8_0: 32 weights, an f16 scale and 32 i8 (34 bytes).
    Q8_0,
    /// ggml Q4_0: 32 weights, an f16 scale and 32 nibbles (18 bytes).
    Q4_0,
    /// ggml Q4_K: 256 weights, two f16 super-scales, 8 six-bit scales and
    /// mins, 256 nibbles (144 bytes).
    Q4K,
    /// ggml Q6_K: 256 weights, 16 i8 scales, 256 six-bit values, an f16
    /// super-scale (210 bytes).
    Q6K,
}

impl DType {
    /// Elements per storage block (1 for plain types).
    pub const fn block_elems(self) -> usize {
        match self {
            DType::Q8_0 | DType::Q4_0 => 32,
            DType::Q4K | DType::Q6K => 256,
            _ => 1,
        }
    }

    /// Bytes per storage block.
    pub const fn block_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::BF16 | DType::F16 => 2,
            DType::I8 => 1,
            DType::Q8_0 => 34,
            DType::Q4_0 => 18,
            DType::Q4K => 144,
            DType::Q6K => 210,
        }
    }

    /// Whether this is one of the block formats (more than one element per block).
    pub const fn is_block(self) -> bool {
        self.block_elems() > 1
    }

    /// Bytes needed for `n` elements (`n` must be a multiple of the block size).
    pub const fn bytes_for(self, n: usize) -> usize {
        n / self.block_elems() * self.block_bytes()
    }

    /// Lower-case name as used in safetensors headers and benchmark output.
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::BF16 => "bf16",
            DType::F16 => "f16",
            DType::I8 => "i8",
            DType::Q8_0 => "q8_0",
            DType::Q4_0 => "q4_0",
            DType::Q4K => "q4_k",
            DType::Q6K => "q6_k",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A host element type the kernels are generic over (f32, bf16, f16, i8).
///
/// Widening to f32 is exact for all four; this is the only conversion the
/// kernels perform on weights (an i8 weight's row scale is applied to the
/// matmul's output, not here).
pub trait Element: Copy + Send + Sync + bytemuck::Pod + 'static {
    const DTYPE: DType;
    fn to_f32(self) -> f32;
    fn from_f32(v: f32) -> Self;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Element for bf16 {
    const DTYPE: DType = DType::BF16;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        // Exact: bf16 is the top half of an f32.
        f32::from_bits((self.to_bits() as u32) << 16)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        // Round to nearest even; NaN stays NaN.
        bf16::from_f32(v)
    }
}

impl Element for f16 {
    const DTYPE: DType = DType::F16;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
}

impl Element for i8 {
    const DTYPE: DType = DType::I8;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
    /// Rounds to nearest and saturates to ±127 (the symmetric range the
    /// quantizer uses); NaN becomes 0.
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v.round().clamp(-127.0, 127.0) as i8
    }
}
