//! `container-privileged`: `--privileged`, or the Docker/Podman socket mounted into the container.
//!
//! *Why:* either one is root on the host: `--privileged` disables the container's isolation, and whoever
//! holds the Docker socket can start a privileged container that mounts `/`.

use super::{Check, Rule, ServerCtx};
use crate::launch::docker_run;
use crate::report::{Finding, RuleMeta, Severity};

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "container-privileged",
        severity: Severity::Critical,
        title: "Container is privileged or holds the Docker socket",
        why: "`--privileged` or access to the Docker socket is root on the host: the server can escape the container at will.",
        fix: "Remove `--privileged` and the docker.sock mount; grant only the specific device or capability the server needs.",
    },
    check: Check::Server(check),
};

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let Some(d) = docker_run(&cx.launch.argv) else {
        return;
    };
    if let Some(p) = d.flag("--privileged") {
        out.push(cx.finding(
            &RULE.meta,
            &p.span,
            "privileged",
            format!(
                "`{} run --privileged` gives the server root on the host",
                d.engine
            ),
            "remove `--privileged`; add only the capability or `--device` the server really needs",
        ));
    }
    for (src, arg) in d.bind_sources() {
        if src.ends_with("docker.sock") || src.ends_with("podman.sock") {
            out.push(cx.finding(
                &RULE.meta,
                &arg.span,
                format!("socket:{src}"),
                format!("mounts `{src}`: whoever holds the container engine's socket is root on the host"),
                format!("remove the `{src}` mount"),
            ));
        }
    }
}
