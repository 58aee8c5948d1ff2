//! A model's files opened once, before a backend is chosen
//! ([`ModelFiles`]): a safetensors folder, or a text GGUF with an optional
//! mmproj GGUF. From them come the prompt machinery, the image-processor
//! settings, the model on a backend, and `lfm2vl info`'s description.

use std::collections::BTreeMap;
use std::path::PathBuf;

use model::ModelConfig;
use model::preprocess::{ProcessorConfig, ProcessorOverrides};
use model::prompt::PromptBuilder;
use model::weights::Checkpoint;
use model::weights::gguf::{GgufFile, GgufWeights, config as gguf_config};
use model::{Lfm2Vl, ModelError};
use tensor::Backend;

use crate::error::Result;
use crate::source::ModelSource;

/// The opened files of a [`ModelSource`].
pub enum ModelFiles {
    /// A folder in the Hugging Face layout (read when the model loads).
    Dir(PathBuf),
    /// A text GGUF and, if given, its mmproj GGUF, mapped and checked.
    Gguf(Box<GgufWeights>),
}

impl ModelFiles {
    /// Opens `source`: a folder is only remembered; GGUF files are mapped
    /// and their headers, metadata and tensor tables checked (a damaged or
    /// truncated file is a [`ModelError::Gguf`] naming it).
    pub fn open(source: &ModelSource) -> Result<Self> {
        Ok(match source {
            ModelSource::Dir(d) => ModelFiles::Dir(d.clone()),
            ModelSource::Gguf { model, mmproj } => {
                ModelFiles::Gguf(Box::new(GgufWeights::open(model, mmproj.as_deref())?))
            }
        })
    }

    /// The model config: `config.json`, or the GGUF metadata
    /// (`model::weights::gguf::config::model_config`).
    pub fn config(&self) -> Result<ModelConfig> {
        Ok(match self {
            ModelFiles::Dir(d) => ModelConfig::from_file(&d.join("config.json"))?,
            ModelFiles::Gguf(w) => gguf_config::model_config(w)?,
        })
    }

    /// The chat template and tokenizer: the folder's files, or the text
    /// GGUF's `tokenizer.*` metadata.
    pub fn prompt(&self) -> Result<PromptBuilder> {
        let p = match self {
            ModelFiles::Dir(d) => PromptBuilder::from_dir(d),
            ModelFiles::Gguf(w) => PromptBuilder::from_gguf(w.text()),
        };
        Ok(p.map_err(ModelError::from)?)
    }

    /// The image-processor settings with `overrides` over them, validated.
    ///
    /// A folder: its `processor_config.json` / `preprocessor_config.json`.
    /// A GGUF model: an mmproj stores no processor settings of its own
    /// beyond what the vision hparams imply, so the base is
    /// [`ProcessorConfig::default`] (transformers' `Lfm2VlImageProcessor`
    /// defaults for the published LFM2-VL models, which llama.cpp's mtmd
    /// also hardcodes: 64–256 image tokens, 2–10 tiles of 512 px, a
    /// thumbnail, tolerance 2.0), with the mmproj's `clip.vision.patch_size`,
    /// `clip.vision.projector.scale_factor`, `image_mean` / `image_std` (and
    /// tile counts or pixel limits where present) over it
    /// (`gguf::config::processor_overrides`). `clip.vision.image_size` is
    /// not used: the converter writes a constant for LFM2, whose NaFlex
    /// tower has no fixed input size. A model converted from a checkpoint
    /// with other processor settings needs them as `overrides` (e.g.
    /// `--min-image-tokens` / `--max-image-tokens`).
    pub fn processor(&self, overrides: &ProcessorOverrides) -> Result<ProcessorConfig> {
        let cfg = match self {
            ModelFiles::Dir(d) => {
                return Ok(ProcessorConfig::load(d, overrides).map_err(ModelError::from)?);
            }
            ModelFiles::Gguf(w) => {
                let from_mmproj = match w.mmproj() {
                    Some(mm) => gguf_config::processor_overrides(mm)?,
                    None => ProcessorOverrides::default(),
                };
                overrides.apply(from_mmproj.apply(ProcessorConfig::default()))
            }
        };
        cfg.validate().map_err(ModelError::from)?;
        Ok(cfg)
    }

