//! `palisade audit SPEC`: should this MCP server package be trusted, and why, in one screen.
//!
//! SPEC is `npm:NAME@VER`, `pypi:NAME==VER` (the version may be left out: the registry's latest) or a
//! local directory / `.tgz` / `.tar.gz` / `.whl`. The package is downloaded through the registry's JSON
//! API, checked against the published digest (a mismatch stops everything, exit 1), unpacked safely,
//! its dependency tree resolved (npm / pip, no install scripts), and checked against advisories and
//! provenance signals, and its code is read for static red flags (`palisade-analyze`). The crate
//! `palisade-supply` does the work; this file is flags, the analyzer hook and output.
//!
//! Advisory sources: `--advisory-db DIR` (an OSV dump, offline), and the OSV API (`--osv-url`, default
//! the public API) unless `--offline`, or unless only `--advisory-db` was given. `--offline` forbids all
//! network access: only local paths can be audited, against `--advisory-db`.
//!
//! Output: text (verdict first), `--format json` (documented in `palisade_supply::render`), or SARIF.
//! Exit status: 0; 1 with `--fail-on SEVERITY` when a finding is at or above it, or when a check fails
//! (integrity); 2 for usage errors.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use palisade_scan::Severity;
use palisade_scan::report::exceeds;
use palisade_supply::audit::{self, AuditReport, Options};
use palisade_supply::fetch::{Day, Registries};
use palisade_supply::net::Net;
use palisade_supply::osv::{self, Db, Online};
use palisade_supply::resolve::Tools;
use palisade_supply::{Progress, Spec, render};
use url::Url;

use crate::ExitStatus;
use crate::settings::ConfigError;

/// Where packages and advisories come from (shared by audit, install and update).
#[derive(Debug, Clone, Args)]
pub(crate) struct SourceArgs {
    /// A local OSV advisory database: OSV's per-ecosystem dump layout, unzipped (DIR/npm/*.json,
    /// DIR/PyPI/*.json). Given alone, the OSV API is not asked (add --osv-url to ask both).
    #[arg(long, value_name = "DIR")]
    pub(crate) advisory_db: Option<PathBuf>,
    /// The OSV API to ask (default: https://api.osv.dev, unless --offline or --advisory-db).
    #[arg(long, value_name = "URL", env = "PALISADE_OSV_URL")]
    pub(crate) osv_url: Option<String>,
    /// No network access at all: audit a local path against --advisory-db only.
    #[arg(long)]
    pub(crate) offline: bool,
    /// The npm registry (default: https://registry.npmjs.org).
    #[arg(long, value_name = "URL", env = "PALISADE_NPM_REGISTRY")]
    pub(crate) npm_registry: Option<String>,
    /// The Python package index's base (default: https://pypi.org; /pypi/NAME/json and /simple/ are used).
    #[arg(long, value_name = "URL", env = "PALISADE_PYPI_URL")]
    pub(crate) pypi_url: Option<String>,
}

/// `palisade audit` flags.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// npm:NAME@VERSION, pypi:NAME==VERSION, or a directory, .tgz, .tar.gz or .whl.
    #[arg(value_name = "SPEC")]
    spec: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
    format: AuditFormat,
    /// Exit 1 when a finding at or above this severity exists (info, low, medium, high, critical).
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    fail_on: Option<Severity>,
    #[command(flatten)]
    src: SourceArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuditFormat {
    Text,
    Json,
    Sarif,
}

pub(crate) fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

/// Maps a supply error to the exit contract: usage errors are configuration errors (2), the rest fail (1).
pub(crate) fn supply_err(e: palisade_supply::Error) -> anyhow::Error {
    if e.is_usage() {
        ConfigError(e.to_string()).into()
    } else {
        anyhow::Error::new(e)
    }
}

/// Progress on stderr, only at a terminal: one line rewritten in place.
pub(crate) struct TtyProgress {
    on: bool,
    last: Mutex<Option<Instant>>,
}

impl TtyProgress {
    pub(crate) fn new() -> TtyProgress {
        TtyProgress {
            on: std::io::stderr().is_terminal(),
            last: Mutex::new(None),
        }
    }
}

impl Progress for TtyProgress {
    fn step(&self, what: &str) {
        if self.on {
            eprint!("\r\x1b[2K  {what}…");
        }
    }
    fn bytes(&self, what: &str, done: u64, total: Option<u64>) {
        if !self.on {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_millis(80)) && total != Some(done) {
            return;
        }
        *last = Some(Instant::now());
        match total {
            Some(t) if t > 0 => eprint!(
                "\r\x1b[2K  {what} {} / {} KiB ({}%)",
                done / 1024,
                t / 1024,
                done * 100 / t
            ),
            _ => eprint!("\r\x1b[2K  {what} {} KiB", done / 1024),
        }
    }
    fn done(&self) {
        if self.on {
            eprint!("\r\x1b[2K");
        }
    }
}

/// The static analyzer built into palisade: `palisade-analyze`'s code rules (tree-sitter red flags with
/// file:line), run on the unpacked package.
struct CodeAnalyzer;

impl audit::StaticAnalyzer for CodeAnalyzer {
    fn name(&self) -> String {
        format!("palisade-analyze {}", env!("CARGO_PKG_VERSION"))
    }

