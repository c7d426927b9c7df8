//! Every sample in `events/` parses into its function's input type, and the request samples
//! are accepted or rejected as their names say: the samples cannot rot.

use agentbuild_core::domain::execution::{open_input, ExecutionInput};
use agentbuild_core::domain::fleet::parse_run_input;
use agentbuild_core::domain::request::SourcePolicy;
use agentbuild_core::model::{
    AwaitInput, CheckInput, CheckRuntimeInput, DeployInput, PlanState, RebuildStep, RecordEvent,
    ValidateInput,
};
use agentbuild_tests::root;
use serde::de::DeserializeOwned;
use std::path::PathBuf;

fn samples(function: &str) -> Vec<(String, String)> {
    let dir = root().join("events").join(function);
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p: PathBuf| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "events/{function} has no samples");
    out
}

fn parse_all<T: DeserializeOwned>(function: &str) -> Vec<(String, T)> {
    samples(function)
        .into_iter()
        .map(|(name, text)| {
            let v = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("events/{function}/{name}.json: {e}"));
            (name, v)
        })
        .collect()
}

#[test]
fn every_function_folder_has_a_known_input_type() {
    let known = [
        "validate-request",
        "start-build",
        "check-build",
        "await-build",
        "build-events",
        "record-result",
        "api",
        "rebuild",
        "fleet-rebuild",
        "deploy-runtime",
        "check-runtime",
        "build-finished",
        "prepare-code",
        "assemble-artifact",
    ];
    for entry in std::fs::read_dir(root().join("events")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            known.contains(&name.as_str()),
            "events/{name}: no test parses it"
        );
    }
}

const REPOSITORY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/agentbuild-agents";

#[test]
fn request_samples_are_accepted_or_rejected_as_named() {
    let policy = SourcePolicy {
        runtime_roles: agentbuild_core::domain::deploy_request::RolePolicy {
            default_role: "arn:aws:iam::123456789012:role/agentbuild-runtime".into(),
            allowed: vec![],
        },
        ..SourcePolicy::own("agentbuild-local")
    };
    let expected_field = |name: &str| match name {
        "invalid-agent-name" => "agent",
        "invalid-unknown-field" => "buildspec",
        "invalid-dockerfile-escape" => "dockerfile",
        "invalid-build-arg-key" => "buildArgs.X;rm -rf /",
        "invalid-platform" => "platform",
        "invalid-source-bucket" => "source",
        "invalid-missing-project" => "project",
        "invalid-reserved-build-arg" => "buildArgs.BUILDKIT_SYNTAX",
        "invalid-source-other-agent" => "source",
        "invalid-deploy-runtime-name" => "deploy.runtimeName",
        "invalid-deploy-unknown-field" => "deploy.image",
        "invalid-deploy-role" => "deploy.roleArn",
        // A console input cannot claim the schedule's door or a submission time (the first
        // unknown field is named: file order where serde_json preserves order, else sorted).
        "invalid-console-claims-schedule" => "submittedAt",
        // A request naming a prebuilt artifact: by digest only, in the stack's repository.
        "invalid-prebuilt-by-tag" | "invalid-prebuilt-other-repository" => "prebuilt.image",
        other => panic!("add the expected field of {other} here"),
    };
    for (name, input) in parse_all::<ValidateInput>("validate-request") {
        let result = open_input(&input.input).and_then(|opened| match opened {
            ExecutionInput::Submission(s) => policy.admit(&s.request),
            // Everything else of a rebuild comes from the record it names (ValidateRequest).
            ExecutionInput::Rebuild(_) => Ok(()),
            // The stack's rules; which build made it is the stack's index (ValidateRequest).
            ExecutionInput::Prebuilt(e) => e.admit(REPOSITORY, "agentbuild-local"),
        });
        if name.starts_with("valid-") {
            result.unwrap_or_else(|e| panic!("{name} should be valid: {e}"));
        } else {
            let err = result.expect_err(&name);
            assert_eq!(err.field, expected_field(&name), "{name}: {err}");
        }
    }
}

#[test]
fn api_and_schedule_samples_parse() {
    // As the api function receives them: through lambda_http's conversion to a Request.
    let api = samples("api");
    assert!(api.len() >= 4);
    for (name, text) in api {
        lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("events/api/{name}.json: {e}"));
    }
    let steps = parse_all::<RebuildStep>("rebuild");
    for step in ["lock", "plan", "existing", "summarize", "unlock"] {
        assert!(
            steps.iter().any(|(name, _)| name.starts_with(step)),
            "events/rebuild has no {step} sample"
        );
    }
}

#[test]
fn fleet_rebuild_inputs_are_valid_run_inputs() {
    for (name, input) in parse_all::<serde_json::Value>("fleet-rebuild") {
        parse_run_input(&input).unwrap_or_else(|e| panic!("fleet-rebuild/{name}: {e}"));
    }
}

