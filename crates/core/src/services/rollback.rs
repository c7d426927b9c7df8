//! A rollback (`POST /projects/{project}/agents/{agent}/rollback`): a named endpoint of one
//! runtime moves back to a version agentbuild deployed to that endpoint of that runtime, whose
//! smoke test passed and whose image or code artifact still exists — seconds, no build — and the
//! move is written to the agent's deployment history with its caller, and pins the endpoint
//! (`domain::pin`). The only way an endpoint moves to an older build
//! (`domain::history::rollback_target`).

use crate::domain::deployment::DeploymentStatus;
use crate::domain::history::{rollback_key, rollback_target, Entry, EntryKind, Refusal, Target};
use crate::domain::pin::{name_of_runtime_id, pin_key, Pin};
use crate::domain::request::Trigger;
use crate::domain::rollout::EndpointStatus;
use crate::ports::{Endpoints, Images, ObjectStore};
use crate::services::{history, images, records};
use crate::Error;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// How many times (1 s apart) a rollback looks for its endpoint READY before it answers.
pub const ROLLBACK_LOOKS: u32 = 10;

/// What to roll back: the agent, its endpoint (of the runtime `runtime_name`, default the
/// runtime of the agent's latest deploy), optionally where to (`version` or buildId), and who.
pub struct Rollback<'a> {
    pub project: &'a str,
    pub agent: &'a str,
    pub endpoint: &'a str,
    pub runtime_name: Option<&'a str>,
    pub to: Option<&'a str>,
    /// The caller (recorded in the entry).
    pub by: &'a str,
    pub now: DateTime<Utc>,
}

/// `Ok(Err(why))`: nothing to roll back to (the caller's 409/404).
pub async fn rollback<S: ObjectStore, R: Endpoints, I: Images>(
    store: &S,
    runtimes: &R,
    images: &I,
    r: Rollback<'_>,
) -> Result<Result<Entry, Refusal>, Error> {
    let entries = history::read(store, r.project, r.agent).await?;
    let runtime_id = match runtime_of(store, &r, &entries).await? {
        Ok(id) => id,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let Some(current) = runtimes.get_endpoint(&runtime_id, r.endpoint).await? else {
        let why = format!("endpoint {} no longer exists", r.endpoint);
        return Ok(Err(Refusal {
            field: None,
            message: why,
        }));
    };
    let serving = current.live_version.clone();
    let here = Target {
        runtime_id: &runtime_id,
        endpoint: r.endpoint,
    };
    let target = match rollback_target(&entries, here, serving.as_deref(), r.to) {
        Ok(t) => t.clone(),
        Err(why) => return Ok(Err(why)),
    };
    if let Err(refusal) = still_there(store, images, &target.build_id).await? {
        return Ok(Err(refusal));
    }
    let version = target.version.clone().unwrap_or_default();
    runtimes
        .point_endpoint(&runtime_id, r.endpoint, &version, true, &BTreeMap::new())
        .await?;
    let status = settled(runtimes, &runtime_id, r.endpoint, &version).await?;
    let entry = Entry {
        kind: EntryKind::Rollback,
        at: r.now,
        build_id: target.build_id.clone(),
        trigger: Trigger::Api,
        endpoint: r.endpoint.to_string(),
        runtime_name: target.runtime_name.clone(),
        runtime_id: Some(runtime_id),
        version: Some(version),
        previous_version: serving,
        status,
        smoke: target.smoke.clone(),
        reason: r.to.map(|t| format!("rollback to {t}")),
        by: Some(r.by.to_string()),
    };
    history::put(store, &rollback_key(r.project, r.agent, r.now), &entry).await?;
    pin_endpoint(store, &r, &entry).await?;
    Ok(Ok(entry))
}

/// The endpoint stays where the rollback put it until a deploy submitted after it
/// (`domain::pin`): a scheduled rebuild of the same submission does not undo it.
async fn pin_endpoint<S: ObjectStore>(
    store: &S,
    r: &Rollback<'_>,
    entry: &Entry,
) -> Result<(), Error> {
    let id = entry.runtime_id.as_deref().unwrap_or_default();
    let name = entry
        .runtime_name
        .as_deref()
        .unwrap_or_else(|| name_of_runtime_id(id));
    let pin = Pin {
        at: r.now,
        build_id: entry.build_id.clone(),
        version: entry.version.clone().unwrap_or_default(),
        by: r.by.to_string(),
    };
    let key = pin_key(r.project, r.agent, name, r.endpoint);
    let body = serde_json::to_vec(&pin).map_err(|e| Error::InvalidState(format!("{key}: {e}")))?;
    store.put_json(&key, body).await
}

/// READY once the endpoint serves `version` (looked at up to [`ROLLBACK_LOOKS`] times, 1 s
/// apart), else still DEPLOYING.
async fn settled<R: Endpoints>(
    runtimes: &R,
    runtime_id: &str,
    endpoint: &str,
    version: &str,
) -> Result<DeploymentStatus, Error> {
    for look in 0..ROLLBACK_LOOKS {
        let now = runtimes.get_endpoint(runtime_id, endpoint).await?;
        if now.as_ref().is_some_and(|e| {
            e.status == EndpointStatus::Ready && e.live_version.as_deref() == Some(version)
        }) {
            return Ok(DeploymentStatus::Ready);
        }
        if look + 1 < ROLLBACK_LOOKS {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
    Ok(DeploymentStatus::Deploying)
}

/// The runtime whose endpoint moves: the one named, else the runtime of the agent's latest
/// deploy, else (no latest deploy names one) the newest deployed to that endpoint.
async fn runtime_of<S: ObjectStore>(
    store: &S,
    r: &Rollback<'_>,
    entries: &[Entry],
) -> Result<Result<String, Refusal>, Error> {
    let latest = match r.runtime_name {
        Some(_) => None,
        None => records::latest(store, r.project, r.agent)
            .await?
            .and_then(|s| s.record.deployment.map(|d| d.runtime_name)),
    };
    let name = r.runtime_name.map(String::from).or(latest);
    let deployed_here = |e: &&Entry| e.kind == EntryKind::Deploy && e.endpoint == r.endpoint;
    let newest = |named: Option<&str>| {
        entries
            .iter()
            .rev()
            .filter(deployed_here)
            .find(|e| named.is_none_or(|n| e.named(n)))
            .and_then(|e| e.runtime_id.clone())
    };
    let found = newest(name.as_deref())
        .or_else(|| r.runtime_name.is_none().then(|| newest(None)).flatten());
    Ok(found.ok_or_else(|| {
        let of = name.map(|n| format!(" of runtime {n}")).unwrap_or_default();
        Refusal {
            field: r.runtime_name.map(|_| "runtimeName"),
            message: format!(
                "{}/{} has no deployment to endpoint {}{of}",
                r.project, r.agent, r.endpoint
            ),
        }
    }))
}

/// A version runs what its build made: gone (expired, deleted), AgentCore could not start the
/// version again, so the rollback is refused naming `to`, before anything moves.
async fn still_there<S: ObjectStore, I: Images>(
    store: &S,
    images: &I,
    build_id: &str,
) -> Result<Result<(), Refusal>, Error> {
    let gone = |what: String| {
        Refusal {
        field: Some("to"),
        message: format!(
            "{what} of build {build_id} no longer exists: its version cannot run again; deploy it anew"
        ),
    }
    };
    let Some(stored) = records::build(store, build_id).await? else {
        return Ok(Err(gone("the record".into())));
    };
    Ok(
        match images::artifact_gone(store, images, &stored.record).await? {
            Some(what) => Err(gone(what)),
            None => Ok(()),
        },
    )
}
