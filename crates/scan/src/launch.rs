//! What a server entry actually runs.
//!
//! A config's `command` + `args` is often a wrapper around the real launch: `palisade run [flags] -- CMD…`
//! (already guarded: its flags and its inner command are what matter), `cmd /c npx …` (the Windows way to
//! start npx; transparent), or `env VAR=x CMD…`. [`Launch::of`] peels those layers so rules look at the
//! program that finally runs, while keeping every argument's span for locations. The helpers below read
//! the common launchers: package runners ([`PackageRun`]: npx, uvx, pipx run, bunx, `pnpm dlx`, `yarn
//! dlx`, `npm exec`, `uv tool run`), containers ([`DockerRun`]) and inline scripts ([`InlineScript`]:
//! `sh -c`, `node -e`, `python -c`, …).

use crate::config::{ServerEntry, Text};

/// The `palisade run` layer of a wrapped server.
#[derive(Debug, Clone)]
pub struct Palisade<'a> {
    /// The `palisade` program argument.
    pub command: &'a Text,
    /// `--server NAME`.
    pub server: Option<&'a Text>,
    /// `--policy FILE`.
    pub policy: Option<&'a Text>,
    /// Every `--flag VALUE` before `--`, flag name without dashes (`allow-read`, …).
    pub flags: Vec<(String, &'a Text)>,
    /// Whether a command follows `--`.
    pub has_inner: bool,
}

/// What a server entry runs, wrappers peeled.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// Set when the entry runs through `palisade run`.
    pub palisade: Option<Palisade<'a>>,
    /// The program and arguments that finally run.
    pub argv: Vec<&'a Text>,
    /// `VAR=value` words of an `env` wrapper.
    pub env_assignments: Vec<&'a Text>,
}

/// The program name without directory or Windows extension, lower-cased (`/usr/bin/npx.cmd` → `npx`).
pub fn program(arg: &str) -> String {
    let base = arg
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(arg)
        .to_ascii_lowercase();
    for ext in [".exe", ".cmd", ".bat", ".ps1"] {
        if let Some(b) = base.strip_suffix(ext) {
            return b.to_owned();
        }
    }
    base
}

const PALISADE_VALUE_FLAGS: &[&str] = &[
    "policy",
    "server",
    "profile",
    "allow-tool",
    "deny-tool",
    "allow-read",
    "allow-write",
    "allow-exec",
    "allow-net",
    "pins",
    "audit-log",
];

