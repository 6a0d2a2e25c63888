//! Decides what a sandboxed server can see: from a command line, its environment and the policy's roots to
//! a [`SandboxSpec`]. Pure apart from reading the host filesystem (resolving `PATH`, symlinks, `#!` lines,
//! `pyvenv.cfg`, package markers); it never changes anything, and the same input gives the same output.
//!
//! # What becomes visible
//! | Tree | How | Landlock |
//! |---|---|---|
//! | `/usr`, and `/bin`, `/sbin`, `/lib*` (symlinks if they are symlinks on the host) | read-only bind | read |
//! | a subset of `/etc` ([`ETC_ENTRIES`]; host symlinks stay symlinks) | read-only binds | read |
//! | the executable's install prefix, when outside the system dirs | read-only bind | read |
//! | a venv's dir and its base interpreter (`pyvenv.cfg` `home =`) | read-only binds | read |
//! | a script argument's package (nearest `package.json`/`pyproject.toml`…, widened to the outermost enclosing `node_modules`) | read-only bind | read |
//! | any other existing file argument | read-only bind of the file | read |
//! | `extra_read` · read roots · the working directory | read-only binds | read |
//! | write roots | writable binds | write |
//! | `HOME` · `/tmp` | empty tmpfs (64 MiB · 128 MiB) | write |
//! | `/proc` (fresh, the sandbox's own PIDs) · `/dev` (null, zero, full, random, urandom, tty, shm) | | read · write |
//!
//! # The exec allowlist
//! Landlock's `Execute` right is checked when a file is executed (`execve`, and the kernel's own open of an
//! ELF program interpreter), not when a shared library is mapped, so libraries need only read. Execute is
//! granted to single files, never to a tree, except for what the user allows explicitly:
//! * the server's executable, every hop of its symlink chain as resolved on `PATH`;
//! * recursively, its `#!` interpreter (for `#!/usr/bin/env NAME`: `env` and NAME as found on the server's
//!   `PATH`), and the ELF program interpreter (`PT_INTERP`) of each ELF in the set; when an ELF cannot be
//!   parsed, the `ld-linux*` files of the usual library dirs instead;
//! * `extra_exec`: files (a bare name is looked up on `PATH`) with their chains as above, or whole trees;
//! * for launchers that run the real server through a shell ([`SHELL_LAUNCHERS`]: `npx`, `uvx`…), also
//!   `/bin/sh` and `/usr/bin/env` ([`shell_launcher`] says so for the banner).
//!
//! So a server can run itself, and nothing else: no shell, no `curl`, no binary it dropped in `/tmp`.
//!
//! Inferred paths never widen to `/`, `HOME` or an ancestor of `HOME`: a script directly in `HOME` binds the
//! script alone. An explicit root equal to `HOME` replaces the empty `HOME`; a root above `HOME` leaves
//! `HOME` empty on top of it.
//!
//! # Why the executable path is not canonicalized for exec
//! `argv[0]` becomes an absolute path, but the symlink the user named is kept and recreated inside (or
//! visible through its directory): a venv's `bin/python` is a symlink to the system interpreter and Python
//! finds `pyvenv.cfg` from the path it was started as; multi-call binaries dispatch on their name. Every
//! hop of the symlink chain is made visible.
//!
//! # Mount order
//! Mounts are sorted by destination so parents come before children; a mount is dropped when its nearest
//! enclosing mount already shows the same host tree with at least the same rights (a read-only bind under
//! a bind, a writable bind under a writable bind, a symlink under a bind). At one destination the
//! strongest wins (writable bind, read-only bind, tmpfs, symlink). Sources equal destinations: inside the
//! sandbox every path means what it means on the host.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use crate::spec::{LandlockRules, Mount, NetMode, Rlimits, SandboxSpec};

/// Size of the empty `HOME` tmpfs.
pub const HOME_TMPFS_BYTES: u64 = 64 << 20;
/// Size of the private `/tmp` tmpfs.
pub const TMP_TMPFS_BYTES: u64 = 128 << 20;
/// Host name inside the sandbox.
pub const HOSTNAME: &str = "palisade";

