//! The CPU backend: host memory, rayon threads, and kernels for the ISA
//! chosen once at construction (`dispatch.rs`).

mod alloc;
pub mod attention;
pub mod conv;
pub mod dispatch;
pub mod elementwise;
pub mod matmul;
pub mod norm;
mod ops;
pub mod options;
pub mod profile;
pub mod rope;
pub mod simd;
pub mod vision;

use std::sync::Arc;

use half::{bf16, f16};

pub use self::dispatch::{Isa, IsaToken};
use self::matmul::panels::{self, PanelLayout};
use self::matmul::{MatmulArgs, WeightRef, bf16dot, qblock, quant};
pub use self::options::CpuOptions;
use crate::{Backend, DType, HostData, Result, Shape, Tensor, TensorError, op};

/// Host storage of one tensor, owned and naturally aligned.
#[derive(Clone, Debug)]
pub enum CpuStorage {
    F32(Vec<f32>),
    BF16(Vec<bf16>),
    F16(Vec<f16>),
    /// Int8 weight panels and one scale per weight row (`cpu/matmul/quant.rs`);
    /// only ever the `data` of [`CpuStorage::Panels`].
    I8 {
        q: Vec<i8>,
        scale: Vec<f32>,
    },
    /// bf16 weights in k-pair panels (`cpu/matmul/bf16dot.rs`) and the
    /// token that proves their kernels run here; only ever the `data` of
    /// [`CpuStorage::Panels`].
    BF16Pairs {
        w: Vec<u32>,
        tok: dispatch::Avx512Bf16,
    },
    /// A matmul weight `[n, k]` in a block format, row-major as in a GGUF
    /// file (`cpu/matmul/qblock.rs`), Q8_0 / Q4_0 / Q6_K with eight rows
    /// interleaved on the x86 vector tiers (`quant/x8.rs`): uploaded as
    /// such, or quantized at upload by a block [`WeightFormat`].
    Blocks {
        n: usize,
        k: usize,
        data: qblock::BlockData,
    },
    /// A matmul weight `[n, k]` prepacked into this backend's ISA panels
    /// (`cpu/matmul/panels.rs`); `data` is F32, BF16, F16, I8 or BF16Pairs.
    Panels {
        layout: PanelLayout,
        n: usize,
        k: usize,
        data: Box<CpuStorage>,
    },
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::I8 { .. } => DType::I8,
            CpuStorage::BF16Pairs { .. } => DType::BF16,
            CpuStorage::Panels { data, .. } => data.dtype(),
            CpuStorage::Blocks { data, .. } => data.as_ref().dtype(),
        }
    }

    /// The f32 data, or an error naming `op` and `what`.
    pub fn as_f32(&self, op: &'static str, what: &'static str) -> Result<&[f32]> {
        match self {
            CpuStorage::F32(v) => Ok(v),
            other => Err(TensorError::UnsupportedDType {
                op,
                what,
                dtype: other.dtype(),
            }),
        }
    }

    pub fn as_f32_mut(&mut self, op: &'static str, what: &'static str) -> Result<&mut [f32]> {
        match self {
            CpuStorage::F32(v) => Ok(v),
            other => Err(TensorError::UnsupportedDType {
                op,
                what,
                dtype: other.dtype(),
            }),
        }
    }

    /// The raw elements of a plain or panel storage, as kernel weights.
    fn weights(&self) -> WeightRef<'_> {
        match self {
            CpuStorage::F32(v) => WeightRef::F32(v),
            CpuStorage::BF16(v) => WeightRef::BF16(v),
            CpuStorage::F16(v) => WeightRef::F16(v),
            CpuStorage::I8 { q, scale } => WeightRef::I8 { q, scale },
            &CpuStorage::BF16Pairs { ref w, tok } => WeightRef::Bf16Pairs { w, tok },
            CpuStorage::Panels { data, .. } => data.weights(),
            CpuStorage::Blocks { data, .. } => WeightRef::Blocks(data.as_ref()),
        }
    }

    /// Packs a plain row-major `[n, k]` storage into panels of `layout` in
    /// `format` ([`pack_weight`]).
    fn to_panels(
        &self,
        n: usize,
        k: usize,
        layout: PanelLayout,
        format: (WeightFormat, Option<dispatch::Avx512Bf16>),
    ) -> Result<CpuStorage> {
        pack_weight(self.weights(), self.dtype(), n, k, layout, format, false)
    }

    /// Copies little-endian bytes at any alignment into owned, aligned storage
    /// (safetensors offsets inside an mmap are often odd: never cast them).
    fn from_host(data: HostData<'_>) -> Result<CpuStorage> {
        fn copy<T: bytemuck::Pod + Default>(bytes: &[u8]) -> Vec<T> {
            let mut v = vec![T::default(); bytes.len() / size_of::<T>()];
            bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(bytes);
            v
        }
        Ok(match data.dtype {
            DType::F32 => CpuStorage::F32(copy(data.bytes)),
            DType::BF16 => CpuStorage::BF16(copy(data.bytes)),
            DType::F16 => CpuStorage::F16(copy(data.bytes)),
            dtype => return Err(panel_only("upload", dtype)),
        })
    }

    /// Block-format bytes of a `[n, k]` weight as [`CpuStorage::Blocks`],
    /// Q8_0 / Q4_0 / Q6_K interleaved by eight rows if `x8`
    /// ([`qblock::interleaves`]).
    fn blocks(data: HostData<'_>, shape: &Shape, op: &'static str, x8: bool) -> Result<CpuStorage> {
        let &[n, k] = shape.dims() else {
            return Err(TensorError::ShapeMismatch {
                op,
                what: "block-format tensor (must be [n, k])",
                expected: Shape::from([shape.rows(), shape.last()]),
                got: shape.clone(),
            });
        };
        let data = qblock::BlockData::from_bytes(data.dtype, data.bytes)
            .ok_or_else(|| panel_only(op, data.dtype))?;
        let data = if x8 { data.interleaved(n) } else { data };
        Ok(CpuStorage::Blocks { n, k, data })
    }
}

