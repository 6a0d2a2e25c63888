//! `palisade install SPEC`, `palisade update NAME`, `palisade rollback NAME`, and the store rewrite
//! `palisade run` applies to `npx -y PKG` / `uvx NAME` / `docker run` commands ([`launch_argv`]).
//!
//! * install: audit first; refuse at or above `--fail-on` (default high) unless `--force`; then put exactly
//!   the vetted artifact and its resolved tree into the content-addressed store
//!   (`$XDG_DATA_HOME/palisade/store/<sha256>/`) and record it in `$XDG_CONFIG_HOME/palisade/palisade.lock`.
//! * update: stage the newer version (audit it; install it into the store without making it current;
//!   start it offline and compare its tools, prompts and resources with the pins and the current
//!   version: [`staged`]), show what changed (version, advisories fixed and new, dependencies, items
//!   added/removed/changed with description diffs and the findings on new text), gate on `--fail-on`, ask
//!   (or `--yes`; without a terminal, refuse rather than wait), make it current, keep the previous one
//!   for rollback, and leave changed tools unapproved unless `--accept-tools`.
//! * rollback: return to the previous installed version (its store entry is re-verified first).

mod staged;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};

use anyhow::Result;
use clap::Args;
use palisade_scan::Severity;
use palisade_scan::report::exceeds;
use palisade_supply::audit::AuditReport;
use palisade_supply::fetch::Day;
use palisade_supply::launch::{self, ContainerGrants};
use palisade_supply::lock::{Lock, LockFile, Locked};
use palisade_supply::osv::{self, Query};
use palisade_supply::resolve::Tools;
use palisade_supply::store::{Installed, Store};
use palisade_supply::{Ecosystem, Spec, render};

use super::audit::{Setup, SourceArgs, TtyProgress, color, parse_severity, parse_spec, supply_err};
use super::inspect::{ListOptions, Listing, list_server};
use crate::ExitStatus;
use crate::cli::Format;
use crate::pins::PinStore;
use crate::settings::ConfigError;
use serde_json::{Map, Value, json};

/// How many earlier installs the lock keeps per package.
const HISTORY: usize = 5;

/// `palisade install` flags.
#[derive(Debug, Args)]
pub(crate) struct InstallArgs {
    /// npm:NAME@VERSION, pypi:NAME==VERSION, or a .tgz / .whl file.
    #[arg(value_name = "SPEC")]
    spec: String,
    /// Refuse to install when a finding is at or above this severity.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity, default_value = "high")]
    fail_on: Severity,
    /// Install even when the audit has findings at or above --fail-on.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    src: SourceArgs,
}

/// `palisade update` flags.
#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    /// The installed package's name (as in palisade.lock).
    #[arg(value_name = "NAME")]
    name: String,
    /// Update to this version instead of the registry's latest.
    #[arg(long, value_name = "VERSION")]
    to: Option<String>,
    /// Do not ask; update.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Refuse the update when a finding is at or above this severity.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity, default_value = "high")]
    fail_on: Severity,
    /// Update even when the new version's audit or its tool descriptions have findings at or above
    /// --fail-on.
    #[arg(long)]
    force: bool,
    /// Approve the new version's added and changed tools in pins.json (after reviewing them here);
    /// without it they stay unapproved and the pinning guard holds them.
    #[arg(long)]
    accept_tools: bool,
    /// The policy the server runs with (its pinning mode and pins file, its sandbox when listed).
    #[arg(long, value_name = "FILE")]
    policy: Option<std::path::PathBuf>,
    /// Pins file (default: `$XDG_STATE_HOME/palisade/pins.json`).
    #[arg(long, value_name = "FILE")]
    pins: Option<std::path::PathBuf>,
    /// Seconds to wait for each answer while listing a version's tools.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    list_timeout: u64,
    /// Output format (the JSON document carries the same comparison).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    src: SourceArgs,
}

/// `palisade rollback` flags.
#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// The installed package's name.
    #[arg(value_name = "NAME")]
    name: String,
}

fn lock() -> Result<Lock> {
    Ok(Lock::new(crate::dirs::config()?.join("palisade.lock")))
}

