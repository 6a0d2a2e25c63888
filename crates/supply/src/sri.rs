//! Subresource Integrity strings (`sha512-<base64>`), as npm publishes them in `dist.integrity`, and hex
//! sha256, as PyPI publishes it.
//!
//! An SRI string may list several hashes; the strongest algorithm present decides (that is the SRI rule,
//! and it stops a downgrade to a weak hash listed beside a strong one). sha1 (old npm `shasum`) is not
//! accepted as integrity: collisions are practical.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::{Error, Result};

/// A supported SRI algorithm, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    /// sha256
    Sha256,
    /// sha384
    Sha384,
    /// sha512
    Sha512,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::Sha256 => Sha256::digest(bytes).to_vec(),
            Algorithm::Sha384 => Sha384::digest(bytes).to_vec(),
            Algorithm::Sha512 => Sha512::digest(bytes).to_vec(),
        }
    }
}

/// One parsed integrity string: the strongest algorithm's expected digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integrity {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Acceptable digests (SRI allows several for the same algorithm).
    pub digests: Vec<Vec<u8>>,
}

impl Integrity {
    /// Parses `sha512-… sha256-…`. Unknown algorithms are ignored; none known is an error.
    pub fn parse(s: &str) -> Result<Integrity> {
        let mut best: Option<Integrity> = None;
        for token in s.split_whitespace() {
            let token = token.split('?').next().unwrap_or(token);
            let Some((alg, b64)) = token.split_once('-') else {
                continue;
            };
            let algorithm = match alg {
                "sha256" => Algorithm::Sha256,
                "sha384" => Algorithm::Sha384,
                "sha512" => Algorithm::Sha512,
                _ => continue,
            };
            let Ok(d) = STANDARD.decode(b64) else {
                return Err(Error::Usage(format!(
                    "integrity {s:?} has a {alg} value that is not base64"
                )));
            };
            match &mut best {
                Some(b) if b.algorithm == algorithm => b.digests.push(d),
                Some(b) if b.algorithm > algorithm => {}
                _ => {
                    best = Some(Integrity {
                        algorithm,
                        digests: vec![d],
                    })
                }
            }
        }
        best.ok_or_else(|| {
            Error::Usage(format!(
                "integrity {s:?} names no sha256/sha384/sha512 hash"
            ))
        })
    }

    /// The SRI string of `bytes` with `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> String {
        format!(
            "{}-{}",
            algorithm.name(),
            STANDARD.encode(algorithm.digest(bytes))
        )
    }

    /// Checks `bytes`; the error names both values.
    pub fn verify(&self, what: &str, bytes: &[u8]) -> Result<()> {
        let actual = self.algorithm.digest(bytes);
        if self.digests.contains(&actual) {
            Ok(())
        } else {
            Err(Error::Integrity {
                what: what.to_owned(),
                expected: format!(
                    "{}-{}",
                    self.algorithm.name(),
                    STANDARD.encode(self.digests.first().map(Vec::as_slice).unwrap_or(&[]))
                ),
                actual: format!("{}-{}", self.algorithm.name(), STANDARD.encode(actual)),
            })
        }
    }
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks `bytes` against a hex sha256.
pub fn verify_sha256(what: &str, expected_hex: &str, bytes: &[u8]) -> Result<()> {
    let actual = sha256_hex(bytes);
    if actual.eq_ignore_ascii_case(expected_hex.trim()) {
        Ok(())
    } else {
        Err(Error::Integrity {
            what: what.to_owned(),
            expected: format!("sha256:{expected_hex}"),
            actual: format!("sha256:{actual}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_sha512_and_refuses_other_bytes() {
        let sri = Integrity::of(Algorithm::Sha512, b"package");
        let i = Integrity::parse(&sri).unwrap();
        assert!(i.verify("x", b"package").is_ok());
        let e = i.verify("x", b"packagf").unwrap_err().to_string();
        assert!(
            e.contains("integrity check failed for x") && e.contains("sha512-"),
            "{e}"
        );
    }

    #[test]
    fn the_strongest_algorithm_decides() {
        // A correct sha256 beside a wrong sha512: the sha512 is what counts.
        let s = format!(
            "{} {}",
            Integrity::of(Algorithm::Sha256, b"a"),
            Integrity::of(Algorithm::Sha512, b"b")
        );
        let i = Integrity::parse(&s).unwrap();
        assert_eq!(i.algorithm, Algorithm::Sha512);
        assert!(i.verify("x", b"a").is_err());
        assert!(i.verify("x", b"b").is_ok());
    }

    #[test]
    fn rejects_sha1_only_and_garbage() {
        assert!(Integrity::parse("sha1-AAAA").is_err());
        assert!(Integrity::parse("sha512-@@@").is_err());
        assert!(verify_sha256("w", &sha256_hex(b"w"), b"w").is_ok());
        assert!(verify_sha256("w", &sha256_hex(b"w"), b"v").is_err());
    }
}
