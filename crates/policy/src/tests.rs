//! Crate tests: one fixture per diagnostic code, the embedded default, precedence, and CLI overrides.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::layer::Settings;
use crate::*;

const HOME: &str = "/home/me";
const CWD: &str = "/work/dir";

fn env() -> ResolveEnv<'static> {
    ResolveEnv {
        home: Some(Path::new(HOME)),
        cwd: Path::new(CWD),
    }
}

fn parse(text: &str) -> PolicyFile {
    PolicyFile::parse(text, "policy.toml")
        .unwrap_or_else(|d| panic!("expected a valid policy:\n{d}"))
}

fn resolve_file(text: &str, server: Option<&str>, o: &Overrides) -> Policy {
    let file = parse(text);
    resolve(Some(&file), server, "derived", o, &env())
        .unwrap_or_else(|d| panic!("expected to resolve:\n{d}"))
        .policy
}

fn default_policy() -> Policy {
    resolve(None, None, "derived", &Overrides::default(), &env())
        .unwrap()
        .policy
}

/// Asserts that checking `text` yields a diagnostic with `code` on `line`, and returns it.
fn expect(text: &str, code: Code, line: usize) -> Diagnostic {
    let diags = check(text, "policy.toml");
    let found = diags.iter().find(|d| d.code == code).unwrap_or_else(|| {
        panic!("expected {code} on line {line}, got:\n{diags}");
    });
    assert_eq!(found.location.map(|l| l.line), Some(line), "{found}");
    assert_eq!(found.severity, code.severity());
    found.clone()
}

fn globs(list: &[Glob]) -> Vec<&str> {
    list.iter().map(Glob::as_str).collect()
}

fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

// ---- the embedded default ----------------------------------------------------------------------------

#[test]
fn embedded_default_parses_without_warnings() {
    let d = check(EMBEDDED_DEFAULT, "<embedded default>");
    assert!(d.is_empty(), "{d}");
}

#[test]
fn embedded_default_yields_the_documented_values() {
    let p = default_policy();
    assert_eq!(p.server, "derived");
    assert_eq!(p.profile, Profile::Dev);
    assert_eq!(globs(&p.tools.allow), ["*"]);
    assert!(p.tools.deny.is_empty());
    assert_eq!(p.fs, FsRules::default());
    assert_eq!(p.net, NetRules::default());
    assert_eq!(
        p.args,
        ArgRules {
            schema: true,
            unknown: UnknownArgs::Allow,
            auto_detect: true,
            url_schemes: vec!["https".into(), "http".into()],
            rules: vec![],
        }
    );
    assert_eq!(
        p.pinning,
        Pinning {
            mode: PinMode::Tofu,
            file: None
        }
    );
    assert_eq!(
        p.limits,
        Limits {
            max_message_bytes: 8 * 1024 * 1024,
            call_timeout: Duration::from_secs(60),
            max_concurrent_calls: 16,
            rate: None,
        }
    );
    assert_eq!(
        p.audit,
        AuditRules {
            enabled: true,
            path: None,
            durable: false,
        }
    );
    assert_eq!(p.command, None);
}

#[test]
fn embedded_default_sets_every_key_so_the_floor_never_shows() {
    let g = &PolicyFile::embedded_default().globals;
    assert!(g.tools_allow.is_some() && g.tools_deny.is_some());
    assert!(g.fs_read.is_some() && g.fs_write.is_some() && g.net_allow.is_some());
    assert!(g.args_schema.is_some() && g.args_unknown.is_some() && g.args_auto_detect.is_some());
    assert!(g.args_url_schemes.is_some() && g.pin_mode.is_some());
    assert!(g.max_message_bytes.is_some() && g.call_timeout.is_some());
    assert!(g.max_concurrent_calls.is_some() && g.rate.is_some());
    assert!(g.audit_enabled.is_some() && g.audit_durable.is_some());
    // Pins file and audit path are deliberately unset: `None` means the XDG default location.
    assert!(g.pin_file.is_none() && g.audit_path.is_none());
    let mut s = Settings::locked_down();
    s.apply(g);
    assert_ne!(s, Settings::locked_down());
}

// ---- every diagnostic code ---------------------------------------------------------------------------

