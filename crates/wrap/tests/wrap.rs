//! Wrap and unwrap over a fixture home with one config per client format (tests/fixtures/README.md), with
//! the headless file store: what changes, what does not, what the store and the policy end up holding, and
//! that unwrap gives every file back byte for byte.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use palisade_scan::{ConfigFile, Locations, Shape};
use palisade_secrets::{FileStore, Secret, SecretName, SecretStore};
use palisade_wrap::{
    Action, ApplyError, Dirs, Plan, Setup, apply, apply_unwrap, config_id, plan, plan_unwrap,
};

#[path = "../../scan/tests/support/fixture.rs"]
mod fixture;

struct Env {
    root: PathBuf,
    home: PathBuf,
    dirs: Dirs,
    store: FileStore,
    palisade: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn copy(from: &Path, to: &Path, home: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy(&e.path(), &dest, home);
        } else {
            let mut text = std::fs::read_to_string(e.path()).unwrap();
            text = text.replace("@@HOME@@", &home.display().to_string());
            for k in fixture::FAKE_KINDS {
                text = text.replace(&format!("@@FAKE:{k}@@"), &fixture::fake(k));
            }
            assert!(
                !text.contains("@@"),
                "unknown marker in {}",
                e.path().display()
            );
            std::fs::write(&dest, text).unwrap();
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

fn env() -> Env {
    static N: AtomicU64 = AtomicU64::new(0);
    let root = std::env::temp_dir().join(format!(
        "palisade-wrap-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&root);
    let home = root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let root = root.canonicalize().unwrap();
    let home = home.canonicalize().unwrap();
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/home"),
        &home,
        &home,
    );
    Env {
        dirs: Dirs::new(&root.join("config/palisade"), &root.join("state/palisade")),
        store: FileStore::new(root.join("data/palisade/secrets.json")),
        palisade: PathBuf::from("/opt/palisade/bin/palisade"),
        home,
        root,
    }
}

impl Env {
    fn configs(&self) -> Vec<ConfigFile> {
        palisade_scan::discover::user_candidates(&Locations::for_home(&self.home))
            .into_iter()
            .filter(|c| c.path.is_file() && c.shape != Shape::ClaudeSettings)
            .map(|c| palisade_scan::load(&c))
            .collect()
    }

    fn config(&self, rel: &str) -> ConfigFile {
        let p = self.home.join(rel);
        self.configs()
            .into_iter()
            .find(|c| c.path == p)
            .unwrap_or_else(|| panic!("no config {rel}"))
    }

    fn plan(&self, file: &ConfigFile) -> Plan {
        self.plan_with(file, &self.store)
    }

    fn plan_with(&self, file: &ConfigFile, store: &dyn SecretStore) -> Plan {
        let id = config_id(file.client, &file.path.canonicalize().unwrap());
        let policy_path = self.dirs.policy_path(&id);
        let policy_text = std::fs::read_to_string(&policy_path).ok();
        let taken_servers = self
            .dirs
            .taken_servers(Some(&self.dirs.record_path(&id)))
            .unwrap();
        let taken_secrets: BTreeSet<String> = store
            .list()
            .unwrap()
            .iter()
            .map(|n| n.to_string())
            .collect();
        plan(
            file,
            &Setup {
                palisade: &self.palisade,
                policy_path: &policy_path,
                policy_text: policy_text.as_deref(),
                home: &self.home,
                taken_servers: &taken_servers,
                taken_secrets: &taken_secrets,
                allow_registry: false,
            },
        )
        .unwrap()
    }

    fn record_path(&self, file: &ConfigFile) -> PathBuf {
        self.dirs
            .record_path(&config_id(file.client, &file.path.canonicalize().unwrap()))
    }

    fn wrap(&self, rel: &str, at: u64) -> Plan {
        let file = self.config(rel);
        let p = self.plan(&file);
        apply(
            &p,
            &self.store,
            &self.dirs,
            &self.record_path(&file),
            time(at),
        )
        .unwrap();
        p
    }

    fn unwrap(&self, rel: &str, force: bool) -> Result<palisade_wrap::Unwrapped, ApplyError> {
        let file = self.config(rel);
        let rp = self.record_path(&file);
        let record = self.dirs.load(&rp).unwrap().expect("a record");
        let up = plan_unwrap(&rp, record, force)?;
        apply_unwrap(&up, &self.dirs, Some(&self.store))
    }
}

fn time(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000 + s)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn secret_values() -> Vec<String> {
    [
        "github",
        "slack",
        "openai",
        "huggingface",
        "bearer",
        "password",
    ]
    .iter()
    .map(|k| fixture::fake(k))
    .collect()
}

/// Every config of the fixture home: wrapped, checked, wrapped again (no change), unwrapped (byte for byte).
#[test]
fn every_format_round_trips_wrap_then_unwrap_byte_for_byte() {
    let e = env();
    let configs = e.configs();
    assert_eq!(
        configs.len(),
        10,
        "{:?}",
        configs.iter().map(|c| &c.path).collect::<Vec<_>>()
    );
    let mut originals = Vec::new();
    for (i, file) in configs.iter().enumerate() {
        assert!(
            file.error.is_none(),
            "{}: {:?}",
            file.path.display(),
            file.error
        );
        let before = std::fs::read(&file.path).unwrap();
        let p = e.plan(file);
        assert!(p.changes(), "{} has servers to wrap", file.path.display());
        let applied = apply(&p, &e.store, &e.dirs, &e.record_path(file), time(i as u64)).unwrap();
        let after = std::fs::read_to_string(&file.path).unwrap();
        assert_eq!(after, p.after);
        assert_eq!(
            std::fs::read(&applied.backup).unwrap(),
            before,
            "the backup is the original"
        );
        assert_eq!(mode(&applied.backup), 0o600);
        let expected_mode = if p.secrets.is_empty() { 0o644 } else { 0o600 };
        assert_eq!(mode(&file.path), expected_mode, "{}", file.path.display());
        for v in secret_values() {
            if p.secrets.iter().any(|s| s.value.expose_str() == v) {
                assert!(
                    !after.contains(&v),
                    "{}: a moved secret is still in the config",
                    file.path.display()
                );
            }
        }
        let policy = std::fs::read_to_string(&p.policy_path).unwrap();
        let diags = palisade_policy::check(&policy, "generated");
        assert!(!diags.has_errors(), "{policy}\n{:?}", diags.codes());
        assert_eq!(mode(&p.policy_path), 0o600);
        for v in secret_values() {
            assert!(!policy.contains(&v), "a secret in the policy:\n{policy}");
        }
        // Wrapping again changes nothing.
        let again = e.plan(&e.config(file.path.strip_prefix(&e.home).unwrap().to_str().unwrap()));
        assert!(
            !again.changes(),
            "{}:\n{}",
            file.path.display(),
            again.diff()
        );
        assert!(again.secrets.is_empty());
        assert!(
            again
                .servers
                .iter()
                .all(|s| !matches!(s.action, Action::Wrap { .. }))
        );
        originals.push((file.path.clone(), before, p.policy_path.clone()));
    }
    for (path, before, policy) in originals {
        let rel = path
            .strip_prefix(&e.home)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let out = e.unwrap(&rel, false).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "{rel} restored byte for byte"
        );
        assert_eq!(mode(&path), 0o644, "{rel}: mode restored");
        assert!(!policy.exists(), "{rel}: the generated policy is removed");
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        let backups: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|d| {
                let n = d.file_name().to_string_lossy().into_owned();
                n.starts_with(path.file_name().unwrap().to_str().unwrap())
                    && n.contains("palisade-backup")
            })
            .collect();
        assert!(backups.is_empty(), "{rel}: backups removed once restored");
    }
    assert!(e.dirs.all().unwrap().is_empty(), "no records left");
    assert!(
        e.store.list().unwrap().is_empty(),
        "unwrap removed the secrets it was given a store for"
    );
}

#[test]
fn claude_desktop_secrets_go_to_the_store_and_the_policy_references_them() {
    let e = env();
    let p = e.wrap(".config/Claude/claude_desktop_config.json", 0);
    let actions: Vec<(String, Action)> = p
        .servers
        .iter()
        .map(|s| (s.entry.clone(), s.action.clone()))
        .collect();
    assert_eq!(
        actions[0],
        (
            "github".into(),
            Action::Wrap {
                server: "claude-desktop-github".into()
            }
        )
    );
    assert_eq!(
        actions[1].1,
        Action::Wrap {
            server: "claude-desktop-filesystem".into()
        }
    );
    assert!(
        matches!(&actions[2].1, Action::Skip(r) if r.contains("argument 3 holds a password in a URL")),
        "{:?}",
        actions[2]
    );
    assert_eq!(
        actions[3].1,
        Action::Wrap {
            server: "claude-desktop-time".into()
        }
    );

    let name = SecretName::new("claude-desktop-github-GITHUB_PERSONAL_ACCESS_TOKEN").unwrap();
    assert_eq!(
        e.store.get(&name).unwrap().expose_str(),
        fixture::fake("github")
    );

    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p.config).unwrap())
            .expect("still strict JSON");
    let gh = &config["mcpServers"]["github"];
    assert_eq!(gh["command"], "/opt/palisade/bin/palisade");
    let args: Vec<&str> = gh["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let policy = p.policy_path.to_str().unwrap();
    assert_eq!(
        args,
        [
            "run",
            "--policy",
            policy,
            "--server",
            "claude-desktop-github",
            "--",
            "npx",
            "-y",
            "@modelcontextprotocol/server-github@2025.4.8"
        ]
    );
    assert_eq!(
        gh["env"],
        serde_json::json!({}),
        "the secret left the config"
    );
    let time_args = config["mcpServers"]["time"]["args"].as_array().unwrap();
    assert_eq!(
        time_args.last().unwrap(),
        "mcp-server-time",
        "args added where there were none"
    );
    assert!(
        config["mcpServers"]["postgres"]["args"][2]
            .as_str()
            .unwrap()
            .contains(&fixture::fake("password")),
        "skipped entries are untouched"
    );

    let text = std::fs::read_to_string(&p.policy_path).unwrap();
    let file = palisade_policy::PolicyFile::parse(&text, "p").unwrap();
    let gh = file.server_command("claude-desktop-github").unwrap();
    assert_eq!(
        gh.argv,
        ["npx", "-y", "@modelcontextprotocol/server-github@2025.4.8"]
    );
    assert_eq!(
        gh.env,
        [(
            "GITHUB_PERSONAL_ACCESS_TOKEN".to_owned(),
            "keychain:claude-desktop-github-GITHUB_PERSONAL_ACCESS_TOKEN".to_owned()
        )]
    );
    assert!(
        text.contains(&format!(
            "read = [\"{}\"]",
            e.home.join("Documents").display()
        )),
        "{text}"
    );
    assert!(
        text.contains("# allow = [\"registry.npmjs.org\", \"api.github.com\"]"),
        "{text}"
    );
    assert_eq!(
        text.matches("\nallow = []\n").count(),
        3,
        "no network granted: {text}"
    );
    let github = p.servers.iter().find(|s| s.entry == "github").unwrap();
    assert!(
        github
            .notes
            .iter()
            .any(|n| n.starts_with("WILL NOT START until you decide")
                && n.contains(
                    "`palisade install npm:@modelcontextprotocol/server-github@2025.4.8`"
                )),
        "{:?}",
        github.notes
    );
}

