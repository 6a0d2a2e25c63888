//! `palisade-bench spawn`: what does the OS sandbox add to starting a server?
//!
//! Spawn-to-first-response: from the launcher's `launch` call to the arrival of the server's response to an
//! MCP `initialize` request (written into the server's stdin right after `launch` returns). Two launchers,
//! exactly as palisade uses them, with the release `palisade` binary as `self_exe` (the watchdog, and for the
//! sandbox the helper `palisade __sandbox 0`):
//!
//! * `plain`: [`palisade_sandbox::Plain`], a scrubbed child in its own process group, plus the watchdog;
//! * `sandboxed`: [`palisade_sandbox::Sandboxed`], tier 1 (plan, pids cgroup as root, helper, namespaces,
//!   mounts, pivot, rlimits, Landlock, seccomp, exec), plus the watchdog.
//!
//! Servers: (a) `node -e SCRIPT`, a tiny MCP server in one line of JavaScript (`node` from `PATH`); (b) the
//! in-repo Rust `palisade-echo-server`. Runs alternate plain, sandboxed, plain, sandboxed… so drifting load
//! hits both alike, each after an idle pause (`--gap-ms`, default 50) so that it finds the kernel as a lone
//! `palisade run` would (see `--gap-ms`). Each sandboxed spawn is paired with the plain spawn right before it; the added time is
//! reported as the difference of the medians and as the median and p10–p90 of those pairs.
//!
//! Optionally (`--e2e`, on by default) the same for the whole `palisade run [--unsandboxed] -- SERVER`: from
//! spawning palisade to its relayed `initialize` response.

use anyhow::{Context, Result, bail};
use palisade_sandbox::{LaunchSpec, Launched, Launcher, Plain, Sandboxed, scrubbed_env};
use palisade_testkit::{TempDir, TestHome};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Format, Watchdog, affinity, cpu_model, loadavg};

/// Options of `palisade-bench spawn`.
#[derive(Debug, clap::Args)]
pub(crate) struct SpawnArgs {
    /// Measured spawns per launcher and server (plain and sandboxed alternate).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    spawns: u32,
    /// Unmeasured spawns of each launcher before the measured ones (page cache, dentries).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=1000))]
    warmup: u32,
    /// Idle pause before each measured spawn, in milliseconds. A real `palisade run` starts one server
    /// from a quiet system; back-to-back spawns would keep kernel state warm that a lone spawn finds cold
    /// (an RCU-synchronised lock of cgroup migration, 5–18 ms cold, µs warm).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    gap_ms: u64,
    /// Which servers to start.
    #[arg(long, value_enum, default_value_t = ServerSel::All)]
    server: ServerSel,
    /// Measured spawns per configuration of the end-to-end `palisade run [--unsandboxed]` comparison (0: skip).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    e2e_spawns: u32,
    /// The Node.js interpreter for the `node -e` server (looked up on PATH).
    #[arg(long, default_value = "node")]
    node: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    json_out: Option<PathBuf>,
    /// Directory holding the release binaries `palisade` and `palisade-echo-server` (default as for the
    /// proxy bench).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Give up on one spawn (launch to response) after this many seconds.
    #[arg(long, default_value_t = 20)]
    spawn_timeout_secs: u64,
    /// Stop measuring a series once the whole bench has run this long (what was measured is reported).
    #[arg(long, default_value_t = 240)]
    max_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ServerSel {
    All,
    Node,
    Echo,
}

/// A one-line MCP server: answers `initialize` and `tools/list`, refuses other requests.
const NODE_SERVER: &str = "const rl=require('readline').createInterface({input:process.stdin});\
rl.on('line',l=>{let m;try{m=JSON.parse(l)}catch(e){return}if(m.id===undefined||!m.method)return;\
const r=m.method==='initialize'?{result:{protocolVersion:m.params.protocolVersion,capabilities:{tools:{}},\
serverInfo:{name:'node-e',version:'0'}}}:m.method==='tools/list'?{result:{tools:[]}}:m.method==='ping'?\
{result:{}}:{error:{code:-32601,message:'not found'}};\
process.stdout.write(JSON.stringify({jsonrpc:'2.0',id:m.id,...r})+'\\n')});";

struct Server {
    name: &'static str,
    label: &'static str,
    argv: Vec<String>,
}

/// One configuration's spawn times, in milliseconds, in measurement order.
#[derive(Debug, Default, Clone)]
struct Series {
    ms: Vec<f64>,
}

fn init_line() -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "palisade-bench", "version": env!("CARGO_PKG_VERSION")},
        },
    }))
    .unwrap_or_default();
    line.push(b'\n');
    line
}

