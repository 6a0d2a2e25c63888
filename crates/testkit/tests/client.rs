//! [`McpProcess`] against scripted stand-ins, for the behaviours real servers rarely show on demand.

use std::process::Command;
use std::time::Duration;

use palisade_testkit::McpProcess;
use serde_json::{Value, json};

/// A stand-in server written in shell: it reads one request, asks the client for sampling, waits for the
/// answer, then answers the original request with whatever the client sent back.
const ASKS_BACK: &str = r#"
read -r req
echo '{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"hi"}}'
echo '{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{}}'
read -r answer
echo "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"echo\":$answer}}"
echo 'oops, not json'
echo 'to stderr' >&2
sleep 5
"#;

#[test]
fn queues_notifications_and_server_requests_and_responds() {
    let mut server = McpProcess::spawn(sh(ASKS_BACK));
    let id = server.send_request("tools/call", json!({}));
    let ask = server.next_server_request(Duration::from_secs(5));
    assert_eq!(ask["method"], "sampling/createMessage");
    server.respond(&ask["id"], json!({ "role": "assistant" }));
    let response = server.wait_response(&id);
    assert_eq!(response["result"]["echo"]["id"], "s1");
    assert_eq!(response["result"]["echo"]["result"]["role"], "assistant");
    assert_eq!(server.notifications().len(), 1);
    server.pump(Duration::from_millis(200));
    assert_eq!(server.invalid_lines(), [b"oops, not json".to_vec()]);
    assert_eq!(server.received_lines().len(), 4);
    assert_eq!(server.stderr(), "to stderr\n");
    assert_eq!(server.take_notifications()[0]["params"]["data"], "hi");
    assert!(server.notifications().is_empty());
}

#[test]
#[should_panic(expected = "no response to `ping` (id 1)")]
fn a_missing_response_panics_with_context() {
    let mut server = McpProcess::spawn(sh("echo 'the reason' >&2; cat >/dev/null"));
    server.request_timeout("ping", Value::Null, Duration::from_millis(200));
}

#[test]
#[should_panic(expected = "the reason")]
fn the_panic_message_carries_stderr() {
    let mut server = McpProcess::spawn(sh("echo 'the reason' >&2; cat >/dev/null"));
    std::thread::sleep(Duration::from_millis(200));
    server.request_timeout("ping", Value::Null, Duration::from_millis(200));
}

#[test]
#[should_panic(expected = "stdout closed while waiting for the response with id 1")]
fn a_server_that_exits_fails_fast() {
    let mut server = McpProcess::spawn(sh("exit 3"));
    server.set_timeout(Duration::from_secs(60));
    let _ = server.try_send_raw(b"{}\n");
    server.wait_response(&json!(1));
}

#[test]
fn close_stdin_and_wait_exit() {
    let mut server = McpProcess::spawn(sh("cat >/dev/null; exit 7"));
    assert!(server.wait_exit(Duration::from_millis(100)).is_none());
    server.close_stdin();
    assert_eq!(
        server
            .wait_exit(Duration::from_secs(5))
            .and_then(|s| s.code()),
        Some(7)
    );
}

#[test]
fn drop_kills_the_child() {
    let server = McpProcess::spawn(sh("sleep 60"));
    let proc_dir = std::path::PathBuf::from(format!("/proc/{}", server.pid()));
    assert!(proc_dir.exists());
    drop(server);
    assert!(!proc_dir.exists(), "child still present after drop");
}

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script]);
    cmd
}
