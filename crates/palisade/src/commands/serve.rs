//! `palisade serve`: the Streamable HTTP gateway (see `palisade_serve` and docs/serve.md).
//!
//! This file is the wiring: which servers (`-- CMD` at `/mcp`, or every `[servers.NAME]` of `--policy`
//! at `/mcp/NAME`), how each one starts (the one launch path, `launch::start`, as for `run`; a remote
//! server's endpoint and credentials resolved from the secret store), where its pins and audit trail
//! live, and the flags turned into a `palisade_serve::Config`. The gateway itself never starts a process,
//! opens a file or reads a secret.

use anyhow::{Context, Result};
use palisade_audit::{AuditLog, Event, ExclusiveFile};
use palisade_guard::{Note, NoteKind, Pipeline, SessionState};
use palisade_policy::{PolicyFile, ServerRemote};
use palisade_serve::{Backend, Config, Limits, OAuthConfig, Remote, ServeError, Spawned};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ExitStatus;
use crate::cli::ServeArgs;
use crate::dirs;
use crate::pins::{PinStore, ServerPins};
use crate::settings::{ConfigError, ServerSettings, served_server_settings, server_settings};

/// How long a server gets to exit after its session ended.
const EXIT_GRACE: Duration = Duration::from_secs(5);

pub(crate) fn serve(args: &ServeArgs) -> Result<ExitStatus> {
    let servers = servers(args)?;
    let mut backends: Vec<(String, Arc<dyn Backend>)> = Vec::new();
    for (path, s, remote) in servers {
        for w in &s.warnings {
            eprintln!("palisade: warning: [{}] {w}", s.name);
        }
        let remote = match remote {
            Some(r) => {
                let built = remote_upstream(&s.name, &r)?;
                eprintln!(
                    "palisade: [{}] remote server: {} (palisade is its HTTP client)",
                    s.name,
                    built.url()
                );
                Some(Arc::new(built))
            }
            None => None,
        };
        let audit = if s.policy.audit.enabled {
            let file = match &s.policy.audit.path {
                Some(p) => p.clone(),
                None => dirs::audit_log(&s.name)?,
            };
            let (log, actual) = crate::commands::run::open_audit(&file, s.policy.audit.durable)?;
            eprintln!("palisade: [{}] audit: {}", s.name, actual.display());
            Some(Arc::new(Mutex::new(log)))
        } else {
            eprintln!("palisade: [{}] audit: off (the policy disables it)", s.name);
            None
        };
        let pipeline = Arc::new(Pipeline::new(s.policy.clone(), s.cwd.clone()));
        for w in pipeline.warnings() {
            eprintln!("palisade: warning: [{}] {w}", s.name);
        }
        backends.push((
            path,
            Arc::new(ServeBackend {
                pins: PinStore::new(s.pins.clone()),
                durable: s.policy.audit.durable,
                settings: s,
                pipeline,
                audit,
                remote,
            }),
        ));
    }
    let config = config(args)?;
    if config.no_auth {
        for (_, b) in &backends {
            b.event(
                Event::new(palisade_audit::Kind::Policy, b.name())
                    .reason("no-auth")
                    .detail(format!(
                        "palisade serve on {} with authentication OFF (--no-auth)",
                        config.listen
                    )),
            );
        }
        eprintln!(
            "palisade: WARNING: authentication is OFF (--no-auth): any local process and any web page that \
             reaches {} can call these servers' tools",
            config.listen
        );
    }
    let names: Vec<(String, String, bool)> = backends
        .iter()
        .map(|(p, b)| {
            let shared = b.remote().is_none()
                && b.pipeline().policy().process == palisade_policy::ProcessSharing::Shared;
            (p.clone(), b.name().to_owned(), shared)
        })
        .collect();
    let served = palisade_serve::serve(config, backends, |addr, base| {
        for (path, name, shared) in &names {
            let how = if *shared {
                " (one process shared by every session: process = \"shared\")"
            } else {
                ""
            };
            eprintln!("palisade: serving `{name}` at {base}{path}{how}");
        }
        eprintln!("palisade: listening on {addr}");
    });
    match served {
        Ok(()) => Ok(ExitStatus::Success),
        Err(ServeError::Config(m)) => Err(ConfigError(m).into()),
        Err(e) => Err(e.into()),
    }
}

