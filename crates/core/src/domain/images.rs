//! Which images ECR must keep: the image an agent's `latest.json` names carries a kept tag
//! (`kept_tag`), and the repository's top-priority lifecycle rule never expires an image with
//! one (template.yaml; docs/records.md "Images").

use crate::domain::deployment::DeploymentStatus;
use crate::domain::plan::BuildPlan;
use crate::domain::record::{BuildRecord, BuildState, ImageRecord};
use sha2::{Digest, Sha256};

/// The prefix of kept tags. Upper case: a content tag starts with a project name
/// (`^[a-z0-9]`), so no build's own tag can ever match the protecting rule.
pub const KEPT_PREFIX: &str = "KEPT.";

/// ECR (and Docker) tags are at most 128 characters.
const MAX_TAG: usize = 128;

/// `KEPT.<tag>`: one per image tag, so adding the new one before removing the old never leaves
/// latest's image unprotected. A tag too long for the prefix keeps its start and ends in a hash
/// of the whole (still one kept tag per tag).
pub fn kept_tag(tag: &str) -> String {
    let full = format!("{KEPT_PREFIX}{tag}");
    if full.len() <= MAX_TAG {
        return full;
    }
    let h = hex::encode(Sha256::digest(tag.as_bytes()));
    let keep = MAX_TAG - KEPT_PREFIX.len() - 1 - 24;
    format!("{KEPT_PREFIX}{}-{}", &tag[..keep], &h[..24])
}

/// The repository name of an ECR repository URI (`<account>.dkr.ecr.<region>.<domain>/<name>`).
pub fn repository_name(repository_uri: &str) -> Option<&str> {
    let (host, name) = repository_uri.split_once('/')?;
    (host.contains(".dkr.ecr.") && !name.is_empty()).then_some(name)
}

/// An image of a record, as ECR knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageId {
    pub repository: String,
    pub tag: String,
}

impl ImageId {
    /// The image `record` names; `None` for a record without an ECR image (a code artifact).
    pub fn of(record: &BuildRecord) -> Option<Self> {
        let image = &record.image;
        let repository = repository_name(&image.repository_uri)?;
        (!image.tag.is_empty()).then(|| ImageId {
            repository: repository.to_string(),
            tag: image.tag.clone(),
        })
    }
}

/// When latest moves from `previous` to `named`, whether `previous`'s image loses its kept tag.
/// Not when it is the same image, nor while a runtime may still run it: `previous` was deployed
/// (READY) and `named` was not, so the agent's runtime still runs `previous`'s image.
pub fn releases(previous: &BuildRecord, named: &BuildRecord) -> bool {
    let ready = |r: &BuildRecord| {
        r.deployment
            .as_ref()
            .is_some_and(|d| d.status == DeploymentStatus::Ready)
    };
    previous.image.tag != named.image.tag && (ready(named) || !ready(previous))
}

// Here rather than in `record` (which is at its size limit): no import runs back to it.
impl ImageRecord {
    /// The image a record names: the plan's tag, or for REUSED the reused image's own tag
    /// (maybe a forced build's), with what the build exported.
    pub(crate) fn of(plan: &BuildPlan, build: Option<&BuildState>) -> Self {
        let tag = build
            .and_then(|b| b.image_tag.as_deref())
            .unwrap_or(&plan.image.tag);
        let content_tag = plan.image.content_tag();
        ImageRecord {
            repository_uri: plan.image.repository_uri.clone(),
            content_tag: (content_tag != tag).then(|| content_tag.to_string()),
            tag: tag.to_string(),
            uri: build.and_then(|b| b.image_uri.clone()),
            digest: build.and_then(|b| b.image_digest.clone()),
            attestations: build.and_then(|b| b.attestations_uri.clone()),
            // RecordResult asks ECR (the registry signs after the push).
            signature: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_tag_can_never_be_a_content_tag_and_fits_ecr() {
        assert_eq!(kept_tag("nexus-ai.sales-abc"), "KEPT.nexus-ai.sales-abc");
        let long = format!("{}.{}-{}", "p".repeat(63), "a".repeat(24), "0".repeat(36));
        assert_eq!(long.len(), 125);
        let kept = kept_tag(&long);
        assert_eq!(kept.len(), 128);
        assert!(kept.starts_with(KEPT_PREFIX));
        assert_ne!(kept, kept_tag(&format!("{long}x")));
        assert_eq!(kept, kept_tag(&long), "stable");
    }

    #[test]
    fn the_repository_name_comes_from_an_ecr_uri_only() {
        let uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/agentbuild-images";
        assert_eq!(repository_name(uri), Some("agentbuild-images"));
        assert_eq!(
            repository_name("1.dkr.ecr.us-east-1.localhost.localstack.cloud:4566/team/x"),
            Some("team/x")
        );
        assert_eq!(repository_name("docker.io/library/python"), None);
        assert_eq!(repository_name("no-slash"), None);
    }

    fn latest(tag: &str, deployed: bool) -> BuildRecord {
        use crate::domain::deployment::Deployment;
        let mut p = crate::domain::record::tests::plan();
        p.image.tag = tag.into();
        let mut r = BuildRecord::new(
            &p,
            None,
            None,
            crate::domain::record::tests::t("2026-11-28T10:00:00Z"),
        );
        r.deployment = deployed.then(|| Deployment {
            status: DeploymentStatus::Ready,
            runtime_id: None,
            runtime_arn: None,
            runtime_name: "rt".into(),
            runtime_version: None,
            container_uri: None,
            action: None,
            failure_reason: None,
            started_at: r.timestamps.requested_at,
            finished_at: None,
            deadline: None,
            wait_seconds: None,
            checks: 0,
            superseded: None,
            endpoint: None,
            version: None,
            previous_version: None,
            smoke: None,
            phase: None,
            scan: None,
        });
        r
    }

    #[test]
    fn the_replaced_image_keeps_its_tag_while_a_runtime_may_still_run_it() {
        assert!(releases(&latest("a", false), &latest("b", false)));
        assert!(
            releases(&latest("a", true), &latest("b", true)),
            "the runtime moved"
        );
        assert!(releases(&latest("a", false), &latest("b", true)));
        assert!(
            !releases(&latest("a", true), &latest("b", false)),
            "the runtime still runs a"
        );
        assert!(
            !releases(&latest("a", false), &latest("a", false)),
            "same image"
        );
    }
}
