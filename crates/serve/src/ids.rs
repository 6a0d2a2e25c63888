//! Identifiers palisade mints (session ids, client tokens) and the id rewriting of a shared upstream.
//!
//! # Why splice instead of re-serializing
//! Requests of many HTTP clients share one stateless-era server process, so their JSON-RPC ids are
//! replaced by ids palisade allocates (clients pick ids independently and would collide). Only the
//! top-level `id` member changes: every other member is copied as the exact bytes the peer sent
//! ([`RawValue`]), so `params` (including an opaque `requestState`) reaches the server byte for byte.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// `bytes` random bytes from the operating system, base64url without padding.
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // Without OS randomness nothing palisade mints would be safe to use: stop rather than go on.
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    URL_SAFE_NO_PAD.encode(&buf)
}

/// The message `raw` (a JSON-RPC object that already passed strict parsing) with its top-level `id`
/// replaced by `id`; every other member keeps its exact bytes. `None` if `raw` is not an object.
pub(crate) fn with_id(raw: &[u8], id: &Value) -> Option<Vec<u8>> {
    let members: BTreeMap<String, &RawValue> = serde_json::from_slice(raw).ok()?;
    let mut out = Vec::with_capacity(raw.len() + 16);
    out.push(b'{');
    let mut first = true;
    let mut put = |out: &mut Vec<u8>, k: &str, v: &[u8]| {
        if !first {
            out.push(b',');
        }
        first = false;
        // A key that came out of a JSON string serializes back to a JSON string.
        out.extend_from_slice(&serde_json::to_vec(k).unwrap_or_default());
        out.push(b':');
        out.extend_from_slice(v);
    };
    let new_id = serde_json::to_vec(id).ok()?;
    let mut had_id = false;
    for (k, v) in &members {
        if k == "id" {
            had_id = true;
            put(&mut out, k, &new_id);
        } else {
            put(&mut out, k, v.get().as_bytes());
        }
    }
    if !had_id {
        put(&mut out, "id", &new_id);
    }
    out.push(b'}');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token(32);
        let b = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn rewriting_the_id_keeps_params_byte_for_byte() {
        let raw = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"t","requestState":"a b\u00e9 1.50e3","n":1.50}}"#;
        let out = with_id(raw, &json!("palisade-http-1")).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(r#""id":"palisade-http-1""#), "{text}");
        assert!(
            text.contains(r#""params":{"name":"t","requestState":"a b\u00e9 1.50e3","n":1.50}"#),
            "{text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["method"], "tools/call");
    }

    #[test]
    fn rewriting_refuses_non_objects() {
        assert!(with_id(b"[1]", &json!(1)).is_none());
    }
}
