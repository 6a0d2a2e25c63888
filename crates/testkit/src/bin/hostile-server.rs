//! `palisade-hostile-server`: an MCP server whose tools each try ONE escape from a sandbox and say what
//! happened. The hostile-server suite (`crates/palisade/tests/it/hostile.rs`) runs it under `palisade run`
//! (sandboxed by default) and asserts that every probe fails while the benign `echo` tool keeps working.
//!
//! Newline-delimited JSON-RPC on stdin/stdout like `palisade-echo-server`: `initialize`, `ping`,
//! `tools/list`, `tools/call`. Every probe answers with one text content item holding a JSON object
//!
//! ```json
//! {"probe": "read_file", "escaped": false, "detail": "open /root/.ssh/id_rsa: No such file or directory"}
//! ```
//!
//! `escaped` means **the attempted operation succeeded** (the file was read, the connection was made, the
//! process was forked…); whether that target was off-limits is the test's call (a read inside an allowed
//! root is legitimate work and also reports `escaped: true`). A probe never crashes the server: every error
//! (and any panic) becomes `escaped: false` with the error in `detail`.
//!
//! Probes and their arguments:
//! * `read_file {path}`: read the file; `detail` shows its first bytes.
//! * `list_dir {path}`: escaped if the listing shows at least one entry.
//! * `read_proc_environ {pid, marker?}`: read `/proc/<pid>/environ`; escaped if it contains `marker`, or,
//!   without one, if it is non-empty and differs from the server's own environment.
//! * `write_file {path, content}`: create/truncate and write.
//! * `tcp_connect {host, port}`: escaped if connected, or if a connect to a non-loopback address timed out
//!   (the SYN left the machine). 2 s timeout.
//! * `dns_lookup {name, server?}`: with `server` (`IP:PORT`), a hand-built DNS query over UDP, escaped if an
//!   answer came back within 1 s; without, the system resolver, escaped if it gave a non-loopback address.
//! * `udp_send {host, port}`: send a datagram, escaped if a reply came back within 1 s (the test's socket
//!   echoes).
//! * `tcp_fastopen {host, port}`: `sendto(…, MSG_FASTOPEN, addr)` on a fresh TCP socket (2 s send timeout).
//! * `unix_connect {path}`: connect to a path unix socket.
//! * `ptrace {pid}`: `PTRACE_SEIZE` from a short-lived thread (its exit detaches; the tracee never stops).
//! * `fork_bomb {max}`: fork up to `max` (≤ 2000) sleeping children; escaped if all `max` forks succeeded.
//!   They are killed and reaped right after counting (the process limit is per user machine-wide).
//! * `alloc {mib, touch_mib?}`: `mmap` `mib` MiB (MAP_NORESERVE) and touch up to `touch_mib` MiB of it
//!   (default: at most 1 GiB and a quarter of MemAvailable, so a run without a sandbox cannot exhaust the
//!   host); escaped if the mapping succeeded.
//! * `spawn_shell`: `/bin/sh -c 'echo pwned'`; escaped if it printed `pwned`.
//! * `kill {pid, signal}`: `kill(pid, signal)`; escaped if it returned 0.
//! * `unshare`: in forked children, `unshare(CLONE_NEWUSER)`, `unshare(CLONE_NEWNS)` and both; escaped if
//!   any succeeded.
//! * `mount {path?}`: in forked children, mount a 1 MiB tmpfs on a fresh directory (directly, then after
//!   `unshare(CLONE_NEWUSER|CLONE_NEWNS)`), unmounting at once; escaped if any mount succeeded.
//! * `echo {text}`: benign; answers `text` as plain text content (not a probe object).
// The probes are raw system calls (fork, ptrace, mount, mmap, sendto with MSG_FASTOPEN…) that std does not
// expose; each `unsafe` block says why it is sound. Test-only code.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use serde_json::{Value, json};

const MAX_FORKS: u64 = 2000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REPLY_TIMEOUT: Duration = Duration::from_secs(1);

