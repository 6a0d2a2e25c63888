//! Process lifecycle of `palisade run`: no orphans when palisade dies (even by `kill -9`, even when the real
//! server is a grandchild behind a launcher), a clean exit when the client closes its input, errors for
//! requests pending when the server dies, and the server's stderr passed through prefixed and masked.
//!
//! These run the plain launcher (`--unsandboxed`), whose process tree (palisade → server, watchdog) they
//! inspect; the sandbox's lifetime (PID namespace, PID 1 reaper) is tested in `sandbox.rs`.

use crate::util::{self, audit_log, echo_server_with, spawn_run, wait_event, wait_for};
use palisade_testkit::client::LEGACY_PROTOCOL_VERSION;
use palisade_testkit::{McpProcess, TestHome, peers};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A process seen at one moment: pid plus start time (so a recycled pid is never mistaken for it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Proc {
    pid: u32,
    ppid: u32,
    start: u64,
    cmdline: String,
}

/// `(state, ppid, starttime)` from `/proc/<pid>/stat`, or `None` if the process is gone.
fn stat(pid: u32) -> Option<(char, u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `comm` is in parentheses and may itself contain spaces and parentheses: split after the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), fields[1] field 4 (ppid), fields[19] field 22 (starttime).
    Some((
        fields.first()?.chars().next()?,
        fields.get(1)?.parse().ok()?,
        fields.get(19)?.parse().ok()?,
    ))
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default()
}

/// Every live descendant of `root` (children, grandchildren, …), found by scanning the ppid of every
/// process in `/proc`.
fn descendants(root: u32) -> Vec<Proc> {
    let mut children: BTreeMap<u32, Vec<(u32, u64)>> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((state, ppid, start)) = stat(pid)
            && state != 'Z'
            && state != 'X'
        {
            children.entry(ppid).or_default().push((pid, start));
        }
    }
    let mut out = Vec::new();
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        for &(pid, start) in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            out.push(Proc {
                pid,
                ppid: p,
                start,
                cmdline: cmdline(pid),
            });
            queue.push(pid);
        }
    }
    out.sort();
    out
}

/// Whether `p` is still running: same pid and start time, and not a zombie waiting to be reaped.
fn alive(p: &Proc) -> bool {
    stat(p.pid).is_some_and(|(state, _, start)| start == p.start && state != 'Z' && state != 'X')
}

/// Kills whatever of `procs` is still alive when dropped, so a failing test leaves no orphans behind.
struct Reaper(Vec<Proc>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for p in self.0.iter().filter(|p| alive(p)) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &p.pid.to_string()])
                .status();
        }
    }
}

/// Waits until none of `procs` is alive; panics naming the survivors after `timeout`.
#[track_caller]
fn assert_all_gone(procs: &[Proc], timeout: Duration, after: &str) {
    let deadline = Instant::now() + timeout;
    loop {
        let survivors: Vec<&Proc> = procs.iter().filter(|p| alive(p)).collect();
        if survivors.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "{} process(es) still alive {timeout:?} after {after}: {survivors:#?}",
                survivors.len()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// server-everything behind `sh -c '…; :'`: the trailing `:` stops the shell from exec'ing node, so the
/// real server is palisade's grandchild, as it is behind `npx` or `uvx`.
fn server_everything_behind_a_shell() -> Vec<String> {
    let inner: Vec<String> = peers::server_everything_stdio()
        .iter()
        .map(|a| format!("'{a}'"))
        .collect();
    vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("{}; :", inner.join(" ")),
    ]
}

/// The process tree under a running palisade, checked to hold the shell, node (as a grandchild) and the
/// watchdog.
fn tree_with_grandchild_server(palisade: &McpProcess) -> Vec<Proc> {
    let pid = palisade.pid();
    let tree = descendants(pid);
    let node = tree
        .iter()
        .find(|p| p.cmdline.contains("server-everything") && !p.cmdline.starts_with("/bin/sh"))
        .unwrap_or_else(|| {
            panic!("no server-everything node process under palisade {pid}: {tree:#?}")
        });
    assert_ne!(
        node.ppid, pid,
        "node must be a grandchild of palisade for this test to mean anything: {tree:#?}"
    );
    assert!(
        tree.iter()
            .any(|p| p.ppid == pid && p.cmdline.contains("__watchdog")),
        "no watchdog under palisade {pid}: {tree:#?}"
    );
    tree
}

#[test]
fn kill_9_of_palisade_leaves_no_server_process_behind_even_a_grandchild() {
    let home = TestHome::new();
    let mut palisade = spawn_run(
        &home,
        &["--unsandboxed", "--server", "everything"],
        &server_everything_behind_a_shell(),
    );
    palisade.initialize();
    let tree = tree_with_grandchild_server(&palisade);
    let _reaper = Reaper(tree.clone());

    palisade.kill(); // SIGKILL: no destructor, no signal handler runs in palisade.

    assert_all_gone(&tree, Duration::from_secs(5), "kill -9 of palisade");
}

#[test]
fn closing_stdin_stops_the_server_and_palisade_exits_0() {
    let home = TestHome::new();
    let mut palisade = spawn_run(
        &home,
        &["--unsandboxed", "--server", "everything"],
        &server_everything_behind_a_shell(),
    );
    // No client capabilities: with `roots`, server-everything asks for the roots and stays alive while that
    // request is unanswered, which is its business, not palisade's.
    palisade.initialize_with(LEGACY_PROTOCOL_VERSION, json!({}));
    let ping = palisade.request("ping", json!({}));
    assert!(ping.get("result").is_some(), "{ping}");
    let tree = tree_with_grandchild_server(&palisade);
    let _reaper = Reaper(tree.clone());

    palisade.close_stdin();

    let status = palisade
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| {
            panic!(
                "palisade still running 10s after its stdin closed; stderr:\n{}",
                palisade.stderr()
            )
        });
    assert_eq!(status.code(), Some(0), "stderr:\n{}", palisade.stderr());
    // The server went on its own: palisade did not have to kill it after the grace period.
    assert!(
        !palisade.stderr().contains("did not exit within"),
        "stderr:\n{}",
        palisade.stderr()
    );
    assert_all_gone(&tree, Duration::from_secs(5), "palisade exited");
    let exit = wait_event(&audit_log(&home, "everything"), "an exit event", |e| {
        e["kind"] == "exit"
    });
    assert_eq!(exit["server"], "everything");
}

