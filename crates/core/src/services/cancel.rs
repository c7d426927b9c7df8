//! Cancel: what `DELETE /projects/{p}/builds/{id}` and `agentbuild cancel` (direct mode) do — stop the
//! execution (error `Cancelled`), then read the record again and close it `STOPPED` from what
//! it holds *now*, inside the conditional update (`objects::update`): a CodeBuild build it
//! names is stopped first (also one StartBuild named after the first read), a record another
//! writer made final is kept (a cancel that came too late answers its status). The last-resort
//! closer that runs on the ABORTED execution finds it final. Cancelling again answers the same
//! STOPPED record; a build that finished on its own is not cancelled. (A build StartBuild
//! starts after this closed the record is stopped by StartBuild itself.)
//!
//! [`decide`] is the rule (pure); [`cancel`] loads, decides, stops and stores.

use super::live_status::{status, Status};
use super::objects::{self, Decision as Write, MAX_CONFLICTS};
use super::records::{self, Stored};
use super::stop::stop_build;
use crate::domain::ending::{ending, Reported};
use crate::domain::record::{build_key, BuildRecord, ErrorInfo};
use crate::domain::status::{map_codebuild, BuildStatus, Mapped};
use crate::ports::{BuildService, ExecutionInfo, ExecutionStatus, Executions, ObjectStore, Tagged};
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
    /// Cancelled (now or before): what `GET /projects/{p}/builds/{id}` answers now — the STOPPED record, or
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
    let (stop_execution, codebuild) = match decide(record, execution.as_ref()) {
        Decision::Unknown => return Ok(Outcome::Unknown),
        Decision::Finished(s) => return Ok(Outcome::Finished(s)),
        Decision::AlreadyCancelled => {
            let stored = stored.expect("a cancelled build has a record");
            return Ok(Outcome::Cancelled(Status::Record(stored)));
        }
        Decision::Stop {
            execution,
            codebuild,
            ..
        } => (execution, codebuild),
    };
    if let (true, Some(id)) = (stop_execution, &codebuild) {
        if let Some(status) = ended_on_its_own(builds, id).await? {
            tracing::info!(build_id, codebuild_id = %id, %status, "build ended on its own; not cancelled");
            return Ok(Outcome::Finished(status));
        }
    }
    if stop_execution {
        executions.stop(build_id, CANCELLED, cause).await?;
        tracing::info!(build_id, "execution stopped: cancelled");
    }
    // Read again now that the execution is stopped: StartBuild may have named a CodeBuild
    // build (or a writer closed the record) since the first read.
    match close_record(store, builds, build_id, cause, now).await? {
        Closing::Standing(standing) => Ok(answer(standing)),
        // Stopped before anyone wrote a record: GET answers the aborted execution.
        Closing::Absent => match status(store, executions, build_id, now).await? {
            Some(Status::Record(s)) if !is_cancelled(&s.record) => {
                Ok(Outcome::Finished(s.record.status.into()))
            }
            Some(st) => Ok(Outcome::Cancelled(st)),
            None => Ok(Outcome::Unknown),
        },
        Closing::Stop(_) => unreachable!("close_record stops before it answers"),
    }
}

/// The status of a CodeBuild build that ended on its own while its execution still runs (it
/// deploys the image, or is about to record): a cancel then comes too late — the execution
/// runs to its end and records the build's and the deployment's true outcome (AgentCore has
/// no way to cancel an update under way). `None`: still running, stopped (by an earlier cancel
/// that failed half way), or unknown to CodeBuild.
async fn ended_on_its_own<B: BuildService>(
    builds: &B,
    id: &str,
) -> Result<Option<Reported>, Error> {
    let Some(info) = builds.get(id).await? else {
        return Ok(None);
    };
    Ok(match map_codebuild(&info.status, info.build_complete) {
        Mapped::Status(BuildStatus::Running | BuildStatus::Stopped) => None,
        Mapped::Status(status) => Some(status.into()),
        Mapped::Unrecognized(_) => Some(Reported::Error),
    })
}

/// What [`close_record`]'s conditional update found.
// Short-lived, one per cancel: boxing the record would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Closing {
    /// No record at the name.
    Absent,
    /// The record names a CodeBuild build not stopped yet: stop it, then decide again.
    Stop(String),
    /// The record that stands: the STOPPED one written, or a final one found.
    Standing(BuildRecord),
}

