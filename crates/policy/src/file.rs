//! The policy file: TOML parsed with spans, validated key by key into [`Layer`]s.
//!
//! The parser walks toml's spanned document tree by hand instead of deriving `Deserialize`: serde stops at
//! the first error, while `palisade policy check` must report every error in one run, each at its line.
//! Every table checks its keys against a fixed list, so a typo is an `unknown-key` error (with a
//! "did you mean" when one is close) instead of a silently ignored rule.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::OnceLock;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::{Code, Diagnostic, Diagnostics, Location};
use crate::layer::{Layer, Site, SitedPath};
use crate::model::{
    ArgRule, PinMode, ProcessSharing, Profile, ServerCommand, ServerRemote, Trust, UnknownArgs,
};
use crate::values::{self, Bad, PathSpec};

/// The strict built-in policy, applied under every policy file (see `docs/policy.md`).
pub const EMBEDDED_DEFAULT: &str = include_str!("../default.toml");

/// The origin name diagnostics use for the embedded default.
const EMBEDDED_ORIGIN: &str = "<embedded default>";

/// The format version this crate reads.
const VERSION: i64 = 1;

const TOP_KEYS: &[&str] = &[
    "version",
    "profile",
    "tools",
    "filesystem",
    "network",
    "arguments",
    "pinning",
    "limits",
    "audit",
    "servers",
];
const SECTION_KEYS: &[&str] = &[
    "tools",
    "filesystem",
    "network",
    "arguments",
    "pinning",
    "limits",
    "audit",
];
const SERVER_KEYS: &[&str] = &[
    "command",
    "env",
    "url",
    "headers",
    "bearer",
    "allow_private",
    "ca_file",
    "profile",
    "trust",
    "process",
    "tools",
    "filesystem",
    "network",
    "arguments",
    "pinning",
    "limits",
    "audit",
];

/// A parsed and validated policy file: global settings plus `[servers.NAME]` tables, not yet merged.
///
/// Turn it into a [`Policy`](crate::Policy) for one server with [`resolve`](crate::resolve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    origin: String,
    profile: Option<Profile>,
    pub(crate) globals: Layer,
    pub(crate) servers: BTreeMap<String, ServerEntry>,
    warnings: Diagnostics,
}

/// One `[servers.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerEntry {
    pub(crate) command: Option<ServerCommand>,
    /// `url = "…"`: a remote server (exclusive with `command`).
    pub(crate) remote: Option<ServerRemote>,
    pub(crate) profile: Option<Profile>,
    /// `trust = "unsandboxed"`: run this server without the OS sandbox.
    pub(crate) trust: Option<Trust>,
    /// `process = "shared"`: one process for every session of this server (`palisade serve`).
    pub(crate) process: Option<ProcessSharing>,
    pub(crate) layer: Layer,
}

impl PolicyFile {
    /// Parses and validates `text`; `origin` names it in diagnostics (usually the file path as given).
    ///
    /// On success, warnings are kept in [`PolicyFile::warnings`]. On failure the `Err` holds every error
    /// found, plus the warnings, sorted by position.
    pub fn parse(text: &str, origin: &str) -> Result<PolicyFile, Diagnostics> {
        let mut cx = Cx::new(text, origin);
        let (root, syntax) = DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            // A recovered tree can hold half-parsed values; validating it would add confusing follow-ups.
            for e in syntax {
                let span = e.span().unwrap_or(0..0);
                cx.report(
                    Code::Syntax,
                    span,
                    "",
                    format!("invalid TOML: {}", e.message()),
                    "fix the TOML syntax at this position",
                );
            }
            cx.diags.sort();
            return Err(cx.diags);
        }
        let file = cx.document(root.get_ref(), root.span());
        let mut diags = cx.diags;
        diags.sort();
        if diags.has_errors() {
            return Err(diags);
        }
        Ok(PolicyFile {
            origin: origin.to_owned(),
            warnings: diags,
            ..file
        })
    }

    /// The strict built-in policy (`crates/policy/default.toml`), parsed once.
    pub fn embedded_default() -> &'static PolicyFile {
        static DEFAULT: OnceLock<PolicyFile> = OnceLock::new();
        DEFAULT.get_or_init(|| {
            PolicyFile::parse(EMBEDDED_DEFAULT, EMBEDDED_ORIGIN)
                .unwrap_or_else(|d| panic!("the embedded default policy is invalid:\n{d}"))
        })
    }

    /// The name given to [`PolicyFile::parse`].
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The file's top-level `profile`, if set.
    pub fn profile(&self) -> Option<Profile> {
        self.profile
    }

    /// Warnings found while parsing (the file is usable despite them).
    pub fn warnings(&self) -> &Diagnostics {
        &self.warnings
    }

    /// The `[servers.NAME]` names, sorted.
    pub fn server_names(&self) -> impl Iterator<Item = &str> {
        self.servers.keys().map(String::as_str)
    }

    /// The command of server `name`, if the server exists and has one.
    pub fn server_command(&self, name: &str) -> Option<&ServerCommand> {
        self.servers.get(name)?.command.as_ref()
    }

    /// The remote endpoint of server `name`, if the server exists and has `url = "…"`.
    pub fn server_remote(&self, name: &str) -> Option<&ServerRemote> {
        self.servers.get(name)?.remote.as_ref()
    }
}

