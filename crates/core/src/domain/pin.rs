//! A rollback pins the endpoint it moved: `agents/<project>/<agent>/pins/<runtime>.<endpoint>.json`.
//! Without it, the next scheduled rebuild of the agent's latest (the same submission, finished
//! later) would deploy and move the endpoint forward again, silently undoing the rollback. A
//! pinned endpoint moves only for a deploy of a submission made after the rollback (a new
//! request through a door, forced or of new source); older ones — a fleet rebuild, a deploy
//! that was still running when the rollback happened — are not applied (SUPERSEDED, with why).

use super::deployment::Superseded;
use super::order::Rank;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub fn pin_key(project: &str, agent: &str, runtime_name: &str, endpoint: &str) -> String {
    format!("agents/{project}/{agent}/pins/{runtime_name}.{endpoint}.json")
}

/// What a rollback left: the build and version the endpoint was moved to, when, by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pin {
    pub at: DateTime<Utc>,
    pub build_id: String,
    pub version: String,
    pub by: String,
}

/// Whether a deploy of `candidate` may move the pinned endpoint: only a submission made after
/// the rollback.
pub fn decide(pin: Option<&Pin>, candidate: &Rank, endpoint: &str) -> Result<(), Superseded> {
    let Some(pin) = pin.filter(|p| candidate.submitted_at <= p.at) else {
        return Ok(());
    };
    Err(Superseded {
        by: pin.build_id.clone(),
        reason: format!(
            "endpoint {endpoint} was rolled back to build {} (version {}) at {} by {}; only a \
             deploy submitted after that moves it (this one was submitted at {})",
            pin.build_id,
            pin.version,
            pin.at.to_rfc3339(),
            pin.by,
            candidate.submitted_at.to_rfc3339()
        ),
    })
}

/// The runtime name of an AgentCore runtime id (`<name>-<10 characters>`).
pub fn name_of_runtime_id(id: &str) -> &str {
    id.rsplit_once('-').map_or(id, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::tests::t;

    #[test]
    fn a_rollback_holds_against_its_own_submissions_rebuild_but_not_a_newer_submission() {
        let pin = Pin {
            at: t("2026-11-28T12:00:00Z"),
            build_id: "b-1".into(),
            version: "1".into(),
            by: "arn:aws:iam::1:user/ops".into(),
        };
        let rebuild = Rank {
            build_id: "sched-x".into(),
            submitted_at: t("2026-11-28T11:00:00Z"),
            finished_at: Some(t("2026-11-29T03:10:00Z")),
        };
        let why = decide(Some(&pin), &rebuild, "live").unwrap_err();
        assert_eq!(why.by, "b-1");
        assert!(
            why.reason.contains("rolled back to build b-1") && why.reason.contains("ops"),
            "{}",
            why.reason
        );
        let newer = Rank {
            submitted_at: t("2026-11-28T12:30:00Z"),
            ..rebuild.clone()
        };
        assert_eq!(decide(Some(&pin), &newer, "live"), Ok(()));
        assert_eq!(decide(None, &rebuild, "live"), Ok(()));
        assert_eq!(
            name_of_runtime_id("ab_bot_0123abcd-Xk2m9Qp4Rt"),
            "ab_bot_0123abcd"
        );
        assert_eq!(
            pin_key("p", "a", "rt", "live"),
            "agents/p/a/pins/rt.live.json"
        );
    }
}
