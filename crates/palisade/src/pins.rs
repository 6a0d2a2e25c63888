//! The pins file: approved tool-definition hashes per server, plus the hashes palisade last saw for tools
//! awaiting approval (so `palisade pin accept` approves exactly what was reviewed, not whatever the server
//! offers next).
//!
//! # Wire format (`pins.json`, mode 0600)
//! ```json
//! {"version": 1, "servers": {"<server>": {"approved": {"<tool>": "sha256:…"}, "observed": {"<tool>": "sha256:…"}}}}
//! ```
//! Writers take an exclusive `flock` on `pins.json.lock`, read, change one server's entry, write a temp file
//! and rename it over the original, so concurrent palisade processes never lose each other's pins and a
//! crash never leaves half a file.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One server's pins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ServerPins {
    /// Approved: tool → hash.
    pub(crate) approved: BTreeMap<String, String>,
    /// Seen but not approved (new under `require`, or changed): tool → hash.
    pub(crate) observed: BTreeMap<String, String>,
}

/// The pins file.
#[derive(Debug, Clone)]
pub(crate) struct PinStore {
    path: PathBuf,
}

impl PinStore {
    pub(crate) fn new(path: PathBuf) -> PinStore {
        PinStore { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// All servers' pins (empty when the file does not exist yet).
    pub(crate) fn load_all(&self) -> Result<BTreeMap<String, ServerPins>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read pins file {}", self.path.display()));
            }
        };
        let v: Value = serde_json::from_str(&text).with_context(|| {
            format!(
                "pins file {} is not valid JSON; fix or remove it (every tool will then need approval again)",
                self.path.display()
            )
        })?;
        if v.get("version").and_then(Value::as_u64) != Some(1) {
            bail!(
                "pins file {} has an unknown version; expected {{\"version\": 1, …}}",
                self.path.display()
            );
        }
        let mut out = BTreeMap::new();
        if let Some(servers) = v.get("servers").and_then(Value::as_object) {
            for (name, entry) in servers {
                out.insert(
                    name.clone(),
                    ServerPins {
                        approved: string_map(entry.get("approved")),
                        observed: string_map(entry.get("observed")),
                    },
                );
            }
        }
        Ok(out)
    }

    /// One server's pins.
    pub(crate) fn load(&self, server: &str) -> Result<ServerPins> {
        Ok(self.load_all()?.remove(server).unwrap_or_default())
    }

    /// Applies `change` to one server's pins under the file lock and writes the file atomically.
    pub(crate) fn update<T>(
        &self,
        server: &str,
        change: impl FnOnce(&mut ServerPins) -> T,
    ) -> Result<T> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let lock_path = self.path.with_extension("json.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
        let mut all = self.load_all()?;
        let entry = all.entry(server.to_owned()).or_default();
        let out = change(entry);
        let mut servers = Map::new();
        for (name, p) in &all {
            servers.insert(
                name.clone(),
                json!({"approved": p.approved, "observed": p.observed}),
            );
        }
        let text = serde_json::to_string_pretty(&json!({"version": 1, "servers": servers}))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f: File = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_data()?;
        fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot replace {}", self.path.display()))?;
        Ok(out)
    }
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_round_trips_and_keeps_other_servers() {
        let dir = std::env::temp_dir().join(format!("palisade-pins-{}", std::process::id()));
        let store = PinStore::new(dir.join("pins.json"));
        store
            .update("a", |p| p.approved.insert("t".into(), "sha256:1".into()))
            .unwrap();
        store
            .update("b", |p| p.observed.insert("u".into(), "sha256:2".into()))
            .unwrap();
        let all = store.load_all().unwrap();
        assert_eq!(all["a"].approved["t"], "sha256:1");
        assert_eq!(all["b"].observed["u"], "sha256:2");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(store.path()).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_a_corrupt_file_with_a_fix() {
        let dir = std::env::temp_dir().join(format!("palisade-pins-bad-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("pins.json"), "{nope").unwrap();
        let err = PinStore::new(dir.join("pins.json")).load("a").unwrap_err();
        assert!(format!("{err:#}").contains("not valid JSON"), "{err:#}");
        fs::remove_dir_all(dir).unwrap();
    }
}
