//! palisade-scan: find the MCP client configs on a machine and report what is risky in them.
//!
//! # Brief overview
//! * [`discover`] knows where each client keeps its config ([`Locations`]: a home plus the variables
//!   that move things, `XDG_CONFIG_HOME`, `CODEX_HOME`, `APPDATA`), and what a file given by path is.
//! * [`config`] reads one file ([`jsonc`] for JSON/JSONC, [`toml_doc`] for Codex's TOML, both into the
//!   spanned tree of [`doc`]) into [`ServerEntry`]s: command, args, env, url, headers, each string with
//!   its byte span, so findings point at `line:col` and `palisade wrap` can edit in place.
//! * [`launch`] peels wrappers (`palisade run … --`, `cmd /c`, `env`) and reads package runners, `docker
//!   run` and inline scripts; [`secrets`] finds plaintext credentials (token formats shared with the audit
//!   log redactor) without flagging placeholders.
//! * [`rules`] is the registry: one file per rule, each a stable id, a severity, a one-line message and a
//!   concrete fix. [`report`] holds what any palisade checker reports with ([`Finding`], [`Severity`],
//!   SARIF), and [`render`] turns a [`Report`] into text or JSON.
//!
//! Data flow: [`Input`] → candidates → [`ConfigFile`]s → rules → [`Report`] → text | JSON | SARIF.
//!
//! ```
//! use palisade_scan::{Input, Locations, Options, scan};
//!
//! let home = std::env::temp_dir().join(format!("scan-doc-{}", std::process::id()));
//! std::fs::create_dir_all(home.join(".cursor")).unwrap();
//! std::fs::write(
//!     home.join(".cursor/mcp.json"),
//!     r#"{"mcpServers": {"fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/"]}}}"#,
//! ).unwrap();
//! let input = Input { home: home.clone(), locations: Some(Locations::for_home(&home)), paths: vec![] };
//! let name = |argv: &[String]| argv.last().cloned().unwrap_or_default();
//! let report = scan(&input, &Options { server_name: &name, reviewed: None }).unwrap();
//! let ids: Vec<_> = report.findings.iter().map(|f| f.rule).collect();
//! assert!(ids.contains(&"unpinned-package") && ids.contains(&"broad-filesystem-root"));
//! # std::fs::remove_dir_all(&home).unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod config;
pub mod discover;
pub mod doc;
pub mod jsonc;
pub mod launch;
pub mod render;
pub mod report;
pub mod rules;
pub mod secrets;
pub mod toml_doc;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

pub use client::{Client, Format, Scope, Shape};
pub use config::{ConfigFile, ServerEntry};
pub use discover::{Candidate, Locations};
pub use report::{Finding, Location, RuleMeta, Severity};

/// Files larger than this are not read (`~/.claude.json` holds history and reaches megabytes; 64 MiB is
/// far beyond any real config).
pub const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// What to scan.
#[derive(Debug, Clone)]
pub struct Input {
    /// The home that `~`, `$HOME` and credential stores refer to.
    pub home: PathBuf,
    /// Discover configs at these locations (`None`: only [`Input::paths`]).
    pub locations: Option<Locations>,
    /// Files (format detected) and project directories given explicitly.
    pub paths: Vec<PathBuf>,
}

/// What the caller knows that the scanner cannot.
pub struct Options<'a> {
    /// palisade's name for a server started with this argv (the derivation `palisade run` uses, so pins
    /// are looked up under the same name).
    pub server_name: &'a dyn Fn(&[String]) -> String,
    /// Servers with approved tool pins; `None` skips `tools-never-reviewed`.
    pub reviewed: Option<&'a BTreeSet<String>>,
}

/// A path given explicitly could not be scanned (a usage error: exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// It does not exist.
    #[error("{0}: no such file or directory")]
    NotFound(PathBuf),
    /// It is not a config palisade knows.
    #[error(
        "{path}: not an MCP client config ({why}); expected a file with `mcpServers`, `servers`, `mcp.servers`, `context_servers` or `[mcp_servers.*]`, or a project directory"
    )]
    NotAConfig {
        /// The path.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

/// The result of a scan.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every config found, in discovery order.
    pub configs: Vec<ConfigFile>,
    /// Every finding, grouped by config, then server (file-level first), most severe first.
    pub findings: Vec<Finding>,
    /// The home paths are shown relative to.
    pub home: PathBuf,
}

impl Report {
    /// Number of server entries across all configs.
    pub fn server_count(&self) -> usize {
        self.configs.iter().map(|c| c.servers.len()).sum()
    }
}

