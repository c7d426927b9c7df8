//! build-events (the EventBridge rule on this project's CodeBuild events): "CodeBuild Build
//! State Change" to a final status -> one BatchGetBuilds (the authoritative view, exported
//! variables included), the parked wait of the execution the build was started for (its
//! `AGENTBUILD_BUILD_ID`), SendTaskSuccess with the build's observed state (nothing else). "CodeBuild Build Phase
//! Change" -> the live record learns the phases (forward only, best effort): no state runs.
//! Duplicate, late and foreign events change nothing.

use super::{aws_config, s3_client, Clock};
use crate::adapters::codebuild::CodeBuild;
use crate::adapters::s3::S3Store;
use crate::adapters::sfn::Callbacks;
use crate::config::{BuildEventsConfig, ProcessEnv};
use crate::domain::callback::{codebuild_id, our_build_id};
use crate::domain::observe::{observe, Observed};
use crate::domain::record::{BuildState, Phase};
use crate::model::{BuildOutput, EventOutcome};
use crate::ports::{BuildService, Delivery, ObjectStore, TaskTokens};
use crate::services::build_wait;
use crate::Error;
use aws_lambda_events::codebuild::{CodeBuildEvent, CodeBuildEventDetail, CodeBuildPhase};
use chrono::Utc;

/// The detail types CodeBuild gives its events (and the rule's pattern lists).
pub const STATE_CHANGE: &str = "CodeBuild Build State Change";
pub const PHASE_CHANGE: &str = "CodeBuild Build Phase Change";

pub struct Deps<S, B, T> {
    pub store: S,
    pub builds: B,
    pub tokens: T,
    pub config: BuildEventsConfig,
    pub now: Clock,
}

impl Deps<S3Store, CodeBuild, Callbacks> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = BuildEventsConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            store: S3Store::new(s3_client(&sdk), config.check.bucket.clone()),
            builds: CodeBuild::new(aws_sdk_codebuild::Client::new(&sdk)),
            tokens: Callbacks::new(aws_sdk_sfn::Client::new(&sdk)),
            config,
            now: Utc::now,
        })
    }
}

/// Errors only where a retry can help (EventBridge invokes asynchronously: Lambda tries twice
/// more): AWS failing transiently, or CodeBuild's own view not final yet.
pub async fn handle<S: ObjectStore, B: BuildService, T: TaskTokens>(
    deps: &Deps<S, B, T>,
    event: CodeBuildEvent,
) -> Result<EventOutcome, Error> {
    let detail = &event.detail;
    let id = detail.build_id.as_deref().and_then(codebuild_id);
    let ours = deps.config.is_ours(detail.project_name.as_deref());
    let (Some(id), true) = (id, ours) else {
        tracing::info!(
            project = detail.project_name.as_deref().unwrap_or("-"),
            foreign_event = 1,
            "not a build of this stack's project; ignored"
        );
        return Ok(EventOutcome::Ignored);
    };
    let outcome = match (event.detail_type.as_deref(), detail.build_status.as_deref()) {
        (Some(STATE_CHANGE), Some(status)) if status != "IN_PROGRESS" => ended(deps, id).await?,
        (Some(PHASE_CHANGE), _) => phase_changed(deps, id, detail).await,
        _ => EventOutcome::Ignored,
    };
    tracing::info!(codebuild_id = id, detail_type = event.detail_type.as_deref().unwrap_or("-"), outcome = ?outcome, "event handled");
    Ok(outcome)
}

super::lambda_main!();

