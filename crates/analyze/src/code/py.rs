//! Python: the same shape as [`super::js`]: one walk collects imports, calls and literals, callees are
//! resolved through `import x as y` / `from x import y as z` / `x = os.environ` bindings and matched
//! against the tables below. Builtins (`exec`, `eval`, `compile`, `__import__`, `open`) match only when
//! the name was not rebound by an import.

use std::collections::HashMap;
use std::ops::Range;

use palisade_scan::report::Severity;
use tree_sitter::Node;

use super::literal;
use super::{FileScan, excerpt};
use crate::rules;
use crate::text;

/// Modules whose request functions reach the network, and how alarming that is alone.
const NET_MODULES: &[(&str, Severity)] = &[
    ("requests", Severity::Low),
    ("httpx", Severity::Low),
    ("aiohttp", Severity::Low),
    ("urllib.request", Severity::Low),
    ("urllib2", Severity::Low),
    ("urllib3", Severity::Low),
    ("httplib2", Severity::Low),
    ("http.client", Severity::Low),
    ("websocket", Severity::Low),
    ("websockets", Severity::Low),
    ("pycurl", Severity::Low),
    ("socket", Severity::Medium),
    ("ftplib", Severity::Medium),
    ("smtplib", Severity::Medium),
    ("telnetlib", Severity::Medium),
    ("paramiko", Severity::Medium),
    ("dns.resolver", Severity::Medium),
];
/// Functions and classes of those modules that send or connect.
const NET_VERBS: &[&str] = &[
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "head",
    "options",
    "request",
    "stream",
    "urlopen",
    "urlretrieve",
    "Request",
    "Session",
    "AsyncClient",
    "Client",
    "ClientSession",
    "PoolManager",
    "ProxyManager",
    "HTTPConnection",
    "HTTPSConnection",
    "Http",
    "socket",
    "create_connection",
    "connect",
    "FTP",
    "FTP_TLS",
    "SMTP",
    "SMTP_SSL",
    "Telnet",
    "SSHClient",
    "resolve",
    "query",
    "gethostbyname",
    "gethostbyname_ex",
    "getaddrinfo",
    "WebSocketApp",
    "Curl",
    "serve",
];
/// Always through a shell.
const SHELL_ALWAYS: &[&str] = &[
    "os.system",
    "os.popen",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
    "asyncio.create_subprocess_shell",
    "commands.getoutput",
];
/// A program directly, or through a shell with `shell=True`.
const SPAWN: &[&str] = &[
    "subprocess.run",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
    "subprocess.Popen",
    "asyncio.create_subprocess_exec",
    "pty.spawn",
    "os.execv",
    "os.execve",
    "os.execl",
    "os.execle",
    "os.execlp",
    "os.execlpe",
    "os.execvp",
    "os.execvpe",
    "os.spawnl",
    "os.spawnle",
    "os.spawnlp",
    "os.spawnv",
    "os.spawnve",
    "os.spawnvp",
    "os.posix_spawn",
    "os.posix_spawnp",
];
/// Calls that decode data (executing their result is decode-then-execute).
const DECODERS: &[&str] = &[
    "base64.b64decode",
    "base64.b32decode",
    "base64.b16decode",
    "base64.a85decode",
    "base64.b85decode",
    "base64.urlsafe_b64decode",
    "base64.decodebytes",
    "codecs.decode",
    "zlib.decompress",
    "bz2.decompress",
    "lzma.decompress",
    "gzip.decompress",
    "marshal.loads",
    "binascii.unhexlify",
    "binascii.a2b_base64",
    "bytes.fromhex",
];
/// Serializers: the whole environment passed here is collected.
const SERIALIZE: &[&str] = &[
    "json.dumps",
    "json.dump",
    "str",
    "repr",
    "print",
    "pprint.pprint",
    "pprint.pformat",
    "pickle.dumps",
    "yaml.dump",
    "yaml.safe_dump",
    "base64.b64encode",
    "urllib.parse.urlencode",
];
/// Consumers that enumerate their argument.
const ITERATE: &[&str] = &["list", "sorted", "tuple", "set", "enumerate", "iter"];
/// File-writing calls (besides `open` with a write mode).
const WRITES: &[&str] = &[
    "shutil.copy",
    "shutil.copy2",
    "shutil.copyfile",
    "shutil.move",
    "os.symlink",
    "os.rename",
    "os.replace",
];
/// Path-building calls whose literal arguments are joined before the path tables are consulted.
const PATH_JOINS: &[&str] = &[
    "os.path.join",
    "os.path.expanduser",
    "pathlib.Path",
    "pathlib.PurePath",
    "pathlib.PosixPath",
];

