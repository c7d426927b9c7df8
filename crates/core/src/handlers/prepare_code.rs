//! PrepareCode: `{plan}` of a code build -> `$.code` `{dependencies, reusable}`. Reads the
//! context (its validated version, SHA-256 checked) and its dependencies (`read_dependencies`:
//! every line checked, nothing from the context run), writes the canonical requirements the
//! layer build installs, and says whether the layer exists — when it does, no CodeBuild build
//! starts. An input assembled before (and `force` false) is reusable as it stands.

use super::{aws_config, s3_client};
use crate::adapters::s3::S3Store;
use crate::config::{CodeConfig, ProcessEnv};
use crate::domain::artifact::{
    artifact_index_key, layer_key, layer_requirements_key, ArtifactRecord, DependencyLayer,
};
use crate::domain::plan::BuildPlan;
use crate::model::{CodeSlot, PlanState};
use crate::ports::{ObjectFiles, ObjectStore};
use crate::services::code_files::{fetch_context, open_zip, refused, runtime_of, WorkFiles};
use crate::services::objects::read_json;
use crate::Error;

pub struct Deps<S> {
    pub store: S,
    pub config: CodeConfig,
}

impl Deps<S3Store> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = CodeConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            store: S3Store::new(s3_client(&sdk), config.bucket.clone()),
            config,
        })
    }
}

pub async fn handle<S: ObjectStore + ObjectFiles>(
    deps: &Deps<S>,
    input: PlanState,
) -> Result<CodeSlot, Error> {
    let plan = input.plan;
    let Some((_, runtime)) = plan.code() else {
        return Err(Error::InvalidState("PrepareCode needs a code plan".into()));
    };
    if let Some(reusable) = reusable(&deps.store, &plan).await? {
        tracing::info!(build_id = %plan.build_id, artifact = %reusable.uri, "input assembled before; reusing");
        let dependencies = reusable
            .dependencies
            .clone()
            .map(|d| DependencyLayer { reused: true, ..d });
        return Ok(CodeSlot {
            dependencies,
            reusable: Some(reusable),
        });
    }
    let mut files = WorkFiles::new(&deps.config.work_dir, &plan.build_id);
    let context = files.path("context.zip");
    fetch_context(&deps.store, &plan, &context).await?;
    let mut zip = open_zip(&context, "source")?;
    let Some(found) =
        agentbuild_codezip::read_dependencies(&mut zip, runtime_of(runtime)).map_err(refused)?
    else {
        return Ok(CodeSlot {
            dependencies: None,
            reusable: None,
        });
    };
    let store = &deps.store;
    let bucket = store.own_bucket().to_string();
    let present = store.head(&bucket, &layer_key(&found.key)).await?.is_some();
    if !present {
        // What the layer build installs: the canonical lines, never the context's own file.
        let requirements = found.requirements.into_bytes();
        store
            .put_json(&layer_requirements_key(&found.key), requirements)
            .await?;
    }
    tracing::info!(build_id = %plan.build_id, key = %found.key, from = found.source, present, "dependencies read");
    Ok(CodeSlot {
        dependencies: Some(DependencyLayer {
            key: found.key,
            reused: present,
        }),
        reusable: None,
    })
}

super::lambda_main!();

/// The artifact this exact input (the plan's content tag) was assembled into, while its
/// object version still exists; never for a forced build.
async fn reusable(
    store: &impl ObjectStore,
    plan: &BuildPlan,
) -> Result<Option<ArtifactRecord>, Error> {
    if let Some(from) = &plan.promoted_from {
        return promoted_artifact(store, from).await.map(Some);
    }
    if plan.force {
        return Ok(None);
    }
    let index = artifact_index_key(&plan.project, &plan.agent, plan.image.content_tag());
    let Some(found) = read_json::<_, ArtifactRecord>(store, &index, "an artifact index").await?
    else {
        return Ok(None);
    };
    Ok(still_there(store, &found).await?.then_some(found))
}

async fn still_there(store: &impl ObjectStore, found: &ArtifactRecord) -> Result<bool, Error> {
    let there = match found.version_id.as_deref() {
        Some(v) => store.head_version(&found.bucket, &found.key, v).await?,
        None => store.head(&found.bucket, &found.key).await?,
    };
    Ok(there.is_some())
}

