//! One spanned document tree for every config format.
//!
//! JSON, JSONC and TOML configs are all read into [`Node`]s that remember the byte range they came from,
//! so a finding can point at `file:line:col` (and a SARIF region), and so `palisade wrap` can later splice
//! new text over exactly the bytes of one value while leaving comments and formatting alone.
//!
//! Objects keep their entries in file order, duplicates included; [`Node::get`] returns the **last**
//! entry of a key, which is what `JSON.parse` (and so every JavaScript-based client) uses.

use std::ops::Range;

/// A byte range in the source text.
pub type Span = Range<usize>;

/// A value with the byte range it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it is in the source.
    pub span: Span,
}

/// An object key with the byte range it was read from (quotes included for JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The key, unescaped.
    pub name: String,
    /// Where it is in the source.
    pub span: Span,
}

/// A document value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number (or a TOML date/time), as written.
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Node>),
    /// An object / table, in file order, duplicates kept.
    Object(Vec<(Key, Node)>),
}

impl Node {
    /// The last entry named `key`, when this is an object.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The last entry named `key` with its key, when this is an object.
    pub fn entry(&self, key: &str) -> Option<(&Key, &Node)> {
        match &self.value {
            Value::Object(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k.name == key)
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The object's entries with duplicates resolved (last wins), in file order of the surviving entries.
    pub fn entries(&self) -> Vec<(&Key, &Node)> {
        match &self.value {
            Value::Object(entries) => entries
                .iter()
                .enumerate()
                .filter(|(i, (k, _))| !entries[i + 1..].iter().any(|(k2, _)| k2.name == k.name))
                .map(|(_, (k, v))| (k, v))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, when this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The items, when this is an array.
    pub fn as_array(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// Whether this is an object.
    pub fn is_object(&self) -> bool {
        matches!(self.value, Value::Object(_))
    }
}

/// A 1-based line and column (columns count Unicode code points, as SARIF's `unicodeCodePoints`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in code points.
    pub column: usize,
}

/// Byte offset → line/column for one source text.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// The position of byte `offset` of `text` (clamped to the text).
    pub fn pos(&self, text: &str, offset: usize) -> Pos {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let column = text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Pos {
            line: line + 1,
            column,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_code_points_from_one() {
        let text = "ab\n\u{e9}cd\n";
        let idx = LineIndex::new(text);
        assert_eq!(idx.pos(text, 0), Pos { line: 1, column: 1 });
        assert_eq!(idx.pos(text, 3), Pos { line: 2, column: 1 });
        // 'é' is two bytes but one column.
        assert_eq!(idx.pos(text, 5), Pos { line: 2, column: 2 });
        assert_eq!(idx.pos(text, 999), Pos { line: 3, column: 1 });
    }
}
