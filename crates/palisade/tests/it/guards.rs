//! Guards end to end: tool allow/deny globs against server-everything, tool pinning (rug pull) and call
//! timeouts against the echo server's switches. Each refusal is checked in what the client sees and as
//! the exact reason id in the audit log.

use std::time::{Duration, Instant};

use palisade_testkit::client::LEGACY_PROTOCOL_VERSION;
use palisade_testkit::{McpProcess, TempDir, TestHome, peers};
use serde_json::{Value, json};

use crate::util::{
    audit_events, call, call_text, echo_server_with, events_for_id, output, spawn_run, tool_names,
};

/// server-everything behind palisade as `everything` with `flags`, initialized (no client capabilities,
/// so it registers no conditional tools and asks nothing of the client).
fn everything(home: &TestHome, flags: &[&str]) -> McpProcess {
    let mut all = vec!["--server", "everything"];
    all.extend_from_slice(flags);
    let mut p = spawn_run(home, &all, &peers::server_everything_stdio());
    p.initialize_with(LEGACY_PROTOCOL_VERSION, json!({}));
    p
}

/// Asserts `id` was refused with `reason` (a tool result with `isError`, one deny event in the audit log,
/// nothing forwarded), and returns the refusal text.
#[track_caller]
fn assert_refused(p: &mut McpProcess, home: &TestHome, server: &str, id: &Value, reason: &str) {
    let r = p.wait_response(id);
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(
        call_text(&r).starts_with("palisade refused this call: "),
        "{r}"
    );
    let about = events_for_id(&audit_events(home, server), id);
    assert_eq!(about.len(), 1, "one decision, nothing forwarded: {about:?}");
    assert_eq!(about[0]["decision"], "deny", "{about:?}");
    assert_eq!(about[0]["reason"], reason, "{about:?}");
    assert_eq!(about[0]["status"], "denied", "{about:?}");
}

#[test]
fn deny_tool_hides_matching_tools_and_refuses_their_calls() {
    let home = TestHome::new();
    let mut p = everything(&home, &["--deny-tool", "get-*"]);
    let names = tool_names(&p.request("tools/list", json!({})));
    assert!(names.iter().any(|n| n == "echo"), "{names:?}");
    assert!(
        names.iter().any(|n| n == "trigger-long-running-operation"),
        "{names:?}"
    );
    let leaked: Vec<_> = names.iter().filter(|n| n.starts_with("get-")).collect();
    assert!(leaked.is_empty(), "denied tools listed: {leaked:?}");

    let id = p.send_request("tools/call", call("get-sum", json!({ "a": 1, "b": 2 })));
    assert_refused(&mut p, &home, "everything", &id, "tool-denied");
    let hidden: Vec<Value> = audit_events(&home, "everything")
        .into_iter()
        .filter(|e| e["kind"] == "policy" && e["reason"] == "tool-denied")
        .collect();
    assert!(
        hidden.iter().any(|e| e["tool"] == "get-env"),
        "hiding is audited: {hidden:?}"
    );
    let ok = p.request(
        "tools/call",
        call("echo", json!({ "message": "still here" })),
    );
    assert_eq!(call_text(&ok), "Echo: still here");
}

#[test]
fn allow_tool_leaves_only_the_allowed_tool() {
    let home = TestHome::new();
    let mut p = everything(&home, &["--allow-tool", "echo"]);
    assert_eq!(tool_names(&p.request("tools/list", json!({}))), ["echo"]);
    let id = p.send_request("tools/call", call("get-sum", json!({ "a": 1, "b": 2 })));
    assert_refused(&mut p, &home, "everything", &id, "tool-denied");
    let ok = p.request("tools/call", call("echo", json!({ "message": "allowed" })));
    assert_eq!(call_text(&ok), "Echo: allowed");
}

