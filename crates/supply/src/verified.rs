//! A cache of verified file stamps, so `palisade run` of an installed package re-checks its store entry
//! without re-reading every byte at every start.
//!
//! # Why it is as strong as the full digest
//! [`crate::store::Store::verify`] recomputes an entry's tree digest before every start and compares it
//! with `palisade.lock`. The digest covers every path, type, executable bit, link target and file
//! content. This cache changes only how a file's *content* hash is obtained: when the file's stamp —
//! device, inode, size, mode, mtime and ctime, to the nanosecond — is the one recorded when its content
//! was last hashed, the recorded hash is used. Paths, types, modes and link targets are read afresh every
//! time (the directory walk and `lstat` of every entry are the cheap part), and the digest is computed
//! exactly as without the cache, so a file added, removed, renamed or re-moded changes it.
//!
//! A file's content cannot change without its stamp changing: every write through the filesystem
//! (`write`, `mmap`, `truncate`, `copy_file_range`…) updates ctime, which no system call can set back
//! (`utimensat` sets mtime and atime, and itself updates ctime), and replacing a file (rename over it)
//! changes its inode and ctime. What would defeat it — writing the block device below the filesystem,
//! setting the system clock back between two writes — needs root, which defeats the full digest too
//! (root can rewrite the lock). Stamps are trusted only for files whose mtime and ctime are at least
//! [`RACY_MARGIN_NS`] older than the walk that recorded them (a file written within the same clock tick
//! as it was hashed could change again without a visible difference: "racy git"); younger files are
//! hashed again, and the cache rewritten once they are old enough.
//!
//! # The cache file
//! `<store>/.verified/<key>.json`, mode 0600, written atomically (temp file, rename), and only after a
//! walk whose digest equalled the lock's: its first line is `sha256:<hex>` of the rest, a JSON document
//! naming the format version, the entry's directory and the tree digest it vouches for, when the walk
//! started, and every file's stamp and content hash. A cache that fails its check, names another
//! directory or another digest (the lock changed), or does not parse is ignored: the entry is hashed in
//! full and the cache rewritten. The cache has the same standing as `palisade.lock` (a process running as
//! the user could rewrite either); it adds no way to make a changed entry verify.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Result;
use crate::store::{Stamp, walk_digest};

/// The cache format.
const VERSION: u32 = 1;
/// A stamp is trusted only when the file's times are this much older than the walk that recorded it.
pub const RACY_MARGIN_NS: i128 = 2_000_000_000;

