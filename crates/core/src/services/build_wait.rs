//! The build wait, shared by its three doors: CheckBuild (the fallback look), AwaitBuild (park
//! the task token, then look once) and the CodeBuild event handler (complete the parked wait).
//! One rule for what a look at CodeBuild means ([`apply`]), so every door hands RecordResult
//! the same build.

use crate::domain::callback::{callback_key, phase_progress, replaces, ParkedTask};
use crate::domain::fallback::Fallback;
use crate::domain::observe::{observe, Observed};
use crate::domain::plan::BuildPlan;
use crate::domain::record::BuildState;
use crate::domain::record::{build_key, BuildRecord, Phase};
use crate::model::{BuildOutput, CheckInput};
use crate::ports::{BuildInfo, BuildService, Delivery, ObjectStore, Tagged, TaskTokens};
use crate::services::objects::{self, Decision};
use crate::services::records;
use crate::Error;
use chrono::{DateTime, Utc};

/// CodeBuild's view of build `id` (one BatchGetBuilds); an id it does not know is
/// `BuildNotFound`.
pub async fn look<B: BuildService>(builds: &B, id: &str) -> Result<BuildInfo, Error> {
    builds
        .get(id)
        .await?
        .ok_or_else(|| Error::BuildNotFound(id.to_string()))
}

/// What `info` means for `build`, the build as last seen (`domain::observe`): past its
/// deadline the build is stopped; while it runs, its live record is updated (best effort,
/// never over a final record). Returns the build as observed now.
pub async fn apply<S: ObjectStore, B: BuildService>(
    store: &S,
    builds: &B,
    fallback: &Fallback,
    now: DateTime<Utc>,
    plan: &BuildPlan,
    build: BuildState,
    info: &BuildInfo,
) -> Result<BuildState, Error> {
    let Observed { build, stop } = observe(build, info, now, fallback);
    if stop {
        builds.stop(&info.id).await?;
        tracing::warn!(build_id = %plan.build_id, codebuild_id = %info.id, "deadline passed; build stopped");
    }
    if !build.status.is_final() {
        // Live progress for status queries, best effort: the final record is RecordResult's,
        // and a failed progress write must not turn a healthy build into ERROR. Never over a
        // final record (a late look after a cancel or the closer).
        let record = BuildRecord::new(plan, Some(&build), None, now);
        if let Err(e) = records::write(store, &record).await {
            tracing::warn!(build_id = %plan.build_id, error = %e, progress_write_failed = 1, "live progress not written");
        }
    }
    tracing::info!(
        build_id = %plan.build_id,
        codebuild_id = %info.id,
        status = %build.status,
        phase = build.current_phase.as_deref().unwrap_or("-"),
        await_seconds = build.await_seconds,
        "build checked"
    );
    Ok(build)
}

/// CheckBuild's rule: look once at the build this execution started (StartBuild's id, never
/// the observed state's), apply.
pub async fn check<S: ObjectStore, B: BuildService>(
    store: &S,
    builds: &B,
    fallback: &Fallback,
    now: DateTime<Utc>,
    input: CheckInput,
) -> Result<BuildOutput, Error> {
    let CheckInput {
        plan,
        codebuild_build_id,
        mut build,
    } = input;
    let info = look(builds, &codebuild_build_id).await?;
    build.codebuild_build_id = Some(codebuild_build_id);
    let build = apply(store, builds, fallback, now, &plan, build, &info).await?;
    Ok(BuildOutput { build })
}

/// Parks `task` at `callbacks/<buildId>.json` unless a later wait of the same build is parked
/// there already (conditional writes: two parks at once cannot both win). `false`: a later
/// wait stands; this one is left to its timeout.
pub async fn park<S: ObjectStore>(store: &S, task: &ParkedTask) -> Result<bool, Error> {
    let key = callback_key(&task.build_id);
    let body = serde_json::to_vec(task).expect("a parked task serializes");
    objects::update(store, &key, |current: Option<&Tagged>| {
        if let Some(tagged) = current {
            let stored: ParkedTask = parse(&key, &tagged.bytes)?;
            if !replaces(&stored, task) {
                return Ok(Decision::Keep(false));
            }
        }
        Ok(Decision::Write(body.clone(), true))
    })
    .await
}

/// The wait parked for execution `build_id`, if any.
pub async fn parked<S: ObjectStore>(
    store: &S,
    build_id: &str,
) -> Result<Option<ParkedTask>, Error> {
    objects::read_json(store, &callback_key(build_id), "a parked wait").await
}

/// Ends the parked wait with `output`: the build's observed state, nothing else. A wait that is
/// closed already (timed out into the fallback, completed by the other door) is logged: the
/// execution has moved on without us.
pub async fn complete<T: TaskTokens>(
    tokens: &T,
    task: &ParkedTask,
    output: &BuildOutput,
) -> Result<Delivery, Error> {
    let text = serde_json::to_string(output).expect("a build output serializes");
    let delivery = tokens.succeed(&task.token, &text).await?;
    match &delivery {
        Delivery::Accepted => {
            tracing::info!(build_id = %task.build_id, status = %output.build.status, "wait completed")
        }
        Delivery::Closed(code) => {
            tracing::info!(build_id = %task.build_id, code = %code, wait_closed = 1, "wait was already closed; nothing to do")
        }
    }
    Ok(delivery)
}

/// A "Build Phase Change": the live record of `build_id` learns the phases, if that moves it
/// forward (`domain::callback::phase_progress`), by a conditional write. Best effort: returns
/// whether it wrote.
pub async fn progress<S: ObjectStore>(
    store: &S,
    build_id: &str,
    codebuild_id: &str,
    phases: &[Phase],
) -> Result<bool, Error> {
    objects::update(store, &build_key(build_id), |current: Option<&Tagged>| {
        let next = current
            .and_then(|tagged| serde_json::from_slice::<BuildRecord>(&tagged.bytes).ok())
            .and_then(|record| phase_progress(&record, codebuild_id, phases));
        Ok(match next {
            Some(next) => Decision::Write(next.to_json(), true),
            None => Decision::Keep(false),
        })
    })
    .await
}

fn parse(key: &str, bytes: &[u8]) -> Result<ParkedTask, Error> {
    objects::parse_json(key, bytes, "a parked wait")
}
