//! AgentCore Runtime's named endpoints (control plane) and the data plane's InvokeAgentRuntime
//! of one version (the smoke test).

use super::agentcore::AgentCore;
use super::classify;
use crate::domain::rollout::{EndpointInfo, EndpointStatus, SmokeOutcome};
use crate::ports::{Endpoints, SmokeTester};
use crate::Error;
use aws_sdk_bedrockagentcore::operation::invoke_agent_runtime::InvokeAgentRuntimeError;
use aws_sdk_bedrockagentcorecontrol::operation::get_agent_runtime_endpoint::GetAgentRuntimeEndpointError;
use aws_sdk_bedrockagentcorecontrol::types::AgentRuntimeEndpointStatus;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::Blob;
use std::time::Duration;

fn endpoint_status(s: &AgentRuntimeEndpointStatus) -> EndpointStatus {
    match s {
        AgentRuntimeEndpointStatus::Creating => EndpointStatus::Creating,
        AgentRuntimeEndpointStatus::Updating => EndpointStatus::Updating,
        AgentRuntimeEndpointStatus::Ready => EndpointStatus::Ready,
        AgentRuntimeEndpointStatus::CreateFailed | AgentRuntimeEndpointStatus::UpdateFailed => {
            EndpointStatus::Failed
        }
        other => EndpointStatus::Other(other.as_str().to_string()),
    }
}

impl Endpoints for AgentCore {
    async fn get_endpoint(
        &self,
        runtime_id: &str,
        name: &str,
    ) -> Result<Option<EndpointInfo>, Error> {
        let out = match self
            .client
            .get_agent_runtime_endpoint()
            .agent_runtime_id(runtime_id)
            .endpoint_name(name)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetAgentRuntimeEndpointError::ResourceNotFoundException(_))
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(classify("AgentCore.GetAgentRuntimeEndpoint", e)),
        };
        Ok(Some(EndpointInfo {
            name: out.name().to_string(),
            status: endpoint_status(out.status()),
            live_version: out.live_version().map(String::from),
            target_version: out.target_version().map(String::from),
            failure_reason: out.failure_reason().map(String::from),
        }))
    }

    async fn point_endpoint(
        &self,
        runtime_id: &str,
        name: &str,
        version: &str,
        exists: bool,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<EndpointInfo, Error> {
        let (status, target) = if exists {
            let out = self
                .client
                .update_agent_runtime_endpoint()
                .agent_runtime_id(runtime_id)
                .endpoint_name(name)
                .agent_runtime_version(version)
                .send()
                .await
                .map_err(|e| classify("AgentCore.UpdateAgentRuntimeEndpoint", e))?;
            (
                endpoint_status(out.status()),
                out.target_version().map(String::from),
            )
        } else {
            let out = self
                .client
                .create_agent_runtime_endpoint()
                .agent_runtime_id(runtime_id)
                .name(name)
                .agent_runtime_version(version)
                .set_tags(Some(
                    tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                ))
                .description("agentbuild: moved only to a version that passed its smoke test")
                .send()
                .await
                .map_err(|e| classify("AgentCore.CreateAgentRuntimeEndpoint", e))?;
            (
                endpoint_status(out.status()),
                Some(out.target_version().to_string()),
            )
        };
        // The answer does not say which version serves yet: CheckRuntime reads it next.
        Ok(EndpointInfo {
            name: name.to_string(),
            status: match status {
                EndpointStatus::Ready => EndpointStatus::Updating,
                other => other,
            },
            live_version: None,
            target_version: target,
            failure_reason: None,
        })
    }
}

/// AgentCore Runtime's data plane (InvokeAgentRuntime).
pub struct DataPlane {
    client: aws_sdk_bedrockagentcore::Client,
}

impl DataPlane {
    pub fn new(client: aws_sdk_bedrockagentcore::Client) -> Self {
        Self { client }
    }
}

impl SmokeTester for DataPlane {
    async fn invoke(
        &self,
        runtime_arn: &str,
        version: &str,
        payload: &serde_json::Value,
        timeout_seconds: u64,
        session_id: &str,
    ) -> Result<SmokeOutcome, Error> {
        let call = self
            .client
            .invoke_agent_runtime()
            .agent_runtime_arn(runtime_arn)
            .qualifier(version)
            .runtime_session_id(session_id)
            .content_type("application/json")
            .accept("application/json")
            .payload(Blob::new(payload.to_string().into_bytes()))
            .send();
        let out = match tokio::time::timeout(Duration::from_secs(timeout_seconds), call).await {
            Err(_) => {
                return Ok(SmokeOutcome::Refused(format!(
                    "POST /invocations did not answer within {timeout_seconds} s"
                )))
            }
            Ok(Ok(out)) => out,
            Ok(Err(e)) => {
                // RuntimeClientError: the agent's own answer or crash, relayed by AgentCore.
                let agents_fault = matches!(
                    e.as_service_error(),
                    Some(
                        InvokeAgentRuntimeError::RuntimeClientError(_)
                            | InvokeAgentRuntimeError::ValidationException(_)
                    )
                );
                if agents_fault {
                    return Ok(SmokeOutcome::Refused(format!(
                        "POST /invocations failed: {}",
                        DisplayErrorContext(&e)
                    )));
                }
                return Err(classify("AgentCore.InvokeAgentRuntime", e));
            }
        };
        match out.status_code() {
            Some(s) if !(200..300).contains(&s) => Ok(SmokeOutcome::Refused(format!(
                "POST /invocations answered {s}"
            ))),
            _ => Ok(SmokeOutcome::Answered),
        }
    }
}
