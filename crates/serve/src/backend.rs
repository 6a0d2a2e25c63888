//! What the gateway needs from the binary for each server it serves.
//!
//! The gateway never starts a process, reads a pins file or opens an audit log itself: those belong to the
//! `palisade` binary (one launch path for `run`, `inspect` and `serve`; one pins store; one audit mapping).
//! A [`Backend`] is the binary's answer for one `[servers.NAME]` entry (or the `-- CMD` server).

use palisade_audit::Event;
use palisade_guard::{Note, Pipeline, SessionState};
use std::io;
use std::process::{ChildStderr, ChildStdin, ChildStdout};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::remote::Remote;

/// A server process started for the gateway: its pipes, and how to stop it.
pub struct Spawned {
    /// The server's stdin (palisade writes requests here).
    pub stdin: ChildStdin,
    /// The server's stdout (palisade reads responses here).
    pub stdout: ChildStdout,
    /// The server's stderr, copied to palisade's own with a prefix.
    pub stderr: Option<ChildStderr>,
    /// The process id, for the audit trail.
    pub pid: u32,
    /// Waits (up to a grace period) for the process to exit after its stdin closed, stops its process
    /// group if it does not, and releases what the launcher holds. Blocking; returns a one-line
    /// description of how the server ended.
    pub stop: Box<dyn FnOnce() -> String + Send>,
}

impl std::fmt::Debug for Spawned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawned").field("pid", &self.pid).finish()
    }
}

/// One server behind the gateway, provided by the binary.
pub trait Backend: Send + Sync + 'static {
    /// The server's name (policy key, pins key, audit `server`, the `<name>` of `/mcp/<name>`).
    fn name(&self) -> &str;
    /// The guard pipeline compiled from the server's policy (shared by all its sessions).
    fn pipeline(&self) -> Arc<Pipeline>;
    /// Starts one server process. Blocking: the gateway calls it on a blocking thread.
    fn spawn(&self) -> io::Result<Spawned>;
    /// A fresh session state with the server's approved pins loaded.
    fn session_state(&self) -> SessionState;
    /// Persists the pins of `st` (called when [`SessionState::pins_dirty`] is set).
    fn save_pins(&self, st: &SessionState);
    /// Records a guard note for `client` in the server's audit trail (and tells the person when it needs
    /// one).
    fn record(&self, client: Option<&str>, note: &Note);
    /// Records an event palisade made itself (spawn, exit, authentication and transport refusals).
    fn event(&self, ev: Event);
    /// A remote server (`url = "…"`): palisade connects to it as its HTTP client and [`Backend::spawn`]
    /// is never called. `None` (the default) for a local process.
    fn remote(&self) -> Option<Arc<Remote>> {
        None
    }
}

/// A started upstream as the upstream task drives it: a byte stream each way, whatever is behind them
/// (a server process's pipes, or the bridge to a remote server).
pub(crate) struct Started {
    /// Messages from the server, one per line.
    pub(crate) reader: Box<dyn AsyncRead + Send + Unpin>,
    /// Messages to the server, one per line; shutting it down ends the server's session.
    pub(crate) writer: Box<dyn AsyncWrite + Send + Unpin>,
    /// A process's stderr.
    pub(crate) stderr: Option<tokio::process::ChildStderr>,
    /// What was started, for the audit trail (`pid 123`, `remote https://…`).
    pub(crate) what: String,
    /// As [`Spawned::stop`].
    pub(crate) stop: Box<dyn FnOnce() -> String + Send>,
}

/// Starts server processes on one dedicated thread that lives as long as palisade.
///
/// # Why one thread
/// The sandbox helper asks the kernel to kill it when its parent dies (`PR_SET_PDEATHSIG`), and "parent"
/// means the *thread* that forked it. Launching from a pool thread (tokio's blocking pool retires idle
/// threads after seconds) would kill every server started from it when that thread retires. Launches are
/// quick (the launcher returns once the process is started), so one thread is enough.
#[derive(Clone, Debug)]
pub(crate) struct Spawner {
    jobs: std::sync::mpsc::Sender<Job>,
}

type Job = (
    Arc<dyn Backend>,
    tokio::sync::oneshot::Sender<io::Result<Spawned>>,
);

impl Spawner {
    /// Starts the launcher thread.
    pub(crate) fn start() -> io::Result<Spawner> {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("palisade-launch".into())
            .spawn(move || {
                for (backend, done) in rx {
                    let _ = done.send(backend.spawn());
                }
            })?;
        Ok(Spawner { jobs })
    }

    /// Starts one process of `backend`, or for a remote server the bridge of one upstream session
    /// (no process, no launcher thread).
    pub(crate) async fn spawn(&self, backend: Arc<dyn Backend>) -> io::Result<Started> {
        if let Some(remote) = backend.remote() {
            let what = format!("remote {}", remote.url());
            let opened = crate::remote::open(remote, backend);
            return Ok(Started {
                reader: Box::new(opened.reader),
                writer: Box::new(opened.writer),
                stderr: None,
                what,
                stop: opened.stop,
            });
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send((backend, tx))
            .map_err(|_| io::Error::other("the launcher thread is gone"))?;
        let Spawned {
            stdin,
            stdout,
            stderr,
            pid,
            stop,
        } = rx
            .await
            .map_err(|_| io::Error::other("the launcher thread is gone"))??;
        Ok(Started {
            writer: Box::new(tokio::process::ChildStdin::from_std(stdin)?),
            reader: Box::new(tokio::process::ChildStdout::from_std(stdout)?),
            stderr: stderr
                .map(tokio::process::ChildStderr::from_std)
                .transpose()?,
            what: format!("pid {pid}"),
            stop,
        })
    }
}
