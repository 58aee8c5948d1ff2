//! The `lfm2vl` binary end to end on the tiny fixture checkpoints: from PNG
//! files and chat messages to transformers' prompt ids, greedy ids and
//! logits, and the error path when no model can be found. GGUF models
//! (`tests/fixtures-gguf`, written by llama.cpp's own converter and
//! quantizer): `--model X.gguf --mmproj Y.gguf` to transformers' greedy
//! ids and text, quantized files, `info`'s tensor types, and the errors for
//! an image without an mmproj and for a truncated file.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use tests::{Case, TensorFile, Tolerance, compare, fixture_path, json_str};

fn lfm2vl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lfm2vl"));
    c.env("LFM_THREADS", "2");
    c
}

/// The case's messages with image items pointing at the fixture PNGs.
fn messages_file(case: &Case, dir: &Path) -> Result<PathBuf> {
    messages_file_at(case, dir, fixture_path)
}

/// [`messages_file`] with the case's image files under `at`'s folder.
fn messages_file_at(case: &Case, dir: &Path, at: fn(&str) -> PathBuf) -> Result<PathBuf> {
    let mut msgs = case.meta["messages"].clone();
    let files: std::collections::HashMap<String, String> = case.meta["images"]
        .as_array()
        .context("images")?
        .iter()
        .map(|i| {
            let name = i["name"].as_str().unwrap_or_default().to_string();
            let file = at(i["file"].as_str().unwrap_or_default());
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

/// A scratch folder of this test process, one per `test` (the tests run
/// in parallel and write files of the same names: a shared folder let one
/// test read a messages file that another had just truncated).
fn scratch(test: &str) -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("lfm2vl-e2e-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// `lfm2vl generate --json --greedy` on a case: transformers' prompt ids
/// and greedy ids.
fn generate_matches(name: &str, backend: &str, dir: &Path) -> Result<()> {
    generate_matches_with(name, backend, dir, &[])
}

/// [`generate_matches`] with `extra` flags.
fn generate_matches_with(name: &str, backend: &str, dir: &Path, extra: &[&str]) -> Result<()> {
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
        .args(extra)
        .output()?;
    ensure!(
        out.status.success(),
        "{name} {extra:?}: {}",
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
        "{name} on {backend} {extra:?}: generated {:?}",
        ids("generated_ids")
    );
    Ok(())
}

#[test]
fn cli_generate_json_matches_transformers_on_every_case() -> Result<()> {
    let dir = scratch("cli_generate_json_matches_transformers_on_every_case")?;
    for name in Case::names()? {
        generate_matches(&name, "cpu", &dir)?;
    }
    Ok(())
}

#[test]
fn cli_logits_writes_every_position() -> Result<()> {
    let dir = scratch("cli_logits_writes_every_position")?;
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
    let empty = scratch("cli_without_a_model_names_the_folder_option")?.join("empty-hub-cache");
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
    let bad = scratch("cli_run_streams_text_and_reports_bad_images")?.join("not-an-image.png");
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
    let dir = scratch("cli_generate_json_on_wgpu")?;
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

/// `tests/fixtures-gguf/<rel>` ('/'-separated, as in its JSON files).
fn gguf_at(rel: &str) -> PathBuf {
    rel.split('/').fold(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures-gguf"),
        |p, s| p.join(s),
    )
}

/// A case of `tests/fixtures-gguf/cases` (transformers on the checkpoint
/// the GGUF files were converted from).
fn gguf_case(name: &str) -> Result<Case> {
    Ok(Case {
        name: name.to_string(),
        meta: tests::read_json(&gguf_at(&format!("cases/{name}.json")))?,
        tensors: TensorFile::load(&gguf_at(&format!("cases/{name}.safetensors")))?,
    })
}

/// The tiny model's processor settings, which a GGUF does not carry
/// (`models/tiny-gguf/processor_config.json`: 4–16 image tokens; the
/// defaults are the published models' 64–256).
const TINY_IMAGE_TOKENS: [&str; 4] = ["--min-image-tokens", "4", "--max-image-tokens", "16"];

/// `lfm2vl generate --json --greedy` on a GGUF case: the parsed JSON, or
/// the failure with stderr.
fn gguf_generate(
    name: &str,
    model: &str,
    mmproj: Option<&str>,
    backend: &str,
    dir: &Path,
) -> Result<Value> {
    let case = gguf_case(name)?;
    let msgs = messages_file_at(&case, dir, gguf_at)?;
    let mut cmd = lfm2vl();
    cmd.args(["generate", "--json", "--greedy", "--max-new-tokens", "16"])
        .args(["--backend", backend])
        .args(TINY_IMAGE_TOKENS)
        .arg("--model")
        .arg(gguf_at(&format!("gguf/{model}.gguf")))
        .arg("--messages")
        .arg(&msgs);
    if let Some(m) = mmproj {
        cmd.arg("--mmproj").arg(gguf_at(&format!("gguf/{m}.gguf")));
    }
    let out = cmd.output()?;
    ensure!(
        out.status.success(),
        "{name} on {model} + {mmproj:?} ({backend}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn json_ids(v: &Value, k: &str) -> Vec<i64> {
    v[k].as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

/// The case's prompt ids, greedy ids and their text (decoded with the
/// source checkpoint's tokenizer.json) from `lfm2vl generate`.
fn gguf_matches(name: &str, mmproj: Option<&str>, backend: &str, dir: &Path) -> Result<()> {
    let case = gguf_case(name)?;
    let v = gguf_generate(name, "tiny-gguf-BF16", mmproj, backend, dir)?;
    ensure!(
        json_ids(&v, "prompt_ids") == case.input_ids()?,
        "{name} ({backend}): prompt ids {:?}",
        json_ids(&v, "prompt_ids")
    );
    let want = case.generated_ids()?;
    ensure!(
        json_ids(&v, "generated_ids") == want,
        "{name} ({backend}): generated {:?}, transformers {want:?}",
        json_ids(&v, "generated_ids")
    );
    let folder = gguf_at(json_str(&case.meta, "model")?);
    let tok = runtime::model::prompt::PromptBuilder::from_dir(&folder)?;
    let ids: Vec<u32> = want.iter().map(|&i| i as u32).collect();
    let text = tok.tokenizer().decode(&ids, true)?;
    ensure!(
        v["text"].as_str() == Some(text.as_str()),
        "{name} ({backend}): text {:?}, want {text:?}",
        v["text"]
    );
    Ok(())
}

#[test]
fn cli_gguf_bf16_with_mmproj_matches_transformers() -> Result<()> {
    let dir = scratch("cli_gguf_bf16_with_mmproj_matches_transformers")?;
    gguf_matches(
        "gguf_single_image",
        Some("mmproj-tiny-gguf-BF16"),
        "cpu",
        &dir,
    )?;
    // The text case with the mmproj, and without it (a plain LFM2).
    gguf_matches("gguf_text_only", Some("mmproj-tiny-gguf-BF16"), "cpu", &dir)?;
    gguf_matches("gguf_text_only", None, "cpu", &dir)
}

#[test]
fn cli_gguf_quantized_files_generate() -> Result<()> {
    let dir = scratch("cli_gguf_quantized_files_generate")?;
    for (model, mmproj) in [
        ("tiny-gguf-Q4_0", "mmproj-tiny-gguf-BF16"),
        ("tiny-gguf-Q4_K_M", "mmproj-tiny-gguf-Q8_0"),
        ("tiny-gguf-Q8_0", "mmproj-tiny-gguf-Q8_0"),
    ] {
        let v = gguf_generate("gguf_single_image", model, Some(mmproj), "cpu", &dir)?;
        let ids = json_ids(&v, "generated_ids");
        ensure!(
            !ids.is_empty() && ids.len() <= 16 && ids.iter().all(|&i| (0..1024).contains(&i)),
            "{model}: {ids:?}"
        );
        ensure!(
            json_ids(&v, "prompt_ids") == gguf_case("gguf_single_image")?.input_ids()?,
            "{model}: prompt ids"
        );
    }
    // `run` with llama.cpp's -p, streamed.
    let out = lfm2vl()
        .args(["run", "--backend", "cpu", "--max-new-tokens", "4"])
        .arg("--model")
        .arg(gguf_at("gguf/tiny-gguf-Q4_0.gguf"))
        .arg("--mmproj")
        .arg(gguf_at("gguf/mmproj-tiny-gguf-BF16.gguf"))
        .arg("--image")
        .arg(gguf_at("cases/images/small_100x150.png"))
        .args(["-p", "Describe."])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && err.contains("decode ") && err.contains("+ "),
        "{err}"
    );
    Ok(())
}

/// Runs `cmd` (with `RUST_BACKTRACE=1`, which must not matter) and expects
/// a failure with an error message: exit code 1 (a panic exits with 101),
/// no panic message, no backtrace.
fn clean_failure(cmd: &mut Command) -> Result<String> {
    // Even with the backtrace variables set (as a developer may have them):
    // only -v prints a backtrace.
    let out = cmd
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    ensure!(
        out.status.code() == Some(1),
        "exit code {:?}: {err}",
        out.status.code()
    );
    ensure!(
        err.contains("Error: ")
            && !err.contains("panicked")
            && !err.to_lowercase().contains("backtrace"),
        "{err}"
    );
    Ok(err)
}

#[test]
fn cli_gguf_image_without_mmproj_is_a_clear_error() -> Result<()> {
    let err = clean_failure(
        lfm2vl()
            .args(["run", "--backend", "cpu", "--max-new-tokens", "2"])
            .arg("--model")
            .arg(gguf_at("gguf/tiny-gguf-Q4_0.gguf"))
            .arg("--image")
            .arg(gguf_at("cases/images/small_100x150.png"))
            .args(["-p", "Describe."]),
    )?;
    ensure!(
        err.contains("without a vision tower") && err.contains("--mmproj"),
        "{err}"
    );
    // --mmproj with a safetensors folder is refused.
    let err = clean_failure(
        lfm2vl()
            .args(["run", "--backend", "cpu", "hi"])
            .arg("--model")
            .arg(gguf_at("models/tiny-gguf"))
            .arg("--mmproj")
            .arg(gguf_at("gguf/mmproj-tiny-gguf-BF16.gguf")),
    )?;
    ensure!(err.contains("--mmproj goes with a GGUF model"), "{err}");
    Ok(())
}

#[test]
fn cli_gguf_truncated_file_names_the_file() -> Result<()> {
    let dir = scratch("cli_gguf_truncated_file_names_the_file")?.join("short-gguf");
    std::fs::create_dir_all(&dir)?;
    let bytes = std::fs::read(gguf_at("gguf/tiny-gguf-BF16.gguf"))?;
    let cut = dir.join("cut-tiny-gguf-BF16.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2])?;
    let cut_mm = dir.join("cut-mmproj.gguf");
    let mm = std::fs::read(gguf_at("gguf/mmproj-tiny-gguf-BF16.gguf"))?;
    std::fs::write(&cut_mm, &mm[..1000])?;
    let good_model = gguf_at("gguf/tiny-gguf-BF16.gguf");
    for (model, mmproj, named) in [
        (&cut, None, "cut-tiny-gguf-BF16.gguf"),
        (&good_model, Some(&cut_mm), "cut-mmproj.gguf"),
    ] {
        for sub in ["run", "info"] {
            let mut cmd = lfm2vl();
            cmd.arg(sub).arg("--model").arg(model);
            if let Some(m) = mmproj {
                cmd.arg("--mmproj").arg(m);
            }
            if sub == "run" {
                cmd.args(["--backend", "cpu", "hi"]);
            }
            let err = clean_failure(&mut cmd)?;
            let short = ["outside the file", "truncated", "cannot fit"];
            ensure!(
                err.contains(named) && short.iter().any(|s| err.contains(s)),
                "{sub} {named}: {err}"
            );
        }
    }
    Ok(())
}

#[test]
fn cli_info_lists_gguf_tensor_types() -> Result<()> {
    let info = |model: &str, mmproj: Option<&str>| -> Result<String> {
        let mut cmd = lfm2vl();
        cmd.arg("info")
            .arg("--model")
            .arg(gguf_at(&format!("gguf/{model}.gguf")));
        if let Some(m) = mmproj {
            cmd.arg("--mmproj").arg(gguf_at(&format!("gguf/{m}.gguf")));
        }
        let out = cmd.output()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(text.contains("cpu tiers"), "the machine first: {text}");
        Ok(text)
    };
    let q4 = info("tiny-gguf-Q4_0", None)?;
    for want in [
        "Q4_0: 24, F32: 15, Q6_K: 1",
        "architecture lfm2",
        "MOSTLY_Q4_0",
        "vision tower: no",
        "mmproj: none",
    ] {
        ensure!(q4.contains(want), "{want:?} in {q4}");
    }
    let bf = info("tiny-gguf-BF16", Some("mmproj-tiny-gguf-Q8_0"))?;
    for want in [
        "BF16: 25, F32: 15",
        "F32: 39, Q8_0: 20",
        "architecture clip",
        "projector lfm2",
        "vision tower: yes (3 layers",
        "vocab 1024",
    ] {
        ensure!(bf.contains(want), "{want:?} in {bf}");
    }
    Ok(())
}

/// A GGUF on wgpu (its blocks decoded to f32 at upload): transformers'
/// greedy ids from the BF16 files, and the Q4_0 file generates.
#[cfg(feature = "wgpu")]
#[test]
fn cli_gguf_on_wgpu() -> Result<()> {
    if runtime::model::tensor::wgpu::gpu_or_skip().is_none() {
        return Ok(());
    }
    let dir = scratch("cli_gguf_on_wgpu")?;
    gguf_matches(
        "gguf_single_image",
        Some("mmproj-tiny-gguf-BF16"),
        "wgpu",
        &dir,
    )?;
    let v = gguf_generate(
        "gguf_single_image",
        "tiny-gguf-Q4_0",
        Some("mmproj-tiny-gguf-Q8_0"),
        "wgpu",
        &dir,
    )?;
    ensure!(!json_ids(&v, "generated_ids").is_empty(), "{v}");
    Ok(())
}

/// `bench --model X.gguf`: a real GGUF instead of the synthetic model (with
/// --mmproj the image timings too, without it none).
#[test]
fn cli_bench_times_a_gguf() -> Result<()> {
    let bench = |mmproj: Option<&str>| -> Result<Value> {
        let mut cmd = lfm2vl();
        cmd.args(["bench", "--json", "--backend", "cpu", "--prompt", "8"])
            .args(["--generate", "4", "--reps", "1"])
            .arg("--model")
            .arg(gguf_at("gguf/tiny-gguf-Q4_0.gguf"));
        if let Some(m) = mmproj {
            cmd.arg("--mmproj").arg(gguf_at(&format!("gguf/{m}.gguf")));
        }
        let out = cmd.output()?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let v = bench(Some("mmproj-tiny-gguf-BF16"))?;
    ensure!(
        v["model"]
            .as_str()
            .is_some_and(|m| m.ends_with("tiny-gguf-Q4_0.gguf"))
            && v["pp8"].as_f64().is_some_and(|r| r > 0.0)
            && v["tg4"].as_f64().is_some_and(|r| r > 0.0)
            && v["image512_ms"].as_f64().is_some(),
        "{v}"
    );
    let v = bench(None)?;
    ensure!(
        v["image512_ms"].is_null() && v["tg4"].as_f64().is_some(),
        "{v}"
    );
    Ok(())
}

/// Speculative decoding from the command line gives transformers' greedy
/// tokens (an image case and a text case; prompt lookup and a draft
/// model), and each bad setting is a one-line error, exit code 1.
#[test]
fn cli_speculative_decoding_is_exact_and_refuses_bad_settings() -> Result<()> {
    let dir = scratch("cli_speculative_decoding")?;
    let other = tests::fixture_path("models/tiny-1.6b");
    let draft = format!("draft:{}", other.display());
    for name in ["single_image", "text_only"] {
        generate_matches_with(name, "cpu", &dir, &["--speculative", "ngram"])?;
        let flags = ["--speculative", draft.as_str(), "--draft-max", "8"];
        generate_matches_with(name, "cpu", &dir, &flags)?;
    }
    // A draft whose tokenizer differs (one token renamed).
    let bad = dir.join("other-tokenizer");
    std::fs::create_dir_all(&bad)?;
    for f in std::fs::read_dir(&other)? {
        let f = f?.path();
        std::fs::copy(&f, bad.join(f.file_name().unwrap_or_default()))?;
    }
    let tok = std::fs::read_to_string(other.join("tokenizer.json"))?;
    let renamed = tok.replacen("\"<|im_end|>\"", "\"<|im_stop|>\"", 2);
    ensure!(renamed != tok, "the fixture tokenizer has no <|im_end|>");
    std::fs::write(bad.join("tokenizer.json"), renamed)?;
    let bad_draft = format!("draft:{}", bad.display());
    let cases: [(&[&str], &str); 5] = [
        (
            &["--speculative", "ngram", "--draft-max", "0"],
            "draft-max must be 1 to 8, got 0",
        ),
        (
            &["--speculative", "ngram", "--draft-max", "4000000000"],
            "draft-max must be 1 to 8",
        ),
        (&["--draft-max", "3"], "--draft-max needs --speculative"),
        (
            &["--speculative", "draft:/no/such/model"],
            "draft model /no/such/model",
        ),
        (
            &["--speculative", bad_draft.as_str()],
            "tokenizer is not the target's",
        ),
    ];
    for (flags, want) in cases {
        let err = clean_failure(
            lfm2vl()
                .args([
                    "generate",
                    "--backend",
                    "cpu",
                    "--max-new-tokens",
                    "2",
                    "-p",
                    "hi",
                ])
                .arg("--model")
                .arg(tests::fixture_path("models/tiny-450m"))
                .args(flags),
        )?;
        ensure!(err.contains(want), "{flags:?}: {err}");
    }
    Ok(())
}
