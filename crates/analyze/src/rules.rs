//! The rule registries: every id this crate reports, with its default severity, reason and fix.
//!
//! Two lists, because they look at different things: [`CODE`] holds the static red flags found in a
//! package's source ([`crate::code`]), [`DESCRIPTION`] the findings about tool, prompt and resource
//! descriptions ([`crate::describe`]). Both are [`RuleMeta`] from `palisade-scan`, so SARIF `rules[]`,
//! `--fail-on` and the docs treat them exactly like `palisade scan`'s rules.
//!
//! Ids are a public API: never rename or reuse one (the `ids_are_stable` test snapshots both lists, and
//! `docs/analysis.md` must list each with its severity). A finding may carry a severity other than its
//! rule's default when context changes the risk (a `fetch` of a constant `https://` URL is info, a raw
//! socket to an IP literal is medium); the default is the common case.

use palisade_scan::report::RuleMeta;
use palisade_scan::rule;

// ---- static red flags in source -------------------------------------------------------------------

rule!(
    EXFILTRATION_PATTERN,
    "exfiltration-pattern",
    Critical,
    "a file both collects secrets (the whole environment or a credential file) and talks to the network",
    "Reading every environment variable or a credential store and sending data out from the same file is the shape of nearly every credential-stealing package; either alone can be innocent, together they rarely are.",
    "Do not install this version; read the two locations named in the message. If it is your own code, send only the values the feature needs."
);
rule!(
    ENV_HARVESTING,
    "env-harvesting",
    High,
    "the whole environment is serialized or iterated (not one variable read)",
    "A server needs a few named variables; serializing or walking all of `process.env` / `os.environ` collects every token the client passed it.",
    "Read the variables the server needs by name (`process.env.API_KEY`, `os.environ[\"API_KEY\"]`)."
);
rule!(
    SENSITIVE_FILE_ACCESS,
    "sensitive-file-access",
    High,
    "a path names a credential store (SSH keys, cloud or registry credentials, browser profiles, keychains, MCP client configs)",
    "An MCP server has no reason to open another program's credentials; these paths are what stealers read first.",
    "Do not install it unless the server's documented purpose is managing that file; run it under `palisade run`, whose sandbox hides HOME."
);
rule!(
    PERSISTENCE_WRITE,
    "persistence-write",
    High,
    "code names a shell startup file, git hook or autostart location (and writes files)",
    "Writing ~/.bashrc, ~/.zshrc, .git/hooks/* or an autostart entry runs attacker code long after the server exits, outside any sandbox.",
    "Do not install it; a server that must change such files should tell the user to do it."
);
rule!(
    DYNAMIC_CODE,
    "dynamic-code",
    High,
    "code is built at run time and executed (eval, Function, vm, exec, compile)",
    "Evaluating a computed string hides what runs from every reviewer and every static check, and turns any injected text into code.",
    "Replace it with ordinary code; if it is a template engine or REPL, confirm that is the package's purpose."
);
rule!(
    PACKED_CODE,
    "packed-code",
    High,
    "obfuscated or packed code: decoded data is executed, or packer/obfuscator fingerprints",
    "Published servers ship readable JavaScript or Python; decode-then-execute and obfuscator output exist to hide a payload.",
    "Do not install it; ask the publisher for the unobfuscated source."
);
rule!(
    SHELL_COMMAND,
    "shell-command",
    Medium,
    "a command runs through a shell (exec, shell: true, shell=True, os.system, os.popen)",
    "A shell interprets metacharacters, so any argument that reaches the command line can run other commands (CVE-2025-6514 was this bug).",
    "Run the program directly with an argument array (`execFile`, `spawn` without `shell`, `subprocess.run([...])`)."
);
rule!(
    DYNAMIC_IMPORT,
    "dynamic-import",
    Medium,
    "a module is loaded by a computed name (require(x), import(x), __import__(x), importlib.import_module(x))",
    "A computed module name can load code that no reviewer saw, including a file the package downloaded or wrote.",
    "Import modules by literal name; if it is a plugin loader, check where the names come from."
);
rule!(
    ENCODED_BLOB,
    "encoded-blob",
    Medium,
    "a long base64, hex or escape-encoded string literal",
    "Long encoded literals are how payloads, second-stage URLs and stolen-data endpoints are hidden from a reader.",
    "Decode it and check what it is; images and fonts belong in files, not in code."
);
rule!(
    OUTBOUND_NETWORK,
    "outbound-network",
    Low,
    "the code opens network connections (HTTP clients, fetch, sockets, DNS)",
    "Network access is how data leaves; for a server whose job is calling an API it is expected, for a local tool it is not.",
    "Check the destinations match the server's purpose, and grant exactly those with `--allow-net HOST`."
);
rule!(
    PROCESS_SPAWN,
    "process-spawn",
    Low,
    "the code starts other programs (without a shell)",
    "Starting programs is legitimate for git or build tools, but it is also how a payload runs; the sandbox's exec allowlist decides what may start.",
    "Check the programs match the server's purpose."
);
rule!(
    HIGH_ENTROPY_STRING,
    "high-entropy-string",
    Low,
    "a random-looking string literal (a key, token or encoded fragment)",
    "Embedded keys leak, and random-looking fragments are often pieces of an encoded payload.",
    "Check what it is; credentials belong in the environment or the keychain, not in a package."
);
rule!(
    MINIFIED_CODE,
    "minified-code",
    Info,
    "a minified or bundled file: its findings are collapsed to one per rule",
    "Minified code cannot be reviewed by reading it, and one bundle can hold hundreds of matches; the collapsed count still shows what it does.",
    "Prefer a package that ships readable source, or review the unminified source it was built from."
);
rule!(
    FILE_NOT_ANALYZED,
    "file-not-analyzed",
    Low,
    "a source file was not analyzed (too large or unreadable)",
    "What is not read is not checked: a payload placed in an oversized file would pass unseen.",
    "Review the file by hand, or raise the limit (`max_file_bytes`)."
);

