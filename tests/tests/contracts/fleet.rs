//! The fleet-rebuild definition (statemachine/rebuild.asl.json) against the code and the
//! template: its steps, retries, the Distributed Map's settings, the lock on every path.

use agentbuild_core::domain::fleet::RUN_TIMEOUT_SECONDS;
use agentbuild_core::error::ERROR_NAMES;
use agentbuild_core::model::RebuildStep;
use agentbuild_core::testing::catalog::FUNCTIONS;
use agentbuild_tests::{error_names, json, placeholders, read, FLEET_DEFINITION, TRANSIENT};
use serde_json::{json, Map, Value};

fn definition() -> Value {
    json(FLEET_DEFINITION)
}

fn states() -> Map<String, Value> {
    definition()["States"].as_object().unwrap().clone()
}

fn item_states() -> Map<String, Value> {
    states()["RebuildAgents"]["ItemProcessor"]["States"]
        .as_object()
        .unwrap()
        .clone()
}

/// Every Lambda task, the Map's item processor's included.
fn lambda_tasks() -> Vec<(String, Value)> {
    states()
        .into_iter()
        .chain(item_states())
        .filter(|(_, s)| s["Resource"] == "arn:aws:states:::lambda:invoke")
        .collect()
}

#[test]
fn every_lambda_step_is_a_rebuild_step_the_function_parses_and_retries_transient_errors() {
    let spec = FUNCTIONS.iter().find(|f| f.name == "rebuild").unwrap();
    let tasks = lambda_tasks();
    assert_eq!(tasks.len(), 6);
    for (name, task) in tasks {
        assert_eq!(
            task["Parameters"]["FunctionName"], "${RebuildFunctionArn}",
            "{name}"
        );
        assert!(
            spec.invoked_by
                .contains(name.trim_end_matches("AfterError")),
            "{name}"
        );
        // The payload, its paths filled with strings, is a step the function accepts.
        let mut payload = task["Parameters"]["Payload"].as_object().unwrap().clone();
        let paths: Vec<String> = payload
            .keys()
            .filter(|k| k.ends_with(".$"))
            .cloned()
            .collect();
        for k in paths {
            payload.remove(&k);
            let value = match k.trim_end_matches(".$") {
                "startedAt" => json!("2026-11-29T03:00:04.512Z"),
                "input" | "selection" => json!({}),
                "error" => Value::Null,
                _ => json!("x"),
            };
            payload.insert(k.trim_end_matches(".$").to_string(), value);
        }
        serde_json::from_value::<RebuildStep>(Value::Object(payload))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let retry = task["Retry"].as_array().unwrap();
        assert_eq!(retry[0]["ErrorEquals"], json!(TRANSIENT), "{name}");
        assert_eq!(retry[0]["JitterStrategy"], "FULL", "{name}");
        assert!(task["TimeoutSeconds"].as_u64().is_some(), "{name}");
    }
}

#[test]
fn every_error_name_is_emitted_by_the_code_or_aws() {
    let names = error_names(&definition());
    for n in names {
        assert!(
            ERROR_NAMES.contains(&n.as_str())
                || n.starts_with("States.")
                || n.starts_with("Lambda.")
                || n.starts_with("StepFunctions."),
            "{n}"
        );
    }
}

#[test]
fn the_run_times_out_as_the_lock_expects() {
    assert_eq!(
        definition()["TimeoutSeconds"].as_i64(),
        Some(RUN_TIMEOUT_SECONDS)
    );
}

