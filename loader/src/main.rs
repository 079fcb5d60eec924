//! `cellblock`: the management CLI. The logic lives in the library
//! (`src/lib.rs`); this only parses arguments and reports.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = loader::cli::Cli::parse();
    match loader::run(&cli) {
        Ok(report) => {
            for line in report {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            for line in err.lines() {
                eprintln!("cellblock: {line}");
            }
            ExitCode::from(1)
        }
    }
}
