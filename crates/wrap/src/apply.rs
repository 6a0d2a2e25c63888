//! Carrying out a [`Plan`], and undoing it.
//!
//! [`apply`] works in an order where every failure can be rolled back and no moment leaves a secret only
//! in a file about to disappear: secrets are stored first; then the policy is written; then the original
//! is backed up next to the config (0600, never overwriting anything); then the record unwrap needs; and
//! only then is the config replaced (temp file + fsync + rename). If any step fails, the steps before it
//! are undone in reverse order, and the config is as it was. Right before the rename the file is read
//! again: if a client changed it since it was planned, nothing is written.
//!
//! [`plan_unwrap`] + [`apply_unwrap`] restore the backup byte for byte, after checking that the config is
//! still exactly what wrap wrote (its SHA-256 is in the record) and that the backup is still what wrap
//! saved. A config changed since is refused unless forced: restoring would silently drop the change.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use palisade_secrets::{SecretName, SecretStore};

use crate::fsio;
use crate::plan::Plan;
use crate::record::{Dirs, Generation, RECORD_VERSION, Record, RecordError};

/// Why applying or undoing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// A file operation failed (after rolling back what was done).
    #[error("{what} {path}: {error}{rollback}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
        /// What the rollback could not undo, if anything.
        rollback: String,
    },
    /// The secret store refused.
    #[error("storing secret `{name}`: {error}{rollback}")]
    Secret {
        /// The secret.
        name: String,
        /// The store's error (never contains a value).
        error: Box<palisade_secrets::Error>,
        /// What the rollback could not undo.
        rollback: String,
    },
    /// The config changed between planning and writing.
    #[error(
        "{0}: changed while palisade wrap was working on it (is the client running and rewriting it?); nothing was changed. Close the client and run palisade wrap again"
    )]
    Changed(PathBuf),
    /// The record could not be read or written.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The config was edited after wrap wrote it.
    #[error(
        "{path}: changed since palisade wrap wrote it ({when}); restoring the backup would lose those changes\nhint: `palisade unwrap --dry-run --config {path}` shows what restoring would do; `--force` restores the backup anyway"
    )]
    EditedSince {
        /// The config.
        path: PathBuf,
        /// When it was wrapped.
        when: String,
    },
    /// The backup is gone or not what wrap saved.
    #[error(
        "{backup}: {why}; palisade will not restore {config} from it. Restore the file by hand if you have another copy"
    )]
    BadBackup {
        /// The config.
        config: PathBuf,
        /// The backup.
        backup: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The file written (symlinks resolved).
    pub config: PathBuf,
    /// The backup of the original.
    pub backup: PathBuf,
    /// The record.
    pub record: PathBuf,
    /// Mode before and after (they differ when the file held secrets and was readable by others).
    pub mode: (u32, u32),
    /// Secrets stored.
    pub secrets: Vec<String>,
}

/// `2026-01-02T03:04:05Z` and `20260102T030405Z` for `now`.
fn stamps(now: SystemTime) -> (String, String) {
    let rfc = humantime::format_rfc3339_seconds(now).to_string();
    let compact: String = rfc.chars().filter(|c| *c != '-' && *c != ':').collect();
    (rfc, compact)
}

fn io_err(
    what: &'static str,
    path: &Path,
    error: std::io::Error,
    rollback: Vec<String>,
) -> ApplyError {
    ApplyError::Io {
        what,
        path: path.to_path_buf(),
        error,
        rollback: rollback_text(rollback),
    }
}

fn rollback_text(failures: Vec<String>) -> String {
    if failures.is_empty() {
        "; everything done before was undone".into()
    } else {
        format!(
            "; undoing the earlier steps also failed: {}",
            failures.join("; ")
        )
    }
}

/// Undo steps, run in reverse.
#[derive(Default)]
struct Undo<'a> {
    secrets: Vec<SecretName>,
    policy: Option<(PathBuf, Option<String>)>,
    backup: Option<PathBuf>,
    record: Option<(PathBuf, Option<Record>)>,
    store: Option<&'a dyn SecretStore>,
    dirs: Option<&'a Dirs>,
}

