//! Fleet rebuilds (statemachine/rebuild.asl.json): the run's input and name, the lock that
//! keeps runs from overlapping, the manifest the Distributed Map reads, and the summary.
//! Pure: the `rebuild` handler loads, calls and stores; these rules decide.

use super::deployment::{DeploymentStatus, DEPLOY_FAILED};
use super::ending::{ending, Ending, ExecutionStatus, INVALID_REQUEST};
use super::execution::schedule_execution_name;
use super::rebuild::{rebuild_input, Candidate};
use super::record::BuildRecord;
use super::request::{clip, is_name, RequestError};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Where the lock lives (one per stack: runs never overlap).
pub const LOCK_KEY: &str = "rebuilds/lock.json";
/// The fleet machine's `TimeoutSeconds` (a contract test reads the ASL): 6 days, so that a
/// weekly run ends before the next one is due.
pub const RUN_TIMEOUT_SECONDS: i64 = 6 * 24 * 3600;
/// A lock outlives the run that took it by this much at most: a run that crashed, timed out or
/// was aborted (no state runs to release it) blocks the next runs no longer than that.
pub const LOCK_MARGIN_SECONDS: i64 = 300;
/// Most entries of `projects` plus `agents` in one run's input.
pub const MAX_SELECTED: usize = 1000;
/// Reasons in a summary are ours (error names, statuses, causes): bounded all the same.
const MAX_REASON_CHARS: usize = 300;

/// `rebuilds/<run>.json`
pub fn summary_key(run: &str) -> String {
    format!("rebuilds/{run}.json")
}

/// `rebuilds/<run>/manifest.json`: the items the Distributed Map reads (a JSON array).
pub fn manifest_key(run: &str) -> String {
    format!("rebuilds/{run}/manifest.json")
}

/// `rebuilds/<run>/skipped.json`: agents the plan left out, and why.
pub fn skipped_key(run: &str) -> String {
    format!("rebuilds/{run}/skipped.json")
}

/// Which agents a run rebuilds: everything when both lists are empty (the schedule),
/// otherwise the agents of the listed projects and the listed agents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub projects: BTreeSet<String>,
    /// `project/agent`
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub agents: BTreeSet<String>,
}

impl Selection {
    pub fn is_everything(&self) -> bool {
        self.projects.is_empty() && self.agents.is_empty()
    }

    pub fn contains(&self, project: &str, agent: &str) -> bool {
        self.is_everything()
            || self.projects.contains(project)
            || self.agents.contains(&format!("{project}/{agent}"))
    }
}

/// A run's input: `{"scheduledTime"?, "projects"?, "agents"?}` (the schedule sends only
/// `scheduledTime`; a person may send any of them, or `{}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInput {
    pub scheduled_time: Option<DateTime<Utc>>,
    pub selection: Selection,
}

/// Parses a run's input; unknown fields are rejected, every rejection names the field.
pub fn parse_run_input(input: &Value) -> Result<RunInput, RequestError> {
    let empty = Map::new();
    let obj = match input {
        Value::Null => &empty,
        Value::Object(m) => m,
        _ => return Err(RequestError::new("input", "must be a JSON object")),
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !["scheduledTime", "projects", "agents"].contains(&k.as_str()))
    {
        return Err(RequestError::new(
            clip(k),
            "is not a field of a rebuild run (scheduledTime, projects, agents)",
        ));
    }
    let scheduled_time = match obj.get("scheduledTime") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| {
                    RequestError::new(
                        "scheduledTime",
                        "must be an RFC 3339 time (2026-11-29T03:00:00Z)",
                    )
                })?
                .with_timezone(&Utc),
        ),
        Some(_) => return Err(RequestError::new("scheduledTime", "must be a string")),
    };
    let projects = names(obj, "projects", is_name)?;
    let agents = names(obj, "agents", |a| {
        a.split_once('/')
            .is_some_and(|(p, a)| is_name(p) && is_name(a))
    })?;
    if projects.len() + agents.len() > MAX_SELECTED {
        return Err(RequestError::new(
            "agents",
            format!("projects and agents together list at most {MAX_SELECTED} entries"),
        ));
    }
    Ok(RunInput {
        scheduled_time,
        selection: Selection { projects, agents },
    })
}

