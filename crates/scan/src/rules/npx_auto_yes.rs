//! `npx-auto-yes`: `npx -y` / `npm exec --yes` installs a package without asking.
//!
//! *Why:* `-y` turns off the one prompt that would show a person what is about to be installed; with an
//! unpinned spec (see `unpinned-package`) it installs whatever is newest, silently. With an exact version
//! it is the usual way clients start npm servers, so this is low.

use super::{Check, Rule, ServerCtx};
use crate::launch::{Ecosystem, package_run};
use crate::report::{Finding, RuleMeta, Severity};

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "npx-auto-yes",
        severity: Severity::Low,
        title: "npx installs packages without asking (-y)",
        why: "`-y` skips the prompt that shows what is about to be installed; combined with an unpinned spec, whatever is published next is installed and run silently.",
        fix: "Pin the exact version (then `-y` installs only that), or install the package once and run its binary directly.",
    },
    check: Check::Server(check),
};

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let Some(run) = package_run(&cx.launch.argv) else {
        return;
    };
    let Some(yes) = run.auto_yes else { return };
    if run.ecosystem != Ecosystem::Npm {
        return;
    }
    let name = super::unpinned_package::package_name(run.ecosystem, &run.spec_value);
    out.push(cx.finding(
        &RULE.meta,
        &yes.span,
        "npx-yes",
        format!("`{} {}` installs `{}` without asking", run.runner, yes.value, run.spec_value),
        format!(
            "keep `{}` only with an exact version (`{name}@<version>`), or `npm install -g {name}@<version>` once and run its binary",
            yes.value
        ),
    ));
}
