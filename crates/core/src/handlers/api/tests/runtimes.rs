//! An agent's runtimes: a squatted name refused at POST, the list, retire (issue 21, item 3).

use super::*;
use crate::domain::deployment::Owner;
use crate::services::runtime_names::{claim, note_deployed};

fn with_deploy(agent: &str, deploy: Value) -> Value {
    let mut r = build_request();
    r["agent"] = json!(agent);
    r["source"] = json!(format!("s3://{OWN}/sources/nexus-ai/{agent}/src.zip"));
    r["deploy"] = deploy;
    r
}

#[tokio::test]
async fn another_agents_runtime_name_is_a_400_naming_deploy_runtime_name() {
    let d = deps(
        FakeStore::default()
            .with_object(OWN, SOURCE_KEY, b"zip")
            .with_object(OWN, "sources/nexus-ai/billing/src.zip", b"zip"),
    );
    let mine = with_deploy("sales", json!({"runtimeName": "Sales_Bot"}));
    assert_eq!(call(&d, post(&mine)).await.0, 202);
    let squat = with_deploy("billing", json!({"runtimeName": "Sales_Bot"}));
    let (status, body) = call(&d, post(&squat)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        error_of(&body),
        ("InvalidRequest", Some("deploy.runtimeName"))
    );
    assert_eq!(
        d.executions.names().len(),
        1,
        "nothing started for the squatter"
    );
}

/// sales has runtime `Old` (rt-old) and deploys to `New` now.
async fn moved(d: &TestDeps) {
    let me = Owner {
        stack: "agentbuild",
        project: "nexus-ai",
        agent: "sales",
    };
    let now = t("2026-11-28T10:00:00Z");
    for (name, id) in [("Old", "rt-old"), ("New", "rt-new")] {
        claim(&d.store, name, &me, now).await.unwrap();
        d.runtimes.add(id, name, "nexus-ai", "sales");
        note_deployed(&d.store, name, &me, (id, "arn"), "b-1", now)
            .await
            .unwrap();
    }
    let mut rec = BuildRecord::new(&plan(), Some(&running()), None, now);
    rec.deployment = Some(
        serde_json::from_value(json!({
            "status": "READY", "runtimeId": "rt-new", "runtimeArn": "arn", "runtimeName": "New",
            "runtimeVersion": "1", "containerUri": "r@sha256:00",
            "startedAt": "2026-11-28T10:00:00Z", "finishedAt": "2026-11-28T10:01:00Z"
        }))
        .unwrap(),
    );
    d.store
        .seed(&latest_key("nexus-ai", "sales"), rec.to_json());
}

const RUNTIMES: &str = "/projects/nexus-ai/agents/sales/runtimes";

#[tokio::test]
async fn lists_the_agents_runtimes_and_retires_an_old_one_once() {
    let d = with_source();
    moved(&d).await;
    let (status, body) = call(&d, get(RUNTIMES)).await;
    assert_eq!(status, 200, "{body}");
    let states: Vec<_> = body["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["runtimeName"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(states, [("New", "ACTIVE"), ("Old", "SUPERSEDED")]);

    let (status, first) = call(&d, http("DELETE", &format!("{RUNTIMES}/Old"), None, None)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "RETIRED");
    assert_eq!(*d.runtimes.deleted.borrow(), ["rt-old"]);
    let (status, again) = call(&d, http("DELETE", &format!("{RUNTIMES}/Old"), None, None)).await;
    assert_eq!((status, &again), (200, &first));
}

#[tokio::test]
async fn the_current_runtime_needs_force_and_a_name_not_the_agents_is_404() {
    let d = with_source();
    moved(&d).await;
    let (status, body) = call(&d, http("DELETE", &format!("{RUNTIMES}/New"), None, None)).await;
    assert_eq!(
        (status, error_of(&body)),
        (409, ("RuntimeInUse", Some("deploy.runtimeName")))
    );
    // Behind API Gateway (a named stage, the route key of `routes::ROUTES`'s retire row); who
    // retired it: the IAM principal API Gateway authorized.
    let mut forced = event("DELETE", &format!("/prod{RUNTIMES}/New"), None, None);
    let key = "DELETE /projects/{project}/agents/{agent}/runtimes/{runtimeName}";
    forced["routeKey"] = json!(key);
    forced["requestContext"]["routeKey"] = json!(key);
    forced["requestContext"]["stage"] = json!("prod");
    forced["pathParameters"] =
        json!({"project": "nexus-ai", "agent": "sales", "runtimeName": "New"});
    forced["rawQueryString"] = json!("force=true");
    forced["queryStringParameters"] = json!({"force": "true"});
    let ops = "arn:aws:iam::123456789012:role/platform-ops";
    forced["requestContext"]["authorizer"] = json!({"iam": {"userArn": ops, "callerId": "AROA1"}});
    let (status, body) = call(&d, request(forced)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("RETIRED")),
        "{body}"
    );
    assert_eq!(body["retired"]["by"], ops);
    assert_eq!(body["retired"]["wasCurrent"], true);
    let other = "/projects/nexus-ai/agents/billing/runtimes/Old";
    assert_eq!(call(&d, http("DELETE", other, None, None)).await.0, 404);
    assert_eq!(call(&d, http("POST", RUNTIMES, None, None)).await.0, 405);
}

pub(super) const SCENARIOS: &[(&str, fn())] = crate::testing::fakes::scenarios![
    another_agents_runtime_name_is_a_400_naming_deploy_runtime_name,
    lists_the_agents_runtimes_and_retires_an_old_one_once,
    the_current_runtime_needs_force_and_a_name_not_the_agents_is_404,
];
