//! `cargo xtask bench-kernels [--json] [--quick] [--op LIST] [--isa LIST]
//! [--shapes LIST] [--m LIST] [--nk LIST] [--dtype LIST] [--threads LIST] [--no-gpu] [--no-cpu]
//! [--gemm-variants]`
//!
//! Matmul `y[m,n] = x[m,k]·w[n,k]ᵀ` at the LFM2-VL shapes, per ISA, thread
//! count and weight dtype, and attention at the models' shapes
//! ([`attention::SHAPES`]), plus the wgpu backend when an adapter exists.
//! First measures the machine's own limits (FMA peak per ISA and thread
//! count, memory read bandwidth); every result is reported against them:
//! GEMV (m = 1) against `mem_gbps`, GEMM against `peak_gflops`.
//!
//! Weights are "cold": enough copies rotate that they never stay in the
//! last-level cache, as in real decoding where the model is far larger.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use benches::limits::{bf16dot_peak_gflops, mem_read_gbps, peak_gflops};
use benches::timing::{Budget, median_secs};
use half::bf16;
use serde_json::json;
use tensor::cpu::{CpuBackend, Isa, IsaToken, WeightFormat};
use tensor::testing::rng::Rng;
use tensor::{Backend, DType, HostData, Shape, Tensor, op};

const MS: [usize; 4] = [1, 64, 512, 1024];
/// (n, k): LFM2 350M/1.2B projections and FFN, SigLIP2 base, the projector
/// and the tied LM head.
const NK: [(usize, usize); 8] = [
    (1024, 1024),
    (3072, 1024),
    (4608, 1024),
    (1024, 4608),
    (768, 768),
    (3072, 768),
    (2560, 3072),
    (65536, 1024),
];
/// Bytes of weights rotated per configuration: several times a 32 MiB L3.
const COLD_BYTES: usize = 256 << 20;
/// (n, k) the GPU run adds: the rest of the 450M vision tower's GEMMs
/// (stacked q | k | v and fc2; with m = 1024 for one 512 × 512 tile), the
/// shapes the tensor-core GEMM's grids are chosen for.
#[cfg(feature = "wgpu")]
const GPU_EXTRA_NK: [(usize, usize); 2] = [(2304, 768), (768, 3072)];

/// Which kernel families to time (`--op matmul,attention`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Matmul,
    Attention,
}

struct Opts {
    json: bool,
    ops: Vec<Op>,
    /// Matmul (n, k) shapes (`--nk 4304x1152,...`; [`NK`] by default).
    nk: Vec<(usize, usize)>,
    /// Attention shapes by name (`--shapes vision-450m,...`; all by default).
    shapes: Vec<&'static attention::AttnShape>,
    budget: Budget,
    isas: Vec<Isa>,
    ms: Vec<usize>,
    dtypes: Vec<DType>,
    /// Also time the bf16 dot-product weights (AVX512-BF16 CPUs).
    bf16dot: bool,
    threads: Vec<usize>,
    gpu: bool,
    cpu: bool,
    variants: bool,
}

fn list<T>(s: &str, f: impl Fn(&str) -> Option<T>) -> Result<Vec<T>> {
    s.split(',')
        .map(|p| f(p.trim()).with_context(|| format!("bad list item {p:?}")))
        .collect()
}

