//! JSON Schema validation of `tools/call` arguments against the tool's own `inputSchema`.
//!
//! Why: the server publishes what its tool accepts; holding every call to that contract stops a steered model
//! from sending shapes the server never planned for (extra flags, wrong types that a lax server coerces).
//! [`ToolSchema::compile`] runs once per listed tool; [`ToolSchema::validate`] runs per call and never
//! recompiles.
//!
//! # The schema is hostile input
//!
//! The schema comes from the server, which may be the attacker. So:
//! - **No remote or file `$ref`.** The workspace builds `jsonschema` with `default-features = false` (no HTTP
//!   client, no file reader) and [`ToolSchema::compile`] also installs the crate's offline retriever. A schema
//!   that references anything outside itself fails to compile, and the caller denies calls to that tool
//!   ([`DenyReason::SchemaUnusable`]). palisade never fetches a URL or reads a file because a server said so.
//! - **The schema is checked against its meta-schema** when compiled, so a malformed schema is refused rather
//!   than half-applied.
//! - `$schema` picks the draft (draft-04/06/07, 2019-09, 2020-12, detected by `jsonschema`); without it the
//!   default is 2020-12, as MCP specifies. An unrecognized `$schema` fails to compile (it would need fetching).
//! - Regexes (`pattern`, `patternProperties`) run with a backtracking budget and a size cap; a match that
//!   exceeds the budget counts as a failure, so a catastrophic pattern costs a denial, not a stall.
//! - Error text quotes argument values, truncated, on one line: it goes to the model and the audit log.
//!
//! # Unknown arguments
//!
//! Under [`UnknownArgs::Deny`] a top-level argument is refused unless the schema *declares* it: it is named in
//! `properties`, matches a `patternProperties` regex, or the schema gives `additionalProperties` /
//! `unevaluatedProperties` a constraining schema (a deliberate map-like interface). `additionalProperties:
//! true` or `{}` declares nothing: in JSON Schema they mean the same as leaving the keyword out, and schema
//! generators emit them by default. Declarations are collected through `allOf`/`anyOf`/`oneOf`,
//! `if`/`then`/`else`, `dependentSchemas` and local `$ref`s (`#/...`); a schema whose top level reaches a
//! reference palisade cannot follow is reported as [`ArgProblem::Unanalyzable`] (fail closed) rather than
//! guessed at.

use std::collections::BTreeSet;

use jsonschema::Validator;
use palisade_policy::UnknownArgs;
use serde_json::{Value, json};

use crate::DenyReason;

/// How many validation errors are joined into the one-line detail.
const MAX_ERRORS: usize = 3;
/// Longest single error message kept (in characters); values in messages can be large.
const MAX_ERROR_CHARS: usize = 160;
/// Backtracking budget per regex match: a hostile `pattern` with backreferences or lookarounds could
/// otherwise spend seconds per call. Exceeding it is a validation failure (fail closed).
const REGEX_BACKTRACK_LIMIT: usize = 100_000;
/// Largest compiled regex, in bytes: a schema must not make palisade allocate without bound.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// How deep the declared-names walk follows combinators and references before giving up (fail closed).
const MAX_WALK_DEPTH: usize = 32;

/// A tool's compiled `inputSchema`, built once when the tool is listed and reused for every call.
#[derive(Debug)]
pub struct ToolSchema {
    validator: Validator,
    declared: Declared,
}

/// What the schema declares at the top level, for [`UnknownArgs::Deny`].
#[derive(Debug)]
enum Declared {
    /// Every top-level name is declared (a constraining `additionalProperties`/`unevaluatedProperties`).
    Open,
    /// Names in `properties`, plus a validator matching `patternProperties` regexes (if any).
    Names {
        names: BTreeSet<String>,
        patterns: Option<Validator>,
    },
    /// The walk hit something it cannot follow; the reason, for the audit log.
    Unanalyzable(String),
}

/// Why a call's arguments were refused by [`ToolSchema::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgProblem {
    /// The arguments do not satisfy the schema: up to three errors, each `instance-path: message`, on one
    /// line.
    Invalid(String),
    /// A top-level argument the schema does not declare (only under [`UnknownArgs::Deny`]).
    Unknown(String),
    /// Under [`UnknownArgs::Deny`], the schema's declarations could not be worked out (it reaches a reference
    /// palisade does not follow), so undeclared arguments cannot be told apart.
    Unanalyzable(String),
}