/// Int8 and bf16-pair storage exist only as the data of weight panels (int8
/// needs its row scales, bf16 pairs their panel layout), block formats only
/// as `[n, k]` tables: the error where a plain tensor of them turns up, or
/// panels nest.
fn panel_only(op: &'static str, dtype: DType) -> TensorError {
    TensorError::UnsupportedDType {
        op,
        what: "a plain tensor (int8 and bf16-pair storage exist only as weight panels, block formats as [n, k] tables)",
        dtype,
    }
}

/// `data`'s bytes as weights without a copy, when they are aligned for
/// their dtype.
fn aligned_weights<'a>(data: &HostData<'a>) -> Option<WeightRef<'a>> {
    let b = data.bytes;
    Some(match data.dtype {
        DType::F32 => WeightRef::F32(bytemuck::try_cast_slice(b).ok()?),
        DType::BF16 => WeightRef::BF16(bytemuck::try_cast_slice(b).ok()?),
        DType::F16 => WeightRef::F16(bytemuck::try_cast_slice(b).ok()?),
        _ => return None,
    })
}

/// Packs row-major `[n, k]` weights `w` (of `dtype`) into panels of
/// `layout` in `format`: their own dtype, int8 with row scales, or bf16
/// k-pair panels (which need `bf16`, the backend's AVX512-BF16 token); or
/// quantizes them to a block format (Q8_0 / Q4_0 / Q6_K interleaved by
/// eight rows if `x8`).
fn pack_weight(
    w: WeightRef<'_>,
    dtype: DType,
    n: usize,
    k: usize,
    layout: PanelLayout,
    (format, bf16): (WeightFormat, Option<dispatch::Avx512Bf16>),
    x8: bool,
) -> Result<CpuStorage> {
    fn int8<E: crate::dtype::Element>(
        w: &[E],
        n: usize,
        k: usize,
        layout: PanelLayout,
    ) -> Result<CpuStorage> {
        let rows = quant::quantize_rows(w, n, k).map_err(|row| TensorError::Quantize {
            row,
            reason: "it holds a NaN or an infinity",
        })?;
        Ok(CpuStorage::I8 {
            q: panels::pack(&rows.q, n, k, layout),
            scale: rows.scale,
        })
    }
    let bf16_pairs = |w: &[bf16]| match bf16 {
        Some(tok) => Ok(CpuStorage::BF16Pairs {
            w: bf16dot::pack(w, n, k),
            tok,
        }),
        None => Err(TensorError::WeightFormatUnavailable {
            format: "bf16dot",
            needs: "a backend made with it (with_weight_format)",
            have: "no AVX512-BF16 token".into(),
        }),
    };
    fn to_bf16<E: crate::dtype::Element>(w: &[E]) -> Vec<bf16> {
        w.iter().map(|v| bf16::from_f32(v.to_f32())).collect()
    }
    if let Some(target) = format.block_dtype(k) {
        let rows: Vec<f32> = match w {
            WeightRef::F32(w) => w.to_vec(),
            WeightRef::BF16(w) => w.iter().map(|v| v.to_f32()).collect(),
            WeightRef::F16(w) => w.iter().map(|v| v.to_f32()).collect(),
            _ => Vec::new(),
        };
        if rows.len() == n * k {
            let data = qblock::quantize(target, &rows, k)?;
            let data = if x8 { data.interleaved(n) } else { data };
            return Ok(CpuStorage::Blocks { n, k, data });
        }
    }
    let format = if format.block_dtype(usize::MAX).is_some() {
        WeightFormat::Native
    } else {
        format
    };
    let data = match (w, format) {
        (WeightRef::F32(w), WeightFormat::Int8) => int8(w, n, k, layout)?,
        (WeightRef::BF16(w), WeightFormat::Int8) => int8(w, n, k, layout)?,
        (WeightRef::F16(w), WeightFormat::Int8) => int8(w, n, k, layout)?,
        (WeightRef::F32(w), WeightFormat::Bf16Dot) => bf16_pairs(&to_bf16(w))?,
        (WeightRef::BF16(w), WeightFormat::Bf16Dot) => bf16_pairs(w)?,
        (WeightRef::F16(w), WeightFormat::Bf16Dot) => bf16_pairs(&to_bf16(w))?,
        (WeightRef::F32(w), _) => CpuStorage::F32(panels::pack(w, n, k, layout)),
        (WeightRef::BF16(w), _) => CpuStorage::BF16(panels::pack(w, n, k, layout)),
        (WeightRef::F16(w), _) => CpuStorage::F16(panels::pack(w, n, k, layout)),
        (WeightRef::I8 { .. } | WeightRef::Bf16Pairs { .. } | WeightRef::Blocks(_), _) => {
            return Err(TensorError::UnsupportedDType {
                op: "upload_weight",
                what: "w (int8 and bf16-pair weights are made by the backend, not uploaded)",
                dtype,
            });
        }
    };
    Ok(CpuStorage::Panels {
        layout,
        n,
        k,
        data: Box::new(data),
    })
}

