//! Fixture homes scanned end to end: every client format, realistic risky and clean configs.
//!
//! Fixtures live in `tests/fixtures/<name>/` with two kinds of markers, replaced when a test copies the
//! fixture into a fresh directory: `@@HOME@@` (that directory) and `@@FAKE:<kind>@@` (a fake credential
//! of that format, assembled here from a fixed pseudo-random stream, so no token-shaped string is ever
//! committed and GitHub push protection has nothing to trip on). Git keeps no permission bits, so every
//! file is set to 0600 and the modes a test needs are set explicitly.
//!
//! Golden outputs: `tests/golden/`. `UPDATE_GOLDEN=1 cargo test -p palisade-scan` rewrites them; otherwise
//! a difference fails the test.

#[path = "support/fixture.rs"]
mod fixture;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use palisade_scan::report::sarif;
use palisade_scan::{Error, Input, Locations, Options, Report, Severity, render, rules, scan};

use fixture::{FAKE_KINDS, FIXTURES, Home, fake, materialize};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");

/// A stand-in for `palisade run`'s name derivation (the binary passes the real one): the first word
/// after the launcher that is not a flag, without version.
fn name(argv: &[String]) -> String {
    let word = argv
        .iter()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .or(argv.first());
    let word = word.map_or("", |a| a.rsplit('/').next().unwrap_or(a));
    let word = word.split(['@', '=']).next().unwrap_or(word);
    word.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn reviewed(home: &Path) -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(home.join(".local/state/palisade/pins.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["servers"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn scan_home(home: &Home) -> Report {
    let r = reviewed(&home.path);
    let input = Input {
        home: home.path.clone(),
        locations: Some(Locations::for_home(&home.path)),
        paths: vec![],
    };
    scan(
        &input,
        &Options {
            server_name: &name,
            reviewed: Some(&r),
        },
    )
    .unwrap()
}

/// The bad home with the modes its permission findings need.
fn bad_home() -> Home {
    let h = materialize("home");
    h.chmod(".config/Claude/claude_desktop_config.json", 0o644);
    h.chmod(".cursor/mcp.json", 0o620);
    h.chmod(".codex/config.toml", 0o644);
    h
}

fn golden(file: &str, actual: &str) {
    let path = Path::new(GOLDEN).join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(GOLDEN).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output at line {} (UPDATE_GOLDEN=1 rewrites it after review)\n--- expected\n{}\n--- actual\n{}",
            path.display(),
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

fn normalized(s: &str, home: &Home) -> String {
    let h = home.path.display().to_string();
    // Also the JSON Pointer form of the path (`/` escaped as `~1`).
    s.replace(&h, "$HOME")
        .replace(&h.replace('/', "~1"), "$HOME")
}

#[test]
fn text_output_matches_golden() {
    let h = bad_home();
    let out = render::text(&scan_home(&h), render::Style { color: false });
    assert!(!out.contains("\x1b["), "no color unless asked");
    golden("home.txt", &normalized(&out, &h));
}

#[test]
fn json_output_matches_golden() {
    let h = bad_home();
    let out = serde_json::to_string_pretty(&render::json(&scan_home(&h))).unwrap() + "\n";
    golden("home.json", &normalized(&out, &h));
}

#[test]
fn color_is_only_added_when_asked() {
    let h = bad_home();
    let out = render::text(&scan_home(&h), render::Style { color: true });
    assert!(out.contains("\x1b[1;31mcritical"));
}

#[test]
fn every_rule_fires_somewhere_in_the_risky_home() {
    let h = bad_home();
    let fired: BTreeSet<&str> = scan_home(&h).findings.iter().map(|f| f.rule).collect();
    let all: BTreeSet<&str> = rules::RULES.iter().map(|r| r.meta.id).collect();
    let missing: Vec<_> = all.difference(&fired).collect();
    assert!(
        missing.is_empty(),
        "rules without a fixture case: {missing:?}"
    );
}

#[test]
fn every_client_format_is_found_and_parsed() {
    let h = bad_home();
    let r = scan_home(&h);
    let clients: BTreeSet<&str> = r.configs.iter().map(|c| c.client.id()).collect();
    for c in [
        "claude-desktop",
        "claude-code",
        "cursor",
        "vscode",
        "windsurf",
        "gemini-cli",
        "codex",
        "zed",
        "kiro",
    ] {
        assert!(clients.contains(c), "{c} not found: {clients:?}");
    }
    // Only the deliberately broken project file fails to parse.
    let broken: Vec<_> = r
        .configs
        .iter()
        .filter(|c| c.error.is_some())
        .map(|c| c.path.clone())
        .collect();
    assert_eq!(broken, [h.join("code/webapp/.cursor/mcp.json")]);
    // Both Claude Desktop layouts (Linux, macOS), the project listed in ~/.claude.json, and not the
    // project that no longer exists.
    let paths: Vec<_> = r.configs.iter().map(|c| c.path.clone()).collect();
    assert!(
        paths.contains(&h.join("Library/Application Support/Claude/claude_desktop_config.json"))
    );
    assert!(paths.contains(&h.join("code/webapp/.mcp.json")));
    assert!(paths.contains(&h.join("code/webapp/.vscode/mcp.json")));
    assert_eq!(r.server_count(), 23);
}

#[test]
fn clean_configs_have_nothing_at_or_above_medium() {
    let h = materialize("clean-home");
    let r = scan_home(&h);
    assert!(
        r.configs.len() >= 9,
        "{:?}",
        r.configs.iter().map(|c| &c.path).collect::<Vec<_>>()
    );
    let bad: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Medium)
        .map(|f| {
            format!(
                "{} {}: {}",
                f.rule,
                f.server.as_deref().unwrap_or("-"),
                f.message
            )
        })
        .collect();
    assert!(bad.is_empty(), "false positives: {bad:#?}");
    // The wrapped, pinned server is neither nagged about wrapping nor about reviews.
    assert!(
        !r.findings
            .iter()
            .any(|f| f.server.as_deref() == Some("filesystem")
                && (f.rule == "not-wrapped" || f.rule == "tools-never-reviewed"))
    );
}

#[test]
fn no_secret_is_printed_in_any_format() {
    let h = bad_home();
    let r = scan_home(&h);
    let sarif_log = sarif::log(
        sarif::Tool {
            name: "palisade",
            version: "0",
            information_uri: "https://example.invalid",
        },
        &rules::metas(),
        &r.findings,
        None,
    );
    let outputs = [
        render::text(&r, render::Style { color: false }),
        serde_json::to_string(&render::json(&r)).unwrap(),
        serde_json::to_string(&sarif_log).unwrap(),
    ];
    for k in FAKE_KINDS {
        let secret = fake(k);
        // No 10-character window of any secret appears anywhere.
        for w in secret.as_bytes().windows(10) {
            let w = std::str::from_utf8(w).unwrap();
            for o in &outputs {
                assert!(!o.contains(w), "{k}: `{w}` leaked");
            }
        }
    }
    // The masked form is shown instead.
    let gh = fake("github");
    assert!(outputs[0].contains(&format!("ghp_…{}", &gh[gh.len() - 4..])));
}

#[test]
fn findings_point_at_the_secret_in_the_file() {
    let h = bad_home();
    let r = scan_home(&h);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "secret-in-env" && f.server.as_deref() == Some("github"))
        .unwrap();
    let loc = f.location.as_ref().unwrap();
    let text = std::fs::read_to_string(&loc.path).unwrap();
    let line = text.lines().nth(loc.start.line - 1).unwrap();
    let at: String = line.chars().skip(loc.start.column - 1).take(4).collect();
    assert_eq!(at, "ghp_");
    assert_eq!(loc.end.column - loc.start.column, fake("github").len());
}

#[test]
fn sarif_validates_against_the_2_1_0_schema_and_meets_code_scanning_needs() {
    let h = bad_home();
    let r = scan_home(&h);
    let log = sarif::log(
        sarif::Tool {
            name: "palisade",
            version: "0.1.0",
            information_uri: "https://example.invalid/palisade",
        },
        &rules::metas(),
        &r.findings,
        Some(&h.path),
    );
    // The vendored schema is byte for byte the published one. Its `language` patterns have an unescaped
    // `]`, a literal in ECMAScript regexes but refused by the `regex` format check jsonschema applies to
    // schemas; escaping it keeps the meaning and lets the schema compile.
    let text =
        std::fs::read_to_string(Path::new(FIXTURES).join("sarif-schema-2.1.0.json")).unwrap();
    let quirk = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
    assert_eq!(
        text.matches(quirk).count(),
        2,
        "the schema changed: revisit this workaround"
    );
    let text = text.replace(quirk, r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}\\]?$""#);
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v
        .iter_errors(&log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // What GitHub code scanning needs beyond the schema.
    let run = &log["runs"][0];
    let rules_json = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules_json.len(), rules::RULES.len());
    for rule in rules_json {
        let s: f64 = rule["properties"]["security-severity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=10.0).contains(&s));
        assert!(!rule["help"]["text"].as_str().unwrap().is_empty());
    }
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), r.findings.len());
    for res in results {
        let id = res["ruleId"].as_str().unwrap();
        let idx = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules_json[idx]["id"], id);
        let loc = &res["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        assert!(!uri.starts_with('/') && !uri.contains(' '), "{uri}");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(res["partialFingerprints"]["palisadeFinding/v1"].is_string());
    }
}

