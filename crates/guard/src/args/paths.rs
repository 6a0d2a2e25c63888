//! Confining path arguments to the policy's allowed folders.
//!
//! Why: a steered model can ask a filesystem tool for `~/.ssh/id_ed25519`, `../../etc/passwd`, a sibling
//! folder whose name merely starts like an allowed one (CVE-2025-53110) or a path through a symlink that
//! leads out (CVE-2025-53109). [`check_path`] refuses all of these before the server sees them.
//!
//! # How a path is checked
//! 1. **Refuse what cannot be interpreted one way.** Empty values, NUL and control characters, leading or
//!    trailing whitespace, `~` prefixes, backslashes, Windows drive prefixes, percent-escapes that decode to
//!    `.`, `/`, `\`, `%` or NUL, and URLs other than `file:` are refused, because different servers read them
//!    differently and the check must be about the path the server will open.
//! 2. **`file:` URLs are decoded, then checked like paths.** Only `file:///abs` and `file://localhost/abs`
//!    are accepted (no other host, no `?` or `#`); the path part is percent-decoded (after step 1 refused
//!    escapes of separators and dots) and checked. The server still receives the URL as sent.
//! 3. **Absolutize and normalize lexically.** Relative paths are joined to the server's working directory;
//!    `.` and `..` are then removed without touching the filesystem.
//! 4. **Resolve symlinks.** The longest existing ancestor is canonicalized and the not-yet-existing tail is
//!    re-appended, so creating a new file in an allowed folder works, while a symlink anywhere in the
//!    existing part that leads outside is followed and caught. A dangling symlink in the path is refused:
//!    creating "through" it would write wherever it points.
//! 5. **`..` must mean one thing.** Lexical `..` (what Node's `path.resolve` or Python's `abspath` do) and
//!    the kernel's `..` (which applies after following a symlink) disagree when `..` follows a symlink. When
//!    the value has `..`, palisade resolves it both ways and refuses if the results differ.
//! 6. **Compare by components** ([`Path::starts_with`]), never by string prefix, against roots resolved the
//!    same way. Writing needs a write root; reading accepts a read or a write root.
//!
//! This is the friendly, early check. It reads the filesystem when the call arrives, so a symlink swapped in
//! between this check and the server's `open` is the sandbox's job (mount namespace and Landlock), which is
//! the real boundary.

use std::io;
use std::path::{Component, Path, PathBuf};

use palisade_policy::FsRules;
use serde_json::Value;

/// Longest accepted path argument, in bytes (Linux `PATH_MAX`).
const MAX_PATH_BYTES: usize = 4096;

/// Where symlinks lead. [`RealFs`] asks the operating system; the trait exists so the one piece of I/O in
/// the guards is visible at the call site and replaceable.
pub trait Resolver {
    /// The absolute path with every symlink, `.` and `..` resolved (`realpath`); fails if `p` does not exist.
    fn canonicalize(&self, p: &Path) -> io::Result<PathBuf>;
    /// Whether `p` itself (not what it points to) is a symlink (`lstat`); `Ok(false)` if nothing is there.
    fn is_symlink(&self, p: &Path) -> io::Result<bool>;
}