/// A remote server's client: its credentials resolved from the secret store now (never printed; an
/// error names the key and the reference kind, never a value), its URL checked. Credentials that can
/// change while palisade serves (`cmd:` and `file:` references: short-lived tokens) are resolved again
/// as they go stale (see [`Remote::refreshing`]); the others are fixed for the process's life.
fn remote_upstream(name: &str, r: &ServerRemote) -> Result<Remote> {
    // (header, key in the table, reference, the value's prefix)
    let mut refs: Vec<(String, String, palisade_secrets::Reference, &'static str)> = Vec::new();
    let parse = |key: &str, value: &str| {
        palisade_secrets::Reference::parse(value)
            .map_err(|e| ConfigError(format!("[servers.{name}] {key}: {e}")))
    };
    if let Some(b) = &r.bearer {
        refs.push((
            "Authorization".into(),
            "bearer".into(),
            parse("bearer", b)?,
            "Bearer ",
        ));
    }
    for (h, v) in &r.headers {
        let key = format!("headers.{h}");
        let reference = parse(&key, v)?;
        refs.push((h.clone(), key, reference, ""));
    }
    let resolver = std::sync::Arc::new(palisade_secrets::Resolver::from_env());
    let server = name.to_owned();
    let resolve_all = {
        let refs = refs.clone();
        let resolver = resolver.clone();
        move || -> Result<Vec<(String, String)>, String> {
            refs.iter()
                .map(|(header, key, reference, prefix)| {
                    let secret = resolver.resolve(reference).map_err(|e| {
                        format!(
                            "[servers.{server}] {key} ({} reference): {e}",
                            reference.kind()
                        )
                    })?;
                    Ok((header.clone(), format!("{prefix}{}", secret.expose_str())))
                })
                .collect()
        }
    };
    let headers = resolve_all().map_err(ConfigError)?;
    let remote = Remote::new(&r.url, headers, r.allow_private, r.ca_file.clone())
        .map_err(|e| ConfigError(format!("[servers.{name}] {e}")))?;
    let changing = refs
        .iter()
        .any(|(_, _, reference, _)| matches!(reference.kind(), "cmd" | "file"));
    Ok(if changing {
        remote.refreshing(std::sync::Arc::new(resolve_all))
    } else {
        remote
    })
}

/// A served server: its path, its settings and, for a remote server, its endpoint.
type Served = (String, ServerSettings, Option<ServerRemote>);

/// The servers to serve, with their paths.
fn servers(args: &ServeArgs) -> Result<Vec<Served>> {
    let a = &args.server;
    if !a.command.is_empty() {
        return Ok(vec![("/mcp".into(), server_settings(a, None)?, None)]);
    }
    let Some(policy) = &a.policy else {
        return Err(ConfigError(
            "no server to serve: pass the command after `--` (`palisade serve -- npx -y @modelcontextprotocol/server-everything`) or --policy FILE".into(),
        )
        .into());
    };
    let text = std::fs::read_to_string(policy)
        .map_err(|e| ConfigError(format!("cannot read policy {}: {e}", policy.display())))?;
    let file = PolicyFile::parse(&text, &policy.display().to_string())
        .map_err(|d| ConfigError(crate::settings::render_diagnostics(&d)))?;
    let names: Vec<String> = match &a.server {
        Some(n) => vec![n.clone()],
        None => file
            .server_names()
            .filter(|n| file.server_command(n).is_some() || file.server_remote(n).is_some())
            .map(str::to_owned)
            .collect(),
    };
    if names.is_empty() {
        return Err(ConfigError(format!(
            "{} names no server with a command or url; add [servers.NAME] with command = [...] or url = \"https://…\"",
            policy.display()
        ))
        .into());
    }
    let mut out = Vec::new();
    for name in names {
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(ConfigError(format!(
                "server name {name:?} cannot be a URL path segment; use letters, digits, `-`, `_`, `.`"
            ))
            .into());
        }
        let mut one = a.clone();
        one.server = Some(name.clone());
        let remote = file.server_remote(&name).cloned();
        let settings = if remote.is_some() {
            served_server_settings(&one)?
        } else {
            server_settings(&one, None)?
        };
        out.push((format!("/mcp/{name}"), settings, remote));
    }
    Ok(out)
}

