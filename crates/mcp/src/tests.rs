use crate::reader::{LineReader, ReadEvent};
use crate::*;
use proptest::prelude::Just;

#[test]
fn accepts_request_notification_and_response() {
    let r = Message::parse(
        br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo"}}"#,
    )
    .unwrap();
    assert_eq!(
        r.kind(),
        &Kind::Request {
            id: Id::from_value(&serde_json::json!("a")).unwrap(),
            method: "tools/call".into()
        }
    );
    assert_eq!(r.tool_name(), Some("echo"));
    let n = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
    assert_eq!(
        n.kind(),
        &Kind::Notification {
            method: "notifications/initialized".into()
        }
    );
    let ok = Message::parse(br#"{"jsonrpc":"2.0","id":7,"result":{}}"#).unwrap();
    assert!(matches!(
        ok.kind(),
        Kind::Response {
            is_error: false,
            id: Some(_)
        }
    ));
    let err =
        Message::parse(br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#)
            .unwrap();
    assert_eq!(
        err.kind(),
        &Kind::Response {
            id: None,
            is_error: true
        }
    );
}

#[test]
fn keeps_original_bytes() {
    let line = br#"{ "jsonrpc" : "2.0", "id" : 1, "method" : "ping" }"#;
    assert_eq!(Message::parse(line).unwrap().raw(), line);
}

#[test]
fn rejects_duplicate_keys_at_any_depth() {
    let e = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"p":"/ok","p":"/etc"}}}"#)
        .unwrap_err();
    assert_eq!(e, FrameError::DuplicateKey("p".into()));
    assert_eq!(e.code(), error_codes::INVALID_REQUEST);
    let e = Message::parse(br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#).unwrap_err();
    assert_eq!(e, FrameError::DuplicateKey("id".into()));
}

#[test]
fn rejects_trailing_bytes_and_bad_json() {
    assert_eq!(
        Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"} x"#)
            .unwrap_err()
            .code(),
        error_codes::PARSE_ERROR
    );
    assert_eq!(
        Message::parse(b"{").unwrap_err().code(),
        error_codes::PARSE_ERROR
    );
}

#[test]
fn rejects_batches_and_non_jsonrpc() {
    assert_eq!(
        Message::parse(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).unwrap_err(),
        FrameError::Batch
    );
    assert!(matches!(
        Message::parse(br#"{"id":1,"method":"ping"}"#).unwrap_err(),
        FrameError::Invalid(_)
    ));
    assert!(matches!(
        Message::parse(br#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#).unwrap_err(),
        FrameError::Invalid(_)
    ));
    assert!(matches!(
        Message::parse(br#"{"jsonrpc":"2.0","id":1}"#).unwrap_err(),
        FrameError::Invalid(_)
    ));
    assert!(matches!(
        Message::parse(br#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#).unwrap_err(),
        FrameError::Invalid(_)
    ));
}

#[test]
fn ids_of_different_types_differ() {
    let a = Id::from_value(&serde_json::json!(1)).unwrap();
    let b = Id::from_value(&serde_json::json!("1")).unwrap();
    assert_ne!(a, b);
    assert_eq!(a.to_value(), serde_json::json!(1));
}

#[test]
fn error_response_is_valid_jsonrpc() {
    let id = Id::from_value(&serde_json::json!(3)).unwrap();
    let line = error_response(Some(&id), -32600, "nope");
    let m = Message::parse(&line).unwrap();
    assert_eq!(
        m.kind(),
        &Kind::Response {
            id: Some(id),
            is_error: true
        }
    );
}

fn events(input: &[u8], max: usize) -> Vec<String> {
    let mut r = LineReader::new(input, max);
    let mut out = Vec::new();
    loop {
        match r.next_line().unwrap() {
            ReadEvent::Line(l) => out.push(String::from_utf8_lossy(l).into_owned()),
            ReadEvent::TooLong { len, .. } => out.push(format!("<too long {len}>")),
            ReadEvent::Eof => return out,
        }
    }
}

#[test]
fn reader_splits_lines_and_strips_cr() {
    assert_eq!(events(b"a\r\n\nb\nc", 100), vec!["a", "b", "c"]);
}

#[test]
fn reader_skips_over_long_lines_and_continues() {
    let mut input = vec![b'x'; 50];
    input.extend_from_slice(b"\nok\n");
    input.extend(vec![b'y'; 30]);
    assert_eq!(
        events(&input, 10),
        vec!["<too long 50>", "ok", "<too long 30>"]
    );
}

#[test]
fn reader_recovers_the_id_of_an_over_long_line() {
    let mut line = br#"{"jsonrpc":"2.0","id":"big","result":{"text":""#.to_vec();
    line.extend(vec![b'x'; 5000]);
    line.extend_from_slice(b"\"}}\n{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n");
    let mut r = LineReader::new(&line[..], 1000);
    match r.next_line().unwrap() {
        ReadEvent::TooLong { id, .. } => assert_eq!(id.unwrap().as_json(), "\"big\""),
        other => panic!("expected TooLong, got {other:?}"),
    }
    assert!(matches!(r.next_line().unwrap(), ReadEvent::Line(_)));
}

#[test]
fn era_of_request() {
    use crate::era::Era;
    assert_eq!(Era::of_request("initialize", None), Some(Era::Session));
    assert_eq!(
        Era::of_request("server/discover", None),
        Some(Era::Stateless)
    );
    let p = serde_json::json!({"_meta": {"protocolVersion": "2026-07-28"}});
    assert_eq!(
        Era::of_request("tools/list", p.as_object()),
        Some(Era::Stateless)
    );
    assert_eq!(Era::of_request("tools/list", None), None);
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = Message::parse(&bytes);
    }

    #[test]
    fn reader_never_panics_and_respects_cap(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048), max in 1usize..64) {
        let mut r = LineReader::new(&bytes[..], max);
        loop {
            match r.next_line().unwrap() {
                ReadEvent::Line(l) => proptest::prop_assert!(l.len() <= max),
                ReadEvent::TooLong { .. } => {}
                ReadEvent::Eof => break,
            }
        }
    }
}

fn framer_events(chunks: &[&[u8]], max: usize) -> Vec<String> {
    let mut f = crate::Framer::new(max);
    let mut out = Vec::new();
    let drain = |f: &mut crate::Framer, out: &mut Vec<String>| {
        while let Some(ev) = f.next_event() {
            out.push(match ev {
                ReadEvent::Line(l) => String::from_utf8_lossy(l).into_owned(),
                ReadEvent::TooLong { len, id } => format!("<too long {len} {id:?}>"),
                ReadEvent::Eof => "<eof>".into(),
            });
        }
    };
    for c in chunks {
        f.push(c);
        drain(&mut f, &mut out);
    }
    f.finish();
    drain(&mut f, &mut out);
    out
}

proptest::proptest! {
    /// However the bytes are split into reads, the framer sees the same lines and the same over-long reports.
    #[test]
    fn framing_does_not_depend_on_how_reads_split_the_bytes(
        bytes in proptest::collection::vec(proptest::prop_oneof![
            Just(b'\n'), Just(b'\r'), Just(b'{'), Just(b'}'), Just(b'"'), Just(b':'), Just(b'x'), Just(b' ')
        ], 0..400),
        cuts in proptest::collection::vec(0usize..400, 0..12),
        max in 1usize..40,
    ) {
        let whole = framer_events(&[&bytes], max);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for c in cuts {
            chunks.push(&bytes[last..c]);
            last = c;
        }
        chunks.push(&bytes[last..]);
        proptest::prop_assert_eq!(framer_events(&chunks, max), whole);
    }
}
