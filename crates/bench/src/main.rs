//! `palisade-bench`: what does `palisade run` cost on the `tools/call` path?
//!
//! For each backend (the in-repo `palisade-echo-server`, and `server-everything`'s `echo` tool), it runs three
//! configurations **alternately** (direct, relay, palisade, direct, relay, palisade, …):
//!
//! * `direct`: the bench talks to the server's stdio itself;
//! * `relay`: through `socat - EXEC:'SERVER',pipes`, a zero-work byte relay: the cost any proxy *process* pays
//!   (one more process and two more pipe hops per message);
//! * `palisade`: through `palisade run` with a realistic policy (denied tools, tofu pinning, schema validation,
//!   audit log on, `--profile dev`) in a temporary `XDG_STATE_HOME`.
//!
//! Each run spawns its configuration, does `initialize` + `tools/list`, a warm-up, then N sequential
//! `tools/call echo` round trips (one in flight at a time), timing each with [`Instant`]. Per run: calls/s, p50,
//! p99, the proxy process's CPU time and context switches per call, and its RSS (`VmRSS`/`VmHWM`). Per
//! configuration: the median over runs and the min–max spread; per round, palisade is paired with the relay run
//! next to it (throughput ratio, added p50).
//!
//! `palisade-bench spawn` measures something else: what the OS sandbox adds to starting a server (see
//! [`spawn`]).
//!
//! It builds nothing: run `cargo build --release -p palisade -p palisade-testkit -p palisade-bench` first.
//! See BENCHMARKS.md at the workspace root.
#![forbid(unsafe_code)]

mod http;
mod spawn;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use palisade_testkit::{TestHome, peers};
use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Round trips of tools/call through direct / socat relay / palisade, alternating runs (default), or the
/// sandbox's spawn overhead (`spawn`).
#[derive(Debug, Parser)]
#[command(
    name = "palisade-bench",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    proxy: Args,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Spawn-to-first-response of a server through the plain and the sandboxed launcher (and through
    /// `palisade run [--unsandboxed]`), alternating.
    Spawn(spawn::SpawnArgs),
    /// `tools/call` over HTTP at fixed concurrency: palisade serve vs supergateway, mcp-proxy,
    /// server-everything's own HTTP mode, and the backend over stdio with no gateway.
    Http(http::HttpArgs),
}

