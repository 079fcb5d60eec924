//! The `cellblock` CLI's logic, kept out of `main.rs` so it is testable.
//!
//! - [`cli`]: the command line (clap).
//! - [`files`]: reading text (TOML) and binary (`.cell`) configs.
//! - [`commands`]: `config compile`, `config check`, `pack`.
//! - [`error`]: errors as `<what>: <why>` lines.

pub mod cli;
pub mod commands;
pub mod error;
pub mod files;

pub use error::Error;

/// Runs a parsed command line; on success, the lines to print on stdout.
pub fn run(cli: &cli::Cli) -> Result<Vec<String>, Error> {
    match &cli.command {
        cli::Command::Config {
            action: cli::ConfigAction::Compile(args),
        } => commands::compile(args),
        cli::Command::Config {
            action: cli::ConfigAction::Check(args),
        } => commands::check(args),
        cli::Command::Pack(args) => commands::pack(args),
    }
}
