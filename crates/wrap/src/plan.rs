//! Deciding what `palisade wrap` does to one config, without doing it.
//!
//! [`plan`] reads a parsed [`ConfigFile`] and returns a [`Plan`]: the new text of the file, the new text of
//! its generated policy, the secrets to store, and for every server entry what happens to it and why. No
//! file is touched and no secret is stored, which is what `--dry-run` and the confirmation prompt show,
//! and what the tests check byte for byte.
//!
//! For each local server entry the plan:
//! 1. removes every `env` entry whose value the scanner's detector calls a plaintext secret (the value
//!    goes to the store; the policy gets `VAR = "keychain:NAME"`), and passes the other variables on with
//!    `VAR = "env:VAR"` (the client still sets them, so its own `${…}` interpolation keeps working);
//! 2. puts `run --policy P --server NAME --` and the old program in front of the arguments;
//! 3. makes `command` the palisade executable.
//!
//! Entries it leaves alone, each with the reason in the report: remote servers (URLs: palisade wraps the
//! processes it starts), entries already running through `palisade run`, containers (`docker run` needs the
//! Docker daemon's socket, which the sandbox hides), entries with a secret in their arguments (it would stay
//! visible in `ps` and be copied into the policy; it has to become an env variable the server reads, which
//! only the user can know), and entries whose `command`/`args`/`env` keys are written twice (clients
//! disagree on which one wins).
//!
//! The result is verified before it is returned: the new text is read back with the scanner's reader and
//! every wrapped entry must run `palisade run` with the original command and arguments, word for word, and
//! without the moved variables; a file that was strict JSON stays strict JSON; the policy must pass
//! `palisade policy check`. A plan that fails these is a bug, reported as [`PlanError::Verify`], never
//! written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use palisade_scan::config::{ServerEntry, Transport};
use palisade_scan::launch::{Launch, flag_value};
use palisade_scan::{Client, ConfigFile, Format, Scope};
use palisade_secrets::{Secret, SecretName};

use crate::edit;
use crate::known::{self, Need};
use crate::policy_text::{self, EnvKind};

/// Variables a sandboxed server never gets, whatever its policy says (they inject code or credentials).
/// The same list as `palisade_sandbox::ENV_NEVER` (a test in the binary keeps them equal); this crate does
/// not depend on the sandbox.
pub const NEVER_PASSED: &[&str] = &[
    "SSH_AUTH_SOCK",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "NODE_OPTIONS",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "BASH_ENV",
    "ENV",
    "PERL5OPT",
    "RUBYOPT",
    "DYLD_INSERT_LIBRARIES",
];

/// What the planner needs to know besides the file.
#[derive(Debug, Clone)]
pub struct Setup<'a> {
    /// The palisade executable clients will start (absolute, so a client with a short `PATH` finds it).
    pub palisade: &'a Path,
    /// The generated policy file of this config.
    pub policy_path: &'a Path,
    /// That policy's current text, when it exists (a previous wrap of this config).
    pub policy_text: Option<&'a str>,
    /// The home `~` in server arguments means.
    pub home: &'a Path,
    /// Server names other wrapped configs use: pins and audit logs are kept per name, so two configs
    /// must never share one.
    pub taken_servers: &'a BTreeSet<String>,
    /// Secret names already in the store (never overwritten).
    pub taken_secrets: &'a BTreeSet<String>,
    /// Grant package runners (`npx`, `uvx`, …) their registry (`--allow-registry`).
    pub allow_registry: bool,
}

/// A plaintext secret to move into the store.
#[derive(Debug)]
pub struct SecretMove {
    /// Its new name (`keychain:NAME`).
    pub name: SecretName,
    /// The variable it was the value of.
    pub var: String,
    /// The entry it came from.
    pub entry: String,
    /// The value (never printed: [`Secret`]'s `Debug` masks it).
    pub value: Secret,
    /// What the detector saw (`a GitHub token in plaintext (ghp_…a1b2)`).
    pub what: String,
}

/// What happens to one server entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// It will run through `palisade run --policy P --server NAME -- …`.
    Wrap {
        /// Its `[servers.NAME]` in the policy.
        server: String,
    },
    /// It already runs through `palisade run`.
    Already,
    /// Left as it is, for this reason (which says what to do instead).
    Skip(String),
}

