//! CheckRuntime: `{plan, build, deployment}` -> `{deployment}`. Phase RUNTIME: GetAgentRuntime ->
//! FAILED (AgentCore's `*_FAILED`, the deadline, a runtime gone), DEPLOYING with the next wait,
//! or READY -> the new version's smoke test -> the deploy ledger re-read -> the named endpoint
//! moved (phase ENDPOINT). Phase ENDPOINT: GetAgentRuntimeEndpoint -> READY serving the
//! version, FAILED, or the next wait. AgentCore has no waiter: the state machine waits.

use super::{aws_config, s3_client, Clock};
use crate::adapters::agentcore::AgentCore;
use crate::adapters::endpoints::DataPlane;
use crate::adapters::s3::S3Store;
use crate::config::{CheckRuntimeConfig, ProcessEnv};
use crate::domain::deployment::DeploymentStatus;
use crate::model::{CheckRuntimeInput, DeployOutput};
use crate::ports::{Endpoints, ObjectStore, Runtimes, SmokeTester};
use crate::services::rollout::Rollout;
use crate::Error;
use chrono::Utc;

pub struct Deps<R, T, S> {
    pub runtimes: R,
    pub smoke: T,
    pub store: S,
    pub config: CheckRuntimeConfig,
    pub now: Clock,
}

impl Deps<AgentCore, DataPlane, S3Store> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = CheckRuntimeConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            runtimes: AgentCore::new(aws_sdk_bedrockagentcorecontrol::Client::new(&sdk)),
            smoke: DataPlane::new(aws_sdk_bedrockagentcore::Client::new(&sdk)),
            store: S3Store::new(s3_client(&sdk), config.bucket.clone()),
            config,
            now: Utc::now,
        })
    }
}

pub async fn handle<R: Runtimes + Endpoints, T: SmokeTester, S: ObjectStore>(
    deps: &Deps<R, T, S>,
    input: CheckRuntimeInput,
) -> Result<DeployOutput, Error> {
    let CheckRuntimeInput {
        plan,
        build,
        deployment,
    } = input;
    if deployment.status != DeploymentStatus::Deploying {
        // Nothing to watch (a retried check after the last one ended it): pass it on.
        return Ok(DeployOutput { deployment });
    }
    let rollout = Rollout {
        stack: &deps.config.stack,
        runtimes: &deps.runtimes,
        smoke: &deps.smoke,
        store: &deps.store,
        policy: &deps.config.policy,
    };
    let deployment = rollout
        .check(&plan, &build, deployment, (deps.now)())
        .await?;
    tracing::info!(
        build_id = %plan.build_id,
        runtime_id = deployment.runtime_id.as_deref().unwrap_or("-"),
        status = deployment.status.as_str(),
        version = deployment.version.as_deref().unwrap_or("-"),
        endpoint = deployment.endpoint.as_deref().unwrap_or("-"),
        reason = deployment.failure_reason.as_deref().unwrap_or("-"),
        wait = deployment.wait_seconds.unwrap_or(0),
        "runtime checked"
    );
    Ok(DeployOutput { deployment })
}

