//! Resolves command-line flags, the policy file and the environment into the settings one command runs
//! with. Commands receive these structs, never clap's raw arguments.

use anyhow::{Context, Result, anyhow, bail};
use palisade_policy::{Overrides, Policy, PolicyFile, Profile, ResolveEnv, Trust, resolve};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::{ProfileArg, ServerArgs};
use crate::dirs;

/// A usage or configuration error: reported with exit status 2.
#[derive(Debug)]
pub(crate) struct ConfigError(pub(crate) String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ConfigError {}

/// Everything needed to start one server behind the guards.
#[derive(Debug, Clone)]
pub(crate) struct ServerSettings {
    /// Server name (pins and audit key).
    pub(crate) name: String,
    /// Program and arguments.
    pub(crate) argv: Vec<String>,
    /// Extra environment declared by the policy.
    pub(crate) env: Vec<(String, String)>,
    /// The server's working directory.
    pub(crate) cwd: PathBuf,
    /// The compiled policy.
    pub(crate) policy: Arc<Policy>,
    /// Where the policy came from, for the banner.
    pub(crate) policy_origin: String,
    /// The pins file.
    pub(crate) pins: PathBuf,
    /// Policy warnings worth showing at start-up (file and resolution), rendered.
    pub(crate) warnings: Vec<String>,
    /// Run the server WITHOUT the OS sandbox: its policy table says `trust = "unsandboxed"`, or
    /// `--unsandboxed` was given.
    pub(crate) unsandboxed: bool,
    /// Programs the sandboxed server may execute besides its own (`--allow-exec`).
    pub(crate) allow_exec: Vec<PathBuf>,
}

/// Settings of `palisade run`.
#[derive(Debug, Clone)]
pub(crate) struct RunSettings {
    pub(crate) server: ServerSettings,
    /// Audit log path, or `None` when the policy disables the audit trail.
    pub(crate) audit: Option<PathBuf>,
}

pub(crate) fn server_settings(
    args: &ServerArgs,
    audit_log: Option<&Path>,
) -> Result<ServerSettings> {
    settings_for(args, audit_log, false)
}

/// As [`server_settings`], also for a remote server (`url = "…"`, which only `palisade serve` fronts):
/// its settings have no command (`argv` is empty) and the caller reads the endpoint from the policy.
pub(crate) fn served_server_settings(args: &ServerArgs) -> Result<ServerSettings> {
    settings_for(args, None, true)
}

fn settings_for(
    args: &ServerArgs,
    audit_log: Option<&Path>,
    remote_ok: bool,
) -> Result<ServerSettings> {
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let file = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read policy {}: {e}", path.display())))?;
            let origin = path.display().to_string();
            Some(
                PolicyFile::parse(&text, &origin)
                    .map_err(|d| ConfigError(render_diagnostics(&d)))?,
            )
        }
        None => None,
    };
    let (argv, env) = match (&file, &args.server, args.command.is_empty()) {
        // `--policy P --server NAME -- CMD` (what `palisade wrap` writes): the command line's program, with
        // the server table's environment (secret references included).
        (Some(f), Some(name), false) => (
            args.command.clone(),
            f.server_command(name)
                .map(|c| c.env.clone())
                .unwrap_or_default(),
        ),
        (_, _, false) => (args.command.clone(), Vec::new()),
        (Some(f), Some(name), true) if f.server_remote(name).is_some() => {
            if !remote_ok {
                return Err(ConfigError(format!(
                    "server `{name}` is a remote server (url = \"…\" in its table); this command starts local servers over stdio: serve it with `palisade serve --policy {}`",
                    args.policy.as_deref().unwrap_or(Path::new("FILE")).display()
                ))
                .into());
            }
            (Vec::new(), Vec::new())
        }
        (Some(f), Some(name), true) => {
            let cmd = f.server_command(name).ok_or_else(|| {
                ConfigError(format!(
                    "the policy has no command for server `{name}`; add `command = [...]` under [servers.{name}] or pass `-- CMD…`"
                ))
            })?;
            (cmd.argv.clone(), cmd.env.clone())
        }
        _ => {
            return Err(ConfigError(
                "no server to run: pass the command after `--` (e.g. `palisade run -- npx -y @modelcontextprotocol/server-everything`) or `--policy FILE --server NAME`".into(),
            )
            .into());
        }
    };
    let name = match &args.server {
        Some(n) => n.clone(),
        None => derive_server_name(&argv),
    };
    let mut allow_read = args.allow_read.clone();
    if !args.no_auto_roots {
        allow_read.extend(auto_roots(&argv, &cwd));
    }
    let overrides = Overrides {
        profile: args.profile.map(|p| match p {
            ProfileArg::Dev => Profile::Dev,
            ProfileArg::Prod => Profile::Prod,
        }),
        allow_tool: args.allow_tool.clone(),
        deny_tool: args.deny_tool.clone(),
        allow_read,
        allow_write: args.allow_write.clone(),
        allow_net: args.allow_net.clone(),
        audit_log: audit_log.map(Path::to_path_buf),
        pins: args.pins.clone(),
    };
    let env_in = ResolveEnv {
        home: home.as_deref(),
        cwd: &cwd,
    };
    let policy_server = args.server.as_deref().filter(|n| {
        file.as_ref()
            .is_some_and(|f| f.server_names().any(|s| s == *n))
    });
    let resolved = resolve(file.as_ref(), policy_server, &name, &overrides, &env_in)
        .map_err(|d| ConfigError(render_diagnostics(&d)))?;
    let mut warnings: Vec<String> = file
        .iter()
        .flat_map(|f| f.warnings().iter())
        .map(ToString::to_string)
        .collect();
    warnings.extend(resolved.warnings.iter().map(ToString::to_string));
    let policy = resolved.policy;
    // Values are references (keychain:, env:, file:, cmd:) or literals, resolved once the policy is known
    // to be valid; errors name the variable and the reference kind, never a value.
    let mut env = crate::commands::secret::resolve_server_env(&env)?;
    // Installed packages run from the store (hash re-checked); `docker run` gets the isolation flags.
    let argv = if argv.is_empty() {
        argv
    } else {
        crate::commands::install::launch_argv(argv, &mut env, !policy.net.allow.is_empty())?
    };
    let pins = match &policy.pinning.file {
        Some(p) => p.clone(),
        None => dirs::pins_file()?,
    };
    Ok(ServerSettings {
        name,
        argv,
        env,
        cwd,
        policy_origin: args.policy.as_ref().map_or_else(
            || "embedded default".to_owned(),
            |p| p.display().to_string(),
        ),
        unsandboxed: args.unsandboxed || policy.trust == Trust::Unsandboxed,
        policy: Arc::new(policy),
        pins,
        warnings,
        allow_exec: args.allow_exec.clone(),
    })
}

