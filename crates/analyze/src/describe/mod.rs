//! Tool-description analysis: what a server's tools, prompts and resources say to the model.
//!
//! MCP clients put every tool's description (and its input schema) into the model's context, so a
//! server can instruct the model without the user seeing it: *tool poisoning*. [`analyze_tools`] and
//! [`analyze_items`] read every text the model reads — name, title, description, and the whole
//! `inputSchema`/`outputSchema` (property names, descriptions, defaults, enums) — and report, per item:
//!
//! * characters the user cannot see ([`unicode`]): tag characters (decoded and shown), zero-width,
//!   bidi controls, ANSI escapes, other control characters;
//! * instructions to the model ([`PHRASES`]): overriding its instructions, hiding things from the user,
//!   required "first steps", requests for secrets or the conversation, rules for other tools, data sent to
//!   URLs; markup that poses as authority (`<IMPORTANT>`, chat-template tokens) and HTML comments;
//! * parameters built to carry data out (`sidenote`, or `notes` with no stated purpose), base64 runs,
//!   look-alike tool names and excessive length.
//!
//! Phrase rules read [`unicode::reveal`]ed text, so a trigger word split by a zero-width space, hidden in
//! tag characters or in an ANSI-concealed span is still matched, and they read base64 payloads decoded.
//! Every rule is data (an id from [`crate::rules`] and regexes), and its precision and recall on the
//! labeled set in `tests/fixtures/descriptions/` are published in `docs/analysis.md`.

mod unicode;

use std::collections::BTreeSet;
use std::sync::LazyLock;

use palisade_scan::report::{Finding, RuleMeta, Severity};
use regex::Regex;
use serde_json::{Value, json};

use crate::paths::{self, SENSITIVE};
use crate::rules;
use crate::text;

/// What an analyzed item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKind {
    /// A `tools/list` entry.
    Tool,
    /// A `prompts/list` entry.
    Prompt,
    /// A `resources/list` entry.
    Resource,
    /// A `resources/templates/list` entry.
    ResourceTemplate,
}

impl ItemKind {
    /// `tool`, `prompt`, `resource`, `resource-template`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Tool => "tool",
            ItemKind::Prompt => "prompt",
            ItemKind::Resource => "resource",
            ItemKind::ResourceTemplate => "resource-template",
        }
    }
}

/// One finding about one text of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescFinding {
    /// The rule's id.
    pub rule: &'static str,
    /// Its severity here.
    pub severity: Severity,
    /// What was found, in one line.
    pub message: String,
    /// Which text: a JSON Pointer into the item (`/description`, `/inputSchema/properties/notes`).
    pub field: String,
    /// The matched text in context, one line, hidden characters escaped.
    pub evidence: Option<String>,
}

impl DescFinding {
    /// `{"id", "severity", "message", "field", "evidence"}` (the `palisade inspect` shape, extended).
    pub fn json(&self) -> Value {
        json!({
            "id": self.rule,
            "severity": self.severity.as_str(),
            "message": self.message,
            "field": self.field,
            "evidence": self.evidence,
        })
    }

    /// As a report [`Finding`] about `server` (for SARIF and `--fail-on`), keyed by item and field.
    pub fn to_finding(&self, server: Option<&str>, item: &ItemFindings) -> Finding {
        let fix = rules::by_id(self.rule).map_or("", |r| r.fix).to_owned();
        Finding {
            rule: self.rule,
            severity: self.severity,
            message: format!("{} `{}`: {}", item.kind.as_str(), item.name, self.message),
            fix,
            location: None,
            client: None,
            server: server.map(str::to_owned),
            evidence: self.evidence.clone(),
            key: format!("{}:{}|{}", item.kind.as_str(), item.name, self.field),
        }
    }
}

/// The findings of one tool, prompt or resource, most severe first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFindings {
    /// What it is.
    pub kind: ItemKind,
    /// Its `name` (a resource without one: its `uri`).
    pub name: String,
    /// What was found.
    pub findings: Vec<DescFinding>,
}

