//! `palisade serve`: the Streamable HTTP gateway, end to end (the real binary on an ephemeral loopback
//! port, real servers behind it, a minimal HTTP client in front).

#[path = "serve_conformance.rs"]
pub(crate) mod conformance;
#[path = "serve_http.rs"]
pub(crate) mod http;
#[path = "serve_oauth.rs"]
mod oauth;

use palisade_testkit::xdg::TestHome;
use serde_json::{Value, json};

use crate::util;
use http::{Gateway, request, request_head};

const ECHO: &str = "palisade-echo-server";

fn echo() -> Vec<String> {
    vec![util::echo_server()]
}

/// `palisade token create …`: the token (the last line of stdout).
fn token(home: &TestHome, client: &str, scopes: &[&str], ttl: &str) -> String {
    let mut args = vec!["token", "create", "--client", client, "--ttl", ttl];
    for s in scopes {
        args.extend(["--scope", s]);
    }
    let out = util::output(home, &args);
    let (code, stdout, stderr) = util::code_out_err(&out);
    assert_eq!(code, Some(0), "token create: {stderr}");
    let last = stdout.lines().last().expect("a token line").to_owned();
    assert!(last.starts_with("palisade_"), "{stdout}");
    last
}

#[test]
fn serve_session_lifecycle_json_sse_get_delete_and_404_after() {
    let home = TestHome::new();
    let gw = Gateway::start(&home, &["--no-auth"], &echo());
    let mut c = gw.client("/mcp", None);
    let init = c.initialize();
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    let sid = c.session.clone().unwrap();
    assert!(
        sid.len() >= 22,
        "a session id carries at least 128 bits: {sid}"
    );
    let tools = c.call(1, "tools/list", json!({}));
    assert_eq!(util::tool_names(&tools), ["echo"]);
    let r = c.call(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}}),
    );
    assert_eq!(util::call_text(&r), "hi", "{r}");

    // The standalone stream opens once per session.
    let hdrs = [
        ("Accept", "text/event-stream"),
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let (head, _stream) = request_head(gw.addr, "GET", "/mcp", &hdrs);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let (second, _s2) = request_head(gw.addr, "GET", "/mcp", &hdrs);
    assert_eq!(second.status, 409, "a second GET stream is refused");

    // Another session id (a guess) is not found.
    let mut other = c.clone();
    other.session = Some("x".repeat(43));
    assert_eq!(
        other
            .post(&json!({"jsonrpc":"2.0","id":3,"method":"ping"}))
            .status,
        404
    );

    let del = c.delete();
    assert_eq!(del.status, 200, "{}", del.text());
    let after = c.post(&json!({"jsonrpc":"2.0","id":4,"method":"ping"}));
    assert_eq!(after.status, 404, "{}", after.text());

    // Every exchange was recorded with the client's identity.
    let events = util::wait_for(
        std::time::Duration::from_secs(10),
        "the tools/call in the audit log",
        || {
            let ev = util::audit_events(&home, ECHO);
            ev.iter()
                .any(|e| e["method"] == "tools/call" && e["status"] == "ok")
                .then_some(ev)
        },
        || util::dump(&util::audit_log(&home, ECHO)),
    );
    assert!(
        events
            .iter()
            .filter(|e| e["method"] == "tools/call")
            .all(|e| e["client"] == "anonymous"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e["reason"] == "no-auth"),
        "--no-auth is recorded: {events:?}"
    );
}