/// A promote deploys the very artifact version build `from` recorded, never another one of
/// the same content, and never builds: gone, the promote ends here naming the build.
async fn promoted_artifact(store: &impl ObjectStore, from: &str) -> Result<ArtifactRecord, Error> {
    let key = crate::domain::record::build_key(from);
    let record: Option<crate::domain::record::BuildRecord> =
        read_json(store, &key, "a build record").await?;
    let gone = || {
        let why = format!("the code artifact build {from} made is no longer stored: nothing to promote (build it again)");
        Error::from(crate::domain::request::RequestError::new(
            crate::domain::promote::FIELD,
            why,
        ))
    };
    let found = record.and_then(|r| r.artifact).ok_or_else(gone)?;
    if !still_there(store, &found).await? {
        return Err(gone());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::code::{code_plan, work_dir, zip_bytes};
    use crate::testing::fakes::FakeStore;

    const REQS: &str = "strands-agents==1.0.0\nbedrock-agentcore>=0.1\n";

    fn deps(context: &[u8], dir: &std::path::Path) -> Deps<FakeStore> {
        Deps {
            store: FakeStore::default().with_object("bkt", "sources/nexus-ai/sales/x.zip", context),
            config: CodeConfig {
                bucket: "own".into(),
                work_dir: dir.to_path_buf(),
            },
        }
    }

    fn context() -> Vec<u8> {
        zip_bytes(&[("main.py", "print(1)\n"), ("requirements.txt", REQS)])
    }

    #[tokio::test]
    async fn a_missing_layer_gets_its_canonical_requirements_written() {
        let dir = work_dir();
        let ctx = context();
        let d = deps(&ctx, dir.path());
        let out = handle(
            &d,
            PlanState {
                plan: code_plan(&ctx),
            },
        )
        .await
        .unwrap();
        let layer = out.dependencies.expect("dependencies");
        assert!(!layer.reused);
        assert_eq!(out.reusable, None);
        let written = d.store.own(&layer_requirements_key(&layer.key)).unwrap();
        let text = String::from_utf8(written).unwrap();
        assert!(text.contains("strands-agents==1.0.0"), "{text}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "/tmp cleaned"
        );
    }

    #[tokio::test]
    async fn a_present_layer_is_reused_and_nothing_is_written() {
        let dir = work_dir();
        let ctx = context();
        let d = deps(&ctx, dir.path());
        let first = handle(
            &d,
            PlanState {
                plan: code_plan(&ctx),
            },
        )
        .await
        .unwrap();
        let key = first.dependencies.unwrap().key;
        d.store.seed(&layer_key(&key), b"layer".to_vec());
        d.store.puts.borrow_mut().clear();
        let out = handle(
            &d,
            PlanState {
                plan: code_plan(&ctx),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            out.dependencies,
            Some(DependencyLayer { key, reused: true })
        );
        assert!(d.store.puts.borrow().is_empty());
    }

    #[tokio::test]
    async fn an_input_assembled_before_is_reusable_unless_forced() {
        let dir = work_dir();
        let ctx = context();
        let d = deps(&ctx, dir.path());
        let plan = code_plan(&ctx);
        let record = ArtifactRecord {
            kind: crate::domain::artifact::ArtifactKind::Code,
            uri: "s3://own/artifacts/nexus-ai/sales/ab.zip".into(),
            bucket: "own".into(),
            key: "artifacts/nexus-ai/sales/ab.zip".into(),
            version_id: Some("v-a".into()),
            sha256: "ab".into(),
            size: 3,
            dependencies: Some(DependencyLayer {
                key: "k".into(),
                reused: false,
            }),
            sbom: None,
        };
        d.store.seed(&record.key, b"zip".to_vec());
        let index = artifact_index_key("nexus-ai", "sales", plan.image.content_tag());
        d.store.seed(&index, serde_json::to_vec(&record).unwrap());
        let out = handle(&d, PlanState { plan: plan.clone() }).await.unwrap();
        assert_eq!(out.reusable.as_ref().map(|r| r.sha256.as_str()), Some("ab"));
        assert_eq!(out.dependencies.map(|l| l.reused), Some(true));
        let mut forced = plan;
        forced.force = true;
        let out = handle(&d, PlanState { plan: forced }).await.unwrap();
        assert_eq!(out.reusable, None);
    }

    #[tokio::test]
    async fn a_promote_deploys_its_builds_own_artifact_version_or_fails_when_it_is_gone() {
        let dir = work_dir();
        let ctx = context();
        let d = deps(&ctx, dir.path());
        let mut plan = code_plan(&ctx);
        plan.promoted_from = Some("b-old".into());
        let own = ArtifactRecord {
            kind: crate::domain::artifact::ArtifactKind::Code,
            uri: "s3://own/artifacts/nexus-ai/sales/ab.zip".into(),
            bucket: "own".into(),
            key: "artifacts/nexus-ai/sales/ab.zip".into(),
            version_id: None,
            sha256: "ab".into(),
            size: 3,
            dependencies: None,
            sbom: None,
        };
        let err = handle(&d, PlanState { plan: plan.clone() })
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("promote.buildId: "), "{err}");
        let mut old = crate::domain::record::BuildRecord::new(&plan, None, None, plan.requested_at);
        old.artifact = Some(own.clone());
        d.store.seed("builds/b-old.json", old.to_json());
        // The index names a newer artifact of the same content: the promote keeps its build's.
        let index = artifact_index_key("nexus-ai", "sales", plan.image.content_tag());
        let newer = ArtifactRecord {
            sha256: "cd".into(),
            ..own.clone()
        };
        d.store.seed(&index, serde_json::to_vec(&newer).unwrap());
        let err = handle(&d, PlanState { plan: plan.clone() })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no longer stored"), "{err}");
        d.store.seed(&own.key, b"zip".to_vec());
        let out = handle(&d, PlanState { plan }).await.unwrap();
        assert_eq!(out.reusable.map(|r| r.sha256), Some("ab".to_string()));
    }

    #[tokio::test]
    async fn a_context_that_is_not_the_validated_one_is_refused() {
        let dir = work_dir();
        let ctx = context();
        let d = deps(&ctx, dir.path());
        let mut plan = code_plan(&ctx);
        plan.source.sha256 = "00".repeat(32);
        let err = handle(&d, PlanState { plan }).await.unwrap_err();
        assert_eq!(err.name(), "InvalidContext");
        assert!(err.to_string().contains("not the validated"), "{err}");
    }

    #[tokio::test]
    async fn a_hostile_requirement_is_refused_naming_its_line() {
        let dir = work_dir();
        for bad in [
            "--index-url https://evil.example/simple",
            "-e .",
            "git+https://x/y.git",
        ] {
            let ctx = zip_bytes(&[
                ("main.py", ""),
                ("requirements.txt", &format!("ok==1\n{bad}\n")),
            ]);
            let d = deps(&ctx, dir.path());
            let err = handle(
                &d,
                PlanState {
                    plan: code_plan(&ctx),
                },
            )
            .await
            .unwrap_err();
            assert_eq!(err.name(), "InvalidContext", "{bad}");
            assert!(err.to_string().starts_with("requirements.txt:2"), "{err}");
            assert!(d.store.puts.borrow().is_empty(), "nothing written");
        }
    }

    #[tokio::test]
    async fn a_context_without_dependencies_needs_no_layer() {
        let dir = work_dir();
        let ctx = zip_bytes(&[("main.py", "print(1)\n")]);
        let d = deps(&ctx, dir.path());
        let out = handle(
            &d,
            PlanState {
                plan: code_plan(&ctx),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            out,
            CodeSlot {
                dependencies: None,
                reusable: None
            }
        );
    }

    #[test]
    fn calls_exactly_the_sdk_operations_the_catalog_lists() {
        let called = crate::testing::fakes::operations_of(
            include_str!("prepare_code.rs"),
            crate::testing::fakes::scenarios![
                a_promote_deploys_its_builds_own_artifact_version_or_fails_when_it_is_gone,
                a_missing_layer_gets_its_canonical_requirements_written,
                a_present_layer_is_reused_and_nothing_is_written,
                an_input_assembled_before_is_reusable_unless_forced,
                a_context_that_is_not_the_validated_one_is_refused,
                a_hostile_requirement_is_refused_naming_its_line,
                a_context_without_dependencies_needs_no_layer,
            ],
        );
        crate::testing::fakes::assert_operations_are_listed("prepare-code", &called);
    }
}