impl ItemFindings {
    /// The most severe finding's severity.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// [`ItemFindings`] for tools: one per tool, in order.
pub type ToolFindings = ItemFindings;

/// Analyzes a `tools/list` result (the `tools` array, or the whole result object): one entry per tool,
/// in the order given, each with its findings (possibly none). The tools' names are each other's
/// siblings: naming a sibling is ordinary, naming a tool outside the list is a cross-tool reference.
pub fn analyze_tools(tools: &Value) -> Vec<ToolFindings> {
    analyze_items(ItemKind::Tool, tools, &[])
}

/// Analyzes `items` of one kind (an array, or a list result holding one under `tools`, `prompts`,
/// `resources` or `resourceTemplates`). `siblings` adds names that are also the server's own (its
/// tools, when analyzing its prompts).
pub fn analyze_items(kind: ItemKind, items: &Value, siblings: &[&str]) -> Vec<ItemFindings> {
    let list = items
        .as_array()
        .or_else(|| {
            ["tools", "prompts", "resources", "resourceTemplates"]
                .iter()
                .find_map(|k| items.get(k).and_then(Value::as_array))
        })
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut own: BTreeSet<String> = siblings.iter().map(|s| s.to_ascii_lowercase()).collect();
    own.extend(
        list.iter()
            .filter_map(|t| t.get("name").and_then(Value::as_str))
            .map(str::to_ascii_lowercase),
    );
    list.iter()
        .map(|item| analyze_item(kind, item, &own))
        .collect()
}

/// The lines `palisade run` prints on stderr when a server first lists its tools: one per item with a
/// finding at or above `threshold` (pure: the caller decides where they go). The item's name and the
/// message are [`display_safe`]: a server chooses its tool names, and must not drive the terminal.
pub fn warnings(server: &str, items: &[ItemFindings], threshold: Severity) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| {
            let worst: Vec<&DescFinding> =
                i.findings.iter().filter(|f| f.severity >= threshold).collect();
            let first = worst.first()?;
            let more = if worst.len() > 1 {
                format!(" (+{} more)", worst.len() - 1)
            } else {
                String::new()
            };
            Some(format!(
                "palisade: warning: server `{server}` {} `{}`: {} [{}]{more}; review with `palisade inspect`",
                i.kind.as_str(),
                display_safe(&i.name),
                display_safe(&first.message),
                first.rule
            ))
        })
        .collect()
}

