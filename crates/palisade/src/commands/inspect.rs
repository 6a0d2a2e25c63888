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
//! plus `"prompts"`, `"resources"` and `"resourceTemplates"` (empty when the server does not declare the
//! capability): each item's `name` / `title` / `uri` / `uriTemplate` / `mimeType` / `description`
//! as the server gave them, a prompt's `arguments` (required ones marked `*`), and `findings` from the
//! same description analysis; and `"notes"`, lists the server declares but could not give.
//! `params` lists the input schema's properties, required ones marked with `*`. `findings` holds the pin
//! and schema checks (`tool-changed`, `schema-missing`) followed by the description analysis of
//! `palisade-analyze` (hidden unicode, ANSI escapes, injected instructions, exfiltration parameters…; rule
//! ids in docs/analysis.md), most severe first; those carry `field` (a JSON Pointer into the tool: where
//! the text is) and `evidence` (the matched text, hidden characters escaped). Tools that are new or changed
//! are recorded as awaiting approval, so `palisade pin accept` can approve exactly what was shown.

use anyhow::{Context, Result, bail};
use palisade_mcp::{Kind, LineReader, Message, ReadEvent};
use serde_json::{Map, Value, json};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use palisade_analyze::describe::ItemKind;

use crate::ExitStatus;
use crate::cli::Format;
use crate::pins::PinStore;
use crate::settings::ServerSettings;

const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a server offers, listed over stdio with no network: its `initialize` result, its tools, and its
/// prompts, resources and resource templates when it declares those capabilities.
#[derive(Debug, Clone, Default)]
pub(crate) struct Listing {
    /// The `initialize` result.
    pub(crate) init: Map<String, Value>,
    pub(crate) tools: Vec<Map<String, Value>>,
    /// `None`: the server does not declare the capability.
    pub(crate) prompts: Option<Vec<Map<String, Value>>>,
    pub(crate) resources: Option<Vec<Map<String, Value>>>,
    pub(crate) templates: Option<Vec<Map<String, Value>>>,
    /// Lists the server declares but could not give (`prompts/list: the server refused …`).
    pub(crate) notes: Vec<String>,
}

/// How [`list_server`] behaves around the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListOptions {
    /// Print the sandbox block and a one-line banner on stderr.
    pub(crate) banner: bool,
    /// Copy the server's stderr to ours (prefixed, secrets masked); otherwise only its last lines are
    /// kept, for the error.
    pub(crate) forward_stderr: bool,
    /// How long to wait for each answer.
    pub(crate) timeout: Duration,
}

impl Default for ListOptions {
    fn default() -> ListOptions {
        ListOptions {
            banner: true,
            forward_stderr: true,
            timeout: REPLY_TIMEOUT,
        }
    }
}

/// How many of the server's last stderr lines an error quotes.
const STDERR_TAIL: usize = 6;

