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
use crate::domain::deploy_request::parse_deploy;
use crate::domain::execution::{PromoteOf, SourcePin};
use crate::domain::prebuilt;
use crate::domain::promote::{other_target, recorded_request};
use crate::domain::request::{RequestError, ValidRequest};
use crate::ports::{Executions, Images, ObjectStore};
use crate::services::images::artifact_gone;
use crate::services::{self, records, runtime_names, submit};
use lambda_http::{Body, Request, Response};

pub(super) async fn promote<S: ObjectStore, X: Executions, B, L, R, I: Images>(
    deps: &Deps<S, X, B, L, R, I>,
    request: &Request,
    project: &str,
    id: &str,
) -> Result<Response<Body>, Problem> {
    owned(deps, project, id).await?;
    let body = read_body(request, deps.config.max_body_bytes)?;
    let unknown = body
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "deploy").cloned());
    if let Some(field) = unknown {
        return Err(
            RequestError::new(field, "is not allowed (a promote takes only deploy)").into(),
        );
    }
    let Some(deploy) = body.get("deploy") else {
        return Err(RequestError::new("deploy", "is required (where to deploy the build)").into());
    };
    let deploy = parse_deploy(deploy)?;
    let record = records::build(&deps.store, id)
        .await?
        .ok_or_else(|| Problem::new(404, "NotFound", format!("build {id} has no record")))?
        .record;
    let (req, pin) =
        recorded_request(&record, deploy).map_err(|why| Problem::new(409, "NotPromotable", why))?;
    if let Some(what) = artifact_gone(&deps.store, &deps.images, &record).await? {
        let why = format!("build {id} cannot be promoted: {what} no longer exists");
        return Err(Problem::new(409, "NotPromotable", why));
    }
    let of = PromoteOf {
        build_id: id.to_string(),
    };
    submit_promote(deps, project, req, pin, of).await
}

/// `POST /projects/{project}/builds` with `prebuilt` instead of `source` (`domain::prebuilt`):
/// the promote of the build that made the named artifact, as ValidateRequest resolves it for a
/// console input.
pub(super) async fn prebuilt<S: ObjectStore, X: Executions, B, L, R, I: Images>(
    deps: &Deps<S, X, B, L, R, I>,
    body: &serde_json::Value,
    project: &str,
) -> Result<Response<Body>, Problem> {
    let asked = prebuilt::parse(body)?;
    if asked.project != project {
        return Err(RequestError::new(
            "project",
            format!("must be the project of the path (/projects/{project}/builds)"),
        )
        .into());
    }
    let repository = &deps.config.validate.repository_uri;
    let resolved = services::prebuilt::promote_of(&deps.store, &asked, repository).await?;
    // Checked now, so that a gone artifact is a 400 naming the field rather than a failed
    // execution (StartBuild and PrepareCode check again: it may still go before they look).
    if let Some(what) = artifact_gone(&deps.store, &deps.images, &resolved.record).await? {
        let made_by = &resolved.record.build_id;
        let why = format!("{what} that build {made_by} made no longer exists");
        return Err(RequestError::new(asked.prebuilt.field(), why).into());
    }
    let of = resolved.promote_of();
    submit_promote(deps, project, resolved.valid, resolved.pin, of).await
}

/// A promote of `req` (the promoted build's recorded request with its new `deploy`), validated
/// as `POST .../builds` validates (the stack's policy, another target than latest's, the
/// runtime name's owner) and submitted through the same door.
async fn submit_promote<S: ObjectStore, X: Executions, B, L, R, I>(
    deps: &Deps<S, X, B, L, R, I>,
    project: &str,
    req: ValidRequest,
    pin: SourcePin,
    of: PromoteOf,
) -> Result<Response<Body>, Problem> {
    deps.config.validate.sources.admit(&req)?;
    if let Some(target) = req.deploy.clone() {
        let target = target.resolve(&deps.config.validate.stack, &req.project, &req.agent);
        let latest = records::latest(&deps.store, &req.project, &req.agent).await?;
        other_target(&target, latest.as_ref().map(|s| &s.record))?;
    }
    let stack = &deps.config.validate.stack;
    runtime_names::claim_request(&deps.store, &req, stack, (deps.now)()).await?;
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
            tracing::info!(build_id = %started.build_id, promoted = %of.build_id, "promote accepted");
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
