//! Tests of the seccomp table (pure) and of the installed filter (in a re-exec'd child process: a filter
//! installed in the test harness would stay on that thread for the rest of the run).

use super::*;
use crate::linux::harden::test_probe;

fn find<'a>(rules: &'a [Rule], name: &str) -> Vec<&'a Rule> {
    rules.iter().filter(|r| r.name == name).collect()
}

#[test]
fn every_outright_denial_is_in_the_table_with_eperm() {
    let rules = rules(&Options::default());
    for name in [
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "keyctl",
        "add_key",
        "request_key",
        "mount",
        "umount2",
        "pivot_root",
        "setns",
        "open_tree",
        "move_mount",
        "fsopen",
        "fsmount",
        "fspick",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "swapon",
        "swapoff",
        "reboot",
        "acct",
        "quotactl",
        "lookup_dcookie",
        "name_to_handle_at",
        "open_by_handle_at",
    ] {
        let r = find(&rules, name);
        assert_eq!(r.len(), 1, "{name}");
        assert!(r[0].when.is_empty(), "{name} is denied outright");
        assert_eq!(r[0].errno, libc::EPERM, "{name}");
        assert!(!r[0].why.is_empty());
    }
    assert!(
        find(&rules, "io_uring_setup")[0].why.contains("without"),
        "the io_uring denial explains itself"
    );
}

#[test]
fn landlock_and_ordinary_socket_calls_are_never_denied_outright() {
    let rules = rules(&Options::default());
    for r in &rules {
        assert!(!r.name.starts_with("landlock"), "{}", r.name);
    }
    for name in [
        "sendto",
        "sendmsg",
        "sendmmsg",
        "setsockopt",
        "socket",
        "socketpair",
        "connect",
        "ioctl",
        "clone",
        "unshare",
        "personality",
    ] {
        for r in find(&rules, name) {
            assert!(!r.when.is_empty(), "{name} must be filtered by arguments");
        }
    }
    assert!(find(&rules, "socketpair").is_empty());
}

#[test]
fn namespace_flags_are_refused_in_clone_and_unshare() {
    let rules = rules(&Options::default());
    let flags = |name| -> Vec<u32> {
        find(&rules, name)
            .iter()
            .map(|r| match r.when[..] {
                [
                    Check {
                        arg: 0,
                        op: Op::Masked { mask, value },
                    },
                ] if mask == value => mask,
                _ => panic!("{name}: {r:?}"),
            })
            .collect()
    };
    let all: u32 = CLONE_NS_FLAGS.iter().map(|f| f.1).fold(0, |a, b| a | b);
    assert_eq!(
        all, 0x7e02_0000,
        "NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET"
    );
    assert_eq!(flags("clone").iter().fold(0, |a, b| a | b), all);
    assert_eq!(
        flags("unshare").iter().fold(0, |a, b| a | b),
        all | CLONE_NEWTIME
    );
    let clone3 = find(&rules, "clone3");
    assert_eq!(clone3.len(), 1);
    assert_eq!(
        clone3[0].errno,
        libc::ENOSYS,
        "ENOSYS so libc falls back to clone"
    );
}

#[test]
fn fast_open_is_refused_on_each_send_call_at_its_flags_argument() {
    let rules = rules(&Options::default());
    for (name, arg) in [("sendto", 3), ("sendmsg", 2), ("sendmmsg", 3)] {
        let r = find(&rules, name);
        assert_eq!(r.len(), 1, "{name}");
        assert_eq!(
            r[0].when,
            [Check {
                arg,
                op: Op::Masked {
                    mask: 0x2000_0000,
                    value: 0x2000_0000
                }
            }],
            "{name}"
        );
    }
    let s = find(&rules, "setsockopt");
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].when,
        [
            Check {
                arg: 1,
                op: Op::Eq(6)
            },
            Check {
                arg: 2,
                op: Op::Eq(30)
            }
        ]
    );
}

