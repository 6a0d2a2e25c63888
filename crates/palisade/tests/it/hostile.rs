//! The hostile-server suite (issue 3): `palisade-hostile-server` runs under `palisade run --sandbox`, each of
//! its tools tries ONE escape, and every probe must report `escaped: false` while the benign `echo` tool of
//! the same session keeps working. Each probe runs twice, as the test's own user (root in CI) and as an
//! unprivileged user (`nobody` through `setpriv`), one test per probe per user.
//!
//! The host side is real and owned by the test: a `HOME` with a planted `~/.ssh/id_rsa` and
//! `~/.aws/credentials`, a file of another uid, a loopback TCP listener, a loopback UDP echo socket (also
//! playing a DNS resolver), a path unix socket, a writable root and a directory outside it. Where a probe
//! could "succeed" into something the sandbox made up (a private /tmp, a tmpfs HOME), the host side is
//! checked too: the listener accepted nothing, the file outside the root is unchanged.
//!
//! palisade's argument guard would refuse many of these calls before the server ran them (a `path` outside
//! the roots, for instance); the suite turns argument auto-detection off in its policy so that every probe
//! reaches the sandbox. A real hostile server would not ask for its targets anyway.
//!
//! `hostile_probes_detect_escapes_without_a_sandbox` runs the same server directly, without palisade, and
//! checks that the probes do report escapes there: they are not vacuous.

use crate::util::{self, User, call_text};
use palisade_testkit::{McpProcess, TempDir, TestHome};
use serde_json::{Value, json};
use std::io::ErrorKind;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// The flags that turn the sandbox on (it is the default: none).
const SANDBOX: &[&str] = &[];

