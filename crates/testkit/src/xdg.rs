//! Temporary directories, and a fresh `HOME` + XDG base directories for a child process.
//!
//! palisade reads its config from `XDG_CONFIG_HOME`, writes state and audit logs under `XDG_STATE_HOME`, and so
//! on. A test must never touch the real ones, so it runs palisade with a [`TestHome`] applied: every variable
//! points into one fresh directory that is removed when the `TestHome` is dropped.
//!
//! The variables are set on the [`Command`] only; this process's own environment is never mutated (that races
//! with other test threads).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh directory under the system temp dir, removed (recursively) on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/palisade-<label>-<pid>-<n>-<nanos>` (mode per umask).
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "palisade-{label}-{}-{n}-{nanos:09}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        // Canonical, so tests can compare it with paths a server reports back.
        let path = path.canonicalize().unwrap_or(path);
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(rel)`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A fresh `HOME` with its own XDG base directories, all created empty, removed on drop.
///
/// Layout: `<root>/home`, `<root>/config`, `<root>/state`, `<root>/data`, `<root>/cache`.
#[derive(Debug)]
pub struct TestHome {
    root: TempDir,
}

impl Default for TestHome {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHome {
    /// Creates the tree.
    pub fn new() -> Self {
        let root = TempDir::new("home");
        for sub in ["home", "config", "state", "data", "cache"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        }
        TestHome { root }
    }

    /// The directory holding everything.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Value for `HOME`.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// Value for `XDG_CONFIG_HOME`.
    pub fn config_home(&self) -> PathBuf {
        self.root.join("config")
    }

    /// Value for `XDG_STATE_HOME`.
    pub fn state_home(&self) -> PathBuf {
        self.root.join("state")
    }

    /// Value for `XDG_DATA_HOME`.
    pub fn data_home(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Value for `XDG_CACHE_HOME`.
    pub fn cache_home(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// The `(name, value)` pairs [`TestHome::apply`] sets.
    pub fn vars(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("HOME", self.home()),
            ("XDG_CONFIG_HOME", self.config_home()),
            ("XDG_STATE_HOME", self.state_home()),
            ("XDG_DATA_HOME", self.data_home()),
            ("XDG_CACHE_HOME", self.cache_home()),
        ]
    }

    /// Sets `HOME` and `XDG_{CONFIG,STATE,DATA,CACHE}_HOME` on `cmd`; returns it for chaining.
    pub fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for (name, value) in self.vars() {
            cmd.env(name, value);
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_home_is_created_applied_and_removed() {
        let home = TestHome::new();
        let root = home.root().to_path_buf();
        assert!(home.config_home().is_dir());
        let mut cmd = Command::new("/bin/sh");
        home.apply(&mut cmd)
            .args(["-c", "printf '%s|%s' \"$HOME\" \"$XDG_STATE_HOME\""]);
        let out = cmd.output().unwrap();
        let expected = format!("{}|{}", home.home().display(), home.state_home().display());
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
        drop(home);
        assert!(!root.exists());
    }

    #[test]
    fn temp_dirs_are_distinct() {
        let (a, b) = (TempDir::new("t"), TempDir::new("t"));
        assert_ne!(a.path(), b.path());
    }
}