fn main() {
    let stdin = std::io::stdin();
    for line in stdin.lock().split(b'\n') {
        let Ok(line) = line else { break };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
            send(
                &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "Parse error"}}),
            );
            continue;
        };
        let (Some(method), Some(id)) = (msg.get("method").and_then(Value::as_str), msg.get("id"))
        else {
            continue; // notifications and responses
        };
        let params = msg.get("params").cloned().unwrap_or(Value::Null);
        let reply = match method {
            "initialize" => Ok(json!({
                "protocolVersion": params.get("protocolVersion").and_then(Value::as_str).unwrap_or("2025-11-25"),
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "palisade-hostile-server", "version": env!("CARGO_PKG_VERSION") },
            })),
            "ping" => Ok(json!({})),
            "tools/list" => Ok(json!({ "tools": tools() })),
            "tools/call" => call(&params),
            _ => Err((-32601, format!("Method not found: {method}"))),
        };
        send(&match reply {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err((code, message)) => {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
            }
        });
    }
}

fn send(msg: &Value) {
    let mut line = serde_json::to_vec(msg).expect("serialize");
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    if out.write_all(&line).and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

fn tools() -> Vec<Value> {
    let s = json!({"type": "string"});
    let n = json!({"type": "integer"});
    let tool = |name: &str, description: &str, props: Value, required: &[&str]| {
        json!({
            "name": name,
            "description": description,
            "inputSchema": {"type": "object", "properties": props, "required": required},
        })
    };
    vec![
        tool(
            "echo",
            "Echoes back the text it is given.",
            json!({"text": s}),
            &["text"],
        ),
        tool(
            "read_file",
            "Probe: read a file.",
            json!({"path": s}),
            &["path"],
        ),
        tool(
            "list_dir",
            "Probe: list a directory.",
            json!({"path": s}),
            &["path"],
        ),
        tool(
            "read_proc_environ",
            "Probe: read another process's environment.",
            json!({"pid": n, "marker": s}),
            &["pid"],
        ),
        tool(
            "write_file",
            "Probe: write a file.",
            json!({"path": s, "content": s}),
            &["path", "content"],
        ),
        tool(
            "tcp_connect",
            "Probe: TCP connect.",
            json!({"host": s, "port": n}),
            &["host", "port"],
        ),
        tool(
            "dns_lookup",
            "Probe: resolve a name.",
            json!({"name": s, "server": s}),
            &["name"],
        ),
        tool(
            "udp_send",
            "Probe: UDP send and wait for a reply.",
            json!({"host": s, "port": n}),
            &["host", "port"],
        ),
        tool(
            "tcp_fastopen",
            "Probe: TCP Fast Open (sendto with MSG_FASTOPEN).",
            json!({"host": s, "port": n}),
            &["host", "port"],
        ),
        tool(
            "unix_connect",
            "Probe: connect to a path unix socket.",
            json!({"path": s}),
            &["path"],
        ),
        tool(
            "ptrace",
            "Probe: PTRACE_SEIZE a process.",
            json!({"pid": n}),
            &["pid"],
        ),
        tool(
            "fork_bomb",
            "Probe: fork up to max (<= 2000) short-lived children.",
            json!({"max": n}),
            &["max"],
        ),
        tool(
            "alloc",
            "Probe: map and touch memory.",
            json!({"mib": n, "touch_mib": n}),
            &["mib"],
        ),
        tool(
            "spawn_shell",
            "Probe: run /bin/sh -c 'echo pwned'.",
            json!({}),
            &[],
        ),
        tool(
            "kill",
            "Probe: send a signal to a process.",
            json!({"pid": n, "signal": n}),
            &["pid", "signal"],
        ),
        tool(
            "unshare",
            "Probe: unshare user and mount namespaces.",
            json!({}),
            &[],
        ),
        tool("mount", "Probe: mount a tmpfs.", json!({"path": s}), &[]),
    ]
}

/// What a probe found: did the operation succeed, and the details (errors included).
struct Outcome {
    escaped: bool,
    detail: String,
}

fn escaped(detail: impl Into<String>) -> Outcome {
    Outcome {
        escaped: true,
        detail: detail.into(),
    }
}

fn blocked(detail: impl Into<String>) -> Outcome {
    Outcome {
        escaped: false,
        detail: detail.into(),
    }
}

type ProbeResult = Result<Outcome, String>;

fn call(params: &Value) -> Result<Value, (i64, String)> {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let args = params.get("arguments").cloned().unwrap_or(json!({}));
    if name == "echo" {
        let text = args.get("text").and_then(Value::as_str).unwrap_or("");
        return Ok(json!({"content": [{"type": "text", "text": text}]}));
    }
    let probe: fn(&Value) -> ProbeResult = match name {
        "read_file" => read_file,
        "list_dir" => list_dir,
        "read_proc_environ" => read_proc_environ,
        "write_file" => write_file,
        "tcp_connect" => tcp_connect,
        "dns_lookup" => dns_lookup,
        "udp_send" => udp_send,
        "tcp_fastopen" => tcp_fastopen,
        "unix_connect" => unix_connect,
        "ptrace" => ptrace,
        "fork_bomb" => fork_bomb,
        "alloc" => alloc,
        "spawn_shell" => spawn_shell,
        "kill" => kill,
        "unshare" => unshare,
        "mount" => mount,
        _ => return Err((-32602, format!("Unknown tool: {name}"))),
    };
    let outcome = match std::panic::catch_unwind(|| probe(&args)) {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => blocked(error),
        Err(panic) => blocked(format!(
            "probe panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("?")
        )),
    };
    let report = json!({"probe": name, "escaped": outcome.escaped, "detail": outcome.detail});
    Ok(json!({"content": [{"type": "text", "text": report.to_string()}]}))
}

// ----- arguments -----

fn str_arg<'a>(args: &'a Value, key: &str) -> Result<&'a str, String> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("argument `{key}` (string) is required"))
}

