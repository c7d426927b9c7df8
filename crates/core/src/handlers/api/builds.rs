//! `/projects/{project}/builds...`: submit, status, cancel, logs. A build id that is unknown or
//! belongs to another project answers the same 404 (`services::owner`): the route's project
//! scopes the caller, and an id alone never reveals or cancels another project's build.

use super::answers::{accepted, accepted_json, accepted_record, ok_json, ok_record, Problem};
use super::Deps;
use crate::contract::{Accepted, BuildLogs};
use crate::domain::execution::SourcePin;
use crate::domain::json::{parse_request, JsonError};
use crate::domain::plan::is_build_id;
use crate::domain::request::{clip, validate, RequestError, ValidRequest};
use crate::ports::{BuildLogs as LogsPort, BuildService, Executions, ObjectStore};
use crate::services::cancel::{self, cancel};
use crate::services::live_status::{status, Status};
use crate::services::{owner, records, runtime_names, submit};
use lambda_http::http::header;
use lambda_http::{Body, Request, RequestExt, Response};

/// Lines per page of `GET .../logs`: well under the API's 6 MB / 30 s answer limits.
pub(super) const LOG_PAGE_LINES: u32 = 200;

/// `POST /projects/{project}/builds` with a source: the body's `project` must be the path's.
pub(super) async fn submit<S: ObjectStore, X: Executions, B, L, R, I>(
    deps: &Deps<S, X, B, L, R, I>,
    value: &serde_json::Value,
    project: &str,
) -> Result<Response<Body>, Problem> {
    let req = validate(value, &deps.config.validate.sources)?;
    if req.project != project {
        return Err(RequestError::new(
            "project",
            format!(
                "must be the project of the path (/projects/{project}/builds), got {}",
                clip(&req.project)
            ),
        )
        .into());
    }
    let pin = pin_source(deps, &req).await?;
    // A runtime name belongs to one agent: another agent's is a 400 now, not a failed build.
    let stack = &deps.config.validate.stack;
    runtime_names::claim_request(&deps.store, &req, stack, (deps.now)()).await?;
    let accepting = deps.accepting();
    match submit::submit_recorded(&deps.executions, &deps.store, accepting, &req, &pin, None)
        .await?
    {
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
                project,
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
async fn pin_source<S: ObjectStore, X, B, L, R, I>(
    deps: &Deps<S, X, B, L, R, I>,
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

/// The body as JSON (the same rules for every POST that takes a request).
pub(super) fn read_body(request: &Request, max: usize) -> Result<serde_json::Value, Problem> {
    let body = json_body(request, max)?;
    parse_request(body).map_err(|e| match e {
        JsonError::TooLarge(_) => Problem::new(413, "PayloadTooLarge", e.to_string()),
        JsonError::Duplicate(d) => d.into(),
        JsonError::Malformed(m) => {
            Problem::new(400, "MalformedJson", format!("the body is not JSON: {m}"))
        }
    })
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

/// What an unknown id answers — and, word for word, an id of another project's build.
fn not_found(id: &str) -> Problem {
    Problem::new(404, "NotFound", format!("no build {id}"))
}

/// A well-formed id of a build of `project`, else the 400 or the 404 (the same 404 whether the
/// build does not exist or is another project's).
pub(super) async fn owned<S: ObjectStore, X: Executions, B, L, R, I>(
    deps: &Deps<S, X, B, L, R, I>,
    project: &str,
    id: &str,
) -> Result<(), Problem> {
    if !is_build_id(id) {
        return Err(RequestError::new(
            "buildId",
            "must be 1 to 80 of letters, digits, '-' and '_'",
        )
        .into());
    }
    if !owner::belongs_to(&deps.store, &deps.executions, id, project).await? {
        return Err(not_found(id));
    }
    Ok(())
}

/// `GET /projects/{project}/builds/{buildId}`: the record once it is final, else the live
/// status (see `services::live_status`).
pub(super) async fn get<S: ObjectStore, X: Executions, B, L, R, I>(
    deps: &Deps<S, X, B, L, R, I>,
    project: &str,
    id: &str,
) -> Result<Response<Body>, Problem> {
    owned(deps, project, id).await?;
    match status(&deps.store, &deps.executions, id, (deps.now)()).await? {
        Some(Status::Record(stored)) => ok_record(stored.bytes),
        Some(Status::Live(live)) => Ok(ok_json(&live)),
        None => Err(not_found(id)),
    }
}

/// `DELETE /projects/{project}/builds/{buildId}` (see `services::cancel`): 202 with what GET
/// answers afterwards (the STOPPED record), also when asked again; 409 `AlreadyFinished` with
/// the status of a build that ended on its own.
pub(super) async fn cancel_build<S: ObjectStore, X: Executions, B: BuildService, L, R, I>(
    deps: &Deps<S, X, B, L, R, I>,
    project: &str,
    id: &str,
) -> Result<Response<Body>, Problem> {
    owned(deps, project, id).await?;
    let cause = "cancelled through the API (DELETE /projects/{project}/builds/{buildId})";
    let now = (deps.now)();
    let outcome = cancel(&deps.store, &deps.executions, &deps.builds, id, cause, now).await?;
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
        cancel::Outcome::Unknown => Err(not_found(id)),
    }
}

/// `GET /projects/{project}/builds/{buildId}/logs[?nextToken=…]`: one page of the build's
/// CodeBuild log stream, read with the API's role (the caller needs no CloudWatch access).
pub(super) async fn logs<S: ObjectStore, X: Executions, B, L: LogsPort, R, I>(
    deps: &Deps<S, X, B, L, R, I>,
    request: &Request,
    project: &str,
    id: &str,
) -> Result<Response<Body>, Problem> {
    owned(deps, project, id).await?;
    let params = request.query_string_parameters();
    let token = params.first("nextToken");
    let location = records::build(&deps.store, id)
        .await?
        .and_then(|s| s.record.codebuild.logs);
    let page = match &location {
        Some(at) => deps.logs.page(at, token, LOG_PAGE_LINES).await?,
        None => None,
    };
    let page = page.unwrap_or_default();
    Ok(ok_json(&BuildLogs {
        build_id: id.to_string(),
        logs: location,
        events: page.events,
        next_token: page.next_token,
    }))
}
