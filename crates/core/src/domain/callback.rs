//! The callback wait, as pure rules: what AwaitBuild parks (the task token, with what finds it), where, which park stands, and how CodeBuild's events name our builds.
//!
//! The token lives at `callbacks/<buildId>.json` in the stack's bucket, readable only by the
//! two functions that complete the wait (template.yaml): never in CodeBuild's environment,
//! never in a record, never in anything the API or the CLI reads.

use super::plan::is_build_id;
use super::record::{BuildRecord, Phase};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// CodeBuild's phases, in order.
pub const PHASES: &[&str] = &[
    "SUBMITTED",
    "QUEUED",
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
    "BUILD",
    "POST_BUILD",
    "UPLOAD_ARTIFACTS",
    "FINALIZING",
    "COMPLETED",
];

/// Where parked task tokens live; no other function may read them.
pub const CALLBACKS_PREFIX: &str = "callbacks/";

/// `callbacks/<buildId>.json`.
pub fn callback_key(build_id: &str) -> String {
    format!("{CALLBACKS_PREFIX}{build_id}.json")
}

/// One waiting AwaitBuild: its token and what the event handler needs to find it and check
/// it — the execution and the CodeBuild build it waits for. Not the plan, not the build's
/// state: what completes the wait is the build's observed state, and only that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParkedTask {
    /// `$$.Task.Token`. Never logged.
    pub token: String,
    /// `$$.State.EnteredTime` of the AwaitBuild that parked it: the same on every retry of one
    /// wait, later for every later wait.
    pub parked_at: DateTime<Utc>,
    /// The execution (`$$.Execution.Name`).
    pub build_id: String,
    /// The CodeBuild build StartBuild started: an event of any other build completes nothing.
    pub codebuild_build_id: String,
    /// The build's deadline: an end event of a build CodeBuild still reports running past it
    /// stops the build (as CheckBuild would).
    pub deadline: DateTime<Utc>,
}

impl std::fmt::Display for ParkedTask {
    /// Without the token: this is what logs may show.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} parked at {}",
            self.build_id,
            self.parked_at.to_rfc3339()
        )
    }
}

/// Parks only move forward: a late retry of an earlier wait must not replace the token of the
/// wait that runs now (that one would then never be completed by an event).
pub fn replaces(stored: &ParkedTask, offered: &ParkedTask) -> bool {
    offered.parked_at >= stored.parked_at
}

/// The build id (`<project>:<uuid>`) in a CodeBuild build ARN
/// (`arn:<partition>:codebuild:<region>:<account>:build/<project>:<uuid>`), the form CodeBuild's
/// events name builds by; an id is returned as it is.
pub fn codebuild_id(arn_or_id: &str) -> Option<&str> {
    let id = match arn_or_id.split_once(":build/") {
        Some((prefix, id)) if prefix.starts_with("arn:") => id,
        Some(_) => return None,
        None => arn_or_id,
    };
    let (project, uuid) = id.split_once(':')?;
    (!project.is_empty() && !uuid.is_empty() && !uuid.contains(':')).then_some(id)
}

/// A build's `AGENTBUILD_BUILD_ID` as the key of our records and parked tokens, when it is
/// one (it comes from outside: an event, a build anyone may have started).
pub fn our_build_id(value: Option<&str>) -> Option<&str> {
    value.filter(|v| is_build_id(v))
}

