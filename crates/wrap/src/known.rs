//! What a wrapped server is known to need from the network, so the generated policy can say so.
//!
//! A wrapped server starts with no network (docs/sandbox.md). Some servers are useless without one API
//! host (`server-github` → `api.github.com`); package runners (`npx`, `uvx`, …) download the server from
//! their registry at every start (the sandbox's HOME is empty, so there is no cache) and do not start at
//! all without it. palisade never grants these by itself: the policy names them in a comment and the wrap
//! report tells the user, who decides. (A registry is a way out too: a malicious package could publish
//! what it reads as a new package of its own.) `palisade wrap --allow-registry` is the explicit opt-in for
//! registries; `palisade install` is the way around them (the same `npx`/`uvx` command line then runs
//! from palisade's store, with no download).
//!
//! The table is deliberately short: well-known reference servers whose hosts are fixed. Anything else gets
//! no suggestion, which is the safe default.

use palisade_scan::config::Text;
use palisade_scan::launch::{Ecosystem, package_run};

/// One reason a server needs the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// Hosts (`HOST` or `HOST:PORT`) to allow. Empty when the hosts depend on what the user asks for.
    pub hosts: Vec<String>,
    /// Why, for the policy comment and the report.
    pub why: String,
    /// The server cannot start without these (a registry download), as opposed to failing some calls.
    pub to_start: bool,
    /// The `palisade install SPEC` that makes the download unnecessary (the package then runs from
    /// palisade's store, hash-checked, without network).
    pub install: Option<String>,
}

/// Package (npm or PyPI name, without version) → API hosts it calls.
const API_HOSTS: &[(&str, &[&str])] = &[
    ("@modelcontextprotocol/server-github", &["api.github.com"]),
    ("github-mcp-server", &["api.github.com"]),
    ("@modelcontextprotocol/server-gitlab", &["gitlab.com"]),
    ("@modelcontextprotocol/server-slack", &["slack.com"]),
    (
        "@modelcontextprotocol/server-brave-search",
        &["api.search.brave.com"],
    ),
    (
        "@modelcontextprotocol/server-google-maps",
        &["maps.googleapis.com"],
    ),
    ("@notionhq/notion-mcp-server", &["api.notion.com"]),
    ("@stripe/mcp", &["api.stripe.com"]),
    ("mcp-server-sentry", &["sentry.io"]),
];

/// Packages that reach whatever host the user asks for.
const ANY_HOST: &[&str] = &[
    "mcp-server-fetch",
    "@modelcontextprotocol/server-fetch",
    "@modelcontextprotocol/server-puppeteer",
    "@playwright/mcp",
];

fn as_texts(argv: &[String]) -> Vec<Text> {
    argv.iter()
        .map(|a| Text {
            value: a.clone(),
            span: 0..0,
        })
        .collect()
}

/// The package name of an npm spec (`@scope/name@1.2` → `@scope/name`) or a PyPI spec (`name==1.2` →
/// `name`).
fn package_name(spec: &str) -> &str {
    let spec = spec
        .split(['=', '<', '>', '~', '!', '['])
        .next()
        .unwrap_or(spec);
    match spec.strip_prefix('@') {
        Some(rest) => match rest.find('@') {
            Some(i) => &spec[..i + 1],
            None => spec,
        },
        None => spec.split('@').next().unwrap_or(spec),
    }
}

