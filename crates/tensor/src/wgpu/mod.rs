//! The wgpu backend: WGSL kernels on any adapter wgpu can open (Vulkan,
//! Metal, DX12; lavapipe on CPU-only machines).
//!
//! - [`device`] picks the adapter once and opens the device.
//! - [`shaders`] is the one registry of WGSL files (`shaders/` at the repo root).
//! - [`pipelines`] compiles each `(ShaderId, override constants)` once.
//! - [`uniforms`] holds the Rust mirrors of the WGSL uniform structs.
//! - [`matmul`] encodes the tiled GEMM and the GEMV.
//! - [`ops`] encodes every other [`Backend`] op (norms, rope, short conv,
//!   attention, elementwise, gathers and copies).
//!
//! Execution model: ops only *record* work. Each op writes its uniform into a
//! slot of one uniform ring buffer and appends a compute pass to a pending
//! command encoder; the encoder is submitted when the ring is full (every 64
//! ops), before a download, or on [`Backend::sync`]. Small per-call host
//! data (token ids, rope's cos/sin table) goes the same way through a host
//! data ring: `queue.write_buffer` lands before the *next* submit, so each
//! recorded op gets its own slice, and the ring is reset only at a submit.
//! Row copies (`copy_rows`, `slice_rows`) are `copy_buffer_to_buffer`
//! commands in the same encoder, ordered with the passes. Only `download_f32` and `sync` wait for
//! the device, so a whole forward pass runs without host round trips.
//! Validation errors that escape (the device reports them asynchronously) are
//! collected and returned by the next `download_f32` or `sync`.
//!
//! Bind groups are cached by everything they bind (pipeline key, uniform
//! slot, buffers with offsets and sizes; see `BindGroupKey`), and pipeline
//! keys are fixed arrays, so a steady-state decode step records its
//! dispatches without creating bind groups or allocating on the host (the
//! model's decode scratch is preallocated and a step's uniform slots and
//! host ring offsets repeat). Entries unused for a few downloads/syncs are
//! dropped, which releases the buffers of dropped tensors they hold.
//! [`WgpuBackend::bind_group_count`] counts the bind groups created.

pub mod device;
pub mod matmul;
pub mod ops;
pub mod pipelines;
pub mod shaders;
pub mod uniforms;

pub use self::device::{adapters, hardware_gpu};

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use self::device::GpuDevice;
use self::pipelines::{PipelineCache, PipelineKey};
use self::shaders::ShaderId;
use crate::{Backend, DType, HostData, Result, Shape, Tensor, TensorError};

/// Bytes per uniform slot: wgpu's largest allowed
/// `min_uniform_buffer_offset_alignment`, so any adapter accepts the offsets.
const UNIFORM_SLOT_BYTES: u64 = 256;
/// Uniform slots in the ring. The pending encoder is submitted when they are
/// used up, i.e. every 64 ops, so the device starts working while the host
/// is still recording the rest of a forward pass.
const UNIFORM_SLOTS: u64 = 64;
/// Bytes of the host data ring (ids, rope tables); larger data gets a
/// buffer of its own.
const HOST_RING_BYTES: u64 = 1 << 20;
/// Alignment of each slice of the host data ring: wgpu's largest allowed
/// `min_storage_buffer_offset_alignment`.
const HOST_ALIGN: u64 = 256;
/// Most storage bindings (buffers and host data) of one dispatch.
const MAX_BINDINGS: usize = 7;
/// Bind groups the cache holds at most; it is cleared when a new one would
/// go past this.
const BIND_GROUP_CACHE_MAX: usize = 2048;
/// A cached bind group unused for this many epochs (an epoch ends at each
/// download or sync) is dropped, which releases the buffers it holds (e.g.
/// a prefill's scratch once decoding runs).
const BIND_GROUP_KEEP_EPOCHS: u64 = 8;

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

/// One storage binding of a [`BindGroupKey`]: binding index, buffer,
/// offset and size (`None`: the whole buffer).
type BoundBuffer = (u32, wgpu::Buffer, u64, Option<NonZeroU64>);

