//! S3: source objects (any allowed bucket) and records (the stack's bucket).

use super::classify;
use crate::ports::{ObjectMeta, ObjectStore, Precondition, Tagged};
use crate::Error;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumMode, ChecksumType, ObjectLockLegalHold, ObjectLockLegalHoldStatus,
};
use sha2::{Digest, Sha256};

pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    #[cfg(feature = "lambda")]
    pub(crate) fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// HeadObject of the current version, or of `version_id` (404 when that version is gone;
    /// a delete marker answers 405, a malformed id 400: both errors, never "present").
    async fn head_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectMeta>, Error> {
        // Of a given version it is authorized as s3:GetObjectVersion.
        let operation = match version_id {
            Some(_) => "S3.HeadObjectVersion",
            None => "S3.HeadObject",
        };
        let out = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(String::from))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => {
                return Ok(None)
            }
            Err(e) => return Err(classify(operation, e)),
        };
        // A composite (multipart) checksum is not the object's SHA-256: hash it ourselves then.
        let full_object = !matches!(out.checksum_type(), Some(ChecksumType::Composite));
        let sha256 = out
            .checksum_sha256()
            .filter(|c| full_object && !c.contains('-'))
            .and_then(|c| aws_smithy_types::base64::decode(c).ok())
            .filter(|raw| raw.len() == 32)
            .map(hex::encode);
        Ok(Some(ObjectMeta {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            sha256,
            version_id: out.version_id().map(String::from),
        }))
    }

    /// An object of the own bucket and its ETag; `None` when absent.
    async fn fetch(&self, key: &str) -> Result<Option<(Vec<u8>, Option<String>)>, Error> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                return Ok(None)
            }
            Err(e) => return Err(classify("S3.GetObject", e)),
        };
        let etag = out.e_tag().map(String::from);
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| Error::TransientAws(format!("S3.GetObject body: {e}")))?;
        Ok(Some((bytes.to_vec(), etag)))
    }
}

impl ObjectStore for S3Store {
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>, Error> {
        self.head_object(bucket, key, None).await
    }

    async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<ObjectMeta>, Error> {
        self.head_object(bucket, key, Some(version_id)).await
    }

