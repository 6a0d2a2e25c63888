//! Shared helpers for the end-to-end tests.

#![allow(dead_code)]

use palisade_testkit::McpProcess;
use palisade_testkit::xdg::TestHome;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The palisade binary under test.
pub(crate) fn palisade() -> &'static str {
    env!("CARGO_BIN_EXE_palisade")
}

/// `palisade ARGS…` with an isolated home.
pub(crate) fn cmd(home: &TestHome, args: &[&str]) -> Command {
    let mut c = Command::new(palisade());
    c.args(args);
    home.apply(&mut c);
    c
}

/// Runs `palisade ARGS…` to completion with an isolated home; returns its output.
pub(crate) fn output(home: &TestHome, args: &[&str]) -> Output {
    cmd(home, args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run palisade {args:?}: {e}"))
}

/// The exit code of a finished palisade, its stdout and its stderr (lossy UTF-8), for assertions.
pub(crate) fn code_out_err(out: &Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `palisade run FLAGS… -- SERVER…` as a client-driven child process with an isolated home.
pub(crate) fn spawn_run<S: AsRef<str>>(
    home: &TestHome,
    flags: &[&str],
    server: &[S],
) -> McpProcess {
    let mut c = cmd(home, &["run"]);
    c.args(flags).arg("--");
    c.args(server.iter().map(AsRef::as_ref));
    McpProcess::spawn(c)
}

/// The default audit log of `server` under `home` (`$XDG_STATE_HOME/palisade/audit/<server>.jsonl`).
pub(crate) fn audit_log(home: &TestHome, server: &str) -> PathBuf {
    home.state_home()
        .join("palisade")
        .join("audit")
        .join(format!("{server}.jsonl"))
}

/// The complete lines of an audit log parsed as JSON (empty if the file does not exist yet). A torn last
/// line (no newline yet) is not returned.
pub(crate) fn events(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// Polls `probe` every 20 ms until it returns `Some`, or panics after `timeout` with `what` and the last
/// `context()` (e.g. the file being polled).
#[track_caller]
pub(crate) fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the audit log at `path` holds an event matching `pred`; returns it.
#[track_caller]
pub(crate) fn wait_event(path: &Path, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_for(
        Duration::from_secs(20),
        what,
        || events(path).into_iter().find(|e| pred(e)),
        || dump(path),
    )
}

/// The audit log's text, for failure messages.
pub(crate) fn dump(path: &Path) -> String {
    format!(
        "audit log {}:\n{}",
        path.display(),
        std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"))
    )
}

/// The text of the first content item of a `tools/call` response.
pub(crate) fn call_text(response: &Value) -> &str {
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {response}"))
}

/// The echo server started through `/usr/bin/env` with `vars` set (palisade scrubs its own environment
/// before starting a server, so the echo server's switches must be part of the command).
pub(crate) fn echo_server_with(vars: &[(&str, &str)]) -> Vec<String> {
    let mut argv = vec!["/usr/bin/env".to_owned()];
    argv.extend(vars.iter().map(|(k, v)| format!("{k}={v}")));
    argv.push(echo_server());
    argv
}

/// Path of the echo server binary.
pub(crate) fn echo_server() -> String {
    palisade_testkit::echo_server()
        .to_str()
        .expect("UTF-8 path")
        .to_owned()
}

/// Every event of `server`'s default audit log under `home`. palisade writes an event before it releases
/// the message the event describes, so once a response has arrived, its events are on disk.
pub(crate) fn audit_events(home: &TestHome, server: &str) -> Vec<Value> {
    events(&audit_log(home, server))
}

/// The audit events about the JSON-RPC request `id`.
pub(crate) fn events_for_id(events: &[Value], id: &Value) -> Vec<Value> {
    events.iter().filter(|e| e["id"] == *id).cloned().collect()
}

/// The tool names of a `tools/list` response, in order.
pub(crate) fn tool_names(response: &Value) -> Vec<String> {
    response["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {response}"))
        .iter()
        .map(|t| t["name"].as_str().expect("tool name").to_owned())
        .collect()
}

/// The params of a `tools/call` of `tool` with `arguments`.
pub(crate) fn call(tool: &str, arguments: Value) -> Value {
    serde_json::json!({ "name": tool, "arguments": arguments })
}
