//! When a writer of a final record announces it (`Build Finished` on EventBridge): at least
//! once, and exactly once without faults.
//!
//! Every writer (RecordResult, the last-resort closer, cancel) offers a record through the
//! conditional write, which answers the record that stands: the offered one, or a final record
//! another writer stored first. A writer announces what it made final, and what it finds final
//! when that is the record it would have written — its own earlier attempt whose announcement
//! failed (a retried RecordResult, a redelivered closer event). A final record of another
//! writer with another outcome is that writer's to announce, so it is not announced twice.

use super::deployment::{DeploymentStatus, DEPLOY_FAILED};
use super::ending::{ExecutionStatus, INVALID_REQUEST};
use super::record::BuildRecord;

/// Two records tell the same outcome: what a writer sets when it closes a record. A writer
/// computes its record from its input alone (RecordResult from the state and `recordedAt`, the
/// closer from the execution's end), so its retries offer the same outcome again; two writers
/// never offer the same `finishedAt` and error both.
pub fn same_outcome(a: &BuildRecord, b: &BuildRecord) -> bool {
    a.build_id == b.build_id
        && a.status == b.status
        && a.error == b.error
        && a.timestamps.finished_at == b.timestamps.finished_at
}

/// A writer offered `offered`; `standing` is the record that stands after its write.
pub fn writer_announces(offered: &BuildRecord, standing: &BuildRecord) -> bool {
    standing.status.is_final() && same_outcome(offered, standing)
}

