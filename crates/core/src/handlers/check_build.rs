//! CheckBuild: `{plan, build}` -> `{plan, build}` with CodeBuild's status, phases and the next
//! wait; stops the build once it passes its deadline.

use super::{aws_config, s3_client, Clock};
use crate::adapters::codebuild::CodeBuild;
use crate::adapters::s3::S3Store;
use crate::config::{CheckBuildConfig, ProcessEnv};
use crate::domain::observe::{observe, Observed};
use crate::domain::record::BuildRecord;
use crate::model::{BuildOutput, CheckInput};
use crate::ports::{BuildService, ObjectStore};
use crate::services::records;
use crate::Error;
use chrono::Utc;

pub struct Deps<S, B> {
    pub store: S,
    pub builds: B,
    pub config: CheckBuildConfig,
    pub now: Clock,
}

impl Deps<S3Store, CodeBuild> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = CheckBuildConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            store: S3Store::new(s3_client(&sdk), config.bucket.clone()),
            // The project is not needed to look at or stop a build: its id names it.
            builds: CodeBuild::new(aws_sdk_codebuild::Client::new(&sdk), ""),
            config,
            now: Utc::now,
        })
    }
}

pub async fn handle<S: ObjectStore, B: BuildService>(
    deps: &Deps<S, B>,
    input: CheckInput,
) -> Result<BuildOutput, Error> {
    let CheckInput { plan, build } = input;
    let id = build
        .codebuild_build_id
        .clone()
        .ok_or_else(|| Error::InvalidState("CheckBuild needs build.codebuildBuildId".into()))?;
    let info = deps
        .builds
        .get(&id)
        .await?
        .ok_or_else(|| Error::BuildNotFound(id.clone()))?;
    let now = (deps.now)();
    let Observed { build, stop } = observe(build, &info, now, &deps.config.poll);
    if stop {
        deps.builds.stop(&id).await?;
        tracing::warn!(build_id = %plan.build_id, codebuild_id = %id, "deadline passed; build stopped");
    }
    let status = build.status;
    if !status.is_final() {
        // Live progress for status queries, best effort: the final record is RecordResult's,
        // and a failed progress write must not turn a healthy build into ERROR. Never over a
        // final record (a late CheckBuild after a cancel or the closer).
        let record = BuildRecord::new(&plan, Some(&build), None, now);
        if let Err(e) = records::write(&deps.store, &record).await {
            tracing::warn!(build_id = %plan.build_id, error = %e, progress_write_failed = 1, "live progress not written");
        }
    }
    tracing::info!(
        build_id = %plan.build_id,
        codebuild_id = %id,
        status = %status,
        phase = build.current_phase.as_deref().unwrap_or("-"),
        wait = build.wait_seconds,
        "build checked"
    );
    Ok(BuildOutput { plan, build })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::poll::PollPolicy;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::record::{FailedPhase, Phase};
    use crate::domain::status::{BuildStatus, CodeBuildStatus};
    use crate::handlers::fakes::{FakeBuilds, FakeStore};
    use crate::ports::BuildInfo;
    use std::collections::BTreeMap;

    fn deps(now: Clock) -> Deps<FakeStore, FakeBuilds> {
        Deps {
            store: FakeStore::default(),
            builds: FakeBuilds::default(),
            config: CheckBuildConfig {
                bucket: "own".into(),
                poll: PollPolicy::new(10, 300),
            },
            now,
        }
    }

    fn at_10_02() -> chrono::DateTime<Utc> {
        "2026-11-28T10:02:00Z".parse().unwrap()
    }

    fn info(status: CodeBuildStatus, complete: bool) -> BuildInfo {
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
                started_at: Some(t("2026-11-28T10:00:20Z")),
                ended_at: None,
                duration_seconds: None,
            }],
            failed_phase: None,
            log_url: Some("https://logs".into()),
            exported: BTreeMap::new(),
        }
    }

    async fn check(d: &Deps<FakeStore, FakeBuilds>, i: BuildInfo) -> Result<BuildOutput, Error> {
        d.builds
            .builds
            .borrow_mut()
            .insert("agentbuild:1".into(), i);
        handle(
            d,
            CheckInput {
                plan: plan(),
                build: running(),
            },
        )
        .await
    }

    #[tokio::test]
    async fn maps_every_final_status() {
        use CodeBuildStatus as C;
        for (cb, ours) in [
            (C::Succeeded, BuildStatus::Succeeded),
            (C::Failed, BuildStatus::Failed),
            (C::Fault, BuildStatus::Fault),
            (C::Stopped, BuildStatus::Stopped),
            (C::TimedOut, BuildStatus::TimedOut),
        ] {
            let d = deps(at_10_02);
            let out = check(&d, info(cb, true)).await.unwrap();
            assert_eq!(out.build.status, ours);
            assert_eq!(out.build.finished_at, Some(t("2026-11-28T10:01:30Z")));
            assert_eq!(out.build.polls, 1);
            // The final record is RecordResult's to write.
            assert!(d.store.puts.borrow().is_empty());
        }
    }

    #[tokio::test]
    async fn running_build_gets_a_phase_aware_wait_and_a_progress_record() {
        let d = deps(at_10_02);
        let out = check(&d, info(CodeBuildStatus::InProgress, false))
            .await
            .unwrap();
        assert_eq!(out.build.status, BuildStatus::Running);
        // 100 s in BUILD -> 20 s.
        assert_eq!(out.build.wait_seconds, 20);
        let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        assert_eq!(rec.status, BuildStatus::Running);
        assert_eq!(rec.codebuild.current_phase.as_deref(), Some("BUILD"));
        assert_eq!(rec.codebuild.log_url.as_deref(), Some("https://logs"));
    }

    #[tokio::test]
    async fn an_unknown_status_is_polled_while_incomplete_then_an_error() {
        let d = deps(at_10_02);
        let out = check(&d, info(CodeBuildStatus::Unknown("PAUSED".into()), false))
            .await
            .unwrap();
        assert_eq!(out.build.status, BuildStatus::Running);
        let out = check(&d, info(CodeBuildStatus::Unknown("PAUSED".into()), true))
            .await
            .unwrap();
        assert_eq!(out.build.status, BuildStatus::Error);
        assert_eq!(out.build.error.unwrap().kind, "UnknownBuildStatus");
    }

    #[tokio::test]
    async fn past_the_deadline_the_build_is_stopped_and_timed_out() {
        let d = deps(|| "2026-11-28T12:00:00Z".parse().unwrap());
        let out = check(&d, info(CodeBuildStatus::InProgress, false))
            .await
            .unwrap();
        assert_eq!(out.build.status, BuildStatus::TimedOut);
        assert_eq!(*d.builds.stopped.borrow(), ["agentbuild:1"]);
        assert_eq!(out.build.error.unwrap().kind, "DeadlineExceeded");
        assert_eq!(out.build.finished_at, Some(t("2026-11-28T12:00:00Z")));
    }

    #[tokio::test]
    async fn reports_the_failed_phase_and_exported_image() {
        let d = deps(at_10_02);
        let mut i = info(CodeBuildStatus::Failed, true);
        i.failed_phase = Some(FailedPhase {
            name: "BUILD".into(),
            status: "FAILED".into(),
            code: Some("COMMAND_EXECUTION_ERROR".into()),
            message: Some("exit status 1".into()),
        });
        let out = check(&d, i).await.unwrap();
        assert_eq!(
            out.build.failed_phase.unwrap().code.as_deref(),
            Some("COMMAND_EXECUTION_ERROR")
        );

        let mut i = info(CodeBuildStatus::Succeeded, true);
        i.exported.insert("IMAGE_DIGEST".into(), "sha256:ab".into());
        i.exported
            .insert("IMAGE_URI".into(), "repo@sha256:ab".into());
        let out = check(&d, i).await.unwrap();
        assert_eq!(out.build.image_digest.as_deref(), Some("sha256:ab"));
        assert_eq!(out.build.image_uri.as_deref(), Some("repo@sha256:ab"));
    }

    #[tokio::test]
    async fn an_unknown_build_id_is_build_not_found() {
        let d = deps(at_10_02);
        let err = handle(
            &d,
            CheckInput {
                plan: plan(),
                build: running(),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.name(), "BuildNotFound");
    }

    #[tokio::test]
    async fn without_a_build_id_the_state_is_invalid() {
        let d = deps(at_10_02);
        let mut b = running();
        b.codebuild_build_id = None;
        let err = handle(
            &d,
            CheckInput {
                plan: plan(),
                build: b,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.name(), "InvalidState");
    }

    /// Every scenario above, against one recorder of the SDK operations the fakes stand for.
    #[test]
    fn calls_exactly_the_sdk_operations_the_catalog_lists() {
        let called = crate::handlers::fakes::operations_of(
            include_str!("check_build.rs"),
            crate::handlers::fakes::scenarios![
                maps_every_final_status,
                running_build_gets_a_phase_aware_wait_and_a_progress_record,
                an_unknown_status_is_polled_while_incomplete_then_an_error,
                past_the_deadline_the_build_is_stopped_and_timed_out,
                reports_the_failed_phase_and_exported_image,
                an_unknown_build_id_is_build_not_found,
                without_a_build_id_the_state_is_invalid,
            ],
        );
        crate::handlers::fakes::assert_operations_are_listed("check-build", &called);
    }
}
