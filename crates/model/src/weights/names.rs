//! Tensor names: the top-level prefixes (written once, here) and a prefix
//! builder for component-relative names, as in candle's VarBuilder.

/// LFM2-VL's language model (both checkpoint layouts).
pub const VL_TEXT: &str = "model.language_model";
/// A plain LFM2 language model (`Lfm2ForCausalLM`).
pub const LM_TEXT: &str = "model";
/// The untied LM head, or a stored copy of the tied one.
pub const LM_HEAD: &str = "lm_head.weight";
/// The vision tower as published (and as llama.cpp's converter expects).
pub const VISION_PUBLISHED: &str = "model.vision_tower.vision_model";
/// The vision tower as transformers 5 saves it.
pub const VISION_HF5: &str = "model.vision_tower";
/// The connector.
pub const PROJECTOR: &str = "model.multi_modal_projector";

/// A dotted tensor-name prefix: `Prefix::new("model").join("layers").join(3).name("weight")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    pub fn new(p: impl Into<String>) -> Self {
        Prefix(p.into())
    }

    pub fn join(&self, part: impl std::fmt::Display) -> Prefix {
        if self.0.is_empty() {
            Prefix(part.to_string())
        } else {
            Prefix(format!("{}.{part}", self.0))
        }
    }

    /// The full name of a tensor under this prefix.
    pub fn name(&self, leaf: &str) -> String {
        self.join(leaf).0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
