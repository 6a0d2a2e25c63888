//! palisade-supply: decide whether to trust an MCP server package before it runs, then run exactly the
//! artifact that was vetted.
//!
//! # Brief overview
//! * [`spec`] parses what the user names: `npm:NAME@VER`, `pypi:NAME==VER`, or a local directory / `.tgz` /
//!   `.whl` / `.tar.gz`.
//! * [`fetch`] downloads through the registries' documented JSON APIs ([`npm`], [`pypi`]) over [`net`]
//!   (HTTPS with the system trust store), checks npm's `dist.integrity` (SRI, [`sri`]) or PyPI's sha256,
//!   and refuses on mismatch. [`unpack`] extracts with no path traversal, no links leaving the tree, and
//!   caps on entries and bytes (a tar bomb fails closed).
//! * [`resolve`] turns the package into its dependency tree (npm's own resolver in lockfile-only mode;
//!   pip's resolver in dry-run report mode), saying which method was used.
//! * [`osv`] matches that tree against advisories in the OSV format, from a local dump directory
//!   (`--advisory-db`) or the OSV query API; [`version`] compares npm (SemVer) and PyPI (PEP 440) versions.
//! * [`signals`] reads provenance: maintainers, age and cadence, repository link, npm attestations, install
//!   scripts, `setup.py` code, and [`typosquat`] distance to well-known MCP servers.
//! * [`audit`] puts it together into an [`audit::AuditReport`] with a verdict; [`render`] prints it as text,
//!   JSON or SARIF. Static red flags come from a [`audit::StaticAnalyzer`] the caller plugs in.
//! * [`store`] installs a vetted artifact into a content-addressed store, [`lock`] records it in
//!   `palisade.lock`, and [`launch`] rewrites `npx -y PKG@VER` / `uvx NAME==VER` to the stored entry point
//!   (re-checking its hash) and hardens `docker run` command lines.
//!
//! Data flow: [`spec::Spec`] → [`fetch::Fetched`] → unpacked dir → [`resolve::Resolution`] → advisories +
//! signals (+ static findings) → [`audit::AuditReport`] → text | JSON | SARIF; `install`: report → store →
//! lock; `run`: argv → lock → store entry (hash re-checked) → argv.
//!
//! Why a separate crate: none of this belongs on the proxy's data path, and all of it is testable without
//! the binary (the tests run a loopback registry and OSV stand-in).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
pub mod fetch;
pub mod launch;
pub mod lock;
pub mod net;
pub mod npm;
pub mod osv;
pub mod pypi;
pub mod render;
pub mod resolve;
pub mod rules;
pub mod signals;
pub mod spec;
pub mod sri;
pub mod store;
pub mod typosquat;
pub mod unpack;
pub mod verified;
pub mod version;

pub use spec::{Ecosystem, Spec};

/// What can go wrong; each message names the problem and the way forward.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The user asked for something malformed or impossible (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// The downloaded bytes are not what the registry (or the lock) says they are.
    #[error(
        "integrity check failed for {what}: expected {expected}, got {actual}; the download was refused (a corrupted or tampered artifact, or a registry/proxy serving different bytes than it describes)"
    )]
    Integrity {
        /// What was checked.
        what: String,
        /// The expected digest.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// A registry or API could not be reached or answered badly.
    #[error("{url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What happened.
        message: String,
    },
    /// The package or version does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An archive that would write outside its directory, or is too large.
    #[error("refusing to unpack {archive}: {why}")]
    Archive {
        /// The archive's name.
        archive: String,
        /// Why.
        why: String,
    },
    /// Network access was needed under `--offline`.
    #[error("{0} (--offline forbids network access)")]
    Offline(String),
    /// An external tool (npm, pip) failed.
    #[error("{tool} failed: {message}")]
    Tool {
        /// The tool.
        tool: String,
        /// Its error, trimmed.
        message: String,
    },
    /// The store or lock is inconsistent (a hash differs, an entry is missing).
    #[error("{0}")]
    Store(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// Whether this is a usage error (exit status 2) rather than a failed check.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Usage(_))
    }
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Progress of long steps (downloads, resolution), for a caller that shows it (stderr, only on a TTY).
pub trait Progress: Sync {
    /// A step starts (`"resolving dependencies"`).
    fn step(&self, what: &str);
    /// Bytes of a download so far, and the total when known.
    fn bytes(&self, what: &str, done: u64, total: Option<u64>);
    /// The current step ended.
    fn done(&self);
}

/// Shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Progress for Quiet {
    fn step(&self, _: &str) {}
    fn bytes(&self, _: &str, _: u64, _: Option<u64>) {}
    fn done(&self) {}
}
