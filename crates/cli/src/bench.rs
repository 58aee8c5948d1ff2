//! `lfm2vl bench`: its arguments and its reports (single stream,
//! `--streams`, `--speculative`, `--constrained`).

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::args::weight_format;
use runtime::engine::EngineOptions;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Model shapes: 450m (LFM2-VL-450M), 1.6b (LFM2-VL-1.6B) or 3b (LFM2-VL-3B).
    #[arg(long, default_value = "450m")]
    synthetic: String,
    /// Time a real model instead of the synthetic one: a folder, X.gguf
    /// (add --mmproj for the image timings), org/name or
    /// org/name-GGUF:QUANT, as for the other commands.
    #[arg(long, conflicts_with = "synthetic")]
    model: Option<String>,
    /// The mmproj GGUF of a GGUF --model.
    #[arg(long, value_name = "FILE", requires = "model")]
    mmproj: Option<PathBuf>,
    /// Compute backend: cpu, wgpu or auto.
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// CPU worker threads (default: LFM_THREADS or all cores).
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
    dir: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Skip image512 / ttft_image512 (slow on software adapters).
    #[arg(long)]
    no_image: bool,
    /// CPU matmul weights: native (bf16), int8 (one scale per row), bf16dot
    /// (AVX512-BF16 CPUs; prompt and image activations rounded to bf16), or
    /// ggml's q8_0, q4_0, q4_k, q6_k blocks quantized at load (also on wgpu).
    #[arg(long, default_value = "native")]
    weights: String,
    /// Concurrent streams through the scheduler `serve` runs (batched
    /// decode), e.g. 1,2,4,8: per count the aggregate decode tok/s and the
    /// time to first token, instead of the single-stream figures. --prompt
    /// and --generate are per stream.
    #[arg(long, value_delimiter = ',')]
    streams: Vec<usize>,
    /// Time speculative decoding instead: a verify step of k = 1, 2, 4, 8
    /// drafts against one decode step, decode with every draft accepted (a
    /// greedy run replayed), and the acceptance-rate → speedup curve.
    #[arg(long)]
    speculative: bool,
    /// Time decode under a JSON schema against plain decode (what the
    /// token masks cost): the schema from --schema, or a default list of
    /// records.
    #[arg(long)]
    constrained: bool,
    /// The JSON schema for --constrained.
    #[arg(long, value_name = "FILE", requires = "constrained")]
    schema: Option<PathBuf>,
}

