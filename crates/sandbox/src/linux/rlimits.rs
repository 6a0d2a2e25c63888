//! Resource limits for the server process (`setrlimit`), applied first in [`super::harden`].
//!
//! Each requested limit becomes both the soft and the hard limit, so the server cannot raise it back. A
//! limit above the current hard limit cannot be granted by an unprivileged process: it is clamped to the
//! hard limit (a note says so) rather than failing, since a lower limit is never less safe.
//!
//! `RLIMIT_NPROC` counts the processes of the server's *host* user, and the kernel never enforces it for
//! host root (`INIT_USER`, as well as CAP_SYS_RESOURCE/CAP_SYS_ADMIN in the initial namespace): a server
//! whose uid maps to host root is not bounded by it. Without a user namespace (tier 2) it also counts the
//! user's other processes.
//!
//! Decided in [`plan`] (pure), applied in [`apply`].

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::spec::Rlimits;

/// One `setrlimit` call to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Which limit.
    pub resource: Resource,
    /// Its name, for messages (`RLIMIT_AS`).
    pub name: &'static str,
    /// Soft and hard value (`None` = unlimited).
    pub value: Option<u64>,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RlimitReport {
    /// `RLIMIT_X=value` for every limit set.
    pub set: Vec<String>,
    /// Limits that were clamped to the inherited hard limit.
    pub notes: Vec<String>,
}

/// Decides the limits to set, given the current hard limit of each resource (`None` = unlimited).
/// Returns the settings and a note for each request clamped to the hard limit.
pub fn plan(r: &Rlimits, hard: impl Fn(Resource) -> Option<u64>) -> (Vec<Setting>, Vec<String>) {
    let wanted = [
        (Resource::As, "RLIMIT_AS", r.address_space),
        (Resource::Nproc, "RLIMIT_NPROC", r.processes),
        (Resource::Nofile, "RLIMIT_NOFILE", r.open_files),
        (Resource::Fsize, "RLIMIT_FSIZE", r.file_size),
        (Resource::Core, "RLIMIT_CORE", Some(r.core)),
    ];
    let mut settings = Vec::new();
    let mut notes = Vec::new();
    for (resource, name, want) in wanted {
        let Some(want) = want else { continue };
        let value = match hard(resource) {
            Some(h) if want > h => {
                notes.push(format!(
                    "{name}: asked for {want}, the inherited hard limit is {h}: using {h}"
                ));
                h
            }
            _ => want,
        };
        settings.push(Setting {
            resource,
            name,
            value: Some(value),
        });
    }
    (settings, notes)
}

/// Sets the limits of `r` on the calling process (soft = hard, clamped to the current hard limits).
pub fn apply(r: &Rlimits) -> Result<RlimitReport, String> {
    let (settings, notes) = plan(r, |res| getrlimit(res).maximum);
    let mut set = Vec::with_capacity(settings.len());
    for s in settings {
        setrlimit(
            s.resource,
            Rlimit {
                current: s.value,
                maximum: s.value,
            },
        )
        .map_err(|e| format!("setrlimit({}, {:?}): {e}", s.name, s.value))?;
        set.push(format!(
            "{}={}",
            s.name,
            s.value.map_or("unlimited".into(), |v| v.to_string())
        ));
    }
    Ok(RlimitReport { set, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_requested_limit_is_set_and_core_is_always_zero() {
        let r = Rlimits {
            address_space: Some(1 << 30),
            processes: None,
            open_files: Some(64),
            file_size: Some(1 << 20),
            core: 0,
        };
        let (s, notes) = plan(&r, |_| None);
        assert!(notes.is_empty());
        let got: Vec<_> = s.iter().map(|s| (s.name, s.value)).collect();
        assert_eq!(
            got,
            [
                ("RLIMIT_AS", Some(1 << 30)),
                ("RLIMIT_NOFILE", Some(64)),
                ("RLIMIT_FSIZE", Some(1 << 20)),
                ("RLIMIT_CORE", Some(0)),
            ]
        );
    }

    #[test]
    fn a_limit_above_the_hard_limit_is_clamped_with_a_note() {
        let r = Rlimits {
            open_files: Some(1 << 20),
            ..Rlimits::default()
        };
        let (s, notes) = plan(&r, |res| (res == Resource::Nofile).then_some(4096));
        let nofile = s.iter().find(|s| s.name == "RLIMIT_NOFILE").unwrap();
        assert_eq!(nofile.value, Some(4096));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("RLIMIT_NOFILE"), "{notes:?}");
    }

    #[test]
    fn probe_child_rlimits() {
        // Re-exec target (see harden::test_probe): only acts in the child process.
        if std::env::var("PALISADE_TEST_PROBE").as_deref() != Ok("rlimits") {
            return;
        }
        let r = Rlimits {
            open_files: Some(32),
            ..Rlimits::default()
        };
        let report = apply(&r).unwrap();
        let nofile = getrlimit(Resource::Nofile);
        let core = getrlimit(Resource::Core);
        // Raising the hard limit back must fail.
        let raise = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(64),
                maximum: Some(64),
            },
        );
        println!(
            "PROBE nofile={:?}/{:?} core={:?} raise_ok={} set={}",
            nofile.current,
            nofile.maximum,
            core.maximum,
            raise.is_ok(),
            report.set.len()
        );
        std::process::exit(0);
    }

    #[test]
    fn limits_are_applied_and_cannot_be_raised_again() {
        let out = crate::linux::harden::test_probe::run(
            "linux::rlimits::tests::probe_child_rlimits",
            "rlimits",
        );
        // Only CAP_SYS_RESOURCE (bit 24) may raise a hard limit again (this CI's root lacks it).
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let cap_eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap();
        let can_raise = cap_eff & (1 << 24) != 0;
        let expected =
            format!("PROBE nofile=Some(32)/Some(32) core=Some(0) raise_ok={can_raise} set=5");
        assert!(out.contains(&expected), "{out}");
    }
}
