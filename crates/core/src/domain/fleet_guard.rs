//! What an ordinary caller cannot do to a fleet run (issue 20 item 11): a run cannot claim a
//! future `scheduledTime` (its children's names would be taken when that run comes, and the
//! real run would count agents as rebuilt without building them); a child counts by what its
//! record says it built, not by its name; a child stopped by a cancel is reported `cancelled`
//! and does not count as a failure (a cancel of a scheduled rebuild means "not this agent, not
//! this time": its latest build stands and the next run tries again). Pure.

use super::ending::ExecutionStatus;
use super::execution::schedule_execution_name;
use super::fleet::{item_outcome, ExecutionOutcome, ItemOutcome, RunInput};
use super::record::BuildRecord;
use super::request::Trigger;
use super::status::BuildStatus;
use super::text::RequestError;
use chrono::{DateTime, NaiveDateTime, Utc};

/// A run's `scheduledTime` may not be later than the run's own start (EventBridge Scheduler
/// starts a run at or after the time it names).
pub fn refuse_future(input: &RunInput, started: DateTime<Utc>) -> Result<(), RequestError> {
    match input.scheduled_time {
        Some(at) if at > started => Err(RequestError::new(
            "scheduledTime",
            format!(
                "must not be later than the run's start ({}): a run cannot claim a future time",
                started.to_rfc3339()
            ),
        )),
        _ => Ok(()),
    }
}

/// Whether the record at child name `name` is that name's rebuild: a forced, scheduled build of
/// the agent the name hashes (`schedule_execution_name`), else why not. A name someone else's
/// execution took (a console run under a predictable name) builds nothing for the fleet.
pub fn rebuild_of(name: &str, record: &BuildRecord) -> Result<(), String> {
    let at = name
        .strip_prefix("sched-")
        .and_then(|rest| rest.get(..13))
        .and_then(|t| NaiveDateTime::parse_from_str(&format!("{t}00"), "%Y%m%dT%H%M%S").ok())
        .map(|t| t.and_utc());
    let Some(at) = at else {
        return Err(format!("{name} is not the name of a scheduled rebuild"));
    };
    if schedule_execution_name(at, &record.project, &record.agent) != name {
        return Err(format!(
            "builds/{name}.json is a build of {}/{}, not the agent this name rebuilds",
            record.project, record.agent
        ));
    }
    if record.trigger != Trigger::Schedule || !record.force {
        return Err(format!(
            "builds/{name}.json is not a forced scheduled rebuild (another execution took the name)"
        ));
    }
    Ok(())
}

/// Why a child counts as cancelled (its record STOPPED, or its execution ABORTED without a
/// final record), or `None`.
pub fn cancelled(
    record: Option<&BuildRecord>,
    execution: Option<&ExecutionOutcome>,
) -> Option<String> {
    if let Some(r) = record.filter(|r| r.status.is_final()) {
        if r.status != BuildStatus::Stopped {
            return None;
        }
        let why = r.error.as_ref().map_or_else(
            || "stopped before it finished".to_string(),
            |e| format!("{}: {}", e.kind, e.message),
        );
        return Some(why);
    }
    execution
        .filter(|x| x.status == ExecutionStatus::Aborted)
        .map(|x| match x.error.as_deref() {
            Some(e) => format!("the execution was aborted ({e})"),
            None => "the execution was aborted".to_string(),
        })
}