/// Everything a bind group is built from. The key holds clones of the bound
/// buffers, so a buffer in the cache stays alive (and its identity cannot be
/// reused by a new buffer) while the entry lives. A fixed array: building a
/// key for a lookup allocates nothing.
#[derive(Clone, PartialEq, Eq, Hash)]
struct BindGroupKey {
    pipeline: PipelineKey,
    /// Offset and size of the uniform slot (binding 0).
    uniform: (u64, NonZeroU64),
    bindings: [Option<BoundBuffer>; MAX_BINDINGS],
}

struct CachedBindGroup {
    group: wgpu::BindGroup,
    /// The epoch of the last dispatch that used it.
    last_used: u64,
}

/// Bind groups by everything they bind. A decode step records the same
/// dispatches into the same uniform slots, host ring offsets and buffers
/// each time (the sizes and positions that change live in the uniforms and
/// the host data), so after the first step every lookup hits.
#[derive(Default)]
struct BindGroupCache {
    map: HashMap<BindGroupKey, CachedBindGroup>,
    /// Incremented at each download or sync.
    epoch: u64,
    /// Bind groups created so far (cached or not).
    created: usize,
}

impl BindGroupCache {
    /// Ends an epoch: drops the entries unused for [`BIND_GROUP_KEEP_EPOCHS`].
    fn end_epoch(&mut self) {
        self.epoch += 1;
        let epoch = self.epoch;
        self.map
            .retain(|_, e| epoch - e.last_used <= BIND_GROUP_KEEP_EPOCHS);
        tracing::trace!(
            epoch,
            cached = self.map.len(),
            created = self.created,
            "bind group cache"
        );
    }
}

/// Work recorded but not yet submitted.
#[derive(Default)]
struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    /// Next free slot of the uniform ring (slots `0..slot` are used by
    /// `encoder`'s passes and must not be rewritten before it is submitted).
    slot: u64,
    /// Next free byte of the host data ring (bytes `0..host` are read by
    /// `encoder`'s passes).
    host: u64,
    bind_groups: BindGroupCache,
}

struct Gpu {
    dev: GpuDevice,
    pipelines: PipelineCache,
    rec: Mutex<Recorder>,
    /// `UNIFORM_SLOTS` slots of `UNIFORM_SLOT_BYTES`.
    uniforms: wgpu::Buffer,
    /// `HOST_RING_BYTES` of per-op host data, bound as read-only storage.
    host_ring: wgpu::Buffer,
    /// A 4-byte storage buffer bound where an optional input is absent.
    placeholder: wgpu::Buffer,
    /// Reused readback buffer (grown on demand).
    staging: Mutex<Option<wgpu::Buffer>>,
    /// Reused host buffer for rope's cos/sin table.
    rope_table: Mutex<Vec<f32>>,
    /// Errors the device reported outside an error scope.
    errors: Arc<Mutex<Vec<String>>>,
}

/// The wgpu backend. Cheap to clone (the device is shared).
#[derive(Clone)]
pub struct WgpuBackend {
    gpu: Arc<Gpu>,
}

/// One compute dispatch for [`WgpuBackend::record`].
pub(crate) struct Dispatch<'a> {
    pub shader: ShaderId,
    /// Override constants (`name = value`).
    pub constants: &'a [(&'static str, u32)],
    /// The uniform struct's bytes, bound at binding 0.
    pub params: &'a [u8],
    /// Storage buffers by binding index.
    pub buffers: &'a [(u32, &'a wgpu::Buffer)],
    /// Workgroup counts (each ≤ the device's per-dimension limit).
    pub groups: [u32; 3],
    /// Host bytes (a multiple of 4, non-empty) bound read-only at the given
    /// binding: written into the host data ring for this dispatch alone.
    pub host: Option<(u32, &'a [u8])>,
}

fn lock<'a, T>(m: &'a Mutex<T>, what: &'static str) -> Result<MutexGuard<'a, T>> {
    m.lock().map_err(|_| TensorError::Gpu {
        what,
        detail: "lock poisoned by a panic".into(),
    })
}