struct Cx<'a> {
    src: &'a str,
    aliases: HashMap<String, String>,
    star: Vec<String>,
    out: FileScan,
}

fn text<'a>(n: Node<'_>, src: &'a str) -> &'a str {
    src.get(n.byte_range()).unwrap_or("")
}

fn unwrap(mut n: Node<'_>) -> Node<'_> {
    while matches!(n.kind(), "parenthesized_expression" | "await") {
        match n.named_child(0) {
            Some(c) => n = c,
            None => break,
        }
    }
    n
}

impl Cx<'_> {
    fn t(&self, n: Node<'_>) -> &str {
        text(n, self.src)
    }

    /// The decoded value of a string (f-strings: their constant parts), implicit concatenations and
    /// `+` of those; `None` for anything computed.
    fn literal(&self, n: Node<'_>) -> Option<String> {
        let n = unwrap(n);
        match n.kind() {
            "string" => {
                let mut c = n.walk();
                if n.named_children(&mut c)
                    .any(|k| k.kind() == "interpolation")
                {
                    return None;
                }
                Some(self.string_value(n))
            }
            "concatenated_string" => {
                let mut c = n.walk();
                let parts: Vec<Node<'_>> = n.named_children(&mut c).collect();
                parts.iter().map(|p| self.literal(*p)).collect()
            }
            "binary_operator"
                if n.child_by_field_name("operator")
                    .is_some_and(|o| self.t(o) == "+") =>
            {
                let l = self.literal(n.child_by_field_name("left")?)?;
                let r = self.literal(n.child_by_field_name("right")?)?;
                Some(l + &r)
            }
            _ => None,
        }
    }

    /// A string's text (prefix and quotes removed, escapes decoded unless raw; f-string holes dropped).
    fn string_value(&self, n: Node<'_>) -> String {
        let t = self.t(n);
        let prefix: String = t.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        let raw = prefix.contains(['r', 'R']);
        let mut out = String::new();
        let mut c = n.walk();
        for k in n.named_children(&mut c) {
            if matches!(k.kind(), "string_content" | "escape_sequence") {
                let s = self.t(k);
                if raw {
                    out.push_str(s);
                } else {
                    out.push_str(&text::unescape(s));
                }
            }
        }
        out
    }

    fn path_of(&self, n: Node<'_>) -> Option<(String, bool)> {
        let n = unwrap(n);
        match n.kind() {
            "identifier" => {
                let t = self.t(n);
                Some(match self.aliases.get(t) {
                    Some(a) => (a.clone(), true),
                    None => (t.to_owned(), false),
                })
            }
            "attribute" => {
                let (o, r) = self.path_of(n.child_by_field_name("object")?)?;
                let a = self.t(n.child_by_field_name("attribute")?);
                Some((format!("{o}.{a}"), r))
            }
            "call" => {
                let (f, resolved) = self.path_of(n.child_by_field_name("function")?)?;
                let args = self.args(n);
                match (f.as_str(), resolved) {
                    ("__import__", false) | ("importlib.import_module", true) => {
                        let m = self.literal(*args.first()?)?;
                        Some((m, true))
                    }
                    ("getattr", false) => {
                        let (o, r) = self.path_of(*args.first()?)?;
                        let a = self.literal(*args.get(1)?)?;
                        Some((format!("{o}.{a}"), r))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Positional arguments.
    fn args<'t>(&self, call: Node<'t>) -> Vec<Node<'t>> {
        let Some(a) = call.child_by_field_name("arguments") else {
            return Vec::new();
        };
        let mut c = a.walk();
        a.named_children(&mut c)
            .filter(|k| !matches!(k.kind(), "keyword_argument" | "comment"))
            .collect()
    }

    fn kwarg<'t>(&self, call: Node<'t>, name: &str) -> Option<Node<'t>> {
        let a = call.child_by_field_name("arguments")?;
        let mut c = a.walk();
        a.named_children(&mut c)
            .filter(|k| k.kind() == "keyword_argument")
            .find(|k| {
                k.child_by_field_name("name")
                    .is_some_and(|n| self.t(n) == name)
            })
            .and_then(|k| k.child_by_field_name("value"))
    }

    fn bind_import(&mut self, n: Node<'_>) {
        let mut c = n.walk();
        let names: Vec<Node<'_>> = n.children_by_field_name("name", &mut c).collect();
        for name in names {
            match name.kind() {
                "dotted_name" => {
                    let full = self.t(name);
                    let first = full.split('.').next().unwrap_or(full).to_owned();
                    self.aliases.insert(first.clone(), first);
                }
                "aliased_import" => {
                    if let (Some(m), Some(a)) = (
                        name.child_by_field_name("name"),
                        name.child_by_field_name("alias"),
                    ) {
                        self.aliases
                            .insert(self.t(a).to_owned(), self.t(m).to_owned());
                    }
                }
                _ => {}
            }
        }
    }

    fn bind_from(&mut self, n: Node<'_>) {
        let Some(m) = n.child_by_field_name("module_name") else {
            return;
        };
        if m.kind() != "dotted_name" {
            return; // relative: the package's own modules
        }
        let module = self.t(m).to_owned();
        let mut c = n.walk();
        let mut star = false;
        for k in n.named_children(&mut c) {
            if k.kind() == "wildcard_import" {
                star = true;
            }
        }
        if star {
            self.star.push(module.clone());
        }
        let mut c = n.walk();
        let names: Vec<Node<'_>> = n.children_by_field_name("name", &mut c).collect();
        for name in names {
            match name.kind() {
                "dotted_name" => {
                    let t = self.t(name).to_owned();
                    self.aliases.insert(t.clone(), format!("{module}.{t}"));
                }
                "aliased_import" => {
                    if let (Some(x), Some(a)) = (
                        name.child_by_field_name("name"),
                        name.child_by_field_name("alias"),
                    ) {
                        self.aliases
                            .insert(self.t(a).to_owned(), format!("{module}.{}", self.t(x)));
                    }
                }
                _ => {}
            }
        }
    }

    fn bind_assignment(&mut self, n: Node<'_>) {
        let (Some(l), Some(r)) = (
            n.child_by_field_name("left"),
            n.child_by_field_name("right"),
        ) else {
            return;
        };
        if l.kind() != "identifier" {
            return;
        }
        if let Some((p, true)) = self.path_of(r) {
            self.aliases.insert(self.t(l).to_owned(), p);
        }
    }

    /// The callee path, trying `from m import *` modules for bare names that resolved to nothing.
    fn callee(&self, f: Node<'_>, table_hit: impl Fn(&str) -> bool) -> Option<(String, bool)> {
        let (p, resolved) = self.path_of(f)?;
        if resolved || p.contains('.') {
            return Some((p, resolved));
        }
        for m in &self.star {
            let cand = format!("{m}.{p}");
            if table_hit(&cand) {
                return Some((cand, true));
            }
        }
        Some((p, false))
    }

    fn contains_decoder(&self, n: Node<'_>) -> bool {
        let mut stack = vec![n];
        let mut budget = 10_000;
        while let Some(k) = stack.pop() {
            budget -= 1;
            if budget == 0 {
                return false;
            }
            if k.kind() == "call"
                && let Some(f) = k.child_by_field_name("function")
            {
                if let Some((p, _)) = self.path_of(f)
                    && (DECODERS.contains(&p.as_str())
                        || p.ends_with(".fromhex")
                        || p.ends_with(".b64decode")
                        || p.ends_with(".decompress"))
                {
                    return true;
                }
                // `"…".decode("base64")`, `codecs`-style rot13 through `.decode`/`.encode`.
                if f.kind() == "attribute"
                    && f.child_by_field_name("attribute")
                        .is_some_and(|a| matches!(self.t(a), "decode" | "encode"))
                    && self
                        .args(k)
                        .first()
                        .and_then(|a| self.literal(*a))
                        .is_some_and(|c| {
                            matches!(
                                c.to_ascii_lowercase().as_str(),
                                "base64" | "rot13" | "rot_13" | "hex" | "zlib" | "bz2"
                            )
                        })
                {
                    return true;
                }
            }
            let mut c = k.walk();
            stack.extend(k.children(&mut c));
        }
        false
    }
}

fn module_table_hit(p: &str) -> bool {
    net_kind(p).is_some() || SHELL_ALWAYS.contains(&p) || SPAWN.contains(&p)
}

fn net_kind(path: &str) -> Option<Severity> {
    for (m, s) in NET_MODULES {
        if let Some(rest) = path.strip_prefix(m).and_then(|r| r.strip_prefix('.'))
            && NET_VERBS.contains(&rest)
        {
            return Some(*s);
        }
    }
    None
}

/// Analyzes one parsed Python file.
pub(crate) fn scan(src: &str, root: Node<'_>) -> FileScan {
    let mut cx = Cx {
        src,
        aliases: HashMap::new(),
        star: Vec::new(),
        out: FileScan::default(),
    };
    let mut calls = Vec::new();
    let mut strings = Vec::new();
    let mut env_uses = Vec::new();
    let mut loops = Vec::new();
    let mut folds = Vec::new();
    let mut stack: Vec<(Node<'_>, Option<Node<'_>>)> = vec![(root, None)];
    let mut cursor = root.walk();
    while let Some((n, parent)) = stack.pop() {
        match n.kind() {
            "comment" => continue,
            "import_statement" => cx.bind_import(n),
            "import_from_statement" => cx.bind_from(n),
            "assignment" => cx.bind_assignment(n),
            "call" => calls.push(n),
            "string" => {
                // A bare string statement is a docstring: prose, not data.
                if parent.is_none_or(|p| p.kind() != "expression_statement") {
                    strings.push(n);
                }
                continue;
            }
            "concatenated_string" if parent.is_none_or(|p| p.kind() != "expression_statement") => {
                folds.push(n);
            }
            "attribute"
                if cx
                    .path_of(n)
                    .is_some_and(|(p, r)| r && (p == "os.environ" || p == "os.environb")) =>
            {
                env_uses.push((n, parent));
            }
            "identifier" => {
                let t = cx.t(n);
                let assigned = parent.is_some_and(|p| {
                    p.kind() == "assignment"
                        && p.child_by_field_name("left")
                            .is_some_and(|l| l.id() == n.id())
                });
                let is_object_of_attr = parent.is_some_and(|p| p.kind() == "attribute");
                if !assigned
                    && !is_object_of_attr
                    && cx.aliases.get(t).is_some_and(|p| p == "os.environ")
                {
                    env_uses.push((n, parent));
                }
                let obf = t.len() >= 8
                    && (t.bytes().all(|b| b == b'O' || b == b'0')
                        || t.bytes().all(|b| matches!(b, b'l' | b'I' | b'1')));
                if obf || t.starts_with("__pyarmor") {
                    cx.out.facts.obfuscated_ids += if obf { 1 } else { 10 };
                    if cx.out.facts.first_obfuscated.is_none() {
                        cx.out.facts.first_obfuscated = Some(n.byte_range());
                    }
                }
            }
            "for_statement" | "for_in_clause" => loops.push(n),
            "binary_operator" => {
                let op = |k: Node<'_>| {
                    k.kind() == "binary_operator"
                        && k.child_by_field_name("operator")
                            .is_some_and(|o| matches!(cx.t(o), "+" | "/"))
                };
                if op(n) && parent.is_none_or(|p| !op(p)) {
                    folds.push(n);
                }
            }
            _ => {}
        }
        // Through a cursor: `Node::child(i)` walks from the first child, quadratic on wide nodes.
        let at = stack.len();
        stack.extend(n.children(&mut cursor).map(|c| (c, Some(n))));
        stack[at..].reverse();
    }

    let mut net_args: Vec<Range<usize>> = Vec::new();
    for &c in &calls {
        check_call(&mut cx, c, &mut net_args);
    }
    for &s in &strings {
        let mut c = s.walk();
        let fstring = s
            .named_children(&mut c)
            .any(|k| k.kind() == "interpolation");
        let value = cx.string_value(s);
        let raw = cx.t(s).to_owned();
        // In an f-string only the constant parts are known; they are still checked for paths.
        let checks = if fstring {
            literal::Checks {
                paths: true,
                entropy: false,
            }
        } else {
            literal::ALL
        };
        literal::check(&mut cx.out, &value, &raw, s.byte_range(), checks);
    }
    for &f in &folds {
        check_fold(&mut cx, f);
    }
    for &l in &loops {
        if let Some(r) = l.child_by_field_name("right")
            && cx
                .path_of(r)
                .is_some_and(|(p, res)| res && (p == "os.environ" || p == "os.environb"))
        {
            let (sev, msg) = if filtered_comprehension(l) {
                (
                    Severity::Low,
                    "enumerates environment variables and filters them (a comprehension with `if`)",
                )
            } else {
                (
                    Severity::Medium,
                    "iterates over every environment variable (`for … in os.environ`)",
                )
            };
            cx.out.harvest(cx.src, r.byte_range(), sev, msg.into());
        }
    }
    for &(e, parent) in &env_uses {
        check_env_use(&mut cx, e, parent, &net_args);
    }
    cx.out
}

