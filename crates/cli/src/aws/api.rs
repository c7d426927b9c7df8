//! The [`Service`] through the agentbuild API: `POST /projects/{project}/builds`,
//! `GET|DELETE /projects/{project}/builds/{id}`, `GET /projects/{project}/agents/{agent}`,
//! `GET /projects/{project}/agents/{agent}/runtimes` and `DELETE …/runtimes/{name}` (retire),
//! SigV4-signed for `execute-api` (locally too: the local stack's front door checks the
//! signature and the caller's IAM policy as API Gateway does), their answers read as the core's
//! contract types.

use std::sync::OnceLock;

use agentbuild_core::contract::{build_path, Accepted, BuildAnswer, BuildLogs, ErrorBody};
use agentbuild_core::domain::record::BuildRecord;
use agentbuild_core::domain::request::ValidRequest;
use agentbuild_core::domain::runtime_names::{AgentRuntime, AgentRuntimes};
use aws_config::SdkConfig;
use bytes::Bytes;

use super::Aws;
use crate::error::CliError;
use crate::http::{region_of_api, Http, Response, Signer};
use crate::package::Packed;
use crate::service::{
    view, BuildView, Cancellation, LogStream, Rejection, Service, Started, Submission,
};
use crate::terminal::clip;

/// At most this many pages (of the API's 200 lines) for one tail.
pub const MAX_LOG_PAGES: usize = 50;

/// Answers a GET is tried again on (it changes nothing): API Gateway's throttling and the
/// transient failures of API Gateway and Lambda, as the AWS SDKs retry them.
const TRANSIENT: [u16; 5] = [429, 500, 502, 503, 504];
/// Tries of one GET, and the pause before the second (then doubled).
const GET_TRIES: u32 = 3;
const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// A query value, percent-encoded (RFC 3986 unreserved characters stay).
fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub struct ApiService {
    aws: Aws,
    url: String,
    /// `None` without credentials or a region.
    signer: Option<Signer>,
    /// Set locally, for the hint when the API does not answer.
    local: bool,
    http: OnceLock<Result<Http, String>>,
    /// The project of the builds this command reads or cancels: `--project`, or the request
    /// it submitted.
    project: OnceLock<String>,
}

impl ApiService {
    pub fn new(sdk: &SdkConfig, url: &str) -> Self {
        let local = sdk.endpoint_url().is_some();
        let signer = match (sdk.credentials_provider(), sdk.region()) {
            (Some(credentials), Some(region)) => Some(Signer {
                credentials,
                region: region.to_string(),
            }),
            _ => None,
        };
        Self {
            aws: Aws::new(sdk),
            url: url.to_owned(),
            signer,
            local,
            http: OnceLock::new(),
            project: OnceLock::new(),
        }
    }

    /// Scopes the build routes to `project` (`--project`).
    pub fn for_project(self, project: Option<String>) -> Self {
        if let Some(p) = project {
            let _ = self.project.set(p);
        }
        self
    }

    /// `/projects/{project}/builds/{id}`, or why there is no project to put in it.
    fn build_path(&self, build_id: &str) -> Result<String, CliError> {
        let project = self.project.get().ok_or_else(|| {
            CliError::Usage(
                "the API scopes every build by its project: pass --project <project>".into(),
            )
        })?;
        Ok(build_path(project, build_id))
    }

    async fn call(&self, method: &str, path: &str, body: Bytes) -> Result<Response, CliError> {
        let url = format!("{}{path}", self.url);
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
        {
            let signer = self.signer.as_ref().ok_or_else(|| {
                CliError::Config(
                    "calling the API needs AWS credentials and a region: pass --profile and \
                     --region, or set AWS_PROFILE and AWS_REGION"
                        .into(),
                )
            })?;
            // Locally the URL names no region: the SDK's (the front door reads the scope's).
            signer
                .sign(&mut request, "execute-api", region_of_api(&url))
                .await?;
        }
        let http = self
            .http
            .get_or_init(|| Http::new().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| CliError::Api(e.clone()))?;
        http.send(request).await.map_err(|e| match e {
            CliError::Api(m) if self.local => CliError::Api(format!(
                "{m} — is the local stack up with the API? (`make local-up`)"
            )),
            e => e,
        })
    }

