//! Shared helpers for the end-to-end tests.

#![allow(dead_code)]

use palisade_testkit::McpProcess;
use palisade_testkit::xdg::TestHome;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The palisade binary under test.
pub(crate) fn palisade() -> &'static str {
    env!("CARGO_BIN_EXE_palisade")
}

/// `palisade ARGS…` with an isolated home.
pub(crate) fn cmd(home: &TestHome, args: &[&str]) -> Command {
    let mut c = Command::new(palisade());
    c.args(args);
    home.apply(&mut c);
    c
}

/// Runs `palisade ARGS…` to completion with an isolated home; returns its output.
pub(crate) fn output(home: &TestHome, args: &[&str]) -> Output {
    cmd(home, args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run palisade {args:?}: {e}"))
}

/// The exit code of a finished palisade, its stdout and its stderr (lossy UTF-8), for assertions.
pub(crate) fn code_out_err(out: &Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `palisade run FLAGS… -- SERVER…` as a client-driven child process with an isolated home.
pub(crate) fn spawn_run<S: AsRef<str>>(
    home: &TestHome,
    flags: &[&str],
    server: &[S],
) -> McpProcess {
    let mut c = cmd(home, &["run"]);
    c.args(flags).arg("--");
    c.args(server.iter().map(AsRef::as_ref));
    McpProcess::spawn(c)
}

/// The default audit log of `server` under `home` (`$XDG_STATE_HOME/palisade/audit/<server>.jsonl`).
pub(crate) fn audit_log(home: &TestHome, server: &str) -> PathBuf {
    home.state_home()
        .join("palisade")
        .join("audit")
        .join(format!("{server}.jsonl"))
}

/// The complete lines of an audit log parsed as JSON (empty if the file does not exist yet). A torn last
/// line (no newline yet) is not returned.
pub(crate) fn events(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// Polls `probe` every 20 ms until it returns `Some`, or panics after `timeout` with `what` and the last
/// `context()` (e.g. the file being polled).
#[track_caller]
pub(crate) fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `p`'s stderr (copied by a reader thread, so it may lag the protocol) contains `needle`.
#[track_caller]
pub(crate) fn wait_stderr(p: &McpProcess, needle: &str) {
    wait_for(
        Duration::from_secs(5),
        &format!("{needle:?} on stderr"),
        || p.stderr().contains(needle).then_some(()),
        || p.stderr(),
    );
}

/// Waits until the audit log at `path` holds an event matching `pred`; returns it.
#[track_caller]
pub(crate) fn wait_event(path: &Path, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_for(
        Duration::from_secs(20),
        what,
        || events(path).into_iter().find(|e| pred(e)),
        || dump(path),
    )
}

/// The audit log's text, for failure messages.
pub(crate) fn dump(path: &Path) -> String {
    format!(
        "audit log {}:\n{}",
        path.display(),
        std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"))
    )
}

/// The text of the first content item of a `tools/call` response.
pub(crate) fn call_text(response: &Value) -> &str {
    response["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {response}"))
}

/// The echo server started through `/usr/bin/env` with `vars` set (palisade scrubs its own environment
/// before starting a server, so the echo server's switches must be part of the command).
pub(crate) fn echo_server_with(vars: &[(&str, &str)]) -> Vec<String> {
    let mut argv = vec!["/usr/bin/env".to_owned()];
    argv.extend(vars.iter().map(|(k, v)| format!("{k}={v}")));
    argv.push(echo_server());
    argv
}

/// Path of the echo server binary.
pub(crate) fn echo_server() -> String {
    palisade_testkit::echo_server()
        .to_str()
        .expect("UTF-8 path")
        .to_owned()
}

/// Every event of `server`'s default audit log under `home`. palisade writes an event before it releases
/// the message the event describes, so once a response has arrived, its events are on disk.
pub(crate) fn audit_events(home: &TestHome, server: &str) -> Vec<Value> {
    events(&audit_log(home, server))
}

/// The audit events about the JSON-RPC request `id`.
pub(crate) fn events_for_id(events: &[Value], id: &Value) -> Vec<Value> {
    events.iter().filter(|e| e["id"] == *id).cloned().collect()
}

/// The tool names of a `tools/list` response, in order.
pub(crate) fn tool_names(response: &Value) -> Vec<String> {
    response["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {response}"))
        .iter()
        .map(|t| t["name"].as_str().expect("tool name").to_owned())
        .collect()
}

/// The params of a `tools/call` of `tool` with `arguments`.
pub(crate) fn call(tool: &str, arguments: Value) -> Value {
    serde_json::json!({ "name": tool, "arguments": arguments })
}

/// Who runs palisade in a test: the test's own user (root in CI) or an unprivileged one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum User {
    /// The user running the tests (root in CI).
    Root,
    /// `nobody` (uid/gid 65534), through `setpriv --reuid=65534 --regid=65534 --clear-groups`.
    Nobody,
}

