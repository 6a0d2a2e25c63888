//! Chain, writer and verifier tests: what the log promises end to end.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    AuditLog, Broken, BrokenReason, Decision, Event, GENESIS, Kind, Status, TORN_REASON, verify,
};

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "palisade-audit-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn event(i: usize) -> Event {
    let mut ev = Event::new(Kind::Call, "fs")
        .method("tools/call")
        .tool(format!("tool{i}"))
        .args(json!({"path": format!("/tmp/{i}")}))
        .decision(Decision::Allow);
    ev.id = Some(i.to_string());
    ev
}

fn log_of(n: usize) -> Vec<u8> {
    let mut log = AuditLog::new(Vec::new(), false);
    for i in 1..=n {
        log.append(event(i)).unwrap();
    }
    log.into_inner()
}

fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn broken(bytes: &[u8]) -> Broken {
    verify(bytes).expect_err("log should not verify")
}

#[test]
fn chain_round_trips_and_each_hash_covers_the_line_bytes() {
    let bytes = log_of(5);
    let lines = split(&bytes);
    assert_eq!(lines.len(), 5);
    let mut prev = GENESIS.to_owned();
    for (i, line) in lines.iter().enumerate() {
        let line = std::str::from_utf8(line)
            .unwrap()
            .strip_suffix('\n')
            .unwrap();
        let ev: Event = serde_json::from_str(line).unwrap();
        assert_eq!(ev.seq, i as u64 + 1);
        assert_eq!(ev.prev, prev);
        assert_eq!(ev.tool.as_deref(), Some(format!("tool{}", i + 1).as_str()));
        assert!(line.starts_with(r#"{"seq":"#), "{line}");
        // The documented recipe: strip `,"hash":"<64 hex>"}`, put `}` back, SHA-256.
        let body = format!("{}}}", &line[..line.len() - 75]);
        assert!(line.ends_with(&format!(r#","hash":"{}"}}"#, ev.hash)));
        assert_eq!(hex::encode(Sha256::digest(body.as_bytes())), ev.hash);
        prev = ev.hash;
    }
    let summary = verify(&bytes[..]).unwrap();
    assert_eq!(summary.lines, 5);
    assert_eq!(summary.last_seq, 5);
    assert_eq!(summary.last_hash, prev);
    assert!(summary.recovered.is_empty());
}

#[test]
fn an_empty_log_verifies_to_genesis() {
    let s = verify(&b""[..]).unwrap();
    assert_eq!((s.lines, s.last_seq, s.last_hash.as_str()), (0, 0, GENESIS));
}

#[test]
fn the_writer_reports_its_position() {
    let mut log = AuditLog::new(Vec::new(), false);
    assert_eq!((log.seq(), log.last_hash()), (0, GENESIS));
    log.append(event(1)).unwrap();
    let s = verify(&log.get_ref()[..]).unwrap();
    assert_eq!((log.seq(), log.last_hash()), (1, s.last_hash.as_str()));
}

#[test]
fn verify_names_an_edited_line() {
    let mut lines = split(&log_of(5));
    let edited = String::from_utf8(lines[2].clone())
        .unwrap()
        .replace("tool3", "tool9");
    lines[2] = edited.into_bytes();
    let b = broken(&lines.concat());
    assert_eq!(b.line, 3);
    assert!(matches!(b.reason, BrokenReason::HashMismatch { .. }), "{b}");
}

#[test]
fn verify_names_the_line_after_a_deleted_one() {
    let mut lines = split(&log_of(5));
    lines.remove(2);
    let b = broken(&lines.concat());
    assert_eq!(b.line, 3);
    assert!(matches!(b.reason, BrokenReason::PrevMismatch { .. }), "{b}");
}

#[test]
fn verify_names_the_first_of_reordered_lines() {
    let mut lines = split(&log_of(5));
    lines.swap(1, 2);
    let b = broken(&lines.concat());
    assert_eq!(b.line, 2);
    assert!(matches!(b.reason, BrokenReason::PrevMismatch { .. }), "{b}");
}

#[test]
fn verify_names_an_inserted_copy() {
    let mut lines = split(&log_of(5));
    let first = lines[0].clone();
    lines.insert(2, first);
    let b = broken(&lines.concat());
    assert_eq!(b.line, 3);
    assert!(matches!(b.reason, BrokenReason::PrevMismatch { .. }), "{b}");
}

#[test]
fn a_forged_insert_with_a_valid_hash_breaks_at_the_next_line() {
    let mut lines = split(&log_of(5));
    let prev: Event = serde_json::from_slice(&lines[1]).unwrap();
    let mut forged = event(99);
    forged.seq = 3;
    forged.prev = prev.hash;
    forged.ts = "2026-01-01T00:00:00.000Z".into();
    let mut line = Vec::new();
    crate::chain::encode_line(&mut forged, &mut line).unwrap();
    lines.insert(2, line);
    let b = broken(&lines.concat());
    assert_eq!(b.line, 4);
    assert!(matches!(b.reason, BrokenReason::PrevMismatch { .. }), "{b}");
}

#[test]
fn verify_names_a_seq_gap() {
    let mut lines = split(&log_of(2));
    let prev: Event = serde_json::from_slice(&lines[1]).unwrap();
    let mut skipped = event(3);
    skipped.seq = 4;
    skipped.prev = prev.hash;
    skipped.ts = "2026-01-01T00:00:00.000Z".into();
    let mut line = Vec::new();
    crate::chain::encode_line(&mut skipped, &mut line).unwrap();
    lines.push(line);
    let b = broken(&lines.concat());
    assert_eq!(
        b,
        Broken {
            line: 3,
            reason: BrokenReason::SeqGap {
                expected: 3,
                found: 4
            }
        }
    );
}

#[test]
fn verify_names_a_torn_final_line() {
    let bytes = log_of(5);
    let b = broken(&bytes[..bytes.len() - 30]);
    assert_eq!(
        b,
        Broken {
            line: 5,
            reason: BrokenReason::Torn
        }
    );
    // Even a line that lost only its newline was cut short by a crash.
    assert_eq!(broken(&bytes[..bytes.len() - 1]).line, 5);
}

#[test]
fn verify_names_a_line_that_is_not_json() {
    let mut lines = split(&log_of(4));
    lines[1] = b"garbage\n".to_vec();
    let b = broken(&lines.concat());
    assert_eq!(b.line, 2);
    assert!(matches!(b.reason, BrokenReason::BadJson(_)), "{b}");
}

#[test]
fn verify_refuses_a_re_serialized_line() {
    let mut lines = split(&log_of(3));
    let v: serde_json::Value = serde_json::from_slice(&lines[1]).unwrap();
    lines[1] = format!("{v}\n").into_bytes();
    let b = broken(&lines.concat());
    assert_eq!(
        b,
        Broken {
            line: 2,
            reason: BrokenReason::HashNotLast
        }
    );
}

#[test]
fn verify_refuses_duplicate_chain_keys() {
    let mut lines = split(&log_of(2));
    let line = String::from_utf8(lines[1].clone()).unwrap();
    lines[1] = line
        .replacen(r#"{"seq":2,"#, r#"{"seq":2,"seq":2,"#, 1)
        .into_bytes();
    let b = broken(&lines.concat());
    assert_eq!(b.line, 2);
    assert!(matches!(b.reason, BrokenReason::BadJson(_)), "{b}");
}

#[test]
fn reopening_continues_the_chain() {
    let dir = TempDir::new();
    let path = dir.path().join("audit.jsonl");
    {
        let mut log = AuditLog::open(&path, false).unwrap();
        for i in 1..=3 {
            log.append(event(i)).unwrap();
        }
    }
    let mut log = AuditLog::open(&path, true).unwrap();
    assert_eq!(log.seq(), 3);
    assert_eq!(log.torn_tail(), None);
    log.append(event(4)).unwrap();
    log.append(event(5).completed(Status::Ok, 7)).unwrap();
    let s = verify(fs::read(&path).unwrap().as_slice()).unwrap();
    assert_eq!((s.lines, s.last_seq), (5, 5));
    assert_eq!(s.last_hash, log.last_hash());
}

#[test]
fn reopening_after_a_torn_line_records_the_recovery_and_verifies() {
    let dir = TempDir::new();
    let path = dir.path().join("audit.jsonl");
    {
        let mut log = AuditLog::open(&path, false).unwrap();
        for i in 1..=3 {
            log.append(event(i)).unwrap();
        }
    }
    // kill -9 in the middle of writing line 3.
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 40)
        .unwrap();
    assert_eq!(broken(&fs::read(&path).unwrap()).reason, BrokenReason::Torn);

    let mut log = AuditLog::open(&path, false).unwrap();
    assert_eq!(log.seq(), 2);
    let note = log.torn_tail().unwrap().to_owned();
    assert!(note.starts_with("discarded "), "{note}");
    log.append(event(4)).unwrap();

    let bytes = fs::read(&path).unwrap();
    let s = verify(&bytes[..]).unwrap();
    assert_eq!((s.lines, s.last_seq, s.recovered.clone()), (5, 4, vec![3]));
    let lines = split(&bytes);
    let rec: Event = serde_json::from_slice(&lines[3]).unwrap();
    assert_eq!((rec.kind, rec.seq), (Kind::Error, 3));
    assert_eq!(rec.reason.as_deref(), Some(TORN_REASON));
    assert_eq!(rec.detail.as_deref(), Some(note.as_str()));
    assert_eq!(rec.server, "fs");
    let last: Event = serde_json::from_slice(&lines[4]).unwrap();
    assert_eq!((last.seq, last.prev), (4, rec.hash));
}

#[test]
fn a_line_that_only_lost_its_newline_is_kept() {
    let dir = TempDir::new();
    let path = dir.path().join("audit.jsonl");
    fs::write(&path, &log_of(3)[..]).unwrap();
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let mut log = AuditLog::open(&path, false).unwrap();
    assert_eq!((log.seq(), log.torn_tail()), (3, None));
    log.append(event(4)).unwrap();
    let s = verify(fs::read(&path).unwrap().as_slice()).unwrap();
    assert_eq!((s.lines, s.last_seq), (4, 4));
    assert!(s.recovered.is_empty());
}

#[test]
fn a_crash_during_recovery_is_recovered_too() {
    let dir = TempDir::new();
    let path = dir.path().join("audit.jsonl");
    let mut bytes = log_of(2);
    bytes.extend_from_slice(b"{\"seq\":3,\"ts\":\"2026-01-01T00:00:00.");
    // The recovery write got as far as its first newline and part of the recovery event.
    bytes.extend_from_slice(
        b"\n{\"seq\":3,\"ts\":\"2026-01-01T00:00:01.000Z\",\"server\":\"fs\",\"kind\":\"err",
    );
    fs::write(&path, &bytes).unwrap();

    let mut log = AuditLog::open(&path, false).unwrap();
    assert_eq!(log.seq(), 2);
    log.append(event(3)).unwrap();
    let s = verify(fs::read(&path).unwrap().as_slice()).unwrap();
    assert_eq!((s.lines, s.last_seq, s.recovered), (6, 4, vec![3]));
}

#[test]
fn a_torn_region_edited_after_recovery_is_caught() {
    let dir = TempDir::new();
    let path = dir.path().join("audit.jsonl");
    let bytes = log_of(3);
    fs::write(&path, &bytes[..bytes.len() - 40]).unwrap();
    AuditLog::open(&path, false)
        .unwrap()
        .append(event(4))
        .unwrap();
    let mut lines = split(&fs::read(&path).unwrap());
    lines[2][5] ^= 0x01;
    let b = broken(&lines.concat());
    assert_eq!(b.line, 3);
    assert!(matches!(b.reason, BrokenReason::BadJson(_)), "{b}");
}

#[test]
fn the_file_is_0600_and_new_parents_0700() {
    let dir = TempDir::new();
    let path = dir.path().join("state/palisade/audit/fs.jsonl");
    AuditLog::open(&path, false)
        .unwrap()
        .append(event(1))
        .unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&dir.path().join("state")), 0o700);
}

#[test]
fn an_existing_world_readable_log_is_tightened() {
    let dir = TempDir::new();
    let path = dir.path().join("fs.jsonl");
    fs::write(&path, "").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    AuditLog::open(&path, false).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn someone_elses_file_is_not_continued() {
    let dir = TempDir::new();
    let path = dir.path().join("notes.txt");
    let mut f = fs::File::create(&path).unwrap();
    for i in 0..20 {
        writeln!(f, "line {i} of a text file").unwrap();
    }
    let err = AuditLog::open(&path, false).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn a_log_shared_behind_a_mutex_stays_one_chain() {
    use std::sync::{Arc, Mutex};
    let log = Arc::new(Mutex::new(AuditLog::new(Vec::new(), false)));
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    log.lock().unwrap().append(event(t * 100 + i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let bytes = Arc::try_unwrap(log)
        .unwrap()
        .into_inner()
        .unwrap()
        .into_inner();
    assert_eq!(verify(&bytes[..]).unwrap().lines, 100);
}

fn any_text() -> impl Strategy<Value = String> {
    // Any chars, including newlines, quotes and controls: JSON escaping must keep one event per line.
    proptest::collection::vec(any::<char>(), 0..16).prop_map(String::from_iter)
}

fn any_event() -> impl Strategy<Value = Event> {
    let kind = prop_oneof![
        Just(Kind::Call),
        Just(Kind::List),
        Just(Kind::Notify),
        Just(Kind::Spawn),
        Just(Kind::Egress),
        Just(Kind::Policy),
        Just(Kind::Pin),
        Just(Kind::Exit),
        Just(Kind::Error),
    ];
    let args = prop_oneof![
        Just(None),
        any_text().prop_map(|s| Some(json!({ "s": s }))),
        (any::<i64>(), -1e300f64..1e300).prop_map(|(i, f)| Some(json!([i, f, null, true]))),
    ];
    (
        kind,
        any_text(),
        proptest::option::of(any_text()),
        proptest::option::of(any_text()),
        proptest::option::of(any_text()),
        args,
        proptest::option::of(0u64..1_000_000),
    )
        .prop_map(|(kind, server, tool, id, detail, args, dur)| {
            let mut ev = Event::new(kind, server);
            ev.tool = tool;
            ev.id = id;
            ev.detail = detail;
            ev.args = args;
            if let Some(d) = dur {
                ev = ev.completed(Status::Ok, d);
            }
            ev
        })
}

proptest! {
    #[test]
    fn any_appended_sequence_verifies(events in proptest::collection::vec(any_event(), 0..12)) {
        let n = events.len();
        let mut log = AuditLog::new(Vec::new(), false);
        for ev in events {
            log.append(ev).unwrap();
        }
        let hash = log.last_hash().to_owned();
        let bytes = log.into_inner();
        let s = verify(&bytes[..]).unwrap();
        prop_assert_eq!(s.lines, n);
        prop_assert_eq!(s.last_seq, n as u64);
        prop_assert_eq!(s.last_hash, hash);
    }

    #[test]
    fn any_single_byte_change_is_detected(
        events in proptest::collection::vec(any_event(), 1..6),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut log = AuditLog::new(Vec::new(), false);
        for ev in events {
            log.append(ev).unwrap();
        }
        let mut bytes = log.into_inner();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(verify(&bytes[..]).is_err());
    }
}

#[test]
fn two_writers_of_one_file_keep_one_chain() {
    let dir = TempDir::new();
    let path = dir.path().join("shared.jsonl");
    let mut a = AuditLog::open(&path, false).unwrap();
    let mut b = AuditLog::open(&path, false).unwrap();
    a.append(event(1)).unwrap();
    b.append(event(2)).unwrap();
    b.append(event(3)).unwrap();
    a.append(event(4)).unwrap();
    assert_eq!((a.seq(), b.seq()), (4, 3));
    let s = verify(fs::read(&path).unwrap().as_slice()).unwrap();
    assert_eq!((s.lines, s.last_seq), (4, 4));
    assert_eq!(s.last_hash, a.last_hash());
}

#[test]
fn concurrent_writers_of_one_file_keep_one_chain() {
    let dir = TempDir::new();
    let path = dir.path().join("shared.jsonl");
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut log = AuditLog::open(&path, false).unwrap();
                for i in 0..500 {
                    log.append(event(t * 100 + i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = verify(fs::read(&path).unwrap().as_slice()).unwrap();
    assert_eq!((s.lines, s.last_seq), (1000, 1000));
}

#[test]
fn an_exclusive_log_refuses_a_second_writer_and_resumes_after_reopen() {
    let dir = TempDir::new();
    let path = dir.path().join("own.jsonl");
    let mut a = AuditLog::open_exclusive(&path, false).unwrap();
    a.append(event(1)).unwrap();
    let err = AuditLog::open_exclusive(&path, false).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    a.append(event(2)).unwrap();
    drop(a);
    let mut b = AuditLog::open_exclusive(&path, true).unwrap();
    assert_eq!(
        b.seq(),
        2,
        "the chain resumes where the last writer stopped"
    );
    b.append(event(3)).unwrap();
    let s = verify(fs::read(&path).unwrap().as_slice()).unwrap();
    assert_eq!((s.lines, s.last_seq), (3, 3));
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