/// Closes the record STOPPED from what it holds *now* (`objects::update`: read, decide, write
/// with `If-Match`): a CodeBuild build it names is stopped first — also one StartBuild named
/// after the cancel's first read — and a record another writer made final stays as it is.
async fn close_record<S: ObjectStore, B: BuildService>(
    store: &S,
    builds: &B,
    build_id: &str,
    cause: &str,
    now: DateTime<Utc>,
) -> Result<Closing, Error> {
    let key = build_key(build_id);
    let mut stopped: Option<(String, bool)> = None;
    for _ in 0..MAX_CONFLICTS {
        let closing = objects::update(store, &key, |current: Option<&Tagged>| {
            let Some(tagged) = current else {
                return Ok(Write::Keep(Closing::Absent));
            };
            let mut record: BuildRecord =
                objects::parse_json(&key, &tagged.bytes, "a build record")?;
            if record.status.is_final() {
                return Ok(Write::Keep(Closing::Standing(record)));
            }
            let named = record.codebuild.build_id.clone();
            match (&named, &stopped) {
                (Some(id), Some((done, _))) if id == done => {}
                (Some(id), _) => return Ok(Write::Keep(Closing::Stop(id.clone()))),
                (None, _) => {}
            }
            record.finish(BuildStatus::Stopped, ErrorInfo::new(CANCELLED, cause), now);
            record.codebuild.stopped |= stopped.as_ref().is_some_and(|(_, ok)| *ok);
            Ok(Write::Write(record.to_json(), Closing::Standing(record)))
        })
        .await?;
        match closing {
            Closing::Stop(id) => {
                let ok = stop_build(builds, build_id, &id, "cancelled").await?;
                stopped = Some((id, ok));
            }
            done => return Ok(done),
        }
    }
    Err(Error::TransientAws(format!(
        "{key}: the record kept naming new CodeBuild builds"
    )))
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

    #[cfg(feature = "lambda")]
    mod io {
        use super::*;
        use crate::domain::status::CodeBuildStatus;
        use crate::testing::fakes::{info, FakeBuilds, FakeExecutions, FakeStore};

        fn now() -> DateTime<Utc> {
            "2026-11-28T10:02:00Z".parse().unwrap()
        }

        /// A RUNNING record naming `agentbuild:1` and its running execution.
        fn running_build() -> (FakeStore, FakeExecutions) {
            let store = FakeStore::default();
            store.seed(
                "builds/api-1.json",
                record("RUNNING", Some("agentbuild:1"), None).to_json(),
            );
            let x = FakeExecutions::default().with("api-1", ExecutionStatus::Running, "{}");
            (store, x)
        }

        #[tokio::test]
        async fn a_build_that_ended_on_its_own_while_deploying_is_not_cancelled() {
            let (store, x) = running_build();
            let builds = FakeBuilds::default();
            builds.insert(info(CodeBuildStatus::Succeeded, true));
            let out = cancel(&store, &x, &builds, "api-1", "by a test", now()).await;
            assert_eq!(out.unwrap(), Outcome::Finished(Reported::Succeeded));
            assert!(builds.stopped.borrow().is_empty());
            assert_eq!(
                x.executions.borrow()["api-1"].status,
                ExecutionStatus::Running
            );
            let kept: BuildRecord = store.own_json("builds/api-1.json").unwrap();
            assert_eq!(kept.status, BuildStatus::Running);
        }

        #[tokio::test]
        async fn the_record_is_closed_from_what_it_names_now() {
            let store = FakeStore::default();
            // StartBuild named the build after the cancel's first read: the close re-reads.
            store.seed(
                "builds/api-1.json",
                record("RUNNING", Some("agentbuild:1"), None).to_json(),
            );
            let builds = FakeBuilds::default();
            builds.insert(info(CodeBuildStatus::InProgress, false));
            let closing = close_record(&store, &builds, "api-1", "by a test", now());
            let Closing::Standing(closed) = closing.await.unwrap() else {
                panic!("not closed")
            };
            assert_eq!(*builds.stopped.borrow(), vec!["agentbuild:1".to_string()]);
            assert!(is_cancelled(&closed) && closed.codebuild.stopped);
            // A record another writer made final stays as it is.
            let done = record("SUCCEEDED", Some("agentbuild:1"), None);
            store.seed("builds/api-1.json", done.to_json());
            let closing = close_record(&store, &builds, "api-1", "by a test", now());
            assert!(matches!(closing.await.unwrap(), Closing::Standing(r) if r == done));
        }
    }

    #[test]
    fn nothing_known_is_unknown_an_open_record_without_execution_is_closed() {
        assert_eq!(decide(None, None), Decision::Unknown);
        let open = record("RUNNING", Some("proj:1"), None);
        assert_eq!(decide(Some(&open), None), stop(false, Some("proj:1"), true));
    }
}