fn store() -> Result<Store> {
    Ok(Store::new(crate::dirs::data()?.join("store")))
}

/// The command palisade would be given for this package, and so the server name its pins are under.
fn launcher_argv(eco: Ecosystem, name: &str, version: &str) -> Vec<String> {
    match eco {
        Ecosystem::Npm => vec!["npx".into(), "-y".into(), format!("{name}@{version}")],
        Ecosystem::PyPI => vec!["uvx".into(), format!("{name}=={version}")],
    }
}

fn record(report: &AuditReport, inst: &Installed) -> Locked {
    let f = &report.fetched;
    let eco = f.ecosystem.unwrap_or_default();
    let name = inst.manifest.name.clone();
    let version = inst.manifest.version.clone();
    Locked {
        ecosystem: eco.osv_name().into(),
        server: crate::settings::derive_server_name(&launcher_argv(eco, &name, &version)),
        spec: match eco {
            Ecosystem::Npm => format!("npm:{name}@{version}"),
            Ecosystem::PyPI => format!("pypi:{name}=={version}"),
        },
        name,
        version,
        file: f.filename.clone(),
        sha256: inst.key.clone(),
        integrity: f.verified_against.clone().or_else(|| f.sri.clone()),
        source: f.source.clone(),
        tree: inst.manifest.tree.clone(),
        installed: Day::today().to_string(),
        verdict: report.verdict.level.as_str().into(),
        findings: report.findings.len(),
        entry: inst.manifest.entry.clone(),
        dependencies: inst.dependencies.clone(),
        history: Vec::new(),
    }
}

/// Puts `new` in the lock, keeping the entry it replaces (if another artifact) as history.
fn put(lf: &mut LockFile, mut new: Locked) {
    let eco = new.ecosystem();
    if let Some(i) = lf.packages.iter().position(|p| {
        p.ecosystem() == eco && eco.is_some_and(|e| e.normalize(&p.name) == e.normalize(&new.name))
    }) {
        let mut old = lf.packages.remove(i);
        let mut history = std::mem::take(&mut old.history);
        if old.sha256 != new.sha256 {
            history.insert(0, old);
        }
        history.retain(|h| h.sha256 != new.sha256);
        history.truncate(HISTORY);
        new.history = history;
    }
    lf.packages.push(new);
}

fn gate(report: &AuditReport, fail_on: Severity, force: bool, what: &str) -> Option<ExitStatus> {
    if exceeds(&report.findings, fail_on) {
        if force {
            eprintln!("palisade: warning: {what} despite findings at or above {fail_on} (--force)");
        } else {
            eprintln!(
                "palisade: not {what}: the audit has findings at or above {fail_on} ({}); fix the cause, or pass --force to {what} anyway",
                report.verdict.why
            );
            return Some(ExitStatus::Failure);
        }
    }
    None
}

fn install_report(setup: &Setup, report: &AuditReport) -> Result<Installed> {
    let progress = TtyProgress::new();
    let tools = Tools::new(&setup.registries);
    store()?
        .install(report, &tools, &progress)
        .map_err(supply_err)
}

/// Runs `palisade install`.
pub(crate) fn install(args: InstallArgs) -> Result<ExitStatus> {
    let spec = parse_spec(&args.spec)?;
    if args.src.offline {
        return Err(ConfigError(
            "install resolves and downloads the package's dependencies, which --offline forbids"
                .into(),
        )
        .into());
    }
    let setup = Setup::new(&args.src)?;
    let progress = TtyProgress::new();
    let report = setup.audit(&spec, &progress)?;
    let mut out = std::io::stdout().lock();
    out.write_all(render::text(&report, render::Style { color: color() }).as_bytes())?;
    out.flush()?;
    if let Some(refused) = gate(&report, args.fail_on, args.force, "installed") {
        return Ok(refused);
    }
    let inst = install_report(&setup, &report)?;
    let entry = record(&report, &inst);
    let lock = lock()?;
    let (name, version, server) = (
        entry.name.clone(),
        entry.version.clone(),
        entry.server.clone(),
    );
    let eco = entry.ecosystem().unwrap_or_default();
    lock.update(|lf| {
        put(lf, entry);
        Ok(())
    })
    .map_err(supply_err)?;
    writeln!(
        out,
        "\ninstalled {name} {version} {} {}\n  tree {}\n  lock {}\n  run it with: palisade run -- {}\n  (tool pins: pins.json, server `{server}`)",
        if inst.reused {
            "(already in the store)"
        } else {
            "into"
        },
        inst.dir.display(),
        inst.manifest.tree,
        lock.path().display(),
        launcher_argv(eco, &name, &version).join(" "),
    )?;
    Ok(ExitStatus::Success)
}

