//! [`Resolver`]: turns a [`Reference`] into a [`Secret`] at launch.
//!
//! The store is opened lazily, on the first `keychain:` reference, so a policy with only `env:`/`file:`
//! references never touches D-Bus. `cmd:` results are cached in this process's memory (keyed by argv) for
//! the reference's TTL and never written anywhere. Errors name the reference (kind and name/path/program)
//! and what to do; they never contain a value, nor a command's output.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::backend::Opened;
use crate::reference::CmdSpec;
use crate::secret::{MAX_SECRET_BYTES, trim_one_newline};
use crate::{Error, Reference, Result, Secret};

type Opener = Box<dyn Fn() -> Result<Opened> + Send + Sync>;
type EnvLookup = Box<dyn Fn(&str) -> Option<OsString> + Send + Sync>;

/// Resolves references; one per process (it holds the `cmd:` cache).
pub struct Resolver {
    opener: Opener,
    store: Mutex<Option<Opened>>,
    env: EnvLookup,
    cache: Mutex<HashMap<Vec<String>, (Instant, Secret)>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::from_env()
    }
}

impl Resolver {
    /// A resolver whose store is chosen from `PALISADE_SECRET_BACKEND` and the XDG directories, and whose
    /// `env:` references read this process's environment.
    pub fn from_env() -> Self {
        Resolver::new(Opened::from_env)
    }

    /// A resolver that opens its store with `opener` (called once, on the first `keychain:` reference;
    /// again after a failure).
    pub fn new(opener: impl Fn() -> Result<Opened> + Send + Sync + 'static) -> Self {
        Resolver {
            opener: Box::new(opener),
            store: Mutex::new(None),
            env: Box::new(|k| std::env::var_os(k)),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the environment `env:` references and `~/` read (tests; embedding).
    pub fn with_env(
        mut self,
        env: impl Fn(&str) -> Option<OsString> + Send + Sync + 'static,
    ) -> Self {
        self.env = Box::new(env);
        self
    }

    /// Resolves one reference.
    pub fn resolve(&self, reference: &Reference) -> Result<Secret> {
        match reference {
            Reference::Literal(v) => Secret::from_string(v.clone(), "the literal value"),
            Reference::Env(var) => self.env_var(var),
            Reference::File(path) => self.file(path),
            Reference::Cmd(spec) => self.cmd(spec),
            Reference::Keychain(name) => {
                let mut slot = self.store.lock().unwrap_or_else(|p| p.into_inner());
                if slot.is_none() {
                    *slot = Some((self.opener)()?);
                }
                let opened = slot.as_ref().expect("just filled");
                opened.store.get(name).map_err(|e| match e {
                    Error::NotFound {
                        name: n,
                        backend,
                        location,
                        ..
                    } => Error::NotFound {
                        hint: opened.not_found_hint(name),
                        name: n,
                        backend,
                        location,
                    },
                    other => other,
                })
            }
        }
    }

    /// Parses and resolves a server's environment (`NAME = "reference or literal"`), in order. The first
    /// failure is returned as [`Error::EnvVar`], naming the variable and the reference kind.
    pub fn resolve_env(&self, vars: &[(String, String)]) -> Result<Vec<(String, Secret)>> {
        vars.iter()
            .map(|(var, value)| {
                let wrap = |kind: &'static str, e: Error| Error::EnvVar {
                    var: var.clone(),
                    kind,
                    error: Box::new(e),
                };
                let reference = Reference::parse(value).map_err(|e| {
                    let kind = match &e {
                        Error::InvalidReference { kind, .. } => kind,
                        _ => "reference",
                    };
                    wrap(kind, e)
                })?;
                let secret = self
                    .resolve(&reference)
                    .map_err(|e| wrap(reference.kind(), e))?;
                Ok((var.clone(), secret))
            })
            .collect()
    }

    fn env_var(&self, var: &str) -> Result<Secret> {
        let err = |problem, hint| Error::Env {
            var: var.to_owned(),
            problem,
            hint,
        };
        let Some(v) = (self.env)(var) else {
            return Err(err(
                "is not set in palisade's environment",
                "export it before starting palisade (or the client that starts it), or store it with `palisade secret set` and write `keychain:NAME`",
            ));
        };
        let Ok(v) = v.into_string() else {
            return Err(err("is not valid UTF-8", "fix the variable's value"));
        };
        if v.is_empty() {
            return Err(err(
                "is set but empty",
                "an empty secret is always a mistake (e.g. a failed `export X=$(…)`); set it to the real value",
            ));
        }
        Secret::from_string(v, &format!("env:{var}"))
    }

    fn expand(&self, path: &Path) -> Result<PathBuf> {
        match path.strip_prefix("~") {
            Ok(rest) => {
                let home = (self.env)("HOME")
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| Error::File {
                        path: path.to_path_buf(),
                        problem: "starts with ~/ but HOME is not set".into(),
                        hint: Some("write an absolute path".into()),
                    })?;
                Ok(PathBuf::from(home).join(rest))
            }
            Err(_) => Ok(path.to_path_buf()),
        }
    }

