//! An agent's deployment history in S3 (`domain::history`): written by RecordResult (a deploy)
//! and by a rollback; read by `GET /projects/{project}/agents/{agent}/deployments`.

use crate::domain::history::{deploy_entry, deploy_key, history_prefix, Entry};
use crate::domain::record::BuildRecord;
use crate::ports::ObjectStore;
use crate::services::objects::read_json;
use crate::Error;

/// The record's deploy as a history entry (nothing when it reached no version).
pub async fn note_deploy<S: ObjectStore>(store: &S, record: &BuildRecord) -> Result<(), Error> {
    let Some(entry) = deploy_entry(record) else {
        return Ok(());
    };
    put(
        store,
        &deploy_key(&record.project, &record.agent, &record.build_id),
        &entry,
    )
    .await
}

pub async fn put<S: ObjectStore>(store: &S, key: &str, entry: &Entry) -> Result<(), Error> {
    let body = serde_json::to_vec(entry).map_err(|e| Error::InvalidState(format!("{key}: {e}")))?;
    store.put_json(key, body).await
}

/// Every entry of the agent's history, oldest first.
pub async fn read<S: ObjectStore>(
    store: &S,
    project: &str,
    agent: &str,
) -> Result<Vec<Entry>, Error> {
    let mut all = Vec::new();
    for key in store.list_keys(&history_prefix(project, agent)).await? {
        if let Some(e) = read_json::<S, Entry>(store, &key, "a deployment history entry").await? {
            all.push(e);
        }
    }
    all.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.build_id.cmp(&b.build_id)));
    Ok(all)
}
