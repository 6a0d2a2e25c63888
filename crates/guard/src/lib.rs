//! palisade guard pipeline: pure decisions over MCP messages and session state.
//!
//! # Brief overview
//! * [`Pipeline`] is built once from a compiled [`palisade_policy::Policy`]. The driver hands it every
//!   parsed [`palisade_mcp::Message`] in each direction together with the mutable [`SessionState`] and the
//!   current time, and gets back an [`Outcome`]: forward, rewrite or drop the message, what to send to each
//!   side, and [`Note`]s for the audit trail.
//! * [`Guard`] is the interface of one check on a `tools/call`; the concrete guards live in [`guards`] and
//!   run in the order documented on [`pipeline`]. A refusal is an exact [`DenyReason`] with a stable id.
//! * [`args`] holds the argument checkers (JSON Schema, paths, URLs) that the `Arguments` guard applies.
//! * [`pin`] computes tool-definition hashes for pinning.
//!
//! # Why no I/O
//! Decisions are security policy; keeping them free of sockets, processes and clocks makes every one of
//! them testable alone, in memory, with a tampering fake client and server. The single exception is path
//! canonicalization, which must ask the filesystem where symlinks lead (see [`args::paths`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod args;
mod guard;
pub mod guards;
pub mod pin;
pub mod pipeline;
mod state;
mod verdict;

pub use guard::{Call, Guard};
pub use pipeline::{Decision, Direction, Forward, Note, NoteKind, Outcome, Pipeline, Status};
pub use state::{Bucket, InFlight, SessionState, ToolEntry, ToolStatus};
pub use verdict::DenyReason;
