//! `unpinned-package`: a package runner (npx, uvx, pipx run, bunx, `pnpm dlx`, `yarn dlx`, `npm exec`,
//! `uv tool run`) fetches a package without an exact version.
//!
//! *Why:* the client downloads and runs whatever the registry serves at each start. One compromised
//! maintainer account or a typo-squatted release, and the next start runs it with your rights
//! (supply chain: DESIGN §1). An exact version (or a git commit hash) fixes what runs.

use super::{Check, Rule, ServerCtx};
use crate::launch::{Ecosystem, package_run, unpinned_reason};
use crate::report::{Finding, RuleMeta, Severity};

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "unpinned-package",
        severity: Severity::Medium,
        title: "Package fetched without an exact version",
        why: "Each start runs whatever the registry serves now: a compromised or hijacked release runs with your rights the next time the client starts.",
        fix: "Pin an exact, reviewed version (`pkg@1.2.3`, `pkg==1.2.3`) or a git commit hash.",
    },
    check: Check::Server(check),
};

/// The package name of a spec (`@s/p@1` → `@s/p`, `p==1` → `p`).
pub(crate) fn package_name(eco: Ecosystem, spec: &str) -> &str {
    match eco {
        Ecosystem::Npm => match spec.strip_prefix('@') {
            Some(rest) => rest.find('@').map_or(spec, |i| &spec[..i + 1]),
            None => spec.split('@').next().unwrap_or(spec),
        },
        Ecosystem::PyPi => spec
            .split(['=', '<', '>', '~', '!', '@', ';', ' ', '['])
            .next()
            .unwrap_or(spec),
    }
}

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let Some(run) = package_run(&cx.launch.argv) else {
        return;
    };
    let Some(reason) = unpinned_reason(run.ecosystem, &run.spec_value) else {
        return;
    };
    let name = package_name(run.ecosystem, &run.spec_value);
    let fix = match run.ecosystem {
        Ecosystem::Npm if run.spec_value.contains(':') || run.spec_value.contains('/') && !run.spec_value.starts_with('@') => {
            format!("pin a reviewed commit: `{}#<40-hex commit sha>`", run.spec_value.split('#').next().unwrap_or(name))
        }
        Ecosystem::Npm => format!(
            "pin an exact version you have reviewed: `{name}@<version>` (`npm view {name} version` shows the newest)"
        ),
        Ecosystem::PyPi => format!(
            "pin an exact version you have reviewed: `{name}=={{version}}` (`pip index versions {name}` lists them)"
        )
        .replace("{version}", "<version>"),
    };
    out.push(cx.finding(
        &RULE.meta,
        &run.spec.span,
        format!("package:{name}"),
        format!("`{}` runs `{}` with {reason}", run.runner, run.spec_value),
        fix,
    ));
}
