//! The ordered guard pipeline and the session bookkeeping around it.
//!
//! # Order (security policy: cheap, deny-early checks first)
//! For a `tools/call` from the client:
//! 1. [`ToolAccess`](crate::guards::ToolAccess): policy allow/deny, tool listed, pin approved, list not stale.
//! 2. [`Arguments`](crate::guards::Arguments): JSON Schema, undeclared arguments, paths, URLs, positionals.
//! 3. [`Limits`](crate::guards::Limits): concurrency and rate (last, so refused calls spend no tokens).
//!
//! The first refusal wins. Everything else the client sends is forwarded after bookkeeping (request ids,
//! era, cancellations). From the server, responses to ids nobody asked for are dropped, `tools/list`
//! results are filtered through [`classify_tool`](crate::guards::classify_tool), and
//! `notifications/tools/list_changed` marks the tool list stale and makes palisade re-list the tools itself.
//!
//! The pipeline never performs I/O: it returns an [`Outcome`] saying what to forward, what to send to each
//! side, and what to record in the audit trail.

use palisade_mcp::{FrameError, Id, Kind, Message, era::Era, error_codes, error_response};
use palisade_policy::Policy;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::DenyReason;
use crate::guard::{Call, Guard};
use crate::guards::{Arguments, Limits, ToolAccess, classify_tool};
use crate::state::{InFlight, SessionState, ToolEntry, ToolStatus};

/// How many `tools/call` requests may be held while palisade lists the server's tools.
pub const MAX_DEFERRED: usize = 64;

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// What happens to the message that was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// Forward the original bytes.
    Original,
    /// Forward these bytes instead.
    Rewritten(Vec<u8>),
    /// Do not forward.
    No,
}

/// The audit category of a note (mapped to the audit event `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// A `tools/call`.
    Call,
    /// A `*/list` request.
    List,
    /// Any other request.
    Request,
    /// A notification.
    Notify,
    /// A pin was recorded or a tool blocked by its pin.
    Pin,
    /// A tool hidden by the tool policy.
    Policy,
    /// A protocol error (malformed or unsolicited message).
    Error,
}

/// The decision recorded for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Forwarded unchanged.
    Allow,
    /// Refused or dropped.
    Deny,
    /// Forwarded with changes.
    Rewrite,
}

/// How an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The server answered with a result.
    Ok,
    /// The server answered with an error (or a tool result with `isError`).
    Error,
    /// palisade refused it.
    Denied,
    /// palisade gave up waiting.
    Timeout,
}

/// One thing worth recording in the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// Category.
    pub kind: NoteKind,
    /// Direction of the message the note is about.
    pub direction: Direction,
    /// JSON-RPC method (for responses: the method of the request).
    pub method: Option<String>,
    /// Tool name, when it concerns one tool.
    pub tool: Option<String>,
    /// JSON-RPC id.
    pub id: Option<Id>,
    /// Tool arguments (not yet redacted: the audit writer redacts).
    pub args: Option<Value>,
    /// Decision.
    pub decision: Decision,
    /// Stable reason id ([`DenyReason::id`] or a pipeline reason such as `unsolicited-response`).
    pub reason: Option<&'static str>,
    /// Human-readable detail.
    pub detail: Option<String>,
    /// How the exchange ended (absent while the request is still in flight).
    pub status: Option<Status>,
    /// Time from forwarding the request to its response.
    pub duration: Option<Duration>,
}

impl Note {
    fn new(kind: NoteKind, direction: Direction, decision: Decision) -> Note {
        Note {
            kind,
            direction,
            method: None,
            tool: None,
            id: None,
            args: None,
            decision,
            reason: None,
            detail: None,
            status: None,
            duration: None,
        }
    }
}

/// What the driver must do after the pipeline looked at one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// What to do with the message itself (it goes on to the other side).
    pub forward: Forward,
    /// Messages palisade sends to the client (after the forwarded one, if it goes to the client).
    pub to_client: Vec<Vec<u8>>,
    /// Messages palisade sends to the server (after the forwarded one, if it goes to the server).
    pub to_server: Vec<Vec<u8>>,
    /// Audit notes, in order.
    pub notes: Vec<Note>,
}

