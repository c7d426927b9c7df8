//! What the commands need from AWS, as one small trait ([`Service`]), implemented through the
//! API and directly over the core's adapters (both in the `aws` module, which imports this one);
//! the command tests use a fake. Both implementations turn the core's answer about a build into
//! one [`BuildView`] with the same function, [`view`].

// Only this CLI calls these, one at a time: the futures need no `Send` bound.
#![allow(async_fn_in_trait)]

use agentbuild_core::contract::{ApiError, BuildAnswer, LiveCodeBuild, Stage};
use agentbuild_core::domain::ending::Reported;
use agentbuild_core::domain::record::{BuildRecord, ErrorInfo};
use agentbuild_core::domain::request::{RequestError, ValidRequest};
use agentbuild_core::domain::runtime_names::{AgentRuntime, AgentRuntimes};
use agentbuild_core::domain::status::BuildStatus;
pub use agentbuild_core::services::submit::Started;
use serde::Serialize;

use crate::error::CliError;
use crate::package::Packed;

/// A request the service (or the local validation) refused; `field` names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub code: String,
    pub field: String,
    pub message: String,
}

impl Rejection {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: "InvalidRequest".into(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// A failed validation as the service reports it: the error's typed `field` (the core reads
    /// it once from the execution's cause), and its rule.
    fn from_error(error: Option<&ErrorInfo>) -> Self {
        let (kind, message) = error.map_or(("InvalidRequest", ""), |e| (&e.kind, &e.message));
        let field = error.and_then(|e| e.field.as_deref()).unwrap_or("request");
        let rule = message
            .strip_prefix(field)
            .and_then(|m| m.strip_prefix(": "))
            .unwrap_or(message);
        Self {
            code: kind.into(),
            ..Self::invalid(field, rule)
        }
    }
}

impl From<RequestError> for Rejection {
    fn from(e: RequestError) -> Self {
        Self::invalid(e.field, e.message)
    }
}

impl From<ApiError> for Rejection {
    fn from(e: ApiError) -> Self {
        Self {
            code: e.code,
            field: e.field.unwrap_or_else(|| "request".into()),
            message: e.message,
        }
    }
}

/// Where a build is, as the CLI shows it (the core's `BuildState` is the state machine's build).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewState {
    Running,
    Final(BuildStatus),
    /// The execution failed validation (`InvalidRequest`): no build ran, nothing was recorded.
    Rejected(Rejection),
}

/// One look at a build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildView {
    pub build_id: String,
    pub state: ViewState,
    /// What it is doing now, for the spinner: CodeBuild's phase, or the step before it.
    pub step: Option<String>,
    /// The final record, once there is one.
    pub record: Option<Box<BuildRecord>>,
    /// CodeBuild's build and log link, from the record or the live status.
    pub codebuild: Option<LiveCodeBuild>,
    /// Why it ended, when there is no final record saying so.
    pub error: Option<ErrorInfo>,
    /// False while the final state comes from the execution alone: its record may still come.
    pub settled: bool,
}

impl BuildView {
    pub fn status(&self) -> &str {
        match &self.state {
            ViewState::Running => "RUNNING",
            ViewState::Final(s) => s.as_str(),
            ViewState::Rejected(_) => "REJECTED",
        }
    }

    pub fn is_done(&self) -> bool {
        !matches!(self.state, ViewState::Running)
    }
}