fn names(
    obj: &Map<String, Value>,
    field: &str,
    valid: impl Fn(&str) -> bool,
) -> Result<BTreeSet<String>, RequestError> {
    let rule = if field == "projects" {
        "must be a list of project names (^[a-z0-9][a-z0-9-]{0,62}$)"
    } else {
        "must be a list of \"project/agent\" (each ^[a-z0-9][a-z0-9-]{0,62}$)"
    };
    match obj.get(field) {
        None | Some(Value::Null) => Ok(BTreeSet::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v.as_str() {
                Some(s) if valid(s) => Ok(s.to_string()),
                _ => Err(RequestError::new(format!("{field}[{i}]"), rule)),
            })
            .collect(),
        Some(_) => Err(RequestError::new(field, rule)),
    }
}

/// A run is named by its scheduled time (`yyyymmddThhmm`, as its build executions'
/// `sched-<run>-…` names); a run started by hand, by its execution's start time. Every
/// retry of one scheduled run has the same name, so it starts no agent twice.
pub fn run_name(input: &RunInput, execution_started: DateTime<Utc>) -> String {
    input
        .scheduled_time
        .unwrap_or(execution_started)
        .format("%Y%m%dT%H%M")
        .to_string()
}

/// The build execution's name of one agent in run `run` (`sched-<run>-<hash>`).
pub fn item_name(run: &str, project: &str, agent: &str) -> Result<String, String> {
    let at = chrono::NaiveDateTime::parse_from_str(&format!("{run}00"), "%Y%m%dT%H%M%S")
        .map_err(|_| format!("run {} is not yyyymmddThhmm", clip(run)))?
        .and_utc();
    Ok(schedule_execution_name(at, project, agent))
}

/// `rebuilds/lock.json`: who holds the fleet rebuild, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lock {
    pub run: String,
    /// The holding execution's ARN.
    pub execution: String,
    pub taken_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<DateTime<Utc>>,
}

impl Lock {
    pub fn new(run: &str, execution: &str, now: DateTime<Utc>) -> Self {
        Self {
            run: run.to_string(),
            execution: execution.to_string(),
            taken_at: now,
            expires_at: now + Duration::seconds(RUN_TIMEOUT_SECONDS + LOCK_MARGIN_SECONDS),
            released_at: None,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a lock serializes")
    }
}

/// What the stored lock means for execution `execution`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// No lock object: take it with `If-None-Match: *`.
    Absent,
    /// Released, expired or unreadable: take it over with `If-Match` on its ETag.
    Free,
    /// This execution holds it already (a retried TakeLock whose first write landed).
    Ours,
    /// Another run holds it.
    Held(Lock),
}

pub fn lock_state(stored: Option<&[u8]>, execution: &str, now: DateTime<Utc>) -> LockState {
    let Some(bytes) = stored else {
        return LockState::Absent;
    };
    match serde_json::from_slice::<Lock>(bytes) {
        Err(_) => LockState::Free,
        Ok(l) if l.released_at.is_some() => LockState::Free,
        Ok(l) if l.execution == execution => LockState::Ours,
        Ok(l) if l.expires_at <= now => LockState::Free,
        Ok(l) => LockState::Held(l),
    }
}

/// Whether ReleaseLock may release the stored lock: only the holder releases, only once.
pub fn releasable(stored: &[u8], execution: &str) -> bool {
    serde_json::from_slice::<Lock>(stored)
        .is_ok_and(|l| l.execution == execution && l.released_at.is_none())
}

