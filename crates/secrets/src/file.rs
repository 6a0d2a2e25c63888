//! The file store: `$XDG_DATA_HOME/palisade/secrets.json`, mode 0600 in a 0700 directory, not encrypted.
//!
//! It is the headless fallback (no Secret Service on SSH sessions, servers, containers, CI). Its honest
//! trade-off: the values are as safe as the user's files, no safer. Anyone who can read files as this user
//! (any process the user runs, root, a backup) reads them. What it does guarantee: nobody else can read or
//! swap it (it is refused if it is a symlink, is not the user's, or has any group/other bit), writes are
//! atomic, and concurrent writers do not lose entries (see [`crate::fsutil`]). Callers print
//! [`FILE_WARNING`] on every write so the trade-off is never silent.
//!
//! Shape: `{"version": 1, "secrets": {"NAME": "value", …}}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::fsutil;
use crate::{Backend, Error, Result, Secret, SecretName, SecretStore};

/// Printed on every write to the file store.
pub const FILE_WARNING: &str = "secrets are stored UNENCRYPTED in this file (mode 0600): any program you run, root, and your backups can read them. Use an OS keychain where you can (a desktop session with GNOME Keyring, KWallet or KeePassXC's Secret Service), or PALISADE_SECRET_BACKEND=keyutils to keep them in kernel memory only (lost at reboot)";

/// The format version this code reads and writes.
const VERSION: u32 = 1;
/// Far more than any real file (256 secrets of the maximum size would not fit; that is fine).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Contents {
    version: u32,
    secrets: BTreeMap<String, Zeroizing<String>>,
}

/// The 0600 JSON file store.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store at `path` (nothing is touched until used).
    pub fn new(path: PathBuf) -> Self {
        FileStore { path }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<Contents> {
        let Some(bytes) = fsutil::read_private(&self.path, "secrets file", MAX_FILE_BYTES)? else {
            return Ok(Contents {
                version: VERSION,
                secrets: BTreeMap::new(),
            });
        };
        let bytes = Zeroizing::new(bytes);
        // serde_json's own error text quotes no input, only line/column; still, say nothing but where.
        let contents: Contents = serde_json::from_slice(&bytes).map_err(|e| Error::Store {
            backend: Backend::File,
            op: format!("read {}", self.path.display()),
            detail: format!(
                "it is not a palisade secrets file (JSON error at line {}, column {})",
                e.line(),
                e.column()
            ),
            hint: Some(format!(
                "move it aside (mv {0} {0}.bad) and store the secrets again",
                self.path.display()
            )),
        })?;
        if contents.version != VERSION {
            return Err(Error::Store {
                backend: Backend::File,
                op: format!("read {}", self.path.display()),
                detail: format!(
                    "it has format version {}, this palisade reads version {VERSION}",
                    contents.version
                ),
                hint: Some("use the palisade that wrote it, or a newer one".into()),
            });
        }
        Ok(contents)
    }

    /// Locked read-modify-write.
    fn update<T>(&self, f: impl FnOnce(&mut Contents) -> Result<T>) -> Result<T> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fsutil::private_dir(dir)?;
        let _lock = fsutil::lock(&self.path)?;
        let mut contents = self.load()?;
        let out = f(&mut contents)?;
        let bytes =
            Zeroizing::new(
                serde_json::to_vec_pretty(&contents).map_err(|e| Error::Store {
                    backend: Backend::File,
                    op: "encode the secrets file".into(),
                    detail: e.to_string(),
                    hint: None,
                })?,
            );
        fsutil::write_atomic(&self.path, &bytes)?;
        Ok(out)
    }

    /// Whether the file has `name` (false on any error: used for hints only).
    pub fn contains(&self, name: &SecretName) -> bool {
        self.load()
            .is_ok_and(|c| c.secrets.contains_key(name.as_str()))
    }

    fn not_found(&self, name: &SecretName) -> Error {
        Error::NotFound {
            name: name.to_string(),
            backend: Backend::File,
            location: self.location(),
            hint: format!("store it with `palisade secret set {name}`"),
        }
    }
}

impl SecretStore for FileStore {
    fn backend(&self) -> Backend {
        Backend::File
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn write_warning(&self) -> Option<&'static str> {
        Some(FILE_WARNING)
    }

    fn set(&self, name: &SecretName, value: &Secret) -> Result<()> {
        self.update(|c| {
            c.secrets.insert(
                name.to_string(),
                Zeroizing::new(value.expose_str().to_owned()),
            );
            Ok(())
        })
    }

    fn get(&self, name: &SecretName) -> Result<Secret> {
        let mut contents = self.load()?;
        match contents.secrets.remove(name.as_str()) {
            // `v` is wiped when dropped; the copy moves into the `Secret`.
            Some(v) => Secret::new(
                v.as_bytes().to_vec(),
                &format!("secret `{name}` in {}", self.path.display()),
            ),
            None => Err(self.not_found(name)),
        }
    }

    fn remove(&self, name: &SecretName) -> Result<()> {
        if !self.path.exists() {
            return Err(self.not_found(name));
        }
        self.update(|c| match c.secrets.remove(name.as_str()) {
            Some(_) => Ok(()),
            None => Err(self.not_found(name)),
        })
    }

    fn list(&self) -> Result<Vec<SecretName>> {
        let contents = self.load()?;
        // Names that fail validation (a hand-edited file) are skipped rather than failing the listing.
        Ok(contents
            .secrets
            .keys()
            .filter_map(|k| SecretName::new(k).ok())
            .collect())
    }
}
