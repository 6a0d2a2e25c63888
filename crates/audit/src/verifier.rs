//! Chain verification (`palisade logs --verify`).
//!
//! [`verify`] reads a log line by line (never holding more than one line in memory), checks each line
//! textually as described in [`chain`], and then checks the links: `prev` must equal the
//! previous line's hash and `seq` must be the previous `seq` + 1. The first failure is reported as a
//! [`Broken`] with its 1-based line number, so a person can open the file at that line.

use std::fmt;
use std::io::BufRead;

use sha2::{Digest, Sha256};

use crate::chain::{self, GENESIS, LineError, LineInfo};

/// A log that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    /// Lines read, including torn fragments that a recovery event accounts for.
    pub lines: usize,
    /// `seq` of the last event (0 for an empty log).
    pub last_seq: u64,
    /// `hash` of the last event ([`GENESIS`] for an empty log). Record it elsewhere to pin the tail.
    pub last_hash: String,
    /// 1-based first line of each torn region that a recovery event accounts for (crashes, not tampering).
    pub recovered: Vec<usize>,
}

/// The first line at which the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct Broken {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: BrokenReason,
}

/// Why a line breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokenReason {
    /// The last line has no `\n`: a write was interrupted and nothing has recovered it yet.
    Torn,
    /// Not JSON, or JSON without `seq`/`prev`/`hash`/`kind`.
    BadJson(String),
    /// `hash` is missing, malformed or not the last field (the line was re-serialized or hand-made).
    HashNotLast,
    /// The line's bytes do not hash to its `hash`: the line was edited.
    HashMismatch {
        /// The hash written on the line.
        stored: String,
        /// The hash of the line's bytes.
        computed: String,
    },
    /// `prev` is not the previous line's hash: a line was deleted, inserted or moved here.
    PrevMismatch {
        /// The previous line's hash.
        expected: String,
        /// This line's `prev`.
        found: String,
    },
    /// `seq` does not follow the previous line's `seq`.
    SeqGap {
        /// Previous `seq` + 1.
        expected: u64,
        /// This line's `seq`.
        found: u64,
    },
    /// The log could not be read.
    Unreadable(String),
}

impl fmt::Display for BrokenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokenReason::Torn => {
                f.write_str("torn line (no trailing newline): a write was interrupted")
            }
            BrokenReason::BadJson(e) => write!(f, "not an audit event: {e}"),
            BrokenReason::HashNotLast => f.write_str("no well-formed \"hash\" as the last field"),
            BrokenReason::HashMismatch { stored, computed } => write!(
                f,
                "hash mismatch (line edited): stored {stored}, bytes hash to {computed}"
            ),
            BrokenReason::PrevMismatch { expected, found } => write!(
                f,
                "prev mismatch (line deleted, inserted or reordered): expected {expected}, found {found}"
            ),
            BrokenReason::SeqGap { expected, found } => {
                write!(f, "seq gap: expected {expected}, found {found}")
            }
            BrokenReason::Unreadable(e) => write!(f, "read error: {e}"),
        }
    }
}

impl From<LineError> for BrokenReason {
    fn from(e: LineError) -> BrokenReason {
        match e {
            LineError::BadJson(e) => BrokenReason::BadJson(e),
            LineError::HashNotLast => BrokenReason::HashNotLast,
            LineError::HashMismatch { stored, computed } => {
                BrokenReason::HashMismatch { stored, computed }
            }
        }
    }
}

/// A run of unreadable lines, waiting for a recovery event to account for it.
struct Pending {
    first_line: usize,
    first_reason: BrokenReason,
    digest: Sha256,
    len: usize,
}

/// Verifies a whole log. See the [module docs](self).
pub fn verify(mut reader: impl BufRead) -> Result<VerifySummary, Broken> {
    let mut expected_prev = GENESIS.to_owned();
    let mut last_seq = 0u64;
    let mut lines = 0usize;
    let mut recovered = Vec::new();
    let mut pending: Option<Pending> = None;
    let mut buf = Vec::new();

    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(|e| Broken {
            line: lines + 1,
            reason: BrokenReason::Unreadable(e.to_string()),
        })?;
        if n == 0 {
            break;
        }
        lines += 1;
        let terminated = buf.last() == Some(&b'\n');
        let line = if terminated {
            &buf[..buf.len() - 1]
        } else {
            &buf[..]
        };

        let info = if terminated {
            chain::check_line(line).map_err(BrokenReason::from)
        } else {
            Err(BrokenReason::Torn)
        };
        let info: LineInfo = match info {
            Ok(info) => info,
            Err(reason) => {
                // Maybe a torn fragment that a later recovery event accounts for; hold the first error.
                let p = pending.get_or_insert_with(|| Pending {
                    first_line: lines,
                    first_reason: reason,
                    digest: Sha256::new(),
                    len: 0,
                });
                if p.first_line != lines {
                    p.digest.update(b"\n");
                    p.len += 1;
                }
                p.digest.update(line);
                p.len += line.len();
                continue;
            }
        };

        if let Some(p) = pending.take() {
            let digest = hex::encode(p.digest.finalize());
            if !(info.recovery && chain::recovery_matches(info.detail.as_deref(), p.len, &digest)) {
                return Err(Broken {
                    line: p.first_line,
                    reason: p.first_reason,
                });
            }
            recovered.push(p.first_line);
        }
        if info.prev != expected_prev {
            return Err(Broken {
                line: lines,
                reason: BrokenReason::PrevMismatch {
                    expected: expected_prev,
                    found: info.prev,
                },
            });
        }
        if info.seq != last_seq + 1 {
            return Err(Broken {
                line: lines,
                reason: BrokenReason::SeqGap {
                    expected: last_seq + 1,
                    found: info.seq,
                },
            });
        }
        last_seq = info.seq;
        expected_prev = info.hash;
    }

    if let Some(p) = pending {
        return Err(Broken {
            line: p.first_line,
            reason: p.first_reason,
        });
    }
    Ok(VerifySummary {
        lines,
        last_seq,
        last_hash: expected_prev,
        recovered,
    })
}
