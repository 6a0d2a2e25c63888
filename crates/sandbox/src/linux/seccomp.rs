//! The seccomp-BPF filter installed last, just before the server is exec'd.
//!
//! # Shape
//! [`rules`] is a pure table: each [`Rule`] names a syscall, the argument checks that make it a denial, the
//! errno returned and why. [`filters`] compiles the table with `seccompiler` (pure, testable), [`apply`]
//! installs the programs. Everything not in the table is allowed: this is a deny list of kernel surface an
//! MCP server never needs, not a full allowlist (which breaks runtimes with every new syscall they adopt).
//!
//! # Errno, not kill
//! Denials return an errno (mostly `EPERM`) instead of killing the process. Runtimes probe optional
//! features and fall back when they are refused: libuv tries `io_uring_setup` and falls back to epoll,
//! glibc tries `clone3` and falls back to `clone`, Chromium-based tools try user namespaces. A kill would
//! turn each probe into a crash of a legitimate server; an errno turns a hostile attempt into a failed call.
//!
//! # Filter by arguments, not whole syscalls (DESIGN §4)
//! `sendto`/`sendmsg`/`sendmmsg`, `setsockopt`, `socket`, `ioctl`, `clone`, `unshare` and `personality` are
//! used by every runtime; only specific flags or values are denied. All argument checks compare the low
//! 32 bits (`Dword`): the kernel declares these arguments as `int`/`unsigned int` and ignores the upper
//! half, so a 64-bit comparison could be bypassed by setting bits the kernel never reads. (The namespace
//! bits of `clone`'s `unsigned long` flags are all in the low half.)
//!
//! # Several programs, installed as one
//! `seccompiler` gives one filter a single "matched" action, so the table is compiled into one program
//! per errno; each syscall/argument combination is denied by exactly one program. [`apply`] concatenates
//! them into one filter ([`merge`]: one install instead of five), each behind a binary search over the
//! syscalls it names ([`filters`]), so the kernel's per-syscall cache (syscalls whose outcome never
//! depends on arguments skip the filter) is cheap to build. Every
//! program starts with an architecture check that kills the process on a foreign ABI (i386 `int 0x80`
//! on x86_64, AArch32 on aarch64), whose syscall numbers would otherwise slip past the table. On x86_64 a
//! hand-written guard also refuses x32 syscall numbers (bit 30 set), which share the x86_64 audit arch.
#![allow(unsafe_code)] // only in the re-exec behaviour tests (raw syscalls the probes attempt)

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

/// A comparison on one syscall argument (low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The argument equals the value.
    Eq(u32),
    /// The argument differs from the value.
    Ne(u32),
    /// `arg & mask == value`.
    Masked {
        /// Bits looked at.
        mask: u32,
        /// Their required value.
        value: u32,
    },
}

/// One argument check: `args[arg] op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// Argument index (0-based).
    pub arg: u8,
    /// Comparison.
    pub op: Op,
}

/// One denial: `name` is refused with `errno` when every check holds (no checks: always).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Syscall name, for messages and tests.
    pub name: &'static str,
    /// Syscall number on the target architecture.
    pub nr: i64,
    /// All must hold for the denial to apply.
    pub when: Vec<Check>,
    /// Returned to the caller.
    pub errno: i32,
    /// Why this is denied.
    pub why: &'static str,
}

/// Variations of the filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Refuse IPv4/IPv6 sockets other than TCP streams (UDP, raw, SCTP). For tier 2, where there is no
    /// network namespace and Landlock (before ABI 9 at least) does not cover UDP: without this a server
    /// could send datagrams, including DNS queries that carry data, anywhere. In tier 1 the network
    /// namespace holds only loopback, so datagram sockets stay allowed (glibc uses them for interface
    /// ioctls and resolver probing).
    pub deny_inet_datagram: bool,
    /// Refuse `socket(AF_UNIX, …)` (not `socketpair`). For tier 2, where no mount namespace hides the
    /// host's unix sockets (`/var/run/docker.sock`, the session bus) and Landlock covers them only from ABI
    /// 9. `socketpair`, which runtimes use for their own plumbing, stays allowed.
    pub deny_unix_socket: bool,
}

