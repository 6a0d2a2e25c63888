//! Static red flags in a package's source: [`analyze_dir`] walks a directory, parses every JavaScript,
//! TypeScript and Python file with tree-sitter, and reports what the code *does* that a server should
//! not: send data out, run shells, evaluate strings, read credential stores, harvest the environment,
//! write shell startup files, hide payloads.
//!
//! # Why a parser
//! A regex over lines cannot tell `eval(x)` from a comment mentioning eval, `process.env.HOME` (one
//! variable) from `JSON.stringify(process.env)` (all of them), or `exec` from `child_process` from a
//! method that happens to be called `exec`. Each language module ([`js`], [`py`]) resolves callees
//! through the file's imports and aliases (`const {exec: run} = require("node:child_process")`, `from
//! os import system as s`) and looks at the arguments (`shell: true`, `shell=True`, a literal or a
//! computed command). The tables of what counts (modules, functions, paths) are data in those modules
//! and in [`crate::paths`].
//!
//! # Context and combination
//! A finding's severity may differ from its rule's default when context changes the risk (a `fetch` of
//! a constant `https://` URL is info; a command line built at run time is high). One rule,
//! `exfiltration-pattern`, fires only on a combination within one file: network access together with
//! environment harvesting or a credential path.
//!
//! # Not drowning the report
//! Minified files (`*.min.js`, or a line longer than [`Options::long_line`]) and vendored code
//! (`node_modules`, `vendor`, `third_party` inside the package) keep one finding per rule and file, with
//! the number of occurrences. Each rule keeps at most [`Options::max_per_rule`] findings (most severe
//! first); the rest are counted in [`Report::suppressed`]. Test and documentation directories are
//! skipped unless [`Options::include_tests`], except files the package's own code imports from them or
//! names as an entry point (so a payload cannot hide in `test/` and be `require`d from `index.js`).

mod js;
mod literal;
mod py;
mod walk;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use palisade_scan::doc::LineIndex;
use palisade_scan::report::{Finding, Location, RuleMeta, Severity};

use crate::rules;
use crate::text;

/// How to analyze.
#[derive(Debug, Clone)]
pub struct Options {
    /// Also analyze test and documentation directories (`test/`, `tests/`, `__tests__/`, `spec/`,
    /// `docs/`, `doc/`, `examples/`) and test-named files (`*.test.js`, `test_*.py`).
    pub include_tests: bool,
    /// Files larger than this are not parsed (each becomes a `file-not-analyzed` finding).
    pub max_file_bytes: u64,
    /// A line longer than this (in bytes) marks a file as minified.
    pub long_line: usize,
    /// Findings kept per rule (most severe first); `0` keeps all.
    pub max_per_rule: usize,
    /// Worker threads; `0` uses the machine's parallelism.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            include_tests: false,
            max_file_bytes: 16 << 20,
            long_line: 1000,
            max_per_rule: 25,
            threads: 0,
        }
    }
}

/// The language of a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lang {
    /// `.js`, `.mjs`, `.cjs`, `.jsx`, or a `node` shebang.
    JavaScript,
    /// `.ts`, `.mts`, `.cts`.
    TypeScript,
    /// `.tsx`.
    Tsx,
    /// `.py`, `.pyw`, or a `python` shebang.
    Python,
}

impl Lang {
    fn grammar(self) -> tree_sitter::Language {
        match self {
            Lang::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Lang::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Lang::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
        }
    }

    /// `javascript`, `typescript`, `tsx`, `python`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::JavaScript => "javascript",
            Lang::TypeScript => "typescript",
            Lang::Tsx => "tsx",
            Lang::Python => "python",
        }
    }
}

/// What could not be analyzed at all (the path, not a finding about code in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The path does not exist or cannot be read.
    #[error("{0}: cannot read it ({1}); give the directory of an unpacked package")]
    Unreadable(PathBuf, String),
}

/// Counts describing what was looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Source files parsed.
    pub files: usize,
    /// Bytes of source parsed.
    pub bytes: u64,
    /// Files parsed, per language.
    pub by_language: BTreeMap<Lang, usize>,
    /// Of those, minified or bundled.
    pub minified: usize,
    /// Of those, vendored (under `node_modules`, `vendor`, `third_party` inside the package).
    pub vendored: usize,
    /// Of those, ones whose parse had syntax errors (analyzed as far as the parser recovered).
    pub parse_errors: usize,
    /// Source files in skipped test/doc locations (not analyzed).
    pub skipped_tests: usize,
    /// Of the files in skipped locations, ones analyzed anyway because code imports them.
    pub rescued: usize,
    /// Symbolic links not followed.
    pub symlinks: usize,
}

