//! The wgpu backend: WGSL kernels on any adapter wgpu can open (Vulkan,
//! Metal, DX12; lavapipe on CPU-only machines).
//!
//! - [`device`] picks the adapter once and opens the device, as the
//!   backend's [`WgpuOptions`] ([`options`]) say; the device holds them.
//! - [`shaders`] is the one registry of WGSL files (`shaders/` at the repo root).
//! - [`pipelines`] compiles each `(ShaderId, override constants)` once.
//! - [`uniforms`] holds the Rust mirrors of the WGSL uniform structs.
//! - [`matmul`] encodes the tiled GEMM and the GEMV; [`matmul::coop`] holds
//!   the tensor-core GEMM's grids, forced entry points and presplit first
//!   pass; [`matmul::gemv_fused`] the decode GEMVs with a fused SwiGLU or
//!   conv-step epilogue.
//! - [`attention`] encodes attention (decode, rows and tiled kernels);
//!   [`attention::coop`] holds the bidirectional tensor-core kernel's plans
//!   and start-up check. `coop_check.rs` runs the tensor-core kernels'
//!   start-up checks.
//! - [`ops`] encodes every other [`Backend`] op (norms, rope, short conv,
//!   elementwise, gathers and copies); `backend.rs` is the [`Backend`] impl
//!   that forwards each op; `transfer.rs` allocates, waits and reads back.
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
mod backend;
mod coop_check;
pub mod device;
pub mod matmul;
pub mod ops;
pub mod options;
pub mod pipelines;
pub mod profile;
mod recorder;
pub mod shaders;
mod transfer;
pub mod uniforms;

pub use self::device::{adapters, hardware_gpu};
pub use self::options::WgpuOptions;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use self::device::GpuDevice;
use self::pipelines::PipelineCache;
use self::profile::{Sink, Timestamps};
pub(crate) use self::recorder::Dispatch;
use self::recorder::Recorder;
use crate::{Backend, Result, TensorError};

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
