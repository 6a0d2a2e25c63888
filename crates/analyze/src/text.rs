//! Small text helpers both analyses share: escape decoding, entropy, base64, display snippets.

/// Shannon entropy of `s` in bits per character.
pub(crate) fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::<char, usize>::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    counts
        .values()
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether `s` holds an alphabet-like run (`abcdefghij`, `0123456789`, `ABCDEFGHIJ`): character tables
/// (base64 alphabets, id generators) are random-looking by entropy but are not secrets.
pub(crate) fn has_alphabet_run(s: &str) -> bool {
    let b = s.as_bytes();
    let mut run = 1;
    for w in b.windows(2) {
        if w[1] == w[0].wrapping_add(1) {
            run += 1;
            if run >= 8 {
                return true;
            }
        } else {
            run = 1;
        }
    }
    false
}

/// Decodes standard or URL-safe base64 (padding and ASCII whitespace ignored); `None` if it is not
/// base64.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// `bytes` as text when it is mostly printable (≥ 90 % printable ASCII or whitespace, valid UTF-8).
pub(crate) fn printable(bytes: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(bytes).ok()?;
    let total = s.chars().count();
    if total == 0 {
        return None;
    }
    let good = s
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t' | '\r'))
        .count();
    (good * 10 >= total * 9).then(|| s.to_owned())
}

/// Decodes the escapes of a JavaScript or Python string body (`\n`, `\xHH`, `\uHHHH`, `\u{…}`,
/// `\UHHHHHHHH`, octal `\NNN`, line continuations); unknown escapes keep the character.
pub(crate) fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut it = body.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = it.next() else {
            out.push('\\');
            break;
        };
        let hex = |it: &mut std::iter::Peekable<std::str::Chars<'_>>, n: usize| {
            let mut v = 0u32;
            for _ in 0..n {
                let d = it.peek().and_then(|c| c.to_digit(16))?;
                it.next();
                v = v * 16 + d;
            }
            char::from_u32(v)
        };
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match it.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            it.next();
                        }
                        None => break,
                    }
                }
                out.extend(char::from_u32(v));
            }
            'x' => out.extend(hex(&mut it, 2)),
            'U' => out.extend(hex(&mut it, 8)),
            'u' if it.peek() == Some(&'{') => {
                it.next();
                let mut v = 0u32;
                while let Some(d) = it.peek().and_then(|c| c.to_digit(16)) {
                    v = v.saturating_mul(16).saturating_add(d);
                    it.next();
                }
                if it.peek() == Some(&'}') {
                    it.next();
                }
                out.extend(char::from_u32(v));
            }
            'u' => out.extend(hex(&mut it, 4)),
            '\n' => {}
            other => out.push(other),
        }
    }
    out
}

/// One line of at most `max` characters: whitespace runs collapsed, control characters escaped, cut
/// with `…`.
pub(crate) fn snippet(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut n = 0;
    let mut space = false;
    for c in s.chars() {
        if n >= max {
            out.push('…');
            return out;
        }
        if c.is_whitespace() {
            if !space && !out.is_empty() {
                out.push(' ');
                n += 1;
            }
            space = true;
            continue;
        }
        space = false;
        if c.is_control() || is_invisible(c) {
            let e = format!("\\u{{{:x}}}", c as u32);
            n += e.len();
            out.push_str(&e);
        } else {
            out.push(c);
            n += 1;
        }
    }
    out.trim_end().to_owned()
}

/// A secret-shaped value with only its ends shown (`AKIA…WXYZ`).
pub(crate) fn masked(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 12 {
        return "…".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail} ({} chars)", chars.len())
}

/// Characters that render as nothing (or nearly) in most fonts: zero-width, fillers, bidi controls,
/// tag characters and variation selectors.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xE0000..=0xE007F | 0xE0100..=0xE01EF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_like_the_languages_do() {
        assert_eq!(unescape(r"\x2e\x73sh"), ".ssh");
        assert_eq!(unescape(r"\u002e\u{73}s\150"), ".ssh");
        assert_eq!(unescape(r"a\\b\'"), r"a\b'");
        assert_eq!(unescape(r"\U0001F600"), "\u{1F600}");
    }

    #[test]
    fn base64_round_trips_text_and_rejects_other_alphabets() {
        assert_eq!(
            base64_decode("aWdub3JlIHByZXZpb3Vz").as_deref(),
            Some(&b"ignore previous"[..])
        );
        assert!(base64_decode("not base64!").is_none());
        assert_eq!(printable(b"hello\nworld").as_deref(), Some("hello\nworld"));
        assert!(printable(&[0, 1, 2, 3, 200]).is_none());
    }

    #[test]
    fn entropy_separates_keys_from_words_and_alphabets_are_spotted() {
        assert!(entropy("aaaaaaaaaaaaaaaa") < 0.1);
        assert!(entropy("f9Kq2Lx8ZpR4tW7mN3bV6cY1hJ5gD0sA") > 4.5);
        assert!(has_alphabet_run(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        ));
        assert!(!has_alphabet_run("f9Kq2Lx8ZpR4tW7mN3bV6cY1hJ5gD0sA"));
    }

    #[test]
    fn snippets_are_one_short_line_with_invisibles_shown() {
        assert_eq!(snippet("a\n   b", 80), "a b");
        assert_eq!(snippet("abcdef", 3), "abc…");
        assert_eq!(snippet("x\u{200b}y", 80), "x\\u{200b}y");
        assert_eq!(masked("AKIAABCDEFGHIJKLWXYZ"), "AKIA…WXYZ (20 chars)");
    }
}
