//! The API: an HTTP request (`lambda_http`, from an HTTP API payload 2.0 event — also the
//! function-URL format `cargo lambda watch` serves locally) -> `POST /builds`,
//! `GET /builds/{buildId}`, `DELETE /builds/{buildId}` (cancel), `GET /agents/{project}/{agent}`
//! -> a JSON response (the types of `contract.rs`); every refusal is
//! `{"error": {"code", "field"?, "message", "status"?}}`.
//!
//! Status codes: 202 build accepted, or cancelled (with the STOPPED record); 200 record or live
//! status; 400 bad input (`InvalidRequest`, `MalformedJson`, `SourceNotFound`); 404 `NotFound`;
//! 405 `MethodNotAllowed`; 409 `IdempotencyKeyReused` / `TooManyAttempts` / `AlreadyFinished`
//! (cancel of a build that ended on its own; `status` says how); 413 `PayloadTooLarge`; 415
//! `UnsupportedMediaType`; 503 `ServiceUnavailable` (AWS throttled or busy; retry); 500
//! `InternalError`.

mod answers;
mod runtimes;

use super::{aws_config, s3_client, Clock};
use crate::adapters::agentcore::AgentCore;
use crate::adapters::codebuild::CodeBuild;
use crate::adapters::s3::S3Store;
use crate::adapters::sfn::StepFunctions;
use crate::config::{ApiConfig, ProcessEnv};
use crate::contract::Accepted;
use crate::domain::execution::SourcePin;
use crate::domain::json::{parse_request, JsonError};
use crate::domain::plan::is_build_id;
use crate::domain::request::{clip, is_name, validate, RequestError, ValidRequest, NAME_RULE};
use crate::ports::{BuildService, Executions, ObjectStore, Runtimes};
use crate::services::cancel::{self, cancel};
use crate::services::live_status::{status, Status};
use crate::services::{records, runtime_names, submit};
use crate::Error;
use answers::{accepted, accepted_json, accepted_record, ok_json, ok_record, Problem};
use chrono::Utc;
use lambda_http::http::{header, Method};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

pub struct Deps<S, X, B, R> {
    pub store: S,
    pub executions: X,
    /// Cancel stops CodeBuild builds by id: no project name needed.
    pub builds: B,
    /// Retire deletes AgentCore runtimes (`runtimes.rs`).
    pub runtimes: R,
    pub config: ApiConfig,
    pub now: Clock,
}

impl Deps<S3Store, StepFunctions, CodeBuild, AgentCore> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = ApiConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            store: S3Store::new(s3_client(&sdk), config.bucket()),
            executions: StepFunctions::new(
                aws_sdk_sfn::Client::new(&sdk),
                config.state_machine_arn.clone(),
            ),
            builds: CodeBuild::new(aws_sdk_codebuild::Client::new(&sdk)),
            runtimes: AgentCore::new(aws_sdk_bedrockagentcorecontrol::Client::new(&sdk)),
            config,
            now: Utc::now,
        })
    }
}

/// Never `Err`: every outcome, AWS failures included, is an HTTP answer.
pub async fn handle<S: ObjectStore, X: Executions, B: BuildService, R: Runtimes>(
    deps: &Deps<S, X, B, R>,
    request: Request,
) -> Result<Response<Body>, Error> {
    let route = route(&request);
    let result = match &route {
        Route::PostBuilds => post_build(deps, &request).await,
        Route::GetBuild(id) => get_build(deps, id).await,
        Route::CancelBuild(id) => cancel_build(deps, id).await,
        Route::GetAgent(project, agent) => get_agent(deps, project, agent).await,
        Route::ListRuntimes(p, a) => runtimes::list(deps, p, a).await,
        Route::RetireRuntime(p, a, name) => runtimes::retire(deps, &request, p, a, name).await,
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
             DELETE /builds/{buildId}, GET /agents/{project}/{agent}, \
             GET /projects/{project}/agents/{agent}/runtimes, \
             DELETE /projects/{project}/agents/{agent}/runtimes/{runtimeName}",
        )),
    };
    let response = match result {
        Ok(reply) => reply,
        Err(problem) => problem.into_response(gateway(&request).and_then(|c| c.request_id)),
    };
    tracing::info!(
        method = %request.method(),
        route = route.name(),
        status = response.status().as_u16(),
        "answered"
    );
    Ok(response)
}

// ---------------------------------------------------------------------------------- routing

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    PostBuilds,
    GetBuild(String),
    CancelBuild(String),
    GetAgent(String, String),
    ListRuntimes(String, String),
    RetireRuntime(String, String, String),
    WrongMethod(&'static str),
    Unknown,
}

impl Route {
    fn name(&self) -> &'static str {
        match self {
            Route::PostBuilds => "POST /builds",
            Route::GetBuild(_) => "GET /builds/{buildId}",
            Route::CancelBuild(_) => "DELETE /builds/{buildId}",
            Route::GetAgent(..) => "GET /agents/{project}/{agent}",
            Route::ListRuntimes(..) => runtimes::LIST,
            Route::RetireRuntime(..) => runtimes::RETIRE,
            Route::WrongMethod(_) => "wrong method",
            Route::Unknown => "unknown",
        }
    }
}