impl<'a> Launch<'a> {
    /// Peels the wrappers off `entry`'s command line.
    pub fn of(entry: &'a ServerEntry) -> Launch<'a> {
        let mut argv: Vec<&Text> = entry.command.iter().chain(entry.args.iter()).collect();
        let mut palisade = None;
        let mut env_assignments = Vec::new();
        for _ in 0..8 {
            let Some(first) = argv.first() else { break };
            match program(&first.value).as_str() {
                "palisade"
                    if palisade.is_none() && argv.get(1).is_some_and(|a| a.value == "run") =>
                {
                    let (p, inner) = read_palisade(&argv);
                    palisade = Some(p);
                    argv = inner;
                }
                "cmd"
                    if argv.get(1).is_some_and(|a| {
                        a.value.eq_ignore_ascii_case("/c") || a.value.eq_ignore_ascii_case("/k")
                    }) =>
                {
                    // `cmd /c npx -y pkg` runs npx with those words; a single string with spaces is a
                    // script (left for the inline-script rule).
                    if argv.len() == 3 && argv[2].value.contains(char::is_whitespace)
                        || argv.len() < 3
                    {
                        break;
                    }
                    argv.drain(..2);
                }
                "env" => {
                    let mut i = 1;
                    while i < argv.len() {
                        let a = &argv[i].value;
                        if a == "-i" || a == "--ignore-environment" || a == "-" {
                            i += 1;
                        } else if a == "-u" || a == "--unset" {
                            i += 2;
                        } else if a.starts_with("--unset=") {
                            i += 1;
                        } else if !a.starts_with('-') && a.contains('=') {
                            env_assignments.push(argv[i]);
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    if i >= argv.len() {
                        break;
                    }
                    argv.drain(..i);
                }
                _ => break,
            }
        }
        Launch {
            palisade,
            argv,
            env_assignments,
        }
    }

    /// The final program, normalized by [`program`].
    pub fn program(&self) -> Option<String> {
        self.argv.first().map(|a| program(&a.value))
    }

    /// The final argv as plain strings.
    pub fn words(&self) -> Vec<String> {
        self.argv.iter().map(|a| a.value.clone()).collect()
    }

    /// The final argv with secrets masked, for messages and fixes.
    pub fn masked_words(&self) -> Vec<String> {
        crate::secrets::masked_argv(&self.words())
    }
}

fn read_palisade<'a>(argv: &[&'a Text]) -> (Palisade<'a>, Vec<&'a Text>) {
    let mut p = Palisade {
        command: argv[0],
        server: None,
        policy: None,
        flags: Vec::new(),
        has_inner: false,
    };
    let mut i = 2;
    while i < argv.len() {
        let a = argv[i].value.as_str();
        if a == "--" {
            p.has_inner = i + 1 < argv.len();
            return (p, argv[i + 1..].to_vec());
        }
        if let Some(flag) = a.strip_prefix("--") {
            let (name, inline) = match flag.split_once('=') {
                Some((n, _)) => (n, true),
                None => (flag, false),
            };
            if PALISADE_VALUE_FLAGS.contains(&name) {
                let value = if inline {
                    argv[i]
                } else {
                    i += 1;
                    match argv.get(i) {
                        Some(v) => v,
                        None => break,
                    }
                };
                match name {
                    "server" => p.server = Some(value),
                    "policy" => p.policy = Some(value),
                    _ => {}
                }
                p.flags.push((name.to_owned(), value));
            }
        }
        i += 1;
    }
    (p, Vec::new())
}

/// The value of a `--flag=value` argument, or the argument itself.
pub fn flag_value(arg: &str) -> &str {
    match arg.split_once('=') {
        Some((f, v)) if f.starts_with('-') => v,
        _ => arg,
    }
}

/// Which registry a package runner installs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ecosystem {
    /// npm.
    Npm,
    /// PyPI.
    PyPi,
}

/// A package runner invocation: something installed from a registry at start time.
#[derive(Debug, Clone)]
pub struct PackageRun<'a> {
    /// `npx`, `uvx`, `pipx run`, …
    pub runner: &'static str,
    /// npm or PyPI.
    pub ecosystem: Ecosystem,
    /// The package spec argument (for `--package=x`/`--from=x` the whole argument).
    pub spec: &'a Text,
    /// The spec itself (the value part of `--package=x`).
    pub spec_value: String,
    /// `-y` / `--yes`.
    pub auto_yes: Option<&'a Text>,
}

