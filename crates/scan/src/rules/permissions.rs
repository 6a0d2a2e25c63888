//! File permission rules: `secrets-file-readable-by-others`, `config-writable-by-others`,
//! `config-readable-by-others`.
//!
//! *Why:* a config that other local users can **write** lets them add a server that the client will run
//! as you (code execution). One they can **read** hands them any plaintext secret in it; without secrets
//! it only reveals what you run (low). Project configs live in repositories and are meant to be shared,
//! so only write access is flagged for them. Only the file's own mode bits are checked (a 0700 parent
//! directory also protects it, which the fix mentions).

use super::{Check, FileCtx, Rule, finding_at};
use crate::client::Scope;
use crate::report::{Finding, RuleMeta, Severity};

pub(crate) static SECRETS_READABLE: Rule = Rule {
    meta: RuleMeta {
        id: "secrets-file-readable-by-others",
        severity: Severity::High,
        title: "Config with plaintext secrets is readable by other users",
        why: "Every local user (and any process running as them) can read the secrets in this file.",
        fix: "`chmod 600 FILE`, and move the secrets out of it (`palisade wrap`).",
    },
    check: Check::File(secrets_readable),
};

pub(crate) static WRITABLE: Rule = Rule {
    meta: RuleMeta {
        id: "config-writable-by-others",
        severity: Severity::High,
        title: "Config is writable by other users",
        why: "Anyone who can write the file can add a server that the client starts as you: code execution in your account.",
        fix: "`chmod 600 FILE` (or `chmod go-w FILE`).",
    },
    check: Check::File(writable),
};

pub(crate) static READABLE: Rule = Rule {
    meta: RuleMeta {
        id: "config-readable-by-others",
        severity: Severity::Low,
        title: "Config is readable by other users",
        why: "Other local users can see which servers you run and with what arguments; any secret added later would be exposed.",
        fix: "`chmod 600 FILE`.",
    },
    check: Check::File(readable),
};

fn mode(cx: &FileCtx<'_>) -> Option<u32> {
    cx.file.error.as_ref().map_or(Some(()), |_| None)?;
    cx.file.mode
}

fn has_secrets(cx: &FileCtx<'_>) -> bool {
    cx.findings.iter().any(|f| f.rule.starts_with("secret-in-"))
}

fn whole_file(cx: &FileCtx<'_>) -> std::ops::Range<usize> {
    0..cx.file.text.find('\n').unwrap_or(cx.file.text.len())
}

fn secrets_readable(cx: &FileCtx<'_>, out: &mut Vec<Finding>) {
    let Some(m) = mode(cx) else { return };
    if m & 0o044 != 0 && has_secrets(cx) {
        let p = cx.file.path.display();
        out.push(finding_at(
            cx.file,
            &SECRETS_READABLE.meta,
            &whole_file(cx),
            None,
            "mode",
            format!("holds plaintext secrets and is readable by {} (mode {:04o})", who(m & 0o044), m & 0o7777),
            format!("`chmod 600 {p}` now, then move the secrets out (`palisade wrap --config {p}`) and rotate them"),
        ));
    }
}

fn writable(cx: &FileCtx<'_>, out: &mut Vec<Finding>) {
    let Some(m) = mode(cx) else { return };
    if m & 0o022 != 0 {
        let p = cx.file.path.display();
        out.push(finding_at(
            cx.file,
            &WRITABLE.meta,
            &whole_file(cx),
            None,
            "mode",
            format!("is writable by {} (mode {:04o}): they can add a server that runs as you", who((m & 0o022) << 1), m & 0o7777),
            format!("`chmod go-w {p}` (or `chmod 600 {p}`), and check that no server was added that you did not write"),
        ));
    }
}

fn readable(cx: &FileCtx<'_>, out: &mut Vec<Finding>) {
    let Some(m) = mode(cx) else { return };
    if m & 0o044 != 0 && !has_secrets(cx) && cx.file.scope == Scope::User {
        let p = cx.file.path.display();
        out.push(finding_at(
            cx.file,
            &READABLE.meta,
            &whole_file(cx),
            None,
            "mode",
            format!(
                "is readable by {} (mode {:04o})",
                who(m & 0o044),
                m & 0o7777
            ),
            format!("`chmod 600 {p}`"),
        ));
    }
}

/// "group", "others" or "group and others" for read bits `0o044`-style.
fn who(read_bits: u32) -> &'static str {
    match (read_bits & 0o040 != 0, read_bits & 0o004 != 0) {
        (true, true) => "group and others",
        (true, false) => "its group",
        _ => "all other users",
    }
}
