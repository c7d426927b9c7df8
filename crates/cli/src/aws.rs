//! The [`Service`] over AWS: sources to S3; builds submitted and followed through the API when
//! one is configured, else directly (Step Functions StartExecution / DescribeExecution and the
//! records in S3); log tails from CloudWatch Logs. SDK types stop here.

use std::sync::OnceLock;

use agentbuild_core::domain::execution::{
    canonical_json, envelope, request_json, MAX_API_ATTEMPTS,
};
use agentbuild_core::domain::plan::Trigger;
use agentbuild_core::domain::record::{build_key, latest_key, BuildRecord};
use agentbuild_core::domain::request::ValidRequest;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::Credentials;
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::types::ExecutionStatus;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::error::CliError;
use crate::http::{region_of_api, Http, Response, Signer};
use crate::package::Packed;
use crate::request::execution_name;
use crate::service::{
    combine, view_from_api, BuildView, ExecutionInfo, LogStream, Rejection, Service, Started,
    Submission,
};
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

pub struct AwsService {
    s3: aws_sdk_s3::Client,
    sfn: aws_sdk_sfn::Client,
    bucket: Option<String>,
    state_machine_arn: Option<String>,
    api_url: Option<String>,
    /// Set for real AWS; locally (an endpoint override) the API is called unsigned.
    sign_api: bool,
    endpoint_url: Option<String>,
    region: Option<String>,
    signer: Option<Signer>,
    http: OnceLock<Result<Http, String>>,
}