enum Target {
    Builds,
    Build(String),
    Agent(String, String),
    Runtimes(String, String),
    Runtime(String, String, String),
}

fn route(request: &Request) -> Route {
    let method = request.method();
    match target(request) {
        Some(Target::Builds) if method == Method::POST => Route::PostBuilds,
        Some(Target::Builds) => Route::WrongMethod("POST"),
        Some(Target::Build(id)) if method == Method::GET => Route::GetBuild(id),
        Some(Target::Build(id)) if method == Method::DELETE => Route::CancelBuild(id),
        Some(Target::Build(_)) => Route::WrongMethod("GET, DELETE"),
        Some(Target::Agent(p, a)) if method == Method::GET => Route::GetAgent(p, a),
        Some(Target::Agent(..)) => Route::WrongMethod("GET"),
        Some(Target::Runtimes(p, a)) if method == Method::GET => Route::ListRuntimes(p, a),
        Some(Target::Runtimes(..)) => Route::WrongMethod("GET"),
        Some(Target::Runtime(p, a, n)) if method == Method::DELETE => Route::RetireRuntime(p, a, n),
        Some(Target::Runtime(..)) => Route::WrongMethod("DELETE"),
        None => Route::Unknown,
    }
}

/// What API Gateway says about the request: the matched route, the request id.
struct Gateway<'a> {
    route_key: Option<&'a str>,
    request_id: Option<&'a str>,
}

fn gateway(request: &Request) -> Option<Gateway<'_>> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(c) => Some(Gateway {
            route_key: c.route_key.as_deref(),
            request_id: c.request_id.as_deref(),
        }),
        // Only HTTP API events are enabled; the enum is open to the other origins.
        _ => None,
    }
}

