//! CloudWatch Logs: one page of a build's log stream (GetLogEvents, forwards).

use super::classify;
use crate::contract::LogEvent;
use crate::domain::record::LogLocation;
use crate::domain::request::RequestError;
use crate::ports::{BuildLogs, LogPage};
use crate::Error;
use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsError;

pub struct CloudWatchLogs {
    client: aws_sdk_cloudwatchlogs::Client,
}

impl CloudWatchLogs {
    pub fn new(client: aws_sdk_cloudwatchlogs::Client) -> Self {
        Self { client }
    }
}

impl BuildLogs for CloudWatchLogs {
    async fn page(
        &self,
        stream: &LogLocation,
        token: Option<&str>,
        limit: u32,
    ) -> Result<Option<LogPage>, Error> {
        let out = self
            .client
            .get_log_events()
            .log_group_name(&stream.group)
            .log_stream_name(&stream.stream)
            .start_from_head(true)
            .limit(limit.clamp(1, 10_000) as i32)
            .set_next_token(token.map(String::from))
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                return match e.as_service_error() {
                    Some(GetLogEventsError::ResourceNotFoundException(_)) => Ok(None),
                    Some(GetLogEventsError::InvalidParameterException(_)) if token.is_some() => {
                        Err(RequestError::new("nextToken", "is not a token this API gave").into())
                    }
                    _ => Err(classify("Logs.GetLogEvents", e)),
                }
            }
        };
        let events = out
            .events()
            .iter()
            .map(|e| LogEvent {
                timestamp: e.timestamp(),
                message: e
                    .message()
                    .unwrap_or_default()
                    .trim_end_matches('\n')
                    .to_string(),
            })
            .collect();
        Ok(Some(LogPage {
            events,
            next_token: out.next_forward_token().map(String::from),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsOutput;
    use aws_sdk_cloudwatchlogs::types::error::{
        InvalidParameterException, ResourceNotFoundException,
    };
    use aws_sdk_cloudwatchlogs::types::OutputLogEvent;
    use aws_sdk_cloudwatchlogs::Client;
    use aws_smithy_mocks::{mock, mock_client};

    fn stream() -> LogLocation {
        LogLocation {
            group: "/aws/codebuild/p".into(),
            stream: "u-1".into(),
        }
    }

    #[tokio::test]
    async fn reads_a_page_forwards_with_its_token() {
        let rule = mock!(Client::get_log_events)
            .match_requests(|r| {
                r.log_group_name() == Some("/aws/codebuild/p")
                    && r.log_stream_name() == Some("u-1")
                    && r.start_from_head() == Some(true)
                    && r.limit() == Some(200)
                    && r.next_token() == Some("f/1")
            })
            .then_output(|| {
                GetLogEventsOutput::builder()
                    .events(
                        OutputLogEvent::builder()
                            .timestamp(7)
                            .message("one\n")
                            .build(),
                    )
                    .next_forward_token("f/2")
                    .build()
            });
        let logs = CloudWatchLogs::new(mock_client!(aws_sdk_cloudwatchlogs, [&rule]));
        let page = logs
            .page(&stream(), Some("f/1"), 200)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            page.events,
            vec![LogEvent {
                timestamp: Some(7),
                message: "one".into()
            }]
        );
        assert_eq!(page.next_token.as_deref(), Some("f/2"));
    }

    #[tokio::test]
    async fn a_missing_stream_is_none_and_a_foreign_token_names_next_token() {
        let missing = mock!(Client::get_log_events).then_error(|| {
            GetLogEventsError::ResourceNotFoundException(
                ResourceNotFoundException::builder().build(),
            )
        });
        let logs = CloudWatchLogs::new(mock_client!(aws_sdk_cloudwatchlogs, [&missing]));
        assert_eq!(logs.page(&stream(), None, 10).await.unwrap(), None);
        let bad = mock!(Client::get_log_events).then_error(|| {
            GetLogEventsError::InvalidParameterException(
                InvalidParameterException::builder().build(),
            )
        });
        let logs = CloudWatchLogs::new(mock_client!(aws_sdk_cloudwatchlogs, [&bad]));
        match logs.page(&stream(), Some("x"), 10).await {
            Err(Error::InvalidRequest(e)) => assert_eq!(e.field, "nextToken"),
            other => panic!("{other:?}"),
        }
    }
}
