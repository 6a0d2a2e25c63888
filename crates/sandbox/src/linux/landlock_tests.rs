//! Landlock: the per-ABI plan (pure) and the enforced ruleset (in a re-exec'd child process).

use super::*;
use crate::linux::harden::test_probe;
use std::path::PathBuf;

#[test]
fn no_landlock_is_an_error() {
    assert!(plan(0).is_err());
    assert!(plan(-1).is_err());
}

#[test]
fn each_abi_handles_what_it_knows_and_names_the_rest() {
    for abi in 1..=9 {
        let p = plan(abi).unwrap();
        assert_eq!(p.abi as i32, abi);
        assert_eq!(p.fs, AccessFs::from_all(ABI::from(abi)), "ABI {abi}");
        assert_eq!(p.tcp, abi >= 4, "ABI {abi}");
        assert_eq!(p.scopes, abi >= 6, "ABI {abi}");
        assert_eq!(p.fs.contains(AccessFs::Refer), abi >= 2);
        assert_eq!(p.fs.contains(AccessFs::Truncate), abi >= 3);
        assert_eq!(p.fs.contains(AccessFs::IoctlDev), abi >= 5);
        let expected_gaps = [2, 3, 4, 5, 6, 9]
            .iter()
            .filter(|&&since| abi < since)
            .count();
        assert_eq!(p.gaps.len(), expected_gaps, "ABI {abi}: {:?}", p.gaps);
    }
    // This kernel (TESTING.md): ABI 7, only the path-unix-socket gap remains.
    let p = plan(7).unwrap();
    assert_eq!(p.gaps.len(), 1);
    assert!(p.gaps[0].contains("unix"), "{:?}", p.gaps);
    // A kernel newer than this build: use the newest known ABI.
    assert_eq!(plan(42).unwrap().abi, ABI::V9);
}

#[test]
fn rights_per_kind() {
    let p = plan(7).unwrap();
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    assert_eq!(rights(&p, Kind::Read, true), read);
    assert_eq!(rights(&p, Kind::ReadExec, true), read | AccessFs::Execute);
    let w = rights(&p, Kind::Write, true);
    assert!(
        !w.contains(AccessFs::Execute),
        "writable trees are not executable"
    );
    for r in [
        AccessFs::ReadFile,
        AccessFs::WriteFile,
        AccessFs::MakeReg,
        AccessFs::MakeDir,
        AccessFs::RemoveFile,
        AccessFs::RemoveDir,
        AccessFs::Truncate,
        AccessFs::Refer,
    ] {
        assert!(w.contains(r), "{r:?}");
    }
    // A file gets only file rights.
    let wf = rights(&p, Kind::Write, false);
    assert!(wf.contains(AccessFs::WriteFile | AccessFs::Truncate));
    assert!(!wf.contains(AccessFs::MakeDir) && !wf.contains(AccessFs::ReadDir));
    // ABI 1: no truncate/refer to grant.
    let p1 = plan(1).unwrap();
    assert!(!rights(&p1, Kind::Write, true).contains(AccessFs::Truncate));
}

// ---- behaviour, in a child process ----------------------------------------------------------------

#[test]
fn probe_child_landlock() {
    if std::env::var("PALISADE_TEST_PROBE").as_deref() != Ok("landlock") {
        return;
    }
    let dir = PathBuf::from(std::env::var("PALISADE_TEST_DIR").unwrap());
    let allowed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (pa, po) = (
        allowed.local_addr().unwrap().port(),
        other.local_addr().unwrap().port(),
    );
    let rules = LandlockRules {
        read_exec: ["/usr", "/bin", "/lib", "/lib64"]
            .map(PathBuf::from)
            .to_vec(),
        read: vec![dir.join("ro"), dir.join("missing")],
        write: vec![dir.join("rw")],
        connect_tcp: vec![pa],
    };
    let report = apply(&rules).unwrap();
    println!("REPORT {report}");
    for n in &report.notes {
        println!("NOTE {n}");
    }
    let r = |name: &str, res: std::io::Result<()>| {
        let v = match res {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("errno={}", e.raw_os_error().unwrap_or(0)),
        };
        println!("PROBE {name} {v}");
    };
    r("read_ro", std::fs::read(dir.join("ro/f")).map(drop));
    r("write_ro", std::fs::write(dir.join("ro/g"), "x"));
    r("write_rw", std::fs::write(dir.join("rw/g"), "x"));
    r("read_outside", std::fs::read(dir.join("secret")).map(drop));
    r("read_etc", std::fs::read("/etc/hostname").map(drop));
    r(
        "exec_usr",
        std::process::Command::new("/bin/sh")
            .args(["-c", "exit 0"])
            .status()
            .map(drop),
    );
    r(
        "connect_allowed",
        std::net::TcpStream::connect(("127.0.0.1", pa)).map(drop),
    );
    r(
        "connect_other",
        std::net::TcpStream::connect(("127.0.0.1", po)).map(drop),
    );
    r("bind", std::net::TcpListener::bind("127.0.0.1:0").map(drop));
    std::process::exit(0);
}

#[test]
fn the_ruleset_confines_paths_and_tcp() {
    let tmp = std::env::temp_dir().join(format!("palisade-landlock-{}", std::process::id()));
    std::fs::create_dir_all(tmp.join("ro")).unwrap();
    std::fs::create_dir_all(tmp.join("rw")).unwrap();
    std::fs::write(tmp.join("ro/f"), "f").unwrap();
    std::fs::write(tmp.join("secret"), "s").unwrap();
    let out = test_probe::run_with(
        "linux::landlock::tests::probe_child_landlock",
        "landlock",
        &[("PALISADE_TEST_DIR", tmp.as_os_str())],
    );
    let _ = std::fs::remove_dir_all(&tmp);
    let got = test_probe::results(&out);
    let eacces = format!("errno={}", libc::EACCES);
    for (k, v) in [
        ("read_ro", "ok"),
        ("write_rw", "ok"),
        ("exec_usr", "ok"),
        ("connect_allowed", "ok"),
        ("write_ro", eacces.as_str()),
        ("read_outside", eacces.as_str()),
        ("read_etc", eacces.as_str()),
        ("connect_other", eacces.as_str()),
        ("bind", eacces.as_str()),
    ] {
        assert_eq!(got.get(k).map(String::as_str), Some(v), "{k}: {out}");
    }
    assert!(out.contains("missing: skipped"), "{out}");
    let abi = kernel_abi().unwrap();
    assert!(
        out.contains(&format!("REPORT Landlock ABI {abi}: enforced")),
        "{out}"
    );
}
