//! The normalized build plan every later state works from, and the content-addressed tag.

use super::request::{Platform, ValidRequest};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Which door the request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Api,
    Schedule,
    #[default]
    Console,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub uri: String,
    pub bucket: String,
    pub key: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRef {
    pub repository_uri: String,
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildPlan {
    /// The execution name; also the record's key.
    pub build_id: String,
    pub execution_arn: String,
    pub trigger: Trigger,
    pub project: String,
    pub agent: String,
    pub source: Source,
    pub image: ImageRef,
    pub dockerfile: String,
    pub platform: Platform,
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    pub force: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub requested_at: DateTime<Utc>,
    /// A caller-chosen deadline shorter than the configured one (seconds after the build starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_seconds: Option<u64>,
}

/// Execution facts the plan needs beside the request.
pub struct ExecutionFacts {
    pub build_id: String,
    pub execution_arn: String,
    pub trigger: Trigger,
    pub requested_at: DateTime<Utc>,
    pub deadline_seconds: Option<u64>,
}

impl BuildPlan {
    pub fn new(
        req: ValidRequest,
        source_sha256: String,
        repository_uri: &str,
        exec: ExecutionFacts,
    ) -> Self {
        let tag = image_tag(
            &req.agent,
            &source_sha256,
            &req.dockerfile,
            req.platform,
            &req.build_args,
        );
        BuildPlan {
            build_id: exec.build_id,
            execution_arn: exec.execution_arn,
            trigger: exec.trigger,
            project: req.project,
            agent: req.agent,
            source: Source {
                uri: req.source.to_string(),
                bucket: req.source.bucket,
                key: req.source.key,
                sha256: source_sha256,
            },
            image: ImageRef {
                repository_uri: repository_uri.to_string(),
                tag,
            },
            dockerfile: req.dockerfile,
            platform: req.platform,
            build_args: req.build_args,
            force: req.force,
            idempotency_key: req.idempotency_key,
            requested_at: exec.requested_at,
            deadline_seconds: exec.deadline_seconds,
        }
    }
}

/// `<agent>-<24 hex>`: the hash covers everything that decides the image's content (source,
/// Dockerfile path, platform, build args), so a tag never names two different images and an
/// unchanged input can reuse the image (tags are immutable in the repository).
pub fn image_tag(
    agent: &str,
    source_sha256: &str,
    dockerfile: &str,
    platform: Platform,
    build_args: &BTreeMap<String, String>,
) -> String {
    let mut h = Sha256::new();
    // Length-prefixed fields: no two different inputs serialize to the same bytes.
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    field("agentbuild-image-v1");
    field(source_sha256);
    field(dockerfile);
    field(platform.as_str());
    for (k, v) in build_args {
        field(k);
        field(v);
    }
    let digest = hex::encode(h.finalize());
    format!("{agent}-{}", &digest[..24])
}

/// Step Functions execution names we accept as build ids (they become S3 keys).
pub fn is_build_id(s: &str) -> bool {
    (1..=80).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tag_is_stable_and_fits_ecr_limits() {
        let a = image_tag(
            "x".repeat(63).as_str(),
            "ab",
            "Dockerfile",
            Platform::LinuxArm64,
            &args(&[]),
        );
        assert_eq!(a.len(), 63 + 1 + 24);
        assert!(a.len() <= 128);
        assert_eq!(
            a,
            image_tag(
                "x".repeat(63).as_str(),
                "ab",
                "Dockerfile",
                Platform::LinuxArm64,
                &args(&[])
            )
        );
    }

    #[test]
    fn tag_changes_with_every_input_that_shapes_the_image() {
        let base = image_tag("a", "s1", "Dockerfile", Platform::LinuxArm64, &args(&[]));
        let variants = [
            image_tag("a", "s2", "Dockerfile", Platform::LinuxArm64, &args(&[])),
            image_tag(
                "a",
                "s1",
                "Dockerfile.dev",
                Platform::LinuxArm64,
                &args(&[]),
            ),
            image_tag("a", "s1", "Dockerfile", Platform::LinuxAmd64, &args(&[])),
            image_tag(
                "a",
                "s1",
                "Dockerfile",
                Platform::LinuxArm64,
                &args(&[("A", "1")]),
            ),
            image_tag("b", "s1", "Dockerfile", Platform::LinuxArm64, &args(&[])),
        ];
        for v in variants {
            assert_ne!(base, v);
        }
        // Field boundaries matter: ("AB","") is not ("A","B").
        assert_ne!(
            image_tag("a", "s", "D", Platform::LinuxArm64, &args(&[("AB", "")])),
            image_tag("a", "s", "D", Platform::LinuxArm64, &args(&[("A", "B")]))
        );
    }

    #[test]
    fn build_ids_are_key_safe() {
        assert!(is_build_id("api-0123abcd"));
        assert!(is_build_id(&"a".repeat(80)));
        for bad in ["", "a/b", "a.b", "..", "a b", &"a".repeat(81)] {
            assert!(!is_build_id(bad), "{bad}");
        }
    }
}
