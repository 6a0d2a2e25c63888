//! Test helpers for `palisade serve`: a gateway child process on an ephemeral loopback port, a minimal
//! HTTP/1.1 client (one request per connection, chunked bodies, SSE), and an MCP client over it.

#![allow(dead_code)]

use palisade_testkit::xdg::TestHome;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util;

/// A running `palisade serve`; killed on drop.
pub(crate) struct Gateway {
    child: Child,
    pub(crate) addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Gateway {
    /// `palisade serve --listen 127.0.0.1:0 FLAGS… [-- SERVER…]`, waiting until it listens.
    pub(crate) fn start<S: AsRef<str>>(home: &TestHome, flags: &[&str], server: &[S]) -> Gateway {
        let mut c = util::cmd(home, &["serve", "--listen", "127.0.0.1:0"]);
        c.args(flags);
        if !server.is_empty() {
            c.arg("--");
            c.args(server.iter().map(AsRef::as_ref));
        }
        Gateway::spawn(c)
    }

    pub(crate) fn spawn(mut c: Command) -> Gateway {
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn palisade serve");
        let err = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines() {
                    let Ok(line) = line else { break };
                    if let Some(a) = line.strip_prefix("palisade: listening on ") {
                        let _ = tx.send(a.trim().to_owned());
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().expect("listen address"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "palisade serve did not start listening:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Gateway {
            child,
            addr,
            stderr: log,
        }
    }

    /// What palisade wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// An MCP client for `path` (e.g. `/mcp`).
    pub(crate) fn client(&self, path: &str, token: Option<&str>) -> Client {
        Client {
            addr: self.addr,
            path: path.to_owned(),
            token: token.map(str::to_owned),
            session: None,
            version: None,
            host: format!("127.0.0.1:{}", self.addr.port()),
        }
    }

    /// Stops palisade with SIGTERM and waits for it (bounded).
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as i32;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("palisade serve did not stop on SIGTERM:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback HTTPS peer written in Python (an OAuth issuer, a remote MCP server that records what reaches
/// it), with a certificate for `names` made at test time; killed on drop. `handler` is Python that defines
/// `Handler`, an `http.server` request handler class, and may read `sys.argv[1]` (`arg`); the stand-in
/// serves it with TLS on an ephemeral port.
pub(crate) struct HttpsStandIn {
    child: Child,
    pub(crate) port: u16,
    /// The stand-in's certificate: the CA a client must trust to reach it.
    pub(crate) ca: PathBuf,
}

impl HttpsStandIn {
    /// Starts it, its certificate and key written to `dir`; waits until it listens. `stderr`: where its
    /// request log and Python's errors go ([`HttpsStandIn::stderr`] when piped).
    pub(crate) fn start(
        dir: &Path,
        names: &[&str],
        handler: &str,
        arg: &Path,
        stderr: Stdio,
    ) -> HttpsStandIn {
        let ck = rcgen::generate_simple_self_signed(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .unwrap();
        let (ca, key) = (dir.join("stand-in-cert.pem"), dir.join("stand-in-key.pem"));
        std::fs::write(&ca, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        let script = format!(
            "import http.server, ssl, sys\n{handler}\n\
             srv = http.server.ThreadingHTTPServer((\"127.0.0.1\", 0), Handler)\n\
             ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
             ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n\
             srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n\
             print(srv.server_address[1], flush=True)\n\
             srv.serve_forever()\n"
        );
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(arg)
            .arg(&ca)
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("python3 for the HTTPS stand-in");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Ok(port) = line.trim().parse() else {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("the HTTPS stand-in did not start: {line:?}\n{err}");
        };
        HttpsStandIn { child, port, ca }
    }

    /// The stand-in's piped stderr (its request log, Python's errors); once.
    pub(crate) fn stderr(&mut self) -> ChildStderr {
        self.child.stderr.take().expect("stderr, once")
    }
}

impl Drop for HttpsStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The JSON-RPC messages of the body: one JSON object, or every `data:` line of an SSE stream.
    pub(crate) fn messages(&self) -> Vec<Value> {
        let ct = self.header("content-type").unwrap_or("");
        if ct.starts_with("text/event-stream") {
            self.text()
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| serde_json::from_str(d.trim()).expect("SSE data is JSON"))
                .collect()
        } else if self.body.is_empty() {
            Vec::new()
        } else {
            vec![
                serde_json::from_slice(&self.body)
                    .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text())),
            ]
        }
    }

    /// The last JSON-RPC message (the response of a request).
    pub(crate) fn json(&self) -> Value {
        self.messages()
            .pop()
            .unwrap_or_else(|| panic!("no message in HTTP {} {}", self.status, self.text()))
    }
}

/// Sends one request on a fresh connection (`Connection: close`) and reads the whole response.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect to palisade serve");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{}\r\n", addr.port()));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    if let Some(b) = body {
        s.write_all(b).unwrap();
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    parse(&raw)
}

/// Sends a request and returns only the status line and headers (for streams that stay open).
pub(crate) fn request_head(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (Reply, TcpStream) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
        addr.port()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut b = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut b).expect("read head");
        assert!(n > 0, "connection closed before the head ended");
        raw.push(b[0]);
    }
    (parse(&raw), s)
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[(size + 2).min(b.len())..];
    }
}