/// System trees shown read-only (binds, or symlinks when they are symlinks on the host).
pub const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// Entries of `/etc` a program may need: the dynamic loader, TLS roots, name service, time zone, users.
/// Entries that do not exist on the host are skipped; `/etc/python3*` directories are added too.
pub const ETC_ENTRIES: &[&str] = &[
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "gai.conf",
    "group",
    "host.conf",
    "hosts",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "lsb-release",
    "mime.types",
    "networks",
    "nsswitch.conf",
    "os-release",
    "passwd",
    "pki",
    "protocols",
    "resolv.conf",
    "services",
    "ssl",
    "timezone",
];

/// What [`plan`] works from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanInput {
    /// The server's command line as given (`argv[0]` may be a bare name looked up on `PATH`).
    pub argv: Vec<String>,
    /// The server's complete environment (its `PATH` is used to resolve `argv[0]`).
    pub env: Vec<(String, String)>,
    /// Working directory (absolute).
    pub cwd: PathBuf,
    /// The user's home directory (absolute): an empty tmpfs inside.
    pub home: PathBuf,
    /// Trees the server may read.
    pub read_roots: Vec<PathBuf>,
    /// Trees the server may read and write.
    pub write_roots: Vec<PathBuf>,
    /// More read-only trees the server needs to run, e.g. a package cache.
    pub extra_read: Vec<PathBuf>,
    /// Executables (files, or trees) the server may run besides its own executable and interpreters
    /// (`--allow-exec`); a bare name is looked up on the server's `PATH`.
    pub extra_exec: Vec<PathBuf>,
    /// Network: [`NetMode::None`], or the egress proxy the server reaches through its own loopback.
    pub net: NetMode,
}

