//! The pinned real peers install and talk: each one is started directly (no palisade) and driven through
//! [`McpProcess`]. These fail, never skip, when a peer is missing: run `bash .ci/run`.

use std::process::Command;

use palisade_testkit::client::modern_meta;
use palisade_testkit::{McpProcess, TempDir, TestHome, peers};
use serde_json::{Value, json};

/// Starts `argv` with a throwaway HOME, so no peer reads or writes the real one.
fn spawn(argv: &[String], home: &TestHome) -> McpProcess {
    let mut cmd = peers::command(argv);
    home.apply(&mut cmd);
    McpProcess::spawn(cmd)
}

fn tool_names(response: &Value) -> Vec<String> {
    let tools = response["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {response}"));
    tools
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn server_everything_stdio_lists_and_calls_tools() {
    let home = TestHome::new();
    let mut server = spawn(&peers::server_everything_stdio(), &home);
    let init = server.initialize();
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(
        init["result"]["serverInfo"]["name"],
        "mcp-servers/everything"
    );
    let names = tool_names(&server.request("tools/list", json!({})));
    for expected in [
        "echo",
        "get-sum",
        "get-env",
        "trigger-long-running-operation",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    let call = server.request(
        "tools/call",
        json!({ "name": "get-sum", "arguments": { "a": 2, "b": 3 } }),
    );
    assert_eq!(
        call["result"]["content"][0]["text"],
        "The sum of 2 and 3 is 5."
    );
    let echo = server.request(
        "tools/call",
        json!({ "name": "echo", "arguments": { "message": "hi" } }),
    );
    assert_eq!(echo["result"]["content"][0]["text"], "Echo: hi");
}

#[test]
fn server_filesystem_sees_only_its_directory() {
    let home = TestHome::new();
    let dir = TempDir::new("fs-peer");
    std::fs::write(dir.join("hello.txt"), "hello from the test").unwrap();
    let mut server = spawn(&peers::server_filesystem(&[dir.path()]), &home);
    server.initialize();
    let names = tool_names(&server.request("tools/list", json!({})));
    assert!(names.iter().any(|n| n == "read_text_file"), "{names:?}");
    let path = dir.join("hello.txt").to_str().unwrap().to_owned();
    let read = server.request(
        "tools/call",
        json!({ "name": "read_text_file", "arguments": { "path": path } }),
    );
    assert_eq!(read["result"]["content"][0]["text"], "hello from the test");
    let outside = server.request(
        "tools/call",
        json!({ "name": "read_text_file", "arguments": { "path": "/etc/hostname" } }),
    );
    assert_eq!(outside["result"]["isError"], true, "{outside}");
}

#[test]
fn mcp_server_time_speaks_both_eras() {
    let home = TestHome::new();
    let mut legacy = spawn(&peers::mcp_server_time(), &home);
    legacy.initialize();
    assert_eq!(
        tool_names(&legacy.request("tools/list", json!({}))),
        ["get_current_time", "convert_time"]
    );
    let now = legacy.request(
        "tools/call",
        json!({ "name": "get_current_time", "arguments": { "timezone": "Etc/UTC" } }),
    );
    assert_eq!(
        now["result"]["structuredContent"]["timezone"], "Etc/UTC",
        "{now}"
    );

    let mut modern = spawn(&peers::mcp_server_time(), &home);
    let discover = modern.discover();
    assert!(
        discover["result"]["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28")),
        "{discover}"
    );
    let list = modern.request("tools/list", json!({ "_meta": modern_meta("2026-07-28") }));
    assert_eq!(list["result"]["resultType"], "complete");
    assert_eq!(tool_names(&list).len(), 2);
}

#[test]
fn mcp_server_fetch_and_git_list_their_tools() {
    let home = TestHome::new();
    let mut fetch = spawn(&peers::mcp_server_fetch(), &home);
    fetch.initialize();
    assert_eq!(
        tool_names(&fetch.request("tools/list", json!({}))),
        ["fetch"]
    );

    let repo = TempDir::new("git-peer");
    let status = Command::new("git")
        .args(["init", "-q"])
        .arg(repo.path())
        .status()
        .expect("git is installed");
    assert!(status.success());
    let mut git = spawn(&peers::mcp_server_git(repo.path()), &home);
    git.initialize();
    let names = tool_names(&git.request("tools/list", json!({})));
    for expected in ["git_status", "git_log", "git_diff", "git_commit"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[test]
fn python_sdk_is_the_pinned_version_on_the_system_interpreter() {
    let python = peers::python_sdk();
    let out = peers::command(&python)
        .args([
            "-c",
            "import importlib.metadata as m, sys; print(m.version('mcp'), sys.base_prefix)",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "2.3.0 /usr",
        "the venv must be built from /usr/bin/python3 (outside HOME)"
    );
}

#[test]
fn node22_and_conformance_run() {
    let out = peers::command(&peers::node22())
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("v22."),
        "{out:?}"
    );

    let out = peers::command(&peers::conformance())
        .args(["list", "--server"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for scenario in [
        "server-initialize",
        "server-stateless",
        "tools-call-simple-text",
    ] {
        assert!(
            stdout.contains(scenario),
            "{scenario} missing from:\n{stdout}"
        );
    }
}

#[test]
fn supergateway_is_the_pinned_version() {
    let out = peers::command(&peers::supergateway())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "4.0.0",
        "{out:?}"
    );
}
