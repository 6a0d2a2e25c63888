//! The content-addressed store: `$XDG_DATA_HOME/palisade/store/<sha256>/`, one directory per vetted
//! artifact, named by the sha256 of the artifact's bytes.
//!
//! # Layout of one entry
//! ```text
//! <sha256>/
//!   artifact/<file>          the verified tarball or wheel, byte for byte
//!   palisade-entry.json      name, version, ecosystem, entry point, tree digest (not itself digested)
//!   npm:  package.json, package-lock.json, node_modules/…   (npm ci --ignore-scripts on the audited lock)
//!   PyPI: requirements.txt, venv/…                          (pip --require-hashes --no-deps --only-binary)
//! ```
//! An entry is built in place under a per-entry lock (a venv cannot be moved once built); its manifest
//! is written last, and an entry without one is an unfinished install that the next install replaces.
//! [`tree_digest`] hashes every file, link and executable bit under the entry (except the manifest);
//! `palisade.lock` records it and `palisade run` recomputes it before every start ([`Store::verify`],
//! reusing content hashes of files whose stamps did not change: [`crate::verified`]). Files are made
//! read-only after install.
//!
//! # What installs run
//! * npm: `npm ci --ignore-scripts --omit=dev` on exactly the lockfile the audit resolved: every tarball is
//!   checked against its lockfile integrity by npm, no lifecycle script runs, and the root package's
//!   lockfile integrity must equal the integrity palisade verified (or the install is refused).
//! * PyPI: a venv (`python -m venv --without-pip`), then the outer pip with `--python venv/bin/python
//!   --require-hashes --no-deps --only-binary :all: --no-compile -r requirements.txt`: every distribution
//!   is hash-pinned, no sdist is built (building runs its setup.py), and no bytecode is written.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::AuditReport;
use crate::fetch::ArtifactKind;
use crate::resolve::{self, Tools};
use crate::spec::{Ecosystem, Spec, normalize_pypi};
use crate::{Error, Progress, Result};

/// The manifest's file name inside an entry.
pub const MANIFEST: &str = "palisade-entry.json";

/// How to start the installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryPoint {
    /// The program that runs the script (`node`), or none when the path is itself executable (a venv
    /// console script).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
    /// The script, relative to the entry directory.
    pub path: String,
    /// The command name it is published under (`mcp-server-filesystem`).
    pub bin: String,
    /// Every command the package publishes: name → path relative to the entry.
    #[serde(default)]
    pub bins: BTreeMap<String, String>,
}

/// What an entry holds (written as `palisade-entry.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Ecosystem (`npm`, `PyPI`).
    pub ecosystem: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The artifact's file name.
    pub artifact: String,
    /// How to start it.
    pub entry: EntryPoint,
    /// The tree digest at install.
    pub tree: String,
}

/// A dependency as installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledDep {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// npm SRI or `sha256:<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<String>,
}

/// An installed entry.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The store key (artifact sha256).
    pub key: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Every installed package with its integrity.
    pub dependencies: Vec<InstalledDep>,
    /// Whether the entry already existed (and verified).
    pub reused: bool,
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

