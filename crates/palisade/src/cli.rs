//! The command-line interface: clap types only. Each subcommand's flags are resolved into settings before a
//! command runs (see `settings.rs`); commands never see these types' raw strings.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Run MCP servers safely: sandbox, MCP-aware guards, audit trail.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run an MCP server behind palisade's guards, speaking MCP on stdin/stdout.
    ///
    /// Replace `"command": "npx", "args": [...]` in an MCP client config with
    /// `"command": "palisade", "args": ["run", "--", "npx", ...]`.
    Run(RunArgs),
    /// Start a server, list its tools with their pins and hints, and exit.
    Inspect(InspectArgs),
    /// Find MCP client configs and report risky setups (secrets, unpinned packages, broad roots, …).
    Scan(crate::commands::scan::ScanArgs),
    /// Route every local server of your MCP client configs through `palisade run` with a generated policy,
    /// moving plaintext secrets into the secret store; the original is backed up next to each file.
    Wrap(crate::commands::wrap::WrapArgs),
    /// Restore the configs `palisade wrap` changed, byte for byte, from their backups.
    Unwrap(crate::commands::wrap::UnwrapArgs),
    /// Check a policy file and report every problem with its line.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Show, follow or verify the audit log.
    Logs(LogsArgs),
    /// Review and approve tool pins.
    Pin {
        #[command(subcommand)]
        command: PinCommand,
    },
    /// Store, read, remove and list named secrets (the OS keychain, or a 0600 file on headless Linux) for
    /// `keychain:NAME` references in policies.
    Secret(crate::commands::secret::SecretArgs),
    /// Serve MCP servers over Streamable HTTP (both protocol eras) with authentication, scopes and the
    /// guards: `-- CMD` at /mcp, or every server of --policy at /mcp/NAME.
    Serve(Box<ServeArgs>),
    /// Create, list and revoke client tokens for `palisade serve`.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Audit an MCP server package before trusting it: integrity, advisories (OSV), provenance; one
    /// screen with a verdict. SPEC: npm:NAME@VER, pypi:NAME==VER, or a local path.
    Audit(crate::commands::audit::AuditArgs),
    /// Audit a package, then install exactly that artifact into the hash-locked store (palisade.lock);
    /// `palisade run -- npx -y NAME` then runs it from there, with no download.
    Install(crate::commands::install::InstallArgs),
    /// Stage the newest (or --to) version of an installed package: show what changed, ask, install.
    Update(crate::commands::install::UpdateArgs),
    /// Return an installed package to its previous version.
    Rollback(crate::commands::install::RollbackArgs),
    /// Show the sandbox tier this machine gives servers (namespaces, Landlock ABI, seccomp) and why.
    /// Exit 0 for the full sandbox, 1 when degraded.
    Doctor {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Flags shared by `run` and `inspect`: which server, which policy.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServerArgs {
    /// Policy file (TOML). Without it, the embedded strict default applies.
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,
    /// Server name: a `[servers.NAME]` entry of the policy, or a name for the `-- CMD` server (used for pins
    /// and the audit log; derived from the command when omitted).
    #[arg(long, value_name = "NAME")]
    pub(crate) server: Option<String>,
    /// Profile presets: `dev` (trust tools on first use) or `prod` (pre-approved tools, strict arguments,
    /// durable audit).
    #[arg(long, value_enum)]
    pub(crate) profile: Option<ProfileArg>,
    /// Allow only tools matching this glob (repeatable; replaces the policy's allow list).
    #[arg(long = "allow-tool", value_name = "GLOB")]
    pub(crate) allow_tool: Vec<String>,
    /// Deny tools matching this glob (repeatable; deny wins over allow).
    #[arg(long = "deny-tool", value_name = "GLOB")]
    pub(crate) deny_tool: Vec<String>,
    /// Let path arguments (and, with the sandbox, the server) read under this folder (repeatable).
    #[arg(long = "allow-read", value_name = "PATH")]
    pub(crate) allow_read: Vec<PathBuf>,
    /// Let path arguments write under this folder (repeatable; implies read).
    #[arg(long = "allow-write", value_name = "PATH")]
    pub(crate) allow_write: Vec<PathBuf>,
    /// Let the sandboxed server execute this program (repeatable; a bare name is looked up on PATH,
    /// a directory allows every program under it). The server's own executable and interpreters need not
    /// be listed.
    #[arg(long = "allow-exec", value_name = "PATH")]
    pub(crate) allow_exec: Vec<PathBuf>,
    /// Allow network access / URL arguments to this host (`api.github.com`, `*.example.com:443`; repeatable).
    #[arg(long = "allow-net", value_name = "HOST[:PORT]")]
    pub(crate) allow_net: Vec<String>,
    /// Pins file (default: `$XDG_STATE_HOME/palisade/pins.json`).
    #[arg(long, value_name = "FILE")]
    pub(crate) pins: Option<PathBuf>,
    /// Do not treat existing directories in the server's arguments as readable roots.
    #[arg(long)]
    pub(crate) no_auto_roots: bool,
    /// The OS sandbox is the default; this flag is accepted for command lines written before it was.
    #[arg(long, hide = true)]
    pub(crate) sandbox: bool,
    /// Run the server WITHOUT the OS sandbox, as a plain child process with a scrubbed environment (the
    /// per-server policy key is `trust = "unsandboxed"`). Only for servers you trust with your account.
    #[arg(long, conflicts_with = "sandbox")]
    pub(crate) unsandboxed: bool,
    /// The server command and its arguments (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// Audit log file (default: `$XDG_STATE_HOME/palisade/audit/<server>.jsonl`).
    #[arg(long = "audit-log", value_name = "FILE")]
    pub(crate) audit_log: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// Address to listen on. A non-loopback address needs --tls-cert/--tls-key (or --insecure).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,
    /// TLS certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).
    #[arg(long)]
    pub(crate) insecure: bool,
    /// Turn authentication off (loopback only; logged loudly).
    #[arg(long)]
    pub(crate) no_auth: bool,
    /// The URL clients use (`https://mcp.example.com`): token audiences and allowed Host/Origin.
    #[arg(long, value_name = "URL")]
    pub(crate) public_url: Option<String>,
    /// Also allow browser requests from this origin (repeatable).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub(crate) allow_origin: Vec<String>,
    /// Also accept this Host header value (repeatable).
    #[arg(long = "allowed-host", value_name = "HOST[:PORT]")]
    pub(crate) allowed_host: Vec<String>,
    /// Accept OAuth 2.1 access tokens (JWTs) from this issuer (https://).
    #[arg(long, value_name = "URL")]
    pub(crate) oauth_issuer: Option<String>,
    /// The issuer's JWKS URL (default: discovered from the issuer's metadata).
    #[arg(long, value_name = "URL", requires = "oauth_issuer")]
    pub(crate) oauth_jwks_uri: Option<String>,
    /// Shortest interval between JWKS re-fetches caused by tokens with unknown key ids.
    #[arg(
        long,
        value_name = "DUR",
        default_value = "30s",
        requires = "oauth_issuer"
    )]
    pub(crate) oauth_jwks_refresh: String,
    /// Extra CA certificate (PEM) trusted for the issuer's endpoints (repeatable).
    #[arg(long = "oauth-ca", value_name = "FILE")]
    pub(crate) oauth_ca: Vec<PathBuf>,
    /// Token store (default: `$XDG_STATE_HOME/palisade/tokens.json`).
    #[arg(long, value_name = "FILE")]
    pub(crate) tokens: Option<PathBuf>,
    /// Requests per client: N/UNIT (`100/s`, `600/min`) or `off`.
    #[arg(long, value_name = "N/UNIT", default_value = "100/s")]
    pub(crate) rate_limit: String,
    /// Sessions (server processes) open at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub(crate) max_sessions: usize,
    /// Sessions one client may hold at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub(crate) max_sessions_per_client: usize,
    /// Connections open at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub(crate) max_connections: usize,
    /// Largest request body in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    pub(crate) max_body: usize,
    /// Time to send request headers; also the keep-alive idle limit.
    #[arg(long, value_name = "DUR", default_value = "10s")]
    pub(crate) header_timeout: String,
    /// Time to send a request body.
    #[arg(long, value_name = "DUR", default_value = "30s")]
    pub(crate) body_timeout: String,
    /// End a session (and its server) after this long without requests or open streams.
    #[arg(long, value_name = "DUR", default_value = "30min")]
    pub(crate) session_idle: String,
    /// Threads serving connections: 1 is one event loop (least CPU per request); more for
    /// TLS- or JWT-heavy gateways on many cores.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) threads: u16,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token; prints it once, as the last line of stdout.
    Create {
        /// Client name (recorded in the audit trail).
        #[arg(long, value_name = "NAME")]
        client: String,
        /// Scope: mcp:*, mcp:SERVER or mcp:SERVER:TOOL (repeatable; default mcp:*).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Lifetime (`8h`, `30d`).
        #[arg(long, value_name = "DUR", default_value = crate::commands::token::DEFAULT_TTL)]
        ttl: String,
        /// Token store.
        #[arg(long, value_name = "FILE")]
        tokens: Option<PathBuf>,
    },
    /// List tokens (ids, clients, scopes, expiry; never the tokens).
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Token store.
        #[arg(long, value_name = "FILE")]
        tokens: Option<PathBuf>,
    },
    /// Revoke a token by id; `palisade serve` refuses it from the next request on.
    Revoke {
        /// The token id (from `token list`).
        id: String,
        /// Token store.
        #[arg(long, value_name = "FILE")]
        tokens: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Validate a policy file; exit 1 if it has errors.
    Check {
        /// The policy file.
        file: PathBuf,
    },
    /// Print the embedded default policy.
    Default,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Audit log file (default: the most recently written log under `$XDG_STATE_HOME/palisade/audit/`).
    pub(crate) file: Option<PathBuf>,
    /// Keep printing new events as they are written.
    #[arg(long, conflicts_with = "verify")]
    pub(crate) follow: bool,
    /// Recompute the hash chain; exit 1 and name the first broken line if it does not verify.
    #[arg(long)]
    pub(crate) verify: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PinCommand {
    /// List pinned tools and tools awaiting approval.
    List {
        /// Only this server.
        #[arg(long)]
        server: Option<String>,
        /// Pins file.
        #[arg(long, value_name = "FILE")]
        pins: Option<PathBuf>,
    },
    /// Approve the definition palisade last saw for these tools (after reviewing it with `palisade inspect`).
    Accept {
        /// Server name (as shown by `palisade pin list`).
        #[arg(long)]
        server: Option<String>,
        /// Pins file.
        #[arg(long, value_name = "FILE")]
        pins: Option<PathBuf>,
        /// Approve every tool awaiting approval for the server.
        #[arg(long, conflicts_with = "tools")]
        all: bool,
        /// Tool names.
        tools: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProfileArg {
    Dev,
    Prod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}
