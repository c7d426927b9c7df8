//! The API: an HTTP API payload 2.0 request (also the function-URL format `cargo lambda watch`
//! serves locally) -> `POST /builds`, `GET /builds/{buildId}`, `GET /agents/{project}/{agent}`
//! -> a JSON response; every refusal is `{"error": {"code", "field"?, "message"}}`.
//!
//! Status codes: 202 build accepted; 200 record or live status; 400 bad input (`InvalidRequest`,
//! `MalformedJson`, `SourceNotFound`); 404 `NotFound`; 405 `MethodNotAllowed`; 409
//! `IdempotencyKeyReused` / `TooManyAttempts`; 413 `PayloadTooLarge`; 415
//! `UnsupportedMediaType`; 503 `ServiceUnavailable` (AWS throttled or busy; retry); 500
//! `InternalError`.

use super::{aws_config, s3_client, Clock};
use crate::adapters::s3::S3Store;
use crate::adapters::sfn::StepFunctions;
use crate::config::{ApiConfig, ProcessEnv};
use crate::domain::execution::{
    api_execution_name, canonical_json, envelope, request_json, MAX_API_ATTEMPTS,
};
use crate::domain::json::{parse_request, JsonError};
use crate::domain::plan::{is_build_id, Trigger};
use crate::domain::record::{build_key, latest_key, BuildRecord, ErrorInfo};
use crate::domain::request::{clip, is_name, validate, RequestError, ValidRequest, NAME_RULE};
use crate::model::{ApiRequest, ApiResponse, CaughtError};
use crate::ports::{ExecutionInfo, ExecutionStatus, Executions, ObjectStore, StartOutcome};
use crate::Error;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{header, HeaderName, HeaderValue, Method};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub struct Deps<S, X> {
    pub store: S,
    pub executions: X,
    pub config: ApiConfig,
    pub now: Clock,
}

impl Deps<S3Store, StepFunctions> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = ApiConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            store: S3Store::new(s3_client(&sdk), config.bucket()),
            executions: StepFunctions::new(
                aws_sdk_sfn::Client::new(&sdk),
                config.state_machine_arn.clone(),
            ),
            config,
            now: Utc::now,
        })
    }
}

/// Never `Err`: every outcome, AWS failures included, is an HTTP answer.
pub async fn handle<S: ObjectStore, X: Executions>(
    deps: &Deps<S, X>,
    event: ApiRequest,
) -> Result<ApiResponse, Error> {
    let route = route(&event);
    let result = match &route {
        Route::PostBuilds => post_build(deps, &event).await,
        Route::GetBuild(id) => get_build(deps, id).await,
        Route::GetAgent(project, agent) => get_agent(deps, project, agent).await,
        Route::WrongMethod(allow) => Err(Problem::new(
            405,
            "MethodNotAllowed",
            format!("this path accepts {allow}"),
        )
        .allow(allow)),
        Route::Unknown => Err(Problem::new(
            404,
            "NotFound",
            "no such route; the API has POST /builds, GET /builds/{buildId}, \
             GET /agents/{project}/{agent}",
        )),
    };
    let response = match result {
        Ok(reply) => reply,
        Err(problem) => problem.into_response(event.request_context.request_id.as_deref()),
    };
    tracing::info!(
        method = %event.request_context.http.method,
        route = route.name(),
        status = response.status_code,
        "answered"
    );
    Ok(response)
}

// ---------------------------------------------------------------------------------- routing

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    PostBuilds,
    GetBuild(String),
    GetAgent(String, String),
    WrongMethod(&'static str),
    Unknown,
}

impl Route {
    fn name(&self) -> &'static str {
        match self {
            Route::PostBuilds => "POST /builds",
            Route::GetBuild(_) => "GET /builds/{buildId}",
            Route::GetAgent(..) => "GET /agents/{project}/{agent}",
            Route::WrongMethod(_) => "wrong method",
            Route::Unknown => "unknown",
        }
    }
}

enum Target {
    Builds,
    Build(String),
    Agent(String, String),
}

fn route(event: &ApiRequest) -> Route {
    let method = &event.request_context.http.method;
    match target(event) {
        Some(Target::Builds) if method == Method::POST => Route::PostBuilds,
        Some(Target::Builds) => Route::WrongMethod("POST"),
        Some(Target::Build(id)) if method == Method::GET => Route::GetBuild(id),
        Some(Target::Agent(p, a)) if method == Method::GET => Route::GetAgent(p, a),
        Some(Target::Build(_) | Target::Agent(..)) => Route::WrongMethod("GET"),
        None => Route::Unknown,
    }
}

