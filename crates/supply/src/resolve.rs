//! The dependency tree a package brings, resolved by the ecosystem's own resolver so that what is
//! checked is what would be installed:
//! * npm: `npm install --package-lock-only --ignore-scripts` in a scratch project that depends on exactly
//!   the audited version (or on the audited file); the resulting `package-lock.json` (v3) lists every
//!   package with its version, `resolved` URL, `integrity` and `hasInstallScript`. No code of the package
//!   runs, and no `node_modules` is written.
//! * PyPI: `pip install --dry-run --ignore-installed --report` for `NAME==VERSION` (or the audited wheel):
//!   pip's resolver picks every distribution for this interpreter and platform, and the report gives each
//!   one's version, download URL and sha256. Only metadata is read (sdists may be built to get it: that is
//!   pip's behaviour, and the report says which method ran). Index settings that widen where packages come
//!   from (`PIP_EXTRA_INDEX_URL`, `PIP_FIND_LINKS`) are removed: a second index is how dependency
//!   confusion happens.
//!
//! The resolution is a snapshot: versions are those the registry offered today, for this interpreter.
//! `palisade install` installs exactly this snapshot (`npm ci` on the lockfile; pip `--require-hashes`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use url::Url;

use crate::spec::Ecosystem;
use crate::{Error, Progress, Result};

/// One resolved package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// Ecosystem.
    pub ecosystem: Ecosystem,
    /// Name.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// Integrity (npm SRI, or `sha256:<hex>` for PyPI).
    pub integrity: Option<String>,
    /// Where it would be downloaded from.
    pub resolved: Option<String>,
    /// npm: the lockfile says it has install scripts.
    pub has_install_script: bool,
    /// Whether it is the audited package itself.
    pub root: bool,
    /// Its path in the tree (`node_modules/a/node_modules/b`), npm only.
    pub path: Option<String>,
}

/// A resolved tree.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// How it was resolved (`npm 11.19.1 --package-lock-only`), or why it was not.
    pub method: String,
    /// Every package, the audited one first.
    pub deps: Vec<Dep>,
    /// The npm lockfile or pip requirements that `install` will use.
    pub lockfile: Option<Vec<u8>>,
    /// False when only the package itself could be listed.
    pub complete: bool,
}

/// Where the external tools are and which registry they use.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `npm`.
    pub npm: PathBuf,
    /// A Python interpreter with pip.
    pub python: PathBuf,
    /// npm registry.
    pub npm_registry: Url,
    /// PyPI simple index (`https://pypi.org/simple`).
    pub pypi_index: Url,
}

impl Tools {
    /// `npm` and `python3` on `PATH` (`PALISADE_PYTHON` overrides the interpreter), for these registries.
    pub fn new(regs: &crate::fetch::Registries) -> Tools {
        let python = std::env::var_os("PALISADE_PYTHON")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("python3"));
        let simple = format!("{}/simple/", regs.pypi.as_str().trim_end_matches('/'));
        Tools {
            npm: PathBuf::from("npm"),
            python,
            npm_registry: regs.npm.clone(),
            pypi_index: Url::parse(&simple).unwrap_or_else(|_| regs.pypi.clone()),
        }
    }

    /// npm with a clean, explicit configuration: this registry, no scripts, no audit/fund chatter.
    pub fn npm_command(&self, cwd: &Path) -> Command {
        let mut c = Command::new(&self.npm);
        c.current_dir(cwd)
            .env("npm_config_registry", self.npm_registry.as_str())
            .env("npm_config_ignore_scripts", "true")
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false")
            .env("npm_config_update_notifier", "false")
            .env("npm_config_yes", "false")
            .env_remove("npm_config_omit_lockfile_registry_resolved")
            .stdin(Stdio::null());
        c
    }

    /// pip with one index and nothing else.
    pub fn pip_command(&self) -> Command {
        let mut c = Command::new(&self.python);
        c.args(["-m", "pip"])
            .env_remove("PIP_EXTRA_INDEX_URL")
            .env_remove("PIP_FIND_LINKS")
            .env_remove("PIP_NO_INDEX")
            .env("PIP_INDEX_URL", self.pypi_index.as_str())
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null());
        c
    }
}

/// Runs a command, returning stdout; the error carries the tail of stderr.
pub fn run(mut cmd: Command, tool: &str) -> Result<Vec<u8>> {
    let out = cmd.output().map_err(|e| Error::Tool {
        tool: tool.into(),
        message: format!("cannot start it ({e}); is it installed and on PATH?"),
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(6)..].join("\n  ");
        return Err(Error::Tool {
            tool: tool.into(),
            message: format!("{}: {tail}", out.status),
        });
    }
    Ok(out.stdout)
}

