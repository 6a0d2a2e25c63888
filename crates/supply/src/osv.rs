//! Advisories in the OSV format (<https://ossf.github.io/osv-schema/>), the common schema of GitHub, PyPA
//! and npm advisories, from two sources:
//! * [`Db`]: a local directory in the layout of OSV's per-ecosystem dumps (`DIR/npm/*.json`,
//!   `DIR/PyPI/*.json`, one record per file; `--advisory-db DIR`);
//! * [`Online`]: the OSV API (`POST /v1/querybatch` for ids, `GET /v1/vulns/<id>` for records).
//!
//! Matching follows the schema: a version is affected when it is listed in `affected[].versions`, or falls
//! in a `SEMVER`/`ECOSYSTEM` range, walking the sorted events (`introduced` opens, `fixed` closes at that
//! version, `last_affected` closes after it; `introduced: "0"` is the start of time). `GIT` ranges are not
//! evaluated (a package version has no commit here). Withdrawn records never match.
//!
//! Severity: the GitHub database's `database_specific.severity` when present (LOW/MODERATE/HIGH/CRITICAL),
//! else a CVSS v3 base score computed from the vector, else (a v4 vector only, or nothing) "high" with a
//! note that the record states no severity palisade can score: unknown is not treated as harmless.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use palisade_scan::Severity;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use crate::net::Net;
use crate::spec::Ecosystem;
use crate::version::compare;
use crate::{Error, Result};

/// One OSV record (the fields palisade reads; everything else is kept in `extra`-free form).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Vuln {
    /// `GHSA-…`, `PYSEC-…`, `CVE-…`.
    pub id: String,
    /// Other ids of the same issue.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One line.
    #[serde(default)]
    pub summary: Option<String>,
    /// Markdown.
    #[serde(default)]
    pub details: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub modified: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub published: Option<String>,
    /// Set when the record was withdrawn.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// Affected packages and versions.
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// CVSS vectors.
    #[serde(default)]
    pub severity: Vec<SeverityEntry>,
    /// Database-specific fields (GitHub: `severity`, `cwe_ids`).
    #[serde(default)]
    pub database_specific: Option<Value>,
    /// Links.
    #[serde(default)]
    pub references: Vec<Value>,
}

/// `affected[]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Affected {
    /// The package.
    #[serde(default)]
    pub package: Option<Package>,
    /// Version ranges.
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Explicit versions.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Ecosystem-specific data.
    #[serde(default)]
    pub ecosystem_specific: Option<Value>,
    /// Database-specific data.
    #[serde(default)]
    pub database_specific: Option<Value>,
}

/// `affected[].package`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Package {
    /// `npm`, `PyPI`, …
    pub ecosystem: String,
    /// Name.
    pub name: String,
}

/// `affected[].ranges[]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Range {
    /// `SEMVER`, `ECOSYSTEM`, `GIT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Events.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One range event (exactly one field set).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
pub struct Event {
    /// Opens the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduced: Option<String>,
    /// Closes it at this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    /// Closes it after this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_affected: Option<String>,
    /// An upper limit (git ranges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

/// `severity[]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct SeverityEntry {
    /// `CVSS_V3`, `CVSS_V4`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector.
    pub score: String,
}

/// A package version to check.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Query {
    /// Ecosystem.
    pub ecosystem: Ecosystem,
    /// Name.
    pub name: String,
    /// Exact version.
    pub version: String,
}

/// An advisory that applies to a package version.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The package version.
    pub query: Query,
    /// The record.
    pub vuln: Vuln,
    /// Severity as palisade ranks it.
    pub severity: Severity,
    /// Where the severity came from (`GitHub: CRITICAL`, `CVSS 3.1 9.6`, `not stated`).
    pub severity_source: String,
    /// The lowest fixed version above the queried one, when the record names one.
    pub fixed_in: Option<String>,
    /// The range could not be evaluated exactly (a version that does not parse): listed to be safe.
    pub uncertain: bool,
}

