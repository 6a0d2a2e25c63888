//! The audit report as text (one screen, verdict first), JSON, or SARIF.
//!
//! # JSON (`palisade audit --format json`, version 1)
//! ```json
//! {
//!   "version": 1,
//!   "subject": "npm:mcp-remote@0.1.15",
//!   "verdict": {"level": "do not trust", "why": "1 advisory at high or above; …"},
//!   "package": {"ecosystem": "npm", "name": "mcp-remote", "version": "0.1.15", "kind": "npm tarball",
//!               "file": "mcp-remote-0.1.15.tgz", "bytes": 99790, "sha256": "…", "sri": "sha512-…",
//!               "verified_against": "sha512-…", "source": "https://registry.npmjs.org/…"},
//!   "registry": {"latest": "0.1.38", "maintainers": [], "publisher": null, "published": "2025-06-17",
//!                "first_release": "2025-03-01", "versions": 42, "releases_per_month": 3.1,
//!                "repository": "https://github.com/geelen/mcp-remote", "provenance": null,
//!                "deprecated": null, "license": "MIT"},
//!   "dependencies": {"method": "npm 11.19.1 install --package-lock-only --ignore-scripts",
//!                    "note": null, "count": 97,
//!                    "packages": [{"name": "express", "version": "4.21.2", "integrity": "sha512-…",
//!                                  "install_script": false}]},
//!   "advisories": {"sources": ["OSV database …"], "checked": 98, "not_checked": null,
//!                  "matches": [{"id": "GHSA-6xpm-ggf7-wc3p", "aliases": ["CVE-2025-6514"],
//!                               "package": "mcp-remote", "version": "0.1.15", "severity": "critical",
//!                               "severity_source": "advisory database: CRITICAL", "fixed_in": "0.1.16",
//!                               "summary": "…", "uncertain": false}]},
//!   "static_analysis": {"status": "not run", "detail": "…"},
//!   "summary": {"findings": 3, "critical": 1, "high": 0, "medium": 0, "low": 1, "info": 1},
//!   "findings": [{"rule": "known-vulnerability", "severity": "critical", "message": "…", "fix": "…",
//!                 "path": null, "line": null, "column": null, "evidence": "…", "fingerprint": "…"}]
//! }
//! ```
//! Fields are only ever added. `registry` is null for local files; `provenance` is the attestation's
//! predicate type, `false` when npm has none, null when not checked (PyPI).

use std::fmt::Write as _;
use std::path::Path;

use palisade_scan::report::{counts, sarif, severity_counts};
use palisade_scan::{Finding, Severity};
use serde_json::{Value, json};

use crate::audit::{AuditReport, Level, StaticStatus};

/// ANSI styling, or none: the one every palisade report uses.
pub use palisade_scan::render::Style;

fn kib(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    } else {
        format!("{} KiB", n.div_ceil(1024))
    }
}

fn short_hash(s: &str) -> String {
    if s.len() > 20 {
        format!("{}…", &s[..20])
    } else {
        s.to_owned()
    }
}

