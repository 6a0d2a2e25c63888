//! The stdio proxy: client bytes → framing → guard pipeline → server, and back.
//!
//! # Shape
//! One thread runs an event loop over the client's stdin, the server's stdout and the server's stdin
//! (`poll`), frames what arrives ([`Framer`]), lets the [`Pipeline`] decide, records the decision, and writes
//! whole lines on. Call timeouts are the loop's `poll` timeout. A second thread only copies the server's
//! stderr, prefixed and with secrets masked.
//!
//! # Why one thread, and no async runtime
//! On the small VMs palisade is benchmarked on, every wake-up of another thread costs tens of microseconds
//! (a cross-CPU pipe round trip is ≈ 60 µs against ≈ 5 µs within a CPU). One thread handling both
//! directions wakes exactly when a zero-work relay would, keeps its caches warm, and needs no lock around
//! the session or the audit log. With a thread per direction, the two threads landed on different CPUs
//! next to a busy server and added ≈ 30 µs per round trip (BENCHMARKS.md). An async runtime's stdin shim
//! would add a hop of its own. The HTTP gateway (`serve`) is where tokio belongs.
//!
//! # Writing without deadlock
//! Bytes for the server are queued and written without blocking (its pipes are palisade's own, so they are
//! made non-blocking): a server busy writing a large response while a large request waits can never stall
//! the loop. While more than [`BACKPRESSURE_BYTES`] wait for the server, palisade stops reading the client.
//! Writes to the client block, exactly as the server's own writes would if it were connected directly.
//!
//! # Ordering guarantees
//! * An audit event describing a message is written before the message is released, so killing palisade
//!   between a request and its response loses no record of the request (and with `durable`, not even on
//!   power loss).
//! * Messages are forwarded whole, one line per write, in the order they were decided.

use palisade_audit::Event;
use palisade_guard::{Direction, Forward, Note, NoteKind, Outcome, Pipeline, SessionState};
use palisade_mcp::{Framer, Message, ReadEvent};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{ChildStdin, ChildStdout};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use crate::pins::{PinStore, ServerPins};

type AuditLog = palisade_audit::AuditLog<palisade_audit::ExclusiveFile>;

/// Stop reading the client while this many bytes wait to be written to the server.
pub(crate) const BACKPRESSURE_BYTES: usize = 16 * 1024 * 1024;
/// Read size for each pipe.
const READ_CHUNK: usize = 64 * 1024;

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The client closed its input; its requests were answered (or the grace ran out) and the server's
    /// output closed.
    ClientDone,
    /// The server closed its output while the client was still connected.
    ServerGone,
}

/// Audit events produced off the loop's thread (the egress proxy's connections), handed to the loop,
/// which alone writes the audit log: a channel plus a non-blocking pipe that wakes its `poll`.
pub(crate) struct Inbox {
    rx: Receiver<Event>,
    wake: OwnedFd,
}

/// The sending side of an [`Inbox`]; cheap to share between threads.
pub(crate) struct Outbox {
    tx: Sender<Event>,
    wake: OwnedFd,
}

impl Outbox {
    /// Hands `ev` to the loop. Never blocks: a full wake-up pipe already means "look".
    pub(crate) fn send(&self, ev: Event) {
        if self.tx.send(ev).is_ok() {
            let _ = rustix::io::write(&self.wake, b"!");
        }
    }
}

/// A connected [`Inbox`] and [`Outbox`].
pub(crate) fn inbox() -> io::Result<(Inbox, Outbox)> {
    let (r, w) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    )?;
    let (tx, rx) = channel();
    Ok((Inbox { rx, wake: r }, Outbox { tx, wake: w }))
}

