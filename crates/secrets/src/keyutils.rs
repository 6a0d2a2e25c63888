//! The kernel keyutils store (Linux, opt-in with `PALISADE_SECRET_BACKEND=keyutils`): each secret is a
//! `user` key `palisade:NAME` in the user's keyring (`@u`).
//!
//! Measured on Linux 6.18 (as root and as an unprivileged user): a key in `@u` outlives the process that
//! added it and every other process of that user (the kernel keeps per-user keyrings registered in the user
//! namespace), is readable from any later process of the same user, and is gone after a reboot. Nothing is
//! written to disk, which is the point; the price is that the values must be set again after every boot,
//! and a `keychain:` reference fails until they are. Other limits: a `user` key holds at most 32767 bytes,
//! an unprivileged user may hold 20000 bytes of keys in total by default
//! (`/proc/sys/kernel/keys/maxbytes`), and container runtimes often block the keyctl system calls.
//! Processes of the same user (and root) can read the keys, as with the file store.

use crate::{Backend, Error, Result, Secret, SecretName, SecretStore};

const PREFIX: &str = "palisade:";

fn description(name: &SecretName) -> String {
    format!("{PREFIX}{name}")
}

/// The user keyring store.
#[derive(Debug)]
pub struct KeyutilsStore {
    #[cfg(target_os = "linux")]
    ring: linux_keyutils::KeyRing,
}

#[cfg(not(target_os = "linux"))]
impl KeyutilsStore {
    /// Kernel keyutils exists only on Linux.
    pub fn open() -> Result<Self> {
        Err(Error::Unavailable {
            backend: Backend::Keyutils,
            reason: "kernel keyutils exists only on Linux".into(),
            hint: Some("use PALISADE_SECRET_BACKEND=keychain or file".into()),
        })
    }
}

#[cfg(not(target_os = "linux"))]
impl SecretStore for KeyutilsStore {
    fn backend(&self) -> Backend {
        Backend::Keyutils
    }
    fn location(&self) -> String {
        String::new()
    }
    fn set(&self, _: &SecretName, _: &Secret) -> Result<()> {
        Self::open().map(|_| ())
    }
    fn get(&self, _: &SecretName) -> Result<Secret> {
        Self::open().map(|_| unreachable!())
    }
    fn remove(&self, _: &SecretName) -> Result<()> {
        Self::open().map(|_| ())
    }
    fn list(&self) -> Result<Vec<SecretName>> {
        Self::open().map(|_| Vec::new())
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use linux_keyutils::{
        KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, KeyType, Permission,
    };
    use zeroize::Zeroizing;

    fn map_err(e: KeyError, op: String) -> Error {
        let (detail, hint) = match e {
            KeyError::QuotaExceeded => (
                "the kernel's key quota for this user is used up".to_owned(),
                Some("an unprivileged user may keep 20000 bytes of keys by default (/proc/sys/kernel/keys/maxbytes); remove unused secrets or use PALISADE_SECRET_BACKEND=file".to_owned()),
            ),
            KeyError::AccessDenied | KeyError::PermissionDenied => (
                "permission denied".to_owned(),
                Some("the key may belong to another session; check `keyctl show @u`".to_owned()),
            ),
            KeyError::OperationNotSupported => (
                "the kernel refuses keyctl here (containers often block it)".to_owned(),
                Some("use PALISADE_SECRET_BACKEND=file".to_owned()),
            ),
            KeyError::InvalidArguments => (
                "the kernel refused the key (a `user` key holds at most 32767 bytes)".to_owned(),
                None,
            ),
            other => (format!("{other:?}"), None),
        };
        Error::Store {
            backend: Backend::Keyutils,
            op,
            detail,
            hint,
        }
    }

    impl KeyutilsStore {
        /// The calling user's keyring (`@u`), created if needed.
        pub fn open() -> Result<Self> {
            let ring = KeyRing::from_special_id(KeyRingIdentifier::User, true).map_err(|e| {
                let Error::Store { detail, hint, .. } = map_err(e, "open the user keyring".into())
                else {
                    unreachable!()
                };
                Error::Unavailable {
                    backend: Backend::Keyutils,
                    reason: format!("cannot open the user keyring: {detail}"),
                    hint: hint.or(Some("use PALISADE_SECRET_BACKEND=file".into())),
                }
            })?;
            Ok(KeyutilsStore { ring })
        }

        fn find(&self, name: &SecretName, op: &str) -> Result<Option<linux_keyutils::Key>> {
            match self.ring.search(&description(name)) {
                Ok(k) => Ok(Some(k)),
                Err(KeyError::KeyDoesNotExist)
                | Err(KeyError::KeyExpired)
                | Err(KeyError::KeyRevoked) => Ok(None),
                Err(e) => Err(map_err(e, format!("{op} secret `{name}`"))),
            }
        }

        fn not_found(&self, name: &SecretName) -> Error {
            Error::NotFound {
                name: name.to_string(),
                backend: Backend::Keyutils,
                location: self.location(),
                hint: format!(
                    "keyutils keeps secrets in kernel memory only: they are gone after a reboot; store it again with `palisade secret set {name}`"
                ),
            }
        }
    }

    impl SecretStore for KeyutilsStore {
        fn backend(&self) -> Backend {
            Backend::Keyutils
        }

        fn location(&self) -> String {
            "the kernel's user keyring @u, memory only, lost at reboot".into()
        }

        fn set(&self, name: &SecretName, value: &Secret) -> Result<()> {
            // add_key on an existing description updates that key in place (one syscall, atomic).
            let key = self
                .ring
                .add_key(&description(name), value.expose())
                .map_err(|e| map_err(e, format!("store secret `{name}`")))?;
            // Possessor and the same user get everything; group and others nothing. A later process of
            // this user that does not possess the key (another login session) can still read it.
            let perms = KeyPermissionsBuilder::builder()
                .posessor(Permission::ALL)
                .user(Permission::ALL)
                .build();
            key.set_perms(perms)
                .map_err(|e| map_err(e, format!("set permissions of secret `{name}`")))
        }

        fn get(&self, name: &SecretName) -> Result<Secret> {
            let Some(key) = self.find(name, "read")? else {
                return Err(self.not_found(name));
            };
            let bytes = Zeroizing::new(
                key.read_to_vec()
                    .map_err(|e| map_err(e, format!("read secret `{name}`")))?,
            );
            Secret::new(bytes.to_vec(), &format!("keyutils key `{name}`"))
        }

        fn remove(&self, name: &SecretName) -> Result<()> {
            let Some(key) = self.find(name, "remove")? else {
                return Err(self.not_found(name));
            };
            key.invalidate()
                .map_err(|e| map_err(e, format!("remove secret `{name}`")))
        }

        fn list(&self) -> Result<Vec<SecretName>> {
            let links = self
                .ring
                .get_links(1024)
                .map_err(|e| map_err(e, "list the user keyring".into()))?;
            let mut names: Vec<SecretName> = links
                .iter()
                .filter_map(|node| node.as_key())
                .filter_map(|k| k.metadata().ok())
                .filter(|m| m.get_type() == KeyType::User)
                .filter_map(|m| {
                    m.get_description()
                        .strip_prefix(PREFIX)
                        .and_then(|n| SecretName::new(n).ok())
                })
                .collect();
            names.sort();
            names.dedup();
            Ok(names)
        }
    }
}
