//! References: how a policy (and, later, a wrapped client config) names a secret instead of containing it.
//!
//! | written | means |
//! |---|---|
//! | `keychain:NAME` | the secret `NAME` in palisade's store (`palisade secret set NAME`); `secret:NAME` is the same |
//! | `env:NAME` | palisade's own environment variable `NAME` |
//! | `file:PATH` | the contents of `PATH` (absolute or `~/…`), which must be the user's and mode 0600 or stricter; one trailing newline is dropped |
//! | `cmd:PROGRAM ARG…` | the trimmed standard output of a command, e.g. `cmd:gcloud auth print-access-token`; cached in memory for a TTL (default 5 min); options go in brackets: `cmd[ttl=1m,timeout=10s]:…` |
//! | `literal:TEXT` | exactly `TEXT` (for a literal that starts with one of these prefixes) |
//! | anything else | a literal value |
//!
//! `cmd:` runs no shell. The text after the colon is split into words at spaces and tabs; a word may be
//! quoted with `'…'` or `"…"` to contain spaces (no escapes: use the other quote to include a quote).
//! Characters a shell would interpret (`$ \` | & ; < > ( ) \ * ? [ ] { } ~ # !` and newlines) are refused
//! outside quotes, and `$` and `` ` `` everywhere, because no shell will expand them and a user who wrote
//! them expected one to. Wrap a pipeline in a script and reference the script.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Error, Result, SecretName};

/// Default time a `cmd:` result is reused.
pub const DEFAULT_CMD_TTL: Duration = Duration::from_secs(5 * 60);
/// Default time a `cmd:` command may run.
pub const DEFAULT_CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest accepted `timeout=`.
pub const MAX_CMD_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The reference prefixes (without the colon), for "is this a reference" checks.
pub const PREFIXES: [&str; 6] = ["keychain", "secret", "env", "file", "cmd", "literal"];

/// A parsed reference.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reference {
    /// `keychain:NAME` (or `secret:NAME`).
    Keychain(SecretName),
    /// `env:NAME`.
    Env(String),
    /// `file:PATH` (`~/` not yet expanded).
    File(PathBuf),
    /// `cmd:…`.
    Cmd(CmdSpec),
    /// A literal value (a plain string, or `literal:TEXT`).
    Literal(String),
}

/// A `cmd:` reference: what to run and how long to trust its output.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CmdSpec {
    /// Program and arguments (no shell).
    pub argv: Vec<String>,
    /// How long the output is reused.
    pub ttl: Duration,
    /// How long the command may run.
    pub timeout: Duration,
}

impl CmdSpec {
    /// The program, for messages (arguments are not shown).
    pub fn program(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }
}

impl fmt::Debug for CmdSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Arguments are left out: they may name things the user would rather not see in a debug dump.
        f.debug_struct("CmdSpec")
            .field("program", &self.program())
            .field("args", &self.argv.len().saturating_sub(1))
            .field("ttl", &self.ttl)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Keychain(n) => write!(f, "Keychain({n})"),
            Reference::Env(n) => write!(f, "Env({n})"),
            Reference::File(p) => write!(f, "File({})", p.display()),
            Reference::Cmd(c) => write!(f, "Cmd({c:?})"),
            Reference::Literal(v) => write!(f, "Literal(***, {} bytes)", v.len()),
        }
    }
}

impl fmt::Display for Reference {
    /// A description safe for messages: the kind and the name or path, never a literal's value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Keychain(n) => write!(f, "keychain:{n}"),
            Reference::Env(n) => write!(f, "env:{n}"),
            Reference::File(p) => write!(f, "file:{}", p.display()),
            Reference::Cmd(c) => write!(f, "cmd:{} …", c.program()),
            Reference::Literal(_) => f.write_str("a literal value"),
        }
    }
}

/// Whether `value` starts with a reference prefix (`keychain:`, `env:`, `cmd[…]:`…). A value for which this
/// is false is a literal; one for which it is true either parses as a reference or is an error.
pub fn looks_like_reference(value: &str) -> bool {
    PREFIXES.iter().any(|p| {
        value
            .strip_prefix(p)
            .is_some_and(|rest| rest.starts_with(':') || (*p == "cmd" && rest.starts_with('[')))
    })
}

