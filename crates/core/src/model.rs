//! The JSON each state receives and returns (camelCase, as the ASL's paths spell it).
//! The state document is `{plan, build?, error?}`: each task's ResultSelector rebuilds it.

use crate::domain::deployment::{Deployment, DeploymentStatus};
use crate::domain::fleet::Selection;
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

/// AwaitBuild's input (`lambda:invoke.waitForTaskToken`): the state, its task token and when
/// the wait began.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AwaitInput {
    pub plan: BuildPlan,
    pub build: BuildState,
    /// `$$.Task.Token`
    pub token: String,
    /// `$$.State.EnteredTime`
    pub parked_at: DateTime<Utc>,
}

/// AwaitBuild's function result (Step Functions ignores it: the wait's result is what
/// completes it); for the log.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AwaitOutput {
    /// The token is where the event handler finds it.
    pub parked: bool,
    /// The build had ended already: this invocation completed its own wait.
    pub completed: bool,
}

/// What the event handler did with one CodeBuild event (for the log; EventBridge ignores it).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum EventOutcome {
    /// The parked wait got CheckBuild's output for the ended build.
    Completed,
    /// The wait was closed already (the fallback or the other door came first).
    AlreadyClosed,
    /// No wait is parked (yet): AwaitBuild looks after it parks, so nothing is lost.
    NoWaiter,
    /// A phase change moved the live record forward.
    Progress,
    /// Nothing to do: another project's build, a build not ours, an older event.
    Ignored,
}

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

/// The fleet-rebuild machine's calls of the `rebuild` function (statemachine/rebuild.asl.json),
/// one per state: `{"step": "lock" | "plan" | "existing" | "summarize" | "unlock", ...}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum RebuildStep {
    /// TakeLock: the run's input as given, and the execution (`$$.Execution.Id`, `StartTime`).
    #[serde(rename_all = "camelCase")]
    Lock {
        #[serde(default)]
        input: Value,
        execution: String,
        started_at: DateTime<Utc>,
    },
    /// ListAgents: writes the manifest of run `run`.
    #[serde(rename_all = "camelCase")]
    Plan {
        run: String,
        #[serde(default)]
        selection: Selection,
    },
    /// ExistingRebuild: the build execution `name` a retried run found taken.
    Existing { name: String },
    /// Summarize: `error` is the Distributed Map's, when it failed.
    #[serde(rename_all = "camelCase")]
    Summarize {
        run: String,
        #[serde(default)]
        error: Option<Value>,
    },
    /// ReleaseLock: releases the lock if `execution` holds it.
    Unlock { execution: String },
}