/// The real filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl Resolver for RealFs {
    fn canonicalize(&self, p: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(p)
    }

    fn is_symlink(&self, p: &Path) -> io::Result<bool> {
        match std::fs::symlink_metadata(p) {
            Ok(m) => Ok(m.file_type().is_symlink()),
            Err(e) if absent(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Read or write access, decided by the caller (a tool without `readOnlyHint: true` is taken to write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Needs a read or a write root.
    Read,
    /// Needs a write root.
    Write,
}

/// The allowed folders, resolved once, and the server's working directory for relative arguments.
#[derive(Debug, Clone)]
pub struct Roots {
    read: Vec<PathBuf>,
    write: Vec<PathBuf>,
    cwd: Option<PathBuf>,
    problems: Vec<String>,
}

impl Roots {
    /// Resolves `fs`'s roots and `cwd` against the real filesystem. See [`Roots::with_resolver`].
    pub fn new(fs: &FsRules, cwd: PathBuf) -> Roots {
        Roots::with_resolver(fs, cwd, &RealFs)
    }

    /// Resolves each root once, the same way arguments are resolved, so a root that is itself a symlink
    /// is compared by where it leads. A root that does not exist (yet) is kept, resolved as far as it
    /// exists, and listed in [`Roots::problems`]; a root that cannot be resolved at all (not absolute, a
    /// symlink loop, no permission) is dropped and listed, so it allows nothing. `cwd` is canonicalized
    /// too, as the kernel sees a process's working directory; if that fails, relative arguments are
    /// refused.
    pub fn with_resolver(fs: &FsRules, cwd: PathBuf, resolver: &dyn Resolver) -> Roots {
        let mut problems = Vec::new();
        let mut resolve_all = |list: &[PathBuf], kind: &str| -> Vec<PathBuf> {
            let mut out = Vec::with_capacity(list.len());
            for root in list {
                if !root.is_absolute() {
                    problems.push(format!(
                        "{kind} root `{}` is not absolute; it allows nothing",
                        root.display()
                    ));
                    continue;
                }
                match resolve(&lexical(root), resolver) {
                    Ok(r) => {
                        if !r.exists {
                            problems.push(format!(
                                "{kind} root `{}` does not exist yet",
                                root.display()
                            ));
                        }
                        out.push(r.path);
                    }
                    Err(e) => problems.push(format!(
                        "{kind} root `{}` cannot be resolved ({e}); it allows nothing",
                        root.display()
                    )),
                }
            }
            out
        };
        let read = resolve_all(&fs.read, "read");
        let write = resolve_all(&fs.write, "write");
        let cwd = if cwd.is_absolute() {
            match resolver.canonicalize(&cwd) {
                Ok(c) => Some(c),
                Err(e) => {
                    problems.push(format!(
                        "working directory `{}` cannot be resolved ({e}); relative paths will be refused",
                        cwd.display()
                    ));
                    None
                }
            }
        } else {
            problems.push(format!(
                "working directory `{}` is not absolute; relative paths will be refused",
                cwd.display()
            ));
            None
        };
        Roots {
            read,
            write,
            cwd,
            problems,
        }
    }

    /// Roots that do not exist or could not be resolved, one line each, for `doctor` and startup warnings.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The resolved read-only roots.
    pub fn read_roots(&self) -> &[PathBuf] {
        &self.read
    }

    /// The resolved writable roots.
    pub fn write_roots(&self) -> &[PathBuf] {
        &self.write
    }

    /// The resolved working directory, if usable.
    pub fn cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }
}

/// Checks one path argument and returns where it leads (symlinks resolved). The error is a one-line
/// detail for [`crate::DenyReason::PathRefused`] that says what is wrong and, where there is one, the fix.
/// See the module docs for the steps and why each exists.
pub fn check_path(
    raw: &str,
    access: Access,
    roots: &Roots,
    fs: &dyn Resolver,
) -> Result<PathBuf, String> {
    refuse_ambiguous(raw)?;
    let decoded;
    let text = if let Some(path) = file_url_path(raw)? {
        decoded = path;
        refuse_ambiguous(&decoded)?;
        decoded.as_str()
    } else {
        raw
    };
    let given = Path::new(text);
    let absolute = if given.is_absolute() {
        given.to_path_buf()
    } else {
        match &roots.cwd {
            Some(cwd) => cwd.join(given),
            None => {
                return Err(format!(
                    "`{text}` is relative and the server's working directory is unknown; give an absolute path"
                ));
            }
        }
    };
    let resolved = resolve(&lexical(&absolute), fs)?.path;
    if absolute.components().any(|c| c == Component::ParentDir) {
        let kernel = resolve(&absolute, fs)?.path;
        if kernel != resolved {
            return Err(format!(
                "`..` in `{text}` follows a symbolic link, so it leads to `{}` or `{}` depending on how the server resolves it; give the path without `..`",
                resolved.display(),
                kernel.display()
            ));
        }
    }
    let inside = |list: &[PathBuf]| list.iter().any(|r| resolved.starts_with(r));
    let allowed = match access {
        Access::Read => inside(&roots.read) || inside(&roots.write),
        Access::Write => inside(&roots.write),
    };
    if allowed {
        return Ok(resolved);
    }
    let shown = if Path::new(text) == resolved {
        format!("`{text}`")
    } else {
        format!("`{text}` (resolves to `{}`)", resolved.display())
    };
    if access == Access::Write && inside(&roots.read) {
        return Err(format!(
            "{shown} is in a read-only folder and this tool may write (it is not marked readOnlyHint); allow writing with --allow-write"
        ));
    }
    let flag = match access {
        Access::Read => "--allow-read",
        Access::Write => "--allow-write",
    };
    if roots.read.is_empty() && roots.write.is_empty() {
        return Err(format!(
            "{shown} is refused because no folders are allowed; add one with {flag} DIR"
        ));
    }
    Err(format!(
        "{shown} is outside the allowed folders ({}); add one with {flag} DIR",
        list_roots(roots, access)
    ))
}

fn list_roots(roots: &Roots, access: Access) -> String {
    let list: Vec<String> = match access {
        Access::Read => roots.read.iter().chain(&roots.write).collect::<Vec<_>>(),
        Access::Write => roots.write.iter().collect(),
    }
    .into_iter()
    .map(|p| p.display().to_string())
    .collect();
    if list.is_empty() {
        "none writable".into()
    } else {
        list.join(", ")
    }
}

/// Step 1: refuse values whose meaning depends on who reads them.
fn refuse_ambiguous(raw: &str) -> Result<(), String> {
    if raw.is_empty() {
        return Err("the path is empty".into());
    }
    if raw.len() > MAX_PATH_BYTES {
        return Err(format!("the path is longer than {MAX_PATH_BYTES} bytes"));
    }
    if raw.contains('\0') {
        return Err("the path contains a NUL byte, which ends it early for C-based servers".into());
    }
    if raw.chars().any(char::is_control) {
        return Err("the path contains a control character".into());
    }
    if raw.starts_with(char::is_whitespace) || raw.ends_with(char::is_whitespace) {
        return Err(
            "the path starts or ends with whitespace; a server that trims it would open a different path"
                .into(),
        );
    }
    if raw.starts_with('~') {
        return Err(format!(
            "`{raw}` starts with `~`, which the server does not expand to a home folder the way a shell would; give the full path"
        ));
    }
    if raw.contains('\\') {
        return Err(format!(
            "`{raw}` contains a backslash, which some servers treat as a path separator; use `/`"
        ));
    }
    let b = raw.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err(format!("`{raw}` looks like a Windows drive path"));
    }
    if let Some(esc) = suspicious_escape(raw) {
        return Err(format!(
            "`{raw}` contains the percent-escape `{esc}`, which a server that decodes it would read as part of a different path; send the path unescaped"
        ));
    }
    if let Some(scheme_end) = raw.find("://") {
        let scheme = &raw[..scheme_end];
        let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if is_scheme && !scheme.eq_ignore_ascii_case("file") {
            return Err(format!("`{raw}` is a URL, not a filesystem path"));
        }
    }
    Ok(())
}

/// The first `%XX` escape that decodes to a separator, a dot, `%` (double encoding), NUL, or an overlong
/// UTF-8 lead byte (`%c0%ae` is an old spelling of `.`).
fn suspicious_escape(raw: &str) -> Option<&str> {
    let b = raw.as_bytes();
    let mut i = 0;
    while i + 2 < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let byte = (h * 16 + l) as u8;
                if matches!(byte, b'.' | b'/' | b'\\' | b'%' | 0 | 0xc0 | 0xc1) {
                    return Some(&raw[i..i + 3]);
                }
            }
        }
        i += 1;
    }
    None
}