fn config(args: &ServeArgs) -> Result<Config> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        _ => {
            return Err(ConfigError(
                "--tls-cert and --tls-key go together (the certificate chain and its private key)"
                    .into(),
            )
            .into());
        }
    };
    let duration = |flag: &str, v: &str| -> Result<Duration> {
        humantime::parse_duration(v)
            .map_err(|e| ConfigError(format!("{flag} {v:?}: {e}; use e.g. 10s, 5min")).into())
    };
    let limits = Limits {
        max_body: args.max_body,
        header_timeout: duration("--header-timeout", &args.header_timeout)?,
        body_timeout: duration("--body-timeout", &args.body_timeout)?,
        session_idle: duration("--session-idle", &args.session_idle)?,
        max_sessions: args.max_sessions,
        max_sessions_per_client: args.max_sessions_per_client,
        rate: parse_rate(&args.rate_limit)?,
        max_connections: args.max_connections,
    };
    let oauth = match &args.oauth_issuer {
        Some(issuer) => Some(OAuthConfig {
            issuer: issuer.clone(),
            jwks_uri: args.oauth_jwks_uri.clone(),
            ca_files: args.oauth_ca.clone(),
            refresh: duration("--oauth-jwks-refresh", &args.oauth_jwks_refresh)?,
        }),
        None => None,
    };
    Ok(Config {
        listen: args.listen,
        tls,
        insecure: args.insecure,
        no_auth: args.no_auth,
        token_store: Some(
            crate::commands::token::store(args.tokens.clone())?
                .path()
                .to_path_buf(),
        ),
        oauth,
        public_url: args.public_url.clone(),
        allowed_origins: args.allow_origin.clone(),
        allowed_hosts: args.allowed_host.clone(),
        limits,
        threads: usize::from(args.threads),
    })
}

/// `off`, or `N/UNIT` with UNIT `s`, `min`, `h` or a duration (`100/s`, `600/min`, `50/10s`).
fn parse_rate(v: &str) -> Result<Option<(u32, Duration)>> {
    if v == "off" {
        return Ok(None);
    }
    let bad = || {
        ConfigError(format!(
            "--rate-limit {v:?}: expected N/UNIT (100/s, 600/min, 50/10s) or off"
        ))
    };
    let (n, unit) = v.split_once('/').ok_or_else(bad)?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(bad().into());
    }
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "min" | "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        other => humantime::parse_duration(other).map_err(|_| bad())?,
    };
    if per.is_zero() {
        return Err(bad().into());
    }
    Ok(Some((n, per)))
}

/// Appends an event about something that already happened (a connection through the egress proxy, the
/// server meeting its process limit) to a served server's audit log. A write failure is reported, not
/// fatal, even for a durable log: nothing waits on this record to be released.
fn append_reported(audit: Option<&Arc<Mutex<AuditLog<ExclusiveFile>>>>, ev: Event) {
    let Some(log) = audit else { return };
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = log.append(ev) {
        eprintln!("palisade: warning: audit log write failed: {e}");
    }
}

/// One served server: the binary's side of the gateway.
struct ServeBackend {
    settings: ServerSettings,
    pipeline: Arc<Pipeline>,
    pins: PinStore,
    audit: Option<Arc<Mutex<AuditLog<ExclusiveFile>>>>,
    durable: bool,
    /// A remote server's client (no process is started for it).
    remote: Option<Arc<Remote>>,
}

impl ServeBackend {
    fn append(&self, ev: Event) {
        let Some(log) = &self.audit else { return };
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = log.append(ev) {
            if self.durable {
                // As in `run`: nothing may be released without the durable record the policy promises.
                eprintln!(
                    "palisade: error: the durable audit log cannot be written ({e}); stopping, since the policy requires a record of every message"
                );
                std::process::exit(ExitStatus::Failure as i32);
            }
            eprintln!("palisade: warning: audit log write failed: {e}");
        }
    }
}

impl Backend for ServeBackend {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn pipeline(&self) -> Arc<Pipeline> {
        self.pipeline.clone()
    }

    fn remote(&self) -> Option<Arc<Remote>> {
        self.remote.clone()
    }

