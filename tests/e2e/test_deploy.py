"""Deploy end to end: a request with `deploy` builds the image, then creates or updates the
agent's AgentCore Runtime (moto's control plane, patched as local/README.md says) and waits for
READY in the state machine — the real definition in moto's engine, the real handlers.

Run: .venv/bin/python -m pytest tests/e2e/test_deploy.py -q (needs a running stack; see
test_pipeline.py).
"""
from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import Stack, entered, scheduled, uid
from test_events import Announcements, only
from test_pipeline import run_cli  # the `cli` fixture is conftest.py's

ALLOWED_ROLE = "arn:aws:iam::123456789012:role/agentbuild-runtime-allowed"
STACK_ROLE = "arn:aws:iam::123456789012:role/agentbuild-runtime"


@pytest.fixture(scope="module")
def agentcore(stack):
    import boto3

    env = stack.env
    return boto3.client("bedrock-agentcore-control", endpoint_url=env["AWS_ENDPOINT_URL"],
                        region_name=env["AWS_REGION"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="module")
def announced(stack):
    return Announcements(stack)


def deployed(stack: Stack, name: str, req: dict[str, Any], status: str = "SUCCEEDED") -> dict[str, Any]:
    """Runs `req` as execution `name`; its record, after checking the execution's end."""
    d = stack.run(name, req, timeout=60)
    assert d["status"] == status, d
    rec = stack.record(name)
    assert rec is not None and rec["status"] in ("SUCCEEDED", "REUSED"), rec
    return rec


def runtime(agentcore, rid: str) -> dict[str, Any]:
    return agentcore.get_agent_runtime(agentRuntimeId=rid)


def test_deploy_creates_then_updates_the_same_runtime_and_a_forced_rebuild_redeploys(stack, agentcore, announced):
    req = dict(stack.request(agent="bot"), deploy={})
    first = f"dep-a-{uid()}"
    d = stack.run(first, req, timeout=60)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == {"buildId": first, "status": "SUCCEEDED",
                                       "recordKey": f"builds/{first}.json", "deploymentStatus": "READY"}
    rec = stack.record(first)
    dep = rec["deployment"]
    assert (dep["status"], dep["action"], dep["runtimeVersion"]) == ("READY", "CREATED", "1"), dep
    assert dep["containerUri"] == rec["image"]["uri"] and rec["image"]["digest"] in dep["containerUri"]
    assert dep["runtimeName"].startswith(f"ab_{req['project'].replace('-', '_')}_bot_")
    assert dep["startedAt"] <= dep["finishedAt"] and "failureReason" not in dep
    rt = runtime(agentcore, dep["runtimeId"])
    assert rt["status"] == "READY" and rt["roleArn"] == STACK_ROLE
    assert rt["agentRuntimeArtifact"]["containerConfiguration"]["containerUri"] == rec["image"]["uri"]
    tags = agentcore.list_tags_for_resource(resourceArn=rt["agentRuntimeArn"])["tags"]
    assert tags == {"agentbuild:project": req["project"], "agentbuild:agent": "bot",
                    "agentbuild:stack": tags.get("agentbuild:stack")} and tags["agentbuild:stack"], tags
    # The wait is the state machine's: the runtime was CREATING at the first check.
    events = stack.history(d["executionArn"])
    states = entered(events)
    # Two checks of the runtime (CREATING, READY -> smoke test -> `live` moved), one of `live`.
    assert states.count("CheckRuntime") == 3 and states.count("WaitForRuntime") == 3, states
    assert scheduled(events, "deploy-runtime") == 1
    assert states.index("RecordResult") > states.index("CheckRuntime")
    # The Build Finished event comes after the deployment and carries it.
    detail = only(announced.of(first), first)
    assert detail["deployment"] == dep and detail["status"] == "SUCCEEDED"

    # Changed source: the same runtime, updated to the new image (a new version).
    uri2, _ = stack.upload_source(req["project"], "bot", extra="v2")
    second = f"dep-b-{uid()}"
    rec2 = deployed(stack, second, dict(req, source=uri2))
    dep2 = rec2["deployment"]
    assert (dep2["runtimeId"], dep2["action"], dep2["runtimeVersion"]) == (dep["runtimeId"], "UPDATED", "2")
    assert dep2["containerUri"] == rec2["image"]["uri"] != rec["image"]["uri"]
    rt = runtime(agentcore, dep["runtimeId"])
    assert rt["status"] == "READY" and rt["agentRuntimeArtifact"]["containerConfiguration"]["containerUri"] == rec2["image"]["uri"]
    assert stack.get_json(f"agents/{req['project']}/bot/latest.json")["deployment"] == dep2

    # A scheduled rebuild sends the recorded request, forced (domain::rebuild::rebuild_input):
    # it keeps `deploy`, so the new image is deployed to the same runtime.
    assert rec2["request"]["deploy"] == {"runtimeName": dep["runtimeName"], "protocol": "HTTP",
                                         "networkMode": "PUBLIC"}
    third = f"sched-{uid()}"
    rebuild = {"rebuild": {"buildId": rec2["buildId"], "run": "20261129T0300"}}
    rec3 = deployed(stack, third, rebuild)
    dep3 = rec3["deployment"]
    assert rec3["force"] and rec3["image"]["uri"] != rec2["image"]["uri"]
    assert (dep3["runtimeId"], dep3["action"], dep3["runtimeVersion"]) == (dep["runtimeId"], "UPDATED", "3")
    assert dep3["containerUri"] == rec3["image"]["uri"]


def test_update_failed_fails_the_deployment_with_its_reason_and_keeps_the_build(stack, agentcore, announced):
    req = dict(stack.request(agent="bot"), deploy={"environmentVariables": {"LOG_LEVEL": "info"}})
    rec = deployed(stack, f"dep-ok-{uid()}", req)
    rid = rec["deployment"]["runtimeId"]
    reason = "The container image manifest is not for linux/arm64 (scripted)"
    # The next Create/UpdateAgentRuntime whose request names this project fails.
    status, body, _ = stack.http("POST", f"{stack.inject_url}/agentcore/scripts",
                                 {"match": req["project"], "status": "UPDATE_FAILED", "failureReason": reason})
    assert status == 200, body
    uri2, _ = stack.upload_source(req["project"], "bot", extra="broken")
    name = f"dep-fail-{uid()}"
    d = stack.run(name, dict(req, source=uri2), timeout=60)
    assert (d["status"], d["error"]) == ("FAILED", "DeployFailed"), d
    rec2 = stack.record(name)
    assert rec2["status"] == "SUCCEEDED" and "error" not in rec2, "the build's own status is kept"
    dep = rec2["deployment"]
    assert (dep["status"], dep["failureReason"], dep["runtimeId"]) == ("FAILED", reason, rid)
    assert dep["containerUri"] == rec2["image"]["uri"]
    assert runtime(agentcore, rid)["status"] == "UPDATE_FAILED"
    # The image is good: it is the agent's latest; the event says the deployment failed, once
    # (the last-resort closer sees DeployFailed over a FAILED deployment and leaves it).
    assert stack.get_json(f"agents/{req['project']}/bot/latest.json")["buildId"] == name
    detail = only(announced.of(name, settle=3.0), name)
    assert (detail["status"], detail["deployment"]["status"]) == ("SUCCEEDED", "FAILED")
    # The runtime recovers with the next deployment.
    stack.reset()
    uri3, _ = stack.upload_source(req["project"], "bot", extra="fixed")
    rec3 = deployed(stack, f"dep-fix-{uid()}", dict(req, source=uri3))
    assert (rec3["deployment"]["status"], rec3["deployment"]["runtimeId"]) == ("READY", rid)


def test_a_runtime_deleted_by_hand_is_recreated(stack, agentcore):
    req = dict(stack.request(agent="bot"), deploy={})
    rid = deployed(stack, f"dep-del-{uid()}", req)["deployment"]["runtimeId"]
    agentcore.delete_agent_runtime(agentRuntimeId=rid)
    uri2, _ = stack.upload_source(req["project"], "bot", extra="again")
    dep = deployed(stack, f"dep-re-{uid()}", dict(req, source=uri2))["deployment"]
    assert (dep["status"], dep["action"]) == ("READY", "CREATED") and dep["runtimeId"] != rid


def test_a_runtime_of_that_name_tagged_for_another_agent_is_never_touched(stack, agentcore):
    name = f"Theirs_{uid()}"
    theirs = agentcore.create_agent_runtime(
        agentRuntimeName=name, agentRuntimeArtifact={"containerConfiguration": {"containerUri": "other@sha256:00"}},
        roleArn=STACK_ROLE, networkConfiguration={"networkMode": "PUBLIC"},
        tags={"agentbuild:project": "someone-else", "agentbuild:agent": "bot"})
    req = dict(stack.request(agent="bot"), deploy={"runtimeName": name})
    build = f"dep-theirs-{uid()}"
    d = stack.run(build, req, timeout=60)
    assert (d["status"], d["error"]) == ("FAILED", "DeployFailed"), d
    rec = stack.record(build)
    assert rec["status"] == "SUCCEEDED"
    assert rec["deployment"]["failureReason"].startswith("deploy.runtimeName: "), rec["deployment"]
    rt = runtime(agentcore, theirs["agentRuntimeId"])
    assert rt["agentRuntimeVersion"] == "1"
    assert rt["agentRuntimeArtifact"]["containerConfiguration"]["containerUri"] == "other@sha256:00"


def test_an_allowed_role_is_used_and_a_failed_build_deploys_nothing(stack, agentcore):
    req = dict(stack.request(agent="bot"), deploy={"roleArn": ALLOWED_ROLE, "protocol": "MCP"})
    dep = deployed(stack, f"dep-role-{uid()}", req)["deployment"]
    rt = runtime(agentcore, dep["runtimeId"])
    assert rt["roleArn"] == ALLOWED_ROLE and rt["protocolConfiguration"]["serverProtocol"] == "MCP"

    name = f"dep-bf-{uid()}"
    stack.script({"match": name, "status": "FAILED"})
    d = stack.run(name, dict(stack.request(agent="bot"), deploy={}), timeout=60)
    assert (d["status"], d["error"]) == ("FAILED", "FAILED"), d
    assert "deployment" not in stack.record(name)
    assert "DeployRuntime" not in entered(stack.history(d["executionArn"]))


BAD_DEPLOYS = [
    ({"runtimeName": "has-dash"}, "deploy.runtimeName"),
    ({"roleArn": "arn:aws:iam::123456789012:role/Admin"}, "deploy.roleArn"),
    ({"image": "attacker/image"}, "deploy.image"),
    ({"networkMode": "VPC"}, "deploy.subnets"),
    ({"lifecycle": {"maxLifetime": 30}}, "deploy.lifecycle.maxLifetime"),
    ({"lifecycle": {"idleRuntimeSessionTimeout": 28801}}, "deploy.lifecycle.idleRuntimeSessionTimeout"),
    ({"smokeTest": {"timeoutSeconds": 31}}, "deploy.smokeTest.timeoutSeconds"),
    ({"endpoint": "DEFAULT"}, "deploy.endpoint"),
    ({"platformVersion": "latest"}, "deploy.platformVersion"),
]


@pytest.mark.parametrize("deploy,field", BAD_DEPLOYS, ids=[f for _, f in BAD_DEPLOYS])
def test_bad_deploy_fields_are_rejected_by_name_at_the_api_and_the_console(stack, deploy, field):
    req = dict(stack.request(agent="bot"), deploy=deploy)
    api = stack.env.get("AGENTBUILD_API_URL")
    assert api, "the stack has no API (AGENTBUILD_API_URL)"
    status, body, _ = stack.http("POST", f"{api}/projects/{req['project']}/builds", req)
    assert status == 400 and body["error"]["field"] == field, body
    name = f"dep-bad-{uid()}"
    d = stack.run(name, req)
    assert (d["status"], d["error"]) == ("FAILED", "InvalidRequest"), d
    assert json.loads(d["cause"])["errorMessage"].startswith(f"{field}: "), d["cause"]
    assert stack.record(name) is None, "a rejected request writes nothing"


def test_deploy_task_errors_are_retried_then_caught_into_a_failed_deployment(stack):
    req = dict(stack.request(agent="bot"), deploy={})
    # Throttled once: retried, deployed.
    name = f"dep-retry-{uid()}"
    stack.inject("deploy-runtime", {"error": {"type": "TransientAwsError", "message": "throttled"}, "match": name})
    d = stack.run(name, req, timeout=60)
    assert d["status"] == "SUCCEEDED", d
    assert scheduled(stack.history(d["executionArn"]), "deploy-runtime") == 2
    assert stack.record(name)["deployment"]["status"] == "READY"
    # An error no retry fixes, in CheckRuntime: caught into the deployment, never a build ERROR.
    uri2, _ = stack.upload_source(req["project"], "bot", extra="denied")
    name = f"dep-denied-{uid()}"
    stack.inject("check-runtime", {"error": {"type": "AwsServiceError",
                                             "message": "AgentCore.GetAgentRuntime: AccessDeniedException"},
                                   "match": name})
    d = stack.run(name, dict(req, source=uri2), timeout=60)
    assert (d["status"], d["error"]) == ("FAILED", "DeployFailed"), d
    rec = stack.record(name)
    assert rec["status"] == "SUCCEEDED"
    dep = rec["deployment"]
    assert dep["status"] == "FAILED" and dep["runtimeId"], dep
    assert dep["failureReason"] == "AwsServiceError: AgentCore.GetAgentRuntime: AccessDeniedException"


def test_cli_submit_deploy_exits_0_when_ready_and_1_when_the_deployment_failed(stack, cli):
    project = f"e2e-{uid()}"
    args = ("submit", "examples/sample-agent", "--project", project, "--agent", "bot", "--deploy",
            "--protocol", "MCP", "--env", "LOG_LEVEL=debug", "--wait", "--output", "json")
    code, out, err = run_cli(stack, cli, *args)
    assert code == 0, (out, err[-2000:])
    dep = out["record"]["deployment"]
    assert dep["status"] == "READY" and dep["containerUri"] == out["record"]["image"]["uri"]
    status, body, _ = stack.http("POST", f"{stack.inject_url}/agentcore/scripts",
                                 {"match": project, "status": "UPDATE_FAILED", "failureReason": "scripted"})
    assert status == 200, body
    # The same source, forced: built again and deployed to the same runtime (an update), which fails.
    code, out, err = run_cli(stack, cli, *args, "--force")
    assert code == 1, (out, err[-2000:])
    assert out["status"] == "SUCCEEDED" and out["record"]["deployment"]["failureReason"] == "scripted"