std::thread_local! {
    /// The sandbox tier this test's palisade is forced to (`PALISADE_SANDBOX_TIER`); 0 = its own choice.
    /// Set by the `tier2::*` variants of every probe (each test runs on its own thread).
    static TIER: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// A uid no account uses: owner of the "another user's file".
const OTHER_UID: u32 = 4242;

const SSH_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nhostile-suite-planted-ssh-key\n-----END OPENSSH PRIVATE KEY-----\n";
const AWS_CREDENTIALS: &str = "[default]\naws_access_key_id = AKIAHOSTILESUITE0000\naws_secret_access_key = hostile-suite-planted\n";
const OTHER_USERS_SECRET: &str = "hostile-suite: another user's secret\n";
const OUTSIDE_ORIGINAL: &str = "hostile-suite: outside the roots, must stay unchanged\n";

/// What a probe reported.
#[derive(Debug)]
struct Probe {
    escaped: bool,
    detail: String,
    raw: Value,
}

/// Calls `tool` on a hostile server (through palisade or directly) and parses its report. Panics (with the
/// response) if the call did not reach the server or the answer is not a probe report: a call palisade
/// refused would not test the sandbox.
#[track_caller]
fn probe(server: &mut McpProcess, tool: &str, arguments: Value) -> Probe {
    let response = server.request_timeout(
        "tools/call",
        util::call(tool, arguments),
        Duration::from_secs(60),
    );
    assert!(
        response.get("result").is_some() && response["result"]["isError"] != json!(true),
        "the `{tool}` probe did not run (palisade refused it or the server failed): {response}\nstderr:\n{}",
        server.stderr()
    );
    let raw: Value = serde_json::from_str(call_text(&response)).unwrap_or_else(|e| {
        panic!("`{tool}` answered something other than a probe report ({e}): {response}")
    });
    assert_eq!(raw["probe"], tool, "{raw}");
    Probe {
        escaped: raw["escaped"]
            .as_bool()
            .unwrap_or_else(|| panic!("no `escaped` in {raw}")),
        detail: raw["detail"].as_str().unwrap_or_default().to_owned(),
        raw,
    }
}

/// The host side of one test: a home with planted secrets, a writable root, a directory outside it, a file
/// of another user, and (once started) palisade running the hostile server.
struct Scene {
    user: User,
    home: TestHome,
    /// Fixtures owned by the user palisade runs as: `work/` (the allowed root), `outside/`, `sockets/`.
    base: TempDir,
    /// `secret.txt`, owned by [`OTHER_UID`], mode 0600.
    others: TempDir,
    canary: String,
    palisade: Option<McpProcess>,
}

impl Scene {
    fn new(user: User) -> Self {
        let home = TestHome::new();
        let h = home.home();
        write(&h.join(".ssh/id_rsa"), SSH_KEY, 0o600);
        chmod(&h.join(".ssh"), 0o700);
        write(&h.join(".aws/credentials"), AWS_CREDENTIALS, 0o600);
        write(&h.join(".bashrc"), "# an ordinary dotfile\n", 0o644);

        let base = TempDir::new("hostile");
        std::fs::create_dir(base.join("work")).unwrap();
        std::fs::create_dir(base.join("sockets")).unwrap();
        write(&base.join("work/readme.txt"), "legitimate data\n", 0o644);
        write(&base.join("outside/target.txt"), OUTSIDE_ORIGINAL, 0o644);
        std::os::unix::fs::symlink(base.join("outside/target.txt"), base.join("work/link"))
            .unwrap();
        write(
            &base.join("policy.toml"),
            "version = 1\n\n# Let every probe reach the sandbox: the argument guard would refuse paths outside the roots.\n\
             [arguments]\nauto_detect = false\n",
            0o644,
        );

        let others = TempDir::new("hostile-other-user");
        chmod(others.path(), 0o755);
        let secret = others.join("secret.txt");
        write(&secret, OTHER_USERS_SECRET, 0o600);
        std::os::unix::fs::chown(&secret, Some(OTHER_UID), Some(OTHER_UID)).expect("chown secret");

        user.give(home.root());
        user.give(base.path());
        Scene {
            user,
            home,
            base,
            others,
            canary: format!("hostile-canary-{}-{}", std::process::id(), nanos()),
            palisade: None,
        }
    }

    fn work(&self) -> PathBuf {
        self.base.join("work")
    }

    fn outside_target(&self) -> PathBuf {
        self.base.join("outside/target.txt")
    }

    /// Starts `palisade run --sandbox --allow-write <work> -- palisade-hostile-server` as the scene's user,
    /// with HOME at the planted home, and checks the session works (`initialize`, `echo`).
    fn start(&mut self) -> &mut Self {
        let policy = self.base.join("policy.toml");
        let work = self.work();
        let mut flags: Vec<&str> = SANDBOX.to_vec();
        flags.extend([
            "--policy",
            policy.to_str().unwrap(),
            "--server",
            "hostile",
            "--allow-write",
            work.to_str().unwrap(),
        ]);
        let server = self.user.exe(&util::hostile_server());
        let mut cmd = util::run_cmd_as(
            self.user,
            &self.home,
            &work,
            &flags,
            &[server.to_str().unwrap()],
        );
        // In palisade's own environment only: the server must never see it.
        cmd.env("PALISADE_HOSTILE_CANARY", &self.canary);
        let tier = TIER.with(std::cell::Cell::get);
        if tier != 0 {
            cmd.env("PALISADE_SANDBOX_TIER", tier.to_string());
        }
        let mut palisade = McpProcess::spawn(cmd);
        palisade.initialize();
        let banner = if tier == 2 {
            "DEGRADED sandbox tier 2"
        } else {
            "sandbox tier 1"
        };
        util::wait_stderr(&palisade, banner);
        self.palisade = Some(palisade);
        self.assert_echo_works();
        self
    }

    fn palisade(&mut self) -> &mut McpProcess {
        self.palisade.as_mut().expect("Scene::start first")
    }

    fn palisade_pid(&mut self) -> u32 {
        self.palisade().pid()
    }

    #[track_caller]
    fn probe(&mut self, tool: &str, arguments: Value) -> Probe {
        probe(self.palisade(), tool, arguments)
    }

    /// Runs a probe and asserts it failed.
    #[track_caller]
    fn assert_blocked(&mut self, tool: &str, arguments: Value) -> Probe {
        let user = self.user;
        let p = self.probe(tool, arguments.clone());
        assert!(
            !p.escaped,
            "ESCAPE as {user:?}: `{tool}` {arguments} succeeded under the sandbox: {}\nstderr:\n{}",
            p.detail,
            self.palisade().stderr()
        );
        // Shown with --nocapture: how each probe was stopped.
        eprintln!("{user:?} `{tool}` blocked: {}", p.detail);
        p
    }

    /// The benign tool answers in the same session (the sandbox did not break the server).
    #[track_caller]
    fn assert_echo_works(&mut self) {
        let text = format!("legit work {}", nanos());
        let response = self.palisade().request_timeout(
            "tools/call",
            util::call("echo", json!({ "text": text })),
            Duration::from_secs(30),
        );
        assert_eq!(
            response["result"]["content"][0]["text"],
            json!(text),
            "echo failed: {response}\nstderr:\n{}",
            self.palisade().stderr()
        );
    }
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

fn write(path: &Path, content: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    chmod(path, mode);
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A loopback TCP listener; [`Listener::accepted`] says whether anything connected.
struct Listener(TcpListener);

impl Listener {
    fn new() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback listener");
        l.set_nonblocking(true).unwrap();
        Listener(l)
    }

    fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }

    fn accepted(&self) -> bool {
        match self.0.accept() {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// A loopback UDP socket that echoes every datagram back (a UDP peer, or a DNS resolver that answers
/// anything) and counts them. Stops on drop.
struct UdpEcho {
    port: u16,
    received: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UdpEcho {
    fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind loopback UDP");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        let received = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&received), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    r.fetch_add(1, Ordering::Relaxed);
                    // A DNS-shaped answer to a query: the same bytes with the QR bit set.
                    if n > 2 {
                        buf[2] |= 0x80;
                    }
                    let _ = socket.send_to(&buf[..n], from);
                }
            }
        });
        UdpEcho {
            port,
            received,
            stop,
            thread: Some(thread),
        }
    }

    fn received(&self) -> usize {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A path unix socket planted in `dir`, connectable by anyone (mode 0777).
fn unix_listener(dir: &Path, user: User) -> (UnixListener, PathBuf) {
    let path = dir.join("host.sock");
    let l = UnixListener::bind(&path).expect("bind unix socket");
    l.set_nonblocking(true).unwrap();
    chmod(&path, 0o777);
    user.give(&path);
    (l, path)
}

fn unix_accepted(l: &UnixListener) -> bool {
    match l.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

// ----- probe bodies (each runs as root and as nobody, see `hostile_tests!`) -----

fn read_planted_ssh_key(user: User) {
    let mut s = Scene::new(user);
    let key = s.home.home().join(".ssh/id_rsa");
    s.start()
        .assert_blocked("read_file", json!({ "path": path_str(&key) }));
    // Legitimate reads inside the root still work.
    let readme = s.work().join("readme.txt");
    let ok = s.probe("read_file", json!({ "path": path_str(&readme) }));
    assert!(
        ok.escaped && ok.detail.contains("legitimate data"),
        "{}",
        ok.raw
    );
    s.assert_echo_works();
}

fn read_planted_aws_credentials(user: User) {
    let mut s = Scene::new(user);
    let creds = s.home.home().join(".aws/credentials");
    s.start()
        .assert_blocked("read_file", json!({ "path": path_str(&creds) }));
    s.assert_echo_works();
}

fn read_another_users_file(user: User) {
    let mut s = Scene::new(user);
    let secret = s.others.join("secret.txt");
    s.start()
        .assert_blocked("read_file", json!({ "path": path_str(&secret) }));
    s.assert_echo_works();
}

fn list_home(user: User) {
    let mut s = Scene::new(user);
    let home = s.home.home();
    let p = s
        .start()
        .assert_blocked("list_dir", json!({ "path": path_str(&home) }));
    assert!(!p.detail.contains(".ssh"), "{}", p.raw);
    s.assert_echo_works();
}

fn read_proc_1_environ(user: User) {
    let mut s = Scene::new(user);
    s.start()
        .assert_blocked("read_proc_environ", json!({ "pid": 1 }));
    s.assert_echo_works();
}

fn read_palisades_environ(user: User) {
    let mut s = Scene::new(user);
    s.start();
    let (pid, canary) = (s.palisade_pid(), s.canary.clone());
    s.assert_blocked("read_proc_environ", json!({ "pid": pid, "marker": canary }));
    s.assert_echo_works();
}

/// Asserts a write to `path` fails and leaves the file outside the roots unchanged; then a write inside the
/// root succeeds and reaches the host.
fn assert_write_blocked(s: &mut Scene, path: &str) {
    s.assert_blocked(
        "write_file",
        json!({ "path": path, "content": "hostile-suite: overwritten\n" }),
    );
    assert_eq!(
        std::fs::read_to_string(s.outside_target()).unwrap(),
        OUTSIDE_ORIGINAL,
        "the file outside the roots was changed through {path}"
    );
    let legit = s.work().join("output.txt");
    let ok = s.probe(
        "write_file",
        json!({ "path": path_str(&legit), "content": "legit output\n" }),
    );
    assert!(
        ok.escaped,
        "a write inside the allowed root failed: {}",
        ok.raw
    );
    assert_eq!(std::fs::read_to_string(&legit).unwrap(), "legit output\n");
    s.assert_echo_works();
}

fn write_outside_the_roots(user: User) {
    let mut s = Scene::new(user);
    let target = s.outside_target();
    s.start();
    assert_write_blocked(&mut s, path_str(&target));
}

fn write_through_a_symlink(user: User) {
    let mut s = Scene::new(user);
    let link = s.work().join("link");
    s.start();
    assert_write_blocked(&mut s, path_str(&link));
}

fn write_via_dotdot(user: User) {
    let mut s = Scene::new(user);
    let dotdot = s.work().join("../outside/target.txt");
    s.start();
    assert_write_blocked(&mut s, path_str(&dotdot));
}

fn connect_to_a_loopback_listener(user: User) {
    let mut s = Scene::new(user);
    let listener = Listener::new();
    s.start().assert_blocked(
        "tcp_connect",
        json!({ "host": "127.0.0.1", "port": listener.port() }),
    );
    assert!(
        !listener.accepted(),
        "the host's loopback listener accepted a connection"
    );
    s.assert_echo_works();
}

fn connect_out_by_ip(user: User) {
    let mut s = Scene::new(user);
    // TEST-NET-3 (RFC 5737), discard port: documentation address, never a real service.
    s.start()
        .assert_blocked("tcp_connect", json!({ "host": "203.0.113.1", "port": 9 }));
    s.assert_echo_works();
}

fn connect_out_by_name(user: User) {
    let mut s = Scene::new(user);
    let listener = Listener::new();
    s.start().assert_blocked(
        "tcp_connect",
        json!({ "host": "localhost", "port": listener.port() }),
    );
    assert!(
        !listener.accepted(),
        "the host's listener accepted a connection by name"
    );
    s.assert_echo_works();
}

fn query_a_resolver_on_the_host(user: User) {
    let mut s = Scene::new(user);
    let resolver = UdpEcho::new();
    let server = format!("127.0.0.1:{}", resolver.port);
    s.start().assert_blocked(
        "dns_lookup",
        json!({ "name": "exfil.hostile-suite.invalid", "server": server }),
    );
    assert_eq!(resolver.received(), 0, "a DNS query reached the host");
    s.assert_echo_works();
}

fn send_udp(user: User) {
    let mut s = Scene::new(user);
    let peer = UdpEcho::new();
    s.start().assert_blocked(
        "udp_send",
        json!({ "host": "127.0.0.1", "port": peer.port }),
    );
    assert_eq!(peer.received(), 0, "a datagram reached the host");
    s.assert_echo_works();
}

fn connect_with_tcp_fast_open(user: User) {
    let mut s = Scene::new(user);
    let listener = Listener::new();
    s.start().assert_blocked(
        "tcp_fastopen",
        json!({ "host": "127.0.0.1", "port": listener.port() }),
    );
    assert!(
        !listener.accepted(),
        "TCP Fast Open reached the host's listener"
    );
    s.assert_echo_works();
}

fn connect_to_a_planted_unix_socket(user: User) {
    let mut s = Scene::new(user);
    let (listener, path) = unix_listener(&s.base.join("sockets"), user);
    s.start()
        .assert_blocked("unix_connect", json!({ "path": path_str(&path) }));
    assert!(
        !unix_accepted(&listener),
        "the planted unix socket accepted a connection"
    );
    s.assert_echo_works();
}

fn ptrace_palisade(user: User) {
    let mut s = Scene::new(user);
    s.start();
    let pid = s.palisade_pid();
    s.assert_blocked("ptrace", json!({ "pid": pid }));
    s.assert_echo_works();
}

fn fork_bomb(user: User) {
    let mut s = Scene::new(user);
    s.start()
        .assert_blocked("fork_bomb", json!({ "max": 2000 }));
    s.assert_echo_works();
    // As root the limit is a pids cgroup, whose refusals palisade can count: it says so when the session
    // ends, on stderr and in the audit log. (An unprivileged user's RLIMIT_NPROC refusals leave no trace.)
    if user == User::Root {
        let p = s.palisade();
        p.close_stdin();
        assert!(
            p.wait_exit(Duration::from_secs(15)).is_some(),
            "palisade did not exit"
        );
        let stderr = p.stderr();
        assert!(
            stderr.contains("reached the sandbox's process limit"),
            "{stderr}"
        );
        let events = util::audit_events(&s.home, "hostile");
        assert!(
            events
                .iter()
                .any(|e| e["kind"] == "error" && e["reason"] == "process-limit"),
            "{events:#?}"
        );
    }
}

fn allocate_past_the_memory_limit(user: User) {
    let mut s = Scene::new(user);
    s.start().assert_blocked("alloc", json!({ "mib": 16384 }));
    s.assert_echo_works();
}

fn spawn_a_shell(user: User) {
    let mut s = Scene::new(user);
    s.start().assert_blocked("spawn_shell", json!({}));
    s.assert_echo_works();
}

fn kill_palisade(user: User) {
    let mut s = Scene::new(user);
    s.start();
    let pid = s.palisade_pid();
    // If the signal lands, palisade dies before it can answer: say so rather than "stdout closed".
    let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.assert_blocked("kill", json!({ "pid": pid, "signal": 9 }));
    }));
    if let Err(panic) = attempt {
        if let Some(status) = s.palisade().wait_exit(Duration::from_secs(1)) {
            panic!("ESCAPE as {user:?}: the server killed palisade (pid {pid}): {status}");
        }
        std::panic::resume_unwind(panic);
    }
    s.assert_echo_works();
}