impl Match {
    /// The id and its CVE alias, for display (`GHSA-… (CVE-…)`).
    pub fn ids(&self) -> String {
        let cve = self
            .vuln
            .aliases
            .iter()
            .find(|a| a.starts_with("CVE-") && **a != self.vuln.id);
        match cve {
            Some(c) => format!("{} ({c})", self.vuln.id),
            None => self.vuln.id.clone(),
        }
    }
}

/// Whether `version` of `ecosystem` is affected by `a`: `Some(fixed_in)` when it is, with `uncertain`
/// set when a version could not be compared.
pub fn affects(
    a: &Affected,
    ecosystem: Ecosystem,
    version: &str,
) -> Option<(Option<String>, bool)> {
    if a.versions.iter().any(|v| v == version) {
        let fixed = a
            .ranges
            .iter()
            .flat_map(|r| &r.events)
            .filter_map(|e| e.fixed.clone())
            .find(|f| compare(ecosystem, f, version) == Some(Ordering::Greater));
        return Some((fixed, false));
    }
    for r in &a.ranges {
        if r.kind != "SEMVER" && r.kind != "ECOSYSTEM" {
            continue;
        }
        let cmp = |a: &str, b: &str| -> Option<Ordering> {
            if a == "0" {
                return Some(if b == "0" {
                    Ordering::Equal
                } else {
                    Ordering::Less
                });
            }
            if b == "0" {
                return Some(Ordering::Greater);
            }
            compare(ecosystem, a, b)
        };
        let mut events: Vec<(&str, &Event)> = r
            .events
            .iter()
            .filter_map(|e| {
                let v = e
                    .introduced
                    .as_deref()
                    .or(e.fixed.as_deref())
                    .or(e.last_affected.as_deref())?;
                Some((v, e))
            })
            .collect();
        let mut uncertain = false;
        events.sort_by(|a, b| {
            cmp(a.0, b.0).unwrap_or_else(|| {
                uncertain = true;
                Ordering::Equal
            })
        });
        let mut affected = false;
        let mut fixed_after: Option<String> = None;
        for (v, e) in &events {
            let c = cmp(version, v);
            if c.is_none() {
                uncertain = true;
            }
            if e.introduced.is_some() && matches!(c, Some(Ordering::Greater | Ordering::Equal)) {
                affected = true;
            }
            if e.fixed.is_some() {
                match c {
                    Some(Ordering::Greater | Ordering::Equal) => affected = false,
                    Some(Ordering::Less) if affected && fixed_after.is_none() => {
                        fixed_after = Some(v.to_string());
                    }
                    _ => {}
                }
            }
            if e.last_affected.is_some() && c == Some(Ordering::Greater) {
                affected = false;
            }
        }
        if affected {
            return Some((fixed_after, uncertain));
        }
        if uncertain && events.iter().any(|(_, e)| e.introduced.is_some()) {
            // Could not decide: report it rather than stay silent.
            return Some((None, true));
        }
    }
    None
}

/// Matches `vulns` against one package version.
pub fn matches(vulns: &[Vuln], q: &Query) -> Vec<Match> {
    let want = q.ecosystem.normalize(&q.name);
    let mut out = Vec::new();
    for v in vulns {
        if v.withdrawn.is_some() {
            continue;
        }
        let mut hit: Option<(Option<String>, bool)> = None;
        for a in &v.affected {
            let Some(p) = &a.package else { continue };
            if !p.ecosystem.eq_ignore_ascii_case(q.ecosystem.osv_name())
                || q.ecosystem.normalize(&p.name) != want
            {
                continue;
            }
            if let Some((fixed, uncertain)) = affects(a, q.ecosystem, &q.version) {
                hit = Some(match hit {
                    Some((f0, u0)) => (f0.or(fixed), u0 && uncertain),
                    None => (fixed, uncertain),
                });
            }
        }
        if let Some((fixed_in, uncertain)) = hit {
            let (severity, severity_source) = severity_of(v);
            out.push(Match {
                query: q.clone(),
                vuln: v.clone(),
                severity,
                severity_source,
                fixed_in,
                uncertain,
            });
        }
    }
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.vuln.id.cmp(&b.vuln.id)));
    out
}