#[test]
fn codes_are_stable() {
    let names: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names,
        [
            "syntax",
            "unknown-key",
            "missing-key",
            "wrong-type",
            "unsupported-version",
            "invalid-value",
            "invalid-glob",
            "invalid-duration",
            "invalid-size",
            "invalid-rate",
            "invalid-host",
            "invalid-path",
            "relative-path",
            "invalid-command",
            "invalid-env",
            "unknown-server",
            "no-home",
            "missing-version",
            "pinning-off",
            "empty-allow",
            "duplicate-entry",
            "broad-root",
            "audit-off",
            "schema-off",
            "invalid-url",
            "conflicting-keys",
        ]
    );
    for c in Code::ALL {
        assert!(!c.description().is_empty());
    }
}

#[test]
fn rejects_invalid_toml_with_line() {
    let d = expect("version = 1\n[tools\nallow = []\n", Code::Syntax, 2);
    assert!(d.message.starts_with("invalid TOML"), "{d}");
}

#[test]
fn rejects_duplicate_toml_keys_as_syntax() {
    expect(
        "version = 1\n[limits]\nrate = \"1/s\"\nrate = \"2/s\"\n",
        Code::Syntax,
        4,
    );
}

#[test]
fn rejects_unknown_key_with_line() {
    let d = expect("version = 1\n\n[tols]\nallow = []\n", Code::UnknownKey, 3);
    assert_eq!(d.key, "tols");
    assert!(d.help.contains("did you mean `tools`"), "{d}");
}

#[test]
fn rejects_unknown_key_inside_a_section_with_column() {
    let d = expect(
        "version = 1\n[limits]\n  call_timout = \"5s\"\n",
        Code::UnknownKey,
        3,
    );
    assert_eq!(d.location, Some(Location { line: 3, column: 3 }));
    assert_eq!(d.key, "limits.call_timout");
    assert!(d.help.contains("call_timeout"), "{d}");
}

#[test]
fn rejects_unknown_key_in_server_and_rule_tables() {
    expect(
        "version = 1\n[servers.git]\ncommand = [\"x\"]\ncomand = [\"y\"]\n",
        Code::UnknownKey,
        4,
    );
    expect(
        "version = 1\n[[arguments.rule]]\ntool = \"x\"\npath = [\"p\"]\n",
        Code::UnknownKey,
        4,
    );
}

#[test]
fn rejects_rule_without_tool() {
    let d = expect(
        "version = 1\n[[arguments.rule]]\npaths = [\"p\"]\n",
        Code::MissingKey,
        2,
    );
    assert_eq!(d.key, "arguments.rule[0].tool");
}

#[test]
fn rejects_env_without_command() {
    expect(
        "version = 1\n[servers.a]\nenv = { K = \"env:K\" }\n",
        Code::MissingKey,
        3,
    );
}

#[test]
fn rejects_wrong_type_at_the_value() {
    let d = expect(
        "version = 1\n[tools]\nallow = \"read_*\"\n",
        Code::WrongType,
        3,
    );
    assert_eq!(d.location, Some(Location { line: 3, column: 9 }));
    assert_eq!(
        d.message,
        "tools.allow must be an array of strings, not a string"
    );
    expect(
        "version = 1\n[audit]\nenabled = \"yes\"\n",
        Code::WrongType,
        3,
    );
    expect("version = 1\ntools = 3\n", Code::WrongType, 2);
    expect(
        "version = 1\n[tools]\nallow = [\"a\", 3]\n",
        Code::WrongType,
        3,
    );
}

#[test]
fn rejects_unsupported_version() {
    expect("version = 2\n", Code::UnsupportedVersion, 1);
}

#[test]
fn warns_when_version_is_missing() {
    let d = check("[tools]\nallow = [\"*\"]\n", "policy.toml");
    assert_eq!(d.codes(), [Code::MissingVersion]);
    assert!(!d.has_errors());
}

#[test]
fn rejects_invalid_enum_values() {
    expect(
        "version = 1\nprofile = \"staging\"\n",
        Code::InvalidValue,
        2,
    );
    expect(
        "version = 1\n[pinning]\nmode = \"sometimes\"\n",
        Code::InvalidValue,
        3,
    );
    expect(
        "version = 1\n[arguments]\nunknown = \"maybe\"\n",
        Code::InvalidValue,
        3,
    );
    expect(
        "version = 1\n[limits]\nmax_concurrent_calls = 0\n",
        Code::InvalidValue,
        3,
    );
    expect(
        "version = 1\n[arguments]\nurl_schemes = [\"https://\"]\n",
        Code::InvalidValue,
        3,
    );
    expect(
        "version = 1\n[servers.\"../etc\"]\ncommand = [\"x\"]\n",
        Code::InvalidValue,
        2,
    );
}

