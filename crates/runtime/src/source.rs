//! Where a model comes from ([`ModelSource`]): a local folder in the
//! Hugging Face layout, a GGUF file (with an optional mmproj GGUF for
//! images), or a hub repo id: `org/name[@revision]` (a safetensors
//! checkpoint) or `org/name-GGUF:QUANT` (a GGUF repo: the `*-QUANT.gguf`
//! file and an `mmproj-*.gguf`, chosen from the repo's file list by
//! [`choose_gguf_files`]). Hub files are found in the standard Hugging Face
//! cache (`$HF_HUB_CACHE`, `$HF_HOME/hub`, or `~/.cache/huggingface/hub`),
//! else downloaded into it with `hf-hub` (progress bars on a terminal).
//! `HF_HUB_OFFLINE=1` uses the cache only; `HF_ENDPOINT` and `HF_TOKEN` are
//! honoured.

use std::path::{Path, PathBuf};

use crate::error::{Result, RuntimeError};

/// The default model.
pub const DEFAULT_REPO: &str = "LiquidAI/LFM2-VL-450M";

/// The files a checkpoint folder must hold.
const REQUIRED: [&str; 2] = ["config.json", "tokenizer.json"];

/// A resolved model location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// A folder in the Hugging Face layout (config.json, safetensors, tokenizer.json).
    Dir(PathBuf),
    /// A text GGUF and, for images, its mmproj GGUF.
    Gguf {
        model: PathBuf,
        mmproj: Option<PathBuf>,
    },
}

impl ModelSource {
    /// The folder, or the text GGUF file.
    pub fn path(&self) -> &Path {
        match self {
            ModelSource::Dir(d) => d,
            ModelSource::Gguf { model, .. } => model,
        }
    }
}

fn is_gguf_path(spec: &str) -> bool {
    spec.to_ascii_lowercase().ends_with(".gguf")
}

/// Resolves `spec` (a folder, a `.gguf` file, `org/name[@revision]`, or
/// `org/name[@revision]:QUANT` for a GGUF repo) with an optional `mmproj`
/// GGUF path (only with GGUF models; a GGUF repo's own mmproj is used when
/// none is given).
pub fn resolve_model(spec: &str, mmproj: Option<&Path>) -> Result<ModelSource> {
    if let Some(m) = mmproj
        && !m.is_file()
    {
        return Err(RuntimeError::ModelNotFound {
            spec: m.display().to_string(),
            detail: "the --mmproj file does not exist".into(),
        });
    }
    let path = Path::new(spec);
    if path.is_file() && is_gguf_path(spec) {
        return Ok(ModelSource::Gguf {
            model: path.into(),
            mmproj: mmproj.map(Path::to_path_buf),
        });
    }
    if is_gguf_path(spec) {
        return Err(RuntimeError::ModelNotFound {
            spec: spec.into(),
            detail: "no such GGUF file".into(),
        });
    }
    let gguf_repo = !path.exists() && spec.contains(':');
    if gguf_repo {
        let (repo, quant) = spec.rsplit_once(':').unwrap_or((spec, ""));
        let (model, found_mmproj) = resolve_hub_gguf(spec, repo, quant)?;
        return Ok(ModelSource::Gguf {
            model,
            mmproj: mmproj.map(Path::to_path_buf).or(found_mmproj),
        });
    }
    if mmproj.is_some() {
        return Err(RuntimeError::ModelNotFound {
            spec: spec.into(),
            detail: "--mmproj goes with a GGUF model (a .gguf file or org/name-GGUF:QUANT); \
                     a safetensors checkpoint carries its vision tower"
                .into(),
        });
    }
    resolve(spec).map(ModelSource::Dir)
}

/// Resolves `spec` (a folder path, or `org/name` with an optional
/// `@revision`) to a folder holding the checkpoint.
pub fn resolve(spec: &str) -> Result<PathBuf> {
    let path = Path::new(spec);
    if path.is_dir() {
        return check_folder(path);
    }
    let (repo, revision) = spec.split_once('@').unwrap_or((spec, "main"));
    let looks_like_repo =
        repo.split('/').count() == 2 && !repo.starts_with('.') && !repo.starts_with('/');
    if !looks_like_repo {
        return Err(RuntimeError::ModelNotFound {
            spec: spec.into(),
            detail: "no such folder, and not a hub id of the form org/name".into(),
        });
    }
    let cache = crate::options::hub_cache();
    if let Some(dir) = cached_snapshot(&cache, repo, revision)
        && check_folder(&dir).is_ok()
    {
        return Ok(dir);
    }
    let why = if crate::options::hf_hub_offline() {
        "HF_HUB_OFFLINE is set".to_string()
    } else {
        match download(repo, revision, &cache) {
            Ok(dir) => return check_folder(&dir),
            Err(e) => format!("downloading it failed: {e}"),
        }
    };
    Err(RuntimeError::ModelNotFound {
        spec: spec.into(),
        detail: format!(
            "{repo} is not in the Hugging Face cache at {} and {why}; pass `--model DIR` with a \
             local folder in the Hugging Face layout (config.json, model.safetensors, tokenizer.json)",
            cache.display()
        ),
    })
}