#[test]
fn start_and_check_samples_parse() {
    assert!(parse_all::<agentbuild_core::model::StartInput>("start-build").len() >= 3);
    assert!(parse_all::<CheckInput>("check-build").len() >= 2);
}

#[test]
fn code_samples_parse_and_are_code_plans() {
    for (name, input) in parse_all::<PlanState>("prepare-code") {
        assert!(input.plan.code().is_some(), "{name}");
    }
    let assemble = parse_all::<agentbuild_core::model::AssembleInput>("assemble-artifact");
    assert!(assemble.len() >= 3);
    for (name, input) in assemble {
        assert!(input.state.plan.code().is_some(), "{name}");
    }
}

#[test]
fn deploy_samples_parse_and_ask_for_a_deployment() {
    for (name, input) in parse_all::<DeployInput>("deploy-runtime") {
        assert!(input.plan.deploy.is_some(), "{name}");
        assert!(input.build.status.is_success(), "{name}");
    }
    for (name, input) in parse_all::<CheckRuntimeInput>("check-runtime") {
        assert_eq!(input.deployment.status.as_str(), "DEPLOYING", "{name}");
        assert!(input.deployment.wait_seconds.is_some() && input.deployment.deadline.is_some());
    }
}

#[test]
fn record_samples_cover_every_final_status_and_both_event_kinds() {
    let mut statuses = Vec::new();
    let mut ended = Vec::new();
    let mut deploy_failures = 0;
    for (name, ev) in parse_all::<RecordEvent>("record-result") {
        match ev {
            RecordEvent::State(s) if s.state.deploy_error.is_some() => {
                assert!(s.state.build().expect(&name).status.is_success(), "{name}");
                deploy_failures += 1;
            }
            RecordEvent::State(s) if s.state.error.is_some() => statuses.push("ERROR".to_string()),
            RecordEvent::State(s) => {
                statuses.push(s.state.build().expect(&name).status.to_string())
            }
            RecordEvent::ExecutionEnded(e) => ended.push(e.detail.status.to_string()),
        }
    }
    statuses.sort();
    assert_eq!(
        statuses,
        [
            "ERROR",
            "FAILED",
            "FAULT",
            "REUSED",
            "STOPPED",
            "SUCCEEDED",
            "TIMED_OUT"
        ]
    );
    ended.sort();
    assert_eq!(ended, ["ABORTED", "TIMED_OUT"]);
    assert_eq!(
        deploy_failures, 1,
        "a sample of a deploy step's caught error"
    );
}

/// The outgoing `Build Finished` event: its envelope names our source and detail type, and its
/// detail is exactly the typed contract (it parses, and serializes back to the same JSON).
#[test]
fn build_finished_samples_are_the_typed_detail() {
    use agentbuild_core::contract::BuildFinished;
    for (name, event) in parse_all::<serde_json::Value>("build-finished") {
        assert_eq!(event["source"], BuildFinished::SOURCE, "{name}");
        assert_eq!(event["detail-type"], BuildFinished::DETAIL_TYPE, "{name}");
        let detail: BuildFinished = serde_json::from_value(event["detail"].clone())
            .unwrap_or_else(|e| panic!("events/build-finished/{name}.json: {e}"));
        assert_eq!(
            serde_json::to_value(&detail).unwrap(),
            event["detail"],
            "{name}"
        );
        assert_eq!(
            detail.record_key,
            format!("builds/{}.json", detail.build_id)
        );
    }
}

/// CodeBuild's events as AWS sends them (the shape of the CodeBuild user guide's samples, which
/// `aws_lambda_events` parses): each names this stack's build by ARN and carries the
/// `AGENTBUILD_BUILD_ID` StartBuild set; a foreign project's sample is there too.
#[test]
fn await_and_codebuild_event_samples_parse() {
    use agentbuild_core::handlers::build_events::{PHASE_CHANGE, STATE_CHANGE};
    use aws_lambda_events::codebuild::CodeBuildEvent;
    assert!(!parse_all::<AwaitInput>("await-build").is_empty());
    let mut kinds = Vec::new();
    for (name, ev) in parse_all::<CodeBuildEvent>("build-events") {
        assert_eq!(ev.source.as_deref(), Some("aws.codebuild"), "{name}");
        let kind = ev.detail_type.clone().unwrap();
        assert!(
            [STATE_CHANGE, PHASE_CHANGE].contains(&kind.as_str()),
            "{name}"
        );
        assert!(
            ev.detail.build_id.as_deref().unwrap().contains(":build/"),
            "{name}"
        );
        assert!(ev
            .detail
            .additional_information
            .environment
            .environment_variables
            .iter()
            .any(|v| v.name.as_deref() == Some("AGENTBUILD_BUILD_ID")));
        kinds.push((kind, ev.detail.build_status.clone()));
    }
    kinds.sort();
    assert_eq!(kinds.len(), 4);
    assert!(kinds.iter().any(|(k, _)| k == PHASE_CHANGE));
}
