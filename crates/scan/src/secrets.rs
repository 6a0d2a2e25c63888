//! Finding plaintext secrets in config values without crying wolf.
//!
//! The token formats are the audit log redactor's ([`palisade_audit::find_secrets`]): one list serves
//! both. The redactor errs towards masking (a false positive costs a log reader some context); a scanner
//! must not (a false positive trains people to ignore it), so every candidate passes two more tests here:
//!
//! * **not a placeholder**: references (`${GITHUB_TOKEN}`, `${env:X}`, `${input:x}`, `$X`, `%X%`,
//!   `{{x}}`), bracketed hints (`<TOKEN>`, `[your key]`), filler words (`your-token-here`, `changeme`,
//!   `xxxx`, `***`), and the documented example keys vendors print in their docs (AWS's
//!   `AKIAIOSFODNN7EXAMPLE`, anything containing `EXAMPLE`): such values are not credentials, and
//!   flagging them would make clean configs noisy;
//! * **random enough**: a value with no recognizable token format counts only when its key says it is
//!   secret (`*_TOKEN`, `*_API_KEY`, `PASSWORD`, `Authorization`, `--token`) and it has at least 8
//!   characters and enough Shannon entropy (3.5 bits per character, or 3 with mixed character classes:
//!   `Tr0ub4dor&3` yes, `development` no).
//!
//! A secret is never shown whole: known formats keep their public prefix and the last four characters
//! (`ghp_…a1b2`), everything else shows only its kind.

use palisade_audit::{find_secrets, is_secret_key};
use std::collections::HashMap;
use std::ops::Range;

/// A secret found in one string value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The token kind (`github-token`, `url-password`, `secret-value`, …).
    pub kind: &'static str,
    /// Byte range within the value.
    pub range: Range<usize>,
    /// A safe rendering (`ghp_…a1b2`, or the kind's label).
    pub shown: String,
}

impl Hit {
    /// A person's name for the kind ("GitHub token").
    pub fn label(&self) -> &'static str {
        label(self.kind)
    }

    /// "a GitHub token in plaintext (ghp_…a1b2)": the kind with its article, and the masked form when it
    /// says more than the kind.
    pub fn describe(&self) -> String {
        let l = self.label();
        let article = if l.starts_with(['A', 'E', 'I', 'O', 'U', 'a', 'e', 'i', 'o', 'u'])
            || l.starts_with("npm")
        {
            "an"
        } else {
            "a"
        };
        if self.shown == l {
            format!("{article} {l} in plaintext")
        } else {
            format!("{article} {l} in plaintext ({})", self.shown)
        }
    }
}

/// The environment variable name a secret of `kind` usually goes by, for fixes.
pub fn suggested_name(kind: &str) -> &'static str {
    match kind {
        "github-token" => "GITHUB_TOKEN",
        "gitlab-token" => "GITLAB_TOKEN",
        "slack-token" => "SLACK_BOT_TOKEN",
        "anthropic-key" => "ANTHROPIC_API_KEY",
        "openai-key" => "OPENAI_API_KEY",
        "stripe-key" => "STRIPE_API_KEY",
        "aws-access-key-id" => "AWS_ACCESS_KEY_ID",
        "google-api-key" => "GOOGLE_API_KEY",
        "huggingface-token" => "HF_TOKEN",
        "npm-token" => "NPM_TOKEN",
        "pypi-token" => "PYPI_TOKEN",
        "url-password" => "DATABASE_URL",
        "private-key" => "PRIVATE_KEY",
        _ => "API_TOKEN",
    }
}

/// A person's name for a token kind.
pub fn label(kind: &str) -> &'static str {
    match kind {
        "github-token" => "GitHub token",
        "gitlab-token" => "GitLab token",
        "slack-token" => "Slack token",
        "anthropic-key" => "Anthropic API key",
        "openai-key" => "OpenAI API key",
        "stripe-key" => "Stripe key",
        "aws-access-key-id" => "AWS access key id",
        "google-api-key" => "Google API key",
        "huggingface-token" => "Hugging Face token",
        "npm-token" => "npm token",
        "pypi-token" => "PyPI token",
        "jwt" => "JWT",
        "private-key" => "private key",
        "url-password" => "password in a URL",
        "authorization" | "bearer" => "bearer credential",
        "secret-field" => "secret in a key=value pair",
        _ => "secret value",
    }
}

