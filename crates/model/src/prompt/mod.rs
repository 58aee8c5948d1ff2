//! Prompt building: the chat template, `<image>` expansion and tokenization
//! (spec §7, §8, §10), as transformers' `Lfm2VlProcessor.apply_chat_template`
//! followed by `processor(text=…, images=…)`:
//!
//! ```text
//! messages ──ChatTemplate::render──► text with one `<image>` per image item
//!          ──expand_image_placeholders(ImageLayout…)──► markers + `<image>` runs
//!          ──TextTokenizer::encode (add_special_tokens = false)──► input_ids
//! ```
//!
//! Checks, all typed errors: placeholders vs images, `<image>` ids vs the
//! images' token counts, and the context length. Like transformers (with
//! its default `sanitize_control_tokens=False`), a literal `<image>` or
//! special token typed inside message text counts as one.

mod error;
mod expand;
mod gguf;
mod messages;
mod template;
mod tokenizer;
mod tools;

use std::path::Path;

pub use error::{PromptError, Result, TokenizerError};
pub use expand::{
    ImageTokenStrings, count_placeholders, expand_image_placeholders, image_replacement,
    row_col_token,
};
pub use gguf::{
    LFM2_SPLIT_REGEX, special_tokens as gguf_special_tokens, tokenizer_json as gguf_tokenizer_json,
};
pub use messages::{ChatMessage, ContentPart, MessageContent, messages_from_value, parse_messages};
pub use template::{ChatTemplate, LFM2_CHAT_TEMPLATE, special_tokens_from_config};
pub use tokenizer::TextTokenizer;
pub use tools::{LFM2_TOOLS_TEMPLATE, python_json};

use crate::preprocess::ImageLayout;

/// Options of one prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptOptions {
    /// Append the assistant header (default true).
    pub add_generation_prompt: bool,
    /// Emit the image markers (`ProcessorConfig::use_image_special_tokens`).
    pub use_image_special_tokens: bool,
    /// Refuse prompts of more tokens than this.
    pub max_tokens: Option<usize>,
}

impl Default for PromptOptions {
    fn default() -> Self {
        PromptOptions {
            add_generation_prompt: true,
            use_image_special_tokens: true,
            max_tokens: None,
        }
    }
}

/// A built prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The rendered chat template, before `<image>` expansion.
    pub text: String,
    /// `[t]` token ids after expansion.
    pub input_ids: Vec<u32>,
    /// How many of `input_ids` are the `<image>` placeholder (the rows the
    /// image features are scattered into, in order).
    pub num_image_tokens: usize,
}

/// Chat template + tokenizer + marker strings of one checkpoint.
#[derive(Debug)]
pub struct PromptBuilder {
    template: ChatTemplate,
    tokenizer: TextTokenizer,
    tokens: ImageTokenStrings,
}

impl PromptBuilder {
    /// Combines a template and a tokenizer; marker strings are taken from
    /// the template's special tokens where `tokenizer_config.json` names
    /// them, else LFM2-VL's.
    pub fn new(template: ChatTemplate, tokenizer: TextTokenizer) -> PromptBuilder {
        let mut tokens = ImageTokenStrings::default();
        for (key, slot) in [
            ("image_token", &mut tokens.image),
            ("image_start_token", &mut tokens.start),
            ("image_end_token", &mut tokens.end),
            ("image_thumbnail_token", &mut tokens.thumbnail),
        ] {
            if let Some(s) = template.special_token(key) {
                *slot = s.to_string();
            }
        }
        PromptBuilder {
            template,
            tokenizer,
            tokens,
        }
    }

    /// Loads `tokenizer.json`, `tokenizer_config.json` and the chat template
    /// of a checkpoint directory.
    pub fn from_dir(dir: &Path) -> Result<PromptBuilder> {
        let template = ChatTemplate::from_dir(dir)?;
        let tokenizer = TextTokenizer::from_file(&dir.join("tokenizer.json"))?;
        Ok(PromptBuilder::new(template, tokenizer))
    }

    /// The chat template.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The marker strings used for expansion.
    pub fn image_tokens(&self) -> &ImageTokenStrings {
        &self.tokens
    }

    /// Id of the `<image>` placeholder (396 for LFM2-VL).
    pub fn image_token_id(&self) -> Result<u32> {
        self.tokenizer
            .token_to_id(&self.tokens.image)
            .ok_or_else(|| PromptError::MissingToken {
                token: self.tokens.image.clone(),
            })
    }

    /// Renders the chat template only.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        self.template.render(messages, add_generation_prompt)
    }

    /// Renders `messages`, expands one `<image>` per entry of `images` (in
    /// order) and tokenizes.
    pub fn build(
        &self,
        messages: &[ChatMessage],
        images: &[ImageLayout],
        opts: &PromptOptions,
    ) -> Result<Prompt> {
        self.build_with_tools(messages, images, opts, &[])
    }

    /// [`PromptBuilder::build`] with `tools` (function objects) listed for
    /// the model ([`ChatTemplate::render_with_tools`]).
    pub fn build_with_tools(
        &self,
        messages: &[ChatMessage],
        images: &[ImageLayout],
        opts: &PromptOptions,
        tools: &[serde_json::Value],
    ) -> Result<Prompt> {
        let text = self
            .template
            .render_with_tools(messages, opts.add_generation_prompt, tools)?;
        self.build_from_text(text, images, opts)
    }

    /// Expands and tokenizes an already rendered prompt text.
    pub fn build_from_text(
        &self,
        text: String,
        images: &[ImageLayout],
        opts: &PromptOptions,
    ) -> Result<Prompt> {
        let expanded =
            expand_image_placeholders(&text, images, opts.use_image_special_tokens, &self.tokens)?;
        let expected: usize = images.iter().map(ImageLayout::num_image_tokens).sum();
        // Cheap early refusal: the image tokens alone exceed the context.
        if let Some(max) = opts.max_tokens
            && expected > max
        {
            return Err(PromptError::PromptTooLong {
                tokens: expected,
                max,
            });
        }
        let input_ids = self.tokenizer.encode(&expanded)?;
        let found = match self.tokenizer.token_to_id(&self.tokens.image) {
            Some(id) => input_ids.iter().filter(|&&t| t == id).count(),
            None if expected == 0 => 0,
            None => {
                return Err(PromptError::MissingToken {
                    token: self.tokens.image.clone(),
                });
            }
        };
        if found != expected {
            return Err(PromptError::ImageTokenCountMismatch { expected, found });
        }
        if let Some(max) = opts.max_tokens
            && input_ids.len() > max
        {
            return Err(PromptError::PromptTooLong {
                tokens: input_ids.len(),
                max,
            });
        }
        Ok(Prompt {
            text,
            input_ids,
            num_image_tokens: found,
        })
    }
}
