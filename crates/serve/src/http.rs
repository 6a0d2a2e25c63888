//! The HTTP front: one ordered function decides every request.
//!
//! # Order (security policy: cheap, deny-early checks first)
//! 1. `Host` names this gateway (403 otherwise: DNS rebinding).
//! 2. `Origin`, when present, is allowed (403: DNS rebinding, cross-site requests).
//! 3. The path is a served MCP endpoint or its protected-resource metadata (404).
//! 4. The method is one the endpoint has (405).
//! 5. Authentication (401 with `WWW-Authenticate: Bearer resource_metadata=…`).
//! 6. The client's scopes reach this server (403 `insufficient_scope`).
//! 7. The client's request rate (429 with `Retry-After`).
//! 8. Content negotiation, body size (413) and body time, strict JSON-RPC parsing (400).
//! 9. Era: a session's requests go to its server process (its own, or with `process = "shared"` the
//!    one every session of the server uses), checked against the session's owner and protocol version;
//!    `initialize` opens a session; 2026-07-28 requests have their mirrored headers checked against the
//!    body and go to the server's shared stateless process.
//! 10. Per-tool scope of a `tools/call` (403 `insufficient_scope` naming the tool's scope).
//!
//! Then the message goes through the guard pipeline (see [`crate::upstream`]). No request reaches a
//! server before all of the above passed, and nothing of the HTTP request but the JSON-RPC body is
//! forwarded: the client's token never leaves palisade.
//!
//! # Why no web framework
//! The routing is three paths and the checks are one function in the order above, which is the policy
//! and reads as such. axum would add a layer per check and an extractor per header without removing any
//! of the checks; hyper alone keeps the request path short (the gateway's per-request cost is what the
//! benchmark measures).

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use palisade_audit::{Decision, Event, Kind as AuditKind, Status as AuditStatus};
use palisade_mcp::{FrameError, Id, Kind, Message, error_codes, error_response};
use palisade_policy::ProcessSharing;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

use crate::auth::{Auth, AuthError};
use crate::backend::{Backend, Spawner};
use crate::config::{Checked, Limits};
use crate::headers;
use crate::ids::random_token;
use crate::scope::Principal;
use crate::sse::{self, AbandonGuard, ResBody, SseBody};
use crate::upstream::{Cmd, Ended, Mode, Reply, STREAM_BUFFER, Upstream};

/// Protocol versions a session may use (the `MCP-Protocol-Version` header after `initialize`).
pub(crate) const SESSION_VERSIONS: &[&str] =
    &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The first stateless version.
const STATELESS: &str = palisade_mcp::era::STATELESS_VERSION;
/// The well-known prefix of RFC 9728 protected-resource metadata.
const PRM: &str = "/.well-known/oauth-protected-resource";

const SESSION_HEADER: &str = "mcp-session-id";

/// One served endpoint.
pub(crate) struct Route {
    /// `/mcp` or `/mcp/<name>`.
    pub(crate) path: String,
    /// The canonical resource URI (token audience).
    pub(crate) resource: String,
    pub(crate) backend: Arc<dyn Backend>,
    /// The shared process for stateless-era requests, started on first use.
    stateless: tokio::sync::Mutex<Option<mpsc::Sender<Cmd>>>,
    /// `process = "shared"`: every session of this server uses one process.
    shares_sessions: bool,
    /// That process, started by the first session: its number (see [`Member`]) and channel.
    sessions_process: tokio::sync::Mutex<Option<(u64, mpsc::Sender<Cmd>)>>,
}

#[derive(Clone)]
struct Session {
    tx: mpsc::Sender<Cmd>,
    owner: String,
    route: usize,
    /// Set when the session is one of several on a shared process.
    member: Option<Member>,
}

/// A session on a shared process: which process (a new one may start after the last ended) and the
/// session's number there.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Member {
    process: u64,
    session: u64,
}

/// Requests per client.
struct RateBucket {
    tokens: f64,
    last: Instant,
}

/// Everything the request path shares.
pub(crate) struct Gateway {
    pub(crate) checked: Checked,
    pub(crate) limits: Limits,
    pub(crate) auth: Auth,
    pub(crate) routes: Vec<Arc<Route>>,
    spawner: Spawner,
    sessions: Mutex<HashMap<String, Session>>,
    rate: Mutex<HashMap<String, RateBucket>>,
    next_key: AtomicU64,
    /// Upstream tasks still running (sessions and shared processes), for shutdown.
    pub(crate) live: Arc<AtomicUsize>,
    /// Sessions open or starting, for `--max-sessions` (reserved before the server starts, so
    /// concurrent `initialize` requests cannot overshoot it).
    open: Arc<AtomicUsize>,
    /// Sessions each client is starting (by principal key): counted with its open ones for
    /// `--max-sessions-per-client`, so concurrent `initialize` requests cannot overshoot it either.
    starting: Mutex<HashMap<String, usize>>,
    me: Weak<Gateway>,
}

