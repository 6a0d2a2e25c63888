//! Remote servers: palisade as the Streamable HTTP client of an MCP server that runs elsewhere.
//!
//! # Shape
//! A remote server is driven by the same [`crate::upstream`] task and guard pipeline as a local process:
//! [`open`] hands the task a byte stream pair, and a bridge task on the other end turns each line the task
//! writes into an HTTP POST to the upstream, and every JSON-RPC message of the answer (a JSON body or an
//! SSE stream) back into a line. So a remote server is guarded, scoped and audited exactly like a stdio
//! one; only the last hop differs.
//!
//! # What never crosses
//! Upstream requests are built from nothing: the client's `Authorization`, cookies and every other client
//! header stay at palisade (the client's token is a palisade credential, not the upstream's). Upstream
//! gets only the configured credentials ([`Remote::new`]'s headers, marked sensitive so they never print)
//! and the protocol headers palisade sets itself. The upstream's `MCP-Session-Id` stays inside palisade:
//! clients see palisade's own session ids, and the upstream session ends (DELETE) when palisade's does.
//! Redirects are never followed (a 3xx is an error naming the status): a redirect could carry the
//! credentials to another host.
//!
//! # SSRF rules
//! Checked when palisade starts (IP literals) and again at every connection ([`check_address`]): the URL
//! is `https://`, or `http://` only when its host is loopback (`127.0.0.1`, `[::1]`, `localhost`); the
//! name is resolved once per connection and **every** address is checked with palisade's one classifier
//! ([`palisade_guard::args::urls::special_ip`]): loopback is accepted only when the URL names loopback;
//! private, link-local, CGNAT and other special ranges need `allow_private = true`; cloud metadata
//! endpoints and the unspecified address are refused always. palisade then connects to the address it
//! checked, never resolving again, so DNS rebinding between check and use is impossible.
//!
//! # Errors toward the client
//! A request the upstream cannot answer gets a JSON-RPC error naming why (unreachable, refused address,
//! HTTP status, credentials refused); an upstream 404 after the session started means the upstream
//! session is gone, which ends palisade's session the way a server process exiting does (every waiting
//! request is answered with an error). Each of these is an audit event.

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use palisade_audit::{Decision, Event, Kind as AuditKind, Status};
use palisade_mcp::{Id, Kind, Message, error_codes, error_response};
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::ServeError;
use crate::backend::Backend;

/// Time for a name lookup, TCP connect, TLS handshake and HTTP handshake together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Added to the policy's call timeout for an upstream answer: palisade's own timeout answers the client
/// first, this one frees the connection.
const ANSWER_MARGIN: Duration = Duration::from_secs(30);
/// Time for the DELETE that ends an upstream session.
const DELETE_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept per session.
const POOL: usize = 4;
/// GET stream reconnections in a row before palisade stops trying (the session goes on without it).
const LISTEN_RETRIES: u32 = 5;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// How often credentials that can change while palisade serves (`cmd:` and `file:` references) are
/// resolved again; the resolver's own cache (a `cmd:` reference's `ttl`) decides whether that runs anything.
const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// Resolves a remote server's credential headers again (`(name, value)` pairs). Runs on a blocking
/// thread: it may run a command or read a file.
pub type Refresh = Arc<dyn Fn() -> Result<Vec<(String, String)>, String> + Send + Sync>;

