//! Rebuild: EventBridge's Scheduled Event -> one forced execution of the build state machine
//! per agent whose `latest.json` is a success, at most N running at once -> a summary
//! `{run, started, skipped, deferred}` (also logged).
//!
//! **At most N at a time.** This run counts the build machine's RUNNING executions (every
//! door's: the bound protects CodeBuild, whoever started the builds), starts at most
//! N − running, and reports the rest as deferred: the next scheduled run picks them up.
//! Considered and not chosen:
//! - waiting here for slots: builds take minutes, so this Lambda would sit idle against its
//!   15-minute ceiling and still could not drain a long list;
//! - a Map state with MaxConcurrency running each build `.sync`: finishes every list in one
//!   run, at the price of a second state machine (and its IAM) in the template.
//!
//! Nobody starves: agents go oldest latest build first, and a rebuilt agent's new latest.json
//! sends it to the back, so what was deferred leads the next run. An agent whose forced
//! rebuild keeps failing keeps its old latest.json and takes one slot every run. Size the
//! schedule so that period ≥ ⌈agents / N⌉ × build time, or run it more often: each run's
//! execution names carry its time, so runs never collide.
//!
//! **A retried trigger starts nothing twice**: execution names are
//! `sched-<schedule time>-<hash of project/agent>`; a name already running is skipped without
//! a call, and Step Functions refuses a name it has seen (ExecutionAlreadyExists: skipped).

use super::aws_config;
use super::s3_client;
use crate::adapters::s3::S3Store;
use crate::adapters::sfn::StepFunctions;
use crate::config::{ProcessEnv, RebuildConfig};
use crate::domain::execution::{canonical_json, schedule_execution_name};
use crate::domain::rebuild::{candidate, latest_pointer, order, rebuild_input};
use crate::model::{RebuildItem, RebuildSummary, ScheduledEvent};
use crate::ports::{Executions, ObjectStore, StartOutcome};
use crate::services::records;
use crate::Error;
use std::collections::BTreeSet;

pub struct Deps<S, X> {
    pub store: S,
    pub executions: X,
    pub config: RebuildConfig,
}

impl Deps<S3Store, StepFunctions> {
    pub async fn from_env() -> Result<Self, Error> {
        let config = RebuildConfig::load(&ProcessEnv)?;
        let sdk = aws_config().await;
        Ok(Self {
            store: S3Store::new(s3_client(&sdk), config.bucket.clone()),
            executions: StepFunctions::new(
                aws_sdk_sfn::Client::new(&sdk),
                config.state_machine_arn.clone(),
            ),
            config,
        })
    }
}

fn item(agent: &str, reason: impl Into<String>) -> RebuildItem {
    RebuildItem {
        agent: agent.to_string(),
        build_id: None,
        execution_arn: None,
        reason: Some(reason.into()),
    }
}

