//! One audit, end to end: fetch and verify, unpack, resolve the tree, check advisories, read provenance
//! signals, run the static analyzer when one is plugged in, and decide a verdict.
//!
//! # The static-analysis hook
//! Static red flags (process execution, network, obfuscation…, with file:line) are a separate analyzer
//! with its own rules. It plugs in through [`StaticAnalyzer`]: it gets the unpacked package directory and
//! returns findings in the shared [`Finding`] shape, which join the report, the verdict, `--fail-on` and
//! SARIF like any other. Without one, the report says "static analysis: not run" and why.
//!
//! # The verdict
//! * **do not trust**: a finding at high or above (a known vulnerability, a typosquat, a yanked version…);
//! * **review**: a medium finding, or something that could not be checked (no advisory source, the
//!   dependency tree unresolved, the analyzer failed);
//! * **trust**: none of the above. The line says what was not checked even then.

use std::path::{Path, PathBuf};

use palisade_scan::{Finding, RuleMeta, Severity};

use crate::fetch::{self, ArtifactKind, Day, Fetched, Registries};
use crate::net::Net;
use crate::osv::{self, Match, Query};
use crate::resolve::{self, NpmRoot, Resolution, Tools};
use crate::rules;
use crate::signals::{self, finding};
use crate::spec::{Ecosystem, Spec};
use crate::unpack::Unpacked;
use crate::{Error, Progress, Result};

/// Finds static red flags in an unpacked package (implemented outside this crate).
pub trait StaticAnalyzer: Sync {
    /// Its name and version, for the report.
    fn name(&self) -> String;
    /// Every rule it can report (for SARIF `rules[]`).
    fn rules(&self) -> Vec<&'static RuleMeta>;
    /// Findings for the package unpacked at `package_dir`; `Err` says why it could not run.
    fn analyze(&self, package_dir: &Path) -> std::result::Result<Vec<Finding>, String>;
}

/// Whether static analysis ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticStatus {
    /// It ran (analyzer name).
    Ran(String),
    /// It did not run, and why.
    NotRun(String),
    /// It failed, and why.
    Failed(String),
}

/// What the advisory check covered.
#[derive(Debug, Clone, Default)]
pub struct AdvisoryStatus {
    /// The sources consulted.
    pub sources: Vec<String>,
    /// Package versions checked.
    pub checked: usize,
    /// Why nothing (or not everything) was checked.
    pub not_checked: Option<String>,
    /// Advisories that apply.
    pub matches: Vec<Match>,
}

/// The verdict's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing found that calls for caution.
    Trust,
    /// Read the findings (or fill the gaps) before trusting it.
    Review,
    /// Do not install or run it.
    DoNotTrust,
}

impl Level {
    /// `trust`, `review`, `do not trust`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trust => "trust",
            Level::Review => "review",
            Level::DoNotTrust => "do not trust",
        }
    }
}

/// The verdict and its reason, one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Level.
    pub level: Level,
    /// Why.
    pub why: String,
}

/// A finished audit.
#[derive(Debug)]
pub struct AuditReport {
    /// The spec as given.
    pub subject: String,
    /// The verified artifact (with its bytes, which `install` stores).
    pub fetched: Fetched,
    /// Where it was unpacked.
    pub package_dir: PathBuf,
    /// What unpacking wrote.
    pub unpacked: Unpacked,
    /// The dependency tree, when resolved.
    pub resolution: Option<Resolution>,
    /// Why the tree was not resolved.
    pub resolution_note: Option<String>,
    /// Advisory coverage and matches.
    pub advisories: AdvisoryStatus,
    /// Static analysis status.
    pub static_analysis: StaticStatus,
    /// Rules of the static analyzer that ran (for SARIF).
    pub static_rules: Vec<&'static RuleMeta>,
    /// Every finding, most severe first.
    pub findings: Vec<Finding>,
    /// The verdict.
    pub verdict: Verdict,
}

impl AuditReport {
    /// The ecosystem (`npm` when unknown, which only happens for unrecognizable directories).
    pub fn ecosystem(&self) -> Option<Ecosystem> {
        self.fetched.ecosystem
    }