/// Reads a package runner from `argv`.
pub fn package_run<'a>(argv: &[&'a Text]) -> Option<PackageRun<'a>> {
    let prog = program(&argv.first()?.value);
    let sub = argv.get(1).map(|a| a.value.as_str());
    let (runner, eco, start) = match (prog.as_str(), sub) {
        ("npx" | "pnpx", _) => ("npx", Ecosystem::Npm, 1),
        ("bunx", _) => ("bunx", Ecosystem::Npm, 1),
        ("bun", Some("x")) => ("bunx", Ecosystem::Npm, 2),
        ("npm", Some("exec" | "x")) => ("npm exec", Ecosystem::Npm, 2),
        ("pnpm", Some("dlx")) => ("pnpm dlx", Ecosystem::Npm, 2),
        ("yarn", Some("dlx")) => ("yarn dlx", Ecosystem::Npm, 2),
        ("uvx", _) => ("uvx", Ecosystem::PyPi, 1),
        ("uv", Some("tool")) if argv.get(2).is_some_and(|a| a.value == "run") => {
            ("uv tool run", Ecosystem::PyPi, 3)
        }
        ("pipx", Some("run")) => ("pipx run", Ecosystem::PyPi, 2),
        _ => return None,
    };
    let (spec_flags, value_flags): (&[&str], &[&str]) = match eco {
        Ecosystem::Npm => (
            &["-p", "--package"],
            &["-c", "--call", "--cache", "--registry", "--userconfig"],
        ),
        Ecosystem::PyPi => (
            &["--from", "--spec"],
            &[
                "--with",
                "-w",
                "--with-editable",
                "--with-requirements",
                "--python",
                "-p",
                "--index-url",
                "-i",
                "--extra-index-url",
                "--index",
                "--default-index",
                "--directory",
                "--project",
                "--config-file",
                "--cache-dir",
                "--constraints",
                "-c",
                "--overrides",
                "--env-file",
                "--find-links",
                "-f",
                "--pip-args",
                "--python-platform",
            ],
        ),
    };
    let mut auto_yes = None;
    let mut spec: Option<(&Text, String)> = None;
    let mut i = start;
    while i < argv.len() {
        let a = argv[i];
        let v = a.value.as_str();
        if v == "--" {
            if spec.is_none() {
                spec = argv.get(i + 1).map(|t| (*t, t.value.clone()));
            }
            break;
        }
        if v == "-y" || v == "--yes" {
            auto_yes = Some(a);
        } else if let Some((f, val)) = v.split_once('=').filter(|(f, _)| f.starts_with('-')) {
            if spec_flags.contains(&f) {
                spec = Some((a, val.to_owned()));
            }
        } else if spec_flags.contains(&v) {
            i += 1;
            if let Some(t) = argv.get(i) {
                spec = Some((t, t.value.clone()));
            }
        } else if value_flags.contains(&v) {
            i += 1;
        } else if v.starts_with('-') {
            // A boolean flag.
        } else {
            if spec.is_none() {
                spec = Some((a, v.to_owned()));
            }
            break;
        }
        i += 1;
    }
    let (spec, spec_value) = spec?;
    Some(PackageRun {
        runner,
        ecosystem: eco,
        spec,
        spec_value,
        auto_yes,
    })
}

/// Why a package spec is not pinned to one exact version (`None`: pinned, or not a registry package).
pub fn unpinned_reason(eco: Ecosystem, spec: &str) -> Option<String> {
    if is_local(spec) {
        return None;
    }
    match eco {
        Ecosystem::Npm => npm_unpinned(spec),
        Ecosystem::PyPi => pypi_unpinned(spec),
    }
}

fn is_local(spec: &str) -> bool {
    spec.starts_with('.')
        || spec.starts_with('/')
        || spec.starts_with('~')
        || spec.starts_with("file:")
        || spec.ends_with(".tgz")
        || spec.ends_with(".whl")
        || spec.ends_with(".tar.gz")
        || (spec.len() > 2
            && spec.as_bytes()[1] == b':'
            && spec.as_bytes()[0].is_ascii_alphabetic())
}

fn is_git(spec: &str) -> bool {
    spec.starts_with("git+")
        || spec.starts_with("git:")
        || spec.starts_with("github:")
        || spec.starts_with("gitlab:")
        || spec.starts_with("https://")
        || spec.starts_with("http://")
}

fn is_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn npm_unpinned(spec: &str) -> Option<String> {
    if is_git(spec) || (!spec.starts_with('@') && spec.contains('/')) {
        return match spec.rsplit_once('#') {
            Some((_, r)) if is_sha(r) => None,
            _ => Some("a git source without a commit hash (`#<40-hex sha>`)".into()),
        };
    }
    let version = match spec.strip_prefix('@') {
        Some(rest) => rest.split_once('@').map(|(_, v)| v),
        None => spec.split_once('@').map(|(_, v)| v),
    };
    match version {
        None | Some("") => Some("no version: whatever is published next runs".into()),
        Some(v) if is_exact_semver(v) => None,
        Some(v) if v.starts_with(|c: char| c.is_ascii_alphabetic()) => Some(format!(
            "the `@{v}` tag, which moves when a new version is published"
        )),
        Some(v) => Some(format!("the range `@{v}`, which matches future versions")),
    }
}

