//! The tail of a build's log: GetLogEvents from the end of the stream, page by page backwards
//! until enough lines or [`MAX_PAGES`] calls.

use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsError;
use aws_sdk_cloudwatchlogs::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use crate::service::LogStream;

/// At most this many calls for one tail (each answers at most 1 MB or 10,000 events).
pub const MAX_PAGES: usize = 10;
/// GetLogEvents' largest `limit`.
const MAX_LIMIT: u32 = 10_000;

/// The last `lines` messages of `stream`, oldest first, without their line breaks.
pub async fn tail(
    client: &Client,
    stream: &LogStream,
    lines: u32,
) -> Result<Vec<String>, SdkError<GetLogEventsError, HttpResponse>> {
    let wanted = lines as usize;
    let mut pages: Vec<Vec<String>> = Vec::new();
    let (mut have, mut token) = (0, None::<String>);
    while have < wanted && pages.len() < MAX_PAGES {
        let page = client
            .get_log_events()
            .log_group_name(&stream.group)
            .log_stream_name(&stream.stream)
            .start_from_head(false)
            .limit((wanted - have).min(MAX_LIMIT as usize) as i32)
            .set_next_token(token.clone())
            .send()
            .await?;
        let messages: Vec<String> = page
            .events()
            .iter()
            .filter_map(|e| e.message())
            .map(|m| m.trim_end_matches('\n').to_owned())
            .collect();
        have += messages.len();
        pages.push(messages);
        // The same token back: the start of the stream.
        match page.next_backward_token() {
            Some(next) if token.as_deref() != Some(next) => token = Some(next.to_owned()),
            _ => break,
        }
    }
    let mut all: Vec<String> = pages.into_iter().rev().flatten().collect();
    Ok(all.split_off(all.len().saturating_sub(wanted)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatchlogs::operation::get_log_events::GetLogEventsOutput;
    use aws_sdk_cloudwatchlogs::types::error::ResourceNotFoundException;
    use aws_sdk_cloudwatchlogs::types::OutputLogEvent;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn stream() -> LogStream {
        LogStream {
            group: "/aws/codebuild/p".into(),
            stream: "u-1".into(),
        }
    }

    fn page(messages: &[&str], backward: &str) -> GetLogEventsOutput {
        let mut out = GetLogEventsOutput::builder().next_backward_token(backward);
        for m in messages {
            out = out.events(OutputLogEvent::builder().message(*m).build());
        }
        out.build()
    }

    #[tokio::test]
    async fn reads_the_end_of_the_stream_oldest_first() {
        let rule = mock!(Client::get_log_events)
            .match_requests(|r| {
                r.log_group_name() == Some("/aws/codebuild/p")
                    && r.log_stream_name() == Some("u-1")
                    && r.start_from_head() == Some(false)
                    && r.limit() == Some(2)
                    && r.next_token().is_none()
            })
            .then_output(|| page(&["#1 FROM python\n", "#2 DONE"], "b/1"));
        let client = mock_client!(aws_sdk_cloudwatchlogs, [&rule]);
        let lines = tail(&client, &stream(), 2).await.unwrap();
        assert_eq!(lines, ["#1 FROM python", "#2 DONE"]);
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn pages_backwards_until_enough_lines_or_the_start_of_the_stream() {
        let last = mock!(Client::get_log_events)
            .match_requests(|r| r.next_token().is_none() && r.limit() == Some(5))
            .then_output(|| page(&["c", "d"], "b/2"));
        // A page may be empty while earlier events remain.
        let empty = mock!(Client::get_log_events)
            .match_requests(|r| r.next_token() == Some("b/2") && r.limit() == Some(3))
            .then_output(|| page(&[], "b/3"));
        let first = mock!(Client::get_log_events)
            .match_requests(|r| r.next_token() == Some("b/3") && r.limit() == Some(3))
            .then_output(|| page(&["a", "b"], "b/4"));
        let start = mock!(Client::get_log_events)
            .match_requests(|r| r.next_token() == Some("b/4"))
            .then_output(|| page(&[], "b/4"));
        let client = mock_client!(
            aws_sdk_cloudwatchlogs,
            RuleMode::MatchAny,
            [&last, &empty, &first, &start]
        );
        assert_eq!(
            tail(&client, &stream(), 5).await.unwrap(),
            ["a", "b", "c", "d"]
        );
        let calls = [&last, &empty, &first, &start].map(|r| r.num_calls());
        assert_eq!(calls, [1, 1, 1, 1]);
    }

    #[tokio::test]
    async fn stops_after_max_pages() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let endless = mock!(Client::get_log_events)
            .sequence()
            .output(move || {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                page(&[], &format!("b/{n}"))
            })
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::Sequential, [&endless]);
        assert!(tail(&client, &stream(), 50).await.unwrap().is_empty());
        assert_eq!(endless.num_calls(), MAX_PAGES);
    }

    #[tokio::test]
    async fn a_missing_stream_is_the_services_error() {
        let rule = mock!(Client::get_log_events)
            .sequence()
            .error(|| {
                GetLogEventsError::ResourceNotFoundException(
                    ResourceNotFoundException::builder()
                        .message("The specified log stream does not exist.")
                        .build(),
                )
            })
            .times(2)
            .build();
        let client = mock_client!(aws_sdk_cloudwatchlogs, [&rule]);
        let err = tail(&client, &stream(), 10).await.unwrap_err();
        assert!(matches!(
            err.as_service_error(),
            Some(GetLogEventsError::ResourceNotFoundException(_))
        ));
        let aws = super::super::Aws::with_clients(super::super::tests::no_s3(), client);
        let err = aws.log_tail(&stream(), 10).await.unwrap_err();
        let want = "CloudWatch Logs GetLogEvents: HTTP 418: ResourceNotFoundException: The \
                    specified log stream does not exist.";
        assert_eq!(err.to_string(), want);
    }
}
