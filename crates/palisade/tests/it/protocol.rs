//! Protocol pass-through with `@modelcontextprotocol/server-everything` (stdio, 2025-11-25 era): what a
//! client sees through `palisade run` is what the server sends, server→client requests (sampling,
//! elicitation) and notifications (progress) included, and schema violations are refused before the server
//! sees them.

use std::time::Duration;

use palisade_testkit::client::LEGACY_PROTOCOL_VERSION;
use palisade_testkit::{McpProcess, TestHome, peers};
use serde_json::{Value, json};

use crate::util::{audit_events, call, call_text as text, events_for_id, spawn_run, tool_names};

const SERVER: &str = "everything";

/// The capabilities the tests declare: sampling and elicitation, but not roots (server-everything would
/// otherwise ask for them with a `roots/list` that tests would have to answer).
fn capabilities() -> Value {
    json!({ "sampling": {}, "elicitation": {} })
}

/// server-everything behind palisade (server name `everything`), initialized.
fn everything(home: &TestHome, flags: &[&str]) -> McpProcess {
    let mut all = vec!["--server", SERVER];
    all.extend_from_slice(flags);
    let mut p = spawn_run(home, &all, &peers::server_everything_stdio());
    p.initialize_with(LEGACY_PROTOCOL_VERSION, capabilities());
    p
}

/// Waits for the next server→client request and checks its method.
#[track_caller]
fn expect_server_request(p: &mut McpProcess, method: &str) -> Value {
    let req = p.next_server_request(Duration::from_secs(10));
    assert_eq!(req["method"], method, "unexpected server request {req}");
    req
}

