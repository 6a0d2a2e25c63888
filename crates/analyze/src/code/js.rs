//! JavaScript and TypeScript: one walk over the tree collects imports, aliases, calls and literals;
//! calls are then resolved through the file's bindings and matched against the tables below.
//!
//! Resolution is deliberately simple and local: `const cp = require("child_process")`, `import * as cp
//! from "node:child_process"`, `import {exec as run} from "child_process"`, `const {exec} =
//! require("child_process")`, `import cp = require("child_process")` and `const env = process.env` are
//! followed; values passed through functions or object properties are not. A module-table entry only
//! matches a callee that resolved through an import, so a local function that happens to be called
//! `request` is not an HTTP client.

use std::collections::HashMap;
use std::ops::Range;

use palisade_scan::report::Severity;
use tree_sitter::Node;

use super::literal;
use super::{FileScan, excerpt};
use crate::rules;
use crate::text;

/// Global functions and constructors that reach the network.
const NET_GLOBALS: &[&str] = &[
    "fetch",
    "XMLHttpRequest",
    "WebSocket",
    "EventSource",
    "navigator.sendBeacon",
];
/// Built-in module functions that reach the network, and how alarming they are on their own.
const NET_BUILTINS: &[(&str, Severity)] = &[
    ("http.request", Severity::Low),
    ("http.get", Severity::Low),
    ("https.request", Severity::Low),
    ("https.get", Severity::Low),
    ("http2.connect", Severity::Low),
    ("net.connect", Severity::Medium),
    ("net.createConnection", Severity::Medium),
    ("net.Socket", Severity::Medium),
    ("tls.connect", Severity::Medium),
    ("dgram.createSocket", Severity::Medium),
];
/// Packages (and `dns`) any of whose request functions reach the network.
const NET_MODULES: &[&str] = &[
    "axios",
    "node-fetch",
    "got",
    "undici",
    "superagent",
    "needle",
    "request",
    "ws",
    "cross-fetch",
    "isomorphic-fetch",
    "ky",
    "phin",
    "socket.io-client",
    "dns",
];
/// Functions of those packages that send (the module itself, when called, does too).
const NET_VERBS: &[&str] = &[
    "get",
    "post",
    "put",
    "patch",
    "delete",
    "del",
    "head",
    "options",
    "request",
    "fetch",
    "stream",
    "connect",
    "Client",
    "Pool",
    "Agent",
    "WebSocket",
    "lookup",
    "resolve",
    "resolve4",
    "resolve6",
    "resolveTxt",
    "resolveAny",
    "resolveCname",
    "resolveMx",
    "resolveNs",
];
/// Always through a shell.
const SHELL_ALWAYS: &[&str] = &[
    "child_process.exec",
    "child_process.execSync",
    "shelljs.exec",
];
/// A program directly, or through a shell when the options say `shell`.
const SPAWN: &[&str] = &[
    "child_process.spawn",
    "child_process.spawnSync",
    "child_process.execFile",
    "child_process.execFileSync",
    "child_process.fork",
    "cross-spawn",
    "cross-spawn.sync",
    "cross-spawn.spawn",
    "execa",
    "execa.execa",
    "execa.execaSync",
    "execa.execaCommand",
    "execa.execaCommandSync",
    "execa.execaNode",
];
/// `vm` functions that compile or run code.
const VM: &[&str] = &[
    "vm.runInThisContext",
    "vm.runInNewContext",
    "vm.runInContext",
    "vm.compileFunction",
    "vm.Script",
    "vm.SourceTextModule",
];
/// Calls that turn encoded data into a string (evaluating their result is decode-then-execute).
const DECODERS: &[&str] = &[
    "atob",
    "Buffer.from",
    "decodeURIComponent",
    "unescape",
    "String.fromCharCode",
    "zlib.inflateSync",
    "zlib.gunzipSync",
    "zlib.inflateRawSync",
    "zlib.brotliDecompressSync",
];
/// Calls that serialize their argument (the whole environment passed here is collected).
const SERIALIZE: &[&str] = &[
    "JSON.stringify",
    "util.inspect",
    "String",
    "Buffer.from",
    "btoa",
    "encodeURIComponent",
    "console.log",
    "console.error",
    "console.info",
    "console.warn",
    "console.debug",
    "console.dir",
    "process.stdout.write",
    "querystring.stringify",
    "URLSearchParams",
];
/// Calls that enumerate their argument's keys or entries.
const ITERATE: &[&str] = &[
    "Object.keys",
    "Object.values",
    "Object.entries",
    "Object.getOwnPropertyNames",
    "Reflect.ownKeys",
];
/// Method names that write files (matched on the last segment, whatever the receiver).
const WRITES: &[&str] = &[
    "writeFile",
    "writeFileSync",
    "appendFile",
    "appendFileSync",
    "createWriteStream",
    "copyFile",
    "copyFileSync",
    "cp",
    "cpSync",
    "symlink",
    "symlinkSync",
    "outputFile",
    "outputFileSync",
];
/// Path-building calls whose literal arguments are joined before the path tables are consulted.
const PATH_JOINS: &[&str] = &[
    "path.join",
    "path.resolve",
    "path.posix.join",
    "path.win32.join",
];
/// Roots that may be bound to a local name without an import (`const env = process.env`).
const GLOBAL_ROOTS: &[&str] = &["process", "globalThis", "global", "window", "Buffer"];

