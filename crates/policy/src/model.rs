//! The compiled policy model. Everything here is already validated: globs compile, paths are absolute,
//! durations are positive.

use std::path::PathBuf;
use std::time::Duration;

/// The two built-in profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Trust on first use for tool pins, lenient on unknown arguments the schema allows, buffered audit.
    #[default]
    Dev,
    /// Tools must be pre-approved, unknown arguments refused, audit written durably before replies.
    Prod,
}

/// A compiled name glob: `*` matches any run of characters, `?` one character; everything else is literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
}

impl Glob {
    /// Compiles a glob; an empty pattern is refused.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("an empty glob matches nothing; use \"*\" to match every name".into());
        }
        Ok(Glob {
            pattern: pattern.to_owned(),
        })
    }
    /// The source pattern.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }
    /// Whether `name` matches the whole glob.
    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.pattern.as_bytes(), name.as_bytes())
    }
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard match with single backtrack point: O(len(p) * len(s)) worst case.
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Which tools may be listed and called. A tool is allowed when it matches some `allow` glob and no `deny`
/// glob (deny wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolRules {
    /// Globs of allowed tool names.
    pub allow: Vec<Glob>,
    /// Globs of denied tool names; checked first.
    pub deny: Vec<Glob>,
}

impl ToolRules {
    /// Whether `tool` may be listed and called.
    pub fn permits(&self, tool: &str) -> bool {
        !self.deny.iter().any(|g| g.matches(tool)) && self.allow.iter().any(|g| g.matches(tool))
    }
}

/// Folders the server may touch, as absolute paths (not yet canonicalized: the guard resolves symlinks at
/// check time, so a root that is itself a symlink is followed once, when the policy is compiled).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FsRules {
    /// Readable roots.
    pub read: Vec<PathBuf>,
    /// Writable roots (also readable).
    pub write: Vec<PathBuf>,
}

/// One network destination: a host name or glob (`api.github.com`, `*.example.com`) or an IP literal, with an
/// optional port (`None` = any port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    /// Host glob (lower-case).
    pub host: Glob,
    /// Port, if restricted.
    pub port: Option<u16>,
}

/// Network destinations the server (and URL arguments) may reach. Empty = no network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetRules {
    /// Allowed destinations.
    pub allow: Vec<HostRule>,
}

/// How unknown argument properties are treated when the tool's schema does not forbid them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownArgs {
    /// Follow the server's schema (dev).
    Allow,
    /// Refuse properties the schema does not declare (prod).
    Deny,
}

/// Argument rules for tools matching `tool`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgRule {
    /// Which tools this rule applies to.
    pub tool: Glob,
    /// Argument names holding filesystem paths (confined to [`FsRules`]).
    pub paths: Vec<String>,
    /// Argument names holding URLs (checked against [`ArgRules::url_schemes`] and [`NetRules`]).
    pub urls: Vec<String>,
    /// Argument names that are positional parameters of a command line: must not start with `-`.
    pub positionals: Vec<String>,
}

/// Argument validation settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgRules {
    /// Validate `tools/call` arguments against the tool's own `inputSchema` (JSON Schema 2020-12).
    pub schema: bool,
    /// Unknown properties.
    pub unknown: UnknownArgs,
    /// Detect path and URL arguments by name and schema `format` even without an explicit rule.
    pub auto_detect: bool,
    /// URL schemes URL arguments may use.
    pub url_schemes: Vec<String>,
    /// Explicit per-tool rules.
    pub rules: Vec<ArgRule>,
}

/// What happens the first time a tool is seen, and when a pinned tool changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinMode {
    /// Record unknown tools on first sight (trust on first use); changed tools are blocked.
    Tofu,
    /// Unknown and changed tools are blocked until approved with `palisade pin accept`.
    Require,
    /// No pinning (not recommended; `policy check` warns).
    Off,
}

/// Tool pinning settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinning {
    /// Mode.
    pub mode: PinMode,
    /// Pins file; `None` = the default under `$XDG_STATE_HOME/palisade/pins.json`.
    pub file: Option<PathBuf>,
}

/// A rate: `count` events per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events allowed per window (also the burst size).
    pub count: u32,
    /// Window length.
    pub per: Duration,
}

/// Limits applied by the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message in bytes, either direction.
    pub max_message_bytes: usize,
    /// How long a `tools/call` may run before palisade cancels it.
    pub call_timeout: Duration,
    /// How many `tools/call` requests may be in flight at once.
    pub max_concurrent_calls: usize,
    /// Per-tool call rate, if limited.
    pub rate: Option<Rate>,
}