impl ArgProblem {
    /// The matching [`DenyReason`] for `tool`, so every caller maps problems the same way.
    pub fn into_reason(self, tool: &str) -> DenyReason {
        match self {
            ArgProblem::Invalid(detail) => DenyReason::SchemaInvalid {
                tool: tool.to_owned(),
                detail,
            },
            ArgProblem::Unknown(arg) => DenyReason::UnknownArgument {
                tool: tool.to_owned(),
                arg,
            },
            ArgProblem::Unanalyzable(detail) => DenyReason::SchemaUnusable {
                tool: tool.to_owned(),
                detail,
            },
        }
    }
}

impl ToolSchema {
    /// Compiles a tool's `inputSchema`. Fails (with a one-line reason) when the schema is not valid for its
    /// draft, names an unknown `$schema`, has a bad regex, or references anything outside itself; the caller
    /// then refuses calls to the tool ([`DenyReason::SchemaUnusable`]), because arguments it cannot check
    /// must not pass.
    pub fn compile(input_schema: &Value) -> Result<ToolSchema, String> {
        let validator = options()
            .build(input_schema)
            .map_err(|e| one_line(&e.to_string(), 300))?;
        let declared = Declared::of(input_schema);
        Ok(ToolSchema {
            validator,
            declared,
        })
    }

    /// Checks one call's `arguments`. The caller passes `{}` when the request has no `arguments` member, as
    /// MCP specifies ([`crate::Call::args`] already does). Undeclared top-level arguments are refused first
    /// under [`UnknownArgs::Deny`] because that answer names the argument exactly; then the schema's own
    /// errors.
    pub fn validate(&self, args: &Value, unknown: UnknownArgs) -> Result<(), ArgProblem> {
        if unknown == UnknownArgs::Deny
            && let Value::Object(map) = args
        {
            match &self.declared {
                Declared::Open => {}
                Declared::Unanalyzable(why) => {
                    if !map.is_empty() {
                        return Err(ArgProblem::Unanalyzable(why.clone()));
                    }
                }
                Declared::Names { names, patterns } => {
                    for key in map.keys() {
                        if names.contains(key) {
                            continue;
                        }
                        let by_pattern = patterns
                            .as_ref()
                            .is_some_and(|p| p.is_valid(&Value::String(key.clone())));
                        if !by_pattern {
                            return Err(ArgProblem::Unknown(key.clone()));
                        }
                    }
                }
            }
        }
        if self.validator.is_valid(args) {
            return Ok(());
        }
        let mut parts = Vec::with_capacity(MAX_ERRORS + 1);
        let mut more = false;
        for (i, err) in self.validator.iter_errors(args).enumerate() {
            if i == MAX_ERRORS {
                more = true;
                break;
            }
            let path = err.instance_path().as_str();
            let path = if path.is_empty() { "(root)" } else { path };
            parts.push(format!(
                "{path}: {}",
                one_line(&err.to_string(), MAX_ERROR_CHARS)
            ));
        }
        let mut detail = parts.join("; ");
        if more {
            detail.push_str("; and more");
        }
        if detail.is_empty() {
            // `is_valid` and `iter_errors` disagreeing would be a jsonschema bug; still refuse.
            detail = "arguments do not match the schema".into();
        }
        Err(ArgProblem::Invalid(detail))
    }
}

impl Declared {
    fn of(root: &Value) -> Declared {
        let mut walk = Walk {
            root,
            names: BTreeSet::new(),
            patterns: Vec::new(),
            open: false,
            seen_refs: BTreeSet::new(),
        };
        if let Err(why) = walk.visit(root, 0) {
            return Declared::Unanalyzable(why);
        }
        if walk.open {
            return Declared::Open;
        }
        let patterns = if walk.patterns.is_empty() {
            None
        } else {
            // Compiled with jsonschema itself so the regex dialect is exactly the one `patternProperties`
            // used when validating. The main schema already compiled, so the patterns are valid.
            let any_of: Vec<Value> = walk
                .patterns
                .iter()
                .map(|p| json!({ "type": "string", "pattern": p }))
                .collect();
            match options()
                .with_draft(jsonschema::Draft::Draft202012)
                .build(&json!({ "anyOf": any_of }))
            {
                Ok(v) => Some(v),
                Err(e) => {
                    return Declared::Unanalyzable(format!(
                        "patternProperties could not be compiled: {}",
                        one_line(&e.to_string(), MAX_ERROR_CHARS)
                    ));
                }
            }
        };
        Declared::Names {
            names: walk.names,
            patterns,
        }
    }
}

