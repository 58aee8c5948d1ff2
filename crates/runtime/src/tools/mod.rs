//! Tool calls: OpenAI's `tools` and `tool_choice`, LFM2's call format
//! (`<|tool_call_start|>[f(a=1)]<|tool_call_end|>`, [`pycall`]) read from
//! the output into calls with JSON arguments, and written back into a
//! conversation's history; with `required` or a named function, a Lark
//! grammar that admits only valid calls of the given tools
//! ([`ToolSet::constraint`]).

pub mod pycall;

use model::prompt::TextTokenizer;
use serde_json::{Value, json};

use crate::constraint::{Constraint, compact_json};

pub use pycall::CallSyntaxError;

/// LFM2's markers around a call list.
pub const CALL_START: &str = "<|tool_call_start|>";
pub const CALL_END: &str = "<|tool_call_end|>";

/// One function the model may call.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    pub name: String,
    /// The function object as the prompt lists it (`name`, `description`,
    /// `parameters`).
    pub function: Value,
}

impl Tool {
    /// Its arguments' JSON schema (an object schema; `{}` when none).
    pub fn parameters(&self) -> Value {
        self.function
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}))
    }
}

/// OpenAI's `tool_choice`.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ToolChoice {
    /// The model decides (its calls, if any, are parsed).
    #[default]
    Auto,
    /// No calls: the tools are not shown to the model.
    None,
    /// At least one call, of any tool (decoding is constrained).
    Required,
    /// A call of this function (decoding is constrained).
    Function(String),
}

/// One call the model made.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub name: String,
    /// A JSON object.
    pub arguments: Value,
}

/// Why `tools` or `tool_choice` can't be used; `param` names the field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{param}: {detail}")]
pub struct ToolsError {
    pub param: String,
    pub detail: String,
}

fn tools_error(param: impl Into<String>, detail: impl Into<String>) -> ToolsError {
    ToolsError {
        param: param.into(),
        detail: detail.into(),
    }
}

/// The tools of a request and the choice among them.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSet {
    pub tools: Vec<Tool>,
    pub choice: ToolChoice,
    /// `required` may make several calls in one reply (OpenAI's
    /// `parallel_tool_calls`, default on); a named function is one call.
    pub parallel: bool,
}

impl Default for ToolSet {
    fn default() -> Self {
        ToolSet {
            tools: Vec::new(),
            choice: ToolChoice::Auto,
            parallel: true,
        }
    }
}

