//! The sandbox helper: `palisade __sandbox <fd>`, a single-threaded re-exec of palisade that builds the
//! sandbox described by a [`SandboxSpec`] and execs the server in it.
//!
//! # Process tree
//! ```text
//! palisade ─┬─ helper (palisade __sandbox 0; own process group; new user+mount+net+ipc+uts namespaces)
//!           │    └─ PID 1 of the new PID namespace (mounts, pivot_root, reaper)
//!           │         └─ server (own session; no_new_privs, rlimits, Landlock, seccomp; exec)
//!           └─ watchdog (kills the helper's process group if palisade dies)
//! ```
//! In tier 2 ([`crate::spec::Isolation::LandlockOnly`]) there is no namespace and no PID 1: the helper
//! joins the pids cgroup (root), sets its parent-death signal, and becomes the server itself (step 10
//! without `setsid`, so the server stays in the process group the watchdog kills).
//!
//! None of these relays a byte: the server inherits the stdin/stdout/stderr pipes palisade created for the
//! helper; the helper and PID 1 point their own stdin/stdout at `/dev/null` once the next process exists,
//! so the server's end-of-file and broken-pipe behaviour is exactly that of a plain child.
//!
//! # Lifetime
//! The helper and PID 1 stay in the process group palisade gave the helper; the watchdog (and `run`'s
//! timeout) kill that group. PID 1 also has `PR_SET_PDEATHSIG = SIGKILL` toward the helper, and the helper
//! toward palisade. When PID 1 dies the kernel kills everything in the PID namespace, so the server and all
//! its descendants die with it, whatever sessions or groups they made.
//!
//! The server calls `setsid`: it leaves palisade's session, so it has no controlling terminal to inject
//! input into (`TIOCSTI`, the bubblewrap `--new-session` lesson). This does not weaken the lifetime
//! guarantee above, which rests on the PID namespace, not on the process group.
//!
//! # Exit status
//! The helper exits with the server's status: its exit code, or 128 + the signal that killed it. A setup
//! failure prints one line, `palisade sandbox: <stage>: <error>`, on stderr and exits with
//! [`SETUP_FAILED`] (125, as `env`, `nohup` and container runtimes use for "the wrapper failed").
//!
//! # The spec's transport
//! The spec arrives as one frame (4-byte little-endian length, then JSON) on an inherited fd, read exactly
//! (never past the frame). palisade uses fd 0: it writes the frame into the server's stdin pipe before any
//! MCP byte, so no extra descriptor has to cross `exec` (std's `Command` cannot map one without a
//! `pre_exec` hook, which palisade's threads forbid) and nothing else can inherit it meanwhile.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use crate::spec::SandboxSpec;

/// The hidden subcommand that makes palisade the helper.
pub const SUBCOMMAND: &str = crate::SANDBOX_SUBCOMMAND;

/// Exit status of a sandbox that could not be set up.
pub const SETUP_FAILED: i32 = 125;

/// Largest spec accepted (it is a few KiB in practice).
const MAX_SPEC: usize = 4 << 20;

/// Signals the helper and PID 1 take synchronously (blocked, then `sigwaitinfo`).
const WAITED: &[libc::c_int] = &[
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
];

/// The frame palisade writes before anything else on the helper's spec fd.
pub fn encode_spec(spec: &SandboxSpec) -> Vec<u8> {
    let json = serde_json::to_vec(spec).unwrap_or_default();
    let mut out = Vec::with_capacity(json.len() + 4);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out
}

/// Prints `palisade sandbox: <stage>: <error>` and exits with [`SETUP_FAILED`].
fn fail(stage: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("palisade sandbox: {stage}: {err}");
    std::process::exit(SETUP_FAILED);
}

fn check(stage: &str, r: libc::c_int) {
    if r < 0 {
        fail(stage, io::Error::last_os_error());
    }
}

/// Reads exactly `buf.len()` bytes from `fd` (unbuffered: nothing past the frame is consumed).
fn read_exact(fd: RawFd, buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes for the duration of the call.
        let n = unsafe { libc::read(fd, rest.as_mut_ptr().cast(), rest.len()) };
        match n {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            n => done += n as usize,
        }
    }
    Ok(())
}

fn read_spec(fd: RawFd) -> Result<SandboxSpec, String> {
    let mut len = [0u8; 4];
    read_exact(fd, &mut len).map_err(|e| format!("length: {e}"))?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_SPEC {
        return Err(format!("{len} bytes is too large"));
    }
    let mut json = vec![0u8; len];
    read_exact(fd, &mut json).map_err(|e| e.to_string())?;
    serde_json::from_slice(&json).map_err(|e| e.to_string())
}

fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initializes the zeroed set; sigaddset only writes into it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

/// Waits for one of the blocked [`WAITED`] signals.
fn wait_signal(set: &libc::sigset_t) -> libc::c_int {
    loop {
        // SAFETY: `set` is an initialized signal set; a null siginfo pointer is allowed.
        let s = unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
        if s > 0 {
            return s;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            fail("sigwaitinfo", io::Error::last_os_error());
        }
    }
}

/// Reaps children without blocking; returns the exit status to mirror when `target` has ended.
fn reap(target: libc::pid_t, any: bool) -> Option<i32> {
    loop {
        let mut status = 0;
        let who = if any { -1 } else { target };
        // SAFETY: `status` is a valid out-pointer.
        let pid = unsafe { libc::waitpid(who, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return None;
        }
        if pid == target {
            if libc::WIFEXITED(status) {
                return Some(libc::WEXITSTATUS(status));
            }
            if libc::WIFSIGNALED(status) {
                return Some(128 + libc::WTERMSIG(status));
            }
        }
    }
}

/// Points stdin and stdout at `null` (a `/dev/null` opened before any namespace change), so this process
/// holds no end of the server's pipes.
///
/// The descriptor must be opened early: the helper shares its mount namespace with PID 1, and PID 1's
/// `pivot_root` moves the root of every process in that namespace, the helper's included. Opening
/// `/dev/null` by path at this point could land while the new root has no `/dev` yet, and a silent failure
/// left the server's stdout open in the helper until the sandbox ended.
fn release_stdio(null: RawFd) {
    // SAFETY: `null` is an open descriptor owned by this process; dup2 onto 0 and 1 replaces them atomically.
    let ok = unsafe { libc::dup2(null, 0) >= 0 && libc::dup2(null, 1) >= 0 };
    if !ok {
        // Holding the server's pipes would keep its output open after it closed it: give them up anyway.
        // SAFETY: closing our own stdin/stdout.
        unsafe {
            libc::close(0);
            libc::close(1);
        }
    }
}

/// Relays a termination signal to `pid` and mirrors its exit; never returns.
fn supervise(child: libc::pid_t, any: bool) -> ! {
    let set = sigset(WAITED);
    loop {
        let sig = wait_signal(&set);
        if sig == libc::SIGCHLD {
            if let Some(code) = reap(child, any) {
                std::process::exit(code);
            }
        } else {
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc::kill(child, sig) };
        }
    }
}

