//! Linux sandbox: the helper's building blocks.
//!
//! Hardening applied in the server process right before `execve` ([`harden`]: [`rlimits`], [`landlock`],
//! [`seccomp`]) and the capability probe behind `palisade doctor` ([`probe`]).

pub mod harden;
pub mod landlock;
pub mod probe;
pub mod rlimits;
pub mod seccomp;
