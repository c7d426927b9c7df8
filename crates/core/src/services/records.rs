//! The records store: where records live (`domain::record`'s keys) and how one is read.

use crate::domain::plan::Source;
use crate::domain::record::{build_key, latest_key, may_replace, replaces_latest, BuildRecord};
use crate::domain::retention::retags;
use crate::ports::{ObjectStore, Precondition};
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

/// How often a conditional write is tried again after losing to another writer before the
/// step gives up with a transient error (the state machine's Retry then tries again later).
const MAX_CONFLICTS: usize = 8;

/// Writes `record` at its key unless the stored record is final (records only move forward).
/// Returns the record that stands: `record`, or the final one another writer stored first.
pub async fn write<S: ObjectStore>(store: &S, record: &BuildRecord) -> Result<BuildRecord, Error> {
    let key = build_key(&record.build_id);
    for _ in 0..MAX_CONFLICTS {
        let current = store.get_tagged(&key).await?;
        let written = match &current {
            None => {
                store
                    .put_json_if(&key, record.to_json(), Precondition::Absent)
                    .await?
            }
            Some(tagged) => {
                let stored: BuildRecord = parse(&key, &tagged.bytes)?;
                if !may_replace(&stored) {
                    if stored != *record {
                        tracing::info!(build_id = %record.build_id, kept = %stored.status, offered = %record.status, "record already final; kept");
                    }
                    return Ok(stored);
                }
                store
                    .put_json_if(&key, record.to_json(), Precondition::Matches(&tagged.etag))
                    .await?
            }
        };
        if written {
            return Ok(record.clone());
        }
    }
    Err(conflict(&key))
}

/// Offers a success to the agent's `latest.json`: it takes the place only when it is newer
/// (`domain::record::replaces_latest`), by a conditional write, so two writers at once cannot
/// move it back. Returns whether it now names `record`. The source it names is then tagged to
/// be kept, and the one it replaced to expire again (`domain::retention`).
pub async fn offer_latest<S: ObjectStore>(store: &S, record: &BuildRecord) -> Result<bool, Error> {
    let key = latest_key(&record.project, &record.agent);
    for _ in 0..MAX_CONFLICTS {
        let (written, previous) = match store.get_tagged(&key).await? {
            None => {
                let written = store
                    .put_json_if(&key, record.to_json(), Precondition::Absent)
                    .await?;
                (written, None)
            }
            Some(tagged) => {
                let current: BuildRecord = parse(&key, &tagged.bytes)?;
                if !replaces_latest(&current, record) {
                    tracing::info!(build_id = %record.build_id, newer = %current.build_id, "latest.json kept: newer submission");
                    return Ok(false);
                }
                if tagged.bytes == record.to_json() {
                    // Written by an earlier try of this step: the tags may not be.
                    retain(store, record, None).await?;
                    return Ok(true);
                }
                let written = store
                    .put_json_if(&key, record.to_json(), Precondition::Matches(&tagged.etag))
                    .await?;
                (written, Some(current.source))
            }
        };
        if written {
            retain(store, record, previous.as_ref()).await?;
            return Ok(true);
        }
    }
    Err(conflict(&key))
}

/// Tags the named source to be kept and the replaced one to expire — unless a writer after us
/// made latest.json name it again (it tags before we untag, or we see it on the re-read).
async fn retain<S: ObjectStore>(
    store: &S,
    record: &BuildRecord,
    previous: Option<&Source>,
) -> Result<(), Error> {
    for retag in retags(store.own_bucket(), previous, &record.source) {
        if !store.tag_latest(&retag.key, retag.latest).await? {
            tracing::warn!(key = %retag.key, "source to tag does not exist");
            continue;
        }
        if !retag.latest {
            let now = latest(store, &record.project, &record.agent).await?;
            if now.is_some_and(|s| s.record.source.key == retag.key) {
                store.tag_latest(&retag.key, true).await?;
            }
        }
    }
    Ok(())
}

fn parse(key: &str, bytes: &[u8]) -> Result<BuildRecord, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::InvalidState(format!("{key} is not a build record: {e}")))
}

fn conflict(key: &str) -> Error {
    Error::TransientAws(format!(
        "{key}: {MAX_CONFLICTS} conditional writes in a row lost to other writers"
    ))
}
