//! [`Sandboxed`]: the sandbox launcher. Plans the sandbox ([`crate::plan`]), starts the helper
//! (`palisade __sandbox 0`, see [`super::helper`]) with piped stdio exactly like [`crate::Plain`], hands it
//! the spec as the first frame on its stdin, and arms the watchdog on the helper's process group.
//!
//! Tier 1 ([`Sandboxed::new`]) builds namespaces; tier 2 ([`Sandboxed::degraded`], for machines without
//! user namespaces) turns the same plan into Landlock and seccomp only ([`crate::plan::degrade`]): a
//! private `HOME`/`TMPDIR` ([`super::scratch::ScratchDir`]), the egress proxy on the host's loopback.

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::handoff::{Handoff, PROXY_PORT};
use super::helper;
use crate::plan::{PlanInput, plan};
use crate::spec::{NetMode, SandboxSpec};
use crate::{LaunchSpec, Launched, Launcher, watchdog};

/// Where `HOME` is when neither the launch spec nor the environment says.
const FALLBACK_HOME: &str = "/home/palisade";

/// Starts servers in a sandbox. Tier 1: user, mount, PID, network, IPC and UTS namespaces, a filesystem
/// view of only what the server needs, then no_new_privs, rlimits, Landlock and seccomp. Tier 2: the same
/// Landlock rules, seccomp and rlimits without namespaces.
#[derive(Debug, Clone)]
pub struct Sandboxed {
    /// The palisade executable, re-executed as the helper and the watchdog.
    pub self_exe: PathBuf,
    /// Tier 2: no namespaces.
    pub degraded: bool,
}

impl Sandboxed {
    /// A tier 1 launcher re-executing `self_exe`.
    pub fn new(self_exe: PathBuf) -> Sandboxed {
        Sandboxed {
            self_exe,
            degraded: false,
        }
    }

    /// A tier 2 launcher (no user namespaces on this machine).
    pub fn degraded(self_exe: PathBuf) -> Sandboxed {
        Sandboxed {
            self_exe,
            degraded: true,
        }
    }

    /// The sandbox `spec` would run in (also what [`Launcher::launch`] applies). With an egress proxy,
    /// `handoff` is the rendezvous the listener comes back through.
    pub fn plan(&self, spec: &LaunchSpec, handoff: Option<&Handoff>) -> io::Result<SandboxSpec> {
        let mut input = plan_input(spec);
        if let Some(h) = handoff {
            input.net = NetMode::Proxy {
                port: PROXY_PORT,
                handoff: h.socket().to_path_buf(),
            };
        }
        plan_io(&input)
    }
}

/// [`plan`] for a launcher: a spec the planner refuses is invalid input to the launch.
fn plan_io(input: &PlanInput) -> io::Result<SandboxSpec> {
    plan(input).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// How many threads this user runs now: `RLIMIT_NPROC` counts threads, and tier 2's limit comes on top.
fn user_processes() -> u64 {
    use std::os::unix::fs::MetadataExt;
    let uid = rustix::process::getuid().as_raw();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    procs
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
        .map(|e| std::fs::read_dir(e.path().join("task")).map_or(1, |t| t.count() as u64))
        .sum()
}

/// The planner's input for a launch spec. Environment entries that are not UTF-8 are dropped.
pub fn plan_input(spec: &LaunchSpec) -> PlanInput {
    let env: Vec<(String, String)> = spec
        .env
        .iter()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v.to_str()?.to_owned())))
        .collect();
    let home = spec
        .home
        .clone()
        .or_else(|| {
            env.iter()
                .find(|(k, v)| k == "HOME" && v.starts_with('/'))
                .map(|(_, v)| PathBuf::from(v))
        })
        .unwrap_or_else(|| PathBuf::from(FALLBACK_HOME));
    PlanInput {
        argv: spec.argv.clone(),
        env,
        cwd: spec.cwd.clone(),
        home,
        read_roots: spec.read_roots.clone(),
        write_roots: spec.write_roots.clone(),
        extra_read: Vec::new(),
        extra_exec: spec.extra_exec.clone(),
        net: NetMode::None,
    }
}

