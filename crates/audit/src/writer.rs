//! The append-only writer.
//!
//! [`AuditLog::open`] creates the log (parent directories 0700, file 0600), finds where the chain left
//! off by reading backwards from the end of the file (a long log is never read whole), and appends.
//! [`AuditLog::append`] stamps `ts`, `seq`, `prev` and `hash` and writes the line with **one**
//! `write_all` of a prebuilt buffer: a crash or `kill -9` can tear only the line being written, never an
//! earlier one. With `durable`, each line is `fdatasync`ed before `append` returns, so the proxy can
//! release a response only once its audit event is on disk.
//!
//! # Resuming after a torn write
//! If the file does not end where a line ends, the previous process died mid-write. On open the writer
//! finds the last whole, valid line and continues the chain from it. The bytes after it (the fragment)
//! are kept, not truncated: the next append first ends the fragment with `\n` and writes a recovery event
//! (`kind` `error`, `reason` `torn-line`, its `detail` naming the fragment's length and SHA-256), all in
//! the same single write as the event itself. [`verify`](crate::verify) accepts the fragment because the
//! recovery event accounts for it byte for byte; [`AuditLog::torn_tail`] lets the caller warn about it.
//! If only the final `\n` was lost, the line is whole and is simply terminated.
//!
//! The writer refuses (with [`io::ErrorKind::InvalidData`]) to continue a file whose tail is not a torn
//! write: more than [`MAX_TORN_LINES`] unreadable lines after the last event, or no event in the last
//! [`MAX_TAIL_BYTES`]. That is someone else's file or a tampered log; a person should look at it.
//!
//! # Several writers
//! Two clients that wrap the same server run two palisade processes with the same default log
//! (`<server>.jsonl`). Each append takes an exclusive `flock` on the file; if the file has grown since
//! this writer's last line, the writer first re-reads the tail (as on open) and continues from there, so
//! the file stays one chain whoever writes. The lock is held for one write (and `fdatasync`), never
//! longer.
//!
//! After a failed write the next append re-reads the tail the same way, so a fragment left by a partial
//! write is accounted for. A sink that cannot be re-read (see [`Sink::acquire`]) refuses further appends
//! instead.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::chain::{self, GENESIS, TORN_REASON};
use crate::event::{Event, Kind, now_rfc3339};

/// Most unreadable lines after the last event that the writer treats as torn writes (each nested crash
/// during recovery adds one).
pub const MAX_TORN_LINES: usize = 8;
/// How far back from the end the writer looks for the last event (lines are at most a message, 8 MiB by
/// default, plus a little).
pub const MAX_TAIL_BYTES: u64 = 64 * 1024 * 1024;
const CHUNK: u64 = 64 * 1024;

/// Where audit lines go: a [`Write`] that can also be made durable, and (for files) shared.
pub trait Sink: Write {
    /// Makes everything written so far durable (`fdatasync` for files).
    fn sync(&mut self) -> io::Result<()>;

    /// Takes the lock that writers of the same log share and returns the log's current length, or `None`
    /// when nobody else can write to this sink (the default). While locked, [`Sink::read_at`] must work.
    fn acquire(&mut self) -> io::Result<Option<u64>> {
        Ok(None)
    }

    /// Releases [`Sink::acquire`].
    fn release(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Fills `buf` from `offset`; only called between [`Sink::acquire`] returning `Some` and [`Sink::release`].
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let _ = (offset, buf);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// A log file. Every palisade process writing the same file (two clients wrapping the same server share
/// `<server>.jsonl`) takes an exclusive `flock` around each append and first catches up with lines the
/// others wrote, so the file stays one chain.
impl Sink for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }

    fn acquire(&mut self) -> io::Result<Option<u64>> {
        rustix::fs::flock(&*self, rustix::fs::FlockOperation::LockExclusive)?;
        // The length comes from `lseek(SEEK_END)`, not `fstat`: on Linux ≥ 6.13 reading a file's
        // timestamps makes the next write store a fine-grained one, which dirties (journals) the inode on
        // every append. Measured: 2 inode dirtyings per proxied call with `fstat`, ~0 with `lseek`
        // (BENCHMARKS.md). The file is opened `O_APPEND`, so the offset never affects where lines go.
        match rustix::fs::seek(&*self, rustix::fs::SeekFrom::End(0)) {
            Ok(len) => Ok(Some(len)),
            Err(e) => {
                let _ = Sink::release(self);
                Err(e.into())
            }
        }
    }

