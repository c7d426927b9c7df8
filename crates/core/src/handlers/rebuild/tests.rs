//! The fleet-rebuild helper's steps against in-memory ports.

use super::*;
use crate::domain::ending::ExecutionStatus;
use crate::domain::execution::schedule_execution_name;
use crate::domain::fleet::{item_name, Cancelled, RUN_TIMEOUT_SECONDS};
use crate::domain::plan::Trigger;
use crate::domain::record::tests::{plan as build_plan, running, t};
use crate::domain::record::{build_key, latest_key, BuildRecord, ErrorInfo};
use crate::domain::status::BuildStatus;
use crate::testing::fakes::{FakeExecutions, FakeStore, OWN};
use serde_json::json;

const RUN: &str = "20261129T0300";

fn now() -> chrono::DateTime<chrono::Utc> {
    t("2026-11-29T03:00:10Z")
}

fn deps(store: FakeStore) -> Deps<FakeStore, FakeExecutions> {
    Deps {
        store,
        executions: FakeExecutions::default(),
        config: RebuildConfig {
            bucket: OWN.into(),
            state_machine_arn: "arn:aws:states:us-east-1:1:stateMachine:agentbuild".into(),
            max_concurrency: 4,
            tolerated_failure_percentage: 10.0,
        },
        clock: now,
    }
}

fn source_key(project: &str, agent: &str) -> String {
    format!("sources/{project}/{agent}/abc.zip")
}

fn record(project: &str, agent: &str, status: BuildStatus) -> BuildRecord {
    let mut p = build_plan();
    p.project = project.into();
    p.agent = agent.into();
    p.build_id = format!("old-{agent}");
    p.source.bucket = OWN.into();
    p.source.key = source_key(project, agent);
    p.source.uri = format!("s3://{OWN}/{}", source_key(project, agent));
    let mut b = running();
    b.status = status;
    BuildRecord::new(&p, Some(&b), None, t("2026-11-20T00:00:00Z"))
}

/// The record of run RUN's rebuild of `p/agent` (trigger schedule, forced, at its name).
fn rebuilt(agent: &str, status: BuildStatus) -> BuildRecord {
    let mut r = record("p", agent, status);
    r.build_id = item_name(RUN, "p", agent).unwrap();
    r.trigger = Trigger::Schedule;
    r.force = true;
    r
}

/// Agents (project, agent, status) with their sources.
fn store(agents: &[(&str, &str, BuildStatus)]) -> FakeStore {
    let mut s = FakeStore::default();
    for (p, a, status) in agents {
        s = s
            .with_object(OWN, &latest_key(p, a), &record(p, a, *status).to_json())
            .with_object(OWN, &source_key(p, a), b"zip");
    }
    s
}

fn lock_step(execution: &str, input: Value) -> RebuildStep {
    RebuildStep::Lock {
        input,
        execution: execution.into(),
        started_at: now(),
    }
}

fn sched() -> Value {
    json!({"scheduledTime": "2026-11-29T03:00:00Z"})
}

async fn run_step(d: &Deps<FakeStore, FakeExecutions>, step: RebuildStep) -> Value {
    handle(d, step).await.unwrap()
}

#[tokio::test]
async fn one_run_takes_the_lock_and_a_second_one_is_skipped_until_it_is_released() {
    let d = Deps {
        executions: FakeExecutions::default().with_arn("arn:first", ExecutionStatus::Running),
        ..deps(FakeStore::default())
    };
    let first = run_step(&d, lock_step("arn:first", sched())).await;
    assert_eq!(first["taken"], true);
    assert_eq!(first["run"], RUN);
    // A retried TakeLock of the same execution: still ours.
    assert_eq!(
        run_step(&d, lock_step("arn:first", sched())).await["taken"],
        true
    );

    let second = run_step(&d, lock_step("arn:second", json!({}))).await;
    assert_eq!(second["taken"], false);
    assert_eq!(second["summary"]["status"], "SKIPPED");
    assert!(second["summary"]["reason"].as_str().unwrap().contains(RUN));
    let stored: Summary = d.store.own_json(&summary_key("20261129T0300")).unwrap();
    assert_eq!(
        stored.status,
        RunStatus::Skipped,
        "written where no summary was"
    );

    // A retry of the same scheduled run while it runs: skipped, and the summary key of the run
    // (already written above) is not touched.
    let puts = d.store.puts.borrow().len();
    assert_eq!(
        run_step(&d, lock_step("arn:retry", sched())).await["taken"],
        false
    );
    assert_eq!(d.store.puts.borrow().len(), puts);

    assert_eq!(
        run_step(
            &d,
            RebuildStep::Unlock {
                execution: "arn:second".into()
            }
        )
        .await["released"],
        false
    );
    assert_eq!(
        run_step(
            &d,
            RebuildStep::Unlock {
                execution: "arn:first".into()
            }
        )
        .await["released"],
        true
    );
    assert_eq!(
        run_step(
            &d,
            RebuildStep::Unlock {
                execution: "arn:first".into()
            }
        )
        .await["released"],
        false
    );
    assert_eq!(
        run_step(&d, lock_step("arn:third", json!({}))).await["taken"],
        true
    );
}