/// Creates the bind group of `d`: the uniform slot `(offset, size)` at
/// binding 0, `d.buffers` whole, and the host data slice if any.
fn create_bind_group(
    g: &Gpu,
    layout: &wgpu::BindGroupLayout,
    d: &Dispatch<'_>,
    uniform: (u64, NonZeroU64),
    host: Option<(u32, &wgpu::Buffer, u64, Option<NonZeroU64>)>,
) -> wgpu::BindGroup {
    let mut entries = Vec::with_capacity(d.buffers.len() + 2);
    entries.push(wgpu::BindGroupEntry {
        binding: 0,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &g.uniforms,
            offset: uniform.0,
            size: Some(uniform.1),
        }),
    });
    for &(binding, buffer) in d.buffers {
        entries.push(wgpu::BindGroupEntry {
            binding,
            resource: buffer.as_entire_binding(),
        });
    }
    if let Some((binding, buffer, offset, size)) = host {
        entries.push(wgpu::BindGroupEntry {
            binding,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer,
                offset,
                size,
            }),
        });
    }
    g.dev.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(d.shader.label()),
        layout,
        entries: &entries,
    })
}

/// Buffer size for `bytes` of tensor data: rounded up to 4, at least 4.
fn padded(bytes: u64) -> u64 {
    bytes.div_ceil(4).max(1) * 4
}

impl WgpuBackend {
    /// Opens the adapter from `LFM_WGPU_ADAPTER` or the high-performance
    /// default (see [`device`]).
    pub fn new() -> Result<Self> {
        Self::with_device(GpuDevice::open()?)
    }

