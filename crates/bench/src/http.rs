//! `palisade-bench http`: what does `palisade serve` sustain, next to the other stdio → HTTP gateways?
//!
//! Closed-loop load: `C` clients (one keep-alive HTTP/1.1 connection each, all in one MCP session, as one
//! MCP client with `C` calls in flight would) post `tools/call echo` for a fixed time after a warm-up, and
//! every answer is checked (a JSON-RPC result echoing the client's own text; an error or a wrong echo aborts
//! the run — a gateway that answers fast and wrong must not win). The load generator is one thread (a
//! current-thread tokio runtime), so on a two-core machine it leaves the other core to the system measured,
//! the same for every target.
//!
//! Targets, each started fresh per round and fronting the same stdio backend:
//! * `palisade`: `palisade serve` with the bench's realistic policy, a palisade token (auth on), audit on,
//!   the rate limit off (it would be the bottleneck otherwise; it is a policy choice, not a cost);
//! * `supergateway`: `supergateway --stdio … --outputTransport streamableHttp --stateful` (npm, pinned in
//!   tests/peers);
//! * `mcp-proxy`: `mcp-proxy --port …` (PyPI, pinned in tests/peers/bench, its own venv: it needs `mcp<2`);
//! * `everything-http`: server-everything's own Streamable HTTP mode (no gateway; server-everything only);
//! * `stdio`: no HTTP at all: the same `C` calls in flight written straight into the backend's stdin (what
//!   the backend itself sustains; the ceiling for any gateway).
//!
//! Targets run alternately (round 1: every target, round 2: every target, …) so that drift in the machine's
//! state spreads over all of them. Per run: requests/s, p50/p99 latency, the front process's peak RSS
//! (sampled every 20 ms under load, and `VmHWM`), and the CPU time of the front process and of its whole
//! process tree per request.

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use palisade_testkit::{TestHome, peers};
use serde_json::{Value, json};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::{Paths, locate_binaries, path_str, percentile, rss_kb, sched, spread};

/// `palisade-bench http` options.
#[derive(Debug, clap::Args)]
pub(crate) struct HttpArgs {
    /// Rounds; each round runs every target once, in order.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    rounds: u32,
    /// Concurrency levels (clients with one call in flight each), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<u32>,
    /// Measured seconds per concurrency level.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=120))]
    secs: u64,
    /// Unmeasured warm-up seconds before each measurement (all clients running).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=60))]
    warmup_secs: u64,
    /// Which backends.
    #[arg(long, value_enum, default_value_t = crate::BackendSel::All)]
    backend: crate::BackendSel,
    /// Which targets, comma-separated (default: all that apply to the backend).
    #[arg(long, value_delimiter = ',', value_enum)]
    targets: Vec<Target>,
    /// Directory holding the release binaries `palisade` and `palisade-echo-server` (as for the stdio bench).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = crate::Format::Text)]
    format: crate::Format,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
    /// `palisade serve --threads N` (1, palisade's default, is one event-loop thread).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    serve_threads: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Target {
    Stdio,
    Palisade,
    Supergateway,
    McpProxy,
    EverythingHttp,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Stdio => "stdio",
            Target::Palisade => "palisade",
            Target::Supergateway => "supergateway",
            Target::McpProxy => "mcp-proxy",
            Target::EverythingHttp => "everything-http",
        }
    }
}

const ALL_TARGETS: [Target; 5] = [
    Target::Stdio,
    Target::Palisade,
    Target::Supergateway,
    Target::McpProxy,
    Target::EverythingHttp,
];

/// One backend: how to start it over stdio and how to call its echo tool.
struct Backend {
    name: &'static str,
    label: &'static str,
    argv: Vec<String>,
    /// The echo tool's text argument.
    arg: &'static str,
}