/// palisade's severity for a record, and where it came from.
pub fn severity_of(v: &Vuln) -> (Severity, String) {
    if let Some(s) = v
        .database_specific
        .as_ref()
        .and_then(|d| d.get("severity"))
        .and_then(Value::as_str)
    {
        let sev = match s.to_ascii_uppercase().as_str() {
            "CRITICAL" => Some(Severity::Critical),
            "HIGH" => Some(Severity::High),
            "MODERATE" | "MEDIUM" => Some(Severity::Medium),
            "LOW" => Some(Severity::Low),
            _ => None,
        };
        if let Some(sev) = sev {
            return (sev, format!("advisory database: {s}"));
        }
    }
    for s in &v.severity {
        if s.kind == "CVSS_V3"
            && let Some(score) = cvss3_base(&s.score)
        {
            let sev = if score >= 9.0 {
                Severity::Critical
            } else if score >= 7.0 {
                Severity::High
            } else if score >= 4.0 {
                Severity::Medium
            } else if score > 0.0 {
                Severity::Low
            } else {
                Severity::Info
            };
            return (sev, format!("CVSS 3 base {score:.1}"));
        }
    }
    (
        Severity::High,
        "not stated in a form palisade scores; treated as high".into(),
    )
}

/// The CVSS v3.x base score of a vector (`CVSS:3.1/AV:N/AC:L/…`), per the FIRST specification.
pub fn cvss3_base(vector: &str) -> Option<f64> {
    let mut m: HashMap<&str, &str> = HashMap::new();
    let mut parts = vector.split('/');
    let head = parts.next()?;
    if !head.starts_with("CVSS:3") {
        return None;
    }
    for p in parts {
        let (k, v) = p.split_once(':')?;
        m.insert(k, v);
    }
    let scope_changed = match *m.get("S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let av = match *m.get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match *m.get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (*m.get("PR")?, scope_changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match *m.get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |k: &str| -> Option<f64> {
        match *m.get(k)? {
            "H" => Some(0.56),
            "L" => Some(0.22),
            "N" => Some(0.0),
            _ => None,
        }
    };
    let iss = 1.0 - (1.0 - cia("C")?) * (1.0 - cia("I")?) * (1.0 - cia("A")?);
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if scope_changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Some(roundup(raw))
}

/// CVSS 3.1 Roundup: the smallest one-decimal number ≥ x.
fn roundup(x: f64) -> f64 {
    let i = (x * 100_000.0).round() as i64;
    if i % 10_000 == 0 {
        i as f64 / 100_000.0
    } else {
        ((i / 10_000) + 1) as f64 / 10.0
    }
}

/// Where advisories come from.
pub trait Source {
    /// One line for the report (`OSV database /data/osv (2 ecosystems, 8 records)`).
    fn describe(&self) -> String;
    /// The advisories affecting each query (same order).
    fn query(&self, queries: &[Query]) -> Result<Vec<Vec<Match>>>;
}

/// A local OSV dump directory.
#[derive(Debug, Clone)]
pub struct Db {
    dir: PathBuf,
    by_package: BTreeMap<(Ecosystem, String), Vec<Vuln>>,
    records: usize,
}

