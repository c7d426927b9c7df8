//! CodeBuild: start, look at and stop builds of the stack's project.

use super::{classify, to_chrono};
use crate::domain::record::{FailedPhase, LogLocation, Phase};
use crate::domain::status::CodeBuildStatus;
use crate::ports::{BuildInfo, BuildService, BuildStarter, StartRequest};
use crate::Error;
use aws_sdk_codebuild::types::{
    Build, BuildPhase, EnvironmentVariable, EnvironmentVariableType, SortOrderType, SourceType,
    StatusType,
};

/// Builds by id (BatchGetBuilds, StopBuild): no project needed.
pub struct CodeBuild {
    client: aws_sdk_codebuild::Client,
}

impl CodeBuild {
    pub fn new(client: aws_sdk_codebuild::Client) -> Self {
        Self { client }
    }
}

/// The stack's project: what [`CodeBuild`] does, and StartBuild / the lookup of a started
/// build, which need the project's name.
pub struct CodeBuildProject {
    builds: CodeBuild,
    project: String,
}

impl CodeBuildProject {
    pub fn new(client: aws_sdk_codebuild::Client, project: impl Into<String>) -> Self {
        Self {
            builds: CodeBuild::new(client),
            project: project.into(),
        }
    }
}

impl BuildService for CodeBuildProject {
    async fn get(&self, id: &str) -> Result<Option<BuildInfo>, Error> {
        self.builds.get(id).await
    }

    async fn stop(&self, id: &str) -> Result<(), Error> {
        self.builds.stop(id).await
    }
}

fn status(s: &StatusType) -> CodeBuildStatus {
    match s {
        StatusType::InProgress => CodeBuildStatus::InProgress,
        StatusType::Succeeded => CodeBuildStatus::Succeeded,
        StatusType::Failed => CodeBuildStatus::Failed,
        StatusType::Fault => CodeBuildStatus::Fault,
        StatusType::Stopped => CodeBuildStatus::Stopped,
        StatusType::TimedOut => CodeBuildStatus::TimedOut,
        // `Unknown` and any variant newer than this SDK.
        other => CodeBuildStatus::Unknown(other.as_str().to_string()),
    }
}

fn info(b: &Build) -> BuildInfo {
    BuildInfo {
        id: b.id().unwrap_or_default().to_string(),
        status: b
            .build_status()
            .map(status)
            .unwrap_or(CodeBuildStatus::InProgress),
        build_complete: b.build_complete(),
        current_phase: b.current_phase().map(String::from),
        start_time: b.start_time().and_then(to_chrono),
        end_time: b.end_time().and_then(to_chrono),
        phases: b.phases().iter().map(phase).collect(),
        failed_phase: failed_phase(b),
        log_url: b.logs().and_then(|l| l.deep_link()).map(String::from),
        logs: b.logs().and_then(|l| {
            Some(LogLocation {
                group: l.group_name()?.to_string(),
                stream: l.stream_name()?.to_string(),
            })
        }),
        exported: b
            .exported_environment_variables()
            .iter()
            .filter_map(|v| Some((v.name()?.to_string(), v.value()?.to_string())))
            .collect(),
        project: b.project_name().map(String::from),
        agentbuild_build_id: b
            .environment()
            .and_then(|env| {
                env.environment_variables()
                    .iter()
                    .find(|v| v.name() == "AGENTBUILD_BUILD_ID")
            })
            .map(|v| v.value().to_string()),
    }
}

fn phase_name(p: &BuildPhase) -> String {
    p.phase_type()
        .map(|t| t.as_str().to_string())
        .unwrap_or_default()
}

fn phase(p: &BuildPhase) -> Phase {
    Phase {
        name: phase_name(p),
        status: p.phase_status().map(|s| s.as_str().to_string()),
        started_at: p.start_time().and_then(to_chrono),
        ended_at: p.end_time().and_then(to_chrono),
        duration_seconds: p.duration_in_seconds(),
    }
}

/// The first phase that ended in anything but SUCCEEDED, with CodeBuild's reason.
fn failed_phase(b: &Build) -> Option<FailedPhase> {
    let p = b.phases().iter().find(|p| {
        p.phase_status()
            .is_some_and(|s| !matches!(s, StatusType::Succeeded | StatusType::InProgress))
    })?;
    let ctx = p
        .contexts()
        .iter()
        .find(|c| c.message().is_some_and(|m| !m.is_empty()));
    Some(FailedPhase {
        name: phase_name(p),
        status: p
            .phase_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        code: ctx.and_then(|c| c.status_code()).map(String::from),
        message: ctx.and_then(|c| c.message()).map(String::from),
    })
}

