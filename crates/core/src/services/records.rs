//! The records store: where records live (`domain::record`'s keys) and how one is read.

use crate::domain::plan::Source;
use crate::domain::record::{build_key, latest_key, may_replace, replaces_latest, BuildRecord};
use crate::domain::retention::retags;
use crate::ports::{Images, ObjectStore, Tagged};
use crate::services::objects::{self, Decision};
use crate::Error;

/// A stored record: its bytes as stored (fields of newer schema versions included) and parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub bytes: Vec<u8>,
    pub record: BuildRecord,
}

/// The record at `key`, or `None`; a stored object that is no record is `InvalidState`.
pub async fn read<S: ObjectStore>(store: &S, key: &str) -> Result<Option<Stored>, Error> {
    let Some(bytes) = store.get(key).await? else {
        return Ok(None);
    };
    let record = parse(key, &bytes)?;
    Ok(Some(Stored { bytes, record }))
}

/// `builds/<buildId>.json`.
pub async fn build<S: ObjectStore>(store: &S, build_id: &str) -> Result<Option<Stored>, Error> {
    read(store, &build_key(build_id)).await
}

/// `agents/<project>/<agent>/latest.json`.
pub async fn latest<S: ObjectStore>(
    store: &S,
    project: &str,
    agent: &str,
) -> Result<Option<Stored>, Error> {
    read(store, &latest_key(project, agent)).await
}

/// Writes `record` at its key unless the stored record is final (records only move forward).
/// Returns the record that stands: `record`, or the final one another writer stored first.
pub async fn write<S: ObjectStore>(store: &S, record: &BuildRecord) -> Result<BuildRecord, Error> {
    let key = build_key(&record.build_id);
    objects::update(store, &key, |current: Option<&Tagged>| {
        let Some(tagged) = current else {
            return Ok(Decision::Write(record.to_json(), record.clone()));
        };
        let stored = parse(&key, &tagged.bytes)?;
        if may_replace(&stored) {
            return Ok(Decision::Write(record.to_json(), record.clone()));
        }
        if stored != *record {
            tracing::info!(build_id = %record.build_id, kept = %stored.status, offered = %record.status, "record already final; kept");
        }
        Ok(Decision::Keep(stored))
    })
    .await
}

/// What an offer made of `latest.json`.
enum Offer {
    /// A newer submission stands.
    Kept,
    /// It names the record already (an earlier try of this step wrote it).
    Names,
    /// Written, replacing the record it named (`None`: the first).
    Replaced(Option<Box<BuildRecord>>),
}

/// Offers a success to the agent's `latest.json`: it takes the place only when it is newer
/// (`domain::record::replaces_latest`), by a conditional write, so two writers at once cannot
/// move it back. Returns whether it now names `record`. The source it names is then tagged to
/// be kept, and the one it replaced to expire again (`domain::retention`); the image it names
/// gets its kept tag, which leaves the replaced one's (`services::images::keep`).
pub async fn offer_latest<S: ObjectStore, I: Images>(
    store: &S,
    images: &I,
    record: &BuildRecord,
) -> Result<bool, Error> {
    if !crate::domain::promote::moves_latest(record) {
        tracing::info!(build_id = %record.build_id, "latest.json kept: a promote deploys elsewhere");
        return Ok(false);
    }
    let key = latest_key(&record.project, &record.agent);
    let offer = objects::update(store, &key, |current: Option<&Tagged>| {
        let Some(tagged) = current else {
            return Ok(Decision::Write(record.to_json(), Offer::Replaced(None)));
        };
        let current = parse(&key, &tagged.bytes)?;
        if !replaces_latest(&current, record) {
            tracing::info!(build_id = %record.build_id, newer = %current.build_id, "latest.json kept: newer submission");
            return Ok(Decision::Keep(Offer::Kept));
        }
        if tagged.bytes == record.to_json() {
            return Ok(Decision::Keep(Offer::Names));
        }
        let previous = Offer::Replaced(Some(Box::new(current)));
        Ok(Decision::Write(record.to_json(), previous))
    })
    .await?;
    match offer {
        Offer::Kept => return Ok(false),
        // Written by an earlier try of this step: the tags may not be.
        Offer::Names => {
            retain(store, record, None).await?;
            super::images::keep(images, store, record, None).await?;
        }
        Offer::Replaced(previous) => {
            let previous = previous.as_deref();
            retain(store, record, previous.map(|p| &p.source)).await?;
            super::images::keep(images, store, record, previous).await?;
        }
    }
    Ok(true)
}

/// Holds the named source (kept) and lifts the hold of the replaced one (it expires) — unless a
/// writer after us made latest.json name it again (it holds before we lift, or we see it on the
/// re-read).
async fn retain<S: ObjectStore>(
    store: &S,
    record: &BuildRecord,
    previous: Option<&Source>,
) -> Result<(), Error> {
    for retag in retags(store.own_bucket(), previous, &record.source) {
        let version = retag.version_id.as_deref();
        if !store.hold_latest(&retag.key, version, retag.latest).await? {
            tracing::warn!(key = %retag.key, "source version to hold does not exist");
            continue;
        }
        if !retag.latest {
            let now = latest(store, &record.project, &record.agent).await?;
            let named = |s: &Source| s.key == retag.key && s.version_id == retag.version_id;
            if now.is_some_and(|s| named(&s.record.source)) {
                store.hold_latest(&retag.key, version, true).await?;
            }
        }
    }
    Ok(())
}

fn parse(key: &str, bytes: &[u8]) -> Result<BuildRecord, Error> {
    objects::parse_json(key, bytes, "a build record")
}