impl Outcome {
    fn forward(note: Option<Note>) -> Outcome {
        Outcome {
            forward: Forward::Original,
            to_client: Vec::new(),
            to_server: Vec::new(),
            notes: note.into_iter().collect(),
        }
    }
    fn dropped(note: Note) -> Outcome {
        Outcome {
            forward: Forward::No,
            to_client: Vec::new(),
            to_server: Vec::new(),
            notes: vec![note],
        }
    }
}

/// The compiled, ordered guard pipeline for one server.
pub struct Pipeline {
    policy: Arc<Policy>,
    guards: Vec<Box<dyn Guard>>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.guards.iter().map(|g| g.name()).collect();
        f.debug_struct("Pipeline").field("guards", &names).finish()
    }
}

impl Pipeline {
    /// Builds the pipeline in its documented order from a compiled policy and the server's working
    /// directory (relative path arguments are resolved against it).
    pub fn new(policy: Arc<Policy>, server_cwd: std::path::PathBuf) -> Pipeline {
        let arguments = Arguments::new(policy.clone(), server_cwd);
        let warnings = arguments.root_problems().to_vec();
        let guards: Vec<Box<dyn Guard>> = vec![
            Box::new(ToolAccess::new(policy.clone())),
            Box::new(arguments),
            Box::new(Limits::new(policy.clone())),
        ];
        Pipeline {
            policy,
            guards,
            warnings,
        }
    }

