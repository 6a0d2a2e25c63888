//! Pure parsers for the scalar value syntaxes a policy uses (globs, durations, sizes, rates, hosts, paths).
//!
//! They are shared by the file parser and the CLI overrides so a value means the same thing wherever it is
//! written. Each returns a [`Bad`] (what is wrong + the fix) that the caller turns into a diagnostic with a
//! position.

use std::time::Duration;

use crate::diag::Code;
use crate::model::{Glob, HostRule, Rate};

/// Why a value was refused: a code, the end of a sentence that starts with `key = value` ("is not a
/// duration"), and a fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bad {
    pub(crate) code: Code,
    pub(crate) what: String,
    pub(crate) help: String,
}

impl Bad {
    pub(crate) fn new(code: Code, what: impl Into<String>, help: impl Into<String>) -> Bad {
        Bad {
            code,
            what: what.into(),
            help: help.into(),
        }
    }
}

/// A tool-name glob. Whitespace and control characters are refused: MCP tool names never contain them,
/// so a glob that does is a typo that would otherwise match nothing.
pub(crate) fn tool_glob(s: &str) -> Result<Glob, Bad> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Bad::new(
            Code::InvalidGlob,
            "contains whitespace or a control character",
            "tool names never contain spaces; remove them (use \"*\" or \"?\" as wildcards)",
        ));
    }
    Glob::new(s).map_err(|e| Bad::new(Code::InvalidGlob, "is an empty glob", e))
}

const DURATION_HELP: &str = "write a duration such as \"30s\", \"2m\" or \"1h\"";

/// A positive duration in humantime syntax (`30s`, `2m`, `1h 30m`, `500ms`).
pub(crate) fn duration(s: &str) -> Result<Duration, Bad> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err(Bad::new(
            Code::InvalidDuration,
            "is zero, which would cancel every call at once",
            DURATION_HELP,
        )),
        Ok(d) => Ok(d),
        Err(_) => Err(Bad::new(
            Code::InvalidDuration,
            "is not a duration",
            DURATION_HELP,
        )),
    }
}

const SIZE_HELP: &str = "write a byte count such as 8388608, \"8MiB\", \"512KiB\" or \"1GB\"";

/// A positive byte size: a plain number or a number with a unit. `KB`/`MB`/`GB` are powers of 1000 and
/// `KiB`/`MiB`/`GiB` powers of 1024 (case-insensitive), so `8MiB` is exactly 8388608.
pub(crate) fn size(s: &str) -> Result<usize, Bad> {
    let bad = || Bad::new(Code::InvalidSize, "is not a byte size", SIZE_HELP);
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    positive_size(n.checked_mul(mult))
}

/// An integer byte count from TOML.
pub(crate) fn size_int(n: i64) -> Result<usize, Bad> {
    positive_size(u64::try_from(n).ok())
}

fn positive_size(n: Option<u64>) -> Result<usize, Bad> {
    match n.and_then(|n| usize::try_from(n).ok()) {
        Some(0) => Err(Bad::new(
            Code::InvalidSize,
            "is zero, which would refuse every message",
            SIZE_HELP,
        )),
        Some(n) => Ok(n),
        None => Err(Bad::new(Code::InvalidSize, "is out of range", SIZE_HELP)),
    }
}

const RATE_HELP: &str = "write a rate such as \"60/min\", \"5/sec\" or \"1000/hour\", or \"off\"";

/// `N/sec`, `N/min` or `N/hour` (also `s`/`second`, `m`/`minute`, `h`); `off` means no limit (`None`), so a
/// server override can lift a global rate.
pub(crate) fn rate(s: &str) -> Result<Option<Rate>, Bad> {
    if s == "off" {
        return Ok(None);
    }
    let bad = || Bad::new(Code::InvalidRate, "is not a rate", RATE_HELP);
    let (count, unit) = s.split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return Err(bad()),
    };
    if count == 0 {
        return Err(Bad::new(
            Code::InvalidRate,
            "allows no calls at all",
            "deny the tools instead (tools.deny), or write a positive rate such as \"60/min\"",
        ));
    }
    Ok(Some(Rate { count, per }))
}

const HOST_HELP: &str = "write a host name, glob or IP, optionally with a port: \"api.github.com\", \"*.example.com:443\", \"[::1]:8080\"";

