//! The `agentbuild` command line: arguments, and wiring each command to its logic
//! ([`crate::commands`]), a [`Service`] over AWS ([`crate::aws`]: through the API when one is
//! configured, else directly) and the output contract ([`crate::output`]).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

pub use crate::agent::AgentRef;
use crate::aws::api::ApiService;
use crate::aws::direct::DirectService;
use crate::aws::sdk_config;
pub use crate::commands::StatusArgs;
use crate::commands::{self, WaitOptions};
use crate::error::CliError;
pub use crate::output::OutputArg;
use crate::output::{Outcome, Output};
use crate::package::{self, choose_artifact, PackOptions, DEFAULT_DOCKERFILE};
use crate::progress::Progress;
use crate::progress::Spinner;
use crate::promote::{self, PromoteArgs};
use crate::request::{Draft, FlagRequest};
use crate::runtimes;
use crate::service::{Rejection, Service};
use crate::settings::{env_file_for, GlobalArgs, Settings};
use crate::terminal::sanitize;

/// Build AI agents' container images on AWS (Step Functions + CodeBuild), no Docker needed.
///
/// Exit codes: 0 the build SUCCEEDED or was REUSED (or is still running / was just submitted),
/// 1 it ended FAILED, FAULT, STOPPED, TIMED_OUT or ERROR (or, for `list`, the agent has no
/// successful build), 2 the request was rejected (or the command line is wrong), 3 no answer
/// (configuration, network or AWS error). `cancel`: 0 the build ended STOPPED, 1 it had
/// finished on its own, 2 a malformed id, 3 no answer.
#[derive(Debug, Parser)]
#[command(name = "agentbuild", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Package a build context, upload it and start a build of the agent's image.
    ///
    /// The directory is zipped deterministically (honouring its .dockerignore like
    /// `docker build`), uploaded to the stack's bucket as sources/<project>/<agent>/<sha256>.zip
    /// (unless already there) and submitted as a build request — through the API when one is
    /// configured, else as a Step Functions execution. The request is validated locally first,
    /// with the same rules the service applies.
    Submit(Box<SubmitArgs>),
    /// Show a build's status: live while running, its record once finished.
    Status(StatusArgs),
    /// Wait until a build finishes, then print its record; the exit code says how it ended.
    Wait {
        /// The build id printed by `submit` (the execution name).
        build_id: String,
        /// The build's project (the API scopes every build route by project; a build of
        /// `submit` in the same command needs none).
        #[arg(long)]
        project: Option<String>,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Cancel a build: stop its execution and its CodeBuild build; its record ends STOPPED.
    ///
    /// Exit 0 when the build ends STOPPED (also when it was cancelled before), 1 when it had
    /// finished on its own (its status is printed), 2 for a malformed id, 3 without an answer.
    Cancel {
        /// The build id printed by `submit` (the execution name).
        build_id: String,
        /// The build's project (the API scopes every build route by project; a build of
        /// `submit` in the same command needs none).
        #[arg(long)]
        project: Option<String>,
        /// Wait until the STOPPED record is written.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Print a build's CodeBuild log link and the tail of its log.
    Logs {
        /// The build id printed by `submit` (the execution name).
        build_id: String,
        /// The build's project (the API scopes every build route by project; a build of
        /// `submit` in the same command needs none).
        #[arg(long)]
        project: Option<String>,
        /// How many of the last log lines to print.
        #[arg(long, default_value_t = 50, value_name = "N")]
        tail: u32,
    },
    /// Show the latest successful build of an agent.
    List {
        /// The agent, as `<project>/<agent>`.
        agent: AgentRef,
        #[command(flatten)]
        output: OutputArg,
    },
    /// List an agent's AgentCore runtimes: every runtime name bound to it, with its status
    /// (ACTIVE, SUPERSEDED: an old name still running, RESERVED, RETIRED) and its last build.
    Runtimes {
        /// The agent, as `<project>/<agent>`.
        agent: AgentRef,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Retire one of an agent's runtimes: delete it in AgentCore and record who and when (the
    /// name stays the agent's). Exit 0 when retired (also again), 2 when refused.
    Retire(RetireArgs),
    /// Move an agent's endpoint (default `live`) back to a good earlier version, no build;
    /// recorded in its deployment history, printed as JSON. Through the API only.
    Rollback(RollbackArgs),
    /// Deploy what exists, building nothing: a successful build (--build), an image this stack
    /// built (--image <repository>@sha256:<digest>) or a code artifact version (--code-artifact
    /// --version-id), to another endpoint or runtime; smoke-tested before the endpoint moves.
    /// Through the API only.
    Promote(Box<PromoteArgs>),
    /// Package a build context locally and print {"sha256","size","files"} as JSON.
    ///
    /// The SHA-256 is the one `submit` would upload: the same tree always gives the same
    /// zip, whatever file order, timestamps or permissions (other than the execute bit).
    Pack(PackArgs),
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The agent, as `<project>/<agent>`.
    pub agent: AgentRef,
    /// A runtime version (digits) or a buildId (default: the previous good version).
    #[arg(long, value_name = "VERSION|BUILD_ID")]
    pub to: Option<String>,
    /// The endpoint to move (default `live`).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// The runtime whose endpoint moves (default: the runtime of the agent's latest deploy).
    #[arg(long, value_name = "NAME")]
    pub runtime_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct RetireArgs {
    /// The agent, as `<project>/<agent>`.
    pub agent: AgentRef,
    /// The runtime name (see `agentbuild runtimes`).
    pub runtime_name: String,
    /// Also retire the agent's current runtime (its callers lose it).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub output: OutputArg,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The build context: a directory holding the Dockerfile.
    #[arg(required_unless_present = "request", conflicts_with = "request")]
    pub dir: Option<PathBuf>,
    /// A JSON build request (the API's body). Its `source` is an s3:// URI or a local
    /// directory (relative to the file, else to the current directory), packed and uploaded.
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    /// Project name (lower-case letters, digits and `-`, at most 63 characters).
    #[arg(long, required_unless_present = "request", conflicts_with = "request")]
    pub project: Option<String>,
    /// Agent name (lower-case letters, digits and `-`, at most 63 characters).
    #[arg(long, required_unless_present = "request", conflicts_with = "request")]
    pub agent: Option<String>,
    /// Path of the Dockerfile inside the build context.
    #[arg(long, default_value = DEFAULT_DOCKERFILE, conflicts_with = "request")]
    pub dockerfile: String,
    /// Target platform of the image.
    #[arg(long, default_value = "linux/arm64", value_parser = ["linux/arm64", "linux/amd64"],
          conflicts_with = "request")]
    pub platform: String,
    /// What to build: `container` (an image from the Dockerfile) or `code` (a zip AgentCore
    /// runs directly). Default: `code` for a directory with no Dockerfile and a Python project
    /// (requirements.txt or pyproject.toml), else `container`.
    #[arg(long, value_parser = ["container", "code"], conflicts_with = "request")]
    pub artifact: Option<String>,
    /// The file AgentCore starts, for a code artifact (default `main.py` when there is one).
    #[arg(long, value_name = "PATH", conflicts_with = "request")]
    pub entry_point: Option<String>,
    /// A code artifact's Python runtime (`PYTHON_3_10` … `PYTHON_3_14`; default the newest).
    #[arg(long, value_name = "RUNTIME", conflicts_with = "request")]
    pub runtime: Option<String>,
    /// A Docker build argument, `KEY=VALUE`; repeat for several.
    #[arg(long = "build-arg", value_name = "KEY=VALUE", value_parser = parse_build_arg,
          conflicts_with = "request")]
    pub build_args: Vec<(String, String)>,
    /// A build secret by reference, `ID=<Secrets Manager ARN>` (under the stack's
    /// BuildSecretArnPrefix); a Dockerfile reads it in `RUN --mount=type=secret,id=ID`.
    #[arg(long = "build-secret", value_name = "ID=ARN", value_parser = parse_build_arg,
          conflicts_with = "request")]
    pub build_secrets: Vec<(String, String)>,
    /// Rebuild even if an image for this exact source already exists.
    #[arg(long)]
    pub force: bool,
    /// Submitting the same key again answers the same build instead of starting another.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Once the image exists, run it in Amazon Bedrock AgentCore Runtime: create the agent's
    /// runtime (first time) or update it to the new image, and wait until it is READY.
    #[arg(long)]
    pub deploy: bool,
    /// The runtime's name (default `ab_<project>_<agent>_<hash>`, unique per agent).
    #[arg(long, value_name = "NAME", requires = "deploy")]
    pub runtime_name: Option<String>,
    /// The agent's protocol in AgentCore Runtime (default HTTP).
    #[arg(long, value_parser = ["HTTP", "MCP", "A2A"], requires = "deploy")]
    pub protocol: Option<String>,
    /// An environment variable of the runtime, `KEY=VALUE`; repeat for several.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_build_arg, requires = "deploy")]
    pub env: Vec<(String, String)>,
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

