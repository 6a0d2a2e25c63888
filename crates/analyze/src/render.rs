//! Text, JSON and SARIF renderings of a code [`Report`], for `palisade audit` to embed.
//!
//! # JSON (version 1)
//! ```json
//! {"version": 1, "root": "/tmp/pkg", "score": 55, "verdict": "dangerous",
//!  "stats": {"files": 12, "bytes": 40960, "minified": 1, "vendored": 0, "parse_errors": 0,
//!            "skipped_tests": 3, "rescued": 0, "symlinks": 0,
//!            "by_language": {"javascript": 11, "python": 1}},
//!  "occurrences": {"outbound-network": 4},
//!  "suppressed": {},
//!  "findings": [{"rule": "exfiltration-pattern", "severity": "critical", "message": "…", "fix": "…",
//!                "path": "lib/index.js", "line": 3, "column": 14, "end_line": 3, "end_column": 40,
//!                "evidence": "JSON.stringify(process.env)", "fingerprint": "…"}]}
//! ```
//! `path` is relative to `root`. Fields are only ever added.

use std::fmt::Write as _;

use palisade_scan::report::{finding_json, sarif, severity_counts};
use serde_json::{Value, json};

use crate::code::Report;
use crate::describe::display_safe;
use crate::rules;

/// The JSON document (see the [module docs](self)).
pub fn json(r: &Report) -> Value {
    let findings: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let path = f
                .location
                .as_ref()
                .map(|l| r.relative(&l.path).into_owned());
            finding_json(f, path)
        })
        .collect();
    let s = &r.stats;
    json!({
        "version": 1,
        "root": r.root.display().to_string(),
        "score": r.score,
        "verdict": r.verdict().as_str(),
        "stats": {
            "files": s.files, "bytes": s.bytes, "minified": s.minified, "vendored": s.vendored,
            "parse_errors": s.parse_errors, "skipped_tests": s.skipped_tests, "rescued": s.rescued,
            "symlinks": s.symlinks,
            "by_language": s.by_language.iter().map(|(l, n)| (l.as_str().to_owned(), json!(n))).collect::<serde_json::Map<_, _>>(),
        },
        "occurrences": r.occurrences,
        "suppressed": r.suppressed,
        "findings": findings,
    })
}

/// SARIF 2.1.0 with every code rule declared, paths relative to the root.
pub fn sarif(r: &Report, tool: sarif::Tool<'_>) -> Value {
    sarif::log(tool, rules::CODE, &r.findings, Some(&r.root))
}

/// The text report: one block per finding (severity, message, `path:line:col · rule`, evidence), then
/// the summary line. Nothing from the package reaches the terminal unescaped.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    for f in &r.findings {
        let at = f
            .location
            .as_ref()
            .map(|l| {
                format!(
                    "{}:{}:{}",
                    r.relative(&l.path),
                    l.start.line,
                    l.start.column
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<8}  {}",
            f.severity.as_str(),
            display_safe(&f.message)
        );
        let _ = writeln!(out, "          {} · {}", display_safe(&at), f.rule);
        if let Some(e) = &f.evidence {
            let _ = writeln!(out, "          | {}", display_safe(e));
        }
    }
    for (rule, n) in &r.suppressed {
        let _ = writeln!(out, "… and {n} more `{rule}` finding(s) not shown");
    }
    let by = severity_counts(&r.findings);
    let _ = writeln!(
        out,
        "{} file(s), {} bytes analyzed; {} finding(s){}; score {}/100, {}",
        r.stats.files,
        r.stats.bytes,
        r.findings.len(),
        if by.is_empty() {
            String::new()
        } else {
            format!(" ({by})")
        },
        r.score,
        r.verdict().as_str()
    );
    out
}