/// Options of the default (proxy round-trip) bench.
#[derive(Debug, clap::Args)]
struct Args {
    /// Rounds per backend; each round runs direct, relay and palisade once, in that order.
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// Measured tools/call round trips per run against palisade-echo-server.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    echo_calls: u32,
    /// Measured tools/call round trips per run against server-everything.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(10..=1_000_000))]
    everything_calls: u32,
    /// Unmeasured tools/call round trips before each run's measurement.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    warmup: u32,
    /// Which backends to run.
    #[arg(long, value_enum, default_value_t = BackendSel::All)]
    backend: BackendSel,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Directory holding the release binaries `palisade` and `palisade-echo-server` (default: next to this
    /// binary, else `$CARGO_TARGET_DIR/release`, else `<workspace>/target/release`).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// The relay program (socat 1.7+).
    #[arg(long, default_value = "socat")]
    socat: String,
    /// Also write the JSON report to this file (whatever --format says).
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
    /// Use this policy file for palisade instead of the built-in realistic one (for experiments, e.g. audit
    /// off).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Experiment: `--no-audit` runs palisade with the audit trail off (the built-in policy's
    /// `[audit] enabled = false`, no `--audit-log`), to see what auditing costs. Not the benchmark's setting.
    #[arg(long)]
    no_audit: bool,
    /// Give up on one run (spawn to exit) after this many seconds.
    #[arg(long, default_value_t = 60)]
    run_timeout_secs: u64,
    /// Stop starting new rounds once the whole bench has run this long (completed rounds are reported).
    #[arg(long, default_value_t = 300)]
    max_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendSel {
    All,
    Echo,
    Everything,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Config {
    Direct,
    Relay,
    Palisade,
}

const CONFIGS: [Config; 3] = [Config::Direct, Config::Relay, Config::Palisade];

impl Config {
    fn name(self) -> &'static str {
        match self {
            Config::Direct => "direct",
            Config::Relay => "relay",
            Config::Palisade => "palisade",
        }
    }
}

struct Backend {
    /// Short name: `echo` or `everything`.
    name: &'static str,
    /// Human label.
    label: &'static str,
    argv: Vec<String>,
    /// Name of the `echo` tool's text argument.
    arg: &'static str,
    calls: u32,
}

/// The realistic policy palisade runs with: a couple of denied tools, tofu pinning, schema validation with an
/// argument rule, audit on (path given on the command line).
const POLICY: &str = r#"# palisade-bench: a realistic dev policy.
version = 1
profile = "dev"

[tools]
allow = ["*"]
deny = ["get-env", "gzip-file-as-resource", "delete_*", "*_admin"]

[arguments]
schema = true
unknown = "allow"
auto_detect = true
url_schemes = ["https"]

[[arguments.rule]]
tool = "*file*"
paths = ["path", "paths"]

[pinning]
mode = "tofu"

[limits]
max_message_bytes = "4MiB"
call_timeout = "30s"
max_concurrent_calls = 16
rate = "off"

[audit]
enabled = true
durable = false
"#;

/// One measured run.
#[derive(Debug, Clone)]
struct Run {
    round: u32,
    config: Config,
    calls: u32,
    wall: Duration,
    calls_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
    max_us: f64,
    /// The process the bench talks to: the server (direct), socat (relay) or palisade.
    front_pid: u32,
    /// CPU time of that process (all threads) per measured call, from `/proc/PID/task/*/schedstat`.
    front_cpu_us_per_call: Option<f64>,
    /// Context switches of that process (all threads, voluntary + involuntary) per measured call.
    front_ctxsw_per_call: Option<f64>,
    /// Of those, involuntary ones (preemptions) per measured call.
    front_invol_ctxsw_per_call: Option<f64>,
    front_rss_kb: Option<u64>,
    front_hwm_kb: Option<u64>,
    /// Audit log bytes written per measured call (palisade only).
    audit_bytes_per_call: Option<f64>,
}

struct Paths {
    palisade: PathBuf,
    echo_server: PathBuf,
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("palisade-bench: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    match cli.mode {
        Some(Mode::Spawn(a)) => spawn::run(&a),
        Some(Mode::Http(a)) => http::run(&a),
        None => proxy_main(cli.proxy),
    }
}

fn proxy_main(args: Args) -> Result<()> {
    let paths = locate_binaries(args.bin_dir.as_deref())?;
    check_socat(&args.socat)?;
    let mut backends = Vec::new();
    if args.backend != BackendSel::Everything {
        backends.push(Backend {
            name: "echo",
            label: "palisade-echo-server (Rust, in repo)",
            argv: vec![path_str(&paths.echo_server)?],
            arg: "text",
            calls: args.echo_calls,
        });
    }
    if args.backend != BackendSel::Echo {
        backends.push(Backend {
            name: "everything",
            label: "server-everything 2026.8.31 `echo` (Node)",
            argv: everything_argv()?,
            arg: "message",
            calls: args.everything_calls,
        });
    }
    for b in &backends {
        for a in &b.argv {
            if a.chars()
                .any(|c| matches!(c, ' ' | ':' | ',' | '!' | '\'' | '"' | '\\'))
            {
                bail!(
                    "the {} server argument {a:?} has a character socat's EXEC address would misparse",
                    b.name
                );
            }
        }
    }

    let home = TestHome::new();
    let policy_text = match &args.policy {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading the policy file {}", p.display()))?,
        None if args.no_audit => POLICY.replace("enabled = true", "enabled = false"),
        None => POLICY.to_owned(),
    };
    let policy = home.root().join("policy.toml");
    std::fs::write(&policy, &policy_text).context("writing the policy file")?;
    let started = Instant::now();
    let load_before = loadavg();
    let mut results = Vec::new();
    let mut stopped_early = false;
    for b in &backends {
        let mut runs = Vec::new();
        for round in 0..args.rounds {
            if round > 0 && started.elapsed() > Duration::from_secs(args.max_secs) {
                eprintln!(
                    "palisade-bench: --max-secs reached; {} stops after {round} rounds",
                    b.name
                );
                stopped_early = true;
                break;
            }
            for config in CONFIGS {
                let run = run_one(&args, &paths, &home, &policy, b, config, round).with_context(
                    || format!("{} / {} / round {}", b.name, config.name(), round + 1),
                )?;
                eprintln!(
                    "palisade-bench: {:<10} round {:>2} {:<8} {:>8.0} calls/s  p50 {:>7.1} µs  p99 {:>7.1} µs",
                    b.name,
                    round + 1,
                    config.name(),
                    run.calls_per_sec,
                    run.p50_us,
                    run.p99_us
                );
                runs.push(run);
            }
        }
        results.push((b, runs));
    }
    let load_after = loadavg();
    let elapsed = started.elapsed();

    let report = build_report(
        &args,
        &policy_text,
        &results,
        &load_before,
        &load_after,
        elapsed,
        stopped_early,
    );
    emit(&report, args.json_out.as_deref(), args.format, print_text)
}

/// Writes a report: to `json_out` as JSON when asked, and to stdout as JSON or as text.
pub(crate) fn emit(
    report: &Value,
    json_out: Option<&Path>,
    format: Format,
    text: fn(&Value),
) -> Result<()> {
    if let Some(out) = json_out {
        std::fs::write(out, serde_json::to_string_pretty(report)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
    }
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(report)?),
        Format::Text => text(report),
    }
    Ok(())
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not UTF-8", p.display()))
}

fn locate_binaries(bin_dir: Option<&Path>) -> Result<Paths> {
    let mut dirs = Vec::new();
    if let Some(d) = bin_dir {
        dirs.push(d.to_path_buf());
    } else {
        if let Ok(exe) = std::env::current_exe()
            && let Some(dir) = exe.parent()
        {
            dirs.push(dir.to_path_buf());
        }
        if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
            dirs.push(PathBuf::from(t).join("release"));
        }
        dirs.push(peers::workspace_root().join("target").join("release"));
    }
    for dir in &dirs {
        let palisade = dir.join("palisade");
        let echo_server = dir.join("palisade-echo-server");
        if palisade.is_file() && echo_server.is_file() {
            if !dir.ends_with("release") {
                eprintln!(
                    "palisade-bench: warning: using binaries from {}, which does not look like a release build",
                    dir.display()
                );
            }
            return Ok(Paths {
                palisade,
                echo_server,
            });
        }
    }
    bail!(
        "cannot find both `palisade` and `palisade-echo-server` in {}; build them first with \
         `cargo build --release -p palisade -p palisade-testkit` (or pass --bin-dir)",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn check_socat(socat: &str) -> Result<()> {
    let out = Command::new(socat)
        .arg("-V")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        _ => bail!(
            "`{socat} -V` failed: the relay configuration needs socat (`apt-get install socat`)"
        ),
    }
}

fn everything_argv() -> Result<Vec<String>> {
    let script = peers::peers_dir()
        .join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    if !script.is_file() {
        bail!(
            "server-everything is not installed ({} is missing): run `npm ci --no-audit --no-fund --prefix \
             tests/peers` from the workspace root, or pass --backend echo",
            script.display()
        );
    }
    Ok(peers::server_everything_stdio())
}

/// The command for one configuration; stdin/stdout piped, stderr to `err`.
fn command(
    args: &Args,
    paths: &Paths,
    home: &TestHome,
    policy: &Path,
    b: &Backend,
    config: Config,
    audit: &Path,
) -> Command {
    let mut cmd = match config {
        Config::Direct => {
            let mut c = Command::new(&b.argv[0]);
            c.args(&b.argv[1..]);
            c
        }
        Config::Relay => {
            // socat forks SERVER and relays both directions; `pipes` = pipes, like the other two configurations
            // (the default is a socketpair). Not `nofork`: that execs SERVER in place of socat, leaving no relay.
            let mut c = Command::new(&args.socat);
            c.arg("-").arg(format!("EXEC:{},pipes", b.argv.join(" ")));
            c
        }
        Config::Palisade => {
            let mut c = Command::new(&paths.palisade);
            c.arg("run")
                .arg("--policy")
                .arg(policy)
                .arg("--server")
                .arg(format!("bench-{}", b.name))
                .arg("--profile")
                .arg("dev")
                .args(
                    (!args.no_audit)
                        .then(|| [std::ffi::OsStr::new("--audit-log"), audit.as_os_str()])
                        .into_iter()
                        .flatten(),
                )
                .arg("--pins")
                .arg(home.state_home().join("bench-pins.json"))
                .arg("--")
                .args(&b.argv);
            c
        }
    };
    home.apply(&mut cmd);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    cmd
}

/// A spawned configuration spoken to over its stdio, one request in flight at a time, in this thread (no
/// reader thread: a channel hop would add a wake-up to every measured round trip).
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    line: Vec<u8>,
    buf: Vec<u8>,
}

