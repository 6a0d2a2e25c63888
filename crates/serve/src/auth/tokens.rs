//! palisade-issued client tokens: `palisade token create|list|revoke`, and their verification.
//!
//! # Token format
//! `palisade_<id>_<secret>`: `id` is 16 hex digits (public: shown by `token list`, used by `token
//! revoke`), `secret` is 256 bits, base64url. The `palisade_` prefix lets secret scanners and palisade's
//! own log redaction recognize a leaked token.
//!
//! # Wire format (`$XDG_STATE_HOME/palisade/tokens.json`, mode 0600)
//! ```json
//! {"version": 1, "tokens": [{"id": "…", "client": "alice", "scopes": ["mcp:git"], "created": 1700000000,
//!   "expires": 1700086400, "hash": "sha256:…", "revoked": null}]}
//! ```
//! Only the SHA-256 of the whole token is stored: a copy of the file lets nobody call anything. Times
//! are Unix seconds. Writers take an exclusive lock on `tokens.json.lock` and replace the file atomically.
//!
//! # Verification
//! `palisade serve` re-reads the file whenever its size, inode or modification time changed, so a
//! `token revoke` takes effect on the next request without a restart. It learns that something changed
//! from an inotify watch on the store's directory (the file is replaced by a rename, so the file itself
//! cannot be watched) rather than by a `stat` of the path per request, which was 5% of the gateway's CPU
//! per request in `palisade-bench http`; without inotify it falls back to that `stat`.

use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ids::random_token;
use crate::scope::{PREFIX, Principal, Scopes};

/// The prefix of every palisade-issued token.
pub const TOKEN_PREFIX: &str = "palisade_";

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The store could not be read or written.
    #[error("token store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The store is not a token file palisade wrote.
    #[error(
        "token store {path} is corrupt ({why}); fix or remove it (every token is then revoked)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A bad argument (client name, scope, TTL).
    #[error("{0}")]
    Invalid(String),
    /// No token has this id.
    #[error("no token with id {0}; `palisade token list` shows the ids")]
    NotFound(String),
}

/// One stored token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenInfo {
    /// Public id.
    pub id: String,
    /// Client name (recorded as `client` in the audit trail).
    pub client: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Creation time (Unix seconds).
    pub created: u64,
    /// Expiry (Unix seconds).
    pub expires: u64,
    /// `sha256:<hex>` of the whole token.
    pub hash: String,
    /// Revocation time, if revoked.
    pub revoked: Option<u64>,
}

impl TokenInfo {
    /// `active`, `expired` or `revoked` at `now`.
    pub fn state(&self, now: u64) -> &'static str {
        if self.revoked.is_some() {
            "revoked"
        } else if now >= self.expires {
            "expired"
        } else {
            "active"
        }
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct File1 {
    version: u32,
    tokens: Vec<TokenInfo>,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hash(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

/// The token store file.
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
}

impl TokenStore {
    /// The store at `path` (created on first write).
    pub fn new(path: PathBuf) -> TokenStore {
        TokenStore { path }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> TokenError {
        TokenError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Every token, newest last (an absent file is an empty store).
    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(e)),
        };
        let f: File1 = serde_json::from_str(&text).map_err(|e| TokenError::Corrupt {
            path: self.path.clone(),
            why: e.to_string(),
        })?;
        if f.version != 1 {
            return Err(TokenError::Corrupt {
                path: self.path.clone(),
                why: format!("unknown version {}", f.version),
            });
        }
        Ok(f.tokens)
    }

    /// Creates a token for `client` with `scopes`, valid for `ttl`. Returns its record and the token
    /// itself, which exists nowhere else: show it once.
    pub fn create(
        &self,
        client: &str,
        scopes: &[String],
        ttl: Duration,
    ) -> Result<(TokenInfo, String), TokenError> {
        let valid_name = !client.is_empty()
            && client.len() <= 64
            && client
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
        if !valid_name {
            return Err(TokenError::Invalid(format!(
                "client name {client:?} must be 1-64 characters of letters, digits, `.`, `_`, `-`, `@`"
            )));
        }
        if scopes.is_empty() {
            return Err(TokenError::Invalid(
                "a token needs at least one scope (mcp:*, mcp:SERVER or mcp:SERVER:TOOL)".into(),
            ));
        }
        for s in scopes {
            if !s.starts_with(PREFIX) {
                return Err(TokenError::Invalid(format!(
                    "scope `{s}` is not a palisade scope; use mcp:*, mcp:SERVER or mcp:SERVER:TOOL"
                )));
            }
        }
        Scopes::parse(scopes.iter().map(String::as_str)).map_err(TokenError::Invalid)?;
        if ttl.is_zero() {
            return Err(TokenError::Invalid("--ttl must be longer than zero".into()));
        }
        let mut idb = [0u8; 8];
        getrandom::fill(&mut idb).expect("the operating system's random number generator failed");
        let id = hex::encode(idb);
        let token = format!("{TOKEN_PREFIX}{id}_{}", random_token(32));
        let now = unix_now();
        let info = TokenInfo {
            id,
            client: client.to_owned(),
            scopes: scopes.to_vec(),
            created: now,
            expires: now.saturating_add(ttl.as_secs().max(1)),
            hash: hash(&token),
            revoked: None,
        };
        let rec = info.clone();
        self.update(move |tokens| {
            tokens.push(rec);
            Ok(())
        })?;
        Ok((info, token))
    }

    /// Revokes the token `id` (revoking twice is not an error).
    pub fn revoke(&self, id: &str) -> Result<TokenInfo, TokenError> {
        self.update(|tokens| {
            let t = tokens
                .iter_mut()
                .find(|t| t.id == id)
                .ok_or_else(|| TokenError::NotFound(id.to_owned()))?;
            if t.revoked.is_none() {
                t.revoked = Some(unix_now());
            }
            Ok(t.clone())
        })
    }

    fn update<T>(
        &self,
        change: impl FnOnce(&mut Vec<TokenInfo>) -> Result<T, TokenError>,
    ) -> Result<T, TokenError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        let lock_path = self.path.with_extension("json.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| self.io(e))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| self.io(e.into()))?;
        let mut tokens = self.list()?;
        let out = change(&mut tokens)?;
        let text = serde_json::to_string_pretty(&File1 { version: 1, tokens })
            .map_err(|e| self.io(std::io::Error::other(e)))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f: File = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| self.io(e))?;
        f.write_all(text.as_bytes()).map_err(|e| self.io(e))?;
        f.write_all(b"\n").map_err(|e| self.io(e))?;
        f.sync_data().map_err(|e| self.io(e))?;
        fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        Ok(out)
    }
}

