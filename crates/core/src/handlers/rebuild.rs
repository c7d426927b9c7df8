//! Rebuild: the fleet-rebuild state machine's helper (statemachine/rebuild.asl.json), one
//! step per state — TakeLock, ListAgents, ExistingRebuild, Summarize, ReleaseLock
//! ([`RebuildStep`] in, a small JSON object out).
//!
//! The machine does the fan-out: a Distributed Map over the manifest ListAgents writes starts
//! each agent's forced build as its own execution of the build machine (`.sync:2`, named
//! `sched-<run>-<hash>`), at most `MaxConcurrency` at a time. This function only decides and
//! stores: the lock (`rebuilds/lock.json`, conditional writes), the manifest
//! (`rebuilds/<run>/manifest.json` + `skipped.json`) and the summary (`rebuilds/<run>.json`),
//! whose outcomes come from the build records (every execution past validation ends with
//! one) and, without a final record, from the execution itself.
//!
//! Why a manifest and not an ItemReader over the `agents/` listing: each item needs its latest
//! record read and turned into a build input, a run may select projects or agents, and the
//! summary must say which agents were skipped and why — over a listing, that is one Lambda
//! call per item inside the Map (twice the transitions) and the skips would be nowhere.

use super::aws_config;
use super::s3_client;
use super::Clock;
use crate::adapters::s3::S3Store;
use crate::adapters::sfn::StepFunctions;
use crate::config::{ProcessEnv, RebuildConfig};
use crate::domain::ending::ExecutionStatus;
use crate::domain::fleet::{
    existing_wait_seconds, lock_state, manifest_item, manifest_key, parse_run_input, releasable,
    run_name, skipped_key, summary_key, Cancelled, ExecutionOutcome, Failed, ItemOutcome, Lock,
    LockState, ManifestItem, RunStatus, Selection, Skipped, Summary, LOCK_KEY,
};
use crate::domain::fleet_guard::{child_outcome, rebuild_of, refuse_future};
use crate::domain::plan::Source;
use crate::domain::rebuild::{candidate, latest_pointer, order, Candidate};
use crate::domain::record::{latest_key, BuildRecord};
use crate::domain::request::clip;
use crate::model::RebuildStep;
use crate::ports::{ExecutionInfo, Executions, ObjectStore, Precondition, Tagged};
use crate::services::objects::{self, Decision};
use crate::services::records;
use crate::Error;
use serde_json::{json, Value};

/// The summary returned as the run's output is cut to this: the state document around it and
/// Step Functions' 256 KiB limit leave room for no more.
const OUTPUT_BYTES: usize = 150 * 1024;

pub struct Deps<S, X> {
    pub store: S,
    pub executions: X,
    pub config: RebuildConfig,
    pub clock: Clock,
}

impl Deps<S3Store, StepFunctions> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = RebuildConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            store: S3Store::new(s3_client(&sdk), config.bucket.clone()),
            executions: StepFunctions::new(
                aws_sdk_sfn::Client::new(&sdk),
                config.state_machine_arn.clone(),
            ),
            config,
            clock: chrono::Utc::now,
        })
    }
}

pub async fn handle<S: ObjectStore, X: Executions>(
    deps: &Deps<S, X>,
    step: RebuildStep,
) -> Result<Value, Error> {
    match step {
        RebuildStep::Lock {
            input,
            execution,
            started_at,
        } => {
            let input = parse_run_input(&input)?;
            refuse_future(&input, started_at)?;
            let run = run_name(&input, started_at);
            take_lock(deps, &run, &execution, &input.selection).await
        }
        RebuildStep::Plan { run, selection } => plan(deps, &run, &selection).await,
        RebuildStep::Existing { name } => existing(deps, &name).await,
        RebuildStep::Summarize { run, error } => summarize(deps, &run, error.as_ref()).await,
        RebuildStep::Unlock { execution } => unlock(deps, &execution).await,
    }
}

super::lambda_main!();

