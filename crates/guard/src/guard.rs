//! The guard interface.
//!
//! A guard is a synchronous, pure decision over one `tools/call` plus the session state: no I/O, no async,
//! no clock of its own (time is passed in). It answers `Ok(())` or the exact [`DenyReason`]. A guard that
//! cannot decide (missing schema, unparsable value) must deny: the pipeline never forwards a call some guard
//! could not check.

use palisade_mcp::Id;
use serde_json::Value;
use std::time::Instant;

use crate::{DenyReason, SessionState};

/// A `tools/call` request as guards see it.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The request id.
    pub id: &'a Id,
    /// `params.name`.
    pub tool: &'a str,
    /// `params.arguments`: always a JSON object (an empty one when absent).
    pub args: &'a Value,
}

/// One check in the pipeline.
pub trait Guard: Send + Sync {
    /// Stable name for logs and docs.
    fn name(&self) -> &'static str;
    /// Decides whether `call` may reach the server. May update per-session counters in `st`, and must do so
    /// only when it allows.
    fn check_call(
        &self,
        call: &Call<'_>,
        st: &mut SessionState,
        now: Instant,
    ) -> Result<(), DenyReason>;
}
