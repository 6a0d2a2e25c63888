//! 2026-07-28 request metadata: the headers that mirror the body, checked against the body.
//!
//! The stateless era mirrors `method`, `params.name`/`params.uri` and the protocol version into headers
//! (`Mcp-Method`, `Mcp-Name`, `MCP-Protocol-Version`) and tool arguments annotated with `x-mcp-header`
//! into `Mcp-Param-{Name}`, so intermediaries can route without parsing the body. palisade parses the
//! body and enforces policy on the body, never on headers alone (DESIGN §3), so every mirrored header must
//! equal the body value it mirrors or the request is refused with 400 and `HeaderMismatch` (-32020): a
//! request must not be routed, limited or logged as one thing and run as another.
//!
//! Values may be carried Base64-encoded as `=?base64?…?=`; they are decoded strictly (canonical padding,
//! the standard alphabet, UTF-8) before comparison. Leading and trailing whitespace around a header value
//! is not part of it (RFC 9110 §5.5).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::HeaderMap;
use palisade_mcp::{Kind, Message, error_codes};
use serde_json::{Map, Value};

/// `HeaderMismatch`: a mirrored header is missing, malformed or differs from the body.
pub(crate) const HEADER_MISMATCH: i64 = -32020;
/// `MissingRequiredClientCapabilityError`.
pub(crate) const MISSING_CAPABILITY: i64 = -32021;
/// `UnsupportedProtocolVersionError`.
pub(crate) const UNSUPPORTED_VERSION: i64 = -32022;

/// The `_meta` keys of a stateless-era request.
pub(crate) const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub(crate) const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// Methods the 2026-07-28 revision removed: without a session they do not exist.
pub(crate) const REMOVED_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// A refusal of a stateless request: the JSON-RPC error code and message (the HTTP status follows from
/// the code, see [`status_for`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: i64,
    pub(crate) message: String,
}

fn refuse(code: i64, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// The HTTP status of a stateless-era response that is a JSON-RPC error with `code`.
pub(crate) fn status_for(code: i64) -> hyper::StatusCode {
    use hyper::StatusCode;
    match code {
        error_codes::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        error_codes::PARSE_ERROR
        | error_codes::INVALID_REQUEST
        | error_codes::INVALID_PARAMS
        | HEADER_MISMATCH
        | MISSING_CAPABILITY
        | UNSUPPORTED_VERSION => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}

/// One header's value without surrounding whitespace; `Err` when it is not visible ASCII.
fn header<'a>(h: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Refusal> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim_matches([' ', '\t'])))
            .map_err(|_| {
                refuse(
                    HEADER_MISMATCH,
                    format!("header {name} has invalid characters"),
                )
            }),
    }
}

/// Decodes a `=?base64?…?=` value (strictly); any other value is literal.
pub(crate) fn decode_value(v: &str) -> Result<String, String> {
    match v
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(b64) => {
            let bytes = STANDARD
                .decode(b64)
                .map_err(|e| format!("invalid Base64 ({e})"))?;
            String::from_utf8(bytes).map_err(|_| "Base64 value is not UTF-8".to_owned())
        }
        None => Ok(v.to_owned()),
    }
}

/// The body value `Mcp-Name` mirrors for `method`, if the method has one.
fn named_value<'a>(
    method: &str,
    params: Option<&'a Map<String, Value>>,
) -> Option<Option<&'a str>> {
    let key = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return None,
    };
    Some(params.and_then(|p| p.get(key)).and_then(Value::as_str))
}

/// The protocol version of a stateless-era request body (`_meta`), if it names one.
pub(crate) fn body_version(msg: &Message) -> Option<&str> {
    palisade_mcp::era::request_meta_version(msg.params())
}

