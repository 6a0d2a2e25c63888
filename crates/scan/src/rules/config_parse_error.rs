//! `config-parse-error`: a config palisade found but could not read or parse.
//!
//! *Why:* nothing in it was checked. The client may still load it (some accept more than JSON), so it is
//! reported rather than silently skipped.

use super::{Check, FileCtx, Rule, finding_at};
use crate::report::{Finding, RuleMeta, Severity};

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "config-parse-error",
        severity: Severity::Low,
        title: "Config could not be read, so it was not checked",
        why: "Servers in a file palisade cannot parse are not checked at all.",
        fix: "Fix the syntax error at the position shown (or the file's permissions), then scan again.",
    },
    check: Check::File(check),
};

fn check(cx: &FileCtx<'_>, out: &mut Vec<Finding>) {
    let Some(e) = &cx.file.error else { return };
    let at = e.offset.unwrap_or(0);
    let fix = match e.offset {
        Some(_) => {
            let p = cx.file.pos(at);
            format!(
                "fix the syntax at line {}, column {}, then run `palisade scan` again",
                p.line, p.column
            )
        }
        None => "make the file readable by you, then run `palisade scan` again".to_owned(),
    };
    out.push(finding_at(
        cx.file,
        &RULE.meta,
        &(at..at),
        None,
        "parse",
        format!("could not be checked: {}", e.message),
        fix,
    ));
}
