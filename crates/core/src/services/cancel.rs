//! Cancel: what `DELETE /builds/{id}` and `agentbuild cancel` (direct mode) do — stop the
//! execution (error `Cancelled`), stop its CodeBuild build, and close the record `STOPPED`
//! through the conditional write of `records::write`, so a final record is never replaced and
//! the last-resort closer that runs on the ABORTED execution finds it final. Cancelling again
//! answers the same STOPPED record; a build that finished on its own is not cancelled.
//!
//! [`decide`] is the rule (pure); [`cancel`] loads, decides, stops and stores.

use super::records::{self, Stored};
use super::status::{status, Status};
use super::stop::stop_build;
use crate::domain::ending::{ending, Reported};
use crate::domain::record::{BuildRecord, ErrorInfo};
use crate::domain::status::BuildStatus;
use crate::ports::{BuildService, ExecutionInfo, ExecutionStatus, Executions, ObjectStore};
use crate::Error;
use chrono::{DateTime, Utc};

/// The error name a cancel gives the execution (StopExecution's `error`) and the record
/// (`error.type`): how a STOPPED record tells a cancel from a build stopped otherwise.
pub const CANCELLED: &str = "Cancelled";

/// What cancel does, given what is known of the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Neither a record nor an execution of that name.
    Unknown,
    /// Cancelled before: the STOPPED record stands; answer it again.
    AlreadyCancelled,
    /// It ended on its own, with this status: nothing to cancel.
    Finished(Reported),
    /// Stop what still runs, then close the record (when there is one) as STOPPED.
    Stop {
        /// The execution is open: StopExecution.
        execution: bool,
        /// The CodeBuild build the record names: StopBuild (an ended build is fine).
        codebuild: Option<String>,
        /// A record exists and is still open: write it STOPPED.
        record: bool,
    },
}

/// The rule. `record` is the stored record, `execution` what DescribeExecution said (not asked
/// when the record is final). An open record of a closed execution is one whose end the
/// closer has not written yet: an aborted one is closed here as well (a cancel that failed half
/// way, retried), any other end is the build's own.
pub fn decide(record: Option<&BuildRecord>, execution: Option<&ExecutionInfo>) -> Decision {
    if let Some(r) = record.filter(|r| r.status.is_final()) {
        return if is_cancelled(r) {
            Decision::AlreadyCancelled
        } else {
            Decision::Finished(r.status.into())
        };
    }
    let codebuild = record.and_then(|r| r.codebuild.build_id.clone());
    match (record, execution) {
        (None, None) => Decision::Unknown,
        (_, Some(e)) if e.status.is_open() => Decision::Stop {
            execution: true,
            codebuild,
            record: record.is_some(),
        },
        (_, Some(e)) if e.status == ExecutionStatus::Aborted => Decision::Stop {
            execution: false,
            codebuild,
            record: record.is_some(),
        },
        (_, Some(e)) => {
            Decision::Finished(ending(&e.status, e.error.as_deref(), record.is_some()).reported())
        }
        // A record whose execution is gone (its history expired): close what it names.
        (Some(_), None) => Decision::Stop {
            execution: false,
            codebuild,
            record: true,
        },
    }
}

/// A final record a cancel wrote (or the closer, on the execution a cancel aborted).
pub fn is_cancelled(r: &BuildRecord) -> bool {
    r.status == BuildStatus::Stopped && r.error.as_ref().is_some_and(|e| e.kind == CANCELLED)
}

/// What a cancel answers.
// One value per request, moved straight to its reader: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Cancelled (now or before): what `GET /builds/{id}` answers now — the STOPPED record, or
    /// the live status of an execution stopped before it wrote any record.
    Cancelled(Status),
    /// It had finished on its own with this status.
    Finished(Reported),
    /// No such build.
    Unknown,
}

/// Cancels build `build_id`; `cause` says who asked (the execution's cause, the record's
/// `error.message`).
pub async fn cancel<S: ObjectStore, X: Executions, B: BuildService>(
    store: &S,
    executions: &X,
    builds: &B,
    build_id: &str,
    cause: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let stored = records::build(store, build_id).await?;
    let execution = match &stored {
        Some(s) if s.record.status.is_final() => None,
        _ => executions.describe(build_id).await?,
    };
    let record = stored.as_ref().map(|s| &s.record);
    let (stop_execution, codebuild, close) = match decide(record, execution.as_ref()) {
        Decision::Unknown => return Ok(Outcome::Unknown),
        Decision::Finished(s) => return Ok(Outcome::Finished(s)),
        Decision::AlreadyCancelled => {
            let stored = stored.expect("a cancelled build has a record");
            return Ok(Outcome::Cancelled(Status::Record(stored)));
        }
        Decision::Stop {
            execution,
            codebuild,
            record,
        } => (execution, codebuild, record),
    };
    if stop_execution {
        executions.stop(build_id, CANCELLED, cause).await?;
        tracing::info!(build_id, "execution stopped: cancelled");
    }
    let stopped = match &codebuild {
        Some(id) => stop_build(builds, build_id, id, "cancelled").await?,
        None => false,
    };
    match stored.filter(|_| close) {
        Some(stored) => {
            let mut record = stored.record;
            record.finish(BuildStatus::Stopped, ErrorInfo::new(CANCELLED, cause), now);
            record.codebuild.stopped |= stopped;
            // Another writer (RecordResult finishing, the closer) may have come first.
            let standing = records::write(store, &record).await?;
            Ok(answer(standing))
        }
        // Stopped before StartBuild wrote anything: GET answers the aborted execution.
        None => match status(store, executions, build_id, now).await? {
            Some(Status::Record(s)) if !is_cancelled(&s.record) => {
                Ok(Outcome::Finished(s.record.status.into()))
            }
            Some(st) => Ok(Outcome::Cancelled(st)),
            None => Ok(Outcome::Unknown),
        },
    }
}

