//! A real MCP client, the pinned Python SDK (`tests/clients/sdk_client.py`), launches palisade wrapping
//! server-everything exactly as an MCP client config would, and talks to it through the SDK's own stdio
//! transport and `ClientSession`.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use palisade_testkit::{TestHome, peers};
use serde_json::{Value, json};

use crate::util::{audit_events, palisade};

/// How long the whole client run may take.
const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn the_python_sdk_client_lists_and_calls_tools_through_palisade() {
    let home = TestHome::new();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/sdk_client.py");
    let mut cmd = peers::command(&peers::python_sdk());
    cmd.arg(script)
        .args([
            palisade(),
            "--server",
            "everything",
            "--deny-tool",
            "get-env",
            "--",
        ])
        .args(peers::server_everything_stdio());
    home.apply(&mut cmd);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the SDK client");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            child.kill().unwrap();
            panic!("the SDK client did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        status.success(),
        "the SDK client failed ({status}):\n{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("summary is not JSON ({e}): {stdout}\n{stderr}"));

    assert_eq!(summary["protocol_version"], "2025-11-25");
    assert_eq!(summary["server_name"], "mcp-servers/everything");
    // Everything server-everything offers a client without sampling/elicitation/roots, minus the denied tool.
    assert_eq!(
        summary["tools"],
        json!([
            "echo",
            "get-annotated-message",
            "get-resource-links",
            "get-resource-reference",
            "get-structured-content",
            "get-sum",
            "get-tiny-image",
            "gzip-file-as-resource",
            "simulate-research-query",
            "toggle-simulated-logging",
            "toggle-subscriber-updates",
            "trigger-long-running-operation",
        ]),
        "{stderr}"
    );
    assert_eq!(
        summary["echo"],
        json!({ "is_error": false, "text": ["Echo: hello from the python sdk"] })
    );
    assert_eq!(
        summary["bad_echo"],
        json!({
            "is_error": true,
            "text": ["palisade refused this call: arguments to `echo` do not match its input schema: /message: 42 is not of type \"string\""],
        })
    );
    let events = audit_events(&home, "everything");
    let refused: Vec<&Value> = events
        .iter()
        .filter(|e| e["tool"] == "echo" && e["decision"] == "deny")
        .collect();
    assert_eq!(refused.len(), 1, "{events:?}");
    assert_eq!(refused[0]["reason"], "schema-invalid");
    assert_eq!(
        refused[0]["client"], "mcp",
        "the SDK's client name is recorded"
    );
}
