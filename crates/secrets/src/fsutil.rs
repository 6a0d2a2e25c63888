//! File plumbing shared by the file store and the keychain's name index: private directories, locked
//! read-modify-write, atomic replacement, and the ownership/mode checks that decide whether a file may be
//! trusted with (or to hold) secrets.
//!
//! A write is: take an exclusive `flock` on `<file>.lock` (so two `palisade secret set` processes do not
//! lose each other's entries), read the current file, write the new content to a fresh `O_EXCL` temp file
//! created 0600 in the same directory, `fsync` it, `rename` it over the file, `fsync` the directory. A
//! crash leaves either the old file or the new one, never half of one.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::{Error, Result};

/// The exclusive lock guarding a read-modify-write of one file; released on drop (closing the fd).
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

/// Creates `dir` (and parents) with mode 0700 if missing, then refuses it if others may write to it
/// (whoever can write the directory can replace the files in it).
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("create directory", dir, e))?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| Error::io("inspect directory", dir, e))?;
    if meta.mode() & 0o022 != 0 {
        return Err(Error::Permissions {
            what: "directory",
            path: dir.to_path_buf(),
            problem: format!(
                "is writable by group or others (mode {:04o}), so its files could be replaced",
                meta.mode() & 0o7777
            ),
            fix: format!("chmod 700 {}", dir.display()),
        });
    }
    Ok(())
}

/// Takes the exclusive lock for `file` (`<file>.lock`, created 0600 next to it). Blocks until it is free.
pub(crate) fn lock(file: &Path) -> Result<Lock> {
    let path = sibling(file, ".lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(|e| Error::io("open lock file", &path, e))?;
    flock(&f, FlockOperation::LockExclusive)
        .map_err(|e| Error::io("lock", &path, std::io::Error::from(e)))?;
    Ok(Lock { _file: f })
}

/// Reads a private file: `None` if it does not exist; an error if it is a symlink, not a regular file,
/// not owned by this user, or readable/writable by group or others. `what` names it in errors.
pub(crate) fn read_private(path: &Path, what: &'static str, max: u64) -> Result<Option<Vec<u8>>> {
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(Error::Permissions {
                what,
                path: path.to_path_buf(),
                problem: "is a symbolic link; palisade does not follow links for its own files"
                    .into(),
                fix: format!(
                    "replace the link with the file it points to: mv \"$(readlink -f {0})\" {0}",
                    path.display()
                ),
            });
        }
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let meta = f.metadata().map_err(|e| Error::io("inspect", path, e))?;
    check_private(path, what, &meta)?;
    if meta.len() > max {
        return Err(Error::Store {
            backend: crate::Backend::File,
            op: format!("read {}", path.display()),
            detail: format!("it is {} bytes, more than the {max} allowed", meta.len()),
            hint: None,
        });
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(Some(buf))
}

/// Refuses a file that is not a regular file owned by this user with no group/other permission bits.
pub(crate) fn check_private(
    path: &Path,
    what: &'static str,
    meta: &std::fs::Metadata,
) -> Result<()> {
    if !meta.is_file() {
        return Err(Error::Permissions {
            what,
            path: path.to_path_buf(),
            problem: "is not a regular file".into(),
            fix: format!("remove {} or point at a regular file", path.display()),
        });
    }
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(Error::Permissions {
            what,
            path: path.to_path_buf(),
            problem: format!(
                "is owned by uid {}, not by you (uid {uid}), so its owner could change it",
                meta.uid()
            ),
            fix: format!("chown {uid} {}", path.display()),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::Permissions {
            what,
            path: path.to_path_buf(),
            problem: format!("is accessible by group or others (mode {mode:04o})"),
            fix: format!("chmod 600 {}", path.display()),
        });
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically (temp file 0600 + fsync + rename + fsync of the directory).
/// The caller holds the [`Lock`].
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = sibling(path, &format!(".tmp.{}.{}", std::process::id(), unique()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("replace", path, e))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}
