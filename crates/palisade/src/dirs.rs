//! Where palisade keeps state: the platform's conventional places (XDG on Linux), so tests isolate
//! everything by setting `XDG_*` and `HOME`.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;

fn xdg(var: &str, fallback: &str) -> Result<PathBuf> {
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if p.is_absolute() {
            return Ok(p.join("palisade"));
        }
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither $XDG_* nor $HOME is set, so palisade cannot place its state")?;
    Ok(PathBuf::from(home).join(fallback).join("palisade"))
}

/// `$XDG_CONFIG_HOME/palisade` (policies `palisade wrap` generates).
pub(crate) fn config() -> Result<PathBuf> {
    xdg("XDG_CONFIG_HOME", ".config")
}

/// `$XDG_STATE_HOME/palisade` (pins, audit logs).
pub(crate) fn state() -> Result<PathBuf> {
    xdg("XDG_STATE_HOME", ".local/state")
}

/// `$XDG_DATA_HOME/palisade` (the package store).
pub(crate) fn data() -> Result<PathBuf> {
    xdg("XDG_DATA_HOME", ".local/share")
}

/// `$XDG_CACHE_HOME/palisade` (scratch space for audits).
pub(crate) fn cache() -> Result<PathBuf> {
    xdg("XDG_CACHE_HOME", ".cache")
}

/// The default pins file.
pub(crate) fn pins_file() -> Result<PathBuf> {
    Ok(state()?.join("pins.json"))
}

/// The default audit log of `server`.
pub(crate) fn audit_log(server: &str) -> Result<PathBuf> {
    if server.is_empty() || server.contains(['/', '\\', '\0']) || server.starts_with('.') {
        bail!("server name {server:?} cannot be used as a file name; pass --server NAME");
    }
    Ok(state()?.join("audit").join(format!("{server}.jsonl")))
}

/// The audit log directory.
pub(crate) fn audit_dir() -> Result<PathBuf> {
    Ok(state()?.join("audit"))
}