/// One server entry's fate.
#[derive(Debug, Clone)]
pub struct ServerPlan {
    /// The entry's name (`github`; `github (project /p)` for Claude Code's per-project servers).
    pub entry: String,
    /// What happens.
    pub action: Action,
    /// Things the user should know: network it will lack, variables it will not get, broad roots.
    pub notes: Vec<String>,
}

/// Everything `palisade wrap` would do to one config.
#[derive(Debug)]
pub struct Plan {
    /// The config file.
    pub config: PathBuf,
    /// Whose.
    pub client: Client,
    /// JSON(C) or TOML.
    pub format: Format,
    /// Its text now.
    pub before: String,
    /// Its text after wrapping (equal to `before` when there is nothing to do).
    pub after: String,
    /// The generated policy.
    pub policy_path: PathBuf,
    /// The policy's text now (`None`: it does not exist).
    pub policy_before: Option<String>,
    /// The policy's text after wrapping (equal to `policy_before` when no server is wrapped).
    pub policy_after: Option<String>,
    /// Every server entry, in file order.
    pub servers: Vec<ServerPlan>,
    /// Secrets to store before the config is rewritten.
    pub secrets: Vec<SecretMove>,
    /// File-level notes.
    pub notes: Vec<String>,
}

impl Plan {
    /// Whether applying it changes the config.
    pub fn changes(&self) -> bool {
        self.before != self.after
    }

    /// The servers it wraps.
    pub fn wrapped(&self) -> impl Iterator<Item = (&ServerPlan, &str)> {
        self.servers.iter().filter_map(|s| match &s.action {
            Action::Wrap { server } => Some((s, server.as_str())),
            _ => None,
        })
    }

    /// A unified diff of the config (empty when nothing changes). Never contains a moved secret: the
    /// lines that held one are shown with the value masked.
    pub fn diff(&self) -> String {
        let mut d = crate::diff::unified(&self.config, &self.before, &self.after);
        for s in &self.secrets {
            let value = s.value.expose_str();
            for form in [
                value.to_owned(),
                edit::json_str(value),
                edit::toml_str(value),
            ] {
                let inner = form.trim_matches('"');
                if !inner.is_empty() {
                    d = d.replace(inner, &format!("[{}]", s.what_short()));
                }
            }
        }
        d
    }
}

impl SecretMove {
    fn what_short(&self) -> String {
        format!("secret moved to keychain:{}", self.name)
    }
}

/// Why a config cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The config could not be read or parsed.
    #[error(
        "{path}: {message}; fix the file (`palisade scan {path}` points at the problem), then run palisade wrap again"
    )]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The generated policy from an earlier wrap no longer parses.
    #[error(
        "{path}: the policy an earlier `palisade wrap` generated has errors:\n{diagnostics}\nhint: fix it (`palisade policy check {path}`) so wrap can add to it"
    )]
    PolicyBroken {
        /// The policy file.
        path: String,
        /// What the checker says.
        diagnostics: String,
    },
    /// The planned result failed its own checks: a bug in palisade; nothing is written.
    #[error(
        "{path}: palisade wrap refused its own result ({why}); nothing was changed. This is a bug in palisade: please report it with the config's layout (not its secrets)"
    )]
    Verify {
        /// The config file.
        path: String,
        /// What did not hold.
        why: String,
    },
}

/// `[A-Za-z0-9_-]` only, runs of others as one `-`, no leading/trailing `-`.
pub(crate) fn sanitize(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

fn unique(base: &str, taken: &BTreeSet<String>, max: usize) -> String {
    let base = if base.is_empty() { "server" } else { base };
    let cut = |s: &str, n: usize| -> String {
        s.chars()
            .take(n)
            .collect::<String>()
            .trim_end_matches('-')
            .to_owned()
    };
    let first = cut(base, max);
    if !taken.contains(&first) {
        return first;
    }
    (2..)
        .map(|i| {
            let suffix = format!("-{i}");
            format!("{}{suffix}", cut(base, max - suffix.len()))
        })
        .find(|n| !taken.contains(n))
        .expect("an unused name exists")
}

/// The directory a project config belongs to (`/p/.cursor/mcp.json` → `/p`).
fn project_dir(config: &Path) -> Option<&Path> {
    config.ancestors().skip(1).find(|d| {
        d.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with('.') && n != "settings")
    })
}

