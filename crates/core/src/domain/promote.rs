//! Promote: deploy what a successful build made to another runtime or endpoint — another
//! environment — building nothing. The rules: which build may be promoted as which plan (the
//! same agent, a success, the same source and content, so its recorded artifact is exactly what
//! the plan would build), and which target a promote may not take (the one the agent's latest
//! deploy serves: moving it to another build is a deploy or a rollback, never a promote).

use super::deploy_request::{DeployOptions, DeploySpec};
use super::execution::SourcePin;
use super::plan::BuildPlan;
use super::record::BuildRecord;
use super::request::{RequestError, ValidRequest};
use super::rollout::DEFAULT_ENDPOINT;

/// The field a refused promote names (the console's `{"promote": {"buildId"}}`, the API's route).
pub const FIELD: &str = "promote.buildId";

/// Whether `plan` may deploy what `record` made: the same agent, a success, the same source
/// version and SHA-256, and the same content tag (so the recorded image or code artifact is
/// exactly what `plan` would build).
pub fn promotable(plan: &BuildPlan, record: &BuildRecord) -> Result<(), RequestError> {
    let id = &record.build_id;
    let why = if (record.project.as_str(), record.agent.as_str()) != (&plan.project, &plan.agent) {
        format!("build {id} is another agent's")
    } else if !record.status.is_success() {
        format!(
            "build {id} ended {}: only a success is promoted",
            record.status
        )
    } else if record.source.sha256 != plan.source.sha256
        || record.source.version_id != plan.source.version_id
        || (&record.source.bucket, &record.source.key) != (&plan.source.bucket, &plan.source.key)
    {
        format!("build {id} built another source than this request's")
    } else if record.image.content_tag() != plan.image.content_tag() {
        format!("build {id} built other content than this request's (its build settings differ)")
    } else {
        return Ok(());
    };
    Err(RequestError::new(FIELD, why))
}

/// The request a promote of `record` submits: the build's recorded request with `deploy`
/// instead of its own (never forced, no idempotency key: the promote's name is its own), and
/// the recorded source version it is pinned to. Refused (409's words, no field) when the record
/// is no success or keeps no request or source version.
pub fn recorded_request(
    record: &BuildRecord,
    deploy: DeployOptions,
) -> Result<(ValidRequest, SourcePin), String> {
    let id = &record.build_id;
    let (Some(recorded), Some(version_id)) =
        (record.request.as_ref(), record.source.version_id.clone())
    else {
        return Err(format!(
            "build {id} cannot be promoted: its record keeps no request or source version"
        ));
    };
    if !record.status.is_success() {
        return Err(format!(
            "build {id} cannot be promoted: it ended {}",
            record.status
        ));
    }
    let req = ValidRequest {
        deploy: Some(deploy),
        force: false,
        idempotency_key: None,
        ..recorded.clone()
    };
    let pin = SourcePin {
        version_id,
        sha256: record.source.sha256.clone(),
    };
    Ok((req, pin))
}

/// A promote never takes the target the agent's latest deploy serves (its runtime and endpoint):
/// moving that to another build is a deploy of new source, or a rollback — the one explicit,
/// recorded way back. Refused naming `deploy.endpoint`.
pub fn other_target(target: &DeploySpec, latest: Option<&BuildRecord>) -> Result<(), RequestError> {
    let Some(served) = latest.and_then(|l| l.deployment.as_ref()) else {
        return Ok(());
    };
    let served_endpoint = served.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
    if served.runtime_name != target.runtime_name || served_endpoint != target.endpoint() {
        return Ok(());
    }
    Err(RequestError::new(
        "deploy.endpoint",
        format!(
            "endpoint {served_endpoint} of runtime {} is what the agent's latest deploy serves: \
             a promote deploys to another endpoint or runtime (deploy.endpoint, \
             deploy.runtimeName); to move it back to an earlier build, roll back",
            served.runtime_name
        ),
    ))
}

/// Whether a success may take the agent's `latest.json`: not a promote. Latest's `deploy` is what
/// scheduled rebuilds redeploy, and its build is what they rebuild; a promote deploys an
/// existing build elsewhere and changes neither.
pub fn moves_latest(record: &BuildRecord) -> bool {
    record.promoted_from.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deployment::{Deployment, DeploymentStatus};
    use crate::domain::record::tests::{plan, t};
    use crate::domain::record::BuildState;
    use crate::domain::status::BuildStatus;

    fn success(p: &BuildPlan) -> BuildRecord {
        let mut b = BuildState::starting(t("2026-11-28T10:00:00Z"));
        b.status = BuildStatus::Succeeded;
        b.finished_at = Some(t("2026-11-28T10:05:00Z"));
        BuildRecord::new(p, Some(&b), None, t("2026-11-28T10:05:00Z"))
    }

    fn spec(runtime: &str, endpoint: Option<&str>) -> DeploySpec {
        let req: crate::domain::deploy_request::DeployOptions = serde_json::from_value(
            serde_json::json!({"protocol": "HTTP", "networkMode": "PUBLIC"}),
        )
        .unwrap();
        let mut s = req.resolve("stack", "nexus-ai", "sales");
        s.runtime_name = runtime.into();
        s.endpoint = endpoint.map(String::from);
        s
    }

    #[test]
    fn only_a_success_of_the_same_agent_source_and_content_is_promoted() {
        let p = plan();
        assert_eq!(promotable(&p, &success(&p)), Ok(()));
        let mut other = success(&p);
        other.agent = "other".into();
        let mut failed = success(&p);
        failed.status = BuildStatus::Failed;
        let mut moved = success(&p);
        moved.source.version_id = Some("v-2".into());
        let mut elsewhere = success(&p);
        elsewhere.source.key = "sources/nexus-ai/sales/other.zip".into();
        let mut content = success(&p);
        content.image.tag = "sales-ffff".into();
        for (bad, says) in [
            (other, "another agent"),
            (failed, "FAILED"),
            (moved, "another source"),
            (elsewhere, "another source"),
            (content, "other content"),
        ] {
            let err = promotable(&p, &bad).unwrap_err();
            assert_eq!(err.field, FIELD);
            assert!(err.message.contains(says), "{err}");
        }
    }

    #[test]
    fn a_promote_to_what_latest_serves_is_refused_naming_the_endpoint() {
        let p = plan();
        let mut latest = success(&p);
        let spec_live = spec("rt_a", None);
        let mut d = Deployment::refused(&spec_live, None, String::new(), t("2026-11-28T10:06:00Z"));
        d.status = DeploymentStatus::Ready;
        d.endpoint = Some("live".into());
        latest.deployment = Some(d);
        let err = other_target(&spec("rt_a", Some("live")), Some(&latest)).unwrap_err();
        assert_eq!(err.field, "deploy.endpoint");
        assert!(err.message.contains("roll back"), "{err}");
        assert!(
            other_target(&spec_live, Some(&latest)).is_err(),
            "live by default"
        );
        assert_eq!(
            other_target(&spec("rt_a", Some("staging")), Some(&latest)),
            Ok(())
        );
        assert_eq!(other_target(&spec("rt_b", None), Some(&latest)), Ok(()));
        assert_eq!(other_target(&spec("rt_a", None), None), Ok(()));
    }
}
