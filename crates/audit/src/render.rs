//! Human-readable rendering and `palisade logs --follow`.
//!
//! [`format_human`] turns one JSONL line into one terminal line:
//!
//! ```text
//! 2026-01-02T03:04:05.678Z  fs  call    tools/call read_file  deny path-outside-roots  denied  3ms  path escapes /work
//! ts                        server kind method tool           decision reason          status  duration  detail
//! ```
//!
//! A missing group is shown as `-`. Everything a server controls (tool names, details) is printed with
//! control and bidi-override characters escaped, so a hostile tool name cannot rewrite the terminal.
//!
//! [`follow`] prints the lines already in a file and then new ones as they are appended, polling every
//! [`POLL`]. It waits for a file that does not exist yet, starts over when the file is truncated, and
//! reopens it when it is replaced (rotation).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

/// How often [`follow`] looks for new lines.
pub const POLL: Duration = Duration::from_millis(200);

/// One audit line as one human-readable line (no trailing newline). See the [module docs](self).
pub fn format_human(line: &str) -> String {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let map = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => map,
        _ => {
            let cut: String = line.chars().take(120).collect();
            return format!("?? unreadable line: {}", clean(&cut));
        }
    };
    let text = |k: &str| -> Option<String> {
        match map.get(k)? {
            Value::String(s) => Some(clean(s)),
            Value::Null => None,
            other => Some(clean(&other.to_string())),
        }
    };
    let group = |keys: &[&str]| -> String {
        let parts: Vec<String> = keys.iter().filter_map(|k| text(k)).collect();
        if parts.is_empty() {
            "-".to_owned()
        } else {
            parts.join(" ")
        }
    };
    let mut out = format!(
        "{}  {}  {:<6}  {}  {}  {}",
        group(&["ts"]),
        group(&["server"]),
        group(&["kind"]),
        group(&["method", "tool"]),
        group(&["decision", "reason"]),
        group(&["status"]),
    );
    match duration(&map) {
        Some(ms) => {
            let _ = write!(out, "  {ms}ms");
        }
        None => out.push_str("  -"),
    }
    if let Some(detail) = text("detail") {
        let _ = write!(out, "  {detail}");
    }
    out
}

fn duration(map: &Map<String, Value>) -> Option<u64> {
    map.get("duration_ms")?.as_u64()
}

/// Escapes characters that would let logged text drive the terminal: C0/C1 controls (ANSI escapes,
/// carriage returns) and invisible or bidi-override format characters.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let hostile = c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}');
        if hostile {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Prints `path`'s lines through [`format_human`] to `out`, then keeps printing new lines until `stop()`
/// returns true (checked after each poll, so `|| true` prints what is there and returns).
pub fn follow(path: &Path, mut out: impl Write, stop: impl Fn() -> bool) -> io::Result<()> {
    let mut open: Option<(File, u64)> = None;
    let mut pos = 0u64;
    let mut partial = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if open.is_none() {
            match File::open(path) {
                Ok(f) => {
                    let ino = f.metadata()?.ino();
                    open = Some((f, ino));
                    pos = 0;
                    partial.clear();
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if let Some((file, ino)) = &mut open {
            loop {
                let n = file.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                pos += n as u64;
                partial.extend_from_slice(&chunk[..n]);
                let mut start = 0;
                while let Some(nl) = partial[start..].iter().position(|b| *b == b'\n') {
                    let line = String::from_utf8_lossy(&partial[start..start + nl]);
                    writeln!(out, "{}", format_human(&line))?;
                    start += nl + 1;
                }
                partial.drain(..start);
            }
            out.flush()?;
            match std::fs::metadata(path) {
                Ok(m) if m.ino() != *ino => open = None,
                Ok(m) if m.len() < pos => {
                    file.seek(SeekFrom::Start(0))?;
                    pos = 0;
                    partial.clear();
                    writeln!(out, "-- log truncated; following from the start --")?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => open = None,
                Err(e) => return Err(e),
            }
        }
        if stop() {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditLog, Decision, Event, Kind, Status};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_completed_call_renders_on_one_line() {
        let line = r#"{"seq":3,"ts":"2026-01-02T03:04:05.678Z","server":"fs","kind":"call","method":"tools/call","tool":"read_file","decision":"deny","reason":"path-outside-roots","status":"denied","duration_ms":3,"detail":"path escapes /work","prev":"0","hash":"1"}"#;
        assert_eq!(
            format_human(line),
            "2026-01-02T03:04:05.678Z  fs  call    tools/call read_file  deny path-outside-roots  denied  3ms  path escapes /work"
        );
    }

    #[test]
    fn missing_groups_render_as_dashes() {
        let line = r#"{"seq":1,"ts":"T","server":"fs","kind":"spawn","prev":"0","hash":"1"}"#;
        assert_eq!(format_human(line), "T  fs  spawn   -  -  -  -");
    }

    #[test]
    fn terminal_escapes_from_servers_are_neutralized() {
        let line = r#"{"ts":"T","server":"fs","kind":"call","tool":"x\u001b[2Jy\u202e","prev":"0","hash":"1"}"#;
        let shown = format_human(line);
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{202e}'),
            "{shown}"
        );
        assert!(shown.contains(r"x\u{1b}[2Jy\u{202e}"), "{shown}");
    }

    #[test]
    fn unreadable_lines_are_shown_not_dropped() {
        assert_eq!(
            format_human("{\"seq\":1,\"ts"),
            "?? unreadable line: {\"seq\":1,\"ts"
        );
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn follow_waits_for_the_file_then_prints_old_and_new_lines() {
        let dir = crate::tests::TempDir::new();
        let path = dir.path().join("a.jsonl");
        let out = Shared::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (path, out, stop) = (path.clone(), out.clone(), stop.clone());
            std::thread::spawn(move || follow(&path, out, move || stop.load(Ordering::SeqCst)))
        };
        std::thread::sleep(POLL);
        let mut log = AuditLog::open(&path, false).unwrap();
        log.append(Event::new(Kind::Spawn, "fs")).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !out.text().contains("spawn") && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        log.append(
            Event::new(Kind::Call, "fs")
                .tool("read")
                .decision(Decision::Allow)
                .completed(Status::Ok, 12),
        )
        .unwrap();
        while !out.text().contains("12ms") && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::SeqCst);
        handle.join().unwrap().unwrap();
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("  fs  spawn"), "{text}");
        assert!(lines[1].ends_with("read  allow  ok  12ms"), "{text}");
    }

    #[test]
    fn follow_with_an_immediate_stop_prints_what_is_there() {
        let dir = crate::tests::TempDir::new();
        let path = dir.path().join("b.jsonl");
        let mut log = AuditLog::open(&path, false).unwrap();
        for _ in 0..3 {
            log.append(Event::new(Kind::List, "fs").method("tools/list"))
                .unwrap();
        }
        let mut out = Vec::new();
        follow(&path, &mut out, || true).unwrap();
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 3);
    }
}
