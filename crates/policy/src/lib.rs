//! palisade policy: what a server may do, compiled once and never re-read on the data path.
//!
//! # Brief overview
//! Raw input (the embedded default, a TOML file, CLI flags) is parsed with spans, validated, and compiled
//! into a [`Policy`]. Only a compiled [`Policy`] reaches the proxy and the guards, so a typo in a policy
//! file is an error that points at its line, never a silently ignored rule.
//!
//! [`Policy`] is the resolved view for **one** server: the global sections, the chosen [`Profile`]'s
//! presets, the server's own overrides and the CLI flags, merged in that order (later wins).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod model;
pub use model::*;