#[test]
fn a_server_that_ignores_end_of_input_is_killed_with_its_process_group_after_the_grace_period() {
    let home = TestHome::new();
    // The echo server exits at end of input, but the shell then sleeps, holding the server's stdout open.
    let server = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        format!("'{}'; exec sleep 60", util::echo_server()),
    ];
    let mut palisade = spawn_run(&home, &["--unsandboxed", "--server", "stubborn"], &server);
    palisade.initialize();
    let tree = descendants(palisade.pid());
    let _reaper = Reaper(tree.clone());
    assert!(
        tree.iter()
            .any(|p| p.cmdline.contains("palisade-echo-server")),
        "{tree:#?}"
    );

    palisade.close_stdin();
    let status = palisade
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| {
            panic!(
                "palisade still running 15s after its stdin closed; stderr:\n{}",
                palisade.stderr()
            )
        });

    assert_eq!(status.code(), Some(0), "stderr:\n{}", palisade.stderr());
    assert!(
        palisade.stderr().contains("did not exit within"),
        "palisade should say it stopped the server; stderr:\n{}",
        palisade.stderr()
    );
    let sleeper: Vec<Proc> = tree
        .into_iter()
        .filter(|p| p.cmdline.contains("sleep"))
        .collect();
    assert!(
        !sleeper.is_empty(),
        "the shell should have exec'd sleep by now"
    );
    assert_all_gone(&sleeper, Duration::from_secs(5), "palisade exited");
}

#[test]
fn a_call_sent_right_before_the_client_closes_its_input_is_still_answered() {
    // A client that writes its requests and closes its input at once (`printf … | palisade run …`). The
    // first call of a session is held until palisade has listed the tools itself; end of input must not
    // drop it: the echo server answers every request it received before end of input.
    let home = TestHome::new();
    let mut palisade = spawn_run(
        &home,
        &["--unsandboxed", "--server", "echo"],
        &echo_server_with(&[]),
    );
    let init = palisade.send_request(
        "initialize",
        json!({"protocolVersion": LEGACY_PROTOCOL_VERSION, "capabilities": {},
               "clientInfo": {"name": "batch", "version": "1"}}),
    );
    palisade.notify("notifications/initialized", serde_json::Value::Null);
    let id = palisade.send_request(
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "last words"}}),
    );
    palisade.close_stdin();

    let init = palisade.wait_response(&init);
    assert!(init.get("result").is_some(), "{init}");
    let response = palisade.wait_response(&id);
    assert_eq!(
        response["result"]["content"][0]["text"],
        "last words",
        "the call was dropped: {response}\nstderr:\n{}\n{}",
        palisade.stderr(),
        util::dump(&audit_log(&home, "echo"))
    );
    let status = palisade
        .wait_exit(Duration::from_secs(10))
        .expect("palisade exits");
    assert_eq!(status.code(), Some(0), "stderr:\n{}", palisade.stderr());
}

