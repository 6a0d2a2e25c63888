//! Writes a home with 10 client configs × 20 servers each, for timing `palisade scan` (BENCHMARKS.md).
//!
//! `cargo run --release -p palisade-scan --example bench_home -- DIR`
//!
//! The servers mix what real configs hold (pinned and unpinned npx/uvx, docker, remote URLs with headers,
//! env with fake secrets built at run time), so every rule family does its work.

use std::path::Path;

fn server(i: usize) -> serde_json::Value {
    use serde_json::json;
    // Fake, format-valid tokens assembled here (never committed as literals).
    let body: String = (0..36)
        .map(|k| {
            let a = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
            a[(i * 31 + k * 17 + k * k) % a.len()] as char
        })
        .collect();
    let token = ["gh", "p_", &body].concat();
    match i % 5 {
        0 => json!({"command": "npx", "args": ["-y", format!("@example/server-{i}")],
                    "env": {"GITHUB_TOKEN": token, "LOG_LEVEL": "info"}}),
        1 => {
            json!({"command": "uvx", "args": [format!("mcp-server-{i}==1.2.{i}"), "--root", "/srv/data"]})
        }
        2 => json!({"command": "docker", "args": ["run", "-i", "--rm", "-e", "API_TOKEN",
                    "-v", format!("/srv/project-{i}:/work"), format!("ghcr.io/example/mcp-{i}:latest")]}),
        3 => json!({"url": format!("https://mcp{i}.example.com/mcp"),
                    "headers": {"Authorization": "Bearer ${API_TOKEN}"}}),
        _ => json!({"command": "palisade", "args": ["run", "--server", format!("s{i}"), "--",
                    "node", format!("/opt/mcp/s{i}/dist/index.js")],
                    "env": {"SSH_AUTH_SOCK": "${SSH_AUTH_SOCK}"}}),
    }
}

fn servers(n: usize) -> serde_json::Map<String, serde_json::Value> {
    (0..n).map(|i| (format!("server-{i}"), server(i))).collect()
}

fn write(home: &Path, rel: &str, text: String) {
    let p = home.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: bench_home DIR");
    let home = Path::new(&dir);
    let n = 20;
    let mcp = serde_json::to_string_pretty(&serde_json::json!({"mcpServers": servers(n)})).unwrap();
    for rel in [
        ".config/Claude/claude_desktop_config.json",
        ".claude.json",
        ".cursor/mcp.json",
        ".codeium/windsurf/mcp_config.json",
        ".gemini/settings.json",
        ".kiro/settings/mcp.json",
    ] {
        write(home, rel, mcp.clone());
    }
    let vscode = serde_json::to_string_pretty(&serde_json::json!({"servers": servers(n)})).unwrap();
    write(
        home,
        ".config/Code/User/mcp.json",
        format!("// JSONC\n{vscode}\n"),
    );
    write(
        home,
        ".config/Code/User/settings.json",
        serde_json::to_string_pretty(
            &serde_json::json!({"editor.fontSize": 14, "mcp": {"servers": servers(n)}}),
        )
        .unwrap(),
    );
    write(
        home,
        ".config/zed/settings.json",
        serde_json::to_string_pretty(&serde_json::json!({"context_servers": servers(n)})).unwrap(),
    );
    let mut toml = String::new();
    for (name, s) in servers(n) {
        toml.push_str(&format!("[mcp_servers.{name}]\n"));
        if let Some(c) = s["command"].as_str() {
            toml.push_str(&format!("command = {c:?}\n"));
            let args: Vec<String> = s["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| format!("{:?}", a.as_str().unwrap()))
                .collect();
            toml.push_str(&format!("args = [{}]\n", args.join(", ")));
        } else {
            toml.push_str(&format!(
                "url = {:?}\nbearer_token_env_var = \"API_TOKEN\"\n",
                s["url"].as_str().unwrap()
            ));
        }
        toml.push('\n');
    }
    write(home, ".codex/config.toml", toml);
    println!("wrote 10 configs × {n} servers under {}", home.display());
}
