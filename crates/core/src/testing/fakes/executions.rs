//! In-memory Step Functions executions and EventBridge bus for handler tests.

use super::record;
use crate::contract::BuildFinished;
use crate::ports::{Events, ExecutionInfo, ExecutionStatus, Executions, StartOutcome};
use crate::Error;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

pub const MACHINE_EXECUTIONS: &str = "arn:aws:states:us-east-1:123456789012:execution:agentbuild";

/// Step Functions' name rules for a Standard machine: an identical start of a running
/// execution answers it; a closed one, or another input, takes the name.
#[derive(Default)]
pub struct FakeExecutions {
    pub executions: RefCell<BTreeMap<String, ExecutionInfo>>,
    /// Every StartExecution call: (name, input).
    pub start_calls: RefCell<Vec<(String, String)>>,
    /// Errors returned by the next calls, in order.
    pub fail_next: RefCell<VecDeque<Error>>,
}

impl FakeExecutions {
    pub fn arn(name: &str) -> String {
        format!("{MACHINE_EXECUTIONS}:{name}")
    }

    fn info(name: &str, status: ExecutionStatus, input: &str) -> ExecutionInfo {
        ExecutionInfo {
            arn: Self::arn(name),
            name: name.to_string(),
            status,
            started_at: Some("2026-11-28T10:00:00Z".parse().unwrap()),
            stopped_at: None,
            input: Some(input.to_string()),
            error: None,
            cause: None,
        }
    }

    /// An execution as if started by someone else.
    pub fn with(self, name: &str, status: ExecutionStatus, input: &str) -> Self {
        self.executions
            .borrow_mut()
            .insert(name.to_string(), Self::info(name, status, input));
        self
    }

    /// An execution of another machine, known by its ARN only (e.g. a fleet run).
    pub fn with_arn(self, arn: &str, status: ExecutionStatus) -> Self {
        let mut info = Self::info(arn, status, "{}");
        info.arn = arn.to_string();
        self.executions.borrow_mut().insert(arn.to_string(), info);
        self
    }

    pub fn end(&self, name: &str, status: ExecutionStatus, error: Option<(&str, &str)>) {
        let mut all = self.executions.borrow_mut();
        let e = all.get_mut(name).expect("no such execution");
        e.status = status;
        e.stopped_at = Some("2026-11-28T10:05:00Z".parse().unwrap());
        e.error = error.map(|(err, _)| err.to_string());
        e.cause = error.map(|(_, cause)| cause.to_string());
    }

    /// Names of the executions that exist, in name order.
    pub fn names(&self) -> Vec<String> {
        self.executions.borrow().keys().cloned().collect()
    }

    pub fn input_of(&self, name: &str) -> serde_json::Value {
        let all = self.executions.borrow();
        serde_json::from_str(all[name].input.as_deref().unwrap()).unwrap()
    }

    fn enter(&self, operation: &'static str) -> Result<(), Error> {
        record(operation);
        match self.fail_next.borrow_mut().pop_front() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Executions for FakeExecutions {
    async fn start(&self, name: &str, input: &str) -> Result<StartOutcome, Error> {
        self.enter("SFN.StartExecution")?;
        self.start_calls
            .borrow_mut()
            .push((name.to_string(), input.to_string()));
        if let Some(e) = self.executions.borrow().get(name) {
            return Ok(if e.status.is_open() && e.input.as_deref() == Some(input) {
                StartOutcome::Running { arn: e.arn.clone() }
            } else {
                StartOutcome::NameTaken
            });
        }
        let info = Self::info(name, ExecutionStatus::Running, input);
        let arn = info.arn.clone();
        self.executions.borrow_mut().insert(name.to_string(), info);
        Ok(StartOutcome::Running { arn })
    }

    async fn describe(&self, name: &str) -> Result<Option<ExecutionInfo>, Error> {
        self.enter("SFN.DescribeExecution")?;
        Ok(self.executions.borrow().get(name).cloned())
    }

    async fn describe_arn(&self, arn: &str) -> Result<Option<ExecutionInfo>, Error> {
        self.enter("SFN.DescribeExecution")?;
        Ok(self
            .executions
            .borrow()
            .values()
            .find(|e| e.arn == arn)
            .cloned())
    }

    async fn stop(&self, name: &str, error: &str, cause: &str) -> Result<bool, Error> {
        self.enter("SFN.StopExecution")?;
        let mut all = self.executions.borrow_mut();
        let Some(e) = all.get_mut(name) else {
            return Ok(false);
        };
        if e.status.is_open() {
            e.status = ExecutionStatus::Aborted;
            e.stopped_at = Some("2026-11-28T10:05:00Z".parse().unwrap());
            e.error = Some(error.to_string());
            e.cause = Some(cause.to_string());
        }
        Ok(true)
    }

    async fn running(&self) -> Result<Vec<String>, Error> {
        self.enter("SFN.ListExecutions")?;
        Ok(self
            .executions
            .borrow()
            .values()
            .filter(|e| e.status == ExecutionStatus::Running)
            .map(|e| e.name.clone())
            .collect())
    }
}

/// A bus that keeps what was announced; `fail_next` makes the next PutEvents calls fail.
#[derive(Default)]
pub struct FakeEvents {
    pub announced: RefCell<Vec<BuildFinished>>,
    pub fail_next: RefCell<VecDeque<Error>>,
}

impl FakeEvents {
    /// The build ids and statuses announced, in order.
    pub fn seen(&self) -> Vec<(String, String)> {
        self.announced
            .borrow()
            .iter()
            .map(|f| (f.build_id.clone(), f.status.as_str().to_string()))
            .collect()
    }
}

impl Events for FakeEvents {
    async fn announce(&self, finished: &BuildFinished) -> Result<(), Error> {
        record("EventBridge.PutEvents");
        if let Some(e) = self.fail_next.borrow_mut().pop_front() {
            return Err(e);
        }
        self.announced.borrow_mut().push(finished.clone());
        Ok(())
    }
}