/// Starts palisade on a slow echo server, sends one call, and SIGKILLs the server while the call is in
/// flight. Returns palisade, the call's id, the audit log, and a reaper for anything left over.
fn server_dies_mid_call(
    home: &TestHome,
) -> (McpProcess, serde_json::Value, std::path::PathBuf, Reaper) {
    let mut palisade = spawn_run(
        home,
        &["--unsandboxed", "--server", "slow"],
        &echo_server_with(&[("ECHO_SERVER_SLOW_MS", "10000")]),
    );
    palisade.initialize();
    let id = palisade.send_request(
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "never answered"}}),
    );
    let log = audit_log(home, "slow");
    // The call is in flight once palisade has recorded releasing it.
    wait_event(&log, "the tools/call request event", |e| {
        e["method"] == "tools/call" && e["id"] == id && e["decision"] == "allow"
    });
    let pid = palisade.pid();
    let server = wait_for(
        Duration::from_secs(5),
        "the echo server under palisade",
        || {
            descendants(pid)
                .into_iter()
                .find(|p| p.ppid == pid && p.cmdline.contains("palisade-echo-server"))
        },
        || format!("{:#?}", descendants(pid)),
    );
    let reaper = Reaper(descendants(pid));
    let killed = std::process::Command::new("kill")
        .args(["-9", &server.pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    (palisade, id, log, reaper)
}

#[test]
fn when_the_server_dies_mid_call_the_client_gets_error_32003_and_palisade_exits_non_zero() {
    let home = TestHome::new();
    let (mut palisade, id, log, _reaper) = server_dies_mid_call(&home);

    let response = palisade.wait_response(&id);
    assert_eq!(response["error"]["code"], -32003, "{response}");
    assert!(
        response["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("exited")),
        "{response}"
    );
    let status = palisade
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| {
            panic!(
                "palisade still running after its server died; stderr:\n{}",
                palisade.stderr()
            )
        });
    assert_ne!(status.code(), Some(0), "stderr:\n{}", palisade.stderr());
    assert!(
        status.code().is_some(),
        "palisade should exit, not be killed: {status:?}"
    );
    let stderr = palisade.stderr();
    assert!(
        stderr.contains("palisade: the server `slow` exited while the client was connected"),
        "stderr:\n{stderr}"
    );
    wait_event(&log, "an exit event", |e| e["kind"] == "exit");
}

#[test]
fn a_call_cut_short_by_the_server_dying_is_recorded_as_completed_with_status_error() {
    // palisade answers the client itself (-32003); like every message it releases, that answer is described
    // in the audit trail first, so the call does not look as if it were still in flight.
    let home = TestHome::new();
    let (mut palisade, id, log, _reaper) = server_dies_mid_call(&home);
    let response = palisade.wait_response(&id);
    assert_eq!(response["error"]["code"], -32003, "{response}");
    palisade
        .wait_exit(Duration::from_secs(10))
        .expect("palisade exits");

    let completed: Vec<serde_json::Value> = util::events(&log)
        .into_iter()
        .filter(|e| e["id"] == id && e.get("status").is_some())
        .collect();
    assert_eq!(completed.len(), 1, "{}", util::dump(&log));
    assert_eq!(completed[0]["kind"], "call");
    assert_eq!(completed[0]["tool"], "echo");
    assert_eq!(completed[0]["status"], "error");
    assert!(completed[0]["duration_ms"].is_u64(), "{}", completed[0]);
}

#[test]
fn server_stderr_is_passed_through_prefixed_with_the_server_name_and_secrets_masked() {
    let home = TestHome::new();
    let token = format!("ghp_{}", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8");
    assert_eq!(token.len(), 40);
    let server = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        format!(
            "echo 'starting up' >&2; echo 'using token {token} for the API' >&2; exec '{}'",
            util::echo_server()
        ),
    ];
    let mut palisade = spawn_run(&home, &["--unsandboxed", "--server", "chatty"], &server);
    palisade.initialize();

    let stderr = wait_for(
        Duration::from_secs(10),
        "both stderr lines of the server",
        || {
            let s = palisade.stderr();
            (s.contains("[chatty] starting up") && s.contains("for the API")).then_some(s)
        },
        || palisade.stderr(),
    );
    assert!(
        stderr.lines().any(|l| l == "[chatty] starting up"),
        "stderr:\n{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.contains("for the API"))
        .expect("token line");
    assert!(line.starts_with("[chatty] using token "), "{line}");
    assert!(line.contains("[REDACTED:github-token]"), "{line}");
    assert!(
        !stderr.contains(&token[4..]),
        "the token leaked to stderr:\n{stderr}"
    );
    // The command line in the spawn event carries the token too: it must be masked there as well.
    palisade.close_stdin();
    palisade
        .wait_exit(Duration::from_secs(10))
        .expect("palisade exits");
    let text = std::fs::read_to_string(audit_log(&home, "chatty")).expect("audit log");
    assert!(
        !text.contains(&token[4..]),
        "the token leaked to the audit log:\n{text}"
    );
    assert!(text.contains("\"kind\":\"spawn\""), "{text}");
}