    /// Loads the model on `be`. GGUF block-quantized tensors are uploaded
    /// as stored; float tensors follow the backend's weight format.
    pub fn load<B: Backend>(&self, be: &B) -> Result<Lfm2Vl<B>> {
        Ok(match self {
            ModelFiles::Dir(d) => Lfm2Vl::load(d, be)?,
            ModelFiles::Gguf(w) => Lfm2Vl::from_source(gguf_config::model_config(w)?, &**w, be)?,
        })
    }

    /// What `lfm2vl info --model` prints: the files, the model's shapes,
    /// whether it has a vision tower, and the tensor types per file (for a
    /// GGUF also its format version, architecture, name and file type).
    pub fn describe(&self) -> Result<Vec<String>> {
        let cfg = self.config()?;
        let mut out = Vec::new();
        match self {
            ModelFiles::Dir(d) => {
                out.push(format!("model: {} (safetensors folder)", d.display()));
                let ckpt = Checkpoint::open_dir(d)?;
                let mut counts: BTreeMap<String, (usize, u64)> = BTreeMap::new();
                for name in ckpt.names() {
                    let t = ckpt.get(name)?;
                    let e = counts.entry(t.dtype.to_string()).or_insert((0, 0));
                    e.0 += 1;
                    e.1 += t.bytes.len() as u64;
                }
                out.push(format!("  tensor types: {}", type_counts(&counts)));
            }
            ModelFiles::Gguf(w) => {
                out.extend(describe_gguf("model", w.text()));
                match w.mmproj() {
                    Some(mm) => out.extend(describe_gguf("mmproj", mm)),
                    None => out.push(
                        "mmproj: none (text only; pass --mmproj mmproj-….gguf for images)".into(),
                    ),
                }
            }
        }
        let t = &cfg.text;
        let attn = t.attention_layers.iter().filter(|&&a| a).count();
        out.push(format!(
            "model_type: {}; text: {} layers ({} attention, {} conv), hidden {}, heads {}/{} kv, \
             ffn {}, vocab {}, context {}",
            cfg.model_type,
            t.num_layers,
            attn,
            t.num_layers - attn,
            t.hidden_size,
            t.num_heads,
            t.num_kv_heads,
            t.ffn_dim(),
            t.vocab_size,
            t.max_position_embeddings
        ));
        out.push(match &cfg.vision {
            Some(v) => {
                let vc = model::vision::VisionConfig::from_values(v, &cfg.raw)?;
                format!(
                    "vision tower: yes ({} layers, hidden {}, patch {}, {} positions, \
                     downsample {})",
                    vc.num_layers,
                    vc.hidden_size,
                    vc.patch_size,
                    vc.num_patches,
                    vc.downsample_factor
                )
            }
            None => "vision tower: no (text only)".into(),
        });
        Ok(out)
    }
}

