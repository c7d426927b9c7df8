"""Tests of the local stack's glue (local/agentbuild_local, run by local/stack.py): definition
substitution, the Lambda bridge between moto's ASL engine and the runtime emulator, and the injection API.

The engine tests run moto's real engine in this process; a small stand-in answers as
`cargo lambda watch` does (200 with the result, 500 with {errorType, errorMessage}), so they need
no Rust build. Run: .venv/bin/python -m pytest local/
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
# `engine` and `codebuild` are fixtures below; their modules go by eng and cb.
from agentbuild_local import (agentcore as ac, codebuild as cb, config, engine as eng, events,  # noqa: E402
                              handlers, inject_server, lambda_bridge, process, workspace)
from agentbuild_local import codebuild_events as cb_events  # noqa: E402

FUNCTIONS = {"validate-request", "start-build", "await-build", "check-build", "deploy-runtime", "check-runtime",
             "record-result", "prepare-code", "assemble-artifact"}
RETRY = {
    "ErrorEquals": ["Lambda.ServiceException", "Lambda.TooManyRequestsException", "TransientAwsError"],
    "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0, "MaxDelaySeconds": 1,
    "JitterStrategy": "FULL",
}


# ---------------------------------------------------------------------------------------------
# Substitution
# ---------------------------------------------------------------------------------------------

def test_real_definition_substitutes_to_bare_function_names():
    text = config.DEFINITION.read_text()
    out = json.loads(eng.substitute(text, FUNCTIONS))
    names = {s["Parameters"]["FunctionName"] for s in out["States"].values() if s["Type"] == "Task"}
    assert names <= FUNCTIONS and names
    assert "${" not in json.dumps(out)


def test_substitution_changes_nothing_but_placeholders():
    text = config.DEFINITION.read_text()
    out = eng.substitute(text, FUNCTIONS)
    # Outside the placeholders the text is byte-identical.
    outside = eng.PLACEHOLDER.split(text)[0::2]
    pos = 0
    for piece in outside:
        found = out.index(piece, pos)
        assert pos == 0 or found > pos or piece == ""
        pos = found + len(piece)
    assert pos == len(out)


def test_substitution_rejects_unknown_placeholders_naming_each():
    text = '{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "${BogusArn}",' \
           ' "Parameters": {"FunctionName": "${NoSuchFunctionArn}"}, "End": true}}}'
    with pytest.raises(config.StackError) as e:
        eng.substitute(text, FUNCTIONS)
    assert "${BogusArn}" in str(e.value) and "${NoSuchFunctionArn}" in str(e.value)


def test_substitution_accepts_explicit_extras():
    out = eng.substitute('{"a": "${BucketName}", "b": "${CheckBuildFunctionArn}"}', FUNCTIONS,
                           {"BucketName": "agentbuild-local"})
    assert json.loads(out) == {"a": "agentbuild-local", "b": "check-build"}


def test_every_placeholder_of_the_real_definition_names_a_workspace_binary():
    binaries = workspace.workspace_binaries(config.ROOT / "Cargo.toml")
    eng.substitute(config.DEFINITION.read_text(), binaries)  # raises on an unknown one


def test_the_function_list_is_every_crate_under_functions_each_named_after_its_directory():
    import tomllib

    crates = {m.parent.name: m for m in (config.ROOT / "functions").glob("*/Cargo.toml")}
    assert set(workspace.LAMBDA_FUNCTIONS) == set(crates)
    # The pipeline's own, at least: a rule that lost one fails here.
    assert {"validate-request", "start-build", "check-build", "record-result", "api",
            "rebuild"} <= set(workspace.LAMBDA_FUNCTIONS)
    # Package and binary have the directory's name: `cargo lambda build -p <name>` (package.sh)
    # and the runtime emulator's route (/.rt/<name>, `agentbuild-handlers <name>`) rely on it.
    for name, manifest in crates.items():
        assert tomllib.loads(manifest.read_text())["package"]["name"] == name, manifest
    assert set(workspace.LAMBDA_FUNCTIONS) <= workspace.workspace_binaries(config.ROOT / "Cargo.toml")
    # `make package` builds the same ones.
    listed = subprocess.run(["bash", str(config.ROOT / "scripts" / "package.sh"), "--list"],
                            check=True, capture_output=True, text=True).stdout.split()
    assert sorted(listed) == sorted(workspace.LAMBDA_FUNCTIONS)


def test_a_new_crate_under_functions_is_a_function_here_and_in_package_sh(tmp_path):
    for name in ("api", "check-build", "new-one"):
        (tmp_path / "functions" / name).mkdir(parents=True)
        (tmp_path / "functions" / name / "Cargo.toml").write_text(f'[package]\nname = "{name}"\n')
    (tmp_path / "functions" / "notes").mkdir()  # no Cargo.toml: not a crate
    assert workspace.lambda_functions(tmp_path) == ("api", "check-build", "new-one")
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "package.sh"
    script.write_text((config.ROOT / "scripts" / "package.sh").read_text())
    listed = subprocess.run(["bash", str(script), "--list"], check=True, capture_output=True, text=True)
    assert sorted(listed.stdout.split()) == ["api", "check-build", "new-one"]


def test_handlers_build_in_one_cargo_call_with_the_test_features():
    m = Path("/w/Cargo.toml")
    # One call, one binary for every function; one test target selected, so features resolve as
    # in `cargo test --workspace`.
    assert handlers.build_command(m, ["api", "check-build"], reload=False) == [
        ["cargo", "build", "--manifest-path", str(m), "--workspace",
         "--bin", handlers.HANDLERS_BIN, "--test", handlers.FEATURE_PARITY_TEST]]
    assert (config.ROOT / "crates" / "codezip" / "tests" / f"{handlers.FEATURE_PARITY_TEST}.rs").is_file()
    assert (config.ROOT / "crates" / "core" / "src" / "bin" / f"{handlers.HANDLERS_BIN}.rs").is_file()
    # --reload: one call per bin, as cargo lambda watch runs them.
    assert handlers.build_command(m, ["api", "x"], reload=True) == [
        ["cargo", "build", "--manifest-path", str(m), "--bin", "api"],
        ["cargo", "build", "--manifest-path", str(m), "--bin", "x"]]


def test_the_package_modules_import_no_cycle_and_nothing_outside_the_standard_library():
    import ast

    package = Path(config.__file__).parent
    imports = {
        p.stem: {node.module for node in ast.walk(ast.parse(p.read_text()))
                 if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}
        for p in package.glob("*.py") if p.stem != "__init__"
    }
    done: list[str] = []
    while len(done) < len(imports):  # peel off the modules whose imports are all done
        ready = [m for m in imports if m not in done and imports[m] <= set(done)]
        assert ready, f"import cycle among {sorted(set(imports) - set(done))}"
        done += sorted(ready)
    # `down`, `status` and `env` run with the system python3: moto and boto3 load only when used.
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import agentbuild_local.cli; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'moto', 'boto3', 'botocore'}))")
    out = subprocess.run([sys.executable, "-c", probe, str(package.parent)], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_handler_settings_cover_every_env_var_in_the_contract():
    contract = (config.ROOT / "docs" / "contracts.md").read_text()
    table = contract.split("## Functions", 1)[1].split("##", 1)[0]
    import re

    wanted = set(re.findall(r"AGENTBUILD_[A-Z_]+", table))
    optional = {"AGENTBUILD_ALLOWED_SOURCE_BUCKETS"}  # "optional" in the contract
    provided = set(config.HANDLER_SETTINGS) | {"AGENTBUILD_REPOSITORY_URI", "AGENTBUILD_STATE_MACHINE_ARN"}
    assert wanted - optional - provided == set()


# ---------------------------------------------------------------------------------------------
# Engine glue, in process
# ---------------------------------------------------------------------------------------------

class FakeRuntime(BaseHTTPRequestHandler):
    """Answers like `cargo lambda watch`: `{"fail": {"type", "message"}}` -> 500 error body."""

    def log_message(self, *_):
        pass

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        fn = self.path.split("/")[3]
        if isinstance(payload, dict) and "fail" in payload:
            status, body = 500, {"errorType": payload["fail"]["type"],
                                 "errorMessage": payload["fail"]["message"]}
        else:
            status, body = 200, {"function": fn, "echo": payload}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def engine():
    eng.check_moto_version()
    runtime = ThreadingHTTPServer(("127.0.0.1", 0), FakeRuntime)
    threading.Thread(target=runtime.serve_forever, daemon=True).start()
    injector = lambda_bridge.Injector()
    inject = inject_server.make_inject_server(injector, 0)
    threading.Thread(target=inject.serve_forever, daemon=True).start()
    lambda_bridge.install_lambda_bridge(f"http://127.0.0.1:{runtime.server_address[1]}", injector)
    moto_server, port = eng.start_moto(0)
    endpoint = f"http://127.0.0.1:{port}"
    yield {
        "runtime_url": f"http://127.0.0.1:{runtime.server_address[1]}",
        "endpoint": endpoint,
        "sfn": eng.aws_client("stepfunctions", endpoint),
        "inject_url": f"http://127.0.0.1:{inject.server_address[1]}",
        "injector": injector,
    }
    moto_server.stop()
    inject.shutdown()
    runtime.shutdown()


@pytest.fixture(autouse=True)
def clean_injections(request):
    if "engine" in request.fixturenames:
        request.getfixturevalue("engine")["injector"].clear()


def machine(engine, definition: dict) -> str:
    text = eng.substitute(json.dumps(definition), FUNCTIONS)
    return engine["sfn"].create_state_machine(
        name=f"t-{uuid.uuid4().hex[:12]}", definition=text, roleArn=config.STATES_ROLE)["stateMachineArn"]


def task(fn_placeholder: str, **extra) -> dict:
    return {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${%s}" % fn_placeholder, "Payload.$": "$"},
            "ResultSelector": {"result.$": "$.Payload"}, "ResultPath": "$.out", **extra}


def run(engine, arn: str, payload: dict, timeout: float = 30) -> dict:
    name = f"x-{uuid.uuid4().hex[:12]}"
    ex = engine["sfn"].start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = engine["sfn"].describe_execution(executionArn=ex["executionArn"])
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.1)
    raise AssertionError(f"execution {name} still running after {timeout} s")


def inject(engine, function: str, entry) -> dict:
    req = urllib.request.Request(f"{engine['inject_url']}/functions/{function}/queue",
                                 data=json.dumps(entry).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def invocations(engine, function: str) -> list[dict]:
    url = f"{engine['inject_url']}/functions/{function}/invocations"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


CATCHING = {
    "StartAt": "A",
    "States": {
        "A": task("ValidateRequestFunctionArn", Retry=[RETRY], Next="Ok",
                  Catch=[{"ErrorEquals": ["InvalidRequest"], "ResultPath": "$.error", "Next": "Caught"}]),
        "Ok": {"Type": "Succeed"},
        "Caught": {"Type": "Pass", "Result": "caught", "ResultPath": "$.route", "Next": "Ok"},
    },
}


def test_handler_result_reaches_the_engine(engine):
    d = run(engine, machine(engine, CATCHING), {"hello": 1})
    assert d["status"] == "SUCCEEDED"
    out = json.loads(d["output"])
    assert out["out"]["result"] == {"function": "validate-request", "echo": {"hello": 1}}


def test_handler_error_type_is_the_state_error_and_catch_routes_on_it(engine):
    d = run(engine, machine(engine, CATCHING), {"fail": {"type": "InvalidRequest", "message": "agent: bad"}})
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])
    assert out["route"] == "caught"
    assert out["error"]["Error"] == "InvalidRequest"
    # As on AWS, the Cause of a lambda:invoke function error is the error payload as JSON text.
    assert json.loads(out["error"]["Cause"]) == {"errorType": "InvalidRequest", "errorMessage": "agent: bad"}


def test_uncaught_handler_error_fails_the_execution_with_its_name(engine):
    d = run(engine, machine(engine, CATCHING), {"fail": {"type": "AwsServiceError", "message": "no"}})
    assert d["status"] == "FAILED"
    assert d["error"] == "AwsServiceError"
    assert json.loads(d["cause"])["errorMessage"] == "no"


def test_injected_error_is_retried_then_the_real_handler_answers(engine):
    arn = machine(engine, CATCHING)
    assert inject(engine, "validate-request", {"error": {"type": "TransientAwsError", "message": "throttled"}})["queued"] == 1
    d = run(engine, arn, {"n": 1})
    assert d["status"] == "SUCCEEDED", d
    calls = invocations(engine, "validate-request")
    assert [c["injected"] for c in calls] == ["error", None]
    assert calls[0]["errorType"] == "TransientAwsError"


def test_a_delay_beside_an_error_holds_the_error(engine):
    arn = machine(engine, CATCHING)
    inject(engine, "validate-request", {"error": {"type": "TransientAwsError", "message": "slow"}, "delay": 0.5})
    t0 = time.monotonic()
    d = run(engine, arn, {"n": 8})
    assert d["status"] == "SUCCEEDED", d
    calls = invocations(engine, "validate-request")
    assert [c["injected"] for c in calls] == ["error", None]
    assert calls[0]["errorType"] == "TransientAwsError"
    assert time.monotonic() - t0 >= 0.5


def test_injected_service_error_is_a_lambda_prefixed_error(engine):
    arn = machine(engine, CATCHING)
    inject(engine, "validate-request", {"serviceError": {"code": "TooManyRequestsException", "status": 429},
                                        "times": 3})
    d = run(engine, arn, {"n": 2})
    # MaxAttempts 2: three attempts, all throttled.
    assert d["status"] == "FAILED"
    assert d["error"] == "Lambda.TooManyRequestsException"
    assert len(invocations(engine, "validate-request")) == 3


def test_injected_error_can_be_caught(engine):
    arn = machine(engine, CATCHING)
    inject(engine, "validate-request", {"error": {"type": "InvalidRequest", "message": "source: missing"}})
    out = json.loads(run(engine, arn, {"n": 3})["output"])
    assert out["route"] == "caught"


def test_injected_payload_replaces_the_result(engine):
    arn = machine(engine, CATCHING)
    inject(engine, "validate-request", {"payload": {"status": "FAULT"}})
    out = json.loads(run(engine, arn, {"n": 4})["output"])
    assert out["out"]["result"] == {"status": "FAULT"}
    assert invocations(engine, "validate-request")[0]["injected"] == "payload"


def test_injected_patch_is_merged_into_the_real_result(engine):
    arn = machine(engine, CATCHING)
    inject(engine, "validate-request", {"patch": {"echo": {"n": 50, "added": True}}})
    out = json.loads(run(engine, arn, {"n": 5, "keep": "me"})["output"])
    assert out["out"]["result"] == {"function": "validate-request",
                                    "echo": {"n": 50, "keep": "me", "added": True}}


def test_injection_with_match_applies_only_to_matching_invocations(engine):
    arn = machine(engine, CATCHING)
    inject(engine, "validate-request", {"payload": {"mine": True}, "match": "build-b"})
    a = json.loads(run(engine, arn, {"id": "build-a"})["output"])
    b = json.loads(run(engine, arn, {"id": "build-b"})["output"])
    assert a["out"]["result"]["echo"] == {"id": "build-a"}
    assert b["out"]["result"] == {"mine": True}


def test_injections_for_one_function_leave_others_alone(engine):
    definition = {
        "StartAt": "A",
        "States": {
            "A": task("ValidateRequestFunctionArn", Next="B"),
            "B": task("StartBuildFunctionArn", ResultPath="$.out2", End=True),
        },
    }
    arn = machine(engine, definition)
    inject(engine, "start-build", {"payload": {"second": True}})
    out = json.loads(run(engine, arn, {"n": 6})["output"])
    assert out["out"]["result"]["function"] == "validate-request"
    assert out["out2"]["result"] == {"second": True}


def test_direct_invokes_answer_as_an_invoke_through_motos_server(engine):
    """direct_invoke.py: the engine's lambda:invoke, the event delivery and the relay call the
    bridge in-process; each answer is the one an Invoke through moto's server gets."""
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    from agentbuild_local import direct_invoke

    over_http = direct_invoke._ORIGINALS["_invoke_lambda_function"]
    assert lambda_eval_utils._invoke_lambda_function is not over_http
    arn = json.loads(eng.substitute('"${ValidateRequestFunctionArn}"', FUNCTIONS))
    both = (over_http, lambda_eval_utils._invoke_lambda_function)

    def answers(times: int = 1) -> list[dict]:
        out = []
        for call in both:
            response = call({"FunctionName": arn, "Payload": b'{"n": 9}'}, config.REGION, None)
            response.pop("ResponseMetadata", None)
            out.append(response)
        return out

    http, direct = answers()
    assert http == direct and direct["Payload"] == {"function": "validate-request", "echo": {"n": 9}}
    inject(engine, "validate-request", {"error": {"type": "TransientAwsError", "message": "slow"}, "times": 2})
    http, direct = answers()
    assert http == direct and direct["FunctionError"] == "Unhandled"
    assert direct["Payload"]["errorType"] == "TransientAwsError"
    inject(engine, "validate-request", {"serviceError": {"code": "TooManyRequestsException", "status": 429,
                                                         "message": "slow down"}, "times": 2})
    errors = []
    for call in both:
        with pytest.raises(ClientError) as e:
            call({"FunctionName": arn, "Payload": b"{}"}, config.REGION, None)
        errors.append((e.value.response["Error"]["Code"], e.value.response["Error"]["Message"],
                       e.value.response["ResponseMetadata"]["HTTPStatusCode"]))
    assert errors[0] == errors[1] == ("TooManyRequestsException", "slow down", 429)
    # The delivery's and the relay's form: (payload, function error).
    assert direct_invoke.invoke("validate-request", b'{"k": 1}') == (
        json.dumps({"function": "validate-request", "echo": {"k": 1}}).encode(), None)
    assert [c["injected"] for c in invocations(engine, "validate-request")] == \
        [None, None, "error", "error", "serviceError", "serviceError", None]


