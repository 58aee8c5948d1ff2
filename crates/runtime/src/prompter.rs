//! Requests to prompts: the chat template, image preprocessing and the
//! tokenizer of one loaded model, with the context limit. Cheap to clone
//! and `Send + Sync`, so a server turns requests into prompts on its
//! request threads while the model runs elsewhere.

use std::sync::Arc;

use model::preprocess::{self, Preprocessed, ProcessorConfig, RgbImage};
use model::prompt::{ChatMessage, PromptBuilder, PromptOptions};

use crate::constraint::{Constrained, Constraint, GrammarCache};
use crate::error::{Result, RuntimeError};
use crate::tools::ToolSet;

#[derive(Clone)]
pub struct Prompter {
    pub prompt: Arc<PromptBuilder>,
    pub processor: ProcessorConfig,
    /// The context in tokens: a longer prompt is refused.
    pub max_len: usize,
    /// `Some((model, hint))` when the model has no vision tower: images
    /// are refused with [`RuntimeError::NoVisionTower`].
    pub no_vision: Option<(String, String)>,
    /// The structured-output compiler, shared with the engine.
    pub grammars: GrammarCache,
}

impl Prompter {
    /// Renders and tokenizes `messages` with `images` (and preprocesses the
    /// images) exactly as transformers' processor does.
    pub fn prepare(
        &self,
        messages: &[ChatMessage],
        images: &[RgbImage],
    ) -> Result<(Vec<u32>, Preprocessed)> {
        self.prepare_with_tools(messages, images, &[])
    }

    /// [`Prompter::prepare`] with `tools` (function objects) listed for the
    /// model to call.
    pub fn prepare_with_tools(
        &self,
        messages: &[ChatMessage],
        images: &[RgbImage],
        tools: &[serde_json::Value],
    ) -> Result<(Vec<u32>, Preprocessed)> {
        let slots: usize = messages.iter().map(ChatMessage::num_images).sum();
        if let Some((model, hint)) = &self.no_vision
            && (slots > 0 || !images.is_empty())
        {
            return Err(RuntimeError::NoVisionTower {
                model: model.clone(),
                hint: hint.clone(),
            });
        }
        if slots != images.len() {
            return Err(RuntimeError::ImageCount {
                count: images.len(),
                slots,
            });
        }
        let pre =
            preprocess::preprocess(images, &self.processor).map_err(model::ModelError::from)?;
        let opts = PromptOptions {
            add_generation_prompt: true,
            use_image_special_tokens: self.processor.use_image_special_tokens,
            max_tokens: Some(self.max_len),
        };
        let p = self
            .prompt
            .build_with_tools(messages, &pre.images, &opts, tools)
            .map_err(model::ModelError::from)?;
        Ok((p.input_ids, pre))
    }

    /// What one generation's decoding must match, compiled: the request's
    /// constraint `c`, or the call grammar of a `required` / named-function
    /// `tools` choice ([`crate::tools::decoding_constraint`]); `None` when
    /// neither applies. An invalid one is an error.
    pub fn constrain(
        &self,
        c: Option<&Constraint>,
        tools: &ToolSet,
    ) -> Result<Option<Constrained>> {
        crate::tools::decoding_constraint(c, tools, self.prompt.tokenizer())?
            .map(|c| self.grammars.compile(&c))
            .transpose()
    }

    /// Tokenizes a raw prompt (no template; special-token text such as
    /// `<|im_start|>` becomes those tokens). Empty or past the context: an
    /// error.
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        let ids = self
            .prompt
            .tokenizer()
            .encode(text)
            .map_err(model::ModelError::from)?;
        self.check_ids(&ids).map(<[u32]>::to_vec)
    }

    /// `ids` as a prompt: not empty, within the context.
    pub fn check_ids<'a>(&self, ids: &'a [u32]) -> Result<&'a [u32]> {
        if ids.is_empty() {
            return Err(model::ModelError::EmptyPrompt.into());
        }
        if ids.len() > self.max_len {
            return Err(model::ModelError::ContextOverflow {
                needed: ids.len(),
                limit: self.max_len,
            }
            .into());
        }
        Ok(ids)
    }
}
