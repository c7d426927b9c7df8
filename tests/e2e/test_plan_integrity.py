"""The plan is immutable (issue 19 item 2), in the real engine: whoever holds a waiting build's
task token and completes the wait with SendTaskSuccess cannot change what the execution records,
makes `latest` or deploys. The payload below carries a DIFFERENT plan (another build id, another
agent, another runtime name) and a build that names another CodeBuild build, SUCCEEDED, with a
forged digest — or that names the execution's REAL CodeBuild build (the token holder can read it
in the history) as SUCCEEDED with a forged digest. The execution keeps ValidateRequest's plan (no
later state writes `$.plan`) and takes nothing from the payload: a completion only wakes it up,
CheckBuild reads the build from CodeBuild, finds it still held running, and the execution waits
again and ends with its own build. A forged SendTaskFailure does not end the build either: it
counts as a failed look (CheckFailed), then CheckBuild looks.

Run: .venv/bin/python -m pytest tests/e2e/test_plan_integrity.py -q (needs a running stack).
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from typing import Any, Callable

from conftest import Stack, entered, uid


def until(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def digest(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def hold(stack: Stack, name: str) -> str:
    d = digest(name)
    stack.script({"match": name, "hold": True,
                  "exported": {"IMAGE_DIGEST": d, "IMAGE_URI": f"{stack.env['AGENTBUILD_REPOSITORY_URI']}@{d}"}})
    return d


def forged_payload(stack: Stack, name: str, victim: str, real_id: bool = False) -> dict[str, Any]:
    """A completion as an attacker would send it: the execution's own plan (as the engine sent it
    to AwaitBuild) turned into another agent's, and a SUCCEEDED build of another CodeBuild id (or,
    `real_id`, of the execution's own CodeBuild build) with a forged digest."""
    sent = stack.invocations("await-build", name)[-1]["request"]
    plan = copy.deepcopy(sent["plan"])
    plan["buildId"], plan["agent"] = victim, "victim"
    plan["image"]["tag"] = "forged-" + plan["image"]["tag"][:40]
    if plan.get("deploy"):
        plan["deploy"]["runtimeName"] = f"forged_{uid()}"
    build = copy.deepcopy(sent["build"])
    forged = digest("forged")
    cb_id = sent["codebuildBuildId"] if real_id else f"{stack.project}:00000000-forged"
    build.update(status="SUCCEEDED", codebuildBuildId=cb_id,
                 imageDigest=forged, imageUri=f"{stack.env['AGENTBUILD_REPOSITORY_URI']}@{forged}",
                 finishedAt=build["startedAt"], awaitSeconds=0)
    return {"plan": plan, "build": build}


def attack_then_release(stack: Stack, name: str, req: dict[str, Any],
                        real_id: bool = False, failure: bool = False) -> tuple[dict[str, Any], str]:
    """Runs `req` as `name` with its build held; completes its wait with a forged payload (or a
    forged SendTaskFailure), then releases the real build. (the execution's description, the
    victim's build id)"""
    victim = f"victim-{uid()}"
    arn = stack.start(name, req)
    stack.wait_started(name)
    parked = until("token parked", lambda: stack.get_json(f"callbacks/{name}.json"))
    until("await-build invoked", lambda: stack.invocations("await-build", name))
    if failure:
        stack.sfn.send_task_failure(taskToken=parked["token"], error="FAILED", cause="forged")
    else:
        stack.sfn.send_task_success(taskToken=parked["token"],
                                    output=json.dumps(forged_payload(stack, name, victim, real_id)))
    # The forged completion is not taken for the build's end: the real build still runs.
    until("waiting again", lambda: entered(stack.history(arn)).count("AwaitBuild") >= 2)
    assert stack.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    assert stack.release(name)
    return stack.wait(arn, timeout=60), victim


def assert_own_plan(stack: Stack, name: str, req: dict[str, Any], own: str, victim: str) -> dict[str, Any]:
    rec = stack.record(name)
    assert rec is not None and rec["status"] == "SUCCEEDED", rec
    assert (rec["project"], rec["agent"]) == (req["project"], req["agent"]), rec
    assert rec["image"]["digest"] == own, rec["image"]
    assert "forged" not in json.dumps(rec)
    latest = stack.get_json(f"agents/{req['project']}/{req['agent']}/latest.json")
    assert latest is not None and latest["buildId"] == name and latest["image"]["digest"] == own
    assert stack.record(victim) is None, "a record was written for the forged plan's build id"
    assert stack.get_json(f"agents/{req['project']}/victim/latest.json") is None
    return rec


def test_a_completion_with_another_plan_and_build_changes_nothing_the_execution_records(stack):
    name = f"plan-{uid()}"
    req = stack.request(agent="owner")
    own = hold(stack, name)
    d, victim = attack_then_release(stack, name, req)
    assert d["status"] == "SUCCEEDED", d
    rec = assert_own_plan(stack, name, req, own, victim)
    assert rec["codebuild"]["buildId"] != f"{stack.project}:00000000-forged"
    # The payload naming another build was looked at by CheckBuild, not taken.
    assert "CheckBuild" in entered(stack.history(d["executionArn"]))


def test_a_completion_naming_the_real_build_with_a_forged_status_and_digest_is_not_taken(stack):
    name = f"plan-real-{uid()}"
    req = dict(stack.request(agent="owner"), deploy={})
    own = hold(stack, name)
    d, victim = attack_then_release(stack, name, req, real_id=True)
    assert d["status"] == "SUCCEEDED", d
    rec = assert_own_plan(stack, name, req, own, victim)
    # Not deployed before the build ended, and then only its own image.
    dep = rec["deployment"]
    assert dep["status"] == "READY" and own in dep["containerUri"], dep
    assert "forged" not in json.dumps(dep)
    states = entered(stack.history(d["executionArn"]))
    assert states.count("DeployRuntime") == 1 and states.count("CheckBuild") >= 2, states


def test_a_forged_task_failure_is_a_failed_look_not_the_builds_end(stack):
    name = f"plan-fail-{uid()}"
    req = stack.request(agent="owner")
    own = hold(stack, name)
    d, victim = attack_then_release(stack, name, req, failure=True)
    assert d["status"] == "SUCCEEDED", d
    assert_own_plan(stack, name, req, own, victim)
    states = entered(stack.history(d["executionArn"]))
    assert "CheckFailed" in states and "RecordResult" in states, states


def test_a_completion_with_another_plan_deploys_only_the_executions_own_image(stack):
    name = f"plan-dep-{uid()}"
    req = dict(stack.request(agent="owner"), deploy={})
    own = hold(stack, name)
    d, victim = attack_then_release(stack, name, req)
    assert d["status"] == "SUCCEEDED", d
    rec = assert_own_plan(stack, name, req, own, victim)
    dep = rec["deployment"]
    assert dep["status"] == "READY" and own in dep["containerUri"], dep
    assert not dep["runtimeName"].startswith("forged_"), dep
