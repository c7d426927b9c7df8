//! What the handlers need from AWS, as traits: the adapters implement them with the SDK, the
//! handler tests with in-memory fakes.

// Only our handlers call these (one invocation at a time), so the futures need no `Send` bound.
#![allow(async_fn_in_trait)]

use crate::contract::BuildFinished;
use crate::domain::request::RequestError;
use crate::Error;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// Hex SHA-256 of the whole object, when S3 holds a full-object checksum for it.
    pub sha256: Option<String>,
    /// The object version HeadObject saw; `None` in a bucket without versioning.
    pub version_id: Option<String>,
}

impl ObjectMeta {
    /// The rules a source object must pass beside existing: its size, and a version id, since
    /// the version validated is the one CodeBuild builds (an upload that replaces the key
    /// later changes nothing for this build). Returns that version.
    pub fn check_source(&self, max_bytes: u64) -> Result<String, RequestError> {
        if self.size > max_bytes {
            return Err(RequestError::new(
                "source",
                format!("is {} bytes; at most {max_bytes} allowed", self.size),
            ));
        }
        match self.version_id.as_deref() {
            Some(v) if !v.is_empty() && v != "null" => Ok(v.to_string()),
            _ => Err(RequestError::new(
                "source",
                "its bucket must have versioning enabled: the validated object version is the one built",
            )),
        }
    }
}

/// An object of the own bucket with its ETag, for a conditional write back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub bytes: Vec<u8>,
    pub etag: String,
}

/// When a conditional write may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition<'a> {
    /// Only if no object has the key (`If-None-Match: *`).
    Absent,
    /// Only if the object still has this ETag (`If-Match`).
    Matches(&'a str),
}

pub trait ObjectStore {
    /// `None` when the object does not exist.
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>, Error>;
    /// Version `version_id` of the object; `None` when the object or that version is gone.
    async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<ObjectMeta>, Error>;
    /// Reads version `version_id` of the object through and hashes it.
    async fn sha256(&self, bucket: &str, key: &str, version_id: &str) -> Result<String, Error>;
    /// From the stack's own bucket; `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// Into the stack's own bucket.
    async fn put_json(&self, key: &str, body: Vec<u8>) -> Result<(), Error>;
    /// From the stack's own bucket with its ETag; `None` when absent.
    async fn get_tagged(&self, key: &str) -> Result<Option<Tagged>, Error>;
    /// A conditional write into the own bucket: `false` when the condition did not hold
    /// (another writer came first): read again and decide again.
    async fn put_json_if(
        &self,
        key: &str,
        body: Vec<u8>,
        condition: Precondition<'_>,
    ) -> Result<bool, Error>;
    /// Every key under `prefix` in the stack's own bucket (all pages), in key order.
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, Error>;
    /// The stack's own bucket.
    fn own_bucket(&self) -> &str;
    /// Places (`latest`) or lifts the legal hold that keeps version `version_id` of `key` in the
    /// own bucket from expiring (`domain::retention`; the current version when `None`: a record
    /// from before versions were recorded); `false` when there is no such object or version.
    async fn hold_latest(
        &self,
        key: &str,
        version_id: Option<&str>,
        latest: bool,
    ) -> Result<bool, Error>;
}

/// Whole objects to and from local files (Lambda's /tmp): code artifacts stream through disk,
/// never through memory.
pub trait ObjectFiles {
    /// Writes version `version_id` of `bucket`/`key` (the current version when `None`) to
    /// `path`; the version written, or `None` when the object (or that version) is absent.
    async fn download(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        path: &std::path::Path,
    ) -> Result<Option<String>, Error>;
    /// Uploads `path` to `key` of the own bucket (S3 checks `sha256`, hex, on arrival); the
    /// version S3 gave it.
    async fn upload(
        &self,
        key: &str,
        path: &std::path::Path,
        sha256: &str,
    ) -> Result<Option<String>, Error>;
}

/// An image of the stack's repository, by tag (`domain::images`).
pub use crate::domain::images::ImageId;
use crate::domain::scan_gate::ScanReport;
use crate::domain::signature::SigningFacts;

/// ECR images by tag (the adapter owns the client).
pub trait Images {
    /// The digest of the image `image` names; `None` when no image has that tag (or the
    /// repository is gone).
    async fn digest(&self, image: &ImageId) -> Result<Option<String>, Error>;
    /// Adds tag `tag` to the image `image` names (the same manifest); `false` when that image
    /// does not exist. Adding a tag it already has is no error.
    async fn add_tag(&self, image: &ImageId, tag: &str) -> Result<bool, Error>;
    /// Removes tag `image.tag`; the image stays under its other tags. A tag that does not
    /// exist is no error.
    async fn remove_tag(&self, image: &ImageId) -> Result<(), Error>;
}