/// The one reading of what the core (directly, or through the API) says about a build.
pub fn view(answer: BuildAnswer) -> Result<BuildView, CliError> {
    let live = match answer {
        BuildAnswer::Record(record) => {
            let running = !record.status.is_final();
            return Ok(BuildView {
                build_id: record.build_id.clone(),
                state: if running {
                    ViewState::Running
                } else {
                    ViewState::Final(record.status)
                },
                step: running.then(|| step(record.codebuild.current_phase.clone(), true)),
                codebuild: Some(LiveCodeBuild {
                    build_id: record.codebuild.build_id.clone(),
                    log_url: record.codebuild.log_url.clone(),
                    logs: record.codebuild.logs.clone(),
                }),
                error: None,
                settled: true,
                record: Some(record),
            });
        }
        BuildAnswer::Live(live) => live,
    };
    let state = match live.status.build_status() {
        None => ViewState::Rejected(Rejection::from_error(live.error.as_ref())),
        Some(BuildStatus::Running) => ViewState::Running,
        Some(s) => ViewState::Final(s),
    };
    Ok(BuildView {
        build_id: live.build_id,
        step: (state == ViewState::Running).then(|| step(live.phase, live.codebuild.is_some())),
        state,
        record: None,
        codebuild: live.codebuild,
        error: live.error,
        settled: live.state != Some(Stage::Recording),
    })
}

/// CodeBuild's phase, or the step before there is one.
fn step(phase: Option<String>, recorded: bool) -> String {
    match (phase, recorded) {
        (Some(phase), _) => phase,
        (None, true) => "starting CodeBuild".into(),
        (None, false) => "validating request".into(),
    }
}

/// The outcome of asking for a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    Started(Started),
    Rejected(Rejection),
}

/// A CloudWatch Logs stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStream {
    pub group: String,
    pub stream: String,
}

impl LogStream {
    /// A CodeBuild build's stream: where CodeBuild said it writes it (its `LogsLocation`, kept
    /// in the record), else CodeBuild's defaults (`/aws/codebuild/<project>`, the build's UUID)
    /// for a record written before the location was kept.
    pub fn of(codebuild: &LiveCodeBuild) -> Option<Self> {
        if let Some(logs) = &codebuild.logs {
            return Some(Self {
                group: logs.group.clone(),
                stream: logs.stream.clone(),
            });
        }
        let (project, uuid) = codebuild.build_id.as_deref()?.split_once(':')?;
        Some(Self {
            group: format!("/aws/codebuild/{project}"),
            stream: uuid.to_owned(),
        })
    }
}

/// What a cancel answered.
// One value per command, moved straight to its reader: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Cancellation {
    /// Cancelled, now or before: the build as it looks afterwards (STOPPED).
    Cancelled(BuildView),
    /// It had finished on its own, with this status: nothing was cancelled.
    Finished(Reported),
}

pub trait Service {
    /// Whether `s3://bucket/key` exists.
    async fn source_exists(&self, bucket: &str, key: &str) -> Result<bool, CliError>;
    /// Uploads a packed context, with its SHA-256 as S3's checksum.
    async fn upload_source(&self, bucket: &str, key: &str, packed: &Packed)
        -> Result<(), CliError>;
    /// Starts a build of a validated request (or finds the build the same request started).
    async fn submit(&self, request: &ValidRequest) -> Result<Submission, CliError>;
    /// `None` when the build is unknown.
    async fn build(&self, build_id: &str) -> Result<Option<BuildView>, CliError>;
    /// Cancels a build; `None` when the build is unknown.
    async fn cancel(&self, build_id: &str) -> Result<Option<Cancellation>, CliError>;
    /// The agent's latest successful record.
    async fn latest(&self, project: &str, agent: &str) -> Result<Option<BuildRecord>, CliError>;
    /// Moves the agent's endpoint back (`{"endpoint"?, "to"?}`); the history entry of the move.
    /// Only through the API (the move is the API's, recorded in the agent's history).
    async fn rollback(
        &self,
        project: &str,
        agent: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, CliError>;
    /// The last `lines` events of build `build_id`'s log stream, oldest first (through the
    /// API: its logs route, read with the API's role; directly: CloudWatch Logs).
    async fn log_tail(
        &self,
        build_id: &str,
        stream: &LogStream,
        lines: u32,
    ) -> Result<Vec<String>, CliError>;
    /// The agent's runtimes (only through the API).
    async fn runtimes(&self, _project: &str, _agent: &str) -> Result<AgentRuntimes, CliError> {
        Err(CliError::Config(THROUGH_THE_API.into()))
    }
    /// Retires the agent's runtime `name`: its RETIRED entry, or why not (only through the API,
    /// whose caller the retirement records).
    async fn retire(
        &self,
        _project: &str,
        _agent: &str,
        _name: &str,
        _force: bool,
    ) -> Result<Result<AgentRuntime, Rejection>, CliError> {
        Err(CliError::Config(THROUGH_THE_API.into()))
    }
    /// Deploys what exists, building nothing: `body` POSTed to the API route `path` of
    /// `project` (a build's promote route, or `.../builds` with a request naming a prebuilt
    /// artifact). Only through the API (it reads the stack's index of what builds made).
    async fn promote(
        &self,
        _project: &str,
        _path: &str,
        _body: &serde_json::Value,
    ) -> Result<Submission, CliError> {
        Err(CliError::Config(THROUGH_THE_API.into()))
    }
}

const THROUGH_THE_API: &str = "runtimes, retire and promote go through the agentbuild API: pass \
     --api-url (AGENTBUILD_API_URL)";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use agentbuild_core::contract::LiveStatus;
    use agentbuild_core::domain::record::LogLocation;
    use serde_json::json;