/// How alarming a report is, by its most severe finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Nothing above info.
    Clean,
    /// Low or medium findings: read them.
    Review,
    /// A high finding.
    Suspicious,
    /// A critical finding.
    Dangerous,
}

impl Verdict {
    /// `clean`, `review`, `suspicious`, `dangerous`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Review => "review",
            Verdict::Suspicious => "suspicious",
            Verdict::Dangerous => "dangerous",
        }
    }
}

/// The result of [`analyze_dir`].
#[derive(Debug, Clone)]
pub struct Report {
    /// The directory (or file) analyzed, absolute.
    pub root: PathBuf,
    /// Findings, most severe first, then by path and position.
    pub findings: Vec<Finding>,
    /// Findings dropped by [`Options::max_per_rule`], per rule.
    pub suppressed: BTreeMap<&'static str, usize>,
    /// Occurrences per rule before collapsing and capping (what the code does, in numbers).
    pub occurrences: BTreeMap<&'static str, usize>,
    /// What was looked at.
    pub stats: Stats,
    /// Risk score, 0–100: the sum over distinct (rule, file) pairs of 40 per critical, 15 per high,
    /// 5 per medium and 1 per low finding, capped at 100.
    pub score: u8,
}

impl Report {
    /// The verdict by the most severe finding.
    pub fn verdict(&self) -> Verdict {
        match self.findings.iter().map(|f| f.severity).max() {
            Some(Severity::Critical) => Verdict::Dangerous,
            Some(Severity::High) => Verdict::Suspicious,
            Some(Severity::Medium | Severity::Low) => Verdict::Review,
            _ => Verdict::Clean,
        }
    }

    /// `path` relative to the root, for display.
    pub fn relative<'p>(&self, path: &'p Path) -> std::borrow::Cow<'p, str> {
        match path.strip_prefix(&self.root) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy(),
            _ => path.to_string_lossy(),
        }
    }
}

/// One match inside a file, before positions are computed.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub(crate) rule: &'static RuleMeta,
    pub(crate) severity: Severity,
    pub(crate) range: Range<usize>,
    pub(crate) message: String,
    /// A short excerpt (masked where it may be a secret).
    pub(crate) evidence: String,
}

/// What a file does, for the rules that depend on more than one site.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    /// The first network call and what it is.
    pub(crate) network: Option<(Range<usize>, String)>,
    /// The first place the whole environment is collected.
    pub(crate) harvest: Option<(Range<usize>, String)>,
    /// The first path-like credential literal.
    pub(crate) secret_path: Option<(Range<usize>, &'static str)>,
    /// The file calls a file-writing API.
    pub(crate) writes: bool,
    /// Indexes (in `hits`) of path-like persistence literals, settled once `writes` is known.
    pub(crate) persistence: Vec<usize>,
    /// Identifiers in the style of javascript-obfuscator (`_0x3f2a`), and the first one.
    pub(crate) obfuscated_ids: usize,
    pub(crate) first_obfuscated: Option<Range<usize>>,
}

/// One file's matches.
#[derive(Debug, Default)]
pub(crate) struct FileScan {
    pub(crate) hits: Vec<Hit>,
    pub(crate) facts: Facts,
    /// Relative module specifiers the file imports (`./lib/x`), to rescue skipped files.
    pub(crate) imports: Vec<String>,
}

impl FileScan {
    pub(crate) fn hit(
        &mut self,
        rule: &'static RuleMeta,
        severity: Severity,
        range: Range<usize>,
        message: String,
        evidence: String,
    ) {
        self.hits.push(Hit {
            rule,
            severity,
            range,
            message,
            evidence,
        });
    }

    /// Records an environment-harvesting site of `src`. The first at medium or above is the harvesting
    /// half of the exfiltration combination; low ones (names enumerated, then filtered) do not count.
    pub(crate) fn harvest(
        &mut self,
        src: &str,
        range: Range<usize>,
        severity: Severity,
        message: String,
    ) {
        if severity >= Severity::Medium && self.facts.harvest.is_none() {
            self.facts.harvest = Some((range.clone(), message.clone()));
        }
        let evidence = excerpt(src, &range);
        self.hit(&rules::ENV_HARVESTING, severity, range, message, evidence);
    }
}

