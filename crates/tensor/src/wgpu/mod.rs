//! The wgpu backend: WGSL kernels on any adapter wgpu can open (Vulkan,
//! Metal, DX12; lavapipe on CPU-only machines).
//!
//! - [`device`] picks the adapter once and opens the device, as the
//!   backend's [`WgpuOptions`] ([`options`]) say; the device holds them.
//! - [`shaders`] is the one registry of WGSL files (`shaders/` at the repo root).
//! - [`pipelines`] compiles each `(ShaderId, override constants)` once.
//! - [`uniforms`] holds the Rust mirrors of the WGSL uniform structs.
//! - [`matmul`] encodes the tiled GEMM and the GEMV; [`coop`] holds the
//!   tensor-core GEMM's grids, forced entry points and presplit first pass
//!   (`coop_check.rs`: the tensor-core kernels' start-up checks);
//!   [`gemv_fused`] the decode GEMVs with a fused SwiGLU or conv-step
//!   epilogue.
//! - [`attention`] encodes attention (decode, rows and tiled kernels);
//!   [`attention_coop`] holds the bidirectional tensor-core kernel's plans
//!   and start-up check.
//! - [`ops`] encodes every other [`Backend`] op (norms, rope, short conv,
//!   elementwise, gathers and copies).
//!
//! Execution model: ops only *record* work into one pending command
//! encoder (`recorder.rs`: one open compute pass, uniforms and small host data
//! staged on the host and uploaded once per submit, bind groups cached with
//! the uniform at a dynamic offset); the encoder is submitted every
//! [`WgpuOptions::ops_per_submit`] ops, before a download, or on
//! [`Backend::sync`]. Only `download_f32` and `sync` wait for the device, so
//! a whole forward pass runs without host round trips. Validation errors
//! that escape (the device reports them asynchronously) are collected and
//! returned by the next `download_f32` or `sync`. [`profile`] times each
//! shader on the GPU.

pub mod attention;
pub mod attention_coop;
pub mod coop;
mod coop_check;
pub mod device;
pub mod gemv_fused;
pub mod matmul;
pub mod ops;
pub mod options;
pub mod pipelines;
pub mod profile;
mod recorder;
pub mod shaders;
pub mod uniforms;

pub use self::device::{adapters, hardware_gpu};
pub use self::options::WgpuOptions;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use self::device::GpuDevice;
use self::pipelines::PipelineCache;
use self::profile::{Sink, Timestamps};
pub(crate) use self::recorder::Dispatch;
use self::recorder::Recorder;
use crate::{Backend, DType, HostData, Result, Shape, Tensor, TensorError, op};

/// Bytes per uniform slot: wgpu's largest allowed
/// `min_uniform_buffer_offset_alignment`, so any adapter accepts the offsets.
const UNIFORM_SLOT_BYTES: u64 = 256;
/// Bytes of the host data ring (ids, rope tables); larger data gets a
/// buffer of its own.
const HOST_RING_BYTES: u64 = 1 << 20;
/// Alignment of each slice of the host data ring: wgpu's largest allowed
/// `min_storage_buffer_offset_alignment`.
const HOST_ALIGN: u64 = 256;
/// A device buffer holding one tensor. Sized to a multiple of 4 bytes (at
/// least 4, since bindings cannot be empty); bf16/f16 data stay packed two
/// per u32, element `e` in word `e / 2`, low half first.
pub struct WgpuStorage {
    buffer: wgpu::Buffer,
    /// Logical byte length of the tensor (without the padding).
    bytes: u64,
}

impl WgpuStorage {
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// The tensor's byte length (the buffer may be up to 3 bytes longer, or 4
    /// for an empty tensor).
    pub fn byte_len(&self) -> u64 {
        self.bytes
    }
}

