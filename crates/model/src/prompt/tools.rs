//! Tools in the prompt. A template that reads `tools` (LFM2.5's) gets
//! them as transformers passes them; for one that does not (LFM2-VL's),
//! [`LFM2_TOOLS_TEMPLATE`] lays them out as LFM2's text checkpoints do: the
//! function list in the system turn between `<|tool_list_start|>` and
//! `<|tool_list_end|>`, tool results between `<|tool_response_start|>` and
//! `<|tool_response_end|>`, everything else as LFM2-VL's template writes it.
//! `tojson` is transformers' (Python's `json.dumps`: `", "` and `": "`
//! separators, keys in their order, non-ASCII kept), not minijinja's.

use std::fmt::Write;

use minijinja::Value;

/// LFM2's tool layout over LFM2-VL's messages (text and image parts).
pub const LFM2_TOOLS_TEMPLATE: &str = r#"{{- bos_token -}}
{%- set ns = namespace(system="") -%}
{%- if messages and messages[0]["role"] == "system" -%}
{%- if messages[0]["content"] is string -%}{%- set ns.system = messages[0]["content"] -%}
{%- else -%}{%- for part in messages[0]["content"] if part["type"] == "text" -%}{%- set ns.system = ns.system + part["text"] -%}{%- endfor -%}
{%- endif -%}
{%- set messages = messages[1:] -%}
{%- endif -%}
{%- set ns.system = ns.system + ("\n" if ns.system else "") + "List of tools: <|tool_list_start|>[" -%}
{%- for tool in tools -%}
{%- set ns.system = ns.system + (tool if tool is string else tool | tojson) + ("" if loop.last else ", ") -%}
{%- endfor -%}
{%- set ns.system = ns.system + "]<|tool_list_end|>" -%}
{{- "<|im_start|>system\n" + ns.system + "<|im_end|>\n" -}}
{%- for message in messages -%}
{{- "<|im_start|>" + message["role"] + "\n" -}}
{%- if message["role"] == "tool" -%}{{- "<|tool_response_start|>" -}}{%- endif -%}
{%- if message["content"] is string -%}{{- message["content"] -}}
{%- else -%}{%- for part in message["content"] -%}
{%- if part["type"] == "image" -%}{{- "<image>" -}}{%- elif part["type"] == "text" -%}{{- part["text"] -}}{%- endif -%}
{%- endfor -%}{%- endif -%}
{%- if message["role"] == "tool" -%}{{- "<|tool_response_end|>" -}}{%- endif -%}
{{- "<|im_end|>\n" -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- "<|im_start|>assistant\n" -}}{%- endif -%}"#;

/// Python's `json.dumps(v, ensure_ascii=False)` of a JSON value.
pub fn python_json(v: &serde_json::Value) -> String {
    let mut out = String::new();
    write_python_json(v, &mut out);
    out
}

fn write_python_json(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value as J;
    match v {
        J::Array(items) => {
            out.push('[');
            for (k, x) in items.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                write_python_json(x, out);
            }
            out.push(']');
        }
        J::Object(m) => {
            out.push('{');
            for (k, (key, x)) in m.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{}: ", J::String(key.clone()));
                write_python_json(x, out);
            }
            out.push('}');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// The `tojson` filter: transformers' (indent and sort_keys not taken).
pub(crate) fn tojson(v: Value) -> Result<Value, minijinja::Error> {
    let json = serde_json::to_value(&v).map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
    })?;
    Ok(Value::from_safe_string(python_json(&json)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::{ChatMessage, ChatTemplate, ContentPart, LFM2_CHAT_TEMPLATE};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn special() -> BTreeMap<String, String> {
        BTreeMap::from([("bos_token".to_string(), "<|startoftext|>".to_string())])
    }

    #[test]
    fn tools_are_laid_out_as_lfm2_does_for_a_template_without_them() {
        let t = ChatTemplate::new(LFM2_CHAT_TEMPLATE, special()).unwrap();
        assert!(!t.reads_tools());
        let tools = [
            json!({"name": "now", "parameters": {"type": "object"}}),
            json!({"name": "b"}),
        ];
        let msgs = [
            ChatMessage::text("system", "Be brief."),
            ChatMessage::parts(
                "user",
                vec![ContentPart::image(), ContentPart::text("Time?")],
            ),
            ChatMessage::text("assistant", "<|tool_call_start|>[now()]<|tool_call_end|>"),
            ChatMessage::text("tool", "12:00"),
        ];
        assert_eq!(
            t.render_with_tools(&msgs, true, &tools).unwrap(),
            "<|startoftext|><|im_start|>system\nBe brief.\nList of tools: <|tool_list_start|>\
             [{\"name\": \"now\", \"parameters\": {\"type\": \"object\"}}, {\"name\": \"b\"}]\
             <|tool_list_end|><|im_end|>\n<|im_start|>user\n<image>Time?<|im_end|>\n\
             <|im_start|>assistant\n<|tool_call_start|>[now()]<|tool_call_end|><|im_end|>\n\
             <|im_start|>tool\n<|tool_response_start|>12:00<|tool_response_end|><|im_end|>\n\
             <|im_start|>assistant\n"
        );
        // Without tools the checkpoint's template renders, unchanged.
        assert_eq!(
            t.render_with_tools(&msgs[1..2], true, &[]).unwrap(),
            t.render(&msgs[1..2], true).unwrap()
        );
    }

    #[test]
    fn a_template_that_reads_tools_gets_them() {
        let src = "{% for t in tools %}{{ t | tojson }};{% endfor %}{{ messages[0]['content'] }}";
        let t = ChatTemplate::new(src, special()).unwrap();
        assert!(t.reads_tools());
        let tools = [json!({"z": 1, "a": "é"})];
        let msgs = [ChatMessage::text("user", "hi")];
        assert_eq!(
            t.render_with_tools(&msgs, false, &tools).unwrap(),
            "{\"z\": 1, \"a\": \"é\"};hi"
        );
    }

    #[test]
    fn json_is_written_as_python_writes_it() {
        let v = json!({"name": "f", "b": [1, 2.5, true, null], "a": {"é": "x\"y"}});
        assert_eq!(
            python_json(&v),
            r#"{"name": "f", "b": [1, 2.5, true, null], "a": {"é": "x\"y"}}"#
        );
    }
}
