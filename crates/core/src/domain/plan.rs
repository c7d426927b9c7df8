//! The normalized build plan every later state works from, and the content-addressed tag.

use super::artifact::ArtifactSpec;
use super::deploy_request::DeploySpec;
use super::request::{Platform, ValidRequest};
use super::text::RequestError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Which door the request came through (defined with the request; the plan carries it).
pub use super::request::Trigger;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub uri: String,
    pub bucket: String,
    pub key: String,
    pub sha256: String,
    /// The S3 object version that was validated and hashed: the one CodeBuild builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRef {
    pub repository_uri: String,
    /// The tag this build pushes: the content tag, or for a forced build the content tag plus
    /// a suffix unique to the build (tags are immutable; a forced build needs a new one).
    pub tag: String,
    /// Set only when it differs from `tag` (forced builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_tag: Option<String>,
}

impl ImageRef {
    /// The content-addressed tag: what decides whether an image can be reused.
    pub fn content_tag(&self) -> &str {
        self.content_tag.as_deref().unwrap_or(&self.tag)
    }
}

/// The source object as validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceObject {
    pub sha256: String,
    pub version_id: Option<String>,
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
    /// Secret id -> Secrets Manager ARN (references; CodeBuild resolves them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_secrets: BTreeMap<String, String>,
    /// The Python file agentbuild's own Dockerfile starts when the context has no Dockerfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<String>,
    pub force: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub requested_at: DateTime<Utc>,
    /// For a scheduled rebuild: when the source it rebuilds was submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<DateTime<Utc>>,
    /// A caller-chosen deadline shorter than the configured one (seconds after the build starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_seconds: Option<u64>,
    /// Deploy the image to AgentCore Runtime after a successful (or REUSED) build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeploySpec>,
    /// What this build makes (left out for a container: plans from before code artifacts read
    /// the same). For code, `image.tag` is the artifact's content tag (no image is pushed).
    #[serde(default, skip_serializing_if = "ArtifactSpec::is_container")]
    pub artifact: ArtifactSpec,
    /// A promote: the build whose recorded image or code artifact this one deploys (checked by
    /// ValidateRequest). Nothing is built; the agent's `latest.json` and deploy ledger stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
}

/// Execution facts the plan needs beside the request.
pub struct ExecutionFacts {
    /// The stack that runs the execution (its defaults resolve the request's `deploy`).
    pub stack: String,
    pub build_id: String,
    pub execution_arn: String,
    pub trigger: Trigger,
    pub requested_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub deadline_seconds: Option<u64>,
}

impl BuildPlan {
    pub fn new(
        req: ValidRequest,
        object: SourceObject,
        repository_uri: &str,
        exec: ExecutionFacts,
    ) -> Self {
        let artifact = req.artifact_spec();
        let content_tag = plan_tag(&req, &artifact, &object.sha256);
        let deploy = req
            .deploy
            .map(|d| d.resolve(&exec.stack, &req.project, &req.agent));
        let (tag, content_tag) = if req.force {
            (forced_tag(&content_tag, &exec.build_id), Some(content_tag))
        } else {
            (content_tag, None)
        };
        BuildPlan {
            build_id: exec.build_id,
            execution_arn: exec.execution_arn,
            trigger: exec.trigger,
            project: req.project.into(),
            agent: req.agent.into(),
            source: Source {
                uri: req.source.to_string(),
                bucket: req.source.bucket().to_string(),
                key: req.source.key().to_string(),
                sha256: object.sha256,
                version_id: object.version_id,
            },
            image: ImageRef {
                repository_uri: repository_uri.to_string(),
                tag,
                content_tag,
            },
            dockerfile: req.dockerfile.into(),
            platform: req.platform,
            build_args: req.build_args.into_map(),
            build_secrets: req.build_secrets.into_map(),
            entry_point: req.entry_point.map(String::from),
            force: req.force,
            idempotency_key: req.idempotency_key.map(String::from),
            requested_at: exec.requested_at,
            submitted_at: exec.submitted_at,
            deadline_seconds: exec.deadline_seconds,
            deploy,
            artifact,
            promoted_from: None,
        }
    }

    /// A code artifact's entry point and runtime, `None` for a container build.
    pub fn code(&self) -> Option<(&str, super::artifact::PythonRuntime)> {
        match &self.artifact {
            ArtifactSpec::Code {
                entry_point,
                runtime,
            } => Some((entry_point, *runtime)),
            ArtifactSpec::Container => None,
        }
    }
}

