//! Which destinations the proxy may connect to.
//!
//! Why two steps: the name a client asks for is checked against the allowlist first, then every address it
//! resolves to is checked again. A name on the allowlist can point anywhere (an attacker's domain can answer
//! `127.0.0.1` or `169.254.169.254`, and change its answer between two lookups: DNS rebinding), so
//! loopback, private, link-local, metadata and other special addresses are refused unless a rule names that
//! exact IP. The classifier is [`palisade_guard::args::urls::special_ip`], the same one URL arguments use.

use std::net::{IpAddr, Ipv6Addr};

use palisade_guard::args::urls::{rule_ip, special_ip};
use palisade_policy::{HostRule, NetRules};

/// A destination host as the proxy understands it: an IP literal or a normalized DNS name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IPv4 or IPv6 literal (`10.0.0.1`, `[::1]` without brackets).
    Ip(IpAddr),
    /// A DNS name: ASCII, lower-case, one trailing dot removed (`api.github.com`, `xn--bcher-kva.example`).
    Name(String),
}

impl Host {
    /// Parses a host as written in a request target (IPv6 in brackets). Non-ASCII names are refused: IDNA
    /// mapping is the client's job, and a proxy that applied its own would check a different name than the
    /// one the client meant. The error is a one-line reason.
    pub fn parse(raw: &str) -> Result<Host, String> {
        if let Some(inner) = raw.strip_prefix('[') {
            let v6 = inner
                .strip_suffix(']')
                .and_then(|s| s.parse::<Ipv6Addr>().ok())
                .ok_or_else(|| format!("`{raw}` is not a valid bracketed IPv6 address"))?;
            return Ok(Host::Ip(IpAddr::V6(v6)));
        }
        if let Ok(v4) = raw.parse::<std::net::Ipv4Addr>() {
            return Ok(Host::Ip(IpAddr::V4(v4)));
        }
        if !raw.is_ascii() {
            return Err(format!(
                "`{raw}` is not ASCII; write internationalized names in punycode (xn--…)"
            ));
        }
        let lower = raw.to_ascii_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(format!("`{raw}` is not a valid host name"));
        }
        Ok(Host::Name(name.to_owned()))
    }

    /// The host as written in a `Host` header or `--allow-net` (IPv6 in brackets).
    pub fn display(&self) -> String {
        match self {
            Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
            Host::Ip(ip) => ip.to_string(),
            Host::Name(n) => n.clone(),
        }
    }
}

/// Why a destination was refused by the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No rule names this host (and port).
    HostNotAllowed,
    /// The host is, or resolved to, a special address that no rule names exactly.
    SpecialAddress {
        /// The offending address.
        ip: IpAddr,
        /// Why it is special ("a loopback address (this machine)").
        why: String,
    },
}

/// The compiled egress allowlist, built from the policy's [`NetRules`].
///
/// Name rules (`api.github.com`, `*.example.com:443`) allow names and the public addresses they resolve
/// to. IP rules (`127.0.0.1`, `[::1]:8080`) allow that exact address, which is the only way to reach a
/// loopback, private, link-local or metadata address. An empty policy allows nothing.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allow: Vec<HostRule>,
    allow_ips: Vec<(IpAddr, Option<u16>)>,
}

impl EgressPolicy {
    /// Splits the network rules into name rules and exact-IP rules.
    pub fn new(net: &NetRules) -> EgressPolicy {
        let mut policy = EgressPolicy::default();
        for rule in &net.allow {
            match rule_ip(rule) {
                Some(ip) => policy.allow_ips.push((ip, rule.port)),
                None => policy.allow.push(rule.clone()),
            }
        }
        policy
    }

    /// Whether the policy allows nothing at all.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.allow_ips.is_empty()
    }

    fn ip_named(&self, ip: IpAddr, port: u16) -> bool {
        self.allow_ips
            .iter()
            .any(|(a, p)| *a == ip && p.is_none_or(|p| p == port))
    }

    /// The first check, before any DNS: does a rule name this host and port? An IP literal that is special
    /// needs an exact IP rule; any other IP literal may also match a name glob (`*`), as in URL arguments.
    pub fn check_host(&self, host: &Host, port: u16) -> Result<(), Refused> {
        let glob = |text: &str| {
            self.allow
                .iter()
                .any(|r| r.host.matches(text) && r.port.is_none_or(|p| p == port))
        };
        match host {
            Host::Ip(ip) => {
                if self.ip_named(*ip, port) {
                    return Ok(());
                }
                // Named, but for another port: the port is what is not allowed.
                if self.allow_ips.iter().any(|(a, _)| a == ip) {
                    return Err(Refused::HostNotAllowed);
                }
                if let Some(why) = special_ip(*ip) {
                    return Err(Refused::SpecialAddress { ip: *ip, why });
                }
                if glob(&ip.to_string()) || glob(&host.display()) {
                    Ok(())
                } else {
                    Err(Refused::HostNotAllowed)
                }
            }
            Host::Name(name) if glob(name) => Ok(()),
            Host::Name(_) => Err(Refused::HostNotAllowed),
        }
    }

    /// The second check, after DNS: every resolved address must be ordinary or named exactly. One bad
    /// address refuses the whole connection, so a name cannot smuggle an internal address in among public
    /// ones and win by ordering.
    pub fn check_resolved(&self, ips: &[IpAddr], port: u16) -> Result<(), Refused> {
        for &ip in ips {
            if self.ip_named(ip, port) {
                continue;
            }
            if let Some(why) = special_ip(ip) {
                return Err(Refused::SpecialAddress { ip, why });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_policy::{Glob, HostRule};

    #[test]
    fn an_exact_ip_rule_with_a_port_refuses_other_ports_as_not_allowed() {
        let policy = EgressPolicy::new(&NetRules {
            allow: vec![HostRule {
                host: Glob::new("127.0.0.1").unwrap(),
                port: Some(8080),
            }],
        });
        let lo = Host::Ip("127.0.0.1".parse().unwrap());
        assert_eq!(policy.check_host(&lo, 8080), Ok(()));
        // The address is named: the port is what is refused (not "loopback needs a rule").
        assert_eq!(policy.check_host(&lo, 9090), Err(Refused::HostNotAllowed));
        // An address no rule names is refused as special.
        let other = Host::Ip("127.0.0.2".parse().unwrap());
        assert!(matches!(
            policy.check_host(&other, 8080),
            Err(Refused::SpecialAddress { .. })
        ));
    }
}