fn parse() -> Result<Opts> {
    let all_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut o = Opts {
        json: false,
        ops: vec![Op::Matmul, Op::Attention],
        nk: NK.to_vec(),
        shapes: attention::SHAPES.iter().collect(),
        budget: Budget::DEFAULT,
        isas: Isa::available(),
        ms: MS.to_vec(),
        dtypes: vec![DType::BF16, DType::F32],
        bf16dot: false,
        threads: if all_threads > 1 {
            vec![1, all_threads]
        } else {
            vec![1]
        },
        gpu: true,
        cpu: true,
        variants: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--json" => o.json = true,
            "--quick" => o.budget = Budget::QUICK,
            "--no-gpu" => o.gpu = false,
            "--no-cpu" => o.cpu = false,
            "--gemm-variants" => o.variants = true,
            "--op" => {
                o.ops = list(&val()?, |s| match s {
                    "matmul" => Some(Op::Matmul),
                    "attention" => Some(Op::Attention),
                    _ => None,
                })?
            }
            "--shapes" => {
                o.shapes = list(&val()?, |s| attention::SHAPES.iter().find(|a| a.name == s))?
            }
            "--isa" => o.isas = list(&val()?, |s| Isa::require(s).ok())?,
            "--nk" => {
                o.nk = list(&val()?, |s| {
                    let (n, k) = s.split_once('x')?;
                    Some((n.parse().ok()?, k.parse().ok()?)).filter(|&(n, k)| n > 0 && k > 0)
                })?
            }
            "--m" => o.ms = list(&val()?, |s| s.parse().ok())?,
            "--threads" => o.threads = list(&val()?, |s| s.parse().ok().filter(|&t| t > 0))?,
            "--dtype" => {
                let v = val()?;
                o.bf16dot = v.split(',').any(|d| d.trim() == "bf16dot");
                let plain: Vec<_> = v.split(',').filter(|d| d.trim() != "bf16dot").collect();
                o.dtypes = if plain.is_empty() {
                    Vec::new()
                } else {
                    list(&plain.join(","), |s| match s {
                        "bf16" => Some(DType::BF16),
                        "f32" => Some(DType::F32),
                        "f16" => Some(DType::F16),
                        "i8" | "int8" => Some(DType::I8),
                        "q8_0" => Some(DType::Q8_0),
                        "q4_0" => Some(DType::Q4_0),
                        "q4_k" => Some(DType::Q4K),
                        "q6_k" => Some(DType::Q6K),
                        _ => None,
                    })?
                }
            }
            "-h" | "--help" => {
                println!(
                    "bench-kernels [--json] [--quick] [--op matmul,attention] [--shapes vision-450m,...] [--isa scalar,avx2,avx512,neon] [--m 1,64,512,1024] [--nk 3072x1024,...] \
                     [--dtype bf16,f32,f16,i8,q8_0,q4_0,q4_k,q6_k,bf16dot] [--threads 1,2] [--no-gpu] [--no-cpu] [--gemm-variants]"
                );
                std::process::exit(0);
            }
            _ => bail!("unknown argument {a:?} (see --help)"),
        }
    }
    Ok(o)
}

fn emit(o: &Opts, v: serde_json::Value) {
    if o.json {
        println!("{v}");
    }
}

/// Weights of shape [n, k] in `dtype`, enough copies to defeat the cache.
fn cold_weights<B: Backend>(
    be: &B,
    dtype: DType,
    n: usize,
    k: usize,
    rng: &mut Rng,
) -> Result<Vec<Tensor<B>>> {
    let bytes = dtype.bytes_for(n * k);
    let copies = COLD_BYTES.div_ceil(bytes).clamp(1, 64);
    let src = rng.vec(n * k, 0.05);
    let mut out = Vec::with_capacity(copies);
    for _ in 0..copies {
        let t = match dtype {
            DType::BF16 => {
                let v: Vec<bf16> = src.iter().map(|&x| bf16::from_f32(x)).collect();
                be.upload_weight(HostData::bf16(&v), Shape::from([n, k]))?
            }
            DType::F16 => {
                let v: Vec<half::f16> = src.iter().map(|&x| half::f16::from_f32(x)).collect();
                be.upload_weight(HostData::f16(&v), Shape::from([n, k]))?
            }
            // bf16 quantized by a backend made `with_weight_format(Int8)`,
            // or f32 by one made with a block format.
            DType::I8 => {
                let v: Vec<bf16> = src.iter().map(|&x| bf16::from_f32(x)).collect();
                be.upload_weight(HostData::bf16(&v), Shape::from([n, k]))?
            }
            _ => be.upload_weight(HostData::f32(&src), Shape::from([n, k]))?,
        };
        out.push(t);
    }
    Ok(out)
}

struct Result1 {
    median_s: f64,
    gflops: f64,
    gbps: f64,
}

/// Times `x[m, k] · wᵀ` cycling over the cold weights `ws` (`wbytes`
/// each), `(m, n, k)` = `mnk`.
fn bench_one<B: Backend>(
    be: &B,
    ws: &[Tensor<B>],
    wbytes: usize,
    (m, n, k): (usize, usize, usize),
    budget: Budget,
    rng: &mut Rng,
) -> Result<Result1> {
    let x = be.upload(HostData::f32(&rng.vec(m * k, 1.0)), Shape::from([m, k]))?;
    let mut y = be.zeros(DType::F32, Shape::from([m, n]))?;
    let mut i = 0;
    let mut err = None;
    // Inside `enter`, as the model's forward passes run their ops.
    let secs = be.enter(|| {
        median_secs(budget, || {
            let w = &ws[i % ws.len()];
            i += 1;
            if let Err(e) = be
                .matmul(op::Matmul {
                    x: &x,
                    w,
                    bias: None,
                    out: &mut y,
                })
                .and_then(|_| be.sync())
            {
                err.get_or_insert(e);
            }
        })
    });
    if let Some(e) = err {
        return Err(e.into());
    }
    let flops = 2.0 * (m * n * k) as f64;
    let bytes = (wbytes + 4 * (m * k + m * n)) as f64;
    Ok(Result1 {
        median_s: secs,
        gflops: flops / secs / 1e9,
        gbps: bytes / secs / 1e9,
    })
}

