//! The watchdog: kills a server's process group when palisade goes away.
//!
//! palisade starts `palisade __watchdog <pgid>` with a pipe as its stdin and keeps the write end. The
//! watchdog blocks reading; end-of-file (palisade exited or was killed) or any byte makes it send SIGKILL
//! to the process group and exit.

use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};

/// The hidden subcommand name.
pub const SUBCOMMAND: &str = "__watchdog";

/// Starts the watchdog for process group `pgid`; returns the pipe that keeps it waiting and its pid.
pub fn arm(self_exe: &Path, pgid: u32) -> io::Result<(ChildStdin, u32)> {
    let mut child = Command::new(self_exe)
        .arg(SUBCOMMAND)
        .arg(pgid.to_string())
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()?;
    let pipe = child
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("watchdog has no stdin"))?;
    Ok((pipe, child.id()))
}

/// The watchdog's main loop: wait for the pipe to close, then kill the group. Never returns.
pub fn run(pgid: &str) -> ! {
    let Ok(pgid) = pgid.parse::<i32>() else {
        eprintln!("palisade watchdog: bad process group {pgid:?}");
        std::process::exit(2);
    };
    let mut buf = [0u8; 1];
    let _ = io::stdin().read(&mut buf);
    // pgid > 1, so this never targets "all processes" or our own group.
    if let Some(pid) = rustix::process::Pid::from_raw(pgid).filter(|_| pgid > 1) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    std::process::exit(0);
}