    fn release(&mut self) -> io::Result<()> {
        Ok(rustix::fs::flock(
            &*self,
            rustix::fs::FlockOperation::Unlock,
        )?)
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
}

/// A log file this process owns for its whole life: an exclusive `flock` taken (without waiting) when it
/// is opened and held until it is dropped. Appends then need no lock and no length check, one `write` each,
/// which is what the proxy wants on every message's critical path. A second process that wants the same
/// file is refused with [`io::ErrorKind::WouldBlock`] and writes its own file instead (see
/// [`AuditLog::open_exclusive`]), so each file stays one chain with one writer.
#[derive(Debug)]
pub struct ExclusiveFile(File);

impl Write for ExclusiveFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Sink for ExclusiveFile {
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// In-memory sink, for tests and for rendering.
impl Sink for Vec<u8> {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A hash-chained audit log. Callers that share it between threads put it behind a `Mutex`.
#[derive(Debug)]
pub struct AuditLog<S: Sink = File> {
    sink: S,
    durable: bool,
    seq: u64,
    last_hash: String,
    /// Reused line buffer.
    buf: Vec<u8>,
    /// The file ends in a whole line without `\n`.
    newline_first: bool,
    /// `detail` of the recovery event still to be written.
    recovery: Option<String>,
    /// Kept for [`AuditLog::torn_tail`].
    torn_tail: Option<String>,
    /// For a lockable sink: the length the file had after our last write (`u64::MAX`: unknown).
    end: u64,
    /// A write failed on a sink that cannot be re-read: further appends are refused.
    poisoned: bool,
}

impl AuditLog<File> {
    /// Opens (or creates) the log at `path` and resumes its chain. See the [module docs](self).
    pub fn open(path: &Path, durable: bool) -> io::Result<AuditLog<File>> {
        let file = open_private(path)?;
        let meta = file.metadata()?;
        let mut log = AuditLog::new(file, durable);
        // Read the tail under the lock, so a line another process is writing is not mistaken for a torn one.
        let len = log.sink.acquire()?;
        let resumed = log.catch_up(len.unwrap_or(meta.len()));
        log.sink.release()?;
        resumed?;
        Ok(log)
    }
}

impl AuditLog<ExclusiveFile> {
    /// Opens (or creates) the log at `path` for this process alone and resumes its chain. Fails with
    /// [`io::ErrorKind::WouldBlock`] while another process holds it; the caller picks another file.
    pub fn open_exclusive(path: &Path, durable: bool) -> io::Result<AuditLog<ExclusiveFile>> {
        let file = open_private(path)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is in use by another palisade process", path.display()),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let len = rustix::fs::seek(&file, rustix::fs::SeekFrom::End(0))?;
        let mut log = AuditLog::new(ExclusiveFile(file), durable);
        let inner = &log.sink.0;
        let tail = read_tail(
            &mut |offset, buf| FileExt::read_exact_at(inner, buf, offset),
            len,
        )?;
        log.resume(tail, len);
        Ok(log)
    }
}

impl<S: Sink> AuditLog<S> {
    /// A new chain (starting at `seq` 1 from [`GENESIS`]) written to `sink`.
    pub fn new(sink: S, durable: bool) -> AuditLog<S> {
        AuditLog {
            sink,
            durable,
            seq: 0,
            last_hash: GENESIS.to_owned(),
            buf: Vec::with_capacity(1024),
            newline_first: false,
            recovery: None,
            torn_tail: None,
            end: 0,
            poisoned: false,
        }
    }

    /// Continues the chain from what the sink holds now (`len` bytes), as in [`AuditLog::open`].
    fn catch_up(&mut self, len: u64) -> io::Result<()> {
        let sink = &mut self.sink;
        let tail = read_tail(&mut |offset, buf| sink.read_at(offset, buf), len)?;
        self.resume(tail, len);
        Ok(())
    }

    fn resume(&mut self, tail: Tail, len: u64) {
        self.seq = tail.seq;
        self.last_hash = tail.hash;
        self.newline_first = tail.newline_first;
        if tail.recovery.is_some() {
            self.torn_tail.clone_from(&tail.recovery);
        }
        self.recovery = tail.recovery;
        self.end = len;
    }

    /// Appends `ev`, setting `seq`, `prev`, `hash`, and `ts` when it is empty. One write per call (plus
    /// `fdatasync` when durable).
    ///
    /// On `Err` the event may or may not be on disk (a failed `fdatasync` comes after the write); either
    /// way the chain stays verifiable, and a durable caller must treat the event as not recorded.
    pub fn append(&mut self, ev: Event) -> io::Result<()> {
        if self.poisoned {
            return Err(io::Error::other(
                "audit log refused: an earlier write failed; reopen the log to recover",
            ));
        }
        let len = self.sink.acquire()?;
        let appended = self.append_locked(ev, len);
        let unlocked = match len {
            Some(_) => self.sink.release(),
            None => Ok(()),
        };
        appended.and(unlocked)
    }

