//! The CPU backend: host memory, rayon threads, and kernels for the ISA
//! chosen once at construction (`dispatch.rs`).

pub mod attention;
pub mod conv;
pub mod dispatch;
pub mod elementwise;
pub mod matmul;
pub mod norm;
mod ops;
pub mod profile;
pub mod rope;
pub mod simd;
pub mod vision;

use std::sync::Arc;

use half::{bf16, f16};

pub use self::dispatch::{Isa, IsaToken};
use self::matmul::panels::{self, PanelLayout};
use self::matmul::{MatmulArgs, WeightRef};
use crate::backend::matmul_dims;
use crate::{Backend, DType, Gelu, HostData, Result, Shape, Tensor, TensorError};

/// Host storage of one tensor, owned and naturally aligned.
#[derive(Clone, Debug)]
pub enum CpuStorage {
    F32(Vec<f32>),
    BF16(Vec<bf16>),
    F16(Vec<f16>),
    /// A matmul weight `[n, k]` prepacked into this backend's ISA panels
    /// (`cpu/matmul/panels.rs`); `data` is F32, BF16 or F16.
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
            CpuStorage::Panels { data, .. } => data.dtype(),
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
            CpuStorage::Panels { data, .. } => data.weights(),
        }
    }

    /// Packs a plain row-major `[n, k]` storage into panels of `layout`.
    fn to_panels(&self, n: usize, k: usize, layout: PanelLayout) -> CpuStorage {
        let data = match self.weights() {
            WeightRef::F32(w) => CpuStorage::F32(panels::pack(w, n, k, layout)),
            WeightRef::BF16(w) => CpuStorage::BF16(panels::pack(w, n, k, layout)),
            WeightRef::F16(w) => CpuStorage::F16(panels::pack(w, n, k, layout)),
        };
        CpuStorage::Panels {
            layout,
            n,
            k,
            data: Box::new(data),
        }
    }

    /// Copies little-endian bytes at any alignment into owned, aligned storage
    /// (safetensors offsets inside an mmap are often odd: never cast them).
    fn from_host(data: HostData<'_>) -> CpuStorage {
        fn copy<T: bytemuck::Pod + Default>(bytes: &[u8]) -> Vec<T> {
            let mut v = vec![T::default(); bytes.len() / size_of::<T>()];
            bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(bytes);
            v
        }
        match data.dtype {
            DType::F32 => CpuStorage::F32(copy(data.bytes)),
            DType::BF16 => CpuStorage::BF16(copy(data.bytes)),
            DType::F16 => CpuStorage::F16(copy(data.bytes)),
        }
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
}

impl CpuBackend {
    /// The ISA from `LFM_ISA` (or the best available) and `LFM_THREADS`
    /// threads (or all cores).
    pub fn new() -> Result<Self> {
        let threads = std::env::var("LFM_THREADS")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|&t| t > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Self::with(Isa::from_env()?, threads)
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
        format!("cpu ({}, {} threads)", self.isa(), self.threads)
    }