/// Checks a stateless-era request: a request (not a notification or response) with the required
/// `_meta`, and standard headers equal to the body. Order: the body's own shape first (-32602), then the
/// mirrored headers (-32020).
pub(crate) fn check_stateless(h: &HeaderMap, msg: &Message) -> Result<(), Refusal> {
    let Kind::Request { method, .. } = msg.kind() else {
        return Err(refuse(
            error_codes::INVALID_REQUEST,
            "without a session only JSON-RPC requests are accepted (2026-07-28 defines no client notifications over HTTP)",
        ));
    };
    let meta = msg
        .params()
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object);
    let version = meta
        .and_then(|m| m.get(META_VERSION))
        .and_then(Value::as_str);
    let caps = meta.and_then(|m| m.get(META_CAPABILITIES));
    let mut missing = Vec::new();
    if version.is_none() {
        missing.push(META_VERSION);
    }
    if !caps.is_some_and(Value::is_object) {
        missing.push(META_CAPABILITIES);
    }
    if !missing.is_empty() {
        return Err(refuse(
            error_codes::INVALID_PARAMS,
            format!(
                "request params._meta is missing or has malformed required fields: {}",
                missing.join(", ")
            ),
        ));
    }
    let version = version.unwrap_or_default();
    match header(h, "mcp-protocol-version")? {
        None => {
            return Err(refuse(
                HEADER_MISMATCH,
                "Header mismatch: the MCP-Protocol-Version header is required",
            ));
        }
        Some(v) if v != version => {
            return Err(refuse(
                HEADER_MISMATCH,
                format!(
                    "Header mismatch: MCP-Protocol-Version header value '{v}' does not match body value '{version}'"
                ),
            ));
        }
        Some(_) => {}
    }
    match header(h, "mcp-method")? {
        None => {
            return Err(refuse(
                HEADER_MISMATCH,
                "Header mismatch: the Mcp-Method header is required",
            ));
        }
        Some(v) if v != method => {
            return Err(refuse(
                HEADER_MISMATCH,
                format!(
                    "Header mismatch: Mcp-Method header value '{v}' does not match body value '{method}'"
                ),
            ));
        }
        Some(_) => {}
    }
    if let Some(body) = named_value(method, msg.params()) {
        let Some(body) = body else {
            // The body lacks the name itself: the server answers with invalid params.
            return Ok(());
        };
        let Some(v) = header(h, "mcp-name")? else {
            return Err(refuse(
                HEADER_MISMATCH,
                format!("Header mismatch: the Mcp-Name header is required for {method}"),
            ));
        };
        let decoded = decode_value(v)
            .map_err(|e| refuse(HEADER_MISMATCH, format!("Header mismatch: Mcp-Name: {e}")))?;
        if decoded != body {
            return Err(refuse(
                HEADER_MISMATCH,
                format!(
                    "Header mismatch: Mcp-Name header value '{v}' does not match body value '{body}'"
                ),
            ));
        }
    }
    Ok(())
}

/// The `Mcp-Param-*` headers of a request, names lower-cased, values as sent (trimmed).
pub(crate) fn param_headers(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix("mcp-param-")?;
            Some((
                name.to_owned(),
                String::from_utf8_lossy(v.as_bytes())
                    .trim_matches([' ', '\t'])
                    .to_owned(),
            ))
        })
        .collect()
}

