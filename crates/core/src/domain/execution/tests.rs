use super::*;
use crate::domain::plan::is_build_id;
use crate::domain::request::{validate, SourcePolicy, Trigger};
use serde_json::json;

fn req(v: Value) -> ValidRequest {
    validate(&v, &SourcePolicy::own("bkt")).unwrap()
}

fn base() -> Value {
    json!({"project": "p", "agent": "a", "source": "s3://bkt/sources/p/a/x.zip"})
}

fn pin(version: &str, sha: &str) -> SourcePin {
    SourcePin {
        version_id: version.into(),
        sha256: sha.repeat(32),
    }
}

fn name(v: Value, p: &SourcePin) -> String {
    api_execution_name(&req(v), Some(p), 0)
}

#[test]
fn requests_meaning_the_same_build_share_a_name() {
    let mut explicit = base();
    explicit["platform"] = json!("linux/arm64");
    explicit["dockerfile"] = json!("Dockerfile");
    explicit["buildArgs"] = json!({});
    explicit["force"] = json!(false);
    let p = pin("v1", "ab");
    assert_eq!(name(base(), &p), name(explicit, &p));
    let mut other = base();
    other["force"] = json!(true);
    assert_ne!(name(base(), &p), name(other, &p));
}

#[test]
fn new_bytes_at_the_same_key_are_a_new_build() {
    let a = name(base(), &pin("v1", "ab"));
    assert_ne!(a, name(base(), &pin("v2", "ab")), "another version");
    assert_ne!(a, name(base(), &pin("v1", "cd")), "another hash");
    assert_eq!(a, name(base(), &pin("v1", "ab")));
}

#[test]
fn names_are_pinned_to_golden_values() {
    // A change here renames every build: a retried POST would start a second one.
    assert_eq!(
        name(base(), &pin("v1", "ab")),
        "api-16bb7940faddb5334ee7bdf38a843c9ec6b7eefc"
    );
    let mut keyed = base();
    keyed["idempotencyKey"] = json!("k1");
    assert_eq!(
        name(keyed, &pin("v1", "ab")),
        "api-8fc44abce0b164479a328c68ffb7f0c67cf4f335"
    );
}

#[test]
fn a_key_names_the_build_whatever_the_content() {
    let mut a = base();
    a["idempotencyKey"] = json!("k1");
    let mut b = a.clone();
    b["force"] = json!(true);
    assert_eq!(name(a.clone(), &pin("v1", "ab")), name(b, &pin("v2", "cd")));
    let mut c = a.clone();
    c["idempotencyKey"] = json!("k2");
    assert_ne!(name(a.clone(), &pin("v1", "ab")), name(c, &pin("v1", "ab")));
    let mut d = a.clone();
    d["agent"] = json!("other");
    d["source"] = json!("s3://bkt/sources/p/other/x.zip");
    assert_ne!(name(a, &pin("v1", "ab")), name(d, &pin("v1", "ab")));
}

#[test]
fn names_are_valid_build_ids() {
    let r = req(base());
    let first = api_execution_name(&r, None, 0);
    let retry = api_execution_name(&r, None, MAX_API_ATTEMPTS - 1);
    assert_eq!(first.len(), 44);
    assert!(
        retry.starts_with(&first) && retry.ends_with("-r10"),
        "{retry}"
    );
    let at: DateTime<Utc> = "2026-11-29T03:00:41Z".parse().unwrap();
    let s = schedule_execution_name(at, "p", "a");
    assert!(s.starts_with("sched-20261129T0300-"), "{s}");
    for name in [first, retry, s] {
        assert!(is_build_id(&name), "{name}");
    }
}

#[test]
fn schedule_names_differ_by_agent_and_time() {
    let at: DateTime<Utc> = "2026-11-29T03:00:00Z".parse().unwrap();
    let later: DateTime<Utc> = "2026-11-30T03:00:00Z".parse().unwrap();
    assert_ne!(
        schedule_execution_name(at, "p", "a"),
        schedule_execution_name(at, "p", "b")
    );
    // Field boundaries: ("p-a", "b") is not ("p", "a-b").
    assert_ne!(
        schedule_execution_name(at, "p-a", "b"),
        schedule_execution_name(at, "p", "a-b")
    );
    assert_ne!(
        schedule_execution_name(at, "p", "a"),
        schedule_execution_name(later, "p", "a")
    );
}