impl Peer {
    /// Sends a request and reads until its response; returns it and when its line arrived.
    fn request(&mut self, method: &str, params: &Value) -> Result<(Value, Instant)> {
        self.next_id += 1;
        let id = self.next_id;
        self.buf.clear();
        serde_json::to_writer(
            &mut self.buf,
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )?;
        self.buf.push(b'\n');
        self.send_buf()?;
        self.wait_for(id)
    }

    fn notify(&mut self, method: &str) -> Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, &json!({"jsonrpc": "2.0", "method": method}))?;
        self.buf.push(b'\n');
        self.send_buf()
    }

    fn send_buf(&mut self) -> Result<()> {
        let w = self.stdin.as_mut().context("stdin already closed")?;
        w.write_all(&self.buf).context("writing to the peer")?;
        w.flush().context("writing to the peer")
    }

    fn wait_for(&mut self, id: u64) -> Result<(Value, Instant)> {
        loop {
            self.line.clear();
            let n = self
                .stdout
                .read_until(b'\n', &mut self.line)
                .context("reading from the peer")?;
            let at = Instant::now();
            if n == 0 {
                bail!("the peer closed its stdout while the bench waited for response {id}");
            }
            let v: Value = serde_json::from_slice(&self.line).with_context(|| {
                format!(
                    "the peer sent a line that is not JSON: {:?}",
                    String::from_utf8_lossy(&self.line)
                )
            })?;
            if v.get("id").and_then(Value::as_u64) == Some(id) && v.get("method").is_none() {
                return Ok((v, at));
            }
            if let (Some(req_id), Some(_)) = (v.get("id"), v.get("method")) {
                // A server→client request (roots, sampling…): the bench declares no capabilities; refuse.
                let reply = json!({"jsonrpc": "2.0", "id": req_id, "error": {"code": -32601, "message": "not supported by palisade-bench"}});
                self.buf.clear();
                serde_json::to_writer(&mut self.buf, &reply)?;
                self.buf.push(b'\n');
                self.send_buf()?;
            }
            // Notifications (logging, list changes) are ignored.
        }
    }
}

