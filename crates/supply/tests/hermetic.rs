//! Audit, install and run-rewrite against a loopback registry and OSV stand-in, with crafted packages and
//! the fixture advisory database. No test here reaches beyond 127.0.0.1.

mod standin;

use std::io::Write;
use std::path::{Path, PathBuf};

use palisade_scan::Severity;
use palisade_supply::audit::{self, Level, Options, StaticAnalyzer, StaticStatus};
use palisade_supply::fetch::{Day, Registries};
use palisade_supply::lock::{Lock, Locked};
use palisade_supply::net::Net;
use palisade_supply::osv::{Db, Online, Source};
use palisade_supply::resolve::Tools;
use palisade_supply::store::Store;
use palisade_supply::{Error, Quiet, Spec};
use serde_json::{Value, json};
use standin::{NpmVersion, PypiFile, Standin};
use url::Url;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/osv")
}

/// An npm tarball (`package/…`) from (path, content) pairs.
fn tgz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, c) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(c.len() as u64);
        h.set_mode(if p.ends_with(".js") { 0o755 } else { 0o644 });
        h.set_cksum();
        b.append_data(&mut h, format!("package/{p}"), c.as_bytes())
            .unwrap();
    }
    let raw = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

/// A tarball with one raw entry name (for traversal).
fn tgz_raw(name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, content).unwrap();
    let raw = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

fn wheel(name: &str, version: &str, entry: Option<&str>) -> (String, Vec<u8>) {
    use zip::write::SimpleFileOptions;
    let module = name.replace('-', "_");
    let di = format!("{module}-{version}.dist-info");
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = SimpleFileOptions::default();
    z.start_file(format!("{module}/__init__.py"), o).unwrap();
    z.write_all(b"def main():\n    print('hello from the store')\n")
        .unwrap();
    z.start_file(format!("{di}/METADATA"), o).unwrap();
    write!(
        z,
        "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n"
    )
    .unwrap();
    z.start_file(format!("{di}/WHEEL"), o).unwrap();
    z.write_all(b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        .unwrap();
    if let Some(e) = entry {
        z.start_file(format!("{di}/entry_points.txt"), o).unwrap();
        write!(z, "[console_scripts]\n{e} = {module}:main\n").unwrap();
    }
    z.start_file(format!("{di}/RECORD"), o).unwrap();
    write!(
        z,
        "{module}/__init__.py,,\n{di}/METADATA,,\n{di}/WHEEL,,\n{di}/RECORD,,\n"
    )
    .unwrap();
    if entry.is_some() {
        writeln!(z, "{di}/entry_points.txt,,").unwrap();
    }
    (
        format!("{module}-{version}-py3-none-any.whl"),
        z.finish().unwrap().into_inner(),
    )
}

fn npm_version(version: &str, tarball: Vec<u8>, doc: Value) -> NpmVersion {
    NpmVersion {
        version: version.into(),
        tarball,
        integrity: None,
        doc,
        time: "2025-06-01T00:00:00.000Z".into(),
    }
}

fn mcp_remote_like(version: &str) -> NpmVersion {
    let pj =
        json!({"name": "mcp-remote", "version": version, "bin": {"mcp-remote": "dist/proxy.js"}});
    npm_version(
        version,
        tgz(&[
            ("package.json", &pj.to_string()),
            (
                "dist/proxy.js",
                "#!/usr/bin/env node\nconsole.log('proxy')\n",
            ),
        ]),
        json!({"repository": "https://github.com/geelen/mcp-remote", "bin": {"mcp-remote": "dist/proxy.js"}}),
    )
}

struct Ctx {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    home: PathBuf,
    regs: Registries,
}

fn ctx(s: &Standin) -> Ctx {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    Ctx {
        work,
        home,
        regs: Registries {
            npm: Url::parse(&s.url()).unwrap(),
            pypi: Url::parse(&s.url()).unwrap(),
        },
        _tmp: tmp,
    }
}

fn tools(c: &Ctx) -> Tools {
    let mut t = Tools::new(&c.regs);
    // npm's cache and config go to the test's own home.
    t.npm = PathBuf::from("npm");
    let _ = &c.home;
    t
}

fn opts<'a>(
    c: &Ctx,
    net: &'a Net,
    sources: Vec<Box<dyn Source + 'a>>,
    resolve: bool,
) -> Options<'a> {
    Options {
        registries: c.regs.clone(),
        net,
        sources,
        no_source_reason: "no advisory source (test)".into(),
        resolve,
        tools: tools(c),
        analyzer: None,
        no_analyzer_reason: "not built in (test)".into(),
        progress: &Quiet,
        work: c.work.clone(),
        today: Day::parse("2026-11-21").unwrap(),
    }
}

