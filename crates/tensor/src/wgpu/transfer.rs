//! The wgpu backend's device memory and synchronisation: buffer
//! allocation, the one shared scratch buffer, submitting without waiting
//! (`flush`), waiting (`wait`, the only blocking call besides readback),
//! the device's asynchronous errors, and reading a tensor back through the
//! reused staging buffer.

use std::sync::atomic::Ordering;

use super::{WgpuBackend, WgpuStorage, lock, padded};
use crate::{Result, TensorError};

impl WgpuBackend {
    /// Submits pending work without waiting for it.
    pub fn flush(&self) -> Result<()> {
        let mut rec = lock(&self.gpu.rec, "recorder")?;
        self.submit(&mut rec)
    }

    pub(super) fn wait(&self) -> Result<()> {
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
    pub(super) fn take_errors(&self) -> Result<()> {
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
    pub(super) fn alloc(&self, bytes: u64, label: &str, mapped: bool) -> Result<wgpu::Buffer> {
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
    pub(super) fn read_back<R>(&self, t: &WgpuStorage, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
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
