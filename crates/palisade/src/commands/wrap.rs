//! `palisade wrap` and `palisade unwrap`: put the MCP servers of this machine's client configs behind
//! `palisade run`, and take them back out.
//!
//! Which configs: every client's user config found the way `palisade scan` finds them (under `--home DIR`
//! instead of yours if given; `--client NAME` keeps one client's), or exactly the file `--config PATH`.
//! Project configs (`.mcp.json`, `.cursor/mcp.json`, …) are only wrapped when named with `--config`: they
//! are usually committed and shared, and a wrapped entry holds this machine's absolute paths.
//!
//! Nothing is changed without consent: `--dry-run` prints the unified diff of every file and touches
//! nothing (no secret is stored either); otherwise each file's diff is shown and confirmed at a terminal,
//! `--yes` confirms them all, and without a terminal and without `--yes` palisade refuses (exit 2) before
//! changing anything. Diffs go to stdout (data); the report, notes and prompts to stderr.
//!
//! Exit status: 0 when every file was handled (including "nothing to change"); 1 when a file could not be
//! wrapped or restored (the others still are); 2 for usage errors and the refusal above.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::Args;
use palisade_scan::{Client, ConfigFile, Locations, Shape};
use palisade_secrets::{Opened, SecretStore};
use palisade_wrap::{Action, Dirs, Plan, PolicyOutcome, Setup, UnwrapPlan};

use crate::ExitStatus;
use crate::settings::ConfigError;

/// Which configs (shared by wrap and unwrap).
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// Only this client's configs: claude-desktop, claude-code, cursor, vscode, windsurf, gemini-cli,
    /// codex, zed, kiro.
    #[arg(long, value_name = "NAME", conflicts_with = "config")]
    client: Option<String>,
    /// Exactly this config file (also a project config such as `.mcp.json`).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// The home whose configs to use instead of yours (and that `~` in server arguments means).
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Print what would change, as a unified diff per file, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Change every file without asking (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    yes: bool,
}

/// `palisade wrap` flags.
#[derive(Debug, Args)]
pub(crate) struct WrapArgs {
    #[command(flatten)]
    target: Target,
    /// Let servers started by package runners (npx, uvx, pipx run, …) reach their registry, which they
    /// download from at every start. A malicious package could upload what it reads through it.
    #[arg(long)]
    allow_registry: bool,
}

/// `palisade unwrap` flags.
#[derive(Debug, Args)]
pub(crate) struct UnwrapArgs {
    #[command(flatten)]
    target: Target,
    /// Restore even a config changed since palisade wrap wrote it (the changes are lost), and go back to
    /// before the first wrap.
    #[arg(long)]
    force: bool,
    /// Also remove the secrets wrap moved into the store (the restored config holds them again).
    #[arg(long)]
    remove_secrets: bool,
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    ConfigError(msg.into()).into()
}

