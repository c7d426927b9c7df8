//! The images records name: REUSED only names an image that still exists, and the image an
//! agent's `latest.json` names carries its kept tag (`domain::images`), which follows latest.

use crate::domain::artifact::ArtifactKind;
use crate::domain::images::{kept_tag, releases, ImageId};
use crate::domain::plan::BuildPlan;
use crate::domain::record::{latest_key, reuse, BuildRecord, Reuse};
use crate::ports::{Images, ObjectStore};
use crate::services::objects;
use crate::Error;

/// The image an unforced request can reuse: the reuse rule (`domain::record::reuse`) over the
/// agent's latest record, and the image must still be in ECR under its tag with the recorded
/// digest — else the request builds.
pub async fn reusable<I: Images>(
    images: &I,
    plan: &BuildPlan,
    latest: Option<&BuildRecord>,
) -> Result<Option<Reuse>, Error> {
    let Some((latest, reused)) = latest.and_then(|l| reuse(plan, l).map(|r| (l, r))) else {
        return Ok(None);
    };
    Ok(still_there(images, plan, latest, &reused)
        .await?
        .then_some(reused))
}

/// Whether the image `reused` names (the agent's `latest` record's) is still in ECR under its
/// tag with the recorded digest.
pub async fn still_there<I: Images>(
    images: &I,
    plan: &BuildPlan,
    latest: &BuildRecord,
    reused: &Reuse,
) -> Result<bool, Error> {
    let Some(image) = ImageId::of(latest) else {
        return Ok(false);
    };
    let found = images.digest(&image).await?;
    let same = match (&found, &reused.digest) {
        (Some(found), Some(recorded)) => found == recorded,
        (found, None) => found.is_some(),
        (None, Some(_)) => false,
    };
    if !same {
        tracing::info!(build_id = %plan.build_id, tag = %image.tag, found = ?found, "latest image is gone from ECR; building");
    }
    Ok(same)
}

/// Latest moved from `previous` (`None`: the first, or a retry that found it written) to
/// `named`: `named`'s image gets its kept tag first, then `previous`'s loses its own (unless a
/// runtime may still run it, `domain::images::releases`) — so latest's image is never without
/// one. A writer after us may have made latest name `previous` again: seen on the re-read, its
/// tag goes back.
pub async fn keep<I: Images, S: ObjectStore>(
    images: &I,
    store: &S,
    named: &BuildRecord,
    previous: Option<&BuildRecord>,
) -> Result<(), Error> {
    if let Some(image) = ImageId::of(named) {
        if !images.add_tag(&image, &kept_tag(&image.tag)).await? {
            tracing::warn!(build_id = %named.build_id, tag = %image.tag, "latest's image is not in ECR; nothing to keep");
        }
    }
    let Some(previous) = previous.filter(|p| releases(p, named)) else {
        return Ok(());
    };
    let Some(old) = ImageId::of(previous) else {
        return Ok(());
    };
    let kept = ImageId {
        tag: kept_tag(&old.tag),
        ..old.clone()
    };
    images.remove_tag(&kept).await?;
    let key = latest_key(&named.project, &named.agent);
    let now: Option<BuildRecord> = objects::read_json(store, &key, "a build record").await?;
    if now.is_some_and(|r| r.image.tag == old.tag) {
        images.add_tag(&old, &kept.tag).await?;
    }
    Ok(())
}

/// What of `record`'s artifact is gone, if anything: its image (in ECR under its tag, with the
/// recorded digest) or its code artifact version (in S3). `None`: it is all there.
pub async fn artifact_gone<S: ObjectStore, I: Images>(
    store: &S,
    images: &I,
    record: &BuildRecord,
) -> Result<Option<String>, Error> {
    if let Some(code) = record
        .artifact
        .as_ref()
        .filter(|a| a.kind == ArtifactKind::Code)
    {
        let found = match code.version_id.as_deref() {
            Some(v) => store.head_version(&code.bucket, &code.key, v).await?,
            None => store.head(&code.bucket, &code.key).await?,
        };
        return Ok(found
            .is_none()
            .then(|| format!("the code artifact {}", code.uri)));
    }
    let Some(image) = ImageId::of(record) else {
        return Ok(Some("the image".into()));
    };
    let found = images.digest(&image).await?;
    let same = match (&found, &record.image.digest) {
        (Some(found), Some(recorded)) => found == recorded,
        (found, None) => found.is_some(),
        (None, Some(_)) => false,
    };
    Ok((!same).then(|| format!("the image {}:{}", image.repository, image.tag)))
}