impl Command {
    /// The project a command names (the API's routes carry it).
    pub fn project(&self) -> Option<String> {
        match self {
            Command::Submit(args) => args.project.clone(),
            Command::Status(StatusArgs { project, .. })
            | Command::Wait { project, .. }
            | Command::Cancel { project, .. }
            | Command::Logs { project, .. } => project.clone(),
            Command::List { agent, .. } | Command::Runtimes { agent, .. } => {
                Some(agent.project.clone())
            }
            Command::Retire(args) => Some(args.agent.project.clone()),
            Command::Rollback(args) => Some(args.agent.project.clone()),
            Command::Promote(args) => Some(args.agent.project.clone()),
            Command::Pack(_) => None,
        }
    }
}

fn parse_build_arg(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// Runs one command; returns the process exit code. Results go to stdout, everything else
/// (notes, the spinner, errors) to stderr.
pub fn run(cli: Cli) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agentbuild: starting the async runtime: {e}");
            return crate::error::EXIT_NO_ANSWER;
        }
    };
    match runtime.block_on(dispatch(cli, &mut io::stdout().lock())) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{}", error_line(&err));
            err.exit_code()
        }
    }
}

async fn dispatch(cli: Cli, stdout: &mut dyn Write) -> Result<u8, CliError> {
    if let Command::Pack(args) = &cli.command {
        return pack(args, stdout).map(|()| 0);
    }
    let cwd = std::env::current_dir().map_err(|source| CliError::File {
        path: ".".into(),
        source,
    })?;
    let env_file = env_file_for(&cli.global, &cwd)?;
    let settings = Settings::resolve(&cli.global, &|k| std::env::var(k).ok(), env_file.as_ref());
    let sdk = sdk_config(&settings).await;
    if let Some(url) = &settings.api_url {
        let api = ApiService::new(&sdk, url).for_project(cli.command.project());
        return execute(cli.command, &api, &settings, &cwd, stdout).await;
    }
    let direct = DirectService::new(&sdk, &settings);
    execute(cli.command, &direct, &settings, &cwd, stdout).await
}

