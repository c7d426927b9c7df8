//! The one error type. Its names are the Step Functions error names: the ASL's `ErrorEquals`
//! matches exactly these strings (a contract test reads the ASL and checks both sides).

use crate::domain::request::RequestError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request broke a rule; the message names the field and the rule.
    #[error(transparent)]
    InvalidRequest(#[from] RequestError),
    /// Throttling, timeouts, 5xx: the state machine retries these with backoff.
    #[error("{0}")]
    TransientAws(String),
    /// Any other AWS failure (access denied, validation, ...): not worth retrying.
    #[error("{0}")]
    AwsService(String),
    /// CodeBuild refused a new build because the project's concurrent-build limit is reached:
    /// retried by the state machine on a slower schedule than transient errors.
    #[error("{0}")]
    CapacityExceeded(String),
    #[error("CodeBuild does not know build {0}")]
    BuildNotFound(String),
    /// A state's input did not have the shape this step needs (a bug or a hand-edited redrive).
    #[error("invalid state input: {0}")]
    InvalidState(String),
    #[error("configuration: {0}")]
    Config(String),
    /// A code context was refused (a dependency line, a file of the zip, a limit): the message
    /// names the file (and line). Not retried: the same context is refused again.
    #[error("{0}")]
    InvalidContext(String),
    /// The stack requires a scan before a deploy and ECR has none of the image yet: the state
    /// machine retries DeployRuntime a while (`domain::scan_gate::SCAN_WAIT_SECONDS`).
    #[error("{0}")]
    ScanPending(String),
}

/// Every `errorType` the functions emit, as the state machine sees it.
pub const ERROR_NAMES: &[&str] = &[
    "InvalidRequest",
    "TransientAwsError",
    "AwsServiceError",
    "BuildCapacityExceeded",
    "BuildNotFound",
    "InvalidState",
    "ConfigError",
    "InvalidContext",
    "ScanPending",
];

impl Error {
    pub fn name(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) => "InvalidRequest",
            Error::TransientAws(_) => "TransientAwsError",
            Error::AwsService(_) => "AwsServiceError",
            Error::CapacityExceeded(_) => "BuildCapacityExceeded",
            Error::BuildNotFound(_) => "BuildNotFound",
            Error::InvalidState(_) => "InvalidState",
            Error::Config(_) => "ConfigError",
            Error::InvalidContext(_) => "InvalidContext",
            Error::ScanPending(_) => "ScanPending",
        }
    }
}

#[cfg(feature = "lambda")]
impl From<Error> for lambda_runtime::Diagnostic {
    fn from(err: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.name().to_string(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_listed_name() {
        let all = [
            Error::InvalidRequest(RequestError::new("project", "is required")),
            Error::TransientAws(String::new()),
            Error::AwsService(String::new()),
            Error::CapacityExceeded(String::new()),
            Error::BuildNotFound(String::new()),
            Error::InvalidState(String::new()),
            Error::Config(String::new()),
            Error::InvalidContext(String::new()),
            Error::ScanPending(String::new()),
        ];
        let names: Vec<_> = all.iter().map(Error::name).collect();
        assert_eq!(names, ERROR_NAMES);
    }

    #[cfg(feature = "lambda")]
    #[test]
    fn diagnostic_carries_the_stable_name_and_the_field() {
        let d: lambda_runtime::Diagnostic =
            Error::from(RequestError::new("agent", "must match ^x$")).into();
        assert_eq!(d.error_type, "InvalidRequest");
        assert_eq!(d.error_message, "agent: must match ^x$");
    }
}