impl BuildPlan {
    /// The request this plan was made from, read back through the request's rules (a record
    /// keeps it: a rebuild builds it again).
    pub fn request(&self) -> Result<ValidRequest, RequestError> {
        fn rule(field: &'static str) -> impl Fn(super::form::Rule) -> RequestError {
            move |r| RequestError::new(field, r.0)
        }
        Ok(ValidRequest {
            project: self.project.clone().try_into().map_err(rule("project"))?,
            agent: self.agent.clone().try_into().map_err(rule("agent"))?,
            source: self.source.uri.clone().try_into().map_err(rule("source"))?,
            dockerfile: self
                .dockerfile
                .clone()
                .try_into()
                .map_err(rule("dockerfile"))?,
            platform: self.platform,
            build_args: self
                .build_args
                .clone()
                .try_into()
                .map_err(rule("buildArgs"))?,
            build_secrets: self
                .build_secrets
                .clone()
                .try_into()
                .map_err(rule("buildSecrets"))?,
            entry_point: match &self.entry_point {
                None => None,
                Some(p) => Some(p.clone().try_into().map_err(rule("entryPoint"))?),
            },
            force: self.force,
            idempotency_key: match &self.idempotency_key {
                None => None,
                Some(k) => Some(k.clone().try_into().map_err(rule("idempotencyKey"))?),
            },
            deploy: self.deploy.clone().map(Into::into),
            artifact: self.artifact.kind(),
            runtime: self.code().map(|(_, r)| r),
        })
    }
}

/// The plan's content tag, what decides REUSED: the image's, or a code artifact's.
fn plan_tag(req: &ValidRequest, artifact: &ArtifactSpec, source_sha256: &str) -> String {
    match artifact {
        ArtifactSpec::Container => content_tag(&TagInputs {
            project: &req.project,
            agent: &req.agent,
            source_sha256,
            dockerfile: &req.dockerfile,
            platform: req.platform,
            build_args: req.build_args.as_map(),
            build_secrets: req.build_secrets.as_map(),
            entry_point: req.entry_point.as_deref(),
        }),
        ArtifactSpec::Code {
            entry_point,
            runtime,
        } => code_tag(
            &req.project,
            &req.agent,
            source_sha256,
            entry_point,
            *runtime,
        ),
    }
}

/// `<project>.<agent>-<24 hex>`: the hash covers the project and agent and everything that
/// decides the image's content (source, Dockerfile path, platform, build args), so a tag never
/// names two different images, never one of another project (identical sources of two
/// projects' same-named agents get two tags: the buildspec's "tag exists" shortcut cannot
/// hand one project the other's image) and an unchanged input can reuse the image (tags are
/// immutable in the repository). The readable part is cut to [`MAX_TAG_NAME`] characters so
/// that a forced tag still fits ECR's 128; the hash keeps cut names distinct.
pub fn image_tag(
    project: &str,
    agent: &str,
    source_sha256: &str,
    dockerfile: &str,
    platform: Platform,
    build_args: &BTreeMap<String, String>,
) -> String {
    content_tag(&TagInputs {
        project,
        agent,
        source_sha256,
        dockerfile,
        platform,
        build_args,
        build_secrets: &BTreeMap::new(),
        entry_point: None,
    })
}

/// Everything that decides an image's content.
pub struct TagInputs<'a> {
    pub project: &'a str,
    pub agent: &'a str,
    pub source_sha256: &'a str,
    pub dockerfile: &'a str,
    pub platform: Platform,
    pub build_args: &'a BTreeMap<String, String>,
    /// Which secret (by ARN) each id names: another secret may make another image.
    pub build_secrets: &'a BTreeMap<String, String>,
    /// Set: the image may be built from agentbuild's own Dockerfile, of [`OWN_DOCKERFILE`].
    pub entry_point: Option<&'a str>,
}

/// The version of agentbuild's own Python Dockerfile (buildspec.yml writes it): part of the
/// tag of every request with an `entryPoint`, so a new version of it never reuses an image
/// the old one built. Change it with the Dockerfile (tests/buildspec checks they agree).
pub const OWN_DOCKERFILE: &str = "agentbuild-python-dockerfile-v1";

/// [`image_tag`] of all the inputs. Secrets and the entry point enter the hash only when
/// given, behind markers no build-arg key can spell ('#'), so every tag of a request without
/// them is what it was.
pub fn content_tag(t: &TagInputs) -> String {
    let (project, agent) = (t.project, t.agent);
    let mut h = Sha256::new();
    // Length-prefixed fields: no two different inputs serialize to the same bytes.
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    field("agentbuild-image-v2");
    field(project);
    field(agent);
    field(t.source_sha256);
    field(t.dockerfile);
    field(t.platform.as_str());
    for (k, v) in t.build_args {
        field(k);
        field(v);
    }
    if !t.build_secrets.is_empty() {
        field("#buildSecrets");
        for (k, v) in t.build_secrets {
            field(k);
            field(v);
        }
    }
    if let Some(entry_point) = t.entry_point {
        field("#entryPoint");
        field(OWN_DOCKERFILE);
        field(entry_point);
    }
    let digest = hex::encode(h.finalize());
    let name = format!("{project}.{agent}");
    let name = &name[..name.len().min(MAX_TAG_NAME)];
    format!("{name}-{}", &digest[..24])
}

