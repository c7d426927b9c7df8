//! DeployRuntime: `{plan, build, startedAt}` -> `{deployment}`: updates the agent's
//! AgentCore Runtime to the build's `repository@digest`, or creates it the first time;
//! DEPLOYING until CheckRuntime sees it end, or FAILED at once when there is nothing to run or
//! the runtime of that name is not this agent's, or SUPERSEDED (runtime untouched) when the
//! agent's deploy ledger names a newer build (`domain::supersede`).

use super::{aws_config, s3_client, Clock};
use crate::adapters::agentcore::AgentCore;
use crate::adapters::ecr::Ecr;
use crate::adapters::s3::S3Store;
use crate::config::{DeployConfig, ProcessEnv};
use crate::domain::artifact::layer_scan_key;
use crate::domain::artifact::CodeRun;
use crate::domain::deploy_request::DeploySpec;
use crate::domain::deployment::RuntimeInfo;
use crate::domain::deployment::{
    container_uri, previous_runtime, started, target_by_name, Deployment, Owner, Target,
};
use crate::domain::plan::BuildPlan;
use crate::domain::record::BuildState;
use crate::domain::scan_gate::{decide, from_layer_scan, repository_name, ScanGate};
use crate::domain::supersede::superseded;
use crate::model::{DeployInput, DeployOutput};
use crate::ports::{ImageScans, ObjectStore, RuntimeRequest, Runtimes};
use crate::services::{deploys, records, runtime_names};
use crate::Error;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub struct Deps<S, R, I> {
    pub store: S,
    pub runtimes: R,
    /// ECR's scans of the stack's images (the vulnerability gate).
    pub scans: I,
    pub config: DeployConfig,
    pub now: Clock,
}

impl Deps<S3Store, AgentCore, Ecr> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = DeployConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            store: S3Store::new(s3_client(&sdk), config.bucket.clone()),
            runtimes: AgentCore::new(aws_sdk_bedrockagentcorecontrol::Client::new(&sdk)),
            scans: Ecr::new(aws_sdk_ecr::Client::new(&sdk)),
            config,
            now: Utc::now,
        })
    }
}

pub async fn handle<S: ObjectStore, R: Runtimes, I: ImageScans>(
    deps: &Deps<S, R, I>,
    input: DeployInput,
) -> Result<DeployOutput, Error> {
    let DeployInput {
        plan,
        build,
        started_at,
    } = input;
    let spec = plan
        .deploy
        .clone()
        .ok_or_else(|| Error::InvalidState("DeployRuntime needs plan.deploy".into()))?;
    // The vulnerability gate, before any runtime or version is created (`domain::scan_gate`).
    let gate = scan_gate(deps, &plan, &build, &spec, started_at).await?;
    let mut deployment = match &gate {
        Some(g) if g.blocked() => {
            let uri = container_uri(&plan.image.repository_uri, build.image_digest.as_deref());
            Deployment::refused(&spec, uri, g.failure_reason(), (deps.now)())
        }
        _ => deploy(deps, &plan, &build, &spec, started_at).await?,
    };
    deployment.scan = gate;
    tracing::info!(
        build_id = %plan.build_id,
        project = %plan.project,
        agent = %plan.agent,
        runtime = %deployment.runtime_name,
        runtime_id = deployment.runtime_id.as_deref().unwrap_or("-"),
        action = deployment.action.as_deref().unwrap_or("-"),
        status = deployment.status.as_str(),
        "deploy started"
    );
    Ok(DeployOutput { deployment })
}

super::lambda_main!();

/// AgentCore client tokens: 33 to 256 characters, derived from the execution, so a retried
/// call (or a redrive) is the same call.
pub fn client_token(execution_arn: &str, action: &str) -> String {
    let h = Sha256::digest(format!("agentbuild-deploy-v1/{execution_arn}/{action}").as_bytes());
    hex::encode(h)
}

