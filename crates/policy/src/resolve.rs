//! Resolution: embedded default → profile presets → file globals → `[servers.NAME]` → CLI flags, compiled
//! into one [`Policy`].
//!
//! Everything that depends on the machine (HOME for `~`, the cwd for relative CLI paths) comes in through
//! [`ResolveEnv`], so this code never reads the process environment and its tests are hermetic.

use std::path::{Component, Path, PathBuf};

use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::file::PolicyFile;
use crate::layer::{Layer, Settings, Site, SitedPath};
use crate::model::{AuditRules, FsRules, Glob, Pinning, Policy, Profile};
use crate::values::{self, PathSpec};

/// The origin diagnostics use for flags.
const CLI_ORIGIN: &str = "command line";

/// Settings given as `palisade run` flags (DESIGN §5). They win over everything in files.
///
/// - `allow_tool` non-empty: **replaces** the tool allow list with exactly these globs.
/// - `deny_tool`, `allow_read`, `allow_write`, `allow_net`: **appended** to what the policy says.
/// - `audit_log`: sets the audit file and turns the audit trail on. `pins`: sets the pins file.
/// - `profile`: selects the profile whose presets sit under the file's own keys (a key the file sets
///   explicitly still wins over the preset).
///
/// Relative paths are made absolute against [`ResolveEnv::cwd`]; `~` and `~/…` are expanded with
/// [`ResolveEnv::home`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--profile dev|prod`.
    pub profile: Option<Profile>,
    /// `--allow-tool GLOB`…
    pub allow_tool: Vec<String>,
    /// `--deny-tool GLOB`…
    pub deny_tool: Vec<String>,
    /// `--allow-read PATH`…
    pub allow_read: Vec<PathBuf>,
    /// `--allow-write PATH`…
    pub allow_write: Vec<PathBuf>,
    /// `--allow-net HOST[:PORT]`…
    pub allow_net: Vec<String>,
    /// `--audit-log FILE`.
    pub audit_log: Option<PathBuf>,
    /// `--pins FILE`.
    pub pins: Option<PathBuf>,
}

/// The machine facts resolution needs, passed in rather than read from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolveEnv<'a> {
    /// The home directory (`$HOME`), used to expand `~`; `None` makes any `~` path an error.
    pub home: Option<&'a Path>,
    /// The current directory, against which relative command-line paths are resolved. Must be absolute.
    pub cwd: &'a Path,
}

/// A compiled policy and the warnings resolution itself produced (flags granting `/` or HOME, …).
///
/// Warnings from the file are not repeated here; they are in [`PolicyFile::warnings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The policy for the server.
    pub policy: Policy,
    /// New warnings from resolution.
    pub warnings: Diagnostics,
}