#[test]
fn serve_refuses_foreign_hosts_and_origins_before_anything_else() {
    let home = TestHome::new();
    let gw = Gateway::start(&home, &["--no-auth"], &echo());
    let init = http::initialize_request();
    let mut c = gw.client("/mcp", None);
    c.host = "evil.example:80".into();
    let r = c.post(&init);
    assert_eq!(r.status, 403, "foreign Host: {}", r.text());
    let c = gw.client("/mcp", None);
    let r = c.post_with(&init, &[("Origin", "http://evil.example")]);
    assert_eq!(r.status, 403, "foreign Origin: {}", r.text());
    let own = format!("http://localhost:{}", gw.addr.port());
    let r = c.post_with(&init, &[("Origin", &own)]);
    assert_eq!(r.status, 200, "own origin: {}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(own.as_str()));
    assert!(r.header("mcp-session-id").is_some());
}

#[test]
fn serve_checks_protocol_version_body_size_and_framing() {
    let home = TestHome::new();
    let gw = Gateway::start(&home, &["--no-auth", "--max-body", "2000"], &echo());
    let mut c = gw.client("/mcp", None);
    c.initialize();
    let ping = json!({"jsonrpc":"2.0","id":1,"method":"ping"});
    let mut bad = c.clone();
    bad.version = Some("1999-01-01".into());
    let r = bad.post(&ping);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        c.post(&ping).status,
        200,
        "the negotiated version is accepted"
    );
    let big = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x".repeat(5000)}}});
    let r = c.post(&big);
    assert_eq!(r.status, 413, "{}", r.text());
    let dup =
        br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","name":"rm"}}"#;
    let r = c.post_raw(dup, &[]);
    assert_eq!(r.status, 400, "duplicate keys: {}", r.text());
    assert_eq!(r.json()["error"]["code"], -32600);
    let r = c.post_raw(br#"[{"jsonrpc":"2.0","id":4,"method":"ping"}]"#, &[]);
    assert_eq!(r.status, 400, "batch: {}", r.text());
    assert!(r.text().contains("batches"), "{}", r.text());
    let r = request(
        gw.addr,
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ],
        Some(br#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#),
    );
    assert_eq!(r.status, 406, "{}", r.text());
}

#[test]
fn serve_requires_a_token_and_enforces_its_scopes() {
    let home = TestHome::new();
    let gw = Gateway::start(&home, &[], &echo());
    let init = http::initialize_request();

    // No token: 401 pointing at the protected-resource metadata.
    let r = gw.client("/mcp", None).post(&init);
    assert_eq!(r.status, 401, "{}", r.text());
    let challenge = r.header("www-authenticate").expect("WWW-Authenticate");
    let meta_url = format!(
        "http://127.0.0.1:{}/.well-known/oauth-protected-resource/mcp",
        gw.addr.port()
    );
    assert_eq!(
        challenge,
        format!("Bearer resource_metadata=\"{meta_url}\"")
    );
    let meta = request(
        gw.addr,
        "GET",
        "/.well-known/oauth-protected-resource/mcp",
        &[],
        None,
    );
    assert_eq!(meta.status, 200);
    assert_eq!(
        meta.json()["resource"],
        format!("http://127.0.0.1:{}/mcp", gw.addr.port())
    );

    // A garbage token: 401 invalid_token.
    let r = gw
        .client("/mcp", Some("palisade_0123456789abcdef_nope"))
        .post(&init);
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );

    // A token for other servers only: 403 naming the scope this server needs.
    let other = token(&home, "mallory", &["mcp:some-other-server"], "1h");
    let r = gw.client("/mcp", Some(&other)).post(&init);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains(&format!("scope=\"mcp:{ECHO}\"")),
        "{:?}",
        r.headers
    );

    // A tool-scoped token: tools/list shows only its tools, other calls are 403 insufficient_scope.
    let alice = token(&home, "alice", &[&format!("mcp:{ECHO}:nothing-*")], "1h");
    let mut a = gw.client("/mcp", Some(&alice));
    a.initialize();
    let tools = a.call(1, "tools/list", json!({}));
    assert!(util::tool_names(&tools).is_empty(), "{tools}");
    let r = a.post(&json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}));
    assert_eq!(r.status, 403, "{}", r.text());
    let w = r.header("www-authenticate").unwrap();
    assert!(
        w.contains("error=\"insufficient_scope\"") && w.contains(&format!("mcp:{ECHO}:echo")),
        "{w}"
    );

    // A full token works; its session is invisible to other clients.
    let bob = token(&home, "bob", &[&format!("mcp:{ECHO}")], "1h");
    let mut b = gw.client("/mcp", Some(&bob));
    b.initialize();
    let r = b.call(
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "yes"}}),
    );
    assert_eq!(util::call_text(&r), "yes");
    let mut hijack = b.clone();
    hijack.token = Some(alice.clone());
    let r = hijack.post(&json!({"jsonrpc":"2.0","id":4,"method":"ping"}));
    assert_eq!(
        r.status,
        404,
        "a session is bound to the client that opened it: {}",
        r.text()
    );

    // The audit trail names the client.
    let events = util::audit_events(&home, ECHO);
    assert!(
        events
            .iter()
            .any(|e| e["client"] == "bob" && e["tool"] == "echo"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "insufficient-scope" && e["client"] == "alice"),
        "{events:?}"
    );

    // Revocation applies to the next request.
    let list = util::output(&home, &["token", "list", "--format", "json"]);
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    let bob_id = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["client"] == "bob")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains(&bob[20..]),
        "list never shows tokens"
    );
    let out = util::output(&home, &["token", "revoke", &bob_id]);
    assert_eq!(out.status.code(), Some(0));
    let r = b.post(&json!({"jsonrpc":"2.0","id":5,"method":"ping"}));
    assert_eq!(r.status, 401, "revoked: {}", r.text());

    // An expired token is refused.
    let short = token(&home, "carol", &["mcp:*"], "1s");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = gw.client("/mcp", Some(&short)).post(&init);
    assert_eq!(r.status, 401, "expired: {}", r.text());
}

