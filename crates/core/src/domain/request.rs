//! The build request and every rule it must pass, whichever door it came through.
//!
//! Rules are checked on the raw JSON (not through serde's derive) so that every rejection can
//! name its field and its rule in words a caller can act on.

use super::deploy::{validate_deploy, DeploySpec, RolePolicy};
use super::text::map_value;
pub use super::text::{clip, RequestError, MAX_ECHO_CHARS};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

pub const NAME_RULE: &str = "must match ^[a-z0-9][a-z0-9-]{0,62}$ (lowercase letters, digits and '-', at most 63 characters, starting with a letter or digit)";
pub const MAX_BUILD_ARGS: usize = 32;
pub const MAX_BUILD_ARG_VALUE_BYTES: usize = 4096;
pub const MAX_BUILD_ARG_KEY_LEN: usize = 128;
pub const MAX_DOCKERFILE_LEN: usize = 256;
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;
/// All build-arg values together: with 32 args of 4 KiB a console input near Step Functions'
/// 256 KiB limit would pass validation and then break every later state.
pub const MAX_BUILD_ARGS_TOTAL_BYTES: usize = 32 * 1024;
/// Build args BuildKit gives a meaning of its own, refused in any letter case: `BUILDKIT_*`
/// selects the frontend and cache behaviour; the proxy variables are kept out of cache keys, so a
/// layer fetched through a caller's proxy would be shared with later builds.
pub const RESERVED_BUILD_ARG_PREFIX: &str = "BUILDKIT_";
pub const RESERVED_BUILD_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];
pub const FIELDS: &[&str] = &[
    "project",
    "agent",
    "source",
    "dockerfile",
    "platform",
    "buildArgs",
    "force",
    "idempotencyKey",
    "deploy",
];

/// Which door the request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Api,
    Schedule,
    #[default]
    Console,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Platform {
    #[default]
    #[serde(rename = "linux/arm64")]
    LinuxArm64,
    #[serde(rename = "linux/amd64")]
    LinuxAmd64,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::LinuxArm64 => "linux/arm64",
            Platform::LinuxAmd64 => "linux/amd64",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `s3://bucket/key`, already checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Uri {
    pub bucket: String,
    pub key: String,
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Where sources may come from: the stack's own bucket (under `sources/`) and any extra
/// buckets the operator allowed; and which execution roles a `deploy` may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePolicy {
    pub own_bucket: String,
    pub extra_buckets: Vec<String>,
    /// The stack's runtime roles (ValidateRequest and the API always know them); `None` checks
    /// a `deploy.roleArn` for form only (the CLI, which leaves the allowlist to the stack).
    pub runtime_roles: Option<RolePolicy>,
}

impl SourcePolicy {
    pub fn own(bucket: impl Into<String>) -> Self {
        Self {
            own_bucket: bucket.into(),
            extra_buckets: Vec::new(),
            runtime_roles: None,
        }
    }
}

/// A request that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidRequest {
    pub project: String,
    pub agent: String,
    pub source: S3Uri,
    pub dockerfile: String,
    pub platform: Platform,
    pub build_args: BTreeMap<String, String>,
    pub force: bool,
    pub idempotency_key: Option<String>,
    /// Run the image in AgentCore Runtime once it exists (design: "Deploy").
    pub deploy: Option<DeploySpec>,
}