struct Cx<'a> {
    src: &'a str,
    aliases: HashMap<String, String>,
    out: FileScan,
}

fn text<'a>(n: Node<'_>, src: &'a str) -> &'a str {
    src.get(n.byte_range()).unwrap_or("")
}

/// Strips wrappers that do not change what an expression is: parentheses, TypeScript casts, `!`,
/// `await`, and the comma operator's last operand (`(0, eval)(x)`).
fn unwrap(mut n: Node<'_>) -> Node<'_> {
    loop {
        let next = match n.kind() {
            "parenthesized_expression"
            | "as_expression"
            | "non_null_expression"
            | "satisfies_expression"
            | "type_assertion"
            | "await_expression" => n.named_child(0),
            "sequence_expression" => n
                .named_child_count()
                .checked_sub(1)
                .and_then(|i| n.named_child(i as u32)),
            _ => None,
        };
        match next {
            Some(c) if c.kind() != "type_arguments" => n = c,
            _ => return n,
        }
    }
}

/// `node:fs/promises` → `fs`; other specifiers unchanged.
fn module_name(spec: &str) -> String {
    let s = spec.strip_prefix("node:").unwrap_or(spec);
    let s = s.strip_suffix("/promises").unwrap_or(s);
    s.to_owned()
}

fn normalize(path: String) -> String {
    let mut p = path.as_str();
    for g in ["globalThis.", "global.", "window.", "self."] {
        if let Some(rest) = p.strip_prefix(g) {
            p = rest;
        }
    }
    p.replace(".promises.", ".")
        .replace(".default.", ".")
        .trim_end_matches(".default")
        .to_owned()
}

impl Cx<'_> {
    fn t(&self, n: Node<'_>) -> &str {
        text(n, self.src)
    }

    /// The decoded value of a string literal, a template without substitutions, or a `+` of those.
    fn literal(&self, n: Node<'_>) -> Option<String> {
        let n = unwrap(n);
        match n.kind() {
            "string" => {
                let t = self.t(n);
                Some(text::unescape(
                    t.get(1..t.len().saturating_sub(1)).unwrap_or(""),
                ))
            }
            "template_string" => {
                let mut c = n.walk();
                if n.named_children(&mut c)
                    .any(|k| k.kind() == "template_substitution")
                {
                    return None;
                }
                let t = self.t(n);
                Some(text::unescape(
                    t.get(1..t.len().saturating_sub(1)).unwrap_or(""),
                ))
            }
            "binary_expression"
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

    /// The text of a string or template literal with substitutions dropped (`${home}/.ssh` → `/.ssh`).
    fn fragments(&self, n: Node<'_>) -> String {
        if n.kind() == "string" {
            return self.literal(n).unwrap_or_default();
        }
        let mut out = String::new();
        let mut c = n.walk();
        for k in n.named_children(&mut c) {
            if matches!(k.kind(), "string_fragment" | "escape_sequence") {
                out.push_str(&text::unescape(self.t(k)));
            }
        }
        out
    }

    /// The dotted path an expression names, and whether its root came from an import or binding.
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
            "member_expression" => {
                let (o, r) = self.path_of(n.child_by_field_name("object")?)?;
                let p = self.t(n.child_by_field_name("property")?);
                Some((normalize(format!("{o}.{p}")), r))
            }
            "subscript_expression" => {
                let (o, r) = self.path_of(n.child_by_field_name("object")?)?;
                let p = self.literal(n.child_by_field_name("index")?)?;
                Some((normalize(format!("{o}.{p}")), r))
            }
            "call_expression" => {
                let f = unwrap(n.child_by_field_name("function")?);
                let is_require = f.kind() == "identifier" && self.t(f) == "require";
                if is_require || f.kind() == "import" {
                    let spec = self.literal(self.first_arg(n)?)?;
                    return Some((module_name(&spec), true));
                }
                None
            }
            _ => None,
        }
    }

    fn args<'t>(&self, call: Node<'t>) -> Vec<Node<'t>> {
        let Some(a) = call.child_by_field_name("arguments") else {
            return Vec::new();
        };
        if a.kind() != "arguments" {
            return Vec::new();
        }
        let mut c = a.walk();
        a.named_children(&mut c)
            .filter(|k| k.kind() != "comment")
            .collect()
    }

    fn first_arg<'t>(&self, call: Node<'t>) -> Option<Node<'t>> {
        let a = call.child_by_field_name("arguments")?;
        let mut c = a.walk();
        a.named_children(&mut c).find(|k| k.kind() != "comment")
    }

    fn bind(&mut self, name: Node<'_>, value: Node<'_>) {
        let value = unwrap(value);
        let Some((path, resolved)) = self.path_of(value) else {
            return;
        };
        let root = path.split('.').next().unwrap_or("");
        if !resolved && !GLOBAL_ROOTS.contains(&root) {
            return;
        }
        self.bind_pattern(name, &path);
    }

    fn bind_pattern(&mut self, name: Node<'_>, path: &str) {
        match name.kind() {
            "identifier" => {
                self.aliases
                    .insert(self.t(name).to_owned(), path.to_owned());
            }
            "object_pattern" => {
                let mut c = name.walk();
                for p in name.named_children(&mut c) {
                    match p.kind() {
                        "shorthand_property_identifier_pattern" => {
                            let k = self.t(p).to_owned();
                            self.aliases
                                .insert(k.clone(), normalize(format!("{path}.{k}")));
                        }
                        "pair_pattern" => {
                            let (Some(k), Some(v)) =
                                (p.child_by_field_name("key"), p.child_by_field_name("value"))
                            else {
                                continue;
                            };
                            let v = if v.kind() == "assignment_pattern" {
                                v.child_by_field_name("left").unwrap_or(v)
                            } else {
                                v
                            };
                            let key = self.literal(k).unwrap_or_else(|| self.t(k).to_owned());
                            self.bind_pattern(v, &normalize(format!("{path}.{key}")));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn bind_import(&mut self, n: Node<'_>) {
        let Some(src) = n.child_by_field_name("source") else {
            return;
        };
        let Some(spec) = self.literal(src) else {
            return;
        };
        self.note_import(&spec);
        let m = module_name(&spec);
        let mut c = n.walk();
        let clauses: Vec<Node<'_>> = n.named_children(&mut c).collect();
        for clause in clauses {
            match clause.kind() {
                "import_clause" => {
                    let mut c2 = clause.walk();
                    let parts: Vec<Node<'_>> = clause.named_children(&mut c2).collect();
                    for part in parts {
                        match part.kind() {
                            "identifier" => {
                                self.aliases.insert(self.t(part).to_owned(), m.clone());
                            }
                            "namespace_import" => {
                                if let Some(id) = part.named_child(0) {
                                    self.aliases.insert(self.t(id).to_owned(), m.clone());
                                }
                            }
                            "named_imports" => {
                                let mut c3 = part.walk();
                                let specs: Vec<Node<'_>> = part.named_children(&mut c3).collect();
                                for s in specs {
                                    let Some(name) = s.child_by_field_name("name") else {
                                        continue;
                                    };
                                    let local = s.child_by_field_name("alias").unwrap_or(name);
                                    let imported =
                                        self.t(name).trim_matches(['"', '\'']).to_owned();
                                    self.aliases.insert(
                                        self.t(local).to_owned(),
                                        normalize(format!("{m}.{imported}")),
                                    );
                                }
                            }
                            _ => {}
                        }
                    }
                }
                "import_require_clause" => {
                    if let Some(id) = clause.named_child(0) {
                        let spec = clause
                            .child_by_field_name("source")
                            .and_then(|s| self.literal(s))
                            .unwrap_or(spec.clone());
                        self.aliases
                            .insert(self.t(id).to_owned(), module_name(&spec));
                    }
                }
                _ => {}
            }
        }
    }

    fn note_import(&mut self, spec: &str) {
        if spec.starts_with("./") || spec.starts_with("../") {
            self.out.imports.push(spec.to_owned());
        }
    }

    fn contains_call(&self, n: Node<'_>, names: &[&str]) -> bool {
        let mut stack = vec![n];
        let mut budget = 10_000;
        while let Some(k) = stack.pop() {
            budget -= 1;
            if budget == 0 {
                return false;
            }
            if matches!(k.kind(), "call_expression" | "new_expression") {
                let f = k
                    .child_by_field_name("function")
                    .or_else(|| k.child_by_field_name("constructor"));
                if let Some((p, _)) = f.and_then(|f| self.path_of(f))
                    && names.contains(&p.as_str())
                {
                    return true;
                }
            }
            let mut c = k.walk();
            stack.extend(k.children(&mut c));
        }
        false
    }

    fn is_packer(&self, n: Node<'_>) -> bool {
        let n = unwrap(n);
        if n.kind() != "function_expression" && n.kind() != "function" {
            return false;
        }
        let params = n
            .child_by_field_name("parameters")
            .map(|p| self.t(p).replace(char::is_whitespace, ""))
            .unwrap_or_default();
        params.starts_with("(p,a,c,k,e")
    }
}

/// Analyzes one parsed JavaScript or TypeScript file.
pub(crate) fn scan(src: &str, root: Node<'_>) -> FileScan {
    let mut cx = Cx {
        src,
        aliases: HashMap::new(),
        out: FileScan::default(),
    };
    let mut calls = Vec::new();
    let mut news = Vec::new();
    let mut strings = Vec::new();
    let mut env_uses = Vec::new();
    let mut for_ins = Vec::new();
    let mut sums = Vec::new();
    // (node, its parent): tree-sitter finds a parent by walking down from the root, so the walk
    // carries it instead.
    let mut stack: Vec<(Node<'_>, Option<Node<'_>>)> = vec![(root, None)];
    let mut cursor = root.walk();
    while let Some((n, parent)) = stack.pop() {
        match n.kind() {
            "comment" | "regex" => continue,
            "import_statement" => cx.bind_import(n),
            "export_statement" => {
                if let Some(s) = n.child_by_field_name("source").and_then(|s| cx.literal(s)) {
                    cx.note_import(&s);
                }
            }
            "variable_declarator" => {
                if let (Some(name), Some(value)) = (
                    n.child_by_field_name("name"),
                    n.child_by_field_name("value"),
                ) {
                    cx.bind(name, value);
                }
            }
            "assignment_expression" => {
                if let (Some(l), Some(r)) = (
                    n.child_by_field_name("left"),
                    n.child_by_field_name("right"),
                ) && l.kind() == "identifier"
                {
                    cx.bind(l, r);
                }
            }
            "call_expression" => calls.push(n),
            "new_expression" => news.push(n),
            "string" => {
                strings.push((n, parent));
                continue;
            }
            "template_string" => strings.push((n, parent)),
            "member_expression" => {
                // Cheap test first: building the dotted path allocates.
                let prop_is_env = n
                    .child_by_field_name("property")
                    .is_some_and(|p| cx.t(p) == "env");
                if prop_is_env && cx.path_of(n).is_some_and(|(p, _)| p == "process.env") {
                    env_uses.push((n, parent));
                }
            }
            "identifier" => {
                let t = cx.t(n);
                let binding_site = parent.is_some_and(|p| {
                    p.kind() == "variable_declarator"
                        && p.child_by_field_name("name")
                            .is_some_and(|k| k.id() == n.id())
                });
                if !binding_site && cx.aliases.get(t).is_some_and(|p| p == "process.env") {
                    env_uses.push((n, parent));
                }
                if t.len() >= 7
                    && t.starts_with("_0x")
                    && t[3..].bytes().all(|b| b.is_ascii_hexdigit())
                {
                    cx.out.facts.obfuscated_ids += 1;
                    if cx.out.facts.first_obfuscated.is_none() {
                        cx.out.facts.first_obfuscated = Some(n.byte_range());
                    }
                }
            }
            "for_in_statement" => for_ins.push(n),
            "binary_expression" => {
                let plus = |k: Node<'_>| {
                    k.kind() == "binary_expression"
                        && k.child_by_field_name("operator")
                            .is_some_and(|o| cx.t(o) == "+")
                };
                if plus(n) && parent.is_none_or(|p| !plus(p)) {
                    sums.push(n);
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
    for &n in &news {
        check_new(&mut cx, n, &mut net_args);
    }
    for &(s, parent) in &strings {
        let specifier = parent.is_some_and(|p| {
            matches!(
                p.kind(),
                "import_statement" | "export_statement" | "import_require_clause"
            ) || (p.kind() == "arguments"
                && p.parent()
                    .and_then(|c| c.child_by_field_name("function"))
                    .is_some_and(|f| {
                        f.kind() == "import" || (f.kind() == "identifier" && cx.t(f) == "require")
                    }))
        });
        if specifier {
            continue;
        }
        let value = cx.fragments(s);
        let raw = cx.t(s).to_owned();
        literal::check(&mut cx.out, &value, &raw, s.byte_range(), literal::ALL);
    }
    for &b in &sums {
        check_sum(&mut cx, b);
    }
    for &f in &for_ins {
        if let Some(r) = f.child_by_field_name("right")
            && cx.path_of(r).is_some_and(|(p, _)| p == "process.env")
        {
            cx.out.harvest(
                cx.src,
                r.byte_range(),
                Severity::Medium,
                "iterates over every environment variable (`for … in process.env`)".into(),
            );
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
    let is_object_of = |field: &str| {
        p.child_by_field_name(field)
            .is_some_and(|o| o.id() == n.id())
    };
    match p.kind() {
        "member_expression" | "subscript_expression" if is_object_of("object") => return,
        "for_in_statement" => return, // reported with the loop
        _ => {}
    }
    let inside_net = net_args
        .iter()
        .any(|r| r.start <= n.start_byte() && n.end_byte() <= r.end);
    if inside_net {
        let range = n.byte_range();
        cx.out.harvest(
            cx.src,
            range,
            Severity::High,
            "sends the whole environment (`process.env`) in a network request".into(),
        );
        return;
    }
    let call = match p.kind() {
        "arguments" => p.parent(),
        "template_substitution" => {
            cx.out.harvest(
                cx.src,
                n.byte_range(),
                Severity::High,
                "formats the whole environment into a string".into(),
            );
            return;
        }
        _ => None,
    };
    let Some(call) = call else { return };
    let f = call
        .child_by_field_name("function")
        .or_else(|| call.child_by_field_name("constructor"));
    let Some((path, _)) = f.and_then(|f| cx.path_of(f)) else {
        return;
    };
    let range = call.byte_range();
    if SERIALIZE.contains(&path.as_str()) {
        cx.out.harvest(
            cx.src,
            range,
            Severity::High,
            format!("serializes the whole environment (`{path}(process.env)`)"),
        );
    } else if ITERATE.contains(&path.as_str()) {
        // `Object.keys(process.env).filter(k => k.startsWith("APP_"))` picks a prefix: a config
        // reader, not a collector.
        let filtered = call.parent().is_some_and(|m| {
            m.kind() == "member_expression"
                && m.child_by_field_name("property")
                    .is_some_and(|p| cx.t(p) == "filter")
        });
        if filtered {
            cx.out.harvest(
                cx.src,
                range,
                Severity::Low,
                format!(
                    "enumerates environment variable names and filters them (`{path}(process.env).filter`)"
                ),
            );
        } else {
            cx.out.harvest(
                cx.src,
                range,
                Severity::Medium,
                format!("enumerates every environment variable (`{path}(process.env)`)"),
            );
        }
    }
}

fn net_kind(path: &str, resolved: bool) -> Option<Severity> {
    if !resolved && NET_GLOBALS.contains(&path) {
        return Some(Severity::Low);
    }
    if !resolved {
        return None;
    }
    if let Some((_, s)) = NET_BUILTINS.iter().find(|(p, _)| *p == path) {
        return Some(*s);
    }
    for m in NET_MODULES {
        if path == *m {
            return Some(if *m == "dns" {
                Severity::Medium
            } else {
                Severity::Low
            });
        }
        if let Some(rest) = path.strip_prefix(m).and_then(|r| r.strip_prefix('.'))
            && NET_VERBS.contains(&rest)
        {
            return Some(if *m == "dns" {
                Severity::Medium
            } else {
                Severity::Low
            });
        }
    }
    None
}

fn record_network(
    cx: &mut Cx<'_>,
    call: Node<'_>,
    path: &str,
    base: Severity,
    net_args: &mut Vec<Range<usize>>,
) {
    let url = cx.first_arg(call).and_then(|a| cx.literal(a));
    let (severity, dest) = literal::destination(url.as_deref(), base);
    let range = call.byte_range();
    if let Some(a) = call.child_by_field_name("arguments") {
        net_args.push(a.byte_range());
    }
    if cx.out.facts.network.is_none() {
        cx.out.facts.network = Some((range.clone(), format!("`{path}`")));
    }
    let evidence = excerpt(cx.src, &range);
    cx.out.hit(
        &rules::OUTBOUND_NETWORK,
        severity,
        range,
        format!("`{path}` connects to {dest}"),
        evidence,
    );
}

fn check_dynamic(cx: &mut Cx<'_>, call: Node<'_>, what: &str, code: Option<Node<'_>>) {
    let range = call.byte_range();
    let evidence = excerpt(cx.src, &range);
    let Some(code) = code else {
        cx.out.hit(
            &rules::DYNAMIC_CODE,
            Severity::High,
            range,
            format!("`{what}` evaluates code built at run time"),
            evidence,
        );
        return;
    };
    if cx.is_packer(code) {
        cx.out.hit(
            &rules::PACKED_CODE,
            Severity::High,
            range,
            format!("`{what}(function(p,a,c,k,e,…))`: the signature of a JavaScript packer"),
            evidence,
        );
    } else if cx.contains_call(code, DECODERS) {
        cx.out.hit(
            &rules::PACKED_CODE,
            Severity::High,
            range,
            format!("`{what}` executes decoded data (decode-then-execute)"),
            evidence,
        );
    } else if cx.literal(code).is_some() {
        cx.out.hit(
            &rules::DYNAMIC_CODE,
            Severity::Medium,
            range,
            format!("`{what}` evaluates a constant string"),
            evidence,
        );
    } else {
        cx.out.hit(
            &rules::DYNAMIC_CODE,
            Severity::High,
            range,
            format!("`{what}` evaluates code built at run time"),
            evidence,
        );
    }
}

fn check_process(cx: &mut Cx<'_>, call: Node<'_>, path: &str, always_shell: bool) {
    let args = cx.args(call);
    let command = args.first().and_then(|a| cx.literal(*a));
    let shell_opt = args.iter().any(|a| {
        let a = unwrap(*a);
        if a.kind() != "object" {
            return false;
        }
        let mut c = a.walk();
        a.named_children(&mut c).any(|p| match p.kind() {
            "pair" => {
                p.child_by_field_name("key")
                    .is_some_and(|k| cx.t(k).trim_matches(['"', '\'']) == "shell")
                    && p.child_by_field_name("value").is_some_and(|v| {
                        !matches!(
                            cx.t(v),
                            "false" | "undefined" | "null" | "0" | "''" | "\"\""
                        )
                    })
            }
            "shorthand_property_identifier" => cx.t(p) == "shell",
            _ => false,
        })
    });
    // With `shell: true` the argument array is joined into the command line too.
    let constant_args = args.iter().skip(1).all(|a| {
        let a = unwrap(*a);
        match a.kind() {
            "object" => true,
            "array" => {
                let mut c = a.walk();
                a.named_children(&mut c).all(|e| cx.literal(e).is_some())
            }
            _ => cx.literal(a).is_some(),
        }
    });
    let shell_line = command.clone().filter(|_| always_shell || constant_args);
    let range = call.byte_range();
    let evidence = excerpt(cx.src, &range);
    if always_shell || shell_opt {
        let how = if always_shell {
            "runs a shell command".to_owned()
        } else {
            "runs a command with `shell: true`".to_owned()
        };
        let (severity, detail) = match &shell_line {
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
            range,
            format!("`{path}` {how} {detail}"),
            evidence,
        );
    } else {
        let what = match &command {
            Some(c) => format!("starts `{}`", text::snippet(c, 40)),
            None => "starts a program named at run time".into(),
        };
        cx.out.hit(
            &rules::PROCESS_SPAWN,
            Severity::Low,
            range,
            format!("`{path}` {what}"),
            evidence,
        );
    }
}

fn check_call(cx: &mut Cx<'_>, call: Node<'_>, net_args: &mut Vec<Range<usize>>) {
    let Some(f) = call.child_by_field_name("function") else {
        return;
    };
    let f = unwrap(f);
    let args = cx.args(call);
    if f.kind() == "import" {
        match args.first().and_then(|a| cx.literal(*a)) {
            Some(spec) => cx.note_import(&spec),
            None => {
                let range = call.byte_range();
                let evidence = excerpt(cx.src, &range);
                cx.out.hit(
                    &rules::DYNAMIC_IMPORT,
                    Severity::Medium,
                    range,
                    "`import()` of a module name computed at run time".into(),
                    evidence,
                );
            }
        }
        return;
    }
    let Some((path, resolved)) = cx.path_of(f) else {
        return;
    };
    let last = path.rsplit('.').next().unwrap_or("");
    if WRITES.contains(&last) {
        cx.out.facts.writes = true;
    }
    if path == "require" && !resolved {
        match args.first().and_then(|a| cx.literal(*a)) {
            Some(spec) => cx.note_import(&spec),
            None => {
                let range = call.byte_range();
                let evidence = excerpt(cx.src, &range);
                cx.out.hit(
                    &rules::DYNAMIC_IMPORT,
                    Severity::Medium,
                    range,
                    "`require` of a module name computed at run time".into(),
                    evidence,
                );
            }
        }
        return;
    }
    if let Some(base) = net_kind(&path, resolved) {
        record_network(cx, call, &path, base, net_args);
        return;
    }
    if resolved && SHELL_ALWAYS.contains(&path.as_str()) {
        check_process(cx, call, &path, true);
        return;
    }
    if resolved && SPAWN.contains(&path.as_str()) {
        check_process(cx, call, &path, false);
        return;
    }
    if !resolved && path == "eval" {
        check_dynamic(cx, call, "eval", args.first().copied());
        return;
    }
    if !resolved && path == "Function" {
        check_dynamic(cx, call, "Function", args.last().copied());
        return;
    }
    if resolved && VM.contains(&path.as_str()) {
        check_dynamic(cx, call, &path, args.first().copied());
        return;
    }
    if !resolved
        && matches!(path.as_str(), "setTimeout" | "setInterval" | "setImmediate")
        && args.first().is_some_and(|a| cx.literal(*a).is_some())
    {
        let range = call.byte_range();
        let evidence = excerpt(cx.src, &range);
        cx.out.hit(
            &rules::DYNAMIC_CODE,
            Severity::Medium,
            range,
            format!("`{path}` with a string evaluates it as code"),
            evidence,
        );
        return;
    }
    if path == "String.fromCharCode"
        && args.len() >= 16
        && args.iter().all(|a| a.kind() == "number")
    {
        let range = call.byte_range();
        let evidence = excerpt(cx.src, &range);
        cx.out.hit(
            &rules::PACKED_CODE,
            Severity::Medium,
            range,
            format!(
                "`String.fromCharCode` with {} character codes builds a hidden string",
                args.len()
            ),
            evidence,
        );
        return;
    }
    if resolved && PATH_JOINS.contains(&path.as_str()) {
        let parts: Vec<String> = args.iter().filter_map(|a| cx.literal(*a)).collect();
        literal::check_path_join(&mut cx.out, &parts, call.byte_range());
    }
}

fn check_new(cx: &mut Cx<'_>, n: Node<'_>, net_args: &mut Vec<Range<usize>>) {
    let Some(c) = n.child_by_field_name("constructor") else {
        return;
    };
    let Some((path, resolved)) = cx.path_of(c) else {
        return;
    };
    let args = cx.args(n);
    // `new net.Socket({fd})` wraps a file descriptor (a tty or pipe), it connects nowhere.
    let wraps_fd = path == "net.Socket"
        && args.iter().any(|a| {
            let a = unwrap(*a);
            a.kind() == "object" && {
                let mut c = a.walk();
                a.named_children(&mut c).any(|p| {
                    let key = match p.kind() {
                        "pair" => p.child_by_field_name("key").map(|k| cx.t(k)),
                        "shorthand_property_identifier" => Some(cx.t(p)),
                        _ => None,
                    };
                    key == Some("fd")
                })
            }
        });
    if wraps_fd {
        return;
    }
    if !resolved && path == "Function" {
        check_dynamic(cx, n, "new Function", args.last().copied());
    } else if resolved && VM.contains(&path.as_str()) {
        check_dynamic(cx, n, &format!("new {path}"), args.first().copied());
    } else if let Some(base) = net_kind(&path, resolved) {
        record_network(cx, n, &path, base, net_args);
    } else if resolved && (path == "ws" || path == "ws.WebSocket") {
        record_network(cx, n, &path, Severity::Low, net_args);
    }
}

/// Constant pieces of a `+` chain joined (`home + "/.s" + "sh"` → `/.ssh`), for split-up paths and
/// payloads.
fn check_sum(cx: &mut Cx<'_>, n: Node<'_>) {
    let mut leaves = Vec::new();
    let mut stack = vec![n];
    while let Some(k) = stack.pop() {
        let k = unwrap(k);
        if k.kind() == "binary_expression"
            && k.child_by_field_name("operator")
                .is_some_and(|o| cx.t(o) == "+")
        {
            stack.extend(k.child_by_field_name("right"));
            stack.extend(k.child_by_field_name("left"));
        } else {
            leaves.push(k);
        }
        if leaves.len() > 512 {
            return;
        }
    }
    let lits: Vec<Option<String>> = leaves.iter().map(|l| cx.literal(*l)).collect();
    literal::check_joined(&mut cx.out, &lits, "", n.byte_range());
}
