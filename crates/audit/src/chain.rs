//! The audit log's wire format and hash chain.
//!
//! # Line format
//! The log is JSON Lines: one [`Event`] object per line, UTF-8, each line ending in `\n`. Fields appear in
//! the order listed in [`event`](crate::event), optional ones only when set, and `hash` is always **last**:
//!
//! ```text
//! {"seq":1,"ts":"2026-01-02T03:04:05.678Z","server":"fs","kind":"call",…,"prev":"000…000","hash":"9f2c…"}
//! ```
//!
//! # Chain
//! * `seq` is 1 on the first line and grows by exactly 1 per line.
//! * `prev` is the previous line's `hash`; the first line's `prev` is [`GENESIS`] (64 zeros).
//! * `hash` is the lower-case hex SHA-256 of the line's own bytes **up to and excluding** the final
//!   `,"hash":"<64 hex>"}` with a `}` put back. In other words: serialize the event without `hash` (so
//!   `seq` and `prev` are covered) to `{…}`, hash those bytes, then replace the final `}` by
//!   `,"hash":"<hex>"}` and add `\n`.
//!
//! Verification is purely textual: strip the 75-byte suffix `,"hash":"<64 hex>"}`, append `}`, hash,
//! compare. Parsed JSON is never re-serialized, so the check does not depend on how any JSON library
//! orders keys, escapes strings or prints numbers; the bytes on disk are what is hashed.
//!
//! # What the chain proves
//! Editing, deleting, inserting or reordering any line before the last one breaks the chain at that
//! point ([`verify`](crate::verify) names the line). Without a key, whoever can rewrite the file can also
//! rewrite its tail and recompute the hashes after it, so the last hash is worth recording elsewhere
//! (`VerifySummary::last_hash`) when the log must stand up against its own host.
//!
//! # Torn writes
//! Each line is written with one `write` of a prebuilt buffer, so a crash loses at most the line being
//! written, as a prefix without its `\n`. When the writer reopens such a file it terminates the fragment
//! and writes a recovery event first: `kind` `error`, `reason` [`TORN_REASON`], chaining from the last
//! whole line, with a `detail` that names the length and SHA-256 of the discarded bytes. The verifier
//! accepts unreadable lines only when exactly such a recovery event follows them and its digest matches.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::event::Event;

/// `prev` of the first line in a chain: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `reason` of the event written after recovering from a torn write.
pub const TORN_REASON: &str = "torn-line";

const SUFFIX_HEAD: &[u8] = br#","hash":""#;
/// Length of `,"hash":"<64 hex>"}`.
pub(crate) const SUFFIX_LEN: usize = SUFFIX_HEAD.len() + 64 + 2;

/// Serializes `ev` (whose `seq`, `prev` and `ts` are already set) as one complete line, `\n` included,
/// appended to `buf`, and returns the line's hash. `ev.hash` is cleared first.
pub(crate) fn encode_line(ev: &mut Event, buf: &mut Vec<u8>) -> std::io::Result<String> {
    ev.hash.clear();
    let start = buf.len();
    serde_json::to_writer(&mut *buf, ev).map_err(std::io::Error::other)?;
    // `Event` serializes as an object, so the last byte is its closing brace.
    debug_assert_eq!(buf.last(), Some(&b'}'));
    let hash = hex::encode(Sha256::digest(&buf[start..]));
    buf.pop();
    buf.extend_from_slice(SUFFIX_HEAD);
    buf.extend_from_slice(hash.as_bytes());
    buf.extend_from_slice(b"\"}\n");
    Ok(hash)
}

/// The chain-relevant fields of a line that passed the textual hash check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineInfo {
    pub(crate) seq: u64,
    pub(crate) prev: String,
    pub(crate) hash: String,
    /// `true` for a torn-write recovery event (see [`TORN_REASON`]).
    pub(crate) recovery: bool,
    pub(crate) detail: Option<String>,
}

/// Why a single line (judged on its own) is not a valid event line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineError {
    /// Not JSON, or JSON without the fields every event has.
    BadJson(String),
    /// The line does not end with `,"hash":"<64 lower-case hex>"}`.
    HashNotLast,
    /// The stored hash is not the hash of the line's bytes.
    HashMismatch { stored: String, computed: String },
}

#[derive(Deserialize)]
struct ChainFields {
    seq: u64,
    prev: String,
    hash: String,
    kind: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// Checks one line (without its `\n`) on its own: JSON with the chain fields, `hash` last, and the hash
/// matching the bytes. Chain linkage (`seq`, `prev`) is the caller's business.
pub(crate) fn check_line(line: &[u8]) -> Result<LineInfo, LineError> {
    // Deriving `Deserialize` on a struct rejects duplicate `seq`/`prev`/`hash` keys, so the fields read
    // here are the only ones on the line.
    let fields: ChainFields =
        serde_json::from_slice(line).map_err(|e| LineError::BadJson(e.to_string()))?;
    let stored = textual_hash(line).ok_or(LineError::HashNotLast)?;
    if fields.hash.as_bytes() != stored {
        return Err(LineError::HashNotLast);
    }
    let computed = hash_body(line);
    if computed.as_bytes() != stored {
        return Err(LineError::HashMismatch {
            stored: fields.hash,
            computed,
        });
    }
    Ok(LineInfo {
        seq: fields.seq,
        prev: fields.prev,
        recovery: fields.kind == "error" && fields.reason.as_deref() == Some(TORN_REASON),
        hash: fields.hash,
        detail: fields.detail,
    })
}

/// The 64 hex bytes of a well-formed `,"hash":"…"}` suffix.
fn textual_hash(line: &[u8]) -> Option<&[u8]> {
    let start = line.len().checked_sub(SUFFIX_LEN)?;
    let suffix = &line[start..];
    let hex = suffix.strip_prefix(SUFFIX_HEAD)?.strip_suffix(b"\"}")?;
    hex.iter()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        .then_some(hex)
}

/// SHA-256 of `line` minus its suffix, plus `}`. Caller has checked the suffix.
fn hash_body(line: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(&line[..line.len() - SUFFIX_LEN]);
    h.update(b"}");
    hex::encode(h.finalize())
}

/// The `detail` of a recovery event for `discarded` bytes, and the digest it names.
pub(crate) fn recovery_detail(discarded: &[u8], resumed_from: u64) -> String {
    format!(
        "discarded {} bytes of a torn write (sha256 {}); chain resumes after seq {}",
        discarded.len(),
        hex::encode(Sha256::digest(discarded)),
        resumed_from
    )
}

/// Whether a recovery event's `detail` names `len` bytes with this digest.
pub(crate) fn recovery_matches(detail: Option<&str>, len: usize, digest: &str) -> bool {
    detail.is_some_and(|d| {
        d.starts_with(&format!(
            "discarded {len} bytes of a torn write (sha256 {digest})"
        ))
    })
}
