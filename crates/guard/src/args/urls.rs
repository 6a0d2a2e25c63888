//! URL arguments and command-line positionals.
//!
//! Why: a tool that fetches a URL is a way into the user's network from the outside. Prompt-injected content
//! can ask for `http://169.254.169.254/latest/meta-data/` (cloud credentials), `http://localhost:6379/` or
//! an admin page on the LAN. [`check_url`] refuses those and anything the policy's network allowlist does not
//! name.
//!
//! # What is checked, in order
//! 1. **One reading only.** Whitespace, control characters and backslashes are refused (WHATWG parsers drop
//!    tabs and newlines and read `\` as `/`; other parsers do not), as are credentials and percent-escapes
//!    in the authority, and special-scheme URLs not written `scheme://host`. Whatever remains is parsed by the
//!    `url` crate (WHATWG), which turns `http://2130706433/`, `http://0x7f.1/` and `http://127.1/` into
//!    `127.0.0.1` and applies IDNA, so the checks see the address a browser-grade client connects to.
//! 2. **Scheme** must be in the policy's `url_schemes`; a **host** is required.
//! 3. **Special addresses** — loopback, private, link-local, CGNAT, unspecified, broadcast, multicast,
//!    reserved, documentation and benchmarking ranges, cloud metadata endpoints, and IPv6 forms that embed
//!    such an IPv4 address (mapped, compatible, NAT64, 6to4) — are refused unless a rule names that exact
//!    address. **Local names** (`localhost`, `*.localhost`, `metadata`, `*.internal`, `*.local`, one-label
//!    names that a resolver completes with a search domain…) are refused unless a rule names them
//!    literally: a `*` rule does not open them.
//! 4. The host (lower-cased, one trailing dot removed) and port (the scheme's default when absent) must
//!    match a rule of the network allowlist. An empty allowlist refuses every URL.
//!
//! There is no DNS here: guards do no I/O, and an answer obtained now could change before the server
//! connects. A public-looking name that resolves to a private address is caught by the egress proxy, which
//! resolves names itself and re-checks the addresses it connects to (DESIGN §4).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use palisade_policy::{HostRule, NetRules};
use url::{Host, Url};

/// Longest accepted URL argument, in bytes.
const MAX_URL_BYTES: usize = 8192;

/// Schemes the WHATWG URL standard treats specially (their host is parsed as a domain or IP address).
const SPECIAL_SCHEMES: &[&str] = &["http", "https", "ws", "wss", "ftp", "file"];