/// How the CPU backend stores matmul weights (see [`CpuBackend::with_weight_format`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    /// The checkpoint's dtype (bf16 for LFM2-VL): exact.
    #[default]
    Native,
    /// Int8 with one scale per weight row (`cpu/matmul/quant.rs`): half the
    /// bytes of bf16, each weight off by up to half a quantization step.
    Int8,
    /// bf16 weights for the AVX512-BF16 dot product (`cpu/matmul/bf16dot.rs`):
    /// up to twice the prefill GEMM's speed; `x` is rounded to bf16 before
    /// every matmul (as llama.cpp's BF16 path and PyTorch's bf16 do).
    Bf16Dot,
    /// ggml's Q8_0 blocks (`cpu/matmul/qblock.rs`), quantized at upload.
    Q8_0,
    /// ggml's Q4_0 blocks, quantized at upload.
    Q4_0,
    /// ggml's Q4_K blocks, quantized at upload (a weight whose rows are
    /// not whole 256-blocks falls back to Q8_0).
    Q4K,
    /// ggml's Q6_K blocks, quantized at upload (the format of the output
    /// head in llama.cpp's Q4_0 and Q4_K_M files; the same fallback).
    Q6K,
}

impl WeightFormat {
    /// `native` / `bf16`, `int8` / `i8` / `q8`, `bf16dot`, `q8_0`, `q4_0`,
    /// `q4_k` or `q6_k`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "native" | "bf16" | "none" => Some(WeightFormat::Native),
            "int8" | "i8" | "q8" => Some(WeightFormat::Int8),
            "bf16dot" | "bf16-dot" => Some(WeightFormat::Bf16Dot),
            "q8_0" | "q8-0" => Some(WeightFormat::Q8_0),
            "q4_0" | "q4-0" => Some(WeightFormat::Q4_0),
            "q4_k" | "q4k" | "q4-k" => Some(WeightFormat::Q4K),
            "q6_k" | "q6k" | "q6-k" => Some(WeightFormat::Q6K),
            _ => None,
        }
    }

    /// The block format this quantizes a weight with rows of `k` to: its
    /// own when `k` is whole blocks of it, else Q8_0 when `k` is whole
    /// 32-blocks; `None` for the other formats (and for rows of neither,
    /// which keep their dtype).
    pub fn block_dtype(self, k: usize) -> Option<DType> {
        crate::quant::block_dtype_for(self.block()?, k)
    }

    /// The block format this names, if it is one.
    pub fn block(self) -> Option<DType> {
        Some(match self {
            WeightFormat::Q8_0 => DType::Q8_0,
            WeightFormat::Q4_0 => DType::Q4_0,
            WeightFormat::Q4K => DType::Q4K,
            WeightFormat::Q6K => DType::Q6K,
            _ => return None,
        })
    }
}

