//! `project-auto-enable`: Claude Code's `enableAllProjectMcpServers` is on.
//!
//! *Why:* with it, Claude Code starts every server a project's `.mcp.json` declares without asking, so
//! opening a cloned repository runs whatever commands its author put there. When the switch is in the
//! project's own `.claude/settings.json`, the repository approves itself.

use super::{Check, FileCtx, Rule, finding_at};
use crate::client::Scope;
use crate::report::{Finding, RuleMeta, Severity};

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "project-auto-enable",
        severity: Severity::High,
        title: "Project MCP servers start without approval",
        why: "Opening a repository runs every command its .mcp.json declares, without asking: a cloned repository can run code as you.",
        fix: "Remove `enableAllProjectMcpServers` (or set it to false) and approve project servers by name (`enabledMcpjsonServers`).",
    },
    check: Check::File(check),
};

fn check(cx: &FileCtx<'_>, out: &mut Vec<Finding>) {
    for a in &cx.file.auto_enable {
        let (message, key) = match (&a.project, cx.file.scope) {
            (Some(p), _) => (
                format!(
                    "`{}` is on for project {p}: its .mcp.json servers start without asking",
                    a.key
                ),
                format!(
                    "auto-enable:{}",
                    p.rsplit(['/', '\\']).find(|c| !c.is_empty()).unwrap_or(p)
                ),
            ),
            (None, Scope::Project) => (
                format!(
                    "this project's settings turn `{}` on: opening the repository starts its servers without asking",
                    a.key
                ),
                "auto-enable".to_owned(),
            ),
            (None, Scope::User) => (
                format!(
                    "`{}` is on: every project's .mcp.json servers start without asking",
                    a.key
                ),
                "auto-enable".to_owned(),
            ),
        };
        out.push(finding_at(
            cx.file,
            &RULE.meta,
            &a.span,
            None,
            key,
            message,
            format!("delete `\"{}\": true` (or set it to false) and approve project servers by name in `enabledMcpjsonServers`", a.key),
        ));
    }
}
