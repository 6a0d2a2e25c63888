//! One JSON-RPC message: the raw line plus its parsed value and classification.

use serde_json::{Map, Value};
use std::fmt;

use crate::strict;

/// JSON-RPC 2.0 error codes used by palisade (JSON-RPC 2.0 §5.1).
pub mod error_codes {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid Request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal JSON-RPC error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Implementation-defined server error: palisade refused the request by policy.
    pub const POLICY_DENIED: i64 = -32001;
    /// Implementation-defined server error: the request timed out at palisade.
    pub const REQUEST_TIMEOUT: i64 = -32002;
    /// Implementation-defined server error: the server behind palisade is gone.
    pub const SERVER_UNAVAILABLE: i64 = -32003;
}

/// Why a line is not an acceptable JSON-RPC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Not JSON at all (or trailing bytes after the value).
    #[error("not valid JSON: {0}")]
    Parse(String),
    /// The same key appears twice in one object, so peers could disagree on its value.
    #[error("duplicate key {0:?} in one JSON object; send each key once")]
    DuplicateKey(String),
    /// A JSON array: batches were removed from MCP in 2025-06-18.
    #[error(
        "JSON-RPC batches are not supported by MCP since 2025-06-18; send one message per line"
    )]
    Batch,
    /// Valid JSON, but not a JSON-RPC 2.0 message.
    #[error("not a JSON-RPC 2.0 message: {0}")]
    Invalid(&'static str),
}

impl FrameError {
    /// The JSON-RPC error code the specification names for this failure.
    pub fn code(&self) -> i64 {
        match self {
            FrameError::Parse(_) => error_codes::PARSE_ERROR,
            FrameError::DuplicateKey(_) | FrameError::Batch | FrameError::Invalid(_) => {
                error_codes::INVALID_REQUEST
            }
        }
    }
}

/// A JSON-RPC request id, kept as its canonical JSON text (`1`, `"abc"`), so `1` and `"1"` differ.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    /// Builds an id from a JSON value; only strings and numbers are ids (null is not accepted).
    pub fn from_value(v: &Value) -> Option<Id> {
        match v {
            Value::String(_) | Value::Number(_) => Some(Id(v.to_string())),
            _ => None,
        }
    }
    /// The id as a JSON value, for building a reply.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
    /// The canonical JSON text of the id.
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What kind of JSON-RPC message a line carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A request: has an id and a method, expects a response.
    Request {
        /// The request id.
        id: Id,
        /// The method name.
        method: String,
    },
    /// A notification: a method without an id.
    Notification {
        /// The method name.
        method: String,
    },
    /// A response (result or error) to an earlier request.
    Response {
        /// The id of the request this answers (`None` for error responses with a null id).
        id: Option<Id>,
        /// Whether this is an `error` response rather than a `result`.
        is_error: bool,
    },
}

/// One parsed JSON-RPC message with its original bytes.
#[derive(Debug, Clone)]
pub struct Message {
    raw: Vec<u8>,
    value: Map<String, Value>,
    kind: Kind,
}

impl Message {
    /// Parses one line (without its newline) strictly. See the crate docs for what is refused.
    pub fn parse(line: &[u8]) -> Result<Message, FrameError> {
        let value = strict::from_slice(line).map_err(|e| {
            let text = e.to_string();
            match text.strip_prefix(strict::DUPLICATE_PREFIX) {
                Some(rest) => {
                    // serde_json appends " at line L column C"; keep only the key.
                    let key = rest.rsplit_once(" at line ").map_or(rest, |(k, _)| k);
                    FrameError::DuplicateKey(key.to_owned())
                }
                None => FrameError::Parse(text),
            }
        })?;
        let raw = line.to_vec();
        Message::from_parts(raw, value)
    }

    /// Builds a message from a value palisade constructed itself (a reply or a rewrite).
    pub fn from_value(value: Value) -> Result<Message, FrameError> {
        let raw = serde_json::to_vec(&value).map_err(|e| FrameError::Parse(e.to_string()))?;
        Message::from_parts(raw, value)
    }

