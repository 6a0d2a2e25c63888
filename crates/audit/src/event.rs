//! The audit event: one record of something palisade saw or decided.
//!
//! An [`Event`] is a plain struct with public fields so the proxy can fill in what it knows cheaply:
//! `Event::new(Kind::Call, "github")` and then set `method`, `tool`, `args`… The writer
//! ([`AuditLog::append`](crate::AuditLog::append)) stamps `ts`, `seq`, `prev` and `hash`.
//!
//! # Fields (in the order they are written)
//! | field | JSON | meaning |
//! |---|---|---|
//! | `seq` | number | 1 for the first line of a chain, then +1 per line |
//! | `ts` | string | RFC 3339 UTC with milliseconds, `2026-01-02T03:04:05.678Z` |
//! | `server` | string | the server's name (policy key) |
//! | `client` | string, optional | the client (principal or client name), when known |
//! | `kind` | string | `call` `list` `notify` `spawn` `egress` `policy` `pin` `exit` `error` |
//! | `method` | string, optional | JSON-RPC method, e.g. `tools/call` |
//! | `tool` | string, optional | tool name for `tools/call` |
//! | `id` | number or string, optional | the JSON-RPC id exactly as the peer sent it |
//! | `decision` | string, optional | `allow` `deny` `ask` `rewrite` |
//! | `reason` | string, optional | stable kebab-case id, e.g. `tool-denied` |
//! | `status` | string, optional | `ok` `error` `denied` `timeout`; absent on an event written before forwarding |
//! | `duration_ms` | number, optional | set on completion events, with `status` |
//! | `detail` | string, optional | human text (already redacted) |
//! | `args` | any JSON, optional | tool arguments, already passed through [`redact`](crate::redact) |
//! | `prev` | string | `hash` of the previous line (64 hex); genesis is 64 zeros |
//! | `hash` | string | SHA-256 of this line, see [`chain`](crate::chain) |
//!
//! Optional fields are omitted when absent (never written as `null`), so a line stays short and a reader
//! can tell "not known" from "known to be null".
//!
//! A request is typically logged twice: once when it is decided (no `status`, so the trail shows what
//! was released even if the server never answers) and once when it completes (`status` + `duration_ms`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A `tools/call` (or other request that does work).
    Call,
    /// A listing (`tools/list`, `resources/list`, …).
    List,
    /// A notification in either direction.
    Notify,
    /// The server process was started.
    Spawn,
    /// A network connection through the egress proxy.
    Egress,
    /// A policy event (loaded, reloaded, overridden).
    Policy,
    /// A tool pin was recorded, matched or broken.
    Pin,
    /// The server process exited.
    Exit,
    /// Something went wrong (including audit-log recovery after a torn write).
    Error,
}

impl Kind {
    /// The wire name (`call`, `list`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Call => "call",
            Kind::List => "list",
            Kind::Notify => "notify",
            Kind::Spawn => "spawn",
            Kind::Egress => "egress",
            Kind::Policy => "policy",
            Kind::Pin => "pin",
            Kind::Exit => "exit",
            Kind::Error => "error",
        }
    }
}

/// What the guards decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Forwarded unchanged.
    Allow,
    /// Refused.
    Deny,
    /// Held for a person's approval.
    Ask,
    /// Forwarded after a guard changed it.
    Rewrite,
}

/// How an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The server answered with a result.
    Ok,
    /// The server answered with an error (or `isError: true`).
    Error,
    /// palisade refused it.
    Denied,
    /// No answer in time.
    Timeout,
}