    fn spawn(&self) -> std::io::Result<Spawned> {
        let s = &self.settings;
        if self.remote.is_some() || s.argv.is_empty() {
            return Err(std::io::Error::other(format!(
                "`{}` is a remote server: there is no process to start",
                s.name
            )));
        }
        let (mut launched, isolation) =
            crate::launch::start(s).map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        let pid = launched.child.id();
        eprintln!(
            "palisade: started `{}` (pid {pid}) as a {isolation}",
            s.name
        );
        // The sandbox's one way out, when the policy names destinations; its events go to this server's
        // audit log (a write failure is reported, not fatal: the connection already happened).
        let egress = match launched.egress.take() {
            Some(listener) => {
                let audit = self.audit.clone();
                let sink = move |ev: Event| append_reported(audit.as_ref(), ev);
                Some(crate::egress::Egress::start(
                    &s.name,
                    listener,
                    &s.policy.net,
                    sink,
                )?)
            }
            None => None,
        };
        let stdin = launched.child.stdin.take().context("server stdin");
        let stdout = launched.child.stdout.take().context("server stdout");
        let stderr = launched.child.stderr.take();
        let (stdin, stdout) = match (stdin, stdout) {
            (Ok(i), Ok(o)) => (i, o),
            _ => {
                let _ = launched.child.kill();
                return Err(std::io::Error::other(
                    "the server has no stdin/stdout pipes",
                ));
            }
        };
        let audit = self.audit.clone();
        let name = s.name.clone();
        let stop = Box::new(move || {
            let mut child = launched.child;
            let deadline = Instant::now() + EXIT_GRACE;
            let status = loop {
                match child.try_wait() {
                    Ok(Some(st)) => break Ok(st),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Ok(None) => {
                        if let Some(pg) = rustix::process::Pid::from_raw(pid as i32) {
                            let _ = rustix::process::kill_process_group(
                                pg,
                                rustix::process::Signal::KILL,
                            );
                        }
                        break child.wait();
                    }
                    Err(e) => break Err(e),
                }
            };
            if let Some(e) = egress {
                e.stop();
            }
            if let Some(ev) =
                crate::launch::end_cgroup(&name, launched.cgroup.take(), launched.applied.as_ref())
            {
                append_reported(audit.as_ref(), ev);
            }
            // Dropping the watchdog's pipe makes it stop whatever is left of the server's group.
            drop(launched.watchdog);
            match status {
                Ok(st) => crate::commands::run::exit_reason(
                    &st,
                    launched.applied.as_ref().map(|a| &a.rlimits),
                ),
                Err(e) => format!("server status unknown: {e}"),
            }
        });
        Ok(Spawned {
            stdin,
            stdout,
            stderr,
            pid,
            stop,
        })
    }

    fn session_state(&self) -> SessionState {
        let loaded = self.pins.load(&self.settings.name).unwrap_or_else(|e| {
            eprintln!(
                "palisade: warning: cannot read tool pins ({e:#}); every tool needs approval again"
            );
            ServerPins::default()
        });
        let mut st = SessionState::with_pins(loaded.approved);
        st.observed = loaded.observed;
        st
    }

    fn save_pins(&self, st: &SessionState) {
        let p = ServerPins {
            approved: st.pins.clone(),
            observed: st.observed.clone(),
        };
        if let Err(e) = self.pins.update(&self.settings.name, |entry| {
            // Another session may have pinned other tools meanwhile: merge, this session's view wins
            // for the tools it saw.
            entry.approved.extend(p.approved.clone());
            entry.observed.extend(p.observed.clone());
            for t in p.approved.keys() {
                if !p.observed.contains_key(t) {
                    entry.observed.remove(t);
                }
            }
        }) {
            eprintln!(
                "palisade: warning: could not save tool pins to {}: {e:#}",
                self.pins.path().display()
            );
        }
    }

    fn record(&self, client: Option<&str>, n: &Note) {
        if matches!(n.kind, NoteKind::Pin | NoteKind::Error)
            && n.decision == palisade_guard::Decision::Deny
            && let Some(detail) = &n.detail
        {
            eprintln!("palisade[{}]: {detail}", self.settings.name);
        }
        if self.audit.is_some() {
            self.append(crate::audit_map::event(&self.settings.name, client, n));
        }
    }

    fn event(&self, ev: Event) {
        self.append(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rate;
    use std::time::Duration;

    #[test]
    fn rate_limits_parse_with_units() {
        assert_eq!(parse_rate("off").unwrap(), None);
        assert_eq!(
            parse_rate("100/s").unwrap(),
            Some((100, Duration::from_secs(1)))
        );
        assert_eq!(
            parse_rate("600/min").unwrap(),
            Some((600, Duration::from_secs(60)))
        );
        assert_eq!(
            parse_rate("50/10s").unwrap(),
            Some((50, Duration::from_secs(10)))
        );
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