struct Gpu {
    dev: GpuDevice,
    pipelines: PipelineCache,
    rec: Mutex<Recorder>,
    /// Ops per submit ([`WgpuOptions::ops_per_submit`]): the uniform
    /// ring's slots. The pending encoder is submitted when they are used
    /// up, so the device starts working while the host is still recording
    /// the rest of a forward pass.
    slots: u64,
    /// Ops of the first submit after a wait (≤ `slots`).
    first_submit: u64,
    /// `slots` slots of `UNIFORM_SLOT_BYTES`.
    uniforms: wgpu::Buffer,
    /// `HOST_RING_BYTES` of per-op host data, bound as read-only storage.
    host_ring: wgpu::Buffer,
    /// A 4-byte storage buffer bound where an optional input is absent.
    placeholder: wgpu::Buffer,
    /// Reused readback buffer (grown on demand).
    staging: Mutex<Option<wgpu::Buffer>>,
    /// Reused host buffer for rope's cos/sin table.
    rope_table: Mutex<Vec<f32>>,
    /// The tensor-core kernels' scratch: the attention's and the presplit
    /// GEMM's f16 halves (grown on demand, never shrunk: it ends as large
    /// as the largest call's, e.g. 9 MiB for the 450M tower's attention,
    /// 12 MiB with the presplit GEMM; see [`WgpuBackend::with_scratch`]).
    scratch: Mutex<Option<wgpu::Buffer>>,
    /// Errors the device reported outside an error scope.
    errors: Arc<Mutex<Vec<String>>>,
    /// Profiling's query set and buffers (devices with timestamp queries).
    timestamps: Option<Timestamps>,
    /// Nanoseconds spent in `wait` (see [`WgpuBackend::waited`]).
    waited_ns: AtomicU64,
}

/// The wgpu backend. Cheap to clone (the device is shared).
#[derive(Clone)]
pub struct WgpuBackend {
    gpu: Arc<Gpu>,
    /// Per-shader GPU time, when profiling is on.
    profile: Option<Sink>,
}

fn lock<'a, T>(m: &'a Mutex<T>, what: &'static str) -> Result<MutexGuard<'a, T>> {
    m.lock().map_err(|_| TensorError::Gpu {
        what,
        detail: "lock poisoned by a panic".into(),
    })
}

/// Buffer size for `bytes` of tensor data: rounded up to 4, at least 4.
fn padded(bytes: u64) -> u64 {
    bytes.div_ceil(4).max(1) * 4
}

impl WgpuBackend {
    /// Opens the adapter `options` name, or the high-performance default
    /// (see [`device`]), and a backend on it tuned by `options`.
    pub fn new(options: WgpuOptions) -> Result<Self> {
        Self::with_device(GpuDevice::open(options)?)
    }

