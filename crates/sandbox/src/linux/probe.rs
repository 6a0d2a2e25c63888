//! What this machine can give a sandboxed server, for `palisade doctor` and for choosing the tier.
//!
//! [`probe`] gathers facts (sysctls, a child that tries the namespaces the helper needs, the Landlock
//! version query, the seccomp actions the kernel offers); [`decide_tier`] turns them into a tier and the
//! reasons (pure, unit-tested). palisade itself never unshares: the attempt happens in a forked child.
//!
//! | tier | needs | means |
//! |------|-------|-------|
//! | One | user namespaces + Landlock + seccomp | namespaces, Landlock second layer, seccomp, rlimits |
//! | Two | Landlock ABI >= 4 + seccomp | Landlock paths and TCP ports, seccomp (UDP and unix sockets refused): degraded (docs/sandbox.md) |
//! | Three | otherwise | refuse unless the policy says `trust = "unsandboxed"` |
//!
//! Landlock is required in every tier because [`super::harden`] fails closed without it, and doctor must
//! not promise what `run` would then refuse.
#![allow(unsafe_code)] // the namespace attempt in a forked child (pre_exec: unshare, mount, _exit)

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// How strongly servers can be sandboxed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Full sandbox.
    One,
    /// Degraded: Landlock + seccomp without namespaces.
    Two,
    /// No usable sandbox.
    Three,
}

/// Raw facts, as [`probe`] found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// A child could create user, mount, pid, net, ipc and uts namespaces and mount a tmpfs.
    pub userns: Result<(), String>,
    /// `kernel.unprivileged_userns_clone` (Debian/older Ubuntu), if present.
    pub unprivileged_userns_clone: Option<i64>,
    /// `user.max_user_namespaces`, if present.
    pub max_user_namespaces: Option<i64>,
    /// `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu 23.10+), if present.
    pub apparmor_restrict_userns: Option<i64>,
    /// Landlock ABI version, or why there is none.
    pub landlock: Result<i32, String>,
    /// seccomp filters with `errno` actions are available.
    pub seccomp: bool,
    /// palisade already runs under a seccomp filter (container); nested filters still work.
    pub already_filtered: bool,
    /// Effective uid is 0.
    pub root: bool,
    /// As root: a pids cgroup can be made (where), or why not. `RLIMIT_NPROC` does not bind root, so
    /// without one `run` refuses to start a sandboxed server as root. Unprivileged: not probed (`Ok("")`).
    pub pids_cgroup: Result<String, String>,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The tier servers would run in.
    pub tier: Tier,
    /// User namespaces usable, or why not.
    pub userns: Result<(), String>,
    /// Landlock ABI version (`None`: unavailable).
    pub landlock_abi: Option<i32>,
    /// seccomp filters available.
    pub seccomp: bool,
    /// Why this tier, and what it lacks.
    pub reasons: Vec<String>,
    /// The facts behind it.
    pub facts: Facts,
}

/// Decides the tier from the facts. Pure.
pub fn decide_tier(f: &Facts) -> (Tier, Vec<String>) {
    let mut reasons = Vec::new();
    let abi = f.landlock.as_ref().ok().copied().filter(|&a| a > 0);
    match &f.userns {
        Ok(()) => reasons.push("user namespaces work (user, mount, pid, net, ipc, uts)".into()),
        Err(e) => {
            reasons.push(format!("user namespaces unavailable: {e}"));
            if f.apparmor_restrict_userns == Some(1) {
                reasons.push(
                    "AppArmor restricts unprivileged user namespaces \
                     (kernel.apparmor_restrict_unprivileged_userns=1); an AppArmor profile for palisade \
                     with `userns,` lifts it"
                        .into(),
                );
            }
            if f.unprivileged_userns_clone == Some(0) {
                reasons.push("kernel.unprivileged_userns_clone=0".into());
            }
            if f.max_user_namespaces == Some(0) {
                reasons.push("user.max_user_namespaces=0".into());
            }
        }
    }
    match (&f.landlock, abi) {
        (_, Some(a)) => reasons.push(format!("Landlock ABI {a}")),
        (Err(e), None) => reasons.push(format!("no Landlock: {e}")),
        (Ok(a), None) => reasons.push(format!("no Landlock (ABI {a})")),
    }
    if !f.seccomp {
        reasons.push("seccomp filters unavailable (CONFIG_SECCOMP_FILTER)".into());
    }
    let tier = match (f.userns.is_ok(), abi, f.seccomp) {
        (_, _, false) => {
            reasons.push("without seccomp the hardening layer cannot be applied".into());
            Tier::Three
        }
        (_, None, true) => {
            reasons.push("without Landlock the hardening layer fails closed".into());
            Tier::Three
        }
        (true, Some(_), true) => Tier::One,
        (false, Some(a), true) if a >= 4 => {
            reasons.push(
                "degraded: no mount, pid or network namespace; Landlock limits files and TCP, seccomp \
                 refuses UDP and unix sockets; other processes of the user are visible (not signalable: \
                 Landlock scopes signals from ABI 6)"
                    .into(),
            );
            Tier::Two
        }
        (false, Some(_), true) => {
            reasons.push(
                "Landlock before ABI 4 cannot restrict TCP, and without a network namespace the server \
                 would reach the network"
                    .into(),
            );
            Tier::Three
        }
    };
    if tier == Tier::One
        && let Some(a) = abi
        && a < 6
    {
        reasons.push(format!(
            "Landlock ABI {a}: no signal/abstract-socket scopes (the pid and network namespaces cover them)"
        ));
    }
    if f.already_filtered {
        reasons.push("palisade already runs under a seccomp filter (container?)".into());
    }
    if f.root && tier != Tier::Three {
        match &f.pids_cgroup {
            Ok(w) => reasons.push(format!(
                "process limit for root: a pids cgroup per server ({w})"
            )),
            Err(e) => reasons.push(format!(
                "process limit not enforceable for root: no pids cgroup ({e}); `palisade run` \
                 refuses to start a sandboxed server as root until one is mounted"
            )),
        }
    }
    (tier, reasons)
}