#[test]
fn a_version_with_a_known_advisory_is_do_not_trust_from_the_fixture_db() {
    let s = Standin::start();
    s.npm(
        "mcp-remote",
        json!({"maintainers": [{"name": "geelen"}]}),
        mcp_remote_like("0.1.15"),
    );
    let c = ctx(&s);
    let net = Net::new(false).unwrap();
    let db = Db::load(&fixtures()).unwrap();
    assert_eq!(db.records(), 8);
    let r = audit::audit(
        &Spec::parse("npm:mcp-remote@0.1.15").unwrap(),
        &opts(&c, &net, vec![Box::new(db)], false),
    )
    .unwrap();
    assert_eq!(r.verdict.level, Level::DoNotTrust, "{:?}", r.verdict);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "known-vulnerability")
        .expect("advisory finding");
    assert_eq!(f.severity, Severity::Critical);
    assert!(
        f.message.contains("GHSA-6xpm-ggf7-wc3p (CVE-2025-6514)")
            && f.message.contains("fixed in 0.1.16"),
        "{}",
        f.message
    );
    assert!(
        r.verdict.why.contains("GHSA-6xpm-ggf7-wc3p"),
        "{}",
        r.verdict.why
    );
    // The integrity that was checked is the registry's, recorded.
    assert!(
        r.fetched
            .verified_against
            .as_deref()
            .unwrap()
            .starts_with("sha512-")
    );
    assert_eq!(
        r.static_analysis,
        StaticStatus::NotRun("not built in (test)".into())
    );
    // The text report leads with the verdict.
    let text = palisade_supply::render::text(&r, palisade_supply::render::Style { color: false });
    assert!(
        text.starts_with("DO NOT TRUST  npm:mcp-remote@0.1.15"),
        "{text}"
    );
    // SARIF declares the rules and references them.
    let sarif = palisade_supply::render::sarif(&r);
    let rules: Vec<&str> = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for res in sarif["runs"][0]["results"].as_array().unwrap() {
        assert!(rules.contains(&res["ruleId"].as_str().unwrap()));
    }
}

#[test]
fn the_fixed_version_is_clean_and_trusted_when_nothing_else_is_wrong() {
    let s = Standin::start();
    let mut v = mcp_remote_like("0.1.16");
    v.doc["dist"] = json!({"attestations": {"url": "x", "provenance": {"predicateType": "https://slsa.dev/provenance/v1"}}});
    s.npm(
        "mcp-remote",
        json!({"maintainers": [{"name": "geelen"}], "time": {"created": "2025-03-01T00:00:00Z"}}),
        v,
    );
    let c = ctx(&s);
    let net = Net::new(false).unwrap();
    let db = Db::load(&fixtures()).unwrap();
    // With the tree resolved by npm against the stand-in (no dependencies).
    let r = audit::audit(
        &Spec::parse("npm:mcp-remote@0.1.16").unwrap(),
        &opts(&c, &net, vec![Box::new(db)], true),
    )
    .unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.resolution.as_ref().unwrap().deps.len(), 1);
    assert_eq!(r.verdict.level, Level::Trust, "{:?}", r.verdict);
    assert!(
        r.verdict.why.contains("static analysis not run"),
        "{}",
        r.verdict.why
    );
}

#[test]
fn without_an_advisory_source_the_report_says_what_was_not_checked() {
    let s = Standin::start();
    s.npm(
        "mcp-remote",
        json!({"maintainers": [{"name": "geelen"}]}),
        mcp_remote_like("0.1.15"),
    );
    let c = ctx(&s);
    let net = Net::new(false).unwrap();
    let r = audit::audit(
        &Spec::parse("npm:mcp-remote@0.1.15").unwrap(),
        &opts(&c, &net, vec![], false),
    )
    .unwrap();
    assert_eq!(r.verdict.level, Level::Review);
    assert!(
        r.verdict.why.contains("advisories not checked"),
        "{}",
        r.verdict.why
    );
    let j = palisade_supply::render::json(&r);
    assert_eq!(j["advisories"]["not_checked"], "no advisory source (test)");
    assert_eq!(j["advisories"]["checked"], 0);
}

