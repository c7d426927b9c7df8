//! Build secrets by reference (design: "Build secrets by reference"): `buildSecrets` maps a
//! BuildKit secret id to a Secrets Manager ARN. agentbuild never holds a value: CodeBuild
//! resolves each ARN into an environment variable of type SECRETS_MANAGER (with the build
//! role, which may read only under the stack's prefix) and the buildspec hands it to BuildKit
//! as a secret (`RUN --mount=type=secret,id=<ID>`), never as a build arg. Records, events,
//! GET bodies, `latest.json` and the fleet manifest keep the ids and ARNs, nothing else.

use super::form::{MapRules, Rule, StringMap};
use super::text::{clip, RequestError};

pub const MAX_BUILD_SECRETS: usize = 16;
/// Secrets Manager ARNs are at most 2048 characters.
pub const MAX_SECRET_ARN_BYTES: usize = 2048;
/// The CodeBuild variable (SECRETS_MANAGER) that carries secret `<ID>`: this prefix + the id.
pub const SECRET_ENV_PREFIX: &str = "AGENTBUILD_SECRET_";
/// The PLAINTEXT variable listing the ids (a JSON array): what the buildspec hands to BuildKit.
pub const SECRET_IDS_ENV: &str = "AGENTBUILD_BUILD_SECRETS";

/// The rules of `buildSecrets`: ids like build-arg keys, values Secrets Manager ARNs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSecretRules;

impl MapRules for BuildSecretRules {
    const NOUN: &'static str = "build secrets";
    const MAX_ENTRIES: usize = MAX_BUILD_SECRETS;
    const MAX_KEY_LEN: usize = 128;
    const MAX_VALUE_BYTES: usize = MAX_SECRET_ARN_BYTES;
    const MAX_TOTAL_BYTES: usize = MAX_BUILD_SECRETS * MAX_SECRET_ARN_BYTES;
    const KEY_RULE: &'static str =
        "secret ids must match ^[A-Za-z_][A-Za-z0-9_]*$ (at most 128 characters)";
    fn refuse(_key: &str) -> Option<&'static str> {
        None
    }
    fn value_rule(value: &str) -> Result<(), Rule> {
        secret_arn_rule(value)
    }
}

/// Secret id -> Secrets Manager ARN, every rule passed (references only: no value).
pub type BuildSecrets = StringMap<BuildSecretRules>;

pub const SECRET_ARN_RULE: &str = "must be a Secrets Manager secret ARN, \
     arn:<partition>:secretsmanager:<region>:<account>:secret:<name> (a reference: the value is \
     read by CodeBuild, never sent to agentbuild)";

/// `arn:<partition>:secretsmanager:<region>:<12 digits>:secret:<name>`, the name in Secrets
/// Manager's characters (letters, digits, `/_+=.@-`).
pub fn secret_arn_rule(arn: &str) -> Result<(), Rule> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    let ok = match parts.as_slice() {
        ["arn", partition, "secretsmanager", region, account, "secret", name] => {
            is_partition(partition) && is_region(region) && is_account(account) && is_name(name)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(SECRET_ARN_RULE.into())
    }
}

fn is_partition(p: &str) -> bool {
    p == "aws"
        || p.strip_prefix("aws-").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_lowercase() || c == b'-')
        })
}

fn is_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.contains('-')
        && r.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

fn is_account(a: &str) -> bool {
    a.len() == 12 && a.bytes().all(|c| c.is_ascii_digit())
}

fn is_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 512
        && n.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/_+=.@-".contains(&c))
}

/// The CodeBuild environment variable that carries secret `id` (ids are checked names).
pub fn secret_env_name(id: &str) -> String {
    format!("{SECRET_ENV_PREFIX}{id}")
}

/// The stack's allowlist (the BuildSecretArnPrefix parameter): every ARN must start with it.
/// None (the parameter empty) turns build secrets off: any `buildSecrets` is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretPolicy {
    pub arn_prefix: Option<String>,
}