/// A remote server's endpoint and credentials, checked.
pub struct Remote {
    url: url::Url,
    /// `host[:port]` as the `Host` header carries it.
    authority: String,
    /// `path?query`.
    target: String,
    port: u16,
    /// The URL's host names this machine: only then may it resolve to loopback (or use plain http).
    loopback_host: bool,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    /// The credential headers; replaced when [`Remote::refresh`] gives new values.
    headers: std::sync::RwLock<Vec<(HeaderName, HeaderValue)>>,
    /// Where changed credentials come from, and when they were last resolved.
    refresh: Option<(Refresh, std::sync::Mutex<Instant>)>,
    allow_private: bool,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the header values: they are credentials.
        f.debug_struct("Remote")
            .field("url", &self.url.as_str())
            .field(
                "headers",
                &self
                    .headers
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .map(|(n, _)| n.clone())
                    .collect::<Vec<_>>(),
            )
            .field("refreshed", &self.refresh.is_some())
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

/// Why an upstream connection was not made.
#[derive(Debug)]
enum ConnectError {
    /// The SSRF rules refused an address (never connected).
    Refused(String),
    /// The network, TLS or HTTP handshake failed.
    Failed(String),
}

impl Remote {
    /// Checks `url` and builds the client: `headers` are `(name, value)` with values already resolved
    /// from the secret store (they are marked sensitive); `ca_file` adds trusted certificates besides
    /// the platform's. Refuses what the SSRF rules refuse without the network: a scheme other than
    /// https (http only to loopback), credentials in the URL, an IP literal in a refused range.
    pub fn new(
        url: &str,
        headers: Vec<(String, String)>,
        allow_private: bool,
        ca_file: Option<PathBuf>,
    ) -> Result<Remote, ServeError> {
        let bad = |why: String| ServeError::Config(format!("upstream {url}: {why}"));
        let u = url::Url::parse(url).map_err(|e| bad(format!("not a URL ({e})")))?;
        if !u.username().is_empty() || u.password().is_some() {
            return Err(bad(
                "credentials in the URL are refused (they would be printed and logged); use bearer or headers".into(),
            ));
        }
        let host = u.host().ok_or_else(|| bad("no host".into()))?;
        let loopback_host = match &host {
            url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.to_canonical().is_loopback(),
        };
        let https = match u.scheme() {
            "https" => true,
            "http" if loopback_host => false,
            "http" => {
                return Err(bad(
                    "plain http:// is allowed only to this machine (127.0.0.1, [::1], localhost); use https://".into(),
                ));
            }
            other => return Err(bad(format!("the scheme {other}: is not https:"))),
        };
        let literal = match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        };
        if let Some(ip) = literal {
            check_address(ip, loopback_host, allow_private).map_err(bad)?;
        }
        let port = u.port_or_known_default().unwrap_or(443);
        let host_str = u.host_str().unwrap_or_default().to_owned();
        let authority = match u.port() {
            Some(p) => format!("{host_str}:{p}"),
            None => host_str.clone(),
        };
        let target = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        };
        let tls = if https {
            let extra: Vec<PathBuf> = ca_file.into_iter().collect();
            let client = crate::tls::HttpsClient::new(&extra)?;
            let bare = host_str.trim_start_matches('[').trim_end_matches(']');
            let name = ServerName::try_from(bare.to_owned())
                .map_err(|e| bad(format!("not a TLS server name ({e})")))?;
            Some((client.connector().clone(), name))
        } else {
            None
        };
        let checked = credential_headers(headers).map_err(bad)?;
        Ok(Remote {
            url: u,
            authority,
            target,
            port,
            loopback_host,
            tls,
            headers: std::sync::RwLock::new(checked),
            refresh: None,
            allow_private,
        })
    }

    /// Credentials that can change while serving (short-lived tokens from a `cmd:` or a `file:`
    /// reference): `refresh` resolves them again at most every few seconds before a request, and at once
    /// when the upstream answers 401, after which the request is sent once more with the new values.
    #[must_use]
    pub fn refreshing(mut self, refresh: Refresh) -> Remote {
        self.refresh = Some((refresh, std::sync::Mutex::new(Instant::now())));
        self
    }

    /// Resolves the credentials again if they may have changed (`force`: the upstream just refused
    /// them). `Ok(true)` when different values are now in place.
    async fn refresh_credentials(&self, force: bool) -> Result<bool, String> {
        let Some((refresh, last)) = &self.refresh else {
            return Ok(false);
        };
        {
            let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
            if !force && last.elapsed() < REFRESH_EVERY {
                return Ok(false);
            }
            *last = Instant::now();
        }
        let refresh = refresh.clone();
        let pairs = tokio::task::spawn_blocking(move || refresh())
            .await
            .map_err(|e| e.to_string())??;
        let fresh = credential_headers(pairs)?;
        let mut headers = self.headers.write().unwrap_or_else(|p| p.into_inner());
        let changed = *headers != fresh;
        *headers = fresh;
        Ok(changed)
    }

    /// The endpoint, for banners and the audit trail (never carries credentials: they are refused).
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Resolves, checks every address, connects to a checked one and completes TLS and the HTTP/1.1
    /// handshake.
    async fn connect(&self) -> Result<Sender, ConnectError> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.connect_inner())
            .await
            .unwrap_or_else(|_| {
                Err(ConnectError::Failed(format!(
                    "no connection within {}s",
                    CONNECT_TIMEOUT.as_secs()
                )))
            })
    }

    async fn connect_inner(&self) -> Result<Sender, ConnectError> {
        let addrs: Vec<SocketAddr> = match self.url.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), self.port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), self.port)],
            Some(url::Host::Domain(d)) => tokio::net::lookup_host((d, self.port))
                .await
                .map_err(|e| ConnectError::Failed(format!("cannot resolve {d}: {e}")))?
                .collect(),
            None => Vec::new(),
        };
        if addrs.is_empty() {
            return Err(ConnectError::Failed(format!(
                "{} resolves to no address",
                self.authority
            )));
        }
        // Every address, before any connection: one refused address refuses the name, so a name cannot
        // slip an internal address in among public ones and win by ordering.
        for a in &addrs {
            check_address(a.ip(), self.loopback_host, self.allow_private)
                .map_err(|why| ConnectError::Refused(format!("{}: {why}", self.authority)))?;
        }
        let mut last = None;
        let mut tcp = None;
        for a in &addrs {
            match tokio::net::TcpStream::connect(a).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(format!("{a}: {e}")),
            }
        }
        let Some(tcp) = tcp else {
            return Err(ConnectError::Failed(format!(
                "cannot connect to {}: {}",
                self.authority,
                last.unwrap_or_default()
            )));
        };
        let _ = tcp.set_nodelay(true);
        let fail = |e: String| ConnectError::Failed(format!("{}: {e}", self.authority));
        match &self.tls {
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| fail(format!("TLS: {e}")))?;
                handshake(TokioIo::new(tls)).await.map_err(fail)
            }
            None => handshake(TokioIo::new(tcp)).await.map_err(fail),
        }
    }

    fn request(&self, method: Method, body: Bytes, state: &Shared) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(method.clone())
            .uri(self.target.as_str())
            .header(header::HOST, self.authority.as_str())
            .header(
                header::USER_AGENT,
                concat!("palisade/", env!("CARGO_PKG_VERSION")),
            );
        if method == Method::POST {
            b = b
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ACCEPT, "application/json, text/event-stream");
        } else if method == Method::GET {
            b = b.header(header::ACCEPT, "text/event-stream");
        }
        let (sid, version) = state.session();
        if let Some(sid) = sid {
            b = b.header(SESSION_HEADER, sid);
        }
        if let Some(v) = version {
            b = b.header(VERSION_HEADER, v);
        }
        for (n, v) in self
            .headers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            b = b.header(n, v);
        }
        b.body(Full::new(body)).unwrap_or_else(|_| {
            // Every part was validated when the remote was built; an empty request fails upstream visibly.
            Request::new(Full::new(Bytes::new()))
        })
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn handshake<I>(io: I) -> Result<Sender, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (send, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// Credential headers, checked and marked sensitive. An error names the header, never its value.
fn credential_headers(
    headers: Vec<(String, String)>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut checked = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{name:?} is not a header name"))?;
        let mut v = HeaderValue::from_str(&value).map_err(|_| {
            format!(
                "the value of header {name} is not a valid header value (a line break or control character?)"
            )
        })?;
        v.set_sensitive(true);
        checked.push((n, v));
    }
    Ok(checked)
}

