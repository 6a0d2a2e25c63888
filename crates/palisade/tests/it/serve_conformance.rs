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

/// The dual-era fixture server (`crates/serve/fixture`), built next to the test binary by
/// `cargo test --workspace`.
pub(crate) fn fixture() -> String {
    let exe = std::env::current_exe().expect("current_exe");
    for dir in exe.ancestors().skip(1).take(3) {
        let candidate = dir.join("palisade-conformance-fixture");
        if candidate.is_file() {
            return candidate.to_str().expect("UTF-8 path").to_owned();
        }
    }
    panic!(
        "palisade-conformance-fixture is not built next to {}; run `cargo build -p palisade-serve-fixture` \
         (a `cargo test --workspace` builds it)",
        exe.display()
    );
}

#[test]
fn conformance_2025_every_scenario_passes_through_palisade_with_the_fixture() {
    // The fixture implements every tool, resource and prompt the scenarios call, so this exercises what
    // server-everything cannot: progress, logging, sampling and elicitation crossing palisade mid-call.
    let home = TestHome::new();
    let gw = Gateway::start(&home, &["--no-auth", "--rate-limit", "off"], &[fixture()]);
    let url = format!("http://127.0.0.1:{}/mcp", gw.addr.port());
    let (scores, text) = run_suite(&url, &[]);
    assert!(scores.len() > 20, "no summary:\n{text}");
    let failed: Vec<&String> = scores
        .iter()
        .filter(|(_, s)| !s.ok)
        .map(|(n, _)| n)
        .collect();
    assert!(
        failed.is_empty(),
        "2025-11-25 scenarios failing through palisade: {failed:?}\n{text}\npalisade stderr:\n{}",
        gw.stderr()
    );
    let (p, f) = totals(&scores);
    eprintln!("conformance 2025-11-25 (fixture through palisade): {p} passed / {f} failed");
}

#[test]
fn conformance_2026_stateless_scenarios_pass_through_palisade_with_the_fixture() {
    // `--requirements 2026-07-28`: exactly what the 2026-07-28 revision requires (server-stateless,
    // header validation, input-required results, caching, …), plus extension scenarios that are
    // reported but not scored. The fixture does not implement the Tasks extension (`tasks-*`).
    let home = TestHome::new();
    let gw = Gateway::start(&home, &["--no-auth", "--rate-limit", "off"], &[fixture()]);
    let url = format!("http://127.0.0.1:{}/mcp", gw.addr.port());
    let (scores, text) = run_suite(&url, &["--requirements", "2026-07-28"]);
    for must in [
        "server-stateless",
        "http-header-validation",
        "http-custom-header-server-validation",
        "input-required-result-request-state",
        "input-required-result-tampered-state",
        "dns-rebinding-protection",
    ] {
        assert!(
            scores.get(must).is_some_and(|s| s.ok),
            "{must} must pass through palisade:\n{text}"
        );
    }
    let failed: Vec<&String> = scores
        .iter()
        .filter(|(n, s)| !s.ok && !n.starts_with("tasks-"))
        .map(|(n, _)| n)
        .collect();
    assert!(
        failed.is_empty(),
        "2026-07-28 scenarios failing through palisade: {failed:?}\n{text}\npalisade stderr:\n{}",
        gw.stderr()
    );
    let (p, f) = totals(&scores);
    eprintln!(
        "conformance 2026-07-28 (fixture through palisade): {p} passed / {f} failed (incl. unscored tasks-*)"
    );
}
