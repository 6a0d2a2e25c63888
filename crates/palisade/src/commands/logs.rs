//! `palisade logs [FILE] [--follow] [--verify]`.

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use crate::ExitStatus;
use crate::dirs;
use crate::settings::ConfigError;

/// The log to read: the one given, or the most recently modified log in the audit directory.
fn pick(file: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(f) = file {
        return Ok(f);
    }
    let dir = dirs::audit_dir()?;
    let newest = std::fs::read_dir(&dir)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max();
    newest.map(|(_, p)| p).ok_or_else(|| {
        ConfigError(format!(
            "no audit logs in {} yet; pass a FILE or run a server first",
            dir.display()
        ))
        .into()
    })
}

/// Opens the log; a file that cannot be opened is a usage error (exit 2), not a failed verification.
fn open(path: &std::path::Path) -> Result<std::fs::File> {
    std::fs::File::open(path)
        .map_err(|e| ConfigError(format!("cannot open {}: {e}", path.display())).into())
}

pub(crate) fn logs(file: Option<PathBuf>, follow: bool, verify: bool) -> Result<ExitStatus> {
    let path = pick(file)?;
    if verify {
        let f = open(&path)?;
        return Ok(match palisade_audit::verify(BufReader::new(f)) {
            Ok(sum) => {
                println!(
                    "{}: {} events, hash chain intact",
                    path.display(),
                    sum.lines
                );
                ExitStatus::Success
            }
            Err(broken) => {
                println!("{}: {broken}", path.display());
                ExitStatus::Failure
            }
        });
    }
    if follow {
        palisade_audit::follow(&path, std::io::stdout(), || false)
            .with_context(|| format!("following {}", path.display()))?;
        return Ok(ExitStatus::Success);
    }
    let f = open(&path)?;
    for line in BufReader::new(f).lines() {
        println!("{}", palisade_audit::format_human(&line?));
    }
    Ok(ExitStatus::Success)
}
