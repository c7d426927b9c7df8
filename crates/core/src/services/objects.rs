//! The stack's own JSON objects: one way to read one ([`read_json`]) and one protocol to change
//! one under concurrent writers ([`update`]: read, decide, write with `If-Match` /
//! `If-None-Match`, again on a conflict, at most [`MAX_CONFLICTS`] times). Records, latest,
//! parked callbacks and the fleet lock all go through it.

use crate::ports::{ObjectStore, Precondition, Tagged};
use crate::Error;
use serde::de::DeserializeOwned;

/// How often a conditional write is tried again after losing to another writer before the
/// step gives up with a transient error (the state machine's Retry then tries again later).
pub const MAX_CONFLICTS: usize = 8;

/// What the decision of an [`update`] made of the object it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<T> {
    /// Leave the object as it is; the update answers `T`.
    Keep(T),
    /// Write these bytes, provided nobody changed the object since it was read; the update
    /// then answers `T`.
    Write(Vec<u8>, T),
}

/// Reads the object at `key` (`None`: absent), asks `decide` what to do with it and, for a
/// write, writes on the condition that the object is still what was read (`If-None-Match: *`
/// for an absent one, `If-Match` its ETag otherwise). A lost condition means another writer
/// came first: read and decide again, at most [`MAX_CONFLICTS`] times, then
/// `Error::TransientAws`.
pub async fn update<S, T>(
    store: &S,
    key: &str,
    // A plain closure, not an async one: the handlers' futures must stay `Send`, which
    // rustc cannot prove of an async closure over a borrowed argument. What needs a call of
    // its own (the fleet lock's holder) is looked up between two updates.
    mut decide: impl FnMut(Option<&Tagged>) -> Result<Decision<T>, Error>,
) -> Result<T, Error>
where
    S: ObjectStore,
{
    for _ in 0..MAX_CONFLICTS {
        let current = store.get_tagged(key).await?;
        let (body, answer) = match decide(current.as_ref())? {
            Decision::Keep(answer) => return Ok(answer),
            Decision::Write(body, answer) => (body, answer),
        };
        let condition = match &current {
            None => Precondition::Absent,
            Some(tagged) => Precondition::Matches(&tagged.etag),
        };
        if store.put_json_if(key, body, condition).await? {
            return Ok(answer);
        }
        tracing::info!(
            key,
            "conditional write lost to another writer; reading again"
        );
    }
    Err(Error::TransientAws(format!(
        "{key}: {MAX_CONFLICTS} conditional writes in a row lost to other writers"
    )))
}

/// The object at `key` parsed as `T` (`what` names it in the error), or `None` when absent;
/// a stored object that is no `T` is `InvalidState`.
pub async fn read_json<S: ObjectStore, T: DeserializeOwned>(
    store: &S,
    key: &str,
    what: &str,
) -> Result<Option<T>, Error> {
    match store.get(key).await? {
        None => Ok(None),
        Some(bytes) => parse_json(key, &bytes, what).map(Some),
    }
}

/// `bytes` read at `key` parsed as `T`, else `InvalidState` naming the key and `what` it
/// should have been.
pub fn parse_json<T: DeserializeOwned>(key: &str, bytes: &[u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::InvalidState(format!("{key} is not {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::s3::S3Store;
    use aws_sdk_s3::operation::get_object::GetObjectOutput;
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn stored(etag: &'static str) -> GetObjectOutput {
        GetObjectOutput::builder()
            .e_tag(etag)
            .body(ByteStream::from_static(b"{\"n\":1}"))
            .build()
    }

    fn precondition_failed() -> HttpResponse {
        HttpResponse::new(
            StatusCode::try_from(412).unwrap(),
            SdkBody::from("<Error><Code>PreconditionFailed</Code></Error>"),
        )
    }

    /// Writes `{"n": 2}` over whatever is stored.
    async fn bump(store: &S3Store) -> Result<&'static str, Error> {
        update(store, "k.json", |current: Option<&Tagged>| {
            assert!(current.is_some());
            Ok(Decision::Write(b"{\"n\":2}".to_vec(), "written"))
        })
        .await
    }

    #[tokio::test]
    async fn the_retry_sends_the_etag_it_read_again() {
        let gets = mock!(Client::get_object)
            .sequence()
            .output(|| stored("\"e1\""))
            .output(|| stored("\"e2\""))
            .build();
        let stale = mock!(Client::put_object)
            .match_requests(|r| r.if_match() == Some("\"e1\""))
            .then_http_response(precondition_failed);
        let fresh = mock!(Client::put_object)
            .match_requests(|r| r.if_match() == Some("\"e2\""))
            .then_output(|| PutObjectOutput::builder().build());
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&gets, &stale, &fresh]);
        let store = S3Store::new(client, "own");
        assert_eq!(bump(&store).await.unwrap(), "written");
        assert_eq!((stale.num_calls(), fresh.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn gives_up_after_max_conflicts_with_a_transient_error() {
        let gets = mock!(Client::get_object)
            .sequence()
            .output(|| stored("\"e\""))
            .repeatedly()
            .build();
        let puts = mock!(Client::put_object)
            .sequence()
            .http_response(precondition_failed)
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&gets, &puts]);
        let store = S3Store::new(client, "own");
        let err = bump(&store).await.unwrap_err();
        assert!(matches!(&err, Error::TransientAws(m) if m.contains("8 conditional writes")));
        assert_eq!(puts.num_calls(), MAX_CONFLICTS);
    }

    #[tokio::test]
    async fn an_absent_object_is_written_only_if_still_absent() {
        let get = mock!(Client::get_object).then_error(|| {
            aws_sdk_s3::operation::get_object::GetObjectError::NoSuchKey(
                aws_sdk_s3::types::error::NoSuchKey::builder().build(),
            )
        });
        let put = mock!(Client::put_object)
            .match_requests(|r| r.if_none_match() == Some("*") && r.if_match().is_none())
            .then_output(|| PutObjectOutput::builder().build());
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&get, &put]);
        let store = S3Store::new(client, "own");
        let answer = update(&store, "k.json", |current: Option<&Tagged>| {
            assert!(current.is_none());
            Ok(Decision::Write(b"{}".to_vec(), 1))
        })
        .await;
        assert_eq!(answer.unwrap(), 1);
        assert_eq!(put.num_calls(), 1);
    }

    #[tokio::test]
    async fn keep_writes_nothing() {
        let get = mock!(Client::get_object).then_output(|| stored("\"e\""));
        let put = mock!(Client::put_object).then_output(|| PutObjectOutput::builder().build());
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&get, &put]);
        let store = S3Store::new(client, "own");
        let answer = update(&store, "k.json", |_: Option<&Tagged>| {
            Ok(Decision::<()>::Keep(()))
        })
        .await;
        assert!(answer.is_ok());
        assert_eq!(put.num_calls(), 0);
    }

    #[test]
    fn what_is_no_t_is_invalid_state_naming_the_key() {
        let err = parse_json::<Vec<u8>>("x.json", b"{", "a list").unwrap_err();
        assert!(matches!(&err, Error::InvalidState(m) if m.starts_with("x.json is not a list")));
    }
}