/// The text report (verdict first; fits one screen for a typical package).
pub fn text(r: &AuditReport, style: Style) -> String {
    let mut o = String::new();
    let (code, label) = match r.verdict.level {
        Level::Trust => ("1;32", "TRUST"),
        Level::Review => ("1;33", "REVIEW"),
        Level::DoNotTrust => ("1;31", "DO NOT TRUST"),
    };
    let _ = writeln!(
        o,
        "{}  {}: {}",
        style.paint(code, label),
        style.paint("1", &r.subject),
        r.verdict.why
    );
    o.push('\n');
    let f = &r.fetched;
    let row = |o: &mut String, k: &str, v: String| {
        let _ = writeln!(o, "  {:<12} {v}", style.paint("2", k));
    };
    let size = if f.bytes.is_empty() {
        format!("{} files", r.unpacked.files)
    } else {
        kib(f.bytes.len())
    };
    row(
        &mut o,
        "package",
        format!(
            "{} {} ({}) · {} {} · {size}",
            f.name.as_deref().unwrap_or("?"),
            f.version.as_deref().unwrap_or("?"),
            f.ecosystem.map_or("unknown ecosystem", |e| e.osv_name()),
            f.kind.as_str(),
            f.filename
        ),
    );
    row(
        &mut o,
        "integrity",
        match &f.verified_against {
            Some(v) => format!(
                "{} verified · sha256 {}",
                short_hash(v),
                short_hash(&f.sha256)
            ),
            None => format!(
                "local file, nothing published to verify against · sha256 {}",
                short_hash(&f.sha256)
            ),
        },
    );
    if let Some(reg) = &f.registry {
        let today = crate::fetch::Day::today();
        let ago = |d: crate::fetch::Day| format!("{d} ({} days ago)", today.0 - d.0);
        let mut parts = Vec::new();
        if let Some(p) = reg.published {
            parts.push(format!("published {}", ago(p)));
        }
        if let Some(fr) = reg.first_release {
            parts.push(format!("first release {fr}"));
        }
        parts.push(format!("{} versions", reg.version_count));
        if let Some(c) = crate::signals::cadence(reg) {
            parts.push(format!("~{c:.1} releases/month"));
        }
        if let Some(l) = &reg.latest
            && *l != reg.version
        {
            parts.push(format!("latest {l}"));
        }
        row(&mut o, "history", parts.join(" · "));
        let who = match (&reg.publisher, reg.maintainers.is_empty()) {
            (Some(p), _) => format!(
                "published by {p}; maintainers: {}",
                list_or_none(&reg.maintainers)
            ),
            (None, false) => list_or_none(&reg.maintainers),
            (None, true) => "not listed by the registry".into(),
        };
        row(&mut o, "maintainers", who);
        row(
            &mut o,
            "repository",
            match &reg.repository {
                Some(u) => u.clone(),
                None => "none declared".into(),
            },
        );
        row(
            &mut o,
            "provenance",
            match &reg.provenance {
                Some(Some(p)) => format!("attested ({p})"),
                Some(None) => "no attestation".into(),
                None => "not checked (PyPI attestations are not read yet)".into(),
            },
        );
    } else {
        row(
            &mut o,
            "registry",
            "local file: no registry metadata".into(),
        );
    }
    row(
        &mut o,
        "dependencies",
        match (&r.resolution, &r.resolution_note) {
            (Some(res), _) => {
                let scripts = res.deps.iter().filter(|d| d.has_install_script).count();
                format!(
                    "{} packages resolved ({}){}",
                    res.deps.len(),
                    res.method,
                    if scripts > 0 {
                        format!(" · {scripts} with install scripts")
                    } else {
                        String::new()
                    }
                )
            }
            (None, Some(n)) => n.clone(),
            (None, None) => "not resolved".into(),
        },
    );
    let a = &r.advisories;
    row(
        &mut o,
        "advisories",
        if a.sources.is_empty() {
            format!(
                "NOT CHECKED: {}",
                a.not_checked.as_deref().unwrap_or("no advisory source")
            )
        } else {
            let mut s = format!(
                "{} package versions checked against {} · {} match{}",
                a.checked,
                a.sources.join(", "),
                a.matches.len(),
                if a.matches.len() == 1 { "" } else { "es" }
            );
            if let Some(n) = &a.not_checked {
                let _ = write!(s, " · NOT CHECKED: {n}");
            }
            s
        },
    );
    row(
        &mut o,
        "static",
        match &r.static_analysis {
            StaticStatus::Ran(n) => format!("ran ({n})"),
            StaticStatus::NotRun(why) => format!("not run: {why}"),
            StaticStatus::Failed(why) => format!("FAILED: {why}"),
        },
    );
    o.push('\n');
    if r.findings.is_empty() {
        let _ = writeln!(o, "  {}", style.paint("32", "no findings"));
    }
    for f in &r.findings {
        let _ = writeln!(o, "  {}  {}", style.severity(f.severity), f.message);
        let at = f
            .location
            .as_ref()
            .map(|l| {
                let p = l.path.strip_prefix(&r.package_dir).unwrap_or(&l.path);
                format!("{}:{} · ", p.display(), l.start.line)
            })
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  {:<8}  {}",
            "",
            style.paint("2", &format!("{at}{} · fix: {}", f.rule, f.fix))
        );
    }
    let by = severity_counts(&r.findings);
    let _ = writeln!(
        o,
        "\n{} finding{}{}",
        r.findings.len(),
        if r.findings.len() == 1 { "" } else { "s" },
        if by.is_empty() {
            String::new()
        } else {
            format!(": {by}")
        }
    );
    o
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none listed".into()
    } else if v.len() > 6 {
        format!("{} (+{} more)", v[..6].join(", "), v.len() - 6)
    } else {
        v.join(", ")
    }
}

