//! Runtime names bound to agents (`domain::runtime_names`) over the ports: claim a name (every
//! door that accepts a deploy), note a deploy under it (DeployRuntime), list an agent's
//! runtimes and retire one (the API and the CLI). Every change of a binding is a conditional
//! write through [`objects::update`]: of two agents claiming one free name, exactly one wins.

use crate::domain::deployment::Owner;
use crate::domain::record::BuildRecord;
use crate::domain::request::ValidRequest;
use crate::domain::runtime_names::{
    adopted, agent_prefix, binding_key, decide_claim, deployed, index_key, indexed_name,
    may_retire, retired, state_of, AgentRuntime, AgentRuntimes, Binding, RetireRefusal,
};
use crate::ports::{ObjectStore, Runtimes, Tagged};
use crate::services::objects::{self, parse_json, read_json, Decision};
use crate::services::records;
use crate::Error;
use chrono::{DateTime, Utc};

const WHAT: &str = "a runtime name binding";

fn stored(key: &str, current: Option<&Tagged>) -> Result<Option<Binding>, Error> {
    current.map(|t| parse_json(key, &t.bytes, WHAT)).transpose()
}

fn body(key: &str, b: &Binding) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(b).map_err(|e| Error::InvalidState(format!("{key}: {e}")))
}

/// Binds runtime name `name` to `owner` unless it is bound already: `Ok(())` when it is the
/// owner's (now or before), `Error::InvalidRequest` naming `deploy.runtimeName` when it is
/// another agent's. The agent's index entry is written after the binding (again on every
/// claim: a claim that died between the two writes is completed by the next).
pub async fn claim<S: ObjectStore>(
    store: &S,
    name: &str,
    owner: &Owner<'_>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let key = binding_key(name);
    let fresh = objects::update(store, &key, |current| {
        let old = stored(&key, current)?;
        match decide_claim(old.as_ref(), name, owner, now)? {
            Some(new) => Ok(Decision::Write(body(&key, &new)?, true)),
            None => Ok(Decision::Keep(false)),
        }
    })
    .await?;
    let index = index_key(owner.project, owner.agent, name);
    if fresh || store.get(&index).await?.is_none() {
        let entry = serde_json::json!({ "runtimeName": name });
        store
            .put_json(&index, entry.to_string().into_bytes())
            .await?;
    }
    if fresh {
        tracing::info!(
            runtime = name,
            project = owner.project,
            agent = owner.agent,
            "runtime name bound"
        );
    }
    Ok(())
}

/// The claim of a request's runtime name (its `deploy` resolved as `stack` runs it), before
/// anything is started: both doors refuse another agent's name up front, the API with a 400,
/// ValidateRequest with the execution's `InvalidRequest`. A request without `deploy` claims
/// nothing.
pub async fn claim_request<S: ObjectStore>(
    store: &S,
    req: &ValidRequest,
    stack: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let Some(deploy) = req.deploy.clone() else {
        return Ok(());
    };
    let spec = deploy.resolve(stack, &req.project, &req.agent);
    let owner = Owner {
        stack,
        project: &req.project,
        agent: &req.agent,
    };
    claim(store, &spec.runtime_name, &owner, now).await
}

/// Notes that build `build_id` created or updated runtime `id` under the owner's name `name`
/// (lifting a retirement: the agent deploys under it again).
pub async fn note_deployed<S: ObjectStore>(
    store: &S,
    name: &str,
    owner: &Owner<'_>,
    runtime: (&str, &str),
    build_id: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let key = binding_key(name);
    let (id, arn) = runtime;
    objects::update(store, &key, |current| {
        let Some(old) = stored(&key, current)?.filter(|b| b.owned_by(owner)) else {
            // The deploy step claims before it touches a runtime: no binding is a bug.
            return Err(Error::InvalidState(format!(
                "{key}: not bound to this agent"
            )));
        };
        match deployed(&old, id, arn, build_id, now) {
            Some(new) => Ok(Decision::Write(body(&key, &new)?, ())),
            None => Ok(Decision::Keep(())),
        }
    })
    .await
}

/// Binds the runtime of the agent's `latest` deployment when it ran under another name than
/// `name_now` (deployed before names were bound): a changed name then lists it SUPERSEDED
/// instead of leaving it unlisted. Another agent's binding of that name is left alone.
pub async fn adopt_previous<S: ObjectStore>(
    store: &S,
    owner: &Owner<'_>,
    latest: Option<&BuildRecord>,
    name_now: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let Some((rec, dep)) = latest.and_then(|r| r.deployment.as_ref().map(|d| (r, d))) else {
        return Ok(());
    };
    let (Some(id), Some(arn)) = (dep.runtime_id.as_deref(), dep.runtime_arn.as_deref()) else {
        return Ok(());
    };
    if dep.runtime_name == name_now {
        return Ok(());
    }
    match claim(store, &dep.runtime_name, owner, now).await {
        Err(Error::InvalidRequest(_)) => return Ok(()),
        other => other?,
    }
    let key = binding_key(&dep.runtime_name);
    let at = dep.finished_at.unwrap_or(dep.started_at);
    objects::update(store, &key, |current| {
        let new = stored(&key, current)?
            .filter(|b| b.owned_by(owner))
            .and_then(|b| adopted(&b, id, arn, &rec.build_id, at));
        match new {
            Some(new) => Ok(Decision::Write(body(&key, &new)?, ())),
            None => Ok(Decision::Keep(())),
        }
    })
    .await
}