/// Checks the `Mcp-Param-{Name}` headers of a `tools/call` against the arguments, for every property the
/// tool's `inputSchema` annotates with `x-mcp-header` (reachable through `properties` only). A value in
/// the body needs its header, equal after decoding; a value absent or null needs none.
pub(crate) fn check_param_headers(
    tool_def: &Map<String, Value>,
    args: Option<&Value>,
    headers: &[(String, String)],
) -> Result<(), Refusal> {
    let mut annotated = Vec::new();
    if let Some(schema) = tool_def.get("inputSchema") {
        collect_annotations(schema, &mut Vec::new(), &mut annotated, 0);
    }
    for (path, name) in annotated {
        let mut v = args;
        for key in &path {
            v = v.and_then(|o| o.get(key));
        }
        let body = match v {
            None | Some(Value::Null) => continue,
            Some(v) => v,
        };
        let lname = name.to_ascii_lowercase();
        let Some((_, raw)) = headers.iter().find(|(k, _)| *k == lname) else {
            return Err(refuse(
                HEADER_MISMATCH,
                format!(
                    "Header mismatch: the Mcp-Param-{name} header is required (argument `{}` is present)",
                    path.join(".")
                ),
            ));
        };
        if raw
            .bytes()
            .any(|b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
        {
            return Err(refuse(
                HEADER_MISMATCH,
                format!("Header mismatch: Mcp-Param-{name} has invalid characters"),
            ));
        }
        let decoded = decode_value(raw).map_err(|e| {
            refuse(
                HEADER_MISMATCH,
                format!("Header mismatch: Mcp-Param-{name}: {e}"),
            )
        })?;
        let equal = match body {
            Value::String(s) => decoded == *s,
            Value::Bool(b) => decoded == if *b { "true" } else { "false" },
            Value::Number(n) => match (decoded.parse::<f64>(), n.as_f64()) {
                (Ok(a), Some(b)) => a == b,
                _ => false,
            },
            _ => false,
        };
        if !equal {
            return Err(refuse(
                HEADER_MISMATCH,
                format!(
                    "Header mismatch: Mcp-Param-{name} header value '{raw}' does not match body value {body}"
                ),
            ));
        }
    }
    Ok(())
}

/// The `Mcp-Param-{Name}` headers a client sends for a `tools/call` of `tool_def` with `args` (what
/// palisade sends a remote 2026-07-28 server): `(Name, value)` for every `x-mcp-header` argument present
/// with a string, number or boolean value. A value that is not plain visible ASCII, or has whitespace at
/// either end, is sent as `=?base64?…?=`.
pub(crate) fn mirrored_param_headers(
    tool_def: &Map<String, Value>,
    args: Option<&Value>,
) -> Vec<(String, String)> {
    use base64::Engine as _;
    let mut annotated = Vec::new();
    if let Some(schema) = tool_def.get("inputSchema") {
        collect_annotations(schema, &mut Vec::new(), &mut annotated, 0);
    }
    let mut out = Vec::new();
    for (path, name) in annotated {
        let mut v = args;
        for key in &path {
            v = v.and_then(|o| o.get(key));
        }
        let text = match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        let plain = text.bytes().all(|b| (0x20..0x7f).contains(&b))
            && !text.starts_with(' ')
            && !text.ends_with(' ');
        let value = if plain {
            text
        } else {
            format!(
                "=?base64?{}?=",
                base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
            )
        };
        out.push((name, value));
    }
    out
}

fn collect_annotations(
    schema: &Value,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
    depth: usize,
) {
    // Deep schemas are not walked without bound.
    if depth > 16 {
        return;
    }
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (k, sub) in props {
        path.push(k.clone());
        if let Some(h) = sub.get("x-mcp-header").and_then(Value::as_str) {
            out.push((path.clone(), h.to_owned()));
        }
        collect_annotations(sub, path, out, depth + 1);
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn param_headers_pass_palisades_own_check() {
        let def = json!({"name": "t", "inputSchema": {"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "n": {"type": "integer", "x-mcp-header": "N"},
            "note": {"type": "string", "x-mcp-header": "Note"},
            "plain": {"type": "string"}}}});
        let def = def.as_object().unwrap();
        let args = json!({"region": "eu-west-1", "n": 42, "note": " Zürich ", "plain": "x"});
        let h = mirrored_param_headers(def, Some(&args));
        assert_eq!(h.len(), 3, "{h:?}");
        assert!(h.contains(&("Region".into(), "eu-west-1".into())), "{h:?}");
        assert!(h.contains(&("N".into(), "42".into())), "{h:?}");
        let note = &h.iter().find(|(n, _)| n == "Note").unwrap().1;
        assert!(note.starts_with("=?base64?"), "{note}");
        assert_eq!(decode_value(note).unwrap(), " Zürich ");
        // What palisade sends, palisade (as a server's gateway) accepts.
        let lower: Vec<(String, String)> = h
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        assert!(check_param_headers(def, Some(&args), &lower).is_ok());
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn call(name: &str) -> Message {
        Message::from_value(json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": name, "arguments": {}, "_meta": {META_VERSION: "2026-07-28", META_CAPABILITIES: {}}}
        }))
        .unwrap()
    }

    #[test]
    fn accepts_headers_equal_to_the_body() {
        let h = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "  echo  "),
        ]);
        assert_eq!(check_stateless(&h, &call("echo")), Ok(()));
    }

    #[test]
    fn refuses_a_name_header_that_differs_from_the_body() {
        let h = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "safe_tool"),
        ]);
        let err = check_stateless(&h, &call("rm_rf")).unwrap_err();
        assert_eq!(err.code, HEADER_MISMATCH);
        assert!(err.message.contains("safe_tool"), "{}", err.message);
    }

    #[test]
    fn refuses_missing_or_case_changed_method_headers() {
        let h = headers(&[("mcp-protocol-version", "2026-07-28"), ("mcp-name", "echo")]);
        assert_eq!(
            check_stateless(&h, &call("echo")).unwrap_err().code,
            HEADER_MISMATCH
        );
        let h = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "TOOLS/CALL"),
            ("mcp-name", "echo"),
        ]);
        assert_eq!(
            check_stateless(&h, &call("echo")).unwrap_err().code,
            HEADER_MISMATCH
        );
    }

    #[test]
    fn refuses_missing_meta_before_looking_at_headers() {
        let m = Message::from_value(
            json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}),
        )
        .unwrap();
        let err = check_stateless(&HeaderMap::new(), &m).unwrap_err();
        assert_eq!(err.code, error_codes::INVALID_PARAMS);
        assert_eq!(status_for(err.code), hyper::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn decodes_base64_strictly_and_takes_other_values_literally() {
        assert_eq!(decode_value("=?base64?SGVsbG8=?=").unwrap(), "Hello");
        assert!(decode_value("=?base64?SGVsbG8?=").is_err());
        assert!(decode_value("=?base64?SGVs!!!bG8=?=").is_err());
        assert_eq!(decode_value("SGVsbG8=").unwrap(), "SGVsbG8=");
        assert_eq!(
            decode_value("=?base64?SGVsbG8=").unwrap(),
            "=?base64?SGVsbG8="
        );
    }

    #[test]
    fn param_headers_must_mirror_annotated_arguments() {
        let def = json!({"name": "q", "inputSchema": {"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "n": {"type": "integer", "x-mcp-header": "N"},
            "query": {"type": "string"}
        }}});
        let def = def.as_object().unwrap();
        let args = json!({"region": "us-west1", "n": 42, "query": "x"});
        let ok = vec![
            ("region".into(), "us-west1".into()),
            ("n".into(), "42.0".into()),
        ];
        assert_eq!(check_param_headers(def, Some(&args), &ok), Ok(()));
        let missing = vec![("n".into(), "42".into())];
        assert_eq!(
            check_param_headers(def, Some(&args), &missing)
                .unwrap_err()
                .code,
            HEADER_MISMATCH
        );
        let wrong = vec![("region".into(), "eu".into()), ("n".into(), "42".into())];
        assert!(check_param_headers(def, Some(&args), &wrong).is_err());
        // No value in the body: no header expected.
        assert_eq!(
            check_param_headers(def, Some(&json!({"query": "x"})), &[]),
            Ok(())
        );
    }
}
