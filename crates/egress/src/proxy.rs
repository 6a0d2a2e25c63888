//! The accept loop and one connection's life: read the head, check the host, resolve, re-check every
//! address, connect, then relay until both sides are done.
//!
//! Blocking std I/O, one thread per connection, at most [`Limits::max_connections`] of them: a sandboxed
//! server opens a handful of connections, and blocking code with explicit timeouts is easier to get right
//! (and to audit) than an async runtime.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::event::{Decision, EgressEvent, Reason};
use crate::http::{self, HeadError, Target};
use crate::policy::{EgressPolicy, Host, Refused};
use crate::resolve::{Resolve, SystemResolver};

/// How often the accept loop looks at [`Stop`] while no client connects.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// Bounds on what one client can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; more are answered 503 (default 64).
    pub max_connections: usize,
    /// Time for the whole request head to arrive (default 30 s).
    pub header_timeout: Duration,
    /// Largest request head, request line and terminator included (default 16 KiB).
    pub max_header_bytes: usize,
    /// Time to connect to one resolved address (default 10 s).
    pub connect_timeout: Duration,
    /// A relay with no bytes in either direction for this long is closed (default 5 min, so long polls and
    /// event streams survive).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 64,
            header_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Everything [`serve_with`] needs besides the listener, the policy and the event sink.
