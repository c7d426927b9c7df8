//! What a build looks like while it runs ([`BuildState`], carried in the state machine) and
//! once recorded ([`BuildRecord`], `builds/<buildId>.json`).

use super::artifact::ArtifactRecord;
use super::deployment::Deployment;
use super::order::{newer_or_same, Rank};
use super::plan::{BuildPlan, Source, Trigger};
use super::provenance::{self, Provenance};
use super::request::{parse, ValidRequest};
use super::signature::ImageSignature;
use super::status::BuildStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::text::{truncate, MAX_MESSAGE_BYTES};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedPhase {
    pub name: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    /// The request field a rejection names (`InvalidRequest`), typed for every reader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ErrorInfo {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: truncate(message.into(), MAX_MESSAGE_BYTES),
            field: None,
        }
    }

    /// An error as Step Functions reports it (a Catch's `{Error, Cause}`, a failed execution's
    /// error and cause). Lambda failures carry a JSON cause (`{"errorType","errorMessage",...}`):
    /// keep the message, not the envelope.
    pub fn from_states(error: &str, cause: Option<&str>) -> Self {
        let cause = cause.unwrap_or_default();
        let message = serde_json::from_str::<Value>(cause)
            .ok()
            .and_then(|v| v.get("errorMessage")?.as_str().map(String::from))
            .unwrap_or_else(|| cause.to_string());
        Self::new(error, message)
    }
}

/// The build as the state machine carries it between StartBuild, CheckBuild and RecordResult.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildState {
    pub status: BuildStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codebuild_build_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    /// AwaitBuild's timeout (`TimeoutSecondsPath`): how long to wait for CodeBuild's completion
    /// event before CheckBuild looks (`domain::fallback`). Older states call it `waitSeconds`.
    #[serde(default, alias = "waitSeconds")]
    pub await_seconds: u64,
    pub polls: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_phase: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_phase: Option<FailedPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_url: Option<String>,
    /// CodeBuild's `LogsLocation`: the log's CloudWatch Logs group and stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// For REUSED: the build whose image is reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
    /// For REUSED: the tag of the reused image (a forced build's tag differs from the plan's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
    /// Where the build put BuildKit's SBOM and SLSA provenance of its image (ATTESTATIONS_URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestations_uri: Option<String>,
    /// A code build's artifact (AssembleArtifact's, or the one REUSED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
}

impl BuildState {
    /// Where this build's image came from (`domain::provenance`).
    pub fn provenance(&self, plan: &BuildPlan) -> Provenance {
        if !plan.artifact.is_container() {
            // A code artifact: its layer build (when this execution ran one) made what runs.
            return provenance::of_code(plan, self.codebuild_build_id.clone());
        }
        provenance::of_container(
            plan,
            self.codebuild_build_id.as_deref(),
            self.reused_from.as_deref(),
        )
    }

