//! `curl-pipe-shell`: the server's start downloads code and runs it (`curl … | sh`, `wget -O- … | bash`,
//! `bash <(curl …)`, `iwr … | iex`).
//!
//! *Why:* every start runs whatever that URL serves at that moment, unreviewed, with your rights.

use std::sync::LazyLock;

use regex::Regex;

use super::{Check, Rule, ServerCtx};
use crate::launch::inline_script;
use crate::report::{Finding, RuleMeta, Severity};

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "curl-pipe-shell",
        severity: Severity::Critical,
        title: "Server start downloads code and runs it",
        why: "Every start runs whatever the URL serves at that moment, unreviewed, with your rights.",
        fix: "Download the script once, review it, pin it (or the package it installs) and run the local copy.",
    },
    check: Check::Server(check),
};

static PIPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
        \b(?:curl|wget|iwr|irm|invoke-webrequest|invoke-restmethod)\b[^|;&]*\|\s*(?:sudo\s+)?(?:env\s+)?
            (?:sh|bash|zsh|dash|ksh|python[0-9.]*|node|perl|ruby|iex|invoke-expression)\b
        | (?:sh|bash|zsh|source|\.)\s+<\(\s*(?:curl|wget)\b
        | \$\(\s*(?:curl|wget)\b",
    )
    .expect("valid regex")
});

/// Whether shell code pipes a download into an interpreter.
pub(crate) fn pipes_download(code: &str) -> bool {
    PIPE.is_match(code)
}

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let Some(s) = inline_script(&cx.launch.argv) else {
        return;
    };
    if !pipes_download(&s.code.value) {
        return;
    }
    out.push(cx.finding(
        &RULE.meta,
        &s.code.span,
        "curl-pipe",
        "downloads code and runs it at every start, unreviewed",
        "download the script once, read it, pin what it installs, and point `command` at the reviewed local copy",
    ));
}

#[cfg(test)]
mod tests {
    use super::pipes_download;

    #[test]
    fn spots_download_into_interpreter() {
        for c in [
            "curl -fsSL https://x.sh | sh",
            "wget -qO- https://x | sudo bash -s --",
            "bash <(curl -s https://x)",
            "sh -c \"$(curl -fsSL https://x)\"",
            "iwr https://x | iex",
        ] {
            assert!(pipes_download(c), "{c}");
        }
        for c in [
            "curl -o x https://x && sha256sum -c x.sha",
            "npx -y pkg@1 | tee log",
            "echo curl",
        ] {
            assert!(!pipes_download(c), "{c}");
        }
    }
}