/// `HOST[:PORT]`: a host name or glob (lower-cased), an IPv4 literal or a bracketed IPv6 literal.
pub(crate) fn host_rule(s: &str) -> Result<HostRule, Bad> {
    let bad = |what: &str| Bad::new(Code::InvalidHost, what.to_owned(), HOST_HELP);
    if s.contains("://") {
        return Err(Bad::new(
            Code::InvalidHost,
            "is a URL, not a destination",
            "write only the host and port, e.g. \"api.github.com:443\" (schemes go in arguments.url_schemes)",
        ));
    }
    if s.contains('/') || s.contains('@') {
        return Err(bad("is not HOST or HOST:PORT"));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("has an unclosed '['"))?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("has an invalid IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("has text after ']'"))?,
            ),
        };
        (ip.to_owned(), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (s.to_owned(), None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(bad("has a port that is not 1-65535")),
            Ok(p) => Some(p),
        },
    };
    let host = host.to_ascii_lowercase();
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    if !host.contains(':')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '*' | '?'))
    {
        return Err(bad("contains characters a host name cannot have"));
    }
    let host = Glob::new(&host).map_err(|e| Bad::new(Code::InvalidHost, "has no host", e))?;
    Ok(HostRule { host, port })
}

/// A URL scheme (`https`), lower-cased. RFC 3986: a letter, then letters, digits, `+`, `-`, `.`.
pub(crate) fn scheme(s: &str) -> Result<String, Bad> {
    let mut chars = s.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(Bad::new(
            Code::InvalidValue,
            "is not a URL scheme",
            "write a bare scheme without \"://\", such as \"https\"",
        ))
    }
}

/// A path as written, before `~` is expanded (that needs HOME, known only when resolving).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathSpec {
    /// `/abs/path`.
    Absolute(String),
    /// `~` or `~/rest` (rest without the leading slash; may be empty).
    Home(String),
    /// Anything else: relative to the current directory (allowed on the command line only).
    Relative(String),
}

/// Classifies a path. Empty, NUL-containing and `~user` paths are refused.
pub(crate) fn path_spec(s: &str) -> Result<PathSpec, Bad> {
    if s.is_empty() {
        return Err(Bad::new(
            Code::InvalidPath,
            "is an empty path",
            "write an absolute path such as \"/srv/data\" or \"~/project\"",
        ));
    }
    if s.contains('\0') {
        return Err(Bad::new(
            Code::InvalidPath,
            "contains a NUL byte",
            "remove the NUL byte",
        ));
    }
    if s == "~" {
        return Ok(PathSpec::Home(String::new()));
    }
    if let Some(rest) = s.strip_prefix("~/") {
        return Ok(PathSpec::Home(rest.trim_start_matches('/').to_owned()));
    }
    if s.starts_with('~') {
        return Err(Bad::new(
            Code::InvalidPath,
            "uses ~user, which palisade does not expand",
            "write the absolute path of that user's home instead",
        ));
    }
    if s.starts_with('/') {
        return Ok(PathSpec::Absolute(s.to_owned()));
    }
    Ok(PathSpec::Relative(s.to_owned()))
}

/// The closest candidate to `got` if it is a plausible typo (edit distance ≤ 2, or ≤ a third of the length).
pub(crate) fn suggest<'a>(got: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(got, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Headers palisade sets itself on upstream requests (framing, protocol and session state), or that only
/// mean something to one hop: a policy may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "proxy-authorization",
    "proxy-connection",
    "accept",
    "accept-encoding",
    "last-event-id",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
];

/// A remote server's URL: `https://`, or `http://` to a loopback address (`127.0.0.1`, `[::1]`,
/// `localhost`); no user or password (they would be printed and logged with the URL) and no fragment.
/// Whether the host is a private address is decided with the resolved address, when palisade starts.
pub(crate) fn remote_url(s: &str) -> Result<(), Bad> {
    const HELP: &str = "write url = \"https://host/mcp\"";
    let u = url::Url::parse(s)
        .map_err(|e| Bad::new(Code::InvalidUrl, format!("is not a URL ({e})"), HELP))?;
    let host = u
        .host()
        .ok_or_else(|| Bad::new(Code::InvalidUrl, "has no host", HELP))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err(Bad::new(
            Code::InvalidUrl,
            "carries credentials in the URL, where they would be printed and logged",
            "move them to bearer = \"keychain:NAME\" or headers = { NAME = \"keychain:NAME\" }",
        ));
    }
    if u.fragment().is_some() {
        return Err(Bad::new(
            Code::InvalidUrl,
            "has a #fragment",
            "remove the #fragment",
        ));
    }
    let loopback = match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.to_canonical().is_loopback(),
    };
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(Bad::new(
            Code::InvalidUrl,
            "uses plain http:// to a host that is not this machine: the upstream credentials and every message would cross the network in clear text",
            "use https://; plain http:// is allowed only for 127.0.0.1, [::1] and localhost",
        )),
        other => Err(Bad::new(
            Code::InvalidUrl,
            format!("uses the scheme {other}:, not https:"),
            HELP,
        )),
    }
}

