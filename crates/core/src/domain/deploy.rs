//! The `deploy` request field (design: "Deploy"): its rules, the default runtime name, and the
//! settings a plan and a record keep. Pure: the roles a stack allows come in as a value.
//!
//! A validated [`DeploySpec`] serializes to a `deploy` object that passes these rules again
//! (defaults written out), so a scheduled rebuild redeploys with exactly the same settings.

use super::text::{clip, map_value, RequestError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const DEPLOY_FIELDS: &[&str] = &[
    "runtimeName",
    "protocol",
    "networkMode",
    "subnets",
    "securityGroups",
    "environmentVariables",
    "roleArn",
];
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
/// when they name the same project and agent.
pub const TAG_PROJECT: &str = "agentbuild:project";
pub const TAG_AGENT: &str = "agentbuild:agent";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Protocol {
    #[default]
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "MCP")]
    Mcp,
    #[serde(rename = "A2A")]
    A2a,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum NetworkMode {
    #[default]
    #[serde(rename = "PUBLIC")]
    Public,
    #[serde(rename = "VPC")]
    Vpc,
}

/// A validated `deploy`, defaults applied (except the role: `None` is the stack's own runtime
/// role, resolved when the runtime is created or updated).
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
}

/// Which execution roles a runtime may get: the stack's own, and those its operator allowed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RolePolicy {
    pub default_role: String,
    pub allowed: Vec<String>,
}

impl RolePolicy {
    pub fn allows(&self, role: &str) -> bool {
        role == self.default_role || self.allowed.iter().any(|r| r == role)
    }
}

/// `ab_` + `<project>_<agent>` (`-` -> `_`), cut to 39 characters, + `_` + the first 8 hex of
/// SHA-256(`<project>/<agent>`): at most 48 characters, starts with a letter, and two agents
/// never share it (the hash covers the whole names, also when the cut hides their ends).
pub fn default_runtime_name(project: &str, agent: &str) -> String {
    let readable: String = format!("ab_{project}_{agent}")
        .replace('-', "_")
        .chars()
        .take(39)
        .collect();
    let hash = hex::encode(Sha256::digest(format!("{project}/{agent}").as_bytes()));
    format!("{readable}_{}", &hash[..8])
}

pub fn is_runtime_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 48
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
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

/// Validates a request's `deploy` object. `roles` is the stack's policy where it is known
/// (ValidateRequest, the API); the CLI checks the form only and leaves the allowlist to them.
pub fn validate_deploy(
    value: &Value,
    project: &str,
    agent: &str,
    roles: Option<&RolePolicy>,
) -> Result<DeploySpec, RequestError> {
    let obj = value.as_object().ok_or_else(|| {
        RequestError::new("deploy", "must be an object ({} deploys with the defaults)")
    })?;
    if let Some(unknown) = obj.keys().find(|k| !DEPLOY_FIELDS.contains(&k.as_str())) {
        return Err(RequestError::new(
            format!("deploy.{}", clip(unknown)),
            format!("unknown field; deploy has {}", DEPLOY_FIELDS.join(", ")),
        ));
    }
    let runtime_name = match text(obj, "runtimeName")? {
        None => default_runtime_name(project, agent),
        Some(n) if is_runtime_name(n) => n.to_string(),
        Some(_) => return Err(RequestError::new("deploy.runtimeName", RUNTIME_NAME_RULE)),
    };
    let protocol = match text(obj, "protocol")? {
        None => Protocol::default(),
        Some("HTTP") => Protocol::Http,
        Some("MCP") => Protocol::Mcp,
        Some("A2A") => Protocol::A2a,
        Some(_) => {
            return Err(RequestError::new(
                "deploy.protocol",
                "must be \"HTTP\", \"MCP\" or \"A2A\"",
            ))
        }
    };
    let network_mode = match text(obj, "networkMode")? {
        None => NetworkMode::default(),
        Some("PUBLIC") => NetworkMode::Public,
        Some("VPC") => NetworkMode::Vpc,
        Some(_) => {
            return Err(RequestError::new(
                "deploy.networkMode",
                "must be \"PUBLIC\" or \"VPC\"",
            ))
        }
    };
    let subnets = ids(obj, "subnets", "subnet-")?;
    let security_groups = ids(obj, "securityGroups", "sg-")?;
    match network_mode {
        NetworkMode::Vpc => {
            for (field, list) in [("subnets", &subnets), ("securityGroups", &security_groups)] {
                if list.is_empty() {
                    return Err(RequestError::new(
                        format!("deploy.{field}"),
                        "is required with networkMode VPC (at least one)",
                    ));
                }
            }
        }
        NetworkMode::Public => {
            if !subnets.is_empty() || !security_groups.is_empty() {
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
        }
    }
    let environment_variables = env_vars(obj.get("environmentVariables"))?;
    let role_arn = match text(obj, "roleArn")? {
        None => None,
        Some(r) if !is_role_arn(r) => {
            return Err(RequestError::new(
                "deploy.roleArn",
                "must be an IAM role ARN (arn:<partition>:iam::<account>:role/<name>)",
            ))
        }
        Some(r) => {
            if roles.is_some_and(|p| !p.allows(r)) {
                return Err(RequestError::new(
                    "deploy.roleArn",
                    "is neither the stack's runtime role nor in its allowlist of runtime roles \
                     (the AllowedRuntimeRoles parameter)",
                ));
            }
            Some(r.to_string())
        }
    };
    Ok(DeploySpec {
        runtime_name,
        protocol,
        network_mode,
        subnets,
        security_groups,
        environment_variables,
        role_arn,
    })
}

fn text<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, RequestError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(RequestError::new(
            format!("deploy.{field}"),
            "must be a string",
        )),
    }
}

