//! One server process behind the gateway, driven through the guard pipeline by one task.
//!
//! # Shape
//! An [`Upstream`] task owns a server process's pipes, the [`Pipeline`] state of its session and the table
//! of client requests waiting for an answer. HTTP handlers talk to it only through [`Cmd`] messages, so
//! the session state has exactly one owner and needs no lock, as in the stdio proxy (`proxy.rs`): the
//! same pipeline calls (`on_client`, `on_server`, `drain_deferred`, `expire`, `server_gone`) run in the
//! same order, every note is recorded before the message it describes is released, and palisade's own
//! `tools/list` requests never reach a client.
//!
//! # Three ways a process is used ([`Mode`])
//! * **Per session** (2025-11-25 era, the default): one process per `MCP-Session-Id`. Clients' JSON-RPC
//!   ids go through unchanged, server→client requests (sampling, elicitation, roots) have exactly one
//!   client to go to, and sessions are isolated from each other for free.
//! * **Stateless** (2026-07-28 era, no sessions): one process per server serves every stateless request.
//! * **Shared sessions** (2025-11-25 era, `process = "shared"`): one process per server serves every
//!   session. palisade initializes it once (with the first session's `initialize`), answers later
//!   sessions' `initialize` from the recorded result, and forwards one `notifications/initialized`.
//!
//! The last two **multiplex**: each request gets an id palisade allocates (`palisade-http-N`), spliced in
//! without touching the rest of the message ([`crate::ids::with_id`], [`splice`]), and the client's own
//! id is restored on the way back, so clients that pick the same ids never see each other's answers. A
//! `progressToken` is replaced by the same upstream id (clients pick tokens independently too), and a
//! client's `notifications/cancelled` names its own request by its own id: palisade translates it to the
//! upstream id of *that client's* request, or drops it, so no client can cancel another's work.
//!
//! # Where server messages go
//! A response goes to the HTTP request that asked. A `notifications/progress` goes to the request whose
//! `_meta.progressToken` it carries. Server requests and log messages belong to the work in progress: they
//! go to the most recent request still waiting, or when nothing is waiting to the standalone GET stream
//! (per session), to every session's GET stream (log messages of a shared process), or nowhere: a server
//! request with no request in flight on a shared process is answered with an error, since there is no
//! one client it could go to. Anything else (list changes, resource updates) goes to the GET stream (every
//! session's, for a shared process), held (up to [`BACKLOG`] messages) until one is open. A shared
//! process's server request may only be answered by the session it went to.

use bytes::Bytes;
use palisade_audit::{Event, Kind as AuditKind};
use palisade_guard::{Direction, Forward, Note, Outcome, Pipeline, SessionState};
use palisade_mcp::{Framer, Id, Kind, Message, ReadEvent, error_response};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::backend::{Backend, Spawner, Started};
use crate::headers;
use crate::ids;
use crate::scope::Principal;

/// Server messages held for a GET stream that is not open yet.
pub(crate) const BACKLOG: usize = 256;
/// Messages buffered per client stream before palisade gives up on a client that does not read.
pub(crate) const STREAM_BUFFER: usize = 1024;
/// The `_meta` key that ties a notification to its `subscriptions/listen` request.
const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
/// How long the last queued lines get to reach a server whose session is ending.
const FLUSH_GRACE: Duration = Duration::from_secs(2);
/// Read size for the server's stdout.
const READ_CHUNK: usize = 64 * 1024;

/// One message for a client stream. `last` marks the response that completes an HTTP request.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) bytes: Bytes,
    pub(crate) last: bool,
}

/// Where the messages for one client request go.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) tx: mpsc::Sender<Frame>,
    /// Identifies the HTTP request, for [`Cmd::Abandon`].
    pub(crate) key: u64,
}

/// What HTTP handlers ask of an upstream.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// A message from a client; `reply` is set for requests.
    Client {
        msg: Message,
        principal: Arc<Principal>,
        /// `Mcp-Param-*` headers of a stateless `tools/call`, checked against the tool's annotations.
        params: Vec<(String, String)>,
        /// The session it belongs to, on a process shared by sessions.
        session: Option<u64>,
        reply: Option<Reply>,
    },
    /// Open the standalone stream for server-initiated messages (2025-11-25 GET) of the process, or of
    /// `session` on a shared process. Answers `false` when one is already open.
    Listen {
        tx: mpsc::Sender<Frame>,
        opened: oneshot::Sender<bool>,
        session: Option<u64>,
    },
    /// A session of a shared process ended (DELETE, a failed `initialize`); the process goes on.
    Leave { session: u64 },
    /// The client closed the stream of request `key` before its response (2026-07-28: a cancellation).
    Abandon { key: u64 },
    /// End the session (DELETE, shutdown).
    Close,
}

/// How a process is used (see the module docs).
pub(crate) enum Mode {
    /// One 2025-11-25 session.
    PerSession,
    /// Every 2026-07-28 request of the server.
    Stateless,
    /// Every 2025-11-25 session of the server. `left` is told the session number of a session that
    /// ended on its own (idle), so the gateway forgets it.
    Sessions { left: Box<dyn Fn(u64) + Send> },
}

/// How an upstream ended, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    Closed,
    ServerGone,
    Idle,
}

struct Pending {
    tx: mpsc::Sender<Frame>,
    key: u64,
    /// The client's own id, when palisade replaced it.
    client_id: Option<Value>,
    principal: Arc<Principal>,
    progress: Option<Value>,
    method: String,
    seq: u64,
    /// `Mcp-Param-*` headers still to be checked once the tool's definition is known.
    params: Option<Vec<(String, String)>>,
    /// The session that asked, on a process shared by sessions.
    session: Option<u64>,
}

