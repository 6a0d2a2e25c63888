//! A small JSONC reader that keeps spans.
//!
//! MCP client configs are JSON, but VS Code, Zed and Cursor accept (and users write) JSONC: `//` and
//! `/* */` comments and trailing commas. serde_json drops positions and refuses both, so this reader
//! exists: it builds a [`Node`] tree where every key and value carries its byte range, which is what
//! findings (line:col, SARIF regions) and `palisade wrap` (in-place edits that keep comments) need.
//! The grammar is JSON's plus those two relaxations, and nothing more: no single quotes, no unquoted
//! keys, no NaN. A UTF-8 byte-order mark is skipped. Nesting deeper than [`MAX_DEPTH`] is refused, so a
//! hostile file cannot exhaust the stack. Duplicate keys are kept (see [`crate::doc`]).

use crate::doc::{Key, Node, Value};

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 128;

/// Why a text is not JSONC, and the byte offset where that became clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// What was wrong, for a person.
    pub message: String,
    /// Byte offset in the text.
    pub offset: usize,
}

/// Parses `text` as JSONC.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
        depth: 0,
    };
    if text.starts_with('\u{feff}') {
        p.i = 3;
    }
    p.ws()?;
    let v = p.value()?;
    p.ws()?;
    if p.i < p.s.len() {
        return Err(p.err("unexpected text after the end of the document"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            message: message.into(),
            offset: self.i,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Skips whitespace and comments.
    fn ws(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.i += 1,
                Some(b'/') => match self.s.get(self.i + 1) {
                    Some(b'/') => {
                        while let Some(c) = self.peek() {
                            if c == b'\n' {
                                break;
                            }
                            self.i += 1;
                        }
                    }
                    Some(b'*') => {
                        let start = self.i;
                        self.i += 2;
                        loop {
                            match self.peek() {
                                None => {
                                    self.i = start;
                                    return Err(self.err("unterminated /* comment"));
                                }
                                Some(b'*') if self.s.get(self.i + 1) == Some(&b'/') => {
                                    self.i += 2;
                                    break;
                                }
                                Some(_) => self.i += 1,
                            }
                        }
                    }
                    _ => return Err(self.err("unexpected '/' (comments start with // or /*)")),
                },
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self) -> Result<Node, SyntaxError> {
        let start = self.i;
        match self.peek() {
            Some(b'{') => self.nested(|p| p.object()),
            Some(b'[') => self.nested(|p| p.array()),
            Some(b'"') => {
                let s = self.string()?;
                Ok(Node {
                    value: Value::String(s),
                    span: start..self.i,
                })
            }
            Some(b't') => self.word("true", Value::Bool(true)),
            Some(b'f') => self.word("false", Value::Bool(false)),
            Some(b'n') => self.word("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => {
                Err(self
                    .err("expected a value (object, array, string, number, true, false or null)"))
            }
            None => Err(self.err("unexpected end of input; expected a value")),
        }
    }

    fn nested(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<Node, SyntaxError>,
    ) -> Result<Node, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn word(&mut self, w: &str, v: Value) -> Result<Node, SyntaxError> {
        let start = self.i;
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(Node {
                value: v,
                span: start..self.i,
            })
        } else {
            Err(self.err("expected a value (object, array, string, number, true, false or null)"))
        }
    }

    fn number(&mut self) -> Result<Node, SyntaxError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = |p: &mut Self| {
            let from = p.i;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i > from
        };
        if !digits(self) {
            return Err(self.err("expected digits in number"));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(self.err("expected digits after the decimal point"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return Err(self.err("expected digits in the exponent"));
            }
        }
        Ok(Node {
            value: Value::Number(self.text[start..self.i].to_owned()),
            span: start..self.i,
        })
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let open = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            let run = self.i;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.i += 1;
            }
            out.push_str(&self.text[run..self.i]);
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek();
                    self.i += 1;
                    match c {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\u{8}'),
                        Some(b'f') => out.push('\u{c}'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => out.push(self.unicode_escape()?),
                        _ => {
                            self.i -= 1;
                            return Err(self.err("invalid escape in string"));
                        }
                    }
                }
                Some(_) => return Err(self.err("control character in string (escape it)")),
                None => {
                    self.i = open;
                    return Err(self.err("unterminated string"));
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let h = self
            .text
            .get(self.i..self.i + 4)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("expected four hex digits after \\u"))?;
        self.i += 4;
        Ok(h)
    }

    fn unicode_escape(&mut self) -> Result<char, SyntaxError> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
            let save = self.i;
            self.i += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{fffd}'));
            }
            self.i = save;
        }
        // A lone surrogate becomes U+FFFD, as JavaScript would keep an unpaired one.
        Ok(char::from_u32(hi).unwrap_or('\u{fffd}'))
    }

    fn object(&mut self) -> Result<Node, SyntaxError> {
        let start = self.i;
        self.i += 1;
        let mut entries = Vec::new();
        loop {
            self.ws()?;
            match self.peek() {
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                Some(b'"') => {}
                None => return Err(self.err("unterminated object; expected '}'")),
                Some(_) => return Err(self.err("expected a quoted key or '}'")),
            }
            let kstart = self.i;
            let name = self.string()?;
            let key = Key {
                name,
                span: kstart..self.i,
            };
            self.ws()?;
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':' after the key"));
            }
            self.i += 1;
            self.ws()?;
            let v = self.value()?;
            entries.push((key, v));
            self.ws()?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                None => return Err(self.err("unterminated object; expected '}'")),
                Some(_) => return Err(self.err("expected ',' or '}' after a value")),
            }
        }
        Ok(Node {
            value: Value::Object(entries),
            span: start..self.i,
        })
    }

    fn array(&mut self) -> Result<Node, SyntaxError> {
        let start = self.i;
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws()?;
            if self.peek() == Some(b']') {
                self.i += 1;
                break;
            }
            if self.peek().is_none() {
                return Err(self.err("unterminated array; expected ']'"));
            }
            items.push(self.value()?);
            self.ws()?;
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    break;
                }
                None => return Err(self.err("unterminated array; expected ']'")),
                Some(_) => return Err(self.err("expected ',' or ']' after a value")),
            }
        }
        Ok(Node {
            value: Value::Array(items),
            span: start..self.i,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_comments_and_trailing_commas() {
        let text =
            "// head\n{\n  /* block */ \"a\": [1, 2,], // tail\n  \"b\": {\"c\": \"d\",},\n}\n";
        let n = parse(text).unwrap();
        assert_eq!(n.get("a").unwrap().as_array().unwrap().len(), 2);
        assert_eq!(n.get("b").unwrap().get("c").unwrap().as_str(), Some("d"));
    }

    #[test]
    fn spans_cover_keys_and_values_exactly() {
        let text = r#"{"k": "v\n", "n": -1.5e3}"#;
        let n = parse(text).unwrap();
        let (k, v) = n.entry("k").unwrap();
        assert_eq!(&text[k.span.clone()], "\"k\"");
        assert_eq!(&text[v.span.clone()], "\"v\\n\"");
        assert_eq!(v.as_str(), Some("v\n"));
        assert_eq!(&text[n.get("n").unwrap().span.clone()], "-1.5e3");
    }

    #[test]
    fn duplicate_keys_resolve_to_the_last_as_json_parse_does() {
        let n = parse(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
        assert_eq!(n.get("a").unwrap().value, Value::Number("3".into()));
        let names: Vec<_> = n.entries().iter().map(|(k, _)| k.name.clone()).collect();
        assert_eq!(names, ["b", "a"]);
    }

    #[test]
    fn unescapes_unicode_including_surrogate_pairs() {
        let n = parse(r#"["\u00e9\ud83d\ude00\/"]"#).unwrap();
        assert_eq!(n.as_array().unwrap()[0].as_str(), Some("é😀/"));
    }

    #[test]
    fn rejects_broken_documents_with_the_offset() {
        for (text, at) in [
            ("{\"a\" 1}", 5),
            ("{\"a\": 1", 7),
            ("[1 2]", 3),
            ("{'a': 1}", 1),
            ("{\"a\": tru}", 6),
            ("\"abc", 0),
            ("/* open", 0),
            ("{} x", 3),
            ("", 0),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.offset, at, "{text:?}: {}", e.message);
        }
    }

    #[test]
    fn refuses_excessive_nesting() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).unwrap_err().message.contains("deeper"));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn skips_a_byte_order_mark() {
        assert!(parse("\u{feff}{}").unwrap().is_object());
    }
}
