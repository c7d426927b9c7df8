//! What the commands need from AWS, as one small trait ([`Service`]): the AWS adapter
//! ([`crate::aws`]) implements it over the API or S3 + Step Functions, the command tests with a
//! fake. Also the pure rules that turn what AWS says into one [`BuildView`].

// Only this CLI calls these, one at a time: the futures need no `Send` bound.
#![allow(async_fn_in_trait)]

use agentbuild_core::domain::record::{BuildRecord, ErrorInfo};
use agentbuild_core::domain::request::{RequestError, ValidRequest};
use agentbuild_core::domain::status::BuildStatus;
use serde::Serialize;
use serde_json::Value;

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
    pub const INVALID_REQUEST: &'static str = "InvalidRequest";

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: Self::INVALID_REQUEST.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// An `InvalidRequest` error's message (`"<field>: <rule>"`, as the Lambda reports it),
    /// possibly wrapped in the Lambda error JSON Step Functions puts in an execution's cause.
    pub fn from_cause(cause: Option<&str>) -> Self {
        let cause = cause.unwrap_or_default();
        let message = serde_json::from_str::<Value>(cause)
            .ok()
            .and_then(|v| v.get("errorMessage")?.as_str().map(String::from))
            .unwrap_or_else(|| cause.to_owned());
        match message.split_once(": ") {
            Some((field, rule)) if !field.is_empty() && !field.contains(' ') => {
                Self::invalid(field, rule)
            }
            _ => Self::invalid("request", message),
        }
    }
}

impl From<RequestError> for Rejection {
    fn from(e: RequestError) -> Self {
        Self::invalid(e.field, e.message)
    }
}

/// Where a build is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildState {
    Running,
    Final(BuildStatus),
    /// The execution failed validation (`InvalidRequest`): no build ran, nothing was recorded.
    Rejected(Rejection),
}

/// One look at a build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildView {
    pub build_id: String,
    pub state: BuildState,
    /// What it is doing now, for the spinner: CodeBuild's phase, or the step before it.
    pub step: Option<String>,
    /// The record: final once the build ended, the RUNNING record while it runs.
    pub record: Option<BuildRecord>,
    /// Why it ended, when there is no final record saying so.
    pub error: Option<ErrorInfo>,
    /// False while the final state comes from the execution alone: its record may still come.
    pub settled: bool,
}

impl BuildView {
    pub fn status(&self) -> &str {
        match &self.state {
            BuildState::Running => "RUNNING",
            BuildState::Final(s) => s.as_str(),
            BuildState::Rejected(_) => "REJECTED",
        }
    }

    pub fn is_done(&self) -> bool {
        !matches!(self.state, BuildState::Running)
    }

    fn from_record(record: BuildRecord) -> Self {
        let running = !record.status.is_final();
        Self {
            build_id: record.build_id.clone(),
            state: if running {
                BuildState::Running
            } else {
                BuildState::Final(record.status)
            },
            step: running.then(|| running_step(Some(&record))),
            error: None,
            settled: true,
            record: Some(record),
        }
    }
}

/// A started build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub build_id: String,
    pub execution_arn: Option<String>,
    /// The same request (same idempotency key) had been submitted before: this is that build.
    pub existing: bool,
}

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
    /// The agent's latest successful record.
    async fn latest(&self, project: &str, agent: &str) -> Result<Option<BuildRecord>, CliError>;
    /// The last `lines` events of a log stream, oldest first.
    async fn log_tail(&self, stream: &LogStream, lines: u32) -> Result<Vec<String>, CliError>;
}

/// What DescribeExecution says, SDK-free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionInfo {
    /// RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED | PENDING_REDRIVE
    pub status: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// The execution's output JSON (the Succeed state's `{buildId, status, recordKey}`).
    pub output: Option<String>,
}

/// One view from the record in S3 and the execution (direct mode). `None`: neither exists.
pub fn combine(
    build_id: &str,
    record: Option<BuildRecord>,
    execution: Option<ExecutionInfo>,
) -> Option<BuildView> {
    if let Some(r) = record.as_ref().filter(|r| r.status.is_final()) {
        return Some(BuildView::from_record(r.clone()));
    }
    let Some(exec) = execution else {
        return record.map(BuildView::from_record);
    };
    let mut view = BuildView {
        build_id: build_id.to_owned(),
        state: BuildState::Running,
        step: None,
        error: None,
        settled: true,
        record,
    };
    let status = match exec.status.as_str() {
        "RUNNING" | "PENDING_REDRIVE" => {
            view.step = Some(running_step(view.record.as_ref()));
            return Some(view);
        }
        "FAILED" if exec.error.as_deref() == Some(Rejection::INVALID_REQUEST) => {
            view.state = BuildState::Rejected(Rejection::from_cause(exec.cause.as_deref()));
            return Some(view);
        }
        "SUCCEEDED" => exec
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str::<Value>(o).ok())
            .and_then(|o| parse_status(o.get("status")?.as_str()?))
            .unwrap_or(BuildStatus::Succeeded),
        "TIMED_OUT" => BuildStatus::TimedOut,
        "ABORTED" => BuildStatus::Stopped,
        // The Fail states name the build status as their error (FAILED, FAULT, ...).
        _ => exec
            .error
            .as_deref()
            .and_then(parse_status)
            .unwrap_or(BuildStatus::Error),
    };
    view.state = BuildState::Final(status);
    view.error = Some(ErrorInfo::new(
        exec.error
            .unwrap_or_else(|| format!("Execution{}", exec.status)),
        exec.cause
            .unwrap_or_else(|| format!("the execution ended {}", exec.status)),
    ));
    // RecordResult (or the relay of ended executions) should still write the record.
    view.settled = false;
    Some(view)
}

