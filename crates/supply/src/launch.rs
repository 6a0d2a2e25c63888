//! Two rewrites of a server's command line, as pure functions the binary calls before it starts a server.
//!
//! # From the store
//! [`store_rewrite`]: `npx -y PKG[@VER] ARGS…` (also `npx --yes`, `pnpm dlx`, `bunx`) and `uvx NAME[==VER]
//! ARGS…` name a package; when `palisade.lock` has it (at that version, or any version when none is
//! named), the command becomes the store entry's entry point (`node <store>/<sha>/node_modules/…/index.js
//! ARGS…`, or the venv's console script) after the whole entry's digest is recomputed and compared with
//! the lock. A difference refuses to start. Nothing is fetched at run time, so the sandbox needs no network
//! for it. Commands that name no locked package are left alone.
//!
//! # Containers
//! [`harden_container`]: `docker run …` / `podman run …` gets `--read-only --network none --cap-drop ALL
//! --security-opt no-new-privileges` unless the policy grants network (then the user's `--network` stays,
//! and none is added). Flags that undo the isolation (`--privileged`, `--cap-add`, host namespaces,
//! `seccomp=unconfined`, the engine's socket or `/` mounted in, devices) are refused: the server would
//! have the host. The image reference is checked for a digest: a tag can be moved under you.

use std::path::Path;

use crate::lock::{Lock, Locked};
use crate::spec::Ecosystem;
use crate::store::Store;
use crate::{Error, Result};

/// The package a launcher command names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    /// Ecosystem.
    pub ecosystem: Ecosystem,
    /// Package name.
    pub name: String,
    /// Version, when pinned in the command.
    pub version: Option<String>,
    /// Index of the first argument after the package.
    pub rest: usize,
}

fn base(p: &str) -> &str {
    Path::new(p)
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or(p)
        .trim_end_matches(".exe")
        .trim_end_matches(".cmd")
}

/// Reads `npx -y PKG@VER …` / `uvx NAME==VER …`. Forms it does not understand (extra packages with
/// `--package`/`--from`/`--with`, options taking values) give `None`: left alone rather than guessed.
pub fn parse_launcher(argv: &[String]) -> Option<Launcher> {
    let prog = base(argv.first()?);
    let (eco, start) = match prog {
        "npx" | "bunx" => (Ecosystem::Npm, 1),
        "pnpm" | "pnpx" if argv.get(1).map(String::as_str) == Some("dlx") => (Ecosystem::Npm, 2),
        "pnpx" => (Ecosystem::Npm, 1),
        "uvx" => (Ecosystem::PyPI, 1),
        _ => return None,
    };
    let mut i = start;
    while let Some(a) = argv.get(i) {
        match a.as_str() {
            "-y" | "--yes" | "-q" | "--quiet" | "--silent" | "--no-install" | "--offline" => i += 1,
            "--" => {
                i += 1;
                break;
            }
            s if s.starts_with('-') => return None,
            _ => break,
        }
    }
    let spec = argv.get(i)?;
    let (name, version) = match eco {
        Ecosystem::Npm => {
            let (n, v) = match spec.strip_prefix('@') {
                Some(s) => match s.rsplit_once('@') {
                    Some((n, v)) => (format!("@{n}"), Some(v.to_owned())),
                    None => (spec.clone(), None),
                },
                None => match spec.rsplit_once('@') {
                    Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                    None => (spec.clone(), None),
                },
            };
            crate::spec::validate_npm_name(&n).ok()?;
            (n, v)
        }
        Ecosystem::PyPI => {
            let (n, v) = match spec.split_once("==") {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None if spec.contains(['<', '>', '~', '@', '=']) => return None,
                None => (spec.clone(), None),
            };
            crate::spec::validate_pypi_name(&n).ok()?;
            (n, v)
        }
    };
    // `latest` and ranges are not a pin: treat as unpinned only for the literal tag.
    let version = version.filter(|v| v != "latest");
    Some(Launcher {
        ecosystem: eco,
        name,
        version,
        rest: i + 1,
    })
}

