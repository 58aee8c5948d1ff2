//! An opt-in per-op profiler for the CPU backend: wall time and call count
//! per op name, for "where does the time go" reports (`lfm2vl bench`).
//! Off by default; when off, an op pays one `Option` check.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Accumulated time per op.
#[derive(Default, Debug)]
pub struct Profiler {
    ops: Mutex<BTreeMap<&'static str, (u64, Duration)>>,
}

/// One row of a profile: op name, calls, total time.
#[derive(Clone, Debug)]
pub struct OpTime {
    pub op: &'static str,
    pub calls: u64,
    pub total: Duration,
}

impl Profiler {
    pub fn time<R>(&self, op: &'static str, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        let dt = t.elapsed();
        if let Ok(mut ops) = self.ops.lock() {
            let e = ops.entry(op).or_default();
            e.0 += 1;
            e.1 += dt;
        }
        r
    }

    /// The rows so far, slowest first, and a reset.
    pub fn take(&self) -> Vec<OpTime> {
        let map = self
            .ops
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default();
        let mut rows: Vec<OpTime> = map
            .into_iter()
            .map(|(op, (calls, total))| OpTime { op, calls, total })
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.total));
        rows
    }
}
