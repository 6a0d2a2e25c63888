//! A client config read into servers that remember where each field was written.
//!
//! [`ConfigFile::parse`] turns one file's text into [`ServerEntry`]s, whatever the client's dialect:
//! `command`/`args`/`env` everywhere; `url`, `serverUrl` (Windsurf) or `httpUrl` (Gemini CLI) for remote
//! servers; `headers` or Codex's `http_headers`; Zed's older `command: {path, args, env}` object; Codex's
//! `env_vars` (names passed through from the client's environment), `bearer_token_env_var` and
//! `env_http_headers` (credentials taken from the environment). Every string keeps its byte span, so rules
//! can point at it and `palisade wrap` can rewrite it in place.

use std::path::PathBuf;

use crate::client::{Client, Format, Scope, Shape};
use crate::doc::{LineIndex, Node, Pos, Span};

/// A string from the file and the bytes it was written as (quotes included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// The value, unescaped.
    pub value: String,
    /// Its span in the file.
    pub span: Span,
}

impl Text {
    fn of(n: &Node) -> Option<Text> {
        n.as_str().map(|s| Text {
            value: s.to_owned(),
            span: n.span.clone(),
        })
    }
}

/// An environment variable set for a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// The name (span: the key).
    pub name: Text,
    /// The value when it is a string.
    pub value: Option<Text>,
}

/// How a client talks to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A local child process over stdin/stdout.
    Stdio,
    /// Streamable HTTP.
    Http,
    /// The older HTTP+SSE transport.
    Sse,
    /// Neither a command nor a URL was found.
    Unknown,
}

impl Transport {
    /// `"stdio"`, `"http"`, `"sse"`, `"unknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
            Transport::Sse => "sse",
            Transport::Unknown => "unknown",
        }
    }
}

/// One server entry of a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    /// The server's name (its key).
    pub name: String,
    /// Keys from the document root to the entry (`["mcpServers", "github"]`, `["projects", "/p",
    /// "mcpServers", "x"]`, `["mcp_servers", "x"]`).
    pub pointer: Vec<String>,
    /// The entry's key.
    pub key_span: Span,
    /// The entry's value (the whole server object).
    pub span: Span,
    /// stdio, http or sse (from `type`/`transport`, else inferred from `command`/`url`).
    pub transport: Transport,
    /// The program.
    pub command: Option<Text>,
    /// Its arguments (non-string items are skipped).
    pub args: Vec<Text>,
    /// Environment set for it.
    pub env: Vec<EnvVar>,
    /// Names passed through from the client's own environment (Codex `env_vars`).
    pub env_passthrough: Vec<Text>,
    /// Remote server URL.
    pub url: Option<Text>,
    /// HTTP headers sent to a remote server (name, value when a string).
    pub headers: Vec<EnvVar>,
    /// Credentials come from the environment (Codex `bearer_token_env_var` / `env_http_headers`).
    pub auth_from_env: bool,
    /// `disabled: true` or `enabled: false`.
    pub disabled: bool,
}

/// A place where a setting makes a client start project servers without asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoEnable {
    /// The setting's key, as written (`enableAllProjectMcpServers`).
    pub key: String,
    /// The `true` value.
    pub span: Span,
    /// The project it applies to, when the setting is per project (`~/.claude.json`).
    pub project: Option<String>,
}

/// Why a file could not be read as a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// What went wrong.
    pub message: String,
    /// Where, when it is a syntax error.
    pub offset: Option<usize>,
}

/// One config file, parsed.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// Whose.
    pub client: Client,
    /// Where its servers are.
    pub shape: Shape,
    /// User or project.
    pub scope: Scope,
    /// The file.
    pub path: PathBuf,
    /// Its text (empty when it could not be read).
    pub text: String,
    /// Line index of `text`.
    pub lines: LineIndex,
    /// Unix permission bits, when known.
    pub mode: Option<u32>,
    /// The servers, in file order.
    pub servers: Vec<ServerEntry>,
    /// Auto-enable switches set to `true`.
    pub auto_enable: Vec<AutoEnable>,
    /// Project directories listed in the file (`~/.claude.json` `projects`).
    pub projects: Vec<String>,
    /// Set when the file could not be read or parsed; then `servers` is empty.
    pub error: Option<ReadError>,
}

impl ConfigFile {
    /// An unreadable file.
    pub fn unreadable(
        c: &crate::discover::Candidate,
        message: String,
        mode: Option<u32>,
    ) -> ConfigFile {
        ConfigFile {
            client: c.client,
            shape: c.shape,
            scope: c.scope,
            path: c.path.clone(),
            text: String::new(),
            lines: LineIndex::new(""),
            mode,
            servers: Vec::new(),
            auto_enable: Vec::new(),
            projects: Vec::new(),
            error: Some(ReadError {
                message,
                offset: None,
            }),
        }
    }

