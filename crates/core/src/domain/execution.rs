//! Starting builds: the execution input every door sends (a bare request, the API's submission,
//! the fleet's rebuild), the deterministic execution names that make starts idempotent, and the
//! rules that derive the trust-bearing facts (which door, which submission) from what we can
//! check — never from what the input claims.
//!
//! A Standard workflow answers StartExecution with the running execution when name and input
//! are the same, and with `ExecutionAlreadyExists` when the input differs or the execution has
//! closed; a name stays taken for 90 days. So a name derived from what the caller asked for
//! turns "start" into "start or find".

use super::form::from_value;
use super::plan::is_build_id;
use super::prebuilt::{self, names_prebuilt, PrebuiltRequest};
use super::request::{clip, parse, RequestError, ValidRequest};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Keyless API requests whose earlier executions all ended unsuccessfully get a fresh name up to
/// this many times; past it the caller must send an idempotencyKey.
pub const MAX_API_ATTEMPTS: u32 = 10;

/// The source content a submission was validated against: the object version and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourcePin {
    pub version_id: String,
    pub sha256: String,
}

/// Limits a door may set: they can only shorten what the stack configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_seconds: Option<DeadlineSeconds>,
}

/// A whole number of seconds >= 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct DeadlineSeconds(u64);

impl TryFrom<u64> for DeadlineSeconds {
    type Error = super::form::Rule;
    fn try_from(n: u64) -> Result<Self, Self::Error> {
        if n >= 1 {
            Ok(DeadlineSeconds(n))
        } else {
            Err("must be a whole number >= 1".into())
        }
    }
}

impl From<DeadlineSeconds> for u64 {
    fn from(d: DeadlineSeconds) -> u64 {
        d.0
    }
}

/// `{"request": {...}, "source"?: {versionId, sha256}, "limits"?: {...}}`: a request with the
/// content it was validated against (the API pins it). Nothing in it is trusted: the pinned
/// version is hashed again (a promote's is compared with the promoted build's record
/// instead: it builds nothing from it), the door is told by the execution name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Submission<R = ValidRequest> {
    pub request: R,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourcePin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// A promote (`POST .../builds/{buildId}/promote`): deploy what build `buildId` made, build
    /// nothing. ValidateRequest checks it against that build's record (same agent, a success,
    /// the same source and content): it cannot name anything the request could not rebuild.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<PromoteOf>,
}

/// The build a promote deploys (its recorded image digest or code artifact version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromoteOf {
    pub build_id: String,
}

/// `{"rebuild": {"buildId", "run"}}`: rebuild the recorded request of build `buildId` (the
/// fleet sends it; everything it builds and every time it counts by comes from that record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RebuildInput {
    pub rebuild: RebuildOf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RebuildOf {
    /// The build whose record is rebuilt (the agent's latest when the run was planned).
    pub build_id: String,
    /// The fleet run that asked for it (`yyyymmddThhmm`): its manifest vouches for the input.
    pub run: String,
}

/// What an execution was started with.
// One value per execution, moved straight to its reader: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutionInput {
    /// A request: bare (typed into the console) or in the API's [`Submission`].
    Submission(Submission),
    Rebuild(RebuildOf),
    /// A bare request naming a prebuilt artifact instead of a source (`domain::prebuilt`).
    Prebuilt(PrebuiltRequest),
}

/// Reads an execution input: `{"rebuild": ...}`, `{"request": ...}`, a bare request naming a
/// prebuilt artifact (`{"prebuilt": ...}`), or a bare request. Any other field (`trigger`,
/// `submittedAt`, ...) is refused: those facts are ours to derive.
pub fn open_input(input: &Value) -> Result<ExecutionInput, RequestError> {
    let has = |k: &str| input.as_object().is_some_and(|o| o.contains_key(k));
    if names_prebuilt(input) {
        return Ok(ExecutionInput::Prebuilt(prebuilt::parse(input)?));
    }
    if has("rebuild") {
        let r: RebuildInput = from_value(input, "")?;
        if !is_build_id(&r.rebuild.build_id) || !is_run(&r.rebuild.run) {
            return Err(RequestError::new(
                "rebuild",
                "names a build id and a run (yyyymmddThhmm)",
            ));
        }
        return Ok(ExecutionInput::Rebuild(r.rebuild));
    }
    if has("request") {
        let s: Submission<Value> = from_value(input, "")?;
        return Ok(ExecutionInput::Submission(Submission {
            request: parse(&s.request)?,
            source: s.source,
            limits: s.limits,
            promote: s.promote,
        }));
    }
    Ok(ExecutionInput::Submission(Submission {
        request: parse(input)?,
        source: None,
        limits: None,
        promote: None,
    }))
}

fn is_run(run: &str) -> bool {
    run.len() == 13
        && run.bytes().enumerate().all(|(i, c)| match i {
            8 => c == b'T',
            _ => c.is_ascii_digit(),
        })
}