pub(crate) fn run(args: &SpawnArgs) -> Result<()> {
    let paths = crate::locate_binaries(args.bin_dir.as_deref())?;
    let node = which(&args.node).with_context(|| {
        format!(
            "`{}` is not on PATH: the node server needs Node.js (or pass --node / --server echo)",
            args.node
        )
    });
    let mut servers = Vec::new();
    if args.server != ServerSel::Echo {
        servers.push(Server {
            name: "node",
            label: "node -e (one-line MCP server, Node.js)",
            argv: vec![crate::path_str(&node?)?, "-e".into(), NODE_SERVER.into()],
        });
    }
    if args.server != ServerSel::Node {
        servers.push(Server {
            name: "echo",
            label: "palisade-echo-server (Rust)",
            argv: vec![crate::path_str(&paths.echo_server)?],
        });
    }

    let home = TestHome::new();
    let cwd = TempDir::new("spawn-cwd");
    let plain = Plain {
        self_exe: Some(paths.palisade.clone()),
    };
    let sandboxed = Sandboxed::new(paths.palisade.clone());
    let timeout = Duration::from_secs(args.spawn_timeout_secs);
    let gap = Duration::from_millis(args.gap_ms);
    let started = Instant::now();
    let budget = Duration::from_secs(args.max_secs);
    let load_before = loadavg();
    let mut stopped_early = false;
    let mut out = Vec::new();
    for s in &servers {
        let spec = LaunchSpec {
            argv: s.argv.clone(),
            cwd: cwd.path().to_path_buf(),
            env: scrubbed_env(
                std::env::vars_os()
                    .filter(|(k, _)| k != "HOME")
                    .chain([("HOME".into(), home.home().into_os_string())]),
                &[],
            ),
            read_roots: Vec::new(),
            write_roots: Vec::new(),
            home: Some(home.home()),
            extra_exec: Vec::new(),
            egress: false,
        };
        let launchers: [(&str, &dyn Launcher); 2] = [("plain", &plain), ("sandboxed", &sandboxed)];
        for _ in 0..args.warmup {
            for (name, l) in launchers {
                spawn_once(l, &spec, timeout)
                    .with_context(|| format!("{} / {name} (warm-up)", s.name))?;
            }
        }
        let mut series = [Series::default(), Series::default()];
        for i in 0..args.spawns {
            if i >= 2 && started.elapsed() > budget {
                eprintln!(
                    "palisade-bench: --max-secs reached; {} stops after {i} spawns",
                    s.name
                );
                stopped_early = true;
                break;
            }
            for (k, (name, l)) in launchers.into_iter().enumerate() {
                std::thread::sleep(gap);
                let t = spawn_once(l, &spec, timeout)
                    .with_context(|| format!("{} / {name} / spawn {}", s.name, i + 1))?;
                series[k].ms.push(ms(t));
            }
        }
        eprintln!(
            "palisade-bench: {:<5} launcher  plain p50 {:>6.2} ms  sandboxed p50 {:>6.2} ms",
            s.name,
            median(&series[0].ms),
            median(&series[1].ms)
        );
        let mut e2e = None;
        if args.e2e_spawns > 0 {
            let mut series = [Series::default(), Series::default()];
            let configs = [false, true];
            for _ in 0..args.warmup.min(2) {
                for sb in configs {
                    run_once(&paths.palisade, &home, cwd.path(), s, sb, timeout)?;
                }
            }
            for i in 0..args.e2e_spawns {
                if i >= 2 && started.elapsed() > budget {
                    stopped_early = true;
                    break;
                }
                for (k, sb) in configs.into_iter().enumerate() {
                    std::thread::sleep(gap);
                    let t = run_once(&paths.palisade, &home, cwd.path(), s, sb, timeout)
                        .with_context(|| {
                            format!(
                                "{} / palisade run{}",
                                s.name,
                                if sb { "" } else { " --unsandboxed" }
                            )
                        })?;
                    series[k].ms.push(ms(t));
                }
            }
            eprintln!(
                "palisade-bench: {:<5} palisade run  --unsandboxed p50 {:>6.2} ms  sandboxed p50 {:>6.2} ms",
                s.name,
                median(&series[0].ms),
                median(&series[1].ms)
            );
            e2e = Some(series);
        }
        out.push((s, series, e2e));
    }
    let report = json!({
        "machine": {
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "cpu_model": cpu_model(),
            "affinity": affinity(),
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
            "loadavg_before": load_before,
            "loadavg_after": loadavg(),
            "euid_root": is_root(),
        },
        "params": {
            "spawns": args.spawns,
            "gap_ms": args.gap_ms,
            "warmup": args.warmup,
            "e2e_spawns": args.e2e_spawns,
            "palisade": paths.palisade,
        },
        "elapsed_s": started.elapsed().as_secs_f64(),
        "stopped_early": stopped_early,
        "servers": out.iter().map(|(s, l, e)| json!({
            "name": s.name,
            "label": s.label,
            "argv0": s.argv[0],
            "launcher": compare(&l[0], &l[1]),
            "palisade_run": e.as_ref().map(|e| compare(&e[0], &e[1])),
        })).collect::<Vec<_>>(),
        "target": {
            "target": "spawn-to-first-response added by the sandbox <= 3 ms (launcher, median)",
            "limit_ms": 3.0,
            "per_server": out.iter().map(|(s, l, _)| {
                let added = median(&l[1].ms) - median(&l[0].ms);
                json!({"server": s.name, "added_ms": added, "met": added <= 3.0})
            }).collect::<Vec<_>>(),
        },
    });
    crate::emit(&report, args.json_out.as_deref(), args.format, print_text)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn which(prog: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        return Some(PathBuf::from(prog));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// Launches `spec`, sends `initialize`, waits for its response; returns the time from `launch` to the
/// response's arrival. Then closes stdin and reaps the server (not timed).
fn spawn_once(l: &dyn Launcher, spec: &LaunchSpec, timeout: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    let mut launched = l.launch(spec).context("launch")?;
    let pid = launched.child.id();
    let guard = Watchdog::start_group(pid, timeout);
    let result = first_response(&mut launched.child, t0);
    let elapsed = result.and_then(|t| {
        shut_down(&mut launched.child)?;
        Ok(t)
    });
    drop(guard);
    // The server has exited: disarming the watchdog now kills nothing that matters.
    drop(launched.watchdog.take());
    let err_tail = if elapsed.is_err() {
        let _ = launched.child.kill();
        let _ = launched.child.wait();
        read_stderr(&mut launched)
    } else {
        String::new()
    };
    if let Some(c) = launched.cgroup.take() {
        let _ = c.remove();
    }
    elapsed.with_context(|| format!("the server's stderr: {err_tail}"))
}

fn read_stderr(l: &mut Launched) -> String {
    let mut s = String::new();
    if let Some(e) = l.child.stderr.as_mut() {
        let _ = e.take(8192).read_to_string(&mut s);
    }
    s
}

/// Writes `initialize` to the child's stdin and reads its stdout until the response with id 1.
fn first_response(child: &mut Child, t0: Instant) -> Result<Duration> {
    let stdin = child.stdin.as_mut().context("no stdin")?;
    stdin
        .write_all(&init_line())
        .context("writing initialize")?;
    stdin.flush()?;
    let stdout = child.stdout.as_mut().context("no stdout")?;
    let mut r = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).context("reading stdout")?;
        let at = t0.elapsed();
        if n == 0 {
            bail!("the server closed stdout before answering initialize");
        }
        let Ok(v) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        if v.get("id") == Some(&json!(1)) && v.get("method").is_none() {
            if v.get("result").is_none() {
                bail!("initialize failed: {v}");
            }
            return Ok(at);
        }
    }
}