/// Parses `src` as `lang` and returns its hits, with the per-file rules applied (persistence severity,
/// the exfiltration combination, obfuscator fingerprints). `None` if tree-sitter gave up.
pub(crate) fn scan_source(
    parser: &mut tree_sitter::Parser,
    lang: Lang,
    src: &str,
) -> Option<(FileScan, bool)> {
    parser.set_language(&lang.grammar()).ok()?;
    let tree = parser.parse(src, None)?;
    let root = tree.root_node();
    let mut scan = match lang {
        Lang::Python => py::scan(src, root),
        _ => js::scan(src, root),
    };
    settle(&mut scan);
    Some((scan, root.has_error()))
}

/// The rules that need the whole file.
fn settle(scan: &mut FileScan) {
    let facts = &scan.facts;
    if facts.writes {
        for &i in &facts.persistence {
            if let Some(h) = scan.hits.get_mut(i) {
                h.severity = Severity::High;
                h.message.push_str(", and the file writes files");
            }
        }
    }
    if facts.obfuscated_ids >= 10
        && let Some(r) = facts.first_obfuscated.clone()
    {
        let n = facts.obfuscated_ids;
        scan.hit(
            &rules::PACKED_CODE,
            Severity::High,
            r,
            format!("{n} identifiers in the style of javascript-obfuscator (`_0x…`)"),
            String::new(),
        );
    }
    let facts = &scan.facts;
    if let Some((net, what)) = &facts.network {
        let collected = facts
            .harvest
            .as_ref()
            .map(|(r, w)| (r.clone(), w.clone()))
            .or_else(|| {
                facts
                    .secret_path
                    .as_ref()
                    .map(|(r, label)| (r.clone(), format!("reads {label}")))
            });
        if let Some((at, how)) = collected {
            let net = net.clone();
            let what = what.clone();
            scan.hits.push(Hit {
                rule: &rules::EXFILTRATION_PATTERN,
                severity: Severity::Critical,
                range: at,
                message: format!("{how}, and the same file talks to the network ({what})"),
                evidence: String::new(),
            });
            // Remember where the network call is, for the message's position.
            scan.facts.network = Some((net, what));
        }
    }
}

struct FileJob {
    path: PathBuf,
    lang: Lang,
    vendored: bool,
    rescued: bool,
}

struct FileResult {
    index: usize,
    findings: Vec<Finding>,
    occurrences: Vec<&'static str>,
    pairs: Vec<(&'static str, Severity)>,
    imports: Vec<String>,
    bytes: u64,
    minified: bool,
    parse_error: bool,
    parsed: bool,
}

/// Analyzes every source file under `path` (or the one file `path` names).
pub fn analyze_dir(path: &Path, options: &Options) -> Result<Report, Error> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Unreadable(path.to_path_buf(), e.to_string()))?;
    let root = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut stats = Stats::default();
    let mut jobs: Vec<FileJob> = Vec::new();
    // Source files in skipped locations (tests, docs): analyzed only when code reaches them.
    let mut skipped: HashMap<PathBuf, Lang> = HashMap::new();
    if meta.is_dir() {
        let w = walk::walk(&root, options.include_tests)
            .map_err(|e| Error::Unreadable(path.to_path_buf(), e.to_string()))?;
        stats.symlinks = w.symlinks;
        stats.skipped_tests = w.skipped.len();
        skipped = w.skipped.into_iter().collect();
        for (p, lang) in w.files {
            let vendored = walk::is_vendored(&root, &p);
            jobs.push(FileJob {
                path: p,
                lang,
                vendored,
                rescued: false,
            });
        }
        // Entry points named by package.json are analyzed even inside a skipped directory.
        for entry in walk::entry_points(&root) {
            rescue(&entry, &skipped, &mut jobs);
        }
    } else {
        let lang = walk::lang_of(&root).ok_or_else(|| {
            Error::Unreadable(
                path.to_path_buf(),
                "not a JavaScript, TypeScript or Python file".into(),
            )
        })?;
        jobs.push(FileJob {
            path: root.clone(),
            lang,
            vendored: false,
            rescued: false,
        });
    }

    let mut results: Vec<FileResult> = Vec::new();
    let mut done = 0;
    // Rounds: files imported from skipped locations are added and analyzed in the next round.
    while done < jobs.len() {
        let batch: Vec<usize> = (done..jobs.len()).collect();
        let out = run_jobs(&root, &jobs, &batch, options);
        done = jobs.len();
        for r in &out {
            let from = jobs[r.index].path.clone();
            for spec in &r.imports {
                for cand in walk::resolve_import(&from, spec) {
                    if rescue(&cand, &skipped, &mut jobs) {
                        break;
                    }
                }
            }
        }
        results.extend(out);
    }

    let mut findings = Vec::new();
    let mut occurrences: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut pairs: BTreeMap<(usize, &'static str), Severity> = BTreeMap::new();
    for r in results {
        let job = &jobs[r.index];
        if r.parsed {
            stats.files += 1;
            stats.bytes += r.bytes;
            *stats.by_language.entry(job.lang).or_default() += 1;
            stats.minified += usize::from(r.minified);
            stats.vendored += usize::from(job.vendored);
            stats.parse_errors += usize::from(r.parse_error);
            stats.rescued += usize::from(job.rescued);
        }
        for id in r.occurrences {
            *occurrences.entry(id).or_default() += 1;
        }
        for (id, sev) in r.pairs {
            let e = pairs.entry((r.index, id)).or_insert(sev);
            *e = (*e).max(sev);
        }
        findings.extend(r.findings);
    }
    sort(&mut findings);
    let mut suppressed: BTreeMap<&'static str, usize> = BTreeMap::new();
    if options.max_per_rule > 0 {
        let mut kept: HashMap<&'static str, usize> = HashMap::new();
        findings.retain(|f| {
            let n = kept.entry(f.rule).or_default();
            *n += 1;
            if *n > options.max_per_rule {
                *suppressed.entry(f.rule).or_default() += 1;
                false
            } else {
                true
            }
        });
    }
    let score = pairs
        .values()
        .map(|s| match s {
            Severity::Critical => 40u32,
            Severity::High => 15,
            Severity::Medium => 5,
            Severity::Low => 1,
            Severity::Info => 0,
        })
        .sum::<u32>()
        .min(100) as u8;
    Ok(Report {
        root,
        findings,
        suppressed,
        occurrences,
        stats,
        score,
    })
}