#[test]
fn rejects_invalid_glob() {
    let d = expect(
        "version = 1\n[tools]\ndeny = [\"ok\", \"\"]\n",
        Code::InvalidGlob,
        3,
    );
    assert_eq!(d.key, "tools.deny[1]");
    expect(
        "version = 1\n[tools]\nallow = [\"read file\"]\n",
        Code::InvalidGlob,
        3,
    );
}

#[test]
fn rejects_invalid_duration_and_renders_like_cargo_deny() {
    let text = "version = 1\n[limits]\ncall_timeout = \"60 parsecs\"\n";
    let d = expect(text, Code::InvalidDuration, 3);
    assert_eq!(
        d.to_string(),
        "error[invalid-duration]: policy.toml:3:16: limits.call_timeout = \"60 parsecs\" is not a duration\n  \
         help: write a duration such as \"30s\", \"2m\" or \"1h\""
    );
}

#[test]
fn rejects_invalid_size() {
    expect(
        "version = 1\n[limits]\nmax_message_bytes = \"8 parsecs\"\n",
        Code::InvalidSize,
        3,
    );
    expect(
        "version = 1\n[limits]\nmax_message_bytes = 0\n",
        Code::InvalidSize,
        3,
    );
}

#[test]
fn rejects_invalid_rate() {
    expect(
        "version = 1\n[limits]\nrate = \"60 per minute\"\n",
        Code::InvalidRate,
        3,
    );
}

#[test]
fn rejects_invalid_host() {
    let d = expect(
        "version = 1\n[network]\nallow = [\"api.github.com\", \"https://example.com\"]\n",
        Code::InvalidHost,
        3,
    );
    assert_eq!(d.key, "network.allow[1]");
}

#[test]
fn rejects_invalid_path() {
    expect(
        "version = 1\n[filesystem]\nread = [\"~bob/x\"]\n",
        Code::InvalidPath,
        3,
    );
    expect("version = 1\n[audit]\npath = \"\"\n", Code::InvalidPath, 3);
}

#[test]
fn rejects_relative_path_in_a_file() {
    let d = expect(
        "version = 1\n[filesystem]\nwrite = [\"project\"]\n",
        Code::RelativePath,
        3,
    );
    assert!(d.help.contains("~/project"), "{d}");
    expect(
        "version = 1\n[pinning]\nfile = \"pins.json\"\n",
        Code::RelativePath,
        3,
    );
}

#[test]
fn rejects_empty_command() {
    expect(
        "version = 1\n[servers.a]\ncommand = []\n",
        Code::InvalidCommand,
        3,
    );
    expect(
        "version = 1\n[servers.a]\ncommand = [\"\", \"x\"]\n",
        Code::InvalidCommand,
        3,
    );
    // A bad command is reported once, not again as "env without command".
    let d = check(
        "version = 1\n[servers.a]\ncommand = []\nenv = { A = \"b\" }\n",
        "p",
    );
    assert_eq!(d.codes(), [Code::InvalidCommand]);
}

#[test]
fn rejects_malformed_env() {
    expect(
        "version = 1\n[servers.a]\ncommand = [\"x\"]\nenv = { TOKEN = \"env:\" }\n",
        Code::InvalidEnv,
        4,
    );
    expect(
        "version = 1\n[servers.a]\ncommand = [\"x\"]\n[servers.a.env]\n\"A=B\" = \"x\"\n",
        Code::InvalidEnv,
        5,
    );
}

#[test]
fn rejects_unknown_server() {
    let file = parse("version = 1\n[servers.github]\ncommand = [\"x\"]\n");
    let err = resolve(
        Some(&file),
        Some("githb"),
        "x",
        &Overrides::default(),
        &env(),
    )
    .unwrap_err();
    assert_eq!(err.codes(), [Code::UnknownServer]);
    let d = err.iter().next().unwrap();
    assert!(d.help.contains("did you mean `github`"), "{d}");
    assert_eq!(d.location, None);
    let err = resolve(None, Some("github"), "x", &Overrides::default(), &env()).unwrap_err();
    assert_eq!(err.codes(), [Code::UnknownServer]);
}

#[test]
fn rejects_home_paths_when_home_is_unknown() {
    let file = parse("version = 1\n[filesystem]\nread = [\"~/project\"]\n");
    let no_home = ResolveEnv {
        home: None,
        cwd: Path::new(CWD),
    };
    let err = resolve(Some(&file), None, "x", &Overrides::default(), &no_home).unwrap_err();
    assert_eq!(err.codes(), [Code::NoHome]);
    let d = err.iter().next().unwrap();
    assert_eq!(d.location, Some(Location { line: 3, column: 9 }));
    assert_eq!(d.origin, "policy.toml");
}

