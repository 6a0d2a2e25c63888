//! Shared helpers for the end-to-end tests.

#![allow(dead_code)]

use palisade_testkit::xdg::TestHome;
use std::process::Command;

/// The palisade binary under test.
pub fn palisade() -> &'static str {
    env!("CARGO_BIN_EXE_palisade")
}

/// `palisade ARGS…` with an isolated home.
pub fn cmd(home: &TestHome, args: &[&str]) -> Command {
    let mut c = Command::new(palisade());
    c.args(args);
    home.apply(&mut c);
    c
}
