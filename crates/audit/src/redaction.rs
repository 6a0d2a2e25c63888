//! Redaction of secrets before anything is logged.
//!
//! Tool arguments, server stderr and error details routinely carry credentials: a GitHub token passed to a
//! `create_issue` tool, a database URL with a password, `Authorization: Bearer …` in a debug line. The audit
//! log is long-lived and read by people and tools, so secrets are masked before they reach it.
//!
//! * [`redact`] walks a JSON value. Values of object keys named like secrets (`password`, `token`,
//!   `api_key`, `authorization`, `client_secret`, … compared case-insensitively with `-`/`_`/`.` ignored)
//!   are replaced whole, whatever they contain (null and `""` are kept, since they hold nothing). Every
//!   other string goes through [`redact_str`].
//! * [`redact_str`] masks secrets found inside free text **in place**, keeping the text around them:
//!   known token formats (GitHub, GitLab, Slack, OpenAI, Anthropic, AWS access key ids, Google API keys,
//!   Stripe, Hugging Face, npm, PyPI, JWTs, PEM private keys), the password of `scheme://user:pass@host`, the credential after
//!   `Bearer`, and the value in `password=…`/`"token": "…"`-style pairs.
//!
//! A masked secret becomes `[REDACTED:<kind>]`, e.g. `[REDACTED:github-token]`, so a reader still sees that
//! a token was there and of what sort. Placeholders such as `AKIAXXXXXXXXXXXXXXXX` (fewer than five
//! distinct characters after the prefix) and too-short strings are left alone. The redactor errs towards
//! masking: a false positive costs a log reader some context, a false negative leaks a credential.
//!
//! [`find_secrets`] reports where those same patterns match (kind and byte range) without masking, for
//! callers that must point at a secret rather than hide it (`palisade scan`); one list of token formats
//! serves both.
//!
//! All patterns are compiled once ([`LazyLock`]); text with no candidate at all is rejected by one
//! [`RegexSet`] pass and returned borrowed.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use regex::{Captures, Regex, RegexSet};
use serde_json::Value;

/// How a pattern's match is masked.
#[derive(Clone, Copy)]
enum Mask {
    /// Replace the whole match, unless group 1 (the part after the fixed prefix) looks like a placeholder.
    Token,
    /// Replace the whole match.
    Whole,
    /// Keep group 1, mask group 2 (`user:` + password, `key=` + value, `Bearer ` + credential).
    Value,
}

struct Pattern {
    kind: &'static str,
    regex: &'static str,
    mask: Mask,
}

/// Order matters: patterns that keep a prefix and mask a value run first (the value is masked whole,
/// whatever token it holds; `Authorization:` before `Bearer` so `Basic` credentials go too), then the
/// more specific token formats before the ones whose prefix they share (`sk-ant-` before `sk-`).
const PATTERNS: &[Pattern] = &[
    Pattern {
        kind: "private-key",
        regex: r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?s:.*?)(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\z)",
        mask: Mask::Whole,
    },
    Pattern {
        kind: "url-password",
        regex: r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@?#]*:)([^\s/@?#]+)@",
        mask: Mask::Value,
    },
    Pattern {
        kind: "authorization",
        regex: r#"(?i)(\b(?:proxy-)?authorization"?\s*[=:]\s*["']?)([^\s"'\[][^"'\r\n]*)"#,
        mask: Mask::Value,
    },
    Pattern {
        kind: "bearer",
        regex: r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/-]{16,}=*)",
        mask: Mask::Value,
    },
    Pattern {
        kind: "secret-field",
        regex: r#"(?i)(\b[a-z0-9_.-]*(?:password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key|access[_-]?key)"?\s*[=:]\s*["']?)([^\s"'&,;{\[][^\s"'&,;]*)"#,
        mask: Mask::Value,
    },
    Pattern {
        kind: "github-token",
        regex: r"\b(?:gh[pousr]_|github_pat_)([A-Za-z0-9_]{30,})\b",
        mask: Mask::Token,
    },
    Pattern {
        kind: "gitlab-token",
        regex: r"\bglpat-([A-Za-z0-9_.-]{20,})",
        mask: Mask::Token,
    },
    Pattern {
        kind: "slack-token",
        regex: r"\bxox[abprs]-([A-Za-z0-9-]{10,})",
        mask: Mask::Token,
    },
    Pattern {
        kind: "anthropic-key",
        regex: r"\bsk-ant-([A-Za-z0-9_-]{20,})",
        mask: Mask::Token,
    },
    Pattern {
        kind: "openai-key",
        regex: r"\bsk-(?:proj-|svcacct-|admin-)?([A-Za-z0-9_-]{20,})",
        mask: Mask::Token,
    },
    Pattern {
        kind: "stripe-key",
        regex: r"\b(?:sk|rk)_(?:live|test)_([A-Za-z0-9]{16,})",
        mask: Mask::Token,
    },
    Pattern {
        kind: "aws-access-key-id",
        regex: r"\b(?:AKIA|ASIA)([A-Z0-9]{16})\b",
        mask: Mask::Token,
    },
    Pattern {
        kind: "google-api-key",
        regex: r"\bAIza([0-9A-Za-z_-]{35})",
        mask: Mask::Token,
    },
    Pattern {
        kind: "huggingface-token",
        regex: r"\bhf_([A-Za-z0-9]{30,})\b",
        mask: Mask::Token,
    },
    Pattern {
        kind: "npm-token",
        regex: r"\bnpm_([A-Za-z0-9]{36})\b",
        mask: Mask::Token,
    },
    Pattern {
        kind: "pypi-token",
        regex: r"\bpypi-AgEIcHlwaS5vcmc([A-Za-z0-9_-]{50,})",
        mask: Mask::Token,
    },
    Pattern {
        kind: "jwt",
        regex: r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*",
        mask: Mask::Whole,
    },
];