/// Audit trail settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRules {
    /// Whether to write the audit log at all.
    pub enabled: bool,
    /// Log file; `None` = `$XDG_STATE_HOME/palisade/audit/<server>.jsonl`.
    pub path: Option<PathBuf>,
    /// `fsync` each event before the message it describes is released.
    pub durable: bool,
}

/// How a server is started (from `[servers.NAME]` or from `-- CMD…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCommand {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Extra environment variables to pass (values are references resolved at launch, or literals).
    pub env: Vec<(String, String)>,
}

/// A remote server palisade reaches over Streamable HTTP as its client: `url = "…"` in a `[servers.NAME]`
/// table instead of `command` (only `palisade serve` fronts one; see docs/serve.md "Remote servers").
///
/// The file is checked for what can be checked without the network: the scheme (`https://`, or `http://`
/// to a loopback address only), no credentials or fragment in the URL, header names palisade may set.
/// Where the name resolves, and whether that address is private, is decided when palisade starts and again
/// at every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRemote {
    /// The server's MCP endpoint, as written.
    pub url: String,
    /// `headers = { NAME = "…" }`: sent with every upstream request. Values are secret references
    /// (`keychain:NAME`, `env:NAME`, `file:PATH`, `cmd:…`) or literals, resolved when palisade starts.
    pub headers: Vec<(String, String)>,
    /// `bearer = "REF"`: sent as `Authorization: Bearer <value of REF>`.
    pub bearer: Option<String>,
    /// `allow_private = true`: the server may resolve to a private or link-local address (never to a
    /// cloud metadata endpoint).
    pub allow_private: bool,
    /// `ca_file = "/abs/ca.pem"`: certificates trusted for this server besides the platform's roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// Whether a server runs in the OS sandbox. Only a `[servers.NAME]` table can lower it, one server at a
/// time: there is no global switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trust {
    /// The OS sandbox (the default): palisade refuses to start the server where no sandbox is available.
    #[default]
    Sandboxed,
    /// A plain child process with a scrubbed environment: the user trusts this server with their account.
    Unsandboxed,
}

/// How `palisade serve` runs a local server for 2025-11-25 sessions (`[servers.NAME] process = "…"`).
/// Stateless 2026-07-28 requests always share one process per server, whatever this says.
///
/// Per session is the default because it isolates sessions: whatever state a server keeps (resource
/// subscriptions, log level, roots, files it wrote, anything in its memory) belongs to one client's
/// session, a server→client request has exactly one client to go to, and ending a session ends its
/// process. Shared trades that isolation for one process (and one start-up) per server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessSharing {
    /// One process per `MCP-Session-Id` (the default).
    #[default]
    PerSession,
    /// One process per server, shared by every session of it.
    Shared,
}

/// The compiled policy for one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The server's name (policy key, or derived from the command).
    pub server: String,
    /// Profile whose presets were applied.
    pub profile: Profile,
    /// Sandboxed (default) or explicitly trusted to run without the sandbox.
    pub trust: Trust,
    /// `palisade serve`: one process per session (default) or one shared by every session.
    pub process: ProcessSharing,
    /// Tool allow/deny.
    pub tools: ToolRules,
    /// Filesystem roots.
    pub fs: FsRules,
    /// Network allowlist.
    pub net: NetRules,
    /// Argument validation.
    pub args: ArgRules,
    /// Tool pinning.
    pub pinning: Pinning,
    /// Limits.
    pub limits: Limits,
    /// Audit trail.
    pub audit: AuditRules,
    /// How to start the server, when the policy names it.
    pub command: Option<ServerCommand>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_whole_names() {
        let g = Glob::new("read_*").unwrap();
        assert!(g.matches("read_file"));
        assert!(!g.matches("xread_file"));
        assert!(Glob::new("*").unwrap().matches(""));
        assert!(Glob::new("a?c").unwrap().matches("abc"));
        assert!(!Glob::new("a?c").unwrap().matches("ac"));
        assert!(Glob::new("*_file*").unwrap().matches("write_file_now"));
        assert!(Glob::new("").is_err());
    }

    #[test]
    fn deny_wins_over_allow() {
        let rules = ToolRules {
            allow: vec![Glob::new("*").unwrap()],
            deny: vec![Glob::new("write_*").unwrap()],
        };
        assert!(rules.permits("read_file"));
        assert!(!rules.permits("write_file"));
    }
}