/// Builds the [`Policy`] for one server.
///
/// - `file`: the policy file, if `--policy` was given.
/// - `server`: `--server NAME`; must name a `[servers.NAME]` table (`unknown-server` otherwise). Its
///   overrides and command are used ([`Policy::command`] stays `None` if the table has no `command`).
/// - `derived_server_name`: the name to use when `server` is `None` (derived by the caller from `-- CMD`).
///   No `[servers.*]` table is applied implicitly: overrides are used only when asked for by name.
///
/// Returns every error found (bad flags, `~` without HOME, unknown server) at once.
pub fn resolve(
    file: Option<&PolicyFile>,
    server: Option<&str>,
    derived_server_name: &str,
    overrides: &Overrides,
    env: &ResolveEnv<'_>,
) -> Result<Resolved, Diagnostics> {
    let mut diags = Diagnostics::new();

    let entry = match (server, file) {
        (None, _) => None,
        (Some(name), Some(f)) => match f.servers.get(name) {
            Some(e) => Some(e),
            None => {
                let known: Vec<&str> = f.server_names().collect();
                let help = match values::suggest(name, &known) {
                    Some(s) => format!(
                        "did you mean `{s}`? (servers in {}: {})",
                        f.origin(),
                        known.join(", ")
                    ),
                    None if known.is_empty() => {
                        format!("add a [servers.{name}] table to {}", f.origin())
                    }
                    None => format!("servers in {}: {}", f.origin(), known.join(", ")),
                };
                diags.push(cli_diag(
                    Code::UnknownServer,
                    "--server",
                    format!(
                        "--server {name:?} names no [servers.{name}] table in {}",
                        f.origin()
                    ),
                    help,
                ));
                None
            }
        },
        (Some(name), None) => {
            diags.push(cli_diag(
                Code::UnknownServer,
                "--server",
                format!("--server {name:?} needs a policy file that defines it"),
                format!("pass --policy FILE with a [servers.{name}] table, or run `palisade run -- CMD…`"),
            ));
            None
        }
    };

    let profile = overrides
        .profile
        .or(entry.and_then(|e| e.profile))
        .or(file.and_then(PolicyFile::profile))
        .unwrap_or_default();

    let mut s = Settings::locked_down();
    s.apply(&PolicyFile::embedded_default().globals);
    s.apply(&Layer::preset(profile));
    if let Some(f) = file {
        s.apply(&f.globals);
    }
    if let Some(e) = entry {
        s.apply(&e.layer);
    }
    apply_overrides(&mut s, overrides, &mut diags);

    let mut warnings = Diagnostics::new();
    let read = expand_all(&s.fs_read, "readable", env, &mut diags, &mut warnings);
    let write = expand_all(&s.fs_write, "writable", env, &mut diags, &mut warnings);
    let pin_file = s.pin_file.as_ref().and_then(|p| expand(p, env, &mut diags));
    let audit_path = s
        .audit_path
        .as_ref()
        .and_then(|p| expand(p, env, &mut diags));

    if diags.has_errors() {
        diags.sort();
        return Err(diags);
    }
    dedup(&mut s.tools.allow);
    dedup(&mut s.tools.deny);
    dedup(&mut s.net.allow);
    dedup(&mut s.args.url_schemes);
    let policy = Policy {
        server: server.unwrap_or(derived_server_name).to_owned(),
        profile,
        trust: entry.and_then(|e| e.trust).unwrap_or_default(),
        process: entry.and_then(|e| e.process).unwrap_or_default(),
        tools: s.tools,
        fs: FsRules { read, write },
        net: s.net,
        args: s.args,
        pinning: Pinning {
            mode: s.pin_mode,
            file: pin_file,
        },
        limits: s.limits,
        audit: AuditRules {
            enabled: s.audit_enabled,
            path: audit_path,
            durable: s.audit_durable,
        },
        command: entry.and_then(|e| e.command.clone()),
    };
    warnings.extend(diags);
    Ok(Resolved { policy, warnings })
}

fn cli_diag(code: Code, key: &str, message: String, help: String) -> Diagnostic {
    Diagnostic {
        severity: code.severity(),
        code,
        origin: CLI_ORIGIN.to_owned(),
        location: None,
        key: key.to_owned(),
        message,
        help,
    }
}

