//! The `agentbuild` command line: argument parsing and dispatch.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::package::{self, PackError, PackOptions, DEFAULT_DOCKERFILE};

/// Build AI agents' container images on AWS (Step Functions + CodeBuild), no Docker needed.
#[derive(Debug, Parser)]
#[command(name = "agentbuild", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Package a build context, upload it and start a build of the agent's image.
    ///
    /// The directory is zipped deterministically (honouring its .dockerignore like
    /// `docker build`), uploaded to the stack's bucket and submitted as a build request.
    Submit(SubmitArgs),
    /// Show a build's status: live while running, its record once finished.
    Status {
        /// The build id printed by `submit` (the execution name).
        build_id: String,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Wait until a build finishes; exits non-zero unless it SUCCEEDED or was REUSED.
    Wait {
        /// The build id printed by `submit` (the execution name).
        build_id: String,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Print a build's CodeBuild log.
    Logs {
        /// The build id printed by `submit` (the execution name).
        build_id: String,
    },
    /// Show the latest successful build of an agent.
    List {
        /// The agent, as `<project>/<agent>`.
        agent: AgentRef,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Package a build context locally and print {"sha256","size","files"} as JSON.
    ///
    /// The SHA-256 is the one `submit` would upload: the same tree always gives the same
    /// zip, whatever file order, timestamps or permissions (other than the execute bit).
    Pack(PackArgs),
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The build context: a directory holding the Dockerfile.
    pub dir: PathBuf,
    /// Project name (lower-case letters, digits and `-`, at most 63 characters).
    #[arg(long)]
    pub project: String,
    /// Agent name (lower-case letters, digits and `-`, at most 63 characters).
    #[arg(long)]
    pub agent: String,
    /// Path of the Dockerfile inside the build context.
    #[arg(long, default_value = DEFAULT_DOCKERFILE)]
    pub dockerfile: String,
    /// Target platform of the image.
    #[arg(long, default_value = "linux/arm64", value_parser = ["linux/arm64", "linux/amd64"])]
    pub platform: String,
    /// A Docker build argument, `KEY=VALUE`; repeat for several.
    #[arg(long = "build-arg", value_name = "KEY=VALUE", value_parser = parse_build_arg)]
    pub build_args: Vec<(String, String)>,
    /// Rebuild even if an image for this exact source already exists.
    #[arg(long)]
    pub force: bool,
    /// Wait for the build to finish (as `agentbuild wait` does).
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub output: OutputArg,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The build context: a directory holding the Dockerfile.
    pub dir: PathBuf,
    /// Path of the Dockerfile inside the build context.
    #[arg(long, default_value = DEFAULT_DOCKERFILE)]
    pub dockerfile: String,
    /// Also write the zip to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArg {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable lines.
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// `<project>/<agent>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRef {
    pub project: String,
    pub agent: String,
}

impl FromStr for AgentRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((project, agent))
                if !project.is_empty() && !agent.is_empty() && !agent.contains('/') =>
            {
                Ok(Self {
                    project: project.to_owned(),
                    agent: agent.to_owned(),
                })
            }
            _ => Err(format!("expected <project>/<agent>, got `{s}`")),
        }
    }
}

impl fmt::Display for AgentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.project, self.agent)
    }
}

fn parse_build_arg(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Pack(#[from] PackError),
    #[error("`{0}` is not yet wired to AWS")]
    NotWired(&'static str),
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing output: {0}")]
    Stdout(#[source] io::Error),
}

/// Runs one command, printing its result on stdout.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Pack(args) => pack(&args, &mut io::stdout().lock()),
        Command::Submit(_) => Err(CliError::NotWired("submit")),
        Command::Status { .. } => Err(CliError::NotWired("status")),
        Command::Wait { .. } => Err(CliError::NotWired("wait")),
        Command::Logs { .. } => Err(CliError::NotWired("logs")),
        Command::List { .. } => Err(CliError::NotWired("list")),
    }
}

fn pack(args: &PackArgs, out: &mut impl Write) -> Result<(), CliError> {
    let options = PackOptions {
        dockerfile: args.dockerfile.clone(),
    };
    let packed = package::pack_with(&args.dir, &options)?;
    if let Some(path) = &args.out {
        write_file(path, &packed.bytes)?;
    }
    let json = serde_json::to_string(&packed).map_err(|e| CliError::Stdout(e.into()))?;
    writeln!(out, "{json}").map_err(CliError::Stdout)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|source| CliError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_submit_with_repeated_build_args() {
        let cli = Cli::try_parse_from([
            "agentbuild",
            "submit",
            "ctx",
            "--project",
            "nexus-ai",
            "--agent",
            "sales",
            "--build-arg",
            "A=1",
            "--build-arg",
            "B=x=y",
            "--output",
            "json",
        ])
        .expect("valid command line");
        let Command::Submit(args) = cli.command else {
            panic!("expected submit");
        };
        assert_eq!(args.platform, "linux/arm64");
        assert_eq!(args.dockerfile, "Dockerfile");
        assert_eq!(
            args.build_args,
            [("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
        assert_eq!(args.output.output, Output::Json);
    }

    #[test]
    fn rejects_unknown_platform_and_malformed_build_arg() {
        let base = [
            "agentbuild",
            "submit",
            "ctx",
            "--project",
            "p",
            "--agent",
            "a",
        ];
        for extra in [["--platform", "windows/amd64"], ["--build-arg", "=v"]] {
            let argv = base.iter().chain(extra.iter());
            assert!(
                Cli::try_parse_from(argv).is_err(),
                "{extra:?} should be rejected"
            );
        }
    }

    #[test]
    fn list_takes_project_slash_agent() {
        let cli = Cli::try_parse_from(["agentbuild", "list", "nexus-ai/sales"]).unwrap();
        let Command::List { agent, .. } = cli.command else {
            panic!("expected list");
        };
        assert_eq!(agent.to_string(), "nexus-ai/sales");
        assert!(Cli::try_parse_from(["agentbuild", "list", "nexus-ai"]).is_err());
    }

    #[test]
    fn unwired_commands_say_so() {
        let cli = Cli::try_parse_from(["agentbuild", "status", "b-1"]).unwrap();
        let err = run(cli).unwrap_err();
        assert_eq!(err.to_string(), "`status` is not yet wired to AWS");
    }

    #[test]
    fn pack_prints_sha_size_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let zip = dir.path().join("out.zip");
        let args = PackArgs {
            dir: dir.path().to_path_buf(),
            dockerfile: "Dockerfile".into(),
            out: Some(zip.clone()),
        };
        let mut stdout = Vec::new();
        pack(&args, &mut stdout).unwrap();
        let printed: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
        let mut keys: Vec<_> = printed.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["files", "sha256", "size"]);
        assert_eq!(printed["files"], 1);
        assert_eq!(printed["size"], std::fs::metadata(&zip).unwrap().len());
    }
}