    /// A build this execution is about to start: RUNNING, nothing known of CodeBuild yet.
    pub fn starting(now: DateTime<Utc>) -> Self {
        BuildState {
            status: BuildStatus::Running,
            codebuild_build_id: None,
            started_at: now,
            deadline: now,
            await_seconds: 0,
            polls: 0,
            current_phase: None,
            phases: Vec::new(),
            failed_phase: None,
            log_url: None,
            logs: None,
            image_digest: None,
            image_uri: None,
            finished_at: None,
            reused_from: None,
            image_tag: None,
            attestations_uri: None,
            artifact: None,
            error: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    pub repository_uri: String,
    pub tag: String,
    /// The content-addressed tag, when `tag` is a forced build's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_tag: Option<String>,
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    /// `s3://<bucket>/attestations/<tag>/`: BuildKit's `sbom.spdx.json` and `provenance.json`
    /// of this image, stored beside it (docs/supply-chain.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestations: Option<String>,
    /// ECR's managed signature of this image (`domain::signature`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ImageSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeBuildRecord {
    #[serde(default)]
    pub build_id: Option<String>,
    #[serde(default)]
    pub current_phase: Option<String>,
    #[serde(default)]
    pub phases: Vec<Phase>,
    #[serde(default)]
    pub failed_phase: Option<FailedPhase>,
    #[serde(default)]
    pub log_url: Option<String>,
    /// CodeBuild's `LogsLocation`: where its log is, as CloudWatch Logs names it (readers use
    /// these, not the console link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogLocation>,
    #[serde(default)]
    pub polls: u32,
    /// agentbuild stopped this build (the execution ended without success while it ran).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
    /// StartBuild's marker: when it was about to ask CodeBuild for a build, before CodeBuild
    /// named one (`domain::start`). No other writer sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_requested_at: Option<DateTime<Utc>>,
}

/// A CloudWatch Logs stream (CodeBuild's `LogsLocation` `groupName` and `streamName`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLocation {
    pub group: String,
    pub stream: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timestamps {
    pub requested_at: DateTime<Utc>,
    /// When the source was submitted, when that is not `requested_at`: a scheduled rebuild
    /// counts as the request it rebuilds (it decides which build `latest.json` names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Durations {
    /// Requested to finished.
    #[serde(default)]
    pub total_seconds: Option<i64>,
    /// CodeBuild's QUEUED phase.
    #[serde(default)]
    pub queued_seconds: Option<i64>,
    /// Build started to finished.
    #[serde(default)]
    pub build_seconds: Option<i64>,
}

/// `builds/<buildId>.json` (and `agents/<project>/<agent>/latest.json` for successes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildRecord {
    pub schema_version: u32,
    pub build_id: String,
    pub execution_arn: String,
    pub trigger: Trigger,
    pub project: String,
    pub agent: String,
    pub status: BuildStatus,
    pub source: Source,
    pub image: ImageRecord,
    /// A code build's artifact (`kind: "code"`); a container build has only `image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactRecord>,
    pub codebuild: CodeBuildRecord,
    pub timestamps: Timestamps,
    pub durations: Durations,
    #[serde(default)]
    pub force: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// Where the artifact came from (`domain::provenance`); absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// The normalized request this build ran: enough to build the same image again (scheduled
    /// rebuilds). Absent in records written before it existed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "recorded_request"
    )]
    pub request: Option<ValidRequest>,
    /// The AgentCore Runtime deployment, for a request with `deploy` whose build succeeded
    /// (or was REUSED). Its failure never changes `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
    /// A promote: the build whose artifact this one deployed (it built nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
}

/// A record's `request`: read through the request's rules; one that no longer passes them
/// (a record written under older rules) reads as absent rather than making the record
/// unreadable — a rebuild then skips it with that reason.
fn recorded_request<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<ValidRequest>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.and_then(|v| parse(&v).ok()))
}

impl CodeBuildRecord {
    fn queued_seconds(&self) -> Option<i64> {
        let queued = self.phases.iter().find(|p| p.name == "QUEUED");
        queued.and_then(|p| p.duration_seconds)
    }

    /// What a record keeps of the CodeBuild build (nothing yet before StartBuild).
    fn of(build: Option<&BuildState>) -> Self {
        CodeBuildRecord {
            build_id: build.and_then(|b| b.codebuild_build_id.clone()),
            current_phase: build.and_then(|b| b.current_phase.clone()),
            phases: build.map(|b| b.phases.clone()).unwrap_or_default(),
            failed_phase: build.and_then(|b| b.failed_phase.clone()),
            log_url: build.and_then(|b| b.log_url.clone()),
            logs: build.and_then(|b| b.logs.clone()),
            polls: build.map(|b| b.polls).unwrap_or(0),
            stopped: false,
            start_requested_at: None,
        }
    }
}

