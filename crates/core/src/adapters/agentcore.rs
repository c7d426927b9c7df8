//! Bedrock AgentCore Runtime's control plane: creates, updates, finds and reads runtimes.

use super::classify;
use crate::domain::artifact::{code_uri, CodeRun, PythonRuntime};
use crate::domain::deploy_request::{NetworkMode, Protocol};
use crate::domain::deployment::{FoundRuntime, RuntimeInfo, RuntimeStatus};
use crate::ports::{RuntimeRequest, Runtimes};
use crate::Error;
use aws_sdk_bedrockagentcorecontrol::operation::delete_agent_runtime::DeleteAgentRuntimeError;
use aws_sdk_bedrockagentcorecontrol::operation::get_agent_runtime::GetAgentRuntimeError;
use aws_sdk_bedrockagentcorecontrol::operation::list_tags_for_resource::ListTagsForResourceError;
use aws_sdk_bedrockagentcorecontrol::operation::update_agent_runtime::UpdateAgentRuntimeError;
use aws_sdk_bedrockagentcorecontrol::types::{
    AgentManagedRuntimeType, AgentRuntimeArtifact, AgentRuntimeStatus, Code, CodeConfiguration,
    ContainerConfiguration, LifecycleConfiguration, NetworkConfiguration,
    NetworkMode as SdkNetworkMode, ProtocolConfiguration, S3Location, ServerProtocol, VpcConfig,
};
use aws_sdk_bedrockagentcorecontrol::Client;

pub struct AgentCore {
    /// Also `adapters::endpoints`' (the endpoint calls live beside the data plane's).
    pub(crate) client: Client,
}

