//! Attention rows (`--op attention`): the LFM2-VL attention calls, per
//! backend, ISA and thread count. Prefill and vision shapes are
//! compute-bound (reported against the f32 FMA peak); decode (one query
//! row over a long cache) reads the whole K and V once (reported against
//! the memory read bandwidth).

use anyhow::Result;
use serde_json::json;
use tensor::testing::rng::Rng;
use tensor::{Backend, DType, HostData, Shape, Tensor, op};

use super::{COLD_BYTES, Opts, round};
use benches::timing::median_secs;

/// One attention call of the models.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub name: &'static str,
    /// Query rows.
    pub t: usize,
    /// Keys (the KV cache's used rows).
    pub kv: usize,
    pub h: usize,
    pub h_kv: usize,
    pub hd: usize,
    pub causal: bool,
}

impl AttnShape {
    /// Query–key pairs scored (causal rows see their prefix only).
    fn pairs(&self) -> usize {
        if self.causal {
            (0..self.t).map(|r| self.kv - self.t + r + 1).sum()
        } else {
            self.t * self.kv
        }
    }

    /// q·k and p·v: two multiply-adds per pair, head and feature.
    pub fn flops(&self) -> f64 {
        4.0 * (self.pairs() * self.h * self.hd) as f64
    }

    /// f32 bytes read and written once: q, k, v and out.
    pub fn bytes(&self) -> f64 {
        (4 * (2 * self.t * self.h * self.hd + 2 * self.kv * self.h_kv * self.hd)) as f64
    }

    /// Decode reads far more K/V than it computes with.
    pub fn memory_bound(&self) -> bool {
        self.t == 1
    }
}

/// SigLIP2 over one 512 × 512 tile (1024 patches) for the 450M and 1.6B
/// vision towers, the text prefill of a 512-token prompt for both text
/// towers, and one decode step over a 4096-token cache.
pub const SHAPES: [AttnShape; 5] = [
    AttnShape {
        name: "vision-450m",
        t: 1024,
        kv: 1024,
        h: 12,
        h_kv: 12,
        hd: 64,
        causal: false,
    },
    AttnShape {
        name: "vision-1.6b",
        t: 1024,
        kv: 1024,
        h: 16,
        h_kv: 16,
        hd: 72,
        causal: false,
    },
    AttnShape {
        name: "prefill-450m",
        t: 512,
        kv: 512,
        h: 16,
        h_kv: 8,
        hd: 64,
        causal: true,
    },
    AttnShape {
        name: "prefill-1.6b",
        t: 512,
        kv: 512,
        h: 32,
        h_kv: 8,
        hd: 64,
        causal: true,
    },
    AttnShape {
        name: "decode-450m",
        t: 1,
        kv: 4096,
        h: 16,
        h_kv: 8,
        hd: 64,
        causal: true,
    },
];

pub struct AttnResult {
    pub median_s: f64,
    pub gflops: f64,
    pub gbps: f64,
}

/// Median time per call on `be` of samples of `batch` calls ended by one
/// sync (q, k, v with unit-scale random values, so the softmax is neither
/// flat nor one-hot).
pub fn bench_attention<B: Backend>(
    be: &B,
    s: &AttnShape,
    batch: usize,
    o: &Opts,
    rng: &mut Rng,
) -> Result<AttnResult> {
    let up = |rows: usize, heads: usize, rng: &mut Rng| -> Result<Tensor<B>> {
        let v = rng.vec(rows * heads * s.hd, 1.0);
        Ok(be.upload(HostData::f32(&v), Shape::from([rows, heads, s.hd]))?)
    };
    let q = up(s.t, s.h, rng)?;
    // Decode reads a cache that other layers' weights have pushed out of
    // the last-level cache: rotate enough K/V copies to keep it cold.
    let kv_bytes = 8 * s.kv * s.h_kv * s.hd;
    let copies = match s.memory_bound() {
        true => COLD_BYTES.div_ceil(kv_bytes).clamp(1, 64),
        false => 1,
    };
    let kvs = (0..copies)
        .map(|_| Ok((up(s.kv, s.h_kv, rng)?, up(s.kv, s.h_kv, rng)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut out = be.zeros(DType::F32, Shape::from([s.t, s.h, s.hd]))?;
    let scale = (s.hd as f32).powf(-0.5);
    let mut err = None;
    let mut i = 0;
    let secs = median_secs(o.budget, || {
        for _ in 0..batch {
            let (k, v) = &kvs[i % copies];
            i += 1;
            if let Err(e) = be.attention(op::Attention {
                q: &q,
                k,
                v,
                kv_len: s.kv,
                causal: s.causal,
                scale,
                out: &mut out,
            }) {
                err.get_or_insert(e);
            }
        }
        if let Err(e) = be.sync() {
            err.get_or_insert(e);
        }
    }) / batch as f64;
    if let Some(e) = err {
        return Err(e.into());
    }
    Ok(AttnResult {
        median_s: secs,
        gflops: s.flops() / secs / 1e9,
        gbps: s.bytes() / secs / 1e9,
    })
}

/// The header of the attention table.
pub fn header(o: &Opts) {
    if !o.json {
        println!(
            "\n{:<13} {:>5} {:>5} {:>3} {:>4} {:>3} {:<6} {:<7} {:>3} {:>10} {:>9} {:>8} {:>7}",
            "attention",
            "t",
            "kv",
            "h",
            "h_kv",
            "hd",
            "mask",
            "isa",
            "thr",
            "median_ms",
            "GFLOPS",
            "GB/s",
            "%peak"
        );
    }
}

/// One row: `pct` against the FMA peak (compute-bound shapes) or the
/// memory read bandwidth (decode), NaN where no limit is known (GPU).
pub fn report(o: &Opts, s: &AttnShape, isa: &str, threads: usize, r: &AttnResult, pct: f64) {
    let mask = if s.causal { "causal" } else { "full" };
    let bound = if s.memory_bound() {
        "memory"
    } else {
        "compute"
    };
    if o.json {
        println!(
            "{}",
            json!({
                "op": "attention", "shape": s.name, "t": s.t, "kv": s.kv, "h": s.h,
                "h_kv": s.h_kv, "hd": s.hd, "causal": s.causal, "isa": isa,
                "threads": threads, "gflops": round(r.gflops), "gbps": round(r.gbps),
                "pct_peak": round(pct), "bound": bound, "median_ms": round(r.median_s * 1e3),
            })
        );
    } else {
        println!(
            "{:<13} {:>5} {:>5} {:>3} {:>4} {:>3} {mask:<6} {isa:<7} {threads:>3} {:>10.3} {:>9.1} {:>8.1} {:>6.1}%",
            s.name,
            s.t,
            s.kv,
            s.h,
            s.h_kv,
            s.hd,
            r.median_s * 1e3,
            r.gflops,
            r.gbps,
            pct
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_pairs_count_each_rows_prefix() {
        let s = AttnShape {
            name: "x",
            t: 3,
            kv: 5,
            h: 1,
            h_kv: 1,
            hd: 1,
            causal: true,
        };
        // Rows see 3, 4 and 5 keys.
        assert_eq!(s.pairs(), 12);
        assert_eq!(AttnShape { causal: false, ..s }.pairs(), 15);
    }
}