#[test]
fn jsonc_comments_and_layout_survive() {
    let e = env();
    let rel = ".config/Code/User/mcp.json";
    let before = std::fs::read_to_string(e.home.join(rel)).unwrap();
    let p = e.wrap(rel, 0);
    let after = std::fs::read_to_string(&p.config).unwrap();
    // Every comment stays, except the one on the line of the moved secret, which goes with its line.
    for line in before
        .lines()
        .filter(|l| (l.contains("//") || l.contains("/*")) && !l.contains("OPENAI_API_KEY"))
    {
        let comment = &line[line.find("//").or_else(|| line.find("/*")).unwrap()..];
        assert!(
            after.contains(comment),
            "comment {comment:?} lost:\n{after}"
        );
    }
    assert!(!after.contains(&fixture::fake("openai")) && !after.contains("OPENAI_API_KEY"));
    assert!(
        after.contains("        \"NOTES_API_KEY\": \"${input:api_key}\",\n      },"),
        "the file's trailing-comma style is kept: {after}"
    );
    assert!(
        after.contains("\"NOTES_API_KEY\": \"${input:api_key}\""),
        "client interpolation kept:\n{after}"
    );
    assert!(
        after.contains("\"command\": \"docker\""),
        "containers are left alone"
    );
    let notes = p.servers.iter().find(|s| s.entry == "notes").unwrap();
    assert_eq!(
        notes.action,
        Action::Wrap {
            server: "vscode-notes".into()
        }
    );
    let policy = std::fs::read_to_string(&p.policy_path).unwrap();
    assert!(
        policy.contains("NOTES_API_KEY = \"env:NOTES_API_KEY\""),
        "{policy}"
    );
    assert!(
        policy.contains("OPENAI_API_KEY = \"keychain:vscode-notes-OPENAI_API_KEY\""),
        "{policy}"
    );
    assert!(
        policy.contains(&format!("read = [\"{}\"]", e.home.join("notes").display())),
        "{policy}"
    );
    // Only the notes entry's lines changed: its command and args lines, and the moved secret's line.
    let (b, a): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    let gone: Vec<&str> = b.iter().copied().filter(|l| !a.contains(l)).collect();
    let added: Vec<&str> = a.iter().copied().filter(|l| !b.contains(l)).collect();
    assert_eq!(gone.len(), 3, "{gone:#?}");
    assert!(
        gone[0].contains("\"command\": \"node\"")
            && gone[1].contains("\"args\"")
            && gone[2].contains("OPENAI")
    );
    assert_eq!(added.len(), 2, "{added:#?}");
}