/// The helper's entry point. Never returns. The setup order:
///
/// 1. read and parse the spec from `spec_fd` (one frame, read exactly; the fd is closed unless it is 0),
///    then join the spec's pids cgroup, if any (root: see [`super::cgroup`]);
/// 2. `PR_SET_PDEATHSIG = SIGKILL`, then check palisade is still the parent (it may have died before);
///    with an egress proxy, connect to palisade's rendezvous ([`super::handoff::connect`]);
/// 3. `unshare(CLONE_NEWUSER | NEWNS | NEWPID | NEWIPC | NEWUTS)`;
/// 4. `/proc/self/setgroups` = `deny`, `uid_map` = `<uid> <uid> 1`, `gid_map` = `<gid> <gid> 1`: the same
///    ids inside, so files keep their owners (also as root, who then has no power over the host inside);
/// 5. block SIGCHLD/TERM/INT/HUP/QUIT, fork PID 1 (on the helper's CPU, see `Pinned`). The helper then
///    moves to another CPU and makes the network namespace
///    (`unshare(CLONE_NEWNET)`, loopback up; with an egress proxy, a listener on `127.0.0.1:<port>` there,
///    sent to palisade and closed here, see [`super::handoff`]) and sends it to PID 1, in parallel with
///    PID 1's steps 6–8 (creating a network namespace takes ≈ 0.4 ms, PID 1's mounts ≈ 1 ms); then it
///    waits for PID 1, forwards TERM/INT/HUP/QUIT to it, and exits with its status;
/// 6. PID 1: `PR_SET_PDEATHSIG = SIGKILL` and check the helper is still there (a pipe: its write end closes
///    when the helper dies);
/// 7. PID 1: the filesystem view ([`super::mounts::build`]: private propagation, new root with the spec's
///    mounts, fresh `/proc`, minimal `/dev`, read-only root, `pivot_root`, old root detached), `chdir(cwd)`,
///    `sethostname`;
/// 8. PID 1: joins the helper's network namespace (`setns`). It waits for it, and without it (the helper
///    failed: it exits, and PID 1 with it) there is no step 9: the server never runs with the host's
///    network;
/// 9. PID 1 forks the server and becomes a reaper (`waitpid(-1)`; exits with the server's status when it
///    ends, which kills the rest of the namespace; forwards TERM/INT/HUP/QUIT to it);
/// 10. server: the helper's CPU affinity back, default signal mask and dispositions (SIGPIPE back to default: Rust ignores it), `setsid`,
///     every fd above 2 close-on-exec, `PR_SET_NO_NEW_PRIVS`, then [`super::harden::harden`] (rlimits,
///     Landlock, seccomp, in that order), then `execve` of `argv[0]` with the spec's environment.
///
/// Any failure prints `palisade sandbox: <stage>: <error>` and exits with [`SETUP_FAILED`].
pub fn run_helper(spec_fd: i32) -> ! {
    // SAFETY: getppid cannot fail.
    let parent = unsafe { libc::getppid() };
    let spec = read_spec(spec_fd).unwrap_or_else(|e| fail("read spec", e));
    // Opened before any namespace change: see `release_stdio`. Close-on-exec, so the server never has it.
    // SAFETY: the path is NUL-terminated; the returned descriptor is owned by this process.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    check("open /dev/null", null);
    if spec_fd != 0 {
        // SAFETY: the fd was handed to us for this purpose and is not used again.
        unsafe { libc::close(spec_fd) };
    }
    if spec.argv.is_empty() {
        fail("read spec", "no command");
    }
    // First, before any namespace or fork: everything the sandbox spawns is counted in the pids cgroup.
    // `0` is the writer: through v1 `tasks`, a move of this (only) thread, without the grace period a
    // process move costs (see `super::cgroup`).
    if let Some(procs) = &spec.pids_cgroup
        && let Err(e) = std::fs::write(procs, "0")
    {
        fail(&format!("join pids cgroup {}", procs.display()), e);
    }

    // SAFETY: prctl with integer arguments only.
    check("PR_SET_PDEATHSIG", unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    });
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } != parent {
        fail("parent", "palisade exited before the sandbox started");
    }

    // Tier 2: no namespaces to build, so nothing to supervise either: the helper becomes the server. It
    // keeps palisade's process group (what the watchdog kills) and the parent-death signal, which `exec`
    // preserves.
    if spec.isolation == crate::spec::Isolation::LandlockOnly {
        if let Err(e) = std::env::set_current_dir(&spec.cwd) {
            fail(&format!("chdir {}", spec.cwd.display()), e);
        }
        Exec::new(&spec).run(&spec, false, None);
    }

    // With an egress proxy: connected now, on the host's tree (see `super::handoff::connect`).
    let egress = match &spec.net {
        crate::spec::NetMode::Proxy { port, handoff } => Some((
            *port,
            super::handoff::connect(handoff).unwrap_or_else(|e| fail("egress proxy handoff", e)),
        )),
        _ => None,
    };

    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    // The network namespace comes later, from the helper while PID 1 builds the mounts (step 5).
    // SAFETY: this process is single-threaded (the helper is dispatched before anything starts a thread),
    // which unshare(CLONE_NEWUSER) requires.
    check("unshare", unsafe {
        libc::unshare(
            libc::CLONE_NEWUSER
                | libc::CLONE_NEWNS
                | libc::CLONE_NEWPID
                | libc::CLONE_NEWIPC
                | libc::CLONE_NEWUTS,
        )
    });
    for (file, text) in [
        ("/proc/self/setgroups", "deny".to_owned()),
        ("/proc/self/uid_map", format!("{uid} {uid} 1\n")),
        ("/proc/self/gid_map", format!("{gid} {gid} 1\n")),
    ] {
        if let Err(e) = std::fs::write(file, text) {
            fail(&format!("write {file}"), e);
        }
    }

    let waited = sigset(WAITED);
    // SAFETY: `waited` is initialized; the old mask is not needed.
    check("sigprocmask", unsafe {
        libc::sigprocmask(libc::SIG_BLOCK, &waited, std::ptr::null_mut())
    });
    let mut alive = [0; 2];
    // SAFETY: `alive` has room for the two fds.
    check("pipe", unsafe {
        libc::pipe2(alive.as_mut_ptr(), libc::O_CLOEXEC)
    });
    // The network namespace's way to PID 1: the helper sends it over `net_to`, PID 1 receives it on
    // `net_from` (step 8).
    let (net_to, net_from) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .unwrap_or_else(|e| fail("socketpair", io::Error::from(e)));
    let net_to = UnixStream::from(net_to);
    // Opened while `/proc` is the host's and `self` is this process: after PID 1's `pivot_root` (which
    // moves this process's root too) the path would not lead here. `ns/net` is looked up at open time,
    // so opened through this directory later it names the namespace made then.
    let ns_dir = rustix::fs::open(
        "/proc/self/ns",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap_or_else(|e| fail("open /proc/self/ns", io::Error::from(e)));
    let pinned = Pinned::here();
    // SAFETY: single-threaded, so the child may run arbitrary code.
    let pid1 = unsafe { libc::fork() };
    check("fork", pid1);
    if pid1 > 0 {
        if let Some(p) = &pinned {
            p.leave();
        }
        // SAFETY: our copy of the read end is not used; the write end stays open until we exit.
        unsafe { libc::close(alive[0]) };
        drop(net_from);
        make_network(&spec, egress, &ns_dir, &net_to);
        drop((net_to, ns_dir));
        release_stdio(null);
        supervise(pid1, false);
    }
    // SAFETY: the child's copy of the write end must be closed for the end-of-file check below.
    unsafe { libc::close(alive[1]) };
    drop((net_to, ns_dir, egress));
    init(&spec, alive[0], null, net_from, pinned);
}

