//! palisade's egress proxy: the only way out of the sandbox's network, for the destinations the policy
//! names. palisade serves it on the listener each sandbox hands over (`palisade_sandbox::linux::handoff`).
//!
//! # Brief overview
//! * [`EgressPolicy`] is the compiled allowlist, built from the policy's [`palisade_policy::NetRules`]:
//!   name rules (`api.github.com`, `*.example.com:443`) and exact-IP rules (`127.0.0.1`, `[::1]:8080`).
//! * [`serve`] / [`serve_with`] accept proxy clients on any [`std::net::TcpListener`] until [`Stop`] is set.
//!   Two kinds of request are proxied: `CONNECT host:port` (a tunnel, for https and anything else) and an
//!   absolute-form `http://` request (forwarded once, with `Connection: close`: one request per client
//!   connection). Everything else is answered 400.
//! * [`Resolve`] turns names into addresses; [`SystemResolver`] in production, a fake in tests.
//! * [`EgressEvent`] reports each connection once: host, port, resolved addresses, [`Decision`],
//!   [`Reason`] (stable kebab-case ids such as `host-not-allowed`, `private-address`, `dns-failed`), bytes
//!   each way and duration. Denials are reported when refused, relayed connections when they end.
//! * [`Limits`] bounds each client: 64 connections at once (then 503), a 16 KiB request head read within
//!   30 s, a 10 s connect, a 5 min idle relay.
//!
//! Flow: accept → read head → parse (400) → host allowed? (403 `host-not-allowed`) → resolve (502
//! `dns-failed`) → every address ordinary or named exactly? (403 `private-address`) → connect (502
//! `connect-failed`) → `200 Connection Established` or the rewritten request → relay both ways.
//!
//! # Why
//! * **DNS is resolved by the proxy**, so the sandbox needs no resolver and no route anywhere but here, and
//!   the addresses checked are the addresses connected to.
//! * **Every resolved address is re-checked** against loopback, private, link-local, CGNAT, metadata,
//!   unspecified, multicast and other special ranges (the classifier shared with URL arguments,
//!   [`palisade_guard::args::urls::special_ip`]). An allowed name that resolves to one of them is refused
//!   unless a rule names that exact IP: this defeats DNS rebinding onto internal services, and the cloud
//!   metadata endpoint (`169.254.169.254`) is never reachable by name.
//! * **std only, blocking, bounded**: a sandboxed server opens a handful of connections; one thread per
//!   connection with explicit timeouts and a connection cap is simpler to get right than an async stack,
//!   and keeps dependencies out of code that handles a hostile server's traffic.
//!
//! ```
//! use std::net::TcpListener;
//! use std::sync::Arc;
//! use palisade_egress::{EgressPolicy, Stop, serve};
//! use palisade_policy::NetRules;
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let policy = Arc::new(EgressPolicy::new(&NetRules::default())); // allows nothing
//! let stop = Stop::new();
//! let handle = std::thread::spawn({
//!     let stop = stop.clone();
//!     move || serve(listener, policy, |ev| eprintln!("{ev:?}"), stop)
//! });
//! stop.stop();
//! handle.join().unwrap().unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod event;
mod http;
pub mod policy;
mod proxy;
pub mod resolve;

pub use event::{Decision, EgressEvent, Reason};
pub use policy::{EgressPolicy, Host, Refused};
pub use proxy::{Config, DRAIN_GRACE, Limits, Stop, serve, serve_with};
pub use resolve::{Resolve, SystemResolver};
