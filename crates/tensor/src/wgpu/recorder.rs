//! Recording: every op appends its dispatch (or buffer copy) to one pending
//! command encoder; nothing waits here.
//!
//! - Consecutive dispatches share one open compute pass; a copy or a submit
//!   ends it (copies cannot sit inside a pass). With profiling on, each
//!   dispatch gets a pass of its own with timestamps (see [`super::profile`]).
//! - Each dispatch's uniform goes into a slot of the uniform ring and its
//!   small host data (token ids, rope tables) into the host data ring. Both
//!   are first written to host-side shadows and uploaded with one
//!   `write_buffer` each just before the submit (a `write_buffer` per op
//!   would cost a staging allocation and a copy each, most of a decode
//!   step's host time). The encoder is submitted when the uniform ring is
//!   full (every `slots` ops; the first submit after a wait already after
//!   `first_submit` ops, so the device starts early), before a download, or
//!   on `sync`.
//! - The uniform is bound with a dynamic offset, so a bind group does not
//!   depend on the slot. Bind groups are cached by pipeline and bound
//!   buffers (`BindGroupKey`): a steady-state decode step creates none.

use std::num::NonZeroU64;

use super::pipelines::{CachedPipeline, KeyMap, PipelineKey};
use super::profile::PendingQueries;
use super::shaders::ShaderId;
use super::{Gpu, HOST_ALIGN, HOST_RING_BYTES, UNIFORM_SLOT_BYTES, WgpuBackend, lock};
use crate::{Result, TensorError};

/// Most storage bindings (buffers and host data) of one dispatch.
pub(super) const MAX_BINDINGS: usize = 7;
/// Bind groups the cache holds at most; it is cleared when a new one would
/// go past this.
const BIND_GROUP_CACHE_MAX: usize = 2048;
/// A cached bind group unused for this many epochs (an epoch ends at each
/// download or sync) is dropped, which releases the buffers it holds (e.g.
/// a prefill's scratch once decoding runs).
const BIND_GROUP_KEEP_EPOCHS: u64 = 8;

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
    /// Size of the uniform binding (its offset is dynamic).
    uniform: NonZeroU64,
    bindings: [Option<BoundBuffer>; MAX_BINDINGS],
}

struct CachedBindGroup {
    group: wgpu::BindGroup,
    /// The epoch of the last dispatch that used it.
    last_used: u64,
}

/// Bind groups by everything they bind. A decode step records the same
/// dispatches over the same buffers and host ring offsets each time (the
/// sizes and positions that change live in the uniforms and the host
/// data), so after the first step every lookup hits.
#[derive(Default)]
pub(super) struct BindGroupCache {
    map: KeyMap<BindGroupKey, CachedBindGroup>,
    /// Incremented at each download or sync.
    epoch: u64,
    /// Bind groups created so far (cached or not).
    pub created: usize,
}

impl BindGroupCache {
    /// Ends an epoch: drops the entries unused for [`BIND_GROUP_KEEP_EPOCHS`].
    pub fn end_epoch(&mut self) {
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

    pub fn len(&self) -> usize {
        self.map.len()
    }
}

/// Work recorded but not yet submitted.
#[derive(Default)]
pub(super) struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    /// The open compute pass of `encoder`, if any.
    pass: Option<wgpu::ComputePass<'static>>,
    /// Next free slot of the uniform ring (slots `0..slot` are used by
    /// `encoder`'s passes).
    slot: u64,
    /// Host copy of uniform slots `0..slot`, uploaded at the submit.
    uniform_shadow: Vec<u8>,
    /// Next free byte of the host data ring.
    host: u64,
    /// Host copy of host ring bytes `0..host`, uploaded at the submit.
    host_shadow: Vec<u8>,
    pub bind_groups: BindGroupCache,
    /// Timestamp pairs written by `encoder`'s passes (profiling only).
    pub queries: PendingQueries,
    /// Submits since the device was last waited for: the first one goes out
    /// early (`Gpu::first_submit` ops).
    pub submits_since_wait: u64,
}