fn check_env_use(
    cx: &mut Cx<'_>,
    n: Node<'_>,
    parent: Option<Node<'_>>,
    net_args: &[Range<usize>],
) {
    let Some(p) = parent else { return };
    if net_args
        .iter()
        .any(|r| r.start <= n.start_byte() && n.end_byte() <= r.end)
    {
        cx.out.harvest(
            cx.src,
            n.byte_range(),
            Severity::High,
            "sends the whole environment (`os.environ`) in a network request".into(),
        );
        return;
    }
    match p.kind() {
        "attribute"
            if p.child_by_field_name("object")
                .is_some_and(|o| o.id() == n.id()) =>
        {
            let attr = p
                .child_by_field_name("attribute")
                .map(|a| cx.t(a))
                .unwrap_or("");
            let called = p.parent().is_some_and(|c| c.kind() == "call");
            if called && matches!(attr, "items" | "keys" | "values") {
                let call = p.parent().unwrap_or(p);
                // Where do the items go? Into a serializer: collected.
                let serialized = call
                    .parent()
                    .filter(|a| a.kind() == "argument_list")
                    .and_then(|a| a.parent())
                    .and_then(|c| c.child_by_field_name("function"))
                    .and_then(|f| cx.path_of(f))
                    .is_some_and(|(f, _)| SERIALIZE.contains(&f.as_str()) || f == "dict");
                let filtered = call
                    .parent()
                    .is_some_and(|c| c.kind() == "for_in_clause" && filtered_comprehension(c));
                let (sev, msg) = if filtered && !serialized {
                    (
                        Severity::Low,
                        format!(
                            "enumerates environment variables and filters them (`os.environ.{attr}()` in a comprehension with `if`)"
                        ),
                    )
                } else if serialized {
                    (
                        Severity::High,
                        format!("serializes every environment variable (`os.environ.{attr}()`)"),
                    )
                } else {
                    (
                        Severity::Medium,
                        format!("enumerates every environment variable (`os.environ.{attr}()`)"),
                    )
                };
                cx.out.harvest(cx.src, call.byte_range(), sev, msg);
            }
        }
        "argument_list" => {
            let Some(call) = p.parent() else { return };
            let Some((f, _)) = call
                .child_by_field_name("function")
                .and_then(|f| cx.path_of(f))
            else {
                return;
            };
            if SERIALIZE.contains(&f.as_str()) {
                cx.out.harvest(
                    cx.src,
                    call.byte_range(),
                    Severity::High,
                    format!("serializes the whole environment (`{f}(os.environ)`)"),
                );
            } else if ITERATE.contains(&f.as_str()) {
                cx.out.harvest(
                    cx.src,
                    call.byte_range(),
                    Severity::Medium,
                    format!("enumerates every environment variable (`{f}(os.environ)`)"),
                );
            }
        }
        "interpolation" => cx.out.harvest(
            cx.src,
            n.byte_range(),
            Severity::High,
            "formats the whole environment into a string".into(),
        ),
        _ => {}
    }
}

