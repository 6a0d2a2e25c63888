//! Why a guard refused.
//!
//! [`DenyReason`] is the single vocabulary of refusals: each variant has a stable kebab-case [`id`]
//! (recorded in the audit log, matched by tests) and a one-line [`message`] the model and the person can act
//! on. [`DenyReason::id`] values are a public API: never rename or reuse one.
//!
//! [`id`]: DenyReason::id
//! [`message`]: DenyReason::message

/// Why a message was refused. Variants are matched exactly by tests and recorded by [`DenyReason::id`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyReason {
    /// The policy's tool rules do not allow this tool.
    ToolDenied {
        /// Tool name.
        tool: String,
    },
    /// The tool has not been listed by the server in this session, so it cannot be checked.
    ToolNotListed {
        /// Tool name.
        tool: String,
    },
    /// The tool is new and the policy requires approval before first use.
    ToolNotApproved {
        /// Server name (for the approval command).
        server: String,
        /// Tool name.
        tool: String,
        /// The tool's current definition hash.
        pin: String,
    },
    /// The tool's definition changed since it was pinned (possible rug pull).
    ToolChanged {
        /// Server name (for the approval command).
        server: String,
        /// Tool name.
        tool: String,
        /// The pinned hash.
        pinned: String,
        /// The hash of what the server offers now.
        now: String,
    },
    /// The server announced its tools changed and palisade has not re-checked them yet.
    ToolsStale,
    /// The arguments do not satisfy the tool's input schema.
    SchemaInvalid {
        /// Tool name.
        tool: String,
        /// What is wrong, in one line.
        detail: String,
    },
    /// An argument the tool's schema does not declare (refused under `unknown = "deny"`).
    UnknownArgument {
        /// Tool name.
        tool: String,
        /// The undeclared argument.
        arg: String,
    },
    /// The tool's input schema could not be compiled, so its arguments cannot be checked.
    SchemaUnusable {
        /// Tool name.
        tool: String,
        /// Why the schema is unusable.
        detail: String,
    },
    /// A path argument points outside the allowed folders or is malformed.
    PathRefused {
        /// Argument name (JSON pointer for nested values).
        arg: String,
        /// What is wrong.
        detail: String,
    },
    /// A URL argument is not allowed.
    UrlRefused {
        /// Argument name.
        arg: String,
        /// What is wrong.
        detail: String,
    },
    /// A positional argument starts with `-` and could be read as an option (CVE-2025-68144 class).
    LeadingDash {
        /// Argument name.
        arg: String,
    },
    /// The tool's call rate limit is exhausted.
    RateLimited {
        /// Tool name.
        tool: String,
    },
    /// Too many calls are in flight.
    TooManyCalls {
        /// The configured limit.
        limit: usize,
    },
    /// The request's parameters are missing or malformed for its method.
    MalformedParams {
        /// Method.
        method: String,
        /// What is wrong.
        detail: String,
    },
}

