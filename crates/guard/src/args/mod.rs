//! Argument checkers for `tools/call`: JSON Schema, paths, URLs and positional values.
//!
//! # Brief overview
//! * [`schema::ToolSchema`] compiles a tool's `inputSchema` once and validates each call's arguments, with
//!   undeclared arguments refused under `unknown = "deny"`.
//! * [`paths::check_path`] confines a path argument to the policy's folders, comparing resolved paths by
//!   component (CVE-2025-53110, CVE-2025-53109).
//! * [`urls::check_url`] holds a URL argument to the scheme list and the network allowlist, refusing local,
//!   private and metadata addresses; [`urls::check_positional`] refuses option-looking positionals
//!   (CVE-2025-68144).
//! * [`string_values`] walks an argument that is a string or an array of strings, so each one is checked.
//!
//! These are plain functions over values and policy, and return one-line details the `Arguments` guard
//! wraps in a [`crate::DenyReason`]. Path resolution needs the filesystem (to follow symlinks), which is the
//! one piece of I/O a guard performs; it is behind [`paths::Resolver`] so it is explicit at each call.

use serde_json::Value;

pub mod paths;
pub mod schema;
pub mod urls;

/// The string leaves of one argument value, each with its JSON pointer, so a checker sees every string
/// the server will receive: a string yields itself; an array yields its elements (nested arrays too,
/// pointer `/paths/1`); `null` yields nothing (the argument is absent in effect).
///
/// Anything else (number, boolean, object) yields `Err` with a one-line detail: a path or URL argument the
/// guard cannot read as text cannot be checked, and a lax server may still act on it (Python's `open(5)`
/// opens file descriptor 5; `str(-5)` is an option), so the caller must refuse.
///
/// `pointer` is the argument's own pointer, e.g. `format!("/{}", pointer_token(name))`.
pub fn string_values(
    v: &Value,
    pointer: String,
) -> impl Iterator<Item = (String, Result<&str, String>)> {
    let mut out = Vec::new();
    let mut stack = vec![(pointer, v)];
    while let Some((ptr, v)) = stack.pop() {
        match v {
            Value::String(s) => out.push((ptr, Ok(s.as_str()))),
            Value::Null => {}
            Value::Array(items) => {
                // Reversed so the stack pops them in order.
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push((format!("{ptr}/{i}"), item));
                }
            }
            Value::Bool(_) => out.push((ptr, Err(not_text("a boolean")))),
            Value::Number(_) => out.push((ptr, Err(not_text("a number")))),
            Value::Object(_) => out.push((ptr, Err(not_text("an object")))),
        }
    }
    out.into_iter()
}

fn not_text(what: &str) -> String {
    format!("the value is {what}, not a string, so palisade cannot check it")
}

/// One JSON-pointer reference token for an argument name (RFC 6901: `~` → `~0`, `/` → `~1`), so argument
/// names in deny reasons and the audit log are unambiguous.
pub fn pointer_token(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn walks_string_and_arrays_in_order() {
        let v = json!(["a", ["b", "c"], null, "d"]);
        let got: Vec<_> = string_values(&v, "/paths".into()).collect();
        assert_eq!(
            got,
            vec![
                ("/paths/0".to_string(), Ok("a")),
                ("/paths/1/0".to_string(), Ok("b")),
                ("/paths/1/1".to_string(), Ok("c")),
                ("/paths/3".to_string(), Ok("d")),
            ]
        );
        let v = json!("x");
        let got: Vec<_> = string_values(&v, "/path".into()).collect();
        assert_eq!(got, vec![("/path".to_string(), Ok("x"))]);
        assert_eq!(string_values(&json!(null), "/p".into()).count(), 0);
    }

    #[test]
    fn rejects_values_that_are_not_text() {
        for v in [
            json!(5),
            json!(true),
            json!({"path": "/etc"}),
            json!(["ok", -5]),
        ] {
            let errs: Vec<_> = string_values(&v, "/p".into())
                .filter(|(_, r)| r.is_err())
                .collect();
            assert_eq!(errs.len(), 1, "{v}");
        }
    }

    #[test]
    fn escapes_pointer_tokens() {
        assert_eq!(pointer_token("a/b~c"), "a~1b~0c");
        assert_eq!(pointer_token("path"), "path");
    }
}
