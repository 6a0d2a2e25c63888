//! Provenance signals: facts about who published a package and how, each turned into a finding only when
//! it is a reason for caution. Registry facts come from [`RegistryInfo`]; install scripts and `setup.py`
//! are read from the unpacked artifact itself (what would run), not from the registry's description of it.

use std::path::Path;

use palisade_scan::doc::Pos;
use palisade_scan::{Finding, Location, RuleMeta, Severity};

use crate::fetch::{ArtifactKind, Day, RegistryInfo};
use crate::resolve::Resolution;
use crate::rules;
use crate::spec::Ecosystem;
use crate::typosquat;

/// Builds a finding of `rule`.
pub fn finding(
    rule: &RuleMeta,
    severity: Severity,
    subject: &str,
    message: String,
    fix: String,
    key: String,
) -> Finding {
    Finding {
        rule: rule.id,
        severity,
        message,
        fix,
        location: None,
        client: None,
        server: Some(subject.to_owned()),
        evidence: None,
        key,
    }
}

/// Line (1-based) of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> Option<(usize, usize)> {
    let at = text.find(needle)?;
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    Some((line, col))
}

fn located(mut f: Finding, path: &Path, text: &str, needle: &str) -> Finding {
    if let Some((line, column)) = line_of(text, needle) {
        f.location = Some(Location {
            path: path.to_path_buf(),
            start: Pos { line, column },
            end: Pos {
                line,
                column: column + needle.chars().count(),
            },
        });
    }
    f
}

/// A repository reference reduced to what can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// Host (`github.com`), or empty for a shorthand.
    pub host: String,
    /// Owner.
    pub owner: String,
    /// Repository name (without `.git`).
    pub name: String,
    /// Directory inside it, when one is named.
    pub directory: Option<String>,
}

/// Parses `git+https://github.com/o/r.git`, `https://github.com/o/r/tree/main/src/x`, `github:o/r`,
/// `o/r`, `git@github.com:o/r.git`.
pub fn parse_repo(url: &str, directory: Option<&str>) -> Option<Repo> {
    let mut s = url.trim().trim_start_matches("git+");
    for p in ["github:", "gitlab:", "bitbucket:"] {
        if let Some(rest) = s.strip_prefix(p) {
            let host = format!(
                "{}.{}",
                p.trim_end_matches(':'),
                if p == "bitbucket:" { "org" } else { "com" }
            );
            return parse_path(&host, rest, directory);
        }
    }
    if let Some(rest) = s.strip_prefix("git@") {
        let (host, path) = rest.split_once(':')?;
        return parse_path(host, path, directory);
    }
    if let Some(i) = s.find("://") {
        s = &s[i + 3..];
        let s = s.rsplit_once('@').map_or(s, |(_, h)| h).to_owned();
        let (host, path) = s.split_once('/')?;
        return parse_path(host, path, directory);
    }
    // npm's "owner/repo" shorthand means GitHub.
    if s.matches('/').count() == 1 && !s.contains(':') {
        return parse_path("github.com", s, directory);
    }
    None
}

