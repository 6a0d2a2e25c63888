//! Who is calling, and which servers and tools they may use.
//!
//! # Scope vocabulary
//! The same strings are used in palisade-issued tokens (`palisade token create --scope …`) and in the
//! `scope` (or `scp`) claim of OAuth access tokens:
//!
//! | scope | grants |
//! |---|---|
//! | `mcp:*` | every server and every tool |
//! | `mcp:SERVER` | everything on `SERVER` (a glob: `mcp:git-*`) |
//! | `mcp:SERVER:TOOL` | on `SERVER`: the tools matching the glob `TOOL`, plus the server's non-tool methods (lists, resources, prompts) |
//!
//! A client sees only the tools it may call in `tools/list`, and a call to any other tool is refused with
//! 403 `insufficient_scope` naming the scope that would allow it. Scopes in a token that are not `mcp:…`
//! are ignored (an identity provider issues other scopes too), so a token without any `mcp:` scope can
//! reach nothing.

use palisade_policy::Glob;

/// The prefix of every scope palisade understands.
pub const PREFIX: &str = "mcp:";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The client's name for the audit trail (`--client NAME`, or the token's `client_id`/`azp`/`sub`).
    pub name: String,
    /// A stable identity sessions are bound to (token id, or issuer + subject).
    pub key: String,
    /// What it may use.
    pub scopes: Scopes,
}

impl Principal {
    /// The principal of `--no-auth`: may use everything.
    pub fn anonymous() -> Principal {
        Principal {
            name: "anonymous".into(),
            key: "anonymous".into(),
            scopes: Scopes::all(),
        }
    }
}

/// A compiled scope set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes {
    all: bool,
    rules: Vec<(Glob, Option<Glob>)>,
}

impl Scopes {
    /// Every server and tool.
    pub fn all() -> Scopes {
        Scopes {
            all: true,
            rules: Vec::new(),
        }
    }

    /// Compiles `mcp:…` scopes; other scopes are ignored. A malformed `mcp:` scope is an error naming it.
    pub fn parse<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Result<Scopes, String> {
        let mut out = Scopes::default();
        for s in scopes {
            let Some(rest) = s.strip_prefix(PREFIX) else {
                continue;
            };
            if rest == "*" {
                out.all = true;
                continue;
            }
            let (server, tool) = match rest.split_once(':') {
                Some((s, t)) => (s, Some(t)),
                None => (rest, None),
            };
            let bad = |why: &str| {
                format!("scope `{s}` {why}; expected mcp:*, mcp:SERVER or mcp:SERVER:TOOL")
            };
            let server = Glob::new(server).map_err(|e| bad(&e))?;
            let tool = match tool {
                Some(t) if t.contains(':') => return Err(bad("has too many `:`")),
                Some(t) => Some(Glob::new(t).map_err(|e| bad(&e))?),
                None => None,
            };
            out.rules.push((server, tool));
        }
        Ok(out)
    }

    /// Whether any scope reaches `server`.
    pub fn server(&self, server: &str) -> bool {
        self.all || self.rules.iter().any(|(s, _)| s.matches(server))
    }

    /// Whether `tool` of `server` may be listed and called.
    pub fn tool(&self, server: &str, tool: &str) -> bool {
        self.all
            || self
                .rules
                .iter()
                .any(|(s, t)| s.matches(server) && t.as_ref().is_none_or(|t| t.matches(tool)))
    }

    /// Whether every tool of `server` is allowed (no filtering needed).
    pub fn whole_server(&self, server: &str) -> bool {
        self.all
            || self
                .rules
                .iter()
                .any(|(s, t)| t.is_none() && s.matches(server))
    }

    /// The scopes as strings, for display.
    pub fn to_strings(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.all {
            v.push("mcp:*".to_owned());
        }
        for (s, t) in &self.rules {
            match t {
                Some(t) => v.push(format!("mcp:{}:{}", s.as_str(), t.as_str())),
                None => v.push(format!("mcp:{}", s.as_str())),
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_scopes_limit_tools_but_not_the_server() {
        let s = Scopes::parse(["openid", "mcp:git:git_log", "mcp:fs-*:read_*"]).unwrap();
        assert!(s.server("git"));
        assert!(s.tool("git", "git_log"));
        assert!(!s.tool("git", "git_push"));
        assert!(s.tool("fs-home", "read_file"));
        assert!(!s.tool("fs-home", "write_file"));
        assert!(!s.server("time"));
        assert!(!s.whole_server("git"));
    }

    #[test]
    fn server_and_star_scopes_grant_everything_they_name() {
        let s = Scopes::parse(["mcp:time"]).unwrap();
        assert!(s.whole_server("time") && s.tool("time", "anything"));
        assert!(!s.server("git"));
        let all = Scopes::parse(["mcp:*"]).unwrap();
        assert!(all.tool("x", "y"));
        assert_eq!(all.to_strings(), ["mcp:*"]);
    }

    #[test]
    fn no_mcp_scope_reaches_nothing() {
        let s = Scopes::parse(["openid", "profile"]).unwrap();
        assert!(!s.server("git"));
    }

    #[test]
    fn rejects_malformed_scopes() {
        assert!(Scopes::parse(["mcp:"]).is_err());
        assert!(Scopes::parse(["mcp:a:b:c"]).is_err());
        assert!(Scopes::parse(["mcp:a:"]).is_err());
    }
}