fn client_filter(name: &Option<String>) -> Result<Option<Client>> {
    let Some(name) = name else { return Ok(None) };
    match Client::from_id(name) {
        Some(c) if c != Client::Other => Ok(Some(c)),
        _ => Err(usage(format!(
            "--client {name}: not a client palisade knows; use one of {}",
            Client::ALL
                .iter()
                .filter(|c| **c != Client::Other)
                .map(|c| c.id())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn home(t: &Target) -> Result<PathBuf> {
    match &t.home {
        Some(dir) if dir.is_dir() => Ok(std::path::absolute(dir).unwrap_or_else(|_| dir.clone())),
        Some(dir) => Err(usage(format!(
            "--home {}: not a directory; pass the home directory whose configs to use",
            dir.display()
        ))),
        None => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| usage("$HOME is not set; pass --home DIR or --config PATH")),
    }
}

fn dirs() -> Result<Dirs> {
    Ok(Dirs::new(&crate::dirs::config()?, &crate::dirs::state()?))
}

/// The configs `t` names.
fn configs(t: &Target, home: &Path) -> Result<Vec<ConfigFile>> {
    if let Some(path) = &t.config {
        let file = palisade_scan::load_explicit(path).map_err(|e| usage(e.to_string()))?;
        if file.shape == Shape::ClaudeSettings {
            return Err(usage(format!(
                "{}: a Claude Code settings file, which holds no servers; wrap ~/.claude.json or .mcp.json instead",
                path.display()
            )));
        }
        return Ok(vec![file]);
    }
    let client = client_filter(&t.client)?;
    let mut loc = match &t.home {
        Some(_) => Locations::for_home(home),
        None => Locations::from_env(|k| std::env::var_os(k))
            .unwrap_or_else(|| Locations::for_home(home)),
    };
    // Machine-wide files belong to whoever manages the machine.
    loc.system = false;
    let mut seen = BTreeSet::new();
    Ok(palisade_scan::discover::user_candidates(&loc)
        .into_iter()
        .filter(|c| c.shape != Shape::ClaudeSettings && c.path.is_file())
        .filter(|c| client.is_none_or(|k| c.client == k))
        .filter(|c| seen.insert(c.path.canonicalize().unwrap_or_else(|_| c.path.clone())))
        .map(|c| palisade_scan::load(&c))
        .collect())
}

fn open_store() -> Result<Opened> {
    Opened::from_env().map_err(|e| {
        if e.is_usage() {
            usage(e.to_string())
        } else {
            anyhow::Error::msg(e.to_string())
        }
    })
}

/// Asks once; anything but y/yes is no.
fn confirm(question: &str) -> Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn refuse_without_terminal(t: &Target, what: &str, files: usize) -> Result<()> {
    if t.dry_run || t.yes || std::io::stdin().is_terminal() {
        return Ok(());
    }
    Err(usage(format!(
        "refusing to {what} {files} config file(s) without confirmation: stdin is not a terminal\nhint: review the changes with --dry-run, then pass --yes"
    )))
}

fn short(path: &Path, home: &Path) -> String {
    match path.strip_prefix(home) {
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => path.display().to_string(),
    }
}

fn print_plan(p: &Plan, home: &Path) {
    eprintln!("{} ({}):", p.client.name(), short(&p.config, home));
    for s in &p.servers {
        match &s.action {
            Action::Wrap { server } => {
                eprintln!("  wrap  {} → palisade run --server {server}", s.entry)
            }
            Action::Already => eprintln!("  ok    {}: already runs through palisade", s.entry),
            Action::Skip(why) => eprintln!("  skip  {}: {why}", s.entry),
        }
        for n in &s.notes {
            eprintln!("        note: {n}");
        }
        for m in p.secrets.iter().filter(|m| m.entry == s.entry) {
            eprintln!(
                "        secret: env `{}` holds {}; it moves to keychain:{}",
                m.var, m.what, m.name
            );
        }
    }
    for n in &p.notes {
        eprintln!("  note: {n}");
    }
}

/// Runs `palisade wrap`.
pub(crate) fn wrap(args: WrapArgs) -> Result<ExitStatus> {
    let t = &args.target;
    let home = home(t)?;
    let dirs = dirs()?;
    let files = configs(t, &home)?;
    if files.is_empty() {
        eprintln!(
            "palisade: no MCP client config found{}\nhint: `palisade scan` lists what it finds; pass --config PATH for a file elsewhere",
            t.client
                .as_ref()
                .map(|c| format!(" for {c}"))
                .unwrap_or_default()
        );
        return Ok(ExitStatus::Success);
    }
    let palisade = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot tell where the palisade executable is (the wrapped configs start it by its path)")?;

    let mut failed = false;
    // Plans first (no store needed unless a file holds secrets), so names can be reserved across files.
    let mut taken_secrets: Option<BTreeSet<String>> = None;
    let mut store: Option<Opened> = None;
    let mut reserved_servers = BTreeSet::new();
    let mut plans: Vec<(Plan, PathBuf)> = Vec::new();
    for file in &files {
        let real = file
            .path
            .canonicalize()
            .unwrap_or_else(|_| file.path.clone());
        let id = palisade_wrap::config_id(file.client, &real);
        let policy_path = dirs.policy_path(&id);
        let record_path = dirs.record_path(&id);
        let policy_text = match std::fs::read_to_string(&policy_path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", policy_path.display())),
        };
        let mut taken_servers = dirs
            .taken_servers(Some(&record_path))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        taken_servers.extend(reserved_servers.iter().cloned());
        let empty = BTreeSet::new();
        let attempt = |secrets: &BTreeSet<String>| {
            palisade_wrap::plan(
                file,
                &Setup {
                    palisade: &palisade,
                    policy_path: &policy_path,
                    policy_text: policy_text.as_deref(),
                    home: &home,
                    taken_servers: &taken_servers,
                    taken_secrets: secrets,
                    allow_registry: args.allow_registry,
                },
            )
        };
        let mut plan = match attempt(taken_secrets.as_ref().unwrap_or(&empty)) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("palisade: error: {e}");
                failed = true;
                continue;
            }
        };
        if !plan.secrets.is_empty() && taken_secrets.is_none() {
            let opened = open_store()?;
            let names = opened
                .store
                .list()
                .map_err(|e| anyhow::anyhow!("listing the secret store: {e}"))?;
            taken_secrets = Some(names.iter().map(|n| n.to_string()).collect());
            store = Some(opened);
            plan = attempt(taken_secrets.as_ref().expect("just set"))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        if let Some(ts) = taken_secrets.as_mut() {
            ts.extend(plan.secrets.iter().map(|s| s.name.to_string()));
        }
        reserved_servers.extend(plan.wrapped().map(|(_, n)| n.to_owned()));
        plans.push((plan, record_path));
    }

    let changing = plans.iter().filter(|(p, _)| p.changes()).count();
    refuse_without_terminal(t, "change", changing)?;
    let ask = !t.yes && !t.dry_run;
    let now = SystemTime::now();
    let mut wrapped_any = false;
    let mut backups_with_secrets = Vec::new();
    for (plan, record_path) in &plans {
        print_plan(plan, &home);
        if !plan.changes() {
            eprintln!("  nothing to change\n");
            continue;
        }
        if t.dry_run || ask {
            let mut out = std::io::stdout().lock();
            out.write_all(plan.diff().as_bytes())?;
            out.flush()?;
        }
        if t.dry_run {
            eprintln!();
            continue;
        }
        if ask && !confirm(&format!("Wrap {}?", short(&plan.config, &home)))? {
            eprintln!("  left unchanged\n");
            continue;
        }
        if !plan.secrets.is_empty() && store.is_none() {
            store = Some(open_store()?);
        }
        let opened = store.as_ref();
        let none: &dyn SecretStore = &NoStore;
        let s: &dyn SecretStore = opened.map_or(none, |o| o.store.as_ref());
        match palisade_wrap::apply(plan, s, &dirs, record_path, now) {
            Ok(done) => {
                wrapped_any = true;
                eprintln!("  wrapped: {}", done.config.display());
                eprintln!("  backup:  {} (0600)", done.backup.display());
                eprintln!("  policy:  {}", plan.policy_path.display());
                if done.mode.0 != done.mode.1 {
                    eprintln!(
                        "  mode:    {:o} → {:o}: it held secrets and others could read it",
                        done.mode.0, done.mode.1
                    );
                }
                if let (Some(o), false) = (opened, done.secrets.is_empty()) {
                    eprintln!(
                        "  secrets: {} stored in the {} store ({})",
                        done.secrets.len(),
                        o.selection.backend,
                        o.store.location()
                    );
                    if let Some(w) = o.store.write_warning() {
                        eprintln!("  warning: {w}");
                    }
                    backups_with_secrets.push(done.backup.clone());
                }
                eprintln!();
            }
            Err(e) => {
                eprintln!("palisade: error: {e}\n");
                failed = true;
            }
        }
    }
    if t.dry_run {
        eprintln!("dry run: nothing was changed and no secret was stored");
    } else if wrapped_any {
        eprintln!(
            "Restart the clients (or reload their MCP servers) so they start the servers through palisade.\nServers run sandboxed: a server that needs network or more folders says so above; grant them in its policy (`palisade policy check FILE` after editing).\nUndo with `palisade unwrap` (it restores each file byte for byte)."
        );
        if !backups_with_secrets.is_empty() {
            eprintln!(
                "The backups still hold the plaintext secrets (0600): {}. Delete them once you are sure you will not unwrap, and rotate credentials that were exposed.",
                backups_with_secrets
                    .iter()
                    .map(|b| b.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if std::env::var_os("PALISADE_SECRET_BACKEND").is_some() {
                eprintln!(
                    "PALISADE_SECRET_BACKEND is set: the clients must start palisade with the same value, or it will look for the secrets in another store."
                );
            }
        }
    }
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// Stands in when no plan moves a secret (so no store is opened); never written to.
struct NoStore;

impl SecretStore for NoStore {
    fn backend(&self) -> palisade_secrets::Backend {
        palisade_secrets::Backend::File
    }
    fn location(&self) -> String {
        "none".into()
    }
    fn set(
        &self,
        name: &palisade_secrets::SecretName,
        _: &palisade_secrets::Secret,
    ) -> palisade_secrets::Result<()> {
        Err(palisade_secrets::Error::Unavailable {
            backend: palisade_secrets::Backend::File,
            reason: format!("no secret store is open to store `{name}`"),
            hint: None,
        })
    }
    fn get(
        &self,
        name: &palisade_secrets::SecretName,
    ) -> palisade_secrets::Result<palisade_secrets::Secret> {
        Err(palisade_secrets::Error::NotFound {
            name: name.to_string(),
            backend: palisade_secrets::Backend::File,
            location: "none".into(),
            hint: String::new(),
        })
    }
    fn remove(&self, _: &palisade_secrets::SecretName) -> palisade_secrets::Result<()> {
        Ok(())
    }
    fn list(&self) -> palisade_secrets::Result<Vec<palisade_secrets::SecretName>> {
        Ok(Vec::new())
    }
}

/// Runs `palisade unwrap`.
pub(crate) fn unwrap(args: UnwrapArgs) -> Result<ExitStatus> {
    let t = &args.target;
    let home = home(t)?;
    let dirs = dirs()?;
    let client = client_filter(&t.client)?;
    let wanted = t.config.as_ref().map(|p| {
        p.canonicalize()
            .unwrap_or_else(|_| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
    });
    let under = t
        .home
        .as_ref()
        .map(|_| home.canonicalize().unwrap_or_else(|_| home.clone()));
    let records: Vec<_> = dirs
        .all()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .filter(|(_, r)| wanted.as_ref().is_none_or(|w| &r.config == w))
        .filter(|(_, r)| client.is_none_or(|c| r.client == c.id()))
        .filter(|(_, r)| under.as_ref().is_none_or(|h| r.config.starts_with(h)))
        .collect();
    if records.is_empty() {
        if let Some(p) = &t.config {
            return Err(usage(format!(
                "{}: palisade wrap has no record of wrapping it (records: {})\nhint: backups made by wrap sit next to the file as `<name>.palisade-backup-<time>`; copy one back by hand if you need it",
                p.display(),
                dirs.records.display()
            )));
        }
        eprintln!("palisade: nothing to unwrap: no config wrapped by palisade wrap was found");
        return Ok(ExitStatus::Success);
    }
    let mut failed = false;
    let mut plans: Vec<UnwrapPlan> = Vec::new();
    for (path, record) in records {
        match palisade_wrap::plan_unwrap(&path, record, args.force) {
            Ok(p) => plans.push(p),
            Err(e) => {
                eprintln!("palisade: error: {e}");
                failed = true;
            }
        }
    }
    refuse_without_terminal(t, "restore", plans.len())?;
    let ask = !t.yes && !t.dry_run;
    let mut store: Option<Opened> = None;
    for up in &plans {
        let undone = up.undone();
        let servers: usize = undone.iter().map(|g| g.servers.len()).sum();
        let secrets: Vec<&String> = undone.iter().flat_map(|g| &g.secrets).collect();
        eprintln!(
            "{} ({}): restore the file as it was before the wrap of {} ({servers} server(s) wrapped, {} secret(s) moved)",
            up.record.client,
            short(&up.record.config, &home),
            undone[0].wrapped_at,
            secrets.len()
        );
        if up.edited_since {
            eprintln!(
                "  note: it changed since palisade wrap wrote it; --force drops those changes"
            );
        }
        if let Some(s) = &up.stopped {
            eprintln!("  note: {s}");
        }
        if t.dry_run || ask {
            let mut out = std::io::stdout().lock();
            out.write_all(up.diff().as_bytes())?;
            out.flush()?;
        }
        if t.dry_run {
            eprintln!();
            continue;
        }
        if ask && !confirm(&format!("Restore {}?", short(&up.record.config, &home)))? {
            eprintln!("  left unchanged\n");
            continue;
        }
        if args.remove_secrets && !secrets.is_empty() && store.is_none() {
            store = Some(open_store()?);
        }
        let s = store.as_ref().map(|o| o.store.as_ref());
        match palisade_wrap::apply_unwrap(up, &dirs, if args.remove_secrets { s } else { None }) {
            Ok(done) => {
                eprintln!("  restored: {}", up.record.config.display());
                match done.policy {
                    PolicyOutcome::Removed => {
                        eprintln!("  policy:   {} removed", up.record.policy.display())
                    }
                    PolicyOutcome::Restored => {
                        eprintln!(
                            "  policy:   {} back to its earlier text",
                            up.record.policy.display()
                        )
                    }
                    PolicyOutcome::KeptEdited => eprintln!(
                        "  policy:   {} left in place: you edited it since (remove it when you no longer need it)",
                        up.record.policy.display()
                    ),
                    PolicyOutcome::Untouched => {}
                }
                if !done.removed_secrets.is_empty() {
                    eprintln!("  secrets:  removed {}", done.removed_secrets.join(", "));
                }
                if !done.kept_secrets.is_empty() {
                    eprintln!(
                        "  secrets:  still in the store: {} (`palisade secret rm NAME` removes one; the restored config holds the values again)",
                        done.kept_secrets.join(", ")
                    );
                }
                for w in &done.warnings {
                    eprintln!("  warning: {w}");
                }
                eprintln!();
            }
            Err(e) => {
                eprintln!("palisade: error: {e}\n");
                failed = true;
            }
        }
    }
    if t.dry_run {
        eprintln!("dry run: nothing was changed");
    }
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_never_passed_list_is_the_sandboxs() {
        assert_eq!(palisade_wrap::NEVER_PASSED, palisade_sandbox::ENV_NEVER);
    }
}