/// Parses `text` and returns every diagnostic, errors and warnings, sorted by position: the report of
/// `palisade policy check FILE`. The file is usable iff `!check(..).has_errors()`.
pub fn check(text: &str, origin: &str) -> Diagnostics {
    match PolicyFile::parse(text, origin) {
        Ok(file) => file.warnings,
        Err(diags) => diags,
    }
}

type Val<'i> = Spanned<DeValue<'i>>;

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// A value for messages: strings quoted TOML-style, others by type.
fn show(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => format!("{:?}", s.as_ref()),
        DeValue::Integer(i) if i.radix() == 10 => i.as_str().to_owned(),
        DeValue::Boolean(b) => b.to_string(),
        other => format!("<{}>", other.type_str()),
    }
}

fn a_type(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn int(v: &DeValue<'_>) -> Option<i64> {
    let i = v.as_integer()?;
    i64::from_str_radix(i.as_str(), i.radix()).ok()
}

/// Whether a path is `/` or the home directory itself, as written.
fn is_broad(spec: &PathSpec) -> bool {
    match spec {
        PathSpec::Absolute(p) => p.chars().all(|c| c == '/'),
        PathSpec::Home(rest) => rest.trim_matches('/').is_empty(),
        PathSpec::Relative(_) => false,
    }
}

struct Cx<'s> {
    origin: &'s str,
    src: &'s str,
    line_starts: Vec<usize>,
    diags: Diagnostics,
}