/// Applies every rule of the design's "Build request" section.
pub fn validate(input: &Value, policy: &SourcePolicy) -> Result<ValidRequest, RequestError> {
    let obj = input
        .as_object()
        .ok_or_else(|| RequestError::new("request", "must be a JSON object"))?;
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(RequestError::new(
            clip(unknown),
            format!("unknown field; allowed fields: {}", FIELDS.join(", ")),
        ));
    }
    let project = name(obj, "project")?;
    let agent = name(obj, "agent")?;
    let source = source(required_str(obj, "source")?, policy, &project, &agent)?;
    let dockerfile = match optional_str(obj, "dockerfile")? {
        None => "Dockerfile".to_string(),
        Some(d) => dockerfile(d)?,
    };
    let platform = match optional_str(obj, "platform")? {
        None => Platform::default(),
        Some("linux/arm64") => Platform::LinuxArm64,
        Some("linux/amd64") => Platform::LinuxAmd64,
        Some(_) => {
            return Err(RequestError::new(
                "platform",
                "must be \"linux/arm64\" or \"linux/amd64\"",
            ))
        }
    };
    let build_args = build_args(obj.get("buildArgs"))?;
    let force = match obj.get("force") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(RequestError::new("force", "must be true or false")),
    };
    let idempotency_key = optional_str(obj, "idempotencyKey")?
        .map(idempotency_key)
        .transpose()?;
    let deploy = match obj.get("deploy") {
        None | Some(Value::Null) => None,
        Some(d) => Some(validate_deploy(
            d,
            &project,
            &agent,
            policy.runtime_roles.as_ref(),
        )?),
    };
    Ok(ValidRequest {
        project,
        agent,
        source,
        dockerfile,
        platform,
        build_args,
        force,
        idempotency_key,
        deploy,
    })
}

/// `^[a-z0-9][a-z0-9-]{0,62}$`: these names end up in S3 keys, image tags and log names.
pub fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn name(obj: &Map<String, Value>, field: &str) -> Result<String, RequestError> {
    let s = required_str(obj, field)?;
    if is_name(s) {
        Ok(s.to_string())
    } else {
        Err(RequestError::new(field, NAME_RULE))
    }
}

fn required_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, RequestError> {
    optional_str(obj, field)?.ok_or_else(|| RequestError::new(field, "is required"))
}

fn optional_str<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, RequestError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(RequestError::new(field, "must be a string")),
    }
}

/// S3 bucket naming rules (the subset that matters here): 3-63 of `[a-z0-9.-]`.
fn is_bucket(s: &str) -> bool {
    let b = s.as_bytes();
    (3..=63).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
}

/// Where an agent's uploads live: one agent's request can never build another agent's upload.
pub fn source_prefix(project: &str, agent: &str) -> String {
    format!("sources/{project}/{agent}/")
}

fn source(
    uri: &str,
    policy: &SourcePolicy,
    project: &str,
    agent: &str,
) -> Result<S3Uri, RequestError> {
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| RequestError::new("source", "must be an s3://<bucket>/<key>.zip URI"))?;
    let (bucket, key) = rest
        .split_once('/')
        .ok_or_else(|| RequestError::new("source", "must be an s3://<bucket>/<key>.zip URI"))?;
    if !is_bucket(bucket) {
        return Err(RequestError::new(
            "source",
            "bucket name is not a valid S3 bucket name",
        ));
    }
    if key.is_empty() || key.len() > 1024 || !key.ends_with(".zip") {
        return Err(RequestError::new(
            "source",
            "key must end in .zip and be at most 1024 bytes",
        ));
    }
    if key.chars().any(char::is_control) || key.split('/').any(|seg| seg == ".." || seg.is_empty())
    {
        return Err(RequestError::new(
            "source",
            "key must not contain control characters, empty segments or '..'",
        ));
    }
    if bucket != policy.own_bucket && !policy.extra_buckets.iter().any(|b| b == bucket) {
        return Err(RequestError::new(
            "source",
            format!("bucket {bucket} is not an allowed source bucket"),
        ));
    }
    let prefix = source_prefix(project, agent);
    if !key.starts_with(&prefix) {
        return Err(RequestError::new(
            "source",
            format!("must be an object under {prefix} (this request's project and agent)"),
        ));
    }
    Ok(S3Uri {
        bucket: bucket.to_string(),
        key: key.to_string(),
    })
}

/// A relative path inside the build context, in plain characters, that cannot climb out of it.
fn dockerfile(path: &str) -> Result<String, RequestError> {
    let fail = |rule: &str| Err(RequestError::new("dockerfile", rule));
    if path.is_empty() || path.len() > MAX_DOCKERFILE_LEN {
        return fail("must be 1 to 256 characters");
    }
    if path.starts_with('/') {
        return fail("must be a relative path inside the build context, not an absolute path");
    }
    if !path
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'/'))
    {
        return fail("may contain only letters, digits, '.', '_', '-' and '/'");
    }
    if path
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return fail("must stay inside the build context: no '..', '.' or empty path segments");
    }
    if path.starts_with('-') {
        return fail("must not start with '-'");
    }
    Ok(path.to_string())
}

