//! `remote-without-auth`: a remote server whose entry carries no credential: no `Authorization`-like
//! header, no token from the environment (Codex `bearer_token_env_var`, `env_http_headers`), no
//! credential in the URL.
//!
//! *Why:* an endpoint that needs no credential can be used by anyone who reaches it, and a local one by
//! any process or web page on this machine (CVE-2025-49596). Low, because clients sign in to many remote
//! servers with OAuth, which leaves nothing in the config: then there is nothing to fix.

use super::{Check, Rule, ServerCtx};
use crate::report::{Finding, RuleMeta, Severity};
use crate::secrets::is_secret_name;

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "remote-without-auth",
        severity: Severity::Low,
        title: "Remote server configured without credentials",
        why: "Unless the client signs in with OAuth, an endpoint that needs no credential can be used by anyone (or any local process or web page) that reaches it.",
        fix: "If the server uses OAuth, nothing to do; otherwise require a token and send it from the environment or keychain.",
    },
    check: Check::Server(check),
};

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let s = cx.server;
    let Some(url) = &s.url else { return };
    if s.command.is_some() || s.auth_from_env {
        return;
    }
    let header_auth = s.headers.iter().any(|h| {
        let n = h.name.value.to_ascii_lowercase();
        is_secret_name(&n)
            || matches!(
                n.as_str(),
                "cookie" | "x-api-key" | "api-key" | "x-auth-token" | "x-goog-api-key"
            )
    });
    let url_auth = url
        .value
        .split_once("://")
        .is_some_and(|(_, r)| r.split(['/', '?', '#']).next().unwrap_or("").contains('@'))
        || url.value.split_once('?').is_some_and(|(_, q)| {
            q.split('&').any(|kv| {
                is_secret_name(kv.split('=').next().unwrap_or("")) || kv.starts_with("key=")
            })
        });
    if header_auth || url_auth {
        return;
    }
    out.push(cx.finding(
        &RULE.meta,
        &url.span,
        "no-auth",
        "sends no credential: fine if the client signs in with OAuth, otherwise anyone who reaches it can use it",
        "if the server does not use OAuth, require a token on it and send `Authorization: Bearer …` from an environment variable (not written in the file)",
    ));
}