/// Environment variables pointing every common HTTP client at the egress proxy: curl, Python (`urllib`,
/// `requests`, `httpx`, pip, uv) and Go read the upper- or lower-case pairs, npm its `npm_config_*`, pip
/// `PIP_PROXY`, and Node's own `fetch` only with `NODE_USE_ENV_PROXY=1` (Node ≥ 22.21 / 24.5).
/// `NO_PROXY` is set empty: inside the sandbox nothing may bypass the proxy (its own loopback is closed to
/// TCP by Landlock anyway), and a loopback destination means the host's, reached only when the policy
/// names its exact address.
pub fn proxy_env(port: u16) -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{port}");
    let mut env: Vec<(String, String)> = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "npm_config_proxy",
        "npm_config_https_proxy",
        "PIP_PROXY",
    ]
    .iter()
    .map(|k| ((*k).to_owned(), url.clone()))
    .collect();
    env.extend(
        [
            ("NO_PROXY", ""),
            ("no_proxy", ""),
            ("NODE_USE_ENV_PROXY", "1"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

/// Launchers that start the real server through `sh -c` (and `#!/usr/bin/env` scripts) by construction:
/// they also get `/bin/sh` and `/usr/bin/env`.
pub const SHELL_LAUNCHERS: &[&str] = &[
    "npx", "npm", "pnpm", "pnpx", "yarn", "bunx", "uvx", "uv", "pipx",
];

/// Executables a [`SHELL_LAUNCHERS`] command also gets.
pub const LAUNCHER_SHELL: &[&str] = &["/bin/sh", "/usr/bin/env"];

/// When `argv[0]` is one of the [`SHELL_LAUNCHERS`]: a note for the start-up banner saying that the
/// server may also run a shell.
pub fn shell_launcher(argv: &[String]) -> Option<String> {
    let name = Path::new(argv.first()?).file_name()?.to_str()?;
    SHELL_LAUNCHERS.contains(&name).then(|| {
        format!(
            "`{name}` starts servers through a shell, so {} may also be executed \
             (pin/install the server so palisade can run it directly)",
            LAUNCHER_SHELL.join(" and ")
        )
    })
}

/// When `argv` runs `env [OPTION]… [NAME=VALUE]… PROGRAM …` (a common way MCP client configs set
/// variables): the program `env` will execute, and the `PATH` it will look it up on (an assignment to
/// `PATH` on the command line wins). `None` for anything else, and for `env -S` (a string `env` splits
/// itself), which palisade does not second-guess: the program then needs `--allow-exec`.
pub fn env_program(argv: &[String]) -> Option<(&str, Option<&str>)> {
    if Path::new(argv.first()?).file_name()? != "env" {
        return None;
    }
    let mut path = None;
    let mut args = argv[1..].iter();
    let mut options = true;
    while let Some(a) = args.next() {
        if options {
            match a.as_str() {
                "--" => {
                    options = false;
                    continue;
                }
                "-i" | "-" | "--ignore-environment" | "-0" | "--null" => continue,
                "-u" | "--unset" | "-C" | "--chdir" => {
                    args.next();
                    continue;
                }
                s if s.starts_with("--unset=") || s.starts_with("--chdir=") => continue,
                s if s.starts_with("-S") || s.starts_with("--split-string") => return None,
                s if s.starts_with('-') => return None,
                _ => options = false,
            }
        }
        if let Some((name, value)) = a.split_once('=') {
            if name == "PATH" {
                path = Some(value);
            }
            continue;
        }
        return Some((a.as_str(), path));
    }
    None
}

/// Device files a tier 2 server may open (tier 1's minimal `/dev` has the same).
pub const TIER2_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// What a tier 2 server may read of the host's `/proc`: its own process (`/proc/self` is resolved when
/// the rule is made, in the server's process right before `exec`, which keeps the pid) and a few
/// machine-wide files runtimes read. No other process: their command lines and, for the same user,
/// environments would be readable.
pub const TIER2_PROC: &[&str] = &[
    "/proc/self",
    "/proc/meminfo",
    "/proc/cpuinfo",
    "/proc/stat",
    "/proc/loadavg",
    "/proc/uptime",
    "/proc/version",
];

/// Turns a tier 1 spec into tier 2 (no namespaces): the same Landlock rules without what only existed
/// inside the mount namespace. The tmpfs `HOME` and `/tmp` become `scratch/home` and `scratch/tmp` (a
/// private directory palisade made and removes; `TMPDIR` points there, `/tmp` is not writable), `/proc`
/// is narrowed to [`TIER2_PROC`] and `/dev` to [`TIER2_DEVICES`]. `processes` replaces the process limit
/// (without a user namespace `RLIMIT_NPROC` counts every process of the user). Pure.
pub fn degrade(mut spec: SandboxSpec, scratch: &Path, processes: Option<u64>) -> SandboxSpec {
    let only_inside: Vec<PathBuf> = spec
        .mounts
        .iter()
        .filter_map(|m| match m {
            Mount::Tmpfs { dst, .. } => Some(dst.clone()),
            Mount::Proc => Some("/proc".into()),
            Mount::Dev => Some("/dev".into()),
            Mount::RoBind { .. } | Mount::RwBind { .. } | Mount::Symlink { .. } => None,
        })
        .collect();
    // Tier 1 reads all of `/etc` through one Landlock rule because the mount namespace shows only the
    // chosen entries; without it, the rule must name those entries (or `/etc/shadow` would be readable
    // by root).
    let etc: Vec<PathBuf> = spec
        .mounts
        .iter()
        .filter_map(|m| match m {
            Mount::RoBind { dst, .. } | Mount::Symlink { dst, .. } if dst.starts_with("/etc") => {
                Some(dst.clone())
            }
            _ => None,
        })
        .collect();
    let home = scratch.join("home");
    let tmp = scratch.join("tmp");
    let ll = &mut spec.landlock;
    for set in [&mut ll.read_exec, &mut ll.read, &mut ll.write] {
        set.retain(|p| !only_inside.contains(p) && p != Path::new("/etc"));
    }
    ll.read.extend(etc);
    ll.write.extend([home.clone(), tmp.clone()]);
    ll.write.extend(TIER2_DEVICES.iter().map(PathBuf::from));
    ll.read.extend(TIER2_PROC.iter().map(PathBuf::from));
    spec.mounts.clear();
    spec.env.retain(|(k, _)| k != "HOME" && k != "TMPDIR");
    spec.env.push(("HOME".into(), path_string(&home)));
    spec.env.push(("TMPDIR".into(), path_string(&tmp)));
    if let Some(n) = processes {
        spec.rlimits.processes = Some(n);
    }
    spec.isolation = crate::spec::Isolation::LandlockOnly;
    spec
}

/// Why no sandbox could be planned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanError {
    /// The command line is empty.
    NoCommand,
    /// `argv[0]` is not an executable file on `PATH` (or at the path given).
    NotFound {
        /// The program as given.
        program: String,
    },
    /// A path that must be absolute is not.
    NotAbsolute {
        /// Which input (`cwd`, `HOME`).
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// A path could not be inspected.
    Io {
        /// The path.
        path: PathBuf,
        /// The error, rendered.
        error: String,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::NoCommand => f.write_str("no command to run"),
            PlanError::NotFound { program } => {
                write!(
                    f,
                    "cannot find `{program}`: not an executable file on PATH (is it installed?)"
                )
            }
            PlanError::NotAbsolute { what, path } => {
                write!(f, "{what} must be an absolute path: {}", path.display())
            }
            PlanError::Io { path, error } => {
                write!(f, "cannot inspect {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for PlanError {}

/// Landlock class of a visible tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Access {
    ReadExec,
    Read,
    Write,
}

/// A mount being planned, with the Landlock class it grants.
#[derive(Debug, Clone)]
struct Entry {
    mount: Mount,
    access: Option<Access>,
}

/// Plans the sandbox for one server. See the module docs for what becomes visible.
pub fn plan(input: &PlanInput) -> Result<SandboxSpec, PlanError> {
    for (what, p) in [("the working directory", &input.cwd), ("HOME", &input.home)] {
        if !p.is_absolute() {
            return Err(PlanError::NotAbsolute {
                what,
                path: p.clone(),
            });
        }
    }
    let program = input.argv.first().ok_or(PlanError::NoCommand)?;
    let path_var = input
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or("/usr/local/bin:/usr/bin:/bin", |(_, v)| v.as_str());
    let exe =
        resolve_program(program, path_var, &input.cwd).ok_or_else(|| PlanError::NotFound {
            program: program.clone(),
        })?;
    let home = canonical_or_lexical(&input.home);
    let cwd = canonicalize(&input.cwd)?;
    let mut p = Planner {
        home: home.clone(),
        path_var: path_var.to_owned(),
        cwd: cwd.clone(),
        entries: Vec::new(),
        rules: Vec::new(),
    };

    p.system();
    p.executable(&exe, 0, true);
    // `env NAME=VALUE… PROGRAM`: PROGRAM is the server, so it is as executable as argv[0].
    if let Some((program, path)) = env_program(&input.argv) {
        let found =
            resolve_program(program, path.unwrap_or(path_var), &input.cwd).ok_or_else(|| {
                PlanError::NotFound {
                    program: program.to_owned(),
                }
            })?;
        p.executable(&found, 0, true);
    }
    if shell_launcher(&input.argv).is_some() {
        for sh in LAUNCHER_SHELL {
            if Path::new(sh).exists() {
                p.executable(Path::new(sh), 0, true);
            }
        }
    }
    for arg in input.argv.iter().skip(1) {
        p.file_argument(arg);
    }
    for r in &input.extra_read {
        if let Ok(c) = std::fs::canonicalize(r) {
            p.bind_ro(c, Access::Read);
        }
    }
    for x in &input.extra_exec {
        let given = x.to_string_lossy();
        let found = resolve_program(&given, path_var, &input.cwd)
            .or_else(|| Some(absolutize(&input.cwd, x)).filter(|d| d.is_dir()))
            .ok_or_else(|| PlanError::NotFound {
                program: given.clone().into_owned(),
            })?;
        if found.is_dir() {
            let dir = canonicalize(&found)?;
            p.bind_ro(dir.clone(), Access::ReadExec);
        } else {
            p.executable(&found, 0, true);
        }
    }
    let roots: Vec<PathBuf> = input
        .read_roots
        .iter()
        .chain(&input.write_roots)
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .collect();
    for r in input
        .read_roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
    {
        p.bind_ro(r, Access::Read);
    }
    for r in input
        .write_roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
    {
        p.push(
            Mount::RwBind {
                src: r.clone(),
                dst: r,
            },
            Some(Access::Write),
        );
    }
    if !p.too_broad(&cwd) {
        p.bind_ro(cwd.clone(), Access::Read);
    }
    if home != Path::new("/") && !roots.contains(&home) {
        p.push(
            Mount::Tmpfs {
                dst: home.clone(),
                size: HOME_TMPFS_BYTES,
            },
            Some(Access::Write),
        );
    }
    p.push(
        Mount::Tmpfs {
            dst: "/tmp".into(),
            size: TMP_TMPFS_BYTES,
        },
        Some(Access::Write),
    );
    p.push(Mount::Proc, Some(Access::Read));
    p.push(Mount::Dev, Some(Access::Write));

    let (mounts, mut landlock) = finish(p.entries, p.rules);
    let proxy = input.net.proxy_port().map(proxy_env).unwrap_or_default();
    landlock.connect_tcp.extend(input.net.proxy_port());
    let mut env: Vec<(String, String)> = input
        .env
        .iter()
        .filter(|(k, _)| k != "HOME" && k != "TMPDIR" && !proxy.iter().any(|(p, _)| p == k))
        .cloned()
        .collect();
    env.extend(proxy);
    env.push(("HOME".into(), path_string(&home)));
    if input.env.iter().any(|(k, _)| k == "TMPDIR") {
        env.push(("TMPDIR".into(), "/tmp".into()));
    }
    let mut argv = input.argv.clone();
    argv[0] = path_string(&exe);
    Ok(SandboxSpec {
        argv,
        env,
        cwd,
        mounts,
        landlock,
        rlimits: Rlimits::default(),
        net: input.net.clone(),
        hostname: HOSTNAME.into(),
        pids_cgroup: None,
        isolation: Default::default(),
    })
}

struct Planner {
    home: PathBuf,
    path_var: String,
    cwd: PathBuf,
    entries: Vec<Entry>,
    /// Landlock rules without a mount of their own.
    rules: Vec<(PathBuf, Access)>,
}

impl Planner {
    fn push(&mut self, mount: Mount, access: Option<Access>) {
        self.entries.push(Entry { mount, access });
    }

    fn bind_ro(&mut self, path: PathBuf, access: Access) {
        self.push(
            Mount::RoBind {
                src: path.clone(),
                dst: path,
            },
            Some(access),
        );
    }

    /// `/`, `HOME` and the ancestors of `HOME` are never inferred as a whole.
    fn too_broad(&self, dir: &Path) -> bool {
        dir == Path::new("/") || self.home.starts_with(dir)
    }

    /// Binds `dir`, or only `file` when `dir` is too broad.
    fn bind_dir_or_file(&mut self, dir: &Path, file: &Path, access: Access) {
        if self.too_broad(dir) {
            self.bind_ro(file.to_path_buf(), access);
        } else {
            self.bind_ro(dir.to_path_buf(), access);
        }
    }

    fn system(&mut self) {
        for d in SYSTEM_DIRS {
            let d = Path::new(d);
            match std::fs::symlink_metadata(d) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(d) {
                        self.push(
                            Mount::Symlink {
                                dst: d.into(),
                                target,
                            },
                            None,
                        );
                    }
                }
                Ok(m) if m.is_dir() => self.bind_ro(d.into(), Access::Read),
                _ => {}
            }
        }
        let mut etc: Vec<String> = ETC_ENTRIES.iter().map(|s| (*s).to_owned()).collect();
        if let Ok(rd) = std::fs::read_dir("/etc") {
            for e in rd.flatten() {
                if let Some(n) = e.file_name().to_str()
                    && n.starts_with("python3")
                {
                    etc.push(n.to_owned());
                }
            }
        }
        etc.sort();
        etc.dedup();
        for name in etc {
            let p = Path::new("/etc").join(name);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(&p) {
                        self.push(Mount::Symlink { dst: p, target }, None);
                    }
                }
                Ok(_) => self.push(
                    Mount::RoBind {
                        src: p.clone(),
                        dst: p,
                    },
                    None,
                ),
                Err(_) => {}
            }
        }
        // One rule for the whole (filtered) `/etc` rather than one per entry.
        self.rules.push(("/etc".into(), Access::Read));
    }

    /// Makes an executable visible: every hop of its symlink chain, its install prefix (or venv), its `#!`
    /// interpreter and ELF program interpreter, recursively. With `exec`, the files in that chain (not
    /// the trees around them) may be executed.
    fn executable(&mut self, exe: &Path, depth: u32, exec: bool) {
        if depth > 6 {
            return;
        }
        let mut hops = Vec::new();
        let mut cur = exe.to_path_buf();
        for _ in 0..40 {
            let Some(parent) = cur.parent().and_then(|p| std::fs::canonicalize(p).ok()) else {
                return;
            };
            let Some(name) = cur.file_name() else { return };
            let here = parent.join(name);
            match std::fs::symlink_metadata(&here) {
                Ok(m) if m.file_type().is_symlink() => {
                    let Ok(target) = std::fs::read_link(&here) else {
                        return;
                    };
                    let next = if target.is_absolute() {
                        target.clone()
                    } else {
                        parent.join(&target)
                    };
                    self.push(
                        Mount::Symlink {
                            dst: here.clone(),
                            target,
                        },
                        None,
                    );
                    hops.push(here);
                    cur = next;
                }
                Ok(m) if m.is_file() => {
                    hops.push(here.clone());
                    cur = here;
                    break;
                }
                _ => return,
            }
        }
        let real = cur;
        if exec {
            // Landlock rules follow symlinks to the inode: the hops name the same file; listing them
            // keeps the allowlist readable.
            for hop in &hops {
                self.rules.push((hop.clone(), Access::ReadExec));
            }
        }
        // A venv anywhere in the chain: its directory and the interpreter it was made from.
        for hop in &hops {
            let prefix = install_prefix(hop);
            if prefix.join("pyvenv.cfg").is_file() && !is_system(&prefix) {
                self.bind_dir_or_file(&prefix, hop, Access::Read);
                if let Some(home) = venv_home(&prefix.join("pyvenv.cfg")) {
                    let base = std::fs::canonicalize(&home).unwrap_or(home);
                    if !is_system(&base) {
                        let dir = if base.file_name().is_some_and(|n| n == "bin") {
                            base.parent().map_or(base.clone(), Path::to_path_buf)
                        } else {
                            base.clone()
                        };
                        self.bind_dir_or_file(&dir, &base, Access::Read);
                    }
                }
            }
        }
        if !is_system(&real) {
            let prefix = install_prefix(&real);
            self.bind_dir_or_file(&prefix, &real, Access::Read);
        }
        if let Some((interp, arg)) = shebang(&real) {
            let interp = if interp.file_name().is_some_and(|n| n == "env") {
                self.executable(&interp, depth + 1, exec);
                arg.and_then(|a| resolve_program(&a, &self.path_var, &self.cwd))
            } else {
                Some(interp)
            };
            if let Some(i) = interp {
                self.executable(&i, depth + 1, exec);
            }
        } else if exec {
            match elf_interp(&real) {
                Ok(Some(interp)) => self.executable(&interp, depth + 1, true),
                Ok(None) => {}
                Err(()) => {
                    for ld in fallback_loaders() {
                        self.executable(&ld, depth + 1, true);
                    }
                }
            }
        }
    }

    /// An existing file among the arguments: a script brings its package, other files come alone.
    fn file_argument(&mut self, arg: &str) {
        if arg.starts_with('-') {
            return;
        }
        let p = absolutize(&self.cwd, Path::new(arg));
        if !p.is_file() {
            return;
        }
        let Ok(file) = std::fs::canonicalize(&p) else {
            return;
        };
        if is_system(&file) {
            return;
        }
        if !is_script(&file) {
            self.bind_ro(file, Access::Read);
            return;
        }
        let start = file.parent().unwrap_or(Path::new("/"));
        let package = start
            .ancestors()
            .take_while(|d| !self.too_broad(d))
            .find(|d| PACKAGE_MARKERS.iter().any(|m| d.join(m).is_file()));
        let dir = match package {
            Some(pkg) => pkg
                .ancestors()
                .take_while(|d| !self.too_broad(d))
                .filter(|d| d.file_name().is_some_and(|n| n == "node_modules"))
                .last()
                .unwrap_or(pkg)
                .to_path_buf(),
            None => start.to_path_buf(),
        };
        self.bind_dir_or_file(&dir, &file, Access::Read);
        // Visible, not executable: the script is an argument to a program that reads it.
        if let Some((interp, _)) = shebang(&file) {
            self.executable(&interp, 1, false);
        }
    }
}

/// Files that mark the root of a package.
const PACKAGE_MARKERS: &[&str] = &[
    "package.json",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "Cargo.toml",
    "go.mod",
];

/// Extensions of files that are programs rather than data.
const SCRIPT_EXTENSIONS: &[&str] = &[
    "js", "mjs", "cjs", "ts", "mts", "cts", "py", "pyz", "pyc", "rb", "pl", "php", "sh", "bash",
    "jar", "wasm", "lua",
];

fn is_script(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    file.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| SCRIPT_EXTENSIONS.contains(&e))
        || std::fs::metadata(file).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// Whether `p` is inside a system tree (already visible).
fn is_system(p: &Path) -> bool {
    SYSTEM_DIRS
        .iter()
        .chain(&["/etc"])
        .any(|d| p.starts_with(d))
}

/// The install prefix of an executable: `…/bin/x` → `…`, otherwise its directory.
fn install_prefix(exe: &Path) -> PathBuf {
    let dir = exe.parent().unwrap_or(Path::new("/"));
    if dir.file_name().is_some_and(|n| n == "bin" || n == "sbin") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// `home = DIR` from a `pyvenv.cfg`.
fn venv_home(cfg: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(cfg).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "home").then(|| PathBuf::from(v.trim()))
    })
}