/// The CPU backend. Cheap to clone (the thread pool is shared).
#[derive(Clone)]
pub struct CpuBackend {
    isa: IsaToken,
    /// `None` runs kernels on the calling thread (one thread).
    pool: Option<Arc<rayon::ThreadPool>>,
    threads: usize,
    /// Per-op timing, when enabled with [`CpuBackend::with_profiling`].
    profile: Option<Arc<profile::Profiler>>,
    /// How [`Backend::upload_weight`] stores matmul weights.
    weight_format: WeightFormat,
    /// The AVX512-BF16 token, detected once when the format is bf16dot.
    bf16: Option<dispatch::Avx512Bf16>,
}

impl CpuBackend {
    /// A backend as `options` say (see [`CpuOptions`] for each default).
    /// Errors if the host lacks the tier asked for, or if the weight format
    /// needs what the tier or CPU does not have
    /// ([`CpuBackend::with_weight_format`]).
    pub fn new(options: CpuOptions) -> Result<Self> {
        let be = Self::with(options.isa_or_best(), options.threads_or_all())?
            .with_weight_format(options.weights)?;
        Ok(if options.profiling {
            be.with_profiling()
        } else {
            be
        })
    }

    /// A backend on `isa` with `threads` worker threads. Errors if the host
    /// lacks `isa`.
    pub fn with(isa: Isa, threads: usize) -> Result<Self> {
        let token = IsaToken::new(isa).ok_or_else(|| TensorError::IsaUnavailable {
            requested: isa.name().to_string(),
            reason: "supported by this CPU",
            available: Isa::available()
                .iter()
                .map(|i| i.name())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        let threads = threads.max(1);
        let pool = if threads > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("lfm-cpu-{i}"))
                .build()
                .map_err(|e| TensorError::ThreadPool(e.to_string()))?;
            Some(Arc::new(pool))
        } else {
            None
        };
        tracing::info!(isa = isa.name(), threads, "CPU backend");
        Ok(CpuBackend {
            isa: token,
            pool,
            threads,
            profile: None,
            weight_format: WeightFormat::Native,
            bf16: None,
        })
    }