/// The proxy's state; owned by the one thread that runs [`Proxy::run`].
pub(crate) struct Proxy {
    pub(crate) server: String,
    pipeline: Pipeline,
    st: SessionState,
    client_out: File,
    server_in: Option<ChildStdin>,
    /// Bytes decided for the server but not yet written.
    to_server: Vec<u8>,
    /// Close the server's stdin once `to_server` is flushed.
    close_server_in: bool,
    audit: Option<AuditLog>,
    pins: PinStore,
    /// Events from other threads, recorded by this one.
    inbox: Option<Inbox>,
    /// Pins of the tool definitions whose descriptions were analyzed (and warned about) this session.
    described: std::collections::HashSet<String>,
}

impl Proxy {
    pub(crate) fn new(
        server: String,
        pipeline: Pipeline,
        pins: PinStore,
        loaded: ServerPins,
        server_in: ChildStdin,
        client_out: File,
        audit: Option<AuditLog>,
    ) -> io::Result<Proxy> {
        // The server's stdin is palisade's own pipe: non-blocking, so a full pipe never stalls the loop.
        set_nonblocking(&server_in)?;
        let mut st = SessionState::with_pins(loaded.approved);
        st.observed = loaded.observed;
        Ok(Proxy {
            server,
            pipeline,
            st,
            client_out,
            server_in: Some(server_in),
            to_server: Vec::new(),
            close_server_in: false,
            audit,
            pins,
            inbox: None,
            described: std::collections::HashSet::new(),
        })
    }

    /// Records the events `inbox` receives, in the loop (see [`Inbox`]).
    pub(crate) fn set_inbox(&mut self, inbox: Inbox) {
        self.inbox = Some(inbox);
    }

    /// Records whatever waits in the inbox.
    pub(crate) fn drain_inbox(&mut self) {
        let Some(inbox) = &self.inbox else { return };
        let mut sink = [0u8; 256];
        while matches!(rustix::io::read(&inbox.wake, &mut sink), Ok(n) if n > 0) {}
        let events: Vec<Event> = inbox.rx.try_iter().collect();
        for ev in events {
            self.append(ev);
        }
    }

