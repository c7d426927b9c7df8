//! The ASL definition against the code: error names, retries, catches, functions.

use agentbuild_core::error::ERROR_NAMES;
use agentbuild_core::testing::catalog::FUNCTIONS;
use agentbuild_tests::{error_names, json, placeholders, read, DEFINITION, TRANSIENT};
use serde_json::Value;

fn states() -> serde_json::Map<String, Value> {
    json(DEFINITION)["States"].as_object().unwrap().clone()
}

fn tasks() -> Vec<(String, Value)> {
    states()
        .into_iter()
        .filter(|(_, s)| s["Type"] == "Task")
        .collect()
}

#[test]
fn every_error_name_in_the_definition_is_emitted_by_the_code_or_aws() {
    let names = error_names(&json(DEFINITION));
    assert!(!names.is_empty());
    for n in names {
        assert!(
            ERROR_NAMES.contains(&n.as_str())
                || n.starts_with("States.")
                || n.starts_with("Lambda."),
            "{n} is neither emitted by the functions nor an AWS error name"
        );
    }
}

#[test]
fn every_task_retries_transient_errors_with_full_jitter() {
    for (name, task) in tasks() {
        let retry = task["Retry"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no Retry"));
        let r = retry
            .iter()
            .find(|r| {
                r["ErrorEquals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e == "Lambda.ServiceException")
            })
            .unwrap_or_else(|| panic!("{name} does not retry Lambda errors"));
        let listed: Vec<&str> = r["ErrorEquals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        assert_eq!(listed, TRANSIENT, "{name}");
        assert_eq!(r["JitterStrategy"], "FULL", "{name}");
        assert!(r["BackoffRate"].as_f64().unwrap() > 1.0, "{name}");
        assert!(r["MaxDelaySeconds"].as_u64().is_some(), "{name}");
        // Retries end well inside CodeBuild's 5-minute idempotency-token window.
        let (mut delay, mut total) = (r["IntervalSeconds"].as_f64().unwrap(), 0.0);
        for _ in 0..r["MaxAttempts"].as_u64().unwrap() {
            total += delay.min(r["MaxDelaySeconds"].as_f64().unwrap());
            delay *= r["BackoffRate"].as_f64().unwrap();
        }
        // Every task has a timeout; a callback wait's is the core's (never past the deadline).
        let Some(timeout) = task["TimeoutSeconds"].as_f64() else {
            assert!(
                task["TimeoutSecondsPath"].is_string(),
                "{name} has no timeout"
            );
            continue;
        };
        // StartBuild's function (StartBuild, StartLayerBuild): retries end inside CodeBuild's
        // idempotency window. The code path's file tasks stream up to 250 MB through /tmp:
        // their bound is the Lambda's own 15 minutes.
        let starts = task["Parameters"]["FunctionName"] == "${StartBuildFunctionArn}";
        let bound = if starts { 300.0 } else { 900.0 };
        assert!(total + 4.0 * timeout < bound, "{name}: {total}");
    }
}

/// The deploy step's tasks: their errors are the deployment's (`$.deployError`), never the
/// build's status.
const DEPLOY_TASKS: &[&str] = &["DeployRuntime", "CheckRuntime"];

/// The wait's failures are failed looks (counted, then a wait and CheckBuild), never an end:
/// a SendTaskFailure from whoever holds the token cannot end the build.
const WAKE_UPS: &[&str] = &["AwaitBuild"];

#[test]
fn every_task_past_validation_routes_all_errors_to_record_result() {
    for (name, task) in tasks() {
        if WAKE_UPS.contains(&name.as_str()) {
            continue;
        }
        let result_path = if DEPLOY_TASKS.contains(&name.as_str()) {
            "$.deployError"
        } else {
            "$.error"
        };
        if name == "ValidateRequest" || name == "RecordResult" {
            assert!(
                task.get("Catch").is_none(),
                "{name} must not catch: its errors end the execution"
            );
            continue;
        }
        let catches = task["Catch"].as_array().expect("Catch");
        let c = catches.last().unwrap();
        assert_eq!(
            c["ErrorEquals"],
            serde_json::json!(["States.ALL"]),
            "{name}"
        );
        assert_eq!(c["Next"], "RecordResult", "{name}");
        assert_eq!(c["ResultPath"], result_path, "{name}");
        // States.ALL does not match States.DataLimitExceeded: it is caught by name.
        assert!(
            catches.iter().any(|c| c["ErrorEquals"]
                == serde_json::json!(["States.DataLimitExceeded"])
                && c["Next"] == "RecordResult"),
            "{name} does not catch States.DataLimitExceeded"
        );
    }
}

#[test]
fn every_task_invokes_a_cataloged_function_by_placeholder() {
    for (name, task) in tasks() {
        let f = task["Parameters"]["FunctionName"].as_str().unwrap();
        let logical = f.trim_start_matches("${").trim_end_matches("Arn}");
        let spec = FUNCTIONS
            .iter()
            .find(|s| s.logical_id == logical)
            .unwrap_or_else(|| panic!("{name} invokes {f}, which no function in the catalog is"));
        assert!(
            spec.invoked_by.contains(name.as_str()),
            "{name} vs {}",
            spec.invoked_by
        );
    }
}

#[test]
fn placeholders_are_only_function_arns() {
    let found = placeholders(&read(DEFINITION));
    assert_eq!(
        found,
        [
            "ValidateRequestFunctionArn",
            "PrepareCodeFunctionArn",
            "StartBuildFunctionArn",
            "AwaitBuildFunctionArn",
            "CheckBuildFunctionArn",
            "AssembleArtifactFunctionArn",
            "DeployRuntimeFunctionArn",
            "CheckRuntimeFunctionArn",
            "RecordResultFunctionArn"
        ]
    );
}

#[test]
fn only_a_successful_build_with_deploy_deploys_and_a_failed_deployment_fails_deploy_failed() {
    let s = states();
    // No Choice of its own for either decision: each state entered is a transition, and a build
    // whose events arrive costs 10 with or without deploy's branch in the definition.
    for from in ["BuildStarted", "BuildFinished"] {
        let choices = s[from]["Choices"].as_array().unwrap();
        assert_eq!(choices[0]["Next"], "AwaitBuild", "{from}: RUNNING waits");
        // A code build's layer built: the artifact is assembled before any deploy.
        let code = serde_json::to_string(&choices[1]).unwrap();
        assert_eq!(choices[1]["Next"], "AssembleArtifact", "{from}");
        for needle in ["$.plan.artifact.kind", "\"code\"", "SUCCEEDED"] {
            assert!(code.contains(needle), "{from}'s code rule lacks {needle}");
        }
        let wanted = serde_json::to_string(&choices[2]).unwrap();
        for needle in ["$.plan.deploy", "SUCCEEDED", "REUSED", "DeployRuntime"] {
            assert!(
                wanted.contains(needle),
                "{from}'s deploy rule lacks {needle}"
            );
        }
        assert_eq!(s[from]["Default"], "RecordResult", "{from}");
    }
    assert!(s.get("DeployWanted").is_none() && s.get("DeployOutcome").is_none());
    assert_eq!(
        s["WaitForRuntime"]["SecondsPath"],
        "$.deployment.state.waitSeconds"
    );
    assert_eq!(s["RuntimeReady"]["Choices"][0]["Next"], "WaitForRuntime");
    assert_eq!(s["RuntimeReady"]["Default"], "RecordResult");
    assert_eq!(s["RecordResult"]["Next"], "Outcome");
    assert_eq!(
        s["RecordResult"]["ResultSelector"]["deploymentStatus.$"],
        "$.Payload.deploymentStatus"
    );
    // A failed deployment is decided before the build's own status (which may be SUCCEEDED).
    let first = serde_json::to_string(&s["Outcome"]["Choices"][0]).unwrap();
    assert!(first.contains("$.result.deploymentStatus") && first.contains("FAILED"));
    assert_eq!(s["Outcome"]["Choices"][0]["Next"], "DeployFailed");
    assert_eq!(
        s["DeployFailed"]["Error"],
        agentbuild_core::domain::deployment::DEPLOY_FAILED
    );
}

#[test]
fn the_wait_is_a_callback_with_a_bounded_fallback_and_every_status_has_an_end() {
    let s = states();
    let wait = &s["AwaitBuild"];
    assert_eq!(
        wait["Resource"],
        "arn:aws:states:::lambda:invoke.waitForTaskToken"
    );
    // Never a callback task without a timeout (it could wait for ever): the core's.
    assert_eq!(
        wait["TimeoutSecondsPath"],
        "$.build.observed.state.awaitSeconds"
    );
    assert_eq!(wait["Parameters"]["Payload"]["token.$"], "$$.Task.Token");
    // Timed out: CheckBuild looks once; it either ends the build or waits again.
    let timeout = &wait["Catch"][0];
    assert_eq!(
        timeout["ErrorEquals"],
        serde_json::json!(["States.Timeout", "States.HeartbeatTimeout"])
    );
    assert_eq!(timeout["Next"], "CheckBuild");
    assert_eq!(s["CheckBuild"]["Next"], "BuildFinished");
    // A completion only wakes the execution up: CheckBuild reads the build's end from CodeBuild.
    assert_eq!(wait["Next"], "CheckBuild");
    assert_eq!(s["BuildStarted"]["Choices"][0]["Next"], "AwaitBuild");
    assert_eq!(s["BuildFinished"]["Choices"][0]["Next"], "AwaitBuild");
    // Any other failure of the wait (a failed park, a SendTaskFailure, an oversized completion):
    // counted, then a wait as long as a callback wait, then a look.
    for catch in &wait["Catch"].as_array().unwrap()[1..] {
        assert_eq!(catch["Next"], "CheckFailed", "{catch}");
        assert_eq!(catch["ResultPath"], "$.checkError", "{catch}");
    }
    assert_eq!(
        s["WaitForBuild"]["SecondsPath"],
        "$.build.observed.state.awaitSeconds"
    );
    assert_eq!(s["WaitForBuild"]["Next"], "CheckBuild");
    let outcome = serde_json::to_string(&s["Outcome"]).unwrap();
    for status in [
        "SUCCEEDED",
        "REUSED",
        "FAILED",
        "FAULT",
        "STOPPED",
        "TIMED_OUT",
    ] {
        assert!(outcome.contains(status), "Outcome does not route {status}");
    }
    for (fail, error) in [
        ("BuildFailed", "FAILED"),
        ("BuildFault", "FAULT"),
        ("BuildStopped", "STOPPED"),
        ("BuildTimedOut", "TIMED_OUT"),
        ("PipelineError", "ERROR"),
    ] {
        assert_eq!(s[fail]["Type"], "Fail");
        assert_eq!(s[fail]["Error"], error);
    }
}

#[test]
fn the_execution_outlives_the_longest_build_codebuild_allows() {
    let timeout = json(DEFINITION)["TimeoutSeconds"].as_u64().unwrap();
    assert!(timeout > agentbuild_core::domain::fallback::LONGEST_BUILD_SECONDS);
}

/// Where a state writes its result: `ResultPath` (default `$`) for Task and Pass states, each
/// Catch's `ResultPath` (default `$`); Choice, Wait, Succeed and Fail write nothing.
fn writes(state: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if matches!(
        state["Type"].as_str(),
        Some("Task" | "Pass" | "Map" | "Parallel")
    ) {
        out.extend(result_path(state));
    }
    for c in state["Catch"].as_array().into_iter().flatten() {
        out.extend(result_path(c));
    }
    out
}

/// `ResultPath`: absent means `$`; `null` means the result is discarded (nothing written).
fn result_path(v: &Value) -> Option<String> {
    match v.get("ResultPath") {
        None => Some("$".to_string()),
        Some(Value::Null) => None,
        Some(p) => Some(p.as_str().unwrap().to_string()),
    }
}

fn covers_plan(path: &str) -> bool {
    path == "$" || path == "$.plan" || path.starts_with("$.plan.")
}

#[test]
fn no_state_but_validate_request_writes_the_plan() {
    for (name, state) in states() {
        if name == "ValidateRequest" {
            // Its result replaces the raw input with `{plan}`, once.
            assert_eq!(state["ResultPath"], "$");
            let selector = state["ResultSelector"].as_object().unwrap();
            assert_eq!(
                selector.keys().collect::<Vec<_>>(),
                ["plan.$"],
                "ValidateRequest keeps only the plan"
            );
            continue;
        }
        for path in writes(&state) {
            assert!(!covers_plan(&path), "{name} writes {path}, over $.plan");
        }
        if state["Type"] == "Task" {
            assert!(
                state.get("ResultSelector").is_some() || state["ResultPath"].is_null(),
                "{name} keeps only its own output (a ResultSelector) or nothing"
            );
        }
    }
}

#[test]
fn only_start_build_names_the_build_and_nothing_from_a_completion_is_kept() {
    let s = states();
    for (name, state) in &s {
        for path in writes(state) {
            let names_it = path == "$.build" || path == "$.build.codebuildBuildId";
            // StartLayerBuild is StartBuild's function for a code plan; NoLayerBuild names no
            // build (null: the code path without CodeBuild).
            let allowed = ["StartBuild", "StartLayerBuild", "NoLayerBuild"];
            assert!(
                !names_it || allowed.contains(&name.as_str()),
                "{name} writes {path}"
            );
        }
    }
    assert_eq!(
        s["NoLayerBuild"]["Result"],
        serde_json::json!({"codebuildBuildId": null})
    );
    assert_eq!(
        s["StartLayerBuild"]["Parameters"]["FunctionName"],
        s["StartBuild"]["Parameters"]["FunctionName"]
    );
    assert_eq!(s["AssembleArtifact"]["ResultPath"], "$.build.observed");
    // Whoever holds the task token (it is in the execution's history) may complete the wait with
    // any payload: it is discarded, and the build's state comes from CodeBuild (CheckBuild).
    let wait = &s["AwaitBuild"];
    assert!(wait["ResultPath"].is_null(), "{}", wait["ResultPath"]);
    assert!(wait.get("ResultSelector").is_none() && wait.get("OutputPath").is_none());
    assert_eq!(wait["Next"], "CheckBuild");
    // BuildFinished decides on CheckBuild's look alone: no choice reads a completion.
    assert_eq!(s["CheckBuild"]["Next"], "BuildFinished");
    let entering_build_finished: Vec<&String> = s
        .iter()
        .filter(|(_, st)| st["Next"] == "BuildFinished")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(entering_build_finished, ["CheckBuild"]);
    for task in ["AwaitBuild", "CheckBuild"] {
        assert_eq!(
            s[task]["Parameters"]["Payload"]["codebuildBuildId.$"], "$.build.codebuildBuildId",
            "{task} looks at the build StartBuild started"
        );
    }
}

/// Safe deploys add no state: the smoke test and the endpoint move are CheckRuntime's (its
/// `phase`), looping through the one Choice and Wait the runtime wait already has; CheckRuntime
/// gets the plan (the endpoint, the smoke test) and the build (its rank, for the ledger
/// re-read), and its Lambda outlives its longest smoke test.
#[test]
fn the_smoke_test_and_the_endpoint_move_ride_the_existing_deploy_loop() {
    let s = states();
    let check = &s["CheckRuntime"];
    let payload = &check["Parameters"]["Payload"];
    for key in ["plan.$", "build.$", "deployment.$"] {
        assert!(
            payload.get(key).is_some(),
            "CheckRuntime's Payload lacks {key}"
        );
    }
    assert_eq!(check["Next"], "RuntimeReady");
    assert_eq!(s["RuntimeReady"]["Choices"].as_array().unwrap().len(), 1);
    assert_eq!(s["RuntimeReady"]["Choices"][0]["Next"], "WaitForRuntime");
    assert_eq!(s["WaitForRuntime"]["Next"], "CheckRuntime");
    // Sorted: serde_json's map keeps insertion order when a workspace crate turns on `preserve_order`.
    let mut deploy_states: Vec<&String> = s
        .keys()
        .filter(|k| k.contains("Runtime") || k.contains("Endpoint") || k.contains("Smoke"))
        .collect();
    deploy_states.sort();
    assert_eq!(
        deploy_states,
        [
            "CheckRuntime",
            "DeployRuntime",
            "RuntimeReady",
            "WaitForRuntime"
        ],
        "a new deploy state: fold it into CheckRuntime"
    );
    let task_timeout = check["TimeoutSeconds"].as_u64().unwrap();
    assert!(
        task_timeout > agentbuild_core::domain::rollout::MAX_SMOKE_SECONDS + 10,
        "CheckRuntime's TimeoutSeconds {task_timeout} must outlive a smoke test"
    );
}
