"""Two stacks in one account never touch each other's runtimes (issue 21, item 2).

The second stack here is a second stack NAME: the local stack's handlers restarted with another
AGENTBUILD_STACK_NAME (`POST /config {"stackName"}`, as another stack's handlers would run)
against the same moto — the same account and AgentCore control plane, which is what two stacks
share (a second moto would be a second account, where nothing could collide). Serial: it
restarts every handler.

Run: scripts/e2e.sh -k stacks
"""
from __future__ import annotations

import json
import time
from typing import Any

import pytest

from conftest import Stack, uid
from test_deploy import agentcore, deployed, runtime  # noqa: F401 (the fixture)

STACK_TAG = "agentbuild:stack"


def stack_name(stack: Stack) -> str:
    status, body, _ = stack.http("GET", f"{stack.inject_url}/config")
    assert status == 200 and body.get("stackName"), body
    return body["stackName"]


def become(stack: Stack, name: str) -> None:
    """Restart every handler as stack `name` (only while nothing runs)."""
    stack.wait_idle(120)
    status, body, _ = stack.http("POST", f"{stack.inject_url}/config", {"stackName": name})
    assert status == 200 and body["restarted"], body
    assert stack_name(stack) == name
    time.sleep(1)  # the restarted handlers poll the runtime API again


def snapshot(agentcore, rid: str) -> dict[str, Any]:
    rt = runtime(agentcore, rid)
    tags = agentcore.list_tags_for_resource(resourceArn=rt["agentRuntimeArn"])["tags"]
    return {"version": rt["agentRuntimeVersion"], "status": rt["status"],
            "uri": rt["agentRuntimeArtifact"]["containerConfiguration"]["containerUri"], "tags": tags}


@pytest.mark.serial
def test_a_second_stack_deploying_the_same_agent_leaves_the_first_stacks_runtime_alone(stack, agentcore):
    first = stack_name(stack)
    req = dict(stack.request(agent="bot"), deploy={})
    dep_a = deployed(stack, f"stk-a-{uid()}", req)["deployment"]
    before = snapshot(agentcore, dep_a["runtimeId"])
    assert before["tags"][STACK_TAG] == first and before["status"] == "READY", before

    second = f"agentbuild-other-{uid()}"
    become(stack, second)
    try:
        # The same agent, a new source: the second stack's default name is its own, so it
        # creates its own runtime, tagged with its own name.
        uri2, _ = stack.upload_source(req["project"], "bot", extra="second-stack")
        dep_b = deployed(stack, f"stk-b-{uid()}", dict(req, source=uri2))["deployment"]
        assert (dep_b["status"], dep_b["action"]) == ("READY", "CREATED"), dep_b
        assert dep_b["runtimeName"] != dep_a["runtimeName"] and dep_b["runtimeId"] != dep_a["runtimeId"]
        assert snapshot(agentcore, dep_b["runtimeId"])["tags"][STACK_TAG] == second
        assert snapshot(agentcore, dep_a["runtimeId"]) == before, "the first stack's runtime changed"

        # Naming the first stack's runtime explicitly: refused, naming deploy.runtimeName.
        uri3, _ = stack.upload_source(req["project"], "bot", extra="second-stack-named")
        name = f"stk-n-{uid()}"
        d = stack.run(name, dict(req, source=uri3, deploy={"runtimeName": dep_a["runtimeName"]}), timeout=60)
        # Refused before anything runs (issue 21, item 3): the name has the form of a default name
        # that is not this agent's of this stack (and, here where both stack names share one
        # bucket, it is bound to the first stack's agent). DeployRuntime's own tag check, which
        # refuses it too, is held by deploy_runtime.rs's unit tests.
        assert (d["status"], d["error"]) == ("FAILED", "InvalidRequest"), d
        assert json.loads(d["cause"])["errorMessage"].startswith("deploy.runtimeName: "), d["cause"]
        assert snapshot(agentcore, dep_a["runtimeId"]) == before, "the first stack's runtime changed"
    finally:
        become(stack, first)
