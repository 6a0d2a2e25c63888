//! Name resolution, behind a trait so tests never send a DNS query off the machine.
//!
//! Why the proxy resolves names at all: the sandboxed server gets no resolver and no network, only the
//! proxy; and the addresses the proxy checks must be the ones it connects to, so lookup and connect happen
//! in the same place, once.

use std::io;
use std::net::{IpAddr, ToSocketAddrs};

/// Turns a host name into addresses.
pub trait Resolve: Send + Sync {
    /// All addresses for `host` (an ASCII, lower-case name); an error or an empty list is a DNS failure.
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>>;
}

/// The system resolver (`getaddrinfo` through [`ToSocketAddrs`]). It has no timeout of its own: a slow
/// lookup holds one connection slot until the system resolver gives up.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>> {
        Ok((host, port).to_socket_addrs()?.map(|a| a.ip()).collect())
    }
}
