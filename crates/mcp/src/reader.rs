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

/// Splits bytes that arrive in arbitrary chunks into lines, with the size cap, without any I/O: push what
/// was read, then take the events. [`LineReader`] is this plus a blocking reader; palisade's proxy feeds it
/// from `poll`. Complete lines stay in one buffer until taken; a line over the cap is never stored (its
/// top-level id is read while it streams past).
#[derive(Debug)]
pub struct Framer {
    max: usize,
    buf: Vec<u8>,
    /// Where the line still being received begins in `buf`.
    partial_start: usize,
    events: std::collections::VecDeque<Pending>,
    skip: Option<Skip>,
}

#[derive(Debug)]
enum Pending {
    Line(usize, usize),
    TooLong(usize, Option<crate::Id>),
}

#[derive(Debug)]
struct Skip {
    len: usize,
    sniffer: crate::sniff::IdSniffer,
}

impl Framer {
    /// A framer for lines of at most `max` bytes.
    pub fn new(max: usize) -> Framer {
        Framer {
            max,
            buf: Vec::new(),
            partial_start: 0,
            events: std::collections::VecDeque::new(),
            skip: None,
        }
    }

    /// Adds bytes received from the peer.
    pub fn push(&mut self, mut data: &[u8]) {
        if self.events.is_empty() && self.partial_start > 0 {
            self.buf.drain(..self.partial_start);
            self.partial_start = 0;
        }
        while !data.is_empty() {
            let newline = memchr(data);
            if let Some(skip) = &mut self.skip {
                let end = newline.unwrap_or(data.len());
                skip.sniffer.feed(&data[..end]);
                skip.len += end;
                let Some(i) = newline else { return };
                if let Some(done) = self.skip.take() {
                    self.events
                        .push_back(Pending::TooLong(done.len, done.sniffer.finish()));
                }
                data = &data[i + 1..];
                continue;
            }
            let partial = self.buf.len() - self.partial_start;
            let end = newline.unwrap_or(data.len());
            if partial + end > self.max {
                let mut sniffer = crate::sniff::IdSniffer::default();
                sniffer.feed(&self.buf[self.partial_start..]);
                sniffer.feed(&data[..end]);
                self.buf.truncate(self.partial_start);
                let skip = Skip {
                    len: partial + end,
                    sniffer,
                };
                match newline {
                    Some(i) => {
                        self.events
                            .push_back(Pending::TooLong(skip.len, skip.sniffer.finish()));
                        data = &data[i + 1..];
                    }
                    None => {
                        self.skip = Some(skip);
                        return;
                    }
                }
                continue;
            }
            self.buf.extend_from_slice(&data[..end]);
            let Some(i) = newline else { return };
            self.end_line();
            data = &data[i + 1..];
        }
    }

    /// The peer closed its side: a final line without a newline becomes an event too.
    pub fn finish(&mut self) {
        if let Some(done) = self.skip.take() {
            self.events
                .push_back(Pending::TooLong(done.len, done.sniffer.finish()));
        } else if self.buf.len() > self.partial_start {
            self.end_line();
        }
    }

    /// Queues the line ending at the end of `buf` (without a trailing `\r`; blank lines are dropped).
    fn end_line(&mut self) {
        let start = self.partial_start;
        let mut end = self.buf.len();
        if end > start && self.buf[end - 1] == b'\r' {
            end -= 1;
        }
        if !self.buf[start..end].iter().all(u8::is_ascii_whitespace) {
            self.events.push_back(Pending::Line(start, end));
        }
        self.partial_start = self.buf.len();
    }

    /// Whether [`Framer::next_event`] has something.
    pub fn has_event(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next complete line or over-long report, in arrival order.
    pub fn next_event(&mut self) -> Option<ReadEvent<'_>> {
        Some(match self.events.pop_front()? {
            Pending::Line(a, b) => ReadEvent::Line(&self.buf[a..b]),
            Pending::TooLong(len, id) => ReadEvent::TooLong { len, id },
        })
    }
}

/// Reads newline-delimited messages from a buffered reader with a size cap (a [`Framer`] over a blocking
/// reader).
pub struct LineReader<R> {
    inner: R,
    framer: Framer,
    eof: bool,
}

impl<R: BufRead> LineReader<R> {
    /// Wraps `inner`; lines longer than `max` bytes are skipped and reported.
    pub fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            framer: Framer::new(max),
            eof: false,
        }
    }

    /// Reads the next event. Blank lines are skipped.
    pub fn next_line(&mut self) -> io::Result<ReadEvent<'_>> {
        loop {
            if self.framer.has_event() {
                return Ok(self.framer.next_event().unwrap_or(ReadEvent::Eof));
            }
            if self.eof {
                return Ok(ReadEvent::Eof);
            }
            let chunk = match self.inner.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                self.eof = true;
                self.framer.finish();
                continue;
            }
            let n = chunk.len();
            self.framer.push(chunk);
            self.inner.consume(n);
        }
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}
