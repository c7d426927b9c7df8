//! A deployment to AgentCore Runtime as the state machine carries it and the record keeps it,
//! and the rules of the deploy step: which runtime to touch, what a runtime's status means, how
//! long to wait, and how a failure is recorded. Pure: the handlers load, call and store.

use super::deploy_request::{DeploySpec, TAG_AGENT, TAG_PROJECT, TAG_STACK};
use super::rollout::{Phase, Smoke};
use super::scan_gate::ScanGate;
use super::text::{truncate, MAX_MESSAGE_BYTES};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The error of the execution's Fail state when the image was built but its deployment failed.
pub const DEPLOY_FAILED: &str = "DeployFailed";
/// Waits between two GetAgentRuntime calls grow to this (seconds).
pub const MAX_WAIT_SECONDS: u64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    /// Only in the state machine, while the runtime is being created or updated.
    Deploying,
    Ready,
    Failed,
    /// Not applied: a newer build holds the runtime (`domain::supersede`); not a failure.
    Superseded,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Deploying => "DEPLOYING",
            DeploymentStatus::Ready => "READY",
            DeploymentStatus::Failed => "FAILED",
            DeploymentStatus::Superseded => "SUPERSEDED",
        }
    }
}

/// `deployment` of a record (and of the state between DeployRuntime, CheckRuntime and
/// RecordResult; `deadline`, `waitSeconds` and `checks` are the state's only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub status: DeploymentStatus,
    pub runtime_id: Option<String>,
    pub runtime_arn: Option<String>,
    pub runtime_name: String,
    pub runtime_version: Option<String>,
    /// `repository@digest`: what the runtime runs.
    pub container_uri: Option<String>,
    /// `CREATED` or `UPDATED`: what this deployment did to the runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub checks: u32,
    /// A stale deploy that was not applied, and why (status SUPERSEDED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded: Option<Superseded>,
    /// The named endpoint callers invoke (`deploy.endpoint`, default `live`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The runtime version this deploy made (and the endpoint moves to once it passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The version the endpoint served before (`None`: the endpoint is new).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<Smoke>,
    /// CheckRuntime's phase (the state's only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The vulnerability gate's verdict before anything was deployed (`domain::scan_gate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanGate>,
}

/// Why a deploy was not applied (`domain::supersede`): the newer build that holds the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Superseded {
    /// The build the runtime belongs to instead.
    pub by: String,
    pub reason: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Deployment {
    /// A deployment that ended before any runtime was touched (refused, or nothing to run).
    pub fn refused(
        spec: &DeploySpec,
        container_uri: Option<String>,
        reason: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Deployment {
            status: DeploymentStatus::Failed,
            runtime_id: None,
            runtime_arn: None,
            runtime_name: spec.runtime_name.clone(),
            runtime_version: None,
            container_uri,
            action: None,
            failure_reason: Some(truncate(reason.into(), MAX_MESSAGE_BYTES)),
            started_at: now,
            finished_at: Some(now),
            deadline: None,
            wait_seconds: None,
            checks: 0,
            superseded: None,
            // The endpoint it was for, also when nothing moved (blocked, failed, superseded).
            endpoint: Some(spec.endpoint().to_string()),
            version: None,
            previous_version: None,
            smoke: None,
            phase: None,
            scan: None,
        }
    }

    fn fail(mut self, reason: impl Into<String>, now: DateTime<Utc>) -> Self {
        self.status = DeploymentStatus::Failed;
        self.failure_reason = Some(truncate(reason.into(), MAX_MESSAGE_BYTES));
        self.finished_at = Some(now);
        self.wait_seconds = None;
        self
    }
}

/// AgentCore's runtime status, free of SDK types; `Unknown` holds a value newer than us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeStatus {
    Creating,
    CreateFailed,
    Updating,
    UpdateFailed,
    Ready,
    Deleting,
    DeleteFailed,
    Unknown(String),
}

/// What GetAgentRuntime (or Create/UpdateAgentRuntime) says of a runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeInfo {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub version: String,
    pub status: RuntimeStatus,
    pub failure_reason: Option<String>,
    pub container_uri: Option<String>,
}

