//! The tier 1 sandbox (`palisade __sandbox`, [`Sandboxed`]) running real commands: what a server sees and
//! cannot do. Every test runs twice: as the test's own user (root in CI) through [`Sandboxed::launch`], and as
//! `nobody` through `setpriv` (the helper started directly with the same planned spec, as the launcher
//! would). A host that cannot build the sandbox fails these tests; they never skip.
//!
//! Escape attempts with a hostile MCP server are in `hostile.rs`; this file checks the sandbox's shape.

use crate::util::{User, palisade, spawn_run_as};
use palisade_sandbox::linux::helper::{SETUP_FAILED, encode_spec};
use palisade_sandbox::{LaunchSpec, Launcher, Sandboxed};
use palisade_testkit::client::LEGACY_PROTOCOL_VERSION;
use palisade_testkit::{TempDir, TestHome, peers};
use serde_json::json;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PLANTED_KEY: &str = "sandbox-suite planted key\n";

/// A world-usable scratch tree: `home/` (with a planted `~/.ssh/id_rsa`), `read/` (a read root with
/// `file`), `write/` (a write root), `outside/` (neither), `cwd/`; all owned by `user`.
struct World {
    dir: TempDir,
    user: User,
}

impl World {
    fn new(user: User) -> World {
        let dir = TempDir::new("sandbox");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["home/.ssh", "read", "write", "outside", "cwd"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("home/.ssh/id_rsa"), PLANTED_KEY).unwrap();
        std::fs::write(dir.join("read/file"), "readable\n").unwrap();
        std::fs::write(dir.join("cwd/marker"), "in cwd\n").unwrap();
        user.give(dir.path());
        World { dir, user }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// The launch spec of `sh -c SCRIPT` with this world's roots, HOME and cwd.
    fn spec(&self, script: &str) -> LaunchSpec {
        let home = self.path("home");
        LaunchSpec {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            cwd: self.path("cwd"),
            env: vec![
                (OsString::from("PATH"), OsString::from("/usr/bin:/bin")),
                (OsString::from("HOME"), home.clone().into_os_string()),
            ],
            read_roots: vec![self.path("read")],
            write_roots: vec![self.path("write")],
            home: Some(home),
            // These tests drive a shell that runs coreutils (and python3): allow what the scripts run.
            extra_exec: vec!["/usr/bin".into()],
            egress: false,
        }
    }

    /// Runs `sh -c SCRIPT` in the sandbox; stdin is closed at once.
    fn sh(&self, script: &str) -> Run {
        run(self.user, &self.spec(script))
    }
}

/// A finished sandboxed command.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "{self:#?}");
        &self.stdout
    }
}

/// Starts `spec` in the sandbox as `user`: the real launcher as the test's user; as `nobody`, the staged
/// palisade's helper through `setpriv`, fed the frame the launcher would write.
fn start(user: User, spec: &LaunchSpec) -> Child {
    let exe = user.exe(Path::new(palisade()));
    let launcher = Sandboxed::new(exe.clone());
    match user {
        User::Root => {
            let launched = launcher.launch(spec).expect("launch");
            // The watchdog pipe is dropped with the handle: the test waits for the child itself.
            std::mem::forget(launched.watchdog);
            launched.child
        }
        User::Nobody => {
            let sandbox = launcher.plan(spec, None).expect("plan");
            let mut child = Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&exe)
                .args([palisade_sandbox::SANDBOX_SUBCOMMAND, "0"])
                .env_clear()
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn()
                .expect("spawn setpriv");
            child
                .stdin
                .as_mut()
                .unwrap()
                .write_all(&encode_spec(&sandbox))
                .unwrap();
            child
        }
    }
}

/// Runs `spec` to completion (60 s at most) and collects its output.
fn run(user: User, spec: &LaunchSpec) -> Run {
    let mut child = start(user, spec);
    drop(child.stdin.take());
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut stdout = String::new();
    let _ = out.read_to_string(&mut stdout);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sandboxed command did not exit in 60 s; stdout: {stdout}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout,
        stderr: t.join().unwrap(),
    }
}