/// Looks at this machine. Spawns one short-lived child; never changes palisade's own namespaces.
pub fn probe() -> Probe {
    let pids_cgroup = if rustix::process::geteuid().is_root() {
        super::cgroup::check()
    } else {
        Ok(String::new())
    };
    let facts = host_facts(try_namespaces(), pids_cgroup);
    let (tier, reasons) = decide_tier(&facts);
    Probe {
        tier,
        userns: facts.userns.clone(),
        landlock_abi: facts.landlock.as_ref().ok().copied(),
        seccomp: facts.seccomp,
        reasons,
        facts,
    }
}

/// The environment variable that forces a tier where the quick check guesses wrong, or to exercise a
/// lower tier: `2` (no namespaces), `3` (no sandbox: servers are refused), or `1` where the check ruled
/// it out (the helper then fails closed if the kernel refuses). It never makes a server run unsandboxed.
pub const TIER_ENV: &str = "PALISADE_SANDBOX_TIER";

/// The tier for a launch, without [`probe`]'s child process (≈ 2 ms that every server start would pay):
/// Landlock's version query, seccomp's action list, and the sysctls that switch user namespaces off.
/// Where namespaces are blocked some other way (a container's seccomp filter), the helper's `unshare`
/// fails and the start fails closed with that error; `palisade doctor` (the full probe) explains, and
/// `PALISADE_SANDBOX_TIER=2` selects the degraded tier.
pub fn quick() -> (Tier, Vec<String>) {
    let mut facts = host_facts(Ok(()), Ok(String::new()));
    facts.userns = userns_sysctls(&facts);
    let forced = std::env::var(TIER_ENV).ok();
    match forced.as_deref() {
        Some("2") => facts.userns = Err(format!("{TIER_ENV}=2")),
        Some("1") => facts.userns = Ok(()),
        Some("3") => facts.landlock = Err(format!("{TIER_ENV}=3")),
        _ => {}
    }
    decide_tier(&facts)
}

/// What the sysctls say about user namespaces for this user. Pure.
pub fn userns_sysctls(f: &Facts) -> Result<(), String> {
    if f.max_user_namespaces == Some(0) {
        return Err("user.max_user_namespaces=0".into());
    }
    if !f.root && f.unprivileged_userns_clone == Some(0) {
        return Err("kernel.unprivileged_userns_clone=0".into());
    }
    if !f.root && f.apparmor_restrict_userns == Some(1) {
        return Err("kernel.apparmor_restrict_unprivileged_userns=1".into());
    }
    Ok(())
}

/// Everything [`Facts`] holds that is read, not tried: sysctls, Landlock's version, seccomp's actions.
fn host_facts(userns: Result<(), String>, pids_cgroup: Result<String, String>) -> Facts {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    Facts {
        userns,
        unprivileged_userns_clone: read_sysctl("/proc/sys/kernel/unprivileged_userns_clone"),
        max_user_namespaces: read_sysctl("/proc/sys/user/max_user_namespaces"),
        apparmor_restrict_userns: read_sysctl(
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        ),
        landlock: super::landlock::kernel_abi(),
        seccomp: seccomp_available(
            std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
                .ok()
                .as_deref(),
            &status,
        ),
        already_filtered: status_field(&status, "Seccomp") == Some("2"),
        root: rustix::process::geteuid().is_root(),
        pids_cgroup,
    }
}

