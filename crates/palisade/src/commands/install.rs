//! `palisade install SPEC`, `palisade update NAME`, `palisade rollback NAME`, and the store rewrite
//! `palisade run` applies to `npx -y PKG` / `uvx NAME` / `docker run` commands ([`launch_argv`]).
//!
//! * install: audit first; refuse at or above `--fail-on` (default high) unless `--force`; then put exactly
//!   the vetted artifact and its resolved tree into the content-addressed store
//!   (`$XDG_DATA_HOME/palisade/store/<sha256>/`) and record it in `$XDG_CONFIG_HOME/palisade/palisade.lock`.
//! * update: stage the newer version (audit it, show what changed: version, advisories fixed and new,
//!   dependencies, and where the tool pins are), ask (or `--yes`; without a terminal, refuse rather than
//!   wait), install it, keep the previous one for rollback.
//! * rollback: return to the previous installed version (its store entry is re-verified first).

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
use crate::ExitStatus;
use crate::settings::ConfigError;

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
    /// Update even when the new version's audit has findings at or above --fail-on.
    #[arg(long)]
    force: bool,
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
        println!(
            "{} {} is installed and is the {}; nothing to update",
            current.name,
            current.version,
            if args.to.is_some() {
                "version asked for"
            } else {
                "latest"
            }
        );
        return Ok(ExitStatus::Success);
    }
    // What changes.
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "update {}: {} → {new_version}",
        current.name, current.version
    )?;
    writeln!(
        out,
        "  verdict: {} (was {} at install): {}",
        report.verdict.level.as_str(),
        current.verdict,
        report.verdict.why
    )?;
    let new_ids: std::collections::BTreeSet<String> = report
        .advisories
        .matches
        .iter()
        .map(|m| format!("{} ({} {})", m.ids(), m.query.name, m.query.version))
        .collect();
    match advisories_of(&setup, &current) {
        Some(old_ids) => {
            let fixed: Vec<&String> = old_ids.difference(&new_ids).collect();
            let added: Vec<&String> = new_ids.difference(&old_ids).collect();
            let kept = old_ids.intersection(&new_ids).count();
            writeln!(
                out,
                "  advisories: {} fixed, {} new, {kept} still open",
                fixed.len(),
                added.len()
            )?;
            for f in fixed {
                writeln!(out, "    fixed  {f}")?;
            }
            for a in added {
                writeln!(out, "    NEW    {a}")?;
            }
        }
        None => writeln!(
            out,
            "  advisories: not compared ({})",
            report
                .advisories
                .not_checked
                .as_deref()
                .unwrap_or("no advisory source")
        )?,
    }
    if let Some(res) = &report.resolution {
        let old: std::collections::BTreeMap<&str, &str> = current
            .dependencies
            .iter()
            .map(|d| (d.name.as_str(), d.version.as_str()))
            .collect();
        let new: std::collections::BTreeMap<&str, &str> = res
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
        writeln!(
            out,
            "  dependencies: {} → {} ({added} added, {removed} removed, {changed} changed version)",
            old.len(),
            new.len()
        )?;
    }
    writeln!(
        out,
        "  tools: pinned in pins.json under `{}`; tools that were added or changed are held for approval on the next run (review with `palisade inspect -- {}`, approve with `palisade pin accept`)",
        current.server,
        launcher_argv(eco, &current.name, &new_version).join(" ")
    )?;
    out.flush()?;
    drop(out);
    if let Some(refused) = gate(&report, args.fail_on, args.force, "updated") {
        return Ok(refused);
    }
    if !args.yes
        && !confirm(&format!(
            "update {} {} → {new_version}?",
            current.name, current.version
        ))?
    {
        eprintln!("palisade: not updated");
        return Ok(ExitStatus::Failure);
    }
    let inst = install_report(&setup, &report)?;
    let entry = record(&report, &inst);
    lock.update(|lf| {
        put(lf, entry);
        Ok(())
    })
    .map_err(supply_err)?;
    println!(
        "updated {} {} → {new_version}; `palisade rollback {}` returns to {}",
        current.name, current.version, current.name, current.version
    );
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