    async fn sha256(&self, bucket: &str, key: &str, version_id: &str) -> Result<String, Error> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| classify("S3.GetObject", e))?;
        let mut body = out.body;
        let mut hasher = Sha256::new();
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| Error::TransientAws(format!("S3.GetObject body: {e}")))?;
            hasher.update(&chunk);
        }
        Ok(hex::encode(hasher.finalize()))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.fetch(key).await?.map(|(bytes, _)| bytes))
    }

    async fn put_json(&self, key: &str, body: Vec<u8>) -> Result<(), Error> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify("S3.PutObject", e))?;
        Ok(())
    }

    async fn get_tagged(&self, key: &str) -> Result<Option<Tagged>, Error> {
        let Some((bytes, etag)) = self.fetch(key).await? else {
            return Ok(None);
        };
        let etag = etag.ok_or_else(|| Error::AwsService(format!("S3.GetObject {key}: no ETag")))?;
        Ok(Some(Tagged { bytes, etag }))
    }

    async fn put_json_if(
        &self,
        key: &str,
        body: Vec<u8>,
        condition: Precondition<'_>,
    ) -> Result<bool, Error> {
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        let put = match condition {
            Precondition::Absent => put.if_none_match("*"),
            Precondition::Matches(etag) => put.if_match(etag),
        };
        match put.send().await {
            Ok(_) => Ok(true),
            // 412: the condition did not hold; 409: a concurrent conditional write is in
            // flight. Either way another writer came first.
            Err(e)
                if e.raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 409 | 412)) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify("S3.PutObject", e)),
        }
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("S3.ListObjectsV2", e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
        }
        Ok(keys)
    }

    fn own_bucket(&self) -> &str {
        &self.bucket
    }

    async fn hold_latest(
        &self,
        key: &str,
        version_id: Option<&str>,
        latest: bool,
    ) -> Result<bool, Error> {
        let status = if latest {
            ObjectLockLegalHoldStatus::On
        } else {
            ObjectLockLegalHoldStatus::Off
        };
        let put = self
            .client
            .put_object_legal_hold()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(String::from))
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(false),
            Err(e) => Err(classify("S3.PutObjectLegalHold", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::get_object::GetObjectOutput;
    use aws_sdk_s3::operation::head_object::HeadObjectOutput;
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_sdk_s3::types::error::{NoSuchKey, NotFound};
    use aws_sdk_s3::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn store(client: Client) -> S3Store {
        S3Store::new(client, "own")
    }

    #[tokio::test]
    async fn head_returns_size_and_full_object_checksum_as_hex() {
        let rule = mock!(Client::head_object)
            .match_requests(|r| r.bucket() == Some("src") && r.key() == Some("k.zip"))
            .then_output(|| {
                HeadObjectOutput::builder()
                    .content_length(42)
                    // base64 of 32 bytes 0x01
                    .checksum_sha256("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")
                    .checksum_type(ChecksumType::FullObject)
                    .version_id("v-7")
                    .build()
            });
        let s = store(mock_client!(aws_sdk_s3, [&rule]));
        let meta = s.head("src", "k.zip").await.unwrap().unwrap();
        assert_eq!(meta.size, 42);
        assert_eq!(meta.sha256.unwrap(), "01".repeat(32));
        assert_eq!(meta.version_id.as_deref(), Some("v-7"));
    }

    #[tokio::test]
    async fn head_ignores_composite_checksums() {
        let rule = mock!(Client::head_object).then_output(|| {
            HeadObjectOutput::builder()
                .content_length(1)
                .checksum_sha256("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=-3")
                .checksum_type(ChecksumType::Composite)
                .build()
        });
        let s = store(mock_client!(aws_sdk_s3, [&rule]));
        assert_eq!(s.head("b", "k").await.unwrap().unwrap().sha256, None);
    }

    #[tokio::test]
    async fn head_of_a_missing_object_is_none() {
        let rule = mock!(Client::head_object)
            .then_error(|| HeadObjectError::NotFound(NotFound::builder().build()));
        let s = store(mock_client!(aws_sdk_s3, [&rule]));
        assert_eq!(s.head("b", "k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn sha256_streams_the_body_of_the_version_asked_for() {
        let rule = mock!(Client::get_object)
            .match_requests(|r| r.version_id() == Some("v-7"))
            .then_output(|| {
                GetObjectOutput::builder()
                    .body(ByteStream::from_static(b"abc"))
                    .build()
            });
        let s = store(mock_client!(aws_sdk_s3, [&rule]));
        assert_eq!(
            s.sha256("b", "k", "v-7").await.unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn get_of_a_missing_key_is_none_and_reads_the_own_bucket() {
        let missing = mock!(Client::get_object)
            .match_requests(|r| r.bucket() == Some("own"))
            .then_error(|| GetObjectError::NoSuchKey(NoSuchKey::builder().build()));
        let s = store(mock_client!(aws_sdk_s3, [&missing]));
        assert_eq!(s.get("builds/x.json").await.unwrap(), None);
        assert_eq!(missing.num_calls(), 1);
    }

    #[tokio::test]
    async fn put_retries_a_503_then_succeeds() {
        let rule = mock!(Client::put_object)
            .match_requests(|r| r.bucket() == Some("own") && r.key() == Some("builds/b.json"))
            .sequence()
            .http_status(503, None)
            .output(|| PutObjectOutput::builder().build())
            .build();
        let client = mock_client!(aws_sdk_s3, RuleMode::Sequential, [&rule], |c| c
            .retry_config(
                aws_sdk_s3::config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(1))
            ));
        store(client)
            .put_json("builds/b.json", b"{}".to_vec())
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 2);
    }

    #[tokio::test]
    async fn list_keys_follows_every_page_of_the_own_bucket() {
        use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
        use aws_sdk_s3::types::Object;
        let first = mock!(Client::list_objects_v2)
            .match_requests(|r| {
                r.bucket() == Some("own")
                    && r.prefix() == Some("agents/")
                    && r.continuation_token().is_none()
            })
            .then_output(|| {
                ListObjectsV2Output::builder()
                    .contents(Object::builder().key("agents/p/a/latest.json").build())
                    .contents(Object::builder().key("agents/p/b/latest.json").build())
                    .is_truncated(true)
                    .next_continuation_token("page-2")
                    .build()
            });
        let second = mock!(Client::list_objects_v2)
            .match_requests(|r| r.continuation_token() == Some("page-2"))
            .then_output(|| {
                ListObjectsV2Output::builder()
                    .contents(Object::builder().key("agents/q/c/latest.json").build())
                    .is_truncated(false)
                    .build()
            });
        let s = store(mock_client!(
            aws_sdk_s3,
            RuleMode::MatchAny,
            [&first, &second]
        ));
        let keys = s.list_keys("agents/").await.unwrap();
        assert_eq!(
            keys,
            [
                "agents/p/a/latest.json",
                "agents/p/b/latest.json",
                "agents/q/c/latest.json"
            ]
        );
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn persistent_503_is_transient_and_access_denied_is_not() {
        let unavailable = mock!(Client::put_object)
            .sequence()
            .http_status(503, None)
            .repeatedly()
            .build();
        let s = store(mock_client!(aws_sdk_s3, [&unavailable]));
        let err = s.put_json("k", vec![]).await.unwrap_err();
        assert_eq!(err.name(), "TransientAwsError", "{err}");

        let denied = mock!(Client::put_object).then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(403).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    "<Error><Code>AccessDenied</Code><Message>nope</Message></Error>",
                ),
            )
        });
        let s = store(mock_client!(aws_sdk_s3, [&denied]));
        let err = s.put_json("k", vec![]).await.unwrap_err();
        assert_eq!(err.name(), "AwsServiceError");
        assert!(err.to_string().contains("AccessDenied"), "{err}");
    }

    #[tokio::test]
    async fn hold_latest_holds_the_named_version_and_a_missing_object_is_false() {
        let held = |on: bool| {
            let want = if on {
                ObjectLockLegalHoldStatus::On
            } else {
                ObjectLockLegalHoldStatus::Off
            };
            mock!(Client::put_object_legal_hold)
                .match_requests(move |r| {
                    r.bucket() == Some("own")
                        && r.key() == Some("sources/p/a/1.zip")
                        && r.version_id() == Some("v-validated")
                        && r.legal_hold().and_then(|h| h.status()) == Some(&want)
                })
                .then_output(|| {
                    aws_sdk_s3::operation::put_object_legal_hold::PutObjectLegalHoldOutput::builder(
                    )
                    .build()
                })
        };
        let (on, off) = (held(true), held(false));
        let s = store(mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&on, &off]));
        assert!(s
            .hold_latest("sources/p/a/1.zip", Some("v-validated"), false)
            .await
            .unwrap());
        assert_eq!((on.num_calls(), off.num_calls()), (0, 1));
        let tagged = held(true);
        let s = store(mock_client!(aws_sdk_s3, [&tagged]));
        assert!(s
            .hold_latest("sources/p/a/1.zip", Some("v-validated"), true)
            .await
            .unwrap());
        assert_eq!(tagged.num_calls(), 1);

        let missing = mock!(Client::put_object_legal_hold).then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(404).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    "<Error><Code>NoSuchKey</Code><Message>no</Message></Error>",
                ),
            )
        });
        let s = store(mock_client!(aws_sdk_s3, [&missing]));
        assert!(!s
            .hold_latest("sources/p/a/gone.zip", Some("v-1"), false)
            .await
            .unwrap());

        let unavailable = mock!(Client::put_object_legal_hold)
            .sequence()
            .http_status(503, None)
            .repeatedly()
            .build();
        let s = store(mock_client!(
            aws_sdk_s3,
            RuleMode::Sequential,
            [&unavailable]
        ));
        let err = s
            .hold_latest("sources/p/a/1.zip", None, true)
            .await
            .unwrap_err();
        assert_eq!(err.name(), "TransientAwsError");
    }
}
