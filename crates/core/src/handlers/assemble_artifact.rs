//! AssembleArtifact: `{state: {plan, code, build?}, now}` -> `{build}` with the code artifact.
//! The artifact is the dependency layer's compressed entries and the context's, copied as they
//! are (`agentbuild_codezip::assemble`: no decompression, nothing executed or unpacked), streamed
//! through /tmp, uploaded to `artifacts/<project>/<agent>/<sha256>.zip` (versioned; its version
//! recorded). An input assembled before is REUSED as it stands.

use super::{aws_config, s3_client, Clock};
use crate::adapters::s3::S3Store;
use crate::config::{CodeConfig, ProcessEnv};
use crate::domain::artifact::{
    artifact_index_key, artifact_key, layer_key, layer_sbom_key, ArtifactKind, ArtifactRecord,
    DependencyLayer, SbomRef,
};
use crate::domain::plan::BuildPlan;
use crate::domain::record::BuildState;
use crate::domain::status::BuildStatus;
use crate::model::{AssembleInput, BuildOutput};
use crate::ports::{ObjectFiles, ObjectStore};
use crate::services::code_files::{fetch_context, local, open_zip, refused, WorkFiles};
use crate::Error;
use chrono::{DateTime, Utc};
use std::path::Path;

pub struct Deps<S> {
    pub store: S,
    pub config: CodeConfig,
    pub now: Clock,
}

impl Deps<S3Store> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = CodeConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            store: S3Store::new(s3_client(&sdk), config.bucket.clone()),
            config,
            now: Utc::now,
        })
    }
}

pub async fn handle<S: ObjectStore + ObjectFiles>(
    deps: &Deps<S>,
    input: AssembleInput,
) -> Result<BuildOutput, Error> {
    let AssembleInput { state, .. } = input;
    let plan = &state.plan;
    let now = (deps.now)();
    // A layer build's own facts (its id, phases, log) stay in the build's state.
    let observed = state.build.as_ref().and_then(|slot| slot.observed.as_ref());
    let base = match observed.map(|o| &o.state) {
        Some(b) if b.status != BuildStatus::Succeeded => {
            return Err(Error::InvalidState(format!(
                "AssembleArtifact after a layer build that ended {}",
                b.status
            )))
        }
        Some(b) => b.clone(),
        None => BuildState::starting(now),
    };
    if let Some(mut reused) = state.code.reusable {
        // This build used the layer as it found it (PrepareCode's view: reused).
        reused.dependencies = state.code.dependencies;
        return Ok(BuildOutput {
            build: BuildState {
                status: BuildStatus::Reused,
                finished_at: Some(now),
                artifact: Some(reused),
                ..base
            },
        });
    }
    let artifact = assemble(deps, plan, state.code.dependencies).await?;
    tracing::info!(build_id = %plan.build_id, artifact = %artifact.uri, size = artifact.size, "artifact assembled");
    Ok(BuildOutput {
        build: succeeded(base, artifact, now),
    })
}

super::lambda_main!();

fn succeeded(base: BuildState, artifact: ArtifactRecord, now: DateTime<Utc>) -> BuildState {
    BuildState {
        status: BuildStatus::Succeeded,
        finished_at: Some(base.finished_at.unwrap_or(now).max(now)),
        artifact: Some(artifact),
        error: None,
        ..base
    }
}

/// Layer + context -> the artifact in S3, indexed by the plan's content tag.
async fn assemble<S: ObjectStore + ObjectFiles>(
    deps: &Deps<S>,
    plan: &BuildPlan,
    layer: Option<DependencyLayer>,
) -> Result<ArtifactRecord, Error> {
    let Some((entry_point, _)) = plan.code() else {
        return Err(Error::InvalidState(
            "AssembleArtifact needs a code plan".into(),
        ));
    };
    let mut files = WorkFiles::new(&deps.config.work_dir, &plan.build_id);
    let context = files.path("context.zip");
    fetch_context(&deps.store, plan, &context).await?;
    let layer_zip = match &layer {
        None => None,
        Some(l) => Some(fetch_layer(deps, &l.key, files.path("layer.zip")).await?),
    };
    let out = files.path("artifact.zip");
    let assembled = write_artifact(layer_zip.as_deref(), &context, entry_point, &out)?;
    let bucket = deps.store.own_bucket().to_string();
    let key = artifact_key(&plan.project, &plan.agent, &assembled.sha256);
    let version_id = deps.store.upload(&key, &out, &assembled.sha256).await?;
    let sbom = match &layer {
        None => None,
        Some(l) => deps
            .store
            .get(&layer_sbom_key(&l.key))
            .await?
            .and_then(|text| SbomRef::of_layer(&bucket, &l.key, &text)),
    };
    let record = ArtifactRecord {
        sbom,
        kind: ArtifactKind::Code,
        uri: format!("s3://{bucket}/{key}"),
        bucket,
        key,
        version_id,
        sha256: assembled.sha256,
        size: assembled.size,
        dependencies: layer,
    };
    let index = artifact_index_key(&plan.project, &plan.agent, plan.image.content_tag());
    let body = serde_json::to_vec(&record).expect("an artifact record serializes");
    deps.store.put_json(&index, body).await?;
    Ok(record)
}