async fn execute<S: Service>(
    command: Command,
    svc: &S,
    settings: &Settings,
    cwd: &Path,
    stdout: &mut dyn Write,
) -> Result<u8, CliError> {
    let (outcome, format) = match command {
        Command::Pack(_) => unreachable!("handled above"),
        Command::Submit(args) => {
            let mut spinner = Spinner::new();
            let draft = match submit_draft(&args, cwd) {
                Ok((draft, chosen)) => chosen.iter().fold(draft, |d, n| spinner.noted(n, d)),
                Err(r) => return finish(&Outcome::Rejected(r), args.output.output, stdout),
            };
            let wait = args.wait.then(WaitOptions::default);
            let outcome =
                commands::submit(svc, draft, settings.bucket.as_deref(), wait, &mut spinner)
                    .await?;
            (outcome, args.output.output)
        }
        Command::Status(a) => (commands::status_of(svc, &a).await?, a.output.output),
        Command::Wait {
            build_id, output, ..
        } => {
            let mut spinner = Spinner::new();
            let outcome =
                commands::wait(svc, &build_id, WaitOptions::default(), &mut spinner).await?;
            (outcome, output.output)
        }
        Command::Cancel {
            build_id,
            wait,
            output,
            ..
        } => {
            let mut spinner = Spinner::new();
            let wait = wait.then(WaitOptions::default);
            let outcome = commands::cancel(svc, &build_id, wait, &mut spinner).await?;
            (outcome, output.output)
        }
        Command::List { agent, output } => (
            commands::latest(svc, &agent.project, &agent.agent).await?,
            output.output,
        ),
        Command::Runtimes { agent, output } => {
            return runtimes::list(svc, &agent.project, &agent.agent)
                .await?
                .render(output.output, stdout)
        }
        Command::Retire(args) => return retire(svc, args, stdout).await,
        Command::Rollback(a) => return rollback(svc, a, stdout).await,
        Command::Promote(a) => return promote(svc, &a, stdout).await,
        Command::Logs { build_id, tail, .. } => {
            return commands::print_log_tail(svc, &build_id, tail, stdout).await
        }
    };
    finish(&outcome, format, stdout)
}