pub fn bench(a: BenchArgs) -> Result<()> {
    let backend = runtime::engine::BackendChoice::parse(&a.backend)?;
    // `--isa` wins over LFM_ISA (which is then not read at all); a backend
    // that cannot be opened does not read its variables.
    let env = EngineOptions::from_env_with_isa(backend, a.isa.as_deref())?;
    let mut cpu = env.cpu;
    if let Some(t) = a.threads {
        cpu.threads = Some(t);
    }
    cpu.weights = weight_format(&a.weights)?;
    let source = a
        .model
        .as_deref()
        .map(|m| runtime::source::resolve_model(m, a.mmproj.as_deref()))
        .transpose()?;
    let synthetic = source.is_none();
    let opts = runtime::bench::BenchOptions {
        model: runtime::synthetic::Synthetic::parse(&a.synthetic)?,
        source,
        backend,
        cpu,
        #[cfg(feature = "wgpu")]
        wgpu: env.wgpu,
        prompt: a.prompt,
        generate: a.generate,
        reps: a.reps,
        dir: a
            .dir
            .unwrap_or_else(|| std::env::temp_dir().join("lfm2vl-synthetic")),
        image: !a.no_image,
    };
    if !a.streams.is_empty() {
        return streams(&opts, &a.streams, a.json);
    }
    if a.speculative {
        return speculative(&opts, a.json);
    }
    if a.constrained {
        let schema = match &a.schema {
            Some(p) => serde_json::from_str(
                &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("--schema {}: not JSON", p.display()))?,
            None => runtime::bench_constrained::default_schema(),
        };
        return constrained(&opts, &schema, a.json);
    }
    let r = runtime::bench::bench(&opts)?;
    let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64() * 1e3);
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
                "decode_mb_per_token": r.decode_bytes as f64 / 1e6,
                "decode_gb_s": r.decode_bytes as f64 * r.decode.tok_s() / 1e9,
                "decode_host_ms_per_token": r.decode_waited.map(|w| (r.decode.median.as_secs_f64() - w.as_secs_f64()) * 1e3 / a.generate as f64),
                "image512_ms": ms(r.image512),
                "ttft_image512_ms": ms(r.ttft_image512),
                "sampling_us_per_token": r.sampling.as_secs_f64() * 1e6,
                "prefill_ops": ops(&r.prefill_ops), "decode_ops": ops(&r.decode_ops),
                "image512_ops": ops(&r.image_ops),
            })
        );
        return Ok(());
    }
    let kind = if synthetic { " (synthetic bf16)" } else { "" };
    println!("model {}{kind}, backend {}", r.model, r.backend);
    println!("load      {:>8.2} s", r.load.as_secs_f64());
    println!(
        "{pp:<9} {:>8.1} tok/s  ({:.1} ms)",
        r.prefill.tok_s(),
        r.prefill.median.as_secs_f64() * 1e3
    );
    println!(
        "{tg:<9} {:>8.1} tok/s  ({:.2} ms/token; weights {:.1} MB/token read at {:.1} GB/s)",
        r.decode.tok_s(),
        r.decode.median.as_secs_f64() * 1e3 / a.generate as f64,
        r.decode_bytes as f64 / 1e6,
        r.decode_bytes as f64 * r.decode.tok_s() / 1e9
    );
    if let Some(waited) = r.decode_waited {
        let step = r.decode.median.as_secs_f64() * 1e3 / a.generate as f64;
        let host = step - waited.as_secs_f64() * 1e3 / a.generate as f64;
        println!(
            "          host work {host:.3} ms/token of {step:.3} (the rest waits for the device)"
        );
    }
    println!(
        "sampling  {:>8.1} µs/token  (model-card preset on the host; not in {tg})",
        r.sampling.as_secs_f64() * 1e6
    );
    if let (Some(img), Some(ttft)) = (ms(r.image512), ms(r.ttft_image512)) {
        println!("image512  {img:>8.1} ms  (one 512×512 tile: vision tower + connector)");
        if let (Some(waited), Some(_)) = (r.image_waited, r.decode_waited) {
            let host = img - waited.as_secs_f64() * 1e3;
            println!(
                "          host work {host:.2} ms of {img:.2} (the rest waits for the device)"
            );
        }
        println!(
            "ttft_image512 {ttft:>4.1} ms  (image + prefill of its 256 tokens and a short prompt)"
        );
    }
    for (phase, v) in [
        ("prefill", &r.prefill_ops),
        ("decode", &r.decode_ops),
        ("image512", &r.image_ops),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    {
        let sum: f64 = v.iter().map(|o| o.total.as_secs_f64() * 1e3).sum();
        let what = if r.backend.starts_with("wgpu") {
            "GPU time per shader"
        } else {
            "time per op"
        };
        println!("\nwhere the {phase} time goes (one profiled run; {what}, {sum:.2} ms in all):");
        if phase == "decode" {
            let calls: u64 = v.iter().map(|o| o.calls).sum();
            println!(
                "  {:.1} {} per token",
                calls as f64 / a.generate.max(1) as f64,
                if r.backend.starts_with("wgpu") {
                    "dispatches"
                } else {
                    "ops"
                }
            );
        }
        for o in ops(v) {
            println!(
                "  {:<22} {:>6} calls {:>10.3} ms {:>6.1}%",
                o["op"].as_str().unwrap_or(""),
                o["calls"],
                o["ms"].as_f64().unwrap_or(0.0),
                o["pct"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

/// `bench --streams`: one line (or JSON object) per stream count.
fn streams(opts: &runtime::bench::BenchOptions, counts: &[usize], json: bool) -> Result<()> {
    let rows = runtime::bench_streams::bench_streams(opts, counts)?;
    let one = rows
        .iter()
        .find(|r| r.streams == 1)
        .map(|r| r.aggregate_tok_s);
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "streams": r.streams, "tokens": r.tokens,
                    "aggregate_tok_s": r.aggregate_tok_s,
                    "per_stream_tok_s": r.per_stream_tok_s,
                    "vs_one_stream": one.map(|o| r.aggregate_tok_s / o),
                    "ttft_mean_ms": ms(r.ttft_mean), "ttft_max_ms": ms(r.ttft_max),
                    "wall_s": r.wall.as_secs_f64(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "prompt": opts.prompt, "generate": opts.generate, "rows": v })
        );
        return Ok(());
    }
    println!(
        "streams  aggregate tok/s  vs 1 stream  per-stream tok/s  ttft mean / max (ms)  (prompt {}, generate {} per stream)",
        opts.prompt, opts.generate
    );
    for r in &rows {
        let vs = one.map_or("-".to_string(), |o| {
            format!("{:.2}x", r.aggregate_tok_s / o)
        });
        println!(
            "{:>7}  {:>15.1}  {:>11}  {:>16.1}  {:>9.1} / {:.1}",
            r.streams,
            r.aggregate_tok_s,
            vs,
            r.per_stream_tok_s,
            ms(r.ttft_mean),
            ms(r.ttft_max)
        );
    }
    Ok(())
}

/// `bench --speculative`: the verify cost, replayed drafts, the curve.
fn speculative(opts: &runtime::bench::BenchOptions, json: bool) -> Result<()> {
    use runtime::bench_speculative::{SpecRow, bench_speculative};
    let r = bench_speculative(opts, &[4, 8])?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let step = ms(r.plain_step);
    let rate = |c: &runtime::speculative::SpecCounts| c.accepted as f64 / c.drafted.max(1) as f64;
    if json {
        let row = |s: &SpecRow| {
            serde_json::json!({
                "k": s.k, "accuracy": s.accuracy, "tok_s": s.tok_s,
                "speedup": s.tok_s / r.plain_tok_s, "acceptance": rate(&s.counts),
                "steps": s.counts.steps, "drafted": s.counts.drafted, "accepted": s.counts.accepted,
            })
        };
        let verify: Vec<_> = r
            .verify
            .iter()
            .map(|v| serde_json::json!({ "k": v.k, "ms": ms(v.time), "vs_decode_step": ms(v.time) / step }))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "prompt": opts.prompt, "generate": opts.generate,
                "plain_tok_s": r.plain_tok_s, "decode_step_ms": step,
                "verify": verify,
                "replay": r.replay.iter().map(row).collect::<Vec<_>>(),
                "curve": r.curve.iter().map(row).collect::<Vec<_>>(),
            })
        );
        return Ok(());
    }
    println!(
        "plain decode {:.1} tok/s ({step:.2} ms a step; prompt {}, generate {})",
        r.plain_tok_s, opts.prompt, opts.generate
    );
    println!("verify  k drafts  ms      vs one decode step");
    for v in &r.verify {
        println!(
            "        {:>8}  {:>6.2}  {:.2}x",
            v.k,
            ms(v.time),
            ms(v.time) / step
        );
    }
    println!("every draft accepted (a greedy run replayed)");
    println!("        k  tok/s    speedup  verify steps");
    for s in &r.replay {
        println!(
            "  {:>7}  {:>7.1}  {:>6.2}x  {}",
            s.k,
            s.tok_s,
            s.tok_s / r.plain_tok_s,
            s.counts.steps
        );
    }
    println!("acceptance curve (each drafted token right with probability a)");
    println!("        k  a     accepted  tok/s    speedup");
    for s in &r.curve {
        println!(
            "  {:>7}  {:.2}  {:>7.0}%  {:>7.1}  {:>6.2}x",
            s.k,
            s.accuracy,
            100.0 * rate(&s.counts),
            s.tok_s,
            s.tok_s / r.plain_tok_s
        );
    }
    Ok(())
}

