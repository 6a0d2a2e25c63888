//! The one place commands start a server: the launcher the settings ask for (sandboxed or plain) and the
//! launch spec built from the resolved policy. `run` and `inspect` both come through here, so they always
//! start a server the same way.

use anyhow::{Result, bail};
use palisade_sandbox::{LaunchSpec, Launched, Launcher, Plain, Sandboxed, scrubbed_env};
use std::path::PathBuf;

use crate::settings::ServerSettings;

/// Starts the server of `s`. Returns it and a one-line description of its isolation for the banner.
/// Call before any thread of palisade's own exists: a launcher may fork.
pub(crate) fn start(s: &ServerSettings) -> Result<(Launched, String)> {
    let self_exe = std::env::current_exe().ok();
    let launcher: Box<dyn Launcher> = match (&self_exe, s.sandbox) {
        (Some(exe), true) => Box::new(Sandboxed::new(exe.clone())),
        (None, true) => bail!("cannot find palisade's own executable to start the sandbox"),
        (_, false) => Box::new(Plain { self_exe }),
    };
    let spec = LaunchSpec {
        argv: s.argv.clone(),
        cwd: s.cwd.clone(),
        env: scrubbed_env(std::env::vars_os(), &s.env),
        read_roots: s.policy.fs.read.clone(),
        write_roots: s.policy.fs.write.clone(),
        home: std::env::var_os("HOME").map(PathBuf::from),
        extra_exec: s.allow_exec.clone(),
    };
    let launched = launcher.launch(&spec)?;
    let notes: String = launched.notes.iter().map(|n| format!("; {n}")).collect();
    let description = format!("{}{notes}", launcher.describe());
    Ok((launched, description))
}