/// Whether palisade may connect to `ip` for an upstream whose URL names loopback (`loopback_host`) or
/// not, under `allow_private`. Uses palisade's one special-address classifier.
pub(crate) fn check_address(
    ip: IpAddr,
    loopback_host: bool,
    allow_private: bool,
) -> Result<(), String> {
    let canonical = ip.to_canonical();
    if loopback_host {
        // http:// is allowed only because the URL names this machine: hold the name to it.
        return if canonical.is_loopback() {
            Ok(())
        } else {
            Err(format!(
                "{ip} is not a loopback address, but the URL names this machine (localhost); palisade refuses"
            ))
        };
    }
    let Some(why) = palisade_guard::args::urls::special_ip(ip) else {
        return Ok(());
    };
    let metadata =
        palisade_guard::args::urls::special_ip(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)))
            .unwrap_or_default();
    if canonical.is_unspecified() || (!metadata.is_empty() && why.contains(&metadata)) {
        return Err(format!("{ip} is {why}; palisade never connects there"));
    }
    if allow_private {
        return Ok(());
    }
    Err(format!(
        "{ip} is {why}; palisade refuses such addresses for a remote server unless its table says allow_private = true"
    ))
}

/// The upstream session's state, shared by the bridge's tasks.
#[derive(Default)]
struct Shared {
    inner: Mutex<SessionInner>,
}

#[derive(Default)]
struct SessionInner {
    sid: Option<HeaderValue>,
    version: Option<HeaderValue>,
    pool: Vec<Sender>,
    /// Tool definitions from the upstream's `tools/list` answers: which arguments a 2026-07-28
    /// `tools/call` mirrors into `Mcp-Param-*` headers.
    tools: std::collections::HashMap<String, serde_json::Map<String, Value>>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, SessionInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn session(&self) -> (Option<HeaderValue>, Option<HeaderValue>) {
        let g = self.lock();
        (g.sid.clone(), g.version.clone())
    }