fn is_exact_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn pypi_unpinned(spec: &str) -> Option<String> {
    if is_git(spec) || spec.contains(" @ ") {
        let rev = spec
            .rsplit_once('@')
            .map(|(_, r)| r.split('#').next().unwrap_or(r));
        return match rev {
            Some(r) if is_sha(r) => None,
            _ => Some("a git source without a commit hash (`@<40-hex sha>`)".into()),
        };
    }
    if let Some((_, v)) = spec.split_once("===").or_else(|| spec.split_once("==")) {
        return if !v.is_empty() && !v.contains(['*', ',', ';', ' ']) {
            None
        } else {
            Some(format!("the version pattern `=={v}`"))
        };
    }
    if let Some((_, v)) = spec.split_once('@') {
        return match v {
            "latest" => Some("`@latest`, which always takes the newest release".into()),
            v if !v.is_empty()
                && v.starts_with(|c: char| c.is_ascii_digit())
                && !v.contains(['*', ',']) =>
            {
                None
            }
            v => Some(format!("`@{v}`, which is not one exact version")),
        };
    }
    if spec.contains(['>', '<', '~', '!', '=']) {
        return Some("a version range, which matches future versions".into());
    }
    Some("no version: whatever is published next runs".into())
}

/// A `docker run` / `podman run` invocation.
#[derive(Debug, Clone)]
pub struct DockerRun<'a> {
    /// `docker` or `podman`.
    pub engine: String,
    /// The `run` word (where container-wide findings point).
    pub run: &'a Text,
    /// Options before the image: (long name, value, the argument holding the value or the flag).
    pub options: Vec<(String, Option<String>, &'a Text)>,
    /// The image argument.
    pub image: Option<&'a Text>,
}

impl<'a> DockerRun<'a> {
    /// Values of option `name` (long form, e.g. `--volume`).
    pub fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = (&'s str, &'a Text)> + 's {
        self.options
            .iter()
            .filter(move |(n, _, _)| n == name)
            .filter_map(|(_, v, t)| v.as_deref().map(|v| (v, *t)))
    }

    /// The argument of boolean option `name` when set (and not `=false`).
    pub fn flag(&self, name: &str) -> Option<&'a Text> {
        self.options
            .iter()
            .find(|(n, v, _)| n == name && v.as_deref() != Some("false"))
            .map(|(_, _, t)| *t)
    }

    /// Host paths bind-mounted into the container, with the argument that mounts them.
    pub fn bind_sources(&self) -> Vec<(String, &'a Text)> {
        let mut out = Vec::new();
        for (v, t) in self.values("--volume") {
            // `SRC:DST[:opts]`, or a Windows `C:\src:DST`.
            let src = if v.len() > 2 && v.as_bytes()[1] == b':' {
                v[2..].split(':').next().map(|s| format!("{}{s}", &v[..2]))
            } else {
                v.split(':').next().map(str::to_owned)
            };
            if let Some(s) = src.filter(|s| !s.is_empty()) {
                out.push((s, t));
            }
        }
        for (v, t) in self.values("--mount") {
            for kv in v.split(',') {
                if let Some(("source" | "src", s)) = kv.split_once('=') {
                    out.push((s.to_owned(), t));
                }
            }
        }
        out
    }
}

const DOCKER_VALUE_OPTS: &[&str] = &[
    "--volume",
    "--env",
    "--env-file",
    "--name",
    "--network",
    "--publish",
    "--mount",
    "--workdir",
    "--user",
    "--entrypoint",
    "--cap-add",
    "--cap-drop",
    "--security-opt",
    "--pull",
    "--label",
    "--platform",
    "--memory",
    "--cpus",
    "--tmpfs",
    "--add-host",
    "--dns",
    "--hostname",
    "--ulimit",
    "--pid",
    "--ipc",
    "--userns",
    "--device",
    "--gpus",
    "--runtime",
    "--restart",
    "--log-driver",
    "--log-opt",
    "--expose",
    "--group-add",
    "--shm-size",
    "--stop-signal",
    "--cidfile",
    "--cgroupns",
    "--uts",
    "--volumes-from",
    "--label-file",
    "--link",
    "--ip",
    "--memory-swap",
    "--pids-limit",
    "--cpu-shares",
    "--storage-opt",
    "--sysctl",
    "--attach",
    "--detach-keys",
    "--stop-timeout",
    "--network-alias",
    "--annotation",
    "--health-cmd",
    "--cgroup-parent",
    "--cpuset-cpus",
];

