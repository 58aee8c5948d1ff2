//! Block-quantized weights in ggml's formats (Q8_0, Q4_0, Q4_K, Q6_K):
//! their layouts ([`blocks`]), dequantization to f32 (the reference every
//! kernel is tested against, and the path of backends without kernels for
//! them), and the quantizers of the formats made at load ([`quantize`]).
//! Backend-neutral: the CPU kernels are in `cpu/matmul/qblock/`.

pub mod blocks;
pub mod quantize;
pub mod x8;

use bytemuck::Pod;

use crate::{DType, Result, TensorError};

/// Decodes `bytes` (elements of `dtype`, any alignment, whole blocks) into
/// `out`, which must hold exactly their element count.
pub fn dequantize(dtype: DType, bytes: &[u8], out: &mut [f32]) -> Result<()> {
    let (be, bb) = (dtype.block_elems(), dtype.block_bytes());
    if !bytes.len().is_multiple_of(bb) || bytes.len() / bb * be != out.len() {
        return Err(TensorError::ByteLength {
            dtype,
            shape: crate::Shape::from([out.len()]),
            expected: dtype.bytes_for(out.len()),
            got: bytes.len(),
        });
    }
    fn each<T: Pod>(bytes: &[u8], out: &mut [f32], f: impl Fn(&T, &mut [f32])) {
        let (bb, be) = (
            size_of::<T>(),
            out.len() / (bytes.len() / size_of::<T>()).max(1),
        );
        for (b, o) in bytes.chunks_exact(bb).zip(out.chunks_exact_mut(be)) {
            f(&bytemuck::pod_read_unaligned(b), o);
        }
    }
    match dtype {
        DType::F32 => each::<f32>(bytes, out, |&v, o| o[0] = v),
        DType::BF16 => each::<half::bf16>(bytes, out, |v, o| o[0] = v.to_f32()),
        DType::F16 => each::<half::f16>(bytes, out, |v, o| o[0] = v.to_f32()),
        DType::Q8_0 => each(bytes, out, blocks::dequantize_q8_0),
        DType::Q4_0 => each(bytes, out, blocks::dequantize_q4_0),
        DType::Q4K => each(bytes, out, blocks::dequantize_q4k),
        DType::Q6K => each(bytes, out, blocks::dequantize_q6k),
        DType::I8 => {
            return Err(TensorError::UnsupportedDType {
                op: "dequantize",
                what: "bytes (int8 weights carry row scales)",
                dtype,
            });
        }
    }
    Ok(())
}

/// `dequantize` into a new vector.
pub fn dequantize_vec(dtype: DType, bytes: &[u8]) -> Result<Vec<f32>> {
    let n = bytes.len() / dtype.block_bytes().max(1) * dtype.block_elems();
    let mut out = vec![0.0; n];
    dequantize(dtype, bytes, &mut out)?;
    Ok(out)
}

/// The block format a weight with rows of `k` is quantized to when
/// `target` is asked for: `target` where `k` is whole blocks of it, else
/// Q8_0 where `k` is whole 32-blocks, else `None` (the weight keeps its
/// dtype). The CPU's and wgpu's quantize-at-load share this rule.
pub fn block_dtype_for(target: DType, k: usize) -> Option<DType> {
    [target, DType::Q8_0]
        .into_iter()
        .find(|d| d.is_block() && k.is_multiple_of(d.block_elems()))
}

/// Quantizes row-major `w[n, k]` into `dtype`'s block bytes, rows in
/// parallel on the current rayon pool. `k` must be whole blocks.
pub fn quantize_rows(dtype: DType, w: &[f32], k: usize) -> Result<Vec<u8>> {
    use rayon::prelude::*;
    let rows: Vec<Vec<u8>> = w
        .par_chunks(k.max(1))
        .map(|r| quantize(dtype, r))
        .collect::<Result<_>>()?;
    Ok(rows.concat())
}

/// Quantizes `x` (a whole number of blocks) into `dtype`'s block bytes.
pub fn quantize(dtype: DType, x: &[f32]) -> Result<Vec<u8>> {
    let be = dtype.block_elems();
    let unsupported = || TensorError::UnsupportedDType {
        op: "quantize",
        what: "the target (q8_0, q4_0, q4_k or q6_k)",
        dtype,
    };
    if !matches!(dtype, DType::Q8_0 | DType::Q4_0 | DType::Q4K | DType::Q6K) {
        return Err(unsupported());
    }
    if !x.len().is_multiple_of(be) {
        return Err(TensorError::ByteLength {
            dtype,
            shape: crate::Shape::from([x.len()]),
            expected: dtype.bytes_for(x.len().next_multiple_of(be)),
            got: 0,
        });
    }
    let mut out = Vec::with_capacity(dtype.bytes_for(x.len()));
    for c in x.chunks_exact(be) {
        match dtype {
            DType::Q8_0 => out.extend_from_slice(bytemuck::bytes_of(&quantize::quantize_q8_0(c))),
            DType::Q4_0 => out.extend_from_slice(bytemuck::bytes_of(&quantize::quantize_q4_0(c))),
            DType::Q4K => out.extend_from_slice(bytemuck::bytes_of(&quantize::quantize_q4k(c))),
            _ => out.extend_from_slice(bytemuck::bytes_of(&quantize::quantize_q6k(c))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
