//! RecordResult: `{state, recordedAt}` -> `builds/<buildId>.json` (+ the agent's latest.json on
//! success) -> `{buildId, status, recordKey}`. Also runs from EventBridge when an execution
//! timed out or was aborted: it stops that execution's build and closes its record. Either way
//! a final record it wrote is announced (`Build Finished`; `domain::announce` decides).

use super::{aws_config, s3_client, Clock};
use crate::adapters::codebuild::CodeBuild;
use crate::adapters::ecr::Ecr;
use crate::adapters::events::EventBridge;
use crate::adapters::s3::S3Store;
use crate::config::{ProcessEnv, RecordResultConfig};
use crate::contract::BuildFinished;
use crate::domain::announce::{closer_announces_found, writer_announces};
use crate::domain::deployment;
use crate::domain::ending::{ending, Ending};
use crate::domain::images::repository_name;
use crate::domain::plan::is_build_id;
use crate::domain::record::{build_key, BuildRecord, ErrorInfo};
use crate::domain::signature::{self, ImageSignature};
use crate::domain::status::BuildStatus;
use crate::model::{ExecutionStatusChange, RecordEvent, RecordInput, RecordOutput};
use crate::ports::{BuildService, Events, ImageSignatures, Images, ObjectStore};
use crate::services::stop::stop_build;
use crate::services::{history, prebuilt, records};
use crate::Error;
use chrono::{DateTime, Utc};

pub struct Deps<S, B, E, I> {
    pub store: S,
    pub builds: B,
    pub events: E,
    pub images: I,
    pub config: RecordResultConfig,
    /// When an EventBridge event carries no time.
    pub now: Clock,
}

impl Deps<S3Store, CodeBuild, EventBridge, Ecr> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = RecordResultConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            store: S3Store::new(s3_client(&sdk), config.bucket.clone()),
            builds: CodeBuild::new(aws_sdk_codebuild::Client::new(&sdk)),
            events: EventBridge::new(
                aws_sdk_eventbridge::Client::new(&sdk),
                config.event_bus.clone(),
            ),
            images: Ecr::new(aws_sdk_ecr::Client::new(&sdk)),
            config,
            now: Utc::now,
        })
    }
}

pub async fn handle<S: ObjectStore, B: BuildService, E: Events, I: Images + ImageSignatures>(
    deps: &Deps<S, B, E, I>,
    event: RecordEvent,
) -> Result<RecordOutput, Error> {
    match event {
        RecordEvent::State(input) => record(deps, input).await,
        RecordEvent::ExecutionEnded(ev) => {
            execution_ended(deps, ev.detail, ev.time.unwrap_or_else(deps.now)).await
        }
    }
}

super::lambda_main!();

async fn record<S: ObjectStore, B: BuildService, E: Events, I: Images + ImageSignatures>(
    deps: &Deps<S, B, E, I>,
    input: RecordInput,
) -> Result<RecordOutput, Error> {
    let state = input.state;
    let caught = state.error.as_ref().map(|e| e.to_info());
    let build = state.build();
    let mut record = BuildRecord::new(&state.plan, build.as_ref(), caught, input.recorded_at);
    // A deploy step's failure is the deployment's, never the build's status.
    record.deployment = deployment::recorded(
        state.plan.deploy.as_ref(),
        state.deployment.clone().map(|d| d.state),
        state.deploy_error.as_ref().map(|e| {
            let e = e.to_info();
            format!("{}: {}", e.kind, e.message)
        }),
        deployment::container_uri(&record.image.repository_uri, record.image.digest.as_deref()),
        input.recorded_at,
    );
    stop_if_running(&deps.builds, &mut record).await?;
    record.image.signature = signature_of(&deps.images, &record).await;
    let key = build_key(&record.build_id);
    // Another writer (the last-resort closer, a cancel) may have closed the record first.
    let offered = record;
    let record = records::write(&deps.store, &offered).await?;
    if record.status.is_success() {
        records::offer_latest(&deps.store, &deps.images, &record).await?;
        prebuilt::note(&deps.store, &record).await?;
    }
    history::note_deploy(&deps.store, &record).await?;
    // Last, so a failed PutEvents retries the whole step: the retry finds its own record
    // final and announces it (at least once).
    if writer_announces(&offered, &record) {
        deps.events.announce(&BuildFinished::of(&record)).await?;
    }
    tracing::info!(
        build_id = %record.build_id,
        project = %record.project,
        agent = %record.agent,
        status = %record.status,
        "recorded"
    );
    Ok(RecordOutput {
        deployment_status: record.deployment.as_ref().map(|d| d.status),
        build_id: record.build_id,
        status: record.status,
        record_key: Some(key),
    })
}