impl Db {
    /// Loads `DIR/npm/*.json` and `DIR/PyPI/*.json` (other ecosystems' directories are ignored). A
    /// directory with neither is an error: it is probably the wrong one.
    pub fn load(dir: &Path) -> Result<Db> {
        if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "--advisory-db {}: not a directory; pass a directory with OSV records under npm/ and PyPI/ (the layout of OSV's per-ecosystem dumps, unzipped)",
                dir.display()
            )));
        }
        let mut db = Db {
            dir: dir.to_path_buf(),
            by_package: BTreeMap::new(),
            records: 0,
        };
        let mut found_eco = false;
        for eco in [Ecosystem::Npm, Ecosystem::PyPI] {
            let sub = dir.join(eco.osv_name());
            let Ok(rd) = std::fs::read_dir(&sub) else {
                continue;
            };
            found_eco = true;
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_none_or(|x| x != "json") {
                    continue;
                }
                let text = std::fs::read_to_string(&p).map_err(|err| Error::io(&p, err))?;
                let v: Vuln = serde_json::from_str(&text).map_err(|err| {
                    Error::Usage(format!(
                        "{}: not an OSV record ({err}); fix or remove the file",
                        p.display()
                    ))
                })?;
                db.records += 1;
                let mut seen = std::collections::BTreeSet::new();
                for a in &v.affected {
                    if let Some(pk) = &a.package
                        && pk.ecosystem.eq_ignore_ascii_case(eco.osv_name())
                    {
                        let key = (eco, eco.normalize(&pk.name));
                        if seen.insert(key.clone()) {
                            db.by_package.entry(key).or_default().push(v.clone());
                        }
                    }
                }
            }
        }
        if !found_eco {
            return Err(Error::Usage(format!(
                "--advisory-db {}: has neither npm/ nor PyPI/; OSV dumps are laid out as DIR/<ecosystem>/<id>.json",
                dir.display()
            )));
        }
        Ok(db)
    }

    /// Number of records loaded.
    pub fn records(&self) -> usize {
        self.records
    }
}

impl Source for Db {
    fn describe(&self) -> String {
        format!(
            "OSV database {} ({} record{})",
            self.dir.display(),
            self.records,
            if self.records == 1 { "" } else { "s" }
        )
    }

    fn query(&self, queries: &[Query]) -> Result<Vec<Vec<Match>>> {
        Ok(queries
            .iter()
            .map(|q| {
                self.by_package
                    .get(&(q.ecosystem, q.ecosystem.normalize(&q.name)))
                    .map(|v| matches(v, q))
                    .unwrap_or_default()
            })
            .collect())
    }
}

/// The OSV API.
#[derive(Debug)]
pub struct Online<'a> {
    base: Url,
    net: &'a Net,
}

impl<'a> Online<'a> {
    /// The API at `base` (`https://api.osv.dev`).
    pub fn new(base: Url, net: &'a Net) -> Online<'a> {
        Online { base, net }
    }

    fn endpoint(&self, path: &str) -> Result<Url> {
        let b = self.base.as_str().trim_end_matches('/');
        Url::parse(&format!("{b}{path}")).map_err(|e| Error::Usage(format!("bad --osv-url: {e}")))
    }
}

/// Characters escaped in an advisory id in a URL path (ids are `GHSA-…`, `PYSEC-2024-1`…).
const ID_ESCAPE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The public OSV API.
pub const DEFAULT_OSV_URL: &str = "https://api.osv.dev";

impl Source for Online<'_> {
    fn describe(&self) -> String {
        format!("OSV API {}", self.base.as_str().trim_end_matches('/'))
    }