impl Gateway {
    pub(crate) fn new(
        checked: Checked,
        limits: Limits,
        auth: Auth,
        backends: Vec<(String, Arc<dyn Backend>)>,
        spawner: Spawner,
    ) -> Arc<Gateway> {
        let routes = backends
            .into_iter()
            .map(|(path, backend)| {
                let shares_sessions = backend.remote().is_none()
                    && backend.pipeline().policy().process == ProcessSharing::Shared;
                Arc::new(Route {
                    resource: format!("{}{path}", checked.base),
                    path,
                    backend,
                    stateless: tokio::sync::Mutex::new(None),
                    shares_sessions,
                    sessions_process: tokio::sync::Mutex::new(None),
                })
            })
            .collect();
        Arc::new_cyclic(|me| Gateway {
            checked,
            limits,
            auth,
            routes,
            spawner,
            sessions: Mutex::new(HashMap::new()),
            rate: Mutex::new(HashMap::new()),
            next_key: AtomicU64::new(1),
            live: Arc::new(AtomicUsize::new(0)),
            open: Arc::new(AtomicUsize::new(0)),
            starting: Mutex::new(HashMap::new()),
            me: me.clone(),
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends every session and shared process (shutdown).
    pub(crate) async fn close_all(&self) {
        let all: Vec<Session> = self.sessions().drain().map(|(_, s)| s).collect();
        for s in all {
            match s.member {
                // Its process is closed once, below.
                Some(_) => {
                    self.open.fetch_sub(1, Ordering::SeqCst);
                }
                None => {
                    let _ = s.tx.send(Cmd::Close).await;
                }
            }
        }
        for r in &self.routes {
            if let Some(tx) = r.stateless.lock().await.take() {
                let _ = tx.send(Cmd::Close).await;
            }
            if let Some((_, tx)) = r.sessions_process.lock().await.take() {
                let _ = tx.send(Cmd::Close).await;
            }
        }
    }

    /// Forgets the sessions of a shared process that `which` selects, and frees their places under
    /// `--max-sessions` (a per-session process frees its place when the process has stopped).
    fn forget_members(&self, which: impl Fn(&Member) -> bool) -> Vec<Member> {
        let mut gone = Vec::new();
        self.sessions().retain(|_, s| match &s.member {
            Some(m) if which(m) => {
                gone.push(*m);
                false
            }
            _ => true,
        });
        self.open.fetch_sub(gone.len(), Ordering::SeqCst);
        gone
    }

    /// Records a refusal palisade made before any server saw the request.
    fn refused(&self, route: Option<&Route>, client: Option<&str>, reason: &str, detail: String) {
        let route = route.or_else(|| self.routes.first().map(AsRef::as_ref));
        if let Some(r) = route {
            let mut ev = Event::new(AuditKind::Policy, r.backend.name())
                .decision(Decision::Deny)
                .reason(reason)
                .detail(palisade_audit::redact_str(&detail).into_owned());
            ev.client = client.map(str::to_owned);
            ev.status = Some(AuditStatus::Denied);
            r.backend.event(ev);
        }
    }

    fn rate_ok(&self, key: &str) -> Result<(), Duration> {
        let Some((count, per)) = self.limits.rate else {
            return Ok(());
        };
        let now = Instant::now();
        let mut rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        let b = rate.entry(key.to_owned()).or_insert(RateBucket {
            tokens: f64::from(count),
            last: now,
        });
        let cap = f64::from(count);
        let refill = cap / per.as_secs_f64();
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * refill).min(cap);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / refill))
        }
    }
}