#[test]
fn a_tool_changed_after_pinning_is_hidden_and_refused_until_accepted() {
    let home = TestHome::new();
    let server = "rugpull";
    let mut p = spawn_run(
        &home,
        &["--server", server],
        &echo_server_with(&[("ECHO_SERVER_CHANGE_TOOLS_AFTER", "1")]),
    );
    p.initialize();
    // First sight: pinned on first use, listed and callable.
    assert_eq!(tool_names(&p.request("tools/list", json!({}))), ["echo"]);
    // Right after answering that list, the server changes `echo` and says so.
    p.wait_notification("notifications/tools/list_changed", Duration::from_secs(10));
    let relisted = p.request("tools/list", json!({}));
    assert_eq!(
        relisted["result"]["tools"],
        json!([]),
        "a changed tool is hidden"
    );
    let id = p.send_request("tools/call", call("echo", json!({ "text": "hi" })));
    assert_refused(&mut p, &home, server, &id, "tool-changed");
    let events = audit_events(&home, server);
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "pin" && e["tool"] == "echo" && e["reason"] == "tool-changed"),
        "{events:?}"
    );
    p.close_stdin();
    assert!(p.wait_exit(Duration::from_secs(10)).is_some());

    let out = output(&home, &["pin", "accept", "--server", server, "echo"]);
    assert!(out.status.success(), "pin accept failed: {out:?}");

    // A fresh run whose server shows the changed definition from the start: approved now.
    let mut p = spawn_run(
        &home,
        &["--server", server],
        &echo_server_with(&[("ECHO_SERVER_CHANGE_TOOLS_AFTER", "0")]),
    );
    p.initialize();
    p.wait_notification("notifications/tools/list_changed", Duration::from_secs(10));
    let list = p.request("tools/list", json!({}));
    assert_eq!(tool_names(&list), ["echo"]);
    assert!(
        list["result"]["tools"][0]["description"]
            .as_str()
            .unwrap()
            .contains("~/.ssh/id_rsa"),
        "the accepted (changed) definition: {list}"
    );
    let ok = p.request("tools/call", call("echo", json!({ "text": "approved" })));
    assert_eq!(call_text(&ok), "approved");
}

#[test]
fn a_call_over_the_timeout_gets_an_error_and_the_session_goes_on() {
    let home = TestHome::new();
    let dir = TempDir::new("timeout-policy");
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "version = 1\n\n[limits]\ncall_timeout = \"1s\"\n").unwrap();
    let server = "slow";
    let mut p = spawn_run(
        &home,
        &["--server", server, "--policy", policy.to_str().unwrap()],
        &echo_server_with(&[("ECHO_SERVER_SLOW_MS", "2500")]),
    );
    p.initialize();
    p.request("tools/list", json!({}));
    let started = Instant::now();
    let id = p.send_request("tools/call", call("echo", json!({ "text": "too slow" })));
    let r = p
        .try_wait_response(&id, Duration::from_secs(4))
        .unwrap_or_else(|| panic!("no timeout error within 4 s"));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "timed out after {took:?}"
    );
    assert_eq!(r["error"]["code"], -32002, "{r}");
    assert_eq!(
        r["error"]["message"],
        "palisade: tool `echo` did not answer within 1s (limits.call_timeout); the server was asked to cancel it"
    );
    let about = events_for_id(&audit_events(&home, server), &id);
    assert!(
        about
            .iter()
            .any(|e| e["status"] == "timeout" && e["reason"] == "timeout"),
        "{about:?}"
    );
    // The echo server drops a call it was told to cancel: had palisade not sent `notifications/cancelled`,
    // the answer would come at 2.5 s and be audited as an unsolicited response.
    let late = Duration::from_millis(3000).saturating_sub(started.elapsed());
    assert_eq!(p.try_wait_response(&id, late), None);
    let events = audit_events(&home, server);
    assert!(
        !events.iter().any(|e| e["reason"] == "unsolicited-response"),
        "the server answered a call palisade cancelled: {events:?}"
    );
    // palisade keeps working.
    assert_eq!(p.request("ping", json!({}))["result"], json!({}));
    assert_eq!(tool_names(&p.request("tools/list", json!({}))), ["echo"]);
}