#[derive(Debug, Serialize, Deserialize)]
struct Body {
    version: u32,
    /// The entry directory this cache is about.
    root: String,
    /// The tree digest the walk produced (and the lock expected).
    tree: String,
    /// When that walk started (ns since the epoch).
    started_ns: i128,
    files: BTreeMap<String, Stamp>,
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// The tree digest of `root` (as [`crate::store::tree_digest`]), reusing the content hashes `cache`
/// vouches for when it was written for `root` and `expected`; rewrites the cache when the digest equals
/// `expected` and files had to be hashed.
pub fn tree_digest_cached(root: &Path, cache: &Path, expected: &str) -> Result<String> {
    digest_with_margin(root, cache, expected, RACY_MARGIN_NS)
}

fn digest_with_margin(root: &Path, cache: &Path, expected: &str, margin: i128) -> Result<String> {
    let started = now_ns();
    let root_str = root.display().to_string();
    let prior = load(cache).filter(|b| {
        b.version == VERSION && b.root == root_str && b.tree == expected && b.started_ns <= started
    });
    let hits = Cell::new(0usize);
    let known = |rel: &str, st: &Stamp| -> Option<[u8; 32]> {
        let b = prior.as_ref()?;
        let c = b.files.get(rel)?;
        let same = c.dev == st.dev
            && c.ino == st.ino
            && c.size == st.size
            && c.mtime_ns == st.mtime_ns
            && c.ctime_ns == st.ctime_ns
            && c.mode == st.mode;
        let settled = st.mtime_ns < b.started_ns - margin && st.ctime_ns < b.started_ns - margin;
        if !(same && settled) {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(&c.sha256, &mut out).ok()?;
        hits.set(hits.get() + 1);
        Some(out)
    };
    let mut seen = BTreeMap::new();
    let digest = walk_digest(root, &known, &mut seen)?;
    if digest == expected && hits.get() < seen.len() {
        // Best effort: a cache that cannot be written only means the next start hashes again.
        let _ = store(
            cache,
            &Body {
                version: VERSION,
                root: root_str,
                tree: digest.clone(),
                started_ns: started,
                files: seen,
            },
        );
    }
    Ok(digest)
}

fn load(path: &Path) -> Option<Body> {
    let text = fs::read(path).ok()?;
    let nl = text.iter().position(|b| *b == b'\n')?;
    let (head, body) = (&text[..nl], &text[nl + 1..]);
    let want = format!("sha256:{}", hex::encode(Sha256::digest(body)));
    if head != want.as_bytes() {
        return None;
    }
    serde_json::from_slice(body).ok()
}

fn store(path: &Path, body: &Body) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec(body).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("cache"),
        std::process::id()
    ));
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(format!("sha256:{}\n", hex::encode(Sha256::digest(&bytes))).as_bytes())?;
    f.write_all(&bytes)?;
    drop(f);
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tree_digest;
    use std::os::unix::fs::PermissionsExt;

    /// A tree whose files are older than the racy margin (their times set back explicitly).
    fn settled_tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        fs::create_dir_all(p.join("pkg/lib")).unwrap();
        fs::write(p.join("pkg/lib/a.js"), "module.exports = 1;\n").unwrap();
        fs::write(p.join("pkg/index.js"), "require('./lib/a');\n").unwrap();
        settle(p);
        d
    }

    /// Sets mtime back; ctime cannot be set, so the test also waits out the margin where it matters.
    fn settle(p: &Path) {
        // A fixed time, so putting it back restores exactly the recorded mtime.
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        for f in ["pkg/lib/a.js", "pkg/index.js"] {
            let _ = fs::File::options()
                .write(true)
                .open(p.join(f))
                .and_then(|h| h.set_modified(old));
        }
    }

    fn cache_of(d: &Path) -> std::path::PathBuf {
        d.join(".verified.json")
    }

    #[test]
    fn the_cached_digest_equals_the_full_one_and_the_cache_is_checked() {
        let d = settled_tree();
        let root = d.path().join("pkg");
        let full = tree_digest(&root).unwrap();
        let cache = cache_of(d.path());
        assert_eq!(tree_digest_cached(&root, &cache, &full).unwrap(), full);
        let body = load(&cache).expect("a cache was written after a matching walk");
        assert_eq!(body.tree, full);
        assert_eq!(body.files.len(), 2);
        // A different expected digest: no cache is written for it.
        let other = tempfile::tempdir().unwrap();
        let c2 = cache_of(other.path());
        let _ = tree_digest_cached(&root, &c2, "sha256:00").unwrap();
        assert!(!c2.exists());
        // A damaged cache is ignored (and the digest is still right).
        let mut text = fs::read(&cache).unwrap();
        let n = text.len();
        text[n - 3] ^= 1;
        fs::write(&cache, &text).unwrap();
        assert!(load(&cache).is_none());
        assert_eq!(tree_digest_cached(&root, &cache, &full).unwrap(), full);
    }

    #[test]
    fn a_changed_file_is_hashed_again_even_with_its_mtime_put_back() {
        let d = settled_tree();
        let root = d.path().join("pkg");
        let full = tree_digest(&root).unwrap();
        let cache = cache_of(d.path());
        // No racy margin here, so only the stamp comparison stands between the cache and a wrong answer.
        digest_with_margin(&root, &cache, &full, 0).unwrap();
        // Past the filesystem's timestamp granularity, change a file's content (same size) and put its
        // old mtime back: its ctime still moves.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let f = root.join("lib/a.js");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&f, "module.exports = 2;\n").unwrap();
        settle(d.path());
        let changed = digest_with_margin(&root, &cache, &full, 0).unwrap();
        assert_ne!(changed, full, "a changed file is hashed again");
        assert_eq!(changed, tree_digest(&root).unwrap());
        // A file added, or removed, changes the digest whatever the cache says.
        fs::write(&f, "module.exports = 1;\n").unwrap();
        fs::write(root.join("extra.js"), "x").unwrap();
        assert_ne!(digest_with_margin(&root, &cache, &full, 0).unwrap(), full);
        fs::remove_file(root.join("extra.js")).unwrap();
        fs::remove_file(root.join("index.js")).unwrap();
        assert_ne!(digest_with_margin(&root, &cache, &full, 0).unwrap(), full);
    }

    #[test]
    fn stamps_are_used_only_once_settled_and_unchanged() {
        let d = settled_tree();
        let root = d.path().join("pkg");
        let full = tree_digest(&root).unwrap();
        let cache = cache_of(d.path());
        tree_digest_cached(&root, &cache, &full).unwrap();
        let mut body = load(&cache).unwrap();
        // Poison the recorded hashes: if a stamp were trusted, the digest would come out wrong.
        for s in body.files.values_mut() {
            s.sha256 = "00".repeat(32);
        }
        // Recorded "now": every file is racy, so every file is hashed and the digest is right.
        body.started_ns = now_ns();
        store(&cache, &body).unwrap();
        assert_eq!(tree_digest_cached(&root, &cache, &full).unwrap(), full);
        // With no racy margin, the (poisoned) stamps are trusted: the walk used the cache, which is why it
        // must be integrity-checked and bound to the entry and the lock's digest.
        let mut body = load(&cache).unwrap();
        for s in body.files.values_mut() {
            s.sha256 = "00".repeat(32);
        }
        body.started_ns = now_ns();
        store(&cache, &body).unwrap();
        assert_ne!(digest_with_margin(&root, &cache, &full, 0).unwrap(), full);
        // …bound: the same cache for another directory or another expected digest is not used.
        assert_eq!(
            digest_with_margin(&root, &cache, "sha256:other", 0).unwrap(),
            full
        );
        // A cache that claims a walk in the future is refused.
        body.started_ns = now_ns() + 10 * RACY_MARGIN_NS;
        store(&cache, &body).unwrap();
        assert_eq!(tree_digest_cached(&root, &cache, &full).unwrap(), full);
    }
}