#[tokio::test]
async fn a_lock_whose_holder_has_ended_without_releasing_it_is_taken_over() {
    for ended in [
        ExecutionStatus::Aborted,
        ExecutionStatus::TimedOut,
        ExecutionStatus::Failed,
    ] {
        let d = Deps {
            executions: FakeExecutions::default().with_arn("arn:stopped", ended),
            ..deps(FakeStore::default())
        };
        d.store.seed(
            LOCK_KEY,
            Lock::new("20261129T0300", "arn:stopped", now()).to_json(),
        );
        assert_eq!(
            run_step(&d, lock_step("arn:next", json!({}))).await["taken"],
            true
        );
        let lock: Lock = d.store.own_json(LOCK_KEY).unwrap();
        assert_eq!(lock.execution, "arn:next");
    }
}

#[tokio::test]
async fn an_expired_lock_is_taken_over() {
    let d = deps(FakeStore::default());
    let old = Lock::new(
        "20261101T0300",
        "arn:crashed",
        now() - chrono::Duration::seconds(RUN_TIMEOUT_SECONDS + 3600),
    );
    d.store.seed(LOCK_KEY, old.to_json());
    assert_eq!(
        run_step(&d, lock_step("arn:new", sched())).await["taken"],
        true
    );
    let lock: Lock = d.store.own_json(LOCK_KEY).unwrap();
    assert_eq!(lock.execution, "arn:new");
}

#[tokio::test]
async fn bad_run_input_fails_naming_the_field_and_takes_nothing() {
    let d = deps(FakeStore::default());
    let e = handle(&d, lock_step("arn:x", json!({"projects": ["Bad"]})))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "InvalidRequest");
    assert!(e.to_string().contains("projects[0]"), "{e}");
    assert!(d.store.own(LOCK_KEY).is_none());
}

#[tokio::test]
async fn a_run_claiming_a_future_scheduled_time_is_refused_and_takes_nothing() {
    let d = deps(FakeStore::default());
    let later = (now() + chrono::Duration::days(7)).to_rfc3339();
    let e = handle(&d, lock_step("arn:x", json!({ "scheduledTime": later })))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "InvalidRequest");
    assert!(e.to_string().contains("scheduledTime"), "{e}");
    assert!(d.store.own(LOCK_KEY).is_none());
}