/// Handles one request. Never fails: every problem is a response.
pub(crate) async fn handle(gw: Arc<Gateway>, req: Request<Incoming>) -> Response<ResBody> {
    // 1. Host.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    let path = req.uri().path().to_owned();
    let route_index = gw.routes.iter().position(|r| r.path == path);
    let route = route_index.map(|i| gw.routes[i].clone());
    let Some(host) = host else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Bad Request: a Host header is required",
        );
    };
    if !gw.checked.hosts.contains(&host) {
        gw.refused(
            route.as_deref(),
            None,
            "host-refused",
            format!("Host {host:?} is not a name of this gateway"),
        );
        return refusal(
            StatusCode::FORBIDDEN,
            &format!(
                "Forbidden: Host {host:?} is not allowed (DNS rebinding protection; see --allowed-host)"
            ),
        );
    }
    // 2. Origin.
    let origin = match req.headers().get(header::ORIGIN) {
        None => None,
        Some(o) => {
            let o = o
                .to_str()
                .unwrap_or("")
                .trim_end_matches('/')
                .to_ascii_lowercase();
            if !gw.checked.origins.contains(&o) {
                gw.refused(
                    route.as_deref(),
                    None,
                    "origin-refused",
                    format!("Origin {o:?} is not allowed"),
                );
                return refusal(
                    StatusCode::FORBIDDEN,
                    &format!("Forbidden: Origin {o:?} is not allowed (see --allow-origin)"),
                );
            }
            Some(o)
        }
    };
    let mut res = route_request(gw, route, route_index, path, req).await;
    if let Some(o) = origin
        && let Ok(v) = HeaderValue::from_str(&o)
    {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Mcp-Session-Id, WWW-Authenticate"),
        );
    }
    res
}

async fn route_request(
    gw: Arc<Gateway>,
    route: Option<Arc<Route>>,
    route_index: Option<usize>,
    path: String,
    req: Request<Incoming>,
) -> Response<ResBody> {
    // 3. Path.
    if let Some(rest) = path.strip_prefix(PRM) {
        return metadata(&gw, rest, req.method());
    }
    let (Some(route), Some(ri)) = (route, route_index) else {
        let served: Vec<&str> = gw.routes.iter().map(|r| r.path.as_str()).collect();
        return refusal(
            StatusCode::NOT_FOUND,
            &format!("Not Found: MCP endpoints here are {}", served.join(", ")),
        );
    };
    // 4. Method.
    let method = req.method().clone();
    if method == Method::OPTIONS {
        return preflight(&req);
    }
    if !matches!(method, Method::POST | Method::GET | Method::DELETE) {
        let mut r = refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed: use POST, GET or DELETE",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST, GET, DELETE"));
        return r;
    }
    // 5. Authentication.
    let principal = match gw.auth.authenticate(req.headers(), &route.resource).await {
        Ok(p) => p,
        Err(e) => return unauthorized(&gw, &route, e),
    };
    // 6. Server scope.
    if !principal.scopes.server(route.backend.name()) {
        let scope = format!("mcp:{}", route.backend.name());
        gw.refused(
            Some(&route),
            Some(&principal.name),
            "insufficient-scope",
            format!("{} {} needs scope {scope}", method, route.path),
        );
        return insufficient_scope(&gw, &route, &scope);
    }
    // 7. Rate.
    if let Err(wait) = gw.rate_ok(&principal.key) {
        gw.refused(
            Some(&route),
            Some(&principal.name),
            "rate-limited",
            format!("{} {}", method, route.path),
        );
        let mut r = refusal(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests: this client is over its request rate (see --rate-limit); retry later",
        );
        let secs = wait.as_secs().max(1).to_string();
        if let Ok(v) = HeaderValue::from_str(&secs) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    match method {
        Method::POST => post(gw, route, ri, principal, req).await,
        Method::GET => get(gw, route, ri, principal, req).await,
        _ => delete(gw, ri, principal, req).await,
    }
}

// ------------------------------------------------------------------------------------------------------
// POST