fn docker_long(short: char) -> Option<&'static str> {
    Some(match short {
        'v' => "--volume",
        'e' => "--env",
        'u' => "--user",
        'w' => "--workdir",
        'p' => "--publish",
        'm' => "--memory",
        'h' => "--hostname",
        'l' => "--label",
        'a' => "--attach",
        'c' => "--cpu-shares",
        _ => return None,
    })
}

/// Reads `docker|podman [global opts] [container] run [opts] IMAGE [cmd…]` from `argv`.
pub fn docker_run<'a>(argv: &[&'a Text]) -> Option<DockerRun<'a>> {
    let engine = program(&argv.first()?.value);
    if engine != "docker" && engine != "podman" {
        return None;
    }
    let mut i = 1;
    // Global options take values (`--context x`, `-H host`).
    while i < argv.len() && argv[i].value.starts_with('-') {
        let v = argv[i].value.as_str();
        if !v.contains('=')
            && matches!(
                v,
                "--context" | "-c" | "-H" | "--host" | "--config" | "-l" | "--log-level"
            )
        {
            i += 1;
        }
        i += 1;
    }
    if argv.get(i).is_some_and(|a| a.value == "container") {
        i += 1;
    }
    let run = *argv.get(i).filter(|a| a.value == "run")?;
    i += 1;
    let mut options = Vec::new();
    let mut image = None;
    while i < argv.len() {
        let a = argv[i];
        let v = a.value.as_str();
        if v == "--" {
            image = argv.get(i + 1).copied();
            break;
        }
        if let Some(long) = v.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, val)) => (format!("--{n}"), Some(val.to_owned())),
                None => (format!("--{long}"), None),
            };
            let name = if name == "--net" {
                "--network".to_owned()
            } else {
                name
            };
            if inline.is_some() {
                options.push((name, inline, a));
            } else if DOCKER_VALUE_OPTS.contains(&name.as_str()) {
                i += 1;
                let val = argv.get(i).copied();
                options.push((name, val.map(|t| t.value.clone()), val.unwrap_or(a)));
            } else {
                options.push((name, None, a));
            }
        } else if let Some(shorts) = v.strip_prefix('-').filter(|s| !s.is_empty()) {
            let chars: Vec<char> = shorts.chars().collect();
            for (k, c) in chars.iter().enumerate() {
                if let Some(long) = docker_long(*c) {
                    let rest: String = chars[k + 1..].iter().collect();
                    let rest = rest.strip_prefix('=').unwrap_or(&rest).to_owned();
                    if !rest.is_empty() {
                        options.push((long.to_owned(), Some(rest), a));
                    } else {
                        i += 1;
                        let val = argv.get(i).copied();
                        options.push((
                            long.to_owned(),
                            val.map(|t| t.value.clone()),
                            val.unwrap_or(a),
                        ));
                    }
                    break;
                }
                options.push((format!("-{c}"), None, a));
            }
        } else {
            image = Some(a);
            break;
        }
        i += 1;
    }
    Some(DockerRun {
        engine,
        run,
        options,
        image,
    })
}

/// Code passed inline to an interpreter (`sh -c CODE`, `node -e CODE`, `cmd /c "CODE"`).
#[derive(Debug, Clone)]
pub struct InlineScript<'a> {
    /// The interpreter's program name.
    pub interpreter: String,
    /// The flag (`-c`, `-e`, `/c`, …).
    pub flag: &'a Text,
    /// The code.
    pub code: &'a Text,
}

