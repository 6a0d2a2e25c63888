//! `insecure-remote-url`: a remote server reached over plain `http://` on a host other than this machine.
//!
//! *Why:* anyone on the network path reads and rewrites the traffic: tool results the model trusts, and
//! any token sent along. Loopback (`localhost`, `127.0.0.0/8`, `[::1]`) is exempt: it never leaves the
//! machine.

use super::{Check, Rule, ServerCtx};
use crate::report::{Finding, RuleMeta, Severity};

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "insecure-remote-url",
        severity: Severity::High,
        title: "Remote server over plain http://",
        why: "Anyone on the network path can read and rewrite tool calls and results, and steal any credential sent along.",
        fix: "Use `https://`.",
    },
    check: Check::Server(check),
};

/// The host of an `http(s)://` URL (lower-case, brackets of IPv6 kept off), and whether it is `http`.
pub(crate) fn host(url: &str) -> Option<(bool, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let plain = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws");
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    Some((plain, host.to_ascii_lowercase()))
}

/// Whether `host` is this machine.
pub(crate) fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "::1"
        || host == "0:0:0:0:0:0:0:1"
        || host == "0.0.0.0"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let Some(url) = &cx.server.url else { return };
    let Some((true, h)) = host(&url.value) else {
        return;
    };
    if is_loopback(&h) {
        return;
    }
    out.push(cx.finding(
        &RULE.meta,
        &url.span,
        "http",
        format!(
            "talks to `{h}` over plain http: anyone on the path can read and change the traffic"
        ),
        format!(
            "use `https://{}`",
            url.value.split_once("://").map_or("", |(_, r)| r)
        ),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_loopback() {
        assert_eq!(
            host("http://user:p@Example.com:8080/mcp"),
            Some((true, "example.com".into()))
        );
        assert_eq!(host("https://[::1]:3000/"), Some((false, "::1".into())));
        assert!(is_loopback("127.0.0.2") && is_loopback("localhost") && is_loopback("::1"));
        assert!(!is_loopback("10.0.0.1") && !is_loopback("localhost.evil.com"));
    }
}