/// The packages an argv names: a runner's package spec, or a script path inside `node_modules/<pkg>/`.
fn packages(argv: &[String]) -> Vec<String> {
    let texts = as_texts(argv);
    let refs: Vec<&Text> = texts.iter().collect();
    let mut out = Vec::new();
    if let Some(run) = package_run(&refs) {
        out.push(package_name(&run.spec_value).to_owned());
    }
    for a in argv {
        if let Some((_, rest)) = a.rsplit_once("node_modules/") {
            let mut parts = rest.split('/');
            let first = parts.next().unwrap_or("");
            let name = if first.starts_with('@') {
                format!("{first}/{}", parts.next().unwrap_or(""))
            } else {
                first.to_owned()
            };
            out.push(name);
        }
        // A Python entry point named like the package (`mcp-server-fetch`, `…/bin/mcp-server-fetch`).
        let base = a.rsplit('/').next().unwrap_or(a);
        if ANY_HOST.contains(&base) || API_HOSTS.iter().any(|(p, _)| *p == base) {
            out.push(base.to_owned());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The `host:port` of a connection string with a password or user (`postgresql://u:p@db:5432/x`).
fn connection_host(argv: &[String]) -> Option<String> {
    argv.iter().find_map(|a| {
        let (scheme, rest) = a.split_once("://")?;
        if !matches!(
            scheme,
            "postgres" | "postgresql" | "mysql" | "mongodb" | "redis" | "rediss"
        ) {
            return None;
        }
        let authority = rest.split(['/', '?']).next()?;
        let host = authority.rsplit('@').next()?;
        let default_port = match scheme {
            "postgres" | "postgresql" => "5432",
            "mysql" => "3306",
            "mongodb" => "27017",
            _ => "6379",
        };
        let has_port = if host.starts_with('[') {
            host.contains("]:")
        } else {
            host.contains(':')
        };
        (!host.is_empty()).then(|| {
            if has_port {
                host.to_owned()
            } else {
                format!("{host}:{default_port}")
            }
        })
    })
}

/// What `argv` (the command a config runs) is known to need from the network.
pub fn needs(argv: &[String]) -> Vec<Need> {
    let mut out = Vec::new();
    let texts = as_texts(argv);
    let refs: Vec<&Text> = texts.iter().collect();
    if let Some(run) = package_run(&refs) {
        let hosts: Vec<String> = match run.ecosystem {
            Ecosystem::Npm => vec!["registry.npmjs.org".into()],
            Ecosystem::PyPi => vec!["pypi.org".into(), "files.pythonhosted.org".into()],
        };
        let prefix = match run.ecosystem {
            Ecosystem::Npm => "npm",
            Ecosystem::PyPi => "pypi",
        };
        out.push(Need {
            why: format!(
                "`{}` downloads the server from {} at every start (the sandbox's HOME is empty, so there is no cache); it does not start without it",
                run.runner,
                hosts.join(" and ")
            ),
            hosts,
            to_start: true,
            install: Some(format!("palisade install {prefix}:{}", run.spec_value)),
        });
    }
    for p in packages(argv) {
        if let Some((_, hosts)) = API_HOSTS.iter().find(|(name, _)| *name == p) {
            out.push(Need {
                hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
                why: format!("`{p}` calls {}", hosts.join(", ")),
                to_start: false,
                install: None,
            });
        } else if ANY_HOST.contains(&p.as_str()) {
            out.push(Need {
                hosts: Vec::new(),
                why: format!(
                    "`{p}` reaches whatever site it is asked for: allow the hosts you want it to reach"
                ),
                to_start: false,
                install: None,
            });
        }
    }
    if let Some(host) = connection_host(argv) {
        out.push(Need {
            why: format!("its connection string names the database at {host}"),
            hosts: vec![host],
            to_start: false,
            install: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn package_runners_need_their_registry_to_start() {
        let n = needs(&v(&[
            "npx",
            "-y",
            "@modelcontextprotocol/server-github@2025.4.8",
        ]));
        assert_eq!(n[0].hosts, ["registry.npmjs.org"]);
        assert!(n[0].to_start);
        assert_eq!(
            n[0].install.as_deref(),
            Some("palisade install npm:@modelcontextprotocol/server-github@2025.4.8")
        );
        assert_eq!(n[1].hosts, ["api.github.com"]);
        assert!(!n[1].to_start);
        let n = needs(&v(&["uvx", "mcp-server-fetch"]));
        assert_eq!(n[0].hosts, ["pypi.org", "files.pythonhosted.org"]);
        assert!(n[1].hosts.is_empty() && n[1].why.contains("whatever site"));
    }

    #[test]
    fn installed_servers_need_nothing_to_start() {
        let n = needs(&v(&[
            "node",
            "/opt/x/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js",
            "/tmp",
        ]));
        assert!(n.is_empty(), "{n:?}");
        let n = needs(&v(&[
            "node",
            "/opt/x/node_modules/@modelcontextprotocol/server-github/dist/index.js",
        ]));
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].hosts, ["api.github.com"]);
    }

    #[test]
    fn database_servers_need_the_host_of_their_connection_string() {
        let n = needs(&v(&[
            "node",
            "server-postgres/dist/index.js",
            "postgresql://app:pw@db.internal/app",
        ]));
        assert_eq!(n[0].hosts, ["db.internal:5432"]);
        let n = needs(&v(&["x", "mysql://u@[::1]:3307/db"]));
        assert_eq!(n[0].hosts, ["[::1]:3307"]);
    }

    #[test]
    fn package_names_drop_versions() {
        assert_eq!(package_name("@a/b@1.2"), "@a/b");
        assert_eq!(package_name("@a/b"), "@a/b");
        assert_eq!(package_name("x@latest"), "x");
        assert_eq!(package_name("mcp-server-git==1.0"), "mcp-server-git");
        assert_eq!(package_name("pkg[extra]>=2"), "pkg");
    }
}
