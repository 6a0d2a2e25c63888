//! Secret names: what `palisade secret set NAME` and `keychain:NAME` accept.
//!
//! Names end up as keychain account names, kernel key descriptions and JSON keys, and they are printed in
//! errors and listings, so they are kept to a small, unambiguous alphabet: `[A-Za-z0-9._-]{1,128}`, not
//! starting with `.` or `-` (a leading `-` reads as a flag on a command line).

use std::fmt;

use crate::{Error, Result};

/// The longest accepted name.
pub const MAX_NAME_LEN: usize = 128;

/// A validated secret name. Names are not secret: they are shown in listings and errors.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName(String);

impl SecretName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self> {
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.len() > MAX_NAME_LEN {
            Some("it is longer than 128 characters")
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            Some("it contains a character other than letters, digits, '.', '_' and '-'")
        } else if name.starts_with(['.', '-']) {
            Some("it starts with '.' or '-'")
        } else {
            None
        };
        match reason {
            None => Ok(SecretName(name.to_owned())),
            Some(reason) => Err(Error::InvalidName {
                name: name.chars().take(64).collect(),
                reason,
            }),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SecretName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        SecretName::new(s)
    }
}