    fn from_parts(raw: Vec<u8>, value: Value) -> Result<Message, FrameError> {
        let obj = match value {
            Value::Object(m) => m,
            Value::Array(_) => return Err(FrameError::Batch),
            _ => return Err(FrameError::Invalid("expected a JSON object")),
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(FrameError::Invalid("\"jsonrpc\" must be \"2.0\""));
        }
        let kind = classify(&obj)?;
        Ok(Message {
            raw,
            value: obj,
            kind,
        })
    }

    /// The original bytes of the line, without the newline.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
    /// The parsed top-level object.
    pub fn value(&self) -> &Map<String, Value> {
        &self.value
    }
    /// The message's classification.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }
    /// The method, for requests and notifications.
    pub fn method(&self) -> Option<&str> {
        match &self.kind {
            Kind::Request { method, .. } | Kind::Notification { method } => Some(method),
            Kind::Response { .. } => None,
        }
    }
    /// The id, for requests and responses.
    pub fn id(&self) -> Option<&Id> {
        match &self.kind {
            Kind::Request { id, .. } => Some(id),
            Kind::Response { id, .. } => id.as_ref(),
            Kind::Notification { .. } => None,
        }
    }
    /// `params`, if present and an object.
    pub fn params(&self) -> Option<&Map<String, Value>> {
        self.value.get("params").and_then(Value::as_object)
    }
    /// `result`, if present and an object.
    pub fn result(&self) -> Option<&Map<String, Value>> {
        self.value.get("result").and_then(Value::as_object)
    }
    /// For `tools/call`: the tool name in `params.name`.
    pub fn tool_name(&self) -> Option<&str> {
        self.params()?.get("name")?.as_str()
    }
    /// Consumes the message, returning its parsed object (for rewriting).
    pub fn into_value(self) -> Map<String, Value> {
        self.value
    }
}

fn classify(obj: &Map<String, Value>) -> Result<Kind, FrameError> {
    let method = obj.get("method");
    let id = obj.get("id");
    match method {
        Some(Value::String(m)) => {
            if obj.contains_key("result") || obj.contains_key("error") {
                return Err(FrameError::Invalid(
                    "a message cannot have both a method and a result/error",
                ));
            }
            if let Some(p) = obj.get("params")
                && !(p.is_object() || p.is_array())
            {
                return Err(FrameError::Invalid("\"params\" must be an object or array"));
            }
            match id {
                None => Ok(Kind::Notification { method: m.clone() }),
                Some(v) => Id::from_value(v)
                    .map(|id| Kind::Request {
                        id,
                        method: m.clone(),
                    })
                    .ok_or(FrameError::Invalid("\"id\" must be a string or a number")),
            }
        }
        Some(_) => Err(FrameError::Invalid("\"method\" must be a string")),
        None => {
            let has_result = obj.contains_key("result");
            let has_error = obj.contains_key("error");
            if has_result == has_error {
                return Err(FrameError::Invalid(
                    "a response needs exactly one of \"result\" or \"error\"",
                ));
            }
            let id = match id {
                Some(Value::Null) if has_error => None,
                Some(v) => Some(
                    Id::from_value(v)
                        .ok_or(FrameError::Invalid("\"id\" must be a string or a number"))?,
                ),
                None => return Err(FrameError::Invalid("a response needs an \"id\"")),
            };
            Ok(Kind::Response {
                id,
                is_error: has_error,
            })
        }
    }
}

/// Builds a JSON-RPC error response line (no trailing newline) for `id` (`None` → `null`).
pub fn error_response(id: Option<&Id>, code: i64, message: &str) -> Vec<u8> {
    let v = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id.map_or(Value::Null, Id::to_value),
        "error": {"code": code, "message": message},
    });
    serde_json::to_vec(&v).unwrap_or_default()
}
