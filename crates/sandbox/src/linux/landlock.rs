//! Landlock: the kernel-enforced allowlist of paths and TCP ports, applied as a second layer after the
//! mount namespace (tier 1) or as the main filesystem barrier (tier 2).
//!
//! # Per ABI
//! The ruleset handles every access right the running kernel's ABI knows ([`plan`], pure), so the crate's
//! best-effort mode never has to drop a requested right and the report is exact:
//!
//! | ABI | adds | without it |
//! |-----|------|------------|
//! | 1 (5.13) | read/write/exec/make/remove | no Landlock: refuse (fail closed) |
//! | 2 (5.19) | `Refer` (rename/link across dirs) | cross-directory rename/link always denied |
//! | 3 (6.2)  | `Truncate` | `truncate()` of any file the user may write is not restricted |
//! | 4 (6.7)  | TCP `ConnectTcp`/`BindTcp` | TCP not restricted (only the network namespace isolates) |
//! | 5 (6.10) | `IoctlDev` | ioctl on device files not restricted |
//! | 6 (6.12) | scopes: abstract unix sockets, signals | both reach outside the sandbox's domain |
//! | 7 (6.15) | audit logging controls | (nothing enforced differs) |
//! | 9 (7.1)  | `ResolveUnix` (connect to path unix sockets) | path unix sockets not restricted |
//!
//! UDP is not covered by any ABI; the seccomp filter ([`super::seccomp::Options`]) handles it in tier 2.
//!
//! # Rules
//! `read_exec` trees get read + execute, `read` trees read, `write` trees read + every write right
//! (write, truncate, create, remove, make_*, refer) but not execute. TCP: connect only to the
//! `connect_tcp` ports, bind nowhere. A path that does not exist (or cannot be opened) is skipped with a
//! note: skipping only ever denies more.
#![allow(unsafe_code)] // `landlock_create_ruleset` version query (kernel_abi)

use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    PathFd, RestrictionStatus, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

use crate::spec::LandlockRules;

/// What the running kernel's ABI lets the ruleset handle. Pure function of the ABI: [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The ABI used (the kernel's, capped at the newest this build knows).
    pub abi: ABI,
    /// Filesystem rights handled (denied unless a rule grants them).
    pub fs: BitFlags<AccessFs>,
    /// TCP connect/bind handled (ABI >= 4).
    pub tcp: bool,
    /// Abstract unix socket and signal scopes (ABI >= 6).
    pub scopes: bool,
    /// What this ABI cannot enforce that palisade would want.
    pub gaps: Vec<String>,
}

/// Decides the ruleset for a kernel ABI version (as returned by the version query). `<= 0`: error.
pub fn plan(kernel_abi: i32) -> Result<Plan, String> {
    if kernel_abi <= 0 {
        return Err("Landlock is not available".into());
    }
    let abi = ABI::from(kernel_abi);
    let n = abi as i32;
    let mut gaps = Vec::new();
    let mut gap = |since: i32, what: &str| {
        if n < since {
            gaps.push(format!("{what} (needs Landlock ABI {since})"));
        }
    };
    gap(2, "renaming or linking across directories is always denied");
    gap(3, "truncate() is not restricted");
    gap(4, "TCP connect/bind is not restricted");
    gap(5, "ioctl on device files is not restricted");
    gap(
        6,
        "abstract unix sockets and signals outside the sandbox are not restricted",
    );
    gap(9, "connecting to path unix sockets is not restricted");
    Ok(Plan {
        abi,
        fs: AccessFs::from_all(abi),
        tcp: n >= 4,
        scopes: n >= 6,
        gaps,
    })
}

/// The kind of a path rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Read and execute.
    ReadExec,
    /// Read only.
    Read,
    /// Read and write (no execute).
    Write,
}

/// Rights granted on a path of `kind` under `plan`; directory-only rights are dropped for a file.
pub fn rights(plan: &Plan, kind: Kind, is_dir: bool) -> BitFlags<AccessFs> {
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let want = match kind {
        Kind::ReadExec => read | AccessFs::Execute,
        Kind::Read => read,
        Kind::Write => read | AccessFs::from_write(plan.abi),
    };
    let want = want & plan.fs;
    if is_dir {
        want
    } else {
        want & AccessFs::from_file(plan.abi)
    }
}

/// Whether the ruleset was enforced as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    /// Everything the plan asked for.
    Full,
    /// The kernel dropped some of it (reported, not hidden).
    Partial,
}

