use super::*;

#[test]
fn ids_are_stable() {
    let ids: Vec<&str> = RULES.iter().map(|r| r.meta.id).collect();
    assert_eq!(
        ids,
        [
            "secret-in-args",
            "secret-in-env",
            "secret-in-header",
            "secret-in-url",
            "secrets-file-readable-by-others",
            "config-writable-by-others",
            "config-readable-by-others",
            "curl-pipe-shell",
            "container-privileged",
            "broad-filesystem-root",
            "insecure-remote-url",
            "project-auto-enable",
            "shell-wrapper",
            "unpinned-package",
            "image-not-pinned-by-digest",
            "sensitive-env-passthrough",
            "npx-auto-yes",
            "container-not-hardened",
            "remote-without-auth",
            "not-wrapped",
            "config-parse-error",
            "tools-never-reviewed",
        ],
        "rule ids are a public API: add new ones, never rename or remove"
    );
}

#[test]
fn docs_list_every_rule_with_its_severity() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/scan.md");
    let docs = std::fs::read_to_string(path).unwrap();
    for r in RULES {
        let row = format!("| `{}` | {} |", r.meta.id, r.meta.severity);
        assert!(docs.contains(&row), "docs/scan.md lacks the row `{row}`");
    }
    let rows = docs
        .lines()
        .filter(|l| l.starts_with("| `") && l.contains("` | "))
        .filter(|l| {
            ["info", "low", "medium", "high", "critical"]
                .iter()
                .any(|s| l.contains(&format!("` | {s} |")))
        })
        .count();
    assert_eq!(
        rows,
        RULES.len(),
        "docs/scan.md lists a rule that does not exist"
    );
}

#[test]
fn every_rule_has_a_title_a_reason_and_a_fix() {
    for r in RULES {
        let m = &r.meta;
        assert!(
            m.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
            "{}: ids are kebab-case",
            m.id
        );
        for (what, text) in [("title", m.title), ("why", m.why), ("fix", m.fix)] {
            assert!(!text.trim().is_empty(), "{}: empty {what}", m.id);
        }
        assert_eq!(by_id(m.id).map(|x| x.meta.id), Some(m.id));
    }
}

/// Rule ids fired by one `mcpServers` config (no pins consulted).
fn fired(json: &str) -> Vec<&'static str> {
    use crate::client::{Client, Scope, Shape};
    let c = crate::discover::Candidate {
        client: Client::Cursor,
        shape: Shape::McpServers,
        scope: Scope::Project,
        path: "/p/.cursor/mcp.json".into(),
    };
    let file = crate::config::ConfigFile::parse(&c, json.to_owned(), Some(0o600));
    assert!(file.error.is_none(), "{:?}", file.error);
    let name = |_: &[String]| String::new();
    let opts = crate::Options {
        server_name: &name,
        reviewed: None,
    };
    let mut ids: Vec<_> = crate::check_file(&file, std::path::Path::new("/home/dev"), &opts)
        .into_iter()
        .map(|f| f.rule)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn server(cmd: &str, args: &[&str]) -> String {
    serde_json::json!({"mcpServers": {"s": {"command": cmd, "args": args}}}).to_string()
}

#[test]
fn wrapped_servers_are_checked_inside_and_not_nagged() {
    let ids = fired(&server(
        "palisade",
        &[
            "run",
            "--allow-read",
            "/",
            "--",
            "uvx",
            "mcp-server-time==2026.10.1",
        ],
    ));
    assert_eq!(ids, ["broad-filesystem-root"]);
}

#[test]
fn cmd_c_with_separate_words_is_looked_through_but_a_script_string_is_not() {
    assert_eq!(
        fired(&server("cmd", &["/c", "npx", "-y", "pkg@1.0.0"])),
        ["not-wrapped", "npx-auto-yes"]
    );
    assert!(fired(&server("cmd", &["/c", "npx -y pkg@1.0.0"])).contains(&"shell-wrapper"));
    assert!(fired(&server("node", &["-e", "require('./srv')"])).contains(&"shell-wrapper"));
}

#[test]
fn plain_http_is_only_flagged_off_loopback() {
    let remote = |url: &str| {
        fired(&serde_json::json!({"mcpServers": {"r": {"url": url, "headers": {"Authorization": "Bearer ${T}"}}}}).to_string())
    };
    assert!(remote("http://127.0.0.1:3000/mcp").is_empty());
    assert!(remote("http://localhost/mcp").is_empty());
    assert_eq!(remote("http://10.1.2.3/mcp"), ["insecure-remote-url"]);
    assert!(remote("https://mcp.example.com/mcp").is_empty());
}

#[test]
fn a_secret_after_a_secret_named_flag_is_found() {
    let tok = ["Zq8", "vN3xK1pW7yT2mB5cR9dF4hJ6"].concat();
    let ids = fired(&server("my-mcp", &["--api-key", &tok]));
    assert!(ids.contains(&"secret-in-args"), "{ids:?}");
    assert!(!fired(&server("my-mcp", &["--api-key", "${API_KEY}"])).contains(&"secret-in-args"));
}

#[test]
fn ambient_credentials_are_flagged_and_regions_are_not() {
    let env = |k: &str, v: &str| {
        fired(&serde_json::json!({"mcpServers": {"s": {"command": "node", "args": ["s.js"], "env": {k: v}}}}).to_string())
    };
    assert!(env("SSH_AUTH_SOCK", "${SSH_AUTH_SOCK}").contains(&"sensitive-env-passthrough"));
    assert!(env("NODE_OPTIONS", "--require /tmp/x.js").contains(&"sensitive-env-passthrough"));
    assert!(!env("AWS_REGION", "eu-west-1").contains(&"sensitive-env-passthrough"));
    assert!(!env("GITHUB_TOKEN", "${GITHUB_TOKEN}").contains(&"sensitive-env-passthrough"));
}

#[test]
fn containers_privileged_or_by_digest() {
    let digest =
        "ghcr.io/o/i@sha256:3c1f0c2b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";
    let ids = fired(&server(
        "docker",
        &["run", "-i", "--rm", "--privileged", digest],
    ));
    assert!(ids.contains(&"container-privileged") && !ids.contains(&"image-not-pinned-by-digest"));
    let hardened = fired(&server(
        "podman",
        &[
            "run",
            "-i",
            "--read-only",
            "--network=none",
            "--cap-drop=ALL",
            digest,
        ],
    ));
    assert_eq!(hardened, ["not-wrapped"]);
}

#[test]
fn disabled_servers_keep_secret_findings_but_are_not_nagged() {
    let tok = ["gh", "p_", "Zq8vN3xK1pW7yT2mB5cR9dF4hJ6sA0eLuYiO"].concat();
    let ids = fired(
        &serde_json::json!({"mcpServers": {"s": {"command": "node", "args": ["s.js"], "disabled": true, "env": {"GITHUB_TOKEN": tok}}}})
            .to_string(),
    );
    assert_eq!(ids, ["secret-in-env"]);
}
