//! `tools-never-reviewed`: palisade's pins file holds no approved tool definitions for this server.
//!
//! *Why (info):* the tool descriptions the model reads were never looked at by a person, so a poisoned
//! description or a later rug pull would go unnoticed. The server name is the one `palisade run` uses:
//! `--server NAME` when the entry is wrapped with it, else the name derived from the command (the same
//! derivation, passed in by the binary). Only read when the caller supplies the pins.

use super::{Check, Rule, ServerCtx};
use crate::report::{Finding, RuleMeta, Severity};

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "tools-never-reviewed",
        severity: Severity::Info,
        title: "Tool descriptions never reviewed",
        why: "Nobody approved the tool definitions the model reads, so a poisoned description or a later change (rug pull) would go unnoticed.",
        fix: "`palisade inspect --server NAME -- CMD…`, read the tools, then `palisade pin accept --server NAME --all`.",
    },
    check: Check::Server(check),
};

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let Some(reviewed) = cx.options.reviewed else {
        return;
    };
    let s = cx.server;
    if s.disabled || s.command.is_none() || s.url.is_some() {
        return;
    }
    let words = cx.launch.words();
    let name = match cx.launch.palisade.as_ref().and_then(|p| p.server) {
        Some(n) => n.value.clone(),
        None if words.is_empty() => return,
        None => (cx.options.server_name)(&words),
    };
    if reviewed.contains(&name) {
        return;
    }
    let shown = cx.launch.masked_words();
    let cmd = if shown.is_empty() {
        "CMD…".to_owned()
    } else {
        shown.join(" ")
    };
    // The derived name comes from the arguments, so it is masked like them.
    let name = crate::secrets::masked_argv(&[name]).remove(0);
    out.push(cx.finding(
        &RULE.meta,
        &cx.command_span(),
        "pins",
        format!("no reviewed tool pins for `{name}`"),
        format!("`palisade inspect --server {name} -- {cmd}`, read the tools, then `palisade pin accept --server {name} --all`"),
    ));
}