    fn take(&self) -> Option<Sender> {
        let mut g = self.lock();
        while let Some(s) = g.pool.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    fn give_back(&self, s: Sender) {
        let mut g = self.lock();
        if !s.is_closed() && g.pool.len() < POOL {
            g.pool.push(s);
        }
    }
}

/// One upstream session's bridge: what the upstream task reads and writes, and how it ends.
pub(crate) struct Opened {
    pub(crate) reader: tokio::io::ReadHalf<tokio::io::DuplexStream>,
    pub(crate) writer: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    /// Waits for the bridge to end its upstream session (blocking); returns how it ended.
    pub(crate) stop: Box<dyn FnOnce() -> String + Send>,
}

/// Starts the bridge of one upstream session for `backend`.
pub(crate) fn open(remote: Arc<Remote>, backend: Arc<dyn Backend>) -> Opened {
    let policy = backend.pipeline().policy().clone();
    let max = policy.limits.max_message_bytes;
    let answer_timeout = policy.limits.call_timeout + ANSWER_MARGIN;
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (reader, writer) = tokio::io::split(ours);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<String>();
    let bridge = Bridge {
        remote,
        backend,
        shared: Arc::new(Shared::default()),
        max,
        answer_timeout,
    };
    tokio::spawn(async move {
        let why = bridge.run(theirs).await;
        let _ = done_tx.send(why);
    });
    let stop = Box::new(move || {
        done_rx
            .recv_timeout(DELETE_TIMEOUT + Duration::from_secs(5))
            .unwrap_or_else(|_| "upstream session state unknown (the bridge did not finish)".into())
    });
    Opened {
        reader,
        writer,
        stop,
    }
}

#[derive(Clone)]
struct Bridge {
    remote: Arc<Remote>,
    backend: Arc<dyn Backend>,
    shared: Arc<Shared>,
    max: usize,
    answer_timeout: Duration,
}

/// Where the bridge's tasks send what they learned.
enum Signal {
    /// The upstream session is gone (404 on a session request).
    Gone(String),
}

impl Bridge {
    async fn run(self, io: tokio::io::DuplexStream) -> String {
        let (from_up, mut to_up) = tokio::io::split(io);
        let (lines_tx, mut lines_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        // One writer, so concurrent answers never interleave inside a line.
        let writer = tokio::spawn(async move {
            while let Some(mut line) = lines_rx.recv().await {
                line.push(b'\n');
                if to_up.write_all(&line).await.is_err() {
                    break;
                }
            }
            let _ = to_up.shutdown().await;
        });
        let (sig_tx, mut sig_rx) = mpsc::unbounded_channel::<Signal>();
        let mut tasks = JoinSet::new();
        let mut listening = false;
        let mut input = BufReader::new(from_up).split(b'\n');
        let mut gone = false;
        let ended = loop {
            tokio::select! {
                line = input.next_segment() => {
                    let Ok(Some(line)) = line else { break "session closed".to_owned() };
                    let Ok(msg) = Message::parse(&line) else { continue };
                    let initialize = msg.method() == Some("initialize");
                    let initialized = msg.method() == Some("notifications/initialized");
                    match msg.kind() {
                        // initialize first, alone: what follows needs its session id and version.
                        Kind::Request { .. } if initialize => {
                            self.clone().exchange(msg, lines_tx.clone(), sig_tx.clone()).await;
                        }
                        Kind::Request { .. } => {
                            tasks.spawn(self.clone().exchange(msg, lines_tx.clone(), sig_tx.clone()));
                        }
                        // Notifications and responses in order: `initialized` must precede the requests after it.
                        _ => {
                            self.clone().exchange(msg, lines_tx.clone(), sig_tx.clone()).await;
                            if initialized && !listening {
                                listening = true;
                                tasks.spawn(self.clone().listen(lines_tx.clone(), sig_tx.clone()));
                            }
                        }
                    }
                }
                Some(Signal::Gone(why)) = sig_rx.recv() => {
                    gone = true;
                    break why;
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        };
        tasks.abort_all();
        drop(lines_tx);
        let _ = writer.await;
        let closed = if gone {
            String::new()
        } else {
            self.delete().await
        };
        format!("upstream {}: {ended}{closed}", self.remote.url())
    }

    /// Ends the upstream session, if one was started.
    async fn delete(&self) -> String {
        if self.shared.session().0.is_none() {
            return String::new();
        }
        let req = self
            .remote
            .request(Method::DELETE, Bytes::new(), &self.shared);
        let sent = tokio::time::timeout(DELETE_TIMEOUT, async {
            let mut s = match self.shared.take() {
                Some(s) => s,
                None => self.remote.connect().await.map_err(|e| match e {
                    ConnectError::Refused(m) | ConnectError::Failed(m) => m,
                })?,
            };
            s.ready().await.map_err(|e| e.to_string())?;
            s.send_request(req)
                .await
                .map(|r| r.status())
                .map_err(|e| e.to_string())
        })
        .await;
        match sent {
            Ok(Ok(st)) if st.is_success() => "; upstream session deleted".into(),
            Ok(Ok(StatusCode::METHOD_NOT_ALLOWED)) => {
                "; the upstream does not delete sessions (405)".into()
            }
            Ok(Ok(st)) => format!("; upstream DELETE answered HTTP {}", st.as_u16()),
            Ok(Err(e)) => format!("; upstream DELETE failed: {e}"),
            Err(_) => "; upstream DELETE timed out".into(),
        }
    }

    /// Sends one message upstream and relays what comes back.
    async fn exchange(
        self,
        msg: Message,
        out: mpsc::UnboundedSender<Vec<u8>>,
        sig: mpsc::UnboundedSender<Signal>,
    ) {
        let id = msg
            .id()
            .cloned()
            .filter(|_| matches!(msg.kind(), Kind::Request { .. }));
        let method = msg.method().unwrap_or("(response)").to_owned();
        let fail = |code: i64, text: &str| {
            if let Some(id) = &id {
                let _ = out.send(error_response(Some(id), code, text));
            }
        };
        if let Err(why) = self.remote.refresh_credentials(false).await {
            self.event(
                &method,
                "upstream-credentials-unresolved",
                format!("the credentials could not be resolved again ({why}); the previous ones are sent"),
            );
        }
        let mut refreshed = false;
        let res = loop {
            let mut req = self.remote.request(
                Method::POST,
                Bytes::copy_from_slice(msg.raw()),
                &self.shared,
            );
            if self.shared.session().1.is_none() {
                // No session was negotiated: a 2026-07-28 request carries its own version; mirror it,
                // and the arguments its tool annotates with `x-mcp-header`.
                stateless_headers(&msg, req.headers_mut());
                self.param_headers(&msg, req.headers_mut());
            }
            let sent = self.send(req).await;
            // A 401 to credentials that can change: resolve them again and, if they did change, send
            // the request once more (the upstream refused it before doing anything with it).
            if let Ok((res, _)) = &sent
                && res.status() == StatusCode::UNAUTHORIZED
                && !refreshed
            {
                match self.remote.refresh_credentials(true).await {
                    Ok(true) => {
                        refreshed = true;
                        self.event(
                            &method,
                            "upstream-credentials-refreshed",
                            format!(
                                "{} answered HTTP 401; the credentials were resolved again and the request sent once more",
                                self.remote.url()
                            ),
                        );
                        continue;
                    }
                    Ok(false) => {}
                    Err(why) => self.event(
                        &method,
                        "upstream-credentials-unresolved",
                        format!(
                            "after HTTP 401 the credentials could not be resolved again: {why}"
                        ),
                    ),
                }
            }
            break sent;
        };
        let res = match res {
            Ok(r) => r,
            Err(ConnectError::Refused(why)) => {
                fail(
                    error_codes::SERVER_UNAVAILABLE,
                    &format!("palisade: refused to connect to the remote server: {why}"),
                );
                return;
            }
            Err(ConnectError::Failed(why)) => {
                self.event(
                    &method,
                    "upstream-unreachable",
                    format!("{}: {why}", self.remote.url()),
                );
                fail(
                    error_codes::SERVER_UNAVAILABLE,
                    &format!("palisade: the remote server could not be reached: {why}"),
                );
                return;
            }
        };
        let (res, sender) = res;
        let status = res.status();
        if status == StatusCode::NOT_FOUND && self.shared.session().0.is_some() {
            self.http_error(&method, status, "upstream-session-gone");
            fail(
                error_codes::SERVER_UNAVAILABLE,
                "palisade: the remote server ended the session (HTTP 404); start a new session",
            );
            let _ = sig.send(Signal::Gone(
                "the upstream session is gone (HTTP 404)".into(),
            ));
            return;
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            self.http_error(&method, status, "upstream-unauthorized");
            fail(
                error_codes::SERVER_UNAVAILABLE,
                &format!(
                    "palisade: the remote server refused palisade's credentials (HTTP {}); the operator must fix bearer/headers of [servers.{}]",
                    status.as_u16(),
                    self.backend.name()
                ),
            );
            return;
        }
        if status.is_redirection() {
            self.http_error(&method, status, "upstream-redirect");
            fail(
                error_codes::SERVER_UNAVAILABLE,
                &format!(
                    "palisade: the remote server answered a redirect (HTTP {}), which palisade never follows; the operator must put the final URL in the policy",
                    status.as_u16()
                ),
            );
            return;
        }
        if !status.is_success() {
            self.http_error(&method, status, "upstream-http-error");
            fail(
                error_codes::SERVER_UNAVAILABLE,
                &format!(
                    "palisade: the remote server answered HTTP {}",
                    status.as_u16()
                ),
            );
            return;
        }
        if id.is_some() && method == "initialize" {
            let mut g = self.shared.lock();
            g.sid = res
                .headers()
                .get(SESSION_HEADER)
                .filter(|v| v.to_str().is_ok_and(|s| !s.is_empty() && s.len() <= 1024))
                .cloned();
        }
        let sse = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"));
        let relayed = if sse {
            let mut stream = Sse::new(self.max);
            self.relay_stream(res.into_body(), &mut stream, id.as_ref(), &out)
                .await
        } else {
            self.relay_json(res.into_body(), id.as_ref(), &out).await
        };
        match relayed {
            Ok(Relayed {
                answered: true,
                complete,
            }) => {
                if complete {
                    self.shared.give_back(sender);
                }
            }
            Ok(Relayed {
                answered: false,
                complete,
            }) => {
                if complete {
                    self.shared.give_back(sender);
                }
                if id.is_some() {
                    self.http_error(&method, status, "upstream-no-answer");
                    fail(
                        error_codes::SERVER_UNAVAILABLE,
                        "palisade: the remote server ended its answer without a response to this request",
                    );
                }
            }
            Err(why) => {
                self.event(
                    &method,
                    "upstream-broken",
                    format!("{}: {why}", self.remote.url()),
                );
                fail(
                    error_codes::SERVER_UNAVAILABLE,
                    &format!(
                        "palisade: the connection to the remote server broke before its answer: {why}"
                    ),
                );
            }
        }
    }

    /// Sends `req` on a pooled connection (or a new, checked one) and waits for the response head.
    async fn send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<(hyper::Response<hyper::body::Incoming>, Sender), ConnectError> {
        let mut req = req;
        // A pooled connection the upstream closed meanwhile gives the request back unsent: it goes out
        // again on a new connection (never a request that may have reached the upstream).
        if let Some(mut s) = self.shared.take()
            && s.ready().await.is_ok()
        {
            match tokio::time::timeout(self.answer_timeout, s.try_send_request(req)).await {
                Ok(Ok(res)) => return Ok((res, s)),
                Ok(Err(mut e)) => match e.take_message() {
                    Some(back) => req = back,
                    None => return Err(ConnectError::Failed(e.into_error().to_string())),
                },
                Err(_) => return Err(self.no_answer()),
            }
        }
        let mut s = self.remote.connect().await.inspect_err(|e| {
            if let ConnectError::Refused(why) = e {
                self.refused(why);
            }
        })?;
        let answer = tokio::time::timeout(self.answer_timeout, async {
            s.ready().await?;
            s.send_request(req).await
        })
        .await
        .map_err(|_| self.no_answer())?
        .map_err(|e| ConnectError::Failed(e.to_string()))?;
        Ok((answer, s))
    }

    /// `Mcp-Param-{Name}` headers of a 2026-07-28 `tools/call`, from the tool's definition as the
    /// upstream listed it (the guard pipeline lists the tools before any call goes out).
    fn param_headers(&self, msg: &Message, h: &mut hyper::HeaderMap) {
        if msg.method() != Some("tools/call") {
            return;
        }
        let params = msg.params();
        let Some(name) = params.and_then(|p| p.get("name")).and_then(Value::as_str) else {
            return;
        };
        let g = self.shared.lock();
        let Some(def) = g.tools.get(name) else {
            return;
        };
        for (param, value) in
            crate::headers::mirrored_param_headers(def, params.and_then(|p| p.get("arguments")))
        {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(format!("mcp-param-{param}").as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                h.insert(n, v);
            }
        }
    }

    fn no_answer(&self) -> ConnectError {
        ConnectError::Failed(format!(
            "no answer within {}s",
            self.answer_timeout.as_secs()
        ))
    }

    /// A JSON body: one message or an array of them.
    async fn relay_json(
        &self,
        body: hyper::body::Incoming,
        id: Option<&Id>,
        out: &mpsc::UnboundedSender<Vec<u8>>,
    ) -> Result<Relayed, String> {
        let bytes =
            tokio::time::timeout(self.answer_timeout, Limited::new(body, self.max).collect())
                .await
                .map_err(|_| {
                    format!(
                        "the answer did not complete within {}s",
                        self.answer_timeout.as_secs()
                    )
                })?
                .map_err(|e| format!("reading the answer: {e} (limit {} bytes)", self.max))?
                .to_bytes();
        let mut answered = false;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Relayed {
                answered,
                complete: true,
            });
        }
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("the answer is not JSON: {e}"))?;
        let items = match v {
            Value::Array(a) => a,
            other => vec![other],
        };
        for item in items {
            answered |= self.emit(item, id, out);
        }
        Ok(Relayed {
            answered,
            complete: true,
        })
    }

