//! The `deploy` request field (design: "Deploy"): its rules, the default runtime name, and the
//! settings a plan and a record keep. Pure: the roles a stack allows come in as a value.
//!
//! [`DeployRequest`] is the field as a caller writes it (serde types, newtypes holding the
//! rules); [`DeploySpec`] is it validated with defaults written out, which reads back through
//! the same rules, so a scheduled rebuild redeploys with exactly the same settings.

use super::form::{
    from_value, nullable, string_newtype, Expecting, MapRules, Object, Rule, StringMap,
};
use super::rollout::{EndpointName, Lifecycle, SmokeTest, DEFAULT_ENDPOINT};
use super::scan_gate::AcceptedFindings;
use super::text::RequestError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const RUNTIME_NAME_RULE: &str =
    "must match ^[a-zA-Z][a-zA-Z0-9_]{0,47}$ (AgentCore's rule for runtime names)";
pub const MAX_ENV_VARS: usize = 50;
pub const MAX_ENV_VALUE_BYTES: usize = 4096;
/// AgentCore's limit for an environment variable's name.
pub const MAX_ENV_KEY_LEN: usize = 100;
/// All values together: 50 values of 4 KiB would push a console input past Step Functions'
/// 256 KiB state limit after validation (the same reason build args have a total cap).
pub const MAX_ENV_TOTAL_BYTES: usize = 16 * 1024;
/// AgentCore takes up to 16 subnets and 16 security groups for a VPC runtime.
pub const MAX_VPC_IDS: usize = 16;
/// The tags every runtime agentbuild creates carries: a runtime found by name is only touched
/// when they name the same stack, project and agent.
pub const TAG_PROJECT: &str = "agentbuild:project";
pub const TAG_AGENT: &str = "agentbuild:agent";
/// The stack that created a resource (its CloudFormation stack name): two stacks in one account
/// never touch each other's runtimes.
pub const TAG_STACK: &str = "agentbuild:stack";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(try_from = "String")]
pub enum Protocol {
    #[default]
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "MCP")]
    Mcp,
    #[serde(rename = "A2A")]
    A2a,
}