/// What to resolve for npm.
#[derive(Debug, Clone)]
pub enum NpmRoot<'a> {
    /// `name@version` from the registry.
    Registry {
        /// Name.
        name: &'a str,
        /// Version.
        version: &'a str,
    },
    /// A local tarball or directory (`file:`).
    File {
        /// Its name in the tree.
        name: &'a str,
        /// The path.
        path: &'a Path,
    },
}

/// Resolves an npm package's tree in `work` (an empty scratch directory).
pub fn npm_tree(
    tools: &Tools,
    root: NpmRoot<'_>,
    work: &Path,
    progress: &dyn Progress,
) -> Result<Resolution> {
    let (name, spec) = match &root {
        NpmRoot::Registry { name, version } => (*name, (*version).to_owned()),
        NpmRoot::File { name, path } => (*name, format!("file:{}", path.display())),
    };
    let manifest = json!({
        "name": "palisade-audit-scratch",
        "version": "0.0.0",
        "private": true,
        "dependencies": {name: spec},
    });
    std::fs::create_dir_all(work).map_err(|e| Error::io(work, e))?;
    std::fs::write(work.join("package.json"), manifest.to_string())
        .map_err(|e| Error::io(work.join("package.json"), e))?;
    progress.step("resolving the npm dependency tree");
    let version = run(
        {
            let mut c = tools.npm_command(work);
            c.arg("--version");
            c
        },
        "npm",
    )
    .map(|v| String::from_utf8_lossy(&v).trim().to_owned())
    .unwrap_or_else(|_| "?".into());
    let mut cmd = tools.npm_command(work);
    cmd.args([
        "install",
        "--package-lock-only",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--omit=dev",
        "--loglevel=error",
    ]);
    let r = run(cmd, "npm install --package-lock-only");
    progress.done();
    r?;
    let lock_path = work.join("package-lock.json");
    let lock = std::fs::read(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    let mut res = parse_npm_lock(&lock, name)?;
    res.method = format!("npm {version} install --package-lock-only --ignore-scripts");
    res.lockfile = Some(lock);
    Ok(res)
}

/// Reads a v2/v3 `package-lock.json` (`packages` map). The root project entry (`""`) is skipped; the
/// audited package is the top-level `node_modules/<name>`.
pub fn parse_npm_lock(lock: &[u8], root_name: &str) -> Result<Resolution> {
    let v: Value = serde_json::from_slice(lock).map_err(|e| Error::Tool {
        tool: "npm".into(),
        message: format!("package-lock.json is not JSON ({e})"),
    })?;
    let packages = v
        .get("packages")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::Tool {
            tool: "npm".into(),
            message: "package-lock.json has no `packages` (lockfileVersion 2 or 3 expected)".into(),
        })?;
    let mut deps = Vec::new();
    for (path, p) in packages {
        if path.is_empty() || p.get("link").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if p.get("dev").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let after = path.rsplit("node_modules/").next().unwrap_or(path);
                after.to_owned()
            });
        let Some(version) = p.get("version").and_then(Value::as_str) else {
            continue;
        };
        let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
        deps.push(Dep {
            ecosystem: Ecosystem::Npm,
            root: path == &format!("node_modules/{root_name}"),
            name,
            version: version.to_owned(),
            integrity: s("integrity"),
            resolved: s("resolved"),
            has_install_script: p.get("hasInstallScript").and_then(Value::as_bool) == Some(true),
            path: Some(path.clone()),
        });
    }
    deps.sort_by(|a, b| b.root.cmp(&a.root).then(a.path.cmp(&b.path)));
    Ok(Resolution {
        method: "package-lock.json".into(),
        deps,
        lockfile: None,
        complete: true,
    })
}

/// Resolves a Python distribution's tree with pip (dry run). `requirement` is `NAME==VERSION` or a wheel
/// path.
pub fn pypi_tree(
    tools: &Tools,
    requirement: &str,
    root_name: &str,
    progress: &dyn Progress,
) -> Result<Resolution> {
    progress.step("resolving the Python dependency tree (pip)");
    let version = run(
        {
            let mut c = tools.pip_command();
            c.arg("--version");
            c
        },
        "pip",
    )
    .map(|v| {
        String::from_utf8_lossy(&v)
            .split_whitespace()
            .nth(1)
            .unwrap_or("?")
            .to_owned()
    })
    .unwrap_or_else(|_| "?".into());
    let mut cmd = tools.pip_command();
    cmd.args([
        "install",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--report",
        "-",
        requirement,
    ]);
    let r = run(cmd, "pip install --dry-run");
    progress.done();
    let out = r?;
    let mut res = parse_pip_report(&out, root_name)?;
    res.method = format!(
        "pip {version} install --dry-run --report ({})",
        tools.python.display()
    );
    Ok(res)
}