    /// Parses `text` as `c` says (a syntax error is kept in [`ConfigFile::error`], not returned).
    pub fn parse(c: &crate::discover::Candidate, text: String, mode: Option<u32>) -> ConfigFile {
        let root = parse_text(c.shape.format(), &text);
        let mut file = ConfigFile {
            client: c.client,
            shape: c.shape,
            scope: c.scope,
            path: c.path.clone(),
            lines: LineIndex::new(&text),
            text,
            mode,
            servers: Vec::new(),
            auto_enable: Vec::new(),
            projects: Vec::new(),
            error: None,
        };
        match root {
            Ok(root) => file.read(&root),
            Err(e) => file.error = Some(e),
        }
        file
    }

    /// The file format.
    pub fn format(&self) -> Format {
        self.shape.format()
    }

    /// Line and column of byte `offset`.
    pub fn pos(&self, offset: usize) -> Pos {
        self.lines.pos(&self.text, offset)
    }

    fn read(&mut self, root: &Node) {
        match self.shape {
            Shape::McpServers => self.servers_at(root, &["mcpServers"]),
            Shape::VsCodeMcp => self.servers_at(root, &["servers"]),
            Shape::VsCodeSettings => self.servers_at(root, &["mcp", "servers"]),
            Shape::Zed => self.servers_at(root, &["context_servers"]),
            Shape::CodexToml => self.servers_at(root, &["mcp_servers"]),
            Shape::ClaudeSettings => self.auto_enable_at(root, None),
            Shape::ClaudeUser => {
                self.servers_at(root, &["mcpServers"]);
                self.auto_enable_at(root, None);
                if let Some(projects) = root.get("projects") {
                    for (k, p) in projects.entries() {
                        self.projects.push(k.name.clone());
                        let base = ["projects".to_owned(), k.name.clone()];
                        if let Some(servers) = p.get("mcpServers") {
                            self.servers_in(
                                servers,
                                &[&base[..], &["mcpServers".to_owned()]].concat(),
                            );
                        }
                        self.auto_enable_at(p, Some(&k.name));
                    }
                }
            }
        }
        self.servers.sort_by_key(|s| s.key_span.start);
    }

    fn auto_enable_at(&mut self, node: &Node, project: Option<&str>) {
        for key in ["enableAllProjectMcpServers"] {
            if let Some(v) = node.get(key)
                && v.as_bool() == Some(true)
            {
                self.auto_enable.push(AutoEnable {
                    key: key.to_owned(),
                    span: v.span.clone(),
                    project: project.map(str::to_owned),
                });
            }
        }
    }

    fn servers_at(&mut self, root: &Node, path: &[&str]) {
        let mut node = root;
        for k in path {
            match node.get(k) {
                Some(n) => node = n,
                None => return,
            }
        }
        let pointer: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        self.servers_in(node, &pointer);
    }

    fn servers_in(&mut self, servers: &Node, pointer: &[String]) {
        for (k, v) in servers.entries() {
            if !v.is_object() {
                continue;
            }
            let mut p = pointer.to_vec();
            p.push(k.name.clone());
            self.servers
                .push(server_entry(&k.name, p, k.span.clone(), v));
        }
    }
}

fn parse_text(format: Format, text: &str) -> Result<Node, ReadError> {
    match format {
        Format::Jsonc => crate::jsonc::parse(text).map_err(|e| ReadError {
            message: format!("not valid JSON: {}", e.message),
            offset: Some(e.offset),
        }),
        Format::Toml => crate::toml_doc::parse(text).map_err(|e| ReadError {
            message: format!("not valid TOML: {}", e.message),
            offset: Some(e.offset),
        }),
    }
}

/// Parses `text` in the format its name suggests (`.toml`, else JSONC), for content-based classification.
pub fn parse_any(path: &std::path::Path, text: &str) -> Result<Node, ReadError> {
    let toml = path.extension().is_some_and(|e| e == "toml");
    parse_text(if toml { Format::Toml } else { Format::Jsonc }, text)
}

fn strings(n: Option<&Node>) -> Vec<Text> {
    n.and_then(Node::as_array)
        .map(|items| items.iter().filter_map(Text::of).collect())
        .unwrap_or_default()
}

fn pairs(n: Option<&Node>) -> Vec<EnvVar> {
    n.map(|m| {
        m.entries()
            .into_iter()
            .map(|(k, v)| EnvVar {
                name: Text {
                    value: k.name.clone(),
                    span: k.span.clone(),
                },
                value: Text::of(v),
            })
            .collect()
    })
    .unwrap_or_default()
}