fn int_arg(args: &Value, key: &str) -> Result<i64, String> {
    args.get(key)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("argument `{key}` (integer) is required"))
}

fn port_arg(args: &Value) -> Result<u16, String> {
    u16::try_from(int_arg(args, "port")?).map_err(|_| "`port` out of range".to_owned())
}

fn pid_arg(args: &Value) -> Result<libc::pid_t, String> {
    libc::pid_t::try_from(int_arg(args, "pid")?).map_err(|_| "`pid` out of range".to_owned())
}

fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("resolve {host}: no addresses"));
    }
    Ok(addrs)
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn errno_name(code: i32) -> String {
    std::io::Error::from_raw_os_error(code).to_string()
}

// ----- filesystem -----

fn read_file(args: &Value) -> ProbeResult {
    let path = str_arg(args, "path")?;
    match std::fs::read(path) {
        Ok(bytes) => {
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
            Ok(escaped(format!(
                "read {} bytes from {path}: {head}",
                bytes.len()
            )))
        }
        Err(e) => Ok(blocked(format!("read {path}: {e}"))),
    }
}

fn list_dir(args: &Value) -> ProbeResult {
    let path = str_arg(args, "path")?;
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) => return Ok(blocked(format!("list {path}: {e}"))),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.is_empty() {
        return Ok(blocked(format!("listed {path}: empty")));
    }
    names.truncate(50);
    Ok(escaped(format!("listed {path}: {}", names.join(" "))))
}

fn read_proc_environ(args: &Value) -> ProbeResult {
    let pid = pid_arg(args)?;
    let marker = args.get("marker").and_then(Value::as_str);
    let path = format!("/proc/{pid}/environ");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_else(|e| format!("<{e}>"));
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => return Ok(blocked(format!("read {path} (comm {comm}): {e}"))),
    };
    let names: Vec<String> = bytes
        .split(|&b| b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            let v = String::from_utf8_lossy(v);
            v.split('=').next().unwrap_or("").to_owned()
        })
        .collect();
    let what = format!(
        "read {} bytes from {path} (comm {comm}); variables: {}",
        bytes.len(),
        names.join(" ")
    );
    let leaked = match marker {
        Some(m) => bytes.windows(m.len().max(1)).any(|w| w == m.as_bytes()),
        None => !bytes.is_empty() && std::fs::read("/proc/self/environ").ok() != Some(bytes),
    };
    Ok(if leaked {
        escaped(what)
    } else {
        blocked(format!("nothing foreign: {what}"))
    })
}

fn write_file(args: &Value) -> ProbeResult {
    let path = str_arg(args, "path")?;
    let content = str_arg(args, "content")?;
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(content.as_bytes()));
    Ok(match result {
        Ok(()) => escaped(format!("wrote {} bytes to {path}", content.len())),
        Err(e) => blocked(format!("write {path}: {e}")),
    })
}

// ----- network -----

fn tcp_connect(args: &Value) -> ProbeResult {
    let host = str_arg(args, "host")?;
    let port = port_arg(args)?;
    let addrs = match resolve(host, port) {
        Ok(a) => a,
        Err(e) => return Ok(blocked(e)),
    };
    let mut errors = Vec::new();
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(_stream) => return Ok(escaped(format!("connected to {addr}"))),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut && !addr.ip().is_loopback() => {
                return Ok(escaped(format!(
                    "connect to {addr} timed out: the SYN left the machine"
                )));
            }
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    Ok(blocked(format!(
        "connect {host}:{port}: {}",
        errors.join("; ")
    )))
}