/// Kills `pid` if the run is not done by `deadline` (a wedged peer must not hang the bench).
struct Watchdog {
    done: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(pid: u32, timeout: Duration) -> Watchdog {
        Watchdog::kill_after(pid.to_string(), timeout)
    }

    /// Kills process group `pgid` (a launched server's) when the deadline passes.
    fn start_group(pgid: u32, timeout: Duration) -> Watchdog {
        Watchdog::kill_after(format!("-{pgid}"), timeout)
    }

    fn kill_after(target: String, timeout: Duration) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        std::thread::spawn(move || {
            let end = Instant::now() + timeout;
            while Instant::now() < end {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !flag.load(Ordering::SeqCst) {
                eprintln!("palisade-bench: run timed out; killing {target}");
                let _ = Command::new("kill").args(["-KILL", "--", &target]).status();
            }
        });
        Watchdog { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

fn run_one(
    args: &Args,
    paths: &Paths,
    home: &TestHome,
    policy: &Path,
    b: &Backend,
    config: Config,
    round: u32,
) -> Result<Run> {
    let audit = home
        .state_home()
        .join(format!("audit-{}-{round}.jsonl", b.name));
    let err_path = home
        .root()
        .join(format!("stderr-{}-{}-{round}.log", b.name, config.name()));
    let mut cmd = command(args, paths, home, policy, b, config, &audit);
    cmd.stderr(File::create(&err_path).context("creating the stderr file")?);
    let mut child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
    let pid = child.id();
    let _watchdog = Watchdog::start(pid, Duration::from_secs(args.run_timeout_secs));
    let stdin = child.stdin.take().context("stdin")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut peer = Peer {
        child,
        stdin: Some(stdin),
        stdout: BufReader::with_capacity(64 * 1024, stdout),
        next_id: 0,
        line: Vec::with_capacity(4096),
        buf: Vec::with_capacity(4096),
    };
    let result = measure(&mut peer, b, args.warmup, pid);
    // Shut down: close stdin, give it a moment, then kill.
    peer.stdin.take();
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        match peer.child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = peer.child.kill();
                let _ = peer.child.wait();
                break;
            }
        }
    }
    let mut m = result.with_context(|| {
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        let tail: String = err
            .chars()
            .rev()
            .take(4000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("the run failed; its stderr ends with:\n{tail}")
    })?;
    m.round = round;
    m.config = config;
    if config == Config::Palisade {
        let bytes = std::fs::metadata(&audit).map(|md| md.len()).unwrap_or(0);
        m.audit_bytes_per_call = Some(bytes as f64 / f64::from(b.calls + args.warmup));
    }
    Ok(m)
}

fn measure(peer: &mut Peer, b: &Backend, warmup: u32, pid: u32) -> Result<Run> {
    let (init, _) = peer.request(
        "initialize",
        &json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "palisade-bench", "version": env!("CARGO_PKG_VERSION")},
        }),
    )?;
    if init.get("result").is_none() {
        bail!("initialize failed: {init}");
    }
    peer.notify("notifications/initialized")?;
    let (tools, _) = peer.request("tools/list", &json!({}))?;
    let listed = tools
        .pointer("/result/tools")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|t| t["name"] == "echo"));
    if !listed {
        bail!("tools/list has no `echo` tool: {tools}");
    }
    let call =
        |i: u64| json!({"name": "echo", "arguments": {b.arg: format!("palisade bench {i}")}});
    for i in 0..u64::from(warmup) {
        let (r, _) = peer.request("tools/call", &call(i))?;
        check_call(&r)?;
    }
    let n = b.calls as usize;
    let mut lat = Vec::with_capacity(n);
    let s0 = sched(pid);
    let start = Instant::now();
    for i in 0..n as u64 {
        let params = call(i);
        let t0 = Instant::now();
        let (r, t1) = peer.request("tools/call", &params)?;
        lat.push(t1 - t0);
        check_call(&r)?;
    }
    let wall = start.elapsed();
    let s1 = sched(pid);
    let (rss, hwm) = rss_kb(pid);
    lat.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let total: Duration = lat.iter().sum();
    let per_call = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / n as f64;
    Ok(Run {
        round: 0,
        config: Config::Direct,
        calls: b.calls,
        wall,
        calls_per_sec: n as f64 / wall.as_secs_f64(),
        p50_us: us(percentile(&lat, 0.50)),
        p99_us: us(percentile(&lat, 0.99)),
        mean_us: us(total) / n as f64,
        max_us: us(lat[n - 1]),
        front_pid: pid,
        front_cpu_us_per_call: s0
            .zip(s1)
            .map(|(a, b)| per_call(a.cpu_ns, b.cpu_ns) / 1000.0),
        front_ctxsw_per_call: s0
            .zip(s1)
            .map(|(a, b)| per_call(a.vol + a.invol, b.vol + b.invol)),
        front_invol_ctxsw_per_call: s0.zip(s1).map(|(a, b)| per_call(a.invol, b.invol)),
        front_rss_kb: rss,
        front_hwm_kb: hwm,
        audit_bytes_per_call: None,
    })
}

