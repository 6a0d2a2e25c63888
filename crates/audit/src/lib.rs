//! palisade's audit trail: one JSON line per exchange, hash-chained, crash-safe, secrets redacted.
//!
//! # Brief overview
//! * [`Event`] is one record (DESIGN §6): who (`server`, `client`), what (`kind`, `method`, `tool`, `id`,
//!   redacted `args`), the guards' [`Decision`] and `reason`, and how it ended ([`Status`],
//!   `duration_ms`). Its wire format is specified in [`event`] and [`chain`].
//! * [`AuditLog`] appends events to a file (0600, parent dirs 0700), stamping `ts`, `seq`, `prev` and
//!   `hash`. Each line is one `write` of a prebuilt buffer, optionally `fdatasync`ed; on open it resumes
//!   the chain from the end of the file and recovers from a torn last line. Any [`Sink`] works, so tests
//!   log into a `Vec<u8>`. The proxy shares one log between its two pump threads behind a `Mutex`.
//! * [`verify`] re-checks a log textually and names the first broken line ([`Broken`]).
//! * [`redact`] / [`redact_str`] mask secrets (token formats, URL passwords, secret-named keys) before
//!   anything is logged.
//! * [`follow`] / [`format_human`] render the log for `palisade logs [--follow]`.
//!
//! Data flow: proxy → `redact(args)` → `Event` → `AuditLog::append` → file → `verify` / `follow`.
//!
//! # Why a hash chain over the bytes
//! The log must show if a line was edited, removed, inserted or moved, and a verifier must agree with the
//! writer without sharing its JSON library: each line's hash covers its exact bytes (including `seq` and
//! the previous hash), and verification never re-serializes anything. See [`chain`].
//!
//! ```
//! use palisade_audit::{AuditLog, Decision, Event, Kind, Status, redact, verify};
//! use serde_json::json;
//!
//! let mut log = AuditLog::new(Vec::new(), false);
//! let args = redact(&json!({"path": "/tmp/a", "token": "s3cr3t"}));
//! log.append(Event::new(Kind::Call, "fs").method("tools/call").tool("read").args(args)
//!     .decision(Decision::Allow)).unwrap();
//! log.append(Event::new(Kind::Call, "fs").tool("read").completed(Status::Ok, 4)).unwrap();
//!
//! let bytes = log.into_inner();
//! assert!(String::from_utf8_lossy(&bytes).contains(r#""token":"[REDACTED:secret-field]""#));
//! assert_eq!(verify(&bytes[..]).unwrap().lines, 2);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod chain;
pub mod event;
pub mod redaction;
pub mod render;
#[cfg(test)]
mod tests;
pub mod verifier;
pub mod writer;

pub use chain::{GENESIS, TORN_REASON};
pub use event::{Decision, Event, Kind, Status, now_rfc3339};
pub use redaction::{SecretSpan, find_secrets, is_secret_key, redact, redact_str};
pub use render::{POLL, follow, format_human};
pub use verifier::{Broken, BrokenReason, VerifySummary, verify};
pub use writer::{AuditLog, ExclusiveFile, MAX_TAIL_BYTES, MAX_TORN_LINES, Sink};