/// API Gateway names the matched route in its route key ("GET /builds/{buildId}" and so on)
/// and its values in the path parameters. Function URLs and `cargo lambda watch` (which strips
/// its `/lambda-url/<function>` prefix) send `$default`: then the raw path decides (raw, so
/// that `%2e%2e` stays a malformed id), matched from its end so that a stage or any other
/// prefix in front does not matter.
fn target(request: &Request) -> Option<Target> {
    let param = |name| {
        request
            .path_parameters_ref()
            .and_then(|p| p.first(name))
            .map(String::from)
    };
    let route_path = gateway(request)
        .and_then(|g| g.route_key)
        .and_then(|k| k.split_once(' '))
        .map(|(_, path)| path);
    match route_path {
        Some("/builds") => return Some(Target::Builds),
        Some("/builds/{buildId}") => {
            if let Some(id) = param("buildId") {
                return Some(Target::Build(id));
            }
        }
        Some("/agents/{project}/{agent}") => {
            if let (Some(p), Some(a)) = (param("project"), param("agent")) {
                return Some(Target::Agent(p, a));
            }
        }
        Some(path) => {
            if let Some(t) = runtimes::target(path, param) {
                return Some(t);
            }
        }
        _ => {}
    }
    let path = match request.raw_http_path() {
        "" => request.uri().path(),
        raw => raw,
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(t) = runtimes::target_of_path(&segments) {
        return Some(t);
    }
    match segments.as_slice() {
        [.., "agents", project, agent] => {
            Some(Target::Agent(project.to_string(), agent.to_string()))
        }
        [.., "builds", id] => Some(Target::Build(id.to_string())),
        [.., "builds"] => Some(Target::Builds),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------- POST /builds

async fn post_build<S: ObjectStore, X: Executions, B, R>(
    deps: &Deps<S, X, B, R>,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let body = json_body(request, deps.config.max_body_bytes)?;
    let value = parse_request(body).map_err(|e| match e {
        JsonError::TooLarge(_) => Problem::new(413, "PayloadTooLarge", e.to_string()),
        JsonError::Duplicate(d) => d.into(),
        JsonError::Malformed(m) => {
            Problem::new(400, "MalformedJson", format!("the body is not JSON: {m}"))
        }
    })?;
    let req = validate(&value, &deps.config.validate.sources)?;
    let pin = pin_source(deps, &req).await?;
    // A runtime name belongs to one agent: another agent's is a 400 now, not a failed build.
    let stack = &deps.config.validate.stack;
    runtime_names::claim_request(&deps.store, &req, stack, (deps.now)()).await?;

    let accepting = submit::Accepting {
        state_machine_arn: &deps.config.state_machine_arn,
        repository_uri: &deps.config.validate.repository_uri,
        stack: &deps.config.validate.stack,
        now: (deps.now)(),
    };
    match submit::submit_recorded(&deps.executions, &deps.store, accepting, &req, &pin).await? {
        Ok(started) => {
            tracing::info!(
                build_id = started.build_id.as_str(),
                execution = started.execution_arn.as_str(),
                project = %req.project,
                agent = %req.agent,
                existing = started.existing,
                "build accepted"
            );
            Ok(accepted(&Accepted::new(
                &started.build_id,
                &started.execution_arn,
                started.existing,
            )))
        }
        Err(refused) => {
            let problem = Problem::new(409, refused.code(), refused.message());
            Err(match refused {
                submit::Refused::IdempotencyKeyReused { .. } => problem.field("idempotencyKey"),
                submit::Refused::TooManyAttempts => problem,
            })
        }
    }
}

/// The content the request is validated against, refused now rather than as a failed
/// execution when ValidateRequest would refuse it: the object's current version and its
/// SHA-256 (S3's full-object checksum, else hashed here). Both name the build (new bytes are a
/// new build) and ValidateRequest builds that very version.
async fn pin_source<S: ObjectStore, X, B, R>(
    deps: &Deps<S, X, B, R>,
    req: &ValidRequest,
) -> Result<SourcePin, Problem> {
    let (bucket, key) = (req.source.bucket(), req.source.key());
    let meta = deps.store.head(bucket, key).await?.ok_or_else(|| {
        let uri = clip(&req.source.to_string());
        Problem::new(400, "SourceNotFound", format!("{uri} does not exist")).field("source")
    })?;
    let version_id = meta.check_source(deps.config.validate.max_source_bytes)?;
    let sha256 = match meta.sha256 {
        Some(sha) => sha,
        None => deps.store.sha256(bucket, key, &version_id).await?,
    };
    Ok(SourcePin { version_id, sha256 })
}

/// The body as JSON bytes, or why not: media type, size (`lambda_http` has decoded a base64
/// body already), emptiness.
fn json_body(request: &Request, max: usize) -> Result<&[u8], Problem> {
    let content_type = request
        .headers()
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
    let bytes: &[u8] = request.body();
    if bytes.len() > max {
        return Err(Problem::new(
            413,
            "PayloadTooLarge",
            format!("the body is {} bytes; at most {max} allowed", bytes.len()),
        ));
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

// ---------------------------------------------------------------------------------- GET routes

/// The record once it is final, else the live status (see `services::live_status`).
async fn get_build<S: ObjectStore, X: Executions, B, R>(
    deps: &Deps<S, X, B, R>,
    id: &str,
) -> Result<Response<Body>, Problem> {
    check_build_id(id)?;
    match status(&deps.store, &deps.executions, id, (deps.now)()).await? {
        Some(Status::Record(stored)) => ok_record(stored.bytes),
        Some(Status::Live(live)) => Ok(ok_json(&live)),
        None => Err(Problem::new(404, "NotFound", format!("no build {id}"))),
    }
}

fn check_build_id(id: &str) -> Result<(), Problem> {
    if !is_build_id(id) {
        return Err(RequestError::new(
            "buildId",
            "must be 1 to 80 of letters, digits, '-' and '_'",
        )
        .into());
    }
    Ok(())
}

/// Cancel (see `services::cancel`): 202 with what GET answers afterwards (the STOPPED record),
/// also when asked again; 409 `AlreadyFinished` with the status of a build that ended on its own.
async fn cancel_build<S: ObjectStore, X: Executions, B: BuildService, R>(
    deps: &Deps<S, X, B, R>,
    id: &str,
) -> Result<Response<Body>, Problem> {
    check_build_id(id)?;
    let cause = "cancelled through the API (DELETE /builds/{buildId})";
    let outcome = cancel(
        &deps.store,
        &deps.executions,
        &deps.builds,
        id,
        cause,
        (deps.now)(),
    )
    .await?;
    match outcome {
        cancel::Outcome::Cancelled(Status::Record(stored)) => {
            tracing::info!(build_id = id, "build cancelled");
            accepted_record(stored.bytes)
        }
        cancel::Outcome::Cancelled(Status::Live(live)) => Ok(accepted_json(&live)),
        cancel::Outcome::Finished(status) => Err(Problem::new(
            409,
            "AlreadyFinished",
            format!("build {id} already finished on its own: {status}; nothing to cancel"),
        )
        .build_status(status)),
        cancel::Outcome::Unknown => Err(Problem::new(404, "NotFound", format!("no build {id}"))),
    }
}

async fn get_agent<S: ObjectStore, X, B, R>(
    deps: &Deps<S, X, B, R>,
    project: &str,
    agent: &str,
) -> Result<Response<Body>, Problem> {
    for (field, value) in [("project", project), ("agent", agent)] {
        if !is_name(value) {
            return Err(RequestError::new(field, NAME_RULE).into());
        }
    }
    match records::latest(&deps.store, project, agent).await? {
        Some(stored) => ok_record(stored.bytes),
        None => Err(Problem::new(
            404,
            "NotFound",
            format!("{project}/{agent} has no successful build"),
        )),
    }
}

#[cfg(test)]
mod tests;