fn build_args(value: Option<&Value>) -> Result<BTreeMap<String, String>, RequestError> {
    let obj = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(RequestError::new(
                "buildArgs",
                "must be an object of string values",
            ))
        }
    };
    if obj.len() > MAX_BUILD_ARGS {
        return Err(RequestError::new(
            "buildArgs",
            format!("at most {MAX_BUILD_ARGS} build args"),
        ));
    }
    let mut out = BTreeMap::new();
    let mut total = 0;
    for (k, v) in obj {
        // The key may itself be hostile: name the field without echoing all of it.
        let field = format!("buildArgs.{}", clip(k));
        if !is_build_arg_key(k) {
            return Err(RequestError::new(
                field,
                "keys must match ^[A-Za-z_][A-Za-z0-9_]*$ (at most 128 characters)",
            ));
        }
        if is_reserved_build_arg(k) {
            return Err(RequestError::new(
                field,
                "is reserved (BUILDKIT_* and the proxy variables HTTP_PROXY, HTTPS_PROXY, \
                 FTP_PROXY, NO_PROXY, ALL_PROXY, in any letter case): the build's frontend, \
                 cache and network are the service's",
            ));
        }
        let v = map_value(&field, v, MAX_BUILD_ARG_VALUE_BYTES)?;
        total += v.len();
        if total > MAX_BUILD_ARGS_TOTAL_BYTES {
            return Err(RequestError::new(
                "buildArgs",
                "all values together must be at most 32768 bytes",
            ));
        }
        out.insert(k.clone(), v.to_string());
    }
    Ok(out)
}

/// Design's reserved names, in any letter case.
pub fn is_reserved_build_arg(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    upper.starts_with(RESERVED_BUILD_ARG_PREFIX) || RESERVED_BUILD_ARGS.contains(&upper.as_str())
}

fn is_build_arg_key(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_BUILD_ARG_KEY_LEN
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn idempotency_key(key: &str) -> Result<String, RequestError> {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY_LEN
        || !key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
    {
        return Err(RequestError::new(
            "idempotencyKey",
            "must be 1 to 128 of letters, digits, '-', '_', '.', ':'",
        ));
    }
    Ok(key.to_string())
}

/// The execution input: a bare request (typed into the console), or the envelope the API and
/// the scheduler send: `{"trigger": "api"|"schedule"|"console", "request": {...},
/// "limits": {"deadlineSeconds": N}}`. `limits` can only shorten the configured deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<'a> {
    pub trigger: Trigger,
    pub request: &'a Value,
    /// A scheduled rebuild names when the source it rebuilds was submitted.
    pub submitted_at: Option<chrono::DateTime<chrono::Utc>>,
    pub deadline_seconds: Option<u64>,
}