#[test]
fn serve_refuses_unsafe_listen_configurations() {
    let home = TestHome::new();
    let out = util::output(
        &home,
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--public-url",
            "http://gw.example",
            "--",
            "true",
        ],
    );
    let (code, _, err) = util::code_out_err(&out);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("without TLS"), "{err}");
    let out = util::output(
        &home,
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--insecure",
            "--no-auth",
            "--public-url",
            "http://gw.example",
            "--",
            "true",
        ],
    );
    let (code, _, err) = util::code_out_err(&out);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--no-auth is only allowed on a loopback"),
        "{err}"
    );
    let out = util::output(&home, &["serve"]);
    let (code, _, err) = util::code_out_err(&out);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn serve_policy_serves_each_server_at_its_path_with_its_own_rules() {
    let home = TestHome::new();
    let dir = palisade_testkit::TempDir::new("serve-policy");
    let echo = util::echo_server();
    let policy = dir.join("team.toml");
    std::fs::write(
        &policy,
        format!(
            "version = 1\n\
             [servers.alpha]\ncommand = [{echo:?}]\n\
             [servers.beta]\ncommand = [{echo:?}]\n\
             [servers.beta.tools]\ndeny = [\"echo\"]\n"
        ),
    )
    .unwrap();
    let gw = Gateway::start(
        &home,
        &["--policy", policy.to_str().unwrap()],
        &[] as &[&str],
    );
    let err = gw.stderr();
    assert!(
        err.contains("/mcp/alpha") && err.contains("/mcp/beta"),
        "{err}"
    );
    let t = token(&home, "dana", &["mcp:alpha"], "1h");

    let mut a = gw.client("/mcp/alpha", Some(&t));
    a.initialize();
    let r = a.call(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "a"}}),
    );
    assert_eq!(util::call_text(&r), "a");

    // The token reaches alpha only.
    let r = gw
        .client("/mcp/beta", Some(&t))
        .post(&http::initialize_request());
    assert_eq!(r.status, 403, "{}", r.text());

    // beta's own policy hides and refuses its echo tool.
    let all = token(&home, "erin", &["mcp:*"], "1h");
    let mut b = gw.client("/mcp/beta", Some(&all));
    b.initialize();
    assert!(util::tool_names(&b.call(2, "tools/list", json!({}))).is_empty());
    let r = b.call(
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "b"}}),
    );
    assert_eq!(r["result"]["isError"], true, "{r}");

    // A session of alpha is not a session of beta.
    let mut cross = b.clone();
    cross.session = a.session.clone();
    assert_eq!(
        cross
            .post(&json!({"jsonrpc":"2.0","id":4,"method":"ping"}))
            .status,
        404
    );
    assert_eq!(request(gw.addr, "GET", "/mcp", &[], None).status, 404);
}