    /// An SSE body: every event's data is one message. Stops once `id` is answered.
    async fn relay_stream(
        &self,
        mut body: hyper::body::Incoming,
        sse: &mut Sse,
        id: Option<&Id>,
        out: &mpsc::UnboundedSender<Vec<u8>>,
    ) -> Result<Relayed, String> {
        let mut answered = false;
        loop {
            let frame = tokio::time::timeout(self.answer_timeout, body.frame())
                .await
                .map_err(|_| {
                    format!(
                        "the event stream was silent for {}s",
                        self.answer_timeout.as_secs()
                    )
                })?;
            let Some(frame) = frame else {
                return Ok(Relayed {
                    answered,
                    complete: true,
                });
            };
            let frame = frame.map_err(|e| format!("reading the event stream: {e}"))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            for event in sse.push(&data)? {
                let Ok(v) = serde_json::from_slice::<Value>(&event) else {
                    continue;
                };
                answered |= self.emit(v, id, out);
            }
            if answered && id.is_some() {
                return Ok(Relayed {
                    answered,
                    complete: false,
                });
            }
        }
    }

    /// Passes one upstream message on as a line; `true` when it is the response to `id`.
    fn emit(&self, v: Value, id: Option<&Id>, out: &mpsc::UnboundedSender<Vec<u8>>) -> bool {
        if !v.is_object() {
            return false;
        }
        if id.is_some()
            && v.get("method").is_none()
            && let Some(version) = v
                .get("result")
                .and_then(|r| r.get("protocolVersion"))
                .and_then(Value::as_str)
            && let Ok(h) = HeaderValue::from_str(version)
        {
            // The initialize result: later requests carry the negotiated version.
            let mut g = self.shared.lock();
            if g.version.is_none() {
                g.version = Some(h);
            }
        }
        let is_answer = v.get("method").is_none()
            && id.is_some_and(|id| v.get("id").and_then(Id::from_value).as_ref() == Some(id));
        if is_answer
            && let Some(tools) = v
                .get("result")
                .and_then(|r| r.get("tools"))
                .and_then(Value::as_array)
        {
            let mut g = self.shared.lock();
            for t in tools {
                if let Some(def) = t.as_object()
                    && let Some(name) = def.get("name").and_then(Value::as_str)
                {
                    g.tools.insert(name.to_owned(), def.clone());
                }
            }
        }
        if let Ok(line) = serde_json::to_vec(&v) {
            let _ = out.send(line);
        }
        is_answer
    }

