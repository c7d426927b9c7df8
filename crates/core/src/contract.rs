//! The API's answers as typed values: the API handler serializes them, the CLI deserializes
//! them (and builds the same values itself in direct mode). One definition, every door. Also
//! the `Build Finished` event subscribers receive.

use crate::domain::artifact::ArtifactRecord;
use crate::domain::deployment::Deployment;
use crate::domain::ending::Reported;
use crate::domain::plan::Trigger;
use crate::domain::record::{build_key, BuildRecord, ErrorInfo, LogLocation};
use crate::domain::signature::ImageSignature;
use crate::domain::status::BuildStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `202` to `POST /projects/{project}/builds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub build_id: String,
    pub execution_arn: String,
    pub status_url: String,
    /// `true` when the same request (or idempotency key) had started this execution already:
    /// nothing new was started. Absent in an older API's answer: read as `false`.
    #[serde(default)]
    pub existing: bool,
}

impl Accepted {
    pub fn new(project: &str, build_id: &str, execution_arn: &str, existing: bool) -> Self {
        Self {
            build_id: build_id.to_string(),
            execution_arn: execution_arn.to_string(),
            status_url: build_path(project, build_id),
            existing,
        }
    }
}

/// Where a build's status is: the route a caller allowed its project may call.
pub fn build_path(project: &str, build_id: &str) -> String {
    format!("/projects/{project}/builds/{build_id}")
}

/// `200` to `GET /projects/{project}/builds/{buildId}/logs`: one bounded page of the build's
/// CloudWatch Logs stream, oldest first. `nextToken` asks for the lines after this page (the
/// same token back means no new line yet; a running build's stream grows). Without a stream
/// yet (the build has not started, or was REUSED), `events` is empty and there is no token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildLogs {
    pub build_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogLocation>,
    pub events: Vec<LogEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// One log line: CloudWatch's timestamp (ms since the epoch) and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    pub message: String,
}

/// Every refusal: `{"error": {"code", "field"?, "message", "status"?}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    /// The build's final status, when the refusal is about it (`AlreadyFinished`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Reported>,
}

/// Where a build that has no final record is (derived, not read from the execution history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// ValidateRequest / StartBuild: no CodeBuild build yet.
    Starting,
    /// CodeBuild runs.
    Building,
    /// The execution has ended and its record is being closed.
    Recording,
}

/// `GET /projects/{p}/builds/{id}` while the build has no final record: RUNNING, REJECTED (the execution
/// failed validation; no record is ever written), or a final status known from the execution
/// before its record is closed. Fields are in alphabetical order, as the API always wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub build_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codebuild: Option<LiveCodeBuild>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    pub execution_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// CodeBuild's current phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Stage>,
    /// `RUNNING`, `REJECTED`, or a final build status.
    pub status: Reported,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveCodeBuild {
    pub build_id: Option<String>,
    pub log_url: Option<String>,
    /// The log's CloudWatch Logs group and stream (CodeBuild's `LogsLocation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogLocation>,
}

/// `GET /builds/{id}`: the record once final, else the live status.
// One value per answer, moved straight to its reader: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum BuildAnswer {
    Record(Box<BuildRecord>),
    Live(LiveStatus),
}

impl BuildAnswer {
    /// Reads the API's answer: a record has a `schemaVersion`, a live status has none.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let v: serde_json::Value = serde_json::from_slice(bytes)?;
        if v.get("schemaVersion").is_some() {
            serde_json::from_value(v).map(|r| BuildAnswer::Record(Box::new(r)))
        } else {
            serde_json::from_value(v).map(BuildAnswer::Live)
        }
    }
}

/// The `detail` of the `Build Finished` event every writer of a final record puts on
/// EventBridge (`source` [`BuildFinished::SOURCE`], `detail-type`
/// [`BuildFinished::DETAIL_TYPE`]). Subscribers dedupe on `buildId`: delivery is at least once.
/// Unknown fields are accepted, so a subscriber keeps parsing when the detail grows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildFinished {
    pub build_id: String,
    pub project: String,
    pub agent: String,
    pub status: BuildStatus,
    pub image: FinishedImage,
    /// A code build's artifact (the record's `artifact`): the exact S3 version, its SHA-256,
    /// size and dependency layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactRecord>,
    /// The AgentCore deployment, for a request with `deploy` (the record's `deployment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
    /// `builds/<buildId>.json` in the stack's bucket: the whole record.
    pub record_key: String,
}