/// Scans what `input` names. Missing discovered files are skipped; unreadable or broken ones become
/// `config-parse-error` findings; explicit paths that cannot be scanned are an [`Error`].
pub fn scan(input: &Input, options: &Options<'_>) -> Result<Report, Error> {
    let mut queue: Vec<Candidate> = Vec::new();
    if let Some(loc) = &input.locations {
        queue.extend(discover::user_candidates(loc));
        for p in &loc.projects {
            queue.extend(discover::project_candidates(p));
        }
    }
    let mut explicit: Vec<ConfigFile> = Vec::new();
    for p in &input.paths {
        let meta = std::fs::metadata(p).map_err(|_| Error::NotFound(p.clone()))?;
        // Absolute, so reports (and SARIF URIs) never depend on the current directory.
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
        let p = &abs;
        if meta.is_dir() {
            queue.extend(discover::project_candidates(p));
        } else {
            explicit.push(load_explicit(p)?);
        }
    }
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut configs: Vec<ConfigFile> = Vec::new();
    for c in explicit {
        if seen.insert(canonical(&c.path)) {
            configs.push(c);
        }
    }
    let mut i = 0;
    while i < queue.len() {
        let c = queue[i].clone();
        i += 1;
        if !c.path.is_file() || !seen.insert(canonical(&c.path)) {
            continue;
        }
        let file = load(&c);
        // Claude Code lists the projects it was used in: their project configs count too.
        for project in &file.projects {
            let dir = Path::new(project);
            if dir.is_absolute() && dir.is_dir() {
                queue.extend(discover::project_candidates(dir));
            }
        }
        configs.push(file);
    }
    let mut findings = Vec::new();
    for file in &configs {
        findings.extend(check_file(file, &input.home, options));
    }
    Ok(Report {
        configs,
        findings,
        home: input.home.clone(),
    })
}

/// Runs every rule over one file.
pub fn check_file(file: &ConfigFile, home: &Path, options: &Options<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for server in &file.servers {
        let cx = rules::ServerCtx {
            file,
            server,
            launch: launch::Launch::of(server),
            home,
            options,
        };
        for r in rules::RULES {
            if let rules::Check::Server(f) = r.check {
                f(&cx, &mut out);
            }
        }
    }
    let mut file_findings = Vec::new();
    for r in rules::RULES {
        if let rules::Check::File(f) = r.check {
            f(
                &rules::FileCtx {
                    file,
                    findings: &out,
                },
                &mut file_findings,
            );
        }
    }
    out.extend(file_findings);
    let server_index = |f: &Finding| {
        f.server
            .as_ref()
            .and_then(|s| file.servers.iter().position(|e| &e.name == s))
            .map_or(0, |i| i + 1)
    };
    let rule_index = |f: &Finding| rules::RULES.iter().position(|r| r.meta.id == f.rule);
    out.sort_by(|a, b| {
        server_index(a)
            .cmp(&server_index(b))
            .then(b.severity.cmp(&a.severity))
            .then(rule_index(a).cmp(&rule_index(b)))
            .then(
                a.location
                    .as_ref()
                    .map(|l| l.start)
                    .cmp(&b.location.as_ref().map(|l| l.start)),
            )
    });
    out
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    Some(meta.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn mode_of(_: &std::fs::Metadata) -> Option<u32> {
    None
}

fn read(path: &Path) -> Result<(String, Option<u32>), (String, Option<u32>)> {
    let meta = std::fs::metadata(path).map_err(|e| (format!("cannot read it: {e}"), None))?;
    let mode = mode_of(&meta);
    if meta.len() > MAX_CONFIG_BYTES {
        return Err((
            format!(
                "it is {} bytes, more than the {} a config can be",
                meta.len(),
                MAX_CONFIG_BYTES
            ),
            mode,
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| (format!("cannot read it: {e}"), mode))?;
    String::from_utf8(bytes)
        .map(|t| (t, mode))
        .map_err(|_| ("it is not UTF-8 text".to_owned(), mode))
}

/// Reads and parses a discovered candidate (never fails: problems become the file's `error`).
pub fn load(c: &Candidate) -> ConfigFile {
    match read(&c.path) {
        Ok((text, mode)) => ConfigFile::parse(c, text, mode),
        Err((msg, mode)) => ConfigFile::unreadable(c, msg, mode),
    }
}

/// Reads a file named on the command line, telling its client from its path or else its content.
pub fn load_explicit(path: &Path) -> Result<ConfigFile, Error> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some(c) = discover::classify_path(&abs) {
        return Ok(load(&c));
    }
    let (text, mode) = read(&abs).map_err(|(why, _)| Error::NotAConfig {
        path: path.to_path_buf(),
        why,
    })?;
    let root = config::parse_any(&abs, &text).map_err(|e| Error::NotAConfig {
        path: path.to_path_buf(),
        why: e.message,
    })?;
    let c = discover::classify_content(&abs, &root).ok_or_else(|| Error::NotAConfig {
        path: path.to_path_buf(),
        why: "none of the keys MCP clients use was found".into(),
    })?;
    Ok(ConfigFile::parse(&c, text, mode))
}