#[test]
fn socket_families_tty_injection_and_personality() {
    let rules = rules(&Options::default());
    let socket = find(&rules, "socket");
    assert_eq!(socket.len(), 2, "family allowlist + netlink protocol");
    let fam = socket
        .iter()
        .find(|r| r.errno == libc::EAFNOSUPPORT)
        .unwrap();
    let ne: Vec<u32> = fam
        .when
        .iter()
        .map(|c| match c {
            Check {
                arg: 0,
                op: Op::Ne(v),
            } => *v,
            _ => panic!("{c:?}"),
        })
        .collect();
    assert_eq!(ne, [1, 2, 10, 16], "AF_UNIX, AF_INET, AF_INET6, AF_NETLINK");
    let ioctls: Vec<_> = find(&rules, "ioctl")
        .iter()
        .map(|r| r.when.clone())
        .collect();
    assert_eq!(
        ioctls,
        [
            vec![Check {
                arg: 1,
                op: Op::Eq(0x5412)
            }],
            vec![Check {
                arg: 1,
                op: Op::Eq(0x541C)
            }]
        ]
    );
    let p = find(&rules, "personality");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].when.len(), ALLOWED_PERSONALITIES.len());
}

#[test]
fn tier_two_option_limits_inet_to_tcp() {
    let plain = rules(&Options::default());
    let tier2 = rules(&Options {
        deny_inet_datagram: true,
        ..Options::default()
    });
    assert_eq!(tier2.len(), plain.len() + 8, "4 socket types x 2 families");
    assert!(tier2.iter().any(|r| r.name == "socket"
        && r.when.contains(&Check {
            arg: 0,
            op: Op::Eq(2)
        })
        && r.when.contains(&Check {
            arg: 1,
            op: Op::Masked {
                mask: 0xf,
                value: 2
            }
        })));
}

#[test]
fn a_filter_handed_over_as_bytes_is_the_same_filter() {
    let progs = filters(&Options::default()).unwrap();
    let bytes = encode(&progs);
    let back = decode(&bytes).unwrap();
    assert_eq!(back.len(), progs.len());
    for (a, b) in back.iter().zip(&progs) {
        let key = |p: &BpfProgram| {
            p.iter()
                .map(|i| (i.code, i.jt, i.jf, i.k))
                .collect::<Vec<_>>()
        };
        assert_eq!(key(a), key(b));
    }
    // A cut message is refused, never read as a shorter filter (also at a program boundary).
    for len in 0..bytes.len() {
        assert!(
            decode(&bytes[..len]).is_err(),
            "{len} of {} bytes",
            bytes.len()
        );
    }
    assert!(decode(&0u32.to_le_bytes()).is_err());
}

#[test]
fn the_table_compiles_for_this_architecture() {
    for opts in [
        Options::default(),
        Options {
            deny_inet_datagram: true,
            ..Options::default()
        },
    ] {
        let progs = filters(&opts).unwrap();
        // EPERM, ENOSYS, EAFNOSUPPORT, EPROTONOSUPPORT (+ the x32 guard on x86_64).
        let expected = if cfg!(target_arch = "x86_64") { 5 } else { 4 };
        assert_eq!(progs.len(), expected);
        for p in &progs {
            assert!(p.len() < 4096, "BPF_MAXINSNS");
        }
    }
    assert!(summary(&Options::default()).contains("rules over"));
}

// ---- behaviour, in a child process ----------------------------------------------------------------