    /// `GET path`: `None` on 404, else the body read by `read`. A transient answer
    /// ([`TRANSIENT`]) is tried again (said on stderr), [`GET_TRIES`] times in all; the last
    /// answer counts.
    async fn get<T>(
        &self,
        path: &str,
        read: impl FnOnce(&[u8]) -> serde_json::Result<T>,
    ) -> Result<Option<T>, CliError> {
        let mut response = self.call("GET", path, Bytes::new()).await?;
        let mut pause = FIRST_PAUSE;
        for _ in 1..GET_TRIES {
            if !TRANSIENT.contains(&response.status) {
                break;
            }
            eprintln!(
                "agentbuild: GET {path} answered HTTP {}; trying again in {} ms",
                response.status,
                pause.as_millis()
            );
            tokio::time::sleep(pause).await;
            pause *= 2;
            response = self.call("GET", path, Bytes::new()).await?;
        }
        match response.status {
            200 => read(&response.body)
                .map(Some)
                .map_err(|e| unexpected(&format!("GET {path}"), &response, &e.to_string())),
            404 => Ok(None),
            _ => Err(unexpected(&format!("GET {path}"), &response, "")),
        }
    }
}

impl Service for ApiService {
    async fn source_exists(&self, bucket: &str, key: &str) -> Result<bool, CliError> {
        self.aws.source_exists(bucket, key).await
    }

    async fn upload_source(&self, bucket: &str, key: &str, p: &Packed) -> Result<(), CliError> {
        self.aws.upload_source(bucket, key, p).await
    }

    async fn submit(&self, request: &ValidRequest) -> Result<Submission, CliError> {
        let body = Bytes::from(
            serde_json::to_vec(request)
                .map_err(|e| CliError::Api(format!("the request does not serialize: {e}")))?,
        );
        let path = format!("/projects/{}/builds", request.project);
        self.accept(&request.project, &path, body).await
    }

    async fn build(&self, build_id: &str) -> Result<Option<BuildView>, CliError> {
        let path = self.build_path(build_id)?;
        match self.get(&path, BuildAnswer::from_json).await? {
            Some(answer) => view(answer).map(Some),
            None => Ok(None),
        }
    }

    async fn cancel(&self, build_id: &str) -> Result<Option<Cancellation>, CliError> {
        let path = self.build_path(build_id)?;
        let what = format!("DELETE {path}");
        let response = self.call("DELETE", &path, Bytes::new()).await?;
        let bad = |e: serde_json::Error| unexpected(&what, &response, &e.to_string());
        match response.status {
            202 => {
                let answer = BuildAnswer::from_json(&response.body).map_err(bad)?;
                view(answer).map(|v| Some(Cancellation::Cancelled(v)))
            }
            409 => {
                let refused: ErrorBody = serde_json::from_slice(&response.body).map_err(bad)?;
                match refused.error.status {
                    Some(status) if refused.error.code == "AlreadyFinished" => {
                        Ok(Some(Cancellation::Finished(status)))
                    }
                    _ => Err(unexpected(&what, &response, "")),
                }
            }
            404 => Ok(None),
            _ => Err(unexpected(&what, &response, "")),
        }
    }

