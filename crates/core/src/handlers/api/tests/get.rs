//! `GET /projects/{project}/builds/{buildId}`, `GET /projects/{project}/agents/{agent}`, routing, the samples.

use super::*;

fn record(status: BuildStatus) -> BuildRecord {
    let mut b = running();
    b.status = status;
    b.current_phase = Some("BUILD".into());
    if status.is_final() {
        b.finished_at = Some(t("2026-11-28T10:05:00Z"));
    }
    BuildRecord::new(&plan(), Some(&b), None, t("2026-11-28T10:05:00Z"))
}

async fn stored(d: &TestDeps, rec: &BuildRecord) {
    d.store.seed(&build_key(&rec.build_id), rec.to_json());
}

#[tokio::test]
async fn a_finished_build_answers_its_record() {
    let d = with_source();
    let rec = record(BuildStatus::Failed);
    stored(&d, &rec).await;
    let (status, body) = call(&d, get("/projects/nexus-ai/builds/b-1")).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_value::<BuildRecord>(body).unwrap(), rec);
}

#[tokio::test]
async fn a_running_build_answers_its_live_status() {
    let d = with_source();
    stored(&d, &record(BuildStatus::Running)).await;
    let d = Deps {
        executions: FakeExecutions::default().with("b-1", ExecutionStatus::Running, &input()),
        ..d
    };
    let (status, body) = call(&d, get("/projects/nexus-ai/builds/b-1")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "RUNNING");
    assert_eq!(body["state"], "Building");
    assert_eq!(body["phase"], "BUILD");
    assert_eq!(body["elapsedSeconds"], 120);
    assert_eq!(body["codebuild"]["buildId"], "agentbuild:1");
}

#[tokio::test]
async fn a_build_not_yet_started_answers_from_the_execution() {
    let d = with_source();
    let d = Deps {
        executions: FakeExecutions::default().with("api-x", ExecutionStatus::Running, &input()),
        ..d
    };
    let (status, body) = call(&d, get("/projects/nexus-ai/builds/api-x")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&body["status"], &body["state"], &body["elapsedSeconds"]),
        (&json!("RUNNING"), &json!("Starting"), &json!(120))
    );
}

#[tokio::test]
async fn a_rejected_execution_reports_the_rule_it_broke() {
    let d = with_source();
    let d = Deps {
        executions: FakeExecutions::default().with("api-x", ExecutionStatus::Running, &input()),
        ..d
    };
    d.executions.end(
        "api-x",
        ExecutionStatus::Failed,
        Some((
            "InvalidRequest",
            r#"{"errorType":"InvalidRequest","errorMessage":"source: s3://own/sources/a.zip does not exist"}"#,
        )),
    );
    let (status, body) = call(&d, get("/projects/nexus-ai/builds/api-x")).await;
    assert_eq!((status, &body["status"]), (200, &json!("REJECTED")));
    assert_eq!(body["error"]["type"], "InvalidRequest");
    assert_eq!(
        body["error"]["message"],
        "source: s3://own/sources/a.zip does not exist"
    );
    assert_eq!(body["error"]["field"], "source", "the field, typed");
}

#[tokio::test]
async fn a_timed_out_execution_is_reported_before_its_record_is_closed() {
    let d = with_source();
    stored(&d, &record(BuildStatus::Running)).await;
    let d = Deps {
        executions: FakeExecutions::default().with("b-1", ExecutionStatus::Running, &input()),
        ..d
    };
    d.executions.end("b-1", ExecutionStatus::TimedOut, None);
    let (_, body) = call(&d, get("/projects/nexus-ai/builds/b-1")).await;
    assert_eq!(
        (&body["status"], &body["state"], &body["phase"]),
        (&json!("TIMED_OUT"), &json!("Recording"), &json!("BUILD"))
    );
    assert_eq!(body["error"]["type"], "States.Timeout");
}

#[tokio::test]
async fn an_unknown_build_is_404_and_a_malformed_id_400() {
    let d = with_source();
    let (status, b) = call(&d, get("/projects/nexus-ai/builds/api-nothing")).await;
    assert_eq!((status, error_of(&b).0), (404, "NotFound"));
    for bad in [
        "/projects/nexus-ai/builds/a.b",
        "/projects/nexus-ai/builds/%2e%2e",
        &format!("/projects/nexus-ai/builds/{}", "a".repeat(81)),
    ] {
        let (status, b) = call(&d, get(bad)).await;
        assert_eq!(
            (status, error_of(&b)),
            (400, ("InvalidRequest", Some("buildId"))),
            "{bad}"
        );
    }
}

// ---- GET /projects/{project}/agents/{agent}

#[tokio::test]
async fn an_agent_answers_its_latest_success() {
    let d = with_source();
    let rec = record(BuildStatus::Succeeded);
    d.store
        .seed(&latest_key("nexus-ai", "sales"), rec.to_json());
    let (status, body) = call(&d, get("/projects/nexus-ai/agents/sales")).await;
    assert_eq!((status, &body["buildId"]), (200, &json!("b-1")));
    let (status, b) = call(&d, get("/projects/nexus-ai/agents/other")).await;
    assert_eq!((status, error_of(&b).0), (404, "NotFound"));
}

#[tokio::test]
async fn an_agent_with_a_bad_name_is_400() {
    let d = with_source();
    let (status, b) = call(&d, get("/projects/Nexus/agents/sales")).await;
    assert_eq!(
        (status, error_of(&b)),
        (400, ("InvalidRequest", Some("project")))
    );
    let (status, b) = call(&d, get("/projects/nexus/agents/sa_les")).await;
    assert_eq!(
        (status, error_of(&b)),
        (400, ("InvalidRequest", Some("agent")))
    );
}