    /// Problems found while building the pipeline (e.g. allowed folders that do not exist), for the
    /// start-up banner.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The policy the pipeline enforces.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Checks one message from the client.
    pub fn on_client(&self, msg: &Message, st: &mut SessionState, now: Instant) -> Outcome {
        match msg.kind() {
            Kind::Request { id, method } => {
                let params = msg.params();
                if let Some(era) = Era::of_request(method, params) {
                    st.era = Some(era);
                    if era == Era::Stateless {
                        st.last_meta = params.and_then(|p| p.get("_meta")).cloned();
                    }
                }
                if method == "initialize" {
                    st.client_name = params
                        .and_then(|p| p.get("clientInfo"))
                        .and_then(|c| c.get("name"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
                if st.in_flight.contains_key(id) || st.deferred.iter().any(|(held, _)| held == id) {
                    let mut note = Note::new(NoteKind::Error, Direction::ToServer, Decision::Deny);
                    note.method = Some(method.clone());
                    note.id = Some(id.clone());
                    note.reason = Some("duplicate-request-id");
                    note.status = Some(Status::Denied);
                    return Outcome {
                        forward: Forward::No,
                        to_client: vec![error_response(
                            Some(id),
                            error_codes::INVALID_REQUEST,
                            "palisade: request id is already in use by a request in flight; use a new id",
                        )],
                        to_server: Vec::new(),
                        notes: vec![note],
                    };
                }
                if method == "tools/call" {
                    return self.tools_call(msg, id, st, now, true);
                }
                let first_page = params.is_none_or(|p| p.get("cursor").is_none());
                st.in_flight.insert(
                    id.clone(),
                    InFlight {
                        method: method.clone(),
                        tool: None,
                        started: now,
                        deadline: times_out(method).then(|| now + self.policy.limits.call_timeout),
                        internal: false,
                        first_page,
                    },
                );
                let kind = if method.ends_with("/list") {
                    NoteKind::List
                } else {
                    NoteKind::Request
                };
                let mut note = Note::new(kind, Direction::ToServer, Decision::Allow);
                note.method = Some(method.clone());
                note.id = Some(id.clone());
                Outcome::forward(Some(note))
            }
            Kind::Notification { method } => {
                if method == "notifications/cancelled"
                    && let Some(rid) = msg
                        .params()
                        .and_then(|p| p.get("requestId"))
                        .and_then(Id::from_value)
                {
                    if st.in_flight.get(&rid).is_some_and(|f| !f.internal)
                        && let Some(f) = st.in_flight.remove(&rid)
                        && f.tool.is_some()
                    {
                        st.calls_in_flight = st.calls_in_flight.saturating_sub(1);
                    }
                    // A call still held while palisade lists the tools is dropped: released after this
                    // notification, it would reach the server after its cancellation and run anyway.
                    st.deferred.retain(|(held, _)| *held != rid);
                }
                let mut note = Note::new(NoteKind::Notify, Direction::ToServer, Decision::Allow);
                note.method = Some(method.clone());
                Outcome::forward(Some(note))
            }
            Kind::Response { id, is_error } => {
                let known = id.as_ref().and_then(|i| st.server_requests.remove(i));
                match known {
                    Some(method) => {
                        let mut note =
                            Note::new(NoteKind::Request, Direction::ToServer, Decision::Allow);
                        note.method = Some(method);
                        note.id = id.clone();
                        note.status = Some(if *is_error { Status::Error } else { Status::Ok });
                        Outcome::forward(Some(note))
                    }
                    None => Outcome::dropped(unsolicited(Direction::ToServer, id.clone())),
                }
            }
        }
    }

    /// Re-checks a `tools/call` that was held while the tool list was refreshed (see
    /// [`Pipeline::drain_deferred`]). It is never held twice: if the list is still unknown, it is refused.
    pub fn on_client_retry(&self, msg: &Message, st: &mut SessionState, now: Instant) -> Outcome {
        match msg.kind() {
            Kind::Request { id, method } if method == "tools/call" => {
                self.tools_call(msg, id, st, now, false)
            }
            _ => self.on_client(msg, st, now),
        }
    }

    /// Held calls that can be re-checked now that no refresh of the tool list is pending.
    pub fn drain_deferred(&self, st: &mut SessionState) -> Vec<Vec<u8>> {
        if st.refresh_pending {
            return Vec::new();
        }
        std::mem::take(&mut st.deferred)
            .into_iter()
            .map(|(_, raw)| raw)
            .collect()
    }

    fn tools_call(
        &self,
        msg: &Message,
        id: &Id,
        st: &mut SessionState,
        now: Instant,
        may_defer: bool,
    ) -> Outcome {
        // A call before palisade knows the tools (or while the server says they changed) is held until
        // palisade has listed them itself, rather than refused: clients may call cached tools right away,
        // and servers may announce `list_changed` at start-up.
        if may_defer && (st.tools_stale || !st.tools_listed) && st.deferred.len() < MAX_DEFERRED {
            let mut out = Outcome {
                forward: Forward::No,
                to_client: Vec::new(),
                to_server: Vec::new(),
                notes: Vec::new(),
            };
            if !st.refresh_pending {
                out.to_server.push(self.refresh_tools(st, now));
            }
            st.deferred.push((id.clone(), msg.raw().to_vec()));
            return out;
        }
        let empty = Value::Object(Map::new());
        let params = msg.params();
        let tool = params.and_then(|p| p.get("name")).and_then(Value::as_str);
        let args = match params.and_then(|p| p.get("arguments")) {
            None | Some(Value::Null) => Ok(&empty),
            Some(v @ Value::Object(_)) => Ok(v),
            Some(_) => Err("`arguments` must be an object"),
        };
        let (tool, args) = match (tool, args) {
            (Some(t), Ok(a)) => (t, a),
            (None, _) => {
                return self.malformed(id, "tools/call", "`params.name` must be a string");
            }
            (Some(_), Err(e)) => return self.malformed(id, "tools/call", e),
        };
        let call = Call { id, tool, args };
        let verdict = self
            .guards
            .iter()
            .try_for_each(|g| g.check_call(&call, st, now));
        let mut note = Note::new(NoteKind::Call, Direction::ToServer, Decision::Allow);
        note.method = Some("tools/call".into());
        note.tool = Some(tool.to_owned());
        note.id = Some(id.clone());
        note.args = Some(args.clone());
        match verdict {
            Ok(()) => {
                st.calls_in_flight += 1;
                st.in_flight.insert(
                    id.clone(),
                    InFlight {
                        method: "tools/call".into(),
                        tool: Some(tool.to_owned()),
                        started: now,
                        deadline: Some(now + self.policy.limits.call_timeout),
                        internal: false,
                        first_page: false,
                    },
                );
                Outcome::forward(Some(note))
            }
            Err(reason) => {
                note.decision = Decision::Deny;
                note.reason = Some(reason.id());
                note.detail = Some(reason.message());
                note.status = Some(Status::Denied);
                Outcome {
                    forward: Forward::No,
                    to_client: vec![denied_tool_result(id, &reason)],
                    to_server: Vec::new(),
                    notes: vec![note],
                }
            }
        }
    }

    fn malformed(&self, id: &Id, method: &str, detail: &str) -> Outcome {
        let reason = DenyReason::MalformedParams {
            method: method.into(),
            detail: detail.into(),
        };
        let mut note = Note::new(NoteKind::Error, Direction::ToServer, Decision::Deny);
        note.method = Some(method.into());
        note.id = Some(id.clone());
        note.reason = Some(reason.id());
        note.detail = Some(reason.message());
        note.status = Some(Status::Denied);
        Outcome {
            forward: Forward::No,
            to_client: vec![error_response(
                Some(id),
                error_codes::INVALID_PARAMS,
                &format!("palisade: {}", reason.message()),
            )],
            to_server: Vec::new(),
            notes: vec![note],
        }
    }

    /// Checks one message from the server.
    pub fn on_server(&self, msg: &Message, st: &mut SessionState, now: Instant) -> Outcome {
        match msg.kind() {
            Kind::Request { id, method } => {
                st.server_requests.insert(id.clone(), method.clone());
                let mut note = Note::new(NoteKind::Request, Direction::ToClient, Decision::Allow);
                note.method = Some(method.clone());
                note.id = Some(id.clone());
                Outcome::forward(Some(note))
            }
            Kind::Notification { method } => {
                let mut out = Outcome::forward(None);
                if method == "notifications/tools/list_changed" {
                    st.tools_stale = true;
                    if !st.refresh_pending {
                        out.to_server.push(self.refresh_tools(st, now));
                    }
                } else if method == "notifications/cancelled"
                    && let Some(rid) = msg
                        .params()
                        .and_then(|p| p.get("requestId"))
                        .and_then(Id::from_value)
                {
                    st.server_requests.remove(&rid);
                }
                let mut note = Note::new(NoteKind::Notify, Direction::ToClient, Decision::Allow);
                note.method = Some(method.clone());
                out.notes.push(note);
                out
            }
            Kind::Response { id, is_error } => {
                let Some((id, flight)) = id.as_ref().and_then(|i| st.in_flight.remove_entry(i))
                else {
                    return Outcome::dropped(unsolicited(Direction::ToClient, id.clone()));
                };
                if flight.tool.is_some() {
                    st.calls_in_flight = st.calls_in_flight.saturating_sub(1);
                }
                let tool_error = msg
                    .result()
                    .and_then(|r| r.get("isError"))
                    .and_then(Value::as_bool)
                    == Some(true);
                let mut note = Note::new(
                    match flight.method.as_str() {
                        "tools/call" => NoteKind::Call,
                        m if m.ends_with("/list") => NoteKind::List,
                        _ => NoteKind::Request,
                    },
                    Direction::ToClient,
                    Decision::Allow,
                );
                note.method = Some(flight.method.clone());
                note.tool = flight.tool.clone();
                note.id = Some(id.clone());
                note.status = Some(if *is_error || tool_error {
                    Status::Error
                } else {
                    Status::Ok
                });
                note.duration = Some(now.saturating_duration_since(flight.started));
                let mut out = Outcome::forward(None);
                match flight.method.as_str() {
                    "initialize" => {
                        if let Some(v) = msg
                            .result()
                            .and_then(|r| r.get("protocolVersion"))
                            .and_then(Value::as_str)
                        {
                            st.era = Some(Era::of_version(v));
                        }
                    }
                    "tools/list" if !*is_error => {
                        out = self.filter_tools(msg, &flight, st, now);
                        if out.forward != Forward::Original && out.forward != Forward::No {
                            note.decision = Decision::Rewrite;
                        }
                    }
                    _ => {}
                }
                if flight.internal
                    && flight.method == "tools/list"
                    && (*is_error || msg.result().is_none())
                {
                    // The refresh failed: held calls are re-checked (and refused) rather than kept forever.
                    st.refresh_pending = false;
                }
                if flight.internal {
                    out.forward = Forward::No;
                    note.detail = Some("palisade's own request; not forwarded".into());
                }
                out.notes.insert(0, note);
                out
            }
        }
    }

    /// Applies tool policy and pins to a `tools/list` result; records the tools in the session.
    fn filter_tools(
        &self,
        msg: &Message,
        flight: &InFlight,
        st: &mut SessionState,
        now: Instant,
    ) -> Outcome {
        let mut out = Outcome::forward(None);
        let Some(result) = msg.result() else {
            return out;
        };
        let Some(tools) = result.get("tools").and_then(Value::as_array) else {
            // Without a tool array nothing can be listed; forwarding unchanged exposes nothing new.
            return out;
        };
        if flight.first_page {
            st.tools.clear();
        }
        let mut kept = Vec::with_capacity(tools.len());
        for t in tools {
            let Some((def, name)) = t
                .as_object()
                .and_then(|d| Some((d, d.get("name")?.as_str()?)))
            else {
                let mut note = Note::new(NoteKind::Error, Direction::ToClient, Decision::Deny);
                note.method = Some("tools/list".into());
                note.reason = Some("malformed-tool");
                note.detail =
                    Some("a listed tool is not an object with a string name; it was hidden".into());
                out.notes.push(note);
                continue;
            };
            let first_sight = !st.pins.contains_key(name);
            let (status, hash) = classify_tool(def, name, &self.policy, st);
            match &status {
                ToolStatus::Approved => {
                    if first_sight && self.policy.pinning.mode == palisade_policy::PinMode::Tofu {
                        let mut note =
                            Note::new(NoteKind::Pin, Direction::ToClient, Decision::Allow);
                        note.tool = Some(name.to_owned());
                        note.reason = Some("pinned-on-first-use");
                        note.detail = Some(format!("pinned {hash}"));
                        out.notes.push(note);
                    }
                    kept.push(t.clone());
                }
                other => {
                    let (kind, reason) = match other {
                        ToolStatus::Denied => (
                            NoteKind::Policy,
                            DenyReason::ToolDenied { tool: name.into() },
                        ),
                        ToolStatus::Unapproved => (
                            NoteKind::Pin,
                            DenyReason::ToolNotApproved {
                                server: self.policy.server.clone(),
                                tool: name.into(),
                                pin: hash.clone(),
                            },
                        ),
                        ToolStatus::Changed { pinned } => (
                            NoteKind::Pin,
                            DenyReason::ToolChanged {
                                server: self.policy.server.clone(),
                                tool: name.into(),
                                pinned: pinned.clone(),
                                now: hash.clone(),
                            },
                        ),
                        ToolStatus::Approved => unreachable!("handled above"),
                    };
                    let mut note = Note::new(kind, Direction::ToClient, Decision::Deny);
                    note.tool = Some(name.to_owned());
                    note.reason = Some(reason.id());
                    note.detail = Some(reason.message());
                    out.notes.push(note);
                }
            }
            st.tools.insert(
                name.to_owned(),
                ToolEntry {
                    def: def.clone(),
                    hash,
                    status,
                    schema: None,
                },
            );
        }
        match result.get("nextCursor").and_then(Value::as_str) {
            Some(cursor) if flight.internal => {
                let mut p = Map::new();
                p.insert("cursor".into(), Value::String(cursor.to_owned()));
                out.to_server
                    .push(self.internal_request("tools/list", p, st, now));
            }
            Some(_) => {}
            None => {
                st.tools_stale = false;
                st.tools_listed = true;
                if flight.internal {
                    st.refresh_pending = false;
                }
            }
        }
        if kept.len() != tools.len() {
            let mut obj = msg.value().clone();
            if let Some(Value::Object(r)) = obj.get_mut("result") {
                r.insert("tools".into(), Value::Array(kept));
            }
            out.forward = Forward::Rewritten(serde_json::to_vec(&obj).unwrap_or_default());
        }
        out
    }

    /// Starts palisade's own listing of the server's tools.
    fn refresh_tools(&self, st: &mut SessionState, now: Instant) -> Vec<u8> {
        st.refresh_pending = true;
        self.internal_request("tools/list", Map::new(), st, now)
    }

    /// Builds a request palisade sends to the server on its own behalf and records it as in flight.
    fn internal_request(
        &self,
        method: &str,
        mut params: Map<String, Value>,
        st: &mut SessionState,
        now: Instant,
    ) -> Vec<u8> {
        st.internal_seq += 1;
        let id_value = Value::String(format!("palisade-internal-{}", st.internal_seq));
        let id = Id::from_value(&id_value).unwrap_or_else(|| unreachable!("a string is an id"));
        if st.era == Some(Era::Stateless)
            && let Some(meta) = &st.last_meta
        {
            params.insert("_meta".into(), meta.clone());
        }
        st.in_flight.insert(
            id,
            InFlight {
                method: method.to_owned(),
                tool: None,
                started: now,
                deadline: Some(now + self.policy.limits.call_timeout),
                internal: true,
                first_page: !params.contains_key("cursor"),
            },
        );
        let msg = json!({"jsonrpc": "2.0", "id": id_value, "method": method, "params": params});
        serde_json::to_vec(&msg).unwrap_or_default()
    }

    /// The earliest deadline of a call in flight, for the driver's timer.
    pub fn next_deadline(&self, st: &SessionState) -> Option<Instant> {
        st.in_flight.values().filter_map(|f| f.deadline).min()
    }

    /// Gives up on calls whose deadline passed: the server is told to cancel, the client gets an error.
    pub fn expire(&self, st: &mut SessionState, now: Instant) -> Outcome {
        let mut out = Outcome {
            forward: Forward::No,
            to_client: Vec::new(),
            to_server: Vec::new(),
            notes: Vec::new(),
        };
        let expired: Vec<Id> = st
            .in_flight
            .iter()
            .filter(|(_, f)| f.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            let Some(f) = st.in_flight.remove(&id) else {
                continue;
            };
            if f.tool.is_some() {
                st.calls_in_flight = st.calls_in_flight.saturating_sub(1);
            }
            if f.internal && f.method == "tools/list" {
                // Held calls are released (and refused as stale) instead of waiting forever.
                st.refresh_pending = false;
            }
            let secs = self.policy.limits.call_timeout.as_secs_f64();
            let what = match &f.tool {
                Some(tool) => format!("tool `{tool}`"),
                None => format!("`{}`", f.method),
            };
            out.to_server.push(
                serde_json::to_vec(&json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": id.to_value(), "reason": format!("palisade: timed out after {secs}s")},
                }))
                .unwrap_or_default(),
            );
            if !f.internal {
                out.to_client.push(error_response(
                Some(&id),
                error_codes::REQUEST_TIMEOUT,
                &format!(
                    "palisade: {what} did not answer within {secs}s (limits.call_timeout); the server was asked to cancel it"
                ),
            ));
            }
            let mut note = Note::new(NoteKind::Call, Direction::ToClient, Decision::Deny);
            note.method = Some(f.method);
            note.tool = f.tool;
            note.id = Some(id);
            note.reason = Some("timeout");
            note.status = Some(Status::Timeout);
            note.duration = Some(now.saturating_duration_since(f.started));
            out.notes.push(note);
        }
        out
    }

    /// The server is gone: every request still waiting (or held) gets an error and a completion note.
    pub fn server_gone(&self, st: &mut SessionState, why: &str, now: Instant) -> Outcome {
        let mut out = Outcome {
            forward: Forward::No,
            to_client: Vec::new(),
            to_server: Vec::new(),
            notes: Vec::new(),
        };
        let message = format!("palisade: the MCP server exited before answering ({why})");
        let mut pending: Vec<(Id, InFlight)> =
            st.in_flight.drain().filter(|(_, f)| !f.internal).collect();
        for (id, _) in std::mem::take(&mut st.deferred) {
            pending.push((
                id,
                InFlight {
                    method: "tools/call".into(),
                    tool: None,
                    started: now,
                    deadline: None,
                    internal: false,
                    first_page: false,
                },
            ));
        }
        pending.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, f) in pending {
            out.to_client.push(error_response(
                Some(&id),
                error_codes::SERVER_UNAVAILABLE,
                &message,
            ));
            let mut note = Note::new(
                if f.method == "tools/call" {
                    NoteKind::Call
                } else {
                    NoteKind::Request
                },
                Direction::ToClient,
                Decision::Allow,
            );
            note.method = Some(f.method);
            note.tool = f.tool;
            note.id = Some(id);
            note.reason = Some("server-exited");
            note.detail = Some(why.to_owned());
            note.status = Some(Status::Error);
            note.duration = Some(now.saturating_duration_since(f.started));
            out.notes.push(note);
        }
        st.calls_in_flight = 0;
        st.refresh_pending = false;
        out
    }

