//! The rule registry: every check `palisade scan` runs, one file per rule, one line per rule in [`RULES`].
//!
//! A rule is data ([`RuleMeta`]: stable id, severity, title, why, fix) plus a check. A check sees one
//! server ([`ServerCtx`]: the file, the entry, what it [launches](crate::launch::Launch)) or one file
//! ([`FileCtx`], which also sees the findings its servers produced, so a permission rule can tell a file
//! holding secrets from one that does not). Checks push [`Finding`]s and never print; rendering is a
//! separate step (text, JSON, SARIF), and SARIF's `rules[]` and `docs/scan.md` list exactly [`RULES`].
//!
//! Ids are a public API: never rename or reuse one (the `ids_are_stable` test snapshots the list).

use std::ops::Range;
use std::path::Path;

use crate::Options;
use crate::config::{ConfigFile, ServerEntry, Text};
use crate::doc::Span;
use crate::launch::Launch;
use crate::report::{Finding, Location, RuleMeta};

mod broad_filesystem_root;
mod config_parse_error;
mod container_not_hardened;
mod container_privileged;
mod curl_pipe_shell;
mod image_not_pinned_by_digest;
mod insecure_remote_url;
mod not_wrapped;
mod npx_auto_yes;
mod permissions;
mod project_auto_enable;
mod remote_without_auth;
mod secret_in_args;
mod secret_in_env;
mod secret_in_header;
mod secret_in_url;
mod sensitive_env_passthrough;
mod shell_wrapper;
mod tools_never_reviewed;
mod unpinned_package;

/// One rule: its metadata and its check.
#[derive(Debug)]
pub struct Rule {
    /// Id, severity, title, why, fix.
    pub meta: RuleMeta,
    pub(crate) check: Check,
}

/// What a rule looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Check {
    /// Each server entry.
    Server(fn(&ServerCtx<'_>, &mut Vec<Finding>)),
    /// Each file, after its servers were checked.
    File(fn(&FileCtx<'_>, &mut Vec<Finding>)),
}

/// Every rule, in the order findings of equal severity are listed.
pub static RULES: &[&Rule] = &[
    &secret_in_args::RULE,
    &secret_in_env::RULE,
    &secret_in_header::RULE,
    &secret_in_url::RULE,
    &permissions::SECRETS_READABLE,
    &permissions::WRITABLE,
    &permissions::READABLE,
    &curl_pipe_shell::RULE,
    &container_privileged::RULE,
    &broad_filesystem_root::RULE,
    &insecure_remote_url::RULE,
    &project_auto_enable::RULE,
    &shell_wrapper::RULE,
    &unpinned_package::RULE,
    &image_not_pinned_by_digest::RULE,
    &sensitive_env_passthrough::RULE,
    &npx_auto_yes::RULE,
    &container_not_hardened::RULE,
    &remote_without_auth::RULE,
    &not_wrapped::RULE,
    &config_parse_error::RULE,
    &tools_never_reviewed::RULE,
];

/// The metadata of every rule (SARIF `rules[]`, docs).
pub fn metas() -> Vec<&'static RuleMeta> {
    RULES.iter().map(|r| &r.meta).collect()
}

/// The rule with this id.
pub fn by_id(id: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| r.meta.id == id)
}

/// What a server rule sees.
pub(crate) struct ServerCtx<'a> {
    pub(crate) file: &'a ConfigFile,
    pub(crate) server: &'a ServerEntry,
    pub(crate) launch: Launch<'a>,
    pub(crate) home: &'a Path,
    pub(crate) options: &'a Options<'a>,
}

/// What a file rule sees.
pub(crate) struct FileCtx<'a> {
    pub(crate) file: &'a ConfigFile,
    /// Findings this file's servers produced.
    pub(crate) findings: &'a [Finding],
}

/// A finding at `span` of `file`.
pub(crate) fn finding_at(
    file: &ConfigFile,
    rule: &RuleMeta,
    span: &Span,
    server: Option<&str>,
    key: impl Into<String>,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        rule: rule.id,
        severity: rule.severity,
        message: message.into(),
        fix: fix.into(),
        location: Some(Location {
            path: file.path.clone(),
            start: file.pos(span.start),
            end: file.pos(span.end.max(span.start)),
        }),
        client: Some(file.client.id()),
        server: server.map(str::to_owned),
        evidence: None,
        key: key.into(),
    }
}

impl ServerCtx<'_> {
    /// A finding about this server at `span`.
    pub(crate) fn finding(
        &self,
        rule: &RuleMeta,
        span: &Span,
        key: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        // The entry's pointer keeps same-named servers apart (`projects.<p>.mcpServers.x` per project);
        // a project path counts by its last component, so the identity does not depend on where the
        // project is checked out.
        let pointer: Vec<&str> = self
            .server
            .pointer
            .iter()
            .map(|k| match k.rsplit(['/', '\\']).find(|c| !c.is_empty()) {
                Some(last) if k.contains(['/', '\\']) => last,
                _ => k.as_str(),
            })
            .collect();
        let key = format!("{}|{}", pointer.join("/"), key.into());
        finding_at(
            self.file,
            rule,
            span,
            Some(&self.server.name),
            key,
            message,
            fix,
        )
    }

    /// Where the server entry's `command` is (or its key, when it has none).
    pub(crate) fn command_span(&self) -> Span {
        self.server
            .command
            .as_ref()
            .map_or(self.server.key_span.clone(), |c| c.span.clone())
    }
}

/// The span of bytes `range` of string `t` in the file, when the string was written without escapes
/// (else the whole string).
pub(crate) fn inner_span(file: &ConfigFile, t: &Text, range: &Range<usize>) -> Span {
    let raw = file.text.get(t.span.clone()).unwrap_or("");
    for q in ["\"\"\"", "'''", "\"", "'"] {
        if raw.len() >= 2 * q.len()
            && raw.starts_with(q)
            && raw.ends_with(q)
            && raw[q.len()..raw.len() - q.len()] == t.value
        {
            let s = t.span.start + q.len();
            return s + range.start..s + range.end;
        }
    }
    t.span.clone()
}

/// The client-specific way to keep a secret out of the file, for fixes.
pub(crate) fn secret_fix(file: &ConfigFile, name: &str) -> String {
    use crate::client::Client;
    let var = name
        .trim_start_matches('-')
        .to_ascii_uppercase()
        .replace(['-', '.'], "_");
    let how = match file.client {
        Client::VsCode => format!(
            "or use a VS Code input: `\"${{input:{}}}\"` with an `inputs` entry of `\"password\": true`",
            var.to_ascii_lowercase()
        ),
        Client::ClaudeCode => {
            format!("or let Claude Code expand it from the environment: `\"${{{var}}}\"`")
        }
        Client::Codex => format!("or pass it from the environment: `env_vars = [\"{var}\"]`"),
        _ => String::from("or pass it from the environment the client starts with"),
    };
    format!(
        "store it with `palisade secret set {var}` and reference it (`palisade wrap` rewrites the entry), {how}; then rotate it, since it has sat in this file in plaintext"
    )
}

#[cfg(test)]
mod tests;
