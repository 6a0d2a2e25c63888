//! `palisade run`: start the server through the launcher and proxy its stdio through the guards.

use anyhow::{Context, Result};
use palisade_audit::{Event, Kind};
use palisade_guard::Pipeline;
use std::fs::File;
use std::os::fd::AsFd;
use std::time::Duration;

use crate::ExitStatus;
use crate::egress::Egress;
use crate::pins::PinStore;
use crate::proxy::{Ended, Proxy};
use crate::settings::RunSettings;

/// How long the server gets to exit after the client closed its input.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// How long palisade waits, after the server exited, for the rest of its stderr to be copied.
const STDERR_DRAIN: Duration = Duration::from_millis(500);

pub(crate) fn run(settings: RunSettings) -> Result<ExitStatus> {
    let s = &settings.server;
    let pins = PinStore::new(s.pins.clone());
    let loaded = pins.load(&s.name)?;
    let (audit, audit_path) = match &settings.audit {
        Some(path) => {
            let (log, actual) = open_audit(path, s.policy.audit.durable)?;
            (Some(log), Some(actual))
        }
        None => (None, None),
    };
    // From the main thread, which outlives the server (the helper's parent-death signal follows it).
    let (mut launched, isolation) = crate::launch::start(s)?;
    if let Some(applied) = &launched.applied {
        eprintln!(
            "{}",
            crate::launch::describe_sandbox(&s.name, applied, &s.policy.net)
        );
    }
    let pid = launched.child.id();
    eprintln!(
        "palisade: running `{}` (pid {pid}) as a {isolation}\npalisade: policy: {} ({:?} profile); audit: {}; pins: {}",
        s.name,
        s.policy_origin,
        s.policy.profile,
        audit_path
            .as_ref()
            .map_or("off".into(), |p| p.display().to_string()),
        s.pins.display(),
    );
    let server_in = launched.child.stdin.take().context("server stdin")?;
    let server_out = launched.child.stdout.take().context("server stdout")?;
    let server_err = launched.child.stderr.take().context("server stderr")?;
    let client_out = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let client_in = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let pipeline = Pipeline::new(s.policy.clone(), s.cwd.clone());
    for w in s.warnings.iter().chain(pipeline.warnings()) {
        eprintln!("palisade: warning: {w}");
    }
    let mut proxy = Proxy::new(
        s.name.clone(),
        pipeline,
        pins,
        loaded,
        server_in,
        client_out,
        audit,
    )
    .context("setting up the server's pipes")?;
    let egress = match launched.egress.take() {
        Some(listener) => {
            let (inbox, outbox) = crate::proxy::inbox().context("egress proxy")?;
            proxy.set_inbox(inbox);
            Some(
                Egress::start(&s.name, listener, &s.policy.net, move |ev| outbox.send(ev))
                    .context("egress proxy")?,
            )
        }
        None => None,
    };
    proxy.append(Event::new(Kind::Spawn, &s.name).detail(
        palisade_audit::redact_str(&format!("pid {pid}: {}", s.argv.join(" "))).into_owned(),
    ));
    let err_copier = {
        let name = s.name.clone();
        std::thread::Builder::new()
            .name("server-err".into())
            .spawn(move || crate::proxy::forward_stderr(&name, server_err))?
    };
    let stop_group = || {
        if let Some(pgid) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    };
    let ended = proxy
        .run(client_in, server_out, EXIT_GRACE, || {
            eprintln!(
                "palisade: the server `{}` did not exit within {}s of the client closing; stopping it",
                s.name,
                EXIT_GRACE.as_secs()
            );
            stop_group();
        })
        .context("proxying")?;
    // The server closed its output; give it the grace period to exit, then stop its group.
    let mut child = launched.child;
    let deadline = std::time::Instant::now() + EXIT_GRACE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Ok(None) => {
                stop_group();
                break child.wait();
            }
            Err(e) => break Err(e),
        }
    };
    // The sandbox's pids cgroup is empty once the helper is reaped.
    if let Some(ev) =
        crate::launch::end_cgroup(&s.name, launched.cgroup.take(), launched.applied.as_ref())
    {
        proxy.append(ev);
    }
    let why = match &status {
        Ok(st) => exit_reason(st, launched.applied.as_ref().map(|a| &a.rlimits)),
        Err(e) => format!("server status unknown: {e}"),
    };
    // The server's last words (a sandbox setup error, a crash message) reach stderr before palisade says
    // how it ended and exits; a descendant that still holds the pipe open delays that only briefly.
    let deadline = std::time::Instant::now() + STDERR_DRAIN;
    while !err_copier.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    if let Some(e) = egress {
        e.stop();
    }
    proxy.drain_inbox();
    proxy.server_exited(&why);
    drop(launched.watchdog);
    match ended {
        Ended::ClientDone => Ok(ExitStatus::Success),
        Ended::ServerGone => {
            eprintln!(
                "palisade: the server `{}` exited while the client was connected ({why})",
                s.name
            );
            let ok = status.as_ref().is_ok_and(std::process::ExitStatus::success);
            Ok(if ok {
                ExitStatus::Success
            } else {
                ExitStatus::Failure
            })
        }
    }
}