impl Undo<'_> {
    fn run(self) -> Vec<String> {
        let mut failed = Vec::new();
        if let (Some((path, old)), Some(dirs)) = (self.record, self.dirs) {
            let r = match old {
                Some(r) => dirs.save(&path, &r),
                None => std::fs::remove_file(&path).map_err(|error| RecordError::Io {
                    path: path.clone(),
                    error,
                }),
            };
            if let Err(e) = r {
                failed.push(format!("restoring the record: {e}"));
            }
        }
        if let Some(b) = self.backup
            && let Err(e) = std::fs::remove_file(&b)
        {
            failed.push(format!("removing {}: {e}", b.display()));
        }
        if let Some((path, old)) = self.policy {
            let r = match old {
                Some(text) => fsio::replace(&path, text.as_bytes(), 0o600, None),
                None => std::fs::remove_file(&path),
            };
            if let Err(e) = r {
                failed.push(format!("restoring {}: {e}", path.display()));
            }
        }
        if let Some(store) = self.store {
            for n in self.secrets.iter().rev() {
                if let Err(e) = store.remove(n) {
                    failed.push(format!("removing secret `{n}`: {e}"));
                }
            }
        }
        failed
    }
}

/// Carries out `plan` (see the module docs). `record_path` is the config's record in `dirs`.
pub fn apply(
    plan: &Plan,
    store: &dyn SecretStore,
    dirs: &Dirs,
    record_path: &Path,
    now: SystemTime,
) -> Result<Applied, ApplyError> {
    let real = std::fs::canonicalize(&plan.config)
        .map_err(|e| io_err("resolving", &plan.config, e, Vec::new()))?;
    let current = std::fs::read(&real).map_err(|e| io_err("reading", &real, e, Vec::new()))?;
    if current != plan.before.as_bytes() {
        return Err(ApplyError::Changed(plan.config.clone()));
    }
    let meta = fsio::meta(&real).map_err(|e| io_err("reading", &real, e, Vec::new()))?;
    let mode_after = if !plan.secrets.is_empty() && meta.mode & 0o077 != 0 {
        0o600
    } else {
        meta.mode
    };
    let (rfc, compact) = stamps(now);
    let mut undo = Undo {
        store: Some(store),
        dirs: Some(dirs),
        ..Undo::default()
    };

    for s in &plan.secrets {
        if let Err(error) = store.set(&s.name, &s.value) {
            return Err(ApplyError::Secret {
                name: s.name.to_string(),
                error: Box::new(error),
                rollback: rollback_text(undo.run()),
            });
        }
        undo.secrets.push(s.name.clone());
    }

    let policy_changed = plan.policy_after != plan.policy_before;
    if policy_changed && let Some(text) = &plan.policy_after {
        let dir = plan.policy_path.parent().unwrap_or(Path::new("."));
        if let Err(e) = fsio::ensure_dir(dir)
            .and_then(|()| fsio::replace(&plan.policy_path, text.as_bytes(), 0o600, None))
        {
            return Err(io_err("writing", &plan.policy_path, e, undo.run()));
        }
        undo.policy = Some((plan.policy_path.clone(), plan.policy_before.clone()));
    }

    let backup = match fsio::write_backup(&real, &current, &compact) {
        Ok(b) => b,
        Err(e) => return Err(io_err("backing up", &real, e, undo.run())),
    };
    undo.backup = Some(backup.clone());

    let old_record = match dirs.load(record_path) {
        Ok(r) => r,
        Err(e) => {
            let _ = undo.run();
            return Err(e.into());
        }
    };
    let mut record = old_record.clone().unwrap_or_else(|| Record {
        version: RECORD_VERSION,
        config: real.clone(),
        client: plan.client.id().to_owned(),
        policy: plan.policy_path.clone(),
        generations: Vec::new(),
    });
    record.generations.push(Generation {
        wrapped_at: rfc,
        backup: backup.clone(),
        before_sha256: fsio::sha256(&current),
        after_sha256: fsio::sha256(plan.after.as_bytes()),
        mode_before: meta.mode,
        mode_after,
        policy_before: plan.policy_before.clone(),
        policy_after_sha256: policy_changed
            .then(|| {
                plan.policy_after
                    .as_deref()
                    .map(|t| fsio::sha256(t.as_bytes()))
            })
            .flatten(),
        servers: plan.wrapped().map(|(_, n)| n.to_owned()).collect(),
        secrets: plan.secrets.iter().map(|s| s.name.to_string()).collect(),
    });
    if let Err(e) = dirs.save(record_path, &record) {
        let _ = undo.run();
        return Err(e.into());
    }
    undo.record = Some((record_path.to_path_buf(), old_record));

    // Last look before the rename: a client that rewrote the file meanwhile wins.
    match std::fs::read(&real) {
        Ok(now_bytes) if now_bytes == current => {}
        Ok(_) => {
            let _ = undo.run();
            return Err(ApplyError::Changed(plan.config.clone()));
        }
        Err(e) => return Err(io_err("reading", &real, e, undo.run())),
    }
    if let Err(e) = fsio::replace(
        &real,
        plan.after.as_bytes(),
        mode_after,
        Some((meta.uid, meta.gid)),
    ) {
        return Err(io_err("writing", &real, e, undo.run()));
    }
    Ok(Applied {
        config: real,
        backup,
        record: record_path.to_path_buf(),
        mode: (meta.mode, mode_after),
        secrets: plan.secrets.iter().map(|s| s.name.to_string()).collect(),
    })
}