pub(crate) fn run_settings(args: &crate::cli::RunArgs) -> Result<RunSettings> {
    let server = server_settings(&args.server, args.audit_log.as_deref())?;
    let audit = if server.policy.audit.enabled {
        Some(match &server.policy.audit.path {
            Some(p) => p.clone(),
            None => dirs::audit_log(&server.name)?,
        })
    } else {
        None
    };
    Ok(RunSettings { server, audit })
}

pub(crate) fn render_diagnostics(d: &palisade_policy::Diagnostics) -> String {
    let mut s = String::new();
    for diag in d.iter() {
        s.push_str(&diag.to_string());
        s.push('\n');
    }
    s.push_str(&format!(
        "{} error(s), {} warning(s)",
        d.error_count(),
        d.warning_count()
    ));
    s
}

/// Existing directories among the server's arguments: the folders the user evidently means the server to
/// work on (e.g. `server-filesystem /projects/a`). They become readable roots; writing needs `--allow-write`.
fn auto_roots(argv: &[String], cwd: &Path) -> Vec<PathBuf> {
    argv.iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| cwd.join(a))
        .filter(|p| p.is_dir())
        .collect()
}

const LAUNCHERS: &[&str] = &[
    "npx", "npm", "pnpm", "pnpx", "yarn", "bunx", "bun", "node", "deno", "uvx", "uv", "pipx",
    "python", "python3", "docker", "podman", "env", "sh", "bash",
];
const LAUNCHER_WORDS: &[&str] = &["run", "exec", "dlx", "tool", "x"];
const GENERIC_FILES: &[&str] = &["index", "main", "server", "cli", "__main__", "app"];
const GENERIC_DIRS: &[&str] = &["dist", "build", "src", "lib", "bin", "out"];