/// ECR's managed signature of the record's image, when the build named one (a container's
/// digest). Never fails the step: the record is what must not be lost, so a failed look is
/// UNAVAILABLE with the reason.
async fn signature_of(
    images: &impl ImageSignatures,
    record: &BuildRecord,
) -> Option<ImageSignature> {
    let digest = record.image.digest.as_deref()?;
    if record
        .artifact
        .as_ref()
        .is_some_and(|a| !a.kind.is_container())
    {
        return None;
    }
    let uri = &record.image.repository_uri;
    let Some(repository) = repository_name(uri) else {
        return Some(ImageSignature::unavailable(format!(
            "{uri} is no ECR repository"
        )));
    };
    match images.signing(repository, digest).await {
        Ok(facts) => Some(signature::summarize(&facts, uri)),
        Err(e) => {
            tracing::warn!(build_id = %record.build_id, error = %e, "signing status unavailable");
            Some(ImageSignature::unavailable(format!(
                "could not ask ECR for the signature: {e}"
            )))
        }
    }
}

/// Compensation: a final record that is no success while its CodeBuild build may still run
/// stops that build (StopBuild of an ended build is a no-op) and says so.
async fn stop_if_running(
    builds: &impl BuildService,
    record: &mut BuildRecord,
) -> Result<(), Error> {
    if !record.must_stop_build() {
        return Ok(());
    }
    let Some(id) = record.codebuild.build_id.clone() else {
        return Ok(());
    };
    let why = record.status.as_str();
    record.codebuild.stopped |= stop_build(builds, &record.build_id, &id, why).await?;
    Ok(())
}

async fn execution_ended<S: ObjectStore, B: BuildService, E: Events, I: Images>(
    deps: &Deps<S, B, E, I>,
    detail: ExecutionStatusChange,
    event_time: DateTime<Utc>,
) -> Result<RecordOutput, Error> {
    // Any unsuccessful end: a FAILED one whose record is still open is a step that failed past
    // its retries and its Catch (RecordResult itself, or an error no Catch matches).
    let Ending::Closed { status, kind, .. } = ending(&detail.status, detail.error.as_deref(), true)
    else {
        return Err(Error::InvalidState(format!(
            "the last-resort closer handles executions that FAILED, TIMED_OUT or were \
             ABORTED, not {}",
            detail.status
        )));
    };
    let nothing = |status| RecordOutput {
        build_id: detail.name.clone(),
        status,
        record_key: None,
        deployment_status: None,
    };
    if !is_build_id(&detail.name) {
        return Ok(nothing(status));
    }
    let key = build_key(&detail.name);
    let Some(stored) = records::read(&deps.store, &key).await? else {
        // Never got past validation (or StartBuild never started a build): nothing to stop.
        return Ok(nothing(status));
    };
    let record = stored.record;
    if record.execution_arn != detail.execution_arn {
        // An earlier execution's record at a reused name (ValidateRequest refused this one):
        // not this execution's to close, nor its build to stop.
        tracing::info!(build_id = %record.build_id, "record of another execution; left alone");
        return Ok(nothing(status));
    }
    let finished_at = detail
        .stop_date
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(event_time);
    let error = closer_error(&detail, kind);
    if record.status.is_final() {
        // Closed by RecordResult (which stops a build it leaves running before it writes), a
        // cancel, or this closer's own earlier attempt.
        let mut would_write = record.clone();
        would_write.finish(status, error, finished_at);
        if closer_announces_found(
            &would_write,
            &record,
            &detail.status,
            detail.error.as_deref(),
        ) {
            deps.events.announce(&BuildFinished::of(&record)).await?;
        }
        return Ok(output(record, key));
    }
    close_open(deps, &detail, record, (status, error, finished_at)).await
}

/// The record is open: its build may still run, whatever the execution's end — stop it, then
/// close the record (conditionally) and announce what stands.
async fn close_open<S: ObjectStore, B: BuildService, E: Events, I: Images>(
    deps: &Deps<S, B, E, I>,
    detail: &ExecutionStatusChange,
    mut record: BuildRecord,
    (status, error, finished_at): (BuildStatus, ErrorInfo, DateTime<Utc>),
) -> Result<RecordOutput, Error> {
    let key = build_key(&record.build_id);
    if let Some(id) = record.codebuild.build_id.clone() {
        let why = detail.status.as_str();
        record.codebuild.stopped |= stop_build(&deps.builds, &record.build_id, &id, why).await?;
    }
    record.finish(status, error, finished_at);
    let offered = record;
    let record = records::write(&deps.store, &offered).await?;
    if writer_announces(&offered, &record) {
        deps.events.announce(&BuildFinished::of(&record)).await?;
    }
    Ok(output(record, key))
}

/// The execution's own error when it has one, else one of the ending's kind.
fn closer_error(detail: &ExecutionStatusChange, kind: &str) -> ErrorInfo {
    match (&detail.error, &detail.cause) {
        (Some(e), cause) => ErrorInfo::from_states(e, cause.as_deref()),
        (None, Some(cause)) => ErrorInfo::new(kind, cause.clone()),
        (None, None) => ErrorInfo::new(
            kind,
            format!(
                "the execution ended {} before its record was final",
                detail.status
            ),
        ),
    }
}

