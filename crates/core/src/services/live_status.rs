//! Status: what `GET /projects/{p}/builds/{id}` answers, and what the CLI shows in direct mode — the record
//! once it is final; before that a live status assembled from the RUNNING record (StartBuild
//! writes it, CheckBuild keeps its phase current) and DescribeExecution.
//!
//! `state` is where the build is, derived rather than read from GetExecutionHistory (a heavier,
//! paginated read with its own throttle, once per status poll, and one more IAM action).

use super::records::{self, Stored};
use crate::contract::{LiveCodeBuild, LiveStatus, Stage};
use crate::domain::ending::{ending, Ending, Reported, INVALID_REQUEST};
use crate::domain::record::{BuildRecord, ErrorInfo};
use crate::domain::text::RequestError;
use crate::ports::{ExecutionInfo, ExecutionStatus, Executions, ObjectStore};
use crate::Error;
use chrono::{DateTime, Utc};

// One value per request, moved straight to its reader: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// The final record, as stored.
    Record(Stored),
    Live(LiveStatus),
}

/// `None`: neither a record nor an execution of that name exists.
pub async fn status<S: ObjectStore, X: Executions>(
    store: &S,
    executions: &X,
    build_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Status>, Error> {
    let record = records::build(store, build_id).await?;
    if let Some(stored) = record.as_ref().filter(|s| s.record.status.is_final()) {
        return Ok(Some(Status::Record(stored.clone())));
    }
    let execution = executions.describe(build_id).await?;
    Ok(match (record, execution) {
        (None, None) => None,
        (_, Some(e)) if !e.status.is_open() => {
            // The execution closed after the first read, or its record is being closed.
            match records::build(store, build_id).await? {
                Some(s) if s.record.status.is_final() => Some(Status::Record(s)),
                other => Some(Status::Live(closed(
                    build_id,
                    &e,
                    other.map(|s| s.record).as_ref(),
                ))),
            }
        }
        (Some(s), e) => Some(Status::Live(live(&s.record, e.as_ref(), now))),
        (None, Some(e)) => Some(Status::Live(LiveStatus {
            state: Some(Stage::Starting),
            elapsed_seconds: elapsed(e.started_at, now),
            ..bare(build_id, &e.arn, Reported::Running)
        })),
    })
}

fn elapsed(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<i64> {
    since.map(|t| (now - t).num_seconds().max(0))
}

fn bare(build_id: &str, execution_arn: &str, status: Reported) -> LiveStatus {
    LiveStatus {
        agent: None,
        build_id: build_id.to_string(),
        codebuild: None,
        elapsed_seconds: None,
        error: None,
        execution_arn: execution_arn.to_string(),
        finished_at: None,
        phase: None,
        project: None,
        requested_at: None,
        state: None,
        status,
        trigger: None,
    }
}

fn live(rec: &BuildRecord, execution: Option<&ExecutionInfo>, now: DateTime<Utc>) -> LiveStatus {
    let arn = execution.map_or(rec.execution_arn.as_str(), |e| e.arn.as_str());
    LiveStatus {
        agent: Some(rec.agent.clone()),
        codebuild: Some(LiveCodeBuild {
            build_id: rec.codebuild.build_id.clone(),
            log_url: rec.codebuild.log_url.clone(),
            logs: rec.codebuild.logs.clone(),
        }),
        elapsed_seconds: elapsed(Some(rec.timestamps.requested_at), now),
        phase: rec.codebuild.current_phase.clone(),
        project: Some(rec.project.clone()),
        requested_at: Some(rec.timestamps.requested_at),
        state: Some(if rec.codebuild.build_id.is_some() {
            Stage::Building
        } else {
            Stage::Starting
        }),
        trigger: Some(rec.trigger),
        ..bare(&rec.build_id, arn, Reported::Running)
    }
}

/// An execution that ended without a final record: rejected by ValidateRequest (no record is
/// ever written then), or ended with its record still to be closed (`domain::ending` decides).
fn closed(build_id: &str, e: &ExecutionInfo, rec: Option<&BuildRecord>) -> LiveStatus {
    let caught = |default_kind: &str, default_message: &str| {
        if e.error.is_some() || e.cause.is_some() {
            ErrorInfo::from_states(
                e.error.as_deref().unwrap_or(default_kind),
                e.cause.as_deref(),
            )
        } else {
            ErrorInfo::new(default_kind, default_message)
        }
    };
    let end = ending(&e.status, e.error.as_deref(), rec.is_some());
    let error = match &end {
        Ending::Open | Ending::Succeeded => None,
        Ending::Rejected => Some(rejection(caught(INVALID_REQUEST, ""))),
        Ending::Closed { kind, message, .. } => Some(match &e.status {
            ExecutionStatus::Unknown(s) => ErrorInfo::new(*kind, s.clone()),
            _ => caught(kind, message),
        }),
    };
    let status = end.reported();
    let rejected = status == Reported::Rejected;
    LiveStatus {
        error,
        finished_at: e.stopped_at,
        state: (!rejected).then_some(Stage::Recording),
        phase: rec.and_then(|r| r.codebuild.current_phase.clone()),
        ..bare(build_id, &e.arn, status)
    }
}

/// A rejection names its field typed (`domain::text::RequestError::from_message`).
fn rejection(mut e: ErrorInfo) -> ErrorInfo {
    e.field = RequestError::from_message(&e.message).map(|r| r.field);
    e
}
