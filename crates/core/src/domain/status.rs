//! Build statuses: ours (the design's), CodeBuild's, and the mapping between them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The status of one agentbuild build, as records and the state machine carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildStatus {
    /// Only while the execution runs (the RUNNING record shows live progress).
    Running,
    Succeeded,
    Reused,
    Failed,
    Fault,
    Stopped,
    TimedOut,
    Error,
}

impl BuildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Running => "RUNNING",
            BuildStatus::Succeeded => "SUCCEEDED",
            BuildStatus::Reused => "REUSED",
            BuildStatus::Failed => "FAILED",
            BuildStatus::Fault => "FAULT",
            BuildStatus::Stopped => "STOPPED",
            BuildStatus::TimedOut => "TIMED_OUT",
            BuildStatus::Error => "ERROR",
        }
    }

    pub fn is_success(self) -> bool {
        matches!(self, BuildStatus::Succeeded | BuildStatus::Reused)
    }

    pub fn is_final(self) -> bool {
        self != BuildStatus::Running
    }
}

impl fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// CodeBuild's `StatusType`, kept free of SDK types; `Unknown` holds a value newer than us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeBuildStatus {
    InProgress,
    Succeeded,
    Failed,
    Fault,
    Stopped,
    TimedOut,
    Unknown(String),
}

/// What a CodeBuild status means for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    Status(BuildStatus),
    /// A status this version does not know: reported as ERROR once CodeBuild says the build is
    /// complete, polled on (within the deadline) while it is not.
    Unrecognized(String),
}

pub fn map_codebuild(status: &CodeBuildStatus, build_complete: bool) -> Mapped {
    match status {
        CodeBuildStatus::InProgress => Mapped::Status(BuildStatus::Running),
        CodeBuildStatus::Succeeded => Mapped::Status(BuildStatus::Succeeded),
        CodeBuildStatus::Failed => Mapped::Status(BuildStatus::Failed),
        CodeBuildStatus::Fault => Mapped::Status(BuildStatus::Fault),
        CodeBuildStatus::Stopped => Mapped::Status(BuildStatus::Stopped),
        CodeBuildStatus::TimedOut => Mapped::Status(BuildStatus::TimedOut),
        CodeBuildStatus::Unknown(s) if build_complete => Mapped::Unrecognized(s.clone()),
        CodeBuildStatus::Unknown(_) => Mapped::Status(BuildStatus::Running),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_codebuild_status() {
        use CodeBuildStatus as C;
        let cases = [
            (C::InProgress, BuildStatus::Running),
            (C::Succeeded, BuildStatus::Succeeded),
            (C::Failed, BuildStatus::Failed),
            (C::Fault, BuildStatus::Fault),
            (C::Stopped, BuildStatus::Stopped),
            (C::TimedOut, BuildStatus::TimedOut),
        ];
        for (cb, ours) in cases {
            assert_eq!(map_codebuild(&cb, true), Mapped::Status(ours));
        }
    }

    #[test]
    fn unknown_status_is_polled_until_complete_then_reported() {
        let s = CodeBuildStatus::Unknown("PAUSED".into());
        assert_eq!(
            map_codebuild(&s, false),
            Mapped::Status(BuildStatus::Running)
        );
        assert_eq!(
            map_codebuild(&s, true),
            Mapped::Unrecognized("PAUSED".into())
        );
    }

    #[test]
    fn statuses_serialize_as_the_design_spells_them() {
        for s in [
            BuildStatus::Running,
            BuildStatus::Succeeded,
            BuildStatus::Reused,
            BuildStatus::Failed,
            BuildStatus::Fault,
            BuildStatus::Stopped,
            BuildStatus::TimedOut,
            BuildStatus::Error,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