/// The standalone stream of a session: open, or the messages waiting for it.
#[derive(Default)]
struct Stream {
    listen: Option<mpsc::Sender<Frame>>,
    backlog: VecDeque<Bytes>,
}

impl Stream {
    fn is_open(&self) -> bool {
        self.listen.as_ref().is_some_and(|l| !l.is_closed())
    }

    /// Opens the stream with `tx` and sends what waited; `false` if one is already open.
    fn open(&mut self, tx: mpsc::Sender<Frame>) -> bool {
        if self.is_open() {
            return false;
        }
        while let Some(b) = self.backlog.pop_front() {
            if tx
                .try_send(Frame {
                    bytes: b,
                    last: false,
                })
                .is_err()
            {
                break;
            }
        }
        self.listen = Some(tx);
        true
    }

    fn offer(&mut self, bytes: Bytes) {
        if let Some(l) = &self.listen
            && l.try_send(Frame {
                bytes: bytes.clone(),
                last: false,
            })
            .is_ok()
        {
            return;
        }
        self.listen = None;
        if self.backlog.len() >= BACKLOG {
            self.backlog.pop_front();
        }
        self.backlog.push_back(bytes);
    }
}

/// The sessions of a shared process, and its one initialization.
struct Shared {
    members: HashMap<u64, Member>,
    init: Init,
    /// `notifications/initialized` reached the server (once, from whichever session sent it first).
    initialized_sent: bool,
    /// Server requests in flight and the session each went to: only that session may answer.
    asked: HashMap<Id, u64>,
    left: Box<dyn Fn(u64) + Send>,
}

struct Member {
    stream: Stream,
    last_active: Instant,
}

/// Where the shared process's initialization stands.
enum Init {
    /// Not initialized: the next session's `initialize` goes to the server.
    NotYet,
    /// The `initialize` with upstream id `up_id` is with the server; later ones wait for its answer.
    InFlight { up_id: Id, waiting: Vec<Waiter> },
    /// The server's `initialize` result, for later sessions.
    Done { result: Value, version: String },
}

/// A session's `initialize` waiting for the shared process's own.
struct Waiter {
    id: Id,
    asked: Option<String>,
    tx: mpsc::Sender<Frame>,
    principal: Arc<Principal>,
    session: Option<u64>,
}

/// The task that drives one server process.
pub(crate) struct Upstream {
    backend: Arc<dyn Backend>,
    pipeline: Arc<Pipeline>,
    st: SessionState,
    /// Shared by several clients: ids (and progress tokens) are replaced.
    multiplex: bool,
    /// The 2026-07-28 shared process.
    stateless: bool,
    /// The sessions of a process shared by 2025-11-25 sessions.
    shared: Option<Shared>,
    pending: HashMap<Id, Pending>,
    next_id: u64,
    seq: u64,
    /// The standalone stream of a per-session process.
    stream: Stream,
    /// Lines for the server not yet written. The task writes them itself, in its own loop, rather than
    /// handing them to a writer task: a pipe write almost never blocks, and a task hop per request was a
    /// cross-thread wake-up (the largest CPU cost per request in `palisade-bench http`).
    outbox: Vec<u8>,
    /// False once the server's input is closed (a write failed, or the session is ending).
    input_open: bool,
    /// The session's principal (per-session upstreams), for notes not tied to a request.
    owner: Option<Arc<Principal>>,
    label: String,
}