impl AgentCore {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn status(s: &AgentRuntimeStatus) -> RuntimeStatus {
    match s {
        AgentRuntimeStatus::Creating => RuntimeStatus::Creating,
        AgentRuntimeStatus::CreateFailed => RuntimeStatus::CreateFailed,
        AgentRuntimeStatus::Updating => RuntimeStatus::Updating,
        AgentRuntimeStatus::UpdateFailed => RuntimeStatus::UpdateFailed,
        AgentRuntimeStatus::Ready => RuntimeStatus::Ready,
        AgentRuntimeStatus::Deleting => RuntimeStatus::Deleting,
        AgentRuntimeStatus::DeleteFailed => RuntimeStatus::DeleteFailed,
        other => RuntimeStatus::Unknown(other.as_str().to_string()),
    }
}

fn bad_request(what: &str, e: impl std::fmt::Display) -> Error {
    Error::InvalidState(format!("{what}: {e}"))
}

/// The request's container, network and protocol as AgentCore's types.
fn parts(
    req: &RuntimeRequest,
) -> Result<
    (
        AgentRuntimeArtifact,
        NetworkConfiguration,
        ProtocolConfiguration,
    ),
    Error,
> {
    let artifact = match &req.code {
        Some(code) => AgentRuntimeArtifact::CodeConfiguration(code_configuration(code)?),
        None => AgentRuntimeArtifact::ContainerConfiguration(
            ContainerConfiguration::builder()
                .container_uri(&req.container_uri)
                .build()
                .map_err(|e| bad_request("container configuration", e))?,
        ),
    };
    let mut network = NetworkConfiguration::builder();
    network = match req.spec.network_mode {
        NetworkMode::Public => network.network_mode(SdkNetworkMode::Public),
        NetworkMode::Vpc => network
            .network_mode(SdkNetworkMode::Vpc)
            .network_mode_config(
                VpcConfig::builder()
                    .set_subnets(Some(req.spec.subnets.clone()))
                    .set_security_groups(Some(req.spec.security_groups.clone()))
                    .build()
                    .map_err(|e| bad_request("VPC configuration", e))?,
            ),
    };
    let protocol = ProtocolConfiguration::builder()
        .server_protocol(match req.spec.protocol {
            Protocol::Http => ServerProtocol::Http,
            Protocol::Mcp => ServerProtocol::Mcp,
            Protocol::A2a => ServerProtocol::A2A,
        })
        .build()
        .map_err(|e| bad_request("protocol configuration", e))?;
    let network = network
        .build()
        .map_err(|e| bad_request("network configuration", e))?;
    Ok((artifact, network, protocol))
}

/// `deploy.lifecycle`, passed through (validated 60–28,800 s at the door).
fn lifecycle(req: &RuntimeRequest) -> Option<LifecycleConfiguration> {
    let l = req.spec.lifecycle?;
    let secs = |v: Option<crate::domain::rollout::LifecycleSeconds>| v.map(|s| s.get() as i32);
    Some(
        LifecycleConfiguration::builder()
            .set_idle_runtime_session_timeout(secs(l.idle_runtime_session_timeout))
            .set_max_lifetime(secs(l.max_lifetime))
            .build(),
    )
}

/// A code artifact as AgentCore's `codeConfiguration`: `code.s3 {bucket, prefix (the
/// object's key), versionId}`, `entryPoint` (one item), `runtime`.
fn code_configuration(code: &CodeRun) -> Result<CodeConfiguration, Error> {
    let s3 = S3Location::builder()
        .bucket(&code.bucket)
        .prefix(&code.key)
        .set_version_id(code.version_id.clone())
        .build()
        .map_err(|e| bad_request("code location", e))?;
    let runtime = match code.runtime {
        PythonRuntime::Python310 => AgentManagedRuntimeType::Python310,
        PythonRuntime::Python311 => AgentManagedRuntimeType::Python311,
        PythonRuntime::Python312 => AgentManagedRuntimeType::Python312,
        PythonRuntime::Python313 => AgentManagedRuntimeType::Python313,
        PythonRuntime::Python314 => AgentManagedRuntimeType::Python314,
    };
    CodeConfiguration::builder()
        .code(Code::S3(s3))
        .entry_point(&code.entry_point)
        .runtime(runtime)
        .build()
        .map_err(|e| bad_request("code configuration", e))
}

/// What a runtime runs, as a deployment names it: `repository@digest`, or a code artifact's
/// `s3://bucket/key?versionId=v`.
fn running(artifact: Option<&AgentRuntimeArtifact>) -> Option<String> {
    match artifact? {
        AgentRuntimeArtifact::ContainerConfiguration(c) => Some(c.container_uri().to_string()),
        AgentRuntimeArtifact::CodeConfiguration(c) => match c.code()? {
            Code::S3(s3) => Some(code_uri(s3.bucket(), s3.prefix(), s3.version_id())),
            _ => None,
        },
        _ => None,
    }
}

fn env_map(req: &RuntimeRequest) -> Option<std::collections::HashMap<String, String>> {
    (!req.spec.environment_variables.is_empty()).then(|| {
        req.spec
            .environment_variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
}

impl Runtimes for AgentCore {
    async fn get(&self, id: &str) -> Result<Option<RuntimeInfo>, Error> {
        let out = match self
            .client
            .get_agent_runtime()
            .agent_runtime_id(id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(GetAgentRuntimeError::ResourceNotFoundException(_))
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(classify("AgentCore.GetAgentRuntime", e)),
        };
        let container_uri = running(out.agent_runtime_artifact());
        Ok(Some(RuntimeInfo {
            id: out.agent_runtime_id().to_string(),
            arn: out.agent_runtime_arn().to_string(),
            name: out.agent_runtime_name().to_string(),
            version: out.agent_runtime_version().to_string(),
            status: status(out.status()),
            failure_reason: out.failure_reason().map(String::from),
            container_uri,
        }))
    }

    async fn find_by_name(&self, name: &str) -> Result<Option<FoundRuntime>, Error> {
        // ListAgentRuntimes has no name filter: page through all of the account's runtimes.
        let mut pages = self.client.list_agent_runtimes().into_paginator().send();
        let mut found = None;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("AgentCore.ListAgentRuntimes", e))?;
            if let Some(r) = page
                .agent_runtimes()
                .iter()
                .find(|r| r.agent_runtime_name() == name)
            {
                found = Some((
                    r.agent_runtime_id().to_string(),
                    r.agent_runtime_arn().to_string(),
                ));
                break;
            }
        }
        let Some((id, arn)) = found else {
            return Ok(None);
        };
        let tags = match self
            .client
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
        {
            Ok(out) => out
                .tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            // Deleted between the list and now: as if not found.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(ListTagsForResourceError::ResourceNotFoundException(_))
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(classify("AgentCore.ListTagsForResource", e)),
        };
        Ok(Some(FoundRuntime { id, arn, tags }))
    }

    async fn create(&self, req: &RuntimeRequest) -> Result<RuntimeInfo, Error> {
        let (artifact, network, protocol) = parts(req)?;
        let out = self
            .client
            .create_agent_runtime()
            .agent_runtime_name(&req.name)
            .agent_runtime_artifact(artifact)
            .role_arn(&req.role_arn)
            .network_configuration(network)
            .protocol_configuration(protocol)
            .set_environment_variables(env_map(req))
            .set_lifecycle_configuration(lifecycle(req))
            .set_platform_version(req.spec.platform_version.clone())
            .set_tags(Some(
                req.tags
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
            .description(&req.description)
            .client_token(&req.client_token)
            .send()
            .await
            .map_err(|e| classify("AgentCore.CreateAgentRuntime", e))?;
        Ok(RuntimeInfo {
            id: out.agent_runtime_id().to_string(),
            arn: out.agent_runtime_arn().to_string(),
            name: req.name.clone(),
            version: out.agent_runtime_version().to_string(),
            status: status(out.status()),
            failure_reason: None,
            container_uri: Some(req.container_uri.clone()),
        })
    }

    async fn update(&self, id: &str, req: &RuntimeRequest) -> Result<Option<RuntimeInfo>, Error> {
        let (artifact, network, protocol) = parts(req)?;
        let out = match self
            .client
            .update_agent_runtime()
            .agent_runtime_id(id)
            .agent_runtime_artifact(artifact)
            .role_arn(&req.role_arn)
            .network_configuration(network)
            .protocol_configuration(protocol)
            // Always the whole map (empty too): an update that omits it keeps the previous
            // version's variables, so a variable removed from `deploy` would live on.
            .set_environment_variables(Some(env_map(req).unwrap_or_default()))
            .set_lifecycle_configuration(lifecycle(req))
            .set_platform_version(req.spec.platform_version.clone())
            .description(&req.description)
            .client_token(&req.client_token)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateAgentRuntimeError::ResourceNotFoundException(_))
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(classify("AgentCore.UpdateAgentRuntime", e)),
        };
        Ok(Some(RuntimeInfo {
            id: out.agent_runtime_id().to_string(),
            arn: out.agent_runtime_arn().to_string(),
            name: req.name.clone(),
            version: out.agent_runtime_version().to_string(),
            status: status(out.status()),
            failure_reason: None,
            container_uri: Some(req.container_uri.clone()),
        }))
    }

    async fn delete(&self, id: &str) -> Result<bool, Error> {
        match self
            .client
            .delete_agent_runtime()
            .agent_runtime_id(id)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteAgentRuntimeError::ResourceNotFoundException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify("AgentCore.DeleteAgentRuntime", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deploy_request::DeploySpec;
    use aws_sdk_bedrockagentcorecontrol::operation::create_agent_runtime::CreateAgentRuntimeOutput;
    use aws_sdk_bedrockagentcorecontrol::operation::get_agent_runtime::GetAgentRuntimeOutput;
    use aws_sdk_bedrockagentcorecontrol::operation::list_agent_runtimes::ListAgentRuntimesOutput;
    use aws_sdk_bedrockagentcorecontrol::operation::list_tags_for_resource::ListTagsForResourceOutput;
    use aws_sdk_bedrockagentcorecontrol::operation::update_agent_runtime::UpdateAgentRuntimeOutput;
    use aws_sdk_bedrockagentcorecontrol::types::error::{
        AccessDeniedException, ResourceNotFoundException,
    };
    use aws_sdk_bedrockagentcorecontrol::types::AgentRuntime;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::DateTime;

    const URI: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/agentbuild@sha256:ab";

    fn request(vpc: bool) -> RuntimeRequest {
        let mut spec: DeploySpec = serde_json::from_value(serde_json::json!({
            "runtimeName": "ab_p_a_12345678", "protocol": "MCP", "networkMode": "PUBLIC",
            "environmentVariables": {"LOG_LEVEL": "info"}, "platformVersion": "V2"
        }))
        .unwrap();
        if vpc {
            spec.network_mode = NetworkMode::Vpc;
            spec.subnets = vec!["subnet-01234567".into()];
            spec.security_groups = vec!["sg-01234567".into()];
        }
        RuntimeRequest {
            name: "ab_p_a_12345678".into(),
            container_uri: URI.into(),
            code: None,
            role_arn: "arn:aws:iam::123456789012:role/rt".into(),
            spec,
            tags: crate::domain::deployment::Owner {
                stack: "s",
                project: "p",
                agent: "a",
            }
            .tags(),
            client_token: "0".repeat(64),
            description: "agentbuild p/a".into(),
        }
    }

    fn summary(name: &str, id: &str) -> AgentRuntime {
        AgentRuntime::builder()
            .agent_runtime_arn(format!(
                "arn:aws:bedrock-agentcore:us-east-1:1:runtime/{id}"
            ))
            .agent_runtime_id(id)
            .agent_runtime_version("1")
            .agent_runtime_name(name)
            .description("")
            .last_updated_at(DateTime::from_secs(0))
            .status(AgentRuntimeStatus::Ready)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn create_sends_image_role_network_protocol_tags_and_token() {
        let rule = mock!(Client::create_agent_runtime)
            .match_requests(|r| {
                let container = matches!(r.agent_runtime_artifact(),
                    Some(AgentRuntimeArtifact::ContainerConfiguration(c)) if c.container_uri() == URI);
                container
                    && r.agent_runtime_name() == Some("ab_p_a_12345678")
                    && r.role_arn() == Some("arn:aws:iam::123456789012:role/rt")
                    && r.network_configuration().map(|n| n.network_mode()) == Some(&SdkNetworkMode::Public)
                    && r.protocol_configuration().map(|p| p.server_protocol()) == Some(&ServerProtocol::Mcp)
                    && r.tags().and_then(|t| t.get("agentbuild:agent")).map(String::as_str) == Some("a")
                    && r.client_token() == Some("0".repeat(64).as_str())
                    && r.environment_variables().and_then(|e| e.get("LOG_LEVEL")).map(String::as_str) == Some("info")
                    && r.platform_version() == Some("V2")
            })
            .then_output(|| {
                CreateAgentRuntimeOutput::builder()
                    .agent_runtime_arn("arn:rt")
                    .agent_runtime_id("ab_p_a_12345678-0123456789")
                    .agent_runtime_version("1")
                    .created_at(DateTime::from_secs(0))
                    .status(AgentRuntimeStatus::Creating)
                    .build()
                    .unwrap()
            });
        let ac = AgentCore::new(mock_client!(aws_sdk_bedrockagentcorecontrol, [&rule]));
        let info = ac.create(&request(false)).await.unwrap();
        assert_eq!(
            (info.id.as_str(), info.status),
            ("ab_p_a_12345678-0123456789", RuntimeStatus::Creating)
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_code_artifact_is_sent_as_code_configuration_naming_its_exact_version() {
        let rule = mock!(Client::create_agent_runtime)
            .match_requests(|r| match r.agent_runtime_artifact() {
                Some(AgentRuntimeArtifact::CodeConfiguration(c)) => {
                    let s3 = c.code().and_then(|c| c.as_s3().ok());
                    s3.is_some_and(|s| {
                        s.bucket() == "bkt"
                            && s.prefix() == "artifacts/p/a/ab.zip"
                            && s.version_id() == Some("v-7")
                    }) && c.entry_point() == ["main.py"]
                        && c.runtime() == &AgentManagedRuntimeType::Python313
                }
                _ => false,
            })
            .then_output(|| {
                CreateAgentRuntimeOutput::builder()
                    .agent_runtime_arn("arn:rt")
                    .agent_runtime_id("rt-code")
                    .agent_runtime_version("1")
                    .created_at(DateTime::from_secs(0))
                    .status(AgentRuntimeStatus::Creating)
                    .build()
                    .unwrap()
            });
        let ac = AgentCore::new(mock_client!(aws_sdk_bedrockagentcorecontrol, [&rule]));
        let code = CodeRun {
            bucket: "bkt".into(),
            key: "artifacts/p/a/ab.zip".into(),
            version_id: Some("v-7".into()),
            entry_point: "main.py".into(),
            runtime: PythonRuntime::Python313,
        };
        let req = RuntimeRequest {
            container_uri: code.uri(),
            code: Some(code),
            ..request(false)
        };
        ac.create(&req).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn update_sends_the_vpc_and_a_missing_runtime_is_none() {
        let ok = mock!(Client::update_agent_runtime)
            .match_requests(|r| {
                r.agent_runtime_id() == Some("rt-1")
                    && r.platform_version() == Some("V2")
                    && r.network_configuration()
                        .and_then(|n| n.network_mode_config())
                        .is_some_and(|v| {
                            v.subnets() == ["subnet-01234567"]
                                && v.security_groups() == ["sg-01234567"]
                        })
            })
            .then_output(|| {
                UpdateAgentRuntimeOutput::builder()
                    .agent_runtime_arn("arn:rt")
                    .agent_runtime_id("rt-1")
                    .agent_runtime_version("3")
                    .created_at(DateTime::from_secs(0))
                    .last_updated_at(DateTime::from_secs(1))
                    .status(AgentRuntimeStatus::Updating)
                    .build()
                    .unwrap()
            });
        let gone = mock!(Client::update_agent_runtime)
            .match_requests(|r| r.agent_runtime_id() == Some("rt-gone"))
            .then_error(|| {
                UpdateAgentRuntimeError::ResourceNotFoundException(
                    ResourceNotFoundException::builder().message("no").build(),
                )
            });
        let ac = AgentCore::new(mock_client!(
            aws_sdk_bedrockagentcorecontrol,
            RuleMode::MatchAny,
            [&ok, &gone]
        ));
        let info = ac.update("rt-1", &request(true)).await.unwrap().unwrap();
        assert_eq!(
            (info.version.as_str(), info.status),
            ("3", RuntimeStatus::Updating)
        );
        assert_eq!(ac.update("rt-gone", &request(true)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn get_maps_status_reason_and_image_and_unknown_ids_to_none() {
        let failed = mock!(Client::get_agent_runtime)
            .match_requests(|r| r.agent_runtime_id() == Some("rt-1"))
            .then_output(|| {
                GetAgentRuntimeOutput::builder()
                    .agent_runtime_arn("arn:rt")
                    .agent_runtime_name("n")
                    .agent_runtime_id("rt-1")
                    .agent_runtime_version("2")
                    .created_at(DateTime::from_secs(0))
                    .last_updated_at(DateTime::from_secs(0))
                    .role_arn("arn:role")
                    .status(AgentRuntimeStatus::UpdateFailed)
                    .failure_reason("image not found")
                    .agent_runtime_artifact(AgentRuntimeArtifact::ContainerConfiguration(
                        ContainerConfiguration::builder()
                            .container_uri(URI)
                            .build()
                            .unwrap(),
                    ))
                    .build()
                    .unwrap()
            });
        let missing = mock!(Client::get_agent_runtime)
            .match_requests(|r| r.agent_runtime_id() == Some("rt-x"))
            .then_error(|| {
                GetAgentRuntimeError::ResourceNotFoundException(
                    ResourceNotFoundException::builder().message("no").build(),
                )
            });
        let denied = mock!(Client::get_agent_runtime)
            .match_requests(|r| r.agent_runtime_id() == Some("rt-d"))
            .then_error(|| {
                GetAgentRuntimeError::AccessDeniedException(
                    AccessDeniedException::builder().message("denied").build(),
                )
            });
        let ac = AgentCore::new(mock_client!(
            aws_sdk_bedrockagentcorecontrol,
            RuleMode::MatchAny,
            [&failed, &missing, &denied]
        ));
        let info = ac.get("rt-1").await.unwrap().unwrap();
        assert_eq!(info.status, RuntimeStatus::UpdateFailed);
        assert_eq!(info.failure_reason.as_deref(), Some("image not found"));
        assert_eq!(info.container_uri.as_deref(), Some(URI));
        assert_eq!(ac.get("rt-x").await.unwrap(), None);
        let e = ac.get("rt-d").await.unwrap_err();
        assert_eq!(e.name(), "AwsServiceError");
        assert!(e.to_string().contains("AgentCore.GetAgentRuntime"), "{e}");
    }

    #[tokio::test]
    async fn find_by_name_pages_through_the_list_and_reads_the_tags() {
        let list = mock!(Client::list_agent_runtimes)
            .sequence()
            .output(|| {
                ListAgentRuntimesOutput::builder()
                    .agent_runtimes(summary("other", "other-0000000000"))
                    .next_token("page-2")
                    .build()
                    .unwrap()
            })
            .output(|| {
                ListAgentRuntimesOutput::builder()
                    .agent_runtimes(summary("wanted", "wanted-0000000000"))
                    .build()
                    .unwrap()
            })
            .build();
        let tags = mock!(Client::list_tags_for_resource)
            .match_requests(|r| {
                r.resource_arn()
                    == Some("arn:aws:bedrock-agentcore:us-east-1:1:runtime/wanted-0000000000")
            })
            .then_output(|| {
                ListTagsForResourceOutput::builder()
                    .tags("agentbuild:project", "p")
                    .tags("agentbuild:agent", "a")
                    .build()
            });
        let ac = AgentCore::new(mock_client!(
            aws_sdk_bedrockagentcorecontrol,
            RuleMode::MatchAny,
            [&list, &tags]
        ));
        let found = ac.find_by_name("wanted").await.unwrap().unwrap();
        assert_eq!(found.id, "wanted-0000000000");
        assert_eq!(
            found.tags.get("agentbuild:agent").map(String::as_str),
            Some("a")
        );
        assert_eq!(list.num_calls(), 2, "followed nextToken");
    }

    #[tokio::test]
    async fn throttling_is_retried_by_the_sdk_then_reported_transient() {
        let throttled = || {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(429).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                ),
            )
        };
        let always = mock!(Client::list_agent_runtimes)
            .sequence()
            .http_response(throttled)
            .repeatedly()
            .build();
        let client = mock_client!(
            aws_sdk_bedrockagentcorecontrol,
            RuleMode::Sequential,
            [&always],
            |c| c.retry_config(
                aws_sdk_bedrockagentcorecontrol::config::retry::RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(std::time::Duration::from_millis(1))
            )
        );
        let e = AgentCore::new(client).find_by_name("x").await.unwrap_err();
        assert_eq!(e.name(), "TransientAwsError", "{e}");
        assert_eq!(always.num_calls(), 2, "the SDK retried once");
    }
}