    fn file(&self, path: &Path) -> Result<Secret> {
        let path = self.expand(path)?;
        // Links are followed (a token file is often a link into a secrets manager's mount); the file
        // reached is what is checked, through the open descriptor, so it cannot be swapped in between.
        let f = std::fs::File::open(&path).map_err(|e| Error::File {
            path: path.clone(),
            problem: format!("cannot open it: {e}"),
            hint: None,
        })?;
        let meta = f.metadata().map_err(|e| Error::File {
            path: path.clone(),
            problem: format!("cannot inspect it: {e}"),
            hint: None,
        })?;
        crate::fsutil::check_private(&path, "`file:` reference", &meta)?;
        let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(
            (meta.len() as usize).min(MAX_SECRET_BYTES + 1),
        ));
        f.take(MAX_SECRET_BYTES as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::File {
                path: path.clone(),
                problem: format!("cannot read it: {e}"),
                hint: None,
            })?;
        trim_one_newline(&mut buf);
        Secret::new(
            std::mem::take(&mut *buf),
            &format!("file:{}", path.display()),
        )
    }

    fn cmd(&self, spec: &CmdSpec) -> Result<Secret> {
        let now = Instant::now();
        if !spec.ttl.is_zero() {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((expires, secret)) = cache.get(&spec.argv)
                && now < *expires
            {
                return Ok(secret.clone());
            }
        }
        let secret = run_cmd(spec)?;
        if !spec.ttl.is_zero() {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.retain(|_, (expires, _)| now < *expires);
            cache.insert(spec.argv.clone(), (now + spec.ttl, secret.clone()));
        }
        Ok(secret)
    }
}

/// Runs a `cmd:` reference: no shell, stdin from /dev/null, its own process group (killed whole on
/// timeout), stdout capped at [`MAX_SECRET_BYTES`], stderr read and discarded (a failing token printer may
/// print the token there; palisade's own stderr may be a client's log).
fn run_cmd(spec: &CmdSpec) -> Result<Secret> {
    use std::os::unix::process::CommandExt;
    let program = spec.program().to_owned();
    let fail = |problem: String, hint: Option<String>| Error::Command {
        program: program.clone(),
        problem,
        hint,
    };
    let mut child = Command::new(&spec.argv[0])
        .args(&spec.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            fail(
                format!("cannot start it: {e}"),
                (e.kind() == std::io::ErrorKind::NotFound).then(|| {
                    "is the program installed and on palisade's PATH? Write its absolute path to be sure".to_owned()
                }),
            )
        })?;
    let pgid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        let mut buf = zeroize::Zeroizing::new(Vec::new());
        let r = (&mut stdout)
            .take(MAX_SECRET_BYTES as u64 + 1)
            .read_to_end(&mut buf);
        // Drain the rest so the command does not block on a full pipe; it is discarded.
        let over = buf.len() > MAX_SECRET_BYTES;
        if over {
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        }
        let _ = tx.send(Stream::Out(r.map(|_| (buf, over))));
    });
    std::thread::spawn(move || {
        let n = std::io::copy(&mut stderr, &mut std::io::sink()).unwrap_or(0);
        let _ = tx2.send(Stream::Err(n));
    });

    let deadline = Instant::now() + spec.timeout;
    let mut out = None;
    let mut err_bytes = None;
    let mut status = None;
    let mut timed_out = false;
    while out.is_none() || err_bytes.is_none() || status.is_none() {
        if status.is_none() {
            match exited(pgid) {
                Ok(true) => {
                    // Anything it left behind in its group would hold the pipes open: end it. The
                    // leader is not reaped yet, so its pid (the group id) cannot have been reused.
                    kill_group(pgid);
                    match child.wait() {
                        Ok(s) => status = Some(s),
                        Err(e) => return Err(fail(format!("cannot wait for it: {e}"), None)),
                    }
                }
                Ok(false) => {}
                Err(e) => return Err(fail(format!("cannot wait for it: {e}"), None)),
            }
        }
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        let wait = (deadline - now).min(Duration::from_millis(20));
        match rx.recv_timeout(wait) {
            Ok(Stream::Out(r)) => out = Some(r),
            Ok(Stream::Err(n)) => err_bytes = Some(n),
            Err(_) => {}
        }
    }
    if timed_out {
        kill_group(pgid);
        let _ = child.wait();
        return Err(fail(
            format!("did not finish within {}", humantime::format_duration(spec.timeout)),
            Some("check that it does not wait for input or a browser login; raise the limit with `cmd[timeout=60s]:…`".into()),
        ));
    }
    let status = status.expect("loop ends with a status");
    let stderr_note = match err_bytes {
        Some(n) if n > 0 => {
            format!(" (its {n} bytes of error output are not shown: they may contain the secret)")
        }
        _ => String::new(),
    };
    if !status.success() {
        let how = match status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".to_owned(),
        };
        return Err(fail(
            format!("{how}{stderr_note}"),
            Some("run the command yourself to see why (e.g. an expired login)".into()),
        ));
    }
    let (mut buf, over) = match out.expect("loop ends with output") {
        Ok(v) => v,
        Err(e) => return Err(fail(format!("cannot read its output: {e}"), None)),
    };
    if over {
        return Err(fail(
            format!("printed more than {MAX_SECRET_BYTES} bytes; a token is far smaller"),
            None,
        ));
    }
    let start = buf
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(buf.len());
    let end = buf
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    buf.truncate(end);
    buf.drain(..start);
    if buf.is_empty() {
        return Err(fail(format!("printed nothing{stderr_note}"), None));
    }
    Secret::new(
        std::mem::take(&mut *buf),
        &format!("the output of `{program}`"),
    )
}

enum Stream {
    Out(std::io::Result<(zeroize::Zeroizing<Vec<u8>>, bool)>),
    Err(u64),
}

/// Whether the child `pid` has exited, without reaping it (`waitid` with `WNOWAIT`).
fn exited(pid: u32) -> std::io::Result<bool> {
    use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
    let Some(pid) = Pid::from_raw(pid as i32) else {
        return Ok(true);
    };
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    Ok(waitid(WaitId::Pid(pid), options)?.is_some())
}

fn kill_group(pgid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}
