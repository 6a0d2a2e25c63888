//! A pids cgroup per sandbox, the process limit for root.
//!
//! `RLIMIT_NPROC` is never enforced for host root, so when palisade runs as root each sandbox gets a cgroup
//! of its own under the pids controller with `pids.max` = the spec's process limit. palisade creates it
//! ([`create`]) and passes its join file ([`join_file`]) in the spec; the helper writes `0` (itself) there
//! before it unshares or forks anything, so every process and thread of the sandbox is counted. palisade
//! removes the directory once the server has exited ([`crate::CgroupDir::remove`]).
//!
//! # Joining costs a grace period, unless it is a thread move
//! Moving a *process* (`cgroup.procs`) takes the global `cgroup_threadgroup_rwsem` for writing, which waits
//! for an RCU grace period whenever no other migration happened in the last few milliseconds: 5–18 ms
//! measured on this 2-vCPU VM, the largest single cost of a sandboxed spawn as root. Moving the *calling
//! thread* (cgroup v1's `tasks`, value `0`) skips that lock (the kernel only needs it to keep a whole
//! thread group stable) and takes ≈ 0.25 ms. The helper is single-threaded, so moving its only thread
//! moves the process, and it joins before creating any other task. cgroup2 only moves threads within a
//! threaded subtree, so there the helper writes `cgroup.procs` and pays the grace period.
//!
//! Where: cgroup2 when its root lists `pids` in `cgroup.controllers` (palisade enables it in
//! `cgroup.subtree_control` of the root and of `palisade/`), else the cgroup v1 `pids` hierarchy; the
//! cgroup is `<hierarchy>/palisade/<palisade-pid>-<n>`. A `kill -9` of palisade leaves an empty directory
//! behind; the next [`create`] removes those whose palisade is gone.
//!
//! Without a usable pids controller, root cannot be limited: [`create`] fails and the launcher refuses to
//! start (fail closed); `palisade doctor` says so ([`check`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A pids controller palisade can create cgroups under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// The directory under which `palisade/` is made (a hierarchy's mount point).
    pub root: PathBuf,
    /// cgroup2 (`true`) or the v1 `pids` hierarchy.
    pub v2: bool,
}

/// Finds the pids controller from `/proc/self/mountinfo`: cgroup2 if `pids` is available there, else v1.
pub fn find() -> Result<Controller, String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    let (v2, v1) = parse_mountinfo(&info);
    for root in v2 {
        let controllers =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "pids") {
            return Ok(Controller { root, v2: true });
        }
    }
    v1.into_iter()
        .next()
        .map(|root| Controller { root, v2: false })
        .ok_or_else(|| {
            "no pids cgroup (neither a cgroup v1 `pids` hierarchy nor cgroup2 with `pids` in \
             cgroup.controllers)"
                .to_owned()
        })
}

/// Mount points of cgroup2 hierarchies and of cgroup v1 hierarchies with the `pids` controller.
pub fn parse_mountinfo(info: &str) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut v2 = Vec::new();
    let mut v1 = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split(' ').nth(4) else {
            continue;
        };
        let mut r = right.split(' ');
        let (Some(fstype), Some(_source), Some(opts)) = (r.next(), r.next(), r.next()) else {
            continue;
        };
        let mp = PathBuf::from(mount_point.replace("\\040", " "));
        match fstype {
            "cgroup2" => v2.push(mp),
            "cgroup" if opts.split(',').any(|o| o == "pids") => v1.push(mp),
            _ => {}
        }
    }
    (v2, v1)
}

/// Makes `palisade/` under the controller (and enables `pids` for it on cgroup2); returns its path.
fn parent(c: &Controller) -> Result<PathBuf, String> {
    let dir = c.root.join("palisade");
    if c.v2 {
        enable_pids(&c.root)?;
    }
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("mkdir {}: {e}", dir.display())),
    }
    if c.v2 {
        enable_pids(&dir)?;
    }
    Ok(dir)
}

fn enable_pids(dir: &Path) -> Result<(), String> {
    let file = dir.join("cgroup.subtree_control");
    let now = std::fs::read_to_string(&file).unwrap_or_default();
    if now.split_whitespace().any(|c| c == "pids") {
        return Ok(());
    }
    std::fs::write(&file, "+pids").map_err(|e| format!("enable pids in {}: {e}", file.display()))
}

/// Removes `<pid>-<n>` cgroups of palisade processes that no longer exist (left by `kill -9`). Only empty
/// cgroups can be removed; errors are ignored.
fn remove_stale(parent: &Path) {
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split_once('-'))
            .and_then(|(p, _)| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// The file through which the helper joins the cgroup `dir` by writing `0`: the v1 `tasks` file (a move of
/// the calling thread alone: no grace period, see the module docs) when it exists, else (cgroup2)
/// `cgroup.procs`.
pub fn join_file(dir: &Path) -> PathBuf {
    let tasks = dir.join("tasks");
    if tasks.is_file() {
        tasks
    } else {
        dir.join("cgroup.procs")
    }
}

/// Creates a fresh pids cgroup with `pids.max` = `max` for one sandbox; returns its directory.
pub fn create(max: u64) -> Result<PathBuf, String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let c = find()?;
    let parent = parent(&c)?;
    remove_stale(&parent);
    let me = std::process::id();
    for _ in 0..1000 {
        let dir = parent.join(format!("{me}-{}", N.fetch_add(1, Ordering::Relaxed)));
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("mkdir {}: {e}", dir.display())),
        }
        if let Err(e) = std::fs::write(dir.join("pids.max"), max.to_string()) {
            let _ = std::fs::remove_dir(&dir);
            return Err(format!("write {}/pids.max: {e}", dir.display()));
        }
        return Ok(dir);
    }
    Err(format!("no free cgroup name under {}", parent.display()))
}

/// Whether [`create`] would work here: creates and removes a probe cgroup. For `palisade doctor`.
pub fn check() -> Result<String, String> {
    let dir = create(1)?;
    let _ = std::fs::remove_dir(&dir);
    let c = find()?;
    Ok(format!(
        "{} {}",
        if c.v2 { "cgroup2" } else { "cgroup v1" },
        c.root.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_finds_v1_pids_and_v2() {
        let info = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
35 30 0:31 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
36 30 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
";
        let (v2, v1) = parse_mountinfo(info);
        assert_eq!(v2, [PathBuf::from("/sys/fs/cgroup/unified")]);
        assert_eq!(v1, [PathBuf::from("/sys/fs/cgroup/pids")]);
    }

    #[test]
    fn root_gets_a_pids_cgroup_with_the_limit() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        // This CI: root with a writable pids hierarchy (TESTING.md).
        let dir = create(7).expect("pids cgroup as root");
        assert_eq!(
            std::fs::read_to_string(dir.join("pids.max"))
                .unwrap()
                .trim(),
            "7"
        );
        assert!(dir.join("cgroup.procs").exists());
        std::fs::remove_dir(&dir).unwrap();
        assert!(check().is_ok());
    }
}