    fn append_locked(&mut self, mut ev: Event, len: Option<u64>) -> io::Result<()> {
        if let Some(len) = len
            && len != self.end
        {
            // Another writer appended (or a write of ours failed part-way): continue from the file.
            self.catch_up(len)?;
        }
        if ev.ts.is_empty() {
            ev.ts = now_rfc3339();
        }
        let mut out = std::mem::take(&mut self.buf);
        out.clear();
        if self.newline_first {
            out.push(b'\n');
        }
        let mut seq = self.seq;
        let mut prev = self.last_hash.clone();
        if let Some(detail) = &self.recovery {
            let mut rec = Event::new(Kind::Error, ev.server.clone())
                .reason(TORN_REASON)
                .detail(detail.clone());
            rec.ts.clone_from(&ev.ts);
            seq += 1;
            rec.seq = seq;
            rec.prev = prev;
            prev = chain::encode_line(&mut rec, &mut out)?;
        }
        seq += 1;
        ev.seq = seq;
        ev.prev = prev;
        let hash = chain::encode_line(&mut ev, &mut out)?;

        let written = self.sink.write_all(&out).and_then(|()| {
            if self.durable {
                self.sink.sync()
            } else {
                self.sink.flush()
            }
        });
        let n = out.len() as u64;
        // Keep the buffer for the next line, unless one huge event grew it.
        if out.capacity() <= 1 << 20 {
            self.buf = out;
        }
        if let Err(e) = written {
            match len {
                // The file may now end in a fragment; the next append re-reads it and recovers.
                Some(_) => self.end = u64::MAX,
                None => self.poisoned = true,
            }
            return Err(e);
        }
        self.seq = seq;
        self.last_hash = hash;
        self.newline_first = false;
        self.recovery = None;
        self.end = self.end.saturating_add(n);
        Ok(())
    }

    /// `seq` of the last line written (0 before the first).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// `hash` of the last line written ([`GENESIS`] before the first).
    pub fn last_hash(&self) -> &str {
        &self.last_hash
    }

    /// When [`open`](AuditLog::open) found a torn write at the end of the file: what was discarded (the
    /// same text as the recovery event's `detail`). Worth a warning on stderr.
    pub fn torn_tail(&self) -> Option<&str> {
        self.torn_tail.as_deref()
    }

    /// The sink (e.g. the bytes written so far, for an in-memory log).
    pub fn get_ref(&self) -> &S {
        &self.sink
    }

