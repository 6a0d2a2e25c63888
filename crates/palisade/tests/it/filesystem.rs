//! Path confinement end to end with `@modelcontextprotocol/server-filesystem`: the folder in the server's
//! own command line becomes a read-only root; escapes are refused by palisade (`path-refused`) before the
//! server sees them, including the two published CVEs of this server.

use palisade_testkit::client::LEGACY_PROTOCOL_VERSION;
use palisade_testkit::{McpProcess, TempDir, TestHome, peers};
use serde_json::{Value, json};
use std::path::Path;

use crate::util::{audit_events, call, call_text, events_for_id, spawn_run};

const SERVER: &str = "fs";

/// server-filesystem serving `root` behind palisade (server `fs`) with `flags`, initialized without the
/// roots capability (so the server keeps the folder it was started with).
fn filesystem(home: &TestHome, root: &Path, flags: &[&str]) -> McpProcess {
    let mut all = vec!["--server", SERVER];
    all.extend_from_slice(flags);
    let mut p = spawn_run(home, &all, &peers::server_filesystem(&[root]));
    p.initialize_with(LEGACY_PROTOCOL_VERSION, json!({}));
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Calls `tool` with `arguments`; asserts palisade refused it with `path-refused` and never forwarded it.
/// Returns the refusal text.
#[track_caller]
fn assert_path_refused(
    p: &mut McpProcess,
    home: &TestHome,
    tool: &str,
    arguments: Value,
) -> String {
    let id = p.send_request("tools/call", call(tool, arguments.clone()));
    let r = p.wait_response(&id);
    assert_eq!(r["result"]["isError"], true, "{arguments}: {r}");
    let text = call_text(&r).to_owned();
    assert!(
        text.starts_with("palisade refused this call: path argument `/path` refused: "),
        "{arguments}: {text}"
    );
    let about = events_for_id(&audit_events(home, SERVER), &id);
    assert_eq!(
        about.len(),
        1,
        "{arguments}: one decision, nothing forwarded: {about:?}"
    );
    assert_eq!(about[0]["decision"], "deny", "{about:?}");
    assert_eq!(about[0]["reason"], "path-refused", "{about:?}");
    text
}

#[test]
fn reads_a_file_inside_the_served_folder() {
    let home = TestHome::new();
    let root = TempDir::new("fs-root");
    std::fs::write(root.join("hello.txt"), "hello through palisade").unwrap();
    let mut p = filesystem(&home, root.path(), &[]);
    p.request("tools/list", json!({}));
    let r = p.request(
        "tools/call",
        call(
            "read_text_file",
            json!({ "path": s(&root.join("hello.txt")) }),
        ),
    );
    assert_eq!(call_text(&r), "hello through palisade", "{r}");
    assert_eq!(
        r["result"]["structuredContent"],
        json!({ "content": "hello through palisade" })
    );
}

#[test]
fn refuses_paths_that_escape_the_served_folder() {
    let home = TestHome::new();
    let base = TempDir::new("fs-escape");
    let root = base.join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(base.join("outside.txt"), "secret").unwrap();
    let mut p = filesystem(&home, &root, &[]);
    p.request("tools/list", json!({}));
    let root = s(&root);
    // Each escape, and the reason palisade gives for it.
    let cases = [
        (
            format!("{root}/../outside.txt"),
            "is outside the allowed folders",
        ),
        ("/etc/passwd".to_owned(), "is outside the allowed folders"),
        (
            format!("{root}/%2e%2e/outside.txt"),
            "contains the percent-escape `%2e`",
        ),
        (
            format!("{root}/hello.txt\0../../outside.txt"),
            "contains a NUL byte",
        ),
        ("~/x".to_owned(), "starts with `~`"),
    ];
    for (path, why) in cases {
        let text = assert_path_refused(&mut p, &home, "read_text_file", json!({ "path": path }));
        assert!(text.contains(why), "{path:?}: {text}");
    }
    // Nothing above reached the server, and it still answers.
    let r = p.request("tools/call", call("list_allowed_directories", json!({})));
    assert_eq!(call_text(&r), format!("Allowed directories:\n{root}"));
}

#[test]
fn cve_2025_53110_prefix_sibling_end_to_end() {
    let home = TestHome::new();
    let base = TempDir::new("cve-53110");
    let allowed = base.join("allowed");
    let evil = base.join("allowed_evil");
    std::fs::create_dir(&allowed).unwrap();
    std::fs::create_dir(&evil).unwrap();
    std::fs::write(evil.join("secret"), "sibling secret").unwrap();
    let mut p = filesystem(&home, &allowed, &[]);
    p.request("tools/list", json!({}));
    let text = assert_path_refused(
        &mut p,
        &home,
        "read_text_file",
        json!({ "path": s(&evil.join("secret")) }),
    );
    assert!(!text.contains("sibling secret"), "{text}");
}

#[test]
fn cve_2025_53109_symlink_escape_end_to_end() {
    let home = TestHome::new();
    let base = TempDir::new("cve-53109");
    let root = base.join("root");
    let outside = base.join("outside");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), "symlinked secret").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
    let mut p = filesystem(&home, &root, &[]);
    p.request("tools/list", json!({}));
    let text = assert_path_refused(
        &mut p,
        &home,
        "read_text_file",
        json!({ "path": s(&root.join("link").join("secret")) }),
    );
    assert!(!text.contains("symlinked secret"), "{text}");
}

#[test]
fn writes_need_allow_write_because_the_served_folder_is_read_only() {
    let home = TestHome::new();
    let root = TempDir::new("fs-write");
    let target = root.join("written.txt");
    let mut p = filesystem(&home, root.path(), &[]);
    p.request("tools/list", json!({}));
    assert_path_refused(
        &mut p,
        &home,
        "write_file",
        json!({ "path": s(&target), "content": "nope" }),
    );
    assert!(!target.exists(), "the server wrote a refused file");
    drop(p);

    let home = TestHome::new();
    let mut p = filesystem(&home, root.path(), &["--allow-write", s(root.path())]);
    p.request("tools/list", json!({}));
    let r = p.request(
        "tools/call",
        call(
            "write_file",
            json!({ "path": s(&target), "content": "written through palisade" }),
        ),
    );
    assert_eq!(
        call_text(&r),
        format!("Successfully wrote to {}", s(&target)),
        "{r}"
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "written through palisade"
    );
}