impl ToolSet {
    /// From OpenAI's `tools` (`[{"type": "function", "function": {"name",
    /// "description", "parameters"}}]`; a bare function object is taken
    /// too) and `tool_choice` (`"auto"`, `"none"`, `"required"` or
    /// `{"type": "function", "function": {"name": N}}`).
    pub fn from_openai(tools: &[Value], choice: Option<&Value>) -> Result<ToolSet, ToolsError> {
        let mut out = Vec::new();
        for (k, t) in tools.iter().enumerate() {
            let p = format!("tools[{k}]");
            let function = match t.get("type").and_then(Value::as_str) {
                Some("function") => t.get("function").unwrap_or(t),
                Some(other) => {
                    return Err(tools_error(
                        format!("{p}.type"),
                        format!("unknown tool type {other:?} (only function)"),
                    ));
                }
                None => t,
            };
            let name = function
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| tools_error(format!("{p}.function.name"), "must be a string"))?;
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                return Err(tools_error(
                    format!("{p}.function.name"),
                    format!("{name:?}: use letters, digits, '_', '-' and '.'"),
                ));
            }
            if out.iter().any(|t: &Tool| t.name == name) {
                return Err(tools_error(
                    format!("{p}.function.name"),
                    format!("{name:?} is listed twice"),
                ));
            }
            match function.get("parameters") {
                None | Some(Value::Object(_)) => {}
                Some(_) => {
                    return Err(tools_error(
                        format!("{p}.function.parameters"),
                        "must be a JSON Schema object",
                    ));
                }
            }
            out.push(Tool {
                name: name.to_string(),
                function: function.clone(),
            });
        }
        let choice = match choice {
            None | Some(Value::Null) => ToolChoice::Auto,
            Some(Value::String(s)) => match s.as_str() {
                "auto" => ToolChoice::Auto,
                "none" => ToolChoice::None,
                "required" => ToolChoice::Required,
                other => {
                    return Err(tools_error(
                        "tool_choice",
                        format!("{other:?} (use auto, none, required or a function)"),
                    ));
                }
            },
            Some(v) => {
                let name = v
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| tools_error("tool_choice.function.name", "must be a string"))?;
                if !out.iter().any(|t| t.name == name) {
                    return Err(tools_error(
                        "tool_choice.function.name",
                        format!("{name:?} is not among the tools"),
                    ));
                }
                ToolChoice::Function(name.into())
            }
        };
        if out.is_empty() && matches!(choice, ToolChoice::Required | ToolChoice::Function(_)) {
            return Err(tools_error("tool_choice", "no tools were given"));
        }
        Ok(ToolSet {
            tools: out,
            choice,
            parallel: true,
        })
    }

    /// Whether the model is told of the tools (and its calls are read).
    pub fn active(&self) -> bool {
        !self.tools.is_empty() && self.choice != ToolChoice::None
    }

    /// The function objects the prompt lists.
    pub fn functions(&self) -> Vec<Value> {
        if !self.active() {
            return Vec::new();
        }
        self.tools.iter().map(|t| t.function.clone()).collect()
    }

    /// For `required` or a named function: a Lark grammar admitting only
    /// a call list of the allowed tools, each argument valid under its
    /// schema (required ones first, in the schema's order, then any
    /// optional ones, in order). `special_markers`: the tokenizer has the
    /// call markers as special tokens (else they are text).
    pub fn constraint(&self, special_markers: bool) -> Option<Constraint> {
        let allowed: Vec<&Tool> = match &self.choice {
            ToolChoice::Required => self.tools.iter().collect(),
            ToolChoice::Function(n) => self.tools.iter().filter(|t| &t.name == n).collect(),
            ToolChoice::Auto | ToolChoice::None => return None,
        };
        let marker = |m: &str| {
            if special_markers {
                m.to_string()
            } else {
                lark_string(m)
            }
        };
        let more = match self.choice {
            ToolChoice::Required if self.parallel => " (\", \" call)*",
            _ => "",
        };
        let mut g = format!(
            "start: {} \"[\" call{more} \"]\" {}\n",
            marker(CALL_START),
            marker(CALL_END)
        );
        let calls: Vec<String> = (0..allowed.len()).map(|k| format!("call_{k}")).collect();
        g.push_str(&format!("call: {}\n", calls.join(" | ")));
        for (k, tool) in allowed.iter().enumerate() {
            arguments_grammar(&mut g, k, tool);
        }
        Some(Constraint::Lark(g))
    }
}

/// A Lark string literal.
fn lark_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// Rules `call_K` for `tool`: `name(` arguments `)`, each `key=VALUE` with
/// `VALUE` the property's schema as `%json`.
fn arguments_grammar(g: &mut String, k: usize, tool: &Tool) {
    let params = tool.parameters();
    let required: Vec<&str> = params
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let empty = serde_json::Map::new();
    let props = params
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    // Required arguments first (in the order `required` lists them),
    // then the optional ones.
    let mut args: Vec<(&str, &Value, bool)> = required
        .iter()
        .filter_map(|&r| props.get(r).map(|s| (r, s, true)))
        .collect();
    args.extend(
        props
            .iter()
            .filter(|(name, _)| !required.contains(&name.as_str()))
            .map(|(name, s)| (name.as_str(), s, false)),
    );
    let n = args.len();
    // first_i: the list from argument i on, nothing before it;
    // rest_i: the same after an argument (each one led by ", ").
    for (i, (name, schema, req)) in args.iter().enumerate() {
        let mut schema = (*schema).clone();
        bound_numbers(&mut schema);
        compact_json(&mut schema, true);
        g.push_str(&format!(
            "arg_{k}_{i}: {}\"=\" %json {}\n",
            lark_string(name),
            schema
        ));
        let (first, rest) = (format!("first_{k}_{i}"), format!("rest_{k}_{i}"));
        let (first_next, rest_next) = (
            format!("first_{k}_{}", i + 1),
            format!("rest_{k}_{}", i + 1),
        );
        if *req {
            g.push_str(&format!("{first}: arg_{k}_{i} {rest_next}\n"));
            g.push_str(&format!("{rest}: \", \" arg_{k}_{i} {rest_next}\n"));
        } else {
            g.push_str(&format!(
                "{first}: arg_{k}_{i} {rest_next} | {first_next}\n"
            ));
            g.push_str(&format!(
                "{rest}: \", \" arg_{k}_{i} {rest_next} | {rest_next}\n"
            ));
        }
    }
    g.push_str(&format!("first_{k}_{n}: \"\"\nrest_{k}_{n}: \"\"\n"));
    g.push_str(&format!(
        "call_{k}: {}\"(\" first_{k}_0 \")\"\n",
        lark_string(&tool.name)
    ));
}