/// What [`apply_unwrap`] would do to one config.
#[derive(Debug, Clone)]
pub struct UnwrapPlan {
    /// The record's path.
    pub record_path: PathBuf,
    /// The record.
    pub record: Record,
    /// The config's bytes now (`None`: it is gone).
    pub current: Option<Vec<u8>>,
    /// The bytes it gets back.
    pub restored: Vec<u8>,
    /// The mode it gets back.
    pub mode: u32,
    /// Generations undone: `record.generations[keep..]`.
    pub keep: usize,
    /// The config changed since wrap wrote it (restoring needs `force`).
    pub edited_since: bool,
    /// Why earlier generations stay (the file was edited between two wraps), when they do.
    pub stopped: Option<String>,
}

impl UnwrapPlan {
    /// The generations this undoes.
    pub fn undone(&self) -> &[Generation] {
        &self.record.generations[self.keep..]
    }

    /// A unified diff of the config now → restored.
    pub fn diff(&self) -> String {
        let now = self
            .current
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        crate::diff::unified(
            &self.record.config,
            &now,
            &String::from_utf8_lossy(&self.restored),
        )
    }
}

/// Plans undoing the wraps recorded at `record_path`. With `force`, a config changed since is restored
/// anyway, all the way back to before the first wrap.
pub fn plan_unwrap(
    record_path: &Path,
    record: Record,
    force: bool,
) -> Result<UnwrapPlan, ApplyError> {
    let gens = &record.generations;
    let last = gens.last().ok_or_else(|| RecordError::Invalid {
        path: record_path.to_path_buf(),
        why: "it records no wrap".into(),
    })?;
    let current = match std::fs::read(&record.config) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("reading", &record.config, e, Vec::new())),
    };
    let edited_since =
        current.as_deref().map(fsio::sha256).as_deref() != Some(last.after_sha256.as_str());
    if edited_since && !force {
        return Err(ApplyError::EditedSince {
            path: record.config.clone(),
            when: last.wrapped_at.clone(),
        });
    }
    let mut keep = gens.len() - 1;
    while keep > 0 && (force || gens[keep - 1].after_sha256 == gens[keep].before_sha256) {
        keep -= 1;
    }
    let stopped = (keep > 0).then(|| {
        format!(
            "it was edited between the wrap of {} and that of {}: it is restored to how it was before {} (those edits kept); the servers wrapped at {} still run through palisade. `palisade unwrap --force` restores the original from before the first wrap, losing the edits",
            gens[keep - 1].wrapped_at, gens[keep].wrapped_at, gens[keep].wrapped_at, gens[keep - 1].wrapped_at
        )
    });
    let target = &gens[keep];
    let restored = std::fs::read(&target.backup).map_err(|e| ApplyError::BadBackup {
        config: record.config.clone(),
        backup: target.backup.clone(),
        why: format!("cannot read it ({e})"),
    })?;
    if fsio::sha256(&restored) != target.before_sha256 {
        return Err(ApplyError::BadBackup {
            config: record.config.clone(),
            backup: target.backup.clone(),
            why: "it is not the file palisade wrap saved (its SHA-256 differs from the record's)"
                .into(),
        });
    }
    Ok(UnwrapPlan {
        record_path: record_path.to_path_buf(),
        mode: target.mode_before,
        current,
        restored,
        keep,
        edited_since,
        stopped,
        record,
    })
}