fn unshare(user: User) {
    let mut s = Scene::new(user);
    s.start().assert_blocked("unshare", json!({}));
    s.assert_echo_works();
}

fn mount(user: User) {
    let mut s = Scene::new(user);
    s.start().assert_blocked("mount", json!({}));
    s.assert_echo_works();
}

/// One test per probe per user: `hostile_cannot_<probe>` (as the test's user, root in CI) and
/// `hostile_cannot_<probe>_as_nobody`.
/// Every probe as root and as `nobody`, in the machine's tier (1 here) and again forced to tier 2 (Landlock
/// and seccomp without namespaces: `hostile::tier2::*`), where every probe must fail just the same.
macro_rules! hostile_tests {
    ($($body:ident => $root:ident, $nobody:ident;)*) => {
        $(
            #[test]
            fn $root() {
                $body(User::Root);
            }

            #[test]
            fn $nobody() {
                $body(User::Nobody);
            }
        )*
        mod tier2 {
            $(
                #[test]
                fn $root() {
                    super::TIER.with(|t| t.set(2));
                    super::$body(super::User::Root);
                }

                #[test]
                fn $nobody() {
                    super::TIER.with(|t| t.set(2));
                    super::$body(super::User::Nobody);
                }
            )*
        }
    };
}

hostile_tests! {
    read_planted_ssh_key => hostile_cannot_read_planted_ssh_key, hostile_cannot_read_planted_ssh_key_as_nobody;
    read_planted_aws_credentials => hostile_cannot_read_planted_aws_credentials, hostile_cannot_read_planted_aws_credentials_as_nobody;
    read_another_users_file => hostile_cannot_read_another_users_file, hostile_cannot_read_another_users_file_as_nobody;
    list_home => hostile_cannot_list_home, hostile_cannot_list_home_as_nobody;
    read_proc_1_environ => hostile_cannot_read_proc_1_environ, hostile_cannot_read_proc_1_environ_as_nobody;
    read_palisades_environ => hostile_cannot_read_palisades_environ, hostile_cannot_read_palisades_environ_as_nobody;
    write_outside_the_roots => hostile_cannot_write_outside_the_roots, hostile_cannot_write_outside_the_roots_as_nobody;
    write_through_a_symlink => hostile_cannot_write_through_a_symlink, hostile_cannot_write_through_a_symlink_as_nobody;
    write_via_dotdot => hostile_cannot_write_via_dotdot, hostile_cannot_write_via_dotdot_as_nobody;
    connect_to_a_loopback_listener => hostile_cannot_connect_to_a_loopback_listener, hostile_cannot_connect_to_a_loopback_listener_as_nobody;
    connect_out_by_ip => hostile_cannot_connect_out_by_ip, hostile_cannot_connect_out_by_ip_as_nobody;
    connect_out_by_name => hostile_cannot_connect_out_by_name, hostile_cannot_connect_out_by_name_as_nobody;
    query_a_resolver_on_the_host => hostile_cannot_query_a_resolver_on_the_host, hostile_cannot_query_a_resolver_on_the_host_as_nobody;
    send_udp => hostile_cannot_send_udp_to_the_host, hostile_cannot_send_udp_to_the_host_as_nobody;
    connect_with_tcp_fast_open => hostile_cannot_connect_with_tcp_fast_open, hostile_cannot_connect_with_tcp_fast_open_as_nobody;
    connect_to_a_planted_unix_socket => hostile_cannot_connect_to_a_planted_unix_socket, hostile_cannot_connect_to_a_planted_unix_socket_as_nobody;
    ptrace_palisade => hostile_cannot_ptrace_palisade, hostile_cannot_ptrace_palisade_as_nobody;
    fork_bomb => hostile_cannot_fork_bomb, hostile_cannot_fork_bomb_as_nobody;
    allocate_past_the_memory_limit => hostile_cannot_allocate_past_the_memory_limit, hostile_cannot_allocate_past_the_memory_limit_as_nobody;
    spawn_a_shell => hostile_cannot_spawn_a_shell, hostile_cannot_spawn_a_shell_as_nobody;
    kill_palisade => hostile_cannot_kill_palisade, hostile_cannot_kill_palisade_as_nobody;
    unshare => hostile_cannot_unshare, hostile_cannot_unshare_as_nobody;
    mount => hostile_cannot_mount, hostile_cannot_mount_as_nobody;
}