impl User {
    /// The uid palisade runs as.
    pub(crate) fn uid(self) -> u32 {
        match self {
            User::Root => rustix::process::getuid().as_raw(),
            User::Nobody => 65534,
        }
    }

    /// `path` as this user can execute it: unchanged for [`User::Root`], a copy in a world-readable
    /// directory for [`User::Nobody`] (`/root` and the build tree may be closed to other users).
    pub(crate) fn exe(self, path: &Path) -> PathBuf {
        match self {
            User::Root => path.to_path_buf(),
            User::Nobody => staged_binary(path),
        }
    }

    /// Gives `path` (recursively) to this user, so an unprivileged palisade can use a tree the test created.
    pub(crate) fn give(self, path: &Path) {
        if self == User::Root {
            return;
        }
        let uid = self.uid().to_string();
        let status = Command::new("chown")
            .args(["-R", &format!("{uid}:{uid}")])
            .arg(path)
            .status()
            .unwrap_or_else(|e| panic!("cannot run chown: {e}"));
        assert!(
            status.success(),
            "chown -R {uid} {}: {status}",
            path.display()
        );
    }
}

/// `path` hard-linked (or copied) into `$TMPDIR/palisade-it-bin-<pid>/` (mode 755), once per test process;
/// directories left by earlier test processes that are gone are removed on the way.
pub(crate) fn staged_binary(path: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = std::env::temp_dir();
    let dir = tmp.join(format!("palisade-it-bin-{}", std::process::id()));
    if !dir.exists() {
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("palisade-it-bin-"))
            else {
                continue;
            };
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let name = path.file_name().expect("binary file name");
    let dest = dir.join(name);
    if !dest.exists() {
        let partial = dir.join(format!("{}.partial", name.to_string_lossy()));
        let _ = std::fs::remove_file(&partial);
        if std::fs::hard_link(path, &partial).is_err() {
            std::fs::copy(path, &partial)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", path.display(), dir.display()));
        }
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::rename(&partial, &dest).expect("rename staged binary");
    }
    dest
}

/// `palisade run FLAGS… -- SERVER…` as `user`, with an isolated home and `cwd` as working directory (for
/// [`User::Nobody`], palisade is a staged copy started through `setpriv`; the home must already be theirs,
/// see [`User::give`]).
pub(crate) fn run_cmd_as<S: AsRef<str>>(
    user: User,
    home: &TestHome,
    cwd: &Path,
    flags: &[&str],
    server: &[S],
) -> Command {
    let palisade = user.exe(Path::new(palisade()));
    let mut c = match user {
        User::Root => Command::new(&palisade),
        User::Nobody => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&palisade);
            c
        }
    };
    c.arg("run").args(flags).arg("--");
    c.args(server.iter().map(AsRef::as_ref));
    c.current_dir(cwd);
    home.apply(&mut c);
    c
}

/// [`run_cmd_as`] spawned as a client-driven child process.
pub(crate) fn spawn_run_as<S: AsRef<str>>(
    user: User,
    home: &TestHome,
    cwd: &Path,
    flags: &[&str],
    server: &[S],
) -> McpProcess {
    McpProcess::spawn(run_cmd_as(user, home, cwd, flags, server))
}

/// Path of the `palisade-hostile-server` binary (built by `cargo build -p palisade-testkit --bins`, which
/// `cargo test --workspace` does), found next to the running test executable like the echo server.
pub(crate) fn hostile_server() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let name = format!("palisade-hostile-server{}", std::env::consts::EXE_SUFFIX);
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join(&name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "palisade-hostile-server is not built next to {}; run `cargo build -p palisade-testkit --bins` \
                 (a `cargo test --workspace` builds it)",
                exe.display()
            )
        })
}
