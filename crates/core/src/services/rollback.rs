//! A rollback (`POST /projects/{project}/agents/{agent}/rollback`): the agent's named endpoint
//! moves back to a version agentbuild deployed there and whose smoke test passed — seconds, no
//! build — and the move is written to the agent's deployment history. The only way an endpoint
//! moves to an older build (`domain::history::rollback_target`).

use crate::domain::deployment::DeploymentStatus;
use crate::domain::history::{rollback_key, rollback_target, Entry, EntryKind};
use crate::domain::request::Trigger;
use crate::domain::rollout::EndpointStatus;
use crate::ports::{Endpoints, ObjectStore};
use crate::services::history;
use crate::Error;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// How many times (1 s apart) a rollback looks for its endpoint READY before it answers.
pub const ROLLBACK_LOOKS: u32 = 10;

/// What to roll back: the agent, its endpoint, and optionally where to (`version` or buildId).
pub struct Rollback<'a> {
    pub project: &'a str,
    pub agent: &'a str,
    pub endpoint: &'a str,
    pub to: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// `Ok(Err(why))`: nothing to roll back to (the caller's 409/404).
pub async fn rollback<S: ObjectStore, R: Endpoints>(
    store: &S,
    runtimes: &R,
    r: Rollback<'_>,
) -> Result<Result<Entry, String>, Error> {
    let entries = history::read(store, r.project, r.agent).await?;
    let Some(runtime_id) = entries
        .iter()
        .rev()
        .find(|e| e.kind == EntryKind::Deploy && e.endpoint == r.endpoint)
        .and_then(|e| e.runtime_id.clone())
    else {
        return Ok(Err(format!(
            "{}/{} has no deployment to endpoint {}",
            r.project, r.agent, r.endpoint
        )));
    };
    let Some(current) = runtimes.get_endpoint(&runtime_id, r.endpoint).await? else {
        return Ok(Err(format!("endpoint {} no longer exists", r.endpoint)));
    };
    let serving = current.live_version.clone();
    let target = match rollback_target(&entries, r.endpoint, serving.as_deref(), r.to) {
        Ok(t) => t.clone(),
        Err(why) => return Ok(Err(why)),
    };
    let version = target.version.clone().unwrap_or_default();
    runtimes
        .point_endpoint(&runtime_id, r.endpoint, &version, true, &BTreeMap::new())
        .await?;
    let mut status = DeploymentStatus::Deploying;
    for look in 0..ROLLBACK_LOOKS {
        let now = runtimes.get_endpoint(&runtime_id, r.endpoint).await?;
        if now.as_ref().is_some_and(|e| {
            e.status == EndpointStatus::Ready && e.live_version.as_deref() == Some(&version)
        }) {
            status = DeploymentStatus::Ready;
            break;
        }
        if look + 1 < ROLLBACK_LOOKS {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
    let entry = Entry {
        kind: EntryKind::Rollback,
        at: r.now,
        build_id: target.build_id.clone(),
        trigger: Trigger::Api,
        endpoint: r.endpoint.to_string(),
        runtime_id: Some(runtime_id),
        version: Some(version),
        previous_version: serving,
        status,
        smoke: target.smoke.clone(),
        reason: r.to.map(|t| format!("rollback to {t}")),
    };
    history::put(store, &rollback_key(r.project, r.agent, r.now), &entry).await?;
    Ok(Ok(entry))
}