impl Reference {
    /// Parses a value as written in a policy. Plain strings are literals; a known prefix with a malformed
    /// rest is an error (never silently a literal, which would send the reference text to the server).
    pub fn parse(value: &str) -> Result<Reference> {
        if let Some(rest) = value.strip_prefix("literal:") {
            return Ok(Reference::Literal(rest.to_owned()));
        }
        if let Some(name) = value
            .strip_prefix("keychain:")
            .or_else(|| value.strip_prefix("secret:"))
        {
            let kind = if value.starts_with("secret:") {
                "secret"
            } else {
                "keychain"
            };
            return SecretName::new(name)
                .map(Reference::Keychain)
                .map_err(|e| Error::InvalidReference {
                    kind,
                    reason: match e {
                        Error::InvalidName { reason, .. } => format!("the secret name {reason}"),
                        other => other.to_string(),
                    },
                    hint: Some(format!(
                        "write `{kind}:NAME` with NAME as given to `palisade secret set NAME` (letters, digits, '.', '_', '-')"
                    )),
                });
        }
        if let Some(var) = value.strip_prefix("env:") {
            if var.is_empty() || var.contains(['=', '\0']) {
                return Err(Error::InvalidReference {
                    kind: "env",
                    reason: "the variable name is empty or contains '=' or NUL".into(),
                    hint: Some("write `env:NAME`, e.g. `env:GITHUB_TOKEN`".into()),
                });
            }
            return Ok(Reference::Env(var.to_owned()));
        }
        if let Some(path) = value.strip_prefix("file:") {
            if !(path.starts_with('/') || path.starts_with("~/")) {
                return Err(Error::InvalidReference {
                    kind: "file",
                    reason: if path.is_empty() {
                        "the path is empty".into()
                    } else {
                        "the path is relative".into()
                    },
                    hint: Some(
                        "write an absolute path or one under your home: `file:/run/secrets/token`, `file:~/.config/tokens/github`".into(),
                    ),
                });
            }
            if path.contains('\0') {
                return Err(Error::InvalidReference {
                    kind: "file",
                    reason: "the path contains NUL".into(),
                    hint: None,
                });
            }
            return Ok(Reference::File(PathBuf::from(path)));
        }
        if let Some(rest) = value.strip_prefix("cmd")
            && (rest.starts_with(':') || rest.starts_with('['))
        {
            return parse_cmd(rest).map(Reference::Cmd);
        }
        Ok(Reference::Literal(value.to_owned()))
    }

    /// The kind as written (`keychain`, `env`, `file`, `cmd`, `literal`).
    pub fn kind(&self) -> &'static str {
        match self {
            Reference::Keychain(_) => "keychain",
            Reference::Env(_) => "env",
            Reference::File(_) => "file",
            Reference::Cmd(_) => "cmd",
            Reference::Literal(_) => "literal",
        }
    }

    /// Whether this is a literal (the value is in the policy itself).
    pub fn is_literal(&self) -> bool {
        matches!(self, Reference::Literal(_))
    }
}

/// `rest` is what follows `cmd`: `:ARGV` or `[OPTIONS]:ARGV`.
fn parse_cmd(rest: &str) -> Result<CmdSpec> {
    let bad = |reason: String, hint: Option<&str>| Error::InvalidReference {
        kind: "cmd",
        reason,
        hint: hint.map(str::to_owned),
    };
    let mut ttl = DEFAULT_CMD_TTL;
    let mut timeout = DEFAULT_CMD_TIMEOUT;
    let command = if let Some(opts) = rest.strip_prefix('[') {
        let Some((opts, command)) = opts.split_once("]:") else {
            return Err(bad(
                "options must be closed with `]:`".into(),
                Some("write `cmd[ttl=5m]:gcloud auth print-access-token`"),
            ));
        };
        for opt in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let (key, val) = opt.split_once('=').unwrap_or((opt, ""));
            let dur = humantime::parse_duration(val.trim()).map_err(|_| {
                bad(
                    format!("`{key}` needs a duration such as 90s, 5m or 1h"),
                    Some("write `cmd[ttl=5m,timeout=30s]:…`"),
                )
            });
            match key.trim() {
                "ttl" => ttl = dur?,
                "timeout" => {
                    timeout = dur?;
                    if timeout.is_zero() || timeout > MAX_CMD_TIMEOUT {
                        return Err(bad(
                            "`timeout` must be more than 0 and at most 10m".into(),
                            None,
                        ));
                    }
                }
                other => {
                    return Err(bad(
                        format!("unknown option `{other}`"),
                        Some(
                            "the options are `ttl` (how long the output is reused, 0 = never) and `timeout`",
                        ),
                    ));
                }
            }
        }
        command
    } else {
        &rest[1..]
    };
    let argv = split_words(command).map_err(|reason| {
        bad(
            reason,
            Some("no shell runs the command: write the program and its arguments (quote a word with spaces), or put a pipeline in a script and reference the script"),
        )
    })?;
    if argv.is_empty() {
        return Err(bad(
            "there is no command".into(),
            Some("write e.g. `cmd:gcloud auth print-access-token`"),
        ));
    }
    Ok(CmdSpec { argv, ttl, timeout })
}

/// Splits a command line into words as documented at the top of this module.
pub(crate) fn split_words(s: &str) -> std::result::Result<Vec<String>, String> {
    const SHELL: &[char] = &[
        '|', '&', ';', '<', '>', '(', ')', '\\', '*', '?', '[', ']', '{', '}', '~', '#', '!',
    ];
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        if c == '$' || c == '`' {
            return Err(format!(
                "`{c}` would need a shell to expand it, and none runs"
            ));
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.get_or_insert_with(String::new).push(c),
            None => match c {
                ' ' | '\t' => {
                    if let Some(w) = word.take() {
                        words.push(w);
                    }
                }
                '\'' | '"' => {
                    quote = Some(c);
                    word.get_or_insert_with(String::new);
                }
                '\n' | '\r' | '\0' => return Err("it contains a line break or NUL".into()),
                c if SHELL.contains(&c) => {
                    return Err(format!(
                        "`{c}` is a shell character and no shell runs (quote it to pass it literally)"
                    ));
                }
                c => word.get_or_insert_with(String::new).push(c),
            },
        }
    }
    if let Some(q) = quote {
        return Err(format!("a {q} quote is not closed"));
    }
    if let Some(w) = word {
        words.push(w);
    }
    Ok(words)
}
