//! The [`Service`] without the API: the core's services over its S3, Step Functions and (to
//! cancel) CodeBuild adapters, as the API itself runs them.

use agentbuild_core::adapters::codebuild::CodeBuild;
use agentbuild_core::adapters::s3::S3Store;
use agentbuild_core::adapters::sfn::StepFunctions;
use agentbuild_core::contract::BuildAnswer;
use agentbuild_core::domain::record::BuildRecord;
use agentbuild_core::domain::request::ValidRequest;
use agentbuild_core::services::cancel::{self, cancel};
use agentbuild_core::services::live_status::{status, Status};
use agentbuild_core::services::{records, submit};
use agentbuild_core::Error;
use aws_config::SdkConfig;

use super::Aws;
use crate::error::CliError;
use crate::package::Packed;
use crate::service::{view, BuildView, Cancellation, LogStream, Rejection, Service, Submission};
use crate::settings::Settings;

/// The door's name in the execution names it gives: `cli-<hash>`.
const DOOR: &str = "cli";

pub struct DirectService {
    aws: Aws,
    store: Option<S3Store>,
    executions: Option<StepFunctions>,
    /// Stops builds by id: no project name needed.
    builds: CodeBuild,
}

/// The execution's cause and the record's `error.message` when the CLI cancels.
const CANCEL_CAUSE: &str = "cancelled through the CLI (agentbuild cancel)";

impl DirectService {
    pub fn new(sdk: &SdkConfig, settings: &Settings) -> Self {
        let s3 = agentbuild_core::adapters::s3_client(sdk);
        let sfn = aws_sdk_sfn::Client::new(sdk);
        Self {
            aws: Aws::new(sdk),
            store: settings.bucket.clone().map(|b| S3Store::new(s3, b)),
            executions: settings
                .state_machine_arn
                .clone()
                .map(|arn| StepFunctions::new(sfn, arn)),
            builds: CodeBuild::new(aws_sdk_codebuild::Client::new(sdk)),
        }
    }

    #[cfg(test)]
    fn with(aws: Aws, store: S3Store, executions: StepFunctions) -> Self {
        let cb = aws_smithy_mocks::mock_client!(aws_sdk_codebuild, []);
        Self::with_builds(aws, store, executions, CodeBuild::new(cb))
    }

    #[cfg(test)]
    fn with_builds(aws: Aws, store: S3Store, executions: StepFunctions, cb: CodeBuild) -> Self {
        Self {
            aws,
            store: Some(store),
            executions: Some(executions),
            builds: cb,
        }
    }

    fn store(&self) -> Result<&S3Store, CliError> {
        self.store.as_ref().ok_or_else(|| {
            CliError::Config(
                "no bucket configured: run `make local-up` (it writes .local/env), or pass \
                 --bucket / set AGENTBUILD_BUCKET (or use the API: --api-url)"
                    .into(),
            )
        })
    }

    fn executions(&self) -> Result<&StepFunctions, CliError> {
        self.executions.as_ref().ok_or_else(|| {
            CliError::Config(
                "no state machine configured: pass --api-url (AGENTBUILD_API_URL) or \
                 --state-machine-arn (AGENTBUILD_STATE_MACHINE_ARN), or run `make local-up`"
                    .into(),
            )
        })
    }

    async fn failed(&self, err: Error) -> CliError {
        match err {
            Error::TransientAws(m) => self.aws.failed(m, true).await,
            Error::AwsService(m) => {
                let check = " — check --bucket / --state-machine-arn and what your credentials \
                             may do, or run `make local-up`";
                self.aws.failed(format!("{m}{check}"), false).await
            }
            other => CliError::Aws(other.to_string()),
        }
    }
}

impl Service for DirectService {
    async fn source_exists(&self, bucket: &str, key: &str) -> Result<bool, CliError> {
        self.aws.source_exists(bucket, key).await
    }

    async fn upload_source(&self, bucket: &str, key: &str, p: &Packed) -> Result<(), CliError> {
        self.aws.upload_source(bucket, key, p).await
    }

    async fn submit(&self, request: &ValidRequest) -> Result<Submission, CliError> {
        // Not pinned: the CLI's own door names the request only (the API pins the version).
        let started = submit::submit(self.executions()?, DOOR, request, None).await;
        match started {
            Ok(Ok(started)) => Ok(Submission::Started(started)),
            Ok(Err(refused)) => Ok(Submission::Rejected(Rejection {
                code: refused.code().into(),
                field: "idempotencyKey".into(),
                message: refused.message(),
            })),
            Err(e) => Err(self.failed(e).await),
        }
    }

