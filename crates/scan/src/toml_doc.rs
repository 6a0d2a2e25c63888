//! TOML (Codex's `config.toml`) into the spanned [`Node`] tree, through `toml`'s span-keeping `DeTable`.
//!
//! Tables become objects sorted by position in the file (the `toml` map orders keys lexically), so
//! servers are reported in the order the user wrote them.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::doc::{Key, Node, Value};

/// A TOML syntax error with its byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// What was wrong.
    pub message: String,
    /// Byte offset in the text.
    pub offset: usize,
}

/// Parses `text` as TOML.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let root = DeTable::parse(text).map_err(|e| SyntaxError {
        message: e.message().trim().to_owned(),
        offset: e.span().map_or(0, |s| s.start),
    })?;
    Ok(table(root.get_ref(), root.span()))
}

fn table(t: &DeTable<'_>, span: std::ops::Range<usize>) -> Node {
    let mut entries: Vec<(Key, Node)> = t
        .iter()
        .map(|(k, v)| {
            (
                Key {
                    name: k.get_ref().to_string(),
                    span: k.span(),
                },
                node(v),
            )
        })
        .collect();
    entries.sort_by_key(|(k, _)| k.span.start);
    Node {
        value: Value::Object(entries),
        span,
    }
}

fn node(v: &Spanned<DeValue<'_>>) -> Node {
    let span = v.span();
    let value = match v.get_ref() {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => Value::Number(i.as_str().to_owned()),
        DeValue::Float(f) => Value::Number(f.as_str().to_owned()),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Number(d.to_string()),
        DeValue::Array(a) => Value::Array(a.iter().map(node).collect()),
        DeValue::Table(t) => return table(t, span),
    };
    Node { value, span }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_spans_of_keys_and_values() {
        let text = "[mcp_servers.b]\ncommand = \"npx\"\nargs = [\"-y\", \"x\"]\n\n[mcp_servers.a]\nurl = \"https://h\"\n";
        let n = parse(text).unwrap();
        let servers = n.get("mcp_servers").unwrap();
        let names: Vec<_> = servers
            .entries()
            .iter()
            .map(|(k, _)| k.name.clone())
            .collect();
        assert_eq!(names, ["b", "a"], "file order, not lexical");
        let cmd = servers.get("b").unwrap().get("command").unwrap();
        assert_eq!(&text[cmd.span.clone()], "\"npx\"");
        let args = servers
            .get("b")
            .unwrap()
            .get("args")
            .unwrap()
            .as_array()
            .unwrap();
        assert_eq!(&text[args[1].span.clone()], "\"x\"");
    }

    #[test]
    fn reports_syntax_errors_with_an_offset() {
        let e = parse("a = \n").unwrap_err();
        assert!(e.offset <= 5, "{e:?}");
        assert!(!e.message.is_empty());
    }
}
