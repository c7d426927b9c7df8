//! StartBuild: `{plan}` -> `{codebuildBuildId, build}` (never the plan); REUSED when the image was built before, else one
//! CodeBuild build per execution, however often this step is retried.

use super::{aws_config, s3_client, Clock};
use crate::adapters::codebuild::CodeBuildProject;
use crate::adapters::ecr::Ecr;
use crate::adapters::s3::S3Store;
use crate::config::{ProcessEnv, StartBuildConfig};
use crate::domain::artifact::DependencyLayer;
use crate::domain::plan::cache_tag;
use crate::domain::plan::BuildPlan;
use crate::domain::record::{build_key, latest_key, BuildRecord, BuildState, Reuse};
use crate::domain::secrets::{secret_env_name, SECRET_IDS_ENV};
use crate::domain::start::{decide, Start};
use crate::domain::status::BuildStatus;
use crate::model::{StartInput, StartOutput};
use crate::ports::{BuildStarter, Images, ObjectStore, StartRequest};
use crate::services::stop::stop_build;
use crate::services::{images, records};
use crate::Error;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub struct Deps<S, B, I> {
    pub store: S,
    /// The image project's builds.
    pub builds: B,
    /// The code project's builds: dependency layers of code artifacts.
    pub layer_builds: B,
    pub images: I,
    pub config: StartBuildConfig,
    pub now: Clock,
}

impl Deps<S3Store, CodeBuildProject, Ecr> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = StartBuildConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            store: S3Store::new(s3_client(&sdk), config.bucket.clone()),
            builds: CodeBuildProject::new(
                aws_sdk_codebuild::Client::new(&sdk),
                config.project.clone(),
            ),
            layer_builds: CodeBuildProject::new(
                aws_sdk_codebuild::Client::new(&sdk),
                config.layer_project.clone(),
            ),
            images: Ecr::new(aws_sdk_ecr::Client::new(&sdk)),
            config,
            now: Utc::now,
        })
    }
}

impl<S, B, I> Deps<S, B, I> {
    /// The project that builds what `plan` needs: its image, or its code's dependency layer.
    fn builds_for(&self, plan: &BuildPlan) -> &B {
        match plan.code() {
            Some(_) => &self.layer_builds,
            None => &self.builds,
        }
    }
}

pub async fn handle<S: ObjectStore, B: BuildStarter, I: Images>(
    deps: &Deps<S, B, I>,
    input: StartInput,
) -> Result<StartOutput, Error> {
    let plan = input.plan;
    if plan.code().is_some() && input.dependencies.is_none() {
        return Err(Error::InvalidState(
            "a code build starts CodeBuild only for its missing dependency layer".into(),
        ));
    }
    let now = (deps.now)();
    let record = read_record(&deps.store, &build_key(&plan.build_id)).await?;
    // What an unforced build may reuse: the agent's latest, or for a promote the promoted build.
    let latest = match (&plan.promoted_from, plan.force) {
        (Some(from), _) => read_record(&deps.store, &build_key(from)).await?,
        (None, true) => None,
        (None, false) => read_record(&deps.store, &latest_key(&plan.project, &plan.agent)).await?,
    };
    match decide(&plan, record.as_ref(), latest.as_ref(), now) {
        Start::Resume {
            codebuild_id,
            since,
            polls,
        } => resume(deps, &plan, codebuild_id, since, polls).await,
        Start::LookUp { since, polls } => {
            match deps.builds_for(&plan).find_started(&plan.build_id).await? {
                Some(id) => resume(deps, &plan, id, since, polls).await,
                None => start(deps, &plan, input.dependencies.as_ref()).await,
            }
        }
        Start::Reuse(reused) => match latest.as_ref() {
            // REUSED only names an image that is still in ECR, else the request builds.
            Some(l) if images::still_there(&deps.images, &plan, l, &reused).await? => {
                tracing::info!(build_id = %plan.build_id, reused_from = %reused.from, "image exists; reusing");
                Ok(started(reused_state(reused, now)))
            }
            _ => start_unless_promote(deps, &plan, input.dependencies.as_ref()).await,
        },
        Start::Start => start_unless_promote(deps, &plan, input.dependencies.as_ref()).await,
        Start::Closed(standing) => Ok(started(closed(*standing, now))),
    }
}

super::lambda_main!();

