//! Deploy what exists (`domain::prebuilt`): the stack's index of which build made which
//! artifact, written when a success is recorded, and the promote a request naming an artifact
//! stands for — the same at every door (the API, ValidateRequest for a console input).

use crate::domain::execution::{PromoteOf, SourcePin};
use crate::domain::prebuilt::{MadeBy, PrebuiltRequest};
use crate::domain::promote::recorded_request;
use crate::domain::record::BuildRecord;
use crate::domain::request::{RequestError, ValidRequest};
use crate::ports::{ObjectStore, Precondition};
use crate::services::records;
use crate::Error;

/// Notes in the index what a final record made (a success that is no promote). The first
/// success of an artifact stays (a conditional create): a later build of the same content
/// reused it, and either one deploys the same bytes.
pub async fn note<S: ObjectStore>(store: &S, record: &BuildRecord) -> Result<(), Error> {
    let Some((key, entry)) = MadeBy::of(record) else {
        return Ok(());
    };
    let body =
        serde_json::to_vec(&entry).map_err(|e| Error::InvalidState(format!("{key}: {e}")))?;
    if !store.put_json_if(&key, body, Precondition::Absent).await? {
        tracing::debug!(key, build_id = %record.build_id, "artifact already indexed");
    }
    Ok(())
}

/// The promote `req` stands for: the stack's rules (its repository, this agent's artifacts),
/// the build the index names for exactly this artifact, that build's recorded request with
/// `req`'s deploy, pinned to its recorded source. Anything else is refused naming the field.
pub async fn promote_of<S: ObjectStore>(
    store: &S,
    req: &PrebuiltRequest,
    repository_uri: &str,
) -> Result<Resolved, Error> {
    req.admit(repository_uri, store.own_bucket())?;
    let key = req.index_key();
    let entry = match store.get(&key).await? {
        Some(bytes) => Some(
            serde_json::from_slice::<MadeBy>(&bytes)
                .map_err(|e| Error::InvalidState(format!("{key}: {e}")))?,
        ),
        None => None,
    };
    let field = req.prebuilt.field();
    let build_id = req.made_by(entry.as_ref())?;
    let record = records::build(store, build_id)
        .await?
        .ok_or_else(|| RequestError::new(field, format!("build {build_id} has no record")))?
        .record;
    // The record itself must index as exactly this artifact of this agent: the entry's key and
    // contents are only the index's word.
    let indexed = MadeBy::of(&record).filter(|(key, _)| *key == req.index_key());
    req.made_by(indexed.as_ref().map(|(_, e)| e))?;
    let (valid, pin) = recorded_request(&record, req.deploy.clone())
        .map_err(|why| RequestError::new(field, why))?;
    Ok(Resolved { valid, pin, record })
}

/// A prebuilt request resolved: the promote it stands for, and the record of the build that
/// made the artifact.
#[derive(Debug)]
pub struct Resolved {
    pub valid: ValidRequest,
    pub pin: SourcePin,
    pub record: BuildRecord,
}

impl Resolved {
    pub fn promote_of(&self) -> PromoteOf {
        PromoteOf {
            build_id: self.record.build_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::prebuilt::parse;
    use crate::domain::record::tests::{plan, t};
    use crate::domain::record::BuildState;
    use crate::domain::status::BuildStatus;
    use crate::testing::fakes::FakeStore;
    use serde_json::json;

    const HEX: &str = "3f2a1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a1908f7e";

    fn success(digest: &str) -> BuildRecord {
        let mut b = BuildState::starting(t("2026-11-28T10:00:00Z"));
        b.status = BuildStatus::Succeeded;
        b.image_digest = Some(digest.into());
        BuildRecord::new(&plan(), Some(&b), None, t("2026-11-28T10:05:00Z"))
    }

    #[tokio::test]
    async fn a_recorded_success_is_found_by_its_digest_and_deployed_as_its_promote() {
        let store = FakeStore::default();
        let record = success(&format!("sha256:{HEX}"));
        store.seed(
            &crate::domain::record::build_key(&record.build_id),
            record.to_json(),
        );
        note(&store, &record).await.unwrap();
        let mut later = record.clone();
        later.build_id = "b-later".into();
        note(&store, &later).await.unwrap(); // the first success stays
        let image = format!("{}@sha256:{HEX}", record.image.repository_uri);
        let req = parse(&json!({"project": record.project, "agent": record.agent,
            "prebuilt": {"image": image}, "deploy": {"endpoint": "staging"}}))
        .unwrap();
        let Resolved {
            valid,
            pin,
            record: made,
        } = promote_of(&store, &req, &record.image.repository_uri)
            .await
            .unwrap();
        assert_eq!(made.build_id, record.build_id);
        assert_eq!(valid.deploy.unwrap().endpoint.as_deref(), Some("staging"));
        assert!(!valid.force);
        assert_eq!(pin.sha256, record.source.sha256);
        // Another digest of the same repository: no build made it.
        let other = format!("{}@sha256:{}", record.image.repository_uri, "0".repeat(64));
        let req = parse(&json!({"project": record.project, "agent": record.agent,
            "prebuilt": {"image": other}, "deploy": {}}))
        .unwrap();
        let err = promote_of(&store, &req, &record.image.repository_uri)
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("prebuilt.image: "), "{err}");
    }
}
