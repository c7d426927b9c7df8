//! `POST /projects/{project}/builds`: validation, the source check, start-or-reuse, AWS failures.

use super::*;
use crate::domain::plan::is_build_id;

#[tokio::test]
async fn accepts_a_build_and_starts_one_execution_with_the_api_envelope() {
    let d = with_source();
    let (status, body) = call(&d, post(&build_request())).await;
    assert_eq!(status, 202, "{body}");
    let id = body["buildId"].as_str().unwrap();
    assert!(id.starts_with("api-") && is_build_id(id), "{id}");
    assert_eq!(body["executionArn"], FakeExecutions::arn(id));
    assert_eq!(body["statusUrl"], format!("/projects/nexus-ai/builds/{id}"));
    assert_eq!(d.executions.names(), [id]);
    let input = d.executions.input_of(id);
    assert!(
        input.get("trigger").is_none(),
        "the door is told by the name"
    );
    assert_eq!(input["request"]["platform"], "linux/arm64");
    assert_eq!(
        input["request"]["source"],
        format!("s3://{OWN}/{SOURCE_KEY}")
    );
    // The content it was validated against travels with it: ValidateRequest builds that.
    assert_eq!(
        input["source"]["versionId"],
        crate::testing::fakes::FAKE_VERSION
    );
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"zip"));
    assert_eq!(input["source"]["sha256"], sha);
}

#[tokio::test]
async fn new_bytes_at_the_same_key_are_a_new_build() {
    let d = with_source();
    let (_, first) = call(&d, post(&build_request())).await;
    let (_, again) = call(&d, post(&build_request())).await;
    assert_eq!(again["buildId"], first["buildId"], "same bytes: same build");
    d.store.set_checksum(OWN, SOURCE_KEY, &"0f".repeat(32));
    let (status, replaced) = call(&d, post(&build_request())).await;
    assert_eq!(status, 202, "{replaced}");
    assert_ne!(replaced["buildId"], first["buildId"]);
}