    /// The standalone GET stream for server-initiated messages, while the session lasts.
    async fn listen(self, out: mpsc::UnboundedSender<Vec<u8>>, sig: mpsc::UnboundedSender<Signal>) {
        let mut failures = 0;
        let mut last_event: Option<HeaderValue> = None;
        while failures < LISTEN_RETRIES {
            let mut req = self.remote.request(Method::GET, Bytes::new(), &self.shared);
            if let Some(id) = &last_event {
                req.headers_mut().insert("last-event-id", id.clone());
            }
            let res = match self.send(req).await {
                Ok((r, _)) => r,
                Err(_) => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            match res.status() {
                StatusCode::OK => {}
                // The upstream offers no stream: fine, server messages come on POST streams only.
                StatusCode::METHOD_NOT_ALLOWED => return,
                StatusCode::NOT_FOUND => {
                    let _ = sig.send(Signal::Gone(
                        "the upstream session is gone (HTTP 404 on its stream)".into(),
                    ));
                    return;
                }
                st => {
                    self.http_error("GET", st, "upstream-http-error");
                    return;
                }
            }
            let mut sse = Sse::new(self.max);
            let mut body = res.into_body();
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let Ok(events) = sse.push(&data) else { break };
                failures = 0;
                for event in events {
                    if let Ok(v) = serde_json::from_slice::<Value>(&event) {
                        self.emit(v, None, &out);
                    }
                }
                if let Some(id) = sse
                    .last_id
                    .as_deref()
                    .and_then(|s| HeaderValue::from_str(s).ok())
                {
                    last_event = Some(id);
                }
            }
            failures += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    fn event(&self, method: &str, reason: &str, detail: String) {
        let mut ev = Event::new(AuditKind::Egress, self.backend.name())
            .decision(Decision::Deny)
            .reason(reason)
            .detail(palisade_audit::redact_str(&detail).into_owned());
        if method != "(response)" {
            ev = ev.method(method);
        }
        ev.status = Some(Status::Error);
        self.backend.event(ev);
    }

    fn refused(&self, why: &str) {
        let mut ev = Event::new(AuditKind::Egress, self.backend.name())
            .decision(Decision::Deny)
            .reason("upstream-address-refused")
            .detail(
                palisade_audit::redact_str(&format!("{}: {why}", self.remote.url())).into_owned(),
            );
        ev.status = Some(Status::Denied);
        self.backend.event(ev);
        eprintln!(
            "palisade: [{}] refused to connect upstream: {why}",
            self.backend.name()
        );
    }

    fn http_error(&self, method: &str, status: StatusCode, reason: &str) {
        self.event(
            method,
            reason,
            format!("{} answered HTTP {}", self.remote.url(), status.as_u16()),
        );
    }
}

/// How a response body ended.
struct Relayed {
    /// The request's response was among the messages.
    answered: bool,
    /// The body was read to its end (the connection can be reused).
    complete: bool,
}

/// The 2026-07-28 mirrored headers of a request that carries its own `_meta` version (no session).
fn stateless_headers(msg: &Message, h: &mut hyper::HeaderMap) {
    let Some(version) = palisade_mcp::era::request_meta_version(msg.params()) else {
        return;
    };
    let mut set = |name: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(name, v);
        }
    };
    set(VERSION_HEADER, version);
    if let Some(m) = msg.method() {
        set("mcp-method", m);
        let name = msg
            .params()
            .and_then(|p| p.get("name").or_else(|| p.get("uri")))
            .and_then(Value::as_str);
        if let Some(n) = name {
            set("mcp-name", n);
        }
    }
}

/// An incremental Server-Sent Events parser: complete events' `data`, each capped at `max` bytes.
struct Sse {
    buf: BytesMut,
    data: Vec<u8>,
    has_data: bool,
    event: String,
    last_id: Option<String>,
    max: usize,
}

impl Sse {
    fn new(max: usize) -> Sse {
        Sse {
            buf: BytesMut::new(),
            data: Vec::new(),
            has_data: false,
            event: String::new(),
            last_id: None,
            max,
        }
    }