async fn resume<S: ObjectStore, B: BuildStarter, I>(
    deps: &Deps<S, B, I>,
    plan: &BuildPlan,
    id: String,
    since: DateTime<Utc>,
    polls: u32,
) -> Result<StartOutput, Error> {
    tracing::info!(build_id = %plan.build_id, codebuild_id = %id, "build already started; resuming");
    let build = running(deps, plan, id.clone(), since, polls);
    name_the_build(deps, plan, &id, build, (deps.now)()).await
}

/// The RUNNING record that names CodeBuild build `id`; a record closed meanwhile (a cancel)
/// stands, and the build it could not name is stopped.
async fn name_the_build<S: ObjectStore, B: BuildStarter, I>(
    deps: &Deps<S, B, I>,
    plan: &BuildPlan,
    id: &str,
    build: BuildState,
    now: DateTime<Utc>,
) -> Result<StartOutput, Error> {
    let standing = records::write(
        &deps.store,
        &BuildRecord::new(plan, Some(&build), None, now),
    )
    .await?;
    if standing.status.is_final() {
        stop_unnamed(deps, plan, id, &standing).await?;
        return Ok(started(closed(standing, now)));
    }
    Ok(started(build))
}

/// The record was closed (a cancel) while CodeBuild was being asked for the build `id`: its
/// writer could not name that build, so nobody else stops it — this step does. (A final
/// record that names the build was closed by a writer that stopped it.)
async fn stop_unnamed<S, B: BuildStarter, I>(
    deps: &Deps<S, B, I>,
    plan: &BuildPlan,
    id: &str,
    standing: &BuildRecord,
) -> Result<(), Error> {
    if standing.codebuild.build_id.as_deref() == Some(id) {
        return Ok(());
    }
    tracing::info!(build_id = %plan.build_id, codebuild_id = id, status = %standing.status, "record closed while the build started; stopping it");
    stop_build(
        deps.builds_for(plan),
        &plan.build_id,
        id,
        "the record was closed first",
    )
    .await?;
    Ok(())
}

/// A promote deploys what its build made and never builds: its image gone from ECR (or its
/// record unreadable as a reuse) ends it here, naming the build, with nothing started.
async fn start_unless_promote<S: ObjectStore, B: BuildStarter, I>(
    deps: &Deps<S, B, I>,
    plan: &BuildPlan,
    layer: Option<&DependencyLayer>,
) -> Result<StartOutput, Error> {
    match &plan.promoted_from {
        Some(from) => Err(crate::domain::request::RequestError::new(
            crate::domain::promote::FIELD,
            format!("the image build {from} made is no longer in ECR: nothing to promote (build it again)"),
        )
        .into()),
        None => start(deps, plan, layer).await,
    }
}

/// The marker, then CodeBuild's StartBuild, then the RUNNING record that names the build.
async fn start<S: ObjectStore, B: BuildStarter, I>(
    deps: &Deps<S, B, I>,
    plan: &BuildPlan,
    layer: Option<&DependencyLayer>,
) -> Result<StartOutput, Error> {
    let now = (deps.now)();
    let marker = BuildState {
        started_at: now,
        ..empty_state(now)
    };
    let mut marked = BuildRecord::new(plan, Some(&marker), None, now);
    marked.codebuild.start_requested_at = Some(now);
    let standing = records::write(&deps.store, &marked).await?;
    if standing.status.is_final() {
        // Cancelled (or closed) before CodeBuild was asked: start nothing.
        tracing::info!(build_id = %plan.build_id, status = %standing.status, "record already final; no build started");
        return Ok(started(closed(standing, now)));
    }
    let request = match layer {
        Some(layer) => layer_request(&deps.config, plan, layer),
        None => start_request(&deps.config, plan),
    };
    let id = deps.builds_for(plan).start(&request).await?;
    tracing::info!(build_id = %plan.build_id, codebuild_id = %id, "build started");
    let build = running(deps, plan, id.clone(), now, 0);
    name_the_build(deps, plan, &id, build, now).await
}

fn reused_state(reused: Reuse, now: DateTime<Utc>) -> BuildState {
    BuildState {
        status: BuildStatus::Reused,
        started_at: now,
        deadline: now,
        await_seconds: 0,
        finished_at: Some(now),
        image_digest: reused.digest,
        image_uri: reused.uri,
        reused_from: Some(reused.from),
        image_tag: Some(reused.tag),
        attestations_uri: reused.attestations,
        ..empty_state(now)
    }
}

