//! The proxy end to end, over loopback only: a tiny origin HTTP server, a TCP echo server, and a fake
//! resolver for every name (no DNS query leaves the machine, no non-loopback address is ever connected to).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use palisade_egress::{
    Config, Decision, EgressEvent, EgressPolicy, Limits, Reason, Resolve, Stop, serve_with,
};
use palisade_policy::{Glob, HostRule, NetRules};

const WAIT: Duration = Duration::from_secs(10);

/// Answers from a fixed table; unknown names fail like NXDOMAIN.
struct FakeResolver(HashMap<String, Vec<IpAddr>>);

impl Resolve for FakeResolver {
    fn resolve(&self, host: &str, _port: u16) -> io::Result<Vec<IpAddr>> {
        self.0
            .get(host)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host"))
    }
}

fn rules(hosts: &[&str]) -> NetRules {
    NetRules {
        allow: hosts
            .iter()
            .map(|h| HostRule {
                host: Glob::new(h).unwrap(),
                port: None,
            })
            .collect(),
    }
}

struct Proxy {
    addr: SocketAddr,
    events: Receiver<EgressEvent>,
    stop: Stop,
}

impl Proxy {
    fn start(allow: &[&str], names: &[(&str, &[IpAddr])]) -> Proxy {
        Proxy::start_with(allow, names, Limits::default())
    }

    fn start_with(allow: &[&str], names: &[(&str, &[IpAddr])], limits: Limits) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let policy = Arc::new(EgressPolicy::new(&rules(allow)));
        let resolver = FakeResolver(
            names
                .iter()
                .map(|(n, ips)| ((*n).to_owned(), ips.to_vec()))
                .collect(),
        );
        let config = Config {
            resolver: Arc::new(resolver),
            limits,
        };
        let (tx, events) = mpsc::channel();
        let tx = Mutex::new(tx);
        let stop = Stop::new();
        let s = stop.clone();
        thread::spawn(move || {
            serve_with(
                listener,
                policy,
                config,
                move |ev| {
                    let _ = tx.lock().unwrap().send(ev);
                },
                s,
            )
        });
        Proxy { addr, events, stop }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s
    }

    /// Sends `request` on a fresh connection and returns everything the proxy answers until it closes.
    fn exchange(&self, request: &[u8]) -> String {
        let mut s = self.connect();
        s.write_all(request).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn event(&self) -> EgressEvent {
        self.events.recv_timeout(WAIT).expect("an egress event")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.stop();
    }
}

/// A TCP echo server on loopback that serves connections until the test ends.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let _ = io::copy(&mut r, &mut s);
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// An origin server that records each request head it gets and answers `200 hello`.
fn origin_server() -> (SocketAddr, Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let _ = tx.send(head);
            let mut s = s;
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            );
        }
    });
    (addr, rx)
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[test]
fn connect_to_an_exactly_allowed_ip_relays_bytes_both_ways() {
    let echo = echo_server();
    let proxy = Proxy::start(&["127.0.0.1"], &[]);
    let mut s = proxy.connect();
    write!(
        s,
        "CONNECT 127.0.0.1:{} HTTP/1.1\r\nHost: x\r\n\r\n",
        echo.port()
    )
    .unwrap();
    let mut status = String::new();
    let mut r = BufReader::new(s.try_clone().unwrap());
    r.read_line(&mut status).unwrap();
    assert_eq!(status, "HTTP/1.1 200 Connection Established\r\n");
    let mut blank = String::new();
    r.read_line(&mut blank).unwrap();
    assert_eq!(blank, "\r\n");

    s.write_all(b"ping through the tunnel").unwrap();
    let mut back = [0u8; 23];
    r.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping through the tunnel");
    s.write_all(b"!").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert_eq!(
        rest, b"!",
        "the half-close reached the echo server and came back"
    );

    let ev = proxy.event();
    assert_eq!(ev.decision, Decision::Allow);
    assert_eq!(ev.reason, None);
    assert_eq!((ev.host.as_str(), ev.port), ("127.0.0.1", echo.port()));
    assert_eq!(ev.ips, vec![LOOPBACK]);
    assert_eq!((ev.bytes_up, ev.bytes_down), (24, 24));
}

