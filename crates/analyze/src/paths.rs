//! Path tables shared by both analyses: which locations hold credentials, and which run code later.
//!
//! A string literal in a package (`path.join(os.homedir(), ".ssh", "id_rsa")`) and a sentence in a tool
//! description ("read ~/.cursor/mcp.json first") are checked against the same list, so the two analyses
//! cannot disagree about what counts as a secret. Each entry is data: a label shown in messages and one
//! regex, matched against a literal (after escapes are decoded and constant pieces joined).

use std::sync::LazyLock;

use regex::Regex;

/// One kind of location.
#[derive(Debug)]
pub struct PathClass {
    /// What it is, for messages ("SSH keys").
    pub label: &'static str,
    /// Matches a path (or path segment) naming it.
    pub re: Regex,
}

fn class(label: &'static str, re: &str) -> PathClass {
    PathClass {
        label,
        re: Regex::new(re).expect("path table regex"),
    }
}

// A path boundary before a dot-directory: start, a separator or `~`.
const B: &str = r"(?:^|[/\\~\s'`]|\$HOME|%USERPROFILE%)";
// A boundary after a segment: end, a separator or a quote/space.
const E: &str = r"(?:$|[/\\\s'`])";

/// Credential stores: what stealers read.
pub static SENSITIVE: LazyLock<Vec<PathClass>> = LazyLock::new(|| {
    vec![
        class(
            "SSH keys",
            &format!(r"{B}\.ssh{E}|\bid_(?:rsa|dsa|ecdsa|ed25519)(?:\.pub)?\b"),
        ),
        class(
            "cloud credentials",
            &format!(
                r"{B}\.aws{E}|\.config[/\\]gcloud{E}|{B}\.azure{E}|{B}\.kube[/\\]config\b|{B}\.docker[/\\]config\.json\b|application_default_credentials\.json"
            ),
        ),
        class(
            "package-registry and git credentials",
            &format!(r"{B}\.(?:npmrc|pypirc|netrc|git-credentials|yarnrc\.yml){E}"),
        ),
        class(
            "GPG keys and password stores",
            &format!(r"{B}\.gnupg{E}|{B}\.password-store{E}"),
        ),
        class(
            "keychains",
            r"(?i)Library[/\\]Keychains|\blogin\.keychain(?:-db)?\b|\.local[/\\]share[/\\]keyrings|\bsecurity\s+(?:find|dump)-(?:generic-|internet-)?(?:password|keychain)",
        ),
        class(
            "browser profiles",
            r"(?i)Google[/\\]Chrome|google-chrome[/\\]|chromium[/\\]|BraveSoftware|Microsoft[/\\]Edge[/\\]|\.mozilla[/\\]firefox|Mozilla[/\\]Firefox|Firefox[/\\]Profiles|\bLogin Data\b|\bkey4\.db\b|\blogins\.json\b|\bcookies\.sqlite\b",
        ),
        class(
            "cryptocurrency wallets",
            r"(?i)\bwallet\.dat\b|\bExodus[/\\]exodus\.wallet|\.electrum[/\\]|nkbihfbeogaeaoehlefnkodbefgpgknn",
        ),
        class(
            "MCP client configs",
            &format!(
                r"claude_desktop_config\.json|{B}\.cursor[/\\]mcp\.json|(?:^|[/\\~\s'`])mcp\.json\b|{B}\.claude\.json\b|\bmcp_config\.json\b|{B}\.codex[/\\]config\.toml|{B}\.gemini[/\\]settings\.json|\.codeium[/\\]windsurf"
            ),
        ),
        class(
            "shell history",
            &format!(r"{B}\.(?:bash|zsh|sh)_history{E}"),
        ),
        class(
            "system password files",
            r"/etc/(?:shadow|gshadow|sudoers)\b",
        ),
    ]
});

/// Locations whose contents run later: shell startup files, git hooks, autostart entries.
pub static PERSISTENCE: LazyLock<Vec<PathClass>> = LazyLock::new(|| {
    vec![
        class(
            "shell startup files",
            &format!(
                r"{B}\.(?:bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin|kshrc|cshrc|tcshrc){E}|config[/\\]fish[/\\]config\.fish"
            ),
        ),
        class(
            "git hooks",
            r"\.git[/\\]hooks\b|(?:^|[/\\])hooks[/\\](?:pre-commit|post-commit|pre-push|post-checkout|post-merge|prepare-commit-msg|commit-msg)\b|\bcore\.hooksPath\b",
        ),
        class(
            "autostart entries",
            r"(?i)\bLaunch(?:Agents|Daemons)\b|\.config[/\\]autostart|systemd[/\\]user\b|/etc/cron|\bcrontab\b|Start Menu[/\\]+Programs[/\\]+Startup|CurrentVersion[/\\]+Run\b",
        ),
        class("SSH authorized keys", r"\bauthorized_keys2?\b"),
    ]
});

/// The first class in `table` that `s` names.
pub fn classify<'t>(table: &'t [PathClass], s: &str) -> Option<&'t PathClass> {
    table.iter().find(|c| c.re.is_match(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sensitive(s: &str) -> Option<&'static str> {
        classify(&SENSITIVE, s).map(|c| c.label)
    }

    #[test]
    fn credential_paths_are_recognised_as_paths_and_segments() {
        assert_eq!(sensitive("~/.ssh/id_rsa"), Some("SSH keys"));
        assert_eq!(sensitive(".ssh"), Some("SSH keys"));
        assert_eq!(sensitive("id_ed25519"), Some("SSH keys"));
        assert_eq!(sensitive(".aws/credentials"), Some("cloud credentials"));
        assert_eq!(
            sensitive("/home/u/.npmrc"),
            Some("package-registry and git credentials")
        );
        assert_eq!(
            sensitive("AppData/Local/Google/Chrome/User Data/Default/Login Data"),
            Some("browser profiles")
        );
        assert_eq!(
            sensitive("~/Library/Application Support/Claude/claude_desktop_config.json"),
            Some("MCP client configs")
        );
        assert_eq!(sensitive("~/.cursor/mcp.json"), Some("MCP client configs"));
    }

    #[test]
    fn ordinary_words_and_lookalikes_are_not_credential_paths() {
        for s in [
            "sshd_config",
            "a.sshx",
            "my.awsome",
            "ssh",
            "the .npmrc-parser module",
            "mcp.jsonl",
            "chrome",
            "profile",
        ] {
            assert_eq!(sensitive(s), None, "{s}");
        }
    }

    #[test]
    fn persistence_locations_are_recognised() {
        let p = |s: &str| classify(&PERSISTENCE, s).map(|c| c.label);
        assert_eq!(p("~/.bashrc"), Some("shell startup files"));
        assert_eq!(p(".zshrc"), Some("shell startup files"));
        assert_eq!(p(".git/hooks/pre-commit"), Some("git hooks"));
        assert_eq!(
            p("~/Library/LaunchAgents/x.plist"),
            Some("autostart entries")
        );
        assert_eq!(p("profile"), None);
        assert_eq!(p("user-profile.json"), None);
    }
}