/// The probes are not vacuous: run directly (no palisade, no sandbox), as the test's user, they do escape.
#[test]
fn hostile_probes_detect_escapes_without_a_sandbox() {
    let s = Scene::new(User::Root);
    let listener = Listener::new();
    let udp = UdpEcho::new();
    let (unix, sock) = unix_listener(&s.base.join("sockets"), User::Root);
    let mut cmd = std::process::Command::new(util::hostile_server());
    s.home.apply(&mut cmd);
    let mut server = McpProcess::spawn(cmd);
    server.initialize();

    let mut escapes = |tool: &str, arguments: Value| {
        let p = probe(&mut server, tool, arguments.clone());
        assert!(
            p.escaped,
            "without a sandbox `{tool}` {arguments} should succeed: {}",
            p.raw
        );
        p
    };
    let key = escapes(
        "read_file",
        json!({ "path": path_str(&s.home.home().join(".ssh/id_rsa")) }),
    );
    assert!(
        key.detail.contains("hostile-suite-planted-ssh-key"),
        "{}",
        key.raw
    );
    let home = escapes("list_dir", json!({ "path": path_str(&s.home.home()) }));
    assert!(home.detail.contains(".ssh"), "{}", home.raw);
    escapes(
        "tcp_connect",
        json!({ "host": "127.0.0.1", "port": listener.port() }),
    );
    assert!(listener.accepted());
    escapes(
        "tcp_connect",
        json!({ "host": "localhost", "port": listener.port() }),
    );
    escapes(
        "tcp_fastopen",
        json!({ "host": "127.0.0.1", "port": listener.port() }),
    );
    escapes("udp_send", json!({ "host": "127.0.0.1", "port": udp.port }));
    escapes(
        "dns_lookup",
        json!({ "name": "exfil.hostile-suite.invalid", "server": format!("127.0.0.1:{}", udp.port) }),
    );
    assert!(udp.received() >= 2);
    escapes("unix_connect", json!({ "path": path_str(&sock) }));
    assert!(unix_accepted(&unix));
    escapes(
        "write_file",
        json!({ "path": path_str(&s.work().join("link")), "content": "through the link\n" }),
    );
    assert_eq!(
        std::fs::read_to_string(s.outside_target()).unwrap(),
        "through the link\n"
    );
    escapes("spawn_shell", json!({}));
    escapes("fork_bomb", json!({ "max": 20 }));

    // A process of the test's own: the environ probe finds its marker, and ptrace/kill reach it.
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .env("PALISADE_HOSTILE_CANARY", &s.canary)
        .spawn()
        .expect("spawn sleep");
    let pid = victim.id();
    // Until the child has exec'd `sleep`, /proc/PID/environ can still be empty (or the parent's): wait
    // until the marker is readable from here, so the probe is not racing the start of the process.
    let environ = format!("/proc/{pid}/environ");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !std::fs::read(&environ)
        .map(|e| String::from_utf8_lossy(&e).contains(s.canary.as_str()))
        .unwrap_or(false)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the victim never showed its environment"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    escapes(
        "read_proc_environ",
        json!({ "pid": pid, "marker": s.canary }),
    );
    escapes("ptrace", json!({ "pid": pid }));
    escapes("kill", json!({ "pid": pid, "signal": 15 }));
    let status = victim.wait().expect("wait for sleep");
    assert!(
        !status.success(),
        "the victim should have died of SIGTERM: {status}"
    );

    // The benign tool works in the same session.
    let response = server.request(
        "tools/call",
        util::call("echo", json!({ "text": "still here" })),
    );
    assert_eq!(call_text(&response), "still here");
}