/// A 2026-07-28 request: per-request `_meta` and the mirrored headers.
fn stateless(
    c: &http::Client,
    id: Value,
    method: &str,
    params: Value,
    name: Option<&str>,
) -> http::Reply {
    let mut p = params;
    p["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": p});
    let mut h = vec![
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", method),
    ];
    if let Some(n) = name {
        h.push(("Mcp-Name", n));
    }
    c.post_with(&body, &h)
}

#[test]
fn serve_stateless_requests_check_headers_and_keep_clients_apart() {
    let home = TestHome::new();
    let gw = Gateway::start(&home, &["--no-auth"], &echo());
    let c = gw.client("/mcp", None);
    let d = stateless(&c, json!(1), "server/discover", json!({}), None);
    assert_eq!(d.status, 200, "{}", d.text());
    assert!(
        d.header("mcp-session-id").is_none(),
        "no sessions in 2026-07-28"
    );
    assert!(
        d.json()["result"]["supportedVersions"].is_array(),
        "{}",
        d.text()
    );

    // Headers must equal the body; the refusal is 400 with HeaderMismatch and the request's id.
    let r = stateless(
        &c,
        json!(7),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}}),
        Some("other_tool"),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], -32020);
    assert_eq!(r.json()["id"], 7);
    let r = stateless(
        &c,
        json!(8),
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}}),
        None,
    );
    assert_eq!(r.status, 400, "a missing Mcp-Name is refused: {}", r.text());
    // Removed methods do not exist without a session.
    let r = stateless(&c, json!(9), "ping", json!({}), None);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], -32601);

    // Concurrent clients using the same JSON-RPC id each get their own answer.
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || {
                let text = format!("client-{i}");
                let r = stateless(
                    &c,
                    json!(1),
                    "tools/call",
                    json!({"name": "echo", "arguments": {"text": text}}),
                    Some("echo"),
                );
                assert_eq!(r.status, 200, "{}", r.text());
                let v = r.json();
                assert_eq!(v["id"], 1, "the client's own id comes back: {v}");
                assert_eq!(util::call_text(&v), text);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // A GET stream does not exist in this era.
    let (head, _s) = request_head(
        gw.addr,
        "GET",
        "/mcp",
        &[
            ("Accept", "text/event-stream"),
            ("MCP-Protocol-Version", "2026-07-28"),
        ],
    );
    assert_eq!(head.status, 405);
}

