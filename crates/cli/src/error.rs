//! The CLI's one error type: everything that kept a command from getting an answer. A rejected
//! request or a failed build is not an error — those are outcomes with their own exit codes.

use std::io;
use std::path::PathBuf;

use crate::package::PackError;

/// Exit code when the answer is that nothing succeeded: a build that ended otherwise than
/// SUCCEEDED / REUSED, or an agent that has no successful build.
pub const EXIT_NOT_SUCCEEDED: u8 = 1;
/// Exit code when the command could not get an answer (configuration, network, AWS errors).
pub const EXIT_NO_ANSWER: u8 = 3;
/// Exit code for a bad command line (as clap's own) and for a rejected request.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Something is not configured; the message says how to configure it.
    #[error("{0}")]
    Config(String),
    /// An argument that parsed but cannot be used (a malformed build id, ...).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Pack(#[from] PackError),
    /// An AWS call failed; the message names the operation and the SDK's full error context.
    #[error("{0}")]
    Aws(String),
    /// The API answered something this CLI cannot use, or could not be reached.
    #[error("{0}")]
    Api(String),
    /// The service knows no such build.
    #[error("{0}")]
    NotFound(String),
    /// The service answered that the agent has no successful build (yet).
    #[error("{0}")]
    NoSuccessfulBuild(String),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing output: {0}")]
    Stdout(#[source] io::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::NoSuccessfulBuild(_) => EXIT_NOT_SUCCEEDED,
            _ => EXIT_NO_ANSWER,
        }
    }
}

/// `err` and its sources, joined by ": " (hyper's and rustls' `Display` say little on their own).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        source = e.source();
    }
    out
}