/// A record that was closed first (a cancel): the build as it stands in it.
fn closed(standing: BuildRecord, now: DateTime<Utc>) -> BuildState {
    BuildState {
        status: standing.status,
        codebuild_build_id: standing.codebuild.build_id,
        finished_at: standing.timestamps.finished_at.or(Some(now)),
        error: standing.error,
        ..empty_state(now)
    }
}

fn started(build: BuildState) -> StartOutput {
    StartOutput {
        codebuild_build_id: build.codebuild_build_id.clone(),
        build,
    }
}

async fn read_record(store: &impl ObjectStore, key: &str) -> Result<Option<BuildRecord>, Error> {
    crate::services::objects::read_json(store, key, "a build record").await
}

fn empty_state(now: DateTime<Utc>) -> BuildState {
    BuildState::starting(now)
}

fn running<S, B, I>(
    deps: &Deps<S, B, I>,
    plan: &BuildPlan,
    codebuild_id: String,
    started_at: DateTime<Utc>,
    polls: u32,
) -> BuildState {
    let limit = deps.config.deadline_seconds();
    let seconds = plan.deadline_seconds.map_or(limit, |s| s.min(limit));
    let deadline = started_at + Duration::seconds(seconds as i64);
    let to_deadline = (deadline - (deps.now)()).num_seconds().max(0) as u64;
    BuildState {
        codebuild_build_id: Some(codebuild_id),
        deadline,
        // AwaitBuild's first wait: CodeBuild's event ends it, else CheckBuild looks then.
        await_seconds: deps.config.fallback.await_seconds(to_deadline),
        polls,
        ..empty_state(started_at)
    }
}

/// Every per-build value reaches the buildspec as an environment variable: the buildspec is
/// the project's own and is never overridden. Build secrets travel as references: one SECRETS_MANAGER variable per id (its ARN), and the
/// ids, as a JSON list, in plain text.
pub fn start_request(config: &StartBuildConfig, plan: &BuildPlan) -> StartRequest {
    let build_args = serde_json::to_string(&plan.build_args).expect("a string map serializes");
    let secret_ids: Vec<&String> = plan.build_secrets.keys().collect();
    let secret_ids = serde_json::to_string(&secret_ids).expect("a list of strings serializes");
    let mut environment = BTreeMap::from([
        ("AGENTBUILD_BUILD_ID".into(), plan.build_id.clone()),
        (
            "AGENTBUILD_IMAGE_REPOSITORY".into(),
            plan.image.repository_uri.clone(),
        ),
        ("AGENTBUILD_IMAGE_TAG".into(), plan.image.tag.clone()),
        ("AGENTBUILD_DOCKERFILE".into(), plan.dockerfile.clone()),
        ("AGENTBUILD_PLATFORM".into(), plan.platform.as_str().into()),
        ("AGENTBUILD_BUILD_ARGS".into(), build_args),
        (SECRET_IDS_ENV.into(), secret_ids),
        ("AGENTBUILD_FORCE".into(), plan.force.to_string()),
        (
            "AGENTBUILD_CACHE_TAG".into(),
            cache_tag(&plan.project, &plan.agent, plan.platform),
        ),
    ]);
    if let Some(entry_point) = &plan.entry_point {
        environment.insert("AGENTBUILD_ENTRY_POINT".into(), entry_point.clone());
    }
    StartRequest {
        idempotency_token: idempotency_token(&plan.execution_arn),
        source_location: Some(format!("{}/{}", plan.source.bucket, plan.source.key)),
        source_version: plan.source.version_id.clone(),
        environment,
        secrets: plan
            .build_secrets
            .iter()
            .map(|(id, arn)| (secret_env_name(id), arn.clone()))
            .collect(),
        timeout_minutes: config.build_timeout_minutes,
        queued_timeout_minutes: config.queued_timeout_minutes,
    }
}

/// The layer project runs on Lambda compute: a build lasts at most 15 minutes.
pub const LAYER_TIMEOUT_MINUTES: i32 = 15;

