//! The one error type of this crate.
//!
//! Every variant is built from names, paths, backends and exit statuses, never from a secret's bytes: the
//! types that carry values ([`crate::Secret`]) are not `Display`able as values, and the places that touch
//! values (the file store's JSON, a `cmd:` command's output, the platform keychain's errors) map their
//! failures to a variant without copying the payload. Tests in `tests.rs` check this for each path.

use std::path::PathBuf;

use crate::Backend;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with the fix where there is one. `Display` is one line, optionally followed by a
/// `hint:` line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A secret name outside `[A-Za-z0-9._-]{1,128}` (or starting with `.` or `-`).
    #[error(
        "invalid secret name {name:?}: {reason}\nhint: names are 1-128 characters of letters, digits, '.', '_' and '-', not starting with '.' or '-' (e.g. `github-token`)"
    )]
    InvalidName {
        /// The offending name (cut to 64 characters).
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// No secret of that name in the store in use.
    #[error(
        "no secret named `{name}` in the {backend} store{}\nhint: {hint}",
        in_location(location)
    )]
    NotFound {
        /// The name looked up.
        name: String,
        /// The store that was asked.
        backend: Backend,
        /// Where that store keeps secrets (a file path, a keychain service).
        location: String,
        /// What to do.
        hint: String,
    },
    /// The store in use failed (the keychain said no, keyutils refused, the file is unreadable…).
    #[error("{backend} store: cannot {op}: {detail}{}", hint_line(hint))]
    Store {
        /// The store.
        backend: Backend,
        /// What was attempted (`read secret \`x\``).
        op: String,
        /// The platform's reason (never a value).
        detail: String,
        /// What to do, when known.
        hint: Option<String>,
    },
    /// A backend was asked for (`PALISADE_SECRET_BACKEND`, `--backend`) that cannot work here.
    #[error(
        "the {backend} secret store is not available: {reason}{}",
        hint_line(hint)
    )]
    Unavailable {
        /// The backend asked for.
        backend: Backend,
        /// Why it cannot be used.
        reason: String,
        /// What to do.
        hint: Option<String>,
    },
    /// A backend name that is not one of `auto`, `keychain`, `keyutils`, `file`.
    #[error(
        "unknown secret backend {0:?}\nhint: set PALISADE_SECRET_BACKEND (or --backend) to one of auto, keychain, keyutils, file"
    )]
    UnknownBackend(String),
    /// A file holding secrets (the file store, a `file:` reference) others can read or replace.
    #[error("{what} {path} {problem}\nhint: {fix}")]
    Permissions {
        /// `secrets file`, `file: reference`…
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// `is readable by group or others (mode 0644)`…
        problem: String,
        /// The command that fixes it.
        fix: String,
    },
    /// A malformed reference (`keychain:`, `env:`, `file:`, `cmd:`).
    #[error("invalid `{kind}:` reference: {reason}{}", hint_line(hint))]
    InvalidReference {
        /// The reference kind.
        kind: &'static str,
        /// What is wrong (never the whole reference text, which may hold a literal).
        reason: String,
        /// What to write instead.
        hint: Option<String>,
    },
    /// An `env:NAME` reference to a variable palisade's environment does not have.
    #[error("`env:{var}`: {problem}\nhint: {hint}")]
    Env {
        /// The variable.
        var: String,
        /// `is not set`, `is empty`, `is not valid UTF-8`.
        problem: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// A `file:PATH` reference that cannot be read.
    #[error("`file:` reference {path}: {problem}{}", hint_line(hint))]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
        /// What to do.
        hint: Option<String>,
    },
    /// A `cmd:` reference whose command failed. Its output (stdout and stderr) is never included: a
    /// token printer that fails may still have printed the token.
    #[error("`cmd:` reference `{program}`: {problem}{}", hint_line(hint))]
    Command {
        /// The program (argv\[0\]) only: arguments may be sensitive.
        program: String,
        /// `exited with status 1`, `timed out after 30s`…
        problem: String,
        /// What to do.
        hint: Option<String>,
    },
    /// A value that is not usable as a secret (empty, too large, not UTF-8).
    #[error("{0}")]
    BadValue(String),
    /// A server environment variable whose value could not be resolved: names the variable and the
    /// reference kind, then why.
    #[error("server environment variable {var} ({}): {error}", kind_words(kind))]
    EnvVar {
        /// The variable.
        var: String,
        /// `keychain`, `env`, `file`, `cmd`, `literal`.
        kind: &'static str,
        /// What went wrong.
        error: Box<Error>,
    },
    /// An I/O error on a named path (the store's own files, the terminal).
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn hint_line(hint: &Option<String>) -> String {
    hint.as_ref()
        .map(|h| format!("\nhint: {h}"))
        .unwrap_or_default()
}

fn kind_words(kind: &str) -> String {
    match kind {
        "literal" => "a literal value".into(),
        "env" => "an `env:` reference".into(),
        k => format!("a `{k}:` reference"),
    }
}

fn in_location(location: &str) -> String {
    if location.is_empty() {
        String::new()
    } else {
        format!(" ({location})")
    }
}

impl Error {
    /// Whether the error means "there is no such secret" (as opposed to a store that failed).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Whether the error is the user's to fix by changing input or configuration (a bad name, reference,
    /// backend choice or file mode), as opposed to a lookup that found nothing or a store that failed.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::InvalidName { .. }
                | Error::Unavailable { .. }
                | Error::UnknownBackend(_)
                | Error::Permissions { .. }
                | Error::InvalidReference { .. }
                | Error::BadValue(_)
        )
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