#[test]
fn serve_limits_sessions_and_client_request_rate() {
    let home = TestHome::new();
    let gw = Gateway::start(
        &home,
        &["--no-auth", "--max-sessions", "1", "--rate-limit", "off"],
        &echo(),
    );
    let mut a = gw.client("/mcp", None);
    a.initialize();
    let init = http::initialize_request();
    let r = gw.client("/mcp", None).post(&init);
    assert_eq!(
        r.status,
        503,
        "a second session is over --max-sessions: {}",
        r.text()
    );
    assert!(r.header("retry-after").is_some());
    assert_eq!(a.delete().status, 200);
    // The slot frees once the session's server has stopped.
    let mut b = gw.client("/mcp", None);
    let r = util::wait_for(
        std::time::Duration::from_secs(15),
        "a free session slot",
        || {
            let r = b.post(&init);
            (r.status != 503).then_some(r)
        },
        || gw.stderr(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    b.session = r.header("mcp-session-id").map(str::to_owned);

    // A client over its request rate gets 429 with Retry-After.
    let limited = Gateway::start(&home, &["--no-auth", "--rate-limit", "3/min"], &echo());
    let c = limited.client("/mcp", None);
    let statuses: Vec<u16> = (0..5)
        .map(|i| {
            c.post(&json!({"jsonrpc":"2.0","id":i,"method":"ping"}))
                .status
        })
        .collect();
    assert_eq!(&statuses[3..], [429, 429], "{statuses:?}");
    let r = c.post(&json!({"jsonrpc":"2.0","id":9,"method":"ping"}));
    assert!(
        r.header("retry-after")
            .is_some_and(|s| s.parse::<u64>().unwrap() >= 1)
    );
}

/// Regression: the per-client session count was read before the server started and written after, so
/// `initialize` requests racing each other all passed the check.
#[test]
fn serve_per_client_session_limit_holds_under_concurrent_initialize() {
    let home = TestHome::new();
    let gw = Gateway::start(
        &home,
        &[
            "--no-auth",
            "--max-sessions-per-client",
            "2",
            "--rate-limit",
            "off",
        ],
        &echo(),
    );
    let init = http::initialize_request();
    let go = std::sync::Arc::new(std::sync::Barrier::new(8));
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let go = go.clone();
                let c = gw.client("/mcp", None);
                let init = &init;
                s.spawn(move || {
                    go.wait();
                    c.post(init).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((ok, limited), (2, 6), "{statuses:?}\n{}", gw.stderr());
}

/// Regression: the sandbox helper dies with the *thread* that forked it (`PR_SET_PDEATHSIG`). Servers
/// launched from a pool thread died when the pool retired that thread after 10 s idle.
#[test]
fn serve_session_outlives_the_thread_that_launched_its_server() {
    let home = TestHome::new();
    let gw = Gateway::start(&home, &["--no-auth"], &echo());
    let mut c = gw.client("/mcp", None);
    c.initialize();
    std::thread::sleep(std::time::Duration::from_secs(13));
    let r = c.call(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "alive"}}),
    );
    assert_eq!(util::call_text(&r), "alive", "{r}\n{}", gw.stderr());
}

/// As in `run`: a served server that meets the sandbox's process limit (a pids cgroup, as root) is named on
/// stderr and in its own audit log when its session ends, before the server's exit is recorded.
#[test]
fn serve_reports_a_server_that_met_its_process_limit() {
    let home = TestHome::new();
    let hostile = util::hostile_server();
    let name = hostile.file_name().unwrap().to_str().unwrap().to_owned();
    let gw = Gateway::start(&home, &["--no-auth"], &[hostile.to_str().unwrap()]);
    let mut c = gw.client("/mcp", None);
    c.initialize();
    // Past the default limit of 256 processes: some forks are refused.
    let r = c.call(
        1,
        "tools/call",
        json!({"name": "fork_bomb", "arguments": {"max": 400}}),
    );
    let report: Value = serde_json::from_str(util::call_text(&r)).expect("a probe report");
    assert_eq!(report["escaped"], false, "{report}");
    let del = c.delete();
    assert_eq!(del.status, 200, "{}", del.text());
    let events = util::wait_for(
        std::time::Duration::from_secs(15),
        "the server's exit in the audit log",
        || {
            let ev = util::audit_events(&home, &name);
            ev.iter().any(|e| e["kind"] == "exit").then_some(ev)
        },
        || util::dump(&util::audit_log(&home, &name)),
    );
    let limit = events
        .iter()
        .position(|e| e["kind"] == "error" && e["reason"] == "process-limit");
    let exit = events.iter().position(|e| e["kind"] == "exit");
    assert!(limit.is_some() && limit < exit, "{events:#?}");
    let err = gw.stderr();
    assert!(err.contains("reached the sandbox's process limit"), "{err}");
}

// ---- process = "shared": one server process for every 2025-11-25 session --------------------------------

/// A policy file serving `command` as `shared` (`process = "shared"`) and the echo server as `isolated`
/// (the default, a process per session).
fn sharing_policy(dir: &palisade_testkit::TempDir, command: &[String]) -> std::path::PathBuf {
    let policy = dir.join("sharing.toml");
    let echo = util::echo_server();
    std::fs::write(
        &policy,
        format!(
            "version = 1\n\
             [servers.shared]\ncommand = {command:?}\nprocess = \"shared\"\n\
             [servers.isolated]\ncommand = [{echo:?}]\n"
        ),
    )
    .unwrap();
    policy
}

fn spawns(home: &TestHome, server: &str) -> usize {
    util::audit_events(home, server)
        .iter()
        .filter(|e| e["kind"] == "spawn")
        .count()
}

fn echo_call(c: &http::Client, id: u64, text: &str) -> http::Reply {
    c.post(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                   "params": {"name": "echo", "arguments": {"text": text}}}))
}