/// A runtime found by name, with its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRuntime {
    pub id: String,
    pub arn: String,
    pub tags: BTreeMap<String, String>,
}

/// What DeployRuntime does with the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Update {
        id: String,
    },
    Create,
    /// A runtime of that name belongs to someone else: never touched.
    Refuse(String),
}

/// The runtime of an agent's previous deployment, if the name still matches (a changed
/// `runtimeName` deploys to another runtime).
pub fn previous_runtime<'a>(
    previous: Option<&'a Deployment>,
    spec: &DeploySpec,
) -> Option<&'a str> {
    previous
        .filter(|d| d.runtime_name == spec.runtime_name)
        .and_then(|d| d.runtime_id.as_deref())
}

/// Whose runtime agentbuild is deploying: the stack that runs the deployment, and the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner<'a> {
    pub stack: &'a str,
    pub project: &'a str,
    pub agent: &'a str,
}

impl Owner<'_> {
    /// The tags a created runtime gets (and IAM requires on every create, update and read).
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (TAG_STACK.to_string(), self.stack.to_string()),
            (TAG_PROJECT.to_string(), self.project.to_string()),
            (TAG_AGENT.to_string(), self.agent.to_string()),
        ])
    }

    /// Tagged for this very stack, project and agent (other tags of the owner's are allowed).
    pub fn owns(&self, tags: &BTreeMap<String, String>) -> bool {
        self.tags()
            .iter()
            .all(|(k, v)| tags.get(k).map(String::as_str) == Some(v.as_str()))
    }
}

/// The rule for a runtime found by name (no previous deployment names one that still exists):
/// ours (tagged with this stack, project and agent) is updated, none is created, anything else
/// — another stack's runtime of the same agent included — is never touched.
pub fn target_by_name(found: Option<&FoundRuntime>, owner: &Owner) -> Target {
    match found {
        None => Target::Create,
        Some(r) if owner.owns(&r.tags) => Target::Update { id: r.id.clone() },
        Some(r) => Target::Refuse(format!(
            "deploy.runtimeName: a runtime of this name exists ({}) and is not tagged for \
             {}/{} of stack {} ({TAG_STACK}, {TAG_PROJECT}, {TAG_AGENT}); agentbuild never \
             touches it",
            r.id, owner.project, owner.agent, owner.stack
        )),
    }
}

/// How long the deploy step waits between checks and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployPolicy {
    pub first_wait_seconds: u64,
    pub timeout_seconds: u64,
}

impl DeployPolicy {
    /// The wait before check number `checks + 1`: doubling from the first, at most
    /// [`MAX_WAIT_SECONDS`], never past the deadline (and at least 1 s: Wait needs a number).
    pub fn wait(&self, checks: u32, now: DateTime<Utc>, deadline: DateTime<Utc>) -> u64 {
        let grown = self
            .first_wait_seconds
            .max(1)
            .saturating_mul(1u64 << checks.min(16))
            .min(MAX_WAIT_SECONDS);
        let left = (deadline - now).num_seconds().max(1) as u64;
        grown.min(left)
    }
}

/// What a runtime runs: `repository@digest` of the build's image (a digest is what the build
/// exported; a tag could be moved, a digest names one image). `None` without a digest.
pub fn container_uri(repository_uri: &str, digest: Option<&str>) -> Option<String> {
    let digest = digest?;
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_hexdigit()))
        .then(|| format!("{repository_uri}@{digest}"))
}

/// A runtime was just created or updated: DEPLOYING until a check sees it end.
pub fn started(
    spec: &DeploySpec,
    info: &RuntimeInfo,
    container_uri: &str,
    action: &str,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
    policy: &DeployPolicy,
) -> Deployment {
    let deadline = started_at + chrono::Duration::seconds(policy.timeout_seconds as i64);
    Deployment {
        status: DeploymentStatus::Deploying,
        runtime_id: Some(info.id.clone()),
        runtime_arn: Some(info.arn.clone()),
        runtime_name: spec.runtime_name.clone(),
        runtime_version: Some(info.version.clone()),
        container_uri: Some(container_uri.to_string()),
        action: Some(action.to_string()),
        failure_reason: None,
        started_at,
        finished_at: None,
        deadline: Some(deadline),
        wait_seconds: Some(policy.wait(0, now, deadline)),
        checks: 0,
        superseded: None,
        endpoint: None,
        version: None,
        previous_version: None,
        smoke: None,
        phase: Some(Phase::Runtime),
        scan: None,
    }
}

