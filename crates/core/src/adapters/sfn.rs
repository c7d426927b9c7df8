//! Step Functions: start, look up, count and stop executions of the build state machine;
//! complete its callback waits.

use super::{classify, to_chrono};
use crate::ports::{
    Delivery, ExecutionInfo, ExecutionStatus, Executions, StartOutcome, TaskTokens,
};
use crate::Error;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::operation::stop_execution::StopExecutionError;
use aws_sdk_sfn::types::ExecutionStatus as SdkStatus;
use aws_smithy_types::error::display::DisplayErrorContext;

pub struct StepFunctions {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl StepFunctions {
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// `arn:<partition>:states:<region>:<account>:execution:<machine>:<name>`, the ARN Step
    /// Functions gives execution `name` of the (unqualified) machine.
    pub fn execution_arn(&self, name: &str) -> String {
        crate::domain::execution::execution_arn(&self.state_machine_arn, name)
    }
}

fn status(s: &SdkStatus) -> ExecutionStatus {
    match s {
        SdkStatus::Running => ExecutionStatus::Running,
        SdkStatus::Succeeded => ExecutionStatus::Succeeded,
        SdkStatus::Failed => ExecutionStatus::Failed,
        SdkStatus::TimedOut => ExecutionStatus::TimedOut,
        SdkStatus::Aborted => ExecutionStatus::Aborted,
        SdkStatus::PendingRedrive => ExecutionStatus::PendingRedrive,
        // `Unknown` and any variant newer than this SDK.
        other => ExecutionStatus::Unknown(other.as_str().to_string()),
    }
}

impl Executions for StepFunctions {
    async fn start(&self, name: &str, input: &str) -> Result<StartOutcome, Error> {
        let out = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await;
        match out {
            Ok(out) => Ok(StartOutcome::Running {
                arn: out.execution_arn().to_string(),
            }),
            Err(e) => match e.as_service_error() {
                Some(StartExecutionError::ExecutionAlreadyExists(_)) => Ok(StartOutcome::NameTaken),
                // The account's open-execution quota: it frees up as executions end.
                Some(StartExecutionError::ExecutionLimitExceeded(_)) => Err(Error::TransientAws(
                    format!("SFN.StartExecution: {}", DisplayErrorContext(&e)),
                )),
                _ => Err(classify("SFN.StartExecution", e)),
            },
        }
    }

    async fn describe(&self, name: &str) -> Result<Option<ExecutionInfo>, Error> {
        self.describe_arn(&self.execution_arn(name)).await
    }

    async fn describe_arn(&self, arn: &str) -> Result<Option<ExecutionInfo>, Error> {
        let out = self
            .client
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DescribeExecutionError::ExecutionDoesNotExist(_))
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(classify("SFN.DescribeExecution", e)),
        };
        let name = arn.rsplit(':').next().unwrap_or(arn);
        Ok(Some(ExecutionInfo {
            arn: out.execution_arn().to_string(),
            name: out.name().unwrap_or(name).to_string(),
            status: status(out.status()),
            started_at: to_chrono(out.start_date()),
            stopped_at: out.stop_date().and_then(to_chrono),
            input: out.input().map(String::from),
            error: out.error().map(String::from),
            cause: out.cause().map(String::from),
        }))
    }

    async fn running(&self) -> Result<Vec<String>, Error> {
        let mut pages = self
            .client
            .list_executions()
            .state_machine_arn(&self.state_machine_arn)
            .status_filter(SdkStatus::Running)
            .max_results(1000)
            .into_paginator()
            .send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("SFN.ListExecutions", e))?;
            names.extend(page.executions().iter().map(|e| e.name().to_string()));
        }
        Ok(names)
    }

    async fn stop(&self, name: &str, error: &str, cause: &str) -> Result<bool, Error> {
        let out = self
            .client
            .stop_execution()
            .execution_arn(self.execution_arn(name))
            .error(error)
            .cause(cause)
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(StopExecutionError::ExecutionDoesNotExist(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify("SFN.StopExecution", e)),
        }
    }
}

/// Completes callback waits of the build state machine (the token names the execution).
pub struct Callbacks {
    client: aws_sdk_sfn::Client,
}

impl Callbacks {
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        Self { client }
    }
}

