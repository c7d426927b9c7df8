use std::process::ExitCode;

use agentbuild_cli::cli::{run, Cli};
use clap::Parser;

fn main() -> ExitCode {
    ExitCode::from(run(Cli::parse()))
}