#[test]
fn warns_when_pinning_is_off() {
    let d = expect(
        "version = 1\n[pinning]\nmode = \"off\"\n",
        Code::PinningOff,
        3,
    );
    assert!(
        !check("version = 1\n[pinning]\nmode = \"off\"\n", "p").has_errors(),
        "{d}"
    );
}

#[test]
fn warns_when_allow_is_empty() {
    expect(
        "version = 1\n[servers.a.tools]\nallow = []\n",
        Code::EmptyAllow,
        3,
    );
}

#[test]
fn warns_on_duplicate_entry() {
    let d = expect(
        "version = 1\n[tools]\ndeny = [\"a\",\n  \"a\"]\n",
        Code::DuplicateEntry,
        4,
    );
    assert_eq!(d.key, "tools.deny[1]");
}

#[test]
fn warns_on_broad_roots() {
    expect(
        "version = 1\n[filesystem]\nwrite = [\"/\"]\n",
        Code::BroadRoot,
        3,
    );
    expect(
        "version = 1\n[filesystem]\nread = [\"~\"]\n",
        Code::BroadRoot,
        3,
    );
    // A home written out in full is caught when resolving, where HOME is known.
    let file = parse("version = 1\n[filesystem]\nwrite = [\"/home/me\"]\n");
    let r = resolve(Some(&file), None, "x", &Overrides::default(), &env()).unwrap();
    assert_eq!(r.warnings.codes(), [Code::BroadRoot]);
    assert_eq!(
        r.warnings.iter().next().unwrap().location.map(|l| l.line),
        Some(3)
    );
    // Not reported twice for `~` (once by the parser only).
    let file = parse("version = 1\n[filesystem]\nwrite = [\"~\"]\n");
    assert_eq!(file.warnings().codes(), [Code::BroadRoot]);
    let r = resolve(Some(&file), None, "x", &Overrides::default(), &env()).unwrap();
    assert!(r.warnings.is_empty(), "{}", r.warnings);
}

#[test]
fn warns_when_audit_is_off() {
    expect("version = 1\n[audit]\nenabled = false\n", Code::AuditOff, 3);
}

#[test]
fn warns_when_schema_checks_are_off() {
    expect(
        "version = 1\n[arguments]\nschema = false\n",
        Code::SchemaOff,
        3,
    );
}

