//! The `lfm2vl` binary: a thin clap front end over `runtime`.
//!
//! Generation (`run`, `chat`, `generate`, `logits`, `bench`) lands with the
//! runtime issue; today the binary reports what this machine offers.

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
    }
    Ok(())
}