// Constants named by the table, spelled out so the values are visible next to the rules.
/// `MSG_FASTOPEN`: send data with the SYN (TCP Fast Open), connecting as a side effect of `sendto`.
pub const MSG_FASTOPEN: u32 = 0x2000_0000;
/// `IPPROTO_TCP` (setsockopt level).
pub const IPPROTO_TCP: u32 = 6;
/// `TCP_FASTOPEN_CONNECT` (setsockopt option): defer the connect to the first write, as Fast Open.
pub const TCP_FASTOPEN_CONNECT: u32 = 30;
/// `TIOCSTI`: push bytes into a terminal's input queue.
pub const TIOCSTI: u32 = 0x5412;
/// `TIOCLINUX`: console subcommands, including selection paste into the input queue.
pub const TIOCLINUX: u32 = 0x541C;
/// `NETLINK_ROUTE`, the one netlink protocol allowed (interfaces and addresses: `getifaddrs`).
pub const NETLINK_ROUTE: u32 = 0;
/// Socket families allowed: `AF_UNIX`, `AF_INET`, `AF_INET6`, `AF_NETLINK`.
pub const ALLOWED_FAMILIES: [u32; 4] = [
    libc::AF_UNIX as u32,
    libc::AF_INET as u32,
    libc::AF_INET6 as u32,
    libc::AF_NETLINK as u32,
];
/// Namespace flags refused in `clone` (`CLONE_NEWTIME` is only accepted by `clone3` and `unshare`: in
/// `clone` its bit belongs to the exit signal).
pub const CLONE_NS_FLAGS: [(&str, u32); 7] = [
    ("CLONE_NEWNS", libc::CLONE_NEWNS as u32),
    ("CLONE_NEWCGROUP", libc::CLONE_NEWCGROUP as u32),
    ("CLONE_NEWUTS", libc::CLONE_NEWUTS as u32),
    ("CLONE_NEWIPC", libc::CLONE_NEWIPC as u32),
    ("CLONE_NEWUSER", libc::CLONE_NEWUSER as u32),
    ("CLONE_NEWPID", libc::CLONE_NEWPID as u32),
    ("CLONE_NEWNET", libc::CLONE_NEWNET as u32),
];
/// `CLONE_NEWTIME` (refused in `unshare`).
pub const CLONE_NEWTIME: u32 = 0x80;
/// `personality` values allowed (as Docker's default profile): `PER_LINUX`, `PER_LINUX32`, `UNAME26`
/// variants and the `0xffffffff` query.
pub const ALLOWED_PERSONALITIES: [u32; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];
/// x32 syscalls have this bit set in their number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `sys!(SYS_ptrace)` -> `("ptrace", libc::SYS_ptrace)`.
macro_rules! sys {
    ($nr:ident) => {
        (stringify!($nr).trim_start_matches("SYS_"), libc::$nr)
    };
}