/// CPU placement around the fork of PID 1, which is on the critical path of every start while the helper's
/// own network work after it is not. A forked child goes to the idlest CPU, and waking an idle one costs
/// ≈ 0.3 ms on a VM whose idle vCPUs halt (measured here). So the helper pins itself to the CPU it runs on
/// before the fork (PID 1 inherits that and runs there at once) and moves itself to the others right
/// after; PID 1 keeps the pin for the fork of the server, which restores the original set before anything
/// else (step 10). Only with more than one CPU allowed; any failure here just skips the pin.
struct Pinned {
    /// The allowed CPUs before the pin (what the server gets back).
    all: CpuMask,
    /// `all` without the CPU PID 1 is pinned to.
    others: CpuMask,
}

/// A `cpu_set_t` of 1024 CPUs, through the raw syscalls.
#[derive(Clone, Copy)]
struct CpuMask([u64; 16]);

impl CpuMask {
    fn get() -> Option<CpuMask> {
        let mut m = CpuMask([0; 16]);
        // SAFETY: the kernel writes at most `size_of_val(&m.0)` bytes into the buffer.
        let r = unsafe {
            libc::syscall(
                libc::SYS_sched_getaffinity,
                0,
                std::mem::size_of_val(&m.0),
                m.0.as_mut_ptr(),
            )
        };
        (r > 0).then_some(m)
    }

