//! The `palisade-echo-server` binary, driven through [`McpProcess`].

use std::process::Command;
use std::time::Duration;

use palisade_testkit::McpProcess;
use palisade_testkit::client::modern_meta;
use serde_json::{Value, json};

fn echo(envs: &[(&str, &str)]) -> McpProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_palisade-echo-server"));
    cmd.env_clear().envs(envs.iter().copied());
    McpProcess::spawn(cmd)
}

#[test]
fn echo_server_found_by_lookup_is_the_built_binary() {
    assert_eq!(
        palisade_testkit::echo_server().canonicalize().unwrap(),
        std::path::Path::new(env!("CARGO_BIN_EXE_palisade-echo-server"))
            .canonicalize()
            .unwrap()
    );
}

#[test]
fn initialize_echoes_known_versions_and_defaults_the_rest() {
    for (asked, expected) in [
        ("2024-11-05", "2024-11-05"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("1999-01-01", "2025-11-25"),
    ] {
        let mut server = echo(&[]);
        let response = server.initialize_with(asked, json!({}));
        assert_eq!(
            response["result"]["protocolVersion"], expected,
            "asked {asked}"
        );
        assert_eq!(
            response["result"]["capabilities"]["tools"]["listChanged"],
            true
        );
        assert_eq!(
            response["result"]["serverInfo"]["name"],
            "palisade-echo-server"
        );
    }
}

#[test]
fn lists_and_calls_the_echo_tool() {
    let mut server = echo(&[]);
    server.initialize();
    assert_eq!(server.request("ping", Value::Null)["result"], json!({}));
    let tools = server.request("tools/list", json!({}));
    let tool = &tools["result"]["tools"][0];
    assert_eq!(tool["name"], "echo");
    assert_eq!(tool["annotations"]["readOnlyHint"], true);
    assert_eq!(tool["inputSchema"]["required"], json!(["text"]));
    let call = server.request(
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "héllo\nworld" } }),
    );
    assert_eq!(
        call["result"],
        json!({ "content": [{ "type": "text", "text": "héllo\nworld" }] })
    );
    let bad = server.request("tools/call", json!({ "name": "nope", "arguments": {} }));
    assert_eq!(bad["error"]["code"], -32602);
    let missing = server.request("tools/call", json!({ "name": "echo", "arguments": {} }));
    assert_eq!(missing["error"]["code"], -32602);
    assert_eq!(
        server.request("resources/list", json!({}))["error"]["code"],
        -32601
    );
}

#[test]
fn rejects_bad_lines_with_json_rpc_errors() {
    let mut server = echo(&[]);
    server.send_raw(b"{not json\n");
    server.send_raw(b"[1,2]\n");
    server.pump(Duration::from_millis(300));
    let errors = server.unclaimed_responses();
    let codes: Vec<&Value> = errors.iter().map(|e| &e["error"]["code"]).collect();
    assert_eq!(codes, [&json!(-32700), &json!(-32600)], "{errors:?}");
}

#[test]
fn discover_and_modern_envelope() {
    let mut server = echo(&[]);
    let discover = server.discover();
    let result = &discover["result"];
    assert_eq!(
        result["supportedVersions"],
        json!(["2026-07-28", "2025-11-25"])
    );
    assert_eq!(result["resultType"], "complete");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "palisade-echo-server"
    );
    // Stateless: a modern tools/call works without initialize.
    let call = server.request(
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "x" }, "_meta": modern_meta("2026-07-28") }),
    );
    assert_eq!(call["result"]["resultType"], "complete");
    assert_eq!(call["result"]["content"][0]["text"], "x");
    let unsupported = server.request("tools/list", json!({ "_meta": modern_meta("1900-01-01") }));
    assert_eq!(unsupported["error"]["code"], -32022);
    assert_eq!(unsupported["error"]["data"]["requested"], "1900-01-01");
}

#[test]
fn changes_its_tool_after_n_lists_and_notifies() {
    let mut server = echo(&[("ECHO_SERVER_CHANGE_TOOLS_AFTER", "2")]);
    server.initialize();
    let first =
        server.request("tools/list", json!({}))["result"]["tools"][0]["description"].clone();
    assert!(server.notifications().is_empty());
    let second =
        server.request("tools/list", json!({}))["result"]["tools"][0]["description"].clone();
    assert_eq!(first, second);
    server.wait_notification("notifications/tools/list_changed", Duration::from_secs(5));
    let third =
        server.request("tools/list", json!({}))["result"]["tools"][0]["description"].clone();
    assert_ne!(first, third);
}

#[test]
fn slow_calls_answer_late_unless_cancelled() {
    let mut server = echo(&[("ECHO_SERVER_SLOW_MS", "400")]);
    server.initialize();
    let cancelled = server.send_request(
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "a" } }),
    );
    let answered = server.send_request(
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "b" } }),
    );
    server.notify(
        "notifications/cancelled",
        json!({ "requestId": cancelled, "reason": "test" }),
    );
    // Still reading stdin while the calls sleep.
    assert_eq!(
        server.request_timeout("ping", Value::Null, Duration::from_millis(300))["result"],
        json!({})
    );
    let late = server
        .try_wait_response(&answered, Duration::from_secs(5))
        .expect("uncancelled call answers");
    assert_eq!(late["result"]["content"][0]["text"], "b");
    assert!(
        server
            .try_wait_response(&cancelled, Duration::from_millis(600))
            .is_none()
    );
}

#[test]
fn slow_call_in_flight_at_eof_still_answers() {
    let mut server = echo(&[("ECHO_SERVER_SLOW_MS", "200")]);
    let id = server.send_request(
        "tools/call",
        json!({ "name": "echo", "arguments": { "text": "z" } }),
    );
    server.close_stdin();
    assert_eq!(
        server.wait_response(&id)["result"]["content"][0]["text"],
        "z"
    );
    assert!(
        server
            .wait_exit(Duration::from_secs(5))
            .expect("exits after EOF")
            .success()
    );
}

#[test]
fn unsolicited_response_follows_initialize() {
    let mut server = echo(&[("ECHO_SERVER_UNSOLICITED", "1")]);
    server.initialize();
    server.pump(Duration::from_millis(200));
    let stray = server.unclaimed_responses();
    assert_eq!(stray.len(), 1, "{stray:?}");
    assert_eq!(stray[0]["id"], "palisade-echo-unsolicited");
}
