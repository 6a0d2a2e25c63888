//! Text and JSON renderings of a [`Report`] (SARIF: [`crate::report::sarif`]).
//!
//! # Text
//! Grouped by config file (client name and `~`-relative path), then server; each finding is a severity,
//! the one-line message, and a second line with the line number, the rule id and the fix. A summary line
//! ends it. Color only when the caller says so (a TTY and `NO_COLOR` unset).
//!
//! # JSON (`--format json`, version 1)
//! ```json
//! {
//!   "version": 1,
//!   "summary": {"configs": 2, "servers": 3, "findings": 4,
//!               "critical": 0, "high": 1, "medium": 1, "low": 2, "info": 0},
//!   "configs": [{
//!     "client": "claude-desktop", "client_name": "Claude Desktop", "scope": "user",
//!     "path": "/home/me/.config/Claude/claude_desktop_config.json", "format": "jsonc",
//!     "mode": "0644", "error": null,
//!     "servers": [{
//!       "name": "github", "pointer": "/mcpServers/github", "line": 3, "transport": "stdio",
//!       "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
//!       "env": ["GITHUB_TOKEN"], "url": null, "headers": [], "wrapped": false, "disabled": false
//!     }]
//!   }],
//!   "findings": [{
//!     "rule": "secret-in-env", "severity": "high",
//!     "message": "env `GITHUB_TOKEN` holds a GitHub token in plaintext (ghp_…a1b2)",
//!     "fix": "store it with `palisade secret set GITHUB_TOKEN` …",
//!     "client": "claude-desktop", "server": "github",
//!     "path": "/home/me/.config/Claude/claude_desktop_config.json",
//!     "line": 7, "column": 25, "end_line": 7, "end_column": 65,
//!     "evidence": "ghp_…a1b2", "fingerprint": "3f2a…"
//!   }]
//! }
//! ```
//! Fields are only ever added. `path` is absolute; `mode` is the octal permission string or null
//! (non-Unix); `error` says why a config could not be parsed; `pointer` is an RFC 6901 JSON Pointer to the
//! server entry; `args`, `command` and `url` have secrets masked, `env` and `headers` list names only;
//! `server`, `line`… are null for findings about the whole file. Findings come in the text's order.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::config::ConfigFile;
use crate::launch::Launch;
use crate::report::{Finding, Severity, counts, severity_counts};
use crate::{Report, secrets};

/// `path` with the home replaced by `~`.
pub fn display_path(path: &Path, home: &Path) -> String {
    match path.strip_prefix(home) {
        Ok(rel) if !home.as_os_str().is_empty() => format!("~/{}", rel.display()),
        _ => path.display().to_string(),
    }
}

fn mask(v: &str) -> String {
    let hits = secrets::scan(v, None);
    secrets::masked(v, &hits)
}

/// The masked argv of a server, for display.
fn masked_args(args: &[crate::config::Text]) -> Vec<String> {
    secrets::masked_argv(&args.iter().map(|a| a.value.as_str()).collect::<Vec<_>>())
}

fn pointer(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("/{}", k.replace('~', "~0").replace('/', "~1")))
        .collect()
}

fn summary_json(r: &Report) -> Value {
    let c = counts(&r.findings);
    let mut s = json!({
        "configs": r.configs.len(),
        "servers": r.server_count(),
        "findings": r.findings.len(),
    });
    for sev in Severity::ALL {
        s[sev.as_str()] = json!(c[sev as usize]);
    }
    s
}

fn config_json(c: &ConfigFile) -> Value {
    let servers: Vec<Value> = c
        .servers
        .iter()
        .map(|s| {
            let launch = Launch::of(s);
            json!({
                "name": s.name,
                "pointer": pointer(&s.pointer),
                "line": c.pos(s.key_span.start).line,
                "transport": s.transport.as_str(),
                "command": s.command.as_ref().map(|t| mask(&t.value)),
                "args": masked_args(&s.args),
                "env": s.env.iter().map(|e| e.name.value.clone()).chain(s.env_passthrough.iter().map(|t| t.value.clone())).collect::<Vec<_>>(),
                "url": s.url.as_ref().map(|t| mask(&t.value)),
                "headers": s.headers.iter().map(|h| h.name.value.clone()).collect::<Vec<_>>(),
                "wrapped": launch.palisade.is_some(),
                "disabled": s.disabled,
            })
        })
        .collect();
    json!({
        "client": c.client.id(),
        "client_name": c.client.name(),
        "scope": c.scope.as_str(),
        "path": c.path.display().to_string(),
        "format": c.format().as_str(),
        "mode": c.mode.map(|m| format!("{m:04o}")),
        "error": c.error.as_ref().map(|e| e.message.clone()),
        "servers": servers,
    })
}