/// One check of a DEPLOYING deployment: READY, FAILED (AgentCore's `*_FAILED` with its reason,
/// a runtime gone or running another image, the deadline), or still going with the next wait.
pub fn observe(
    mut d: Deployment,
    info: Option<&RuntimeInfo>,
    now: DateTime<Utc>,
    policy: &DeployPolicy,
) -> Deployment {
    d.checks += 1;
    let Some(info) = info else {
        let id = d.runtime_id.clone().unwrap_or_default();
        return d.fail(
            format!("runtime {id} no longer exists (deleted while it was being deployed)"),
            now,
        );
    };
    d.runtime_arn = Some(info.arn.clone());
    let reason = |what: &str| {
        info.failure_reason
            .clone()
            .unwrap_or_else(|| format!("AgentCore reported {what} without a reason"))
    };
    match &info.status {
        RuntimeStatus::Ready => ready(d, info, now),
        RuntimeStatus::CreateFailed => d.fail(reason("CREATE_FAILED"), now),
        RuntimeStatus::UpdateFailed => d.fail(reason("UPDATE_FAILED"), now),
        RuntimeStatus::Deleting | RuntimeStatus::DeleteFailed => {
            d.fail("the runtime is being deleted", now)
        }
        RuntimeStatus::Creating | RuntimeStatus::Updating | RuntimeStatus::Unknown(_) => {
            still_going(d, &info.status, now, policy)
        }
    }
}

/// READY with this deployment's image; READY with another image is a failure (another
/// deployment replaced this one).
fn ready(mut d: Deployment, info: &RuntimeInfo, now: DateTime<Utc>) -> Deployment {
    if info.container_uri.is_some() && info.container_uri != d.container_uri {
        return d.fail(
            format!(
                "the runtime is READY but runs {} (another deployment replaced this one)",
                info.container_uri.as_deref().unwrap_or("?")
            ),
            now,
        );
    }
    d.status = DeploymentStatus::Ready;
    d.runtime_version = Some(info.version.clone());
    d.finished_at = Some(now);
    d.wait_seconds = None;
    d
}

/// Still CREATING/UPDATING: wait again, or FAILED at the deadline.
fn still_going(
    mut d: Deployment,
    status: &RuntimeStatus,
    now: DateTime<Utc>,
    policy: &DeployPolicy,
) -> Deployment {
    let deadline = d.deadline.unwrap_or(now);
    if now >= deadline {
        let status = match status {
            RuntimeStatus::Unknown(s) => s.clone(),
            RuntimeStatus::Creating => "CREATING".into(),
            _ => "UPDATING".into(),
        };
        return d.fail(
            format!(
                "not READY within {} s: still {status} at its deadline",
                policy.timeout_seconds
            ),
            now,
        );
    }
    d.wait_seconds = Some(policy.wait(d.checks, now, deadline));
    d
}

