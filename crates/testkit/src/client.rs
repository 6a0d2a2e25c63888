//! A small synchronous JSON-RPC-over-stdio client for tests.
//!
//! [`McpProcess`] owns a child process with piped stdin/stdout/stderr:
//!
//! * a reader thread splits stdout into lines and sends them over a channel; the test thread parses and sorts
//!   them into **responses** (matched by id), **notifications**, and **server→client requests** (sampling,
//!   elicitation, roots…), each queued until the test asks for it;
//! * a second thread copies stderr into a buffer, returned by [`McpProcess::stderr`];
//! * every wait has a timeout ([`DEFAULT_TIMEOUT`], 20 s, or `PALISADE_TEST_TIMEOUT_SECS`), and a failed wait
//!   **panics** with what it was waiting for, the messages that did arrive, and the child's stderr;
//! * dropping the `McpProcess` kills the child and reaps it.
//!
//! Lines that are not JSON objects are kept in [`McpProcess::invalid_lines`] (a framing test may want them);
//! every raw line received is kept in [`McpProcess::received_lines`].

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a wait lasts unless the test says otherwise. Override for a whole run with
/// `PALISADE_TEST_TIMEOUT_SECS`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The protocol version [`McpProcess::initialize`] asks for.
pub const LEGACY_PROTOCOL_VERSION: &str = "2025-11-25";

/// The stateless ("modern") protocol version [`McpProcess::discover`] and [`modern_meta`] use.
pub const MODERN_PROTOCOL_VERSION: &str = "2026-07-28";

/// How much of stderr a panic message shows (the tail).
const STDERR_TAIL: usize = 16 * 1024;

fn default_timeout() -> Duration {
    std::env::var("PALISADE_TEST_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// The client capabilities the test client declares: sampling, elicitation and roots (with `listChanged`).
pub fn client_capabilities() -> Value {
    json!({ "sampling": {}, "elicitation": {}, "roots": { "listChanged": true } })
}

/// The per-request `_meta` of the 2026-07-28 era: protocol version, client capabilities and client info.
pub fn modern_meta(protocol_version: &str) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": protocol_version,
        "io.modelcontextprotocol/clientCapabilities": client_capabilities(),
        "io.modelcontextprotocol/clientInfo": { "name": "palisade-testkit", "version": env!("CARGO_PKG_VERSION") },
    })
}

enum Event {
    Line(Vec<u8>),
    Eof,
    Error(String),
}

/// A child process spoken to with newline-delimited JSON-RPC over its stdin/stdout. See the module docs.
pub struct McpProcess {
    child: Child,
    label: String,
    stdin: Option<ChildStdin>,
    events: Receiver<Event>,
    stdout_eof: bool,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Set once the stderr copy reached end of file.
    stderr_done: Arc<std::sync::atomic::AtomicBool>,
    timeout: Duration,
    next_id: i64,
    responses: VecDeque<Value>,
    notifications: Vec<Value>,
    server_requests: VecDeque<Value>,
    invalid: Vec<Vec<u8>>,
    received: Vec<Vec<u8>>,
}

impl std::fmt::Debug for McpProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpProcess")
            .field("pid", &self.child.id())
            .field("command", &self.label)
            .finish()
    }
}