async fn ended<S: ObjectStore, B: BuildService, T: TaskTokens>(
    deps: &Deps<S, B, T>,
    id: &str,
) -> Result<EventOutcome, Error> {
    let info = match build_wait::look(&deps.builds, id).await {
        Ok(info) => info,
        Err(Error::BuildNotFound(_)) => return Ok(EventOutcome::Ignored),
        Err(e) => return Err(e),
    };
    // The authoritative view decides whose build this is, not the event's text.
    if !deps.config.is_ours(info.project.as_deref()) {
        return Ok(EventOutcome::Ignored);
    }
    let Some(build_id) = our_build_id(info.agentbuild_build_id.as_deref()) else {
        return Ok(EventOutcome::Ignored);
    };
    let Some(task) = build_wait::parked(&deps.store, build_id).await? else {
        // AwaitBuild parks first and looks after: it will find the build ended.
        tracing::info!(build_id, "no wait parked (yet)");
        return Ok(EventOutcome::NoWaiter);
    };
    if task.codebuild_build_id != info.id {
        return Ok(EventOutcome::Ignored);
    }
    let now = (deps.now)();
    // Only an ended build completes a wait: what it was before does not change how it ended.
    let mut seen = BuildState::starting(now);
    seen.deadline = task.deadline;
    seen.codebuild_build_id = Some(info.id.clone());
    let Observed { build, stop } = observe(seen, &info, now, &deps.config.check.fallback);
    if stop {
        deps.builds.stop(&info.id).await?;
        tracing::warn!(build_id, codebuild_id = %info.id, "deadline passed; build stopped");
    }
    if !build.status.is_final() {
        return Err(Error::TransientAws(format!(
            "CodeBuild announced the end of {id}, but BatchGetBuilds still reports it running"
        )));
    }
    let out = BuildOutput { build };
    Ok(
        match build_wait::complete(&deps.tokens, &task, &out).await? {
            Delivery::Accepted => EventOutcome::Completed,
            Delivery::Closed(_) => EventOutcome::AlreadyClosed,
        },
    )
}

async fn phase_changed<S: ObjectStore, B, T>(
    deps: &Deps<S, B, T>,
    id: &str,
    detail: &CodeBuildEventDetail,
) -> EventOutcome {
    let info = &detail.additional_information;
    let build_id = info
        .environment
        .environment_variables
        .iter()
        .find(|v| v.name.as_deref() == Some("AGENTBUILD_BUILD_ID"))
        .and_then(|v| v.value.as_deref());
    let Some(build_id) = our_build_id(build_id) else {
        return EventOutcome::Ignored;
    };
    let phases: Vec<Phase> = info.phases.iter().map(phase).collect();
    match build_wait::progress(&deps.store, build_id, id, &phases).await {
        Ok(true) => EventOutcome::Progress,
        Ok(false) => EventOutcome::Ignored,
        Err(e) => {
            tracing::warn!(build_id, error = %e, progress_write_failed = 1, "live phases not written");
            EventOutcome::Ignored
        }
    }
}

