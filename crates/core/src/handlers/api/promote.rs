//! `POST /projects/{project}/builds/{buildId}/promote` `{"deploy": {...}}`: deploy what a
//! successful build made to another endpoint or runtime — another environment — without
//! building. The build's recorded request with the body's `deploy` (not forced) is submitted
//! through the very door `POST .../builds` is (the same validation, the same record and
//! execution), pinned to the recorded source version and naming the promoted build: StartBuild
//! (PrepareCode for code) answers REUSED with that build's own image digest or artifact version,
//! whether or not it is the agent's latest, and never starts CodeBuild; then the deploy (smoke
//! test, endpoint) as for any build. The target the agent's latest deploy serves is refused
//! (400 naming `deploy.endpoint`: that is a rollback's), and a promote never moves `latest.json`
//! (`domain::promote`).

use super::answers::{accepted, Problem};
use super::builds::{owned, read_body};
use super::Deps;
use crate::contract::Accepted;
use crate::domain::execution::{PromoteOf, SourcePin};
use crate::domain::promote::other_target;
use crate::domain::record::BuildRecord;
use crate::domain::request::{validate, RequestError, ValidRequest};
use crate::ports::{Executions, ObjectStore};
use crate::services::{records, submit};
use lambda_http::{Body, Request, Response};

pub(super) async fn promote<S: ObjectStore, X: Executions, B, L, R, I>(
    deps: &Deps<S, X, B, L, R, I>,
    request: &Request,
    project: &str,
    id: &str,
) -> Result<Response<Body>, Problem> {
    owned(deps, project, id).await?;
    let (req, pin) = promoted(deps, request, id).await?;
    let of = PromoteOf {
        build_id: id.to_string(),
    };
    let accepting = deps.accepting();
    match submit::submit_recorded(
        &deps.executions,
        &deps.store,
        accepting,
        &req,
        &pin,
        Some(&of),
    )
    .await?
    {
        Ok(started) => {
            tracing::info!(build_id = %started.build_id, promoted = id, "promote accepted");
            Ok(accepted(&Accepted::new(
                project,
                &started.build_id,
                &started.execution_arn,
                started.existing,
            )))
        }
        Err(refused) => Err(Problem::new(409, refused.code(), refused.message())),
    }
}

/// The build's recorded request with the body's `deploy`, validated as `POST .../builds` does,
/// and the recorded source version it is pinned to.
async fn promoted<S: ObjectStore, X, B, L, R, I>(
    deps: &Deps<S, X, B, L, R, I>,
    request: &Request,
    id: &str,
) -> Result<(ValidRequest, SourcePin), Problem> {
    let body = read_body(request, deps.config.max_body_bytes)?;
    let unknown = body
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "deploy").cloned());
    if let Some(field) = unknown {
        return Err(
            RequestError::new(field, "is not allowed (a promote takes only deploy)").into(),
        );
    }
    let Some(deploy) = body.get("deploy").cloned() else {
        return Err(RequestError::new("deploy", "is required (where to deploy the build)").into());
    };
    let stored = records::build(&deps.store, id)
        .await?
        .ok_or_else(|| Problem::new(404, "NotFound", format!("build {id} has no record")))?;
    let record: BuildRecord = serde_json::from_slice(&stored.bytes)
        .map_err(|e| crate::Error::InvalidState(format!("builds/{id}.json: {e}")))?;
    let (Some(req), Some(version_id)) = (record.request.as_ref(), record.source.version_id.clone())
    else {
        return Err(not_promotable(
            id,
            "its record keeps no request or source version",
        ));
    };
    if !record.status.is_success() {
        return Err(not_promotable(id, &format!("it ended {}", record.status)));
    }
    let mut value = serde_json::to_value(req)
        .map_err(|e| crate::Error::InvalidState(format!("builds/{id}.json: {e}")))?;
    value["deploy"] = deploy;
    value["force"] = false.into();
    if let Some(o) = value.as_object_mut() {
        o.remove("idempotencyKey");
    }
    let req = validate(&value, &deps.config.validate.sources)?;
    if let Some(target) = req.deploy.clone() {
        let target = target.resolve(&deps.config.validate.stack, &req.project, &req.agent);
        let latest = records::latest(&deps.store, &req.project, &req.agent).await?;
        other_target(&target, latest.as_ref().map(|s| &s.record))?;
    }
    let pin = SourcePin {
        version_id,
        sha256: record.source.sha256.clone(),
    };
    Ok((req, pin))
}

fn not_promotable(id: &str, why: &str) -> Problem {
    Problem::new(
        409,
        "NotPromotable",
        format!("build {id} cannot be promoted: {why}"),
    )
}
