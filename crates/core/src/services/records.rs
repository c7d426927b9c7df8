//! The records store: where records live (`domain::record`'s keys) and how one is read.

use crate::domain::record::{build_key, latest_key, BuildRecord};
use crate::ports::ObjectStore;
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
    let record = serde_json::from_slice(&bytes)
        .map_err(|e| Error::InvalidState(format!("{key} is not a build record: {e}")))?;
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