/// `promote <project>/<agent> (--build | --image | --code-artifact --version-id)`.
async fn promote<S: Service>(
    svc: &S,
    a: &PromoteArgs,
    stdout: &mut dyn Write,
) -> Result<u8, CliError> {
    let mut spinner = Spinner::new();
    let outcome = promote::promote(svc, a, &mut spinner).await?;
    finish(&outcome, a.output.output, stdout)
}

/// `retire <project>/<agent> <runtimeName> [--force]`.
async fn retire<S: Service>(
    svc: &S,
    args: RetireArgs,
    stdout: &mut dyn Write,
) -> Result<u8, CliError> {
    let (p, a) = (&args.agent.project, &args.agent.agent);
    let retired = runtimes::retire(svc, p, a, &args.runtime_name, args.force).await?;
    retired.render(args.output.output, stdout)
}

fn finish(outcome: &Outcome, format: Output, stdout: &mut dyn Write) -> Result<u8, CliError> {
    outcome.render(format, stdout)?;
    Ok(outcome.exit_code())
}

/// What `run` prints on stderr for an error: its text may quote the service, or a proxy's page.
fn error_line(err: &CliError) -> String {
    format!("agentbuild: {}", sanitize(err.to_string().trim_end()))
}

/// `logs`: the link and the log lines on stdout, why there are none on stderr. CodeBuild's log
/// is the build's own output, written by whatever the context's Dockerfile runs.
/// `rollback <project>/<agent> [--to] [--endpoint] [--runtime-name]`.
async fn rollback<S: Service>(
    svc: &S,
    a: RollbackArgs,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    let agent = (a.agent.project.as_str(), a.agent.agent.as_str());
    let target = (a.endpoint, a.runtime_name);
    runtimes::rollback_command(svc, agent, a.to, target, out).await
}

/// The request of `submit`, from its flags or its `--request` file; with the line that says
/// which artifact the CLI chose by itself, when it did.
fn submit_draft(args: &SubmitArgs, cwd: &Path) -> Result<(Draft, Option<String>), Rejection> {
    let mut chosen = None;
    let mut draft = match &args.request {
        Some(file) => Draft::from_file(&cwd.join(file), cwd)?,
        None => {
            let dir = cwd.join(args.dir.clone().unwrap_or_default());
            let artifact = match &args.artifact {
                Some(given) => given.clone(),
                None => {
                    let (kind, why) = choose_artifact(&dir, &args.dockerfile);
                    chosen = why;
                    kind.to_string()
                }
            };
            let entry_point = match (&args.entry_point, artifact.as_str()) {
                (Some(e), _) => Some(e.clone()),
                (None, "code") if dir.join("main.py").is_file() => Some("main.py".into()),
                _ => None,
            };
            Draft::from_flags(&FlagRequest {
                dir,
                project: args.project.clone().unwrap_or_default(),
                agent: args.agent.clone().unwrap_or_default(),
                dockerfile: args.dockerfile.clone(),
                platform: args.platform.clone(),
                build_args: args.build_args.clone(),
                artifact: Some(artifact).filter(|a| a == "code"),
                entry_point,
                runtime: args.runtime.clone(),
                build_secrets: args.build_secrets.clone(),
            })
        }
    };
    draft.apply_overrides(args.force, args.idempotency_key.as_deref());
    if args.deploy {
        draft.apply_deploy(
            args.runtime_name.as_deref(),
            args.protocol.as_deref(),
            &args.env,
        );
    }
    Ok((draft, chosen))
}

