//! Observe a build: what one look at CodeBuild means for the build as the state machine carries
//! it — its status (with the deadline), phases, image, and how long to wait for its completion
//! event before the next look. CheckBuild, AwaitBuild and the event handler all apply this one
//! rule, so every path to RecordResult carries the same build.

use super::fallback::Fallback;
use super::record::{BuildState, ErrorInfo, FailedPhase, LogLocation, Phase};
use super::status::{map_codebuild, BuildStatus, CodeBuildStatus, Mapped};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// What CodeBuild says of a build (BatchGetBuilds), free of SDK types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub id: String,
    pub status: CodeBuildStatus,
    pub build_complete: bool,
    pub current_phase: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub phases: Vec<Phase>,
    pub failed_phase: Option<FailedPhase>,
    pub log_url: Option<String>,
    pub logs: Option<LogLocation>,
    pub exported: BTreeMap<String, String>,
    /// The CodeBuild project the build belongs to.
    pub project: Option<String>,
    /// Its `AGENTBUILD_BUILD_ID` environment variable (StartBuild sets it): the execution it
    /// was started for.
    pub agentbuild_build_id: Option<String>,
}

/// The build after one look, and whether it must be stopped now (its deadline passed while it
/// still ran: it is then `TIMED_OUT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub build: BuildState,
    pub stop: bool,
}

pub fn observe(
    mut build: BuildState,
    info: &BuildInfo,
    now: DateTime<Utc>,
    fallback: &Fallback,
) -> Observed {
    build.polls += 1;
    build.current_phase = info.current_phase.clone();
    build.phases = info.phases.clone();
    build.failed_phase = info.failed_phase.clone();
    build.log_url = info.log_url.clone().or(build.log_url);
    build.logs = info.logs.clone().or(build.logs);
    build.image_digest = info.exported.get("IMAGE_DIGEST").cloned();
    build.image_uri = info.exported.get("IMAGE_URI").cloned();
    build.attestations_uri = info
        .exported
        .get("ATTESTATIONS_URI")
        .filter(|u| u.starts_with("s3://"))
        .cloned();
    if let Some(started) = info.start_time {
        build.started_at = started;
    }

    let mut status = match map_codebuild(&info.status, info.build_complete) {
        Mapped::Status(s) => s,
        Mapped::Unrecognized(s) => {
            build.error = Some(ErrorInfo::new(
                "UnknownBuildStatus",
                format!("CodeBuild reported status {s}, which this version does not know"),
            ));
            BuildStatus::Error
        }
    };
    let stop = status == BuildStatus::Running && now >= build.deadline;
    if stop {
        status = BuildStatus::TimedOut;
        build.error = Some(ErrorInfo::new(
            "DeadlineExceeded",
            format!(
                "the build was still in {} at its deadline {}; it was stopped",
                build.current_phase.as_deref().unwrap_or("an unknown phase"),
                build.deadline.to_rfc3339()
            ),
        ));
        build.finished_at = Some(now);
    }
    build.status = status;

    if status.is_final() {
        build.finished_at = build.finished_at.or(info.end_time).or(Some(now));
        build.await_seconds = 0;
    } else {
        let to_deadline = (build.deadline - now).num_seconds().max(0) as u64;
        build.await_seconds = fallback.await_seconds(to_deadline);
    }
    Observed { build, stop }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::tests::{running, t};

    fn info(status: CodeBuildStatus, complete: bool, phase_started: &str) -> BuildInfo {
        BuildInfo {
            id: "agentbuild:1".into(),
            status,
            build_complete: complete,
            current_phase: Some("BUILD".into()),
            start_time: Some(t("2026-11-28T10:00:05Z")),
            end_time: complete.then(|| t("2026-11-28T10:01:30Z")),
            phases: vec![Phase {
                name: "BUILD".into(),
                status: None,
                started_at: Some(t(phase_started)),
                ended_at: None,
                duration_seconds: None,
            }],
            failed_phase: None,
            log_url: Some("https://logs".into()),
            logs: None,
            exported: BTreeMap::from([("IMAGE_DIGEST".into(), "sha256:ab".into())]),
            project: Some("agentbuild".into()),
            agentbuild_build_id: Some("b-1".into()),
        }
    }

    fn poll() -> Fallback {
        Fallback::new(600)
    }

    #[test]
    fn a_running_build_waits_for_its_event_up_to_the_callback_timeout() {
        let i = info(CodeBuildStatus::InProgress, false, "2026-11-28T10:00:00Z");
        let o = observe(running(), &i, t("2026-11-28T10:10:00Z"), &poll());
        assert!(!o.stop);
        assert_eq!(o.build.status, BuildStatus::Running);
        assert_eq!(o.build.await_seconds, 600);
        assert_eq!(o.build.polls, 1);
        // Close to the deadline (11:35:05 in `running()`): wake up right after it.
        let o = observe(running(), &i, t("2026-11-28T11:34:05Z"), &poll());
        assert_eq!(o.build.await_seconds, 61);
    }

    #[test]
    fn a_finished_build_keeps_codebuilds_end_and_image() {
        let i = info(CodeBuildStatus::Succeeded, true, "2026-11-28T10:00:20Z");
        let o = observe(running(), &i, t("2026-11-28T10:02:00Z"), &poll());
        assert_eq!(o.build.status, BuildStatus::Succeeded);
        assert_eq!(o.build.finished_at, Some(t("2026-11-28T10:01:30Z")));
        assert_eq!(o.build.image_digest.as_deref(), Some("sha256:ab"));
        assert_eq!(o.build.await_seconds, 0);
    }

    #[test]
    fn a_build_running_past_its_deadline_must_be_stopped_and_times_out() {
        let i = info(CodeBuildStatus::InProgress, false, "2026-11-28T10:00:20Z");
        let o = observe(running(), &i, t("2026-11-28T11:35:05Z"), &poll());
        assert!(o.stop);
        assert_eq!(o.build.status, BuildStatus::TimedOut);
        assert_eq!(o.build.error.unwrap().kind, "DeadlineExceeded");
    }

    #[test]
    fn an_unknown_codebuild_status_is_an_error_not_a_guess() {
        let i = info(
            CodeBuildStatus::Unknown("PAUSED".into()),
            true,
            "2026-11-28T10:00:20Z",
        );
        let o = observe(running(), &i, t("2026-11-28T10:02:00Z"), &poll());
        assert_eq!(o.build.status, BuildStatus::Error);
        assert_eq!(o.build.error.unwrap().kind, "UnknownBuildStatus");
    }
}
