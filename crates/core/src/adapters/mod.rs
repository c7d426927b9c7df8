//! One struct per AWS service, owning its client and resource names. SDK types stop here.

#[cfg(feature = "agentcore")]
pub mod agentcore;
#[cfg(feature = "codebuild")]
pub mod codebuild;
#[cfg(feature = "ecr")]
pub mod ecr;
#[cfg(feature = "ecr")]
pub mod ecr_scan;
#[cfg(feature = "ecr")]
pub mod ecr_signature;
#[cfg(feature = "agentcore")]
pub mod endpoints;
#[cfg(feature = "events")]
pub mod events;
#[cfg(feature = "logs")]
pub mod logs;
pub mod s3;
#[cfg(feature = "lambda")]
pub mod s3_files;
pub mod sfn;

use crate::Error;

/// The SDK configuration every door shares: region, credentials and (locally) the emulator's
/// endpoint from the standard AWS environment variables.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Path-style addressing when an endpoint override (an emulator) is configured.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

/// Error codes AWS uses for throttling (the same list the SDK's retry classifier uses).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Transient (retry with backoff in the state machine) or not, after the SDK's own retries.
pub(crate) fn classify<E>(operation: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(ctx) => {
            ctx.raw().status().is_server_error()
                || ctx
                    .err()
                    .code()
                    .is_some_and(|c| THROTTLING_CODES.contains(&c))
        }
        _ => false,
    };
    let message = format!("{operation}: {}", DisplayErrorContext(&err));
    if transient {
        Error::TransientAws(message)
    } else {
        Error::AwsService(message)
    }
}

pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