// ---- routing

#[tokio::test]
async fn routes_by_route_key_behind_api_gateway_and_by_path_elsewhere() {
    let d = with_source();
    // API Gateway with a named stage: the raw path carries the stage, the route key not.
    let mut e = event("GET", "/prod/projects/nexus-ai/agents/sales", None, None);
    let key = "GET /projects/{project}/agents/{agent}";
    e["routeKey"] = json!(key);
    e["requestContext"]["routeKey"] = json!(key);
    e["requestContext"]["stage"] = json!("prod");
    e["pathParameters"] = json!({"project": "nexus-ai", "agent": "sales"});
    let (status, _) = call(&d, request(e)).await;
    assert_eq!(status, 404, "routed to GET .../agents");
    // `$default` with a prefix before the route.
    let r = call(&d, post_to("/prod/projects/nexus-ai/builds")).await;
    assert_eq!(r.0, 202, "{}", r.1);
    assert_eq!(call(&d, post_to("/projects/nexus-ai/builds/")).await.0, 202);
    // A project named like a segment: the longest route wins.
    let (status, b) = call(&d, get("/projects/projects/builds/builds/logs")).await;
    assert_eq!((status, error_of(&b).0), (404, "NotFound"));
}

fn post_to(path: &str) -> Request {
    let mut e = post_event(&build_request());
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["path"] = json!(path);
    request(e)
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let d = with_source();
    let (status, b) = call(&d, get("/")).await;
    assert_eq!((status, error_of(&b).0), (404, "NotFound"));
    // The old unscoped routes are gone (IAM could not scope them).
    for old in ["/builds", "/builds/b-1", "/agents/nexus-ai/sales"] {
        let (status, b) = call(&d, get(old)).await;
        assert_eq!((status, error_of(&b).0), (404, "NotFound"), "{old}");
    }
    let r = handle(&d, get("/projects/nexus-ai/builds")).await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()[header::ALLOW], "POST");
    let r = handle(&d, http("PUT", "/projects/nexus-ai/builds/b-1", None, None))
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()[header::ALLOW], "GET, DELETE");
    let (status, _) = call(&d, http("DELETE", "/projects/p/agents/a", None, None)).await;
    assert_eq!(status, 405);
}

// ---- the samples in events/api

fn sample(name: &str) -> Value {
    let text = match name {
        "post-build-valid" => include_str!("../../../../../../events/api/post-build-valid.json"),
        "post-build-invalid" => {
            include_str!("../../../../../../events/api/post-build-invalid.json")
        }
        "get-build" => include_str!("../../../../../../events/api/get-build.json"),
        "get-agent" => include_str!("../../../../../../events/api/get-agent.json"),
        "delete-build" => include_str!("../../../../../../events/api/delete-build.json"),
        "get-build-logs" => include_str!("../../../../../../events/api/get-build-logs.json"),
        other => panic!("no sample {other}"),
    };
    serde_json::from_str(text).unwrap()
}

#[tokio::test]
async fn the_samples_route_and_answer_as_named() {
    let d = deps(FakeStore::default().with_object(
        OWN,
        "sources/nexus-ai/sales-assistant/4f2a9c0d1e3b5a7c9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d.zip",
        b"zip",
    ));
    // The samples name the local stack's bucket; the fakes call it OWN.
    let local = |name| {
        let mut e = sample(name);
        let body = e["body"].as_str().unwrap().replace("agentbuild-local", OWN);
        e["body"] = json!(body);
        request(e)
    };
    assert_eq!(call(&d, local("post-build-valid")).await.0, 202);
    let (status, b) = call(&d, local("post-build-invalid")).await;
    assert_eq!(
        (status, error_of(&b)),
        (400, ("InvalidRequest", Some("dockerfile")))
    );
    let id = "api-3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a";
    for (name, endpoint, params) in [
        ("get-build", Endpoint::GetBuild, ("buildId", id)),
        ("delete-build", Endpoint::CancelBuild, ("buildId", id)),
        ("get-build-logs", Endpoint::BuildLogs, ("buildId", id)),
        (
            "get-agent",
            Endpoint::LatestAgent,
            ("agent", "sales-assistant"),
        ),
    ] {
        let e = sample(name);
        let key = e["routeKey"].as_str().map(String::from);
        let Routing::Found(m) = routes::route(&request(e), key.as_deref()) else {
            panic!("{name} does not route");
        };
        assert_eq!(m.spec.endpoint, endpoint, "{name}");
        assert_eq!(m.param("project"), "nexus-ai", "{name}");
        assert_eq!(m.param(params.0), params.1, "{name}");
    }
}

/// This file's scenarios, for the operations test in `mod.rs`.
pub(super) const SCENARIOS: &[(&str, fn())] = crate::testing::fakes::scenarios![
    a_finished_build_answers_its_record,
    a_running_build_answers_its_live_status,
    a_build_not_yet_started_answers_from_the_execution,
    a_rejected_execution_reports_the_rule_it_broke,
    a_timed_out_execution_is_reported_before_its_record_is_closed,
    an_unknown_build_is_404_and_a_malformed_id_400,
    an_agent_answers_its_latest_success,
    an_agent_with_a_bad_name_is_400,
    routes_by_route_key_behind_api_gateway_and_by_path_elsewhere,
    unknown_routes_are_404_and_wrong_methods_405,
    the_samples_route_and_answer_as_named,
];