async fn post(
    gw: Arc<Gateway>,
    route: Arc<Route>,
    ri: usize,
    principal: Arc<Principal>,
    req: Request<Incoming>,
) -> Response<ResBody> {
    let (parts, body) = req.into_parts();
    let h = &parts.headers;
    if !accepts(h, "application/json") || !accepts(h, "text/event-stream") {
        return refusal(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: the client must accept both application/json and text/event-stream",
        );
    }
    let json_body = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json_body {
        return refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type: the body must be application/json",
        );
    }
    // 8. Body under a size and time limit, parsed strictly.
    let max = gw
        .limits
        .max_body
        .min(route.backend.pipeline().policy().limits.max_message_bytes);
    let collected =
        tokio::time::timeout(gw.limits.body_timeout, Limited::new(body, max).collect()).await;
    let bytes = match collected {
        Err(_) => {
            return refusal(
                StatusCode::REQUEST_TIMEOUT,
                "Request Timeout: the body did not arrive in time",
            );
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            gw.refused(
                Some(&route),
                Some(&principal.name),
                "message-too-large",
                format!("request body over {max} bytes"),
            );
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                error_codes::INVALID_REQUEST,
                &format!("palisade: the message exceeds the limit of {max} bytes"),
            );
        }
        Ok(Err(_)) => return refusal(StatusCode::BAD_REQUEST, "Bad Request: unreadable body"),
        Ok(Ok(c)) => c.to_bytes(),
    };
    let msg = match Message::parse(&bytes) {
        Ok(m) => m,
        Err(e) => {
            gw.refused(
                Some(&route),
                Some(&principal.name),
                "malformed-message",
                e.to_string(),
            );
            let code = e.code();
            let text = match e {
                FrameError::Batch => {
                    "palisade: JSON-RPC batches are not supported; send one message per request"
                        .to_owned()
                }
                other => format!("palisade: {other}"),
            };
            return json_error(StatusCode::BAD_REQUEST, None, code, &text);
        }
    };
    // 9. Era.
    let version = h
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned());
    if let Some(sid) = h.get(SESSION_HEADER) {
        // A stateless-era request ignores session ids (it has none).
        if version.as_deref().is_none_or(|v| v < STATELESS) {
            let sid = sid.to_str().unwrap_or("").to_owned();
            return in_session(gw, route, ri, principal, &sid, version, msg).await;
        }
    }
    let stateless = match &version {
        Some(v) => v.as_str() >= STATELESS,
        None => msg.method() != Some("initialize") && headers::body_version(&msg).is_some(),
    };
    if stateless {
        return stateless_request(gw, route, principal, h, msg).await;
    }
    if msg.method() == Some("initialize") {
        return new_session(gw, route, ri, principal, msg).await;
    }
    json_error(
        StatusCode::BAD_REQUEST,
        None,
        -32000,
        "Bad Request: Mcp-Session-Id header is required (send initialize first, or use protocol 2026-07-28 with per-request _meta)",
    )
}

async fn in_session(
    gw: Arc<Gateway>,
    route: Arc<Route>,
    ri: usize,
    principal: Arc<Principal>,
    sid: &str,
    version: Option<String>,
    msg: Message,
) -> Response<ResBody> {
    let Some(session) = owned_session(&gw, sid, ri, &principal) else {
        return session_not_found();
    };
    if let Some(v) = &version
        && !SESSION_VERSIONS.contains(&v.as_str())
    {
        return json_error(
            StatusCode::BAD_REQUEST,
            msg.id(),
            error_codes::INVALID_REQUEST,
            &format!(
                "Bad Request: unsupported MCP-Protocol-Version {v:?} (supported: {})",
                SESSION_VERSIONS.join(", ")
            ),
        );
    }
    if msg.method() == Some("initialize") {
        return json_error(
            StatusCode::BAD_REQUEST,
            msg.id(),
            error_codes::INVALID_REQUEST,
            "Invalid Request: this session is already initialized; start a new session without Mcp-Session-Id",
        );
    }
    if let Some(r) = tool_scope(&gw, &route, &principal, &msg) {
        return r;
    }
    let via = Via::Session(session.member.map(|m| m.session));
    exchange(&gw, &session.tx, msg, principal, via, None).await
}

/// The session `sid` if it exists, belongs to this route and was opened by this principal. Anything else
/// is "not found": a session id of another client tells the caller nothing.
fn owned_session(gw: &Gateway, sid: &str, ri: usize, principal: &Principal) -> Option<Session> {
    let s = gw.sessions().get(sid).cloned()?;
    (s.route == ri && s.owner == principal.key && !s.tx.is_closed()).then_some(s)
}