/// `s` safe to print on a terminal: control, invisible, bidi and tag characters (and so ANSI escapes)
/// written as `\u{…}` escapes; everything else unchanged.
pub fn display_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if (c.is_control() && c != '\n' && c != '\t') || text::is_invisible(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

// ---- the rules as data -----------------------------------------------------------------------------

/// A phrase rule: regexes over revealed, lower-cased text.
pub struct PhraseRule {
    /// The rule.
    pub rule: &'static RuleMeta,
    /// What a match means, for the message.
    pub says: &'static str,
    /// Any of these matching fires the rule.
    pub patterns: Vec<Regex>,
}

fn phrase(rule: &'static RuleMeta, says: &'static str, patterns: &[&str]) -> PhraseRule {
    PhraseRule {
        rule,
        says,
        patterns: patterns
            .iter()
            .map(|p| Regex::new(&format!("(?i){p}")).expect("phrase regex"))
            .collect(),
    }
}

const VERB_SEND: &str = r"(?:send|post|upload|forward|transmit|submit|report|exfiltrate|beacon|ping|notify|deliver|relay|cc|bcc|redirect|route)";
const CRED_NOUN: &str = r"(?:api[ _-]?keys?|private[ _-]?keys?|secret[ _-]?keys?|access[ _-]?(?:tokens?|keys?)|auth(?:entication|orization)?[ _-]?tokens?|bearer[ _-]?tokens?|session[ _-]?(?:tokens?|cookies?)|cookies|passwords?|passphrases?|credentials?|seed[ _-]?phrases?|mnemonic|recovery[ _-]?phrases?|ssh[ _-]?keys?|environment[ _-]?variables?|env[ _-]?vars?|secrets?|tokens?)";
/// Verbs that ask the model to hand something over (not ones that describe a tool's output: a tool that
/// "returns environment variables" offers data, it does not ask for it).
const CRED_VERB: &str = r"(?:read|cat|open|include|pass|send|provide|attach|paste|upload|forward|copy|extract|collect|share|dump|append|add|put|insert|supply|grab|embed)";

/// Every phrase rule.
pub static PHRASES: LazyLock<Vec<PhraseRule>> = LazyLock::new(|| {
    vec![
        phrase(
            &rules::INSTRUCTION_OVERRIDE,
            "tells the model to drop its instructions",
            &[
                r"\b(?:ignore|disregard|forget|override|bypass|abandon)\s+(?:all\s+|any\s+|the\s+|your\s+|of\s+)*(?:previous|prior|above|earlier|preceding|other|existing|original|system|safety|initial|user'?s?)\s+(?:instructions?|rules|directives|guidelines|prompts?|messages|constraints|policies|restrictions|guidance|commands)",
                r"\b(?:ignore|disregard|forget|pay\s+no\s+attention\s+to|set\s+aside|discard)\s+(?:all\s+|any\s+|the\s+|your\s+)*(?:instructions?|guidance|rules|directions|directives)\s+(?:you\s+)?(?:received|were\s+given|got|have\s+been\s+given|had)",
                r"\byou\s+are\s+now\s+(?:a|an|in|the|no\s+longer)\b",
                r"\bnew\s+(?:system\s+)?instructions?\s*:",
                r"\bfrom\s+now\s+on,?\s+(?:you|always|never|ignore|respond)",
                r"\b(?:takes?|have|has)\s+(?:precedence|priority)\s+over\s+(?:all\s+|any\s+|your\s+|the\s+)*(?:other\s+|previous\s+|system\s+|user\s+)*(?:instructions|rules|prompts?|messages)",
                r"\b(?:this|these)\s+(?:instructions?|rules?)\s+(?:supersedes?|replaces?|overrides?)\b",
            ],
        ),
        phrase(
            &rules::CONCEAL_FROM_USER,
            "tells the model to hide something from the user",
            &[
                r"\b(?:do\s+not|don'?t|never|must\s+not|should\s+not|no\s+need\s+to|needn'?t)\s+(?:\w+\s+){0,2}?(?:tell|inform|notify|alert|warn|show|mention\s+(?:this|it|that|anything)\s+to|reveal\s+(?:this|it|that)\s+to|disclose\s+(?:this|it|that)\s+to|let)\s+(?:the\s+|your\s+)?(?:user|human|person|people|customer)",
                r"\b(?:read|include|send|forward|attach|copy|upload|add|append|call|run|pass)\b[^.!?\n]{0,80}?,?\s+(?:silently|quietly|secretly|covertly|discreetly|without\s+(?:a\s+)?(?:word|comment|notice))\b",
                r"\bwithout\s+(?:\w+\s+){0,2}?(?:telling|informing|notifying|alerting|asking|showing|warning|bothering|the\s+knowledge\s+of|the\s+consent\s+of)\s+(?:the\s+|your\s+)?(?:user|human)",
                r"\b(?:user|human)\s+(?:must|should|need|needs|does|do)\s*(?:not|never|n't)\s+(?:to\s+)?(?:know|see|notice|learn|be\s+(?:told|informed|made\s+aware|notified|shown))",
                r"\b(?:do\s+not|don'?t|never)\s+(?:mention|reveal|disclose|report|acknowledge|bring\s+up|explain)\s+(?:this|that|these|it|any\s+of\s+this|anything\s+about|the\s+(?:above|following|extra|additional|side))",
                r"\bkeep\s+(?:this|it|that|these)\s+(?:\w+\s+)?(?:secret|hidden|confidential|private|between\s+us|to\s+yourself)",
                r"\bhide\s+(?:this|it|that|these)\s+(?:\w+\s+)?from\b",
                r"\b(?:silently|quietly|secretly|covertly|discreetly|invisibly|surreptitiously|behind\s+the\s+scenes)\s*,?\s+(?:\w+\s+){0,2}?(?:send|forward|include|read|add|call|copy|upload|exfiltrate|attach|pass|append|cc|bcc|transmit|post|write|collect|run|execute)",
                r"\b(?:it\s+is|this\s+is|that\s+is)\s+(?:just\s+|only\s+|merely\s+|a\s+mere\s+|purely\s+)*(?:an?\s+)?(?:internal\s+)?implementation\s+detail",
                r"\bthe\s+user\s+(?:already\s+knows|does\s*n[o']t\s+need\s+to\s+know|won'?t\s+notice|need\s+not\s+know)",
                r"\bnot\s+(?:be\s+)?(?:visible|shown|displayed|surfaced)\s+to\s+the\s+user",
            ],
        ),
        phrase(
            &rules::PRECONDITION_INSTRUCTION,
            "orders the model to take other steps first",
            &[
                r"\b(?:before|prior\s+to)\s+(?:using|calling|invoking|running|executing|you\s+use|you\s+call|any\s+use\s+of)\s+(?:this|the|any|each)\s+(?:\w+\s+)?(?:tool|function|command|server)",
                r"\b(?:you\s+)?(?:must|need\s+to|have\s+to|are\s+required\s+to|shall)\s+(?:first\s+|always\s+|also\s+|then\s+)*(?:read|call|invoke|run|execute|fetch|open|cat|pass|include|send|attach|append|forward|upload|copy|load)\s+(?:the\s+|its\s+|your\s+|their\s+|all\s+|every\s+|any\s+)*(?:contents?|files?|~|/|\.|`|tool|function|other|conversation|chat|previous|system|secret|keys?|tokens?|passwords?|credentials?|config|[a-z]+_[a-z_]+\b)",
                r"\botherwise\s+(?:the|this|your)\s+(?:tool|function|call|request|operation|server)\s+(?:will|would|may|might)\s+(?:not\s+work|fail|break|crash|error|be\s+rejected|not\s+function)",
                r"\b(?:always|first)\s+(?:call|invoke|run|use|execute)\s+(?:the\s+)?`?[a-z][\w.-]*`?\s+(?:tool\s+)?(?:before|first|prior|and\s+pass)",
                r"\bthis\s+tool\s+(?:requires|needs)\s+(?:you\s+to\s+)?(?:first\s+|also\s+)?(?:read|call|pass|include|send|attach)",
                r"\b(?:as\s+a|a)\s+(?:mandatory|required)\s+(?:first\s+)?step\b",
                r"\bbefore\s+(?:responding|answering|replying|you\s+(?:respond|answer|reply))\s*,?\s+(?:\w+\s+){0,2}?(?:read|call|open|fetch|run|include|send|attach)",
            ],
        ),
        phrase(
            &rules::SECRET_REQUEST,
            "asks for credentials",
            &[
                &format!(r"\b{CRED_VERB}(?:e?s|ed|ing)?\b[^.!?\n]{{0,60}}?\b{CRED_NOUN}\b"),
                &format!(
                    r"\b{CRED_NOUN}\b[^.!?\n]{{0,40}}?\b(?:must|should|needs?\s+to)\s+be\s+(?:included|passed|sent|provided|attached|read)"
                ),
                r"(?:^|[\s/~`'(])\.env(?:\.[a-z]+)?\b",
                r"/etc/passwd\b",
            ],
        ),
        phrase(
            &rules::CONTEXT_EXFILTRATION,
            "asks for the conversation or the model's instructions",
            &[
                r"\b(?:include|pass|send|put|add|append|provide|copy|summari[sz]e|attach|share|forward|paste|insert|dump|repeat|output|print|reveal|list)\b[^.!?\n]{0,60}?\b(?:(?:full|entire|complete|whole|all(?:\s+of)?(?:\s+the)?|previous|prior|earlier|recent|current|your|this|the)\s+(?:\w+\s+)?(?:conversation|chat(?:\s+history)?|message\s+history|messages|dialog(?:ue)?|context\s+window|transcript|system\s+prompt|instructions\s+you\s+(?:were|have\s+been)\s+given)|(?:other\s+)?tool\s+(?:results|outputs|responses)\s+(?:from|of)\s+other)",
                r"\b(?:your|the)\s+system\s+prompt\b",
                r"\beverything\s+the\s+user\s+(?:has\s+)?(?:said|typed|shared|written)",
            ],
        ),
        phrase(
            &rules::CROSS_TOOL_REFERENCE,
            "gives rules for tools or servers it does not own",
            &[
                r"\b(?:all|any|every|each)\s+(?:other\s+)?(?:tools?|servers?|mcp\s+servers?|functions|tool\s+calls?)\b[^.!?\n]{0,40}?\b(?:must|should|will|need|shall|are\s+required|have\s+to)",
                r"\b(?:other|another|the\s+other)\s+(?:\w+\s+)?(?:tools?|servers?|mcp\s+servers?)\s+(?:must|should|will|need|are\s+required|have\s+to|cannot|can'?t)",
                r"\b(?:prefer|use)\s+this\s+tool\s+(?:over|instead\s+of|rather\s+than)\s+(?:any|all|the|other)",
                r"\b(?:instead\s+of|rather\s+than|over)\s+(?:any|all|the)\s+other\s+(?:\w+\s+)?(?:tools?|servers?)",
                r"\b(?:side\s+effect|affects?|modif(?:y|ies)|changes?|overrides?)\s+(?:on\s+|of\s+)?(?:the\s+)?(?:behaviou?r\s+of\s+)?(?:the\s+)?(?:also\s+present|other|existing)\s+(?:\w+\s+)?tools?",
                r"\bwhen\s+(?:this|the)\s+(?:tool|server)\s+is\s+(?:available|present|connected|installed|loaded)",
                r"\b(?:whenever|when|if)\s+(?:any|another|other|a\s+different)\s+(?:\w+\s+)?(?:tool|server)s?\b",
            ],
        ),
        phrase(
            &rules::EXFILTRATION_URL,
            "directs data to an outside address",
            &[
                &format!(r"\b{VERB_SEND}\b[^.!?\n]{{0,80}}?(?:https?://|wss?://)[^\s)]+"),
                &format!(r"\b{VERB_SEND}\b[^!?\n]{{0,80}}?\bto\s+[\w.+-]+@[\w-]+\.[\w.-]+"),
                r"!\[[^\]]*\]\(\s*https?://[^)\s]*\?[^)]*\)",
                r"\b(?:webhook\.site|requestbin|pipedream\.net|ngrok(?:-free)?\.(?:io|app)|burpcollaborator|interact\.sh|oast\.(?:fun|me|pro|live|site|online)|beeceptor|hookbin|canarytokens)\b",
            ],
        ),
    ]
});

static MARKUP: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"(?i)<\s*/?\s*(?:important|system|instructions?|secret|hidden|admin|override|sys|assistant|critical|ai[_ -]?instructions?|note[_ -]?to[_ -]?(?:ai|assistant|model|llm)|model[_ -]?instructions?|context[_ -]?override)\s*>",
        r"(?i)\[/?\s*(?:inst|system|sys|important)\s*\]",
        r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|>",
        r"(?im)^\s*#{1,3}\s*(?:system|instructions?)\s*(?::|$)",
        r"(?i)<<\s*sys\s*>>",
    ]
    .iter()
    .map(|p| Regex::new(p).expect("markup regex"))
    .collect()
});

