//! Framing end to end with the echo server: what is not exactly one acceptable JSON-RPC message is
//! answered by palisade with the specification's error code and never reaches the server; oversized lines
//! are refused without ending the session; responses nobody asked for are dropped and audited.
//!
//! The echo server answers every message that has an id, in order. So "the server never saw it" is checked
//! by sending a `ping` afterwards: once its answer is back, an answer to the bad message would have come
//! first.

use palisade_testkit::{McpProcess, TempDir, TestHome};
use serde_json::{Value, json};

use crate::util::{audit_events, call, call_text, echo_server, echo_server_with, spawn_run};

const SERVER: &str = "echo";

fn echo(home: &TestHome, flags: &[&str]) -> McpProcess {
    let mut all = vec!["--server", SERVER];
    all.extend_from_slice(flags);
    let mut p = spawn_run(home, &all, &[echo_server()]);
    p.initialize();
    p
}

/// Sends `line`, expects palisade's error `code` with id null, and checks that the server answered nothing
/// (the next ping's answer comes back, and nothing else) and that the audit log recorded the refusal.
#[track_caller]
fn assert_refused_line(line: &[u8], code: i64, message_part: &str) {
    let home = TestHome::new();
    let mut p = echo(&home, &[]);
    p.send_raw(line);
    let err = p.wait_response(&Value::Null);
    assert_eq!(err["jsonrpc"], "2.0", "{err}");
    assert_eq!(err["error"]["code"], code, "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains(message_part), "{message}");
    assert_eq!(p.request("ping", json!({}))["result"], json!({}));
    assert_eq!(
        p.unclaimed_responses(),
        Vec::<Value>::new(),
        "the server answered the refused line"
    );
    let events = audit_events(&home, SERVER);
    let refused: Vec<&Value> = events
        .iter()
        .filter(|e| e["reason"] == "malformed-message")
        .collect();
    assert_eq!(refused.len(), 1, "{events:?}");
    assert_eq!(refused[0]["decision"], "deny");
    assert!(
        !events.iter().any(|e| e["method"] == "tools/call"),
        "nothing was forwarded: {events:?}"
    );
}

#[test]
fn a_message_with_a_duplicate_key_is_refused_with_invalid_request() {
    // A guard reading the first `text` and a server reading the last would disagree.
    assert_refused_line(
        br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"checked","text":"smuggled"}}}
"#,
        -32600,
        "duplicate key \"text\"",
    );
}

#[test]
fn a_line_that_is_not_json_is_refused_with_parse_error() {
    assert_refused_line(
        b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\n",
        -32700,
        "not valid JSON",
    );
}

#[test]
fn a_batch_is_refused_with_invalid_request() {
    assert_refused_line(
        br#"[{"jsonrpc":"2.0","id":7,"method":"ping"},{"jsonrpc":"2.0","id":8,"method":"ping"}]
"#,
        -32600,
        "batches are not supported",
    );
}

#[test]
fn a_message_over_the_size_limit_is_refused_and_the_session_goes_on() {
    let home = TestHome::new();
    let dir = TempDir::new("size-policy");
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "version = 1\n\n[limits]\nmax_message_bytes = 4096\n",
    )
    .unwrap();
    let mut p = echo(&home, &["--policy", policy.to_str().unwrap()]);
    p.request("tools/list", json!({}));
    let id = p.send_request(
        "tools/call",
        call("echo", json!({ "text": "x".repeat(10_000) })),
    );
    // palisade reads the id while skipping the line, so the refusal answers the request itself.
    let err = p.wait_response(&id);
    assert_eq!(err["error"]["code"], -32600, "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("exceeds the limit of 4096 bytes"),
        "{message}"
    );
    // Nothing for the oversized request itself: the server never got it.
    let ok = p.request("tools/call", call("echo", json!({ "text": "small" })));
    assert_eq!(call_text(&ok), "small");
    assert_eq!(p.unclaimed_responses(), Vec::<Value>::new());
    assert!(
        p.wait_exit(std::time::Duration::ZERO).is_none(),
        "palisade exited"
    );
    let events = audit_events(&home, SERVER);
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "message-too-large" && e["decision"] == "deny"),
        "{events:?}"
    );
    let about_it: Vec<&Value> = events.iter().filter(|e| e["id"] == id).collect();
    assert_eq!(
        about_it.len(),
        1,
        "only the refusal mentions the oversized request: {events:?}"
    );
    assert_eq!(about_it[0]["reason"], "message-too-large");
}

#[test]
fn a_response_to_a_request_nobody_sent_is_dropped_and_audited() {
    let home = TestHome::new();
    let mut p = spawn_run(
        &home,
        &["--server", SERVER],
        &echo_server_with(&[("ECHO_SERVER_UNSOLICITED", "1")]),
    );
    p.initialize();
    // The server wrote its unsolicited response right after the initialize response, so it has been
    // handled by the time the ping's answer arrives.
    assert_eq!(p.request("ping", json!({}))["result"], json!({}));
    assert_eq!(p.unclaimed_responses(), Vec::<Value>::new());
    let events = audit_events(&home, SERVER);
    let dropped: Vec<&Value> = events
        .iter()
        .filter(|e| e["reason"] == "unsolicited-response")
        .collect();
    assert_eq!(dropped.len(), 1, "{events:?}");
    assert_eq!(dropped[0]["id"], "palisade-echo-unsolicited");
    assert_eq!(dropped[0]["decision"], "deny");
}

#[test]
fn a_server_response_over_the_size_limit_becomes_an_error_for_its_request() {
    // server-everything's tools/list answer is ≈ 7.7 kB and its initialize answer ≈ 2 kB: with a 4096-byte
    // limit, the handshake passes and the listing is too large. palisade must not forward it, and the
    // client must not wait forever for an answer that will never come (tools/list has no call timeout).
    let home = TestHome::new();
    let dir = TempDir::new("size-policy");
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "version = 1\n\n[limits]\nmax_message_bytes = 4096\n",
    )
    .unwrap();
    let mut p = spawn_run(
        &home,
        &["--server", SERVER, "--policy", policy.to_str().unwrap()],
        &palisade_testkit::peers::server_everything_stdio(),
    );
    p.initialize_with("2025-11-25", json!({}));
    let id = p.send_request("tools/list", json!({}));
    let r = p
        .try_wait_response(&id, std::time::Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no answer to a tools/list whose response was too large"));
    assert!(
        r.get("result").is_none(),
        "the oversized result was forwarded"
    );
    assert_eq!(r["error"]["code"], -32603, "{r}");
    assert_eq!(p.request("ping", json!({}))["result"], json!({}));
    let events = audit_events(&home, SERVER);
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "message-too-large" && e["decision"] == "deny"),
        "{events:?}"
    );
}