/// A finding's JSON: the fields every palisade report gives one, with the path relative to the package.
fn finding_json(f: &Finding, base: &Path) -> Value {
    let path = f.location.as_ref().map(|l| {
        l.path
            .strip_prefix(base)
            .unwrap_or(&l.path)
            .display()
            .to_string()
    });
    palisade_scan::report::finding_json(f, path)
}

/// The JSON document (see the [module docs](self)).
pub fn json(r: &AuditReport) -> Value {
    let f = &r.fetched;
    let registry = f.registry.as_ref().map(|reg| {
        json!({
            "latest": reg.latest,
            "maintainers": reg.maintainers,
            "publisher": reg.publisher,
            "published": reg.published.map(|d| d.to_string()),
            "first_release": reg.first_release.map(|d| d.to_string()),
            "versions": reg.version_count,
            "releases_per_month": crate::signals::cadence(reg).map(|c| (c * 10.0).round() / 10.0),
            "repository": reg.repository,
            "provenance": match &reg.provenance {
                Some(Some(p)) => json!(p),
                Some(None) => json!(false),
                None => Value::Null,
            },
            "deprecated": reg.deprecated,
            "yanked": reg.yanked,
            "license": reg.license,
        })
    });
    let deps = json!({
        "method": r.resolution.as_ref().map(|x| x.method.clone()),
        "note": r.resolution_note,
        "count": r.resolution.as_ref().map(|x| x.deps.len()),
        "packages": r.resolution.as_ref().map(|x| x.deps.iter().map(|d| json!({
            "name": d.name, "version": d.version, "integrity": d.integrity,
            "install_script": d.has_install_script, "root": d.root,
        })).collect::<Vec<_>>()),
    });
    let a = &r.advisories;
    let matches: Vec<Value> = a
        .matches
        .iter()
        .map(|m| {
            json!({
                "id": m.vuln.id,
                "aliases": m.vuln.aliases,
                "package": m.query.name,
                "version": m.query.version,
                "severity": m.severity.as_str(),
                "severity_source": m.severity_source,
                "fixed_in": m.fixed_in,
                "summary": m.vuln.summary,
                "uncertain": m.uncertain,
            })
        })
        .collect();
    let (status, detail) = match &r.static_analysis {
        StaticStatus::Ran(n) => ("ran", n.clone()),
        StaticStatus::NotRun(w) => ("not run", w.clone()),
        StaticStatus::Failed(w) => ("failed", w.clone()),
    };
    let c = counts(&r.findings);
    let mut summary = json!({"findings": r.findings.len()});
    for s in Severity::ALL {
        summary[s.as_str()] = json!(c[s as usize]);
    }
    json!({
        "version": 1,
        "subject": r.subject,
        "verdict": {"level": r.verdict.level.as_str(), "why": r.verdict.why},
        "package": {
            "ecosystem": f.ecosystem.map(|e| e.osv_name()),
            "name": f.name,
            "version": f.version,
            "kind": f.kind.as_str(),
            "file": f.filename,
            "bytes": f.bytes.len(),
            "sha256": f.sha256,
            "sri": f.sri,
            "verified_against": f.verified_against,
            "source": f.source,
        },
        "registry": registry,
        "dependencies": deps,
        "advisories": {
            "sources": a.sources,
            "checked": a.checked,
            "not_checked": a.not_checked,
            "matches": matches,
        },
        "static_analysis": {"status": status, "detail": detail},
        "summary": summary,
        "findings": r.findings.iter().map(|x| finding_json(x, &r.package_dir)).collect::<Vec<_>>(),
    })
}

/// The SARIF log: every supply rule (and the analyzer's) declared, findings with fingerprints; locations
/// are relative to the unpacked package.
pub fn sarif(r: &AuditReport) -> Value {
    let rules = r.rules();
    sarif::log(
        sarif::Tool {
            name: "palisade",
            version: env!("CARGO_PKG_VERSION"),
            information_uri: "https://example.invalid/palisade/docs/audit.md",
        },
        &rules,
        &r.findings,
        Some(&r.package_dir),
    )
}
