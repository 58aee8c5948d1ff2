//! `impl Backend for WgpuBackend`: storage (upload, zeros, download, sync)
//! and each op forwarded to the module that records it ([`super::matmul`],
//! [`super::attention`], [`super::ops`]), the fused decode GEMVs falling
//! back to their two parts where they do not apply.

use super::{WgpuBackend, WgpuStorage, attention, matmul, ops};
use crate::{Backend, DType, HostData, Result, Shape, Tensor, TensorError, op};

impl Backend for WgpuBackend {
    type Storage = WgpuStorage;

    fn describe(&self) -> String {
        let dev = &self.gpu.dev;
        match dev.coop_fragment {
            Some(s) => format!(
                "wgpu ({}; tensor-core GEMM{} on {s}x{s}x{s} f16 fragments)",
                dev.describe(),
                if dev.coop_attention {
                    " and attention"
                } else {
                    ""
                }
            ),
            None => format!("wgpu ({})", dev.describe()),
        }
    }

    fn upload(&self, data: HostData<'_>, shape: Shape) -> Result<Tensor<Self>> {
        data.check(&shape)?;
        if data.dtype == DType::I8 {
            return Err(ops::no_i8("upload"));
        }
        // Block formats keep the file's bytes: the matmul and gather
        // shaders decode them (shaders/blocks/).
        let bytes = data.bytes;
        let buffer = self.alloc(bytes.len() as u64, "tensor", true)?;
        {
            let mut view = buffer
                .get_mapped_range_mut(..)
                .map_err(|e| TensorError::Gpu {
                    what: "upload",
                    detail: e.to_string(),
                })?;
            // Any alignment: this is a byte copy. The padding is zeroed by wgpu.
            view.slice(..bytes.len()).copy_from_slice(bytes);
        }
        buffer.unmap();
        let storage = WgpuStorage {
            buffer,
            bytes: bytes.len() as u64,
        };
        Ok(Tensor::from_storage(storage, data.dtype, shape))
    }

    /// Float weights are quantized to the block format of
    /// [`crate::wgpu::WgpuOptions::quantize`] where it is set (on the host,
    /// as the CPU's quantize-at-load); anything else is uploaded as is.
    fn upload_weight(&self, data: HostData<'_>, shape: Shape) -> Result<Tensor<Self>> {
        data.check(&shape)?;
        let k = shape.last();
        let target = self
            .options()
            .quantize
            .and_then(|t| crate::quant::block_dtype_for(t, k));
        // Widened only when quantized: other weights go up as they are.
        let quantize = target
            .filter(|_| shape.rank() == 2)
            .and_then(|t| Some((t, data.float_values()?)));
        match quantize {
            Some((target, w)) => {
                let q = crate::quant::quantize_rows(target, &w, k)?;
                self.upload(HostData::new(target, &q), shape)
            }
            None => self.upload(data, shape),
        }
    }

    fn zeros(&self, dtype: DType, shape: Shape) -> Result<Tensor<Self>> {
        if dtype == DType::I8 {
            return Err(ops::no_i8("zeros"));
        }
        if dtype.is_block() {
            return Err(TensorError::UnsupportedDType {
                op: "zeros",
                what: "a tensor on wgpu (block formats are weights, uploaded)",
                dtype,
            });
        }
        let bytes = dtype.bytes_for(shape.elem_count()) as u64;
        // wgpu zero-initialises every buffer before first use.
        let buffer = self.alloc(bytes, "tensor", false)?;
        Ok(Tensor::from_storage(
            WgpuStorage { buffer, bytes },
            dtype,
            shape,
        ))
    }

