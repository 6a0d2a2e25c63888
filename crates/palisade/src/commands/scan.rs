//! `palisade scan`: find the MCP client configs on this machine (or under `--home DIR`, or the files and
//! project directories given) and report what is risky in them, as text, JSON or SARIF.
//!
//! What is scanned:
//! * no arguments: this user's configs (every client's locations, honouring `XDG_CONFIG_HOME`,
//!   `CODEX_HOME`, `APPDATA`), machine-wide ones (`/etc/claude-code/…`), the current directory's project
//!   configs, and those of every project Claude Code lists in `~/.claude.json`;
//! * `--home DIR`: the same for another home, at the default locations under it (the variables describe
//!   the current user, not DIR), without system files or the current directory;
//! * `PATH…`: those files (client told from the path, else the content) and project directories; alone,
//!   nothing else is scanned (what CI wants), with `--home` both.
//!
//! Tool reviews are read from the pins file (`--pins`, else `DIR/.local/state/palisade/pins.json` with
//! `--home`, else `$XDG_STATE_HOME/palisade/pins.json`), under the name `palisade run` would give each
//! server. Exit status: 0, or 1 with `--fail-on SEVERITY` when a finding is at or above it; 2 when a
//! path given cannot be scanned.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use palisade_scan::report::{exceeds, sarif};
use palisade_scan::{Input, Locations, Options, Severity, render};

use crate::ExitStatus;
use crate::pins::PinStore;
use crate::settings::ConfigError;

/// `palisade scan` flags.
#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// Scan this home directory instead of yours (configs at their default places under it).
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Config files (the client is told from the path or the content) or project directories to scan.
    /// Without --home, only these are scanned.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ScanFormat::Text)]
    format: ScanFormat,
    /// Exit 1 when a finding at or above this severity exists (info, low, medium, high, critical).
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    fail_on: Option<Severity>,
    /// Pins file whose approved tools count as reviewed (default: `$XDG_STATE_HOME/palisade/pins.json`;
    /// with --home, the one under DIR).
    #[arg(long, value_name = "FILE")]
    pins: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScanFormat {
    Text,
    Json,
    Sarif,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

/// Runs `palisade scan`.
pub(crate) fn scan(args: ScanArgs) -> Result<ExitStatus> {
    let env_home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let (home, locations) = match &args.home {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(ConfigError(format!(
                    "--home {}: not a directory; pass the home directory to scan",
                    dir.display()
                ))
                .into());
            }
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            (dir.clone(), Some(Locations::for_home(dir)))
        }
        None => {
            let loc = Locations::from_env(|k| std::env::var_os(k));
            let home = loc
                .as_ref()
                .map(|l| l.home.clone())
                .or(env_home)
                .ok_or_else(|| {
                    ConfigError(
                        "$HOME is not set, so there is no home to scan; pass --home DIR or config paths"
                            .into(),
                    )
                })?;
            let loc = if args.paths.is_empty() {
                loc.map(|mut l| {
                    l.projects.push(cwd.clone());
                    l
                })
            } else {
                None
            };
            (home, loc)
        }
    };
    let pins_path = match (&args.pins, &args.home) {
        (Some(p), _) => p.clone(),
        (None, Some(_)) => home.join(".local/state/palisade/pins.json"),
        (None, None) => crate::dirs::pins_file()?,
    };
    let reviewed: Option<BTreeSet<String>> = match PinStore::new(pins_path).load_all() {
        Ok(all) => Some(
            all.into_iter()
                .filter(|(_, p)| !p.approved.is_empty())
                .map(|(name, _)| name)
                .collect(),
        ),
        Err(e) => {
            eprintln!("palisade: warning: {e:#}; tool reviews are not checked");
            None
        }
    };
    let input = Input {
        home,
        locations,
        paths: args.paths.clone(),
    };
    let name = |argv: &[String]| crate::settings::derive_server_name(argv);
    let options = Options {
        server_name: &name,
        reviewed: reviewed.as_ref(),
    };
    let report = palisade_scan::scan(&input, &options).map_err(|e| ConfigError(e.to_string()))?;

    let mut out = std::io::stdout().lock();
    match args.format {
        ScanFormat::Text => {
            let color = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            out.write_all(render::text(&report, render::Style { color }).as_bytes())?;
            if report.configs.is_empty() {
                eprintln!(
                    "\nhint: no MCP client config was found; pass config files or project directories, or --home DIR"
                );
            }
        }
        ScanFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &render::json(&report))?;
            out.write_all(b"\n")?;
        }
        ScanFormat::Sarif => {
            let metas = palisade_scan::rules::metas();
            let log = sarif::log(
                sarif::Tool {
                    name: "palisade",
                    version: env!("CARGO_PKG_VERSION"),
                    information_uri: "https://example.invalid/palisade/docs/scan.md",
                },
                &metas,
                &report.findings,
                Some(&cwd),
            );
            serde_json::to_writer_pretty(&mut out, &log)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(match args.fail_on {
        Some(t) if exceeds(&report.findings, t) => ExitStatus::Failure,
        _ => ExitStatus::Success,
    })
}