fn answer(standing: BuildRecord) -> Outcome {
    if is_cancelled(&standing) {
        let bytes = standing.to_json();
        Outcome::Cancelled(Status::Record(Stored {
            bytes,
            record: standing,
        }))
    } else {
        Outcome::Finished(standing.status.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(status: &str, codebuild: Option<&str>, error: Option<(&str, &str)>) -> BuildRecord {
        let mut v = json!({
            "schemaVersion": 1, "buildId": "api-1", "executionArn": "arn:x:api-1",
            "trigger": "api", "project": "p", "agent": "a", "status": status,
            "source": {"uri": "s3://b/k", "bucket": "b", "key": "k", "sha256": "ab"},
            "image": {"repositoryUri": "r", "tag": "t"},
            "codebuild": {"buildId": codebuild},
            "timestamps": {"requestedAt": "2026-11-28T10:00:00Z",
                           "startedAt": "2026-11-28T10:00:01Z"},
            "durations": {}
        });
        if let Some((kind, message)) = error {
            v["error"] = json!({"type": kind, "message": message});
        }
        serde_json::from_value(v).unwrap()
    }

    fn execution(status: ExecutionStatus, error: Option<&str>) -> ExecutionInfo {
        ExecutionInfo {
            arn: "arn:x:api-1".into(),
            name: "api-1".into(),
            status,
            started_at: None,
            stopped_at: None,
            input: None,
            error: error.map(String::from),
            cause: None,
        }
    }

    fn stop(execution: bool, codebuild: Option<&str>, record: bool) -> Decision {
        Decision::Stop {
            execution,
            codebuild: codebuild.map(String::from),
            record,
        }
    }

    #[test]
    fn a_running_build_stops_its_execution_its_codebuild_build_and_its_record() {
        let r = record("RUNNING", Some("proj:1"), None);
        let e = execution(ExecutionStatus::Running, None);
        assert_eq!(decide(Some(&r), Some(&e)), stop(true, Some("proj:1"), true));
    }

    #[test]
    fn before_codebuild_only_the_execution_and_the_marker_are_stopped() {
        let marker = record("RUNNING", None, None);
        let e = execution(ExecutionStatus::Running, None);
        assert_eq!(decide(Some(&marker), Some(&e)), stop(true, None, true));
        assert_eq!(decide(None, Some(&e)), stop(true, None, false));
    }

    #[test]
    fn a_cancelled_build_is_cancelled_again_without_stopping_anything() {
        let r = record("STOPPED", Some("proj:1"), Some((CANCELLED, "by the API")));
        assert_eq!(decide(Some(&r), None), Decision::AlreadyCancelled);
    }

    #[test]
    fn a_build_that_ended_on_its_own_is_finished_with_its_status() {
        for status in [
            "SUCCEEDED",
            "REUSED",
            "FAILED",
            "FAULT",
            "TIMED_OUT",
            "ERROR",
        ] {
            let r = record(status, Some("proj:1"), None);
            assert_eq!(
                decide(Some(&r), None),
                Decision::Finished(serde_json::from_value(json!(status)).unwrap()),
                "{status}"
            );
        }
        let stopped_otherwise = record("STOPPED", Some("proj:1"), Some(("ExecutionAborted", "")));
        assert_eq!(
            decide(Some(&stopped_otherwise), None),
            Decision::Finished(Reported::Stopped)
        );
    }

    #[test]
    fn a_closed_execution_without_a_final_record_ended_on_its_own_unless_aborted() {
        let open = record("RUNNING", Some("proj:1"), None);
        let aborted = execution(ExecutionStatus::Aborted, Some(CANCELLED));
        assert_eq!(
            decide(Some(&open), Some(&aborted)),
            stop(false, Some("proj:1"), true),
            "a cancel that failed half way is finished by the next"
        );
        let rejected = execution(ExecutionStatus::Failed, Some("InvalidRequest"));
        assert_eq!(
            decide(None, Some(&rejected)),
            Decision::Finished(Reported::Rejected)
        );
        let failed = execution(ExecutionStatus::Failed, Some("States.Runtime"));
        assert_eq!(
            decide(Some(&open), Some(&failed)),
            Decision::Finished(Reported::Error)
        );
        let timed_out = execution(ExecutionStatus::TimedOut, None);
        assert_eq!(
            decide(Some(&open), Some(&timed_out)),
            Decision::Finished(Reported::TimedOut)
        );
    }

    #[test]
    fn nothing_known_is_unknown_an_open_record_without_execution_is_closed() {
        assert_eq!(decide(None, None), Decision::Unknown);
        let open = record("RUNNING", Some("proj:1"), None);
        assert_eq!(decide(Some(&open), None), stop(false, Some("proj:1"), true));
    }
}