    fn set(&self) -> io::Result<()> {
        // SAFETY: the kernel reads `size_of_val(&self.0)` bytes from the buffer.
        let r = unsafe {
            libc::syscall(
                libc::SYS_sched_setaffinity,
                0,
                std::mem::size_of_val(&self.0),
                self.0.as_ptr(),
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn has(&self, cpu: usize) -> bool {
        cpu < 1024 && self.0[cpu / 64] & (1 << (cpu % 64)) != 0
    }

    fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    fn only(cpu: usize) -> CpuMask {
        let mut m = CpuMask([0; 16]);
        m.0[cpu / 64] |= 1 << (cpu % 64);
        m
    }

    fn without(mut self, cpu: usize) -> CpuMask {
        self.0[cpu / 64] &= !(1 << (cpu % 64));
        self
    }
}

impl Pinned {
    /// Pins this process to the CPU it runs on.
    fn here() -> Option<Pinned> {
        let all = CpuMask::get()?;
        // SAFETY: sched_getcpu has no arguments and no memory effects.
        let cpu = usize::try_from(unsafe { libc::sched_getcpu() }).ok()?;
        if all.count() < 2 || !all.has(cpu) {
            return None;
        }
        CpuMask::only(cpu).set().ok()?;
        Some(Pinned {
            all,
            others: all.without(cpu),
        })
    }

    /// The helper, after the fork: off PID 1's CPU (errors only cost the head start).
    fn leave(&self) {
        let _ = self.others.set();
    }
}

/// Step 5, in the helper while PID 1 builds the mounts: the sandbox's network namespace (`unshare`, about
/// 0.4 ms, off PID 1's path), loopback up, the egress listener; then the seccomp filter is compiled
/// (≈ 0.1 ms, also off PID 1's path) and both go to PID 1 in one message. Any failure exits the helper,
/// and PID 1 dies with it (`PR_SET_PDEATHSIG`); PID 1 never forks the server before it has joined this
/// namespace.
fn make_network(
    spec: &SandboxSpec,
    egress: Option<(u16, UnixStream)>,
    ns_dir: &OwnedFd,
    to_pid1: &UnixStream,
) {
    // SAFETY: single-threaded; unshare has no memory effects.
    check("unshare network", unsafe {
        libc::unshare(libc::CLONE_NEWNET)
    });
    if let Err(e) = loopback_up() {
        fail("loopback", e);
    }
    if let Some((port, stream)) = egress
        && let Err(e) = super::handoff::send_listener(port, &stream)
    {
        fail("egress proxy handoff", e);
    }
    let net = rustix::fs::openat(
        ns_dir,
        "net",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap_or_else(|e| fail("open the network namespace", io::Error::from(e)));
    let opts = super::harden::HardenOptions::for_spec(spec);
    let filter = super::seccomp::filters(&opts.seccomp).unwrap_or_else(|e| fail("harden", e));
    match super::handoff::send_fd(to_pid1, net.as_fd(), &super::seccomp::encode(&filter)) {
        // PID 1 is gone (its own setup failed, and it said why): its exit status is the helper's.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => fail("send the network namespace", e),
        Ok(()) => {}
    }
}

/// Step 8, in PID 1: waits for the helper's network namespace and joins it; returns the seccomp filter
/// that came with it. Fails closed: without both (the helper failed, or sent something else) the server
/// is never started.
fn join_network(from_helper: OwnedFd) -> Vec<seccompiler::BpfProgram> {
    use std::mem::MaybeUninit;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    // The filter is a few KiB; a message that does not fit is refused (`TRUNC`), not cut.
    let mut buf = vec![0u8; 64 << 10];
    let got = loop {
        match rustix::net::recvmsg(
            &from_helper,
            &mut [io::IoSliceMut::new(&mut buf)],
            &mut control,
            rustix::net::RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            r => {
                break r
                    .unwrap_or_else(|e| fail("receive the network namespace", io::Error::from(e)));
            }
        }
    };
    let mut net = None;
    for msg in control.drain() {
        if let rustix::net::RecvAncillaryMessage::ScmRights(fds) = msg {
            for f in fds {
                net.get_or_insert(f);
            }
        }
    }
    if got.flags.contains(rustix::net::ReturnFlags::TRUNC) {
        fail("receive the network namespace", "the message was too large");
    }
    let Some(net) = net else {
        fail(
            "receive the network namespace",
            "the sandbox helper sent none",
        );
    };
    let filter = super::seccomp::decode(&buf[..got.bytes]).unwrap_or_else(|e| fail("harden", e));
    // SAFETY: setns with a descriptor we own and a constant flag; it only changes this process's
    // namespace membership (and fails unless `net` is a network namespace).
    check("join the network namespace", unsafe {
        libc::setns(net.as_raw_fd(), libc::CLONE_NEWNET)
    });
    filter
}

/// PID 1 of the new PID namespace (steps 6–9).
fn init(spec: &SandboxSpec, alive: RawFd, null: RawFd, net: OwnedFd, pinned: Option<Pinned>) -> ! {
    // SAFETY: prctl with integer arguments only.
    check("PR_SET_PDEATHSIG", unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    });
    let mut pfd = libc::pollfd {
        fd: alive,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
    if ready != 0 {
        fail("parent", "the sandbox helper exited");
    }
    // SAFETY: the fd is ours and not used again.
    unsafe { libc::close(alive) };

    if let Err(e) = super::mounts::build(spec) {
        fail(&e.stage, e.error);
    }
    if let Err(e) = std::env::set_current_dir(&spec.cwd) {
        fail(&format!("chdir {}", spec.cwd.display()), e);
    }
    // SAFETY: the pointer and length describe the hostname's bytes, valid for the call.
    check("sethostname", unsafe {
        libc::sethostname(spec.hostname.as_ptr().cast(), spec.hostname.len())
    });
    let filter = join_network(net);

    let exec = Exec::new(spec);
    // SAFETY: single-threaded, so the child may run arbitrary code.
    let server = unsafe { libc::fork() };
    check("fork server", server);
    if server == 0 {
        // The server gets every CPU the helper had (see `Pinned`); it is not started pinned.
        if let Some(p) = &pinned
            && let Err(e) = p.all.set()
        {
            fail("restore the CPU affinity", e);
        }
        exec.run(spec, true, Some(&filter));
    }
    release_stdio(null);
    supervise(server, true);
}

/// Brings `lo` up in the new network namespace (`SIOCSIFFLAGS`).
fn loopback_up() -> io::Result<()> {
    // SAFETY: socket(2) with constant arguments; the fd is closed below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq naming "lo"; SIOCGIFFLAGS fills `ifru_flags`.
    let mut r = unsafe { libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) };
    if r == 0 {
        // SAFETY: the flags member was just written by the kernel; the union is read as what it holds.
        unsafe {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        }
        // SAFETY: as above; SIOCSIFFLAGS reads `req`.
        r = unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) };
    }
    let err = io::Error::last_os_error();
    // SAFETY: our socket, closed once.
    unsafe { libc::close(sock) };
    if r == 0 { Ok(()) } else { Err(err) }
}

/// Everything `execve` needs, prepared before the fork.
struct Exec {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Exec {
    fn new(spec: &SandboxSpec) -> Exec {
        let c = |s: String| CString::new(s).unwrap_or_else(|e| fail("exec", e));
        Exec {
            path: c(spec.argv[0].clone()),
            argv: spec.argv.iter().cloned().map(c).collect(),
            envp: spec
                .env
                .iter()
                .map(|(k, v)| c(format!("{k}={v}")))
                .collect(),
        }
    }