impl<'s> Cx<'s> {
    fn new(src: &'s str, origin: &'s str) -> Cx<'s> {
        let line_starts = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Cx {
            origin,
            src,
            line_starts,
            diags: Diagnostics::new(),
        }
    }

    fn loc(&self, offset: usize) -> Location {
        let offset = offset.min(self.src.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let column = self
            .src
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Location { line, column }
    }

    fn site(&self, span: Range<usize>, key: &str) -> Site {
        Site {
            origin: self.origin.to_owned(),
            location: Some(self.loc(span.start)),
            key: key.to_owned(),
        }
    }

    fn report(
        &mut self,
        code: Code,
        span: Range<usize>,
        key: &str,
        message: String,
        help: impl Into<String>,
    ) {
        let location = Some(self.loc(span.start));
        self.diags.push(Diagnostic {
            severity: code.severity(),
            code,
            origin: self.origin.to_owned(),
            location,
            key: key.to_owned(),
            message,
            help: help.into(),
        });
    }

    fn bad(&mut self, v: &Val<'_>, key: &str, bad: Bad) {
        let message = format!("{key} = {} {}", show(v.get_ref()), bad.what);
        self.report(bad.code, v.span(), key, message, bad.help);
    }

    fn wrong_type(&mut self, v: &Val<'_>, key: &str, expected: &str, help: String) {
        let message = format!("{key} must be {expected}, not {}", a_type(v.get_ref()));
        self.report(Code::WrongType, v.span(), key, message, help);
    }

    /// Reports every key of `t` not in `allowed`.
    fn known_keys(&mut self, path: &str, t: &DeTable<'_>, allowed: &[&str]) {
        for k in t.keys() {
            let name: &str = k.get_ref();
            if allowed.contains(&name) {
                continue;
            }
            let full = join(path, name);
            let place = if path.is_empty() {
                "at the top level".to_owned()
            } else {
                format!("in [{path}]")
            };
            let help = match values::suggest(name, allowed) {
                Some(s) => format!("did you mean `{s}`? (known keys: {})", allowed.join(", ")),
                None => format!("known keys {place}: {}", allowed.join(", ")),
            };
            self.report(
                Code::UnknownKey,
                k.span(),
                &full,
                format!("unknown key `{name}` {place}"),
                help,
            );
        }
    }

    fn table<'a, 'i>(&mut self, v: &'a Val<'i>, key: &str) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(v, key, "a table", format!("write a table: [{key}]"));
                None
            }
        }
    }

    fn bool(&mut self, path: &str, t: &DeTable<'_>, name: &str) -> Option<bool> {
        let v = t.get(name)?;
        let key = join(path, name);
        match v.get_ref().as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong_type(
                    v,
                    &key,
                    "true or false",
                    format!("write {key} = true or {key} = false"),
                );
                None
            }
        }
    }

    /// A string value passed through `f`.
    fn one<T>(
        &mut self,
        path: &str,
        t: &DeTable<'_>,
        name: &str,
        f: impl Fn(&str) -> Result<T, Bad>,
    ) -> Option<T> {
        let v = t.get(name)?;
        let key = join(path, name);
        let Some(s) = v.get_ref().as_str() else {
            self.wrong_type(v, &key, "a string", format!("write {key} = \"…\""));
            return None;
        };
        match f(s) {
            Ok(x) => Some(x),
            Err(bad) => {
                self.bad(v, &key, bad);
                None
            }
        }
    }

    /// An array of strings, each passed through `f`; exact duplicates are warned about and dropped.
    fn list<T>(
        &mut self,
        path: &str,
        t: &DeTable<'_>,
        name: &str,
        mut f: impl FnMut(&mut Self, &Val<'_>, &str, &str) -> Result<T, Bad>,
    ) -> Option<Vec<T>> {
        let v = t.get(name)?;
        let key = join(path, name);
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(
                v,
                &key,
                "an array of strings",
                format!("write a list: {key} = [\"…\"]"),
            );
            return None;
        };
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let ikey = format!("{key}[{i}]");
            let Some(s) = item.get_ref().as_str() else {
                self.wrong_type(
                    item,
                    &ikey,
                    "a string",
                    format!("quote it: {key} = [\"…\"]"),
                );
                continue;
            };
            if !seen.insert(s) {
                let message = format!("{ikey} = {:?} is listed twice in {key}", s);
                self.report(
                    Code::DuplicateEntry,
                    item.span(),
                    &ikey,
                    message,
                    "remove the duplicate entry",
                );
                continue;
            }
            match f(self, item, &ikey, s) {
                Ok(x) => out.push(x),
                Err(bad) => self.bad(item, &ikey, bad),
            }
        }
        Some(out)
    }

    fn plain_list<T>(
        &mut self,
        path: &str,
        t: &DeTable<'_>,
        name: &str,
        f: impl Fn(&str) -> Result<T, Bad>,
    ) -> Option<Vec<T>> {
        self.list(path, t, name, |_, _, _, s| f(s))
    }

    /// A list of paths as written in a file: absolute or `~/…`; relative is an error.
    fn paths(
        &mut self,
        path: &str,
        t: &DeTable<'_>,
        name: &str,
        warn_broad: bool,
    ) -> Option<Vec<SitedPath>> {
        self.list(path, t, name, |cx, item, ikey, s| {
            cx.path(item, ikey, s, warn_broad.then_some(name))
        })
    }

    fn path(
        &mut self,
        v: &Val<'_>,
        key: &str,
        s: &str,
        broad_kind: Option<&str>,
    ) -> Result<SitedPath, Bad> {
        let spec = values::path_spec(s)?;
        if let PathSpec::Relative(_) = spec {
            return Err(Bad::new(
                Code::RelativePath,
                "is a relative path",
                format!("write an absolute path (\"/…\") or one under your home (\"~/{s}\")"),
            ));
        }
        let warned_broad = broad_kind.is_some() && is_broad(&spec);
        if let (true, Some(kind)) = (warned_broad, broad_kind) {
            let what = if kind == "write" {
                "writable"
            } else {
                "readable"
            };
            self.report(
                Code::BroadRoot,
                v.span(),
                key,
                format!(
                    "{key} = {s:?} makes the whole {} {what}, including keys and tokens",
                    if s.starts_with('~') {
                        "home directory"
                    } else {
                        "filesystem"
                    }
                ),
                "list only the folders the server needs, such as \"~/project\"",
            );
        }
        Ok(SitedPath {
            spec,
            raw: s.to_owned(),
            site: self.site(v.span(), key),
            warned_broad,
        })
    }

    fn positive_int(&mut self, path: &str, t: &DeTable<'_>, name: &str) -> Option<usize> {
        let v = t.get(name)?;
        let key = join(path, name);
        if !v.get_ref().is_integer() {
            self.wrong_type(v, &key, "an integer", format!("write {key} = 16"));
            return None;
        }
        match int(v.get_ref()).and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n > 0 => Some(n),
            _ => {
                self.bad(
                    v,
                    &key,
                    Bad::new(
                        Code::InvalidValue,
                        "must be a positive integer",
                        format!("write {key} = 16"),
                    ),
                );
                None
            }
        }
    }

    fn profile(&mut self, path: &str, t: &DeTable<'_>) -> Option<Profile> {
        self.one(path, t, "profile", |s| match s {
            "dev" => Ok(Profile::Dev),
            "prod" => Ok(Profile::Prod),
            _ => Err(Bad::new(
                Code::InvalidValue,
                "is not a profile",
                "write profile = \"dev\" or profile = \"prod\"",
            )),
        })
    }

    fn document(&mut self, root: &DeTable<'_>, span: Range<usize>) -> PolicyFile {
        self.known_keys("", root, TOP_KEYS);
        match root.get("version") {
            None => self.report(
                Code::MissingVersion,
                span.start..span.start,
                "version",
                "the policy has no `version`; version 1 is assumed".into(),
                "add `version = 1` as the first line",
            ),
            Some(v) if !v.get_ref().is_integer() => {
                self.wrong_type(v, "version", "an integer", "write version = 1".into());
            }
            Some(v) if int(v.get_ref()) != Some(VERSION) => self.bad(
                v,
                "version",
                Bad::new(
                    Code::UnsupportedVersion,
                    "is not a policy format this palisade reads",
                    "write version = 1, or upgrade palisade",
                ),
            ),
            Some(_) => {}
        }
        let profile = self.profile("", root);
        let globals = self.sections("", root);
        let mut servers = BTreeMap::new();
        if let Some(v) = root.get("servers")
            && let Some(t) = self.table(v, "servers")
        {
            for (name, v) in t.iter() {
                let name_str: &str = name.get_ref();
                let path = format!("servers.{name_str}");
                if !valid_server_name(name_str) {
                    self.report(
                        Code::InvalidValue,
                        name.span(),
                        &path,
                        format!("server name {name_str:?} is not valid"),
                        "use letters, digits, '-', '_' and '.' only, not starting with '.' (the name is used in URLs and file names)",
                    );
                }
                if let Some(entry) = self.table(v, &path).map(|t| self.server(&path, t)) {
                    servers.insert(name_str.to_owned(), entry);
                }
            }
        }
        PolicyFile {
            origin: self.origin.to_owned(),
            profile,
            globals,
            servers,
            warnings: Diagnostics::new(),
        }
    }

    fn server(&mut self, path: &str, t: &DeTable<'_>) -> ServerEntry {
        self.known_keys(path, t, SERVER_KEYS);
        let command = t.get("command").and_then(|v| self.command(path, v));
        let env = t
            .get("env")
            .map(|v| self.env(&join(path, "env"), v))
            .unwrap_or_default();
        let command = match command {
            Some(argv) => Some(ServerCommand { argv, env }),
            None if !env.is_empty() && !t.contains_key("command") => {
                let v = &t["env"];
                self.report(
                    Code::MissingKey,
                    v.span(),
                    &join(path, "command"),
                    format!("{path} sets `env` but has no `command`"),
                    format!(
                        "add {} = [\"program\", \"arg\"…] or remove env",
                        join(path, "command")
                    ),
                );
                None
            }
            None => None,
        };
        let remote = self.remote(path, t);
        ServerEntry {
            command,
            remote,
            profile: self.profile(path, t),
            trust: self.one(path, t, "trust", |s| match s {
                "sandboxed" => Ok(Trust::Sandboxed),
                "unsandboxed" => Ok(Trust::Unsandboxed),
                _ => Err(Bad::new(
                    Code::InvalidValue,
                    "is not a trust level",
                    "write trust = \"unsandboxed\" to run this server without the OS sandbox (its banner and audit log say so), or remove the key",
                )),
            }),
            process: self.one(path, t, "process", |s| match s {
                "per-session" => Ok(ProcessSharing::PerSession),
                "shared" => Ok(ProcessSharing::Shared),
                _ => Err(Bad::new(
                    Code::InvalidValue,
                    "is not a way to run the server's process",
                    "write process = \"per-session\" (the default: each session gets its own process, isolated from the others) or process = \"shared\" (one process for every session of this server; see docs/serve.md)",
                )),
            }),
            layer: self.sections(path, t),
        }
    }

    /// `url` and its companions (`headers`, `bearer`, `allow_private`, `ca_file`).
    fn remote(&mut self, path: &str, t: &DeTable<'_>) -> Option<ServerRemote> {
        const COMPANIONS: &[&str] = &["headers", "bearer", "allow_private", "ca_file"];
        let Some(v) = t.get("url") else {
            for &k in COMPANIONS {
                if let Some(v) = t.get(k) {
                    self.report(
                        Code::MissingKey,
                        v.span(),
                        &join(path, "url"),
                        format!("{path} sets `{k}` but has no `url`"),
                        format!(
                            "`{k}` belongs to a remote server: add {} = \"https://host/mcp\", or remove `{k}`",
                            join(path, "url")
                        ),
                    );
                }
            }
            return None;
        };
        let key = join(path, "url");
        if t.contains_key("command") {
            self.report(
                Code::ConflictingKeys,
                v.span(),
                &key,
                format!("{path} sets both `command` and `url`"),
                "a server is either a local process (`command`) or a remote endpoint (`url`): keep one",
            );
        }
        for k in ["env", "trust", "process"] {
            if let Some(kv) = t.get(k) {
                self.report(
                    Code::ConflictingKeys,
                    kv.span(),
                    &join(path, k),
                    format!("{path} is a remote server (`url`); `{k}` applies to local processes only"),
                    if k == "process" {
                        "remove `process`: a remote server runs elsewhere, and palisade opens one upstream session per client session".to_owned()
                    } else {
                        format!(
                            "remove `{k}`; upstream credentials go in `bearer` or `headers`, and a remote server is never sandboxed (it runs elsewhere)"
                        )
                    },
                );
            }
        }
        let url = match v.get_ref().as_str() {
            Some(s) => match values::remote_url(s) {
                Ok(()) => Some(s.to_owned()),
                Err(bad) => {
                    self.bad(v, &key, bad);
                    None
                }
            },
            None => {
                self.wrong_type(
                    v,
                    &key,
                    "a string",
                    format!("write {key} = \"https://host/mcp\""),
                );
                None
            }
        };
        let bearer = t
            .get("bearer")
            .and_then(|v| self.secret_value(v, &join(path, "bearer")));
        let mut headers = Vec::new();
        if let Some(hv) = t.get("headers") {
            let hkey = join(path, "headers");
            if let Some(ht) = self.table(hv, &hkey) {
                for (name, val) in ht.iter() {
                    let name_str: &str = name.get_ref();
                    let ikey = format!("{hkey}.{name_str}");
                    if let Err(bad) = values::header_name(name_str) {
                        let message = format!("header name {name_str:?} {}", bad.what);
                        self.report(bad.code, name.span(), &ikey, message, bad.help);
                        continue;
                    }
                    if bearer.is_some() && name_str.eq_ignore_ascii_case("authorization") {
                        self.report(
                            Code::ConflictingKeys,
                            name.span(),
                            &ikey,
                            format!("{path} sets both `bearer` and an Authorization header"),
                            "keep one: bearer = \"keychain:NAME\" sends `Authorization: Bearer <value>`",
                        );
                        continue;
                    }
                    if let Some(value) = self.secret_value(val, &ikey) {
                        headers.push((name_str.to_owned(), value));
                    }
                }
            }
        }
        let allow_private = self.bool(path, t, "allow_private").unwrap_or(false);
        let ca_file = self.one(path, t, "ca_file", |s| {
            let p = std::path::Path::new(s);
            if p.is_absolute() && !s.contains('\0') {
                Ok(p.to_path_buf())
            } else {
                Err(Bad::new(
                    Code::RelativePath,
                    "is not an absolute path",
                    "write the full path of a PEM file: ca_file = \"/etc/palisade/upstream-ca.pem\"",
                ))
            }
        });
        Some(ServerRemote {
            url: url?,
            headers,
            bearer,
            allow_private,
            ca_file,
        })
    }

    /// An upstream credential as written (a reference or a literal). Unlike other values, a bad one is
    /// never quoted back: a literal may be the secret itself.
    fn secret_value(&mut self, v: &Val<'_>, key: &str) -> Option<String> {
        let Some(s) = v.get_ref().as_str() else {
            self.wrong_type(
                v,
                key,
                "a string",
                format!("write {key} = \"keychain:NAME\""),
            );
            return None;
        };
        match values::header_value(s) {
            Ok(()) => Some(s.to_owned()),
            Err(bad) => {
                self.report(
                    bad.code,
                    v.span(),
                    key,
                    format!("{key} {}", bad.what),
                    bad.help,
                );
                None
            }
        }
    }

    fn command(&mut self, path: &str, v: &Val<'_>) -> Option<Vec<String>> {
        let key = join(path, "command");
        let help = format!("write {key} = [\"npx\", \"-y\", \"package@1.2.3\"]");
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(
                v,
                &key,
                "an array of strings (program, then arguments)",
                help,
            );
            return None;
        };
        let mut argv = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get_ref().as_str() {
                Some(s) => argv.push(s.to_owned()),
                None => self.wrong_type(item, &format!("{key}[{i}]"), "a string", help.clone()),
            }
        }
        if argv.first().is_none_or(String::is_empty) {
            self.report(
                Code::InvalidCommand,
                v.span(),
                &key,
                format!("{key} has no program to run"),
                help,
            );
            return None;
        }
        Some(argv)
    }

    fn env(&mut self, key: &str, v: &Val<'_>) -> Vec<(String, String)> {
        let Some(t) = self.table(v, key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, val) in t.iter() {
            let name_str: &str = name.get_ref();
            let ikey = format!("{key}.{name_str}");
            if name_str.is_empty() || name_str.contains(['=', '\0']) {
                self.report(
                    Code::InvalidEnv,
                    name.span(),
                    &ikey,
                    format!("environment variable name {name_str:?} is not valid"),
                    "a variable name is non-empty and contains no '=' or NUL",
                );
                continue;
            }
            let Some(s) = val.get_ref().as_str() else {
                self.wrong_type(
                    val,
                    &ikey,
                    "a string",
                    format!("write {ikey} = \"env:{name_str}\""),
                );
                continue;
            };
            if let Some(reference) = s.strip_prefix("env:").or_else(|| s.strip_prefix("secret:"))
                && (reference.is_empty() || reference.contains(['=', '\0']))
            {
                self.bad(
                    val,
                    &ikey,
                    Bad::new(
                        Code::InvalidEnv,
                        "references no name",
                        format!("write \"env:{name_str}\" (palisade's own environment) or \"secret:NAME\" (the keychain)"),
                    ),
                );
                continue;
            }
            if s.contains('\0') {
                self.bad(
                    val,
                    &ikey,
                    Bad::new(
                        Code::InvalidEnv,
                        "contains a NUL byte",
                        "remove the NUL byte",
                    ),
                );
                continue;
            }
            out.push((name_str.to_owned(), s.to_owned()));
        }
        out
    }

    /// The section tables shared by the top level and `[servers.NAME]`.
    fn sections(&mut self, prefix: &str, t: &DeTable<'_>) -> Layer {
        let mut layer = Layer::default();
        for &section in SECTION_KEYS {
            let Some(v) = t.get(section) else { continue };
            let path = join(prefix, section);
            let Some(st) = self.table(v, &path) else {
                continue;
            };
            match section {
                "tools" => self.tools(&path, st, &mut layer),
                "filesystem" => self.filesystem(&path, st, &mut layer),
                "network" => self.network(&path, st, &mut layer),
                "arguments" => self.arguments(&path, st, &mut layer),
                "pinning" => self.pinning(&path, st, &mut layer),
                "limits" => self.limits(&path, st, &mut layer),
                "audit" => self.audit(&path, st, &mut layer),
                _ => unreachable!("SECTION_KEYS and this match list the same sections"),
            }
        }
        layer
    }

    fn tools(&mut self, path: &str, t: &DeTable<'_>, layer: &mut Layer) {
        self.known_keys(path, t, &["allow", "deny"]);
        layer.tools_allow = self.plain_list(path, t, "allow", values::tool_glob);
        if let (Some(allow), Some(v)) = (&layer.tools_allow, t.get("allow"))
            && allow.is_empty()
            && v.get_ref().as_array().is_some_and(|a| a.is_empty())
        {
            let key = join(path, "allow");
            self.report(
                Code::EmptyAllow,
                v.span(),
                &key,
                format!("{key} = [] allows no tool, so the server is unusable"),
                format!("write {key} = [\"*\"] and deny what you must, or list the tools you need"),
            );
        }
        layer.tools_deny = self.plain_list(path, t, "deny", values::tool_glob);
    }

    fn filesystem(&mut self, path: &str, t: &DeTable<'_>, layer: &mut Layer) {
        self.known_keys(path, t, &["read", "write"]);
        layer.fs_read = self.paths(path, t, "read", true);
        layer.fs_write = self.paths(path, t, "write", true);
    }

    fn network(&mut self, path: &str, t: &DeTable<'_>, layer: &mut Layer) {
        self.known_keys(path, t, &["allow"]);
        layer.net_allow = self.plain_list(path, t, "allow", values::host_rule);
    }

    fn arguments(&mut self, path: &str, t: &DeTable<'_>, layer: &mut Layer) {
        self.known_keys(
            path,
            t,
            &["schema", "unknown", "auto_detect", "url_schemes", "rule"],
        );
        layer.args_schema = self.bool(path, t, "schema");
        if layer.args_schema == Some(false) {
            let key = join(path, "schema");
            self.report(
                Code::SchemaOff,
                t["schema"].span(),
                &key,
                format!(
                    "{key} = false lets tool calls through with arguments their own schema forbids"
                ),
                format!("remove the line or write {key} = true"),
            );
        }
        layer.args_unknown = self.one(path, t, "unknown", |s| match s {
            "allow" => Ok(UnknownArgs::Allow),
            "deny" => Ok(UnknownArgs::Deny),
            _ => Err(Bad::new(
                Code::InvalidValue,
                "is not a choice",
                "write unknown = \"allow\" (follow the tool's schema) or \"deny\"",
            )),
        });
        layer.args_auto_detect = self.bool(path, t, "auto_detect");
        layer.args_url_schemes = self.plain_list(path, t, "url_schemes", values::scheme);
        let Some(v) = t.get("rule") else { return };
        let key = join(path, "rule");
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(
                v,
                &key,
                "an array of tables",
                format!("write each rule as [[{key}]]"),
            );
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let ikey = format!("{key}[{i}]");
            let Some(rt) = self.table(item, &ikey) else {
                continue;
            };
            if let Some(rule) = self.arg_rule(&ikey, item.span(), rt) {
                layer.args_rules.push(rule);
            }
        }
    }

    fn arg_rule(&mut self, path: &str, span: Range<usize>, t: &DeTable<'_>) -> Option<ArgRule> {
        self.known_keys(path, t, &["tool", "paths", "urls", "positionals"]);
        let arg_name = |s: &str| {
            if s.is_empty() {
                Err(Bad::new(
                    Code::InvalidValue,
                    "is an empty argument name",
                    "write the argument's property name",
                ))
            } else {
                Ok(s.to_owned())
            }
        };
        let paths = self
            .plain_list(path, t, "paths", arg_name)
            .unwrap_or_default();
        let urls = self
            .plain_list(path, t, "urls", arg_name)
            .unwrap_or_default();
        let positionals = self
            .plain_list(path, t, "positionals", arg_name)
            .unwrap_or_default();
        if !t.contains_key("tool") {
            self.report(
                Code::MissingKey,
                span,
                &join(path, "tool"),
                format!("{path} has no `tool`"),
                "add tool = \"GLOB\" naming the tools this rule applies to, e.g. tool = \"git_*\"",
            );
            return None;
        }
        let tool = self.one(path, t, "tool", values::tool_glob)?;
        Some(ArgRule {
            tool,
            paths,
            urls,
            positionals,
        })
    }

    fn pinning(&mut self, path: &str, t: &DeTable<'_>, layer: &mut Layer) {
        self.known_keys(path, t, &["mode", "file"]);
        layer.pin_mode = self.one(path, t, "mode", |s| match s {
            "tofu" => Ok(PinMode::Tofu),
            "require" => Ok(PinMode::Require),
            "off" => Ok(PinMode::Off),
            _ => Err(Bad::new(
                Code::InvalidValue,
                "is not a pinning mode",
                "write mode = \"tofu\", \"require\" or \"off\"",
            )),
        });
        if layer.pin_mode == Some(PinMode::Off) {
            let key = join(path, "mode");
            self.report(
                Code::PinningOff,
                t["mode"].span(),
                &key,
                format!("{key} = \"off\" lets a server change its tools after you approved them (rug pull)"),
                format!("write {key} = \"tofu\" (record on first use) or \"require\""),
            );
        }
        if let Some(v) = t.get("file") {
            layer.pin_file = self.single_path(&join(path, "file"), v);
        }
    }

    fn single_path(&mut self, key: &str, v: &Val<'_>) -> Option<SitedPath> {
        let Some(s) = v.get_ref().as_str() else {
            self.wrong_type(v, key, "a string", format!("write {key} = \"/path\""));
            return None;
        };
        match self.path(v, key, s, None) {
            Ok(p) => Some(p),
            Err(bad) => {
                self.bad(v, key, bad);
                None
            }
        }
    }

    fn limits(&mut self, path: &str, t: &DeTable<'_>, layer: &mut Layer) {
        self.known_keys(
            path,
            t,
            &[
                "max_message_bytes",
                "call_timeout",
                "max_concurrent_calls",
                "rate",
            ],
        );
        if let Some(v) = t.get("max_message_bytes") {
            let key = join(path, "max_message_bytes");
            let parsed = match v.get_ref() {
                DeValue::String(s) => Some(values::size(s)),
                DeValue::Integer(_) => {
                    Some(int(v.get_ref()).map_or_else(|| values::size_int(-1), values::size_int))
                }
                _ => None,
            };
            match parsed {
                Some(Ok(n)) => layer.max_message_bytes = Some(n),
                Some(Err(bad)) => self.bad(v, &key, bad),
                None => self.wrong_type(
                    v,
                    &key,
                    "a byte count or size",
                    format!("write {key} = \"8MiB\""),
                ),
            }
        }
        layer.call_timeout = self.one(path, t, "call_timeout", values::duration);
        layer.max_concurrent_calls = self.positive_int(path, t, "max_concurrent_calls");
        layer.rate = self.one(path, t, "rate", values::rate);
    }

    fn audit(&mut self, path: &str, t: &DeTable<'_>, layer: &mut Layer) {
        self.known_keys(path, t, &["enabled", "path", "durable"]);
        layer.audit_enabled = self.bool(path, t, "enabled");
        if layer.audit_enabled == Some(false) {
            let key = join(path, "enabled");
            self.report(
                Code::AuditOff,
                t["enabled"].span(),
                &key,
                format!("{key} = false leaves no record of what the server was asked to do"),
                format!("remove the line or write {key} = true"),
            );
        }
        if let Some(v) = t.get("path") {
            layer.audit_path = self.single_path(&join(path, "path"), v);
        }
        layer.audit_durable = self.bool(path, t, "durable");
    }
}

/// Server names become URL segments (`/mcp/<name>`) and file names (`audit/<name>.jsonl`), so they are
/// restricted to characters that are safe in both.
fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