#[test]
fn codex_toml_tables_inline_tables_and_dotted_keys_are_edited_in_place() {
    let e = env();
    let p = e.wrap(".codex/config.toml", 0);
    let after = std::fs::read_to_string(&p.config).unwrap();
    let policy = p.policy_path.display().to_string();
    assert!(
        after.starts_with("# Codex settings\nmodel = \"gpt-5\"\n"),
        "{after}"
    );
    assert!(
        after.contains("command = \"/opt/palisade/bin/palisade\"   # the runner\n"),
        "{after}"
    );
    assert!(
        after.contains(&format!(
            "notes.command = \"/opt/palisade/bin/palisade\" # dotted keys\nnotes.args = [\"run\", \"--policy\", \"{policy}\", \"--server\", \"codex-notes\", \"--\", \"notes-mcp\"]\n"
        )),
        "{after}"
    );
    assert!(
        after.contains(&format!(
            "time = {{ command = \"/opt/palisade/bin/palisade\", args = [\"run\", \"--policy\", \"{policy}\", \"--server\", \"codex-time\", \"--\", \"mcp-server-time\"] }}"
        )),
        "{after}"
    );
    assert!(after.contains("env = { LOG_LEVEL = \"info\" }"), "{after}");
    assert!(
        after.contains("[mcp_servers.slack.env]\n# the bot's token\nSLACK_TEAM_ID = \"T0123\"\n"),
        "{after}"
    );
    assert!(!after.contains(&fixture::fake("slack")) && !after.contains(&fixture::fake("github")));
    let text = std::fs::read_to_string(&p.policy_path).unwrap();
    assert!(text.contains("DEPLOY_ENV = \"env:DEPLOY_ENV\""), "{text}");
    assert!(
        !text.contains("SSH_AUTH_SOCK ="),
        "never passed, so not declared: {text}"
    );
    let ssh = p.servers.iter().find(|s| s.entry == "ssh").unwrap();
    assert!(
        ssh.notes.iter().any(|n| n.contains("SSH_AUTH_SOCK")),
        "{:?}",
        ssh.notes
    );
    assert!(
        text.contains(&format!(
            "read = [\"{}\"]",
            e.home.join("code/webapp").display()
        )),
        "{text}"
    );
    let linear = p.servers.iter().find(|s| s.entry == "linear").unwrap();
    assert!(matches!(&linear.action, Action::Skip(r) if r.contains("remote server")));
}