/// Runs one probe under the filter and prints `PROBE <name> <result>`.
#[test]
fn probe_child_seccomp() {
    let Ok(which) = std::env::var("PALISADE_TEST_PROBE") else {
        return;
    };
    let Some(which) = which.strip_prefix("seccomp:") else {
        return;
    };
    // A listener before the filter, to show ordinary TCP still works afterwards.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A second one for the Fast Open probe, so its connection (if any) does not reach `accept` below.
    let tfo_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tfo_port = tfo_listener.local_addr().unwrap().port();
    // seccomp needs no_new_privs (the helper sets it before hardening).
    // SAFETY: prctl with integer arguments only.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) },
        0
    );
    if which != "none" {
        apply(&filters(&Options::default()).unwrap()).unwrap();
    }
    let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let res = |r: i64| {
        if r < 0 {
            format!("errno={}", errno())
        } else {
            "ok".into()
        }
    };
    for probe in [
        "ptrace",
        "unshare",
        "io_uring",
        "packet",
        "fastopen",
        "tcp",
        "fork_exec",
        "clone3",
    ] {
        let out = match probe {
            // PTRACE_CONT on a process we do not trace: ESRCH without the filter, no side effects.
            // SAFETY: integer arguments only.
            "ptrace" => res(unsafe { libc::ptrace(libc::PTRACE_CONT, libc::getppid(), 0, 0) }),
            // SAFETY: integer argument only.
            "unshare" => res(unsafe { libc::unshare(libc::CLONE_NEWUSER) }.into()),
            "io_uring" => {
                let mut params = [0u8; 120]; // struct io_uring_params
                // SAFETY: params is a writable buffer of the size the kernel expects.
                res(unsafe { libc::syscall(libc::SYS_io_uring_setup, 4, params.as_mut_ptr()) })
            }
            // SAFETY: integer arguments only; the fd (if any) is closed right away.
            "packet" => {
                let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
                if fd >= 0 {
                    // SAFETY: fd was just returned by socket().
                    unsafe { libc::close(fd) };
                }
                res(fd.into())
            }
            "fastopen" => {
                // SAFETY: a fresh TCP socket; addr is a valid sockaddr_in for the call's duration.
                unsafe {
                    let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                    let addr = libc::sockaddr_in {
                        sin_family: libc::AF_INET as libc::sa_family_t,
                        sin_port: tfo_port.to_be(),
                        sin_addr: libc::in_addr {
                            s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
                        },
                        sin_zero: [0; 8],
                    };
                    let r = libc::sendto(
                        fd,
                        b"x".as_ptr().cast(),
                        1,
                        libc::MSG_FASTOPEN,
                        (&raw const addr).cast(),
                        size_of::<libc::sockaddr_in>() as u32,
                    );
                    let out = res(r as i64);
                    libc::close(fd);
                    out
                }
            }
            "tcp" => {
                use std::io::{Read, Write};
                let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.write_all(b"hi").unwrap();
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 2];
                s.read_exact(&mut buf).unwrap();
                if &buf == b"hi" {
                    "ok".into()
                } else {
                    "bad".into()
                }
            }
            "fork_exec" => {
                // posix_spawn/fork + exec of a shell, which itself forks and execs.
                let st = std::process::Command::new("/bin/sh")
                    .args(["-c", "/bin/true && echo spawned"])
                    .output()
                    .unwrap();
                if st.status.success() && st.stdout == b"spawned\n" {
                    "ok".into()
                } else {
                    format!("failed {st:?}")
                }
            }
            "clone3" => {
                // A zeroed clone_args would fork; seccomp answers before the kernel reads it.
                let mut args = [0u64; 11];
                args[4] = libc::SIGCHLD as u64; // exit_signal
                // SAFETY: args is a valid clone_args; a child (if created) exits at once.
                let r = unsafe {
                    libc::syscall(libc::SYS_clone3, args.as_mut_ptr(), size_of_val(&args))
                };
                if r == 0 {
                    // SAFETY: in the child: leave without running any Rust code.
                    unsafe { libc::_exit(0) };
                }
                if r > 0 {
                    // SAFETY: reap the child.
                    unsafe { libc::waitpid(r as i32, std::ptr::null_mut(), 0) };
                }
                res(r)
            }
            _ => unreachable!(),
        };
        println!("PROBE {probe} {out}");
    }
    std::process::exit(0);
}

fn probe_results(which: &str) -> std::collections::BTreeMap<String, String> {
    let out = test_probe::run(
        "linux::seccomp::tests::probe_child_seccomp",
        &format!("seccomp:{which}"),
    );
    test_probe::results(&out)
}

#[test]
fn the_filter_refuses_escapes_and_keeps_ordinary_work() {
    let got = probe_results("filter");
    let eperm = format!("errno={}", libc::EPERM);
    let expect = [
        ("ptrace", eperm.clone()),
        ("unshare", eperm.clone()),
        ("io_uring", eperm.clone()),
        ("packet", format!("errno={}", libc::EAFNOSUPPORT)),
        ("fastopen", eperm.clone()),
        ("clone3", format!("errno={}", libc::ENOSYS)),
        ("tcp", "ok".into()),
        ("fork_exec", "ok".into()),
    ];
    for (k, v) in expect {
        assert_eq!(got.get(k), Some(&v), "{k}: {got:?}");
    }
}

#[test]
fn without_the_filter_the_same_probes_are_not_refused_by_seccomp() {
    // Control: the errnos above come from the filter, not from the environment.
    let got = probe_results("none");
    let io_uring_off = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .is_ok_and(|v| v.trim() != "0");
    for k in ["ptrace", "io_uring", "fastopen", "clone3"] {
        if k == "io_uring" && io_uring_off {
            continue;
        }
        let v = got.get(k).unwrap_or_else(|| panic!("{k}: {got:?}"));
        assert!(
            !matches!(v.as_str(), "errno=1" | "errno=38"),
            "{k} is refused even without the filter: {v} ({got:?})"
        );
    }
    assert_eq!(got.get("tcp").map(String::as_str), Some("ok"));
}

