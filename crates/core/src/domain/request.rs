//! The build request and every rule it must pass, whichever door it came through.
//!
//! Two steps: [`parse`] reads the request into [`ValidRequest`] (serde types whose newtypes
//! hold the form rules; a rejection names its field path), then [`SourcePolicy::admit`] applies
//! the stack's policy (which buckets, which runtime roles). The CLI only parses: the policy is
//! the stack's. [`validate`] is both.

use super::artifact::{ArtifactKind, ArtifactSpec, EntryPoint, PythonRuntime};
use super::deploy_request::{DeployOptions, DeployRequest, RolePolicy};
use super::form::{
    context_path_rule, from_value, nullable, string_newtype, Expecting, MapRules, Object, Rule,
    StringMap,
};
pub use super::secrets::{BuildSecrets, SecretPolicy};
pub use super::text::{clip, RequestError, MAX_ECHO_CHARS};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
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
#[serde(try_from = "String")]
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

impl TryFrom<String> for Platform {
    type Error = Rule;
    fn try_from(s: String) -> Result<Self, Rule> {
        match s.as_str() {
            "linux/arm64" => Ok(Platform::LinuxArm64),
            "linux/amd64" => Ok(Platform::LinuxAmd64),
            _ => Err("must be \"linux/arm64\" or \"linux/amd64\"".into()),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

string_newtype!(
    /// A project or agent name: `^[a-z0-9][a-z0-9-]{0,62}$` (they end up in S3 keys, image
    /// tags and log names).
    Name,
    name_rule
);

fn name_rule(s: &str) -> Result<(), Rule> {
    if is_name(s) {
        Ok(())
    } else {
        Err(NAME_RULE.into())
    }
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

string_newtype!(
    /// A relative path inside the build context, in plain characters, that cannot climb out.
    DockerfilePath,
    dockerfile_rule
);

impl Default for DockerfilePath {
    fn default() -> Self {
        DockerfilePath("Dockerfile".into())
    }
}

fn dockerfile_rule(path: &str) -> Result<(), Rule> {
    context_path_rule(path, MAX_DOCKERFILE_LEN)
}

string_newtype!(
    /// A caller's idempotency key: 1 to 128 of letters, digits, `-`, `_`, `.`, `:`.
    IdempotencyKey,
    idempotency_key_rule
);

fn idempotency_key_rule(key: &str) -> Result<(), Rule> {
    let ok = !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
        && key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 128 of letters, digits, '-', '_', '.', ':'".into())
    }
}

/// The rules of `buildArgs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildArgRules;

impl MapRules for BuildArgRules {
    const NOUN: &'static str = "build args";
    const MAX_ENTRIES: usize = MAX_BUILD_ARGS;
    const MAX_KEY_LEN: usize = MAX_BUILD_ARG_KEY_LEN;
    const MAX_VALUE_BYTES: usize = MAX_BUILD_ARG_VALUE_BYTES;
    const MAX_TOTAL_BYTES: usize = MAX_BUILD_ARGS_TOTAL_BYTES;
    const KEY_RULE: &'static str =
        "keys must match ^[A-Za-z_][A-Za-z0-9_]*$ (at most 128 characters)";
    fn refuse(key: &str) -> Option<&'static str> {
        is_reserved_build_arg(key).then_some(
            "is reserved (BUILDKIT_* and the proxy variables HTTP_PROXY, HTTPS_PROXY, \
             FTP_PROXY, NO_PROXY, ALL_PROXY, in any letter case): the build's frontend, \
             cache and network are the service's",
        )
    }
}

/// Build args that passed every rule (non-secret by contract).
pub type BuildArgs = StringMap<BuildArgRules>;

/// Design's reserved names, in any letter case.
pub fn is_reserved_build_arg(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    upper.starts_with(RESERVED_BUILD_ARG_PREFIX) || RESERVED_BUILD_ARGS.contains(&upper.as_str())
}

/// `s3://bucket/key.zip` in form (which buckets are allowed is the stack's policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct S3Uri {
    bucket: String,
    key: String,
}

impl S3Uri {
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

impl From<S3Uri> for String {
    fn from(u: S3Uri) -> String {
        u.to_string()
    }
}

impl TryFrom<String> for S3Uri {
    type Error = Rule;
    fn try_from(uri: String) -> Result<Self, Rule> {
        let form = || Rule::from("must be an s3://<bucket>/<key>.zip URI");
        let (bucket, key) = uri
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .ok_or_else(form)?;
        if !is_bucket(bucket) {
            return Err("bucket name is not a valid S3 bucket name".into());
        }
        if key.is_empty() || key.len() > 1024 || !key.ends_with(".zip") {
            return Err("key must end in .zip and be at most 1024 bytes".into());
        }
        if key.chars().any(char::is_control)
            || key.split('/').any(|seg| seg == ".." || seg.is_empty())
        {
            return Err("key must not contain control characters, empty segments or '..'".into());
        }
        Ok(S3Uri {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
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

/// The request as a caller writes it (design: "Build request"): defaults not yet applied to
/// `deploy`, whose default runtime name depends on the project and agent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BuildRequest {
    project: Name,
    agent: Name,
    /// Required; optional here so that every other rule can be checked before a local source
    /// is uploaded ([`parse_except_source`]).
    #[serde(default)]
    source: Option<S3Uri>,
    #[serde(default, deserialize_with = "nullable")]
    dockerfile: DockerfilePath,
    #[serde(default, deserialize_with = "nullable")]
    platform: Platform,
    #[serde(default, deserialize_with = "nullable")]
    build_args: BuildArgs,
    #[serde(default, deserialize_with = "nullable")]
    build_secrets: BuildSecrets,
    #[serde(default)]
    entry_point: Option<EntryPoint>,
    #[serde(default, deserialize_with = "nullable")]
    force: bool,
    #[serde(default)]
    idempotency_key: Option<IdempotencyKey>,
    #[serde(default)]
    deploy: Option<Object<DeployRequest>>,
    #[serde(default, deserialize_with = "nullable")]
    artifact: ArtifactKind,
    #[serde(default)]
    runtime: Option<PythonRuntime>,
}

impl Expecting for BuildRequest {
    const EXPECTING: &'static str = "a JSON object";
}

impl BuildRequest {
    /// The rules that relate fields: the source lies under this request's own prefix; the
    /// deploy settings take their defaults from the project and agent.
    fn form(self) -> Result<ValidRequest, RequestError> {
        let source = self
            .source
            .ok_or_else(|| RequestError::new("source", "is required"))?;
        let prefix = source_prefix(&self.project, &self.agent);
        if !source.key.starts_with(&prefix) {
            return Err(RequestError::new(
                "source",
                format!("must be an object under {prefix} (this request's project and agent)"),
            ));
        }
        let deploy = match self.deploy {
            None => None,
            Some(Object(d)) => Some(d.into_options()?),
        };
        artifact_rules(self.artifact, self.entry_point.as_ref(), self.runtime)?;
        Ok(ValidRequest {
            project: self.project,
            agent: self.agent,
            source,
            dockerfile: self.dockerfile,
            platform: self.platform,
            build_args: self.build_args,
            build_secrets: self.build_secrets,
            entry_point: self.entry_point,
            force: self.force,
            idempotency_key: self.idempotency_key,
            deploy,
            artifact: self.artifact,
            runtime: match self.artifact {
                ArtifactKind::Code => Some(self.runtime.unwrap_or_default()),
                ArtifactKind::Container => None,
            },
        })
    }
}

/// The rules relating `artifact`, `entryPoint` and `runtime`: a code artifact needs its entry
/// point; a runtime is a code artifact's only (a container's Python is its Dockerfile's).
fn artifact_rules(
    kind: ArtifactKind,
    entry_point: Option<&EntryPoint>,
    runtime: Option<PythonRuntime>,
) -> Result<(), RequestError> {
    match kind {
        ArtifactKind::Code if entry_point.is_none() => Err(RequestError::new(
            "entryPoint",
            "is required for artifact \"code\" (the file AgentCore starts, e.g. main.py)",
        )),
        ArtifactKind::Container if runtime.is_some() => Err(RequestError::new(
            "runtime",
            "applies only to artifact \"code\" (a container's runtime is its Dockerfile's)",
        )),
        _ => Ok(()),
    }
}

/// A request that passed every form rule, defaults applied. Serialized, it is the normalized
/// request (what execution names hash, what records keep); read back, it passes the rules again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidRequest {
    pub project: Name,
    pub agent: Name,
    pub source: S3Uri,
    pub dockerfile: DockerfilePath,
    pub platform: Platform,
    pub build_args: BuildArgs,
    /// Secret id -> Secrets Manager ARN (references; left out when empty, so the normalized
    /// request of a build without secrets is what it was).
    #[serde(default, skip_serializing_if = "BuildSecrets::is_empty")]
    pub build_secrets: BuildSecrets,
    /// The file that starts the agent: AgentCore's for a code artifact (required there),
    /// agentbuild's own Dockerfile's when a container's context has no Dockerfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<EntryPoint>,
    pub force: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
    /// Run the image in AgentCore Runtime once it exists (design: "Deploy").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployOptions>,
    /// What to build; left out when it is the default (container), so that the normalized
    /// request of a container build is what it was before code artifacts existed.
    #[serde(skip_serializing_if = "ArtifactKind::is_container")]
    pub artifact: ArtifactKind,
    /// A code artifact's runtime, default applied; `None` for a container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<PythonRuntime>,
}

impl ValidRequest {
    /// The artifact to make, settings resolved.
    pub fn artifact_spec(&self) -> ArtifactSpec {
        match (self.artifact, &self.entry_point) {
            (ArtifactKind::Code, Some(entry_point)) => ArtifactSpec::Code {
                entry_point: entry_point.clone(),
                runtime: self.runtime.unwrap_or_default(),
            },
            _ => ArtifactSpec::Container,
        }
    }
}

impl<'de> Deserialize<'de> for ValidRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Object::<BuildRequest>::deserialize(d)?
            .0
            .form()
            .map_err(serde::de::Error::custom)
    }
}

/// The form rules of the design's "Build request" section, whichever door the request came
/// through; every rejection names its field path and rule.
pub fn parse(input: &Value) -> Result<ValidRequest, RequestError> {
    from_value::<Object<BuildRequest>>(input, "")?.0.form()
}

/// Every form rule but the source's: for a request whose source is a local directory the CLI
/// packs and uploads only once the rest has passed (the upload's key is known only then).
pub fn parse_except_source(input: &Value) -> Result<(), RequestError> {
    let mut input = input.clone();
    if let Some(fields) = input.as_object_mut() {
        fields.remove("source");
    }
    let r = from_value::<Object<BuildRequest>>(&input, "")?.0;
    if let Some(Object(d)) = r.deploy {
        d.into_options()?;
    }
    Ok(())
}

/// Where sources may come from: the stack's own bucket (under `sources/`) and any extra
/// buckets the operator allowed; which execution roles a `deploy` may name; under which
/// prefix `buildSecrets` may name secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePolicy {
    pub own_bucket: String,
    pub extra_buckets: Vec<String>,
    pub runtime_roles: RolePolicy,
    pub build_secrets: SecretPolicy,
}

impl SourcePolicy {
    /// Only the stack's own bucket, and no runtime role but the (unnamed) default.
    pub fn own(bucket: impl Into<String>) -> Self {
        Self {
            own_bucket: bucket.into(),
            extra_buckets: Vec::new(),
            runtime_roles: RolePolicy::default(),
            build_secrets: SecretPolicy::default(),
        }
    }