/// `bench --constrained`: decode under a schema against plain decode.
fn constrained(
    opts: &runtime::bench::BenchOptions,
    schema: &serde_json::Value,
    json: bool,
) -> Result<()> {
    let r = runtime::bench_constrained::bench_constrained(opts, schema)?;
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    let step_us = 1e6 / r.constrained_tok_s.max(1e-9);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "prompt": opts.prompt, "generate": opts.generate,
                "plain_tok_s": r.plain_tok_s, "constrained_tok_s": r.constrained_tok_s,
                "ratio": r.constrained_tok_s / r.plain_tok_s,
                "mask_us_per_token": us(r.mask_per_token),
                "advance_us_per_token": us(r.advance_per_token),
                "constrained_tokens": r.tokens,
                "compiler_build_ms": us(r.compiler_build) / 1e3,
                "schema_compile_ms": us(r.compile) / 1e3,
            })
        );
        return Ok(());
    }
    println!(
        "plain decode {:.1} tok/s, under the schema {:.1} tok/s ({:.3}x; {} tokens, prompt {}, generate {})",
        r.plain_tok_s,
        r.constrained_tok_s,
        r.constrained_tok_s / r.plain_tok_s,
        r.tokens,
        opts.prompt,
        opts.generate
    );
    let parser = us(r.mask_per_token) + us(r.advance_per_token);
    println!(
        "token mask {:.1} µs + parser advance {:.1} µs per token ({:.2}% of a {:.0} µs step); \
         compiler built once in {:.1} ms, schema compiled in {:.1} ms",
        us(r.mask_per_token),
        us(r.advance_per_token),
        100.0 * parser / step_us,
        step_us,
        us(r.compiler_build) / 1e3,
        us(r.compile) / 1e3
    );
    Ok(())
}