/// Starts the server of `s` the way `inspect` does (sandboxed, network none whatever the policy
/// allows), lists what it offers, and stops it. A server that does not start, exits or does not answer
/// is an error that says which step failed, with the last lines of its stderr.
pub(crate) fn list_server(s: &ServerSettings, opts: ListOptions) -> Result<Listing> {
    let (mut launched, isolation) = crate::launch::start_offline(s)?;
    if opts.banner {
        if let Some(applied) = &launched.applied {
            eprintln!(
                "{}",
                crate::launch::describe_sandbox(&s.name, applied, &s.policy.net)
            );
        }
        eprintln!("palisade: inspecting `{}` as a {isolation}", s.name);
    }
    let stdin = launched.child.stdin.take().context("server stdin")?;
    let stdout = launched.child.stdout.take().context("server stdout")?;
    let stderr = launched.child.stderr.take().context("server stderr")?;
    let tail = Arc::new(Mutex::new(VecDeque::<String>::new()));
    let err_thread = {
        let (name, tail, forward) = (s.name.clone(), tail.clone(), opts.forward_stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).split(b'\n') {
                let Ok(line) = line else { return };
                let masked =
                    palisade_audit::redact_str(&String::from_utf8_lossy(&line)).into_owned();
                if forward {
                    eprintln!("[{name}] {masked}");
                }
                let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                if t.len() == STDERR_TAIL {
                    t.pop_front();
                }
                t.push_back(palisade_analyze::describe::display_safe(&masked));
            }
        })
    };
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
        timeout: opts.timeout,
    };
    let listed = list_all(&mut client);
    drop(client);
    // A server that failed on its own gets a moment to exit, so its status can be reported.
    let mut status = None;
    if listed.is_err() {
        for _ in 0..20 {
            if let Ok(Some(st)) = launched.child.try_wait() {
                status = Some(st);
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    if status.is_none() {
        if let Some(pgid) = rustix::process::Pid::from_raw(launched.child.id() as i32) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = launched.child.wait();
    }
    if let Some(c) = launched.cgroup.take() {
        let _ = c.remove();
    }
    let e = match listed {
        Ok(l) => return Ok(l),
        Err(e) => e,
    };
    // The stderr copy ends with the server; what it printed explains most failures.
    let _ = err_thread.join();
    let lines: Vec<String> = tail
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    let mut why = vec![format!("{e:#}")];
    if let Some(st) = status {
        why.push(format!("it exited ({st})"));
    }
    why.push(if lines.is_empty() {
        "it printed nothing on stderr".to_owned()
    } else {
        format!("its last stderr lines: {}", lines.join(" | "))
    });
    Err(anyhow::anyhow!("{}", why.join("; ")))
}

/// The MCP conversation of a listing: initialize, then every page of each list the server declares.
fn list_all(client: &mut Client) -> Result<Listing> {
    let init = client.request(
        "initialize",
        json!({"protocolVersion": palisade_mcp::era::SESSION_VERSION, "capabilities": {},
               "clientInfo": {"name": "palisade-inspect", "version": env!("CARGO_PKG_VERSION")}}),
    )?;
    client.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
    let caps = init.get("capabilities").cloned().unwrap_or(json!({}));
    let mut listing = Listing {
        tools: client.list_pages("tools/list", "tools")?,
        ..Listing::default()
    };
    if caps.get("prompts").is_some() {
        match client.list_pages("prompts/list", "prompts") {
            Ok(p) => listing.prompts = Some(p),
            Err(e) => listing.notes.push(format!("prompts/list: {e:#}")),
        }
    }
    if caps.get("resources").is_some() {
        match client.list_pages("resources/list", "resources") {
            Ok(r) => listing.resources = Some(r),
            Err(e) => listing.notes.push(format!("resources/list: {e:#}")),
        }
        // Templates are optional even for a server with resources.
        if let Ok(t) = client.list_pages("resources/templates/list", "resourceTemplates") {
            listing.templates = Some(t);
        }
    }
    listing.init = init;
    Ok(listing)
}

pub(crate) fn inspect(s: ServerSettings, format: Format) -> Result<ExitStatus> {
    // Listing tools needs no network: the server gets none, whatever the policy allows.
    let listing = list_server(&s, ListOptions::default())?;
    let tools = &listing.tools;
    let init = &listing.init;

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
    let tool_names: Vec<&str> = tools
        .iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .collect();
    let prompts = item_rows(ItemKind::Prompt, listing.prompts.as_deref(), &tool_names);
    let resources = item_rows(
        ItemKind::Resource,
        listing.resources.as_deref(),
        &tool_names,
    );
    let templates = item_rows(
        ItemKind::ResourceTemplate,
        listing.templates.as_deref(),
        &tool_names,
    );
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
                "prompts": prompts,
                "resources": resources,
                "resourceTemplates": templates,
                "notes": listing.notes,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Text => {
            print_table(&s.name, &server_info, &rows);
            for (title, items, declared) in [
                ("prompts", &prompts, listing.prompts.is_some()),
                ("resources", &resources, listing.resources.is_some()),
                (
                    "resource templates",
                    &templates,
                    listing.templates.is_some(),
                ),
            ] {
                if declared {
                    print_items(title, items);
                }
            }
            for n in &listing.notes {
                println!("note: {}", palisade_analyze::describe::display_safe(n));
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// A minimal synchronous MCP client over the server's pipes.
struct Client {
    stdin: std::process::ChildStdin,
    rx: mpsc::Receiver<Message>,
    next_id: u64,
    timeout: Duration,
}

impl Client {
    /// Every page of a list method (up to 1000 pages): the objects under `key`.
    fn list_pages(&mut self, method: &str, key: &str) -> Result<Vec<Map<String, Value>>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let r = self.request(method, params)?;
            if let Some(t) = r.get(key).and_then(Value::as_array) {
                items.extend(t.iter().filter_map(Value::as_object).cloned());
            }
            cursor = r
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(items)
    }

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
            let m = self.rx.recv_timeout(self.timeout).map_err(|e| match e {
                mpsc::RecvTimeoutError::Timeout => anyhow::anyhow!(
                    "the server did not answer `{method}` within {}s",
                    self.timeout.as_secs()
                ),
                mpsc::RecvTimeoutError::Disconnected => {
                    anyhow::anyhow!("the server closed its output before answering `{method}`")
                }
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

/// Prompts, resources or resource templates as `inspect` rows: identity, a short description and the
/// description findings (the same analysis as tools; a prompt naming one of the server's own tools is
/// no cross-tool reference).
fn item_rows(kind: ItemKind, items: Option<&[Map<String, Value>]>, tools: &[&str]) -> Vec<Value> {
    let items = items.unwrap_or_default();
    let list = Value::Array(items.iter().cloned().map(Value::Object).collect());
    let analysis = palisade_analyze::analyze_items(kind, &list, tools);
    items
        .iter()
        .zip(analysis)
        .map(|(item, a)| {
            let mut row = Map::new();
            for key in [
                "name",
                "title",
                "uri",
                "uriTemplate",
                "mimeType",
                "description",
            ] {
                if let Some(v) = item.get(key) {
                    row.insert(key.into(), v.clone());
                }
            }
            if kind == ItemKind::Prompt {
                let args: Vec<Value> = item
                    .get("arguments")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| {
                                let n = x.get("name")?.as_str()?;
                                let req = x.get("required").and_then(Value::as_bool) == Some(true);
                                Some(Value::String(if req { format!("{n}*") } else { n.into() }))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                row.insert("arguments".into(), Value::Array(args));
            }
            row.insert(
                "findings".into(),
                Value::Array(a.findings.iter().map(|f| f.json()).collect()),
            );
            Value::Object(row)
        })
        .collect()
}

fn print_items(title: &str, rows: &[Value]) {
    println!();
    println!("{title}: {}", rows.len());
    for r in rows {
        let id = r["name"]
            .as_str()
            .or(r["uri"].as_str())
            .or(r["uriTemplate"].as_str())
            .unwrap_or("?");
        let uri = r["uri"].as_str().or(r["uriTemplate"].as_str());
        let args: Vec<&str> = r["arguments"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut line = format!("  {}", palisade_analyze::describe::display_safe(id));
        if let Some(u) = uri.filter(|u| *u != id) {
            line.push_str(&format!(
                "  {}",
                palisade_analyze::describe::display_safe(u)
            ));
        }
        if !args.is_empty() {
            line.push_str(&format!("  ({})", args.join(", ")));
        }
        println!("{line}");
        print_findings(r);
    }
}

fn print_findings(r: &Value) {
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
        print_findings(r);
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
