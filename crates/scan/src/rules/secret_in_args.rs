//! `secret-in-args`: a credential in a server's command-line arguments.
//!
//! *Why:* worse than a secret in `env`: besides sitting in the file, a process's arguments are visible to
//! every local user (`ps`, `/proc/PID/cmdline`) for as long as the server runs, and end up in shell
//! history and crash reports.

use super::{Check, Rule, ServerCtx, inner_span, secret_fix};
use crate::report::{Finding, RuleMeta, Severity};
use crate::secrets;

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "secret-in-args",
        severity: Severity::Critical,
        title: "Plaintext secret in a server's arguments",
        why: "Command-line arguments are readable by every local user (`ps`, /proc/PID/cmdline) while the server runs, besides sitting in the config file.",
        fix: "Pass the secret through the environment from the OS keychain (`palisade secret set NAME`, then `palisade wrap`), never as an argument; rotate the exposed credential.",
    },
    check: Check::Server(check),
};

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let args = &cx.server.args;
    for (i, arg) in args.iter().enumerate() {
        // `--token VALUE`: the flag names the value. (`--token=VALUE` and `NAME=VALUE` are found by the
        // key=value pattern inside the argument itself.)
        let hint = i
            .checked_sub(1)
            .map(|p| args[p].value.as_str())
            .filter(|p| p.starts_with('-') && !p.contains('='));
        let (assign_name, _) = arg.value.split_once('=').unwrap_or(("", ""));
        for hit in secrets::scan(&arg.value, hint) {
            let name = hint
                .map(|h| h.trim_start_matches('-').to_owned())
                .or_else(|| {
                    Some(assign_name.trim_start_matches('-').to_owned()).filter(|n| {
                        !n.is_empty()
                            && n.chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    })
                })
                .unwrap_or_else(|| secrets::suggested_name(hit.kind).to_owned());
            let mut f = cx.finding(
                &RULE.meta,
                &inner_span(cx.file, arg, &hit.range),
                format!("arg:{i}:{}", hit.kind),
                format!(
                    "argument {} holds {}, visible to every local user while the server runs",
                    i + 1,
                    hit.describe()
                ),
                secret_fix(cx.file, &name),
            );
            f.evidence = Some(hit.shown);
            out.push(f);
        }
    }
}
