//! `DELETE /projects/{project}/builds/{buildId}`: cancel.

use super::*;
use crate::services::cancel::CANCELLED;

fn record(status: BuildStatus) -> BuildRecord {
    let mut b = running();
    b.status = status;
    b.current_phase = Some("BUILD".into());
    if status.is_final() {
        b.finished_at = Some(t("2026-11-28T10:05:00Z"));
    }
    BuildRecord::new(&plan(), Some(&b), None, t("2026-11-28T10:05:00Z"))
}

fn delete(path: &str) -> Request {
    http("DELETE", path, None, None)
}

/// A build RUNNING in CodeBuild (`agentbuild:1`), its execution open.
fn running_build() -> TestDeps {
    let d = with_source();
    d.store
        .seed(&build_key("b-1"), record(BuildStatus::Running).to_json());
    Deps {
        executions: FakeExecutions::default().with("b-1", ExecutionStatus::Running, &input()),
        ..d
    }
}

#[tokio::test]
async fn cancel_stops_the_execution_and_the_build_and_answers_the_stopped_record() {
    let d = running_build();
    let (status, body) = call(&d, delete("/projects/nexus-ai/builds/b-1")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "STOPPED");
    assert_eq!(body["error"]["type"], CANCELLED);
    assert!(body["error"]["message"].as_str().unwrap().contains("API"));
    assert_eq!(body["codebuild"]["stopped"], true);
    assert_eq!(body["timestamps"]["finishedAt"], "2026-11-28T10:02:00Z");
    assert_eq!(*d.builds.stopped.borrow(), ["agentbuild:1"]);
    let e = d.executions.executions.borrow()["b-1"].clone();
    assert_eq!(e.status, ExecutionStatus::Aborted);
    assert_eq!(e.error.as_deref(), Some(CANCELLED));
    // What GET answers now is what DELETE answered.
    let stored: Value = serde_json::from_slice(&d.store.own("builds/b-1.json").unwrap()).unwrap();
    assert_eq!(stored, body);
    assert_eq!(
        call(&d, get("/projects/nexus-ai/builds/b-1")).await,
        (200, body)
    );
}

#[tokio::test]
async fn cancel_again_answers_202_with_the_same_body_and_stops_nothing_more() {
    let d = running_build();
    let first = call(&d, delete("/projects/nexus-ai/builds/b-1")).await;
    let second = call(&d, delete("/projects/nexus-ai/builds/b-1")).await;
    assert_eq!(first, second);
    assert_eq!(second.0, 202);
    assert_eq!(d.builds.stopped.borrow().len(), 1);
}

#[tokio::test]
async fn cancel_of_a_build_that_finished_on_its_own_is_409_with_its_status() {
    for s in [
        BuildStatus::Succeeded,
        BuildStatus::Reused,
        BuildStatus::Failed,
        BuildStatus::TimedOut,
    ] {
        let d = with_source();
        let rec = record(s);
        d.store.seed(&build_key("b-1"), rec.to_json());
        let (status, body) = call(&d, delete("/projects/nexus-ai/builds/b-1")).await;
        assert_eq!(status, 409, "{s}");
        assert_eq!(body["error"]["code"], "AlreadyFinished");
        assert_eq!(body["error"]["status"], s.as_str());
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(s.as_str()));
        assert_eq!(d.store.own("builds/b-1.json"), Some(rec.to_json()));
        assert!(d.builds.stopped.borrow().is_empty());
    }
}

#[tokio::test]
async fn an_execution_that_ended_on_its_own_before_its_record_closed_is_409() {
    let d = running_build();
    d.executions.end("b-1", ExecutionStatus::Succeeded, None);
    let (status, body) = call(&d, delete("/projects/nexus-ai/builds/b-1")).await;
    assert_eq!(
        (status, &body["error"]["status"]),
        (409, &json!("SUCCEEDED"))
    );
    let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
    assert_eq!(
        rec.status,
        BuildStatus::Running,
        "RecordResult closes it, not cancel"
    );
    assert!(d.builds.stopped.borrow().is_empty());
}

#[tokio::test]
async fn cancel_before_any_record_stops_the_execution_and_answers_its_status() {
    let d = with_source();
    let d = Deps {
        executions: FakeExecutions::default().with("api-x", ExecutionStatus::Running, &input()),
        ..d
    };
    let (status, body) = call(&d, delete("/projects/nexus-ai/builds/api-x")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "STOPPED");
    assert_eq!(body["error"]["type"], CANCELLED);
    assert!(d.store.own("builds/api-x.json").is_none());
    assert!(d.builds.stopped.borrow().is_empty());
}

#[tokio::test]
async fn a_half_done_cancel_is_finished_by_the_next() {
    let d = running_build();
    d.executions.end(
        "b-1",
        ExecutionStatus::Aborted,
        Some((CANCELLED, "cancelled")),
    );
    let (status, body) = call(&d, delete("/projects/nexus-ai/builds/b-1")).await;
    assert_eq!((status, &body["status"]), (202, &json!("STOPPED")));
    assert_eq!(*d.builds.stopped.borrow(), ["agentbuild:1"]);
}

#[tokio::test]
async fn cancel_of_an_unknown_build_is_404_and_of_a_malformed_id_400() {
    let d = with_source();
    let (status, body) = call(&d, delete("/projects/nexus-ai/builds/api-nope")).await;
    assert_eq!((status, error_of(&body)), (404, ("NotFound", None)));
    let (status, body) = call(&d, delete("/projects/nexus-ai/builds/..%2f")).await;
    assert_eq!(
        (status, error_of(&body)),
        (400, ("InvalidRequest", Some("buildId")))
    );
}

#[tokio::test]
async fn a_transient_failure_answers_503_and_leaves_the_record_open() {
    let d = running_build();
    d.executions
        .fail_next
        .borrow_mut()
        .extend([Error::TransientAws("throttled".into())]);
    let (status, body) = call(&d, delete("/projects/nexus-ai/builds/b-1")).await;
    assert_eq!((status, error_of(&body).0), (503, "ServiceUnavailable"));
    let rec: BuildRecord = d.store.own_json("builds/b-1.json").unwrap();
    assert_eq!(rec.status, BuildStatus::Running);
}

pub(super) const SCENARIOS: &[(&str, fn())] = crate::testing::fakes::scenarios![
    cancel_stops_the_execution_and_the_build_and_answers_the_stopped_record,
    cancel_again_answers_202_with_the_same_body_and_stops_nothing_more,
    cancel_of_a_build_that_finished_on_its_own_is_409_with_its_status,
    an_execution_that_ended_on_its_own_before_its_record_closed_is_409,
    cancel_before_any_record_stops_the_execution_and_answers_its_status,
    a_half_done_cancel_is_finished_by_the_next,
    cancel_of_an_unknown_build_is_404_and_of_a_malformed_id_400,
    a_transient_failure_answers_503_and_leaves_the_record_open,
];