impl Launcher for Sandboxed {
    fn describe(&self) -> String {
        let landlock = match super::landlock::kernel_abi() {
            Ok(n) => format!("Landlock ABI {n}"),
            Err(e) => format!("no Landlock ({e})"),
        };
        let pids = if rustix::process::geteuid().is_root() {
            ", pids cgroup"
        } else {
            ""
        };
        if self.degraded {
            return format!(
                "DEGRADED sandbox tier 2: no namespaces; {landlock} (files, exec allowlist, TCP to the \
                 egress proxy only), seccomp (no UDP, no unix sockets), rlimits{pids}; other processes \
                 of the user are visible"
            );
        }
        format!(
            "sandbox tier 1: user+mount+pid+net+ipc+uts namespaces, {landlock} (exec allowlist), \
             seccomp, rlimits{pids}"
        )
    }

    fn launch(&self, spec: &LaunchSpec) -> io::Result<Launched> {
        let egress_err = |e: io::Error| {
            io::Error::new(e.kind(), format!("cannot prepare the egress proxy: {e}"))
        };
        let root = rustix::process::geteuid().is_root();
        let mut handoff = None;
        let mut host_egress = None;
        let mut scratch = None;
        let mut sandbox = if self.degraded {
            let mut input = plan_input(spec);
            if spec.egress {
                // No network namespace: palisade's own listener on the host's loopback.
                let l = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(egress_err)?;
                input.net = NetMode::HostProxy {
                    port: l.local_addr()?.port(),
                };
                host_egress = Some(l);
            }
            let planned = plan_io(&input)?;
            let dir = super::scratch::ScratchDir::new().map_err(|e| {
                io::Error::new(e.kind(), format!("cannot create the sandbox's HOME: {e}"))
            })?;
            // Without a user namespace RLIMIT_NPROC counts all of the user's processes: leave room for
            // the ones that exist. Root gets the pids cgroup below instead.
            let processes = match planned.rlimits.processes {
                Some(n) if !root => Some(n + user_processes()),
                other => other,
            };
            let degraded = crate::plan::degrade(planned, dir.path(), processes);
            scratch = Some(dir);
            degraded
        } else {
            if spec.egress {
                handoff = Some(Handoff::new().map_err(egress_err)?);
            }
            self.plan(spec, handoff.as_ref())?
        };
        // RLIMIT_NPROC does not bind host root: a pids cgroup does, or the sandbox does not start.
        let cgroup = match sandbox.rlimits.processes {
            Some(max) if root => {
                let dir = super::cgroup::create(max).map_err(|e| {
                    io::Error::other(format!(
                        "process limit not enforceable for root: {e}; refusing to start the sandbox \
                         (mount the pids cgroup controller, or run palisade as an unprivileged user)"
                    ))
                })?;
                sandbox.pids_cgroup = Some(super::cgroup::join_file(&dir));
                Some(crate::CgroupDir(dir))
            }
            _ => None,
        };
        let notes: Vec<String> = crate::plan::shell_launcher(&spec.argv)
            .into_iter()
            .collect();
        let frame = helper::encode_spec(&sandbox);
        let spawned = Command::new(&self.self_exe)
            .arg(helper::SUBCOMMAND)
            .arg("0")
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                if let Some(c) = cgroup {
                    let _ = c.remove();
                }
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot start the sandbox helper {}: {e}",
                        self.self_exe.display()
                    ),
                ));
            }
        };
        // The helper reads the frame first thing, so this cannot block for long even past the pipe's
        // buffer; nothing else writes to this pipe before `launch` returns it.
        let sent = child
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("the sandbox helper has no stdin"))
            .and_then(|w| w.write_all(&frame));
        let armed = sent.and_then(|()| watchdog::arm(&self.self_exe, child.id()));
        // The listener arrives once PID 1 has its network namespace up, before the server starts.
        let egress = match (armed, handoff) {
            (Ok(wd), Some(h)) => h
                .receive(&mut child)
                .map(|l| (wd, Some(l)))
                .map_err(|e| io::Error::new(e.kind(), format!("egress proxy: {e}"))),
            (Ok(wd), None) => Ok((wd, host_egress)),
            (Err(e), _) => Err(e),
        };
        match egress {
            Ok(((wd, wd_pid), egress)) => Ok(Launched {
                child,
                watchdog: Some(wd),
                watchdog_pid: Some(wd_pid),
                notes,
                cgroup,
                applied: Some(sandbox),
                egress,
                scratch,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                if let Some(c) = cgroup {
                    let _ = c.remove();
                }
                Err(io::Error::new(
                    e.kind(),
                    format!("cannot start the sandbox: {e}"),
                ))
            }
        }
    }
}
