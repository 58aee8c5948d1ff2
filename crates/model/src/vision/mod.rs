//! The SigLIP2 NaFlex vision tower (spec §4): patch embedding, resized
//! position embeddings, pre-LN encoder layers with bidirectional attention
//! over each crop's true length, `post_layernorm`.

pub mod config;
mod encoder;
pub mod posembed;

use std::sync::Mutex;

use tensor::{Backend, DType, HostData, Shape, Tensor, op};

pub use self::config::VisionConfig;
pub(crate) use self::encoder::{Affine, Norm};
use self::encoder::{EncoderLayer, Scratch};
use crate::error::{ModelError, Result};
use crate::weights::{Loader, Prefix, WeightSource, names};

/// Sees the embeddings (`None`) and each encoder layer's output (`Some(j)`).
pub type LayerHook<'a, B> = dyn FnMut(Option<usize>, &Tensor<B>) -> Result<()> + 'a;

/// Crop shapes whose resized position embeddings stay on the device. A
/// tiled image uses two or three shapes (the tiles and the thumbnail).
const POS_CACHE_SHAPES: usize = 8;

/// A crop shape `(h, w)` and its resized position embeddings `[h·w, D]`.
type PosEntry<B> = ((usize, usize), Tensor<B>);

pub struct VisionTower<B: Backend> {
    pub cfg: VisionConfig,
    patch: Affine<B>,   // [D, 3·p²]
    pos_grid: Vec<f32>, // [g·g, D] on the host, resized per crop shape
    /// Resized position embeddings by crop shape `(h, w)`, most recent last:
    /// the resize runs on the host once per shape, not once per crop.
    pos_cache: Mutex<Vec<PosEntry<B>>>,
    layers: Vec<EncoderLayer<B>>,
    post_ln: Norm<B>,
}

/// The prefix the checkpoint stores the tower under (published or transformers 5).
pub fn vision_prefix(ckpt: &dyn WeightSource) -> Prefix {
    let published = Prefix::new(names::VISION_PUBLISHED);
    if ckpt.contains(&published.join("post_layernorm").name("weight")) {
        published
    } else {
        Prefix::new(names::VISION_HF5)
    }
}

impl<B: Backend> VisionTower<B> {
    pub fn load(ld: &Loader<B>, cfg: &VisionConfig) -> Result<Self> {
        let p = vision_prefix(ld.src);
        let d = cfg.hidden_size;
        let e = p.join("embeddings");
        // §4.6: the layer count must match what the checkpoint stores.
        let stored = (0..)
            .take_while(|j| {
                ld.src.contains(
                    &p.join("encoder")
                        .join("layers")
                        .join(j)
                        .join("layer_norm1")
                        .name("weight"),
                )
            })
            .count();
        if stored < cfg.num_layers {
            return Err(ModelError::config(
                "vision_config.num_hidden_layers",
                format!(
                    "{} layers configured, checkpoint has {stored}",
                    cfg.num_layers
                ),
            ));
        }
        let g = cfg.grid_side();
        Ok(VisionTower {
            cfg: cfg.clone(),
            patch: Affine::load(ld, &e.join("patch_embedding"), d, cfg.patch_dim())?,
            pos_grid: ld
                .src
                .get_shaped(&e.join("position_embedding").name("weight"), &[g * g, d])?
                .to_f32()?,
            pos_cache: Mutex::default(),
            layers: (0..cfg.num_layers)
                .map(|j| EncoderLayer::load(ld, &p.join("encoder").join("layers").join(j), cfg))
                .collect::<Result<Vec<_>>>()?,
            post_ln: Norm::load(ld, &p.join("post_layernorm"), d, cfg.layer_norm_eps)?,
        })
    }

    /// Tensor-name prefixes a load leaves unused on purpose (encoder layers
    /// past `vision_feature_layer`).
    pub fn unused_prefixes(&self, ckpt: &dyn WeightSource) -> Vec<String> {
        let p = vision_prefix(ckpt);
        (self.cfg.num_layers..)
            .map(|j| {
                p.join("encoder")
                    .join("layers")
                    .join(j)
                    .as_str()
                    .to_string()
                    + "."
            })
            .take_while(|q| ckpt.names().iter().any(|n| n.starts_with(q.as_str())))
            .collect()
    }

    /// The resized position embeddings of an `h × w` crop, `[h·w, D]` (host).
    pub fn position_embeddings(&self, h: usize, w: usize) -> Vec<f32> {
        posembed::resize(
            &self.pos_grid,
            self.cfg.grid_side(),
            self.cfg.hidden_size,
            h,
            w,
        )
    }

    /// Runs one crop: `patches` `[h·w, 3·p²]` (normalised, (py, px, c) order)
    /// → `last_hidden_state` `[h·w, D]`. `hook(j, x)` sees the embeddings
    /// (`j = None`) and each layer's output (`Some(j)`).
    pub fn forward_crop(
        &self,
        be: &B,
        patches: &Tensor<B>,
        h: usize,
        w: usize,
        hook: &mut LayerHook<'_, B>,
    ) -> Result<Tensor<B>> {
        let n = h * w;
        let d = self.cfg.hidden_size;
        if patches.shape().dims() != [n, self.cfg.patch_dim()] {
            return Err(tensor::TensorError::ShapeMismatch {
                op: "VisionTower::forward_crop",
                what: "patches",
                expected: Shape::from([n, self.cfg.patch_dim()]),
                got: patches.shape().clone(),
            }
            .into());
        }
        let mut x = be.zeros(DType::F32, Shape::from([n, d]))?;
        self.patch.forward(be, patches, &mut x)?;
        {
            // A panic elsewhere cannot leave an entry half-made: keep using it.
            let mut cache = self.pos_cache.lock().unwrap_or_else(|e| e.into_inner());
            let at = match cache.iter().position(|(shape, _)| *shape == (h, w)) {
                Some(i) => {
                    // Most recently used last: eviction takes the first.
                    let hit = cache.remove(i);
                    cache.push(hit);
                    cache.len() - 1
                }
                None => {
                    if cache.len() == POS_CACHE_SHAPES {
                        cache.remove(0);
                    }
                    let pos = be.upload(
                        HostData::f32(&self.position_embeddings(h, w)),
                        Shape::from([n, d]),
                    )?;
                    cache.push(((h, w), pos));
                    cache.len() - 1
                }
            };
            be.add_assign(op::AddAssign {
                x: &mut x,
                y: &cache[at].1,
            })?;
        }
        hook(None, &x)?;
        let mut s = Scratch::new(be, &self.cfg, n)?;
        for (j, layer) in self.layers.iter().enumerate() {
            layer.forward(be, &mut x, &mut s)?;
            hook(Some(j), &x)?;
        }
        let mut out = be.zeros(DType::F32, Shape::from([n, d]))?;
        self.post_ln.forward(be, &x, &mut out)?;
        Ok(out)
    }
}
