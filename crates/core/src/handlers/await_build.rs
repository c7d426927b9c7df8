//! AwaitBuild (`lambda:invoke.waitForTaskToken`): `{plan, codebuildBuildId, build, token,
//! parkedAt}` -> parks the token (with the execution and CodeBuild ids, nothing else) at
//! `callbacks/<buildId>.json`, THEN looks at CodeBuild once and, if the build has ended
//! already, completes its own wait with the build's observed state. Store-then-check: an event
//! that came before the token was parked found nothing to complete; this look finds its build
//! ended. After that, CodeBuild's event (build-events) or the wait's timeout (CheckBuild) ends it.

use super::{aws_config, s3_client, Clock};
use crate::adapters::codebuild::CodeBuild;
use crate::adapters::s3::S3Store;
use crate::adapters::sfn::Callbacks;
use crate::config::{BuildWaitConfig, ProcessEnv};
use crate::domain::callback::ParkedTask;
use crate::model::{AwaitInput, AwaitOutput, CheckInput};
use crate::ports::{BuildService, Delivery, ObjectStore, TaskTokens};
use crate::services::build_wait;
use crate::Error;
use chrono::Utc;

pub struct Deps<S, B, T> {
    pub store: S,
    pub builds: B,
    pub tokens: T,
    pub config: BuildWaitConfig,
    pub now: Clock,
}

impl Deps<S3Store, CodeBuild, Callbacks> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = BuildWaitConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            store: S3Store::new(s3_client(&sdk), config.bucket.clone()),
            builds: CodeBuild::new(aws_sdk_codebuild::Client::new(&sdk)),
            tokens: Callbacks::new(aws_sdk_sfn::Client::new(&sdk)),
            config,
            now: Utc::now,
        })
    }
}

/// Fails only when the token could not be parked (the state retries, then falls back to
/// waiting and looking); once it is parked, everything else is best effort — the event or the
/// timeout ends the wait.
pub async fn handle<S: ObjectStore, B: BuildService, T: TaskTokens>(
    deps: &Deps<S, B, T>,
    input: AwaitInput,
) -> Result<AwaitOutput, Error> {
    let AwaitInput {
        plan,
        codebuild_build_id,
        build,
        token,
        parked_at,
    } = input;
    let task = ParkedTask {
        token,
        parked_at,
        build_id: plan.build_id.clone(),
        codebuild_build_id: codebuild_build_id.clone(),
        deadline: build.deadline,
    };
    if !build_wait::park(&deps.store, &task).await? {
        tracing::warn!(parked = %task, "a later wait of this build is parked; this one waits for its timeout");
        return Ok(AwaitOutput {
            parked: false,
            completed: false,
        });
    }
    let look = CheckInput {
        plan,
        codebuild_build_id,
        build,
    };
    let now = (deps.now)();
    let checked =
        build_wait::check(&deps.store, &deps.builds, &deps.config.fallback, now, look).await;
    let completed = match checked {
        Ok(out) if out.build.status.is_final() => {
            match build_wait::complete(&deps.tokens, &task, &out).await {
                Ok(delivery) => delivery == Delivery::Accepted,
                Err(e) => {
                    tracing::warn!(parked = %task, error = %e, "completing the wait failed; the event or the timeout ends it");
                    false
                }
            }
        }
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(parked = %task, error = %e, "look after parking failed; the event or the timeout ends the wait");
            false
        }
    };
    tracing::info!(parked = %task, completed, "waiting for CodeBuild's event");
    Ok(AwaitOutput {
        parked: true,
        completed,
    })
}

