//! Where wrap keeps what it did: generated policies and the wrap records unwrap reads.
//!
//! Per config (named by [`config_id`]: client and a hash of its path):
//! * `$XDG_CONFIG_HOME/palisade/wrapped/<id>.toml`: the generated policy (0600), configuration the user
//!   may edit;
//! * `$XDG_STATE_HOME/palisade/wrapped/<id>.json`: the record (0600), state the user should not need to
//!   touch.
//!
//! A record holds one [`Generation`] per `palisade wrap` that changed the file: where the backup is, the
//! SHA-256 of the file before and after (so unwrap can tell the file is still the one wrap wrote, and that
//! the backup is still the file wrap saved), the mode before, the policy's text before (it holds only
//! references, never a secret), and the names of the servers and secrets it added. Wire format (JSON):
//!
//! ```json
//! {"version": 1, "config": "/home/u/.cursor/mcp.json", "client": "cursor",
//!  "policy": "/home/u/.config/palisade/wrapped/cursor-1a2b3c4d.toml",
//!  "generations": [{"wrapped_at": "2026-01-02T03:04:05Z",
//!    "backup": "/home/u/.cursor/mcp.json.palisade-backup-20260102T030405Z",
//!    "before_sha256": "…", "after_sha256": "…", "mode_before": 420, "mode_after": 384,
//!    "policy_before": null, "policy_after_sha256": "…",
//!    "servers": ["cursor-github"], "secrets": ["cursor-github-GITHUB_TOKEN"]}]}
//! ```

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use palisade_scan::Client;
use serde::{Deserialize, Serialize};

use crate::fsio;

/// The record format version.
pub const RECORD_VERSION: u32 = 1;

/// One `palisade wrap` of one config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// When (RFC 3339, UTC).
    pub wrapped_at: String,
    /// The copy of the file as it was before.
    pub backup: PathBuf,
    /// SHA-256 of the file before (and of the backup).
    pub before_sha256: String,
    /// SHA-256 of the file wrap wrote.
    pub after_sha256: String,
    /// Permission bits before.
    pub mode_before: u32,
    /// Permission bits wrap gave it.
    pub mode_after: u32,
    /// The policy's text before (`None`: it did not exist).
    pub policy_before: Option<String>,
    /// SHA-256 of the policy wrap wrote (`None`: not changed).
    pub policy_after_sha256: Option<String>,
    /// `[servers.NAME]` tables it added.
    pub servers: Vec<String>,
    /// Secrets it stored.
    pub secrets: Vec<String>,
}

/// Everything wrap did to one config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// The config (its real path: symlinks resolved).
    pub config: PathBuf,
    /// The client id.
    pub client: String,
    /// The generated policy.
    pub policy: PathBuf,
    /// Oldest first.
    pub generations: Vec<Generation>,
}

/// A stable name for a config: `<client>-<first 8 hex digits of SHA-256(path)>`.
pub fn config_id(client: Client, real_path: &Path) -> String {
    let h = fsio::sha256(real_path.as_os_str().as_encoded_bytes());
    format!("{}-{}", client.id(), &h[..8])
}

/// The two directories wrap uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    /// Generated policies (`$XDG_CONFIG_HOME/palisade/wrapped`).
    pub policies: PathBuf,
    /// Wrap records (`$XDG_STATE_HOME/palisade/wrapped`).
    pub records: PathBuf,
}

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// I/O.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// Not a record this palisade understands.
    #[error(
        "{path}: not a palisade wrap record ({why}); move it away if you no longer need to unwrap that config"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

impl Dirs {
    /// Under the palisade config and state directories (`$XDG_CONFIG_HOME/palisade`,
    /// `$XDG_STATE_HOME/palisade`).
    pub fn new(config_dir: &Path, state_dir: &Path) -> Dirs {
        Dirs {
            policies: config_dir.join("wrapped"),
            records: state_dir.join("wrapped"),
        }
    }

    /// The policy of config `id`.
    pub fn policy_path(&self, id: &str) -> PathBuf {
        self.policies.join(format!("{id}.toml"))
    }

    /// The record of config `id`.
    pub fn record_path(&self, id: &str) -> PathBuf {
        self.records.join(format!("{id}.json"))
    }

    /// Reads one record (`None`: there is none).
    pub fn load(&self, path: &Path) -> Result<Option<Record>, RecordError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(RecordError::Io {
                    path: path.to_path_buf(),
                    error,
                });
            }
        };
        let r: Record = serde_json::from_str(&text).map_err(|e| RecordError::Invalid {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
        if r.version != RECORD_VERSION {
            return Err(RecordError::Invalid {
                path: path.to_path_buf(),
                why: format!(
                    "version {} (this palisade reads {RECORD_VERSION})",
                    r.version
                ),
            });
        }
        Ok(Some(r))
    }

    /// Every record, sorted by path.
    pub fn all(&self) -> Result<Vec<(PathBuf, Record)>, RecordError> {
        let entries = match std::fs::read_dir(&self.records) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => {
                return Err(RecordError::Io {
                    path: self.records.clone(),
                    error,
                });
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        let mut out = Vec::new();
        for p in paths {
            if let Some(r) = self.load(&p)? {
                out.push((p, r));
            }
        }
        Ok(out)
    }

    /// Server names used by the wraps of every config except `except` (pins and audit logs are keyed
    /// by server name, so each wrapped server gets a name no other config uses).
    pub fn taken_servers(&self, except: Option<&Path>) -> Result<BTreeSet<String>, RecordError> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|(p, _)| Some(p.as_path()) != except)
            .flat_map(|(_, r)| r.generations.into_iter().flat_map(|g| g.servers))
            .collect())
    }

    /// Writes a record (0600), or removes it when it has no generations left.
    pub fn save(&self, path: &Path, record: &Record) -> Result<(), RecordError> {
        let io = |error| RecordError::Io {
            path: path.to_path_buf(),
            error,
        };
        if record.generations.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io(e)),
                _ => Ok(()),
            };
        }
        fsio::ensure_dir(&self.records).map_err(io)?;
        let mut text = serde_json::to_string_pretty(record).expect("a record serializes");
        text.push('\n');
        fsio::replace(path, text.as_bytes(), 0o600, None).map_err(io)
    }
}
