//! palisade's secrets: named values kept out of config files, and the references that name them.
//!
//! # Brief overview
//!
//! - [`SecretStore`] is where named secrets live: the OS keychain ([`KeychainStore`]: Secret Service,
//!   macOS Keychain, Windows Credential Manager), or on headless Linux a 0600 file ([`FileStore`], the
//!   automatic fallback, announced on every write) or the kernel's user keyring ([`KeyutilsStore`],
//!   opt-in, memory only). [`backend`] decides which, per process, and says why ([`Selection`]);
//!   `PALISADE_SECRET_BACKEND` forces one.
//! - [`Reference`] is how a policy names a value without containing it: `keychain:NAME`, `env:NAME`,
//!   `file:PATH`, `cmd:PROGRAM ARG…`; anything else is a literal. [`Resolver`] turns references into
//!   [`Secret`]s when a server is launched, caching `cmd:` output in memory for a TTL.
//! - [`Secret`] holds a value: `Debug`/`Display` print `Secret(***, N bytes)`, the buffer is wiped on drop,
//!   and the bytes come out only through [`Secret::expose`].
//! - [`Error`] never contains a value: not a stored secret, not a literal, not a command's output.
//!
//! ```no_run
//! use palisade_secrets::{Reference, Resolver};
//! let resolver = Resolver::from_env();
//! let token = resolver.resolve(&Reference::parse("keychain:github")?)?;
//! assert!(format!("{token:?}").starts_with("Secret(***"));
//! # Ok::<(), palisade_secrets::Error>(())
//! ```
//!
//! Why a crate of its own: the binary (CLI, launch) and, later, `wrap` (which moves plaintext secrets from
//! client configs into the store) both need it, and none of it needs the proxy.
#![forbid(unsafe_code)]
#![cfg(unix)]

pub mod backend;
mod error;
mod file;
mod fsutil;
mod input;
mod keychain;
mod keyutils;
mod name;
mod reference;
mod resolve;
mod secret;

#[cfg(test)]
mod tests;

pub use backend::{Backend, BackendChoice, Locations, Opened, Selection};
pub use error::{Error, Result};
pub use file::{FILE_WARNING, FileStore};
pub use input::{read_all, read_value};
pub use keychain::{KeychainStore, keychain_kind};
pub use keyutils::KeyutilsStore;
pub use name::{MAX_NAME_LEN, SecretName};
pub use reference::{
    CmdSpec, DEFAULT_CMD_TIMEOUT, DEFAULT_CMD_TTL, MAX_CMD_TIMEOUT, PREFIXES, Reference,
    looks_like_reference,
};
pub use resolve::Resolver;
pub use secret::{MAX_SECRET_BYTES, Secret};

/// A place named secrets live. Implementations never log or format values.
pub trait SecretStore: Send + Sync {
    /// Which backend this is.
    fn backend(&self) -> Backend;
    /// Where it keeps secrets, for people (a file path, a keychain service).
    fn location(&self) -> String;
    /// A warning to show after every write (the file store's "unencrypted"), if any.
    fn write_warning(&self) -> Option<&'static str> {
        None
    }
    /// Stores `value` under `name`, replacing any previous value.
    fn set(&self, name: &SecretName, value: &Secret) -> Result<()>;
    /// The value of `name`; [`Error::NotFound`] if there is none.
    fn get(&self, name: &SecretName) -> Result<Secret>;
    /// Removes `name`; [`Error::NotFound`] if there is none.
    fn remove(&self, name: &SecretName) -> Result<()>;
    /// The names stored (sorted), never values.
    fn list(&self) -> Result<Vec<SecretName>>;
}