static HTML_COMMENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<!--(.*?)(?:-->|$)").expect("comment regex"));
/// Whether a base64-looking run is a file path: two or more slashes, and no piece between them mixes
/// upper and lower case (hex digests, lowercase directory names).
fn path_like(run: &str) -> bool {
    run.matches('/').count() >= 2
        && run.split('/').all(|piece| {
            !(piece.bytes().any(|b| b.is_ascii_uppercase())
                && piece.bytes().any(|b| b.is_ascii_lowercase()))
        })
}

static BASE64_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/]{60,}={0,2}").expect("base64 regex"));
static EMPHATIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(?:VERY\s+)+IMPORTANT\b|\bIMPORTANT\s*[:!]|\bCRITICAL\s*[:!]|\bURGENT\b|\bMANDATORY\b|\bATTENTION\s*[:!]|!!!+|\bYOU MUST\b|\bMUST ALWAYS\b|\bNEVER EVER\b|(?i:\b(?:very|extremely|super|critically|vitally)\s+important\b)",
    )
    .expect("emphatic regex")
});
static TOOL_NAME_OK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_.\-/]{1,128}$").expect("name regex"));
/// Identifiers written like tool names (`send_email`, `read-file`), for cross-tool checks.
static TOOL_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"`?\b([a-z][a-z0-9]*(?:[_-][a-z0-9]+)+)\b`?(\s+tool\b)?").expect("tool-like regex")
});