impl BuildService for CodeBuild {
    async fn get(&self, id: &str) -> Result<Option<BuildInfo>, Error> {
        let out = self
            .client
            .batch_get_builds()
            .ids(id)
            .send()
            .await
            .map_err(|e| classify("CodeBuild.BatchGetBuilds", e))?;
        Ok(out.builds().iter().find(|b| b.id() == Some(id)).map(info))
    }

    async fn stop(&self, id: &str) -> Result<(), Error> {
        match self.client.stop_build().id(id).send().await {
            Ok(_) => Ok(()),
            // Stopping a build that already ended is not an error for us: it is stopped.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_invalid_input_exception()) =>
            {
                tracing::info!(
                    codebuild_id = id,
                    "build had already ended; nothing to stop"
                );
                Ok(())
            }
            Err(e) => Err(classify("CodeBuild.StopBuild", e)),
        }
    }
}

impl BuildStarter for CodeBuildProject {
    async fn start(&self, req: &StartRequest) -> Result<String, Error> {
        let plain = req
            .environment
            .iter()
            .map(|(k, v)| (k, v, EnvironmentVariableType::Plaintext));
        // A secret's variable holds its ARN: CodeBuild reads the value with the build role.
        let secrets = req
            .secrets
            .iter()
            .map(|(k, v)| (k, v, EnvironmentVariableType::SecretsManager));
        let env: Vec<EnvironmentVariable> = plain
            .chain(secrets)
            .map(|(k, v, kind)| {
                EnvironmentVariable::builder()
                    .name(k)
                    .value(v)
                    .r#type(kind)
                    .build()
                    .map_err(|e| Error::InvalidState(format!("environment variable {k}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let start = self
            .builds
            .client
            .start_build()
            .project_name(&self.project)
            .idempotency_token(&req.idempotency_token);
        let start = match &req.source_location {
            Some(location) => start
                .source_type_override(SourceType::S3)
                .source_location_override(location)
                .set_source_version(req.source_version.clone()),
            None => start,
        };
        let out = start
            .set_environment_variables_override(Some(env))
            .timeout_in_minutes_override(req.timeout_minutes)
            .queued_timeout_in_minutes_override(req.queued_timeout_minutes)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|se| se.is_account_limit_exceeded_exception())
                {
                    Error::CapacityExceeded(format!(
                        "CodeBuild.StartBuild: {}",
                        aws_smithy_types::error::display::DisplayErrorContext(&e)
                    ))
                } else {
                    classify("CodeBuild.StartBuild", e)
                }
            })?;
        out.build_value()
            .and_then(Build::id)
            .map(String::from)
            .ok_or_else(|| Error::AwsService("CodeBuild.StartBuild returned no build id".into()))
    }

    async fn find_started(&self, build_id: &str) -> Result<Option<String>, Error> {
        // The newest page (up to 100 ids) is enough: the build was started minutes ago.
        let ids = self
            .builds
            .client
            .list_builds_for_project()
            .project_name(&self.project)
            .sort_order(SortOrderType::Descending)
            .send()
            .await
            .map_err(|e| classify("CodeBuild.ListBuildsForProject", e))?
            .ids
            .unwrap_or_default();
        if ids.is_empty() {
            return Ok(None);
        }
        let out = self
            .builds
            .client
            .batch_get_builds()
            .set_ids(Some(ids))
            .send()
            .await
            .map_err(|e| classify("CodeBuild.BatchGetBuilds", e))?;
        Ok(out
            .builds()
            .iter()
            .find(|b| {
                b.environment().is_some_and(|env| {
                    env.environment_variables()
                        .iter()
                        .any(|v| v.name() == "AGENTBUILD_BUILD_ID" && v.value() == build_id)
                })
            })
            .and_then(|b| b.id().map(String::from)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codebuild::operation::batch_get_builds::BatchGetBuildsOutput;
    use aws_sdk_codebuild::operation::start_build::{StartBuildError, StartBuildOutput};
    use aws_sdk_codebuild::operation::stop_build::{StopBuildError, StopBuildOutput};
    use aws_sdk_codebuild::types::error::{InvalidInputException, ResourceNotFoundException};
    use aws_sdk_codebuild::types::{
        BuildPhase, BuildPhaseType, ExportedEnvironmentVariable, LogsLocation, PhaseContext,
    };
    use aws_sdk_codebuild::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use std::collections::BTreeMap;

    fn request() -> StartRequest {
        StartRequest {
            idempotency_token: "tok".into(),
            source_location: Some("bkt/sources/p/a/x.zip".into()),
            source_version: Some("v-7".into()),
            environment: BTreeMap::from([("AGENTBUILD_IMAGE_TAG".into(), "a-1".into())]),
            secrets: BTreeMap::from([(
                "AGENTBUILD_SECRET_PYPI".into(),
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:agentbuild/pypi".into(),
            )]),
            timeout_minutes: 60,
            queued_timeout_minutes: 30,
        }
    }

    #[tokio::test]
    async fn start_sends_overrides_only_and_returns_the_id() {
        let rule = mock!(Client::start_build)
            .match_requests(|r| {
                r.project_name() == Some("proj")
                    && r.idempotency_token() == Some("tok")
                    && r.source_type_override() == Some(&SourceType::S3)
                    && r.source_location_override() == Some("bkt/sources/p/a/x.zip")
                    && r.source_version() == Some("v-7")
                    && r.buildspec_override().is_none()
                    && r.timeout_in_minutes_override() == Some(60)
                    && r.environment_variables_override().len() == 2
                    && r.environment_variables_override()[0].name() == "AGENTBUILD_IMAGE_TAG"
                    && r.environment_variables_override()[0].r#type()
                        == Some(&EnvironmentVariableType::Plaintext)
                    && r.environment_variables_override()[1].name() == "AGENTBUILD_SECRET_PYPI"
                    && r.environment_variables_override()[1]
                        .value()
                        .ends_with("secret:agentbuild/pypi")
                    && r.environment_variables_override()[1].r#type()
                        == Some(&EnvironmentVariableType::SecretsManager)
            })
            .then_output(|| {
                StartBuildOutput::builder()
                    .build_value(Build::builder().id("proj:1").build())
                    .build()
            });
        let cb = CodeBuildProject::new(mock_client!(aws_sdk_codebuild, [&rule]), "proj");
        assert_eq!(cb.start(&request()).await.unwrap(), "proj:1");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn start_of_a_missing_project_is_a_service_error() {
        let rule = mock!(Client::start_build).then_error(|| {
            StartBuildError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("no project")
                    .build(),
            )
        });
        let cb = CodeBuildProject::new(mock_client!(aws_sdk_codebuild, [&rule]), "proj");
        let err = cb.start(&request()).await.unwrap_err();
        assert_eq!(err.name(), "AwsServiceError");
        assert!(err.to_string().contains("no project"), "{err}");
    }

    #[tokio::test]
    async fn the_concurrent_build_limit_is_its_own_error() {
        let rule = mock!(Client::start_build).then_error(|| {
            StartBuildError::AccountLimitExceededException(
                aws_sdk_codebuild::types::error::AccountLimitExceededException::builder()
                    .message("Cannot have more than 4 active builds for the project")
                    .build(),
            )
        });
        let cb = CodeBuildProject::new(mock_client!(aws_sdk_codebuild, [&rule]), "proj");
        let err = cb.start(&request()).await.unwrap_err();
        assert_eq!(err.name(), "BuildCapacityExceeded");
        assert!(
            err.to_string().contains("more than 4 active builds"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn throttling_is_retried_by_the_sdk_then_reported_transient() {
        let throttled = || {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                ),
            )
        };
        let rule = mock!(Client::start_build)
            .sequence()
            .http_response(throttled)
            .output(|| {
                StartBuildOutput::builder()
                    .build_value(Build::builder().id("proj:2").build())
                    .build()
            })
            .build();
        let client = mock_client!(aws_sdk_codebuild, RuleMode::Sequential, [&rule], |c| c
            .retry_config(
                aws_sdk_codebuild::config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(1))
            ));
        let cb = CodeBuildProject::new(client, "proj");
        assert_eq!(cb.start(&request()).await.unwrap(), "proj:2");
        assert_eq!(rule.num_calls(), 2);

        let always = mock!(Client::start_build)
            .sequence()
            .http_response(throttled)
            .repeatedly()
            .build();
        let cb = CodeBuildProject::new(mock_client!(aws_sdk_codebuild, [&always]), "proj");
        assert_eq!(
            cb.start(&request()).await.unwrap_err().name(),
            "TransientAwsError"
        );
    }

    fn failed_build() -> Build {
        let t = aws_smithy_types::DateTime::from_secs(1_800_000_000);
        Build::builder()
            .id("proj:3")
            .build_status(StatusType::Failed)
            .build_complete(true)
            .current_phase("COMPLETED")
            .start_time(t)
            .end_time(aws_smithy_types::DateTime::from_secs(1_800_000_100))
            .phases(
                BuildPhase::builder()
                    .phase_type(BuildPhaseType::Queued)
                    .phase_status(StatusType::Succeeded)
                    .duration_in_seconds(4)
                    .build(),
            )
            .phases(
                BuildPhase::builder()
                    .phase_type(BuildPhaseType::Build)
                    .phase_status(StatusType::Failed)
                    .duration_in_seconds(60)
                    .contexts(
                        PhaseContext::builder()
                            .status_code("COMMAND_EXECUTION_ERROR")
                            .message("Error while executing command: docker buildx build. Reason: exit status 1")
                            .build(),
                    )
                    .build(),
            )
            .logs(
                LogsLocation::builder()
                    .deep_link("https://console/logs/x")
                    .group_name("/agentbuild/builds")
                    .stream_name("1b2c")
                    .build(),
            )
            .project_name("proj")
            .environment(
                aws_sdk_codebuild::types::ProjectEnvironment::builder()
                    .r#type(aws_sdk_codebuild::types::EnvironmentType::ArmContainer)
                    .image("img")
                    .compute_type(aws_sdk_codebuild::types::ComputeType::BuildGeneral1Small)
                    .environment_variables(
                        EnvironmentVariable::builder()
                            .name("AGENTBUILD_BUILD_ID")
                            .value("api-1")
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .exported_environment_variables(
                ExportedEnvironmentVariable::builder()
                    .name("IMAGE_DIGEST")
                    .value("sha256:ab")
                    .build(),
            )
            .build()
    }

    #[tokio::test]
    async fn get_maps_phases_the_failed_phase_logs_and_exports() {
        let rule = mock!(Client::batch_get_builds)
            .match_requests(|r| r.ids() == ["proj:3"])
            .then_output(|| {
                BatchGetBuildsOutput::builder()
                    .builds(failed_build())
                    .build()
            });
        let cb = CodeBuildProject::new(mock_client!(aws_sdk_codebuild, [&rule]), "proj");
        let b = cb.get("proj:3").await.unwrap().unwrap();
        assert_eq!(b.status, CodeBuildStatus::Failed);
        assert!(b.build_complete);
        assert_eq!(b.phases.len(), 2);
        assert_eq!(b.phases[1].name, "BUILD");
        let f = b.failed_phase.unwrap();
        assert_eq!((f.name.as_str(), f.status.as_str()), ("BUILD", "FAILED"));
        assert_eq!(f.code.as_deref(), Some("COMMAND_EXECUTION_ERROR"));
        assert_eq!(b.log_url.as_deref(), Some("https://console/logs/x"));
        let logs = b.logs.expect("LogsLocation's group and stream");
        assert_eq!(
            (logs.group.as_str(), logs.stream.as_str()),
            ("/agentbuild/builds", "1b2c")
        );
        assert_eq!(b.exported["IMAGE_DIGEST"], "sha256:ab");
        assert_eq!(b.end_time.unwrap().timestamp(), 1_800_000_100);
        assert_eq!(b.project.as_deref(), Some("proj"));
        assert_eq!(b.agentbuild_build_id.as_deref(), Some("api-1"));
    }

    #[tokio::test]
    async fn get_of_an_unknown_id_is_none() {
        let rule = mock!(Client::batch_get_builds).then_output(|| {
            BatchGetBuildsOutput::builder()
                .builds_not_found("proj:404")
                .build()
        });
        let cb = CodeBuildProject::new(mock_client!(aws_sdk_codebuild, [&rule]), "proj");
        assert_eq!(cb.get("proj:404").await.unwrap(), None);
    }

    #[test]
    fn unknown_sdk_status_is_kept_by_name() {
        assert_eq!(
            status(&StatusType::from("PAUSED")),
            CodeBuildStatus::Unknown("PAUSED".into())
        );
    }

    #[tokio::test]
    async fn stopping_an_ended_build_is_fine_other_errors_are_not() {
        let ended = mock!(Client::stop_build).then_error(|| {
            StopBuildError::InvalidInputException(
                InvalidInputException::builder()
                    .message("Build already completed")
                    .build(),
            )
        });
        let ok = mock!(Client::stop_build).then_output(|| StopBuildOutput::builder().build());
        let cb = CodeBuildProject::new(
            mock_client!(aws_sdk_codebuild, RuleMode::Sequential, [&ended, &ok]),
            "proj",
        );
        cb.stop("proj:3").await.unwrap();
        cb.stop("proj:3").await.unwrap();
        assert_eq!((ended.num_calls(), ok.num_calls()), (1, 1));

        let missing = mock!(Client::stop_build).then_error(|| {
            StopBuildError::ResourceNotFoundException(ResourceNotFoundException::builder().build())
        });
        let cb = CodeBuildProject::new(mock_client!(aws_sdk_codebuild, [&missing]), "proj");
        assert_eq!(cb.stop("x").await.unwrap_err().name(), "AwsServiceError");
    }
}