fn check_call(r: &Value) -> Result<()> {
    let ok = r
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .is_some_and(|t| t.contains("palisade bench"))
        && r.pointer("/result/isError") != Some(&Value::Bool(true));
    if !ok {
        bail!("tools/call echo did not echo: {r}");
    }
    Ok(())
}

/// Nearest-rank percentile of sorted samples.
fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// On-CPU time and context switches of `pid`, summed over its threads.
#[derive(Debug, Clone, Copy, Default)]
struct Sched {
    cpu_ns: u64,
    vol: u64,
    invol: u64,
}

fn sched(pid: u32) -> Option<Sched> {
    let mut t = Sched::default();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let p = task.path();
        if let Ok(s) = std::fs::read_to_string(p.join("schedstat")) {
            t.cpu_ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        if let Ok(s) = std::fs::read_to_string(p.join("status")) {
            for line in s.lines() {
                let num = |v: &str| v.trim().parse::<u64>().unwrap_or(0);
                if let Some(v) = line.strip_prefix("voluntary_ctxt_switches:") {
                    t.vol += num(v);
                } else if let Some(v) = line.strip_prefix("nonvoluntary_ctxt_switches:") {
                    t.invol += num(v);
                }
            }
        }
    }
    Some(t)
}

/// (VmRSS, VmHWM) of `pid`, in kB.
fn rss_kb(pid: u32) -> (Option<u64>, Option<u64>) {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (None, None);
    };
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Median, min and max.
fn spread(values: &[f64]) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    json!({"median": median, "min": v[0], "max": v[n - 1], "n": n})
}

