//! Argument checkers for `tools/call`: JSON Schema, paths, URLs and positional values.
//!
//! These are plain functions over values and policy. Path resolution needs the filesystem (to follow
//! symlinks), which is the one piece of I/O a guard performs; it is behind [`paths::Resolver`] so tests can
//! substitute a fake tree.

pub mod paths;
pub mod schema;
pub mod urls;