fn output(record: BuildRecord, key: String) -> RecordOutput {
    RecordOutput {
        deployment_status: record.deployment.as_ref().map(|d| d.status),
        build_id: record.build_id,
        status: record.status,
        record_key: Some(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deployment::{Deployment, DeploymentStatus};
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::status::BuildStatus;
    use crate::model::{BuildSlot, CaughtError, DeploymentSlot, PipelineState};
    use crate::testing::fakes::{FakeBuilds, FakeEvents, FakeImages, FakeStore};
    use serde_json::json;

    fn deps() -> Deps<FakeStore, FakeBuilds, FakeEvents, FakeImages> {
        Deps {
            store: FakeStore::default(),
            builds: FakeBuilds::default(),
            events: FakeEvents::default(),
            images: FakeImages::default(),
            config: RecordResultConfig {
                bucket: "own".into(),
                event_bus: "default".into(),
            },
            now: || "2026-11-28T10:05:00Z".parse().unwrap(),
        }
    }

    fn finished(status: BuildStatus) -> RecordEvent {
        let mut b = running();
        b.status = status;
        b.finished_at = Some(t("2026-11-28T10:03:00Z"));
        RecordEvent::State(RecordInput {
            state: PipelineState {
                plan: plan(),
                build: Some(BuildSlot::of(b)),
                error: None,
                deployment: None,
                deploy_error: None,
            },
            recorded_at: t("2026-11-28T10:03:05Z"),
        })
    }

    #[tokio::test]
    async fn success_writes_the_record_and_the_latest_pointer() {
        let d = deps();
        let out = handle(&d, finished(BuildStatus::Succeeded)).await.unwrap();
        assert_eq!(out.record_key.as_deref(), Some("builds/b-1.json"));
        assert_eq!(out.status, BuildStatus::Succeeded);
        assert_eq!(
            d.store.own("builds/b-1.json"),
            d.store.own("agents/nexus-ai/sales/latest.json")
        );
    }

    #[tokio::test]
    async fn failures_are_recorded_without_touching_latest() {
        for s in [
            BuildStatus::Failed,
            BuildStatus::Fault,
            BuildStatus::Stopped,
            BuildStatus::TimedOut,
        ] {
            let d = deps();
            let out = handle(&d, finished(s)).await.unwrap();
            assert_eq!(out.status, s);
            assert!(d.store.own("builds/b-1.json").is_some());
            assert!(d.store.own("agents/nexus-ai/sales/latest.json").is_none());
        }
    }

    #[tokio::test]
    async fn a_promote_is_recorded_and_never_takes_latest() {
        // latest.json names the agent's own build; a promote of an older one (REUSED) is newer
        // by submission, yet latest (what rebuilds rebuild and redeploy) stays.
        let d = deps();
        handle(&d, finished(BuildStatus::Succeeded)).await.unwrap();
        let before = d.store.own("agents/nexus-ai/sales/latest.json");
        let RecordEvent::State(mut input) = finished(BuildStatus::Reused) else {
            unreachable!()
        };
        input.state.plan.build_id = "api-promote".into();
        input.state.plan.requested_at = t("2026-11-28T10:04:00Z");
        input.state.plan.promoted_from = Some("b-0".into());
        let out = handle(&d, RecordEvent::State(input)).await.unwrap();
        assert_eq!(out.status, BuildStatus::Reused);
        let rec: BuildRecord = d.store.own_json("builds/api-promote.json").unwrap();
        assert_eq!(rec.promoted_from.as_deref(), Some("b-0"));
        assert_eq!(d.store.own("agents/nexus-ai/sales/latest.json"), before);
    }

    #[tokio::test]
    async fn writing_the_same_outcome_twice_gives_the_same_objects() {
        let d = deps();
        handle(&d, finished(BuildStatus::Succeeded)).await.unwrap();
        let first = (
            d.store.own("builds/b-1.json"),
            d.store.own("agents/nexus-ai/sales/latest.json"),
        );
        handle(&d, finished(BuildStatus::Succeeded)).await.unwrap();
        let second = (
            d.store.own("builds/b-1.json"),
            d.store.own("agents/nexus-ai/sales/latest.json"),
        );
        assert_eq!(first, second);
    }

    #[tokio::test]
    async fn a_caught_error_is_recorded_as_error_with_name_and_cause() {
        let d = deps();
        let cause = json!({"errorType": "AwsServiceError", "errorMessage": "CodeBuild.StartBuild: AccessDenied"}).to_string();
        let ev = RecordEvent::State(RecordInput {
            state: PipelineState {
                plan: plan(),
                build: None,
                deployment: None,
                deploy_error: None,
                error: Some(CaughtError {
                    error: "AwsServiceError".into(),
                    cause: Some(cause),
                }),
            },
            recorded_at: t("2026-11-28T10:00:30Z"),
        });
        let out = handle(&d, ev).await.unwrap();
        assert_eq!(out.status, BuildStatus::Error);
        let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        let e = rec.error.unwrap();
        assert_eq!(e.kind, "AwsServiceError");
        assert_eq!(e.message, "CodeBuild.StartBuild: AccessDenied");
        assert_eq!(rec.timestamps.finished_at, Some(t("2026-11-28T10:00:30Z")));
    }

    #[tokio::test]
    async fn an_older_build_does_not_replace_a_newer_latest() {
        let d = deps();
        let mut newer = plan();
        newer.build_id = "b-2".into();
        newer.requested_at = t("2026-11-28T11:00:00Z");
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        d.store
            .put_json(
                "agents/nexus-ai/sales/latest.json",
                BuildRecord::new(&newer, Some(&b), None, t("2026-11-28T11:05:00Z")).to_json(),
            )
            .await
            .unwrap();
        handle(&d, finished(BuildStatus::Succeeded)).await.unwrap();
        let latest: BuildRecord = d
            .store
            .own_json("agents/nexus-ai/sales/latest.json")
            .unwrap();
        assert_eq!(latest.build_id, "b-2");
    }

    fn pushed(digest: &str) -> RecordEvent {
        let RecordEvent::State(mut input) = finished(BuildStatus::Succeeded) else {
            unreachable!()
        };
        let slot = input.state.build.as_mut().unwrap();
        slot.observed.state.image_digest = Some(digest.into());
        RecordEvent::State(input)
    }

    #[tokio::test]
    async fn the_record_names_the_images_signature_and_why_there_is_none() {
        use crate::domain::signature::{SignatureStatus, SigningFacts, SigningState};
        let profile = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/agentbuild";
        let d = deps();
        *d.images.signing.borrow_mut() = SigningFacts {
            statuses: vec![SigningState {
                status: "COMPLETE".into(),
                signing_profile_arn: Some(profile.into()),
                failure: None,
            }],
            signatures: vec!["sha256:5151".into()],
        };
        handle(&d, pushed("sha256:abab")).await.unwrap();
        assert_eq!(*d.images.signing_asked.borrow(), ["agentbuild@sha256:abab"]);
        let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        let sig = rec.image.signature.unwrap();
        assert_eq!(sig.status, SignatureStatus::Complete);
        assert_eq!(sig.signing_profile_arn.as_deref(), Some(profile));
        assert_eq!(
            sig.reference.as_deref(),
            Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/agentbuild@sha256:5151")
        );
        // Signing off: no status at all -> UNAVAILABLE with the reason; no digest: nothing asked.
        let d = deps();
        handle(&d, pushed("sha256:abab")).await.unwrap();
        let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        let sig = rec.image.signature.unwrap();
        assert_eq!(sig.status, SignatureStatus::Unavailable);
        assert!(sig.reason.unwrap().contains("ImageSigning is DISABLED"));
        let d = deps();
        handle(&d, finished(BuildStatus::Failed)).await.unwrap();
        let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        assert!(rec.image.signature.is_none() && d.images.signing_asked.borrow().is_empty());
    }

    /// `finished` with its source in the stack's own bucket, and that object present.
    fn finished_in_own_bucket(
        d: &Deps<FakeStore, FakeBuilds, FakeEvents, FakeImages>,
        key: &str,
    ) -> RecordEvent {
        let RecordEvent::State(mut input) = finished(BuildStatus::Succeeded) else {
            unreachable!()
        };
        input.state.plan.source.bucket = "own".into();
        input.state.plan.source.key = key.into();
        input.state.plan.source.uri = format!("s3://own/{key}");
        d.store.seed(key, b"zip".to_vec());
        RecordEvent::State(input)
    }

    #[tokio::test]
    async fn the_source_latest_names_is_kept_and_the_one_it_replaced_may_expire() {
        let d = deps();
        let old = "sources/nexus-ai/sales/old.zip";
        let mut earlier = plan();
        earlier.build_id = "b-0".into();
        earlier.requested_at = t("2026-11-27T10:00:00Z");
        earlier.source.bucket = "own".into();
        earlier.source.key = old.into();
        // A record from before versionIds were recorded: its key's current version is tagged.
        earlier.source.version_id = None;
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        d.store.seed(old, b"zip".to_vec());
        d.store.seed(
            "agents/nexus-ai/sales/latest.json",
            BuildRecord::new(&earlier, Some(&b), None, t("2026-11-27T10:05:00Z")).to_json(),
        );
        d.store.tags.borrow_mut().insert(old.into(), true);
        let new = "sources/nexus-ai/sales/new.zip";
        handle(&d, finished_in_own_bucket(&d, new)).await.unwrap();
        let tags = d.store.tags.borrow().clone();
        assert_eq!(tags.get(new), Some(&true));
        assert_eq!(tags.get(old), Some(&false));
        // Recording the same success again keeps the tags as they are.
        handle(&d, finished_in_own_bucket(&d, new)).await.unwrap();
        assert_eq!(*d.store.tags.borrow(), tags);
    }

    #[tokio::test]
    async fn the_kept_tag_moves_to_the_image_latest_names() {
        let d = deps();
        let repo = "agentbuild";
        let mut earlier = plan();
        earlier.build_id = "b-0".into();
        earlier.requested_at = t("2026-11-27T10:00:00Z");
        earlier.image.tag = "sales-old".into();
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        d.store.seed(
            "agents/nexus-ai/sales/latest.json",
            BuildRecord::new(&earlier, Some(&b), None, t("2026-11-27T10:05:00Z")).to_json(),
        );
        d.images.push(repo, "sales-old", "sha256:old");
        d.images.push(repo, "KEPT.sales-old", "sha256:old");
        let tag = plan().image.tag;
        d.images.push(repo, &tag, "sha256:new");
        handle(&d, finished(BuildStatus::Succeeded)).await.unwrap();
        let kept = format!("KEPT.{tag}");
        assert_eq!(
            d.images
                .tags
                .borrow()
                .get(&format!("{repo}:{kept}"))
                .map(String::as_str),
            Some("sha256:new")
        );
        assert!(
            !d.images.has(repo, "KEPT.sales-old"),
            "the tag left the replaced image"
        );
        assert!(d.images.has(repo, "sales-old"), "which keeps its own tag");
        // Recorded again (a retry): the same tags.
        let tags = d.images.tags.borrow().clone();
        handle(&d, finished(BuildStatus::Succeeded)).await.unwrap();
        assert_eq!(*d.images.tags.borrow(), tags);
        // A failure never touches them.
        let failed = deps();
        failed.images.push(repo, &tag, "sha256:new");
        handle(&failed, finished(BuildStatus::Failed))
            .await
            .unwrap();
        assert!(!failed.images.has(repo, &kept));
    }

    #[tokio::test]
    async fn the_retention_tag_goes_on_the_validated_version_not_the_current_one() {
        let d = deps();
        let key = "sources/nexus-ai/sales/new.zip";
        let RecordEvent::State(mut input) = finished_in_own_bucket(&d, key) else {
            unreachable!()
        };
        // The key was uploaded again after validation: its current version is another one.
        input.state.plan.source.version_id = Some("v-validated".into());
        handle(&d, RecordEvent::State(input)).await.unwrap();
        let versions = d.store.tagged_versions.borrow().clone();
        assert_eq!(versions.get(key), Some(&Some("v-validated".to_string())));
    }

    fn ended(status: &str) -> RecordEvent {
        serde_json::from_value(json!({
            "version": "0", "id": "e", "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states", "account": "1", "time": "2026-11-28T10:10:00Z", "region": "us-east-1",
            "resources": ["arn:aws:states:us-east-1:123456789012:execution:agentbuild:b-1"],
            "detail": {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:agentbuild:b-1", "name": "b-1",
                       "status": status, "stopDate": 1_795_860_000_000_i64}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_timed_out_execution_stops_its_build_and_closes_the_record() {
        let d = deps();
        d.store
            .put_json(
                "builds/b-1.json",
                BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:01:00Z"))
                    .to_json(),
            )
            .await
            .unwrap();
        let out = handle(&d, ended("TIMED_OUT")).await.unwrap();
        assert_eq!(out.status, BuildStatus::TimedOut);
        assert_eq!(*d.builds.stopped.borrow(), ["agentbuild:1"]);
        let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        assert_eq!(rec.status, BuildStatus::TimedOut);
        assert_eq!(rec.error.unwrap().kind, "States.Timeout");
        assert!(rec.timestamps.finished_at.is_some());
    }

    #[tokio::test]
    async fn an_aborted_execution_is_recorded_stopped() {
        let d = deps();
        d.store
            .put_json(
                "builds/b-1.json",
                BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:01:00Z"))
                    .to_json(),
            )
            .await
            .unwrap();
        let out = handle(&d, ended("ABORTED")).await.unwrap();
        assert_eq!(out.status, BuildStatus::Stopped);
    }

    #[tokio::test]
    async fn an_ended_execution_with_a_final_record_or_none_changes_nothing() {
        let d = deps();
        let out = handle(&d, ended("TIMED_OUT")).await.unwrap();
        assert_eq!(out.record_key, None);
        handle(&d, finished(BuildStatus::Failed)).await.unwrap();
        let before = d.store.own("builds/b-1.json");
        let out = handle(&d, ended("ABORTED")).await.unwrap();
        assert_eq!(out.status, BuildStatus::Failed);
        assert_eq!(d.store.own("builds/b-1.json"), before);
        assert!(d.builds.stopped.borrow().is_empty());
    }

    fn caught(build: bool) -> RecordEvent {
        RecordEvent::State(RecordInput {
            state: PipelineState {
                plan: plan(),
                build: build.then(|| BuildSlot::of(running())),
                deployment: None,
                deploy_error: None,
                error: Some(CaughtError {
                    error: "TransientAwsError".into(),
                    cause: Some("S3 unavailable".into()),
                }),
            },
            recorded_at: t("2026-11-28T10:03:05Z"),
        })
    }

    #[tokio::test]
    async fn an_error_while_the_build_runs_stops_the_build_and_says_so() {
        let d = deps();
        let out = handle(&d, caught(true)).await.unwrap();
        assert_eq!(out.status, BuildStatus::Error);
        assert_eq!(*d.builds.stopped.borrow(), ["agentbuild:1"]);
        let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        assert!(rec.codebuild.stopped && rec.error.unwrap().kind == "TransientAwsError");
        // No build known: nothing to stop.
        let d = deps();
        handle(&d, caught(false)).await.unwrap();
        assert!(d.builds.stopped.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_failed_execution_with_an_open_record_is_closed_as_error_and_its_build_stopped() {
        let d = deps();
        let open = BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:01:00Z"));
        d.store
            .put_json("builds/b-1.json", open.to_json())
            .await
            .unwrap();
        let mut ev = ended("FAILED");
        if let RecordEvent::ExecutionEnded(e) = &mut ev {
            e.detail.error = Some("Lambda.Unknown".into());
            e.detail.cause =
                Some(r#"{"errorType":"Lambda.Unknown","errorMessage":"crashed"}"#.into());
        }
        let out = handle(&d, ev).await.unwrap();
        assert_eq!(out.status, BuildStatus::Error);
        let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        assert_eq!(rec.status, BuildStatus::Error);
        assert_eq!(
            rec.error.unwrap(),
            ErrorInfo::new("Lambda.Unknown", "crashed")
        );
        assert!(rec.codebuild.stopped);
        assert_eq!(*d.builds.stopped.borrow(), ["agentbuild:1"]);
    }

    #[tokio::test]
    async fn the_closer_leaves_an_earlier_executions_record_at_a_reused_name_alone() {
        let d = deps();
        let mut earlier =
            BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:01:00Z"));
        earlier.execution_arn.push_str("-earlier");
        d.store
            .put_json("builds/b-1.json", earlier.to_json())
            .await
            .unwrap();
        handle(&d, ended("FAILED")).await.unwrap();
        let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        assert_eq!(rec, earlier, "not this execution's record");
        assert!(d.builds.stopped.borrow().is_empty(), "nor its build");
        assert!(d.events.announced.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_final_record_is_never_replaced_by_a_later_writer() {
        let d = deps();
        handle(&d, ended("ABORTED")).await.unwrap();
        let open = BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:01:00Z"));
        d.store
            .put_json("builds/b-1.json", open.to_json())
            .await
            .unwrap();
        handle(&d, ended("ABORTED")).await.unwrap();
        let stopped = d.store.own("builds/b-1.json");
        // RecordResult running late (it cannot after an abort on AWS; a redrive could).
        let out = handle(&d, finished(BuildStatus::Succeeded)).await.unwrap();
        assert_eq!(
            out.status,
            BuildStatus::Stopped,
            "the first final record stands"
        );
        assert_eq!(d.store.own("builds/b-1.json"), stopped);
        assert!(d.store.own("agents/nexus-ai/sales/latest.json").is_none());
    }

    fn b1(status: &str) -> (String, String) {
        ("b-1".to_string(), status.to_string())
    }

    #[tokio::test]
    async fn every_final_record_is_announced_once_with_its_image_and_key() {
        for s in [
            BuildStatus::Succeeded,
            BuildStatus::Failed,
            BuildStatus::Fault,
            BuildStatus::Stopped,
            BuildStatus::TimedOut,
        ] {
            let d = deps();
            handle(&d, finished(s)).await.unwrap();
            let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
            assert_eq!(*d.events.announced.borrow(), [BuildFinished::of(&rec)]);
            assert_eq!(d.events.seen(), [b1(s.as_str())]);
        }
        let d = deps();
        handle(&d, finished(BuildStatus::Succeeded)).await.unwrap();
        let ev = d.events.announced.borrow()[0].clone();
        assert_eq!(ev.record_key, "builds/b-1.json");
        assert_eq!(
            (ev.project.as_str(), ev.agent.as_str()),
            ("nexus-ai", "sales")
        );
    }

    #[tokio::test]
    async fn a_retry_after_a_failed_announcement_announces_the_same_record() {
        let d = deps();
        d.events
            .fail_next
            .borrow_mut()
            .push_back(Error::TransientAws(
                "EventBridge.PutEvents: throttled".into(),
            ));
        let err = handle(&d, finished(BuildStatus::Succeeded))
            .await
            .unwrap_err();
        assert_eq!(
            err.name(),
            "TransientAwsError",
            "the state machine retries it"
        );
        let written = d.store.own("builds/b-1.json");
        assert!(written.is_some(), "the record was written before the event");
        // The state machine's Retry: the same input again.
        handle(&d, finished(BuildStatus::Succeeded)).await.unwrap();
        assert_eq!(d.store.own("builds/b-1.json"), written);
        assert_eq!(d.events.seen(), [b1("SUCCEEDED")]);
    }

    #[tokio::test]
    async fn a_writer_that_finds_another_outcome_final_announces_nothing() {
        let d = deps();
        let open = BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:01:00Z"));
        d.store.seed("builds/b-1.json", open.to_json());
        handle(&d, ended("ABORTED")).await.unwrap();
        assert_eq!(
            d.events.seen(),
            [b1("STOPPED")],
            "the closer announces its own"
        );
        // RecordResult late (a redrive): the STOPPED record stands, announced by its writer.
        let out = handle(&d, finished(BuildStatus::Succeeded)).await.unwrap();
        assert_eq!(out.status, BuildStatus::Stopped);
        assert_eq!(d.events.seen(), [b1("STOPPED")]);
    }

    #[tokio::test]
    async fn the_closer_announces_what_it_closes_and_again_when_its_event_is_redelivered() {
        let d = deps();
        let open = BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:01:00Z"));
        d.store.seed("builds/b-1.json", open.to_json());
        d.events
            .fail_next
            .borrow_mut()
            .push_back(Error::TransientAws(
                "EventBridge.PutEvents: throttled".into(),
            ));
        handle(&d, ended("TIMED_OUT")).await.unwrap_err();
        // Lambda retries the asynchronous invocation with the same event.
        handle(&d, ended("TIMED_OUT")).await.unwrap();
        assert_eq!(d.events.seen(), [b1("TIMED_OUT")]);
        // A later, other end of the execution (cannot happen, but must not announce again).
        handle(&d, ended("ABORTED")).await.unwrap();
        assert_eq!(d.events.seen(), [b1("TIMED_OUT")]);
    }

    fn failed_execution(error: &str) -> RecordEvent {
        let mut ev = ended("FAILED");
        if let RecordEvent::ExecutionEnded(e) = &mut ev {
            e.detail.error = Some(error.into());
            e.detail.cause = Some("why".into());
        }
        ev
    }

    #[tokio::test]
    async fn the_closer_leaves_a_failed_build_recordresult_announced_alone() {
        let d = deps();
        handle(&d, finished(BuildStatus::Failed)).await.unwrap();
        // The machine's Fail state (Error FAILED) ends the execution after RecordResult.
        handle(&d, failed_execution("FAILED")).await.unwrap();
        assert_eq!(d.events.seen(), [b1("FAILED")]);
    }

    #[tokio::test]
    async fn the_closer_announces_a_final_record_when_recordresult_failed_past_its_retries() {
        let d = deps();
        for _ in 0..5 {
            d.events
                .fail_next
                .borrow_mut()
                .push_back(Error::TransientAws("EventBridge.PutEvents: down".into()));
        }
        for _ in 0..5 {
            handle(&d, finished(BuildStatus::Succeeded))
                .await
                .unwrap_err();
        }
        assert!(d.events.seen().is_empty());
        handle(&d, failed_execution("TransientAwsError"))
            .await
            .unwrap();
        assert_eq!(d.events.seen(), [b1("SUCCEEDED")]);
    }

    fn deployed(deployment: Option<Deployment>, deploy_error: Option<CaughtError>) -> RecordEvent {
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        b.finished_at = Some(t("2026-11-28T10:03:00Z"));
        b.image_digest = Some(format!("sha256:{}", "ab".repeat(32)));
        let mut p = plan();
        p.deploy = Some(
            crate::domain::deploy_request::validate_deploy(
                &json!({}),
                "s",
                "nexus-ai",
                "sales",
                None,
            )
            .unwrap(),
        );
        RecordEvent::State(RecordInput {
            state: PipelineState {
                plan: p,
                build: Some(BuildSlot::of(b)),
                error: None,
                deployment: deployment.map(|state| DeploymentSlot { state }),
                deploy_error,
            },
            recorded_at: t("2026-11-28T10:04:00Z"),
        })
    }

    #[tokio::test]
    async fn a_failed_deploy_step_keeps_the_builds_status_and_records_the_reason() {
        let d = deps();
        let caught = CaughtError {
            error: "AwsServiceError".into(),
            cause: Some(json!({"errorType": "AwsServiceError", "errorMessage": "AgentCore.CreateAgentRuntime: AccessDenied"}).to_string()),
        };
        let out = handle(&d, deployed(None, Some(caught))).await.unwrap();
        assert_eq!(out.status, BuildStatus::Succeeded, "never a build ERROR");
        assert_eq!(out.deployment_status, Some(DeploymentStatus::Failed));
        let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        let dep = rec.deployment.clone().unwrap();
        assert_eq!(dep.status, DeploymentStatus::Failed);
        assert_eq!(
            dep.failure_reason.as_deref(),
            Some("AwsServiceError: AgentCore.CreateAgentRuntime: AccessDenied")
        );
        assert_eq!(
            dep.container_uri,
            Some(format!(
                "{}@sha256:{}",
                rec.image.repository_uri,
                "ab".repeat(32)
            ))
        );
        assert!(rec.error.is_none());
        // The image is good: it is the agent's latest, and the event carries the deployment.
        assert!(d.store.own("agents/nexus-ai/sales/latest.json").is_some());
        assert_eq!(d.events.announced.borrow()[0].deployment, rec.deployment);
    }

    #[tokio::test]
    async fn a_ready_deployment_is_recorded_without_the_states_wait_fields() {
        let d = deps();
        let ready: Deployment = serde_json::from_value(json!({
            "status": "READY", "runtimeId": "rt-1", "runtimeArn": "arn:rt", "runtimeName": "n",
            "runtimeVersion": "2", "containerUri": "r@sha256:00", "action": "UPDATED",
            "startedAt": "2026-11-28T10:03:10Z", "finishedAt": "2026-11-28T10:03:50Z",
            "deadline": "2026-11-28T10:18:10Z", "checks": 3
        }))
        .unwrap();
        let out = handle(&d, deployed(Some(ready), None)).await.unwrap();
        assert_eq!(out.deployment_status, Some(DeploymentStatus::Ready));
        let rec: serde_json::Value = d.store.own_json("builds/b-1.json").unwrap();
        assert_eq!(rec["deployment"]["status"], "READY");
        assert_eq!(rec["deployment"]["runtimeVersion"], "2");
        assert!(
            rec["deployment"].get("deadline").is_none()
                && rec["deployment"].get("checks").is_none()
        );
        assert_eq!(rec["status"], "SUCCEEDED");
    }

    /// Every scenario above, against one recorder of the SDK operations the fakes stand for.
    #[test]
    fn calls_exactly_the_sdk_operations_the_catalog_lists() {
        let called = crate::testing::fakes::operations_of(
            include_str!("record_result.rs"),
            crate::testing::fakes::scenarios![
                a_promote_is_recorded_and_never_takes_latest,
                success_writes_the_record_and_the_latest_pointer,
                failures_are_recorded_without_touching_latest,
                writing_the_same_outcome_twice_gives_the_same_objects,
                a_caught_error_is_recorded_as_error_with_name_and_cause,
                an_older_build_does_not_replace_a_newer_latest,
                the_source_latest_names_is_kept_and_the_one_it_replaced_may_expire,
                the_retention_tag_goes_on_the_validated_version_not_the_current_one,
                the_kept_tag_moves_to_the_image_latest_names,
                a_timed_out_execution_stops_its_build_and_closes_the_record,
                an_aborted_execution_is_recorded_stopped,
                an_ended_execution_with_a_final_record_or_none_changes_nothing,
                an_error_while_the_build_runs_stops_the_build_and_says_so,
                a_failed_execution_with_an_open_record_is_closed_as_error_and_its_build_stopped,
                a_final_record_is_never_replaced_by_a_later_writer,
                every_final_record_is_announced_once_with_its_image_and_key,
                a_retry_after_a_failed_announcement_announces_the_same_record,
                a_writer_that_finds_another_outcome_final_announces_nothing,
                the_closer_announces_what_it_closes_and_again_when_its_event_is_redelivered,
                the_closer_leaves_a_failed_build_recordresult_announced_alone,
                the_closer_leaves_an_earlier_executions_record_at_a_reused_name_alone,
                the_closer_announces_a_final_record_when_recordresult_failed_past_its_retries,
                a_failed_deploy_step_keeps_the_builds_status_and_records_the_reason,
                a_ready_deployment_is_recorded_without_the_states_wait_fields,
                the_record_names_the_images_signature_and_why_there_is_none,
            ],
        );
        crate::testing::fakes::assert_operations_are_listed("record-result", &called);
    }

    #[test]
    fn a_malformed_input_fails_naming_its_kind_and_field_path() {
        let sample = |name: &str| -> serde_json::Value {
            let path = format!(
                "{}/../../events/record-result/{name}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        let err = |v: serde_json::Value| {
            serde_json::from_value::<RecordEvent>(v)
                .unwrap_err()
                .to_string()
        };
        let mut record = sample("succeeded");
        record["state"]["plan"]
            .as_object_mut()
            .unwrap()
            .remove("buildId");
        let e = err(record);
        assert!(
            e.starts_with("record: state.plan: missing field `buildId`"),
            "{e}"
        );
        let mut record = sample("succeeded");
        record["recordedAt"] = json!(12);
        assert!(err(record).starts_with("record: recordedAt: "));
        let mut close = sample("execution-aborted");
        close["detail"]["name"] = json!(["not", "a", "name"]);
        let e = err(close);
        assert!(e.starts_with("close: detail.name: invalid type"), "{e}");
        let mut other = sample("execution-aborted");
        other["detail-type"] = json!("Something Else");
        assert!(err(other).starts_with("close: detail-type: "));
    }
}