#[test]
fn an_integrity_mismatch_is_refused_before_unpacking() {
    let s = Standin::start();
    let mut v = mcp_remote_like("0.1.16");
    v.integrity = Some(palisade_supply::sri::Integrity::of(
        palisade_supply::sri::Algorithm::Sha512,
        b"other bytes",
    ));
    s.npm("mcp-remote", json!({}), v);
    let c = ctx(&s);
    let net = Net::new(false).unwrap();
    let e = audit::audit(
        &Spec::parse("npm:mcp-remote@0.1.16").unwrap(),
        &opts(&c, &net, vec![], false),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Integrity { .. }), "{e}");
    assert!(e.to_string().contains("npm:mcp-remote@0.1.16"), "{e}");
    assert!(!c.work.join("package").exists(), "nothing was unpacked");
}

#[test]
fn install_scripts_and_typosquats_are_flagged() {
    let s = Standin::start();
    let pj = json!({"name": "mcp-remot", "version": "1.0.0", "scripts": {"postinstall": "node steal.js"}});
    s.npm(
        "mcp-remot",
        json!({"time": {"created": "2026-11-15T00:00:00Z"}}),
        NpmVersion {
            time: "2026-11-15T00:00:00Z".into(),
            ..npm_version(
                "1.0.0",
                tgz(&[("package.json", &pj.to_string()), ("steal.js", "1")]),
                json!({"scripts": {"postinstall": "node steal.js"}}),
            )
        },
    );
    let c = ctx(&s);
    let net = Net::new(false).unwrap();
    let r = audit::audit(
        &Spec::parse("npm:mcp-remot@1.0.0").unwrap(),
        &opts(
            &c,
            &net,
            vec![Box::new(Db::load(&fixtures()).unwrap())],
            false,
        ),
    )
    .unwrap();
    let ids: Vec<&str> = r.findings.iter().map(|f| f.rule).collect();
    for want in [
        "typosquat",
        "install-script",
        "no-repository",
        "no-provenance",
        "new-package",
    ] {
        assert!(ids.contains(&want), "{want} missing from {ids:?}");
    }
    let script = r
        .findings
        .iter()
        .find(|f| f.rule == "install-script")
        .unwrap();
    assert_eq!(
        script.location.as_ref().unwrap().start.line,
        1,
        "points into package.json"
    );
    assert!(
        r.findings
            .iter()
            .find(|f| f.rule == "typosquat")
            .unwrap()
            .message
            .contains("mcp-remote (mcp016)")
    );
    assert_eq!(r.verdict.level, Level::DoNotTrust);
}

#[test]
fn a_traversing_tarball_fails_closed() {
    let s = Standin::start();
    s.npm(
        "evil-pkg",
        json!({}),
        npm_version(
            "1.0.0",
            tgz_raw("package/../../../escaped.txt", b"x"),
            json!({}),
        ),
    );
    let c = ctx(&s);
    let net = Net::new(false).unwrap();
    let e = audit::audit(
        &Spec::parse("npm:evil-pkg@1.0.0").unwrap(),
        &opts(&c, &net, vec![], false),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Archive { .. }), "{e}");
    assert!(!c.work.parent().unwrap().join("escaped.txt").exists());
}