    /// Gives the sink back.
    pub fn into_inner(self) -> S {
        self.sink
    }
}

/// Creates parent directories (0700) and opens the log for appending (0600); a pre-existing log that others
/// can read is tightened, not trusted: it holds tool arguments.
fn open_private(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Where the chain continues, found from the end of the file.
#[derive(Debug, PartialEq, Eq)]
struct Tail {
    seq: u64,
    hash: String,
    newline_first: bool,
    recovery: Option<String>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads backwards from `len` in growing chunks until the last valid event line is found.
fn read_tail(
    read_at: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    len: u64,
) -> io::Result<Tail> {
    let mut start = len;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        if let Some(tail) = analyze(&buf, start == 0)? {
            return Ok(tail);
        }
        if len - start >= MAX_TAIL_BYTES {
            return Err(invalid(format!(
                "no audit event in the last {} MiB; not an audit log, or a damaged one \
                 (check it with `palisade logs --verify`)",
                MAX_TAIL_BYTES >> 20
            )));
        }
        // Doubling keeps the total copying linear in the bytes read.
        let want = CHUNK.max(buf.len() as u64).min(start);
        start -= want;
        let mut chunk = vec![0u8; want as usize];
        read_at(start, &mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
    }
}

/// Looks for the last valid line in `buf` (the last bytes of the file; `at_start` when it is all of it).
/// `None` means "read further back".
fn analyze(buf: &[u8], at_start: bool) -> io::Result<Option<Tail>> {
    // Segment i spans ends[i]..ends[i+1]; the last segment is what follows the final '\n'.
    let mut bounds = vec![0usize];
    bounds.extend(
        buf.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1),
    );
    let segments = bounds.len();
    // Without the start of the file, the first segment may be the end of a longer line.
    let first_whole = usize::from(!at_start);
    for i in (first_whole..segments).rev() {
        let begin = bounds[i];
        let end = bounds.get(i + 1).map_or(buf.len(), |next| next - 1);
        if let Ok(info) = chain::check_line(&buf[begin..end]) {
            if i + 1 == segments {
                // A whole line that only lost its '\n'.
                return Ok(Some(Tail {
                    seq: info.seq,
                    hash: info.hash,
                    newline_first: true,
                    recovery: None,
                }));
            }
            return discard(info.seq, info.hash, &buf[end + 1..]).map(Some);
        }
        if segments - i > MAX_TORN_LINES + 1 {
            return Err(too_many_torn());
        }
    }
    if at_start {
        return discard(0, GENESIS.to_owned(), buf).map(Some);
    }
    Ok(None)
}

fn too_many_torn() -> io::Error {
    invalid(format!(
        "more than {MAX_TORN_LINES} unreadable lines at the end of the audit log; not a torn write \
         (check it with `palisade logs --verify`)"
    ))
}

/// The chain resumes at `seq`/`hash`; `rest` (everything after that line) is a torn fragment.
fn discard(seq: u64, hash: String, rest: &[u8]) -> io::Result<Tail> {
    if rest.is_empty() {
        return Ok(Tail {
            seq,
            hash,
            newline_first: false,
            recovery: None,
        });
    }
    let terminated = rest.last() == Some(&b'\n');
    let fragment = if terminated {
        &rest[..rest.len() - 1]
    } else {
        rest
    };
    if fragment.iter().filter(|b| **b == b'\n').count() >= MAX_TORN_LINES {
        return Err(too_many_torn());
    }
    Ok(Tail {
        seq,
        recovery: Some(chain::recovery_detail(fragment, seq)),
        hash,
        newline_first: !terminated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize) -> Vec<u8> {
        let mut log = AuditLog::new(Vec::new(), false);
        for i in 0..n {
            log.append(Event::new(Kind::Call, "s").tool(format!("t{i}")))
                .unwrap();
        }
        log.into_inner()
    }

    fn tail_of(bytes: &[u8]) -> io::Result<Tail> {
        read_tail(
            &mut |offset, buf| {
                let start = offset as usize;
                buf.copy_from_slice(&bytes[start..start + buf.len()]);
                Ok(())
            },
            bytes.len() as u64,
        )
    }

    #[test]
    fn an_empty_file_starts_at_genesis() {
        let t = tail_of(b"").unwrap();
        assert_eq!((t.seq, t.hash.as_str(), t.recovery), (0, GENESIS, None));
    }

    #[test]
    fn tail_is_found_across_chunk_boundaries() {
        // Lines bigger than a chunk force several backwards reads.
        let mut log = AuditLog::new(Vec::new(), false);
        let big = "x".repeat(CHUNK as usize + 10);
        for _ in 0..3 {
            log.append(Event::new(Kind::Call, "s").detail(big.clone()))
                .unwrap();
        }
        let hash = log.last_hash().to_owned();
        let bytes = log.into_inner();
        let t = tail_of(&bytes).unwrap();
        assert_eq!((t.seq, t.hash), (3, hash));
        assert!(!t.newline_first && t.recovery.is_none());
    }

    #[test]
    fn a_whole_line_missing_its_newline_is_just_terminated() {
        let bytes = lines(2);
        let t = tail_of(&bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(t.seq, 2);
        assert!(t.newline_first && t.recovery.is_none());
    }

    #[test]
    fn a_torn_first_line_resumes_from_genesis() {
        let bytes = lines(1);
        let t = tail_of(&bytes[..20]).unwrap();
        assert_eq!((t.seq, t.hash.as_str()), (0, GENESIS));
        assert!(t.newline_first);
        assert!(t.recovery.unwrap().starts_with("discarded 20 bytes"));
    }

    #[test]
    fn a_file_of_many_unreadable_lines_is_refused() {
        let text = "not\nan\naudit\nlog\nat\nall\nbut\nsomeone\nelse's\nfile\n";
        let err = tail_of(text.as_bytes()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn appends_after_a_write_error_are_refused() {
        struct Failing;
        impl Write for Failing {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl Sink for Failing {
            fn sync(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut log = AuditLog::new(Failing, true);
        assert!(log.append(Event::new(Kind::Spawn, "s")).is_err());
        let err = log.append(Event::new(Kind::Spawn, "s")).unwrap_err();
        assert!(err.to_string().contains("reopen"), "{err}");
        assert_eq!(log.seq(), 0);
    }
}
