//! palisade policy: what a server may do, compiled once and never re-read on the data path.
//!
//! # Brief overview
//! Raw input (the embedded default, a TOML file, CLI flags) is parsed with spans, validated, and compiled
//! into a [`Policy`]. Only a compiled [`Policy`] reaches the proxy and the guards, so a typo in a policy
//! file is an error that points at its line, never a silently ignored rule.
//!
//! [`Policy`] is the resolved view for **one** server: the global sections, the chosen [`Profile`]'s
//! presets, the server's own overrides and the CLI flags, merged in that order (later wins).
//!
//! - [`PolicyFile::parse`] validates a file (the format is documented in `docs/policy.md`). It reports
//!   every error at once as [`Diagnostics`], each with a stable [`Code`], `line:column`, key path and a
//!   `help:` fix. [`PolicyFile::embedded_default`] is the strict built-in floor ([`EMBEDDED_DEFAULT`]).
//! - [`resolve`] stacks embedded default → profile presets → file globals → `[servers.NAME]` → [`Overrides`]
//!   (the `palisade run` flags) into a [`Policy`]. Machine facts (HOME, cwd) come in as [`ResolveEnv`], so
//!   nothing here reads the process environment.
//! - [`check`] is `palisade policy check FILE`: every error and warning, in file order.
//!
//! ```
//! use std::path::Path;
//! use palisade_policy::{Overrides, PolicyFile, ResolveEnv, resolve};
//!
//! let file = PolicyFile::parse(
//!     "version = 1\n[servers.git]\ncommand = [\"uvx\", \"mcp-server-git\"]\n[servers.git.tools]\ndeny = [\"git_push\"]\n",
//!     "policy.toml",
//! ).expect("valid policy");
//! let env = ResolveEnv { home: Some(Path::new("/home/me")), cwd: Path::new("/work") };
//! let overrides = Overrides { allow_read: vec!["repo".into()], ..Overrides::default() };
//! let resolved = resolve(Some(&file), Some("git"), "git", &overrides, &env).expect("resolves");
//! assert!(!resolved.policy.tools.permits("git_push"));
//! assert_eq!(resolved.policy.fs.read, vec![Path::new("/work/repo").to_path_buf()]);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod diag;
mod file;
mod layer;
mod model;
mod resolve;
mod values;

pub use diag::{Code, Diagnostic, Diagnostics, Location, Severity};
pub use file::{EMBEDDED_DEFAULT, PolicyFile, check};
pub use model::*;
pub use resolve::{Overrides, ResolveEnv, Resolved, resolve};

#[cfg(test)]
mod tests;
