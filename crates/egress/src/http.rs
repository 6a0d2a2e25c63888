//! The little HTTP/1.x the proxy speaks: read one request head with a size and time bound, parse its
//! request line strictly, rewrite an absolute-form request for the origin, and write error responses.
//!
//! Strict on purpose: only `CONNECT host:port` and absolute-form `http://` targets are proxy requests;
//! anything ambiguous (bare LF line ends, folded headers, userinfo in the authority, a fragment) is refused
//! with 400 instead of being guessed at, so the proxy never checks one host while a server reads another.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Headers that belong to one hop and are never forwarded (RFC 9110 §7.6.1), plus the proxy's own.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

/// Why a request head could not be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// Longer than the limit without an end.
    TooLarge,
    /// Did not complete before the deadline.
    Timeout,
    /// The client closed before a complete head.
    Closed,
    /// Any other socket error.
    Io(io::Error),
}

/// Reads up to the end of the request head (`\r\n\r\n`). Returns the head (terminator included) and any
/// bytes the client already sent after it.
pub(crate) fn read_head(
    stream: &mut TcpStream,
    max: usize,
    timeout: Duration,
) -> Result<(Vec<u8>, Vec<u8>), HeadError> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::Timeout);
        }
        stream.set_read_timeout(Some(left)).map_err(HeadError::Io)?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HeadError::Timeout);
            }
            Err(e) => return Err(HeadError::Io(e)),
        };
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + i + 4;
            if end > max {
                return Err(HeadError::TooLarge);
            }
            let rest = buf.split_off(end);
            return Ok((buf, rest));
        }
        if buf.len() >= max {
            return Err(HeadError::TooLarge);
        }
    }
}

/// What the client asked for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `CONNECT host:port`: a tunnel.
    Connect { host: String, port: u16 },
    /// `METHOD http://host[:port]/path`: one forwarded request.
    Forward {
        host: String,
        port: u16,
        /// Origin-form target (`/path?query`).
        path: String,
    },
}

/// A parsed request head.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: Target,
    pub(crate) version: &'a str,
    /// Header lines as sent, without line ends.
    pub(crate) headers: Vec<&'a [u8]>,
}

/// Parses a head returned by [`read_head`]. The error is a one-line reason for a 400.
pub(crate) fn parse(head: &[u8]) -> Result<Request<'_>, String> {
    let body = head.strip_suffix(b"\r\n\r\n").unwrap_or(head);
    let lines = crlf_lines(body);
    if lines
        .iter()
        .any(|l| l.contains(&b'\n') || l.contains(&b'\r'))
    {
        return Err("a line ends in a bare LF or holds a bare CR; lines must end in CRLF".into());
    }
    let mut lines = lines.into_iter();
    let line = lines.next().unwrap_or_default();
    let line = std::str::from_utf8(line).map_err(|_| "the request line is not UTF-8")?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "`{}` is not `METHOD TARGET HTTP/1.1`",
            line.escape_debug()
        ));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err("the method is not a token".into());
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(format!(
            "`{}` is not HTTP/1.0 or HTTP/1.1",
            version.escape_debug()
        ));
    }
    let target = if method == "CONNECT" {
        let (host, port) = authority(target)?;
        let port = port.ok_or("CONNECT needs `host:port`")?;
        Target::Connect { host, port }
    } else {
        forward_target(target)?
    };
    let mut headers = Vec::new();
    for l in lines {
        if l.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err("folded header lines are not accepted".into());
        }
        let colon = l
            .iter()
            .position(|&b| b == b':')
            .ok_or("a header line has no `:`")?;
        if colon == 0 || !l[..colon].iter().copied().all(is_tchar) {
            return Err("a header name is not a token".into());
        }
        headers.push(l);
    }
    Ok(Request {
        method,
        target,
        version,
        headers,
    })
}

/// Splits on CRLF only.
fn crlf_lines(mut b: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        out.push(&b[..i]);
        b = &b[i + 2..];
    }
    out.push(b);
    out
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `host[:port]` with IPv6 in brackets; no userinfo, no empty host, port 1-65535.
fn authority(a: &str) -> Result<(String, Option<u16>), String> {
    if a.contains('@') {
        return Err("credentials in the authority are not accepted".into());
    }
    let (host, port) = if a.starts_with('[') {
        let end = a.find(']').ok_or("an IPv6 host has no closing `]`")?;
        let (h, rest) = a.split_at(end + 1);
        match rest {
            "" => (h, None),
            r => (h, Some(r.strip_prefix(':').ok_or("text after `]`")?)),
        }
    } else {
        match a.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (a, None),
        }
    };
    if host.is_empty() {
        return Err("the target has no host".into());
    }
    let port = match port {
        None => None,
        Some(p) => {
            let ok = !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
            match p.parse::<u16>() {
                Ok(n) if ok && n != 0 => Some(n),
                _ => return Err(format!("`{}` is not a port (1-65535)", p.escape_debug())),
            }
        }
    };
    Ok((host.to_owned(), port))
}