/// A 2025-11-25 `initialize` request (id 0), for tests that send it themselves.
pub(crate) fn initialize_request() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "palisade-test", "version": "1"}}
    })
}

/// An MCP client over HTTP (2025-11-25 sessions, or 2026-07-28 stateless requests).
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) addr: SocketAddr,
    pub(crate) path: String,
    pub(crate) token: Option<String>,
    pub(crate) session: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) host: String,
}

impl Client {
    /// POSTs `body` with the client's headers plus `extra`.
    pub(crate) fn post_with(&self, body: &Value, extra: &[(&str, &str)]) -> Reply {
        let bytes = serde_json::to_vec(body).unwrap();
        self.post_raw(&bytes, extra)
    }

    /// `DELETE`s the client's session (the client ends it).
    pub(crate) fn delete(&self) -> Reply {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let sid = self.session.as_deref().expect("a session to delete");
        let mut h = vec![("Host", self.host.as_str()), ("Mcp-Session-Id", sid)];
        if let Some(a) = &auth {
            h.push(("Authorization", a));
        }
        request(self.addr, "DELETE", &self.path, &h, None)
    }

    pub(crate) fn post_raw(&self, bytes: &[u8], extra: &[(&str, &str)]) -> Reply {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut h: Vec<(&str, &str)> = vec![
            ("Host", &self.host),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ];
        if let Some(a) = &auth {
            h.push(("Authorization", a));
        }
        if let Some(s) = &self.session {
            h.push(("Mcp-Session-Id", s));
        }
        if let Some(v) = &self.version {
            h.push(("MCP-Protocol-Version", v));
        }
        h.extend_from_slice(extra);
        request(self.addr, "POST", &self.path, &h, Some(bytes))
    }

    pub(crate) fn post(&self, body: &Value) -> Reply {
        self.post_with(body, &[])
    }

    /// `initialize` + `notifications/initialized`; keeps the session id. Panics unless both succeed.
    pub(crate) fn initialize(&mut self) -> Value {
        let r = self.post(&initialize_request());
        assert_eq!(r.status, 200, "initialize: {}", r.text());
        let sid = r
            .header("mcp-session-id")
            .unwrap_or_else(|| panic!("no Mcp-Session-Id in {:?}", r.headers))
            .to_owned();
        self.session = Some(sid);
        let v = r.json();
        self.version = v["result"]["protocolVersion"].as_str().map(str::to_owned);
        let n = self.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        assert_eq!(n.status, 202, "initialized: {}", n.text());
        v
    }

    /// A request in the session; returns the final JSON-RPC message.
    pub(crate) fn call(&self, id: u64, method: &str, params: Value) -> Value {
        let r = self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        assert_eq!(r.status, 200, "{method}: HTTP {} {}", r.status, r.text());
        r.json()
    }
}