#[tokio::test]
async fn the_answer_points_at_the_status() {
    let d = with_source();
    let r = handle(&d, post(&build_request())).await.unwrap();
    let location = r.headers()[header::LOCATION].to_str().unwrap();
    assert!(
        location.starts_with("/projects/nexus-ai/builds/api-"),
        "{location}"
    );
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn rejects_malformed_json() {
    let d = with_source();
    for body in ["{\"project\": ", "not json", ""] {
        let (status, b) = call(
            &d,
            http(
                "POST",
                "/projects/nexus-ai/builds",
                Some("application/json"),
                Some(body),
            ),
        )
        .await;
        assert_eq!((status, error_of(&b).0), (400, "MalformedJson"), "{body}");
    }
    assert!(d.executions.names().is_empty());
}

#[tokio::test]
async fn rejects_a_body_that_is_not_json_by_media_type() {
    let d = with_source();
    let body = build_request().to_string();
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let (status, b) = call(
            &d,
            http("POST", "/projects/nexus-ai/builds", ct, Some(&body)),
        )
        .await;
        assert_eq!(
            (status, error_of(&b).0),
            (415, "UnsupportedMediaType"),
            "{ct:?}"
        );
    }
    let (status, _) = call(
        &d,
        http(
            "POST",
            "/projects/nexus-ai/builds",
            Some("Application/JSON; charset=utf-8"),
            Some(&body),
        ),
    )
    .await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn rejects_an_oversize_body_plain_or_base64() {
    let d = with_source();
    let mut big = build_request();
    big["buildArgs"] = json!({"A": "x".repeat(70 * 1024)});
    let (status, b) = call(&d, post(&big)).await;
    assert_eq!((status, error_of(&b).0), (413, "PayloadTooLarge"));
    let (status, _) = call(&d, request(base64(post_event(&big)))).await;
    assert_eq!(status, 413);
    assert!(d.executions.names().is_empty());
}

#[tokio::test]
async fn reads_a_base64_body() {
    let d = with_source();
    let e = base64(post_event(&build_request()));
    assert_eq!(call(&d, request(e)).await.0, 202);
}

#[tokio::test]
async fn rejects_unknown_fields_by_name() {
    let d = with_source();
    let mut r = build_request();
    r["buildspec"] = json!("rm -rf /");
    let (status, b) = call(&d, post(&r)).await;
    assert_eq!(
        (status, error_of(&b)),
        (400, ("InvalidRequest", Some("buildspec")))
    );
}

#[tokio::test]
async fn every_rule_names_its_field() {
    let cases = [
        ("project", json!("Bad"), "project"),
        ("agent", json!(""), "agent"),
        ("source", json!("s3://elsewhere/sources/x.zip"), "source"),
        ("dockerfile", json!("../Dockerfile"), "dockerfile"),
        ("platform", json!("linux/s390x"), "platform"),
        ("buildArgs", json!({"X;rm": "1"}), "buildArgs.X;rm"),
        ("buildArgs", json!({"A": "a\u{0}"}), "buildArgs.A"),
        ("force", json!("yes"), "force"),
        ("idempotencyKey", json!("a b"), "idempotencyKey"),
    ];
    let d = with_source();
    for (field, value, named) in cases {
        let mut r = build_request();
        r[field] = value;
        let (status, b) = call(&d, post(&r)).await;
        assert_eq!(status, 400, "{field}: {b}");
        assert_eq!(error_of(&b), ("InvalidRequest", Some(named)), "{b}");
        assert!(!b["error"]["message"].as_str().unwrap().is_empty());
    }
    assert!(d.executions.names().is_empty());
}

#[tokio::test]
async fn a_missing_source_is_refused_at_once() {
    let d = deps(FakeStore::default());
    let (status, b) = call(&d, post(&build_request())).await;
    assert_eq!(
        (status, error_of(&b)),
        (400, ("SourceNotFound", Some("source")))
    );
    assert!(d.executions.start_calls.borrow().is_empty());
}

#[tokio::test]
async fn an_oversize_source_is_refused_at_once() {
    let d = deps(FakeStore::default().with_object(OWN, SOURCE_KEY, &[0; 1001]));
    let (status, b) = call(&d, post(&build_request())).await;
    assert_eq!(
        (status, error_of(&b)),
        (400, ("InvalidRequest", Some("source")))
    );
}

fn keyed(key: &str) -> Value {
    let mut r = build_request();
    r["idempotencyKey"] = json!(key);
    r
}

#[tokio::test]
async fn the_same_key_twice_is_one_build_also_after_it_finished() {
    let d = with_source();
    let (s1, first) = call(&d, post(&keyed("req-1"))).await;
    let (s2, second) = call(&d, post(&keyed("req-1"))).await;
    assert_eq!((s1, s2), (202, 202));
    // While it runs, Step Functions answers the same start with the same execution.
    assert_eq!(first, second);
    assert_eq!(first["existing"], json!(false));
    let id = first["buildId"].as_str().unwrap();
    d.executions.end(id, ExecutionStatus::Succeeded, None);
    // After it ended, the answer names it and says it existed: nothing new was started.
    let (s3, mut third) = call(&d, post(&keyed("req-1"))).await;
    assert_eq!(third["existing"], json!(true));
    third["existing"] = json!(false);
    assert_eq!((s3, &third), (202, &first));
    assert_eq!(d.executions.names(), [id]);
}

#[tokio::test]
async fn a_failed_build_stays_the_answer_for_its_key() {
    let d = with_source();
    let (_, first) = call(&d, post(&keyed("req-1"))).await;
    let id = first["buildId"].as_str().unwrap();
    d.executions
        .end(id, ExecutionStatus::Failed, Some(("BuildFailed", "exit 1")));
    let (status, again) = call(&d, post(&keyed("req-1"))).await;
    assert_eq!((status, &again["buildId"]), (202, &first["buildId"]));
    assert_eq!(d.executions.names().len(), 1);
}

#[tokio::test]
async fn different_keys_are_different_builds() {
    let d = with_source();
    let (_, a) = call(&d, post(&keyed("req-1"))).await;
    let (_, b) = call(&d, post(&keyed("req-2"))).await;
    assert_ne!(a["buildId"], b["buildId"]);
    assert_eq!(d.executions.names().len(), 2);
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_a_conflict() {
    let d = with_source();
    call(&d, post(&keyed("req-1"))).await;
    let mut other = keyed("req-1");
    other["force"] = json!(true);
    let (status, b) = call(&d, post(&other)).await;
    assert_eq!(
        (status, error_of(&b)),
        (409, ("IdempotencyKeyReused", Some("idempotencyKey")))
    );
    assert_eq!(d.executions.names().len(), 1);
}

#[tokio::test]
async fn identical_keyless_requests_share_a_build_until_it_fails() {
    let d = with_source();
    let (_, a) = call(&d, post(&build_request())).await;
    let (_, b) = call(&d, post(&build_request())).await;
    assert_eq!(a, b);
    let first = a["buildId"].as_str().unwrap().to_string();
    d.executions.end(&first, ExecutionStatus::Succeeded, None);
    let (_, c) = call(&d, post(&build_request())).await;
    assert_eq!(c["buildId"], first.as_str());

    d.executions
        .end(&first, ExecutionStatus::Failed, Some(("BuildFault", "")));
    let (status, retry) = call(&d, post(&build_request())).await;
    assert_eq!(status, 202);
    assert_eq!(retry["buildId"], format!("{first}-r2"));
    assert_eq!(d.executions.names().len(), 2);
}

#[tokio::test]
async fn a_busy_step_functions_is_a_503_with_nothing_started() {
    let d = with_source();
    d.executions
        .fail_next
        .borrow_mut()
        .push_back(Error::TransientAws("SFN.StartExecution: throttled".into()));
    let r = handle(&d, post(&build_request())).await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    assert!(d.executions.names().is_empty());
}

#[tokio::test]
async fn other_aws_failures_are_a_500_naming_the_request_only() {
    let d = with_source();
    d.store.fail_next.borrow_mut().push_back(Error::AwsService(
        "S3.HeadObject: AccessDenied on secret-bucket".into(),
    ));
    let (status, b) = call(&d, post(&build_request())).await;
    assert_eq!(status, 500);
    let message = b["error"]["message"].as_str().unwrap();
    assert_eq!(message, "internal error (request req-1)");
}

/// This file's scenarios, for the operations test in `mod.rs`.
pub(super) const SCENARIOS: &[(&str, fn())] = crate::testing::fakes::scenarios![
    accepts_a_build_and_starts_one_execution_with_the_api_envelope,
    new_bytes_at_the_same_key_are_a_new_build,
    the_answer_points_at_the_status,
    rejects_malformed_json,
    rejects_a_body_that_is_not_json_by_media_type,
    rejects_an_oversize_body_plain_or_base64,
    reads_a_base64_body,
    rejects_unknown_fields_by_name,
    every_rule_names_its_field,
    a_missing_source_is_refused_at_once,
    an_oversize_source_is_refused_at_once,
    the_same_key_twice_is_one_build_also_after_it_finished,
    a_failed_build_stays_the_answer_for_its_key,
    different_keys_are_different_builds,
    a_key_reused_for_another_request_is_a_conflict,
    identical_keyless_requests_share_a_build_until_it_fails,
    a_busy_step_functions_is_a_503_with_nothing_started,
    other_aws_failures_are_a_500_naming_the_request_only,
];