/// One item of the manifest: one child of the Distributed Map, one build execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestItem {
    /// The build execution's name (`sched-<run>-<hash>`): a retried run starts nothing twice.
    pub name: String,
    /// `project/agent`
    pub agent: String,
    /// The build execution's input (`rebuild_input`: which build it rebuilds, for which run).
    pub input: Value,
}

pub fn manifest_item(run: &str, c: &Candidate) -> Result<ManifestItem, String> {
    Ok(ManifestItem {
        name: item_name(run, &c.project, &c.agent)?,
        agent: c.label.clone(),
        input: rebuild_input(run, c),
    })
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Every item was tried.
    Completed,
    /// Another run held the lock: this one started nothing.
    Skipped,
    /// The Distributed Map failed (e.g. more failures than tolerated): items not started are
    /// listed as skipped.
    Aborted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failed {
    pub agent: String,
    pub status: String,
    pub reason: String,
    /// The build execution (= buildId): `builds/<buildId>.json` has the whole record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
}

/// A child stopped before it finished (a cancel): not a failure (`domain::fleet_guard`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancelled {
    pub agent: String,
    pub reason: String,
    pub build_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub agent: String,
    pub reason: String,
}

/// `rebuilds/<run>.json` (design: "Rebuilds"), also the run's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub run: String,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Build executions this run started (or found started by an earlier try of it).
    pub started: usize,
    pub succeeded: usize,
    pub failed: Vec<Failed>,
    pub skipped: Vec<Skipped>,
    /// Children stopped by a cancel: counted in `started`, neither succeeded nor failed.
    #[serde(default)]
    pub cancelled: Vec<Cancelled>,
    /// Set on the returned copy when the lists were cut to fit the execution's output; the
    /// stored summary is always whole.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Summary {
    pub fn skipped_run(run: &str, holder: &Lock) -> Self {
        Self {
            run: run.to_string(),
            status: RunStatus::Skipped,
            reason: Some(format!(
                "run {} holds the rebuild lock (taken {}, expires {})",
                holder.run,
                holder.taken_at.to_rfc3339(),
                holder.expires_at.to_rfc3339()
            )),
            started: 0,
            succeeded: 0,
            failed: vec![],
            skipped: vec![],
            cancelled: vec![],
            truncated: false,
        }
    }

    /// The summary cut to about `max_bytes` of JSON (the execution output's limit is 256 KiB):
    /// counts stay, lists are shortened.
    pub fn fitted(&self, max_bytes: usize) -> Self {
        let mut out = self.clone();
        while serde_json::to_vec(&out).map_or(0, |v| v.len()) > max_bytes
            && !(out.failed.is_empty() && out.skipped.is_empty() && out.cancelled.is_empty())
        {
            out.truncated = true;
            let (f, s, c) = (out.failed.len(), out.skipped.len(), out.cancelled.len());
            out.failed.truncate(f / 2);
            out.skipped.truncate(s / 2);
            out.cancelled.truncate(c / 2);
        }
        out
    }
}

/// What Step Functions says of an item's build execution, free of SDK types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionOutcome {
    pub status: ExecutionStatus,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// One item's outcome, from its record (the build machine's truth: every execution past
/// validation ends with one) and, without a final record, its execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    Succeeded,
    Failed {
        status: String,
        reason: String,
    },
    /// No build execution of that name: the run ended before it started this one.
    NotStarted,
    /// Stopped by a cancel (`domain::fleet_guard::child_outcome`): not a failure.
    Cancelled {
        reason: String,
    },
}