/// `subnet-…` / `sg-…` ids: the prefix, then 8 to 17 lowercase hex digits.
fn ids(obj: &Map<String, Value>, field: &str, prefix: &str) -> Result<Vec<String>, RequestError> {
    let name = format!("deploy.{field}");
    let list = match obj.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(RequestError::new(name, "must be a list of strings")),
    };
    if list.len() > MAX_VPC_IDS {
        return Err(RequestError::new(name, format!("at most {MAX_VPC_IDS}")));
    }
    let mut out = Vec::new();
    for v in list {
        let ok = v.as_str().filter(|s| {
            s.strip_prefix(prefix).is_some_and(|h| {
                (8..=17).contains(&h.len())
                    && h.bytes()
                        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            })
        });
        let Some(id) = ok else {
            return Err(RequestError::new(
                name,
                format!("each must be an id like {prefix}0123456789abcdef0"),
            ));
        };
        if !out.iter().any(|o| o == id) {
            out.push(id.to_string());
        }
    }
    Ok(out)
}

fn env_vars(value: Option<&Value>) -> Result<BTreeMap<String, String>, RequestError> {
    let obj = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(RequestError::new(
                "deploy.environmentVariables",
                "must be an object of string values",
            ))
        }
    };
    if obj.len() > MAX_ENV_VARS {
        return Err(RequestError::new(
            "deploy.environmentVariables",
            format!("at most {MAX_ENV_VARS} variables"),
        ));
    }
    let mut out = BTreeMap::new();
    let mut total = 0;
    for (k, v) in obj {
        let field = format!("deploy.environmentVariables.{}", clip(k));
        let b = k.as_bytes();
        let key_ok = !b.is_empty()
            && b.len() <= MAX_ENV_KEY_LEN
            && (b[0].is_ascii_alphabetic() || b[0] == b'_')
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if !key_ok {
            return Err(RequestError::new(
                field,
                "keys must match ^[A-Za-z_][A-Za-z0-9_]*$ (at most 100 characters)",
            ));
        }
        let v = map_value(&field, v, MAX_ENV_VALUE_BYTES)?;
        total += v.len();
        if total > MAX_ENV_TOTAL_BYTES {
            return Err(RequestError::new(
                "deploy.environmentVariables",
                "all values together must be at most 16384 bytes",
            ));
        }
        out.insert(k.clone(), v.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROLE: &str = "arn:aws:iam::123456789012:role/agentbuild-runtime";
    const OTHER: &str = "arn:aws:iam::123456789012:role/team/other-runtime";

    fn roles() -> RolePolicy {
        RolePolicy {
            default_role: ROLE.into(),
            allowed: vec![OTHER.into()],
        }
    }

    fn ok(v: Value) -> DeploySpec {
        validate_deploy(&v, "nexus-ai", "sales-assistant", Some(&roles())).unwrap()
    }

    fn field(v: Value) -> String {
        validate_deploy(&v, "nexus-ai", "sales-assistant", Some(&roles()))
            .unwrap_err()
            .field
    }

    #[test]
    fn the_default_runtime_name_is_pinned_valid_and_per_agent() {
        // A change here moves every agent to a new runtime: pinned.
        assert_eq!(
            default_runtime_name("nexus-ai", "sales-assistant"),
            "ab_nexus_ai_sales_assistant_9c92e084"
        );
        let long = default_runtime_name(&"p".repeat(63), &"a".repeat(63));
        assert_eq!(long.len(), 48);
        assert!(is_runtime_name(&long));
        // Same cut prefix, different agents: different names.
        let a = default_runtime_name(&"p".repeat(63), &"a".repeat(63));
        let b = default_runtime_name(&"p".repeat(63), &format!("{}b", "a".repeat(62)));
        assert_ne!(a, b);
        // `-` and `_` spellings that would collide are told apart by the hash.
        assert_ne!(
            default_runtime_name("a-b", "c"),
            default_runtime_name("a", "b-c")
        );
    }

    #[test]
    fn an_empty_deploy_takes_every_default() {
        let d = ok(json!({}));
        assert_eq!(d.runtime_name, "ab_nexus_ai_sales_assistant_9c92e084");
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
            "p",
            "a",
            None,
        )
        .unwrap();
        assert!(d.role_arn.is_some());
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