#[test]
fn connect_bytes_sent_with_the_request_head_are_not_lost() {
    let echo = echo_server();
    let proxy = Proxy::start(&["127.0.0.1"], &[]);
    let mut s = proxy.connect();
    write!(s, "CONNECT 127.0.0.1:{} HTTP/1.1\r\n\r\nearly", echo.port()).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert_eq!(out, "HTTP/1.1 200 Connection Established\r\n\r\nearly");
    let ev = proxy.event();
    assert_eq!((ev.bytes_up, ev.bytes_down), (5, 5));
}

#[test]
fn absolute_form_get_reaches_the_origin_in_origin_form_without_hop_by_hop_headers() {
    let (origin, heads) = origin_server();
    let proxy = Proxy::start(&["127.0.0.1"], &[]);
    let request = format!(
        "GET http://127.0.0.1:{}/path?q=1 HTTP/1.1\r\nHost: elsewhere.example\r\nProxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: websocket\r\nAccept: text/plain\r\n\r\n",
        origin.port()
    );
    let answer = proxy.exchange(request.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("hello"), "{answer}");

    let head = heads.recv_timeout(WAIT).unwrap();
    assert_eq!(
        head,
        format!(
            "GET /path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
            origin.port()
        )
    );
    let ev = proxy.event();
    assert_eq!(ev.decision, Decision::Allow);
    assert_eq!(ev.bytes_up, head.len() as u64);
    assert_eq!(ev.bytes_down, answer.len() as u64);
}

#[test]
fn a_name_allowed_by_rule_that_resolves_to_loopback_is_refused_as_private() {
    let echo = echo_server();
    let proxy = Proxy::start(&["localhost"], &[("localhost", &[LOOPBACK])]);
    let answer =
        proxy.exchange(format!("CONNECT localhost:{} HTTP/1.1\r\n\r\n", echo.port()).as_bytes());
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    assert!(
        answer.contains("localhost resolves to 127.0.0.1, which is a loopback address")
            && answer.contains("--allow-net 127.0.0.1"),
        "{answer}"
    );
    let ev = proxy.event();
    assert_eq!(ev.decision, Decision::Deny);
    assert_eq!(ev.reason, Some(Reason::PrivateAddress));
    assert_eq!(ev.ips, vec![LOOPBACK]);
    assert_eq!((ev.bytes_up, ev.bytes_down), (0, 0));
}

#[test]
fn a_name_that_resolves_to_an_exactly_allowed_ip_is_relayed() {
    let echo = echo_server();
    let proxy = Proxy::start(&["echo.test", "127.0.0.1"], &[("echo.test", &[LOOPBACK])]);
    let mut s = proxy.connect();
    write!(s, "CONNECT ECHO.test.:{} HTTP/1.1\r\n\r\nhi", echo.port()).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert_eq!(out, "HTTP/1.1 200 Connection Established\r\n\r\nhi");
    let ev = proxy.event();
    assert_eq!(
        (ev.decision, ev.host.as_str()),
        (Decision::Allow, "echo.test")
    );
}

#[test]
fn a_name_resolving_to_a_public_and_a_private_address_is_refused() {
    let public = IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8));
    let private = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let proxy = Proxy::start(
        &["*.example.com"],
        &[("api.example.com", &[public, private])],
    );
    let answer = proxy.exchange(b"CONNECT api.example.com:443 HTTP/1.1\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(
        answer.contains("10.0.0.1, which is a private address"),
        "{answer}"
    );
    let ev = proxy.event();
    assert_eq!(ev.reason, Some(Reason::PrivateAddress));
    assert_eq!(ev.ips, vec![public, private]);
}

