//! Tool access: the policy's allow/deny globs and the pinned definitions, applied both when tools are listed
//! (unusable tools are removed from `tools/list`) and when they are called (refused with the exact reason).

use palisade_policy::{PinMode, Policy};
use serde_json::{Map, Value};
use std::time::Instant;

use crate::guard::{Call, Guard};
use crate::state::{SessionState, ToolStatus};
use crate::{DenyReason, pin};

/// Decides the status of a tool the server just listed, recording first sight in `st` when pinning is
/// trust-on-first-use. Returns the status and the tool's hash.
pub fn classify_tool(
    def: &Map<String, Value>,
    name: &str,
    policy: &Policy,
    st: &mut SessionState,
) -> (ToolStatus, String) {
    let hash = pin::tool_hash(def);
    if !policy.tools.permits(name) {
        return (ToolStatus::Denied, hash);
    }
    let status = match (policy.pinning.mode, st.pins.get(name)) {
        (PinMode::Off, _) => ToolStatus::Approved,
        (_, Some(p)) if *p == hash => ToolStatus::Approved,
        (_, Some(p)) => ToolStatus::Changed { pinned: p.clone() },
        (PinMode::Tofu, None) => {
            st.pins.insert(name.to_owned(), hash.clone());
            st.pins_dirty = true;
            ToolStatus::Approved
        }
        (PinMode::Require, None) => ToolStatus::Unapproved,
    };
    if status == ToolStatus::Approved {
        if st.observed.remove(name).is_some() {
            st.pins_dirty = true;
        }
    } else if st.observed.get(name) != Some(&hash) {
        st.observed.insert(name.to_owned(), hash.clone());
        st.pins_dirty = true;
    }
    (status, hash)
}

/// Refuses calls to tools the policy denies, tools not listed, unapproved or changed tools, and any call
/// while the server's tool list is stale.
#[derive(Debug)]
pub struct ToolAccess {
    policy: std::sync::Arc<Policy>,
}

impl ToolAccess {
    /// Builds the guard.
    pub fn new(policy: std::sync::Arc<Policy>) -> Self {
        ToolAccess { policy }
    }
}

impl Guard for ToolAccess {
    fn name(&self) -> &'static str {
        "tool-access"
    }

    fn check_call(
        &self,
        call: &Call<'_>,
        st: &mut SessionState,
        _now: Instant,
    ) -> Result<(), DenyReason> {
        let tool = call.tool.to_owned();
        if !self.policy.tools.permits(call.tool) {
            return Err(DenyReason::ToolDenied { tool });
        }
        if st.tools_stale {
            return Err(DenyReason::ToolsStale);
        }
        let Some(entry) = st.tools.get(call.tool) else {
            return Err(DenyReason::ToolNotListed { tool });
        };
        match &entry.status {
            ToolStatus::Approved => Ok(()),
            ToolStatus::Denied => Err(DenyReason::ToolDenied { tool }),
            ToolStatus::Unapproved => Err(DenyReason::ToolNotApproved {
                server: self.policy.server.clone(),
                tool,
                pin: entry.hash.clone(),
            }),
            ToolStatus::Changed { pinned } => Err(DenyReason::ToolChanged {
                server: self.policy.server.clone(),
                tool,
                pinned: pinned.clone(),
                now: entry.hash.clone(),
            }),
        }
    }
}