/// What decoding must match: `constraint` (a request's own), or the call
/// grammar a `required` / named-function `tools` choice implies; both at
/// once is an error.
pub fn decoding_constraint(
    constraint: Option<&Constraint>,
    tools: &ToolSet,
    tok: &TextTokenizer,
) -> Result<Option<Constraint>, crate::RuntimeError> {
    match (constraint, tools.constraint(markers_are_special(tok))) {
        (Some(_), Some(_)) => Err(crate::RuntimeError::Constraint(
            "a response format and a required tool call can't both apply".into(),
        )),
        (c, t) => Ok(c.cloned().or(t)),
    }
}

/// Whether `tok` has the call markers as special tokens (LFM2's and
/// LFM2.5's tokenizers do; then a grammar names them as tokens).
pub fn markers_are_special(tok: &TextTokenizer) -> bool {
    let added = tok.inner().get_added_tokens_decoder();
    [CALL_START, CALL_END].iter().all(|m| {
        tok.token_to_id(m)
            .and_then(|id| added.get(&id))
            .is_some_and(|a| a.special)
    })
}

/// Gives every number and integer in `schema` without bounds the range
/// JSON readers agree on (integers within ±(2^53 − 1), numbers within
/// ±10^15): unbounded, the grammar admits numbers like `5e923762622`
/// that no JSON reader can hold (a random model writes them).
fn bound_numbers(schema: &mut Value) {
    match schema {
        Value::Object(o) => {
            let types: Vec<&str> = match o.get("type") {
                Some(Value::String(t)) => vec![t.as_str()],
                Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let range = if types.contains(&"number") {
                Some((json!(-1e15), json!(1e15)))
            } else if types.contains(&"integer") {
                Some((
                    json!(-9_007_199_254_740_991i64),
                    json!(9_007_199_254_740_991i64),
                ))
            } else {
                None
            };
            if let Some((low, limit)) = range {
                if !o.contains_key("minimum") && !o.contains_key("exclusiveMinimum") {
                    o.insert("minimum".into(), low);
                }
                if !o.contains_key("maximum") && !o.contains_key("exclusiveMaximum") {
                    o.insert("maximum".into(), limit);
                }
            }
            o.values_mut().for_each(bound_numbers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_numbers),
        _ => {}
    }
}

/// What a reply holds: its text with the call lists taken out, and the
/// calls. Text without call markers is all content.
pub fn split_calls(text: &str) -> Result<(String, Vec<ToolCall>), CallSyntaxError> {
    let mut content = String::new();
    let mut calls = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(CALL_START) {
        content.push_str(&rest[..at]);
        let after = &rest[at + CALL_START.len()..];
        match after.find(CALL_END) {
            Some(end) => {
                calls.extend(pycall::parse_calls(&after[..end])?);
                rest = &after[end + CALL_END.len()..];
            }
            // Cut short (max_tokens): the calls written whole.
            None => {
                calls.extend(pycall::whole_calls(after));
                rest = "";
            }
        }
    }
    content.push_str(rest);
    Ok((content, calls))
}

/// `calls` as an assistant turn writes them (for the history).
pub fn write_calls(calls: &[ToolCall]) -> String {
    format!("{CALL_START}{}{CALL_END}", pycall::write_calls(calls))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> Value {
        json!([{"type": "function", "function": {
            "name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string"},
                "unit": {"enum": ["c", "f"]},
                "days": {"type": "integer"}},
            "required": ["city"]}}},
            {"type": "function", "function": {"name": "now"}}])
    }

    #[test]
    fn openai_tools_and_choices_are_read() {
        let tools = weather();
        let t = ToolSet::from_openai(tools.as_array().unwrap(), None).unwrap();
        assert_eq!(t.tools.len(), 2);
        assert_eq!(t.choice, ToolChoice::Auto);
        assert!(t.active());
        assert_eq!(t.functions()[1], json!({"name": "now"}));
        let named = json!({"type": "function", "function": {"name": "now"}});
        let t = ToolSet::from_openai(tools.as_array().unwrap(), Some(&named)).unwrap();
        assert_eq!(t.choice, ToolChoice::Function("now".into()));
        let none = ToolSet::from_openai(tools.as_array().unwrap(), Some(&json!("none"))).unwrap();
        assert!(!none.active() && none.functions().is_empty());
        for (tools, choice, param) in [
            (json!([{"type": "retrieval"}]), None, "tools[0].type"),
            (
                json!([{"type": "function", "function": {}}]),
                None,
                "tools[0].function.name",
            ),
            (
                json!([{"type": "function", "function": {"name": "a b"}}]),
                None,
                "tools[0].function.name",
            ),
            (
                json!([{"name": "a"}, {"name": "a"}]),
                None,
                "tools[1].function.name",
            ),
            (
                json!([{"name": "a", "parameters": 3}]),
                None,
                "tools[0].function.parameters",
            ),
            (
                json!([{"name": "a"}]),
                Some(json!("sometimes")),
                "tool_choice",
            ),
            (
                json!([{"name": "a"}]),
                Some(json!({"function": {"name": "b"}})),
                "tool_choice.function.name",
            ),
            (json!([]), Some(json!("required")), "tool_choice"),
        ] {
            let e = ToolSet::from_openai(tools.as_array().unwrap(), choice.as_ref()).unwrap_err();
            assert_eq!(e.param, param, "{tools} {choice:?}: {e}");
        }
    }

    #[test]
    fn replies_split_into_content_and_calls() {
        let (content, calls) = split_calls(
            "Sure. <|tool_call_start|>[get_weather(city=\"Oslo\")]<|tool_call_end|>Checking.",
        )
        .unwrap();
        assert_eq!(content, "Sure. Checking.");
        assert_eq!(calls[0].arguments, json!({"city": "Oslo"}));
        assert_eq!(split_calls("plain").unwrap(), ("plain".into(), vec![]));
        assert!(split_calls("<|tool_call_start|>[oops(<|tool_call_end|>").is_err());
        let written = write_calls(&calls);
        assert_eq!(split_calls(&written).unwrap().1, calls);
    }

    #[test]
    fn required_choice_builds_a_grammar_of_calls() {
        let tools = weather();
        let t = ToolSet::from_openai(tools.as_array().unwrap(), Some(&json!("required"))).unwrap();
        let Some(Constraint::Lark(g)) = t.constraint(false) else {
            panic!("no grammar");
        };
        assert!(g.starts_with("start: \"<|tool_call_start|>\" \"[\""), "{g}");
        assert!(
            g.contains("call_0: \"get_weather\"\"(\" first_0_0 \")\""),
            "{g}"
        );
        let Some(Constraint::Lark(g)) = t.constraint(true) else {
            panic!("no grammar");
        };
        assert!(g.starts_with("start: <|tool_call_start|> \"[\""), "{g}");
        let auto = ToolSet::from_openai(tools.as_array().unwrap(), None).unwrap();
        assert_eq!(auto.constraint(false), None);
    }
}
