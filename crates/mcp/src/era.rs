//! The two protocol eras palisade passes through.
//!
//! * **2025-11-25** (and earlier dated versions): a session begins with `initialize` / `notifications/initialized`;
//!   the negotiated version is in the `initialize` result.
//! * **2026-07-28** ("stateless"): no handshake is required; a client may call `server/discover`, and every
//!   request carries `params._meta` with its protocol version and client capabilities. Results may be
//!   `input_required` with an opaque `requestState` the client echoes back; palisade forwards it untouched.
//!
//! palisade does not need to pick an era to forward bytes. It records what it saw so guards and the audit log
//! can say which era a message belonged to, and so palisade's own requests to the server (for example a
//! re-list after `notifications/tools/list_changed`) carry what that era requires.

use serde_json::{Map, Value};

/// The first dated version of the stateless era.
pub const STATELESS_VERSION: &str = "2026-07-28";
/// The latest dated version of the session era.
pub const SESSION_VERSION: &str = "2025-11-25";

/// Which protocol era a message or session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// Handshake-based sessions (`initialize`), versions up to 2025-11-25.
    Session,
    /// Stateless requests (`server/discover`, per-request `_meta`), 2026-07-28 and later.
    Stateless,
}

impl Era {
    /// The era of a dated protocol version string (`YYYY-MM-DD`). Unknown shapes are treated as the session
    /// era, which is what every version before 2026-07-28 is.
    pub fn of_version(v: &str) -> Era {
        if v >= STATELESS_VERSION {
            Era::Stateless
        } else {
            Era::Session
        }
    }

    /// The era a client request announces: `initialize` → session; `server/discover` → stateless;
    /// otherwise the `protocolVersion` inside `params._meta`, if any.
    pub fn of_request(method: &str, params: Option<&Map<String, Value>>) -> Option<Era> {
        match method {
            "initialize" => Some(Era::Session),
            "server/discover" => Some(Era::Stateless),
            _ => request_meta_version(params).map(Era::of_version),
        }
    }

    /// A short stable name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Era::Session => "2025-11-25",
            Era::Stateless => "2026-07-28",
        }
    }
}

/// The protocol version a stateless-era request carries in `params._meta`.
pub fn request_meta_version(params: Option<&Map<String, Value>>) -> Option<&str> {
    let meta = params?.get("_meta")?.as_object()?;
    meta.get("protocolVersion")
        .or_else(|| meta.get("io.modelcontextprotocol/protocolVersion"))
        .and_then(Value::as_str)
}