/// Checks one URL argument and returns it parsed. The error is a one-line detail for
/// [`crate::DenyReason::UrlRefused`] that says what is wrong and how to allow it if it was meant.
/// See the module docs for the order of checks and why each exists.
pub fn check_url(raw: &str, schemes: &[String], net: &NetRules) -> Result<Url, String> {
    refuse_ambiguous(raw)?;
    let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not a valid absolute URL ({e})"))?;
    let scheme = url.scheme();
    if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Err(if schemes.is_empty() {
            format!("URL scheme `{scheme}` is refused because the policy allows no URL schemes")
        } else {
            format!(
                "URL scheme `{scheme}` is not allowed (allowed: {})",
                schemes.join(", ")
            )
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(credentials_message());
    }
    let host = url.host().ok_or_else(|| format!("`{raw}` has no host"))?;
    let port = url.port_or_known_default();
    let shown = |h: &str| match url.port() {
        Some(p) => format!("{h}:{p}"),
        None => h.to_owned(),
    };
    match host {
        Host::Ipv4(ip) => check_ip(IpAddr::V4(ip), port, net, &shown(&ip.to_string()))?,
        Host::Ipv6(ip) => check_ip(IpAddr::V6(ip), port, net, &shown(&format!("[{ip}]")))?,
        Host::Domain(d) => {
            // Only schemes the URL standard does not know leave a dotted quad as a name.
            if let Ok(ip) = d.parse::<Ipv4Addr>() {
                check_ip(IpAddr::V4(ip), port, net, &shown(d))?;
                return Ok(url);
            }
            let name = domain_name(d)?;
            if let Some(why) = local_name(&name) {
                if !net.allow.iter().any(|r| names_literally(r, &name, port)) {
                    return Err(format!(
                        "`{}` {why}; palisade refuses such hosts unless the policy names them (--allow-net {name})",
                        shown(&name)
                    ));
                }
            } else {
                check_listed(net, &shown(&name), &name, |r| {
                    r.host.matches(&name) && port_ok(r, port)
                })?;
            }
        }
    }
    Ok(url)
}

/// Step 1: refuse URLs that different parsers read differently.
fn refuse_ambiguous(raw: &str) -> Result<(), String> {
    if raw.is_empty() {
        return Err("the URL is empty".into());
    }
    if raw.len() > MAX_URL_BYTES {
        return Err(format!("the URL is longer than {MAX_URL_BYTES} bytes"));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "the URL contains whitespace or a control character, which URL parsers remove or keep differently; percent-encode it"
                .into(),
        );
    }
    if raw.contains('\\') {
        return Err(
            "the URL contains a backslash, which some parsers read as `/` and others do not".into(),
        );
    }
    let Some(colon) = raw.find(':') else {
        return Ok(()); // not absolute; the parser says so
    };
    let scheme = raw[..colon].to_ascii_lowercase();
    let rest = &raw[colon + 1..];
    let Some(after) = rest.strip_prefix("//") else {
        if SPECIAL_SCHEMES.contains(&scheme.as_str()) {
            return Err(format!(
                "`{raw}` is not written `{scheme}://host/…`; parsers disagree on where its host is"
            ));
        }
        return Ok(());
    };
    if after.starts_with('/') && scheme != "file" && SPECIAL_SCHEMES.contains(&scheme.as_str()) {
        return Err(format!(
            "`{raw}` has more than two slashes after `{scheme}:`; parsers disagree on where its host is"
        ));
    }
    let authority = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
    if authority.contains('@') {
        return Err(credentials_message());
    }
    if authority.contains('%') {
        return Err(format!(
            "`{raw}` has percent-escapes in its host, which parsers decode differently"
        ));
    }
    Ok(())
}

fn credentials_message() -> String {
    "the URL contains credentials (`user@` or `user:pass@`); they would be sent to the server and logged, and `a@b` makes a URL look like it goes to `a`; pass credentials another way"
        .into()
}

/// The host name as rules see it: lower-case, one trailing dot removed, and not a number in disguise.
fn domain_name(d: &str) -> Result<String, String> {
    let lower = d.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() || name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err(format!("`{d}` is not a valid host name (empty label)"));
    }
    // WHATWG "ends in a number": special schemes would have parsed it as IPv4; any other scheme leaves it
    // to whatever resolver the server uses, and `inet_aton` reads `127.1` as 127.0.0.1.
    let last = name.rsplit('.').next().unwrap_or(name);
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.len() > 1
            && last.starts_with("0x")
            && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return Err(format!(
            "`{d}` looks like a numeric address in a form resolvers read differently; write the address as a plain IP"
        ));
    }
    Ok(name.to_owned())
}

/// Why `name` designates this machine or its private network, if it does.
fn local_name(name: &str) -> Option<&'static str> {
    const EXACT: &[(&str, &str)] = &[
        ("localhost", "is this machine"),
        ("localhost.localdomain", "is this machine"),
        ("ip6-localhost", "is this machine"),
        ("ip6-loopback", "is this machine"),
        ("metadata", "is a cloud metadata service"),
        ("metadata.google.internal", "is a cloud metadata service"),
        ("instance-data", "is a cloud metadata service"),
    ];
    const SUFFIXES: &[&str] = &[
        ".localhost",
        ".internal",
        ".local",
        ".localdomain",
        ".home.arpa",
    ];
    if let Some((_, why)) = EXACT.iter().find(|(n, _)| *n == name) {
        return Some(why);
    }
    if SUFFIXES.iter().any(|s| name.ends_with(s)) {
        return Some("is a local or internal network name");
    }
    if !name.contains('.') {
        return Some("is a one-label name that a resolver completes with the local search domain");
    }
    None
}