/// Tool names of widely used servers that a poisoned description targets when it shadows another
/// server's tool (mentioned by a server that does not own them).
const WELL_KNOWN_TOOLS: &[&str] = &[
    "send_email",
    "send_message",
    "send_mail",
    "send_slack_message",
    "slack_post_message",
    "execute_command",
    "run_command",
    "run_shell",
    "shell_exec",
    "exec_command",
    "bash",
    "read_file",
    "write_file",
    "edit_file",
    "read_text_file",
    "list_directory",
    "delete_file",
    "move_file",
    "create_directory",
    "search_files",
    "get_file_contents",
    "create_or_update_file",
    "push_files",
    "create_pull_request",
    "create_issue",
    "transfer_funds",
    "send_payment",
    "make_payment",
    "fetch",
    "browser_navigate",
    "puppeteer_navigate",
    "git_commit",
    "git_push",
    "list_chats",
    "send_whatsapp_message",
    "query",
    "run_sql",
    "execute_sql",
];

/// Parameter names that exist to carry data out; flagged whatever their description says.
const EXFIL_PARAMS_STRONG: &[&str] = &[
    "sidenote",
    "hidden",
    "hiddencontext",
    "internalnotes",
    "notesforai",
    "ainotes",
    "systemprompt",
    "conversationhistory",
    "chathistory",
    "previousmessages",
    "fullcontext",
    "contextdump",
    "secrets",
    "credentials",
    "sshkey",
    "privatekey",
    "apikeys",
    "envvars",
    "environment",
    "userdata",
    "exfil",
    "exfildata",
];
/// Free-text parameter names that are fine when the tool says what they are for.
const EXFIL_PARAMS_WEAK: &[&str] = &[
    "notes",
    "note",
    "context",
    "feedback",
    "remarks",
    "remark",
    "comment",
    "comments",
    "metadata",
    "extra",
    "extrainfo",
    "additionalinfo",
    "additionalcontext",
    "debug",
    "debuginfo",
    "details",
    "summary",
    "info",
    "payload",
    "memo",
    "annotation",
    "history",
    "reasoning",
    "explanation",
    "justification",
    "trace",
    "log",
    "logs",
    "instructions",
    "data",
];

/// Pieces of a compound parameter name that name a credential (normalized: lower case, no separators).
const CREDENTIAL_TOKENS: &[&str] = &[
    "idrsa",
    "ided25519",
    "sshkey",
    "privatekey",
    "apikey",
    "password",
    "credential",
    "secret",
    "token",
    "mcpjson",
    "awscredentials",
    "npmrc",
    "netrc",
    "dotenv",
    "cookie",
];

/// Descriptions longer than this are flagged (the longest among real servers we measured is
/// sequential-thinking's, ≈ 2.8k characters).
pub const MAX_DESCRIPTION_CHARS: usize = 4096;

// ---- analysis -----------------------------------------------------------------------------------

/// One text of an item the model reads.
struct Text<'a> {
    field: String,
    value: &'a str,
    /// Prose (descriptions, titles) gets the phrase rules; names and enum values only the character
    /// checks.
    prose: bool,
}

fn texts<'a>(kind: ItemKind, item: &'a Value) -> Vec<Text<'a>> {
    let mut out = Vec::new();
    let mut push = |field: String, v: Option<&'a Value>, prose: bool| {
        if let Some(s) = v.and_then(Value::as_str) {
            out.push(Text {
                field,
                value: s,
                prose,
            });
        }
    };
    push("/name".into(), item.get("name"), false);
    push("/title".into(), item.get("title"), true);
    push("/description".into(), item.get("description"), true);
    push(
        "/annotations/title".into(),
        item.pointer("/annotations/title"),
        true,
    );
    if kind == ItemKind::Prompt
        && let Some(args) = item.get("arguments").and_then(Value::as_array)
    {
        for (i, a) in args.iter().enumerate() {
            push(format!("/arguments/{i}/name"), a.get("name"), false);
            push(
                format!("/arguments/{i}/description"),
                a.get("description"),
                true,
            );
        }
    }
    let mut schema_texts = Vec::new();
    for key in ["inputSchema", "outputSchema"] {
        if let Some(s) = item.get(key) {
            schema(s, &format!("/{key}"), 0, &mut schema_texts);
        }
    }
    out.extend(schema_texts);
    out
}

