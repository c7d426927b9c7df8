//! `/projects/{project}/agents/{agent}/deployments` (the agent's deployment history) and
//! `.../rollback` (move the named endpoint back to a good earlier version; `services::rollback`).

use super::answers::{ok_json, Problem};
use super::{caller, Deps};
use crate::domain::deploy_request::RuntimeName;
use crate::domain::request::{is_name, RequestError, NAME_RULE};
use crate::domain::rollout::{EndpointName, DEFAULT_ENDPOINT};
use crate::ports::{Endpoints, Images, ObjectStore};
use crate::services::history;
use crate::services::rollback::{rollback, Rollback};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

fn agent_name(agent: &str) -> Result<(), Problem> {
    if is_name(agent) {
        Ok(())
    } else {
        Err(RequestError::new("agent", NAME_RULE).into())
    }
}

/// `GET`: every deploy and rollback of the agent, oldest first.
pub(super) async fn list<S: ObjectStore, X, B, L, R, I>(
    deps: &Deps<S, X, B, L, R, I>,
    project: &str,
    agent: &str,
) -> Result<Response<Body>, Problem> {
    agent_name(agent)?;
    let entries = history::read(&deps.store, project, agent).await?;
    Ok(ok_json(&serde_json::json!({
        "project": project, "agent": agent, "deployments": entries
    })))
}

/// The body of a rollback (all optional; `{}` rolls `live` back to the previous good version).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RollbackBody {
    #[serde(default)]
    endpoint: Option<EndpointName>,
    /// The runtime whose endpoint moves (default: the runtime of the agent's latest deploy).
    #[serde(default)]
    runtime_name: Option<RuntimeName>,
    /// A runtime version (digits) or a buildId.
    #[serde(default)]
    to: Option<String>,
}

/// `POST`: 200 with the history entry of the move; 409 `NothingToRollBackTo` with why.
pub(super) async fn roll_back<S: ObjectStore, X, B, L, R: Endpoints, I: Images>(
    deps: &Deps<S, X, B, L, R, I>,
    request: &Request,
    project: &str,
    agent: &str,
) -> Result<Response<Body>, Problem> {
    agent_name(agent)?;
    let body: RollbackBody = match request.body().as_ref() {
        [] => RollbackBody::default(),
        bytes => {
            let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
                Problem::new(400, "MalformedJson", format!("the body is not JSON: {e}"))
            })?;
            crate::domain::form::from_value(&value, "")?
        }
    };
    let endpoint = body.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
    let by = caller(request);
    let r = Rollback {
        project,
        agent,
        endpoint,
        runtime_name: body.runtime_name.as_deref(),
        to: body.to.as_deref(),
        by: &by,
        now: (deps.now)(),
    };
    match rollback(&deps.store, &deps.runtimes, &deps.images, r).await? {
        Ok(entry) => {
            tracing::info!(
                project,
                agent,
                endpoint,
                version = entry.version.as_deref().unwrap_or("-"),
                build_id = entry.build_id.as_str(),
                "rolled back"
            );
            Ok(ok_json(&entry))
        }
        Err(why) => {
            let problem = Problem::new(409, "NothingToRollBackTo", why.message);
            Err(match why.field {
                Some(field) => problem.field(field),
                None => problem,
            })
        }
    }
}