super::lambda_main!();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deploy_request::validate_deploy;
    use crate::domain::deployment::{DeployPolicy, Deployment, RuntimeStatus};
    use crate::domain::plan::BuildPlan;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::rollout::{Phase, SmokeOutcome, SmokeStatus};
    use crate::testing::fake_runtimes::{FakeRuntimes, FakeSmoke};
    use crate::testing::fakes::FakeStore;
    use serde_json::json;

    type TestDeps = Deps<FakeRuntimes, FakeSmoke, FakeStore>;

    fn deps(now: Clock) -> TestDeps {
        Deps {
            runtimes: FakeRuntimes::default(),
            smoke: FakeSmoke::default(),
            store: FakeStore::default(),
            config: CheckRuntimeConfig {
                bucket: "bkt".into(),
                stack: "agentbuild".into(),
                policy: DeployPolicy {
                    first_wait_seconds: 5,
                    timeout_seconds: 900,
                },
            },
            now,
        }
    }

    fn deploy_plan() -> BuildPlan {
        let mut p = plan();
        p.deploy = Some(
            validate_deploy(
                &json!({"runtimeName": "Mine", "smokeTest": {"timeoutSeconds": 5}}),
                "agentbuild",
                "nexus-ai",
                "sales",
                None,
            )
            .unwrap(),
        );
        p
    }

    fn deploying() -> Deployment {
        serde_json::from_value(json!({
            "status": "DEPLOYING", "runtimeId": "rt-1", "runtimeArn": "arn", "runtimeName": "Mine",
            "runtimeVersion": "2", "containerUri": "r@sha256:00", "action": "UPDATED",
            "startedAt": "2026-11-28T10:00:00Z", "finishedAt": null,
            "deadline": "2026-11-28T10:15:00Z", "waitSeconds": 5, "phase": "RUNTIME"
        }))
        .unwrap()
    }

    async fn check_with(d: &TestDeps, p: BuildPlan, dep: Deployment) -> Deployment {
        handle(
            d,
            CheckRuntimeInput {
                plan: p,
                build: running(),
                deployment: dep,
            },
        )
        .await
        .unwrap()
        .deployment
    }

    async fn check(d: &TestDeps) -> Deployment {
        check_with(d, plan(), deploying()).await
    }

    /// A runtime at version 2 READY, whose `live` endpoint serves version 1.
    fn ready_v2(d: &TestDeps) {
        d.runtimes.add("rt-1", "Mine", "nexus-ai", "sales");
        d.runtimes
            .set("rt-1", RuntimeStatus::Ready, None, "r@sha256:00");
        d.runtimes
            .runtimes
            .borrow_mut()
            .get_mut("rt-1")
            .unwrap()
            .0
            .version = "2".into();
        d.runtimes.add_endpoint("rt-1", "live", "1");
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
    async fn a_version_that_passes_its_smoke_test_moves_live_to_it() {
        let d = deps(|| "2026-11-28T10:00:10Z".parse().unwrap());
        ready_v2(&d);
        let dep = check_with(&d, deploy_plan(), deploying()).await;
        assert_eq!(
            d.smoke.calls.borrow().as_slice(),
            &[(
                "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/rt-1".to_string(),
                "2".to_string()
            )]
        );
        assert_eq!(
            (dep.status, dep.phase),
            (DeploymentStatus::Deploying, Some(Phase::Endpoint))
        );
        assert_eq!(
            d.runtimes.moved.borrow().as_slice(),
            &[("rt-1".into(), "live".into(), "2".into())]
        );
        let dep = check_with(&d, deploy_plan(), dep).await;
        assert_eq!(dep.status, DeploymentStatus::Ready);
        assert_eq!(
            (
                dep.endpoint.as_deref(),
                dep.version.as_deref(),
                dep.previous_version.as_deref()
            ),
            (Some("live"), Some("2"), Some("1"))
        );
        assert_eq!(dep.smoke.unwrap().status, SmokeStatus::Passed);
    }

    #[tokio::test]
    async fn the_first_good_version_creates_the_endpoint() {
        let d = deps(|| "2026-11-28T10:00:10Z".parse().unwrap());
        ready_v2(&d);
        d.runtimes.endpoints.borrow_mut().clear();
        let dep = check_with(&d, deploy_plan(), deploying()).await;
        let dep = check_with(&d, deploy_plan(), dep).await;
        assert_eq!(dep.status, DeploymentStatus::Ready);
        assert_eq!(dep.previous_version, None);
        assert_eq!(d.runtimes.live("rt-1", "live").as_deref(), Some("2"));
    }

    #[tokio::test]
    async fn a_failed_smoke_test_leaves_live_where_it_was() {
        let d = deps(|| "2026-11-28T10:00:10Z".parse().unwrap());
        ready_v2(&d);
        d.smoke
            .outcomes
            .borrow_mut()
            .push_back(SmokeOutcome::Refused(
                "POST /invocations answered 500".into(),
            ));
        let dep = check_with(&d, deploy_plan(), deploying()).await;
        assert_eq!(dep.status, DeploymentStatus::Failed);
        let smoke = dep.smoke.clone().unwrap();
        assert_eq!(smoke.status, SmokeStatus::Failed);
        assert!(smoke.reason.unwrap().contains("500"));
        assert!(dep.failure_reason.unwrap().contains("version 2"));
        assert_eq!(
            (dep.version.as_deref(), dep.previous_version.as_deref()),
            (Some("2"), Some("1"))
        );
        assert!(d.runtimes.moved.borrow().is_empty());
        assert_eq!(d.runtimes.live("rt-1", "live").as_deref(), Some("1"));
    }

    #[tokio::test]
    async fn a_stale_deploy_never_moves_live() {
        let d = deps(|| "2026-11-28T10:00:10Z".parse().unwrap());
        ready_v2(&d);
        d.store.seed(
            "agents/nexus-ai/sales/deployed.json",
            serde_json::to_vec(&json!({
                "buildId": "b-newer", "submittedAt": "2026-11-28T10:01:00Z",
                "finishedAt": "2026-11-28T10:04:00Z", "executionArn": "x",
                "containerUri": "r@sha256:11", "claimedAt": "2026-11-28T10:04:01Z"
            }))
            .unwrap(),
        );
        let dep = check_with(&d, deploy_plan(), deploying()).await;
        assert_eq!(dep.status, DeploymentStatus::Superseded);
        assert_eq!(dep.superseded.unwrap().by, "b-newer");
        assert!(d.runtimes.moved.borrow().is_empty());
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
                a_version_that_passes_its_smoke_test_moves_live_to_it,
                a_failed_smoke_test_leaves_live_where_it_was,
                the_first_good_version_creates_the_endpoint,
                a_stale_deploy_never_moves_live,
                update_failed_is_failed_with_agentcores_reason,
                past_the_deadline_or_gone_is_failed,
                a_transient_error_fails_the_step_for_a_retry,
            ],
        );
        crate::testing::fakes::assert_operations_are_listed("check-runtime", &called);
    }
}
