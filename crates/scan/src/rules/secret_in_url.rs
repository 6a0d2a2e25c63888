//! `secret-in-url`: a credential inside a remote server's URL (a password in `user:pass@`, a token in the
//! query string).
//!
//! *Why:* besides sitting in the file, URLs are logged by clients, proxies and servers, and shown in UIs.

use super::{Check, Rule, ServerCtx, inner_span};
use crate::report::{Finding, RuleMeta, Severity};
use crate::secrets;

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "secret-in-url",
        severity: Severity::High,
        title: "Secret inside a remote server's URL",
        why: "URLs are logged by clients, proxies and servers and shown in UIs, besides sitting in the config file.",
        fix: "Send the credential in an Authorization header taken from the environment or keychain, not in the URL; rotate the exposed credential.",
    },
    check: Check::Server(check),
};

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let Some(url) = &cx.server.url else { return };
    for hit in secrets::scan(&url.value, None) {
        let mut f = cx.finding(
            &RULE.meta,
            &inner_span(cx.file, url, &hit.range),
            format!("url:{}", hit.kind),
            format!("the URL holds {}", hit.describe()),
            "remove it from the URL and send it as `Authorization: Bearer …` from an environment variable or `palisade secret`; then rotate it",
        );
        f.evidence = Some(hit.shown);
        out.push(f);
    }
}