/// Secrets in `value`. `key` is the name it is stored under (env var, header, preceding `--flag`), which
/// lets a value with no known format count as a secret.
pub fn scan(value: &str, key: Option<&str>) -> Vec<Hit> {
    let mut out = Vec::new();
    for s in find_secrets(value) {
        let mut range = s.range.clone();
        if matches!(s.kind, "authorization" | "bearer") {
            // `Bearer xyz` / `Basic xyz`: the credential is the last word.
            let v = &value[range.clone()];
            if let Some(i) = v.trim_end().rfind(char::is_whitespace) {
                range.start += i + 1;
            }
        }
        let secret = &value[range.clone()];
        let generic = s.prefix_len == 0 && !matches!(s.kind, "jwt" | "private-key");
        if is_placeholder(secret) || (generic && !random_enough(secret)) {
            continue;
        }
        out.push(Hit {
            kind: s.kind,
            shown: show(s.kind, secret, s.prefix_len),
            range,
        });
    }
    let whole = value.trim();
    if out.is_empty()
        && key.is_some_and(is_secret_name)
        && !is_placeholder(whole)
        && random_enough(whole)
        && !looks_like_path_or_url(whole)
    {
        let start = value.len() - value.trim_start().len();
        out.push(Hit {
            kind: "secret-value",
            shown: format!("secret value, {} characters", whole.chars().count()),
            range: start..start + whole.len(),
        });
    }
    out
}

/// Whether a name (env var, header, flag) says its value is a secret: `GITHUB_TOKEN`, `api-key`,
/// `--password`, `Authorization`.
pub fn is_secret_name(name: &str) -> bool {
    is_secret_key(name.trim_start_matches('-'))
}

/// `value` with every hit replaced by its safe rendering.
pub fn masked(value: &str, hits: &[Hit]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for h in hits {
        out.push_str(&value[at..h.range.start]);
        out.push('[');
        out.push_str(&h.shown);
        out.push(']');
        at = h.range.end;
    }
    out.push_str(&value[at..]);
    out
}

/// Command-line words with their secrets masked (a word after a `--secret-flag` counts as named by it).
pub fn masked_argv<S: AsRef<str>>(words: &[S]) -> Vec<String> {
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let hint = i
                .checked_sub(1)
                .map(|p| words[p].as_ref())
                .filter(|p| p.starts_with('-') && !p.contains('='));
            let w = w.as_ref();
            masked(w, &scan(w, hint))
        })
        .collect()
}

fn show(kind: &str, secret: &str, prefix_len: usize) -> String {
    let n = secret.chars().count();
    if prefix_len > 0 && n >= prefix_len + 16 {
        let tail: String = secret.chars().skip(n - 4).collect();
        format!("{}…{tail}", &secret[..prefix_len])
    } else {
        label(kind).to_owned()
    }
}

const FILLER: &[&str] = &[
    "example",
    "your",
    "here",
    "placeholder",
    "changeme",
    "change-me",
    "change_me",
    "replace",
    "insert",
    "redacted",
    "dummy",
    "sample",
    "xxxx",
    "****",
    "...",
    "…",
    "todo",
    "fixme",
];