    /// A record as record-result writes it.
    pub(crate) fn record(status: &str) -> BuildRecord {
        serde_json::from_value(json!({
            "schemaVersion": 1,
            "buildId": "cli-0123",
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:agentbuild-build:cli-0123",
            "trigger": "console",
            "project": "demo",
            "agent": "sample-agent",
            "status": status,
            "source": {
                "uri": "s3://agentbuild-local/sources/demo/sample-agent/ab.zip",
                "bucket": "agentbuild-local",
                "key": "sources/demo/sample-agent/ab.zip",
                "sha256": "ab"
            },
            "image": {
                "repositoryUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/agentbuild",
                "tag": "sample-agent-0123456789abcdef01234567",
                "digest": "sha256:ff"
            },
            "codebuild": {
                "buildId": "agentbuild:1b2c",
                "currentPhase": "BUILD",
                "phases": [],
                "logUrl": "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEvent:group=/agentbuild/builds;stream=1b2c",
                "logs": {"group": "/agentbuild/builds", "stream": "1b2c"},
                "polls": 3
            },
            "timestamps": {"requestedAt": "2026-11-28T10:00:00Z", "startedAt": "2026-11-28T10:00:02Z"},
            "durations": {"totalSeconds": 65}
        }))
        .unwrap()
    }

