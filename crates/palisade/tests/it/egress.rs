//! The egress proxy end to end: a real server (`mcp-server-fetch`, Python, httpx) in the tier 1 sandbox
//! fetches a page from a loopback HTTP server the policy allows, through palisade's proxy, and every
//! connection is an audit event. An allowed page that redirects to a destination the policy does not name
//! (the SSRF-by-redirect pattern: palisade's URL guard only sees the first URL) is refused by the proxy,
//! and the other listener never sees a connection. Each test runs as root and as `nobody`.

use crate::util::{User, audit_log, call, events, run_cmd_as};
use palisade_testkit::client::LEGACY_PROTOCOL_VERSION;
use palisade_testkit::{TestHome, peers};
use serde_json::{Value, json};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// A loopback HTTP/1.0 server: `/page` answers a marker text, `/redirect` a 302 to `redirect_to`, the rest
/// 404. Counts accepted connections; stops on drop.
struct Web {
    port: u16,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const MARKER: &str = "egress-suite-page: reached through the proxy";

impl Web {
    fn new(redirect_to: Option<String>) -> Web {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback HTTP");
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (Arc::clone(&hits), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let mut c = match l.accept() {
                    Ok((c, _)) => c,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => return,
                };
                h.fetch_add(1, Ordering::Relaxed);
                c.set_nonblocking(false).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut head = Vec::new();
                let mut b = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&b[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response = match (path.as_str(), &redirect_to) {
                    ("/page", _) => format!(
                        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{MARKER}",
                        MARKER.len()
                    ),
                    ("/redirect", Some(to)) => {
                        format!("HTTP/1.0 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")
                    }
                    _ => "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned(),
                };
                let _ = c.write_all(response.as_bytes());
            }
        });
        Web {
            port,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn egress_events(home: &TestHome) -> Vec<Value> {
    events(&audit_log(home, "fetch"))
        .into_iter()
        .filter(|e| e["kind"] == "egress")
        .collect()
}

/// `mcp-server-fetch` sandboxed with `--allow-net 127.0.0.1:<allowed>`. Its own private-address check is
/// turned off (`--allow-private-ips`): palisade's guards and proxy are what is under test.
fn fetch_server(s: Setup, home: &TestHome, allowed: u16) -> palisade_testkit::McpProcess {
    s.user.give(home.root());
    let mut argv = peers::mcp_server_fetch();
    argv.push("--allow-private-ips".into());
    let allow = format!("127.0.0.1:{allowed}");
    let mut cmd = run_cmd_as(
        s.user,
        home,
        home.root(),
        &["--server", "fetch", "--allow-net", &allow],
        &argv,
    );
    if s.tier2 {
        cmd.env("PALISADE_SANDBOX_TIER", "2");
    }
    let mut p = palisade_testkit::McpProcess::spawn(cmd);
    p.set_timeout(Duration::from_secs(30));
    p.initialize_with(LEGACY_PROTOCOL_VERSION, json!({}));
    let banner = if s.tier2 {
        "egress proxy (127.0.0.1:"
    } else {
        "egress proxy (127.0.0.1:3128 inside)"
    };
    crate::util::wait_stderr(&p, banner);
    // The banner's last line is written after the isolation line: once it is there, both are.
    crate::util::wait_stderr(&p, "palisade: policy:");
    assert_eq!(
        p.stderr().contains("DEGRADED sandbox tier 2"),
        s.tier2,
        "{}",
        p.stderr()
    );
    p
}

/// Who runs palisade, and in which tier.
#[derive(Debug, Clone, Copy)]
struct Setup {
    user: User,
    /// Forced to tier 2 (no namespaces; the proxy listens on the host's loopback).
    tier2: bool,
}

/// `fetch` of `url`, raw (mcp-server-fetch's HTML simplification runs `node` and `npm install` at run
/// time, which the sandbox's exec allowlist refuses: see docs/sandbox.md).
fn fetch(p: &mut palisade_testkit::McpProcess, url: &str) -> Value {
    p.request(
        "tools/call",
        call(
            "fetch",
            json!({ "url": url, "raw": true, "max_length": 5000 }),
        ),
    )
}

fn a_server_fetches_an_allowed_page_through_the_proxy(s: Setup) {
    let web = Web::new(None);
    let home = TestHome::new();
    let mut p = fetch_server(s, &home, web.port);
    let r = fetch(&mut p, &format!("http://127.0.0.1:{}/page", web.port));
    let text = r["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains(MARKER),
        "the page did not arrive: {r}\nstderr:\n{}",
        p.stderr()
    );
    assert_eq!(r["result"]["isError"], json!(false), "{r}");
    drop(p);
    let ev = egress_events(&home);
    let dest = format!("127.0.0.1:{}", web.port);
    // robots.txt, then the page: every connection is recorded, allowed, with its byte counts.
    assert!(ev.len() >= 2, "{ev:#?}");
    for e in &ev {
        assert_eq!(e["decision"], "allow", "{e}");
        assert_eq!(e["status"], "ok", "{e}");
        let detail = e["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&dest) && detail.contains("B down"),
            "{e}"
        );
    }
    assert_eq!(web.hits(), ev.len());
}

fn a_redirect_to_a_destination_the_policy_does_not_name_is_refused(s: Setup) {
    let target = Web::new(None);
    let web = Web::new(Some(format!("http://127.0.0.1:{}/page", target.port)));
    let home = TestHome::new();
    let mut p = fetch_server(s, &home, web.port);
    let r = fetch(&mut p, &format!("http://127.0.0.1:{}/redirect", web.port));
    let text = r["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(!text.contains(MARKER), "the redirect escaped: {r}");
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    drop(p);
    assert_eq!(target.hits(), 0, "the unnamed destination was reached");
    let ev = egress_events(&home);
    let denied: Vec<&Value> = ev.iter().filter(|e| e["decision"] == "deny").collect();
    assert_eq!(denied.len(), 1, "{ev:#?}");
    assert_eq!(denied[0]["reason"], "host-not-allowed", "{:?}", denied[0]);
    assert!(
        denied[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("127.0.0.1:{}", target.port)),
        "{:?}",
        denied[0]
    );
}

/// One test per body, user and tier: `egress::as_root::NAME`, `egress::as_nobody::NAME`, and the same
/// under `egress::tier2::…` (no namespaces: the proxy listens on the host's loopback).
macro_rules! both_users {
    ($($name:ident),* $(,)?) => {
        mod as_root {
            $(#[test] fn $name() { super::$name(super::Setup { user: super::User::Root, tier2: false }) })*
        }
        mod as_nobody {
            $(#[test] fn $name() { super::$name(super::Setup { user: super::User::Nobody, tier2: false }) })*
        }
        mod tier2 {
            mod as_root {
                $(#[test] fn $name() { super::super::$name(super::super::Setup { user: super::super::User::Root, tier2: true }) })*
            }
            mod as_nobody {
                $(#[test] fn $name() { super::super::$name(super::super::Setup { user: super::super::User::Nobody, tier2: true }) })*
            }
        }
    };
}

both_users!(
    a_server_fetches_an_allowed_page_through_the_proxy,
    a_redirect_to_a_destination_the_policy_does_not_name_is_refused,
);