fn phase(p: &CodeBuildPhase) -> Phase {
    Phase {
        name: p.phase_type.clone(),
        status: p.phase_status.clone(),
        started_at: Some(p.start_time),
        ended_at: p.end_time,
        duration_seconds: p.duration.as_ref().map(|d| d.num_seconds()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BuildWaitConfig;
    use crate::domain::callback::{callback_key, ParkedTask};
    use crate::domain::fallback::Fallback;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::record::BuildRecord;
    use crate::domain::status::{BuildStatus, CodeBuildStatus};
    use crate::testing::fakes::{info, FakeBuilds, FakeStore, FakeTokens};

    const SAMPLE_ID: &str = "agentbuild:8745a7a9-c340-456a-9166-edf953571b00";
    const SAMPLE_BUILD: &str = "api-5f0c8e2a9b7d4c1e3f5a6b7c8d9e0f1a2b3c4d5e";

    fn sample(name: &str) -> CodeBuildEvent {
        let path = format!(
            "{}/../../events/build-events/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn deps() -> Deps<FakeStore, FakeBuilds, FakeTokens> {
        Deps {
            store: FakeStore::default(),
            builds: FakeBuilds::default(),
            tokens: FakeTokens::default(),
            config: BuildEventsConfig {
                check: BuildWaitConfig {
                    bucket: "own".into(),
                    fallback: Fallback::new(600),
                },
                project: "agentbuild".into(),
                layer_project: "agentbuild-code".into(),
            },
            now: || "2026-11-28T10:02:00Z".parse().unwrap(),
        }
    }

    fn our_plan() -> crate::domain::plan::BuildPlan {
        let mut p = plan();
        p.build_id = SAMPLE_BUILD.into();
        p
    }

    fn our_build() -> crate::domain::record::BuildState {
        let mut b = running();
        b.codebuild_build_id = Some(SAMPLE_ID.into());
        b
    }

    /// CodeBuild knows the sample's build with `status`, and (with `parked`) AwaitBuild has
    /// parked its wait.
    fn arrange(d: &Deps<FakeStore, FakeBuilds, FakeTokens>, status: CodeBuildStatus, parked: bool) {
        let mut i = info(status.clone(), status != CodeBuildStatus::InProgress);
        i.id = SAMPLE_ID.into();
        i.agentbuild_build_id = Some(SAMPLE_BUILD.into());
        d.builds.insert(i);
        if parked {
            let task = ParkedTask {
                token: "tok-7".into(),
                parked_at: t("2026-11-28T10:00:10Z"),
                build_id: SAMPLE_BUILD.into(),
                codebuild_build_id: SAMPLE_ID.into(),
                deadline: our_build().deadline,
            };
            d.store.seed(
                &callback_key(SAMPLE_BUILD),
                serde_json::to_vec(&task).unwrap(),
            );
        }
    }

    #[tokio::test]
    async fn an_ended_build_completes_its_parked_wait_with_its_observed_state() {
        let d = deps();
        arrange(&d, CodeBuildStatus::Succeeded, true);
        let out = handle(&d, sample("state-change-succeeded")).await.unwrap();
        assert_eq!(out, EventOutcome::Completed);
        let sent = d.tokens.sent.borrow().clone();
        assert_eq!(sent[0].0, "tok-7");
        // The build's observed state, and nothing else (no plan).
        let keys: Vec<String> =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&sent[0].1)
                .unwrap()
                .keys()
                .cloned()
                .collect();
        assert_eq!(keys, ["build"]);
        let sent: BuildOutput = serde_json::from_str(&sent[0].1).unwrap();
        assert_eq!(sent.build.status, BuildStatus::Succeeded);
        assert_eq!(sent.build.codebuild_build_id.as_deref(), Some(SAMPLE_ID));
        assert_eq!(sent.build.image_digest.as_deref(), Some("sha256:ab"));
    }

    #[tokio::test]
    async fn an_event_before_the_park_finds_no_waiter_and_sends_nothing() {
        let d = deps();
        arrange(&d, CodeBuildStatus::Failed, false);
        let out = handle(&d, sample("state-change-failed")).await.unwrap();
        assert_eq!(out, EventOutcome::NoWaiter);
        assert!(d.tokens.sent.borrow().is_empty());
    }

    #[tokio::test]
    async fn duplicate_and_late_events_are_harmless() {
        let d = deps();
        arrange(&d, CodeBuildStatus::Succeeded, true);
        d.tokens
            .answer_next(Ok(Delivery::Closed("TaskTimedOut".into())));
        let out = handle(&d, sample("state-change-succeeded")).await.unwrap();
        assert_eq!(out, EventOutcome::AlreadyClosed);
        d.tokens
            .answer_next(Ok(Delivery::Closed("InvalidToken".into())));
        let out = handle(&d, sample("state-change-succeeded")).await.unwrap();
        assert_eq!(out, EventOutcome::AlreadyClosed);
    }

    #[tokio::test]
    async fn foreign_events_are_ignored() {
        let d = deps();
        arrange(&d, CodeBuildStatus::Succeeded, true);
        // Another project's build: not even looked up.
        let out = handle(&d, sample("state-change-foreign-project"))
            .await
            .unwrap();
        assert_eq!(out, EventOutcome::Ignored);
        // CodeBuild says the build is another project's, or knows no execution of ours.
        let mut i = info(CodeBuildStatus::Succeeded, true);
        i.id = SAMPLE_ID.into();
        i.project = Some("other-team".into());
        d.builds.insert(i.clone());
        assert_eq!(
            handle(&d, sample("state-change-succeeded")).await.unwrap(),
            EventOutcome::Ignored
        );
        i.project = Some("agentbuild".into());
        i.agentbuild_build_id = Some("../../agents/x".into());
        d.builds.insert(i);
        assert_eq!(
            handle(&d, sample("state-change-succeeded")).await.unwrap(),
            EventOutcome::Ignored
        );
        // A build CodeBuild does not know.
        d.builds.builds.borrow_mut().clear();
        assert_eq!(
            handle(&d, sample("state-change-succeeded")).await.unwrap(),
            EventOutcome::Ignored
        );
        assert!(d.tokens.sent.borrow().is_empty());
    }

    #[tokio::test]
    async fn an_end_codebuild_does_not_confirm_yet_is_retried() {
        let d = deps();
        arrange(&d, CodeBuildStatus::InProgress, true);
        let err = handle(&d, sample("state-change-succeeded"))
            .await
            .unwrap_err();
        assert_eq!(err.name(), "TransientAwsError");
        assert!(d.tokens.sent.borrow().is_empty());
        // A failed completion is retried too.
        arrange(&d, CodeBuildStatus::Succeeded, true);
        d.tokens
            .answer_next(Err(Error::TransientAws("SFN.SendTaskSuccess: 503".into())));
        let err = handle(&d, sample("state-change-succeeded"))
            .await
            .unwrap_err();
        assert_eq!(err.name(), "TransientAwsError");
    }

    #[tokio::test]
    async fn a_phase_change_moves_the_live_record_forward_without_a_look() {
        let d = deps();
        let live = BuildRecord::new(
            &our_plan(),
            Some(&our_build()),
            None,
            t("2026-11-28T10:00:05Z"),
        );
        d.store
            .seed(&format!("builds/{SAMPLE_BUILD}.json"), live.to_json());
        let out = handle(&d, sample("phase-change")).await.unwrap();
        assert_eq!(out, EventOutcome::Progress);
        let rec: BuildRecord = d
            .store
            .own_json(&format!("builds/{SAMPLE_BUILD}.json"))
            .unwrap();
        assert_eq!(rec.codebuild.current_phase.as_deref(), Some("BUILD"));
        assert_eq!(rec.codebuild.phases.len(), 7);
        assert_eq!(rec.status, BuildStatus::Running);
        // The same event again changes nothing; no record: nothing to do.
        assert_eq!(
            handle(&d, sample("phase-change")).await.unwrap(),
            EventOutcome::Ignored
        );
        let d = deps();
        assert_eq!(
            handle(&d, sample("phase-change")).await.unwrap(),
            EventOutcome::Ignored
        );
        assert!(d
            .store
            .own(&format!("builds/{SAMPLE_BUILD}.json"))
            .is_none());
    }

    /// Every scenario above, against one recorder of the SDK operations the fakes stand for.
    #[test]
    fn calls_exactly_the_sdk_operations_the_catalog_lists() {
        let called = crate::testing::fakes::operations_of(
            include_str!("build_events.rs"),
            crate::testing::fakes::scenarios![
                an_ended_build_completes_its_parked_wait_with_its_observed_state,
                an_event_before_the_park_finds_no_waiter_and_sends_nothing,
                duplicate_and_late_events_are_harmless,
                foreign_events_are_ignored,
                an_end_codebuild_does_not_confirm_yet_is_retried,
                a_phase_change_moves_the_live_record_forward_without_a_look,
                a_build_past_its_deadline_is_stopped_and_completed_timed_out,
            ],
        );
        crate::testing::fakes::assert_operations_are_listed("build-events", &called);
    }

    #[tokio::test]
    async fn a_build_past_its_deadline_is_stopped_and_completed_timed_out() {
        // The end event of a build CodeBuild still reports running past our deadline: the
        // look stops it (as CheckBuild would) and the wait ends TIMED_OUT.
        let mut d = deps();
        d.now = || "2026-11-28T12:00:00Z".parse().unwrap();
        arrange(&d, CodeBuildStatus::InProgress, true);
        let out = handle(&d, sample("state-change-succeeded")).await.unwrap();
        assert_eq!(out, EventOutcome::Completed);
        assert_eq!(*d.builds.stopped.borrow(), [SAMPLE_ID]);
    }
}