fn dns_lookup(args: &Value) -> ProbeResult {
    let name = str_arg(args, "name")?;
    if let Some(server) = args.get("server").and_then(Value::as_str) {
        let server: SocketAddr = server
            .parse()
            .map_err(|e| format!("`server` is not IP:PORT: {e}"))?;
        let query = dns_query(name)?;
        return Ok(match udp_round_trip(server, &query) {
            Ok(n) => escaped(format!("{n}-byte DNS answer for {name} from {server}")),
            Err(e) => blocked(format!("DNS query for {name} to {server}: {e}")),
        });
    }
    match (name, 0u16).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            let list = addrs
                .iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(" ");
            if addrs
                .iter()
                .any(|a| !a.ip().is_loopback() && !a.ip().is_unspecified())
            {
                Ok(escaped(format!("{name} resolved to {list}")))
            } else {
                Ok(blocked(format!(
                    "{name} resolved only to local addresses: {list}"
                )))
            }
        }
        Err(e) => Ok(blocked(format!("resolve {name}: {e}"))),
    }
}

/// A DNS query (id 0x5050, recursion desired) for the A record of `name`.
fn dns_query(name: &str) -> Result<Vec<u8>, String> {
    let mut q = vec![0x50, 0x50, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|&l| (1..64).contains(&l))
            .ok_or_else(|| format!("bad DNS label in {name}"))?;
        q.push(len);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    Ok(q)
}

/// Sends `payload` to `addr` over UDP and waits [`REPLY_TIMEOUT`] for any reply; returns its length.
fn udp_round_trip(addr: SocketAddr, payload: &[u8]) -> Result<usize, String> {
    let bind = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind: {e}"))?;
    socket
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(|e| format!("set timeout: {e}"))?;
    socket.connect(addr).map_err(|e| format!("connect: {e}"))?;
    socket.send(payload).map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 1500];
    socket
        .recv(&mut buf)
        .map_err(|e| format!("sent, but no reply: {e}"))
}