/// The registry's vulnerability scan of an image (`domain::scan_gate`).
pub trait ImageScans {
    /// The findings of the image `repository@digest` (repository name, not URI); a scan that
    /// is missing, running or failed is a report with status UNAVAILABLE, not an error.
    async fn findings(&self, repository: &str, digest: &str) -> Result<ScanReport, Error>;
}

/// The registry's managed signature of an image (`domain::signature`).
pub trait ImageSignatures {
    /// ECR's signing statuses of `repository@digest` (repository name, not URI) and, once one
    /// is COMPLETE, the digests of its Notation signature referrers.
    async fn signing(&self, repository: &str, digest: &str) -> Result<SigningFacts, Error>;
}

/// One StartBuild: the project's static buildspec, per-build values as environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    pub idempotency_token: String,
    /// `bucket/key` of the source zip; `None`: the project's own (no source: a dependency
    /// layer's build reads only what its buildspec fetches).
    pub source_location: Option<String>,
    /// The S3 object version validated: the one CodeBuild fetches.
    pub source_version: Option<String>,
    /// PLAINTEXT variables: never a secret's value.
    pub environment: BTreeMap<String, String>,
    /// SECRETS_MANAGER variables: name -> secret reference (an ARN), which CodeBuild resolves
    /// with its role when the build starts; the value never passes through agentbuild. Any
    /// project's build may use them (the code build's install step does likewise).
    pub secrets: BTreeMap<String, String>,
    pub timeout_minutes: i32,
    pub queued_timeout_minutes: i32,
}

/// What CodeBuild says of a build (a domain value: the rules in `domain::observe` read it).
pub use crate::domain::observe::BuildInfo;

/// CodeBuild builds by id: look at one, stop one (any caller; no project needed).
pub trait BuildService {
    /// `None` when CodeBuild does not know the id.
    async fn get(&self, id: &str) -> Result<Option<BuildInfo>, Error>;
    async fn stop(&self, id: &str) -> Result<(), Error>;
}

/// Builds of the stack's project: start one, find the one an execution started (StartBuild
/// alone needs the project, so only it is built with one).
pub trait BuildStarter: BuildService {
    /// Returns CodeBuild's build id.
    async fn start(&self, req: &StartRequest) -> Result<String, Error>;
    /// The id of a recent build of the project started for execution `build_id` (its
    /// `AGENTBUILD_BUILD_ID` environment variable), if any.
    async fn find_started(&self, build_id: &str) -> Result<Option<String>, Error>;
}

/// An execution's status is a domain value: the ending rule (`domain::ending`) reads it.
pub use crate::domain::ending::ExecutionStatus;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionInfo {
    pub arn: String,
    pub name: String,
    pub status: ExecutionStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// The input JSON text.
    pub input: Option<String>,
    /// For a failed execution: the error name and its cause.
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// What StartExecution did with a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// An execution of that name and input runs: just started, or already running (Step
    /// Functions answers an identical start with the running execution).
    Running { arn: String },
    /// The name belongs to an execution that has closed or has another input (names stay
    /// taken for 90 days).
    NameTaken,
}

/// Executions of the build state machine (the adapter owns its ARN).
pub trait Executions {
    /// Starts execution `name` with `input` (JSON text).
    async fn start(&self, name: &str, input: &str) -> Result<StartOutcome, Error>;
    /// `None` when the machine has no execution of that name.
    async fn describe(&self, name: &str) -> Result<Option<ExecutionInfo>, Error>;
    /// Any execution by its ARN (another machine's too: the fleet rebuild's lock holder);
    /// `None` when it does not exist.
    async fn describe_arn(&self, arn: &str) -> Result<Option<ExecutionInfo>, Error>;
    /// Names of the machine's RUNNING executions (all pages).
    async fn running(&self) -> Result<Vec<String>, Error>;
    /// Stops (aborts) execution `name` with `error` and `cause`, as its execution's error and
    /// cause; `false` when the machine has no execution of that name.
    async fn stop(&self, name: &str, error: &str, cause: &str) -> Result<bool, Error>;
}

/// One page of a log stream (`contract::BuildLogs` carries it to the caller).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogPage {
    pub events: Vec<crate::contract::LogEvent>,
    pub next_token: Option<String>,
}