fn server_entry(name: &str, pointer: Vec<String>, key_span: Span, v: &Node) -> ServerEntry {
    // Zed's older form nests the launch in `command: {path, args, env}`.
    let (command, args, env) = match v.get("command") {
        Some(c) if c.is_object() => (
            c.get("path").and_then(Text::of),
            strings(c.get("args")),
            pairs(c.get("env")),
        ),
        c => (
            c.and_then(Text::of),
            strings(v.get("args")),
            pairs(v.get("env")),
        ),
    };
    let url = ["url", "serverUrl", "httpUrl"]
        .iter()
        .find_map(|k| v.get(k).and_then(Text::of));
    let mut headers = pairs(v.get("headers"));
    headers.extend(pairs(v.get("http_headers")));
    let ty = v
        .get("type")
        .or_else(|| v.get("transport"))
        .and_then(Node::as_str)
        .map(str::to_ascii_lowercase);
    let transport = match ty.as_deref() {
        Some("stdio") => Transport::Stdio,
        Some("sse") => Transport::Sse,
        Some("http" | "streamable-http" | "streamablehttp" | "streamable_http") => Transport::Http,
        _ if command.is_some() => Transport::Stdio,
        _ if v.get("httpUrl").is_some() => Transport::Http,
        _ if url.is_some() => {
            if url
                .as_ref()
                .is_some_and(|u| u.value.trim_end_matches('/').ends_with("/sse"))
            {
                Transport::Sse
            } else {
                Transport::Http
            }
        }
        _ => Transport::Unknown,
    };
    let auth_from_env = v
        .get("bearer_token_env_var")
        .and_then(Node::as_str)
        .is_some()
        || v.get("env_http_headers")
            .is_some_and(|h| !h.entries().is_empty());
    let disabled = v.get("disabled").and_then(Node::as_bool) == Some(true)
        || v.get("enabled").and_then(Node::as_bool) == Some(false);
    ServerEntry {
        name: name.to_owned(),
        pointer,
        key_span,
        span: v.span.clone(),
        transport,
        command,
        args,
        env,
        env_passthrough: strings(v.get("env_vars")),
        url,
        headers,
        auth_from_env,
        disabled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::Candidate;

    fn parse(shape: Shape, text: &str) -> ConfigFile {
        let c = Candidate {
            client: Client::Other,
            shape,
            scope: Scope::User,
            path: "/x".into(),
        };
        ConfigFile::parse(&c, text.to_owned(), None)
    }

    #[test]
    fn reads_every_field_with_spans() {
        let text = r#"{"mcpServers": {"gh": {"command": "npx", "args": ["-y", "pkg@1"],
            "env": {"T": "v"}}, "remote": {"type": "http", "url": "https://h/mcp",
            "headers": {"Authorization": "Bearer x"}}}}"#;
        let f = parse(Shape::McpServers, text);
        assert!(f.error.is_none());
        let [gh, remote] = &f.servers[..] else {
            panic!("{:?}", f.servers)
        };
        assert_eq!(gh.pointer, ["mcpServers", "gh"]);
        assert_eq!(gh.transport, Transport::Stdio);
        assert_eq!(&text[gh.args[1].span.clone()], "\"pkg@1\"");
        assert_eq!(gh.env[0].name.value, "T");
        assert_eq!(remote.transport, Transport::Http);
        assert_eq!(remote.headers[0].value.as_ref().unwrap().value, "Bearer x");
    }

    #[test]
    fn reads_claude_code_projects_and_auto_enable() {
        let text = r#"{"mcpServers": {"a": {"command": "x"}},
          "projects": {"/p": {"mcpServers": {"b": {"command": "y"}}, "enableAllProjectMcpServers": true},
                       "/q": {"enableAllProjectMcpServers": false}}}"#;
        let f = parse(Shape::ClaudeUser, text);
        let ptrs: Vec<_> = f.servers.iter().map(|s| s.pointer.join("/")).collect();
        assert_eq!(ptrs, ["mcpServers/a", "projects//p/mcpServers/b"]);
        assert_eq!(f.projects, ["/p", "/q"]);
        assert_eq!(f.auto_enable.len(), 1);
        assert_eq!(f.auto_enable[0].project.as_deref(), Some("/p"));
    }

    #[test]
    fn reads_zed_old_and_new_forms_and_codex_toml() {
        let z = parse(
            Shape::Zed,
            r#"{"context_servers": {"old": {"command": {"path": "node", "args": ["s.js"], "env": {}}},
                "new": {"command": "uvx", "args": ["x==1"], "enabled": false}}}"#,
        );
        assert_eq!(z.servers[0].command.as_ref().unwrap().value, "node");
        assert_eq!(z.servers[0].args[0].value, "s.js");
        assert!(z.servers[1].disabled);
        let c = parse(
            Shape::CodexToml,
            "[mcp_servers.r]\nurl = \"https://h/mcp\"\nbearer_token_env_var = \"T\"\n[mcp_servers.l]\ncommand = \"x\"\nenv_vars = [\"SSH_AUTH_SOCK\"]\n",
        );
        assert_eq!(c.servers[0].name, "r");
        assert!(c.servers[0].auth_from_env);
        assert_eq!(c.servers[1].env_passthrough[0].value, "SSH_AUTH_SOCK");
    }

    #[test]
    fn keeps_syntax_errors_with_their_offset() {
        let f = parse(Shape::McpServers, "{\"mcpServers\": {,}}");
        let e = f.error.unwrap();
        assert_eq!(e.offset, Some(16));
        assert!(f.servers.is_empty());
    }
}