fn pack(args: &PackArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let options = PackOptions {
        dockerfile: args.dockerfile.clone(),
        needs_dockerfile: choose_artifact(&args.dir, &args.dockerfile).0 == "container",
    };
    let packed = package::pack_with(&args.dir, &options)?;
    if let Some(path) = &args.out {
        write_file(path, &packed.bytes)?;
    }
    let json = serde_json::to_string(&packed).map_err(|e| CliError::Stdout(e.into()))?;
    writeln!(out, "{json}").map_err(CliError::Stdout)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|source| CliError::File {
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
    fn deploy_flags_make_the_requests_deploy_object_and_need_deploy() {
        let cli = Cli::try_parse_from([
            "agentbuild",
            "submit",
            "ctx",
            "--project",
            "nexus-ai",
            "--agent",
            "sales",
            "--deploy",
            "--runtime-name",
            "Sales_Bot",
            "--protocol",
            "MCP",
            "--env",
            "LOG_LEVEL=info",
            "--env",
            "A=b=c",
        ])
        .expect("valid command line");
        let Command::Submit(args) = cli.command else {
            panic!("not submit")
        };
        let (draft, _) = submit_draft(&args, Path::new("/tmp")).unwrap();
        assert_eq!(
            draft.validate_before_upload().unwrap(),
            None,
            "a local context"
        );
        let req = draft
            .parse_with_source("s3://bkt/sources/nexus-ai/sales/0f.zip")
            .unwrap();
        let d = req.deploy.expect("deploy");
        assert_eq!(
            (d.runtime_name.as_deref(), d.protocol),
            (
                Some("Sales_Bot"),
                agentbuild_core::domain::deploy_request::Protocol::Mcp
            )
        );
        assert_eq!(d.environment_variables["A"], "b=c");
        // Without --deploy, its flags are refused; a bad name is rejected naming the field.
        assert!(Cli::try_parse_from([
            "agentbuild",
            "submit",
            "ctx",
            "--project",
            "p",
            "--agent",
            "a",
            "--protocol",
            "MCP"
        ])
        .is_err());
        let cli = Cli::try_parse_from([
            "agentbuild",
            "submit",
            "ctx",
            "--project",
            "p",
            "--agent",
            "a",
            "--deploy",
            "--runtime-name",
            "bad-name",
        ])
        .unwrap();
        let Command::Submit(args) = cli.command else {
            panic!("not submit")
        };
        let err = submit_draft(&args, Path::new("/tmp"))
            .unwrap()
            .0
            .validate_before_upload()
            .unwrap_err();
        assert_eq!(err.field, "deploy.runtimeName");
    }

    #[test]
    fn picks_code_for_a_python_project_without_a_dockerfile_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.py"), "print(1)\n").unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "strands-agents\n").unwrap();
        let submit = |extra: &[&str]| {
            let mut argv = vec![
                "agentbuild",
                "submit",
                ".",
                "--project",
                "p",
                "--agent",
                "a",
            ];
            argv.extend_from_slice(extra);
            let Command::Submit(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not submit")
            };
            submit_draft(&args, dir.path()).unwrap()
        };
        let (draft, note) = submit(&[]);
        assert!(note.unwrap().contains("building a code artifact"));
        let req = draft
            .parse_with_source("s3://bkt/sources/p/a/0f.zip")
            .unwrap();
        assert_eq!(req.artifact.as_str(), "code");
        assert_eq!(req.entry_point.as_deref(), Some("main.py"));
        let (draft, note) = submit(&["--artifact", "container"]);
        assert_eq!(note, None);
        let req = draft
            .parse_with_source("s3://bkt/sources/p/a/0f.zip")
            .unwrap();
        assert_eq!(req.artifact.as_str(), "container");
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let (draft, note) = submit(&[]);
        assert_eq!(note, None, "a Dockerfile decides");
        assert_eq!(draft.text("artifact", "container"), "container");
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
    fn cancel_takes_a_build_id_and_wait() {
        let cli = Cli::try_parse_from(["agentbuild", "cancel", "api-1", "--wait"]).unwrap();
        let Command::Cancel { build_id, wait, .. } = cli.command else {
            panic!("expected cancel");
        };
        assert_eq!((build_id.as_str(), wait), ("api-1", true));
        assert!(Cli::try_parse_from(["agentbuild", "cancel"]).is_err());
    }

    #[test]
    fn every_command_has_help() {
        let mut cmd = Cli::command();
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "submit", "status", "wait", "cancel", "logs", "list", "runtimes", "retire",
                "rollback", "promote", "pack"
            ]
        );
        let help = cmd.render_long_help().to_string();
        assert!(help.contains("Exit codes"), "{help}");
        for name in &names {
            let err = Cli::try_parse_from(["agentbuild", name, "--help"]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp, "{name}");
            let text = err.to_string();
            assert!(text.contains("Usage: agentbuild"), "{name}: {text}");
            for flag in [
                "--profile",
                "--region",
                "--endpoint-url",
                "--env-file",
                "--api-url",
                "--bucket",
                "--state-machine-arn",
            ] {
                if name != "pack" {
                    assert!(text.contains(flag), "{name} --help lacks {flag}");
                }
            }
        }
        let submit = Cli::try_parse_from(["agentbuild", "submit", "--help"])
            .unwrap_err()
            .to_string();
        for flag in [
            "--request",
            "--idempotency-key",
            "--wait",
            "--output",
            "--build-arg",
            "--force",
        ] {
            assert!(submit.contains(flag), "submit --help lacks {flag}");
        }
    }

    #[test]
    fn submit_takes_a_request_file_instead_of_dir_project_and_agent() {
        let cli = Cli::try_parse_from([
            "agentbuild",
            "submit",
            "--request",
            "examples/requests/sample.json",
            "--wait",
            "--output",
            "json",
            "--force",
        ])
        .unwrap();
        let Command::Submit(args) = cli.command else {
            panic!()
        };
        assert_eq!(
            args.request.as_deref(),
            Some(Path::new("examples/requests/sample.json"))
        );
        assert!(args.wait && args.force);
        assert!(
            Cli::try_parse_from(["agentbuild", "submit", "--request", "r.json", "dir"]).is_err()
        );
        assert!(Cli::try_parse_from([
            "agentbuild",
            "submit",
            "--request",
            "r.json",
            "--agent",
            "a"
        ])
        .is_err());
        assert!(
            Cli::try_parse_from(["agentbuild", "submit", "dir", "--project", "p"]).is_err(),
            "agent required"
        );
    }

    #[test]
    fn configuration_flags_go_anywhere_on_the_line() {
        let cli = Cli::try_parse_from([
            "agentbuild",
            "--region",
            "eu-west-1",
            "status",
            "cli-1",
            "--bucket",
            "b",
            "--api-url",
            "http://127.0.0.1:9000/lambda-url/api",
            "--no-env-file",
        ])
        .unwrap();
        assert_eq!(cli.global.region.as_deref(), Some("eu-west-1"));
        assert_eq!(cli.global.bucket.as_deref(), Some("b"));
        assert!(cli.global.no_env_file);
        assert!(cli.global.api_url.is_some());
    }

    #[test]
    fn a_request_file_rejection_needs_no_aws() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("invalid.json");
        std::fs::write(
            &file,
            r#"{"project":"demo","agent":"Not A Name","source":"."}"#,
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "agentbuild",
            "--no-env-file",
            "submit",
            "--request",
            file.to_str().unwrap(),
            "--output",
            "json",
        ])
        .unwrap();
        let mut stdout = Vec::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let code = rt.block_on(dispatch(cli, &mut stdout)).unwrap();
        assert_eq!(code, 2);
        let text = String::from_utf8(stdout).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["status"], "REJECTED");
        assert_eq!(last["error"]["field"], "agent");
        assert_eq!(last["error"]["code"], "InvalidRequest");
    }

    /// `submit --request FILE --output json` of `text`, without AWS: exit code and last line.
    fn submit_file(text: &str) -> (u8, serde_json::Value) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("request.json");
        std::fs::write(&file, text).unwrap();
        let cli = Cli::try_parse_from([
            "agentbuild",
            "--no-env-file",
            "submit",
            "--request",
            file.to_str().unwrap(),
            "--output",
            "json",
        ])
        .unwrap();
        let mut stdout = Vec::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let code = rt.block_on(dispatch(cli, &mut stdout)).unwrap();
        let text = String::from_utf8(stdout).unwrap();
        (
            code,
            serde_json::from_str(text.lines().last().unwrap()).unwrap(),
        )
    }

    #[test]
    fn a_request_file_with_a_duplicate_key_is_rejected_naming_it() {
        let (code, last) = submit_file(
            r#"{"project":"demo","agent":"a","source":".","force":false,"force":true}"#,
        );
        assert_eq!(code, 2);
        assert_eq!(last["status"], "REJECTED");
        assert_eq!(last["error"]["code"], "InvalidRequest");
        assert_eq!(last["error"]["field"], "force");
    }

    #[test]
    fn a_request_file_over_64_kib_is_rejected() {
        let padding = " ".repeat(64 * 1024);
        let (code, last) = submit_file(&format!(
            r#"{{"project":"demo","agent":"a","source":"."}}{padding}"#
        ));
        assert_eq!(code, 2);
        assert_eq!(last["status"], "REJECTED");
        assert_eq!(last["error"]["code"], "PayloadTooLarge");
        assert_eq!(last["error"]["field"], "request");
    }

    #[test]
    fn logs_print_the_build_output_without_its_control_sequences() {
        use crate::terminal::tests::{assert_inert, HOSTILE};
        for (hostile, clean) in HOSTILE {
            let logs = commands::Logs {
                link: Some(format!("https://console.aws.amazon.com/{hostile}")),
                tail: Ok(vec![format!("#5 RUN {hostile}"), "done\n".into()]),
            };
            let (mut out, mut err) = (Vec::new(), Vec::new());
            commands::print_logs(&logs, &mut out, &mut err).unwrap();
            let out = String::from_utf8(out).unwrap();
            assert_inert(&out);
            assert!(out.contains(&format!("#5 RUN {clean}\ndone\n")), "{out:?}");
            assert!(out.starts_with("log: https://console.aws.amazon.com/"));

            let why = commands::Logs {
                link: None,
                tail: Err(format!("the request was rejected (source: {hostile})")),
            };
            let (mut out, mut err) = (Vec::new(), Vec::new());
            commands::print_logs(&why, &mut out, &mut err).unwrap();
            let err = String::from_utf8(err).unwrap();
            assert_inert(&err);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn errors_quoting_the_service_carry_no_control_sequences() {
        use crate::terminal::tests::{assert_inert, HOSTILE};
        for (hostile, _) in HOSTILE {
            for err in [
                CliError::Api(format!("GET /builds/x: HTTP 502: {hostile}")),
                CliError::Aws(format!("S3 GetObject: {hostile}\n")),
                CliError::NoSuccessfulBuild(format!("demo/{hostile} has no successful build")),
            ] {
                let line = error_line(&err);
                assert_inert(&line);
                assert!(line.starts_with("agentbuild: "), "{line}");
                assert!(!line.ends_with('\n'), "{line:?}");
            }
        }
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