fn read_sysctl(path: &str) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `Name:` in `/proc/self/status`.
fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
}

/// seccomp filters with errno returns: `actions_avail` lists `errno` (4.14+); older kernels only show
/// the `Seccomp:` status field (present when CONFIG_SECCOMP is on).
pub fn seccomp_available(actions_avail: Option<&str>, status: &str) -> bool {
    match actions_avail {
        Some(a) => {
            let a: Vec<&str> = a.split_whitespace().collect();
            a.contains(&"errno") && a.contains(&"allow")
        }
        None => status_field(status, "Seccomp").is_some(),
    }
}

/// In a forked child: unshare the namespaces the helper uses and mount a tmpfs in the new mount
/// namespace. Creating a user namespace alone is not enough: Ubuntu's AppArmor restriction lets
/// `unshare(CLONE_NEWUSER)` succeed and then denies every capability inside, which the mount exposes.
fn try_namespaces() -> Result<(), String> {
    const MOUNT_FAILED: i32 = 100;
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only makes raw syscalls (unshare,
    // mount, _exit) with static C strings: no allocation, no locks, async-signal-safe. It never returns
    // on success (`_exit(0)`): std sees the exec-status pipe close without an error and reports a spawn,
    // and the child's exit status 0 says the namespaces worked. An unshare errno reaches `spawn`; a
    // mount errno comes back as exit status MOUNT_FAILED + errno.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(flags) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::mount(
                c"palisade-probe".as_ptr(),
                c"/".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            ) != 0
            {
                // Report the errno through the exit status: no allocation after fork.
                libc::_exit(MOUNT_FAILED + *libc::__errno_location());
            }
            libc::_exit(0)
        });
    }
    match cmd.spawn() {
        Ok(mut child) => match child.wait() {
            Ok(st) if st.success() => Ok(()),
            Ok(st) => Err(match st.code() {
                Some(c) if c > MOUNT_FAILED => format!(
                    "namespaces created but mounting inside them failed: {}",
                    std::io::Error::from_raw_os_error(c - MOUNT_FAILED)
                ),
                _ => format!("namespace probe child: {st}"),
            }),
            Err(e) => Err(format!("namespace probe child: {e}")),
        },
        Err(e) => Err(e.to_string()),
    }
}

impl Tier {
    /// 1, 2 or 3.
    pub fn number(self) -> u8 {
        match self {
            Tier::One => 1,
            Tier::Two => 2,
            Tier::Three => 3,
        }
    }
}

