//! `palisade run`: start the server through the launcher and proxy its stdio through the guards.

use anyhow::{Context, Result};
use palisade_audit::{Event, Kind};
use palisade_guard::Pipeline;
use std::fs::File;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::ExitStatus;
use crate::pins::PinStore;
use crate::proxy::Proxy;
use crate::settings::RunSettings;

/// How long the server gets to exit after the client closed its input.
const EXIT_GRACE: Duration = Duration::from_secs(5);

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
    // Launch before any thread exists (the launcher may fork).
    let (mut launched, isolation) = crate::launch::start(s)?;
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
    let proxy = Arc::new(Proxy::new(
        s.name.clone(),
        pipeline,
        pins,
        loaded,
        server_in,
        client_out,
        audit,
    ));
    proxy.append(Event::new(Kind::Spawn, &s.name).detail(
        palisade_audit::redact_str(&format!("pid {pid}: {}", s.argv.join(" "))).into_owned(),
    ));

    let client_done = Arc::new(AtomicBool::new(false));
    let (exited_tx, exited_rx) = mpsc::channel::<()>();
    let mut child = launched.child;
    let cgroup = launched.cgroup.take();
    {
        let proxy = proxy.clone();
        let client_done = client_done.clone();
        std::thread::Builder::new()
            .name("server-out".into())
            .spawn(move || {
                let read = proxy.server_loop(server_out);
                let status = child.wait();
                // The sandbox's pids cgroup is empty once the helper is reaped.
                if let Some(c) = cgroup {
                    let _ = c.remove();
                }
                let why = match (&status, read) {
                    (Ok(st), _) => format!("server {st}"),
                    (Err(e), _) => format!("server status unknown: {e}"),
                };
                proxy.server_exited(&why);
                if client_done.load(Ordering::SeqCst) {
                    let _ = exited_tx.send(());
                    return;
                }
                eprintln!(
                    "palisade: the server `{}` exited while the client was connected ({why})",
                    proxy.server
                );
                let ok = status.as_ref().is_ok_and(std::process::ExitStatus::success);
                std::process::exit(if ok { 0 } else { ExitStatus::Failure as i32 });
            })?;
    }
    {
        let name = s.name.clone();
        std::thread::Builder::new()
            .name("server-err".into())
            .spawn(move || crate::proxy::forward_stderr(&name, server_err))?;
    }
    {
        let proxy = proxy.clone();
        std::thread::Builder::new()
            .name("timer".into())
            .spawn(move || proxy.timer_loop())?;
    }

    let res = proxy.client_loop(client_in);
    proxy.drain(EXIT_GRACE);
    client_done.store(true, Ordering::SeqCst);
    proxy.close_server_input();
    if exited_rx.recv_timeout(EXIT_GRACE).is_err() {
        eprintln!(
            "palisade: the server `{}` did not exit within {}s of the client closing; stopping it",
            s.name,
            EXIT_GRACE.as_secs()
        );
        if let Some(pgid) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = exited_rx.recv_timeout(Duration::from_secs(2));
    }
    drop(launched.watchdog);
    res.context("reading from the client")?;
    Ok(ExitStatus::Success)
}

/// Opens the audit log for this process alone. While another palisade process (a second client of the
/// same server) holds `<server>.jsonl`, this one writes `<server>.2.jsonl`, `<server>.3.jsonl`, …: each
/// file is one chain with one writer, and appends need no per-event locking.
fn open_audit(
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