fn find_one<'a>(lf: &'a LockFile, name: &str) -> Result<&'a Locked> {
    match lf.named(name).as_slice() {
        [one] => Ok(one),
        [] => Err(ConfigError(format!(
            "{name} is not installed (palisade.lock has {}); install it first with `palisade install npm:NAME@VER` or `pypi:NAME==VER`",
            if lf.packages.is_empty() {
                "no packages".to_owned()
            } else {
                lf.packages.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
            }
        ))
        .into()),
        _ => Err(ConfigError(format!(
            "{name} is installed from both npm and PyPI; this palisade cannot tell which to update"
        ))
        .into()),
    }
}

/// Advisory ids affecting the locked package and its dependencies, from the same sources.
fn advisories_of(setup: &Setup, entry: &Locked) -> Option<std::collections::BTreeSet<String>> {
    let eco = entry.ecosystem()?;
    let progress = palisade_supply::Quiet;
    let o = setup.options(&progress);
    if o.sources.is_empty() {
        return None;
    }
    let mut qs = vec![Query {
        ecosystem: eco,
        name: entry.name.clone(),
        version: entry.version.clone(),
    }];
    qs.extend(entry.dependencies.iter().map(|d| Query {
        ecosystem: eco,
        name: d.name.clone(),
        version: d.version.clone(),
    }));
    let mut ids = std::collections::BTreeSet::new();
    for s in &o.sources {
        let per = osv::Source::query(s.as_ref(), &qs).ok()?;
        ids.extend(
            per.into_iter()
                .flatten()
                .map(|m| format!("{} ({} {})", m.ids(), m.query.name, m.query.version)),
        );
    }
    Some(ids)
}

fn confirm(question: &str) -> Result<bool> {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(ConfigError(format!(
            "{question}: there is no terminal to ask on; pass --yes to proceed"
        ))
        .into());
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES"))
}

/// The server settings `update` starts a store entry with: the package's server name (its pins), the
/// policy the user runs it with (`--policy`), the entry's own command line. Built by parsing flags, as
/// `palisade inspect --server NAME -- CMD` would be.
fn entry_settings(
    args: &UpdateArgs,
    server: &str,
    entry: &Locked,
) -> Result<crate::settings::ServerSettings> {
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        server: crate::cli::ServerArgs,
    }
    let rw = launch::entry_argv(entry, &store()?, &[]).map_err(supply_err)?;
    let mut flags: Vec<String> = vec![
        "update".into(),
        "--server".into(),
        server.into(),
        "--no-auto-roots".into(),
    ];
    if let Some(p) = &args.policy {
        flags.extend(["--policy".into(), p.display().to_string()]);
    }
    if let Some(p) = &args.pins {
        flags.extend(["--pins".into(), p.display().to_string()]);
    }
    flags.push("--".into());
    flags.extend(rw.argv);
    let parsed = <Flags as clap::Parser>::try_parse_from(flags).map_err(|e| {
        ConfigError(format!(
            "cannot start {} {}: {e}",
            entry.name, entry.version
        ))
    })?;
    let mut s = crate::settings::server_settings(&parsed.server, None)?;
    s.env.extend(rw.env);
    Ok(s)
}

/// Lists what a store entry offers, with no network; errors as one line.
fn list_entry(
    args: &UpdateArgs,
    server: &str,
    entry: &Locked,
) -> std::result::Result<Listing, String> {
    let opts = ListOptions {
        banner: false,
        forward_stderr: false,
        timeout: std::time::Duration::from_secs(args.list_timeout),
    };
    entry_settings(args, server, entry)
        .and_then(|s| list_server(&s, opts))
        .map_err(|e| format!("{e:#}"))
}