/// Every static red-flag rule, most severe first (the order findings of equal severity are listed in).
pub static CODE: &[&RuleMeta] = &[
    &EXFILTRATION_PATTERN,
    &ENV_HARVESTING,
    &SENSITIVE_FILE_ACCESS,
    &PERSISTENCE_WRITE,
    &DYNAMIC_CODE,
    &PACKED_CODE,
    &SHELL_COMMAND,
    &DYNAMIC_IMPORT,
    &ENCODED_BLOB,
    &OUTBOUND_NETWORK,
    &PROCESS_SPAWN,
    &HIGH_ENTROPY_STRING,
    &FILE_NOT_ANALYZED,
    &MINIFIED_CODE,
];

// ---- descriptions ------------------------------------------------------------------------------------

rule!(
    UNICODE_TAG_CHARACTERS,
    "unicode-tag-characters",
    Critical,
    "invisible Unicode tag characters (U+E0000–U+E007F) that spell out hidden text",
    "Tag characters render as nothing but models read them as ASCII: text the user never sees, addressed to the model.",
    "Do not approve this tool; the message shows the hidden text."
);
rule!(
    INVISIBLE_CHARACTERS,
    "invisible-characters",
    High,
    "zero-width, filler or variation-selector characters inside the text",
    "Invisible characters split trigger words so filters miss them, or carry data in runs of selectors; honest descriptions do not need them.",
    "Do not approve this tool until the publisher removes them."
);
rule!(
    BIDI_CONTROL_CHARACTERS,
    "bidi-control-characters",
    High,
    "bidirectional control characters (U+202A–U+202E, U+2066–U+2069, marks)",
    "Bidi controls make the displayed text differ from the text the model reads (Trojan Source).",
    "Do not approve this tool until the publisher removes them."
);
rule!(
    ANSI_ESCAPE_SEQUENCE,
    "ansi-escape-sequence",
    High,
    "ANSI terminal escape sequences",
    "Escape sequences can hide, recolor or erase text in a terminal, so a user reviewing a tool list sees something other than what the model reads.",
    "Do not approve this tool; palisade shows the sequences escaped."
);
rule!(
    CONTROL_CHARACTERS,
    "control-characters",
    Medium,
    "other control characters (backspace, lone carriage return, NUL…)",
    "Backspaces and lone carriage returns overwrite text on display; they have no place in a description.",
    "Ask the publisher to remove them."
);
rule!(
    HTML_COMMENT,
    "html-comment",
    Medium,
    "an HTML comment inside a description",
    "Clients that render markdown hide comments from the user, while the model still reads them.",
    "Read the comment (shown in the message); approve only if it is harmless."
);
rule!(
    INSTRUCTION_MARKUP,
    "instruction-markup",
    High,
    "markup addressed to the model (<IMPORTANT>, <system>, [INST], chat-template tokens)",
    "Pseudo-tags and chat-template tokens are how injected instructions try to look authoritative to a model.",
    "Do not approve this tool until you have read the tagged text."
);
rule!(
    INSTRUCTION_OVERRIDE,
    "instruction-override",
    Critical,
    "text tells the model to ignore its previous instructions or take a new role",
    "A tool description that overrides the model's instructions is a prompt injection, whatever the rest says.",
    "Do not approve this tool."
);
rule!(
    CONCEAL_FROM_USER,
    "conceal-from-user",
    Critical,
    "text tells the model to hide something from the user",
    "An honest tool never needs the model to keep a secret from its user; this is the signature of tool poisoning.",
    "Do not approve this tool."
);
rule!(
    PRECONDITION_INSTRUCTION,
    "precondition-instruction",
    High,
    "text orders the model to take other actions first (read a file, call a tool, pass content) or the tool 'will not work'",
    "Poisoned tools make the model do the harmful step as a 'requirement' of an innocent-looking call.",
    "Check the required step is part of the tool's purpose; if not, do not approve it."
);
rule!(
    SECRET_REQUEST,
    "secret-request",
    Critical,
    "text asks for credentials or credential files (SSH keys, .env, API keys, MCP configs)",
    "A description that asks the model to read or pass secrets is asking it to steal them.",
    "Do not approve this tool."
);
rule!(
    CONTEXT_EXFILTRATION,
    "context-exfiltration",
    High,
    "text asks for the conversation, system prompt or other tools' results to be passed along",
    "The conversation holds whatever the user shared; asking for it in an argument sends it to the server.",
    "Do not approve this tool unless that is its stated purpose."
);
rule!(
    CROSS_TOOL_REFERENCE,
    "cross-tool-reference",
    High,
    "the description refers to tools it does not own, or to all other tools or servers",
    "A tool that gives rules for other servers' tools can redirect them (shadowing): e.g. change the recipient of every email sent.",
    "Read what it says about the other tool; approve only if the reference is informational."
);
rule!(
    EXFILTRATION_PARAMETER,
    "exfiltration-parameter",
    High,
    "a parameter built to carry data out (sidenote, notes, context, feedback…) with no stated purpose",
    "A free-text parameter the tool does not explain is where poisoned instructions ask the model to put secrets or the conversation.",
    "Ask what the parameter is for; deny the tool or the argument until it is explained."
);
rule!(
    EXFILTRATION_URL,
    "exfiltration-url",
    High,
    "text tells the model to send data to a URL, or embeds a data-carrying link or image",
    "A markdown image or link with data in its query string leaks that data when the client renders it.",
    "Do not approve this tool."
);
rule!(
    ENCODED_PAYLOAD,
    "encoded-payload",
    Medium,
    "a long base64 run inside a description",
    "Encoded text hides instructions from a human reviewer while some models decode and follow it.",
    "Decode it (the message shows what it decodes to) and approve only if it is harmless."
);
rule!(
    UNUSUAL_TOOL_NAME,
    "unusual-tool-name",
    Medium,
    "a tool name with characters outside A–Z a–z 0–9 _ - . (homoglyphs, spaces, controls)",
    "Look-alike names (Cyrillic 'а' in 'read_file') impersonate another server's tool.",
    "Rename or deny the tool; tool names should use the MCP-recommended characters."
);
rule!(
    EMPHATIC_LANGUAGE,
    "emphatic-language",
    Low,
    "shouting aimed at the model (VERY IMPORTANT, CRITICAL, !!!)",
    "Urgency markers are a common ingredient of injected instructions; alone they are only a hint.",
    "Read the description closely."
);
rule!(
    EXCESSIVE_LENGTH,
    "excessive-length",
    Low,
    "a description far longer than a tool needs",
    "Very long descriptions bury instructions where a reviewer stops reading and cost context on every request.",
    "Read it in full before approving."
);