/// The deployment a final record keeps: the state's (a caught error of a deploy task makes it
/// FAILED with that error, `<type>: <message>`, as its reason), without the state-only fields.
/// `None` when the request asked for no deployment or the deploy step never ran (the build did
/// not succeed).
pub fn recorded(
    spec: Option<&DeploySpec>,
    deployment: Option<Deployment>,
    caught: Option<String>,
    container_uri: Option<String>,
    now: DateTime<Utc>,
) -> Option<Deployment> {
    let spec = spec?;
    let mut d = match (deployment, caught) {
        (None, None) => return None,
        (Some(d), None) if d.status != DeploymentStatus::Deploying => d,
        (Some(d), None) => d.fail("the deploy step ended before the runtime was READY", now),
        (Some(d), Some(e)) => d.fail(e, now),
        (None, Some(e)) => Deployment::refused(spec, container_uri, e, now),
    };
    d.deadline = None;
    d.wait_seconds = None;
    d.checks = 0;
    d.phase = None;
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deploy_request::{NetworkMode, Protocol};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn spec() -> DeploySpec {
        DeploySpec {
            runtime_name: "ab_p_a_12345678".into(),
            protocol: Protocol::Http,
            network_mode: NetworkMode::Public,
            subnets: vec![],
            security_groups: vec![],
            environment_variables: Default::default(),
            role_arn: None,
            endpoint: None,
            smoke_test: None,
            lifecycle: None,
            platform_version: None,
            accept_findings: vec![],
        }
    }

    const POLICY: DeployPolicy = DeployPolicy {
        first_wait_seconds: 5,
        timeout_seconds: 900,
    };
    const URI: &str = "123.dkr.ecr.us-east-1.amazonaws.com/agentbuild@sha256:ab";

    fn info(status: RuntimeStatus) -> RuntimeInfo {
        RuntimeInfo {
            id: "ab_p_a_12345678-0123456789".into(),
            arn: "arn:aws:bedrock-agentcore:us-east-1:123:runtime/ab_p_a_12345678-0123456789"
                .into(),
            name: "ab_p_a_12345678".into(),
            version: "2".into(),
            status,
            failure_reason: None,
            container_uri: Some(URI.into()),
        }
    }

    fn deploying() -> Deployment {
        started(
            &spec(),
            &info(RuntimeStatus::Updating),
            URI,
            "UPDATED",
            t("2026-11-28T10:00:00Z"),
            t("2026-11-28T10:00:01Z"),
            &POLICY,
        )
    }

    #[test]
    fn a_started_deployment_waits_then_is_ready_at_its_version() {
        let d = deploying();
        assert_eq!(d.status, DeploymentStatus::Deploying);
        assert_eq!(d.deadline, Some(t("2026-11-28T10:15:00Z")));
        assert_eq!(d.wait_seconds, Some(5));
        let going = observe(
            d,
            Some(&info(RuntimeStatus::Updating)),
            t("2026-11-28T10:00:06Z"),
            &POLICY,
        );
        assert_eq!(
            (going.status, going.wait_seconds),
            (DeploymentStatus::Deploying, Some(10))
        );
        let ready = observe(
            going,
            Some(&info(RuntimeStatus::Ready)),
            t("2026-11-28T10:00:20Z"),
            &POLICY,
        );
        assert_eq!(ready.status, DeploymentStatus::Ready);
        assert_eq!(ready.finished_at, Some(t("2026-11-28T10:00:20Z")));
        assert_eq!(ready.runtime_version.as_deref(), Some("2"));
    }

    #[test]
    fn agentcores_failure_is_failed_with_its_reason() {
        let mut i = info(RuntimeStatus::UpdateFailed);
        i.failure_reason = Some("image manifest is not arm64".into());
        let d = observe(deploying(), Some(&i), t("2026-11-28T10:01:00Z"), &POLICY);
        assert_eq!(d.status, DeploymentStatus::Failed);
        assert_eq!(
            d.failure_reason.as_deref(),
            Some("image manifest is not arm64")
        );
        let d = observe(
            deploying(),
            Some(&info(RuntimeStatus::CreateFailed)),
            t("2026-11-28T10:01:00Z"),
            &POLICY,
        );
        assert!(d.failure_reason.unwrap().contains("CREATE_FAILED"));
    }

    #[test]
    fn the_deadline_a_vanished_runtime_or_another_image_fail_the_deployment() {
        let late = observe(
            deploying(),
            Some(&info(RuntimeStatus::Creating)),
            t("2026-11-28T10:15:00Z"),
            &POLICY,
        );
        assert_eq!(late.status, DeploymentStatus::Failed);
        assert!(late.failure_reason.unwrap().contains("within 900 s"));
        let gone = observe(deploying(), None, t("2026-11-28T10:01:00Z"), &POLICY);
        assert!(gone.failure_reason.unwrap().contains("no longer exists"));
        let mut other = info(RuntimeStatus::Ready);
        other.container_uri = Some("repo@sha256:ff".into());
        let replaced = observe(
            deploying(),
            Some(&other),
            t("2026-11-28T10:01:00Z"),
            &POLICY,
        );
        assert!(replaced
            .failure_reason
            .unwrap()
            .contains("another deployment"));
    }

    #[test]
    fn waits_grow_to_a_minute_and_never_pass_the_deadline() {
        let now = t("2026-11-28T10:00:00Z");
        let far = t("2026-11-28T11:00:00Z");
        let waits: Vec<u64> = (0..6).map(|c| POLICY.wait(c, now, far)).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(POLICY.wait(5, now, t("2026-11-28T10:00:07Z")), 7);
        assert_eq!(POLICY.wait(5, now, now), 1);
    }

    #[test]
    fn only_a_runtime_tagged_for_this_stack_and_agent_is_touched() {
        let owner = Owner {
            stack: "s",
            project: "p",
            agent: "a",
        };
        let tagged = |stack: &str, p: &str, a: &str| FoundRuntime {
            id: "r-1".into(),
            arn: "arn".into(),
            tags: Owner {
                stack,
                project: p,
                agent: a,
            }
            .tags(),
        };
        assert_eq!(target_by_name(None, &owner), Target::Create);
        assert_eq!(
            target_by_name(Some(&tagged("s", "p", "a")), &owner),
            Target::Update { id: "r-1".into() }
        );
        let mut project_and_agent_only = tagged("s", "p", "a").tags;
        project_and_agent_only.remove(TAG_STACK);
        for other in [
            tagged("s", "p", "b"),
            tagged("s", "q", "a"),
            // The same agent of another stack in the account (staging and prod).
            tagged("s2", "p", "a"),
            FoundRuntime {
                id: "r-1".into(),
                arn: "arn".into(),
                tags: project_and_agent_only,
            },
            FoundRuntime {
                id: "r-1".into(),
                arn: "arn".into(),
                tags: Default::default(),
            },
        ] {
            match target_by_name(Some(&other), &owner) {
                Target::Refuse(why) => assert!(why.starts_with("deploy.runtimeName: "), "{why}"),
                t => panic!("{t:?}"),
            }
        }
        assert_eq!(
            owner.tags().keys().collect::<Vec<_>>(),
            ["agentbuild:agent", "agentbuild:project", "agentbuild:stack"]
        );
    }

    #[test]
    fn a_previous_deployment_counts_only_under_the_same_name() {
        let d = deploying();
        assert_eq!(
            previous_runtime(Some(&d), &spec()),
            Some("ab_p_a_12345678-0123456789")
        );
        let mut renamed = spec();
        renamed.runtime_name = "Other".into();
        assert_eq!(previous_runtime(Some(&d), &renamed), None);
    }

    #[test]
    fn a_caught_error_becomes_a_failed_deployment_and_state_fields_are_dropped() {
        let now = t("2026-11-28T10:02:00Z");
        let e = "AwsServiceError: AgentCore.UpdateAgentRuntime: AccessDenied".to_string();
        let r = recorded(Some(&spec()), None, Some(e.clone()), Some(URI.into()), now).unwrap();
        assert_eq!(r.status, DeploymentStatus::Failed);
        assert_eq!(
            r.failure_reason.as_deref(),
            Some("AwsServiceError: AgentCore.UpdateAgentRuntime: AccessDenied")
        );
        assert_eq!((r.started_at, r.finished_at), (now, Some(now)));
        assert_eq!(
            r.endpoint.as_deref(),
            Some("live"),
            "a failed deploy names its endpoint"
        );
        let r = recorded(Some(&spec()), Some(deploying()), Some(e), None, now).unwrap();
        assert_eq!(r.runtime_id.as_deref(), Some("ab_p_a_12345678-0123456789"));
        assert_eq!((r.deadline, r.wait_seconds, r.checks), (None, None, 0));
        let ready = observe(deploying(), Some(&info(RuntimeStatus::Ready)), now, &POLICY);
        assert_eq!(
            recorded(Some(&spec()), Some(ready), None, None, now)
                .unwrap()
                .status,
            DeploymentStatus::Ready
        );
        assert_eq!(recorded(None, Some(deploying()), None, None, now), None);
        assert_eq!(recorded(Some(&spec()), None, None, None, now), None);
        let json = serde_json::to_value(
            recorded(Some(&spec()), Some(deploying()), None, None, now).unwrap(),
        )
        .unwrap();
        assert_eq!(json["status"], "FAILED");
        assert!(json.get("deadline").is_none() && json.get("waitSeconds").is_none());
    }
}