    /// The API's live status, as it answers it.
    pub(crate) fn live(body: serde_json::Value) -> BuildAnswer {
        BuildAnswer::from_json(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_final_record_is_a_settled_final_view() {
        let v = view(BuildAnswer::Record(Box::new(record("FAILED")))).unwrap();
        assert_eq!(v.state, ViewState::Final(BuildStatus::Failed));
        assert!(v.settled && v.record.is_some());
        assert_eq!(v.status(), "FAILED");
        assert_eq!(
            v.codebuild.unwrap().build_id.as_deref(),
            Some("agentbuild:1b2c")
        );
    }

    #[test]
    fn a_running_build_shows_the_codebuild_phase_or_the_step_before_it() {
        let arn = "arn:aws:states:us-east-1:1:execution:m:b";
        let building = live(
            json!({"buildId": "b", "status": "RUNNING", "state": "Building",
            "phase": "PROVISIONING", "executionArn": arn,
            "codebuild": {"buildId": "p:1", "logUrl": null}}),
        );
        let v = view(building).unwrap();
        assert_eq!(v.state, ViewState::Running);
        assert_eq!(v.step.as_deref(), Some("PROVISIONING"));
        assert_eq!(v.codebuild.unwrap().build_id.as_deref(), Some("p:1"));

        let recorded = live(
            json!({"buildId": "b", "status": "RUNNING", "state": "Starting",
            "executionArn": arn, "codebuild": {"buildId": null, "logUrl": null}}),
        );
        assert_eq!(
            view(recorded).unwrap().step.as_deref(),
            Some("starting CodeBuild")
        );
        let starting = live(
            json!({"buildId": "b", "status": "RUNNING", "state": "Starting",
            "phase": null, "elapsedSeconds": 3, "executionArn": arn}),
        );
        let v = view(starting).unwrap();
        assert_eq!(v.step.as_deref(), Some("validating request"));
        assert!(v.settled && v.record.is_none());
    }

    #[test]
    fn an_invalid_request_execution_is_a_rejection_naming_the_field() {
        let rejected = live(
            json!({"buildId": "b", "status": "REJECTED", "executionArn": "arn",
            "error": {"type": "InvalidRequest", "field": "source",
                      "message": "source: s3://b/k.zip does not exist"}}),
        );
        let v = view(rejected).unwrap();
        assert_eq!(
            v.state,
            ViewState::Rejected(Rejection::invalid("source", "s3://b/k.zip does not exist"))
        );
        assert_eq!(v.status(), "REJECTED");
        let vague = ErrorInfo::new("InvalidRequest", "the request is bad");
        assert_eq!(Rejection::from_error(Some(&vague)).field, "request");
        assert_eq!(Rejection::from_error(None).field, "request");
    }

    #[test]
    fn an_ended_execution_without_a_final_record_is_final_but_unsettled() {
        for (status, want) in [
            ("TIMED_OUT", BuildStatus::TimedOut),
            ("STOPPED", BuildStatus::Stopped),
            ("ERROR", BuildStatus::Error),
            ("SUCCEEDED", BuildStatus::Succeeded),
        ] {
            let ended = live(
                json!({"buildId": "b", "status": status, "state": "Recording",
                "executionArn": "arn", "finishedAt": "2026-11-28T10:00:00Z",
                "error": {"type": "States.Timeout", "message": "why"}}),
            );
            let v = view(ended).unwrap();
            assert_eq!(v.state, ViewState::Final(want), "{status}");
            assert!(!v.settled && v.step.is_none());
            assert_eq!(v.error.unwrap().message, "why");
        }
    }

    #[test]
    fn an_unknown_status_is_an_error_not_a_guess() {
        // The status is typed: an answer with a status we do not know is refused when read.
        let odd = serde_json::from_value::<LiveStatus>(
            json!({"buildId": "b", "status": "PAUSED", "executionArn": "a"}),
        )
        .unwrap_err();
        assert!(odd.to_string().contains("PAUSED"), "{odd}");
    }

    #[test]
    fn the_log_stream_is_codebuilds_logs_location_else_its_defaults() {
        let stream = |logs: Option<LogLocation>, build_id: Option<&str>| {
            LogStream::of(&LiveCodeBuild {
                build_id: build_id.map(String::from),
                // Never parsed: the location is kept as CodeBuild gave it.
                log_url: Some("https://console/#logEvent:group=x;stream=y".into()),
                logs,
            })
            .map(|s| (s.group, s.stream))
        };
        let want = |g: &str, s: &str| Some((g.to_owned(), s.to_owned()));
        let kept = LogLocation {
            group: "/agentbuild/builds".into(),
            stream: "1b2c".into(),
        };
        assert_eq!(
            stream(Some(kept), Some("agentbuild:1b2c")),
            want("/agentbuild/builds", "1b2c")
        );
        let default = want("/aws/codebuild/agentbuild", "1b2c");
        assert_eq!(stream(None, Some("agentbuild:1b2c")), default);
        assert_eq!(stream(None, None), None);
    }

    #[test]
    fn an_api_error_without_a_field_names_the_request() {
        let e = ApiError {
            code: "TooManyAttempts".into(),
            field: None,
            message: "m".into(),
            status: None,
        };
        let r = Rejection::from(e);
        assert_eq!(
            (r.code.as_str(), r.field.as_str()),
            ("TooManyAttempts", "request")
        );
    }
}