struct Walk<'a> {
    root: &'a Value,
    names: BTreeSet<String>,
    patterns: Vec<String>,
    open: bool,
    seen_refs: BTreeSet<String>,
}

impl<'a> Walk<'a> {
    /// Collects what one (sub)schema applying to the top-level instance declares.
    fn visit(&mut self, schema: &'a Value, depth: usize) -> Result<(), String> {
        if depth > MAX_WALK_DEPTH {
            return Err("the schema nests combinators or references too deeply to analyze".into());
        }
        let Value::Object(obj) = schema else {
            // `true`/`false` declare no names.
            return Ok(());
        };
        if let Some(Value::Object(props)) = obj.get("properties") {
            self.names.extend(props.keys().cloned());
        }
        if let Some(Value::Object(pats)) = obj.get("patternProperties") {
            self.patterns.extend(pats.keys().cloned());
        }
        for kw in ["additionalProperties", "unevaluatedProperties"] {
            if let Some(v) = obj.get(kw)
                && constrains(v)
            {
                self.open = true;
            }
        }
        for kw in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(subs)) = obj.get(kw) {
                for s in subs {
                    self.visit(s, depth + 1)?;
                }
            }
        }
        for kw in ["if", "then", "else"] {
            if let Some(s) = obj.get(kw) {
                self.visit(s, depth + 1)?;
            }
        }
        // `dependentSchemas` (2019-09+) and the schema form of draft-07 `dependencies`.
        for kw in ["dependentSchemas", "dependencies"] {
            if let Some(Value::Object(deps)) = obj.get(kw) {
                for s in deps.values().filter(|s| !s.is_array()) {
                    self.visit(s, depth + 1)?;
                }
            }
        }
        for kw in ["$ref", "$dynamicRef", "$recursiveRef"] {
            if let Some(r) = obj.get(kw) {
                let Some(r) = r.as_str() else {
                    return Err(format!("`{kw}` is not a string"));
                };
                self.follow(kw, r, depth)?;
            }
        }
        Ok(())
    }

    fn follow(&mut self, kw: &str, reference: &str, depth: usize) -> Result<(), String> {
        let Some(fragment) = reference.strip_prefix('#') else {
            return Err(format!(
                "the top level uses `{kw}: {}`, which palisade does not follow to find declared arguments",
                one_line(reference, 80)
            ));
        };
        if !self.seen_refs.insert(fragment.to_owned()) {
            return Ok(());
        }
        let pointer = percent_encoding::percent_decode_str(fragment)
            .decode_utf8()
            .map_err(|_| "a `$ref` fragment is not UTF-8".to_string())?;
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            return Err(format!(
                "the top level uses the anchor `{kw}: {}`, which palisade does not follow to find declared arguments",
                one_line(reference, 80)
            ));
        }
        match self.root.pointer(&pointer) {
            Some(target) => self.visit(target, depth + 1),
            None => Err(format!(
                "`{kw}: {}` points at nothing in the schema",
                one_line(reference, 80)
            )),
        }
    }
}

/// The one place validators are configured.
fn options() -> jsonschema::ValidationOptions<'static> {
    jsonschema::options()
        // Belt and braces: the remote/file retrievers are compiled out; this also refuses anything not in
        // the schema itself.
        .offline()
        .with_pattern_options(
            jsonschema::PatternOptions::fancy_regex()
                .backtrack_limit(REGEX_BACKTRACK_LIMIT)
                .size_limit(REGEX_SIZE_LIMIT),
        )
}

/// Whether an `additionalProperties`-style value is a deliberate schema (declares a map-like interface)
/// rather than `true`/`{}`/`false`.
fn constrains(v: &Value) -> bool {
    match v {
        Value::Object(o) => !o.is_empty(),
        _ => false,
    }
}

/// `s` on one line (control characters become spaces), cut to `max` characters with an ellipsis.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 3));
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