/// What `update` did with the tool pins, in one sentence.
fn apply_pins(
    args: &UpdateArgs,
    server: &str,
    compared: &staged::Compared,
) -> Result<Option<String>> {
    let Some(tools) = compared.tools() else {
        return Ok(Some(if args.accept_tools {
            "--accept-tools re-pinned nothing: the new version's tools could not be listed; the pinning guard holds any tool whose definition differs from its pin".into()
        } else {
            "tool pins unchanged (the new version's tools could not be listed); the pinning guard holds any tool whose definition differs from its pin".into()
        }));
    };
    let held: Vec<&staged::Row> = tools
        .rows
        .iter()
        .filter(|r| matches!(r.change, staged::Change::Added | staged::Change::Changed))
        .collect();
    if held.is_empty() {
        return Ok(None);
    }
    let s = entry_settings_pins(args)?;
    let store = PinStore::new(s.0);
    let mode = s.1;
    let names = |c: staged::Change| -> Vec<String> {
        held.iter()
            .filter(|r| r.change == c)
            .map(|r| format!("`{}`", r.name))
            .collect()
    };
    if args.accept_tools {
        store.update(server, |p| {
            for r in &held {
                if let Some(pin) = &r.pin {
                    p.approved.insert(r.name.clone(), pin.clone());
                    p.observed.remove(&r.name);
                }
            }
        })?;
        return Ok(Some(format!(
            "--accept-tools: approved the new definitions of {} in pins.json (server `{server}`)",
            held.iter()
                .map(|r| format!("`{}`", r.name))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    // Held: what was shown is recorded as awaiting approval (so `pin accept` approves exactly it), and a
    // changed tool of a server with no pins yet is pinned to the current version's definition, so
    // trust-on-first-use cannot approve the new one silently. Under `tofu`, an added tool is pinned to the
    // definition shown here (the user saw it and said yes): trust on first use would take whatever the
    // server presents at its first run instead, and a different definition then is held as changed.
    use palisade_policy::PinMode;
    let tofu_added: BTreeMap<String, String> = if mode == PinMode::Tofu {
        tools
            .rows
            .iter()
            .filter(|r| r.change == staged::Change::Added)
            .filter_map(|r| Some((r.name.clone(), r.pin.clone()?)))
            .collect()
    } else {
        BTreeMap::new()
    };
    let current_pins: BTreeMap<String, String> = tools
        .rows
        .iter()
        .filter(|r| r.change == staged::Change::Changed && r.pinned.is_none())
        .filter_map(|r| Some((r.name.clone(), r.old_pin.clone()?)))
        .collect();
    store.update(server, |p| {
        for r in &held {
            if let Some(pin) = &r.pin {
                p.observed.insert(r.name.clone(), pin.clone());
            }
        }
        for (n, h) in &current_pins {
            p.approved.entry(n.clone()).or_insert_with(|| h.clone());
        }
        for (n, h) in &tofu_added {
            p.approved.entry(n.clone()).or_insert_with(|| h.clone());
            p.observed.remove(n);
        }
    })?;
    let mut parts = Vec::new();
    let changed = names(staged::Change::Changed);
    if !changed.is_empty() {
        parts.push(format!(
            "changed {} stay unapproved: `palisade run` hides them until `palisade pin accept --server {server} TOOL` (or `update --accept-tools`)",
            changed.join(", ")
        ));
    }
    let added = names(staged::Change::Added);
    if !added.is_empty() {
        parts.push(format!(
            "added {} {}",
            added.join(", "),
            match mode {
                PinMode::Require => "are held for approval (pinning mode `require`)",
                PinMode::Tofu =>
                    "are pinned to the definitions shown above (pinning mode `tofu`): a different one at run time is held",
                PinMode::Off => "are usable at once: pinning is off",
            }
        ));
    }
    Ok(Some(format!("tool pins: {}", parts.join("; "))))
}

/// The pins file and pinning mode the user's policy gives (without starting anything).
fn entry_settings_pins(
    args: &UpdateArgs,
) -> Result<(std::path::PathBuf, palisade_policy::PinMode)> {
    let mut flags = vec!["update".to_owned(), "--no-auto-roots".into()];
    if let Some(p) = &args.policy {
        flags.extend(["--policy".into(), p.display().to_string()]);
    }
    if let Some(p) = &args.pins {
        flags.extend(["--pins".into(), p.display().to_string()]);
    }
    flags.extend(["--".into(), "true".into()]);
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        server: crate::cli::ServerArgs,
    }
    let parsed =
        <Flags as clap::Parser>::try_parse_from(flags).map_err(|e| ConfigError(e.to_string()))?;
    let s = crate::settings::server_settings(&parsed.server, None)?;
    Ok((s.pins, s.policy.pinning.mode))
}

/// Runs `palisade update`.
pub(crate) fn update(args: UpdateArgs) -> Result<ExitStatus> {
    let lock = lock()?;
    let lf = lock.load().map_err(supply_err)?;
    let current = find_one(&lf, &args.name)?.clone();
    let eco = current
        .ecosystem()
        .ok_or_else(|| ConfigError("palisade.lock names an unknown ecosystem".into()))?;
    if args.src.offline {
        return Err(ConfigError(
            "update downloads the new version, which --offline forbids".into(),
        )
        .into());
    }
    let json_out = args.format == Format::Json;
    let spec = Spec::Registry {
        ecosystem: eco,
        name: current.name.clone(),
        version: args.to.clone(),
    };
    let setup = Setup::new(&args.src)?;
    let progress = TtyProgress::new();
    let report = setup.audit(&spec, &progress)?;
    let new_version = report.fetched.version.clone().unwrap_or_default();
    if report.fetched.sha256 == current.sha256 {
        let what = if args.to.is_some() {
            "version asked for"
        } else {
            "latest"
        };
        if json_out {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "package": current.name, "from": current.version, "to": current.version,
                    "changed": false, "updated": false,
                    "message": format!("{} {} is installed and is the {what}", current.name, current.version),
                }))?
            );
        } else {
            println!(
                "{} {} is installed and is the {what}; nothing to update",
                current.name, current.version,
            );
        }
        return Ok(ExitStatus::Success);
    }
    // What changes: version, verdict, advisories, dependencies.
    let mut text = String::new();
    let mut doc = Map::new();
    doc.insert("package".into(), json!(current.name));
    doc.insert("from".into(), json!(current.version));
    doc.insert("to".into(), json!(new_version));
    doc.insert("changed".into(), json!(true));
    doc.insert("server".into(), json!(current.server));
    text.push_str(&format!(
        "update {}: {} → {new_version}\n",
        current.name, current.version
    ));
    text.push_str(&format!(
        "  verdict: {} (was {} at install): {}\n",
        report.verdict.level.as_str(),
        current.verdict,
        report.verdict.why
    ));
    doc.insert(
        "verdict".into(),
        json!({"level": report.verdict.level.as_str(), "why": report.verdict.why, "was": current.verdict}),
    );
    let new_ids: BTreeSet<String> = report
        .advisories
        .matches
        .iter()
        .map(|m| format!("{} ({} {})", m.ids(), m.query.name, m.query.version))
        .collect();
    match advisories_of(&setup, &current) {
        Some(old_ids) => {
            let fixed: Vec<&String> = old_ids.difference(&new_ids).collect();
            let added: Vec<&String> = new_ids.difference(&old_ids).collect();
            let kept: Vec<&String> = old_ids.intersection(&new_ids).collect();
            text.push_str(&format!(
                "  advisories: {} fixed, {} new, {} still open\n",
                fixed.len(),
                added.len(),
                kept.len()
            ));
            for f in &fixed {
                text.push_str(&format!("    fixed  {f}\n"));
            }
            for a in &added {
                text.push_str(&format!("    NEW    {a}\n"));
            }
            doc.insert(
                "advisories".into(),
                json!({"compared": true, "fixed": fixed, "new": added, "still_open": kept}),
            );
        }
        None => {
            let why = report
                .advisories
                .not_checked
                .as_deref()
                .unwrap_or("no advisory source");
            text.push_str(&format!("  advisories: not compared ({why})\n"));
            doc.insert(
                "advisories".into(),
                json!({"compared": false, "reason": why, "new": new_ids}),
            );
        }
    }
    if let Some(res) = &report.resolution {
        let old: BTreeMap<&str, &str> = current
            .dependencies
            .iter()
            .map(|d| (d.name.as_str(), d.version.as_str()))
            .collect();
        let new: BTreeMap<&str, &str> = res
            .deps
            .iter()
            .map(|d| (d.name.as_str(), d.version.as_str()))
            .collect();
        let added = new.keys().filter(|k| !old.contains_key(*k)).count();
        let removed = old.keys().filter(|k| !new.contains_key(*k)).count();
        let changed = new
            .iter()
            .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
            .count();
        text.push_str(&format!(
            "  dependencies: {} → {} ({added} added, {removed} removed, {changed} changed version)\n",
            old.len(),
            new.len()
        ));
        doc.insert(
            "dependencies".into(),
            json!({"from": old.len(), "to": new.len(), "added": added, "removed": removed, "changed": changed}),
        );
    }
    let emit = |text: &str, doc: &Map<String, Value>| -> Result<()> {
        let mut out = std::io::stdout().lock();
        if json_out {
            writeln!(out, "{}", serde_json::to_string_pretty(doc)?)?;
        } else {
            out.write_all(text.as_bytes())?;
        }
        out.flush()?;
        Ok(())
    };
    // The audit decides first: a refused version is not installed, so not started either.
    if exceeds(&report.findings, args.fail_on) && !args.force {
        let why = format!(
            "not started: the audit refuses this version at --fail-on {}",
            args.fail_on
        );
        let compared = staged::Compared::NotCompared(why);
        text.push_str(&compared.text(&current.server, &new_version));
        doc.insert("tools".into(), compared.json());
        doc.insert("updated".into(), json!(false));
        emit(&text, &doc)?;
        let refused = gate(&report, args.fail_on, args.force, "updated");
        return Ok(refused.unwrap_or(ExitStatus::Failure));
    }
    // Stage: into the store (not the lock), then list both versions offline.
    let inst = install_report(&setup, &report)?;
    let staged_entry = record(&report, &inst);
    let compared = match list_entry(&args, &current.server, &staged_entry) {
        Err(e) => staged::Compared::NotCompared(format!(
            "{} {new_version} could not be started and listed with no network: {e}",
            current.name
        )),
        Ok(new_listing) => {
            let cur = list_entry(&args, &current.server, &current);
            let pins = match entry_settings_pins(&args) {
                Ok((path, _)) => PinStore::new(path).load(&current.server)?.approved,
                Err(e) => return Err(e),
            };
            staged::compare_listings(&new_listing, cur.as_ref().map_err(String::as_str), &pins)
        }
    };
    text.push_str(&compared.text(&current.server, &new_version));
    doc.insert("tools".into(), compared.json());
    let desc_findings = compared.findings(&current.server);
    doc.insert("description_findings".into(), json!(desc_findings.len()));
    let desc_refused = exceeds(&desc_findings, args.fail_on);
    if desc_refused && !args.force {
        doc.insert("updated".into(), json!(false));
        emit(&text, &doc)?;
        eprintln!(
            "palisade: not updated: the new version's tool descriptions have findings at or above {} (new or changed text; see above); review them, or pass --force to update anyway",
            args.fail_on
        );
        return Ok(ExitStatus::Failure);
    }
    if let Some(refused) = gate(&report, args.fail_on, args.force, "updated") {
        return Ok(refused);
    }
    if desc_refused {
        eprintln!(
            "palisade: warning: updating despite tool-description findings at or above {} (--force)",
            args.fail_on
        );
    }
    if !json_out {
        emit(&text, &doc)?;
    }
    let question = format!(
        "update {} {} → {new_version}?",
        current.name, current.version
    );
    let yes = if args.yes {
        true
    } else {
        match confirm(&question) {
            Ok(y) => y,
            Err(e) => {
                if json_out {
                    doc.insert("updated".into(), json!(false));
                    emit(&text, &doc)?;
                }
                return Err(e);
            }
        }
    };
    if !yes {
        if json_out {
            doc.insert("updated".into(), json!(false));
            emit(&text, &doc)?;
        }
        eprintln!("palisade: not updated");
        return Ok(ExitStatus::Failure);
    }
    lock.update(|lf| {
        put(lf, staged_entry);
        Ok(())
    })
    .map_err(supply_err)?;
    let pins_note = apply_pins(&args, &current.server, &compared)?;
    doc.insert("updated".into(), json!(true));
    doc.insert("pins".into(), json!(pins_note));
    doc.insert("accept_tools".into(), json!(args.accept_tools));
    if json_out {
        emit(&text, &doc)?;
    } else {
        println!(
            "updated {} {} → {new_version}; `palisade rollback {}` returns to {}",
            current.name, current.version, current.name, current.version
        );
        if let Some(n) = pins_note {
            println!("{n}");
        }
    }
    Ok(ExitStatus::Success)
}