    /// Runs until the server's output closes. After the client's input ends, palisade waits (up to
    /// `grace`) until every request the client sent is answered, closes the server's input, and gives the
    /// server `grace` to exit; `on_overdue` is called once if it does not (the caller stops it).
    pub(crate) fn run(
        &mut self,
        client_in: File,
        mut server_out: ChildStdout,
        grace: Duration,
        mut on_overdue: impl FnMut(),
    ) -> io::Result<Ended> {
        let max = self.pipeline.policy().limits.max_message_bytes;
        let mut client = Some((client_in, Framer::new(max)));
        let mut server_framer = Framer::new(max);
        let mut buf = vec![0u8; READ_CHUNK];
        let mut client_done_at: Option<Instant> = None;
        let mut closed_at: Option<Instant> = None;
        let mut overdue_reported = false;
        loop {
            let now = Instant::now();
            if let Some(done) = client_done_at {
                let answered =
                    self.st.deferred.is_empty() && self.st.in_flight.values().all(|f| f.internal);
                if !self.close_server_in && (answered || now >= done + grace) {
                    self.close_server_in = true;
                    self.flush_server()?;
                }
                if self.server_in.is_none() && closed_at.is_none() {
                    closed_at = Some(now);
                }
                if let Some(c) = closed_at
                    && now >= c + grace
                    && !overdue_reported
                {
                    overdue_reported = true;
                    on_overdue();
                }
            }
            let mut deadline = self.pipeline.next_deadline(&self.st);
            if let Some(done) = client_done_at
                && !self.close_server_in
            {
                deadline = Some(deadline.map_or(done + grace, |d| d.min(done + grace)));
            }
            if let Some(c) = closed_at
                && !overdue_reported
            {
                deadline = Some(deadline.map_or(c + grace, |d| d.min(c + grace)));
            }
            let timeout = deadline.map(|d| {
                let left = d.saturating_duration_since(now) + Duration::from_micros(999);
                Timespec::try_from(left).unwrap_or(Timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                })
            });

            let read_client = client.is_some() && self.to_server.len() < BACKPRESSURE_BYTES;
            let write_server = !self.to_server.is_empty() && self.server_in.is_some();
            let (client_ready, server_ready, writable, inbox_ready) = {
                let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(4);
                fds.push(PollFd::new(&server_out, PollFlags::IN));
                if read_client && let Some((c, _)) = &client {
                    fds.push(PollFd::new(c, PollFlags::IN));
                }
                let mut w_index = None;
                if write_server && let Some(w) = &self.server_in {
                    w_index = Some(fds.len());
                    fds.push(PollFd::new(w, PollFlags::OUT));
                }
                let mut i_index = None;
                if let Some(inbox) = &self.inbox {
                    i_index = Some(fds.len());
                    fds.push(PollFd::new(&inbox.wake, PollFlags::IN));
                }
                match poll(&mut fds, timeout.as_ref()) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
                let ready = |f: &PollFd<'_>| !f.revents().is_empty();
                (
                    read_client && client.is_some() && ready(&fds[1]),
                    ready(&fds[0]),
                    w_index.is_some_and(|i| ready(&fds[i])),
                    i_index.is_some_and(|i| ready(&fds[i])),
                )
            };

            if inbox_ready {
                self.drain_inbox();
            }

            if writable {
                self.flush_server()?;
            }
            if server_ready {
                let n = read_some(&mut server_out, &mut buf)?;
                if n == 0 {
                    server_framer.finish();
                    self.pump(&mut server_framer, Direction::ToClient);
                    return Ok(if client_done_at.is_some() {
                        Ended::ClientDone
                    } else {
                        Ended::ServerGone
                    });
                }
                server_framer.push(&buf[..n]);
                self.pump(&mut server_framer, Direction::ToClient);
            }
            if client_ready && let Some((c, framer)) = &mut client {
                let n = read_some(c, &mut buf)?;
                if n == 0 {
                    framer.finish();
                } else {
                    framer.push(&buf[..n]);
                }
                self.pump(framer, Direction::ToServer);
                if n == 0 {
                    client = None;
                    client_done_at = Some(Instant::now());
                }
            }
            self.expire_due();
            self.flush_server()?;
        }
    }

    /// Decides, records and delivers every complete message the framer holds.
    fn pump(&mut self, framer: &mut Framer, dir: Direction) {
        while let Some(ev) = framer.next_event() {
            let (outcome, raw): (Outcome, &[u8]) = match ev {
                ReadEvent::Eof => break,
                ReadEvent::TooLong { len, id } => (
                    self.pipeline.too_long(dir, len, id.as_ref(), &mut self.st),
                    &[],
                ),
                ReadEvent::Line(line) => {
                    let now = Instant::now();
                    let out = match Message::parse(line) {
                        Ok(msg) => match dir {
                            Direction::ToServer => self.pipeline.on_client(&msg, &mut self.st, now),
                            Direction::ToClient => self.pipeline.on_server(&msg, &mut self.st, now),
                        },
                        Err(e) => match dir {
                            Direction::ToServer => self.pipeline.client_frame_error(&e),
                            Direction::ToClient => self.pipeline.server_frame_error(&e),
                        },
                    };
                    (out, line)
                }
            };
            self.save_pins_if_changed();
            // Recorded before released, in both directions.
            self.record(&outcome.notes);
            // A tools/list answer (its note comes first): warn about poisoned descriptions once.
            if dir == Direction::ToClient
                && outcome.notes.first().is_some_and(|n| {
                    n.kind == NoteKind::List && n.method.as_deref() == Some("tools/list")
                })
            {
                self.warn_descriptions();
            }
            deliver(
                &mut self.client_out,
                &mut self.to_server,
                dir,
                raw,
                &outcome,
                &self.server,
            );
            if dir == Direction::ToClient {
                self.release_deferred();
            }
        }
    }

    /// Description findings at or above high, for tool definitions not analyzed yet in this session: one
    /// stderr line per tool and an audit event. Nothing is blocked here: whether a tool may be used is
    /// the pinning guard's decision (a changed definition is held until approved).
    fn warn_descriptions(&mut self) {
        if self
            .st
            .tools
            .values()
            .all(|t| self.described.contains(&t.hash))
        {
            return;
        }
        let mut names: Vec<&String> = self.st.tools.keys().collect();
        names.sort();
        // The whole list is analyzed (a tool may name its siblings); only new definitions are reported.
        let list = serde_json::Value::Array(
            names
                .iter()
                .map(|n| serde_json::Value::Object(self.st.tools[*n].def.clone()))
                .collect(),
        );
        let fresh: Vec<palisade_analyze::describe::ItemFindings> = names
            .iter()
            .zip(palisade_analyze::analyze_tools(&list))
            .filter(|(n, _)| !self.described.contains(&self.st.tools[**n].hash))
            .map(|(_, i)| i)
            .collect();
        let hashes: Vec<String> = self.st.tools.values().map(|t| t.hash.clone()).collect();
        self.described.extend(hashes);
        let threshold = palisade_scan::Severity::High;
        for line in palisade_analyze::describe::warnings(&self.server, &fresh, threshold) {
            eprintln!("{line}");
        }
        if self.audit.is_some() {
            for item in &fresh {
                if let Some(ev) = crate::audit_map::description_findings(
                    &self.server,
                    self.st.client_name.as_deref(),
                    item,
                    threshold,
                ) {
                    self.append(ev);
                }
            }
        }
    }

    /// Re-checks tool calls that were held while palisade listed the server's tools.
    fn release_deferred(&mut self) {
        if self.st.deferred.is_empty() {
            return;
        }
        for raw in self.pipeline.drain_deferred(&mut self.st) {
            let Ok(msg) = Message::parse(&raw) else {
                continue;
            };
            let out = self
                .pipeline
                .on_client_retry(&msg, &mut self.st, Instant::now());
            self.record(&out.notes);
            deliver(
                &mut self.client_out,
                &mut self.to_server,
                Direction::ToServer,
                &raw,
                &out,
                &self.server,
            );
        }
    }

    /// Fires call timeouts whose deadline passed.
    fn expire_due(&mut self) {
        let now = Instant::now();
        if self
            .pipeline
            .next_deadline(&self.st)
            .is_none_or(|d| d > now)
        {
            return;
        }
        let out = self.pipeline.expire(&mut self.st, now);
        self.record(&out.notes);
        deliver(
            &mut self.client_out,
            &mut self.to_server,
            Direction::ToClient,
            &[],
            &out,
            &self.server,
        );
        self.release_deferred();
    }

    /// Writes queued bytes to the server without blocking; closes its stdin when asked and flushed.
    fn flush_server(&mut self) -> io::Result<()> {
        if let Some(w) = &mut self.server_in {
            while !self.to_server.is_empty() {
                match w.write(&self.to_server) {
                    Ok(0) => break,
                    Ok(n) => {
                        self.to_server.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        // The server closed its stdin (it is exiting); its stdout's end reports the exit.
                        self.server_in = None;
                        self.to_server.clear();
                        break;
                    }
                }
            }
        } else {
            self.to_server.clear();
        }
        if self.close_server_in && self.to_server.is_empty() {
            self.server_in = None;
        }
        Ok(())
    }

    fn save_pins_if_changed(&mut self) {
        if !self.st.pins_dirty {
            return;
        }
        self.st.pins_dirty = false;
        let p = ServerPins {
            approved: self.st.pins.clone(),
            observed: self.st.observed.clone(),
        };
        if let Err(e) = self.pins.update(&self.server, |entry| *entry = p) {
            eprintln!(
                "palisade: warning: could not save tool pins to {}: {e:#}",
                self.pins.path().display()
            );
        }
    }

    /// The server is gone: every request still waiting gets an error; records the exit.
    pub(crate) fn server_exited(&mut self, why: &str) {
        let out = self.pipeline.server_gone(&mut self.st, why, Instant::now());
        self.record(&out.notes);
        for r in &out.to_client {
            to_client(&mut self.client_out, r, &self.server);
        }
        self.append(Event::new(palisade_audit::Kind::Exit, &self.server).detail(why));
    }

    pub(crate) fn append(&mut self, ev: Event) {
        let Some(log) = &mut self.audit else { return };
        if let Err(e) = log.append(ev) {
            if self.pipeline.policy().audit.durable {
                // The policy promises nothing is released without a durable record: stop instead (the
                // watchdog then stops the server).
                eprintln!(
                    "palisade: error: the durable audit log cannot be written ({e}); stopping, since the policy requires a record of every message"
                );
                std::process::exit(crate::ExitStatus::Failure as i32);
            }
            eprintln!("palisade: warning: audit log write failed: {e}");
        }
    }

    fn record(&mut self, notes: &[Note]) {
        for n in notes {
            self.tell_person(n);
            if self.audit.is_some() {
                let ev = crate::audit_map::event(&self.server, self.st.client_name.as_deref(), n);
                self.append(ev);
            }
        }
    }

    /// Blocked tools and protocol errors need a person: say so on stderr as well as in the audit log.
    fn tell_person(&self, n: &Note) {
        if matches!(n.kind, NoteKind::Pin | NoteKind::Error)
            && n.decision == palisade_guard::Decision::Deny
            && let Some(detail) = &n.detail
        {
            eprintln!("palisade[{}]: {detail}", self.server);
        }
    }
}