/// The gate's verdict on what this build deploys: the image's ECR scan, or a code artifact's
/// dependency scan; `None` when there is nothing scanned to judge (no image, no dependencies).
async fn scan_gate<S: ObjectStore, R, I: ImageScans>(
    deps: &Deps<S, R, I>,
    plan: &BuildPlan,
    build: &BuildState,
    spec: &DeploySpec,
    started_at: DateTime<Utc>,
) -> Result<Option<ScanGate>, Error> {
    let layer = build
        .artifact
        .as_ref()
        .and_then(|a| a.dependencies.as_ref());
    let report = match (layer, build.image_digest.as_deref()) {
        (Some(layer), _) => {
            let text = deps.store.get(&layer_scan_key(&layer.key)).await?;
            from_layer_scan(text.as_deref())
        }
        (None, Some(digest)) if build.artifact.is_none() => {
            let repository = repository_name(&plan.image.repository_uri);
            deps.scans.findings(repository, digest).await?
        }
        _ => return Ok(None),
    };
    let waited = ((deps.now)() - started_at).num_seconds();
    if deps.config.scan_gate.waits_for(&report, waited) {
        let why = report.reason.unwrap_or_default();
        tracing::info!(build_id = %plan.build_id, waited, "scan pending: waiting for ECR's scan");
        return Err(Error::ScanPending(format!(
            "the stack requires a scan before a deploy (ScanGateRequireScan) and ECR has none \
             yet after {waited} s: {why}"
        )));
    }
    let gate = decide(&report, &deps.config.scan_gate, &spec.accept_findings);
    tracing::info!(build_id = %plan.build_id, gate = ?gate.status, findings = gate.findings, "scan gate");
    Ok(Some(gate))
}

async fn deploy<S: ObjectStore, R: Runtimes, I>(
    deps: &Deps<S, R, I>,
    plan: &BuildPlan,
    build: &BuildState,
    spec: &DeploySpec,
    started_at: DateTime<Utc>,
) -> Result<Deployment, Error> {
    let now = (deps.now)();
    let (uri, code) = match what_runs(plan, build) {
        Ok(run) => run,
        Err(why) => return Ok(Deployment::refused(spec, None, why, now)),
    };
    let owner = Owner {
        stack: &deps.config.stack,
        project: &plan.project,
        agent: &plan.agent,
    };
    let request = |action: &str| RuntimeRequest {
        code: code.clone(),
        ..runtime_request(deps, plan, spec, &uri, &owner, action)
    };
    let policy = &deps.config.policy;
    let begun = |info, action| started(spec, &info, &uri, action, started_at, now, policy);
    // The runtime this agent's latest record deployed to (a runtime deleted by hand since is
    // found no more, and is created again below).
    let latest = records::latest(&deps.store, &plan.project, &plan.agent).await?;
    let latest = latest.map(|l| l.record);
    // A live agent never moves backwards: claim the runtime first (`domain::supersede`).
    if let Err(why) = deploys::claim(&deps.store, plan, build, &uri, latest.as_ref(), now).await? {
        return Ok(superseded(spec, uri, why, now));
    }
    let (store, name) = (&deps.store, spec.runtime_name.as_str());
    runtime_names::adopt_previous(store, &owner, latest.as_ref(), name, now).await?;
    let previous = latest.and_then(|l| l.deployment);
    let (info, action) = match touch(deps, plan, spec, &owner, previous.as_ref(), &request).await? {
        Ok(touched) => touched,
        Err(why) => return Ok(Deployment::refused(spec, Some(uri.clone()), why, now)),
    };
    let runtime = (info.id.as_str(), info.arn.as_str());
    runtime_names::note_deployed(
        &deps.store,
        &spec.runtime_name,
        &owner,
        runtime,
        &plan.build_id,
        now,
    )
    .await?;
    Ok(begun(info, action))
}

