//! `container-not-hardened`: `docker run` without `--read-only`, `--network none` and `--cap-drop ALL`.
//!
//! *Why:* a container is only a sandbox if it is told to be one: by default it can write its filesystem,
//! reach any host, and keep Docker's default capabilities. Low, because many servers need the network
//! (then keep it, and prefer palisade's egress allowlist).

use super::{Check, Rule, ServerCtx};
use crate::launch::docker_run;
use crate::report::{Finding, RuleMeta, Severity};

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "container-not-hardened",
        severity: Severity::Low,
        title: "Container runs without --read-only, --network none or --cap-drop ALL",
        why: "Without them the server can modify its image's filesystem, reach any host, and keep Docker's default capabilities.",
        fix: "Add `--read-only --cap-drop ALL`, and `--network none` unless the server needs the network.",
    },
    check: Check::Server(check),
};

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let Some(d) = docker_run(&cx.launch.argv) else {
        return;
    };
    if d.image.is_none() {
        return;
    }
    let mut missing = Vec::new();
    if d.flag("--read-only").is_none() {
        missing.push("--read-only");
    }
    if !d.values("--network").any(|(v, _)| v == "none") {
        missing.push("--network none");
    }
    if !d
        .values("--cap-drop")
        .any(|(v, _)| v.eq_ignore_ascii_case("all"))
    {
        missing.push("--cap-drop ALL");
    }
    if missing.is_empty() {
        return;
    }
    let list = missing.join(" ");
    out.push(cx.finding(
        &RULE.meta,
        &d.run.span,
        "container-hardening",
        format!("`{} run` lacks {}", d.engine, missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")),
        format!(
            "add `{list}` after `run`{}",
            if missing.contains(&"--network none") {
                " (drop `--network none` if the server must reach an API, and list its hosts with palisade's `--allow-net` instead)"
            } else {
                ""
            }
        ),
    ));
}