impl McpProcess {
    /// Spawns `cmd` with stdin, stdout and stderr piped (whatever the caller set for them is replaced).
    /// Panics if it cannot be started.
    pub fn spawn(mut cmd: Command) -> Self {
        let label = describe(&cmd);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn `{label}`: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");

        let (tx, events) = std::sync::mpsc::channel();
        thread::Builder::new()
            .name("mcp-stdout".into())
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                loop {
                    let mut line = Vec::new();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) => {
                            let _ = tx.send(Event::Eof);
                            return;
                        }
                        Ok(_) => {
                            if line.last() == Some(&b'\n') {
                                line.pop();
                                if line.last() == Some(&b'\r') {
                                    line.pop();
                                }
                            }
                            if tx.send(Event::Line(line)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Event::Error(e.to_string()));
                            return;
                        }
                    }
                }
            })
            .expect("spawn stdout reader");

        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        let stderr_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = Arc::clone(&stderr_done);
        thread::Builder::new()
            .name("mcp-stderr".into())
            .spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match stderr_pipe.read(&mut buf) {
                        Ok(0) | Err(_) => {
                            done.store(true, std::sync::atomic::Ordering::Release);
                            return;
                        }
                        Ok(n) => sink
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .extend_from_slice(&buf[..n]),
                    }
                }
            })
            .expect("spawn stderr reader");

        McpProcess {
            child,
            label,
            stdin,
            events,
            stdout_eof: false,
            stderr,
            stderr_done,
            timeout: default_timeout(),
            next_id: 1,
            responses: VecDeque::new(),
            notifications: Vec::new(),
            server_requests: VecDeque::new(),
            invalid: Vec::new(),
            received: Vec::new(),
        }
    }

    /// Sets the timeout of every later wait that does not take one explicitly.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The default timeout now in force.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    // ----- sending -----

    /// Writes `bytes` to the child's stdin as they are (no newline added) and flushes.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin already closed")
        })?;
        stdin.write_all(bytes)?;
        stdin.flush()
    }

    /// Like [`McpProcess::try_send_raw`], but panics (with stderr) if the write fails.
    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(e) = self.try_send_raw(bytes) {
            self.fail(&format!(
                "writing {} bytes to stdin failed: {e}",
                bytes.len()
            ));
        }
    }

    /// Writes one message as a single line.
    #[track_caller]
    pub fn send(&mut self, message: &Value) {
        let mut line = serde_json::to_vec(message).expect("serialize message");
        line.push(b'\n');
        self.send_raw(&line);
    }

    /// Sends a request with the next id (1, 2, …) and returns that id without waiting.
    #[track_caller]
    pub fn send_request(&mut self, method: &str, params: Value) -> Value {
        let id = json!(self.next_id);
        self.next_id += 1;
        let mut msg = json!({ "jsonrpc": "2.0", "id": id, "method": method });
        if !params.is_null() {
            msg["params"] = params;
        }
        self.send(&msg);
        id
    }

    /// Sends a request and waits (default timeout) for the response with its id; returns the whole response
    /// object (`result` or `error`). Messages arriving meanwhile are queued.
    #[track_caller]
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let timeout = self.timeout;
        self.request_timeout(method, params, timeout)
    }

    /// [`McpProcess::request`] with an explicit timeout.
    #[track_caller]
    pub fn request_timeout(&mut self, method: &str, params: Value, timeout: Duration) -> Value {
        let id = self.send_request(method, params);
        match self.try_wait_response(&id, timeout) {
            Some(response) => response,
            None => self.fail(&format!(
                "no response to `{method}` (id {id}) within {timeout:?}"
            )),
        }
    }

    /// Sends a notification (`params` omitted when null).
    #[track_caller]
    pub fn notify(&mut self, method: &str, params: Value) {
        let mut msg = json!({ "jsonrpc": "2.0", "method": method });
        if !params.is_null() {
            msg["params"] = params;
        }
        self.send(&msg);
    }

    /// Answers a server→client request with `result`.
    #[track_caller]
    pub fn respond(&mut self, id: &Value, result: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "result": result }));
    }

    /// Answers a server→client request with an error.
    #[track_caller]
    pub fn respond_error(&mut self, id: &Value, code: i64, message: &str) {
        self.send(
            &json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } }),
        );
    }

    // ----- handshakes -----

    /// The 2025-11-25 handshake: `initialize` (declaring sampling, elicitation and roots) and then
    /// `notifications/initialized`. Returns the whole `initialize` response; panics if it is an error.
    #[track_caller]
    pub fn initialize(&mut self) -> Value {
        self.initialize_with(LEGACY_PROTOCOL_VERSION, client_capabilities())
    }

    /// [`McpProcess::initialize`] with a chosen protocol version and capabilities.
    #[track_caller]
    pub fn initialize_with(&mut self, protocol_version: &str, capabilities: Value) -> Value {
        let response = self.request(
            "initialize",
            json!({
                "protocolVersion": protocol_version,
                "capabilities": capabilities,
                "clientInfo": { "name": "palisade-testkit", "version": env!("CARGO_PKG_VERSION") },
            }),
        );
        if response.get("result").is_none() {
            self.fail(&format!("initialize failed: {response}"));
        }
        self.notify("notifications/initialized", Value::Null);
        response
    }

    /// The 2026-07-28 probe: `server/discover` with per-request `_meta`. Returns the whole response (the caller
    /// decides whether an error is expected, e.g. from a legacy-only server).
    #[track_caller]
    pub fn discover(&mut self) -> Value {
        self.request(
            "server/discover",
            json!({ "_meta": modern_meta(MODERN_PROTOCOL_VERSION) }),
        )
    }

    // ----- receiving -----

    /// Waits for the response with `id`; `None` on timeout (use it to assert that no answer comes, e.g. after a
    /// cancellation). Panics if stdout closes first.
    #[track_caller]
    pub fn try_wait_response(&mut self, id: &Value, timeout: Duration) -> Option<Value> {
        self.wait_for(timeout, &format!("the response with id {id}"), |me| {
            let pos = me.responses.iter().position(|r| r.get("id") == Some(id))?;
            me.responses.remove(pos)
        })
    }

    /// Waits (default timeout) for the response with `id`; panics with stderr on timeout.
    #[track_caller]
    pub fn wait_response(&mut self, id: &Value) -> Value {
        let timeout = self.timeout;
        match self.try_wait_response(id, timeout) {
            Some(r) => r,
            None => self.fail(&format!("no response with id {id} within {timeout:?}")),
        }
    }

    /// Waits for the next server→client request (sampling, elicitation, roots/list, ping…); panics on timeout.
    #[track_caller]
    pub fn next_server_request(&mut self, timeout: Duration) -> Value {
        match self.try_next_server_request(timeout) {
            Some(r) => r,
            None => self.fail(&format!("no server→client request within {timeout:?}")),
        }
    }

    /// Like [`McpProcess::next_server_request`] but returns `None` on timeout.
    #[track_caller]
    pub fn try_next_server_request(&mut self, timeout: Duration) -> Option<Value> {
        self.wait_for(timeout, "a server→client request", |me| {
            me.server_requests.pop_front()
        })
    }

    /// Waits for a notification with `method`, removes it from the queue and returns it; panics on timeout.
    #[track_caller]
    pub fn wait_notification(&mut self, method: &str, timeout: Duration) -> Value {
        let found = self.wait_for(timeout, &format!("notification `{method}`"), |me| {
            let pos = me
                .notifications
                .iter()
                .position(|n| n["method"] == method)?;
            Some(me.notifications.remove(pos))
        });
        match found {
            Some(n) => n,
            None => self.fail(&format!("no `{method}` notification within {timeout:?}")),
        }
    }

    /// Notifications received so far and not taken by [`McpProcess::wait_notification`] (reads whatever has
    /// already arrived first, without blocking).
    pub fn notifications(&mut self) -> &[Value] {
        self.drain_ready();
        &self.notifications
    }

    /// Takes the queued notifications.
    pub fn take_notifications(&mut self) -> Vec<Value> {
        self.drain_ready();
        std::mem::take(&mut self.notifications)
    }

    /// Responses received and not claimed by a wait: e.g. one with an id the client never sent.
    pub fn unclaimed_responses(&mut self) -> Vec<Value> {
        self.drain_ready();
        self.responses.iter().cloned().collect()
    }

    /// Server→client requests received and not yet taken.
    pub fn pending_server_requests(&mut self) -> Vec<Value> {
        self.drain_ready();
        self.server_requests.iter().cloned().collect()
    }

    /// Lines of stdout that were not JSON-RPC objects, as received (without the newline).
    pub fn invalid_lines(&mut self) -> &[Vec<u8>] {
        self.drain_ready();
        &self.invalid
    }

    /// Every line read from stdout so far, in order, as received (without the newline).
    pub fn received_lines(&mut self) -> &[Vec<u8>] {
        self.drain_ready();
        &self.received
    }

    /// Reads and queues whatever arrives during `duration` (to let stray messages show up before asserting on
    /// the queues). Returns early if stdout closes.
    pub fn pump(&mut self, duration: Duration) {
        let deadline = Instant::now() + duration;
        while !self.stdout_eof {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.events.recv_timeout(left) {
                Ok(event) => self.handle(event),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => self.stdout_eof = true,
            }
        }
    }

    /// Whether the child's stdout has reached end of file (as far as has been read).
    pub fn stdout_closed(&mut self) -> bool {
        self.drain_ready();
        self.stdout_eof
    }

    // ----- process -----

    /// Everything the child wrote to stderr so far (lossy UTF-8).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Closes the child's stdin (EOF), which should make a well-behaved server exit.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits up to `timeout` for the child to exit; `None` if it is still running. Once it has exited,
    /// also waits (up to 2 s more) until its stderr is copied to the end, so [`McpProcess::stderr`] holds
    /// its last words.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    let drained = Instant::now() + Duration::from_secs(2);
                    while !self.stderr_done.load(std::sync::atomic::Ordering::Acquire)
                        && Instant::now() < drained
                    {
                        thread::sleep(Duration::from_millis(5));
                    }
                    return Some(status);
                }
                Ok(None) if Instant::now() >= deadline => return None,
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("waiting for `{}`: {e}", self.label),
            }
        }
    }

    /// Kills the child (SIGKILL) and reaps it. Also done on drop.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    // ----- internals -----

    /// Pumps events until `take` yields something, stdout closes (panic) or `timeout` passes (`None`).
    #[track_caller]
    fn wait_for<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut take: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain_ready();
            if let Some(found) = take(self) {
                return Some(found);
            }
            if self.stdout_eof {
                let status = self.wait_exit(Duration::from_millis(500));
                self.fail(&format!(
                    "stdout closed while waiting for {what} (exit status: {status:?})"
                ));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.events.recv_timeout(left) {
                Ok(event) => self.handle(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.stdout_eof = true,
            }
        }
    }

    fn drain_ready(&mut self) {
        loop {
            match self.events.try_recv() {
                Ok(event) => self.handle(event),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.stdout_eof = true;
                    return;
                }
            }
        }
    }

    fn handle(&mut self, event: Event) {
        let line = match event {
            Event::Line(line) => line,
            Event::Eof => {
                self.stdout_eof = true;
                return;
            }
            Event::Error(e) => {
                self.stdout_eof = true;
                self.invalid
                    .push(format!("<stdout read error: {e}>").into_bytes());
                return;
            }
        };
        self.received.push(line.clone());
        match serde_json::from_slice::<Value>(&line) {
            Ok(Value::Object(obj)) => {
                let has_method = obj.contains_key("method");
                let has_id = obj.contains_key("id");
                let msg = Value::Object(obj);
                match (has_method, has_id) {
                    (true, true) => self.server_requests.push_back(msg),
                    (true, false) => self.notifications.push(msg),
                    (false, _) if msg.get("result").is_some() || msg.get("error").is_some() => {
                        self.responses.push_back(msg)
                    }
                    _ => self.invalid.push(line),
                }
            }
            _ => self.invalid.push(line),
        }
    }

    /// Panics with `what`, the queued messages and the tail of stderr.
    #[track_caller]
    fn fail(&mut self, what: &str) -> ! {
        self.drain_ready();
        // Give the stderr thread a moment to copy a dying child's last words.
        thread::sleep(Duration::from_millis(100));
        let stderr = self.stderr();
        let tail = if stderr.len() > STDERR_TAIL {
            let mut start = stderr.len() - STDERR_TAIL;
            while !stderr.is_char_boundary(start) {
                start += 1;
            }
            format!("…{}", &stderr[start..])
        } else {
            stderr
        };
        let list = |items: &mut dyn Iterator<Item = String>| {
            let items: Vec<String> = items
                .map(|s| format!("    {}", truncate(&s, 500)))
                .collect();
            if items.is_empty() {
                "    (none)".to_owned()
            } else {
                items.join("\n")
            }
        };
        panic!(
            "{what}\n  command: {}\n  unclaimed responses:\n{}\n  server requests:\n{}\n  notifications:\n{}\n  \
             invalid lines:\n{}\n  stderr:\n{}",
            self.label,
            list(&mut self.responses.iter().map(Value::to_string)),
            list(&mut self.server_requests.iter().map(Value::to_string)),
            list(&mut self.notifications.iter().map(Value::to_string)),
            list(
                &mut self
                    .invalid
                    .iter()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
            ),
            tail,
        );
    }
}

impl Drop for McpProcess {
    fn drop(&mut self) {
        self.stdin = None;
        self.kill();
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