/// A dependency layer's build (the layer project): no source — the buildspec
/// (buildspec-code.yml) reads only the canonical requirements PrepareCode wrote at
/// `dependencies/<key>.requirements.txt`, never the context's files, and uploads the layer.
pub fn layer_request(
    config: &StartBuildConfig,
    plan: &BuildPlan,
    layer: &DependencyLayer,
) -> StartRequest {
    let runtime = plan.code().map(|(_, r)| r).unwrap_or_default();
    let secret_ids: Vec<&String> = plan.build_secrets.keys().collect();
    let secret_ids = serde_json::to_string(&secret_ids).expect("a list of strings serializes");
    StartRequest {
        idempotency_token: idempotency_token(&plan.execution_arn),
        source_location: None,
        source_version: None,
        environment: BTreeMap::from([
            ("AGENTBUILD_BUILD_ID".into(), plan.build_id.clone()),
            ("AGENTBUILD_DEPENDENCIES_KEY".into(), layer.key.clone()),
            ("AGENTBUILD_RUNTIME".into(), runtime.as_str().into()),
            (SECRET_IDS_ENV.into(), secret_ids),
        ]),
        // As for an image: references only, resolved by CodeBuild; the buildspec gives them to
        // uv's environment alone (a private index).
        secrets: plan
            .build_secrets
            .iter()
            .map(|(id, arn)| (secret_env_name(id), arn.clone()))
            .collect(),
        timeout_minutes: config.build_timeout_minutes.min(LAYER_TIMEOUT_MINUTES),
        queued_timeout_minutes: config.queued_timeout_minutes,
    }
}