/// Syscalls refused outright with `EPERM`, with the reason.
fn denied_outright() -> Vec<(&'static str, i64, &'static str)> {
    let mut v: Vec<(&'static str, i64, &'static str)> = Vec::new();
    let mut add = |list: &[(&'static str, i64)], why: &'static str| {
        v.extend(list.iter().map(|&(n, nr)| (n, nr, why)));
    };
    add(
        &[sys!(SYS_ptrace)],
        "debugging other processes: read their memory, inject code, steal secrets",
    );
    add(
        &[
            sys!(SYS_process_vm_readv),
            sys!(SYS_process_vm_writev),
            sys!(SYS_process_madvise),
            sys!(SYS_pidfd_getfd),
        ],
        "reach into another process's memory or file descriptors without ptrace",
    );
    add(
        &[
            sys!(SYS_io_uring_setup),
            sys!(SYS_io_uring_enter),
            sys!(SYS_io_uring_register),
        ],
        "io_uring performs socket, connect, sendmsg and open operations inside the kernel without the \
         corresponding syscalls, so every argument filter here would be bypassed",
    );
    add(
        &[sys!(SYS_bpf)],
        "eBPF programs: kernel attack surface, not needed by servers",
    );
    add(
        &[sys!(SYS_perf_event_open)],
        "performance counters: side channels and kernel attack surface",
    );
    add(
        &[sys!(SYS_userfaultfd)],
        "userfaultfd stalls kernel page faults at will, a staple of kernel exploit races",
    );
    add(
        &[sys!(SYS_keyctl), sys!(SYS_add_key), sys!(SYS_request_key)],
        "kernel keyrings are not namespaced and may hold the user's credentials",
    );
    add(
        &[
            sys!(SYS_mount),
            sys!(SYS_umount2),
            sys!(SYS_pivot_root),
            sys!(SYS_chroot),
            sys!(SYS_mount_setattr),
            sys!(SYS_open_tree),
            sys!(SYS_move_mount),
            sys!(SYS_fsopen),
            sys!(SYS_fsconfig),
            sys!(SYS_fsmount),
            sys!(SYS_fspick),
        ],
        "the filesystem view is final once the sandbox is built: unmounting would reveal what the \
         mounts hide, and chroot games escape path checks",
    );
    add(
        &[sys!(SYS_setns)],
        "joining other namespaces (with a leaked namespace fd) leaves the sandbox",
    );
    add(
        &[
            sys!(SYS_kexec_load),
            sys!(SYS_kexec_file_load),
            sys!(SYS_init_module),
            sys!(SYS_finit_module),
            sys!(SYS_delete_module),
            sys!(SYS_swapon),
            sys!(SYS_swapoff),
            sys!(SYS_reboot),
            sys!(SYS_acct),
            sys!(SYS_quotactl),
            sys!(SYS_quotactl_fd),
            sys!(SYS_lookup_dcookie),
        ],
        "system administration: never needed by a server",
    );
    add(
        &[sys!(SYS_name_to_handle_at), sys!(SYS_open_by_handle_at)],
        "file handles open files by inode, bypassing path-based checks (Landlock, bind mounts): the \
         'shocker' container escape",
    );
    #[cfg(target_arch = "x86_64")]
    add(
        &[sys!(SYS_iopl), sys!(SYS_ioperm), sys!(SYS_uselib)],
        "direct hardware port access and the legacy a.out loader",
    );
    v
}

/// The complete deny table for this architecture.
pub fn rules(opts: &Options) -> Vec<Rule> {
    let eperm = libc::EPERM;
    let mut out: Vec<Rule> = denied_outright()
        .into_iter()
        .map(|(name, nr, why)| Rule {
            name,
            nr,
            when: vec![],
            errno: eperm,
            why,
        })
        .collect();
    let bit = |arg: u8, b: u32| Check {
        arg,
        op: Op::Masked { mask: b, value: b },
    };

    // Namespaces: creating any would let the server build its own view (a new user namespace gives it
    // every capability there). Other clone/unshare uses (threads, CLONE_FS, ...) stay allowed.
    for (_, flag) in CLONE_NS_FLAGS {
        out.push(Rule {
            name: "clone",
            nr: libc::SYS_clone,
            when: vec![bit(0, flag)],
            errno: eperm,
            why: "new namespaces from inside the sandbox",
        });
    }
    for (_, flag) in CLONE_NS_FLAGS
        .into_iter()
        .chain([("CLONE_NEWTIME", CLONE_NEWTIME)])
    {
        out.push(Rule {
            name: "unshare",
            nr: libc::SYS_unshare,
            when: vec![bit(0, flag)],
            errno: eperm,
            why: "new namespaces from inside the sandbox",
        });
    }
    out.push(Rule {
        name: "clone3",
        nr: libc::SYS_clone3,
        when: vec![],
        errno: libc::ENOSYS,
        why: "clone3 passes its flags in a struct in memory, which seccomp cannot read, so namespace \
              flags cannot be filtered; ENOSYS makes glibc (>= 2.34), Go and others fall back to clone, \
              whose flags are filtered above",
    });

    // TCP Fast Open connects as a side effect of sending, without connect(): Landlock's ConnectTcp
    // check is not reached (measured on this kernel, DESIGN §4). The flag is meaningless for other
    // sockets, so refusing it never breaks ordinary sends.
    for (name, nr, arg) in [
        ("sendto", libc::SYS_sendto, 3),
        ("sendmsg", libc::SYS_sendmsg, 2),
        ("sendmmsg", libc::SYS_sendmmsg, 3),
    ] {
        out.push(Rule {
            name,
            nr,
            when: vec![bit(arg, MSG_FASTOPEN)],
            errno: eperm,
            why: "MSG_FASTOPEN connects without connect(), bypassing Landlock ConnectTcp",
        });
    }
    out.push(Rule {
        name: "setsockopt",
        nr: libc::SYS_setsockopt,
        when: vec![
            Check {
                arg: 1,
                op: Op::Eq(IPPROTO_TCP),
            },
            Check {
                arg: 2,
                op: Op::Eq(TCP_FASTOPEN_CONNECT),
            },
        ],
        errno: eperm,
        why: "TCP_FASTOPEN_CONNECT turns the first write into a Fast Open connect",
    });

    // Socket families: the four a server uses; the rest (AF_PACKET, AF_VSOCK, AF_BLUETOOTH, AF_ALG,
    // AF_XDP, ...) are kernel attack surface or ways around the network namespace/Landlock.
    out.push(Rule {
        name: "socket",
        nr: libc::SYS_socket,
        when: ALLOWED_FAMILIES
            .iter()
            .map(|&f| Check {
                arg: 0,
                op: Op::Ne(f),
            })
            .collect(),
        errno: libc::EAFNOSUPPORT,
        why: "socket families other than unix, inet, inet6 and netlink",
    });
    out.push(Rule {
        name: "socket",
        nr: libc::SYS_socket,
        when: vec![
            Check {
                arg: 0,
                op: Op::Eq(libc::AF_NETLINK as u32),
            },
            Check {
                arg: 2,
                op: Op::Ne(NETLINK_ROUTE),
            },
        ],
        errno: libc::EPROTONOSUPPORT,
        why: "netlink protocols other than NETLINK_ROUTE (audit, uevents, sock_diag, generic: host \
              information and kernel surface); NETLINK_ROUTE serves getifaddrs in glibc, Node and Python",
    });
    if opts.deny_inet_datagram {
        for family in [libc::AF_INET as u32, libc::AF_INET6 as u32] {
            // 10 is the obsolete SOCK_PACKET (packet capture through AF_INET).
            for ty in [libc::SOCK_DGRAM, libc::SOCK_RAW, libc::SOCK_SEQPACKET, 10] {
                out.push(Rule {
                    name: "socket",
                    nr: libc::SYS_socket,
                    when: vec![
                        Check {
                            arg: 0,
                            op: Op::Eq(family),
                        },
                        // The low 4 bits are the type; SOCK_NONBLOCK/SOCK_CLOEXEC sit above.
                        Check {
                            arg: 1,
                            op: Op::Masked {
                                mask: 0xf,
                                value: ty as u32,
                            },
                        },
                    ],
                    errno: eperm,
                    why: "tier 2: no network namespace, and Landlock does not cover UDP",
                });
            }
        }
    }

    if opts.deny_unix_socket {
        out.push(Rule {
            name: "socket",
            nr: libc::SYS_socket,
            when: vec![Check {
                arg: 0,
                op: Op::Eq(libc::AF_UNIX as u32),
            }],
            errno: eperm,
            why: "tier 2: the host's unix sockets (docker.sock, the session bus) are visible, and Landlock \
                  covers them only from ABI 9",
        });
    }

    // Terminal injection: push keystrokes into the controlling terminal's input, to be run by the
    // user's shell after the server exits.
    for cmd in [TIOCSTI, TIOCLINUX] {
        out.push(Rule {
            name: "ioctl",
            nr: libc::SYS_ioctl,
            when: vec![Check {
                arg: 1,
                op: Op::Eq(cmd),
            }],
            errno: eperm,
            why: "terminal input injection (TIOCSTI/TIOCLINUX)",
        });
    }

    out.push(Rule {
        name: "personality",
        nr: libc::SYS_personality,
        when: ALLOWED_PERSONALITIES
            .iter()
            .map(|&p| Check {
                arg: 0,
                op: Op::Ne(p),
            })
            .collect(),
        errno: eperm,
        why: "ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC and friends weaken exploit mitigations of children",
    });
    out
}

/// The architecture the filter is compiled for.
pub fn target_arch() -> Result<TargetArch, String> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(TargetArch::aarch64)
    } else {
        Err(format!(
            "seccomp filter: unsupported architecture {}",
            std::env::consts::ARCH
        ))
    }
}

