//! Fixture homes for tests, shared by this crate's tests and the binary's (`crates/palisade/tests/it/
//! scan.rs` includes this file by path, so there is one copy of the code).
//!
//! `materialize(name)` copies `tests/fixtures/<name>/` into a fresh directory, replacing `@@HOME@@` with
//! that directory and `@@FAKE:<kind>@@` with a fake credential of that format assembled here from a fixed
//! pseudo-random stream (so no token-shaped string is ever committed, and GitHub push protection has
//! nothing to trip on). Git keeps no permission bits, so every file is set to 0600; tests set the modes
//! they need.

#![allow(dead_code, unreachable_pub)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The fixtures directory.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scan/tests/fixtures");

/// A copy of a fixture home, removed on drop.
pub struct Home {
    pub path: PathBuf,
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

impl Home {
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    pub fn chmod(&self, rel: &str, mode: u32) {
        std::fs::set_permissions(self.join(rel), std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// A deterministic pseudo-random string over `alphabet`, different per `seed`.
pub fn body(seed: u64, n: usize, alphabet: &str) -> String {
    let a: Vec<char> = alphabet.chars().collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            a[(x % a.len() as u64) as usize]
        })
        .collect()
}

const ALNUM: &str = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const UPPER: &str = "ABCDEFGHJKLMNPQRSTUVWXYZ234567";

/// A fake credential of `kind`, format-valid, assembled so no token literal exists in the repository.
pub fn fake(kind: &str) -> String {
    match kind {
        "github" => ["gh", "p_", &body(1, 36, ALNUM)].concat(),
        "slack" => [
            "xo",
            "xb-",
            &body(2, 12, "0123456789"),
            "-",
            &body(3, 24, ALNUM),
        ]
        .concat(),
        "openai" => ["sk-", "proj-", &body(4, 48, ALNUM)].concat(),
        "huggingface" => ["h", "f_", &body(5, 34, ALNUM)].concat(),
        "aws" => ["AK", "IA", &body(6, 16, UPPER)].concat(),
        "bearer" => body(7, 40, ALNUM),
        "password" => body(8, 20, ALNUM),
        "generic" => body(9, 32, ALNUM),
        other => panic!("no fake for {other}"),
    }
}

pub const FAKE_KINDS: &[&str] = &[
    "github",
    "slack",
    "openai",
    "huggingface",
    "aws",
    "bearer",
    "password",
    "generic",
];

pub fn materialize(name: &str) -> Home {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "palisade-scan-{name}-{:010}-{:06}",
        // Fixed width: columns in golden outputs depend on the length of this path.
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    materialize_into(name, &dir);
    Home { path: dir }
}

/// Copies fixture `name` into the existing directory `dir` (which `@@HOME@@` then names).
pub fn materialize_into(name: &str, dir: &Path) {
    copy(&Path::new(FIXTURES).join(name), dir, dir);
}

fn copy(from: &Path, to: &Path, home: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy(&e.path(), &dest, home);
        } else {
            let mut text = std::fs::read_to_string(e.path()).unwrap();
            text = text.replace("@@HOME@@", &home.display().to_string());
            for k in FAKE_KINDS {
                text = text.replace(&format!("@@FAKE:{k}@@"), &fake(k));
            }
            assert!(
                !text.contains("@@"),
                "unknown marker in {}",
                e.path().display()
            );
            std::fs::write(&dest, text).unwrap();
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}