/// One token per execution: CodeBuild answers a repeated StartBuild within 5 minutes with the
/// same build.
pub fn idempotency_token(execution_arn: &str) -> String {
    hex::encode(Sha256::digest(execution_arn.as_bytes()))[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fallback::Fallback;
    use crate::domain::record::tests::{plan, t};
    use crate::testing::fakes::{FakeBuilds, FakeImages, FakeStore};

    fn deps() -> Deps<FakeStore, FakeBuilds, FakeImages> {
        Deps {
            store: FakeStore::default(),
            builds: FakeBuilds::default(),
            layer_builds: FakeBuilds::default(),
            images: FakeImages::default(),
            config: StartBuildConfig {
                bucket: "own".into(),
                project: "proj".into(),
                layer_project: "code-proj".into(),
                build_timeout_minutes: 60,
                queued_timeout_minutes: 30,
                fallback: Fallback::new(600),
            },
            now: || "2026-11-28T10:00:10Z".parse().unwrap(),
        }
    }

    fn input() -> StartInput {
        StartInput {
            plan: plan(),
            dependencies: None,
        }
    }

    #[tokio::test]
    async fn starts_one_build_and_writes_a_running_record() {
        let d = deps();
        let out = handle(&d, input()).await.unwrap();
        assert_eq!(out.build.status, BuildStatus::Running);
        assert_eq!(out.build.codebuild_build_id.as_deref(), Some("proj:1"));
        assert_eq!(out.build.await_seconds, 600);
        assert_eq!(out.build.deadline, t("2026-11-28T11:35:10Z"));
        let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
        assert_eq!(rec.status, BuildStatus::Running);
        assert_eq!(rec.codebuild.build_id.as_deref(), Some("proj:1"));
    }

    #[tokio::test]
    async fn passes_per_build_values_only_as_environment() {
        let d = deps();
        let mut p = plan();
        p.build_args.insert("X".into(), "$(id); `rm -rf /`".into());
        handle(
            &d,
            StartInput {
                plan: p.clone(),
                dependencies: None,
            },
        )
        .await
        .unwrap();
        let req = d.builds.started.borrow()[0].clone();
        assert_eq!(
            req.source_location.as_deref(),
            Some("bkt/sources/nexus-ai/sales/x.zip")
        );
        assert_eq!(
            req.source_version.as_deref(),
            Some("v-1"),
            "the validated version"
        );
        assert_eq!(req.environment["AGENTBUILD_FORCE"], "false");
        assert_eq!(
            req.environment["AGENTBUILD_CACHE_TAG"],
            "nexus-ai.sales.arm64"
        );
        assert_eq!(req.environment["AGENTBUILD_IMAGE_TAG"], p.image.tag);
        assert_eq!(req.environment["AGENTBUILD_PLATFORM"], "linux/arm64");
        assert_eq!(
            req.environment["AGENTBUILD_BUILD_ARGS"],
            r#"{"X":"$(id); `rm -rf /`"}"#
        );
        assert_eq!(req.idempotency_token, idempotency_token(&p.execution_arn));
        assert_eq!((req.timeout_minutes, req.queued_timeout_minutes), (60, 30));
    }

    #[tokio::test]
    async fn build_secrets_go_to_codebuild_as_secret_references_never_in_plain_text() {
        let d = deps();
        let mut p = plan();
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:agentbuild/pypi-AbCdEf";
        p.build_secrets.insert("PYPI_TOKEN".into(), arn.into());
        p.build_secrets.insert("NPM".into(), format!("{arn}2"));
        p.entry_point = Some("src/main.py".into());
        handle(
            &d,
            StartInput {
                plan: p,
                dependencies: None,
            },
        )
        .await
        .unwrap();
        let req = d.builds.started.borrow()[0].clone();
        assert_eq!(
            req.secrets,
            BTreeMap::from([
                ("AGENTBUILD_SECRET_NPM".to_string(), format!("{arn}2")),
                ("AGENTBUILD_SECRET_PYPI_TOKEN".to_string(), arn.to_string()),
            ])
        );
        assert_eq!(
            req.environment["AGENTBUILD_BUILD_SECRETS"],
            r#"["NPM","PYPI_TOKEN"]"#
        );
        assert_eq!(req.environment["AGENTBUILD_ENTRY_POINT"], "src/main.py");
        for (name, value) in &req.environment {
            assert!(!value.contains("secretsmanager"), "{name}={value}");
            assert!(!req.secrets.contains_key(name), "{name} is both");
        }
        // Without secrets: an empty list, and no secret variable.
        let d = deps();
        handle(&d, input()).await.unwrap();
        let req = d.builds.started.borrow()[0].clone();
        assert_eq!(req.environment["AGENTBUILD_BUILD_SECRETS"], "[]");
        assert!(req.secrets.is_empty());
        assert!(!req.environment.contains_key("AGENTBUILD_ENTRY_POINT"));
    }

    #[tokio::test]
    async fn a_retry_resumes_the_build_this_execution_started() {
        let d = deps();
        let first = handle(&d, input()).await.unwrap();
        let again = handle(&d, input()).await.unwrap();
        assert_eq!(d.builds.started.borrow().len(), 1);
        assert_eq!(
            again.build.codebuild_build_id,
            first.build.codebuild_build_id
        );
        assert_eq!(again.build.deadline, first.build.deadline);
    }

    #[tokio::test]
    async fn a_retry_past_the_token_window_finds_the_build_instead_of_starting_another() {
        // StartBuild reached CodeBuild, then crashed before its RUNNING record: the marker
        // remains, and the retry comes more than 5 minutes later (a redrive).
        let d = deps();
        let crashed = d
            .builds
            .start(&start_request(&d.config, &plan()))
            .await
            .unwrap();
        let marker = BuildState {
            started_at: t("2026-11-28T10:00:00Z"),
            ..empty_state(t("2026-11-28T10:00:00Z"))
        };
        let mut marked = BuildRecord::new(&plan(), Some(&marker), None, t("2026-11-28T10:00:00Z"));
        marked.codebuild.start_requested_at = Some(t("2026-11-28T10:00:00Z"));
        d.store
            .put_json("builds/b-1.json", marked.to_json())
            .await
            .unwrap();
        let late = Deps {
            now: || "2026-11-28T10:06:00Z".parse().unwrap(),
            ..deps_sharing(&d)
        };
        let out = handle(&late, input()).await.unwrap();
        assert_eq!(
            out.build.codebuild_build_id.as_deref(),
            Some(crashed.as_str())
        );
        assert_eq!(
            late.builds.started.borrow().len(),
            1,
            "never a second build"
        );
        let rec: BuildRecord = late.store.own_json("builds/b-1.json").unwrap();
        assert_eq!(rec.codebuild.build_id, Some(crashed));
    }

    #[tokio::test]
    async fn a_build_cancelled_before_it_started_is_never_started() {
        let d = deps();
        let mut stopped = BuildRecord::new(&plan(), None, None, t("2026-11-28T10:00:05Z"));
        stopped.status = BuildStatus::Stopped;
        d.store
            .put_json("builds/b-1.json", stopped.to_json())
            .await
            .unwrap();
        let out = handle(&d, input()).await.unwrap();
        assert_eq!(out.build.status, BuildStatus::Stopped);
        assert!(d.builds.started.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_build_started_while_a_cancel_closed_the_record_is_stopped() {
        let d = deps();
        let mut cancelled = BuildRecord::new(&plan(), None, None, t("2026-11-28T10:00:05Z"));
        cancelled.status = BuildStatus::Stopped;
        stop_unnamed(&d, &plan(), "proj:7", &cancelled)
            .await
            .unwrap();
        assert_eq!(*d.builds.stopped.borrow(), vec!["proj:7".to_string()]);
        // A final record that names the build was closed by a writer that stopped it.
        cancelled.codebuild.build_id = Some("proj:7".into());
        stop_unnamed(&d, &plan(), "proj:7", &cancelled)
            .await
            .unwrap();
        assert_eq!(d.builds.stopped.borrow().len(), 1);
    }

    #[tokio::test]
    async fn a_retry_inside_the_token_window_starts_again_with_the_same_token() {
        let d = deps();
        let marker = BuildState {
            started_at: t("2026-11-28T10:00:00Z"),
            ..empty_state(t("2026-11-28T10:00:00Z"))
        };
        d.store
            .put_json(
                "builds/b-1.json",
                BuildRecord::new(&plan(), Some(&marker), None, t("2026-11-28T10:00:00Z")).to_json(),
            )
            .await
            .unwrap();
        handle(&d, input()).await.unwrap();
        let started = d.builds.started.borrow();
        assert_eq!(started.len(), 1);
        assert_eq!(
            started[0].idempotency_token,
            idempotency_token(&plan().execution_arn)
        );
    }

    /// The same fakes under another clock.
    fn deps_sharing(
        d: &Deps<FakeStore, FakeBuilds, FakeImages>,
    ) -> Deps<FakeStore, FakeBuilds, FakeImages> {
        let store = FakeStore::default();
        if let Some(b) = d.store.own("builds/b-1.json") {
            store.seed("builds/b-1.json", b);
        }
        let builds = FakeBuilds::default();
        builds.started.replace(d.builds.started.borrow().clone());
        Deps {
            store,
            builds,
            layer_builds: FakeBuilds::default(),
            images: FakeImages::default(),
            config: d.config.clone(),
            now: d.now,
        }
    }

    #[tokio::test]
    async fn same_execution_same_token_other_execution_other_token() {
        assert_eq!(idempotency_token("arn:a"), idempotency_token("arn:a"));
        assert_ne!(idempotency_token("arn:a"), idempotency_token("arn:b"));
        assert_eq!(idempotency_token("arn:a").len(), 32);
    }

    fn latest(tag: &str, status: BuildStatus) -> Vec<u8> {
        let mut b = crate::domain::record::tests::running();
        b.status = status;
        b.image_digest = Some("sha256:feed".into());
        b.attestations_uri = Some(format!("s3://own/attestations/{tag}/"));
        b.finished_at = Some(t("2026-11-27T10:00:00Z"));
        let mut p = plan();
        p.build_id = "older".into();
        p.image.tag = tag.into();
        BuildRecord::new(&p, Some(&b), None, t("2026-11-27T10:00:00Z")).to_json()
    }

    const REPO: &str = "agentbuild";

    #[tokio::test]
    async fn reuses_an_image_built_from_the_same_inputs() {
        let d = deps();
        d.images.push(REPO, &plan().image.tag, "sha256:feed");
        d.store
            .put_json(
                "agents/nexus-ai/sales/latest.json",
                latest(&plan().image.tag, BuildStatus::Succeeded),
            )
            .await
            .unwrap();
        let out = handle(&d, input()).await.unwrap();
        assert_eq!(out.build.status, BuildStatus::Reused);
        assert_eq!(out.build.reused_from.as_deref(), Some("older"));
        assert_eq!(out.build.image_digest.as_deref(), Some("sha256:feed"));
        // The reused image's SBOM and provenance are the reused build's: the record names them.
        let attestations = format!("s3://own/attestations/{}/", plan().image.tag);
        assert_eq!(out.build.attestations_uri, Some(attestations.clone()));
        let record = BuildRecord::new(&plan(), Some(&out.build), None, t("2026-11-28T10:00:09Z"));
        assert_eq!(record.image.attestations, Some(attestations));
        assert!(d.builds.started.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_promote_reuses_the_promoted_builds_own_image_though_latest_is_another() {
        let d = deps();
        d.images.push(REPO, &plan().image.tag, "sha256:feed");
        d.store.seed(
            "builds/older.json",
            latest(&plan().image.tag, BuildStatus::Succeeded),
        );
        d.store.seed(
            "agents/nexus-ai/sales/latest.json",
            latest("sales-other", BuildStatus::Succeeded),
        );
        let mut p = plan();
        p.promoted_from = Some("older".into());
        let promote = StartInput {
            plan: p,
            dependencies: None,
        };
        let out = handle(&d, promote.clone()).await.unwrap();
        assert_eq!(out.build.status, BuildStatus::Reused);
        assert_eq!(out.build.reused_from.as_deref(), Some("older"));
        assert_eq!(out.build.image_digest.as_deref(), Some("sha256:feed"));
        assert!(d.builds.started.borrow().is_empty(), "no CodeBuild build");
        // The promoted image gone from ECR: the promote fails naming it, and builds nothing.
        let gone = deps();
        gone.store.seed(
            "builds/older.json",
            latest(&plan().image.tag, BuildStatus::Succeeded),
        );
        let err = handle(&gone, promote).await.unwrap_err();
        assert_eq!(err.name(), "InvalidRequest");
        assert!(err.to_string().contains("promote.buildId"), "{err}");
        assert!(gone.builds.started.borrow().is_empty());
    }

    #[tokio::test]
    async fn builds_when_the_image_latest_names_is_gone_from_ecr() {
        // Expired or deleted by hand, or its tag now names another image: REUSED would point
        // at nothing (a deploy of it would fail), so the request builds.
        for pushed in [None, Some("sha256:other")] {
            let d = deps();
            if let Some(digest) = pushed {
                d.images.push(REPO, &plan().image.tag, digest);
            }
            d.store
                .put_json(
                    "agents/nexus-ai/sales/latest.json",
                    latest(&plan().image.tag, BuildStatus::Succeeded),
                )
                .await
                .unwrap();
            let out = handle(&d, input()).await.unwrap();
            assert_eq!(out.build.status, BuildStatus::Running, "{pushed:?}");
            assert_eq!(d.builds.started.borrow().len(), 1);
        }
    }

    #[tokio::test]
    async fn builds_when_forced_or_inputs_differ_or_last_build_failed() {
        for (tag, status, force) in [
            (plan().image.tag, BuildStatus::Succeeded, true),
            ("sales-other".to_string(), BuildStatus::Succeeded, false),
            (plan().image.tag, BuildStatus::Failed, false),
        ] {
            let d = deps();
            d.store
                .put_json("agents/nexus-ai/sales/latest.json", latest(&tag, status))
                .await
                .unwrap();
            let mut p = plan();
            p.force = force;
            let out = handle(
                &d,
                StartInput {
                    plan: p,
                    dependencies: None,
                },
            )
            .await
            .unwrap();
            assert_eq!(
                out.build.status,
                BuildStatus::Running,
                "{tag} {status} {force}"
            );
            assert_eq!(d.builds.started.borrow().len(), 1);
        }
    }

    #[tokio::test]
    async fn a_forced_build_runs_with_its_own_tag_and_is_reused_by_the_next_unforced_request() {
        let d = deps();
        d.store
            .put_json(
                "agents/nexus-ai/sales/latest.json",
                latest(&plan().image.tag, BuildStatus::Succeeded),
            )
            .await
            .unwrap();
        let mut forced = plan();
        forced.force = true;
        forced.image.content_tag = Some(forced.image.tag.clone());
        forced.image.tag = crate::domain::plan::forced_tag(&forced.image.tag, "b-1");
        let out = handle(
            &d,
            StartInput {
                plan: forced.clone(),
                dependencies: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(
            out.build.status,
            BuildStatus::Running,
            "force always builds"
        );
        let req = d.builds.started.borrow()[0].clone();
        assert_eq!(req.environment["AGENTBUILD_FORCE"], "true");
        assert_eq!(req.environment["AGENTBUILD_IMAGE_TAG"], forced.image.tag);

        // The forced build succeeded and became latest: an unforced request of the same
        // content reuses it, naming it and its new tag.
        let mut b = out.build;
        b.status = BuildStatus::Succeeded;
        b.image_digest = Some("sha256:new".into());
        let rec = BuildRecord::new(&forced, Some(&b), None, t("2026-11-28T10:09:00Z"));
        d.store
            .put_json("agents/nexus-ai/sales/latest.json", rec.to_json())
            .await
            .unwrap();
        d.images.push(REPO, &forced.image.tag, "sha256:new");
        let mut next = plan();
        next.build_id = "b-2".into();
        next.execution_arn =
            "arn:aws:states:us-east-1:123456789012:execution:agentbuild:b-2".into();
        let out = handle(
            &d,
            StartInput {
                plan: next.clone(),
                dependencies: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(out.build.status, BuildStatus::Reused);
        assert_eq!(out.build.reused_from.as_deref(), Some("b-1"));
        assert_eq!(out.build.image_digest.as_deref(), Some("sha256:new"));
        let record = BuildRecord::new(&next, Some(&out.build), None, t("2026-11-28T10:10:00Z"));
        assert_eq!(record.image.tag, forced.image.tag);
    }

    #[tokio::test]
    async fn a_caller_deadline_can_only_shorten_the_configured_one() {
        let d = deps();
        let mut p = plan();
        p.deadline_seconds = Some(5);
        let out = handle(
            &d,
            StartInput {
                plan: p,
                dependencies: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(out.build.deadline, t("2026-11-28T10:00:15Z"));
        let d = deps();
        let mut p = plan();
        p.deadline_seconds = Some(999_999);
        let out = handle(
            &d,
            StartInput {
                plan: p,
                dependencies: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(out.build.deadline, t("2026-11-28T11:35:10Z"));
    }

    #[tokio::test]
    async fn a_transient_store_error_surfaces_and_the_retry_starts_one_build() {
        let d = deps();
        d.store
            .fail_next
            .borrow_mut()
            .push_back(Error::TransientAws("S3.GetObject: 503".into()));
        let err = handle(&d, input()).await.unwrap_err();
        assert_eq!(err.name(), "TransientAwsError");
        assert!(d.builds.started.borrow().is_empty());
        handle(&d, input()).await.unwrap();
        assert_eq!(d.builds.started.borrow().len(), 1);
    }

    /// Every scenario above, against one recorder of the SDK operations the fakes stand for.
    #[test]
    fn calls_exactly_the_sdk_operations_the_catalog_lists() {
        let called = crate::testing::fakes::operations_of(
            include_str!("start_build.rs"),
            crate::testing::fakes::scenarios![
                a_promote_reuses_the_promoted_builds_own_image_though_latest_is_another,
                starts_one_build_and_writes_a_running_record,
                passes_per_build_values_only_as_environment,
                build_secrets_go_to_codebuild_as_secret_references_never_in_plain_text,
                a_retry_resumes_the_build_this_execution_started,
                a_retry_past_the_token_window_finds_the_build_instead_of_starting_another,
                a_retry_inside_the_token_window_starts_again_with_the_same_token,
                a_build_cancelled_before_it_started_is_never_started,
                a_build_started_while_a_cancel_closed_the_record_is_stopped,
                same_execution_same_token_other_execution_other_token,
                reuses_an_image_built_from_the_same_inputs,
                builds_when_the_image_latest_names_is_gone_from_ecr,
                builds_when_forced_or_inputs_differ_or_last_build_failed,
                a_forced_build_runs_with_its_own_tag_and_is_reused_by_the_next_unforced_request,
                a_caller_deadline_can_only_shorten_the_configured_one,
                a_transient_store_error_surfaces_and_the_retry_starts_one_build,
                a_code_plan_builds_only_its_dependency_layer_in_the_layer_project,
            ],
        );
        crate::testing::fakes::assert_operations_are_listed("start-build", &called);
    }

    #[tokio::test]
    async fn a_code_plan_builds_only_its_dependency_layer_in_the_layer_project() {
        use crate::domain::artifact::{ArtifactSpec, PythonRuntime};
        let d = deps();
        let mut p = plan();
        p.artifact = ArtifactSpec::Code {
            entry_point: "main.py".to_string().try_into().unwrap(),
            runtime: PythonRuntime::Python313,
        };
        let err = handle(
            &d,
            StartInput {
                plan: p.clone(),
                dependencies: None,
            },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("dependency layer"), "{err}");
        let layer = DependencyLayer {
            key: "k1".into(),
            reused: false,
        };
        let out = handle(
            &d,
            StartInput {
                plan: p,
                dependencies: Some(layer),
            },
        )
        .await
        .unwrap();
        assert_eq!(out.build.status, BuildStatus::Running);
        assert!(
            d.builds.started.borrow().is_empty(),
            "not the image project"
        );
        let req = d.layer_builds.started.borrow()[0].clone();
        assert_eq!(
            req.source_location, None,
            "the context never reaches the host"
        );
        assert_eq!(req.environment["AGENTBUILD_DEPENDENCIES_KEY"], "k1");
        assert_eq!(req.environment["AGENTBUILD_RUNTIME"], "PYTHON_3_13");
        assert_eq!(req.environment.len(), 4, "{:?}", req.environment);
        assert_eq!(req.environment["AGENTBUILD_BUILD_SECRETS"], "[]");
        assert_eq!(
            req.timeout_minutes, 15,
            "Lambda compute runs at most 15 minutes"
        );
    }
}