/// Whether a `for … in` clause belongs to a comprehension that filters with `if` (a config reader
/// picking its prefix, not a collector).
fn filtered_comprehension(clause: Node<'_>) -> bool {
    if clause.kind() != "for_in_clause" {
        return false;
    }
    clause.parent().is_some_and(|c| {
        let mut w = c.walk();
        c.named_children(&mut w).any(|k| k.kind() == "if_clause")
    })
}

fn check_call(cx: &mut Cx<'_>, call: Node<'_>, net_args: &mut Vec<Range<usize>>) {
    let Some(f) = call.child_by_field_name("function") else {
        return;
    };
    let Some((path, resolved)) = cx.callee(f, module_table_hit) else {
        return;
    };
    let args = cx.args(call);
    let range = call.byte_range();
    let evidence = || excerpt(cx.src, &range);
    let last = path.rsplit('.').next().unwrap_or("");
    if matches!(last, "write_text" | "write_bytes") || (resolved && WRITES.contains(&path.as_str()))
    {
        cx.out.facts.writes = true;
    }
    if (path == "open" && !resolved) || last == "open" {
        let mode = cx
            .kwarg(call, "mode")
            .or_else(|| {
                let i = if path == "open" { 1 } else { 0 };
                args.get(i).copied()
            })
            .and_then(|m| cx.literal(m));
        if mode.is_some_and(|m| m.contains(['w', 'a', 'x', '+'])) {
            cx.out.facts.writes = true;
        }
    }
    if resolved && let Some(base) = net_kind(&path) {
        let url = args.first().and_then(|a| cx.literal(*a));
        let (severity, dest) = literal::destination(url.as_deref(), base);
        if let Some(a) = call.child_by_field_name("arguments") {
            net_args.push(a.byte_range());
        }
        if cx.out.facts.network.is_none() {
            cx.out.facts.network = Some((range.clone(), format!("`{path}`")));
        }
        let e = evidence();
        cx.out.hit(
            &rules::OUTBOUND_NETWORK,
            severity,
            range.clone(),
            format!("`{path}` connects to {dest}"),
            e,
        );
        return;
    }
    let shell_always = resolved && SHELL_ALWAYS.contains(&path.as_str());
    if shell_always || (resolved && SPAWN.contains(&path.as_str())) {
        let shell_kw = cx
            .kwarg(call, "shell")
            .is_some_and(|v| !matches!(cx.t(v), "False" | "None" | "0"));
        let command = args.first().and_then(|a| cx.literal(*a));
        let e = evidence();
        if shell_always || shell_kw {
            let how = if shell_always {
                "runs a shell command"
            } else {
                "runs a command with `shell=True`"
            };
            let (severity, detail) = match &command {
                Some(c) if literal::downloads_and_runs(c) => (
                    Severity::High,
                    format!(
                        "that downloads and runs a script: `{}`",
                        text::snippet(c, 60)
                    ),
                ),
                Some(c) => (Severity::Medium, format!("`{}`", text::snippet(c, 60))),
                None => (
                    Severity::High,
                    "built at run time (shell injection if any part is an argument)".into(),
                ),
            };
            cx.out.hit(
                &rules::SHELL_COMMAND,
                severity,
                range.clone(),
                format!("`{path}` {how} {detail}"),
                e,
            );
        } else {
            let program = args.first().and_then(|a| {
                let a = unwrap(*a);
                if a.kind() == "list" {
                    a.named_child(0).and_then(|x| cx.literal(x))
                } else {
                    cx.literal(a)
                }
            });
            let what = match program {
                Some(p) => format!("starts `{}`", text::snippet(&p, 40)),
                None => "starts a program named at run time".into(),
            };
            cx.out.hit(
                &rules::PROCESS_SPAWN,
                Severity::Low,
                range.clone(),
                format!("`{path}` {what}"),
                e,
            );
        }
        return;
    }
    if !resolved && matches!(path.as_str(), "exec" | "eval" | "compile") {
        let e = evidence();
        let code = args.first().copied();
        let (rule, severity, msg) = match code {
            Some(c) if cx.contains_decoder(c) => (
                &rules::PACKED_CODE,
                Severity::High,
                format!("`{path}` executes decoded data (decode-then-execute)"),
            ),
            Some(c) if cx.literal(c).is_some() => (
                &rules::DYNAMIC_CODE,
                Severity::Medium,
                format!("`{path}` evaluates a constant string"),
            ),
            _ => (
                &rules::DYNAMIC_CODE,
                Severity::High,
                format!("`{path}` evaluates code built at run time"),
            ),
        };
        cx.out.hit(rule, severity, range.clone(), msg, e);
        return;
    }
    let importer = (!resolved && path == "__import__")
        || (resolved
            && matches!(
                path.as_str(),
                "importlib.import_module"
                    | "importlib.__import__"
                    | "runpy.run_path"
                    | "runpy.run_module"
                    | "imp.load_source"
            ));
    if importer {
        if args.first().and_then(|a| cx.literal(*a)).is_none() {
            let e = evidence();
            cx.out.hit(
                &rules::DYNAMIC_IMPORT,
                Severity::Medium,
                range.clone(),
                format!("`{path}` loads a module named at run time"),
                e,
            );
        }
        return;
    }
    if resolved && path == "marshal.loads" {
        let e = evidence();
        cx.out.hit(
            &rules::PACKED_CODE,
            Severity::Medium,
            range.clone(),
            "`marshal.loads` turns bytes into a code object".into(),
            e,
        );
        return;
    }
    if (resolved && PATH_JOINS.contains(&path.as_str())) || last == "joinpath" {
        let parts: Vec<String> = args.iter().filter_map(|a| cx.literal(*a)).collect();
        literal::check_path_join(&mut cx.out, &parts, range.clone());
    }
}

/// Constant pieces of `+` / `/` chains and implicit concatenations, joined.
fn check_fold(cx: &mut Cx<'_>, n: Node<'_>) {
    let mut leaves = Vec::new();
    let mut stack = vec![n];
    let mut slash = false;
    while let Some(k) = stack.pop() {
        let k = unwrap(k);
        let op = k
            .child_by_field_name("operator")
            .map(|o| cx.t(o))
            .unwrap_or("");
        if k.kind() == "binary_operator" && matches!(op, "+" | "/") {
            slash |= op == "/";
            stack.extend(k.child_by_field_name("right"));
            stack.extend(k.child_by_field_name("left"));
        } else if k.kind() == "concatenated_string" {
            for i in (0..k.named_child_count()).rev() {
                stack.extend(k.named_child(i as u32));
            }
        } else {
            leaves.push(k);
        }
        if leaves.len() > 512 {
            return;
        }
    }
    let lits: Vec<Option<String>> = leaves
        .iter()
        .map(|l| {
            if l.kind() == "string" {
                Some(cx.string_value(*l))
            } else {
                None
            }
        })
        .collect();
    literal::check_joined(
        &mut cx.out,
        &lits,
        if slash { "/" } else { "" },
        n.byte_range(),
    );
}
