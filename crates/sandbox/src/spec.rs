//! What crosses from palisade to the sandbox helper: a plain, serializable description of the sandbox.
//!
//! palisade decides (pure functions, unit-tested); the helper (`palisade __sandbox`) only applies. The spec
//! travels as JSON over an inherited pipe, never on argv or in the environment, so it is neither visible in
//! `ps` nor inherited by the server.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The whole sandbox for one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// Program and arguments (argv[0] is resolved to an absolute path before launch).
    pub argv: Vec<String>,
    /// The complete environment of the server.
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox (it is also made visible, read-only unless a write root).
    pub cwd: PathBuf,
    /// Filesystem view, applied in order on an empty tmpfs root.
    pub mounts: Vec<Mount>,
    /// Landlock rules applied as a second layer after the mount namespace is in place.
    pub landlock: LandlockRules,
    /// Resource limits.
    pub rlimits: Rlimits,
    /// Network access.
    pub net: NetMode,
    /// Host name inside the UTS namespace.
    pub hostname: String,
    /// The join file (v1 `tasks`, cgroup2 `cgroup.procs`) of a pids cgroup the helper joins first thing by
    /// writing `0` (before any namespace or fork), so the whole sandbox is counted against its `pids.max`.
    /// Set when palisade runs as root, whom `RLIMIT_NPROC` does not bind (see [`crate::linux::cgroup`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_cgroup: Option<PathBuf>,
    /// Tier 1 (namespaces) or tier 2 (Landlock and seccomp only).
    #[serde(default)]
    pub isolation: Isolation,
}

/// How the helper isolates the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// Tier 1: user, mount, PID, network, IPC and UTS namespaces, the filesystem view of [`SandboxSpec::mounts`],
    /// then Landlock, seccomp and rlimits.
    #[default]
    Namespaces,
    /// Tier 2, where user namespaces are unavailable: no namespaces and no mounts (the spec's `mounts` are
    /// empty); Landlock is the only filesystem and TCP layer, seccomp also refuses UDP and `socket(AF_UNIX)`.
    /// The helper becomes the server (no fork, no `setsid`: the process group is what the watchdog kills).
    LandlockOnly,
}

/// One entry of the filesystem view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Mount {
    /// Bind `src` from the host at `dst`, read-only (also nosuid, nodev).
    RoBind {
        /// Host path.
        src: PathBuf,
        /// Path inside the sandbox.
        dst: PathBuf,
    },
    /// Bind `src` from the host at `dst`, writable (nosuid, nodev).
    RwBind {
        /// Host path.
        src: PathBuf,
        /// Path inside the sandbox.
        dst: PathBuf,
    },
    /// An empty tmpfs at `dst` (HOME, /tmp).
    Tmpfs {
        /// Path inside the sandbox.
        dst: PathBuf,
        /// Size limit in bytes.
        size: u64,
    },
    /// A symlink at `dst` pointing to `target` (e.g. `/bin -> usr/bin` on merged-/usr systems).
    Symlink {
        /// Path inside the sandbox.
        dst: PathBuf,
        /// Link target, as stored in the link.
        target: PathBuf,
    },
    /// A fresh procfs for the sandbox's PID namespace at `/proc`.
    Proc,
    /// A minimal `/dev`: null, zero, full, random, urandom, tty, and `/dev/shm`, `/dev/pts` where possible.
    Dev,
}

impl Mount {
    /// Where the entry goes inside the sandbox.
    pub fn dst(&self) -> &Path {
        match self {
            Mount::RoBind { dst, .. }
            | Mount::RwBind { dst, .. }
            | Mount::Tmpfs { dst, .. }
            | Mount::Symlink { dst, .. } => dst,
            Mount::Proc => Path::new("/proc"),
            Mount::Dev => Path::new("/dev"),
        }
    }
}

/// Landlock's view: which paths may be read, written or executed. Everything else is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockRules {
    /// Readable and executable files (or trees): the exec allowlist. The server's executable with every
    /// symlink hop, its `#!` interpreters, the ELF program interpreter of each, and what the user allowed.
    pub read_exec: Vec<PathBuf>,
    /// Readable, not executable trees.
    pub read: Vec<PathBuf>,
    /// Readable and writable trees.
    pub write: Vec<PathBuf>,
    /// TCP ports the server may connect to (the egress proxy); empty = none.
    pub connect_tcp: Vec<u16>,
}

/// Resource limits (`setrlimit`); `None` leaves the inherited limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimits {
    /// RLIMIT_AS in bytes.
    pub address_space: Option<u64>,
    /// RLIMIT_NPROC.
    pub processes: Option<u64>,
    /// RLIMIT_NOFILE.
    pub open_files: Option<u64>,
    /// RLIMIT_FSIZE in bytes.
    pub file_size: Option<u64>,
    /// RLIMIT_CORE is always 0 (no core dumps of a process that may hold secrets).
    pub core: u64,
}

impl Default for Rlimits {
    fn default() -> Self {
        Rlimits {
            // 8 GiB of address space: V8 and CPython reserve far more than they use; RSS is bounded elsewhere.
            address_space: Some(8 << 30),
            processes: Some(256),
            open_files: Some(1024),
            file_size: Some(1 << 30),
            core: 0,
        }
    }
}

/// Network access from inside the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum NetMode {
    /// A fresh network namespace with only loopback: no way out.
    #[default]
    None,
    /// A fresh network namespace with only loopback, and palisade's egress proxy as the one way out.
    ///
    /// PID 1 listens on `127.0.0.1:port` inside the namespace and hands the listening socket to palisade
    /// (`SCM_RIGHTS`) over the path unix socket `handoff` before the server starts; palisade accepts the
    /// server's proxy connections on it from outside, where the network is. No process hop relays bytes
    /// inside the sandbox, and the server can reach nothing but that port (Landlock `ConnectTcp`).
    Proxy {
        /// The proxy's port on the sandbox's loopback.
        port: u16,
        /// A path unix socket palisade listens on, in a directory only palisade's user can enter.
        handoff: PathBuf,
    },
    /// Tier 2 (no network namespace): palisade's egress proxy listens on the host's `127.0.0.1:port`, and
    /// Landlock `ConnectTcp` allows that port only (on any address: Landlock knows ports, not hosts).
    HostProxy {
        /// The proxy's port on the host's loopback.
        port: u16,
    },
}

impl NetMode {
    /// The proxy port, when the sandbox has one.
    pub fn proxy_port(&self) -> Option<u16> {
        match self {
            NetMode::None => None,
            NetMode::Proxy { port, .. } | NetMode::HostProxy { port } => Some(*port),
        }
    }
}
