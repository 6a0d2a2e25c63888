//! The last step of the sandbox helper before `execve`: resource limits, Landlock, seccomp.
//!
//! # Order
//! 1. **Compile the seccomp filter** (pure, allocates): an error here leaves the process untouched. In
//!    tier 1 the helper compiles it in parallel with PID 1's mounts and hands it over with the network
//!    namespace ([`harden_compiled`]).
//! 2. **rlimits** first: nothing the later steps do depends on them, and once set they hold for
//!    everything that follows, including the server's first instruction (a fork bomb or a huge
//!    allocation meets its limit from the start). Core dumps are off before any secret is in memory.
//! 3. **Landlock**: needs `landlock_*` syscalls and `prctl(PR_SET_NO_NEW_PRIVS)`, which the filter does
//!    not deny today but might one day (a server stacking its own domains is harmless, yet the helper
//!    should not depend on that choice).
//! 4. **seccomp** last: it restricts the syscalls every earlier step may use (`mount`, `unshare`,
//!    `setns` in the helper's own setup), so it can only be installed once setup is over; the next
//!    syscall after it is `execve`.
//!
//! Every step fails closed: an error means the server is not started.

use crate::linux::{landlock, rlimits, seccomp};
use crate::spec::SandboxSpec;

/// Variations of the hardening (tier 2 differs from tier 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HardenOptions {
    /// Seccomp variations (tier 2: `deny_inet_datagram`).
    pub seccomp: seccomp::Options,
}

impl HardenOptions {
    /// Tier 2 (no network or mount namespace): additionally refuse UDP/raw IPv4 and IPv6 sockets and
    /// `socket(AF_UNIX)`.
    pub fn tier_two() -> Self {
        HardenOptions {
            seccomp: seccomp::Options {
                deny_inet_datagram: true,
                deny_unix_socket: true,
            },
        }
    }

    /// The options a spec's isolation calls for.
    pub fn for_spec(spec: &SandboxSpec) -> Self {
        match spec.isolation {
            crate::spec::Isolation::Namespaces => HardenOptions::default(),
            crate::spec::Isolation::LandlockOnly => HardenOptions::tier_two(),
        }
    }
}

/// What was applied, for the start-up banner and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HardenReport {
    /// Resource limits set (and clamped).
    pub rlimits: rlimits::RlimitReport,
    /// Landlock ABI and enforcement.
    pub landlock: landlock::LandlockReport,
    /// One line on the seccomp filter.
    pub seccomp: String,
}

impl std::fmt::Display for HardenReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "limits: {}", self.rlimits.set.join(" "))?;
        for n in &self.rlimits.notes {
            writeln!(f, "  note: {n}")?;
        }
        writeln!(f, "{}", self.landlock)?;
        for n in &self.landlock.notes {
            writeln!(f, "  note: {n}")?;
        }
        write!(f, "{}", self.seccomp)
    }
}

/// Hardening of the calling (single-threaded) process right before `execve`, as the spec's isolation
/// calls for ([`HardenOptions::for_spec`]).
pub fn harden(spec: &SandboxSpec) -> Result<HardenReport, String> {
    harden_with(spec, &HardenOptions::for_spec(spec))
}

/// [`harden`] with explicit options.
pub fn harden_with(spec: &SandboxSpec, opts: &HardenOptions) -> Result<HardenReport, String> {
    let filter = seccomp::filters(&opts.seccomp)?;
    harden_compiled(spec, opts, &filter)
}

/// [`harden_with`] with the seccomp filter already compiled (from [`seccomp::filters`] with
/// `opts.seccomp`; the tier 1 helper compiles it while PID 1 builds the mounts).
pub fn harden_compiled(
    spec: &SandboxSpec,
    opts: &HardenOptions,
    filter: &[seccompiler::BpfProgram],
) -> Result<HardenReport, String> {
    let rlimits = rlimits::apply(&spec.rlimits)?;
    let landlock = landlock::apply(&spec.landlock)?;
    seccomp::apply(filter)?;
    Ok(HardenReport {
        rlimits,
        landlock,
        seccomp: seccomp::summary(&opts.seccomp),
    })
}

/// The "re-exec the test binary" pattern: a test that installs process-wide restrictions runs them in a
/// fresh copy of the test binary, selected by `PALISADE_TEST_PROBE`, so the harness is never affected.
#[cfg(test)]
pub(crate) mod test_probe {
    use std::ffi::OsStr;
    use std::process::Command;

    /// Runs the test `test` (full path without the crate name) in a child with `PALISADE_TEST_PROBE=probe`;
    /// returns its stdout and stderr. Panics if the child fails.
    pub(crate) fn run(test: &str, probe: &str) -> String {
        run_with(test, probe, &[])
    }

    /// [`run`] with extra environment variables.
    pub(crate) fn run_with(test: &str, probe: &str, env: &[(&str, &OsStr)]) -> String {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new(exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env("PALISADE_TEST_PROBE", probe)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "probe {probe} failed: {text}");
        assert!(text.contains("PROBE"), "probe {probe} did not run: {text}");
        text
    }

    /// `PROBE <key> <value>` lines of a probe's output (libtest may print its own text before the first).
    pub(crate) fn results(out: &str) -> std::collections::BTreeMap<String, String> {
        out.lines()
            .filter_map(|l| l.split_once("PROBE ").map(|(_, r)| r))
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{LandlockRules, NetMode, Rlimits};
    use std::path::PathBuf;

    #[test]
    fn probe_child_harden() {
        if std::env::var("PALISADE_TEST_PROBE").as_deref() != Ok("harden") {
            return;
        }
        let spec = SandboxSpec {
            argv: vec!["/bin/sh".into()],
            env: vec![],
            cwd: "/".into(),
            mounts: vec![],
            landlock: LandlockRules {
                read_exec: ["/usr", "/bin", "/lib", "/lib64", "/proc"]
                    .map(PathBuf::from)
                    .to_vec(),
                // std opens /dev/null for the child's unused stdio; a file rule gets file rights only.
                write: vec!["/dev/null".into()],
                ..LandlockRules::default()
            },
            rlimits: Rlimits::default(),
            net: NetMode::None,
            hostname: "sandbox".into(),
            pids_cgroup: None,
            isolation: Default::default(),
        };
        let report = harden(&spec).unwrap();
        println!("{report}");
        // These are per thread, and libtest runs the test on a thread of its own.
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        for l in status.lines() {
            if l.starts_with("NoNewPrivs:") || l.starts_with("Seccomp:") {
                println!(
                    "PROBE {}",
                    l.split_whitespace().collect::<Vec<_>>().join(" ")
                );
            }
        }
        // The server side of the story: a shell runs, /etc is hidden, namespaces are refused.
        let out = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                "echo shell-ok; cat /etc/hostname 2>/dev/null || echo etc-denied",
            ])
            .output()
            .unwrap();
        print!(
            "PROBE {}",
            String::from_utf8_lossy(&out.stdout).replace('\n', " ")
        );
        println!();
        std::process::exit(0);
    }

    #[test]
    fn harden_applies_all_three_layers() {
        let out = test_probe::run("linux::harden::tests::probe_child_harden", "harden");
        assert!(out.contains("PROBE NoNewPrivs: 1"), "{out}");
        assert!(out.contains("PROBE Seccomp: 2"), "{out}");
        assert!(out.contains("shell-ok etc-denied"), "{out}");
        assert!(out.contains("RLIMIT_CORE=0"), "{out}");
        assert!(out.contains("Landlock ABI"), "{out}");
        assert!(out.contains("seccomp:"), "{out}");
    }
}