#[test]
fn serve_shared_process_serves_every_session_with_ids_kept_apart() {
    let home = TestHome::new();
    let dir = palisade_testkit::TempDir::new("serve-shared");
    let slow = util::echo_server_with(&[("ECHO_SERVER_SLOW_MS", "600")]);
    let policy = sharing_policy(&dir, &slow);
    let gw = Gateway::start(
        &home,
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--max-sessions",
            "2",
            "--rate-limit",
            "off",
        ],
        &[] as &[&str],
    );
    assert!(
        gw.stderr().contains("one process shared by every session"),
        "{}",
        gw.stderr()
    );
    let alice_t = token(&home, "alice", &["mcp:*"], "1h");
    let bob_t = token(&home, "bob", &["mcp:*"], "1h");
    let mut alice = gw.client("/mcp/shared", Some(&alice_t));
    let mut bob = gw.client("/mcp/shared", Some(&bob_t));
    let a_init = alice.initialize();
    let b_init = bob.initialize();
    assert_ne!(alice.session, bob.session);
    // The second session is answered by palisade from the process's own initialize result.
    assert_eq!(a_init["result"], b_init["result"], "{a_init} {b_init}");
    assert_eq!(b_init["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(b_init["id"], 0);
    assert_eq!(spawns(&home, "shared"), 1, "one process for both sessions");

    // --max-sessions counts sessions, not processes: two are open on one process.
    let r = gw
        .client("/mcp/isolated", Some(&alice_t))
        .post(&http::initialize_request());
    assert_eq!(r.status, 503, "{}", r.text());

    // Both sessions use the same JSON-RPC ids at the same time; each gets its own answers.
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (c, who) in [(&alice, "alice"), (&bob, "bob")] {
            for id in [1, 2] {
                handles.push(s.spawn(move || {
                    let text = format!("{who}-{id}");
                    let r = echo_call(c, id, &text);
                    assert_eq!(r.status, 200, "{}", r.text());
                    let v = r.json();
                    assert_eq!(v["id"], id, "{v}");
                    assert_eq!(util::call_text(&v), text, "{v}");
                }));
            }
        }
        for h in handles {
            h.join().unwrap();
        }
    });

    // alice cancels her request 5 while bob's request 5 is in flight: only hers is cancelled.
    let a = alice.clone();
    let (done, alices) = std::sync::mpsc::channel();
    let cancelled = std::thread::spawn(move || {
        let r = echo_call(&a, 5, "alice-5");
        let _ = done.send(r.status);
    });
    let b = bob.clone();
    let bobs = std::thread::spawn(move || echo_call(&b, 5, "bob-5"));
    // Both calls are with the server (recorded when forwarded) before alice cancels.
    util::wait_for(
        std::time::Duration::from_secs(10),
        "both calls 5 in flight",
        || {
            let ev = util::audit_events(&home, "shared");
            let sent = |text: &str| {
                ev.iter()
                    .any(|e| e["method"] == "tools/call" && e["args"]["text"] == text)
            };
            (sent("alice-5") && sent("bob-5")).then_some(())
        },
        || gw.stderr(),
    );
    let n = alice.post(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                                "params": {"requestId": 5, "reason": "test"}}),
    );
    assert_eq!(n.status, 202, "{}", n.text());
    let r = bobs.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(util::call_text(&r.json()), "bob-5", "{}", r.text());
    // The server dropped alice's request (it answers 600 ms after the call unless cancelled).
    assert_eq!(
        alices.recv_timeout(std::time::Duration::from_millis(1500)),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout),
        "alice's cancelled request was answered: the cancellation went elsewhere"
    );

    // Ending one session leaves the other (and the process) working, and ends its requests in flight.
    assert_eq!(alice.delete().status, 200);
    cancelled.join().unwrap();
    let r = alice.post(&json!({"jsonrpc": "2.0", "id": 6, "method": "ping"}));
    assert_eq!(r.status, 404, "{}", r.text());
    let r = echo_call(&bob, 7, "still here");
    assert_eq!(util::call_text(&r.json()), "still here");

    // A client asking for an older protocol than the process speaks is refused, and gets no session.
    let mut old = http::initialize_request();
    old["params"]["protocolVersion"] = json!("2024-11-05");
    let r = gw.client("/mcp/shared", Some(&alice_t)).post(&old);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("mcp-session-id").is_none(), "{:?}", r.headers);
    let v = r.json();
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert_eq!(
        v["error"]["data"]["supported"],
        json!(["2025-11-25"]),
        "{v}"
    );
    // A new session joins the same process.
    let mut carol = gw.client("/mcp/shared", Some(&alice_t));
    carol.initialize();
    let r = echo_call(&carol, 1, "carol");
    assert_eq!(util::call_text(&r.json()), "carol");
    assert_eq!(spawns(&home, "shared"), 1, "{}", gw.stderr());

    // Each session's calls are recorded with its own client, and alice's cancellation reached the server
    // as hers (her request's upstream id, not bob's).
    let events = util::audit_events(&home, "shared");
    for who in ["alice", "bob"] {
        assert!(
            events
                .iter()
                .any(|e| e["client"] == who && e["method"] == "tools/call" && e["status"] == "ok"),
            "{who}: {events:#?}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["client"] == "alice" && e["method"] == "notifications/cancelled"),
        "{events:#?}"
    );
}

