//! The MCP conformance suite (pinned `@modelcontextprotocol/conformance`, under Node 22) against
//! `palisade serve`.
//!
//! 2025-11-25: the suite runs (a) against server-everything's own HTTP mode and (b) against palisade
//! serving the same server over stdio. palisade must pass every scenario the direct run passes, and must
//! pass `dns-rebinding-protection`, which server-everything alone fails. Scores are recorded in
//! docs/conformance.md.

use palisade_testkit::peers;
use palisade_testkit::xdg::TestHome;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::http::Gateway;

/// One scenario's result: `(passed, failed)` checks, and whether the scenario passed as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Score {
    pub(crate) passed: u32,
    pub(crate) failed: u32,
    pub(crate) ok: bool,
}

/// Runs the suite against `url` with `extra` arguments; returns the per-scenario summary and the output.
pub(crate) fn run_suite(url: &str, extra: &[&str]) -> (BTreeMap<String, Score>, String) {
    let mut argv = peers::conformance();
    argv.extend(["server".into(), "--url".into(), url.into()]);
    argv.extend(extra.iter().map(|s| s.to_string()));
    let out = peers::command(&argv)
        .stdin(Stdio::null())
        .output()
        .expect("run the conformance suite");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (parse_summary(&text), text)
}

/// Parses `✓ name: N passed, M failed` / `✗ …` summary lines.
pub(crate) fn parse_summary(text: &str) -> BTreeMap<String, Score> {
    let mut out = BTreeMap::new();
    let Some(summary) = text.split("=== SUMMARY ===").nth(1) else {
        return out;
    };
    for line in summary.lines() {
        let line = line.trim();
        let (ok, rest) = if let Some(r) = line.strip_prefix("✓ ") {
            (true, r)
        } else if let Some(r) = line.strip_prefix("✗ ") {
            (false, r)
        } else {
            continue;
        };
        let Some((name, counts)) = rest.split_once(": ") else {
            continue;
        };
        let num = |word: &str| -> u32 {
            counts
                .split(", ")
                .find_map(|p| p.strip_suffix(word))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0)
        };
        out.insert(
            name.to_owned(),
            Score {
                passed: num(" passed"),
                failed: num(" failed"),
                ok,
            },
        );
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_listening(addr: SocketAddr, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("the server exited before listening: {st}");
        }
        assert!(Instant::now() < deadline, "{addr} never started listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn totals(s: &BTreeMap<String, Score>) -> (u32, u32) {
    s.values()
        .fold((0, 0), |(p, f), v| (p + v.passed, f + v.failed))
}

#[test]
fn conformance_2025_palisade_passes_everything_server_everything_passes_and_dns_rebinding() {
    // (a) server-everything's own Streamable HTTP mode, on loopback.
    let port = free_port();
    let argv = peers::server_everything_http(port);
    let mut direct = peers::command(&argv);
    direct.stdout(Stdio::null()).stderr(Stdio::null());
    let mut direct = Killed(direct.spawn().expect("start server-everything (HTTP)"));
    wait_listening(SocketAddr::from(([127, 0, 0, 1], port)), &mut direct.0);
    let (baseline, base_text) = run_suite(&format!("http://127.0.0.1:{port}/mcp"), &[]);
    drop(direct);
    assert!(
        baseline.len() > 20,
        "the direct run produced no summary:\n{base_text}"
    );

    // (b) palisade serving the same server over stdio (sandboxed, guards and audit on).
    let home = TestHome::new();
    let gw = Gateway::start(
        &home,
        &["--no-auth", "--rate-limit", "off"],
        &peers::server_everything_stdio(),
    );
    let url = format!("http://127.0.0.1:{}/mcp", gw.addr.port());
    let (through, text) = run_suite(&url, &[]);
    let regressions: Vec<&String> = baseline
        .iter()
        .filter(|(name, s)| s.ok && !through.get(*name).is_some_and(|t| t.ok))
        .map(|(name, _)| name)
        .collect();
    assert!(
        regressions.is_empty(),
        "scenarios server-everything passes but palisade fails: {regressions:?}\n{text}\npalisade stderr:\n{}",
        gw.stderr()
    );
    assert!(
        through
            .get("dns-rebinding-protection")
            .is_some_and(|s| s.ok),
        "palisade must pass dns-rebinding-protection:\n{text}"
    );
    assert!(
        !baseline
            .get("dns-rebinding-protection")
            .is_some_and(|s| s.ok),
        "server-everything alone was expected to fail dns-rebinding-protection; update docs/conformance.md"
    );
    let (bp, bf) = totals(&baseline);
    let (tp, tf) = totals(&through);
    eprintln!(
        "conformance 2025-11-25: server-everything HTTP {bp} passed / {bf} failed; through palisade {tp} passed / {tf} failed"
    );
    assert!(
        tp >= bp,
        "palisade passes fewer checks ({tp}) than the direct run ({bp})"
    );
}