/// The image a finished build names (digest and uri are `null` when none was pushed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishedImage {
    pub repository_uri: String,
    pub tag: String,
    pub digest: Option<String>,
    pub uri: Option<String>,
    /// `s3://<bucket>/attestations/<tag>/`: BuildKit's SBOM (`sbom.spdx.json`) and SLSA
    /// provenance (`provenance.json`) of the image (the record's `image.attestations`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestations: Option<String>,
    /// ECR's managed signature of the image (the record's `image.signature`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ImageSignature>,
}

impl BuildFinished {
    pub const SOURCE: &'static str = "agentbuild";
    pub const DETAIL_TYPE: &'static str = "Build Finished";

    /// The announcement of a final record.
    pub fn of(record: &BuildRecord) -> Self {
        Self {
            build_id: record.build_id.clone(),
            project: record.project.clone(),
            agent: record.agent.clone(),
            status: record.status,
            image: FinishedImage {
                repository_uri: record.image.repository_uri.clone(),
                tag: record.image.tag.clone(),
                digest: record.image.digest.clone(),
                uri: record.image.uri.clone(),
                attestations: record.image.attestations.clone(),
                signature: record.image.signature.clone(),
            },
            artifact: record.artifact.clone(),
            deployment: record.deployment.clone(),
            record_key: build_key(&record.build_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepted_points_at_the_status_url() {
        let a = Accepted::new("nexus-ai", "api-1", "arn:x", true);
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({"buildId": "api-1", "executionArn": "arn:x",
                   "statusUrl": "/projects/nexus-ai/builds/api-1",
                   "existing": true})
        );
    }

    #[test]
    fn an_error_body_omits_an_absent_field() {
        let e = ErrorBody {
            error: ApiError {
                code: "NotFound".into(),
                field: None,
                message: "no build x".into(),
                status: None,
            },
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"error":{"code":"NotFound","message":"no build x"}}"#
        );
    }

    #[test]
    fn build_finished_carries_the_images_attestations_and_signature() {
        use crate::domain::record::tests::{plan, running, t};
        use crate::domain::signature::{ImageSignature, SignatureStatus};
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        b.image_digest = Some("sha256:abab".into());
        b.attestations_uri = Some("s3://own/attestations/sales-abc/".into());
        let mut record = BuildRecord::new(&plan(), Some(&b), None, t("2026-11-28T10:05:00Z"));
        record.image.signature = Some(ImageSignature {
            status: SignatureStatus::Complete,
            signing_profile_arn: Some("arn:aws:signer:us-east-1:1:/signing-profiles/p".into()),
            digest: Some("sha256:5151".into()),
            reference: Some("repo@sha256:5151".into()),
            reason: None,
        });
        let detail = serde_json::to_value(BuildFinished::of(&record)).unwrap();
        assert_eq!(
            detail["image"]["attestations"],
            json!("s3://own/attestations/sales-abc/")
        );
        assert_eq!(
            detail["image"]["signature"],
            json!({"status": "COMPLETE", "signingProfileArn": "arn:aws:signer:us-east-1:1:/signing-profiles/p",
                   "digest": "sha256:5151", "reference": "repo@sha256:5151"})
        );
        // The record and its announcement say the same of the image.
        assert_eq!(
            detail["image"]["signature"],
            serde_json::to_value(&record.image.signature).unwrap()
        );
    }

    #[test]
    fn a_live_status_round_trips_and_is_told_from_a_record() {
        let live = LiveStatus {
            agent: Some("a".into()),
            build_id: "b".into(),
            codebuild: Some(LiveCodeBuild {
                build_id: Some("p:1".into()),
                log_url: None,
                logs: None,
            }),
            elapsed_seconds: Some(3),
            error: None,
            execution_arn: "arn".into(),
            finished_at: None,
            phase: Some("BUILD".into()),
            project: Some("p".into()),
            requested_at: None,
            state: Some(Stage::Building),
            status: Reported::Running,
            trigger: Some(Trigger::Api),
        };
        let bytes = serde_json::to_vec(&live).unwrap();
        assert_eq!(
            BuildAnswer::from_json(&bytes).unwrap(),
            BuildAnswer::Live(live)
        );
    }
}
