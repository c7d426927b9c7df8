//! An agent's deployment history (`agents/<project>/<agent>/deployments/`): one entry per deploy
//! that reached a version (its smoke result, whether its endpoint moved) and per rollback, so a
//! person can read which build, which version, when, which door, and what the smoke test said;
//! and the rule of a rollback: only to a version agentbuild deployed and whose smoke test
//! passed. Pure: `services::history` reads and writes the entries.

use super::deployment::{Deployment, DeploymentStatus};
use super::record::BuildRecord;
use super::request::Trigger;
use super::rollout::{Smoke, SmokeStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where an agent's entries live; each entry is its own object (no read-modify-write).
pub fn history_prefix(project: &str, agent: &str) -> String {
    format!("agents/{project}/{agent}/deployments/")
}

/// A deploy's entry: named by its build (a retried RecordResult writes the same one).
pub fn deploy_key(project: &str, agent: &str, build_id: &str) -> String {
    format!("{}deploy-{build_id}.json", history_prefix(project, agent))
}

/// A rollback's entry: named by when it happened.
pub fn rollback_key(project: &str, agent: &str, at: DateTime<Utc>) -> String {
    format!(
        "{}rollback-{}.json",
        history_prefix(project, agent),
        at.format("%Y%m%dT%H%M%S%.3fZ")
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryKind {
    Deploy,
    Rollback,
}

/// One line of an agent's deployment history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub kind: EntryKind,
    pub at: DateTime<Utc>,
    /// The build whose version this is (a rollback: the build rolled back to).
    pub build_id: String,
    /// Which door: the build's trigger (`api`, `schedule`, `console`); a rollback's is `api`.
    pub trigger: Trigger,
    pub endpoint: String,
    /// The runtime the endpoint belongs to (absent in entries from before it was recorded: then
    /// `runtime_id`, which starts with the name, tells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_name: Option<String>,
    pub runtime_id: Option<String>,
    pub version: Option<String>,
    pub previous_version: Option<String>,
    /// READY (the endpoint serves `version`), FAILED, SUPERSEDED.
    pub status: DeploymentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<Smoke>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who: a rollback's caller (the IAM principal API Gateway authorized).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl Entry {
    /// Whether this entry is of runtime `id` (a version number means something only there).
    pub fn of_runtime(&self, id: &str) -> bool {
        self.runtime_id.as_deref() == Some(id)
    }

    /// Whether this entry is of the runtime named `name`.
    pub fn named(&self, name: &str) -> bool {
        match (&self.runtime_name, &self.runtime_id) {
            (Some(n), _) => n == name,
            (None, Some(id)) => id.strip_prefix(name).is_some_and(|r| r.starts_with('-')),
            (None, None) => false,
        }
    }
}

/// A final record's deployment as an entry: only once a version existed (a deploy refused
/// before it touched a runtime has no version to go back to).
pub fn deploy_entry(record: &BuildRecord) -> Option<Entry> {
    let d: &Deployment = record.deployment.as_ref()?;
    d.version.as_ref()?;
    Some(Entry {
        kind: EntryKind::Deploy,
        at: d.finished_at.unwrap_or(d.started_at),
        build_id: record.build_id.clone(),
        trigger: record.trigger,
        endpoint: d.endpoint.clone().unwrap_or_default(),
        runtime_name: Some(d.runtime_name.clone()),
        runtime_id: d.runtime_id.clone(),
        version: d.version.clone(),
        previous_version: d.previous_version.clone(),
        status: d.status,
        smoke: d.smoke.clone(),
        reason: d
            .failure_reason
            .clone()
            .or_else(|| d.superseded.as_ref().map(|s| s.reason.clone())),
        by: None,
    })
}

/// What `--to` names: a runtime version (digits) or a build id.
pub fn matches(entry: &Entry, to: &str) -> bool {
    if to.bytes().all(|c| c.is_ascii_digit()) {
        entry.version.as_deref() == Some(to)
    } else {
        entry.build_id == to
    }
}

/// Where a rollback moves: endpoint `endpoint` of runtime `runtime_id` (versions are numbered
/// per runtime, so the pair is the key).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub runtime_id: &'a str,
    pub endpoint: &'a str,
}

/// Why a rollback does not happen; `field` names the part of the request at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: Option<&'static str>,
    pub message: String,
}

impl Refusal {
    fn new(field: Option<&'static str>, message: String) -> Self {
        Refusal { field, message }
    }
}

