//! `image-not-pinned-by-digest`: `docker run` / `podman run` of an image by tag (`:latest`, `:1.2`, or
//! none) rather than by `@sha256:` digest.
//!
//! *Why:* a tag is a pointer the publisher (or whoever takes over the repository) can move; a digest names
//! exactly one image.

use super::{Check, Rule, ServerCtx};
use crate::launch::docker_run;
use crate::report::{Finding, RuleMeta, Severity};

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "image-not-pinned-by-digest",
        severity: Severity::Medium,
        title: "Container image referenced by tag, not digest",
        why: "A tag can be moved to a different image at any time; the next pull runs whatever it points to then.",
        fix: "Reference the image by digest: `IMAGE@sha256:…` (`docker inspect --format '{{index .RepoDigests 0}}' IMAGE`).",
    },
    check: Check::Server(check),
};

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let Some(d) = docker_run(&cx.launch.argv) else {
        return;
    };
    let Some(image) = d.image else { return };
    if image.value.contains("@sha256:") {
        return;
    }
    let tag = image
        .value
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map_or("no tag (so `latest`)".to_owned(), |(_, t)| {
            format!("tag `{t}`")
        });
    out.push(cx.finding(
        &RULE.meta,
        &image.span,
        format!("image:{}", image.value),
        format!("image `{}` is pulled by {tag}, which can be moved to another image", image.value),
        format!(
            "`{e} pull {i}`, then `{e} inspect --format '{{{{index .RepoDigests 0}}}}' {i}`, and use the `…@sha256:…` it prints",
            e = d.engine,
            i = image.value
        ),
    ));
}
