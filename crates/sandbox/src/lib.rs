//! palisade launcher: the one place where MCP server processes are started.
//!
//! # Brief overview
//! [`Launcher`] turns a [`LaunchSpec`] (argv, working directory, environment allowlist) into a running
//! child whose stdin and stdout are pipes palisade holds itself: no other process ever relays the
//! server's bytes. [`Plain`] is today's launcher: a scrubbed environment, its own process group, and a
//! [`watchdog`] that kills that group if palisade dies, even by `kill -9`. The sandbox launcher
//! (namespaces, Landlock, seccomp) will implement the same trait, so callers do not change.
//!
//! # Why a watchdog process
//! A parent-death signal only reaches the direct child, and launchers such as `npx` or `uvx` start the real
//! server as a grandchild. The watchdog is a re-exec of palisade that blocks reading a pipe only palisade
//! holds; when palisade dies for any reason the pipe closes and the watchdog kills the server's whole
//! process group. It never sees the server's traffic.
#![deny(missing_docs)]

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

#[cfg(target_os = "linux")]
pub mod linux;
pub mod plan;
pub mod spec;
pub mod watchdog;

#[cfg(target_os = "linux")]
pub use linux::launcher::Sandboxed;

/// The hidden subcommand that makes palisade the sandbox helper (`palisade __sandbox <fd>`).
pub const SANDBOX_SUBCOMMAND: &str = "__sandbox";

/// Runs the sandbox helper with the spec on fd `fd` (the argument after [`SANDBOX_SUBCOMMAND`]). Never
/// returns; call it before any thread exists.
pub fn run_sandbox_helper(fd: &str) -> ! {
    let Ok(fd) = fd.parse::<i32>() else {
        eprintln!("palisade sandbox: bad spec fd {fd:?}");
        std::process::exit(125);
    };
    #[cfg(target_os = "linux")]
    linux::helper::run_helper(fd);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        eprintln!("palisade sandbox: unsupported on this platform");
        std::process::exit(125);
    }
}

/// The sandbox launcher where there is none yet: every launch fails (never silently unsandboxed).
#[cfg(not(target_os = "linux"))]
#[derive(Debug, Clone)]
pub struct Sandboxed {
    /// Unused.
    pub self_exe: PathBuf,
}

#[cfg(not(target_os = "linux"))]
impl Sandboxed {
    /// A launcher that refuses.
    pub fn new(self_exe: PathBuf) -> Sandboxed {
        Sandboxed { self_exe }
    }
}

#[cfg(not(target_os = "linux"))]
impl Launcher for Sandboxed {
    fn describe(&self) -> String {
        "no OS sandbox on this platform".into()
    }
    fn launch(&self, _: &LaunchSpec) -> io::Result<Launched> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the OS sandbox is not supported on this platform yet",
        ))
    }
}

/// Environment variables passed to servers by default (besides those the policy declares).
/// `SSH_AUTH_SOCK`, `LD_PRELOAD`, `NODE_OPTIONS`, `PYTHONPATH`, `BASH_ENV` and everything else are not.
pub const ENV_ALLOWLIST: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "TMPDIR",
    "TERM",
    "NO_COLOR",
];

/// Variables that are never passed, even when a policy asks: they inject code or credentials.
pub const ENV_NEVER: &[&str] = &[
    "SSH_AUTH_SOCK",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "NODE_OPTIONS",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "BASH_ENV",
    "ENV",
    "PERL5OPT",
    "RUBYOPT",
    "DYLD_INSERT_LIBRARIES",
];

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct LaunchSpec {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// The complete environment of the child (see [`scrubbed_env`]).
    pub env: Vec<(OsString, OsString)>,
    /// Trees a sandboxed server may read (the policy's `fs.read`; [`Plain`] ignores them).
    pub read_roots: Vec<PathBuf>,
    /// Trees a sandboxed server may read and write (the policy's `fs.write`; [`Plain`] ignores them).
    pub write_roots: Vec<PathBuf>,
    /// The user's home, hidden behind an empty one in a sandbox (`None`: `HOME` from `env`).
    pub home: Option<PathBuf>,
    /// Executables (or trees) a sandboxed server may run besides its own (`--allow-exec`; [`Plain`]
    /// ignores them). A bare name is looked up on the server's `PATH`.
    pub extra_exec: Vec<PathBuf>,
    /// Give a sandboxed server palisade's egress proxy as its one way out (the policy allows some
    /// destinations). [`Launched::egress`] is then the listener to serve it on. [`Plain`] ignores it.
    pub egress: bool,
}