/// API Gateway names the matched route in `routeKey` ("POST /builds/{buildId}" and so on) and
/// its values in `pathParameters`. Function URLs and `cargo lambda watch` (which strips its
/// `/lambda-url/<function>` prefix) send `$default`: then the raw path decides, matched from
/// its end so that a stage or any other prefix in front does not matter.
fn target(event: &ApiRequest) -> Option<Target> {
    let params = &event.path_parameters;
    let route_path = event
        .route_key
        .as_deref()
        .or(event.request_context.route_key.as_deref())
        .and_then(|k| k.split_once(' '))
        .map(|(_, path)| path);
    match route_path {
        Some("/builds") => return Some(Target::Builds),
        Some("/builds/{buildId}") => {
            if let Some(id) = params.get("buildId") {
                return Some(Target::Build(id.clone()));
            }
        }
        Some("/agents/{project}/{agent}") => {
            if let (Some(p), Some(a)) = (params.get("project"), params.get("agent")) {
                return Some(Target::Agent(p.clone(), a.clone()));
            }
        }
        _ => {}
    }
    let path = event
        .raw_path
        .as_deref()
        .or(event.request_context.http.path.as_deref())
        .unwrap_or("/");
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [.., "agents", project, agent] => {
            Some(Target::Agent(project.to_string(), agent.to_string()))
        }
        [.., "builds", id] => Some(Target::Build(id.to_string())),
        [.., "builds"] => Some(Target::Builds),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------- answers

/// A refusal or failure, as the caller sees it.
#[derive(Debug)]
struct Problem {
    status: u16,
    code: &'static str,
    field: Option<String>,
    message: String,
    allow: Option<&'static str>,
}

impl Problem {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            field: None,
            message: message.into(),
            allow: None,
        }
    }

    fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }

    fn allow(mut self, methods: &'static str) -> Self {
        self.allow = Some(methods);
        self
    }

    fn into_response(self, request_id: Option<&str>) -> ApiResponse {
        // Server-side failures name the request so its log lines can be found; the details
        // (bucket names, ARNs, SDK messages) stay in the log.
        let message = match request_id {
            Some(id) if self.status >= 500 => format!("{} (request {id})", self.message),
            _ => self.message,
        };
        let mut error = json!({"code": self.code, "message": message});
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        let mut headers = Vec::new();
        if let Some(allow) = self.allow {
            headers.push((header::ALLOW, allow.to_string()));
        }
        if self.status == 503 {
            headers.push((header::RETRY_AFTER, "2".to_string()));
        }
        response(self.status, json!({ "error": error }).to_string(), headers)
    }
}

impl From<RequestError> for Problem {
    fn from(e: RequestError) -> Self {
        Problem::new(400, "InvalidRequest", e.message).field(&e.field)
    }
}

impl From<Error> for Problem {
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidRequest(e) => e.into(),
            Error::TransientAws(_) => {
                tracing::warn!(error = %err, "AWS busy; answering 503");
                Problem::new(503, "ServiceUnavailable", "AWS is busy; retry shortly")
            }
            other => {
                tracing::error!(error = %other, error_type = other.name(), "request failed");
                Problem::new(500, "InternalError", "internal error")
            }
        }
    }
}

fn response(status: u16, body: String, headers: Vec<(HeaderName, String)>) -> ApiResponse {
    let mut r = ApiResponse::default();
    r.status_code = status.into();
    r.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Statuses change while a build runs: no cache may keep one.
    r.headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers.insert(name, v);
        }
    }
    r.body = Some(Body::Text(body));
    r
}

fn ok_json(body: Value) -> ApiResponse {
    response(200, body.to_string(), Vec::new())
}

/// A stored record, as stored (fields of newer schema versions included).
fn ok_record(bytes: Vec<u8>) -> Result<ApiResponse, Problem> {
    let text = String::from_utf8(bytes)
        .map_err(|_| Problem::from(Error::InvalidState("a record is not UTF-8".into())))?;
    Ok(response(200, text, Vec::new()))
}

// ---------------------------------------------------------------------------------- POST /builds

async fn post_build<S: ObjectStore, X: Executions>(
    deps: &Deps<S, X>,
    event: &ApiRequest,
) -> Result<ApiResponse, Problem> {
    let body = json_body(event, deps.config.max_body_bytes)?;
    let value = parse_request(&body).map_err(|e| match e {
        JsonError::TooLarge(_) => Problem::new(413, "PayloadTooLarge", e.to_string()),
        JsonError::Duplicate(d) => d.into(),
        JsonError::Malformed(m) => {
            Problem::new(400, "MalformedJson", format!("the body is not JSON: {m}"))
        }
    })?;
    let req = validate(&value, &deps.config.validate.sources)?;

    // What ValidateRequest would reject later, refused now rather than as a failed execution.
    let meta = deps
        .store
        .head(&req.source.bucket, &req.source.key)
        .await?
        .ok_or_else(|| {
            let uri = clip(&req.source.to_string());
            Problem::new(400, "SourceNotFound", format!("{uri} does not exist")).field("source")
        })?;
    meta.check_source(deps.config.validate.max_source_bytes)?;

    let input = canonical_json(&envelope(Trigger::Api, request_json(&req)));
    for attempt in 0..MAX_API_ATTEMPTS {
        let name = api_execution_name(&req, attempt);
        let existing = match deps.executions.start(&name, &input).await? {
            StartOutcome::Running { arn } => return Ok(accepted(&name, &arn, &req)),
            StartOutcome::NameTaken => deps.executions.describe(&name).await?.ok_or_else(|| {
                // Taken but not found: Step Functions has not caught up with itself yet.
                Problem::from(Error::TransientAws(format!(
                    "execution {name} exists but cannot be described yet"
                )))
            })?,
        };
        let same_request = existing
            .input
            .as_deref()
            .and_then(|i| serde_json::from_str::<Value>(i).ok())
            .is_some_and(|v| canonical_json(&v) == input);
        if req.idempotency_key.is_some() {
            // The key names the build, finished or not; reusing it for another request is the
            // caller's mistake, not a new build.
            if same_request {
                return Ok(accepted(&name, &existing.arn, &req));
            }
            return Err(Problem::new(
                409,
                "IdempotencyKeyReused",
                format!(
                    "this key already named build {name} of a different request; \
                     send a new idempotencyKey for a new build"
                ),
            )
            .field("idempotencyKey"));
        }
        // Without a key, an identical request is the same build unless that build ended
        // unsuccessfully: then asking again means "try again", under the next name.
        if same_request && !existing.status.ended_unsuccessfully() {
            return Ok(accepted(&name, &existing.arn, &req));
        }
    }
    Err(Problem::new(
        409,
        "TooManyAttempts",
        format!(
            "this exact request already failed {MAX_API_ATTEMPTS} times; \
             send an idempotencyKey to start another build"
        ),
    ))
}

