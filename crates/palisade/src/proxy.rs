//! The stdio proxy: client bytes → framing → guard pipeline → server, and back.
//!
//! # Shape
//! Two threads carry traffic, one per direction, each doing blocking reads on one pipe and writing whole
//! lines to the other side; a third forwards the server's stderr with a prefix; a fourth fires call
//! timeouts. All decisions happen in [`Pipeline`] under one short-held lock on the [`SessionState`].
//!
//! # Why threads and blocking I/O, not an async runtime
//! On the small VMs palisade is benchmarked on, every extra wake-up of another thread costs tens of
//! microseconds (a cross-CPU pipe round trip is ≈ 60 µs against ≈ 5 µs within a CPU). A blocking reader
//! that parses, decides and writes in the same thread adds no hop to the path a byte-for-byte relay already
//! pays; an async runtime's stdin shim adds one. The HTTP gateway (`serve`) is where tokio belongs.
//!
//! # Ordering guarantees
//! * An audit event describing a message is written before the message is released, so killing palisade
//!   between a request and its response loses no record of the request (and with `durable`, not even on
//!   power loss).
//! * Messages are forwarded whole with one `write` each, so lines from different threads never interleave.

use palisade_audit::Event;
type AuditLog = palisade_audit::AuditLog<palisade_audit::ExclusiveFile>;
use palisade_guard::{Direction, Forward, Note, NoteKind, Outcome, Pipeline, SessionState};
use palisade_mcp::{LineReader, Message, ReadEvent};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::ChildStdin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::pins::{PinStore, ServerPins};

/// Session state plus the timer's current wake-up target (so the timer is woken only when a new deadline
/// is earlier than the one it sleeps towards).
struct Session {
    st: SessionState,
    timer_target: Option<Instant>,
}

