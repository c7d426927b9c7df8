//! CheckRuntime: `{plan, build, deployment}` -> `{deployment}`, READY, FAILED
//! (AgentCore's `*_FAILED` and its `failureReason`, the deadline, a runtime gone) or still
//! DEPLOYING with the next wait. AgentCore has no waiter for runtimes: the state machine waits.

use super::{aws_config, Clock};
use crate::adapters::agentcore::AgentCore;
use crate::config::{CheckRuntimeConfig, ProcessEnv};
use crate::domain::deployment::{observe, DeploymentStatus};
use crate::model::{CheckRuntimeInput, DeployOutput};
use crate::ports::Runtimes;
use crate::Error;
use chrono::Utc;

pub struct Deps<R> {
    pub runtimes: R,
    pub config: CheckRuntimeConfig,
    pub now: Clock,
}

impl Deps<AgentCore> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = CheckRuntimeConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            runtimes: AgentCore::new(aws_sdk_bedrockagentcorecontrol::Client::new(&sdk)),
            config,
            now: Utc::now,
        })
    }
}

pub async fn handle<R: Runtimes>(
    deps: &Deps<R>,
    input: CheckRuntimeInput,
) -> Result<DeployOutput, Error> {
    let CheckRuntimeInput {
        plan, deployment, ..
    } = input;
    if deployment.status != DeploymentStatus::Deploying {
        // Nothing to watch (a retried check after the last one ended it): pass it on.
        return Ok(DeployOutput { deployment });
    }
    let id = deployment
        .runtime_id
        .clone()
        .ok_or_else(|| Error::InvalidState("CheckRuntime needs deployment.runtimeId".into()))?;
    let info = deps.runtimes.get(&id).await?;
    let deployment = observe(deployment, info.as_ref(), (deps.now)(), &deps.config.policy);
    tracing::info!(
        build_id = %plan.build_id,
        runtime_id = %id,
        status = deployment.status.as_str(),
        reason = deployment.failure_reason.as_deref().unwrap_or("-"),
        wait = deployment.wait_seconds.unwrap_or(0),
        "runtime checked"
    );
    Ok(DeployOutput { deployment })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deployment::{DeployPolicy, Deployment, RuntimeStatus};
    use crate::domain::record::tests::{plan, running, t};
    use crate::testing::fake_runtimes::FakeRuntimes;
    use serde_json::json;

    fn deps(now: Clock) -> Deps<FakeRuntimes> {
        Deps {
            runtimes: FakeRuntimes::default(),
            config: CheckRuntimeConfig {
                policy: DeployPolicy {
                    first_wait_seconds: 5,
                    timeout_seconds: 900,
                },
            },
            now,
        }
    }

    fn deploying() -> Deployment {
        serde_json::from_value(json!({
            "status": "DEPLOYING", "runtimeId": "rt-1", "runtimeArn": "arn", "runtimeName": "Mine",
            "runtimeVersion": "2", "containerUri": "r@sha256:00", "action": "UPDATED",
            "startedAt": "2026-11-28T10:00:00Z", "finishedAt": null,
            "deadline": "2026-11-28T10:15:00Z", "waitSeconds": 5
        }))
        .unwrap()
    }

    async fn check(d: &Deps<FakeRuntimes>) -> Deployment {
        handle(
            d,
            CheckRuntimeInput {
                plan: plan(),
                build: running(),
                deployment: deploying(),
            },
        )
        .await
        .unwrap()
        .deployment
    }

    #[tokio::test]
    async fn an_updating_runtime_is_waited_for_then_ready() {
        let d = deps(|| "2026-11-28T10:00:10Z".parse().unwrap());
        d.runtimes.add("rt-1", "Mine", "p", "a");
        d.runtimes
            .set("rt-1", RuntimeStatus::Updating, None, "r@sha256:00");
        let dep = check(&d).await;
        assert_eq!(
            (dep.status, dep.wait_seconds),
            (DeploymentStatus::Deploying, Some(10))
        );
        d.runtimes
            .set("rt-1", RuntimeStatus::Ready, None, "r@sha256:00");
        let dep = check(&d).await;
        assert_eq!(dep.status, DeploymentStatus::Ready);
        assert_eq!(dep.finished_at, Some(t("2026-11-28T10:00:10Z")));
    }

    #[tokio::test]
    async fn update_failed_is_failed_with_agentcores_reason() {
        let d = deps(|| "2026-11-28T10:00:10Z".parse().unwrap());
        d.runtimes.add("rt-1", "Mine", "p", "a");
        d.runtimes.set(
            "rt-1",
            RuntimeStatus::UpdateFailed,
            Some("image is not arm64"),
            "r@sha256:00",
        );
        let dep = check(&d).await;
        assert_eq!(dep.status, DeploymentStatus::Failed);
        assert_eq!(dep.failure_reason.as_deref(), Some("image is not arm64"));
    }

    #[tokio::test]
    async fn past_the_deadline_or_gone_is_failed() {
        let d = deps(|| "2026-11-28T10:15:01Z".parse().unwrap());
        d.runtimes.add("rt-1", "Mine", "p", "a");
        d.runtimes
            .set("rt-1", RuntimeStatus::Updating, None, "r@sha256:00");
        assert!(check(&d)
            .await
            .failure_reason
            .unwrap()
            .contains("within 900 s"));
        let d = deps(|| "2026-11-28T10:00:10Z".parse().unwrap());
        assert!(check(&d)
            .await
            .failure_reason
            .unwrap()
            .contains("no longer exists"));
    }

    #[tokio::test]
    async fn a_transient_error_fails_the_step_for_a_retry() {
        let d = deps(|| "2026-11-28T10:00:10Z".parse().unwrap());
        d.runtimes
            .fail_next
            .borrow_mut()
            .push_back(Error::TransientAws("AgentCore.GetAgentRuntime: 503".into()));
        let err = handle(
            &d,
            CheckRuntimeInput {
                plan: plan(),
                build: running(),
                deployment: deploying(),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.name(), "TransientAwsError");
    }

    /// Every scenario above, against one recorder of the SDK operations the fakes stand for.
    #[test]
    fn calls_exactly_the_sdk_operations_the_catalog_lists() {
        let called = crate::testing::fakes::operations_of(
            include_str!("check_runtime.rs"),
            crate::testing::fakes::scenarios![
                an_updating_runtime_is_waited_for_then_ready,
                update_failed_is_failed_with_agentcores_reason,
                past_the_deadline_or_gone_is_failed,
                a_transient_error_fails_the_step_for_a_retry,
            ],
        );
        crate::testing::fakes::assert_operations_are_listed("check-runtime", &called);
    }
}