impl TryFrom<String> for Protocol {
    type Error = Rule;
    fn try_from(s: String) -> Result<Self, Rule> {
        match s.as_str() {
            "HTTP" => Ok(Protocol::Http),
            "MCP" => Ok(Protocol::Mcp),
            "A2A" => Ok(Protocol::A2a),
            _ => Err("must be \"HTTP\", \"MCP\" or \"A2A\"".into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(try_from = "String")]
pub enum NetworkMode {
    #[default]
    #[serde(rename = "PUBLIC")]
    Public,
    #[serde(rename = "VPC")]
    Vpc,
}

impl TryFrom<String> for NetworkMode {
    type Error = Rule;
    fn try_from(s: String) -> Result<Self, Rule> {
        match s.as_str() {
            "PUBLIC" => Ok(NetworkMode::Public),
            "VPC" => Ok(NetworkMode::Vpc),
            _ => Err("must be \"PUBLIC\" or \"VPC\"".into()),
        }
    }
}

string_newtype!(
    /// AgentCore's runtime platform version: `V` and a number (`V1` is AgentCore's create-time
    /// default, `V2` the newer platform); which ones exist is AgentCore's to say.
    PlatformVersion,
    platform_version_rule
);

fn platform_version_rule(s: &str) -> Result<(), Rule> {
    let digits = s.strip_prefix('V').unwrap_or_default();
    let ok = (1..=3).contains(&digits.len())
        && !digits.starts_with('0')
        && digits.bytes().all(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err("must be an AgentCore platform version: V and a number (V1, V2)".into())
    }
}

/// A validated `deploy` as a door keeps it, defaults applied except the two that are the
/// stack's: the runtime name (`None`: [`default_runtime_name`] of the stack that runs it) and
/// the role. Serialized, it is part of the normalized request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeployOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_name: Option<String>,
    pub protocol: Protocol,
    pub network_mode: NetworkMode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment_variables: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The named endpoint callers invoke (`None`: [`DEFAULT_ENDPOINT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke_test: Option<SmokeTest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// AgentCore's runtime platform version (`V1`, `V2`; `None`: AgentCore's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    /// Scan findings the request accepts at the vulnerability gate (`domain::scan_gate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accept_findings: Vec<String>,
}

impl DeployOptions {
    /// The settings a stack deploys with: the runtime name resolved (the caller's, else the
    /// stack's default for this agent).
    pub fn resolve(self, stack: &str, project: &str, agent: &str) -> DeploySpec {
        DeploySpec {
            runtime_name: self
                .runtime_name
                .unwrap_or_else(|| default_runtime_name(stack, project, agent)),
            protocol: self.protocol,
            network_mode: self.network_mode,
            subnets: self.subnets,
            security_groups: self.security_groups,
            environment_variables: self.environment_variables,
            role_arn: self.role_arn,
            endpoint: self.endpoint,
            smoke_test: self.smoke_test,
            lifecycle: self.lifecycle,
            platform_version: self.platform_version,
            accept_findings: self.accept_findings,
        }
    }
}

impl From<DeploySpec> for DeployOptions {
    /// A plan's settings as a request again (a rebuild): the resolved name is now explicit.
    fn from(s: DeploySpec) -> Self {
        DeployOptions {
            runtime_name: Some(s.runtime_name),
            protocol: s.protocol,
            network_mode: s.network_mode,
            subnets: s.subnets,
            security_groups: s.security_groups,
            environment_variables: s.environment_variables,
            role_arn: s.role_arn,
            endpoint: s.endpoint,
            smoke_test: s.smoke_test,
            lifecycle: s.lifecycle,
            platform_version: s.platform_version,
            accept_findings: s.accept_findings,
        }
    }
}

/// [`DeployOptions`] resolved by the stack that runs it (the plan's and the record's
/// `deployment` settings; the role: `None` is the stack's own runtime role, resolved when the
/// runtime is created or updated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploySpec {
    pub runtime_name: String,
    pub protocol: Protocol,
    pub network_mode: NetworkMode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment_variables: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The named endpoint callers invoke (`None`: [`DEFAULT_ENDPOINT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke_test: Option<SmokeTest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// AgentCore's runtime platform version (`V1`, `V2`; `None`: AgentCore's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    /// Scan findings the request accepts at the vulnerability gate (`domain::scan_gate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accept_findings: Vec<String>,
}

impl DeploySpec {
    /// The endpoint callers invoke: the request's, else `live`.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT)
    }
}

/// Which execution roles a runtime may get: the stack's own, and those its operator allowed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RolePolicy {
    pub default_role: String,
    pub allowed: Vec<String>,
}

impl RolePolicy {
    pub fn allows(&self, role: &str) -> bool {
        (!self.default_role.is_empty() && role == self.default_role)
            || self.allowed.iter().any(|r| r == role)
    }
}

/// `ab_` + `<project>_<agent>` (`-` -> `_`), cut to 39 characters, + `_` + the first 8 hex of
/// SHA-256(`<stack>/<project>/<agent>`): at most 48 characters, starts with a letter, and
/// neither two agents nor two stacks share it (the hash covers the stack and the whole names,
/// also when the cut hides their ends; none of the three can contain `/`).
pub fn default_runtime_name(stack: &str, project: &str, agent: &str) -> String {
    let readable: String = format!("ab_{project}_{agent}")
        .replace('-', "_")
        .chars()
        .take(39)
        .collect();
    let hash = hex::encode(Sha256::digest(
        format!("{stack}/{project}/{agent}").as_bytes(),
    ));
    format!("{readable}_{}", &hash[..8])
}

pub fn is_runtime_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 48
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

string_newtype!(
    /// `^[a-zA-Z][a-zA-Z0-9_]{0,47}$`
    RuntimeName,
    runtime_name_rule
);

fn runtime_name_rule(s: &str) -> Result<(), Rule> {
    if is_runtime_name(s) {
        Ok(())
    } else {
        Err(RUNTIME_NAME_RULE.into())
    }
}

string_newtype!(
    /// An IAM role ARN in form (whether the stack allows it is its policy).
    RoleArn,
    role_arn_rule
);

fn role_arn_rule(s: &str) -> Result<(), Rule> {
    if is_role_arn(s) {
        Ok(())
    } else {
        Err("must be an IAM role ARN (arn:<partition>:iam::<account>:role/<name>)".into())
    }
}

/// An IAM role ARN in form (any partition, a 12-digit account, a role path and name).
pub fn is_role_arn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("arn:") else {
        return false;
    };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [partition, "iam", "", account, resource] = parts.as_slice() else {
        return false;
    };
    let Some(name) = resource.strip_prefix("role/") else {
        return false;
    };
    partition.starts_with("aws")
        && partition
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c == b'-')
        && account.len() == 12
        && account.bytes().all(|c| c.is_ascii_digit())
        && (1..=512).contains(&name.len())
        && name.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, b'+' | b'=' | b',' | b'.' | b'@' | b'_' | b'-' | b'/')
        })
        && !name.ends_with('/')
}

