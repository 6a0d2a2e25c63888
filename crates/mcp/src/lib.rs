//! MCP framing for palisade.
//!
//! # Brief overview
//! MCP over stdio is newline-delimited JSON-RPC 2.0. This crate turns one line of bytes into a [`Message`]
//! exactly once and keeps the original bytes beside the parsed value, so the proxy can forward what the peer
//! sent byte for byte unless a guard decides to rewrite it.
//!
//! * [`LineReader`] splits a byte stream into lines with a hard size cap: an over-long line is reported as
//!   [`ReadEvent::TooLong`] and skipped without ever being held in memory whole.
//! * [`Message::parse`] parses a line **strictly**: duplicate object keys, trailing bytes, batches and
//!   anything that is not a JSON-RPC 2.0 object are rejected with a [`FrameError`] that maps to the JSON-RPC
//!   error code the specification names ([`FrameError::code`]).
//! * [`Message::kind`] classifies the message (request, notification, response); [`Id`] is a hashable request id.
//! * [`era`] knows the two protocol eras palisade passes through (2025-11-25 with `initialize`, 2026-07-28
//!   "stateless" with `server/discover` and per-request `_meta`).
//!
//! # Why strict
//! A guard must check the same value the server will act on. JSON parsers disagree on duplicate keys (first
//! wins, last wins, error), so `{"name":"safe","name":"rm"}` could pass a guard and run something else. We
//! refuse such messages instead of guessing which value the server would use.
//!
//! ```
//! use palisade_mcp::{Message, Kind};
//! let m = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
//! assert!(matches!(m.kind(), Kind::Request { method, .. } if method == "tools/list"));
//! assert!(Message::parse(br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}"#).is_err());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod era;
mod frame;
mod reader;
mod sniff;
mod strict;
#[cfg(test)]
mod tests;

pub use frame::{FrameError, Id, Kind, Message, error_codes, error_response};
pub use reader::{DEFAULT_MAX_MESSAGE_BYTES, Framer, LineReader, ReadEvent};
