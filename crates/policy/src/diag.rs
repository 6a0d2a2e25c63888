//! Diagnostics: what is wrong with a policy, where, and how to fix it.
//!
//! Every problem found while parsing or resolving a policy becomes one [`Diagnostic`] with a stable kebab
//! [`Code`], a [`Severity`] fixed by that code, a `line:column` when it comes from a file, the key path
//! (`limits.call_timeout`), a message and a `help:` line with the fix. The codes are a public API: tools and
//! docs refer to them, so a code is never renamed or reused (the `codes_are_stable` test lists them all).
//!
//! Rendering follows cargo-deny and rustc:
//! ```text
//! error[invalid-duration]: policy.toml:12:16: limits.call_timeout = "60 parsecs" is not a duration
//!   help: write a duration such as "30s", "2m" or "1h"
//! ```

use std::fmt;

/// How bad a diagnostic is. Errors stop a policy from being used; warnings never do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The policy works, but probably not as intended or not safely.
    Warning,
    /// The policy is refused.
    Error,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $sev:ident, $desc:literal; )*) => {
        /// A stable diagnostic code. Each code has one severity and one kebab name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The kebab name, e.g. `invalid-duration`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            /// The severity every diagnostic with this code has.
            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$sev,)* }
            }

            /// One sentence saying what the code means (for docs and SARIF rule lists).
            pub fn description(self) -> &'static str {
                match self { $(Code::$variant => $desc,)* }
            }
        }
    };
}

codes! {
    /// The file is not valid TOML.
    Syntax = "syntax", Error, "the file is not valid TOML";
    /// A key palisade does not know (usually a typo); ignoring it could silently drop a rule.
    UnknownKey = "unknown-key", Error, "a key palisade does not know";
    /// A required key is absent.
    MissingKey = "missing-key", Error, "a required key is absent";
    /// A value has the wrong TOML type.
    WrongType = "wrong-type", Error, "a value has the wrong TOML type";
    /// `version` is not a format version this palisade understands.
    UnsupportedVersion = "unsupported-version", Error, "the policy format version is not supported";
    /// An enumerated or numeric value is out of range.
    InvalidValue = "invalid-value", Error, "a value is not one of the accepted values";
    /// A tool glob is empty or contains whitespace or control characters.
    InvalidGlob = "invalid-glob", Error, "a tool name glob is not valid";
    /// A duration does not parse or is zero.
    InvalidDuration = "invalid-duration", Error, "a duration does not parse or is zero";
    /// A byte size does not parse or is zero.
    InvalidSize = "invalid-size", Error, "a byte size does not parse or is zero";
    /// A rate is not `N/sec`, `N/min` or `N/hour`.
    InvalidRate = "invalid-rate", Error, "a rate is not N/sec, N/min or N/hour";
    /// A network destination is not `HOST` or `HOST:PORT`.
    InvalidHost = "invalid-host", Error, "a network destination is not HOST or HOST:PORT";
    /// A path is empty, contains NUL, or uses `~user`.
    InvalidPath = "invalid-path", Error, "a path is empty, contains NUL or uses ~user";
    /// A path in a policy file is relative: relative to what would depend on where palisade starts.
    RelativePath = "relative-path", Error, "a path in a policy file is relative";
    /// A server command is empty.
    InvalidCommand = "invalid-command", Error, "a server command is empty";
    /// A server environment entry is malformed.
    InvalidEnv = "invalid-env", Error, "a server environment entry is malformed";
    /// `--server NAME` names no `[servers.NAME]` table.
    UnknownServer = "unknown-server", Error, "the requested server is not in the policy file";
    /// A path starts with `~` but the home directory is unknown.
    NoHome = "no-home", Error, "a path uses ~ but the home directory is unknown";
    /// The file has no `version` key; version 1 is assumed.
    MissingVersion = "missing-version", Warning, "the policy has no version key";
    /// Tool pinning is off: a server can change its tools after they were approved.
    PinningOff = "pinning-off", Warning, "tool pinning is off";
    /// `tools.allow = []`: no tool is usable.
    EmptyAllow = "empty-allow", Warning, "the tool allow list is empty, so no tool is usable";
    /// The same entry appears twice in a list.
    DuplicateEntry = "duplicate-entry", Warning, "the same entry appears twice in a list";
    /// A filesystem root is `/` or the home directory, which exposes keys, tokens and browser profiles.
    BroadRoot = "broad-root", Warning, "a filesystem root is / or the home directory";
    /// The audit trail is disabled.
    AuditOff = "audit-off", Warning, "the audit trail is disabled";
    /// Tool arguments are not validated against the tool's schema.
    SchemaOff = "schema-off", Warning, "argument schema validation is off";
    /// A remote server's `url` is not valid or not allowed (scheme, credentials, http:// off loopback).
    InvalidUrl = "invalid-url", Error, "a remote server URL is not valid or not allowed";
    /// Two keys that exclude each other are both set (`command` and `url`).
    ConflictingKeys = "conflicting-keys", Error, "two keys that exclude each other are both set";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A 1-based line and column (in characters) in the policy source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

/// One problem in a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning (always `code.severity()`).
    pub severity: Severity,
    /// Stable code.
    pub code: Code,
    /// Where the input came from: a file name, `<embedded default>` or `command line`.
    pub origin: String,
    /// Position in the file; `None` for command-line input and whole-file problems.
    pub location: Option<Location>,
    /// Key path of the offending value (`limits.call_timeout`, `tools.allow[2]`, `--allow-read`).
    pub key: String,
    /// What is wrong, as a sentence that names the key.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl Diagnostic {
    /// Whether this diagnostic makes the policy unusable.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]: {}", self.severity, self.code, self.origin)?;
        if let Some(loc) = self.location {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        write!(f, ": {}", self.message)?;
        if !self.help.is_empty() {
            write!(f, "\n  help: {}", self.help)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// An ordered list of diagnostics; the error type of parsing and resolving.
///
/// `Display` renders every diagnostic, one after another, so `eprintln!("{diags}")` prints the full report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Diagnostics {
        Diagnostics(Vec::new())
    }
    /// Adds one.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    /// Adds all of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
    /// How many errors.
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }
    /// How many warnings.
    pub fn warning_count(&self) -> usize {
        self.0.len() - self.error_count()
    }
    /// The diagnostics, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }
    /// How many diagnostics.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The codes, in order (handy in tests and for summaries).
    pub fn codes(&self) -> Vec<Code> {
        self.0.iter().map(|d| d.code).collect()
    }
    /// The diagnostics as a vector.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }
    /// Sorts by origin, position, then code, so reports read top to bottom.
    pub(crate) fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            (&a.origin, a.location, a.code.as_str()).cmp(&(&b.origin, b.location, b.code.as_str()))
        });
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