fn main() -> Result<()> {
    let o = parse()?;
    let mut rng = Rng::for_case("bench-kernels", "matmul");

    // Machine limits.
    let mut peak: HashMap<(Isa, usize), f64> = HashMap::new();
    let mut mem: HashMap<usize, f64> = HashMap::new();
    let cpu_threads: &[usize] = if o.cpu { &o.threads } else { &[] };
    for &t in cpu_threads {
        let g = mem_read_gbps(t);
        mem.insert(t, g);
        emit(
            &o,
            json!({"op": "mem_read", "threads": t, "mem_gbps": round(g)}),
        );
        for &isa in &o.isas {
            let p = peak_gflops(IsaToken::new(isa).expect("--isa checked availability"), t);
            peak.insert((isa, t), p);
            emit(
                &o,
                json!({"op": "fma_peak", "isa": isa.name(), "threads": t, "peak_gflops": round(p)}),
            );
        }
    }
    // The vdpbf16ps peak, where --dtype bf16dot can use it.
    let mut bf16_peak: HashMap<usize, f64> = HashMap::new();
    let bf16_tok = tensor::cpu::dispatch::Avx512Bf16::try_new()
        .filter(|_| o.bf16dot && o.isas.contains(&Isa::Avx512));
    for &t in cpu_threads {
        if let Some(tok) = bf16_tok {
            let p = bf16dot_peak_gflops(tok, t);
            bf16_peak.insert(t, p);
            emit(
                &o,
                json!({"op": "bf16dot_peak", "threads": t, "peak_gflops": round(p)}),
            );
        }
    }
    if o.bf16dot && bf16_tok.is_none() && !o.json {
        println!("bf16dot: needs --isa avx512 on a CPU with AVX512-BF16; skipped");
    }
    if !o.json {
        if o.cpu {
            println!("machine limits:");
        }
        for &t in cpu_threads {
            print!("  threads {t}: mem_read {:.1} GB/s", mem[&t]);
            for &isa in &o.isas {
                print!(", {isa} peak {:.1} GFLOPS", peak[&(isa, t)]);
            }
            if let Some(p) = bf16_peak.get(&t) {
                print!(", bf16dot peak {p:.1} GFLOPS");
            }
            println!();
        }
    }

    let matmul = o.ops.contains(&Op::Matmul);
    if matmul && !o.json {
        println!(
            "\n{:<7} {:>5} {:>6} {:>5} {:<5} {:<7} {:>3} {:>10} {:>9} {:>8} {:>7}",
            "op", "m", "n", "k", "dtype", "isa", "thr", "median_ms", "GFLOPS", "GB/s", "%peak"
        );
    }
    for &t in cpu_threads.iter().filter(|_| matmul) {
        for &isa in &o.isas {
            let native = CpuBackend::with(isa, t)?;
            for &dtype in &o.dtypes {
                let be = match dtype {
                    DType::I8 => native.clone().with_weight_format(WeightFormat::Int8)?,
                    DType::Q8_0 => native.clone().with_weight_format(WeightFormat::Q8_0)?,
                    DType::Q4_0 => native.clone().with_weight_format(WeightFormat::Q4_0)?,
                    DType::Q4K => native.clone().with_weight_format(WeightFormat::Q4K)?,
                    DType::Q6K => native.clone().with_weight_format(WeightFormat::Q6K)?,
                    _ => native.clone(),
                };
                for &(n, k) in &o.nk {
                    let ws = cold_weights(&be, dtype, n, k, &mut rng)?;
                    for &m in &o.ms {
                        // The scalar tier is the correctness twin, not a fast path:
                        // keep its large GEMMs out of the default run.
                        if isa == Isa::Scalar && m > 64 {
                            continue;
                        }
                        let wbytes = dtype.bytes_for(n * k);
                        let r = bench_one(&be, &ws, wbytes, (m, n, k), o.budget, &mut rng)?;
                        let (bound, pct) = if m == 1 {
                            ("memory", 100.0 * r.gbps / mem[&t])
                        } else {
                            ("compute", 100.0 * r.gflops / peak[&(isa, t)])
                        };
                        let row = MatmulRow {
                            op: "matmul",
                            mnk: (m, n, k),
                            dtype: dtype.name(),
                            isa: isa.name(),
                            threads: t,
                        };
                        report(&o, &row, &r, bound, pct);
                    }
                }
            }
            if o.bf16dot && isa == Isa::Avx512 && bf16_tok.is_some() {
                bench_bf16dot(&o, &native, t, (mem[&t], bf16_peak[&t]), &mut rng)?;
            }
        }
    }

    if o.ops.contains(&Op::Attention) && o.cpu {
        attention::header(&o);
        for &t in cpu_threads {
            for &isa in &o.isas {
                let be = CpuBackend::with(isa, t)?;
                for &s in &o.shapes {
                    // The scalar tier is the correctness twin: decode only.
                    if isa == Isa::Scalar && !s.memory_bound() {
                        continue;
                    }
                    let r = attention::bench_attention(&be, s, 1, &o, &mut rng)?;
                    let pct = if s.memory_bound() {
                        100.0 * r.gbps / mem[&t]
                    } else {
                        100.0 * r.gflops / peak[&(isa, t)]
                    };
                    attention::report(&o, s, isa.name(), t, &r, pct);
                }
                // bf16 dot products (the bf16dot format's prompts and images;
                // its decode stays f32), against the vdpbf16ps peak.
                if o.bf16dot && isa == Isa::Avx512 && bf16_tok.is_some() {
                    let be = be.clone().with_weight_format(WeightFormat::Bf16Dot)?;
                    for &s in o.shapes.iter().filter(|s| !s.memory_bound()) {
                        let r = attention::bench_attention(&be, s, 1, &o, &mut rng)?;
                        let pct = 100.0 * r.gflops / bf16_peak[&t];
                        attention::report(&o, s, "bf16dot", t, &r, pct);
                    }
                }
            }
        }
    }

    #[cfg(feature = "wgpu")]
    if o.gpu {
        gpu::run(&o, &mut rng)?;
    }
    Ok(())
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The bf16 dot-product rows (`--dtype bf16dot`): bf16 weights in k-pair
/// panels, % of the measured `vdpbf16ps` peak when compute-bound.
fn bench_bf16dot(
    o: &Opts,
    native: &CpuBackend,
    t: usize,
    (mem, peak): (f64, f64),
    rng: &mut Rng,
) -> Result<()> {
    let be = native.clone().with_weight_format(WeightFormat::Bf16Dot)?;
    for &(n, k) in &o.nk {
        let ws = cold_weights(&be, DType::BF16, n, k, rng)?;
        for &m in &o.ms {
            let r = bench_one(&be, &ws, 2 * n * k, (m, n, k), o.budget, rng)?;
            let (bound, pct) = if m == 1 {
                ("memory", 100.0 * r.gbps / mem)
            } else {
                ("compute", 100.0 * r.gflops / peak)
            };
            let row = MatmulRow {
                op: "matmul",
                mnk: (m, n, k),
                dtype: "bf16dot",
                isa: "avx512",
                threads: t,
            };
            report(o, &row, &r, bound, pct);
        }
    }
    Ok(())
}

/// What one matmul row of the report ran, and where.
struct MatmulRow<'a> {
    /// `matmul`, or the forced kernel's name.
    op: &'a str,
    mnk: (usize, usize, usize),
    dtype: &'a str,
    /// The CPU tier or the GPU adapter.
    isa: &'a str,
    /// CPU threads (0 on a GPU).
    threads: usize,
}

/// Prints one matmul row: `r`, and `pct` of the `bound` (memory or compute)
/// peak.
fn report(o: &Opts, row: &MatmulRow<'_>, r: &Result1, bound: &str, pct: f64) {
    let &MatmulRow {
        op,
        mnk: (m, n, k),
        dtype,
        isa,
        threads,
    } = row;
    if o.json {
        println!(
            "{}",
            json!({
                "op": op, "m": m, "n": n, "k": k, "dtype": dtype, "isa": isa,
                "threads": threads, "gflops": round(r.gflops), "gbps": round(r.gbps),
                "pct_peak": round(pct), "bound": bound, "median_ms": round(r.median_s * 1e3),
            })
        );
    } else {
        println!(
            "{op:<7} {m:>5} {n:>6} {k:>5} {dtype:<7} {isa:<7} {threads:>3} {:>10.3} {:>9.1} {:>8.1} {:>6.1}%",
            r.median_s * 1e3,
            r.gflops,
            r.gbps,
            pct
        );
    }
}

mod attention;
#[cfg(feature = "wgpu")]
mod gpu;
