//! Version ordering for advisory ranges: SemVer for npm (OSV `SEMVER` and npm's `ECOSYSTEM`), PEP 440 for
//! PyPI (OSV `ECOSYSTEM`).
//!
//! A version that does not parse is not guessed at: [`compare`] returns `None` and the caller reports the
//! advisory as one it could not evaluate.

use std::cmp::Ordering;

use crate::spec::Ecosystem;

/// Compares two versions of `ecosystem`; `None` when either does not parse.
pub fn compare(ecosystem: Ecosystem, a: &str, b: &str) -> Option<Ordering> {
    match ecosystem {
        Ecosystem::Npm => Some(semver_parse(a)?.cmp(&semver_parse(b)?)),
        Ecosystem::PyPI => Some(Pep440::parse(a)?.cmp(&Pep440::parse(b)?)),
    }
}

/// Parses SemVer, tolerating a leading `v` or `=` (npm does).
pub fn semver_parse(s: &str) -> Option<semver::Version> {
    let s = s.trim().trim_start_matches(['v', '=']);
    semver::Version::parse(s).ok()
}

/// A PEP 440 version, ordered as PEP 440 says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pep440 {
    epoch: u64,
    release: Vec<u64>,
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<LocalPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocalPart {
    // Strings sort before numbers in local versions.
    Str(String),
    Num(u64),
}

impl Pep440 {
    /// Parses the normalized and the common non-normalized spellings (`1.0rc1`, `1.0-post1`, `v1.0`,
    /// `1.0.dev0`, `1!2.0`, `1.0+local.7`).
    pub fn parse(s: &str) -> Option<Pep440> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.strip_prefix('v').unwrap_or(&s);
        let (main, local) = match s.split_once('+') {
            Some((m, l)) => (m, Some(l)),
            None => (s, None),
        };
        let (epoch, rest) = match main.split_once('!') {
            Some((e, r)) => (e.parse().ok()?, r),
            None => (0, main),
        };
        let b = rest.as_bytes();
        let mut i = 0;
        let mut release = Vec::new();
        loop {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return None;
            }
            release.push(rest[start..i].parse().ok()?);
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
            } else {
                break;
            }
        }
        let mut pre = None;
        let mut post = None;
        let mut dev = None;
        let mut tail = &rest[i..];
        let sep = |t: &str| t.trim_start_matches(['.', '-', '_']).to_owned();
        let num = |t: &str| -> (u64, usize) {
            let t2 = t.trim_start_matches(['.', '-', '_']);
            let skipped = t.len() - t2.len();
            let digits: String = t2.chars().take_while(char::is_ascii_digit).collect();
            (digits.parse().unwrap_or(0), skipped + digits.len())
        };
        // pre-release
        {
            let t = sep(tail);
            let skipped = tail.len() - t.len();
            for (word, kind) in [
                ("alpha", 0u8),
                ("beta", 1),
                ("preview", 2),
                ("pre", 2),
                ("rc", 2),
                ("a", 0),
                ("b", 1),
                ("c", 2),
            ] {
                if let Some(after) = t.strip_prefix(word) {
                    let (n, used) = num(after);
                    pre = Some((kind, n));
                    tail = &tail[skipped + word.len() + used..];
                    break;
                }
            }
        }
        // post-release
        {
            let t = sep(tail);
            let skipped = tail.len() - t.len();
            let mut matched = false;
            for word in ["post", "rev", "r"] {
                if let Some(after) = t.strip_prefix(word) {
                    let (n, used) = num(after);
                    post = Some(n);
                    tail = &tail[skipped + word.len() + used..];
                    matched = true;
                    break;
                }
            }
            if !matched
                && tail.starts_with('-')
                && tail[1..].starts_with(|c: char| c.is_ascii_digit())
            {
                let (n, used) = num(&tail[1..]);
                post = Some(n);
                tail = &tail[1 + used..];
            }
        }
        // dev-release
        {
            let t = sep(tail);
            let skipped = tail.len() - t.len();
            if let Some(after) = t.strip_prefix("dev") {
                let (n, used) = num(after);
                dev = Some(n);
                tail = &tail[skipped + 3 + used..];
            }
        }
        if !tail.is_empty() {
            return None;
        }
        let local = match local {
            None => Vec::new(),
            Some("") => return None,
            Some(l) => l
                .split(['.', '-', '_'])
                .map(|p| match p.parse::<u64>() {
                    Ok(n) => LocalPart::Num(n),
                    Err(_) => LocalPart::Str(p.to_owned()),
                })
                .collect(),
        };
        Some(Pep440 {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    fn key(&self) -> SortKey {
        let mut release = self.release.clone();
        while release.len() > 1 && release.last() == Some(&0) {
            release.pop();
        }
        // A dev release of a final version sorts before its pre-releases.
        let pre = match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => (-1, 0, 0),
            (None, _, _) => (1, 0, 0),
            (Some((k, n)), _, _) => (0, k, n),
        };
        let post = match self.post {
            None => (-1, 0),
            Some(n) => (0, n),
        };
        let dev = match self.dev {
            None => (1, 0),
            Some(n) => (0, n),
        };
        (self.epoch, release, pre, post, dev)
    }
}

/// epoch, release (trailing zeros dropped), pre, post, dev.
type SortKey = (u64, Vec<u64>, (i8, u8, u64), (i8, u64), (i8, u64));

impl Ord for Pep440 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key()
            .cmp(&other.key())
            .then_with(|| self.local.cmp(&other.local))
    }
}

impl PartialOrd for Pep440 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lt(a: &str, b: &str) {
        assert_eq!(
            compare(Ecosystem::PyPI, a, b),
            Some(Ordering::Less),
            "{a} < {b}"
        );
    }

    #[test]
    fn pep440_orders_as_the_spec_says() {
        lt("1.0.dev0", "1.0a1");
        lt("1.0a1", "1.0b2");
        lt("1.0b2", "1.0rc1");
        lt("1.0rc1", "1.0");
        lt("1.0", "1.0.post1");
        lt("1.0.post1", "1.1");
        lt("2025.9.24", "2025.9.25");
        lt("2025.12.17", "2025.12.18");
        lt("2.0", "1!0.1");
        lt("1.0", "1.0+local");
        assert_eq!(
            compare(Ecosystem::PyPI, "1.0", "1.0.0"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare(Ecosystem::PyPI, "1.0-post1", "1.0.post1"),
            Some(Ordering::Equal)
        );
        assert_eq!(compare(Ecosystem::PyPI, "not a version", "1"), None);
    }

    #[test]
    fn semver_orders_prereleases_and_calver() {
        assert_eq!(
            compare(Ecosystem::Npm, "0.1.15", "0.1.16"),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(Ecosystem::Npm, "1.24.0-beta.1", "1.24.0"),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(Ecosystem::Npm, "2026.8.31", "2025.7.1"),
            Some(Ordering::Greater)
        );
        assert_eq!(compare(Ecosystem::Npm, "1.2", "1.2.0"), None);
    }
}