/// The content tag of a code artifact: everything that decides its bytes (source, entry
/// point, runtime) and whose it is; the same length-prefixed form as the image tag, under its
/// own domain string so that no image tag and artifact tag ever coincide.
pub fn code_tag(
    project: &str,
    agent: &str,
    source_sha256: &str,
    entry_point: &str,
    runtime: super::artifact::PythonRuntime,
) -> String {
    let mut h = Sha256::new();
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    field("agentbuild-code-v1");
    field(project);
    field(agent);
    field(source_sha256);
    field(entry_point);
    field(runtime.as_str());
    let digest = hex::encode(h.finalize());
    let name = format!("{project}.{agent}");
    let name = &name[..name.len().min(MAX_TAG_NAME)];
    format!("{name}-{}", &digest[..24])
}

/// The readable `<project>.<agent>` part of a content tag at most: + `-` + 24 hex is 116, and a
/// forced build's suffix (`-r` + 10 hex) makes 128, ECR's limit. Names are ASCII.
pub const MAX_TAG_NAME: usize = 128 - 12 - 1 - 24;

/// A forced build's tag: `<content tag>-r<10 hex of SHA-256(build id)>`, unique to the build
/// (the build id is the execution name) and the same on every retry of it. At most 88 + 12
/// characters, inside ECR's 128.
pub fn forced_tag(content_tag: &str, build_id: &str) -> String {
    let h = hex::encode(Sha256::digest(build_id.as_bytes()));
    format!("{content_tag}-r{}", &h[..10])
}

/// The build's ref in the cache repository: one per project, agent and platform, so agents
/// never read or evict each other's layers. Names up to 63 characters make this at most 133
/// characters; past ECR's 128, the end is replaced by a hash of the whole.
pub fn cache_tag(project: &str, agent: &str, platform: Platform) -> String {
    let arch = platform.as_str().trim_start_matches("linux/");
    let full = format!("{project}.{agent}.{arch}");
    if full.len() <= 128 {
        return full;
    }
    let h = hex::encode(Sha256::digest(full.as_bytes()));
    format!("{}-{}", &full[..128 - 17], &h[..16])
}