fn base_name(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
}

/// The entry's display name and its policy server name's base.
fn names(file: &ConfigFile, entry: &ServerEntry) -> (String, String) {
    let client = file.client.id();
    // `~/.claude.json` `projects.<dir>.mcpServers.<name>`.
    if entry.pointer.first().map(String::as_str) == Some("projects") && entry.pointer.len() >= 4 {
        let project = &entry.pointer[1];
        return (
            format!("{} (project {project})", entry.name),
            sanitize(&format!("{client}-{}-{}", base_name(project), entry.name)),
        );
    }
    if file.scope == Scope::Project {
        let project = project_dir(&file.path)
            .and_then(|d| d.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or("project");
        return (
            entry.name.clone(),
            sanitize(&format!("{client}-{project}-{}", entry.name)),
        );
    }
    (
        entry.name.clone(),
        sanitize(&format!("{client}-{}", entry.name)),
    )
}

/// Existing directories among the arguments (absolute, or under `~`), the server's roots.
fn roots(args: &[String], home: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for a in args {
        let v = flag_value(a);
        let p = if v == "~" {
            home.to_path_buf()
        } else if let Some(rest) = v.strip_prefix("~/") {
            home.join(rest)
        } else if v.starts_with('/') {
            PathBuf::from(v)
        } else {
            continue;
        };
        if p.is_dir() && !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

fn valid_env_name(n: &str) -> bool {
    !n.is_empty() && !n.contains(['=', '\0'])
}

/// Why an entry is left alone, or `None` to wrap it.
fn skip_reason(entry: &ServerEntry, root: &palisade_scan::doc::Node) -> Option<String> {
    if entry.command.is_none() {
        return Some(match (&entry.url, entry.transport) {
            (Some(_), _) | (_, Transport::Http | Transport::Sse) => {
                "left as it is: a remote server (URL); palisade wraps the servers it starts itself"
                    .into()
            }
            _ => "left as it is: it has neither a command nor a URL".into(),
        });
    }
    let launch = Launch::of(entry);
    if let Some(prog) = launch.program()
        && matches!(prog.as_str(), "docker" | "podman" | "nerdctl")
    {
        return Some(format!(
            "left as it is: `{prog} run` needs the container daemon's socket, which the sandbox hides; harden the container instead (`palisade scan` says how)"
        ));
    }
    for (i, arg) in entry.args.iter().enumerate() {
        let hint = i
            .checked_sub(1)
            .map(|p| entry.args[p].value.as_str())
            .filter(|p| p.starts_with('-') && !p.contains('='));
        if let Some(hit) = palisade_scan::secrets::scan(&arg.value, hint).first() {
            return Some(format!(
                "left as it is: argument {} holds {}, which wrapping would leave visible in `ps` and copy into the policy; if the server can read it from an environment variable, move it into `env` and run palisade wrap again (its value then goes to the secret store); rotate it either way",
                i + 1,
                hit.describe()
            ));
        }
    }
    let obj = edit::locate(root, &entry.pointer)?;
    let (holder, keys): (&palisade_scan::doc::Node, &[&str]) = match obj.get("command") {
        Some(c) if c.is_object() => (c, &["path", "args", "env"]),
        _ => (obj, &["command", "args", "env"]),
    };
    if let Some(k) = keys
        .iter()
        .chain(["command"].iter())
        .find(|k| edit::duplicated(holder, k) || edit::duplicated(obj, k))
    {
        return Some(format!(
            "left as it is: `{k}` is written twice in this entry, and clients disagree about which one counts; remove one and run palisade wrap again"
        ));
    }
    if holder.get("args").is_some_and(|a| a.as_array().is_none()) {
        return Some("left as it is: its `args` is not a list".into());
    }
    if holder.get("env").is_some_and(|e| !e.is_object()) {
        return Some("left as it is: its `env` is not an object".into());
    }
    None
}

/// Plans wrapping `file` (see the module docs).
pub fn plan(file: &ConfigFile, setup: &Setup<'_>) -> Result<Plan, PlanError> {
    let path_str = file.path.display().to_string();
    if let Some(e) = &file.error {
        return Err(PlanError::Unreadable {
            path: path_str,
            message: e.message.clone(),
        });
    }
    let format = file.format();
    let mut taken: BTreeSet<String> = setup.taken_servers.clone();
    if let Some(text) = setup.policy_text {
        let policy =
            palisade_policy::PolicyFile::parse(text, &setup.policy_path.display().to_string())
                .map_err(|d| PlanError::PolicyBroken {
                    path: setup.policy_path.display().to_string(),
                    diagnostics: d
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n"),
                })?;
        taken.extend(policy.server_names().map(str::to_owned));
    }
    let mut taken_secrets = setup.taken_secrets.clone();
    let unreadable = |message: String| PlanError::Unreadable {
        path: path_str.clone(),
        message,
    };
    let original_root = edit::parse(format, &file.text).map_err(unreadable)?;
    let palisade = setup.palisade.display().to_string();
    let policy_arg = setup.policy_path.display().to_string();

    let mut text = file.text.clone();
    let mut servers = Vec::new();
    let mut secrets: Vec<SecretMove> = Vec::new();
    let mut tables = String::new();
    let mut checks: Vec<Check> = Vec::new();

    for entry in &file.servers {
        let (display, base) = names(file, entry);
        if Launch::of(entry).palisade.is_some() {
            servers.push(ServerPlan {
                entry: display,
                action: Action::Already,
                notes: Vec::new(),
            });
            continue;
        }
        if let Some(reason) = skip_reason(entry, &original_root) {
            let mut notes = Vec::new();
            for h in &entry.headers {
                if let Some(v) = &h.value
                    && let Some(hit) =
                        palisade_scan::secrets::scan(&v.value, Some(&h.name.value)).first()
                {
                    notes.push(format!(
                        "header `{}` holds {}: the client sends it itself, so wrap cannot move it; use the client's own variable syntax if it has one, and rotate it",
                        h.name.value,
                        hit.describe()
                    ));
                }
            }
            for var in &entry.env {
                if let Some(v) = &var.value
                    && let Some(hit) =
                        palisade_scan::secrets::scan(&v.value, Some(&var.name.value)).first()
                {
                    notes.push(format!(
                        "env `{}` holds {}: it stays in the config, since this entry is not wrapped; rotate it if the file was ever shared",
                        var.name.value,
                        hit.describe()
                    ));
                }
            }
            if let Some(u) = &entry.url
                && let Some(hit) = palisade_scan::secrets::scan(&u.value, None).first()
            {
                notes.push(format!(
                    "its URL holds {}; rotate it and keep it out of the URL",
                    hit.describe()
                ));
            }
            servers.push(ServerPlan {
                entry: display,
                action: Action::Skip(reason),
                notes,
            });
            continue;
        }

        let server = unique(&base, &taken, 100);
        taken.insert(server.clone());
        let argv: Vec<String> = entry
            .command
            .iter()
            .chain(entry.args.iter())
            .map(|t| t.value.clone())
            .collect();
        let mut notes = Vec::new();
        let read = roots(&argv[1..], setup.home);
        for r in &read {
            if r == Path::new("/") || r == setup.home {
                notes.push(format!(
                    "reads all of {} (named in its arguments): narrow the folder in the config if you can",
                    r.display()
                ));
            }
        }
        let needs: Vec<Need> = known::needs(&argv);
        for n in &needs {
            let hosts = if n.hosts.is_empty() {
                String::new()
            } else {
                format!(" ({})", n.hosts.join(", "))
            };
            if n.to_start && setup.allow_registry {
                notes.push(format!(
                    "network allowed: {}{hosts} (--allow-registry)",
                    n.why
                ));
            } else if n.to_start {
                let install = n
                    .install
                    .as_ref()
                    .map(|i| format!("`{i}` (it then runs from palisade's store, checked, with no download), or "))
                    .unwrap_or_default();
                notes.push(format!(
                    "WILL NOT START until you decide: {}. Either {install}enable the `allow` line in the policy's [servers.{server}.network]",
                    n.why
                ));
            } else {
                notes.push(format!(
                    "no network: {}{hosts}; enable it in the policy's [servers.{server}.network] if you want it",
                    n.why
                ));
            }
        }

        let mut env: Vec<(String, String, EnvKind)> = Vec::new();
        let mut remove: BTreeSet<String> = BTreeSet::new();
        for var in &entry.env {
            let name = &var.name.value;
            if NEVER_PASSED.contains(&name.as_str()) {
                notes.push(format!(
                    "`{name}` is never passed to a sandboxed server (it injects code or credentials); it stays in the config but the server will not see it"
                ));
                continue;
            }
            if !valid_env_name(name) {
                notes.push(format!(
                    "`{name:?}` is not a usable variable name; left in the config"
                ));
                continue;
            }
            let hits = var
                .value
                .as_ref()
                .map(|v| palisade_scan::secrets::scan(&v.value, Some(name)))
                .unwrap_or_default();
            match (hits.first(), &var.value) {
                (Some(hit), Some(value)) => {
                    let secret_base = sanitize(&format!("{server}-{name}"));
                    let secret_name =
                        unique(&secret_base, &taken_secrets, palisade_secrets::MAX_NAME_LEN);
                    taken_secrets.insert(secret_name.clone());
                    let sname = SecretName::new(&secret_name).map_err(|e| PlanError::Verify {
                        path: path_str.clone(),
                        why: format!("secret name: {e}"),
                    })?;
                    let secret =
                        Secret::from_string(value.value.clone(), "an env value").map_err(|e| {
                            PlanError::Unreadable {
                                path: path_str.clone(),
                                message: format!("env `{name}` of `{}`: {e}", entry.name),
                            }
                        })?;
                    env.push((
                        name.clone(),
                        format!("keychain:{secret_name}"),
                        EnvKind::Moved,
                    ));
                    remove.insert(name.clone());
                    secrets.push(SecretMove {
                        name: sname,
                        var: name.clone(),
                        entry: display.clone(),
                        value: secret,
                        what: hit.describe(),
                    });
                }
                _ => env.push((name.clone(), format!("env:{name}"), EnvKind::FromClient)),
            }
        }
        for p in &entry.env_passthrough {
            let name = &p.value;
            if NEVER_PASSED.contains(&name.as_str()) {
                notes.push(format!(
                    "`{name}` (passed through by the client) is never passed to a sandboxed server: it injects code or credentials"
                ));
            } else if valid_env_name(name) && !env.iter().any(|(v, _, _)| v == name) {
                env.push((name.clone(), format!("env:{name}"), EnvKind::Passthrough));
            }
        }

        // The edits, each on freshly parsed text.
        for var in &remove {
            loop {
                let root = edit::parse(format, &text).map_err(|e| verify(&path_str, e))?;
                let obj = edit::locate(&root, &entry.pointer)
                    .ok_or_else(|| verify(&path_str, "entry vanished"))?;
                let holder = match obj.get("command") {
                    Some(c) if c.is_object() => c,
                    _ => obj,
                };
                let Some(env_obj) = holder.get("env") else {
                    break;
                };
                let Some(i) = edit::members(env_obj)
                    .iter()
                    .position(|(k, _)| &k.name == var)
                else {
                    break;
                };
                text = edit::remove_member(format, &text, env_obj, i);
            }
        }
        let lit = |s: &str| edit::str_lit(format, s);
        let head: Vec<String> = ["run", "--policy", &policy_arg, "--server", &server, "--"]
            .iter()
            .map(|s| lit(s))
            .collect();
        let old_command = lit(&argv[0]);
        {
            let root = edit::parse(format, &text).map_err(|e| verify(&path_str, e))?;
            let obj = edit::locate(&root, &entry.pointer)
                .ok_or_else(|| verify(&path_str, "entry vanished"))?;
            let (holder, cmd_key) = match obj.get("command") {
                Some(c) if c.is_object() => (c, "path"),
                _ => (obj, "command"),
            };
            text = match holder.get("args") {
                Some(args) => edit::prepend_items(&text, args, &head, &[old_command]),
                None => {
                    let (k, v) = holder
                        .entry(cmd_key)
                        .ok_or_else(|| verify(&path_str, "no command"))?;
                    let mut all = head.clone();
                    all.push(old_command);
                    edit::insert_after(
                        format,
                        &text,
                        holder,
                        k,
                        v,
                        "args",
                        &format!("[{}]", all.join(", ")),
                    )
                }
            };
        }
        {
            let root = edit::parse(format, &text).map_err(|e| verify(&path_str, e))?;
            let obj = edit::locate(&root, &entry.pointer)
                .ok_or_else(|| verify(&path_str, "entry vanished"))?;
            let cmd = match obj.get("command") {
                Some(c) if c.is_object() => c.get("path"),
                c => c,
            }
            .ok_or_else(|| verify(&path_str, "no command"))?;
            text = edit::replace(&text, cmd, &lit(&palisade));
        }

        tables.push_str(&policy_text::table(&policy_text::Table {
            name: &server,
            entry: &display,
            argv: &argv,
            env: &env,
            read: &read,
            needs: &needs,
            allow_registry: setup.allow_registry,
        }));
        let kept: BTreeSet<String> = entry
            .env
            .iter()
            .map(|v| v.name.value.clone())
            .filter(|n| !remove.contains(n))
            .collect();
        checks.push((entry.pointer.clone(), server.clone(), argv, kept));
        servers.push(ServerPlan {
            entry: display,
            action: Action::Wrap { server },
            notes,
        });
    }

    let policy_after = if tables.is_empty() {
        setup.policy_text.map(str::to_owned)
    } else {
        let mut p = match setup.policy_text {
            Some(t) => t.to_owned(),
            None => policy_text::header(file.client.name(), &file.path, setup.policy_path),
        };
        if !p.ends_with('\n') {
            p.push('\n');
        }
        p.push_str(&tables);
        let diags = palisade_policy::check(&p, &setup.policy_path.display().to_string());
        if diags.has_errors() {
            return Err(verify(
                &path_str,
                format!(
                    "the generated policy does not pass `palisade policy check`: {}",
                    diags
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ));
        }
        Some(p)
    };

    verify_result(file, &text, &checks, &palisade, &policy_arg)?;
    let mut notes = Vec::new();
    for s in &secrets {
        if text.contains(s.value.expose_str()) {
            notes.push(format!(
                "the value moved to keychain:{} still appears elsewhere in the file (another entry wrap left alone?); `palisade scan` shows where",
                s.name
            ));
        }
    }
    Ok(Plan {
        config: file.path.clone(),
        client: file.client,
        format,
        before: file.text.clone(),
        after: text,
        policy_path: setup.policy_path.to_path_buf(),
        policy_before: setup.policy_text.map(str::to_owned),
        policy_after,
        servers,
        secrets,
        notes,
    })
}

/// What a wrapped entry must look like when read back: its pointer, server name, original argv and the
/// env variable names the config still sets.
type Check = (Vec<String>, String, Vec<String>, BTreeSet<String>);

fn verify(path: &str, why: impl Into<String>) -> PlanError {
    PlanError::Verify {
        path: path.to_owned(),
        why: why.into(),
    }
}

/// Reads the new text back and checks every wrapped entry (see the module docs).
fn verify_result(
    file: &ConfigFile,
    after: &str,
    checks: &[Check],
    palisade: &str,
    policy: &str,
) -> Result<(), PlanError> {
    let path = file.path.display().to_string();
    if file.format() == Format::Jsonc
        && serde_json::from_str::<serde_json::Value>(&file.text).is_ok()
        && let Err(e) = serde_json::from_str::<serde_json::Value>(after)
    {
        return Err(verify(
            &path,
            format!("the strict JSON file would no longer be strict JSON: {e}"),
        ));
    }
    let candidate = palisade_scan::Candidate {
        client: file.client,
        shape: file.shape,
        scope: file.scope,
        path: file.path.clone(),
    };
    let reread = ConfigFile::parse(&candidate, after.to_owned(), file.mode);
    if let Some(e) = &reread.error {
        return Err(verify(
            &path,
            format!("the new text does not parse: {}", e.message),
        ));
    }
    if reread.servers.len() != file.servers.len() {
        return Err(verify(&path, "the number of servers changed"));
    }
    for (pointer, server, argv, kept) in checks {
        let entry = reread
            .servers
            .iter()
            .find(|s| &s.pointer == pointer)
            .ok_or_else(|| verify(&path, format!("entry {} vanished", pointer.join("."))))?;
        let words: Vec<&str> = entry
            .command
            .iter()
            .chain(entry.args.iter())
            .map(|t| t.value.as_str())
            .collect();
        let mut expected = vec![
            palisade,
            "run",
            "--policy",
            policy,
            "--server",
            server.as_str(),
            "--",
        ];
        expected.extend(argv.iter().map(String::as_str));
        if words != expected || Launch::of(entry).palisade.is_none() {
            return Err(verify(
                &path,
                format!(
                    "entry {} does not run the original command",
                    pointer.join(".")
                ),
            ));
        }
        let env: BTreeSet<String> = entry.env.iter().map(|v| v.name.value.clone()).collect();
        if &env != kept {
            return Err(verify(
                &path,
                format!("entry {}: unexpected env", pointer.join(".")),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_scan::{Candidate, Scope, Shape};

    fn file(text: &str) -> ConfigFile {
        let c = Candidate {
            client: Client::Cursor,
            shape: Shape::McpServers,
            scope: Scope::User,
            path: "/h/.cursor/mcp.json".into(),
        };
        ConfigFile::parse(&c, text.into(), Some(0o600))
    }

    fn plan_of(text: &str) -> Plan {
        let none = BTreeSet::new();
        plan(
            &file(text),
            &Setup {
                palisade: Path::new("/usr/bin/palisade"),
                policy_path: Path::new("/p.toml"),
                policy_text: None,
                home: Path::new("/nonexistent-home"),
                taken_servers: &none,
                taken_secrets: &none,
                allow_registry: false,
            },
        )
        .unwrap()
    }

    fn token() -> String {
        ["gh", "p_", "Zq8RtY2mVx7KpL4nWc9HbJ3sDf6GaE1uQo5T"].concat()
    }

    #[test]
    fn a_skipped_entry_says_its_env_secret_stays() {
        let p = plan_of(&format!(
            r#"{{"mcpServers": {{"gh": {{"command": "docker", "args": ["run", "-i", "img@sha256:00"], "env": {{"GITHUB_TOKEN": "{}"}}}}}}}}"#,
            token()
        ));
        assert!(!p.changes());
        assert!(matches!(&p.servers[0].action, Action::Skip(r) if r.contains("docker run")));
        assert!(
            p.servers[0].notes[0].starts_with("env `GITHUB_TOKEN` holds a GitHub token"),
            "{:?}",
            p.servers[0].notes
        );
        assert!(p.secrets.is_empty());
    }

    #[test]
    fn entries_with_keys_written_twice_are_left_alone() {
        let p = plan_of(r#"{"mcpServers": {"x": {"command": "a", "command": "b"}}}"#);
        assert!(
            matches!(&p.servers[0].action, Action::Skip(r) if r.contains("`command` is written twice"))
        );
        assert!(!p.changes());
    }

    #[test]
    fn duplicated_secret_env_keys_all_leave_the_file() {
        let t = token();
        let p = plan_of(&format!(
            r#"{{"mcpServers": {{"x": {{"command": "a", "env": {{"GITHUB_TOKEN": "{t}", "GITHUB_TOKEN": "{t}"}}}}}}}}"#
        ));
        assert!(!p.after.contains(&t), "{}", p.after);
        assert_eq!(p.secrets.len(), 1);
    }

    #[test]
    fn names_are_sanitized_and_made_unique() {
        assert_eq!(
            sanitize("claude-desktop-My Server/é"),
            "claude-desktop-My-Server"
        );
        let taken: BTreeSet<String> = ["a-x".to_owned(), "a-x-2".to_owned()].into();
        assert_eq!(unique("a-x", &taken, 100), "a-x-3");
        assert_eq!(unique("", &BTreeSet::new(), 100), "server");
        let long = "n".repeat(200);
        assert_eq!(unique(&long, &BTreeSet::new(), 128).len(), 128);
    }
}