fn build_report(
    args: &Args,
    policy_text: &str,
    results: &[(&Backend, Vec<Run>)],
    load_before: &str,
    load_after: &str,
    elapsed: Duration,
    stopped_early: bool,
) -> Value {
    let mut backends = Vec::new();
    let mut targets = Vec::new();
    let mut palisade_hwm_max: Option<u64> = None;
    for (b, runs) in results {
        let of = |c: Config| runs.iter().filter(move |r| r.config == c);
        let mut configs = serde_json::Map::new();
        for c in CONFIGS {
            let pick =
                |f: &dyn Fn(&Run) -> Option<f64>| spread(&of(c).filter_map(f).collect::<Vec<_>>());
            configs.insert(
                c.name().into(),
                json!({
                    "calls_per_sec": pick(&|r| Some(r.calls_per_sec)),
                    "p50_us": pick(&|r| Some(r.p50_us)),
                    "p99_us": pick(&|r| Some(r.p99_us)),
                    "mean_us": pick(&|r| Some(r.mean_us)),
                    "front_cpu_us_per_call": pick(&|r| r.front_cpu_us_per_call),
                    "front_ctxsw_per_call": pick(&|r| r.front_ctxsw_per_call),
                    "front_invol_ctxsw_per_call": pick(&|r| r.front_invol_ctxsw_per_call),
                    "front_rss_kb": pick(&|r| r.front_rss_kb.map(|v| v as f64)),
                    "front_hwm_kb": pick(&|r| r.front_hwm_kb.map(|v| v as f64)),
                    "audit_bytes_per_call": pick(&|r| r.audit_bytes_per_call),
                }),
            );
        }
        for r in of(Config::Palisade) {
            if let Some(h) = r.front_hwm_kb {
                palisade_hwm_max = Some(palisade_hwm_max.map_or(h, |m| m.max(h)));
            }
        }
        // Paired per round: palisade against the relay and direct runs of the same round.
        let find = |round: u32, c: Config| runs.iter().find(|r| r.round == round && r.config == c);
        let mut thr_vs_relay = Vec::new();
        let mut p50_vs_relay = Vec::new();
        let mut p99_vs_relay = Vec::new();
        let mut thr_vs_direct = Vec::new();
        let mut p50_vs_direct = Vec::new();
        let mut relay_p50_vs_direct = Vec::new();
        let rounds = runs.iter().map(|r| r.round).max().map_or(0, |m| m + 1);
        for round in 0..rounds {
            if let (Some(d), Some(r), Some(p)) = (
                find(round, Config::Direct),
                find(round, Config::Relay),
                find(round, Config::Palisade),
            ) {
                thr_vs_relay.push(p.calls_per_sec / r.calls_per_sec);
                p50_vs_relay.push(p.p50_us - r.p50_us);
                p99_vs_relay.push(p.p99_us - r.p99_us);
                thr_vs_direct.push(p.calls_per_sec / d.calls_per_sec);
                p50_vs_direct.push(p.p50_us - d.p50_us);
                relay_p50_vs_direct.push(r.p50_us - d.p50_us);
            }
        }
        let paired = json!({
            "palisade_over_relay_throughput": spread(&thr_vs_relay),
            "palisade_minus_relay_p50_us": spread(&p50_vs_relay),
            "palisade_minus_relay_p99_us": spread(&p99_vs_relay),
            "palisade_over_direct_throughput": spread(&thr_vs_direct),
            "palisade_minus_direct_p50_us": spread(&p50_vs_direct),
            "relay_minus_direct_p50_us": spread(&relay_p50_vs_direct),
        });
        let median = |v: &[f64]| spread(v).get("median").and_then(Value::as_f64);
        match b.name {
            "everything" => {
                let m = median(&thr_vs_relay);
                targets.push(json!({
                    "target": "throughput through palisade >= 0.95x the zero-work relay (server-everything)",
                    "value": m, "limit": 0.95, "met": m.map(|m| m >= 0.95),
                }));
            }
            "echo" => {
                let m = median(&p50_vs_relay);
                targets.push(json!({
                    "target": "p50 added over the relay <= 15 us (palisade-echo-server)",
                    "value": m, "limit": 15.0, "met": m.map(|m| m <= 15.0),
                }));
            }
            _ => {}
        }
        backends.push(json!({
            "name": b.name,
            "label": b.label,
            "argv": b.argv,
            "calls_per_run": b.calls,
            "rounds": rounds,
            "configs": configs,
            "paired": paired,
            "runs": runs.iter().map(|r| json!({
                "round": r.round + 1,
                "config": r.config.name(),
                "calls": r.calls,
                "wall_s": r.wall.as_secs_f64(),
                "calls_per_sec": r.calls_per_sec,
                "p50_us": r.p50_us,
                "p99_us": r.p99_us,
                "mean_us": r.mean_us,
                "max_us": r.max_us,
                "front_pid": r.front_pid,
                "front_cpu_us_per_call": r.front_cpu_us_per_call,
                "front_ctxsw_per_call": r.front_ctxsw_per_call,
                "front_invol_ctxsw_per_call": r.front_invol_ctxsw_per_call,
                "front_rss_kb": r.front_rss_kb,
                "front_hwm_kb": r.front_hwm_kb,
                "audit_bytes_per_call": r.audit_bytes_per_call,
            })).collect::<Vec<_>>(),
        }));
    }
    // 15 MB read as 15,000,000 bytes (the stricter reading of "MB").
    let limit_kb = 15_000_000.0 / 1024.0;
    targets.push(json!({
        "target": "palisade RSS while proxying <= 15 MB (peak VmHWM over all palisade runs)",
        "value": palisade_hwm_max.map(|k| k as f64 / 1024.0),
        "unit": "MiB",
        "limit": limit_kb / 1024.0,
        "met": palisade_hwm_max.map(|k| (k as f64) <= limit_kb),
    }));
    json!({
        "machine": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "cpu_model": cpu_model(),
            "affinity": affinity(),
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
        "params": {
            "rounds": args.rounds,
            "warmup": args.warmup,
            "echo_calls": args.echo_calls,
            "everything_calls": args.everything_calls,
            "relay": format!("{} - EXEC:'SERVER',pipes", args.socat),
            "audit": !args.no_audit,
            "policy": policy_text,
        },
        "elapsed_s": elapsed.as_secs_f64(),
        "stopped_early": stopped_early,
        "backends": backends,
        "targets": targets,
    })
}

