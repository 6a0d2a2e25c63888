//! Test kit for palisade's integration tests.
//!
//! # Brief overview
//! Integration tests run palisade against **real** MCP peers, pinned in `tests/peers/` and installed by
//! `bash .ci/run`. This crate gives those tests four small pieces:
//!
//! * [`peers`]: the argv that starts each pinned peer (server-everything, server-filesystem, the Python
//!   servers, the conformance suite, Node 22, the Python SDK interpreter). A missing peer **panics** with the
//!   command that installs it: a test that cannot find its peer fails, it never skips.
//! * [`client`]: [`McpProcess`], a synchronous JSON-RPC-over-stdio client. A reader thread feeds a channel;
//!   every wait has a timeout and a failed wait panics with the child's stderr, so a red test explains itself.
//! * [`xdg`]: [`TestHome`], a fresh `HOME` + `XDG_*` tree applied to a [`std::process::Command`] and removed on
//!   drop, and [`TempDir`], a plain temporary directory.
//! * The `palisade-echo-server` binary: a tiny MCP server in plain Rust (one tool, `echo`) with switches for
//!   rug-pull, slow-call and unsolicited-response tests. [`echo_server()`] returns its path from a test.
//!
//! ```no_run
//! use palisade_testkit::{McpProcess, peers};
//! let mut server = McpProcess::spawn(peers::command(&peers::server_everything_stdio()));
//! server.initialize();
//! let tools = server.request("tools/list", serde_json::json!({}));
//! assert!(tools["result"]["tools"].as_array().unwrap().iter().any(|t| t["name"] == "echo"));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod peers;
pub mod xdg;

pub use client::McpProcess;
pub use xdg::{TempDir, TestHome};

use std::path::PathBuf;

/// Path of the `palisade-echo-server` binary built alongside the calling test.
///
/// Cargo exports `CARGO_BIN_EXE_<name>` only to the integration tests of the package that owns the binary, so
/// tests in other packages call this instead: it looks next to the running test executable
/// (`target/<profile>/deps/..`). `cargo test --workspace` always builds it; a narrower run
/// (`cargo test -p palisade`) may not, and then this panics with the command that builds it.
pub fn echo_server() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let name = format!("palisade-echo-server{}", std::env::consts::EXE_SUFFIX);
    for dir in exe.ancestors().skip(1).take(3) {
        let candidate = dir.join(&name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "palisade-echo-server is not built next to {}; run `cargo build -p palisade-testkit --bin palisade-echo-server` \
         (a `cargo test --workspace` builds it)",
        exe.display()
    );
}