pub fn item_outcome(
    record: Option<&BuildRecord>,
    execution: Option<&ExecutionOutcome>,
) -> ItemOutcome {
    if let Some(r) = record.filter(|r| r.status.is_final()) {
        return recorded_outcome(r);
    }
    let Some(x) = execution else {
        return match record {
            // A RUNNING record whose execution cannot be found: report, don't guess.
            Some(_) => ItemOutcome::Failed {
                status: "RUNNING".into(),
                reason: "the record is still RUNNING and its execution was not found".into(),
            },
            None => ItemOutcome::NotStarted,
        };
    };
    let end = ending(&x.status, x.error.as_deref(), record.is_some());
    match end {
        Ending::Open => ItemOutcome::Failed {
            status: "RUNNING".into(),
            reason: "still running when the run ended".into(),
        },
        // Validation refused it: no record is written (e.g. its source no longer exists).
        Ending::Rejected => ItemOutcome::Failed {
            status: end.reported().to_string(),
            reason: bounded(&format!(
                "{INVALID_REQUEST}: {}",
                x.cause.as_deref().unwrap_or("")
            )),
        },
        Ending::Succeeded | Ending::Closed { .. } => ItemOutcome::Failed {
            status: end.reported().to_string(),
            reason: bounded(&match (x.error.as_deref(), x.cause.as_deref()) {
                (Some(e), Some(c)) => format!("{e}: {c}"),
                (Some(e), None) => e.to_string(),
                _ => format!("the execution ended {} without a final record", x.status),
            }),
        },
    }
}

/// The outcome a final record says.
fn recorded_outcome(r: &BuildRecord) -> ItemOutcome {
    if r.status.is_success() {
        // Built, but its deployment failed: the execution failed DeployFailed (and counts
        // against the map's tolerance), so the summary says so too.
        if let Some(d) = r
            .deployment
            .as_ref()
            .filter(|d| d.status == DeploymentStatus::Failed)
        {
            let reason = d.failure_reason.as_deref().unwrap_or("no reason given");
            return ItemOutcome::Failed {
                status: "DEPLOY_FAILED".into(),
                reason: bounded(&format!("{DEPLOY_FAILED}: {reason}")),
            };
        }
        return ItemOutcome::Succeeded;
    }
    let reason = match (&r.error, &r.codebuild.failed_phase) {
        (Some(e), _) => format!("{}: {}", e.kind, e.message),
        (None, Some(p)) => format!(
            "CodeBuild phase {} {}{}",
            p.name,
            p.status,
            p.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
        (None, None) => format!("the build ended {}", r.status),
    };
    ItemOutcome::Failed {
        status: r.status.to_string(),
        reason: bounded(&reason),
    }
}

fn bounded(text: &str) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON_CHARS)
        .collect();
    if text.chars().filter(|c| !c.is_control()).count() > MAX_REASON_CHARS {
        out.push('…');
    }
    out
}