/// Runs `palisade rollback`.
pub(crate) fn rollback(args: RollbackArgs) -> Result<ExitStatus> {
    let lock = lock()?;
    let store = store()?;
    let (from, to) = lock
        .update(|lf| {
            let name = {
                let e = find_one(lf, &args.name).map_err(|e| palisade_supply::Error::Usage(format!("{e:#}")))?;
                (e.ecosystem(), e.name.clone())
            };
            let cur = lf.find_mut(name.0, &name.1).expect("found above");
            if cur.history.is_empty() {
                return Err(palisade_supply::Error::Usage(format!(
                    "{} has no earlier installed version to roll back to",
                    cur.name
                )));
            }
            let prev = cur.history[0].clone();
            store.verify(&prev.sha256, &prev.tree).map_err(|e| {
                palisade_supply::Error::Store(format!(
                    "cannot roll back to {} {}: its store entry does not verify ({e}); reinstall it with `palisade install {}`",
                    prev.name, prev.version, prev.spec
                ))
            })?;
            let mut rest: Vec<Locked> = cur.history.drain(..).skip(1).collect();
            let mut old = std::mem::replace(cur, prev);
            old.history.clear();
            rest.insert(0, old.clone());
            rest.truncate(HISTORY);
            cur.history = rest;
            Ok((old.version, cur.version.clone()))
        })
        .map_err(supply_err)?;
    println!(
        "rolled back {}: {from} → {to}; `palisade rollback {}` again returns to {from}",
        args.name, args.name
    );
    Ok(ExitStatus::Success)
}