    /// A line from the client that is not an acceptable message: answer with the spec's error code.
    pub fn client_frame_error(&self, err: &FrameError) -> Outcome {
        let mut note = Note::new(NoteKind::Error, Direction::ToServer, Decision::Deny);
        note.reason = Some("malformed-message");
        note.detail = Some(err.to_string());
        note.status = Some(Status::Denied);
        Outcome {
            forward: Forward::No,
            to_client: vec![error_response(
                None,
                err.code(),
                &format!("palisade: {err}"),
            )],
            to_server: Vec::new(),
            notes: vec![note],
        }
    }

    /// A line from the server that is not an acceptable message: drop it and record why.
    pub fn server_frame_error(&self, err: &FrameError) -> Outcome {
        let mut note = Note::new(NoteKind::Error, Direction::ToClient, Decision::Deny);
        note.reason = Some("malformed-message");
        note.detail = Some(format!(
            "dropped a malformed message from the server: {err}"
        ));
        Outcome::dropped(note)
    }

    /// A line over `limits.max_message_bytes`. When its id could be read while skipping it, the request
    /// it belongs to is answered with an error instead of being left to wait.
    pub fn too_long(
        &self,
        direction: Direction,
        len: usize,
        id: Option<&Id>,
        st: &mut SessionState,
    ) -> Outcome {
        let max = self.policy.limits.max_message_bytes;
        let detail = format!(
            "message of {len} bytes exceeds the limit of {max} bytes (raise limits.max_message_bytes if this is legitimate)"
        );
        let mut note = Note::new(NoteKind::Error, direction, Decision::Deny);
        note.reason = Some("message-too-large");
        note.detail = Some(detail.clone());
        note.id = id.cloned();
        let mut out = Outcome::dropped(note);
        match direction {
            Direction::ToServer => {
                // A request the server never sees: answer it (or, without a readable id, with id null).
                out.to_client.push(error_response(
                    id,
                    error_codes::INVALID_REQUEST,
                    &format!("palisade: {detail}"),
                ));
            }
            Direction::ToClient => {
                let Some((id, f)) = id.and_then(|i| st.in_flight.remove_entry(i)) else {
                    return out;
                };
                if f.tool.is_some() {
                    st.calls_in_flight = st.calls_in_flight.saturating_sub(1);
                }
                if f.internal {
                    if f.method == "tools/list" {
                        st.refresh_pending = false;
                    }
                } else {
                    out.to_client.push(error_response(
                        Some(&id),
                        error_codes::INTERNAL_ERROR,
                        &format!(
                            "palisade: the server's response to `{}` was dropped: {detail}",
                            f.method
                        ),
                    ));
                }
                out.notes[0].method = Some(f.method);
                out.notes[0].tool = f.tool;
                out.notes[0].status = Some(Status::Error);
                out.notes[0].duration = Some(Instant::now().saturating_duration_since(f.started));
            }
        }
        out
    }
}