async fn take_lock<S: ObjectStore, X: Executions>(
    deps: &Deps<S, X>,
    run: &str,
    execution: &str,
    selection: &Selection,
) -> Result<Value, Error> {
    // A holder that was stopped, timed out or failed without releasing (no state runs after an
    // abort) leaves the lock at once, not at its expiry: seen ended, the next try takes it.
    let mut ended: Option<String> = None;
    let holder = loop {
        let held = objects::update(&deps.store, LOCK_KEY, |stored: Option<&Tagged>| {
            let now = (deps.clock)();
            let state = lock_state(stored.map(|t| t.bytes.as_slice()), execution, now);
            Ok(match state {
                LockState::Held(h) if ended.as_deref() != Some(h.execution.as_str()) => {
                    Decision::Keep(Some(h))
                }
                LockState::Ours => Decision::Keep(None),
                _ => Decision::Write(Lock::new(run, execution, now).to_json(), None),
            })
        })
        .await?;
        let Some(holder) = held else {
            tracing::info!(run, execution, "rebuild lock taken");
            return Ok(json!({
                "taken": true, "run": run, "execution": execution, "selection": selection,
            }));
        };
        let open = deps.executions.describe_arn(&holder.execution).await?;
        if open.is_some_and(|x| x.status.is_open()) || ended.is_some() {
            break holder;
        }
        tracing::info!(run, holder = %holder.execution, "rebuild lock: holder has ended");
        ended = Some(holder.execution);
    };
    let summary = Summary::skipped_run(run, &holder);
    // Never over a summary that exists (the holder's own, if it is the same run).
    deps.store
        .put_json_if(&summary_key(run), pretty(&summary), Precondition::Absent)
        .await?;
    tracing::info!(run, holder = %holder.run, "rebuild run skipped: lock held");
    Ok(json!({"taken": false, "run": run, "summary": summary}))
}

fn pretty<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("plain data serializes")
}

/// The `latest.json` keys a selection covers (listing only what it names).
async fn latest_keys<S: ObjectStore>(
    store: &S,
    selection: &Selection,
) -> Result<Vec<String>, Error> {
    if selection.is_everything() {
        return store.list_keys("agents/").await;
    }
    let mut keys = Vec::new();
    for p in &selection.projects {
        keys.extend(store.list_keys(&format!("agents/{p}/")).await?);
    }
    for label in &selection.agents {
        if let Some((p, a)) = label.split_once('/') {
            if !selection.projects.contains(p) {
                keys.push(latest_key(p, a));
            }
        }
    }
    Ok(keys)
}

async fn plan<S: ObjectStore, X>(
    deps: &Deps<S, X>,
    run: &str,
    selection: &Selection,
) -> Result<Value, Error> {
    let mut skipped: Vec<Skipped> = Vec::new();
    let skip = |agent: String, reason: String| Skipped { agent, reason };
    let mut candidates: Vec<Candidate> = Vec::new();
    for key in latest_keys(&deps.store, selection).await? {
        let Some((project, agent)) = latest_pointer(&key) else {
            continue;
        };
        let label = format!("{project}/{agent}");
        let outcome = match records::read(&deps.store, &key).await {
            Ok(None) if selection.agents.contains(&label) => {
                Err("no latest successful build to rebuild".to_string())
            }
            Ok(None) => continue, // deleted since the listing
            Ok(Some(stored)) => candidate(project, agent, stored.record),
            // Not a record: skipped, named. Anything else (S3 failing) fails the step: retried.
            Err(Error::InvalidState(reason)) => Err(reason),
            Err(e) => return Err(e),
        };
        match outcome {
            Ok(c) => candidates.push(c),
            Err(reason) => skipped.push(skip(label, reason)),
        }
    }
    order(&mut candidates);

    let mut items: Vec<ManifestItem> = Vec::with_capacity(candidates.len());
    for c in candidates {
        // Uploads not named by a latest.json expire; a source missing anyway (deleted by hand)
        // would only fail validation: skipped here, with the reason.
        if let Some(reason) = source_gone(&deps.store, &c.record.source).await? {
            skipped.push(skip(c.label, reason));
            continue;
        }
        items.push(manifest_item(run, &c).map_err(Error::InvalidState)?);
    }
    deps.store
        .put_json(&manifest_key(run), pretty(&items))
        .await?;
    deps.store
        .put_json(&skipped_key(run), pretty(&skipped))
        .await?;
    tracing::info!(
        run,
        items = items.len(),
        skipped = skipped.len(),
        "rebuild planned"
    );
    Ok(json!({
        "manifest": {"bucket": deps.config.bucket, "key": manifest_key(run)},
        "count": items.len(),
        "skipped": skipped.len(),
        "maxConcurrency": deps.config.max_concurrency,
        "toleratedFailurePercentage": deps.config.tolerated_failure_percentage,
    }))
}

