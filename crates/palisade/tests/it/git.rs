//! `mcp-server-git` (the real one, pinned) under the default sandbox: its read tools work on the repository
//! named in its own command line once `git` is allowed to run, CVE-2025-68143 (`git_init` anywhere) is
//! refused by the path guard before the server sees it, and without `--allow-exec git` the sandbox's exec
//! allowlist stops the server from running `git` at all.

use palisade_testkit::client::LEGACY_PROTOCOL_VERSION;
use palisade_testkit::{McpProcess, TempDir, TestHome, peers};
use serde_json::json;
use std::path::Path;
use std::process::Command;

use crate::util::{call, spawn_run};

/// A repository with one commit and one modified file.
fn repo() -> TempDir {
    let dir = TempDir::new("git-repo");
    let git = |args: &[&str]| {
        let st = Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir.path())
            .status()
            .expect("run git");
        assert!(st.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["config", "user.email", "suite@example.invalid"]);
    git(&["config", "user.name", "suite"]);
    std::fs::write(dir.join("a.txt"), "one\n").unwrap();
    git(&["add", "a.txt"]);
    git(&["commit", "-qm", "the first commit"]);
    std::fs::write(dir.join("a.txt"), "one\ntwo\n").unwrap();
    dir
}

fn git_server(home: &TestHome, repo: &Path, flags: &[&str]) -> McpProcess {
    let mut all = vec!["--server", "git"];
    all.extend_from_slice(flags);
    let mut p = spawn_run(home, &all, &peers::mcp_server_git(repo));
    p.initialize_with(LEGACY_PROTOCOL_VERSION, json!({}));
    p
}

fn text(r: &serde_json::Value) -> String {
    r["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn git_read_tools_work_in_the_sandbox_once_git_may_run() {
    let repo = repo();
    let home = TestHome::new();
    let mut p = git_server(&home, repo.path(), &["--allow-exec", "git"]);
    let path = repo.path().to_str().unwrap();
    let status = p.request(
        "tools/call",
        call("git_status", json!({ "repo_path": path })),
    );
    assert!(
        text(&status).contains("modified:   a.txt"),
        "{status}\n{}",
        p.stderr()
    );
    let log = p.request("tools/call", call("git_log", json!({ "repo_path": path })));
    assert!(text(&log).contains("the first commit"), "{log}");
    assert!(p.stderr().contains("sandbox tier 1"), "{}", p.stderr());
}

#[test]
fn git_init_outside_the_repository_is_refused_cve_2025_68143() {
    let repo = repo();
    let elsewhere = TempDir::new("git-elsewhere");
    let home = TestHome::new();
    let mut p = git_server(&home, repo.path(), &["--allow-exec", "git"]);
    let target = elsewhere.join("new-repo");
    let r = p.request(
        "tools/call",
        call("git_init", json!({ "repo_path": target.to_str().unwrap() })),
    );
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(text(&r).starts_with("palisade refused"), "{r}");
    assert!(
        !target.exists(),
        "a repository was created outside the roots"
    );
}

#[test]
fn without_allow_exec_the_server_cannot_run_git() {
    let repo = repo();
    let home = TestHome::new();
    let mut cmd = crate::util::cmd(&home, &["run", "--server", "git", "--"]);
    cmd.args(peers::mcp_server_git(repo.path()));
    let mut p = McpProcess::spawn(cmd);
    // GitPython runs `git` as the server starts; the exec allowlist refuses it, so the server exits.
    let id = p.send_request(
        "initialize",
        json!({
            "protocolVersion": LEGACY_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "suite", "version": "1" }
        }),
    );
    let r = p.wait_response(&id);
    assert_eq!(r["error"]["code"], -32003, "{r}");
    crate::util::wait_stderr(&p, "exited while the client was connected");
    assert!(p.stderr().contains("git"), "{}", p.stderr());
}
