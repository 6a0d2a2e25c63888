//! `palisade policy check FILE` and `palisade policy default`.

use anyhow::Result;
use std::path::Path;

use crate::ExitStatus;
use crate::settings::{ConfigError, render_diagnostics};

pub(crate) fn check(file: &Path) -> Result<ExitStatus> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError(format!("cannot read policy {}: {e}", file.display())))?;
    let diags = palisade_policy::check(&text, &file.display().to_string());
    if diags.is_empty() {
        println!("{}: ok", file.display());
        return Ok(ExitStatus::Success);
    }
    println!("{}", render_diagnostics(&diags));
    Ok(if diags.has_errors() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

pub(crate) fn print_default() -> Result<ExitStatus> {
    print!("{}", palisade_policy::EMBEDDED_DEFAULT);
    Ok(ExitStatus::Success)
}
