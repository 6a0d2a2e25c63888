//! `sensitive-env-passthrough`: the server is handed ambient credentials or code-injection variables
//! from your environment: `SSH_AUTH_SOCK` (your SSH agent: push to every repository you can), `AWS_*`
//! credentials and profiles, `GOOGLE_APPLICATION_CREDENTIALS`, `KUBECONFIG`, `DOCKER_HOST`, `VAULT_TOKEN`,
//! or `LD_PRELOAD`/`NODE_OPTIONS`/`PYTHONPATH`/`BASH_ENV` (which change what code runs).
//!
//! Seen in `env` entries (a reference like `${SSH_AUTH_SOCK}` or a literal path), Codex `env_vars`,
//! `docker run -e NAME` without a value, and `env NAME=…` wrappers. A literal secret value is reported
//! by `secret-in-env` instead. Service-scoped tokens (`GITHUB_TOKEN` for the GitHub server) are not this:
//! they are what the server is for.

use super::{Check, Rule, ServerCtx};
use crate::config::Text;
use crate::launch::docker_run;
use crate::report::{Finding, RuleMeta, Severity};
use crate::secrets;

pub(crate) static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "sensitive-env-passthrough",
        severity: Severity::Medium,
        title: "Ambient credentials or code-injection variables passed to the server",
        why: "The server gets your SSH agent, cloud credentials or cluster access (usable far beyond its job), or variables that change what code it runs.",
        fix: "Remove the variable; give the server a dedicated, least-privilege credential instead.",
    },
    check: Check::Server(check),
};

/// Why passing `name` is dangerous, or `None`.
pub(crate) fn why(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_uppercase();
    Some(match n.as_str() {
        "SSH_AUTH_SOCK" | "SSH_AGENT_PID" => {
            "your SSH agent: the server can authenticate as you anywhere your keys work"
        }
        "GPG_AGENT_INFO" | "GNUPGHOME" => "your GPG agent or keyring",
        "AWS_REGION" | "AWS_DEFAULT_REGION" => return None,
        n if n.starts_with("AWS_") => {
            "your AWS credentials or profile: everything your account can do"
        }
        "GOOGLE_APPLICATION_CREDENTIALS" | "CLOUDSDK_CONFIG" => "your Google Cloud credentials",
        "AZURE_CLIENT_SECRET" | "AZURE_CLIENT_CERTIFICATE_PATH" | "AZURE_CONFIG_DIR" => {
            "your Azure credentials"
        }
        "KUBECONFIG" => "your Kubernetes clusters",
        "DOCKER_HOST" | "DOCKER_CONFIG" => {
            "your Docker engine or registry logins (root on the host, or push access)"
        }
        "VAULT_TOKEN" => "your Vault token",
        "LD_PRELOAD" | "LD_LIBRARY_PATH" | "DYLD_INSERT_LIBRARIES" | "DYLD_LIBRARY_PATH" => {
            "a library injected into the server process"
        }
        "NODE_OPTIONS" | "PYTHONPATH" | "PYTHONSTARTUP" | "BASH_ENV" | "ENV" | "PERL5OPT"
        | "RUBYOPT" => "code loaded into the server before its own",
        _ => return None,
    })
}

fn check(cx: &ServerCtx<'_>, out: &mut Vec<Finding>) {
    let mut seen: Vec<(String, &Text)> = Vec::new();
    for v in &cx.server.env {
        let literal_secret = v
            .value
            .as_ref()
            .is_some_and(|val| !secrets::scan(&val.value, Some(&v.name.value)).is_empty());
        if !literal_secret {
            seen.push((v.name.value.clone(), &v.name));
        }
    }
    for n in &cx.server.env_passthrough {
        seen.push((n.value.clone(), n));
    }
    for a in &cx.launch.env_assignments {
        if let Some((n, _)) = a.value.split_once('=') {
            seen.push((n.to_owned(), *a));
        }
    }
    if let Some(d) = docker_run(&cx.launch.argv) {
        for (v, t) in d.values("--env") {
            let name = v.split('=').next().unwrap_or(v);
            if !v.contains('=') {
                seen.push((name.to_owned(), t));
            }
        }
    }
    for (name, at) in seen {
        let Some(why) = why(&name) else { continue };
        out.push(cx.finding(
            &RULE.meta,
            &at.span,
            format!("env-pass:{name}"),
            format!("passes `{name}` to the server: {why}"),
            format!("remove `{name}` from this server; if it needs cloud or SSH access, give it a dedicated least-privilege credential of its own"),
        ));
    }
}