impl BuildRecord {
    /// The record of `plan` given how far it got. `caught` is an error a Catch routed here: it
    /// makes the status ERROR whatever the build said. `now` is used only when nothing else says
    /// when the build finished, and must be stable across retries (the state's entered time).
    pub fn new(
        plan: &BuildPlan,
        build: Option<&BuildState>,
        caught: Option<ErrorInfo>,
        now: DateTime<Utc>,
    ) -> Self {
        let status = match (&caught, build) {
            (Some(_), _) | (None, None) => BuildStatus::Error,
            (None, Some(b)) => b.status,
        };
        let error = caught
            .or_else(|| build.and_then(|b| b.error.clone()))
            .or_else(|| {
                (build.is_none())
                    .then(|| ErrorInfo::new("InvalidState", "no build state to record"))
            });
        let finished_at = status
            .is_final()
            .then(|| build.and_then(|b| b.finished_at).unwrap_or(now));
        let started_at = build.map(|b| b.started_at);
        let secs = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| match (a, b) {
            (Some(a), Some(b)) => Some((b - a).num_seconds().max(0)),
            _ => None,
        };
        let codebuild = CodeBuildRecord::of(build);
        let queued_seconds = codebuild.queued_seconds();
        BuildRecord {
            schema_version: SCHEMA_VERSION,
            build_id: plan.build_id.clone(),
            execution_arn: plan.execution_arn.clone(),
            trigger: plan.trigger,
            project: plan.project.clone(),
            agent: plan.agent.clone(),
            status,
            source: plan.source.clone(),
            image: ImageRecord::of(plan, build),
            artifact: build.and_then(|b| b.artifact.clone()),
            codebuild,
            timestamps: Timestamps {
                requested_at: plan.requested_at,
                submitted_at: plan.submitted_at,
                started_at,
                finished_at,
            },
            durations: Durations {
                total_seconds: secs(Some(plan.requested_at), finished_at),
                queued_seconds,
                build_seconds: secs(started_at, finished_at),
            },
            force: plan.force,
            reused_from: build.and_then(|b| b.reused_from.clone()),
            error,
            provenance: build.map(|b| b.provenance(plan)),
            request: plan.request().ok(),
            deployment: None,
            promoted_from: plan.promoted_from.clone(),
        }
    }

    /// Whether a CodeBuild build this record names may still run although the record is final
    /// and no success: then it must be stopped (nothing is left running unobserved). FAILED,
    /// FAULT, STOPPED and TIMED_OUT are CodeBuild's own ends (or CheckBuild stopped the build
    /// at its deadline); ERROR is a step that failed while the build's state was unknown.
    pub fn must_stop_build(&self) -> bool {
        self.status == BuildStatus::Error
            && !self.codebuild.stopped
            && self.codebuild.build_id.is_some()
    }

    /// Ends a RUNNING record from outside the state machine (the execution timed out or was
    /// aborted), keeping what it knew about the build.
    pub fn finish(&mut self, status: BuildStatus, error: ErrorInfo, finished_at: DateTime<Utc>) {
        self.status = status;
        self.error = Some(error);
        self.timestamps.finished_at = Some(finished_at);
        let secs = |from: DateTime<Utc>| (finished_at - from).num_seconds().max(0);
        self.durations.total_seconds = Some(secs(self.timestamps.requested_at));
        self.durations.build_seconds = self.timestamps.started_at.map(secs);
    }

    /// Serialized the same way every time, so writing one outcome twice writes the same bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a record always serializes");
        v.push(b'\n');
        v
    }
}

impl BuildRecord {
    /// When the source this build built was submitted (design: "Results").
    pub fn submitted_at(&self) -> DateTime<Utc> {
        self.timestamps
            .submitted_at
            .unwrap_or(self.timestamps.requested_at)
    }
}

/// Records only move forward: whatever is stored at a build's key may be replaced until it is
/// final; a final record is never replaced (the first final writer wins; later ones keep it).
pub fn may_replace(current: &BuildRecord) -> bool {
    !current.status.is_final()
}

/// Whether `candidate` (a success) takes the agent's `latest.json` from `current`: the newer
/// submission wins; among builds of one submission, the one that finished last.
pub fn replaces_latest(current: &BuildRecord, candidate: &BuildRecord) -> bool {
    newer_or_same(&current.rank(), &candidate.rank())
}

impl BuildRecord {
    /// Where this build stands in the agent's order of builds (`domain::order`).
    pub fn rank(&self) -> Rank {
        Rank {
            build_id: self.build_id.clone(),
            submitted_at: self.submitted_at(),
            finished_at: self.timestamps.finished_at,
        }
    }
}

impl ImageRecord {
    /// The content-addressed tag: what decides whether this image can be reused.
    pub fn content_tag(&self) -> &str {
        self.content_tag.as_deref().unwrap_or(&self.tag)
    }
}

