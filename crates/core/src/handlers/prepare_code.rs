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
        let dependencies = reusable.dependencies.clone().map(|d| DependencyLayer {
            reused: true,
            ..d
        });
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

/// The artifact this exact input (the plan's content tag) was assembled into, while its
/// object version still exists; never for a forced build.
async fn reusable(
    store: &impl ObjectStore,
    plan: &BuildPlan,
) -> Result<Option<ArtifactRecord>, Error> {
    if plan.force {
        return Ok(None);
    }
    let index = artifact_index_key(&plan.project, &plan.agent, plan.image.content_tag());
    let Some(found) = read_json::<_, ArtifactRecord>(store, &index, "an artifact index").await? else {
        return Ok(None);
    };
    let there = match found.version_id.as_deref() {
        Some(v) => store.head_version(&found.bucket, &found.key, v).await?,
        None => store.head(&found.bucket, &found.key).await?,
    };
    Ok(there.map(|_| found))
}