fn condition(c: &Check) -> Result<SeccompCondition, String> {
    let (op, value) = match c.op {
        Op::Eq(v) => (SeccompCmpOp::Eq, v),
        Op::Ne(v) => (SeccompCmpOp::Ne, v),
        Op::Masked { mask, value } => (SeccompCmpOp::MaskedEq(u64::from(mask)), value),
    };
    SeccompCondition::new(c.arg, SeccompCmpArgLen::Dword, op, u64::from(value))
        .map_err(|e| format!("seccomp condition {c:?}: {e}"))
}

/// Compiles the table into BPF programs (one per errno, plus the x32 guard on x86_64). Pure.
pub fn filters(opts: &Options) -> Result<Vec<BpfProgram>, String> {
    let arch = target_arch()?;
    // errno -> syscall -> rules (OR-ed); a rule without checks denies the syscall outright.
    let mut by_errno: BTreeMap<i32, BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
    let table = rules(opts);
    for r in &table {
        // seccompiler: an empty chain matches the syscall unconditionally, so an unconditional rule
        // cannot share a program with conditional rules for the same syscall.
        let mixed = table
            .iter()
            .any(|o| o.errno == r.errno && o.nr == r.nr && o.when.is_empty() != r.when.is_empty());
        if mixed {
            return Err(format!(
                "seccomp table: {} mixes unconditional and conditional rules for one errno",
                r.name
            ));
        }
        let chain = by_errno
            .entry(r.errno)
            .or_default()
            .entry(r.nr)
            .or_default();
        if r.when.is_empty() {
            continue;
        }
        let conds = r
            .when
            .iter()
            .map(condition)
            .collect::<Result<Vec<_>, _>>()?;
        chain.push(SeccompRule::new(conds).map_err(|e| format!("seccomp rule {}: {e}", r.name))?);
    }
    let mut progs = Vec::new();
    if arch == TargetArch::x86_64 {
        progs.push(x32_guard());
    }
    for (errno, rules) in by_errno {
        let nrs: Vec<u32> = rules.keys().map(|&nr| nr as u32).collect();
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(errno as u32),
            arch,
        )
        .map_err(|e| format!("seccomp filter: {e}"))?;
        let prog = BpfProgram::try_from(filter).map_err(|e| format!("seccomp compile: {e}"))?;
        progs.push(with_dispatch(prog, audit_arch(arch), &nrs));
    }
    Ok(progs)
}