/// Build logs in CloudWatch Logs (GetLogEvents), read forwards from the stream's start.
pub trait BuildLogs {
    /// At most `limit` lines after `token` (from the start without one). `None`: no such
    /// stream (yet). A token that is not one CloudWatch gave is `Error::InvalidRequest`
    /// naming `nextToken`.
    async fn page(
        &self,
        stream: &crate::domain::record::LogLocation,
        token: Option<&str>,
        limit: u32,
    ) -> Result<Option<LogPage>, Error>;
}

/// Where final records are announced (an EventBridge bus the adapter owns).
pub trait Events {
    /// Puts one `Build Finished` event; any failure is an error (transient when worth a retry).
    async fn announce(&self, finished: &BuildFinished) -> Result<(), Error>;
}

/// What became of a completion sent for a task token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The waiting task took it: the execution moves on.
    Accepted,
    /// The task was no longer waiting (it timed out, was completed already, or its execution
    /// ended): Step Functions' error code. Harmless — whoever closed it carries on.
    Closed(String),
}

/// Completes callback waits (Step Functions' SendTaskSuccess).
pub trait TaskTokens {
    /// Sends `output` (JSON text) as the result of the task `token` names.
    async fn succeed(&self, token: &str, output: &str) -> Result<Delivery, Error>;
}

/// What AgentCore says of a runtime, and a runtime found by name (domain values: the rules in
/// `domain::deployment` read them).
pub use crate::domain::deployment::{FoundRuntime, RuntimeInfo};

/// A runtime to create, or the new configuration of one to update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeRequest {
    pub name: String,
    /// `repository@digest`; for a code artifact, [`CodeRun::uri`].
    pub container_uri: String,
    /// A code artifact: AgentCore runs it with `codeConfiguration` instead of a container.
    pub code: Option<crate::domain::artifact::CodeRun>,
    pub role_arn: String,
    pub spec: crate::domain::deploy_request::DeploySpec,
    /// Only a created runtime is tagged (the tags say whose it is; an update keeps them).
    pub tags: BTreeMap<String, String>,
    /// Derived from the execution: a retried call is the same call to AgentCore.
    pub client_token: String,
    pub description: String,
}

/// AgentCore Runtime's control plane (the adapter owns its client).
pub trait Runtimes {
    /// `None` when AgentCore knows no runtime of that id.
    async fn get(&self, id: &str) -> Result<Option<RuntimeInfo>, Error>;
    /// The runtime of that name (all pages of ListAgentRuntimes), with its tags.
    async fn find_by_name(&self, name: &str) -> Result<Option<FoundRuntime>, Error>;
    async fn create(&self, req: &RuntimeRequest) -> Result<RuntimeInfo, Error>;
    /// `None` when the runtime no longer exists.
    async fn update(&self, id: &str, req: &RuntimeRequest) -> Result<Option<RuntimeInfo>, Error>;
    /// Deletes the runtime (AgentCore then reports it DELETING until it is gone); `false` when
    /// it no longer exists.
    async fn delete(&self, id: &str) -> Result<bool, Error>;
}

/// What AgentCore says of a named endpoint (a domain value: `domain::rollout` reads it).
pub use crate::domain::rollout::{EndpointInfo, SmokeOutcome};

/// A runtime's named endpoints (AgentCore's control plane; the adapter owns its client).
pub trait Endpoints {
    /// `None` when the runtime has no endpoint of that name.
    async fn get_endpoint(
        &self,
        runtime_id: &str,
        name: &str,
    ) -> Result<Option<EndpointInfo>, Error>;
    /// Creates the endpoint at `version` (`exists` false; tagged with `tags`) or moves it there.
    async fn point_endpoint(
        &self,
        runtime_id: &str,
        name: &str,
        version: &str,
        exists: bool,
        tags: &BTreeMap<String, String>,
    ) -> Result<EndpointInfo, Error>;
}

/// AgentCore's data plane, as the smoke test needs it: `POST /invocations` of one version.
pub trait SmokeTester {
    /// `Ok(Refused)` for anything the agent did wrong (a non-2xx answer, no answer within
    /// `timeout_seconds`); `Err` only for our own or AWS's trouble.
    async fn invoke(
        &self,
        runtime_arn: &str,
        version: &str,
        payload: &serde_json::Value,
        timeout_seconds: u64,
        session_id: &str,
    ) -> Result<SmokeOutcome, Error>;
}
