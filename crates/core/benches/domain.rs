//! `make bench`: the hot pure paths, timed and printed (nothing asserted).
//! validate + plan run on every request (API and ValidateRequest); the record is serialized on
//! every look and at the end; the fallback policy bounds every wait.

use agentbuild_core::domain::fallback::{
    worst_case_events, Fallback, LONGEST_BUILD_SECONDS, MIN_CALLBACK_TIMEOUT_SECONDS,
};
use agentbuild_core::domain::plan::{BuildPlan, ExecutionFacts, SourceObject, Trigger};
use agentbuild_core::domain::record::{BuildRecord, BuildState, Phase};
use agentbuild_core::domain::request::{validate, SourcePolicy};
use agentbuild_core::domain::status::BuildStatus;
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;

fn time<T>(label: &str, n: u32, mut f: impl FnMut() -> T) {
    for _ in 0..n / 10 {
        black_box(f());
    }
    let start = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    let per = start.elapsed() / n;
    println!(
        "{label:<48} {:>9.2} µs/op {:>12.0} op/s",
        per.as_secs_f64() * 1e6,
        1.0 / per.as_secs_f64()
    );
}

fn main() {
    let policy = SourcePolicy::own("agentbuild-data");
    let args: serde_json::Map<String, serde_json::Value> = (0..32)
        .map(|i| (format!("ARG_{i}"), json!("x".repeat(256))))
        .collect();
    let request = json!({
        "project": "nexus-ai", "agent": "sales-assistant",
        "source": "s3://agentbuild-data/sources/nexus-ai/sales-assistant/abc.zip",
        "dockerfile": "docker/Dockerfile", "platform": "linux/arm64", "buildArgs": args,
        "force": false, "idempotencyKey": "k-1"
    });
    time("validate (32 build args of 256 B)", 20_000, || {
        validate(&request, &policy).unwrap()
    });

    let valid = validate(&request, &policy).unwrap();
    let plan = BuildPlan::new(
        valid.clone(),
        SourceObject {
            sha256: "ab".repeat(32),
            version_id: Some("v1".into()),
        },
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/agentbuild",
        ExecutionFacts {
            stack: "agentbuild".into(),
            build_id: "api-0123".into(),
            execution_arn:
                "arn:aws:states:us-east-1:123456789012:execution:agentbuild-build:api-0123".into(),
            trigger: Trigger::Api,
            requested_at: chrono::Utc::now(),
            submitted_at: None,
            deadline_seconds: None,
        },
    );
    time("plan (content-addressed tag)", 20_000, || {
        BuildPlan::new(
            valid.clone(),
            SourceObject {
                sha256: "ab".repeat(32),
                version_id: Some("v1".into()),
            },
            "repo",
            ExecutionFacts {
                stack: "agentbuild".into(),
                build_id: "b".into(),
                execution_arn: "a".into(),
                trigger: Trigger::Api,
                requested_at: plan.requested_at,
                submitted_at: None,
                deadline_seconds: None,
            },
        )
    });

    let now = chrono::Utc::now();
    let build = BuildState {
        status: BuildStatus::Succeeded,
        codebuild_build_id: Some("agentbuild:8d6e2f4a".into()),
        started_at: now,
        deadline: now,
        await_seconds: 0,
        polls: 12,
        current_phase: Some("COMPLETED".into()),
        phases: (0..11)
            .map(|i| Phase {
                name: format!("PHASE_{i}"),
                status: Some("SUCCEEDED".into()),
                started_at: Some(now),
                ended_at: Some(now),
                duration_seconds: Some(i),
            })
            .collect(),
        failed_phase: None,
        log_url: Some("https://console.aws.amazon.com/cloudwatch/home?region=us-east-1".into()),
        logs: None,
        image_digest: Some(format!("sha256:{}", "f".repeat(64))),
        image_uri: None,
        finished_at: Some(now),
        artifact: None,
        reused_from: None,
        image_tag: None,
        attestations_uri: None,
        error: None,
    };
    let state_bytes = serde_json::to_vec(&json!({"plan": plan, "build": build}))
        .unwrap()
        .len();
    let record = BuildRecord::new(&plan, Some(&build), None, now).to_json();
    println!(
        "{:<48} {:>9} bytes (Step Functions limit 262,144)",
        "state document {plan, build}", state_bytes
    );
    println!(
        "{:<48} {:>9} bytes",
        "record builds/<id>.json",
        record.len()
    );
    time("record: build + serialize", 20_000, || {
        BuildRecord::new(&plan, Some(&build), None, now).to_json()
    });
    time("record: parse", 20_000, || {
        serde_json::from_slice::<BuildRecord>(&record).unwrap()
    });

    for (label, fallback) in [
        ("600 s (default)", Fallback::default()),
        (
            "300 s (minimum)",
            Fallback::new(MIN_CALLBACK_TIMEOUT_SECONDS),
        ),
    ] {
        println!(
            "{:<48} {:>9} events (cap 25,000)",
            format!("history, 44 h build, every event lost, {label}"),
            worst_case_events(fallback, LONGEST_BUILD_SECONDS)
        );
    }
    println!(
        "{:<48} {:>9} events",
        "history, any length, its events arrive",
        worst_case_events(Fallback::default(), 0)
    );
}