    /// A backend on an already opened device, tuned by the options the
    /// device holds ([`GpuDevice::options`]).
    pub fn with_device(dev: GpuDevice) -> Result<Self> {
        dev.options.validate()?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = Arc::clone(&errors);
        dev.device
            .on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                tracing::error!(error = %e, "wgpu error");
                if let Ok(mut v) = sink.lock() {
                    v.push(e.to_string());
                }
            }));
        let slots = dev.options.ops_per_submit;
        let first_submit = dev.options.first_submit_ops();
        let uniforms = dev.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("uniform ring"),
            size: UNIFORM_SLOT_BYTES * slots,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let host_ring = dev.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("host data ring"),
            size: HOST_RING_BYTES,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let placeholder = dev.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("placeholder"),
            size: 4,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let timestamps = dev
            .features
            .contains(wgpu::Features::TIMESTAMP_QUERY)
            .then(|| Timestamps::new(&dev.device, &dev.queue, slots));
        let pipelines = PipelineCache::new(dev.options.dump_wgsl);
        let mut be = WgpuBackend {
            profile: None,
            gpu: Arc::new(Gpu {
                dev,
                pipelines,
                rec: Mutex::default(),
                slots,
                first_submit,
                uniforms,
                host_ring,
                placeholder,
                staging: Mutex::default(),
                rope_table: Mutex::default(),
                scratch: Mutex::default(),
                errors,
                timestamps,
                waited_ns: AtomicU64::new(0),
            }),
        };
        be.check_coop();
        Ok(be)
    }

    pub fn device(&self) -> &GpuDevice {
        &self.gpu.dev
    }

    /// The options this backend was opened with.
    pub fn options(&self) -> &WgpuOptions {
        &self.gpu.dev.options
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.gpu.dev.info
    }

    /// Whether the adapter is a software rasteriser (lavapipe, WARP,
    /// SwiftShader): correct, but no faster than the CPU backend.
    pub fn is_software(&self) -> bool {
        self.gpu.dev.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Number of pipelines compiled so far.
    pub fn pipeline_count(&self) -> usize {
        self.gpu.pipelines.len()
    }

    /// Number of bind groups created so far. Steady-state decoding reuses
    /// cached ones, so this stops growing after the first step.
    pub fn bind_group_count(&self) -> usize {
        self.gpu.rec.lock().map_or(0, |r| r.bind_groups.created)
    }

    /// Number of bind groups currently cached.
    pub fn cached_bind_group_count(&self) -> usize {
        self.gpu.rec.lock().map_or(0, |r| r.bind_groups.len())
    }

    pub(crate) fn placeholder(&self) -> &wgpu::Buffer {
        &self.gpu.placeholder
    }

    /// The reused host buffer for rope's cos/sin table (locked).
    pub(crate) fn rope_scratch(&self) -> Result<MutexGuard<'_, Vec<f32>>> {
        lock(&self.gpu.rope_table, "rope table")
    }

    /// Submits pending work without waiting for it.
    pub fn flush(&self) -> Result<()> {
        let mut rec = lock(&self.gpu.rec, "recorder")?;
        self.submit(&mut rec)
    }

    fn wait(&self) -> Result<()> {
        {
            let mut rec = lock(&self.gpu.rec, "recorder")?;
            rec.bind_groups.end_epoch();
            rec.submits_since_wait = 0;
        }
        let t = std::time::Instant::now();
        let polled = self
            .gpu
            .dev
            .device
            .poll(wgpu::PollType::wait_indefinitely());
        let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.gpu.waited_ns.fetch_add(ns, Ordering::Relaxed);
        polled.map_err(|e| TensorError::Gpu {
            what: "device poll",
            detail: e.to_string(),
        })?;
        self.take_errors()
    }

    /// Host time spent waiting for the device in downloads and syncs since
    /// the backend was opened. A wall-clock time minus the growth of this is
    /// the host's own work (recording, submitting, reading back): when that
    /// is most of a decode step, the step is bound by the host, not the GPU.
    pub fn waited(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.gpu.waited_ns.load(Ordering::Relaxed))
    }

    /// Returns (and clears) the errors the device reported asynchronously.
    fn take_errors(&self) -> Result<()> {
        let mut v = lock(&self.gpu.errors, "error sink")?;
        if v.is_empty() {
            return Ok(());
        }
        let detail = v.join("; ");
        v.clear();
        Err(TensorError::Gpu {
            what: "device",
            detail,
        })
    }

    /// A zeroed storage buffer for `bytes` bytes of tensor data.
    fn alloc(&self, bytes: u64, label: &str, mapped: bool) -> Result<wgpu::Buffer> {
        let size = padded(bytes);
        let max = self.gpu.dev.limits.max_buffer_size;
        if size > max {
            return Err(TensorError::Gpu {
                what: "buffer allocation",
                detail: format!("{size} bytes exceed the device's max_buffer_size of {max}"),
            });
        }
        let device = &self.gpu.dev.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: mapped,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(TensorError::Gpu {
                what: "buffer allocation",
                detail: e.to_string(),
            });
        }
        Ok(buffer)
    }

    /// Runs `f` (which records dispatches) with a device buffer of at least
    /// `bytes` for a kernel's intermediate data: one buffer shared by every
    /// call that asks, grown on demand (one allocation for a tower's
    /// attention over a whole image). The buffer stays locked while `f`
    /// records, so that another thread's dispatches cannot land between
    /// the ones that write and read it; dispatches recorded later are
    /// ordered after them by wgpu.
    pub(crate) fn with_scratch<R>(
        &self,
        bytes: u64,
        f: impl FnOnce(&wgpu::Buffer) -> Result<R>,
    ) -> Result<R> {
        let mut slot = lock(&self.gpu.scratch, "scratch")?;
        let buffer = match slot.take() {
            Some(b) if b.size() >= bytes => b,
            _ => self.alloc(bytes, "scratch", false)?,
        };
        let r = f(&buffer);
        *slot = Some(buffer);
        r
    }

    /// Copies `t` into the staging buffer and returns `f` of its padded
    /// bytes (read in place from the mapped staging buffer, no copy).
    fn read_back<R>(&self, t: &WgpuStorage, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let g = &*self.gpu;
        let size = t.buffer.size();
        let mut staging = lock(&g.staging, "staging buffer")?;
        if staging.as_ref().is_none_or(|b| b.size() < size) {
            *staging = Some(g.dev.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("download staging"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
        let Some(staging) = staging.as_ref() else {
            return Err(TensorError::Gpu {
                what: "download",
                detail: "no staging buffer".into(),
            });
        };
        self.submit_with_copy(&t.buffer, staging, size)?;
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, ..size, move |r| {
            // The receiver outlives this callback: it is dropped only after
            // the wait below, which runs the callback.
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|e| TensorError::Gpu {
                what: "download",
                detail: e.to_string(),
            })?
            .map_err(|e| TensorError::Gpu {
                what: "buffer map",
                detail: e.to_string(),
            })?;
        let got = {
            let view = staging
                .get_mapped_range(..size)
                .map_err(|e| TensorError::Gpu {
                    what: "buffer map",
                    detail: e.to_string(),
                })?;
            f(&view)
        };
        staging.unmap();
        Ok(got)
    }
}

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

    fn zeros(&self, dtype: DType, shape: Shape) -> Result<Tensor<Self>> {
        if dtype == DType::I8 {
            return Err(ops::no_i8("zeros"));
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
        if gemv_fused::gemv_short_conv(self, &op)? {
            return Ok(());
        }
        op.unfused(self)
    }

    fn matmul_swiglu(&self, op: op::MatmulSwiglu<'_, Self>) -> Result<()> {
        if gemv_fused::gemv_swiglu(self, &op)? {
            return Ok(());
        }
        op.unfused(self)
    }

    fn copy_cols(&self, op: op::CopyCols<'_, Self>) -> Result<()> {
        ops::copy_cols(self, op)
    }
}

/// Test helper: the process-wide backend on the test harness's options
/// ([`crate::testing::env::wgpu_options`]: the defaults, with the adapter
/// of `LFM_WGPU_ADAPTER`), or `None` after printing a skip line when no
/// adapter exists. With `LFM_REQUIRE_GPU=1` (CI) a missing adapter panics
/// instead. The backend is opened once and shared, so tests in one binary
/// reuse its compiled pipelines.
pub fn gpu_or_skip() -> Option<WgpuBackend> {
    static GPU: OnceLock<std::result::Result<WgpuBackend, String>> = OnceLock::new();
    let got = GPU.get_or_init(|| {
        WgpuBackend::new(crate::testing::env::wgpu_options())
            .map_err(|e| e.to_string())
            .inspect(|b| {
                eprintln!("wgpu backend: {}", b.describe());
            })
    });
    skip_unless_opened(got.clone())
}

/// Test helper: a backend of its own on `options` (tests of the options
/// themselves, or of a kernel choice they change), or `None` after printing
/// a skip line when no adapter exists (a panic with `LFM_REQUIRE_GPU=1`).
/// Build `options` over [`crate::testing::env::wgpu_options`] to keep the
/// harness's adapter.
pub fn gpu_with_or_skip(options: WgpuOptions) -> Option<WgpuBackend> {
    if let Err(e) = options.validate() {
        panic!("{options:?}: {e}");
    }
    let got = WgpuBackend::new(options).map_err(|e| e.to_string());
    if let Ok(b) = &got {
        eprintln!("wgpu backend: {} ({:?})", b.describe(), b.options());
    }
    skip_unless_opened(got)
}

fn skip_unless_opened(got: std::result::Result<WgpuBackend, String>) -> Option<WgpuBackend> {
    match got {
        Ok(b) => Some(b),
        Err(e) => {
            if crate::testing::env::require_gpu() {
                panic!("LFM_REQUIRE_GPU=1 but the wgpu backend is unavailable: {e}");
            }
            eprintln!("SKIP: no wgpu adapter ({e}); set LFM_REQUIRE_GPU=1 to fail instead");
            None
        }
    }
}