/// Adds `target` as a job when it is a source file in a skipped location not yet analyzed.
fn rescue(target: &Path, skipped: &HashMap<PathBuf, Lang>, jobs: &mut Vec<FileJob>) -> bool {
    let Some(&lang) = skipped.get(target) else {
        return false;
    };
    if !jobs.iter().any(|j| j.path == target) {
        jobs.push(FileJob {
            path: target.to_path_buf(),
            lang,
            vendored: false,
            rescued: true,
        });
    }
    true
}

fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(rules::rank(a.rule).cmp(&rules::rank(b.rule)))
            .then(
                a.location
                    .as_ref()
                    .map(|l| (&l.path, l.start))
                    .cmp(&b.location.as_ref().map(|l| (&l.path, l.start))),
            )
    });
}

fn run_jobs(root: &Path, jobs: &[FileJob], batch: &[usize], options: &Options) -> Vec<FileResult> {
    let threads = if options.threads > 0 {
        options.threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
    .min(batch.len().max(1));
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::with_capacity(batch.len()));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut parser = tree_sitter::Parser::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&index) = batch.get(i) else { break };
                    let r = analyze_file(root, &mut parser, &jobs[index], index, options);
                    out.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                }
            });
        }
    });
    let mut out = out.into_inner().unwrap_or_else(|p| p.into_inner());
    out.sort_by_key(|r| r.index);
    out
}

fn not_analyzed(job: &FileJob, index: usize, why: String) -> FileResult {
    FileResult {
        index,
        findings: vec![Finding {
            rule: rules::FILE_NOT_ANALYZED.id,
            severity: rules::FILE_NOT_ANALYZED.severity,
            message: why,
            fix: rules::FILE_NOT_ANALYZED.fix.into(),
            location: Some(Location {
                path: job.path.clone(),
                start: palisade_scan::doc::Pos { line: 1, column: 1 },
                end: palisade_scan::doc::Pos { line: 1, column: 1 },
            }),
            client: None,
            server: None,
            evidence: None,
            key: job.path.to_string_lossy().into_owned(),
        }],
        occurrences: vec![rules::FILE_NOT_ANALYZED.id],
        pairs: vec![(
            rules::FILE_NOT_ANALYZED.id,
            rules::FILE_NOT_ANALYZED.severity,
        )],
        imports: Vec::new(),
        bytes: 0,
        minified: false,
        parse_error: false,
        parsed: false,
    }
}

