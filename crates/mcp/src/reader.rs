//! Newline framing with a hard cap on message size.
//!
//! MCP's stdio transport delimits messages by `\n`; messages must not contain embedded newlines. A hostile
//! peer can send an endless line, so the reader never buffers more than `max` bytes of one line: past the cap
//! it reports [`ReadEvent::TooLong`] and discards input up to the next newline.

use std::io::{self, BufRead};

/// Default cap on one message: 8 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// What one call to [`LineReader::next_line`] produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadEvent<'a> {
    /// A complete line, without its `\n` (and without a `\r` before it).
    Line(&'a [u8]),
    /// A line longer than the cap was skipped; `len` bytes were discarded.
    TooLong {
        /// How many bytes the skipped line had (it may have been cut off by end of input).
        len: usize,
        /// The line's top-level JSON-RPC id, when it could be read while skipping (so the sender can be
        /// answered).
        id: Option<crate::Id>,
    },
    /// End of input. A final line without a newline is returned as a `Line` first.
    Eof,
}

/// Reads newline-delimited messages from a buffered reader with a size cap.
pub struct LineReader<R> {
    inner: R,
    max: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> LineReader<R> {
    /// Wraps `inner`; lines longer than `max` bytes are skipped and reported.
    pub fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            max,
            buf: Vec::new(),
        }
    }

    /// Reads the next event. Blank lines are skipped.
    pub fn next_line(&mut self) -> io::Result<ReadEvent<'_>> {
        loop {
            self.buf.clear();
            let mut too_long = false;
            let mut discarded = 0usize;
            let mut sniffer = crate::sniff::IdSniffer::default();
            let mut saw_newline = false;
            loop {
                let avail = match self.inner.fill_buf() {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if avail.is_empty() {
                    break;
                }
                let (chunk, consumed, newline) = match memchr(avail) {
                    Some(i) => (&avail[..i], i + 1, true),
                    None => (avail, avail.len(), false),
                };
                if !too_long && self.buf.len() + chunk.len() > self.max {
                    too_long = true;
                    discarded = self.buf.len();
                    sniffer.feed(&self.buf);
                    self.buf.clear();
                    self.buf.shrink_to(64 * 1024);
                }
                if too_long {
                    discarded += chunk.len();
                    sniffer.feed(chunk);
                } else {
                    self.buf.extend_from_slice(chunk);
                }
                self.inner.consume(consumed);
                if newline {
                    saw_newline = true;
                    break;
                }
            }
            if too_long {
                return Ok(ReadEvent::TooLong {
                    len: discarded,
                    id: sniffer.finish(),
                });
            }
            if !saw_newline && self.buf.is_empty() {
                return Ok(ReadEvent::Eof);
            }
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                if saw_newline {
                    continue;
                }
                return Ok(ReadEvent::Eof);
            }
            return Ok(ReadEvent::Line(&self.buf));
        }
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}