    pub fn isa(&self) -> Isa {
        self.isa.isa()
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The token kernels dispatch on.
    pub fn isa_token(&self) -> IsaToken {
        self.isa
    }

    /// This backend storing the matmul weights it uploads from now on in
    /// `format` (weights uploaded before keep theirs). [`WeightFormat::Bf16Dot`]
    /// needs the avx512 tier on a CPU with AVX512-BF16.
    pub fn with_weight_format(mut self, format: WeightFormat) -> Result<Self> {
        self.bf16 = None;
        if format == WeightFormat::Bf16Dot {
            let tok = dispatch::Avx512Bf16::try_new();
            if self.isa() != Isa::Avx512 || tok.is_none() {
                return Err(TensorError::WeightFormatUnavailable {
                    format: "bf16dot",
                    needs: "the avx512 tier on a CPU with AVX512-BF16 and AVX512-BW",
                    have: format!(
                        "tier {}, AVX512-BF16 {}",
                        self.isa(),
                        if tok.is_some() { "present" } else { "absent" }
                    ),
                });
            }
            self.bf16 = tok;
        }
        self.weight_format = format;
        Ok(self)
    }

    /// This backend with per-op timing on (see [`CpuBackend::profile`]).
    pub fn with_profiling(mut self) -> Self {
        self.profile = Some(Arc::default());
        self
    }

    /// Time per op since the last call (slowest first); empty unless
    /// profiling is on.
    pub fn profile(&self) -> Vec<profile::OpTime> {
        self.profile.as_ref().map(|p| p.take()).unwrap_or_default()
    }

    fn timed<R>(&self, op: &'static str, f: impl FnOnce() -> R) -> R {
        match &self.profile {
            Some(p) => p.time(op, f),
            None => f(),
        }
    }

    /// The weight panel layout of this backend's matmul kernels.
    pub fn panel_layout(&self) -> PanelLayout {
        matmul::geometry(self.isa).panels()
    }

    /// The worker pool (`None` when running on one thread).
    pub fn pool(&self) -> Option<&rayon::ThreadPool> {
        self.pool.as_deref()
    }
}

impl Backend for CpuBackend {
    type Storage = CpuStorage;

    fn describe(&self) -> String {
        let weights = match self.weight_format {
            WeightFormat::Native => "",
            WeightFormat::Int8 => ", int8 weights",
            WeightFormat::Bf16Dot => ", bf16 dot-product weights (x rounded to bf16)",
            WeightFormat::Q8_0 => ", q8_0 weights",
            WeightFormat::Q4_0 => ", q4_0 weights",
            WeightFormat::Q4K => ", q4_k weights",
            WeightFormat::Q6K => ", q6_k weights",
        };
        format!("cpu ({}, {} threads{weights})", self.isa(), self.threads)
    }

    fn upload(&self, data: HostData<'_>, shape: Shape) -> Result<Tensor<Self>> {
        data.check(&shape)?;
        if data.dtype.is_block() {
            let s = CpuStorage::blocks(data, &shape, "upload", qblock::interleaves(self.isa()))?;
            return Ok(Tensor::from_storage(s, data.dtype, shape));
        }
        Ok(Tensor::from_storage(
            CpuStorage::from_host(data)?,
            data.dtype,
            shape,
        ))
    }

