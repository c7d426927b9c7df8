//! The JSON each state receives and returns (camelCase, as the ASL's paths spell it).
//! The state document is `{plan, build?, error?}`: each task's ResultSelector rebuilds it.

use crate::domain::deployment::{Deployment, DeploymentStatus};
use crate::domain::plan::BuildPlan;
use crate::domain::record::{BuildState, ErrorInfo};
use crate::domain::status::BuildStatus;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// ValidateRequest's input: the execution input plus facts from the context object.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateInput {
    pub input: Value,
    pub build_id: String,
    pub execution_arn: String,
    pub started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanOutput {
    pub plan: BuildPlan,
}

/// StartBuild's input.
pub type StartInput = PlanOutput;

/// StartBuild's and CheckBuild's output; CheckBuild's input.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BuildOutput {
    pub plan: BuildPlan,
    pub build: BuildState,
}

pub type CheckInput = BuildOutput;

/// DeployRuntime's input: a build that succeeded (or was REUSED) and asked for `deploy`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeployInput {
    pub plan: BuildPlan,
    pub build: BuildState,
    /// `$$.State.EnteredTime`: when the deployment started (the same on every retry).
    pub started_at: DateTime<Utc>,
}

/// DeployRuntime's and CheckRuntime's output; CheckRuntime's input.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeployOutput {
    pub plan: BuildPlan,
    pub build: BuildState,
    pub deployment: Deployment,
}

pub type CheckRuntimeInput = DeployOutput;

/// What a Catch puts at `$.error`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

impl CaughtError {
    /// Lambda failures arrive with a JSON cause (`{"errorType","errorMessage",...}`): keep the
    /// message, not the envelope.
    pub fn to_info(&self) -> ErrorInfo {
        ErrorInfo::from_states(&self.error, self.cause.as_deref())
    }
}

/// The state document as RecordResult sees it; `build` is absent when StartBuild failed.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PipelineState {
    pub plan: BuildPlan,
    #[serde(default)]
    pub build: Option<BuildState>,
    #[serde(default)]
    pub error: Option<CaughtError>,
    /// The deploy step's state, when it ran.
    #[serde(default)]
    pub deployment: Option<Deployment>,
    /// What a deploy task's Catch puts at `$.deployError`: the deployment FAILED, the build's
    /// status stays.
    #[serde(default)]
    pub deploy_error: Option<CaughtError>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecordInput {
    pub state: PipelineState,
    /// `$$.State.EnteredTime`: stable across retries, so a retried write writes the same bytes.
    pub recorded_at: DateTime<Utc>,
}

/// `detail` of EventBridge's "Step Functions Execution Status Change".
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatusChange {
    pub execution_arn: String,
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub stop_date: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

/// RecordResult runs from the state machine, and from EventBridge when an execution timed out
/// or was aborted (no state of the machine runs then, so the build must be stopped from here).
// One value per invocation, moved straight into the handler: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RecordEvent {
    State(RecordInput),
    ExecutionEnded(EventBridgeEvent<ExecutionStatusChange>),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RecordOutput {
    pub build_id: String,
    pub status: BuildStatus,
    /// `None` when there was nothing to record (an execution that never got past validation).
    pub record_key: Option<String>,
    /// The recorded deployment's status, `null` without one: the machine fails `DeployFailed`
    /// on FAILED. Always present, so the ASL's ResultSelector path exists.
    #[serde(default)]
    pub deployment_status: Option<DeploymentStatus>,
}

/// The rebuild's input: EventBridge's "Scheduled Event" (`detail` is `{}`; `time` is the
/// scheduled time, the same on every retry of one trigger).
pub type ScheduledEvent = EventBridgeEvent<Value>;

/// One agent in a rebuild's summary.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RebuildItem {
    /// `<project>/<agent>`
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The rebuild's output (also logged as one line).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RebuildSummary {
    /// `yyyymmddThhmm` of the schedule time: the run's execution names carry it.
    pub run: String,
    pub max_concurrency: usize,
    /// Executions of the build machine running before this run started any.
    pub running_before: usize,
    pub started: Vec<RebuildItem>,
    pub skipped: Vec<RebuildItem>,
    /// Left for the next scheduled run (the concurrency limit was reached).
    pub deferred: Vec<RebuildItem>,
}