/// The deploy a rollback of `target` goes to: the one `to` names, else the newest good one
/// before the version the endpoint serves now. Only versions agentbuild deployed to that very
/// endpoint of that very runtime and whose smoke test passed (or was skipped) qualify; a `to`
/// that names another runtime's version or build is refused naming `to`. `entries` oldest
/// first.
pub fn rollback_target<'a>(
    entries: &'a [Entry],
    target: Target<'_>,
    serving: Option<&str>,
    to: Option<&str>,
) -> Result<&'a Entry, Refusal> {
    let Target {
        runtime_id,
        endpoint,
    } = target;
    let here = |e: &&Entry| e.endpoint == endpoint && e.of_runtime(runtime_id);
    let good = |e: &&Entry| {
        e.kind == EntryKind::Deploy
            && here(e)
            && e.status == DeploymentStatus::Ready
            && e.smoke
                .as_ref()
                .is_none_or(|s| s.status != SmokeStatus::Failed)
    };
    let Some(to) = to else {
        return entries
            .iter()
            .rev()
            .filter(good)
            .find(|e| e.version.as_deref() != serving)
            .ok_or_else(|| {
                let why = format!(
                    "no earlier good version was deployed to {endpoint} of runtime {runtime_id}"
                );
                Refusal::new(None, why)
            });
    };
    if let Some(elsewhere) = entries
        .iter()
        .rev()
        .find(|e| e.kind == EntryKind::Deploy && matches(e, to) && !here(e))
        .filter(|_| !entries.iter().any(|e| matches(e, to) && good(&e)))
    {
        let why = format!(
            "{to} was deployed to {} of runtime {}, not to {endpoint} of runtime {runtime_id}: \
             a rollback moves an endpoint only to a version of its own runtime",
            elsewhere.endpoint,
            elsewhere.runtime_id.as_deref().unwrap_or("-")
        );
        return Err(Refusal::new(Some("to"), why));
    }
    entries
        .iter()
        .rev()
        .filter(good)
        .find(|e| matches(e, to))
        .ok_or_else(|| {
            let why = format!("{to} is no version or build agentbuild deployed to {endpoint} of runtime {runtime_id} that passed its smoke test");
            Refusal::new(Some("to"), why)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(build: &str, version: &str, status: DeploymentStatus, smoke: SmokeStatus) -> Entry {
        Entry {
            kind: EntryKind::Deploy,
            at: "2026-11-28T10:00:00Z".parse().unwrap(),
            build_id: build.into(),
            trigger: Trigger::Api,
            endpoint: "live".into(),
            runtime_name: None,
            runtime_id: Some("rt-1".into()),
            version: Some(version.into()),
            previous_version: None,
            status,
            smoke: Some(Smoke {
                status: smoke,
                reason: None,
            }),
            reason: None,
            by: None,
        }
    }

    const LIVE: Target = Target {
        runtime_id: "rt-1",
        endpoint: "live",
    };

    #[test]
    fn a_rollback_never_takes_a_version_of_another_runtime() {
        use DeploymentStatus::*;
        let mut other = entry("b-9", "1", Ready, SmokeStatus::Passed);
        other.runtime_id = Some("rt-2".into());
        let all = vec![
            entry("b-1", "1", Ready, SmokeStatus::Passed),
            entry("b-3", "3", Ready, SmokeStatus::Passed),
            other,
        ];
        // Version 1 of rt-2 is newer in the history; live of rt-1 goes to its own version 1.
        let back = rollback_target(&all, LIVE, Some("3"), None).unwrap();
        assert_eq!(
            (back.build_id.as_str(), back.runtime_id.as_deref()),
            ("b-1", Some("rt-1"))
        );
        assert_eq!(
            rollback_target(&all, LIVE, Some("3"), Some("1"))
                .unwrap()
                .build_id,
            "b-1"
        );
        let refused = rollback_target(&all, LIVE, Some("3"), Some("b-9")).unwrap_err();
        assert_eq!(refused.field, Some("to"));
        assert!(
            refused.message.contains("of runtime rt-2"),
            "{}",
            refused.message
        );
        let rt2 = Target {
            runtime_id: "rt-2",
            endpoint: "live",
        };
        assert!(rollback_target(&all, rt2, Some("1"), Some("b-1")).is_err());
        let mut legacy = entry("b-1", "1", Ready, SmokeStatus::Passed);
        legacy.runtime_id = Some("ab_bot_0123abcd-Xk2m9Qp4Rt".into());
        assert!(legacy.named("ab_bot_0123abcd") && !legacy.named("ab_bot"));
    }

    #[test]
    fn a_rollback_goes_only_to_a_good_version_deployed_to_that_endpoint() {
        use DeploymentStatus::*;
        let all = vec![
            entry("b-1", "1", Ready, SmokeStatus::Passed),
            entry("b-2", "2", Failed, SmokeStatus::Failed),
            entry("b-3", "3", Ready, SmokeStatus::Passed),
        ];
        assert_eq!(
            rollback_target(&all, LIVE, Some("3"), None)
                .unwrap()
                .build_id,
            "b-1"
        );
        assert_eq!(
            rollback_target(&all, LIVE, Some("3"), Some("b-1"))
                .unwrap()
                .version
                .as_deref(),
            Some("1")
        );
        assert_eq!(
            rollback_target(&all, LIVE, Some("3"), Some("1"))
                .unwrap()
                .build_id,
            "b-1"
        );
        assert!(rollback_target(&all, LIVE, Some("3"), Some("2")).is_err());
        assert!(rollback_target(
            &all,
            Target {
                runtime_id: "rt-1",
                endpoint: "staging"
            },
            Some("3"),
            None
        )
        .is_err());
        assert_eq!(
            rollback_key("p", "a", "2026-11-28T10:00:00Z".parse().unwrap()),
            "agents/p/a/deployments/rollback-20261128T100000.000Z.json"
        );
    }
}
