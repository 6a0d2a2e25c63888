//! Where MCP client configs live (DESIGN §7), and what a file given by path is.
//!
//! [`Locations`] is the whole input of discovery: a home directory plus the variables that move configs
//! out of it (`XDG_CONFIG_HOME`, `CODEX_HOME`, `APPDATA`). Every platform's layout is probed under the
//! home (macOS `Library/Application Support`, Windows `AppData/Roaming`, Linux `.config`), so a home copied
//! from another machine scans the same here. With `--home DIR` the variables are ignored: they describe the
//! current user, not DIR.
//!
//! Project configs (`.mcp.json`, `.cursor/mcp.json`, `.vscode/mcp.json`, …) are looked for in the current
//! directory, in directories given on the command line, and in every project Claude Code lists in
//! `~/.claude.json` (the orchestration in [`crate::scan`] adds those once that file is parsed).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::client::{Client, Scope, Shape};

/// The places discovery looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    /// The home directory.
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME`, else `HOME/.config`.
    pub xdg_config_home: PathBuf,
    /// `$CODEX_HOME`, else `HOME/.codex`.
    pub codex_home: PathBuf,
    /// `%APPDATA%`, else `HOME/AppData/Roaming`.
    pub appdata: PathBuf,
    /// Also machine-wide files (`/etc/claude-code/managed-mcp.json`, …).
    pub system: bool,
    /// Project directories to look in (the current directory, when scanning this machine).
    pub projects: Vec<PathBuf>,
}

impl Locations {
    /// Another home, with every location at its default under it (no system files, no projects).
    pub fn for_home(home: impl Into<PathBuf>) -> Locations {
        let home = home.into();
        Locations {
            xdg_config_home: home.join(".config"),
            codex_home: home.join(".codex"),
            appdata: home.join("AppData").join("Roaming"),
            system: false,
            projects: Vec::new(),
            home,
        }
    }

    /// This user's locations, from environment variables read through `var` (`HOME`, `XDG_CONFIG_HOME`,
    /// `CODEX_HOME`, `APPDATA`). Relative or empty values are ignored, as the XDG spec says.
    pub fn from_env(var: impl Fn(&str) -> Option<OsString>) -> Option<Locations> {
        let abs = |name: &str| {
            var(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        let home = abs("HOME").or_else(|| abs("USERPROFILE"))?;
        let mut loc = Locations::for_home(home);
        if let Some(p) = abs("XDG_CONFIG_HOME") {
            loc.xdg_config_home = p;
        }
        if let Some(p) = abs("CODEX_HOME") {
            loc.codex_home = p;
        }
        if let Some(p) = abs("APPDATA") {
            loc.appdata = p;
        }
        loc.system = true;
        Some(loc)
    }
}

/// A file to read, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Whose config.
    pub client: Client,
    /// Where the servers are in it.
    pub shape: Shape,
    /// User or project.
    pub scope: Scope,
    /// The file.
    pub path: PathBuf,
}

fn cand(client: Client, shape: Shape, scope: Scope, path: PathBuf) -> Candidate {
    Candidate {
        client,
        shape,
        scope,
        path,
    }
}

/// Every user-level config location (existing or not), in report order.
pub fn user_candidates(loc: &Locations) -> Vec<Candidate> {
    use Client::*;
    use Scope::User;
    let h = &loc.home;
    let mac = h.join("Library").join("Application Support");
    let mut out = Vec::new();
    // Claude Desktop: macOS, Windows, Linux.
    for dir in [
        mac.join("Claude"),
        loc.appdata.join("Claude"),
        loc.xdg_config_home.join("Claude"),
    ] {
        out.push(cand(
            ClaudeDesktop,
            Shape::McpServers,
            User,
            dir.join("claude_desktop_config.json"),
        ));
    }
    // Claude Code: servers in ~/.claude.json; auto-enable switches in its settings files.
    out.push(cand(
        ClaudeCode,
        Shape::ClaudeUser,
        User,
        h.join(".claude.json"),
    ));
    for f in ["settings.json", "settings.local.json"] {
        out.push(cand(
            ClaudeCode,
            Shape::ClaudeSettings,
            User,
            h.join(".claude").join(f),
        ));
    }
    if loc.system {
        let etc = Path::new("/etc/claude-code");
        out.push(cand(
            ClaudeCode,
            Shape::McpServers,
            User,
            etc.join("managed-mcp.json"),
        ));
        out.push(cand(
            ClaudeCode,
            Shape::ClaudeSettings,
            User,
            etc.join("managed-settings.json"),
        ));
    }
    out.push(cand(
        Cursor,
        Shape::McpServers,
        User,
        h.join(".cursor").join("mcp.json"),
    ));
    // VS Code user data, per platform and flavour.
    for base in [
        mac.clone(),
        loc.appdata.clone(),
        loc.xdg_config_home.clone(),
    ] {
        for flavour in ["Code", "Code - Insiders", "VSCodium"] {
            let user = base.join(flavour).join("User");
            out.push(cand(VsCode, Shape::VsCodeMcp, User, user.join("mcp.json")));
            out.push(cand(
                VsCode,
                Shape::VsCodeSettings,
                User,
                user.join("settings.json"),
            ));
        }
    }
    out.push(cand(
        Windsurf,
        Shape::McpServers,
        User,
        h.join(".codeium").join("windsurf").join("mcp_config.json"),
    ));
    out.push(cand(
        GeminiCli,
        Shape::McpServers,
        User,
        h.join(".gemini").join("settings.json"),
    ));
    out.push(cand(
        Codex,
        Shape::CodexToml,
        User,
        loc.codex_home.join("config.toml"),
    ));
    out.push(cand(
        Zed,
        Shape::Zed,
        User,
        loc.xdg_config_home.join("zed").join("settings.json"),
    ));
    out.push(cand(
        Zed,
        Shape::Zed,
        User,
        loc.appdata.join("Zed").join("settings.json"),
    ));
    out.push(cand(
        Kiro,
        Shape::McpServers,
        User,
        h.join(".kiro").join("settings").join("mcp.json"),
    ));
    out
}

/// Every project-level config location under `dir` (existing or not).
pub fn project_candidates(dir: &Path) -> Vec<Candidate> {
    use Client::*;
    use Scope::Project;
    vec![
        cand(
            ClaudeCode,
            Shape::McpServers,
            Project,
            dir.join(".mcp.json"),
        ),
        cand(
            ClaudeCode,
            Shape::ClaudeSettings,
            Project,
            dir.join(".claude").join("settings.json"),
        ),
        cand(
            ClaudeCode,
            Shape::ClaudeSettings,
            Project,
            dir.join(".claude").join("settings.local.json"),
        ),
        cand(
            Cursor,
            Shape::McpServers,
            Project,
            dir.join(".cursor").join("mcp.json"),
        ),
        cand(
            VsCode,
            Shape::VsCodeMcp,
            Project,
            dir.join(".vscode").join("mcp.json"),
        ),
        cand(
            VsCode,
            Shape::VsCodeSettings,
            Project,
            dir.join(".vscode").join("settings.json"),
        ),
        cand(
            GeminiCli,
            Shape::McpServers,
            Project,
            dir.join(".gemini").join("settings.json"),
        ),
        cand(
            Codex,
            Shape::CodexToml,
            Project,
            dir.join(".codex").join("config.toml"),
        ),
        cand(
            Zed,
            Shape::Zed,
            Project,
            dir.join(".zed").join("settings.json"),
        ),
        cand(
            Kiro,
            Shape::McpServers,
            Project,
            dir.join(".kiro").join("settings").join("mcp.json"),
        ),
    ]
}

/// What a file named on the command line is, from its path alone (`None`: decide from its content).
pub fn classify_path(path: &Path) -> Option<Candidate> {
    let name = path.file_name()?.to_str()?;
    let parent = |n: usize| -> String {
        path.ancestors()
            .nth(n)
            .and_then(Path::file_name)
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_owned()
    };
    let (p1, p2) = (parent(1), parent(2));
    let project = |c: Client, s: Shape| Some(cand(c, s, Scope::Project, path.to_path_buf()));
    let user = |c: Client, s: Shape| Some(cand(c, s, Scope::User, path.to_path_buf()));
    match (name, p1.as_str(), p2.as_str()) {
        ("claude_desktop_config.json", _, _) => user(Client::ClaudeDesktop, Shape::McpServers),
        (".claude.json", _, _) => user(Client::ClaudeCode, Shape::ClaudeUser),
        (".mcp.json", _, _) => project(Client::ClaudeCode, Shape::McpServers),
        ("managed-mcp.json", _, _) => user(Client::ClaudeCode, Shape::McpServers),
        (
            "settings.json" | "settings.local.json" | "managed-settings.json",
            ".claude" | "claude-code",
            _,
        ) => user(Client::ClaudeCode, Shape::ClaudeSettings),
        ("mcp.json", ".cursor", _) => user(Client::Cursor, Shape::McpServers),
        ("mcp.json", ".vscode", _) => project(Client::VsCode, Shape::VsCodeMcp),
        ("settings.json", ".vscode", _) => project(Client::VsCode, Shape::VsCodeSettings),
        ("mcp.json", "User", _) => user(Client::VsCode, Shape::VsCodeMcp),
        ("settings.json", "User", _) => user(Client::VsCode, Shape::VsCodeSettings),
        ("mcp_config.json", _, _) => user(Client::Windsurf, Shape::McpServers),
        ("settings.json", ".gemini", _) => user(Client::GeminiCli, Shape::McpServers),
        ("config.toml", _, _) => user(Client::Codex, Shape::CodexToml),
        ("settings.json", "zed" | ".zed" | "Zed", _) => user(Client::Zed, Shape::Zed),
        ("mcp.json", "settings", ".kiro") => user(Client::Kiro, Shape::McpServers),
        _ => None,
    }
}

/// What a file is, from its top-level keys, when its path did not say.
pub fn classify_content(path: &Path, root: &crate::doc::Node) -> Option<Candidate> {
    let c = |client, shape| Some(cand(client, shape, Scope::User, path.to_path_buf()));
    if root.get("mcp_servers").is_some() {
        c(Client::Codex, Shape::CodexToml)
    } else if root.get("mcpServers").is_some() {
        c(Client::Other, Shape::McpServers)
    } else if root.get("context_servers").is_some() {
        c(Client::Zed, Shape::Zed)
    } else if root.get("servers").is_some() {
        c(Client::VsCode, Shape::VsCodeMcp)
    } else if root.get("mcp").is_some_and(|m| m.get("servers").is_some()) {
        c(Client::VsCode, Shape::VsCodeSettings)
    } else if root.get("enableAllProjectMcpServers").is_some() {
        c(Client::ClaudeCode, Shape::ClaudeSettings)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_moves_codex_and_xdg_locations_and_ignores_relative_values() {
        let env = |k: &str| -> Option<OsString> {
            match k {
                "HOME" => Some("/h".into()),
                "CODEX_HOME" => Some("/elsewhere/codex".into()),
                "XDG_CONFIG_HOME" => Some("relative/cfg".into()),
                _ => None,
            }
        };
        let loc = Locations::from_env(env).unwrap();
        assert_eq!(loc.codex_home, PathBuf::from("/elsewhere/codex"));
        assert_eq!(loc.xdg_config_home, PathBuf::from("/h/.config"));
        let paths: Vec<_> = user_candidates(&loc).into_iter().map(|c| c.path).collect();
        assert!(paths.contains(&PathBuf::from("/elsewhere/codex/config.toml")));
        assert!(paths.contains(&PathBuf::from("/h/.config/zed/settings.json")));
        assert!(Locations::from_env(|_| None).is_none());
    }

    #[test]
    fn every_platform_layout_is_probed_under_the_home() {
        let paths: Vec<_> = user_candidates(&Locations::for_home("/h"))
            .into_iter()
            .map(|c| c.path)
            .collect();
        for p in [
            "/h/Library/Application Support/Claude/claude_desktop_config.json",
            "/h/AppData/Roaming/Claude/claude_desktop_config.json",
            "/h/.config/Claude/claude_desktop_config.json",
            "/h/Library/Application Support/Code/User/mcp.json",
            "/h/.config/Code/User/settings.json",
            "/h/.codeium/windsurf/mcp_config.json",
            "/h/.kiro/settings/mcp.json",
        ] {
            assert!(paths.contains(&PathBuf::from(p)), "{p}");
        }
        assert!(
            !paths.iter().any(|p| p.starts_with("/etc")),
            "no system files for --home"
        );
    }

    #[test]
    fn explicit_paths_are_classified_by_name_and_folder() {
        let k = |p: &str| classify_path(Path::new(p)).map(|c| (c.client, c.shape));
        assert_eq!(
            k("/r/.mcp.json"),
            Some((Client::ClaudeCode, Shape::McpServers))
        );
        assert_eq!(
            k("/r/.vscode/mcp.json"),
            Some((Client::VsCode, Shape::VsCodeMcp))
        );
        assert_eq!(
            k("/r/.cursor/mcp.json"),
            Some((Client::Cursor, Shape::McpServers))
        );
        assert_eq!(
            k("x/.codex/config.toml"),
            Some((Client::Codex, Shape::CodexToml))
        );
        assert_eq!(k("x/zed/settings.json"), Some((Client::Zed, Shape::Zed)));
        assert_eq!(
            k("x/.kiro/settings/mcp.json"),
            Some((Client::Kiro, Shape::McpServers))
        );
        assert_eq!(k("x/servers.json"), None);
    }
}