#[tokio::test]
async fn the_plan_lists_every_successful_agent_and_says_why_others_are_skipped() {
    let s = store(&[
        ("nexus-ai", "alpha", BuildStatus::Succeeded),
        ("nexus-ai", "beta", BuildStatus::Reused),
        ("nexus-ai", "broken", BuildStatus::Failed),
        ("other", "gamma", BuildStatus::Succeeded),
    ])
    .with_object(OWN, &latest_key("nexus-ai", "junk"), b"not json")
    .with_object(OWN, "agents/nexus-ai/alpha/history.json", b"{}")
    .with_object(
        OWN,
        &latest_key("nexus-ai", "gone"),
        &record("nexus-ai", "gone", BuildStatus::Succeeded).to_json(),
    );
    let d = deps(s);
    let out = run_step(
        &d,
        RebuildStep::Plan {
            run: RUN.into(),
            selection: Selection::default(),
        },
    )
    .await;
    assert_eq!(out["count"], 3);
    assert_eq!(out["maxConcurrency"], 4);
    assert_eq!(out["toleratedFailurePercentage"], 10.0);
    assert_eq!(
        out["manifest"],
        json!({"bucket": OWN, "key": manifest_key(RUN)})
    );
    let items: Vec<ManifestItem> = d.store.own_json(&manifest_key(RUN)).unwrap();
    let agents: Vec<&str> = items.iter().map(|i| i.agent.as_str()).collect();
    assert_eq!(agents.len(), 3);
    for i in &items {
        let (p, a) = i.agent.split_once('/').unwrap();
        assert_eq!(
            i.name,
            schedule_execution_name(t("2026-11-29T03:00:00Z"), p, a)
        );
        // What the fleet sends is a rebuild of the agent's latest build, for this run: the
        // rest comes from that build's record, in ValidateRequest.
        let opened = crate::domain::execution::open_input(&i.input).unwrap();
        let crate::domain::execution::ExecutionInput::Rebuild(of) = opened else {
            panic!("not a rebuild: {}", i.input)
        };
        assert_eq!(of.run, RUN);
    }
    let skipped: Vec<Skipped> = d.store.own_json(&skipped_key(RUN)).unwrap();
    let mut why: Vec<(String, bool)> = skipped
        .iter()
        .map(|s| {
            (
                s.agent.clone(),
                s.reason.contains("FAILED")
                    || s.reason.contains("no longer exists")
                    || !s.reason.is_empty(),
            )
        })
        .collect();
    why.sort();
    assert_eq!(
        why.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(),
        ["nexus-ai/broken", "nexus-ai/gone", "nexus-ai/junk"]
    );
    assert!(skipped
        .iter()
        .any(|s| s.agent == "nexus-ai/gone" && s.reason.contains("no longer exists")));
}

#[tokio::test]
async fn the_plan_skips_an_agent_whose_recorded_source_version_is_gone() {
    // The key still holds an object, but not the version the latest build built: a rebuild
    // must build that version or nothing.
    let d = deps(store(&[
        ("nexus-ai", "alpha", BuildStatus::Succeeded),
        ("nexus-ai", "beta", BuildStatus::Succeeded),
        ("nexus-ai", "gamma", BuildStatus::Succeeded),
    ]));
    let mut replaced = record("nexus-ai", "beta", BuildStatus::Succeeded);
    replaced.source.version_id = Some("v-deleted".into());
    d.store
        .seed(&latest_key("nexus-ai", "beta"), replaced.to_json());
    d.store
        .gone_versions
        .borrow_mut()
        .insert("v-deleted".into());
    // A record from before versionIds were recorded: the key's current object is checked.
    let mut unversioned = record("nexus-ai", "gamma", BuildStatus::Succeeded);
    unversioned.source.version_id = None;
    d.store
        .seed(&latest_key("nexus-ai", "gamma"), unversioned.to_json());
    let out = run_step(
        &d,
        RebuildStep::Plan {
            run: RUN.into(),
            selection: Selection::default(),
        },
    )
    .await;
    assert_eq!(out["count"], 2);
    assert_eq!(out["skipped"], 1);
    let items: Vec<ManifestItem> = d.store.own_json(&manifest_key(RUN)).unwrap();
    let mut agents: Vec<&str> = items.iter().map(|i| i.agent.as_str()).collect();
    agents.sort();
    assert_eq!(agents, ["nexus-ai/alpha", "nexus-ai/gamma"]);
    let skipped: Vec<Skipped> = d.store.own_json(&skipped_key(RUN)).unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].agent, "nexus-ai/beta");
    assert!(
        skipped[0].reason.contains("version v-deleted")
            && skipped[0].reason.contains("no longer exists"),
        "{}",
        skipped[0].reason
    );
}

