//! Where a model comes from: a local folder in the Hugging Face layout, or
//! a hub repo id: found in the standard Hugging Face cache (`$HF_HUB_CACHE`,
//! `$HF_HOME/hub`, or `~/.cache/huggingface/hub`), else downloaded into it
//! with `hf-hub` (progress bars on a terminal). `HF_HUB_OFFLINE=1` uses the
//! cache only; `HF_ENDPOINT` and `HF_TOKEN` are honoured.

use std::path::{Path, PathBuf};

use crate::error::{Result, RuntimeError};

/// The default model.
pub const DEFAULT_REPO: &str = "LiquidAI/LFM2-VL-450M";

/// The files a checkpoint folder must hold.
const REQUIRED: [&str; 2] = ["config.json", "tokenizer.json"];

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
fn download(repo: &str, revision: &str, cache: &Path) -> std::result::Result<PathBuf, String> {
    use std::io::IsTerminal;

    use hf_hub::api::sync::ApiBuilder;
    use hf_hub::{Repo, RepoType};
    let api = ApiBuilder::from_env()
        .with_cache_dir(cache.to_path_buf())
        .with_progress(std::io::stderr().is_terminal())
        .build()
        .map_err(|e| e.to_string())?;
    let r = api.repo(Repo::with_revision(
        repo.into(),
        RepoType::Model,
        revision.into(),
    ));
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
