//! Findings, severities, rule metadata, and SARIF: what any palisade checker reports with.
//!
//! These types know nothing about MCP client configs, so the package audit (`palisade audit`) and the
//! tool-description analysis report through the same [`Finding`], rank by the same [`Severity`], gate CI
//! with the same [`exceeds`], and emit SARIF from their own rule list with the same [`sarif::log`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::doc::Pos;

/// How bad a finding is, lowest first (so `>=` compares against a `--fail-on` threshold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; nothing to fix.
    Info,
    /// A hardening opportunity.
    Low,
    /// A real risk under plausible conditions.
    Medium,
    /// A likely path to compromise or credential loss.
    High,
    /// Compromise or credential loss as configured.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// `"info"` … `"critical"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// SARIF `level`: `error` for high and critical, `warning` for medium, `note` below.
    pub fn sarif_level(self) -> &'static str {
        match self {
            Severity::Critical | Severity::High => "error",
            Severity::Medium => "warning",
            Severity::Low | Severity::Info => "note",
        }
    }

    /// GitHub's `security-severity` score (critical ≥ 9.0, high ≥ 7.0, medium ≥ 4.0, low > 0).
    pub fn security_severity(self) -> &'static str {
        match self {
            Severity::Critical => "9.5",
            Severity::High => "8.0",
            Severity::Medium => "5.5",
            Severity::Low => "3.0",
            Severity::Info => "0.0",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Severity, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown severity {s:?}; use one of info, low, medium, high, critical")
            })
    }
}

/// A rule's fixed description: the registry entry every finding refers to by `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleMeta {
    /// Stable kebab-case id (a public API: never renamed, never reused).
    pub id: &'static str,
    /// Default severity.
    pub severity: Severity,
    /// One line: what is flagged.
    pub title: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix it, in general (each finding carries the fix for its own case).
    pub fix: &'static str,
}

/// Declares a rule of a registry: `rule!(NAME, "id", Severity, "title", "why", "fix")` is a
/// `pub const NAME: RuleMeta` documented by its title. Every checker's registry is a list of these, so an
/// entry reads the same in each.
#[macro_export]
macro_rules! rule {
    ($name:ident, $id:literal, $sev:ident, $title:literal, $why:literal, $fix:literal) => {
        #[doc = $title]
        pub const $name: $crate::report::RuleMeta = $crate::report::RuleMeta {
            id: $id,
            severity: $crate::report::Severity::$sev,
            title: $title,
            why: $why,
            fix: $fix,
        };
    };
}

/// Where a finding points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// First position.
    pub start: Pos,
    /// Position just past the end.
    pub end: Pos,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule's id.
    pub rule: &'static str,
    /// Its severity.
    pub severity: Severity,
    /// One line saying what is wrong, here. Never holds a secret in full.
    pub message: String,
    /// The concrete fix for this case.
    pub fix: String,
    /// Where.
    pub location: Option<Location>,
    /// The client whose config this is (an id such as `claude-desktop`), when there is one.
    pub client: Option<&'static str>,
    /// The server entry, when the finding is about one.
    pub server: Option<String>,
    /// A masked excerpt of what was found (`ghp_…a1b2`), when it helps.
    pub evidence: Option<String>,
    /// What within the server the finding is about (`env:GITHUB_TOKEN`, `arg:3`): with the rule, file and
    /// server it identifies the finding across edits that move lines ([`Finding::fingerprint`]).
    pub key: String,
}

