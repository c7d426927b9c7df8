//! Project scoping: a build of another project answers exactly what an unknown id answers, on
//! every build route; the body's project must be the path's; the logs route.

use super::*;
use crate::domain::record::LogLocation;
use crate::ports::Executions;

/// Build `b-1` of nexus-ai, RUNNING, with its log stream.
fn nexus_build() -> TestDeps {
    let d = with_source();
    let mut b = running();
    b.logs = Some(LogLocation {
        group: "/aws/codebuild/agentbuild".into(),
        stream: "s-1".into(),
    });
    let rec = BuildRecord::new(&plan(), Some(&b), None, t("2026-11-28T10:05:00Z"));
    d.store.seed(&build_key("b-1"), rec.to_json());
    Deps {
        executions: FakeExecutions::default().with("b-1", ExecutionStatus::Running, &input()),
        logs: FakeLogs::default().with(
            "/aws/codebuild/agentbuild",
            "s-1",
            &["one", "two", "three"],
        ),
        ..d
    }
}

#[tokio::test]
async fn another_projects_build_answers_as_an_unknown_id_on_every_route() {
    let d = nexus_build();
    for (method, suffix) in [("GET", ""), ("GET", "/logs"), ("DELETE", "")] {
        let other = call(
            &d,
            http(
                method,
                &format!("/projects/other/builds/b-1{suffix}"),
                None,
                None,
            ),
        )
        .await;
        let unknown = call(
            &d,
            http(
                method,
                &format!("/projects/other/builds/b-9{suffix}"),
                None,
                None,
            ),
        )
        .await;
        assert_eq!(other.0, 404, "{method} {suffix}");
        assert_eq!(
            other.1["error"]["message"]
                .as_str()
                .unwrap()
                .replace("b-1", "b-9"),
            unknown.1["error"]["message"].as_str().unwrap(),
            "{method} {suffix}: the same words"
        );
        assert_eq!(other.1["error"]["code"], unknown.1["error"]["code"]);
    }
    let execution = d.executions.describe("b-1").await.unwrap().unwrap();
    assert_eq!(
        execution.status,
        ExecutionStatus::Running,
        "nothing was cancelled"
    );
    assert!(d.builds.stopped.borrow().is_empty());
    // The owner's routes work.
    assert_eq!(call(&d, get("/projects/nexus-ai/builds/b-1")).await.0, 200);
}

#[tokio::test]
async fn a_body_whose_project_is_not_the_paths_is_400_naming_project() {
    let d = with_source();
    let body = build_request().to_string();
    let (status, b) = call(
        &d,
        http(
            "POST",
            "/projects/other/builds",
            Some("application/json"),
            Some(&body),
        ),
    )
    .await;
    assert_eq!(
        (status, error_of(&b)),
        (400, ("InvalidRequest", Some("project")))
    );
    assert!(d.executions.names().is_empty(), "nothing started");
    let (status, b) = call(&d, http("POST", "/projects/Bad_P/builds", None, None)).await;
    assert_eq!(
        (status, error_of(&b)),
        (400, ("InvalidRequest", Some("project")))
    );
}

#[tokio::test]
async fn logs_come_in_bounded_pages_with_a_token() {
    let d = nexus_build();
    let (status, body) = call(&d, get("/projects/nexus-ai/builds/b-1/logs")).await;
    assert_eq!(status, 200, "{body}");
    let lines: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["one", "two", "three"]);
    assert_eq!(body["logs"]["stream"], "s-1");
    let token = body["nextToken"].as_str().unwrap();
    let mut e = event("GET", "/projects/nexus-ai/builds/b-1/logs", None, None);
    e["rawQueryString"] = json!(format!("nextToken={token}"));
    e["queryStringParameters"] = json!({"nextToken": token});
    let (status, body) = call(&d, request(e)).await;
    assert_eq!((status, body["events"].as_array().unwrap().len()), (200, 0));
    let mut e = event("GET", "/projects/nexus-ai/builds/b-1/logs", None, None);
    e["rawQueryString"] = json!("nextToken=forged");
    e["queryStringParameters"] = json!({"nextToken": "forged"});
    let (status, b) = call(&d, request(e)).await;
    assert_eq!(
        (status, error_of(&b)),
        (400, ("InvalidRequest", Some("nextToken")))
    );
}

#[tokio::test]
async fn a_build_without_a_stream_has_no_lines_yet() {
    let d = with_source();
    let rec = BuildRecord::new(&plan(), Some(&running()), None, t("2026-11-28T10:05:00Z"));
    d.store.seed(&build_key("b-1"), rec.to_json());
    let (status, body) = call(&d, get("/projects/nexus-ai/builds/b-1/logs")).await;
    assert_eq!((status, &body["events"]), (200, &json!([])));
    assert!(body.get("nextToken").is_none());
}

/// This file's scenarios, for the operations test in `mod.rs`.
pub(super) const SCENARIOS: &[(&str, fn())] = crate::testing::fakes::scenarios![
    another_projects_build_answers_as_an_unknown_id_on_every_route,
    a_body_whose_project_is_not_the_paths_is_400_naming_project,
    logs_come_in_bounded_pages_with_a_token,
    a_build_without_a_stream_has_no_lines_yet,
];
