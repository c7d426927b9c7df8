//! `/projects/{project}/agents/{agent}`: an agent's latest successful build. (Runtimes of an
//! agent live under the same resource.)

use super::answers::{ok_record, Problem};
use super::Deps;
use crate::domain::request::{is_name, RequestError, NAME_RULE};
use crate::ports::ObjectStore;
use crate::services::records;
use lambda_http::{Body, Response};

pub(super) async fn latest<S: ObjectStore, X, B, L, R, I>(
    deps: &Deps<S, X, B, L, R, I>,
    project: &str,
    agent: &str,
) -> Result<Response<Body>, Problem> {
    if !is_name(agent) {
        return Err(RequestError::new("agent", NAME_RULE).into());
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