/// Reads an inline script from `argv`.
pub fn inline_script<'a>(argv: &[&'a Text]) -> Option<InlineScript<'a>> {
    let interp = program(&argv.first()?.value);
    let is_flag: fn(&str) -> bool = match interp.as_str() {
        "sh" | "bash" | "zsh" | "dash" | "ksh" | "ash" | "fish" => {
            |f| f.starts_with('-') && !f.starts_with("--") && f.contains('c')
        }
        "node" | "nodejs" | "bun" => |f| matches!(f, "-e" | "--eval" | "-p" | "--print"),
        "deno" => |f| matches!(f, "eval" | "-e"),
        "python" | "python3" | "python2" | "py" => |f| f == "-c",
        "perl" | "ruby" => |f| f == "-e" || f == "-E",
        "powershell" | "pwsh" => |f| {
            let f = f.to_ascii_lowercase();
            matches!(
                f.as_str(),
                "-command" | "-c" | "-encodedcommand" | "-e" | "-ec"
            )
        },
        "cmd" => |f| f.eq_ignore_ascii_case("/c") || f.eq_ignore_ascii_case("/k"),
        _ => return None,
    };
    let i = argv.iter().skip(1).position(|a| is_flag(&a.value))? + 1;
    let code = argv.get(i + 1)?;
    Some(InlineScript {
        interpreter: interp,
        flag: argv[i],
        code,
    })
}

/// Whether `path` (as written in a config) is a Windows or POSIX absolute path, or home-relative.
pub fn looks_like_path(s: &str) -> bool {
    s.starts_with('/')
        || s.starts_with('~')
        || s.starts_with("$HOME")
        || s.starts_with("${HOME}")
        || s.starts_with("%USERPROFILE%")
        || (s.len() >= 3
            && s.as_bytes()[0].is_ascii_alphabetic()
            && s.as_bytes()[1] == b':'
            && matches!(s.as_bytes()[2], b'\\' | b'/'))
        || (s.len() == 2 && s.as_bytes()[0].is_ascii_alphabetic() && s.as_bytes()[1] == b':')
}

