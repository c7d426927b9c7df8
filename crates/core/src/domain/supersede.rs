//! A live agent never moves backwards: the order of builds that `latest.json` follows (the
//! newer submission wins; a rebuild counts as the submission it rebuilds; among builds of one
//! submission the one that finished last) applied to the runtime. A deploy first claims the
//! agent's deploy ledger (`agents/<project>/<agent>/deployed.json`); a deploy older than what
//! the ledger names is not applied and is recorded `SUPERSEDED`. Pure: `services::deploys`
//! reads and writes the ledger.

use super::deploy_request::DeploySpec;
pub use super::deployment::Superseded;
use super::deployment::{Deployment, DeploymentStatus};
pub use super::order::{newer_or_same, Rank};
use super::plan::BuildPlan;
use super::record::{BuildRecord, BuildState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `agents/<project>/<agent>/deployed.json`: the build the agent's runtime was last handed to.
pub fn ledger_key(project: &str, agent: &str) -> String {
    format!("agents/{project}/{agent}/deployed.json")
}

/// A build as the state machine carries it (its record will rank the same).
pub fn rank_of_build(plan: &BuildPlan, build: &BuildState) -> Rank {
    Rank {
        build_id: plan.build_id.clone(),
        submitted_at: plan.submitted_at.unwrap_or(plan.requested_at),
        finished_at: build.finished_at,
    }
}

/// The ledger's content: the build claimed, and what it hands the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    #[serde(flatten)]
    pub rank: Rank,
    pub execution_arn: String,
    pub container_uri: String,
    pub claimed_at: DateTime<Utc>,
}

/// What a deploy may do, given the ledger (`None`: no deploy claimed yet; then the agent's
/// latest record's READY deployment, from before the ledger existed, stands for it).
pub fn decide(
    ledger: Option<&Rank>,
    latest: Option<&BuildRecord>,
    candidate: &Rank,
) -> Result<(), Superseded> {
    let deployed_latest = latest
        .filter(|r| {
            r.deployment
                .as_ref()
                .is_some_and(|d| d.status == DeploymentStatus::Ready)
        })
        .map(BuildRecord::rank);
    let Some(current) = ledger.cloned().or(deployed_latest) else {
        return Ok(());
    };
    if newer_or_same(&current, candidate) {
        return Ok(());
    }
    let why = if current.submitted_at > candidate.submitted_at {
        format!(
            "the runtime already belongs to {} of a newer submission ({} > {})",
            current.build_id,
            current.submitted_at.to_rfc3339(),
            candidate.submitted_at.to_rfc3339()
        )
    } else {
        format!(
            "the runtime already belongs to {}, a build of the same submission that finished later",
            current.build_id
        )
    };
    Err(Superseded {
        by: current.build_id,
        reason: why,
    })
}

/// The record's deployment of a deploy that was not applied: the runtime untouched, the
/// build's status kept, the execution not failed.
pub fn superseded(
    spec: &DeploySpec,
    container_uri: String,
    why: Superseded,
    now: DateTime<Utc>,
) -> Deployment {
    let mut d = Deployment::refused(spec, Some(container_uri), why.reason.clone(), now);
    d.status = DeploymentStatus::Superseded;
    d.failure_reason = None;
    d.superseded = Some(why);
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::tests::t;

    fn rank(id: &str, submitted: &str, finished: &str) -> Rank {
        Rank {
            build_id: id.into(),
            submitted_at: t(submitted),
            finished_at: Some(t(finished)),
        }
    }

    #[test]
    fn a_newer_submission_takes_the_runtime_however_late_the_older_finished() {
        let newer = rank("b-new", "2026-11-28T10:00:00Z", "2026-11-28T10:05:00Z");
        let older = rank("b-old", "2026-11-28T09:00:00Z", "2026-11-28T10:30:00Z");
        assert!(newer_or_same(&older, &newer));
        let why = decide(Some(&newer), None, &older).unwrap_err();
        assert_eq!(why.by, "b-new");
        assert!(why.reason.contains("newer submission"), "{}", why.reason);
    }

    #[test]
    fn among_builds_of_one_submission_the_one_that_finished_last_wins() {
        let first = rank("b-1", "2026-11-28T09:00:00Z", "2026-11-28T10:00:00Z");
        let last = rank("b-2", "2026-11-28T09:00:00Z", "2026-11-28T10:10:00Z");
        assert!(decide(Some(&first), None, &last).is_ok());
        let why = decide(Some(&last), None, &first).unwrap_err();
        assert!(why.reason.contains("finished later"), "{}", why.reason);
    }

    #[test]
    fn the_same_build_again_is_a_retry_and_an_empty_ledger_claims() {
        let b = rank("b-1", "2026-11-28T09:00:00Z", "2026-11-28T10:00:00Z");
        assert!(decide(Some(&b), None, &b).is_ok());
        assert!(decide(None, None, &b).is_ok());
    }

    #[test]
    fn without_a_ledger_the_latest_records_ready_deployment_stands_for_it() {
        use crate::domain::record::tests::{plan, running};
        use crate::domain::status::BuildStatus;
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        let mut rec = BuildRecord::new(&plan(), Some(&b), None, t("2026-11-28T10:00:00Z"));
        rec.timestamps.submitted_at = Some(t("2026-11-28T10:00:00Z"));
        let old = rank("b-old", "2026-11-28T09:00:00Z", "2026-11-28T11:00:00Z");
        // A latest record without a deployment says nothing about the runtime.
        assert!(decide(None, Some(&rec), &old).is_ok());
        let mut dep = Deployment::refused(
            &crate::domain::deploy_request::validate_deploy(
                &serde_json::json!({}),
                "s",
                "p",
                "a",
                None,
            )
            .unwrap(),
            None,
            "x",
            t("2026-11-28T10:00:00Z"),
        );
        dep.status = DeploymentStatus::Ready;
        rec.deployment = Some(dep);
        assert_eq!(decide(None, Some(&rec), &old).unwrap_err().by, rec.build_id);
    }

    #[test]
    fn a_superseded_deployment_is_not_a_failure_and_says_why() {
        let spec = crate::domain::deploy_request::validate_deploy(
            &serde_json::json!({}),
            "s",
            "p",
            "a",
            None,
        )
        .unwrap();
        let why = Superseded {
            by: "b-new".into(),
            reason: "newer".into(),
        };
        let d = superseded(&spec, "r@sha256:aa".into(), why, t("2026-11-28T10:00:00Z"));
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["status"], "SUPERSEDED");
        assert_eq!(v["superseded"]["by"], "b-new");
        assert!(v.get("failureReason").is_none() && v["runtimeId"].is_null());
    }

    #[test]
    fn the_ledger_is_pinned() {
        let c = Claim {
            rank: rank("b-1", "2026-11-28T09:00:00Z", "2026-11-28T10:00:00Z"),
            execution_arn: "arn:x".into(),
            container_uri: "r@sha256:aa".into(),
            claimed_at: t("2026-11-28T10:01:00Z"),
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"buildId":"b-1","submittedAt":"2026-11-28T09:00:00Z","finishedAt":"2026-11-28T10:00:00Z","executionArn":"arn:x","containerUri":"r@sha256:aa","claimedAt":"2026-11-28T10:01:00Z"}"#
        );
        assert_eq!(ledger_key("p", "a"), "agents/p/a/deployed.json");
    }
}