    fn upload_weight(&self, data: HostData<'_>, shape: Shape) -> Result<Tensor<Self>> {
        data.check(&shape)?;
        let &[n, k] = shape.dims() else {
            return Err(TensorError::ShapeMismatch {
                op: "upload_weight",
                what: "weight (must be [n, k])",
                expected: Shape::from([shape.rows(), shape.last()]),
                got: shape,
            });
        };
        if data.dtype.is_block() {
            // Block formats stay as stored, whatever the weight format.
            let x8 = qblock::interleaves(self.isa());
            let s = CpuStorage::blocks(data, &shape, "upload_weight", x8)?;
            return Ok(Tensor::from_storage(s, data.dtype, shape));
        }
        let (layout, format) = (self.panel_layout(), (self.weight_format, self.bf16));
        // Bytes aligned for their dtype (the usual case in a safetensors
        // mmap) are packed in place; others are copied into aligned storage
        // first. The pool's threads quantize and pack in parallel.
        let plain;
        let w = match aligned_weights(&data) {
            Some(w) => w,
            None => {
                plain = CpuStorage::from_host(data)?;
                plain.weights()
            }
        };
        let x8 = qblock::interleaves(self.isa());
        let pack = || pack_weight(w, data.dtype, n, k, layout, format, x8);
        let packed = match self.pool() {
            Some(pool) => pool.install(pack)?,
            None => pack()?,
        };
        let dtype = packed.dtype();
        Ok(Tensor::from_storage(packed, dtype, shape))
    }

    fn zeros(&self, dtype: DType, shape: Shape) -> Result<Tensor<Self>> {
        let n = shape.elem_count();
        let s = match dtype {
            DType::F32 => CpuStorage::F32(vec![0.0; n]),
            DType::BF16 => CpuStorage::BF16(vec![bf16::ZERO; n]),
            DType::F16 => CpuStorage::F16(vec![f16::ZERO; n]),
            other => return Err(panel_only("zeros", other)),
        };
        Ok(Tensor::from_storage(s, dtype, shape))
    }

    fn download_f32_into(&self, t: &Tensor<Self>, out: &mut Vec<f32>) -> Result<()> {
        match t.storage() {
            CpuStorage::F32(v) => {
                out.clear();
                out.extend_from_slice(v);
            }
            _ => *out = self.download_f32(t)?,
        }
        Ok(())
    }