fn unsolicited(direction: Direction, id: Option<Id>) -> Note {
    let mut note = Note::new(NoteKind::Error, direction, Decision::Deny);
    note.id = id;
    note.reason = Some("unsolicited-response");
    note.detail = Some(match direction {
        Direction::ToClient => {
            "dropped a response from the server to a request the client never sent".into()
        }
        Direction::ToServer => {
            "dropped a response from the client to a request the server never sent".into()
        }
    });
    note
}

/// A `tools/call` refusal as a tool result with `isError: true`, so the model sees why and can adapt.
pub fn denied_tool_result(id: &Id, reason: &DenyReason) -> Vec<u8> {
    let v = json!({
        "jsonrpc": "2.0",
        "id": id.to_value(),
        "result": {
            "content": [{"type": "text", "text": format!("palisade refused this call: {}", reason.message())}],
            "isError": true,
        },
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;

/// Whether a client request gets `limits.call_timeout` as its deadline. Every request does, so that a
/// server that never answers cannot hold a client (or an HTTP connection of `palisade serve`) forever,
/// except the ones that may last by design: `initialize` (which the spec forbids cancelling),
/// `subscriptions/listen` (a 2026-07-28 stream that lives as long as the client wants it) and the
/// `tasks/*` methods (`tasks/result` waits for a task that may run for hours).
fn times_out(method: &str) -> bool {
    !(method == "initialize" || method == "subscriptions/listen" || method.starts_with("tasks/"))
}