/// A rewritten command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The new argv.
    pub argv: Vec<String>,
    /// Environment the server should get in addition (e.g. no bytecode writes into the store).
    pub env: Vec<(String, String)>,
    /// One line for the banner.
    pub note: String,
}

/// Rewrites a launcher command to the store (see the [module docs](self)). `Ok(None)`: not a launcher
/// command, or a package the lock does not have at that version.
pub fn store_rewrite(argv: &[String], lock: &Lock, store: &Store) -> Result<Option<Rewrite>> {
    let Some(l) = parse_launcher(argv) else {
        return Ok(None);
    };
    let lf = lock.load()?;
    let Some(entry) = lf.find(Some(l.ecosystem), &l.name) else {
        return Ok(None);
    };
    if let Some(v) = &l.version {
        let same = match l.ecosystem {
            Ecosystem::Npm => *v == entry.version,
            Ecosystem::PyPI => {
                crate::version::compare(Ecosystem::PyPI, v, &entry.version)
                    == Some(std::cmp::Ordering::Equal)
            }
        };
        if !same {
            return Ok(None);
        }
    }
    entry_argv(entry, store, &argv[l.rest.min(argv.len())..]).map(Some)
}

/// The command that starts the store entry of `entry` with `args` after the entry point, once the
/// entry's tree digest is recomputed and found equal to the lock's (a difference refuses, naming the
/// reinstall command). [`store_rewrite`] uses it for the current version; `palisade update` for the
/// version it staged but has not made current yet.
pub fn entry_argv(entry: &Locked, store: &Store, args: &[String]) -> Result<Rewrite> {
    let dir = store.verify(&entry.sha256, &entry.tree).map_err(|e| match e {
        Error::Integrity { expected, actual, .. } => Error::Store(format!(
            "refusing to start {}@{}: the installed files in {} differ from palisade.lock (expected {expected}, found {actual}); reinstall with `palisade install {}`",
            entry.name,
            entry.version,
            store.root().join(&entry.sha256).display(),
            entry.spec
        )),
        other => other,
    })?;
    let script = dir.join(&entry.entry.path);
    let mut out = Vec::new();
    if let Some(i) = &entry.entry.interpreter {
        out.push(i.clone());
    }
    out.push(script.display().to_string());
    out.extend(args.iter().cloned());
    let env = match entry.ecosystem() {
        Some(Ecosystem::PyPI) => vec![("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned())],
        _ => Vec::new(),
    };
    Ok(Rewrite {
        argv: out,
        env,
        note: format!(
            "running {} {} from the store ({}, tree {} verified; no download)",
            entry.name,
            entry.version,
            dir.display(),
            short(&entry.tree)
        ),
    })
}

fn short(s: &str) -> &str {
    s.get(..19).unwrap_or(s)
}

/// What the policy allows a container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerGrants {
    /// The policy names network destinations: keep the container's network (the egress proxy does not
    /// see container traffic; the audit says so).
    pub network: bool,
}

/// Whether an image reference is pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestCheck {
    /// `image@sha256:…`.
    Pinned(String),
    /// A tag (or none, meaning `latest`).
    TagOnly(String),
}

/// A hardened container command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardened {
    /// The new argv.
    pub argv: Vec<String>,
    /// Flags palisade added.
    pub added: Vec<String>,
    /// The image and its digest status.
    pub image: DigestCheck,
    /// Lines for the banner.
    pub notes: Vec<String>,
}