/// `subnet-…` / `sg-…` ids: the prefix, then 8 to 17 lowercase hex digits; at most
/// [`MAX_VPC_IDS`], duplicates dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct SubnetIds(Vec<String>);

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct SecurityGroupIds(Vec<String>);

impl TryFrom<Vec<String>> for SubnetIds {
    type Error = Rule;
    fn try_from(list: Vec<String>) -> Result<Self, Rule> {
        vpc_ids(list, "subnet-").map(SubnetIds)
    }
}

impl TryFrom<Vec<String>> for SecurityGroupIds {
    type Error = Rule;
    fn try_from(list: Vec<String>) -> Result<Self, Rule> {
        vpc_ids(list, "sg-").map(SecurityGroupIds)
    }
}

fn vpc_ids(list: Vec<String>, prefix: &str) -> Result<Vec<String>, Rule> {
    if list.len() > MAX_VPC_IDS {
        return Err(format!("at most {MAX_VPC_IDS}").into());
    }
    let mut out: Vec<String> = Vec::new();
    for id in list {
        let ok = id.strip_prefix(prefix).is_some_and(|h| {
            (8..=17).contains(&h.len())
                && h.bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        });
        if !ok {
            return Err(format!("each must be an id like {prefix}0123456789abcdef0").into());
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// The rules of `deploy.environmentVariables`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRules;

impl MapRules for EnvRules {
    const NOUN: &'static str = "variables";
    const MAX_ENTRIES: usize = MAX_ENV_VARS;
    const MAX_KEY_LEN: usize = MAX_ENV_KEY_LEN;
    const MAX_VALUE_BYTES: usize = MAX_ENV_VALUE_BYTES;
    const MAX_TOTAL_BYTES: usize = MAX_ENV_TOTAL_BYTES;
    const KEY_RULE: &'static str =
        "keys must match ^[A-Za-z_][A-Za-z0-9_]*$ (at most 100 characters)";
    fn refuse(_: &str) -> Option<&'static str> {
        None
    }
}

/// `deploy` as a caller writes it (read as an [`Object`]).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeployRequest {
    #[serde(default)]
    runtime_name: Option<RuntimeName>,
    #[serde(default, deserialize_with = "nullable")]
    protocol: Protocol,
    #[serde(default, deserialize_with = "nullable")]
    network_mode: NetworkMode,
    #[serde(default, deserialize_with = "nullable")]
    subnets: SubnetIds,
    #[serde(default, deserialize_with = "nullable")]
    security_groups: SecurityGroupIds,
    #[serde(default, deserialize_with = "nullable")]
    environment_variables: StringMap<EnvRules>,
    #[serde(default)]
    role_arn: Option<RoleArn>,
    #[serde(default)]
    endpoint: Option<EndpointName>,
    #[serde(default)]
    smoke_test: Option<SmokeTest>,
    #[serde(default)]
    lifecycle: Option<Lifecycle>,
    #[serde(default)]
    platform_version: Option<PlatformVersion>,
    #[serde(default, deserialize_with = "nullable")]
    accept_findings: AcceptedFindings,
}

impl Expecting for DeployRequest {
    const EXPECTING: &'static str = "an object ({} deploys with the defaults)";
}

impl DeployRequest {
    /// The rules that relate fields (a VPC runtime needs subnets and security groups, a public
    /// one has none); the stack's defaults are left to [`DeployOptions::resolve`].
    pub fn into_options(self) -> Result<DeployOptions, RequestError> {
        let (subnets, groups) = (self.subnets.0, self.security_groups.0);
        match self.network_mode {
            NetworkMode::Vpc => {
                for (field, list) in [("subnets", &subnets), ("securityGroups", &groups)] {
                    if list.is_empty() {
                        return Err(RequestError::new(
                            format!("deploy.{field}"),
                            "is required with networkMode VPC (at least one)",
                        ));
                    }
                }
            }
            NetworkMode::Public if !subnets.is_empty() || !groups.is_empty() => {
                let field = if subnets.is_empty() {
                    "securityGroups"
                } else {
                    "subnets"
                };
                return Err(RequestError::new(
                    format!("deploy.{field}"),
                    "is allowed only with networkMode VPC",
                ));
            }
            NetworkMode::Public => {}
        }
        Ok(DeployOptions {
            runtime_name: self.runtime_name.map(String::from),
            protocol: self.protocol,
            network_mode: self.network_mode,
            subnets,
            security_groups: groups,
            environment_variables: self.environment_variables.into_map(),
            role_arn: self.role_arn.map(String::from),
            endpoint: self.endpoint.map(String::from),
            smoke_test: self.smoke_test,
            lifecycle: self.lifecycle,
            platform_version: self.platform_version.map(String::from),
            accept_findings: self.accept_findings.into(),
        })
    }
}

/// A `deploy` object's form rules on their own (a promote's body): the settings as a request
/// keeps them.
pub fn parse_deploy(value: &Value) -> Result<DeployOptions, RequestError> {
    from_value::<Object<DeployRequest>>(value, "deploy")?
        .0
        .into_options()
}

/// A `deploy` object on its own (tests and tools): its form rules, then `roles` when given,
/// resolved as `stack` would run it.
pub fn validate_deploy(
    value: &Value,
    stack: &str,
    project: &str,
    agent: &str,
    roles: Option<&RolePolicy>,
) -> Result<DeploySpec, RequestError> {
    let spec = from_value::<Object<DeployRequest>>(value, "deploy")?
        .0
        .into_options()?
        .resolve(stack, project, agent);
    let refused = spec
        .role_arn
        .as_deref()
        .is_some_and(|r| roles.is_some_and(|p| !p.allows(r)));
    if refused {
        return Err(RequestError::new(
            "deploy.roleArn",
            "is neither the stack's runtime role nor in its allowlist of runtime roles \
             (the AllowedRuntimeRoles parameter)",
        ));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    const ROLE: &str = "arn:aws:iam::123456789012:role/agentbuild-runtime";
    const OTHER: &str = "arn:aws:iam::123456789012:role/team/other-runtime";
    const STACK: &str = "agentbuild";

    fn roles() -> RolePolicy {
        RolePolicy {
            default_role: ROLE.into(),
            allowed: vec![OTHER.into()],
        }
    }

    fn ok(v: Value) -> DeploySpec {
        validate_deploy(&v, STACK, "nexus-ai", "sales-assistant", Some(&roles())).unwrap()
    }

    fn field(v: Value) -> String {
        validate_deploy(&v, STACK, "nexus-ai", "sales-assistant", Some(&roles()))
            .unwrap_err()
            .field
    }

    #[test]
    fn the_platform_version_passes_through_in_agentcores_form_only() {
        let spec = ok(json!({"platformVersion": "V2"}));
        assert_eq!(spec.platform_version.as_deref(), Some("V2"));
        assert_eq!(ok(json!({})).platform_version, None, "AgentCore's default");
        for bad in ["v2", "V", "V0", "V02", "V1234", "2", "V2;", "latest"] {
            assert_eq!(
                field(json!({ "platformVersion": bad })),
                "deploy.platformVersion",
                "{bad}"
            );
        }
        // Absent, the normalized request is what it was (execution names do not move).
        let opts = parse_deploy(&json!({})).unwrap();
        assert!(!serde_json::to_string(&opts)
            .unwrap()
            .contains("platformVersion"));
    }

    #[test]
    fn the_default_runtime_name_is_pinned_valid_and_per_agent_and_stack() {
        // A change here moves every agent to a new runtime: pinned.
        assert_eq!(
            default_runtime_name(STACK, "nexus-ai", "sales-assistant"),
            "ab_nexus_ai_sales_assistant_e9795110"
        );
        // Another stack of the same account: another runtime for the same agent.
        assert_eq!(
            default_runtime_name("agentbuild-staging", "nexus-ai", "sales-assistant"),
            "ab_nexus_ai_sales_assistant_40fa9874"
        );
        let long = default_runtime_name(&"s".repeat(128), &"p".repeat(63), &"a".repeat(63));
        assert_eq!(long.len(), 48);
        assert!(is_runtime_name(&long));
        // Same cut prefix, different agents: different names.
        let a = default_runtime_name(STACK, &"p".repeat(63), &"a".repeat(63));
        let b = default_runtime_name(STACK, &"p".repeat(63), &format!("{}b", "a".repeat(62)));
        assert_ne!(a, b);
        // `-` and `_` spellings that would collide are told apart by the hash.
        assert_ne!(
            default_runtime_name(STACK, "a-b", "c"),
            default_runtime_name(STACK, "a", "b-c")
        );
    }

    #[test]
    fn a_door_keeps_the_default_name_for_the_stack_and_a_plan_makes_it_explicit() {
        let opts = from_value::<Object<DeployRequest>>(&json!({}), "deploy")
            .unwrap()
            .0
            .into_options()
            .unwrap();
        // The normalized request names no runtime: each stack resolves its own.
        assert!(serde_json::to_value(&opts)
            .unwrap()
            .get("runtimeName")
            .is_none());
        let a = opts.clone().resolve("stack-a", "p", "a");
        let b = opts.resolve("stack-b", "p", "a");
        assert_ne!(a.runtime_name, b.runtime_name);
        // Read back as a request (a rebuild), the resolved name is the caller's.
        let again = DeployOptions::from(a.clone()).resolve("stack-b", "p", "a");
        assert_eq!(again, a);
    }

    #[test]
    fn an_empty_deploy_takes_every_default() {
        let d = ok(json!({}));
        assert_eq!(d.runtime_name, "ab_nexus_ai_sales_assistant_e9795110");
        assert_eq!(
            (d.protocol, d.network_mode, d.role_arn),
            (Protocol::Http, NetworkMode::Public, None)
        );
    }

    #[test]
    fn a_full_deploy_is_kept_and_round_trips_through_the_rules() {
        let d = ok(json!({
            "runtimeName": "Sales_Bot", "protocol": "MCP", "networkMode": "VPC",
            "subnets": ["subnet-0123456789abcdef0"], "securityGroups": ["sg-0123abcd"],
            "environmentVariables": {"LOG_LEVEL": "info"}, "roleArn": OTHER
        }));
        assert_eq!(d.runtime_name, "Sales_Bot");
        assert_eq!(d.role_arn.as_deref(), Some(OTHER));
        let again = ok(serde_json::to_value(&d).unwrap());
        assert_eq!(again, d);
        let defaults = ok(json!({}));
        assert_eq!(ok(serde_json::to_value(&defaults).unwrap()), defaults);
    }

    #[test]
    fn rejections_name_the_deploy_field() {
        let cases = [
            (json!([]), "deploy"),
            (json!({"runtime": "x"}), "deploy.runtime"),
            (json!({"runtimeName": "1bad"}), "deploy.runtimeName"),
            (json!({"runtimeName": "has-dash"}), "deploy.runtimeName"),
            (json!({"runtimeName": "x".repeat(49)}), "deploy.runtimeName"),
            (json!({"protocol": "GRPC"}), "deploy.protocol"),
            (json!({"networkMode": "private"}), "deploy.networkMode"),
            (json!({"networkMode": "VPC"}), "deploy.subnets"),
            (
                json!({"networkMode": "VPC", "subnets": ["subnet-01234567"]}),
                "deploy.securityGroups",
            ),
            (json!({"subnets": ["subnet-01234567"]}), "deploy.subnets"),
            (
                json!({"networkMode": "VPC", "subnets": ["subnet-xyz"], "securityGroups": ["sg-01234567"]}),
                "deploy.subnets",
            ),
            (
                json!({"environmentVariables": "A=1"}),
                "deploy.environmentVariables",
            ),
            (
                json!({"environmentVariables": {"A-B": "1"}}),
                "deploy.environmentVariables.A-B",
            ),
            (
                json!({"environmentVariables": {"A": "a\u{0}b"}}),
                "deploy.environmentVariables.A",
            ),
            (
                json!({"environmentVariables": {"A": "x".repeat(4097)}}),
                "deploy.environmentVariables.A",
            ),
            (json!({"roleArn": "admin"}), "deploy.roleArn"),
            (
                json!({"roleArn": "arn:aws:iam::123456789012:role/admin"}),
                "deploy.roleArn",
            ),
        ];
        for (v, want) in cases {
            assert_eq!(field(v.clone()), want, "{v}");
        }
        let many: Map<String, Value> = (0..51).map(|i| (format!("K{i}"), json!("v"))).collect();
        assert_eq!(
            field(json!({ "environmentVariables": many })),
            "deploy.environmentVariables"
        );
        let big: Map<String, Value> = (0..5)
            .map(|i| (format!("K{i}"), json!("x".repeat(4096))))
            .collect();
        assert_eq!(
            field(json!({ "environmentVariables": big })),
            "deploy.environmentVariables"
        );
    }

    #[test]
    fn a_role_outside_the_allowlist_is_refused_without_echoing_it() {
        let e = validate_deploy(
            &json!({"roleArn": "arn:aws:iam::123456789012:role/admin"}),
            STACK,
            "p",
            "a",
            Some(&roles()),
        )
        .unwrap_err();
        assert!(
            e.message.contains("allowlist") && !e.message.contains("admin"),
            "{e}"
        );
        // The stack's own role may be named explicitly.
        assert_eq!(
            ok(json!({ "roleArn": ROLE })).role_arn.as_deref(),
            Some(ROLE)
        );
        // Without a policy (the CLI), only the form is checked.
        let d = validate_deploy(
            &json!({"roleArn": "arn:aws:iam::123456789012:role/admin"}),
            STACK,
            "p",
            "a",
            None,
        )
        .unwrap();
        assert!(d.role_arn.is_some());
    }

    #[test]
    fn accepted_findings_are_kept_and_a_bad_id_names_the_field() {
        let spec = ok(json!({ "acceptFindings": ["CVE-2026-0001", "CVE-2026-0001"] }));
        assert_eq!(spec.accept_findings, vec!["CVE-2026-0001".to_string()]);
        assert_eq!(
            DeployOptions::from(spec.clone()).accept_findings,
            spec.accept_findings
        );
        assert!(
            field(json!({ "acceptFindings": ["not an id"] })).starts_with("deploy.acceptFindings")
        );
        assert!(field(json!({ "acceptFindings": "CVE-2026-0001" }))
            .starts_with("deploy.acceptFindings"));
    }

    #[test]
    fn role_arns_are_checked_for_form() {
        for good in [
            ROLE,
            OTHER,
            "arn:aws-cn:iam::123456789012:role/x+y=z,a.b@c_d-e",
        ] {
            assert!(is_role_arn(good), "{good}");
        }
        for bad in [
            "arn:aws:iam::12345678901:role/x",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:sts::123456789012:role/x",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/a b",
            "arn:aws:iam:us-east-1:123456789012:role/x",
        ] {
            assert!(!is_role_arn(bad), "{bad}");
        }
    }

    #[test]
    fn echoes_at_most_64_characters_of_a_hostile_key() {
        let long = "K".repeat(500);
        let f = field(json!({ long.clone(): 1 }));
        assert!(f.chars().count() <= "deploy.".len() + 65, "{f}");
    }
}