/// One measured (target, concurrency) run.
#[derive(Debug, Clone)]
struct Run {
    round: u32,
    target: Target,
    concurrency: u32,
    requests: u64,
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    /// Peak VmRSS of the front process sampled under load, and its VmHWM at the end of the run.
    rss_peak_kb: Option<u64>,
    hwm_kb: Option<u64>,
    /// CPU time of the front process per request, and of the front's whole process tree.
    front_cpu_us: Option<f64>,
    tree_cpu_us: Option<f64>,
    /// CPU time of the load generator (this process) per request: what the client side costs, on the
    /// same cores.
    loadgen_cpu_us: Option<f64>,
}

pub(crate) fn run(args: &HttpArgs) -> Result<()> {
    let paths = locate_binaries(args.bin_dir.as_deref())?;
    let mut backends = Vec::new();
    if args.backend != crate::BackendSel::Everything {
        backends.push(Backend {
            name: "echo",
            label: "palisade-echo-server (Rust, in repo)",
            argv: vec![path_str(&paths.echo_server)?],
            arg: "text",
        });
    }
    if args.backend != crate::BackendSel::Echo {
        backends.push(Backend {
            name: "everything",
            label: "server-everything 2026.8.31 `echo` (Node)",
            argv: crate::everything_argv()?,
            arg: "message",
        });
    }
    let targets: Vec<Target> = if args.targets.is_empty() {
        ALL_TARGETS.to_vec()
    } else {
        args.targets.clone()
    };
    for &t in &targets {
        check_installed(t)?;
    }
    if args.concurrency.iter().any(|&c| c == 0 || c > 1024) {
        bail!("--concurrency: each level must be 1..=1024");
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut runs: Vec<(String, Run)> = Vec::new();
    for b in &backends {
        for round in 1..=args.rounds {
            for &t in &targets {
                if t == Target::EverythingHttp && b.name != "everything" {
                    continue;
                }
                eprintln!(
                    "palisade-bench http: {} round {round}/{}: {} …",
                    b.name,
                    args.rounds,
                    t.name()
                );
                let rs = rt
                    .block_on(run_target(args, &paths, b, t, round))
                    .with_context(|| format!("{} / {}", b.name, t.name()))?;
                for r in rs {
                    eprintln!(
                        "  c={:<3} {:>8.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs  rss {:>6} kB",
                        r.concurrency,
                        r.rps,
                        r.p50_us,
                        r.p99_us,
                        r.rss_peak_kb.map_or("-".into(), |v| v.to_string())
                    );
                    runs.push((b.name.to_string(), r));
                }
            }
        }
    }
    let report = build_report(args, &backends, &targets, &runs, started.elapsed());
    if let Some(f) = &args.json_out {
        std::fs::write(f, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", f.display()))?;
    }
    match args.format {
        crate::Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        crate::Format::Text => print_text(&report),
    }
    Ok(())
}

fn check_installed(t: Target) -> Result<()> {
    let need = match t {
        Target::Supergateway => Some((
            supergateway_js(),
            "npm ci --no-audit --no-fund --prefix tests/peers",
        )),
        Target::McpProxy => Some((
            mcp_proxy_bin(),
            "/usr/bin/python3 -m venv tests/peers/bench/.venv && tests/peers/bench/.venv/bin/pip install --require-hashes --no-deps -r tests/peers/bench/requirements.lock",
        )),
        _ => None,
    };
    if let Some((p, how)) = need
        && !p.exists()
    {
        bail!(
            "{} needs {} (missing); install it from the workspace root with: {how}",
            t.name(),
            p.display()
        );
    }
    Ok(())
}

fn supergateway_js() -> PathBuf {
    peers::peers_dir().join("node_modules/supergateway/dist/index.js")
}

fn mcp_proxy_bin() -> PathBuf {
    peers::peers_dir().join("bench/.venv/bin/mcp-proxy")
}

/// A free loopback port (bound then released; the target binds it right after).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A started target: its process group, and what the load needs to reach it.
struct Started {
    /// The gateway (or server-everything's HTTP mode): the process whose RSS and CPU are reported.
    child: Child,
    port: u16,
    path: &'static str,
    auth: Option<String>,
    /// Its isolated XDG home (kept until it stops; holds its stderr log).
    home: TestHome,
}

impl Drop for Started {
    fn drop(&mut self) {
        // Every target runs in its own process group: the gateway and whatever it started.
        let pgid = self.child.id() as i32;
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
        let _ = self.child.wait();
    }
}

fn bench_policy() -> String {
    // The stdio bench's realistic policy, with room for 64+ calls in flight (the stdio bench has one).
    crate::POLICY.replace("max_concurrent_calls = 16", "max_concurrent_calls = 1024")
}

fn start(args: &HttpArgs, paths: &Paths, b: &Backend, t: Target) -> Result<Started> {
    let home = TestHome::new();
    let port = free_port()?;
    let mut auth = None;
    let path = "/mcp";
    let mut cmd = match t {
        Target::Stdio => unreachable!("stdio has no HTTP front"),
        Target::Palisade => {
            let policy = home.root().join("bench-policy.toml");
            std::fs::write(&policy, bench_policy())?;
            let mut tok = Command::new(&paths.palisade);
            tok.args(["token", "create", "--client", "bench", "--ttl", "1h"]);
            home.apply(&mut tok);
            let out = tok.stderr(Stdio::null()).output()?;
            if !out.status.success() {
                bail!("palisade token create failed");
            }
            let token = String::from_utf8(out.stdout)?
                .lines()
                .last()
                .context("palisade token create printed nothing")?
                .trim()
                .to_string();
            auth = Some(format!("Bearer {token}"));
            let mut c = Command::new(&paths.palisade);
            c.arg("serve")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--policy")
                .arg(&policy)
                .args(["--rate-limit", "off", "--profile", "dev"])
                .arg("--threads")
                .arg(args.serve_threads.to_string())
                .arg("--")
                .args(&b.argv);
            c
        }
        Target::Supergateway => {
            let mut c = Command::new(peers::node());
            c.arg(supergateway_js())
                .args(["--stdio", &shell_join(&b.argv)])
                .args(["--outputTransport", "streamableHttp", "--stateful"])
                .args(["--port", &port.to_string(), "--logLevel", "none"]);
            c
        }
        Target::McpProxy => {
            let mut c = Command::new(mcp_proxy_bin());
            c.args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--log-level", "WARNING", "--pass-environment", "--"])
                .args(&b.argv);
            c
        }
        Target::EverythingHttp => {
            let argv = peers::server_everything_http(port);
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    home.apply(&mut cmd);
    let log = std::fs::File::create(home.root().join("target-stderr.log"))?;
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", t.name()))?;
    Ok(Started {
        child,
        port,
        path,
        auth,
        home,
    })
}

fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-=:".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The front process's exact pid (`env PORT=… node` execs node: same pid), and for wrappers the gateway
/// itself (supergateway is `node`, mcp-proxy is python: the pid we started).
fn tree_pids(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                && let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r)
                && let Some(ppid) = rest.split_whitespace().nth(1).and_then(|v| v.parse().ok())
            {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

fn tree_cpu_ns(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|&p| sched(p))
        .map(|s| s.cpu_ns)
        .sum()
}

async fn run_target(
    args: &HttpArgs,
    paths: &Paths,
    b: &Backend,
    t: Target,
    round: u32,
) -> Result<Vec<Run>> {
    if t == Target::Stdio {
        return run_stdio(args, b, round).await;
    }
    let started = start(args, paths, b, t)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let session = loop {
        match open_session(&started).await {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                let log = std::fs::read_to_string(started.home.root().join("target-stderr.log"))
                    .unwrap_or_default();
                return Err(e.context(format!(
                    "{} did not answer initialize within 30 s; its output:\n{log}",
                    t.name()
                )));
            }
        }
    };
    let mut out = Vec::new();
    for &c in &args.concurrency {
        let front = started.child.id();
        let m = load(
            args,
            c,
            |i| {
                let started = &started;
                let session = session.clone();
                async move { HttpClient::connect(started, session, i).await }
            },
            b,
            front,
        )
        .await?;
        out.push(Run {
            round,
            target: t,
            concurrency: c,
            ..m
        });
    }
    Ok(out)
}

/// One HTTP client: a keep-alive connection, the session's headers.
struct HttpClient {
    send: SendRequest<Full<Bytes>>,
    uri: String,
    host: String,
    auth: Option<String>,
    session: Option<String>,
    next_id: u64,
    prefix: String,
}

impl HttpClient {
    async fn connect(s: &Started, session: Option<String>, i: u32) -> Result<HttpClient> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", s.port)).await?;
        tcp.set_nodelay(true)?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(HttpClient {
            send,
            uri: s.path.to_string(),
            host: format!("127.0.0.1:{}", s.port),
            auth: s.auth.clone(),
            session,
            next_id: 1,
            prefix: format!("c{i}-"),
        })
    }

    /// POSTs one JSON-RPC message; returns the response's headers and the JSON-RPC messages in its body.
    async fn post(&mut self, body: Vec<u8>) -> Result<(hyper::http::response::Parts, Vec<Value>)> {
        let mut req = Request::post(&self.uri)
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(a) = &self.auth {
            req = req.header("authorization", a);
        }
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        self.send.ready().await?;
        let resp = self
            .send
            .send_request(req.body(Full::new(Bytes::from(body)))?)
            .await?;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await?.to_bytes();
        let sse = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut msgs = Vec::new();
        if sse {
            let text = std::str::from_utf8(&bytes)?;
            for line in text.lines() {
                if let Some(d) = line.strip_prefix("data:") {
                    let d = d.trim();
                    if !d.is_empty() {
                        msgs.push(serde_json::from_str(d)?);
                    }
                }
            }
        } else if !bytes.is_empty() {
            msgs.push(serde_json::from_slice(&bytes)?);
        }
        Ok((parts, msgs))
    }

    /// One checked `tools/call echo`.
    async fn call(&mut self, arg: &str) -> Result<()> {
        let id = format!("{}{}", self.prefix, self.next_id);
        self.next_id += 1;
        let text = format!("bench {id}");
        let body = serde_json::to_vec(&json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "echo", "arguments": {arg: text}}
        }))?;
        let (parts, msgs) = self.post(body).await?;
        if !parts.status.is_success() {
            bail!("HTTP {} for tools/call: {msgs:?}", parts.status);
        }
        let resp = msgs
            .iter()
            .find(|m| m.get("id").and_then(Value::as_str) == Some(id.as_str()))
            .ok_or_else(|| anyhow!("no response with id {id} in {msgs:?}"))?;
        check_echo(resp, &text)
    }
}