/// One test per body and user: `sandbox::as_root::NAME` and `sandbox::as_nobody::NAME`.
macro_rules! both_users {
    ($($name:ident),* $(,)?) => {
        mod as_root {
            $(#[test] fn $name() { super::$name(super::User::Root) })*
        }
        mod as_nobody {
            $(#[test] fn $name() { super::$name(super::User::Nobody) })*
        }
    };
}

both_users!(
    home_is_empty_and_its_secrets_invisible,
    proc_shows_only_the_sandbox,
    network_is_a_private_loopback,
    read_roots_are_readable_and_read_only,
    write_roots_are_writable,
    nothing_outside_the_roots_is_visible_or_writable,
    the_server_runs_in_its_cwd,
    no_new_privs_and_own_hostname,
    exit_status_is_the_servers,
    stdin_and_stdout_are_the_servers_own_pipes,
    a_bad_spec_fails_closed_with_125,
    server_everything_answers_under_palisade_run,
    the_sandbox_dies_with_palisade,
);

fn home_is_empty_and_its_secrets_invisible(user: User) {
    let w = World::new(user);
    let r = w.sh("cat ~/.ssh/id_rsa; echo \"rc=$?\"; ls -A ~ | wc -l; echo \"$HOME\"");
    let out = r.ok();
    assert!(!out.contains(PLANTED_KEY.trim()), "{r:#?}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "rc=1", "{r:#?}");
    assert_eq!(lines[1].trim(), "0", "HOME is not empty: {r:#?}");
    assert_eq!(lines[2], w.path("home").display().to_string());
    // The host file is still there: hidden, not removed.
    assert_eq!(
        std::fs::read_to_string(w.path("home/.ssh/id_rsa")).unwrap(),
        PLANTED_KEY
    );
    // HOME is writable (an empty tmpfs), and nothing written there reaches the host.
    w.sh("echo x > ~/scratch").ok();
    assert!(!w.path("home/scratch").exists());
}

fn proc_shows_only_the_sandbox(user: User) {
    let w = World::new(user);
    let r = w.sh("tr '\\0' ' ' < /proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'; echo $$");
    let out = r.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains(palisade_sandbox::SANDBOX_SUBCOMMAND),
        "PID 1 is not the sandbox's reaper: {r:#?}"
    );
    let pids: u32 = lines[1].trim().parse().unwrap();
    assert!(pids <= 4, "the sandbox sees {pids} processes: {r:#?}");
    assert_eq!(lines[2], "2", "the server is PID 2: {r:#?}");
    // Another process's environment is out of reach: PID 1's environ is empty (the helper's is cleared).
    let r = w.sh("wc -c < /proc/1/environ");
    assert!(r.stdout.trim() == "0" || r.code != Some(0), "{r:#?}");
}

fn network_is_a_private_loopback(user: User) {
    // Landlock also refuses every TCP connect and bind (no port is allowed), so the namespace is checked
    // with UDP, which Landlock does not cover: loopback works inside, and the host's loopback is another.
    let w = World::new(user);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let (tcp_port, udp_port) = (
        listener.local_addr().unwrap().port(),
        udp.local_addr().unwrap().port(),
    );
    let script = format!(
        r#"/usr/bin/python3 - <<'EOF'
import socket
try:
    socket.create_connection(("127.0.0.1", {tcp_port}), timeout=5)
    print("host tcp: connected")
except OSError as e:
    print("host tcp:", type(e).__name__)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(5)
s.sendto(b"ping", s.getsockname())
print("own loopback:", s.recv(16).decode())
s.sendto(b"leak", ("127.0.0.1", {udp_port}))
try:
    s.sendto(b"x", ("1.1.1.1", 53))
    print("internet: sent")
except OSError as e:
    print("internet:", type(e).__name__)
EOF"#
    );
    let r = w.sh(&script);
    let out = r.ok();
    assert!(out.contains("own loopback: ping"), "{r:#?}");
    assert!(!out.contains("host tcp: connected"), "{r:#?}");
    assert!(out.contains("internet: OSError"), "no route out: {r:#?}");
    std::thread::sleep(Duration::from_millis(100));
    let mut buf = [0u8; 16];
    assert!(
        matches!(udp.recv_from(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the host's UDP socket received from the sandbox"
    );
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the host's TCP listener was reached"
    );
}

fn read_roots_are_readable_and_read_only(user: User) {
    let w = World::new(user);
    let r = w.sh(&format!(
        "cat {0}/file; echo y > {0}/new; echo \"rc=$?\"",
        w.path("read").display()
    ));
    let out = r.ok();
    assert!(out.starts_with("readable\n"), "{r:#?}");
    assert!(out.contains("rc=2"), "{r:#?}");
    assert!(r.stderr.contains("Read-only file system"), "{r:#?}");
    assert!(!w.path("read/new").exists());
}

fn write_roots_are_writable(user: User) {
    let w = World::new(user);
    w.sh(&format!(
        "echo written > {0}/out && mkdir {0}/sub && mv {0}/out {0}/sub/out",
        w.path("write").display()
    ))
    .ok();
    assert_eq!(
        std::fs::read_to_string(w.path("write/sub/out")).unwrap(),
        "written\n"
    );
}

fn nothing_outside_the_roots_is_visible_or_writable(user: User) {
    let w = World::new(user);
    std::fs::write(w.path("outside/secret"), "outside\n").unwrap();
    let r = w.sh(&format!(
        "ls {0}; echo \"ls=$?\"; echo x > {0}/new; echo \"write=$?\"; echo x > /usr/new; echo \"usr=$?\"; \
         echo x > /etc/new; echo \"etc=$?\"; ls /etc/shadow /root; echo \"shadow=$?\"",
        w.path("outside").display()
    ));
    let out = r.ok();
    for expect in ["ls=2", "write=2", "usr=2", "etc=2", "shadow=2"] {
        assert!(out.contains(expect), "{expect}: {r:#?}");
    }
    assert!(!w.path("outside/new").exists());
    assert!(!r.stdout.contains("secret"), "{r:#?}");
}

fn the_server_runs_in_its_cwd(user: User) {
    let w = World::new(user);
    let out = w.sh("pwd; cat marker").ok().to_owned();
    assert_eq!(
        out,
        format!("{}\nin cwd\n", w.path("cwd").display()),
        "cwd is shown read-only"
    );
    let r = w.sh("echo x > new-in-cwd");
    assert_eq!(r.code, Some(2), "{r:#?}");
}

fn no_new_privs_and_own_hostname(user: User) {
    let w = World::new(user);
    let out = w
        .sh("grep NoNewPrivs /proc/self/status; hostname; id -u")
        .ok()
        .to_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1"]
    );
    assert_eq!(lines[1], "palisade");
    // The same uid inside: files keep their owners.
    assert_eq!(lines[2], user.uid().to_string());
}

/// The processes (pid, cmdline, fd) holding an fd on `pipe` (`pipe:[inode]`), other than this test process.
fn pipe_holders(pipe: &Path) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for proc_dir in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = proc_dir.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        for fd in std::fs::read_dir(proc_dir.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l == pipe) {
                let cmd = std::fs::read(proc_dir.path().join("cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                out.push(format!(
                    "pid {pid} fd {}: {cmd}",
                    fd.file_name().to_string_lossy()
                ));
            }
        }
    }
    out
}