impl AwsService {
    pub fn new(sdk: &SdkConfig, settings: &Settings) -> Self {
        let endpoint_url = sdk.endpoint_url().map(String::from);
        let s3_conf = aws_sdk_s3::config::Builder::from(sdk)
            // An emulator on 127.0.0.1 cannot serve virtual-hosted buckets.
            .force_path_style(endpoint_url.is_some())
            .build();
        let region = sdk.region().map(|r| r.to_string());
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3_conf),
            sfn: aws_sdk_sfn::Client::new(sdk),
            bucket: settings.bucket.clone(),
            state_machine_arn: settings.state_machine_arn.clone(),
            api_url: settings.api_url.clone(),
            sign_api: endpoint_url.is_none(),
            signer: match (sdk.credentials_provider(), &region) {
                (Some(credentials), Some(region)) => Some(Signer {
                    credentials,
                    region: region.clone(),
                }),
                _ => None,
            },
            endpoint_url,
            region,
            http: OnceLock::new(),
        }
    }

    /// For tests: given clients, no API.
    #[cfg(test)]
    fn with_clients(
        s3: aws_sdk_s3::Client,
        sfn: aws_sdk_sfn::Client,
        bucket: &str,
        state_machine_arn: &str,
    ) -> Self {
        Self {
            s3,
            sfn,
            bucket: Some(bucket.into()),
            state_machine_arn: Some(state_machine_arn.into()),
            api_url: None,
            sign_api: false,
            endpoint_url: None,
            region: Some("us-east-1".into()),
            signer: None,
            http: OnceLock::new(),
        }
    }

    fn http(&self) -> Result<&Http, CliError> {
        self.http
            .get_or_init(|| Http::new().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| CliError::Api(e.clone()))
    }

    fn bucket(&self) -> Result<&str, CliError> {
        self.bucket.as_deref().ok_or_else(|| {
            CliError::Config(
                "no bucket configured: run `make local-up` (it writes .local/env), or pass \
                 --bucket / set AGENTBUILD_BUCKET (or use the API: --api-url)"
                    .into(),
            )
        })
    }

    fn state_machine(&self) -> Result<&str, CliError> {
        self.state_machine_arn.as_deref().ok_or_else(|| {
            CliError::Config(
                "nowhere to submit: pass --api-url (AGENTBUILD_API_URL) or \
                 --state-machine-arn (AGENTBUILD_STATE_MACHINE_ARN), or run `make local-up`"
                    .into(),
            )
        })
    }

    /// Describes an SDK failure, saying what to do when it is about credentials or an
    /// unreachable endpoint.
    fn aws_error<E>(&self, operation: &str, err: SdkError<E, HttpResponse>) -> CliError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        if let Some(cause) = credentials_error(&err) {
            return CliError::Config(format!(
                "{operation}: no AWS credentials ({}): pass --profile, set AWS_PROFILE or \
                 AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or for the local stack run \
                 `make local-up`",
                crate::error::chain(cause)
            ));
        }
        let hint = match (&err, &self.endpoint_url) {
            (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_), Some(url)) => format!(
                " — cannot reach {url}: is the local stack up? (`make local-up`, or check \
                 --endpoint-url)"
            ),
            _ => String::new(),
        };
        let detail = match &err {
            // Their `DisplayErrorContext` ends in a Debug dump; the sources say it all.
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => crate::error::chain(&err),
            _ => DisplayErrorContext(&err).to_string(),
        };
        CliError::Aws(format!("{operation}: {detail}{hint}"))
    }

    // --- API -------------------------------------------------------------------------------

    async fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, CliError> {
        let base = self.api_url.as_deref().unwrap_or_default();
        let url = format!("{base}{path}");
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let mut request = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("accept", "application/json");
        if !body.is_empty() {
            request = request.header("content-type", "application/json");
        }
        let mut request = request
            .body(body)
            .map_err(|e| CliError::Config(format!("API URL {url}: {e}")))?;
        if self.sign_api {
            let signer = self.signer.as_ref().ok_or_else(|| {
                CliError::Config(
                    "calling the API needs AWS credentials and a region: pass --profile and \
                     --region, or set AWS_PROFILE and AWS_REGION"
                        .into(),
                )
            })?;
            signer
                .sign(&mut request, "execute-api", region_of_api(&url))
                .await?;
        }
        self.http()?.send(request).await.map_err(|e| match e {
            CliError::Api(m) if self.endpoint_url.is_some() => CliError::Api(format!(
                "{m} — is the local stack up with the API? (`make local-up`)"
            )),
            e => e,
        })
    }

    async fn api_submit(&self, request: &Value) -> Result<Submission, CliError> {
        let response = self.api("POST", "/builds", Some(request)).await?;
        let body = response.json();
        match response.status {
            200..=299 => {
                let field = |k: &str| {
                    body.as_ref()
                        .and_then(|b| b.get(k))
                        .and_then(Value::as_str)
                        .map(String::from)
                };
                let build_id = field("buildId").ok_or_else(|| {
                    unexpected("POST /builds", &response, "no buildId in the answer")
                })?;
                Ok(Submission::Started(Started {
                    build_id,
                    execution_arn: field("executionArn"),
                    existing: response.status == 200,
                }))
            }
            400 | 409 | 422 => {
                let error = body.as_ref().and_then(|b| b.get("error"));
                let text = |k: &str| {
                    error
                        .and_then(|e| e.get(k))
                        .and_then(Value::as_str)
                        .map(String::from)
                };
                Ok(Submission::Rejected(Rejection {
                    code: text("code").unwrap_or_else(|| Rejection::INVALID_REQUEST.into()),
                    field: text("field").unwrap_or_else(|| "request".into()),
                    message: text("message").unwrap_or_else(|| response.text()),
                }))
            }
            _ => Err(unexpected("POST /builds", &response, "")),
        }
    }

    async fn api_get(&self, path: &str) -> Result<Option<Value>, CliError> {
        let response = self.api("GET", path, None).await?;
        match response.status {
            200 => response
                .json()
                .map(Some)
                .ok_or_else(|| unexpected(&format!("GET {path}"), &response, "not JSON")),
            404 => Ok(None),
            _ => Err(unexpected(&format!("GET {path}"), &response, "")),
        }
    }

    // --- direct ----------------------------------------------------------------------------

    /// StartExecution under the CLI's deterministic name. A taken name is the same build when
    /// the earlier input is the same request — unless, without an idempotencyKey, that build
    /// ended unsuccessfully: then asking again means "try again", under the next name (as the
    /// API does).
    async fn start_execution(&self, req: &ValidRequest) -> Result<Submission, CliError> {
        let state_machine = self.state_machine()?;
        let input = envelope(Trigger::Console, request_json(req));
        let canonical = canonical_json(&input);
        for attempt in 0..MAX_API_ATTEMPTS {
            let name = execution_name(req, attempt);
            let result = self
                .sfn
                .start_execution()
                .state_machine_arn(state_machine)
                .name(&name)
                .input(&canonical)
                .send()
                .await;
            match result {
                Ok(out) => {
                    return Ok(Submission::Started(Started {
                        build_id: name,
                        execution_arn: Some(out.execution_arn().to_owned()),
                        existing: false,
                    }))
                }
                Err(e) => match e.as_service_error() {
                    Some(StartExecutionError::ExecutionAlreadyExists(_)) => {}
                    Some(StartExecutionError::StateMachineDoesNotExist(_)) => {
                        return Err(CliError::Config(format!(
                            "state machine {state_machine} does not exist: check \
                             --state-machine-arn / AGENTBUILD_STATE_MACHINE_ARN, or run \
                             `make local-up`"
                        )))
                    }
                    _ => return Err(self.aws_error("Step Functions StartExecution", e)),
                },
            }
            let arn = execution_arn(state_machine, &name);
            let earlier = self
                .sfn
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .map_err(|e| self.aws_error("Step Functions DescribeExecution", e))?;
            let same_request = earlier
                .input()
                .and_then(|i| serde_json::from_str::<Value>(i).ok())
                .is_some_and(|v| canonical_json(&v) == canonical);
            let existing = Submission::Started(Started {
                build_id: name.clone(),
                execution_arn: Some(arn),
                existing: true,
            });
            if req.idempotency_key.is_some() {
                if same_request {
                    return Ok(existing);
                }
                return Ok(Submission::Rejected(Rejection {
                    code: "IdempotencyKeyReused".into(),
                    field: "idempotencyKey".into(),
                    message: format!(
                        "this key already named build {name} of a different request; use a \
                         new key for a new build"
                    ),
                }));
            }
            let unsuccessful = matches!(
                earlier.status(),
                ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted
            );
            if same_request && !unsuccessful {
                return Ok(existing);
            }
        }
        Ok(Submission::Rejected(Rejection {
            code: "TooManyAttempts".into(),
            field: "idempotencyKey".into(),
            message: format!(
                "this exact request already failed {MAX_API_ATTEMPTS} times; pass \
                 --idempotency-key to start another build"
            ),
        }))
    }

    async fn describe(&self, build_id: &str) -> Result<Option<ExecutionInfo>, CliError> {
        let Some(state_machine) = &self.state_machine_arn else {
            return Ok(None);
        };
        let result = self
            .sfn
            .describe_execution()
            .execution_arn(execution_arn(state_machine, build_id))
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(ExecutionInfo {
                status: out.status().as_str().to_owned(),
                error: out.error().map(String::from),
                cause: out.cause().map(String::from),
                output: out.output().map(String::from),
            })),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DescribeExecutionError::ExecutionDoesNotExist(_))
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.aws_error("Step Functions DescribeExecution", e)),
        }
    }

    async fn get_record(&self, key: &str) -> Result<Option<BuildRecord>, CliError> {
        let bucket = self.bucket()?;
        let result = self.s3.get_object().bucket(bucket).key(key).send().await;
        let out = match result {
            Ok(out) => out,
            Err(e) if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_))) => {
                return Ok(None)
            }
            Err(e) => return Err(self.aws_error(&format!("S3 GetObject s3://{bucket}/{key}"), e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| CliError::Aws(format!("S3 GetObject s3://{bucket}/{key}: {e}")))?;
        serde_json::from_slice(&bytes.into_bytes())
            .map(Some)
            .map_err(|e| CliError::Aws(format!("s3://{bucket}/{key} is not a build record: {e}")))
    }

    fn logs_endpoint(&self) -> Result<String, CliError> {
        match (&self.endpoint_url, &self.region) {
            (Some(url), _) => Ok(url.trim_end_matches('/').to_owned()),
            (None, Some(region)) => Ok(format!("https://logs.{region}.amazonaws.com")),
            (None, None) => Err(CliError::Config(
                "no AWS region: pass --region or set AWS_REGION".into(),
            )),
        }
    }
}