/// The `AUDIT_ARCH_*` value `seccomp_data.arch` holds for native syscalls of `arch`.
fn audit_arch(arch: TargetArch) -> u32 {
    match arch {
        TargetArch::x86_64 => 0xC000_003E,
        TargetArch::aarch64 => 0xC000_00B7,
        TargetArch::riscv64 => 0xC000_00F3,
    }
}

// Classic BPF opcodes used by the hand-written parts of the filters.
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// A jump target of the dispatch prologue, resolved once its length is known.
#[derive(Debug, Clone, Copy)]
enum To {
    /// Skip this many instructions (0: the next one).
    Skip(usize),
    /// The compiled program, which decides.
    Program,
    /// `SECCOMP_RET_ALLOW`.
    Allow,
}

/// Puts a binary search over `nrs` (the syscalls `prog` has rules for) in front of `prog`: a native
/// syscall not in `nrs` is allowed after ≈ log2(n) comparisons, anything else (a syscall of the list, a
/// foreign architecture) runs `prog` unchanged, whose own architecture check and rules decide.
///
/// Why: `seccompiler` emits one comparison per syscall in a row, and when a filter is installed the kernel
/// evaluates it for every syscall number to precompute which ones are always allowed (the filter's
/// action cache). For the ≈ 50-syscall `EPERM` program that walk made its installation cost ≈ 170 µs
/// of each sandboxed spawn's critical path. Decisions are identical by construction: every path either
/// allows a native syscall the program has no rule for (as the program itself would, its default being
/// allow) or continues into the program; the tests check it against the program alone with a BPF
/// interpreter. `prog` is returned unchanged if the prologue would not fit the 8-bit jump offsets.
fn with_dispatch(prog: BpfProgram, arch: u32, nrs: &[u32]) -> BpfProgram {
    fn search(nrs: &[u32]) -> Vec<(u16, u32, To, To)> {
        if nrs.len() <= 4 {
            return nrs
                .iter()
                .enumerate()
                .map(|(i, &nr)| {
                    let last = i + 1 == nrs.len();
                    (
                        JEQ_K,
                        nr,
                        To::Program,
                        if last { To::Allow } else { To::Skip(0) },
                    )
                })
                .collect();
        }
        let mid = nrs.len() / 2;
        let (left, right) = (search(&nrs[..mid]), search(&nrs[mid..]));
        // nr >= nrs[mid]: the right half, else the left half (right after this instruction).
        let mut out = vec![(JGE_K, nrs[mid], To::Skip(left.len()), To::Skip(0))];
        out.extend(left);
        out.extend(right);
        out
    }
    let mut nrs = nrs.to_vec();
    nrs.sort_unstable();
    nrs.dedup();
    if nrs.is_empty() {
        return prog;
    }
    let mut code = vec![
        (LD_W_ABS, 4, To::Skip(0), To::Skip(0)), // A = seccomp_data.arch
        (JEQ_K, arch, To::Skip(0), To::Program), // foreign architecture: the program kills
        (LD_W_ABS, 0, To::Skip(0), To::Skip(0)), // A = seccomp_data.nr
    ];
    code.extend(search(&nrs));
    code.push((RET_K, libc::SECCOMP_RET_ALLOW, To::Skip(0), To::Skip(0)));
    let allow = code.len() - 1;
    let program = code.len();
    let mut out = Vec::with_capacity(code.len() + prog.len());
    for (i, (op, k, jt, jf)) in code.into_iter().enumerate() {
        let off = |t: To| -> Option<u8> {
            let n = match t {
                To::Skip(n) => n,
                To::Program => program - i - 1,
                To::Allow => allow - i - 1,
            };
            u8::try_from(n).ok()
        };
        let (Some(jt), Some(jf)) = (off(jt), off(jf)) else {
            return prog;
        };
        out.push(sock_filter {
            code: op,
            jt,
            jf,
            k,
        });
    }
    out.extend(prog);
    out
}