/// The body of the API's `GET /builds/{id}`: a record, `{"status", "record", ...}`, or a live
/// status (`{"status": "RUNNING", "phase"|"currentPhase": ...}`), read leniently.
pub fn view_from_api(build_id: &str, body: &Value) -> Result<BuildView, CliError> {
    let record = serde_json::from_value::<BuildRecord>(body.clone())
        .ok()
        .or_else(|| serde_json::from_value(body.get("record")?.clone()).ok());
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| record.as_ref().map(|r| r.status.as_str().to_owned()))
        .ok_or_else(|| {
            CliError::Api(format!(
                "GET /builds/{build_id}: the answer has no status: {}",
                crate::output::clip(&body.to_string(), 300)
            ))
        })?;
    let error = body.get("error");
    let error_code = error
        .and_then(|e| e.get("code").or_else(|| e.get("type")))
        .and_then(Value::as_str);
    if status == "REJECTED" || error_code == Some(Rejection::INVALID_REQUEST) {
        let text = |k: &str| error.and_then(|e| e.get(k)).and_then(Value::as_str);
        let rejection = match text("field") {
            Some(field) => Rejection::invalid(field, text("message").unwrap_or_default()),
            None => Rejection::from_cause(text("message")),
        };
        return Ok(BuildView {
            build_id: build_id.to_owned(),
            state: BuildState::Rejected(rejection),
            step: None,
            record,
            error: None,
            settled: true,
        });
    }
    let state = match parse_status(&status) {
        Some(s) if s.is_final() => BuildState::Final(s),
        _ => BuildState::Running,
    };
    let step = (state == BuildState::Running).then(|| {
        // The API's live status: `phase` (CodeBuild's, null before it starts), `state`
        // (Starting | Building | Recording).
        ["phase", "currentPhase", "state"]
            .iter()
            .find_map(|k| body.get(*k).and_then(Value::as_str).map(String::from))
            .or_else(|| {
                record
                    .as_ref()
                    .and_then(|r| r.codebuild.current_phase.clone())
            })
            .unwrap_or_else(|| {
                if status == "RUNNING" {
                    running_step(record.as_ref())
                } else {
                    status.clone()
                }
            })
    });
    let error = match (&record, error) {
        (None, Some(e)) => Some(ErrorInfo::new(
            error_code.unwrap_or("Error"),
            e.get("message").and_then(Value::as_str).unwrap_or_default(),
        )),
        _ => None,
    };
    // A final status without a final record ("state": "Recording"): the record is on its way.
    let recorded = record.as_ref().is_some_and(|r| r.status.is_final());
    let settled = recorded || body.get("state").and_then(Value::as_str) != Some("Recording");
    Ok(BuildView {
        build_id: build_id.to_owned(),
        state,
        step,
        record,
        error,
        settled,
    })
}

pub fn parse_status(s: &str) -> Option<BuildStatus> {
    serde_json::from_value(Value::String(s.to_owned())).ok()
}