    async fn rollback(
        &self,
        project: &str,
        agent: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, CliError> {
        let _ = self.project.set(project.to_string());
        let path = format!("/projects/{project}/agents/{agent}/rollback");
        let what = format!("POST {path}");
        let response = self
            .call("POST", &path, Bytes::from(body.to_string()))
            .await?;
        let bad = |e: serde_json::Error| unexpected(&what, &response, &e.to_string());
        match response.status {
            200 => serde_json::from_slice(&response.body).map_err(bad),
            400 | 404 | 409 => {
                let refused: ErrorBody = serde_json::from_slice(&response.body).map_err(bad)?;
                Err(CliError::Usage(format!(
                    "{what}: {} ({})",
                    refused.error.message, refused.error.code
                )))
            }
            _ => Err(unexpected(&what, &response, "")),
        }
    }

    async fn latest(&self, project: &str, agent: &str) -> Result<Option<BuildRecord>, CliError> {
        let path = format!("/projects/{project}/agents/{agent}");
        self.get(&path, |b| serde_json::from_slice(b)).await
    }

    /// Through the API's logs route (the caller needs no CloudWatch access; the route's
    /// project scopes it): pages forward, keeping the last `lines`, at most [`MAX_LOG_PAGES`].
    async fn log_tail(
        &self,
        build_id: &str,
        _stream: &LogStream,
        lines: u32,
    ) -> Result<Vec<String>, CliError> {
        let base = format!("{}/logs", self.build_path(build_id)?);
        let (mut kept, mut token) = (std::collections::VecDeque::new(), None::<String>);
        for _ in 0..MAX_LOG_PAGES {
            let path = match &token {
                Some(t) => format!("{base}?nextToken={}", encode_query(t)),
                None => base.clone(),
            };
            let Some(page) = self
                .get(&path, |b| serde_json::from_slice::<BuildLogs>(b))
                .await?
            else {
                return Err(CliError::Api(format!("GET {base}: no build {build_id}")));
            };
            let empty = page.events.is_empty();
            for event in page.events {
                kept.push_back(event.message);
                if kept.len() > lines as usize {
                    kept.pop_front();
                }
            }
            // The same token back, or an empty page: the end of the stream for now.
            if empty || page.next_token.is_none() || page.next_token == token {
                break;
            }
            token = page.next_token;
        }
        Ok(kept.into())
    }

    async fn runtimes(&self, project: &str, agent: &str) -> Result<AgentRuntimes, CliError> {
        let path = format!("/projects/{project}/agents/{agent}/runtimes");
        let read = |b: &[u8]| serde_json::from_slice(b);
        let listed = self.get(&path, read).await?;
        listed
            .ok_or_else(|| CliError::Api(format!("GET {path}: 404: does the API have the route?")))
    }

    async fn retire(
        &self,
        project: &str,
        agent: &str,
        name: &str,
        force: bool,
    ) -> Result<Result<AgentRuntime, Rejection>, CliError> {
        let query = if force { "?force=true" } else { "" };
        let path = format!("/projects/{project}/agents/{agent}/runtimes/{name}{query}");
        let what = format!("DELETE {path}");
        let response = self.call("DELETE", &path, Bytes::new()).await?;
        let bad = |e: serde_json::Error| unexpected(&what, &response, &e.to_string());
        match response.status {
            200 => serde_json::from_slice(&response.body).map(Ok).map_err(bad),
            400 | 404 | 409 => {
                let refused: ErrorBody = serde_json::from_slice(&response.body).map_err(bad)?;
                Ok(Err(refused.error.into()))
            }
            _ => Err(unexpected(&what, &response, "")),
        }
    }

    async fn promote(
        &self,
        project: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Submission, CliError> {
        self.accept(project, path, Bytes::from(body.to_string()))
            .await
    }
}

impl ApiService {
    /// `POST path` of a route that starts a build (submit, promote, deploy what exists): 202,
    /// or a refusal with an error body (400 invalid, 404 no such build, 409 idempotency key
    /// reused / too many attempts / not promotable, 413 too large, 415 not JSON).
    async fn accept(&self, project: &str, path: &str, body: Bytes) -> Result<Submission, CliError> {
        let _ = self.project.set(project.to_string());
        let what = format!("POST {path}");
        let response = self.call("POST", path, body).await?;
        let bad = |e: serde_json::Error| unexpected(&what, &response, &e.to_string());
        match response.status {
            202 => {
                let accepted: Accepted = serde_json::from_slice(&response.body).map_err(bad)?;
                Ok(Submission::Started(Started {
                    build_id: accepted.build_id,
                    execution_arn: accepted.execution_arn,
                    existing: accepted.existing,
                }))
            }
            400 | 404 | 409 | 413 | 415 => {
                let refused: ErrorBody = serde_json::from_slice(&response.body).map_err(bad)?;
                Ok(Submission::Rejected(refused.error.into()))
            }
            _ => Err(unexpected(&what, &response, "")),
        }
    }
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
        clip(&response.text(), 300)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::tests::record;
    use crate::service::{Rejection, ViewState};
    use agentbuild_core::domain::status::BuildStatus;
    use aws_config::{BehaviorVersion, Region};
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_credential_types::Credentials;
    use serde_json::json;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// A local API answering `answers` in turn (one connection each), recording each request
    /// as `"METHOD /path body"`.
    fn serve(answers: Vec<(u16, String)>) -> (ApiService, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for (status, body) in answers {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let (mut head, mut line, mut length) = (String::new(), String::new(), 0);
                reader.read_line(&mut head).unwrap();
                while reader.read_line(&mut line).unwrap() > 2 {
                    if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = n.trim().parse().unwrap();
                    }
                    line.clear();
                }
                let mut sent = vec![0; length];
                reader.read_exact(&mut sent).unwrap();
                let target = head.split(' ').take(2).collect::<Vec<_>>().join(" ");
                let sent = String::from_utf8(sent).unwrap();
                log.lock()
                    .unwrap()
                    .push(format!("{target} {sent}").trim_end().to_owned());
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: \
                     {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                reader.into_inner().write_all(answer.as_bytes()).unwrap();
            }
        });
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "local", "local", None, None, "test",
            )))
            .endpoint_url(&url)
            .build();
        (
            ApiService::new(&sdk, &url).for_project(Some("demo".into())),
            seen,
        )
    }

    fn request() -> ValidRequest {
        let v =
            json!({"project": "demo", "agent": "a", "source": "s3://bkt/sources/demo/a/01.zip"});
        let policy = agentbuild_core::domain::request::SourcePolicy::own("bkt");
        agentbuild_core::domain::request::validate(&v, &policy).unwrap()
    }

    #[tokio::test]
    async fn submits_the_request_and_reads_the_accepted_build() {
        let accepted = json!({"buildId": "api-1", "executionArn": "arn:x",
                   "statusUrl": "/projects/demo/builds/api-1"});
        let (api, seen) = serve(vec![(202, accepted.to_string())]);
        let got = api.submit(&request()).await.unwrap();
        let want = Started {
            build_id: "api-1".into(),
            execution_arn: "arn:x".into(),
            existing: false,
        };
        assert_eq!(got, Submission::Started(want));
        let sent = seen.lock().unwrap()[0].clone();
        assert!(
            sent.starts_with("POST /api/projects/demo/builds {"),
            "{sent}"
        );
        assert!(sent.contains(r#""agent":"a""#), "{sent}");
    }

    #[tokio::test]
    async fn an_accepted_existing_execution_is_reported_as_existing() {
        let accepted = json!({"buildId": "api-1", "executionArn": "arn:x",
            "statusUrl": "/projects/demo/builds/api-1", "existing": true});
        let media = json!({"error": {"code": "UnsupportedMediaType", "message": "JSON only"}});
        let (api, _) = serve(vec![
            (202, accepted.to_string()),
            (415, media.to_string()),
            (200, accepted.to_string()),
        ]);
        let Submission::Started(s) = api.submit(&request()).await.unwrap() else {
            panic!("expected a start");
        };
        assert!(s.existing);
        let Submission::Rejected(r) = api.submit(&request()).await.unwrap() else {
            panic!("expected a rejection");
        };
        assert_eq!(r.code, "UnsupportedMediaType");
        // A status the API never sends is no answer the CLI guesses at.
        assert!(api.submit(&request()).await.is_err());
    }

    #[tokio::test]
    async fn a_refusal_is_a_rejection_naming_the_field_or_the_request() {
        let invalid =
            json!({"error": {"code": "SourceNotFound", "field": "source", "message": "gone"}});
        let tries = json!({"error": {"code": "TooManyAttempts", "message": "again"}});
        let (api, _) = serve(vec![(400, invalid.to_string()), (409, tries.to_string())]);
        let want = Rejection {
            code: "SourceNotFound".into(),
            ..Rejection::invalid("source", "gone")
        };
        assert_eq!(
            api.submit(&request()).await.unwrap(),
            Submission::Rejected(want)
        );
        let Submission::Rejected(r) = api.submit(&request()).await.unwrap() else {
            panic!("expected a rejection");
        };
        assert_eq!(
            (r.code.as_str(), r.field.as_str()),
            ("TooManyAttempts", "request")
        );
    }

    #[tokio::test]
    async fn reads_a_live_status_a_record_or_no_build() {
        let live = json!({"buildId": "b", "status": "RUNNING", "state": "Building",
            "phase": "BUILD", "elapsedSeconds": 12, "executionArn": "arn:x",
            "codebuild": {"buildId": "p:1", "logUrl": null}, "project": "demo",
            "agent": "a", "trigger": "api", "requestedAt": "2026-11-28T10:00:00Z"});
        let final_record = serde_json::to_string(&record("SUCCEEDED")).unwrap();
        let (api, seen) = serve(vec![
            (200, live.to_string()),
            (200, final_record.clone()),
            (
                404,
                r#"{"error":{"code":"NotFound","message":"no build b"}}"#.into(),
            ),
            (200, final_record),
            (
                404,
                r#"{"error":{"code":"NotFound","message":"none"}}"#.into(),
            ),
        ]);
        let v = api.build("b").await.unwrap().unwrap();
        assert_eq!(
            (v.state, v.step.as_deref()),
            (ViewState::Running, Some("BUILD"))
        );
        let v = api.build("cli-0123").await.unwrap().unwrap();
        assert_eq!(v.state, ViewState::Final(BuildStatus::Succeeded));
        assert_eq!(api.build("b").await.unwrap(), None);
        let latest = api.latest("demo", "sample-agent").await.unwrap().unwrap();
        assert_eq!(latest.status, BuildStatus::Succeeded);
        assert_eq!(api.latest("demo", "x").await.unwrap(), None);
        let paths: Vec<_> = seen.lock().unwrap().clone();
        assert_eq!(paths[0], "GET /api/projects/demo/builds/b");
        assert_eq!(paths[4], "GET /api/projects/demo/agents/x");
    }

    #[tokio::test]
    async fn a_transient_answer_to_a_get_is_tried_again_and_the_third_counts() {
        let final_record = serde_json::to_string(&record("SUCCEEDED")).unwrap();
        let busy = r#"{"message":"Internal Server Error"}"#.to_string();
        let (api, seen) = serve(vec![
            (500, busy.clone()),
            (429, r#"{"message":"Too Many Requests"}"#.into()),
            (200, final_record),
            (503, busy.clone()),
            (502, busy.clone()),
            (500, busy),
        ]);
        let v = api.build("b").await.unwrap().unwrap();
        assert_eq!(v.state, ViewState::Final(BuildStatus::Succeeded));
        let err = api.build("b").await.unwrap_err().to_string();
        assert!(err.contains("HTTP 500"), "{err}");
        assert_eq!(seen.lock().unwrap().len(), 6, "three tries each, no more");
    }

    #[tokio::test]
    async fn a_refusal_to_a_get_is_not_tried_again() {
        let (api, seen) = serve(vec![(403, r#"{"message":"Forbidden"}"#.into())]);
        let err = api.build("b").await.unwrap_err().to_string();
        assert!(err.contains("HTTP 403"), "{err}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_answer_outside_the_contract_is_an_error_quoting_it() {
        let bad = "<html>\x1b[31mBad\ngateway</html>".to_string();
        let (api, _) = serve(vec![
            (200, r#"{"hello": 1}"#.into()),
            (502, bad.clone()),
            (502, bad.clone()),
            (502, bad),
        ]);
        let err = api.build("b").await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("GET /projects/demo/builds/b: HTTP 200: "),
            "{err}"
        );
        let err = api.build("b").await.unwrap_err().to_string();
        assert!(err.ends_with("HTTP 502: <html>Bad gateway</html>"), "{err}");
    }

    #[tokio::test]
    async fn cancel_deletes_the_build_and_reads_the_stopped_record_a_conflict_or_no_build() {
        let mut stopped = record("STOPPED");
        stopped.error = Some(agentbuild_core::domain::record::ErrorInfo::new(
            "Cancelled",
            "cancelled through the API",
        ));
        let finished = json!({"error": {"code": "AlreadyFinished", "status": "SUCCEEDED",
            "message": "build cli-0123 already finished on its own: SUCCEEDED"}});
        let (api, seen) = serve(vec![
            (202, serde_json::to_string(&stopped).unwrap()),
            (409, finished.to_string()),
            (
                404,
                r#"{"error":{"code":"NotFound","message":"no build x"}}"#.into(),
            ),
            (409, r#"{"error":{"code":"Other","message":"m"}}"#.into()),
        ]);
        let Some(Cancellation::Cancelled(v)) = api.cancel("cli-0123").await.unwrap() else {
            panic!("expected a cancellation");
        };
        assert_eq!(v.state, ViewState::Final(BuildStatus::Stopped));
        assert_eq!(
            api.cancel("cli-0123").await.unwrap(),
            Some(Cancellation::Finished(
                agentbuild_core::domain::ending::Reported::Succeeded
            ))
        );
        assert_eq!(api.cancel("x").await.unwrap(), None);
        let err = api.cancel("y").await.unwrap_err().to_string();
        assert!(
            err.starts_with("DELETE /projects/demo/builds/y: HTTP 409"),
            "{err}"
        );
        assert_eq!(
            seen.lock().unwrap()[0],
            "DELETE /api/projects/demo/builds/cli-0123"
        );
    }

    #[tokio::test]
    async fn the_log_tail_pages_the_apis_logs_route_and_keeps_the_last_lines() {
        let page = |lines: &[&str], token: &str| {
            let events: Vec<_> = lines.iter().map(|m| json!({"message": m})).collect();
            json!({"buildId": "b", "events": events, "nextToken": token}).to_string()
        };
        let (api, seen) = serve(vec![
            (200, page(&["a", "b", "c"], "f/1 2")),
            (200, page(&["d"], "f/2")),
            (200, page(&[], "f/2")),
        ]);
        let stream = LogStream {
            group: "g".into(),
            stream: "s".into(),
        };
        assert_eq!(api.log_tail("b", &stream, 2).await.unwrap(), ["c", "d"]);
        let paths = seen.lock().unwrap().clone();
        assert_eq!(
            paths,
            [
                "GET /api/projects/demo/builds/b/logs",
                "GET /api/projects/demo/builds/b/logs?nextToken=f%2F1%202",
                "GET /api/projects/demo/builds/b/logs?nextToken=f%2F2",
            ]
        );
    }

    #[tokio::test]
    async fn runtimes_and_retire_call_the_agents_project_scoped_routes() {
        let entry = json!({"status": "RETIRED", "runtimeName": "Old", "stack": "s",
            "project": "nexus-ai", "agent": "sales", "boundAt": "2026-11-28T10:00:00Z",
            "retired": {"at": "2026-11-28T10:05:00Z", "by": "arn:x", "runtimeArn": "arn:rt"}});
        let listed = json!({"project": "nexus-ai", "agent": "sales", "runtimes": [entry]});
        let in_use = json!({"error": {"code": "RuntimeInUse", "field": "deploy.runtimeName",
            "message": "current"}});
        let (api, seen) = serve(vec![
            (200, listed.to_string()),
            (200, entry.to_string()),
            (409, in_use.to_string()),
        ]);
        let got = api.runtimes("nexus-ai", "sales").await.unwrap();
        assert_eq!(got.runtimes.len(), 1);
        let retired = api.retire("nexus-ai", "sales", "Old", false).await.unwrap();
        assert_eq!(retired.unwrap().binding.runtime_name, "Old");
        let refused = api.retire("nexus-ai", "sales", "New", true).await.unwrap();
        assert_eq!(refused.unwrap_err().code, "RuntimeInUse");
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "GET /api/projects/nexus-ai/agents/sales/runtimes",
                "DELETE /api/projects/nexus-ai/agents/sales/runtimes/Old",
                "DELETE /api/projects/nexus-ai/agents/sales/runtimes/New?force=true",
            ]
        );
    }

    #[tokio::test]
    async fn every_call_is_signed_and_a_build_needs_its_project() {
        let accepted = json!({"buildId": "api-1", "executionArn": "arn:x",
            "statusUrl": "/projects/demo/builds/api-1"});
        let (api, _) = serve(vec![(202, accepted.to_string())]);
        let unscoped = ApiService {
            project: OnceLock::new(),
            ..api
        };
        let err = unscoped.build("b").await.unwrap_err();
        assert!(matches!(err, CliError::Usage(_)), "{err}");
        // Submitting names the project for what follows.
        unscoped.submit(&request()).await.unwrap();
        assert_eq!(unscoped.build_path("b").unwrap(), "/projects/demo/builds/b");
    }
}
