//! The gateway's configuration, validated before anything listens.
//!
//! # Defaults and why
//! * Bind `127.0.0.1`: a gateway reachable from the network is a decision, not an accident.
//! * A non-loopback address without TLS is refused unless `--insecure` (for a TLS-terminating proxy in
//!   front): bearer tokens in clear text are stolen tokens.
//! * Authentication is on; `--no-auth` is refused on anything but loopback.
//! * `Host` must name this gateway and `Origin`, when a browser sends one, must be an allowed origin:
//!   together they stop DNS rebinding (CVE-2025-66414/66416 class), where a web page the user visits
//!   reaches a loopback server under a name the attacker controls.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::ServeError;
use crate::auth::jwt::OAuthConfig;

/// Transport and resource limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted (413 above it).
    pub max_body: usize,
    /// Time a client has to send a request's headers, also the keep-alive idle limit (slowloris).
    pub header_timeout: Duration,
    /// Time a client has to send a request's body once its headers arrived.
    pub body_timeout: Duration,
    /// A session with no request in flight and no open stream ends after this long.
    pub session_idle: Duration,
    /// Sessions (server processes) open at once, over all clients.
    pub max_sessions: usize,
    /// Sessions one client may hold at once.
    pub max_sessions_per_client: usize,
    /// Requests per client: `(count, per)`, `None` for no limit.
    pub rate: Option<(u32, Duration)>,
    /// Connections open at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body: 4 << 20,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            session_idle: Duration::from_secs(30 * 60),
            max_sessions: 64,
            max_sessions_per_client: 16,
            rate: Some((100, Duration::from_secs(1))),
            max_connections: 1024,
        }
    }
}

/// Everything `palisade serve` was asked to do, except which servers (see [`crate::Backend`]).
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// `(certificate chain, private key)` PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Allow a non-loopback address without TLS.
    pub insecure: bool,
    /// No authentication (loopback only).
    pub no_auth: bool,
    /// The palisade token store; tokens are accepted when set.
    pub token_store: Option<PathBuf>,
    /// The OAuth issuer whose JWTs are accepted.
    pub oauth: Option<OAuthConfig>,
    /// The URL clients use to reach the gateway (`https://mcp.example.com`); the canonical resource URIs
    /// (token audiences) are built from it. Default: from the listen address.
    pub public_url: Option<String>,
    /// Browser origins allowed besides the gateway's own.
    pub allowed_origins: Vec<String>,
    /// Host names allowed besides the gateway's own (`name` or `name:port`).
    pub allowed_hosts: Vec<String>,
    /// Limits.
    pub limits: Limits,
    /// Threads that serve connections and run the upstream tasks: 1 (the default) runs everything on
    /// one event-loop thread, more runs tokio's work-stealing scheduler with that many workers.
    ///
    /// Why one by default: a request crosses three tasks (connection, upstream, and back), and across
    /// threads each hop is a futex wake-up of a parked worker. Measured with `palisade-bench http`
    /// (BENCHMARKS.md), one thread used 24–30% less CPU per request than the work-stealing scheduler
    /// on this 2-core machine and sustained more requests per second at every concurrency. Raise it
    /// where TLS handshakes or JWT verification, not forwarding, are what the gateway spends its time on.
    pub threads: usize,
}

/// The checked configuration: derived names the request path needs.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    /// `scheme://host[:port]` without a trailing slash.
    pub(crate) base: String,
    /// Allowed `Host` values, lower case.
    pub(crate) hosts: Vec<String>,
    /// Allowed `Origin` values, lower case.
    pub(crate) origins: Vec<String>,
}

