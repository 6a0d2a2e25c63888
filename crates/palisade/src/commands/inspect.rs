//! `palisade inspect -- CMD…`: start the server (through the same launcher as `run`), list its tools with
//! their pins, hints and schema summaries, and exit.
//!
//! # `--format json` (wire format)
//! ```json
//! {"server": {"name": "…", "version": "…", "protocolVersion": "…", "command": ["…"]},
//!  "tools": [{"name": "…", "pin": "sha256:…", "status": "approved|new|changed|denied",
//!             "annotations": {…}, "params": ["path*", "…"],
//!             "findings": [{"id": "…", "severity": "info|low|medium|high|critical", "message": "…",
//!                           "field": "/description", "evidence": "…"}]}]}
//! ```
//! `params` lists the input schema's properties, required ones marked with `*`. `findings` holds the pin
//! and schema checks (`tool-changed`, `schema-missing`) followed by the description analysis of
//! `palisade-analyze` (hidden unicode, ANSI escapes, injected instructions, exfiltration parameters…; rule
//! ids in docs/analysis.md), most severe first; those carry `field` (a JSON Pointer into the tool: where
//! the text is) and `evidence` (the matched text, hidden characters escaped). Tools that are new or changed
//! are recorded as awaiting approval, so `palisade pin accept` can approve exactly what was shown.

use anyhow::{Context, Result, bail};
use palisade_mcp::{Kind, LineReader, Message, ReadEvent};
use serde_json::{Map, Value, json};
use std::io::{BufReader, Write};
use std::sync::mpsc;
use std::time::Duration;

use crate::ExitStatus;
use crate::cli::Format;
use crate::pins::PinStore;
use crate::settings::ServerSettings;