/// Why a presented palisade token was refused (recorded in the audit trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenRefusal {
    Malformed,
    Unknown,
    Expired,
    Revoked,
    Store,
}

impl TokenRefusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TokenRefusal::Malformed => "token-malformed",
            TokenRefusal::Unknown => "token-unknown",
            TokenRefusal::Expired => "token-expired",
            TokenRefusal::Revoked => "token-revoked",
            TokenRefusal::Store => "token-store-unreadable",
        }
    }
}

type Stamp = (u64, u64, i64, i64);

/// Checks presented tokens against the store, re-reading it when it changes.
#[derive(Debug)]
pub(crate) struct TokenVerifier {
    store: TokenStore,
    cache: Mutex<Option<(Stamp, Vec<TokenInfo>)>>,
    /// Says when the store's directory changed; `None`: stat the file at every request.
    watch: Option<Watch>,
}

/// An inotify watch on the token store's directory.
#[derive(Debug)]
struct Watch(rustix::fd::OwnedFd);

impl Watch {
    /// `None` when the directory does not exist yet or inotify is unavailable.
    fn new(dir: &Path) -> Option<Watch> {
        use rustix::fs::inotify::{CreateFlags, WatchFlags, add_watch, init};
        let fd = init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC).ok()?;
        let what = WatchFlags::CLOSE_WRITE
            | WatchFlags::MODIFY
            | WatchFlags::ATTRIB
            | WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF;
        add_watch(&fd, dir, what).ok()?;
        Some(Watch(fd))
    }

    /// Whether anything happened in the directory since the last call (the events are consumed). A
    /// read error or a queue overflow counts as a change: the caller then checks the file itself.
    fn changed(&self) -> bool {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1024];
        let mut events = rustix::fs::inotify::Reader::new(&self.0, &mut buf);
        let mut changed = false;
        loop {
            match events.next() {
                Ok(_) => changed = true,
                Err(rustix::io::Errno::WOULDBLOCK) => return changed,
                Err(_) => return true,
            }
        }
    }
}

impl TokenVerifier {
    pub(crate) fn new(store: TokenStore) -> TokenVerifier {
        let watch = store.path().parent().and_then(Watch::new);
        TokenVerifier {
            store,
            cache: Mutex::new(None),
            watch,
        }
    }

