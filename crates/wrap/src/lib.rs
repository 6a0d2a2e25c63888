//! palisade-wrap: put every MCP server of a client config behind `palisade run`, and take it back out.
//!
//! # Brief overview
//! * [`plan()`] takes a config read by `palisade-scan` ([`palisade_scan::ConfigFile`], every string with its
//!   byte span) and decides, without touching anything, what wrapping it means: the new config text (each
//!   local server's `command`/`args` become `palisade run --policy P --server NAME -- <old command> <old
//!   args>`), the generated policy (`policy_text`: roots from the arguments, no network, suggested hosts
//!   commented out, `keychain:` references for moved secrets), the plaintext secrets to move into the
//!   store, and a reason for every entry it leaves alone. The result is read back and verified first.
//! * [`apply()`] carries a [`Plan`] out in a rollback-able order (secrets, policy, backup, record, then the
//!   config by temp file + fsync + rename); [`plan_unwrap`]/[`apply_unwrap`] restore the backup byte for
//!   byte once the record's hash says the config is still the one wrap wrote.
//! * `edit` is how the text changes: splices over spans, never re-serializing a file, so comments,
//!   order and layout survive. [`known`] knows which hosts well-known servers and package runners need.
//! * [`record`] names where things live ([`Dirs`]) and what unwrap needs to know ([`Record`]).
//!
//! Data flow: `ConfigFile` + [`Setup`] → [`plan()`] → [`Plan`] (diff for `--dry-run`) → [`apply()`] →
//! files + [`Record`]; later [`Record`] → [`plan_unwrap`] → [`apply_unwrap`].
//!
//! Why a crate of its own rather than a module of `palisade-scan`: scanning only reads, so it is safe to
//! run in CI on untrusted files and needs no secret store; wrapping writes user files and secrets. Keeping
//! the writer apart keeps the reader's dependencies (and its risk) small, and gives the rollback logic one
//! place to live. It uses scan's readers, launch analysis and secret detector as they are, so what `scan`
//! reports and what `wrap` fixes can never drift apart.
//!
//! ```
//! use std::collections::BTreeSet;
//! use std::path::Path;
//! use palisade_scan::{Candidate, Client, ConfigFile, Scope, Shape};
//! use palisade_wrap::{Action, Setup, plan};
//!
//! let text = r#"{"mcpServers": {"time": {"command": "mcp-server-time"}}}"#;
//! let c = Candidate { client: Client::Cursor, shape: Shape::McpServers, scope: Scope::User, path: "/h/.cursor/mcp.json".into() };
//! let file = ConfigFile::parse(&c, text.into(), Some(0o600));
//! let none = BTreeSet::new();
//! let setup = Setup {
//!     palisade: Path::new("/usr/bin/palisade"),
//!     policy_path: Path::new("/h/.config/palisade/wrapped/cursor-0.toml"),
//!     policy_text: None,
//!     home: Path::new("/h"),
//!     taken_servers: &none,
//!     taken_secrets: &none,
//!     allow_registry: false,
//! };
//! let p = plan(&file, &setup).unwrap();
//! assert_eq!(p.servers[0].action, Action::Wrap { server: "cursor-time".into() });
//! assert_eq!(
//!     p.after,
//!     r#"{"mcpServers": {"time": {"command": "/usr/bin/palisade", "args": ["run", "--policy", "/h/.config/palisade/wrapped/cursor-0.toml", "--server", "cursor-time", "--", "mcp-server-time"]}}}"#
//! );
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg(unix)]

pub mod apply;
mod diff;
mod edit;
mod fsio;
pub mod known;
pub mod plan;
mod policy_text;
pub mod record;

pub use apply::{
    Applied, ApplyError, PolicyOutcome, UnwrapPlan, Unwrapped, apply, apply_unwrap, plan_unwrap,
};
pub use diff::unified as unified_diff;
pub use plan::{Action, NEVER_PASSED, Plan, PlanError, SecretMove, ServerPlan, Setup, plan};
pub use record::{Dirs, Generation, Record, RecordError, config_id};