/// Closes stdin and waits for the child to exit.
fn shut_down(child: &mut Child) -> Result<()> {
    drop(child.stdin.take());
    let status = child.wait().context("waiting for the server")?;
    if !status.success() {
        bail!("the server exited with {status}");
    }
    Ok(())
}

/// One `palisade run [--unsandboxed] -- SERVER`: from spawning palisade to its relayed `initialize` response.
fn run_once(
    palisade: &Path,
    home: &TestHome,
    cwd: &Path,
    s: &Server,
    sandbox: bool,
    timeout: Duration,
) -> Result<Duration> {
    let mut cmd = Command::new(palisade);
    cmd.arg("run");
    if !sandbox {
        cmd.arg("--unsandboxed");
    }
    cmd.arg("--profile")
        .arg("dev")
        .arg("--server")
        .arg(format!("spawn-{}", s.name))
        .arg("--pins")
        .arg(home.state_home().join("spawn-pins.json"))
        .arg("--audit-log")
        .arg(home.state_home().join("spawn-audit.jsonl"))
        .arg("--")
        .args(&s.argv)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    home.apply(&mut cmd);
    let t0 = Instant::now();
    let mut child = cmd.spawn().context("spawning palisade")?;
    let guard = Watchdog::start_group(child.id(), timeout);
    let r = first_response(&mut child, t0).and_then(|t| {
        shut_down(&mut child)?;
        Ok(t)
    });
    drop(guard);
    if r.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        let mut s = String::new();
        if let Some(e) = child.stderr.as_mut() {
            let _ = e.take(8192).read_to_string(&mut s);
        }
        return r.with_context(|| format!("palisade's stderr: {s}"));
    }
    r
}

