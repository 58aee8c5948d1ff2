//! `cargo xtask <command>`: project automation with std::process only.
//!
//! - `bench-kernels [--json] [...]`: the kernel microbenchmarks (release build).
//! - `test-neon`: the tensor crate's tests for aarch64 under qemu-aarch64.
//! - `fixtures [--check]`: regenerate the transformers parity fixtures.
//! - `fixtures-gguf [--check]`: regenerate the GGUF fixtures (llama.cpp's
//!   converter, quantizer and logits on a tiny checkpoint).
//! - `tidy`: source rules beyond rustfmt and clippy (file length, where the
//!   environment is read, SAFETY comments); see `tidy.rs`.
//! - `header [--check]`: write (or verify) `crates/capi/include/lfm2vl.h`
//!   with cbindgen.
//! - `fuzz TARGET...|--all [--time S]`: libFuzzer on the fuzz targets
//!   (installs nightly and cargo-fuzz when missing); see `fuzz.rs`.

mod fixtures;
mod fixtures_gguf;
mod fuzz;
mod header;
mod tidy;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match cmd.as_str() {
        "bench-kernels" => bench_kernels(&rest),
        "test-neon" => test_neon(&rest),
        "fixtures" => fixtures::run(&rest),
        "fixtures-gguf" => fixtures_gguf::run(&rest),
        "tidy" => tidy::run(&rest),
        "header" => header::run(&rest),
        "fuzz" => fuzz::run(&rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 bench-kernels [--json] [--quick]   matmul microbenchmarks (release build)\n  \
                 test-neon                           tensor tests for aarch64 under qemu-aarch64\n  \
                 fixtures [--check]                  regenerate (or verify) the parity fixtures\n  \
                 fixtures-gguf [--check]             regenerate (or verify) the GGUF fixtures\n  \
                 tidy                                file length, env reads, SAFETY comments\n  \
                 header [--check]                    write (or verify) the C header with cbindgen\n  \
                 fuzz TARGET...|--all [--time S]     libFuzzer on the fuzz targets (nightly)"
            );
            if cmd.is_empty() || cmd == "help" || cmd == "--help" {
                Ok(())
            } else {
                bail!("unknown command {cmd:?}")
            }
        }
    }
}

/// The workspace root (the parent of this crate's directory).
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

pub(crate) fn run_status(mut c: Command) -> Result<()> {
    let desc = format!("{c:?}");
    let st = c.status().with_context(|| format!("spawning {desc}"))?;
    if !st.success() {
        bail!("{desc} failed with {st}");
    }
    Ok(())
}

fn bench_kernels(rest: &[String]) -> Result<()> {
    let mut c = cargo();
    c.args([
        "run",
        "--quiet",
        "--release",
        "-p",
        "benches",
        "--bin",
        "bench-kernels",
        "--",
    ]);
    c.args(rest);
    run_status(c)
}

fn test_neon(rest: &[String]) -> Result<()> {
    let target = "aarch64-unknown-linux-gnu";
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(target))
        .unwrap_or(false);
    if !installed {
        bail!("rustup target {target} is missing: run `rustup target add {target}`");
    }
    let mut c = cargo();
    c.args([
        "test",
        "-p",
        "tensor",
        "--no-default-features",
        "--target",
        target,
    ]);
    c.args(rest);
    // The tests check that NEON, and its dot-product bodies (qemu's default
    // `max` CPU has the extension), were really exercised.
    c.env("LFM_EXPECT_ISA", "scalar,neon,dotprod");
    run_status(c)
}