/// A classic BPF interpreter for seccomp programs (the opcodes `seccompiler` and this module emit); an
/// unknown opcode fails the test.
fn run_bpf(prog: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    let mut mem = [0u32; 16];
    loop {
        let i = &prog[pc];
        pc += 1;
        let k = i.k;
        let jump = |cond: bool| if cond { i.jt as usize } else { i.jf as usize };
        match i.code {
            0x20 => {
                let o = k as usize;
                a = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
            }
            0x00 => a = k,
            0x01 => x = k,
            0x02 => mem[k as usize] = a,
            0x60 => a = mem[k as usize],
            0x07 => x = a,
            0x87 => a = x,
            0x54 => a &= k,
            0x05 => pc += k as usize,
            0x15 => pc += jump(a == k),
            0x25 => pc += jump(a > k),
            0x35 => pc += jump(a >= k),
            0x45 => pc += jump(a & k != 0),
            0x1d => pc += jump(a == x),
            0x06 => return k,
            0x16 => return a,
            op => panic!("opcode {op:#x} not in the test interpreter"),
        }
    }
}

#[test]
fn the_dispatch_prologue_decides_exactly_as_the_program_alone() {
    let arch = target_arch().unwrap();
    let table = rules(&Options::default());
    // Every syscall number a rule names, its neighbours, the whole usual range, and odd ones.
    let mut nrs: Vec<u32> = (0..600).collect();
    nrs.extend([
        X32_SYSCALL_BIT,
        X32_SYSCALL_BIT | 101,
        u32::MAX,
        0x8000_0000,
    ]);
    let values: Vec<u64> = table
        .iter()
        .flat_map(|r| r.when.iter())
        .flat_map(|c| match c.op {
            Op::Eq(v) | Op::Ne(v) => vec![v, v ^ 1],
            Op::Masked { mask, value } => vec![value, value ^ mask, mask],
        })
        .map(u64::from)
        .chain([0, 1, 2, 10, u64::from(u32::MAX), u64::MAX, 1 << 32])
        .collect();
    let arches = [audit_arch(arch), 0x4000_0003, 0xC000_00B7, 0xC000_003E, 0];
    let mut compared = 0u64;
    let mut outcomes = std::collections::BTreeSet::new();
    for opts in [
        Options::default(),
        Options {
            deny_inet_datagram: true,
            ..Options::default()
        },
    ] {
        let table = rules(&opts);
        let mut by_errno: BTreeMap<i32, BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
        for r in &table {
            let chain = by_errno
                .entry(r.errno)
                .or_default()
                .entry(r.nr)
                .or_default();
            if !r.when.is_empty() {
                let conds = r.when.iter().map(|c| condition(c).unwrap()).collect();
                chain.push(SeccompRule::new(conds).unwrap());
            }
        }
        for (errno, rules) in by_errno {
            let nums: Vec<u32> = rules.keys().map(|&n| n as u32).collect();
            let plain: BpfProgram = SeccompFilter::new(
                rules,
                SeccompAction::Allow,
                SeccompAction::Errno(errno as u32),
                arch,
            )
            .unwrap()
            .try_into()
            .unwrap();
            let fast = with_dispatch(plain.clone(), audit_arch(arch), &nums);
            assert!(fast.len() > plain.len(), "the prologue was added");
            for &a in &arches {
                for &nr in &nrs {
                    let named = nums.contains(&nr);
                    let arg_sets: Vec<[u64; 6]> = if named {
                        values
                            .iter()
                            .map(|&v| [v; 6])
                            .chain(
                                values
                                    .iter()
                                    .zip(values.iter().rev())
                                    .map(|(&v, &w)| [v, w, v, w, v, w]),
                            )
                            .collect()
                    } else {
                        vec![[0; 6], [u64::MAX; 6]]
                    };
                    for args in arg_sets {
                        let got = run_bpf(&fast, nr, a, args);
                        assert_eq!(
                            got,
                            run_bpf(&plain, nr, a, args),
                            "errno {errno}: nr {nr} arch {a:#x} args {args:x?}"
                        );
                        outcomes.insert(got & libc::SECCOMP_RET_ACTION_FULL);
                        compared += 1;
                    }
                }
            }
        }
    }
    assert!(compared > 10_000, "{compared}");
    // The comparison saw every kind of decision: allowed, refused with an errno, killed (foreign arch).
    assert!(
        outcomes.contains(&libc::SECCOMP_RET_ALLOW)
            && outcomes.contains(&libc::SECCOMP_RET_ERRNO)
            && outcomes.contains(&libc::SECCOMP_RET_KILL_PROCESS),
        "{outcomes:x?}"
    );
}

