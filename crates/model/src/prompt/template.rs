//! The checkpoint's Jinja chat template, rendered with minijinja the way
//! transformers renders it (spec §10): `trim_blocks` and `lstrip_blocks` on,
//! the template's trailing newline dropped, loop controls enabled, a
//! `raise_exception` global, and every `*_token` of `tokenizer_config.json`
//! (`bos_token`, `eos_token`, …) as a variable next to `messages` and
//! `add_generation_prompt`.
//!
//! Where the template comes from, first found wins: `chat_template.jinja`,
//! `chat_template.json` (`{"chat_template": …}`), the `chat_template` field
//! of `processor_config.json`, then of `tokenizer_config.json` (a string, or
//! a list of `{name, template}` from which `default` or the first is taken).

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, ErrorKind, Value};

use super::error::{PromptError, Result};
use super::messages::{ChatMessage, ContentPart, MessageContent};
use super::tools::LFM2_TOOLS_TEMPLATE;

const TEMPLATE_NAME: &str = "chat_template";

const TOOLS_NAME: &str = "lfm2_tools";

/// A compiled chat template plus the special-token variables it may use.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    special_tokens: BTreeMap<String, String>,
    /// The template reads `tools` (else [`LFM2_TOOLS_TEMPLATE`] renders
    /// prompts with tools).
    reads_tools: bool,
}

fn template_err(source: minijinja::Error) -> PromptError {
    PromptError::Template { source }
}

/// Reads a JSON file; `Ok(None)` when it does not exist.
pub(crate) fn read_json_opt(path: &Path) -> Result<Option<serde_json::Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PromptError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| PromptError::Json {
            path: path.to_path_buf(),
            source,
        })
}

/// The `*_token` entries of a `tokenizer_config.json` (string values, or
/// `{"content": …}` objects as older configs write them).
pub fn special_tokens_from_config(config: &serde_json::Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(obj) = config.as_object() {
        for (k, v) in obj {
            if !k.ends_with("_token") {
                continue;
            }
            let s = v
                .as_str()
                .or_else(|| v.get("content").and_then(|c| c.as_str()));
            if let Some(s) = s {
                out.insert(k.clone(), s.to_string());
            }
        }
    }
    out
}

fn template_field(v: &serde_json::Value) -> Option<String> {
    match v.get("chat_template")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(list) => {
            let pick = list
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .or_else(|| list.first())?;
            pick.get("template")?.as_str().map(str::to_string)
        }
        _ => None,
    }
}

/// LFM2-VL's published chat template (spec §7): what a GGUF without
/// `tokenizer.chat_template` is rendered with (llama.cpp falls back to
/// ChatML, which this is plus the BOS), and what synthetic checkpoints carry.
pub const LFM2_CHAT_TEMPLATE: &str = "{{bos_token}}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'}}{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}{{ '<image>' }}{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}{{'<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\\n' }}{% endif %}";

