//! The `lfm2vl` binary end to end on the tiny fixture checkpoints: from PNG
//! files and chat messages to transformers' prompt ids, greedy ids and
//! logits, and the error path when no model can be found.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use tests::{Case, TensorFile, Tolerance, compare, fixture_path};

fn lfm2vl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lfm2vl"));
    c.env("LFM_THREADS", "2");
    c
}

/// The case's messages with image items pointing at the fixture PNGs.
fn messages_file(case: &Case, dir: &Path) -> Result<PathBuf> {
    let mut msgs = case.meta["messages"].clone();
    let files: std::collections::HashMap<String, String> = case.meta["images"]
        .as_array()
        .context("images")?
        .iter()
        .map(|i| {
            let name = i["name"].as_str().unwrap_or_default().to_string();
            let file = fixture_path(i["file"].as_str().unwrap_or_default());
            (name, file.display().to_string())
        })
        .collect();
    for m in msgs.as_array_mut().context("messages")? {
        if let Some(parts) = m["content"].as_array_mut() {
            for p in parts {
                if p["type"] == "image"
                    && let Some(name) = p["image"].as_str()
                {
                    p["image"] = Value::String(files[name].clone());
                }
            }
        }
    }
    let path = dir.join(format!("{}.json", case.name));
    std::fs::write(&path, serde_json::to_vec(&msgs)?)?;
    Ok(path)
}

fn scratch() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("lfm2vl-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// `lfm2vl generate --json --greedy` on a case: transformers' prompt ids
/// and greedy ids.
fn generate_matches(name: &str, backend: &str, dir: &Path) -> Result<()> {
    let case = Case::load(name)?;
    let msgs = messages_file(&case, dir)?;
    let out = lfm2vl()
        .args([
            "generate",
            "--json",
            "--greedy",
            "--max-new-tokens",
            "16",
            "--backend",
            backend,
        ])
        .arg("--model")
        .arg(case.model_dir()?)
        .arg("--messages")
        .arg(&msgs)
        .output()?;
    ensure!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let ids = |k: &str| -> Vec<i64> {
        v[k].as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default()
    };
    ensure!(
        ids("prompt_ids") == case.input_ids()?,
        "{name} on {backend}: prompt ids differ"
    );
    ensure!(
        ids("generated_ids") == case.generated_ids()?,
        "{name} on {backend}: generated {:?}",
        ids("generated_ids")
    );
    Ok(())
}

#[test]
fn cli_generate_json_matches_transformers_on_every_case() -> Result<()> {
    let dir = scratch()?;
    for name in Case::names()? {
        generate_matches(&name, "cpu", &dir)?;
    }
    Ok(())
}

#[test]
fn cli_logits_writes_every_position() -> Result<()> {
    let dir = scratch()?;
    for name in ["two_images", "multi_turn"] {
        let case = Case::load(name)?;
        let msgs = messages_file(&case, &dir)?;
        let out_file = dir.join(format!("{name}.logits.safetensors"));
        let out = lfm2vl()
            .args(["logits", "--backend", "cpu"])
            .arg("--model")
            .arg(case.model_dir()?)
            .arg("--messages")
            .arg(&msgs)
            .arg("--out")
            .arg(&out_file)
            .output()?;
        ensure!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let f = TensorFile::load(&out_file)?;
        ensure!(
            f.i64("input_ids")? == case.input_ids()?,
            "{name}: input_ids"
        );
        let r = compare(
            &format!("{name} logits"),
            &f.f32("logits")?,
            &case.f32("logits")?,
            Tolerance::abs(1e-4),
        )?;
        println!("{r}");
    }
    Ok(())
}

#[test]
fn cli_without_a_model_names_the_folder_option() -> Result<()> {
    let empty = scratch()?.join("empty-hub-cache");
    std::fs::create_dir_all(&empty)?;
    let out = lfm2vl()
        .env("HF_HUB_CACHE", &empty)
        .args(["run", "hello"])
        .output()?;
    ensure!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        err.contains("--model DIR") && err.contains("LiquidAI/LFM2-VL-450M"),
        "{err}"
    );
    let out = lfm2vl()
        .args(["run", "--model", "/nonexistent/folder", "hello"])
        .output()?;
    ensure!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not found"));
    Ok(())
}

#[test]
fn cli_run_streams_text_and_reports_bad_images() -> Result<()> {
    let case = Case::load("single_image")?;
    let img = fixture_path("cases/images/small_100x150.png");
    let out = lfm2vl()
        .args(["run", "--backend", "cpu", "--max-new-tokens", "5"])
        .arg("--model")
        .arg(case.model_dir()?)
        .arg("--image")
        .arg(&img)
        .arg("Describe.")
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        String::from_utf8_lossy(&out.stderr).contains("decode"),
        "stats on stderr"
    );
    let bad = scratch()?.join("not-an-image.png");
    std::fs::write(&bad, b"this is not a PNG")?;
    let out = lfm2vl()
        .args(["run", "--backend", "cpu"])
        .arg("--model")
        .arg(case.model_dir()?)
        .arg("--image")
        .arg(&bad)
        .arg("Describe.")
        .output()?;
    ensure!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(err.contains("not-an-image.png"), "{err}");
    Ok(())
}

/// `--backend wgpu` runs the whole model on the GPU (lavapipe in CI) and
/// gives transformers' prompt ids and greedy ids.
#[cfg(feature = "wgpu")]
#[test]
fn cli_generate_json_on_wgpu() -> Result<()> {
    if runtime::model::tensor::wgpu::gpu_or_skip().is_none() {
        return Ok(());
    }
    let dir = scratch()?;
    for name in ["two_images", "text_only_1.6b"] {
        generate_matches(name, "wgpu", &dir)?;
    }
    Ok(())
}

/// `chat --image IMG "prompt"` answers the first turn, then reads stdin
/// until EOF; a bad sampling flag is refused up front.
#[test]
fn cli_chat_first_turn_from_flags_then_stdin() -> Result<()> {
    use std::io::Write;
    let case = Case::load("single_image")?;
    let img = fixture_path("cases/images/small_100x150.png");
    let mut child = lfm2vl()
        .args(["chat", "--backend", "cpu", "--max-new-tokens", "4"])
        .arg("--model")
        .arg(case.model_dir()?)
        .arg("--image")
        .arg(&img)
        .arg("Describe.")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(b"And now?\n/reset\nHello\n")?;
    let out = child.wait_with_output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "{err}");
    ensure!(
        err.matches("decode").count() == 3,
        "three turns answered: {err}"
    );
    ensure!(err.contains("conversation reset"), "{err}");
    let out = lfm2vl()
        .args(["run", "--backend", "cpu", "--repetition-penalty", "0"])
        .arg("--model")
        .arg(case.model_dir()?)
        .arg("hi")
        .output()?;
    ensure!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("repetition_penalty")
    );
    Ok(())
}
