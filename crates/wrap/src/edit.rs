//! Text edits over the spans of a parsed config: replace one value, put words in front of an array, add a
//! member after another, remove a member.
//!
//! Every edit works on the bytes of one value or member and leaves the rest of the file as it was:
//! comments, key order, indentation, blank lines, line endings. New text copies the layout of its
//! neighbours (the indentation of the array's first item, the line prefix of a dotted TOML key), so the
//! result reads as if a person had made the change. Callers re-parse after each edit instead of shifting
//! spans by hand: configs are small, and a stale offset is exactly the bug a config rewriter must not have.

use palisade_scan::Format;
use palisade_scan::doc::{Key, Node, Span, Value};

/// `s` as a JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

/// `s` as a TOML basic string literal.
pub(crate) fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` as a string literal of `format`.
pub(crate) fn str_lit(format: Format, s: &str) -> String {
    match format {
        Format::Jsonc => json_str(s),
        Format::Toml => toml_str(s),
    }
}

/// A TOML key: bare when it can be, quoted otherwise.
pub(crate) fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        k.to_owned()
    } else {
        toml_str(k)
    }
}

/// Parses `text` in `format` into the spanned tree.
pub(crate) fn parse(format: Format, text: &str) -> Result<Node, String> {
    match format {
        Format::Jsonc => palisade_scan::jsonc::parse(text).map_err(|e| e.message),
        Format::Toml => palisade_scan::toml_doc::parse(text).map_err(|e| e.message),
    }
}

/// The node at `pointer` (object keys from the root; the last entry of a duplicated key, as clients read
/// it).
pub(crate) fn locate<'n>(root: &'n Node, pointer: &[String]) -> Option<&'n Node> {
    pointer.iter().try_fold(root, |n, k| n.get(k))
}

/// The raw entries of an object, duplicates included, in file order.
pub(crate) fn members(obj: &Node) -> &[(Key, Node)] {
    match &obj.value {
        Value::Object(entries) => entries,
        _ => &[],
    }
}

/// Whether `key` appears more than once in `obj` (clients disagree about which one wins).
pub(crate) fn duplicated(obj: &Node, key: &str) -> bool {
    members(obj).iter().filter(|(k, _)| k.name == key).count() > 1
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

fn next_line_start(text: &str, at: usize) -> Option<usize> {
    text[at..].find('\n').map(|i| at + i + 1)
}

/// The file's line ending (`\r\n` when it uses them, so an edit does not mix styles).
fn newline(text: &str) -> &'static str {
    if text.contains("\r\n") { "\r\n" } else { "\n" }
}

/// The whitespace in front of `at` on its line, when only whitespace is there.
fn indent_before(text: &str, at: usize) -> Option<&str> {
    let s = &text[line_start(text, at)..at];
    s.chars().all(|c| c == ' ' || c == '\t').then_some(s)
}

fn splice(text: &str, span: Span, new: &str) -> String {
    let mut out = String::with_capacity(text.len() + new.len());
    out.push_str(&text[..span.start]);
    out.push_str(new);
    out.push_str(&text[span.end..]);
    out
}

/// Replaces the bytes of `node` with `new`.
pub(crate) fn replace(text: &str, node: &Node, new: &str) -> String {
    splice(text, node.span.clone(), new)
}

/// Whether a TOML table is written inline (`{ … }`); JSON objects always are.
fn comma_separated(format: Format, text: &str, obj: &Node) -> bool {
    format == Format::Jsonc || text.as_bytes().get(obj.span.start) == Some(&b'{')
}

/// Puts `head` (already literals) and then `tail` (literals) in front of the items of `array`. In a
/// multi-line array `head` goes on one line and each `tail` item on its own line, indented like the first
/// existing item; in a one-line array everything stays on the line.
pub(crate) fn prepend_items(text: &str, array: &Node, head: &[String], tail: &[String]) -> String {
    let items = array.as_array().unwrap_or_default();
    let all: Vec<&str> = head.iter().chain(tail).map(String::as_str).collect();
    let Some(first) = items.first() else {
        return replace(text, array, &format!("[{}]", all.join(", ")));
    };
    let between = &text[array.span.start + 1..first.span.start];
    let nl = newline(text);
    let insertion = match indent_before(text, first.span.start) {
        Some(indent) if between.contains('\n') => {
            let mut s = String::new();
            if !head.is_empty() {
                s.push_str(&head.join(", "));
                s.push(',');
                s.push_str(nl);
                s.push_str(indent);
            }
            for t in tail {
                s.push_str(t);
                s.push(',');
                s.push_str(nl);
                s.push_str(indent);
            }
            s
        }
        _ => all.iter().map(|i| format!("{i}, ")).collect(),
    };
    splice(text, first.span.start..first.span.start, &insertion)
}

/// Adds the member `key = value_lit` right after the member (`after_key`, `after_value`) of `obj`.
pub(crate) fn insert_after(
    format: Format,
    text: &str,
    obj: &Node,
    after_key: &Key,
    after_value: &Node,
    key: &str,
    value_lit: &str,
) -> String {
    let nl = newline(text);
    if comma_separated(format, text, obj) {
        let member = match format {
            Format::Jsonc => format!("{}: {value_lit}", json_str(key)),
            Format::Toml => format!("{} = {value_lit}", toml_key(key)),
        };
        let multiline = text[obj.span.start..after_key.span.start].contains('\n');
        let insertion = match indent_before(text, after_key.span.start) {
            Some(indent) if multiline => format!(",{nl}{indent}{member}"),
            _ => format!(", {member}"),
        };
        let at = after_value.span.end;
        return splice(text, at..at, &insertion);
    }
    // A TOML table written as `[header]` + lines (or dotted keys): a new line after the member's line,
    // with the same prefix (indentation, or `name.` of a dotted key).
    let prefix = &text[line_start(text, after_key.span.start)..after_key.span.start];
    let line = format!("{prefix}{} = {value_lit}{nl}", toml_key(key));
    match next_line_start(text, after_value.span.end) {
        Some(at) => splice(text, at..at, &line),
        None => format!("{text}{nl}{}", line.trim_end_matches(['\r', '\n'])),
    }
}

/// After a value: whether a comma follows, and where the line ends, when nothing but a comma, blanks and
/// a comment follow it on its line.
fn rest_of_line(text: &str, at: usize) -> Option<(bool, usize)> {
    let b = text.as_bytes();
    let mut i = at;
    let blanks = |i: &mut usize| {
        while matches!(b.get(*i), Some(b' ' | b'\t' | b'\r')) {
            *i += 1;
        }
    };
    blanks(&mut i);
    let comma = b.get(i) == Some(&b',');
    if comma {
        i += 1;
        blanks(&mut i);
    }
    if text[i..].starts_with("//") {
        i = next_line_start(text, i).unwrap_or(text.len());
        return Some((comma, i));
    }
    if text[i..].starts_with("/*") {
        let close = text[i..].find("*/")? + i + 2;
        if text[i..close].contains('\n') {
            return None;
        }
        i = close;
        blanks(&mut i);
    }
    match b.get(i) {
        None => Some((comma, i)),
        Some(b'\n') => Some((comma, i + 1)),
        Some(_) => None,
    }
}

/// The position of the `,` after `at` (blanks and comments skipped), if the next token is one.
fn comma_after(text: &str, at: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = at;
    loop {
        match b.get(i)? {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b',' => return Some(i),
            b'/' if text[i..].starts_with("//") => i = next_line_start(text, i)?,
            b'/' if text[i..].starts_with("/*") => i = text[i..].find("*/")? + i + 2,
            _ => return None,
        }
    }
}

/// Removes member `index` (in file order, duplicates counted) from `obj`. The last remaining member of a
/// comma-separated object leaves `{}`.
pub(crate) fn remove_member(format: Format, text: &str, obj: &Node, index: usize) -> String {
    let entries = members(obj);
    let (key, value) = &entries[index];
    if !comma_separated(format, text, obj) {
        // One member per line (or lines, for a multi-line array): drop them whole, comment included.
        let start = line_start(text, key.span.start);
        let end = next_line_start(text, value.span.end).unwrap_or(text.len());
        return splice(text, start..end, "");
    }
    if entries.len() == 1 {
        return replace(text, obj, "{}");
    }
    let last = index + 1 == entries.len();
    if indent_before(text, key.span.start).is_some()
        && let Some((own_comma, end)) = rest_of_line(text, value.span.end)
    {
        // The member has its line(s) to itself: they go whole, with its comma and trailing comment,
        // and comments on the lines around it stay.
        let start = line_start(text, key.span.start);
        let out = splice(text, start..end, "");
        if last && !own_comma {
            // The previous member's comma separated it from this one; without it the object would end
            // in a trailing comma (which strict JSON refuses).
            let prev_end = entries[index - 1].1.span.end;
            if let Some(comma) = comma_after(&out, prev_end) {
                return splice(&out, comma..comma + 1, "");
            }
        }
        return out;
    }
    if !last {
        // `"A": 1, "B": 2` → `"B": 2`: the next member moves into this one's place and indentation.
        splice(text, key.span.start..entries[index + 1].0.span.start, "")
    } else {
        // The last one: from the end of the previous value, so its separating comma goes too.
        splice(text, entries[index - 1].1.span.end..value.span.end, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Node {
        parse(Format::Jsonc, text).unwrap()
    }

    fn toml(text: &str) -> Node {
        parse(Format::Toml, text).unwrap()
    }

    #[test]
    fn prepends_one_line_and_multi_line_arrays_in_their_own_style() {
        let t = r#"{"args": ["-y", "pkg"]}"#;
        let a = json(t).get("args").unwrap().clone();
        let out = prepend_items(
            t,
            &a,
            &["\"run\"".into(), "\"--\"".into()],
            &["\"npx\"".into()],
        );
        assert_eq!(out, r#"{"args": ["run", "--", "npx", "-y", "pkg"]}"#);

        let t = "{\n  \"args\": [\n    \"-y\",\n    \"pkg\"\n  ]\n}";
        let a = json(t).get("args").unwrap().clone();
        let out = prepend_items(
            t,
            &a,
            &["\"run\"".into(), "\"--\"".into()],
            &["\"npx\"".into()],
        );
        assert_eq!(
            out,
            "{\n  \"args\": [\n    \"run\", \"--\",\n    \"npx\",\n    \"-y\",\n    \"pkg\"\n  ]\n}"
        );

        let t = r#"{"args": []}"#;
        let a = json(t).get("args").unwrap().clone();
        let out = prepend_items(t, &a, &["\"run\"".into()], &["\"npx\"".into()]);
        assert_eq!(out, r#"{"args": ["run", "npx"]}"#);
    }

    #[test]
    fn keeps_crlf_line_endings() {
        let t = "{\r\n  \"args\": [\r\n    \"pkg\"\r\n  ]\r\n}";
        let a = json(t).get("args").unwrap().clone();
        let out = prepend_items(t, &a, &["\"run\"".into()], &["\"npx\"".into()]);
        assert_eq!(
            out.matches('\n').count(),
            out.matches("\r\n").count(),
            "{out:?}"
        );
    }

    #[test]
    fn inserts_a_member_after_another_in_json_and_toml_layouts() {
        let t = "{\n    \"command\": \"x\",\n    \"env\": {}\n}";
        let o = json(t);
        let (k, v) = o.entry("command").unwrap();
        let out = insert_after(Format::Jsonc, t, &o, k, v, "args", "[]");
        assert_eq!(
            out,
            "{\n    \"command\": \"x\",\n    \"args\": [],\n    \"env\": {}\n}"
        );
        assert!(json(&out).get("args").is_some());

        let t = "[s.a]\ncommand = \"x\" # the program\nenv = {}\n";
        let o = toml(t);
        let s = o.get("s").unwrap().get("a").unwrap();
        let (k, v) = s.entry("command").unwrap();
        let out = insert_after(Format::Toml, t, s, k, v, "args", "[\"y\"]");
        assert_eq!(
            out,
            "[s.a]\ncommand = \"x\" # the program\nargs = [\"y\"]\nenv = {}\n"
        );

        let t = "[s]\na.command = \"x\"";
        let o = toml(t);
        let s = o.get("s").unwrap().get("a").unwrap();
        let (k, v) = s.entry("command").unwrap();
        let out = insert_after(Format::Toml, t, s, k, v, "args", "[]");
        assert_eq!(out, "[s]\na.command = \"x\"\na.args = []");
        assert!(
            toml(&out)
                .get("s")
                .unwrap()
                .get("a")
                .unwrap()
                .get("args")
                .is_some()
        );

        let t = "s = { command = \"x\" }\n";
        let o = toml(t);
        let s = o.get("s").unwrap();
        let (k, v) = s.entry("command").unwrap();
        let out = insert_after(Format::Toml, t, s, k, v, "args", "[]");
        assert_eq!(out, "s = { command = \"x\", args = [] }\n");
    }

    #[test]
    fn removes_members_first_middle_last_and_only() {
        let t = "{\n  \"A\": \"1\", // a\n  \"B\": \"2\",\n  \"C\": \"3\"\n}";
        let o = json(t);
        assert_eq!(
            remove_member(Format::Jsonc, t, &o, 0),
            "{\n  \"B\": \"2\",\n  \"C\": \"3\"\n}"
        );
        assert_eq!(
            remove_member(Format::Jsonc, t, &o, 1),
            "{\n  \"A\": \"1\", // a\n  \"C\": \"3\"\n}"
        );
        assert_eq!(
            remove_member(Format::Jsonc, t, &o, 2),
            "{\n  \"A\": \"1\", // a\n  \"B\": \"2\"\n}"
        );
        let t = "{\"A\": \"1\"}";
        assert_eq!(remove_member(Format::Jsonc, t, &json(t), 0), "{}");

        let t = "[e]\nA = \"1\"\nB = \"2\" # b\nC = \"3\"\n";
        let e = toml(t).get("e").unwrap().clone();
        assert_eq!(
            remove_member(Format::Toml, t, &e, 1),
            "[e]\nA = \"1\"\nC = \"3\"\n"
        );
        let t = "e = { A = \"1\", B = \"2\" }\n";
        let e = toml(t).get("e").unwrap().clone();
        assert_eq!(remove_member(Format::Toml, t, &e, 1), "e = { A = \"1\" }\n");
        assert_eq!(remove_member(Format::Toml, t, &e, 0), "e = { B = \"2\" }\n");
    }

    #[test]
    fn string_literals_round_trip_through_the_readers() {
        for s in ["plain", "quote \" and \\ back", "tab\tnl\nctl\u{1}", "é😀"] {
            let j = format!("[{}]", json_str(s));
            assert_eq!(json(&j).as_array().unwrap()[0].as_str(), Some(s));
            let t = format!("k = {}", toml_str(s));
            assert_eq!(toml(&t).get("k").unwrap().as_str(), Some(s));
        }
        assert_eq!(toml_key("A_b-1"), "A_b-1");
        assert_eq!(toml_key("a.b"), "\"a.b\"");
    }
}