    fn stamp(&self) -> Option<Stamp> {
        let m = fs::metadata(self.store.path()).ok()?;
        Some((m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
    }

    pub(crate) fn verify(&self, token: &str, now: u64) -> Result<Principal, TokenRefusal> {
        let rest = token
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(TokenRefusal::Malformed)?;
        let (id, secret) = rest.split_once('_').ok_or(TokenRefusal::Malformed)?;
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) || secret.len() != 43 {
            return Err(TokenRefusal::Malformed);
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        // With a watch, the file is looked at only after its directory changed (or before the first
        // read); the stamp then decides whether to re-read it, as without one.
        let look = match &self.watch {
            Some(w) => w.changed() || cache.is_none(),
            None => true,
        };
        if look {
            let stamp = self.stamp();
            let fresh = matches!((&*cache, stamp), (Some((s, _)), Some(now_s)) if *s == now_s);
            if !fresh {
                let tokens = self.store.list().map_err(|_| TokenRefusal::Store)?;
                *cache = stamp.map(|s| (s, tokens));
            }
        }
        let Some((_, tokens)) = &*cache else {
            // No store file: no token was ever issued.
            return Err(TokenRefusal::Unknown);
        };
        let t = tokens
            .iter()
            .find(|t| t.id == id)
            .ok_or(TokenRefusal::Unknown)?;
        if !constant_time_eq(t.hash.as_bytes(), hash(token).as_bytes()) {
            return Err(TokenRefusal::Unknown);
        }
        if t.revoked.is_some() {
            return Err(TokenRefusal::Revoked);
        }
        if now >= t.expires {
            return Err(TokenRefusal::Expired);
        }
        let scopes =
            Scopes::parse(t.scopes.iter().map(String::as_str)).map_err(|_| TokenRefusal::Store)?;
        Ok(Principal {
            name: t.client.clone(),
            key: format!("token:{}", t.id),
            scopes,
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(tag: &str) -> (TokenStore, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("palisade-tokens-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        (TokenStore::new(dir.join("tokens.json")), dir)
    }

    #[test]
    fn a_created_token_verifies_and_only_its_hash_is_stored() {
        let (s, dir) = store("create");
        let (info, token) = s
            .create(
                "alice",
                &["mcp:git:git_log".into()],
                Duration::from_secs(3600),
            )
            .unwrap();
        assert!(token.starts_with("palisade_"));
        let text = fs::read_to_string(s.path()).unwrap();
        assert!(
            !text.contains(&token[token.len() - 43..]),
            "the secret must not be stored"
        );
        assert!(text.contains(&info.hash));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(s.path()).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let v = TokenVerifier::new(s.clone());
        let p = v.verify(&token, unix_now()).unwrap();
        assert_eq!(p.name, "alice");
        assert!(p.scopes.tool("git", "git_log") && !p.scopes.tool("git", "git_push"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_watch_sees_tokens_created_and_revoked_after_the_verifier_started() {
        let (s, dir) = store("watch");
        let (_, first) = s
            .create("carol", &["mcp:*".into()], Duration::from_secs(600))
            .unwrap();
        let v = TokenVerifier::new(s.clone());
        assert!(v.watch.is_some(), "inotify is available on Linux");
        assert!(v.verify(&first, unix_now()).is_ok());
        // Quiet directory: the cached list answers (and a second verify consumes no stale event).
        assert!(v.verify(&first, unix_now()).is_ok());
        let (info, second) = s
            .create("dave", &["mcp:*".into()], Duration::from_secs(600))
            .unwrap();
        assert_eq!(v.verify(&second, unix_now()).unwrap().name, "dave");
        s.revoke(&info.id).unwrap();
        assert_eq!(
            v.verify(&second, unix_now()).unwrap_err(),
            TokenRefusal::Revoked
        );
        assert!(v.verify(&first, unix_now()).is_ok());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_expired_revoked_unknown_and_tampered_tokens() {
        let (s, dir) = store("refuse");
        let (info, token) = s
            .create("bob", &["mcp:*".into()], Duration::from_secs(60))
            .unwrap();
        let v = TokenVerifier::new(s.clone());
        assert_eq!(
            v.verify(&token, info.expires).unwrap_err(),
            TokenRefusal::Expired
        );
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            v.verify(&tampered, unix_now()).unwrap_err(),
            TokenRefusal::Unknown
        );
        assert_eq!(
            v.verify("palisade_0123456789abcdef_xyz", unix_now())
                .unwrap_err(),
            TokenRefusal::Malformed
        );
        assert!(v.verify(&token, unix_now()).is_ok());
        s.revoke(&info.id).unwrap();
        assert_eq!(
            v.verify(&token, unix_now()).unwrap_err(),
            TokenRefusal::Revoked
        );
        assert!(matches!(
            s.revoke("ffffffffffffffff"),
            Err(TokenError::NotFound(_))
        ));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_bad_names_and_scopes() {
        let (s, _dir) = store("bad");
        let ttl = Duration::from_secs(60);
        assert!(matches!(
            s.create("", &["mcp:*".into()], ttl),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            s.create("a b", &["mcp:*".into()], ttl),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            s.create("a", &[], ttl),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            s.create("a", &["admin".into()], ttl),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            s.create("a", &["mcp:x:y:z".into()], ttl),
            Err(TokenError::Invalid(_))
        ));
    }
}