/// Updates the runtime of the previous deployment, else this agent's runtime of the name, else
/// creates one; `Err` (untouched) when the name or the runtime of that name is not this agent's.
async fn touch<S: ObjectStore, R: Runtimes, I>(
    deps: &Deps<S, R, I>,
    plan: &BuildPlan,
    spec: &DeploySpec,
    owner: &Owner<'_>,
    previous: Option<&Deployment>,
    request: &impl Fn(&str) -> RuntimeRequest,
) -> Result<Result<(RuntimeInfo, &'static str), String>, Error> {
    // A runtime name belongs to one agent (`domain::runtime_names`): ValidateRequest bound it;
    // claimed again here, as nothing is touched under another agent's name.
    let now = (deps.now)();
    match runtime_names::claim(&deps.store, &spec.runtime_name, owner, now).await {
        Err(Error::InvalidRequest(r)) => return Ok(Err(format!("{}: {}", r.field, r.message))),
        other => other?,
    }
    if let Some(id) = previous_runtime(previous, spec) {
        if let Some(info) = deps.runtimes.update(id, &request("update")).await? {
            return Ok(Ok((info, "UPDATED")));
        }
        tracing::warn!(build_id = %plan.build_id, runtime_id = %id, "the previous deployment's runtime is gone");
    }
    let found = deps.runtimes.find_by_name(&spec.runtime_name).await?;
    match target_by_name(found.as_ref(), owner) {
        Target::Update { id } => {
            if let Some(info) = deps.runtimes.update(&id, &request("update")).await? {
                return Ok(Ok((info, "UPDATED")));
            }
        }
        Target::Refuse(why) => return Ok(Err(why)),
        Target::Create => {}
    }
    let info = deps.runtimes.create(&request("create")).await?;
    Ok(Ok((info, "CREATED")))
}

/// What the runtime will run: the image (`repository@digest`), or a code artifact's exact S3
/// version with its entry point and runtime (`codeConfiguration`); why not, when nothing can.
fn what_runs(
    plan: &BuildPlan,
    build: &BuildState,
) -> Result<(String, Option<CodeRun>), &'static str> {
    let Some((entry_point, runtime)) = plan.code() else {
        let digest = build.image_digest.as_deref();
        return container_uri(&plan.image.repository_uri, digest)
            .map(|uri| (uri, None))
            .ok_or("the build exported no image digest (IMAGE_DIGEST): there is no image to run");
    };
    let artifact = build
        .artifact
        .as_ref()
        .ok_or("the build assembled no code artifact: there is nothing to run")?;
    let run = CodeRun {
        bucket: artifact.bucket.clone(),
        key: artifact.key.clone(),
        version_id: artifact.version_id.clone(),
        entry_point: entry_point.to_string(),
        runtime,
    };
    Ok((run.uri(), Some(run)))
}

