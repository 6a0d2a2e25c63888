//! `palisade scan` through the binary: the fixture homes of `crates/scan/tests/fixtures/`, JSON/SARIF/text
//! output, `--fail-on` and the exit-status contract, discovery from `HOME`, `XDG_CONFIG_HOME`,
//! `CODEX_HOME` and the current directory.

#[path = "../../../scan/tests/support/fixture.rs"]
mod fixture;

use std::collections::BTreeSet;

use palisade_testkit::xdg::TestHome;
use serde_json::Value;

use crate::util::{cmd, code_out_err, output};

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}"))
}

/// The risky fixture home with the modes its permission findings need.
fn bad_home() -> fixture::Home {
    let h = fixture::materialize("home");
    h.chmod(".config/Claude/claude_desktop_config.json", 0o644);
    h.chmod(".cursor/mcp.json", 0o620);
    h
}

#[test]
fn scan_home_json_reports_every_client_and_rule() {
    let t = TestHome::new();
    let h = bad_home();
    let out = output(
        &t,
        &[
            "scan",
            "--home",
            h.path.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let (code, stdout, stderr) = code_out_err(&out);
    assert_eq!(
        code,
        Some(0),
        "no --fail-on: findings do not fail the run\n{stderr}"
    );
    let v = json(&stdout);
    assert_eq!(v["version"], 1);
    let clients: BTreeSet<&str> = v["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client"].as_str().unwrap())
        .collect();
    assert_eq!(clients.len(), 9, "{clients:?}");
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(v["summary"]["findings"], findings.len());
    let rules: BTreeSet<&str> = findings
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for r in [
        "secret-in-env",
        "curl-pipe-shell",
        "container-privileged",
        "project-auto-enable",
    ] {
        assert!(rules.contains(r), "{r} missing: {rules:?}");
    }
    // The pins under --home count, under the name `palisade run` gives each server: the wrapped `time`
    // server is reviewed, the others are named as `palisade run` would name them.
    let unreviewed: BTreeSet<&str> = findings
        .iter()
        .filter(|f| f["rule"] == "tools-never-reviewed")
        .map(|f| f["server"].as_str().unwrap())
        .collect();
    assert!(!unreviewed.contains("time") && unreviewed.contains("github"));
    assert!(findings.iter().any(|f| f["rule"] == "tools-never-reviewed"
        && f["message"].as_str().unwrap().contains("`server-github`")));
    // No fake secret reaches the output.
    for k in fixture::FAKE_KINDS {
        let s = fixture::fake(k);
        assert!(!stdout.contains(&s[s.len() - 12..]), "{k} leaked");
    }
}

#[test]
fn fail_on_sets_exit_status_one_at_or_above_the_threshold() {
    let t = TestHome::new();
    let bad = bad_home();
    let clean = fixture::materialize("clean-home");
    let run = |home: &fixture::Home, sev: &str| {
        let out = output(
            &t,
            &[
                "scan",
                "--home",
                home.path.to_str().unwrap(),
                "--fail-on",
                sev,
            ],
        );
        code_out_err(&out).0
    };
    assert_eq!(run(&bad, "critical"), Some(1));
    assert_eq!(
        run(&clean, "medium"),
        Some(0),
        "a clean home has nothing at or above medium"
    );
    assert_eq!(
        run(&clean, "low"),
        Some(1),
        "but it does have low findings (not wrapped, …)"
    );
}

#[test]
fn usage_errors_exit_two_and_say_why() {
    let t = TestHome::new();
    let h = fixture::materialize("clean-home");
    let home = h.path.to_str().unwrap();
    for (args, says) in [
        (
            vec!["scan", "--home", home, "--fail-on", "severe"],
            "severe",
        ),
        (vec!["scan", "--home", home, "--format", "xml"], "xml"),
        (vec!["scan", "/nonexistent/mcp.json"], "no such file"),
        (
            vec!["scan", "--home", "/nonexistent/home"],
            "not a directory",
        ),
    ] {
        let (code, _, stderr) = code_out_err(&output(&t, &args));
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let not_config = h.join("package.json");
    std::fs::write(&not_config, r#"{"name": "x"}"#).unwrap();
    let (code, _, stderr) = code_out_err(&output(&t, &["scan", not_config.to_str().unwrap()]));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not an MCP client config"), "{stderr}");
}

#[test]
fn sarif_output_is_a_sarif_2_1_0_log_with_relative_uris_under_the_current_directory() {
    let t = TestHome::new();
    let h = bad_home();
    let project = h.join("code/webapp");
    let out = cmd(&t, &["scan", ".", "--format", "sarif"])
        .current_dir(&project)
        .output()
        .unwrap();
    let (code, stdout, stderr) = code_out_err(&out);
    assert_eq!(code, Some(0), "{stderr}");
    let v = json(&stdout);
    assert_eq!(v["version"], "2.1.0");
    let results = v["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    let uris: BTreeSet<&str> = results
        .iter()
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(
        uris.contains(".mcp.json") && uris.contains(".claude/settings.json"),
        "{uris:?}"
    );
    // Only the project's files: a PATH argument alone does not scan the home.
    assert!(!uris.iter().any(|u| u.contains(".codex")));
}

#[test]
fn text_output_is_plain_when_piped_and_ends_with_a_summary() {
    let t = TestHome::new();
    let h = bad_home();
    let out = output(&t, &["scan", "--home", h.path.to_str().unwrap()]);
    let (code, stdout, _) = code_out_err(&out);
    assert_eq!(code, Some(0));
    assert!(
        !stdout.contains('\x1b'),
        "no color when stdout is not a terminal"
    );
    let last = stdout.lines().last().unwrap();
    assert!(
        last.contains("findings in 15 configs (23 servers)") && last.contains("critical"),
        "{last}"
    );
    assert!(
        stdout.contains("~/.cursor/mcp.json"),
        "paths are shown relative to the home"
    );
}

#[test]
fn without_home_it_scans_this_users_locations_and_the_current_project() {
    let t = TestHome::new();
    // The fixture becomes the test's HOME; Zed's settings move with XDG_CONFIG_HOME, Codex's with CODEX_HOME.
    fixture::materialize_into("home", &t.home());
    std::fs::create_dir_all(t.config_home().join("zed")).unwrap();
    std::fs::rename(
        t.home().join(".config/zed/settings.json"),
        t.config_home().join("zed/settings.json"),
    )
    .unwrap();
    let codex = t.root().join("codex");
    std::fs::create_dir_all(&codex).unwrap();
    std::fs::rename(
        t.home().join(".codex/config.toml"),
        codex.join("config.toml"),
    )
    .unwrap();
    let project = t.root().join("checkout");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join(".mcp.json"),
        r#"{"mcpServers": {"here": {"command": "uvx", "args": ["mcp-server-time"]}}}"#,
    )
    .unwrap();
    let out = cmd(&t, &["scan", "--format", "json"])
        .env("CODEX_HOME", &codex)
        .current_dir(&project)
        .output()
        .unwrap();
    let (code, stdout, stderr) = code_out_err(&out);
    assert_eq!(code, Some(0), "{stderr}");
    let v = json(&stdout);
    let paths: Vec<String> = v["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap().to_owned())
        .collect();
    let has = |p: &std::path::Path| paths.iter().any(|x| std::path::Path::new(x) == p);
    assert!(
        has(&t.config_home().join("zed/settings.json")),
        "{paths:#?}"
    );
    assert!(has(&codex.join("config.toml")), "{paths:#?}");
    assert!(has(&project.join(".mcp.json")), "{paths:#?}");
    assert!(has(&t.home().join(".claude.json")), "{paths:#?}");
}