fn is_key(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Store {
    /// The store at `root` (`$XDG_DATA_HOME/palisade/store`).
    pub fn new(root: PathBuf) -> Store {
        Store { root }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of entry `key` (a lower-case hex sha256; anything else is refused).
    pub fn entry_dir(&self, key: &str) -> Result<PathBuf> {
        if !is_key(key) {
            return Err(Error::Store(format!(
                "{key:?} is not a store key (64 lower-case hex digits); palisade.lock is damaged"
            )));
        }
        Ok(self.root.join(key))
    }

    /// Where the verified-stamps cache of entry `key` lives (see [`crate::verified`]).
    fn cache_path(&self, key: &str) -> PathBuf {
        self.root.join(".verified").join(format!("{key}.json"))
    }

    /// Reads an entry's manifest.
    pub fn manifest(&self, key: &str) -> Result<Manifest> {
        let p = self.entry_dir(key)?.join(MANIFEST);
        let text = fs::read_to_string(&p).map_err(|e| {
            Error::Store(format!(
                "store entry {key} is missing or damaged ({}: {e}); reinstall with `palisade install`",
                p.display()
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Store(format!("{}: damaged manifest ({e})", p.display())))
    }

    /// Checks an entry against `expected_tree`: the hash of everything in it. A difference refuses.
    pub fn verify(&self, key: &str, expected_tree: &str) -> Result<PathBuf> {
        let dir = self.entry_dir(key)?;
        if !dir.is_dir() {
            return Err(Error::Store(format!(
                "store entry {} is missing; reinstall with `palisade install`",
                dir.display()
            )));
        }
        let actual =
            crate::verified::tree_digest_cached(&dir, &self.cache_path(key), expected_tree)?;
        if actual != expected_tree {
            return Err(Error::Integrity {
                what: format!("the installed tree {}", dir.display()),
                expected: expected_tree.to_owned(),
                actual,
            });
        }
        Ok(dir)
    }

    /// Installs the audited artifact of `report` (see the [module docs](self)).
    pub fn install(
        &self,
        report: &AuditReport,
        tools: &Tools,
        progress: &dyn Progress,
    ) -> Result<Installed> {
        let f = &report.fetched;
        let eco = f
            .ecosystem
            .ok_or_else(|| Error::Usage("cannot tell the package's ecosystem".into()))?;
        let name = f
            .name
            .clone()
            .ok_or_else(|| Error::Usage("the package has no name".into()))?;
        let version = f
            .version
            .clone()
            .ok_or_else(|| Error::Usage("the package has no version".into()))?;
        if f.kind == ArtifactKind::Directory {
            return Err(Error::Usage(
                "a directory cannot be installed into the store: pack it first (`npm pack`, or build a wheel) and install the file".into(),
            ));
        }
        if f.kind == ArtifactKind::Sdist {
            return Err(Error::Usage(format!(
                "{} is an sdist: installing it would run its setup.py; install a wheel of this release",
                f.filename
            )));
        }
        let key = f.sha256.clone();
        let final_dir = self.entry_dir(&key)?;
        fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        // One builder per entry at a time.
        let lock_path = self.root.join(format!(".{key}.lock"));
        let guard = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        rustix::fs::flock(&guard, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(&lock_path, e.into()))?;
        if final_dir.is_dir() {
            if final_dir.join(MANIFEST).is_file() {
                let m = self.manifest(&key)?;
                self.verify(&key, &m.tree)?;
                let dependencies = read_dependencies(&final_dir, eco)?;
                return Ok(Installed {
                    key,
                    dir: final_dir,
                    manifest: m,
                    dependencies,
                    reused: true,
                });
            }
            // No manifest: an install that did not finish. Start over.
            make_writable(&final_dir);
            fs::remove_dir_all(&final_dir).map_err(|e| Error::io(&final_dir, e))?;
        }
        // Built in place (a venv's scripts name their interpreter by absolute path, so the entry cannot
        // be moved after it is built); the manifest, written last, marks it complete.
        fs::create_dir_all(final_dir.join("artifact")).map_err(|e| Error::io(&final_dir, e))?;
        let tmp = final_dir.clone();
        let result = (|| -> Result<(EntryPoint, Vec<InstalledDep>)> {
            let art = tmp.join("artifact").join(&f.filename);
            fs::write(&art, &f.bytes).map_err(|e| Error::io(&art, e))?;
            match eco {
                Ecosystem::Npm => install_npm(report, &tmp, &art, &name, tools, progress),
                Ecosystem::PyPI => install_pypi(report, &tmp, &art, &name, tools, progress),
            }
        })();
        let (entry, dependencies) = match result {
            Ok(x) => x,
            Err(e) => {
                make_writable(&tmp);
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let tree = tree_digest(&tmp)?;
        let manifest = Manifest {
            ecosystem: eco.osv_name().into(),
            name,
            version,
            artifact: f.filename.clone(),
            entry,
            tree,
        };
        let mp = tmp.join(MANIFEST);
        fs::write(
            &mp,
            serde_json::to_string_pretty(&manifest).unwrap_or_default(),
        )
        .map_err(|e| Error::io(&mp, e))?;
        make_read_only(&tmp);
        drop(guard);
        Ok(Installed {
            key,
            dir: final_dir,
            manifest,
            dependencies,
            reused: false,
        })
    }
}

fn install_npm(
    report: &AuditReport,
    dir: &Path,
    art: &Path,
    name: &str,
    tools: &Tools,
    progress: &dyn Progress,
) -> Result<(EntryPoint, Vec<InstalledDep>)> {
    let f = &report.fetched;
    match (
        &f.spec,
        report.resolution.as_ref().and_then(|r| r.lockfile.as_ref()),
    ) {
        (Spec::Registry { .. }, Some(lock)) => {
            // The audited lock: its root entry must carry the integrity palisade verified.
            let parsed = resolve::parse_npm_lock(lock, name)?;
            let root = parsed.deps.iter().find(|d| d.root).ok_or_else(|| {
                Error::Store(format!("the resolved lockfile has no entry for {name}"))
            })?;
            if root.integrity.as_deref() != f.verified_against.as_deref() {
                return Err(Error::Integrity {
                    what: format!("{name} in the resolved lockfile"),
                    expected: f.verified_against.clone().unwrap_or_default(),
                    actual: root.integrity.clone().unwrap_or_else(|| "none".into()),
                });
            }
            let manifest = serde_json::json!({
                "name": "palisade-store-entry", "version": "0.0.0", "private": true,
                "dependencies": {name: f.version.clone().unwrap_or_default()},
            });
            fs::write(dir.join("package.json"), manifest.to_string())
                .map_err(|e| Error::io(dir, e))?;
            fs::write(dir.join("package-lock.json"), lock).map_err(|e| Error::io(dir, e))?;
            progress.step("installing (npm ci --ignore-scripts)");
            let mut c = tools.npm_command(dir);
            c.args([
                "ci",
                "--ignore-scripts",
                "--omit=dev",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ]);
            let r = resolve::run(c, "npm ci");
            progress.done();
            r?;
        }
        (Spec::Path(_), _) => {
            let rel = format!("file:./artifact/{}", f.filename);
            let manifest = serde_json::json!({
                "name": "palisade-store-entry", "version": "0.0.0", "private": true,
                "dependencies": {name: rel},
            });
            fs::write(dir.join("package.json"), manifest.to_string())
                .map_err(|e| Error::io(dir, e))?;
            progress.step("installing (npm install --ignore-scripts)");
            let mut c = tools.npm_command(dir);
            c.args([
                "install",
                "--ignore-scripts",
                "--omit=dev",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ]);
            let r = resolve::run(c, "npm install");
            progress.done();
            r?;
        }
        (Spec::Registry { .. }, None) => {
            return Err(Error::Store(
                "the dependency tree was not resolved, so there is no lockfile to install from; run without --offline".into(),
            ));
        }
    }
    let _ = art;
    let pkg_dir = dir.join("node_modules").join(name);
    let pj = fs::read_to_string(pkg_dir.join("package.json"))
        .map_err(|e| Error::io(pkg_dir.join("package.json"), e))?;
    let pj: serde_json::Value = serde_json::from_str(&pj)
        .map_err(|e| Error::Store(format!("installed package.json is not JSON ({e})")))?;
    let unscoped = name.rsplit('/').next().unwrap_or(name).to_owned();
    let mut bins: BTreeMap<String, String> = BTreeMap::new();
    match pj.get("bin") {
        Some(serde_json::Value::String(p)) => {
            bins.insert(unscoped.clone(), p.clone());
        }
        Some(serde_json::Value::Object(m)) => {
            for (k, v) in m {
                if let Some(p) = v.as_str() {
                    bins.insert(k.clone(), p.to_owned());
                }
            }
        }
        _ => {}
    }
    if bins.is_empty() {
        let main = pj
            .get("main")
            .and_then(|v| v.as_str())
            .unwrap_or("index.js");
        bins.insert(unscoped.clone(), main.to_owned());
    }
    let rel_bins: BTreeMap<String, String> = bins
        .iter()
        .map(|(k, v)| {
            let clean = Path::new(v.trim_start_matches("./"));
            (
                k.clone(),
                format!("node_modules/{name}/{}", clean.display()),
            )
        })
        .collect();
    for p in rel_bins.values() {
        if p.contains("..") || !dir.join(p).is_file() {
            return Err(Error::Store(format!(
                "the package's bin {p} is not a file inside the package"
            )));
        }
    }
    // npx runs the bin named like the package (unscoped), or the only one.
    let bin = if rel_bins.contains_key(&unscoped) {
        unscoped
    } else {
        rel_bins.keys().next().cloned().unwrap_or_default()
    };
    let entry = EntryPoint {
        interpreter: Some("node".into()),
        path: rel_bins[&bin].clone(),
        bin,
        bins: rel_bins,
    };
    Ok((entry, read_dependencies(dir, Ecosystem::Npm)?))
}

fn install_pypi(
    report: &AuditReport,
    dir: &Path,
    art: &Path,
    name: &str,
    tools: &Tools,
    progress: &dyn Progress,
) -> Result<(EntryPoint, Vec<InstalledDep>)> {
    let f = &report.fetched;
    let req = report
        .resolution
        .as_ref()
        .and_then(|r| r.lockfile.clone())
        .ok_or_else(|| {
            Error::Store(
                "the dependency tree was not resolved, so there are no pinned hashes to install; run without --offline".into(),
            )
        })?;
    let mut req = String::from_utf8_lossy(&req).into_owned();
    let want = normalize_pypi(name);
    // The audited artifact itself is installed from the store's copy, with its verified hash.
    req = req
        .lines()
        .filter(|l| {
            let n: String = l.chars().take_while(|c| !matches!(c, '=' | ' ')).collect();
            normalize_pypi(&n) != want
        })
        .map(|l| format!("{l}\n"))
        .collect();
    req.push_str(&format!("{} --hash=sha256:{}\n", art.display(), f.sha256));
    fs::write(dir.join("requirements.txt"), &req).map_err(|e| Error::io(dir, e))?;
    progress.step("creating the venv");
    let mut c = std::process::Command::new(&tools.python);
    c.args(["-m", "venv", "--without-pip"])
        .arg(dir.join("venv"));
    let r = resolve::run(c, "python -m venv");
    progress.done();
    r?;
    progress.step("installing (pip --require-hashes)");
    let mut c = tools.pip_command();
    c.arg("--python")
        .arg(dir.join("venv/bin/python"))
        .args([
            "install",
            "--require-hashes",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--no-compile",
            "--quiet",
            "-r",
        ])
        .arg(dir.join("requirements.txt"));
    let r = resolve::run(c, "pip install --require-hashes");
    progress.done();
    r?;
    // Console scripts from the wheel's entry_points.txt.
    let mut bins = BTreeMap::new();
    if let Ok(rd) = fs::read_dir(&report.package_dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().ends_with(".dist-info")
                && let Ok(text) = fs::read_to_string(e.path().join("entry_points.txt"))
            {
                let mut in_console = false;
                for line in text.lines() {
                    let l = line.trim();
                    if l.starts_with('[') {
                        in_console = l == "[console_scripts]";
                    } else if in_console && let Some((k, _)) = l.split_once('=') {
                        let k = k.trim().to_owned();
                        bins.insert(k.clone(), format!("venv/bin/{k}"));
                    }
                }
            }
        }
    }
    for p in bins.values() {
        if !dir.join(p).is_file() {
            return Err(Error::Store(format!(
                "the console script {p} was not installed"
            )));
        }
    }
    let bin = bins
        .keys()
        .find(|k| normalize_pypi(k) == want)
        .or_else(|| bins.keys().next())
        .cloned()
        .ok_or_else(|| {
            Error::Store(format!(
                "{name} publishes no console script, so there is no command to run it by; start it with `python -m MODULE` from the venv"
            ))
        })?;
    let entry = EntryPoint {
        interpreter: None,
        path: bins[&bin].clone(),
        bin,
        bins,
    };
    Ok((entry, read_dependencies(dir, Ecosystem::PyPI)?))
}

/// The installed packages with their integrity: the npm lockfile, or the pinned requirements.
fn read_dependencies(dir: &Path, eco: Ecosystem) -> Result<Vec<InstalledDep>> {
    match eco {
        Ecosystem::Npm => {
            let lock = fs::read(dir.join("package-lock.json"))
                .map_err(|e| Error::io(dir.join("package-lock.json"), e))?;
            let r = resolve::parse_npm_lock(&lock, "")?;
            Ok(r.deps
                .into_iter()
                .map(|d| InstalledDep {
                    name: d.name,
                    version: d.version,
                    integrity: d.integrity,
                })
                .collect())
        }
        Ecosystem::PyPI => {
            let text =
                fs::read_to_string(dir.join("requirements.txt")).map_err(|e| Error::io(dir, e))?;
            Ok(text
                .lines()
                .filter_map(|l| {
                    let (spec, hash) = l.split_once(" --hash=")?;
                    let (n, v) = spec.split_once("==").unwrap_or((spec, ""));
                    Some(InstalledDep {
                        name: Path::new(n)
                            .file_name()
                            .map(|x| x.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        version: v.to_owned(),
                        integrity: Some(hash.to_owned()),
                    })
                })
                .collect())
        }
    }
}

fn walk_perms(dir: &Path, f: &dyn Fn(&Path, bool)) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                walk_perms(&e.path(), f);
                f(&e.path(), true);
            } else if ft.is_file() {
                f(&e.path(), false);
            }
        }
    }
}

/// Removes write permission from everything under `dir` (not a defence against root; a guard against
/// accidental edits and, for non-root users, against bytecode caches appearing).
pub fn make_read_only(dir: &Path) {
    walk_perms(dir, &|p, _| {
        if let Ok(m) = fs::metadata(p) {
            let mode = m.permissions().mode() & !0o222;
            let _ = fs::set_permissions(p, fs::Permissions::from_mode(mode));
        }
    });
    if let Ok(m) = fs::metadata(dir) {
        let _ = fs::set_permissions(
            dir,
            fs::Permissions::from_mode(m.permissions().mode() & !0o222),
        );
    }
}

/// Restores owner write permission (before removing an entry).
pub fn make_writable(dir: &Path) {
    if let Ok(m) = fs::metadata(dir) {
        let _ = fs::set_permissions(
            dir,
            fs::Permissions::from_mode(m.permissions().mode() | 0o200),
        );
    }
    walk_perms(dir, &|p, is_dir| {
        if is_dir && let Ok(m) = fs::metadata(p) {
            let _ = fs::set_permissions(
                p,
                fs::Permissions::from_mode(m.permissions().mode() | 0o200),
            );
        }
    });
}

/// `sha256:<hex>` over a tree: for every entry in sorted path order, its relative path, its type, for
/// files the executable bit and the sha256 of the content, for links the target. The store manifest at
/// the top is left out (it records this digest). Write bits and times are not part of it.
pub fn tree_digest(root: &Path) -> Result<String> {
    walk_digest(root, &|_, _| None, &mut BTreeMap::new())
}

/// [`tree_digest`], taking a file's content hash from `known` when it returns one for the file's
/// relative path and [`Stamp`], and recording every hashed-or-known file's stamp and hash in `seen`
/// (files whose path is not UTF-8 are always hashed and never recorded).
pub(crate) fn walk_digest(
    root: &Path,
    known: &dyn Fn(&str, &Stamp) -> Option<[u8; 32]>,
    seen: &mut BTreeMap<String, Stamp>,
) -> Result<String> {
    use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, openat, readlinkat, statat};
    use std::os::unix::ffi::OsStrExt;
    use std::rc::Rc;
    // Directories are opened and their entries looked at relative to the open directory (no path is
    // resolved from the root again), and only non-directories are stat'ed: the walk is most of the cost
    // when content hashes come from the verified-stamps cache.
    let io = |p: &Path, e: rustix::io::Errno| Error::io(p, e.into());
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut h = Sha256::new();
    let top = openat(CWD, root, dir_flags, Mode::empty()).map_err(|e| io(root, e))?;
    // A subdirectory is opened when it is walked, from its parent's descriptor (shared by its pending
    // siblings): open descriptors stay around the tree's depth, not its width.
    type Pending = (PathBuf, Rc<std::os::fd::OwnedFd>, Option<std::ffi::CString>);
    let mut stack: Vec<Pending> = vec![(PathBuf::new(), Rc::new(top), None)];
    let mut buf = vec![0u8; 256 * 1024];
    while let Some((rel, parent, name)) = stack.pop() {
        let dir_path = root.join(&rel);
        let fd = match name {
            None => parent,
            Some(n) => Rc::new(
                openat(&*parent, &n, dir_flags, Mode::empty()).map_err(|e| io(&dir_path, e))?,
            ),
        };
        let mut names: Vec<(std::ffi::CString, FileType)> = Vec::new();
        let rd = rustix::fs::Dir::read_from(&*fd).map_err(|e| io(&dir_path, e))?;
        for e in rd {
            let e = e.map_err(|e| io(&dir_path, e))?;
            let n = e.file_name();
            if n.to_bytes() == b"." || n.to_bytes() == b".." {
                continue;
            }
            names.push((n.to_owned(), e.file_type()));
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let mut subdirs = Vec::new();
        for (n, d_type) in names {
            let name = std::ffi::OsStr::from_bytes(n.to_bytes());
            if rel.as_os_str().is_empty() && name == MANIFEST {
                continue;
            }
            let r = rel.join(name);
            let p = root.join(&r);
            let path_bytes = r.as_os_str().as_encoded_bytes();
            h.update((path_bytes.len() as u64).to_le_bytes());
            h.update(path_bytes);
            let st = if d_type == FileType::Directory {
                None
            } else {
                Some(statat(&*fd, &n, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io(&p, e))?)
            };
            let ft = st
                .as_ref()
                .map_or(FileType::Directory, |s| FileType::from_raw_mode(s.st_mode));
            match ft {
                FileType::Symlink => {
                    let t = readlinkat(&*fd, &n, Vec::new()).map_err(|e| io(&p, e))?;
                    h.update(b"L");
                    h.update(t.as_bytes());
                    h.update([0]);
                }
                FileType::Directory => {
                    h.update(b"D");
                    subdirs.push((r, fd.clone(), Some(n)));
                }
                FileType::RegularFile => {
                    let st = st.expect("stat'ed: not a directory");
                    let mode = st.st_mode as u32;
                    h.update(if mode & 0o111 != 0 { b"X" } else { b"F" });
                    let stamp = Stamp {
                        dev: st.st_dev as u64,
                        ino: st.st_ino as u64,
                        size: st.st_size as u64,
                        mtime_ns: st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
                        ctime_ns: st.st_ctime as i128 * 1_000_000_000 + st.st_ctime_nsec as i128,
                        mode,
                        sha256: String::new(),
                    };
                    let rel_str = r.to_str();
                    let digest = match rel_str.and_then(|s| known(s, &stamp)) {
                        Some(d) => d,
                        None => {
                            let f = openat(
                                &*fd,
                                &n,
                                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                                Mode::empty(),
                            )
                            .map_err(|e| io(&p, e))?;
                            let mut file = fs::File::from(f);
                            let mut fh = Sha256::new();
                            loop {
                                let k = file.read(&mut buf).map_err(|e| Error::io(&p, e))?;
                                if k == 0 {
                                    break;
                                }
                                fh.update(&buf[..k]);
                            }
                            fh.finalize().into()
                        }
                    };
                    h.update(digest);
                    if let Some(s) = rel_str {
                        seen.insert(
                            s.to_owned(),
                            Stamp {
                                sha256: hex::encode(digest),
                                ..stamp
                            },
                        );
                    }
                }
                _ => h.update(b"S"),
            }
        }
        // Depth-first in sorted order: push in reverse so the first subdirectory is walked next.
        for s in subdirs.into_iter().rev() {
            stack.push(s);
        }
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// What a file looked like when its content was hashed: the inode's identity, size, times and mode. A
/// write through the filesystem changes `ctime` (which no system call can set back), a replacement
/// changes the inode, so an unchanged stamp means unchanged content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stamp {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) mtime_ns: i128,
    pub(crate) ctime_ns: i128,
    pub(crate) mode: u32,
    /// The content's sha256 (hex).
    pub(crate) sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_digest_sees_content_names_links_and_exec_bits() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        fs::create_dir_all(p.join("a/b")).unwrap();
        fs::write(p.join("a/b/x.js"), "1").unwrap();
        fs::write(p.join("y"), "2").unwrap();
        let d0 = tree_digest(p).unwrap();
        assert_eq!(d0, tree_digest(p).unwrap());
        fs::write(p.join(MANIFEST), "{}").unwrap();
        assert_eq!(
            d0,
            tree_digest(p).unwrap(),
            "the manifest is not part of it"
        );
        fs::write(p.join("a/b/x.js"), "2").unwrap();
        let d1 = tree_digest(p).unwrap();
        assert_ne!(d0, d1);
        fs::set_permissions(p.join("y"), fs::Permissions::from_mode(0o755)).unwrap();
        let d2 = tree_digest(p).unwrap();
        assert_ne!(d1, d2);
        std::os::unix::fs::symlink("y", p.join("z")).unwrap();
        assert_ne!(d2, tree_digest(p).unwrap());
    }

    #[test]
    fn store_keys_must_be_hashes() {
        let s = Store::new("/tmp/none".into());
        assert!(s.entry_dir("../../etc").is_err());
        assert!(s.entry_dir(&"a".repeat(64)).is_ok());
        assert!(s.entry_dir(&"A".repeat(64)).is_err());
    }
}