/// Step 2: the path inside a `file:` URL, decoded, or `None` if `raw` is not a `file:` URL.
fn file_url_path(raw: &str) -> Result<Option<String>, String> {
    let Some(prefix) = raw.get(..5) else {
        return Ok(None);
    };
    if !prefix.eq_ignore_ascii_case("file:") {
        return Ok(None);
    }
    let rest = &raw[5..];
    let Some(after) = rest.strip_prefix("//") else {
        return Err(format!(
            "`{raw}` is not a file URL palisade accepts; use file:///absolute/path"
        ));
    };
    let path = if after.starts_with('/') {
        after
    } else if after.len() >= 10 && after[..10].eq_ignore_ascii_case("localhost/") {
        &after[9..]
    } else {
        return Err(format!(
            "`{raw}` names a host; only local file URLs (file:///absolute/path) are accepted"
        ));
    };
    if path.contains(['?', '#']) {
        return Err(format!(
            "`{raw}` has a query or fragment, which servers treat differently; send a plain path"
        ));
    }
    match percent_encoding::percent_decode_str(path).decode_utf8() {
        Ok(p) => Ok(Some(p.into_owned())),
        Err(_) => Err(format!("`{raw}` decodes to a path that is not UTF-8")),
    }
}

/// `p` with `.` removed and `..` applied lexically (never above `/`), without touching the filesystem.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

struct Resolved {
    path: PathBuf,
    /// Whether the whole path exists (no tail was re-appended).
    exists: bool,
}

/// Step 4: canonicalize the longest existing ancestor of absolute `p`, then re-append the rest. The rest
/// must not start with a (dangling) symlink nor contain `..`.
fn resolve(p: &Path, fs: &dyn Resolver) -> Result<Resolved, String> {
    let comps: Vec<Component<'_>> = p.components().collect();
    for n in (1..=comps.len()).rev() {
        let prefix: PathBuf = comps[..n].iter().collect();
        match fs.canonicalize(&prefix) {
            Ok(mut base) => {
                let tail = &comps[n..];
                if let Some(first) = tail.first() {
                    let probe = base.join(first);
                    match fs.is_symlink(&probe) {
                        Ok(false) => {}
                        Ok(true) => {
                            return Err(format!(
                                "`{}` is a symbolic link to something that does not exist; palisade cannot tell where writing through it would go",
                                prefix.join(first).display()
                            ));
                        }
                        Err(e) => {
                            return Err(format!(
                                "cannot inspect `{}`: {e}",
                                prefix.join(first).display()
                            ));
                        }
                    }
                }
                for c in tail {
                    match c {
                        Component::Normal(name) => base.push(name),
                        Component::CurDir => {}
                        _ => {
                            return Err(format!(
                                "`..` follows `{}`, which does not exist; give the path without `..`",
                                prefix.display()
                            ));
                        }
                    }
                }
                return Ok(Resolved {
                    path: base,
                    exists: tail.is_empty(),
                });
            }
            Err(e) if absent(&e) => continue,
            Err(e) => return Err(format!("cannot resolve `{}`: {e}", prefix.display())),
        }
    }
    Err(format!("cannot resolve `{}`", p.display()))
}