fn check_echo(resp: &Value, text: &str) -> Result<()> {
    let result = resp
        .get("result")
        .ok_or_else(|| anyhow!("not a result: {resp}"))?;
    if result.get("isError") == Some(&Value::Bool(true)) {
        bail!("tool error: {result}");
    }
    let got = result
        .pointer("/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !got.contains(text) {
        bail!("echo mismatch: sent {text:?}, got {got:?}");
    }
    Ok(())
}

/// initialize + notifications/initialized; returns the session id (if the target uses sessions).
async fn open_session(s: &Started) -> Result<Option<String>> {
    let mut c = HttpClient::connect(s, None, 0).await?;
    let (parts, msgs) = c
        .post(serde_json::to_vec(&json!({
            "jsonrpc": "2.0", "id": "init", "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "palisade-bench", "version": "0"}}
        }))?)
        .await?;
    if !parts.status.is_success() || !msgs.iter().any(|m| m.get("result").is_some()) {
        bail!("initialize: HTTP {} {msgs:?}", parts.status);
    }
    let session = parts
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    c.session = session.clone();
    let (parts, _) = c
        .post(serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )?)
        .await?;
    if !parts.status.is_success() {
        bail!("notifications/initialized: HTTP {}", parts.status);
    }
    Ok(session)
}

