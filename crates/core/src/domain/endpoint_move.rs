//! The rules of CheckRuntime's two phases (design: "Deploy, round 3"): the runtime's new version
//! READY -> its smoke test -> the named endpoint moved -> READY serving it; a failed smoke test
//! or a stale deploy never moves the endpoint. Pure: `services::rollout` loads and calls.

use super::deployment::{DeployPolicy, Deployment, DeploymentStatus, Superseded};
use super::rollout::{EndpointInfo, EndpointStatus, Phase, Smoke, SmokeOutcome, SmokeStatus};
use super::text::{truncate, MAX_MESSAGE_BYTES};
use chrono::{DateTime, Utc};

fn fail(mut d: Deployment, reason: String, now: DateTime<Utc>) -> Deployment {
    d.status = DeploymentStatus::Failed;
    d.failure_reason = Some(truncate(reason, MAX_MESSAGE_BYTES));
    d.finished_at = Some(now);
    d.wait_seconds = None;
    d
}

/// The runtime's new version is READY: the endpoint and versions are written down before
/// anything moves (`previous`: the version the endpoint serves now, if it exists).
pub fn candidate(mut d: Deployment, endpoint: &str, previous: Option<&EndpointInfo>) -> Deployment {
    d.endpoint = Some(endpoint.to_string());
    d.version = d.runtime_version.clone();
    d.previous_version = previous.and_then(|e| e.live_version.clone());
    d
}

/// The smoke test's verdict: passed, the deploy goes on (still DEPLOYING); failed, the
/// deployment is FAILED naming the reason and the refused version, the endpoint untouched.
pub fn smoked(mut d: Deployment, outcome: Option<SmokeOutcome>, now: DateTime<Utc>) -> Deployment {
    d.status = DeploymentStatus::Deploying;
    d.finished_at = None;
    match outcome {
        None => {
            d.smoke = Some(Smoke {
                status: SmokeStatus::Skipped,
                reason: Some(
                    "MCP and A2A runtimes have no POST /invocations contract to test".into(),
                ),
            });
            d
        }
        Some(SmokeOutcome::Answered) => {
            d.smoke = Some(Smoke {
                status: SmokeStatus::Passed,
                reason: None,
            });
            d
        }
        Some(SmokeOutcome::Refused(why)) => {
            let why = truncate(why, MAX_MESSAGE_BYTES / 2);
            d.smoke = Some(Smoke {
                status: SmokeStatus::Failed,
                reason: Some(why.clone()),
            });
            let version = d.version.clone().unwrap_or_default();
            let endpoint = d.endpoint.clone().unwrap_or_default();
            fail(
                d,
                format!("smoke test of version {version} failed: {why}; endpoint {endpoint} left where it was"),
                now,
            )
        }
    }
}

/// The endpoint was asked to move: wait for it (or READY at once).
pub fn moving(
    mut d: Deployment,
    info: &EndpointInfo,
    now: DateTime<Utc>,
    policy: &DeployPolicy,
) -> Deployment {
    d.phase = Some(Phase::Endpoint);
    d.checks = 0;
    endpoint_observed(d, Some(info), now, policy)
}

/// One check of the moving endpoint: READY serving this version, FAILED (AgentCore's reason,
/// gone, the deadline), or wait again.
pub fn endpoint_observed(
    mut d: Deployment,
    info: Option<&EndpointInfo>,
    now: DateTime<Utc>,
    policy: &DeployPolicy,
) -> Deployment {
    d.checks += 1;
    let endpoint = d.endpoint.clone().unwrap_or_default();
    let Some(info) = info else {
        return fail(d, format!("endpoint {endpoint} no longer exists"), now);
    };
    match &info.status {
        EndpointStatus::Ready if info.live_version == d.version => {
            d.status = DeploymentStatus::Ready;
            d.finished_at = Some(now);
            d.wait_seconds = None;
            d
        }
        EndpointStatus::Failed => {
            let why = info
                .failure_reason
                .clone()
                .unwrap_or_else(|| "AgentCore reported the endpoint failed".into());
            fail(d, format!("endpoint {endpoint}: {why}"), now)
        }
        _ => {
            let deadline = d.deadline.unwrap_or(now);
            if now >= deadline {
                let why = format!(
                    "endpoint {endpoint} did not serve version {} within {} s",
                    d.version.as_deref().unwrap_or("?"),
                    policy.timeout_seconds
                );
                return fail(d, why, now);
            }
            d.status = DeploymentStatus::Deploying;
            d.wait_seconds = Some(policy.wait(d.checks, now, deadline));
            d
        }
    }
}

/// A stale deploy found out right before the endpoint would move: the runtime has the version,
/// but the endpoint stays with the newer build's.
pub fn stale(mut d: Deployment, why: Superseded, now: DateTime<Utc>) -> Deployment {
    d.status = DeploymentStatus::Superseded;
    d.failure_reason = None;
    d.finished_at = Some(now);
    d.wait_seconds = None;
    d.superseded = Some(why);
    d
}
