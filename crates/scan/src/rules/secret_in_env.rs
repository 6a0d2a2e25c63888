//! `secret-in-env`: a credential written in plaintext as a server's environment value.
//!
//! *Why:* the config file is read by every tool that looks at it, copied into backups and dotfile repos,
//! and (for project configs) committed. A token in it is a token anyone with the file has.
//!
//! *Not flagged:* references (`${GITHUB_TOKEN}`, `${env:X}`, `${input:x}`), placeholders
//! (`your-token-here`, `<TOKEN>`, `xxxx`) and documented example keys; see [`crate::secrets`].

use super::{Check, Rule, ServerCtx, inner_span, secret_fix};
use crate::report::{Finding, RuleMeta, Severity};
use crate::secrets;

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "secret-in-env",
        severity: Severity::High,
        title: "Plaintext secret in a server's env",
        why: "Anyone who can read the config file (backups, dotfile repos, other tools, a committed project config) has the credential.",
        fix: "Store the secret in the OS keychain (`palisade secret set NAME`) and reference it, or take it from the environment; rotate the exposed credential.",
    },
    check: Check::Server(check),
};

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    for var in &cx.server.env {
        let Some(value) = &var.value else { continue };
        for hit in secrets::scan(&value.value, Some(&var.name.value)) {
            let mut f = cx.finding(
                &RULE.meta,
                &inner_span(cx.file, value, &hit.range),
                format!("env:{}:{}", var.name.value, hit.kind),
                format!("env `{}` holds {}", var.name.value, hit.describe()),
                secret_fix(cx.file, &var.name.value),
            );
            f.evidence = Some(hit.shown);
            out.push(f);
        }
    }
}