impl Finding {
    /// A stable identity that survives line moves and does not depend on where the file is (SARIF
    /// `partialFingerprints`): rule, client, the file's name, server and key. The same problem in a copy of
    /// the file (another checkout, another machine) has the same fingerprint.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            self.rule,
            self.client.unwrap_or(""),
            &self
                .location
                .as_ref()
                .and_then(|l| l.path.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            self.server.as_deref().unwrap_or(""),
            &self.key,
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// Findings per severity, lowest first (indexable by `Severity as usize`).
pub fn counts(findings: &[Finding]) -> [usize; 5] {
    let mut c = [0; 5];
    for f in findings {
        c[f.severity as usize] += 1;
    }
    c
}

/// The findings counted by severity, worst first, for a report's summary line: `"1 critical, 2 low"`;
/// empty when there are none.
pub fn severity_counts(findings: &[Finding]) -> String {
    let c = counts(findings);
    let by: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter(|s| c[**s as usize] > 0)
        .map(|s| format!("{} {}", c[*s as usize], s.as_str()))
        .collect();
    by.join(", ")
}

/// The JSON object of a finding with the fields every palisade report gives one (`rule`, `severity`,
/// `message`, `fix`, `path`, `line`, `column`, `end_line`, `end_column`, `evidence`, `fingerprint`);
/// `path` is the location's path as the report shows it (absolute, or relative to a package's root). A
/// report adds its own fields to it (`client`, `server`).
pub fn finding_json(f: &Finding, path: Option<String>) -> serde_json::Value {
    let loc = f.location.as_ref();
    serde_json::json!({
        "rule": f.rule,
        "severity": f.severity.as_str(),
        "message": f.message,
        "fix": f.fix,
        "path": path,
        "line": loc.map(|l| l.start.line),
        "column": loc.map(|l| l.start.column),
        "end_line": loc.map(|l| l.end.line),
        "end_column": loc.map(|l| l.end.column),
        "evidence": f.evidence,
        "fingerprint": f.fingerprint(),
    })
}

/// Whether any finding is at or above `threshold` (`--fail-on`).
pub fn exceeds(findings: &[Finding], threshold: Severity) -> bool {
    findings.iter().any(|f| f.severity >= threshold)
}

/// SARIF 2.1.0 output.
///
/// One run; `tool.driver.rules` is the checker's whole registry (so rule ids and help exist even when
/// nothing fired), each with `defaultConfiguration.level` and `properties.security-severity` for GitHub
/// code scanning; each result has `ruleId`, `ruleIndex`, `level`, a physical location (artifact URI plus a
/// region in code points, `columnKind: unicodeCodePoints`) and `partialFingerprints`. Paths under `base`
/// are written relative, against the `%SRCROOT%` base id, which is what code scanning matches against the
/// repository; other paths become absolute `file://` URIs.
pub mod sarif {
    use super::*;
    use serde_json::{Value, json};

    /// The producing tool.
    #[derive(Debug, Clone, Copy)]
    pub struct Tool<'a> {
        /// `palisade`.
        pub name: &'a str,
        /// Its version.
        pub version: &'a str,
        /// Where its docs are.
        pub information_uri: &'a str,
    }

    /// The SARIF log for `findings`, declaring `rules`.
    pub fn log(
        tool: Tool<'_>,
        rules: &[&RuleMeta],
        findings: &[Finding],
        base: Option<&Path>,
    ) -> Value {
        let rules_json: Vec<Value> = rules
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "name": pascal(r.id),
                    "shortDescription": {"text": r.title},
                    "fullDescription": {"text": r.why},
                    "help": {
                        "text": format!("{}\n\nFix: {}", r.why, r.fix),
                        "markdown": format!("{}\n\n**Fix:** {}", r.why, r.fix),
                    },
                    "defaultConfiguration": {"level": r.severity.sarif_level()},
                    "properties": {
                        "security-severity": r.severity.security_severity(),
                        "severity": r.severity.as_str(),
                        "tags": ["security", "mcp"],
                        "precision": "high",
                    },
                })
            })
            .collect();
        let results: Vec<Value> = findings
            .iter()
            .map(|f| {
                let mut r = json!({
                    "ruleId": f.rule,
                    "level": f.severity.sarif_level(),
                    "message": {"text": format!("{}\nFix: {}", f.message, f.fix)},
                    "partialFingerprints": {"palisadeFinding/v1": f.fingerprint()},
                    "properties": {"severity": f.severity.as_str()},
                });
                if let Some(i) = rules.iter().position(|r| r.id == f.rule) {
                    r["ruleIndex"] = json!(i);
                }
                if let Some(c) = f.client {
                    r["properties"]["client"] = json!(c);
                }
                if let Some(s) = &f.server {
                    r["properties"]["server"] = json!(s);
                }
                if let Some(l) = &f.location {
                    let mut art = json!({"uri": uri(&l.path, base)});
                    if base.is_some_and(|b| l.path.starts_with(b)) {
                        art["uriBaseId"] = json!("%SRCROOT%");
                    }
                    r["locations"] = json!([{
                        "physicalLocation": {
                            "artifactLocation": art,
                            "region": {
                                "startLine": l.start.line,
                                "startColumn": l.start.column,
                                "endLine": l.end.line,
                                "endColumn": l.end.column,
                            },
                        },
                    }]);
                }
                r
            })
            .collect();
        let mut run = json!({
            "tool": {"driver": {
                "name": tool.name,
                "version": tool.version,
                "semanticVersion": tool.version,
                "informationUri": tool.information_uri,
                "rules": rules_json,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        });
        if let Some(b) = base {
            run["originalUriBaseIds"] =
                json!({"%SRCROOT%": {"uri": format!("{}/", file_uri(b).trim_end_matches('/'))}});
        }
        json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [run],
        })
    }

    fn pascal(id: &str) -> String {
        id.split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }

    fn uri(path: &Path, base: Option<&Path>) -> String {
        match base.and_then(|b| path.strip_prefix(b).ok()) {
            Some(rel) => encode(&rel.to_string_lossy().replace('\\', "/")),
            None => file_uri(path),
        }
    }

    fn file_uri(path: &Path) -> String {
        let p = path.to_string_lossy().replace('\\', "/");
        if p.starts_with('/') {
            format!("file://{}", encode(&p))
        } else {
            format!("file:///{}", encode(&p))
        }
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters, `/` and a drive letter's `:`.
    fn encode(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for (i, b) in s.bytes().enumerate() {
            let keep = b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/')
                || (b == b':' && i == 1);
            if keep {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn uris_are_relative_under_the_base_and_encoded() {
            let base = Path::new("/repo");
            assert_eq!(
                uri(Path::new("/repo/.vscode/mcp.json"), Some(base)),
                ".vscode/mcp.json"
            );
            assert_eq!(
                uri(
                    Path::new("/h/Library/Application Support/x.json"),
                    Some(base)
                ),
                "file:///h/Library/Application%20Support/x.json"
            );
            assert_eq!(pascal("secret-in-env"), "SecretInEnv");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!(
            "severe"
                .parse::<Severity>()
                .unwrap_err()
                .contains("info, low")
        );
    }

    #[test]
    fn fingerprints_ignore_lines_but_not_what_was_found() {
        let f = |line, key: &str| Finding {
            rule: "r",
            severity: Severity::High,
            message: String::new(),
            fix: String::new(),
            location: Some(Location {
                path: "/f".into(),
                start: Pos { line, column: 1 },
                end: Pos { line, column: 2 },
            }),
            client: None,
            server: Some("s".into()),
            evidence: None,
            key: key.into(),
        };
        assert_eq!(f(1, "env:A").fingerprint(), f(9, "env:A").fingerprint());
        assert_ne!(f(1, "env:A").fingerprint(), f(1, "env:B").fingerprint());
    }

    #[test]
    fn severity_counts_go_worst_first_and_leave_out_empty_levels() {
        let f = |severity| Finding {
            rule: "r",
            severity,
            message: String::new(),
            fix: String::new(),
            location: None,
            client: None,
            server: None,
            evidence: None,
            key: String::new(),
        };
        assert_eq!(severity_counts(&[]), "");
        let found = [f(Severity::Low), f(Severity::Critical), f(Severity::Low)];
        assert_eq!(severity_counts(&found), "1 critical, 2 low");
    }
}
