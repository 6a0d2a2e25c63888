//! Which files to analyze: source files by extension or shebang, never following symlinks, with test and
//! documentation locations set aside (and still listed, so code that imports them can pull them back in).
//!
//! `.gitignore` and friends are deliberately not honoured: a package's author controls them, and an
//! ignore file is exactly where a payload would be hidden from a scanner that trusts it.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::Lang;

/// Directory names whose contents are tests or docs, skipped unless asked for.
const TEST_DIRS: &[&str] = &[
    "test",
    "tests",
    "__tests__",
    "__mocks__",
    "spec",
    "specs",
    "docs",
    "doc",
    "example",
    "examples",
];

/// Directory names that hold other people's code inside a package.
const VENDOR_DIRS: &[&str] = &[
    "node_modules",
    "vendor",
    "vendored",
    "third_party",
    "bower_components",
];

/// Directories never entered: version-control metadata and caches.
const NEVER: &[&str] = &[".git", ".hg", ".svn", "__pycache__"];

/// What a walk found.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// Source files to analyze, in path order.
    pub(crate) files: Vec<(PathBuf, Lang)>,
    /// Source files in test/doc locations (or test-named), not analyzed unless reached.
    pub(crate) skipped: Vec<(PathBuf, Lang)>,
    /// Symlinks not followed.
    pub(crate) symlinks: usize,
}

/// The language of a file by its name; `None` for non-source files (and TypeScript declarations,
/// which hold no code).
pub(crate) fn lang_of(path: &Path) -> Option<Lang> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    if name.ends_with(".d.ts") || name.ends_with(".d.mts") || name.ends_with(".d.cts") {
        return None;
    }
    let ext = name.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "js" | "mjs" | "cjs" | "jsx" => Lang::JavaScript,
        "ts" | "mts" | "cts" => Lang::TypeScript,
        "tsx" => Lang::Tsx,
        "py" | "pyw" => Lang::Python,
        _ => return None,
    })
}

/// The language named by a `#!` line (`node`, `python`, `deno`, `bun`, `tsx`, `ts-node`).
fn shebang_lang(path: &Path) -> Option<Lang> {
    let mut head = [0u8; 128];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let head = std::str::from_utf8(&head[..n]).ok()?;
    let first = head.strip_prefix("#!")?.lines().next()?;
    if first.contains("python") {
        Some(Lang::Python)
    } else if first.contains("ts-node") || first.contains("tsx") || first.contains("deno") {
        Some(Lang::TypeScript)
    } else if first.contains("node") || first.contains("bun") {
        Some(Lang::JavaScript)
    } else {
        None
    }
}

fn is_test_file(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains(".test.")
        || n.contains(".spec.")
        || (n.starts_with("test_") && n.ends_with(".py"))
        || n.ends_with("_test.py")
        || n == "conftest.py"
}

/// Walks `root`; `include_tests` analyzes test/doc locations too.
pub(crate) fn walk(root: &Path, include_tests: bool) -> std::io::Result<Walk> {
    let mut w = Walk::default();
    // (dir, inside a skipped location)
    let mut stack = vec![(root.to_path_buf(), false)];
    let mut first = true;
    while let Some((dir, skipped)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            // The root must be readable; a subdirectory that is not is simply not there for us.
            Err(e) if first => return Err(e),
            Err(_) => continue,
        };
        first = false;
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries.into_iter().rev() {
            let path = e.path();
            let Ok(ft) = e.file_type() else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if ft.is_symlink() {
                w.symlinks += 1;
                continue;
            }
            if ft.is_dir() {
                if NEVER.contains(&name.as_str()) {
                    continue;
                }
                let test_dir =
                    !include_tests && TEST_DIRS.contains(&name.to_ascii_lowercase().as_str());
                stack.push((path, skipped || test_dir));
                continue;
            }
            if !ft.is_file() {
                continue;
            }
            let lang = match lang_of(&path) {
                Some(l) => Some(l),
                None if !name.contains('.') => shebang_lang(&path),
                None => None,
            };
            let Some(lang) = lang else { continue };
            if skipped || (!include_tests && is_test_file(&name)) {
                w.skipped.push((path, lang));
            } else {
                w.files.push((path, lang));
            }
        }
    }
    w.files.sort();
    w.skipped.sort();
    Ok(w)
}