    /// A backend on an already opened device.
    pub fn with_device(dev: GpuDevice) -> Result<Self> {
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = Arc::clone(&errors);
        dev.device
            .on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                tracing::error!(error = %e, "wgpu error");
                if let Ok(mut v) = sink.lock() {
                    v.push(e.to_string());
                }
            }));
        let uniforms = dev.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("uniform ring"),
            size: UNIFORM_SLOT_BYTES * UNIFORM_SLOTS,
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
        Ok(WgpuBackend {
            gpu: Arc::new(Gpu {
                dev,
                pipelines: PipelineCache::default(),
                rec: Mutex::default(),
                uniforms,
                host_ring,
                placeholder,
                staging: Mutex::default(),
                rope_table: Mutex::default(),
                errors,
            }),
        })
    }

    pub fn device(&self) -> &GpuDevice {
        &self.gpu.dev
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
        self.gpu.rec.lock().map_or(0, |r| r.bind_groups.map.len())
    }

    pub(crate) fn placeholder(&self) -> &wgpu::Buffer {
        &self.gpu.placeholder
    }

    /// The reused host buffer for rope's cos/sin table (locked).
    pub(crate) fn rope_scratch(&self) -> Result<MutexGuard<'_, Vec<f32>>> {
        lock(&self.gpu.rope_table, "rope table")
    }

    /// Records one dispatch into the pending encoder (no wait).
    pub(crate) fn record(&self, d: &Dispatch<'_>) -> Result<()> {
        let g = &*self.gpu;
        let pipeline_key = PipelineKey::new(d.shader, d.constants)?;
        let p = g.pipelines.get(&g.dev.device, &pipeline_key)?;
        if d.buffers.len() + usize::from(d.host.is_some()) > MAX_BINDINGS {
            return Err(TensorError::Gpu {
                what: "dispatch",
                detail: format!(
                    "{}: {} storage bindings, over the {MAX_BINDINGS} a bind group key holds",
                    d.shader,
                    d.buffers.len() + usize::from(d.host.is_some())
                ),
            });
        }
        let params_len = NonZeroU64::new(d.params.len() as u64)
            .filter(|l| l.get() <= UNIFORM_SLOT_BYTES)
            .ok_or_else(|| TensorError::Gpu {
                what: "dispatch",
                detail: format!("uniform of {} bytes does not fit a slot", d.params.len()),
            })?;
        let max_binding = g.dev.limits.max_storage_buffer_binding_size;
        if let Some(&(binding, big)) = d.buffers.iter().find(|(_, b)| b.size() > max_binding) {
            return Err(TensorError::Gpu {
                what: "dispatch",
                detail: format!(
                    "{}: binding {binding} takes {} bytes, over the device's \
                     max_storage_buffer_binding_size of {max_binding}",
                    d.shader,
                    big.size()
                ),
            });
        }
        let host_len = match d.host {
            Some((_, bytes)) if bytes.is_empty() || bytes.len() % 4 != 0 => {
                return Err(TensorError::Gpu {
                    what: "dispatch",
                    detail: format!(
                        "host data of {} bytes (want a positive multiple of 4)",
                        bytes.len()
                    ),
                });
            }
            Some((_, bytes)) => bytes.len() as u64,
            None => 0,
        };
        let host_slice = host_len.div_ceil(HOST_ALIGN) * HOST_ALIGN;
        let in_ring = host_slice <= HOST_RING_BYTES;
        let mut rec = lock(&g.rec, "recorder")?;
        if rec.slot == UNIFORM_SLOTS || (in_ring && rec.host + host_slice > HOST_RING_BYTES) {
            self.submit(&mut rec);
        }
        let offset = rec.slot * UNIFORM_SLOT_BYTES;
        rec.slot += 1;
        g.dev.queue.write_buffer(&g.uniforms, offset, d.params);
        // (buffer, offset) of the host data, if any.
        let own_buffer;
        let own_host_buffer = d.host.is_some() && !in_ring;
        let host_at = match d.host {
            None => None,
            Some((_, bytes)) if in_ring => {
                let at = rec.host;
                rec.host += host_slice;
                g.dev.queue.write_buffer(&g.host_ring, at, bytes);
                Some((&g.host_ring, at))
            }
            Some((_, bytes)) => {
                own_buffer = g.dev.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("host data (over the ring size)"),
                    size: host_len,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                g.dev.queue.write_buffer(&own_buffer, 0, bytes);
                Some((&own_buffer, 0))
            }
        };

        let host_binding = match (d.host, host_at) {
            (Some((binding, _)), Some((buffer, at))) => {
                Some((binding, buffer, at, NonZeroU64::new(host_len)))
            }
            _ => None,
        };
        let bind_group = if own_host_buffer {
            // A buffer of its own for this dispatch alone: not worth caching.
            rec.bind_groups.created += 1;
            create_bind_group(g, &p.layout, d, (offset, params_len), host_binding)
        } else {
            let mut bindings: [Option<BoundBuffer>; MAX_BINDINGS] = Default::default();
            let bound = d
                .buffers
                .iter()
                .map(|&(binding, buffer)| (binding, buffer, 0, None))
                .chain(host_binding);
            for (slot, (binding, buffer, at, size)) in bindings.iter_mut().zip(bound) {
                *slot = Some((binding, buffer.clone(), at, size));
            }
            let key = BindGroupKey {
                pipeline: pipeline_key,
                uniform: (offset, params_len),
                bindings,
            };
            let cache = &mut rec.bind_groups;
            let epoch = cache.epoch;
            if let Some(hit) = cache.map.get_mut(&key) {
                hit.last_used = epoch;
                hit.group.clone()
            } else {
                if cache.map.len() >= BIND_GROUP_CACHE_MAX {
                    tracing::debug!(
                        entries = cache.map.len(),
                        "bind group cache full: clearing it"
                    );
                    cache.map.clear();
                }
                let group = create_bind_group(g, &p.layout, d, (offset, params_len), host_binding);
                cache.created += 1;
                cache.map.insert(
                    key,
                    CachedBindGroup {
                        group: group.clone(),
                        last_used: epoch,
                    },
                );
                group
            }
        };
        let encoder = rec.encoder.get_or_insert_with(|| {
            g.dev
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("ops") })
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(d.shader.label()),
            timestamp_writes: None,
        });
        pass.set_pipeline(&p.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
        Ok(())
    }

    /// Submits the pending encoder, if any, and frees the uniform ring.
    fn submit(&self, rec: &mut Recorder) {
        if let Some(enc) = rec.encoder.take() {
            self.gpu.dev.queue.submit([enc.finish()]);
        }
        rec.slot = 0;
        rec.host = 0;
    }

    /// Records a buffer-to-buffer copy of `size` bytes into the pending
    /// encoder (ordered with the recorded passes; no wait). Offsets and size
    /// must be multiples of 4.
    pub(crate) fn record_copy(
        &self,
        src: &wgpu::Buffer,
        src_offset: u64,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    ) -> Result<()> {
        if size == 0 {
            return Ok(());
        }
        let g = &*self.gpu;
        let mut rec = lock(&g.rec, "recorder")?;
        let encoder = rec.encoder.get_or_insert_with(|| {
            g.dev
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("ops") })
        });
        encoder.copy_buffer_to_buffer(src, src_offset, dst, dst_offset, size);
        Ok(())
    }

    /// Submits pending work without waiting for it.
    pub fn flush(&self) -> Result<()> {
        let mut rec = lock(&self.gpu.rec, "recorder")?;
        self.submit(&mut rec);
        Ok(())
    }

    fn wait(&self) -> Result<()> {
        lock(&self.gpu.rec, "recorder")?.bind_groups.end_epoch();
        self.gpu
            .dev
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| TensorError::Gpu {
                what: "device poll",
                detail: e.to_string(),
            })?;
        self.take_errors()
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
        {
            let mut rec = lock(&g.rec, "recorder")?;
            let encoder = rec.encoder.get_or_insert_with(|| {
                g.dev
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("ops") })
            });
            encoder.copy_buffer_to_buffer(&t.buffer, 0, staging, 0, size);
            self.submit(&mut rec);
        }
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
        format!("wgpu ({})", self.gpu.dev.describe())
    }

    fn upload(&self, data: HostData<'_>, shape: Shape) -> Result<Tensor<Self>> {
        data.check(&shape)?;
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
        })
    }

    fn sync(&self) -> Result<()> {
        self.flush()?;
        self.wait()
    }

    fn matmul(
        &self,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        bias: Option<&Tensor<Self>>,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        matmul::matmul(self, x, w, bias, out)
    }

    fn rms_norm(
        &self,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        eps: f32,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        ops::rms_norm(self, x, w, eps, out)
    }

    fn rope(&self, x: &mut Tensor<Self>, pos0: usize, theta: f32) -> Result<()> {
        ops::rope(self, x, pos0, theta)
    }

    fn short_conv(
        &self,
        bcx: &Tensor<Self>,
        w: &Tensor<Self>,
        state: &mut Tensor<Self>,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        ops::short_conv(self, bcx, w, state, out)
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
        ops::attention(self, q, k, v, kv_len, causal, scale, out)
    }

    fn silu_mul(
        &self,
        gate: &Tensor<Self>,
        up: &Tensor<Self>,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        ops::silu_mul(self, gate, up, out)
    }

    fn add_assign(&self, x: &mut Tensor<Self>, y: &Tensor<Self>) -> Result<()> {
        ops::add_assign(self, x, y)
    }

    fn gather_rows(&self, table: &Tensor<Self>, ids: &[u32], out: &mut Tensor<Self>) -> Result<()> {
        ops::gather_rows(self, table, ids, out)
    }

    fn copy_rows(&self, src: &Tensor<Self>, dst: &mut Tensor<Self>, row0: usize) -> Result<()> {
        ops::copy_rows(self, src, dst, row0)
    }

    fn layer_norm(
        &self,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        b: &Tensor<Self>,
        eps: f32,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        ops::layer_norm(self, x, w, b, eps, out)
    }

    fn gelu(&self, x: &Tensor<Self>, kind: crate::Gelu, out: &mut Tensor<Self>) -> Result<()> {
        ops::gelu(self, x, kind, out)
    }

    fn pixel_unshuffle(
        &self,
        x: &Tensor<Self>,
        h: usize,
        w: usize,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        ops::pixel_unshuffle(self, x, h, w, out)
    }

    fn slice_rows(&self, src: &Tensor<Self>, row0: usize, out: &mut Tensor<Self>) -> Result<()> {
        ops::slice_rows(self, src, row0, out)
    }
}

/// Test helper: the process-wide backend, or `None` after printing a skip
/// line when no adapter exists. With `LFM_REQUIRE_GPU=1` (CI) a missing
/// adapter panics instead. The backend is opened once and shared, so tests
/// in one binary reuse its compiled pipelines.
pub fn gpu_or_skip() -> Option<WgpuBackend> {
    static GPU: OnceLock<std::result::Result<WgpuBackend, String>> = OnceLock::new();
    let got = GPU.get_or_init(|| {
        WgpuBackend::new().map_err(|e| e.to_string()).inspect(|b| {
            eprintln!("wgpu backend: {}", b.describe());
        })
    });
    match got {
        Ok(b) => Some(b.clone()),
        Err(e) => {
            if std::env::var("LFM_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("LFM_REQUIRE_GPU=1 but the wgpu backend is unavailable: {e}");
            }
            eprintln!("SKIP: no wgpu adapter ({e}); set LFM_REQUIRE_GPU=1 to fail instead");
            None
        }
    }
}
