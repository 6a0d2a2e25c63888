//! Finds the top-level `"id"` of a JSON object streamed past in chunks, in constant memory.
//!
//! Used only for lines over the size cap: palisade never holds such a line, but it still owes the peer an
//! answer for that request id (a request the server will never see, or a response the client will never
//! get). The scanner tracks strings, escapes and nesting depth, so an `"id"` inside `params` or inside a
//! string is never mistaken for the message's own id. It only reports an id it has seen whole.

use crate::Id;

/// Longest id token kept (longer ids are not recovered).
const MAX_ID_TOKEN: usize = 256;

#[derive(Debug, Default)]
enum Capture {
    /// Not capturing.
    #[default]
    Idle,
    /// After `"id":` at depth 1, waiting for the value to start.
    Await,
    /// Inside the id value.
    Value(Vec<u8>),
}

/// The streaming scanner. Feed every byte of the line in order with [`IdSniffer::feed`].
#[derive(Debug, Default)]
pub(crate) struct IdSniffer {
    depth: u32,
    in_str: bool,
    esc: bool,
    /// At depth 1, the next string is an object key.
    expect_key: bool,
    /// The depth-1 key string being read (only while it can still equal `id`).
    key: Option<Vec<u8>>,
    /// The last depth-1 key was `"id"` and no `:` has been seen yet.
    key_is_id: bool,
    capture: Capture,
    found: Option<Vec<u8>>,
    /// The outer value was not an object; nothing to find.
    dead: bool,
    started: bool,
}

impl IdSniffer {
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if self.dead || self.found.is_some() {
                return;
            }
            self.byte(b);
        }
    }

    fn byte(&mut self, b: u8) {
        if let Capture::Value(v) = &mut self.capture {
            let is_string = v.first() == Some(&b'"');
            let done = if is_string {
                if self.esc {
                    self.esc = false;
                    false
                } else if b == b'\\' {
                    self.esc = true;
                    false
                } else {
                    b == b'"'
                }
            } else {
                matches!(b, b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n')
            };
            if is_string {
                v.push(b);
            }
            if done {
                let token = std::mem::take(v);
                self.capture = Capture::Idle;
                self.found = Some(token);
                return;
            }
            if !is_string {
                v.push(b);
            }
            if v.len() > MAX_ID_TOKEN {
                self.dead = true;
            }
            return;
        }
        if self.in_str {
            if self.esc {
                self.esc = false;
            } else if b == b'\\' {
                self.esc = true;
                self.key = None;
            } else if b == b'"' {
                self.in_str = false;
                if let Some(k) = self.key.take() {
                    self.key_is_id = k == b"id";
                }
                return;
            }
            if let Some(k) = &mut self.key {
                k.push(b);
                if k.len() > 2 {
                    self.key = None;
                }
            }
            return;
        }
        if b.is_ascii_whitespace() {
            return;
        }
        if !self.started {
            self.started = true;
            if b != b'{' {
                self.dead = true;
                return;
            }
        }
        if matches!(self.capture, Capture::Await) {
            if b == b'"' || b == b'-' || b.is_ascii_digit() {
                self.capture = Capture::Value(vec![b]);
                return;
            }
            // null, objects, arrays: not a usable id.
            self.capture = Capture::Idle;
        }
        match b {
            b'"' => {
                self.in_str = true;
                self.key = (self.depth == 1 && self.expect_key).then(Vec::new);
                self.key_is_id = false;
                self.expect_key = false;
            }
            b'{' => {
                self.depth += 1;
                self.expect_key = self.depth == 1;
            }
            b'[' => self.depth += 1,
            b'}' | b']' => self.depth = self.depth.saturating_sub(1),
            b',' if self.depth == 1 => self.expect_key = true,
            b':' if self.depth == 1 && self.key_is_id => {
                self.key_is_id = false;
                self.capture = Capture::Await;
            }
            _ => self.key_is_id = false,
        }
    }

    /// The id, if one was seen whole at the top level.
    pub(crate) fn finish(mut self) -> Option<Id> {
        // A numeric id that ends the input without a delimiter is complete only if the object closed,
        // which a cut-off line never shows; so only ids closed by a delimiter count.
        let token = self.found.take()?;
        let v: serde_json::Value = serde_json::from_slice(&token).ok()?;
        Id::from_value(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff_in_chunks(text: &str, chunk: usize) -> Option<String> {
        let mut s = IdSniffer::default();
        for c in text.as_bytes().chunks(chunk) {
            s.feed(c);
        }
        s.finish().map(|i| i.as_json().to_owned())
    }

    #[test]
    fn finds_the_top_level_id_wherever_it_is() {
        for chunk in [1, 3, 1000] {
            assert_eq!(
                sniff_in_chunks(r#"{"jsonrpc":"2.0","id":42,"result":{}}"#, chunk).as_deref(),
                Some("42")
            );
            assert_eq!(
                sniff_in_chunks(r#"{"result":{"id":7,"x":"\"id\":9"},"id":"a\"b"}"#, chunk)
                    .as_deref(),
                Some(r#""a\"b""#)
            );
            assert_eq!(
                sniff_in_chunks(r#"{ "id" : -3 , "method":"x"}"#, chunk).as_deref(),
                Some("-3")
            );
        }
    }

    #[test]
    fn ignores_nested_ids_ids_in_strings_and_partial_ids() {
        assert_eq!(
            sniff_in_chunks(r#"{"params":{"id":1},"x":"{\"id\":2}"#, 4),
            None
        );
        assert_eq!(
            sniff_in_chunks(r#"{"jsonrpc":"2.0","result":"...."#, 4),
            None
        );
        assert_eq!(
            sniff_in_chunks(r#"{"jsonrpc":"2.0","id":12"#, 4),
            None,
            "cut off inside the number"
        );
        assert_eq!(sniff_in_chunks(r#"{"idx":1,"id":null}"#, 4), None);
        assert_eq!(sniff_in_chunks(r#"[{"id":1}]"#, 4), None);
        assert_eq!(
            sniff_in_chunks(r#"{"i\u0064":5}"#, 4),
            None,
            "escaped keys are not matched"
        );
    }
}
