//! `palisade.lock` (`$XDG_CONFIG_HOME/palisade/palisade.lock`): what is installed, exactly.
//!
//! # Wire format (TOML, version 1)
//! ```toml
//! version = 1
//!
//! [[package]]
//! ecosystem = "npm"                     # or "PyPI"
//! name = "@modelcontextprotocol/server-filesystem"
//! version = "2026.8.31"
//! spec = "npm:@modelcontextprotocol/server-filesystem@2026.8.31"
//! file = "server-filesystem-2026.8.31.tgz"
//! sha256 = "…"                           # of the artifact; also the store key
//! integrity = "sha512-…"                 # what the registry published and palisade verified
//! source = "https://registry.npmjs.org/…"
//! tree = "sha256:…"                      # digest of the whole installed store entry
//! server = "server-filesystem"           # the name `palisade run` gives it: its tool pins are in
//!                                        # pins.json under this name (not copied here)
//! installed = "2026-11-21"
//! verdict = "review"                     # the audit's verdict at install, and its finding count
//! findings = 3
//! entry = { interpreter = "node", path = "node_modules/…/dist/index.js", bin = "mcp-server-filesystem" }
//!
//! [[package.dependencies]]
//! name = "@modelcontextprotocol/sdk"
//! version = "1.30.0"
//! integrity = "sha512-…"
//!
//! [[package.history]]                    # earlier installs, newest first; `rollback` returns to [0]
//! version = "2026.7.10"
//! # … the same fields …
//! ```
//! Writers hold an exclusive `flock` on `palisade.lock.lock`, read, change, write a temporary file and
//! rename it over the original.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spec::Ecosystem;
use crate::store::{EntryPoint, InstalledDep};
use crate::{Error, Result};

/// The lock file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LockFile {
    /// Format version (1).
    pub version: u32,
    /// Installed packages.
    #[serde(default, rename = "package")]
    pub packages: Vec<Locked>,
}

/// One installed package (and its history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locked {
    /// `npm` or `PyPI`.
    pub ecosystem: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The spec it was installed from.
    pub spec: String,
    /// Artifact file name.
    pub file: String,
    /// sha256 of the artifact (the store key).
    pub sha256: String,
    /// The published integrity that was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<String>,
    /// Where it was downloaded from.
    pub source: String,
    /// Digest of the installed store entry.
    pub tree: String,
    /// The server name `palisade run` uses (the pins.json key).
    pub server: String,
    /// Day of installation.
    pub installed: String,
    /// The audit verdict at installation.
    pub verdict: String,
    /// Number of findings then.
    pub findings: usize,
    /// How to start it.
    pub entry: EntryPoint,
    /// Every installed package with its integrity.
    #[serde(default)]
    pub dependencies: Vec<InstalledDep>,
    /// Earlier installs, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Locked>,
}

impl Locked {
    /// The ecosystem.
    pub fn ecosystem(&self) -> Option<Ecosystem> {
        match self.ecosystem.as_str() {
            "npm" => Some(Ecosystem::Npm),
            "PyPI" => Some(Ecosystem::PyPI),
            _ => None,
        }
    }
}

impl LockFile {
    /// The entry for `name` in `ecosystem` (any ecosystem when `None`; PyPI names compare normalized).
    pub fn find(&self, ecosystem: Option<Ecosystem>, name: &str) -> Option<&Locked> {
        self.packages
            .iter()
            .find(|p| matches_name(p, ecosystem, name))
    }

    /// Mutable [`LockFile::find`].
    pub fn find_mut(&mut self, ecosystem: Option<Ecosystem>, name: &str) -> Option<&mut Locked> {
        self.packages
            .iter_mut()
            .find(|p| matches_name(p, ecosystem, name))
    }

    /// Entries whose name matches in any ecosystem (for `update NAME` ambiguity).
    pub fn named(&self, name: &str) -> Vec<&Locked> {
        self.packages
            .iter()
            .filter(|p| matches_name(p, None, name))
            .collect()
    }
}

fn matches_name(p: &Locked, ecosystem: Option<Ecosystem>, name: &str) -> bool {
    let Some(e) = p.ecosystem() else { return false };
    if ecosystem.is_some_and(|x| x != e) {
        return false;
    }
    e.normalize(&p.name) == e.normalize(name)
}

