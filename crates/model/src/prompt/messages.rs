//! Chat messages in the transformers format: a role and content that is a
//! string or a list of `{"type": "image"}` / `{"type": "text", "text": …}` items.

use serde::Deserialize;

use super::error::{PromptError, Result};

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, … (passed to the template as is).
    pub role: String,
    /// The turn's content.
    pub content: MessageContent,
}

/// A message's content: plain text or a list of parts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// `"content": "..."`.
    Text(String),
    /// `"content": [{"type": ...}, ...]`.
    Parts(Vec<ContentPart>),
}

/// One item of a list content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ContentPart {
    /// An image placeholder; `image` (alias `url`, `path`) optionally names
    /// its source for the caller. The template renders `<image>`.
    Image {
        #[serde(default, alias = "url", alias = "path")]
        image: Option<String>,
    },
    /// Text.
    Text { text: String },
}

impl ChatMessage {
    /// A message with plain-text content.
    pub fn text(role: impl Into<String>, text: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: MessageContent::Text(text.into()),
        }
    }

    /// A message with a list of parts.
    pub fn parts(role: impl Into<String>, parts: Vec<ContentPart>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: MessageContent::Parts(parts),
        }
    }

    /// Number of image parts.
    pub fn num_images(&self) -> usize {
        match &self.content {
            MessageContent::Text(_) => 0,
            MessageContent::Parts(p) => p
                .iter()
                .filter(|p| matches!(p, ContentPart::Image { .. }))
                .count(),
        }
    }
}

impl ContentPart {
    /// An image part without a source.
    pub fn image() -> ContentPart {
        ContentPart::Image { image: None }
    }

    /// A text part.
    pub fn text(text: impl Into<String>) -> ContentPart {
        ContentPart::Text { text: text.into() }
    }
}

/// Parses a JSON array of messages (`[{"role": ..., "content": ...}, ...]`).
pub fn parse_messages(json: &str) -> Result<Vec<ChatMessage>> {
    serde_json::from_str(json).map_err(|source| PromptError::Messages { source })
}

/// Converts an already parsed JSON value (e.g. a fixture's `messages`).
pub fn messages_from_value(value: &serde_json::Value) -> Result<Vec<ChatMessage>> {
    Vec::<ChatMessage>::deserialize(value).map_err(|source| PromptError::Messages { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_transformers_shapes() {
        let m = parse_messages(
            r#"[{"role":"system","content":"be brief"},
                {"role":"user","content":[{"type":"image","image":"a.png"},{"type":"text","text":"What?"}]}]"#,
        )
        .unwrap();
        assert_eq!(m[0], ChatMessage::text("system", "be brief"));
        assert_eq!(
            m[1].content,
            MessageContent::Parts(vec![
                ContentPart::Image {
                    image: Some("a.png".into())
                },
                ContentPart::text("What?")
            ])
        );
        assert_eq!(m[1].num_images(), 1);
    }

    #[test]
    fn messages_reject_unknown_part_type() {
        let e = parse_messages(r#"[{"role":"user","content":[{"type":"video"}]}]"#);
        assert!(matches!(e, Err(PromptError::Messages { .. })));
        let e = parse_messages(r#"[{"content":"no role"}]"#);
        assert!(matches!(e, Err(PromptError::Messages { .. })));
    }
}
