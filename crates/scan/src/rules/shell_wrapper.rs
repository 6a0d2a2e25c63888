//! `shell-wrapper`: the server is started through inline code: `bash -c '…'`, `sh -c`, `node -e`,
//! `python -c`, `powershell -Command`, `cmd /c "…"`.
//!
//! *Why:* what really runs is hidden in a string: it can chain commands, read files, expand variables, and
//! none of that is visible to the client, to reviewers, or to the other rules (an unpinned package or a
//! secret inside the script goes unnoticed). `cmd /c npx …` with separate arguments is not flagged: it is
//! the ordinary way to start npx on Windows and is looked through.

use super::{Check, Rule, ServerCtx};
use crate::launch::inline_script;
use crate::report::{Finding, RuleMeta, Severity};

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "shell-wrapper",
        severity: Severity::Medium,
        title: "Server started through inline shell or interpreter code",
        why: "What runs is hidden in a string that can chain commands and read files; clients, reviewers and the other checks cannot see into it.",
        fix: "Put the program and its arguments directly in `command`/`args` (or in a reviewed script file).",
    },
    check: Check::Server(check),
};

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let Some(s) = inline_script(&cx.launch.argv) else {
        return;
    };
    if super::curl_pipe_shell::pipes_download(&s.code.value) {
        return; // Reported, more severely, as curl-pipe-shell.
    }
    out.push(cx.finding(
        &RULE.meta,
        &s.code.span,
        "inline-script",
        format!("starts through `{} {}` with inline code, which hides what really runs", s.interpreter, s.flag.value),
        "put the real program in `command` and its words in `args` (e.g. `\"command\": \"npx\", \"args\": [\"-y\", \"pkg@1.2.3\"]`), or move the code into a reviewed script file",
    ));
}