/// Errors that mean "nothing there", so resolution moves up to the parent.
fn absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Names that hold a path when the schema says it is a string, normalized to `snake_case`.
const PATH_NAMES: &[&str] = &[
    "path",
    "paths",
    "file",
    "files",
    "filename",
    "filenames",
    "file_name",
    "file_names",
    "filepath",
    "filepaths",
    "dir",
    "dirs",
    "directory",
    "directories",
    "folder",
    "folders",
    "source",
    "destination",
    "target_path",
    "root",
    "repo_path",
    "cwd",
    "working_dir",
    "working_directory",
    "workdir",
];

/// Suffixes that mark a path name (`output_file`, `repo_dir`).
const PATH_SUFFIXES: &[&str] = &[
    "_path",
    "_paths",
    "_file",
    "_files",
    "_filename",
    "_dir",
    "_dirs",
    "_directory",
    "_folder",
];

/// `*_path` names that are not filesystem paths.
const NOT_PATHS: &[&str] = &[
    "json_path",
    "jsonpath",
    "x_path",
    "xpath",
    "url_path",
    "api_path",
    "route_path",
    "http_path",
    "request_path",
    "key_path",
    "object_path",
    "property_path",
    "field_path",
];

/// Names that hold a URL.
const URL_NAMES: &[&str] = &[
    "url", "urls", "uri", "uris", "href", "endpoint", "link", "links",
];

/// Suffixes that mark a URL name (`base_url`, `resource_uri`).
const URL_SUFFIXES: &[&str] = &["_url", "_urls", "_uri", "_uris"];

/// Whether an argument without an explicit rule should be checked as a path (policy `auto_detect`).
///
/// Decided by name only (`path`, `file_path`, `outputDir`, `*_file`…; camelCase and `-` are normalized),
/// because a schema `format` like `"path"` or `"uri-reference"` is not standard enough to trust either way.
/// Conservative on purpose: a false positive refuses a harmless call, so `message`, `json_path` or an
/// argument the schema types as a number or boolean is not a path; an argument that looks like a URL
/// ([`looks_like_url_arg`]) is checked as a URL instead.
pub fn looks_like_path_arg(name: &str, schema: Option<&Value>) -> bool {
    if !may_be_string(schema) || looks_like_url_arg(name, schema) {
        return false;
    }
    let n = snake(name);
    if NOT_PATHS.contains(&n.as_str()) {
        return false;
    }
    PATH_NAMES.contains(&n.as_str())
        || PATH_SUFFIXES
            .iter()
            .any(|s| n.len() > s.len() && n.ends_with(s))
}

/// Whether an argument without an explicit rule should be checked as a URL (policy `auto_detect`): names
/// like `url`, `uri`, `href`, `endpoint`, `link`, `*_url`, `*_uri`, or a schema `format` of `uri`, `url` or
/// `iri` (not `uri-reference`, which is often a relative path). Not if the schema types it as a non-string.
pub fn looks_like_url_arg(name: &str, schema: Option<&Value>) -> bool {
    if !may_be_string(schema) {
        return false;
    }
    let format = schema.and_then(|s| s.get("format")).and_then(Value::as_str);
    if matches!(format, Some("uri" | "url" | "iri")) {
        return true;
    }
    let n = snake(name);
    URL_NAMES.contains(&n.as_str())
        || URL_SUFFIXES
            .iter()
            .any(|s| n.len() > s.len() && n.ends_with(s))
}

/// Whether the argument's schema allows a string or an array (of strings); no schema or no `type` allows.
fn may_be_string(schema: Option<&Value>) -> bool {
    let Some(ty) = schema.and_then(|s| s.get("type")) else {
        return true;
    };
    let ok = |t: &Value| matches!(t.as_str(), Some("string" | "array"));
    match ty {
        Value::Array(types) => types.iter().any(ok),
        t => ok(t),
    }
}

/// `filePath`, `file-path`, `FILE_PATH` → `file_path`.
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c == '-' || c == ' ' {
            out.push('_');
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

#[cfg(test)]
#[path = "paths_tests.rs"]
mod tests;