/// An image an unforced request can reuse instead of building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reuse {
    /// The build that produced the image (never a REUSED record: that would chain).
    pub from: String,
    pub tag: String,
    pub digest: Option<String>,
    pub uri: Option<String>,
    /// The reused build's BuildKit attestations (they describe the very same image).
    pub attestations: Option<String>,
}

/// The reuse rule: an unforced request whose content tag equals that of the agent's latest
/// successful build reuses that build's image, forced or not.
pub fn reuse(plan: &BuildPlan, latest: &BuildRecord) -> Option<Reuse> {
    if plan.force
        || !latest.status.is_success()
        || latest.image.content_tag() != plan.image.content_tag()
    {
        return None;
    }
    Some(Reuse {
        from: latest
            .reused_from
            .clone()
            .unwrap_or_else(|| latest.build_id.clone()),
        tag: latest.image.tag.clone(),
        digest: latest.image.digest.clone(),
        uri: latest.image.uri.clone(),
        attestations: latest.image.attestations.clone(),
    })
}

pub fn build_key(build_id: &str) -> String {
    format!("builds/{build_id}.json")
}

pub fn latest_key(project: &str, agent: &str) -> String {
    format!("agents/{project}/{agent}/latest.json")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::plan::ImageRef;
    use crate::domain::request::Platform;

    pub(crate) fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    pub(crate) fn plan() -> BuildPlan {
        BuildPlan {
            build_id: "b-1".into(),
            execution_arn: "arn:aws:states:us-east-1:123456789012:execution:agentbuild:b-1".into(),
            trigger: Trigger::Api,
            project: "nexus-ai".into(),
            agent: "sales".into(),
            source: Source {
                uri: "s3://bkt/sources/nexus-ai/sales/x.zip".into(),
                bucket: "bkt".into(),
                key: "sources/nexus-ai/sales/x.zip".into(),
                sha256: "ab".repeat(32),
                version_id: Some("v-1".into()),
            },
            image: ImageRef {
                repository_uri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/agentbuild".into(),
                tag: "sales-0123456789abcdef01234567".into(),
                content_tag: None,
            },
            dockerfile: "Dockerfile".into(),
            platform: Platform::LinuxArm64,
            build_args: Default::default(),
            build_secrets: Default::default(),
            entry_point: None,
            force: false,
            idempotency_key: None,
            requested_at: t("2026-11-28T10:00:00Z"),
            submitted_at: None,
            deadline_seconds: None,
            deploy: None,
            artifact: Default::default(),
            promoted_from: None,
        }
    }

    pub(crate) fn running() -> BuildState {
        BuildState {
            codebuild_build_id: Some("agentbuild:1".into()),
            deadline: t("2026-11-28T11:35:05Z"),
            await_seconds: 10,
            ..BuildState::starting(t("2026-11-28T10:00:05Z"))
        }
    }

    fn succeeded(plan: &BuildPlan, tag_suffix: &str) -> BuildRecord {
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        b.finished_at = Some(t("2026-11-28T10:05:05Z"));
        b.image_digest = Some(format!("sha256:{tag_suffix}"));
        let mut p = plan.clone();
        if !tag_suffix.is_empty() {
            p.image.content_tag = Some(p.image.tag.clone());
            p.image.tag = format!("{}-{tag_suffix}", p.image.tag);
            p.force = true;
        }
        BuildRecord::new(&p, Some(&b), None, t("2026-11-28T10:06:00Z"))
    }

    fn success_at(id: &str, submitted: &str, finished: &str) -> BuildRecord {
        let mut r = succeeded(&plan(), "");
        r.build_id = id.into();
        r.timestamps.requested_at = t(submitted);
        r.timestamps.finished_at = Some(t(finished));
        r
    }

    #[test]
    fn latest_moves_to_a_newer_submission_whatever_the_finishing_order() {
        let old = success_at("old", "2026-11-28T10:00:00Z", "2026-11-28T10:30:00Z");
        let new = success_at("new", "2026-11-28T10:01:00Z", "2026-11-28T10:05:00Z");
        assert!(replaces_latest(&old, &new));
        assert!(
            !replaces_latest(&new, &old),
            "an older submission never takes latest back"
        );
    }

    #[test]
    fn a_rebuild_counts_as_the_submission_it_rebuilds() {
        let user = success_at("user", "2026-11-28T12:00:00Z", "2026-11-28T12:05:00Z");
        let mut rebuild = success_at("sched", "2026-11-28T13:00:00Z", "2026-11-28T13:10:00Z");
        rebuild.timestamps.submitted_at = Some(t("2026-11-28T09:00:00Z"));
        assert!(
            !replaces_latest(&user, &rebuild),
            "rebuild of older source finishing later"
        );
        let mut of_same = rebuild.clone();
        of_same.timestamps.submitted_at = Some(t("2026-11-28T12:00:00Z"));
        assert!(
            replaces_latest(&user, &of_same),
            "same submission: the one finished last"
        );
        assert!(!replaces_latest(&of_same, &user));
    }

    #[test]
    fn an_error_with_a_build_that_may_run_must_stop_it_once() {
        let caught = BuildRecord::new(
            &plan(),
            Some(&running()),
            Some(ErrorInfo::new("States.TaskFailed", "S3 down")),
            t("2026-11-28T10:01:00Z"),
        );
        assert!(caught.must_stop_build());
        let mut stopped = caught.clone();
        stopped.codebuild.stopped = true;
        assert!(!stopped.must_stop_build());
        let mut failed = caught.clone();
        failed.status = BuildStatus::Failed;
        assert!(!failed.must_stop_build(), "CodeBuild ended it itself");
        assert!(!succeeded(&plan(), "").must_stop_build());
        let running_rec =
            BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:01:00Z"));
        assert!(!running_rec.must_stop_build(), "not final");
    }

    #[test]
    fn a_final_record_is_never_replaced() {
        assert!(may_replace(&BuildRecord::new(
            &plan(),
            Some(&running()),
            None,
            t("2026-11-28T10:00:00Z")
        )));
        assert!(!may_replace(&succeeded(&plan(), "")));
    }

    #[test]
    fn an_unforced_request_reuses_the_latest_build_of_its_content() {
        let latest = succeeded(&plan(), "");
        let r = reuse(&plan(), &latest).expect("reused");
        assert_eq!(r.from, "b-1");
        assert_eq!(r.tag, plan().image.tag);
    }

    #[test]
    fn an_unforced_request_reuses_a_forced_builds_new_tag() {
        let latest = succeeded(&plan(), "r0123456789");
        assert_eq!(
            latest.image.tag,
            format!("{}-r0123456789", plan().image.tag)
        );
        assert_eq!(latest.image.content_tag(), plan().image.tag);
        let r = reuse(&plan(), &latest).expect("reused");
        assert_eq!(r.tag, latest.image.tag);
        assert_eq!(r.digest.as_deref(), Some("sha256:r0123456789"));
    }

    #[test]
    fn reused_from_names_the_build_that_made_the_image_not_a_reuse() {
        let mut latest = succeeded(&plan(), "");
        latest.status = BuildStatus::Reused;
        latest.build_id = "b-2".into();
        latest.reused_from = Some("b-1".into());
        assert_eq!(reuse(&plan(), &latest).unwrap().from, "b-1");
    }

    #[test]
    fn force_other_content_or_a_failure_never_reuses() {
        let latest = succeeded(&plan(), "");
        let mut forced = plan();
        forced.force = true;
        assert_eq!(reuse(&forced, &latest), None);
        let mut other = plan();
        other.image.tag = "sales-ffffffffffffffffffffffff".into();
        assert_eq!(reuse(&other, &latest), None);
        let mut failed = latest.clone();
        failed.status = BuildStatus::Failed;
        assert_eq!(reuse(&plan(), &failed), None);
    }

    #[test]
    fn a_reused_record_names_the_reused_image_and_keeps_its_content_tag() {
        let mut b = running();
        b.status = BuildStatus::Reused;
        b.image_tag = Some(format!("{}-r0123456789", plan().image.tag));
        let r = BuildRecord::new(&plan(), Some(&b), None, t("2026-11-28T10:06:00Z"));
        assert_eq!(r.image.tag, format!("{}-r0123456789", plan().image.tag));
        assert_eq!(r.image.content_tag(), plan().image.tag);
        let plain = BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:06:00Z"));
        assert_eq!(
            plain.image.content_tag, None,
            "unforced records keep their shape"
        );
    }

    #[test]
    fn success_record_carries_image_phases_and_durations() {
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        b.finished_at = Some(t("2026-11-28T10:05:05Z"));
        b.image_digest = Some("sha256:ff".into());
        b.phases = vec![Phase {
            name: "QUEUED".into(),
            status: Some("SUCCEEDED".into()),
            started_at: None,
            ended_at: None,
            duration_seconds: Some(3),
        }];
        let r = BuildRecord::new(&plan(), Some(&b), None, t("2026-11-28T10:06:00Z"));
        assert_eq!(r.status, BuildStatus::Succeeded);
        assert_eq!(r.image.digest.as_deref(), Some("sha256:ff"));
        assert_eq!(r.durations.total_seconds, Some(305));
        assert_eq!(r.durations.build_seconds, Some(300));
        assert_eq!(r.durations.queued_seconds, Some(3));
        assert_eq!(r.error, None);
    }

    #[test]
    fn caught_error_wins_over_the_build_status() {
        let r = BuildRecord::new(
            &plan(),
            Some(&running()),
            Some(ErrorInfo::new("States.Timeout", "task timed out")),
            t("2026-11-28T10:01:00Z"),
        );
        assert_eq!(r.status, BuildStatus::Error);
        assert_eq!(r.error.unwrap().kind, "States.Timeout");
        assert_eq!(r.timestamps.finished_at, Some(t("2026-11-28T10:01:00Z")));
        assert_eq!(r.codebuild.build_id.as_deref(), Some("agentbuild:1"));
    }

    #[test]
    fn running_record_has_no_finish_time() {
        let r = BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:01:00Z"));
        assert_eq!(r.status, BuildStatus::Running);
        assert_eq!(r.timestamps.finished_at, None);
        assert_eq!(r.durations.total_seconds, None);
    }

    #[test]
    fn same_outcome_serializes_to_the_same_bytes() {
        let a = BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:01:00Z"));
        let b = BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:01:00Z"));
        assert_eq!(a.to_json(), b.to_json());
        let back: BuildRecord = serde_json::from_slice(&a.to_json()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn a_record_keeps_the_request_that_rebuilds_it() {
        let mut p = plan();
        p.build_args.insert("PY".into(), "3.12".into());
        p.force = false;
        let r = BuildRecord::new(&p, Some(&running()), None, t("2026-11-28T10:01:00Z"));
        let req = r.request.clone().unwrap();
        assert_eq!(
            req.source.to_string(),
            "s3://bkt/sources/nexus-ai/sales/x.zip"
        );
        let again = serde_json::to_value(&req).unwrap();
        assert_eq!(again["platform"], "linux/arm64");
        assert_eq!(again["buildArgs"]["PY"], "3.12");
        assert_eq!(again["force"], false);
        assert_eq!(parse(&again).unwrap(), req);
        // The stored record reads back with the same typed request.
        let back: BuildRecord = serde_json::from_slice(&r.to_json()).unwrap();
        assert_eq!(back.request, Some(req));
        // A request that no longer passes the rules reads as absent, the record still reads.
        let mut bent: Value = serde_json::from_slice(&r.to_json()).unwrap();
        bent["request"]["agent"] = serde_json::json!("Not A Name");
        let back: BuildRecord = serde_json::from_value(bent).unwrap();
        assert_eq!(back.request, None);
        // Records written before the field existed still read.
        let mut old: Value = serde_json::from_slice(&r.to_json()).unwrap();
        old.as_object_mut().unwrap().remove("request");
        let back: BuildRecord = serde_json::from_value(old).unwrap();
        assert_eq!(back.request, None);
    }

    #[test]
    fn messages_are_truncated_on_char_boundaries() {
        let s = truncate("é".repeat(10), 5);
        assert_eq!(s, "éé…");
    }
}
