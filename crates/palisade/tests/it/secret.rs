//! `palisade secret` end to end with the headless (file) store, and secret references in a policy's server
//! environment reaching a real server (server-everything's `get-env`) without showing up in palisade's
//! stderr or audit log.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use palisade_testkit::{TestHome, peers};
use serde_json::{Value, json};

use crate::util::{audit_log, call, call_text, cmd, code_out_err};

/// `palisade secret ARGS…` with the auto backend choice on a machine without a D-Bus session (as CI is):
/// no `PALISADE_SECRET_BACKEND`, no session bus variables.
fn secret_cmd(home: &TestHome, args: &[&str]) -> Command {
    let mut c = cmd(home, &["secret"]);
    c.args(args)
        .env_remove("PALISADE_SECRET_BACKEND")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("XDG_RUNTIME_DIR");
    c
}

/// Runs `palisade secret ARGS…` with `stdin` as its input.
fn secret(home: &TestHome, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = secret_cmd(home, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn palisade secret");
    // palisade may refuse before reading (a bad argument): a broken pipe is not the test's concern.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn secrets_file(home: &TestHome) -> std::path::PathBuf {
    home.data_home().join("palisade").join("secrets.json")
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn set_get_list_rm_round_trip_on_the_headless_store() {
    let home = TestHome::new();
    let (code, out, err) = code_out_err(&secret(&home, &["set", "github"], b"ghp_e2e-value-1\n"));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.is_empty(), "set prints nothing on stdout: {out}");
    assert!(
        err.contains("stored secret `github` in the file store"),
        "{err}"
    );
    assert!(
        err.contains("warning: secrets are stored UNENCRYPTED"),
        "{err}"
    );
    assert!(
        err.contains("no D-Bus session bus"),
        "the reason is given: {err}"
    );
    assert!(!err.contains("ghp_e2e-value-1"), "{err}");
    assert_eq!(mode(&secrets_file(&home)), 0o600);
    assert_eq!(mode(&home.data_home().join("palisade")), 0o700);

    let (code, out, err) = code_out_err(&secret(&home, &["get", "github"], b""));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out, "ghp_e2e-value-1",
        "exactly the value, one newline dropped, none added"
    );

    secret(&home, &["set", "openai"], b"sk-e2e-value-2");
    let (code, out, err) = code_out_err(&secret(&home, &["list", "--format", "json"], b""));
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["backend"], "file");
    assert_eq!(doc["location"], secrets_file(&home).to_str().unwrap());
    assert_eq!(
        doc["secrets"],
        json!([{ "name": "github" }, { "name": "openai" }])
    );
    let (_, text, _) = code_out_err(&secret(&home, &["list"], b""));
    assert!(text.starts_with("backend: file ("), "{text}");
    assert!(text.contains("  github\n  openai\n"), "{text}");
    for listing in [&out, &text] {
        assert!(
            !listing.contains("e2e-value"),
            "values are never listed: {listing}"
        );
    }

    let (code, _, err) = code_out_err(&secret(&home, &["rm", "github"], b""));
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = code_out_err(&secret(&home, &["get", "github"], b""));
    assert_eq!(code, Some(1), "not found exits 1: {err}");
    assert!(out.is_empty());
    assert!(
        err.contains("no secret named `github` in the file store"),
        "{err}"
    );
    assert!(err.contains("palisade secret set github"), "{err}");
    let (_, out, _) = code_out_err(&secret(&home, &["list", "--format", "json"], b""));
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["secrets"], json!([{ "name": "openai" }]));
}

#[test]
fn set_takes_the_value_only_from_stdin_and_refuses_bad_input() {
    let home = TestHome::new();
    // A value on the command line is a usage error, not stored.
    let (code, _, err) = code_out_err(&secret(&home, &["set", "github", "ghp_on_argv"], b"x"));
    assert_eq!(code, Some(2), "{err}");
    assert!(!secrets_file(&home).exists());
    let (code, _, err) = code_out_err(&secret(&home, &["set", "github"], b"\n"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("empty"), "{err}");
    let (code, _, err) = code_out_err(&secret(&home, &["set", "../etc/passwd"], b"v"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("invalid secret name"), "{err}");
    let (code, _, err) = code_out_err(&secret(&home, &["--backend", "vault", "list"], b""));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("auto, keychain, keyutils, file"), "{err}");
}

#[test]
fn refuses_a_secrets_file_others_can_read() {
    let home = TestHome::new();
    secret(&home, &["set", "github"], b"ghp_perm_value");
    let file = secrets_file(&home);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out, err) = code_out_err(&secret(&home, &["get", "github"], b""));
    assert_eq!(code, Some(2), "{err}");
    assert!(out.is_empty());
    assert!(err.contains("mode 0644"), "{err}");
    assert!(
        err.contains(&format!("chmod 600 {}", file.display())),
        "{err}"
    );
    assert!(!err.contains("ghp_perm_value"), "{err}");
}

