use std::fs;
use std::os::unix::fs::symlink;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;

/// A fresh real directory under the system temp dir, removed on drop. Real symlinks beat a fake resolver:
/// they exercise the same `realpath` the guard uses in production.
struct Tree {
    base: PathBuf,
}

impl Tree {
    fn new(name: &str) -> Tree {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "palisade-paths-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Tree {
            base: fs::canonicalize(&dir).unwrap(),
        }
    }
    fn dir(&self, rel: &str) -> PathBuf {
        let p = self.base.join(rel);
        fs::create_dir_all(&p).unwrap();
        p
    }
    fn file(&self, rel: &str) -> PathBuf {
        let p = self.base.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, b"x").unwrap();
        p
    }
    fn link(&self, rel: &str, target: &Path) -> PathBuf {
        let p = self.base.join(rel);
        symlink(target, &p).unwrap();
        p
    }
    fn p(&self, rel: &str) -> String {
        self.base.join(rel).to_str().unwrap().to_owned()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

fn roots(read: &[&Path], write: &[&Path], cwd: &Path) -> Roots {
    Roots::new(
        &FsRules {
            read: read.iter().map(|p| p.to_path_buf()).collect(),
            write: write.iter().map(|p| p.to_path_buf()).collect(),
        },
        cwd.to_path_buf(),
    )
}

fn check(raw: &str, access: Access, roots: &Roots) -> Result<PathBuf, String> {
    check_path(raw, access, roots, &RealFs)
}

#[test]
fn cve_2025_53110_prefix_sibling() {
    // The filesystem server compared paths as strings: `/x/allowed_evil` starts with `/x/allowed`.
    let t = Tree::new("prefix");
    let allowed = t.dir("allowed");
    t.file("allowed_evil/secret");
    let r = roots(&[], &[&allowed], &allowed);
    let err = check(&t.p("allowed_evil/secret"), Access::Read, &r).unwrap_err();
    assert!(err.contains("outside the allowed folders"), "{err}");
    assert!(check(&t.p("allowed_evil"), Access::Read, &r).is_err());
    assert!(check(&t.p("allowed_evil/new"), Access::Write, &r).is_err());
    assert!(check("../allowed_evil/secret", Access::Read, &r).is_err());
    assert_eq!(
        check(&t.p("allowed/ok"), Access::Write, &r).unwrap(),
        allowed.join("ok")
    );
}

#[test]
fn cve_2025_53109_symlink_escape() {
    let t = Tree::new("symlink");
    let root = t.dir("root");
    let outside = t.dir("outside");
    t.file("outside/secret");
    let r = roots(&[], &[&root], &root);

    // A symlink inside the root to a file outside.
    t.link("root/passwd", &outside.join("secret"));
    let err = check(&t.p("root/passwd"), Access::Read, &r).unwrap_err();
    assert!(err.contains("resolves to"), "{err}");
    assert!(err.contains("outside the allowed folders"), "{err}");

    // A symlinked parent directory: reading through it and creating a new file through it.
    t.link("root/escape", &outside);
    assert!(check(&t.p("root/escape/secret"), Access::Read, &r).is_err());
    assert!(check(&t.p("root/escape/new.txt"), Access::Write, &r).is_err());
    assert!(check(&t.p("root/escape/newdir/new.txt"), Access::Write, &r).is_err());
    assert!(check("escape/secret", Access::Read, &r).is_err());

    // A dangling symlink whose target (outside) does not exist yet: writing would create it out there.
    t.link("root/dangling", &outside.join("created-by-server"));
    let err = check(&t.p("root/dangling"), Access::Write, &r).unwrap_err();
    assert!(
        err.contains("symbolic link to something that does not exist"),
        "{err}"
    );
    assert!(check(&t.p("root/dangling/child"), Access::Write, &r).is_err());
}

#[test]
fn accepts_symlink_that_stays_inside_root() {
    let t = Tree::new("inside-link");
    let root = t.dir("root");
    let real = t.file("root/a/real.txt");
    t.link("root/alias", &root.join("a"));
    let r = roots(&[&root], &[], &root);
    assert_eq!(
        check(&t.p("root/alias/real.txt"), Access::Read, &r).unwrap(),
        real
    );
}

#[test]
fn accepts_root_that_is_itself_a_symlink() {
    let t = Tree::new("root-link");
    let real = t.dir("real");
    let via = t.link("via", &real);
    let r = roots(&[], &[&via], &via);
    assert_eq!(
        check(&t.p("via/new.txt"), Access::Write, &r).unwrap(),
        real.join("new.txt")
    );
    assert_eq!(
        check(&t.p("real/new.txt"), Access::Write, &r).unwrap(),
        real.join("new.txt")
    );
}

#[test]
fn rejects_dot_dot_escapes() {
    let t = Tree::new("dotdot");
    let root = t.dir("root");
    t.file("secret");
    let r = roots(&[&root], &[], &root);
    assert!(check(&t.p("root/../secret"), Access::Read, &r).is_err());
    assert!(check(&t.p("root/a/../../secret"), Access::Read, &r).is_err());
    assert!(check("../secret", Access::Read, &r).is_err());
    assert!(check("../../../../../../../../etc/passwd", Access::Read, &r).is_err());
    assert!(check("/../../etc/passwd", Access::Read, &r).is_err());
    // `..` that stays inside is fine.
    t.dir("root/a");
    assert_eq!(
        check(&t.p("root/a/../b.txt"), Access::Read, &r).unwrap(),
        root.join("b.txt")
    );
}

#[test]
fn rejects_dot_dot_after_symlink_that_resolves_two_ways() {
    // `root/link/..` is `root` lexically but the kernel goes to `outside/` (the link's parent).
    let t = Tree::new("dotdot-link");
    let root = t.dir("root");
    t.dir("outside/deep");
    t.file("outside/secret");
    t.link("root/link", &t.base.join("outside/deep"));
    t.file("root/secret");
    let r = roots(&[&root], &[], &root);
    let err = check(&t.p("root/link/../secret"), Access::Read, &r).unwrap_err();
    assert!(err.contains("follows a symbolic link"), "{err}");
}

#[test]
fn rejects_dot_dot_after_missing_folder() {
    let t = Tree::new("dotdot-missing");
    let root = t.dir("root");
    let r = roots(&[], &[&root], &root);
    let err = check(&t.p("root/nope/../x"), Access::Write, &r).unwrap_err();
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn rejects_percent_encoded_traversal() {
    let t = Tree::new("pct");
    let root = t.dir("root");
    let r = roots(&[&root], &[], &root);
    for raw in [
        "%2e%2e/%2e%2e/etc/passwd",
        "%2E%2E/secret",
        "..%2fsecret",
        "..%2Fsecret",
        "..%5csecret",
        "%252e%252e/secret",
        "a%00.txt",
        "%c0%ae%c0%ae/secret",
    ] {
        let err = check(raw, Access::Read, &r).unwrap_err();
        assert!(err.contains("percent-escape"), "{raw}: {err}");
    }
    // A literal `%` that is not an escape of a dot or separator is an ordinary file name character.
    assert!(check("100%.txt", Access::Read, &r).is_ok());
    assert!(check("a%20b.txt", Access::Read, &r).is_ok());
}

#[test]
fn rejects_nul_byte() {
    let t = Tree::new("nul");
    let root = t.dir("root");
    let r = roots(&[&root], &[], &root);
    let err = check(
        &format!("{}\0/../../etc/passwd", t.p("root/a")),
        Access::Read,
        &r,
    )
    .unwrap_err();
    assert!(err.contains("NUL"), "{err}");
}

#[test]
fn rejects_tilde() {
    let t = Tree::new("tilde");
    let root = t.dir("root");
    let r = roots(&[&root], &[], &root);
    for raw in ["~", "~/.ssh/id_ed25519", "~root/.bashrc"] {
        let err = check(raw, Access::Read, &r).unwrap_err();
        assert!(err.contains("does not expand"), "{err}");
    }
    // `~` inside a name is just a character.
    assert!(check("notes~", Access::Read, &r).is_ok());
}

#[test]
fn rejects_relative_path_resolving_outside() {
    let t = Tree::new("relative");
    let root = t.dir("root");
    let cwd = t.dir("elsewhere");
    let r = roots(&[&root], &[], &cwd);
    let err = check("notes.txt", Access::Read, &r).unwrap_err();
    assert!(err.contains("resolves to"), "{err}");
    assert_eq!(
        check("../root/notes.txt", Access::Read, &r).unwrap(),
        root.join("notes.txt")
    );
}

#[test]
fn rejects_relative_path_without_working_directory() {
    let t = Tree::new("nocwd");
    let root = t.dir("root");
    let r = roots(&[&root], &[], Path::new("relative/cwd"));
    assert!(!r.problems().is_empty());
    assert!(
        check("a.txt", Access::Read, &r)
            .unwrap_err()
            .contains("relative")
    );
    assert!(check(&t.p("root/a.txt"), Access::Read, &r).is_ok());
}

#[test]
fn rejects_mixed_separators() {
    let t = Tree::new("backslash");
    let root = t.dir("root");
    let r = roots(&[&root], &[], &root);
    for raw in [
        "..\\..\\etc\\passwd",
        "a/..\\..\\secret",
        "C:\\Windows\\win.ini",
    ] {
        let err = check(raw, Access::Read, &r).unwrap_err();
        assert!(err.contains("backslash"), "{raw}: {err}");
    }
    assert!(
        check("C:/Windows", Access::Read, &r)
            .unwrap_err()
            .contains("Windows drive")
    );
}

#[test]
fn rejects_empty_whitespace_and_control_characters() {
    let t = Tree::new("junk");
    let root = t.dir("root");
    let r = roots(&[&root], &[], &root);
    assert!(check("", Access::Read, &r).unwrap_err().contains("empty"));
    assert!(
        check(" /etc/passwd", Access::Read, &r)
            .unwrap_err()
            .contains("whitespace")
    );
    assert!(check("a.txt\n", Access::Read, &r).is_err());
    assert!(
        check("a\u{1b}[2Jb", Access::Read, &r)
            .unwrap_err()
            .contains("control")
    );
    assert!(
        check(&"a/".repeat(3000), Access::Read, &r)
            .unwrap_err()
            .contains("longer")
    );
}

#[test]
fn accepts_root_itself_and_nested_paths() {
    let t = Tree::new("nested");
    let root = t.dir("root");
    let deep = t.file("root/a/b/c.txt");
    let r = roots(&[&root], &[], &root);
    assert_eq!(check(&t.p("root"), Access::Read, &r).unwrap(), root);
    assert_eq!(
        check(&format!("{}/", t.p("root")), Access::Read, &r).unwrap(),
        root
    );
    assert_eq!(check(".", Access::Read, &r).unwrap(), root);
    assert_eq!(
        check(&t.p("root/a/b/c.txt"), Access::Read, &r).unwrap(),
        deep
    );
    assert_eq!(check("a/./b//c.txt", Access::Read, &r).unwrap(), deep);
    // The parent of a root is not inside it.
    assert!(check(&t.p(""), Access::Read, &r).is_err());
}

#[test]
fn accepts_new_file_in_write_root() {
    let t = Tree::new("newfile");
    let root = t.dir("root");
    let r = roots(&[], &[&root], &root);
    assert_eq!(
        check(&t.p("root/new/dir/file.txt"), Access::Write, &r).unwrap(),
        root.join("new/dir/file.txt")
    );
}

#[test]
fn rejects_write_to_read_root() {
    let t = Tree::new("rw");
    let ro = t.dir("ro");
    let rw = t.dir("rw");
    t.file("ro/a.txt");
    let r = roots(&[&ro], &[&rw], &rw);
    assert!(check(&t.p("ro/a.txt"), Access::Read, &r).is_ok());
    let err = check(&t.p("ro/a.txt"), Access::Write, &r).unwrap_err();
    assert!(err.contains("read-only folder"), "{err}");
    assert!(err.contains("--allow-write"), "{err}");
    // Write roots are readable.
    assert!(check(&t.p("rw/b.txt"), Access::Read, &r).is_ok());
    assert!(check(&t.p("rw/b.txt"), Access::Write, &r).is_ok());
}

#[test]
fn rejects_everything_without_roots() {
    let t = Tree::new("noroots");
    let cwd = t.dir("cwd");
    let r = roots(&[], &[], &cwd);
    let err = check("a.txt", Access::Read, &r).unwrap_err();
    assert!(err.contains("no folders are allowed"), "{err}");
    assert!(err.contains("--allow-read"), "{err}");
}

#[test]
fn reports_missing_roots_and_still_confines_to_them() {
    let t = Tree::new("missing");
    let present = t.dir("present");
    let missing = t.base.join("later/data");
    let r = roots(&[], &[&present, &missing], &present);
    assert_eq!(r.problems().len(), 1, "{:?}", r.problems());
    assert!(r.problems()[0].contains("does not exist"));
    assert_eq!(
        check(&t.p("later/data/x"), Access::Write, &r).unwrap(),
        missing.join("x")
    );
    assert!(check(&t.p("later/other"), Access::Write, &r).is_err());
}

#[test]
fn accepts_file_urls_after_decoding() {
    let t = Tree::new("fileurl");
    let root = t.dir("root");
    let f = t.file("root/my file.txt");
    let r = roots(&[&root], &[], &root);
    let url = format!("file://{}", t.p("root/my%20file.txt"));
    assert_eq!(check(&url, Access::Read, &r).unwrap(), f);
    let url = format!("FILE://localhost{}", t.p("root/my%20file.txt"));
    assert_eq!(check(&url, Access::Read, &r).unwrap(), f);
}

#[test]
fn rejects_file_urls_that_escape_or_are_ambiguous() {
    let t = Tree::new("fileurl-bad");
    let root = t.dir("root");
    let r = roots(&[&root], &[], &root);
    assert!(check("file:///etc/passwd", Access::Read, &r).is_err());
    assert!(
        check(
            &format!("file://{}/%2e%2e/x", t.p("root")),
            Access::Read,
            &r
        )
        .is_err()
    );
    assert!(check(&format!("file://{}/../../x", t.p("root")), Access::Read, &r).is_err());
    assert!(
        check("file://evil.example/share/x", Access::Read, &r)
            .unwrap_err()
            .contains("host")
    );
    assert!(check("file:relative", Access::Read, &r).is_err());
    assert!(check(&format!("file://{}?x", t.p("root/a")), Access::Read, &r).is_err());
    assert!(check(&format!("file://{}/a%0a", t.p("root")), Access::Read, &r).is_err());
    assert!(
        check("https://example.com/a", Access::Read, &r)
            .unwrap_err()
            .contains("URL")
    );
}

#[test]
fn detects_path_arguments_by_name() {
    let s = json!({"type": "string"});
    for name in [
        "path",
        "paths",
        "file",
        "filename",
        "file_path",
        "filePath",
        "filepath",
        "dir",
        "directory",
        "folder",
        "source",
        "destination",
        "target_path",
        "root",
        "repo_path",
        "cwd",
        "working_dir",
        "output_file",
        "outputDir",
        "config-file",
        "cache_dir",
    ] {
        assert!(looks_like_path_arg(name, Some(&s)), "{name}");
        assert!(looks_like_path_arg(name, None), "{name}");
    }
    for name in [
        "message",
        "content",
        "query",
        "profile",
        "json_path",
        "xpath",
        "url",
        "file_url",
        "pathname_regex",
        "_path",
        "filter",
    ] {
        assert!(!looks_like_path_arg(name, Some(&s)), "{name}");
    }
    // Schema types that cannot hold a path, and URL formats.
    assert!(!looks_like_path_arg(
        "root",
        Some(&json!({"type": "boolean"}))
    ));
    assert!(!looks_like_path_arg(
        "file",
        Some(&json!({"type": "integer"}))
    ));
    assert!(looks_like_path_arg(
        "paths",
        Some(&json!({"type": "array", "items": {"type": "string"}}))
    ));
    assert!(looks_like_path_arg(
        "path",
        Some(&json!({"type": ["string", "null"]}))
    ));
    assert!(!looks_like_path_arg(
        "source",
        Some(&json!({"type": "string", "format": "uri"}))
    ));
    // `format: "path"` or `"uri-reference"` alone does not make an argument a path.
    assert!(!looks_like_path_arg(
        "text",
        Some(&json!({"type": "string", "format": "path"}))
    ));
}

#[test]
fn detects_url_arguments_by_name_and_format() {
    let s = json!({"type": "string"});
    for name in [
        "url",
        "uri",
        "href",
        "endpoint",
        "link",
        "base_url",
        "resourceUri",
        "webhook_url",
    ] {
        assert!(looks_like_url_arg(name, Some(&s)), "{name}");
    }
    for name in ["message", "curl_flags", "url_count", "uri_reference"] {
        assert!(!looks_like_url_arg(name, Some(&s)), "{name}");
    }
    for f in ["uri", "url", "iri"] {
        assert!(looks_like_url_arg(
            "target",
            Some(&json!({"type": "string", "format": f}))
        ));
    }
    assert!(!looks_like_url_arg(
        "target",
        Some(&json!({"type": "string", "format": "uri-reference"}))
    ));
    assert!(!looks_like_url_arg(
        "url",
        Some(&json!({"type": "boolean"}))
    ));
}

/// Whatever the model sends, an accepted path leads inside the root both as palisade resolved it and as the
/// kernel resolves the raw text (symlinks first, then `..`), and as a lexical resolver (Node, Python) does.
#[test]
fn accepted_paths_stay_inside_root_however_resolved() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let t = Tree::new("prop");
    let root = t.dir("root");
    t.dir("root/a/b");
    t.file("root/a/f.txt");
    t.dir("root_evil");
    t.file("root_evil/s");
    t.dir("outside/deep");
    t.file("outside/s");
    t.link("root/up", &t.base);
    t.link("root/out", &t.base.join("outside/deep"));
    t.link("root/inner", &root.join("a"));
    t.link("root/a/loop", &root.join("a/b"));
    t.link("root/dangle", &t.base.join("outside/nothing"));
    let r = roots(&[], &[&root], &root);

    // Weighted towards the interesting parts: `..` and the links.
    let segment = prop_oneof![
        4 => Just(".."),
        3 => prop::sample::select(vec!["up", "out", "inner", "loop", "dangle"]),
        3 => prop::sample::select(vec![
            ".", "a", "b", "f.txt", "s", "root", "root_evil", "deep", "new", "",
        ]),
    ];
    let input = (any::<bool>(), prop::collection::vec(segment, 1..7));
    let mut runner = TestRunner::new(Config {
        cases: 4000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&input, |(absolute, segs)| {
            let rel = segs.join("/");
            let raw = if absolute {
                format!("{}/{rel}", t.base.display())
            } else {
                rel
            };
            if let Ok(resolved) = check_path(&raw, Access::Write, &r, &RealFs) {
                prop_assert!(resolved.starts_with(&root), "{raw} -> {resolved:?}");
                let abs = root.join(&raw);
                if let Ok(kernel) = fs::canonicalize(&abs) {
                    prop_assert!(kernel.starts_with(&root), "{raw}: kernel {kernel:?}");
                }
                if let Ok(lex) = fs::canonicalize(lexical(&abs)) {
                    prop_assert!(lex.starts_with(&root), "{raw}: lexical {lex:?}");
                }
            }
            Ok(())
        })
        .unwrap();
}
