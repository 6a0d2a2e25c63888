//! What the proxy reports: one [`EgressEvent`] per client connection, for the audit log (DESIGN §6, kind
//! `egress`).
//!
//! A denial is reported as soon as the refusal is written; an allowed connection when both directions are
//! done, with its byte counts. `decision` says whether bytes reached a destination: anything refused before
//! relaying (policy, DNS, connect failure, bad request, overload) is [`Decision::Deny`] with a [`Reason`].

use std::net::IpAddr;
use std::time::Duration;

/// Whether the connection was relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A tunnel or forwarded request was relayed to the destination.
    Allow,
    /// The proxy answered with an error status and relayed nothing.
    Deny,
}

impl Decision {
    /// `allow` or `deny`, as the audit log writes decisions.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// Why a connection was denied. The kebab-case ids ([`Reason::as_str`]) are stable: the audit log records
/// them and users grep for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// Not a CONNECT or absolute-form `http://` request, or malformed (400).
    BadRequest,
    /// The request head exceeded the size limit (431).
    HeadersTooLarge,
    /// The request head did not arrive in time (408).
    Timeout,
    /// No rule names the host and port (403).
    HostNotAllowed,
    /// The host is or resolves to a loopback, private, link-local, metadata or other special address that no
    /// rule names exactly (403).
    PrivateAddress,
    /// The name did not resolve (502).
    DnsFailed,
    /// No resolved address accepted the connection in time (502).
    ConnectFailed,
    /// The proxy already serves its maximum of connections (503).
    TooManyConnections,
}

impl Reason {
    /// Every reason, for tests that pin the ids.
    pub const ALL: &'static [Reason] = &[
        Reason::BadRequest,
        Reason::HeadersTooLarge,
        Reason::Timeout,
        Reason::HostNotAllowed,
        Reason::PrivateAddress,
        Reason::DnsFailed,
        Reason::ConnectFailed,
        Reason::TooManyConnections,
    ];

    /// The stable kebab-case id.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BadRequest => "bad-request",
            Reason::HeadersTooLarge => "headers-too-large",
            Reason::Timeout => "timeout",
            Reason::HostNotAllowed => "host-not-allowed",
            Reason::PrivateAddress => "private-address",
            Reason::DnsFailed => "dns-failed",
            Reason::ConnectFailed => "connect-failed",
            Reason::TooManyConnections => "too-many-connections",
        }
    }

    /// The HTTP status the client receives.
    pub fn status(self) -> u16 {
        match self {
            Reason::BadRequest => 400,
            Reason::HeadersTooLarge => 431,
            Reason::Timeout => 408,
            Reason::HostNotAllowed | Reason::PrivateAddress => 403,
            Reason::DnsFailed | Reason::ConnectFailed => 502,
            Reason::TooManyConnections => 503,
        }
    }
}

/// One client connection, as reported to the `events` callback of [`crate::serve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressEvent {
    /// The requested host (normalized when it parsed; empty when the request had none).
    pub host: String,
    /// The requested port (0 when the request had none).
    pub port: u16,
    /// The addresses the host resolved to (the literal itself for an IP host; empty before resolution).
    pub ips: Vec<IpAddr>,
    /// Whether anything was relayed.
    pub decision: Decision,
    /// Why not, for denials.
    pub reason: Option<Reason>,
    /// One-line human detail for denials (the same text the client receives).
    pub detail: Option<String>,
    /// Bytes sent to the destination (for plain HTTP, the rewritten request head included).
    pub bytes_up: u64,
    /// Bytes sent back to the client (the proxy's own status line for CONNECT not included).
    pub bytes_down: u64,
    /// From accept to the end of the connection (or to the denial).
    pub duration: Duration,
}
