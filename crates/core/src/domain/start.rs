//! StartBuild's decision, as one pure rule: resume the build this execution started, look it
//! up, reuse an image built before, start one, or start nothing because the record was closed
//! first (a cancel before StartBuild).
//!
//! The marker is explicit: StartBuild sets `codebuild.startRequestedAt` in the record right
//! before it asks CodeBuild, so a retry tells "CodeBuild may have started a build" from
//! ValidateRequest's first record (which names no build either).

use super::plan::BuildPlan;
use super::record::{reuse, BuildRecord, Reuse};
use chrono::{DateTime, Duration, Utc};

/// CodeBuild's idempotency token holds for 5 minutes; past this much, a retry looks the build
/// up instead of trusting the token.
pub const TOKEN_WINDOW: Duration = Duration::minutes(4);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The record names the build this execution started: wait for it.
    Resume {
        codebuild_id: String,
        since: DateTime<Utc>,
        polls: u32,
    },
    /// The marker stands, past the token's window: CodeBuild may have started a build; find
    /// it by its `AGENTBUILD_BUILD_ID` (none found: start).
    LookUp { since: DateTime<Utc>, polls: u32 },
    /// The agent's latest build made this very image: no CodeBuild minutes spent.
    Reuse(Reuse),
    /// Ask CodeBuild (idempotent within the token's window).
    Start,
    /// The record is final already (cancelled before CodeBuild was asked): start nothing.
    Closed(Box<BuildRecord>),
}

/// `record`: this execution's record; `latest`: the agent's latest.json.
pub fn decide(
    plan: &BuildPlan,
    record: Option<&BuildRecord>,
    latest: Option<&BuildRecord>,
    now: DateTime<Utc>,
) -> Start {
    if let Some(rec) = record {
        if rec.status.is_final() {
            return Start::Closed(Box::new(rec.clone()));
        }
        let polls = rec.codebuild.polls;
        if let Some(id) = &rec.codebuild.build_id {
            let since = rec.timestamps.started_at;
            return Start::Resume {
                codebuild_id: id.clone(),
                since: since.or(rec.codebuild.start_requested_at).unwrap_or(now),
                polls,
            };
        }
        match rec.codebuild.start_requested_at {
            Some(since) if now - since >= TOKEN_WINDOW => return Start::LookUp { since, polls },
            // Inside the window CodeBuild answers a repeated StartBuild with the same build.
            Some(_) => return Start::Start,
            None => {}
        }
    }
    match latest.and_then(|l| reuse(plan, l)) {
        Some(r) => Start::Reuse(r),
        None => Start::Start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::status::BuildStatus;

    fn first_record() -> BuildRecord {
        let at = t("2026-11-28T10:00:00Z");
        BuildRecord::new(
            &plan(),
            Some(&crate::domain::record::BuildState::starting(at)),
            None,
            at,
        )
    }

    #[test]
    fn validate_requests_first_record_is_no_marker() {
        let now = t("2026-11-28T11:00:00Z");
        assert_eq!(
            decide(&plan(), Some(&first_record()), None, now),
            Start::Start
        );
    }

    #[test]
    fn the_marker_is_trusted_inside_the_window_and_looked_up_past_it() {
        let mut marked = first_record();
        marked.codebuild.start_requested_at = Some(t("2026-11-28T10:00:00Z"));
        let soon = t("2026-11-28T10:01:00Z");
        assert_eq!(decide(&plan(), Some(&marked), None, soon), Start::Start);
        let late = t("2026-11-28T10:05:00Z");
        assert_eq!(
            decide(&plan(), Some(&marked), None, late),
            Start::LookUp {
                since: t("2026-11-28T10:00:00Z"),
                polls: 0
            }
        );
    }

    #[test]
    fn a_named_build_is_resumed_and_a_closed_record_starts_nothing() {
        let now = t("2026-11-28T10:05:00Z");
        let live = BuildRecord::new(&plan(), Some(&running()), None, now);
        assert!(matches!(
            decide(&plan(), Some(&live), None, now),
            Start::Resume { codebuild_id, .. } if codebuild_id == "agentbuild:1"
        ));
        let mut cancelled = first_record();
        cancelled.status = BuildStatus::Stopped;
        assert!(matches!(
            decide(&plan(), Some(&cancelled), None, now),
            Start::Closed(_)
        ));
    }
}