/// What the kernel answers with `progs` installed as separate filters, in order: every filter runs, the
/// most severe action wins, a tie goes to the newest filter (`seccomp_run_filters`).
fn run_separately(progs: &[BpfProgram], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let action = |r: u32| (r & libc::SECCOMP_RET_ACTION_FULL) as i32;
    let mut ret = libc::SECCOMP_RET_ALLOW;
    for p in progs.iter().rev() {
        let r = run_bpf(p, nr, arch, args);
        if action(r) < action(ret) {
            ret = r;
        }
    }
    ret
}

#[test]
fn the_merged_filter_decides_exactly_as_the_separate_programs() {
    let arch = target_arch().unwrap();
    let mut values: Vec<u64> = [Options::default()]
        .iter()
        .flat_map(rules)
        .flat_map(|r| r.when)
        .flat_map(|c| match c.op {
            Op::Eq(v) | Op::Ne(v) => vec![v, v ^ 1],
            Op::Masked { mask, value } => vec![value, value ^ mask, mask],
        })
        .map(u64::from)
        .collect();
    values.extend([0, 1, 2, 10, u64::from(u32::MAX), u64::MAX, 1 << 32]);
    let mut nrs: Vec<u32> = (0..600).collect();
    nrs.extend([
        X32_SYSCALL_BIT,
        X32_SYSCALL_BIT | 101,
        u32::MAX,
        0x8000_0000,
    ]);
    let arches = [audit_arch(arch), 0x4000_0003, 0xC000_00B7, 0xC000_003E, 0];
    let mut outcomes = std::collections::BTreeSet::new();
    for opts in [
        Options::default(),
        Options {
            deny_inet_datagram: true,
            ..Options::default()
        },
    ] {
        let progs = filters(&opts).unwrap();
        let merged = merge(&progs);
        assert_eq!(merged.len(), 1, "merged into one filter");
        assert_eq!(
            merged[0].len(),
            progs.iter().map(Vec::len).sum::<usize>(),
            "nothing added or dropped"
        );
        for &a in &arches {
            for &nr in &nrs {
                for (i, &v) in values.iter().enumerate() {
                    let w = values[values.len() - 1 - i];
                    for args in [[v; 6], [v, w, v, w, v, w], [w, v, w, v, w, v]] {
                        let got = run_bpf(&merged[0], nr, a, args);
                        assert_eq!(
                            got,
                            run_separately(&progs, nr, a, args),
                            "nr {nr} arch {a:#x} args {args:x?}"
                        );
                        outcomes.insert(got);
                    }
                }
            }
        }
    }
    // Allowed, each errno of the table, the x32 ENOSYS, and the foreign-architecture kill were all seen.
    for want in [
        libc::SECCOMP_RET_ALLOW,
        libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        libc::SECCOMP_RET_ERRNO | libc::EAFNOSUPPORT as u32,
        libc::SECCOMP_RET_ERRNO | libc::EPROTONOSUPPORT as u32,
        libc::SECCOMP_RET_KILL_PROCESS,
    ] {
        assert!(
            outcomes.contains(&want),
            "{want:#x} not seen: {outcomes:x?}"
        );
    }
}

#[test]
fn tier_two_refuses_unix_socket_creation_but_not_socketpair() {
    let plain = rules(&Options::default());
    let t2 = rules(&Options {
        deny_unix_socket: true,
        ..Options::default()
    });
    assert_eq!(t2.len(), plain.len() + 1);
    let added = t2
        .iter()
        .find(|r| !plain.contains(r))
        .expect("one added rule");
    assert_eq!(added.nr, libc::SYS_socket);
    assert_eq!(
        added.when,
        vec![Check {
            arg: 0,
            op: Op::Eq(libc::AF_UNIX as u32)
        }]
    );
    assert!(!t2.iter().any(|r| r.nr == libc::SYS_socketpair));
}