/// Fetches the checkpoint files of `repo` into the hub cache; returns the
/// snapshot folder.
/// The hub API's handle on `repo` at `revision`, caching into `cache`
/// (progress bars on a terminal).
fn hub_repo(
    repo: &str,
    revision: &str,
    cache: &Path,
) -> std::result::Result<hf_hub::api::sync::ApiRepo, String> {
    use std::io::IsTerminal;

    use hf_hub::api::sync::ApiBuilder;
    use hf_hub::{Repo, RepoType};
    let api = ApiBuilder::from_env()
        .with_cache_dir(cache.to_path_buf())
        .with_progress(std::io::stderr().is_terminal())
        .build()
        .map_err(|e| e.to_string())?;
    Ok(api.repo(Repo::with_revision(
        repo.into(),
        RepoType::Model,
        revision.into(),
    )))
}

fn download(repo: &str, revision: &str, cache: &Path) -> std::result::Result<PathBuf, String> {
    let r = hub_repo(repo, revision, cache)?;
    let config = r.get("config.json").map_err(|e| e.to_string())?;
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        r.get(f).map_err(|e| format!("{f}: {e}"))?;
    }
    // Optional files: not every checkpoint has each of them.
    for f in [
        "chat_template.jinja",
        "processor_config.json",
        "preprocessor_config.json",
        "generation_config.json",
        "special_tokens_map.json",
    ] {
        let _ = r.get(f);
    }
    match r.get("model.safetensors.index.json") {
        Ok(index) => {
            let text = std::fs::read_to_string(&index).map_err(|e| e.to_string())?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            let shards: std::collections::BTreeSet<&str> = v["weight_map"]
                .as_object()
                .map(|m| m.values().filter_map(|s| s.as_str()).collect())
                .unwrap_or_default();
            for s in shards {
                r.get(s).map_err(|e| format!("{s}: {e}"))?;
            }
        }
        Err(_) => {
            r.get("model.safetensors")
                .map_err(|e| format!("model.safetensors: {e}"))?;
        }
    }
    config
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "download folder".to_string())
}

/// Default quantizations tried, in order, for `org/name-GGUF:` with no
/// quant after the colon (llama.cpp's `-hf` picks Q4_K_M first too).
pub const DEFAULT_QUANTS: [&str; 3] = ["Q4_K_M", "Q4_0", "Q8_0"];

/// mmproj quantizations preferred when none matches the model's.
const MMPROJ_PREFERENCE: [&str; 4] = ["F16", "BF16", "Q8_0", "F32"];

/// The quant label of a GGUF file name: what follows the last `-`, `.` or
/// `_`-free separator before `.gguf` (`LFM2-VL-450M-Q4_0.gguf` → `Q4_0`).
fn quant_label(file: &str) -> Option<String> {
    let base = file.rsplit('/').next()?;
    let stem = base
        .strip_suffix(".gguf")
        .or_else(|| base.strip_suffix(".GGUF"))?;
    let (_, label) = stem.rsplit_once(['-', '.'])?;
    Some(label.to_ascii_uppercase())
}

fn is_mmproj(file: &str) -> bool {
    file.rsplit('/')
        .next()
        .is_some_and(|b| b.to_ascii_lowercase().starts_with("mmproj"))
}