static COMPILED: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    PATTERNS
        .iter()
        .map(|p| Regex::new(p.regex).expect("redaction patterns are valid"))
        .collect()
});

static ANY: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(PATTERNS.iter().map(|p| p.regex)).expect("redaction patterns are valid")
});

/// Normalized (lower-case, `-_.` removed) object keys whose values are always masked.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "xapikey",
    "authorization",
    "proxyauthorization",
    "auth",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "clientsecret",
    "privatekey",
    "secretkey",
    "accesskey",
    "secretaccesskey",
    "sessiontoken",
    "credentials",
    "credential",
    "cookie",
    "setcookie",
    "bearer",
];

/// Endings that make a normalized key secret too (`db_password`, `github_token`, `stripe_api_key`).
const SECRET_KEY_ENDINGS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "secretkey",
    "accesskey",
    "authorization",
    "credentials",
];

/// Whether an object key names a secret (see the [module docs](self)).
pub fn is_secret_key(key: &str) -> bool {
    let norm: String = key
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_KEYS.contains(&norm.as_str()) || SECRET_KEY_ENDINGS.iter().any(|e| norm.ends_with(e))
}

/// A copy of `value` with secrets masked. See the [module docs](self).
pub fn redact(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(redact_str(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) && !is_empty(v) {
                        Value::String("[REDACTED:secret-field]".to_owned())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// `text` with secrets masked in place; borrowed when nothing was found.
pub fn redact_str(text: &str) -> Cow<'_, str> {
    let hits = ANY.matches(text);
    if !hits.matched_any() {
        return Cow::Borrowed(text);
    }
    let mut out = Cow::Borrowed(text);
    for i in hits.iter() {
        let (p, re) = (&PATTERNS[i], &COMPILED[i]);
        let replaced = match re.replace_all(&out, |c: &Captures<'_>| mask(p, c)) {
            Cow::Borrowed(_) => None,
            Cow::Owned(s) => Some(s),
        };
        if let Some(s) = replaced {
            out = Cow::Owned(s);
        }
    }
    out
}

fn mask(p: &Pattern, c: &Captures<'_>) -> String {
    let whole = &c[0];
    match p.mask {
        Mask::Whole => format!("[REDACTED:{}]", p.kind),
        Mask::Token if looks_like_placeholder(c.get(1).map_or("", |m| m.as_str())) => {
            whole.to_owned()
        }
        Mask::Token => format!("[REDACTED:{}]", p.kind),
        Mask::Value => {
            let secret = c.get(2).map_or("", |m| m.as_str());
            if secret.starts_with("[REDACTED:") {
                return whole.to_owned();
            }
            let keep = c.get(1).map_or("", |m| m.as_str());
            let after = &whole[keep.len() + secret.len()..];
            format!("{keep}[REDACTED:{}]{after}", p.kind)
        }
    }
}

/// A secret located by [`find_secrets`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpan {
    /// The kind, as in `[REDACTED:<kind>]`: `github-token`, `url-password`, `secret-field`, …
    pub kind: &'static str,
    /// Byte range of the secret in the text: the whole token, or only the masked value for the kinds that
    /// keep a prefix (`url-password`, `authorization`, `bearer`, `secret-field`).
    pub range: std::ops::Range<usize>,
    /// Length of the token's fixed, non-secret prefix at the start of `range` (`ghp_`, `sk-ant-`, `AKIA`);
    /// 0 when the kind has none.
    pub prefix_len: usize,
}

/// Where [`redact_str`] would mask something in `text`, in order of position, without overlaps (the pattern
/// [`redact_str`] applies first wins). Placeholders are skipped exactly as [`redact_str`] skips them.
pub fn find_secrets(text: &str) -> Vec<SecretSpan> {
    let hits = ANY.matches(text);
    let mut out: Vec<SecretSpan> = Vec::new();
    for i in hits.iter() {
        let (p, re) = (&PATTERNS[i], &COMPILED[i]);
        for c in re.captures_iter(text) {
            let whole = c.get(0).expect("group 0 always matches");
            let (range, prefix_len) = match p.mask {
                Mask::Whole => (whole.range(), 0),
                Mask::Token => {
                    let body = c.get(1).map_or("", |m| m.as_str());
                    if looks_like_placeholder(body) {
                        continue;
                    }
                    let prefix = c.get(1).map_or(0, |m| m.start() - whole.start());
                    (whole.range(), prefix)
                }
                Mask::Value => match c.get(2) {
                    Some(m) => (m.range(), 0),
                    None => continue,
                },
            };
            if out
                .iter()
                .any(|f| f.range.start < range.end && range.start < f.range.end)
            {
                continue;
            }
            out.push(SecretSpan {
                kind: p.kind,
                range,
                prefix_len,
            });
        }
    }
    out.sort_by_key(|f| f.range.start);
    out
}

/// `xxxxxxxx…`, `00000000…`, `XXXX-XXXX…`: too few distinct characters to be a real random token.
fn looks_like_placeholder(body: &str) -> bool {
    let distinct: HashSet<char> = body
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    distinct.len() < 5
}

#[cfg(test)]
mod tests;