fn exit_status_is_the_servers(user: User) {
    let w = World::new(user);
    assert_eq!(w.sh("exit 7").code, Some(7));
    assert_eq!(w.sh("kill -9 $$").code, Some(128 + 9));
}

fn stdin_and_stdout_are_the_servers_own_pipes(user: User) {
    let w = World::new(user);
    // The server's stdin is the launcher's pipe (nothing of the spec frame left in it), and its stdout
    // closes when the server closes it, even though the helper and PID 1 live on.
    // The server echoes its input to end of input, closes its stdout and keeps running for 30 s: the read
    // below must end long before that. (This caught the helper keeping the server's pipes when its
    // `/dev/null` open raced PID 1's pivot_root: see `release_stdio` in the sandbox helper.)
    let mut child = start(user, &w.spec("cat; exec >&-; sleep 30"));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"jsonrpc\":\"2.0\"}\n").unwrap();
    drop(stdin);
    let started = Instant::now();
    let mut stdout = child.stdout.take().unwrap();
    // If the pipe is still open after 5 s, name the processes that hold it (the failure message says who).
    let pipe = std::fs::read_link(format!("/proc/self/fd/{}", stdout.as_raw_fd())).unwrap();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let holders = std::thread::spawn(
        move || match finished.recv_timeout(Duration::from_secs(5)) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Vec::new(),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => pipe_holders(&pipe),
        },
    );
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    let _ = done.send(());
    assert_eq!(out, "{\"jsonrpc\":\"2.0\"}\n");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(20),
        "stdout stayed open until the server exited, not when it closed it; holders after 5 s: {:?}",
        holders.join().unwrap()
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server is still running (sleep 30)"
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn a_bad_spec_fails_closed_with_125(user: User) {
    let exe = user.exe(Path::new(palisade()));
    let mut cmd = match user {
        User::Root => Command::new(&exe),
        User::Nobody => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&exe);
            c
        }
    };
    let mut child = cmd
        .args([palisade_sandbox::SANDBOX_SUBCOMMAND, "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut frame = 5u32.to_le_bytes().to_vec();
    frame.extend_from_slice(b"nope!");
    child.stdin.take().unwrap().write_all(&frame).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(SETUP_FAILED));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("palisade sandbox: read spec: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

fn server_everything_answers_under_palisade_run(user: User) {
    let home = TestHome::new();
    std::fs::create_dir_all(home.home().join(".ssh")).unwrap();
    std::fs::write(home.home().join(".ssh/id_rsa"), PLANTED_KEY).unwrap();
    user.give(home.root());
    let mut p = spawn_run_as(
        user,
        &home,
        home.root(),
        &["--sandbox", "--server", "everything"],
        &peers::server_everything_stdio(),
    );
    p.initialize_with(LEGACY_PROTOCOL_VERSION, json!({}));
    let r = p.request(
        "tools/call",
        crate::util::call("echo", json!({ "message": "sandboxed" })),
    );
    assert_eq!(
        r["result"],
        json!({ "content": [{ "type": "text", "text": "Echo: sandboxed" }] }),
        "stderr: {}",
        p.stderr()
    );
    assert!(p.stderr().contains("sandbox tier 1"), "{}", p.stderr());
}

/// Host pids of processes whose command line contains `needle`.
fn pids_with(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

fn the_sandbox_dies_with_palisade(user: User) {
    let home = TestHome::new();
    user.give(home.root());
    let marker = format!(
        "palisade-sandbox-lifecycle-{}-{:?}",
        std::process::id(),
        user
    );
    let script = format!("sleep 600 & sleep 600; : {marker}");
    let mut p = spawn_run_as(
        user,
        &home,
        home.root(),
        &["--sandbox", "--allow-exec", "sleep", "--server", "sleeper"],
        &["/bin/sh", "-c", script.as_str()],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while pids_with(&marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the sandboxed shell never started: {}",
            p.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let server = pids_with(&marker);
    p.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.iter().any(|pid| {
        Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    }) {
        assert!(
            Instant::now() < deadline,
            "the sandboxed server outlived palisade (kill -9) by 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
