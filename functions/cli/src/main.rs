use std::process::ExitCode;

use agentbuild_cli::cli::{run, Cli};
use clap::Parser;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("agentbuild: {err}");
            ExitCode::FAILURE
        }
    }
}
