//! The egress proxy of a sandboxed server: serves the listener the sandbox handed over
//! ([`palisade_sandbox::Launched::egress`]) with the policy's network allowlist, on its own threads, and
//! turns every connection into an audit event for the caller's sink (`run`: the proxy loop's
//! [`crate::proxy::Outbox`]; `serve`: the server's audit log).
//!
//! The proxy never shares the stdio loop's thread: its connections are slow, blocking and few, and the
//! loop's latency must not depend on them.

use palisade_audit::{Decision, Event, Kind, Status};
use palisade_egress::{EgressEvent, EgressPolicy, Stop};
use palisade_policy::NetRules;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A running egress proxy; [`Egress::stop`] ends it.
pub(crate) struct Egress {
    stop: Stop,
    thread: Option<JoinHandle<()>>,
}

impl Egress {
    /// Serves `listener` for the server `server` under `rules`, handing each connection's audit event to
    /// `sink` (called from the proxy's threads).
    pub(crate) fn start(
        server: &str,
        listener: TcpListener,
        rules: &NetRules,
        sink: impl Fn(Event) + Send + Sync + 'static,
    ) -> std::io::Result<Egress> {
        let policy = Arc::new(EgressPolicy::new(rules));
        let stop = Stop::new();
        let name = server.to_owned();
        let thread = std::thread::Builder::new().name("egress".into()).spawn({
            let stop = stop.clone();
            move || {
                let events = move |ev: EgressEvent| sink(event(&name, &ev));
                if let Err(e) = palisade_egress::serve(listener, policy, events, stop) {
                    eprintln!(
                        "palisade: the egress proxy stopped: {e}; the server has no network now"
                    );
                }
            }
        })?;
        Ok(Egress {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops accepting connections and waits for the proxy to end: connections in flight get
    /// [`palisade_egress::DRAIN_GRACE`] to finish, so that their events reach the sink first.
    pub(crate) fn stop(mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The audit event of one proxied (or refused) connection.
pub(crate) fn event(server: &str, ev: &EgressEvent) -> Event {
    let dest = if ev.host.contains(':') {
        format!("[{}]:{}", ev.host, ev.port)
    } else {
        format!("{}:{}", ev.host, ev.port)
    };
    let ips: Vec<String> = ev.ips.iter().map(ToString::to_string).collect();
    let via = if ips.is_empty() || ips == [ev.host.clone()] {
        String::new()
    } else {
        format!(" ({})", ips.join(", "))
    };
    let ms = u64::try_from(ev.duration.as_millis()).unwrap_or(u64::MAX);
    let base = Event::new(Kind::Egress, server);
    match ev.decision {
        palisade_egress::Decision::Allow => base
            .decision(Decision::Allow)
            .completed(Status::Ok, ms)
            .detail(format!(
                "{dest}{via}: {} B up, {} B down",
                ev.bytes_up, ev.bytes_down
            )),
        palisade_egress::Decision::Deny => {
            let reason = ev.reason.map_or("denied", |r| r.as_str());
            let why = ev.detail.as_deref().unwrap_or(reason);
            base.decision(Decision::Deny)
                .reason(reason)
                .completed(Status::Denied, ms)
                .detail(palisade_audit::redact_str(&format!("{dest}{via}: {why}")).into_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_egress::Reason;
    use std::time::Duration;

    fn ev(decision: palisade_egress::Decision, reason: Option<Reason>) -> EgressEvent {
        EgressEvent {
            host: "api.example.com".into(),
            port: 443,
            ips: vec!["10.0.0.7".parse().unwrap()],
            decision,
            reason,
            detail: reason.map(|_| "10.0.0.7 is a private address".into()),
            bytes_up: 12,
            bytes_down: 34,
            duration: Duration::from_millis(5),
        }
    }

    #[test]
    fn connections_become_egress_events_with_destination_bytes_and_reason() {
        let ok = event("srv", &ev(palisade_egress::Decision::Allow, None));
        assert_eq!(ok.kind, Kind::Egress);
        assert_eq!(ok.decision, Some(Decision::Allow));
        assert_eq!(ok.status, Some(Status::Ok));
        assert_eq!(
            ok.detail.as_deref(),
            Some("api.example.com:443 (10.0.0.7): 12 B up, 34 B down")
        );
        let no = event(
            "srv",
            &ev(
                palisade_egress::Decision::Deny,
                Some(Reason::PrivateAddress),
            ),
        );
        assert_eq!(no.decision, Some(Decision::Deny));
        assert_eq!(no.status, Some(Status::Denied));
        assert_eq!(no.reason.as_deref(), Some("private-address"));
        assert!(
            no.detail.as_deref().unwrap().contains("private address"),
            "{no:?}"
        );
    }
}
