//! Reading a secret value from the user: never from the command line (where `ps` and shell history show
//! it), always from standard input. At a terminal, a prompt with echo turned off; otherwise all of stdin
//! (`printf %s "$TOKEN" | palisade secret set NAME`), with one trailing newline dropped.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::os::fd::AsFd;

use zeroize::Zeroizing;

use crate::secret::{MAX_SECRET_BYTES, trim_one_newline};
use crate::{Error, Result, Secret};

/// Reads the value for secret `name` from stdin: a no-echo prompt on stderr when stdin is a terminal,
/// otherwise everything on stdin. Empty values are refused.
pub fn read_value(name: &str) -> Result<Secret> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        read_hidden(&format!("value for `{name}` (input is hidden): "))
    } else {
        read_all(stdin.lock(), "the value read from stdin")
    }
}

/// Reads all of `r` (at most [`MAX_SECRET_BYTES`]), drops one trailing newline.
pub fn read_all(r: impl Read, what: &str) -> Result<Secret> {
    let mut buf = Zeroizing::new(Vec::with_capacity(4096));
    r.take(MAX_SECRET_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", "stdin", e))?;
    trim_one_newline(&mut buf);
    Secret::new(std::mem::take(&mut *buf), what)
}

/// Turns echo off on stdin (a terminal), prompts on stderr, reads one line, restores the terminal.
fn read_hidden(prompt: &str) -> Result<Secret> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let tty_err = |e: rustix::io::Errno| Error::io("configure", "the terminal", e.into());
    let original = tcgetattr(fd).map_err(tty_err)?;
    let mut quiet = original.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(fd, OptionalActions::Flush, &quiet).map_err(tty_err)?;
    struct Restore<'a>(std::os::fd::BorrowedFd<'a>, rustix::termios::Termios);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = tcsetattr(self.0, OptionalActions::Flush, &self.1);
        }
    }
    let restore = Restore(fd, original);
    let mut err = std::io::stderr();
    let _ = err.write_all(prompt.as_bytes());
    let _ = err.flush();
    let mut line = Zeroizing::new(Vec::with_capacity(256));
    stdin
        .lock()
        .take(MAX_SECRET_BYTES as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(|e| Error::io("read", "the terminal", e))?;
    drop(restore);
    trim_one_newline(&mut line);
    Secret::new(std::mem::take(&mut *line), "the value typed")
}