async fn new_session(
    gw: Arc<Gateway>,
    route: Arc<Route>,
    ri: usize,
    principal: Arc<Principal>,
    msg: Message,
) -> Response<ResBody> {
    if gw.open.fetch_add(1, Ordering::SeqCst) >= gw.limits.max_sessions {
        gw.open.fetch_sub(1, Ordering::SeqCst);
        gw.refused(
            Some(&route),
            Some(&principal.name),
            "too-many-sessions",
            format!(
                "{} sessions are open (--max-sessions)",
                gw.limits.max_sessions
            ),
        );
        let mut r = refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: the gateway's session limit is reached; retry later",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    }
    // Counted and reserved under the sessions lock: two `initialize` requests racing each other both
    // see the other's reservation.
    let reserved = {
        let sessions = gw.sessions();
        let mut starting = gw.starting.lock().unwrap_or_else(|p| p.into_inner());
        let mine = sessions
            .values()
            .filter(|s| s.owner == principal.key)
            .count()
            + starting.get(&principal.key).copied().unwrap_or(0);
        if mine < gw.limits.max_sessions_per_client {
            *starting.entry(principal.key.clone()).or_insert(0) += 1;
            Ok(Reservation {
                gw: gw.clone(),
                key: principal.key.clone(),
            })
        } else {
            Err(mine)
        }
    };
    let reserved = match reserved {
        Ok(r) => r,
        Err(mine) => {
            gw.open.fetch_sub(1, Ordering::SeqCst);
            gw.refused(
                Some(&route),
                Some(&principal.name),
                "too-many-sessions",
                format!("client holds {mine} sessions (--max-sessions-per-client)"),
            );
            return refusal(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests: this client holds too many sessions; end some with DELETE",
            );
        }
    };
    let sid = random_token(32);
    let started = if route.shares_sessions {
        sessions_process(&gw, &route).await.map(|(process, tx)| {
            let session = gw.next_key.fetch_add(1, Ordering::Relaxed);
            (tx, Some(Member { process, session }))
        })
    } else {
        session_process(&gw, &route, &principal, &sid)
            .await
            .map(|tx| (tx, None))
    };
    let (tx, member) = match started {
        Ok(started) => started,
        Err(e) => {
            gw.open.fetch_sub(1, Ordering::SeqCst);
            return start_failed(&route, msg.id(), &e);
        }
    };
    gw.sessions().insert(
        sid.clone(),
        Session {
            tx: tx.clone(),
            owner: principal.key.clone(),
            route: ri,
            member,
        },
    );
    // Counted as open now.
    drop(reserved);
    let res = exchange(
        &gw,
        &tx,
        msg,
        principal,
        Via::Session(member.map(|m| m.session)),
        Some((HeaderName::from_static(SESSION_HEADER), sid.clone())),
    )
    .await;
    if res.status() != StatusCode::OK || res.extensions().get::<FailedInit>().is_some() {
        match member {
            Some(m) => {
                gw.forget_members(|x| *x == m);
                let _ = tx.send(Cmd::Leave { session: m.session }).await;
            }
            None => {
                gw.sessions().remove(&sid);
                let _ = tx.send(Cmd::Close).await;
            }
        }
        let mut res = res;
        res.headers_mut().remove(SESSION_HEADER);
        return res;
    }
    res
}

/// Starts the process of one session. It frees the session's place under `--max-sessions` when it
/// has stopped.
async fn session_process(
    gw: &Arc<Gateway>,
    route: &Route,
    principal: &Arc<Principal>,
    sid: &str,
) -> std::io::Result<mpsc::Sender<Cmd>> {
    let weak = gw.me.clone();
    let end_sid = sid.to_owned();
    let live = gw.live.clone();
    let open = gw.open.clone();
    live.fetch_add(1, Ordering::SeqCst);
    let label = format!("session {}… of client {}", &sid[..8], principal.name);
    let started = Upstream::start(
        &gw.spawner,
        route.backend.clone(),
        Mode::PerSession,
        Some(principal.clone()),
        label,
        gw.limits.session_idle,
        Box::new(move |_: Ended| {
            if let Some(gw) = weak.upgrade() {
                gw.sessions().remove(&end_sid);
            }
            open.fetch_sub(1, Ordering::SeqCst);
            live.fetch_sub(1, Ordering::SeqCst);
        }),
    )
    .await;
    if started.is_err() {
        gw.live.fetch_sub(1, Ordering::SeqCst);
    }
    started
}

/// The process every session of `route` shares (`process = "shared"`), started for the first session
/// and again after the last one ended and it stopped. It runs until it has had no session for
/// `--session-idle`; each session idles out on its own before that.
async fn sessions_process(
    gw: &Arc<Gateway>,
    route: &Route,
) -> std::io::Result<(u64, mpsc::Sender<Cmd>)> {
    let mut slot = route.sessions_process.lock().await;
    if let Some((process, tx)) = &*slot
        && !tx.is_closed()
    {
        return Ok((*process, tx.clone()));
    }
    let process = gw.next_key.fetch_add(1, Ordering::Relaxed);
    let live = gw.live.clone();
    live.fetch_add(1, Ordering::SeqCst);
    let weak = gw.me.clone();
    let left = Box::new(move |session: u64| {
        if let Some(gw) = weak.upgrade() {
            gw.forget_members(|m| m.process == process && m.session == session);
        }
    });
    let weak = gw.me.clone();
    let started = Upstream::start(
        &gw.spawner,
        route.backend.clone(),
        Mode::Sessions { left },
        None,
        "process shared by the sessions of this server".into(),
        gw.limits.session_idle,
        Box::new(move |_: Ended| {
            // Its sessions end with it.
            if let Some(gw) = weak.upgrade() {
                gw.forget_members(|m| m.process == process);
            }
            live.fetch_sub(1, Ordering::SeqCst);
        }),
    )
    .await;
    match started {
        Ok(tx) => {
            *slot = Some((process, tx.clone()));
            Ok((process, tx))
        }
        Err(e) => {
            gw.live.fetch_sub(1, Ordering::SeqCst);
            Err(e)
        }
    }
}

/// A server that could not be started: the cause on palisade's stderr, a 503 with a JSON-RPC error to
/// the client (which learns nothing of the cause: it may name paths or the sandbox).
fn start_failed(route: &Route, id: Option<&Id>, e: &std::io::Error) -> Response<ResBody> {
    eprintln!(
        "palisade: cannot start the server `{}`: {e}",
        route.backend.name()
    );
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        id,
        error_codes::SERVER_UNAVAILABLE,
        "palisade: the MCP server could not be started (see palisade's log)",
    )
}

