//! The OS keychain store, through the `keyring` crate: the Secret Service (GNOME Keyring, KWallet,
//! KeePassXC) on Linux/BSD over pure-Rust D-Bus, the login Keychain on macOS, Credential Manager on
//! Windows. Entries are filed under service `palisade`, account `NAME`.
//!
//! Keychains can be asked for an entry but not, portably, for "all of palisade's entries", so `list` reads
//! a small index of the names palisade stored (`$XDG_STATE_HOME/palisade/keychain-index.json`, names only,
//! never values). An entry added or removed behind palisade's back (e.g. with Seahorse) is not reflected
//! there; `secret rm` cleans the index even when the entry is already gone.
//!
//! The `keyring` crate's errors are mapped here without their payloads: one variant carries the undecodable
//! bytes of a stored value, so no error of that crate is ever formatted with `{:?}`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::backend::KEYCHAIN_SERVICE;
use crate::fsutil;
use crate::{Backend, Error, Result, Secret, SecretName, SecretStore};

const KEYCHAIN_SUPPORTED: bool = cfg!(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "macos",
    windows
));

/// What the platform's keychain is called, for messages.
pub fn keychain_kind() -> &'static str {
    if cfg!(target_os = "macos") {
        "macOS Keychain"
    } else if cfg!(windows) {
        "Windows Credential Manager"
    } else {
        "Secret Service"
    }
}

/// Asks the keychain for an entry that does not exist, and classifies the answer.
pub(crate) fn probe() -> crate::backend::Probe {
    use crate::backend::Probe;
    if !KEYCHAIN_SUPPORTED {
        return Probe::Absent("this build has no keychain support for this platform".into());
    }
    let result =
        keyring::Entry::new(KEYCHAIN_SERVICE, "palisade-probe").and_then(|e| e.get_secret());
    match result {
        Ok(_) | Err(keyring::Error::NoEntry) => Probe::Answered,
        // There is a keychain, but it is locked or refuses us: using it (and failing with "unlock it")
        // beats silently switching stores with the lock state.
        Err(keyring::Error::NoStorageAccess(e)) => Probe::Locked(e.to_string()),
        Err(keyring::Error::PlatformFailure(e)) => Probe::Absent(e.to_string()),
        Err(_) => Probe::Absent("unexpected answer from the keychain".into()),
    }
}

fn unsupported() -> Error {
    Error::Unavailable {
        backend: Backend::Keychain,
        reason: "this build has no OS keychain support for this platform".into(),
        hint: Some("use PALISADE_SECRET_BACKEND=file".into()),
    }
}