/// Runs `c` clients made by `mk` through a warm-up and a measured window; returns the measurements (round,
/// target and concurrency left for the caller).
async fn load<F, Fut>(args: &HttpArgs, c: u32, mk: F, b: &Backend, front: u32) -> Result<Run>
where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = Result<HttpClient>>,
{
    let mut clients = Vec::new();
    for i in 0..c {
        clients.push(mk(i).await?);
    }
    let t0 = Instant::now();
    let measure_from = t0 + Duration::from_secs(args.warmup_secs);
    let end = measure_from + Duration::from_secs(args.secs);
    let arg = b.arg;
    let mut tasks = tokio::task::JoinSet::new();
    for mut cl in clients {
        tasks.spawn(async move {
            let mut lat: Vec<u32> = Vec::new();
            loop {
                let s = Instant::now();
                if s >= end {
                    break;
                }
                cl.call(arg).await?;
                let done = Instant::now();
                if s >= measure_from && done <= end {
                    lat.push(u32::try_from(done.duration_since(s).as_micros()).unwrap_or(u32::MAX));
                }
            }
            Ok::<_, anyhow::Error>(lat)
        });
    }
    let sampler = Sampler::start(front, measure_from, end);
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r??);
    }
    let s = sampler.finish();
    Ok(summarize(all, args.secs, s))
}