/// Step Functions execution names we accept as build ids (they become S3 keys).
pub fn is_build_id(s: &str) -> bool {
    (1..=80).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_code_tag_is_pinned_and_depends_on_every_input() {
        let t = code_tag(
            "p",
            "a",
            "ab",
            "main.py",
            crate::domain::artifact::PythonRuntime::Python313,
        );
        assert_eq!(
            t,
            code_tag(
                "p",
                "a",
                "ab",
                "main.py",
                crate::domain::artifact::PythonRuntime::Python313
            )
        );
        assert!(t.starts_with("p.a-"), "{t}");
        for other in [
            code_tag(
                "p",
                "b",
                "ab",
                "main.py",
                crate::domain::artifact::PythonRuntime::Python313,
            ),
            code_tag(
                "p",
                "a",
                "ac",
                "main.py",
                crate::domain::artifact::PythonRuntime::Python313,
            ),
            code_tag(
                "p",
                "a",
                "ab",
                "app.py",
                crate::domain::artifact::PythonRuntime::Python313,
            ),
            code_tag(
                "p",
                "a",
                "ab",
                "main.py",
                crate::domain::artifact::PythonRuntime::Python312,
            ),
        ] {
            assert_ne!(t, other);
        }
    }

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
            "p".repeat(63).as_str(),
            "x".repeat(63).as_str(),
            "ab",
            "Dockerfile",
            Platform::LinuxArm64,
            &args(&[]),
        );
        assert_eq!(a.len(), MAX_TAG_NAME + 1 + 24);
        assert!(forced_tag(&a, "b").len() <= 128);
        assert_eq!(
            a,
            image_tag(
                "p".repeat(63).as_str(),
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
        let base = image_tag(
            "p",
            "a",
            "s1",
            "Dockerfile",
            Platform::LinuxArm64,
            &args(&[]),
        );
        let variants = [
            image_tag(
                "p",
                "a",
                "s2",
                "Dockerfile",
                Platform::LinuxArm64,
                &args(&[]),
            ),
            image_tag(
                "p",
                "a",
                "s1",
                "Dockerfile.dev",
                Platform::LinuxArm64,
                &args(&[]),
            ),
            image_tag(
                "p",
                "a",
                "s1",
                "Dockerfile",
                Platform::LinuxAmd64,
                &args(&[]),
            ),
            image_tag(
                "p",
                "a",
                "s1",
                "Dockerfile",
                Platform::LinuxArm64,
                &args(&[("A", "1")]),
            ),
            image_tag(
                "p",
                "b",
                "s1",
                "Dockerfile",
                Platform::LinuxArm64,
                &args(&[]),
            ),
        ];
        for v in variants {
            assert_ne!(base, v);
        }
        // Same agent name, same inputs, another project: another tag (never its image).
        assert_ne!(
            base,
            image_tag(
                "q",
                "a",
                "s1",
                "Dockerfile",
                Platform::LinuxArm64,
                &args(&[])
            )
        );
        assert!(base.starts_with("p.a-"), "{base}");
        // Field boundaries matter: ("AB","") is not ("A","B").
        assert_ne!(
            image_tag(
                "p",
                "a",
                "s",
                "D",
                Platform::LinuxArm64,
                &args(&[("AB", "")])
            ),
            image_tag(
                "p",
                "a",
                "s",
                "D",
                Platform::LinuxArm64,
                &args(&[("A", "B")])
            )
        );
    }

    #[test]
    fn tags_are_pinned_to_golden_values() {
        // A change here changes every stored tag: no earlier image would be REUSED again.
        assert_eq!(
            image_tag(
                "nexus-ai",
                "sales-assistant",
                &"0f".repeat(32),
                "Dockerfile",
                Platform::LinuxArm64,
                &args(&[("PYTHON_VERSION", "3.12")])
            ),
            GOLDEN_TAG
        );
        assert_eq!(
            forced_tag(GOLDEN_TAG, "sched-20261130t0400z-0123abcd"),
            GOLDEN_FORCED_TAG
        );
        assert_eq!(
            cache_tag("nexus-ai", "sales-assistant", Platform::LinuxAmd64),
            "nexus-ai.sales-assistant.amd64"
        );
    }

    #[test]
    fn secrets_and_the_entry_point_change_the_tag_only_when_given() {
        let build_args = args(&[("PYTHON_VERSION", "3.12")]);
        let sha = "0f".repeat(32);
        let inputs = |secrets: &[(&str, &str)], entry: Option<&'static str>| {
            let secrets = args(secrets);
            content_tag(&TagInputs {
                project: "nexus-ai",
                agent: "sales-assistant",
                source_sha256: &sha,
                dockerfile: "Dockerfile",
                platform: Platform::LinuxArm64,
                build_args: &build_args,
                build_secrets: &secrets,
                entry_point: entry,
            })
        };
        assert_eq!(
            inputs(&[], None),
            GOLDEN_TAG,
            "no secrets, no entry point: as before"
        );
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:agentbuild/a";
        let tags = [
            inputs(&[("A", arn)], None),
            inputs(&[("A", &format!("{arn}2"))], None),
            inputs(&[("B", arn)], None),
            inputs(&[], Some("main.py")),
            inputs(&[], Some("app.py")),
            inputs(&[("A", arn)], Some("main.py")),
        ];
        for (i, a) in tags.iter().enumerate() {
            assert_ne!(a, GOLDEN_TAG);
            for b in &tags[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Golden: a change here changes the tag of every build with secrets or an entry point.
        assert_eq!(tags[0], "nexus-ai.sales-assistant-d38355dc18eb9dfdb4e10866");
        assert_eq!(tags[3], "nexus-ai.sales-assistant-ede1a031eb213d4c7ccf1144");
    }

    const GOLDEN_TAG: &str = "nexus-ai.sales-assistant-03a2e71edbdd32dc7b54bfb5";
    const GOLDEN_FORCED_TAG: &str = "nexus-ai.sales-assistant-03a2e71edbdd32dc7b54bfb5-r3a4077c2ea";

    #[test]
    fn a_forced_tag_is_unique_to_its_build_and_fits_ecr() {
        let content = format!("{}-{}", "a".repeat(63), "b".repeat(24));
        let one = forced_tag(&content, "build-1");
        assert_ne!(one, forced_tag(&content, "build-2"));
        assert_eq!(one, forced_tag(&content, "build-1"));
        assert!(one.starts_with(&format!("{content}-r")));
        assert!(one.len() <= 128, "{}", one.len());
    }

    #[test]
    fn cache_tags_fit_ecr_and_stay_distinct_when_shortened() {
        let p = "p".repeat(63);
        let a = cache_tag(&p, &"a".repeat(63), Platform::LinuxArm64);
        let b = cache_tag(&p, &format!("{}b", "a".repeat(62)), Platform::LinuxArm64);
        assert_eq!(a.len(), 128);
        assert_ne!(a, b);
        assert_ne!(a, cache_tag(&p, &"a".repeat(63), Platform::LinuxAmd64));
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-'));
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
