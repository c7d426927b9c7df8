//! ValidateRequest: execution input (any door) -> `{plan}`, or an `InvalidRequest` error.

use super::{aws_config, s3_client};
use crate::adapters::s3::S3Store;
use crate::config::{ProcessEnv, ValidateConfig};
use crate::domain::plan::{is_build_id, BuildPlan, ExecutionFacts, SourceObject};
use crate::domain::record::{BuildRecord, BuildState};
use crate::domain::request::{clip, open_envelope, validate, RequestError};
use crate::model::{PlanOutput, ValidateInput};
use crate::ports::ObjectStore;
use crate::services::records;
use crate::Error;

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

pub async fn handle<S: ObjectStore>(
    deps: &Deps<S>,
    event: ValidateInput,
) -> Result<PlanOutput, Error> {
    let envelope = open_envelope(&event.input)?;
    if !is_build_id(&event.build_id) {
        return Err(RequestError::new(
            "executionName",
            "must be 1 to 80 of letters, digits, '-' and '_' (it names the build's record)",
        )
        .into());
    }
    let req = validate(envelope.request, &deps.config.sources)?;
    let meta = deps
        .store
        .head(&req.source.bucket, &req.source.key)
        .await?
        .ok_or_else(|| {
            RequestError::new(
                "source",
                format!("{} does not exist", clip(&req.source.to_string())),
            )
        })?;
    let version_id = meta.check_source(deps.config.max_source_bytes)?;
    let sha256 = match meta.sha256 {
        Some(sha) => sha,
        None => {
            deps.store
                .sha256(&req.source.bucket, &req.source.key, &version_id)
                .await?
        }
    };
    let plan = BuildPlan::new(
        req,
        SourceObject {
            sha256,
            version_id: Some(version_id),
        },
        &deps.config.repository_uri,
        ExecutionFacts {
            build_id: event.build_id,
            execution_arn: event.execution_arn,
            trigger: envelope.trigger,
            requested_at: event.started_at,
            submitted_at: envelope.submitted_at,
            deadline_seconds: envelope.deadline_seconds,
        },
    );
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
        tag = %plan.image.tag,
        "request validated"
    );
    Ok(PlanOutput { plan })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::request::SourcePolicy;
    use crate::testing::fakes::FakeStore;
    use serde_json::json;

    const KEY: &str = "sources/nexus-ai/sales/src.zip";

    fn deps(store: FakeStore) -> Deps<FakeStore> {
        Deps {
            store,
            config: ValidateConfig {
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
    async fn reads_the_envelope_of_the_api_and_scheduler() {
        let store = FakeStore::default().with_object("bkt", KEY, b"abc");
        let input =
            json!({"trigger": "schedule", "request": request(), "limits": {"deadlineSeconds": 9}});
        let p = handle(&deps(store), event(input)).await.unwrap().plan;
        assert_eq!(p.trigger, crate::domain::plan::Trigger::Schedule);
        assert_eq!(p.deadline_seconds, Some(9));
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

    /// Every scenario above, against one recorder of the SDK operations the fakes stand for.
    #[test]
    fn calls_exactly_the_sdk_operations_the_catalog_lists() {
        let called = crate::testing::fakes::operations_of(
            include_str!("validate_request.rs"),
            crate::testing::fakes::scenarios![
                plans_a_valid_request_hashing_the_source,
                a_valid_request_gets_its_first_running_record_an_invalid_one_nothing,
                uses_the_s3_checksum_when_there_is_one,
                rejects_a_missing_source_naming_the_field,
                rejects_an_oversize_source,
                reads_the_envelope_of_the_api_and_scheduler,
                rejects_before_touching_s3,
                rejects_an_execution_name_that_cannot_be_a_key,
            ],
        );
        crate::testing::fakes::assert_operations_are_listed("validate-request", &called);
    }
}