/// A child's outcome by what it did: a cancel is `Cancelled`; a success whose record is not
/// this name's rebuild is `Failed` (`NOT_REBUILT`); otherwise `fleet::item_outcome`.
pub fn child_outcome(
    name: &str,
    record: Option<&BuildRecord>,
    execution: Option<&ExecutionOutcome>,
) -> ItemOutcome {
    if let Some(reason) = cancelled(record, execution) {
        return ItemOutcome::Cancelled { reason };
    }
    if let Some(r) = record.filter(|r| r.status.is_final()) {
        if let Err(reason) = rebuild_of(name, r) {
            return ItemOutcome::Failed {
                status: "NOT_REBUILT".into(),
                reason,
            };
        }
    }
    item_outcome(record, execution)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fleet::parse_run_input;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::record::ErrorInfo;
    use serde_json::json;

    fn rebuild(name_at: &str, project: &str, agent: &str) -> (String, BuildRecord) {
        let name = schedule_execution_name(t(name_at), project, agent);
        let mut p = plan();
        p.project = project.into();
        p.agent = agent.into();
        p.build_id = name.clone();
        p.trigger = Trigger::Schedule;
        p.force = true;
        let mut b = running();
        b.status = BuildStatus::Succeeded;
        let r = BuildRecord::new(&p, Some(&b), None, t("2026-11-29T03:10:00Z"));
        (name, r)
    }

    #[test]
    fn refuses_a_scheduled_time_after_the_runs_start() {
        let started = t("2026-11-29T03:00:05Z");
        let future = parse_run_input(&json!({"scheduledTime": "2026-12-06T03:00:00Z"})).unwrap();
        let e = refuse_future(&future, started).unwrap_err();
        assert_eq!(e.field, "scheduledTime");
        let due = parse_run_input(&json!({"scheduledTime": "2026-11-29T03:00:00Z"})).unwrap();
        assert!(refuse_future(&due, started).is_ok());
        assert!(refuse_future(&parse_run_input(&json!({})).unwrap(), started).is_ok());
    }

    #[test]
    fn a_child_counts_only_when_its_record_is_that_agents_forced_scheduled_rebuild() {
        let (name, r) = rebuild("2026-11-29T03:00:00Z", "nexus-ai", "sales");
        assert_eq!(rebuild_of(&name, &r), Ok(()));
        let mut unforced = r.clone();
        unforced.force = false;
        assert!(rebuild_of(&name, &unforced)
            .unwrap_err()
            .contains("not a forced"));
        let mut console = r.clone();
        console.trigger = Trigger::Console;
        assert!(rebuild_of(&name, &console).is_err());
        let (_, other) = rebuild("2026-11-29T03:00:00Z", "nexus-ai", "billing");
        assert!(rebuild_of(&name, &other)
            .unwrap_err()
            .contains("nexus-ai/billing"));
        assert!(rebuild_of("b-123", &r).is_err());
    }

    #[test]
    fn a_stopped_record_or_an_aborted_execution_is_a_cancel_and_a_failure_is_not() {
        let (_, mut r) = rebuild("2026-11-29T03:00:00Z", "nexus-ai", "sales");
        assert_eq!(cancelled(Some(&r), None), None);
        r.finish(
            BuildStatus::Stopped,
            ErrorInfo::new("Cancelled", "DELETE /builds"),
            t("2026-11-29T03:05:00Z"),
        );
        assert_eq!(
            cancelled(Some(&r), None).as_deref(),
            Some("Cancelled: DELETE /builds")
        );
        let aborted = ExecutionOutcome {
            status: ExecutionStatus::Aborted,
            error: Some("Cancelled".into()),
            cause: None,
        };
        assert!(cancelled(None, Some(&aborted)).unwrap().contains("aborted"));
        let failed = ExecutionOutcome {
            status: ExecutionStatus::Failed,
            ..aborted
        };
        assert_eq!(cancelled(None, Some(&failed)), None);
    }

    #[test]
    fn a_name_taken_by_another_build_is_not_rebuilt_and_a_cancel_is_not_a_failure() {
        let (name, r) = rebuild("2026-11-29T03:00:00Z", "nexus-ai", "sales");
        assert_eq!(child_outcome(&name, Some(&r), None), ItemOutcome::Succeeded);
        let mut foreign = r.clone();
        foreign.trigger = Trigger::Console;
        foreign.force = false;
        assert!(matches!(
            child_outcome(&name, Some(&foreign), None),
            ItemOutcome::Failed { status, .. } if status == "NOT_REBUILT"
        ));
        let mut stopped = r;
        stopped.status = BuildStatus::Stopped;
        assert!(matches!(
            child_outcome(&name, Some(&stopped), None),
            ItemOutcome::Cancelled { .. }
        ));
        assert_eq!(child_outcome(&name, None, None), ItemOutcome::NotStarted);
    }
}