impl Probe {
    /// One readable block for `palisade doctor`.
    pub fn render(&self) -> String {
        let tier = match self.tier {
            Tier::One => "1 (full sandbox: namespaces + Landlock + seccomp + limits)",
            Tier::Two => "2 (DEGRADED: Landlock + seccomp + limits, no namespaces)",
            Tier::Three => "3 (NO SANDBOX: servers refused unless trusted as unsandboxed)",
        };
        let mut s = format!("sandbox tier:    {tier}\n");
        s += &format!(
            "user namespaces: {}\n",
            match &self.userns {
                Ok(()) => "yes".to_string(),
                Err(e) => format!("no ({e})"),
            }
        );
        s += &format!(
            "Landlock:        {}\n",
            match (&self.facts.landlock, self.landlock_abi) {
                (_, Some(a)) => format!("ABI {a}"),
                (Err(e), _) => format!("no ({e})"),
                _ => "no".into(),
            }
        );
        s += &format!(
            "seccomp:         {}\n",
            if self.seccomp { "yes" } else { "no" }
        );
        s += &format!(
            "running as:      {}\n",
            if self.facts.root {
                "root"
            } else {
                "unprivileged user"
            }
        );
        s += "why:\n";
        for r in &self.reasons {
            s += &format!("  - {r}\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(userns: bool, landlock: Option<i32>, seccomp: bool) -> Facts {
        Facts {
            userns: if userns {
                Ok(())
            } else {
                Err("Operation not permitted (os error 1)".into())
            },
            unprivileged_userns_clone: None,
            max_user_namespaces: None,
            apparmor_restrict_userns: None,
            landlock: landlock.ok_or_else(|| "Landlock is not in this kernel".to_string()),
            seccomp,
            already_filtered: false,
            root: false,
            pids_cgroup: Ok(String::new()),
        }
    }

    #[test]
    fn tier_for_every_combination() {
        use Tier::*;
        let cases = [
            // userns, landlock, seccomp => tier
            (true, Some(7), true, One),
            (true, Some(1), true, One),
            (true, None, true, Three),
            (true, Some(7), false, Three),
            (false, Some(7), true, Two),
            (false, Some(4), true, Two),
            (false, Some(3), true, Three),
            (false, Some(1), true, Three),
            (false, None, true, Three),
            (false, Some(7), false, Three),
            (false, None, false, Three),
            (true, None, false, Three),
        ];
        for (u, l, s, want) in cases {
            let (tier, reasons) = decide_tier(&facts(u, l, s));
            assert_eq!(
                tier, want,
                "userns={u} landlock={l:?} seccomp={s}: {reasons:?}"
            );
            assert!(!reasons.is_empty());
        }
    }

    #[test]
    fn reasons_name_the_cause() {
        let mut f = facts(false, Some(7), true);
        f.apparmor_restrict_userns = Some(1);
        let (_, r) = decide_tier(&f);
        assert!(r.iter().any(|r| r.contains("AppArmor")), "{r:?}");
        assert!(r.iter().any(|r| r.contains("unix sockets")), "{r:?}");
        let (_, r) = decide_tier(&facts(false, Some(3), true));
        assert!(r.iter().any(|r| r.contains("ABI 4")), "{r:?}");
        let (_, r) = decide_tier(&facts(true, Some(5), true));
        assert!(r.iter().any(|r| r.contains("scopes")), "{r:?}");
        let (_, r) = decide_tier(&facts(true, None, true));
        assert!(r.iter().any(|r| r.contains("fails closed")), "{r:?}");
        // Landlock reported but 0: treated as absent.
        let mut f = facts(true, None, true);
        f.landlock = Ok(0);
        assert_eq!(decide_tier(&f).0, Tier::Three);
    }

    #[test]
    fn root_without_a_pids_cgroup_is_reported() {
        let mut f = facts(true, Some(7), true);
        f.root = true;
        f.pids_cgroup = Err("no pids cgroup".into());
        let (_, r) = decide_tier(&f);
        assert!(
            r.iter()
                .any(|r| r.contains("process limit not enforceable for root: no pids cgroup")),
            "{r:?}"
        );
        f.pids_cgroup = Ok("cgroup v1 /sys/fs/cgroup/pids".into());
        let (_, r) = decide_tier(&f);
        assert!(
            r.iter().any(|r| r.contains("pids cgroup per server")),
            "{r:?}"
        );
    }

    #[test]
    fn seccomp_detection() {
        assert!(seccomp_available(
            Some("kill_process kill_thread trap errno user_notif trace log allow\n"),
            ""
        ));
        assert!(!seccomp_available(Some("kill_process allow"), ""));
        assert!(seccomp_available(None, "Name:\tx\nSeccomp:\t0\n"));
        assert!(!seccomp_available(None, "Name:\tx\n"));
        assert_eq!(
            status_field("Seccomp:\t2\nSeccomp_filters:\t1\n", "Seccomp"),
            Some("2")
        );
    }

    #[test]
    fn this_machine_is_tier_one() {
        // TESTING.md: Linux 6.18, Landlock ABI 7, seccomp, user namespaces for root and users.
        let p = probe();
        assert_eq!(p.tier, Tier::One, "{}", p.render());
        assert_eq!(p.landlock_abi, kernel_abi_for_test());
        assert!(p.render().contains("sandbox tier:    1"));
    }

    #[test]
    fn a_degraded_machine_reads_as_degraded() {
        let mut f = facts(false, Some(7), true);
        f.apparmor_restrict_userns = Some(1);
        let (tier, reasons) = decide_tier(&f);
        let p = Probe {
            tier,
            userns: f.userns.clone(),
            landlock_abi: Some(7),
            seccomp: true,
            reasons,
            facts: f,
        };
        let text = p.render();
        assert!(text.starts_with("sandbox tier:    2 (DEGRADED"), "{text}");
        assert!(
            text.contains("user namespaces: no (Operation not permitted"),
            "{text}"
        );
        assert!(text.contains("AppArmor"), "{text}");
    }

    #[test]
    fn sysctls_that_switch_user_namespaces_off_rule_out_tier_1() {
        let mut f = facts(true, Some(7), true);
        assert_eq!(userns_sysctls(&f), Ok(()));
        f.apparmor_restrict_userns = Some(1);
        assert!(userns_sysctls(&f).unwrap_err().contains("apparmor"));
        // Root is not subject to the unprivileged switches…
        f.root = true;
        assert_eq!(userns_sysctls(&f), Ok(()));
        f.unprivileged_userns_clone = Some(0);
        assert_eq!(userns_sysctls(&f), Ok(()));
        // …but nobody gets a namespace when the count is 0.
        f.max_user_namespaces = Some(0);
        assert!(
            userns_sysctls(&f)
                .unwrap_err()
                .contains("max_user_namespaces")
        );
    }

    fn kernel_abi_for_test() -> Option<i32> {
        crate::linux::landlock::kernel_abi().ok()
    }
}