impl TaskTokens for Callbacks {
    async fn succeed(&self, token: &str, output: &str) -> Result<Delivery, Error> {
        let out = self
            .client
            .send_task_success()
            .task_token(token)
            .output(output)
            .send()
            .await;
        match out {
            Ok(_) => Ok(Delivery::Accepted),
            // The wait is over already (timed out into the fallback, completed by the other
            // path, or its execution ended): nothing to do.
            Err(e) => match e.as_service_error() {
                Some(SendTaskSuccessError::TaskTimedOut(_)) => {
                    Ok(Delivery::Closed("TaskTimedOut".into()))
                }
                Some(SendTaskSuccessError::InvalidToken(_)) => {
                    Ok(Delivery::Closed("InvalidToken".into()))
                }
                Some(SendTaskSuccessError::TaskDoesNotExist(_)) => {
                    Ok(Delivery::Closed("TaskDoesNotExist".into()))
                }
                _ => Err(classify("SFN.SendTaskSuccess", e)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
    use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
    use aws_sdk_sfn::operation::start_execution::StartExecutionOutput;
    use aws_sdk_sfn::operation::stop_execution::StopExecutionOutput;
    use aws_sdk_sfn::types::error::{
        ExecutionAlreadyExists, ExecutionDoesNotExist, ExecutionLimitExceeded,
        StateMachineDoesNotExist,
    };
    use aws_sdk_sfn::types::ExecutionListItem;
    use aws_sdk_sfn::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::DateTime as SdkTime;

    const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:agentbuild-build";
    const EXECUTION: &str =
        "arn:aws:states:us-east-1:123456789012:execution:agentbuild-build:api-1";

    fn sfn(client: Client) -> StepFunctions {
        StepFunctions::new(client, MACHINE)
    }

    fn started() -> StartExecutionOutput {
        StartExecutionOutput::builder()
            .execution_arn(EXECUTION)
            .start_date(SdkTime::from_secs(1_800_000_000))
            .build()
            .unwrap()
    }

    #[test]
    fn execution_arns_follow_the_machine_arn() {
        let s = sfn(mock_client!(aws_sdk_sfn, []));
        assert_eq!(s.execution_arn("api-1"), EXECUTION);
        let cn = StepFunctions::new(
            mock_client!(aws_sdk_sfn, []),
            "arn:aws-cn:states:cn-north-1:1:stateMachine:m",
        );
        assert_eq!(
            cn.execution_arn("x"),
            "arn:aws-cn:states:cn-north-1:1:execution:m:x"
        );
    }

    #[test]
    fn every_operation_called_has_its_iam_action_listed() {
        for op in [
            "SFN.StartExecution",
            "SFN.DescribeExecution",
            "SFN.ListExecutions",
            "SFN.StopExecution",
            "SFN.SendTaskSuccess",
        ] {
            assert!(
                crate::testing::catalog::OPERATION_ACTIONS
                    .iter()
                    .any(|(o, _)| *o == op),
                "{op}"
            );
        }
    }

    #[tokio::test]
    async fn start_sends_machine_name_and_input() {
        let rule = mock!(Client::start_execution)
            .match_requests(|r| {
                r.state_machine_arn() == Some(MACHINE)
                    && r.name() == Some("api-1")
                    && r.input() == Some(r#"{"request":{},"trigger":"api"}"#)
            })
            .then_output(started);
        let s = sfn(mock_client!(aws_sdk_sfn, [&rule]));
        let out = s
            .start("api-1", r#"{"request":{},"trigger":"api"}"#)
            .await
            .unwrap();
        assert_eq!(
            out,
            StartOutcome::Running {
                arn: EXECUTION.into()
            }
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_taken_name_is_an_outcome_not_an_error() {
        let rule = mock!(Client::start_execution).then_error(|| {
            StartExecutionError::ExecutionAlreadyExists(
                ExecutionAlreadyExists::builder()
                    .message("Execution Already Exists")
                    .build(),
            )
        });
        let s = sfn(mock_client!(aws_sdk_sfn, [&rule]));
        assert_eq!(
            s.start("api-1", "{}").await.unwrap(),
            StartOutcome::NameTaken
        );
    }

    #[tokio::test]
    async fn the_open_execution_quota_is_transient_a_missing_machine_is_not() {
        let full = mock!(Client::start_execution).then_error(|| {
            StartExecutionError::ExecutionLimitExceeded(ExecutionLimitExceeded::builder().build())
        });
        let s = sfn(mock_client!(aws_sdk_sfn, [&full]));
        assert_eq!(
            s.start("x", "{}").await.unwrap_err().name(),
            "TransientAwsError"
        );
        let missing = mock!(Client::start_execution).then_error(|| {
            StartExecutionError::StateMachineDoesNotExist(
                StateMachineDoesNotExist::builder()
                    .message("no machine")
                    .build(),
            )
        });
        let s = sfn(mock_client!(aws_sdk_sfn, [&missing]));
        let err = s.start("x", "{}").await.unwrap_err();
        assert_eq!(err.name(), "AwsServiceError");
        assert!(err.to_string().contains("no machine"), "{err}");
    }

    #[tokio::test]
    async fn throttling_is_retried_by_the_sdk() {
        let throttled = || {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                ),
            )
        };
        let rule = mock!(Client::start_execution)
            .sequence()
            .http_response(throttled)
            .output(started)
            .build();
        let client = mock_client!(aws_sdk_sfn, RuleMode::Sequential, [&rule], |c| c
            .retry_config(
                aws_sdk_sfn::config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(1))
            ));
        let out = sfn(client).start("api-1", "{}").await.unwrap();
        assert!(matches!(out, StartOutcome::Running { .. }));
        assert_eq!(rule.num_calls(), 2);

        let always = mock!(Client::start_execution)
            .sequence()
            .http_response(throttled)
            .repeatedly()
            .build();
        let s = sfn(mock_client!(aws_sdk_sfn, [&always]));
        assert_eq!(
            s.start("x", "{}").await.unwrap_err().name(),
            "TransientAwsError"
        );
    }

    #[tokio::test]
    async fn describe_maps_status_input_and_failure() {
        let rule = mock!(Client::describe_execution)
            .match_requests(|r| r.execution_arn() == Some(EXECUTION))
            .then_output(|| {
                DescribeExecutionOutput::builder()
                    .execution_arn(EXECUTION)
                    .state_machine_arn(MACHINE)
                    .name("api-1")
                    .status(SdkStatus::Failed)
                    .start_date(SdkTime::from_secs(1_800_000_000))
                    .stop_date(SdkTime::from_secs(1_800_000_002))
                    .input("{}")
                    .error("InvalidRequest")
                    .cause(r#"{"errorType":"InvalidRequest","errorMessage":"agent: bad"}"#)
                    .build()
                    .unwrap()
            });
        let s = sfn(mock_client!(aws_sdk_sfn, [&rule]));
        let e = s.describe("api-1").await.unwrap().unwrap();
        assert_eq!(e.status, ExecutionStatus::Failed);
        assert_eq!(e.error.as_deref(), Some("InvalidRequest"));
        assert_eq!(e.input.as_deref(), Some("{}"));
        assert_eq!(e.stopped_at.unwrap().timestamp(), 1_800_000_002);
        assert!(e.status.ended_unsuccessfully() && !e.status.is_open());
    }

    #[tokio::test]
    async fn describe_of_an_unknown_name_is_none() {
        let rule = mock!(Client::describe_execution).then_error(|| {
            DescribeExecutionError::ExecutionDoesNotExist(ExecutionDoesNotExist::builder().build())
        });
        let s = sfn(mock_client!(aws_sdk_sfn, [&rule]));
        assert_eq!(s.describe("nope").await.unwrap(), None);
    }

    #[test]
    fn unknown_sdk_status_is_kept_by_name() {
        assert_eq!(
            status(&SdkStatus::from("PAUSED")),
            ExecutionStatus::Unknown("PAUSED".into())
        );
    }

    fn item(name: &str) -> ExecutionListItem {
        ExecutionListItem::builder()
            .execution_arn(format!("{MACHINE}:{name}"))
            .state_machine_arn(MACHINE)
            .name(name)
            .status(SdkStatus::Running)
            .start_date(SdkTime::from_secs(1_800_000_000))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn running_counts_every_page() {
        let first = mock!(Client::list_executions)
            .match_requests(|r| {
                r.state_machine_arn() == Some(MACHINE)
                    && r.status_filter() == Some(&SdkStatus::Running)
                    && r.next_token().is_none()
            })
            .then_output(|| {
                ListExecutionsOutput::builder()
                    .executions(item("a"))
                    .executions(item("b"))
                    .next_token("t2")
                    .build()
                    .unwrap()
            });
        let second = mock!(Client::list_executions)
            .match_requests(|r| r.next_token() == Some("t2"))
            .then_output(|| {
                ListExecutionsOutput::builder()
                    .executions(item("c"))
                    .build()
                    .unwrap()
            });
        let s = sfn(mock_client!(
            aws_sdk_sfn,
            RuleMode::MatchAny,
            [&first, &second]
        ));
        assert_eq!(s.running().await.unwrap(), ["a", "b", "c"]);
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }
    #[tokio::test]
    async fn stop_sends_the_execution_arn_error_and_cause() {
        let rule = mock!(Client::stop_execution)
            .match_requests(|r| {
                r.execution_arn() == Some(EXECUTION)
                    && r.error() == Some("Cancelled")
                    && r.cause() == Some("cancelled through the API")
            })
            .then_output(|| {
                StopExecutionOutput::builder()
                    .stop_date(SdkTime::from_secs(1_800_000_010))
                    .build()
                    .unwrap()
            });
        let s = sfn(mock_client!(aws_sdk_sfn, [&rule]));
        assert!(s
            .stop("api-1", "Cancelled", "cancelled through the API")
            .await
            .unwrap());
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn stopping_an_unknown_execution_is_false_other_errors_are_errors() {
        let missing = mock!(Client::stop_execution).then_error(|| {
            StopExecutionError::ExecutionDoesNotExist(ExecutionDoesNotExist::builder().build())
        });
        let s = sfn(mock_client!(aws_sdk_sfn, [&missing]));
        assert!(!s.stop("nope", "Cancelled", "c").await.unwrap());
        let invalid = mock!(Client::stop_execution).then_error(|| {
            StopExecutionError::InvalidArn(
                aws_sdk_sfn::types::error::InvalidArn::builder()
                    .message("bad arn")
                    .build(),
            )
        });
        let s = sfn(mock_client!(aws_sdk_sfn, [&invalid]));
        let err = s.stop("x", "Cancelled", "c").await.unwrap_err();
        assert_eq!(err.name(), "AwsServiceError");
        assert!(err.to_string().contains("bad arn"), "{err}");
    }

    #[tokio::test]
    async fn a_completion_is_accepted_or_finds_the_wait_closed() {
        use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput;
        use aws_sdk_sfn::types::error::{InvalidToken, TaskDoesNotExist, TaskTimedOut};
        let ok = mock!(Client::send_task_success)
            .match_requests(|r| r.task_token() == Some("tok") && r.output() == Some("{}"))
            .then_output(|| SendTaskSuccessOutput::builder().build());
        let timed_out = mock!(Client::send_task_success)
            .then_error(|| SendTaskSuccessError::TaskTimedOut(TaskTimedOut::builder().build()));
        let invalid = mock!(Client::send_task_success)
            .then_error(|| SendTaskSuccessError::InvalidToken(InvalidToken::builder().build()));
        let gone = mock!(Client::send_task_success).then_error(|| {
            SendTaskSuccessError::TaskDoesNotExist(TaskDoesNotExist::builder().build())
        });
        let c = Callbacks::new(mock_client!(
            aws_sdk_sfn,
            RuleMode::Sequential,
            [&ok, &timed_out, &invalid, &gone]
        ));
        assert_eq!(c.succeed("tok", "{}").await.unwrap(), Delivery::Accepted);
        for code in ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"] {
            assert_eq!(
                c.succeed("tok", "{}").await.unwrap(),
                Delivery::Closed(code.into())
            );
        }
    }

    #[tokio::test]
    async fn a_throttled_completion_is_transient() {
        let throttled = mock!(Client::send_task_success)
            .sequence()
            .http_response(|| {
                aws_smithy_runtime_api::http::Response::new(
                    aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                    aws_smithy_types::body::SdkBody::from(
                        r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                    ),
                )
            })
            .repeatedly()
            .build();
        let c = Callbacks::new(mock_client!(aws_sdk_sfn, [&throttled]));
        let err = c.succeed("tok", "{}").await.unwrap_err();
        assert_eq!(err.name(), "TransientAwsError", "{err}");
    }
}
