//! Where an artifact came from (issue 24): the record's `provenance` — the source object
//! (version and SHA-256), the CodeBuild build, the buildspec's SHA-256 (the template carries
//! a verbatim copy of the repository's file, checked by scripts/check-template.sh), the
//! builder images as configured, the build args' NAMES (never values) and the build secrets'
//! ids (never values or ARNs). Pure: computed from the plan and the build's state.

use super::plan::BuildPlan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The container build's buildspec, as deployed in BuildProject.
pub const BUILDSPEC: &str = include_str!("../../../../buildspec.yml");
/// The code path's layer buildspec, as deployed in LayerProject.
pub const BUILDSPEC_CODE: &str = include_str!("../../../../buildspec-code.yml");
/// BuildProject's image (template.yaml; a contract test holds them equal).
pub const CONTAINER_BUILDER_IMAGE: &str = "aws/codebuild/amazonlinux-aarch64-standard:3.0";
/// LayerProject's image (template.yaml).
pub const LAYER_BUILDER_IMAGE: &str =
    "aws/codebuild/amazonlinux-aarch64-lambda-standard:python3.12";
/// The base images of agentbuild's own Dockerfile (buildspec.yml; 3.X is the context's
/// `.python-version`, else 3.13). Tags, not digests: they are not pinned by digest, and the
/// record says so rather than invent one.
pub const OWN_DOCKERFILE_IMAGES: [&str; 2] = [
    "ghcr.io/astral-sh/uv:python3.X-bookworm-slim",
    "python:3.X-slim-bookworm",
];

/// One image a build ran in or from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuilderImage {
    /// `codebuild` (the build host's image) or `dockerfile` (a base image of the Dockerfile).
    pub role: String,
    pub image: String,
    /// `sha256:…` when pinned by digest; `None`: configured by tag only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The record's `provenance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// `s3://bucket/key` of the build context.
    pub source_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version_id: Option<String>,
    pub source_sha256: String,
    /// The CodeBuild build that made the artifact (none for REUSED or a code-only assembly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codebuild_build_id: Option<String>,
    /// `buildspec.yml` or `buildspec-code.yml`.
    pub buildspec: String,
    pub buildspec_sha256: String,
    pub builder_images: Vec<BuilderImage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_arg_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_secret_ids: Vec<String>,
    /// For REUSED: the build whose artifact this is (its record has that build's provenance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn image(role: &str, image: &str) -> BuilderImage {
    BuilderImage {
        role: role.into(),
        image: image.into(),
        digest: None,
    }
}

/// The provenance of a container build's image: `codebuild_build_id` is the build that made
/// it, `reused_from` the earlier build whose image a REUSED build names.
pub fn of_container(
    plan: &BuildPlan,
    codebuild_build_id: Option<&str>,
    reused_from: Option<&str>,
) -> Provenance {
    let mut images = vec![image("codebuild", CONTAINER_BUILDER_IMAGE)];
    if plan.entry_point.is_some() {
        images.extend(OWN_DOCKERFILE_IMAGES.iter().map(|i| image("dockerfile", i)));
    }
    Provenance {
        source_uri: plan.source.uri.clone(),
        source_version_id: plan.source.version_id.clone(),
        source_sha256: plan.source.sha256.clone(),
        codebuild_build_id: codebuild_build_id.map(String::from),
        buildspec: "buildspec.yml".into(),
        buildspec_sha256: sha256_hex(BUILDSPEC),
        builder_images: images,
        build_arg_names: plan.build_args.keys().cloned().collect(),
        build_secret_ids: plan.build_secrets.keys().cloned().collect(),
        reused_from: reused_from.map(String::from),
    }
}

/// The provenance of a code artifact: its dependency layer's build (`buildspec-code.yml` in
/// LayerProject; `layer_build` is that build's CodeBuild id when this execution built it).
pub fn of_code(plan: &BuildPlan, layer_build: Option<String>) -> Provenance {
    Provenance {
        codebuild_build_id: layer_build,
        buildspec: "buildspec-code.yml".into(),
        buildspec_sha256: sha256_hex(BUILDSPEC_CODE),
        builder_images: vec![image("codebuild", LAYER_BUILDER_IMAGE)],
        ..of_container(plan, None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::tests::plan;

    #[test]
    fn a_container_build_names_its_source_build_buildspec_and_arg_names_only() {
        let mut p = plan();
        p.build_args
            .insert("API_KEY_NAME".into(), "secret-looking-value".into());
        p.build_secrets.insert(
            "INDEX_TOKEN".into(),
            "arn:aws:secretsmanager:us-east-1:1:secret:x".into(),
        );
        let prov = of_container(&p, Some("agentbuild:1234"), None);
        assert_eq!(prov.source_sha256, p.source.sha256);
        assert_eq!(prov.codebuild_build_id.as_deref(), Some("agentbuild:1234"));
        assert_eq!(prov.build_arg_names, ["API_KEY_NAME"]);
        assert_eq!(prov.build_secret_ids, ["INDEX_TOKEN"]);
        assert_eq!(prov.buildspec_sha256.len(), 64);
        let text = serde_json::to_string(&prov).unwrap();
        assert!(
            !text.contains("secret-looking-value") && !text.contains("secretsmanager"),
            "{text}"
        );
        assert_eq!(prov.builder_images[0].image, CONTAINER_BUILDER_IMAGE);
    }

    #[test]
    fn the_builder_images_are_the_templates() {
        let template = include_str!("../../../../template.yaml");
        for image in [CONTAINER_BUILDER_IMAGE, LAYER_BUILDER_IMAGE] {
            assert!(template.contains(&format!("Image: {image}\n")), "{image}");
        }
        for image in OWN_DOCKERFILE_IMAGES {
            let prefix = image.split("3.X").next().unwrap();
            assert!(BUILDSPEC.contains(prefix), "{image}");
        }
    }

    #[test]
    fn a_code_artifact_names_the_layer_build() {
        let prov = of_code(&plan(), Some("agentbuild-layer:9".into()));
        assert_eq!(prov.buildspec, "buildspec-code.yml");
        assert_eq!(prov.buildspec_sha256, sha256_hex(BUILDSPEC_CODE));
        assert_eq!(prov.builder_images[0].image, LAYER_BUILDER_IMAGE);
    }
}