#[test]
fn zed_nested_command_objects_and_claude_code_projects_get_distinct_names() {
    let e = env();
    let p = e.wrap(".config/zed/settings.json", 0);
    let after = std::fs::read_to_string(&p.config).unwrap();
    assert!(
        after.contains("\"path\": \"/opt/palisade/bin/palisade\""),
        "{after}"
    );
    assert!(after.contains("\"NOTES_DIR\""), "{after}");
    assert!(!after.contains("NOTES_HF_TOKEN"), "{after}");
    let clock = palisade_scan::load(&palisade_scan::Candidate {
        client: palisade_scan::Client::Zed,
        shape: Shape::Zed,
        scope: palisade_scan::Scope::User,
        path: p.config.clone(),
    });
    let words: Vec<_> = clock
        .servers
        .iter()
        .find(|s| s.name == "clock")
        .unwrap()
        .args
        .iter()
        .map(|a| a.value.clone())
        .collect();
    assert_eq!(words.last().unwrap(), "mcp-server-time");
    let docs = p.servers.iter().find(|s| s.entry == "docs").unwrap();
    assert!(
        docs.notes
            .iter()
            .any(|n| n.contains("header `Authorization` holds")),
        "{:?}",
        docs.notes
    );

    let p = e.wrap(".claude.json", 1);
    let names: Vec<_> = p.wrapped().map(|(_, n)| n.to_owned()).collect();
    assert_eq!(
        names,
        [
            "claude-code-memory",
            "claude-code-webapp-memory",
            "claude-code-api-memory"
        ]
    );
    let entries: Vec<_> = p.servers.iter().map(|s| s.entry.clone()).collect();
    assert!(
        entries[1].starts_with("memory (project ") && entries[1].ends_with("/code/webapp)"),
        "{entries:?}"
    );
}