#[derive(Clone)]
pub struct Config {
    /// Name resolution ([`SystemResolver`] by default; tests inject a fake).
    pub resolver: Arc<dyn Resolve>,
    /// Limits.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            resolver: Arc::new(SystemResolver),
            limits: Limits::default(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Tells [`serve`] to stop accepting. Connections already relaying finish on their own (bounded by the
/// idle timeout); [`serve`] waits up to [`DRAIN_GRACE`] for them before it returns.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A fresh, unset handle.
    pub fn new() -> Stop {
        Stop::default()
    }
    /// Asks the accept loop to return (within a few tens of milliseconds).
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether [`Stop::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How long [`serve`], once stopped, waits for connections in flight to end (and report their events).
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);

type Events = Arc<dyn Fn(EgressEvent) + Send + Sync>;

struct Ctx {
    policy: Arc<EgressPolicy>,
    config: Config,
    events: Events,
}

/// Serves proxy clients from `listener` with the system resolver and default [`Limits`] until `stop`.
pub fn serve(
    listener: TcpListener,
    policy: Arc<EgressPolicy>,
    events: impl Fn(EgressEvent) + Send + Sync + 'static,
    stop: Stop,
) -> io::Result<()> {
    serve_with(listener, policy, Config::default(), events, stop)
}

/// [`serve`] with an explicit resolver and limits. Returns `Ok` once `stop` is set, or the accept error
/// that made serving impossible. Every accepted connection produces exactly one [`EgressEvent`].
pub fn serve_with(
    listener: TcpListener,
    policy: Arc<EgressPolicy>,
    config: Config,
    events: impl Fn(EgressEvent) + Send + Sync + 'static,
    stop: Stop,
) -> io::Result<()> {
    // Non-blocking accept so `stop` is noticed without a wake-up connection (the listener may be one the
    // caller cannot connect to).
    listener.set_nonblocking(true)?;
    let ctx = Arc::new(Ctx {
        policy,
        config,
        events: Arc::new(events),
    });
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.is_stopped() {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(ACCEPT_POLL);
                continue;
            }
            Err(e) if transient(&e) => {
                thread::sleep(ACCEPT_POLL);
                continue;
            }
            Err(e) => return Err(e),
        };
        let start = Instant::now();
        // Some platforms hand out accepted sockets with the listener's O_NONBLOCK.
        if client.set_nonblocking(false).is_err() {
            continue;
        }
        if active.load(Ordering::SeqCst) >= ctx.config.limits.max_connections {
            let rec = Record::new(start);
            let detail = format!(
                "the egress proxy already serves {} connections; retry later",
                ctx.config.limits.max_connections
            );
            let mut client = client;
            let _ = client.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = http::write_error(&mut client, 503, &detail);
            rec.deny(&ctx, Reason::TooManyConnections, detail);
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(Arc::clone(&active));
        let ctx = Arc::clone(&ctx);
        let spawned = thread::Builder::new()
            .name("palisade-egress".into())
            .spawn(move || {
                let _slot = slot;
                handle(&ctx, client, start);
            });
        if spawned.is_err() {
            // The slot moved into the closure was dropped with it; the client socket too.
            thread::sleep(ACCEPT_POLL);
        }
    }
    // Connections still relaying end on their own, usually at once: the caller stops the proxy after the
    // server is gone, which closed their client sides. Wait for them (bounded) so that each one's event
    // is delivered before this returns; a caller that drains its events next then loses none.
    let deadline = Instant::now() + DRAIN_GRACE;
    while active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        thread::sleep(ACCEPT_POLL);
    }
    Ok(())
}

/// Accept errors that concern one connection or a passing resource shortage, not the listener.
fn transient(e: &io::Error) -> bool {
    // EMFILE (24) and ENFILE (23) have the same numbers on Linux and the BSDs; they clear when connections
    // close.
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) || matches!(e.raw_os_error(), Some(23 | 24))
}

/// Releases a connection slot when the connection's thread ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The event under construction for one connection.
struct Record {
    start: Instant,
    event: EgressEvent,
}

impl Record {
    fn new(start: Instant) -> Record {
        Record {
            start,
            event: EgressEvent {
                host: String::new(),
                port: 0,
                ips: Vec::new(),
                decision: Decision::Deny,
                reason: None,
                detail: None,
                bytes_up: 0,
                bytes_down: 0,
                duration: Duration::ZERO,
            },
        }
    }

    fn deny(mut self, ctx: &Ctx, reason: Reason, detail: String) {
        self.event.decision = Decision::Deny;
        self.event.reason = Some(reason);
        self.event.detail = Some(detail);
        self.event.duration = self.start.elapsed();
        (ctx.events)(self.event);
    }
}

/// A refusal: what the client is told and what the event records.
struct Refusal {
    reason: Reason,
    detail: String,
}

fn refuse(reason: Reason, detail: impl Into<String>) -> Refusal {
    Refusal {
        reason,
        detail: detail.into(),
    }
}

fn handle(ctx: &Ctx, mut client: TcpStream, start: Instant) {
    let mut rec = Record::new(start);
    match open(ctx, &mut client, &mut rec.event) {
        Ok(Opened {
            upstream,
            first_up,
            connect,
        }) => {
            let limits = &ctx.config.limits;
            let (up, down) = relay(client, upstream, first_up, connect, limits.idle_timeout);
            rec.event.decision = Decision::Allow;
            rec.event.bytes_up = up;
            rec.event.bytes_down = down;
            rec.event.duration = rec.start.elapsed();
            (ctx.events)(rec.event);
        }
        Err(r) => {
            let _ = client.set_write_timeout(Some(Duration::from_secs(5)));
            let wrote = http::write_error(&mut client, r.reason.status(), &r.detail);
            rec.deny(ctx, r.reason, r.detail);
            if wrote.is_ok() {
                linger(client);
            }
        }
    }
}

/// After an error response: stop writing and read (and drop) what the client still sends for a moment, so
/// closing with unread bytes does not reset the connection before the client has read the response.
fn linger(mut client: TcpStream) {
    let _ = client.shutdown(Shutdown::Write);
    let until = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 4096];
    let mut budget: usize = 256 * 1024;
    while budget > 0 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || client.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match client.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => budget = budget.saturating_sub(n),
        }
    }
}

/// A connection ready to relay.
struct Opened {
    upstream: TcpStream,
    /// Bytes to send upstream before relaying (rewritten head and early body, or early tunnel bytes).
    first_up: Vec<u8>,
    /// A CONNECT tunnel (half-closes pass through) rather than one forwarded request.
    connect: bool,
}

fn open(ctx: &Ctx, client: &mut TcpStream, ev: &mut EgressEvent) -> Result<Opened, Refusal> {
    let limits = &ctx.config.limits;
    let (head, early) = http::read_head(client, limits.max_header_bytes, limits.header_timeout)
        .map_err(|e| match e {
            HeadError::TooLarge => refuse(
                Reason::HeadersTooLarge,
                format!(
                    "the request head is larger than {} bytes",
                    limits.max_header_bytes
                ),
            ),
            HeadError::Timeout => refuse(
                Reason::Timeout,
                format!(
                    "the request head did not arrive within {} s",
                    limits.header_timeout.as_secs()
                ),
            ),
            HeadError::Closed => refuse(
                Reason::BadRequest,
                "the client closed before sending a request",
            ),
            HeadError::Io(e) => refuse(
                Reason::BadRequest,
                format!("reading the request failed: {e}"),
            ),
        })?;
    let req = http::parse(&head).map_err(|why| refuse(Reason::BadRequest, why))?;
    let (raw_host, port, path) = match &req.target {
        Target::Connect { host, port } => (host.as_str(), *port, None),
        Target::Forward { host, port, path } => (host.as_str(), *port, Some(path.as_str())),
    };
    ev.port = port;
    ev.host = raw_host.to_owned();
    let host = Host::parse(raw_host).map_err(|why| refuse(Reason::BadRequest, why))?;
    let shown = host.display();
    ev.host.clone_from(&shown);
    let policy = &ctx.policy;
    policy
        .check_host(&host, port)
        .map_err(|r| refused(r, &shown, port, policy))?;
    let ips = match &host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => match ctx.config.resolver.resolve(name, port) {
            Ok(ips) if !ips.is_empty() => ips,
            Ok(_) => {
                return Err(refuse(
                    Reason::DnsFailed,
                    format!("`{name}` has no addresses"),
                ));
            }
            Err(e) => {
                return Err(refuse(
                    Reason::DnsFailed,
                    format!("`{name}` did not resolve: {e}"),
                ));
            }
        },
    };
    ev.ips.clone_from(&ips);
    policy
        .check_resolved(&ips, port)
        .map_err(|r| refused(r, &shown, port, policy))?;
    let upstream = connect(&ips, port, limits.connect_timeout).map_err(|e| {
        refuse(
            Reason::ConnectFailed,
            format!("could not connect to {shown}:{port}: {e}"),
        )
    })?;
    let _ = upstream.set_nodelay(true);
    let _ = client.set_nodelay(true);
    match path {
        None => {
            client
                .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                .map_err(|e| refuse(Reason::BadRequest, format!("the client went away: {e}")))?;
            Ok(Opened {
                upstream,
                first_up: early,
                connect: true,
            })
        }
        Some(path) => {
            let host_header = if port == 80 {
                shown
            } else {
                format!("{shown}:{port}")
            };
            let mut first_up = http::origin_head(&req, path, &host_header);
            first_up.extend_from_slice(&early);
            Ok(Opened {
                upstream,
                first_up,
                connect: false,
            })
        }
    }
}

fn refused(r: Refused, shown: &str, port: u16, policy: &EgressPolicy) -> Refusal {
    match r {
        Refused::HostNotAllowed if policy.is_empty() => refuse(
            Reason::HostNotAllowed,
            format!(
                "egress to {shown}:{port} is refused because the policy allows no network destinations; add --allow-net {shown}"
            ),
        ),
        Refused::HostNotAllowed => refuse(
            Reason::HostNotAllowed,
            format!(
                "egress to {shown}:{port} is not in the network allowlist; add --allow-net {shown}"
            ),
        ),
        Refused::SpecialAddress { ip, why } => {
            let hint = Host::Ip(ip).display();
            let what = if Host::Ip(ip).display() == shown {
                format!("{shown} is {why}")
            } else {
                format!("{shown} resolves to {ip}, which is {why}")
            };
            refuse(
                Reason::PrivateAddress,
                format!(
                    "{what}; palisade refuses such addresses unless the policy names this exact one (--allow-net {hint})"
                ),
            )
        }
    }
}

/// Connects to the first address that answers; every address has already passed the policy.
fn connect(ips: &[IpAddr], port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
    for &ip in ips {
        match TcpStream::connect_timeout(&SocketAddr::new(ip, port), timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Relays both ways and returns (bytes up, bytes down). Up runs on a helper thread, down on this one.
fn relay(
    client: TcpStream,
    upstream: TcpStream,
    first_up: Vec<u8>,
    connect: bool,
    idle: Duration,
) -> (u64, u64) {
    let base = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    for s in [&client, &upstream] {
        let _ = s.set_read_timeout(Some(idle));
        let _ = s.set_write_timeout(Some(idle));
    }
    let (Ok(client_w), Ok(upstream_r)) = (client.try_clone(), upstream.try_clone()) else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
        return (0, 0);
    };
    let mut upstream_w = upstream;
    let mut up_initial = 0;
    if !first_up.is_empty() {
        if upstream_w.write_all(&first_up).is_err() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream_w.shutdown(Shutdown::Both);
            return (0, 0);
        }
        up_initial = first_up.len() as u64;
    }
    let pump_up = {
        let last = Arc::clone(&last);
        let client_r = client;
        thread::Builder::new()
            .name("palisade-egress-up".into())
            .spawn(move || pump(client_r, upstream_w, &last, base, idle, false))
    };
    let Ok(pump_up) = pump_up else {
        let _ = client_w.shutdown(Shutdown::Both);
        let _ = upstream_r.shutdown(Shutdown::Both);
        return (up_initial, 0);
    };
    // One forwarded request: once the response is over, the connection is over.
    let down = pump(upstream_r, client_w, &last, base, idle, !connect);
    let up = pump_up.join().unwrap_or(0);
    (up_initial + up, down)
}

/// Copies `from` to `to` until `from` ends, then half-closes `to` (or closes both when `close_all`). A
/// read or write error, or both directions idle for `idle`, closes both sockets, which also wakes the other
/// direction's thread.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    last: &AtomicU64,
    base: Instant,
    idle: Duration,
    close_all: bool,
) -> u64 {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    let kill = |from: &TcpStream, to: &TcpStream| {
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    };
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                if close_all {
                    kill(&from, &to);
                } else {
                    let _ = to.shutdown(Shutdown::Write);
                }
                return total;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    kill(&from, &to);
                    return total;
                }
                total += n as u64;
                last.store(base.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let quiet = (base.elapsed().as_millis() as u64)
                    .saturating_sub(last.load(Ordering::Relaxed));
                if quiet >= idle.as_millis() as u64 {
                    kill(&from, &to);
                    return total;
                }
            }
            Err(_) => {
                kill(&from, &to);
                return total;
            }
        }
    }
}