/// The interpreter and its optional single argument from a `#!` line.
fn shebang(file: &Path) -> Option<(PathBuf, Option<String>)> {
    let mut buf = [0u8; 256];
    let n = std::fs::File::open(file).ok()?.read(&mut buf).ok()?;
    let head = buf.get(..n)?;
    let rest = head.strip_prefix(b"#!")?;
    let line = rest.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim();
    let mut words = line.split_whitespace();
    let interp = PathBuf::from(words.next()?);
    if !interp.is_absolute() {
        return None;
    }
    // `#!/usr/bin/env -S node --flag` and `#!/usr/bin/env VAR=x node`: the first plain word is the program.
    let arg = words
        .find(|w| !w.starts_with('-') && !w.contains('='))
        .map(str::to_owned);
    Some((interp, arg))
}

/// The ELF program interpreter (`PT_INTERP`) of `file`: `Ok(None)` for a static ELF, `Err` when `file` is
/// not an ELF this parser reads (32/64-bit little-endian) or is truncated.
pub(crate) fn elf_interp(file: &Path) -> Result<Option<PathBuf>, ()> {
    use std::os::unix::fs::FileExt;
    const PT_INTERP: u32 = 3;
    let f = std::fs::File::open(file).map_err(drop)?;
    let at = |off: u64, buf: &mut [u8]| f.read_exact_at(buf, off).map_err(drop);
    let mut h = [0u8; 64];
    at(0, &mut h[..52])?;
    if &h[..4] != b"\x7fELF" || h[5] != 1 {
        return Err(());
    }
    let u16_ = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_ = |b: &[u8], o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let u64_ = |b: &[u8], o: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(x)
    };
    let wide = match h[4] {
        1 => false,
        2 => true,
        _ => return Err(()),
    };
    if wide {
        at(0, &mut h)?;
    }
    let (phoff, phentsize, phnum) = if wide {
        (u64_(&h, 0x20), u16_(&h, 0x36), u16_(&h, 0x38))
    } else {
        (u64::from(u32_(&h, 0x1c)), u16_(&h, 0x2a), u16_(&h, 0x2c))
    };
    let need = if wide { 56 } else { 32 };
    if usize::from(phentsize) < need {
        return Err(());
    }
    let mut ph = vec![0u8; need];
    for i in 0..u64::from(phnum) {
        at(phoff + i * u64::from(phentsize), &mut ph)?;
        if u32_(&ph, 0) != PT_INTERP {
            continue;
        }
        let (off, size) = if wide {
            (u64_(&ph, 8), u64_(&ph, 32))
        } else {
            (u64::from(u32_(&ph, 4)), u64::from(u32_(&ph, 16)))
        };
        if size == 0 || size > 4096 {
            return Err(());
        }
        let mut name = vec![0u8; size as usize];
        at(off, &mut name)?;
        let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
        name.truncate(end);
        let path = PathBuf::from(std::ffi::OsString::from_vec(name));
        return if path.is_absolute() {
            Ok(Some(path))
        } else {
            Err(())
        };
    }
    Ok(None)
}

