//! Generated ids to streamed text: incremental detokenization that never
//! splits a UTF-8 character, never streams what may be the start of a stop
//! string, and cuts the text at the first stop string. One per generation;
//! [`crate::engine::Engine::generate`] and the scheduler's jobs share it.

use model::prompt::TextTokenizer;

pub struct TextStream {
    stop_ids: Vec<u32>,
    stops: Vec<String>,
    /// Generated ids, stop ids left out.
    generated: Vec<u32>,
    /// Incremental detokenization (as vLLM does): `generated[prefix..read]`
    /// were decoded last time, `generated[read..]` are new; decoding from
    /// `prefix` on both sides keeps a tokenizer's first-token quirks (a
    /// stripped leading space) out of the difference, and costs a few
    /// tokens per step instead of the whole generation.
    prefix: usize,
    read: usize,
    /// The text so far (cut at a stop string once one appeared).
    text: String,
    /// Bytes of `text` already streamed.
    emitted: usize,
    stopped_by_string: bool,
    /// Drop special tokens from the text (all but tool-calling replies).
    skip_special: bool,
}

impl TextStream {
    /// `stop_ids` end generation and are never shown; `stop_strings` (empty
    /// ones ignored) end it and are cut from the text with what follows.
    pub fn new(stop_ids: &[u32], stop_strings: &[String]) -> Self {
        TextStream {
            stop_ids: stop_ids.to_vec(),
            stops: stop_strings
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect(),
            generated: Vec::new(),
            prefix: 0,
            read: 0,
            text: String::new(),
            emitted: 0,
            stopped_by_string: false,
            skip_special: true,
        }
    }

    /// `keep`: special tokens other than the stop ids stay in the text (a
    /// reply that may hold tool calls: their markers are special tokens).
    pub fn keeping_special(mut self, keep: bool) -> Self {
        self.skip_special = !keep;
        self
    }

    /// Whether a stop string has appeared (generation should end).
    pub fn stopped(&self) -> bool {
        self.stopped_by_string
    }

    /// Takes generated token `id`; returns the text that may be streamed
    /// now (possibly empty).
    pub fn push(&mut self, tok: &TextTokenizer, id: u32) -> &str {
        if self.stopped_by_string || self.stop_ids.contains(&id) {
            return "";
        }
        self.generated.push(id);
        let (Ok(before), Ok(now)) = (
            tok.decode(&self.generated[self.prefix..self.read], self.skip_special),
            tok.decode(&self.generated[self.prefix..], self.skip_special),
        ) else {
            return "";
        };
        // Hold back an incomplete UTF-8 sequence (shown as U+FFFD).
        if now.len() <= before.len() || now.ends_with('\u{fffd}') || !now.starts_with(&before) {
            return "";
        }
        self.text.push_str(&now[before.len()..]);
        (self.prefix, self.read) = (self.read, self.generated.len());
        if let Some(cut) = self.stops.iter().filter_map(|s| self.text.find(s)).min() {
            self.text.truncate(cut);
            self.stopped_by_string = true;
        }
        // Never stream what may turn out to be the start of a stop string.
        let safe = if self.stopped_by_string {
            self.text.len()
        } else {
            self.text.len() - held_back(&self.text, &self.stops)
        };
        let start = self.emitted;
        if safe > start && self.text.is_char_boundary(start) && self.text.is_char_boundary(safe) {
            self.emitted = safe;
            &self.text[start..safe]
        } else {
            ""
        }
    }

    /// Ends the stream: the final text (everything decoded, an incomplete
    /// UTF-8 tail included, cut at a stop string) and the part of it not
    /// yet streamed.
    pub fn finish(mut self, tok: &TextTokenizer) -> (String, String) {
        let streamed = self
            .text
            .get(..self.emitted)
            .unwrap_or_default()
            .to_string();
        if !self.stopped_by_string {
            if let Ok(full) = tok.decode(&self.generated, self.skip_special) {
                self.text = full;
            }
            if let Some(cut) = self.stops.iter().filter_map(|s| self.text.find(s)).min() {
                self.text.truncate(cut);
            }
        }
        // What was streamed is a prefix of the whole decode (the
        // incremental decode agrees with it); if a tokenizer ever made them
        // differ, nothing more is sent rather than a wrong tail.
        let rest = match self.text.strip_prefix(streamed.as_str()) {
            Some(r) => r.to_string(),
            None => String::new(),
        };
        (self.text, rest)
    }
}

/// Bytes at the end of `text` that could be the start of a stop string.
fn held_back(text: &str, stops: &[String]) -> usize {
    stops
        .iter()
        .flat_map(|s| {
            (1..s.len())
                .filter(|&n| s.is_char_boundary(n))
                .map(move |n| &s[..n])
        })
        .filter(|prefix| text.ends_with(prefix))
        .map(str::len)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::held_back;

    #[test]
    fn stream_holds_back_a_possible_stop_string_start() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(held_back("hello\n", &s(&["\n\n"])), 1);
        assert_eq!(held_back("hello", &s(&["\n\n"])), 0);
        assert_eq!(held_back("a <|im", &s(&["<|im_end|>", "x"])), 4);
        assert_eq!(held_back("abc", &[]), 0);
    }
}