/// The last-resort closer found the record final before writing. `would_write` is the record
/// it would have written; `execution_status` / `execution_error` say how the execution ended.
///
/// - its own outcome (a redelivered event after a failed announcement): announce;
/// - a FAILED execution whose error is not the record's status: RecordResult (or a step after
///   it) failed past its retries — possibly at PutEvents after its write — so the record may
///   never have been announced: announce (at least once; subscribers dedupe);
/// - a FAILED execution whose error is the record's status is the machine's Fail state after
///   RecordResult returned, i.e. after it announced — so is `DeployFailed` over a record whose
///   deployment FAILED (the build succeeded, its deployment did not); a TIMED_OUT one found the record of the
///   writer that closed it (RecordResult): theirs to announce;
/// - a FAILED execution refused by ValidateRequest (`InvalidRequest`) found an earlier
///   execution's final record at a reused name: not its own, not announced again;
/// - an ABORTED execution whose record a cancel closed (`error.type` `Cancelled`): a cancel
///   aborts the execution, so its record is announced here, once per abort event.
pub fn closer_announces_found(
    would_write: &BuildRecord,
    found: &BuildRecord,
    execution_status: &ExecutionStatus,
    execution_error: Option<&str>,
) -> bool {
    if writer_announces(would_write, found) {
        return true;
    }
    let cancelled = found.error.as_ref().is_some_and(|e| e.kind == "Cancelled");
    let deploy_failed = execution_error == Some(DEPLOY_FAILED)
        && found
            .deployment
            .as_ref()
            .is_some_and(|d| d.status == DeploymentStatus::Failed);
    // ValidateRequest refused the execution before writing: a final record it finds is an
    // earlier execution's of that name (a reused name), announced by its own writer.
    let refused = execution_error == Some(INVALID_REQUEST);
    (*execution_status == ExecutionStatus::Failed
        && execution_error != Some(found.status.as_str())
        && !deploy_failed
        && !refused)
        || (*execution_status == ExecutionStatus::Aborted && cancelled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::record::ErrorInfo;
    use crate::domain::status::BuildStatus;

    fn closed(status: BuildStatus, kind: &str, at: &str) -> BuildRecord {
        let mut r = BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:01:00Z"));
        r.finish(status, ErrorInfo::new(kind, "why"), t(at));
        r
    }

    fn open() -> BuildRecord {
        BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:01:00Z"))
    }

    #[test]
    fn a_writer_announces_the_record_its_write_made_final() {
        let mine = closed(BuildStatus::Failed, "X", "2026-11-28T10:03:00Z");
        assert!(writer_announces(&mine, &mine));
    }

    #[test]
    fn a_retried_writer_announces_its_own_earlier_record_again() {
        let first = closed(
            BuildStatus::Error,
            "TransientAwsError",
            "2026-11-28T10:03:00Z",
        );
        let mut retry = first.clone();
        // A retry may learn more (the build got stopped this time): still its own outcome.
        retry.codebuild.stopped = !first.codebuild.stopped;
        assert!(writer_announces(&retry, &first));
    }

    #[test]
    fn a_writer_that_lost_to_another_outcome_does_not_announce() {
        let cancel = closed(BuildStatus::Stopped, "Cancelled", "2026-11-28T10:02:00Z");
        let mine = closed(BuildStatus::Succeeded, "X", "2026-11-28T10:03:00Z");
        assert!(!writer_announces(&mine, &cancel));
        // Same status, another writer's error and time: the closer's STOPPED against a cancel's.
        let closer = closed(BuildStatus::Stopped, "Cancelled", "2026-11-28T10:02:01Z");
        assert!(!writer_announces(&closer, &cancel));
    }

    #[test]
    fn an_open_record_is_never_announced() {
        assert!(!writer_announces(&open(), &open()));
    }

    #[test]
    fn the_closer_announces_its_own_outcome_found_final() {
        let mine = closed(
            BuildStatus::TimedOut,
            "States.Timeout",
            "2026-11-28T10:10:00Z",
        );
        assert!(closer_announces_found(
            &mine,
            &mine,
            &ExecutionStatus::TimedOut,
            None
        ));
    }

    #[test]
    fn the_closer_leaves_a_record_recordresult_announced_before_the_fail_state() {
        let recorded = closed(BuildStatus::Failed, "X", "2026-11-28T10:03:00Z");
        let would = closed(BuildStatus::Error, "FAILED", "2026-11-28T10:03:10Z");
        assert!(!closer_announces_found(
            &would,
            &recorded,
            &ExecutionStatus::Failed,
            Some("FAILED")
        ));
    }

    #[test]
    fn the_closer_leaves_a_failed_deployment_recordresult_announced_before_deploy_failed() {
        use crate::domain::deployment::{Deployment, DeploymentStatus};
        let mut recorded = closed(BuildStatus::Succeeded, "X", "2026-11-28T10:03:00Z");
        let would = closed(BuildStatus::Error, "DeployFailed", "2026-11-28T10:03:10Z");
        // A successful build without a failed deployment: DeployFailed cannot come from the
        // machine's Fail state, so the record may be unannounced.
        assert!(closer_announces_found(
            &would,
            &recorded,
            &ExecutionStatus::Failed,
            Some("DeployFailed")
        ));
        recorded.deployment = Some(Deployment {
            status: DeploymentStatus::Failed,
            runtime_id: None,
            runtime_arn: None,
            runtime_name: "r".into(),
            runtime_version: None,
            container_uri: None,
            action: None,
            failure_reason: Some("UPDATE_FAILED".into()),
            started_at: t("2026-11-28T10:02:00Z"),
            finished_at: Some(t("2026-11-28T10:03:00Z")),
            deadline: None,
            wait_seconds: None,
            checks: 0,
            superseded: None,
            endpoint: None,
            version: None,
            previous_version: None,
            smoke: None,
            phase: None,
            scan: None,
        });
        assert!(!closer_announces_found(
            &would,
            &recorded,
            &ExecutionStatus::Failed,
            Some("DeployFailed")
        ));
        // RecordResult failing past its retries still leaves it to the closer.
        assert!(closer_announces_found(
            &would,
            &recorded,
            &ExecutionStatus::Failed,
            Some("TransientAwsError")
        ));
    }

    #[test]
    fn the_closer_announces_a_final_record_when_recordresult_failed_past_its_retries() {
        let recorded = closed(BuildStatus::Succeeded, "X", "2026-11-28T10:03:00Z");
        let would = closed(
            BuildStatus::Error,
            "TransientAwsError",
            "2026-11-28T10:03:10Z",
        );
        assert!(closer_announces_found(
            &would,
            &recorded,
            &ExecutionStatus::Failed,
            Some("TransientAwsError")
        ));
    }

    #[test]
    fn a_cancelled_record_is_announced_by_the_closer_of_its_abort() {
        let cancelled = closed(BuildStatus::Stopped, "Cancelled", "2026-11-28T10:05:00Z");
        let would = closed(
            BuildStatus::Stopped,
            "ExecutionAborted",
            "2026-11-28T10:05:01Z",
        );
        assert!(closer_announces_found(
            &would,
            &cancelled,
            &ExecutionStatus::Aborted,
            None
        ));
        let other = closed(
            BuildStatus::Stopped,
            "ExecutionAborted",
            "2026-11-28T10:04:00Z",
        );
        assert!(!closer_announces_found(
            &would,
            &other,
            &ExecutionStatus::TimedOut,
            None
        ));
    }
}