fn map_err(e: keyring::Error, op: &str, name: Option<&SecretName>) -> Error {
    let (detail, hint) = match e {
        keyring::Error::PlatformFailure(inner) => (
            inner.to_string(),
            Some(format!(
                "is a {} running and reachable? Without a desktop session, use PALISADE_SECRET_BACKEND=file (or keyutils)",
                keychain_kind()
            )),
        ),
        keyring::Error::NoStorageAccess(inner) => (
            format!("access refused: {inner}"),
            Some("unlock the keychain (log in to the desktop session, or unlock it in your keyring manager) and retry; on a machine without a desktop session, use PALISADE_SECRET_BACKEND=file".into()),
        ),
        keyring::Error::NoEntry => ("no such entry".into(), None),
        // The payload is the stored value's bytes: never shown.
        keyring::Error::BadEncoding(_) => ("the stored value is not valid UTF-8".into(), None),
        keyring::Error::TooLong(attr, limit) => (
            format!("{attr} is longer than the platform's limit of {limit}"),
            None,
        ),
        keyring::Error::Invalid(attr, reason) => (format!("{attr} is invalid: {reason}"), None),
        keyring::Error::Ambiguous(creds) => (
            format!(
                "{} keychain entries match service `{KEYCHAIN_SERVICE}`{}",
                creds.len(),
                name.map(|n| format!(", account `{n}`")).unwrap_or_default()
            ),
            Some("remove the duplicates in your keyring manager".into()),
        ),
        _ => ("unknown keychain error".into(), None),
    };
    Error::Store {
        backend: Backend::Keychain,
        op: op.to_owned(),
        detail,
        hint,
    }
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Index {
    version: u32,
    names: BTreeSet<String>,
}

/// The OS keychain.
#[derive(Debug, Clone)]
pub struct KeychainStore {
    index: PathBuf,
}

impl KeychainStore {
    /// The keychain, with its name index at `index`.
    pub fn new(index: PathBuf) -> Result<Self> {
        if !KEYCHAIN_SUPPORTED {
            return Err(unsupported());
        }
        Ok(KeychainStore { index })
    }

    fn entry(&self, name: &SecretName) -> Result<keyring::Entry> {
        keyring::Entry::new(KEYCHAIN_SERVICE, name.as_str())
            .map_err(|e| map_err(e, &format!("address entry `{name}`"), Some(name)))
    }

    fn read_index(&self) -> Result<Index> {
        let Some(bytes) = fsutil::read_private(&self.index, "keychain index", 4 * 1024 * 1024)?
        else {
            return Ok(Index {
                version: 1,
                names: BTreeSet::new(),
            });
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::Store {
            backend: Backend::Keychain,
            op: format!("read the name index {}", self.index.display()),
            detail: e.to_string(),
            hint: Some(format!(
                "remove it (names only; the keychain entries stay): rm {}",
                self.index.display()
            )),
        })
    }

    fn edit_index(&self, f: impl FnOnce(&mut BTreeSet<String>)) -> Result<()> {
        let dir = self.index.parent().unwrap_or(std::path::Path::new("."));
        fsutil::private_dir(dir)?;
        let _lock = fsutil::lock(&self.index)?;
        let mut index = self.read_index()?;
        f(&mut index.names);
        index.version = 1;
        let bytes = serde_json::to_vec_pretty(&index).map_err(|e| Error::Store {
            backend: Backend::Keychain,
            op: "encode the name index".into(),
            detail: e.to_string(),
            hint: None,
        })?;
        fsutil::write_atomic(&self.index, &bytes)
    }

    fn not_found(&self, name: &SecretName) -> Error {
        Error::NotFound {
            name: name.to_string(),
            backend: Backend::Keychain,
            location: self.location(),
            hint: format!("store it with `palisade secret set {name}`"),
        }
    }
}

impl SecretStore for KeychainStore {
    fn backend(&self) -> Backend {
        Backend::Keychain
    }

    fn location(&self) -> String {
        format!("{}, service `{KEYCHAIN_SERVICE}`", keychain_kind())
    }

    fn set(&self, name: &SecretName, value: &Secret) -> Result<()> {
        self.entry(name)?
            .set_secret(value.expose())
            .map_err(|e| map_err(e, &format!("store secret `{name}`"), Some(name)))?;
        self.edit_index(|names| {
            names.insert(name.to_string());
        })
    }

    fn get(&self, name: &SecretName) -> Result<Secret> {
        match self.entry(name)?.get_secret() {
            Ok(v) => Secret::new(v, &format!("keychain entry `{name}`")),
            Err(keyring::Error::NoEntry) => Err(self.not_found(name)),
            Err(e) => Err(map_err(e, &format!("read secret `{name}`"), Some(name))),
        }
    }

    fn remove(&self, name: &SecretName) -> Result<()> {
        let deleted = match self.entry(name)?.delete_credential() {
            Ok(()) => true,
            Err(keyring::Error::NoEntry) => false,
            Err(e) => return Err(map_err(e, &format!("remove secret `{name}`"), Some(name))),
        };
        // Cleaned either way: an entry removed behind palisade's back leaves a stale name.
        self.edit_index(|names| {
            names.remove(name.as_str());
        })?;
        if deleted {
            Ok(())
        } else {
            Err(self.not_found(name))
        }
    }

    fn list(&self) -> Result<Vec<SecretName>> {
        Ok(self
            .read_index()?
            .names
            .iter()
            .filter_map(|n| SecretName::new(n).ok())
            .collect())
    }
}