fn pointer_escape(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Every text in a JSON Schema: property names, descriptions, titles, string defaults, enum and
/// example values.
fn schema<'a>(s: &'a Value, at: &str, depth: usize, out: &mut Vec<Text<'a>>) {
    if depth > 16 {
        return;
    }
    let Some(obj) = s.as_object() else {
        if let Some(a) = s.as_array() {
            for (i, v) in a.iter().enumerate() {
                schema(v, &format!("{at}/{i}"), depth + 1, out);
            }
        }
        return;
    };
    for (k, v) in obj {
        let here = format!("{at}/{}", pointer_escape(k));
        match (k.as_str(), v) {
            ("description" | "title" | "$comment", Value::String(t)) => out.push(Text {
                field: here,
                value: t,
                prose: true,
            }),
            ("default" | "const", Value::String(t)) => out.push(Text {
                field: here,
                value: t,
                prose: true,
            }),
            ("enum" | "examples", Value::Array(a)) => {
                for (i, e) in a.iter().enumerate() {
                    if let Some(t) = e.as_str() {
                        out.push(Text {
                            field: format!("{here}/{i}"),
                            value: t,
                            prose: true,
                        });
                    }
                }
            }
            (
                "properties" | "patternProperties" | "$defs" | "definitions",
                Value::Object(props),
            ) => {
                for (name, sub) in props {
                    let p = format!("{here}/{}", pointer_escape(name));
                    out.push(Text {
                        field: p.clone(),
                        value: name,
                        prose: false,
                    });
                    schema(sub, &p, depth + 1, out);
                }
            }
            (_, Value::Object(_) | Value::Array(_)) => schema(v, &here, depth + 1, out),
            _ => {}
        }
    }
}

struct Acc {
    findings: Vec<DescFinding>,
}

impl Acc {
    /// Adds a finding unless this rule already fired on this field.
    fn add(
        &mut self,
        rule: &RuleMeta,
        severity: Severity,
        field: &str,
        message: String,
        evidence: Option<String>,
    ) {
        if self
            .findings
            .iter()
            .any(|f| f.rule == rule.id && f.field == field)
        {
            return;
        }
        self.findings.push(DescFinding {
            rule: rule.id,
            severity,
            message,
            field: field.to_owned(),
            evidence,
        });
    }
}

/// `s` around byte range `m`, one line.
fn context(s: &str, start: usize, end: usize) -> String {
    let mut a = start.saturating_sub(30);
    while a > 0 && !s.is_char_boundary(a) {
        a -= 1;
    }
    let mut b = (end + 30).min(s.len());
    while b < s.len() && !s.is_char_boundary(b) {
        b += 1;
    }
    let pre = if a > 0 { "…" } else { "" };
    let post = if b < s.len() { "…" } else { "" };
    format!("{pre}{}{post}", text::snippet(&s[a..b], 200))
}

fn field_label(field: &str) -> String {
    match field {
        "/description" => "the description".into(),
        "/name" => "the name".into(),
        "/title" => "the title".into(),
        f if f.starts_with("/inputSchema") => format!("the input schema ({f})"),
        f => format!("`{f}`"),
    }
}

fn phrase_rules(acc: &mut Acc, field: &str, revealed: &str, origin: &str) {
    for rule in PHRASES.iter() {
        for re in &rule.patterns {
            if let Some(m) = re.find(revealed) {
                acc.add(
                    rule.rule,
                    rule.rule.severity,
                    field,
                    format!(
                        "{}{origin} {}: \"{}\"",
                        field_label(field),
                        rule.says,
                        text::snippet(m.as_str(), 80)
                    ),
                    Some(context(revealed, m.start(), m.end())),
                );
                break;
            }
        }
    }
    // Credential paths named in prose (the same table the code analysis uses).
    if let Some(c) = paths::classify(&SENSITIVE, revealed) {
        let m = c.re.find(revealed);
        acc.add(
            &rules::SECRET_REQUEST,
            Severity::Critical,
            field,
            format!("{}{origin} names {}", field_label(field), c.label),
            m.map(|m| context(revealed, m.start(), m.end())),
        );
    }
}

