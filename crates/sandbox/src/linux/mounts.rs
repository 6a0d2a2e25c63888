//! Builds the sandbox's filesystem view inside a fresh mount namespace and makes it the root.
//!
//! Runs in the helper's PID 1 (single-threaded, inside the new user, mount and PID namespaces). The steps,
//! in order ([`build`]):
//! 1. mount propagation private (`MS_REC|MS_PRIVATE` on `/`): nothing we do leaks back to the host;
//! 2. without `mount_setattr`: the host's mount points are read once from `/proc/self/mountinfo` (to
//!    re-protect submounts of binds);
//! 3. a scratch tmpfs on `/tmp` becomes the root (`pivot_root`), the host root moves to `/oldroot`: bind
//!    sources are read from there, so mounting over `/tmp` hides nothing (bubblewrap's layout);
//! 4. the new root is a tmpfs at `/newroot`; each [`Mount`] of the spec is created in it, in order;
//! 5. the new root is remounted read-only, then `pivot_root(".", ".")` + `umount2(".", MNT_DETACH)` drops
//!    the scratch root and the whole host tree.
//!
//! # The locked-flags trap
//! In a user namespace, the flags of mounts inherited from the host (`nosuid`, `nodev`, `noexec`,
//! `ro`, the atime mode) are locked: a bind remount that would clear one fails with `EPERM`. So every
//! remount adds the flags `statvfs` reports for that mount to the ones we want.
//!
//! # One call per protected bind
//! Where the kernel has `mount_setattr(2)` (Linux 5.12), a bind is protected with one call that only
//! *adds* flags (so locked ones stay, without a `statvfs`), and with `AT_RECURSIVE` it covers every
//! submount the bind brought along in the same call, whatever the host mounted there. Otherwise each
//! mount is remounted with `MS_REMOUNT | MS_BIND`, and the submounts are found in the host's
//! `/proc/self/mountinfo` (read once, step 2).
//!
//! `/proc` is mounted while the host tree is still attached: the kernel only lets a user namespace mount a
//! procfs when a fully visible one already exists in the mount namespace.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::spec::{Mount, SandboxSpec};

/// Device nodes bound from the host into the sandbox's `/dev`.
pub const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

const SCRATCH: &str = "/tmp";
const OLD: &str = "/oldroot";
const NEW: &str = "/newroot";

/// A failed step: which one, and the error.
#[derive(Debug)]
pub struct MountError {
    /// The step, e.g. `bind /usr`.
    pub stage: String,
    /// The error.
    pub error: io::Error,
}