/// What [`apply`] enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandlockReport {
    /// The kernel's ABI version.
    pub abi: i32,
    /// Whether the ruleset was enforced in full.
    pub enforcement: Enforcement,
    /// TCP connect/bind restricted.
    pub tcp: bool,
    /// Signal and abstract unix socket scopes applied.
    pub scopes: bool,
    /// Limits of this ABI (see [`Plan::gaps`]).
    pub gaps: Vec<String>,
    /// Skipped paths and ports, with the reason.
    pub notes: Vec<String>,
}

impl std::fmt::Display for LandlockReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Landlock ABI {}: {} (filesystem{}{})",
            self.abi,
            match self.enforcement {
                Enforcement::Full => "enforced",
                Enforcement::Partial => "partially enforced",
            },
            if self.tcp { ", TCP ports" } else { "" },
            if self.scopes {
                ", signal and abstract-socket scopes"
            } else {
                ""
            }
        )?;
        for g in &self.gaps {
            write!(f, "; {g}")?;
        }
        Ok(())
    }
}

/// The running kernel's Landlock ABI version (`landlock_create_ruleset(NULL, 0, VERSION)`).
pub fn kernel_abi() -> Result<i32, String> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with the VERSION flag the kernel reads no attribute (NULL, size 0) and only returns the
    // ABI version or an error.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if v >= 0 {
        return Ok(v as i32);
    }
    let e = std::io::Error::last_os_error();
    Err(match e.raw_os_error() {
        Some(libc::ENOSYS) => "Landlock is not in this kernel (Linux >= 5.13 with CONFIG_SECURITY_LANDLOCK)".into(),
        Some(libc::EOPNOTSUPP) => {
            "Landlock is built in but disabled at boot (add `landlock` to the `lsm=` kernel parameter)".into()
        }
        _ => format!("Landlock version query failed: {e}"),
    })
}

/// Builds and enforces the ruleset on the calling thread (and its future children). Fails closed: no
/// Landlock, or a ruleset the kernel did not enforce at all, is an error, never a silent pass.
pub fn apply(rules: &LandlockRules) -> Result<LandlockReport, String> {
    let abi = kernel_abi()?;
    let plan = plan(abi)?;
    let mut notes = Vec::new();
    let err = |e: landlock::RulesetError| format!("Landlock: {e}");

    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(plan.fs)
        .map_err(err)?;
    if plan.tcp {
        ruleset = ruleset
            .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
            .map_err(err)?;
    }
    if plan.scopes {
        ruleset = ruleset
            .scope(Scope::AbstractUnixSocket | Scope::Signal)
            .map_err(err)?;
    }
    let mut created = ruleset.create().map_err(err)?;

    let groups = [
        (Kind::ReadExec, &rules.read_exec),
        (Kind::Read, &rules.read),
        (Kind::Write, &rules.write),
    ];
    for (kind, paths) in groups {
        for path in paths {
            let Some((fd, is_dir)) = open_path(path, &mut notes) else {
                continue;
            };
            let access = rights(&plan, kind, is_dir);
            created = created
                .add_rule(PathBeneath::new(fd, access))
                .map_err(|e| format!("Landlock rule for {}: {e}", path.display()))?;
        }
    }
    if plan.tcp {
        for &port in &rules.connect_tcp {
            created = created
                .add_rule(NetPort::new(port, AccessNet::ConnectTcp))
                .map_err(err)?;
        }
    } else if !rules.connect_tcp.is_empty() {
        notes.push(format!(
            "TCP ports {:?}: not enforceable before ABI 4 (every TCP destination is reachable unless a \
             network namespace isolates)",
            rules.connect_tcp
        ));
    }

    let status: RestrictionStatus = created.restrict_self().map_err(err)?;
    let enforcement = match status.ruleset {
        RulesetStatus::FullyEnforced => Enforcement::Full,
        RulesetStatus::PartiallyEnforced => Enforcement::Partial,
        RulesetStatus::NotEnforced => {
            return Err(format!(
                "Landlock ABI {abi}: the ruleset was not enforced; refusing to run unsandboxed"
            ));
        }
    };
    Ok(LandlockReport {
        abi,
        enforcement,
        tcp: plan.tcp,
        scopes: plan.scopes,
        gaps: plan.gaps,
        notes,
    })
}

fn open_path(path: &Path, notes: &mut Vec<String>) -> Option<(PathFd, bool)> {
    let fd = match PathFd::new(path) {
        Ok(fd) => fd,
        Err(e) => {
            notes.push(format!("{}: skipped ({e})", path.display()));
            return None;
        }
    };
    // The type of what was opened, not of what the path names now.
    match rustix::fs::fstat(&fd) {
        Ok(st) => Some((fd, rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())),
        Err(e) => {
            notes.push(format!("{}: skipped (fstat: {e})", path.display()));
            None
        }
    }
}

#[cfg(test)]
#[path = "landlock_tests.rs"]
mod tests;