/// Nearest-rank percentile of unsorted samples (NaN when empty).
fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

fn median(v: &[f64]) -> f64 {
    pct(v, 0.5)
}

fn stats(v: &[f64]) -> Value {
    json!({
        "n": v.len(),
        "median": median(v),
        "p10": pct(v, 0.1),
        "p90": pct(v, 0.9),
        "min": pct(v, 0.0),
        "max": pct(v, 1.0),
    })
}

/// Plain against sandboxed: each configuration's stats, and the added time (difference of medians and of
/// p90s; the paired differences, each sandboxed spawn minus the plain spawn right before it).
fn compare(plain: &Series, sandboxed: &Series) -> Value {
    let pairs: Vec<f64> = plain
        .ms
        .iter()
        .zip(&sandboxed.ms)
        .map(|(p, s)| s - p)
        .collect();
    json!({
        "plain_ms": stats(&plain.ms),
        "sandboxed_ms": stats(&sandboxed.ms),
        "added_median_ms": median(&sandboxed.ms) - median(&plain.ms),
        "added_p90_ms": pct(&sandboxed.ms, 0.9) - pct(&plain.ms, 0.9),
        "paired_added_ms": stats(&pairs),
    })
}

fn print_text(r: &Value) {
    let m = &r["machine"];
    println!(
        "palisade-bench spawn: {} CPUs ({}; affinity {}), Linux {}, {}; load before {} / after {}; {:.0} s",
        m["cpus"],
        m["cpu_model"].as_str().unwrap_or(""),
        m["affinity"].as_str().unwrap_or(""),
        m["kernel"].as_str().unwrap_or(""),
        if m["euid_root"].as_bool() == Some(true) {
            "as root (pids cgroup per sandbox)"
        } else {
            "unprivileged"
        },
        m["loadavg_before"].as_str().unwrap_or(""),
        m["loadavg_after"].as_str().unwrap_or(""),
        r["elapsed_s"].as_f64().unwrap_or(0.0),
    );
    println!(
        "spawn-to-first-response (launch → initialize response), ms: median / p90 [p10–p90 of spawns]"
    );
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let line = |label: &str, c: &Value| {
        let p = &c["plain_ms"];
        let s = &c["sandboxed_ms"];
        let d = &c["paired_added_ms"];
        println!(
            "  {label:<14} plain {:>6.2} / {:>6.2}   sandboxed {:>6.2} / {:>6.2}   added {:+.2} (p90 {:+.2}; \
             paired median {:+.2} [{:+.2} – {:+.2}], n={})",
            f(p, "median"),
            f(p, "p90"),
            f(s, "median"),
            f(s, "p90"),
            f(c, "added_median_ms"),
            f(c, "added_p90_ms"),
            f(d, "median"),
            f(d, "p10"),
            f(d, "p90"),
            d["n"],
        );
    };
    for s in r["servers"].as_array().into_iter().flatten() {
        println!("== {} ==", s["label"].as_str().unwrap_or(""));
        line("launcher", &s["launcher"]);
        if !s["palisade_run"].is_null() {
            line("palisade run", &s["palisade_run"]);
        }
    }
    let t = &r["target"];
    for p in t["per_server"].as_array().into_iter().flatten() {
        println!(
            "target [{}] {} ({}): {:+.2} ms (limit {} ms)",
            if p["met"].as_bool() == Some(true) {
                "MET"
            } else {
                "NOT MET"
            },
            t["target"].as_str().unwrap_or(""),
            p["server"].as_str().unwrap_or(""),
            p["added_ms"].as_f64().unwrap_or(f64::NAN),
            t["limit_ms"],
        );
    }
    if r["stopped_early"].as_bool() == Some(true) {
        println!("(stopped early: --max-secs reached)");
    }
}