    fn download_f32(&self, t: &Tensor<Self>) -> Result<Vec<f32>> {
        Ok(match t.storage() {
            CpuStorage::F32(v) => v.clone(),
            CpuStorage::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
            CpuStorage::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            plain @ (CpuStorage::I8 { .. } | CpuStorage::BF16Pairs { .. }) => {
                return Err(panel_only("download_f32", plain.dtype()));
            }
            &CpuStorage::Blocks { n, k, ref data } => {
                let mut out = vec![0.0; n * k];
                if k > 0 {
                    for (j, row) in out.chunks_exact_mut(k).enumerate() {
                        data.as_ref().dequantize_row(j, k, row);
                    }
                }
                out
            }
            &CpuStorage::Panels {
                layout,
                n,
                k,
                ref data,
            } => match data.weights() {
                WeightRef::F32(w) => panels::unpack_f32(w, n, k, layout),
                WeightRef::BF16(w) => panels::unpack_f32(w, n, k, layout),
                WeightRef::F16(w) => panels::unpack_f32(w, n, k, layout),
                WeightRef::I8 { q, scale } => quant::dequantize(q, scale, n, k, layout),
                WeightRef::Bf16Pairs { w, .. } => bf16dot::unpack(w, n, k),
                WeightRef::Blocks(_) => return Err(panel_only("download_f32", t.dtype())),
            },
        })
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn enter<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match self.pool() {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    fn matmul(&self, op: op::Matmul<'_, Self>) -> Result<()> {
        const OP: &str = op::Matmul::<CpuBackend>::NAME;
        let (m, n, k) = op.check()?;
        let op::Matmul { x, w, bias, out } = op;
        let layout = self.panel_layout();
        // Weights from `upload_weight` are already panels; anything else is
        // packed here, on every call (the slow path).
        let repacked;
        let w = match w.storage() {
            s @ CpuStorage::Panels { layout: l, .. } if *l == layout => s,
            s @ CpuStorage::Blocks { .. } => s,
            CpuStorage::Panels { .. } => {
                return Err(TensorError::UnsupportedDType {
                    op: OP,
                    what: "w (packed for another ISA)",
                    dtype: w.dtype(),
                });
            }
            plain => {
                repacked = plain.to_panels(n, k, layout, (WeightFormat::Native, None))?;
                &repacked
            }
        };
        let args = MatmulArgs {
            x: x.storage().as_f32(OP, "x")?,
            w: w.weights(),
            bias: bias.map(|b| b.storage().as_f32(OP, "bias")).transpose()?,
            m,
            n,
            k,
        };
        let y = out.storage_mut().as_f32_mut(OP, "out")?;
        let name = if m == 1 { "matmul.gemv" } else { "matmul.gemm" };
        self.timed(name, || matmul::matmul(self.isa, self.pool(), &args, y));
        Ok(())
    }

    fn rms_norm(&self, op: op::RmsNorm<'_, Self>) -> Result<()> {
        self.timed(op::RmsNorm::<Self>::NAME, || self.op_rms_norm(op))
    }

    fn rope(&self, op: op::Rope<'_, Self>) -> Result<()> {
        self.timed(op::Rope::<Self>::NAME, || self.op_rope(op))
    }

    fn qkv_norm_rope(&self, op: op::QkvNormRope<'_, Self>) -> Result<()> {
        self.timed(op::QkvNormRope::<Self>::NAME, || self.op_qkv_norm_rope(op))
    }

    fn short_conv(&self, op: op::ShortConv<'_, Self>) -> Result<()> {
        self.timed(op::ShortConv::<Self>::NAME, || self.op_short_conv(op))
    }

    fn attention(&self, op: op::Attention<'_, Self>) -> Result<()> {
        self.timed(op::Attention::<Self>::NAME, || self.op_attention(op))
    }

    fn silu_mul(&self, op: op::SiluMul<'_, Self>) -> Result<()> {
        self.timed(op::SiluMul::<Self>::NAME, || self.op_silu_mul(op))
    }

    fn add_assign(&self, op: op::AddAssign<'_, Self>) -> Result<()> {
        self.timed(op::AddAssign::<Self>::NAME, || self.op_add_assign(op))
    }

    fn gather_rows(&self, op: op::GatherRows<'_, Self>) -> Result<()> {
        self.timed(op::GatherRows::<Self>::NAME, || self.op_gather_rows(op))
    }

    fn copy_rows(&self, op: op::CopyRows<'_, Self>) -> Result<()> {
        self.timed(op::CopyRows::<Self>::NAME, || self.op_copy_rows(op))
    }

    fn slice_rows(&self, op: op::SliceRows<'_, Self>) -> Result<()> {
        self.timed(op::SliceRows::<Self>::NAME, || self.op_slice_rows(op))
    }

    fn swiglu(&self, op: op::Swiglu<'_, Self>) -> Result<()> {
        self.timed(op::Swiglu::<Self>::NAME, || self.op_swiglu(op))
    }

    fn copy_cols(&self, op: op::CopyCols<'_, Self>) -> Result<()> {
        self.timed(op::CopyCols::<Self>::NAME, || self.op_copy_cols(op))
    }

    fn layer_norm(&self, op: op::LayerNorm<'_, Self>) -> Result<()> {
        self.timed(op::LayerNorm::<Self>::NAME, || self.op_layer_norm(op))
    }

    fn gelu(&self, op: op::Gelu<'_, Self>) -> Result<()> {
        self.timed(op::Gelu::<Self>::NAME, || self.op_gelu(op))
    }

    fn pixel_unshuffle(&self, op: op::PixelUnshuffle<'_, Self>) -> Result<()> {
        self.timed(op::PixelUnshuffle::<Self>::NAME, || {
            self.op_pixel_unshuffle(op)
        })
    }
}