/// `Q4_0: 24, Q6_K: 1, F32: 15 (1.2 MiB)`: most tensors first.
fn type_counts<K: AsRef<str>>(counts: &BTreeMap<K, (usize, u64)>) -> String {
    let mut v: Vec<(&str, usize)> = counts.iter().map(|(k, &(n, _))| (k.as_ref(), n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let bytes: u64 = counts.values().map(|&(_, b)| b).sum();
    format!(
        "{} ({:.1} MiB)",
        v.iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        bytes as f64 / (1024.0 * 1024.0)
    )
}

/// llama.cpp's `general.file_type` (`llama_ftype`) names.
pub fn file_type_name(ft: u64) -> Option<&'static str> {
    Some(match ft {
        0 => "ALL_F32",
        1 => "MOSTLY_F16",
        2 => "MOSTLY_Q4_0",
        3 => "MOSTLY_Q4_1",
        7 => "MOSTLY_Q8_0",
        8 => "MOSTLY_Q5_0",
        9 => "MOSTLY_Q5_1",
        10 => "MOSTLY_Q2_K",
        11 => "MOSTLY_Q3_K_S",
        12 => "MOSTLY_Q3_K_M",
        13 => "MOSTLY_Q3_K_L",
        14 => "MOSTLY_Q4_K_S",
        15 => "MOSTLY_Q4_K_M",
        16 => "MOSTLY_Q5_K_S",
        17 => "MOSTLY_Q5_K_M",
        18 => "MOSTLY_Q6_K",
        32 => "MOSTLY_BF16",
        _ => return None,
    })
}

fn describe_gguf(role: &str, f: &GgufFile) -> Vec<String> {
    let m = f.metadata();
    let s = |k: &str| m.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
    let ft = m
        .get("general.file_type")
        .and_then(|v| v.as_u64())
        .map_or("?".to_string(), |ft| match file_type_name(ft) {
            Some(n) => format!("{ft} ({n})"),
            None => ft.to_string(),
        });
    let mut out = vec![
        format!(
            "{role}: {} (GGUF v{})",
            f.path().display(),
            f.header().version
        ),
        format!(
            "  architecture {}, name {:?}, file_type {ft}, {} metadata keys, {} tensors",
            s("general.architecture"),
            s("general.name"),
            m.len(),
            f.tensors().len()
        ),
    ];
    if let Some(p) = m
        .get("clip.projector_type")
        .and_then(|v| v.as_str().map(str::to_string))
    {
        out.push(format!("  projector {p}"));
    }
    out.push(format!(
        "  tensor types: {}",
        type_counts(&f.type_histogram())
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use model::preprocess::{ProcessorConfig, ProcessorOverrides, RgbImage};
    use model::prompt::{ChatMessage, ContentPart};
    use tensor::cpu::{CpuOptions, WeightFormat};

    use super::*;
    use crate::RuntimeError;
    use crate::engine::{BackendChoice, Engine, EngineOptions};

    /// `tests/fixtures-gguf/gguf/<stem>.gguf` (llama.cpp's files for the
    /// tiny checkpoint).
    fn gguf(stem: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures-gguf/gguf")
            .join(format!("{stem}.gguf"))
    }

    fn source(model: &str, mmproj: Option<&str>) -> ModelSource {
        ModelSource::Gguf {
            model: gguf(model),
            mmproj: mmproj.map(gguf),
        }
    }

    fn cpu_opts(weights: WeightFormat) -> EngineOptions {
        EngineOptions {
            backend: BackendChoice::Cpu,
            cpu: CpuOptions {
                threads: Some(1),
                weights,
                ..Default::default()
            },
            max_len: 256,
            ..Default::default()
        }
    }

    #[test]
    fn gguf_processor_is_the_defaults_with_the_mmproj_and_the_overrides() {
        let f = ModelFiles::open(&source("tiny-gguf-BF16", Some("mmproj-tiny-gguf-BF16"))).unwrap();
        let p = f.processor(&ProcessorOverrides::default()).unwrap();
        // The mmproj's patch size, factor, mean and std equal the defaults;
        // its `clip.vision.image_size` (256) is not a tile size.
        assert_eq!(p, ProcessorConfig::default());
        let o = ProcessorOverrides {
            min_image_tokens: Some(4),
            max_image_tokens: Some(16),
            ..Default::default()
        };
        let p = f.processor(&o).unwrap();
        assert_eq!((p.min_image_tokens, p.max_image_tokens), (4, 16));
        let bad = ProcessorOverrides {
            max_image_tokens: Some(1),
            ..o
        };
        assert!(f.processor(&bad).is_err(), "validated");
        // No mmproj: the defaults.
        let text = ModelFiles::open(&source("tiny-gguf-Q4_0", None)).unwrap();
        assert_eq!(
            text.processor(&ProcessorOverrides::default()).unwrap(),
            ProcessorConfig::default()
        );
    }

    #[test]
    fn describe_names_file_types_tensor_types_and_the_vision_tower() {
        let f =
            ModelFiles::open(&source("tiny-gguf-Q4_K_M", Some("mmproj-tiny-gguf-Q8_0"))).unwrap();
        let text = f.describe().unwrap().join("\n");
        for want in [
            "file_type 15 (MOSTLY_Q4_K_M)",
            "Q4_K: 21, F32: 15, Q6_K: 4",
            "F32: 39, Q8_0: 20",
            "vision tower: yes",
            "2 attention, 2 conv",
        ] {
            assert!(text.contains(want), "{want:?} in\n{text}");
        }
        let f = ModelFiles::open(&source("tiny-gguf-Q8_0", None)).unwrap();
        let text = f.describe().unwrap().join("\n");
        assert!(
            text.contains("mmproj: none") && text.contains("vision tower: no"),
            "{text}"
        );
        assert_eq!(file_type_name(2), Some("MOSTLY_Q4_0"));
        assert_eq!(file_type_name(999), None);
    }

    fn image_prompt() -> (Vec<ChatMessage>, Vec<RgbImage>) {
        let msgs = vec![ChatMessage::parts(
            "user",
            vec![ContentPart::image(), ContentPart::text("What is it?")],
        )];
        let img = RgbImage::from_raw(64, 48, vec![128; 64 * 48 * 3]).unwrap();
        (msgs, vec![img])
    }

    #[test]
    fn an_image_on_a_gguf_without_mmproj_is_a_typed_error() {
        let (msgs, images) = image_prompt();
        let engine = Engine::load_source(
            source("tiny-gguf-Q4_0", None),
            &cpu_opts(WeightFormat::Native),
        )
        .unwrap();
        assert!(!engine.has_vision());
        let e = engine.prepare(&msgs, &images).unwrap_err();
        assert!(
            matches!(e, RuntimeError::NoVisionTower { .. }) && e.to_string().contains("--mmproj"),
            "{e}"
        );
        // Text alone is fine.
        let (ids, _) = engine
            .prepare(&[ChatMessage::text("user", "hi")], &[])
            .unwrap();
        assert!(!ids.is_empty());
        // With the mmproj the same prompt prepares.
        let engine = Engine::load_source(
            source("tiny-gguf-Q4_0", Some("mmproj-tiny-gguf-BF16")),
            &cpu_opts(WeightFormat::Native),
        )
        .unwrap();
        assert!(engine.has_vision());
        engine.prepare(&msgs, &images).unwrap();
    }

    /// `--weights q4_0` on a BF16 GGUF quantizes its float matmul weights at
    /// load; a Q4_K_M file's blocks stay as stored with `int8`.
    #[test]
    fn weight_formats_apply_to_a_gguf() {
        let messages = [ChatMessage::text("user", "hi")];
        let mut req = crate::engine::Request::new(&messages);
        req.max_new_tokens = 3;
        for (model, weights) in [
            ("tiny-gguf-BF16", WeightFormat::Q4_0),
            ("tiny-gguf-Q4_K_M", WeightFormat::Int8),
        ] {
            let mut engine = Engine::load_source(source(model, None), &cpu_opts(weights)).unwrap();
            let desc = engine.backend_description.clone();
            let want = if weights == WeightFormat::Q4_0 {
                "q4_0 weights"
            } else {
                "int8 weights"
            };
            assert!(desc.contains(want), "{desc}");
            let out = engine.generate(&req, |_| true).unwrap();
            assert!(!out.generation.ids.is_empty(), "{model} {weights:?}");
        }
    }
}