/// Why the source a latest record built cannot be rebuilt, if it cannot: a rebuild builds the
/// recorded version, so that version gone (deleted, or expired as non-current) is nothing to
/// rebuild, whatever the key holds now. A transient failure fails the step (retried).
async fn source_gone<S: ObjectStore>(store: &S, source: &Source) -> Result<Option<String>, Error> {
    let found = match source.version_id.as_deref() {
        Some(v) => store.head_version(&source.bucket, &source.key, v).await,
        None => store.head(&source.bucket, &source.key).await,
    };
    let what = match source.version_id.as_deref() {
        Some(v) => format!("source {} version {v}", source.uri),
        None => format!("source {}", source.uri),
    };
    match found {
        Ok(Some(_)) => Ok(None),
        Ok(None) => Ok(Some(format!("{what} no longer exists"))),
        Err(e @ Error::TransientAws(_)) => Err(e),
        Err(e) => Ok(Some(format!("cannot check {what}: {e}"))),
    }
}

fn outcome_of(info: &ExecutionInfo) -> ExecutionOutcome {
    ExecutionOutcome {
        status: info.status.clone(),
        error: info.error.clone(),
        cause: info.cause.clone(),
    }
}

/// A retried run found the name taken: the execution an earlier try started. Its outcome
/// counts as this item's (the Map item waits while it runs).
async fn existing<S: ObjectStore, X: Executions>(
    deps: &Deps<S, X>,
    name: &str,
) -> Result<Value, Error> {
    let info = deps.executions.describe(name).await?.ok_or_else(|| {
        Error::InvalidState(format!(
            "build execution {} was refused as existing but cannot be found",
            clip(name)
        ))
    })?;
    // waitSeconds always: the ASL's ResultSelector reads it whatever the status.
    let wait = existing_wait_seconds(&info.status).unwrap_or(0);
    let mut status = info.status.as_str().to_string();
    if info.status == ExecutionStatus::Succeeded {
        status = existing_rebuild(deps, name).await?.unwrap_or(status);
    }
    Ok(json!({"status": status, "waitSeconds": wait}))
}

/// A SUCCEEDED execution under the item's name counts only when its record is that name's
/// rebuild (`fleet_guard::rebuild_of`): `Some("NOT_REBUILT")` otherwise.
async fn existing_rebuild<S: ObjectStore, X>(
    deps: &Deps<S, X>,
    name: &str,
) -> Result<Option<String>, Error> {
    let record = child_record(&deps.store, name).await?;
    let verdict = match &record {
        Some(r) => rebuild_of(name, r),
        None => Err(format!("builds/{name}.json does not exist")),
    };
    Ok(verdict.err().map(|why| {
        tracing::warn!(
            name,
            why,
            "an execution under a rebuild's name is not that rebuild"
        );
        "NOT_REBUILT".to_string()
    }))
}