#[test]
fn reports_every_error_not_just_the_first() {
    let text = "\
version = 1
bogus = 1
[tools]
allow = [\"\"]
[limits]
call_timeout = \"soon\"
rate = \"lots\"
[network]
allow = [\"a.com:0\"]
";
    let d = check(text, "policy.toml");
    assert_eq!(
        d.codes(),
        [
            Code::UnknownKey,
            Code::InvalidGlob,
            Code::InvalidDuration,
            Code::InvalidRate,
            Code::InvalidHost
        ],
        "{d}"
    );
    let lines: Vec<usize> = d.iter().map(|d| d.location.unwrap().line).collect();
    assert_eq!(lines, [2, 4, 6, 7, 9]);
    assert_eq!(PolicyFile::parse(text, "policy.toml").unwrap_err(), d);
}

#[test]
fn counts_columns_in_characters() {
    let d = expect(
        "version = 1\n# é\n[tools]\nallow = [\"é\", \"\"]\n",
        Code::InvalidGlob,
        4,
    );
    assert_eq!(d.location.unwrap().column, 15);
}

// ---- the full example from docs/policy.md ----------------------------------------------------------------

#[test]
fn documented_example_is_valid_and_resolves() {
    let text = include_str!("../../../docs/policy.md");
    let start = text
        .find("```toml\n")
        .expect("docs/policy.md has a toml example")
        + "```toml\n".len();
    let end = start + text[start..].find("```").unwrap();
    let file = parse(&text[start..end]);
    assert!(file.warnings().is_empty(), "{}", file.warnings());
    for name in file.server_names().collect::<Vec<_>>() {
        resolve(Some(&file), Some(name), name, &Overrides::default(), &env()).unwrap();
    }
}

// ---- profiles and precedence -----------------------------------------------------------------------

#[test]
fn prod_profile_denies_unknown_args_requires_pins_and_writes_durably() {
    let p = resolve_file(
        "version = 1\nprofile = \"prod\"\n",
        None,
        &Overrides::default(),
    );
    assert_eq!(p.profile, Profile::Prod);
    assert_eq!(p.args.unknown, UnknownArgs::Deny);
    assert_eq!(p.pinning.mode, PinMode::Require);
    assert!(p.audit.durable);
    // Everything else is the default.
    assert_eq!(p.limits, default_policy().limits);
    assert_eq!(p.tools, default_policy().tools);
}

#[test]
fn a_key_set_in_the_file_beats_the_profile_preset() {
    let p = resolve_file(
        "version = 1\nprofile = \"prod\"\n[pinning]\nmode = \"tofu\"\n",
        None,
        &Overrides::default(),
    );
    assert_eq!(p.pinning.mode, PinMode::Tofu);
    assert_eq!(p.args.unknown, UnknownArgs::Deny);
}

#[test]
fn cli_profile_beats_the_file_profile_but_not_file_keys() {
    let o = Overrides {
        profile: Some(Profile::Prod),
        ..Overrides::default()
    };
    let p = resolve_file(
        "version = 1\nprofile = \"dev\"\n[audit]\ndurable = false\n",
        None,
        &o,
    );
    assert_eq!(p.profile, Profile::Prod);
    assert_eq!(p.pinning.mode, PinMode::Require);
    assert!(!p.audit.durable);
}

#[test]
fn server_profile_beats_the_global_profile() {
    let text = "version = 1\nprofile = \"dev\"\n[servers.a]\nprofile = \"prod\"\n[servers.b]\n";
    assert_eq!(
        resolve_file(text, Some("a"), &Overrides::default()).profile,
        Profile::Prod
    );
    assert_eq!(
        resolve_file(text, Some("b"), &Overrides::default()).profile,
        Profile::Dev
    );
}

// ---- server overrides -----------------------------------------------------------------------------

const SERVERS: &str = r#"
version = 1
[tools]
deny = ["delete_*"]
[filesystem]
read = ["/srv/shared"]
[limits]
call_timeout = "30s"
rate = "60/min"
[[arguments.rule]]
tool = "*"
urls = ["url"]

[servers.git]
command = ["uvx", "mcp-server-git==1.0.0"]
env = { GIT_TOKEN = "secret:git", LANG = "C" }
[servers.git.tools]
allow = ["git_*"]
[servers.git.filesystem]
write = ["~/repo"]
[servers.git.limits]
rate = "off"
[[servers.git.arguments.rule]]
tool = "git_*"
paths = ["repo_path"]
positionals = ["revision", "target"]

[servers.plain]
command = ["plain-server"]
"#;

#[test]
fn server_tables_override_the_globals() {
    let p = resolve_file(SERVERS, Some("git"), &Overrides::default());
    assert_eq!(p.server, "git");
    assert_eq!(globs(&p.tools.allow), ["git_*"]);
    assert_eq!(globs(&p.tools.deny), ["delete_*"]);
    assert_eq!(p.fs.read, paths(&["/srv/shared"]));
    assert_eq!(p.fs.write, paths(&["/home/me/repo"]));
    assert_eq!(p.limits.call_timeout, Duration::from_secs(30));
    assert_eq!(p.limits.rate, None);
    // Rules are appended: the global URL rule survives the server's own rule.
    let tools: Vec<&str> = p.args.rules.iter().map(|r| r.tool.as_str()).collect();
    assert_eq!(tools, ["*", "git_*"]);
    assert_eq!(p.args.rules[1].positionals, ["revision", "target"]);
    assert_eq!(
        p.command,
        Some(ServerCommand {
            argv: vec!["uvx".into(), "mcp-server-git==1.0.0".into()],
            env: vec![
                ("GIT_TOKEN".into(), "secret:git".into()),
                ("LANG".into(), "C".into())
            ],
        })
    );
}

#[test]
fn servers_without_overrides_get_the_globals() {
    let p = resolve_file(SERVERS, Some("plain"), &Overrides::default());
    assert_eq!(globs(&p.tools.allow), ["*"]);
    let rate = p.limits.rate.unwrap();
    assert_eq!((rate.count, rate.per), (60, Duration::from_secs(60)));
    assert!(p.fs.write.is_empty());
}

#[test]
fn server_tables_apply_only_when_named() {
    let p = resolve_file(SERVERS, None, &Overrides::default());
    assert_eq!(p.server, "derived");
    assert_eq!(globs(&p.tools.allow), ["*"]);
    assert_eq!(p.command, None);
}

#[test]
fn lists_server_names_and_commands() {
    let file = parse(SERVERS);
    assert_eq!(file.server_names().collect::<Vec<_>>(), ["git", "plain"]);
    assert_eq!(file.server_command("plain").unwrap().argv, ["plain-server"]);
    assert!(file.server_command("nope").is_none());
}

// ---- CLI overrides --------------------------------------------------------------------------------

#[test]
fn allow_tool_replaces_and_deny_tool_appends() {
    let o = Overrides {
        allow_tool: vec!["read_*".into(), "list_*".into()],
        deny_tool: vec!["read_secret".into()],
        ..Overrides::default()
    };
    let p = resolve_file(SERVERS, Some("git"), &o);
    assert_eq!(globs(&p.tools.allow), ["read_*", "list_*"]);
    assert_eq!(globs(&p.tools.deny), ["delete_*", "read_secret"]);
}

#[test]
fn path_flags_append_absolute_and_expanded() {
    let o = Overrides {
        allow_read: vec![
            "data".into(),
            "./more/.".into(),
            "~/notes".into(),
            "/srv/shared".into(),
        ],
        allow_write: vec!["~/out".into(), "../up".into()],
        ..Overrides::default()
    };
    let p = resolve_file(SERVERS, Some("git"), &o);
    assert_eq!(
        p.fs.read,
        paths(&[
            "/srv/shared",
            "/work/dir/data",
            "/work/dir/more",
            "/home/me/notes"
        ])
    );
    assert_eq!(
        p.fs.write,
        paths(&["/home/me/repo", "/home/me/out", "/work/dir/../up"])
    );
}

#[test]
fn allow_net_appends_and_is_validated() {
    let file = parse("version = 1\n[network]\nallow = [\"api.github.com\"]\n");
    let o = Overrides {
        allow_net: vec!["*.example.com:443".into()],
        ..Overrides::default()
    };
    let p = resolve(Some(&file), None, "x", &o, &env()).unwrap().policy;
    let hosts: Vec<(&str, Option<u16>)> = p
        .net
        .allow
        .iter()
        .map(|h| (h.host.as_str(), h.port))
        .collect();
    assert_eq!(
        hosts,
        [("api.github.com", None), ("*.example.com", Some(443))]
    );

    let bad = Overrides {
        allow_net: vec!["https://x.com".into()],
        allow_tool: vec![String::new()],
        allow_read: vec![PathBuf::new()],
        ..Overrides::default()
    };
    let err = resolve(Some(&file), None, "x", &bad, &env()).unwrap_err();
    let mut codes = err.codes();
    codes.sort_by_key(|c| c.as_str());
    assert_eq!(
        codes,
        [Code::InvalidGlob, Code::InvalidHost, Code::InvalidPath]
    );
    assert!(
        err.iter()
            .all(|d| d.origin == "command line" && d.location.is_none())
    );
    assert!(
        err.to_string()
            .contains("error[invalid-host]: command line: --allow-net \"https://x.com\"")
    );
}

#[test]
fn audit_log_and_pins_flags_set_files() {
    let o = Overrides {
        audit_log: Some("audit.jsonl".into()),
        pins: Some("~/pins.json".into()),
        ..Overrides::default()
    };
    let p = resolve_file("version = 1\n[audit]\nenabled = false\n", None, &o);
    assert_eq!(p.audit.path, Some(PathBuf::from("/work/dir/audit.jsonl")));
    assert!(
        p.audit.enabled,
        "asking for an audit log turns the audit trail on"
    );
    assert_eq!(p.pinning.file, Some(PathBuf::from("/home/me/pins.json")));
}

#[test]
fn cli_roots_that_expose_everything_are_warned_about() {
    let o = Overrides {
        allow_write: vec!["/".into()],
        allow_read: vec!["~".into()],
        ..Overrides::default()
    };
    let r = resolve(None, None, "x", &o, &env()).unwrap();
    assert_eq!(r.warnings.codes(), [Code::BroadRoot, Code::BroadRoot]);
    assert!(r.warnings.iter().all(|d| d.origin == "command line"));
}

#[test]
fn file_paths_keep_their_site_and_expand_home() {
    let p = resolve_file(
        "version = 1\n[pinning]\nfile = \"~/.local/state/pins.json\"\n[audit]\npath = \"/var/log/p.jsonl\"\n",
        None,
        &Overrides::default(),
    );
    assert_eq!(
        p.pinning.file,
        Some(PathBuf::from("/home/me/.local/state/pins.json"))
    );
    assert_eq!(p.audit.path, Some(PathBuf::from("/var/log/p.jsonl")));
}

#[test]
fn sizes_may_be_integers_or_units() {
    let p = resolve_file(
        "version = 1\n[limits]\nmax_message_bytes = 1_048_576\n",
        None,
        &Overrides::default(),
    );
    assert_eq!(p.limits.max_message_bytes, 1 << 20);
    let p = resolve_file(
        "version = 1\n[limits]\nmax_message_bytes = \"512KiB\"\n",
        None,
        &Overrides::default(),
    );
    assert_eq!(p.limits.max_message_bytes, 512 << 10);
}

// ---- trust ---------------------------------------------------------------------------------------------

#[test]
fn servers_are_sandboxed_unless_their_own_table_says_unsandboxed() {
    assert_eq!(default_policy().trust, Trust::Sandboxed);
    let text = "version = 1\n[servers.docker]\ncommand = [\"docker\"]\ntrust = \"unsandboxed\"\n[servers.other]\ncommand = [\"x\"]\n";
    let o = Overrides::default();
    assert_eq!(
        resolve_file(text, Some("docker"), &o).trust,
        Trust::Unsandboxed
    );
    // One server's trust is not another's.
    assert_eq!(
        resolve_file(text, Some("other"), &o).trust,
        Trust::Sandboxed
    );
    assert_eq!(resolve_file(text, None, &o).trust, Trust::Sandboxed);
}

#[test]
fn trust_is_per_server_and_spelled_exactly() {
    let d = expect(
        "version = 1\n[servers.a]\ncommand = [\"a\"]\ntrust = \"yes\"\n",
        Code::InvalidValue,
        4,
    );
    assert!(d.help.contains("unsandboxed"), "{d}");
    // No global switch.
    expect(
        "version = 1\ntrust = \"unsandboxed\"\n",
        Code::UnknownKey,
        2,
    );
}

// ---- process sharing (`palisade serve`) ----------------------------------------------------------------

#[test]
fn a_server_process_is_per_session_unless_its_table_says_shared() {
    assert_eq!(default_policy().process, ProcessSharing::PerSession);
    let text = "version = 1\n[servers.a]\ncommand = [\"a\"]\nprocess = \"shared\"\n\
                [servers.b]\ncommand = [\"b\"]\nprocess = \"per-session\"\n[servers.c]\ncommand = [\"c\"]\n";
    let o = Overrides::default();
    assert_eq!(
        resolve_file(text, Some("a"), &o).process,
        ProcessSharing::Shared
    );
    assert_eq!(
        resolve_file(text, Some("b"), &o).process,
        ProcessSharing::PerSession
    );
    // One server's sharing is not another's.
    assert_eq!(
        resolve_file(text, Some("c"), &o).process,
        ProcessSharing::PerSession
    );
}

#[test]
fn process_sharing_is_spelled_exactly_per_local_server() {
    let d = expect(
        "version = 1\n[servers.a]\ncommand = [\"a\"]\nprocess = \"per-server\"\n",
        Code::InvalidValue,
        4,
    );
    assert!(
        d.help.contains("per-session") && d.help.contains("shared"),
        "{d}"
    );
    expect(
        "version = 1\n[servers.a]\ncommand = [\"a\"]\nprocess = true\n",
        Code::WrongType,
        4,
    );
    // No global switch.
    expect("version = 1\nprocess = \"shared\"\n", Code::UnknownKey, 2);
    // A remote server has no process to share.
    let d = expect(
        "version = 1\n[servers.r]\nurl = \"https://mcp.example.com/mcp\"\nprocess = \"shared\"\n",
        Code::ConflictingKeys,
        4,
    );
    assert!(d.help.contains("remove `process`"), "{d}");
}

// ---- remote servers (`url`) ----------------------------------------------------------------------------

#[test]
fn accepts_a_remote_server_with_credentials_as_references() {
    let f = parse(
        "version = 1\n\
         [servers.gh]\n\
         url = \"https://api.example.com/mcp\"\n\
         bearer = \"keychain:gh-token\"\n\
         headers = { X-Team = \"literal:platform\", X-Api-Key = \"env:API_KEY\" }\n\
         allow_private = true\n\
         ca_file = \"/etc/palisade/ca.pem\"\n\
         [servers.gh.tools]\ndeny = [\"delete_*\"]\n",
    );
    let r = f.server_remote("gh").expect("a remote server");
    assert_eq!(r.url, "https://api.example.com/mcp");
    assert_eq!(r.bearer.as_deref(), Some("keychain:gh-token"));
    assert_eq!(
        r.headers,
        [
            ("X-Api-Key".to_owned(), "env:API_KEY".to_owned()),
            ("X-Team".to_owned(), "literal:platform".to_owned())
        ]
    );
    assert!(r.allow_private);
    assert_eq!(
        r.ca_file.as_deref(),
        Some(Path::new("/etc/palisade/ca.pem"))
    );
    assert_eq!(f.server_command("gh"), None);
    // The server's own sections apply as for a local server.
    let p = resolve(Some(&f), Some("gh"), "gh", &Overrides::default(), &env()).unwrap();
    assert!(!p.policy.tools.permits("delete_repo"));
    // Loopback may use plain http.
    for url in [
        "http://127.0.0.1:3000/mcp",
        "http://[::1]:3000/mcp",
        "http://localhost/mcp",
    ] {
        let f = parse(&format!("version = 1\n[servers.x]\nurl = {url:?}\n"));
        assert!(!f.server_remote("x").unwrap().allow_private, "{url}");
    }
}

#[test]
fn refuses_plain_http_off_loopback_and_urls_with_credentials() {
    let d = expect(
        "version = 1\n[servers.x]\nurl = \"http://api.example.com/mcp\"\n",
        Code::InvalidUrl,
        3,
    );
    assert!(d.help.contains("https://"), "{d}");
    expect(
        "version = 1\n[servers.x]\nurl = \"http://10.0.0.1/mcp\"\n",
        Code::InvalidUrl,
        3,
    );
    expect(
        "version = 1\n[servers.x]\nurl = \"ftp://example.com/mcp\"\n",
        Code::InvalidUrl,
        3,
    );
    expect(
        "version = 1\n[servers.x]\nurl = \"not a url\"\n",
        Code::InvalidUrl,
        3,
    );
    let d = expect(
        "version = 1\n[servers.x]\nurl = \"https://me:hunter2@example.com/mcp\"\n",
        Code::InvalidUrl,
        3,
    );
    assert!(d.help.contains("bearer"), "{d}");
}

#[test]
fn refuses_command_and_url_together_and_process_keys_on_a_remote_server() {
    let d = expect(
        "version = 1\n[servers.x]\ncommand = [\"srv\"]\nurl = \"https://example.com/mcp\"\n",
        Code::ConflictingKeys,
        4,
    );
    assert!(d.message.contains("both `command` and `url`"), "{d}");
    expect(
        "version = 1\n[servers.x]\nurl = \"https://example.com/mcp\"\nenv = { A = \"b\" }\n",
        Code::ConflictingKeys,
        4,
    );
    expect(
        "version = 1\n[servers.x]\nurl = \"https://example.com/mcp\"\ntrust = \"unsandboxed\"\n",
        Code::ConflictingKeys,
        4,
    );
    let d = expect(
        "version = 1\n[servers.x]\ncommand = [\"srv\"]\nbearer = \"keychain:t\"\n",
        Code::MissingKey,
        4,
    );
    assert!(d.message.contains("no `url`"), "{d}");
}

#[test]
fn refuses_reserved_header_names_and_values_that_split_headers_without_quoting_them() {
    for name in [
        "Host",
        "MCP-Session-Id",
        "Content-Length",
        "Mcp-Param-Path",
        "bad name",
    ] {
        let text = format!(
            "version = 1\n[servers.x]\nurl = \"https://example.com/mcp\"\n[servers.x.headers]\n{name:?} = \"env:V\"\n"
        );
        expect(&text, Code::InvalidValue, 5);
    }
    let d = expect(
        "version = 1\n[servers.x]\nurl = \"https://example.com/mcp\"\nbearer = \"keychain:t\"\nheaders = { authorization = \"env:A\" }\n",
        Code::ConflictingKeys,
        5,
    );
    assert!(d.help.contains("bearer"), "{d}");
    let d = expect(
        "version = 1\n[servers.x]\nurl = \"https://example.com/mcp\"\nbearer = \"s3cr3t\\r\\nX-Evil: 1\"\n",
        Code::InvalidValue,
        4,
    );
    assert!(!d.to_string().contains("s3cr3t"), "never quoted: {d}");
    expect(
        "version = 1\n[servers.x]\nurl = \"https://example.com/mcp\"\nca_file = \"ca.pem\"\n",
        Code::RelativePath,
        4,
    );
}
