//! CheckRuntime's rule, with its calls: the runtime's new version READY -> smoke test of that
//! version -> the deploy ledger re-read -> the named endpoint moved -> the endpoint READY
//! serving it. Nothing moves the endpoint unless the version passed and the build is still the
//! agent's newest (`domain::rollout` decides; this loads and calls).

use crate::domain::deploy_request::Protocol;
use crate::domain::deployment::{observe, DeployPolicy, Deployment, DeploymentStatus, Owner};
use crate::domain::endpoint_move::{candidate, endpoint_observed, moving, smoked, stale};
use crate::domain::plan::BuildPlan;
use crate::domain::record::BuildState;
use crate::domain::rollout::Phase;
use crate::ports::{Endpoints, ObjectStore, Runtimes, SmokeTester};
use crate::services::deploys::still_ours;
use crate::Error;
use chrono::{DateTime, Utc};

/// What CheckRuntime talks to.
pub struct Rollout<'a, R, T, S> {
    /// The stack whose tag a created endpoint carries.
    pub stack: &'a str,
    pub runtimes: &'a R,
    pub smoke: &'a T,
    pub store: &'a S,
    pub policy: &'a DeployPolicy,
}

/// AgentCore wants a session id of 33 characters or more: one per build and version.
pub fn smoke_session(build_id: &str, version: &str) -> String {
    format!(
        "{:0<33}",
        format!("agentbuild-smoke-{build_id}-v{version}-")
    )
}

impl<R: Runtimes + Endpoints, T: SmokeTester, S: ObjectStore> Rollout<'_, R, T, S> {
    fn owner_tags(&self, plan: &BuildPlan) -> std::collections::BTreeMap<String, String> {
        Owner {
            stack: self.stack,
            project: &plan.project,
            agent: &plan.agent,
        }
        .tags()
    }

    /// One check of a DEPLOYING deployment.
    pub async fn check(
        &self,
        plan: &BuildPlan,
        build: &BuildState,
        d: Deployment,
        now: DateTime<Utc>,
    ) -> Result<Deployment, Error> {
        let id = d
            .runtime_id
            .clone()
            .ok_or_else(|| Error::InvalidState("CheckRuntime needs deployment.runtimeId".into()))?;
        if d.phase == Some(Phase::Endpoint) {
            let name = d.endpoint.clone().unwrap_or_default();
            let info = self.runtimes.get_endpoint(&id, &name).await?;
            return Ok(endpoint_observed(d, info.as_ref(), now, self.policy));
        }
        let info = self.runtimes.get(&id).await?;
        let d = observe(d, info.as_ref(), now, self.policy);
        if d.status != DeploymentStatus::Ready {
            return Ok(d);
        }
        self.candidate_ready(plan, build, &id, d, now).await
    }

    async fn candidate_ready(
        &self,
        plan: &BuildPlan,
        build: &BuildState,
        id: &str,
        d: Deployment,
        now: DateTime<Utc>,
    ) -> Result<Deployment, Error> {
        let Some(spec) = plan.deploy.as_ref() else {
            return Ok(d);
        };
        let name = spec.endpoint();
        let current = self.runtimes.get_endpoint(id, name).await?;
        let d = candidate(d, name, current.as_ref());
        let version = d.version.clone().unwrap_or_default();
        let outcome = match spec.protocol {
            Protocol::Http => {
                let smoke = spec.smoke_test.clone().unwrap_or_default();
                let arn = d.runtime_arn.clone().unwrap_or_default();
                let session = smoke_session(&plan.build_id, &version);
                Some(
                    self.smoke
                        .invoke(
                            &arn,
                            &version,
                            &smoke.payload(),
                            smoke.timeout_seconds(),
                            &session,
                        )
                        .await?,
                )
            }
            Protocol::Mcp | Protocol::A2a => None,
        };
        let d = smoked(d, outcome, now);
        if d.status == DeploymentStatus::Failed {
            return Ok(d);
        }
        if let Err(why) = still_ours(self.store, plan, build).await? {
            return Ok(stale(d, why, now));
        }
        let info = self
            .runtimes
            .point_endpoint(
                id,
                name,
                &version,
                current.is_some(),
                &self.owner_tags(plan),
            )
            .await?;
        Ok(moving(d, &info, now, self.policy))
    }
}