    /// Step 10, in the server process. Never returns. `new_session`: `setsid` (tier 1, where the PID
    /// namespace, not the process group, ties the server's lifetime to palisade's). In tier 2 the server
    /// stays in palisade's process group so the watchdog's group kill reaches it; seccomp refuses the
    /// terminal-injection ioctls either way.
    /// `filter`: the seccomp filter compiled by the helper (tier 1); `None` compiles it here.
    fn run(
        &self,
        spec: &SandboxSpec,
        new_session: bool,
        filter: Option<&[seccompiler::BpfProgram]>,
    ) -> ! {
        // SAFETY: resetting dispositions and the mask of this (single-threaded) process; SIG_DFL is a
        // valid handler for every signal here.
        unsafe {
            for s in [
                libc::SIGPIPE,
                libc::SIGCHLD,
                libc::SIGTERM,
                libc::SIGINT,
                libc::SIGHUP,
                libc::SIGQUIT,
            ] {
                libc::signal(s, libc::SIG_DFL);
            }
            let empty = sigset(&[]);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        }
        if new_session {
            // SAFETY: setsid has no memory effects; PID 1 made us, so we are not a group leader.
            check("setsid", unsafe { libc::setsid() });
        }
        // SAFETY: close_range with CLOEXEC only flags fds; nothing is closed under our feet.
        unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        // SAFETY: prctl with integer arguments only.
        check("PR_SET_NO_NEW_PRIVS", unsafe {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        });
        let hardened = match filter {
            Some(f) => super::harden::harden_compiled(
                spec,
                &super::harden::HardenOptions::for_spec(spec),
                f,
            ),
            None => super::harden::harden(spec),
        };
        if let Err(e) = hardened {
            fail("harden", e);
        }
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = self.envp.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        // SAFETY: path, argv and envp are NUL-terminated strings in null-terminated arrays that live
        // until execve returns (it only returns on failure).
        unsafe { libc::execve(self.path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        fail(
            &format!("exec {}", spec.argv[0]),
            io::Error::last_os_error(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_frame_is_read_exactly() {
        let spec = SandboxSpec {
            argv: vec!["/bin/true".into()],
            env: vec![],
            cwd: "/".into(),
            mounts: vec![],
            landlock: Default::default(),
            rlimits: Default::default(),
            net: crate::spec::NetMode::None,
            hostname: "h".into(),
            pids_cgroup: None,
            isolation: Default::default(),
        };
        let mut frame = encode_spec(&spec);
        frame.extend_from_slice(b"{\"jsonrpc\":\"2.0\"}\n");
        let (r, mut w) = std::io::pipe().unwrap();
        std::io::Write::write_all(&mut w, &frame).unwrap();
        drop(w);
        use std::os::fd::AsRawFd;
        assert_eq!(read_spec(r.as_raw_fd()).unwrap(), spec);
        // What follows the frame is left for the server.
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut &r, &mut rest).unwrap();
        assert_eq!(rest, "{\"jsonrpc\":\"2.0\"}\n");
    }
}