/// The lock at a path.
#[derive(Debug, Clone)]
pub struct Lock {
    path: PathBuf,
}

impl Lock {
    /// The lock file at `path`.
    pub fn new(path: PathBuf) -> Lock {
        Lock { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads it (empty when it does not exist).
    pub fn load(&self) -> Result<LockFile> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LockFile {
                    version: 1,
                    packages: Vec::new(),
                });
            }
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let lf: LockFile = toml::from_str(&text).map_err(|e| {
            Error::Store(format!(
                "{} is not a valid palisade.lock ({e}); restore it from version control or remove it and reinstall",
                self.path.display()
            ))
        })?;
        if lf.version != 1 {
            return Err(Error::Store(format!(
                "{} has version {}, this palisade reads version 1",
                self.path.display(),
                lf.version
            )));
        }
        Ok(lf)
    }

    /// Applies `change` under the lock and writes the result atomically.
    pub fn update<T>(&self, change: impl FnOnce(&mut LockFile) -> Result<T>) -> Result<T> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock_path = self.path.with_extension("lock.lock");
        let guard = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        rustix::fs::flock(&guard, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(&lock_path, e.into()))?;
        let mut lf = self.load()?;
        lf.version = 1;
        let out = change(&mut lf)?;
        lf.packages
            .sort_by(|a, b| (&a.ecosystem, &a.name).cmp(&(&b.ecosystem, &b.name)));
        let text = toml::to_string_pretty(&lf)
            .map_err(|e| Error::Store(format!("cannot serialize palisade.lock ({e})")))?;
        let tmp = self.path.with_extension("lock.tmp");
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(b"# palisade.lock: installed MCP server packages, written by `palisade install`.\n# Format: docs/audit.md. Tool pins are in pins.json under each package's `server` name.\n")
            .and_then(|()| f.write_all(text.as_bytes()))
            .and_then(|()| f.sync_data())
            .map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        drop(guard);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, v: &str) -> Locked {
        Locked {
            ecosystem: "PyPI".into(),
            name: name.into(),
            version: v.into(),
            spec: format!("pypi:{name}=={v}"),
            file: "x.whl".into(),
            sha256: "a".repeat(64),
            integrity: Some("sha256:aa".into()),
            source: "https://x".into(),
            tree: "sha256:bb".into(),
            server: name.into(),
            installed: "2026-11-21".into(),
            verdict: "trust".into(),
            findings: 0,
            entry: EntryPoint {
                interpreter: None,
                path: "venv/bin/x".into(),
                bin: "x".into(),
                bins: Default::default(),
            },
            dependencies: vec![InstalledDep {
                name: "httpx".into(),
                version: "0.28.1".into(),
                integrity: Some("sha256:cc".into()),
            }],
            history: vec![],
        }
    }

    #[test]
    fn round_trips_with_history_and_finds_normalized_names() {
        let d = tempfile::tempdir().unwrap();
        let lock = Lock::new(d.path().join("palisade.lock"));
        lock.update(|lf| {
            let mut e = entry("mcp-server-fetch", "2");
            e.history.push(entry("mcp-server-fetch", "1"));
            lf.packages.push(e);
            Ok(())
        })
        .unwrap();
        let lf = lock.load().unwrap();
        let e = lf.find(Some(Ecosystem::PyPI), "MCP_Server_Fetch").unwrap();
        assert_eq!(e.version, "2");
        assert_eq!(e.history[0].version, "1");
        assert_eq!(e.dependencies[0].name, "httpx");
        assert!(lf.find(Some(Ecosystem::Npm), "mcp-server-fetch").is_none());
        let text = fs::read_to_string(lock.path()).unwrap();
        assert!(text.contains("[[package.history]]"), "{text}");
    }

    #[test]
    fn a_damaged_lock_is_an_error_with_a_way_out() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("palisade.lock"), "version = [").unwrap();
        let e = Lock::new(d.path().join("palisade.lock"))
            .load()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid palisade.lock"), "{e}");
    }
}