super::lambda_main!();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BuildWaitConfig;
    use crate::domain::callback::callback_key;
    use crate::domain::fallback::Fallback;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::record::BuildRecord;
    use crate::domain::status::{BuildStatus, CodeBuildStatus};
    use crate::model::BuildOutput;
    use crate::testing::fakes::{info, FakeBuilds, FakeStore, FakeTokens};

    fn deps() -> Deps<FakeStore, FakeBuilds, FakeTokens> {
        Deps {
            store: FakeStore::default(),
            builds: FakeBuilds::default(),
            tokens: FakeTokens::default(),
            config: BuildWaitConfig {
                bucket: "own".into(),
                fallback: Fallback::new(600),
            },
            now: || "2026-11-28T10:02:00Z".parse().unwrap(),
        }
    }

    fn input(at: &str) -> AwaitInput {
        AwaitInput {
            plan: plan(),
            codebuild_build_id: "agentbuild:1".into(),
            build: running(),
            token: "tok-1".into(),
            parked_at: t(at),
        }
    }

    #[tokio::test]
    async fn parks_the_token_then_leaves_a_running_build_to_its_event() {
        let d = deps();
        d.builds.insert(info(CodeBuildStatus::InProgress, false));
        let out = handle(&d, input("2026-11-28T10:00:10Z")).await.unwrap();
        assert_eq!(
            out,
            AwaitOutput {
                parked: true,
                completed: false
            }
        );
        let task: ParkedTask = d.store.own_json(&callback_key("b-1")).unwrap();
        assert_eq!(
            (task.token.as_str(), task.codebuild_build_id.as_str()),
            ("tok-1", "agentbuild:1")
        );
        assert!(d.tokens.sent.borrow().is_empty());
        // The look also updates the live record, as CheckBuild's does.
        let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        assert_eq!(rec.codebuild.current_phase.as_deref(), Some("BUILD"));
    }

    #[tokio::test]
    async fn a_build_that_ended_before_the_park_is_completed_at_once_with_checkbuilds_output() {
        let d = deps();
        d.builds.insert(info(CodeBuildStatus::Succeeded, true));
        let out = handle(&d, input("2026-11-28T10:00:10Z")).await.unwrap();
        assert_eq!(
            out,
            AwaitOutput {
                parked: true,
                completed: true
            }
        );
        let sent = d.tokens.sent.borrow().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, "tok-1");
        // Exactly what CheckBuild answers for the same state and moment.
        let check = crate::handlers::check_build::Deps {
            store: FakeStore::default(),
            builds: FakeBuilds::default(),
            config: d.config.clone(),
            now: d.now,
        };
        check.builds.insert(info(CodeBuildStatus::Succeeded, true));
        let expected = crate::handlers::check_build::handle(
            &check,
            crate::model::CheckInput {
                plan: plan(),
                codebuild_build_id: "agentbuild:1".into(),
                build: running(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            serde_json::from_str::<BuildOutput>(&sent[0].1).unwrap(),
            expected
        );
    }

    #[tokio::test]
    async fn a_wait_closed_already_or_a_failed_completion_leaves_it_to_the_timeout() {
        let d = deps();
        d.builds.insert(info(CodeBuildStatus::Failed, true));
        d.tokens
            .answer_next(Ok(Delivery::Closed("TaskTimedOut".into())));
        let out = handle(&d, input("2026-11-28T10:00:10Z")).await.unwrap();
        assert_eq!(
            out,
            AwaitOutput {
                parked: true,
                completed: false
            }
        );
        d.tokens
            .answer_next(Err(Error::TransientAws("SFN.SendTaskSuccess: 503".into())));
        let out = handle(&d, input("2026-11-28T10:00:10Z")).await.unwrap();
        assert_eq!(
            out,
            AwaitOutput {
                parked: true,
                completed: false
            }
        );
    }

    #[tokio::test]
    async fn a_failed_look_after_parking_is_no_failure() {
        let d = deps();
        // CodeBuild does not know the build: the fallback CheckBuild will say so.
        let out = handle(&d, input("2026-11-28T10:00:10Z")).await.unwrap();
        assert_eq!(
            out,
            AwaitOutput {
                parked: true,
                completed: false
            }
        );
    }

    #[tokio::test]
    async fn a_token_that_cannot_be_parked_fails_the_attempt() {
        let d = deps();
        d.store
            .fail_next
            .borrow_mut()
            .push_back(Error::TransientAws("S3.GetObject: 503".into()));
        let err = handle(&d, input("2026-11-28T10:00:10Z")).await.unwrap_err();
        assert_eq!(err.name(), "TransientAwsError");
        assert!(d.tokens.sent.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_late_retry_of_an_earlier_wait_never_replaces_the_current_token() {
        let d = deps();
        d.builds.insert(info(CodeBuildStatus::InProgress, false));
        handle(&d, input("2026-11-28T10:10:10Z")).await.unwrap();
        let mut early = input("2026-11-28T10:00:10Z");
        early.token = "tok-0".into();
        let out = handle(&d, early).await.unwrap();
        assert!(!out.parked);
        let task: ParkedTask = d.store.own_json(&callback_key("b-1")).unwrap();
        assert_eq!(task.token, "tok-1");
    }

    /// Every scenario above, against one recorder of the SDK operations the fakes stand for.
    #[test]
    fn calls_exactly_the_sdk_operations_the_catalog_lists() {
        let called = crate::testing::fakes::operations_of(
            include_str!("await_build.rs"),
            crate::testing::fakes::scenarios![
                parks_the_token_then_leaves_a_running_build_to_its_event,
                a_build_that_ended_before_the_park_is_completed_at_once_with_checkbuilds_output,
                a_wait_closed_already_or_a_failed_completion_leaves_it_to_the_timeout,
                a_failed_look_after_parking_is_no_failure,
                a_token_that_cannot_be_parked_fails_the_attempt,
                a_late_retry_of_an_earlier_wait_never_replaces_the_current_token,
                past_the_deadline_the_look_stops_the_build_and_completes_timed_out,
            ],
        );
        crate::testing::fakes::assert_operations_are_listed("await-build", &called);
    }

    #[tokio::test]
    async fn past_the_deadline_the_look_stops_the_build_and_completes_timed_out() {
        let mut d = deps();
        d.now = || "2026-11-28T12:00:00Z".parse().unwrap();
        d.builds.insert(info(CodeBuildStatus::InProgress, false));
        let out = handle(&d, input("2026-11-28T11:50:00Z")).await.unwrap();
        assert!(out.completed);
        assert_eq!(*d.builds.stopped.borrow(), ["agentbuild:1"]);
        let sent: BuildOutput = serde_json::from_str(&d.tokens.sent.borrow()[0].1).unwrap();
        assert_eq!(sent.build.status, BuildStatus::TimedOut);
    }
}
