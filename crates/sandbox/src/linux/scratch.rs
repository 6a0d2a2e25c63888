//! Private directories palisade makes for one sandbox: the egress handoff's rendezvous, and tier 2's
//! `HOME` and `TMPDIR` (tier 1 has tmpfs mounts for those).
//!
//! Each is a fresh directory with a random name and mode 0700 under `$XDG_RUNTIME_DIR` (when set and
//! absolute) or the system temporary directory. `mkdir` fails on an existing path, so a name someone
//! planted is never reused, and no other user can enter.

use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The base directory for private directories.
pub fn base() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
        .unwrap_or_else(std::env::temp_dir)
}

/// Creates `base/<prefix>-<16 random hex digits>` with mode 0700.
pub fn private_dir(base: &Path, prefix: &str) -> io::Result<PathBuf> {
    let mut last = None;
    for _ in 0..8 {
        let dir = base.join(format!("{prefix}-{}", random_hex()?));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create a directory in {}: {e}", base.display()),
                ));
            }
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free directory name")))
}

/// 16 hex digits from the kernel's random source.
fn random_hex() -> io::Result<String> {
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// A tier 2 sandbox's private `home/` and `tmp/`, removed (with whatever the server left there) on drop.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Creates the directory with empty `home/` and `tmp/` inside (all 0700).
    pub fn new() -> io::Result<ScratchDir> {
        let dir = private_dir(&base(), "palisade-sandbox")?;
        let made = ScratchDir(dir);
        for sub in ["home", "tmp"] {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(made.0.join(sub))?;
        }
        Ok(made)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // `remove_dir_all` does not follow symlinks the server may have planted.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn scratch_dirs_are_private_and_removed_with_their_contents() {
        let s = ScratchDir::new().unwrap();
        let p = s.path().to_path_buf();
        for d in [p.clone(), p.join("home"), p.join("tmp")] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", d.display());
        }
        std::fs::write(p.join("tmp/left-behind"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc", p.join("home/link")).unwrap();
        drop(s);
        assert!(!p.exists());
        assert!(
            Path::new("/etc/passwd").exists(),
            "the symlink's target is untouched"
        );
    }

    #[test]
    fn a_planted_name_is_never_reused() {
        let base = std::env::temp_dir();
        let a = private_dir(&base, "palisade-test-unique").unwrap();
        let b = private_dir(&base, "palisade-test-unique").unwrap();
        assert_ne!(a, b);
        std::fs::remove_dir(a).unwrap();
        std::fs::remove_dir(b).unwrap();
    }
}
