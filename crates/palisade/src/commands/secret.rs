//! `palisade secret set|get|rm|list`: named secrets in the OS keychain (or the headless fallback), for
//! `keychain:NAME` references in policies; and the launch-time resolution of a server's environment.
//!
//! Values never travel on the command line (where `ps` and shell history would show them): `set` reads
//! stdin, prompting without echo at a terminal. `get` refuses to print to a terminal unless `--reveal`.
//! Every command says which store it used; the file store warns on every write.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use clap::{Args, Subcommand};
use palisade_secrets::{BackendChoice, Error as SecretError, Opened, Resolver, SecretName};

use crate::ExitStatus;
use crate::cli::Format;
use crate::settings::ConfigError;

/// `palisade secret …`.
#[derive(Debug, Args)]
pub(crate) struct SecretArgs {
    /// Where secrets live: `auto` (the OS keychain where one answers, else a 0600 file), `keychain`,
    /// `keyutils` (Linux kernel memory, lost at reboot) or `file`.
    #[arg(
        long,
        global = true,
        env = "PALISADE_SECRET_BACKEND",
        value_name = "BACKEND",
        default_value = "auto"
    )]
    backend: String,
    #[command(subcommand)]
    command: SecretCommand,
}

#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// Store a secret, reading its value from stdin (a hidden prompt at a terminal; otherwise all of
    /// stdin, minus one trailing newline): `printf %s "$TOKEN" | palisade secret set github`.
    Set {
        /// The secret's name (letters, digits, '.', '_', '-'); policies refer to it as `keychain:NAME`.
        name: String,
    },
    /// Print a secret's value on stdout (refused at a terminal unless --reveal).
    Get {
        /// The secret's name.
        name: String,
        /// Print even when stdout is a terminal.
        #[arg(long)]
        reveal: bool,
    },
    /// Remove a secret.
    #[command(visible_alias = "remove")]
    Rm {
        /// The secret's name.
        name: String,
    },
    /// List the stored names (never values) and the store in use.
    #[command(visible_alias = "ls")]
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Runs a `palisade secret` command.
pub(crate) fn secret(args: SecretArgs) -> Result<ExitStatus> {
    let choice = BackendChoice::parse(&args.backend).map_err(map_err)?;
    let locations = palisade_secrets::Locations::from_env().map_err(map_err)?;
    let opened = Opened::with_choice(choice, locations).map_err(map_err)?;
    match args.command {
        SecretCommand::Set { name } => set(&opened, &name),
        SecretCommand::Get { name, reveal } => get(&opened, &name, reveal),
        SecretCommand::Rm { name } => rm(&opened, &name),
        SecretCommand::List { format } => list(&opened, format),
    }
}

fn store_words(opened: &Opened) -> String {
    format!(
        "the {} store ({})",
        opened.selection.backend,
        opened.store.location()
    )
}

fn set(opened: &Opened, name: &str) -> Result<ExitStatus> {
    let name = SecretName::new(name).map_err(map_err)?;
    let value = palisade_secrets::read_value(name.as_str()).map_err(map_err)?;
    opened.store.set(&name, &value).map_err(map_err)?;
    eprintln!(
        "palisade: stored secret `{name}` in {}; refer to it as \"keychain:{name}\"",
        store_words(opened)
    );
    if let Some(warning) = opened.store.write_warning() {
        eprintln!(
            "palisade: warning: {warning}\npalisade: (this store was chosen because {})",
            opened.selection.reason
        );
    }
    Ok(ExitStatus::Success)
}

fn get(opened: &Opened, name: &str, reveal: bool) -> Result<ExitStatus> {
    let name = SecretName::new(name).map_err(map_err)?;
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    if tty && !reveal {
        return Err(ConfigError(format!(
            "refusing to print secret `{name}` to a terminal: it would stay in the scrollback, screen recordings and shared screens\nhint: pipe it (`palisade secret get {name} | …`) or pass --reveal"
        ))
        .into());
    }
    let value = opened.store.get(&name).map_err(|e| match e {
        SecretError::NotFound {
            name: n,
            backend,
            location,
            ..
        } => map_err(SecretError::NotFound {
            hint: opened.not_found_hint(&name),
            name: n,
            backend,
            location,
        }),
        other => map_err(other),
    })?;
    let mut out = stdout.lock();
    out.write_all(value.expose())?;
    // Exactly the value when piped (so `> file` and `$(…)` get what was stored); a newline at a terminal.
    if tty {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitStatus::Success)
}

fn rm(opened: &Opened, name: &str) -> Result<ExitStatus> {
    let name = SecretName::new(name).map_err(map_err)?;
    opened.store.remove(&name).map_err(map_err)?;
    eprintln!(
        "palisade: removed secret `{name}` from {}",
        store_words(opened)
    );
    Ok(ExitStatus::Success)
}

/// `--format json` shape: `{"backend": "file", "location": "...", "reason": "...", "secrets":
/// [{"name": "github"}, …]}` (names sorted; values never).
fn list(opened: &Opened, format: Format) -> Result<ExitStatus> {
    let names = opened.store.list().map_err(map_err)?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "backend": opened.selection.backend.id(),
                "location": opened.store.location(),
                "reason": opened.selection.reason,
                "secrets": names.iter().map(|n| serde_json::json!({ "name": n.as_str() })).collect::<Vec<_>>(),
            });
            writeln!(out, "{doc}")?;
        }
        Format::Text => {
            writeln!(
                out,
                "backend: {} ({})",
                opened.selection.backend,
                opened.store.location()
            )?;
            writeln!(out, "chosen because {}", opened.selection.reason)?;
            if names.is_empty() {
                writeln!(
                    out,
                    "no secrets stored; add one with `palisade secret set NAME`"
                )?;
            } else {
                writeln!(out, "{} secret(s):", names.len())?;
                for n in &names {
                    writeln!(out, "  {n}")?;
                }
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// Usage and configuration problems exit 2; "not found" and store failures exit 1.
fn map_err(e: SecretError) -> anyhow::Error {
    if e.is_usage() {
        ConfigError(e.to_string()).into()
    } else {
        anyhow::Error::msg(e.to_string())
    }
}

/// Resolves a server's declared environment (`env = { VAR = "keychain:NAME" | "env:NAME" | "file:PATH" |
/// "cmd:…" | literal }`) at launch. A failure is a configuration error naming the variable and the
/// reference kind, never a value. The store is opened only if a `keychain:` reference needs it.
pub(crate) fn resolve_server_env(env: &[(String, String)]) -> Result<Vec<(String, String)>> {
    if env.is_empty() {
        return Ok(Vec::new());
    }
    let resolved = Resolver::from_env()
        .resolve_env(env)
        .map_err(|e| ConfigError(e.to_string()))?;
    Ok(resolved
        .into_iter()
        .map(|(var, value)| (var, value.expose_str().to_owned()))
        .collect())
}
