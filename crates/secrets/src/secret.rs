//! [`Secret`]: a value that does not print and is wiped when dropped.
//!
//! Why a type: the usual leaks are not clever. A value ends up in a `{:?}` of a struct, an error message, a
//! log line. `Secret` makes those print `Secret(***, N bytes)`, so the only way to the bytes is the
//! explicit, greppable [`Secret::expose`] / [`Secret::expose_str`]. The buffer is zeroed on drop with
//! [`zeroize`] (volatile writes the optimiser keeps); copies the value made on its way in (a JSON parser's
//! scratch space, a pipe buffer) are not, so this limits, not eliminates, what a memory dump shows.

use std::fmt;

use zeroize::Zeroizing;

use crate::{Error, Result};

/// The largest secret accepted anywhere (stdin, files, `cmd:` output): 64 KiB holds any token, key or
/// service-account file; anything larger is a mistake (e.g. the wrong file).
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// A secret value: UTF-8 text (it becomes an environment variable or a config value), never empty.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps `value` after checking it is non-empty, at most [`MAX_SECRET_BYTES`] and UTF-8. On refusal,
    /// `value` is wiped too. `what` names the value in the error (`the value read from stdin`).
    pub fn new(value: Vec<u8>, what: &str) -> Result<Self> {
        let value = Zeroizing::new(value);
        if value.is_empty() {
            return Err(Error::BadValue(format!("{what} is empty")));
        }
        if value.len() > MAX_SECRET_BYTES {
            return Err(Error::BadValue(format!(
                "{what} is {} bytes; secrets are at most {MAX_SECRET_BYTES} bytes",
                value.len()
            )));
        }
        if std::str::from_utf8(&value).is_err() {
            return Err(Error::BadValue(format!("{what} is not valid UTF-8 text")));
        }
        Ok(Secret(value))
    }

    /// Wraps a string (see [`Secret::new`]).
    pub fn from_string(value: String, what: &str) -> Result<Self> {
        Secret::new(value.into_bytes(), what)
    }

    /// The value's bytes. Every call site is a place a secret leaves this type: keep them few.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The value as text (always valid: checked at construction).
    pub fn expose_str(&self) -> &str {
        // Checked in `new`; the buffer is never mutated afterwards.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false (empty secrets are refused); here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(***, {} bytes)", self.0.len())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Trims exactly one trailing line ending (`\n` or `\r\n`) in place: what `echo`/`printf '%s\n'` and a
/// file saved by an editor add. Anything else is kept: trailing spaces may be part of a value.
pub(crate) fn trim_one_newline(v: &mut Vec<u8>) {
    if v.last() == Some(&b'\n') {
        v.pop();
        if v.last() == Some(&b'\r') {
            v.pop();
        }
    }
}
