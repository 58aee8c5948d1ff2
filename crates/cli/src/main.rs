//! The `lfm2vl` binary: a thin clap front end over `runtime`.
//!
//! `info` reports what this machine offers; `bench` measures the text model
//! on a synthetic checkpoint with the real shapes. Generation (`run`,
//! `chat`, `generate`, `logits`) lands with the runtime issue.

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "lfm2vl", version, about = "LFM2-VL inference engine")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Log verbosity (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the CPU tiers and GPU adapters this machine offers.
    Info,
    /// Prefill and decode speed on a synthetic checkpoint with the real shapes.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Model shapes: 450m (LFM2-350M text tower) or 1.6b (LFM2-1.2B).
    #[arg(long, default_value = "450m")]
    synthetic: String,
    /// Compute backend (only `cpu` runs the whole model today).
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// CPU worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// CPU tier (default: LFM_ISA or the best available).
    #[arg(long)]
    isa: Option<String>,
    /// Prompt tokens for the prefill measurement.
    #[arg(long, default_value_t = 512)]
    prompt: usize,
    /// Tokens for the decode measurement.
    #[arg(long, default_value_t = 128)]
    generate: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Folder for the synthetic checkpoint (reused across runs).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.cmd {
        Cmd::Info => {
            for line in runtime::system_info() {
                println!("{line}");
            }
        }
        Cmd::Bench(a) => bench(a)?,
    }
    Ok(())
}

fn bench(a: BenchArgs) -> Result<()> {
    use runtime::model::tensor::cpu::Isa;
    anyhow::ensure!(
        a.backend == "cpu",
        "--backend {}: only the CPU backend runs the whole model so far",
        a.backend
    );
    let isa = match &a.isa {
        Some(name) => Isa::require(name)?,
        None => Isa::from_env()?,
    };
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = runtime::bench::BenchOptions {
        model: runtime::synthetic::Synthetic::parse(&a.synthetic)?,
        isa,
        threads,
        prompt: a.prompt,
        generate: a.generate,
        reps: a.reps,
        dir: a
            .dir
            .unwrap_or_else(|| std::env::temp_dir().join("lfm2vl-synthetic")),
    };
    let r = runtime::bench::bench_text(&opts)?;
    let ops = |v: &[runtime::model::tensor::cpu::profile::OpTime]| {
        let total: f64 = v.iter().map(|o| o.total.as_secs_f64()).sum();
        v.iter()
            .map(|o| {
                serde_json::json!({
                    "op": o.op, "calls": o.calls,
                    "ms": (o.total.as_secs_f64() * 1e6).round() / 1e3,
                    "pct": (1000.0 * o.total.as_secs_f64() / total).round() / 10.0,
                })
            })
            .collect::<Vec<_>>()
    };
    let pp = format!("pp{}", a.prompt);
    let tg = format!("tg{}", a.generate);
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "model": r.model, "backend": r.backend, "load_s": r.load.as_secs_f64(),
                pp.clone(): r.prefill.tok_s(), tg.clone(): r.decode.tok_s(),
                "prefill_ops": ops(&r.prefill_ops), "decode_ops": ops(&r.decode_ops),
            })
        );
        return Ok(());
    }
    println!("model {} (synthetic bf16), backend {}", r.model, r.backend);
    println!("load      {:>8.2} s", r.load.as_secs_f64());
    println!(
        "{pp:<9} {:>8.1} tok/s  ({:.1} ms)",
        r.prefill.tok_s(),
        r.prefill.median.as_secs_f64() * 1e3
    );
    println!(
        "{tg:<9} {:>8.1} tok/s  ({:.2} ms/token)",
        r.decode.tok_s(),
        r.decode.median.as_secs_f64() * 1e3 / a.generate as f64
    );
    for (phase, v) in [("prefill", &r.prefill_ops), ("decode", &r.decode_ops)] {
        println!("\nwhere the {phase} time goes (one profiled run):");
        for o in ops(v) {
            println!(
                "  {:<14} {:>6} calls {:>10.2} ms {:>6.1}%",
                o["op"].as_str().unwrap_or(""),
                o["calls"],
                o["ms"].as_f64().unwrap_or(0.0),
                o["pct"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}
