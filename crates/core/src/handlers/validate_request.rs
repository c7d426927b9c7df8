//! ValidateRequest: execution input (any door) -> `{plan}`, or an `InvalidRequest` error.
//!
//! The input is the caller's: a console user can type anything. So what decides which door a
//! build came through and which submission is newer is derived here, never read from it: the
//! API door from the execution name (it hashes the request and its pinned content), a
//! scheduled rebuild from the fleet run's manifest in our own bucket, the submission time from
//! the execution's start — or, for a rebuild, from the record of the build it rebuilds.

use super::{aws_config, s3_client};
use crate::adapters::s3::S3Store;
use crate::config::{ProcessEnv, ValidateConfig};
use crate::domain::execution::{
    is_api_name, open_input, pin_mismatch, rebuild_pin, ExecutionInput, PromoteOf, RebuildOf,
    SourcePin, Submission,
};
use crate::domain::fleet::{manifest_key, ManifestItem};
use crate::domain::plan::{is_build_id, BuildPlan, ExecutionFacts, SourceObject, Trigger};
use crate::domain::prebuilt::PrebuiltRequest;
use crate::domain::promote;
use crate::domain::record::{BuildRecord, BuildState};
use crate::domain::request::{clip, RequestError, ValidRequest};
use crate::model::{PlanState, ValidateInput};
use crate::ports::ObjectStore;
use crate::services::{self, records, runtime_names};
use crate::Error;
use chrono::{DateTime, Utc};

pub struct Deps<S> {
    pub store: S,
    pub config: ValidateConfig,
}

impl Deps<S3Store> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = ValidateConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        let store = S3Store::new(s3_client(&sdk), config.sources.own_bucket.clone());
        Ok(Self { store, config })
    }
}

/// A request with the facts we derived about it.
struct Admitted {
    req: ValidRequest,
    pin: Option<SourcePin>,
    trigger: Trigger,
    submitted_at: Option<DateTime<Utc>>,
    deadline_seconds: Option<u64>,
    promote: Option<PromoteOf>,
}

pub async fn handle<S: ObjectStore>(
    deps: &Deps<S>,
    event: ValidateInput,
) -> Result<PlanState, Error> {
    if !is_build_id(&event.build_id) {
        return Err(RequestError::new(
            "executionName",
            "must be 1 to 80 of letters, digits, '-' and '_' (it names the build's record)",
        )
        .into());
    }
    let admitted = match open_input(&event.input)? {
        ExecutionInput::Submission(s) => submission(&event.build_id, s),
        ExecutionInput::Rebuild(of) => rebuild(deps, &event, of).await?,
        ExecutionInput::Prebuilt(req) => prebuilt(deps, &req).await?,
    };
    deps.config.sources.admit(&admitted.req)?;
    unused_name(&deps.store, &event).await?;
    // A runtime name belongs to one agent: another agent's is refused before anything runs.
    let stack = &deps.config.stack;
    runtime_names::claim_request(&deps.store, &admitted.req, stack, event.started_at).await?;
    let object = validated_object(deps, &admitted).await?;
    let promote = admitted.promote.clone();
    let mut plan = BuildPlan::new(
        admitted.req,
        object,
        &deps.config.repository_uri,
        ExecutionFacts {
            stack: deps.config.stack.clone(),
            build_id: event.build_id,
            execution_arn: event.execution_arn,
            trigger: admitted.trigger,
            requested_at: event.started_at,
            submitted_at: admitted.submitted_at,
            deadline_seconds: admitted.deadline_seconds,
        },
    );
    if let Some(of) = promote {
        promoted(&deps.store, &plan, &of).await?;
        plan.promoted_from = Some(of.build_id);
    }
    // From here on the execution is past validation: it must end with a record. The first one
    // (RUNNING, no CodeBuild build yet) lets the last-resort closer close it even when the
    // execution is aborted or times out before StartBuild could write anything.
    let accepted = BuildState::starting(plan.requested_at);
    records::write(
        &deps.store,
        &BuildRecord::new(&plan, Some(&accepted), None, plan.requested_at),
    )
    .await?;
    tracing::info!(
        build_id = %plan.build_id,
        project = %plan.project,
        agent = %plan.agent,
        trigger = ?plan.trigger,
        tag = %plan.image.tag,
        "request validated"
    );
    Ok(PlanState { plan })
}

