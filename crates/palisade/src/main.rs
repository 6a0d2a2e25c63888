//! palisade: run MCP servers safely.
//!
//! This file is wiring only: dispatch the hidden helper subcommands before anything else (no threads
//! exist yet), parse the command line, resolve settings, run one command, and map the result to the
//! exit-status contract (0 ok · 1 findings/denials/verification failed · 2 usage or configuration error).
#![forbid(unsafe_code)]

mod audit_map;
mod cli;
mod commands;
mod dirs;
mod egress;
mod launch;
mod pins;
mod proxy;
mod settings;

use clap::Parser;

use cli::{Cli, Command, PinCommand, PolicyCommand, TokenCommand};

/// The process exit status contract, defined once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    /// Success.
    Success = 0,
    /// Findings or denials at/above the threshold, or verification failed.
    Failure = 1,
    /// Usage or configuration error.
    Error = 2,
}

fn main() {
    // Helper roles are chosen before clap or any thread runs.
    let mut args = std::env::args_os();
    if let (Some(_), Some(sub)) = (args.next(), args.next()) {
        let mut arg = || {
            args.next()
                .and_then(|a| a.into_string().ok())
                .unwrap_or_default()
        };
        if sub == palisade_sandbox::watchdog::SUBCOMMAND {
            palisade_sandbox::watchdog::run(&arg());
        }
        if sub == palisade_sandbox::SANDBOX_SUBCOMMAND {
            palisade_sandbox::run_sandbox_helper(&arg());
        }
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                ExitStatus::Error as i32
            } else {
                0
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let status = match dispatch(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("palisade: error: {e:#}");
            if e.downcast_ref::<settings::ConfigError>().is_some() {
                ExitStatus::Error
            } else {
                ExitStatus::Failure
            }
        }
    };
    std::process::exit(status as i32);
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Run(args) => commands::run::run(settings::run_settings(&args)?),
        Command::Inspect(args) => {
            commands::inspect::inspect(settings::server_settings(&args.server, None)?, args.format)
        }
        Command::Scan(args) => commands::scan::scan(args),
        Command::Wrap(args) => commands::wrap::wrap(args),
        Command::Unwrap(args) => commands::wrap::unwrap(args),
        Command::Policy {
            command: PolicyCommand::Check { file },
        } => commands::policy::check(&file),
        Command::Policy {
            command: PolicyCommand::Default,
        } => commands::policy::print_default(),
        Command::Logs(a) => commands::logs::logs(a.file, a.follow, a.verify),
        Command::Pin {
            command: PinCommand::List { server, pins },
        } => commands::pin::list(server, pins),
        Command::Pin {
            command:
                PinCommand::Accept {
                    server,
                    pins,
                    all,
                    tools,
                },
        } => commands::pin::accept(server, pins, all, tools),
        Command::Audit(args) => commands::audit::audit(args),
        Command::Install(args) => commands::install::install(args),
        Command::Update(args) => commands::install::update(args),
        Command::Rollback(args) => commands::install::rollback(args),
        Command::Doctor { format } => commands::doctor::doctor(format),
        Command::Secret(args) => commands::secret::secret(args),
        Command::Serve(args) => commands::serve::serve(&args),
        Command::Token { command } => match command {
            TokenCommand::Create {
                client,
                scopes,
                ttl,
                tokens,
            } => commands::token::create(tokens, &client, scopes, &ttl),
            TokenCommand::List { format, tokens } => commands::token::list(tokens, format),
            TokenCommand::Revoke { id, tokens } => commands::token::revoke(tokens, &id),
        },
    }
}