/// A stable, readable name for a server started from `argv` (e.g. `server-everything` for
/// `npx -y @modelcontextprotocol/server-everything@1.0`).
pub(crate) fn derive_server_name(argv: &[String]) -> String {
    let mut it = argv.iter().peekable();
    let mut candidate: Option<&str> = None;
    while let Some(a) = it.next() {
        let base = Path::new(a)
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or(a);
        let base_noext = base.trim_end_matches(".exe");
        if candidate.is_none()
            && argv.first() == Some(a)
            && LAUNCHERS.iter().any(|l| base_noext.starts_with(l))
        {
            continue;
        }
        if a == "-m"
            && let Some(m) = it.next()
        {
            candidate = Some(m.as_str());
            break;
        }
        if a.starts_with('-') || LAUNCHER_WORDS.contains(&a.as_str()) {
            continue;
        }
        candidate = Some(a.as_str());
        break;
    }
    let Some(c) = candidate else {
        return "server".into();
    };
    // npm spec: @scope/name@version → name; PyPI spec: name==1.2 → name.
    // A relative script path (`node_modules/@scope/pkg/dist/index.js`) may contain `@`; it must not be
    // cut there as if it were an npm spec.
    const SCRIPT_EXTS: &[&str] = &[".js", ".mjs", ".cjs", ".ts", ".py"];
    let is_path = c.starts_with('/')
        || c.starts_with("./")
        || c.starts_with("../")
        || (c.contains('/') && SCRIPT_EXTS.iter().any(|e| c.ends_with(e)));
    let c = if is_path {
        c
    } else {
        let c = c.split("==").next().unwrap_or(c);
        let c = match c.strip_prefix('@') {
            Some(rest) => rest.split_once('/').map_or(rest, |(_, n)| n),
            None => c,
        };
        c.split('@').next().unwrap_or(c)
    };
    let path = Path::new(c);
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or(c);
    let name = if GENERIC_FILES.contains(&stem) {
        let mut dir = path.parent();
        while let Some(d) = dir {
            let n = d.file_name().and_then(|s| s.to_str()).unwrap_or("");
            if !GENERIC_DIRS.contains(&n) {
                break;
            }
            dir = d.parent();
        }
        dir.and_then(|d| d.file_name())
            .and_then(|s| s.to_str())
            .unwrap_or(stem)
    } else {
        stem
    };
    let clean: String = name
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.' {
                ch
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches(|c| c == '.' || c == '-').to_owned();
    if clean.is_empty() {
        "server".into()
    } else {
        clean
    }
}

/// Parses `--server`-less commands that need a server name from the pins file.
pub(crate) fn require_server(
    server: Option<String>,
    known: impl Iterator<Item = String>,
) -> Result<String> {
    if let Some(s) = server {
        return Ok(s);
    }
    let known: Vec<String> = known.collect();
    match known.as_slice() {
        [only] => Ok(only.clone()),
        [] => bail!(ConfigError(
            "no pinned servers yet; run a server with `palisade run` first".into()
        )),
        many => Err(anyhow!(ConfigError(format!(
            "several servers have pins ({}); pass --server NAME",
            many.join(", ")
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::derive_server_name;

    fn name(cmd: &str) -> String {
        derive_server_name(
            &cmd.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn derives_names_from_common_launch_commands() {
        assert_eq!(
            name("npx -y @modelcontextprotocol/server-everything@2026.8.31"),
            "server-everything"
        );
        assert_eq!(
            name("npx @modelcontextprotocol/server-filesystem /tmp/a"),
            "server-filesystem"
        );
        assert_eq!(name("uvx mcp-server-git --repository ."), "mcp-server-git");
        assert_eq!(name("uvx mcp-server-time==2026.10.1"), "mcp-server-time");
        assert_eq!(name("python -m mcp_server_time"), "mcp_server_time");
        assert_eq!(
            name("node /opt/x/node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
            "server-everything"
        );
        assert_eq!(name("/usr/local/bin/my-server --flag"), "my-server");
        assert_eq!(
            name(
                "node tests/peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js stdio"
            ),
            "server-everything"
        );
        assert_eq!(
            name("docker run -i --rm ghcr.io/github/github-mcp-server"),
            "github-mcp-server"
        );
    }
}
