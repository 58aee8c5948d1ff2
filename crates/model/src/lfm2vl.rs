//! The whole LFM2-VL model (or a plain LFM2): config, the vision tower, the
//! connector and the language model, loaded from a Hugging Face folder or
//! GGUF files (any [`WeightSource`]); the
//! image-feature merge of spec §8.

use std::path::Path;

use tensor::{Backend, DType, HostData, Shape, Tensor, op};

use crate::config::ModelConfig;
use crate::connector::Connector;
use crate::error::{ModelError, Result};
use crate::text::TextModel;
use crate::vision::{VisionConfig, VisionTower};
use crate::weights::gguf::{self, GgufWeights};
use crate::weights::{Checkpoint, Loader, Prefix, WeightSource, names};

/// One crop ready for the vision tower: normalised patches in (py, px, c)
/// order, row-major over its `h × w` patch grid.
pub struct CropPatches<'a> {
    pub patches: &'a [f32], // [h·w, 3·p²]
    pub h: usize,
    pub w: usize,
}

/// The vision half of an LFM2-VL model.
pub struct Vision<B: Backend> {
    pub cfg: VisionConfig,
    pub tower: VisionTower<B>,
    pub connector: Connector<B>,
}

pub struct Lfm2Vl<B: Backend> {
    pub cfg: ModelConfig,
    pub text: TextModel<B>,
    pub vision: Option<Vision<B>>,
}

impl<B: Backend> Lfm2Vl<B> {
    /// Loads `dir/config.json` and its safetensors (single or sharded), on `be`.
    /// Every tensor in the checkpoint must be used, except a stored copy of
    /// the tied head and encoder layers past `vision_feature_layer`.
    pub fn load(dir: &Path, be: &B) -> Result<Self> {
        let cfg = ModelConfig::from_file(&dir.join("config.json"))?;
        let ckpt = Checkpoint::open_dir(dir)?;
        Self::from_source(cfg, &ckpt, be)
    }

    /// Loads a text GGUF and, for images, its mmproj GGUF (llama.cpp's
    /// files; `weights::gguf`), on `be`.
    pub fn load_gguf(model: &Path, mmproj: Option<&Path>, be: &B) -> Result<Self> {
        let w = GgufWeights::open(model, mmproj)?;
        let cfg = gguf::config::model_config(&w)?;
        Self::from_source(cfg, &w, be)
    }

    /// Loads the model `cfg` describes from `src` (the text model under
    /// `model.language_model` when `cfg` has a vision part, else `model`).
    /// Every tensor in the source must be used, except a stored copy of the
    /// tied head and encoder layers past `vision_feature_layer`.
    pub fn from_source(cfg: ModelConfig, src: &dyn WeightSource, be: &B) -> Result<Self> {
        let ld = Loader::new(src, be);
        let (text_prefix, vision) = match &cfg.vision {
            Some(v) => {
                let vcfg = VisionConfig::from_values(v, &cfg.raw)?;
                let tower = VisionTower::load(&ld, &vcfg)?;
                let connector = Connector::load(&ld, &vcfg, cfg.text.hidden_size)?;
                (
                    names::VL_TEXT,
                    Some(Vision {
                        cfg: vcfg,
                        tower,
                        connector,
                    }),
                )
            }
            None => (names::LM_TEXT, None),
        };
        let text = TextModel::load(&ld, &Prefix::new(text_prefix), &cfg.text)?;
        let mut ignore: Vec<String> = vec![names::LM_HEAD.to_string()];
        if let Some(v) = &vision {
            ignore.extend(v.tower.unused_prefixes(src));
        }
        src.finish(&ignore.iter().map(String::as_str).collect::<Vec<_>>())?;
        Ok(Lfm2Vl { cfg, text, vision })
    }

    /// The id of `<image>` (396 for the published models).
    pub fn image_token_id(&self) -> Option<u32> {
        self.cfg.image_token_id
    }

    /// Runs every crop through the tower and the connector; returns the
    /// image features `[Σ (h/2)(w/2), D_t]` in crop order.
    pub fn encode_images(&self, be: &B, crops: &[CropPatches<'_>]) -> Result<Tensor<B>> {
        let v = self
            .vision
            .as_ref()
            .ok_or_else(|| ModelError::config("vision_config", "this model has no vision tower"))?;
        let d = self.text.cfg.hidden_size;
        let pd = v.cfg.patch_dim();
        let rows: usize = crops.iter().map(|c| c.h * c.w / 4).sum();
        let mut out = be.zeros(DType::F32, Shape::from([rows, d]))?;
        let mut row0 = 0;
        be.enter(|| {
            for c in crops {
                let n = c.h * c.w;
                if c.patches.len() != n * pd || c.h % 2 != 0 || c.w % 2 != 0 || n == 0 {
                    return Err(tensor::TensorError::ShapeMismatch {
                        op: "encode_images",
                        what: "crop patches (h, w even and > 0)",
                        expected: Shape::from([n, pd]),
                        got: Shape::from([c.patches.len() / pd.max(1), pd]),
                    }
                    .into());
                }
                let x = be.upload(HostData::f32(c.patches), Shape::from([n, pd]))?;
                let feat = v.tower.forward_crop(be, &x, c.h, c.w, &mut |_, _| Ok(()))?;
                let proj = v.connector.forward_crop(be, &feat, c.h, c.w)?;
                be.copy_rows(op::CopyRows {
                    src: &proj,
                    dst: &mut out,
                    row0,
                })?;
                row0 += proj.shape().rows();
            }
            Ok(out)
        })
    }

    /// `inputs_embeds` for `ids` `[t, D_t]`: token embeddings, with the k-th
    /// `<image>` position replaced by row k of `features` (spec §8). The
    /// counts must agree.
    pub fn embed_with_images(
        &self,
        be: &B,
        ids: &[u32],
        features: Option<&Tensor<B>>,
    ) -> Result<Tensor<B>> {
        let d = self.text.cfg.hidden_size;
        let mut x = be.zeros(DType::F32, Shape::from([ids.len(), d]))?;
        self.text.embed(be, ids, &mut x)?;
        let slots: Vec<usize> = match self.image_token_id() {
            Some(img) => (0..ids.len()).filter(|&i| ids[i] == img).collect(),
            None => Vec::new(),
        };
        let rows = features.map_or(0, |f| f.shape().rows());
        if slots.len() != rows {
            return Err(ModelError::ImageTokenCount {
                slots: slots.len(),
                features: rows,
            });
        }
        let Some(f) = features else { return Ok(x) };
        // Image slots come in contiguous runs: copy a run at a time.
        let mut r = 0;
        while r < slots.len() {
            let mut len = 1;
            while r + len < slots.len() && slots[r + len] == slots[r] + len {
                len += 1;
            }
            let mut run = be.zeros(DType::F32, Shape::from([len, d]))?;
            be.slice_rows(op::SliceRows {
                src: f,
                row0: r,
                out: &mut run,
            })?;
            be.copy_rows(op::CopyRows {
                src: &run,
                dst: &mut x,
                row0: slots[r],
            })?;
            r += len;
        }
        Ok(x)
    }
}
