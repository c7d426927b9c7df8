//! Safe deploys (design: "Deploy, round 3"): a new runtime version is smoke-tested before the
//! agent's named endpoint (`live` by default) moves to it; the endpoint never moves to a version
//! that failed, nor for a stale deploy. The request fields (`deploy.endpoint`,
//! `deploy.smokeTest`, `deploy.lifecycle`) and the rules of CheckRuntime's two phases. Pure.

use super::deployment::{DeployPolicy, Deployment, DeploymentStatus};
use super::form::{string_newtype, Rule};
use super::text::{truncate, MAX_MESSAGE_BYTES};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The endpoint callers invoke unless `deploy.endpoint` names another.
pub const DEFAULT_ENDPOINT: &str = "live";
/// A smoke test's bound unless `deploy.smokeTest.timeoutSeconds` says otherwise (seconds).
pub const DEFAULT_SMOKE_SECONDS: u64 = 10;
/// At most this: the smoke test runs inside CheckRuntime, whose task times out at 60 s.
pub const MAX_SMOKE_SECONDS: u64 = 30;
/// `deploy.smokeTest.payload`, serialized, at most this many bytes (it rides in the plan).
pub const MAX_SMOKE_PAYLOAD_BYTES: usize = 4096;
/// AgentCore's lifecycle bounds (seconds), for both settings.
pub const LIFECYCLE_MIN: u64 = 60;
pub const LIFECYCLE_MAX: u64 = 28_800;
/// The smoke test's payload when the request gives none.
pub fn default_payload() -> Value {
    serde_json::json!({"prompt": "agentbuild smoke test"})
}

string_newtype!(
    /// `^[a-zA-Z][a-zA-Z0-9_]{0,47}$`, not `DEFAULT` (AgentCore's own, which follows every
    /// update: the very thing a named endpoint avoids).
    EndpointName,
    endpoint_name_rule
);

fn endpoint_name_rule(s: &str) -> Result<(), Rule> {
    if s.eq_ignore_ascii_case("DEFAULT") {
        return Err("must not be DEFAULT (AgentCore moves DEFAULT to every new version)".into());
    }
    if super::deploy_request::is_runtime_name(s) {
        Ok(())
    } else {
        Err("must match ^[a-zA-Z][a-zA-Z0-9_]{0,47}$ (AgentCore's rule for endpoint names)".into())
    }
}

/// Seconds within a bound, as a newtype whose rule names the bound.
macro_rules! bounded_seconds {
    ($name:ident, $min:expr, $max:expr) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "u64", into = "u64")]
        pub struct $name(u64);
        impl TryFrom<u64> for $name {
            type Error = Rule;
            fn try_from(n: u64) -> Result<Self, Rule> {
                if ($min..=$max).contains(&n) {
                    Ok($name(n))
                } else {
                    Err(format!("must be a whole number of seconds from {} to {}", $min, $max).into())
                }
            }
        }
        impl From<$name> for u64 {
            fn from(v: $name) -> u64 {
                v.0
            }
        }
        impl $name {
            pub fn get(self) -> u64 {
                self.0
            }
        }
    };
}

bounded_seconds!(SmokeSeconds, 1, MAX_SMOKE_SECONDS);
bounded_seconds!(LifecycleSeconds, LIFECYCLE_MIN, LIFECYCLE_MAX);

/// `deploy.smokeTest`: what `POST /invocations` of the candidate version is sent, and how long
/// it may take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SmokeTest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<SmokePayload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<SmokeSeconds>,
}

impl SmokeTest {
    pub fn payload(&self) -> Value {
        self.payload
            .as_ref()
            .map(|p| p.0.clone())
            .unwrap_or_else(default_payload)
    }
    pub fn timeout_seconds(&self) -> u64 {
        self.timeout_seconds
            .map(SmokeSeconds::get)
            .unwrap_or(DEFAULT_SMOKE_SECONDS)
    }
}

/// Any JSON of at most [`MAX_SMOKE_PAYLOAD_BYTES`] serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct SmokePayload(Value);

impl TryFrom<Value> for SmokePayload {
    type Error = Rule;
    fn try_from(v: Value) -> Result<Self, Rule> {
        if v.to_string().len() > MAX_SMOKE_PAYLOAD_BYTES {
            return Err(format!("must be at most {MAX_SMOKE_PAYLOAD_BYTES} bytes of JSON").into());
        }
        Ok(SmokePayload(v))
    }
}

impl From<SmokePayload> for Value {
    fn from(p: SmokePayload) -> Value {
        p.0
    }
}

/// `deploy.lifecycle`: AgentCore's `lifecycleConfiguration`, passed through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lifecycle {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_runtime_session_timeout: Option<LifecycleSeconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lifetime: Option<LifecycleSeconds>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SmokeStatus {
    Passed,
    Failed,
    Skipped,
}

/// The smoke test's result, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Smoke {
    pub status: SmokeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Which part of the deploy CheckRuntime is watching (the state's only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    /// The runtime's new version is being created or updated.
    Runtime,
    /// The version passed its smoke test; the endpoint is moving to it.
    Endpoint,
}

/// AgentCore's endpoint status, free of SDK types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointStatus {
    Creating,
    Updating,
    Ready,
    Failed,
    Other(String),
}

/// What GetAgentRuntimeEndpoint (or its Create/Update) says of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    pub name: String,
    pub status: EndpointStatus,
    pub live_version: Option<String>,
    pub target_version: Option<String>,
    pub failure_reason: Option<String>,
}

/// What a smoke test of one version saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmokeOutcome {
    /// `POST /invocations` answered 2xx within the bound.
    Answered,
    /// Anything else, said for a person: a status, a timeout, the data plane's error.
    Refused(String),
}

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
pub fn stale(mut d: Deployment, why: super::deployment::Superseded, now: DateTime<Utc>) -> Deployment {
    d.status = DeploymentStatus::Superseded;
    d.failure_reason = None;
    d.finished_at = Some(now);
    d.wait_seconds = None;
    d.superseded = Some(why);
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoint_names_follow_agentcore_and_refuse_default() {
        assert!(EndpointName::try_from("live".to_string()).is_ok());
        assert!(EndpointName::try_from("staging_2".to_string()).is_ok());
        assert!(EndpointName::try_from("DEFAULT".to_string()).is_err());
        assert!(EndpointName::try_from("2live".to_string()).is_err());
    }

    #[test]
    fn smoke_and_lifecycle_bounds() {
        let s: SmokeTest = serde_json::from_value(json!({"timeoutSeconds": 5})).unwrap();
        assert_eq!((s.timeout_seconds(), s.payload()), (5, default_payload()));
        assert!(serde_json::from_value::<SmokeTest>(json!({"timeoutSeconds": 31})).is_err());
        assert!(serde_json::from_value::<SmokeTest>(json!({"x": 1})).is_err());
        let big = "x".repeat(MAX_SMOKE_PAYLOAD_BYTES);
        assert!(serde_json::from_value::<SmokeTest>(json!({"payload": big})).is_err());
        let l: Lifecycle =
            serde_json::from_value(json!({"idleRuntimeSessionTimeout": 60, "maxLifetime": 28800}))
                .unwrap();
        assert_eq!(l.max_lifetime.unwrap().get(), 28_800);
        assert!(serde_json::from_value::<Lifecycle>(json!({"maxLifetime": 59})).is_err());
        assert!(serde_json::from_value::<Lifecycle>(json!({"maxLifetime": 28801})).is_err());
    }
}
