//! The few file operations wrap and unwrap make, each safe to interrupt at any point.
//!
//! A config is never written in place: the new bytes go to a temporary file in the same directory, which
//! is flushed to disk and then renamed over the config (one atomic step on the same file system), and the
//! directory is flushed so the rename itself survives a crash. So a client, or a crash, sees the old file
//! or the new one, never half of one. Backups are created with `O_EXCL` (an existing file is never
//! overwritten) and mode 0600 from the first byte.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// Hex SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Permission bits and owner of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

pub(crate) fn meta(path: &Path) -> io::Result<Meta> {
    let m = std::fs::metadata(path)?;
    Ok(Meta {
        mode: m.permissions().mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
    })
}

fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// Creates the directories up to `dir` (new ones 0700).
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes `bytes` to a new file `path` (refusing to replace one) with `mode`, durably.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    let r = (|| {
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        sync_dir(path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// Replaces (or creates) `path` with `bytes`, atomically and durably, with `mode` and, when given, owner.
pub(crate) fn replace(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    static N: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("config");
    let tmp = path.with_file_name(format!(
        ".{name}.palisade-{}-{}.tmp",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let r = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        if let Some((uid, gid)) = owner {
            let me = meta(&tmp)?;
            if (me.uid, me.gid) != (uid, gid) {
                std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
            }
        }
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// `<file>.palisade-backup-<stamp>` (then `-2`, `-3`… if taken).
pub(crate) fn backup_path(config: &Path, stamp: &str, n: u32) -> PathBuf {
    let name = config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix = if n <= 1 {
        String::new()
    } else {
        format!("-{n}")
    };
    config.with_file_name(format!("{name}.palisade-backup-{stamp}{suffix}"))
}

/// Writes a backup of `bytes` next to `config`; returns its path.
pub(crate) fn write_backup(config: &Path, bytes: &[u8], stamp: &str) -> io::Result<PathBuf> {
    for n in 1..100 {
        let p = backup_path(config, stamp, n);
        match write_new(&p, bytes, 0o600) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "99 backups with this timestamp already exist",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let d = std::env::temp_dir().join(format!(
            "palisade-wrap-fsio-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn replace_keeps_the_mode_it_is_given_and_leaves_no_temp_file() {
        let d = dir();
        let p = d.join("c.json");
        std::fs::write(&p, "old").unwrap();
        replace(&p, b"new", 0o640, None).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(meta(&p).unwrap().mode, 0o640);
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn backups_are_0600_and_never_overwrite() {
        let d = dir();
        let p = d.join("c.json");
        let a = write_backup(&p, b"one", "20260101T000000Z").unwrap();
        let b = write_backup(&p, b"two", "20260101T000000Z").unwrap();
        assert_ne!(a, b);
        assert!(b.to_string_lossy().ends_with("-2"));
        assert_eq!(std::fs::read(&a).unwrap(), b"one");
        assert_eq!(meta(&a).unwrap().mode, 0o600);
        assert_eq!(meta(&b).unwrap().mode, 0o600);
        assert_eq!(
            write_new(&a, b"x", 0o600).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