/// A started server.
#[derive(Debug)]
pub struct Launched {
    /// The server process (its stdin/stdout/stderr are piped).
    pub child: Child,
    /// Keeps the watchdog armed; dropping it (or palisade dying) kills the server's process group.
    pub watchdog: Option<ChildStdin>,
    /// Process id of the watchdog, if any.
    pub watchdog_pid: Option<u32>,
    /// Facts about the isolation worth a line in the start-up banner (e.g. a launcher that gets a shell).
    pub notes: Vec<String>,
    /// The sandbox's pids cgroup (root only): remove it once the server has exited.
    pub cgroup: Option<CgroupDir>,
    /// The sandbox the server runs in, as applied (`None` for an unsandboxed launch), for the banner.
    pub applied: Option<spec::SandboxSpec>,
    /// The listener the sandboxed server reaches the egress proxy on (when [`LaunchSpec::egress`]):
    /// serve it with `palisade_egress::serve`. Accepting on it is the only way the server's connections
    /// leave the sandbox.
    pub egress: Option<std::net::TcpListener>,
    /// Tier 2's private `HOME` and `TMPDIR`, removed when this is dropped (after the server exited).
    #[cfg(target_os = "linux")]
    pub scratch: Option<linux::scratch::ScratchDir>,
}

/// A cgroup made for one server, removed by [`CgroupDir::remove`] once the server has exited (a `kill -9`
/// of palisade leaves the empty directory; the next launch removes it).
#[derive(Debug)]
pub struct CgroupDir(pub PathBuf);

impl CgroupDir {
    /// How many times a fork was refused because the cgroup was at its `pids.max` (the `max` line of
    /// `pids.events`); `None` when the kernel does not say.
    pub fn limit_hits(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.0.join("pids.events")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("max "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// Removes the (empty) cgroup, retrying for up to 1 s while its last processes finish exiting.
    pub fn remove(self) -> io::Result<()> {
        let mut last = Ok(());
        for _ in 0..100 {
            last = std::fs::remove_dir(&self.0);
            match &last {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.raw_os_error() == Some(16) => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(_) => break,
            }
        }
        last
    }
}

/// Starts MCP servers. Every spawn in palisade goes through one implementation of this trait.
pub trait Launcher {
    /// A short description of the isolation this launcher gives, for the start-up banner and `doctor`.
    fn describe(&self) -> String;
    /// Starts the server with piped stdio.
    ///
    /// Call it from a thread that outlives the server: the sandbox helper's parent-death signal
    /// (`PR_SET_PDEATHSIG`) fires when the *thread* that forked it exits, not the process. `run` launches
    /// from its main thread; `serve` from one dedicated launcher thread (a runtime's pooled blocking
    /// threads retire when idle, and took their servers with them).
    fn launch(&self, spec: &LaunchSpec) -> io::Result<Launched>;
}

/// Builds the child's environment from empty: the allowlist taken from `parent`, then `extra`
/// (never any name in [`ENV_NEVER`]).
pub fn scrubbed_env(
    parent: impl IntoIterator<Item = (OsString, OsString)>,
    extra: &[(String, String)],
) -> Vec<(OsString, OsString)> {
    let mut out: Vec<(OsString, OsString)> = parent
        .into_iter()
        .filter(|(k, _)| {
            k.to_str()
                .is_some_and(|k| ENV_ALLOWLIST.contains(&k) && !ENV_NEVER.contains(&k))
        })
        .collect();
    for (k, v) in extra {
        if ENV_NEVER.contains(&k.as_str()) {
            continue;
        }
        out.retain(|(ek, _)| ek.to_str() != Some(k));
        out.push((k.into(), v.into()));
    }
    out
}

/// An unsandboxed launcher: scrubbed environment, own process group, watchdog. Not isolation.
#[derive(Debug, Clone)]
pub struct Plain {
    /// The palisade executable to re-exec as the watchdog (`None` disables it; tests only).
    pub self_exe: Option<PathBuf>,
}

impl Launcher for Plain {
    fn describe(&self) -> String {
        "plain child process, NOT sandboxed (trusted: `trust = \"unsandboxed\"` or --unsandboxed): scrubbed environment, killed with palisade".into()
    }

    fn launch(&self, spec: &LaunchSpec) -> io::Result<Launched> {
        let (prog, args) = spec
            .argv
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command to run"))?;
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .current_dir(&spec.cwd)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot start `{prog}`: {e} (is it installed and on PATH?)"),
            )
        })?;
        let (watchdog, watchdog_pid) = match &self.self_exe {
            Some(exe) => {
                let wd = watchdog::arm(exe, child.id())?;
                (Some(wd.0), Some(wd.1))
            }
            None => (None, None),
        };
        Ok(Launched {
            child,
            watchdog,
            watchdog_pid,
            notes: Vec::new(),
            cgroup: None,
            applied: None,
            egress: None,
            #[cfg(target_os = "linux")]
            scratch: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_starts_empty_and_keeps_only_the_allowlist() {
        let parent = [
            ("PATH", "/usr/bin"),
            ("SSH_AUTH_SOCK", "/tmp/agent"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("NODE_OPTIONS", "--require evil"),
            ("LANG", "C.UTF-8"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let env = scrubbed_env(
            parent,
            &[
                ("API_TOKEN".into(), "t".into()),
                ("LD_PRELOAD".into(), "x.so".into()),
            ],
        );
        let names: Vec<_> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(names, ["PATH", "LANG", "API_TOKEN"]);
    }
}