/// x86_64 only: `ENOSYS` for x32 syscall numbers, which carry the same audit arch as x86_64 and would
/// otherwise not match any entry of the table (x32 `ptrace` is not number 101).
fn x32_guard() -> BpfProgram {
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    let ins = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        ins(LD_W_ABS, 0, 0, 4),              // 0: A = seccomp_data.arch
        ins(JEQ_K, 0, 3, AUDIT_ARCH_X86_64), // 1: not x86_64 -> 5 (the table's arch check decides)
        ins(LD_W_ABS, 0, 0, 0),              // 2: A = seccomp_data.nr
        ins(JGE_K, 0, 1, X32_SYSCALL_BIT),   // 3: x32 -> 4, else -> 5
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32), // 4
        ins(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW), // 5
    ]
}

/// Installs the programs on the calling thread (and its future children), concatenated into one
/// ([`merge`]). Requires `no_new_privs` (or CAP_SYS_ADMIN). The helper is single-threaded when it calls
/// this, so no TSYNC is needed.
pub fn apply(progs: &[BpfProgram]) -> Result<(), String> {
    for p in merge(progs) {
        seccompiler::apply_filter(&p).map_err(|e| format!("installing the seccomp filter: {e}"))?;
    }
    Ok(())
}

/// The programs as one: each program's `RET ALLOW` becomes a jump to the start of the next one, so a
/// syscall runs them in order until one refuses it, and is allowed only if all allow it.
///
/// The kernel would run separate filters all the same and keep the most severe answer; the table refuses
/// each syscall/argument combination in one program only and every program kills a foreign architecture,
/// so the first refusal is the only one (the tests compare both with a BPF interpreter). One filter
/// instead of five saves the per-filter cost of installing (≈ 15 µs each here: copy, check, JIT). Returned
/// unchanged if a program ends otherwise than with constant returns or the total would exceed
/// `BPF_MAXINSNS`.
pub fn merge(progs: &[BpfProgram]) -> Vec<BpfProgram> {
    const BPF_MAXINSNS: usize = 4096;
    const RET_A: u16 = 0x16; // BPF_RET | BPF_A
    const JA: u16 = 0x05; // BPF_JMP | BPF_JA
    let total: usize = progs.iter().map(Vec::len).sum();
    let Some((last, rest)) = progs.split_last() else {
        return Vec::new();
    };
    if total > BPF_MAXINSNS || rest.iter().flatten().any(|i| i.code == RET_A) {
        return progs.to_vec();
    }
    let mut out = Vec::with_capacity(total);
    for p in rest {
        let next = out.len() + p.len();
        for ins in p {
            let at = out.len();
            if ins.code == RET_K && ins.k == libc::SECCOMP_RET_ALLOW {
                out.push(sock_filter {
                    code: JA,
                    jt: 0,
                    jf: 0,
                    k: (next - at - 1) as u32,
                });
            } else {
                out.push(ins.clone());
            }
        }
    }
    out.extend_from_slice(last);
    vec![out]
}