/// The one hook `palisade run` / `inspect` call on a server's command line before starting it:
/// `npx -y PKG[@VER]` / `uvx NAME[==VER]` of a package in palisade.lock runs from the store (its hash
/// re-checked; a mismatch refuses to start), and `docker run` / `podman run` gets the isolation flags
/// unless the policy grants network (`network_granted`). Prints what it did on stderr.
pub(crate) fn launch_argv(
    argv: Vec<String>,
    env: &mut Vec<(String, String)>,
    network_granted: bool,
) -> Result<Vec<String>> {
    let mut argv = argv;
    if let (Ok(lock), Ok(store)) = (lock(), store())
        && lock.path().is_file()
        && let Some(rw) = launch::store_rewrite(&argv, &lock, &store).map_err(|e| match e {
            palisade_supply::Error::Usage(m) => anyhow::Error::new(ConfigError(m)),
            other => anyhow::Error::new(other),
        })?
    {
        eprintln!("palisade: {}", rw.note);
        env.extend(rw.env);
        argv = rw.argv;
    }
    if let Some(h) = launch::harden_container(
        &argv,
        ContainerGrants {
            network: network_granted,
        },
    )
    .map_err(supply_err)?
    {
        for n in &h.notes {
            eprintln!("palisade: {n}");
        }
        argv = h.argv;
    }
    Ok(argv)
}
