//! The audit trail end to end: what `palisade run` writes (and keeps when it is killed), how
//! `palisade logs` shows, follows and verifies it, and that tampering is caught and located.

use crate::util::{
    audit_log, call_text, code_out_err, dump, echo_server_with, events, output, spawn_run,
    wait_event, wait_for,
};
use palisade_testkit::TestHome;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

/// An Anthropic-key-shaped secret (never a real one).
const ANTHROPIC_KEY: &str = "sk-ant-api03-Zq8xLw3vN7pR2tY6uK1mB9cD4fG5hJ0sA-Ee_Xo";
/// A GitHub-token-shaped secret (`ghp_` + 36 characters; never a real one).
const GITHUB_TOKEN: &str = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8";
/// A value with nothing token-like about it, under a secret-named key.
const PASSWORD: &str = "correct-horse-battery-staple";

/// Runs one short session (initialize, tools/list, one echo call per text) through palisade against the
/// echo server named `server`, closes it, and returns the audit log's path.
fn echo_session(home: &TestHome, server: &str, texts: &[&str]) -> PathBuf {
    let mut palisade = spawn_run(home, &["--server", server], &echo_server_with(&[]));
    palisade.initialize();
    let list = palisade.request("tools/list", json!({}));
    assert_eq!(list["result"]["tools"][0]["name"], "echo", "{list}");
    for text in texts {
        let r = palisade.request(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": text}}),
        );
        assert_eq!(call_text(&r), *text);
    }
    palisade.close_stdin();
    let status = palisade
        .wait_exit(Duration::from_secs(10))
        .expect("palisade exits");
    assert_eq!(status.code(), Some(0), "stderr:\n{}", palisade.stderr());
    audit_log(home, server)
}

/// `palisade logs --verify FILE`: exit code and stdout.
fn verify(home: &TestHome, file: &Path) -> (Option<i32>, String) {
    let (code, out, err) =
        code_out_err(&output(home, &["logs", "--verify", file.to_str().unwrap()]));
    (code, format!("{out}{err}"))
}

#[test]
fn kill_9_between_request_and_response_loses_no_audit_event() {
    let home = TestHome::new();
    let mut palisade = spawn_run(
        &home,
        &["--server", "slow"],
        &echo_server_with(&[("ECHO_SERVER_SLOW_MS", "10000")]),
    );
    palisade.initialize();
    let id = palisade.send_request(
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "in flight"}}),
    );
    let log = audit_log(&home, "slow");
    wait_event(&log, "the tools/call request event", |e| {
        e["method"] == "tools/call" && e["id"] == id
    });

    palisade.kill(); // SIGKILL while the server is still sleeping on the call.

    let events = events(&log);
    let call: Vec<&Value> = events
        .iter()
        .filter(|e| e["method"] == "tools/call" && e["id"] == id)
        .collect();
    assert_eq!(call.len(), 1, "{}", dump(&log));
    let call = call[0];
    assert_eq!(call["kind"], "call");
    assert_eq!(call["tool"], "echo");
    assert_eq!(call["decision"], "allow");
    assert_eq!(call["args"], json!({"text": "in flight"}));
    assert!(
        call.get("status").is_none(),
        "the call never completed: {call}"
    );
    assert!(call.get("duration_ms").is_none(), "{call}");
    let (code, out) = verify(&home, &log);
    assert_eq!(code, Some(0), "{out}\n{}", dump(&log));
    assert!(out.contains("hash chain intact"), "{out}");
}

#[test]
fn a_short_session_leaves_a_private_log_that_verifies_and_holds_no_secret_argument() {
    let home = TestHome::new();
    let mut palisade = spawn_run(&home, &["--server", "echo"], &echo_server_with(&[]));
    palisade.initialize();
    let texts = [
        format!("deploy with {ANTHROPIC_KEY} please"),
        format!("token={GITHUB_TOKEN}"),
    ];
    for text in &texts {
        let r = palisade.request(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": text}}),
        );
        // Redaction is for the log only: the server and the client see the real value.
        assert_eq!(call_text(&r), text.as_str());
    }
    // An argument the schema does not declare, under a secret-looking name (dev profile lets it through).
    let r = palisade.request(
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x", "password": PASSWORD}}),
    );
    assert_eq!(call_text(&r), "x");
    palisade.close_stdin();
    let status = palisade
        .wait_exit(Duration::from_secs(10))
        .expect("palisade exits");
    assert_eq!(status.code(), Some(0), "stderr:\n{}", palisade.stderr());

    let log = audit_log(&home, "echo");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log)
        .expect("audit log exists")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "audit log mode {mode:o}");

    let (code, out) = verify(&home, &log);
    assert_eq!(code, Some(0), "{out}");
    let n = events(&log).len();
    assert!(
        out.contains(&format!("{n} events, hash chain intact")),
        "{out}"
    );

    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [&ANTHROPIC_KEY[7..], &GITHUB_TOKEN[4..], PASSWORD] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the audit log:\n{text}"
        );
    }
    let calls: Vec<Value> = events(&log)
        .into_iter()
        .filter(|e| e["method"] == "tools/call" && e.get("status").is_none())
        .collect();
    assert_eq!(calls.len(), 3, "{}", dump(&log));
    assert_eq!(
        calls[0]["args"]["text"],
        "deploy with [REDACTED:anthropic-key] please"
    );
    assert!(
        calls[1]["args"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("[REDACTED:")),
        "{}",
        calls[1]
    );
    assert_eq!(calls[2]["args"]["password"], "[REDACTED:secret-field]");
    assert_eq!(calls[2]["args"]["text"], "x");
}