fn analyze_text(
    acc: &mut Acc,
    kind: ItemKind,
    t: &Text<'_>,
    own: &BTreeSet<String>,
    params: &[String],
    self_name: &str,
) {
    let field = t.field.as_str();
    let value = t.value;
    for h in unicode::find(value) {
        match h {
            unicode::Hidden::Tags(hidden) => acc.add(
                &rules::UNICODE_TAG_CHARACTERS,
                Severity::Critical,
                field,
                format!(
                    "{} hides text in Unicode tag characters: \"{}\"",
                    field_label(field),
                    text::snippet(&hidden, 120)
                ),
                Some(text::snippet(&hidden, 200)),
            ),
            unicode::Hidden::Invisible(n, first) => acc.add(
                &rules::INVISIBLE_CHARACTERS,
                Severity::High,
                field,
                format!(
                    "{} holds {n} invisible character(s) (first U+{first:04X})",
                    field_label(field)
                ),
                Some(text::snippet(value, 120)),
            ),
            unicode::Hidden::Bidi(n, first) => acc.add(
                &rules::BIDI_CONTROL_CHARACTERS,
                Severity::High,
                field,
                format!(
                    "{} holds {n} bidirectional control character(s) (first U+{first:04X})",
                    field_label(field)
                ),
                Some(text::snippet(value, 120)),
            ),
            unicode::Hidden::Ansi(n, first) => acc.add(
                &rules::ANSI_ESCAPE_SEQUENCE,
                Severity::High,
                field,
                format!(
                    "{} holds {n} ANSI escape sequence(s) (first `{first}`)",
                    field_label(field)
                ),
                Some(text::snippet(value, 120)),
            ),
            unicode::Hidden::Control(n, first) => acc.add(
                &rules::CONTROL_CHARACTERS,
                Severity::Medium,
                field,
                format!(
                    "{} holds {n} control character(s) (first U+{first:04X})",
                    field_label(field)
                ),
                Some(text::snippet(value, 120)),
            ),
        }
    }
    if field == "/name" && kind == ItemKind::Tool && !TOOL_NAME_OK.is_match(value) {
        acc.add(
            &rules::UNUSUAL_TOOL_NAME,
            Severity::Medium,
            field,
            format!(
                "the tool name `{}` uses characters outside A–Z a–z 0–9 _ - .{}",
                text::snippet(value, 60),
                if value.chars().any(|c| c.is_alphabetic() && !c.is_ascii()) {
                    " (look-alike letters can impersonate another tool)"
                } else {
                    ""
                }
            ),
            None,
        );
    }
    if !t.prose {
        // A property name that spells an instruction (full-schema poisoning) is still read by the model.
        if value.len() > 40 || value.contains(' ') {
            let revealed = unicode::reveal(&value.replace(['_', '-'], " "));
            phrase_rules(acc, field, &revealed, "");
        }
        return;
    }
    let revealed = unicode::reveal(value);
    phrase_rules(acc, field, &revealed, "");
    for re in MARKUP.iter() {
        if let Some(m) = re.find(&revealed) {
            acc.add(
                &rules::INSTRUCTION_MARKUP,
                Severity::High,
                field,
                format!(
                    "{} uses markup aimed at the model: `{}`",
                    field_label(field),
                    text::snippet(m.as_str(), 40)
                ),
                Some(context(&revealed, m.start(), m.end())),
            );
            break;
        }
    }
    for c in HTML_COMMENT.captures_iter(value) {
        let inner = c.get(1).map_or("", |m| m.as_str());
        let inner_revealed = unicode::reveal(inner);
        let mut probe = Acc {
            findings: Vec::new(),
        };
        phrase_rules(&mut probe, field, &inner_revealed, "");
        let severity = if probe.findings.is_empty() {
            Severity::Medium
        } else {
            Severity::High
        };
        acc.add(
            &rules::HTML_COMMENT,
            severity,
            field,
            format!(
                "{} holds an HTML comment (hidden when rendered): \"{}\"",
                field_label(field),
                text::snippet(&inner_revealed, 80)
            ),
            Some(text::snippet(inner, 120)),
        );
    }
    // The first run is enough to flag the field (and to analyze what it says). File paths match the
    // character class too (`…/store/npm/<sha512 hex>/node_modules/…`): a run cut by slashes into
    // single-case pieces is a path, not base64, which mixes cases within any few characters.
    if let Some(m) = BASE64_RUN.find_iter(value).find(|m| !path_like(m.as_str())) {
        let decoded = text::base64_decode(m.as_str()).and_then(|b| text::printable(&b));
        match decoded {
            Some(d) => {
                acc.add(
                    &rules::ENCODED_PAYLOAD,
                    Severity::High,
                    field,
                    format!(
                        "{} holds base64 that decodes to text: \"{}\"",
                        field_label(field),
                        text::snippet(&d, 80)
                    ),
                    Some(text::snippet(m.as_str(), 60)),
                );
                phrase_rules(acc, field, &unicode::reveal(&d), " (base64-decoded)");
            }
            None => acc.add(
                &rules::ENCODED_PAYLOAD,
                Severity::Medium,
                field,
                format!(
                    "{} holds a {}-character base64 run",
                    field_label(field),
                    m.as_str().len()
                ),
                Some(text::snippet(m.as_str(), 60)),
            ),
        }
    }
    if let Some(m) = EMPHATIC.find(value) {
        acc.add(
            &rules::EMPHATIC_LANGUAGE,
            Severity::Low,
            field,
            format!(
                "{} shouts at the model: \"{}\"",
                field_label(field),
                text::snippet(m.as_str(), 40)
            ),
            Some(context(value, m.start(), m.end())),
        );
    }
    let chars = value.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        acc.add(
            &rules::EXCESSIVE_LENGTH,
            if chars > 4 * MAX_DESCRIPTION_CHARS {
                Severity::Medium
            } else {
                Severity::Low
            },
            field,
            format!(
                "{} is {chars} characters long (more than {MAX_DESCRIPTION_CHARS})",
                field_label(field)
            ),
            None,
        );
    }
    // Names of tools this server does not own.
    let lower = revealed.to_ascii_lowercase();
    for c in TOOL_LIKE.captures_iter(&lower) {
        let name = c.get(1).map_or("", |m| m.as_str());
        let called_tool = c.get(2).is_some();
        let normalized = name.replace('-', "_");
        if name == self_name
            || own.contains(name)
            || own.contains(&normalized)
            || params
                .iter()
                .any(|p| p == name || p.replace('-', "_") == normalized)
        {
            continue;
        }
        let known = WELL_KNOWN_TOOLS.contains(&normalized.as_str())
            || normalized
                .strip_prefix("mcp_tool_")
                .is_some_and(|n| WELL_KNOWN_TOOLS.contains(&n));
        if known || called_tool {
            acc.add(
                &rules::CROSS_TOOL_REFERENCE,
                Severity::High,
                field,
                format!(
                    "{} refers to a tool this server does not have: `{name}`",
                    field_label(field)
                ),
                c.get(0).map(|m| context(&lower, m.start(), m.end())),
            );
            break;
        }
    }
}

