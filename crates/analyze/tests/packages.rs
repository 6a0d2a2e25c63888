//! Static red flags on crafted packages (`tests/fixtures/packages/<class>/{malicious,benign}`): each
//! class's malicious package must raise its rule, and its benign twin — the same feature done
//! properly — must raise nothing at low or above.

use std::path::{Path, PathBuf};

use palisade_analyze::code::{Options, Report, Verdict, analyze_dir};
use palisade_scan::report::Severity;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/packages")
        .join(rel)
}

fn analyze(rel: &str) -> Report {
    analyze_dir(&fixture(rel), &Options::default()).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn summary(r: &Report) -> String {
    r.findings
        .iter()
        .map(|f| {
            let l = f.location.as_ref().unwrap();
            format!(
                "{} {} {}:{}:{} {}",
                f.severity,
                f.rule,
                r.relative(&l.path),
                l.start.line,
                l.start.column,
                f.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `rule` fired at `severity` or above, in `file`, at `line`.
fn assert_hit(r: &Report, rule: &str, severity: Severity, file: &str, line: usize) {
    let ok = r.findings.iter().any(|f| {
        let l = f.location.as_ref().unwrap();
        f.rule == rule
            && f.severity >= severity
            && r.relative(&l.path) == file
            && l.start.line == line
    });
    assert!(
        ok,
        "expected {rule} ≥ {severity} at {file}:{line}; got:\n{}",
        summary(r)
    );
}

fn assert_quiet(rel: &str) {
    let r = analyze(rel);
    let loud: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Low)
        .collect();
    assert!(
        loud.is_empty(),
        "{rel} should raise nothing at low or above:\n{}",
        summary(&r)
    );
    assert!(r.score <= 1, "{rel}: score {}", r.score);
    assert!(r.stats.files >= 1, "{rel}: nothing was analyzed");
}

#[test]
fn env_posted_to_the_network_is_an_exfiltration_pattern() {
    let r = analyze("exfiltration/malicious");
    assert_hit(&r, "env-harvesting", Severity::High, "index.js", 3);
    assert_hit(
        &r,
        "exfiltration-pattern",
        Severity::Critical,
        "index.js",
        3,
    );
    assert_hit(&r, "outbound-network", Severity::Low, "index.js", 4);
    assert_eq!(r.verdict(), Verdict::Dangerous);
    assert!(r.score >= 40);
}

#[test]
fn a_constant_api_call_with_one_named_variable_is_not_flagged() {
    assert_quiet("exfiltration/benign");
    let r = analyze("exfiltration/benign");
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "outbound-network")
        .expect("the fetch is noted");
    assert_eq!(f.severity, Severity::Info);
    assert!(
        f.message.contains("https://api.example.com/v1/items"),
        "{}",
        f.message
    );
}

#[test]
fn serializing_or_walking_os_environ_is_harvesting_reading_one_is_not() {
    let r = analyze("env-harvesting/malicious");
    assert_hit(&r, "env-harvesting", Severity::High, "server.py", 3);
    assert_hit(&r, "env-harvesting", Severity::Medium, "server.py", 4);
    let r = analyze("env-harvesting/benign");
    assert!(
        r.findings.iter().all(|f| f.severity <= Severity::Low),
        "a prefix-filtered comprehension is at most low:\n{}",
        summary(&r)
    );
}

#[test]
fn shells_are_flagged_by_how_the_command_is_built() {
    let r = analyze("shell/malicious");
    assert_hit(&r, "shell-command", Severity::High, "index.ts", 4);
    assert_hit(&r, "shell-command", Severity::High, "index.ts", 5);
    let curl = r
        .findings
        .iter()
        .find(|f| f.rule == "shell-command" && f.message.contains("downloads and runs"))
        .unwrap_or_else(|| panic!("{}", summary(&r)));
    assert_eq!(curl.severity, Severity::High);
    assert_hit(&r, "shell-command", Severity::High, "tool.py", 3);
    assert_hit(&r, "shell-command", Severity::High, "tool.py", 4);
    let r = analyze("shell/benign");
    assert!(
        r.findings
            .iter()
            .all(|f| f.rule == "process-spawn" && f.severity == Severity::Low),
        "{}",
        summary(&r)
    );
    assert_eq!(r.findings.len(), 2, "{}", summary(&r));
}

#[test]
fn eval_function_vm_and_exec_are_dynamic_code_but_lookalikes_are_not() {
    let r = analyze("dynamic-code/malicious");
    for line in [3, 4, 5, 6] {
        assert_hit(&r, "dynamic-code", Severity::High, "index.js", line);
    }
    assert_hit(&r, "dynamic-code", Severity::High, "plugin.py", 3);
    assert_hit(&r, "dynamic-import", Severity::Medium, "plugin.py", 4);
    assert_quiet("dynamic-code/benign");
}

#[test]
fn decode_then_execute_blobs_and_obfuscator_names_are_packed_code() {
    let r = analyze("obfuscation/malicious");
    assert_hit(&r, "packed-code", Severity::High, "index.js", 2);
    assert_hit(&r, "encoded-blob", Severity::Medium, "index.js", 1);
    assert_hit(&r, "packed-code", Severity::High, "index.js", 3);
    assert_hit(&r, "packed-code", Severity::High, "loader.py", 2);
    assert_quiet("obfuscation/benign");
}

#[test]
fn credential_paths_are_found_through_joins_concatenation_and_escapes() {
    let r = analyze("sensitive-files/malicious");
    assert_hit(&r, "sensitive-file-access", Severity::High, "index.js", 4);
    assert_hit(&r, "sensitive-file-access", Severity::High, "index.js", 5);
    assert_hit(&r, "sensitive-file-access", Severity::High, "index.js", 6);
    assert_hit(&r, "sensitive-file-access", Severity::High, "index.js", 7);
    assert_hit(&r, "sensitive-file-access", Severity::High, "steal.py", 2);
    assert_hit(&r, "sensitive-file-access", Severity::High, "steal.py", 3);
    let r = analyze("sensitive-files/benign");
    assert!(
        r.findings.iter().all(|f| f.severity <= Severity::Low),
        "a sentence that mentions ~/.ssh is at most low:\n{}",
        summary(&r)
    );
}

#[test]
fn writing_shell_startup_files_and_git_hooks_is_persistence() {
    let r = analyze("persistence/malicious");
    assert_hit(&r, "persistence-write", Severity::High, "index.js", 3);
    assert_hit(&r, "persistence-write", Severity::High, "index.js", 4);
    let r = analyze("persistence/benign");
    assert!(
        r.findings.iter().all(|f| f.severity <= Severity::Low),
        "{}",
        summary(&r)
    );
}

#[test]
fn computed_module_names_are_dynamic_imports_literal_ones_are_not() {
    let r = analyze("dynamic-import/malicious");
    assert_hit(&r, "dynamic-import", Severity::Medium, "index.mjs", 2);
    assert_hit(&r, "dynamic-import", Severity::Medium, "index.mjs", 3);
    assert_quiet("dynamic-import/benign");
}

#[test]
fn a_minified_bundle_collapses_to_one_finding_per_rule_with_the_count() {
    let r = analyze("minified/pkg");
    let evals: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule == "dynamic-code")
        .collect();
    assert_eq!(evals.len(), 1, "{}", summary(&r));
    assert!(
        evals[0].message.contains("120 occurrences"),
        "{}",
        evals[0].message
    );
    assert!(r.findings.iter().any(|f| f.rule == "minified-code"));
    assert_eq!(r.occurrences.get("dynamic-code"), Some(&120));
    assert_eq!(r.stats.minified, 1);
}

#[test]
fn the_per_rule_cap_keeps_the_most_severe_and_counts_the_rest() {
    let options = Options {
        max_per_rule: 2,
        ..Options::default()
    };
    let r = analyze_dir(&fixture("dynamic-code/malicious"), &options).unwrap();
    assert_eq!(
        r.findings
            .iter()
            .filter(|f| f.rule == "dynamic-code")
            .count(),
        2
    );
    assert_eq!(
        r.suppressed.get("dynamic-code"),
        Some(&3),
        "{:?}",
        r.suppressed
    );
}

#[test]
fn test_directories_are_skipped_unless_code_loads_them() {
    let r = analyze("test-rescue/pkg");
    assert_hit(&r, "shell-command", Severity::High, "test/helper.js", 1);
    assert!(
        r.findings.iter().all(|f| !f
            .location
            .as_ref()
            .unwrap()
            .path
            .ends_with("unused.test.js")),
        "an unreferenced test file is not analyzed:\n{}",
        summary(&r)
    );
    assert_eq!(r.stats.rescued, 1);
    let all = analyze_dir(
        &fixture("test-rescue/pkg"),
        &Options {
            include_tests: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert!(all.findings.iter().any(|f| {
        f.location
            .as_ref()
            .unwrap()
            .path
            .ends_with("unused.test.js")
    }));
}

#[test]
fn a_missing_path_is_an_error_naming_it() {
    let e = analyze_dir(
        Path::new("/nonexistent/palisade-analyze"),
        &Options::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("/nonexistent/palisade-analyze"),
        "{e}"
    );
}

#[test]
fn the_real_pinned_servers_raise_nothing_above_low_except_everythings_get_env() {
    // server-filesystem does what it says; server-everything's `get-env` tool really does serialize the
    // whole environment (its documented purpose), and that is what the report says.
    let nm = palisade_testkit::peers::peers_dir().join("node_modules/@modelcontextprotocol");
    let fs = analyze_dir(&nm.join("server-filesystem"), &Options::default()).unwrap();
    assert!(
        fs.findings.iter().all(|f| f.severity <= Severity::Low),
        "{}",
        summary(&fs)
    );
    let ev = analyze_dir(&nm.join("server-everything"), &Options::default()).unwrap();
    let loud: Vec<_> = ev
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Medium)
        .collect();
    assert_eq!(loud.len(), 1, "{}", summary(&ev));
    assert_eq!(loud[0].rule, "env-harvesting");
    assert!(
        loud[0]
            .location
            .as_ref()
            .unwrap()
            .path
            .ends_with("tools/get-env.js")
    );
}

#[test]
fn json_text_and_sarif_carry_the_same_findings() {
    let r = analyze("exfiltration/malicious");
    let j = palisade_analyze::render::json(&r);
    assert_eq!(j["verdict"], "dangerous");
    assert_eq!(j["findings"].as_array().unwrap().len(), r.findings.len());
    assert_eq!(j["findings"][0]["rule"], "exfiltration-pattern");
    assert_eq!(j["findings"][0]["path"], "index.js");
    let t = palisade_analyze::render::text(&r);
    assert!(
        t.contains("index.js:3:") && t.contains("exfiltration-pattern") && t.contains("dangerous"),
        "{t}"
    );
    let tool = palisade_scan::report::sarif::Tool {
        name: "palisade",
        version: "0",
        information_uri: "https://example.invalid",
    };
    let s = palisade_analyze::render::sarif(&r, tool);
    let results = s["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), r.findings.len());
    let rules: Vec<&str> = s["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        results
            .iter()
            .all(|x| rules.contains(&x["ruleId"].as_str().unwrap()))
    );
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "index.js"
    );
}