/// Not a credential but a stand-in for one (see the module docs).
pub fn is_placeholder(v: &str) -> bool {
    let v = v.trim();
    if v.len() < 8 {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    let reference = v.contains("${")
        || v.contains("$(")
        || v.contains("{{")
        || (v.starts_with('$')
            && v[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
        || (v.starts_with('%') && v.ends_with('%'));
    let bracketed = (v.starts_with('<') && v.ends_with('>'))
        || (v.starts_with('[') && v.ends_with(']'))
        || (v.starts_with('{') && v.ends_with('}'))
        || (v.contains('<') && v.contains('>'));
    let distinct = {
        let mut seen: Vec<char> = v
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    };
    // Filler words are only looked for in short values: a long random body (a PEM key, a JWT) contains
    // a four-letter word by chance often enough to matter.
    let filler = if v.len() <= 100 {
        FILLER.iter().any(|w| lower.contains(w))
    } else {
        ["...", "…", "xxxx"].iter().any(|w| lower.contains(w))
    };
    reference || bracketed || distinct < 5 || filler
}

/// At least 8 characters, and either 3.5 bits of entropy per character, or 3 bits and at least two
/// character classes (lower, upper, digit, other): `development` is a word, `dev3lopment!` is not.
fn random_enough(v: &str) -> bool {
    let n = v.chars().count();
    let classes = [
        v.chars().any(|c| c.is_ascii_lowercase()),
        v.chars().any(|c| c.is_ascii_uppercase()),
        v.chars().any(|c| c.is_ascii_digit()),
        v.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    let e = entropy(v);
    n >= 8 && (e >= 3.5 || (classes >= 2 && e >= 3.0))
}

fn looks_like_path_or_url(v: &str) -> bool {
    v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with("~/")
        || v.starts_with("file:")
        || (v.contains("://") && !v.contains('@'))
}

/// Shannon entropy in bits per character.
pub fn entropy(v: &str) -> f64 {
    let mut freq: HashMap<char, usize> = HashMap::new();
    let mut n = 0usize;
    for c in v.chars() {
        *freq.entry(c).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    freq.values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic random-looking body, so no real secret is a literal in this file.
    pub(crate) fn body(n: usize) -> String {
        let a: Vec<char> = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
            .chars()
            .collect();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                a[(x % a.len() as u64) as usize]
            })
            .collect()
    }

    #[test]
    fn known_formats_are_found_and_shown_masked() {
        let tok = ["gh", "p_", &body(36)].concat();
        let hits = scan(&tok, None);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].kind, "github-token");
        assert_eq!(hits[0].shown, format!("ghp_…{}", &tok[tok.len() - 4..]));
        assert!(!hits[0].shown.contains(&tok[4..20]));
    }

    #[test]
    fn placeholders_are_not_secrets() {
        for v in [
            "your-token-here",
            "<TOKEN>",
            "${GITHUB_TOKEN}",
            "${env:GITHUB_TOKEN}",
            "${input:github_token}",
            "$GITHUB_TOKEN",
            "%GITHUB_TOKEN%",
            "xxxxxxxxxxxxxxxx",
            "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "sk-your-openai-key-goes-here-1234",
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "changeme",
            "Bearer ${API_TOKEN}",
            "postgres://user:${DB_PASSWORD}@localhost/db",
        ] {
            assert!(scan(v, Some("API_TOKEN")).is_empty(), "{v}");
        }
    }

    #[test]
    fn key_named_secrets_need_entropy() {
        assert!(scan("development", Some("SECRET_KEY")).is_empty());
        assert!(scan("/home/u/.config/token.txt", Some("API_TOKEN")).is_empty());
        let pw = "Tr0ub4dor&3-horse";
        let hits = scan(pw, Some("DB_PASSWORD"));
        assert_eq!(hits[0].kind, "secret-value");
        assert!(!hits[0].shown.contains("Tr0ub"));
        assert!(
            scan(pw, Some("DB_HOST")).is_empty(),
            "no key hint, no format: not flagged"
        );
    }

    #[test]
    fn connection_string_passwords_and_bearer_headers_are_found() {
        let url = format!("postgres://app:{}@db.internal:5432/app", body(20));
        let hits = scan(&url, None);
        assert_eq!(hits[0].kind, "url-password");
        assert_eq!(
            masked(&url, &hits),
            "postgres://app:[password in a URL]@db.internal:5432/app"
        );
        let h = format!("Bearer {}", body(32));
        let hits = scan(&h, Some("Authorization"));
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(&h[hits[0].range.clone()], &h[7..]);
    }

    #[test]
    fn entropy_separates_words_from_keys() {
        assert!(entropy("aaaaaaaa") < 0.1);
        assert!(entropy(&body(40)) > 4.0);
    }
}
