//! `palisade wrap` / `unwrap` through the binary, with isolated XDG dirs and the headless file store:
//! the "done when" of issue 4 (a wrapped Claude Desktop entry for the real server-filesystem, started
//! exactly as the client starts it, still lists a directory), consent (dry run, refusal without a
//! terminal, `--yes`), secrets leaving the config for the store, the generated policy passing `palisade
//! policy check`, idempotence, and unwrap's byte-for-byte restore and its refusal of an edited file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use palisade_testkit::xdg::TestHome;
use palisade_testkit::{McpProcess, peers};
use serde_json::{Value, json};

use crate::util::{call, call_text, cmd, code_out_err};

/// `palisade ARGS…` with the isolated home, the file store and no terminal on stdin.
fn palisade(t: &TestHome, args: &[&str]) -> Output {
    let mut c = cmd(t, args);
    c.env("PALISADE_SECRET_BACKEND", "file")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("palisade {args:?}: {e}"))
}

fn claude_config(t: &TestHome) -> PathBuf {
    let dir = t.home().join(".config/Claude");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("claude_desktop_config.json")
}

fn write(p: &Path, text: &str, mode: u32) {
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A token-shaped fake assembled at run time (no token literal in the repository).
fn fake_token() -> String {
    ["gh", "p_", "Zq8RtY2mVx7KpL4nWc9HbJ3sDf6GaE1uQo5T"].concat()
}

fn policies(t: &TestHome) -> Vec<PathBuf> {
    match std::fs::read_dir(t.config_home().join("palisade/wrapped")) {
        Ok(d) => d.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Starts a server entry of a client config the way the client does: `command` with `args`, the
/// client's environment plus the entry's `env`.
fn start_like_the_client(t: &TestHome, entry: &Value) -> McpProcess {
    let mut c = Command::new(entry["command"].as_str().expect("command"));
    for a in entry["args"].as_array().expect("args") {
        c.arg(a.as_str().unwrap());
    }
    t.apply(&mut c);
    c.env("PALISADE_SECRET_BACKEND", "file");
    if let Some(env) = entry.get("env").and_then(Value::as_object) {
        for (k, v) in env {
            c.env(k, v.as_str().unwrap());
        }
    }
    McpProcess::spawn(c)
}

/// Issue 4's "done when": scan, wrap, and the client's server still works.
#[test]
fn a_wrapped_claude_desktop_entry_still_serves_when_started_as_the_client_starts_it() {
    let t = TestHome::new();
    let data = t.root().join("projects");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("notes.txt"), "hello").unwrap();
    std::fs::create_dir(data.join("src")).unwrap();
    let argv = peers::server_filesystem(&[&data]);
    let config = claude_config(&t);
    let original = serde_json::to_string_pretty(&json!({
        "mcpServers": {"files": {"command": argv[0], "args": argv[1..]}},
        "globalShortcut": "Ctrl+Space"
    }))
    .unwrap();
    write(&config, &original, 0o644);
    let home = t.home();
    let home = home.to_str().unwrap();

    // The newcomer's path: scan says the server runs unguarded…
    let (code, out, err) =
        code_out_err(&palisade(&t, &["scan", "--home", home, "--format", "json"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"not-wrapped\""), "{out}");
    // …a dry run shows the change and makes none…
    let (code, diff, err) = code_out_err(&palisade(&t, &["wrap", "--home", home, "--dry-run"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(diff.contains("+      \"command\": \""), "{diff}");
    assert!(
        diff.contains("\"--server\", \"claude-desktop-files\", \"--\""),
        "{diff}"
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        original,
        "dry run changes nothing"
    );
    assert!(policies(&t).is_empty(), "dry run writes no policy");
    // …and wrap does it.
    let (code, _, err) = code_out_err(&palisade(&t, &["wrap", "--home", home, "--yes"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("wrap  files → palisade run --server claude-desktop-files"),
        "{err}"
    );

    let wrapped: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let entry = &wrapped["mcpServers"]["files"];
    assert_eq!(
        Path::new(entry["command"].as_str().unwrap())
            .file_name()
            .unwrap(),
        "palisade"
    );
    assert_eq!(wrapped["globalShortcut"], "Ctrl+Space");
    let (code, out, _) = code_out_err(&palisade(&t, &["scan", "--home", home, "--format", "json"]));
    assert_eq!(code, Some(0));
    assert!(
        !out.contains("\"not-wrapped\""),
        "scan no longer reports it: {out}"
    );

    let mut p = start_like_the_client(&t, entry);
    p.initialize();
    let r = p.request(
        "tools/call",
        call("list_directory", json!({ "path": data.to_str().unwrap() })),
    );
    let listing = call_text(&r);
    assert!(
        listing.contains("[FILE] notes.txt") && listing.contains("[DIR] src"),
        "{listing}\nstderr: {}",
        p.stderr()
    );
    let r = p.request(
        "tools/call",
        call(
            "read_text_file",
            json!({ "path": data.join("notes.txt").to_str().unwrap() }),
        ),
    );
    assert_eq!(call_text(&r), "hello");
    // It runs sandboxed under the generated policy: the user's home stays out of reach.
    std::fs::write(t.home().join("private.txt"), "not for servers").unwrap();
    let r = p.request(
        "tools/call",
        call(
            "read_text_file",
            json!({ "path": t.home().join("private.txt").to_str().unwrap() }),
        ),
    );
    assert!(!r.to_string().contains("not for servers"), "{r}");
    p.close_stdin();
    let status = p
        .wait_exit(std::time::Duration::from_secs(10))
        .expect("palisade exits");
    assert!(p.stderr().contains("sandbox"), "{}", p.stderr());
    assert_eq!(status.code(), Some(0), "{}", p.stderr());
}

#[test]
fn wrap_refuses_without_a_terminal_or_yes_and_changes_nothing() {
    let t = TestHome::new();
    let config = claude_config(&t);
    let text = format!(
        r#"{{"mcpServers": {{"gh": {{"command": "gh-mcp", "env": {{"GITHUB_TOKEN": "{}"}}}}}}}}"#,
        fake_token()
    );
    write(&config, &text, 0o600);
    let (code, out, err) = code_out_err(&palisade(
        &t,
        &["wrap", "--home", t.home().to_str().unwrap()],
    ));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(
            "refusing to change 1 config file(s) without confirmation: stdin is not a terminal"
        ),
        "{err}"
    );
    assert!(err.contains("--dry-run") && err.contains("--yes"), "{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
    assert!(policies(&t).is_empty());
    assert!(
        !t.data_home().join("palisade/secrets.json").exists(),
        "no secret stored"
    );
    let backups = std::fs::read_dir(config.parent().unwrap()).unwrap().count();
    assert_eq!(backups, 1, "no backup either");
}

#[test]
fn secrets_move_to_the_store_the_policy_checks_and_unwrap_restores_byte_for_byte() {
    let t = TestHome::new();
    let config = claude_config(&t);
    let token = fake_token();
    let text = format!(
        "{{\n  \"mcpServers\": {{\n    \"gh\": {{\n      \"command\": \"gh-mcp\",\n      \"args\": [\"--read-only\"],\n      \"env\": {{\n        \"GITHUB_TOKEN\": \"{token}\",\n        \"LOG\": \"debug\"\n      }}\n    }}\n  }}\n}}\n"
    );
    write(&config, &text, 0o644);
    let home = t.home();
    let home = home.to_str().unwrap();

    let (code, diff, err) = code_out_err(&palisade(&t, &["wrap", "--home", home, "--dry-run"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !diff.contains(&token) && !err.contains(&token),
        "the diff masks it:\n{diff}\n{err}"
    );
    assert!(
        diff.contains("[secret moved to keychain:claude-desktop-gh-GITHUB_TOKEN]"),
        "{diff}"
    );

    let (code, _, err) = code_out_err(&palisade(&t, &["wrap", "--home", home, "--yes"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains(&token), "{err}");
    assert!(err.contains("mode:    644 → 600"), "{err}");
    let wrapped = std::fs::read_to_string(&config).unwrap();
    assert!(
        !wrapped.contains(&token) && !wrapped.contains("GITHUB_TOKEN"),
        "{wrapped}"
    );
    assert!(wrapped.contains("\"LOG\": \"debug\""), "{wrapped}");
    assert_eq!(mode(&config), 0o600);

    let (code, listed, _) = code_out_err(&palisade(&t, &["secret", "list", "--format", "json"]));
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&listed).unwrap()["secrets"],
        json!([{"name": "claude-desktop-gh-GITHUB_TOKEN"}])
    );
    let (code, value, _) = code_out_err(&palisade(
        &t,
        &["secret", "get", "claude-desktop-gh-GITHUB_TOKEN"],
    ));
    assert_eq!(code, Some(0));
    assert_eq!(value, token);

    let [policy] = &policies(&t)[..] else {
        panic!("{:?}", policies(&t))
    };
    assert_eq!(mode(policy), 0o600);
    let (code, out, err) = code_out_err(&palisade(
        &t,
        &["policy", "check", policy.to_str().unwrap()],
    ));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(": ok"), "no warning either: {out}");
    let policy_text = std::fs::read_to_string(policy).unwrap();
    assert!(
        policy_text.contains("GITHUB_TOKEN = \"keychain:claude-desktop-gh-GITHUB_TOKEN\""),
        "{policy_text}"
    );
    assert!(policy_text.contains("LOG = \"env:LOG\""), "{policy_text}");
    assert!(!policy_text.contains(&token));

    // Idempotent.
    let (code, _, err) = code_out_err(&palisade(&t, &["wrap", "--home", home, "--yes"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("ok    gh: already runs through palisade")
            && err.contains("nothing to change"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), wrapped);

    // Unwrap: refused without a terminal, then done with --yes.
    let (code, _, err) = code_out_err(&palisade(&t, &["unwrap", "--home", home]));
    assert_eq!(code, Some(2), "{err}");
    let (code, diff, err) = code_out_err(&palisade(&t, &["unwrap", "--home", home, "--dry-run"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        diff.contains(&format!("+        \"GITHUB_TOKEN\": \"{token}\"")),
        "unwrap's dry run shows the restore: {diff}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), wrapped);
    let (code, _, err) = code_out_err(&palisade(
        &t,
        &["unwrap", "--home", home, "--yes", "--remove-secrets"],
    ));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        text,
        "byte for byte"
    );
    assert_eq!(mode(&config), 0o644, "and the mode");
    assert!(policies(&t).is_empty(), "the policy is gone");
    assert!(
        err.contains("removed claude-desktop-gh-GITHUB_TOKEN"),
        "{err}"
    );
    let (_, listed, _) = code_out_err(&palisade(&t, &["secret", "list", "--format", "json"]));
    assert_eq!(
        serde_json::from_str::<Value>(&listed).unwrap()["secrets"],
        json!([])
    );
    let names: Vec<_> = std::fs::read_dir(config.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "the backup is gone too: {names:?}");
}

#[test]
fn unwrap_refuses_a_file_edited_since_unless_forced() {
    let t = TestHome::new();
    let dir = t.home().join(".cursor");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("mcp.json");
    let text = "{\"mcpServers\": {\"time\": {\"command\": \"mcp-server-time\"}}}\n";
    write(&config, text, 0o600);
    let c = config.to_str().unwrap();
    let (code, _, err) = code_out_err(&palisade(&t, &["wrap", "--config", c, "--yes"]));
    assert_eq!(code, Some(0), "{err}");
    let edited = std::fs::read_to_string(&config).unwrap() + " ";
    std::fs::write(&config, &edited).unwrap();
    let (code, _, err) = code_out_err(&palisade(&t, &["unwrap", "--config", c, "--yes"]));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("changed since palisade wrap wrote it"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
    let (code, _, err) = code_out_err(&palisade(
        &t,
        &["unwrap", "--config", c, "--yes", "--force"],
    ));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
    let (code, _, err) = code_out_err(&palisade(&t, &["unwrap", "--config", c, "--yes"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("has no record of wrapping it"), "{err}");
}

#[test]
fn wrap_rejects_unknown_clients_and_files_that_are_not_configs() {
    let t = TestHome::new();
    let (code, _, err) = code_out_err(&palisade(&t, &["wrap", "--client", "notepad", "--dry-run"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("claude-desktop, claude-code, cursor"), "{err}");
    let f = t.root().join("x.json");
    std::fs::write(&f, "{\"editor\": 1}").unwrap();
    let (code, _, err) = code_out_err(&palisade(
        &t,
        &["wrap", "--config", f.to_str().unwrap(), "--dry-run"],
    ));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not an MCP client config"), "{err}");
}

/// A secret moved out of a wrapped entry reaches the server it belongs to when the client starts the
/// entry: `palisade run --policy P --server NAME -- CMD` must apply the `[servers.NAME]` table's `env`.
#[test]
fn a_moved_secret_reaches_the_wrapped_server() {
    let t = TestHome::new();
    let config = claude_config(&t);
    let argv = peers::server_everything_stdio();
    let token = fake_token();
    let original = serde_json::to_string_pretty(&json!({
        "mcpServers": {"everything": {"command": argv[0], "args": argv[1..], "env": {"API_TOKEN": token, "MODE": "test"}}}
    }))
    .unwrap();
    write(&config, &original, 0o600);
    let (code, _, err) = code_out_err(&palisade(
        &t,
        &["wrap", "--home", t.home().to_str().unwrap(), "--yes"],
    ));
    assert_eq!(code, Some(0), "{err}");
    let wrapped: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let entry = &wrapped["mcpServers"]["everything"];
    assert_eq!(entry["env"], json!({"MODE": "test"}));
    let mut p = start_like_the_client(&t, entry);
    p.initialize();
    let r = p.request("tools/call", call("get-env", json!({})));
    let env: Value = serde_json::from_str(call_text(&r)).unwrap();
    assert_eq!(env["API_TOKEN"], token.as_str(), "{env}");
    assert_eq!(env["MODE"], "test", "{env}");
    p.close_stdin();
    p.wait_exit(std::time::Duration::from_secs(10));
}

/// At a terminal, each file's diff is shown and confirmed once: "y" wraps the first, "n" leaves the second.
/// (`script` gives palisade a pseudo-terminal.)
#[test]
fn at_a_terminal_each_file_is_shown_and_confirmed() {
    use std::io::{Read, Write};
    let t = TestHome::new();
    let desktop = claude_config(&t);
    let desktop_text = "{\"mcpServers\": {\"time\": {\"command\": \"mcp-server-time\"}}}\n";
    write(&desktop, desktop_text, 0o600);
    std::fs::create_dir_all(t.home().join(".cursor")).unwrap();
    let cursor = t.home().join(".cursor/mcp.json");
    let cursor_text = "{\"mcpServers\": {\"clock\": {\"command\": \"mcp-server-time\"}}}\n";
    write(&cursor, cursor_text, 0o600);

    let command = format!(
        "{} wrap --home {}",
        crate::util::palisade(),
        t.home().display()
    );
    let mut c = Command::new("script");
    c.args(["-qec", &command, "/dev/null"])
        .env("PALISADE_SECRET_BACKEND", "file")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    t.apply(&mut c);
    let mut child = c.spawn().expect("spawn script (util-linux)");
    let mut stdout = child.stdout.take().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    for answer in [&b"y\n"[..], b"n\n"] {
        let prompts = String::from_utf8_lossy(&seen).matches("[y/N] ").count();
        while String::from_utf8_lossy(&seen).matches("[y/N] ").count() == prompts {
            let n = stdout.read(&mut buf).unwrap();
            assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        stdin.write_all(answer).unwrap();
    }
    stdout.read_to_end(&mut seen).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let screen = String::from_utf8_lossy(&seen);
    assert!(status.success(), "{screen}");
    assert!(
        screen.contains("Wrap ~/.config/Claude/claude_desktop_config.json? [y/N]"),
        "{screen}"
    );
    assert!(
        screen.contains("+{\"mcpServers\": {\"time\": {\"command\": "),
        "the diff is shown: {screen}"
    );
    assert!(
        screen.contains("Wrap ~/.cursor/mcp.json? [y/N]"),
        "{screen}"
    );
    assert!(screen.contains("left unchanged"), "{screen}");
    assert_ne!(
        std::fs::read_to_string(&desktop).unwrap(),
        desktop_text,
        "y wraps"
    );
    assert_eq!(
        std::fs::read_to_string(&cursor).unwrap(),
        cursor_text,
        "n leaves it"
    );
}