/// Writes the outcome: the message itself to the other side, then palisade's own messages to each side.
fn deliver(
    client_out: &mut File,
    to_server: &mut Vec<u8>,
    dir: Direction,
    raw: &[u8],
    out: &Outcome,
    server: &str,
) {
    let forwarded: Option<&[u8]> = match &out.forward {
        Forward::Original => Some(raw),
        Forward::Rewritten(b) => Some(b),
        Forward::No => None,
    };
    if let Some(bytes) = forwarded {
        match dir {
            Direction::ToServer => queue_line(to_server, bytes),
            Direction::ToClient => to_client(client_out, bytes, server),
        }
    }
    for m in &out.to_server {
        queue_line(to_server, m);
    }
    for m in &out.to_client {
        to_client(client_out, m, server);
    }
}

fn queue_line(to_server: &mut Vec<u8>, bytes: &[u8]) {
    to_server.reserve(bytes.len() + 1);
    to_server.extend_from_slice(bytes);
    to_server.push(b'\n');
}

/// One message to the client, as one write.
fn to_client(client_out: &mut File, bytes: &[u8], server: &str) {
    let mut buf = Vec::with_capacity(bytes.len() + 1);
    buf.extend_from_slice(bytes);
    buf.push(b'\n');
    if client_out.write_all(&buf).is_err() {
        // The client is gone: nothing is left to protect. Exit so the watchdog reaps the server.
        eprintln!("palisade: the client of `{server}` closed its input; stopping");
        std::process::exit(0);
    }
}

/// One read after `poll` said the descriptor is ready (these descriptors are blocking, so no `WouldBlock`).
fn read_some(mut r: impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// Copies the server's stderr to ours, one prefixed line at a time, with secrets masked.
pub(crate) fn forward_stderr(server: &str, err: impl Read) {
    let reader = BufReader::new(err);
    let stderr = std::io::stderr();
    for line in reader.split(b'\n') {
        let Ok(line) = line else { return };
        let text = String::from_utf8_lossy(&line);
        let masked = palisade_audit::redact_str(&text);
        let _ = writeln!(stderr.lock(), "[{server}] {masked}");
    }
}