/// The dynamic loaders of this system, for an ELF whose program interpreter could not be read.
fn fallback_loaders() -> Vec<PathBuf> {
    let triplet = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
    let mut out = Vec::new();
    for dir in ["/lib64", "/lib", "/usr/lib64", triplet.as_str()] {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with("ld-linux"))
            })
            .map(|e| e.path())
            .collect();
        names.sort();
        out.extend(names);
    }
    out
}

/// An absolute path for `program`: as given when it contains a `/` (relative to `cwd`), else the first
/// executable file of that name on `path_var`.
fn resolve_program(program: &str, path_var: &str, cwd: &Path) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let p = absolutize(cwd, Path::new(program));
        return is_executable(&p).then_some(p);
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| absolutize(cwd, &Path::new(d).join(program)))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `cwd.join(p)` without `.` components.
fn absolutize(cwd: &Path, p: &Path) -> PathBuf {
    let joined = cwd.join(p);
    joined
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

fn canonicalize(p: &Path) -> Result<PathBuf, PlanError> {
    std::fs::canonicalize(p).map_err(|e| PlanError::Io {
        path: p.to_path_buf(),
        error: e.to_string(),
    })
}

/// The canonical path when it exists, else the path without `.` components.
fn canonical_or_lexical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| absolutize(Path::new("/"), p))
}

fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Which mount wins at one destination.
fn rank(m: &Mount) -> u8 {
    match m {
        Mount::RwBind { .. } => 4,
        Mount::RoBind { .. } => 3,
        Mount::Proc | Mount::Dev => 2,
        Mount::Tmpfs { .. } => 1,
        Mount::Symlink { .. } => 0,
    }
}

/// Sorts, deduplicates and drops nested-redundant mounts; derives the Landlock rules.
fn finish(entries: Vec<Entry>, rules: Vec<(PathBuf, Access)>) -> (Vec<Mount>, LandlockRules) {
    let mut entries = entries;
    entries.sort_by(|a, b| {
        a.mount
            .dst()
            .cmp(b.mount.dst())
            .then(rank(&b.mount).cmp(&rank(&a.mount)))
    });
    entries.dedup_by(|later, first| later.mount.dst() == first.mount.dst());

    let mut kept: Vec<&Entry> = Vec::new();
    for e in &entries {
        let d = e.mount.dst();
        let enclosing = kept
            .iter()
            .rev()
            .find(|k| d.starts_with(k.mount.dst()) && d != k.mount.dst());
        let redundant = matches!(
            (enclosing.map(|k| &k.mount), &e.mount),
            (
                Some(Mount::RoBind { .. } | Mount::RwBind { .. }),
                Mount::RoBind { .. } | Mount::Symlink { .. }
            ) | (Some(Mount::RwBind { .. }), Mount::RwBind { .. })
        );
        if !redundant {
            kept.push(e);
        }
    }
    // Landlock rules come from every entry (a nested tree may need more rights than its parent mount
    // gives); a tree listed for read and also for write or read+exec keeps only the stronger rule. Nested
    // rules are kept as they are: a Landlock rule covers whatever is mounted below its path (a read-only
    // bind under the `/tmp` tmpfs is writable as far as Landlock is concerned; the read-only mount is the
    // first layer there), so an ancestor rule is no reason to drop one.
    let mut sets: [BTreeSet<PathBuf>; 3] = Default::default();
    let all = entries
        .iter()
        .filter_map(|e| e.access.map(|a| (e.mount.dst().to_path_buf(), a)))
        .chain(rules);
    for (path, a) in all {
        let i = match a {
            Access::ReadExec => 0,
            Access::Read => 1,
            Access::Write => 2,
        };
        sets[i].insert(path);
    }
    let [read_exec, read, write] = sets;
    let landlock = LandlockRules {
        read: read
            .into_iter()
            .filter(|p| !read_exec.contains(p) && !write.contains(p))
            .collect(),
        read_exec: read_exec.into_iter().collect(),
        write: write.into_iter().collect(),
        connect_tcp: Vec::new(),
    };
    (
        kept.into_iter().map(|e| e.mount.clone()).collect(),
        landlock,
    )
}

#[cfg(test)]
mod tests;
