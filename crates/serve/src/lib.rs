//! palisade serve: the Streamable HTTP gateway in front of guarded MCP servers.
//!
//! # Brief overview
//! [`serve`] listens on one address (TLS via rustls when configured) and exposes each [`Backend`] at its
//! path (`/mcp` for the quick start, `/mcp/<name>` for a policy's servers). Every request goes through
//! one ordered function ([`http`]): Host and Origin checks, authentication ([`auth`]: palisade client
//! tokens or OAuth 2.1 JWTs), scopes ([`scope`]), rate and size limits, then the protocol era:
//!
//! * **2025-11-25 and earlier** (sessions): `initialize` starts a server process for the session (or joins
//!   the server's one process when its policy says `process = "shared"`), whose random `MCP-Session-Id`
//!   is bound to the client that opened it; requests are answered as JSON or SSE, a GET stream carries
//!   server-initiated messages, DELETE ends the session.
//! * **2026-07-28** (stateless): every request carries its own `_meta`; the mirrored headers
//!   (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`) must equal the body ([`headers`]);
//!   requests share one server process per backend, with ids rewritten so clients never collide.
//!
//! Each server process is driven by one task ([`upstream`]) through the same guard
//! [`palisade_guard::Pipeline`] the stdio proxy uses, so `run` and `serve` enforce one policy the same way,
//! and every decision is recorded (with the client's identity) before the message it describes is
//! released.
//!
//! # Why a separate crate with tokio
//! The stdio proxy is one thread with no runtime (its latency depends on it). A gateway holds many
//! connections, streams and processes at once, which is what an async runtime is for; keeping it here
//! keeps tokio and hyper out of `guard`, `mcp` and the stdio path.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
mod backend;
pub mod config;
mod headers;
mod http;
mod ids;
mod remote;
pub mod scope;
mod sse;
mod tls;
mod upstream;

pub use auth::jwt::OAuthConfig;
pub use auth::tokens::{TokenError, TokenInfo, TokenStore};
pub use backend::{Backend, Spawned};
pub use config::{Config, Limits};
pub use remote::{Refresh, Remote};
pub use scope::{Principal, Scopes};

use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A configuration problem (exit status 2): the message names the setting and the fix.
    #[error("{0}")]
    Config(String),
    /// An I/O failure (binding the address, the runtime).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How long shutdown waits for server processes to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Serves `backends` (`(path, backend)`) until SIGINT or SIGTERM. `ready` is called with the bound
/// address and the base URL once the listener accepts connections.
pub fn serve(
    config: Config,
    backends: Vec<(String, Arc<dyn Backend>)>,
    ready: impl FnOnce(std::net::SocketAddr, &str) + Send,
) -> Result<(), ServeError> {
    // See `Config::threads` for why one event-loop thread is the default.
    let rt = if config.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .enable_all()
            .thread_name("palisade-serve")
            .build()?
    };
    rt.block_on(run(config, backends, ready))
}

async fn run(
    config: Config,
    backends: Vec<(String, Arc<dyn Backend>)>,
    ready: impl FnOnce(std::net::SocketAddr, &str) + Send,
) -> Result<(), ServeError> {
    if backends.is_empty() {
        return Err(ServeError::Config("no servers to serve".into()));
    }
    let checked = config.check()?;
    let tls = match &config.tls {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
            cert, key,
        )?)),
        None => None,
    };
    let oauth = match &config.oauth {
        Some(o) => Some(auth::jwt::OAuth::new(o).await?),
        None => None,
    };
    let auth = auth::Auth {
        no_auth: config.no_auth,
        tokens: if config.no_auth {
            None
        } else {
            config
                .token_store
                .clone()
                .map(|p| auth::tokens::TokenVerifier::new(TokenStore::new(p)))
        },
        oauth,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            ServeError::Io(std::io::Error::new(
                e.kind(),
                format!("cannot listen on {}: {e}", config.listen),
            ))
        })?;
    let local = listener.local_addr()?;
    let mut checked = checked;
    if config.listen.port() == 0 {
        // An ephemeral port: the names clients use carry the port the kernel chose.
        let mut c2 = config.clone();
        c2.listen = local;
        checked = c2.check()?;
    }
    let spawner = backend::Spawner::start()?;
    let gw = http::Gateway::new(checked, config.limits.clone(), auth, backends, spawner);
    ready(local, &gw.checked.base);
    let sem = Arc::new(tokio::sync::Semaphore::new(config.limits.max_connections));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, _peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors and similar: back off instead of spinning.
                        eprintln!("palisade: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = sem.clone().try_acquire_owned() else {
                    // Over --max-connections: close at once rather than queue.
                    drop(tcp);
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let gw = gw.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let header_timeout = gw.limits.header_timeout;
                    match tls {
                        Some(acceptor) => {
                            let Ok(Ok(stream)) =
                                tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await
                            else {
                                return;
                            };
                            serve_connection(gw, TokioIo::new(stream)).await;
                        }
                        None => serve_connection(gw, TokioIo::new(tcp)).await,
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    eprintln!("palisade: shutting down; stopping the servers");
    gw.close_all().await;
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while gw.live.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn serve_connection<I>(gw: Arc<http::Gateway>, io: I)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let header_timeout = gw.limits.header_timeout;
    let svc = hyper::service::service_fn(move |req| {
        let gw = gw.clone();
        async move { Ok::<_, Infallible>(http::handle(gw, req).await) }
    });
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let _ = b.serve_connection(io, svc).await;
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