/// What ExistingRebuild answers for an item whose name was taken (a retried run): the Map's
/// item waits while it runs, succeeds or fails as the execution did.
pub fn existing_wait_seconds(status: &ExecutionStatus) -> Option<u64> {
    status.is_open().then_some(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rebuild::candidate;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::record::{ErrorInfo, FailedPhase};
    use crate::domain::status::BuildStatus;
    use serde_json::json;

    fn record(status: BuildStatus) -> BuildRecord {
        let mut b = running();
        b.status = status;
        BuildRecord::new(&plan(), Some(&b), None, t("2026-11-28T10:00:00Z"))
    }

    #[test]
    fn the_schedule_names_the_run_by_its_time_and_a_person_by_the_start() {
        let started = t("2026-11-30T08:15:42Z");
        let sched = parse_run_input(&json!({"scheduledTime": "2026-11-29T03:00:00Z"})).unwrap();
        assert_eq!(run_name(&sched, started), "20261129T0300");
        assert!(sched.selection.is_everything());
        let manual = parse_run_input(&json!({})).unwrap();
        assert_eq!(run_name(&manual, started), "20261130T0815");
        assert_eq!(
            run_name(&parse_run_input(&Value::Null).unwrap(), started),
            "20261130T0815"
        );
    }

    #[test]
    fn a_selection_takes_listed_projects_and_agents_only() {
        let i = parse_run_input(&json!({"projects": ["p"], "agents": ["q/a"]})).unwrap();
        assert!(i.selection.contains("p", "x") && i.selection.contains("q", "a"));
        assert!(!i.selection.contains("q", "b") && !i.selection.contains("r", "a"));
    }

    #[test]
    fn bad_run_input_is_rejected_naming_the_field() {
        for (input, field) in [
            (json!({"colour": 1}), "colour"),
            (json!({"projects": ["Bad"]}), "projects[0]"),
            (json!({"projects": "p"}), "projects"),
            (json!({"agents": ["p"]}), "agents[0]"),
            (json!({"agents": ["p/a/b"]}), "agents[0]"),
            (json!({"scheduledTime": "tomorrow"}), "scheduledTime"),
            (json!([1]), "input"),
            (json!({"x".repeat(200): 1}), &format!("{}…", "x".repeat(64))),
        ] {
            let e = parse_run_input(&input).unwrap_err();
            assert_eq!(e.field, field, "{input}");
        }
        let many: Vec<String> = (0..=MAX_SELECTED).map(|i| format!("p{i}")).collect();
        assert_eq!(
            parse_run_input(&json!({"projects": many}))
                .unwrap_err()
                .field,
            "agents"
        );
    }

    #[test]
    fn item_names_are_the_schedule_names_of_the_run() {
        let n = item_name("20261129T0300", "p", "a").unwrap();
        assert_eq!(
            n,
            schedule_execution_name(t("2026-11-29T03:00:00Z"), "p", "a")
        );
        assert!(n.starts_with("sched-20261129T0300-"));
        assert!(item_name("soon", "p", "a").is_err());
    }

    #[test]
    fn the_lock_is_taken_when_absent_released_or_expired_and_held_otherwise() {
        let now = t("2026-11-30T08:00:00Z");
        assert_eq!(lock_state(None, "x", now), LockState::Absent);
        let held = Lock::new("20261130T0800", "arn:run-1", now);
        let bytes = held.to_json();
        assert_eq!(lock_state(Some(&bytes), "arn:run-1", now), LockState::Ours);
        assert_eq!(
            lock_state(Some(&bytes), "arn:run-2", now),
            LockState::Held(held.clone())
        );
        let later = held.expires_at;
        assert_eq!(
            lock_state(Some(&bytes), "arn:run-2", later),
            LockState::Free
        );
        let mut released = held.clone();
        released.released_at = Some(now);
        assert_eq!(
            lock_state(Some(&released.to_json()), "arn:run-2", now),
            LockState::Free
        );
        assert_eq!(lock_state(Some(b"junk"), "arn:run-2", now), LockState::Free);
        assert!(releasable(&bytes, "arn:run-1"));
        assert!(!releasable(&bytes, "arn:run-2"));
        assert!(!releasable(&released.to_json(), "arn:run-1"));
        // Expiry: the run's own timeout plus a margin.
        assert_eq!(
            (held.expires_at - held.taken_at).num_seconds(),
            RUN_TIMEOUT_SECONDS + LOCK_MARGIN_SECONDS
        );
    }

    #[test]
    fn a_manifest_item_names_the_build_it_rebuilds_under_its_schedule_name() {
        let c = candidate(
            "nexus-ai",
            "sales-assistant",
            record(BuildStatus::Succeeded),
        )
        .unwrap();
        let item = manifest_item("20261129T0300", &c).unwrap();
        assert_eq!(item.agent, "nexus-ai/sales-assistant");
        assert_eq!(item.input["rebuild"]["buildId"], c.record.build_id.as_str());
        assert_eq!(item.input["rebuild"]["run"], "20261129T0300");
        assert!(item.name.starts_with("sched-20261129T0300-"));
    }

    #[test]
    fn a_build_whose_deployment_failed_is_a_failed_item_as_its_execution_is() {
        let mut built = record(BuildStatus::Succeeded);
        built.deployment = Some(crate::domain::deployment::Deployment {
            status: DeploymentStatus::Failed,
            runtime_id: Some("rt-1".into()),
            runtime_arn: None,
            runtime_name: "ab_p_a_12345678".into(),
            runtime_version: None,
            container_uri: None,
            action: Some("UPDATED".into()),
            failure_reason: Some("image not arm64".into()),
            started_at: t("2026-11-28T10:00:00Z"),
            finished_at: Some(t("2026-11-28T10:01:00Z")),
            deadline: None,
            wait_seconds: None,
            checks: 2,
            superseded: None,
            endpoint: None,
            version: None,
            previous_version: None,
            smoke: None,
            phase: None,
            scan: None,
        });
        assert_eq!(
            item_outcome(Some(&built), None),
            ItemOutcome::Failed {
                status: "DEPLOY_FAILED".into(),
                reason: "DeployFailed: image not arm64".into()
            }
        );
        built.deployment.as_mut().unwrap().status = DeploymentStatus::Ready;
        assert_eq!(item_outcome(Some(&built), None), ItemOutcome::Succeeded);
    }

    #[test]
    fn outcomes_come_from_the_record_then_the_execution() {
        assert_eq!(
            item_outcome(Some(&record(BuildStatus::Reused)), None),
            ItemOutcome::Succeeded
        );
        let mut failed = record(BuildStatus::Failed);
        failed.codebuild.failed_phase = Some(FailedPhase {
            name: "BUILD".into(),
            status: "FAILED".into(),
            code: None,
            message: Some("exit 1".into()),
        });
        assert_eq!(
            item_outcome(Some(&failed), None),
            ItemOutcome::Failed {
                status: "FAILED".into(),
                reason: "CodeBuild phase BUILD FAILED: exit 1".into()
            }
        );
        let mut error = record(BuildStatus::Error);
        error.error = Some(ErrorInfo::new("TransientAwsError", "x".repeat(1000)));
        let ItemOutcome::Failed { reason, .. } = item_outcome(Some(&error), None) else {
            panic!()
        };
        assert!(reason.chars().count() <= MAX_REASON_CHARS + 1);
        let rejected = ExecutionOutcome {
            status: "FAILED".into(),
            error: Some("InvalidRequest".into()),
            cause: Some("source: no such object".into()),
        };
        assert_eq!(
            item_outcome(None, Some(&rejected)),
            ItemOutcome::Failed {
                status: "REJECTED".into(),
                reason: "InvalidRequest: source: no such object".into()
            }
        );
        assert_eq!(item_outcome(None, None), ItemOutcome::NotStarted);
        let running = ExecutionOutcome {
            status: "RUNNING".into(),
            error: None,
            cause: None,
        };
        assert!(matches!(
            item_outcome(Some(&record(BuildStatus::Running)), Some(&running)),
            ItemOutcome::Failed { status, .. } if status == "RUNNING"
        ));
        assert_eq!(existing_wait_seconds(&"RUNNING".into()), Some(10));
        assert_eq!(existing_wait_seconds(&"FAILED".into()), None);
    }

    #[test]
    fn a_returned_summary_fits_the_output_limit_and_says_so() {
        let mut s = Summary::skipped_run("r", &Lock::new("r0", "arn", t("2026-11-30T08:00:00Z")));
        s.status = RunStatus::Completed;
        s.failed = (0..5000)
            .map(|i| Failed {
                agent: format!("p/a{i}"),
                status: "FAILED".into(),
                reason: "x".repeat(100),
                build_id: None,
            })
            .collect();
        let fitted = s.fitted(200 * 1024);
        assert!(serde_json::to_vec(&fitted).unwrap().len() <= 200 * 1024);
        assert!(fitted.truncated && !fitted.failed.is_empty());
        assert!(!s.fitted(10 * 1024 * 1024).truncated);
    }

    #[test]
    fn the_summary_has_the_designed_fields() {
        let s = Summary::skipped_run("r", &Lock::new("r0", "arn", t("2026-11-30T08:00:00Z")));
        let v = serde_json::to_value(&s).unwrap();
        for k in [
            "run",
            "started",
            "succeeded",
            "failed",
            "skipped",
            "status",
            "reason",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["status"], "SKIPPED");
    }
}