#[test]
fn server_names_never_collide_across_configs_and_secret_names_never_overwrite() {
    let e = env();
    // A secret with the name wrap would choose exists already: it is not overwritten.
    let taken = SecretName::new("claude-desktop-github-GITHUB_PERSONAL_ACCESS_TOKEN").unwrap();
    e.store
        .set(&taken, &Secret::from_string("keep-me".into(), "t").unwrap())
        .unwrap();
    let p = e.wrap(".config/Claude/claude_desktop_config.json", 0);
    assert_eq!(e.store.get(&taken).unwrap().expose_str(), "keep-me");
    assert_eq!(
        p.secrets[0].name.as_str(),
        "claude-desktop-github-GITHUB_PERSONAL_ACCESS_TOKEN-2"
    );
    // Another config whose entries would get the same server names (a copy under another client path
    // would; here the record of the first makes the names taken).
    let taken_servers = e.dirs.taken_servers(None).unwrap();
    assert!(taken_servers.contains("claude-desktop-github"));
    let mac = e.home.join("Library/Application Support/Claude");
    std::fs::create_dir_all(&mac).unwrap();
    std::fs::write(mac.join("claude_desktop_config.json"), &p.before).unwrap();
    let p2 = e.wrap(
        "Library/Application Support/Claude/claude_desktop_config.json",
        1,
    );
    let names: Vec<_> = p2.wrapped().map(|(_, n)| n.to_owned()).collect();
    assert_eq!(
        names,
        [
            "claude-desktop-github-2",
            "claude-desktop-filesystem-2",
            "claude-desktop-time-2"
        ]
    );
    assert_ne!(p.policy_path, p2.policy_path);
}

#[test]
fn unwrap_refuses_a_config_edited_since_unless_forced() {
    let e = env();
    let rel = ".cursor/mcp.json";
    let original = std::fs::read(e.home.join(rel)).unwrap();
    e.wrap(rel, 0);
    let path = e.home.join(rel);
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"browser\"", "\"web\"");
    std::fs::write(&path, &edited).unwrap();
    let err = e.unwrap(rel, false).unwrap_err();
    assert!(matches!(err, ApplyError::EditedSince { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("changed since palisade wrap wrote it"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        edited,
        "refusal changes nothing"
    );
    e.unwrap(rel, true).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), original);
}

#[test]
fn a_second_wrap_after_an_edit_is_undone_first_and_force_goes_back_to_the_original() {
    let e = env();
    let rel = ".cursor/mcp.json";
    let path = e.home.join(rel);
    let original = std::fs::read(&path).unwrap();
    e.wrap(rel, 0);
    // The user adds a server by hand, then wraps again.
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen(
        "\"mcpServers\": {",
        "\"mcpServers\": {\n    \"time\": {\"command\": \"mcp-server-time\"},",
        1,
    );
    std::fs::write(&path, &edited).unwrap();
    let p = e.wrap(rel, 1);
    assert_eq!(
        p.wrapped().map(|(_, n)| n).collect::<Vec<_>>(),
        ["cursor-time"]
    );
    let policy = std::fs::read_to_string(&p.policy_path).unwrap();
    assert!(
        policy.contains("[servers.cursor-browser]") && policy.contains("[servers.cursor-time]"),
        "{policy}"
    );
    // Unwrap undoes the second wrap only: the edit sits between them.
    e.unwrap(rel, false).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
    let policy = std::fs::read_to_string(&p.policy_path).unwrap();
    assert!(
        policy.contains("[servers.cursor-browser]") && !policy.contains("[servers.cursor-time]"),
        "{policy}"
    );
    // The next unwrap sees a file that is not what the first wrap wrote.
    assert!(matches!(
        e.unwrap(rel, false),
        Err(ApplyError::EditedSince { .. })
    ));
    e.unwrap(rel, true).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), original);
    assert!(!p.policy_path.exists());
}