fn norm_param(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn analyze_item(kind: ItemKind, item: &Value, own: &BTreeSet<String>) -> ItemFindings {
    let name = item
        .get("name")
        .and_then(Value::as_str)
        .or_else(|| item.get("uri").and_then(Value::as_str))
        .or_else(|| item.get("uriTemplate").and_then(Value::as_str))
        .unwrap_or("?")
        .to_owned();
    let props = item
        .pointer("/inputSchema/properties")
        .and_then(Value::as_object);
    let params: Vec<String> = props
        .map(|p| p.keys().map(|k| k.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    let mut acc = Acc {
        findings: Vec::new(),
    };
    let self_name = name.to_ascii_lowercase();
    for t in texts(kind, item) {
        analyze_text(&mut acc, kind, &t, own, &params, &self_name);
    }
    // Parameters built to carry data out.
    if let Some(props) = props {
        let description = item
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let required: Vec<&str> = item
            .pointer("/inputSchema/required")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let description_poisoned = acc
            .findings
            .iter()
            .any(|f| f.field == "/description" && f.severity >= Severity::High);
        for (p, schema) in props {
            let n = norm_param(p);
            // A name that is a sentence naming a credential (`content_from_reading_ssh_id_rsa`).
            let words = p.split(['_', '-']).count();
            if words >= 3 && CREDENTIAL_TOKENS.iter().any(|t| n.contains(t)) {
                acc.add(
                    &rules::SECRET_REQUEST,
                    Severity::Critical,
                    &format!("/inputSchema/properties/{}", pointer_escape(p)),
                    format!("parameter name `{p}` asks for credentials"),
                    None,
                );
            }
            let field = format!("/inputSchema/properties/{}", pointer_escape(p));
            let pdesc = schema
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            if EXFIL_PARAMS_STRONG.contains(&n.as_str()) {
                acc.add(
                    &rules::EXFILTRATION_PARAMETER,
                    Severity::High,
                    &field,
                    format!("parameter `{p}` is named for carrying hidden data out"),
                    (!pdesc.is_empty()).then(|| text::snippet(pdesc, 120)),
                );
            } else if EXFIL_PARAMS_WEAK.contains(&n.as_str()) {
                // A mention inside a poisoned description ("pass the file as `notes`") is no purpose.
                let mentioned =
                    description.contains(&p.to_ascii_lowercase()) && !description_poisoned;
                if pdesc.len() < 8 && !mentioned {
                    let sev = if required.contains(&p.as_str()) {
                        Severity::High
                    } else {
                        Severity::Medium
                    };
                    acc.add(
                        &rules::EXFILTRATION_PARAMETER,
                        sev,
                        &field,
                        format!(
                            "{}parameter `{p}` is free text the tool never explains",
                            if sev == Severity::High {
                                "required "
                            } else {
                                ""
                            }
                        ),
                        None,
                    );
                }
            }
        }
    }
    let mut findings = acc.findings;
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(rules::rank(a.rule).cmp(&rules::rank(b.rule)))
            .then(a.field.cmp(&b.field))
    });
    ItemFindings {
        kind,
        name,
        findings,
    }
}

#[cfg(test)]
mod tests;
