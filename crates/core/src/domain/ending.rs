//! How an execution ended, and what that means for its build when no final record says
//! otherwise: the one rule that the live status, cancel, the last-resort closer and the fleet
//! summary apply ([`ending`]).

use super::status::BuildStatus;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A Step Functions execution's status, kept free of SDK types; `Unknown` holds a value newer
/// than us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    /// A failed execution being redriven: it will run again.
    PendingRedrive,
    Unknown(String),
}

impl ExecutionStatus {
    pub fn as_str(&self) -> &str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
            ExecutionStatus::PendingRedrive => "PENDING_REDRIVE",
            ExecutionStatus::Unknown(other) => other,
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(
            self,
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive
        )
    }

    /// Closed without reaching the machine's Succeed state.
    pub fn ended_unsuccessfully(&self) -> bool {
        matches!(
            self,
            ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted
        )
    }
}

impl From<String> for ExecutionStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "RUNNING" => ExecutionStatus::Running,
            "SUCCEEDED" => ExecutionStatus::Succeeded,
            "FAILED" => ExecutionStatus::Failed,
            "TIMED_OUT" => ExecutionStatus::TimedOut,
            "ABORTED" => ExecutionStatus::Aborted,
            "PENDING_REDRIVE" => ExecutionStatus::PendingRedrive,
            _ => ExecutionStatus::Unknown(s),
        }
    }
}

impl From<&str> for ExecutionStatus {
    fn from(s: &str) -> Self {
        s.to_string().into()
    }
}

impl From<ExecutionStatus> for String {
    fn from(s: ExecutionStatus) -> Self {
        s.as_str().to_string()
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status a caller is told: a build's status, `RUNNING`, or `REJECTED` (validation refused
/// the request inside the execution; no record was ever written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reported {
    Running,
    Succeeded,
    Reused,
    Failed,
    Fault,
    Stopped,
    TimedOut,
    Error,
    Rejected,
}

impl Reported {
    pub fn as_str(self) -> &'static str {
        match self {
            Reported::Rejected => "REJECTED",
            Reported::Running => "RUNNING",
            Reported::Succeeded => "SUCCEEDED",
            Reported::Reused => "REUSED",
            Reported::Failed => "FAILED",
            Reported::Fault => "FAULT",
            Reported::Stopped => "STOPPED",
            Reported::TimedOut => "TIMED_OUT",
            Reported::Error => "ERROR",
        }
    }

    pub fn is_final(self) -> bool {
        self != Reported::Running
    }

    /// The build status it stands for; `None` for REJECTED (no build ran).
    pub fn build_status(self) -> Option<BuildStatus> {
        Some(match self {
            Reported::Rejected => return None,
            Reported::Running => BuildStatus::Running,
            Reported::Succeeded => BuildStatus::Succeeded,
            Reported::Reused => BuildStatus::Reused,
            Reported::Failed => BuildStatus::Failed,
            Reported::Fault => BuildStatus::Fault,
            Reported::Stopped => BuildStatus::Stopped,
            Reported::TimedOut => BuildStatus::TimedOut,
            Reported::Error => BuildStatus::Error,
        })
    }
}

impl From<BuildStatus> for Reported {
    fn from(s: BuildStatus) -> Self {
        match s {
            BuildStatus::Running => Reported::Running,
            BuildStatus::Succeeded => Reported::Succeeded,
            BuildStatus::Reused => Reported::Reused,
            BuildStatus::Failed => Reported::Failed,
            BuildStatus::Fault => Reported::Fault,
            BuildStatus::Stopped => Reported::Stopped,
            BuildStatus::TimedOut => Reported::TimedOut,
            BuildStatus::Error => Reported::Error,
        }
    }
}

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error name of a request that validation refused.
pub const INVALID_REQUEST: &str = "InvalidRequest";

/// What an execution's end means for its build, where no final record says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Still running (or about to run again).
    Open,
    /// The machine's Succeed state: it wrote its record.
    Succeeded,
    /// Refused by validation before anything was written: no record, ever.
    Rejected,
    /// Ended without its final record: closed with this status, and (when the execution gave
    /// none) an error of this kind and message.
    Closed {
        status: BuildStatus,
        kind: &'static str,
        message: &'static str,
    },
}

impl Ending {
    /// What the live status, a cancel's 409 and the fleet summary report.
    pub fn reported(&self) -> Reported {
        match self {
            Ending::Open => Reported::Running,
            Ending::Succeeded => Reported::Succeeded,
            Ending::Rejected => Reported::Rejected,
            Ending::Closed { status, .. } => (*status).into(),
        }
    }
}

/// The rule. `error` is the execution's error name; `recorded`: a record of the execution
/// exists (validation passed). A request refused by validation fails `InvalidRequest` before
/// any record exists; any other unsuccessful end is closed with the status it stands for.
pub fn ending(status: &ExecutionStatus, error: Option<&str>, recorded: bool) -> Ending {
    let closed = |status, kind, message| Ending::Closed {
        status,
        kind,
        message,
    };
    match status {
        ExecutionStatus::Running | ExecutionStatus::PendingRedrive => Ending::Open,
        ExecutionStatus::Succeeded => Ending::Succeeded,
        ExecutionStatus::Failed if !recorded && error == Some(INVALID_REQUEST) => Ending::Rejected,
        ExecutionStatus::TimedOut => closed(
            BuildStatus::TimedOut,
            "States.Timeout",
            "the execution timed out",
        ),
        ExecutionStatus::Aborted => closed(
            BuildStatus::Stopped,
            "ExecutionAborted",
            "the execution was aborted",
        ),
        ExecutionStatus::Failed => {
            closed(BuildStatus::Error, "States.Failed", "the execution failed")
        }
        ExecutionStatus::Unknown(_) => closed(
            BuildStatus::Error,
            "UnknownExecutionStatus",
            "the execution ended with a status this version does not know",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_end_means_one_thing() {
        use ExecutionStatus as X;
        let r = |s: &X, e: Option<&str>, rec: bool| ending(s, e, rec).reported();
        assert_eq!(r(&X::Running, None, true), Reported::Running);
        assert_eq!(r(&X::PendingRedrive, None, true), Reported::Running);
        assert_eq!(r(&X::Succeeded, None, true), Reported::Succeeded);
        assert_eq!(r(&X::TimedOut, None, true), Reported::TimedOut);
        assert_eq!(r(&X::Aborted, Some("Cancelled"), false), Reported::Stopped);
        assert_eq!(
            r(&X::Failed, Some(INVALID_REQUEST), false),
            Reported::Rejected
        );
        // A record exists: validation had passed; the failure is the pipeline's.
        assert_eq!(r(&X::Failed, Some(INVALID_REQUEST), true), Reported::Error);
        assert_eq!(
            r(&X::Failed, Some("States.Runtime"), false),
            Reported::Error
        );
        assert_eq!(r(&X::Unknown("NEW".into()), None, true), Reported::Error);
    }

    #[test]
    fn statuses_travel_as_step_functions_spells_them() {
        let s: ExecutionStatus = serde_json::from_str("\"TIMED_OUT\"").unwrap();
        assert_eq!(s, ExecutionStatus::TimedOut);
        let s: ExecutionStatus = serde_json::from_str("\"LATER\"").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"LATER\"");
        assert_eq!(
            serde_json::to_string(&Reported::Rejected).unwrap(),
            "\"REJECTED\""
        );
    }
}
