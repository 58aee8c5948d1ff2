//! LFM2's tool calls as it writes them: a Pythonic list of calls,
//! `[get_weather(city="Paris", days=3), now()]`, read into names and JSON
//! arguments; and the same written back for a conversation's history.
//! Values are Python literals (strings in either quote, numbers,
//! `True`/`False`/`None`, lists, tuples and dicts); JSON's `true`, `false`
//! and `null` are read too (a constrained call writes JSON values).

use serde_json::{Map, Number, Value};

use super::ToolCall;

/// Where a call list stopped making sense.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{what} at byte {at} of {text:?}")]
pub struct CallSyntaxError {
    pub what: String,
    pub at: usize,
    pub text: String,
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

type Read<T> = Result<T, CallSyntaxError>;

impl Reader<'_> {
    fn fail<T>(&self, what: &str) -> Read<T> {
        Err(CallSyntaxError {
            what: what.into(),
            at: self.i,
            text: self.text.into(),
        })
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Read<()> {
        if self.eat(c) {
            Ok(())
        } else {
            self.fail(&format!("expected {:?}", c as char))
        }
    }

    /// A name: letters, digits, `_`, and dots between parts (`math.sqrt`).
    fn name(&mut self) -> Read<String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'_' | b'.'))
        {
            self.i += 1;
        }
        if self.i == start || self.s[start].is_ascii_digit() {
            return self.fail("expected a name");
        }
        Ok(self.text[start..self.i].to_string())
    }

    /// Items up to `close`, separated by commas (a trailing one allowed).
    fn items(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Read<()>) -> Read<()> {
        loop {
            if self.eat(close) {
                return Ok(());
            }
            item(self)?;
            if !self.eat(b',') {
                return self.expect(close);
            }
        }
    }

    fn call(&mut self) -> Read<ToolCall> {
        let name = self.name()?;
        self.expect(b'(')?;
        let mut arguments = Map::new();
        self.items(b')', |r| {
            let key = r.name()?;
            r.expect(b'=')?;
            let v = r.value()?;
            if arguments.insert(key, v).is_some() {
                return r.fail("repeated argument");
            }
            Ok(())
        })?;
        Ok(ToolCall {
            name,
            arguments: Value::Object(arguments),
        })
    }

    fn value(&mut self) -> Read<Value> {
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => self.string(q).map(Value::String),
            Some(b'[') => self.list(b'[', b']'),
            Some(b'(') => self.list(b'(', b')'),
            Some(b'{') => {
                self.i += 1;
                let mut m = Map::new();
                self.items(b'}', |r| {
                    let key = match r.value()? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    r.expect(b':')?;
                    m.insert(key, r.value()?);
                    Ok(())
                })?;
                Ok(Value::Object(m))
            }
            Some(c) if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_digit() => self.number(),
            Some(_) => {
                let at = self.i;
                match self.name().unwrap_or_default().as_str() {
                    "True" | "true" => Ok(Value::Bool(true)),
                    "False" | "false" => Ok(Value::Bool(false)),
                    "None" | "null" => Ok(Value::Null),
                    _ => {
                        self.i = at;
                        self.fail("expected a value")
                    }
                }
            }
            None => self.fail("expected a value"),
        }
    }

    fn list(&mut self, open: u8, close: u8) -> Read<Value> {
        self.expect(open)?;
        let mut v = Vec::new();
        self.items(close, |r| {
            v.push(r.value()?);
            Ok(())
        })?;
        Ok(Value::Array(v))
    }

    fn number(&mut self) -> Read<Value> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric()
                || matches!(self.s[self.i], b'.' | b'-' | b'+'))
        {
            self.i += 1;
        }
        let t = self.text[start..self.i].replace('_', "");
        let n = t
            .parse::<i64>()
            .ok()
            .map(Number::from)
            .or_else(|| t.parse::<f64>().ok().and_then(Number::from_f64));
        match n {
            Some(n) => Ok(Value::Number(n)),
            None => {
                self.i = start;
                self.fail("expected a number")
            }
        }
    }

    /// A quoted string with Python's (and JSON's) escapes.
    fn string(&mut self, q: u8) -> Read<String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.i..];
            let Some(c) = rest.chars().next() else {
                return self.fail("unterminated string");
            };
            self.i += c.len_utf8();
            match c {
                c if c as u32 == q as u32 => return Ok(out),
                '\\' => {
                    let Some(e) = self.text[self.i..].chars().next() else {
                        return self.fail("unterminated string");
                    };
                    self.i += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        '0' => out.push('\0'),
                        'u' | 'x' => {
                            let n = if e == 'u' { 4 } else { 2 };
                            let hex = self.text.get(self.i..self.i + n).unwrap_or_default();
                            let Some(ch) =
                                u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                            else {
                                return self.fail("bad escape");
                            };
                            self.i += n;
                            out.push(ch);
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }
}

/// Reads a call list, `[f(a=1), g()]` (the brackets may be left out for a
/// single call), or the JSON form some prompts ask for:
/// `[{"name": "f", "arguments": {"a": 1}}]`.
pub fn parse_calls(text: &str) -> Result<Vec<ToolCall>, CallSyntaxError> {
    let t = text.trim();
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(t)
        && let Some(calls) = items
            .iter()
            .map(|c| {
                let name = c.get("name")?.as_str()?.to_string();
                let arguments = c
                    .get("arguments")
                    .cloned()
                    .unwrap_or(Value::Object(Map::new()));
                arguments
                    .is_object()
                    .then_some(ToolCall { name, arguments })
            })
            .collect::<Option<Vec<_>>>()
    {
        return Ok(calls);
    }
    let mut r = Reader {
        s: t.as_bytes(),
        i: 0,
        text: t,
    };
    let mut calls = Vec::new();
    if r.eat(b'[') {
        r.items(b']', |r| {
            calls.push(r.call()?);
            Ok(())
        })?;
    } else {
        calls.push(r.call()?);
    }
    if r.peek().is_some() {
        return r.fail("unexpected text after the calls");
    }
    Ok(calls)
}

/// The calls of a list cut short (`[f(a=1), g(b=`): those written whole.
pub fn whole_calls(text: &str) -> Vec<ToolCall> {
    let t = text.trim();
    let mut r = Reader {
        s: t.as_bytes(),
        i: 0,
        text: t,
    };
    let mut calls = Vec::new();
    if !r.eat(b'[') {
        return calls;
    }
    while let Ok(c) = r.call() {
        calls.push(c);
        if !r.eat(b',') {
            break;
        }
    }
    calls
}

/// A JSON value as a Python literal (strings double-quoted as JSON does,
/// which Python reads too).
fn python_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&Value::String(s.clone()).to_string()),
        Value::Array(items) => {
            out.push('[');
            for (k, x) in items.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                python_value(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (k, (key, x)) in m.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(": ");
                python_value(x, out);
            }
            out.push('}');
        }
    }
}

