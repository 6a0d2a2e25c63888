//! `not-wrapped`: a local (stdio) server the client starts directly, not through `palisade run`.
//!
//! *Why:* nothing stands between the model and the server: no sandbox, no argument guards, no tool
//! pinning, no audit trail. Low, because it is every config's starting point; `palisade wrap` fixes it.
//! Remote (URL) servers are not flagged: `palisade run` wraps processes.

use super::{Check, Rule, ServerCtx};
use crate::report::{Finding, RuleMeta, Severity};

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "not-wrapped",
        severity: Severity::Low,
        title: "Server runs without palisade",
        why: "No sandbox, argument guards, tool pinning or audit trail stand between the model and the server.",
        fix: "`palisade wrap` (or set `\"command\": \"palisade\", \"args\": [\"run\", \"--\", …the original command…]`).",
    },
    check: Check::Server(check),
};

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let s = cx.server;
    if s.disabled || s.command.is_none() || s.url.is_some() || cx.launch.palisade.is_some() {
        return;
    }
    let words = cx.launch.masked_words();
    out.push(cx.finding(
        &RULE.meta,
        &cx.command_span(),
        "not-wrapped",
        "runs unguarded: no sandbox, argument guards, tool pins or audit log",
        format!(
            "`palisade wrap --config {}` (or by hand: `\"command\": \"palisade\", \"args\": [\"run\", \"--\", {}]`)",
            cx.file.path.display(),
            words.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>().join(", ")
        ),
    ));
}