fn forward_target(t: &str) -> Result<Target, String> {
    if t.starts_with('/') || t == "*" {
        return Err(
            "this is an HTTP proxy: send absolute-form requests (`GET http://host/path`) or CONNECT"
                .into(),
        );
    }
    let rest = match t.get(..7) {
        Some(s) if s.eq_ignore_ascii_case("http://") => &t[7..],
        _ => {
            return Err(
                "only `http://` targets are forwarded; use CONNECT for https and other protocols"
                    .into(),
            );
        }
    };
    if t.contains('#') {
        return Err("a request target cannot carry a fragment".into());
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (auth, path) = rest.split_at(split);
    let (host, port) = authority(auth)?;
    let path = match path.as_bytes().first() {
        None => "/".to_owned(),
        Some(b'?') => format!("/{path}"),
        Some(_) => path.to_owned(),
    };
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the path contains spaces, control or non-ASCII characters".into());
    }
    Ok(Target::Forward {
        host,
        port: port.unwrap_or(80),
        path,
    })
}

fn header_name(line: &[u8]) -> String {
    let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
    String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase()
}

/// The request head sent to the origin: origin-form target, `Host` set from the target, hop-by-hop headers
/// (and any header the client's `Connection` names) removed, and `Connection: close` (one request per
/// connection).
pub(crate) fn origin_head(req: &Request<'_>, path: &str, host_header: &str) -> Vec<u8> {
    let mut named: Vec<String> = Vec::new();
    for line in &req.headers {
        if header_name(line) == "connection" {
            let value = String::from_utf8_lossy(&line["connection:".len()..]).to_ascii_lowercase();
            named.extend(value.split(',').map(|t| t.trim().to_owned()));
        }
    }
    let mut out = format!(
        "{} {path} {}\r\nHost: {host_header}\r\n",
        req.method, req.version
    )
    .into_bytes();
    for line in &req.headers {
        let name = header_name(line);
        if name == "host" || HOP_BY_HOP.contains(&name.as_str()) || named.contains(&name) {
            continue;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

/// Writes a short plain-text error response and asks the client to close.
pub(crate) fn write_error(stream: &mut TcpStream, status: u16, message: &str) -> io::Result<()> {
    let phrase = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let body = format!("palisade: {message}\n");
    let head = format!(
        "HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_needs_a_port() {
        assert!(parse(b"CONNECT example.com HTTP/1.1\r\n\r\n").is_err());
        let r = parse(b"CONNECT [::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(
            r.target,
            Target::Connect {
                host: "[::1]".into(),
                port: 443
            }
        );
    }

    #[test]
    fn absolute_form_becomes_origin_form() {
        let r = parse(b"GET http://Example.com:8080?q=1 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(
            r.target,
            Target::Forward {
                host: "Example.com".into(),
                port: 8080,
                path: "/?q=1".into()
            }
        );
    }

    #[test]
    fn rejects_ambiguous_requests() {
        for bad in [
            &b"GET /path HTTP/1.1\r\n\r\n"[..],
            b"GET https://example.com/ HTTP/1.1\r\n\r\n",
            b"GET http://user@example.com/ HTTP/1.1\r\n\r\n",
            b"GET http://example.com/#x HTTP/1.1\r\n\r\n",
            b"GET  http://example.com/ HTTP/1.1\r\n\r\n",
            b"GET http://example.com/ HTTP/2\r\n\r\n",
            b"GET http://example.com/ HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
            b"GET http://example.com/ HTTP/1.1\nA: b\r\n\r\n",
            b"CONNECT example.com:0 HTTP/1.1\r\n\r\n",
            b"CONNECT example.com:+443 HTTP/1.1\r\n\r\n",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn origin_head_drops_hop_by_hop_and_connection_named_headers() {
        let head = b"GET http://a.example/x HTTP/1.1\r\nHost: evil.example\r\nProxy-Authorization: s\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nTrailer: x\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n";
        let r = parse(head).unwrap();
        let out = String::from_utf8(origin_head(&r, "/x", "a.example")).unwrap();
        assert_eq!(
            out,
            "GET /x HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
    }
}