/// `docker run` options that take a value (as the next argument unless written `--opt=value`).
const VALUE_OPTS: &[&str] = &[
    "-a",
    "--attach",
    "--add-host",
    "--annotation",
    "--blkio-weight",
    "--cgroup-parent",
    "--cgroupns",
    "--cidfile",
    "--cpu-period",
    "--cpu-quota",
    "--cpu-shares",
    "-c",
    "--cpus",
    "--cpuset-cpus",
    "--cpuset-mems",
    "--device",
    "--device-cgroup-rule",
    "--dns",
    "--dns-option",
    "--dns-search",
    "--domainname",
    "--entrypoint",
    "-e",
    "--env",
    "--env-file",
    "--expose",
    "--gpus",
    "--group-add",
    "--health-cmd",
    "--health-interval",
    "--health-retries",
    "--health-start-period",
    "--health-timeout",
    "-h",
    "--hostname",
    "--ip",
    "--ip6",
    "--ipc",
    "--isolation",
    "--kernel-memory",
    "-l",
    "--label",
    "--label-file",
    "--link",
    "--log-driver",
    "--log-opt",
    "--mac-address",
    "-m",
    "--memory",
    "--memory-reservation",
    "--memory-swap",
    "--memory-swappiness",
    "--mount",
    "--name",
    "--network",
    "--net",
    "--network-alias",
    "--oom-score-adj",
    "--pid",
    "--pids-limit",
    "--platform",
    "-p",
    "--publish",
    "--pull",
    "--restart",
    "--runtime",
    "--security-opt",
    "--shm-size",
    "--stop-signal",
    "--stop-timeout",
    "--storage-opt",
    "--sysctl",
    "--tmpfs",
    "-u",
    "--user",
    "--ulimit",
    "--userns",
    "--uts",
    "-v",
    "--volume",
    "--volume-driver",
    "--volumes-from",
    "-w",
    "--workdir",
    "--cap-add",
    "--cap-drop",
    "--log-level",
    "--uidmap",
    "--gidmap",
    "--secret",
];