impl Recorder {
    /// The pending encoder (created if needed) with no pass open.
    fn encoder(&mut self, dev: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.end_pass();
        pending_encoder(&mut self.encoder, dev)
    }

    /// The open compute pass, begun if needed.
    fn pass(&mut self, dev: &wgpu::Device) -> &mut wgpu::ComputePass<'static> {
        let Recorder { encoder, pass, .. } = self;
        pass.get_or_insert_with(|| {
            pending_encoder(encoder, dev)
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("ops"),
                    timestamp_writes: None,
                })
                .forget_lifetime()
        })
    }

    fn end_pass(&mut self) {
        self.pass = None;
    }
}

/// The encoder in `slot`, created if there is none.
fn pending_encoder<'a>(
    slot: &'a mut Option<wgpu::CommandEncoder>,
    dev: &wgpu::Device,
) -> &'a mut wgpu::CommandEncoder {
    slot.get_or_insert_with(|| {
        dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("ops") })
    })
}

/// Creates the bind group of `d`: the uniform (dynamic offset, `uniform`
/// bytes) at binding 0, `d.buffers` whole, and the host data slice if any.
fn create_bind_group(
    g: &Gpu,
    layout: &wgpu::BindGroupLayout,
    d: &Dispatch<'_>,
    uniform: NonZeroU64,
    host: Option<(u32, &wgpu::Buffer, u64, Option<NonZeroU64>)>,
) -> wgpu::BindGroup {
    let mut entries = Vec::with_capacity(d.buffers.len() + 2);
    entries.push(wgpu::BindGroupEntry {
        binding: 0,
        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &g.uniforms,
            offset: 0,
            size: Some(uniform),
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

/// Checks a dispatch's bindings and uniform against the recorder's and the
/// device's limits; returns the uniform size and the host data length.
fn check(g: &Gpu, d: &Dispatch<'_>) -> Result<(NonZeroU64, u64)> {
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
    Ok((params_len, host_len))
}

impl WgpuBackend {
    /// Records one dispatch into the pending encoder (no wait).
    pub(crate) fn record(&self, d: &Dispatch<'_>) -> Result<()> {
        let g = &*self.gpu;
        let pipeline_key = PipelineKey::new(d.shader, d.constants)?;
        let p = g.pipelines.get(&g.dev.device, &pipeline_key)?;
        let (params_len, host_len) = check(g, d)?;
        let host_slice = host_len.div_ceil(HOST_ALIGN) * HOST_ALIGN;
        let in_ring = host_slice <= HOST_RING_BYTES;
        let mut rec = lock(&g.rec, "recorder")?;
        let limit = if rec.submits_since_wait == 0 {
            g.first_submit
        } else {
            g.slots
        };
        let queries_full = self.profile.is_some() && rec.queries.is_full(g);
        if rec.slot >= limit || (in_ring && rec.host + host_slice > HOST_RING_BYTES) || queries_full
        {
            self.submit(&mut rec)?;
        }
        // The uniform: into the shadow of the next slot.
        let offset = rec.slot * UNIFORM_SLOT_BYTES;
        rec.slot += 1;
        let at = offset as usize;
        rec.uniform_shadow
            .resize(at + UNIFORM_SLOT_BYTES as usize, 0);
        rec.uniform_shadow[at..at + d.params.len()].copy_from_slice(d.params);
        // (buffer, offset) of the host data, if any.
        let own_buffer;
        let host_at = match d.host {
            None => None,
            Some((_, bytes)) if in_ring => {
                let at = rec.host;
                rec.host += host_slice;
                let (start, end) = (at as usize, (at + host_slice) as usize);
                rec.host_shadow.resize(end, 0);
                rec.host_shadow[start..start + bytes.len()].copy_from_slice(bytes);
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
        let bind_group = if d.host.is_some() && !in_ring {
            // A buffer of its own for this dispatch alone: not worth caching.
            rec.bind_groups.created += 1;
            create_bind_group(g, &p.layout, d, params_len, host_binding)
        } else {
            cached_bind_group(
                g,
                &mut rec.bind_groups,
                &p,
                pipeline_key,
                d,
                params_len,
                host_binding,
            )
        };
        let dynamic = [offset as u32];
        if let Some(profiler) = &self.profile {
            let Some((set, begin)) = rec.queries.push(g, profiler, d.shader.label())? else {
                return Err(TensorError::Gpu {
                    what: "profiling",
                    detail: "no timestamp slot left".into(),
                });
            };
            let encoder = rec.encoder(&g.dev.device);
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(d.shader.label()),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &set,
                    beginning_of_pass_write_index: Some(begin),
                    end_of_pass_write_index: Some(begin + 1),
                }),
            });
            pass.set_pipeline(&p.pipeline);
            pass.set_bind_group(0, &bind_group, &dynamic);
            pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
        } else {
            let pass = rec.pass(&g.dev.device);
            pass.set_pipeline(&p.pipeline);
            pass.set_bind_group(0, &bind_group, &dynamic);
            pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
        }
        Ok(())
    }

    /// Uploads the ring shadows, submits the pending encoder, if any, and
    /// frees the rings. With profiling on, also reads back this submit's
    /// timestamps (waiting for the device).
    pub(super) fn submit(&self, rec: &mut Recorder) -> Result<()> {
        let g = &*self.gpu;
        rec.end_pass();
        if rec.slot > 0 {
            let used = (rec.slot * UNIFORM_SLOT_BYTES) as usize;
            g.dev
                .queue
                .write_buffer(&g.uniforms, 0, &rec.uniform_shadow[..used]);
        }
        if rec.host > 0 {
            g.dev
                .queue
                .write_buffer(&g.host_ring, 0, &rec.host_shadow[..rec.host as usize]);
        }
        let profiled = rec.queries.resolve(g, rec.encoder.as_mut());
        if let Some(enc) = rec.encoder.take() {
            g.dev.queue.submit([enc.finish()]);
            rec.submits_since_wait += 1;
        }
        rec.slot = 0;
        rec.host = 0;
        if let Some(read) = profiled {
            read.finish(self)?;
        }
        Ok(())
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
        rec.encoder(&g.dev.device)
            .copy_buffer_to_buffer(src, src_offset, dst, dst_offset, size);
        Ok(())
    }

    /// Records a copy of `src`'s first `size` bytes into `staging` and
    /// submits everything pending.
    pub(super) fn submit_with_copy(
        &self,
        src: &wgpu::Buffer,
        staging: &wgpu::Buffer,
        size: u64,
    ) -> Result<()> {
        let g = &*self.gpu;
        let mut rec = lock(&g.rec, "recorder")?;
        rec.encoder(&g.dev.device)
            .copy_buffer_to_buffer(src, 0, staging, 0, size);
        self.submit(&mut rec)
    }
}

/// The cached bind group for `d`, created on a miss.
fn cached_bind_group(
    g: &Gpu,
    cache: &mut BindGroupCache,
    p: &CachedPipeline,
    pipeline: PipelineKey,
    d: &Dispatch<'_>,
    uniform: NonZeroU64,
    host_binding: Option<(u32, &wgpu::Buffer, u64, Option<NonZeroU64>)>,
) -> wgpu::BindGroup {
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
        pipeline,
        uniform,
        bindings,
    };
    let epoch = cache.epoch;
    if let Some(hit) = cache.map.get_mut(&key) {
        hit.last_used = epoch;
        return hit.group.clone();
    }
    if cache.map.len() >= BIND_GROUP_CACHE_MAX {
        tracing::debug!(
            entries = cache.map.len(),
            "bind group cache full: clearing it"
        );
        cache.map.clear();
    }
    let group = create_bind_group(g, &p.layout, d, uniform, host_binding);
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