    /// Every rule that may appear in this report (supply rules, then the analyzer's).
    pub fn rules(&self) -> Vec<&'static RuleMeta> {
        let mut r = rules::all();
        r.extend(self.static_rules.iter().copied());
        r
    }
}

/// How to audit.
pub struct Options<'a> {
    /// Registry locations.
    pub registries: Registries,
    /// The HTTP client (offline or not).
    pub net: &'a Net,
    /// Advisory sources, in order; empty means none.
    pub sources: Vec<Box<dyn osv::Source + 'a>>,
    /// Why there are no sources (shown when `sources` is empty).
    pub no_source_reason: String,
    /// Resolve the dependency tree (needs npm / pip and, usually, the network).
    pub resolve: bool,
    /// npm and pip.
    pub tools: Tools,
    /// The static analyzer, when one is built in.
    pub analyzer: Option<&'a dyn StaticAnalyzer>,
    /// Why there is no analyzer.
    pub no_analyzer_reason: String,
    /// Progress display.
    pub progress: &'a dyn Progress,
    /// Scratch directory (created; the package is unpacked under it).
    pub work: PathBuf,
    /// Today.
    pub today: Day,
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("registries", &self.registries)
            .field(
                "sources",
                &self
                    .sources
                    .iter()
                    .map(|s| s.describe())
                    .collect::<Vec<_>>(),
            )
            .field("resolve", &self.resolve)
            .field("work", &self.work)
            .finish()
    }
}