/// Everything both directions share.
pub(crate) struct Proxy {
    pub(crate) server: String,
    pipeline: Pipeline,
    session: Mutex<Session>,
    timer: Condvar,
    server_in: Mutex<Option<ChildStdin>>,
    client_out: Mutex<File>,
    audit: Option<Mutex<AuditLog>>,
    pins: PinStore,
    done: AtomicBool,
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
    ) -> Proxy {
        let mut st = SessionState::with_pins(loaded.approved);
        st.observed = loaded.observed;
        Proxy {
            server,
            pipeline,
            session: Mutex::new(Session {
                st,
                timer_target: None,
            }),
            timer: Condvar::new(),
            server_in: Mutex::new(Some(server_in)),
            client_out: Mutex::new(client_out),
            audit: audit.map(Mutex::new),
            pins,
            done: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        // A panic while holding the lock must not wedge the other direction: the state is plain data.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads client messages until end of input.
    pub(crate) fn client_loop(&self, input: impl Read) -> std::io::Result<()> {
        let max = self.pipeline.policy().limits.max_message_bytes;
        let mut reader = LineReader::new(BufReader::with_capacity(64 * 1024, input), max);
        self.pump(&mut reader, Direction::ToServer)
    }

    /// Reads server messages until the server closes its stdout.
    pub(crate) fn server_loop(&self, output: impl Read) -> std::io::Result<()> {
        let max = self.pipeline.policy().limits.max_message_bytes;
        let mut reader = LineReader::new(BufReader::with_capacity(64 * 1024, output), max);
        self.pump(&mut reader, Direction::ToClient)
    }

    fn pump<R: BufRead>(&self, reader: &mut LineReader<R>, dir: Direction) -> std::io::Result<()> {
        loop {
            let (outcome, client, raw): (Outcome, Option<String>, &[u8]) =
                match reader.next_line()? {
                    ReadEvent::Eof => return Ok(()),
                    ReadEvent::TooLong { len, id } => {
                        let mut s = self.lock();
                        let out = self.pipeline.too_long(dir, len, id.as_ref(), &mut s.st);
                        (out, s.st.client_name.clone(), &[])
                    }
                    ReadEvent::Line(line) => {
                        let now = Instant::now();
                        match Message::parse(line) {
                            Ok(msg) => {
                                let (out, client, pins) = self.decide(&msg, dir, now);
                                if let Some(p) = pins {
                                    self.save_pins(p);
                                }
                                (out, client, line)
                            }
                            Err(e) => {
                                let out = match dir {
                                    Direction::ToServer => self.pipeline.client_frame_error(&e),
                                    Direction::ToClient => self.pipeline.server_frame_error(&e),
                                };
                                (out, self.lock().st.client_name.clone(), line)
                            }
                        }
                    }
                };
            // Recorded before released, in both directions. (Recording a server's message after the client
            // has it was tried: the client's next request then contends with that write for the audit
            // lock, which cost more than the write it moved; see BENCHMARKS.md.)
            self.record(&outcome.notes, client.as_deref());
            self.deliver(dir, raw, outcome);
            if dir == Direction::ToClient {
                self.release_deferred();
            }
        }
    }

    /// Re-checks tool calls that were held while palisade listed the server's tools. Taking them off the
    /// queue and registering them as in flight happens under one lock, so `drain` never sees neither.
    fn release_deferred(&self) {
        let (released, client) = {
            let mut s = self.lock();
            if s.st.deferred.is_empty() {
                return;
            }
            let held = self.pipeline.drain_deferred(&mut s.st);
            let mut released = Vec::with_capacity(held.len());
            for raw in held {
                let Ok(msg) = Message::parse(&raw) else {
                    continue;
                };
                let out = self
                    .pipeline
                    .on_client_retry(&msg, &mut s.st, Instant::now());
                released.push((raw, out));
            }
            self.arm_timer(&mut s);
            (released, s.st.client_name.clone())
        };
        for (raw, out) in released {
            self.record(&out.notes, client.as_deref());
            self.deliver(Direction::ToServer, &raw, out);
        }
    }

    /// Wakes the timer if the earliest deadline moved earlier than what it sleeps towards.
    fn arm_timer(&self, s: &mut Session) {
        if let Some(d) = self.pipeline.next_deadline(&s.st)
            && s.timer_target.is_none_or(|t| d < t)
        {
            s.timer_target = Some(d);
            self.timer.notify_one();
        }
    }

    /// Runs the pipeline under the lock; returns the outcome, the client's name and pins to persist.
    fn decide(
        &self,
        msg: &Message,
        dir: Direction,
        now: Instant,
    ) -> (Outcome, Option<String>, Option<ServerPins>) {
        let mut s = self.lock();
        let out = match dir {
            Direction::ToServer => self.pipeline.on_client(msg, &mut s.st, now),
            Direction::ToClient => self.pipeline.on_server(msg, &mut s.st, now),
        };
        self.arm_timer(&mut s);
        let pins = if s.st.pins_dirty {
            s.st.pins_dirty = false;
            Some(ServerPins {
                approved: s.st.pins.clone(),
                observed: s.st.observed.clone(),
            })
        } else {
            None
        };
        (out, s.st.client_name.clone(), pins)
    }

    fn save_pins(&self, p: ServerPins) {
        if let Err(e) = self.pins.update(&self.server, |entry| *entry = p) {
            eprintln!(
                "palisade: warning: could not save tool pins to {}: {e:#}",
                self.pins.path().display()
            );
        }
    }

    /// Writes the outcome: the message itself to the other side, then palisade's own messages.
    fn deliver(&self, dir: Direction, raw: &[u8], out: Outcome) {
        match (&out.forward, dir) {
            (Forward::Original, Direction::ToServer) => self.to_server(raw),
            (Forward::Original, Direction::ToClient) => self.to_client(raw),
            (Forward::Rewritten(b), Direction::ToServer) => self.to_server(b),
            (Forward::Rewritten(b), Direction::ToClient) => self.to_client(b),
            (Forward::No, _) => {}
        }
        for m in &out.to_server {
            self.to_server(m);
        }
        for m in &out.to_client {
            self.to_client(m);
        }
    }

    fn to_server(&self, bytes: &[u8]) {
        let mut guard = self.server_in.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = guard.as_mut()
            && write_line(w, bytes).is_err()
        {
            // The server closed its stdin (it is exiting); the server loop reports the exit.
            *guard = None;
        }
    }

    pub(crate) fn to_client(&self, bytes: &[u8]) {
        let mut w = self.client_out.lock().unwrap_or_else(|e| e.into_inner());
        if write_line(&mut *w, bytes).is_err() {
            // The client is gone: nothing is left to protect. Exit so the watchdog reaps the server.
            drop(w);
            self.shutdown_record("client closed its output");
            std::process::exit(0);
        }
    }

    /// Waits (up to `grace`) until every request the client sent has been answered, so a client that
    /// writes its requests and closes its output still gets every reply.
    pub(crate) fn drain(&self, grace: std::time::Duration) {
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            {
                let s = self.lock();
                if s.st.deferred.is_empty() && s.st.in_flight.values().all(|f| f.internal) {
                    return;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Closes the server's stdin (client finished).
    pub(crate) fn close_server_input(&self) {
        self.server_in
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// Every request still waiting gets an error; records the exit.
    pub(crate) fn server_exited(&self, why: &str) {
        let (out, client) = {
            let mut s = self.lock();
            (
                self.pipeline.server_gone(&mut s.st, why, Instant::now()),
                s.st.client_name.clone(),
            )
        };
        self.record(&out.notes, client.as_deref());
        for r in &out.to_client {
            self.to_client(r);
        }
        self.append(Event::new(palisade_audit::Kind::Exit, &self.server).detail(why));
        self.stop_timer();
    }

    fn shutdown_record(&self, why: &str) {
        self.append(Event::new(palisade_audit::Kind::Exit, &self.server).detail(why));
    }

    pub(crate) fn stop_timer(&self) {
        self.done.store(true, Ordering::SeqCst);
        let _s = self.lock();
        self.timer.notify_all();
    }

    /// Fires call timeouts until [`Proxy::stop_timer`].
    pub(crate) fn timer_loop(&self) {
        loop {
            let out = {
                let mut s = self.lock();
                loop {
                    if self.done.load(Ordering::SeqCst) {
                        return;
                    }
                    let now = Instant::now();
                    match self.pipeline.next_deadline(&s.st) {
                        None => {
                            s.timer_target = None;
                            s = self.timer.wait(s).unwrap_or_else(|e| e.into_inner());
                        }
                        Some(d) if d <= now => break,
                        Some(d) => {
                            s.timer_target = Some(d);
                            s = self
                                .timer
                                .wait_timeout(s, d - now)
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                        }
                    }
                }
                let out = self.pipeline.expire(&mut s.st, Instant::now());
                (out, s.st.client_name.clone())
            };
            self.record(&out.0.notes, out.1.as_deref());
            self.deliver(Direction::ToClient, &[], out.0);
        }
    }

    pub(crate) fn append(&self, ev: Event) {
        if let Some(a) = &self.audit {
            let mut log = a.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = log.append(ev) {
                if self.pipeline.policy().audit.durable {
                    // The policy promises nothing is released without a durable record: stop instead
                    // (the watchdog then stops the server).
                    eprintln!(
                        "palisade: error: the durable audit log cannot be written ({e}); stopping, since the policy requires a record of every message"
                    );
                    std::process::exit(crate::ExitStatus::Failure as i32);
                }
                eprintln!("palisade: warning: audit log write failed: {e}");
            }
        }
    }

    fn record(&self, notes: &[Note], client: Option<&str>) {
        if self.audit.is_none() {
            for n in notes {
                self.tell_person(n);
            }
            return;
        }
        for n in notes {
            self.tell_person(n);
            self.append(crate::audit_map::event(&self.server, client, n));
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

fn write_line(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(bytes.len() + 1);
    buf.extend_from_slice(bytes);
    buf.push(b'\n');
    w.write_all(&buf)?;
    w.flush()
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