/// The body as JSON bytes, or why not: media type, size, encoding.
fn json_body(event: &ApiRequest, max: usize) -> Result<Vec<u8>, Problem> {
    let content_type = event
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if !json {
        return Err(Problem::new(
            415,
            "UnsupportedMediaType",
            format!("Content-Type must be application/json, got {content_type:?}"),
        ));
    }
    let too_large = |n: usize| {
        Problem::new(
            413,
            "PayloadTooLarge",
            format!("the body is {n} bytes; at most {max} allowed"),
        )
    };
    let raw = event.body.as_deref().unwrap_or("");
    let bytes = if event.is_base64_encoded {
        // Refuse before decoding: base64 carries 3 bytes in every 4 characters.
        if raw.len() / 4 * 3 > max + 3 {
            return Err(too_large(raw.len() / 4 * 3));
        }
        aws_smithy_types::base64::decode(raw)
            .map_err(|_| Problem::new(400, "MalformedJson", "the body is not valid base64"))?
    } else {
        raw.as_bytes().to_vec()
    };
    if bytes.len() > max {
        return Err(too_large(bytes.len()));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::new(
            400,
            "MalformedJson",
            "the body is empty; send the build request as a JSON object",
        ));
    }
    Ok(bytes)
}

fn accepted(build_id: &str, execution_arn: &str, req: &ValidRequest) -> ApiResponse {
    let status_url = format!("/builds/{build_id}");
    tracing::info!(
        build_id,
        execution = execution_arn,
        project = %req.project,
        agent = %req.agent,
        "build accepted"
    );
    response(
        202,
        json!({"buildId": build_id, "executionArn": execution_arn, "statusUrl": status_url})
            .to_string(),
        vec![(header::LOCATION, status_url)],
    )
}

// ---------------------------------------------------------------------------------- GET /builds/{id}

/// The record once it is final. Before that, a live status assembled from the RUNNING record
/// (StartBuild writes it, CheckBuild keeps its phase current) and DescribeExecution.
///
/// `state` is where the build is, derived rather than read from GetExecutionHistory (a
/// heavier, paginated read with its own throttle, once per status poll, and one more IAM
/// action): `Starting` (ValidateRequest / StartBuild: no CodeBuild build yet), `Building`
/// (the WaitForBuild / CheckBuild loop), `Recording` (the execution has ended and its record
/// is being closed).
async fn get_build<S: ObjectStore, X: Executions>(
    deps: &Deps<S, X>,
    id: &str,
) -> Result<ApiResponse, Problem> {
    if !is_build_id(id) {
        return Err(RequestError::new(
            "buildId",
            "must be 1 to 80 of letters, digits, '-' and '_'",
        )
        .into());
    }
    let key = build_key(id);
    let record = read_record(&deps.store, &key).await?;
    if let Some((bytes, rec)) = record.clone() {
        if rec.status.is_final() {
            return ok_record(bytes);
        }
    }
    let execution = deps.executions.describe(id).await?;
    let now = (deps.now)();
    match (record, execution) {
        (None, None) => Err(Problem::new(404, "NotFound", format!("no build {id}"))),
        (_, Some(e)) if !e.status.is_open() => {
            // The execution closed after the first read, or RecordResult is closing the record.
            let record = read_record(&deps.store, &key).await?;
            match record {
                Some((bytes, rec)) if rec.status.is_final() => ok_record(bytes),
                other => Ok(ok_json(closed(id, &e, other.map(|r| r.1).as_ref()))),
            }
        }
        (Some((_, rec)), e) => Ok(ok_json(live(&rec, e.as_ref(), now))),
        (None, Some(e)) => Ok(ok_json(json!({
            "buildId": id,
            "status": "RUNNING",
            "state": "Starting",
            "phase": null,
            "elapsedSeconds": elapsed(e.started_at, now),
            "executionArn": e.arn,
        }))),
    }
}

async fn read_record<S: ObjectStore>(
    store: &S,
    key: &str,
) -> Result<Option<(Vec<u8>, BuildRecord)>, Problem> {
    let Some(bytes) = store.get(key).await? else {
        return Ok(None);
    };
    let record = serde_json::from_slice(&bytes).map_err(|e| {
        Problem::from(Error::InvalidState(format!(
            "{key} is not a build record: {e}"
        )))
    })?;
    Ok(Some((bytes, record)))
}