/// RSS and CPU of the front process (and its tree) over the measured window, from a sampling thread.
struct Sampler {
    done: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Sampled>,
}

#[derive(Debug, Default)]
struct Sampled {
    rss_peak_kb: Option<u64>,
    hwm_kb: Option<u64>,
    front_cpu_ns: Option<u64>,
    tree_cpu_ns: Option<u64>,
    loadgen_cpu_ns: Option<u64>,
}

impl Sampler {
    fn start(front: u32, from: Instant, end: Instant) -> Sampler {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let handle = std::thread::spawn(move || {
            let mut out = Sampled::default();
            while Instant::now() < from && !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let tree = tree_pids(front);
            let me = std::process::id();
            let f0 = sched(front).map(|s| s.cpu_ns);
            let t0 = tree_cpu_ns(&tree);
            let l0 = sched(me).map(|s| s.cpu_ns);
            let mut peak = None::<u64>;
            while Instant::now() < end && !flag.load(Ordering::Relaxed) {
                if let (Some(rss), _) = rss_kb(front) {
                    peak = Some(peak.map_or(rss, |p| p.max(rss)));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let f1 = sched(front).map(|s| s.cpu_ns);
            let t1 = tree_cpu_ns(&tree);
            let l1 = sched(me).map(|s| s.cpu_ns);
            out.loadgen_cpu_ns = l0.zip(l1).map(|(a, b)| b.saturating_sub(a));
            out.rss_peak_kb = peak;
            out.hwm_kb = rss_kb(front).1;
            out.front_cpu_ns = f0.zip(f1).map(|(a, b)| b.saturating_sub(a));
            out.tree_cpu_ns = Some(t1.saturating_sub(t0));
            out
        });
        Sampler { done, handle }
    }

    fn finish(self) -> Sampled {
        self.done.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

fn summarize(mut lat: Vec<u32>, secs: u64, s: Sampled) -> Run {
    lat.sort_unstable();
    let n = lat.len() as u64;
    let pct = |p: f64| {
        if lat.is_empty() {
            return f64::NAN;
        }
        f64::from(percentile(&lat, p))
    };
    let per = |ns: Option<u64>| ns.filter(|_| n > 0).map(|v| v as f64 / 1e3 / n as f64);
    Run {
        round: 0,
        target: Target::Stdio,
        concurrency: 0,
        requests: n,
        rps: n as f64 / secs as f64,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        max_us: lat.last().map_or(f64::NAN, |v| f64::from(*v)),
        rss_peak_kb: s.rss_peak_kb,
        hwm_kb: s.hwm_kb,
        front_cpu_us: per(s.front_cpu_ns),
        tree_cpu_us: per(s.tree_cpu_ns),
        loadgen_cpu_us: per(s.loadgen_cpu_ns),
    }
}

/// The ceiling: `c` calls in flight written straight into the backend's stdin, no HTTP, no gateway.
async fn run_stdio(args: &HttpArgs, b: &Backend, round: u32) -> Result<Vec<Run>> {
    let home = TestHome::new();
    let mut cmd = tokio::process::Command::new(&b.argv[0]);
    cmd.args(&b.argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in home.vars() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().context("starting the backend")?;
    let pid = child.id().context("backend pid")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().context("stdout")?);
    let mut line = String::new();
    stdin
        .write_all(
            format!(
                "{}\n{}\n",
                json!({"jsonrpc": "2.0", "id": "init", "method": "initialize",
                       "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                                  "clientInfo": {"name": "palisade-bench", "version": "0"}}}),
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
            )
            .as_bytes(),
        )
        .await?;
    loop {
        line.clear();
        if stdout.read_line(&mut line).await? == 0 {
            bail!("the backend closed stdout before answering initialize");
        }
        let v: Value = serde_json::from_str(&line)?;
        if v.get("id") == Some(&json!("init")) {
            break;
        }
    }
    let mut out = Vec::new();
    let mut next: u64 = 0;
    for &c in &args.concurrency {
        let t0 = Instant::now();
        let measure_from = t0 + Duration::from_secs(args.warmup_secs);
        let end = measure_from + Duration::from_secs(args.secs);
        let sampler = Sampler::start(pid, measure_from, end);
        let mut sent: std::collections::HashMap<u64, (Instant, String)> = Default::default();
        let mut lat = Vec::new();
        let send =
            |next: &mut u64, sent: &mut std::collections::HashMap<u64, (Instant, String)>| {
                *next += 1;
                let text = format!("bench s{next}");
                let msg = json!({"jsonrpc": "2.0", "id": *next, "method": "tools/call",
                             "params": {"name": "echo", "arguments": {b.arg: text}}});
                sent.insert(*next, (Instant::now(), text));
                let mut bytes = serde_json::to_vec(&msg).expect("serializable");
                bytes.push(b'\n');
                bytes
            };
        let mut batch = Vec::new();
        for _ in 0..c {
            batch.extend(send(&mut next, &mut sent));
        }
        stdin.write_all(&batch).await?;
        while !sent.is_empty() {
            line.clear();
            if stdout.read_line(&mut line).await? == 0 {
                bail!("the backend closed stdout under load");
            }
            let v: Value = serde_json::from_str(&line)?;
            let Some(id) = v.get("id").and_then(Value::as_u64) else {
                continue; // notifications and the backend's own requests
            };
            let Some((s, text)) = sent.remove(&id) else {
                continue;
            };
            check_echo(&v, &text)?;
            let done = Instant::now();
            if s >= measure_from && done <= end {
                lat.push(u32::try_from(done.duration_since(s).as_micros()).unwrap_or(u32::MAX));
            }
            if done < end {
                stdin.write_all(&send(&mut next, &mut sent)).await?;
            }
        }
        let m = summarize(lat, args.secs, sampler.finish());
        out.push(Run {
            round,
            target: Target::Stdio,
            concurrency: c,
            ..m
        });
    }
    drop(stdin);
    let _ = child.kill().await;
    Ok(out)
}

fn build_report(
    args: &HttpArgs,
    backends: &[Backend],
    targets: &[Target],
    runs: &[(String, Run)],
    took: Duration,
) -> Value {
    let mut rows = Vec::new();
    for b in backends {
        for &t in targets {
            for &c in &args.concurrency {
                let rs: Vec<&Run> = runs
                    .iter()
                    .filter(|(bn, r)| bn == b.name && r.target == t && r.concurrency == c)
                    .map(|(_, r)| r)
                    .collect();
                if rs.is_empty() {
                    continue;
                }
                // Median [min–max] over the rounds, as the stdio bench reports them.
                let col = |f: &dyn Fn(&Run) -> Option<f64>| {
                    let vals: Vec<f64> = rs
                        .iter()
                        .filter_map(|r| f(r))
                        .filter(|v| v.is_finite())
                        .collect();
                    spread(&vals)
                };
                rows.push(json!({
                    "backend": b.name,
                    "target": t.name(),
                    "concurrency": c,
                    "runs": rs.len(),
                    "rps": col(&|r| Some(r.rps)),
                    "p50_us": col(&|r| Some(r.p50_us)),
                    "p99_us": col(&|r| Some(r.p99_us)),
                    "max_us": col(&|r| Some(r.max_us)),
                    "rss_peak_kb": col(&|r| r.rss_peak_kb.map(|v| v as f64)),
                    "hwm_kb": col(&|r| r.hwm_kb.map(|v| v as f64)),
                    "front_cpu_us_per_req": col(&|r| r.front_cpu_us),
                    "tree_cpu_us_per_req": col(&|r| r.tree_cpu_us),
                    "loadgen_cpu_us_per_req": col(&|r| r.loadgen_cpu_us),
                }));
            }
        }
    }
    json!({
        "bench": "palisade-bench http",
        "machine": {"cpu": crate::cpu_model(), "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
                    "loadavg_end": crate::loadavg()},
        "settings": {"rounds": args.rounds, "concurrency": args.concurrency, "secs": args.secs,
                     "warmup_secs": args.warmup_secs, "serve_threads": args.serve_threads},
        "backends": backends.iter().map(|b| json!({"name": b.name, "label": b.label})).collect::<Vec<_>>(),
        "took_secs": took.as_secs_f64(),
        "rows": rows,
        "runs": runs.iter().map(|(b, r)| json!({
            "backend": b, "round": r.round, "target": r.target.name(), "concurrency": r.concurrency,
            "requests": r.requests, "rps": r.rps, "p50_us": r.p50_us, "p99_us": r.p99_us, "max_us": r.max_us,
            "rss_peak_kb": r.rss_peak_kb, "hwm_kb": r.hwm_kb, "front_cpu_us_per_req": r.front_cpu_us,
            "tree_cpu_us_per_req": r.tree_cpu_us, "loadgen_cpu_us_per_req": r.loadgen_cpu_us,
        })).collect::<Vec<_>>(),
    })
}

fn print_text(report: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "palisade-bench http — {} ({} CPUs), {} round(s) × {} s measured after {} s warm-up, medians [min–max]",
        report["machine"]["cpu"].as_str().unwrap_or("?"),
        report["machine"]["nproc"],
        report["settings"]["rounds"],
        report["settings"]["secs"],
        report["settings"]["warmup_secs"],
    );
    let f =
        |v: &Value, prec: usize| match (v["median"].as_f64(), v["min"].as_f64(), v["max"].as_f64())
        {
            (Some(m), Some(lo), Some(hi)) => format!("{m:.prec$} [{lo:.prec$}–{hi:.prec$}]"),
            _ => "-".into(),
        };
    let mut last = String::new();
    for r in report["rows"].as_array().into_iter().flatten() {
        let b = r["backend"].as_str().unwrap_or("?").to_string();
        if b != last {
            let _ = writeln!(out, "\nbackend: {b}");
            let _ = writeln!(
                out,
                "{:<16} {:>3}  {:>24}  {:>22}  {:>22}  {:>10}  {:>9}  {:>9}  {:>9}",
                "target",
                "c",
                "req/s",
                "p50 µs",
                "p99 µs",
                "peak RSS kB",
                "front µs/req",
                "tree µs/req",
                "client µs/req"
            );
            last = b;
        }
        let _ = writeln!(
            out,
            "{:<16} {:>3}  {:>24}  {:>22}  {:>22}  {:>10}  {:>9}  {:>9}  {:>9}",
            r["target"].as_str().unwrap_or("?"),
            r["concurrency"],
            f(&r["rps"], 0),
            f(&r["p50_us"], 0),
            f(&r["p99_us"], 0),
            r["rss_peak_kb"]["max"]
                .as_f64()
                .map_or("-".into(), |v| format!("{v:.0}")),
            r["front_cpu_us_per_req"]["median"]
                .as_f64()
                .map_or("-".into(), |v| format!("{v:.1}")),
            r["tree_cpu_us_per_req"]["median"]
                .as_f64()
                .map_or("-".into(), |v| format!("{v:.1}")),
            r["loadgen_cpu_us_per_req"]["median"]
                .as_f64()
                .map_or("-".into(), |v| format!("{v:.1}")),
        );
    }
}