#[test]
fn editing_deleting_or_appending_a_line_fails_verification_and_names_the_line() {
    let home = TestHome::new();
    let log = echo_session(&home, "echo", &["one", "two"]);
    let original = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 5, "{original}");
    let (code, out) = verify(&home, &log);
    assert_eq!(code, Some(0), "the untouched log must verify: {out}");

    let write = |name: &str, text: String| {
        let p = home.root().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };

    // One byte of line 3 changed (a letter of the server name).
    let mut edited: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let at = edited[2]
        .find("\"server\":\"echo\"")
        .expect("server field on line 3")
        + "\"server\":\"".len();
    edited[2].replace_range(at..at + 1, "E");
    let edited = write("edited.jsonl", edited.join("\n") + "\n");
    let (code, out) = verify(&home, &edited);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("line 3:"), "{out}");
    assert!(out.contains("hash mismatch"), "{out}");

    // Line 2 removed.
    let mut deleted: Vec<&str> = lines.clone();
    deleted.remove(1);
    let deleted = write("deleted.jsonl", deleted.join("\n") + "\n");
    let (code, out) = verify(&home, &deleted);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("line 2:"), "{out}");
    assert!(out.contains("prev mismatch"), "{out}");

    // Garbage appended after the last line.
    let appended = write(
        "appended.jsonl",
        format!("{original}this is not an audit event\n"),
    );
    let (code, out) = verify(&home, &appended);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("line {}:", lines.len() + 1)), "{out}");

    // And the original, next to them, still verifies.
    assert_eq!(verify(&home, &log).0, Some(0));
}

#[test]
fn logs_prints_one_human_line_per_event_and_defaults_to_the_newest_log() {
    let home = TestHome::new();
    let (code, _, err) = code_out_err(&output(&home, &["logs"]));
    assert_eq!(code, Some(2), "no logs yet is a usage error: {err}");
    assert!(err.contains("no audit logs"), "{err}");

    let log = echo_session(&home, "echo", &["hello"]);
    let events = events(&log);
    let (code, out, err) = code_out_err(&output(&home, &["logs", log.to_str().unwrap()]));
    assert_eq!(code, Some(0), "{err}");
    let printed: Vec<&str> = out.lines().collect();
    assert_eq!(printed.len(), events.len(), "{out}");
    for (line, ev) in printed.iter().zip(&events) {
        assert!(!line.starts_with('{'), "not JSON but a human line: {line}");
        assert!(line.starts_with(ev["ts"].as_str().unwrap()), "{line}");
        assert!(line.contains("  echo  "), "{line}");
        assert!(line.contains(ev["kind"].as_str().unwrap()), "{line}");
    }
    assert!(
        printed
            .iter()
            .any(|l| l.contains("tools/call echo") && l.contains("allow") && l.contains("ok")),
        "{out}"
    );

    let (code, default_out, _) = code_out_err(&output(&home, &["logs"]));
    assert_eq!(code, Some(0));
    assert_eq!(default_out, out, "`palisade logs` shows the newest log");
}

#[test]
fn logs_follow_prints_new_events_as_they_are_appended() {
    let home = TestHome::new();
    let log = echo_session(&home, "echo", &["first session"]);
    let first = events(&log).len();

    let mut follow = crate::util::cmd(&home, &["logs", "--follow", log.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn palisade logs --follow");
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut printed: Vec<String> = Vec::new();
    let wait_lines = |n: usize, printed: &mut Vec<String>| {
        wait_for(
            Duration::from_secs(10),
            &format!("{n} lines from palisade logs --follow"),
            || {
                printed.extend(rx.try_iter());
                (printed.len() >= n).then_some(())
            },
            || dump(&log),
        );
    };
    wait_lines(first, &mut printed);

    // A second session appends to the same log while `--follow` runs.
    let mut palisade = spawn_run(&home, &["--server", "echo"], &echo_server_with(&[]));
    palisade.initialize();
    let r = palisade.request(
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "second"}}),
    );
    assert_eq!(call_text(&r), "second");
    // The call's completion is on disk before its response was released; `--follow` shows it while the
    // session is still open.
    let now = events(&log).len();
    assert!(now > first);
    wait_lines(now, &mut printed);
    assert!(
        printed[first..]
            .iter()
            .any(|l| l.contains("tools/call echo") && l.contains("ok")),
        "{printed:#?}"
    );
    palisade.close_stdin();
    palisade
        .wait_exit(Duration::from_secs(10))
        .expect("palisade exits");
    let total = events(&log).len();
    wait_lines(total, &mut printed);

    let _ = follow.kill();
    let _ = follow.wait();
    let (_, plain, _) = code_out_err(&output(&home, &["logs", log.to_str().unwrap()]));
    let plain: Vec<&str> = plain.lines().collect();
    assert_eq!(
        printed, plain,
        "--follow prints the same lines as `palisade logs`"
    );
    // Two sessions, one chain.
    let (code, out) = verify(&home, &log);
    assert_eq!(code, Some(0), "{out}");
}
