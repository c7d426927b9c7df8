//! Glue: one module per Lambda, each with its `Deps` (built once in `main`) and `handle`.

pub mod api;
pub mod check_build;
pub mod rebuild;
pub mod record_result;
pub mod start_build;
pub mod validate_request;

#[cfg(test)]
pub(crate) mod fakes;

use chrono::{DateTime, Utc};

/// The clock handlers read; tests pin it.
pub type Clock = fn() -> DateTime<Utc>;

/// The SDK configuration every function shares: region, credentials and (locally) the
/// emulator's endpoint from the standard AWS environment variables.
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