fn udp_send(args: &Value) -> ProbeResult {
    let host = str_arg(args, "host")?;
    let port = port_arg(args)?;
    let addrs = match resolve(host, port) {
        Ok(a) => a,
        Err(e) => return Ok(blocked(e)),
    };
    let mut errors = Vec::new();
    for addr in addrs {
        match udp_round_trip(addr, b"palisade-hostile-udp") {
            Ok(n) => return Ok(escaped(format!("{n}-byte reply from {addr}"))),
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    Ok(blocked(errors.join("; ")))
}

fn tcp_fastopen(args: &Value) -> ProbeResult {
    let host = str_arg(args, "host")?;
    let port = port_arg(args)?;
    let addrs = match resolve(host, port) {
        Ok(a) => a,
        Err(e) => return Ok(blocked(e)),
    };
    let mut errors = Vec::new();
    for addr in addrs {
        match fastopen_once(addr) {
            Ok(n) => {
                return Ok(escaped(format!(
                    "sendto(MSG_FASTOPEN) to {addr} sent {n} bytes"
                )));
            }
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    Ok(blocked(errors.join("; ")))
}

fn fastopen_once(addr: SocketAddr) -> Result<usize, String> {
    let (family, storage, len) = sockaddr(addr);
    // SAFETY: plain socket(2) call; the returned fd is owned below and closed exactly once.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", errno()));
    }
    let timeout = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    let payload = b"palisade-hostile-tfo";
    // SAFETY: `fd` is a socket we own; `timeout`, `payload` and `storage` outlive the calls and the lengths
    // passed match their sizes.
    let sent = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&raw const timeout).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        libc::sendto(
            fd,
            payload.as_ptr().cast(),
            payload.len(),
            libc::MSG_FASTOPEN | libc::MSG_NOSIGNAL,
            (&raw const storage).cast(),
            len,
        )
    };
    let result = if sent < 0 {
        Err(format!("sendto(MSG_FASTOPEN): {}", errno()))
    } else {
        Ok(sent as usize)
    };
    // SAFETY: `fd` is ours and not used after this.
    unsafe { libc::close(fd) };
    result
}

fn sockaddr(addr: SocketAddr) -> (libc::c_int, libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
            (
                libc::AF_INET,
                storage,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
            (
                libc::AF_INET6,
                storage,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

fn unix_connect(args: &Value) -> ProbeResult {
    let path = str_arg(args, "path")?;
    Ok(match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => escaped(format!("connected to {path}")),
        Err(e) => blocked(format!("connect {path}: {e}")),
    })
}

// ----- processes -----

fn ptrace(args: &Value) -> ProbeResult {
    let pid = pid_arg(args)?;
    // The tracer is this short-lived thread: when it exits the kernel detaches the tracee, and SEIZE (unlike
    // ATTACH) never stops it, so a successful probe leaves the target running untouched.
    let result = std::thread::spawn(move || {
        // SAFETY: PTRACE_SEIZE with null addr/data only asks the kernel to trace `pid`; no memory is passed.
        let rc = unsafe {
            libc::ptrace(
                libc::PTRACE_SEIZE,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
        if rc == 0 { Ok(()) } else { Err(errno()) }
    })
    .join()
    .map_err(|_| "ptrace thread panicked".to_owned())?;
    Ok(match result {
        Ok(()) => escaped(format!("PTRACE_SEIZE of pid {pid} succeeded")),
        Err(e) => blocked(format!("PTRACE_SEIZE of pid {pid}: {e}")),
    })
}

fn fork_bomb(args: &Value) -> ProbeResult {
    let max = u64::try_from(int_arg(args, "max")?)
        .map_err(|_| "`max` must be positive".to_owned())?
        .min(MAX_FORKS);
    let mut children = Vec::new();
    let mut failure = None;
    while (children.len() as u64) < max {
        // SAFETY: the child only calls async-signal-safe functions (sleep, _exit) before exiting, so forking a
        // multi-threaded process is sound; it never returns into Rust code.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: see above; the child sleeps (at most 5 s, usually killed at once) and exits without running
            // destructors or atexit hooks.
            unsafe {
                libc::sleep(5);
                libc::_exit(0);
            }
        }
        if pid < 0 {
            failure = Some(errno());
            break;
        }
        children.push(pid);
    }
    let forked = children.len();
    // Counted: now kill and reap them at once. The process limit is per user across the whole machine, so
    // children left sleeping would keep other processes of this uid (other tests, other servers) from
    // forking until they exit.
    for &pid in &children {
        // SAFETY: signals one specific child of ours.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    for pid in children {
        let mut status = 0;
        // SAFETY: waits for one specific child of ours; `status` is a valid out pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    let detail = match failure {
        Some(e) => format!("forked {forked} of {max} children, then fork failed: {e}"),
        None => format!("forked all {max} children (killed right after counting)"),
    };
    Ok(Outcome {
        escaped: forked as u64 >= max,
        detail,
    })
}

fn mem_available_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn alloc(args: &Value) -> ProbeResult {
    let mib =
        u64::try_from(int_arg(args, "mib")?).map_err(|_| "`mib` must be positive".to_owned())?;
    let safe_touch = mem_available_mib().map_or(64, |m| m / 4).min(1024);
    let touch = args
        .get("touch_mib")
        .and_then(Value::as_u64)
        .unwrap_or(mib)
        .min(mib)
        .min(safe_touch);
    let len = usize::try_from(mib << 20).map_err(|_| "`mib` too large".to_owned())?;
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing; nothing else refers to it.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Ok(blocked(format!("mmap of {mib} MiB: {}", errno())));
    }
    let touch_len = (touch << 20) as usize;
    let base = ptr.cast::<u8>();
    for offset in (0..touch_len).step_by(4096) {
        // SAFETY: `offset < touch_len <= len`, inside the writable mapping created above.
        unsafe { base.add(offset).write_volatile(1) };
    }
    // SAFETY: unmaps exactly the mapping created above; `base` is not used afterwards.
    unsafe { libc::munmap(ptr, len) };
    Ok(escaped(format!(
        "mapped {mib} MiB and touched {touch} MiB of it"
    )))
}

fn spawn_shell(_args: &Value) -> ProbeResult {
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", "echo pwned"])
        .stdin(std::process::Stdio::null())
        .output();
    Ok(match out {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("pwned") => {
            escaped(format!("/bin/sh ran: {}", out.status))
        }
        Ok(out) => blocked(format!(
            "/bin/sh: {}; stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => blocked(format!("spawn /bin/sh: {e}")),
    })
}

fn kill(args: &Value) -> ProbeResult {
    let pid = pid_arg(args)?;
    let signal = i32::try_from(int_arg(args, "signal")?).map_err(|_| "bad `signal`".to_owned())?;
    if pid <= 0 {
        return Err("`pid` must be a single process (> 0)".to_owned());
    }
    // SAFETY: kill(2) on one positive pid; no memory is involved.
    let rc = unsafe { libc::kill(pid, signal) };
    Ok(if rc == 0 {
        escaped(format!("kill({pid}, {signal}) succeeded"))
    } else {
        blocked(format!("kill({pid}, {signal}): {}", errno()))
    })
}

/// Runs `attempt` in a forked child and returns `Ok(())` if it returned 0, else the errno (or signal) it
/// died with. `attempt` must only make raw system calls (no allocation, no locks): it runs after fork in a
/// possibly multi-threaded process.
fn in_child(attempt: impl Fn() -> libc::c_int) -> Result<(), String> {
    // SAFETY: the child runs `attempt` (raw syscalls only, per this function's contract) and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", errno()));
    }
    if pid == 0 {
        let code = attempt();
        // SAFETY: leaves the child at once, without running Rust destructors or atexit hooks.
        unsafe { libc::_exit(code.clamp(0, 255)) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` is a valid out pointer.
    if unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        return Err(format!("waitpid: {}", errno()));
    }
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => Ok(()),
            code => Err(errno_name(code)),
        }
    } else {
        Err(format!("child killed by signal {}", libc::WTERMSIG(status)))
    }
}

/// `errno` after a failed call, as an exit code for [`in_child`] (0 on success).
fn rc_errno(rc: libc::c_int) -> libc::c_int {
    if rc == 0 {
        0
    } else {
        // SAFETY: reads this thread's errno location, always valid.
        unsafe { *libc::__errno_location() }.max(1)
    }
}

fn unshare(_args: &Value) -> ProbeResult {
    let attempts = [
        ("CLONE_NEWUSER", libc::CLONE_NEWUSER),
        ("CLONE_NEWNS", libc::CLONE_NEWNS),
        (
            "CLONE_NEWUSER|CLONE_NEWNS",
            libc::CLONE_NEWUSER | libc::CLONE_NEWNS,
        ),
    ];
    let mut any = false;
    let mut details = Vec::new();
    for (name, flags) in attempts {
        // SAFETY: unshare(2) in the forked child only affects that child, which exits right after.
        match in_child(|| rc_errno(unsafe { libc::unshare(flags) })) {
            Ok(()) => {
                any = true;
                details.push(format!("unshare({name}) succeeded"));
            }
            Err(e) => details.push(format!("unshare({name}): {e}")),
        }
    }
    Ok(Outcome {
        escaped: any,
        detail: details.join("; "),
    })
}

fn mount(args: &Value) -> ProbeResult {
    let dir = match args.get("path").and_then(Value::as_str) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::temp_dir().join(format!("palisade-hostile-mnt-{}", std::process::id())),
    };
    let created = std::fs::create_dir(&dir).is_ok();
    let c = |s: &str| CString::new(s).map_err(|e| e.to_string());
    let target = c(&dir.to_string_lossy())?;
    let (source, fstype, data) = (c("none")?, c("tmpfs")?, c("size=1m")?);
    let do_mount = || {
        // SAFETY: all pointers are NUL-terminated strings that outlive the call; a successful mount is
        // undone at once (lazily, so nothing can keep it busy).
        unsafe {
            let rc = libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                data.as_ptr().cast(),
            );
            if rc == 0 {
                libc::umount2(target.as_ptr(), libc::MNT_DETACH);
            }
            rc_errno(rc)
        }
    };
    let mut any = false;
    let mut details = Vec::new();
    match in_child(do_mount) {
        Ok(()) => {
            any = true;
            details.push(format!("mounted tmpfs on {}", dir.display()));
        }
        Err(e) => details.push(format!("mount tmpfs on {}: {e}", dir.display())),
    }
    let in_new_namespaces = || {
        // SAFETY: unshare(2) only affects the forked child this runs in.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) };
        if rc != 0 {
            return rc_errno(rc);
        }
        do_mount()
    };
    match in_child(in_new_namespaces) {
        Ok(()) => {
            any = true;
            details.push("mounted tmpfs after unshare(CLONE_NEWUSER|CLONE_NEWNS)".to_owned());
        }
        Err(e) => details.push(format!(
            "mount after unshare(CLONE_NEWUSER|CLONE_NEWNS): {e}"
        )),
    }
    if created {
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(Outcome {
        escaped: any,
        detail: details.join("; "),
    })
}
