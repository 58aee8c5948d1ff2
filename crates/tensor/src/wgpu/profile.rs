//! GPU time per shader from timestamp queries ([`WgpuBackend::with_profiling`]).
//!
//! A profiling backend gives each dispatch a compute pass of its own whose
//! beginning and end write timestamps; at each submit the pairs are resolved
//! and read back (waiting for the device), and `end − begin` is added to the
//! shader's total. Host time (recording, submits, waits) is not in it: the
//! wall clock minus the sum is the cost of everything that is not a kernel.
//! Needs the adapter's `TIMESTAMP_QUERY` feature; without it the profile
//! stays empty.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Gpu, WgpuBackend, lock};
use crate::cpu::profile::OpTime;
use crate::{Result, TensorError};

/// Calls and GPU time per shader label.
pub(super) type Sink = Arc<Mutex<HashMap<&'static str, (u64, Duration)>>>;

/// Most timestamp pairs per submit: wgpu caps a query set at 4096 queries.
pub(super) const MAX_PAIRS: u64 = 2048;

/// The device objects of profiling, created with the backend when the
/// device has timestamp queries.
pub(super) struct Timestamps {
    /// Two queries per dispatch of one submit (at most `slots`, capped at
    /// [`MAX_PAIRS`]; the recorder submits when they run out).
    pairs: u64,
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
}

impl Timestamps {
    pub fn new(dev: &wgpu::Device, queue: &wgpu::Queue, pairs: u64) -> Self {
        let pairs = pairs.clamp(1, MAX_PAIRS);
        let bytes = pairs * 2 * 8;
        Timestamps {
            pairs,
            set: dev.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: (pairs * 2) as u32,
            }),
            resolve: dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile resolve"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            readback: dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            period_ns: f64::from(queue.get_timestamp_period()),
        }
    }
}

/// The timestamp pairs recorded into the pending encoder.
#[derive(Default)]
pub(super) struct PendingQueries {
    labels: Vec<&'static str>,
    sink: Option<Sink>,
}

impl PendingQueries {
    /// Whether the query set has no pair left for another dispatch (the
    /// recorder submits first).
    pub fn is_full(&self, g: &Gpu) -> bool {
        g.timestamps
            .as_ref()
            .is_some_and(|ts| self.labels.len() as u64 >= ts.pairs)
    }

    /// Reserves the next pair for a dispatch of `label`: the query set and
    /// the index of its first query. `None` when the set is full (the
    /// recorder submits before that: [`PendingQueries::is_full`]).
    pub fn push(
        &mut self,
        g: &Gpu,
        sink: &Sink,
        label: &'static str,
    ) -> Result<Option<(wgpu::QuerySet, u32)>> {
        let ts = timestamps(g)?;
        let pair = self.labels.len() as u64;
        if pair >= ts.pairs {
            return Ok(None);
        }
        self.labels.push(label);
        self.sink.get_or_insert_with(|| Arc::clone(sink));
        Ok(Some((ts.set.clone(), (pair * 2) as u32)))
    }

    /// Records the resolve and the copy to the readback buffer of the
    /// pending pairs into `encoder`; the returned [`ReadBack`] reads them
    /// once the encoder is submitted.
    pub fn resolve(
        &mut self,
        g: &Gpu,
        encoder: Option<&mut wgpu::CommandEncoder>,
    ) -> Option<ReadBack> {
        let (Some(encoder), Some(ts)) = (encoder, g.timestamps.as_ref()) else {
            return None;
        };
        if self.labels.is_empty() {
            return None;
        }
        let n = self.labels.len() as u32 * 2;
        encoder.resolve_query_set(&ts.set, 0..n, &ts.resolve, 0);
        encoder.copy_buffer_to_buffer(&ts.resolve, 0, &ts.readback, 0, u64::from(n) * 8);
        Some(ReadBack {
            labels: std::mem::take(&mut self.labels),
            sink: self.sink.take()?,
        })
    }
}

fn timestamps(g: &Gpu) -> Result<&Timestamps> {
    g.timestamps.as_ref().ok_or_else(|| TensorError::Gpu {
        what: "profiling",
        detail: "the device has no timestamp queries".into(),
    })
}

/// Timestamps of one submit, to be read after it.
pub(super) struct ReadBack {
    labels: Vec<&'static str>,
    sink: Sink,
}

impl ReadBack {
    /// Waits for the device, reads the pairs and adds them to the sink.
    pub fn finish(self, be: &WgpuBackend) -> Result<()> {
        let g = &*be.gpu;
        let ts = timestamps(g)?;
        let bytes = self.labels.len() as u64 * 16;
        let (tx, rx) = std::sync::mpsc::channel();
        ts.readback
            .map_async(wgpu::MapMode::Read, ..bytes, move |r| {
                let _ = tx.send(r);
            });
        g.dev
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| TensorError::Gpu {
                what: "device poll",
                detail: e.to_string(),
            })?;
        let mapped = rx.recv().map_err(|e| TensorError::Gpu {
            what: "profile readback",
            detail: e.to_string(),
        })?;
        mapped.map_err(|e| TensorError::Gpu {
            what: "profile readback",
            detail: e.to_string(),
        })?;
        {
            let view = ts
                .readback
                .get_mapped_range(..bytes)
                .map_err(|e| TensorError::Gpu {
                    what: "profile readback",
                    detail: e.to_string(),
                })?;
            let ticks: Vec<u64> = view
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect();
            let mut sink = lock(&self.sink, "profile")?;
            for (label, pair) in self.labels.iter().zip(ticks.chunks_exact(2)) {
                let ns = pair[1].saturating_sub(pair[0]) as f64 * ts.period_ns;
                let e = sink.entry(label).or_default();
                e.0 += 1;
                e.1 += Duration::from_nanos(ns as u64);
            }
        }
        ts.readback.unmap();
        Ok(())
    }
}

impl WgpuBackend {
    /// This backend with per-shader GPU timing on (see the module docs);
    /// the device is shared with `self`. Without timestamp queries the
    /// profile stays empty (logged).
    pub fn with_profiling(mut self) -> Self {
        if self.gpu.timestamps.is_some() {
            self.profile = Some(Sink::default());
        } else {
            tracing::warn!("this adapter has no timestamp queries: no GPU profile");
        }
        self
    }

    /// GPU time per shader since the last call (slowest first); empty
    /// unless profiling is on.
    pub fn profile(&self) -> Vec<OpTime> {
        let Some(sink) = &self.profile else {
            return Vec::new();
        };
        let Ok(mut map) = sink.lock() else {
            return Vec::new();
        };
        let mut v: Vec<OpTime> = map
            .drain()
            .map(|(op, (calls, total))| OpTime { op, calls, total })
            .collect();
        v.sort_by_key(|o| std::cmp::Reverse(o.total));
        v
    }
}