    /// The stack's policy, applied to a request in form.
    pub fn admit(&self, req: &ValidRequest) -> Result<(), RequestError> {
        let bucket = req.source.bucket();
        if bucket != self.own_bucket && !self.extra_buckets.iter().any(|b| b == bucket) {
            return Err(RequestError::new(
                "source",
                format!("bucket {bucket} is not an allowed source bucket"),
            ));
        }
        let role = req.deploy.as_ref().and_then(|d| d.role_arn.as_deref());
        if role.is_some_and(|r| !self.runtime_roles.allows(r)) {
            return Err(RequestError::new(
                "deploy.roleArn",
                "is neither the stack's runtime role nor in its allowlist of runtime roles \
                 (the AllowedRuntimeRoles parameter)",
            ));
        }
        self.build_secrets.admit(&req.build_secrets)
    }
}

/// [`parse`], then the stack's [`SourcePolicy`].
pub fn validate(input: &Value, policy: &SourcePolicy) -> Result<ValidRequest, RequestError> {
    let req = parse(input)?;
    policy.admit(&req)?;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn policy() -> SourcePolicy {
        SourcePolicy {
            own_bucket: "agentbuild-data".into(),
            extra_buckets: vec!["partner-sources".into()],
            runtime_roles: RolePolicy {
                default_role: "arn:aws:iam::123456789012:role/agentbuild-runtime".into(),
                allowed: vec![],
            },
            build_secrets: SecretPolicy::from_prefix(SECRET_PREFIX).unwrap(),
        }
    }

    const SECRET_PREFIX: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:agentbuild/";
    const SECRET: &str =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:agentbuild/pypi-AbCdEf";

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
        assert_eq!(r.build_args.as_map()["_X1"], "$(rm -rf /); `id`");
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
        // The default name is the stack's, resolved when the plan is made.
        assert_eq!(d.runtime_name, None);
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
    fn build_secrets_are_references_under_the_stacks_prefix_named_by_field() {
        let r = validate(
            &with("buildSecrets", json!({"PYPI_TOKEN": SECRET})),
            &policy(),
        )
        .unwrap();
        assert_eq!(r.build_secrets.as_map()["PYPI_TOKEN"], SECRET);
        for (secrets, field, rule) in [
            (
                json!({"1A": SECRET}),
                "buildSecrets.1A",
                "secret ids must match",
            ),
            (
                json!({"A-B": SECRET}),
                "buildSecrets.A-B",
                "secret ids must match",
            ),
            (
                json!({"TOKEN": "hunter2"}),
                "buildSecrets.TOKEN",
                "Secrets Manager secret ARN",
            ),
            (
                json!({"TOKEN": 7}),
                "buildSecrets.TOKEN",
                "must be a string",
            ),
            (
                json!({"TOKEN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"}),
                "buildSecrets.TOKEN",
                "BuildSecretArnPrefix",
            ),
            (json!(["TOKEN"]), "buildSecrets", "must be"),
        ] {
            let e = rejected(with("buildSecrets", secrets.clone()));
            assert_eq!(e.field, field, "{secrets}");
            assert!(e.message.contains(rule), "{secrets}: {e}");
            // The caller's text is never echoed: a value that is no ARN might be the secret.
            assert!(!e.message.contains("hunter2"), "{e}");
        }
        let many: Map<String, Value> = (0..17).map(|i| (format!("K{i}"), json!(SECRET))).collect();
        assert_eq!(
            rejected(with("buildSecrets", Value::Object(many))).field,
            "buildSecrets"
        );
        // Off on a stack without a prefix: any buildSecrets is refused, naming the field.
        let off = SourcePolicy {
            build_secrets: SecretPolicy::default(),
            ..policy()
        };
        let e = validate(&with("buildSecrets", json!({"PYPI_TOKEN": SECRET})), &off).unwrap_err();
        assert_eq!(e.field, "buildSecrets");
        assert!(validate(&with("buildSecrets", json!({})), &off).is_ok());
    }

    #[test]
    fn an_entry_point_is_a_python_file_inside_the_context() {
        let r = validate(&with("entryPoint", json!("src/agent/main.py")), &policy()).unwrap();
        assert_eq!(r.entry_point.as_deref(), Some("src/agent/main.py"));
        for bad in [
            "/main.py",
            "../main.py",
            "a/../../main.py",
            "main",
            "main.sh",
            ".py",
            "a/.py",
            "ma in.py",
            "$(id).py",
            "",
        ] {
            assert_eq!(
                rejected(with("entryPoint", json!(bad))).field,
                "entryPoint",
                "{bad}"
            );
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
    fn form_rules_and_stack_policy_are_two_steps() {
        // Another bucket is in form; only the stack's policy refuses it.
        let v = with(
            "source",
            json!("s3://elsewhere/sources/nexus-ai/sales-assistant/a.zip"),
        );
        assert!(parse(&v).is_ok());
        assert_eq!(rejected(v).field, "source");
        let v = with(
            "deploy",
            json!({"roleArn": "arn:aws:iam::123456789012:role/admin"}),
        );
        assert!(parse(&v).is_ok(), "a role in form parses");
        assert_eq!(rejected(v).field, "deploy.roleArn");
    }

    #[test]
    fn the_normalized_request_serializes_and_reads_back_the_same() {
        let mut v = with("buildArgs", json!({"A": "1"}));
        let plain = serde_json::to_value(validate(&v, &policy()).unwrap()).unwrap();
        assert!(plain.get("buildSecrets").is_none() && plain.get("entryPoint").is_none());
        v["buildSecrets"] = json!({"PYPI": SECRET});
        v["entryPoint"] = json!("main.py");
        v["deploy"] = json!({"protocol": "MCP"});
        v["idempotencyKey"] = json!("k");
        let r = validate(&v, &policy()).unwrap();
        let text = serde_json::to_value(&r).unwrap();
        assert_eq!(text["dockerfile"], "Dockerfile");
        // The default runtime name is the stack's: the normalized request leaves it out.
        assert!(text["deploy"].get("runtimeName").is_none(), "{text}");
        assert_eq!(text["deploy"]["protocol"], "MCP");
        let back: ValidRequest = serde_json::from_value(text.clone()).unwrap();
        assert_eq!(back, r);
        assert_eq!(parse(&text).unwrap(), r);
    }

    #[test]
    fn every_rule_but_the_sources_can_be_checked_before_an_upload() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("source");
        assert_eq!(parse_except_source(&v), Ok(()));
        assert_eq!(parse(&v).unwrap_err().field, "source");
        v["agent"] = json!("Bad");
        assert_eq!(parse_except_source(&v).unwrap_err().field, "agent");
        let mut v = base();
        v["deploy"] = json!({"networkMode": "VPC"});
        assert_eq!(parse_except_source(&v).unwrap_err().field, "deploy.subnets");
    }

    #[test]
    fn null_means_not_given() {
        let mut v = base();
        for f in [
            "dockerfile",
            "platform",
            "buildArgs",
            "buildSecrets",
            "entryPoint",
            "force",
            "idempotencyKey",
            "deploy",
        ] {
            v[f] = Value::Null;
        }
        assert_eq!(parse(&v).unwrap(), parse(&base()).unwrap());
    }

    #[test]
    fn a_code_artifact_needs_an_entry_point_and_defaults_its_runtime() {
        let code = with("artifact", json!("code"));
        let e = rejected(code.clone());
        assert_eq!(e.field, "entryPoint", "{e}");
        let mut v = code;
        v["entryPoint"] = json!("src/main.py");
        let r = validate(&v, &policy()).unwrap();
        assert_eq!(r.artifact, ArtifactKind::Code);
        assert_eq!(r.runtime, Some(PythonRuntime::NEWEST));
        assert_eq!(
            r.artifact_spec(),
            ArtifactSpec::Code {
                entry_point: "src/main.py".to_string().try_into().unwrap(),
                runtime: PythonRuntime::NEWEST
            }
        );
        v["runtime"] = json!("PYTHON_3_12");
        assert_eq!(
            validate(&v, &policy()).unwrap().runtime,
            Some(PythonRuntime::Python312)
        );
        let text = serde_json::to_value(validate(&v, &policy()).unwrap()).unwrap();
        assert_eq!(text["artifact"], "code");
        assert_eq!(parse(&text).unwrap(), validate(&v, &policy()).unwrap());
    }

    #[test]
    fn rejects_bad_artifact_entry_point_and_runtime_naming_the_field() {
        let code = |extra: Value| {
            let mut v = with("artifact", json!("code"));
            v["entryPoint"] = json!("main.py");
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        for (v, field) in [
            (with("artifact", json!("zip")), "artifact"),
            (with("artifact", json!(1)), "artifact"),
            (code(json!({"entryPoint": "../main.py"})), "entryPoint"),
            (code(json!({"entryPoint": "/main.py"})), "entryPoint"),
            (code(json!({"entryPoint": "a;rm -rf"})), "entryPoint"),
            (code(json!({"entryPoint": ""})), "entryPoint"),
            (code(json!({"runtime": "PYTHON_3_9"})), "runtime"),
            (code(json!({"runtime": "NODE_22"})), "runtime"),
            (with("runtime", json!("PYTHON_3_12")), "runtime"),
        ] {
            assert_eq!(rejected(v.clone()).field, field, "{v}");
        }
    }

    #[test]
    fn a_container_request_normalizes_as_before_code_artifacts() {
        let r = validate(&with("artifact", json!("container")), &policy()).unwrap();
        assert_eq!(r, validate(&base(), &policy()).unwrap());
        let text = serde_json::to_value(&r).unwrap();
        assert!(text.get("artifact").is_none(), "{text}");
        assert!(text.get("runtime").is_none(), "{text}");
    }
}
