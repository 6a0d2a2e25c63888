//! `broad-filesystem-root`: a server is given `/`, a home directory, or a folder that contains (or is
//! inside) a credential store such as `~/.ssh` or `~/.aws`.
//!
//! Looked at: the server's arguments (`/path` and `--flag=/path`), `palisade run --allow-read/--allow-write`
//! values, and container bind mounts (`-v SRC:DST`, `--mount source=SRC`). `~`, `$HOME`, `${HOME}` and
//! `%USERPROFILE%` count as the home; `/home/NAME`, `/Users/NAME`, `/root` and `C:\Users\NAME` as someone's.
//!
//! *Why:* a filesystem server rooted at HOME hands the model (and any prompt injection steering it) your
//! SSH keys, cloud credentials and browser profiles.

use super::{Check, Rule, ServerCtx};
use crate::config::Text;
use crate::launch::{components, docker_run, flag_value, looks_like_path, package_run};
use crate::report::{Finding, RuleMeta, Severity};
use std::path::Path;

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "broad-filesystem-root",
        severity: Severity::High,
        title: "Server can reach `/`, a home directory or a credential store",
        why: "The server (and any prompt injection steering the model) can read SSH keys, cloud credentials and browser profiles under it.",
        fix: "Give the server only the project folders it needs.",
    },
    check: Check::Server(check),
};

/// Credential stores, relative to a home.
const SENSITIVE: &[&str] = &[
    ".ssh",
    ".aws",
    ".gnupg",
    ".kube",
    ".docker",
    ".azure",
    ".netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".password-store",
    ".config/gcloud",
    ".config/gh",
    ".config/google-chrome",
    ".config/chromium",
    ".mozilla",
    ".local/share/keyrings",
    "Library/Keychains",
    "Library/Application Support/Google/Chrome",
];

/// Why `path` is too broad a root, or `None`.
pub(crate) fn too_broad(path: &str, home: &Path) -> Option<String> {
    let home_s = home.to_string_lossy();
    let expanded = ["~", "$HOME", "${HOME}", "%USERPROFILE%"]
        .iter()
        .find_map(|p| {
            path.strip_prefix(p)
                .filter(|r| r.is_empty() || r.starts_with(['/', '\\']))
                .map(|r| format!("{home_s}{r}"))
        })
        .unwrap_or_else(|| path.to_owned());
    let mut comps: Vec<String> = Vec::new();
    for c in components(&expanded) {
        if c == ".." {
            comps.pop();
        } else {
            comps.push(c);
        }
    }
    // A Windows drive letter is the root of that drive.
    let drive = comps
        .first()
        .is_some_and(|c| c.len() == 2 && c.ends_with(':'));
    let rest = if drive { &comps[1..] } else { &comps[..] };
    if rest.is_empty() {
        return Some("is the root of the filesystem: everything on the machine".into());
    }
    let home_comps = components(&home_s);
    let (home_len, whose) = if comps.starts_with(&home_comps) && !home_comps.is_empty() {
        (home_comps.len(), "your home directory")
    } else {
        match rest.first().map(String::as_str) {
            Some("home" | "Users" | "users") if rest.len() == 1 => {
                return Some("holds every user's home directory".into());
            }
            Some("home" | "Users" | "users") => (comps.len() - rest.len() + 2, "a home directory"),
            Some("root") => (comps.len() - rest.len() + 1, "root's home directory"),
            Some("etc") if rest.len() == 1 => {
                return Some("is /etc: system credentials and host keys".into());
            }
            _ => return None,
        }
    };
    let rel = comps[home_len..].join("/");
    if rel.is_empty() {
        return Some(format!(
            "is {whose}: SSH keys, cloud credentials and browser profiles are in it"
        ));
    }
    for s in SENSITIVE {
        if s.starts_with(&rel) && (s.len() == rel.len() || s.as_bytes()[rel.len()] == b'/') {
            if s.len() == rel.len() {
                return Some(format!("is the credential store ~/{s}"));
            }
            return Some(format!("contains ~/{s}, a credential store"));
        }
        if rel.starts_with(s) && rel.as_bytes().get(s.len()) == Some(&b'/') {
            return Some(format!("is inside ~/{s}, a credential store"));
        }
    }
    None
}

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let mut candidates: Vec<(String, &Text)> = Vec::new();
    if let Some(p) = &cx.launch.palisade {
        for (flag, v) in &p.flags {
            if flag == "allow-read" || flag == "allow-write" {
                candidates.push((flag_value(&v.value).to_owned(), *v));
            }
        }
    }
    let argv = &cx.launch.argv;
    if let Some(d) = docker_run(argv) {
        candidates.extend(d.bind_sources());
    } else {
        let spec = package_run(argv).map(|r| r.spec.span.clone());
        for a in argv.iter().skip(1) {
            if Some(&a.span) == spec.as_ref() {
                continue;
            }
            let v = flag_value(&a.value);
            if looks_like_path(v) {
                candidates.push((v.to_owned(), *a));
            }
        }
    }
    for (path, arg) in candidates {
        if let Some(why) = too_broad(&path, cx.home) {
            out.push(cx.finding(
                &RULE.meta,
                &arg.span,
                format!("root:{}", path.replace(&*cx.home.to_string_lossy(), "~")),
                format!("`{path}` {why}"),
                "pass only the project folders the server needs (e.g. `~/projects/app`); under palisade, allow them with `--allow-read`/`--allow-write`",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::too_broad;
    use std::path::Path;

    #[test]
    fn flags_root_homes_and_credential_stores_only() {
        let h = Path::new("/home/dev");
        for p in [
            "/",
            "C:\\",
            "~",
            "$HOME",
            "/home/dev",
            "/home/dev/",
            "/home",
            "/Users/x",
            "/root",
            "~/.ssh",
            "/home/dev/.config",
            "/home/dev/.aws/credentials",
            "/etc",
            "C:\\Users\\x",
            "/home/dev/projects/..",
        ] {
            assert!(too_broad(p, h).is_some(), "{p}");
        }
        for p in [
            "/home/dev/projects/app",
            "~/code",
            "/tmp",
            "/srv/data",
            "/home/dev/.config/zed",
            "/home/dev/.sshd-notes",
            "/etc/hosts",
            "C:\\Users\\x\\proj",
        ] {
            assert!(too_broad(p, h).is_none(), "{p}");
        }
    }
}
