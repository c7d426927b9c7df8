//! `GET /projects/{project}/agents/{agent}/deployments`, `POST .../rollback`.

use super::*;
use crate::domain::deployment::DeploymentStatus;
use crate::domain::history::{deploy_key, Entry, EntryKind};
use crate::domain::request::Trigger;
use crate::domain::rollout::{Smoke, SmokeStatus};

fn entry(
    build: &str,
    version: &str,
    at: &str,
    status: DeploymentStatus,
    smoke: SmokeStatus,
) -> Entry {
    Entry {
        kind: EntryKind::Deploy,
        at: at.parse().unwrap(),
        build_id: build.into(),
        trigger: Trigger::Api,
        endpoint: "live".into(),
        runtime_name: Some("rt".into()),
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

/// v1 good, v2 refused by its smoke test, v3 good and live.
fn deployed_three() -> TestDeps {
    let d = deps(FakeStore::default());
    for e in [
        entry(
            "b-1",
            "1",
            "2026-11-28T10:00:00Z",
            DeploymentStatus::Ready,
            SmokeStatus::Passed,
        ),
        entry(
            "b-2",
            "2",
            "2026-11-28T10:10:00Z",
            DeploymentStatus::Failed,
            SmokeStatus::Failed,
        ),
        entry(
            "b-3",
            "3",
            "2026-11-28T10:20:00Z",
            DeploymentStatus::Ready,
            SmokeStatus::Passed,
        ),
    ] {
        d.store.seed(
            &deploy_key("nexus-ai", "sales", &e.build_id),
            serde_json::to_vec(&e).unwrap(),
        );
        built(&d, &e.build_id);
    }
    d.runtimes.add_endpoint("rt-1", "live", "3");
    d
}

/// The record of build `id` and its image in ECR (tag `t-<id>`, digest `sha256:<id>`).
fn built(d: &TestDeps, id: &str) {
    let mut b = running();
    b.status = BuildStatus::Succeeded;
    b.image_digest = Some(format!("sha256:{id}"));
    let mut p = plan();
    p.build_id = id.into();
    p.image.tag = format!("t-{id}");
    let rec = BuildRecord::new(&p, Some(&b), None, t("2026-11-28T10:05:00Z"));
    d.store.seed(&build_key(id), rec.to_json());
    d.images
        .push("agentbuild", &p.image.tag, &format!("sha256:{id}"));
}

fn rollback(body: Option<&str>) -> Request {
    http(
        "POST",
        "/projects/nexus-ai/agents/sales/rollback",
        Some("application/json"),
        body,
    )
}

#[tokio::test]
async fn the_history_lists_every_deploy_oldest_first() {
    let d = deployed_three();
    let (status, body) = call(&d, get("/projects/nexus-ai/agents/sales/deployments")).await;
    assert_eq!(status, 200, "{body}");
    let builds: Vec<&str> = body["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["buildId"].as_str().unwrap())
        .collect();
    assert_eq!(builds, ["b-1", "b-2", "b-3"]);
    assert_eq!(body["deployments"][1]["smoke"]["status"], "FAILED");
}

#[tokio::test]
async fn a_rollback_moves_live_to_the_previous_good_version_and_is_recorded() {
    let d = deployed_three();
    let (status, body) = call(&d, rollback(Some("{}"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["kind"].as_str(),
            body["version"].as_str(),
            body["previousVersion"].as_str()
        ),
        (Some("ROLLBACK"), Some("1"), Some("3"))
    );
    assert_eq!(body["status"], "READY");
    assert_eq!(
        body["by"], "api (unauthenticated request req-1)",
        "who rolled back"
    );
    let pin: Value = d
        .store
        .own_json("agents/nexus-ai/sales/pins/rt.live.json")
        .unwrap();
    assert_eq!(
        (pin["buildId"].as_str(), pin["version"].as_str()),
        (Some("b-1"), Some("1"))
    );
    assert_eq!(d.runtimes.live("rt-1", "live").as_deref(), Some("1"));
    let (_, listed) = call(&d, get("/projects/nexus-ai/agents/sales/deployments")).await;
    assert_eq!(listed["deployments"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn a_rollback_never_goes_to_a_version_that_failed_its_smoke_test() {
    let d = deployed_three();
    let (status, body) = call(&d, rollback(Some(r#"{"to": "2"}"#))).await;
    assert_eq!(
        (status, error_of(&body).0),
        (409, "NothingToRollBackTo"),
        "{body}"
    );
    assert_eq!(d.runtimes.live("rt-1", "live").as_deref(), Some("3"));
    let (status, body) = call(&d, rollback(Some(r#"{"to": "b-1"}"#))).await;
    assert_eq!(
        (status, body["version"].as_str()),
        (200, Some("1")),
        "{body}"
    );
    let (status, body) = call(&d, rollback(Some(r#"{"endpoint": "DEFAULT"}"#))).await;
    assert_eq!(
        (status, error_of(&body)),
        (400, ("InvalidRequest", Some("endpoint"))),
        "{body}"
    );
}

#[tokio::test]
async fn a_rollback_is_keyed_by_runtime_and_endpoint() {
    // Another runtime's `live` got versions 1 and 2 later (a promote to another runtime).
    let d = deployed_three();
    for (build, version, at) in [
        ("b-8", "1", "2026-11-28T10:30:00Z"),
        ("b-9", "2", "2026-11-28T10:40:00Z"),
    ] {
        let mut e = entry(
            build,
            version,
            at,
            DeploymentStatus::Ready,
            SmokeStatus::Passed,
        );
        e.runtime_name = Some("other".into());
        e.runtime_id = Some("other-2".into());
        d.store.seed(
            &deploy_key("nexus-ai", "sales", build),
            serde_json::to_vec(&e).unwrap(),
        );
        built(&d, build);
    }
    d.runtimes.add_endpoint("other-2", "live", "2");
    // The latest deploy's runtime (rt) by default: its live goes back to its own version 1.
    let mut latest = BuildRecord::new(&plan(), None, None, t("2026-11-28T10:20:00Z"));
    let spec_of = |name: &str| {
        let opts: crate::domain::deploy_request::DeployOptions = serde_json::from_value(
            json!({"protocol": "HTTP", "networkMode": "PUBLIC", "runtimeName": name}),
        )
        .unwrap();
        opts.resolve("agentbuild", "nexus-ai", "sales")
    };
    latest.deployment = Some(crate::domain::deployment::Deployment::refused(
        &spec_of("rt"),
        None,
        "",
        t("2026-11-28T10:20:00Z"),
    ));
    d.store
        .seed("agents/nexus-ai/sales/latest.json", latest.to_json());
    let (status, body) = call(&d, rollback(Some(r#"{"to": "b-9"}"#))).await;
    assert_eq!(
        (status, error_of(&body)),
        (409, ("NothingToRollBackTo", Some("to"))),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("of runtime other-2"),
        "{body}"
    );
    assert_eq!(
        d.runtimes.live("rt-1", "live").as_deref(),
        Some("3"),
        "untouched"
    );
    let (status, body) = call(&d, rollback(Some("{}"))).await;
    assert_eq!(
        (status, body["buildId"].as_str(), body["runtimeId"].as_str()),
        (200, Some("b-1"), Some("rt-1")),
        "{body}"
    );
    // Named, the other runtime's live moves within its own versions.
    let (status, body) = call(&d, rollback(Some(r#"{"runtimeName": "other"}"#))).await;
    assert_eq!(
        (status, body["buildId"].as_str()),
        (200, Some("b-8")),
        "{body}"
    );
    assert_eq!(d.runtimes.live("other-2", "live").as_deref(), Some("1"));
    let (status, body) = call(&d, rollback(Some(r#"{"runtimeName": "nobody"}"#))).await;
    assert_eq!(
        (status, error_of(&body)),
        (409, ("NothingToRollBackTo", Some("runtimeName"))),
        "{body}"
    );
}

#[tokio::test]
async fn a_rollback_to_an_image_gone_from_ecr_is_refused_and_moves_nothing() {
    let d = deployed_three();
    // b-1's tag now names another image (it expired and the tag was pushed again): gone too.
    d.images.push("agentbuild", "t-b-1", "sha256:other");
    let (status, body) = call(&d, rollback(Some(r#"{"to": "b-1"}"#))).await;
    assert_eq!(
        (status, error_of(&body)),
        (409, ("NothingToRollBackTo", Some("to"))),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no longer exists"),
        "{body}"
    );
    assert_eq!(d.runtimes.live("rt-1", "live").as_deref(), Some("3"));
    let (_, listed) = call(&d, get("/projects/nexus-ai/agents/sales/deployments")).await;
    assert_eq!(
        listed["deployments"].as_array().unwrap().len(),
        3,
        "nothing recorded"
    );
}

fn promote(id: &str, body: &str) -> Request {
    http(
        "POST",
        &format!("/projects/nexus-ai/builds/{id}/promote"),
        Some("application/json"),
        Some(body),
    )
}

#[tokio::test]
async fn a_promote_takes_only_deploy_and_only_a_successful_build() {
    let d = deps(FakeStore::default());
    let mut b = running();
    b.status = BuildStatus::Failed;
    b.finished_at = Some(t("2026-11-28T10:05:00Z"));
    let rec = BuildRecord::new(&plan(), Some(&b), None, t("2026-11-28T10:05:00Z"));
    d.store.seed(&build_key("b-1"), rec.to_json());
    let (status, body) = call(&d, promote("b-1", r#"{"deploy": {}, "source": "x"}"#)).await;
    assert_eq!(
        (status, error_of(&body)),
        (400, ("InvalidRequest", Some("source"))),
        "{body}"
    );
    let (status, body) = call(&d, promote("b-1", r#"{}"#)).await;
    assert_eq!(
        (status, error_of(&body)),
        (400, ("InvalidRequest", Some("deploy"))),
        "{body}"
    );
    let (status, body) = call(&d, promote("b-1", r#"{"deploy": {}}"#)).await;
    assert_eq!(
        (status, error_of(&body).0),
        (409, "NotPromotable"),
        "{body}"
    );
    let (status, _) = call(&d, promote("b-404", r#"{"deploy": {}}"#)).await;
    assert_eq!(status, 404);
}

pub(super) const SCENARIOS: &[(&str, fn())] = crate::testing::fakes::scenarios![
    the_history_lists_every_deploy_oldest_first,
    a_rollback_moves_live_to_the_previous_good_version_and_is_recorded,
    a_rollback_never_goes_to_a_version_that_failed_its_smoke_test,
    a_rollback_is_keyed_by_runtime_and_endpoint,
    a_rollback_to_an_image_gone_from_ecr_is_refused_and_moves_nothing,
    a_promote_takes_only_deploy_and_only_a_successful_build,
];