super::lambda_main!();

/// A fresh submission: submitted when its execution started; the API's door only when the
/// execution bears the name the API gives exactly this submission.
fn submission(build_id: &str, s: Submission) -> Admitted {
    let trigger = if is_api_name(build_id, &s) {
        Trigger::Api
    } else {
        Trigger::Console
    };
    Admitted {
        trigger,
        deadline_seconds: s.limits.and_then(|l| l.deadline_seconds).map(u64::from),
        req: s.request,
        pin: s.source,
        submitted_at: None,
        promote: s.promote,
    }
}

/// A request naming a prebuilt artifact: the promote of the build that made it (the stack's
/// index, `services::prebuilt`), as the API submits it — a console input, so `console`.
async fn prebuilt<S: ObjectStore>(
    deps: &Deps<S>,
    req: &PrebuiltRequest,
) -> Result<Admitted, Error> {
    let resolved =
        services::prebuilt::promote_of(&deps.store, req, &deps.config.repository_uri).await?;
    let of = resolved.promote_of();
    Ok(Admitted {
        req: resolved.valid,
        pin: Some(resolved.pin),
        trigger: Trigger::Console,
        submitted_at: None,
        deadline_seconds: None,
        promote: Some(of),
    })
}

/// A promote deploys what the build it names made: that build's record must be a success of
/// this agent, of this very source and content (`domain::promote`), and its target not the one
/// the agent's latest deploy serves.
async fn promoted<S: ObjectStore>(
    store: &S,
    plan: &BuildPlan,
    of: &PromoteOf,
) -> Result<(), Error> {
    let record = records::build(store, &of.build_id)
        .await?
        .ok_or_else(|| RequestError::new(promote::FIELD, "names no recorded build"))?
        .record;
    promote::promotable(plan, &record)?;
    let Some(target) = &plan.deploy else {
        return Err(RequestError::new("deploy", "is required: a promote deploys").into());
    };
    let latest = records::latest(store, &plan.project, &plan.agent).await?;
    promote::other_target(target, latest.as_ref().map(|s| &s.record))?;
    Ok(())
}

/// A rebuild: everything it builds and counts by comes from the record of the build it
/// rebuilds (the request, forced; the source version and its SHA-256; the submission time).
/// It is `schedule` only when the run's manifest (written by the fleet machine into our own
/// bucket) lists this very execution with this very input; any other door gets `console`.
async fn rebuild<S: ObjectStore>(
    deps: &Deps<S>,
    event: &ValidateInput,
    of: RebuildOf,
) -> Result<Admitted, Error> {
    let field = "rebuild.buildId";
    let record = records::build(&deps.store, &of.build_id)
        .await?
        .ok_or_else(|| RequestError::new(field, "names no recorded build"))?
        .record;
    if !record.status.is_success() {
        let why = format!(
            "build {} is {}: only a success is rebuilt",
            of.build_id, record.status
        );
        return Err(RequestError::new(field, why).into());
    }
    if let Some(from) = &record.promoted_from {
        // Rebuilt, it would be a build of its own and could take latest.json with the promote's
        // target: what the fleet redeploys is latest's, never a promote's.
        let why = format!(
            "build {} is a promote of {from}: rebuild that one",
            of.build_id
        );
        return Err(RequestError::new(field, why).into());
    }
    let mut req = record
        .request
        .clone()
        .ok_or_else(|| RequestError::new(field, "the recorded build does not hold its request"))?;
    req.force = true;
    let pin = rebuild_pin(record.source.version_id.as_deref(), &record.source.sha256)?;
    let vouched = deps
        .store
        .get(&manifest_key(&of.run))
        .await?
        .and_then(|bytes| serde_json::from_slice::<Vec<ManifestItem>>(&bytes).ok())
        .is_some_and(|items| {
            items
                .iter()
                .any(|i| i.name == event.build_id && i.input == event.input)
        });
    Ok(Admitted {
        req,
        pin: Some(pin),
        trigger: if vouched {
            Trigger::Schedule
        } else {
            Trigger::Console
        },
        submitted_at: Some(record.submitted_at()),
        deadline_seconds: None,
        promote: None,
    })
}