    /// Feeds bytes; returns the data of every event they complete (events named other than `message`
    /// are skipped).
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n' || b == b'\r') {
            // A CR LF pair is one line end; a lone CR at the end of the buffer may be followed by LF.
            let crlf = self.buf[nl] == b'\r' && self.buf.get(nl + 1) == Some(&b'\n');
            if self.buf[nl] == b'\r' && nl + 1 == self.buf.len() {
                break;
            }
            let line = self.buf.split_to(nl).freeze();
            let _ = self.buf.split_to(if crlf { 2 } else { 1 });
            self.line(&line, &mut out);
        }
        if self.buf.len() > self.max || self.data.len() > self.max {
            return Err(format!(
                "an event of the stream exceeds {} bytes (limits.max_message_bytes)",
                self.max
            ));
        }
        Ok(out)
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Vec<u8>>) {
        if line.is_empty() {
            if self.has_data && (self.event.is_empty() || self.event == "message") {
                out.push(std::mem::take(&mut self.data));
            }
            self.data.clear();
            self.has_data = false;
            self.event.clear();
            return;
        }
        if line.starts_with(b":") {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"id" if !value.contains(&0) => {
                self.last_id = Some(String::from_utf8_lossy(value).into_owned());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_private_link_local_and_metadata_addresses() {
        for a in [
            "10.0.0.1",
            "192.168.1.2",
            "172.16.0.9",
            "::ffff:10.0.0.1",
            "fd00::1",
            "169.254.1.1",
        ] {
            let err = check_address(ip(a), false, false).unwrap_err();
            assert!(err.contains("allow_private"), "{a}: {err}");
            assert!(
                check_address(ip(a), false, true).is_ok(),
                "{a} with allow_private"
            );
        }
        for a in [
            "169.254.169.254",
            "::ffff:169.254.169.254",
            "fd00:ec2::254",
            "0.0.0.0",
            "::",
        ] {
            let err = check_address(ip(a), false, true).unwrap_err();
            assert!(err.contains("never connects"), "{a}: {err}");
        }
        assert!(check_address(ip("93.184.216.34"), false, false).is_ok());
    }

    #[test]
    fn loopback_only_when_the_url_names_this_machine() {
        // A public name resolving to loopback is refused without allow_private (a rebinding name).
        assert!(check_address(ip("127.0.0.1"), false, false).is_err());
        assert!(check_address(ip("127.0.0.1"), true, false).is_ok());
        assert!(check_address(ip("::1"), true, false).is_ok());
        assert!(check_address(ip("::ffff:127.0.0.1"), true, false).is_ok());
        // `localhost` that resolves elsewhere is refused, even with allow_private.
        assert!(check_address(ip("10.0.0.1"), true, true).is_err());
        assert!(check_address(ip("93.184.216.34"), true, false).is_err());
    }

    #[test]
    fn new_refuses_plain_http_credentials_and_private_literals() {
        let e = Remote::new("http://example.com/mcp", vec![], false, None).unwrap_err();
        assert!(e.to_string().contains("https://"), "{e}");
        let e = Remote::new("https://u:p@example.com/mcp", vec![], false, None).unwrap_err();
        assert!(e.to_string().contains("credentials"), "{e}");
        for url in [
            "https://10.0.0.1/mcp",
            "https://[::ffff:10.0.0.1]/mcp",
            "https://169.254.169.254/latest",
        ] {
            let e = Remote::new(url, vec![], false, None).unwrap_err();
            assert!(
                e.to_string().contains("10.0.0.1") || e.to_string().contains("169.254"),
                "{url}: {e}"
            );
        }
        let e = Remote::new("https://169.254.169.254/", vec![], true, None).unwrap_err();
        assert!(e.to_string().contains("never connects"), "{e}");
        let r = Remote::new(
            "http://127.0.0.1:9/mcp?x=1",
            vec![("Authorization".into(), "Bearer sekrit".into())],
            false,
            None,
        )
        .unwrap();
        assert_eq!(r.target, "/mcp?x=1");
        assert_eq!(r.authority, "127.0.0.1:9");
        assert!(!format!("{r:?}").contains("sekrit"));
        let e = Remote::new(
            "http://127.0.0.1/mcp",
            vec![("X-Key".into(), "a\r\nInjected: 1".into())],
            false,
            None,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("Injected"), "{e}");
    }

    #[test]
    fn sse_parser_splits_events_across_chunks_and_line_ends() {
        let mut p = Sse::new(1024);
        assert!(
            p.push(b"event: message\r\nid: 7\r\ndata: {\"a\":")
                .unwrap()
                .is_empty()
        );
        let ev = p
            .push(b"1}\r\n\r\n: keepalive\n\ndata: {\"b\"\ndata: :2}\n\n")
            .unwrap();
        assert_eq!(ev, vec![b"{\"a\":1}".to_vec(), b"{\"b\"\n:2}".to_vec()]);
        assert_eq!(p.last_id.as_deref(), Some("7"));
        // Events of another type are not messages.
        assert!(p.push(b"event: ping\ndata: x\n\n").unwrap().is_empty());
        // A lone CR at a chunk boundary waits for a possible LF.
        assert!(p.push(b"data: 1\r").unwrap().is_empty());
        assert_eq!(p.push(b"\n\r\n").unwrap(), vec![b"1".to_vec()]);
        let mut small = Sse::new(8);
        assert!(small.push(b"data: 0123456789").is_err());
    }
}