    fn query(&self, queries: &[Query]) -> Result<Vec<Vec<Match>>> {
        let batch_url = self.endpoint("/v1/querybatch")?;
        let mut ids_per_query: Vec<Vec<String>> = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(1000) {
            let body = json!({"queries": chunk.iter().map(|q| json!({
                "package": {"name": q.name, "ecosystem": q.ecosystem.osv_name()},
                "version": q.version,
            })).collect::<Vec<_>>()});
            let resp = self.net.post_json(&batch_url, &body)?;
            let results = resp
                .get("results")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::Http {
                    url: batch_url.to_string(),
                    message: "the answer has no `results` array".into(),
                })?;
            if results.len() != chunk.len() {
                return Err(Error::Http {
                    url: batch_url.to_string(),
                    message: format!(
                        "asked about {} packages, got {} results",
                        chunk.len(),
                        results.len()
                    ),
                });
            }
            for r in results {
                if r.get("next_page_token").is_some() {
                    return Err(Error::Http {
                        url: batch_url.to_string(),
                        message: "the answer is paginated (more advisories than one page); palisade does not follow pages yet, so the result would be incomplete".into(),
                    });
                }
                ids_per_query.push(
                    r.get("vulns")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| {
                                    v.get("id").and_then(Value::as_str).map(str::to_owned)
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                );
            }
        }
        let mut cache: HashMap<String, Vuln> = HashMap::new();
        let mut out = Vec::with_capacity(queries.len());
        for (q, ids) in queries.iter().zip(ids_per_query) {
            let mut vulns = Vec::new();
            for id in ids {
                if !cache.contains_key(&id) {
                    let url = self.endpoint(&format!(
                        "/v1/vulns/{}",
                        percent_encoding::utf8_percent_encode(&id, ID_ESCAPE)
                    ))?;
                    let v = self.net.get_json(&url)?.ok_or_else(|| Error::Http {
                        url: url.to_string(),
                        message: format!("advisory {id} was listed but cannot be fetched"),
                    })?;
                    let v: Vuln = serde_json::from_value(v).map_err(|e| Error::Http {
                        url: url.to_string(),
                        message: format!("not an OSV record ({e})"),
                    })?;
                    cache.insert(id.clone(), v);
                }
                vulns.push(cache[&id].clone());
            }
            // The API already matched; matching again applies palisade's own range logic and severity,
            // and drops records whose ranges do not in fact cover the version.
            let mut m = matches(&vulns, q);
            // Records the API lists that palisade cannot evaluate (only GIT ranges for this package)
            // are kept, flagged uncertain, rather than lose a reported vulnerability. Records palisade
            // did evaluate and found not to cover the version are dropped.
            for v in &vulns {
                if v.withdrawn.is_some() || m.iter().any(|x| x.vuln.id == v.id) {
                    continue;
                }
                let evaluable = v.affected.iter().any(|a| {
                    a.package.as_ref().is_some_and(|p| {
                        p.ecosystem.eq_ignore_ascii_case(q.ecosystem.osv_name())
                            && q.ecosystem.normalize(&p.name) == q.ecosystem.normalize(&q.name)
                    }) && (!a.versions.is_empty()
                        || a.ranges
                            .iter()
                            .any(|r| r.kind == "SEMVER" || r.kind == "ECOSYSTEM"))
                });
                if !evaluable {
                    let (severity, severity_source) = severity_of(v);
                    m.push(Match {
                        query: q.clone(),
                        vuln: v.clone(),
                        severity,
                        severity_source,
                        fixed_in: None,
                        uncertain: true,
                    });
                }
            }
            out.push(m);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(eco: &str, name: &str, events: Value) -> Vuln {
        serde_json::from_value(json!({
            "id": "X-1", "aliases": ["CVE-1"], "modified": "2025-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": eco, "name": name},
                          "ranges": [{"type": "ECOSYSTEM", "events": events}]}],
        }))
        .unwrap()
    }

    fn q(eco: Ecosystem, name: &str, v: &str) -> Query {
        Query {
            ecosystem: eco,
            name: name.into(),
            version: v.into(),
        }
    }

    #[test]
    fn introduced_fixed_ranges_match_inside_only() {
        let v = rec(
            "npm",
            "mcp-remote",
            json!([{"introduced": "0.0.5"}, {"fixed": "0.1.16"}]),
        );
        let m = matches(
            std::slice::from_ref(&v),
            &q(Ecosystem::Npm, "mcp-remote", "0.1.15"),
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].fixed_in.as_deref(), Some("0.1.16"));
        for outside in ["0.0.4", "0.1.16", "1.0.0"] {
            assert!(
                matches(
                    std::slice::from_ref(&v),
                    &q(Ecosystem::Npm, "mcp-remote", outside)
                )
                .is_empty(),
                "{outside}"
            );
        }
    }

    #[test]
    fn last_affected_and_multiple_ranges() {
        // server-filesystem: <= 0.6.2, and 2025.1.14 up to (not including) 2025.7.1.
        let v: Vuln = serde_json::from_value(json!({
            "id": "GHSA-q66q-fx2p-7w4m",
            "affected": [
                {"package": {"ecosystem": "npm", "name": "@modelcontextprotocol/server-filesystem"},
                 "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"last_affected": "0.6.2"}]}]},
                {"package": {"ecosystem": "npm", "name": "@modelcontextprotocol/server-filesystem"},
                 "ranges": [{"type": "SEMVER", "events": [{"introduced": "2025.1.14"}, {"fixed": "2025.7.1"}]}]},
            ],
        }))
        .unwrap();
        let name = "@modelcontextprotocol/server-filesystem";
        for (ver, hit) in [
            ("0.5.1", true),
            ("0.6.2", true),
            ("0.6.3", false),
            ("2025.1.14", true),
            ("2025.3.28", true),
            ("2025.7.1", false),
            ("2026.8.31", false),
        ] {
            assert_eq!(
                !matches(std::slice::from_ref(&v), &q(Ecosystem::Npm, name, ver)).is_empty(),
                hit,
                "{ver}"
            );
        }
    }

    #[test]
    fn pypi_names_normalize_and_pep440_orders() {
        let v = rec(
            "PyPI",
            "mcp_server_git",
            json!([{"introduced": "0"}, {"fixed": "2025.12.18"}]),
        );
        assert_eq!(
            matches(
                std::slice::from_ref(&v),
                &q(Ecosystem::PyPI, "MCP-Server-Git", "2025.9.25")
            )
            .len(),
            1
        );
        assert!(
            matches(
                std::slice::from_ref(&v),
                &q(Ecosystem::PyPI, "mcp-server-git", "2025.12.18")
            )
            .is_empty()
        );
        // Another ecosystem with the same name does not match.
        assert!(
            matches(
                std::slice::from_ref(&v),
                &q(Ecosystem::Npm, "mcp-server-git", "1.0.0")
            )
            .is_empty()
        );
    }

    #[test]
    fn withdrawn_records_never_match_and_explicit_versions_do() {
        let mut v = rec("npm", "x", json!([{"introduced": "0"}]));
        v.withdrawn = Some("2025-01-01T00:00:00Z".into());
        assert!(matches(std::slice::from_ref(&v), &q(Ecosystem::Npm, "x", "1.0.0")).is_empty());
        let v2: Vuln = serde_json::from_value(
            json!({"id": "Y", "affected": [{"package": {"ecosystem": "npm", "name": "x"}, "versions": ["1.0.0"]}]}),
        )
        .unwrap();
        assert_eq!(matches(&[v2], &q(Ecosystem::Npm, "x", "1.0.0")).len(), 1);
    }

    #[test]
    fn unparseable_versions_are_reported_uncertain_not_dropped() {
        let v = rec("npm", "x", json!([{"introduced": "0"}, {"fixed": "1.0.0"}]));
        let m = matches(&[v], &q(Ecosystem::Npm, "x", "not-semver"));
        assert_eq!(m.len(), 1);
        assert!(m[0].uncertain);
    }

    #[test]
    fn cvss3_scores_match_published_values() {
        // CVE-2025-6514 (published as 9.6).
        assert_eq!(
            cvss3_base("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H"),
            Some(9.6)
        );
        assert_eq!(
            cvss3_base("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            Some(9.8)
        );
        assert_eq!(
            cvss3_base("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"),
            Some(5.5)
        );
        assert_eq!(
            cvss3_base("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"),
            Some(0.0)
        );
        assert_eq!(cvss3_base("CVSS:4.0/AV:N"), None);
        let mut v = rec("npm", "x", json!([]));
        v.severity = vec![SeverityEntry {
            kind: "CVSS_V3".into(),
            score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H".into(),
        }];
        assert_eq!(severity_of(&v).0, Severity::Critical);
        v.severity.clear();
        assert_eq!(severity_of(&v).0, Severity::High);
        v.database_specific = Some(json!({"severity": "MODERATE"}));
        assert_eq!(severity_of(&v).0, Severity::Medium);
    }
}
