//! CloudWatch Logs streams in memory.

use super::record;
use crate::contract::LogEvent;
use crate::domain::record::LogLocation;
use crate::domain::request::RequestError;
use crate::ports::{BuildLogs, LogPage};
use crate::Error;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Streams by (group, stream); a token is `f/<index of the next line>`, as opaque as CloudWatch's.
#[derive(Default)]
pub struct FakeLogs {
    streams: RefCell<BTreeMap<(String, String), Vec<String>>>,
}

impl FakeLogs {
    pub fn with(self, group: &str, stream: &str, lines: &[&str]) -> Self {
        self.streams.borrow_mut().insert(
            (group.into(), stream.into()),
            lines.iter().map(|l| l.to_string()).collect(),
        );
        self
    }
}

impl BuildLogs for FakeLogs {
    async fn page(
        &self,
        stream: &LogLocation,
        token: Option<&str>,
        limit: u32,
    ) -> Result<Option<LogPage>, Error> {
        record("Logs.GetLogEvents");
        let streams = self.streams.borrow();
        let Some(lines) = streams.get(&(stream.group.clone(), stream.stream.clone())) else {
            return Ok(None);
        };
        let from = match token {
            None => 0,
            Some(t) => t
                .strip_prefix("f/")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| RequestError::new("nextToken", "is not a token this API gave"))?,
        };
        let to = (from + limit as usize).min(lines.len()).max(from);
        let events = lines
            .get(from..to)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, m)| LogEvent {
                timestamp: Some((from + i) as i64),
                message: m.clone(),
            })
            .collect();
        Ok(Some(LogPage {
            events,
            next_token: Some(format!("f/{to}")),
        }))
    }
}