    fn rules(&self) -> Vec<&'static palisade_scan::RuleMeta> {
        palisade_analyze::rules::CODE.to_vec()
    }

    fn analyze(&self, dir: &std::path::Path) -> Result<Vec<palisade_scan::Finding>, String> {
        palisade_analyze::analyze_dir(dir, &palisade_analyze::Options::default())
            .map(|r| r.findings)
            .map_err(|e| e.to_string())
    }
}

/// Everything an audit needs, built from the flags.
pub(crate) struct Setup {
    pub(crate) registries: Registries,
    pub(crate) net: Net,
    pub(crate) db: Option<Db>,
    pub(crate) osv_url: Option<Url>,
    pub(crate) no_source_reason: String,
    pub(crate) offline: bool,
    pub(crate) work: PathBuf,
}

fn parse_url(flag: &str, s: &str) -> Result<Url> {
    let u = Url::parse(s).map_err(|e| ConfigError(format!("{flag} {s:?}: not a URL ({e})")))?;
    if !matches!(u.scheme(), "https" | "http") {
        return Err(ConfigError(format!("{flag} {s:?}: use an http(s) URL")).into());
    }
    Ok(u)
}

impl Setup {
    pub(crate) fn new(src: &SourceArgs) -> Result<Setup> {
        let mut registries = Registries::default();
        if let Some(u) = &src.npm_registry {
            registries.npm = parse_url("--npm-registry", u)?;
        }
        if let Some(u) = &src.pypi_url {
            registries.pypi = parse_url("--pypi-url", u)?;
        }
        let db = match &src.advisory_db {
            Some(d) => Some(Db::load(d).map_err(supply_err)?),
            None => None,
        };
        let osv_url = match (&src.osv_url, src.offline, db.is_some()) {
            (Some(_), true, _) => {
                return Err(ConfigError(
                    "--osv-url needs the network, which --offline forbids; drop one of them".into(),
                )
                .into());
            }
            (Some(u), false, _) => Some(parse_url("--osv-url", u)?),
            (None, false, false) => Some(Url::parse(osv::DEFAULT_OSV_URL).expect("static URL")),
            (None, _, _) => None,
        };
        let no_source_reason = if src.offline {
            "--offline without --advisory-db: no advisory source; pass --advisory-db DIR (an OSV dump) to check offline".into()
        } else {
            "no advisory source".into()
        };
        let net = Net::new(src.offline).map_err(supply_err)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let work = crate::dirs::cache()?
            .join("work")
            .join(format!("{}-{nanos}", std::process::id()));
        Ok(Setup {
            registries,
            net,
            db,
            osv_url,
            no_source_reason,
            offline: src.offline,
            work,
        })
    }

    pub(crate) fn options<'a>(&'a self, progress: &'a dyn Progress) -> Options<'a> {
        let mut sources: Vec<Box<dyn osv::Source + 'a>> = Vec::new();
        if let Some(db) = &self.db {
            sources.push(Box::new(db.clone()));
        }
        if let Some(u) = &self.osv_url {
            sources.push(Box::new(Online::new(u.clone(), &self.net)));
        }
        Options {
            registries: self.registries.clone(),
            net: &self.net,
            sources,
            no_source_reason: self.no_source_reason.clone(),
            resolve: !self.offline,
            tools: Tools::new(&self.registries),
            analyzer: Some(&CodeAnalyzer),
            no_analyzer_reason: String::new(),
            progress,
            work: self.work.clone(),
            today: Day::today(),
        }
    }

    /// Runs the audit of `spec`.
    pub(crate) fn audit(&self, spec: &Spec, progress: &dyn Progress) -> Result<AuditReport> {
        let o = self.options(progress);
        audit::audit(spec, &o).map_err(supply_err)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if self.work.exists() {
            palisade_supply::store::make_writable(&self.work);
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }
}

pub(crate) fn parse_spec(s: &str) -> Result<Spec> {
    Spec::parse(s).map_err(supply_err)
}

pub(crate) fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Runs `palisade audit`.
pub(crate) fn audit(args: AuditArgs) -> Result<ExitStatus> {
    let spec = parse_spec(&args.spec)?;
    let setup = Setup::new(&args.src)?;
    if setup.offline && matches!(spec, Spec::Registry { .. }) {
        return Err(ConfigError(format!(
            "{spec}: downloading it needs the network, which --offline forbids; audit a local copy (`npm pack NAME@VER`, `pip download --no-deps NAME==VER`) or drop --offline"
        ))
        .into());
    }
    let progress = TtyProgress::new();
    let report = setup.audit(&spec, &progress)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        AuditFormat::Text => {
            out.write_all(render::text(&report, render::Style { color: color() }).as_bytes())?;
        }
        AuditFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &render::json(&report))?;
            out.write_all(b"\n")?;
        }
        AuditFormat::Sarif => {
            serde_json::to_writer_pretty(&mut out, &render::sarif(&report))?;
            out.write_all(b"\n")?;
        }
    }
    out.flush().context("writing the report")?;
    Ok(match args.fail_on {
        Some(t) if exceeds(&report.findings, t) => ExitStatus::Failure,
        _ => ExitStatus::Success,
    })
}