/// `calls` as LFM2 writes them: `[f(a=1, b="x"), g()]`.
pub fn write_calls(calls: &[ToolCall]) -> String {
    let mut out = String::from("[");
    for (k, c) in calls.iter().enumerate() {
        if k > 0 {
            out.push_str(", ");
        }
        out.push_str(&c.name);
        out.push('(');
        if let Value::Object(args) = &c.arguments {
            for (j, (key, v)) in args.iter().enumerate() {
                if j > 0 {
                    out.push_str(", ");
                }
                out.push_str(key);
                out.push('=');
                python_value(v, &mut out);
            }
        }
        out.push(')');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(name: &str, arguments: Value) -> ToolCall {
        ToolCall {
            name: name.into(),
            arguments,
        }
    }

    #[test]
    fn pythonic_calls_read_into_json_arguments() {
        let got = parse_calls(
            r#"[get_weather(city="Paris", days=3, metric=True), now(),
                 f(x='it\'s', y=None, z=[1, -2.5, (3, 4)], w={"a": false, 'b': null},)]"#,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                call(
                    "get_weather",
                    json!({"city": "Paris", "days": 3, "metric": true})
                ),
                call("now", json!({})),
                call(
                    "f",
                    json!({"x": "it's", "y": null, "z": [1, -2.5, [3, 4]], "w": {"a": false, "b": null}})
                ),
            ]
        );
        assert_eq!(parse_calls("now()").unwrap(), vec![call("now", json!({}))]);
        assert_eq!(
            parse_calls(r#"[{"name": "f", "arguments": {"a": 1}}]"#).unwrap(),
            vec![call("f", json!({"a": 1}))]
        );
    }

    #[test]
    fn written_calls_read_back() {
        let calls = vec![
            call(
                "a.b",
                json!({"s": "q\"uote\n", "n": 1.5, "l": [true, null], "o": {"k": -3}}),
            ),
            call("g", json!({})),
        ];
        let text = write_calls(&calls);
        assert_eq!(
            text,
            r#"[a.b(s="q\"uote\n", n=1.5, l=[True, None], o={"k": -3}), g()]"#
        );
        assert_eq!(parse_calls(&text).unwrap(), calls);
    }

    #[test]
    fn a_list_cut_short_keeps_its_whole_calls() {
        assert_eq!(
            whole_calls("[f(a=1), g(b=\"x\"), h(c="),
            vec![call("f", json!({"a": 1})), call("g", json!({"b": "x"}))]
        );
        assert_eq!(whole_calls("[f(a"), vec![]);
        assert_eq!(whole_calls(""), vec![]);
    }

    #[test]
    fn broken_calls_say_where() {
        for (text, what) in [
            ("[f(a=1]", "expected ')'"),
            ("[f(a=)]", "expected a value"),
            ("[f(a=1, a=2)]", "repeated argument"),
            ("[f(a=\"x)]", "unterminated string"),
            ("[f(1)]", "expected a name"),
            ("[f()] trailing", "unexpected text"),
            ("hello", "expected '('"),
            ("", "expected a name"),
        ] {
            let e = parse_calls(text).unwrap_err();
            assert!(e.what.starts_with(what), "{text:?}: {e}");
        }
    }
}