    async fn build(&self, build_id: &str) -> Result<Option<BuildView>, CliError> {
        let (store, executions) = (self.store()?, self.executions()?);
        let answer = match status(store, executions, build_id, chrono::Utc::now()).await {
            Ok(None) => return Ok(None),
            Ok(Some(Status::Record(stored))) => BuildAnswer::Record(Box::new(stored.record)),
            Ok(Some(Status::Live(live))) => BuildAnswer::Live(live),
            Err(e) => return Err(self.failed(e).await),
        };
        view(answer).map(Some)
    }

    async fn cancel(&self, build_id: &str) -> Result<Option<Cancellation>, CliError> {
        let (store, executions) = (self.store()?, self.executions()?);
        let now = chrono::Utc::now();
        let outcome = cancel(store, executions, &self.builds, build_id, CANCEL_CAUSE, now).await;
        let answer = match outcome {
            Ok(cancel::Outcome::Unknown) => return Ok(None),
            Ok(cancel::Outcome::Finished(s)) => return Ok(Some(Cancellation::Finished(s))),
            Ok(cancel::Outcome::Cancelled(Status::Record(s))) => {
                BuildAnswer::Record(Box::new(s.record))
            }
            Ok(cancel::Outcome::Cancelled(Status::Live(live))) => BuildAnswer::Live(live),
            Err(e) => return Err(self.failed(e).await),
        };
        view(answer).map(|v| Some(Cancellation::Cancelled(v)))
    }

    async fn rollback(
        &self,
        _project: &str,
        _agent: &str,
        _body: &serde_json::Value,
    ) -> Result<serde_json::Value, CliError> {
        Err(CliError::Config(
            "rollback goes through the API (it records the move in the agent's history): set \
             the API URL (AGENTBUILD_API_URL or --api-url)"
                .into(),
        ))
    }

    async fn latest(&self, project: &str, agent: &str) -> Result<Option<BuildRecord>, CliError> {
        match records::latest(self.store()?, project, agent).await {
            Ok(stored) => Ok(stored.map(|s| s.record)),
            Err(e) => Err(self.failed(e).await),
        }
    }

