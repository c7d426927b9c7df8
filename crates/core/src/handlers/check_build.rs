//! CheckBuild (the fallback, when a callback wait timed out or named another build): `{plan,
//! codebuildBuildId, build}` -> `{build}` with CodeBuild's status, phases and the next wait's timeout; stops the build once it passes
//! its deadline. The same rule AwaitBuild and the event handler complete waits with.

use super::{aws_config, s3_client, Clock};
use crate::adapters::codebuild::CodeBuild;
use crate::adapters::s3::S3Store;
use crate::config::{BuildWaitConfig, ProcessEnv};
use crate::model::{BuildOutput, CheckInput};
use crate::ports::{BuildService, ObjectStore};
use crate::services::build_wait;
use crate::Error;
use chrono::Utc;

pub struct Deps<S, B> {
    pub store: S,
    pub builds: B,
    pub config: BuildWaitConfig,
    pub now: Clock,
}

impl Deps<S3Store, CodeBuild> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = BuildWaitConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            store: S3Store::new(s3_client(&sdk), config.bucket.clone()),
            // The project is not needed to look at or stop a build: its id names it.
            builds: CodeBuild::new(aws_sdk_codebuild::Client::new(&sdk)),
            config,
            now: Utc::now,
        })
    }
}

pub async fn handle<S: ObjectStore, B: BuildService>(
    deps: &Deps<S, B>,
    input: CheckInput,
) -> Result<BuildOutput, Error> {
    build_wait::check(
        &deps.store,
        &deps.builds,
        &deps.config.fallback,
        (deps.now)(),
        input,
    )
    .await
}

super::lambda_main!();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fallback::Fallback;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::record::BuildRecord;
    use crate::domain::record::{FailedPhase, Phase};
    use crate::domain::status::{BuildStatus, CodeBuildStatus};
    use crate::ports::BuildInfo;
    use crate::testing::fakes::{FakeBuilds, FakeStore};
    use std::collections::BTreeMap;

    fn deps(now: Clock) -> Deps<FakeStore, FakeBuilds> {
        Deps {
            store: FakeStore::default(),
            builds: FakeBuilds::default(),
            config: BuildWaitConfig {
                bucket: "own".into(),
                fallback: Fallback::new(600),
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
            logs: None,
            exported: BTreeMap::new(),
            project: Some("agentbuild".into()),
            agentbuild_build_id: Some("b-1".into()),
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
                codebuild_build_id: "agentbuild:1".into(),
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
    async fn running_build_waits_again_and_gets_a_progress_record() {
        let d = deps(at_10_02);
        let out = check(&d, info(CodeBuildStatus::InProgress, false))
            .await
            .unwrap();
        assert_eq!(out.build.status, BuildStatus::Running);
        // The deadline (11:35:05) is far: the callback timeout.
        assert_eq!(out.build.await_seconds, 600);
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
                codebuild_build_id: "agentbuild:1".into(),
                build: running(),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.name(), "BuildNotFound");
    }

    #[tokio::test]
    async fn looks_at_the_build_the_execution_started_not_the_one_the_state_names() {
        let d = deps(at_10_02);
        d.builds
            .builds
            .borrow_mut()
            .insert("agentbuild:1".into(), info(CodeBuildStatus::Failed, true));
        let mut forged = running();
        forged.codebuild_build_id = Some("agentbuild:other".into());
        forged.status = BuildStatus::Succeeded;
        let input = CheckInput {
            plan: plan(),
            codebuild_build_id: "agentbuild:1".into(),
            build: forged,
        };
        let out = handle(&d, input).await.unwrap();
        assert_eq!(out.build.status, BuildStatus::Failed);
        assert_eq!(
            out.build.codebuild_build_id.as_deref(),
            Some("agentbuild:1")
        );
    }

    /// Every scenario above, against one recorder of the SDK operations the fakes stand for.
    #[test]
    fn calls_exactly_the_sdk_operations_the_catalog_lists() {
        let called = crate::testing::fakes::operations_of(
            include_str!("check_build.rs"),
            crate::testing::fakes::scenarios![
                maps_every_final_status,
                running_build_waits_again_and_gets_a_progress_record,
                an_unknown_status_is_polled_while_incomplete_then_an_error,
                past_the_deadline_the_build_is_stopped_and_timed_out,
                reports_the_failed_phase_and_exported_image,
                an_unknown_build_id_is_build_not_found,
                looks_at_the_build_the_execution_started_not_the_one_the_state_names,
            ],
        );
        crate::testing::fakes::assert_operations_are_listed("check-build", &called);
    }
}
