//! Limits: concurrent tool calls and per-tool call rate. Last in the pipeline, so only calls that would
//! otherwise be forwarded consume a rate token.

use palisade_policy::Policy;
use std::sync::Arc;
use std::time::Instant;

use crate::DenyReason;
use crate::guard::{Call, Guard};
use crate::state::{Bucket, SessionState};

/// Enforces `limits.max_concurrent_calls` and `limits.rate`.
#[derive(Debug)]
pub struct Limits {
    policy: Arc<Policy>,
}

impl Limits {
    /// Builds the guard.
    pub fn new(policy: Arc<Policy>) -> Self {
        Limits { policy }
    }
}

impl Guard for Limits {
    fn name(&self) -> &'static str {
        "limits"
    }

    fn check_call(
        &self,
        call: &Call<'_>,
        st: &mut SessionState,
        now: Instant,
    ) -> Result<(), DenyReason> {
        let limit = self.policy.limits.max_concurrent_calls;
        if st.calls_in_flight >= limit {
            return Err(DenyReason::TooManyCalls { limit });
        }
        if let Some(rate) = self.policy.limits.rate {
            let bucket = st
                .buckets
                .entry(call.tool.to_owned())
                .or_insert_with(|| Bucket::full(rate.count, now));
            if !bucket.take(rate, now) {
                return Err(DenyReason::RateLimited {
                    tool: call.tool.to_owned(),
                });
            }
        }
        Ok(())
    }
}