impl Service for AwsService {
    async fn source_exists(&self, bucket: &str, key: &str) -> Result<bool, CliError> {
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.as_service_error(), Some(HeadObjectError::NotFound(_))) => {
                Ok(false)
            }
            Err(e) => Err(self.aws_error(&format!("S3 HeadObject s3://{bucket}/{key}"), e)),
        }
    }

    async fn upload_source(
        &self,
        bucket: &str,
        key: &str,
        packed: &Packed,
    ) -> Result<(), CliError> {
        let digest = hex::decode(&packed.sha256)
            .map_err(|e| CliError::Aws(format!("bad SHA-256 {}: {e}", packed.sha256)))?;
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/zip")
            .body(ByteStream::from(packed.bytes.clone()))
            // S3 verifies it and keeps it: validate-request then reads the SHA-256 from
            // HeadObject instead of downloading the zip.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(aws_smithy_types::base64::encode(digest))
            .send()
            .await
            .map_err(|e| self.aws_error(&format!("S3 PutObject s3://{bucket}/{key}"), e))?;
        Ok(())
    }

    async fn submit(&self, request: &ValidRequest) -> Result<Submission, CliError> {
        if self.api_url.is_some() {
            self.api_submit(&request_json(request)).await
        } else {
            self.start_execution(request).await
        }
    }

    async fn build(&self, build_id: &str) -> Result<Option<BuildView>, CliError> {
        if self.api_url.is_some() {
            let path = format!("/builds/{build_id}");
            return match self.api_get(&path).await? {
                Some(body) => view_from_api(build_id, &body).map(Some),
                None => Ok(None),
            };
        }
        if self.bucket.is_none() && self.state_machine_arn.is_none() {
            return Err(CliError::Config(
                "nowhere to look: pass --api-url, or --bucket and --state-machine-arn \
                 (or run `make local-up`)"
                    .into(),
            ));
        }
        let record = match &self.bucket {
            Some(_) => self.get_record(&build_key(build_id)).await?,
            None => None,
        };
        if record.as_ref().is_some_and(|r| r.status.is_final()) {
            return Ok(combine(build_id, record, None));
        }
        let execution = self.describe(build_id).await?;
        Ok(combine(build_id, record, execution))
    }

    async fn latest(&self, project: &str, agent: &str) -> Result<Option<BuildRecord>, CliError> {
        if self.api_url.is_none() {
            return self.get_record(&latest_key(project, agent)).await;
        }
        let path = format!("/agents/{project}/{agent}");
        let Some(body) = self.api_get(&path).await? else {
            return Ok(None);
        };
        serde_json::from_value(body.clone())
            .or_else(|_| serde_json::from_value(body.get("record").cloned().unwrap_or_default()))
            .map(Some)
            .map_err(|e| CliError::Api(format!("GET {path}: not a build record: {e}")))
    }

    async fn log_tail(&self, stream: &LogStream, lines: u32) -> Result<Vec<String>, CliError> {
        let url = format!("{}/", self.logs_endpoint()?);
        let body = json!({
            "logGroupName": stream.group,
            "logStreamName": stream.stream,
            "limit": lines,
            "startFromHead": false,
        });
        let mut request = http::Request::post(&url)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "Logs_20140328.GetLogEvents")
            .body(Bytes::from(body.to_string()))
            .map_err(|e| CliError::Config(format!("logs endpoint {url}: {e}")))?;
        let signer = self.signer.as_ref().ok_or_else(|| {
            CliError::Config("reading logs needs AWS credentials and a region".into())
        })?;
        signer.sign(&mut request, "logs", None).await?;
        let response = self.http()?.send(request).await?;
        let body = response.json().unwrap_or_default();
        if response.status != 200 {
            let kind = body["__type"].as_str().unwrap_or("error");
            let kind = kind.rsplit('#').next().unwrap_or(kind);
            let message = body["message"]
                .as_str()
                .or_else(|| body["Message"].as_str())
                .map(String::from)
                .unwrap_or_else(|| response.text());
            return Err(CliError::Aws(format!(
                "CloudWatch Logs GetLogEvents ({}): {kind}: {message}",
                response.status
            )));
        }
        Ok(body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["message"].as_str())
            .map(|m| m.trim_end_matches('\n').to_owned())
            .collect())
    }
}