/// What [`apply_unwrap`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unwrapped {
    /// The policy: restored to its earlier text, removed, or left because it was edited.
    pub policy: PolicyOutcome,
    /// Secrets removed (with `remove_secrets`).
    pub removed_secrets: Vec<String>,
    /// Secrets left in the store.
    pub kept_secrets: Vec<String>,
    /// Problems that did not stop the restore (a secret that could not be removed, …).
    pub warnings: Vec<String>,
}

/// What happened to the generated policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// Nothing to do.
    #[default]
    Untouched,
    /// Back to its text before the undone wraps.
    Restored,
    /// Removed (no wrap left).
    Removed,
    /// Edited since: left in place.
    KeptEdited,
}

/// Restores the config (see [`plan_unwrap`]), then the policy (unless edited since), removes the undone
/// backups and, with `remove_secrets`, the secrets those wraps stored.
pub fn apply_unwrap(
    up: &UnwrapPlan,
    dirs: &Dirs,
    store: Option<&dyn SecretStore>,
) -> Result<Unwrapped, ApplyError> {
    let config = &up.record.config;
    // The owner it has now (or, if it is gone, ours).
    let owner = fsio::meta(config).ok().map(|m| (m.uid, m.gid));
    // Same last look as wrap: only replace the bytes the plan saw.
    let now = match std::fs::read(config) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("reading", config, e, Vec::new())),
    };
    if now != up.current {
        return Err(ApplyError::Changed(config.clone()));
    }
    fsio::replace(config, &up.restored, up.mode, owner).map_err(|e| ApplyError::Io {
        what: "restoring",
        path: config.clone(),
        error: e,
        rollback: String::new(),
    })?;
    let mut out = Unwrapped::default();
    let undone = up.undone();
    let policy = &up.record.policy;
    // The policy as the latest undone wrap that changed it left it; back to its text before the earliest.
    if let Some(wrote) = undone
        .iter()
        .rev()
        .find_map(|g| g.policy_after_sha256.clone())
    {
        let current = std::fs::read(policy).ok();
        if current.as_deref().map(fsio::sha256) == Some(wrote) {
            let r = match &undone[0].policy_before {
                Some(text) => fsio::replace(policy, text.as_bytes(), 0o600, None)
                    .map(|()| PolicyOutcome::Restored),
                None => std::fs::remove_file(policy).map(|()| PolicyOutcome::Removed),
            };
            match r {
                Ok(o) => out.policy = o,
                Err(e) => out.warnings.push(format!("{}: {e}", policy.display())),
            }
        } else if current.is_some() {
            out.policy = PolicyOutcome::KeptEdited;
        }
    }
    for g in undone {
        if let Err(e) = std::fs::remove_file(&g.backup)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            out.warnings
                .push(format!("removing {}: {e}", g.backup.display()));
        }
        for s in &g.secrets {
            match (store, SecretName::new(s)) {
                (Some(store), Ok(name)) => match store.remove(&name) {
                    Ok(()) => out.removed_secrets.push(s.clone()),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => {
                        out.warnings.push(format!("removing secret `{s}`: {e}"));
                        out.kept_secrets.push(s.clone());
                    }
                },
                _ => out.kept_secrets.push(s.clone()),
            }
        }
    }
    let mut record = up.record.clone();
    record.generations.truncate(up.keep);
    dirs.save(&up.record_path, &record)?;
    Ok(out)
}