/// `Path::new(p)`'s components as strings (for Windows paths too), without `.` and trailing separators.
pub fn components(p: &str) -> Vec<String> {
    p.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(words: &[&str]) -> Vec<Text> {
        words
            .iter()
            .enumerate()
            .map(|(i, w)| Text {
                value: (*w).to_owned(),
                span: i..i + 1,
            })
            .collect()
    }

    fn entry(words: &[&str]) -> ServerEntry {
        let t = texts(words);
        ServerEntry {
            name: "s".into(),
            pointer: vec![],
            key_span: 0..0,
            span: 0..0,
            transport: crate::config::Transport::Stdio,
            command: t.first().cloned(),
            args: t[1..].to_vec(),
            env: vec![],
            env_passthrough: vec![],
            url: None,
            headers: vec![],
            auth_from_env: false,
            disabled: false,
        }
    }

    #[test]
    fn peels_palisade_cmd_and_env_wrappers() {
        let e = entry(&[
            "/usr/local/bin/palisade",
            "run",
            "--server",
            "gh",
            "--allow-read=/tmp",
            "--",
            "cmd",
            "/c",
            "env",
            "A=1",
            "npx",
            "-y",
            "pkg@1.0.0",
        ]);
        let l = Launch::of(&e);
        let p = l.palisade.as_ref().unwrap();
        assert_eq!(p.server.unwrap().value, "gh");
        assert_eq!(p.flags.len(), 2);
        assert!(p.has_inner);
        assert_eq!(l.words(), ["npx", "-y", "pkg@1.0.0"]);
        assert_eq!(l.env_assignments[0].value, "A=1");
        let script = entry(&["cmd", "/c", "npx -y pkg"]);
        assert_eq!(Launch::of(&script).words(), ["cmd", "/c", "npx -y pkg"]);
    }

    #[test]
    fn finds_package_specs_behind_runner_flags() {
        let spec = |w: &[&str]| {
            let t = texts(w);
            let r: Vec<&Text> = t.iter().collect();
            package_run(&r).map(|p| (p.runner, p.spec_value, p.auto_yes.is_some()))
        };
        assert_eq!(
            spec(&["npx", "-y", "@s/p@1.2.3", "x"]),
            Some(("npx", "@s/p@1.2.3".into(), true))
        );
        assert_eq!(
            spec(&["npx", "--package=@s/p", "bin"]),
            Some(("npx", "@s/p".into(), false))
        );
        assert_eq!(
            spec(&["uvx", "--python", "3.12", "--from", "a==1", "a-cli"]),
            Some(("uvx", "a==1".into(), false))
        );
        assert_eq!(
            spec(&["pipx", "run", "tool"]),
            Some(("pipx run", "tool".into(), false))
        );
        assert_eq!(
            spec(&["uv", "tool", "run", "x@latest"]),
            Some(("uv tool run", "x@latest".into(), false))
        );
        assert_eq!(spec(&["pnpm", "dlx", "p@2"]).map(|s| s.0), Some("pnpm dlx"));
        assert_eq!(spec(&["node", "x.js"]), None);
    }

    #[test]
    fn pins_are_exact_versions_or_commit_hashes() {
        use Ecosystem::*;
        for (eco, spec, pinned) in [
            (Npm, "@modelcontextprotocol/server-github@2025.4.8", true),
            (Npm, "pkg@1.0.0-beta.1", true),
            (Npm, "@modelcontextprotocol/server-github", false),
            (Npm, "@playwright/mcp@latest", false),
            (Npm, "pkg@^1.2.0", false),
            (Npm, "pkg@1.2", false),
            (Npm, "github:user/repo", false),
            (
                Npm,
                "user/repo#0123456789abcdef0123456789abcdef01234567",
                true,
            ),
            (Npm, "./local", true),
            (PyPi, "mcp-server-time==2026.10.1", true),
            (PyPi, "mcp-server-time", false),
            (PyPi, "mcp-server-time@latest", false),
            (PyPi, "mcp-server-time@2026.10.1", true),
            (PyPi, "mcp-server-time>=1", false),
            (
                PyPi,
                "git+https://h/r@0123456789abcdef0123456789abcdef01234567",
                true,
            ),
            (PyPi, "git+https://h/r", false),
        ] {
            assert_eq!(unpinned_reason(eco, spec).is_none(), pinned, "{spec}");
        }
    }

    #[test]
    fn reads_docker_options_image_and_mounts() {
        let t = texts(&[
            "docker",
            "run",
            "-i",
            "--rm",
            "-e",
            "GITHUB_TOKEN",
            "-v",
            "/var/run/docker.sock:/s",
            "--network=none",
            "--mount",
            "type=bind,source=/home/u,target=/w",
            "ghcr.io/o/i:1",
            "serve",
        ]);
        let r: Vec<&Text> = t.iter().collect();
        let d = docker_run(&r).unwrap();
        assert_eq!(d.image.unwrap().value, "ghcr.io/o/i:1");
        assert_eq!(d.values("--env").next().unwrap().0, "GITHUB_TOKEN");
        assert_eq!(d.values("--network").next().unwrap().0, "none");
        let srcs: Vec<_> = d.bind_sources().into_iter().map(|(s, _)| s).collect();
        assert_eq!(srcs, ["/var/run/docker.sock", "/home/u"]);
        assert!(d.flag("--rm").is_some() && d.flag("--privileged").is_none());
    }

    #[test]
    fn finds_inline_scripts() {
        let s = |w: &[&str]| {
            let t = texts(w);
            let r: Vec<&Text> = t.iter().collect();
            inline_script(&r).map(|s| s.code.value.clone())
        };
        assert_eq!(
            s(&["bash", "-lc", "curl x | sh"]).as_deref(),
            Some("curl x | sh")
        );
        assert_eq!(
            s(&["node", "-e", "require('x')"]).as_deref(),
            Some("require('x')")
        );
        assert_eq!(s(&["python3", "-m", "srv"]), None);
        assert_eq!(s(&["bash", "run.sh"]), None);
    }
}
