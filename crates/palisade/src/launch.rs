//! The one place commands start a server: the launcher the settings and the machine call for, and the
//! launch spec built from the resolved policy. `run` and `inspect` both come through here, so they always
//! start a server the same way.
//!
//! # Choosing the launcher
//! The OS sandbox is the default. A server runs without it only when its own policy table says
//! `trust = "unsandboxed"` (or `--unsandboxed` is given), and the banner says so. Otherwise the machine's
//! tier decides ([`palisade_sandbox::linux::probe::quick`]): tier 1 is the full sandbox; tier 2 (no user
//! namespaces) is Landlock + seccomp + limits, with a warning; tier 3 (no Landlock or seccomp) refuses to
//! start. Never silently unsandboxed.

use anyhow::{Result, bail};
use palisade_audit::{Event, Kind};
use palisade_policy::NetRules;
use palisade_sandbox::spec::{Isolation, Mount, NetMode, SandboxSpec};
use palisade_sandbox::{CgroupDir, LaunchSpec, Launched, Launcher, Plain, Sandboxed, scrubbed_env};
use std::path::PathBuf;

use crate::settings::{ConfigError, ServerSettings};

/// Starts the server of `s`. Returns it and a one-line description of its isolation for the banner.
/// When the policy allows destinations, [`Launched::egress`] is the listener the caller must serve
/// ([`crate::egress::Egress`]). Call from a thread that outlives the server: the sandbox helper's
/// parent-death signal follows the thread that started it (see `Launcher::launch`).
pub(crate) fn start(s: &ServerSettings) -> Result<(Launched, String)> {
    start_with(s, !s.policy.net.allow.is_empty())
}

/// [`start`] with no network whatever the policy allows (`inspect`: a server is listed, not used).
pub(crate) fn start_offline(s: &ServerSettings) -> Result<(Launched, String)> {
    start_with(s, false)
}

fn start_with(s: &ServerSettings, egress: bool) -> Result<(Launched, String)> {
    let self_exe = std::env::current_exe().ok();
    let launcher: Box<dyn Launcher> = if s.unsandboxed {
        Box::new(Plain { self_exe })
    } else {
        let Some(exe) = self_exe else {
            bail!("cannot find palisade's own executable to start the sandbox")
        };
        sandbox_launcher(&s.name, exe)?
    };
    let spec = LaunchSpec {
        argv: s.argv.clone(),
        cwd: s.cwd.clone(),
        env: scrubbed_env(std::env::vars_os(), &s.env),
        read_roots: s.policy.fs.read.clone(),
        write_roots: s.policy.fs.write.clone(),
        home: std::env::var_os("HOME").map(PathBuf::from),
        extra_exec: s.allow_exec.clone(),
        egress,
    };
    let launched = launcher.launch(&spec)?;
    let notes: String = launched.notes.iter().map(|n| format!("; {n}")).collect();
    let description = format!("{}{notes}", launcher.describe());
    Ok((launched, description))
}

/// Removes the sandbox's pids cgroup of an exited server (`run` and `serve` both end a server here).
/// First it says whether the server met its process limit, since refused forks are otherwise silent: a
/// line on stderr, and the `process-limit` error event returned for the caller's audit log.
pub(crate) fn end_cgroup(
    name: &str,
    cgroup: Option<CgroupDir>,
    applied: Option<&SandboxSpec>,
) -> Option<Event> {
    let c = cgroup?;
    let event = c.limit_hits().filter(|&n| n > 0).map(|n| {
        let max = applied
            .and_then(|a| a.rlimits.processes)
            .map_or_else(|| "its".to_owned(), |m| m.to_string());
        let detail = format!(
            "the server reached the sandbox's process limit ({max} processes); {n} fork(s) refused"
        );
        eprintln!("palisade: `{name}`: {detail}");
        Event::new(Kind::Error, name)
            .reason("process-limit")
            .detail(detail)
    });
    let _ = c.remove();
    event
}

