//! The committed benign set is what the pinned peers really serve: each live `tools/list` (and
//! prompts/resources) equals the fixture extracted from it, so the published numbers describe the
//! servers palisade is tested against, and a peer upgrade that changes a description shows up here.

use palisade_testkit::{McpProcess, TempDir, peers};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/descriptions/benign")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn check(server: &str, argv: Vec<String>) {
    let want = fixture(server);
    let mut peer = McpProcess::spawn(peers::command(&argv));
    peer.initialize();
    for (field, method) in [
        ("tools", "tools/list"),
        ("prompts", "prompts/list"),
        ("resources", "resources/list"),
        ("resourceTemplates", "resources/templates/list"),
    ] {
        let Some(expected) = want.get(field) else {
            continue;
        };
        let got = peer.request(method, json!({}));
        let live = got["result"][field].as_array().cloned().unwrap_or_default();
        // The live list may hold more (server-everything adds tools for the client capabilities the
        // test client declares); every committed item must be served exactly as committed.
        for item in expected.as_array().unwrap() {
            let name = &item["name"];
            let served = live.iter().find(|l| &l["name"] == name);
            assert_eq!(
                served,
                Some(item),
                "{server}: `{name}` of the live {method} differs from the committed fixture; re-extract it and re-run the detection test"
            );
        }
        if field == "tools" {
            let found = palisade_analyze::analyze_tools(&Value::Array(live));
            assert!(
                found.iter().all(|i| i.findings.is_empty()),
                "{server}: {found:?}"
            );
        }
    }
}

#[test]
fn the_pinned_node_peers_serve_the_committed_benign_definitions() {
    let dir = TempDir::new("analyze-peers");
    check("everything", peers::server_everything_stdio());
    check("filesystem", peers::server_filesystem(&[dir.path()]));
}

#[test]
fn the_pinned_python_peers_serve_the_committed_benign_definitions() {
    let repo = TempDir::new("analyze-peers");
    let ok = std::process::Command::new("git")
        .args(["init", "-q"])
        .arg(repo.path())
        .status()
        .unwrap();
    assert!(ok.success());
    check("fetch", peers::mcp_server_fetch());
    check("git", peers::mcp_server_git(repo.path()));
    check("time", peers::mcp_server_time());
}