#[test]
fn lists_the_same_tools_as_the_server_does_directly() {
    let home = TestHome::new();
    let mut direct = McpProcess::spawn(peers::command(&peers::server_everything_stdio()));
    let direct_init = direct.initialize_with(LEGACY_PROTOCOL_VERSION, capabilities());
    let direct_tools = direct.request("tools/list", json!({}));

    let mut p = spawn_run(
        &home,
        &["--server", SERVER],
        &peers::server_everything_stdio(),
    );
    let init = p.initialize_with(LEGACY_PROTOCOL_VERSION, capabilities());
    assert_eq!(init["result"], direct_init["result"]);
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    let tools = p.request("tools/list", json!({}));
    assert_eq!(tools["result"], direct_tools["result"]);
    let names = tool_names(&tools);
    for expected in [
        "echo",
        "get-sum",
        "trigger-long-running-operation",
        "trigger-sampling-request",
        "trigger-elicitation-request",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[test]
fn echo_round_trips() {
    let home = TestHome::new();
    let mut p = everything(&home, &[]);
    let r = p.request(
        "tools/call",
        call("echo", json!({ "message": "hello, palisade" })),
    );
    assert_eq!(
        r["result"],
        json!({ "content": [{ "type": "text", "text": "Echo: hello, palisade" }] })
    );
}

#[test]
fn get_sum_adds_two_numbers() {
    let home = TestHome::new();
    let mut p = everything(&home, &[]);
    let r = p.request("tools/call", call("get-sum", json!({ "a": 19, "b": 23 })));
    assert_eq!(text(&r), "The sum of 19 and 23 is 42.");
    assert!(r["result"].get("isError").is_none(), "{r}");
}

#[test]
fn refuses_arguments_that_violate_the_tool_schema_naming_the_argument() {
    let home = TestHome::new();
    let mut p = everything(&home, &[]);
    let id = p.send_request(
        "tools/call",
        call("get-sum", json!({ "a": "nineteen", "b": 23 })),
    );
    let r = p.wait_response(&id);
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert_eq!(
        text(&r),
        "palisade refused this call: arguments to `get-sum` do not match its input schema: /a: \"nineteen\" is not of type \"number\""
    );
    let events = events_for_id(&audit_events(&home, SERVER), &id);
    assert_eq!(
        events.len(),
        1,
        "one decision, nothing forwarded: {events:?}"
    );
    assert_eq!(events[0]["decision"], "deny");
    assert_eq!(events[0]["reason"], "schema-invalid");
    assert_eq!(events[0]["status"], "denied");
    // The session goes on.
    let ok = p.request("tools/call", call("get-sum", json!({ "a": 1, "b": 2 })));
    assert_eq!(text(&ok), "The sum of 1 and 2 is 3.");
}

#[test]
fn a_sampling_request_from_the_server_is_answered_by_the_client() {
    let home = TestHome::new();
    let mut p = everything(&home, &[]);
    let id = p.send_request(
        "tools/call",
        call(
            "trigger-sampling-request",
            json!({ "prompt": "say hi", "maxTokens": 7 }),
        ),
    );
    let req = expect_server_request(&mut p, "sampling/createMessage");
    assert_eq!(req["params"]["maxTokens"], 7);
    assert_eq!(
        req["params"]["messages"][0]["content"]["text"],
        "Resource trigger-sampling-request context: say hi"
    );
    let answer = json!({
        "role": "assistant",
        "content": { "type": "text", "text": "sampled by the palisade test" },
        "model": "palisade-test-model",
        "stopReason": "endTurn",
    });
    p.respond(&req["id"], answer.clone());
    let r = p.wait_response(&id);
    let t = text(&r);
    let sampled: Value = serde_json::from_str(
        t.strip_prefix("LLM sampling result: \n")
            .unwrap_or_else(|| panic!("unexpected text {t:?}")),
    )
    .unwrap();
    assert_eq!(sampled, answer);
    let events = audit_events(&home, SERVER);
    let to_server = events_for_id(&events, &req["id"]);
    assert!(
        to_server
            .iter()
            .any(|e| e["method"] == "sampling/createMessage" && e["status"] == "ok"),
        "the client's answer is audited: {to_server:?}"
    );
}

#[test]
fn an_elicitation_request_from_the_server_is_answered_by_the_client() {
    let home = TestHome::new();
    let mut p = everything(&home, &[]);
    let id = p.send_request("tools/call", call("trigger-elicitation-request", json!({})));
    let req = expect_server_request(&mut p, "elicitation/create");
    assert_eq!(
        req["params"]["requestedSchema"]["required"],
        json!(["name"])
    );
    p.respond(
        &req["id"],
        json!({ "action": "accept", "content": { "name": "Ada Lovelace", "check": true } }),
    );
    let r = p.wait_response(&id);
    let content = r["result"]["content"].as_array().unwrap();
    assert_eq!(
        content[0]["text"],
        "✅ User provided the requested information!"
    );
    assert_eq!(
        content[1]["text"],
        "User inputs:\n- Name: Ada Lovelace\n- Agreed to terms: true"
    );
}

#[test]
fn progress_notifications_of_a_long_running_tool_pass_through() {
    let home = TestHome::new();
    let mut p = everything(&home, &[]);
    let id = p.send_request(
        "tools/call",
        json!({
            "name": "trigger-long-running-operation",
            "arguments": { "duration": 0.3, "steps": 3 },
            "_meta": { "progressToken": "palisade-progress" },
        }),
    );
    let r = p.wait_response(&id);
    assert_eq!(
        text(&r),
        "Long running operation completed. Duration: 0.3 seconds, Steps: 3."
    );
    let progress: Vec<Value> = p
        .take_notifications()
        .into_iter()
        .filter(|n| n["method"] == "notifications/progress")
        .map(|n| n["params"].clone())
        .collect();
    assert_eq!(
        progress,
        (1..=3)
            .map(|i| json!({ "progress": i, "total": 3, "progressToken": "palisade-progress" }))
            .collect::<Vec<_>>()
    );
}

/// Starts a 0.6 s `trigger-long-running-operation`, cancels it at once, and checks that no answer comes:
/// the server drops a cancelled request's result, so an answer means the server never saw the
/// cancellation (palisade would also audit it as unsolicited, the request being over).
fn cancel_a_long_call(p: &mut McpProcess, home: &TestHome) {
    let id = p.send_request(
        "tools/call",
        call(
            "trigger-long-running-operation",
            json!({ "duration": 0.6, "steps": 2 }),
        ),
    );
    p.notify(
        "notifications/cancelled",
        json!({ "requestId": id, "reason": "the test changed its mind" }),
    );
    assert_eq!(p.try_wait_response(&id, Duration::from_millis(1500)), None);
    let ping = p.request("ping", json!({}));
    assert_eq!(ping["result"], json!({}));
    let events = audit_events(home, SERVER);
    assert!(
        events
            .iter()
            .any(|e| e["method"] == "notifications/cancelled" && e["decision"] == "allow"),
        "{events:?}"
    );
    let about = events_for_id(&events, &id);
    assert!(
        about.iter().all(|e| e.get("status").is_none()),
        "the call never completed: {about:?}"
    );
    assert!(
        !events.iter().any(|e| e["reason"] == "unsolicited-response"),
        "{events:?}"
    );
}

#[test]
fn a_cancellation_from_the_client_reaches_the_server() {
    let home = TestHome::new();
    let mut p = everything(&home, &[]);
    // Listing first: palisade knows the tools, so the call is forwarded at once.
    p.request("tools/list", json!({}));
    cancel_a_long_call(&mut p, &home);
}

#[test]
fn a_cancellation_of_a_call_held_until_the_tools_are_listed_stops_the_call() {
    let home = TestHome::new();
    let mut p = everything(&home, &[]);
    // No tools/list: palisade holds the call while it lists the tools itself. The cancellation must not
    // overtake the held call, or the server runs a call the client has given up on.
    cancel_a_long_call(&mut p, &home);
}

#[test]
fn ping_is_answered() {
    let home = TestHome::new();
    let mut p = everything(&home, &[]);
    let r = p.request("ping", json!({}));
    assert_eq!(r, json!({ "jsonrpc": "2.0", "id": 2, "result": {} }));
}

#[test]
fn a_roots_request_from_the_server_is_answered_by_the_client() {
    let home = TestHome::new();
    let mut p = spawn_run(
        &home,
        &["--server", SERVER],
        &peers::server_everything_stdio(),
    );
    // The full test-kit capabilities, roots included: server-everything asks for them soon after start.
    p.initialize();
    let roots = json!({ "roots": [{ "uri": "file:///projects/demo", "name": "demo" }] });
    let req = expect_server_request(&mut p, "roots/list");
    p.respond(&req["id"], roots.clone());
    let id = p.send_request("tools/call", call("get-roots-list", json!({})));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let r = loop {
        if let Some(r) = p.try_wait_response(&id, Duration::from_millis(50)) {
            break r;
        }
        // The tool may ask again; answer the same way.
        if let Some(again) = p.try_next_server_request(Duration::from_millis(50)) {
            assert_eq!(again["method"], "roots/list", "{again}");
            p.respond(&again["id"], roots.clone());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answer to get-roots-list"
        );
    };
    assert!(
        text(&r).starts_with(
            "Current MCP Roots (1 total):\n\n1. demo\n   URI: file:///projects/demo\n"
        ),
        "{r}"
    );
    let events = events_for_id(&audit_events(&home, SERVER), &req["id"]);
    assert!(
        events
            .iter()
            .any(|e| e["method"] == "roots/list" && e["status"] == "ok"),
        "{events:?}"
    );
}

#[test]
fn the_server_name_is_derived_from_a_relative_script_path() {
    // `node tests/peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js`, run from the
    // workspace root as a client config with a relative path would: the audit log is named after the
    // package, as it is for the absolute path.
    let home = TestHome::new();
    let argv = peers::server_everything_stdio();
    let root = peers::workspace_root();
    let relative = std::path::Path::new(&argv[1])
        .strip_prefix(root)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mut cmd = crate::util::cmd(&home, &["run", "--", &argv[0], &relative, "stdio"]);
    cmd.current_dir(root);
    let mut p = McpProcess::spawn(cmd);
    p.initialize_with(LEGACY_PROTOCOL_VERSION, json!({}));
    let logs: Vec<String> = std::fs::read_dir(home.state_home().join("palisade").join("audit"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(logs, ["server-everything.jsonl"]);
    let events = audit_events(&home, "server-everything");
    assert!(
        events.iter().any(|e| e["method"] == "initialize"),
        "{events:?}"
    );
}