fn elapsed(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<i64> {
    since.map(|t| (now - t).num_seconds().max(0))
}

fn live(rec: &BuildRecord, execution: Option<&ExecutionInfo>, now: DateTime<Utc>) -> Value {
    json!({
        "buildId": rec.build_id,
        "status": "RUNNING",
        "state": if rec.codebuild.build_id.is_some() { "Building" } else { "Starting" },
        "phase": rec.codebuild.current_phase,
        "elapsedSeconds": elapsed(Some(rec.timestamps.requested_at), now),
        "project": rec.project,
        "agent": rec.agent,
        "trigger": rec.trigger,
        "executionArn": execution.map_or(rec.execution_arn.as_str(), |e| e.arn.as_str()),
        "codebuild": {
            "buildId": rec.codebuild.build_id,
            "logUrl": rec.codebuild.log_url,
        },
        "requestedAt": rec.timestamps.requested_at,
    })
}

/// An execution that ended without a final record: rejected by ValidateRequest (no record is
/// ever written then), or timed out / aborted with RecordResult still to close the record.
fn closed(id: &str, e: &ExecutionInfo, rec: Option<&BuildRecord>) -> Value {
    let caught = |default_kind: &str, default_message: &str| {
        if e.error.is_some() || e.cause.is_some() {
            CaughtError {
                error: e.error.clone().unwrap_or_else(|| default_kind.into()),
                cause: e.cause.clone(),
            }
            .to_info()
        } else {
            ErrorInfo::new(default_kind, default_message)
        }
    };
    let (status, error) = match &e.status {
        ExecutionStatus::Failed
            if rec.is_none() && e.error.as_deref() == Some("InvalidRequest") =>
        {
            ("REJECTED", Some(caught("InvalidRequest", "")))
        }
        ExecutionStatus::Succeeded => ("SUCCEEDED", None),
        ExecutionStatus::TimedOut => (
            "TIMED_OUT",
            Some(caught("States.Timeout", "the execution timed out")),
        ),
        ExecutionStatus::Aborted => (
            "STOPPED",
            Some(caught("ExecutionAborted", "the execution was aborted")),
        ),
        ExecutionStatus::Failed => (
            "ERROR",
            Some(caught("States.Failed", "the execution failed")),
        ),
        ExecutionStatus::Unknown(s) => (
            "ERROR",
            Some(ErrorInfo::new("UnknownExecutionStatus", s.clone())),
        ),
        ExecutionStatus::Running | ExecutionStatus::PendingRedrive => ("RUNNING", None),
    };
    let mut v = json!({
        "buildId": id,
        "status": status,
        "executionArn": e.arn,
        "finishedAt": e.stopped_at,
    });
    if status != "REJECTED" {
        v["state"] = json!("Recording");
        v["phase"] = json!(rec.and_then(|r| r.codebuild.current_phase.clone()));
    }
    if let Some(err) = error {
        v["error"] = json!(err);
    }
    v
}

// ---------------------------------------------------------------------------------- GET /agents

async fn get_agent<S: ObjectStore, X>(
    deps: &Deps<S, X>,
    project: &str,
    agent: &str,
) -> Result<ApiResponse, Problem> {
    for (field, value) in [("project", project), ("agent", agent)] {
        if !is_name(value) {
            return Err(RequestError::new(field, NAME_RULE).into());
        }
    }
    match deps.store.get(&latest_key(project, agent)).await? {
        Some(bytes) => ok_record(bytes),
        None => Err(Problem::new(
            404,
            "NotFound",
            format!("{project}/{agent} has no successful build"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ValidateConfig;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::request::SourcePolicy;
    use crate::domain::status::BuildStatus;
    use crate::handlers::fakes::{FakeExecutions, FakeStore, OWN};

    const SOURCE_KEY: &str = "sources/nexus-ai/sales/src.zip";

    fn deps(store: FakeStore) -> Deps<FakeStore, FakeExecutions> {
        Deps {
            store,
            executions: FakeExecutions::default(),
            config: ApiConfig {
                validate: ValidateConfig {
                    sources: SourcePolicy::own(OWN),
                    repository_uri: "123.dkr.ecr.us-east-1.amazonaws.com/agentbuild".into(),
                    max_source_bytes: 1000,
                },
                state_machine_arn: "arn:aws:states:us-east-1:1:stateMachine:agentbuild".into(),
                max_body_bytes: 64 * 1024,
            },
            now: || "2026-11-28T10:02:00Z".parse().unwrap(),
        }
    }

    fn with_source() -> Deps<FakeStore, FakeExecutions> {
        deps(FakeStore::default().with_object(OWN, SOURCE_KEY, b"zip"))
    }

    /// What `cargo lambda watch` sends for a function-URL request (route key `$default`).
    fn http(
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> ApiRequest {
        let mut headers = json!({"host": "127.0.0.1:9000", "user-agent": "test"});
        if let Some(ct) = content_type {
            headers["content-type"] = json!(ct);
        }
        serde_json::from_value(json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
            "headers": headers, "isBase64Encoded": false, "body": body,
            "requestContext": {
                "routeKey": "$default", "stage": "$default", "requestId": "req-1",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": "test"}
            }
        }))
        .unwrap()
    }

    fn post(body: &Value) -> ApiRequest {
        http(
            "POST",
            "/builds",
            Some("application/json"),
            Some(&body.to_string()),
        )
    }

    fn get(path: &str) -> ApiRequest {
        http("GET", path, None, None)
    }

    fn build_request() -> Value {
        json!({"project": "nexus-ai", "agent": "sales", "source": format!("s3://{OWN}/{SOURCE_KEY}")})
    }

    async fn call(d: &Deps<FakeStore, FakeExecutions>, event: ApiRequest) -> (i64, Value) {
        let r = handle(d, event).await.unwrap();
        let body = match r.body {
            Some(Body::Text(s)) => serde_json::from_str(&s).unwrap(),
            other => panic!("unexpected body {other:?}"),
        };
        (r.status_code, body)
    }

    fn error_of(body: &Value) -> (&str, Option<&str>) {
        (
            body["error"]["code"].as_str().unwrap(),
            body["error"]["field"].as_str(),
        )
    }

    // ---- POST /builds

    #[tokio::test]
    async fn accepts_a_build_and_starts_one_execution_with_the_api_envelope() {
        let d = with_source();
        let (status, body) = call(&d, post(&build_request())).await;
        assert_eq!(status, 202, "{body}");
        let id = body["buildId"].as_str().unwrap();
        assert!(id.starts_with("api-") && is_build_id(id), "{id}");
        assert_eq!(body["executionArn"], FakeExecutions::arn(id));
        assert_eq!(body["statusUrl"], format!("/builds/{id}"));
        assert_eq!(d.executions.names(), [id]);
        let input = d.executions.input_of(id);
        assert_eq!(input["trigger"], "api");
        assert_eq!(input["request"]["platform"], "linux/arm64");
        assert_eq!(
            input["request"]["source"],
            format!("s3://{OWN}/{SOURCE_KEY}")
        );
    }

    #[tokio::test]
    async fn the_answer_points_at_the_status() {
        let d = with_source();
        let r = handle(&d, post(&build_request())).await.unwrap();
        let location = r.headers[header::LOCATION].to_str().unwrap();
        assert!(location.starts_with("/builds/api-"), "{location}");
        assert_eq!(r.headers[header::CONTENT_TYPE], "application/json");
    }

    #[tokio::test]
    async fn rejects_malformed_json() {
        let d = with_source();
        for body in ["{\"project\": ", "not json", ""] {
            let (status, b) = call(
                &d,
                http("POST", "/builds", Some("application/json"), Some(body)),
            )
            .await;
            assert_eq!((status, error_of(&b).0), (400, "MalformedJson"), "{body}");
        }
        assert!(d.executions.names().is_empty());
    }

    #[tokio::test]
    async fn rejects_a_body_that_is_not_json_by_media_type() {
        let d = with_source();
        let body = build_request().to_string();
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let (status, b) = call(&d, http("POST", "/builds", ct, Some(&body))).await;
            assert_eq!(
                (status, error_of(&b).0),
                (415, "UnsupportedMediaType"),
                "{ct:?}"
            );
        }
        let (status, _) = call(
            &d,
            http(
                "POST",
                "/builds",
                Some("Application/JSON; charset=utf-8"),
                Some(&body),
            ),
        )
        .await;
        assert_eq!(status, 202);
    }

    #[tokio::test]
    async fn rejects_an_oversize_body_plain_or_base64() {
        let d = with_source();
        let mut big = build_request();
        big["buildArgs"] = json!({"A": "x".repeat(70 * 1024)});
        let (status, b) = call(&d, post(&big)).await;
        assert_eq!((status, error_of(&b).0), (413, "PayloadTooLarge"));
        let mut e = post(&big);
        e.body = Some(aws_smithy_types::base64::encode(big.to_string()));
        e.is_base64_encoded = true;
        let (status, _) = call(&d, e).await;
        assert_eq!(status, 413);
        assert!(d.executions.names().is_empty());
    }

    #[tokio::test]
    async fn reads_a_base64_body() {
        let d = with_source();
        let mut e = post(&build_request());
        e.body = Some(aws_smithy_types::base64::encode(
            build_request().to_string(),
        ));
        e.is_base64_encoded = true;
        assert_eq!(call(&d, e).await.0, 202);
    }

    #[tokio::test]
    async fn rejects_unknown_fields_by_name() {
        let d = with_source();
        let mut r = build_request();
        r["buildspec"] = json!("rm -rf /");
        let (status, b) = call(&d, post(&r)).await;
        assert_eq!(
            (status, error_of(&b)),
            (400, ("InvalidRequest", Some("buildspec")))
        );
    }

    #[tokio::test]
    async fn every_rule_names_its_field() {
        let cases = [
            ("project", json!("Bad"), "project"),
            ("agent", json!(""), "agent"),
            ("source", json!("s3://elsewhere/sources/x.zip"), "source"),
            ("dockerfile", json!("../Dockerfile"), "dockerfile"),
            ("platform", json!("linux/s390x"), "platform"),
            ("buildArgs", json!({"X;rm": "1"}), "buildArgs.X;rm"),
            ("buildArgs", json!({"A": "a\u{0}"}), "buildArgs.A"),
            ("force", json!("yes"), "force"),
            ("idempotencyKey", json!("a b"), "idempotencyKey"),
        ];
        let d = with_source();
        for (field, value, named) in cases {
            let mut r = build_request();
            r[field] = value;
            let (status, b) = call(&d, post(&r)).await;
            assert_eq!(status, 400, "{field}: {b}");
            assert_eq!(error_of(&b), ("InvalidRequest", Some(named)), "{b}");
            assert!(!b["error"]["message"].as_str().unwrap().is_empty());
        }
        assert!(d.executions.names().is_empty());
    }

    #[tokio::test]
    async fn a_missing_source_is_refused_at_once() {
        let d = deps(FakeStore::default());
        let (status, b) = call(&d, post(&build_request())).await;
        assert_eq!(
            (status, error_of(&b)),
            (400, ("SourceNotFound", Some("source")))
        );
        assert!(d.executions.start_calls.borrow().is_empty());
    }

    #[tokio::test]
    async fn an_oversize_source_is_refused_at_once() {
        let d = deps(FakeStore::default().with_object(OWN, SOURCE_KEY, &[0; 1001]));
        let (status, b) = call(&d, post(&build_request())).await;
        assert_eq!(
            (status, error_of(&b)),
            (400, ("InvalidRequest", Some("source")))
        );
    }

    fn keyed(key: &str) -> Value {
        let mut r = build_request();
        r["idempotencyKey"] = json!(key);
        r
    }

    #[tokio::test]
    async fn the_same_key_twice_is_one_build_also_after_it_finished() {
        let d = with_source();
        let (s1, first) = call(&d, post(&keyed("req-1"))).await;
        let (s2, second) = call(&d, post(&keyed("req-1"))).await;
        assert_eq!((s1, s2), (202, 202));
        assert_eq!(first, second);
        let id = first["buildId"].as_str().unwrap();
        d.executions.end(id, ExecutionStatus::Succeeded, None);
        let (s3, third) = call(&d, post(&keyed("req-1"))).await;
        assert_eq!((s3, &third), (202, &first));
        assert_eq!(d.executions.names(), [id]);
    }

    #[tokio::test]
    async fn a_failed_build_stays_the_answer_for_its_key() {
        let d = with_source();
        let (_, first) = call(&d, post(&keyed("req-1"))).await;
        let id = first["buildId"].as_str().unwrap();
        d.executions
            .end(id, ExecutionStatus::Failed, Some(("BuildFailed", "exit 1")));
        let (status, again) = call(&d, post(&keyed("req-1"))).await;
        assert_eq!((status, &again["buildId"]), (202, &first["buildId"]));
        assert_eq!(d.executions.names().len(), 1);
    }

    #[tokio::test]
    async fn different_keys_are_different_builds() {
        let d = with_source();
        let (_, a) = call(&d, post(&keyed("req-1"))).await;
        let (_, b) = call(&d, post(&keyed("req-2"))).await;
        assert_ne!(a["buildId"], b["buildId"]);
        assert_eq!(d.executions.names().len(), 2);
    }

    #[tokio::test]
    async fn a_key_reused_for_another_request_is_a_conflict() {
        let d = with_source();
        call(&d, post(&keyed("req-1"))).await;
        let mut other = keyed("req-1");
        other["force"] = json!(true);
        let (status, b) = call(&d, post(&other)).await;
        assert_eq!(
            (status, error_of(&b)),
            (409, ("IdempotencyKeyReused", Some("idempotencyKey")))
        );
        assert_eq!(d.executions.names().len(), 1);
    }

    #[tokio::test]
    async fn identical_keyless_requests_share_a_build_until_it_fails() {
        let d = with_source();
        let (_, a) = call(&d, post(&build_request())).await;
        let (_, b) = call(&d, post(&build_request())).await;
        assert_eq!(a, b);
        let first = a["buildId"].as_str().unwrap().to_string();
        d.executions.end(&first, ExecutionStatus::Succeeded, None);
        let (_, c) = call(&d, post(&build_request())).await;
        assert_eq!(c["buildId"], first.as_str());

        d.executions
            .end(&first, ExecutionStatus::Failed, Some(("BuildFault", "")));
        let (status, retry) = call(&d, post(&build_request())).await;
        assert_eq!(status, 202);
        assert_eq!(retry["buildId"], format!("{first}-r2"));
        assert_eq!(d.executions.names().len(), 2);
    }

    #[tokio::test]
    async fn a_busy_step_functions_is_a_503_with_nothing_started() {
        let d = with_source();
        d.executions
            .fail_next
            .borrow_mut()
            .push_back(Error::TransientAws("SFN.StartExecution: throttled".into()));
        let r = handle(&d, post(&build_request())).await.unwrap();
        assert_eq!(r.status_code, 503);
        assert_eq!(r.headers[header::RETRY_AFTER], "2");
        assert!(d.executions.names().is_empty());
    }

    #[tokio::test]
    async fn other_aws_failures_are_a_500_naming_the_request_only() {
        let d = with_source();
        d.store.fail_next.borrow_mut().push_back(Error::AwsService(
            "S3.HeadObject: AccessDenied on secret-bucket".into(),
        ));
        let (status, b) = call(&d, post(&build_request())).await;
        assert_eq!(status, 500);
        let message = b["error"]["message"].as_str().unwrap();
        assert_eq!(message, "internal error (request req-1)");
    }

    // ---- GET /builds/{buildId}

    fn record(status: BuildStatus) -> BuildRecord {
        let mut b = running();
        b.status = status;
        b.current_phase = Some("BUILD".into());
        if status.is_final() {
            b.finished_at = Some(t("2026-11-28T10:05:00Z"));
        }
        BuildRecord::new(&plan(), Some(&b), None, t("2026-11-28T10:05:00Z"))
    }

    async fn stored(d: &Deps<FakeStore, FakeExecutions>, rec: &BuildRecord) {
        d.store.seed(&build_key(&rec.build_id), rec.to_json());
    }

    #[tokio::test]
    async fn a_finished_build_answers_its_record() {
        let d = with_source();
        let rec = record(BuildStatus::Failed);
        stored(&d, &rec).await;
        let (status, body) = call(&d, get("/builds/b-1")).await;
        assert_eq!(status, 200);
        assert_eq!(serde_json::from_value::<BuildRecord>(body).unwrap(), rec);
    }

    #[tokio::test]
    async fn a_running_build_answers_its_live_status() {
        let d = with_source();
        stored(&d, &record(BuildStatus::Running)).await;
        let d = Deps {
            executions: FakeExecutions::default().with("b-1", ExecutionStatus::Running, "{}"),
            ..d
        };
        let (status, body) = call(&d, get("/builds/b-1")).await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "RUNNING");
        assert_eq!(body["state"], "Building");
        assert_eq!(body["phase"], "BUILD");
        assert_eq!(body["elapsedSeconds"], 120);
        assert_eq!(body["codebuild"]["buildId"], "agentbuild:1");
    }

    #[tokio::test]
    async fn a_build_not_yet_started_answers_from_the_execution() {
        let d = with_source();
        let d = Deps {
            executions: FakeExecutions::default().with("api-x", ExecutionStatus::Running, "{}"),
            ..d
        };
        let (status, body) = call(&d, get("/builds/api-x")).await;
        assert_eq!(status, 200);
        assert_eq!(
            (&body["status"], &body["state"], &body["elapsedSeconds"]),
            (&json!("RUNNING"), &json!("Starting"), &json!(120))
        );
    }

    #[tokio::test]
    async fn a_rejected_execution_reports_the_rule_it_broke() {
        let d = with_source();
        let d = Deps {
            executions: FakeExecutions::default().with("api-x", ExecutionStatus::Running, "{}"),
            ..d
        };
        d.executions.end(
            "api-x",
            ExecutionStatus::Failed,
            Some((
                "InvalidRequest",
                r#"{"errorType":"InvalidRequest","errorMessage":"source: s3://own/sources/a.zip does not exist"}"#,
            )),
        );
        let (status, body) = call(&d, get("/builds/api-x")).await;
        assert_eq!((status, &body["status"]), (200, &json!("REJECTED")));
        assert_eq!(body["error"]["type"], "InvalidRequest");
        assert_eq!(
            body["error"]["message"],
            "source: s3://own/sources/a.zip does not exist"
        );
    }

    #[tokio::test]
    async fn a_timed_out_execution_is_reported_before_its_record_is_closed() {
        let d = with_source();
        stored(&d, &record(BuildStatus::Running)).await;
        let d = Deps {
            executions: FakeExecutions::default().with("b-1", ExecutionStatus::Running, "{}"),
            ..d
        };
        d.executions.end("b-1", ExecutionStatus::TimedOut, None);
        let (_, body) = call(&d, get("/builds/b-1")).await;
        assert_eq!(
            (&body["status"], &body["state"], &body["phase"]),
            (&json!("TIMED_OUT"), &json!("Recording"), &json!("BUILD"))
        );
        assert_eq!(body["error"]["type"], "States.Timeout");
    }

    #[tokio::test]
    async fn an_unknown_build_is_404_and_a_malformed_id_400() {
        let d = with_source();
        let (status, b) = call(&d, get("/builds/api-nothing")).await;
        assert_eq!((status, error_of(&b).0), (404, "NotFound"));
        for bad in [
            "/builds/a.b",
            "/builds/%2e%2e",
            &format!("/builds/{}", "a".repeat(81)),
        ] {
            let (status, b) = call(&d, get(bad)).await;
            assert_eq!(
                (status, error_of(&b)),
                (400, ("InvalidRequest", Some("buildId"))),
                "{bad}"
            );
        }
    }

    // ---- GET /agents/{project}/{agent}

    #[tokio::test]
    async fn an_agent_answers_its_latest_success() {
        let d = with_source();
        let rec = record(BuildStatus::Succeeded);
        d.store
            .seed(&latest_key("nexus-ai", "sales"), rec.to_json());
        let (status, body) = call(&d, get("/agents/nexus-ai/sales")).await;
        assert_eq!((status, &body["buildId"]), (200, &json!("b-1")));
        let (status, b) = call(&d, get("/agents/nexus-ai/other")).await;
        assert_eq!((status, error_of(&b).0), (404, "NotFound"));
    }

    #[tokio::test]
    async fn an_agent_with_a_bad_name_is_400() {
        let d = with_source();
        let (status, b) = call(&d, get("/agents/Nexus/sales")).await;
        assert_eq!(
            (status, error_of(&b)),
            (400, ("InvalidRequest", Some("project")))
        );
        let (status, b) = call(&d, get("/agents/nexus/sa_les")).await;
        assert_eq!(
            (status, error_of(&b)),
            (400, ("InvalidRequest", Some("agent")))
        );
    }

    // ---- routing

    #[tokio::test]
    async fn routes_by_route_key_behind_api_gateway_and_by_path_elsewhere() {
        let d = with_source();
        // API Gateway with a named stage: the raw path carries the stage, the route key not.
        let mut e = get("/prod/agents/nexus-ai/sales");
        e.route_key = Some("GET /agents/{project}/{agent}".into());
        e.path_parameters = [("project", "nexus-ai"), ("agent", "sales")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (status, _) = call(&d, e).await;
        assert_eq!(status, 404, "routed to GET /agents");
        // `$default` with a prefix before the route.
        assert_eq!(call(&d, post_to("/prod/builds")).await.0, 202);
        assert_eq!(call(&d, post_to("/builds/")).await.0, 202);
    }

    fn post_to(path: &str) -> ApiRequest {
        let mut e = post(&build_request());
        e.raw_path = Some(path.into());
        e
    }

    #[tokio::test]
    async fn unknown_routes_are_404_and_wrong_methods_405() {
        let d = with_source();
        let (status, b) = call(&d, get("/")).await;
        assert_eq!((status, error_of(&b).0), (404, "NotFound"));
        let r = handle(&d, get("/builds")).await.unwrap();
        assert_eq!(
            (r.status_code, &r.headers[header::ALLOW]),
            (405, &HeaderValue::from_static("POST"))
        );
        let (status, _) = call(&d, http("DELETE", "/builds/b-1", None, None)).await;
        assert_eq!(status, 405);
    }

    // ---- the samples in events/api

    fn sample(name: &str) -> ApiRequest {
        let text = match name {
            "post-build-valid" => include_str!("../../../../events/api/post-build-valid.json"),
            "post-build-invalid" => include_str!("../../../../events/api/post-build-invalid.json"),
            "get-build" => include_str!("../../../../events/api/get-build.json"),
            "get-agent" => include_str!("../../../../events/api/get-agent.json"),
            other => panic!("no sample {other}"),
        };
        serde_json::from_str(text).unwrap()
    }

    #[tokio::test]
    async fn the_samples_route_and_answer_as_named() {
        let d = deps(FakeStore::default().with_object(
            OWN,
            "sources/nexus-ai/sales-assistant/4f2a9c0d1e3b5a7c9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d.zip",
            b"zip",
        ));
        // The samples name the local stack's bucket; the fakes call it OWN.
        let local = |name| {
            let mut e = sample(name);
            e.body = e.body.map(|b| b.replace("agentbuild-local", OWN));
            e
        };
        assert_eq!(call(&d, local("post-build-valid")).await.0, 202);
        let (status, b) = call(&d, local("post-build-invalid")).await;
        assert_eq!(
            (status, error_of(&b)),
            (400, ("InvalidRequest", Some("dockerfile")))
        );
        assert_eq!(
            route(&sample("get-build")),
            Route::GetBuild("api-3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a".into())
        );
        assert_eq!(
            route(&sample("get-agent")),
            Route::GetAgent("nexus-ai".into(), "sales-assistant".into())
        );
    }

    /// Every scenario above, against one recorder of the SDK operations the fakes stand for.
    #[test]
    fn calls_exactly_the_sdk_operations_the_catalog_lists() {
        let called = crate::handlers::fakes::operations_of(
            include_str!("api.rs"),
            crate::handlers::fakes::scenarios![
                accepts_a_build_and_starts_one_execution_with_the_api_envelope,
                the_answer_points_at_the_status,
                rejects_malformed_json,
                rejects_a_body_that_is_not_json_by_media_type,
                rejects_an_oversize_body_plain_or_base64,
                reads_a_base64_body,
                rejects_unknown_fields_by_name,
                every_rule_names_its_field,
                a_missing_source_is_refused_at_once,
                an_oversize_source_is_refused_at_once,
                the_same_key_twice_is_one_build_also_after_it_finished,
                a_failed_build_stays_the_answer_for_its_key,
                different_keys_are_different_builds,
                a_key_reused_for_another_request_is_a_conflict,
                identical_keyless_requests_share_a_build_until_it_fails,
                a_busy_step_functions_is_a_503_with_nothing_started,
                other_aws_failures_are_a_500_naming_the_request_only,
                a_finished_build_answers_its_record,
                a_running_build_answers_its_live_status,
                a_build_not_yet_started_answers_from_the_execution,
                a_rejected_execution_reports_the_rule_it_broke,
                a_timed_out_execution_is_reported_before_its_record_is_closed,
                an_unknown_build_is_404_and_a_malformed_id_400,
                an_agent_answers_its_latest_success,
                an_agent_with_a_bad_name_is_400,
                routes_by_route_key_behind_api_gateway_and_by_path_elsewhere,
                unknown_routes_are_404_and_wrong_methods_405,
                the_samples_route_and_answer_as_named,
            ],
        );
        crate::handlers::fakes::assert_operations_are_listed("api", &called);
    }
}
