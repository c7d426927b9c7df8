//! `agentbuild promote <project>/<agent>`: deploy what exists, building nothing — a successful
//! build (`--build`), an image this stack built (`--image <repository>@sha256:<digest>`) or a
//! code artifact version it made (`--code-artifact s3://… --version-id V`) — to another
//! endpoint or runtime (another environment). The API runs it as a promote of the build that
//! made the artifact: the same validation as a build request, the smoke test before the
//! endpoint moves, never the endpoint the agent's latest deploy serves (that is a rollback's).

use clap::Args;
use serde_json::{json, Value};

use crate::agent::AgentRef;
use crate::commands::{wait_for, WaitOptions};
use crate::error::CliError;
use crate::output::{Outcome, OutputArg};
use crate::progress::Progress;
use crate::service::{Service, Submission};

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The agent, as `<project>/<agent>`.
    pub agent: AgentRef,
    /// A successful build of the agent (its id).
    #[arg(long, value_name = "BUILD_ID", required_unless_present_any = ["image", "code_artifact"],
          conflicts_with_all = ["image", "code_artifact"])]
    pub build: Option<String>,
    /// An image this stack built, by digest: `<repository>@sha256:<digest>`.
    #[arg(
        long,
        value_name = "REPOSITORY@sha256:DIGEST",
        conflicts_with = "code_artifact"
    )]
    pub image: Option<String>,
    /// A code artifact this stack made: `s3://<bucket>/artifacts/<project>/<agent>/<sha256>.zip`.
    #[arg(long, value_name = "S3_URI", requires = "version_id")]
    pub code_artifact: Option<String>,
    /// The code artifact's S3 version id (the record's `artifact.versionId`).
    #[arg(
        long,
        value_name = "VERSION",
        requires = "code_artifact",
        conflicts_with = "image"
    )]
    pub version_id: Option<String>,
    /// The endpoint to deploy to (default `live`; give one: `live` of the runtime the latest
    /// deploy serves is refused — `agentbuild rollback` moves that one).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// The runtime to deploy to (default `ab_<project>_<agent>_<8 hex>`, the name a deploy
    /// without `deploy.runtimeName` gets — not necessarily the runtime the latest deploy used).
    #[arg(long, value_name = "NAME")]
    pub runtime_name: Option<String>,
    /// Wait until the deploy finishes (as `agentbuild wait` does).
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub output: OutputArg,
}

impl PromoteArgs {
    /// The API route and its body: a build's promote route, or `.../builds` with a request
    /// naming the artifact (`prebuilt`).
    pub fn route(&self) -> (String, Value) {
        let (project, agent) = (&self.agent.project, &self.agent.agent);
        let mut deploy = json!({});
        if let Some(endpoint) = &self.endpoint {
            deploy["endpoint"] = endpoint.as_str().into();
        }
        if let Some(name) = &self.runtime_name {
            deploy["runtimeName"] = name.as_str().into();
        }
        if let Some(id) = &self.build {
            let path = format!("/projects/{project}/builds/{id}/promote");
            return (path, json!({ "deploy": deploy }));
        }
        let prebuilt = match (&self.image, &self.code_artifact, &self.version_id) {
            (Some(image), _, _) => json!({ "image": image }),
            (None, Some(uri), Some(version)) => {
                json!({"code": {"uri": uri, "versionId": version}})
            }
            _ => json!({}), // clap requires one; the API names the field otherwise
        };
        let body = json!({"project": project, "agent": agent, "prebuilt": prebuilt,
                          "deploy": deploy});
        (format!("/projects/{project}/builds"), body)
    }
}

/// Starts the promote; with `--wait`, waits for its record (exit code as `wait`'s).
pub async fn promote<S: Service>(
    svc: &S,
    args: &PromoteArgs,
    progress: &mut dyn Progress,
) -> Result<Outcome, CliError> {
    if args
        .build
        .as_deref()
        .is_some_and(|id| !agentbuild_core::domain::plan::is_build_id(id))
    {
        return Err(CliError::Usage(
            "--build must be a build id (1 to 80 of letters, digits, '-' and '_')".into(),
        ));
    }
    let (path, body) = args.route();
    let started = match svc.promote(&args.agent.project, &path, &body).await? {
        Submission::Rejected(r) => return Ok(Outcome::Rejected(r)),
        Submission::Started(s) => s,
    };
    let (project, id) = (&args.agent.project, &started.build_id);
    if started.existing {
        progress.note(&format!(
            "the same promote was asked for before: build {id}"
        ));
    } else {
        progress.note(&format!("promoting as build {id} (no CodeBuild build)"));
    }
    progress.note(&format!("follow: agentbuild wait --project {project} {id}"));
    if !args.wait {
        return Ok(Outcome::Submitted(started));
    }
    wait_for(svc, id, WaitOptions::default(), true, progress)
        .await
        .map(Outcome::Build)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(line: &[&str]) -> PromoteArgs {
        let cli = Cli::try_parse_from([&["agentbuild", "promote", "demo/bot"], line].concat())
            .unwrap_or_else(|e| panic!("{e}"));
        match cli.command {
            Command::Promote(a) => *a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_build_goes_to_its_promote_route_an_artifact_to_builds_as_prebuilt() {
        let (path, body) = args(&["--build", "api-1", "--endpoint", "staging"]).route();
        assert_eq!(path, "/projects/demo/builds/api-1/promote");
        assert_eq!(body, json!({"deploy": {"endpoint": "staging"}}));
        let image = "1.dkr.ecr.r.amazonaws.com/repo@sha256:abc";
        let (path, body) = args(&["--image", image, "--runtime-name", "rt_b"]).route();
        assert_eq!(path, "/projects/demo/builds");
        assert_eq!(
            body,
            json!({"project": "demo", "agent": "bot", "prebuilt": {"image": image},
                   "deploy": {"runtimeName": "rt_b"}})
        );
        let (_, body) = args(&["--code-artifact", "s3://b/k.zip", "--version-id", "v1"]).route();
        assert_eq!(
            body["prebuilt"],
            json!({"code": {"uri": "s3://b/k.zip", "versionId": "v1"}})
        );
    }

    #[test]
    fn exactly_one_thing_to_promote_is_named() {
        for line in [
            &[][..],
            &["--build", "a", "--image", "x@sha256:1"],
            &["--code-artifact", "s3://b/k.zip"],
            &["--version-id", "v1", "--image", "x@sha256:1"],
        ] {
            let argv = [&["agentbuild", "promote", "demo/bot"], line].concat();
            assert!(Cli::try_parse_from(argv).is_err(), "{line:?}");
        }
    }
}