/// Whether `path` lies in a vendored directory inside `root`.
pub(crate) fn is_vendored(root: &Path, path: &Path) -> bool {
    path.strip_prefix(root).is_ok_and(|rel| {
        rel.components().any(|c| {
            c.as_os_str()
                .to_str()
                .is_some_and(|s| VENDOR_DIRS.contains(&s))
        })
    })
}

/// Files `package.json` names as entry points (`main`, `module`, `bin`, string `exports`), resolved.
pub(crate) fn entry_points(root: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(root.join("package.json")) else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let mut specs: Vec<String> = Vec::new();
    for key in ["main", "module", "bin", "exports"] {
        collect_strings(v.get(key), &mut specs);
    }
    let base = root.join("package.json");
    specs
        .iter()
        .flat_map(|s| {
            let s = if s.starts_with('.') {
                s.clone()
            } else {
                format!("./{s}")
            };
            resolve_import(&base, &s)
        })
        .collect()
}

fn collect_strings(v: Option<&serde_json::Value>, out: &mut Vec<String>) {
    match v {
        Some(serde_json::Value::String(s)) => out.push(s.clone()),
        Some(serde_json::Value::Object(m)) => {
            for v in m.values() {
                collect_strings(Some(v), out);
            }
        }
        Some(serde_json::Value::Array(a)) => {
            for v in a {
                collect_strings(Some(v), out);
            }
        }
        _ => {}
    }
}

/// The files a relative specifier in `from` may name, most likely first (`./x` → `x`, `x.js`, …,
/// `x/index.js`). Non-relative specifiers name packages, not files: none.
pub(crate) fn resolve_import(from: &Path, spec: &str) -> Vec<PathBuf> {
    if !(spec.starts_with("./") || spec.starts_with("../")) {
        return Vec::new();
    }
    let Some(dir) = from.parent() else {
        return Vec::new();
    };
    let mut base = dir.to_path_buf();
    for part in spec.split('/') {
        match part {
            "." | "" => {}
            ".." => {
                base.pop();
            }
            p => base.push(p),
        }
    }
    let mut out = vec![base.clone()];
    for ext in ["js", "mjs", "cjs", "ts", "mts", "cts", "tsx", "jsx"] {
        let mut p = base.clone().into_os_string();
        p.push(format!(".{ext}"));
        out.push(PathBuf::from(p));
    }
    for index in ["index.js", "index.mjs", "index.cjs", "index.ts"] {
        out.push(base.join(index));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_come_from_extensions_and_declarations_are_not_code() {
        assert_eq!(lang_of(Path::new("a/b.mjs")), Some(Lang::JavaScript));
        assert_eq!(lang_of(Path::new("x.cts")), Some(Lang::TypeScript));
        assert_eq!(lang_of(Path::new("x.TSX")), Some(Lang::Tsx));
        assert_eq!(lang_of(Path::new("setup.py")), Some(Lang::Python));
        assert_eq!(lang_of(Path::new("index.d.ts")), None);
        assert_eq!(lang_of(Path::new("README.md")), None);
    }

    #[test]
    fn test_files_are_recognised_by_name() {
        assert!(is_test_file("server.test.ts"));
        assert!(is_test_file("test_server.py"));
        assert!(is_test_file("conftest.py"));
        assert!(!is_test_file("attestation.js"));
        assert!(!is_test_file("contest.py"));
    }

    #[test]
    fn relative_specifiers_resolve_to_candidate_files() {
        let c = resolve_import(Path::new("/p/src/index.js"), "../test/helper");
        assert_eq!(c[0], Path::new("/p/test/helper"));
        assert!(c.contains(&PathBuf::from("/p/test/helper.js")));
        assert!(c.contains(&PathBuf::from("/p/test/helper/index.js")));
        assert!(resolve_import(Path::new("/p/index.js"), "lodash").is_empty());
    }
}