/// The record at a child's name (`None`: none, or not a record).
async fn child_record<S: ObjectStore>(store: &S, name: &str) -> Result<Option<BuildRecord>, Error> {
    match records::build(store, name).await {
        Ok(r) => Ok(r.map(|s| s.record)),
        Err(Error::InvalidState(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn read_list<S: ObjectStore, T: serde::de::DeserializeOwned>(
    store: &S,
    key: &str,
) -> Result<Vec<T>, Error> {
    let list = objects::read_json(store, key, "a list this step wrote").await?;
    Ok(list.unwrap_or_default())
}

async fn summarize<S: ObjectStore, X: Executions>(
    deps: &Deps<S, X>,
    run: &str,
    error: Option<&Value>,
) -> Result<Value, Error> {
    let items: Vec<ManifestItem> = read_list(&deps.store, &manifest_key(run)).await?;
    let mut skipped: Vec<Skipped> = read_list(&deps.store, &skipped_key(run)).await?;
    let aborted = error.map(|e| {
        let text = |k: &str| {
            e.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        clip(&format!("{}: {}", text("Error"), text("Cause")))
    });
    let t = tally(deps, &items, aborted.is_some(), &mut skipped).await?;
    let summary = Summary {
        run: run.to_string(),
        status: if aborted.is_some() {
            RunStatus::Aborted
        } else {
            RunStatus::Completed
        },
        reason: aborted,
        started: t.started,
        succeeded: t.succeeded,
        failed: t.failed,
        skipped,
        cancelled: t.cancelled,
        truncated: false,
    };
    deps.store
        .put_json(&summary_key(run), pretty(&summary))
        .await?;
    tracing::info!(
        run,
        started = summary.started,
        succeeded = summary.succeeded,
        failed = summary.failed.len(),
        skipped = summary.skipped.len(),
        "rebuild run summarized"
    );
    Ok(serde_json::to_value(summary.fitted(OUTPUT_BYTES)).expect("plain data"))
}

/// The children's outcomes, counted by what each did (`fleet_guard::child_outcome`).
#[derive(Default)]
struct Tally {
    started: usize,
    succeeded: usize,
    failed: Vec<Failed>,
    cancelled: Vec<Cancelled>,
}

async fn tally<S: ObjectStore, X: Executions>(
    deps: &Deps<S, X>,
    items: &[ManifestItem],
    aborted: bool,
    skipped: &mut Vec<Skipped>,
) -> Result<Tally, Error> {
    let mut t = Tally::default();
    for item in items {
        let record = child_record(&deps.store, &item.name).await?;
        let execution = match record.as_ref().filter(|r| r.status.is_final()) {
            Some(_) => None,
            None => deps.executions.describe(&item.name).await?,
        };
        let execution = execution.as_ref().map(outcome_of);
        match child_outcome(&item.name, record.as_ref(), execution.as_ref()) {
            ItemOutcome::Succeeded => {
                t.started += 1;
                t.succeeded += 1;
            }
            ItemOutcome::Cancelled { reason } => {
                t.started += 1;
                t.cancelled.push(Cancelled {
                    agent: item.agent.clone(),
                    reason,
                    build_id: item.name.clone(),
                });
            }
            ItemOutcome::Failed { status, reason } => {
                t.started += 1;
                t.failed.push(Failed {
                    agent: item.agent.clone(),
                    status,
                    reason,
                    build_id: Some(item.name.clone()),
                });
            }
            ItemOutcome::NotStarted if aborted => skipped.push(Skipped {
                agent: item.agent.clone(),
                reason: "not started: the run stopped first".into(),
            }),
            ItemOutcome::NotStarted => t.failed.push(Failed {
                agent: item.agent.clone(),
                status: "NOT_STARTED".into(),
                reason: "the run found no build execution of its name".into(),
                build_id: Some(item.name.clone()),
            }),
        }
    }
    Ok(t)
}

async fn unlock<S: ObjectStore, X>(deps: &Deps<S, X>, execution: &str) -> Result<Value, Error> {
    let released = objects::update(&deps.store, LOCK_KEY, |stored: Option<&Tagged>| {
        // Taken over after it expired, or released by an earlier try of this step.
        let Some(stored) = stored.filter(|s| releasable(&s.bytes, execution)) else {
            return Ok(Decision::Keep(false));
        };
        let mut lock: Lock = objects::parse_json(LOCK_KEY, &stored.bytes, "a lock")?;
        lock.released_at = Some((deps.clock)());
        Ok(Decision::Write(lock.to_json(), true))
    })
    .await?;
    tracing::info!(execution, released, "rebuild lock");
    Ok(json!({"released": released}))
}

#[cfg(test)]
mod tests;
