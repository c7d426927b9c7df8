//! The [`crate::service::Service`] over AWS, in two implementations: [`api::ApiService`]
//! through the agentbuild API, [`direct::DirectService`] over the core's adapters and services.
//! Both upload sources, tail logs and explain failures the same way, through [`Aws`]. SDK types
//! stop in this module.

pub mod api;
pub mod direct;
pub mod logs;

use std::fmt::Display;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::{chain, CliError};
use crate::package::Packed;
use crate::service::LogStream;
use crate::settings::Settings;

/// Loads the SDK configuration from the resolved settings (flags > environment > env file).
pub async fn sdk_config(settings: &Settings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(c) = &settings.credentials {
        loader = loader.credentials_provider(Credentials::new(
            &c.access_key_id,
            &c.secret_access_key,
            c.session_token.clone(),
            None,
            "agentbuild-env-file",
        ));
    }
    loader.load().await
}

/// What both implementations do alike: sources in S3, log tails, and failures explained.
pub struct Aws {
    s3: aws_sdk_s3::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    credentials: Option<SharedCredentialsProvider>,
    /// Set locally (the emulator): an unreachable endpoint means the stack is down.
    endpoint_url: Option<String>,
}

impl Aws {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            s3: agentbuild_core::adapters::s3_client(sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
            credentials: sdk.credentials_provider(),
            endpoint_url: sdk.endpoint_url().map(String::from),
        }
    }

    /// For tests: given clients, no credentials to check.
    #[cfg(test)]
    pub(crate) fn with_clients(
        s3: aws_sdk_s3::Client,
        logs: aws_sdk_cloudwatchlogs::Client,
    ) -> Self {
        Self {
            s3,
            logs,
            credentials: None,
            endpoint_url: None,
        }
    }

    pub async fn source_exists(&self, bucket: &str, key: &str) -> Result<bool, CliError> {
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => {
                Ok(false)
            }
            Err(e) => Err(self
                .sdk_failed(&format!("S3 HeadObject s3://{bucket}/{key}"), e)
                .await),
        }
    }

    pub async fn upload_source(
        &self,
        bucket: &str,
        key: &str,
        packed: &Packed,
    ) -> Result<(), CliError> {
        let digest = hex::decode(&packed.sha256)
            .map_err(|e| CliError::Aws(format!("bad SHA-256 {}: {e}", packed.sha256)))?;
        let put = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/zip")
            // A plain upload: what is kept is the service's to decide (domain::retention).
            .body(ByteStream::from(packed.bytes.clone()))
            // S3 verifies it and keeps it: validate-request then reads the SHA-256 from
            // HeadObject instead of downloading the zip.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(aws_smithy_types::base64::encode(digest))
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e) => Err(self
                .sdk_failed(&format!("S3 PutObject s3://{bucket}/{key}"), e)
                .await),
        }
    }

    pub async fn log_tail(&self, stream: &LogStream, lines: u32) -> Result<Vec<String>, CliError> {
        match logs::tail(&self.logs, stream, lines).await {
            Ok(lines) => Ok(lines),
            Err(e) => Err(self.sdk_failed("CloudWatch Logs GetLogEvents", e).await),
        }
    }

    async fn sdk_failed<E>(&self, what: &str, err: SdkError<E, HttpResponse>) -> CliError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        // `DisplayErrorContext` ends in a Debug dump of the response: say what AWS said.
        let (detail, unreachable) = match &err {
            SdkError::ServiceError(ctx) => {
                let (e, status) = (ctx.err(), ctx.raw().status().as_u16());
                let said = match (e.code(), e.message()) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    _ => e.to_string(),
                };
                (format!("HTTP {status}: {said}"), false)
            }
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => (chain(&err), true),
            _ => (DisplayErrorContext(&err).to_string(), false),
        };
        self.failed(format!("{what}: {detail}"), unreachable).await
    }

    /// An AWS call failed with `message`. When it is for want of credentials, or (locally)
    /// because the endpoint did not answer, say what to do.
    pub async fn failed(&self, message: impl Display, unreachable: bool) -> CliError {
        if let Some(provider) = &self.credentials {
            if let Err(e) = provider.provide_credentials().await {
                return CliError::Config(format!(
                    "{message}: no AWS credentials ({}): pass --profile, set AWS_PROFILE or \
                     AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or for the local stack run \
                     `make local-up`",
                    chain(&e)
                ));
            }
        }
        match (&self.endpoint_url, unreachable) {
            (Some(url), true) => CliError::Aws(format!(
                "{message} — cannot reach {url}: is the local stack up? (`make local-up`, or \
                 check --endpoint-url)"
            )),
            _ => CliError::Aws(message.to_string()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_sdk_s3::operation::head_object::HeadObjectOutput;
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_sdk_s3::types::error::NotFound;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    /// A client with no rule: any call to it fails the test.
    pub(crate) fn no_s3() -> aws_sdk_s3::Client {
        mock_client!(aws_sdk_s3, [])
    }

    pub(crate) fn no_logs() -> aws_sdk_cloudwatchlogs::Client {
        mock_client!(aws_sdk_cloudwatchlogs, [])
    }

    fn packed() -> Packed {
        Packed {
            bytes: b"zip".to_vec(),
            sha256: "01".repeat(32),
            size: 3,
            files: 1,
        }
    }

    #[tokio::test]
    async fn uploads_a_missing_source_with_its_sha256_checksum() {
        let head = mock!(aws_sdk_s3::Client::head_object)
            .match_requests(|r| r.bucket() == Some("bkt") && r.key() == Some("sources/p/a/x.zip"))
            .then_error(|| HeadObjectError::NotFound(NotFound::builder().build()));
        let put = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r| {
                r.checksum_algorithm() == Some(&ChecksumAlgorithm::Sha256)
                    // base64 of 32 bytes 0x01
                    && r.checksum_sha256() == Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")
                    && r.content_type() == Some("application/zip")
                    // No tag, no lock header: the bucket policy refuses uploads that would
                    // keep themselves, and asks nothing else of them.
                    && r.tagging().is_none()
                    && r.object_lock_legal_hold_status().is_none()
                    && r.object_lock_mode().is_none()
            })
            .then_output(|| PutObjectOutput::builder().build());
        let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&head, &put]);
        let aws = Aws::with_clients(s3, no_logs());
        assert!(!aws.source_exists("bkt", "sources/p/a/x.zip").await.unwrap());
        aws.upload_source("bkt", "sources/p/a/x.zip", &packed())
            .await
            .unwrap();
        assert_eq!((head.num_calls(), put.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn an_existing_source_is_found_and_a_denied_head_is_an_error() {
        let found = mock!(aws_sdk_s3::Client::head_object)
            .then_output(|| HeadObjectOutput::builder().content_length(3).build());
        let aws = Aws::with_clients(mock_client!(aws_sdk_s3, [&found]), no_logs());
        assert!(aws.source_exists("bkt", "k").await.unwrap());

        let denied = mock!(aws_sdk_s3::Client::head_object).then_http_response(|| {
            HttpResponse::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(403).unwrap(),
                aws_smithy_types::body::SdkBody::empty(),
            )
        });
        let aws = Aws::with_clients(mock_client!(aws_sdk_s3, [&denied]), no_logs());
        let err = aws.source_exists("bkt", "k").await.unwrap_err();
        assert!(
            err.to_string().contains("S3 HeadObject s3://bkt/k"),
            "{err}"
        );
        assert_eq!(err.exit_code(), 3);
    }

    #[tokio::test]
    async fn an_unreachable_local_endpoint_says_to_start_the_stack() {
        let mut aws = Aws::with_clients(no_s3(), no_logs());
        aws.endpoint_url = Some("http://127.0.0.1:5000".into());
        let err = aws.failed("S3.GetObject: dispatch failure", true).await;
        assert!(err.to_string().contains("is the local stack up?"), "{err}");
        let err = aws.failed("S3.GetObject: AccessDenied", false).await;
        assert_eq!(err.to_string(), "S3.GetObject: AccessDenied");
    }

    #[tokio::test]
    async fn missing_credentials_say_how_to_configure_them() {
        #[derive(Debug)]
        struct None_;
        impl ProvideCredentials for None_ {
            fn provide_credentials<'a>(
                &'a self,
            ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                aws_credential_types::provider::future::ProvideCredentials::ready(Err(
                    aws_credential_types::provider::error::CredentialsError::not_loaded("none"),
                ))
            }
        }
        let mut aws = Aws::with_clients(no_s3(), no_logs());
        aws.credentials = Some(SharedCredentialsProvider::new(None_));
        let err = aws
            .failed("SFN.StartExecution: dispatch failure", true)
            .await;
        assert!(matches!(err, CliError::Config(_)), "{err:?}");
        assert!(err.to_string().contains("--profile"), "{err}");
    }
}