/// A name reused (Step Functions frees a name 90 days after its execution closed; a console
/// user may pick any) never resumes another execution's build: a record at the name written
/// by another execution (another start time) that is final or names a build ends this one
/// before anything is written.
async fn unused_name<S: ObjectStore>(store: &S, event: &ValidateInput) -> Result<(), Error> {
    let Some(stored) = records::build(store, &event.build_id).await? else {
        return Ok(());
    };
    let earlier = &stored.record;
    if earlier.timestamps.requested_at == event.started_at {
        return Ok(()); // this execution's own record: a retried ValidateRequest
    }
    if started_nothing(earlier) {
        // The API's first record, written just before it started this execution (or one
        // that never got further): there is no build in it to resume.
        return Ok(());
    }
    Err(RequestError::new(
        "executionName",
        format!(
            "build {} already has a {} record from an earlier execution of this name, \
             requested at {}; a reused name never resumes another build: start under a new name",
            event.build_id, earlier.status, earlier.timestamps.requested_at
        ),
    )
    .into())
}

/// An open record that names no CodeBuild build and no start of one: what the API writes when
/// it accepts a request. A final record, or one with a build, is another execution's.
fn started_nothing(r: &BuildRecord) -> bool {
    !r.status.is_final()
        && r.codebuild.build_id.is_none()
        && r.codebuild.start_requested_at.is_none()
}

/// The source this build stands for. A promote builds nothing from its source: its pin must be
/// the promoted build's own recorded source (`promote::promotable` compares), which may have
/// expired since, so it is not hashed again.
async fn validated_object<S: ObjectStore>(
    deps: &Deps<S>,
    admitted: &Admitted,
) -> Result<SourceObject, Error> {
    match (&admitted.promote, &admitted.pin) {
        (Some(_), Some(pin)) => Ok(SourceObject {
            sha256: pin.sha256.clone(),
            version_id: Some(pin.version_id.clone()),
        }),
        _ => source_object(deps, &admitted.req, admitted.pin.as_ref()).await,
    }
}

/// The object version this build builds, and its SHA-256. Unpinned: the key's current version.
/// Pinned (the API's submission, a rebuild): that version, hashed again and compared — an
/// upload that replaced the key since changes nothing for this build.
async fn source_object<S: ObjectStore>(
    deps: &Deps<S>,
    req: &ValidRequest,
    pin: Option<&SourcePin>,
) -> Result<SourceObject, Error> {
    let (bucket, key) = (req.source.bucket(), req.source.key());
    let head = deps.store.head(bucket, key).await?;
    let Some(pin) = pin else {
        let meta = head.ok_or_else(|| {
            RequestError::new(
                "source",
                format!("{} does not exist", clip(&req.source.to_string())),
            )
        })?;
        let version_id = meta.check_source(deps.config.max_source_bytes)?;
        let sha256 = match meta.sha256 {
            Some(sha) => sha,
            None => deps.store.sha256(bucket, key, &version_id).await?,
        };
        return Ok(SourceObject {
            sha256,
            version_id: Some(version_id),
        });
    };
    pinned_object(deps, req, head, pin).await
}