#[test]
fn concurrent_sets_from_two_processes_keep_every_entry() {
    let home = std::sync::Arc::new(TestHome::new());
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let home = home.clone();
            std::thread::spawn(move || {
                for i in 0..12 {
                    let out = secret(
                        &home,
                        &["set", &format!("w{w}-{i}")],
                        format!("v{w}-{i}").as_bytes(),
                    );
                    assert_eq!(
                        out.status.code(),
                        Some(0),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let (_, out, _) = code_out_err(&secret(&home, &["list", "--format", "json"], b""));
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["secrets"].as_array().unwrap().len(), 24, "{doc}");
    let (_, v, _) = code_out_err(&secret(&home, &["get", "w1-11"], b""));
    assert_eq!(v, "v1-11");
}

#[test]
fn keyutils_backend_round_trip() {
    let home = TestHome::new();
    let name = format!("it-keyutils-{}", std::process::id());
    let (code, _, err) = code_out_err(&secret(
        &home,
        &["--backend", "keyutils", "set", &name],
        b"ku-value",
    ));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("keyutils store"), "{err}");
    assert!(
        !err.contains("UNENCRYPTED"),
        "no file, no file warning: {err}"
    );
    assert!(!secrets_file(&home).exists());
    let (_, out, _) = code_out_err(&secret(
        &home,
        &["--backend", "keyutils", "get", &name],
        b"",
    ));
    assert_eq!(out, "ku-value");
    let (code, _, err) = code_out_err(&secret(&home, &["--backend", "keyutils", "rm", &name], b""));
    assert_eq!(code, Some(0), "{err}");
    let (code, _, _) = code_out_err(&secret(
        &home,
        &["--backend", "keyutils", "get", &name],
        b"",
    ));
    assert_eq!(code, Some(1));
}

/// A policy running server-everything as `everything` with `env`.
fn policy_with_env(home: &TestHome, env: &str) -> std::path::PathBuf {
    let argv: Vec<String> = peers::server_everything_stdio()
        .iter()
        .map(|a| serde_json::to_string(a).unwrap())
        .collect();
    let path = home.root().join("policy.toml");
    std::fs::write(
        &path,
        format!(
            "version = 1\n[servers.everything]\ncommand = [{}]\nenv = {{ {env} }}\n",
            argv.join(", ")
        ),
    )
    .unwrap();
    path
}

#[test]
fn policy_env_references_reach_the_server_and_nowhere_else() {
    let home = TestHome::new();
    let value = "ghp_E2E_keychain_value_7f3a";
    assert_eq!(
        secret(&home, &["set", "e2e-token"], value.as_bytes())
            .status
            .code(),
        Some(0)
    );
    let token_file = home.root().join("token");
    std::fs::write(&token_file, "file_E2E_value_91c2\n").unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let policy = policy_with_env(
        &home,
        &format!(
            "E2E_KEYCHAIN = \"keychain:e2e-token\", E2E_ENV = \"env:E2E_SOURCE\", E2E_FILE = \"file:{}\", E2E_LITERAL = \"plain\"",
            token_file.display()
        ),
    );
    let mut c = cmd(
        &home,
        &[
            "run",
            "--policy",
            policy.to_str().unwrap(),
            "--server",
            "everything",
        ],
    );
    c.env_remove("PALISADE_SECRET_BACKEND")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("XDG_RUNTIME_DIR")
        .env("E2E_SOURCE", "env_E2E_value_55d1");
    let mut p = palisade_testkit::McpProcess::spawn(c);
    p.initialize();
    let r = p.request("tools/call", call("get-env", json!({})));
    let text = call_text(&r);
    let env: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(env["E2E_KEYCHAIN"], value, "{text}");
    assert_eq!(env["E2E_ENV"], "env_E2E_value_55d1", "{text}");
    assert_eq!(env["E2E_FILE"], "file_E2E_value_91c2", "{text}");
    assert_eq!(env["E2E_LITERAL"], "plain", "{text}");
    assert!(
        env.get("E2E_SOURCE").is_none(),
        "palisade's own env is not passed through: {text}"
    );
    p.close_stdin();
    let status = p
        .wait_exit(Duration::from_secs(10))
        .expect("palisade exits");
    let stderr = p.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let log = std::fs::read_to_string(audit_log(&home, "everything")).unwrap();
    assert!(log.contains("get-env"), "the call is audited: {log}");
    for v in [value, "env_E2E_value_55d1", "file_E2E_value_91c2"] {
        assert!(!stderr.contains(v), "{v} in stderr:\n{stderr}");
        assert!(!log.contains(v), "{v} in the audit log:\n{log}");
    }
}

#[test]
fn unresolvable_references_stop_the_launch_naming_the_variable_not_the_value() {
    let home = TestHome::new();
    let leak = home.root().join("leak.sh");
    std::fs::write(
        &leak,
        "#!/bin/sh\necho 'cmd_LEAKED_token_1' >&2\necho 'cmd_LEAKED_token_2'\nexit 7\n",
    )
    .unwrap();
    std::fs::set_permissions(&leak, std::fs::Permissions::from_mode(0o700)).unwrap();
    let open = home.root().join("open-token");
    std::fs::write(&open, "open_LEAKED_token").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    for (env, expect) in [
        (
            "GITHUB_TOKEN = \"keychain:absent\"".to_owned(),
            vec![
                "server environment variable GITHUB_TOKEN (a `keychain:` reference)",
                "no secret named `absent`",
                "palisade secret set absent",
            ],
        ),
        (
            format!("TOKEN = \"cmd:{} --flag\"", leak.display()),
            vec![
                "server environment variable TOKEN (a `cmd:` reference)",
                "exited with status 7",
            ],
        ),
        (
            format!("TOKEN = \"file:{}\"", open.display()),
            vec![
                "server environment variable TOKEN (a `file:` reference)",
                &format!("chmod 600 {}", open.display()),
            ],
        ),
        (
            "TOKEN = \"env:E2E_UNSET_VARIABLE\"".to_owned(),
            vec![
                "server environment variable TOKEN (an `env:` reference)",
                "is not set",
            ],
        ),
    ] {
        let policy = policy_with_env(&home, &env);
        let out = cmd(
            &home,
            &[
                "run",
                "--policy",
                policy.to_str().unwrap(),
                "--server",
                "everything",
            ],
        )
        .env_remove("PALISADE_SECRET_BACKEND")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("E2E_UNSET_VARIABLE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
        let (code, stdout, stderr) = code_out_err(&out);
        assert_eq!(code, Some(2), "{env}: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        for e in &expect {
            assert!(stderr.contains(e), "{env}: expected {e:?} in\n{stderr}");
        }
        assert!(
            !stderr.contains("LEAKED"),
            "{env}: a value leaked:\n{stderr}"
        );
        assert!(
            !audit_log(&home, "everything").exists(),
            "no server was started for {env}"
        );
    }
}

/// The keychain backend against a real Secret Service: GNOME Keyring on a private D-Bus session bus
/// (`dbus-run-session`), unlocked with a throwaway password, its keyring files under the test's HOME. The
/// auto choice must pick it, and set/list/get/rm must go through it (no file store appears).
#[test]
fn keychain_backend_round_trip_through_a_real_secret_service() {
    for tool in ["dbus-run-session", "gnome-keyring-daemon", "dbus-send"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        assert!(
            found,
            "{tool} is not installed; install it with `apt-get install -y --no-install-recommends gnome-keyring dbus-daemon dbus-bin` (.ci/run does)"
        );
    }
    let home = TestHome::new();
    let runtime = home.root().join("run");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let script = home.root().join("keychain.sh");
    std::fs::write(
        &script,
        r#"P="$1"
printf pw | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
GK=$!
trap 'kill $GK 2>/dev/null; wait $GK 2>/dev/null' EXIT
for i in $(seq 100); do
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true && break
  sleep 0.1
done
printf 'kc_E2E_value_3b9e\n' | "$P" secret set kc-e2e || exit 11
echo "--- list"; "$P" secret list --format json || exit 12
echo "--- get"; "$P" secret get kc-e2e || exit 13
echo; echo "--- rm"; "$P" secret rm kc-e2e || exit 14
echo "--- get again"; "$P" secret get kc-e2e; echo "status $?"
"#,
    )
    .unwrap();
    let out = Command::new("dbus-run-session")
        .args(["--", "sh"])
        .arg(&script)
        .arg(crate::util::palisade())
        .env_remove("PALISADE_SECRET_BACKEND")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_RUNTIME_DIR", &runtime)
        .envs(home.vars())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (code, stdout, stderr) = code_out_err(&out);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let section = |name: &str| {
        stdout
            .split(&format!("--- {name}\n"))
            .nth(1)
            .and_then(|s| s.split("--- ").next())
            .unwrap_or_else(|| panic!("no {name} section in\n{stdout}\nstderr:\n{stderr}"))
            .to_owned()
    };
    let list: Value = serde_json::from_str(section("list").trim()).unwrap();
    assert_eq!(list["backend"], "keychain", "{list}");
    assert!(
        list["reason"]
            .as_str()
            .unwrap()
            .contains("Secret Service answered"),
        "{list}"
    );
    assert_eq!(list["secrets"], json!([{ "name": "kc-e2e" }]));
    assert_eq!(section("get").trim_end_matches('\n'), "kc_E2E_value_3b9e");
    assert!(
        stderr.contains("stored secret `kc-e2e` in the keychain store"),
        "{stderr}"
    );
    assert!(stderr.contains("removed secret `kc-e2e`"), "{stderr}");
    assert!(section("get again").contains("status 1"), "{stdout}");
    assert!(
        stderr.contains("no secret named `kc-e2e` in the keychain store"),
        "{stderr}"
    );
    assert!(!stderr.contains("UNENCRYPTED"), "no file warning: {stderr}");
    assert!(!secrets_file(&home).exists(), "the file store was not used");
    assert!(!stderr.contains("kc_E2E_value_3b9e"), "{stderr}");
}

/// The headless stores as an unprivileged user (`nobody`): the file store creates its 0600 file in a 0700
/// directory the user owns, and keyutils uses that user's own keyring (root's keyring does not see it).
#[test]
fn headless_stores_work_as_an_unprivileged_user() {
    let user = crate::util::User::Nobody;
    let home = TestHome::new();
    user.give(home.root());
    let exe = user.exe(std::path::Path::new(crate::util::palisade()));
    let name = format!("it-nobody-{}", std::process::id());
    let run = |args: &[&str], stdin: &[u8]| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&exe)
            .arg("secret")
            .args(args)
            .env_remove("PALISADE_SECRET_BACKEND")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("XDG_RUNTIME_DIR")
            .current_dir(home.root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        home.apply(&mut c);
        let mut child = c.spawn().expect("spawn setpriv palisade");
        let _ = child.stdin.take().unwrap().write_all(stdin);
        code_out_err(&child.wait_with_output().unwrap())
    };
    for backend in ["file", "keyutils"] {
        let (code, _, err) = run(&["--backend", backend, "set", &name], b"nobody-value\n");
        assert_eq!(code, Some(0), "{backend}: {err}");
        let (code, out, err) = run(&["--backend", backend, "get", &name], b"");
        assert_eq!(
            (code, out.as_str()),
            (Some(0), "nobody-value"),
            "{backend}: {err}"
        );
        let (_, out, _) = run(&["--backend", backend, "list", "--format", "json"], b"");
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["secrets"], json!([{ "name": name }]), "{backend}");
        if backend == "keyutils" {
            // Root's own keyring does not hold nobody's key.
            let (_, root_out, _) = code_out_err(&secret(
                &home,
                &["--backend", "keyutils", "list", "--format", "json"],
                b"",
            ));
            assert!(!root_out.contains(&name), "{root_out}");
        }
        let (code, _, err) = run(&["--backend", backend, "rm", &name], b"");
        assert_eq!(code, Some(0), "{backend}: {err}");
    }
    let file = secrets_file(&home);
    let meta = std::fs::metadata(&file).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (65534, 0o600));
}

/// At a terminal, `set` prompts with echo off: the typed value never appears in the terminal's output.
/// (`script` gives palisade a pseudo-terminal; the value is typed only once the prompt, which is written
/// after echo is turned off, has appeared.)
#[test]
fn set_at_a_terminal_hides_what_is_typed() {
    use std::io::Read;
    let home = TestHome::new();
    let command = format!("{} secret set typed", crate::util::palisade());
    let mut c = Command::new("script");
    c.args(["-qec", &command, "/dev/null"])
        .env_remove("PALISADE_SECRET_BACKEND")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    home.apply(&mut c);
    let mut child = c.spawn().expect("spawn script (util-linux)");
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("(input is hidden): ") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"typed_TTY_value_0c4d\n").unwrap();
    stdout.read_to_end(&mut seen).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let screen = String::from_utf8_lossy(&seen);
    assert!(status.success(), "{screen}");
    assert!(screen.contains("stored secret `typed`"), "{screen}");
    assert!(!screen.contains("typed_TTY_value_0c4d"), "echoed: {screen}");
    let (_, value, _) = code_out_err(&secret(&home, &["get", "typed"], b""));
    assert_eq!(value, "typed_TTY_value_0c4d");
}
