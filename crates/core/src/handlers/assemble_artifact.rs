//! AssembleArtifact: `{state: {plan, code, build?}, now}` -> `{build}` with the code artifact.
//! The artifact is the dependency layer's compressed entries and the context's, copied as they
//! are (`agentbuild_codezip::assemble`: no decompression, nothing executed or unpacked), streamed
//! through /tmp, uploaded to `artifacts/<project>/<agent>/<sha256>.zip` (versioned; its version
//! recorded). An input assembled before is REUSED as it stands.

use super::{aws_config, s3_client, Clock};
use crate::adapters::s3::S3Store;
use crate::config::{CodeConfig, ProcessEnv};
use crate::domain::artifact::{
    artifact_index_key, artifact_key, layer_key, ArtifactKind, ArtifactRecord, DependencyLayer,
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
    let base = match state.build.as_ref().map(|slot| &slot.observed.state) {
        Some(b) if b.status != BuildStatus::Succeeded => {
            return Err(Error::InvalidState(format!(
                "AssembleArtifact after a layer build that ended {}",
                b.status
            )))
        }
        Some(b) => b.clone(),
        None => BuildState::starting(now),
    };
    if let Some(reused) = state.code.reusable {
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
        return Err(Error::InvalidState("AssembleArtifact needs a code plan".into()));
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
    let record = ArtifactRecord {
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
    match deps.store.download(&bucket, &layer_key(key), None, &path).await? {
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