impl Config {
    /// Validates the combination of settings and derives the allowed hosts and origins.
    pub(crate) fn check(&self) -> Result<Checked, ServeError> {
        let loopback = self.listen.ip().is_loopback();
        if self.tls.is_none() && !loopback && !self.insecure {
            return Err(ServeError::Config(format!(
                "refusing to serve {} without TLS: bearer tokens would cross the network in clear text; \
                 pass --tls-cert FILE --tls-key FILE, or --insecure when a TLS-terminating proxy fronts palisade",
                self.listen
            )));
        }
        if self.no_auth && !loopback {
            return Err(ServeError::Config(format!(
                "--no-auth is only allowed on a loopback address (127.0.0.1 or ::1), not {}",
                self.listen
            )));
        }
        if !self.no_auth && self.token_store.is_none() && self.oauth.is_none() {
            return Err(ServeError::Config(
                "no way to authenticate clients: configure palisade tokens or --oauth-issuer (or --no-auth on loopback)".into(),
            ));
        }
        if self.listen.ip().is_unspecified() && self.public_url.is_none() {
            return Err(ServeError::Config(format!(
                "listening on {} (every interface) needs --public-url URL: palisade must know the name clients \
                 use, to check Host headers and to name itself in token audiences",
                self.listen
            )));
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let port = self.listen.port();
        let mut hosts = Vec::new();
        let mut origins = Vec::new();
        let base = match &self.public_url {
            Some(u) => {
                let url = url::Url::parse(u)
                    .map_err(|e| ServeError::Config(format!("--public-url {u}: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(ServeError::Config(format!(
                        "--public-url {u} must be an http(s) URL with a host"
                    )));
                }
                if url.path() != "/" || url.query().is_some() {
                    return Err(ServeError::Config(format!(
                        "--public-url {u} must have no path; servers are served at /mcp and /mcp/NAME"
                    )));
                }
                let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
                let origin = url.origin().ascii_serialization().to_ascii_lowercase();
                match url.port() {
                    Some(p) => hosts.push(format!("{host}:{p}")),
                    None => hosts.push(host.clone()),
                }
                origins.push(origin.clone());
                origin
            }
            None => {
                let host = match self.listen {
                    SocketAddr::V4(a) => a.ip().to_string(),
                    SocketAddr::V6(a) => format!("[{}]", a.ip()),
                };
                format!("{scheme}://{host}:{port}")
            }
        };
        let mut names = vec![match self.listen {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        }];
        if loopback {
            names.extend(["localhost".into(), "127.0.0.1".into(), "[::1]".into()]);
        }
        for n in &names {
            hosts.push(format!("{n}:{port}"));
            origins.push(format!("{scheme}://{n}:{port}"));
        }
        hosts.extend(self.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()));
        for o in &self.allowed_origins {
            let lower = o.trim_end_matches('/').to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(ServeError::Config(format!(
                    "--allow-origin {o} must be an origin like https://app.example.com"
                )));
            }
            origins.push(lower);
        }
        hosts.dedup();
        origins.dedup();
        Ok(Checked {
            base,
            hosts,
            origins,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(listen: &str) -> Config {
        Config {
            listen: listen.parse().unwrap(),
            tls: None,
            insecure: false,
            no_auth: false,
            token_store: Some("/tmp/t.json".into()),
            oauth: None,
            public_url: None,
            allowed_origins: vec![],
            allowed_hosts: vec![],
            limits: Limits::default(),
            threads: 1,
        }
    }

    #[test]
    fn refuses_a_network_address_without_tls() {
        let err = cfg("192.0.2.1:8443").check().unwrap_err().to_string();
        assert!(
            err.contains("without TLS") && err.contains("--insecure"),
            "{err}"
        );
        let mut c = cfg("192.0.2.1:8443");
        c.insecure = true;
        assert!(c.check().is_ok());
        let mut c = cfg("192.0.2.1:8443");
        c.tls = Some(("c.pem".into(), "k.pem".into()));
        assert!(
            c.check()
                .unwrap()
                .base
                .starts_with("https://192.0.2.1:8443")
        );
    }

    #[test]
    fn no_auth_is_loopback_only() {
        let mut c = cfg("192.0.2.1:80");
        c.insecure = true;
        c.no_auth = true;
        assert!(c.check().unwrap_err().to_string().contains("--no-auth"));
        let mut c = cfg("127.0.0.1:80");
        c.no_auth = true;
        assert!(c.check().is_ok());
    }

    #[test]
    fn loopback_allows_its_own_names_only() {
        let c = cfg("127.0.0.1:3000").check().unwrap();
        assert_eq!(c.base, "http://127.0.0.1:3000");
        assert!(c.hosts.contains(&"localhost:3000".to_owned()));
        assert!(c.origins.contains(&"http://localhost:3000".to_owned()));
        assert!(!c.hosts.iter().any(|h| h.contains("evil")));
    }

    #[test]
    fn every_interface_needs_a_public_url() {
        let mut c = cfg("0.0.0.0:443");
        c.tls = Some(("c".into(), "k".into()));
        assert!(c.check().unwrap_err().to_string().contains("--public-url"));
        c.public_url = Some("https://mcp.example.com".into());
        let ok = c.check().unwrap();
        assert_eq!(ok.base, "https://mcp.example.com");
        assert!(ok.hosts.contains(&"mcp.example.com".to_owned()));
    }
}