/// One session a client is starting, released when it is open (or failed to start).
struct Reservation {
    gw: Arc<Gateway>,
    key: String,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut starting = self.gw.starting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = starting.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                starting.remove(&self.key);
            }
        }
    }
}

/// Marks a JSON response that carries a JSON-RPC error (an `initialize` that failed).
#[derive(Clone, Copy)]
struct FailedInit;

async fn stateless_request(
    gw: Arc<Gateway>,
    route: Arc<Route>,
    principal: Arc<Principal>,
    h: &HeaderMap,
    msg: Message,
) -> Response<ResBody> {
    if let Err(r) = headers::check_stateless(h, &msg) {
        gw.refused(
            Some(&route),
            Some(&principal.name),
            if r.code == headers::HEADER_MISMATCH {
                "header-mismatch"
            } else {
                "malformed-message"
            },
            r.message.clone(),
        );
        return json_error(headers::status_for(r.code), msg.id(), r.code, &r.message);
    }
    let method = msg.method().unwrap_or_default();
    if headers::REMOVED_METHODS.contains(&method) {
        return json_error(
            StatusCode::NOT_FOUND,
            msg.id(),
            error_codes::METHOD_NOT_FOUND,
            &format!(
                "Method not found: {method} does not exist in protocol {STATELESS} (there are no sessions)"
            ),
        );
    }
    if let Some(r) = tool_scope(&gw, &route, &principal, &msg) {
        return r;
    }
    let tx = {
        let mut slot = route.stateless.lock().await;
        match &*slot {
            Some(tx) if !tx.is_closed() => tx.clone(),
            _ => {
                let live = gw.live.clone();
                live.fetch_add(1, Ordering::SeqCst);
                let started = Upstream::start(
                    &gw.spawner,
                    route.backend.clone(),
                    Mode::Stateless,
                    None,
                    "shared process for stateless requests".into(),
                    gw.limits.session_idle,
                    Box::new(move |_: Ended| {
                        live.fetch_sub(1, Ordering::SeqCst);
                    }),
                )
                .await;
                match started {
                    Ok(tx) => {
                        *slot = Some(tx.clone());
                        tx
                    }
                    Err(e) => {
                        gw.live.fetch_sub(1, Ordering::SeqCst);
                        return start_failed(&route, msg.id(), &e);
                    }
                }
            }
        }
    };
    let via = Via::Stateless(headers::param_headers(h));
    exchange(&gw, &tx, msg, principal, via, None).await
}

/// A `tools/call` of a tool outside the client's scopes: 403 naming the scope that would allow it.
fn tool_scope(
    gw: &Gateway,
    route: &Route,
    principal: &Principal,
    msg: &Message,
) -> Option<Response<ResBody>> {
    if msg.method() != Some("tools/call") {
        return None;
    }
    let server = route.backend.name();
    let tool = msg.tool_name()?;
    if principal.scopes.tool(server, tool) {
        return None;
    }
    let scope = format!("mcp:{server}:{tool}");
    gw.refused(
        Some(route),
        Some(&principal.name),
        "insufficient-scope",
        format!("tools/call {tool} needs scope {scope}"),
    );
    Some(insufficient_scope(gw, route, &scope))
}

/// Which era a client message belongs to.
enum Via {
    /// 2026-07-28, with the request's `Mcp-Param-*` headers.
    Stateless(Vec<(String, String)>),
    /// A 2025-11-25 session; its number on a shared process.
    Session(Option<u64>),
}