/// Every description rule, most severe first.
pub static DESCRIPTION: &[&RuleMeta] = &[
    &UNICODE_TAG_CHARACTERS,
    &INSTRUCTION_OVERRIDE,
    &CONCEAL_FROM_USER,
    &SECRET_REQUEST,
    &INVISIBLE_CHARACTERS,
    &BIDI_CONTROL_CHARACTERS,
    &ANSI_ESCAPE_SEQUENCE,
    &INSTRUCTION_MARKUP,
    &PRECONDITION_INSTRUCTION,
    &CONTEXT_EXFILTRATION,
    &CROSS_TOOL_REFERENCE,
    &EXFILTRATION_PARAMETER,
    &EXFILTRATION_URL,
    &CONTROL_CHARACTERS,
    &HTML_COMMENT,
    &ENCODED_PAYLOAD,
    &UNUSUAL_TOOL_NAME,
    &EMPHATIC_LANGUAGE,
    &EXCESSIVE_LENGTH,
];

/// The rule with this id, in either list.
pub fn by_id(id: &str) -> Option<&'static RuleMeta> {
    CODE.iter().chain(DESCRIPTION).copied().find(|r| r.id == id)
}

/// Position of `id` in its list (sort key for equal severities).
pub(crate) fn rank(id: &str) -> usize {
    CODE.iter()
        .chain(DESCRIPTION)
        .position(|r| r.id == id)
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable() {
        let code: Vec<&str> = CODE.iter().map(|r| r.id).collect();
        assert_eq!(
            code,
            [
                "exfiltration-pattern",
                "env-harvesting",
                "sensitive-file-access",
                "persistence-write",
                "dynamic-code",
                "packed-code",
                "shell-command",
                "dynamic-import",
                "encoded-blob",
                "outbound-network",
                "process-spawn",
                "high-entropy-string",
                "file-not-analyzed",
                "minified-code",
            ],
            "rule ids are a public API: add new ones, never rename or remove"
        );
        let desc: Vec<&str> = DESCRIPTION.iter().map(|r| r.id).collect();
        assert_eq!(
            desc,
            [
                "unicode-tag-characters",
                "instruction-override",
                "conceal-from-user",
                "secret-request",
                "invisible-characters",
                "bidi-control-characters",
                "ansi-escape-sequence",
                "instruction-markup",
                "precondition-instruction",
                "context-exfiltration",
                "cross-tool-reference",
                "exfiltration-parameter",
                "exfiltration-url",
                "control-characters",
                "html-comment",
                "encoded-payload",
                "unusual-tool-name",
                "emphatic-language",
                "excessive-length",
            ],
            "rule ids are a public API: add new ones, never rename or remove"
        );
    }

    #[test]
    fn ids_are_unique_kebab_case_and_disjoint_from_scan() {
        let mut seen = std::collections::HashSet::new();
        for r in CODE.iter().chain(DESCRIPTION) {
            assert!(seen.insert(r.id), "{} is listed twice", r.id);
            assert!(
                r.id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}: ids are kebab-case",
                r.id
            );
            assert!(
                palisade_scan::rules::by_id(r.id).is_none(),
                "{} is also a `palisade scan` rule id",
                r.id
            );
            for (what, text) in [("title", r.title), ("why", r.why), ("fix", r.fix)] {
                assert!(!text.trim().is_empty(), "{}: empty {what}", r.id);
            }
            assert_eq!(by_id(r.id).map(|m| m.id), Some(r.id));
        }
    }

    #[test]
    fn registries_are_ordered_most_severe_first() {
        for list in [CODE, DESCRIPTION] {
            assert!(
                list.windows(2).all(|w| w[0].severity >= w[1].severity),
                "keep each list sorted by default severity"
            );
        }
    }

    #[test]
    fn docs_list_every_rule_with_its_severity() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/analysis.md");
        let docs = std::fs::read_to_string(path).unwrap();
        for r in CODE.iter().chain(DESCRIPTION) {
            let row = format!("| `{}` | {} |", r.id, r.severity);
            assert!(
                docs.contains(&row),
                "docs/analysis.md lacks the row `{row}`"
            );
        }
    }
}
