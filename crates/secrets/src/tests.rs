//! Unit tests: names, references, the file and keyutils stores, `cmd:` execution and caching, and the
//! promise that no error or debug output contains a value.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Facts, Platform, Probe, select};
use crate::*;

/// A unique temporary directory, removed on drop.
struct Tmp(PathBuf);
impl Tmp {
    fn new(label: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "palisade-secrets-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
    fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn name(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

fn secret(s: &str) -> Secret {
    Secret::from_string(s.to_owned(), "test value").unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// A resolver over a file store in `dir`, with a fixed environment.
fn resolver(dir: &Tmp, env: &[(&str, &str)]) -> Resolver {
    let locations = Locations {
        data_dir: dir.join("data"),
        state_dir: dir.join("state"),
    };
    let env: Vec<(String, OsString)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
        .collect();
    Resolver::new(move || {
        Opened::with_choice(BackendChoice::Forced(Backend::File), locations.clone())
    })
    .with_env(move |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
}

// ---- names ----

#[test]
fn accepts_ordinary_names() {
    for n in [
        "github",
        "github-token",
        "OPENAI_API_KEY",
        "a.b_c-d",
        "x",
        &"a".repeat(128),
    ] {
        assert_eq!(SecretName::new(n).unwrap().as_str(), n);
    }
}

#[test]
fn rejects_bad_names_with_the_reason() {
    for (n, why) in [
        ("", "empty"),
        ("a b", "character"),
        ("a/b", "character"),
        ("ä", "character"),
        ("-rf", "starts with"),
        (".hidden", "starts with"),
        (&"a".repeat(129), "longer"),
    ] {
        let e = SecretName::new(n).unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "{n:?}: {e:?}");
        assert!(e.to_string().contains(why), "{n:?}: {e}");
        assert!(e.to_string().contains("hint:"), "{e}");
    }
}

// ---- Secret ----

#[test]
fn secret_never_prints_its_value() {
    let s = secret("hunter2-very-secret");
    assert_eq!(format!("{s:?}"), "Secret(***, 19 bytes)");
    assert_eq!(format!("{s}"), "Secret(***, 19 bytes)");
    assert_eq!(
        format!("{:#?}", vec![s.clone()]),
        "[\n    Secret(***, 19 bytes),\n]"
    );
    assert_eq!(s.expose(), b"hunter2-very-secret");
    assert_eq!(s.expose_str(), "hunter2-very-secret");
}

#[test]
fn refuses_empty_oversized_and_binary_values_without_echoing_them() {
    let e = Secret::new(Vec::new(), "the value").unwrap_err();
    assert!(e.to_string().contains("is empty"), "{e}");
    let e = Secret::new(vec![b'x'; MAX_SECRET_BYTES + 1], "the value").unwrap_err();
    assert!(e.to_string().contains("at most"), "{e}");
    let e = Secret::new(b"tok\xffen-secret".to_vec(), "the value").unwrap_err();
    assert!(e.to_string().contains("UTF-8"), "{e}");
    assert!(!e.to_string().contains("en-secret"), "{e}");
}

#[test]
fn read_all_trims_exactly_one_newline() {
    assert_eq!(read_all(&b"tok\n"[..], "v").unwrap().expose(), b"tok");
    assert_eq!(read_all(&b"tok\r\n"[..], "v").unwrap().expose(), b"tok");
    assert_eq!(read_all(&b"tok\n\n"[..], "v").unwrap().expose(), b"tok\n");
    assert_eq!(read_all(&b" tok "[..], "v").unwrap().expose(), b" tok ");
    assert!(
        read_all(&b"\n"[..], "v")
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
}

// ---- references ----

#[test]
fn parses_every_reference_kind() {
    assert_eq!(
        Reference::parse("keychain:github").unwrap(),
        Reference::Keychain(name("github"))
    );
    assert_eq!(
        Reference::parse("secret:github").unwrap(),
        Reference::Keychain(name("github"))
    );
    assert_eq!(
        Reference::parse("env:GH_TOKEN").unwrap(),
        Reference::Env("GH_TOKEN".into())
    );
    assert_eq!(
        Reference::parse("file:/run/secrets/t").unwrap(),
        Reference::File("/run/secrets/t".into())
    );
    assert_eq!(
        Reference::parse("file:~/t").unwrap(),
        Reference::File("~/t".into())
    );
    assert_eq!(
        Reference::parse("C").unwrap(),
        Reference::Literal("C".into())
    );
    assert_eq!(
        Reference::parse("literal:env:HOME").unwrap(),
        Reference::Literal("env:HOME".into())
    );
    assert_eq!(
        Reference::parse("https://user@example.com").unwrap(),
        Reference::Literal("https://user@example.com".into())
    );
    let Reference::Cmd(c) = Reference::parse("cmd:gcloud auth print-access-token").unwrap() else {
        panic!()
    };
    assert_eq!(c.argv, ["gcloud", "auth", "print-access-token"]);
    assert_eq!((c.ttl, c.timeout), (DEFAULT_CMD_TTL, DEFAULT_CMD_TIMEOUT));
}

#[test]
fn cmd_options_and_quoting() {
    let Reference::Cmd(c) =
        Reference::parse(r#"cmd[ttl=90s, timeout=5s]:/opt/my tool  'two words' "it's" ''"#)
            .unwrap()
    else {
        panic!()
    };
    assert_eq!(c.argv, ["/opt/my", "tool", "two words", "it's", ""]);
    assert_eq!(c.ttl, Duration::from_secs(90));
    assert_eq!(c.timeout, Duration::from_secs(5));
    let Reference::Cmd(c) = Reference::parse("cmd[ttl=0]:x").unwrap() else {
        panic!()
    };
    assert!(c.ttl.is_zero());
    // Quoted shell characters are passed literally.
    let Reference::Cmd(c) = Reference::parse("cmd:jq '.a | .b' f.json").unwrap() else {
        panic!()
    };
    assert_eq!(c.argv, ["jq", ".a | .b", "f.json"]);
}

#[test]
fn rejects_shell_syntax_in_cmd_references() {
    for bad in [
        "cmd:gcloud auth print-access-token | tr -d x",
        "cmd:cat ~/.token",
        "cmd:echo $TOKEN",
        "cmd:echo \"$TOKEN\"",
        "cmd:echo `id`",
        "cmd:a; b",
        "cmd:a && b",
        "cmd:a > f",
        "cmd:echo 'unclosed",
        "cmd:",
        "cmd:   ",
        "cmd[ttl=5m:x",
        "cmd[ttl=soon]:x",
        "cmd[timeout=0s]:x",
        "cmd[timeout=1h]:x",
        "cmd[retries=3]:x",
    ] {
        let e = Reference::parse(bad).unwrap_err();
        assert!(
            matches!(e, Error::InvalidReference { kind: "cmd", .. }),
            "{bad}: {e:?}"
        );
        assert!(
            e.to_string().contains("hint:") || bad.contains("timeout"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn rejects_malformed_references_instead_of_passing_them_as_literals() {
    for (bad, kind) in [
        ("keychain:", "keychain"),
        ("keychain:has space", "keychain"),
        ("secret:a/b", "secret"),
        ("env:", "env"),
        ("env:A=B", "env"),
        ("file:", "file"),
        ("file:relative/token", "file"),
    ] {
        match Reference::parse(bad) {
            Err(Error::InvalidReference { kind: k, .. }) => assert_eq!(k, kind, "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn looks_like_reference_matches_the_prefixes_only() {
    for r in [
        "keychain:a",
        "secret:a",
        "env:A",
        "file:/x",
        "cmd:x",
        "cmd[ttl=1m]:x",
        "literal:x",
    ] {
        assert!(looks_like_reference(r), "{r}");
    }
    for l in [
        "ghp_abc",
        "C.UTF-8",
        "https://x",
        "command:x",
        "cmdx",
        "Keychain:a",
        "",
    ] {
        assert!(!looks_like_reference(l), "{l}");
        assert!(Reference::parse(l).unwrap().is_literal(), "{l}");
    }
}

#[test]
fn reference_debug_and_display_hide_literals() {
    let r = Reference::parse("sk-live-0123456789abcdef").unwrap();
    assert_eq!(format!("{r:?}"), "Literal(***, 24 bytes)");
    assert_eq!(r.to_string(), "a literal value");
    let r = Reference::parse("cmd:vault read -field=token secret/x").unwrap();
    assert!(!format!("{r:?}").contains("secret/x"), "{r:?}");
    assert_eq!(r.to_string(), "cmd:vault …");
}

// ---- backend selection ----

fn facts(platform: Platform, bus: Option<&str>, ss: Option<Probe>) -> Facts {
    Facts {
        platform,
        session_bus: bus.map(str::to_owned),
        secret_service: ss,
    }
}

#[test]
fn auto_picks_the_keychain_only_where_it_answers() {
    let auto = BackendChoice::Auto;
    assert_eq!(
        select(auto, &facts(Platform::MacOs, None, None)).backend,
        Backend::Keychain
    );
    assert_eq!(
        select(auto, &facts(Platform::Windows, None, None)).backend,
        Backend::Keychain
    );
    let s = select(auto, &facts(Platform::FreeDesktop, None, None));
    assert_eq!(s.backend, Backend::File);
    assert!(s.reason.contains("no D-Bus session bus"), "{}", s.reason);
    let s = select(
        auto,
        &facts(
            Platform::FreeDesktop,
            Some("unix:path=/run/user/1/bus"),
            Some(Probe::Absent("ServiceUnknown".into())),
        ),
    );
    assert_eq!(s.backend, Backend::File);
    assert!(s.reason.contains("ServiceUnknown"), "{}", s.reason);
    let s = select(
        auto,
        &facts(Platform::FreeDesktop, Some("bus"), Some(Probe::Answered)),
    );
    assert_eq!(s.backend, Backend::Keychain);
    assert!(s.reason.contains("Secret Service answered"), "{}", s.reason);
    // A locked keychain is still the keychain: the store must not depend on the lock state.
    let s = select(
        auto,
        &facts(
            Platform::FreeDesktop,
            Some("bus"),
            Some(Probe::Locked("locked".into())),
        ),
    );
    assert_eq!(s.backend, Backend::Keychain);
    assert!(s.reason.contains("unlock it"), "{}", s.reason);
}

#[test]
fn a_forced_backend_is_never_second_guessed() {
    for b in Backend::ALL {
        let s = select(
            BackendChoice::Forced(b),
            &facts(Platform::MacOs, None, None),
        );
        assert_eq!(s.backend, b);
        assert!(s.reason.contains("PALISADE_SECRET_BACKEND"), "{}", s.reason);
    }
    assert_eq!(BackendChoice::parse("").unwrap(), BackendChoice::Auto);
    assert_eq!(BackendChoice::parse("auto").unwrap(), BackendChoice::Auto);
    assert_eq!(
        BackendChoice::parse("keyutils").unwrap(),
        BackendChoice::Forced(Backend::Keyutils)
    );
    let e = BackendChoice::parse("vault").unwrap_err();
    assert!(
        e.to_string().contains("auto, keychain, keyutils, file"),
        "{e}"
    );
}

// ---- file store ----

#[test]
fn file_store_round_trip_creates_private_files() {
    let t = Tmp::new("file");
    let store = FileStore::new(t.join("data/palisade/secrets.json"));
    assert!(store.list().unwrap().is_empty());
    store.set(&name("b"), &secret("two")).unwrap();
    store.set(&name("a"), &secret("one")).unwrap();
    assert_eq!(mode(&t.join("data/palisade/secrets.json")), 0o600);
    assert_eq!(mode(&t.join("data/palisade")), 0o700);
    assert_eq!(store.get(&name("a")).unwrap().expose(), b"one");
    assert_eq!(store.list().unwrap(), [name("a"), name("b")]);
    store.set(&name("a"), &secret("uno")).unwrap();
    assert_eq!(store.get(&name("a")).unwrap().expose(), b"uno");
    store.remove(&name("a")).unwrap();
    assert_eq!(store.list().unwrap(), [name("b")]);
    let e = store.get(&name("a")).unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert!(store.remove(&name("a")).unwrap_err().is_not_found());
    // No temp files left behind by the atomic writes.
    let mut left: Vec<String> = std::fs::read_dir(t.join("data/palisade"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["secrets.json", "secrets.json.lock"]);
}

#[test]
fn file_store_refuses_a_file_others_can_read() {
    let t = Tmp::new("perm");
    let path = t.join("secrets.json");
    let store = FileStore::new(path.clone());
    store.set(&name("a"), &secret("one")).unwrap();
    chmod(&path, 0o644);
    for e in [
        store.get(&name("a")).unwrap_err(),
        store.list().unwrap_err(),
        store.set(&name("b"), &secret("two")).unwrap_err(),
    ] {
        let msg = e.to_string();
        assert!(matches!(e, Error::Permissions { .. }), "{e:?}");
        assert!(msg.contains("mode 0644"), "{msg}");
        assert!(
            msg.contains(&format!("chmod 600 {}", path.display())),
            "{msg}"
        );
        assert!(!msg.contains("one"), "{msg}");
    }
    chmod(&path, 0o600);
    assert_eq!(store.get(&name("a")).unwrap().expose(), b"one");
}

#[test]
fn file_store_refuses_symlinks_and_open_directories() {
    let t = Tmp::new("link");
    let real = FileStore::new(t.join("real.json"));
    real.set(&name("a"), &secret("one")).unwrap();
    std::os::unix::fs::symlink(t.join("real.json"), t.join("link.json")).unwrap();
    let e = FileStore::new(t.join("link.json"))
        .get(&name("a"))
        .unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");

    let open = t.join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let e = FileStore::new(open.join("s.json"))
        .set(&name("a"), &secret("x"))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("chmod 700 {}", open.display())),
        "{e}"
    );
}

#[test]
fn file_store_reports_a_corrupt_file_without_quoting_it() {
    let t = Tmp::new("corrupt");
    let path = t.join("s.json");
    std::fs::write(&path, "{\"version\":1,\"secrets\":{\"a\":\"tok-123\",}}").unwrap();
    chmod(&path, 0o600);
    let e = FileStore::new(path).get(&name("a")).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("not a palisade secrets file"), "{msg}");
    assert!(!msg.contains("tok-123"), "{msg}");
}

#[test]
fn file_store_concurrent_writers_lose_nothing() {
    let t = Tmp::new("race");
    let path = t.join("s.json");
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                // A store per thread: separate open file descriptions, as separate processes have.
                let store = FileStore::new(path);
                for j in 0..15 {
                    store
                        .set(&name(&format!("t{i}-{j}")), &secret(&format!("v{i}-{j}")))
                        .unwrap();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let store = FileStore::new(path);
    assert_eq!(store.list().unwrap().len(), 60);
    assert_eq!(store.get(&name("t3-14")).unwrap().expose(), b"v3-14");
}

// ---- keyutils ----

#[test]
fn keyutils_store_round_trip() {
    let store = KeyutilsStore::open().unwrap();
    let n = name(&format!("unit-test-{}", std::process::id()));
    store.set(&n, &secret("k-one")).unwrap();
    assert_eq!(store.get(&n).unwrap().expose(), b"k-one");
    store.set(&n, &secret("k-two")).unwrap();
    assert_eq!(store.get(&n).unwrap().expose(), b"k-two");
    assert!(store.list().unwrap().contains(&n));
    store.remove(&n).unwrap();
    let e = store.get(&n).unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert!(e.to_string().contains("reboot"), "{e}");
    assert!(!store.list().unwrap().contains(&n));
    assert!(store.remove(&n).unwrap_err().is_not_found());
}

// ---- resolver: env, file ----

#[test]
fn resolves_env_references_and_explains_missing_ones() {
    let t = Tmp::new("env");
    let r = resolver(&t, &[("GH", "ghp-123"), ("EMPTY", "")]);
    assert_eq!(
        r.resolve(&Reference::parse("env:GH").unwrap())
            .unwrap()
            .expose(),
        b"ghp-123"
    );
    let e = r
        .resolve(&Reference::parse("env:NOPE").unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("`env:NOPE`: is not set"), "{e}");
    let e = r
        .resolve(&Reference::parse("env:EMPTY").unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn resolves_file_references_only_when_private() {
    let t = Tmp::new("fileref");
    let tok = t.join("token");
    std::fs::write(&tok, "file-tok-xyz\n").unwrap();
    chmod(&tok, 0o600);
    let home = t.0.to_string_lossy().into_owned();
    let r = resolver(&t, &[("HOME", &home)]);
    let by_path = Reference::parse(&format!("file:{}", tok.display())).unwrap();
    assert_eq!(r.resolve(&by_path).unwrap().expose(), b"file-tok-xyz");
    assert_eq!(
        r.resolve(&Reference::parse("file:~/token").unwrap())
            .unwrap()
            .expose(),
        b"file-tok-xyz"
    );
    chmod(&tok, 0o640);
    let e = r.resolve(&by_path).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("chmod 600 {}", tok.display())),
        "{msg}"
    );
    assert!(!msg.contains("file-tok-xyz"), "{msg}");
    let e = r
        .resolve(&Reference::parse("file:/nonexistent/palisade/x").unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("cannot open"), "{e}");
}

#[test]
fn resolves_keychain_references_from_the_store_and_hints_when_missing() {
    let t = Tmp::new("kc");
    let r = resolver(&t, &[]);
    let store = FileStore::new(t.join("data/secrets.json"));
    store.set(&name("gh"), &secret("from-store")).unwrap();
    assert_eq!(
        r.resolve(&Reference::parse("keychain:gh").unwrap())
            .unwrap()
            .expose(),
        b"from-store"
    );
    let e = r
        .resolve(&Reference::parse("keychain:other").unwrap())
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("no secret named `other` in the file store"),
        "{msg}"
    );
    assert!(msg.contains("palisade secret set other"), "{msg}");
}

#[test]
fn resolve_env_names_the_variable_and_kind_but_never_the_value() {
    let t = Tmp::new("renv");
    let r = resolver(&t, &[("SET", "val-123")]);
    let ok = r
        .resolve_env(&[("A".into(), "env:SET".into()), ("LANG".into(), "C".into())])
        .unwrap();
    assert_eq!(ok[0].0, "A");
    assert_eq!(ok[0].1.expose(), b"val-123");
    assert_eq!(ok[1].1.expose(), b"C");
    let e = r
        .resolve_env(&[
            ("A".into(), "env:SET".into()),
            ("TOKEN".into(), "keychain:missing".into()),
        ])
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with(
            "server environment variable TOKEN (a `keychain:` reference): no secret named `missing`"
        ),
        "{msg}"
    );
    assert!(!msg.contains("val-123"), "{msg}");
    let e = r
        .resolve_env(&[("X".into(), "cmd:echo $HOME".into())])
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("server environment variable X (a `cmd:` reference)"),
        "{e}"
    );
}

// ---- resolver: cmd ----

/// A script in `dir` that counts its runs in `count` and then does `body`.
fn script(dir: &Tmp, file: &str, body: &str) -> String {
    let path = dir.join(file);
    let count = dir.join(&format!("{file}.count"));
    std::fs::write(
        &path,
        format!("#!/bin/sh\necho run >> '{}'\n{body}\n", count.display()),
    )
    .unwrap();
    chmod(&path, 0o700);
    path.display().to_string()
}

fn runs(dir: &Tmp, file: &str) -> usize {
    std::fs::read_to_string(dir.join(&format!("{file}.count")))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[test]
fn cmd_output_is_trimmed_and_cached_for_the_ttl() {
    let t = Tmp::new("cmd");
    let prog = script(&t, "tok", "printf '  cmd-token-1\\n\\n'");
    let r = resolver(&t, &[]);
    let reference = Reference::parse(&format!("cmd:{prog} print-access-token")).unwrap();
    assert_eq!(r.resolve(&reference).unwrap().expose(), b"cmd-token-1");
    assert_eq!(r.resolve(&reference).unwrap().expose(), b"cmd-token-1");
    assert_eq!(
        runs(&t, "tok"),
        1,
        "the second resolve is served from the cache"
    );
    // Other arguments are another cache entry.
    let other = Reference::parse(&format!("cmd:{prog} other")).unwrap();
    r.resolve(&other).unwrap();
    assert_eq!(runs(&t, "tok"), 2);
    // ttl=0 never caches.
    let uncached = Reference::parse(&format!("cmd[ttl=0]:{prog} x")).unwrap();
    r.resolve(&uncached).unwrap();
    r.resolve(&uncached).unwrap();
    assert_eq!(runs(&t, "tok"), 4);
    // A fresh resolver (a new palisade process) runs it again: nothing was persisted.
    resolver(&t, &[]).resolve(&reference).unwrap();
    assert_eq!(runs(&t, "tok"), 5);
}

#[test]
fn cmd_cache_expires() {
    let t = Tmp::new("cmdttl");
    let prog = script(&t, "tok", "echo t");
    let r = resolver(&t, &[]);
    let reference = Reference::parse(&format!("cmd[ttl=50ms]:{prog}")).unwrap();
    r.resolve(&reference).unwrap();
    std::thread::sleep(Duration::from_millis(120));
    r.resolve(&reference).unwrap();
    assert_eq!(runs(&t, "tok"), 2);
}

#[test]
fn cmd_failure_names_the_program_but_never_its_output() {
    let t = Tmp::new("cmdfail");
    let prog = script(
        &t,
        "leaky",
        "echo stdout-tok-LEAK; echo stderr-tok-LEAK >&2; exit 3",
    );
    let r = resolver(&t, &[]);
    let e = r
        .resolve(&Reference::parse(&format!("cmd:{prog} --secret-arg")).unwrap())
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("`cmd:` reference `{prog}`: exited with status 3")),
        "{msg}"
    );
    assert!(msg.contains("not shown"), "{msg}");
    assert!(!msg.contains("LEAK"), "{msg}");
    assert!(!format!("{e:?}").contains("LEAK"), "{e:?}");
    assert!(!msg.contains("--secret-arg"), "{msg}");
    assert_eq!(runs(&t, "leaky"), 1);
    // Failures are not cached.
    r.resolve(&Reference::parse(&format!("cmd:{prog} --secret-arg")).unwrap())
        .unwrap_err();
    assert_eq!(runs(&t, "leaky"), 2);
}

#[test]
fn cmd_times_out_and_kills_its_process_group() {
    let t = Tmp::new("cmdslow");
    let pidfile = t.join("child.pid");
    let prog = script(
        &t,
        "slow",
        &format!("sleep 30 & echo $! > '{}'; wait", pidfile.display()),
    );
    let r = resolver(&t, &[]);
    let e = r
        .resolve(&Reference::parse(&format!("cmd[timeout=300ms]:{prog}")).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("did not finish within 300ms"), "{e}");
    // The background `sleep` was in the command's process group and is gone too.
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split(' ').nth(2).is_none_or(|st| st != "Z"))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(pid),
        "the command's child {pid} survived the timeout"
    );
}

#[test]
fn cmd_output_is_capped_and_must_not_be_empty() {
    let t = Tmp::new("cmdbig");
    let big = script(&t, "big", "head -c 70000 /dev/zero | tr '\\0' a");
    let r = resolver(&t, &[]);
    let e = r
        .resolve(&Reference::parse(&format!("cmd:{big}")).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("more than 65536 bytes"), "{e}");
    let empty = script(&t, "empty", "printf '  \\n'");
    let e = r
        .resolve(&Reference::parse(&format!("cmd:{empty}")).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("printed nothing"), "{e}");
    let e = r
        .resolve(&Reference::parse("cmd:/nonexistent/palisade-token-printer").unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("cannot start it"), "{e}");
}

#[test]
fn cmd_runs_without_a_shell() {
    let t = Tmp::new("noshell");
    let out = t.join("argv");
    let prog = script(
        &t,
        "argv",
        &format!("printf '%s|' \"$@\" > '{}'; echo ok", out.display()),
    );
    let r = resolver(&t, &[]);
    r.resolve(&Reference::parse(&format!("cmd:{prog} 'a b' \"c;d\" '*'")).unwrap())
        .unwrap();
    assert_eq!(std::fs::read_to_string(out).unwrap(), "a b|c;d|*|");
}

#[test]
fn resolver_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Resolver>();
    let t = Tmp::new("share");
    let prog = script(&t, "tok", "echo shared");
    let r = Arc::new(resolver(&t, &[]));
    let reference = Reference::parse(&format!("cmd:{prog}")).unwrap();
    r.resolve(&reference).unwrap();
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let (r, reference) = (r.clone(), reference.clone());
            std::thread::spawn(move || r.resolve(&reference).unwrap().expose().to_vec())
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), b"shared");
    }
    assert_eq!(runs(&t, "tok"), 1);
}

#[test]
fn cmd_leftover_children_do_not_hold_the_output_open() {
    let t = Tmp::new("cmdbg");
    // The background sleep inherits stdout; without ending the command's group after it exits, reading
    // its output would wait for the sleep and hit the timeout.
    let prog = script(&t, "bg", "sleep 30 & echo bg-token");
    let r = resolver(&t, &[]);
    let s = r
        .resolve(&Reference::parse(&format!("cmd[timeout=10s]:{prog}")).unwrap())
        .unwrap();
    assert_eq!(s.expose(), b"bg-token");
}