/// The credentials provider's error inside an SDK error, if that is what failed.
fn credentials_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<CredentialsError>().is_some() {
            return Some(e);
        }
        next = e.source();
    }
    None
}

/// `arn:aws:states:<r>:<acct>:stateMachine:<sm>` -> `...:execution:<sm>:<name>`.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

fn unexpected(what: &str, response: &Response, why: &str) -> CliError {
    let hint = match response.status {
        401 | 403 => " — check your AWS credentials (--profile) and that they may call the API",
        _ => "",
    };
    let sep = if why.is_empty() { "" } else { ": " };
    CliError::Api(format!(
        "{what}: HTTP {}{sep}{why}: {}{hint}",
        response.status,
        crate::output::clip(&response.text(), 300)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::tests::record;
    use crate::service::BuildState;
    use agentbuild_core::domain::status::BuildStatus;
    use aws_sdk_s3::operation::get_object::GetObjectOutput;
    use aws_sdk_s3::operation::head_object::HeadObjectOutput;
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_sdk_s3::types::error::{NoSuchKey, NotFound};
    use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
    use aws_sdk_sfn::operation::start_execution::StartExecutionOutput;
    use aws_sdk_sfn::types::error::{ExecutionAlreadyExists, ExecutionDoesNotExist};
    use aws_sdk_sfn::types::ExecutionStatus;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    const SM: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:agentbuild-build";

    fn s3_none() -> aws_sdk_s3::Client {
        let never = mock!(aws_sdk_s3::Client::head_object)
            .then_output(|| HeadObjectOutput::builder().build());
        mock_client!(aws_sdk_s3, [&never])
    }

    fn sfn_none() -> aws_sdk_sfn::Client {
        let never = mock!(aws_sdk_sfn::Client::list_state_machines).then_output(|| {
            aws_sdk_sfn::operation::list_state_machines::ListStateMachinesOutput::builder()
                .set_state_machines(Some(vec![]))
                .build()
                .unwrap()
        });
        mock_client!(aws_sdk_sfn, [&never])
    }

    fn packed() -> Packed {
        Packed {
            bytes: b"zip".to_vec(),
            sha256: "01".repeat(32),
            size: 3,
            files: 1,
        }
    }

    #[test]
    fn execution_arns_follow_the_state_machine_arn() {
        assert_eq!(
            execution_arn(SM, "cli-1"),
            "arn:aws:states:us-east-1:123456789012:execution:agentbuild-build:cli-1"
        );
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
            })
            .then_output(|| PutObjectOutput::builder().build());
        let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&head, &put]);
        let svc = AwsService::with_clients(s3, sfn_none(), "bkt", SM);
        assert!(!svc.source_exists("bkt", "sources/p/a/x.zip").await.unwrap());
        svc.upload_source("bkt", "sources/p/a/x.zip", &packed())
            .await
            .unwrap();
        assert_eq!((head.num_calls(), put.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn an_existing_source_is_found_and_a_denied_head_is_an_error() {
        let found = mock!(aws_sdk_s3::Client::head_object)
            .then_output(|| HeadObjectOutput::builder().content_length(3).build());
        let svc =
            AwsService::with_clients(mock_client!(aws_sdk_s3, [&found]), sfn_none(), "bkt", SM);
        assert!(svc.source_exists("bkt", "k").await.unwrap());

        let denied = mock!(aws_sdk_s3::Client::head_object).then_http_response(|| {
            HttpResponse::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(403).unwrap(),
                aws_smithy_types::body::SdkBody::empty(),
            )
        });
        let svc =
            AwsService::with_clients(mock_client!(aws_sdk_s3, [&denied]), sfn_none(), "bkt", SM);
        let err = svc.source_exists("bkt", "k").await.unwrap_err();
        assert!(
            err.to_string().contains("S3 HeadObject s3://bkt/k"),
            "{err}"
        );
    }

    fn request(key: Option<&str>) -> ValidRequest {
        let mut v = json!({
            "project": "demo", "agent": "a", "source": "s3://bkt/sources/demo/a/01.zip"
        });
        if let Some(k) = key {
            v["idempotencyKey"] = json!(k);
        }
        agentbuild_core::domain::request::validate(
            &v,
            &agentbuild_core::domain::request::SourcePolicy::own("bkt"),
        )
        .unwrap()
    }

    fn input_of(req: &ValidRequest) -> String {
        canonical_json(&envelope(Trigger::Console, request_json(req)))
    }

    fn started(name: String) -> StartExecutionOutput {
        StartExecutionOutput::builder()
            .execution_arn(execution_arn(SM, &name))
            .start_date(aws_smithy_types::DateTime::from_secs(0))
            .build()
            .unwrap()
    }

    fn earlier(status: ExecutionStatus, input: String) -> DescribeExecutionOutput {
        DescribeExecutionOutput::builder()
            .execution_arn(execution_arn(SM, "earlier"))
            .state_machine_arn(SM)
            .status(status)
            .start_date(aws_smithy_types::DateTime::from_secs(0))
            .input(input)
            .build()
            .unwrap()
    }

    fn name_taken() -> StartExecutionError {
        StartExecutionError::ExecutionAlreadyExists(ExecutionAlreadyExists::builder().build())
    }

    #[tokio::test]
    async fn starts_a_console_execution_named_by_the_cli() {
        let req = request(None);
        let (name, input) = (execution_name(&req, 0), input_of(&req));
        let expected = name.clone();
        let start = mock!(aws_sdk_sfn::Client::start_execution)
            .match_requests(move |r| {
                let sent: Value = serde_json::from_str(r.input().unwrap()).unwrap();
                r.state_machine_arn() == Some(SM)
                    && r.name() == Some(expected.as_str())
                    && r.input() == Some(input.as_str())
                    && sent["trigger"] == "console"
            })
            .then_output({
                let name = name.clone();
                move || started(name.clone())
            });
        let svc =
            AwsService::with_clients(s3_none(), mock_client!(aws_sdk_sfn, [&start]), "bkt", SM);
        let got = svc.submit(&req).await.unwrap();
        assert_eq!(
            got,
            Submission::Started(Started {
                build_id: name.clone(),
                execution_arn: Some(execution_arn(SM, &name)),
                existing: false
            })
        );
    }

    #[tokio::test]
    async fn a_repeated_request_answers_the_earlier_build() {
        let req = request(None);
        let input = input_of(&req);
        let start = mock!(aws_sdk_sfn::Client::start_execution).then_error(name_taken);
        let describe = mock!(aws_sdk_sfn::Client::describe_execution)
            .then_output(move || earlier(ExecutionStatus::Succeeded, input.clone()));
        let sfn = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&start, &describe]);
        let svc = AwsService::with_clients(s3_none(), sfn, "bkt", SM);
        let Submission::Started(s) = svc.submit(&req).await.unwrap() else {
            panic!("expected the earlier build");
        };
        assert!(s.existing);
        assert_eq!(s.build_id, execution_name(&req, 0));
        assert_eq!(start.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_request_whose_build_failed_is_tried_again_under_the_next_name() {
        let req = request(None);
        let input = input_of(&req);
        let retry = execution_name(&req, 1);
        let start = mock!(aws_sdk_sfn::Client::start_execution)
            .sequence()
            .error(name_taken)
            .output({
                let retry = retry.clone();
                move || started(retry.clone())
            })
            .build();
        let describe = mock!(aws_sdk_sfn::Client::describe_execution)
            .then_output(move || earlier(ExecutionStatus::Failed, input.clone()));
        let sfn = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&start, &describe]);
        let svc = AwsService::with_clients(s3_none(), sfn, "bkt", SM);
        let Submission::Started(s) = svc.submit(&req).await.unwrap() else {
            panic!("expected a new build");
        };
        assert_eq!((s.build_id.as_str(), s.existing), (retry.as_str(), false));
        assert!(retry.ends_with("-r2"), "{retry}");
    }

    #[tokio::test]
    async fn a_reused_idempotency_key_with_another_request_is_rejected() {
        let req = request(Some("order-1"));
        let other = input_of(&request(None));
        let start = mock!(aws_sdk_sfn::Client::start_execution).then_error(name_taken);
        let describe = mock!(aws_sdk_sfn::Client::describe_execution)
            .then_output(move || earlier(ExecutionStatus::Running, other.clone()));
        let sfn = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&start, &describe]);
        let svc = AwsService::with_clients(s3_none(), sfn, "bkt", SM);
        let Submission::Rejected(r) = svc.submit(&req).await.unwrap() else {
            panic!("expected a rejection");
        };
        assert_eq!(
            (r.code.as_str(), r.field.as_str()),
            ("IdempotencyKeyReused", "idempotencyKey")
        );
    }

    #[tokio::test]
    async fn a_missing_state_machine_says_what_to_do() {
        let start = mock!(aws_sdk_sfn::Client::start_execution).then_error(|| {
            StartExecutionError::StateMachineDoesNotExist(
                aws_sdk_sfn::types::error::StateMachineDoesNotExist::builder().build(),
            )
        });
        let svc =
            AwsService::with_clients(s3_none(), mock_client!(aws_sdk_sfn, [&start]), "bkt", SM);
        let err = svc.submit(&request(None)).await.unwrap_err();
        assert!(err.to_string().contains("make local-up"), "{err}");
    }

    #[tokio::test]
    async fn a_final_record_answers_without_asking_step_functions() {
        let get = mock!(aws_sdk_s3::Client::get_object)
            .match_requests(|r| {
                r.bucket() == Some("bkt") && r.key() == Some("builds/cli-0123.json")
            })
            .then_output(|| {
                GetObjectOutput::builder()
                    .body(ByteStream::from(
                        serde_json::to_vec(&record("SUCCEEDED")).unwrap(),
                    ))
                    .build()
            });
        let svc = AwsService::with_clients(mock_client!(aws_sdk_s3, [&get]), sfn_none(), "bkt", SM);
        let view = svc.build("cli-0123").await.unwrap().unwrap();
        assert_eq!(view.state, BuildState::Final(BuildStatus::Succeeded));
        assert!(view.settled);
    }

    #[tokio::test]
    async fn before_any_record_the_execution_tells_the_state() {
        let get = mock!(aws_sdk_s3::Client::get_object)
            .then_error(|| GetObjectError::NoSuchKey(NoSuchKey::builder().build()));
        let describe = mock!(aws_sdk_sfn::Client::describe_execution).then_output(|| {
            DescribeExecutionOutput::builder()
                .execution_arn(execution_arn(SM, "cli-1"))
                .state_machine_arn(SM)
                .status(ExecutionStatus::Failed)
                .error("InvalidRequest")
                .cause(r#"{"errorType":"InvalidRequest","errorMessage":"source: s3://bkt/sources/x.zip does not exist"}"#)
                .start_date(aws_smithy_types::DateTime::from_secs(0))
                .build()
                .unwrap()
        });
        let svc = AwsService::with_clients(
            mock_client!(aws_sdk_s3, [&get]),
            mock_client!(aws_sdk_sfn, [&describe]),
            "bkt",
            SM,
        );
        let view = svc.build("cli-1").await.unwrap().unwrap();
        assert_eq!(
            view.state,
            BuildState::Rejected(Rejection::invalid(
                "source",
                "s3://bkt/sources/x.zip does not exist"
            ))
        );
    }

    #[tokio::test]
    async fn an_unknown_build_is_none() {
        let get = mock!(aws_sdk_s3::Client::get_object)
            .then_error(|| GetObjectError::NoSuchKey(NoSuchKey::builder().build()));
        let describe = mock!(aws_sdk_sfn::Client::describe_execution).then_error(|| {
            DescribeExecutionError::ExecutionDoesNotExist(ExecutionDoesNotExist::builder().build())
        });
        let svc = AwsService::with_clients(
            mock_client!(aws_sdk_s3, [&get]),
            mock_client!(aws_sdk_sfn, [&describe]),
            "bkt",
            SM,
        );
        assert_eq!(svc.build("cli-404").await.unwrap(), None);
    }

    #[tokio::test]
    async fn latest_reads_the_agents_pointer() {
        let get = mock!(aws_sdk_s3::Client::get_object)
            .match_requests(|r| r.key() == Some("agents/demo/sample-agent/latest.json"))
            .then_output(|| {
                GetObjectOutput::builder()
                    .body(ByteStream::from(
                        serde_json::to_vec(&record("REUSED")).unwrap(),
                    ))
                    .build()
            });
        let svc = AwsService::with_clients(mock_client!(aws_sdk_s3, [&get]), sfn_none(), "bkt", SM);
        let latest = svc.latest("demo", "sample-agent").await.unwrap().unwrap();
        assert_eq!(latest.status, BuildStatus::Reused);
    }
}