/// This process's CPU affinity list (`taskset -c` is inherited by every process the bench starts).
fn affinity() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default()
}

fn fmt_spread(v: &Value, prec: usize) -> String {
    let g = |k: &str| v.get(k).and_then(Value::as_f64);
    match (g("median"), g("min"), g("max")) {
        (Some(m), Some(lo), Some(hi)) => format!("{m:.prec$} [{lo:.prec$}–{hi:.prec$}]"),
        _ => "–".into(),
    }
}

fn fmt_signed_spread(v: &Value, prec: usize) -> String {
    let g = |k: &str| v.get(k).and_then(Value::as_f64);
    match (g("median"), g("min"), g("max")) {
        (Some(m), Some(lo), Some(hi)) => format!("{m:+.prec$} [{lo:+.prec$} – {hi:+.prec$}]"),
        _ => "–".into(),
    }
}

fn print_text(report: &Value) {
    let m = &report["machine"];
    println!(
        "palisade-bench: {} CPUs ({}; affinity {}), Linux {}; load before {} / after {}; {:.0} s",
        m["cpus"],
        m["cpu_model"].as_str().unwrap_or(""),
        m["affinity"].as_str().unwrap_or(""),
        m["kernel"].as_str().unwrap_or(""),
        m["loadavg_before"].as_str().unwrap_or(""),
        m["loadavg_after"].as_str().unwrap_or(""),
        report["elapsed_s"].as_f64().unwrap_or(0.0),
    );
    println!("median [min–max] over runs; relay = `socat - EXEC:SERVER,pipes`");
    for b in report["backends"].as_array().into_iter().flatten() {
        println!();
        println!(
            "== {} — {} calls/run, {} rounds ==",
            b["label"].as_str().unwrap_or(""),
            b["calls_per_run"],
            b["rounds"]
        );
        println!(
            "{:<9} {:>24} {:>22} {:>22} {:>18} {:>16} {:>9}",
            "config",
            "calls/s",
            "p50 µs",
            "p99 µs",
            "front CPU µs/call",
            "ctxsw/call (inv)",
            "HWM MiB"
        );
        for c in CONFIGS {
            let s = &b["configs"][c.name()];
            let hwm = s["front_hwm_kb"]["max"]
                .as_f64()
                .map_or("–".into(), |k| format!("{:.1}", k / 1024.0));
            println!(
                "{:<9} {:>24} {:>22} {:>22} {:>18} {:>16} {:>9}",
                c.name(),
                fmt_spread(&s["calls_per_sec"], 0),
                fmt_spread(&s["p50_us"], 1),
                fmt_spread(&s["p99_us"], 1),
                fmt_spread(&s["front_cpu_us_per_call"], 1),
                format!(
                    "{:.2} ({:.2})",
                    s["front_ctxsw_per_call"]["median"]
                        .as_f64()
                        .unwrap_or(f64::NAN),
                    s["front_invol_ctxsw_per_call"]["median"]
                        .as_f64()
                        .unwrap_or(f64::NAN)
                ),
                hwm,
            );
        }
        let p = &b["paired"];
        println!("paired per round:");
        println!(
            "  palisade / relay throughput  {}",
            fmt_spread(&p["palisade_over_relay_throughput"], 3)
        );
        println!(
            "  palisade − relay p50 µs      {}",
            fmt_signed_spread(&p["palisade_minus_relay_p50_us"], 1)
        );
        println!(
            "  palisade − relay p99 µs      {}",
            fmt_signed_spread(&p["palisade_minus_relay_p99_us"], 1)
        );
        println!(
            "  relay − direct p50 µs        {}",
            fmt_signed_spread(&p["relay_minus_direct_p50_us"], 1)
        );
        println!(
            "  palisade / direct throughput {}",
            fmt_spread(&p["palisade_over_direct_throughput"], 3)
        );
        if let Some(a) = b["configs"]["palisade"]["audit_bytes_per_call"]["median"].as_f64() {
            println!("  audit log bytes per call     {a:.0}");
        }
    }
    println!();
    println!("targets:");
    for t in report["targets"].as_array().into_iter().flatten() {
        let verdict = match t["met"].as_bool() {
            Some(true) => "MET",
            Some(false) => "NOT MET",
            None => "n/a",
        };
        println!(
            "  [{verdict}] {}: {} (limit {})",
            t["target"].as_str().unwrap_or(""),
            t["value"]
                .as_f64()
                .map_or("–".into(), |v| format!("{v:.3}")),
            t["limit"]
                .as_f64()
                .map_or("–".into(), |v| format!("{v:.3}")),
        );
    }
    if report["stopped_early"].as_bool() == Some(true) {
        println!("(stopped early: --max-secs reached)");
    }
}