async fn fetch_layer<S: ObjectFiles>(
    deps: &Deps<S>,
    key: &str,
    path: std::path::PathBuf,
) -> Result<std::path::PathBuf, Error> {
    let bucket = deps.config.bucket.clone();
    match deps
        .store
        .download(&bucket, &layer_key(key), None, &path)
        .await?
    {
        Some(_) => Ok(path),
        None => Err(Error::InvalidState(format!(
            "dependency layer {} is missing (its build succeeded)",
            layer_key(key)
        ))),
    }
}

/// The synchronous part: two zips read, one written, on local disk.
fn write_artifact(
    layer: Option<&Path>,
    context: &Path,
    entry_point: &str,
    out: &Path,
) -> Result<agentbuild_codezip::Assembled, Error> {
    let mut context_zip = open_zip(context, "source")?;
    let mut layer_zip = match layer {
        Some(p) => Some(open_zip(p, "dependency layer")?),
        None => None,
    };
    let file = std::fs::File::create(out).map_err(|e| local(out, e))?;
    agentbuild_codezip::assemble(
        layer_zip.as_mut(),
        &mut context_zip,
        entry_point,
        std::io::BufWriter::new(file),
    )
    .map_err(refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CodeSlot, CodeState, LayerSlot, Observation};
    use crate::testing::code::{code_plan, work_dir, zip_bytes};
    use crate::testing::fakes::{FakeStore, FAKE_VERSION};

    fn deps(context: &[u8], dir: &std::path::Path) -> Deps<FakeStore> {
        Deps {
            store: FakeStore::default().with_object("bkt", "sources/nexus-ai/sales/x.zip", context),
            config: CodeConfig {
                bucket: "own".into(),
                work_dir: dir.to_path_buf(),
            },
            now: || "2026-11-28T10:05:00Z".parse().unwrap(),
        }
    }

    fn input(plan: BuildPlan, code: CodeSlot, build: Option<LayerSlot>) -> AssembleInput {
        AssembleInput {
            state: CodeState { plan, code, build },
            entered_at: "2026-11-28T10:05:00Z".parse().unwrap(),
        }
    }

    fn layer(key: &str, reused: bool) -> CodeSlot {
        CodeSlot {
            dependencies: Some(DependencyLayer {
                key: key.into(),
                reused,
            }),
            reusable: None,
        }
    }

    #[tokio::test]
    async fn assembles_layer_and_context_into_a_versioned_artifact_without_codebuild() {
        let dir = work_dir();
        let ctx = zip_bytes(&[("main.py", "print(1)\n"), ("requirements.txt", "a==1\n")]);
        let d = deps(&ctx, dir.path());
        d.store.seed(
            &layer_key("k1"),
            zip_bytes(&[("a/__init__.py", ""), ("a-1.dist-info/METADATA", "x")]),
        );
        let plan = code_plan(&ctx);
        let slot = LayerSlot {
            codebuild_build_id: None,
            observed: None,
        };
        let out = handle(&d, input(plan.clone(), layer("k1", true), Some(slot)))
            .await
            .unwrap();
        assert_eq!(out.build.status, BuildStatus::Succeeded);
        assert_eq!(out.build.codebuild_build_id, None, "no CodeBuild build");
        let a = out.build.artifact.expect("artifact");
        assert_eq!(a.key, format!("artifacts/nexus-ai/sales/{}.zip", a.sha256));
        assert_eq!(a.version_id.as_deref(), Some(FAKE_VERSION));
        assert_eq!(
            a.dependencies,
            Some(DependencyLayer {
                key: "k1".into(),
                reused: true
            })
        );
        let stored = d.store.own(&a.key).unwrap();
        assert_eq!(stored.len() as u64, a.size);
        let names: Vec<String> =
            agentbuild_codezip::zip::ZipArchive::new(std::io::Cursor::new(stored))
                .unwrap()
                .file_names()
                .map(|n| n.unwrap().to_string())
                .collect();
        assert!(
            names.contains(&"main.py".to_string()) && names.contains(&"a/__init__.py".to_string()),
            "{names:?}"
        );
        let index = artifact_index_key("nexus-ai", "sales", plan.image.content_tag());
        assert_eq!(d.store.own_json::<ArtifactRecord>(&index), Some(a));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "/tmp cleaned"
        );
    }

    #[tokio::test]
    async fn after_a_layer_build_the_builds_facts_stay_and_a_failed_one_is_not_assembled() {
        let dir = work_dir();
        let ctx = zip_bytes(&[("main.py", "print(1)\n")]);
        let d = deps(&ctx, dir.path());
        let mut built = crate::domain::record::tests::running();
        built.codebuild_build_id = Some("layer:1".into());
        built.status = BuildStatus::Succeeded;
        let slot = |state: BuildState| LayerSlot {
            codebuild_build_id: Some("layer:1".into()),
            observed: Some(Observation { state, failures: 0 }),
        };
        let code = CodeSlot {
            dependencies: None,
            reusable: None,
        };
        let out = handle(
            &d,
            input(code_plan(&ctx), code.clone(), Some(slot(built.clone()))),
        )
        .await
        .unwrap();
        assert_eq!(out.build.codebuild_build_id.as_deref(), Some("layer:1"));
        assert_eq!(out.build.status, BuildStatus::Succeeded);
        built.status = BuildStatus::Failed;
        let err = handle(&d, input(code_plan(&ctx), code, Some(slot(built))))
            .await
            .unwrap_err();
        assert_eq!(err.name(), "InvalidState");
    }

    #[tokio::test]
    async fn a_reusable_artifact_is_reused_without_reading_anything() {
        let dir = work_dir();
        let ctx = zip_bytes(&[("main.py", "")]);
        let d = deps(&ctx, dir.path());
        let reused = ArtifactRecord {
            kind: ArtifactKind::Code,
            uri: "s3://own/artifacts/nexus-ai/sales/ab.zip".into(),
            bucket: "own".into(),
            key: "artifacts/nexus-ai/sales/ab.zip".into(),
            version_id: Some("v-a".into()),
            sha256: "ab".into(),
            size: 3,
            dependencies: None,
            sbom: None,
        };
        // The layer as this build found it: reused.
        let layer = Some(DependencyLayer {
            key: "k".into(),
            reused: true,
        });
        let code = CodeSlot {
            dependencies: layer.clone(),
            reusable: Some(reused.clone()),
        };
        let out = handle(&d, input(code_plan(&ctx), code, None))
            .await
            .unwrap();
        assert_eq!(out.build.status, BuildStatus::Reused);
        let expected = ArtifactRecord {
            dependencies: layer,
            ..reused
        };
        assert_eq!(out.build.artifact, Some(expected));
        assert_eq!(d.store.calls(), 0);
    }

    #[tokio::test]
    async fn a_missing_entry_point_or_hostile_entry_is_refused_naming_the_file() {
        let dir = work_dir();
        let ctx = zip_bytes(&[("app.py", "")]);
        let d = deps(&ctx, dir.path());
        let code = CodeSlot {
            dependencies: None,
            reusable: None,
        };
        let err = handle(&d, input(code_plan(&ctx), code.clone(), None))
            .await
            .unwrap_err();
        assert_eq!(err.name(), "InvalidContext");
        assert!(err.to_string().contains("main.py"), "{err}");
        let ctx = zip_bytes(&[("main.py", ""), ("sitecustomize.py", "import os")]);
        let d = deps(&ctx, dir.path());
        let err = handle(&d, input(code_plan(&ctx), code, None))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("sitecustomize.py"), "{err}");
        assert!(d.store.puts.borrow().is_empty(), "nothing uploaded");
    }

    #[test]
    fn calls_exactly_the_sdk_operations_the_catalog_lists() {
        let called = crate::testing::fakes::operations_of(
            include_str!("assemble_artifact.rs"),
            crate::testing::fakes::scenarios![
                assembles_layer_and_context_into_a_versioned_artifact_without_codebuild,
                after_a_layer_build_the_builds_facts_stay_and_a_failed_one_is_not_assembled,
                a_reusable_artifact_is_reused_without_reading_anything,
                a_missing_entry_point_or_hostile_entry_is_refused_naming_the_file,
            ],
        );
        crate::testing::fakes::assert_operations_are_listed("assemble-artifact", &called);
    }
}
