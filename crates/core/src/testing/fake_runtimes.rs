//! AgentCore Runtime's control plane in memory, for the deploy handlers' tests (its SDK adapter
//! has its own aws-smithy-mocks tests). Records the SDK operations it stands for, as
//! [`super::fakes`] does.

use super::fakes::record;
use crate::domain::deployment::{FoundRuntime, Owner, RuntimeInfo, RuntimeStatus};
use crate::ports::{RuntimeRequest, Runtimes};
use crate::Error;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

/// A runtime and its tags.
type Stored = (RuntimeInfo, BTreeMap<String, String>);

/// AgentCore Runtime's control plane in memory: runtimes by id, with their tags.
#[derive(Default)]
pub struct FakeRuntimes {
    pub runtimes: RefCell<BTreeMap<String, Stored>>,
    pub created: RefCell<Vec<RuntimeRequest>>,
    pub updated: RefCell<Vec<(String, RuntimeRequest)>>,
    pub deleted: RefCell<Vec<String>>,
    /// Errors returned by the next calls, in order.
    pub fail_next: RefCell<VecDeque<Error>>,
}

/// The stack the handler tests deploy as (their `DeployConfig`'s).
pub const STACK: &str = "agentbuild";

impl FakeRuntimes {
    /// A READY runtime at version 1, tagged for `project/agent` of [`STACK`], as if deployed
    /// before.
    pub fn add(&self, id: &str, name: &str, project: &str, agent: &str) {
        self.add_of(STACK, id, name, project, agent);
    }

    /// The same, created by another stack of the account.
    pub fn add_of(&self, stack: &str, id: &str, name: &str, project: &str, agent: &str) {
        let info = RuntimeInfo {
            id: id.into(),
            arn: format!("arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/{id}"),
            name: name.into(),
            version: "1".into(),
            status: RuntimeStatus::Ready,
            failure_reason: None,
            container_uri: None,
        };
        self.runtimes.borrow_mut().insert(
            id.into(),
            (
                info,
                Owner {
                    stack,
                    project,
                    agent,
                }
                .tags(),
            ),
        );
    }

    pub fn set(&self, id: &str, status: RuntimeStatus, reason: Option<&str>, uri: &str) {
        let mut all = self.runtimes.borrow_mut();
        let (info, _) = all.get_mut(id).expect("no such runtime");
        info.status = status;
        info.failure_reason = reason.map(String::from);
        info.container_uri = Some(uri.into());
    }

    fn enter(&self, operation: &'static str) -> Result<(), Error> {
        record(operation);
        match self.fail_next.borrow_mut().pop_front() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Runtimes for FakeRuntimes {
    async fn get(&self, id: &str) -> Result<Option<RuntimeInfo>, Error> {
        self.enter("AgentCore.GetAgentRuntime")?;
        Ok(self.runtimes.borrow().get(id).map(|(i, _)| i.clone()))
    }

    async fn find_by_name(&self, name: &str) -> Result<Option<FoundRuntime>, Error> {
        self.enter("AgentCore.ListAgentRuntimes")?;
        let found = self
            .runtimes
            .borrow()
            .values()
            .find(|(i, _)| i.name == name)
            .map(|(i, tags)| FoundRuntime {
                id: i.id.clone(),
                arn: i.arn.clone(),
                tags: tags.clone(),
            });
        if found.is_some() {
            self.enter("AgentCore.ListTagsForResource")?;
        }
        Ok(found)
    }

    async fn create(&self, req: &RuntimeRequest) -> Result<RuntimeInfo, Error> {
        self.enter("AgentCore.CreateAgentRuntime")?;
        self.created.borrow_mut().push(req.clone());
        let id = format!("{}-{:010}", req.name, self.created.borrow().len());
        let info = RuntimeInfo {
            id: id.clone(),
            arn: format!("arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/{id}"),
            name: req.name.clone(),
            version: "1".into(),
            status: RuntimeStatus::Creating,
            failure_reason: None,
            container_uri: Some(req.container_uri.clone()),
        };
        self.runtimes
            .borrow_mut()
            .insert(id, (info.clone(), req.tags.clone()));
        Ok(info)
    }

    async fn update(&self, id: &str, req: &RuntimeRequest) -> Result<Option<RuntimeInfo>, Error> {
        self.enter("AgentCore.UpdateAgentRuntime")?;
        let mut all = self.runtimes.borrow_mut();
        let Some((info, _)) = all.get_mut(id) else {
            return Ok(None);
        };
        self.updated
            .borrow_mut()
            .push((id.to_string(), req.clone()));
        info.version = (info.version.parse::<u32>().unwrap_or(1) + 1).to_string();
        info.status = RuntimeStatus::Updating;
        info.container_uri = Some(req.container_uri.clone());
        Ok(Some(info.clone()))
    }

    async fn delete(&self, id: &str) -> Result<bool, Error> {
        self.enter("AgentCore.DeleteAgentRuntime")?;
        let gone = self.runtimes.borrow_mut().remove(id).is_some();
        if gone {
            self.deleted.borrow_mut().push(id.to_string());
        }
        Ok(gone)
    }
}