#[tokio::test]
async fn a_selection_plans_only_what_it_names() {
    let d = deps(store(&[
        ("nexus-ai", "alpha", BuildStatus::Succeeded),
        ("nexus-ai", "beta", BuildStatus::Succeeded),
        ("other", "gamma", BuildStatus::Succeeded),
        ("third", "delta", BuildStatus::Succeeded),
    ]));
    let selection: Selection = serde_json::from_value(json!({
        "projects": ["other"], "agents": ["nexus-ai/beta", "nexus-ai/nobody"]
    }))
    .unwrap();
    run_step(
        &d,
        RebuildStep::Plan {
            run: RUN.into(),
            selection,
        },
    )
    .await;
    let items: Vec<ManifestItem> = d.store.own_json(&manifest_key(RUN)).unwrap();
    let mut agents: Vec<&str> = items.iter().map(|i| i.agent.as_str()).collect();
    agents.sort();
    assert_eq!(agents, ["nexus-ai/beta", "other/gamma"]);
    let skipped: Vec<Skipped> = d.store.own_json(&skipped_key(RUN)).unwrap();
    assert_eq!(skipped[0].agent, "nexus-ai/nobody");
}

#[tokio::test]
async fn a_transient_failure_fails_the_plan_so_that_it_is_retried() {
    let d = deps(store(&[("nexus-ai", "alpha", BuildStatus::Succeeded)]));
    d.store
        .fail_next
        .borrow_mut()
        .push_back(Error::TransientAws("S3: slow down".into()));
    let e = handle(
        &d,
        RebuildStep::Plan {
            run: RUN.into(),
            selection: Selection::default(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.name(), "TransientAwsError");
}

#[tokio::test]
async fn an_existing_execution_counts_as_started_and_is_waited_for_while_it_runs() {
    let store = FakeStore::default();
    let (b, foreign) = (
        item_name(RUN, "p", "b").unwrap(),
        item_name(RUN, "p", "f").unwrap(),
    );
    store.seed(
        &build_key(&b),
        rebuilt("b", BuildStatus::Succeeded).to_json(),
    );
    // A console build that took a rebuild's predictable name: SUCCEEDED, but nothing rebuilt.
    let mut console = record("p", "f", BuildStatus::Succeeded);
    console.build_id = foreign.clone();
    store.seed(&build_key(&foreign), console.to_json());
    let d = Deps {
        executions: FakeExecutions::default()
            .with("sched-a", ExecutionStatus::Running, "{}")
            .with(&b, ExecutionStatus::Succeeded, "{}")
            .with(&foreign, ExecutionStatus::Succeeded, "{}"),
        ..deps(store)
    };
    let existing = |name: &str| RebuildStep::Existing { name: name.into() };
    assert_eq!(
        run_step(&d, existing("sched-a")).await,
        json!({"status": "RUNNING", "waitSeconds": 10})
    );
    assert_eq!(
        run_step(&d, existing(&b)).await,
        json!({"status": "SUCCEEDED", "waitSeconds": 0})
    );
    assert_eq!(
        run_step(&d, existing(&foreign)).await,
        json!({"status": "NOT_REBUILT", "waitSeconds": 0})
    );
    let e = handle(&d, existing("sched-c")).await.unwrap_err();
    assert_eq!(e.name(), "InvalidState");
}

/// A run of three items: one succeeded (record), one failed (record), one rejected by
/// validation (no record; the execution says why).
fn summarized_store() -> (Deps<FakeStore, FakeExecutions>, Vec<ManifestItem>) {
    let items: Vec<ManifestItem> = ["ok", "bad", "rejected", "never", "stopped"]
        .iter()
        .map(|a| ManifestItem {
            name: item_name(RUN, "p", a).unwrap(),
            agent: format!("p/{a}"),
            input: json!({}),
        })
        .collect();
    let s = FakeStore::default();
    s.seed(&manifest_key(RUN), serde_json::to_vec(&items).unwrap());
    s.seed(
        &skipped_key(RUN),
        serde_json::to_vec(&[Skipped {
            agent: "p/old".into(),
            reason: "latest build x is FAILED".into(),
        }])
        .unwrap(),
    );
    s.seed(
        &build_key(&items[0].name),
        rebuilt("ok", BuildStatus::Succeeded).to_json(),
    );
    let mut bad = rebuilt("bad", BuildStatus::Failed);
    bad.error = Some(ErrorInfo::new("FAILED", "the Dockerfile's RUN step failed"));
    s.seed(&build_key(&items[1].name), bad.to_json());
    // Cancelled by a caller (DELETE /projects/{p}/builds/<its name>): STOPPED, not a failure.
    let mut stopped = rebuilt("stopped", BuildStatus::Stopped);
    stopped.error = Some(ErrorInfo::new("Cancelled", "cancelled by the API"));
    s.seed(&build_key(&items[4].name), stopped.to_json());
    let x = FakeExecutions::default().with(&items[2].name, ExecutionStatus::Running, "{}");
    x.end(
        &items[2].name,
        ExecutionStatus::Failed,
        Some(("InvalidRequest", "source: no such object")),
    );
    (
        Deps {
            executions: x,
            ..deps(s)
        },
        items,
    )
}

#[tokio::test]
async fn the_summary_counts_each_item_by_its_record_or_its_execution() {
    let (d, _) = summarized_store();
    let out = run_step(
        &d,
        RebuildStep::Summarize {
            run: RUN.into(),
            error: None,
        },
    )
    .await;
    let stored: Summary = d.store.own_json(&summary_key(RUN)).unwrap();
    assert_eq!(
        serde_json::to_value(&stored).unwrap(),
        out,
        "returned = stored"
    );
    assert_eq!(stored.status, RunStatus::Completed);
    assert_eq!((stored.started, stored.succeeded), (4, 1));
    assert_eq!(
        stored.cancelled,
        [Cancelled {
            agent: "p/stopped".into(),
            reason: "Cancelled: cancelled by the API".into(),
            build_id: item_name(RUN, "p", "stopped").unwrap(),
        }]
    );
    let failed: Vec<(&str, &str)> = stored
        .failed
        .iter()
        .map(|f| (f.agent.as_str(), f.status.as_str()))
        .collect();
    assert_eq!(
        failed,
        [
            ("p/bad", "FAILED"),
            ("p/rejected", "REJECTED"),
            ("p/never", "NOT_STARTED")
        ]
    );
    assert!(stored.failed[0].reason.contains("RUN step failed"));
    assert!(stored.failed[1].reason.contains("no such object"));
    assert_eq!(stored.skipped[0].agent, "p/old");
}

#[tokio::test]
async fn an_aborted_map_is_summarized_with_its_error_and_the_items_it_never_started() {
    let (d, _) = summarized_store();
    let error =
        json!({"Error": "States.ExceedToleratedFailureThreshold", "Cause": "too many failed"});
    run_step(
        &d,
        RebuildStep::Summarize {
            run: RUN.into(),
            error: Some(error),
        },
    )
    .await;
    let stored: Summary = d.store.own_json(&summary_key(RUN)).unwrap();
    assert_eq!(stored.status, RunStatus::Aborted);
    assert!(stored
        .reason
        .as_deref()
        .unwrap()
        .starts_with("States.ExceedToleratedFailureThreshold"));
    assert!(stored
        .skipped
        .iter()
        .any(|s| s.agent == "p/never" && s.reason.contains("not started")));
    assert_eq!(stored.failed.len(), 2);
}

/// Every scenario above, against one recorder of the SDK operations the fakes stand for.
#[test]
fn calls_exactly_the_sdk_operations_the_catalog_lists() {
    let called = crate::testing::fakes::operations_of(
        include_str!("tests.rs"),
        crate::testing::fakes::scenarios![
            one_run_takes_the_lock_and_a_second_one_is_skipped_until_it_is_released,
            a_lock_whose_holder_has_ended_without_releasing_it_is_taken_over,
            an_expired_lock_is_taken_over,
            bad_run_input_fails_naming_the_field_and_takes_nothing,
            a_run_claiming_a_future_scheduled_time_is_refused_and_takes_nothing,
            the_plan_lists_every_successful_agent_and_says_why_others_are_skipped,
            a_selection_plans_only_what_it_names,
            the_plan_skips_an_agent_whose_recorded_source_version_is_gone,
            a_transient_failure_fails_the_plan_so_that_it_is_retried,
            an_existing_execution_counts_as_started_and_is_waited_for_while_it_runs,
            the_summary_counts_each_item_by_its_record_or_its_execution,
            an_aborted_map_is_summarized_with_its_error_and_the_items_it_never_started,
        ],
    );
    crate::testing::fakes::assert_operations_are_listed("rebuild", &called);
}