/// Whether `rule` names `name` deliberately: it matches, and its last label has no wildcard (so `*` or
/// `*.*` never opens `localhost`, while `localhost` or `*.corp.internal` does).
fn names_literally(rule: &HostRule, name: &str, port: Option<u16>) -> bool {
    let pattern = rule.host.as_str();
    let last = pattern.rsplit('.').next().unwrap_or(pattern);
    !last.contains(['*', '?']) && rule.host.matches(name) && port_ok(rule, port)
}

fn port_ok(rule: &HostRule, port: Option<u16>) -> bool {
    rule.port.is_none() || rule.port == port
}

/// Step 3 and 4 for an IP literal.
fn check_ip(ip: IpAddr, port: Option<u16>, net: &NetRules, shown: &str) -> Result<(), String> {
    let exact = |r: &HostRule| rule_ip(r) == Some(ip) && port_ok(r, port);
    if let Some(kind) = special_ip(ip) {
        if net.allow.iter().any(exact) {
            return Ok(());
        }
        return Err(format!(
            "`{shown}` is {kind}; palisade refuses such addresses unless the policy names this exact one (--allow-net {})",
            hint_host(ip)
        ));
    }
    let text = ip.to_string();
    let bracketed = format!("[{text}]");
    check_listed(net, shown, &hint_host(ip), |r| {
        exact(r) || ((r.host.matches(&text) || r.host.matches(&bracketed)) && port_ok(r, port))
    })
}

/// Step 4: the allowlist must have a matching rule.
fn check_listed(
    net: &NetRules,
    shown: &str,
    host: &str,
    matches: impl Fn(&HostRule) -> bool,
) -> Result<(), String> {
    if net.allow.is_empty() {
        return Err(format!(
            "`{shown}` is refused because the policy allows no network destinations; add --allow-net {host}"
        ));
    }
    if net.allow.iter().any(matches) {
        return Ok(());
    }
    Err(format!(
        "`{shown}` is not in the network allowlist; add --allow-net {host}"
    ))
}

/// The IP address a rule names, if its pattern is an IP literal (IPv6 with or without brackets). Shared with
/// the egress proxy, where such a rule is the only way to reach a [`special_ip`] address.
pub fn rule_ip(rule: &HostRule) -> Option<IpAddr> {
    let p = rule.host.as_str();
    let p = p
        .strip_prefix('[')
        .and_then(|p| p.strip_suffix(']'))
        .unwrap_or(p);
    p.parse().ok()
}

/// How to write `ip` in `--allow-net` (IPv6 in brackets, so a port can follow).
fn hint_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Why `ip` must not be reached without an exact rule, if it is special (a reason phrase such as "a loopback
/// address (this machine)"). The one classifier for URL arguments here and resolved addresses in the egress
/// proxy.
pub fn special_ip(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4).map(str::to_owned),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const METADATA: &[Ipv4Addr] = &[
        Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OCI, DigitalOcean…
        Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task credentials
        Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
        Ipv4Addr::new(192, 0, 0, 192),     // Oracle Cloud (legacy)
    ];
    if METADATA.contains(&ip) {
        return Some("a cloud metadata endpoint");
    }
    const RANGES: &[([u8; 4], u32, &str)] = &[
        (
            [0, 0, 0, 0],
            32,
            "the unspecified address (it reaches this machine)",
        ),
        ([0, 0, 0, 0], 8, "in 0.0.0.0/8 (this network)"),
        ([127, 0, 0, 0], 8, "a loopback address (this machine)"),
        ([10, 0, 0, 0], 8, "a private address (10.0.0.0/8)"),
        ([172, 16, 0, 0], 12, "a private address (172.16.0.0/12)"),
        ([192, 168, 0, 0], 16, "a private address (192.168.0.0/16)"),
        (
            [100, 64, 0, 0],
            10,
            "a carrier-grade NAT address (100.64.0.0/10)",
        ),
        (
            [169, 254, 0, 0],
            16,
            "a link-local address (169.254.0.0/16)",
        ),
        (
            [192, 0, 0, 0],
            24,
            "an IETF protocol address (192.0.0.0/24)",
        ),
        ([192, 0, 2, 0], 24, "a documentation address (192.0.2.0/24)"),
        (
            [198, 51, 100, 0],
            24,
            "a documentation address (198.51.100.0/24)",
        ),
        (
            [203, 0, 113, 0],
            24,
            "a documentation address (203.0.113.0/24)",
        ),
        (
            [198, 18, 0, 0],
            15,
            "a benchmarking address (198.18.0.0/15)",
        ),
        (
            [192, 88, 99, 0],
            24,
            "a deprecated 6to4 relay address (192.88.99.0/24)",
        ),
        ([255, 255, 255, 255], 32, "the broadcast address"),
        ([224, 0, 0, 0], 4, "a multicast address (224.0.0.0/4)"),
        ([240, 0, 0, 0], 4, "a reserved address (240.0.0.0/4)"),
    ];
    RANGES
        .iter()
        .find(|(net, len, _)| in_v4(ip, *net, *len))
        .map(|(_, _, why)| *why)
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u32) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