/// The programs as bytes, for the helper to hand a compiled filter to PID 1 (see `super::helper`): the
/// number of programs (`u32`), then per program its instruction count (`u32`) and each instruction as
/// `code` (`u16`), `jt`, `jf`, `k` (`u32`), all little-endian.
pub fn encode(progs: &[BpfProgram]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + progs.iter().map(|p| 4 + 8 * p.len()).sum::<usize>());
    out.extend_from_slice(&(progs.len() as u32).to_le_bytes());
    for p in progs {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        for i in p {
            out.extend_from_slice(&i.code.to_le_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_le_bytes());
        }
    }
    out
}

/// [`encode`] undone. Anything but the announced number of whole, non-empty programs is an error (a cut
/// message is never read as a shorter filter).
pub fn decode(bytes: &[u8]) -> Result<Vec<BpfProgram>, String> {
    let (count, mut bytes) = bytes
        .split_first_chunk::<4>()
        .ok_or("seccomp filter: no program count")?;
    let count = u32::from_le_bytes(*count) as usize;
    let mut progs = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or("seccomp filter: truncated length")?;
        let len = u32::from_le_bytes(*len) as usize;
        if len == 0 || rest.len() / 8 < len {
            return Err("seccomp filter: truncated or empty program".into());
        }
        let (body, rest) = rest.split_at(len * 8);
        progs.push(
            body.chunks_exact(8)
                .map(|c| sock_filter {
                    code: u16::from_le_bytes([c[0], c[1]]),
                    jt: c[2],
                    jf: c[3],
                    k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                })
                .collect(),
        );
        bytes = rest;
    }
    if progs.is_empty() || progs.len() != count {
        return Err(format!(
            "seccomp filter: {} programs where {count} were announced",
            progs.len()
        ));
    }
    Ok(progs)
}

/// One line for reports: how many rules, syscalls and programs.
pub fn summary(opts: &Options) -> String {
    let rules = rules(opts);
    let mut names: Vec<_> = rules.iter().map(|r| r.name).collect();
    names.sort_unstable();
    names.dedup();
    format!(
        "seccomp: {} rules over {} syscalls (errno, not kill){}",
        rules.len(),
        names.len(),
        match (opts.deny_inet_datagram, opts.deny_unix_socket) {
            (true, true) => "; IPv4/IPv6 limited to TCP; no unix sockets but socketpair",
            (true, false) => "; IPv4/IPv6 limited to TCP",
            (false, true) => "; no unix sockets but socketpair",
            (false, false) => "",
        }
    )
}

#[cfg(test)]
#[path = "seccomp_tests.rs"]
mod tests;