fn at<T>(stage: impl FnOnce() -> String, r: io::Result<T>) -> Result<T, MountError> {
    r.map_err(|error| MountError {
        stage: stage(),
        error,
    })
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `mount(2)`.
fn mount(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let src = src.map(cstr).transpose()?;
    let target = cstr(target)?;
    let fstype = fstype
        .map(CString::new)
        .transpose()
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let data = data
        .map(CString::new)
        .transpose()
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is either null or a NUL-terminated string that outlives the call.
    let r = unsafe {
        libc::mount(
            ptr(&src),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The flags a bind remount must keep because they may be locked: those `statvfs` reports for `path`.
fn locked_flags(path: &Path) -> io::Result<libc::c_ulong> {
    use rustix::fs::StatVfsMountFlags as F;
    let f = rustix::fs::statvfs(path)?.f_flag;
    let mut out = 0;
    for (have, flag) in [
        (F::RDONLY, libc::MS_RDONLY),
        (F::NOSUID, libc::MS_NOSUID),
        (F::NODEV, libc::MS_NODEV),
        (F::NOEXEC, libc::MS_NOEXEC),
        (F::NOATIME, libc::MS_NOATIME),
        (F::NODIRATIME, libc::MS_NODIRATIME),
        (F::RELATIME, libc::MS_RELATIME),
    ] {
        if f.contains(have) {
            out |= flag;
        }
    }
    Ok(out)
}

/// Remounts the bind at `path` with `flags` added to its locked ones.
fn remount(path: &Path, flags: libc::c_ulong) -> io::Result<()> {
    let keep = locked_flags(path)?;
    mount(
        None,
        path,
        None,
        libc::MS_REMOUNT | libc::MS_BIND | flags | keep,
        None,
    )
}

/// `struct mount_attr` of `mount_setattr(2)` (`MOUNT_ATTR_SIZE_VER0`).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// `mount_setattr(2)` on `path` (with `AT_RECURSIVE` when `recursive`): adds `set` (`MOUNT_ATTR_*`), and
/// sets the propagation type when `propagation` is not 0. Nothing is cleared.
fn setattr(path: &Path, set: u64, propagation: u64, recursive: bool) -> io::Result<()> {
    let path = cstr(path)?;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `path` is NUL-terminated and `attr` a valid `mount_attr` of the size passed; both outlive
    // the call, which only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The `MOUNT_ATTR_*` flags for the `MS_*` flags used here.
fn attr_flags(ms: libc::c_ulong) -> u64 {
    [
        (libc::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
    ]
    .into_iter()
    .filter(|(m, _)| ms & m != 0)
    .fold(0, |acc, (_, a)| acc | a)
}

/// How binds are re-protected: `mount_setattr`, or remounts with the host's mount points at hand.
#[derive(Debug)]
enum Protect {
    /// `mount_setattr(2)`, recursive where it should be.
    Setattr,
    /// `MS_REMOUNT | MS_BIND` one mount at a time; the host's mount points, for the submounts of binds.
    Remount(Vec<PathBuf>),
}

impl Protect {
    /// Adds `flags` (`MS_RDONLY`, `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC`) to the mount at `path` only.
    fn one(&self, path: &Path, flags: libc::c_ulong) -> io::Result<()> {
        match self {
            Protect::Setattr => setattr(path, attr_flags(flags), 0, false),
            Protect::Remount(_) => remount(path, flags),
        }
    }
}

/// Host mount points, from `/proc/self/mountinfo` (field 5, octal escapes decoded).
fn host_mount_points() -> io::Result<Vec<PathBuf>> {
    let text = std::fs::read("/proc/self/mountinfo")?;
    Ok(text
        .split(|b| *b == b'\n')
        .filter_map(|line| line.split(|b| *b == b' ').nth(4))
        .map(|field| PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(field))))
        .collect())
}

fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 3 < s.len()
            && s[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((s[i + 1] - b'0') * 64 + (s[i + 2] - b'0') * 8 + (s[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// `base` + absolute `p`.
fn under(base: &str, p: &Path) -> PathBuf {
    Path::new(base).join(p.strip_prefix("/").unwrap_or(p))
}

fn mkdir_p(p: &Path, mode: u32) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(p)
}

/// The parent directory of the last mount point made, known to exist: consecutive mounts of the (sorted)
/// spec mostly share one (`/etc/*`, `/dev/*`), and each `mkdir -p` of it costs two syscalls.
#[derive(Debug, Default)]
struct Parents {
    last: Option<PathBuf>,
}

impl Parents {
    /// `mkdir -p parent`, unless it was the last one made.
    fn ensure(&mut self, parent: &Path) -> io::Result<()> {
        if self.last.as_deref() != Some(parent) {
            mkdir_p(parent, 0o755)?;
            self.last = Some(parent.to_path_buf());
        }
        Ok(())
    }

    /// Something was mounted at `target`: a remembered directory below it is hidden now.
    fn mounted(&mut self, target: &Path) {
        if self
            .last
            .as_deref()
            .is_some_and(|l| l.starts_with(target) && l != target)
        {
            self.last = None;
        }
    }
}

/// Creates an empty mount point at `dst` for a source that is a directory or not (an existing one is
/// kept).
fn mount_point(dst: &Path, dir: bool, parents: &mut Parents) -> io::Result<()> {
    if let Some(parent) = dst.parent() {
        parents.ensure(parent)?;
    }
    let made = if dir {
        std::fs::DirBuilder::new().mode(0o755).create(dst)
    } else {
        // One syscall for an empty file (an open and a close with `File::create`).
        use rustix::fs::{CWD, FileType, Mode, mknodat};
        mknodat(CWD, dst, FileType::RegularFile, Mode::from(0o644), 0).map_err(io::Error::from)
    };
    match made {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// Builds the spec's filesystem view and pivots into it. Afterwards the cwd is `/`.
pub fn build(spec: &SandboxSpec) -> Result<(), MountError> {
    // `mount_setattr` making everything private is also the probe for it.
    let protect = match setattr(Path::new("/"), 0, libc::MS_PRIVATE, true) {
        Ok(()) => Protect::Setattr,
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            at(
                || "make mounts private".into(),
                mount(
                    None,
                    Path::new("/"),
                    None,
                    libc::MS_REC | libc::MS_PRIVATE,
                    None,
                ),
            )?;
            Protect::Remount(at(|| "read mountinfo".into(), host_mount_points())?)
        }
        Err(e) => {
            return Err(MountError {
                stage: "make mounts private".into(),
                error: e,
            });
        }
    };

    at(
        || "scratch tmpfs".into(),
        mount(
            Some(Path::new("tmpfs")),
            Path::new(SCRATCH),
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some("mode=0700,size=1m"),
        ),
    )?;
    at(|| "scratch root".into(), {
        std::env::set_current_dir(SCRATCH)
            .and_then(|()| mkdir_p(Path::new("oldroot"), 0o700))
            .and_then(|()| mkdir_p(Path::new("newroot"), 0o755))
            .and_then(|()| rustix::process::pivot_root(".", "oldroot").map_err(io::Error::from))
            .and_then(|()| std::env::set_current_dir("/"))
    })?;
    at(
        || "root tmpfs".into(),
        mount(
            Some(Path::new("tmpfs")),
            Path::new(NEW),
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some("mode=0755,size=4m"),
        ),
    )?;

    let mut parents = Parents::default();
    for m in &spec.mounts {
        apply(m, &protect, &mut parents)?;
    }

    // The root only: the binds below keep their own flags (a read-write root is one of them).
    at(
        || "read-only root".into(),
        protect.one(
            Path::new(NEW),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
        ),
    )?;
    at(|| "pivot_root".into(), {
        std::env::set_current_dir(NEW)
            .and_then(|()| rustix::process::pivot_root(".", ".").map_err(io::Error::from))
            .and_then(|()| {
                // SAFETY: a NUL-terminated constant path.
                let r = unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) };
                if r == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            })
            .and_then(|()| std::env::set_current_dir("/"))
    })
}

/// Creates one mount of the spec under `/newroot`.
fn apply(m: &Mount, protect: &Protect, parents: &mut Parents) -> Result<(), MountError> {
    let target = under(NEW, m.dst());
    parents.mounted(&target);
    match m {
        Mount::RoBind { src, dst } => bind(src, dst, true, protect, parents),
        Mount::RwBind { src, dst } => bind(src, dst, false, protect, parents),
        Mount::Tmpfs { dst, size } => {
            let mode = if dst == Path::new("/tmp") {
                "1777"
            } else {
                "0700"
            };
            at(
                || format!("tmpfs {}", dst.display()),
                mkdir_p(&target, 0o755).and_then(|()| {
                    mount(
                        Some(Path::new("tmpfs")),
                        &target,
                        Some("tmpfs"),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        Some(&format!("mode={mode},size={size}")),
                    )
                }),
            )
        }
        Mount::Symlink { dst, target } => {
            let link = under(NEW, dst);
            at(|| format!("symlink {}", dst.display()), {
                link.parent()
                    .map_or(Ok(()), |p| parents.ensure(p))
                    .and_then(|()| std::os::unix::fs::symlink(target, &link))
            })
        }
        Mount::Proc => at(
            || "mount /proc".into(),
            mkdir_p(&target, 0o755).and_then(|()| {
                mount(
                    Some(Path::new("proc")),
                    &target,
                    Some("proc"),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    None,
                )
            }),
        ),
        Mount::Dev => dev(protect, parents),
    }
}

/// Binds host `src` at `dst` (recursively) and re-protects it and every submount: read-only when `ro`,
/// always nosuid and nodev.
fn bind(
    src: &Path,
    dst: &Path,
    ro: bool,
    protect: &Protect,
    parents: &mut Parents,
) -> Result<(), MountError> {
    let what = || format!("bind {}", dst.display());
    let source = under(OLD, src);
    let target = under(NEW, dst);
    let meta = at(what, std::fs::metadata(&source))?;
    at(what, mount_point(&target, meta.is_dir(), parents))?;
    at(
        what,
        mount(
            Some(&source),
            &target,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        ),
    )?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | if ro { libc::MS_RDONLY } else { 0 };
    let host_mounts = match protect {
        Protect::Setattr => {
            return at(
                || format!("protect {}", dst.display()),
                setattr(&target, attr_flags(flags), 0, true),
            );
        }
        Protect::Remount(host_mounts) => host_mounts,
    };
    at(
        || format!("remount {}", dst.display()),
        remount(&target, flags),
    )?;
    for sub in host_mounts
        .iter()
        .filter(|p| p.starts_with(src) && *p != src)
    {
        let Ok(rel) = sub.strip_prefix(src) else {
            continue;
        };
        let path = target.join(rel);
        match remount(&path, flags) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            r => at(|| format!("remount {}", dst.join(rel).display()), r)?,
        }
    }
    Ok(())
}

/// A minimal `/dev`: a tmpfs with the host's harmless nodes bound in, `/dev/shm`, and `/proc/self/fd` links.
fn dev(protect: &Protect, parents: &mut Parents) -> Result<(), MountError> {
    let dev = under(NEW, Path::new("/dev"));
    at(
        || "tmpfs /dev".into(),
        mkdir_p(&dev, 0o755).and_then(|()| {
            mount(
                Some(Path::new("tmpfs")),
                &dev,
                Some("tmpfs"),
                libc::MS_NOSUID | libc::MS_NOEXEC,
                Some("mode=0755,size=64k"),
            )
        }),
    )?;
    for node in DEV_NODES {
        let source = under(OLD, &Path::new("/dev").join(node));
        if std::fs::symlink_metadata(&source).is_err() {
            continue;
        }
        let target = dev.join(node);
        at(|| format!("bind /dev/{node}"), {
            mount_point(&target, false, parents)
                .and_then(|()| mount(Some(&source), &target, None, libc::MS_BIND, None))
                // Device nodes must keep working: nosuid and noexec, not nodev.
                .and_then(|()| protect.one(&target, libc::MS_NOSUID | libc::MS_NOEXEC))
        })?;
    }
    let shm = dev.join("shm");
    at(
        || "tmpfs /dev/shm".into(),
        mkdir_p(&shm, 0o755).and_then(|()| {
            mount(
                Some(Path::new("tmpfs")),
                &shm,
                Some("tmpfs"),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                Some("mode=1777,size=64m"),
            )
        }),
    )?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        at(
            || format!("symlink /dev/{name}"),
            std::os::unix::fs::symlink(target, dev.join(name)),
        )?;
    }
    // `/dev` itself only: `/dev/shm` stays writable.
    at(
        || "read-only /dev".into(),
        protect.one(&dev, libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NOEXEC),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape(br"/a\040b\011c\134d"), b"/a b\tc\\d");
        assert_eq!(unescape(br"/x\04"), br"/x\04");
    }

    #[test]
    fn a_remembered_parent_is_forgotten_once_something_is_mounted_above_it() {
        let mut p = Parents {
            last: Some("/newroot/etc".into()),
        };
        p.mounted(Path::new("/newroot/etc"));
        assert_eq!(p.last.as_deref(), Some(Path::new("/newroot/etc")));
        p.mounted(Path::new("/newroot/etc2"));
        assert_eq!(p.last.as_deref(), Some(Path::new("/newroot/etc")));
        p.mounted(Path::new("/newroot"));
        assert_eq!(p.last, None);
    }

    #[test]
    fn mount_flags_map_to_mount_setattr_attributes() {
        assert_eq!(
            attr_flags(libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV),
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
        );
        assert_eq!(
            attr_flags(libc::MS_NOSUID | libc::MS_NOEXEC),
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC
        );
        // Nothing else is carried over (and nothing is ever cleared).
        assert_eq!(attr_flags(libc::MS_BIND | libc::MS_REC), 0);
    }

    #[test]
    fn paths_are_placed_under_a_base() {
        assert_eq!(
            under(NEW, Path::new("/usr/lib")),
            Path::new("/newroot/usr/lib")
        );
        assert_eq!(under(OLD, Path::new("/")), Path::new("/oldroot"));
    }
}
