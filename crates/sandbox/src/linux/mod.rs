//! Linux sandbox: the helper's building blocks.
//!
//! [`launcher::Sandboxed`] plans a [`crate::spec::SandboxSpec`] and starts [`helper`] (`palisade __sandbox`),
//! which builds the namespaces and the filesystem view ([`mounts`]) and execs the server.
//!
//! Hardening applied in the server process right before `execve` ([`harden`]: [`rlimits`], [`landlock`],
//! [`seccomp`]), the pids [`cgroup`] that bounds root's processes, and the capability probe behind
//! `palisade doctor` ([`probe`]). [`handoff`] carries the egress proxy's listener out of the sandbox.

pub mod cgroup;
pub mod handoff;
pub mod harden;
pub mod helper;
pub mod landlock;
pub mod launcher;
pub mod mounts;
pub mod probe;
pub mod rlimits;
pub mod scratch;
pub mod seccomp;