fn running_step(record: Option<&BuildRecord>) -> String {
    match record {
        None => "validating request".into(),
        Some(r) => r
            .codebuild
            .current_phase
            .clone()
            .unwrap_or_else(|| "starting CodeBuild".into()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
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
                "polls": 3
            },
            "timestamps": {"requestedAt": "2026-11-28T10:00:00Z", "startedAt": "2026-11-28T10:00:02Z"},
            "durations": {"totalSeconds": 65}
        }))
        .unwrap()
    }

    fn exec(status: &str, error: Option<&str>, cause: Option<&str>) -> ExecutionInfo {
        ExecutionInfo {
            status: status.into(),
            error: error.map(String::from),
            cause: cause.map(String::from),
            output: None,
        }
    }

    #[test]
    fn a_final_record_settles_the_view() {
        let v = combine(
            "cli-0123",
            Some(record("FAILED")),
            Some(exec("FAILED", Some("FAILED"), None)),
        )
        .unwrap();
        assert_eq!(v.state, BuildState::Final(BuildStatus::Failed));
        assert!(v.settled);
        assert_eq!(v.status(), "FAILED");
    }

    #[test]
    fn a_running_execution_shows_the_codebuild_phase_or_the_step_before_it() {
        let v = combine(
            "b",
            Some(record("RUNNING")),
            Some(exec("RUNNING", None, None)),
        )
        .unwrap();
        assert_eq!(v.state, BuildState::Running);
        assert_eq!(v.step.as_deref(), Some("BUILD"));
        let v = combine("b", None, Some(exec("RUNNING", None, None))).unwrap();
        assert_eq!(v.step.as_deref(), Some("validating request"));
    }

    #[test]
    fn an_invalid_request_execution_is_a_rejection_naming_the_field() {
        let cause = r#"{"errorType":"InvalidRequest","errorMessage":"source: s3://b/sources/x.zip does not exist"}"#;
        let v = combine(
            "b",
            None,
            Some(exec("FAILED", Some("InvalidRequest"), Some(cause))),
        )
        .unwrap();
        assert_eq!(
            v.state,
            BuildState::Rejected(Rejection::invalid(
                "source",
                "s3://b/sources/x.zip does not exist"
            ))
        );
        assert_eq!(v.status(), "REJECTED");
        let plain = Rejection::from_cause(Some("agent: must match x"));
        assert_eq!(plain, Rejection::invalid("agent", "must match x"));
        assert_eq!(Rejection::from_cause(None).field, "request");
    }

    #[test]
    fn an_ended_execution_without_a_final_record_is_final_but_unsettled() {
        let cases = [
            ("TIMED_OUT", None, BuildStatus::TimedOut),
            ("ABORTED", None, BuildStatus::Stopped),
            ("FAILED", Some("FAULT"), BuildStatus::Fault),
            ("FAILED", Some("States.Runtime"), BuildStatus::Error),
        ];
        for (status, error, want) in cases {
            let v = combine(
                "b",
                Some(record("RUNNING")),
                Some(exec(status, error, Some("why"))),
            )
            .unwrap();
            assert_eq!(v.state, BuildState::Final(want), "{status} {error:?}");
            assert!(!v.settled);
            assert_eq!(v.error.as_ref().unwrap().message, "why");
        }
        let mut ok = exec("SUCCEEDED", None, None);
        ok.output = Some(r#"{"buildId":"b","status":"REUSED","recordKey":"builds/b.json"}"#.into());
        let v = combine("b", None, Some(ok)).unwrap();
        assert_eq!(v.state, BuildState::Final(BuildStatus::Reused));
    }

    #[test]
    fn unknown_when_neither_record_nor_execution_exists() {
        assert_eq!(combine("b", None, None), None);
    }

    #[test]
    fn reads_the_api_answer_as_a_record_or_a_live_status() {
        let body = serde_json::to_value(record("SUCCEEDED")).unwrap();
        let v = view_from_api("cli-0123", &body).unwrap();
        assert_eq!(v.state, BuildState::Final(BuildStatus::Succeeded));
        assert!(v.record.is_some());

        let live = json!({"buildId": "b", "status": "RUNNING", "state": "Building", "phase": "PROVISIONING"});
        let v = view_from_api("b", &live).unwrap();
        assert_eq!(v.state, BuildState::Running);
        assert_eq!(v.step.as_deref(), Some("PROVISIONING"));
        let starting =
            json!({"buildId": "b", "status": "RUNNING", "state": "Starting", "phase": null});
        let v = view_from_api("b", &starting).unwrap();
        assert_eq!(v.step.as_deref(), Some("Starting"));

        // The execution ended; RecordResult has yet to close the record.
        let recording = json!({"buildId": "b", "status": "TIMED_OUT", "state": "Recording",
            "error": {"type": "States.Timeout", "message": "the execution timed out"}});
        let v = view_from_api("b", &recording).unwrap();
        assert_eq!(v.state, BuildState::Final(BuildStatus::TimedOut));
        assert!(!v.settled);
        assert_eq!(v.error.unwrap().kind, "States.Timeout");

        // Rejected by ValidateRequest: the API passes the Lambda's "field: rule" message on.
        let rejected = json!({"buildId": "b", "status": "REJECTED",
            "error": {"type": "InvalidRequest", "message": "source: s3://b/k.zip does not exist"}});
        let v = view_from_api("b", &rejected).unwrap();
        assert_eq!(
            v.state,
            BuildState::Rejected(Rejection::invalid("source", "s3://b/k.zip does not exist"))
        );

        let wrapped = json!({"status": "FAULT", "record": record("FAULT")});
        let v = view_from_api("b", &wrapped).unwrap();
        assert_eq!(v.state, BuildState::Final(BuildStatus::Fault));
        assert!(v.record.is_some());

        let rejected = json!({"status": "FAILED", "error": {"code": "InvalidRequest", "field": "source", "message": "does not exist"}});
        let v = view_from_api("b", &rejected).unwrap();
        assert_eq!(
            v.state,
            BuildState::Rejected(Rejection::invalid("source", "does not exist"))
        );

        let err = view_from_api("b", &json!({"hello": 1})).unwrap_err();
        assert!(err.to_string().contains("no status"), "{err}");
    }
}