/// The server's end in words. A sandboxed server's status comes through the helper, which reports a
/// death by signal as 128 + the signal; a kill by the kernel is often a limit (memory).
pub(crate) fn exit_reason(
    st: &std::process::ExitStatus,
    limits: Option<&palisade_sandbox::spec::Rlimits>,
) -> String {
    use std::os::unix::process::ExitStatusExt;
    let sandboxed = limits.is_some();
    let signal = st.signal().or_else(|| {
        st.code()
            .filter(|c| sandboxed && *c > 128 && *c < 160)
            .map(|c| c - 128)
    });
    match signal {
        Some(sig) => {
            let name = match sig {
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            let hint = match limits.and_then(|l| l.address_space) {
                Some(bytes) if matches!(sig, 6 | 9 | 11) => format!(
                    "; if it ran out of memory, the sandbox's address-space limit is {} GiB",
                    bytes >> 30
                ),
                _ => String::new(),
            };
            format!("server killed by signal {sig}{name}{hint}")
        }
        None => format!("server {st}"),
    }
}

/// Opens the audit log for this process alone. While another palisade process (a second client of the
/// same server) holds `<server>.jsonl`, this one writes `<server>.2.jsonl`, `<server>.3.jsonl`, …: each
/// file is one chain with one writer, and appends need no per-event locking.
pub(crate) fn open_audit(
    path: &std::path::Path,
    durable: bool,
) -> Result<(
    palisade_audit::AuditLog<palisade_audit::ExclusiveFile>,
    std::path::PathBuf,
)> {
    const MAX_SIBLINGS: u32 = 64;
    let mut candidate = path.to_path_buf();
    for n in 2..=MAX_SIBLINGS + 1 {
        match palisade_audit::AuditLog::open_exclusive(&candidate, durable) {
            Ok(log) => {
                if let Some(torn) = log.torn_tail() {
                    eprintln!(
                        "palisade: warning: the audit log {} ended in a torn write ({torn}); recorded and continued",
                        candidate.display()
                    );
                }
                return Ok((log, candidate));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("audit");
                candidate = path.with_file_name(format!("{stem}.{n}.jsonl"));
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot open the audit log {}", candidate.display()));
            }
        }
    }
    anyhow::bail!(
        "{MAX_SIBLINGS} palisade processes already write audit logs next to {}; pass --audit-log FILE",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_sandboxed_death_by_signal_is_named_with_the_limit_that_may_explain_it() {
        let limits = palisade_sandbox::spec::Rlimits::default();
        // The helper mirrors a signal death as 128 + N.
        let helper_says_killed = std::process::ExitStatus::from_raw(137 << 8);
        let why = exit_reason(&helper_says_killed, Some(&limits));
        assert!(why.contains("signal 9 (SIGKILL)"), "{why}");
        assert!(why.contains("8 GiB"), "{why}");
        // Unsandboxed, 137 is just an exit code.
        let why = exit_reason(&helper_says_killed, None);
        assert_eq!(why, "server exit status: 137");
        let ok = std::process::ExitStatus::from_raw(0);
        assert_eq!(exit_reason(&ok, Some(&limits)), "server exit status: 0");
    }
}