    fn upload(&self, data: HostData<'_>, shape: Shape) -> Result<Tensor<Self>> {
        data.check(&shape)?;
        Ok(Tensor::from_storage(
            CpuStorage::from_host(data),
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
        let packed = CpuStorage::from_host(data).to_panels(n, k, self.panel_layout());
        Ok(Tensor::from_storage(packed, data.dtype, shape))
    }

    fn zeros(&self, dtype: DType, shape: Shape) -> Result<Tensor<Self>> {
        let n = shape.elem_count();
        let s = match dtype {
            DType::F32 => CpuStorage::F32(vec![0.0; n]),
            DType::BF16 => CpuStorage::BF16(vec![bf16::ZERO; n]),
            DType::F16 => CpuStorage::F16(vec![f16::ZERO; n]),
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
            &CpuStorage::Panels {
                layout,
                n,
                k,
                ref data,
            } => match data.weights() {
                WeightRef::F32(w) => panels::unpack_f32(w, n, k, layout),
                WeightRef::BF16(w) => panels::unpack_f32(w, n, k, layout),
                WeightRef::F16(w) => panels::unpack_f32(w, n, k, layout),
            },
        })
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn matmul(
        &self,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        bias: Option<&Tensor<Self>>,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        let (m, n, k) = matmul_dims(x, w, bias, out)?;
        let layout = self.panel_layout();
        // Weights from `upload_weight` are already panels; anything else is
        // packed here, on every call (the slow path).
        let repacked;
        let w = match w.storage() {
            s @ CpuStorage::Panels { layout: l, .. } if *l == layout => s,
            CpuStorage::Panels { .. } => {
                return Err(TensorError::UnsupportedDType {
                    op: "matmul",
                    what: "w (packed for another ISA)",
                    dtype: w.dtype(),
                });
            }
            plain => {
                repacked = plain.to_panels(n, k, layout);
                &repacked
            }
        };
        let args = MatmulArgs {
            x: x.storage().as_f32("matmul", "x")?,
            w: w.weights(),
            bias: bias
                .map(|b| b.storage().as_f32("matmul", "bias"))
                .transpose()?,
            m,
            n,
            k,
        };
        let y = out.storage_mut().as_f32_mut("matmul", "out")?;
        let op = if m == 1 { "matmul.gemv" } else { "matmul.gemm" };
        self.timed(op, || matmul::matmul(self.isa, self.pool(), &args, y));
        Ok(())
    }

    fn rms_norm(
        &self,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        eps: f32,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        self.timed("rms_norm", || self.op_rms_norm(x, w, eps, out))
    }

    fn rope(&self, x: &mut Tensor<Self>, pos0: usize, theta: f32) -> Result<()> {
        self.timed("rope", || self.op_rope(x, pos0, theta))
    }

    fn qkv_norm_rope(
        &self,
        qkv: &Tensor<Self>,
        q_w: &Tensor<Self>,
        k_w: &Tensor<Self>,
        eps: f32,
        pos0: usize,
        theta: f32,
        q_out: &mut Tensor<Self>,
        k_cache: &mut Tensor<Self>,
        v_cache: &mut Tensor<Self>,
    ) -> Result<()> {
        self.timed("qkv_norm_rope", || {
            self.op_qkv_norm_rope(qkv, q_w, k_w, eps, pos0, theta, q_out, k_cache, v_cache)
        })
    }

    fn short_conv(
        &self,
        bcx: &Tensor<Self>,
        w: &Tensor<Self>,
        state: &mut Tensor<Self>,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        self.timed("short_conv", || self.op_short_conv(bcx, w, state, out))
    }

    fn attention(
        &self,
        q: &Tensor<Self>,
        k: &Tensor<Self>,
        v: &Tensor<Self>,
        kv_len: usize,
        causal: bool,
        scale: f32,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        self.timed("attention", || {
            self.op_attention(q, k, v, kv_len, causal, scale, out)
        })
    }

    fn silu_mul(
        &self,
        gate: &Tensor<Self>,
        up: &Tensor<Self>,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        self.timed("silu_mul", || self.op_silu_mul(gate, up, out))
    }

    fn add_assign(&self, x: &mut Tensor<Self>, y: &Tensor<Self>) -> Result<()> {
        self.timed("add_assign", || self.op_add_assign(x, y))
    }

    fn gather_rows(&self, table: &Tensor<Self>, ids: &[u32], out: &mut Tensor<Self>) -> Result<()> {
        self.timed("gather_rows", || self.op_gather_rows(table, ids, out))
    }

    fn copy_rows(&self, src: &Tensor<Self>, dst: &mut Tensor<Self>, row0: usize) -> Result<()> {
        self.timed("copy_rows", || self.op_copy_rows(src, dst, row0))
    }

    fn slice_rows(&self, src: &Tensor<Self>, row0: usize, out: &mut Tensor<Self>) -> Result<()> {
        self.timed("slice_rows", || self.op_slice_rows(src, row0, out))
    }

    fn swiglu(&self, gu: &Tensor<Self>, out: &mut Tensor<Self>) -> Result<()> {
        self.timed("swiglu", || self.op_swiglu(gu, out))
    }

    fn copy_cols(&self, src: &Tensor<Self>, col0: usize, out: &mut Tensor<Self>) -> Result<()> {
        self.timed("copy_cols", || self.op_copy_cols(src, col0, out))
    }

    fn layer_norm(
        &self,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        b: &Tensor<Self>,
        eps: f32,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        self.timed("layer_norm", || self.op_layer_norm(x, w, b, eps, out))
    }

    fn gelu(&self, x: &Tensor<Self>, kind: Gelu, out: &mut Tensor<Self>) -> Result<()> {
        self.timed("gelu", || self.op_gelu(x, kind, out))
    }

    fn pixel_unshuffle(
        &self,
        x: &Tensor<Self>,
        h: usize,
        w: usize,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        self.timed("pixel_unshuffle", || self.op_pixel_unshuffle(x, h, w, out))
    }
}