pub fn open_envelope(input: &Value) -> Result<Envelope<'_>, RequestError> {
    let Some(obj) = input.as_object().filter(|o| o.contains_key("request")) else {
        return Ok(Envelope {
            trigger: Trigger::Console,
            request: input,
            submitted_at: None,
            deadline_seconds: None,
        });
    };
    if let Some(unknown) = obj
        .keys()
        .find(|k| !["trigger", "request", "limits", "submittedAt"].contains(&k.as_str()))
    {
        return Err(RequestError::new(
            clip(unknown),
            "unknown field; an envelope has trigger, request, limits and submittedAt",
        ));
    }
    let trigger = match obj.get("trigger") {
        None => Trigger::Console,
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            RequestError::new("trigger", "must be \"api\", \"schedule\" or \"console\"")
        })?,
    };
    let deadline_seconds = match obj.get("limits") {
        None | Some(Value::Null) => None,
        Some(Value::Object(l)) => {
            if let Some(unknown) = l.keys().find(|k| k.as_str() != "deadlineSeconds") {
                return Err(RequestError::new(
                    format!("limits.{}", clip(unknown)),
                    "unknown field; limits has deadlineSeconds",
                ));
            }
            match l.get("deadlineSeconds") {
                None => None,
                Some(v) => Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                    RequestError::new("limits.deadlineSeconds", "must be a whole number >= 1")
                })?),
            }
        }
        Some(_) => return Err(RequestError::new("limits", "must be an object")),
    };
    let submitted_at = match obj.get("submittedAt") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let at = v
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| RequestError::new("submittedAt", "must be an RFC 3339 time"))?;
            if trigger != Trigger::Schedule {
                return Err(RequestError::new(
                    "submittedAt",
                    "only a scheduled rebuild names the submission it rebuilds",
                ));
            }
            Some(at)
        }
    };
    Ok(Envelope {
        trigger,
        request: &obj["request"],
        submitted_at,
        deadline_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> SourcePolicy {
        SourcePolicy {
            own_bucket: "agentbuild-data".into(),
            extra_buckets: vec!["partner-sources".into()],
            runtime_roles: Some(RolePolicy {
                default_role: "arn:aws:iam::123456789012:role/agentbuild-runtime".into(),
                allowed: vec![],
            }),
        }
    }

    fn base() -> Value {
        json!({
            "project": "nexus-ai",
            "agent": "sales-assistant",
            "source": "s3://agentbuild-data/sources/nexus-ai/sales-assistant/abc.zip"
        })
    }

    fn with(field: &str, value: Value) -> Value {
        let mut v = base();
        v[field] = value;
        v
    }

    fn rejected(v: Value) -> RequestError {
        validate(&v, &policy()).expect_err("should be rejected")
    }

    #[test]
    fn accepts_the_minimal_request_with_defaults() {
        let r = validate(&base(), &policy()).unwrap();
        assert_eq!(r.project, "nexus-ai");
        assert_eq!(r.dockerfile, "Dockerfile");
        assert_eq!(r.platform, Platform::LinuxArm64);
        assert!(r.build_args.is_empty());
        assert!(!r.force);
        assert_eq!(r.idempotency_key, None);
        assert_eq!(r.source.bucket, "agentbuild-data");
    }

    #[test]
    fn accepts_the_full_request() {
        let v = json!({
            "project": "nexus-ai", "agent": "a", "dockerfile": "docker/Dockerfile.prod",
            "source": "s3://partner-sources/sources/nexus-ai/a/where.zip", "platform": "linux/amd64",
            "buildArgs": {"PYTHON_VERSION": "3.12", "_X1": "$(rm -rf /); `id`"}, "force": true,
            "idempotencyKey": "req-42:retry.1"
        });
        let r = validate(&v, &policy()).unwrap();
        assert_eq!(r.platform, Platform::LinuxAmd64);
        assert_eq!(r.build_args["_X1"], "$(rm -rf /); `id`");
        assert!(r.force);
        assert_eq!(r.dockerfile, "docker/Dockerfile.prod");
    }

    #[test]
    fn rejects_non_object_request() {
        assert_eq!(rejected(json!([1])).field, "request");
    }

    #[test]
    fn rejects_unknown_fields_by_name() {
        let e = rejected(with("buildspec", json!("x")));
        assert_eq!(e.field, "buildspec");
        assert!(e.message.contains("unknown field"));
    }

    #[test]
    fn rejects_missing_required_fields() {
        for f in ["project", "agent", "source"] {
            let mut v = base();
            v.as_object_mut().unwrap().remove(f);
            let e = rejected(v);
            assert_eq!((e.field.as_str(), e.message.as_str()), (f, "is required"));
        }
    }

    #[test]
    fn rejects_bad_project_and_agent_names() {
        for f in ["project", "agent"] {
            for bad in [
                json!(""),
                json!("Upper"),
                json!("-lead"),
                json!("a_b"),
                json!("a/b"),
                json!("x".repeat(64)),
                json!(7),
            ] {
                let e = rejected(with(f, bad.clone()));
                assert_eq!(e.field, f, "{bad}");
            }
        }
        for good in ["x".repeat(63), "0-a-".into()] {
            let mut v = with("agent", json!(good));
            v["source"] = json!(format!(
                "s3://agentbuild-data/sources/nexus-ai/{good}/a.zip"
            ));
            assert!(validate(&v, &policy()).is_ok(), "{good}");
        }
    }

    #[test]
    fn rejects_sources_outside_the_rules() {
        for bad in [
            "https://example.com/a.zip",
            "s3://agentbuild-data",
            "s3://agentbuild-data/sources/a.tar",
            "s3://agentbuild-data/other/a.zip",
            "s3://someone-else/sources/a.zip",
            "s3://Bad_Bucket/sources/a.zip",
            "s3://agentbuild-data/sources/../builds/a.zip",
            "s3://agentbuild-data/sources//a.zip",
            "s3://agentbuild-data/sources/a\n.zip",
            // Another agent's, or another project's, upload.
            "s3://agentbuild-data/sources/nexus-ai/other-agent/abc.zip",
            "s3://agentbuild-data/sources/other/sales-assistant/abc.zip",
            "s3://agentbuild-data/sources/nexus-ai/sales-assistant-2/abc.zip",
            "s3://agentbuild-data/sources/nexus-ai/abc.zip",
            "s3://partner-sources/any/where.zip",
        ] {
            let e = rejected(with("source", json!(bad)));
            assert_eq!(e.field, "source", "{bad}");
        }
    }

    #[test]
    fn rejects_dockerfile_outside_context() {
        for bad in [
            "/etc/Dockerfile",
            "../Dockerfile",
            "a/../../Dockerfile",
            "./Dockerfile",
            "a//b",
            "",
            "-",
            "Docker file",
            "a;rm",
            "$(id)",
        ] {
            let e = rejected(with("dockerfile", json!(bad)));
            assert_eq!(e.field, "dockerfile", "{bad}");
        }
        let long = "d/".repeat(128) + "f";
        assert_eq!(
            rejected(with("dockerfile", json!(long))).field,
            "dockerfile"
        );
    }

    #[test]
    fn rejects_unknown_platform() {
        for bad in [json!("linux/arm/v7"), json!("windows/amd64"), json!(1)] {
            assert_eq!(rejected(with("platform", bad)).field, "platform");
        }
    }

    #[test]
    fn rejects_build_args_breaking_the_rules() {
        assert_eq!(rejected(with("buildArgs", json!("A=1"))).field, "buildArgs");
        let many: Map<String, Value> = (0..33).map(|i| (format!("K{i}"), json!("v"))).collect();
        assert_eq!(
            rejected(with("buildArgs", Value::Object(many))).field,
            "buildArgs"
        );
        for bad_key in ["1A", "A-B", "A B", "$(id)", ""] {
            let e = rejected(with("buildArgs", json!({ bad_key: "v" })));
            assert!(e.field.starts_with("buildArgs."), "{bad_key}");
            assert!(e.message.contains("keys must match"));
        }
        let e = rejected(with("buildArgs", json!({"A": 1})));
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("buildArgs.A", "must be a string")
        );
        let e = rejected(with("buildArgs", json!({"A": "x".repeat(4097)})));
        assert_eq!(e.field, "buildArgs.A");
        let e = rejected(with("buildArgs", json!({"A": "a\u{0}b"})));
        assert_eq!(e.message, "value must not contain NUL");
        assert!(validate(
            &with("buildArgs", json!({"A": "x".repeat(4096)})),
            &policy()
        )
        .is_ok());
        let max: Map<String, Value> = (0..32).map(|i| (format!("K{i}"), json!("v"))).collect();
        assert!(validate(&with("buildArgs", Value::Object(max)), &policy()).is_ok());
    }

    #[test]
    fn rejects_another_agents_upload_naming_source() {
        let e = rejected(with(
            "source",
            json!("s3://agentbuild-data/sources/nexus-ai/billing/abc.zip"),
        ));
        assert_eq!(e.field, "source");
        assert!(
            e.message
                .contains("under sources/nexus-ai/sales-assistant/"),
            "{e}"
        );
    }

    #[test]
    fn rejects_reserved_build_args_in_any_letter_case() {
        for key in [
            "BUILDKIT_SYNTAX",
            "buildkit_syntax",
            "BuildKit_Inline_Cache",
            "BUILDKIT_CONTEXT_KEEP_GIT_DIR",
            "HTTP_PROXY",
            "https_proxy",
            "Ftp_Proxy",
            "no_proxy",
            "ALL_PROXY",
        ] {
            let e = rejected(with("buildArgs", json!({ key: "docker.io/evil/frontend" })));
            assert_eq!(e.field, format!("buildArgs.{key}"));
            assert!(e.message.contains("reserved"), "{e}");
        }
        for fine in [
            "BUILDKITX",
            "MY_BUILDKIT_SYNTAX",
            "HTTP_PROXY_PORT",
            "PROXY",
        ] {
            assert!(
                validate(&with("buildArgs", json!({ fine: "v" })), &policy()).is_ok(),
                "{fine}"
            );
        }
    }

    #[test]
    fn caps_all_build_arg_values_together_at_32_kib() {
        let eight: Map<String, Value> = (0..8)
            .map(|i| (format!("K{i}"), json!("x".repeat(4096))))
            .collect();
        assert!(validate(&with("buildArgs", Value::Object(eight.clone())), &policy()).is_ok());
        let mut nine = eight;
        nine.insert("K9".into(), json!("x"));
        let e = rejected(with("buildArgs", Value::Object(nine)));
        assert_eq!(e.field, "buildArgs");
        assert!(e.message.contains("32768"), "{e}");
    }

    #[test]
    fn echoes_at_most_64_characters_of_caller_text() {
        let long = "x".repeat(10_000);
        let e = rejected(with(&long, json!(1)));
        assert!(e.field.chars().count() <= 65, "{}", e.field.len());
        let e = rejected(with("buildArgs", json!({ format!("A{long}"): "v" })));
        assert!(e.field.chars().count() <= "buildArgs.".len() + 65);
        assert_eq!(clip("a\u{1b}[31mb"), "a[31mb");
        assert_eq!(clip(&"y".repeat(64)), "y".repeat(64));
        assert_eq!(clip(&"y".repeat(65)), format!("{}…", "y".repeat(64)));
    }

    #[test]
    fn a_deploy_object_is_validated_with_the_stacks_roles_and_named_by_field() {
        let r = validate(&with("deploy", json!({})), &policy()).unwrap();
        let d = r.deploy.expect("deploy kept");
        assert_eq!(d.runtime_name, "ab_nexus_ai_sales_assistant_9c92e084");
        assert_eq!(validate(&base(), &policy()).unwrap().deploy, None);
        for (deploy, field) in [
            (json!({"runtimeName": "no-dash"}), "deploy.runtimeName"),
            (json!({"colour": "blue"}), "deploy.colour"),
            (
                json!({"roleArn": "arn:aws:iam::123456789012:role/admin"}),
                "deploy.roleArn",
            ),
            (json!("yes"), "deploy"),
        ] {
            assert_eq!(rejected(with("deploy", deploy)).field, field);
        }
    }

    #[test]
    fn rejects_non_boolean_force() {
        assert_eq!(rejected(with("force", json!("true"))).field, "force");
    }

    #[test]
    fn rejects_bad_idempotency_keys() {
        for bad in [json!(""), json!("a b"), json!("x".repeat(129)), json!(5)] {
            assert_eq!(
                rejected(with("idempotencyKey", bad)).field,
                "idempotencyKey"
            );
        }
    }

    #[test]
    fn a_bare_request_comes_from_the_console() {
        let v = base();
        let e = open_envelope(&v).unwrap();
        assert_eq!(e.trigger, Trigger::Console);
        assert_eq!(e.request, &v);
    }

    #[test]
    fn an_envelope_names_its_trigger_and_limits() {
        let v = json!({"trigger": "schedule", "request": base(), "limits": {"deadlineSeconds": 5}});
        let e = open_envelope(&v).unwrap();
        assert_eq!(
            (e.trigger, e.deadline_seconds),
            (Trigger::Schedule, Some(5))
        );
        assert_eq!(e.request, &base());
    }

    #[test]
    fn rejects_bad_envelopes_by_field() {
        let cases = [
            (json!({"request": {}, "trigger": "cron"}), "trigger"),
            (json!({"request": {}, "extra": 1}), "extra"),
            (json!({"request": {}, "limits": 5}), "limits"),
            (
                json!({"request": {}, "limits": {"deadlineSeconds": 0}}),
                "limits.deadlineSeconds",
            ),
            (json!({"request": {}, "limits": {"poll": 1}}), "limits.poll"),
        ];
        for (v, field) in cases {
            assert_eq!(open_envelope(&v).unwrap_err().field, field);
        }
    }
}