impl Upstream {
    /// Starts the server (on the launcher thread, see [`Spawner`]) and returns the command channel of its task. `on_end` runs
    /// once the task has finished and the process is stopped.
    pub(crate) async fn start(
        spawner: &Spawner,
        backend: Arc<dyn Backend>,
        mode: Mode,
        owner: Option<Arc<Principal>>,
        label: String,
        idle: Duration,
        on_end: Box<dyn FnOnce(Ended) + Send>,
    ) -> std::io::Result<mpsc::Sender<Cmd>> {
        let Started {
            writer: stdin,
            reader: stdout,
            stderr,
            what,
            stop,
        } = spawner.spawn(backend.clone()).await?;
        backend
            .event(Event::new(AuditKind::Spawn, backend.name()).detail(format!("{what}: {label}")));
        if let Some(err) = stderr {
            let name = backend.name().to_owned();
            tokio::spawn(copy_stderr(name, err));
        }
        let (tx, rx) = mpsc::channel(256);
        let st = backend.session_state();
        let (multiplex, stateless, shared) = match mode {
            Mode::PerSession => (false, false, None),
            Mode::Stateless => (true, true, None),
            Mode::Sessions { left } => (
                true,
                false,
                Some(Shared {
                    members: HashMap::new(),
                    init: Init::NotYet,
                    initialized_sent: false,
                    asked: HashMap::new(),
                    left,
                }),
            ),
        };
        let up = Upstream {
            pipeline: backend.pipeline(),
            backend,
            st,
            multiplex,
            stateless,
            shared,
            pending: HashMap::new(),
            next_id: 0,
            seq: 0,
            stream: Stream::default(),
            outbox: Vec::new(),
            input_open: true,
            owner,
            label,
        };
        tokio::spawn(async move {
            let (ended, up) = up.run(rx, stdout, stdin, idle).await;
            let why = tokio::task::spawn_blocking(stop)
                .await
                .unwrap_or_else(|e| format!("server status unknown: {e}"));
            up.backend.event(
                Event::new(AuditKind::Exit, up.backend.name()).detail(format!(
                    "{} ({}): {why}",
                    up.label,
                    match ended {
                        Ended::Closed => "session closed",
                        Ended::ServerGone => "server exited",
                        Ended::Idle => "idle timeout",
                    }
                )),
            );
            on_end(ended);
        });
        Ok(tx)
    }

    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Cmd>,
        mut out: Box<dyn AsyncRead + Send + Unpin>,
        mut input: Box<dyn AsyncWrite + Send + Unpin>,
        idle: Duration,
    ) -> (Ended, Upstream) {
        let max = self.pipeline.policy().limits.max_message_bytes;
        let mut framer = Framer::new(max);
        let mut buf = vec![0u8; READ_CHUNK];
        let mut last_active = Instant::now();
        let ended = loop {
            let deadline = self.pipeline.next_deadline(&self.st);
            let quiet = self.pending.is_empty()
                && match &self.shared {
                    // A shared process stays while it has sessions; each session idles on its own.
                    Some(sh) => sh.members.is_empty(),
                    None => !self.stream.is_open(),
                };
            let idle_at = quiet.then(|| last_active + idle);
            let member_idle_at = self
                .shared
                .as_ref()
                .and_then(|sh| sh.members.values().map(|m| m.last_active + idle).min());
            tokio::select! {
                cmd = cmds.recv() => {
                    last_active = Instant::now();
                    match cmd {
                        None | Some(Cmd::Close) => break Ended::Closed,
                        Some(c) => self.on_cmd(c),
                    }
                }
                n = out.read(&mut buf) => {
                    last_active = Instant::now();
                    match n {
                        Ok(0) | Err(_) => {
                            framer.finish();
                            self.pump(&mut framer);
                            break Ended::ServerGone;
                        }
                        Ok(n) => {
                            framer.push(&buf[..n]);
                            self.pump(&mut framer);
                        }
                    }
                }
                w = input.write(&self.outbox), if self.input_open && !self.outbox.is_empty() => {
                    match w {
                        Ok(0) | Err(_) => {
                            // The server closed its input: what it was sent is lost; its answers (or
                            // its exit) still arrive on the other side.
                            self.input_open = false;
                            self.outbox.clear();
                        }
                        Ok(n) => {
                            self.outbox.drain(..n);
                        }
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() => self.expire(),
                () = sleep_until(idle_at), if idle_at.is_some() => break Ended::Idle,
                () = sleep_until(member_idle_at), if member_idle_at.is_some() => {
                    self.expire_members(idle);
                }
            }
        };
        // Deliver what is still queued, then close the server's input (its cue to exit), bounded: a server
        // that stopped reading must not hold the session open. Then answer whatever still waits.
        if self.input_open {
            let queued = std::mem::take(&mut self.outbox);
            let _ = tokio::time::timeout(FLUSH_GRACE, async {
                if !queued.is_empty() {
                    input.write_all(&queued).await?;
                }
                input.shutdown().await
            })
            .await;
        }
        self.input_open = false;
        drop(input);
        let why = match ended {
            Ended::Closed => "the session was closed",
            Ended::ServerGone => "the server exited",
            Ended::Idle => "the session was idle",
        };
        let out = self.pipeline.server_gone(&mut self.st, why, Instant::now());
        self.record(&out.notes, None);
        for m in &out.to_client {
            self.route_own(m);
        }
        (ended, self)
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Client {
                msg,
                principal,
                params,
                session,
                reply,
            } => {
                if let Some(m) = self.member(session) {
                    m.last_active = Instant::now();
                }
                self.client_message(msg, principal, params, session, reply);
            }
            Cmd::Listen {
                tx,
                opened,
                session,
            } => {
                let stream = match self.member(session) {
                    Some(m) => &mut m.stream,
                    None => &mut self.stream,
                };
                let _ = opened.send(stream.open(tx));
            }
            Cmd::Abandon { key } => self.abandon(key),
            Cmd::Leave { session } => self.leave(session),
            Cmd::Close => {}
        }
    }

    /// The member `session` of a shared process (added on first use).
    fn member(&mut self, session: Option<u64>) -> Option<&mut Member> {
        let sh = self.shared.as_mut()?;
        Some(sh.members.entry(session?).or_insert_with(|| Member {
            stream: Stream::default(),
            last_active: Instant::now(),
        }))
    }

    fn client_message(
        &mut self,
        msg: Message,
        principal: Arc<Principal>,
        params: Vec<(String, String)>,
        session: Option<u64>,
        reply: Option<Reply>,
    ) {
        let now = Instant::now();
        let Some((msg, reply)) = self.shared_first(msg, &principal, session, reply) else {
            return;
        };
        let Some(msg) = self.translate(msg, &principal, session) else {
            return;
        };
        // The request this message is (its upstream id) and whether it is a duplicate in flight.
        let mut direct: Option<(Id, mpsc::Sender<Frame>, bool)> = None;
        let msg = match (msg.kind().clone(), reply) {
            (Kind::Request { id, method }, Some(reply)) => {
                let progress = msg
                    .params()
                    .and_then(|p| p.get("_meta"))
                    .and_then(|m| m.get("progressToken"))
                    .cloned();
                let (msg, up_id, client_id) = if self.multiplex {
                    if self.shared.is_some()
                        && self
                            .pending
                            .values()
                            .any(|p| p.session == session && p.client_id == Some(id.to_value()))
                    {
                        // What the pipeline refuses on a per-session process, where ids are the client's.
                        push(
                            &reply.tx,
                            Frame {
                                bytes: Bytes::from(error_response(
                                    Some(&id),
                                    palisade_mcp::error_codes::INVALID_REQUEST,
                                    "palisade: request id is already in use by a request in flight; use a new id",
                                )),
                                last: true,
                            },
                        );
                        return;
                    }
                    self.next_id += 1;
                    let up = Value::String(format!("palisade-http-{}", self.next_id));
                    let mut bytes = ids::with_id(msg.raw(), &up);
                    // The progress token is the upstream id too: unique, and restored on the way back.
                    if progress.is_some() {
                        bytes = bytes
                            .and_then(|b| splice(&b, &["params", "_meta", "progressToken"], &up));
                    }
                    let Some(m) = bytes.and_then(|b| Message::parse(&b).ok()) else {
                        return;
                    };
                    let up_id = Id::from_value(&up).unwrap_or_else(|| id.clone());
                    (m, up_id, Some(id.to_value()))
                } else {
                    (msg, id.clone(), None)
                };
                if method == "initialize"
                    && let Some(sh) = &mut self.shared
                {
                    sh.init = Init::InFlight {
                        up_id: up_id.clone(),
                        waiting: Vec::new(),
                    };
                }
                let dup = self.pending.contains_key(&up_id);
                // 2026-07-28: mirrored `Mcp-Param-*` headers must equal the arguments the server gets.
                let check_params = self.stateless && method == "tools/call";
                if check_params && let Err(refusal) = self.param_check(&msg, &params) {
                    self.header_mismatch(&principal, &refusal.message);
                    push(
                        &reply.tx,
                        Frame {
                            bytes: Bytes::from(
                                ids::with_id(&refusal_bytes(&up_id, &refusal), &id.to_value())
                                    .unwrap_or_default(),
                            ),
                            last: true,
                        },
                    );
                    return;
                }
                if !dup {
                    self.seq += 1;
                    self.pending.insert(
                        up_id.clone(),
                        Pending {
                            tx: reply.tx.clone(),
                            key: reply.key,
                            client_id,
                            principal: principal.clone(),
                            progress,
                            method,
                            seq: self.seq,
                            params: check_params.then_some(params),
                            session,
                        },
                    );
                }
                direct = Some((up_id, reply.tx, dup));
                msg
            }
            (_, _) => msg,
        };
        let out = self.pipeline.on_client(&msg, &mut self.st, now);
        self.after_decision(&out, Some(&principal));
        self.deliver(Direction::ToServer, msg.raw(), &out, direct.as_ref());
    }

    /// On a process shared by sessions: the one initialization. A later session's `initialize` is
    /// answered from the server's recorded result (or waits for it), and only the first
    /// `notifications/initialized` reaches the server. `None` when the message was handled here.
    fn shared_first(
        &mut self,
        msg: Message,
        principal: &Arc<Principal>,
        session: Option<u64>,
        reply: Option<Reply>,
    ) -> Option<(Message, Option<Reply>)> {
        let Some(sh) = &mut self.shared else {
            return Some((msg, reply));
        };
        match (msg.kind(), reply) {
            (Kind::Request { id, method }, Some(reply)) if method == "initialize" => {
                let asked = msg
                    .params()
                    .and_then(|p| p.get("protocolVersion"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let waiter = Waiter {
                    id: id.clone(),
                    asked,
                    tx: reply.tx.clone(),
                    principal: principal.clone(),
                    session,
                };
                match &mut sh.init {
                    Init::NotYet => return Some((msg, Some(reply))),
                    Init::InFlight { waiting, .. } => waiting.push(waiter),
                    Init::Done { result, version } => {
                        let (result, version) = (result.clone(), version.clone());
                        self.answer_initialize(waiter, &result, &version);
                    }
                }
                None
            }
            (Kind::Notification { method }, reply) if method == "notifications/initialized" => {
                if matches!(sh.init, Init::Done { .. }) && !sh.initialized_sent {
                    sh.initialized_sent = true;
                    return Some((msg, reply));
                }
                // The server was told already; a session's own is not news to it.
                None
            }
            (Kind::Response { id, .. }, reply) => {
                let to = id.as_ref().and_then(|i| sh.asked.get(i)).copied();
                if to.is_some() && to == session {
                    if let Some(i) = id {
                        sh.asked.remove(i);
                    }
                    return Some((msg, reply));
                }
                // An answer to a request the server sent to another session (or to none).
                let mut ev = Event::new(AuditKind::Policy, self.backend.name())
                    .decision(palisade_audit::Decision::Deny)
                    .reason("foreign-response")
                    .detail(format!(
                        "a response to server request {} from a session it was not sent to; dropped",
                        id.as_ref().map_or("null".to_owned(), ToString::to_string)
                    ));
                ev.client = Some(principal.name.clone());
                ev.status = Some(palisade_audit::Status::Denied);
                self.backend.event(ev);
                None
            }
            (_, reply) => Some((msg, reply)),
        }
    }

    /// Answers a later session's `initialize` from the shared process's result: the server's protocol
    /// version when the client asked for it or for a later one (the client then accepts it or
    /// disconnects, as in any version negotiation); a clear refusal when the client asked for an earlier
    /// version, which the process cannot switch to.
    fn answer_initialize(&mut self, w: Waiter, result: &Value, version: &str) {
        let fits = w.asked.as_deref().is_some_and(|a| a >= version);
        let bytes = if fits {
            serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": w.id.to_value(), "result": result}))
                .unwrap_or_default()
        } else {
            let asked = w.asked.as_deref().unwrap_or("(none)");
            serde_json::to_vec(&json!({
                "jsonrpc": "2.0",
                "id": w.id.to_value(),
                "error": {
                    "code": palisade_mcp::error_codes::INVALID_PARAMS,
                    "message": format!(
                        "Unsupported protocol version: this server's process is shared by every session \
                         and speaks {version} (negotiated by its first session); the client asked for \
                         {asked}. Use a client that supports {version}, or process = \"per-session\" \
                         for this server"
                    ),
                    "data": {"supported": [version], "requested": w.asked},
                },
            }))
            .unwrap_or_default()
        };
        let note = Note {
            kind: palisade_guard::NoteKind::Request,
            direction: Direction::ToClient,
            method: Some("initialize".into()),
            tool: None,
            id: Some(w.id.clone()),
            args: None,
            decision: if fits {
                palisade_guard::Decision::Allow
            } else {
                palisade_guard::Decision::Deny
            },
            reason: (!fits).then_some("protocol-version"),
            detail: Some(format!(
                "answered by palisade from the shared process's initialize result (protocol {version})"
            )),
            status: Some(if fits {
                palisade_guard::Status::Ok
            } else {
                palisade_guard::Status::Denied
            }),
            duration: None,
        };
        self.record(&[note], Some(&w.principal));
        push(
            &w.tx,
            Frame {
                bytes: Bytes::from(bytes),
                last: true,
            },
        );
    }

    /// On a multiplexed process: a client's `notifications/cancelled` names its own request by its own
    /// id. Translated to the upstream id of that client's request (same session, or for stateless
    /// requests the same principal), or dropped: forwarded as sent it could cancel another's request.
    fn translate(
        &mut self,
        msg: Message,
        principal: &Principal,
        session: Option<u64>,
    ) -> Option<Message> {
        if !self.multiplex || msg.method() != Some("notifications/cancelled") {
            return Some(msg);
        }
        let asked = msg.params().and_then(|p| p.get("requestId"))?.clone();
        let up = self.pending.iter().find_map(|(up, p)| {
            let mine = match session {
                Some(_) => p.session == session,
                None => p.principal.key == principal.key,
            };
            (mine && p.client_id.as_ref() == Some(&asked)).then(|| up.to_value())
        })?;
        let bytes = splice(msg.raw(), &["params", "requestId"], &up)?;
        Message::parse(&bytes).ok()
    }

    /// The client closed a stream before its response: in the stateless era that cancels the request.
    fn abandon(&mut self, key: u64) {
        let Some(up_id) = self
            .pending
            .iter()
            .find(|(_, p)| p.key == key)
            .map(|(id, _)| id.clone())
        else {
            return;
        };
        let Some(p) = self.pending.remove(&up_id) else {
            return;
        };
        if !self.stateless {
            // 2025-11-25: a disconnect is not a cancellation; the response, when it comes, is dropped.
            return;
        }
        let cancel = json!({
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": up_id.to_value(), "reason": "the client closed the response stream"},
        });
        let Ok(msg) = Message::from_value(cancel) else {
            return;
        };
        let out = self.pipeline.on_client(&msg, &mut self.st, Instant::now());
        self.after_decision(&out, Some(&p.principal));
        self.deliver(Direction::ToServer, msg.raw(), &out, None);
    }

    /// Decides, records and delivers every complete message from the server.
    fn pump(&mut self, framer: &mut Framer) {
        while let Some(ev) = framer.next_event() {
            let now = Instant::now();
            let (out, raw): (Outcome, &[u8]) = match ev {
                ReadEvent::Eof => break,
                ReadEvent::TooLong { len, id } => (
                    self.pipeline
                        .too_long(Direction::ToClient, len, id.as_ref(), &mut self.st),
                    &[],
                ),
                ReadEvent::Line(line) => match Message::parse(line) {
                    Ok(msg) => {
                        let principal = self.principal_for(msg.id());
                        let out = self.pipeline.on_server(&msg, &mut self.st, now);
                        self.after_decision(&out, principal.as_ref());
                        let forwarded = match &out.forward {
                            Forward::Original => Some(msg.raw().to_vec()),
                            Forward::Rewritten(b) => Some(b.clone()),
                            Forward::No => None,
                        };
                        if let Some(bytes) = forwarded {
                            self.route(bytes, msg.kind());
                        }
                        for m in &out.to_server {
                            self.send_server(m);
                        }
                        for m in &out.to_client {
                            self.route_own(m);
                        }
                        self.release_deferred();
                        continue;
                    }
                    Err(e) => (self.pipeline.server_frame_error(&e), line),
                },
            };
            self.after_decision(&out, None);
            self.deliver(Direction::ToClient, raw, &out, None);
            self.release_deferred();
        }
    }

    fn principal_for(&self, id: Option<&Id>) -> Option<Arc<Principal>> {
        id.and_then(|i| self.pending.get(i))
            .map(|p| p.principal.clone())
            .or_else(|| self.owner.clone())
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
            let principal = self.principal_for(msg.id());
            let held = msg
                .id()
                .and_then(|i| self.pending.get(i))
                .and_then(|p| p.params.clone());
            if let (Some(params), Some(id)) = (held, msg.id().cloned())
                && let Err(refusal) = self.param_check(&msg, &params)
            {
                if let Some(p) = &principal {
                    self.header_mismatch(p, &refusal.message);
                }
                self.route_own(&refusal_bytes(&id, &refusal));
                continue;
            }
            let out = self
                .pipeline
                .on_client_retry(&msg, &mut self.st, Instant::now());
            self.after_decision(&out, principal.as_ref());
            self.deliver(Direction::ToServer, &raw, &out, None);
        }
    }

    /// Fires call timeouts whose deadline passed.
    fn expire(&mut self) {
        let now = Instant::now();
        if self
            .pipeline
            .next_deadline(&self.st)
            .is_none_or(|d| d > now)
        {
            return;
        }
        let out = self.pipeline.expire(&mut self.st, now);
        self.after_decision(&out, None);
        self.deliver(Direction::ToClient, &[], &out, None);
        self.release_deferred();
    }

    /// Records the notes and saves pins; called before anything of the outcome is released.
    fn after_decision(&mut self, out: &Outcome, principal: Option<&Arc<Principal>>) {
        if self.st.pins_dirty {
            self.st.pins_dirty = false;
            self.backend.save_pins(&self.st);
        }
        self.record(&out.notes, principal);
    }

    fn record(&self, notes: &[Note], principal: Option<&Arc<Principal>>) {
        let client = principal.or(self.owner.as_ref()).map(|p| p.name.as_str());
        for n in notes {
            self.backend.record(client, n);
        }
    }

    /// Delivers an outcome: the message itself to the other side, then palisade's own messages. Replies
    /// palisade makes to the request being decided (refusals, duplicate ids) go straight to its stream.
    fn deliver(
        &mut self,
        dir: Direction,
        raw: &[u8],
        out: &Outcome,
        direct: Option<&(Id, mpsc::Sender<Frame>, bool)>,
    ) {
        let forwarded: Option<&[u8]> = match &out.forward {
            Forward::Original => Some(raw),
            Forward::Rewritten(b) => Some(b),
            Forward::No => None,
        };
        if let Some(bytes) = forwarded {
            match dir {
                Direction::ToServer => self.send_server(bytes),
                Direction::ToClient => self.route_own(bytes),
            }
        }
        for m in &out.to_server {
            self.send_server(m);
        }
        for m in &out.to_client {
            if let Some((id, tx, dup)) = direct
                && response_id(m).as_ref() == Some(id)
            {
                let entry = if *dup { None } else { self.pending.remove(id) };
                let bytes = match entry.as_ref().and_then(|p| p.client_id.as_ref()) {
                    Some(cid) => ids::with_id(m, cid).unwrap_or_else(|| m.clone()),
                    None => m.clone(),
                };
                push(
                    tx,
                    Frame {
                        bytes: Bytes::from(bytes),
                        last: true,
                    },
                );
                continue;
            }
            self.route_own(m);
        }
    }

    fn send_server(&mut self, bytes: &[u8]) {
        if self.input_open {
            self.outbox.extend_from_slice(bytes);
            self.outbox.push(b'\n');
        }
    }

    /// Routes a message palisade built (or rewrote): classify it first.
    fn route_own(&mut self, bytes: &[u8]) {
        match Message::parse(bytes) {
            Ok(m) => {
                let kind = m.kind().clone();
                self.route(bytes.to_vec(), &kind);
            }
            Err(_) => self.standalone(Bytes::copy_from_slice(bytes)),
        }
    }

    /// Sends a message bound for the client to the stream it belongs on.
    fn route(&mut self, bytes: Vec<u8>, kind: &Kind) {
        match kind {
            Kind::Response { id, .. } => {
                if let Some(i) = id {
                    self.initialized(i, &bytes);
                }
                let Some(p) = id.as_ref().and_then(|i| self.pending.remove(i)) else {
                    // Nobody waits for it any more (the client went away); the pipeline recorded it.
                    return;
                };
                let mut bytes = bytes;
                if p.method == "tools/list" && !p.principal.scopes.whole_server(self.backend.name())
                {
                    bytes =
                        filter_tools(&bytes, &p.principal, self.backend.name()).unwrap_or(bytes);
                }
                if let Some(cid) = &p.client_id {
                    bytes = ids::with_id(&bytes, cid).unwrap_or(bytes);
                }
                push(
                    &p.tx,
                    Frame {
                        bytes: Bytes::from(bytes),
                        last: true,
                    },
                );
            }
            Kind::Notification { method } if method == "notifications/progress" => {
                let token = Message::parse(&bytes)
                    .ok()
                    .and_then(|m| m.params().and_then(|p| p.get("progressToken")).cloned());
                let target = token.and_then(|t| {
                    if self.multiplex {
                        // The token is the request's upstream id: restore the client's own.
                        let p = self.pending.get(&Id::from_value(&t)?)?;
                        let restored =
                            splice(&bytes, &["params", "progressToken"], p.progress.as_ref()?)?;
                        Some((p.tx.clone(), restored))
                    } else {
                        self.pending
                            .values()
                            .find(|p| p.progress.as_ref() == Some(&t))
                            .map(|p| (p.tx.clone(), bytes.clone()))
                    }
                });
                match target {
                    Some((tx, bytes)) => {
                        push(
                            &tx,
                            Frame {
                                bytes: Bytes::from(bytes),
                                last: false,
                            },
                        );
                    }
                    // Progress of a request nobody waits for: on a multiplexed process it belongs to
                    // one client, so it goes to no other.
                    None if self.multiplex => {}
                    None => self.standalone(Bytes::from(bytes)),
                }
            }
            Kind::Notification { .. } if let Some((tx, bytes)) = self.subscription(&bytes) => {
                push(
                    &tx,
                    Frame {
                        bytes: Bytes::from(bytes),
                        last: false,
                    },
                );
            }
            Kind::Request { .. } | Kind::Notification { .. } => {
                let related = match kind {
                    Kind::Request { .. } => true,
                    Kind::Notification { method } => method == "notifications/message",
                    Kind::Response { .. } => false,
                };
                let latest = related
                    .then(|| {
                        self.pending
                            .values()
                            .filter(|p| !p.tx.is_closed())
                            .max_by_key(|p| p.seq)
                            .map(|p| (p.tx.clone(), p.session))
                    })
                    .flatten();
                match (latest, kind) {
                    (Some((tx, session)), _) => {
                        if let (Kind::Request { id, .. }, Some(sh), Some(to)) =
                            (kind, &mut self.shared, session)
                        {
                            sh.asked.insert(id.clone(), to);
                        }
                        push(
                            &tx,
                            Frame {
                                bytes: Bytes::from(bytes),
                                last: false,
                            },
                        );
                    }
                    (None, Kind::Request { id, method }) if self.shared.is_some() => {
                        self.refuse_server_request(
                            id,
                            &format!(
                                "palisade: no client can answer {method}: this server's process is shared by several sessions and none has a request in flight"
                            ),
                        );
                    }
                    (None, _) => self.standalone(Bytes::from(bytes)),
                }
            }
        }
    }

    /// Records the shared process's `initialize` result when `id` is its request, and answers the
    /// sessions waiting for it.
    fn initialized(&mut self, id: &Id, bytes: &[u8]) {
        let Some(sh) = &mut self.shared else { return };
        let Init::InFlight { up_id, .. } = &sh.init else {
            return;
        };
        if up_id != id {
            return;
        }
        let Init::InFlight { waiting, .. } = std::mem::replace(&mut sh.init, Init::NotYet) else {
            return;
        };
        let result = Message::parse(bytes)
            .ok()
            .and_then(|m| m.result().cloned())
            .and_then(|r| {
                let r = Value::Object(r);
                let v = r.get("protocolVersion")?.as_str()?.to_owned();
                Some((r, v))
            });
        match result {
            Some((result, version)) => {
                sh.init = Init::Done {
                    result: result.clone(),
                    version: version.clone(),
                };
                for w in waiting {
                    self.answer_initialize(w, &result, &version);
                }
            }
            None => {
                // The server refused it: the sessions that waited get its answer, and the next
                // `initialize` tries again.
                for w in waiting {
                    let b = ids::with_id(bytes, &w.id.to_value()).unwrap_or_default();
                    push(
                        &w.tx,
                        Frame {
                            bytes: Bytes::from(b),
                            last: true,
                        },
                    );
                }
            }
        }
    }

    /// Answers a server request palisade cannot deliver, so the server does not wait for it forever.
    fn refuse_server_request(&mut self, id: &Id, why: &str) {
        let Ok(msg) = Message::parse(&error_response(
            Some(id),
            palisade_mcp::error_codes::INTERNAL_ERROR,
            why,
        )) else {
            return;
        };
        let out = self.pipeline.on_client(&msg, &mut self.st, Instant::now());
        self.after_decision(&out, None);
        self.deliver(Direction::ToServer, msg.raw(), &out, None);
    }

    /// A session of a shared process ended: its requests in flight are cancelled at the server, server
    /// requests sent to it are answered with an error, and its stream closes. The process goes on.
    fn leave(&mut self, session: u64) {
        let Some(sh) = &mut self.shared else { return };
        sh.members.remove(&session);
        if let Init::InFlight { waiting, .. } = &mut sh.init {
            waiting.retain(|w| w.session != Some(session));
        }
        let asked: Vec<Id> = sh
            .asked
            .iter()
            .filter(|(_, s)| **s == session)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &asked {
            sh.asked.remove(id);
        }
        for id in &asked {
            self.refuse_server_request(id, "palisade: the session this request went to has ended");
        }
        let mine: Vec<Id> = self
            .pending
            .iter()
            .filter(|(_, p)| p.session == Some(session))
            .map(|(id, _)| id.clone())
            .collect();
        for up_id in mine {
            let Some(p) = self.pending.remove(&up_id) else {
                continue;
            };
            if p.method == "initialize" {
                // Never cancelled (the spec forbids it); its result is still recorded for the others.
                continue;
            }
            let cancel = json!({
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": up_id.to_value(), "reason": "the client's session ended"},
            });
            let Ok(msg) = Message::from_value(cancel) else {
                continue;
            };
            let out = self.pipeline.on_client(&msg, &mut self.st, Instant::now());
            self.after_decision(&out, Some(&p.principal));
            self.deliver(Direction::ToServer, msg.raw(), &out, None);
        }
    }

    /// Ends the sessions of a shared process that were idle for `idle` (nothing in flight, no open
    /// stream), and tells the gateway.
    fn expire_members(&mut self, idle: Duration) {
        let now = Instant::now();
        let Some(sh) = &mut self.shared else { return };
        let due: Vec<u64> = sh
            .members
            .iter()
            .filter(|(_, m)| m.last_active + idle <= now)
            .map(|(s, _)| *s)
            .collect();
        for s in due {
            let busy = self.pending.values().any(|p| p.session == Some(s));
            let Some(sh) = &mut self.shared else { return };
            let Some(m) = sh.members.get_mut(&s) else {
                continue;
            };
            if busy || m.stream.is_open() {
                m.last_active = now;
                continue;
            }
            (sh.left)(s);
            self.leave(s);
        }
    }

    /// A notification for a `subscriptions/listen` stream (2026-07-28): its `_meta` names the listen
    /// request by the id the server saw. Returns that request's stream and the notification with the
    /// client's own id as the subscription id.
    fn subscription(&self, bytes: &[u8]) -> Option<(mpsc::Sender<Frame>, Vec<u8>)> {
        if !bytes
            .windows(SUBSCRIPTION_ID.len())
            .any(|w| w == SUBSCRIPTION_ID.as_bytes())
        {
            return None;
        }
        let mut v: Value = serde_json::from_slice(bytes).ok()?;
        let sid = v.get("params")?.get("_meta")?.get(SUBSCRIPTION_ID)?.clone();
        let p = self.pending.iter().find_map(|(id, p)| {
            let idv = id.to_value();
            (idv == sid || sid.as_str() == Some(idv.to_string().as_str())).then_some(p)
        })?;
        if let Some(cid) = &p.client_id {
            let client_sid = match cid {
                Value::String(s) => Value::String(s.clone()),
                other => Value::String(other.to_string()),
            };
            v["params"]["_meta"][SUBSCRIPTION_ID] = client_sid;
        }
        Some((p.tx.clone(), serde_json::to_vec(&v).ok()?))
    }

    /// A message for the standalone stream: the session's (per session), every session's (shared), or
    /// nobody's (stateless: there are no sessions).
    fn standalone(&mut self, bytes: Bytes) {
        if self.stateless {
            return;
        }
        match &mut self.shared {
            Some(sh) => {
                for m in sh.members.values_mut() {
                    m.stream.offer(bytes.clone());
                }
            }
            None => self.stream.offer(bytes),
        }
    }
}

impl Upstream {
    /// Checks the `Mcp-Param-*` headers of a `tools/call` against the tool's `x-mcp-header`
    /// annotations, when palisade knows the tool (otherwise the call is held by the pipeline until the
    /// tools are listed, and checked when released).
    fn param_check(
        &self,
        msg: &Message,
        params: &[(String, String)],
    ) -> Result<(), headers::Refusal> {
        let Some(tool) = msg.tool_name() else {
            return Ok(());
        };
        let Some(entry) = self.st.tools.get(tool) else {
            return Ok(());
        };
        let args = msg.params().and_then(|p| p.get("arguments"));
        headers::check_param_headers(&entry.def, args, params)
    }

    fn header_mismatch(&self, principal: &Principal, detail: &str) {
        let mut ev = Event::new(AuditKind::Policy, self.backend.name())
            .method("tools/call")
            .decision(palisade_audit::Decision::Deny)
            .reason("header-mismatch")
            .detail(palisade_audit::redact_str(detail).into_owned());
        ev.client = Some(principal.name.clone());
        ev.status = Some(palisade_audit::Status::Denied);
        self.backend.event(ev);
    }
}

fn refusal_bytes(id: &Id, r: &headers::Refusal) -> Vec<u8> {
    error_response(Some(id), r.code, &r.message)
}

/// Queues a frame for a client stream without blocking the task. A client that stops reading loses
/// notifications once its buffer ([`STREAM_BUFFER`]) is full, but never the response that completes its
/// request: that one waits for room.
fn push(tx: &mpsc::Sender<Frame>, frame: Frame) {
    match tx.try_send(frame) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(f)) if f.last => {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(f).await;
            });
        }
        Err(_) => {}
    }
}