def test_inject_api_rejects_malformed_entries(engine):
    for bad in ({}, {"error": "x"}, {"payload": 1, "error": {"type": "A"}}, {"payload": 1, "times": 0},
                {"payload": 1, "extra": 2}, {"payload": 1, "delay": 0}, {"delay": 1, "times": 0}):
        with pytest.raises(urllib.error.HTTPError) as e:
            inject(engine, "validate-request", bad)
        assert e.value.code == 400
    assert engine["injector"].pending() == {}


def test_runtime_down_is_a_visible_unretried_error(engine):
    lambda_bridge.install_lambda_bridge("http://127.0.0.1:9", engine["injector"])  # discard port: nothing listens
    try:
        d = run(engine, machine(engine, CATCHING), {"n": 7})
    finally:
        lambda_bridge.install_lambda_bridge(engine["runtime_url"], engine["injector"])
    assert d["status"] == "FAILED"
    assert d["error"] == "Local.RuntimeUnavailable"
    assert len(invocations(engine, "validate-request")) == 1


def test_start_execution_sync2_runs_a_child_and_a_taken_name_is_execution_already_exists(engine):
    """The fleet rebuild's integration: moto's `states:startExecution.sync:2` starts nothing
    without install_sfn_integration_fix (KeyError 'StateMachineArn' -> States.Runtime)."""
    eng.install_sfn_integration_fix()
    sfn = engine["sfn"]
    child = sfn.create_state_machine(
        name=f"child-{uuid.uuid4().hex[:8]}", roleArn=config.STATES_ROLE,
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
    parent = sfn.create_state_machine(
        name=f"parent-{uuid.uuid4().hex[:8]}", roleArn=config.STATES_ROLE, definition=json.dumps({
            "StartAt": "Start", "States": {
                "Start": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                          "Parameters": {"StateMachineArn": child["stateMachineArn"],
                                         "Name.$": "$.name", "Input.$": "$.input"},
                          "Catch": [{"ErrorEquals": ["StepFunctions.ExecutionAlreadyExistsException"],
                                     "ResultPath": "$.taken", "Next": "Taken"}],
                          "End": True},
                "Taken": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    name = f"c-{uuid.uuid4().hex[:8]}"
    first = run(engine, parent, {"name": name, "input": {"n": 1}})
    assert first["status"] == "SUCCEEDED", first
    out = json.loads(first["output"])
    assert out["Status"] == "SUCCEEDED" and out["Name"] == name and out["Output"] == {"n": 1}
    assert isinstance(out["StartDate"], int)  # epoch milliseconds, as Step Functions answers
    again = run(engine, parent, {"name": name, "input": {"n": 1}})
    assert again["status"] == "SUCCEEDED"
    assert json.loads(again["output"])["taken"]["Error"] == "StepFunctions.ExecutionAlreadyExistsException"


@pytest.mark.parametrize("tolerated,failing,caught", [(10, 1, False), (10, 2, True), (50, 5, False)])
def test_a_distributed_map_fails_past_its_tolerated_failure_percentage(engine, tolerated, failing, caught):
    """moto applies no ToleratedFailurePercentage: install_map_tolerance_fix does."""
    eng.install_map_tolerance_fix()
    processor = {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                 "StartAt": "C", "States": {
                     "C": {"Type": "Choice", "Default": "S",
                           "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "F"}]},
                     "F": {"Type": "Fail", "Error": "Boom"}, "S": {"Type": "Succeed"}}}
    arn = machine(engine, {"StartAt": "M", "States": {
        "M": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 3, "ResultPath": None,
              "ToleratedFailurePercentagePath": "$.tolerated", "ItemProcessor": processor,
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
              "End": True},
        "Caught": {"Type": "Pass", "End": True}}})
    out = run(engine, arn, {"items": [{"fail": i < failing} for i in range(10)], "tolerated": tolerated})
    assert out["status"] == "SUCCEEDED", out
    error = json.loads(out["output"]).get("error")
    if caught:
        assert error["Error"] == "States.ExceedToleratedFailureThreshold"
        assert error["Cause"].startswith(f"{failing} of 10 items failed")
    else:
        assert error is None


def test_executions_ending_timed_out_or_aborted_are_relayed_to_record_result(engine):
    arn = machine(engine, {
        "StartAt": "Long", "TimeoutSeconds": 1,
        "States": {"Long": {"Type": "Wait", "Seconds": 30, "End": True}},
    })
    stopping = threading.Event()
    relay = threading.Thread(target=events.relay_ended_executions,
                             args=(engine["endpoint"], arn, stopping), kwargs={"period": 0.2})
    relay.start()
    try:
        sfn = engine["sfn"]
        timed_out = sfn.start_execution(stateMachineArn=arn, name="slow-1", input="{}")["executionArn"]
        aborted = sfn.start_execution(stateMachineArn=arn, name="stop-1", input="{}")["executionArn"]
        sfn.stop_execution(executionArn=aborted)
        deadline = time.monotonic() + 15
        while len(invocations(engine, "record-result")) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stopping.set()
        relay.join()
    sent = {c["request"]["detail"]["name"]: c["request"] for c in invocations(engine, "record-result")}
    assert set(sent) == {"slow-1", "stop-1"}
    assert sent["slow-1"]["detail"]["status"] == "TIMED_OUT"
    assert sent["stop-1"]["detail"]["status"] == "ABORTED"
    ev = sent["slow-1"]
    assert ev["detail-type"] == "Step Functions Execution Status Change" and ev["source"] == "aws.states"
    assert ev["detail"]["executionArn"] == timed_out and isinstance(ev["detail"]["stopDate"], int)
    assert ev["time"].endswith("Z")


# ---------------------------------------------------------------------------------------------
# CodeBuild scripts (moto's CodeBuild, patched in this process)
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def codebuild(engine):
    scripts = cb.CodeBuildScripts()
    cb.install_codebuild_scripts(scripts)
    server = inject_server.make_inject_server(engine["injector"], 0, scripts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = eng.aws_client("codebuild", engine["endpoint"])
    project = f"p-{uuid.uuid4().hex[:8]}"
    client.create_project(name=project, source={"type": "NO_SOURCE", "location": "x"},
                          artifacts={"type": "NO_ARTIFACTS"}, serviceRole=config.CODEBUILD_ROLE,
                          environment={"type": "ARM_CONTAINER", "image": "i",
                                       "computeType": "BUILD_GENERAL1_SMALL"})
    yield {"client": client, "project": project, "scripts": scripts,
           "url": f"http://127.0.0.1:{server.server_address[1]}"}
    server.shutdown()


def cb_call(codebuild, method: str, path: str, body=None) -> tuple[int, dict]:
    req = urllib.request.Request(codebuild["url"] + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def start_build(codebuild, name: str) -> str:
    return codebuild["client"].start_build(
        projectName=codebuild["project"], sourceTypeOverride="S3", sourceLocationOverride=f"bkt/{name}.zip",
        environmentVariablesOverride=[{"name": "AGENTBUILD_BUILD_ID", "value": name, "type": "PLAINTEXT"}],
    )["build"]["id"]


def get_build(codebuild, build_id: str) -> dict:
    return codebuild["client"].batch_get_builds(ids=[build_id])["builds"][0]


def test_start_build_keeps_the_overrides_moto_drops(codebuild):
    b = get_build(codebuild, start_build(codebuild, f"plain-{uuid.uuid4().hex[:6]}"))
    assert b["source"]["location"].startswith("bkt/plain-")
    assert b["environment"]["environmentVariables"][0]["name"] == "AGENTBUILD_BUILD_ID"


def test_a_held_build_runs_until_stopped_then_stays_stopped(codebuild):
    assert cb_call(codebuild, "POST", "/codebuild/hold", {"match": "held-1"})[0] == 200
    build_id = start_build(codebuild, "held-1")
    other = start_build(codebuild, "free-1")
    for _ in range(3):
        b = get_build(codebuild, build_id)
        assert (b["buildStatus"], b["currentPhase"], b["buildComplete"]) == ("IN_PROGRESS", "BUILD", False)
        assert b["phases"][-1]["phaseType"] == "BUILD" and "phaseStatus" not in b["phases"][-1]
    assert get_build(codebuild, other)["buildStatus"] == "SUCCEEDED"  # unmatched: moto's own
    codebuild["client"].stop_build(id=build_id)
    for _ in range(2):
        b = get_build(codebuild, build_id)
        assert (b["buildStatus"], b["currentPhase"], b["buildComplete"]) == ("STOPPED", "COMPLETED", True)
        build = next(p for p in b["phases"] if p["phaseType"] == "BUILD")
        assert build["phaseStatus"] == "STOPPED"
    state = cb_call(codebuild, "GET", "/codebuild")[1]
    assert {"id": build_id, "match": "held-1", "polls": 3, "state": "STOPPED"} in state["builds"]


def test_a_scripted_failure_runs_for_n_polls_then_fails_in_its_phase(codebuild):
    cb_call(codebuild, "POST", "/codebuild/scripts",
            {"match": "fail-1", "polls": 2, "status": "FAULT", "failedPhase": "PROVISIONING"})
    build_id = start_build(codebuild, "fail-1")
    assert [get_build(codebuild, build_id)["buildStatus"] for _ in range(4)] == \
        ["IN_PROGRESS", "IN_PROGRESS", "FAULT", "FAULT"]
    b = get_build(codebuild, build_id)
    failed = [p for p in b["phases"] if p.get("phaseStatus") not in (None, "SUCCEEDED")]
    assert [(p["phaseType"], p["phaseStatus"]) for p in failed] == [("PROVISIONING", "FAULT")]
    assert failed[0]["contexts"][0]["statusCode"] == "CLIENT_ERROR"
    assert b["exportedEnvironmentVariables"] == []


def test_a_scripted_success_exports_variables_and_release_ends_a_hold(codebuild):
    cb_call(codebuild, "POST", "/codebuild/scripts",
            {"match": "rel-1", "hold": True, "exported": {"IMAGE_DIGEST": "sha256:ab"}})
    build_id = start_build(codebuild, "rel-1")
    assert get_build(codebuild, build_id)["buildStatus"] == "IN_PROGRESS"
    assert cb_call(codebuild, "POST", "/codebuild/release", {"match": "rel-1"})[1] == {"released": [build_id]}
    b = get_build(codebuild, build_id)
    assert b["buildStatus"] == "SUCCEEDED" and b["currentPhase"] == "COMPLETED"
    assert b["exportedEnvironmentVariables"] == [{"name": "IMAGE_DIGEST", "value": "sha256:ab"}]


def test_clearing_scripts_releases_held_builds_and_unscripted_stops_stick(codebuild):
    cb_call(codebuild, "POST", "/codebuild/hold", {"match": "clr-1"})
    held = start_build(codebuild, "clr-1")
    status, body = cb_call(codebuild, "DELETE", "/")
    assert status == 200 and held in body["released"]
    assert cb_call(codebuild, "GET", "/codebuild")[1]["scripts"] == []
    assert get_build(codebuild, held)["buildStatus"] == "SUCCEEDED"
    # Unscripted, stopped before anyone looked: moto alone would say SUCCEEDED next.
    plain = start_build(codebuild, "clr-2")
    codebuild["client"].stop_build(id=plain)
    assert get_build(codebuild, plain)["buildStatus"] == "STOPPED"


class RecordedEvents(cb.EventDelivery):
    """The delivery, keeping what it would hand to build-events."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, dict]] = []

    def send(self, request_text: str, events: list[dict]) -> None:
        self.sent += [(request_text, e) for e in events]

    def of(self, build_id: str) -> list[dict]:
        return [e for _, e in self.sent if e["detail"]["build-id"].endswith(f"build/{build_id}")]


CODEBUILD_TIME = re.compile(r"[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d\d:\d\d [AP]M")


def check_event_shape(e: dict, codebuild) -> None:
    """As AWS sends them (events/build-events/*.json, aws_lambda_events' CodeBuildEvent)."""
    assert e["source"] == "aws.codebuild" and e["version"] == "0" and e["account"] == config.ACCOUNT
    d = e["detail"]
    assert d["project-name"] == codebuild["project"]
    assert re.fullmatch(rf"arn:aws:codebuild:{config.REGION}:{config.ACCOUNT}:build/{codebuild['project']}:[0-9a-f-]+",
                        d["build-id"]) and e["resources"] == [d["build-id"]]
    info = d["additional-information"]
    for key in ("artifact", "environment", "timeout-in-minutes", "build-complete", "build-start-time",
                "source", "logs", "phases"):
        assert key in info, key
    assert CODEBUILD_TIME.fullmatch(info["build-start-time"])
    assert {"name": "AGENTBUILD_BUILD_ID", "type": "PLAINTEXT"}.items() <= info["environment"]["environment-variables"][0].items()
    for p in info["phases"]:
        assert CODEBUILD_TIME.fullmatch(p["start-time"]) and p["phase-type"]
        if "end-time" in p:
            assert CODEBUILD_TIME.fullmatch(p["end-time"]) and p["phase-status"]
    if e["detail-type"] == cb_events.PHASE_CHANGE:
        assert CODEBUILD_TIME.fullmatch(d["completed-phase-end"]) and d["completed-phase-status"]
    else:
        assert e["detail-type"] == cb_events.STATE_CHANGE and d["build-status"]


def test_a_timed_build_ends_by_itself_and_announces_its_phases_and_end(codebuild):
    sent = RecordedEvents()
    codebuild["scripts"].events = sent
    try:
        cb_call(codebuild, "POST", "/codebuild/scripts", {"match": "timed-1", "seconds": 0.3})
        build_id = start_build(codebuild, "timed-1")
        started = sent.of(build_id)
        assert [e["detail"].get("completed-phase") for e in started[:-1]] == list(cb.CODEBUILD_PHASES[:6])
        assert started[-1]["detail"]["build-status"] == "IN_PROGRESS"
        time.sleep(1)  # no look at the build: its timer ends it
        events = sent.of(build_id)
        for e in events:
            check_event_shape(e, codebuild)
        assert [e["detail"].get("completed-phase") for e in events[7:-1]] == \
            ["BUILD", "POST_BUILD", "UPLOAD_ARTIFACTS", "FINALIZING"]
        end = events[-1]["detail"]
        assert (end["build-status"], end["current-phase"]) == ("SUCCEEDED", "COMPLETED")
        assert end["additional-information"]["build-complete"] is True
        assert get_build(codebuild, build_id)["buildStatus"] == "SUCCEEDED"
    finally:
        codebuild["scripts"].events = None


def test_release_ends_a_held_build_at_once_and_stop_announces_stopped(codebuild):
    sent = RecordedEvents()
    codebuild["scripts"].events = sent
    try:
        cb_call(codebuild, "POST", "/codebuild/hold", [{"match": "relnow-1", "status": "FAILED"},
                                                      {"match": "relnow-2"}])
        released, stopped = start_build(codebuild, "relnow-1"), start_build(codebuild, "relnow-2")
        cb_call(codebuild, "POST", "/codebuild/release", {"match": "relnow-1"})
        # Ended at the release, not at a later look.
        assert sent.of(released)[-1]["detail"]["build-status"] == "FAILED"
        codebuild["client"].stop_build(id=stopped)
        assert sent.of(stopped)[-1]["detail"]["build-status"] == "STOPPED"
        assert sum(e["detail-type"] == cb_events.STATE_CHANGE for e in sent.of(stopped)) == 2
    finally:
        codebuild["scripts"].events = None


def test_dropped_events_never_reach_the_target_others_do():
    d = cb.EventDelivery()
    got: list[dict] = []
    d._invoke = lambda body: (got.append(json.loads(body)), (b"null", None))[1]
    threading.Thread(target=d._work, daemon=True).start()
    event = lambda n: {"detail-type": cb_events.STATE_CHANGE, "n": n}  # noqa: E731
    d.set_drop(True, "lost-1")
    d.send('{"x": "lost-1"}', [event(1)])
    d.send('{"x": "kept-1"}', [event(2)])
    d.set_drop(True)
    d.send('{"x": "kept-2"}', [event(3)])
    d.set_drop(False)
    d.send('{"x": "lost-1"}', [event(4)])
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e["n"] for e in got] == [2, 4] and d.status()["dropped"] == 2


def test_codebuild_scripts_reject_malformed_entries(codebuild):
    for bad in ({}, {"match": 1}, {"match": "x", "status": "RUNNING"}, {"match": "x", "polls": -1},
                {"match": "x", "failedPhase": "COMPLETED"}, {"match": "x", "exported": {"A": 1}},
                {"match": "x", "colour": "red"}, {"match": "x", "hold": "yes"},
                {"match": "x", "seconds": -1}, {"match": "x", "seconds": 2, "polls": 1}):
        status, body = cb_call(codebuild, "POST", "/codebuild/scripts", bad)
        assert status == 400, bad
    assert cb_call(codebuild, "POST", "/codebuild/release", {"match": 3})[0] == 400


# ---------------------------------------------------------------------------------------------
# The real stack: real definition, real handlers (opt-in: it builds the handlers)
# ---------------------------------------------------------------------------------------------

@pytest.mark.skipif(os.environ.get("AGENTBUILD_LOCAL_E2E") != "1",
                    reason="set AGENTBUILD_LOCAL_E2E=1 (builds the handlers, starts a real stack)")
def test_real_stack_runs_the_real_definition_and_stops_cleanly(tmp_path):
    import boto3  # noqa: F401 - fail early if the venv is incomplete

    cmd = [sys.executable, str(config.STACK_PY)]
    env = dict(os.environ, AGENTBUILD_LOCAL_DIR=str(tmp_path))
    subprocess.run(cmd + ["up"], env=env, check=True, timeout=1200)
    pids = [int((tmp_path / f"{n}.pid").read_text()) for n in ("stack", "watch")]
    try:
        e = config.read_env(tmp_path / "env")
        s3 = eng.aws_client("s3", e["AWS_ENDPOINT_URL"])
        sfn = eng.aws_client("stepfunctions", e["AWS_ENDPOINT_URL"])
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("Dockerfile", "FROM scratch\n")
        key = "sources/demo/sample/e2e.zip"
        s3.put_object(Bucket=e["AGENTBUILD_BUCKET"], Key=key, Body=buf.getvalue())

        def execute(name: str, request: dict) -> dict:
            arn = sfn.start_execution(stateMachineArn=e["AGENTBUILD_STATE_MACHINE_ARN"], name=name,
                                      input=json.dumps(request))["executionArn"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                d = sfn.describe_execution(executionArn=arn)
                if d["status"] != "RUNNING":
                    return d
                time.sleep(0.2)
            raise AssertionError(f"{name} still running")

        good = {"project": "demo", "agent": "sample", "source": f"s3://{e['AGENTBUILD_BUCKET']}/{key}"}
        bad = execute("e2e-bad", dict(good, project="Demo"))
        assert (bad["status"], bad["error"]) == ("FAILED", "InvalidRequest")
        assert "project" in json.loads(bad["cause"])["errorMessage"]

        ok = execute("e2e-ok", good)
        assert ok["status"] == "SUCCEEDED", ok
        assert json.loads(ok["output"])["status"] == "SUCCEEDED"
        s3.head_object(Bucket=e["AGENTBUILD_BUCKET"], Key="builds/e2e-ok.json")
    finally:
        subprocess.run(cmd + ["down"], env=env, check=True, timeout=60)
    assert not list(tmp_path.glob("*.pid"))
    assert not any(process.alive(p) for p in pids)


def test_an_unscripted_success_exports_a_deterministic_digest_of_its_image(codebuild):
    def started(tag: str) -> str:
        return codebuild["client"].start_build(
            projectName=codebuild["project"], sourceTypeOverride="S3", sourceLocationOverride="bkt/d.zip",
            environmentVariablesOverride=[
                {"name": "AGENTBUILD_IMAGE_REPOSITORY", "value": "1.dkr.ecr.us-east-1.amazonaws.com/r", "type": "PLAINTEXT"},
                {"name": "AGENTBUILD_IMAGE_TAG", "value": tag, "type": "PLAINTEXT"}])["build"]["id"]

    def exported(build_id: str) -> dict:
        b = get_build(codebuild, build_id)
        assert b["buildStatus"] == "SUCCEEDED"
        return {v["name"]: v["value"] for v in b["exportedEnvironmentVariables"]}

    one, again, other = exported(started("a-1")), exported(started("a-1")), exported(started("a-2"))
    assert one == again and one["IMAGE_DIGEST"] != other["IMAGE_DIGEST"]
    assert one["IMAGE_DIGEST"].startswith("sha256:") and len(one["IMAGE_DIGEST"]) == 71
    assert one["IMAGE_URI"] == "1.dkr.ecr.us-east-1.amazonaws.com/r@" + one["IMAGE_DIGEST"]


def test_a_successful_build_pushes_its_image_with_the_exported_digest(codebuild, engine):
    ecr = eng.aws_client("ecr", engine["endpoint"])
    repo = ecr.create_repository(repositoryName=f"r-{uuid.uuid4().hex[:8]}",
                                 imageTagMutability="IMMUTABLE")["repository"]
    build_id = codebuild["client"].start_build(
        projectName=codebuild["project"], sourceTypeOverride="S3", sourceLocationOverride="bkt/d.zip",
        environmentVariablesOverride=[
            {"name": "AGENTBUILD_IMAGE_REPOSITORY", "value": repo["repositoryUri"], "type": "PLAINTEXT"},
            {"name": "AGENTBUILD_IMAGE_TAG", "value": "p.a-1", "type": "PLAINTEXT"}])["build"]["id"]
    b = get_build(codebuild, build_id)
    digest = {v["name"]: v["value"] for v in b["exportedEnvironmentVariables"]}["IMAGE_DIGEST"]
    get_build(codebuild, build_id)  # a later look pushes nothing more
    images = ecr.describe_images(repositoryName=repo["repositoryName"])["imageDetails"]
    assert [(i["imageTags"], i["imageDigest"]) for i in images] == [(["p.a-1"], digest)]


@pytest.fixture(scope="module")
def agentcore(engine):
    scripts = ac.AgentCoreScripts()
    ac.install_agentcore_patches(scripts)
    server = inject_server.make_inject_server(engine["injector"], 0, None, agentcore=scripts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"client": eng.aws_client("bedrock-agentcore-control", engine["endpoint"]),
           "url": f"http://127.0.0.1:{server.server_address[1]}"}
    server.shutdown()


def runtime_args(name: str, image: str) -> dict:
    return dict(agentRuntimeName=name, agentRuntimeArtifact={"containerConfiguration": {"containerUri": image}},
                roleArn=config.RUNTIME_ROLE, networkConfiguration={"networkMode": "PUBLIC"})


def test_an_updated_runtime_becomes_ready_and_keeps_its_tags(agentcore):
    c = agentcore["client"]
    name = f"rt_{uuid.uuid4().hex[:8]}"
    rt = c.create_agent_runtime(**runtime_args(name, "r@sha256:01"), tags={"agentbuild:agent": "a"})
    rid = rt["agentRuntimeId"]
    # Two looks before READY (the deploy step's wait loop runs), as after an update.
    assert [c.get_agent_runtime(agentRuntimeId=rid)["status"] for _ in range(2)] == ["CREATING", "READY"]
    args = runtime_args(name, "r@sha256:02")
    del args["agentRuntimeName"]
    up = c.update_agent_runtime(agentRuntimeId=rid, **args)
    assert (up["status"], up["agentRuntimeVersion"]) == ("UPDATING", "2")
    assert [c.get_agent_runtime(agentRuntimeId=rid)["status"] for _ in range(2)] == ["UPDATING", "READY"]
    got = c.get_agent_runtime(agentRuntimeId=rid)
    assert got["agentRuntimeArtifact"]["containerConfiguration"]["containerUri"] == "r@sha256:02"
    assert c.list_tags_for_resource(resourceArn=got["agentRuntimeArn"])["tags"] == {"agentbuild:agent": "a"}


def test_a_deleted_runtime_is_gone_with_its_tags(agentcore):
    c = agentcore["client"]
    name = f"rt_{uuid.uuid4().hex[:8]}"
    rt = c.create_agent_runtime(**runtime_args(name, "r@sha256:01"), tags={"agentbuild:agent": "a"})
    rid, arn = rt["agentRuntimeId"], rt["agentRuntimeArn"]
    assert c.delete_agent_runtime(agentRuntimeId=rid)["status"] == "DELETING"
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.get_agent_runtime(agentRuntimeId=rid)
    assert name not in [r["agentRuntimeName"] for r in c.list_agent_runtimes()["agentRuntimes"]]
    assert c.list_tags_for_resource(resourceArn=arn).get("tags", {}) == {}
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.delete_agent_runtime(agentRuntimeId=rid)


def test_a_script_fails_the_runtime_its_request_matches_with_a_reason(agentcore):
    c = agentcore["client"]
    name = f"rt_{uuid.uuid4().hex[:8]}"
    status, body = cb_call(agentcore, "POST", "/agentcore/scripts",
                           {"match": name, "status": "CREATE_FAILED", "failureReason": "no arm64 image"})
    assert status == 200, body
    rid = c.create_agent_runtime(**runtime_args(name, "r@sha256:01"))["agentRuntimeId"]
    got = c.get_agent_runtime(agentRuntimeId=rid)
    assert (got["status"], got["failureReason"]) == ("CREATE_FAILED", "no arm64 image")
    other = c.create_agent_runtime(**runtime_args(name.replace("rt_", "ok_"), "r@sha256:01"))
    assert "failureReason" not in c.get_agent_runtime(agentRuntimeId=other["agentRuntimeId"])
    assert cb_call(agentcore, "POST", "/agentcore/scripts", {"match": name, "status": "READY"})[0] == 400
    assert cb_call(agentcore, "DELETE", "/agentcore/scripts")[0] == 200


# ---------------------------------------------------------------------------------------------
# CodeBuild's times: what really passed (moto makes up an end 1–5 minutes after the start)
# ---------------------------------------------------------------------------------------------

def seconds_between(a, b) -> float:
    return (b - a).total_seconds()


def check_times_passed(b: dict, started_wall: float, ended_wall: float) -> None:
    """startTime/endTime and each phase's start, end and duration are the times that passed
    between two wall-clock readings around the build's start and end (within a second)."""
    start, end = b["startTime"], b["endTime"]
    took = seconds_between(start, end)
    assert abs(start.timestamp() - started_wall) < 1.0, (start, started_wall)
    assert abs(end.timestamp() - ended_wall) < 1.0, (end, ended_wall)
    assert end.timestamp() <= time.time() + 0.5, "an end in the future"
    names = [p["phaseType"] for p in b["phases"]]
    assert len(names) == len(set(names)), f"a phase twice: {names}"
    timed = [p for p in b["phases"] if "endTime" in p]
    assert all(start <= p["startTime"] <= p["endTime"] <= end for p in timed), b["phases"]
    for p in timed:
        assert abs(p["durationInSeconds"] - seconds_between(p["startTime"], p["endTime"])) < 1.0, p
    assert abs(sum(p["durationInSeconds"] for p in timed) - took) < 1.0, (b["phases"], took)


def test_an_unscripted_build_reports_the_times_that_passed_at_every_look(codebuild):
    t0 = time.time()
    build_id = start_build(codebuild, f"times-{uuid.uuid4().hex[:6]}")
    time.sleep(1.5)
    t1 = time.time()
    first = get_build(codebuild, build_id)
    assert first["buildStatus"] == "SUCCEEDED"
    check_times_passed(first, t0, t1)
    assert seconds_between(first["startTime"], first["endTime"]) >= 1.4
    time.sleep(1.2)
    again = get_build(codebuild, build_id)
    assert (again["endTime"], again["phases"]) == (first["endTime"], first["phases"]), "it ended once"


def test_an_unscripted_build_stopped_running_ends_when_stopped(codebuild):
    t0 = time.time()
    build_id = start_build(codebuild, f"times-stop-{uuid.uuid4().hex[:6]}")
    time.sleep(1.2)
    t1 = time.time()
    codebuild["client"].stop_build(id=build_id)
    time.sleep(1.0)
    b = get_build(codebuild, build_id)
    assert b["buildStatus"] == "STOPPED"
    check_times_passed(b, t0, t1)


def test_a_held_build_released_reports_the_times_that_passed(codebuild):
    name = f"times-held-{uuid.uuid4().hex[:6]}"
    cb_call(codebuild, "POST", "/codebuild/hold", {"match": name})
    t0 = time.time()
    build_id = start_build(codebuild, name)
    time.sleep(2.2)
    t1 = time.time()
    assert cb_call(codebuild, "POST", "/codebuild/release", {"match": name})[1] == {"released": [build_id]}
    time.sleep(1.0)
    b = get_build(codebuild, build_id)
    assert b["buildStatus"] == "SUCCEEDED"
    check_times_passed(b, t0, t1)
    build = next(p for p in b["phases"] if p["phaseType"] == "BUILD")
    assert build["durationInSeconds"] == 2, build


def test_stop_execution_keeps_its_error_and_cause_as_on_aws(engine):
    """moto drops StopExecution's error and cause; the closer of a cancelled build reads them."""
    eng.install_stop_execution_fix()
    arn = machine(engine, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}}})
    sfn = engine["sfn"]
    running = sfn.start_execution(stateMachineArn=arn, name=f"s-{uuid.uuid4().hex[:8]}", input="{}")
    sfn.stop_execution(executionArn=running["executionArn"], error="Cancelled", cause="by a test")
    deadline = time.monotonic() + 10
    while (d := sfn.describe_execution(executionArn=running["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert (d["status"], d.get("error"), d.get("cause")) == ("ABORTED", "Cancelled", "by a test")
    # A stop of an execution that had ended changes nothing it reports.
    sfn.stop_execution(executionArn=running["executionArn"], error="Other", cause="later")
    again = sfn.describe_execution(executionArn=running["executionArn"])
    assert (again["status"], again.get("error")) == ("ABORTED", "Cancelled")


# ---------------------------------------------------------------------------------------------
# The API's front door: SigV4 verified for real, the caller's policies evaluated
# ---------------------------------------------------------------------------------------------

def _signed_headers(method: str, url: str, body: bytes, key: str, secret: str,
                    at: str | None = None) -> dict[str, str]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(key, secret), "execute-api", "us-east-1").add_auth(req)
    headers = {k.lower(): v for k, v in req.headers.items()}
    headers["host"] = url.split("/")[2]
    if at:
        headers["x-amz-date"] = at
    return headers


def test_the_front_door_verifies_signatures_for_real():
    from datetime import datetime, timezone

    from agentbuild_local import front_door as fd

    url, body = "http://127.0.0.1:9/projects/p/builds?x=1", b'{"a": 1}'
    now = datetime.now(timezone.utc)
    good = _signed_headers("POST", url, body, "local", "local")
    assert fd.verify_signature("POST", "127.0.0.1:9", "/projects/p/builds?x=1", good, body, now) == (fd.ADMIN, "")
    for method, path, headers, data, why in (
        ("POST", "/projects/q/builds?x=1", good, body, "another path"),
        ("POST", "/projects/p/builds?x=1", good, b'{"a": 2}', "another body"),
        ("GET", "/projects/p/builds?x=1", good, body, "another method"),
        ("POST", "/projects/p/builds?x=1", _signed_headers("POST", url, body, "local", "nope"), body, "wrong secret"),
        ("POST", "/projects/p/builds?x=1", {k: v for k, v in good.items() if k != "authorization"}, body, "unsigned"),
    ):
        with pytest.raises(fd.Denied):
            fd.verify_signature(method, "127.0.0.1:9", path, headers, data, now)
            pytest.fail(why)
    with pytest.raises(fd.Denied, match="15 minutes"):
        fd.verify_signature("POST", "127.0.0.1:9", "/projects/p/builds?x=1", good, body,
                            now.replace(year=now.year + 1))


def test_the_front_door_evaluates_an_iam_users_policies_on_the_routes_arn():
    import boto3
    from moto import mock_aws

    from agentbuild_local import front_door as fd

    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_user(UserName="caller")
        iam.put_user_policy(UserName="caller", PolicyName="p", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "execute-api:Invoke",
                "Resource": f"arn:aws:execute-api:us-east-1:{config.ACCOUNT}:{fd.API_ID}/*/*/projects/mine/*"}]}))
        key = iam.create_access_key(UserName="caller")["AccessKey"]
        door = fd.FrontDoor.__new__(fd.FrontDoor)
        door.iam, door.evaluator, door.lock = iam, fd._evaluator(), threading.Lock()

        def ask(path: str) -> str:
            url = f"http://127.0.0.1:9{path}"
            headers = _signed_headers("GET", url, b"", key["AccessKeyId"], key["SecretAccessKey"])
            return door.authorize("GET", "127.0.0.1:9", path, headers, b"")

        assert ask("/projects/mine/builds/b-1").endswith(":user/caller")
        for path in ("/projects/other/builds/b-1", "/projects/mine-2/agents/a", "/builds/b-1"):
            with pytest.raises(fd.Denied, match="ImplicitDeny"):
                ask(path)


# ---------------------------------------------------------------------------------------------
# Speedups (speedups.py): what moto's server keeps answers as moto does
# ---------------------------------------------------------------------------------------------

def test_speedups_answer_as_moto_does():
    from agentbuild_local import speedups
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.utils import boto_client, json_path

    speedups.install_server_speedups()
    original = speedups._ORIGINALS["get_backend_for_host"]
    app = DomainDispatcherApplication(lambda backend: None)
    for host in ("s3.us-east-1.amazonaws.com", "states.us-east-1.amazonaws.com", "lambda.us-east-1.amazonaws.com",
                 "codebuild.us-east-1.amazonaws.com", "moto_api", "s3", None, "nothing.example"):
        assert app.get_backend_for_host(host) == original(app, host), host
        assert app.get_backend_for_host(host) == original(app, host), host  # the kept answer too
    definition = (config.ROOT / "statemachine" / "build.asl.json").read_text()
    first, tree = AmazonStateLanguageParser.parse(definition)
    again, same_tree = AmazonStateLanguageParser.parse(definition)
    assert same_tree is tree and again is not first  # components built anew per execution
    assert type(again) is type(first)
    with pytest.raises(Exception):
        AmazonStateLanguageParser.parse('{"StartAt": "X", "States": {"X": {"Type": "Nope"}}}')
    assert json_path.extract_json("$.a.b", {"a": {"b": 7}}) == 7
    assert json_path.extract_json("$.a.b", {"a": {"b": 8}}) == 8
    assert boto_client.boto_client_for("us-east-1", "lambda") is boto_client.boto_client_for("us-east-1", "lambda")
    assert boto_client.boto_client_for("us-east-1", "s3") is not boto_client.boto_client_for("us-east-1", "lambda")


def test_layer_builds_use_roomy_shm_and_a_killed_stacks_leftovers_are_swept(tmp_path, monkeypatch):
    """Scratch in /dev/shm with 2 GB free, else the stack's folder; a new stack of the same
    folder removes what a killed one left in either place, and nothing of another stack's."""
    import types

    from agentbuild_local import codebuild_real as cr

    shm, state = tmp_path / "shm", tmp_path / "state"
    shm.mkdir()
    state.mkdir()
    monkeypatch.setattr(cr, "SHM", shm)
    monkeypatch.setattr(cr, "STATE_DIR", state)
    free = {"bytes": 3 * 1024**3}
    monkeypatch.setattr(cr.os, "statvfs", lambda _: types.SimpleNamespace(f_bavail=free["bytes"], f_frsize=1))
    assert cr.scratch_base() == shm
    free["bytes"] = 1024**3
    assert cr.scratch_base() == state  # short of room: the stack's folder
    mine = [shm / f"{cr.SCRATCH_PREFIX}left", state / f"{cr.SCRATCH_PREFIX}left"]
    for left in mine:
        (left / "uv-cache").mkdir(parents=True)
    another_stacks = shm / "agentbuild-local-000000000000-layer-build.running"
    another_stacks.mkdir()
    cr.RealBuilds()  # swept in both places, /dev/shm too although it is short of room now
    assert [left.exists() for left in mine] == [False, False] and another_stacks.exists()
    monkeypatch.setattr(cr, "SHM", tmp_path / "missing")
    monkeypatch.setattr(cr.os, "statvfs", lambda path: (_ for _ in ()).throw(FileNotFoundError(path)))
    assert cr.scratch_base() == state


def test_the_engine_loads_without_moto_batch_and_ec2():
    """A fresh interpreter: with moto.batch bare, the ASL engine's modules import and its
    JobStatus enum is there, and neither Batch's models nor EC2 were imported (if a moto
    upgrade makes the engine need them, this fails rather than the stack)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from agentbuild_local import speedups\n"
        "speedups.bare_batch_package()\n"
        "from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser\n"
        "from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor\n"
        "from moto.batch.utils import JobStatus\n"
        "print(JobStatus.SUCCEEDED.name, 'moto.batch.models' in sys.modules, 'moto.ec2' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parent)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["SUCCEEDED", "False", "False"]


# ---------------------------------------------------------------------------------------------
# S3 fixes (s3fixes.py): conditional writes are atomic, legal holds on missing versions 404
# ---------------------------------------------------------------------------------------------

def test_of_two_writers_that_read_the_same_etag_one_gets_412_even_when_the_first_pauses(monkeypatch):
    """The race staged: the first conditional PutObject is held between its If-Match check and
    its write while the second arrives. moto alone lets the second pass its check too (both
    write, the later one wins silently); with the fix the second waits, then gets 412."""
    import boto3
    from moto import mock_aws
    from moto.s3.models import S3Backend

    from agentbuild_local import s3fixes

    s3fixes.install_s3_fixes()
    write = S3Backend.put_object
    first_checked, release = threading.Event(), threading.Event()

    def held_write(self, *args, **kwargs):
        if not first_checked.is_set():
            first_checked.set()
            release.wait(5)
        return write(self, *args, **kwargs)

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="agentbuild-race")
        etag = s3.put_object(Bucket="agentbuild-race", Key="k", Body=b"base")["ETag"]
        monkeypatch.setattr(S3Backend, "put_object", held_write)
        outcomes: dict[str, str] = {}

        def writer(name: str) -> None:
            try:
                s3.put_object(Bucket="agentbuild-race", Key="k", Body=name.encode(), IfMatch=etag)
                outcomes[name] = "written"
            except s3.exceptions.ClientError as e:
                outcomes[name] = e.response["Error"]["Code"]

        first = threading.Thread(target=writer, args=("first",))
        first.start()
        assert first_checked.wait(5)
        second = threading.Thread(target=writer, args=("second",))
        second.start()
        second.join(0.5)  # fixed: blocked behind the first; moto alone: already written
        release.set()
        first.join(5)
        second.join(5)
        assert outcomes == {"first": "written", "second": "PreconditionFailed"}
        assert s3.get_object(Bucket="agentbuild-race", Key="k")["Body"].read() == b"first"
