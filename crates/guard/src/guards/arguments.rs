//! Argument validation for `tools/call`: the server's own JSON Schema, undeclared arguments, and the
//! values that reach the outside world — filesystem paths, URLs and command-line positionals.
//!
//! Which arguments are paths or URLs comes from the policy's `[[arguments.rule]]` entries and, when
//! `auto_detect` is on, from argument names and schema formats. A tool whose annotations do not promise
//! `readOnlyHint: true` is treated as writing, so its paths must lie under a write root: the safe reading
//! of a missing hint.

use palisade_policy::Policy;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::args::paths::{self, Access, RealFs, Roots};
use crate::args::schema::ToolSchema;
use crate::args::{pointer_token, string_values, urls};
use crate::guard::{Call, Guard};
use crate::{DenyReason, SessionState};

/// Validates arguments against the tool schema and the policy's path, URL and positional rules.
#[derive(Debug)]
pub struct Arguments {
    policy: Arc<Policy>,
    roots: Roots,
}

impl Arguments {
    /// Builds the guard; roots are canonicalized once here.
    pub fn new(policy: Arc<Policy>, server_cwd: PathBuf) -> Self {
        let roots = Roots::new(&policy.fs, server_cwd);
        Arguments { policy, roots }
    }

    /// Roots that do not exist or could not be resolved, one line each.
    pub fn root_problems(&self) -> &[String] {
        self.roots.problems()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ArgClass {
    Path,
    Url,
    Positional,
}

impl Guard for Arguments {
    fn name(&self) -> &'static str {
        "arguments"
    }

    fn check_call(
        &self,
        call: &Call<'_>,
        st: &mut SessionState,
        _now: Instant,
    ) -> Result<(), DenyReason> {
        let tool = call.tool;
        let Some(entry) = st.tools.get_mut(tool) else {
            return Err(DenyReason::ToolNotListed {
                tool: tool.to_owned(),
            });
        };
        let rules = &self.policy.args;
        if rules.schema {
            let compiled = entry.schema.get_or_insert_with(|| {
                Arc::new(match entry.def.get("inputSchema") {
                    Some(s) => ToolSchema::compile(s),
                    None => Err("the tool has no inputSchema".to_owned()),
                })
            });
            match compiled.as_ref() {
                Err(detail) => {
                    return Err(DenyReason::SchemaUnusable {
                        tool: tool.to_owned(),
                        detail: detail.clone(),
                    });
                }
                Ok(schema) => schema
                    .validate(call.args, rules.unknown)
                    .map_err(|p| p.into_reason(tool))?,
            }
        }
        let read_only = entry
            .def
            .get("annotations")
            .and_then(|a| a.get("readOnlyHint"))
            .and_then(Value::as_bool)
            == Some(true);
        let access = if read_only {
            Access::Read
        } else {
            Access::Write
        };
        let props = entry
            .def
            .get("inputSchema")
            .and_then(|s| s.get("properties"));
        let Some(args) = call.args.as_object() else {
            return Ok(());
        };
        for (name, value) in args {
            let prop_schema = props.and_then(|p| p.get(name));
            for class in [ArgClass::Path, ArgClass::Url, ArgClass::Positional] {
                if !self.applies(tool, name, prop_schema, class) {
                    continue;
                }
                for (pointer, raw) in string_values(value, format!("/{}", pointer_token(name))) {
                    let refuse = |detail: String| match class {
                        ArgClass::Path => DenyReason::PathRefused {
                            arg: pointer.clone(),
                            detail,
                        },
                        ArgClass::Url => DenyReason::UrlRefused {
                            arg: pointer.clone(),
                            detail,
                        },
                        ArgClass::Positional => DenyReason::LeadingDash {
                            arg: pointer.clone(),
                        },
                    };
                    let raw = raw.map_err(refuse)?;
                    match class {
                        ArgClass::Path => {
                            paths::check_path(raw, access, &self.roots, &RealFs).map_err(refuse)?;
                        }
                        ArgClass::Url => {
                            urls::check_url(raw, &rules.url_schemes, &self.policy.net)
                                .map_err(refuse)?;
                        }
                        ArgClass::Positional => {
                            urls::check_positional(raw).map_err(|_| refuse(String::new()))?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl Arguments {
    fn applies(&self, tool: &str, name: &str, schema: Option<&Value>, class: ArgClass) -> bool {
        let rules = &self.policy.args;
        let explicit = rules
            .rules
            .iter()
            .filter(|r| r.tool.matches(tool))
            .any(|r| {
                let list = match class {
                    ArgClass::Path => &r.paths,
                    ArgClass::Url => &r.urls,
                    ArgClass::Positional => &r.positionals,
                };
                list.iter().any(|n| n == name)
            });
        explicit
            || (rules.auto_detect
                && match class {
                    ArgClass::Path => paths::looks_like_path_arg(name, schema),
                    ArgClass::Url => paths::looks_like_url_arg(name, schema),
                    ArgClass::Positional => false,
                })
    }
}