#[test]
fn the_online_client_asks_the_api_and_applies_its_own_ranges() {
    let s = Standin::start();
    s.osv_from_dir(&fixtures());
    s.npm("mcp-remote", json!({}), mcp_remote_like("0.1.15"));
    s.npm("mcp-remote", json!({}), mcp_remote_like("0.1.16"));
    let c = ctx(&s);
    let net = Net::new(false).unwrap();
    fn online<'a>(s: &Standin, n: &'a Net) -> Vec<Box<dyn Source + 'a>> {
        vec![Box::new(Online::new(Url::parse(&s.url()).unwrap(), n))]
    }
    let r = audit::audit(
        &Spec::parse("npm:mcp-remote@0.1.15").unwrap(),
        &opts(&c, &net, online(&s, &net), false),
    )
    .unwrap();
    assert_eq!(
        r.advisories.matches.len(),
        1,
        "{:?} {:?}",
        r.advisories,
        s.hits()
    );
    assert_eq!(r.advisories.matches[0].vuln.id, "GHSA-6xpm-ggf7-wc3p");
    assert!(r.advisories.sources[0].starts_with("OSV API http://127.0.0.1:"));
    assert!(s.hits().iter().any(|h| h == "POST /v1/querybatch"));
    assert!(
        s.hits()
            .iter()
            .any(|h| h == "GET /v1/vulns/GHSA-6xpm-ggf7-wc3p")
    );
    // The stand-in lists the record for every version; the client's range check drops it for 0.1.16.
    let c2 = ctx(&s);
    let r = audit::audit(
        &Spec::parse("npm:mcp-remote@0.1.16").unwrap(),
        &opts(&c2, &net, online(&s, &net), false),
    )
    .unwrap();
    assert!(
        r.advisories.matches.is_empty(),
        "{:?}",
        r.advisories.matches
    );
    assert_eq!(r.advisories.checked, 1);
    // An API that fails is reported, not taken as "no advisories".
    s.set_down(true);
    let c3 = ctx(&s);
    let e = audit::audit(
        &Spec::parse("npm:mcp-remote@0.1.16").unwrap(),
        &opts(&c3, &net, online(&s, &net), false),
    );
    assert!(e.is_err(), "the registry is down too");
}

#[test]
fn offline_refuses_the_network_and_says_so() {
    let s = Standin::start();
    let c = ctx(&s);
    let net = Net::new(true).unwrap();
    let e = audit::audit(
        &Spec::parse("npm:mcp-remote@0.1.15").unwrap(),
        &opts(&c, &net, vec![], false),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Offline(_)), "{e}");
    assert!(s.hits().is_empty());
}

#[test]
fn pypi_wheels_are_verified_and_pep440_ranges_match() {
    let s = Standin::start();
    let (file, bytes) = wheel("mcp-server-git", "2025.9.0", Some("mcp-server-git"));
    s.pypi(
        "mcp-server-git",
        json!({"project_urls": {"Repository": "https://github.com/modelcontextprotocol/servers/tree/main/src/git"}, "author": "Anthropic"}),
        PypiFile { version: "2025.9.0".into(), filename: file, bytes, sha256: None, upload_time: "2025-09-01T00:00:00Z".into() },
    );
    let c = ctx(&s);
    let net = Net::new(false).unwrap();
    let r = audit::audit(
        &Spec::parse("pypi:mcp-server-git==2025.9.0").unwrap(),
        &opts(
            &c,
            &net,
            vec![Box::new(Db::load(&fixtures()).unwrap())],
            true,
        ),
    )
    .unwrap();
    let mut ids: Vec<&str> = r
        .advisories
        .matches
        .iter()
        .map(|m| m.vuln.id.as_str())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "GHSA-5cgr-j3jf-jw3v",
            "GHSA-9xwc-hfwc-8w59",
            "GHSA-j22h-9j4x-23w5"
        ]
    );
    assert!(
        r.findings.iter().all(|f| f.rule != "repository-mismatch"),
        "{:?}",
        r.findings
    );
    // pip resolved the tree against the stand-in's simple index.
    let res = r
        .resolution
        .as_ref()
        .unwrap_or_else(|| panic!("{:?}", r.resolution_note));
    assert_eq!(res.deps.len(), 1);
    assert!(res.method.starts_with("pip "), "{}", res.method);
    assert_eq!(
        r.verdict.level,
        Level::Review,
        "three moderate advisories: {:?}",
        r.verdict
    );
}

#[test]
fn a_pypi_sha256_mismatch_is_refused() {
    let s = Standin::start();
    let (file, bytes) = wheel("mcp-server-time", "1.0.0", None);
    s.pypi(
        "mcp-server-time",
        json!({}),
        PypiFile {
            version: "1.0.0".into(),
            filename: file,
            bytes,
            sha256: Some("0".repeat(64)),
            upload_time: "2025-01-01T00:00:00Z".into(),
        },
    );
    let c = ctx(&s);
    let net = Net::new(false).unwrap();
    let e = audit::audit(
        &Spec::parse("pypi:mcp-server-time==1.0.0").unwrap(),
        &opts(&c, &net, vec![], false),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Integrity { .. }), "{e}");
}