/// An upstream header name: an HTTP token that palisade does not set itself.
pub(crate) fn header_name(s: &str) -> Result<(), Bad> {
    let token = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(Bad::new(
            Code::InvalidValue,
            "is not an HTTP header name",
            "a header name is letters, digits and - (e.g. X-Api-Key)",
        ));
    }
    let lower = s.to_ascii_lowercase();
    if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("mcp-param-") {
        return Err(Bad::new(
            Code::InvalidValue,
            "is a header palisade sets itself (framing, protocol version, session) or one that never crosses a proxy",
            "remove it; only credentials and other headers of your own belong here",
        ));
    }
    Ok(())
}

/// An upstream header value as written: a secret reference or a literal, non-empty, on one line.
pub(crate) fn header_value(s: &str) -> Result<(), Bad> {
    if s.is_empty() {
        return Err(Bad::new(
            Code::InvalidValue,
            "is empty",
            "write a secret reference such as \"keychain:NAME\" (`palisade secret set NAME`)",
        ));
    }
    if s.contains(['\r', '\n', '\0']) {
        return Err(Bad::new(
            Code::InvalidValue,
            "contains a line break or NUL, which would split the HTTP header",
            "write the value on one line",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_accept_binary_and_decimal_units() {
        assert_eq!(size("8MiB"), Ok(8 * 1024 * 1024));
        assert_eq!(size("8 mib"), Ok(8 * 1024 * 1024));
        assert_eq!(size("1GB"), Ok(1_000_000_000));
        assert_eq!(size("512KiB"), Ok(512 * 1024));
        assert_eq!(size("100"), Ok(100));
        assert_eq!(size("100B"), Ok(100));
        assert!(size("8 parsecs").is_err());
        assert!(size("MiB").is_err());
        assert!(size("0MiB").is_err());
        assert!(size("-1").is_err());
        assert!(size("99999999999999GiB").is_err());
        assert!(size_int(0).is_err());
        assert!(size_int(-5).is_err());
    }

    #[test]
    fn durations_must_be_positive() {
        assert_eq!(duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(duration("0s").is_err());
        assert!(duration("60 parsecs").is_err());
        assert!(duration("60").is_err());
    }

    #[test]
    fn rates_take_count_per_window() {
        let r = rate("60/min").unwrap().unwrap();
        assert_eq!((r.count, r.per), (60, Duration::from_secs(60)));
        assert_eq!(rate("5/sec").unwrap().unwrap().per, Duration::from_secs(1));
        assert_eq!(
            rate("1000/hour").unwrap().unwrap().per,
            Duration::from_secs(3600)
        );
        assert_eq!(rate("off"), Ok(None));
        assert!(rate("0/min").is_err());
        assert!(rate("60").is_err());
        assert!(rate("60/fortnight").is_err());
        assert!(rate("-1/min").is_err());
    }

    #[test]
    fn hosts_take_optional_ports_and_lower_case() {
        let h = host_rule("API.GitHub.com").unwrap();
        assert_eq!((h.host.as_str(), h.port), ("api.github.com", None));
        let h = host_rule("*.example.com:443").unwrap();
        assert_eq!((h.host.as_str(), h.port), ("*.example.com", Some(443)));
        let h = host_rule("[::1]:8080").unwrap();
        assert_eq!((h.host.as_str(), h.port), ("::1", Some(8080)));
        assert_eq!(host_rule("10.0.0.1").unwrap().host.as_str(), "10.0.0.1");
        for bad in [
            "https://x.com",
            "x.com/path",
            "x.com:0",
            "x.com:99999",
            ":443",
            "",
            "[::1",
            "a b",
            "u@x",
        ] {
            assert!(host_rule(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_are_classified() {
        assert_eq!(path_spec("/a"), Ok(PathSpec::Absolute("/a".into())));
        assert_eq!(path_spec("~"), Ok(PathSpec::Home(String::new())));
        assert_eq!(path_spec("~/p"), Ok(PathSpec::Home("p".into())));
        assert_eq!(path_spec("p"), Ok(PathSpec::Relative("p".into())));
        assert_eq!(path_spec("~bob/p").unwrap_err().code, Code::InvalidPath);
        assert_eq!(path_spec("").unwrap_err().code, Code::InvalidPath);
    }

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(suggest("tols", &["tools", "network"]), Some("tools"));
        assert_eq!(suggest("zzzzzz", &["tools", "network"]), None);
    }

    #[test]
    fn globs_refuse_empty_and_spaces() {
        assert!(tool_glob("read_*").is_ok());
        assert_eq!(tool_glob("").unwrap_err().code, Code::InvalidGlob);
        assert_eq!(tool_glob("read file").unwrap_err().code, Code::InvalidGlob);
    }
}
