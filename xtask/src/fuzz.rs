//! `cargo xtask fuzz [TARGET ...|--all] [--time SECONDS] [--jobs N] [--list]`:
//! libFuzzer on the fuzz targets (`crates/fuzz-targets`, wrapped by the
//! cargo-fuzz project in `fuzz/`), with AddressSanitizer (cargo-fuzz's
//! default). Installs what it needs: the nightly toolchain (rustup) and
//! cargo-fuzz (crates.io). Each target starts from its committed seeds
//! (`fuzz/corpus/<target>/`, read only) and grows a working corpus in
//! `fuzz/target/corpus/<target>/`; a crash is written to
//! `fuzz/artifacts/<target>/` and fails the command. Default: 60 seconds a
//! target. The stable smoke run of the same targets is part of `cargo test`
//! (`crates/fuzz-targets/tests/smoke.rs`).

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{root, run_status};

/// The targets: the files of `fuzz/fuzz_targets/`.
fn targets() -> Result<Vec<String>> {
    let dir = root().join("fuzz/fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| dir.display().to_string())?
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "rs").then(|| p.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();
    Ok(names)
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

/// The nightly toolchain and cargo-fuzz, installed when missing.
fn tools() -> Result<()> {
    if !succeeds(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])) {
        eprintln!("[fuzz] installing the nightly toolchain");
        run_status({
            let mut c = Command::new("rustup");
            c.args(["toolchain", "install", "nightly", "--profile", "minimal"]);
            c
        })?;
    }
    if !succeeds(Command::new("cargo").args(["fuzz", "--version"])) {
        eprintln!("[fuzz] installing cargo-fuzz");
        run_status({
            let mut c = Command::new("cargo");
            c.args(["install", "cargo-fuzz", "--locked"]);
            c
        })?;
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<()> {
    let all = targets()?;
    let (mut time, mut jobs, mut chosen) = (60u64, 1u32, Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--list" => {
                println!("{}", all.join("\n"));
                return Ok(());
            }
            "--all" => chosen.extend(all.iter().cloned()),
            "--time" => time = it.next().context("--time SECONDS")?.parse()?,
            "--jobs" => jobs = it.next().context("--jobs N")?.parse()?,
            t if all.iter().any(|n| n == t) => chosen.push(t.to_string()),
            other => bail!(
                "unknown target or flag {other:?} (targets: {}; flags: --all, --time S, --jobs N, --list)",
                all.join(", ")
            ),
        }
    }
    if chosen.is_empty() {
        bail!(
            "usage: cargo xtask fuzz TARGET...|--all [--time SECONDS] [--jobs N]\ntargets: {}",
            all.join(", ")
        );
    }
    tools()?;
    let fuzz = root().join("fuzz");
    for t in &chosen {
        let work = fuzz.join("target/corpus").join(t);
        std::fs::create_dir_all(&work)?;
        eprintln!("[fuzz] {t}: {time} s, {jobs} job(s)");
        let mut c = Command::new("cargo");
        c.current_dir(&fuzz)
            .args(["+nightly", "fuzz", "run", "--fuzz-dir", "."])
            .arg(t)
            .arg(&work)
            .arg(fuzz.join("corpus").join(t))
            .arg("--")
            .arg(format!("-max_total_time={time}"))
            .arg("-print_final_stats=1");
        if jobs > 1 {
            // Parallel processes, each logging to fuzz-N.log.
            c.arg(format!("-jobs={jobs}"))
                .arg(format!("-workers={jobs}"));
        }
        run_status(c).with_context(|| format!("fuzz target {t} (see fuzz/artifacts/{t}/)"))?;
    }
    Ok(())
}