fn apply_overrides(s: &mut Settings, o: &Overrides, diags: &mut Diagnostics) {
    let globs = |flag: &str, list: &[String], diags: &mut Diagnostics| -> Vec<Glob> {
        let mut out = Vec::new();
        for g in list {
            match values::tool_glob(g) {
                Ok(g) => out.push(g),
                Err(bad) => diags.push(cli_diag(
                    bad.code,
                    flag,
                    format!("{flag} {g:?} {}", bad.what),
                    bad.help,
                )),
            }
        }
        out
    };
    if !o.allow_tool.is_empty() {
        s.tools.allow = globs("--allow-tool", &o.allow_tool, diags);
    }
    s.tools
        .deny
        .extend(globs("--deny-tool", &o.deny_tool, diags));
    for h in &o.allow_net {
        match values::host_rule(h) {
            Ok(rule) => s.net.allow.push(rule),
            Err(bad) => diags.push(cli_diag(
                bad.code,
                "--allow-net",
                format!("--allow-net {h:?} {}", bad.what),
                bad.help,
            )),
        }
    }
    let path = |flag: &str, p: &Path, diags: &mut Diagnostics| -> Option<SitedPath> {
        let raw = p.to_string_lossy().into_owned();
        // Non-UTF-8 paths cannot start with `~` as text we expand; take them as written.
        let spec = match p.to_str() {
            Some(text) => values::path_spec(text),
            None if p.is_absolute() => Ok(PathSpec::Absolute(raw.clone())),
            None => Ok(PathSpec::Relative(raw.clone())),
        };
        match spec {
            Ok(spec) => Some(SitedPath {
                spec,
                raw,
                site: Site {
                    origin: CLI_ORIGIN.to_owned(),
                    location: None,
                    key: flag.to_owned(),
                },
                warned_broad: false,
            }),
            Err(bad) => {
                diags.push(cli_diag(
                    bad.code,
                    flag,
                    format!("{flag} {raw:?} {}", bad.what),
                    bad.help,
                ));
                None
            }
        }
    };
    for p in &o.allow_read {
        s.fs_read.extend(path("--allow-read", p, diags));
    }
    for p in &o.allow_write {
        s.fs_write.extend(path("--allow-write", p, diags));
    }
    if let Some(p) = &o.audit_log {
        s.audit_path = path("--audit-log", p, diags);
        s.audit_enabled = true;
    }
    if let Some(p) = &o.pins {
        s.pin_file = path("--pins", p, diags);
    }
}

/// Expands `~` and makes relative (command-line) paths absolute. Interior `.` components are dropped;
/// `..` is kept, because removing it lexically is wrong when the parent is a symlink (the guard
/// canonicalizes roots).
fn expand(p: &SitedPath, env: &ResolveEnv<'_>, diags: &mut Diagnostics) -> Option<PathBuf> {
    let joined = match &p.spec {
        PathSpec::Absolute(a) => PathBuf::from(a),
        PathSpec::Relative(r) => env.cwd.join(r),
        PathSpec::Home(rest) => match env.home {
            Some(home) if rest.is_empty() => home.to_path_buf(),
            Some(home) => home.join(rest),
            None => {
                diags.push(Diagnostic {
                    severity: Code::NoHome.severity(),
                    code: Code::NoHome,
                    origin: p.site.origin.clone(),
                    location: p.site.location,
                    key: p.site.key.clone(),
                    message: format!(
                        "{} = {:?} uses ~, but the home directory is unknown",
                        p.site.key, p.raw
                    ),
                    help: "set HOME, or write the absolute path".into(),
                });
                return None;
            }
        },
    };
    Some(
        joined
            .components()
            .filter(|c| *c != Component::CurDir)
            .collect(),
    )
}

fn expand_all(
    paths: &[SitedPath],
    what: &str,
    env: &ResolveEnv<'_>,
    diags: &mut Diagnostics,
    warnings: &mut Diagnostics,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in paths {
        let Some(abs) = expand(p, env, diags) else {
            continue;
        };
        let is_root = abs.parent().is_none();
        let is_home = env.home.is_some_and(|h| abs == h);
        if (is_root || is_home) && !p.warned_broad {
            let place = if is_root {
                "the whole filesystem"
            } else {
                "the whole home directory"
            };
            warnings.push(Diagnostic {
                severity: Code::BroadRoot.severity(),
                code: Code::BroadRoot,
                origin: p.site.origin.clone(),
                location: p.site.location,
                key: p.site.key.clone(),
                message: format!(
                    "{} {:?} makes {place} {what}, including keys and tokens",
                    p.site.key, p.raw
                ),
                help: "list only the folders the server needs, such as ~/project".into(),
            });
        }
        if !out.contains(&abs) {
            out.push(abs);
        }
    }
    out
}

fn dedup<T: PartialEq>(v: &mut Vec<T>) {
    let mut i = 0;
    while i < v.len() {
        if v[..i].contains(&v[i]) {
            v.remove(i);
        } else {
            i += 1;
        }
    }
}