/// Reads pip's installation report (`--report`, version 1).
pub fn parse_pip_report(report: &[u8], root_name: &str) -> Result<Resolution> {
    // pip may print warnings before the JSON on stdout in old versions; start at the first `{`.
    let start = report.iter().position(|b| *b == b'{').unwrap_or(0);
    let v: Value = serde_json::from_slice(&report[start..]).map_err(|e| Error::Tool {
        tool: "pip".into(),
        message: format!("the --report output is not JSON ({e})"),
    })?;
    let items = v
        .get("install")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Tool {
            tool: "pip".into(),
            message: "the report has no `install` list".into(),
        })?;
    let want = crate::spec::normalize_pypi(root_name);
    let mut deps = Vec::new();
    let mut requirements = String::new();
    for it in items {
        let name = it
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let version = it
            .pointer("/metadata/version")
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.is_empty() || version.is_empty() {
            continue;
        }
        let url = it
            .pointer("/download_info/url")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let sha = it
            .pointer("/download_info/archive_info/hashes/sha256")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                it.pointer("/download_info/archive_info/hash")
                    .and_then(Value::as_str)
                    .and_then(|h| h.strip_prefix("sha256="))
                    .map(str::to_owned)
            });
        let is_root = crate::spec::normalize_pypi(name) == want;
        if let Some(s) = &sha {
            if is_root && url.as_deref().is_some_and(|u| u.starts_with("file:")) {
                // The audited file itself: installed from the store by path, hash-checked there.
            } else {
                requirements.push_str(&format!("{name}=={version} --hash=sha256:{s}\n"));
            }
        }
        deps.push(Dep {
            ecosystem: Ecosystem::PyPI,
            root: is_root,
            name: name.to_owned(),
            version: version.to_owned(),
            integrity: sha.map(|s| format!("sha256:{s}")),
            resolved: url,
            has_install_script: false,
            path: None,
        });
    }
    deps.sort_by(|a, b| b.root.cmp(&a.root).then(a.name.cmp(&b.name)));
    Ok(Resolution {
        method: "pip --report".into(),
        deps,
        lockfile: Some(requirements.into_bytes()),
        complete: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_npm_v3_lockfile() {
        let lock = json!({
            "lockfileVersion": 3,
            "packages": {
                "": {"dependencies": {"mcp-remote": "0.1.15"}},
                "node_modules/mcp-remote": {"version": "0.1.15", "integrity": "sha512-a", "resolved": "https://r/x.tgz"},
                "node_modules/open": {"version": "10.1.0", "integrity": "sha512-b"},
                "node_modules/a/node_modules/esbuild": {"version": "0.25.0", "hasInstallScript": true},
                "node_modules/typescript": {"version": "5.0.0", "dev": true},
            }
        });
        let r = parse_npm_lock(lock.to_string().as_bytes(), "mcp-remote").unwrap();
        assert_eq!(r.deps.len(), 3, "{:?}", r.deps);
        assert!(r.deps[0].root && r.deps[0].name == "mcp-remote");
        let esb = r.deps.iter().find(|d| d.name == "esbuild").unwrap();
        assert!(esb.has_install_script);
    }

    #[test]
    fn reads_a_pip_report_into_hash_pinned_requirements() {
        let rep = json!({"version": "1", "install": [
            {"metadata": {"name": "mcp-server-fetch", "version": "2026.10.24"},
             "download_info": {"url": "https://files/x.whl", "archive_info": {"hashes": {"sha256": "aa"}}}},
            {"metadata": {"name": "httpx", "version": "0.28.1"},
             "download_info": {"url": "https://files/h.whl", "archive_info": {"hash": "sha256=bb"}}},
        ]});
        let r = parse_pip_report(rep.to_string().as_bytes(), "mcp_server_fetch").unwrap();
        assert!(r.deps[0].root);
        let req = String::from_utf8(r.lockfile.unwrap()).unwrap();
        assert!(req.contains("httpx==0.28.1 --hash=sha256:bb"), "{req}");
        assert!(
            req.contains("mcp-server-fetch==2026.10.24 --hash=sha256:aa"),
            "{req}"
        );
    }
}