/// The sandbox launcher this machine supports, or a refusal that says why and what to do.
#[cfg(target_os = "linux")]
fn sandbox_launcher(name: &str, exe: PathBuf) -> Result<Box<dyn Launcher>> {
    use palisade_sandbox::linux::probe::{Tier, quick};
    let (tier, reasons) = quick();
    match tier {
        Tier::One => Ok(Box::new(Sandboxed::new(exe))),
        Tier::Two => {
            eprintln!(
                "palisade: warning: `{name}` gets the DEGRADED sandbox (tier 2: {}); `palisade doctor` says why",
                reasons.join("; ")
            );
            Ok(Box::new(Sandboxed::degraded(exe)))
        }
        Tier::Three => Err(ConfigError(format!(
            "this machine cannot sandbox `{name}` ({}), so palisade will not start it. \
             Run `palisade doctor` for details; to run this server without the sandbox anyway, set \
             trust = \"unsandboxed\" in its [servers.{name}] policy table (or pass --unsandboxed)",
            reasons.join("; ")
        ))
        .into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn sandbox_launcher(name: &str, _exe: PathBuf) -> Result<Box<dyn Launcher>> {
    Err(ConfigError(format!(
        "palisade has no OS sandbox on this platform yet, so it will not start `{name}`; to run it \
         without one, set trust = \"unsandboxed\" in its [servers.{name}] policy table (or pass \
         --unsandboxed)"
    ))
    .into())
}

/// The effective sandbox as one readable block for stderr: what the server sees, may change and may run,
/// and where it may connect (`net`: the policy's allowlist).
pub(crate) fn describe_sandbox(name: &str, spec: &SandboxSpec, net: &NetRules) -> String {
    let mut ro = Vec::new();
    let mut rw = Vec::new();
    let mut empty = Vec::new();
    let mut etc = 0usize;
    if spec.isolation == Isolation::LandlockOnly {
        // No filesystem view was built: Landlock's rules are the sandbox.
        ro.extend(spec.landlock.read.iter().map(|p| p.display().to_string()));
        rw.extend(spec.landlock.write.iter().map(|p| p.display().to_string()));
        empty.push(
            "nothing (no mount namespace: the rest of the filesystem is visible, not readable)"
                .into(),
        );
    }
    for m in &spec.mounts {
        match m {
            // The handful of /etc files every program needs are summed up, not listed.
            Mount::RoBind { dst, .. } if dst.starts_with("/etc") => etc += 1,
            Mount::RoBind { dst, .. } => ro.push(dst.display().to_string()),
            Mount::RwBind { dst, .. } => rw.push(dst.display().to_string()),
            Mount::Tmpfs { dst, .. } => empty.push(dst.display().to_string()),
            Mount::Symlink { .. } | Mount::Proc | Mount::Dev => {}
        }
    }
    if etc > 0 {
        ro.push(format!("{etc} files in /etc"));
    }
    let run: Vec<String> = spec
        .landlock
        .read_exec
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let net = match &spec.net {
        NetMode::None => "none (its own loopback only)".to_owned(),
        NetMode::Proxy { port, .. } | NetMode::HostProxy { port } => {
            let hosts: Vec<String> = net
                .allow
                .iter()
                .map(|r| match r.port {
                    Some(p) => format!("{}:{p}", r.host.as_str()),
                    None => r.host.as_str().to_owned(),
                })
                .collect();
            let at = if matches!(spec.net, NetMode::HostProxy { .. }) {
                "on the host's loopback"
            } else {
                "inside"
            };
            format!(
                "only through palisade's egress proxy (127.0.0.1:{port} {at}) to {}",
                list(&hosts, 8)
            )
        }
    };
    let r = &spec.rlimits;
    let mut limits = Vec::new();
    if let Some(a) = r.address_space {
        limits.push(format!("{} GiB address space", a >> 30));
    }
    if let Some(p) = r.processes {
        limits.push(format!("{p} processes"));
    }
    if let Some(f) = r.open_files {
        limits.push(format!("{f} open files"));
    }
    limits.push("no core dumps".into());
    format!(
        "palisade: sandbox of `{name}`:\n  read-only:  {}\n  read-write: {}\n  empty:      {}\n  may run:    {}\n  network:    {net}\n  limits:     {}",
        list(&ro, 8),
        if rw.is_empty() {
            "nothing".to_owned()
        } else {
            list(&rw, 8)
        },
        list(&empty, 8),
        list(&run, 8),
        limits.join(", "),
    )
}

/// Up to `max` items, then how many more.
fn list(items: &[String], max: usize) -> String {
    let mut out = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        out.push_str(&format!(" (+{} more)", items.len() - max));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sandbox::spec::{LandlockRules, Rlimits};

    #[test]
    fn the_sandbox_block_names_what_the_server_sees_and_may_run() {
        let spec = SandboxSpec {
            argv: vec!["/usr/bin/node".into()],
            env: vec![],
            cwd: "/work".into(),
            mounts: vec![
                Mount::RoBind {
                    src: "/usr".into(),
                    dst: "/usr".into(),
                },
                Mount::RwBind {
                    src: "/work/out".into(),
                    dst: "/work/out".into(),
                },
                Mount::Tmpfs {
                    dst: "/home/me".into(),
                    size: 1,
                },
                Mount::Proc,
            ],
            landlock: LandlockRules {
                read_exec: vec!["/usr/bin/node".into()],
                ..LandlockRules::default()
            },
            rlimits: Rlimits::default(),
            net: NetMode::None,
            hostname: "sandbox".into(),
            pids_cgroup: None,
            isolation: Default::default(),
        };
        let text = describe_sandbox("srv", &spec, &NetRules::default());
        assert!(text.contains("read-only:  /usr\n"), "{text}");
        assert!(text.contains("read-write: /work/out\n"), "{text}");
        assert!(text.contains("empty:      /home/me\n"), "{text}");
        assert!(text.contains("may run:    /usr/bin/node\n"), "{text}");
        assert!(text.contains("network:    none"), "{text}");
        assert!(text.contains("256 processes"), "{text}");
        assert_eq!(
            list(&["a".into(), "b".into(), "c".into()], 2),
            "a, b (+1 more)"
        );
    }
}