#[test]
fn serve_per_session_is_the_default_and_shared_refuses_bad_values() {
    let home = TestHome::new();
    let dir = palisade_testkit::TempDir::new("serve-per-session");
    let policy = sharing_policy(&dir, &echo());
    let gw = Gateway::start(
        &home,
        &["--no-auth", "--policy", policy.to_str().unwrap()],
        &[] as &[&str],
    );
    for path in ["/mcp/isolated", "/mcp/shared"] {
        for _ in 0..2 {
            let mut c = gw.client(path, None);
            c.initialize();
            let r = echo_call(&c, 1, "x");
            assert_eq!(util::call_text(&r.json()), "x");
        }
    }
    assert_eq!(spawns(&home, "isolated"), 2, "a process per session");
    assert_eq!(spawns(&home, "shared"), 1, "one process for both");

    // A value that is neither is a policy error at its line, naming both spellings.
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "version = 1\n[servers.x]\ncommand = [\"x\"]\nprocess = \"per-server\"\n",
    )
    .unwrap();
    let out = util::output(&home, &["policy", "check", bad.to_str().unwrap()]);
    let (code, stdout, stderr) = util::code_out_err(&out);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("error[invalid-value]"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains(&format!("{}:4:", bad.display())), "{line}");
    assert!(
        stdout.contains("per-session") && stdout.contains("\"shared\""),
        "{stdout}"
    );
}

