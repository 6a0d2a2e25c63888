//! Per-session state the guards decide over.
//!
//! The pipeline owns the only mutable view of the session: which requests are in flight in each direction,
//! which protocol era the client speaks, which tools the server offered and whether each is approved.
//! Everything here is plain data; nothing performs I/O. The driver loads approved pins into
//! [`SessionState::pins`] at start and persists them when [`SessionState::pins_dirty`] is set.

use palisade_mcp::{Id, era::Era};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use crate::args::schema::ToolSchema;

/// A request palisade forwarded (or sent itself) and whose response it still expects.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// The request's method.
    pub method: String,
    /// For `tools/call`, the tool name.
    pub tool: Option<String>,
    /// When it was forwarded.
    pub started: Instant,
    /// When palisade gives up on it (tool calls only).
    pub deadline: Option<Instant>,
    /// Whether palisade itself sent it (the response is consumed, never forwarded).
    pub internal: bool,
    /// For `tools/list`, whether it asked for the first page (no cursor).
    pub first_page: bool,
}

/// Whether a listed tool may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolStatus {
    /// Pinned hash matches (or pinning is off).
    Approved,
    /// Never approved and the policy requires approval.
    Unapproved,
    /// The definition differs from the pinned one.
    Changed {
        /// The approved hash.
        pinned: String,
    },
    /// The tool policy forbids it.
    Denied,
}

/// One tool as the server last listed it.
#[derive(Debug, Clone)]
pub struct ToolEntry {
    /// The tool object from `tools/list`.
    pub def: Map<String, Value>,
    /// Its definition hash (`sha256:…`).
    pub hash: String,
    /// Whether it may be used.
    pub status: ToolStatus,
    /// The compiled input schema, built on first call.
    pub schema: Option<Arc<Result<ToolSchema, String>>>,
}

/// A token bucket for per-tool call rates. Time is passed in, so tests control it.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(capacity: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(capacity),
            last: now,
        }
    }
    /// Refills for the time elapsed and takes one token if there is one.
    pub fn take(&mut self, rate: palisade_policy::Rate, now: Instant) -> bool {
        let cap = f64::from(rate.count);
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * cap / rate.per.as_secs_f64()).min(cap);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Everything palisade knows about one client↔server session.
#[derive(Debug, Default)]
pub struct SessionState {
    /// The era the client speaks, once known.
    pub era: Option<Era>,
    /// Client→server requests awaiting a response (plus palisade's own requests).
    pub in_flight: HashMap<Id, InFlight>,
    /// Server→client requests (sampling, elicitation, roots) awaiting the client's response.
    pub server_requests: HashMap<Id, String>,
    /// Tools the server listed, by name.
    pub tools: HashMap<String, ToolEntry>,
    /// The server said its tools changed and palisade has not re-listed them yet.
    pub tools_stale: bool,
    /// A complete tool listing has been seen in this session.
    pub tools_listed: bool,
    /// palisade's own `tools/list` is in flight.
    pub refresh_pending: bool,
    /// `tools/call` requests (id, raw line) held until the tool list is known (bounded by the pipeline).
    pub deferred: Vec<(Id, Vec<u8>)>,
    /// Approved pins for this server: tool name → hash. Loaded and saved by the driver.
    pub pins: BTreeMap<String, String>,
    /// Tools seen with a hash that is not approved: tool name → hash (for `palisade pin accept`).
    pub observed: BTreeMap<String, String>,
    /// Set when `pins` or `observed` changed and should be saved.
    pub pins_dirty: bool,
    /// Per-tool rate buckets.
    pub buckets: HashMap<String, Bucket>,
    /// Tool calls in flight.
    pub calls_in_flight: usize,
    /// The `_meta` of the latest stateless-era client request, reused on palisade's own requests.
    pub last_meta: Option<Value>,
    /// Counter for palisade's own request ids.
    pub internal_seq: u64,
    /// `clientInfo.name` from `initialize`, for the audit trail.
    pub client_name: Option<String>,
}

impl SessionState {
    /// A fresh session with the approved pins loaded from the pins file.
    pub fn with_pins(pins: BTreeMap<String, String>) -> SessionState {
        SessionState {
            pins,
            ..SessionState::default()
        }
    }
}