/// Hardens a `docker run` / `podman run` command (see the [module docs](self)). `Ok(None)`: not one.
pub fn harden_container(argv: &[String], grants: ContainerGrants) -> Result<Option<Hardened>> {
    let Some(first) = argv.first() else {
        return Ok(None);
    };
    let engine = base(first);
    if engine != "docker" && engine != "podman" {
        return Ok(None);
    }
    // Global options before the subcommand (`--context X`, `-H host`, `--log-level`).
    let mut i = 1;
    while let Some(a) = argv.get(i) {
        if a == "run" {
            break;
        }
        if a == "container" && argv.get(i + 1).map(String::as_str) == Some("run") {
            i += 1;
            break;
        }
        if a.starts_with('-') {
            let takes = matches!(
                a.as_str(),
                "--context"
                    | "-c"
                    | "-H"
                    | "--host"
                    | "--config"
                    | "--log-level"
                    | "-l"
                    | "--url"
                    | "--connection"
            );
            i += if takes && !a.contains('=') { 2 } else { 1 };
            continue;
        }
        return Ok(None);
    }
    if argv.get(i).map(String::as_str) != Some("run") {
        return Ok(None);
    }
    let run_at = i;
    let refuse = |what: &str, why: &str| {
        Err(Error::Usage(format!(
            "refusing `{engine} run` with {what}: {why}; remove it (palisade runs containers read-only, without network, capabilities or privilege escalation)"
        )))
    };
    let mut j = run_at + 1;
    let mut has_read_only = false;
    let mut network: Option<String> = None;
    let mut image: Option<usize> = None;
    while let Some(a) = argv.get(j) {
        if a == "--" {
            image = Some(j + 1);
            break;
        }
        if !a.starts_with('-') || a == "-" {
            image = Some(j);
            break;
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (a.as_str(), None),
        };
        let takes = VALUE_OPTS.contains(&flag);
        let value = if takes {
            match inline.clone() {
                Some(v) => Some(v),
                None => {
                    j += 1;
                    Some(argv.get(j).cloned().unwrap_or_default())
                }
            }
        } else {
            None
        };
        let v = value.as_deref().unwrap_or("");
        match flag {
            "--privileged" if inline.as_deref() != Some("false") => {
                return refuse(
                    "--privileged",
                    "it gives the container every device and capability of the host",
                );
            }
            "--cap-add" => {
                return refuse(
                    &format!("--cap-add {v}"),
                    "added capabilities widen what the server can do to the host",
                );
            }
            "--device" => {
                return refuse(
                    &format!("--device {v}"),
                    "host devices reach past the container",
                );
            }
            "--pid" | "--ipc" | "--uts" | "--userns" | "--cgroupns" if v == "host" => {
                return refuse(&format!("{flag} host"), "it shares the host's namespace");
            }
            "--network" | "--net" => {
                if v == "host" {
                    return refuse(
                        "--network host",
                        "it shares the host's network stack, loopback services included",
                    );
                }
                if v.starts_with("container:") {
                    return refuse(
                        &format!("--network {v}"),
                        "it joins another container's network",
                    );
                }
                if v != "none" && !grants.network {
                    return refuse(
                        &format!("--network {v}"),
                        "the policy grants this server no network (name destinations with --allow-net to allow it)",
                    );
                }
                network = Some(v.to_owned());
            }
            "--security-opt" => {
                let l = v.to_ascii_lowercase();
                if l.contains("unconfined")
                    || l == "label=disable"
                    || l.starts_with("no-new-privileges=false")
                    || l.starts_with("no-new-privileges:false")
                {
                    return refuse(&format!("--security-opt {v}"), "it turns a protection off");
                }
            }
            "-v" | "--volume" | "--mount" => {
                let src = if flag == "--mount" {
                    v.split(',')
                        .find_map(|kv| {
                            kv.strip_prefix("source=")
                                .or_else(|| kv.strip_prefix("src="))
                        })
                        .unwrap_or("")
                        .to_owned()
                } else {
                    v.split(':').next().unwrap_or("").to_owned()
                };
                let s = src.trim_end_matches('/');
                if s.is_empty() && src.starts_with('/') || s == "/" {
                    return refuse(
                        &format!("{flag} {v}"),
                        "it mounts the host's root filesystem",
                    );
                }
                if s.ends_with("docker.sock")
                    || s.ends_with("podman.sock")
                    || s == "/var/run"
                    || s == "/run"
                {
                    return refuse(
                        &format!("{flag} {v}"),
                        "the engine's socket is root on the host",
                    );
                }
            }
            "--read-only" => has_read_only = inline.as_deref() != Some("false"),
            _ => {}
        }
        j += 1;
    }
    let Some(img_at) = image.filter(|k| *k < argv.len()) else {
        return Err(Error::Usage(format!("`{engine} run` without an image")));
    };
    let img = argv[img_at].clone();
    let digest = match img.split_once("@sha256:") {
        Some((_, d)) if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) => {
            DigestCheck::Pinned(img.clone())
        }
        _ => DigestCheck::TagOnly(img.clone()),
    };
    let mut added = Vec::new();
    if !has_read_only {
        added.push("--read-only".to_owned());
    }
    if network.is_none() && !grants.network {
        added.extend(["--network".to_owned(), "none".to_owned()]);
    }
    added.extend([
        "--cap-drop".to_owned(),
        "ALL".to_owned(),
        "--security-opt".to_owned(),
        "no-new-privileges".to_owned(),
    ]);
    let mut out: Vec<String> = argv[..=run_at].to_vec();
    out.extend(added.iter().cloned());
    out.extend(argv[run_at + 1..].iter().cloned());
    let mut notes = vec![format!("container hardened: {}", added.join(" "))];
    match &digest {
        DigestCheck::Pinned(_) => notes.push(format!("image {img} is pinned by digest")),
        DigestCheck::TagOnly(_) => notes.push(format!(
            "image {img} is pinned by tag only: a tag can be moved to other content; pin it as IMAGE@sha256:… (`{engine} image inspect --format '{{{{index .RepoDigests 0}}}}' {img}` shows the digest)"
        )),
    }
    if grants.network {
        notes.push("the container keeps its network: palisade's egress proxy does not see container traffic".into());
    }
    Ok(Some(Hardened {
        argv: out,
        added,
        image: digest,
        notes,
    }))
}