impl DenyReason {
    /// Stable kebab-case id, recorded in the audit log.
    pub fn id(&self) -> &'static str {
        match self {
            DenyReason::ToolDenied { .. } => "tool-denied",
            DenyReason::ToolNotListed { .. } => "tool-not-listed",
            DenyReason::ToolNotApproved { .. } => "tool-not-approved",
            DenyReason::ToolChanged { .. } => "tool-changed",
            DenyReason::ToolsStale => "tools-stale",
            DenyReason::SchemaInvalid { .. } => "schema-invalid",
            DenyReason::UnknownArgument { .. } => "unknown-argument",
            DenyReason::SchemaUnusable { .. } => "schema-unusable",
            DenyReason::PathRefused { .. } => "path-refused",
            DenyReason::UrlRefused { .. } => "url-refused",
            DenyReason::LeadingDash { .. } => "leading-dash",
            DenyReason::RateLimited { .. } => "rate-limited",
            DenyReason::TooManyCalls { .. } => "too-many-calls",
            DenyReason::MalformedParams { .. } => "malformed-params",
        }
    }

    /// One line for the client (the model and the person): what was refused and what to do.
    pub fn message(&self) -> String {
        match self {
            DenyReason::ToolDenied { tool } => format!(
                "tool `{tool}` is not allowed by the palisade policy (change [tools] allow/deny or pass --allow-tool {tool})"
            ),
            DenyReason::ToolNotListed { tool } => format!(
                "tool `{tool}` is not offered by this server (list tools first; palisade only checks calls to listed tools)"
            ),
            DenyReason::ToolNotApproved { server, tool, pin } => format!(
                "tool `{tool}` is new and awaits approval (review it with `palisade inspect`, then run `palisade pin accept --server {server} {tool}`; pin {})",
                short(pin)
            ),
            DenyReason::ToolChanged { server, tool, pinned, now } => format!(
                "tool `{tool}` changed since it was approved (pinned {}, now {}); review it, then run `palisade pin accept --server {server} {tool}`",
                short(pinned),
                short(now)
            ),
            DenyReason::ToolsStale => {
                "the server changed its tools and palisade is re-checking them; list tools again and retry".into()
            }
            DenyReason::SchemaInvalid { tool, detail } => {
                format!("arguments to `{tool}` do not match its input schema: {detail}")
            }
            DenyReason::UnknownArgument { tool, arg } => format!(
                "argument `{arg}` is not declared by `{tool}`'s input schema and the policy refuses undeclared arguments"
            ),
            DenyReason::SchemaUnusable { tool, detail } => format!(
                "palisade cannot check arguments to `{tool}` because its input schema is unusable ({detail}); the call is refused"
            ),
            DenyReason::PathRefused { arg, detail } => format!("path argument `{arg}` refused: {detail}"),
            DenyReason::UrlRefused { arg, detail } => format!("URL argument `{arg}` refused: {detail}"),
            DenyReason::LeadingDash { arg } => format!(
                "argument `{arg}` starts with `-` and could be read as a command-line option; pass a value that does not start with `-`"
            ),
            DenyReason::RateLimited { tool } => {
                format!("tool `{tool}` is over its call rate limit; wait and retry")
            }
            DenyReason::TooManyCalls { limit } => {
                format!("too many tool calls in flight (limit {limit}); wait for one to finish")
            }
            DenyReason::MalformedParams { method, detail } => format!("malformed `{method}` request: {detail}"),
        }
    }
}

fn short(hash: &str) -> &str {
    let h = hash.strip_prefix("sha256:").unwrap_or(hash);
    &h[..h.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_kebab() {
        let all = [
            DenyReason::ToolDenied { tool: "t".into() },
            DenyReason::ToolNotListed { tool: "t".into() },
            DenyReason::ToolNotApproved {
                server: "s".into(),
                tool: "t".into(),
                pin: "p".into(),
            },
            DenyReason::ToolChanged {
                server: "s".into(),
                tool: "t".into(),
                pinned: "a".into(),
                now: "b".into(),
            },
            DenyReason::ToolsStale,
            DenyReason::SchemaInvalid {
                tool: "t".into(),
                detail: "d".into(),
            },
            DenyReason::UnknownArgument {
                tool: "t".into(),
                arg: "a".into(),
            },
            DenyReason::SchemaUnusable {
                tool: "t".into(),
                detail: "d".into(),
            },
            DenyReason::PathRefused {
                arg: "a".into(),
                detail: "d".into(),
            },
            DenyReason::UrlRefused {
                arg: "a".into(),
                detail: "d".into(),
            },
            DenyReason::LeadingDash { arg: "a".into() },
            DenyReason::RateLimited { tool: "t".into() },
            DenyReason::TooManyCalls { limit: 1 },
            DenyReason::MalformedParams {
                method: "m".into(),
                detail: "d".into(),
            },
        ];
        let ids: Vec<_> = all.iter().map(DenyReason::id).collect();
        // Snapshot of the public id list: a rename shows up here in review.
        assert_eq!(
            ids,
            [
                "tool-denied",
                "tool-not-listed",
                "tool-not-approved",
                "tool-changed",
                "tools-stale",
                "schema-invalid",
                "unknown-argument",
                "schema-unusable",
                "path-refused",
                "url-refused",
                "leading-dash",
                "rate-limited",
                "too-many-calls",
                "malformed-params"
            ]
        );
        for r in &all {
            assert!(
                !r.message().contains('\n'),
                "{} message must be one line",
                r.id()
            );
        }
    }
}