/// The Create/Update call of this build's image for `action`.
fn runtime_request<S, R, I>(
    deps: &Deps<S, R, I>,
    plan: &BuildPlan,
    spec: &DeploySpec,
    uri: &str,
    owner: &Owner<'_>,
    action: &str,
) -> RuntimeRequest {
    RuntimeRequest {
        name: spec.runtime_name.clone(),
        container_uri: uri.to_string(),
        code: None,
        role_arn: spec
            .role_arn
            .clone()
            .unwrap_or_else(|| deps.config.default_role.clone()),
        spec: spec.clone(),
        tags: owner.tags(),
        client_token: client_token(&plan.execution_arn, action),
        description: format!("agentbuild {}/{}", plan.project, plan.agent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deploy_request::validate_deploy;
    use crate::domain::deployment::{DeployPolicy, DeploymentStatus};
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::record::BuildRecord;
    use crate::domain::scan_gate::{
        Finding, GatePolicy, GateStatus, ScanReport, ScanStatus, Severity,
    };
    use crate::domain::status::BuildStatus;
    use crate::testing::fake_runtimes::{FakeRuntimes, STACK};
    use crate::testing::fake_scans::FakeScans;
    use crate::testing::fakes::FakeStore;
    use serde_json::json;

    const DIGEST: &str = "sha256:abababababababababababababababababababababababababababababababab";

    type TestDeps = Deps<FakeStore, FakeRuntimes, FakeScans>;

    fn deps() -> TestDeps {
        Deps {
            store: FakeStore::default(),
            runtimes: FakeRuntimes::default(),
            scans: FakeScans::default(),
            config: DeployConfig {
                bucket: "own".into(),
                stack: STACK.into(),
                default_role: "arn:aws:iam::123456789012:role/agentbuild-runtime".into(),
                policy: DeployPolicy {
                    first_wait_seconds: 5,
                    timeout_seconds: 900,
                },
                scan_gate: GatePolicy::default(),
            },
            now: || "2026-11-28T10:06:00Z".parse().unwrap(),
        }
    }

    fn input(deploy: serde_json::Value) -> DeployInput {
        let mut p = plan();
        p.deploy = Some(validate_deploy(&deploy, STACK, &p.project, &p.agent, None).unwrap());
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        b.image_digest = Some(DIGEST.into());
        b.finished_at = Some(t("2026-11-28T10:05:30Z"));
        DeployInput {
            plan: p,
            build: b,
            started_at: t("2026-11-28T10:05:59Z"),
        }
    }

    /// An earlier build of this agent that deployed to `runtime_id` under `name`.
    fn latest_deployed(d: &TestDeps, name: &str, runtime_id: &str) {
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        let mut rec = BuildRecord::new(&plan(), Some(&b), None, t("2026-11-28T09:00:00Z"));
        rec.build_id = "b-0".into();
        rec.deployment = Some(
            serde_json::from_value(json!({
                "status": "READY", "runtimeId": runtime_id, "runtimeArn": "arn", "runtimeName": name,
                "runtimeVersion": "1", "containerUri": "r@sha256:00", "startedAt": "2026-11-28T09:00:00Z",
                "finishedAt": "2026-11-28T09:01:00Z"
            }))
            .unwrap(),
        );
        d.store
            .seed("agents/nexus-ai/sales/latest.json", rec.to_json());
    }

    #[tokio::test]
    async fn a_code_artifact_deploys_its_exact_s3_version_with_code_configuration() {
        use crate::domain::artifact::PythonRuntime;
        let d = deps();
        let mut i = code_plan(json!({}));
        let out = handle(&d, i.clone()).await.unwrap();
        assert_eq!(
            out.deployment.status,
            DeploymentStatus::Failed,
            "no artifact, nothing to run"
        );
        i.build.artifact = Some(code_artifact(None));
        let out = handle(&d, i).await.unwrap();
        assert_eq!(out.deployment.status, DeploymentStatus::Deploying);
        let uri = "s3://own/artifacts/nexus-ai/sales/ab.zip?versionId=v-9";
        assert_eq!(out.deployment.container_uri.as_deref(), Some(uri));
        let created = d.runtimes.created.borrow();
        let code = created[0].code.as_ref().expect("codeConfiguration");
        assert_eq!(
            (
                code.key.as_str(),
                code.version_id.as_deref(),
                code.entry_point.as_str()
            ),
            ("artifacts/nexus-ai/sales/ab.zip", Some("v-9"), "main.py")
        );
        assert_eq!(code.runtime, PythonRuntime::Python313);
    }

    #[tokio::test]
    async fn the_first_deployment_creates_a_tagged_runtime_with_an_idempotent_token() {
        let d = deps();
        let out = handle(&d, input(json!({}))).await.unwrap();
        let dep = out.deployment;
        assert_eq!(dep.status, DeploymentStatus::Deploying);
        assert_eq!(dep.action.as_deref(), Some("CREATED"));
        assert_eq!(dep.wait_seconds, Some(5));
        assert_eq!(dep.deadline, Some(t("2026-11-28T10:20:59Z")));
        let created = d.runtimes.created.borrow();
        let req = &created[0];
        assert_eq!(
            req.container_uri,
            format!("{}@{DIGEST}", plan().image.repository_uri)
        );
        assert_eq!(
            req.role_arn,
            "arn:aws:iam::123456789012:role/agentbuild-runtime"
        );
        assert_eq!(req.tags["agentbuild:agent"], "sales");
        assert_eq!(req.tags["agentbuild:stack"], STACK);
        assert_eq!(
            req.client_token,
            client_token(&plan().execution_arn, "create")
        );
        assert_eq!(req.client_token.len(), 64);
        assert_ne!(req.client_token, client_token("arn:other", "create"));
    }

    #[tokio::test]
    async fn a_later_build_updates_the_runtime_its_latest_record_deployed_to() {
        let d = deps();
        let name = validate_deploy(&json!({}), STACK, "nexus-ai", "sales", None)
            .unwrap()
            .runtime_name;
        d.runtimes.add("rt-1", &name, "nexus-ai", "sales");
        latest_deployed(&d, &name, "rt-1");
        let dep = handle(&d, input(json!({}))).await.unwrap().deployment;
        assert_eq!(
            (dep.action.as_deref(), dep.runtime_id.as_deref()),
            (Some("UPDATED"), Some("rt-1"))
        );
        assert_eq!(d.runtimes.updated.borrow()[0].0, "rt-1");
        assert!(d.runtimes.created.borrow().is_empty());
        assert_eq!(dep.runtime_version.as_deref(), Some("2"));
    }

    #[tokio::test]
    async fn a_runtime_deleted_by_hand_is_created_again() {
        let d = deps();
        let name = validate_deploy(&json!({}), STACK, "nexus-ai", "sales", None)
            .unwrap()
            .runtime_name;
        latest_deployed(&d, &name, "rt-deleted");
        let dep = handle(&d, input(json!({}))).await.unwrap().deployment;
        assert_eq!(dep.action.as_deref(), Some("CREATED"));
        assert_eq!(d.runtimes.created.borrow().len(), 1);
    }

    #[tokio::test]
    async fn a_runtime_found_by_name_is_updated_only_when_tagged_for_this_agent() {
        let d = deps();
        d.runtimes.add("rt-mine", "Mine", "nexus-ai", "sales");
        let dep = handle(&d, input(json!({"runtimeName": "Mine"})))
            .await
            .unwrap()
            .deployment;
        assert_eq!(
            (dep.action.as_deref(), dep.runtime_id.as_deref()),
            (Some("UPDATED"), Some("rt-mine"))
        );

        let d = deps();
        d.runtimes.add("rt-theirs", "Theirs", "nexus-ai", "billing");
        let dep = handle(&d, input(json!({"runtimeName": "Theirs"})))
            .await
            .unwrap()
            .deployment;
        assert_eq!(dep.status, DeploymentStatus::Failed);
        assert!(dep
            .failure_reason
            .unwrap()
            .starts_with("deploy.runtimeName: "));
        assert!(d.runtimes.updated.borrow().is_empty() && d.runtimes.created.borrow().is_empty());

        // The same agent's runtime of another stack in the account: never touched.
        let d = deps();
        d.runtimes.add_of(
            "agentbuild-staging",
            "rt-staging",
            "Shared",
            "nexus-ai",
            "sales",
        );
        let dep = handle(&d, input(json!({"runtimeName": "Shared"})))
            .await
            .unwrap()
            .deployment;
        assert_eq!(dep.status, DeploymentStatus::Failed);
        assert!(dep
            .failure_reason
            .unwrap()
            .starts_with("deploy.runtimeName: "));
        assert!(d.runtimes.updated.borrow().is_empty() && d.runtimes.created.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_build_without_an_image_digest_deploys_nothing() {
        let d = deps();
        let mut i = input(json!({}));
        i.build.image_digest = None;
        let dep = handle(&d, i).await.unwrap().deployment;
        assert_eq!(dep.status, DeploymentStatus::Failed);
        assert!(dep.failure_reason.unwrap().contains("IMAGE_DIGEST"));
        assert_eq!(d.store.calls(), 0);
    }

    #[tokio::test]
    async fn an_allowed_role_named_in_the_request_is_used_and_a_plan_without_deploy_is_invalid() {
        let d = deps();
        handle(
            &d,
            input(json!({"roleArn": "arn:aws:iam::123456789012:role/team"})),
        )
        .await
        .unwrap();
        assert_eq!(
            d.runtimes.created.borrow()[0].role_arn,
            "arn:aws:iam::123456789012:role/team"
        );
        let mut i = input(json!({}));
        i.plan.deploy = None;
        assert_eq!(handle(&d, i).await.unwrap_err().name(), "InvalidState");
    }

    #[tokio::test]
    async fn a_transient_agentcore_error_fails_the_step_for_a_retry() {
        let d = deps();
        d.runtimes
            .fail_next
            .borrow_mut()
            .push_back(Error::TransientAws(
                "AgentCore.ListAgentRuntimes: throttled".into(),
            ));
        assert_eq!(
            handle(&d, input(json!({}))).await.unwrap_err().name(),
            "TransientAwsError"
        );
        // The retry: no runtime was created by the failed attempt; this one creates it.
        handle(&d, input(json!({}))).await.unwrap();
        assert_eq!(d.runtimes.created.borrow().len(), 1);
    }

    #[tokio::test]
    async fn a_deploy_older_than_the_ledgers_claim_leaves_the_runtime_alone() {
        let d = deps();
        let mut newer = input(json!({}));
        newer.plan.build_id = "b-newer".into();
        newer.plan.submitted_at = Some(t("2026-11-28T10:00:00Z"));
        handle(&d, newer).await.unwrap();
        assert_eq!(d.runtimes.created.borrow().len(), 1);
        let mut older = input(json!({}));
        older.plan.submitted_at = Some(t("2026-11-28T09:00:00Z"));
        let dep = handle(&d, older).await.unwrap().deployment;
        assert_eq!(dep.status, DeploymentStatus::Superseded);
        assert_eq!(dep.superseded.unwrap().by, "b-newer");
        assert_eq!(d.runtimes.created.borrow().len(), 1);
        assert!(d.runtimes.updated.borrow().is_empty());
    }

    #[tokio::test]
    async fn the_binding_names_the_runtime_and_build_and_another_agents_name_is_refused() {
        let d = deps();
        handle(&d, input(json!({"runtimeName": "Mine"})))
            .await
            .unwrap();
        let bound: crate::domain::runtime_names::Binding =
            d.store.own_json("runtimes/Mine.json").unwrap();
        assert_eq!(bound.agent, "sales");
        assert_eq!(
            bound.last_build_id.as_deref(),
            Some(plan().build_id.as_str())
        );
        assert!(bound.runtime_id.is_some());

        let d = deps();
        let billing = Owner {
            stack: STACK,
            project: "nexus-ai",
            agent: "billing",
        };
        runtime_names::claim(&d.store, "Theirs", &billing, t("2026-11-28T09:00:00Z"))
            .await
            .unwrap();
        let dep = handle(&d, input(json!({"runtimeName": "Theirs"})))
            .await
            .unwrap()
            .deployment;
        assert_eq!(dep.status, DeploymentStatus::Failed);
        assert!(dep
            .failure_reason
            .unwrap()
            .starts_with("deploy.runtimeName: "));
        assert!(d.runtimes.created.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_runtime_deployed_under_another_name_before_bindings_is_listed_superseded() {
        let d = deps();
        d.runtimes.add("rt-legacy", "Legacy", "nexus-ai", "sales");
        latest_deployed(&d, "Legacy", "rt-legacy");
        handle(&d, input(json!({"runtimeName": "Mine"})))
            .await
            .unwrap();
        // Bound and noted: `runtimes` lists it SUPERSEDED (the latest deploys elsewhere now).
        let legacy: crate::domain::runtime_names::Binding =
            d.store.own_json("runtimes/Legacy.json").unwrap();
        assert_eq!(legacy.agent, "sales");
        assert_eq!(legacy.runtime_id.as_deref(), Some("rt-legacy"));
        assert_eq!(legacy.last_build_id.as_deref(), Some("b-0"));
    }

    /// Every scenario above, against one recorder of the SDK operations the fakes stand for.
    fn critical_scan() -> ScanReport {
        ScanReport {
            source: "ecr".into(),
            status: ScanStatus::Complete,
            reason: None,
            findings: vec![Finding {
                id: "CVE-2026-31337".into(),
                aliases: vec![],
                severity: Severity::Critical,
                package: Some("openssl".into()),
                version: Some("3.0.1".into()),
                fix_available: true,
            }],
        }
    }

    #[tokio::test]
    async fn a_critical_finding_with_a_fix_blocks_the_deploy_naming_it() {
        let d = deps();
        d.scans.set(critical_scan());
        let dep = handle(&d, input(json!({}))).await.unwrap().deployment;
        assert_eq!(dep.status, DeploymentStatus::Failed);
        let why = dep.failure_reason.unwrap();
        assert!(
            why.contains("CVE-2026-31337 (CRITICAL in openssl 3.0.1)"),
            "{why}"
        );
        assert_eq!(dep.scan.unwrap().status, GateStatus::Blocked);
        assert_eq!(
            dep.endpoint.as_deref(),
            Some("live"),
            "a blocked deploy names its endpoint"
        );
        assert!(d.runtimes.created.borrow().is_empty());
        let asked = d.scans.asked.lock().unwrap().clone();
        assert_eq!(asked, [format!("agentbuild@{DIGEST}")]);
    }

    #[tokio::test]
    async fn an_accepted_finding_deploys_and_the_acceptance_is_recorded() {
        let d = deps();
        d.scans.set(critical_scan());
        let dep = handle(&d, input(json!({"acceptFindings": ["CVE-2026-31337"]})))
            .await
            .unwrap()
            .deployment;
        assert_eq!(dep.status, DeploymentStatus::Deploying);
        let gate = dep.scan.unwrap();
        assert_eq!(gate.status, GateStatus::Accepted);
        assert_eq!(gate.accepted[0].id, "CVE-2026-31337");
        assert_eq!(d.runtimes.created.borrow().len(), 1);
    }

    /// A code build's plan (Python 3.13, `main.py`) with no image and no artifact yet.
    fn code_plan(deploy: serde_json::Value) -> DeployInput {
        use crate::domain::artifact::{ArtifactSpec, PythonRuntime};
        let mut i = input(deploy);
        i.plan.artifact = ArtifactSpec::Code {
            entry_point: "main.py".to_string().try_into().unwrap(),
            runtime: PythonRuntime::Python313,
        };
        i.build.image_digest = None;
        i
    }

    /// Version `v-9` of the agent's code artifact `ab.zip`, with `dependencies`.
    fn code_artifact(
        dependencies: Option<crate::domain::artifact::DependencyLayer>,
    ) -> crate::domain::artifact::ArtifactRecord {
        crate::domain::artifact::ArtifactRecord {
            kind: crate::domain::artifact::ArtifactKind::Code,
            uri: "s3://own/artifacts/nexus-ai/sales/ab.zip".into(),
            bucket: "own".into(),
            key: "artifacts/nexus-ai/sales/ab.zip".into(),
            version_id: Some("v-9".into()),
            sha256: "ab".into(),
            size: 1,
            dependencies,
            sbom: None,
        }
    }

    /// A code build whose dependency layer `key` has `scan` as its scan summary (none: `None`).
    fn code_input(
        d: &TestDeps,
        scan: Option<serde_json::Value>,
        deploy: serde_json::Value,
    ) -> DeployInput {
        use crate::domain::artifact::DependencyLayer;
        let mut i = code_plan(deploy);
        i.build.artifact = Some(code_artifact(Some(DependencyLayer {
            key: "k1".into(),
            reused: false,
        })));
        if let Some(scan) = scan {
            d.store.seed(
                "dependencies/k1.scan.json",
                serde_json::to_vec(&scan).unwrap(),
            );
        }
        i
    }

    fn pip_audit_critical() -> serde_json::Value {
        json!({"tool": "pip-audit 2.10.1", "source": "pypi", "status": "COMPLETE", "packages": 3,
               "audited": 3, "skipped": [], "findings": [{"id": "PYSEC-2026-7", "aliases": ["CVE-2026-4242"],
               "package": "urllib3", "version": "1.26.0", "fixVersions": ["1.26.19"], "severity": "UNKNOWN"}]})
    }

    #[tokio::test]
    async fn a_code_artifacts_fixable_dependency_finding_blocks_and_accepting_it_deploys() {
        let d = deps();
        let dep = handle(&d, code_input(&d, Some(pip_audit_critical()), json!({})))
            .await
            .unwrap()
            .deployment;
        assert_eq!(dep.status, DeploymentStatus::Failed);
        let why = dep.failure_reason.unwrap();
        assert!(
            why.contains("PYSEC-2026-7 (UNKNOWN in urllib3 1.26.0)"),
            "{why}"
        );
        assert!(why.contains("of the pip-audit scan"), "{why}");
        let gate = dep.scan.unwrap();
        assert_eq!(
            (gate.status, gate.source.as_str()),
            (GateStatus::Blocked, "pip-audit")
        );
        assert!(d.runtimes.created.borrow().is_empty());
        assert!(
            d.scans.asked.lock().unwrap().is_empty(),
            "ECR is not asked for code"
        );
        // Accepted by an alias: deployed, and the acceptance is recorded.
        let accept = json!({"acceptFindings": ["CVE-2026-4242"]});
        let dep = handle(&d, code_input(&d, None, accept))
            .await
            .unwrap()
            .deployment;
        assert_eq!(dep.status, DeploymentStatus::Deploying);
        let gate = dep.scan.unwrap();
        assert_eq!(gate.status, GateStatus::Accepted);
        assert_eq!(gate.accepted[0].id, "PYSEC-2026-7");
        assert_eq!(d.runtimes.created.borrow().len(), 1);
    }

    #[tokio::test]
    async fn a_layer_without_a_scan_is_recorded_unavailable_and_deploys() {
        let d = deps();
        let dep = handle(&d, code_input(&d, None, json!({})))
            .await
            .unwrap()
            .deployment;
        assert_eq!(dep.status, DeploymentStatus::Deploying);
        let gate = dep.scan.unwrap();
        assert_eq!(gate.status, GateStatus::Unavailable);
        assert_eq!(
            gate.reason.as_deref(),
            Some("the dependency layer has no scan")
        );
    }

    #[tokio::test]
    async fn a_required_scan_is_waited_for_then_its_absence_blocks() {
        let unscanned = || ScanReport::unavailable("ecr", "ECR's scan is IN_PROGRESS: d");
        // Default: an image without a scan deploys, recorded UNAVAILABLE.
        let d = deps();
        d.scans.set(unscanned());
        let dep = handle(&d, input(json!({}))).await.unwrap().deployment;
        assert_eq!(dep.scan.unwrap().status, GateStatus::Unavailable);
        assert_eq!(d.runtimes.created.borrow().len(), 1);
        // ScanGateRequireScan, inside the wait: ScanPending (the state machine retries it).
        let mut d = deps();
        d.config.scan_gate.require_scan = true;
        d.scans.set(unscanned());
        let err = handle(&d, input(json!({}))).await.unwrap_err();
        assert_eq!(err.name(), "ScanPending");
        assert!(err.to_string().contains("IN_PROGRESS"), "{err}");
        // Past the wait (entered SCAN_WAIT_SECONDS ago): BLOCKED, nothing created.
        let mut late = input(json!({}));
        late.started_at = t("2026-11-28T10:01:00Z");
        let dep = handle(&d, late).await.unwrap().deployment;
        assert_eq!(dep.status, DeploymentStatus::Failed);
        assert_eq!(dep.scan.as_ref().unwrap().status, GateStatus::Blocked);
        let why = dep.failure_reason.unwrap();
        assert!(why.contains("requires one (ScanGateRequireScan)"), "{why}");
        assert!(d.runtimes.created.borrow().is_empty());
    }

    #[test]
    fn calls_exactly_the_sdk_operations_the_catalog_lists() {
        let called = crate::testing::fakes::operations_of(
            include_str!("deploy_runtime.rs"),
            crate::testing::fakes::scenarios![
                the_first_deployment_creates_a_tagged_runtime_with_an_idempotent_token,
                a_code_artifact_deploys_its_exact_s3_version_with_code_configuration,
                a_later_build_updates_the_runtime_its_latest_record_deployed_to,
                a_runtime_deleted_by_hand_is_created_again,
                a_runtime_found_by_name_is_updated_only_when_tagged_for_this_agent,
                a_build_without_an_image_digest_deploys_nothing,
                an_allowed_role_named_in_the_request_is_used_and_a_plan_without_deploy_is_invalid,
                a_transient_agentcore_error_fails_the_step_for_a_retry,
                a_deploy_older_than_the_ledgers_claim_leaves_the_runtime_alone,
                a_critical_finding_with_a_fix_blocks_the_deploy_naming_it,
                an_accepted_finding_deploys_and_the_acceptance_is_recorded,
                the_binding_names_the_runtime_and_build_and_another_agents_name_is_refused,
                a_runtime_deployed_under_another_name_before_bindings_is_listed_superseded,
                a_code_artifacts_fixable_dependency_finding_blocks_and_accepting_it_deploys,
                a_layer_without_a_scan_is_recorded_unavailable_and_deploys,
                a_required_scan_is_waited_for_then_its_absence_blocks,
            ],
        );
        crate::testing::fakes::assert_operations_are_listed("deploy-runtime", &called);
    }
}