/// The live record after a "Build Phase Change" event, when the event moves it forward:
/// a RUNNING record of this very build, and more of its phases known than the record has.
/// (Events may arrive out of order or twice; an older one changes nothing.)
pub fn phase_progress(
    record: &BuildRecord,
    codebuild_id: &str,
    phases: &[Phase],
) -> Option<BuildRecord> {
    if record.status.is_final() || record.codebuild.build_id.as_deref() != Some(codebuild_id) {
        return None;
    }
    let rank = |ps: &[Phase]| {
        let ended = ps.iter().filter(|p| p.ended_at.is_some()).count();
        let last = ps
            .last()
            .and_then(|p| PHASES.iter().position(|n| *n == p.name))
            .unwrap_or(0);
        (last, ended)
    };
    if rank(phases) <= rank(&record.codebuild.phases) {
        return None;
    }
    let mut next = record.clone();
    next.codebuild.phases = phases.to_vec();
    next.codebuild.current_phase = phases
        .iter()
        .rev()
        .find(|p| p.ended_at.is_none())
        .or(phases.last())
        .map(|p| p.name.clone());
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::status::BuildStatus;

    fn parked(at: &str) -> ParkedTask {
        ParkedTask {
            token: "secret-token".into(),
            parked_at: t(at),
            build_id: plan().build_id,
            codebuild_build_id: running().codebuild_build_id.unwrap(),
            deadline: running().deadline,
        }
    }

    #[test]
    fn a_later_wait_replaces_an_earlier_one_never_the_reverse() {
        let early = parked("2026-11-28T10:00:10Z");
        let late = parked("2026-11-28T10:10:10Z");
        assert!(replaces(&early, &late));
        assert!(replaces(&late, &late), "a retry of the same wait");
        assert!(!replaces(&late, &early));
    }

    #[test]
    fn the_token_never_shows_in_the_display_form() {
        assert!(!parked("2026-11-28T10:00:10Z")
            .to_string()
            .contains("secret"));
    }

    #[test]
    fn event_build_arns_become_build_ids() {
        let arn = "arn:aws:codebuild:us-east-1:123456789012:build/agentbuild:8745a7a9-c340";
        assert_eq!(codebuild_id(arn), Some("agentbuild:8745a7a9-c340"));
        assert_eq!(codebuild_id("agentbuild:1"), Some("agentbuild:1"));
        for bad in [
            "",
            "agentbuild",
            "arn:aws:codebuild:x:y:project/p",
            ":1",
            "p:",
            "x:build/p:1",
            "p:1:2",
        ] {
            assert_eq!(codebuild_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_well_formed_build_ids_name_records() {
        assert_eq!(our_build_id(Some("api-0f1e")), Some("api-0f1e"));
        for bad in [
            None,
            Some(""),
            Some("../x"),
            Some("a/b"),
            Some(&"x".repeat(81)[..]),
        ] {
            assert_eq!(our_build_id(bad), None, "{bad:?}");
        }
    }

    fn phase(name: &str, ended: bool) -> Phase {
        Phase {
            name: name.into(),
            status: ended.then(|| "SUCCEEDED".into()),
            started_at: Some(t("2026-11-28T10:00:05Z")),
            ended_at: ended.then(|| t("2026-11-28T10:00:06Z")),
            duration_seconds: ended.then_some(1),
        }
    }

    fn live() -> BuildRecord {
        BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:00:05Z"))
    }

    #[test]
    fn a_phase_change_moves_the_live_record_forward_only() {
        let two = [phase("SUBMITTED", true), phase("QUEUED", false)];
        let rec = phase_progress(&live(), "agentbuild:1", &two).expect("forward");
        assert_eq!(rec.codebuild.current_phase.as_deref(), Some("QUEUED"));
        assert_eq!(rec.codebuild.phases.len(), 2);
        let three = [
            phase("SUBMITTED", true),
            phase("QUEUED", true),
            phase("PROVISIONING", false),
        ];
        let later = phase_progress(&rec, "agentbuild:1", &three).expect("forward");
        // A late or repeated event changes nothing.
        assert_eq!(phase_progress(&later, "agentbuild:1", &two), None);
        assert_eq!(phase_progress(&later, "agentbuild:1", &three), None);
    }

    #[test]
    fn a_phase_change_never_touches_a_final_record_or_another_build() {
        let two = [phase("SUBMITTED", true), phase("QUEUED", false)];
        assert_eq!(phase_progress(&live(), "agentbuild:2", &two), None);
        let mut done = live();
        done.status = BuildStatus::Succeeded;
        assert_eq!(phase_progress(&done, "agentbuild:1", &two), None);
    }
}