/// A pinned version: the current one is checked for size here (an older one was when it was
/// pinned), hashed again (S3's checksum when it is the current one), compared with the pin.
async fn pinned_object<S: ObjectStore>(
    deps: &Deps<S>,
    req: &ValidRequest,
    head: Option<crate::ports::ObjectMeta>,
    pin: &SourcePin,
) -> Result<SourceObject, Error> {
    let (bucket, key, uri) = (
        req.source.bucket(),
        req.source.key(),
        req.source.to_string(),
    );
    let current = head.filter(|m| m.version_id.as_deref() == Some(pin.version_id.as_str()));
    let known = match current {
        Some(meta) => meta
            .check_source(deps.config.max_source_bytes)
            .map(|_| meta.sha256)?,
        None => None,
    };
    let sha256 = match known {
        Some(sha) => sha,
        None => deps
            .store
            .sha256(bucket, key, &pin.version_id)
            .await
            .map_err(|e| match e {
                Error::AwsService(_) => RequestError::new(
                    "source",
                    format!(
                        "version {} of {} no longer exists",
                        clip(&pin.version_id),
                        clip(&uri)
                    ),
                )
                .into(),
                other => other,
            })?,
    };
    if sha256 != pin.sha256 {
        return Err(pin_mismatch(&uri, pin).into());
    }
    Ok(SourceObject {
        sha256,
        version_id: Some(pin.version_id.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::execution::api_execution_name;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::request::SourcePolicy;
    use crate::domain::status::BuildStatus;
    use crate::testing::fakes::{FakeStore, FAKE_VERSION};
    use serde_json::json;

    const KEY: &str = "sources/nexus-ai/sales/src.zip";
    /// SHA-256 of `abc`.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn deps(store: FakeStore) -> Deps<FakeStore> {
        Deps {
            store,
            config: ValidateConfig {
                stack: "agentbuild".into(),
                sources: SourcePolicy::own("bkt"),
                repository_uri: "123.dkr.ecr.us-east-1.amazonaws.com/agentbuild".into(),
                max_source_bytes: 1000,
            },
        }
    }

    fn event(input: serde_json::Value) -> ValidateInput {
        serde_json::from_value(json!({
            "input": input, "buildId": "b-1",
            "executionArn": "arn:aws:states:us-east-1:1:execution:m:b-1",
            "startedAt": "2026-11-28T10:00:00.000Z"
        }))
        .unwrap()
    }

    fn request() -> serde_json::Value {
        json!({"project": "nexus-ai", "agent": "sales", "source": format!("s3://bkt/{KEY}")})
    }

    #[tokio::test]
    async fn plans_a_valid_request_hashing_the_source() {
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        let out = handle(&deps(store), event(request())).await.unwrap();
        let p = out.plan;
        assert_eq!(
            p.source.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(p
            .image
            .tag
            .starts_with(&format!("{}.{}-", p.project, p.agent)));
        assert_eq!(p.build_id, "b-1");
        assert_eq!(p.trigger, crate::domain::plan::Trigger::Console);
    }

    #[tokio::test]
    async fn a_valid_request_gets_its_first_running_record_an_invalid_one_nothing() {
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        let d = deps(store);
        handle(&d, event(request())).await.unwrap();
        let rec: crate::domain::record::BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        assert_eq!(rec.status, crate::domain::status::BuildStatus::Running);
        assert_eq!(rec.codebuild.build_id, None);
        let mut bad = request();
        bad["agent"] = json!("Bad_Agent");
        let d = deps(FakeStore::default().with_object("bkt", KEY, b"abc"));
        handle(&d, event(bad)).await.unwrap_err();
        assert!(
            d.store.puts.borrow().is_empty(),
            "a rejected request writes nothing"
        );
    }

    #[tokio::test]
    async fn uses_the_s3_checksum_when_there_is_one() {
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        store.set_checksum("bkt", KEY, &"0f".repeat(32));
        let out = handle(&deps(store), event(request())).await.unwrap();
        assert_eq!(out.plan.source.sha256, "0f".repeat(32));
    }

    #[tokio::test]
    async fn rejects_a_missing_source_naming_the_field() {
        let err = handle(&deps(FakeStore::default()), event(request()))
            .await
            .unwrap_err();
        assert_eq!(err.name(), "InvalidRequest");
        assert!(err.to_string().starts_with("source: s3://bkt/"), "{err}");
    }

    #[tokio::test]
    async fn rejects_an_oversize_source() {
        let store = FakeStore::default().with_object("bkt", KEY, &[0; 1001]);
        let err = handle(&deps(store), event(request())).await.unwrap_err();
        assert!(err.to_string().contains("at most 1000"), "{err}");
    }

    #[tokio::test]
    async fn the_api_door_is_told_by_the_name_it_gives_the_submission() {
        let input = json!({"request": request(), "limits": {"deadlineSeconds": 9},
                           "source": {"versionId": FAKE_VERSION, "sha256": ABC}});
        let ExecutionInput::Submission(s) = open_input(&input).unwrap() else {
            panic!("a submission")
        };
        let mut e = event(input.clone());
        e.build_id = api_execution_name(&s.request, s.source.as_ref(), 0);
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        let p = handle(&deps(store), e).await.unwrap().plan;
        assert_eq!(p.trigger, Trigger::Api);
        assert_eq!(p.deadline_seconds, Some(9));
        assert_eq!(p.source.version_id.as_deref(), Some(FAKE_VERSION));
        // The same input under any other name came through another door.
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        let p = handle(&deps(store), event(input)).await.unwrap().plan;
        assert_eq!(p.trigger, Trigger::Console);
    }

    #[tokio::test]
    async fn a_console_input_cannot_claim_a_door_or_a_submission_time() {
        for (extra, field) in [
            (json!({"trigger": "schedule"}), "trigger"),
            (
                json!({"submittedAt": "2999-01-01T00:00:00Z"}),
                "submittedAt",
            ),
        ] {
            let mut input = json!({"request": request()});
            input
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let d = deps(FakeStore::default().with_object("bkt", KEY, b"abc"));
            let err = handle(&d, event(input)).await.unwrap_err();
            assert_eq!(err.name(), "InvalidRequest");
            assert!(
                err.to_string()
                    .starts_with(&format!("{field}: unknown field")),
                "{err}"
            );
            assert!(d.store.puts.borrow().is_empty());
        }
    }

    #[tokio::test]
    async fn a_pinned_version_that_hashes_otherwise_is_refused() {
        let input = json!({"request": request(),
                           "source": {"versionId": FAKE_VERSION, "sha256": "0f".repeat(32)}});
        let d = deps(FakeStore::default().with_object("bkt", KEY, b"abc"));
        let err = handle(&d, event(input)).await.unwrap_err();
        assert!(err.to_string().contains("does not hash to"), "{err}");
        assert!(d.store.puts.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_reused_name_never_resumes_the_build_recorded_at_it() {
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        let mut old = BuildRecord::new(&plan(), Some(&running()), None, t("2026-10-01T10:00:00Z"));
        old.build_id = "b-1".into();
        old.timestamps.requested_at = t("2026-10-01T10:00:00Z");
        old.status = BuildStatus::Succeeded;
        store.seed("builds/b-1.json", old.to_json());
        let d = deps(store);
        let err = handle(&d, event(request())).await.unwrap_err();
        assert_eq!(err.name(), "InvalidRequest");
        assert!(
            err.to_string()
                .starts_with("executionName: build b-1 already has a SUCCEEDED"),
            "{err}"
        );
        let kept: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        assert_eq!(kept, old, "the earlier record is untouched");
        // This execution's own record (a retried ValidateRequest) is no obstacle.
        let d = deps(FakeStore::default().with_object("bkt", KEY, b"abc"));
        handle(&d, event(request())).await.unwrap();
        handle(&d, event(request())).await.unwrap();
    }

    #[tokio::test]
    async fn the_apis_first_record_is_taken_over_a_record_with_a_build_is_not() {
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        let at = t("2026-11-28T09:59:59Z");
        let mut accepted = BuildRecord::new(&plan(), Some(&BuildState::starting(at)), None, at);
        accepted.build_id = "b-1".into();
        accepted.timestamps.requested_at = at; // the API's time, before the execution started
        store.seed("builds/b-1.json", accepted.to_json());
        let d = deps(store);
        let out = handle(&d, event(request())).await.unwrap();
        let now: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        assert_eq!(now.timestamps.requested_at, out.plan.requested_at);
        let mut started = accepted.clone();
        started.codebuild.start_requested_at = Some(at);
        let d = deps(FakeStore::default().with_object("bkt", KEY, b"abc"));
        d.store.seed("builds/b-1.json", started.to_json());
        let err = handle(&d, event(request())).await.unwrap_err();
        assert_eq!(err.name(), "InvalidRequest");
    }

    fn recorded(build_id: &str, submitted: &str) -> BuildRecord {
        let mut p = plan();
        p.build_id = build_id.into();
        p.project = "nexus-ai".into();
        p.agent = "sales".into();
        p.source.uri = format!("s3://bkt/{KEY}");
        p.source.bucket = "bkt".into();
        p.source.key = KEY.into();
        p.source.sha256 = ABC.into();
        p.source.version_id = Some(FAKE_VERSION.into());
        p.requested_at = t(submitted);
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        BuildRecord::new(&p, Some(&b), None, t(submitted))
    }

    #[tokio::test]
    async fn a_rebuild_takes_everything_trust_bearing_from_the_record_it_rebuilds() {
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        let old = recorded("api-old", "2026-11-01T08:00:00Z");
        store.seed("builds/api-old.json", old.to_json());
        let input = json!({"rebuild": {"buildId": "api-old", "run": "20261129T0300"}});
        let d = deps(store);
        let p = handle(&d, event(input.clone())).await.unwrap().plan;
        assert!(p.force);
        assert_eq!(p.submitted_at, Some(t("2026-11-01T08:00:00Z")));
        assert_eq!(p.source.version_id.as_deref(), Some(FAKE_VERSION));
        assert_eq!(p.trigger, Trigger::Console, "no manifest vouches for it");
        // Listed in the run's manifest under this very name and input: a scheduled rebuild.
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        store.seed("builds/api-old.json", old.to_json());
        let items = json!([{"name": "b-1", "agent": "nexus-ai/sales", "input": input}]);
        store.seed(
            "rebuilds/20261129T0300/manifest.json",
            items.to_string().into_bytes(),
        );
        let p = handle(&deps(store), event(input)).await.unwrap().plan;
        assert_eq!(p.trigger, Trigger::Schedule);
    }

    #[tokio::test]
    async fn a_promote_names_a_success_of_this_content_and_another_target_than_latests() {
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        let built = handle(&deps(store), event(request())).await.unwrap().plan;
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        let mut old = BuildRecord::new(&built, Some(&b), None, t("2026-11-28T10:05:00Z"));
        old.build_id = "api-old".into();
        let promote = |endpoint: &str| {
            let mut r = request();
            r["deploy"] = json!({"endpoint": endpoint});
            json!({"request": r, "source": {"versionId": FAKE_VERSION, "sha256": ABC},
                   "promote": {"buildId": "api-old"}})
        };
        let with = |old: &BuildRecord, latest: Option<&BuildRecord>| {
            let store = FakeStore::default().with_object("bkt", KEY, b"abc");
            store.seed("builds/api-old.json", old.to_json());
            if let Some(l) = latest {
                store.seed("agents/nexus-ai/sales/latest.json", l.to_json());
            }
            deps(store)
        };
        let p = handle(&with(&old, None), event(promote("staging")))
            .await
            .unwrap()
            .plan;
        assert_eq!(p.promoted_from.as_deref(), Some("api-old"));
        // Another content (other build settings) is not this request's to promote.
        let mut other = old.clone();
        other.image.tag = "nexus-ai.sales-ffff".into();
        let err = handle(&with(&other, None), event(promote("staging")))
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("promote.buildId: "), "{err}");
        // The target the agent's latest deploy serves is a rollback's, not a promote's.
        let mut latest = old.clone();
        latest.build_id = "api-new".into();
        let spec = p.deploy.clone().unwrap();
        let mut served = crate::domain::deployment::Deployment::refused(
            &spec,
            None,
            "",
            t("2026-11-28T10:06:00Z"),
        );
        served.endpoint = Some("live".into());
        latest.deployment = Some(served);
        let err = handle(&with(&old, Some(&latest)), event(promote("live")))
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("deploy.endpoint: "), "{err}");
        assert!(
            handle(&with(&old, Some(&latest)), event(promote("staging")))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_prebuilt_image_is_the_promote_of_its_build_though_its_source_expired() {
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        let built = handle(&deps(store), event(request())).await.unwrap().plan;
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        b.image_digest = Some(format!("sha256:{ABC}"));
        let mut old = BuildRecord::new(&built, Some(&b), None, t("2026-11-28T10:05:00Z"));
        old.build_id = "api-old".into();
        // The source upload has expired: no object at KEY any more.
        let store = FakeStore::default();
        store.seed("builds/api-old.json", old.to_json());
        services::prebuilt::note(&store, &old).await.unwrap();
        let d = deps(store);
        let image = format!("{}@sha256:{ABC}", d.config.repository_uri);
        let asked = |image: &str| {
            json!({"project": "nexus-ai", "agent": "sales", "prebuilt": {"image": image},
                   "deploy": {"endpoint": "staging"}})
        };
        let p = handle(&d, event(asked(&image))).await.unwrap().plan;
        assert_eq!(p.promoted_from.as_deref(), Some("api-old"));
        assert_eq!(
            p.trigger,
            Trigger::Console,
            "a console input, whatever it names"
        );
        assert_eq!(
            p.source.version_id, old.source.version_id,
            "the recorded source"
        );
        assert_eq!(p.deploy.unwrap().endpoint.as_deref(), Some("staging"));
        // A digest no build of this agent made.
        let unknown = format!("{}@sha256:{}", d.config.repository_uri, "0".repeat(64));
        let err = handle(&d, event(asked(&unknown))).await.unwrap_err();
        assert!(err.to_string().starts_with("prebuilt.image: "), "{err}");
        // A promote's console input whose pin is not the promoted build's source is refused
        // (its source is not hashed again: the record is what it is compared with).
        let mut r = request();
        r["deploy"] = json!({"endpoint": "staging"});
        let forged = json!({"request": r, "source": {"versionId": "v-forged", "sha256": ABC},
                            "promote": {"buildId": "api-old"}});
        let err = handle(&d, event(forged)).await.unwrap_err();
        assert!(err.to_string().starts_with("promote.buildId: "), "{err}");
    }

    #[tokio::test]
    async fn a_promote_is_never_rebuilt() {
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        let mut promote = recorded("api-promote", "2026-11-01T08:00:00Z");
        promote.promoted_from = Some("api-old".into());
        store.seed("builds/api-promote.json", promote.to_json());
        let input = json!({"rebuild": {"buildId": "api-promote", "run": "20261129T0300"}});
        let err = handle(&deps(store), event(input)).await.unwrap_err();
        assert!(err.to_string().starts_with("rebuild.buildId: "), "{err}");
        assert!(err.to_string().contains("a promote of api-old"), "{err}");
    }

    #[tokio::test]
    async fn a_rebuild_of_a_failure_or_of_bytes_that_changed_is_refused() {
        let input = json!({"rebuild": {"buildId": "api-old", "run": "20261129T0300"}});
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        let mut failed = recorded("api-old", "2026-11-01T08:00:00Z");
        failed.status = BuildStatus::Failed;
        store.seed("builds/api-old.json", failed.to_json());
        let err = handle(&deps(store), event(input.clone()))
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("rebuild.buildId: "), "{err}");
        let store = FakeStore::default().with_object("bkt", KEY, b"replaced");
        store.seed(
            "builds/api-old.json",
            recorded("api-old", "2026-11-01T08:00:00Z").to_json(),
        );
        let err = handle(&deps(store), event(input)).await.unwrap_err();
        assert!(err.to_string().contains("does not hash to"), "{err}");
    }

    #[tokio::test]
    async fn rejects_before_touching_s3() {
        let store = FakeStore::default();
        let mut bad = request();
        bad["agent"] = json!("Bad Name");
        let d = deps(store);
        let err = handle(&d, event(bad)).await.unwrap_err();
        assert!(err.to_string().starts_with("agent: "));
        assert_eq!(d.store.calls(), 0);
    }

    #[tokio::test]
    async fn rejects_an_execution_name_that_cannot_be_a_key() {
        let mut e = event(request());
        e.build_id = "a/b".into();
        let err = handle(&deps(FakeStore::default()), e).await.unwrap_err();
        assert!(err.to_string().starts_with("executionName: "));
    }

    #[tokio::test]
    async fn another_agents_runtime_name_fails_the_execution_naming_deploy_runtime_name() {
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        let owner = crate::domain::deployment::Owner {
            stack: "agentbuild",
            project: "nexus-ai",
            agent: "billing",
        };
        let now = t("2026-11-28T09:00:00Z");
        runtime_names::claim(&store, "Billing_Bot", &owner, now)
            .await
            .unwrap();
        let mut input = request();
        input["deploy"] = json!({"runtimeName": "Billing_Bot"});
        let err = handle(&deps(store), event(input)).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidRequest(r) if r.field == "deploy.runtimeName"),
            "{err}"
        );
    }

    /// Every scenario above, against one recorder of the SDK operations the fakes stand for.
    #[test]
    fn calls_exactly_the_sdk_operations_the_catalog_lists() {
        let called = crate::testing::fakes::operations_of(
            include_str!("validate_request.rs"),
            crate::testing::fakes::scenarios![
                a_promote_is_never_rebuilt,
                a_prebuilt_image_is_the_promote_of_its_build_though_its_source_expired,
                a_promote_names_a_success_of_this_content_and_another_target_than_latests,
                plans_a_valid_request_hashing_the_source,
                a_valid_request_gets_its_first_running_record_an_invalid_one_nothing,
                uses_the_s3_checksum_when_there_is_one,
                rejects_a_missing_source_naming_the_field,
                rejects_an_oversize_source,
                the_api_door_is_told_by_the_name_it_gives_the_submission,
                a_console_input_cannot_claim_a_door_or_a_submission_time,
                a_pinned_version_that_hashes_otherwise_is_refused,
                a_reused_name_never_resumes_the_build_recorded_at_it,
                the_apis_first_record_is_taken_over_a_record_with_a_build_is_not,
                a_rebuild_takes_everything_trust_bearing_from_the_record_it_rebuilds,
                a_rebuild_of_a_failure_or_of_bytes_that_changed_is_refused,
                rejects_before_touching_s3,
                rejects_an_execution_name_that_cannot_be_a_key,
                another_agents_runtime_name_fails_the_execution_naming_deploy_runtime_name,
            ],
        );
        crate::testing::fakes::assert_operations_are_listed("validate-request", &called);
    }
}