/// The runtime name of the agent's latest deployment, if any.
async fn current<S: ObjectStore>(
    store: &S,
    project: &str,
    agent: &str,
) -> Result<Option<String>, Error> {
    Ok(records::latest(store, project, agent)
        .await?
        .and_then(|l| l.record.deployment)
        .map(|d| d.runtime_name))
}

/// Every name bound to the agent, with what its runtime is now, by name.
pub async fn list<S: ObjectStore>(store: &S, owner: &Owner<'_>) -> Result<AgentRuntimes, Error> {
    let prefix = agent_prefix(owner.project, owner.agent);
    let now_current = current(store, owner.project, owner.agent).await?;
    let mut runtimes = Vec::new();
    for key in store.list_keys(&prefix).await? {
        let Some(name) = indexed_name(&key, &prefix) else {
            continue;
        };
        let binding: Option<Binding> = read_json(store, &binding_key(name), WHAT).await?;
        if let Some(b) = binding.filter(|b| b.owned_by(owner)) {
            let status = state_of(&b, now_current.as_deref());
            runtimes.push(AgentRuntime { status, binding: b });
        }
    }
    Ok(AgentRuntimes {
        project: owner.project.to_string(),
        agent: owner.agent.to_string(),
        runtimes,
    })
}

/// What a retire answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retirement {
    /// Retired now, or before (the same stored binding either way).
    Retired(Box<AgentRuntime>),
    Refused(RetireRefusal),
    /// A runtime of that name exists but is not tagged for this agent of this stack: untouched.
    NotOurs(String),
}

/// Retires the owner's runtime `name`: deletes the runtime when its tags say it is this
/// stack's and this agent's, then records the binding RETIRED (by `by`, now). Retiring again
/// answers the stored retirement; the name stays the agent's.
pub async fn retire<S: ObjectStore, R: Runtimes>(
    store: &S,
    runtimes: &R,
    owner: &Owner<'_>,
    name: &str,
    force: bool,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Retirement, Error> {
    let key = binding_key(name);
    let cur = current(store, owner.project, owner.agent).await?;
    let binding: Option<Binding> = read_json(store, &key, WHAT).await?;
    match may_retire(binding.as_ref(), owner, cur.as_deref(), force) {
        Err(why) => return Ok(Retirement::Refused(why)),
        Ok(true) => {
            return Ok(Retirement::Retired(Box::new(entry(
                binding,
                cur.as_deref(),
            )?)))
        }
        Ok(false) => {}
    }
    let deleted = match runtimes.find_by_name(name).await? {
        None => None,
        Some(found) if owner.owns(&found.tags) => {
            runtimes.delete(&found.id).await?;
            tracing::info!(runtime = name, runtime_id = %found.id, project = owner.project, agent = owner.agent, by, "runtime retired");
            Some(found.arn)
        }
        Some(found) => {
            return Ok(Retirement::NotOurs(format!(
                "runtime {name} ({}) is not tagged for {}/{} of stack {}: agentbuild never \
                 touches it",
                found.id, owner.project, owner.agent, owner.stack
            )))
        }
    };
    let written = objects::update(store, &key, |current| {
        let Some(old) = stored(&key, current)?.filter(|b| b.owned_by(owner)) else {
            return Err(Error::InvalidState(format!(
                "{key}: no longer bound to this agent"
            )));
        };
        if old.retired.is_some() {
            return Ok(Decision::Keep(old)); // a concurrent retire came first
        }
        let new = retired(&old, deleted.clone(), cur.as_deref(), by, now);
        Ok(Decision::Write(body(&key, &new)?, new))
    })
    .await?;
    Ok(Retirement::Retired(Box::new(entry(
        Some(written),
        cur.as_deref(),
    )?)))
}

fn entry(binding: Option<Binding>, current: Option<&str>) -> Result<AgentRuntime, Error> {
    let b = binding.ok_or_else(|| Error::InvalidState("a retired binding vanished".into()))?;
    Ok(AgentRuntime {
        status: state_of(&b, current),
        binding: b,
    })
}

#[cfg(test)]
mod tests;