/// Length-prefixed fields: no two different field lists hash the same bytes.
fn digest(fields: &[&str]) -> String {
    let mut h = Sha256::new();
    for f in fields {
        h.update((f.len() as u64).to_be_bytes());
        h.update(f.as_bytes());
    }
    hex::encode(h.finalize())
}

/// `api-<40 hex>` (then `-r2`, `-r3`, ... for `attempt` 1, 2, ...): see [`execution_name`].
pub fn api_execution_name(req: &ValidRequest, pin: Option<&SourcePin>, attempt: u32) -> String {
    execution_name("api", req, pin, attempt)
}

/// `arn:<partition>:states:<region>:<account>:execution:<machine>:<name>`, the ARN Step
/// Functions gives execution `name` of the (unqualified) machine `state_machine_arn`.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// `<door>-<40 hex>` (then `-r2`, `-r3`, ... for `attempt` 1, 2, ...), for a door that starts
/// builds by request (`api`, or `cli` when the CLI starts executions itself). With an
/// idempotencyKey the hash covers (project, agent, key): the same key names the same build
/// whatever else changed. Without one it covers the normalized request and the content it was
/// validated against: identical requests of identical bytes share a build; new bytes at the
/// same key are a new build.
pub fn execution_name(
    door: &str,
    req: &ValidRequest,
    pin: Option<&SourcePin>,
    attempt: u32,
) -> String {
    let hash = match &req.idempotency_key {
        Some(key) => digest(&[
            &format!("agentbuild-{door}-key-v1"),
            &req.project,
            &req.agent,
            key,
        ]),
        None => {
            // Struct fields in declaration order, maps sorted: the serialization is canonical.
            let request = serde_json::to_string(req).expect("a request always serializes");
            let (version, sha256) = pin.map_or(("", ""), |p| (&p.version_id, &p.sha256));
            digest(&[
                &format!("agentbuild-{door}-content-v2"),
                &request,
                version,
                sha256,
            ])
        }
    };
    match attempt {
        0 => format!("{door}-{}", &hash[..40]),
        n => format!("{door}-{}-r{}", &hash[..40], n + 1),
    }
}

/// The name `door` gives `s`: [`execution_name`], or for a promote the same hash over the
/// request, its pinned content and the promoted build (a promote is never the plain request's
/// build, nor another build's promote).
pub fn submission_name(door: &str, s: &Submission, attempt: u32) -> String {
    let Some(promote) = &s.promote else {
        return execution_name(door, &s.request, s.source.as_ref(), attempt);
    };
    let request = serde_json::to_string(&s.request).expect("a request always serializes");
    let (version, sha256) = s
        .source
        .as_ref()
        .map_or(("", ""), |p| (&p.version_id, &p.sha256));
    let hash = digest(&[
        &format!("agentbuild-{door}-promote-v1"),
        &request,
        version,
        sha256,
        &promote.build_id,
    ]);
    match attempt {
        0 => format!("{door}-{}", &hash[..40]),
        n => format!("{door}-{}-r{}", &hash[..40], n + 1),
    }
}

/// Whether `name` is one the API gives `submission` (any attempt): then the API is the door.
/// Whoever else starts that very name with that very input starts what the API would have.
pub fn is_api_name(name: &str, submission: &Submission) -> bool {
    let first = submission_name("api", submission, 0);
    match name.strip_prefix(first.as_str()) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix("-r")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| (2..=MAX_API_ATTEMPTS).contains(&n) && rest == format!("-r{n}")),
        None => false,
    }
}

/// `sched-<yyyymmddThhmm of the schedule's time>-<16 hex of project/agent>`: a retried trigger
/// (same event time) names the same executions, so it starts nothing twice.
pub fn schedule_execution_name(at: DateTime<Utc>, project: &str, agent: &str) -> String {
    let hash = digest(&["agentbuild-schedule-v1", project, agent]);
    format!("sched-{}-{}", at.format("%Y%m%dT%H%M"), &hash[..16])
}

/// A rebuild's source is the recorded one: its version, checked against its recorded hash.
pub fn rebuild_pin(version_id: Option<&str>, sha256: &str) -> Result<SourcePin, RequestError> {
    match version_id {
        Some(v) if !v.is_empty() => Ok(SourcePin {
            version_id: v.to_string(),
            sha256: sha256.to_string(),
        }),
        _ => Err(RequestError::new(
            "rebuild.buildId",
            "the recorded build names no source version; build it once through the API",
        )),
    }
}

/// Why a pinned source cannot be built: its hash is not the one it was validated with.
pub fn pin_mismatch(uri: &str, pin: &SourcePin) -> RequestError {
    RequestError::new(
        "source",
        format!(
            "version {} of {} does not hash to the SHA-256 it was validated with",
            clip(&pin.version_id),
            clip(uri)
        ),
    )
}

#[cfg(test)]
mod tests;