    async fn log_tail(
        &self,
        _build_id: &str,
        stream: &LogStream,
        lines: u32,
    ) -> Result<Vec<String>, CliError> {
        self.aws.log_tail(stream, lines).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::tests::{no_logs, no_s3};
    use crate::service::tests::record;
    use crate::service::ViewState;
    use agentbuild_core::domain::plan::is_build_id;
    use agentbuild_core::domain::status::BuildStatus;
    use aws_sdk_codebuild::operation::stop_build::StopBuildOutput;
    use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::error::NoSuchKey;
    use aws_sdk_sfn::operation::describe_execution::{
        DescribeExecutionError, DescribeExecutionOutput,
    };
    use aws_sdk_sfn::operation::start_execution::{StartExecutionError, StartExecutionOutput};
    use aws_sdk_sfn::operation::stop_execution::StopExecutionOutput;
    use aws_sdk_sfn::types::error::{ExecutionAlreadyExists, ExecutionDoesNotExist};
    use aws_sdk_sfn::types::ExecutionStatus;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use serde_json::{json, Value};

    const SM: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:agentbuild-build";

    fn arn(name: &str) -> String {
        format!("arn:aws:states:us-east-1:123456789012:execution:agentbuild-build:{name}")
    }

    fn direct(s3: aws_sdk_s3::Client, sfn: aws_sdk_sfn::Client) -> DirectService {
        let aws = Aws::with_clients(no_s3(), no_logs());
        DirectService::with(aws, S3Store::new(s3, "bkt"), StepFunctions::new(sfn, SM))
    }

    fn request(key: Option<&str>) -> ValidRequest {
        let mut v = json!({
            "project": "demo", "agent": "a", "source": "s3://bkt/sources/demo/a/01.zip"
        });
        if let Some(k) = key {
            v["idempotencyKey"] = json!(k);
        }
        agentbuild_core::domain::request::parse(&v).unwrap()
    }

    fn execution_name(req: &ValidRequest, attempt: u32) -> String {
        agentbuild_core::domain::execution::execution_name(DOOR, req, None, attempt)
    }

    #[test]
    fn the_cli_names_its_executions_cli_and_the_requests_hash() {
        let name = execution_name(&request(None), 0);
        assert_eq!(name, "cli-cf9122e39aad8ea162e6d82c4cb55009ca5a157d");
        assert!(is_build_id(&name));
        assert_ne!(name, execution_name(&request(Some("k1")), 0));
        let forced = |key: Option<&str>| ValidRequest {
            force: true,
            ..request(key)
        };
        assert_ne!(
            name,
            execution_name(&forced(None), 0),
            "force is part of it"
        );
        let keyed = execution_name(&request(Some("k1")), 0);
        assert_eq!(
            keyed,
            execution_name(&forced(Some("k1")), 0),
            "the key alone"
        );
        let retry = execution_name(&request(None), 9);
        assert_eq!(retry, format!("{name}-r10"));
        assert!(is_build_id(&retry));
    }

    fn input_of(req: &ValidRequest) -> String {
        serde_json::to_string(&agentbuild_core::domain::execution::Submission {
            request: req.clone(),
            source: None,
            limits: None,
            promote: None,
        })
        .unwrap()
    }

    fn started(name: String) -> StartExecutionOutput {
        StartExecutionOutput::builder()
            .execution_arn(arn(&name))
            .start_date(aws_smithy_types::DateTime::from_secs(0))
            .build()
            .unwrap()
    }

    fn execution(status: ExecutionStatus, input: String) -> DescribeExecutionOutput {
        DescribeExecutionOutput::builder()
            .execution_arn(arn("earlier"))
            .state_machine_arn(SM)
            .status(status)
            .start_date(aws_smithy_types::DateTime::from_secs(0))
            .input(input)
            .build()
            .unwrap()
    }

    fn name_taken() -> StartExecutionError {
        StartExecutionError::ExecutionAlreadyExists(ExecutionAlreadyExists::builder().build())
    }

    #[tokio::test]
    async fn starts_a_console_execution_named_by_the_cli() {
        let req = request(None);
        let (name, input) = (execution_name(&req, 0), input_of(&req));
        let expected = name.clone();
        let start = mock!(aws_sdk_sfn::Client::start_execution)
            .match_requests(move |r| {
                let sent: Value = serde_json::from_str(r.input().unwrap()).unwrap();
                r.state_machine_arn() == Some(SM)
                    && r.name() == Some(expected.as_str())
                    && r.input() == Some(input.as_str())
                    && sent.get("trigger").is_none()
                    && sent["request"]["agent"] == "a"
            })
            .then_output({
                let name = name.clone();
                move || started(name.clone())
            });
        let svc = direct(no_s3(), mock_client!(aws_sdk_sfn, [&start]));
        let got = svc.submit(&req).await.unwrap();
        let execution_arn = arn(&name);
        assert_eq!(
            got,
            Submission::Started(submit::Started {
                build_id: name,
                execution_arn,
                existing: false
            })
        );
    }

    #[tokio::test]
    async fn a_repeated_request_answers_the_earlier_build() {
        let req = request(None);
        let input = input_of(&req);
        let start = mock!(aws_sdk_sfn::Client::start_execution).then_error(name_taken);
        let describe = mock!(aws_sdk_sfn::Client::describe_execution)
            .then_output(move || execution(ExecutionStatus::Succeeded, input.clone()));
        let sfn = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&start, &describe]);
        let Submission::Started(s) = direct(no_s3(), sfn).submit(&req).await.unwrap() else {
            panic!("expected the earlier build");
        };
        assert!(s.existing);
        assert_eq!(s.build_id, execution_name(&req, 0));
        assert_eq!(start.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_request_whose_build_failed_is_tried_again_under_the_next_name() {
        let req = request(None);
        let input = input_of(&req);
        let retry = execution_name(&req, 1);
        let start = mock!(aws_sdk_sfn::Client::start_execution)
            .sequence()
            .error(name_taken)
            .output({
                let retry = retry.clone();
                move || started(retry.clone())
            })
            .build();
        let describe = mock!(aws_sdk_sfn::Client::describe_execution)
            .then_output(move || execution(ExecutionStatus::Failed, input.clone()));
        let sfn = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&start, &describe]);
        let Submission::Started(s) = direct(no_s3(), sfn).submit(&req).await.unwrap() else {
            panic!("expected a new build");
        };
        assert_eq!((s.build_id.as_str(), s.existing), (retry.as_str(), false));
        assert!(retry.ends_with("-r2"), "{retry}");
    }

    #[tokio::test]
    async fn a_reused_idempotency_key_with_another_request_is_rejected() {
        let req = request(Some("order-1"));
        let other = input_of(&request(None));
        let start = mock!(aws_sdk_sfn::Client::start_execution).then_error(name_taken);
        let describe = mock!(aws_sdk_sfn::Client::describe_execution)
            .then_output(move || execution(ExecutionStatus::Running, other.clone()));
        let sfn = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&start, &describe]);
        let Submission::Rejected(r) = direct(no_s3(), sfn).submit(&req).await.unwrap() else {
            panic!("expected a rejection");
        };
        assert_eq!(
            (r.code.as_str(), r.field.as_str()),
            ("IdempotencyKeyReused", "idempotencyKey")
        );
    }

    #[tokio::test]
    async fn a_missing_state_machine_says_what_to_do() {
        let start = mock!(aws_sdk_sfn::Client::start_execution).then_error(|| {
            StartExecutionError::StateMachineDoesNotExist(
                aws_sdk_sfn::types::error::StateMachineDoesNotExist::builder().build(),
            )
        });
        let svc = direct(no_s3(), mock_client!(aws_sdk_sfn, [&start]));
        let err = svc.submit(&request(None)).await.unwrap_err();
        assert!(
            err.to_string().contains("StateMachineDoesNotExist"),
            "{err}"
        );
        assert!(err.to_string().contains("make local-up"), "{err}");
        let unconfigured = DirectService {
            executions: None,
            ..direct(no_s3(), mock_client!(aws_sdk_sfn, []))
        };
        let err = unconfigured.submit(&request(None)).await.unwrap_err();
        assert!(err.to_string().contains("--state-machine-arn"), "{err}");
    }

    fn get(status: &'static str) -> aws_sdk_s3::Client {
        let rule = mock!(aws_sdk_s3::Client::get_object)
            .match_requests(|r| {
                r.bucket() == Some("bkt") && r.key() == Some("builds/cli-0123.json")
            })
            .then_output(move || {
                let body = serde_json::to_vec(&record(status)).unwrap();
                GetObjectOutput::builder()
                    .body(ByteStream::from(body))
                    .build()
            });
        mock_client!(aws_sdk_s3, [&rule])
    }

    fn no_record() -> aws_sdk_s3::Client {
        let rule = mock!(aws_sdk_s3::Client::get_object)
            .sequence()
            .error(|| GetObjectError::NoSuchKey(NoSuchKey::builder().build()))
            .repeatedly()
            .build();
        mock_client!(aws_sdk_s3, [&rule])
    }

    #[tokio::test]
    async fn a_final_record_answers_without_asking_step_functions() {
        let svc = direct(get("SUCCEEDED"), mock_client!(aws_sdk_sfn, []));
        let view = svc.build("cli-0123").await.unwrap().unwrap();
        assert_eq!(view.state, ViewState::Final(BuildStatus::Succeeded));
        assert!(view.settled && view.record.is_some());
    }

    #[tokio::test]
    async fn a_running_record_and_execution_show_the_phase() {
        let describe = mock!(aws_sdk_sfn::Client::describe_execution)
            .then_output(|| execution(ExecutionStatus::Running, "{}".into()));
        let svc = direct(get("RUNNING"), mock_client!(aws_sdk_sfn, [&describe]));
        let view = svc.build("cli-0123").await.unwrap().unwrap();
        assert_eq!(view.state, ViewState::Running);
        assert_eq!(view.step.as_deref(), Some("BUILD"));
        let link = view.codebuild.unwrap().log_url.unwrap();
        assert!(link.contains("logEvent:group=/agentbuild/builds"), "{link}");
    }

    #[tokio::test]
    async fn before_any_record_the_execution_tells_the_state() {
        let describe = mock!(aws_sdk_sfn::Client::describe_execution).then_output(|| {
            DescribeExecutionOutput::builder()
                .execution_arn(arn("cli-1"))
                .state_machine_arn(SM)
                .status(ExecutionStatus::Failed)
                .error("InvalidRequest")
                .cause(r#"{"errorType":"InvalidRequest","errorMessage":"source: s3://bkt/sources/x.zip does not exist"}"#)
                .start_date(aws_smithy_types::DateTime::from_secs(0))
                .build()
                .unwrap()
        });
        let svc = direct(no_record(), mock_client!(aws_sdk_sfn, [&describe]));
        let view = svc.build("cli-1").await.unwrap().unwrap();
        assert_eq!(
            view.state,
            ViewState::Rejected(Rejection::invalid(
                "source",
                "s3://bkt/sources/x.zip does not exist"
            ))
        );
    }

    #[tokio::test]
    async fn an_unknown_build_is_none() {
        let describe = mock!(aws_sdk_sfn::Client::describe_execution).then_error(|| {
            DescribeExecutionError::ExecutionDoesNotExist(ExecutionDoesNotExist::builder().build())
        });
        let svc = direct(no_record(), mock_client!(aws_sdk_sfn, [&describe]));
        assert_eq!(svc.build("cli-404").await.unwrap(), None);
    }

    #[tokio::test]
    async fn latest_reads_the_agents_pointer() {
        let get = mock!(aws_sdk_s3::Client::get_object)
            .match_requests(|r| r.key() == Some("agents/demo/sample-agent/latest.json"))
            .then_output(|| {
                let body = serde_json::to_vec(&record("REUSED")).unwrap();
                GetObjectOutput::builder()
                    .body(ByteStream::from(body))
                    .build()
            });
        let svc = direct(
            mock_client!(aws_sdk_s3, [&get]),
            mock_client!(aws_sdk_sfn, []),
        );
        let latest = svc.latest("demo", "sample-agent").await.unwrap().unwrap();
        assert_eq!(latest.status, BuildStatus::Reused);
    }

    #[tokio::test]
    async fn cancel_stops_the_execution_and_the_build_and_writes_the_stopped_record() {
        let get = mock!(aws_sdk_s3::Client::get_object)
            .match_requests(|r| r.key() == Some("builds/cli-0123.json"))
            .then_output(|| {
                let body = serde_json::to_vec(&record("RUNNING")).unwrap();
                GetObjectOutput::builder()
                    .e_tag("\"e1\"")
                    .body(ByteStream::from(body))
                    .build()
            });
        let put = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r| {
                let rec: BuildRecord = serde_json::from_slice(r.body().bytes().unwrap()).unwrap();
                r.if_match() == Some("\"e1\"")
                    && rec.status == BuildStatus::Stopped
                    && rec.codebuild.stopped
                    && rec.error.as_ref().unwrap().kind == "Cancelled"
            })
            .then_output(|| PutObjectOutput::builder().build());
        let describe = mock!(aws_sdk_sfn::Client::describe_execution)
            .then_output(|| execution(ExecutionStatus::Running, "{}".into()));
        let stop = mock!(aws_sdk_sfn::Client::stop_execution)
            .match_requests(|r| {
                r.execution_arn() == Some(arn("cli-0123").as_str())
                    && r.error() == Some("Cancelled")
                    && r.cause() == Some(CANCEL_CAUSE)
            })
            .then_output(|| {
                StopExecutionOutput::builder()
                    .stop_date(aws_smithy_types::DateTime::from_secs(0))
                    .build()
                    .unwrap()
            });
        let stop_build = mock!(aws_sdk_codebuild::Client::stop_build)
            .match_requests(|r| r.id() == Some("agentbuild:1b2c"))
            .then_output(|| StopBuildOutput::builder().build());
        // A cancel looks first: a build CodeBuild ended on its own is no longer cancelled.
        let look = mock!(aws_sdk_codebuild::Client::batch_get_builds).then_output(|| {
            aws_sdk_codebuild::operation::batch_get_builds::BatchGetBuildsOutput::builder()
                .builds(
                    aws_sdk_codebuild::types::Build::builder()
                        .id("agentbuild:1b2c")
                        .build_status(aws_sdk_codebuild::types::StatusType::InProgress)
                        .build(),
                )
                .build()
        });
        let svc = DirectService::with_builds(
            Aws::with_clients(no_s3(), no_logs()),
            S3Store::new(
                mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&get, &put]),
                "bkt",
            ),
            StepFunctions::new(
                mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&describe, &stop]),
                SM,
            ),
            CodeBuild::new(mock_client!(
                aws_sdk_codebuild,
                RuleMode::MatchAny,
                [&look, &stop_build]
            )),
        );
        let Some(Cancellation::Cancelled(v)) = svc.cancel("cli-0123").await.unwrap() else {
            panic!("expected a cancellation");
        };
        assert_eq!(v.state, ViewState::Final(BuildStatus::Stopped));
        assert!(v.settled);
        assert_eq!(
            (stop.num_calls(), stop_build.num_calls(), put.num_calls()),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn cancel_of_a_finished_build_is_finished_and_touches_nothing() {
        let svc = direct(get("SUCCEEDED"), mock_client!(aws_sdk_sfn, []));
        assert_eq!(
            svc.cancel("cli-0123").await.unwrap(),
            Some(Cancellation::Finished(
                agentbuild_core::domain::ending::Reported::Succeeded
            ))
        );
    }
}