#[test]
fn a_config_changed_after_planning_is_not_written() {
    let e = env();
    let file = e.config(".gemini/settings.json");
    let p = e.plan(&file);
    std::fs::write(&file.path, file.text.replace("Default", "Dark")).unwrap();
    let err = apply(&p, &e.store, &e.dirs, &e.record_path(&file), time(0)).unwrap_err();
    assert!(matches!(err, ApplyError::Changed(_)), "{err}");
    assert!(e.store.list().unwrap().is_empty(), "no secret stored");
    assert!(!p.policy_path.exists());
    assert!(e.dirs.all().unwrap().is_empty());
}

/// A store that refuses every write.
struct Broken;

impl SecretStore for Broken {
    fn backend(&self) -> palisade_secrets::Backend {
        palisade_secrets::Backend::File
    }
    fn location(&self) -> String {
        "nowhere".into()
    }
    fn set(&self, _: &SecretName, _: &Secret) -> palisade_secrets::Result<()> {
        Err(palisade_secrets::Error::Unavailable {
            backend: palisade_secrets::Backend::File,
            reason: "the test store refuses writes".into(),
            hint: None,
        })
    }
    fn get(&self, n: &SecretName) -> palisade_secrets::Result<Secret> {
        Err(palisade_secrets::Error::NotFound {
            name: n.to_string(),
            backend: palisade_secrets::Backend::File,
            location: "nowhere".into(),
            hint: String::new(),
        })
    }
    fn remove(&self, _: &SecretName) -> palisade_secrets::Result<()> {
        Ok(())
    }
    fn list(&self) -> palisade_secrets::Result<Vec<SecretName>> {
        Ok(Vec::new())
    }
}

#[test]
fn a_store_that_refuses_leaves_everything_as_it_was() {
    let e = env();
    let file = e.config(".gemini/settings.json");
    let before = std::fs::read(&file.path).unwrap();
    let p = e.plan_with(&file, &Broken);
    let err = apply(&p, &Broken, &e.dirs, &e.record_path(&file), time(0)).unwrap_err();
    assert!(
        err.to_string().contains("the test store refuses writes"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("everything done before was undone"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file.path).unwrap(), before);
    assert!(!p.policy_path.exists());
    assert!(e.dirs.all().unwrap().is_empty());
    let names: Vec<_> = std::fs::read_dir(file.path.parent().unwrap())
        .unwrap()
        .map(|d| d.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no backup, no temp file: {names:?}");
}

#[test]
fn the_diff_masks_moved_secrets() {
    let e = env();
    let p = e.plan(&e.config(".gemini/settings.json"));
    let d = p.diff();
    assert!(
        d.contains(
            "-      \"env\": {\"HF_TOKEN\": \"[secret moved to keychain:gemini-cli-hf-HF_TOKEN]\""
        ),
        "{d}"
    );
    assert!(!d.contains(&fixture::fake("huggingface")), "{d}");
}

#[test]
fn unwrap_leaves_a_policy_the_user_edited() {
    let e = env();
    let rel = ".cursor/mcp.json";
    let p = e.wrap(rel, 0);
    let edited = std::fs::read_to_string(&p.policy_path)
        .unwrap()
        .replace("allow = []", "allow = [\"registry.npmjs.org\"]");
    std::fs::write(&p.policy_path, &edited).unwrap();
    let out = e.unwrap(rel, false).unwrap();
    assert_eq!(out.policy, palisade_wrap::PolicyOutcome::KeptEdited);
    assert_eq!(std::fs::read_to_string(&p.policy_path).unwrap(), edited);
    assert_eq!(std::fs::read_to_string(e.home.join(rel)).unwrap(), p.before);
}

#[test]
fn unwrap_refuses_a_backup_that_is_not_what_wrap_saved() {
    let e = env();
    let rel = ".cursor/mcp.json";
    e.wrap(rel, 0);
    let file = e.config(rel);
    let record = e.dirs.load(&e.record_path(&file)).unwrap().unwrap();
    std::fs::write(&record.generations[0].backup, "{}").unwrap();
    let err = e.unwrap(rel, true).unwrap_err();
    assert!(matches!(err, ApplyError::BadBackup { .. }), "{err}");
    assert!(
        err.to_string().contains("not the file palisade wrap saved"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&file.path).unwrap(),
        file.text,
        "nothing restored"
    );
}