#[test]
fn permissions_decide_the_permission_findings() {
    let rules_for = |h: &Home, rel: &str| -> Vec<&'static str> {
        let p = h.join(rel);
        scan_home(h)
            .findings
            .into_iter()
            .filter(|f| f.location.as_ref().is_some_and(|l| l.path == p) && f.server.is_none())
            .map(|f| f.rule)
            .collect()
    };
    let h = materialize("home");
    let with_secret = ".codeium/windsurf/mcp_config.json";
    let without = ".config/Code/User/settings.json";
    assert!(rules_for(&h, with_secret).is_empty(), "0600 is fine");
    h.chmod(with_secret, 0o644);
    assert_eq!(
        rules_for(&h, with_secret),
        ["secrets-file-readable-by-others"]
    );
    h.chmod(with_secret, 0o640);
    assert_eq!(
        rules_for(&h, with_secret),
        ["secrets-file-readable-by-others"]
    );
    h.chmod(with_secret, 0o602);
    assert_eq!(rules_for(&h, with_secret), ["config-writable-by-others"]);
    assert!(rules_for(&h, without).is_empty());
    h.chmod(without, 0o644);
    assert_eq!(rules_for(&h, without), ["config-readable-by-others"]);
}

#[test]
fn codex_home_moves_the_codex_config() {
    let h = materialize("home");
    let elsewhere = h.join("codex-elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::rename(h.join(".codex/config.toml"), elsewhere.join("config.toml")).unwrap();
    let mut loc = Locations::for_home(&h.path);
    let input = |loc: Locations| Input {
        home: h.path.clone(),
        locations: Some(loc),
        paths: vec![],
    };
    let codex = |r: Report| {
        r.configs
            .iter()
            .filter(|c| c.client.id() == "codex")
            .count()
    };
    assert_eq!(
        codex(
            scan(
                &input(loc.clone()),
                &Options {
                    server_name: &name,
                    reviewed: None
                }
            )
            .unwrap()
        ),
        0
    );
    loc.codex_home = elsewhere;
    assert_eq!(
        codex(
            scan(
                &input(loc),
                &Options {
                    server_name: &name,
                    reviewed: None
                }
            )
            .unwrap()
        ),
        1
    );
}

#[test]
fn explicit_paths_are_scanned_alone_and_checked() {
    let h = materialize("home");
    let opts = Options {
        server_name: &name,
        reviewed: None,
    };
    let only = |paths: Vec<PathBuf>| {
        scan(
            &Input {
                home: h.path.clone(),
                locations: None,
                paths,
            },
            &opts,
        )
    };
    // A file whose name says nothing: the client is told from the content.
    let odd = h.join("team-servers.json");
    std::fs::copy(h.join(".cursor/mcp.json"), &odd).unwrap();
    let r = only(vec![odd.clone()]).unwrap();
    assert_eq!(r.configs.len(), 1);
    assert_eq!(r.configs[0].client.id(), "other");
    assert_eq!(r.configs[0].servers.len(), 2);
    // A project directory: its project configs.
    let r = only(vec![h.join("code/webapp")]).unwrap();
    let mut names: Vec<_> = r
        .configs
        .iter()
        .map(|c| c.path.strip_prefix(&h.path).unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".claude/settings.json",
            ".cursor/mcp.json",
            ".mcp.json",
            ".vscode/mcp.json"
        ]
        .map(|p| PathBuf::from("code/webapp").join(p))
    );
    assert!(matches!(
        only(vec![h.join("missing.json")]),
        Err(Error::NotFound(_))
    ));
    let not = h.join("package.json");
    std::fs::write(&not, r#"{"name": "x", "version": "1.0.0"}"#).unwrap();
    let e = only(vec![not]).unwrap_err();
    assert!(
        matches!(e, Error::NotAConfig { .. }) && e.to_string().contains("mcpServers"),
        "{e}"
    );
}

#[test]
fn reviews_come_from_the_pins_under_the_name_palisade_uses() {
    let h = materialize("home");
    let time = |r: &Report| {
        r.findings
            .iter()
            .any(|f| f.rule == "tools-never-reviewed" && f.server.as_deref() == Some("time"))
    };
    assert!(!time(&scan_home(&h)), "`--server time` has approved pins");
    std::fs::remove_file(h.join(".local/state/palisade/pins.json")).unwrap();
    assert!(time(&scan_home(&h)));
}