fn finding_json(f: &Finding) -> Value {
    let path = f.location.as_ref().map(|l| l.path.display().to_string());
    let mut v = crate::report::finding_json(f, path);
    v["client"] = json!(f.client);
    v["server"] = json!(f.server);
    v
}

/// The JSON document (see the [module docs](self)).
pub fn json(r: &Report) -> Value {
    json!({
        "version": 1,
        "summary": summary_json(r),
        "configs": r.configs.iter().map(config_json).collect::<Vec<_>>(),
        "findings": r.findings.iter().map(finding_json).collect::<Vec<_>>(),
    })
}

/// ANSI styling, or none.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Emit ANSI color codes.
    pub color: bool,
}

impl Style {
    /// `s` in the ANSI style `code` (`"1"` bold, `"2"` dim, `"32"` green…), or as it is without color.
    pub fn paint(self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// The severity's name padded to a column of 8, in its color (critical bold red … info dim).
    pub fn severity(self, sev: Severity) -> String {
        let code = match sev {
            Severity::Critical => "1;31",
            Severity::High => "31",
            Severity::Medium => "33",
            Severity::Low => "36",
            Severity::Info => "2",
        };
        self.paint(code, &format!("{:<8}", sev.as_str()))
    }
}

/// The text report (see the [module docs](self)).
pub fn text(r: &Report, style: Style) -> String {
    let mut out = String::new();
    let home = r.home.as_path();
    for c in &r.configs {
        let mine: Vec<&Finding> = r
            .findings
            .iter()
            .filter(|f| f.location.as_ref().is_some_and(|l| l.path == c.path))
            .collect();
        if c.servers.is_empty() && mine.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "{}  {}",
            style.paint("1", c.client.name()),
            style.paint("2", &display_path(&c.path, home))
        );
        let file_level: Vec<&&Finding> = mine.iter().filter(|f| f.server.is_none()).collect();
        if !file_level.is_empty() {
            let _ = writeln!(out, "  {}", style.paint("2", "(the file)"));
            for f in file_level {
                finding_text(&mut out, f, style);
            }
        }
        for s in &c.servers {
            let launch = Launch::of(s);
            let what = match (&s.url, launch.words().is_empty()) {
                (Some(u), _) => mask(&u.value),
                (None, false) => {
                    let mut w = masked_args(&s.args);
                    if let Some(cmd) = &s.command {
                        w.insert(0, mask(&cmd.value));
                    }
                    let line = w.join(" ");
                    let h = home.display().to_string();
                    let line = if h.len() > 1 {
                        line.replace(&h, "~")
                    } else {
                        line
                    };
                    shorten(&line, 72)
                }
                (None, true) => String::new(),
            };
            let _ = writeln!(
                out,
                "  {}  {}",
                style.paint("1", &s.name),
                style.paint("2", &what)
            );
            let of_server: Vec<&&Finding> = mine
                .iter()
                .filter(|f| f.server.as_deref() == Some(s.name.as_str()))
                .collect();
            if of_server.is_empty() {
                let _ = writeln!(out, "    {}", style.paint("32", "no findings"));
            }
            for f in of_server {
                finding_text(&mut out, f, style);
            }
        }
        out.push('\n');
    }
    let by = severity_counts(&r.findings);
    let _ = writeln!(
        out,
        "{} finding{} in {} config{} ({} server{}){}",
        r.findings.len(),
        plural(r.findings.len()),
        r.configs.len(),
        plural(r.configs.len()),
        r.server_count(),
        plural(r.server_count()),
        if by.is_empty() {
            String::new()
        } else {
            format!(": {by}")
        }
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

fn finding_text(out: &mut String, f: &Finding, style: Style) {
    let _ = writeln!(out, "    {}  {}", style.severity(f.severity), f.message);
    let line = f
        .location
        .as_ref()
        .map(|l| format!("line {} · ", l.start.line))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "    {:<8}  {}",
        "",
        style.paint("2", &format!("{line}{} · fix: {}", f.rule, f.fix))
    );
}