/// Picks from a GGUF repo's file list the model file of quantization
/// `quant` (case-insensitive; empty: the first of [`DEFAULT_QUANTS`]
/// present) and an mmproj file (the same quant if there is one, else
/// F16, BF16, Q8_0, F32, else the first by name). Split files
/// (`-00001-of-0000N`) are not supported.
pub fn choose_gguf_files(
    files: &[String],
    quant: &str,
) -> std::result::Result<(String, Option<String>), String> {
    let mut ggufs: Vec<&String> = files.iter().filter(|f| is_gguf_path(f)).collect();
    ggufs.sort();
    let models: Vec<&String> = ggufs.iter().copied().filter(|f| !is_mmproj(f)).collect();
    let labels: Vec<String> = models.iter().filter_map(|f| quant_label(f)).collect();
    let wanted: Vec<String> = if quant.is_empty() {
        DEFAULT_QUANTS.iter().map(|q| q.to_string()).collect()
    } else {
        vec![quant.to_ascii_uppercase()]
    };
    let Some(q) = wanted.iter().find(|q| labels.contains(q)) else {
        let have = if labels.is_empty() {
            "no model .gguf files".to_string()
        } else {
            format!("quantizations {}", labels.join(", "))
        };
        return Err(format!(
            "no {} model file; the repo has {have}",
            if quant.is_empty() {
                DEFAULT_QUANTS.join("/")
            } else {
                quant.to_string()
            }
        ));
    };
    let matching: Vec<&String> = models
        .iter()
        .copied()
        .filter(|f| quant_label(f).as_ref() == Some(q))
        .collect();
    if matching.len() > 1 {
        return Err(format!(
            "several {q} model files ({}); pass one with --model PATH",
            matching
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mmprojs: Vec<&String> = ggufs.iter().copied().filter(|f| is_mmproj(f)).collect();
    let mmproj = std::iter::once(q.as_str())
        .chain(MMPROJ_PREFERENCE)
        .find_map(|p| {
            mmprojs
                .iter()
                .find(|f| quant_label(f).as_deref() == Some(p))
                .copied()
        })
        .or(mmprojs.first().copied());
    Ok((matching[0].clone(), mmproj.cloned()))
}

/// `org/name[@revision]:QUANT` from the cache, else downloaded.
fn resolve_hub_gguf(spec: &str, repo_rev: &str, quant: &str) -> Result<(PathBuf, Option<PathBuf>)> {
    let (repo, revision) = repo_rev.split_once('@').unwrap_or((repo_rev, "main"));
    let not_found = |detail: String| RuntimeError::ModelNotFound {
        spec: spec.into(),
        detail,
    };
    if repo.split('/').count() != 2 || repo.starts_with('.') || repo.starts_with('/') {
        return Err(not_found(
            "no such file or folder, and not a hub id of the form org/name:QUANT".into(),
        ));
    }
    let cache = crate::options::hub_cache();
    if let Some(dir) = cached_snapshot(&cache, repo, revision) {
        let files: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        if let Ok((model, mmproj)) = choose_gguf_files(&files, quant) {
            return Ok((dir.join(model), mmproj.map(|m| dir.join(m))));
        }
    }
    if crate::options::hf_hub_offline() {
        return Err(not_found(format!(
            "{repo} has no {quant} GGUF in the Hugging Face cache at {} and HF_HUB_OFFLINE is set",
            cache.display()
        )));
    }
    download_gguf(repo, revision, quant, &cache)
        .map_err(|e| not_found(format!("downloading it failed: {e}")))
}

/// Lists the repo, picks its files ([`choose_gguf_files`]) and fetches them
/// into the hub cache.
fn download_gguf(
    repo: &str,
    revision: &str,
    quant: &str,
    cache: &Path,
) -> std::result::Result<(PathBuf, Option<PathBuf>), String> {
    let r = hub_repo(repo, revision, cache)?;
    let files: Vec<String> = r
        .info()
        .map_err(|e| e.to_string())?
        .siblings
        .into_iter()
        .map(|s| s.rfilename)
        .collect();
    let (model, mmproj) = choose_gguf_files(&files, quant)?;
    let model = r.get(&model).map_err(|e| format!("{model}: {e}"))?;
    let mmproj = match mmproj {
        Some(m) => Some(r.get(&m).map_err(|e| format!("{m}: {e}"))?),
        None => None,
    };
    Ok((model, mmproj))
}

fn check_folder(dir: &Path) -> Result<PathBuf> {
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    let has_weights = dir.join("model.safetensors").is_file()
        || dir.join("model.safetensors.index.json").is_file();
    if !missing.is_empty() || !has_weights {
        let mut what = missing.join(", ");
        if !has_weights {
            what.push_str(if what.is_empty() { "" } else { ", " });
            what.push_str("model.safetensors (or model.safetensors.index.json)");
        }
        return Err(RuntimeError::ModelNotFound {
            spec: dir.display().to_string(),
            detail: format!("the folder lacks {what}"),
        });
    }
    Ok(dir.to_path_buf())
}

/// `cache/models--org--name/snapshots/<commit>` for `revision` (a branch
/// or tag through `refs/`, or a commit hash).
fn cached_snapshot(cache: &Path, repo: &str, revision: &str) -> Option<PathBuf> {
    let base = cache.join(format!("models--{}", repo.replace('/', "--")));
    let commit = std::fs::read_to_string(base.join("refs").join(revision))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| revision.to_string());
    let dir = base.join("snapshots").join(commit);
    dir.is_dir().then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_repo_names_the_folder_option() {
        let tmp = std::env::temp_dir().join(format!("lfm2vl-empty-cache-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&tmp);
        let found = cached_snapshot(&tmp, "LiquidAI/LFM2-VL-450M", "main");
        assert!(found.is_none());
        let e = resolve("./definitely/not/here").unwrap_err().to_string();
        assert!(
            e.contains("not a hub id") || e.contains("no such folder"),
            "{e}"
        );
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn gguf_repo_file_choice() {
        // LiquidAI/LFM2-VL-450M-GGUF's layout.
        let repo = names(&[
            ".gitattributes",
            "README.md",
            "LFM2-VL-450M-F16.gguf",
            "LFM2-VL-450M-Q4_0.gguf",
            "LFM2-VL-450M-Q8_0.gguf",
            "mmproj-LFM2-VL-450M-F16.gguf",
            "mmproj-LFM2-VL-450M-Q8_0.gguf",
        ]);
        let pick = |q| choose_gguf_files(&repo, q).unwrap();
        assert_eq!(
            pick("Q4_0"),
            (
                "LFM2-VL-450M-Q4_0.gguf".into(),
                Some("mmproj-LFM2-VL-450M-F16.gguf".into())
            )
        );
        // Same-quant mmproj first; case-insensitive quant.
        assert_eq!(
            pick("q8_0"),
            (
                "LFM2-VL-450M-Q8_0.gguf".into(),
                Some("mmproj-LFM2-VL-450M-Q8_0.gguf".into())
            )
        );
        // No quant: the first default present (Q4_K_M absent → Q4_0).
        assert_eq!(pick("").0, "LFM2-VL-450M-Q4_0.gguf");
        let e = choose_gguf_files(&repo, "Q5_K_M").unwrap_err();
        assert!(e.contains("Q5_K_M") && e.contains("Q4_0, Q8_0"), "{e}");
        // LFM2.5-VL-3B style: Q4_K_M + a Q8_0 mmproj in a folder.
        let repo = names(&[
            "x/LFM2.5-VL-3B-Q4_K_M.gguf",
            "x/mmproj-LFM2.5-VL-3B-Q8_0.gguf",
        ]);
        assert_eq!(
            choose_gguf_files(&repo, "").unwrap(),
            (
                "x/LFM2.5-VL-3B-Q4_K_M.gguf".into(),
                Some("x/mmproj-LFM2.5-VL-3B-Q8_0.gguf".into())
            )
        );
        // A text-only repo: no mmproj; two files of one quant are ambiguous.
        let repo = names(&["LFM2-350M-Q4_0.gguf"]);
        assert_eq!(choose_gguf_files(&repo, "Q4_0").unwrap().1, None);
        let repo = names(&["a-Q4_0.gguf", "b-Q4_0.gguf"]);
        assert!(
            choose_gguf_files(&repo, "Q4_0")
                .unwrap_err()
                .contains("several")
        );
        assert!(
            choose_gguf_files(&[], "Q4_0")
                .unwrap_err()
                .contains("no model .gguf")
        );
    }

    #[test]
    fn gguf_specs_resolve() {
        let tmp = std::env::temp_dir().join(format!("lfm2vl-gguf-spec-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let m = tmp.join("m-Q4_0.gguf");
        std::fs::write(&m, b"GGUF").unwrap();
        let spec = m.to_str().unwrap();
        assert_eq!(
            resolve_model(spec, Some(&m)).unwrap(),
            ModelSource::Gguf {
                model: m.clone(),
                mmproj: Some(m.clone())
            }
        );
        let e = resolve_model(spec, Some(&tmp.join("nope.gguf")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--mmproj"), "{e}");
        let e = resolve_model("missing.gguf", None).unwrap_err().to_string();
        assert!(e.contains("no such GGUF file"), "{e}");
        let e = resolve_model(tmp.to_str().unwrap(), Some(&m))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--mmproj goes with a GGUF model"), "{e}");
        // A cached GGUF repo snapshot is found offline-first.
        let snap = tmp
            .join("hub")
            .join("models--org--m-GGUF")
            .join("snapshots")
            .join("c1");
        std::fs::create_dir_all(&snap).unwrap();
        for f in ["m-Q4_0.gguf", "mmproj-m-F16.gguf"] {
            std::fs::write(snap.join(f), b"GGUF").unwrap();
        }
        let found = cached_snapshot(&tmp.join("hub"), "org/m-GGUF", "c1").unwrap();
        assert_eq!(found, snap);
        let _ = std::fs::remove_dir_all(&tmp);
    }

    #[test]
    fn cache_layout_is_followed() {
        let tmp = std::env::temp_dir().join(format!("lfm2vl-cache-{}", std::process::id()));
        let snap = tmp.join("models--org--m").join("snapshots").join("abc123");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(tmp.join("models--org--m").join("refs")).unwrap();
        std::fs::write(
            tmp.join("models--org--m").join("refs").join("main"),
            "abc123\n",
        )
        .unwrap();
        assert_eq!(cached_snapshot(&tmp, "org/m", "main"), Some(snap.clone()));
        assert_eq!(cached_snapshot(&tmp, "org/m", "abc123"), Some(snap));
        let e = check_folder(&tmp).unwrap_err().to_string();
        assert!(
            e.contains("config.json") && e.contains("model.safetensors"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