impl ChatTemplate {
    /// Compiles `source` with transformers' whitespace settings.
    pub fn new(source: &str, special_tokens: BTreeMap<String, String>) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()
            .map_err(template_err)?;
        env.set_syntax(syntax);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<Value, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_filter("tojson", super::tools::tojson);
        env.add_template_owned(TEMPLATE_NAME, source.to_string())
            .map_err(template_err)?;
        env.add_template(TOOLS_NAME, LFM2_TOOLS_TEMPLATE)
            .map_err(template_err)?;
        let reads_tools = env
            .get_template(TEMPLATE_NAME)
            .map_err(template_err)?
            .undeclared_variables(false)
            .contains("tools");
        Ok(ChatTemplate {
            env,
            special_tokens,
            reads_tools,
        })
    }

    /// Loads the template and special tokens of a checkpoint directory.
    pub fn from_dir(dir: &Path) -> Result<ChatTemplate> {
        let tok_cfg = read_json_opt(&dir.join("tokenizer_config.json"))?;
        let special = tok_cfg
            .as_ref()
            .map(special_tokens_from_config)
            .unwrap_or_default();
        let jinja = dir.join("chat_template.jinja");
        let source = match std::fs::read_to_string(&jinja) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(PromptError::Io {
                    path: jinja,
                    source,
                });
            }
        };
        let source = match source {
            Some(s) => s,
            None => {
                let json = read_json_opt(&dir.join("chat_template.json"))?;
                let proc = read_json_opt(&dir.join("processor_config.json"))?;
                [json, proc, tok_cfg]
                    .iter()
                    .flatten()
                    .find_map(template_field)
                    .ok_or_else(|| PromptError::TemplateMissing {
                        dir: dir.to_path_buf(),
                    })?
            }
        };
        ChatTemplate::new(&source, special)
    }

    /// A special-token string from `tokenizer_config.json` (`"bos_token"` …).
    pub fn special_token(&self, name: &str) -> Option<&str> {
        self.special_tokens.get(name).map(String::as_str)
    }

    /// Renders `messages`; `add_generation_prompt` appends the assistant
    /// header (`<|im_start|>assistant\n` for LFM2).
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        self.render_with_tools(messages, add_generation_prompt, &[])
    }

    /// Whether the template lays out `tools` itself.
    pub fn reads_tools(&self) -> bool {
        self.reads_tools
    }

    /// [`ChatTemplate::render`] with `tools` (function objects) for the
    /// model to call: given to the template as `tools` when it reads them,
    /// else laid out by [`LFM2_TOOLS_TEMPLATE`].
    pub fn render_with_tools(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        tools: &[serde_json::Value],
    ) -> Result<String> {
        let mut ctx: BTreeMap<String, Value> = self
            .special_tokens
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        ctx.insert(
            "messages".into(),
            Value::from(messages.iter().map(message_value).collect::<Vec<_>>()),
        );
        ctx.insert(
            "add_generation_prompt".into(),
            Value::from(add_generation_prompt),
        );
        let name = if tools.is_empty() {
            TEMPLATE_NAME
        } else {
            ctx.insert("tools".into(), Value::from(minijinja::value::Serde(tools)));
            if self.reads_tools {
                TEMPLATE_NAME
            } else {
                TOOLS_NAME
            }
        };
        let tmpl = self.env.get_template(name).map_err(template_err)?;
        tmpl.render(Value::from(ctx)).map_err(template_err)
    }
}

fn message_value(m: &ChatMessage) -> Value {
    let content = match &m.content {
        MessageContent::Text(s) => Value::from(s.as_str()),
        MessageContent::Parts(parts) => Value::from(
            parts
                .iter()
                .map(|p| {
                    let mut item = BTreeMap::<String, Value>::new();
                    match p {
                        ContentPart::Image { .. } => {
                            item.insert("type".into(), Value::from("image"));
                        }
                        ContentPart::Text { text } => {
                            item.insert("type".into(), Value::from("text"));
                            item.insert("text".into(), Value::from(text.as_str()));
                        }
                    }
                    Value::from(item)
                })
                .collect::<Vec<_>>(),
        ),
    };
    let mut map = BTreeMap::<String, Value>::new();
    map.insert("role".into(), Value::from(m.role.as_str()));
    map.insert("content".into(), content);
    Value::from(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published LFM2-VL template (spec §10).
    const LFM2_VL: &str = "{{bos_token}}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'}}{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}{{ '<image>' }}{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}{{'<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\\n' }}{% endif %}";

    fn lfm2() -> ChatTemplate {
        let special = BTreeMap::from([("bos_token".to_string(), "<|startoftext|>".to_string())]);
        ChatTemplate::new(LFM2_VL, special).unwrap()
    }

    #[test]
    fn template_renders_spec_example() {
        let msgs = vec![ChatMessage::parts(
            "user",
            vec![
                ContentPart::image(),
                ContentPart::text("What is in this image?"),
            ],
        )];
        assert_eq!(
            lfm2().render(&msgs, true).unwrap(),
            "<|startoftext|><|im_start|>user\n<image>What is in this image?<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            lfm2()
                .render(&[ChatMessage::text("user", "hi")], false)
                .unwrap(),
            "<|startoftext|><|im_start|>user\nhi<|im_end|>\n"
        );
    }

    #[test]
    fn template_whitespace_control_like_jinja2() {
        // trim_blocks + lstrip_blocks: block tags on their own lines leave no blank lines.
        let src = "{% for m in messages %}\n  {% if true %}\n[{{ m['role'] }}]\n  {% endif %}\n{% endfor %}\n";
        let t = ChatTemplate::new(src, BTreeMap::new()).unwrap();
        let msgs = [ChatMessage::text("a", ""), ChatMessage::text("b", "")];
        assert_eq!(t.render(&msgs, false).unwrap(), "[a]\n[b]\n");
    }

    #[test]
    fn template_errors_are_typed() {
        assert!(matches!(
            ChatTemplate::new("{% for %}", BTreeMap::new()),
            Err(PromptError::Template { .. })
        ));
        let t =
            ChatTemplate::new("{{ raise_exception('no system role') }}", BTreeMap::new()).unwrap();
        assert!(matches!(
            t.render(&[], false),
            Err(PromptError::Template { .. })
        ));
    }
}