#[test]
fn the_metadata_address_is_refused_even_when_a_glob_allows_every_host() {
    let proxy = Proxy::start(&["*"], &[]);
    let answer = proxy.exchange(b"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(answer.contains("cloud metadata endpoint"), "{answer}");
    assert_eq!(proxy.event().reason, Some(Reason::PrivateAddress));
}

#[test]
fn an_empty_policy_refuses_every_host_and_names_the_fix() {
    let proxy = Proxy::start(&[], &[("api.github.com", &[LOOPBACK])]);
    let answer = proxy.exchange(b"CONNECT api.github.com:443 HTTP/1.1\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    assert!(answer.contains("--allow-net api.github.com"), "{answer}");
    let ev = proxy.event();
    assert_eq!(ev.decision, Decision::Deny);
    assert_eq!(ev.reason, Some(Reason::HostNotAllowed));
    assert!(ev.ips.is_empty(), "no DNS lookup for a refused name");
}

#[test]
fn a_port_restricted_rule_refuses_other_ports() {
    let mut net = rules(&[]);
    net.allow.push(HostRule {
        host: Glob::new("api.example.com").unwrap(),
        port: Some(443),
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Stop::new();
    let s = stop.clone();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    thread::spawn(move || {
        serve_with(
            listener,
            Arc::new(EgressPolicy::new(&net)),
            Config {
                resolver: Arc::new(FakeResolver(HashMap::new())),
                limits: Limits::default(),
            },
            move |ev| {
                let _ = tx.lock().unwrap().send(ev);
            },
            s,
        )
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"CONNECT api.example.com:22 HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 403 "), "{out}");
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap().reason,
        Some(Reason::HostNotAllowed)
    );
    stop.stop();
}

#[test]
fn malformed_and_origin_form_requests_get_400() {
    let proxy = Proxy::start(&["*"], &[]);
    for bad in [
        &b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"hello\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"CONNECT b\xc3\xbccher.example:443 HTTP/1.1\r\n\r\n",
        b"GET http://user:pw@a.example/ HTTP/1.1\r\n\r\n",
    ] {
        let answer = proxy.exchange(bad);
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{}: {answer}",
            String::from_utf8_lossy(bad)
        );
        let ev = proxy.event();
        assert_eq!(ev.reason, Some(Reason::BadRequest));
        assert_eq!(ev.decision, Decision::Deny);
    }
}

#[test]
fn oversized_request_heads_get_431() {
    let proxy = Proxy::start(&["*"], &[]);
    let mut request = b"GET http://a.example/ HTTP/1.1\r\n".to_vec();
    for i in 0..400 {
        request.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "x".repeat(40)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    assert!(request.len() > 16 * 1024);
    let answer = proxy.exchange(&request);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert_eq!(proxy.event().reason, Some(Reason::HeadersTooLarge));
}

#[test]
fn a_name_that_does_not_resolve_gets_502() {
    let proxy = Proxy::start(&["*.invalid"], &[]);
    let answer = proxy.exchange(b"CONNECT nonexistent.invalid:443 HTTP/1.1\r\n\r\n");
    assert!(
        answer.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
        "{answer}"
    );
    let ev = proxy.event();
    assert_eq!(ev.reason, Some(Reason::DnsFailed));
    assert_eq!(ev.host, "nonexistent.invalid");
}

#[test]
fn a_closed_port_gets_502_connect_failed() {
    // Bind then drop: the port is (almost certainly) closed on loopback.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = Proxy::start(&["127.0.0.1"], &[]);
    let answer = proxy.exchange(format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 502 "), "{answer}");
    assert_eq!(proxy.event().reason, Some(Reason::ConnectFailed));
}

#[test]
fn a_slow_request_head_times_out_with_408() {
    let limits = Limits {
        header_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let proxy = Proxy::start_with(&["*"], &[], limits);
    let mut s = proxy.connect();
    s.write_all(b"CONNECT a.example:443 HTTP/1.1\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 408 "), "{out}");
    assert_eq!(proxy.event().reason, Some(Reason::Timeout));
}

#[test]
fn connections_beyond_the_limit_get_503() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let proxy = Proxy::start_with(&["*"], &[], limits);
    let _held = proxy.connect(); // sends nothing: holds the only slot while its head is awaited
    thread::sleep(Duration::from_millis(200));
    let mut second = proxy.connect();
    let mut out = String::new();
    second.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 503 "), "{out}");
    assert_eq!(proxy.event().reason, Some(Reason::TooManyConnections));
}

#[test]
fn reason_ids_are_stable() {
    let ids: Vec<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        ids,
        [
            "bad-request",
            "headers-too-large",
            "timeout",
            "host-not-allowed",
            "private-address",
            "dns-failed",
            "connect-failed",
            "too-many-connections"
        ]
    );
}