/// Runs the audit of `spec`.
pub fn audit(spec: &Spec, o: &Options<'_>) -> Result<AuditReport> {
    let mut fetched = fetch::fetch(spec, &o.registries, o.net, o.progress)?;
    let package_dir = o.work.join("package");
    let unpacked = fetch::unpack_into(&mut fetched, &package_dir)?;
    let subject = match (&fetched.ecosystem, &fetched.name, &fetched.version) {
        (Some(e), Some(n), Some(v)) => match e {
            Ecosystem::Npm => format!("npm:{n}@{v}"),
            Ecosystem::PyPI => format!("pypi:{n}=={v}"),
        },
        _ => spec.to_string(),
    };

    // The dependency tree.
    let (resolution, resolution_note) = if !o.resolve {
        (
            None,
            Some("not resolved (--offline, or resolution turned off)".to_owned()),
        )
    } else {
        match resolve_tree(&fetched, &package_dir, o) {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(format!("not resolved: {e}"))),
        }
    };

    // Advisories for the package and its tree.
    let mut queries: Vec<Query> = Vec::new();
    if let (Some(e), Some(n), Some(v)) = (fetched.ecosystem, &fetched.name, &fetched.version) {
        queries.push(Query {
            ecosystem: e,
            name: n.clone(),
            version: v.clone(),
        });
    }
    if let Some(r) = &resolution {
        for d in &r.deps {
            let q = Query {
                ecosystem: d.ecosystem,
                name: d.name.clone(),
                version: d.version.clone(),
            };
            if !queries.iter().any(|x| {
                x.ecosystem == q.ecosystem
                    && x.ecosystem.normalize(&x.name) == q.ecosystem.normalize(&q.name)
                    && x.version == q.version
            }) {
                queries.push(q);
            }
        }
    }
    let mut advisories = AdvisoryStatus::default();
    if o.sources.is_empty() {
        advisories.not_checked = Some(o.no_source_reason.clone());
    } else if queries.is_empty() {
        advisories.not_checked =
            Some("the package's name and version are unknown (no package.json / PKG-INFO)".into());
    } else {
        o.progress.step(&format!(
            "checking {} packages for advisories",
            queries.len()
        ));
        let mut errors = Vec::new();
        for s in &o.sources {
            match s.query(&queries) {
                Ok(per) => {
                    advisories.sources.push(s.describe());
                    for m in per.into_iter().flatten() {
                        let dup = advisories
                            .matches
                            .iter()
                            .any(|x| x.vuln.id == m.vuln.id && x.query == m.query);
                        if !dup {
                            advisories.matches.push(m);
                        }
                    }
                }
                Err(e) => errors.push(format!("{}: {e}", s.describe())),
            }
        }
        o.progress.done();
        advisories.checked = if advisories.sources.is_empty() {
            0
        } else {
            queries.len()
        };
        if !errors.is_empty() {
            advisories.not_checked = Some(errors.join("; "));
        } else if resolution.is_none() {
            advisories.not_checked = Some(format!(
                "dependencies were not checked: the tree is {}",
                resolution_note.as_deref().unwrap_or("not resolved")
            ));
        }
    }

    let mut findings: Vec<Finding> = Vec::new();
    let root_key = queries
        .first()
        .map(|q| (q.ecosystem.normalize(&q.name), q.version.clone()));
    for m in &advisories.matches {
        let is_root = root_key.as_ref().is_some_and(|(n, v)| {
            *n == m.query.ecosystem.normalize(&m.query.name) && *v == m.query.version
        });
        let rule = if is_root {
            &rules::KNOWN_VULNERABILITY
        } else {
            &rules::VULNERABLE_DEPENDENCY
        };
        let summary = m
            .vuln
            .summary
            .clone()
            .unwrap_or_else(|| "no summary".into());
        let fixed = match &m.fixed_in {
            Some(f) => format!("; fixed in {f}"),
            None => "; no fixed version named".into(),
        };
        let unsure = if m.uncertain {
            " (range not evaluable exactly; listed to be safe)"
        } else {
            ""
        };
        let fix = match (&m.fixed_in, is_root) {
            (Some(f), true) => format!("use {} {f} or later", m.query.name),
            (Some(f), false) => format!(
                "use a release of this package that resolves {} to {f} or later",
                m.query.name
            ),
            (None, _) => {
                "no fixed version is published; avoid this package or mitigate as the advisory says"
                    .into()
            }
        };
        let mut f = finding(
            rule,
            m.severity,
            &subject,
            format!(
                "{} in {} {}: {summary}{fixed}{unsure}",
                m.ids(),
                m.query.name,
                m.query.version
            ),
            fix,
            format!(
                "advisory:{}:{}@{}",
                m.vuln.id, m.query.name, m.query.version
            ),
        );
        f.evidence = Some(m.severity_source.clone());
        findings.push(f);
    }

    findings.extend(signals::check(&signals::Inputs {
        subject: &subject,
        ecosystem: fetched.ecosystem,
        name: fetched.name.as_deref(),
        registry: fetched.registry.as_ref(),
        dir: &package_dir,
        kind: fetched.kind,
        resolution: resolution.as_ref(),
        skipped_links: &unpacked.skipped_links,
        today: o.today,
    }));

    let (static_analysis, static_rules) = match o.analyzer {
        None => (
            StaticStatus::NotRun(o.no_analyzer_reason.clone()),
            Vec::new(),
        ),
        Some(a) => {
            o.progress.step("static analysis");
            let r = a.analyze(&package_dir);
            o.progress.done();
            match r {
                Ok(fs) => {
                    findings.extend(fs);
                    (StaticStatus::Ran(a.name()), a.rules())
                }
                Err(e) => (StaticStatus::Failed(e), a.rules()),
            }
        }
    };

    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.rule.cmp(b.rule))
            .then(a.key.cmp(&b.key))
    });
    let verdict = decide(
        &findings,
        &advisories,
        resolution.is_some(),
        &resolution_note,
        &static_analysis,
    );
    Ok(AuditReport {
        subject,
        fetched,
        package_dir,
        unpacked,
        resolution,
        resolution_note,
        advisories,
        static_analysis,
        static_rules,
        findings,
        verdict,
    })
}