/// One audit record. See the [module docs](self) for the wire format of each field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the chain; set by the writer.
    #[serde(default)]
    pub seq: u64,
    /// RFC 3339 UTC timestamp with milliseconds; the writer sets it when left empty.
    #[serde(default)]
    pub ts: String,
    /// Server name.
    pub server: String,
    /// Client, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// What the event is about.
    pub kind: Kind,
    /// JSON-RPC method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Tool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// JSON-RPC id as JSON text (`1`, `"abc"`), e.g. from `palisade_mcp::Id::as_json`. Written as the JSON
    /// value itself, so the line shows `"id":1`, not `"id":"1"`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "json_text")]
    pub id: Option<String>,
    /// The guards' decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Stable kebab-case reason id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Completion status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Duration of the exchange in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Human-readable detail (already redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Tool arguments, already redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// Hash of the previous line; set by the writer.
    #[serde(default)]
    pub prev: String,
    /// Hash of this line; set by the writer. Never serialized while empty, which is how the hashed bytes
    /// are produced (see [`chain`](crate::chain)).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl Event {
    /// A new event of `kind` for `server`; everything else empty.
    pub fn new(kind: Kind, server: impl Into<String>) -> Event {
        Event {
            seq: 0,
            ts: String::new(),
            server: server.into(),
            client: None,
            kind,
            method: None,
            tool: None,
            id: None,
            decision: None,
            reason: None,
            status: None,
            duration_ms: None,
            detail: None,
            args: None,
            prev: String::new(),
            hash: String::new(),
        }
    }

    /// Sets `method`.
    pub fn method(mut self, method: impl Into<String>) -> Event {
        self.method = Some(method.into());
        self
    }

    /// Sets `tool`.
    pub fn tool(mut self, tool: impl Into<String>) -> Event {
        self.tool = Some(tool.into());
        self
    }

    /// Sets `decision`.
    pub fn decision(mut self, decision: Decision) -> Event {
        self.decision = Some(decision);
        self
    }

    /// Sets `reason`.
    pub fn reason(mut self, reason: impl Into<String>) -> Event {
        self.reason = Some(reason.into());
        self
    }

    /// Sets `status` and `duration_ms` (a completion event).
    pub fn completed(mut self, status: Status, duration_ms: u64) -> Event {
        self.status = Some(status);
        self.duration_ms = Some(duration_ms);
        self
    }

    /// Sets `detail`.
    pub fn detail(mut self, detail: impl Into<String>) -> Event {
        self.detail = Some(detail.into());
        self
    }

    /// Sets `args`; pass arguments through [`redact`](crate::redact) first.
    pub fn args(mut self, args: Value) -> Event {
        self.args = Some(args);
        self
    }
}

/// The current time as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// `Option<String>` holding JSON text, written as the JSON value it spells.
mod json_text {
    use super::*;

    pub(super) fn serialize<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            // Ids are tiny; parsing them back is cheaper than a RawValue dependency on every event. Text
            // that is not JSON is written as a plain string rather than failing the whole event.
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(value) => value.serialize(s),
                Err(_) => s.serialize_str(text),
            },
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Value>::deserialize(d)?.map(|v| v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn optional_fields_are_omitted_and_id_is_written_as_json() {
        let mut ev = Event::new(Kind::Call, "fs")
            .method("tools/call")
            .tool("read");
        ev.id = Some("7".into());
        let text = serde_json::to_string(&ev).unwrap();
        assert_eq!(
            text,
            r#"{"seq":0,"ts":"","server":"fs","kind":"call","method":"tools/call","tool":"read","id":7,"prev":""}"#
        );
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn string_ids_round_trip_as_json_text() {
        let mut ev = Event::new(Kind::Call, "fs");
        ev.id = Some(r#""a-1""#.into());
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["id"], json!("a-1"));
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back.id.as_deref(), Some(r#""a-1""#));
    }

    #[test]
    fn enums_use_lower_case_wire_names() {
        let ev = Event::new(Kind::Egress, "s")
            .decision(Decision::Rewrite)
            .completed(Status::Timeout, 5);
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["kind"], "egress");
        assert_eq!(v["decision"], "rewrite");
        assert_eq!(v["status"], "timeout");
        assert_eq!(v["duration_ms"], 5);
        assert_eq!(Kind::Pin.as_str(), "pin");
    }

    #[test]
    fn timestamps_are_utc_with_millis() {
        let ts = now_rfc3339();
        assert_eq!(ts.len(), "2026-01-02T03:04:05.678Z".len(), "{ts}");
        assert!(ts.ends_with('Z'));
    }
}
