//! The generated policy: a readable TOML file with one `[servers.NAME]` table per wrapped server.
//!
//! Written as text, not serialized from a struct, so every grant carries the comment that explains it and
//! every host palisade only suggests is there, commented out, for the user to enable. Tables are only ever
//! appended: a later `palisade wrap` of the same config adds the servers it wraps then and leaves the
//! user's edits to the earlier tables alone. Every result is checked with the parser `palisade run` uses
//! ([`palisade_policy::check`]) before anything is written.

use std::path::{Path, PathBuf};

use crate::edit::{toml_key, toml_str};
use crate::known::Need;

/// One server's table, as planned.
#[derive(Debug, Clone)]
pub(crate) struct Table<'a> {
    /// `[servers.NAME]`.
    pub(crate) name: &'a str,
    /// The entry, for the comment (`github`, `github (project /p)`).
    pub(crate) entry: &'a str,
    /// The original command and arguments.
    pub(crate) argv: &'a [String],
    /// `(VAR, reference)`: secrets as `keychain:NAME`, the rest as `env:VAR`.
    pub(crate) env: &'a [(String, String, EnvKind)],
    /// Read-only roots.
    pub(crate) read: &'a [PathBuf],
    /// Network needs.
    pub(crate) needs: &'a [Need],
    /// Grant the registry of package runners.
    pub(crate) allow_registry: bool,
}

/// Where an env entry of the policy comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnvKind {
    /// A plaintext secret moved into the store.
    Moved,
    /// Still set by the client config; passed through from palisade's environment.
    FromClient,
    /// Named by the client's pass-through list (Codex `env_vars`).
    Passthrough,
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| toml_str(&s)).collect();
    format!("[{}]", items.join(", "))
}

/// The first lines of a new policy file.
pub(crate) fn header(client: &str, config: &Path, policy: &Path) -> String {
    format!(
        "# palisade policy for the MCP servers of {client} ({config}), written by `palisade wrap`.
#
# Each [servers.NAME] table is one server of that config, which now starts it with
# `palisade run --policy {policy} --server NAME -- <its original command>`.
# It runs in the OS sandbox: it sees its own install and the folders listed here (read-only), an empty
# HOME, and no network unless its `network.allow` names hosts. Edit freely and check your changes with
# `palisade policy check {policy}`. `palisade wrap` only appends tables for servers it wraps later;
# `palisade unwrap` removes this file only if it is still as wrap left it. See docs/wrap.md.
version = 1
",
        config = config.display(),
        policy = policy.display(),
    )
}

/// One server's tables.
pub(crate) fn table(t: &Table<'_>) -> String {
    let key = format!("servers.{}", toml_key(t.name));
    let mut s = format!(
        "\n# `{}`, wrapped by `palisade wrap`.\n[{key}]\ncommand = {}\n",
        t.entry.replace('\n', " "),
        list(t.argv.iter().cloned())
    );
    if !t.env.is_empty() {
        s.push_str(&format!("\n[{key}.env]\n"));
        for (kind, comment) in [
            (
                EnvKind::Moved,
                "# Plaintext secrets moved out of the client config into palisade's secret store\n# (`palisade secret list`); resolved when the server starts.\n",
            ),
            (
                EnvKind::FromClient,
                "# Set by the client config, which still holds them; passed on from palisade's environment.\n",
            ),
            (
                EnvKind::Passthrough,
                "# Passed through from the client's environment (its `env_vars`); the server does not start\n# while one is unset.\n",
            ),
        ] {
            let vars: Vec<_> = t.env.iter().filter(|(_, _, k)| *k == kind).collect();
            if vars.is_empty() {
                continue;
            }
            s.push_str(comment);
            for (var, reference, _) in vars {
                s.push_str(&format!("{} = {}\n", toml_key(var), toml_str(reference)));
            }
        }
    }
    if !t.read.is_empty() {
        let roots = list(t.read.iter().map(|p| p.display().to_string()));
        s.push_str(&format!(
            "\n[{key}.filesystem]\n# Folders named in the server's arguments, read-only.\nread = {roots}\n# To let the server write there too (e.g. a filesystem server's write tools):\n# write = {roots}\n"
        ));
    }
    s.push_str(&format!("\n[{key}.network]\n"));
    let mut suggested: Vec<String> = Vec::new();
    let mut granted: Vec<String> = Vec::new();
    for n in t.needs {
        let grant = n.to_start && t.allow_registry;
        s.push_str(&format!(
            "# {}{}.\n",
            n.why,
            if grant {
                " (allowed: `palisade wrap --allow-registry`)"
            } else {
                ""
            }
        ));
        if let (Some(i), false) = (&n.install, grant) {
            s.push_str(&format!(
                "# Or, without any network: `{i}` (it then runs from palisade's store).\n"
            ));
        }
        for h in &n.hosts {
            if !suggested.contains(h) {
                suggested.push(h.clone());
            }
            if grant && !granted.contains(h) {
                granted.push(h.clone());
            }
        }
    }
    if t.needs.is_empty() {
        s.push_str("# No network: nothing suggests this server needs any.\n");
    } else if suggested.len() > granted.len() {
        s.push_str(&format!(
            "# To allow them (docs/sandbox.md, \"The egress proxy\"):\n# allow = {}\n",
            list(suggested.iter().cloned())
        ));
    }
    s.push_str(&format!("allow = {}\n", list(granted)));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_parses_and_grants_only_what_it_says() {
        let argv = vec![
            "npx".to_owned(),
            "-y".into(),
            "@modelcontextprotocol/server-github".into(),
        ];
        let needs = crate::known::needs(&argv);
        let env = vec![
            (
                "GITHUB_TOKEN".to_owned(),
                "keychain:x-GITHUB_TOKEN".to_owned(),
                EnvKind::Moved,
            ),
            (
                "DEBUG".to_owned(),
                "env:DEBUG".to_owned(),
                EnvKind::FromClient,
            ),
        ];
        let read = vec![PathBuf::from("/srv/data")];
        let t = Table {
            name: "claude-desktop-github",
            entry: "github",
            argv: &argv,
            env: &env,
            read: &read,
            needs: &needs,
            allow_registry: false,
        };
        let text =
            header("Claude Desktop", Path::new("/c.json"), Path::new("/p.toml")) + &table(&t);
        let diags = palisade_policy::check(&text, "gen");
        assert!(!diags.has_errors(), "{text}\n{:?}", diags.codes());
        let file = palisade_policy::PolicyFile::parse(&text, "gen").unwrap();
        let cmd = file.server_command("claude-desktop-github").unwrap();
        assert_eq!(cmd.argv, argv);
        assert_eq!(cmd.env.len(), 2);
        assert!(text.contains("allow = []\n"), "{text}");
        assert!(
            text.contains("# allow = [\"registry.npmjs.org\", \"api.github.com\"]"),
            "{text}"
        );

        let t = Table {
            allow_registry: true,
            ..t
        };
        let text = header("C", Path::new("/c"), Path::new("/p")) + &table(&t);
        assert!(
            text.contains("allow = [\"registry.npmjs.org\"]\n"),
            "{text}"
        );
        assert!(!palisade_policy::check(&text, "gen").has_errors());
    }
}
