//! `palisade pin list` and `palisade pin accept`.

use anyhow::Result;
use std::path::PathBuf;

use crate::ExitStatus;
use crate::dirs;
use crate::pins::PinStore;
use crate::settings::{ConfigError, require_server};

fn store(pins: Option<PathBuf>) -> Result<PinStore> {
    Ok(PinStore::new(match pins {
        Some(p) => p,
        None => dirs::pins_file()?,
    }))
}

pub(crate) fn list(server: Option<String>, pins: Option<PathBuf>) -> Result<ExitStatus> {
    let store = store(pins)?;
    let all = store.load_all()?;
    if all.is_empty() {
        println!("no pins in {} yet", store.path().display());
        return Ok(ExitStatus::Success);
    }
    for (name, p) in all
        .iter()
        .filter(|(n, _)| server.as_ref().is_none_or(|s| s == *n))
    {
        println!("{name}");
        for (tool, hash) in &p.approved {
            let state = if p.observed.contains_key(tool) {
                "CHANGED, awaiting approval"
            } else {
                "approved"
            };
            println!("  {tool:<32} {state:<28} {}", short(hash));
        }
        for (tool, hash) in p
            .observed
            .iter()
            .filter(|(t, _)| !p.approved.contains_key(*t))
        {
            println!(
                "  {tool:<32} {:<28} {}",
                "NEW, awaiting approval",
                short(hash)
            );
        }
    }
    Ok(ExitStatus::Success)
}

pub(crate) fn accept(
    server: Option<String>,
    pins: Option<PathBuf>,
    all: bool,
    tools: Vec<String>,
) -> Result<ExitStatus> {
    let store = store(pins)?;
    let server = require_server(server, store.load_all()?.into_keys())?;
    if !all && tools.is_empty() {
        return Err(ConfigError("name the tools to approve, or pass --all".into()).into());
    }
    let accepted = store.update(&server, |p| {
        let names: Vec<String> = if all {
            p.observed.keys().cloned().collect()
        } else {
            tools.clone()
        };
        let mut done = Vec::new();
        let mut missing = Vec::new();
        for t in names {
            match p.observed.remove(&t) {
                Some(h) => {
                    p.approved.insert(t.clone(), h.clone());
                    done.push((t, h));
                }
                None => missing.push(t),
            }
        }
        (done, missing)
    })?;
    for (t, h) in &accepted.0 {
        println!("approved {server}/{t} at {}", short(h));
    }
    for t in &accepted.1 {
        eprintln!("palisade: `{t}` has no definition awaiting approval for server `{server}`");
        eprintln!(
            "hint: run the server (or `palisade inspect`) so palisade sees the tool, then accept it"
        );
    }
    Ok(if accepted.1.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

fn short(h: &str) -> &str {
    let x = h.strip_prefix("sha256:").unwrap_or(h);
    &x[..x.len().min(16)]
}