fn analyze_file(
    root: &Path,
    parser: &mut tree_sitter::Parser,
    job: &FileJob,
    index: usize,
    options: &Options,
) -> FileResult {
    let len = match std::fs::metadata(&job.path) {
        Ok(m) => m.len(),
        Err(e) => return not_analyzed(job, index, format!("cannot read it: {e}")),
    };
    if len > options.max_file_bytes {
        return not_analyzed(
            job,
            index,
            format!(
                "{} bytes, more than the {}-byte limit: not parsed",
                len, options.max_file_bytes
            ),
        );
    }
    let bytes = match std::fs::read(&job.path) {
        Ok(b) => b,
        Err(e) => return not_analyzed(job, index, format!("cannot read it: {e}")),
    };
    // Non-UTF-8 bytes become U+FFFD: positions stay close and nothing is skipped.
    let src = String::from_utf8_lossy(&bytes);
    let Some((mut scan, parse_error)) = scan_source(parser, job.lang, &src) else {
        return not_analyzed(job, index, "the parser gave up on it".into());
    };
    let name = job
        .path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let longest = src.lines().map(str::len).max().unwrap_or(0);
    let minified =
        name.contains(".min.") || name.ends_with("-min.js") || longest > options.long_line;
    let occurrences: Vec<&'static str> = scan.hits.iter().map(|h| h.rule.id).collect();
    let pairs: Vec<(&'static str, Severity)> =
        scan.hits.iter().map(|h| (h.rule.id, h.severity)).collect();
    if minified || job.vendored {
        scan.hits = collapse(
            std::mem::take(&mut scan.hits),
            if minified {
                "in this minified file"
            } else {
                "in this vendored file"
            },
        );
        if minified {
            scan.hits.insert(
                0,
                Hit {
                    rule: &rules::MINIFIED_CODE,
                    severity: Severity::Info,
                    range: 0..0,
                    message: format!(
                        "minified or bundled ({} bytes, longest line {longest} characters); findings below are collapsed per rule",
                        bytes.len()
                    ),
                    evidence: String::new(),
                },
            );
        }
    }
    let index_lines = LineIndex::new(&src);
    let rel = job
        .path
        .strip_prefix(root)
        .unwrap_or(&job.path)
        .to_string_lossy()
        .into_owned();
    let findings = scan
        .hits
        .into_iter()
        .map(|h| {
            let start = index_lines.pos(&src, h.range.start);
            let end = index_lines.pos(&src, h.range.end.max(h.range.start));
            Finding {
                rule: h.rule.id,
                severity: h.severity,
                key: format!("{rel}|{}", h.evidence),
                message: h.message,
                fix: h.rule.fix.to_owned(),
                location: Some(Location {
                    path: job.path.clone(),
                    start,
                    end,
                }),
                client: None,
                server: None,
                evidence: (!h.evidence.is_empty()).then_some(h.evidence),
            }
        })
        .collect();
    FileResult {
        index,
        findings,
        occurrences,
        pairs,
        imports: scan.imports,
        bytes: len,
        minified,
        parse_error,
        parsed: true,
    }
}

/// One hit per rule: the most severe (first of those), with the count.
fn collapse(hits: Vec<Hit>, where_: &str) -> Vec<Hit> {
    let mut by_rule: Vec<(Hit, usize)> = Vec::new();
    for h in hits {
        match by_rule.iter_mut().find(|(k, _)| k.rule.id == h.rule.id) {
            Some((kept, n)) => {
                *n += 1;
                if h.severity > kept.severity {
                    *kept = h;
                }
            }
            None => by_rule.push((h, 1)),
        }
    }
    by_rule
        .into_iter()
        .map(|(mut h, n)| {
            if n > 1 {
                h.message = format!(
                    "{} ({n} occurrences {where_}; the most severe shown)",
                    h.message
                );
            }
            h
        })
        .collect()
}

/// Parses one source text (no file system): the findings `analyze_dir` would report for a file at
/// `path`, before collapsing and capping. For tests and for callers holding source in memory.
pub fn analyze_source(path: &Path, lang: Lang, src: &str) -> Vec<Finding> {
    let mut parser = tree_sitter::Parser::new();
    let Some((scan, _)) = scan_source(&mut parser, lang, src) else {
        return Vec::new();
    };
    let idx = LineIndex::new(src);
    let mut out: Vec<Finding> = scan
        .hits
        .into_iter()
        .map(|h| Finding {
            rule: h.rule.id,
            severity: h.severity,
            key: h.evidence.clone(),
            message: h.message,
            fix: h.rule.fix.to_owned(),
            location: Some(Location {
                path: path.to_path_buf(),
                start: idx.pos(src, h.range.start),
                end: idx.pos(src, h.range.end),
            }),
            client: None,
            server: None,
            evidence: (!h.evidence.is_empty()).then_some(h.evidence),
        })
        .collect();
    sort(&mut out);
    out
}

/// The source text of `range` as a one-line snippet.
pub(crate) fn excerpt(src: &str, range: &Range<usize>) -> String {
    let end = range.end.min(range.start + 240).min(src.len());
    let mut e = end;
    while e > range.start && !src.is_char_boundary(e) {
        e -= 1;
    }
    text::snippet(src.get(range.start..e).unwrap_or(""), 80)
}