pub async fn handle<S: ObjectStore, X: Executions>(
    deps: &Deps<S, X>,
    event: ScheduledEvent,
) -> Result<RebuildSummary, Error> {
    let at = event.time.ok_or_else(|| {
        Error::InvalidState(
            "the scheduled event has no time (it names this run's executions)".into(),
        )
    })?;
    let mut summary = RebuildSummary {
        run: at.format("%Y%m%dT%H%M").to_string(),
        max_concurrency: deps.config.max_concurrency,
        ..RebuildSummary::default()
    };

    let mut candidates = Vec::new();
    for key in deps.store.list_keys("agents/").await? {
        let Some((project, agent)) = latest_pointer(&key) else {
            continue;
        };
        let outcome = match records::read(&deps.store, &key).await {
            Ok(None) => continue, // deleted since the listing
            Ok(Some(stored)) => candidate(project, agent, stored.record),
            // Not a record: skipped, named. Anything else (S3 failing) fails the run: retried.
            Err(Error::InvalidState(reason)) => Err(reason),
            Err(e) => return Err(e),
        };
        match outcome {
            Ok(c) => candidates.push(c),
            Err(reason) => summary
                .skipped
                .push(item(&format!("{project}/{agent}"), reason)),
        }
    }
    order(&mut candidates);

    let running: BTreeSet<String> = deps.executions.running().await?.into_iter().collect();
    summary.running_before = running.len();
    let mut free = deps.config.max_concurrency.saturating_sub(running.len());

    for c in candidates {
        let name = schedule_execution_name(at, &c.project, &c.agent);
        if running.contains(&name) {
            summary.skipped.push(item(&c.label, "already started"));
            continue;
        }
        if free == 0 {
            summary.deferred.push(item(&c.label, "concurrency limit"));
            continue;
        }
        // Uploaded sources expire: a build without its source would only fail (and alarm).
        let source = &c.record.source;
        match deps.store.head(&source.bucket, &source.key).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                let reason = format!("source {} no longer exists", source.uri);
                summary.skipped.push(item(&c.label, reason));
                continue;
            }
            Err(e @ Error::TransientAws(_)) => return Err(e),
            Err(e) => {
                let reason = format!("cannot check source {}: {e}", source.uri);
                summary.skipped.push(item(&c.label, reason));
                continue;
            }
        }
        let input = canonical_json(&rebuild_input(&c));
        match deps.executions.start(&name, &input).await? {
            StartOutcome::Running { arn } => {
                summary.started.push(RebuildItem {
                    agent: c.label,
                    build_id: Some(name),
                    execution_arn: Some(arn),
                    reason: None,
                });
                free -= 1;
            }
            StartOutcome::NameTaken => summary.skipped.push(item(&c.label, "already started")),
        }
    }

    tracing::info!(
        run = %summary.run,
        started = summary.started.len(),
        skipped = summary.skipped.len(),
        deferred = summary.deferred.len(),
        running_before = summary.running_before,
        summary = %serde_json::to_string(&summary).unwrap_or_default(),
        "rebuild run"
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::tests::{plan, running, t};
    use crate::domain::record::{latest_key, BuildRecord};
    use crate::domain::status::BuildStatus;
    use crate::handlers::fakes::{FakeExecutions, FakeStore, OWN};
    use crate::ports::ExecutionStatus;
    use serde_json::Value;

    fn deps(store: FakeStore, max: usize) -> Deps<FakeStore, FakeExecutions> {
        Deps {
            store,
            executions: FakeExecutions::default(),
            config: RebuildConfig {
                bucket: OWN.into(),
                state_machine_arn: "arn:aws:states:us-east-1:1:stateMachine:agentbuild".into(),
                max_concurrency: max,
            },
        }
    }

    fn event() -> ScheduledEvent {
        serde_json::from_str(include_str!("../../../../events/rebuild/scheduled.json")).unwrap()
    }

    fn source_key(agent: &str) -> String {
        format!("sources/nexus-ai/{agent}/abc.zip")
    }

    /// `latest.json` of `agent`, built at `requested` with `status`.
    fn latest(agent: &str, requested: &str, status: BuildStatus) -> Vec<u8> {
        let mut p = plan();
        p.agent = agent.into();
        p.build_id = format!("old-{agent}");
        p.source.bucket = OWN.into();
        p.source.key = source_key(agent);
        p.source.uri = format!("s3://{OWN}/{}", source_key(agent));
        p.platform = crate::domain::request::Platform::LinuxAmd64;
        p.build_args.insert("PYTHON_VERSION".into(), "3.12".into());
        p.requested_at = t(requested);
        let mut b = running();
        b.status = status;
        b.finished_at = Some(t(requested));
        BuildRecord::new(&p, Some(&b), None, t(requested)).to_json()
    }

    /// A store holding agents (name, requested_at, status), each with its source.
    fn store(agents: &[(&str, &str, BuildStatus)]) -> FakeStore {
        let mut s = FakeStore::default();
        for (agent, requested, status) in agents {
            s = s
                .with_object(
                    OWN,
                    &latest_key("nexus-ai", agent),
                    &latest(agent, requested, *status),
                )
                .with_object(OWN, &source_key(agent), b"zip");
        }
        s
    }

    fn agents(items: &[RebuildItem]) -> Vec<&str> {
        items.iter().map(|i| i.agent.as_str()).collect()
    }

    #[tokio::test]
    async fn starts_one_forced_build_per_successful_agent_with_its_recorded_request() {
        let d = deps(
            store(&[
                ("alpha", "2026-11-20T00:00:00Z", BuildStatus::Succeeded),
                ("beta", "2026-11-21T00:00:00Z", BuildStatus::Reused),
            ]),
            5,
        );
        let s = handle(&d, event()).await.unwrap();
        assert_eq!(agents(&s.started), ["nexus-ai/alpha", "nexus-ai/beta"]);
        assert!(s.skipped.is_empty() && s.deferred.is_empty());
        assert_eq!(s.run, "20261129T0300");
        let name = s.started[0].build_id.clone().unwrap();
        assert_eq!(
            name,
            schedule_execution_name(t("2026-11-29T03:00:00Z"), "nexus-ai", "alpha")
        );
        let input: Value = d.executions.input_of(&name);
        assert_eq!(input["trigger"], "schedule");
        let r = &input["request"];
        assert_eq!(r["force"], true);
        assert_eq!(r["platform"], "linux/amd64");
        assert_eq!(r["buildArgs"]["PYTHON_VERSION"], "3.12");
        assert_eq!(r["source"], format!("s3://{OWN}/{}", source_key("alpha")));
        // What the scheduler sends passes the same rules as any other door.
        let policy = crate::domain::request::SourcePolicy::own(OWN);
        crate::domain::request::validate(r, &policy).unwrap();
    }

    #[tokio::test]
    async fn skips_an_agent_whose_latest_build_failed() {
        let d = deps(
            store(&[
                ("alpha", "2026-11-20T00:00:00Z", BuildStatus::Succeeded),
                ("broken", "2026-11-20T00:00:00Z", BuildStatus::Failed),
            ]),
            5,
        );
        let s = handle(&d, event()).await.unwrap();
        assert_eq!(agents(&s.started), ["nexus-ai/alpha"]);
        assert_eq!(agents(&s.skipped), ["nexus-ai/broken"]);
        assert!(s.skipped[0].reason.as_deref().unwrap().contains("FAILED"));
    }

    #[tokio::test]
    async fn starts_no_more_than_the_limit_oldest_first() {
        let d = deps(
            store(&[
                ("newest", "2026-11-25T00:00:00Z", BuildStatus::Succeeded),
                ("oldest", "2026-11-01T00:00:00Z", BuildStatus::Succeeded),
                ("middle", "2026-11-10T00:00:00Z", BuildStatus::Succeeded),
                ("recent", "2026-11-20T00:00:00Z", BuildStatus::Succeeded),
            ]),
            3,
        );
        let d = Deps {
            executions: FakeExecutions::default().with("api-busy", ExecutionStatus::Running, "{}"),
            ..d
        };
        let s = handle(&d, event()).await.unwrap();
        assert_eq!(s.running_before, 1);
        assert_eq!(agents(&s.started), ["nexus-ai/oldest", "nexus-ai/middle"]);
        assert_eq!(agents(&s.deferred), ["nexus-ai/recent", "nexus-ai/newest"]);
        assert_eq!(s.deferred[0].reason.as_deref(), Some("concurrency limit"));
        assert_eq!(d.executions.running().await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_full_machine_starts_nothing() {
        let d = deps(
            store(&[("alpha", "2026-11-20T00:00:00Z", BuildStatus::Succeeded)]),
            1,
        );
        let d = Deps {
            executions: FakeExecutions::default().with("api-busy", ExecutionStatus::Running, "{}"),
            ..d
        };
        let s = handle(&d, event()).await.unwrap();
        assert!(s.started.is_empty());
        assert_eq!(agents(&s.deferred), ["nexus-ai/alpha"]);
        assert!(d.executions.start_calls.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_retried_trigger_starts_nothing_twice() {
        let d = deps(
            store(&[
                ("alpha", "2026-11-20T00:00:00Z", BuildStatus::Succeeded),
                ("beta", "2026-11-21T00:00:00Z", BuildStatus::Succeeded),
            ]),
            5,
        );
        let first = handle(&d, event()).await.unwrap();
        assert_eq!(first.started.len(), 2);
        // One of them has already finished by the time the retry comes.
        let done = first.started[0].build_id.clone().unwrap();
        d.executions.end(&done, ExecutionStatus::Succeeded, None);
        let again = handle(&d, event()).await.unwrap();
        assert!(again.started.is_empty(), "{again:?}");
        assert_eq!(agents(&again.skipped), ["nexus-ai/alpha", "nexus-ai/beta"]);
        assert!(again
            .skipped
            .iter()
            .all(|i| i.reason.as_deref() == Some("already started")));
        assert_eq!(d.executions.names().len(), 2);
    }

    #[tokio::test]
    async fn the_next_run_starts_new_executions() {
        let d = deps(
            store(&[("alpha", "2026-11-20T00:00:00Z", BuildStatus::Succeeded)]),
            5,
        );
        let first = handle(&d, event()).await.unwrap();
        d.executions.end(
            first.started[0].build_id.as_deref().unwrap(),
            ExecutionStatus::Succeeded,
            None,
        );
        let mut tomorrow = event();
        tomorrow.time = Some(t("2026-11-30T03:00:00Z"));
        let next = handle(&d, tomorrow).await.unwrap();
        assert_eq!(next.started.len(), 1);
        assert_ne!(next.started[0].build_id, first.started[0].build_id);
    }

    #[tokio::test]
    async fn skips_expired_sources_old_records_and_junk_without_spending_slots() {
        let s = store(&[
            ("alpha", "2026-11-01T00:00:00Z", BuildStatus::Succeeded),
            ("gone", "2026-11-01T00:00:00Z", BuildStatus::Succeeded),
        ]);
        // An expired source, a record from before records kept their request, and keys that
        // are not latest pointers.
        let mut gone: Value = serde_json::from_slice(&latest(
            "gone",
            "2026-10-01T00:00:00Z",
            BuildStatus::Succeeded,
        ))
        .unwrap();
        gone["source"]["key"] = Value::from("sources/nexus-ai/gone/expired.zip");
        gone["source"]["uri"] =
            Value::from(format!("s3://{OWN}/sources/nexus-ai/gone/expired.zip"));
        let mut old: Value = serde_json::from_slice(&latest(
            "old",
            "2026-10-01T00:00:00Z",
            BuildStatus::Succeeded,
        ))
        .unwrap();
        old.as_object_mut().unwrap().remove("request");
        let s = s
            .with_object(
                OWN,
                &latest_key("nexus-ai", "gone"),
                gone.to_string().as_bytes(),
            )
            .with_object(
                OWN,
                &latest_key("nexus-ai", "old"),
                old.to_string().as_bytes(),
            )
            .with_object(OWN, &latest_key("nexus-ai", "junk"), b"not json")
            .with_object(OWN, "agents/nexus-ai/alpha/history.json", b"{}")
            .with_object(OWN, "agents/Bad/x/latest.json", b"{}");
        let d = deps(s, 1);
        let summary = handle(&d, event()).await.unwrap();
        assert_eq!(agents(&summary.started), ["nexus-ai/alpha"]);
        let mut skipped = agents(&summary.skipped);
        skipped.sort();
        assert_eq!(skipped, ["nexus-ai/gone", "nexus-ai/junk", "nexus-ai/old"]);
        assert!(summary.deferred.is_empty());
    }

    #[tokio::test]
    async fn an_event_without_time_cannot_name_its_executions() {
        let d = deps(FakeStore::default(), 1);
        let mut e = event();
        e.time = None;
        assert_eq!(handle(&d, e).await.unwrap_err().name(), "InvalidState");
    }

    #[tokio::test]
    async fn a_transient_failure_fails_the_run_so_that_it_is_retried() {
        let d = deps(
            store(&[("alpha", "2026-11-20T00:00:00Z", BuildStatus::Succeeded)]),
            5,
        );
        d.executions
            .fail_next
            .borrow_mut()
            .push_back(Error::TransientAws("SFN.ListExecutions: throttled".into()));
        assert_eq!(
            handle(&d, event()).await.unwrap_err().name(),
            "TransientAwsError"
        );
        assert_eq!(handle(&d, event()).await.unwrap().started.len(), 1);
    }

    #[test]
    fn only_latest_pointers_are_agents() {
        assert_eq!(latest_pointer("agents/p/a/latest.json"), Some(("p", "a")));
        for other in [
            "agents/p/a/b/latest.json",
            "agents/p/latest.json",
            "agents/P/a/latest.json",
            "builds/x.json",
        ] {
            assert_eq!(latest_pointer(other), None, "{other}");
        }
    }

    /// Every scenario above, against one recorder of the SDK operations the fakes stand for.
    #[test]
    fn calls_exactly_the_sdk_operations_the_catalog_lists() {
        let called = crate::handlers::fakes::operations_of(
            include_str!("rebuild.rs"),
            crate::handlers::fakes::scenarios![
                starts_one_forced_build_per_successful_agent_with_its_recorded_request,
                skips_an_agent_whose_latest_build_failed,
                starts_no_more_than_the_limit_oldest_first,
                a_full_machine_starts_nothing,
                a_retried_trigger_starts_nothing_twice,
                the_next_run_starts_new_executions,
                skips_expired_sources_old_records_and_junk_without_spending_slots,
                an_event_without_time_cannot_name_its_executions,
                a_transient_failure_fails_the_run_so_that_it_is_retried,
            ],
        );
        crate::handlers::fakes::assert_operations_are_listed("rebuild", &called);
    }
}