#[test]
fn the_api_door_is_told_by_the_name_not_by_the_input() {
    let s = Submission {
        request: req(base()),
        source: Some(pin("v1", "ab")),
        limits: None,
        promote: None,
    };
    let first = api_execution_name(&s.request, s.source.as_ref(), 0);
    assert!(is_api_name(&first, &s));
    assert!(is_api_name(&format!("{first}-r2"), &s));
    assert!(is_api_name(&format!("{first}-r10"), &s));
    for other in [
        format!("{first}-r1"),
        format!("{first}-r11"),
        format!("{first}-r02"),
        format!("{first}x"),
        "api-0000".to_string(),
        "console-run".to_string(),
    ] {
        assert!(!is_api_name(&other, &s), "{other}");
    }
    let mut other_pin = s.clone();
    other_pin.source = Some(pin("v2", "ab"));
    assert!(!is_api_name(&first, &other_pin));
}

#[test]
fn a_bare_request_and_a_submission_open_to_the_same_request() {
    let ExecutionInput::Submission(bare) = open_input(&base()).unwrap() else {
        panic!("not a submission")
    };
    assert_eq!((bare.source, bare.limits), (None, None));
    let input = json!({"request": base(), "source": {"versionId": "v1", "sha256": "ab"},
                       "limits": {"deadlineSeconds": 5}});
    let ExecutionInput::Submission(s) = open_input(&input).unwrap() else {
        panic!("not a submission")
    };
    assert_eq!(s.request, bare.request);
    assert_eq!(s.source.unwrap().version_id, "v1");
    assert_eq!(u64::from(s.limits.unwrap().deadline_seconds.unwrap()), 5);
    // What the API sends is what ValidateRequest reads.
    let sent = serde_json::to_value(Submission {
        request: bare.request.clone(),
        source: None,
        limits: None,
        promote: None,
    })
    .unwrap();
    assert_eq!(
        open_input(&sent).unwrap(),
        ExecutionInput::Submission(Submission {
            request: bare.request,
            source: None,
            limits: None,
            promote: None
        })
    );
}

#[test]
fn trust_bearing_fields_in_an_input_are_refused_by_name() {
    let cases = [
        (json!({"request": base(), "trigger": "schedule"}), "trigger"),
        (
            json!({"request": base(), "submittedAt": "2999-01-01T00:00:00Z"}),
            "submittedAt",
        ),
        (json!({"request": {}, "extra": 1}), "extra"),
        (json!({"request": base(), "limits": 5}), "limits"),
        (
            json!({"request": base(), "limits": {"deadlineSeconds": 0}}),
            "limits.deadlineSeconds",
        ),
        (
            json!({"request": base(), "limits": {"poll": 1}}),
            "limits.poll",
        ),
        (json!({"rebuild": {"buildId": "b"}}), "rebuild.run"),
        (
            json!({"rebuild": {"buildId": "a/b", "run": "20261129T0300"}}),
            "rebuild",
        ),
    ];
    for (v, field) in cases {
        assert_eq!(open_input(&v).unwrap_err().field, field, "{v}");
    }
    // A bare request naming them is refused too: they are not request fields.
    let mut v = base();
    v["trigger"] = json!("schedule");
    assert_eq!(open_input(&v).unwrap_err().field, "trigger");
    let _ = Trigger::Console;
}

#[test]
fn a_rebuild_names_its_build_and_run() {
    let v = json!({"rebuild": {"buildId": "api-1", "run": "20261129T0300"}});
    assert_eq!(
        open_input(&v).unwrap(),
        ExecutionInput::Rebuild(RebuildOf {
            build_id: "api-1".into(),
            run: "20261129T0300".into()
        })
    );
    assert!(rebuild_pin(None, "ab").is_err());
    assert_eq!(rebuild_pin(Some("v1"), "ab").unwrap().version_id, "v1");
}

#[test]
fn a_promote_is_named_apart_from_its_request_and_from_another_builds_promote() {
    let plain = Submission {
        request: req(base()),
        source: Some(pin("v1", "ab")),
        limits: None,
        promote: None,
    };
    let of = |id: &str| Submission {
        promote: Some(PromoteOf {
            build_id: id.into(),
        }),
        ..plain.clone()
    };
    let (a, b) = (
        submission_name("api", &of("b-1"), 0),
        submission_name("api", &of("b-2"), 0),
    );
    assert_ne!(a, submission_name("api", &plain, 0));
    assert_ne!(a, b);
    assert!(is_api_name(&a, &of("b-1")) && !is_api_name(&a, &plain));
    assert_eq!(
        submission_name("api", &plain, 0),
        api_execution_name(&plain.request, plain.source.as_ref(), 0),
        "a plain submission keeps its name"
    );
}
