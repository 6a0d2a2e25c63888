//! Both protocol eras through palisade against `mcp-server-time`, which serves both: the 2026-07-28
//! stateless era (`server/discover`, per-request `_meta`, no handshake) and the 2025-11-25 session era
//! (`initialize`). The same sequence is run directly against the server and through palisade, and the
//! answers must match: exactly where they are deterministic, in shape where they hold the current time.

use palisade_testkit::client::{MODERN_PROTOCOL_VERSION, modern_meta};
use palisade_testkit::{McpProcess, TestHome, peers};
use serde_json::{Map, Value, json};

use crate::util::{audit_events, spawn_run, tool_names};

const SERVER: &str = "time";

/// The answers of one run of a sequence, in order.
type Answers = Vec<Value>;

/// The same value with every scalar replaced by its JSON type name (for results holding the time).
fn shape(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect::<Map<_, _>>(),
        ),
    }
}

fn direct(home: &TestHome) -> McpProcess {
    let mut cmd = peers::command(&peers::mcp_server_time());
    home.apply(&mut cmd);
    McpProcess::spawn(cmd)
}

fn through_palisade(home: &TestHome) -> McpProcess {
    spawn_run(home, &["--server", SERVER], &peers::mcp_server_time())
}

/// 2026-07-28: discover, then list and call with the per-request `_meta` envelope.
fn modern_sequence(p: &mut McpProcess) -> Answers {
    let meta = modern_meta(MODERN_PROTOCOL_VERSION);
    let discover = p.discover();
    let list = p.request("tools/list", json!({ "_meta": meta }));
    let now = p.request(
        "tools/call",
        json!({
            "name": "get_current_time",
            "arguments": { "timezone": "Etc/UTC" },
            "_meta": meta,
        }),
    );
    vec![discover, list, now]
}

/// 2025-11-25: the initialize handshake, then list and call.
fn classic_sequence(p: &mut McpProcess) -> Answers {
    let init = p.initialize();
    let list = p.request("tools/list", json!({}));
    let now = p.request(
        "tools/call",
        json!({ "name": "get_current_time", "arguments": { "timezone": "Etc/UTC" } }),
    );
    vec![init, list, now]
}

/// Checks the answers through palisade against the direct ones: all but the last exactly, the last (the
/// current time) in shape and time zone.
#[track_caller]
fn assert_same(through: &Answers, direct: &Answers) {
    let (through_now, through_rest) = through.split_last().unwrap();
    let (direct_now, direct_rest) = direct.split_last().unwrap();
    assert_eq!(through_rest, direct_rest);
    assert_eq!(shape(through_now), shape(direct_now));
    assert!(through_now.get("result").is_some(), "{through_now}");
    assert_eq!(
        through_now["result"]["structuredContent"]["timezone"],
        "Etc/UTC"
    );
}

#[test]
fn the_stateless_era_works_through_palisade_as_it_does_directly() {
    let home = TestHome::new();
    let want = modern_sequence(&mut direct(&home));
    let got = modern_sequence(&mut through_palisade(&home));
    assert_same(&got, &want);
    let [discover, list, now] = &got[..] else {
        unreachable!()
    };
    assert!(
        discover["result"]["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!(MODERN_PROTOCOL_VERSION)),
        "{discover}"
    );
    assert_eq!(list["result"]["resultType"], "complete");
    assert_eq!(
        tool_names(list),
        ["get_current_time", "convert_time"],
        "{list}"
    );
    assert_eq!(now["result"]["resultType"], "complete", "{now}");
    assert_eq!(now["result"]["isError"], false, "{now}");
    // palisade saw the call and let it through.
    let events = audit_events(&home, SERVER);
    assert!(
        events.iter().any(|e| e["tool"] == "get_current_time"
            && e["decision"] == "allow"
            && e["status"] == "ok"),
        "{events:?}"
    );
}

#[test]
fn the_session_era_works_through_palisade_as_it_does_directly() {
    let home = TestHome::new();
    let want = classic_sequence(&mut direct(&home));
    let got = classic_sequence(&mut through_palisade(&home));
    assert_same(&got, &want);
    assert_eq!(got[0]["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(tool_names(&got[1]), ["get_current_time", "convert_time"]);
}

#[test]
fn a_stateless_call_made_before_any_listing_is_held_checked_and_answered() {
    let home = TestHome::new();
    let mut p = through_palisade(&home);
    // No discover, no tools/list: palisade lists the tools itself (with this request's `_meta`, the
    // server having no session to remember it) before it checks and forwards the call.
    let now = p.request(
        "tools/call",
        json!({
            "name": "get_current_time",
            "arguments": { "timezone": "Etc/UTC" },
            "_meta": modern_meta(MODERN_PROTOCOL_VERSION),
        }),
    );
    assert_eq!(now["result"]["resultType"], "complete", "{now}");
    assert_eq!(now["result"]["structuredContent"]["timezone"], "Etc/UTC");
    let events = audit_events(&home, SERVER);
    assert!(
        events.iter().any(|e| e["id"] == "palisade-internal-1"
            && e["method"] == "tools/list"
            && e["status"] == "ok"),
        "{events:?}"
    );
}