/// The id of a response palisade built, if it is one.
fn response_id(bytes: &[u8]) -> Option<Id> {
    let m = Message::parse(bytes).ok()?;
    match m.kind() {
        Kind::Response { id, .. } => id.clone(),
        _ => None,
    }
}

/// A `tools/list` result with the tools `principal` may not call removed.
fn filter_tools(bytes: &[u8], principal: &Principal, server: &str) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(bytes).ok()?;
    let tools = v.get_mut("result")?.get_mut("tools")?.as_array_mut()?;
    tools.retain(|t| {
        t.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| principal.scopes.tool(server, n))
    });
    serde_json::to_vec(&v).ok()
}

/// `raw` (a JSON object that passed strict parsing) with the member at `path` replaced by `value`; every
/// other member keeps its exact bytes, as in [`ids::with_id`]. `None` if the path does not exist.
fn splice(raw: &[u8], path: &[&str], value: &Value) -> Option<Vec<u8>> {
    let (first, rest) = path.split_first()?;
    let members: BTreeMap<String, &RawValue> = serde_json::from_slice(raw).ok()?;
    let mut out = Vec::with_capacity(raw.len() + 16);
    out.push(b'{');
    let mut found = false;
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&serde_json::to_vec(k).ok()?);
        out.push(b':');
        if k == first {
            found = true;
            if rest.is_empty() {
                out.extend_from_slice(&serde_json::to_vec(value).ok()?);
            } else {
                out.extend_from_slice(&splice(v.get().as_bytes(), rest, value)?);
            }
        } else {
            out.extend_from_slice(v.get().as_bytes());
        }
    }
    out.push(b'}');
    found.then_some(out)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Copies the server's stderr to palisade's, one prefixed line at a time, secrets masked.
async fn copy_stderr(name: String, err: tokio::process::ChildStderr) {
    let mut lines = BufReader::new(err).split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        let text = String::from_utf8_lossy(&line);
        eprintln!("[{name}] {}", palisade_audit::redact_str(&text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_one_nested_member_and_keeps_the_rest_byte_for_byte() {
        let raw = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":{"progressToken":7,"x":1.50},"n":1.50}}"#;
        let out = splice(
            raw,
            &["params", "_meta", "progressToken"],
            &json!("palisade-http-3"),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""_meta":{"progressToken":"palisade-http-3","x":1.50}"#),
            "{text}"
        );
        assert!(text.contains(r#""n":1.50"#), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["id"], 1);
    }

    #[test]
    fn splice_refuses_a_path_that_is_not_there() {
        let raw = br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{}}"#;
        assert!(splice(raw, &["params", "requestId"], &json!(1)).is_none());
        assert!(splice(raw, &["result", "x"], &json!(1)).is_none());
        assert!(splice(b"[1]", &["id"], &json!(1)).is_none());
    }
}