fn resolve_tree(f: &Fetched, package_dir: &Path, o: &Options<'_>) -> Result<Resolution> {
    let work = o.work.join("resolve");
    match (f.ecosystem, &f.spec) {
        (Some(Ecosystem::Npm), Spec::Registry { name, .. }) => resolve::npm_tree(
            &o.tools,
            NpmRoot::Registry {
                name,
                version: f.version.as_deref().unwrap_or(""),
            },
            &work,
            o.progress,
        ),
        (Some(Ecosystem::Npm), Spec::Path(p)) => {
            let name = f.name.clone().ok_or_else(|| {
                Error::Usage(format!("{}: package.json has no name", p.display()))
            })?;
            let abs = std::path::absolute(p).map_err(|e| Error::io(p, e))?;
            resolve::npm_tree(&o.tools, NpmRoot::File { name: &name, path: &abs }, &work, o.progress)
        }
        (Some(Ecosystem::PyPI), spec) => {
            let name = f.name.clone().unwrap_or_default();
            let requirement = match spec {
                Spec::Registry { .. } => {
                    format!("{name}=={}", f.version.as_deref().unwrap_or(""))
                }
                Spec::Path(p) => match f.kind {
                    ArtifactKind::Directory => std::path::absolute(p)
                        .map_err(|e| Error::io(p, e))?
                        .display()
                        .to_string(),
                    _ => {
                        // pip wants the real file name (it parses wheel tags from it).
                        let copy = o.work.join(&f.filename);
                        std::fs::write(&copy, &f.bytes).map_err(|e| Error::io(&copy, e))?;
                        copy.display().to_string()
                    }
                },
            };
            let _ = package_dir;
            resolve::pypi_tree(&o.tools, &requirement, &name, o.progress)
        }
        (None, _) => Err(Error::Usage(
            "the directory is neither an npm package (package.json) nor a Python one (pyproject.toml, PKG-INFO)".into(),
        )),
    }
}

fn decide(
    findings: &[Finding],
    adv: &AdvisoryStatus,
    resolved: bool,
    resolution_note: &Option<String>,
    st: &StaticStatus,
) -> Verdict {
    let worst = findings.iter().map(|f| f.severity).max();
    let static_note = match st {
        StaticStatus::Ran(_) => String::new(),
        StaticStatus::NotRun(_) => "; static analysis not run".into(),
        StaticStatus::Failed(_) => "; static analysis failed".into(),
    };
    if worst.is_some_and(|w| w >= Severity::High) {
        let top: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.severity >= Severity::High)
            .collect();
        let advisories = top
            .iter()
            .filter(|f| {
                f.rule == rules::KNOWN_VULNERABILITY.id || f.rule == rules::VULNERABLE_DEPENDENCY.id
            })
            .count();
        let first = top[0];
        let lead = if advisories > 0 {
            format!(
                "{advisories} advisor{} at high or above; first: {}",
                if advisories == 1 { "y" } else { "ies" },
                first.message.split(':').next().unwrap_or(&first.message)
            )
        } else {
            format!("{} ({})", first.message, first.rule)
        };
        let more = top.len() - 1;
        return Verdict {
            level: Level::DoNotTrust,
            why: if more > 0 && advisories == 0 {
                format!(
                    "{lead}, and {more} more high finding{}",
                    if more == 1 { "" } else { "s" }
                )
            } else {
                lead
            },
        };
    }
    let mut gaps = Vec::new();
    if adv.sources.is_empty() {
        gaps.push("advisories not checked".to_owned());
    } else if adv.not_checked.is_some() {
        gaps.push("advisories checked only in part".to_owned());
    }
    if !resolved {
        gaps.push(format!(
            "dependency tree {}",
            resolution_note.as_deref().unwrap_or("not resolved")
        ));
    }
    if let StaticStatus::Failed(e) = st {
        gaps.push(format!("static analysis failed ({e})"));
    }
    let medium: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.severity == Severity::Medium)
        .collect();
    if !medium.is_empty() || !gaps.is_empty() {
        let mut parts: Vec<String> = Vec::new();
        if !medium.is_empty() {
            let ids: std::collections::BTreeSet<&str> = medium.iter().map(|f| f.rule).collect();
            parts.push(format!(
                "{} medium finding{} ({})",
                medium.len(),
                if medium.len() == 1 { "" } else { "s" },
                ids.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        parts.extend(gaps);
        return Verdict {
            level: Level::Review,
            why: format!(
                "{}{}",
                parts.join("; "),
                if matches!(st, StaticStatus::NotRun(_)) {
                    static_note
                } else {
                    String::new()
                }
            ),
        };
    }
    Verdict {
        level: Level::Trust,
        why: format!(
            "no advisories for the {} package{} checked, no risky provenance signals{static_note}",
            adv.checked,
            if adv.checked == 1 { "" } else { "s" }
        ),
    }
}