/// The real server-everything behind one shared process: two sessions, concurrent calls with the same
/// ids, and a DELETE of one that leaves the other working.
#[test]
fn serve_shared_process_with_server_everything() {
    let home = TestHome::new();
    let dir = palisade_testkit::TempDir::new("serve-shared-se");
    let policy = sharing_policy(&dir, &palisade_testkit::peers::server_everything_stdio());
    let gw = Gateway::start(
        &home,
        &[
            "--no-auth",
            "--rate-limit",
            "off",
            "--policy",
            policy.to_str().unwrap(),
        ],
        &[] as &[&str],
    );
    let mut clients: Vec<http::Client> = (0..2).map(|_| gw.client("/mcp/shared", None)).collect();
    for c in &mut clients {
        let init = c.initialize();
        assert_eq!(
            init["result"]["serverInfo"]["name"]
                .as_str()
                .map(|n| n.contains("everything")),
            Some(true),
            "{init}"
        );
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter()
            .enumerate()
            .flat_map(|(i, c)| {
                (1..=3).map(move |id| {
                    s.spawn(move || {
                        let msg = format!("session-{i}-{id}");
                        let r = c.call(
                            id,
                            "tools/call",
                            json!({"name": "echo", "arguments": {"message": msg}}),
                        );
                        assert_eq!(r["id"], id, "{r}");
                        assert!(util::call_text(&r).contains(&msg), "{r}");
                    })
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    assert_eq!(spawns(&home, "shared"), 1, "{}", gw.stderr());
    assert_eq!(clients[0].delete().status, 200);
    let r = clients[1].call(
        9,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "after"}}),
    );
    assert!(util::call_text(&r).contains("after"), "{r}");
    let r = clients[0].post(&json!({"jsonrpc": "2.0", "id": 10, "method": "ping"}));
    assert_eq!(r.status, 404, "{}", r.text());
}

/// Reads an open SSE stream until `needle` arrives; panics after `secs`.
fn read_stream_until(s: &mut std::net::TcpStream, needle: &str, secs: u64) -> String {
    use std::io::Read;
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    while std::time::Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if String::from_utf8_lossy(&got).contains(needle) {
            return String::from_utf8_lossy(&got).into_owned();
        }
    }
    panic!(
        "no {needle} on the stream within {secs}s: {}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn serve_shared_process_fans_out_list_changes_to_every_session() {
    let home = TestHome::new();
    let dir = palisade_testkit::TempDir::new("serve-shared-fanout");
    let changing = util::echo_server_with(&[("ECHO_SERVER_CHANGE_TOOLS_AFTER", "1")]);
    let policy = sharing_policy(&dir, &changing);
    let gw = Gateway::start(
        &home,
        &["--no-auth", "--policy", policy.to_str().unwrap()],
        &[] as &[&str],
    );
    let mut a = gw.client("/mcp/shared", None);
    let mut b = gw.client("/mcp/shared", None);
    a.initialize();
    b.initialize();
    let mut streams: Vec<_> = [&a, &b]
        .iter()
        .map(|c| {
            let sid = c.session.clone().unwrap();
            let (head, s) = request_head(
                gw.addr,
                "GET",
                "/mcp/shared",
                &[
                    ("Accept", "text/event-stream"),
                    ("Mcp-Session-Id", &sid),
                    ("MCP-Protocol-Version", "2025-11-25"),
                ],
            );
            assert_eq!(head.status, 200, "{}", head.text());
            s
        })
        .collect();
    // The first tools/list makes the server change its tools and say so: every session hears it.
    let tools = a.call(1, "tools/list", json!({}));
    assert_eq!(util::tool_names(&tools), ["echo"]);
    for s in &mut streams {
        read_stream_until(s, "notifications/tools/list_changed", 10);
    }
}

#[test]
fn serve_shared_sessions_idle_out_one_by_one_and_the_process_after_them() {
    let home = TestHome::new();
    let dir = palisade_testkit::TempDir::new("serve-shared-idle");
    let policy = sharing_policy(&dir, &echo());
    let gw = Gateway::start(
        &home,
        &[
            "--no-auth",
            "--policy",
            policy.to_str().unwrap(),
            "--session-idle",
            "1s",
            "--max-sessions",
            "2",
        ],
        &[] as &[&str],
    );
    let mut a = gw.client("/mcp/shared", None);
    let mut b = gw.client("/mcp/shared", None);
    a.initialize();
    b.initialize();
    // Both idle out, each freeing its place under --max-sessions, and the process stops after them.
    let events = util::wait_for(
        std::time::Duration::from_secs(15),
        "the shared process's exit",
        || {
            let ev = util::audit_events(&home, "shared");
            ev.iter().any(|e| e["kind"] == "exit").then_some(ev)
        },
        || gw.stderr(),
    );
    let exit = events.iter().find(|e| e["kind"] == "exit").unwrap();
    assert!(
        exit["detail"].as_str().unwrap_or("").contains("idle"),
        "{exit}"
    );
    for c in [&a, &b] {
        let r = c.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}));
        assert_eq!(r.status, 404, "{}", r.text());
    }
    let mut c = gw.client("/mcp/shared", None);
    let mut d = gw.client("/mcp/shared", None);
    c.initialize();
    d.initialize();
    let r = echo_call(&d, 1, "again");
    assert_eq!(util::call_text(&r.json()), "again");
    assert_eq!(
        spawns(&home, "shared"),
        2,
        "a new process after the old one stopped"
    );
}