impl SecretPolicy {
    /// The policy of a prefix as configured: empty is off; anything else must begin a secret
    /// ARN (`arn:…:secretsmanager:<region>:<account>:secret:` and maybe part of a name).
    pub fn from_prefix(prefix: &str) -> Result<Self, Rule> {
        let prefix = prefix.trim();
        if prefix.is_empty() {
            return Ok(Self::default());
        }
        secret_arn_rule(&format!("{prefix}x")).map_err(|_| {
            Rule::from(
                "must be empty or the start of a Secrets Manager ARN, \
                 arn:<partition>:secretsmanager:<region>:<account>:secret:<name prefix>",
            )
        })?;
        Ok(Self {
            arn_prefix: Some(prefix.to_string()),
        })
    }

    pub fn admit(&self, secrets: &BuildSecrets) -> Result<(), RequestError> {
        if secrets.is_empty() {
            return Ok(());
        }
        let Some(prefix) = &self.arn_prefix else {
            return Err(RequestError::new(
                "buildSecrets",
                "build secrets are off on this stack (its BuildSecretArnPrefix parameter is empty)",
            ));
        };
        match secrets
            .as_map()
            .iter()
            .find(|(_, arn)| !arn.starts_with(prefix))
        {
            None => Ok(()),
            Some((id, _)) => Err(RequestError::new(
                format!("buildSecrets.{}", clip(id)),
                format!(
                    "must be a secret under {prefix} (the stack's BuildSecretArnPrefix: the \
                     build role may read no other)"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:agentbuild/pypi-AbCdEf";

    #[test]
    fn accepts_secret_arns_and_refuses_anything_else() {
        for good in [
            ARN,
            "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x",
            "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:a/b_c+d=e.f@g-h",
        ] {
            assert_eq!(secret_arn_rule(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "hunter2",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/x",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:",
            "arn:aws:secretsmanager:eu-west-1:12345678901:secret:x",
            "arn:aws:secretsmanager:*:123456789012:secret:x",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x*",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:a b",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:$(id)",
            "arn:evil:secretsmanager:eu-west-1:123456789012:secret:x",
        ] {
            assert!(secret_arn_rule(bad).is_err(), "{bad}");
        }
    }

    fn secrets(pairs: &[(&str, &str)]) -> BuildSecrets {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.try_into().unwrap()
    }

    #[test]
    fn the_stack_prefix_admits_secrets_under_it_only_and_empty_turns_the_feature_off() {
        let on = SecretPolicy::from_prefix(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:agentbuild/",
        )
        .unwrap();
        assert_eq!(on.admit(&secrets(&[("PYPI", ARN)])), Ok(()));
        assert_eq!(on.admit(&secrets(&[])), Ok(()));
        let other = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf";
        let e = on
            .admit(&secrets(&[("PYPI", ARN), ("DB", other)]))
            .unwrap_err();
        assert_eq!(e.field, "buildSecrets.DB");
        assert!(e.message.contains("BuildSecretArnPrefix"), "{e}");
        let off = SecretPolicy::from_prefix("").unwrap();
        let e = off.admit(&secrets(&[("PYPI", ARN)])).unwrap_err();
        assert_eq!(e.field, "buildSecrets");
        assert!(e.message.contains("off"), "{e}");
        assert_eq!(off.admit(&secrets(&[])), Ok(()));
    }

    #[test]
    fn a_configured_prefix_must_begin_a_secret_arn() {
        for bad in [
            "*",
            "arn:aws:secretsmanager:*",
            "arn:aws:s3:::bucket/",
            "arn:aws:secretsmanager:eu-west-1:123456789012:",
        ] {
            assert!(SecretPolicy::from_prefix(bad).is_err(), "{bad}");
        }
        for good in [
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:agentbuild/",
        ] {
            assert!(SecretPolicy::from_prefix(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn each_secret_travels_in_a_variable_named_after_its_id() {
        assert_eq!(
            secret_env_name("PYPI_TOKEN"),
            "AGENTBUILD_SECRET_PYPI_TOKEN"
        );
    }
}
