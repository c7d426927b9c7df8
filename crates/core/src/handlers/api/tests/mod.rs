//! The API handler's scenarios over the fakes: helpers here, the scenarios by route in
//! `post.rs`, `get.rs` (GET routes, routing, the samples in `events/api`) and `delete.rs`
//! (cancel), `access.rs` (projects), `runtimes.rs` (an agent's runtimes).

mod access;
mod delete;
mod deployments;
mod get;
mod post;
mod runtimes;

use super::*;
use crate::config::ValidateConfig;
use crate::domain::record::tests::{plan, running, t};
use crate::domain::record::{build_key, latest_key, BuildRecord};
use crate::domain::request::SourcePolicy;
use crate::domain::status::BuildStatus;
use crate::ports::ExecutionStatus;
use crate::testing::fake_runtimes::FakeRuntimes;
use crate::testing::fakes::{FakeBuilds, FakeExecutions, FakeImages, FakeLogs, FakeStore, OWN};
use lambda_http::http::header;
use routes::{Endpoint, Routing};
use serde_json::{json, Value};

type TestDeps = Deps<FakeStore, FakeExecutions, FakeBuilds, FakeLogs, FakeRuntimes, FakeImages>;

const SOURCE_KEY: &str = "sources/nexus-ai/sales/src.zip";

fn deps(store: FakeStore) -> TestDeps {
    Deps {
        store,
        executions: FakeExecutions::default(),
        builds: FakeBuilds::default(),
        logs: FakeLogs::default(),
        runtimes: FakeRuntimes::default(),
        images: FakeImages::default(),
        config: ApiConfig {
            validate: ValidateConfig {
                stack: "agentbuild".into(),
                sources: SourcePolicy::own(OWN),
                repository_uri: "123.dkr.ecr.us-east-1.amazonaws.com/agentbuild".into(),
                max_source_bytes: 1000,
            },
            state_machine_arn: "arn:aws:states:us-east-1:1:stateMachine:agentbuild".into(),
            max_body_bytes: 64 * 1024,
        },
        now: || "2026-11-28T10:02:00Z".parse().unwrap(),
    }
}

fn with_source() -> TestDeps {
    deps(FakeStore::default().with_object(OWN, SOURCE_KEY, b"zip"))
}

/// What `cargo lambda watch` sends for a function-URL request (route key `$default`), as the
/// JSON event: tests that need another shape edit it before [`request`] converts it.
fn event(method: &str, path: &str, content_type: Option<&str>, body: Option<&str>) -> Value {
    let mut headers = json!({"host": "127.0.0.1:9000", "user-agent": "test"});
    if let Some(ct) = content_type {
        headers["content-type"] = json!(ct);
    }
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": headers, "isBase64Encoded": false, "body": body,
        "requestContext": {
            "routeKey": "$default", "stage": "$default", "requestId": "req-1",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "test"}
        }
    })
}

/// The event as the function receives it: through `lambda_http`'s own conversion.
fn request(event: Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn http(method: &str, path: &str, content_type: Option<&str>, body: Option<&str>) -> Request {
    request(event(method, path, content_type, body))
}

fn post_event(body: &Value) -> Value {
    event(
        "POST",
        "/projects/nexus-ai/builds",
        Some("application/json"),
        Some(&body.to_string()),
    )
}

fn post(body: &Value) -> Request {
    request(post_event(body))
}

fn get(path: &str) -> Request {
    http("GET", path, None, None)
}

fn base64(mut event: Value) -> Value {
    let body = event["body"].as_str().unwrap_or_default();
    event["body"] = json!(aws_smithy_types::base64::encode(body));
    event["isBase64Encoded"] = json!(true);
    event
}

/// An execution's input naming project nexus-ai (as the console starts one).
fn input() -> String {
    build_request().to_string()
}

fn build_request() -> Value {
    json!({"project": "nexus-ai", "agent": "sales", "source": format!("s3://{OWN}/{SOURCE_KEY}")})
}

async fn call(d: &TestDeps, request: Request) -> (u16, Value) {
    let r = handle(d, request).await.unwrap();
    let body = match r.body() {
        Body::Text(s) => serde_json::from_str(s).unwrap(),
        other => panic!("unexpected body {other:?}"),
    };
    (r.status().as_u16(), body)
}

fn error_of(body: &Value) -> (&str, Option<&str>) {
    (
        body["error"]["code"].as_str().unwrap(),
        body["error"]["field"].as_str(),
    )
}

/// Every scenario, against one recorder of the SDK operations the fakes stand for.
#[test]
fn calls_exactly_the_sdk_operations_the_catalog_lists() {
    let source = [
        include_str!("post.rs"),
        include_str!("get.rs"),
        include_str!("delete.rs"),
        include_str!("access.rs"),
        include_str!("deployments.rs"),
        include_str!("runtimes.rs"),
    ]
    .concat();
    let scenarios = [
        post::SCENARIOS,
        get::SCENARIOS,
        delete::SCENARIOS,
        access::SCENARIOS,
        deployments::SCENARIOS,
        runtimes::SCENARIOS,
    ]
    .concat();
    let called = crate::testing::fakes::operations_of(&source, &scenarios);
    crate::testing::fakes::assert_operations_are_listed("api", &called);
}
