//! A small HTTPS client for the API, on the hyper + rustls stack the AWS SDK
//! already compiles (no second HTTP or TLS library), and SigV4 signing with `aws-sigv4`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::error::display::DisplayErrorContext;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::error::{chain, CliError};

const TIMEOUT: Duration = Duration::from_secs(30);

/// An answer: status and the whole body (the API's bodies are small JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Http {
    /// HTTP and HTTPS (the system's root certificates, aws-lc-rs as the SDK uses).
    pub fn new() -> Result<Self, CliError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| CliError::Api(format!("loading the system's root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    pub async fn send(&self, request: http::Request<Bytes>) -> Result<Response, CliError> {
        let what = format!("{} {}", request.method(), request.uri());
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(body));
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| chain(&e))?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| chain(&e))?
                .to_bytes();
            Ok::<_, String>(Response { status, body })
        };
        match tokio::time::timeout(TIMEOUT, exchange).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(CliError::Api(format!("{what}: {e}"))),
            Err(_) => Err(CliError::Api(format!(
                "{what}: no answer within {} s",
                TIMEOUT.as_secs()
            ))),
        }
    }
}

/// Signs requests with SigV4 for one region.
#[derive(Debug, Clone)]
pub struct Signer {
    pub credentials: SharedCredentialsProvider,
    pub region: String,
}

impl Signer {
    pub async fn sign(
        &self,
        request: &mut http::Request<Bytes>,
        service: &str,
        region: Option<&str>,
    ) -> Result<(), CliError> {
        let credentials = self.credentials.provide_credentials().await.map_err(|e| {
            CliError::Config(format!(
                "no AWS credentials to sign the request ({}): pass --profile, or set \
                 AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                DisplayErrorContext(&e)
            ))
        })?;
        let identity: Identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region.unwrap_or(&self.region))
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| CliError::Config(format!("SigV4 parameters: {e}")))?
            .into();
        let instructions = {
            let headers: Vec<(&str, &str)> = request
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
                .collect();
            let signable = SignableRequest::new(
                request.method().as_str(),
                request.uri().to_string(),
                headers.into_iter(),
                SignableBody::Bytes(request.body()),
            )
            .map_err(|e| CliError::Api(format!("signing {}: {e}", request.uri())))?;
            sign(signable, &params)
                .map_err(|e| CliError::Api(format!("signing {}: {e}", request.uri())))?
                .into_parts()
                .0
        };
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

/// `execute-api.<region>.amazonaws.com` names its region; use it to sign.
pub fn region_of_api(url: &str) -> Option<&str> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    let mut labels = host.split('.');
    labels.find(|l| *l == "execute-api")?;
    labels.next().filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    #[test]
    fn reads_the_region_of_an_api_gateway_url() {
        assert_eq!(
            region_of_api("https://abc123.execute-api.eu-west-1.amazonaws.com/Prod"),
            Some("eu-west-1")
        );
        assert_eq!(region_of_api("http://127.0.0.1:9000/lambda-url/api"), None);
    }

    #[tokio::test]
    async fn signs_with_sigv4_for_the_named_service_and_region() {
        let signer = Signer {
            credentials: SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            )),
            region: "us-east-1".into(),
        };
        let mut request =
            http::Request::post("https://x.execute-api.eu-west-1.amazonaws.com/Prod/builds")
                .header("content-type", "application/json")
                .body(Bytes::from_static(b"{}"))
                .unwrap();
        signer
            .sign(&mut request, "execute-api", Some("eu-west-1"))
            .await
            .unwrap();
        let auth = request.headers()["authorization"].to_str().unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential="), "{auth}");
        assert!(
            auth.contains("/eu-west-1/execute-api/aws4_request"),
            "{auth}"
        );
        assert!(request.headers().contains_key("x-amz-date"));
    }
}