fn parse_path(host: &str, path: &str, directory: Option<&str>) -> Option<Repo> {
    let mut parts = path.trim_matches('/').split('/');
    let owner = parts.next()?.to_owned();
    let name = parts.next()?.trim_end_matches(".git").to_owned();
    if owner.is_empty() || name.is_empty() {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    // `/tree/<branch>/<dir…>` (GitHub, GitLab `-/tree/`).
    let dir_from_url = match rest.as_slice() {
        ["tree" | "blob", _branch, dir @ ..] if !dir.is_empty() => Some(dir.join("/")),
        ["-", "tree" | "blob", _branch, dir @ ..] if !dir.is_empty() => Some(dir.join("/")),
        _ => None,
    };
    Some(Repo {
        host: host.to_ascii_lowercase(),
        owner,
        name,
        directory: directory.map(str::to_owned).or(dir_from_url),
    })
}

fn squash(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether the repository plausibly publishes `package`: its name, owner or directory relates to the
/// package's name or scope.
pub fn repo_matches(package: &str, repo: &Repo) -> bool {
    let (scope, base) = match package.strip_prefix('@').and_then(|s| s.split_once('/')) {
        Some((sc, b)) => (Some(squash(sc)), squash(b)),
        None => (None, squash(package)),
    };
    let related =
        |a: &str, b: &str| a.len() >= 3 && b.len() >= 3 && (a.contains(b) || b.contains(a));
    let name = squash(&repo.name);
    let owner = squash(&repo.owner);
    let dir = repo
        .directory
        .as_deref()
        .and_then(|d| d.trim_end_matches('/').rsplit('/').next())
        .map(squash);
    related(&base, &name)
        || scope
            .as_deref()
            .is_some_and(|s| s == owner || related(s, &name))
        || dir.as_deref().is_some_and(|d| related(&base, d))
        || related(&base, &owner)
}

/// Words in a `setup.py` that mean it does more than declare metadata, with what they mean.
const SETUP_PY_SIGNS: &[(&str, &str)] = &[
    ("subprocess", "runs processes"),
    ("os.system", "runs a shell command"),
    ("os.popen", "runs a shell command"),
    ("urllib", "uses the network"),
    ("requests.", "uses the network"),
    ("http.client", "uses the network"),
    ("socket", "uses sockets"),
    ("exec(", "executes dynamic code"),
    ("eval(", "evaluates dynamic code"),
    ("base64", "decodes encoded data"),
    ("__import__", "imports by computed name"),
    ("cmdclass", "overrides install commands"),
    (".ssh", "touches ~/.ssh"),
    ("os.environ", "reads the environment"),
];

/// Everything this module checks, for one audited package.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// `npm:x@1` etc., as shown.
    pub subject: &'a str,
    /// Ecosystem, when known.
    pub ecosystem: Option<Ecosystem>,
    /// Package name, when known.
    pub name: Option<&'a str>,
    /// Registry facts (registry specs only).
    pub registry: Option<&'a RegistryInfo>,
    /// The unpacked package.
    pub dir: &'a Path,
    /// What kind of artifact was unpacked.
    pub kind: ArtifactKind,
    /// The resolved tree, when there is one.
    pub resolution: Option<&'a Resolution>,
    /// Entries the unpacking skipped.
    pub skipped_links: &'a [String],
    /// Today (a parameter so tests are stable).
    pub today: Day,
}

/// The provenance findings.
pub fn check(i: &Inputs<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let subject = i.subject;
    // Install scripts, from the package's own package.json.
    let pj_path = i.dir.join("package.json");
    if let Ok(text) = std::fs::read_to_string(&pj_path)
        && let Ok(pj) = serde_json::from_str::<serde_json::Value>(&text)
    {
        let scripts = pj.get("scripts").and_then(|s| s.as_object());
        let mut any = false;
        for s in crate::npm::INSTALL_SCRIPTS {
            if let Some(cmd) = scripts.and_then(|m| m.get(*s)).and_then(|v| v.as_str()) {
                any = true;
                let short: String = cmd.chars().take(120).collect();
                let f = finding(
                    &rules::INSTALL_SCRIPT,
                    rules::INSTALL_SCRIPT.severity,
                    subject,
                    format!("`{s}` script runs at install: {short}"),
                    "palisade install never runs it (--ignore-scripts); with npx it runs with your rights, unsandboxed".into(),
                    format!("script:{s}"),
                );
                out.push(located(f, &pj_path, &text, &format!("\"{s}\"")));
            }
        }
        if !any && i.dir.join("binding.gyp").is_file() {
            out.push(finding(
                &rules::INSTALL_SCRIPT,
                rules::INSTALL_SCRIPT.severity,
                subject,
                "binding.gyp without an install script: npm runs `node-gyp rebuild` (a native build) at install".into(),
                "palisade install never runs it; the package may not work without its native part".into(),
                "script:node-gyp".into(),
            ));
        }
    }
    // setup.py code (sdists and directories; a wheel's setup.py is never run).
    if matches!(i.kind, ArtifactKind::Sdist | ArtifactKind::Directory) {
        let sp = i.dir.join("setup.py");
        if let Ok(text) = std::fs::read_to_string(&sp) {
            let mut what: Vec<&str> = Vec::new();
            let mut first: Option<&str> = None;
            for (needle, meaning) in SETUP_PY_SIGNS {
                if text.contains(needle) && !what.contains(meaning) {
                    what.push(meaning);
                    first.get_or_insert(needle);
                }
            }
            if let Some(needle) = first {
                let f = finding(
                    &rules::SETUP_PY_CODE,
                    rules::SETUP_PY_CODE.severity,
                    subject,
                    format!(
                        "setup.py {} (runs when the sdist is built or installed)",
                        what.join(", ")
                    ),
                    "install a wheel of this release, or read setup.py first".into(),
                    "setup.py".into(),
                );
                out.push(located(f, &sp, &text, needle));
            }
        }
    }
    // Typosquats.
    if let (Some(eco), Some(name)) = (i.ecosystem, i.name) {
        for l in typosquat::lookalikes(eco, name).into_iter().take(2) {
            let msg = match l.kind {
                "scope" => format!(
                    "`{name}` has the name of {} ({}) under another scope",
                    l.known.name, l.known.id
                ),
                _ => format!(
                    "`{name}` is {} edit{} away from the well-known {} ({})",
                    l.distance,
                    if l.distance == 1 { "" } else { "s" },
                    l.known.name,
                    l.known.id
                ),
            };
            let sev = if l.kind == "scope" {
                Severity::Medium
            } else {
                rules::TYPOSQUAT.severity
            };
            out.push(finding(
                &rules::TYPOSQUAT,
                sev,
                subject,
                msg,
                format!("if you meant {}, audit that name instead", l.known.name),
                format!("typosquat:{}", l.known.id),
            ));
        }
    }
    // Repository link.
    if let Some(r) = i.registry {
        match r.repository.as_deref() {
            None => out.push(finding(
                &rules::NO_REPOSITORY,
                rules::NO_REPOSITORY.severity,
                subject,
                "no repository link in the registry metadata".into(),
                rules::NO_REPOSITORY.fix.into(),
                "repository".into(),
            )),
            Some(url) => match parse_repo(url, r.repository_directory.as_deref()) {
                Some(repo) if repo_matches(&r.name, &repo) => {}
                Some(repo) => out.push(finding(
                    &rules::REPOSITORY_MISMATCH,
                    rules::REPOSITORY_MISMATCH.severity,
                    subject,
                    format!(
                        "the repository {}/{}/{} does not relate to the name {}",
                        repo.host, repo.owner, repo.name, r.name
                    ),
                    rules::REPOSITORY_MISMATCH.fix.into(),
                    "repository".into(),
                )),
                None => out.push(finding(
                    &rules::REPOSITORY_MISMATCH,
                    Severity::Low,
                    subject,
                    format!("the repository link {url:?} is not a URL palisade can read"),
                    rules::REPOSITORY_MISMATCH.fix.into(),
                    "repository".into(),
                )),
            },
        }
        if let Some(None) = &r.provenance {
            out.push(finding(
                &rules::NO_PROVENANCE,
                rules::NO_PROVENANCE.severity,
                subject,
                format!(
                    "{}@{} has no provenance attestation (dist.attestations)",
                    r.name, r.version
                ),
                rules::NO_PROVENANCE.fix.into(),
                "provenance".into(),
            ));
        }
        if let Some(first) = r.first_release {
            let age = i.today.0 - first.0;
            if (0..30).contains(&age) {
                out.push(finding(
                    &rules::NEW_PACKAGE,
                    rules::NEW_PACKAGE.severity,
                    subject,
                    format!(
                        "first published {first} ({age} day{} ago)",
                        if age == 1 { "" } else { "s" }
                    ),
                    rules::NEW_PACKAGE.fix.into(),
                    "age".into(),
                ));
            }
        }
        if let Some(p) = r.published {
            let age = i.today.0 - p.0;
            if (0..7).contains(&age) {
                out.push(finding(
                    &rules::FRESH_RELEASE,
                    rules::FRESH_RELEASE.severity,
                    subject,
                    format!(
                        "{} was published {p} ({age} day{} ago)",
                        r.version,
                        if age == 1 { "" } else { "s" }
                    ),
                    rules::FRESH_RELEASE.fix.into(),
                    "fresh".into(),
                ));
            }
        }
        if r.deprecated.is_some() || r.yanked {
            let msg = match (&r.deprecated, r.yanked) {
                (Some(m), true) => format!("{} is yanked: {m}", r.version),
                (None, true) => format!("{} is yanked", r.version),
                (Some(m), false) => format!("{} is deprecated: {m}", r.version),
                (None, false) => unreachable!(),
            };
            out.push(finding(
                &rules::DEPRECATED,
                if r.yanked {
                    Severity::High
                } else {
                    rules::DEPRECATED.severity
                },
                subject,
                msg,
                rules::DEPRECATED.fix.into(),
                "deprecated".into(),
            ));
        }
        if r.maintainers.is_empty() && r.publisher.is_none() {
            out.push(finding(
                &rules::NO_MAINTAINERS,
                rules::NO_MAINTAINERS.severity,
                subject,
                "the registry's answer lists no maintainers or publisher".into(),
                rules::NO_MAINTAINERS.fix.into(),
                "maintainers".into(),
            ));
        }
    }
    // Dependencies with install scripts.
    if let Some(res) = i.resolution {
        let with: Vec<String> = res
            .deps
            .iter()
            .filter(|d| d.has_install_script && !d.root)
            .map(|d| format!("{}@{}", d.name, d.version))
            .collect();
        if !with.is_empty() {
            let shown: Vec<&str> = with.iter().take(5).map(String::as_str).collect();
            out.push(finding(
                &rules::DEPENDENCY_INSTALL_SCRIPT,
                rules::DEPENDENCY_INSTALL_SCRIPT.severity,
                subject,
                format!(
                    "{} dependenc{} declare{} install scripts: {}{}",
                    with.len(),
                    if with.len() == 1 { "y" } else { "ies" },
                    if with.len() == 1 { "s" } else { "" },
                    shown.join(", "),
                    if with.len() > 5 { ", …" } else { "" }
                ),
                rules::DEPENDENCY_INSTALL_SCRIPT.fix.into(),
                "dependency-scripts".into(),
            ));
        }
    }
    if !i.skipped_links.is_empty() {
        out.push(finding(
            &rules::ARCHIVE_LINKS,
            rules::ARCHIVE_LINKS.severity,
            subject,
            format!(
                "{} link or special entr{} not unpacked: {}",
                i.skipped_links.len(),
                if i.skipped_links.len() == 1 {
                    "y"
                } else {
                    "ies"
                },
                i.skipped_links
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            rules::ARCHIVE_LINKS.fix.into(),
            "links".into(),
        ));
    }
    out
}

/// Releases per month over the package's life, for the report (`None` with fewer than two releases).
pub fn cadence(r: &RegistryInfo) -> Option<f64> {
    let (first, last) = (r.release_dates.first()?, r.release_dates.last()?);
    let days = (last.0 - first.0).max(1) as f64;
    (r.release_dates.len() >= 2).then(|| r.release_dates.len() as f64 / (days / 30.4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_forms_parse_and_relate() {
        let r = parse_repo(
            "git+https://github.com/modelcontextprotocol/servers.git",
            None,
        )
        .unwrap();
        assert_eq!(
            (r.owner.as_str(), r.name.as_str()),
            ("modelcontextprotocol", "servers")
        );
        assert!(repo_matches("@modelcontextprotocol/server-filesystem", &r));
        let r = parse_repo("https://github.com/geelen/mcp-remote", None).unwrap();
        assert!(repo_matches("mcp-remote", &r));
        let r = parse_repo(
            "https://github.com/modelcontextprotocol/servers/tree/main/src/fetch",
            None,
        )
        .unwrap();
        assert_eq!(r.directory.as_deref(), Some("src/fetch"));
        assert!(repo_matches("mcp-server-fetch", &r));
        assert!(repo_matches(
            "x-tool",
            &parse_repo("github:acme/x-tool", None).unwrap()
        ));
        assert!(repo_matches(
            "y-org-thing",
            &parse_repo("git@github.com:y-org/thing.git", None).unwrap()
        ));
        // A borrowed link: a popular project's repository on an unrelated package.
        let r = parse_repo("https://github.com/facebook/react", None).unwrap();
        assert!(!repo_matches("mcp-weather-helper", &r));
        assert!(parse_repo("not a url", None).is_none());
    }
}
