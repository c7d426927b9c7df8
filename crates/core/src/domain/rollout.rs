//! Safe deploys (design: "Deploy, round 3"): a new runtime version is smoke-tested before the
//! agent's named endpoint (`live` by default) moves to it; the endpoint never moves to a version
//! that failed, nor for a stale deploy. The request fields (`deploy.endpoint`,
//! `deploy.smokeTest`, `deploy.lifecycle`) and the rules of CheckRuntime's two phases. Pure.

use super::form::{string_newtype, Rule};
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
    let b = s.as_bytes();
    let named = !b.is_empty()
        && b.len() <= 48
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if named {
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
                    Err(format!(
                        "must be a whole number of seconds from {} to {}",
                        $min, $max
                    )
                    .into())
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