#[test]
fn the_map_is_distributed_bounded_tolerant_and_reads_the_manifest() {
    let map = &states()["RebuildAgents"];
    assert_eq!(map["Type"], "Map");
    assert_eq!(
        map["ItemProcessor"]["ProcessorConfig"],
        json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"})
    );
    assert_eq!(map["MaxConcurrencyPath"], "$.plan.maxConcurrency");
    assert_eq!(
        map["ToleratedFailurePercentagePath"],
        "$.plan.toleratedFailurePercentage"
    );
    assert_eq!(
        map["ItemReader"]["Resource"],
        "arn:aws:states:::s3:getObject"
    );
    assert_eq!(map["ItemReader"]["ReaderConfig"]["InputType"], "JSON");
    assert_eq!(
        map["ItemReader"]["Parameters"]["Key.$"],
        "$.plan.manifest.key"
    );
    // The map's output is dropped: the summary reads the records.
    assert!(map["ResultPath"].is_null() && map.get("ResultPath").is_some());
    assert_eq!(map["Catch"][0]["Next"], "Summarize");

    let items = item_states();
    let rebuild = &items["Rebuild"];
    assert_eq!(
        rebuild["Resource"],
        "arn:aws:states:::states:startExecution.sync:2"
    );
    assert_eq!(
        rebuild["Parameters"]["StateMachineArn"],
        "${BuildStateMachineArn}"
    );
    assert_eq!(rebuild["Parameters"]["Name.$"], "$.name");
    assert_eq!(rebuild["Parameters"]["Input.$"], "$.input");
    assert_eq!(
        rebuild["Catch"][0],
        json!({"ErrorEquals": ["StepFunctions.ExecutionAlreadyExistsException"], "ResultPath": null, "Next": "ExistingRebuild"})
    );
    // Any other end of the child is looked up by name: a failed build still fails its item
    // (ExistingFailed, counted against the tolerance), a cancelled one ends it without failing.
    assert_eq!(
        rebuild["Catch"][1],
        json!({"ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": "ExistingRebuild"})
    );
    assert_eq!(rebuild["Catch"].as_array().unwrap().len(), 2);
    let outcome = items["ExistingOutcome"]["Choices"].as_array().unwrap();
    assert!(outcome.contains(
        &json!({"Variable": "$.existing.status", "StringEquals": "ABORTED", "Next": "RebuildCancelled"})
    ));
    assert_eq!(items["ExistingOutcome"]["Default"], "ExistingFailed");
    assert_eq!(items["ExistingFailed"]["Type"], "Fail");
    assert_eq!(items["RebuildCancelled"]["Type"], "Pass");
    assert_eq!(items["RebuildCancelled"]["End"], true);
}

#[test]
fn every_path_after_the_lock_is_taken_releases_it() {
    let s = states();
    for name in ["ListAgents", "Summarize"] {
        let c = s[name]["Catch"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(c["ErrorEquals"], json!(["States.ALL"]), "{name}");
        assert_eq!(c["Next"], "ReleaseLockAfterError", "{name}");
    }
    assert_eq!(s["Summarize"]["Next"], "ReleaseLock");
    assert_eq!(s["ReleaseLockAfterError"]["Next"], "RebuildFailed");
    assert_eq!(s["ReleaseLock"]["Next"], "Finished");
    assert_eq!(s["LockTaken"]["Default"], "Skipped");
    assert_eq!(s["Skipped"]["Type"], "Succeed");
    assert_eq!(s["RebuildAborted"]["Type"], "Fail");
}

#[test]
fn the_template_substitutes_every_placeholder_of_the_fleet_definition() {
    let t: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("template.yaml")).unwrap();
    let sm = &t["Resources"]["FleetRebuildStateMachine"]["Properties"];
    assert_eq!(sm["DefinitionUri"].as_str(), Some(FLEET_DEFINITION));
    let mut subs: Vec<String> = sm["DefinitionSubstitutions"]
        .as_mapping()
        .unwrap()
        .keys()
        .filter_map(|k| k.as_str().map(String::from))
        .collect();
    subs.sort();
    let mut want = placeholders(&read(FLEET_DEFINITION));
    want.sort();
    assert_eq!(subs, want);
}

#[test]
fn no_step_waits_longer_or_shorter_than_the_function_may_run() {
    let t: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("template.yaml")).unwrap();
    let function_timeout = t["Resources"]["RebuildFunction"]["Properties"]["Timeout"]
        .as_u64()
        .unwrap();
    for (name, task) in lambda_tasks() {
        let step = task["TimeoutSeconds"].as_u64().unwrap();
        assert!(
            step <= function_timeout,
            "{name}: {step} > {function_timeout}"
        );
    }
    // The steps that read a record per agent get the whole 15 minutes.
    let s = states();
    for name in ["ListAgents", "Summarize"] {
        assert_eq!(
            s[name]["TimeoutSeconds"].as_u64(),
            Some(function_timeout),
            "{name}"
        );
    }
}