/// Sends one client message to an upstream and turns what comes back into the HTTP response: 202 for
/// notifications and responses; for a request, JSON when its response is the first thing the server
/// sends, otherwise an SSE stream that carries the server's messages and ends with the response.
async fn exchange(
    gw: &Gateway,
    tx: &mpsc::Sender<Cmd>,
    msg: Message,
    principal: Arc<Principal>,
    via: Via,
    extra: Option<(HeaderName, String)>,
) -> Response<ResBody> {
    let id = msg.id().cloned();
    let (stateless, params, session) = match via {
        Via::Stateless(params) => (true, params, None),
        Via::Session(session) => (false, Vec::new(), session),
    };
    if !matches!(msg.kind(), Kind::Request { .. }) {
        if tx
            .send(Cmd::Client {
                msg,
                principal,
                params,
                session,
                reply: None,
            })
            .await
            .is_err()
        {
            return session_not_found();
        }
        return status_only(StatusCode::ACCEPTED);
    }
    let key = gw.next_key.fetch_add(1, Ordering::Relaxed);
    let (rtx, mut rrx) = mpsc::channel(STREAM_BUFFER);
    let sent = tx
        .send(Cmd::Client {
            msg,
            principal,
            params,
            session,
            reply: Some(Reply { tx: rtx, key }),
        })
        .await;
    if sent.is_err() {
        return session_not_found();
    }
    let mut guard = AbandonGuard(Some((tx.clone(), key)));
    let Some(first) = rrx.recv().await else {
        guard.disarm();
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            id.as_ref(),
            error_codes::SERVER_UNAVAILABLE,
            "palisade: the MCP server is gone; start a new session",
        );
    };
    let abandon = guard.disarm();
    let mut res = if first.last {
        let code = error_code(&first.bytes);
        let status = match code {
            Some(c) if stateless => headers::status_for(c),
            _ => StatusCode::OK,
        };
        let mut r = Response::new(sse::full(first.bytes));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if code.is_some() {
            r.extensions_mut().insert(FailedInit);
        }
        r
    } else {
        sse_response(SseBody::request(first, rrx, abandon))
    };
    if let Some((name, value)) = extra
        && let Ok(v) = HeaderValue::from_str(&value)
    {
        res.headers_mut().insert(name, v);
    }
    res
}

fn error_code(bytes: &[u8]) -> Option<i64> {
    if !bytes.windows(8).any(|w| w == b"\"error\":") {
        return None;
    }
    let v: Value = serde_json::from_slice(bytes).ok()?;
    v.get("error")?.get("code")?.as_i64()
}

// ------------------------------------------------------------------------------------------------------
// GET and DELETE

async fn get(
    gw: Arc<Gateway>,
    _route: Arc<Route>,
    ri: usize,
    principal: Arc<Principal>,
    req: Request<Incoming>,
) -> Response<ResBody> {
    let h = req.headers();
    let stateless = h
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() >= STATELESS);
    if stateless {
        let mut r = refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed: protocol 2026-07-28 has no GET stream; use subscriptions/listen",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    if !accepts(h, "text/event-stream") {
        return refusal(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: the client must accept text/event-stream",
        );
    }
    let Some(sid) = h.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            None,
            -32000,
            "Bad Request: Mcp-Session-Id header is required",
        );
    };
    let Some(session) = owned_session(&gw, sid, ri, &principal) else {
        return session_not_found();
    };
    let (ltx, lrx) = mpsc::channel(STREAM_BUFFER);
    let (otx, orx) = oneshot::channel();
    if session
        .tx
        .send(Cmd::Listen {
            tx: ltx,
            opened: otx,
            session: session.member.map(|m| m.session),
        })
        .await
        .is_err()
    {
        return session_not_found();
    }
    match orx.await {
        Ok(true) => sse_response(SseBody::standalone(lrx)),
        Ok(false) => refusal(
            StatusCode::CONFLICT,
            "Conflict: this session already has an open GET stream",
        ),
        Err(_) => session_not_found(),
    }
}

