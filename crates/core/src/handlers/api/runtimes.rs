//! An agent's runtimes (`services::runtime_names`): `GET /projects/{project}/agents/{agent}/runtimes`
//! lists every runtime name bound to the agent with its status (ACTIVE, SUPERSEDED, RESERVED,
//! RETIRED) and the build that last deployed it; `DELETE …/runtimes/{runtimeName}` retires one
//! (200 with the RETIRED entry, the same when asked again; `?force=true` for the agent's
//! current runtime, else 409 `RuntimeInUse`; 404 for a name that is not this agent's; 409
//! `NotOurRuntime` when the runtime of that name is not tagged for this agent of this stack).

use super::answers::{ok_json, Problem};
use super::{caller, Deps};
use crate::domain::deploy_request::is_runtime_name;
use crate::domain::deployment::Owner;
use crate::domain::request::{is_name, RequestError, NAME_RULE};
use crate::domain::runtime_names::{RetireRefusal, FIELD};
use crate::ports::{ObjectStore, Runtimes};
use crate::services::runtime_names::{self, Retirement};
use lambda_http::{Body, Request, RequestExt, Response};

/// The agent of the route (its project `dispatch` checked already).
fn owner<'a>(stack: &'a str, project: &'a str, agent: &'a str) -> Result<Owner<'a>, Problem> {
    if !is_name(agent) {
        return Err(RequestError::new("agent", NAME_RULE).into());
    }
    Ok(Owner {
        stack,
        project,
        agent,
    })
}

pub(super) async fn list<S: ObjectStore, X, B, L, R, I>(
    deps: &Deps<S, X, B, L, R, I>,
    project: &str,
    agent: &str,
) -> Result<Response<Body>, Problem> {
    let owner = owner(&deps.config.validate.stack, project, agent)?;
    Ok(ok_json(&runtime_names::list(&deps.store, &owner).await?))
}

pub(super) async fn retire<S: ObjectStore, X, B, L, R: Runtimes, I>(
    deps: &Deps<S, X, B, L, R, I>,
    request: &Request,
    project: &str,
    agent: &str,
    name: &str,
) -> Result<Response<Body>, Problem> {
    let owner = owner(&deps.config.validate.stack, project, agent)?;
    if !is_runtime_name(name) {
        return Err(RequestError::new("runtimeName", "is no AgentCore runtime name").into());
    }
    let force = request
        .query_string_parameters_ref()
        .and_then(|q| q.first("force"))
        .is_some_and(|v| v == "true");
    let by = caller(request);
    let now = (deps.now)();
    match runtime_names::retire(&deps.store, &deps.runtimes, &owner, name, force, &by, now).await? {
        Retirement::Retired(entry) => Ok(ok_json(&*entry)),
        Retirement::Refused(RetireRefusal::NotFound) => Err(Problem::new(
            404,
            "NotFound",
            format!("{project}/{agent} has no runtime named {name}"),
        )),
        Retirement::Refused(RetireRefusal::Current) => Err(Problem::new(
            409,
            "RuntimeInUse",
            format!(
                "{name} is the runtime of {project}/{agent}'s latest deployment; retire it \
                 with ?force=true (its callers lose it), or deploy under another name first"
            ),
        )
        .field(FIELD)),
        Retirement::NotOurs(why) => Err(Problem::new(409, "NotOurRuntime", why).field(FIELD)),
    }
}