/// Asks the local engine for an image's repository digest (`None` when there is no engine, or the image
/// is not pulled).
pub fn resolve_digest(engine: &str, image: &str) -> Option<String> {
    let out = std::process::Command::new(engine)
        .args([
            "image",
            "inspect",
            "--format",
            "{{index .RepoDigests 0}}",
            image,
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && s.contains("@sha256:")).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn reads_npx_and_uvx_package_commands() {
        let l = parse_launcher(&v(
            "npx -y @modelcontextprotocol/server-filesystem@2026.8.31 /data",
        ))
        .unwrap();
        assert_eq!(
            (l.ecosystem, l.name.as_str(), l.version.as_deref(), l.rest),
            (
                Ecosystem::Npm,
                "@modelcontextprotocol/server-filesystem",
                Some("2026.8.31"),
                3
            )
        );
        let l = parse_launcher(&v("/usr/bin/npx --yes mcp-remote https://x")).unwrap();
        assert_eq!((l.name.as_str(), l.version), ("mcp-remote", None));
        let l = parse_launcher(&v("uvx mcp-server-fetch==2026.10.24 --ignore-robots-txt")).unwrap();
        assert_eq!(
            (l.ecosystem, l.version.as_deref(), l.rest),
            (Ecosystem::PyPI, Some("2026.10.24"), 2)
        );
        assert_eq!(
            parse_launcher(&v("pnpm dlx mcp-remote@0.1.16"))
                .unwrap()
                .name,
            "mcp-remote"
        );
        for other in [
            "node index.js",
            "uvx --from x y",
            "npx --package a b",
            "uvx 'x>=1'",
            "python -m x",
        ] {
            assert!(parse_launcher(&v(other)).is_none(), "{other}");
        }
    }

    #[test]
    fn docker_run_gets_the_isolation_flags_before_the_image() {
        let h = harden_container(
            &v("docker run -i --rm -e TOKEN ghcr.io/github/github-mcp-server stdio"),
            ContainerGrants::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            h.argv,
            v(
                "docker run --read-only --network none --cap-drop ALL --security-opt no-new-privileges -i --rm -e TOKEN ghcr.io/github/github-mcp-server stdio"
            )
        );
        assert_eq!(
            h.image,
            DigestCheck::TagOnly("ghcr.io/github/github-mcp-server".into())
        );
        assert!(h.notes.iter().any(|n| n.contains("pinned by tag only")));
        let pinned = format!("docker run img@sha256:{}", "a".repeat(64));
        let h = harden_container(&v(&pinned), ContainerGrants::default())
            .unwrap()
            .unwrap();
        assert!(matches!(h.image, DigestCheck::Pinned(_)));
        // podman and `container run` too; global options before `run`.
        assert!(
            harden_container(
                &v("podman --log-level info container run x"),
                ContainerGrants::default()
            )
            .unwrap()
            .is_some()
        );
        assert!(
            harden_container(&v("docker ps"), ContainerGrants::default())
                .unwrap()
                .is_none()
        );
        assert!(
            harden_container(&v("npx x"), ContainerGrants::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn network_is_kept_only_when_granted() {
        let h = harden_container(
            &v("docker run --network bridge img"),
            ContainerGrants { network: true },
        )
        .unwrap()
        .unwrap();
        assert!(!h.added.contains(&"none".to_owned()));
        assert!(h.argv.contains(&"bridge".to_owned()));
        let h = harden_container(&v("docker run img"), ContainerGrants { network: true })
            .unwrap()
            .unwrap();
        assert!(!h.argv.contains(&"none".to_owned()));
        let e = harden_container(
            &v("docker run --network bridge img"),
            ContainerGrants::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("grants this server no network"),
            "{e}"
        );
    }

    #[test]
    fn flags_that_undo_the_isolation_are_refused() {
        for bad in [
            "docker run --privileged img",
            "docker run --cap-add SYS_ADMIN img",
            "docker run --cap-add=NET_ADMIN img",
            "docker run --pid host img",
            "docker run --network=host img",
            "docker run --security-opt seccomp=unconfined img",
            "docker run -v /:/host img",
            "docker run -v /var/run/docker.sock:/var/run/docker.sock img",
            "docker run --mount type=bind,source=/,target=/h img",
            "docker run --device /dev/kvm img",
        ] {
            let e = harden_container(&v(bad), ContainerGrants { network: true }).unwrap_err();
            assert!(
                e.is_usage() && e.to_string().contains("refusing"),
                "{bad}: {e}"
            );
        }
        // A value that looks like a flag is a value: `-e --privileged` is an env var.
        assert!(
            harden_container(
                &v("docker run -e --privileged img"),
                ContainerGrants::default()
            )
            .unwrap()
            .is_some()
        );
    }
}