async fn delete(
    gw: Arc<Gateway>,
    ri: usize,
    principal: Arc<Principal>,
    req: Request<Incoming>,
) -> Response<ResBody> {
    let Some(sid) = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        return json_error(
            StatusCode::BAD_REQUEST,
            None,
            -32000,
            "Bad Request: Mcp-Session-Id header is required",
        );
    };
    if owned_session(&gw, sid, ri, &principal).is_none() {
        return session_not_found();
    }
    let Some(session) = gw.sessions().get(sid).cloned() else {
        return session_not_found();
    };
    match session.member {
        Some(m) => {
            // The session ends; the shared process goes on for the others.
            if gw.forget_members(|x| *x == m).is_empty() {
                return session_not_found();
            }
            let _ = session.tx.send(Cmd::Leave { session: m.session }).await;
        }
        None => {
            if gw.sessions().remove(sid).is_none() {
                return session_not_found();
            }
            let _ = session.tx.send(Cmd::Close).await;
        }
    }
    status_only(StatusCode::OK)
}

// ------------------------------------------------------------------------------------------------------
// Authorization responses and metadata

fn metadata_url(gw: &Gateway, route: &Route) -> String {
    format!("{}{PRM}{}", gw.checked.base, route.path)
}

fn unauthorized(gw: &Gateway, route: &Route, e: AuthError) -> Response<ResBody> {
    let url = metadata_url(gw, route);
    let (challenge, reason, detail) = match &e {
        AuthError::Missing => (
            format!("Bearer resource_metadata=\"{url}\""),
            "unauthenticated",
            "no bearer token".to_owned(),
        ),
        AuthError::Invalid(why) => (
            format!(
                "Bearer error=\"invalid_token\", error_description=\"the access token is not valid here\", resource_metadata=\"{url}\""
            ),
            "invalid-token",
            why.clone(),
        ),
    };
    gw.refused(Some(route), None, reason, detail);
    let mut r = refusal(
        StatusCode::UNAUTHORIZED,
        "Unauthorized: a valid bearer token is required (palisade token create, or the configured OAuth issuer)",
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

fn insufficient_scope(gw: &Gateway, route: &Route, scope: &str) -> Response<ResBody> {
    let url = metadata_url(gw, route);
    let challenge = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{url}\""
    );
    let mut r = refusal(
        StatusCode::FORBIDDEN,
        &format!("Forbidden: insufficient_scope: this needs the scope {scope}"),
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// RFC 9728 protected-resource metadata for `/.well-known/oauth-protected-resource{rest}`.
fn metadata(gw: &Gateway, rest: &str, method: &Method) -> Response<ResBody> {
    if method != Method::GET && method != Method::HEAD {
        return refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed: use GET",
        );
    }
    let route = if rest.is_empty() && gw.routes.len() == 1 {
        gw.routes.first()
    } else {
        gw.routes.iter().find(|r| r.path == rest)
    };
    let Some(route) = route else {
        return refusal(
            StatusCode::NOT_FOUND,
            "Not Found: no such protected resource",
        );
    };
    let name = route.backend.name();
    let mut doc = json!({
        "resource": route.resource,
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["mcp:*", format!("mcp:{name}")],
        "resource_name": format!("palisade: {name}"),
    });
    if let Some(o) = &gw.auth.oauth {
        doc["authorization_servers"] = json!([o.issuer()]);
    }
    let mut r = Response::new(sse::full(serde_json::to_vec(&doc).unwrap_or_default()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn preflight(req: &Request<Incoming>) -> Response<ResBody> {
    let mut r = status_only(StatusCode::NO_CONTENT);
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, GET, DELETE"),
    );
    let asked = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_static(
                "Content-Type, Authorization, Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method, Mcp-Name",
            )
        });
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    r
}

// ------------------------------------------------------------------------------------------------------
// Small helpers

fn accepts(h: &HeaderMap, media: &str) -> bool {
    h.get_all(header::ACCEPT).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',').any(|part| {
                let m = part.split(';').next().unwrap_or("").trim();
                m.eq_ignore_ascii_case(media) || m == "*/*"
            })
        })
    })
}

fn sse_response(body: SseBody) -> Response<ResBody> {
    let mut r = Response::new(body.boxed_unsync());
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

fn status_only(status: StatusCode) -> Response<ResBody> {
    let mut r = Response::new(sse::empty());
    *r.status_mut() = status;
    r
}

/// A JSON-RPC error body with an HTTP status.
fn json_error(status: StatusCode, id: Option<&Id>, code: i64, message: &str) -> Response<ResBody> {
    let mut r = Response::new(sse::full(error_response(id, code, message)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A transport-level refusal: the HTTP status plus a JSON-RPC error without an id.
fn refusal(status: StatusCode, message: &str) -> Response<ResBody> {
    json_error(status, None, -32000, message)
}

fn session_not_found() -> Response<ResBody> {
    json_error(
        StatusCode::NOT_FOUND,
        None,
        -32001,
        "Session not found: it ended or never existed; start a new session with initialize",
    )
}
