use super::*;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory under the system temp dir, removed on drop; `home/` exists in it.
struct Tmp(PathBuf);

impl Tmp {
    fn new() -> Tmp {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "palisade-plan-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("home")).unwrap();
        Tmp(std::fs::canonicalize(dir).unwrap())
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    fn file(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
    fn exe(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.file(rel, text);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }
    fn dir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
    fn input(&self, argv: &[&str]) -> PlanInput {
        PlanInput {
            argv: argv.iter().map(|s| (*s).to_owned()).collect(),
            env: vec![
                ("PATH".into(), "/usr/bin:/bin".into()),
                ("HOME".into(), "/somewhere/else".into()),
            ],
            cwd: self.dir("cwd"),
            home: self.path("home"),
            ..PlanInput::default()
        }
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ro(p: impl Into<PathBuf>) -> Mount {
    let p = p.into();
    Mount::RoBind {
        src: p.clone(),
        dst: p,
    }
}

fn rw(p: impl Into<PathBuf>) -> Mount {
    let p = p.into();
    Mount::RwBind {
        src: p.clone(),
        dst: p,
    }
}

fn has(spec: &SandboxSpec, m: &Mount) -> bool {
    spec.mounts.contains(m)
}

#[test]
fn rejects_an_empty_command_and_relative_dirs() {
    let t = Tmp::new();
    assert_eq!(plan(&t.input(&[])), Err(PlanError::NoCommand));
    let mut i = t.input(&["sh"]);
    i.cwd = "rel".into();
    assert!(matches!(
        plan(&i),
        Err(PlanError::NotAbsolute {
            what: "the working directory",
            ..
        })
    ));
    let mut i = t.input(&["sh"]);
    i.home = "home".into();
    assert!(matches!(
        plan(&i),
        Err(PlanError::NotAbsolute { what: "HOME", .. })
    ));
}

#[test]
fn refuses_a_program_not_on_path() {
    let t = Tmp::new();
    assert_eq!(
        plan(&t.input(&["no-such-program-here"])),
        Err(PlanError::NotFound {
            program: "no-such-program-here".into()
        })
    );
    // A non-executable file is not a program either.
    t.file("bin/data", "x");
    let mut i = t.input(&["data"]);
    i.env[0].1 = t.path("bin").display().to_string();
    assert!(matches!(plan(&i), Err(PlanError::NotFound { .. })));
}

#[test]
fn resolves_argv0_on_the_given_path() {
    let t = Tmp::new();
    let tool = t.exe("opt/tool/bin/tool", "\x7fELF");
    let mut i = t.input(&["tool", "--flag"]);
    i.env[0].1 = format!("/nonexistent:{}", t.path("opt/tool/bin").display());
    let spec = plan(&i).unwrap();
    assert_eq!(spec.argv, [tool.display().to_string(), "--flag".into()]);
    // Outside the system dirs, the install prefix (`…/bin/tool` → `…`) is visible read-only; only the
    // program itself is executable.
    assert!(has(&spec, &ro(t.path("opt/tool"))));
    assert!(spec.landlock.read.contains(&t.path("opt/tool")));
    assert!(!spec.landlock.read_exec.contains(&t.path("opt/tool")));
    assert!(spec.landlock.read_exec.contains(&tool));
    // A system program needs nothing beyond the system dirs.
    let spec = plan(&t.input(&["sh"])).unwrap();
    assert!(spec.argv[0].starts_with('/'));
    assert!(has(&spec, &ro("/usr")));
}

#[test]
fn a_relative_program_path_is_made_absolute_against_cwd() {
    let t = Tmp::new();
    t.exe("cwd/server", "\x7fELF");
    let spec = plan(&t.input(&["./server"])).unwrap();
    assert_eq!(spec.argv[0], t.path("cwd/server").display().to_string());
}

#[test]
fn shows_system_dirs_and_keeps_host_symlinks_as_symlinks() {
    let t = Tmp::new();
    let spec = plan(&t.input(&["sh"])).unwrap();
    for d in ["/bin", "/lib", "/sbin", "/lib64"] {
        match std::fs::symlink_metadata(d) {
            Ok(m) if m.file_type().is_symlink() => assert!(has(
                &spec,
                &Mount::Symlink {
                    dst: d.into(),
                    target: std::fs::read_link(d).unwrap()
                }
            )),
            Ok(_) => assert!(has(&spec, &ro(d))),
            Err(_) => assert!(!spec.mounts.iter().any(|m| m.dst() == Path::new(d))),
        }
    }
    assert!(has(&spec, &ro("/etc/passwd")) || !Path::new("/etc/passwd").exists());
    assert!(has(&spec, &ro("/etc/ld.so.cache")) || !Path::new("/etc/ld.so.cache").exists());
    // Nothing else of /etc: no shadow, no ssh keys.
    assert!(
        !spec
            .mounts
            .iter()
            .any(|m| m.dst().starts_with("/etc/shadow")
                || m.dst().starts_with("/etc/ssh")
                || m.dst() == Path::new("/etc"))
    );
    assert!(spec.landlock.read.contains(&PathBuf::from("/etc")));
    // System dirs are readable, not executable: only the program's own chain is.
    assert!(spec.landlock.read.contains(&PathBuf::from("/usr")));
    assert!(!spec.landlock.read_exec.iter().any(|p| p.is_dir()));
    assert!(has(&spec, &Mount::Proc) && has(&spec, &Mount::Dev));
}

#[test]
fn a_venv_brings_its_dir_and_its_base_interpreter() {
    let t = Tmp::new();
    let base = t.exe("pythons/3.11/bin/python3.11", "\x7fELF");
    symlink(&base, t.path("pythons/3.11/bin/python3")).unwrap();
    t.dir("proj/.venv/bin");
    symlink(
        t.path("pythons/3.11/bin/python3"),
        t.path("proj/.venv/bin/python"),
    )
    .unwrap();
    t.file(
        "proj/.venv/pyvenv.cfg",
        &format!(
            "home = {}\nversion = 3.11\n",
            t.path("pythons/3.11/bin").display()
        ),
    );
    let venv_python = t.path("proj/.venv/bin/python");
    let spec = plan(&t.input(&[venv_python.to_str().unwrap(), "-m", "mod"])).unwrap();
    // The venv path is kept for exec (Python finds pyvenv.cfg from it).
    assert_eq!(spec.argv[0], venv_python.display().to_string());
    assert!(has(&spec, &ro(t.path("proj/.venv"))), "{:#?}", spec.mounts);
    assert!(
        has(&spec, &ro(t.path("pythons/3.11"))),
        "{:#?}",
        spec.mounts
    );
    // The symlinks are inside bound dirs: no separate symlink mounts.
    assert!(
        !spec
            .mounts
            .iter()
            .any(|m| matches!(m, Mount::Symlink { dst, .. } if dst.starts_with(&t.0)))
    );
}

#[test]
fn a_symlinked_program_outside_its_install_is_recreated_as_a_symlink() {
    let t = Tmp::new();
    let real = t.exe("tools/venvs/srv/bin/srv", "\x7fELF");
    t.dir("local/bin");
    symlink(&real, t.path("local/bin/srv")).unwrap();
    let spec = plan(&t.input(&[t.path("local/bin/srv").to_str().unwrap()])).unwrap();
    assert!(has(
        &spec,
        &Mount::Symlink {
            dst: t.path("local/bin/srv"),
            target: real.clone()
        }
    ));
    assert!(has(&spec, &ro(t.path("tools/venvs/srv"))));
    // Not the whole `local` dir: only the link.
    assert!(!has(&spec, &ro(t.path("local"))));
}

#[test]
fn a_script_brings_its_shebang_interpreter() {
    let t = Tmp::new();
    let py = t.exe("py/bin/python", "\x7fELF");
    t.exe(
        "srv/bin/mcp-server-x",
        &format!("#!{} -u\nprint()\n", py.display()),
    );
    let mut i = t.input(&["mcp-server-x"]);
    i.env[0].1 = t.path("srv/bin").display().to_string();
    let spec = plan(&i).unwrap();
    assert!(has(&spec, &ro(t.path("srv"))));
    assert!(has(&spec, &ro(t.path("py"))));
    // `#!/usr/bin/env NAME` looks NAME up on PATH.
    t.exe("node/bin/fakenode", "\x7fELF");
    t.exe("cli/bin/npx-like", "#!/usr/bin/env -S fakenode --flag\n");
    let mut i = t.input(&["npx-like"]);
    i.env[0].1 = format!(
        "{}:{}",
        t.path("cli/bin").display(),
        t.path("node/bin").display()
    );
    let spec = plan(&i).unwrap();
    assert!(has(&spec, &ro(t.path("cli"))));
    assert!(has(&spec, &ro(t.path("node"))), "{:#?}", spec.mounts);
}

#[test]
fn a_node_script_brings_its_package_and_the_enclosing_node_modules() {
    let t = Tmp::new();
    t.file("proj/node_modules/@scope/pkg/package.json", "{}");
    let index = t.file("proj/node_modules/@scope/pkg/dist/index.js", "");
    t.file("proj/node_modules/dep/index.js", "");
    let spec = plan(&t.input(&["sh", index.to_str().unwrap()])).unwrap();
    assert!(
        has(&spec, &ro(t.path("proj/node_modules"))),
        "{:#?}",
        spec.mounts
    );
    assert!(!has(&spec, &ro(t.path("proj"))));
    // A script with no package marker brings its directory.
    let s = t.file("scripts/server.py", "");
    let spec = plan(&t.input(&["sh", s.to_str().unwrap()])).unwrap();
    assert!(has(&spec, &ro(t.path("scripts"))));
}

#[test]
fn inference_never_widens_to_home() {
    let t = Tmp::new();
    let s = t.file("home/server.js", "");
    t.file("home/.ssh/id_rsa", "secret");
    let spec = plan(&t.input(&["sh", s.to_str().unwrap()])).unwrap();
    assert!(has(&spec, &ro(&s)));
    assert!(!has(&spec, &ro(t.path("home"))));
    assert!(has(
        &spec,
        &Mount::Tmpfs {
            dst: t.path("home"),
            size: HOME_TMPFS_BYTES
        }
    ));
    // Nor when the package marker search would walk past HOME.
    t.file("home/pkg/server.js", "");
    let spec = plan(&t.input(&["sh", t.path("home/pkg/server.js").to_str().unwrap()])).unwrap();
    assert!(has(&spec, &ro(t.path("home/pkg"))));
}

#[test]
fn a_data_file_argument_comes_alone_and_read_only() {
    let t = Tmp::new();
    let f = t.file("conf/settings.toml", "x");
    t.file("conf/other-secret", "x");
    let spec = plan(&t.input(&["sh", "--config", f.to_str().unwrap()])).unwrap();
    assert!(has(&spec, &ro(&f)));
    assert!(!has(&spec, &ro(t.path("conf"))));
    assert!(spec.landlock.read.contains(&f));
}

#[test]
fn roots_cwd_home_and_tmp() {
    let t = Tmp::new();
    let mut i = t.input(&["sh"]);
    i.read_roots = vec![t.dir("data"), t.path("missing")];
    i.write_roots = vec![t.dir("out")];
    let spec = plan(&i).unwrap();
    assert!(has(&spec, &ro(t.path("data"))));
    assert!(has(&spec, &rw(t.path("out"))));
    assert!(has(&spec, &ro(t.path("cwd"))));
    assert!(!spec.mounts.iter().any(|m| m.dst() == t.path("missing")));
    assert!(has(
        &spec,
        &Mount::Tmpfs {
            dst: "/tmp".into(),
            size: TMP_TMPFS_BYTES
        }
    ));
    assert_eq!(spec.cwd, t.path("cwd"));
    assert!(spec.landlock.read.contains(&t.path("data")));
    assert!(spec.landlock.read.contains(&t.path("cwd")));
    assert!(spec.landlock.write.contains(&t.path("out")));
    assert!(spec.landlock.write.contains(&t.path("home")));
    assert!(spec.landlock.write.contains(&PathBuf::from("/tmp")));
    assert!(spec.landlock.write.contains(&PathBuf::from("/dev")));
    // The environment's HOME is the empty one; TMPDIR (when set) points at the private /tmp.
    let home = t.path("home").display().to_string();
    assert!(spec.env.contains(&("HOME".into(), home)));
    assert_eq!(spec.env.iter().filter(|(k, _)| k == "HOME").count(), 1);
    assert!(!spec.env.iter().any(|(k, _)| k == "TMPDIR"));
    i.env.push(("TMPDIR".into(), "/var/tmp/x".into()));
    let spec = plan(&i).unwrap();
    assert!(spec.env.contains(&("TMPDIR".into(), "/tmp".into())));
}

#[test]
fn a_cwd_under_a_write_root_stays_writable() {
    let t = Tmp::new();
    let mut i = t.input(&["sh"]);
    i.write_roots = vec![t.path("cwd")];
    let spec = plan(&i).unwrap();
    assert!(has(&spec, &rw(t.path("cwd"))));
    assert!(!has(&spec, &ro(t.path("cwd"))));
    assert!(spec.landlock.write.contains(&t.path("cwd")));
}

#[test]
fn an_explicit_home_root_replaces_the_empty_home() {
    let t = Tmp::new();
    let mut i = t.input(&["sh"]);
    i.read_roots = vec![t.path("home")];
    let spec = plan(&i).unwrap();
    assert!(has(&spec, &ro(t.path("home"))));
    assert!(
        !spec
            .mounts
            .iter()
            .any(|m| matches!(m, Mount::Tmpfs { dst, .. } if *dst == t.path("home")))
    );
    // A root above HOME leaves HOME empty on top of it.
    let mut i = t.input(&["sh"]);
    i.read_roots = vec![t.0.clone()];
    let spec = plan(&i).unwrap();
    let pos = |d: &Path| spec.mounts.iter().position(|m| m.dst() == d).unwrap();
    assert!(pos(&t.0) < pos(&t.path("home")));
    assert!(matches!(
        spec.mounts[pos(&t.path("home"))],
        Mount::Tmpfs { .. }
    ));
}

#[test]
fn nested_redundant_mounts_are_dropped_and_stronger_ones_kept() {
    let t = Tmp::new();
    let mut i = t.input(&["sh"]);
    i.read_roots = vec![t.dir("a/b"), t.dir("a"), t.dir("w/r"), t.dir("a")];
    i.write_roots = vec![t.dir("a/b/c"), t.dir("w"), t.dir("a/b/c/d")];
    let spec = plan(&i).unwrap();
    let under: Vec<&Mount> = spec
        .mounts
        .iter()
        .filter(|m| {
            m.dst().starts_with(&t.0)
                && !m.dst().starts_with(t.path("home"))
                && !m.dst().starts_with(t.path("cwd"))
        })
        .collect();
    assert_eq!(
        under,
        [&ro(t.path("a")), &rw(t.path("a/b/c")), &rw(t.path("w"))],
    );
    // A tree listed both read and write is writable.
    let mut i = t.input(&["sh"]);
    i.read_roots = vec![t.path("a")];
    i.write_roots = vec![t.path("a")];
    let spec = plan(&i).unwrap();
    assert!(has(&spec, &rw(t.path("a"))) && !has(&spec, &ro(t.path("a"))));
    assert!(spec.landlock.write.contains(&t.path("a")));
}

#[test]
fn mounts_are_sorted_parents_first_unique_and_deterministic() {
    let t = Tmp::new();
    let mut i = t.input(&["sh"]);
    i.read_roots = vec![t.dir("z"), t.dir("a"), t.dir("home/proj")];
    let spec = plan(&i).unwrap();
    assert_eq!(plan(&i).unwrap(), spec);
    let dsts: Vec<&Path> = spec.mounts.iter().map(Mount::dst).collect();
    let mut sorted = dsts.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(dsts, sorted);
    // The read root inside HOME comes after (on top of) the empty HOME.
    let pos = |d: &Path| dsts.iter().position(|x| *x == d).unwrap();
    assert!(pos(&t.path("home")) < pos(&t.path("home/proj")));
    // Landlock lists are sorted and unique.
    for list in [
        &spec.landlock.read_exec,
        &spec.landlock.read,
        &spec.landlock.write,
    ] {
        let mut s = list.clone();
        s.sort();
        s.dedup();
        assert_eq!(*list, s);
    }
}

#[test]
fn the_spec_round_trips_through_json() {
    let t = Tmp::new();
    let spec = plan(&t.input(&["sh", "-c", "true"])).unwrap();
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(serde_json::from_str::<SandboxSpec>(&json).unwrap(), spec);
}

#[test]
fn only_the_program_its_interpreters_and_its_loader_are_executable() {
    let t = Tmp::new();
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    let spec = plan(&t.input(&["/bin/sh", "-c", "true"])).unwrap();
    let x = &spec.landlock.read_exec;
    assert!(x.contains(&sh), "{x:#?}");
    // The ELF program interpreter, read from the program headers.
    let interp = elf_interp(&sh)
        .unwrap()
        .expect("/bin/sh is dynamically linked");
    let interp = std::fs::canonicalize(interp).unwrap();
    assert!(x.contains(&interp), "{x:#?}");
    // Nothing else: no `env`, no other program of /usr/bin, no directory.
    assert!(
        !x.iter().any(|p| p.ends_with("env") || p.is_dir()),
        "{x:#?}"
    );
    // A `#!/usr/bin/env NAME` script brings env and NAME (and their loaders), each as a file.
    let node = t.exe("node/bin/fakenode", "\x7fELF");
    let script = t.exe("cli/bin/srv", "#!/usr/bin/env fakenode\n");
    let mut i = t.input(&["srv"]);
    i.env[0].1 = format!(
        "{}:{}:/usr/bin",
        t.path("cli/bin").display(),
        t.path("node/bin").display()
    );
    let spec = plan(&i).unwrap();
    let x = &spec.landlock.read_exec;
    for want in [&script, &node] {
        assert!(x.contains(want), "{want:?} in {x:#?}");
    }
    assert!(x.iter().any(|p| p.ends_with("env")), "{x:#?}");
    // fakenode is not a parsable ELF: the system's ld-linux files stand in for its interpreter.
    assert!(
        x.iter().any(|p| p.to_string_lossy().contains("ld-linux")),
        "{x:#?}"
    );
    assert!(!x.contains(&sh), "no shell for a plain server: {x:#?}");
}

#[test]
fn launchers_get_a_shell_and_say_so() {
    let t = Tmp::new();
    t.exe("bin/npx", "\x7fELF");
    let mut i = t.input(&["npx", "-y", "pkg"]);
    i.env[0].1 = format!("{}:/usr/bin:/bin", t.path("bin").display());
    let spec = plan(&i).unwrap();
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    assert!(spec.landlock.read_exec.contains(&sh));
    assert!(shell_launcher(&i.argv).unwrap().contains("/bin/sh"));
    assert!(shell_launcher(&["node".to_owned()]).is_none());
}

#[test]
fn extra_exec_takes_names_on_path_files_and_trees() {
    let t = Tmp::new();
    let tool = t.exe("tools/bin/helper", "\x7fELF");
    let dir = t.dir("more");
    let mut i = t.input(&["/bin/sh"]);
    i.env[0].1 = format!("{}:/usr/bin", t.path("tools/bin").display());
    i.extra_exec = vec!["helper".into(), dir.clone()];
    let spec = plan(&i).unwrap();
    assert!(spec.landlock.read_exec.contains(&tool));
    assert!(spec.landlock.read_exec.contains(&dir));
    assert!(has(&spec, &ro(&dir)));
    i.extra_exec = vec!["no-such-program".into()];
    assert!(matches!(plan(&i), Err(PlanError::NotFound { .. })));
}

#[test]
fn elf_interp_reads_the_program_headers() {
    let t = Tmp::new();
    assert_eq!(elf_interp(&t.file("script", "#!/bin/sh\n")), Err(()));
    assert_eq!(elf_interp(&t.file("short", "\x7fELF")), Err(()));
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    let interp = elf_interp(&sh).unwrap().unwrap();
    assert!(interp.is_absolute() && interp.exists(), "{interp:?}");
    assert!(interp.to_string_lossy().contains("ld-"), "{interp:?}");
}

#[test]
fn the_egress_proxy_is_the_only_tcp_destination_and_every_client_is_pointed_at_it() {
    let t = Tmp::new();
    let mut input = t.input(&["/bin/true"]);
    input
        .env
        .push(("HTTPS_PROXY".into(), "http://evil.example:1".into()));
    input.env.push(("no_proxy".into(), "*".into()));
    input.net = NetMode::Proxy {
        port: 3128,
        handoff: "/run/palisade/x.sock".into(),
    };
    let spec = plan(&input).unwrap();
    assert_eq!(spec.landlock.connect_tcp, vec![3128]);
    assert_eq!(spec.net, input.net);
    let get = |k: &str| {
        let all: Vec<&str> = spec
            .env
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(all.len(), 1, "{k} set once: {:?}", spec.env);
        all[0].to_owned()
    };
    for k in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "npm_config_https_proxy",
        "PIP_PROXY",
    ] {
        assert_eq!(get(k), "http://127.0.0.1:3128", "{k}");
    }
    // The server's own values never survive: nothing bypasses the proxy.
    assert_eq!(get("no_proxy"), "");
    assert_eq!(get("NODE_USE_ENV_PROXY"), "1");

    // Without a proxy: no TCP at all, and no proxy variables.
    let spec = plan(&t.input(&["/bin/true"])).unwrap();
    assert!(spec.landlock.connect_tcp.is_empty());
    assert!(!spec.env.iter().any(|(k, _)| k == "HTTP_PROXY"));
}

#[test]
fn env_assignments_before_the_program_are_skipped_to_find_the_server() {
    let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<String>>();
    assert_eq!(
        env_program(&v(&["/usr/bin/env", "A=1", "B=2", "node", "x.js"])),
        Some(("node", None))
    );
    assert_eq!(env_program(&v(&["env", "-i", "PATH=/opt/bin"])), None);
    assert_eq!(
        env_program(&v(&["env", "-u", "X", "PATH=/opt/bin", "srv"])),
        Some(("srv", Some("/opt/bin")))
    );
    assert_eq!(
        env_program(&v(&["env", "--", "A=1", "srv"])),
        Some(("srv", None))
    );
    assert_eq!(env_program(&v(&["env", "-S", "node x.js"])), None);
    assert_eq!(env_program(&v(&["node", "A=1"])), None);
}

#[test]
fn the_program_env_runs_is_executable_in_the_sandbox() {
    let t = Tmp::new();
    let srv = t.exe("bin/srv", "#!/bin/sh\n");
    let input = t.input(&["/usr/bin/env", "X=1", srv.to_str().unwrap()]);
    let spec = plan(&input).unwrap();
    let srv = std::fs::canonicalize(&srv).unwrap();
    assert!(
        spec.landlock.read_exec.contains(&srv),
        "{:?}",
        spec.landlock.read_exec
    );
    // …and a program that does not exist is a planning error, not a silent omission.
    let input = t.input(&["/usr/bin/env", "X=1", "/nonexistent/srv"]);
    assert!(matches!(plan(&input), Err(PlanError::NotFound { .. })));
}

#[test]
fn tier_two_keeps_the_rules_but_never_the_real_home_tmp_proc_or_dev() {
    let t = Tmp::new();
    let spec = plan(&t.input(&["/bin/true"])).unwrap();
    let real_home = t.path("home");
    assert!(
        spec.landlock.write.iter().any(|p| p == &real_home),
        "tier 1 writes its tmpfs HOME"
    );
    let scratch = t.dir("scratch");
    let d = degrade(spec.clone(), &scratch, Some(999));
    assert_eq!(d.isolation, crate::spec::Isolation::LandlockOnly);
    assert!(d.mounts.is_empty());
    let all: Vec<&PathBuf> = d
        .landlock
        .read_exec
        .iter()
        .chain(&d.landlock.read)
        .chain(&d.landlock.write)
        .collect();
    for gone in [
        real_home.as_path(),
        Path::new("/tmp"),
        Path::new("/proc"),
        Path::new("/dev"),
    ] {
        assert!(
            !all.iter().any(|p| p.as_path() == gone),
            "{gone:?} in {all:?}"
        );
    }
    assert!(d.landlock.write.contains(&scratch.join("home")));
    assert!(d.landlock.write.contains(&scratch.join("tmp")));
    assert!(d.landlock.write.contains(&PathBuf::from("/dev/null")));
    assert!(d.landlock.read.contains(&PathBuf::from("/proc/self")));
    // Everything else tier 1 allowed is still allowed (the server's own program included).
    for p in &spec.landlock.read_exec {
        assert!(d.landlock.read_exec.contains(p), "{p:?}");
    }
    let env = |k: &str| {
        d.env
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        env("HOME"),
        vec![scratch.join("home").display().to_string()]
    );
    assert_eq!(
        env("TMPDIR"),
        vec![scratch.join("tmp").display().to_string()]
    );
    assert_eq!(d.rlimits.processes, Some(999));
}

#[test]
fn tier_two_names_the_etc_entries_instead_of_all_of_etc() {
    let t = Tmp::new();
    let spec = plan(&t.input(&["/bin/true"])).unwrap();
    let d = degrade(spec, &t.dir("scratch"), None);
    assert!(
        !d.landlock.read.contains(&PathBuf::from("/etc")),
        "{:?}",
        d.landlock.read
    );
    assert!(
        !d.landlock
            .read
            .iter()
            .any(|p| p == Path::new("/etc/shadow"))
    );
    if Path::new("/etc/passwd").exists() {
        assert!(
            d.landlock.read.contains(&PathBuf::from("/etc/passwd")),
            "{:?}",
            d.landlock.read
        );
    }
}
