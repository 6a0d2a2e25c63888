//! `secret-in-header`: a credential written in plaintext as an HTTP header of a remote server.

use super::{Check, Rule, ServerCtx, inner_span, secret_fix};
use crate::report::{Finding, RuleMeta, Severity};
use crate::secrets;

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "secret-in-header",
        severity: Severity::High,
        title: "Plaintext secret in a remote server's headers",
        why: "Anyone who can read the config file has the credential the remote server accepts.",
        fix: "Reference the token instead of writing it (an environment variable or an input the client prompts for); rotate the exposed credential.",
    },
    check: Check::Server(check),
};

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    for h in &cx.server.headers {
        let Some(value) = &h.value else { continue };
        for hit in secrets::scan(&value.value, Some(&h.name.value)) {
            let mut f = cx.finding(
                &RULE.meta,
                &inner_span(cx.file, value, &hit.range),
                format!("header:{}:{}", h.name.value.to_ascii_lowercase(), hit.kind),
                format!("header `{}` holds {}", h.name.value, hit.describe()),
                secret_fix(
                    cx.file,
                    if h.name.value.eq_ignore_ascii_case("authorization") {
                        secrets::suggested_name(hit.kind)
                    } else {
                        &h.name.value
                    },
                ),
            );
            f.evidence = Some(hit.shown);
            out.push(f);
        }
    }
}