    fn download_f32(&self, t: &Tensor<Self>) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.download_f32_into(t, &mut out)?;
        Ok(out)
    }

    fn download_f32_into(&self, t: &Tensor<Self>, out: &mut Vec<f32>) -> Result<()> {
        let n = t.elem_count();
        let dtype = t.dtype();
        out.clear();
        if dtype.is_block() {
            let len = t.storage().byte_len() as usize;
            let mut bytes = Vec::with_capacity(len);
            self.read_back(t.storage(), |raw| bytes.extend_from_slice(&raw[..len]))?;
            *out = crate::quant::dequantize_vec(dtype, &bytes)?;
            return Ok(());
        }
        out.reserve(n);
        self.read_back(t.storage(), |raw| match dtype {
            DType::F32 => out.extend(
                raw.chunks_exact(4)
                    .take(n)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            ),
            DType::BF16 => out.extend(
                raw.chunks_exact(2)
                    .take(n)
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
            ),
            DType::F16 => out.extend(
                raw.chunks_exact(2)
                    .take(n)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
            ),
            DType::I8 => out.extend(raw.iter().take(n).map(|&b| b as i8 as f32)),
            // Block formats are decoded above.
            _ => {}
        })
    }

    fn sync(&self) -> Result<()> {
        self.flush()?;
        self.wait()
    }

    fn matmul(&self, op: op::Matmul<'_, Self>) -> Result<()> {
        matmul::matmul(self, op)
    }

    fn rms_norm(&self, op: op::RmsNorm<'_, Self>) -> Result<()> {
        ops::rms_norm(self, op)
    }

    fn add_rms_norm(&self, op: op::AddRmsNorm<'_, Self>) -> Result<()> {
        ops::add_rms_norm(self, op)
    }

    fn rope(&self, op: op::Rope<'_, Self>) -> Result<()> {
        ops::rope(self, op)
    }

    fn qkv_norm_rope(&self, op: op::QkvNormRope<'_, Self>) -> Result<()> {
        ops::qkv_norm_rope(self, op)
    }

    fn short_conv(&self, op: op::ShortConv<'_, Self>) -> Result<()> {
        ops::short_conv(self, op)
    }

    fn attention(&self, op: op::Attention<'_, Self>) -> Result<()> {
        attention::attention(self, op)
    }

    fn silu_mul(&self, op: op::SiluMul<'_, Self>) -> Result<()> {
        ops::silu_mul(self, op)
    }

    fn add_assign(&self, op: op::AddAssign<'_, Self>) -> Result<()> {
        ops::add_assign(self, op)
    }

    fn gather_rows(&self, op: op::GatherRows<'_, Self>) -> Result<()> {
        ops::gather_rows(self, op)
    }

    fn copy_rows(&self, op: op::CopyRows<'_, Self>) -> Result<()> {
        ops::copy_rows(self, op)
    }

    fn layer_norm(&self, op: op::LayerNorm<'_, Self>) -> Result<()> {
        ops::layer_norm(self, op)
    }

    fn gelu(&self, op: op::Gelu<'_, Self>) -> Result<()> {
        ops::gelu(self, op)
    }

    fn pixel_unshuffle(&self, op: op::PixelUnshuffle<'_, Self>) -> Result<()> {
        ops::pixel_unshuffle(self, op)
    }

    fn slice_rows(&self, op: op::SliceRows<'_, Self>) -> Result<()> {
        ops::slice_rows(self, op)
    }

    fn swiglu(&self, op: op::Swiglu<'_, Self>) -> Result<()> {
        ops::swiglu(self, op)
    }

    fn matmul_short_conv(&self, op: op::MatmulShortConv<'_, Self>) -> Result<()> {
        if matmul::gemv_fused::gemv_short_conv(self, &op)? {
            return Ok(());
        }
        op.unfused(self)
    }

    fn matmul_swiglu(&self, op: op::MatmulSwiglu<'_, Self>) -> Result<()> {
        if matmul::gemv_fused::gemv_swiglu(self, &op)? {
            return Ok(());
        }
        op.unfused(self)
    }

    fn copy_cols(&self, op: op::CopyCols<'_, Self>) -> Result<()> {
        ops::copy_cols(self, op)
    }
}