const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn inspect(s: ServerSettings, format: Format) -> Result<ExitStatus> {
    // Listing tools needs no network: the server gets none, whatever the policy allows.
    let (mut launched, isolation) = crate::launch::start_offline(&s)?;
    if let Some(applied) = &launched.applied {
        eprintln!(
            "{}",
            crate::launch::describe_sandbox(&s.name, applied, &s.policy.net)
        );
    }
    eprintln!("palisade: inspecting `{}` as a {isolation}", s.name);
    let stdin = launched.child.stdin.take().context("server stdin")?;
    let stdout = launched.child.stdout.take().context("server stdout")?;
    let stderr = launched.child.stderr.take().context("server stderr")?;
    let name = s.name.clone();
    std::thread::spawn(move || crate::proxy::forward_stderr(&name, stderr));
    let (tx, rx) = mpsc::channel::<Message>();
    let max = s.policy.limits.max_message_bytes;
    std::thread::spawn(move || {
        let mut r = LineReader::new(BufReader::new(stdout), max);
        loop {
            match r.next_line() {
                Ok(ReadEvent::Line(l)) => {
                    if let Ok(m) = Message::parse(l)
                        && tx.send(m).is_err()
                    {
                        return;
                    }
                }
                Ok(ReadEvent::TooLong { .. }) => {}
                Ok(ReadEvent::Eof) | Err(_) => return,
            }
        }
    });
    let mut client = Client {
        stdin,
        rx,
        next_id: 0,
    };
    let init = client.request(
        "initialize",
        json!({"protocolVersion": palisade_mcp::era::SESSION_VERSION, "capabilities": {},
               "clientInfo": {"name": "palisade-inspect", "version": env!("CARGO_PKG_VERSION")}}),
    )?;
    client.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let r = client.request("tools/list", params)?;
        if let Some(t) = r.get("tools").and_then(Value::as_array) {
            tools.extend(t.iter().filter_map(Value::as_object).cloned());
        }
        cursor = r
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        pages += 1;
        if cursor.is_none() || pages > 1000 {
            break;
        }
    }
    if let Some(pgid) = rustix::process::Pid::from_raw(launched.child.id() as i32) {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
    let _ = launched.child.wait();
    if let Some(c) = launched.cgroup.take() {
        let _ = c.remove();
    }

    let store = PinStore::new(s.pins.clone());
    let approved = store.load(&s.name)?.approved;
    let mut rows = Vec::new();
    let mut awaiting = Vec::new();
    let analysis = palisade_analyze::analyze_tools(&Value::Array(
        tools.iter().cloned().map(Value::Object).collect(),
    ));
    for (i, t) in tools.iter().enumerate() {
        let tname = t
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let pin = palisade_guard::pin::tool_hash(t);
        let status = if !s.policy.tools.permits(&tname) {
            "denied"
        } else {
            match approved.get(&tname) {
                Some(p) if *p == pin => "approved",
                Some(_) => "changed",
                None => "new",
            }
        };
        if status == "new" || status == "changed" {
            awaiting.push((tname.clone(), pin.clone()));
        }
        let mut findings = Vec::new();
        if status == "changed" {
            findings.push(json!({"id": "tool-changed", "severity": "high",
                "message": "the definition differs from the approved pin; review before `palisade pin accept`"}));
        }
        if t.get("inputSchema").is_none() {
            findings.push(json!({"id": "schema-missing", "severity": "medium",
                "message": "no inputSchema: palisade refuses calls it cannot validate"}));
        }
        if let Some(a) = analysis.get(i) {
            findings.extend(a.findings.iter().map(|f| f.json()));
        }
        rows.push(json!({
            "name": tname,
            "pin": pin,
            "status": status,
            "annotations": t.get("annotations").cloned().unwrap_or(json!({})),
            "params": params_summary(t),
            "findings": findings,
        }));
    }
    if !awaiting.is_empty() {
        store.update(&s.name, |p| {
            for (t, h) in &awaiting {
                p.observed.insert(t.clone(), h.clone());
            }
        })?;
    }
    let server_info = init.get("serverInfo").cloned().unwrap_or(json!({}));
    match format {
        Format::Json => {
            let doc = json!({
                "server": {
                    "name": s.name,
                    "info": server_info,
                    "protocolVersion": init.get("protocolVersion"),
                    "command": s.argv,
                },
                "tools": rows,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Text => print_table(&s.name, &server_info, &rows),
    }
    Ok(ExitStatus::Success)
}

/// A minimal synchronous MCP client over the server's pipes.
struct Client {
    stdin: std::process::ChildStdin,
    rx: mpsc::Receiver<Message>,
    next_id: u64,
}

impl Client {
    fn send(&mut self, v: &Value) -> Result<()> {
        let mut line = serde_json::to_vec(v)?;
        line.push(b'\n');
        self.stdin
            .write_all(&line)
            .context("the server closed its input")?;
        Ok(())
    }

    fn request(&mut self, method: &str, params: Value) -> Result<Map<String, Value>> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        loop {
            let m = self.rx.recv_timeout(REPLY_TIMEOUT).map_err(|_| {
                anyhow::anyhow!(
                    "the server did not answer `{method}` within {}s (or exited)",
                    REPLY_TIMEOUT.as_secs()
                )
            })?;
            match m.kind() {
                Kind::Response {
                    id: Some(rid),
                    is_error,
                } if rid.as_json() == id.to_string() => {
                    if *is_error {
                        bail!(
                            "the server refused `{method}`: {}",
                            Value::Object(m.value().clone())
                        );
                    }
                    return Ok(m.result().cloned().unwrap_or_default());
                }
                // A server→client request (roots, sampling…): inspect offers none of these capabilities.
                Kind::Request { id: rid, .. } => {
                    let err = palisade_mcp::error_response(
                        Some(rid),
                        palisade_mcp::error_codes::METHOD_NOT_FOUND,
                        "palisade inspect does not offer this capability",
                    );
                    let v: Value = serde_json::from_slice(&err)?;
                    self.send(&v)?;
                }
                _ => {}
            }
        }
    }
}

fn params_summary(t: &Map<String, Value>) -> Vec<String> {
    let schema = t.get("inputSchema");
    let required: Vec<&str> = schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| {
            p.keys()
                .map(|k| {
                    if required.contains(&k.as_str()) {
                        format!("{k}*")
                    } else {
                        k.clone()
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn print_table(server: &str, info: &Value, rows: &[Value]) {
    let version = info.get("version").and_then(Value::as_str).unwrap_or("?");
    println!(
        "server {server} ({} {version}): {} tools",
        info.get("name").and_then(Value::as_str).unwrap_or("?"),
        rows.len()
    );
    println!();
    let w = rows
        .iter()
        .filter_map(|r| r["name"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<w$} {:<9} {:<12} {:<14} params",
        "TOOL", "STATUS", "HINTS", "PIN"
    );
    for r in rows {
        let ann = &r["annotations"];
        let mut hints = Vec::new();
        if ann.get("readOnlyHint").and_then(Value::as_bool) == Some(true) {
            hints.push("ro");
        }
        if ann.get("destructiveHint").and_then(Value::as_bool) == Some(true) {
            hints.push("destructive");
        }
        if ann.get("openWorldHint").and_then(Value::as_bool) == Some(true) {
            hints.push("open");
        }
        let pin = r["pin"].as_str().unwrap_or("");
        let pin = &pin.strip_prefix("sha256:").unwrap_or(pin)[..12.min(pin.len())];
        let params: Vec<&str> = r["params"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        println!(
            "{:<w$} {:<9} {:<12} {:<14} {}",
            // A server chooses its tool names: never let one drive the terminal.
            palisade_analyze::describe::display_safe(r["name"].as_str().unwrap_or("?")),
            r["status"].as_str().unwrap_or("?"),
            if hints.is_empty() {
                "-".to_owned()
            } else {
                hints.join(",")
            },
            pin,
            params.join(", ")
        );
        if let Some(f) = r["findings"].as_array() {
            for f in f {
                println!(
                    "    {}[{}]: {}",
                    f["severity"].as_str().unwrap_or(""),
                    f["id"].as_str().unwrap_or(""),
                    palisade_analyze::describe::display_safe(f["message"].as_str().unwrap_or(""))
                );
                if let Some(e) = f["evidence"].as_str() {
                    println!("        {}", palisade_analyze::describe::display_safe(e));
                }
            }
        }
    }
    let pending = rows
        .iter()
        .filter(|r| matches!(r["status"].as_str(), Some("new" | "changed")))
        .count();
    if pending > 0 {
        println!();
        println!(
            "hint: {pending} tool(s) await approval; after review run `palisade pin accept --server {server} --all`"
        );
    }
}