struct FakeAnalyzer;
const FAKE_RULE: palisade_scan::RuleMeta = palisade_scan::RuleMeta {
    id: "test-process-exec",
    severity: Severity::High,
    title: "t",
    why: "w",
    fix: "f",
};
impl StaticAnalyzer for FakeAnalyzer {
    fn name(&self) -> String {
        "fake 1".into()
    }
    fn rules(&self) -> Vec<&'static palisade_scan::RuleMeta> {
        vec![&FAKE_RULE]
    }
    fn analyze(&self, dir: &Path) -> Result<Vec<palisade_scan::Finding>, String> {
        assert!(
            dir.join("package.json").is_file(),
            "gets the unpacked package"
        );
        Ok(vec![palisade_supply::signals::finding(
            &FAKE_RULE,
            Severity::High,
            "x",
            "spawns a shell".into(),
            "f".into(),
            "k".into(),
        )])
    }
}

#[test]
fn a_static_analyzer_plugs_into_findings_verdict_and_sarif() {
    let s = Standin::start();
    s.npm(
        "mcp-remote",
        json!({"maintainers": [{"name": "g"}]}),
        mcp_remote_like("0.1.16"),
    );
    let c = ctx(&s);
    let net = Net::new(false).unwrap();
    let mut o = opts(&c, &net, vec![], false);
    o.analyzer = Some(&FakeAnalyzer);
    let r = audit::audit(&Spec::parse("npm:mcp-remote@0.1.16").unwrap(), &o).unwrap();
    assert_eq!(r.static_analysis, StaticStatus::Ran("fake 1".into()));
    assert!(r.findings.iter().any(|f| f.rule == "test-process-exec"));
    assert_eq!(r.verdict.level, Level::DoNotTrust);
    let sarif = palisade_supply::render::sarif(&r);
    assert!(
        sarif["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == "test-process-exec")
    );
}

/// A tiny MCP server in plain node: answers initialize and tools/list.
pub const ECHO_SERVER_JS: &str = r#"#!/usr/bin/env node
const rl = require('readline').createInterface({input: process.stdin});
rl.on('line', (l) => {
  let m; try { m = JSON.parse(l); } catch { return; }
  if (m.id === undefined) return;
  let result = {};
  if (m.method === 'initialize') result = {protocolVersion: m.params.protocolVersion, capabilities: {tools: {}}, serverInfo: {name: 'store-echo', version: '1.0.0'}};
  if (m.method === 'tools/list') result = {tools: [{name: 'echo', description: 'Echo from ' + __dirname, inputSchema: {type: 'object'}}]};
  process.stdout.write(JSON.stringify({jsonrpc: '2.0', id: m.id, result}) + '\n');
});
"#;

#[test]
fn install_puts_the_vetted_artifact_in_the_store_and_run_is_rewritten_to_it() {
    let s = Standin::start();
    let pj = json!({"name": "@fixture/store-echo", "version": "1.0.0", "bin": {"store-echo": "server.js"}});
    s.npm(
        "@fixture/store-echo",
        json!({"maintainers": [{"name": "t"}]}),
        npm_version(
            "1.0.0",
            tgz(&[
                ("package.json", &pj.to_string()),
                ("server.js", ECHO_SERVER_JS),
            ]),
            json!({"bin": {"store-echo": "server.js"}}),
        ),
    );
    let c = ctx(&s);
    let net = Net::new(false).unwrap();
    let o = opts(&c, &net, vec![], true);
    let r = audit::audit(&Spec::parse("npm:@fixture/store-echo@1.0.0").unwrap(), &o).unwrap();
    let store = Store::new(c.home.join("store"));
    let inst = store.install(&r, &o.tools, &Quiet).unwrap();
    assert_eq!(inst.key, r.fetched.sha256);
    assert_eq!(
        inst.manifest.entry.path,
        "node_modules/@fixture/store-echo/server.js"
    );
    assert_eq!(inst.dependencies.len(), 1);
    let lock = Lock::new(c.home.join("palisade.lock"));
    lock.update(|lf| {
        lf.packages.push(Locked {
            ecosystem: "npm".into(),
            name: "@fixture/store-echo".into(),
            version: "1.0.0".into(),
            spec: "npm:@fixture/store-echo@1.0.0".into(),
            file: r.fetched.filename.clone(),
            sha256: inst.key.clone(),
            integrity: r.fetched.verified_against.clone(),
            source: r.fetched.source.clone(),
            tree: inst.manifest.tree.clone(),
            server: "store-echo".into(),
            installed: "2026-11-21".into(),
            verdict: r.verdict.level.as_str().into(),
            findings: r.findings.len(),
            entry: inst.manifest.entry.clone(),
            dependencies: inst.dependencies.clone(),
            history: vec![],
        });
        Ok(())
    })
    .unwrap();
    // The registry goes away: nothing is fetched at run time.
    s.set_down(true);
    let argv: Vec<String> = ["npx", "-y", "@fixture/store-echo", "--flag"]
        .map(String::from)
        .to_vec();
    let rw = palisade_supply::launch::store_rewrite(&argv, &lock, &store)
        .unwrap()
        .expect("rewritten");
    assert_eq!(rw.argv[0], "node");
    assert_eq!(
        rw.argv[1],
        inst.dir
            .join("node_modules/@fixture/store-echo/server.js")
            .display()
            .to_string()
    );
    assert_eq!(rw.argv[2], "--flag");
    let out = std::process::Command::new(&rw.argv[0])
        .args(&rw.argv[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut ch| {
            ch.stdin
                .take()
                .unwrap()
                .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\n")?;
            ch.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&inst.dir.display().to_string()),
        "served from the store: {text}"
    );
    // Another version is not rewritten; an unrelated command neither.
    assert!(
        palisade_supply::launch::store_rewrite(
            &[
                "npx".into(),
                "-y".into(),
                "@fixture/store-echo@2.0.0".into()
            ],
            &lock,
            &store
        )
        .unwrap()
        .is_none()
    );
    assert!(
        palisade_supply::launch::store_rewrite(&["node".into(), "x.js".into()], &lock, &store)
            .unwrap()
            .is_none()
    );
    // Tampering with an installed file refuses to start.
    let script = inst.dir.join("node_modules/@fixture/store-echo/server.js");
    palisade_supply::store::make_writable(&inst.dir);
    std::fs::write(&script, "console.log('evil')").unwrap();
    let e = palisade_supply::launch::store_rewrite(&argv, &lock, &store)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("refusing to start @fixture/store-echo@1.0.0")
            && e.contains("differ from palisade.lock"),
        "{e}"
    );
}

#[test]
fn install_of_a_wheel_uses_a_hash_pinned_venv() {
    let s = Standin::start();
    let (file, bytes) = wheel("store-hello", "1.2.0", Some("store-hello"));
    s.pypi(
        "store-hello",
        json!({"author": "t"}),
        PypiFile {
            version: "1.2.0".into(),
            filename: file,
            bytes,
            sha256: None,
            upload_time: "2025-01-01T00:00:00Z".into(),
        },
    );
    let c = ctx(&s);
    let net = Net::new(false).unwrap();
    let o = opts(&c, &net, vec![], true);
    let r = audit::audit(&Spec::parse("pypi:store-hello==1.2.0").unwrap(), &o).unwrap();
    let store = Store::new(c.home.join("store"));
    let inst = store.install(&r, &o.tools, &Quiet).unwrap();
    assert_eq!(inst.manifest.entry.path, "venv/bin/store-hello");
    let req = std::fs::read_to_string(inst.dir.join("requirements.txt")).unwrap();
    assert!(
        req.contains(&format!("--hash=sha256:{}", r.fetched.sha256)),
        "{req}"
    );
    let out = std::process::Command::new(inst.dir.join("venv/bin/store-hello"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello from the store"
    );
    // Reinstalling the same artifact reuses the verified entry.
    let c2 = ctx(&s);
    let o2 = opts(&c2, &net, vec![], true);
    let r2 = audit::audit(&Spec::parse("pypi:store-hello==1.2.0").unwrap(), &o2).unwrap();
    assert!(store.install(&r2, &o2.tools, &Quiet).unwrap().reused);
}