fn special_v6(ip: Ipv6Addr) -> Option<String> {
    let v = |s: &str| -> Ipv6Addr { s.parse().unwrap_or(Ipv6Addr::UNSPECIFIED) };
    let bits = u128::from(ip);
    let low_v4 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    let embedded = |form: &str, v4: Ipv4Addr| {
        special_v4(v4).map(|why| format!("{form} IPv6 address embedding {v4}, which is {why}"))
    };
    if ip == Ipv6Addr::UNSPECIFIED {
        return Some("the unspecified address (it reaches this machine)".into());
    }
    if ip == Ipv6Addr::LOCALHOST {
        return Some("a loopback address (this machine)".into());
    }
    if ip == v("fd00:ec2::254") {
        return Some("a cloud metadata endpoint".into());
    }
    // ::ffff:a.b.c.d (mapped) and ::ffff:0:a.b.c.d (translated) reach the embedded IPv4 address.
    if in_v6(ip, v("::ffff:0:0"), 96) {
        return embedded("an IPv4-mapped", low_v4);
    }
    if in_v6(ip, v("::ffff:0:0:0"), 96) {
        return embedded("an IPv4-translated", low_v4);
    }
    if in_v6(ip, v("::"), 96) {
        return Some(format!(
            "a deprecated IPv4-compatible IPv6 address (embedding {low_v4})"
        ));
    }
    // NAT64 well-known prefix: a NAT64 gateway forwards to the embedded IPv4 address.
    if in_v6(ip, v("64:ff9b::"), 96) {
        return embedded("a NAT64", low_v4);
    }
    // 6to4: 2002:AABB:CCDD::/48 tunnels to AA.BB.CC.DD.
    if in_v6(ip, v("2002::"), 16) {
        let v4 = Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32);
        return embedded("a 6to4", v4);
    }
    const RANGES: &[(&str, u32, &str)] = &[
        (
            "64:ff9b:1::",
            48,
            "a local-use NAT64 address (64:ff9b:1::/48)",
        ),
        ("100::", 64, "a discard-only address (100::/64)"),
        ("2001::", 32, "a Teredo tunnel address (2001::/32)"),
        ("2001:2::", 48, "a benchmarking address (2001:2::/48)"),
        ("2001:db8::", 32, "a documentation address (2001:db8::/32)"),
        ("3fff::", 20, "a documentation address (3fff::/20)"),
        ("fc00::", 7, "a unique-local (private) address (fc00::/7)"),
        ("fe80::", 10, "a link-local address (fe80::/10)"),
        ("fec0::", 10, "a deprecated site-local address (fec0::/10)"),
        ("ff00::", 8, "a multicast address (ff00::/8)"),
    ];
    RANGES
        .iter()
        .find(|(net, len, _)| in_v6(ip, v(net), *len))
        .map(|(_, _, why)| (*why).to_owned())
}

/// Why a positional value was refused: it starts with `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadingDash;

/// Refuses a value bound for a command line's positional parameter when it starts with `-` (after any
/// leading whitespace, which a server may trim): the program would read it as an option. This is the
/// CVE-2025-68144 class (the git MCP server passed `--output=/path` as a revision to `git diff`). Maps to
/// [`crate::DenyReason::LeadingDash`].
pub fn check_positional(raw: &str) -> Result<(), LeadingDash> {
    if raw.trim_start().starts_with('-') {
        Err(LeadingDash)
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[path = "urls_tests.rs"]
mod tests;
