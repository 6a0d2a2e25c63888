//! The command-line contract (DESIGN §5): exit codes 0 ok · 1 findings, denials or failed verification ·
//! 2 usage or configuration error; `policy check|default`; `inspect`; `pin list|accept`; and the prod
//! profile's pre-approved tools end to end.

use crate::util::{audit_log, call_text, code_out_err, dump, events, output, spawn_run};
use palisade_testkit::client::LEGACY_PROTOCOL_VERSION;
use palisade_testkit::{TestHome, peers};
use serde_json::{Value, json};
use std::time::Duration;

/// `palisade ARGS…` → (exit code, stdout, stderr).
fn run(home: &TestHome, args: &[&str]) -> (Option<i32>, String, String) {
    code_out_err(&output(home, args))
}

/// `ARGS… -- <server-everything argv>`.
fn with_server_everything<'a>(args: &[&'a str], argv: &'a [String]) -> Vec<&'a str> {
    let mut v: Vec<&str> = args.to_vec();
    v.push("--");
    v.extend(argv.iter().map(String::as_str));
    v
}

#[test]
fn policy_default_prints_toml_that_policy_check_accepts() {
    let home = TestHome::new();
    let (code, toml, err) = run(&home, &["policy", "default"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(toml.contains("version = 1"), "{toml}");
    assert!(toml.contains("[pinning]"), "{toml}");
    let file = home.root().join("default.toml");
    std::fs::write(&file, &toml).unwrap();

    let (code, out, err) = run(&home, &["policy", "check", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out.trim(), format!("{}: ok", file.display()));
}

#[test]
fn policy_check_of_a_hand_written_good_policy_exits_0() {
    let home = TestHome::new();
    let file = home.root().join("good.toml");
    std::fs::write(
        &file,
        "version = 1\nprofile = \"prod\"\n\n[tools]\ndeny = [\"*delete*\"]\n\n[limits]\ncall_timeout = \"30s\"\n",
    )
    .unwrap();
    let (code, out, err) = run(&home, &["policy", "check", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!out.contains("error["), "{out}");
}

#[test]
fn policy_check_names_each_error_with_its_code_and_line_and_exits_1() {
    let home = TestHome::new();
    let file = home.root().join("bad.toml");
    std::fs::write(
        &file,
        "version = 1\n\n[tools]\nalow = [\"*\"]\n\n[limits]\ncall_timeout = \"60 parsecs\"\n",
    )
    .unwrap();
    let (code, out, err) = run(&home, &["policy", "check", file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "stdout:\n{out}\nstderr:\n{err}");
    let path = file.display().to_string();
    let unknown = out
        .lines()
        .find(|l| l.starts_with("error[unknown-key]"))
        .unwrap_or_else(|| panic!("no error[unknown-key] in:\n{out}"));
    assert!(
        unknown.contains(&format!("{path}:4:")),
        "line 4 expected: {unknown}"
    );
    assert!(unknown.contains("alow"), "{unknown}");
    let duration = out
        .lines()
        .find(|l| l.starts_with("error[") && l.contains("call_timeout"))
        .unwrap_or_else(|| panic!("no error about call_timeout in:\n{out}"));
    assert!(
        duration.contains(&format!("{path}:7:")),
        "line 7 expected: {duration}"
    );
    assert!(
        out.contains("help:"),
        "each error says how to fix it:\n{out}"
    );
}

#[test]
fn policy_check_of_an_unreadable_file_is_a_usage_error_exit_2() {
    let home = TestHome::new();
    let missing = home.root().join("no-such-policy.toml");
    let (code, out, err) = run(&home, &["policy", "check", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("cannot read policy"), "{err}");
    assert!(err.contains("no-such-policy.toml"), "{err}");
    // A directory is not a policy either.
    let (code, _, err) = run(&home, &["policy", "check", home.root().to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn run_without_a_server_command_exits_2_and_says_to_pass_it_after_double_dash() {
    let home = TestHome::new();
    let (code, out, err) = run(&home, &["run"]);
    assert_eq!(code, Some(2), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("`--`"), "{err}");
    assert!(
        out.is_empty(),
        "nothing on stdout, it belongs to MCP: {out}"
    );
    // Nothing was started, so nothing was logged.
    assert!(!home.state_home().join("palisade").join("audit").exists());
}

#[test]
fn unknown_flags_and_conflicting_flags_are_usage_errors_exit_2() {
    let home = TestHome::new();
    for args in [
        &["run", "--no-such-flag", "--", "true"][..],
        &["run", "--profile", "staging", "--", "true"],
        &["logs", "--follow", "--verify"],
        &["pin", "accept", "--all", "echo"],
        &["no-such-command"],
    ] {
        let (code, out, err) = run(&home, args);
        assert_eq!(
            code,
            Some(2),
            "palisade {args:?}\nstdout:\n{out}\nstderr:\n{err}"
        );
        assert!(!err.is_empty(), "palisade {args:?} must say what is wrong");
    }
    // `--help` is not an error.
    let (code, out, _) = run(&home, &["run", "--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("--allow-tool"), "{out}");
}

#[test]
fn run_with_an_invalid_policy_exits_2_before_starting_the_server() {
    let home = TestHome::new();
    let policy = home.root().join("bad.toml");
    std::fs::write(&policy, "version = 1\n[limits]\ncall_timeout = \"soon\"\n").unwrap();
    let marker = home.root().join("server-started");
    let (code, _, err) = run(
        &home,
        &[
            "run",
            "--policy",
            policy.to_str().unwrap(),
            "--",
            "/usr/bin/touch",
            marker.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("call_timeout"), "{err}");
    assert!(err.contains("bad.toml:3:"), "{err}");
    assert!(
        !marker.exists(),
        "the server must not start under an invalid policy"
    );
}

#[test]
fn pin_accept_without_tools_or_pins_is_a_usage_error_exit_2() {
    let home = TestHome::new();
    let (code, _, err) = run(&home, &["pin", "accept", "--all"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no pinned servers yet"), "{err}");
    let (code, _, err) = run(&home, &["pin", "accept", "--server", "x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--all"), "{err}");
    let (code, out, _) = run(&home, &["pin", "list"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("no pins"), "{out}");
}

#[test]
fn inspect_json_lists_every_tool_with_its_pin_annotations_and_findings() {
    let home = TestHome::new();
    let se = peers::server_everything_stdio();
    let (code, out, err) = run(
        &home,
        &with_server_everything(&["inspect", "--format", "json"], &se),
    );
    assert_eq!(code, Some(0), "{err}");
    let doc: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"));
    assert!(doc["server"].is_object(), "{doc}");
    assert_eq!(doc["server"]["name"], "server-everything");
    let tools = doc["tools"].as_array().expect("tools[]");
    assert!(tools.len() >= 5, "{doc}");
    for t in tools {
        let name = t["name"].as_str().unwrap_or_else(|| panic!("name: {t}"));
        let pin = t["pin"].as_str().unwrap_or_else(|| panic!("pin: {t}"));
        let hex = pin
            .strip_prefix("sha256:")
            .unwrap_or_else(|| panic!("{name}: pin {pin}"));
        assert!(
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}: pin {pin}"
        );
        assert!(t["annotations"].is_object(), "{name}: {t}");
        let findings = t["findings"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: findings {t}"));
        for f in findings {
            for key in ["id", "severity", "message"] {
                assert!(f[key].is_string(), "{name}: finding without {key}: {f}");
            }
        }
    }
    let echo = tools
        .iter()
        .find(|t| t["name"] == "echo")
        .expect("echo tool");
    assert_eq!(echo["annotations"]["readOnlyHint"], true);
    // Distinct definitions, distinct pins.
    let mut pins: Vec<&str> = tools.iter().map(|t| t["pin"].as_str().unwrap()).collect();
    pins.sort_unstable();
    pins.dedup();
    assert_eq!(pins.len(), tools.len());
}

#[test]
fn inspect_text_prints_a_header_and_one_row_per_tool() {
    let home = TestHome::new();
    let se = peers::server_everything_stdio();
    let (code, json_out, _) = run(
        &home,
        &with_server_everything(&["inspect", "--format", "json"], &se),
    );
    assert_eq!(code, Some(0));
    let doc: Value = serde_json::from_str(&json_out).unwrap();
    let names: Vec<&str> = doc["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();

    let (code, out, err) = run(&home, &with_server_everything(&["inspect"], &se));
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("server server-everything")
            && lines[0].contains(&format!("{} tools", names.len())),
        "{out}"
    );
    let header = lines
        .iter()
        .position(|l| l.starts_with("TOOL") && l.contains("PIN"))
        .unwrap_or_else(|| panic!("no table header:\n{out}"));
    // The table ends at the first blank line (prompts and resources follow it).
    let rows: Vec<&str> = lines[header + 1..]
        .iter()
        .copied()
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with(' ') && !l.starts_with("hint:"))
        .collect();
    assert_eq!(rows.len(), names.len(), "one row per tool:\n{out}");
    for (row, name) in rows.iter().zip(&names) {
        assert_eq!(row.split_whitespace().next(), Some(*name), "{row}");
    }
}

#[test]
fn inspect_records_tools_awaiting_approval_and_pin_accept_all_approves_them() {
    let home = TestHome::new();
    let se = peers::server_everything_stdio();
    let (code, out, err) = run(
        &home,
        &with_server_everything(
            &["inspect", "--format", "json", "--server", "everything"],
            &se,
        ),
    );
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let tools = doc["tools"].as_array().unwrap();
    assert!(tools.iter().all(|t| t["status"] == "new"), "{doc}");

    let (code, listed, _) = run(&home, &["pin", "list"]);
    assert_eq!(code, Some(0));
    assert!(listed.lines().any(|l| l == "everything"), "{listed}");
    for t in tools {
        let name = t["name"].as_str().unwrap();
        let row = listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{listed}"));
        assert!(row.contains("awaiting approval"), "{row}");
        let short = &t["pin"].as_str().unwrap()["sha256:".len().."sha256:".len() + 16];
        assert!(row.contains(short), "{row} should show pin {short}");
    }

    let (code, accepted, err) = run(&home, &["pin", "accept", "--server", "everything", "--all"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        accepted
            .lines()
            .filter(|l| l.starts_with("approved everything/"))
            .count(),
        tools.len(),
        "{accepted}"
    );

    let (code, listed, _) = run(&home, &["pin", "list", "--server", "everything"]);
    assert_eq!(code, Some(0));
    assert!(!listed.contains("awaiting"), "{listed}");
    for t in tools {
        let name = t["name"].as_str().unwrap();
        assert!(
            listed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name) && l.contains("approved")),
            "{name} not approved:\n{listed}"
        );
    }
    // A second inspect now reports them approved.
    let (_, out, _) = run(
        &home,
        &with_server_everything(
            &["inspect", "--format", "json", "--server", "everything"],
            &se,
        ),
    );
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(
        doc["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "approved"),
        "{doc}"
    );
}

#[test]
fn prod_profile_hides_unapproved_tools_until_inspect_and_pin_accept_approve_them() {
    let home = TestHome::new();
    let se = peers::server_everything_stdio();
    let flags = ["--profile", "prod", "--server", "everything"];

    // No pins yet: nothing is offered, and a call is refused as not approved.
    let mut palisade = spawn_run(&home, &flags, &se);
    // No client capabilities: server-everything would ask for roots and linger on the open request.
    palisade.initialize_with(LEGACY_PROTOCOL_VERSION, json!({}));
    let list = palisade.request("tools/list", json!({}));
    assert_eq!(list["result"]["tools"], json!([]), "{list}");
    let r = palisade.request(
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "hi"}}),
    );
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(call_text(&r).contains("awaits approval"), "{r}");
    palisade.close_stdin();
    palisade
        .wait_exit(Duration::from_secs(10))
        .expect("palisade exits");
    let log = audit_log(&home, "everything");
    let refused: Vec<Value> = events(&log)
        .into_iter()
        .filter(|e| e["method"] == "tools/call" && e["tool"] == "echo")
        .collect();
    assert_eq!(refused.len(), 1, "{}", dump(&log));
    assert_eq!(refused[0]["decision"], "deny");
    assert_eq!(refused[0]["reason"], "tool-not-approved");
    assert_eq!(refused[0]["status"], "denied");

    // Review and approve.
    let (code, _, err) = run(
        &home,
        &with_server_everything(&["inspect", "--server", "everything"], &se),
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&home, &["pin", "accept", "--server", "everything", "--all"]);
    assert_eq!(code, Some(0), "{err}");

    // Now visible and callable.
    let mut palisade = spawn_run(&home, &flags, &se);
    // No client capabilities: server-everything would ask for roots and linger on the open request.
    palisade.initialize_with(LEGACY_PROTOCOL_VERSION, json!({}));
    let list = palisade.request("tools/list", json!({}));
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"echo"), "{list}");
    let r = palisade.request(
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "hi"}}),
    );
    assert_ne!(r["result"]["isError"], true, "{r}");
    assert_eq!(call_text(&r), "Echo: hi");
    palisade.close_stdin();
    palisade
        .wait_exit(Duration::from_secs(10))
        .expect("palisade exits");
}

#[test]
fn logs_of_a_missing_file_is_a_usage_error_exit_2_with_or_without_verify() {
    let home = TestHome::new();
    let missing = home.root().join("no-such-log.jsonl");
    for args in [
        &["logs", "--verify", missing.to_str().unwrap()][..],
        &["logs", missing.to_str().unwrap()],
    ] {
        let (code, out, err) = run(&home, args);
        assert_eq!(
            code,
            Some(2),
            "palisade {args:?}\nstdout:\n{out}\nstderr:\n{err}"
        );
        assert!(err.contains("cannot open"), "{err}");
        assert!(err.contains("no-such-log.jsonl"), "{err}");
    }
}

/// The CI machines support the full sandbox (TESTING.md): `doctor` must say tier 1 there, in both formats,
/// and agree with itself. A machine that lost a capability fails here instead of silently running degraded.
#[test]
fn doctor_reports_tier_one_on_this_machine_in_text_and_json() {
    let home = TestHome::new();
    let (code, out, err) = run(&home, &["doctor", "--format", "json"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tier"], 1, "{out}");
    assert_eq!(v["degraded"], false);
    assert!(v["landlock"]["abi"].as_i64().unwrap() >= 4, "{out}");
    assert_eq!(v["seccomp"], true);
    assert_eq!(v["user_namespaces"]["ok"], true);
    let (code, text, _) = run(&home, &["doctor"]);
    assert_eq!(code, Some(0));
    assert!(
        text.contains("sandbox tier:") && text.contains('1'),
        "{text}"
    );
    assert!(
        text.contains(&format!("ABI {}", v["landlock"]["abi"])),
        "{text}"
    );
}

/// Without a sandbox (tier 3), palisade refuses to start a server (exit 2) and says how to proceed; it
/// never falls back to an unsandboxed child on its own.
#[test]
fn without_a_sandbox_a_server_is_refused_not_silently_unsandboxed() {
    let home = TestHome::new();
    let out = crate::util::cmd(&home, &["run", "--", &crate::util::echo_server()])
        .env("PALISADE_SANDBOX_TIER", "3")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (code, stdout, err) = code_out_err(&out);
    assert_eq!(code, Some(2), "{stdout}\n{err}");
    assert!(err.contains("will not start it"), "{err}");
    assert!(err.contains("palisade doctor"), "{err}");
    assert!(err.contains("trust = \"unsandboxed\""), "{err}");
    assert!(stdout.is_empty(), "{stdout}");
}

/// A server runs unsandboxed only when its own policy table (or `--unsandboxed`) says so, and the banner
/// says it; the sandbox is the default otherwise.
#[test]
fn trust_unsandboxed_is_per_server_and_announced() {
    let home = TestHome::new();
    let policy = home.root().join("policy.toml");
    let echo = crate::util::echo_server();
    std::fs::write(
        &policy,
        format!(
            "version = 1\n[servers.trusted]\ncommand = [{echo:?}]\ntrust = \"unsandboxed\"\n\
             [servers.other]\ncommand = [{echo:?}]\n"
        ),
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    let banner = |server: &str| {
        let mut p = crate::util::cmd(&home, &["run", "--policy", policy, "--server", server]);
        let mut p = palisade_testkit::McpProcess::spawn({
            p.stdin(std::process::Stdio::piped());
            p
        });
        p.initialize();
        crate::util::wait_stderr(&p, "palisade: policy:");
        p.stderr()
    };
    let trusted = banner("trusted");
    assert!(trusted.contains("NOT sandboxed"), "{trusted}");
    let other = banner("other");
    assert!(other.contains("sandbox tier 1"), "{other}");
    assert!(!other.contains("NOT sandboxed"), "{other}");
}

/// `inspect` prints the effective sandbox like `run`, and lists tools with no network whatever the policy
/// allows (a server is listed, not used).
#[test]
fn inspect_shows_the_sandbox_and_gives_the_server_no_network() {
    let home = TestHome::new();
    let (code, out, err) = run(
        &home,
        &[
            "inspect",
            "--allow-net",
            "api.example.com",
            "--",
            &crate::util::echo_server(),
        ],
    );
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(err.contains("palisade: sandbox of"), "{err}");
    assert!(err.contains("network:    none"), "{err}");
    assert!(!err.contains("egress proxy"), "{err}");
}
