//! End-to-end tests: the real `palisade` binary against real MCP servers at pinned versions
//! (`tests/peers/`), driven by a real client over stdio. Each test gets its own `HOME` and `XDG_*` dirs.

// A test binary has no public API: `pub` only shares helpers between its modules.
#![allow(unreachable_pub)]

mod util;

mod analyze;
mod audit;
mod cli;
mod egress;
mod eras;
mod filesystem;
mod framing;
mod git;
mod guards;
mod hostile;
mod lifecycle;
mod protocol;
mod sandbox;
mod scan;
mod sdk_client;
mod secret;
mod serve;
mod serve_remote;
mod supply;
mod wrap;
