//! The JSON each state receives and returns (camelCase, as the ASL's paths spell it).
//! The state document: `plan` (ValidateRequest's, written once), `build` (StartBuild's
//! `codebuildBuildId` and `observed`), `deployment`, `error`… — each task writes its own path
//! and returns only what it learned.

use crate::domain::artifact::{ArtifactRecord, DependencyLayer};
use crate::domain::deployment::{Deployment, DeploymentStatus};
use crate::domain::ending::ExecutionStatus;
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

/// `{plan}`: ValidateRequest's output, StartBuild's input (the ASL keeps it at `$.plan`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanState {
    pub plan: BuildPlan,
}

/// StartBuild's input: the plan, and for a code build whose dependency layer is missing
/// (StartLayerBuild) the layer to build — PrepareCode's `$.code.dependencies`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StartInput {
    pub plan: BuildPlan,
    #[serde(default)]
    pub dependencies: Option<DependencyLayer>,
}

/// `$.code`: PrepareCode's result — the context's dependency layer (`None`: nothing to
/// install) and, when this exact input was assembled before (and `force` is false), the
/// artifact to reuse.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CodeSlot {
    #[serde(default)]
    pub dependencies: Option<DependencyLayer>,
    #[serde(default)]
    pub reusable: Option<ArtifactRecord>,
}

/// AssembleArtifact's input: the whole state document (`$`: the code path reaches it with or
/// without a layer build, so `$.build` may be absent) and when the state was entered.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AssembleInput {
    pub state: CodeState,
    pub entered_at: DateTime<Utc>,
}

/// The state document as AssembleArtifact reads it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CodeState {
    pub plan: BuildPlan,
    pub code: CodeSlot,
    #[serde(default)]
    pub build: Option<LayerSlot>,
}

/// `$.build` on the code path before AssembleArtifact: StartBuild's slot after a layer build,
/// or NoLayerBuild's (`codebuildBuildId` null, nothing observed).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LayerSlot {
    #[serde(default)]
    pub codebuild_build_id: Option<String>,
    #[serde(default)]
    pub observed: Option<Observation>,
}

/// StartBuild's output. The ASL keeps it at `$.build`: `codebuildBuildId` (null when no build
/// was started) is the build this execution started — only StartBuild writes it, and every
/// later look and callback is checked against it; `observed.state` is the build as last seen.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StartOutput {
    pub codebuild_build_id: Option<String>,
    pub build: BuildState,
}

/// What a look at the build returns (CheckBuild's output) and what completes AwaitBuild's wait
/// (the callback payload): the build's observed state and nothing else. The ASL keeps it at
/// `$.build.observed.state`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BuildOutput {
    pub build: BuildState,
}

/// CheckBuild's input: the plan, the build this execution started (StartBuild's
/// `codebuildBuildId`, never the observed state's) and the build as last seen.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckInput {
    pub plan: BuildPlan,
    pub codebuild_build_id: String,
    pub build: BuildState,
}

/// AwaitBuild's input (`lambda:invoke.waitForTaskToken`): CheckBuild's, its task token and
/// when the wait began.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AwaitInput {
    pub plan: BuildPlan,
    pub codebuild_build_id: String,
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
    /// The parked wait got the ended build's observed state.
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

/// DeployRuntime's and CheckRuntime's output: the deployment only (the ASL keeps it at
/// `$.deployment.state`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeployOutput {
    pub deployment: Deployment,
}

/// CheckRuntime's input.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckRuntimeInput {
    pub plan: BuildPlan,
    pub build: BuildState,
    pub deployment: Deployment,
}

/// `$.build`: StartBuild's `codebuildBuildId` beside the build as last observed.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BuildSlot {
    #[serde(default)]
    pub codebuild_build_id: Option<String>,
    pub observed: Observation,
}

impl BuildSlot {
    /// The slot as StartBuild leaves it: `state` observed, naming its own build.
    pub fn of(state: BuildState) -> Self {
        Self {
            codebuild_build_id: state.codebuild_build_id.clone(),
            observed: Observation { state, failures: 0 },
        }
    }
}

/// `$.build.observed`: written by StartBuild, AwaitBuild, CheckBuild (and CheckFailed, which
/// counts failed rounds in a row).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub state: BuildState,
    #[serde(default)]
    pub failures: u32,
}

/// `$.deployment`: DeployRuntime's and CheckRuntime's result.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSlot {
    pub state: Deployment,
}

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
    pub build: Option<BuildSlot>,
    #[serde(default)]
    pub error: Option<CaughtError>,
    /// The deploy step's state, when it ran.
    #[serde(default)]
    pub deployment: Option<DeploymentSlot>,
    /// What a deploy task's Catch puts at `$.deployError`: the deployment FAILED, the build's
    /// status stays.
    #[serde(default)]
    pub deploy_error: Option<CaughtError>,
}

impl PipelineState {
    /// The build as last observed. The machine routes a callback that names another build to
    /// CheckBuild; should one still get here, it is not this execution's build: the record
    /// keeps the build this execution started, as an error (RecordResult stops it).
    pub fn build(&self) -> Option<BuildState> {
        let slot = self.build.as_ref()?;
        let mut state = slot.observed.state.clone();
        if state.codebuild_build_id != slot.codebuild_build_id {
            state.error = Some(ErrorInfo::new(
                "CallbackMismatch",
                format!(
                    "the wait was completed for build {}, not this execution's",
                    state.codebuild_build_id.as_deref().unwrap_or("(none)")
                ),
            ));
            state.codebuild_build_id = slot.codebuild_build_id.clone();
            state.status = BuildStatus::Error;
            state.image_digest = None;
            state.image_uri = None;
        }
        Some(state)
    }
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
    pub status: ExecutionStatus,
    #[serde(default)]
    pub stop_date: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

/// RecordResult runs from the state machine (`{state, recordedAt}`: record), and from
/// EventBridge when an execution failed, timed out or was aborted (close: no state of the
/// machine runs then, so the build must be stopped from here). The kind is named by the input
/// itself — EventBridge's `detail-type` — and each kind is parsed as its own type, so a
/// malformed input fails naming the field path.
// One value per invocation, moved straight into the handler: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(try_from = "Value", untagged)]
pub enum RecordEvent {
    State(RecordInput),
    ExecutionEnded(EventBridgeEvent<ExecutionStatusChange>),
}

/// EventBridge's detail type for an execution's end.
pub const EXECUTION_STATUS_CHANGE: &str = "Step Functions Execution Status Change";

impl TryFrom<Value> for RecordEvent {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        match value.get("detail-type").map(|t| t.as_str()) {
            None => parse("record", value).map(RecordEvent::State),
            Some(Some(EXECUTION_STATUS_CHANGE)) => {
                parse("close", value).map(RecordEvent::ExecutionEnded)
            }
            Some(other) => Err(format!(
                "close: detail-type: expected {EXECUTION_STATUS_CHANGE:?}, got {other:?}"
            )),
        }
    }
}

/// `value` as a `T`; the error names the kind and the field path (`state.plan.buildId: …`).
pub fn parse<T: serde::de::DeserializeOwned>(kind: &str, value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        format!("{kind}: {path}: {}", e.into_inner())
    })
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
