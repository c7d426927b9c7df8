//! EventBridge: announces final records (`Build Finished`) on the stack's bus.

use super::classify;
use crate::contract::BuildFinished;
use crate::ports::Events;
use crate::Error;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

pub struct EventBridge {
    client: aws_sdk_eventbridge::Client,
    /// A bus name or ARN; `default` is the account's default bus.
    bus: String,
}

impl EventBridge {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }
}

impl Events for EventBridge {
    async fn announce(&self, finished: &BuildFinished) -> Result<(), Error> {
        let detail = serde_json::to_string(finished)
            .map_err(|e| Error::InvalidState(format!("Build Finished detail: {e}")))?;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(BuildFinished::SOURCE)
            .detail_type(BuildFinished::DETAIL_TYPE)
            .detail(detail)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| classify("EventBridge.PutEvents", e))?;
        // PutEvents answers 200 with failed entries (throttled, internal failure): the event
        // was not put, and the writer's retry (the state machine's, EventBridge's) puts it.
        if out.failed_entry_count() > 0 {
            let entry = out.entries().iter().find(|e| e.error_code().is_some());
            return Err(Error::TransientAws(format!(
                "EventBridge.PutEvents: the event was not put: {}: {}",
                entry.and_then(|e| e.error_code()).unwrap_or("unknown"),
                entry
                    .and_then(|e| e.error_message())
                    .unwrap_or("no message"),
            )));
        }
        tracing::info!(build_id = %finished.build_id, status = %finished.status, bus = %self.bus, "announced");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::FinishedImage;
    use crate::domain::status::BuildStatus;
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_sdk_eventbridge::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn finished() -> BuildFinished {
        BuildFinished {
            build_id: "b-1".into(),
            project: "nexus-ai".into(),
            agent: "sales".into(),
            artifact: None,
            status: BuildStatus::Succeeded,
            image: FinishedImage {
                repository_uri: "1.dkr.ecr.us-east-1.amazonaws.com/agents".into(),
                tag: "sales-abc".into(),
                digest: Some("sha256:00".into()),
                uri: Some("1.dkr.ecr.us-east-1.amazonaws.com/agents:sales-abc".into()),
                attestations: None,
                signature: None,
            },
            deployment: None,
            record_key: "builds/b-1.json".into(),
        }
    }

    #[tokio::test]
    async fn announce_puts_one_build_finished_event_on_the_bus() {
        let rule = mock!(Client::put_events)
            .match_requests(|r| {
                let e = &r.entries()[0];
                let detail: BuildFinished =
                    serde_json::from_str(e.detail().unwrap_or_default()).unwrap();
                r.entries().len() == 1
                    && e.event_bus_name() == Some("ops-bus")
                    && e.source() == Some("agentbuild")
                    && e.detail_type() == Some("Build Finished")
                    && detail == finished()
            })
            .then_output(|| {
                PutEventsOutput::builder()
                    .failed_entry_count(0)
                    .entries(PutEventsResultEntry::builder().event_id("e-1").build())
                    .build()
            });
        let bus = EventBridge::new(mock_client!(aws_sdk_eventbridge, [&rule]), "ops-bus");
        bus.announce(&finished()).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_failed_entry_is_a_transient_error() {
        let rule = mock!(Client::put_events).then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(
                    PutEventsResultEntry::builder()
                        .error_code("ThrottlingException")
                        .error_message("Rate exceeded")
                        .build(),
                )
                .build()
        });
        let bus = EventBridge::new(mock_client!(aws_sdk_eventbridge, [&rule]), "default");
        let err = bus.announce(&finished()).await.unwrap_err();
        assert_eq!(err.name(), "TransientAwsError");
        assert!(
            err.to_string()
                .contains("ThrottlingException: Rate exceeded"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn throttling_is_retried_by_the_sdk_then_reported_transient() {
        let throttled = || {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                ),
            )
        };
        let rule = mock!(Client::put_events)
            .sequence()
            .http_response(throttled)
            .output(|| PutEventsOutput::builder().failed_entry_count(0).build())
            .build();
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, [&rule], |c| c
            .retry_config(
                aws_sdk_eventbridge::config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(1))
            ));
        EventBridge::new(client, "default")
            .announce(&finished())
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 2);

        let always = mock!(Client::put_events)
            .sequence()
            .http_response(throttled)
            .repeatedly()
            .build();
        let bus = EventBridge::new(mock_client!(aws_sdk_eventbridge, [&always]), "default");
        assert_eq!(
            bus.announce(&finished()).await.unwrap_err().name(),
            "TransientAwsError"
        );
    }
}
