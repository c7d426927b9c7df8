"""Cancel, end to end (design.md "API"): `DELETE /builds/{id}` and `agentbuild cancel` on the
local stack — the real API function and CLI against the real ASL in moto's engine, with a
CodeBuild build held running by a script. Needs the stack test_pipeline.py describes."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, STATE_DIR, Stack, uid
from test_pipeline import run_cli  # the `cli` fixture is conftest.py's


def api_url(stack: Stack) -> str:
    api = stack.env.get("AGENTBUILD_API_URL")
    assert api, "the stack has no API (AGENTBUILD_API_URL)"
    return api


def held(stack: Stack, name: str | None = None) -> tuple[str, dict[str, Any]]:
    """A console build whose CodeBuild build is held running; (build id, its RUNNING record)."""
    name = name or f"cancel-{uid()}"
    stack.script({"match": name, "hold": True})
    stack.start(name, {"request": stack.request()})
    return name, stack.wait_started(name)


def codebuild_status(stack: Stack, codebuild_id: str, timeout: float = 10) -> str:
    """CodeBuild's view once it has left IN_PROGRESS (a held build only leaves it when stopped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = stack.build(codebuild_id)["buildStatus"]
        if status != "IN_PROGRESS":
            return status
        time.sleep(0.2)
    raise AssertionError(f"{codebuild_id} still IN_PROGRESS after {timeout} s")


def execution_status(stack: Stack, name: str, timeout: float = 10) -> dict[str, Any]:
    arn = f"{stack.machine.replace(':stateMachine:', ':execution:', 1)}:{name}"
    return stack.wait(arn, timeout)


def test_cancel_of_a_running_build_stops_everything_and_answers_the_stopped_record(stack):
    api = api_url(stack)
    build_id, running = held(stack)
    codebuild_id = running["codebuild"]["buildId"]

    status, body, _ = stack.http("DELETE", f"{api}{stack.build_path(build_id)}")
    assert status == 202, body
    assert body["status"] == "STOPPED", body
    assert body["error"]["type"] == "Cancelled", body
    assert body["codebuild"]["buildId"] == codebuild_id and body["codebuild"]["stopped"] is True
    assert body["timestamps"]["finishedAt"]

    # What GET answers afterwards is what DELETE answered; it is the stored record.
    assert stack.record(build_id) == body
    status, got, _ = stack.http("GET", f"{api}{stack.build_path(build_id)}")
    assert (status, got) == (200, body)

    assert codebuild_status(stack, codebuild_id) == "STOPPED"
    d = execution_status(stack, build_id)
    # (AWS keeps StopExecution's error `Cancelled` and cause on the execution; moto drops them.)
    assert d["status"] == "ABORTED", d

    # The last-resort closer runs on the ABORTED execution, finds the record final, keeps it.
    time.sleep(2)
    assert stack.record(build_id) == body

    # Idempotent: the same answer again, nothing more stopped.
    status, again, _ = stack.http("DELETE", f"{api}{stack.build_path(build_id)}")
    assert (status, again) == (202, body)


def test_cancel_of_a_build_that_finished_on_its_own_is_409_with_its_status(stack):
    api = api_url(stack)
    name = f"done-{uid()}"
    d = stack.run(name, {"request": stack.request()})
    assert d["status"] == "SUCCEEDED", d
    before = stack.record(name)

    status, body, _ = stack.http("DELETE", f"{api}{stack.build_path(name)}")
    assert status == 409, body
    assert body["error"]["code"] == "AlreadyFinished"
    assert body["error"]["status"] == before["status"]
    assert before["status"] in body["error"]["message"]
    assert stack.record(name) == before


def test_cancel_of_an_unknown_build_is_404_and_of_a_malformed_id_400(stack):
    api = api_url(stack)
    status, body, _ = stack.http("DELETE", f"{api}{stack.build_path('api-' + uid())}")
    assert (status, body["error"]["code"]) == (404, "NotFound"), body
    status, body, _ = stack.http("DELETE", f"{api}{stack.build_path('not.an.id', project='e2e')}")
    assert (status, body["error"]["code"], body["error"]["field"]) == (400, "InvalidRequest", "buildId"), body


@pytest.mark.parametrize("door", ["api", "direct"])
def test_cli_cancel_exits_0_when_stopped_1_when_finished_2_malformed_3_unknown(stack, cli, door):
    through = [] if door == "api" else ["--api-url", ""]
    build_id, running = held(stack, f"cli-cancel-{door}-{uid()}")

    code, out, err = run_cli(stack, cli, *through, "cancel", build_id, "--wait", "--output", "json",
                             "--project", stack.project_of(build_id))
    assert code == 0, (out, err[-2000:])
    assert out["status"] == "STOPPED" and out["record"]["error"]["type"] == "Cancelled", out
    assert out["record"]["codebuild"]["stopped"] is True
    assert codebuild_status(stack, running["codebuild"]["buildId"]) == "STOPPED"
    assert execution_status(stack, build_id)["status"] == "ABORTED"

    # Again: still 0, the same record.
    code, again, err = run_cli(stack, cli, *through, "cancel", build_id, "--output", "json",
                               "--project", stack.project_of(build_id))
    assert code == 0, (again, err[-2000:])
    assert again["record"] == out["record"]

    done = f"cli-done-{door}-{uid()}"
    assert stack.run(done, {"request": stack.request()})["status"] == "SUCCEEDED"
    code, out, err = run_cli(stack, cli, *through, "cancel", done, "--output", "json",
                             "--project", stack.project_of(done))
    assert code == 1, (out, err[-2000:])
    assert out["status"] == "SUCCEEDED" and out["error"]["code"] == "AlreadyFinished", out

    p = run_cli_raw(stack, cli, *through, "cancel", "not.an.id", "--project", "e2e")
    assert p.returncode == 2, p.stderr
    p = run_cli_raw(stack, cli, *through, "cancel", f"api-{uid()}", "--project", "e2e")
    assert p.returncode == 3, p.stderr
    assert "no build" in p.stderr


def run_cli_raw(stack: Stack, cli: Path, *args: str):
    """The CLI's exit code and stderr when it prints no result (a usage error, no answer)."""
    return subprocess.run([str(cli), "--env-file", str(STATE_DIR / "env"), *args], cwd=ROOT,
                          env={**os.environ, **stack.env}, capture_output=True, text=True,
                          timeout=120)


def test_the_cancel_answer_parses_as_json_record(stack):
    """The 202 body is a record as stored: the same bytes GET serves (schemaVersion present)."""
    api = api_url(stack)
    build_id, _ = held(stack)
    status, body, headers = stack.http("DELETE", f"{api}{stack.build_path(build_id)}")
    assert status == 202 and body["schemaVersion"] == 1, body
    assert headers.get("content-type") == "application/json"
    assert json.loads(stack.get_bytes(f"builds/{build_id}.json")) == body


# ---------------------------------------------------------------------------------------------
# Cancel × {before start, during start, during build} (issue 20, item 5): after each, no
# CodeBuild build of that execution is IN_PROGRESS (moto's own answer), the record says what
# happened, and one Build Finished.

def builds_of(stack: Stack, name: str) -> list[str]:
    """The CodeBuild builds started for execution `name` (every build here is scripted)."""
    return [b["id"] for b in stack.codebuild_scripted() if b["match"] == name]


def none_running(stack: Stack, name: str, timeout: float = 15) -> list[str]:
    """Waits until no build of `name` is IN_PROGRESS in CodeBuild (BatchGetBuilds); its builds."""
    deadline = time.monotonic() + timeout
    while True:
        ids = builds_of(stack, name)
        running = [i for i in ids if stack.build(i)["buildStatus"] == "IN_PROGRESS"]
        if not running:
            return ids
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: CodeBuild builds left IN_PROGRESS (orphaned): {running}")
        time.sleep(0.3)


def one_event(stack: Stack, name: str, closer: bool = True) -> dict[str, Any]:
    """The one Build Finished of `name`, once the closer (of a cancelled execution) has run."""
    from test_events import Announcements, closer_ran, only

    if closer:
        closer_ran(stack, name)
    return only(Announcements(stack).of(name), name)


def test_cancel_before_start_starts_no_build(stack):
    api = api_url(stack)
    name = f"cancel-before-{uid()}"
    stack.script({"match": name, "hold": True})
    stack.inject("start-build", {"delay": 3, "match": name})  # StartBuild is held ...
    stack.start(name, {"request": stack.request()})
    stack.wait_record(name, ("RUNNING",))  # ... after ValidateRequest's first record
    status, body, _ = stack.http("DELETE", f"{api}{stack.build_path(name)}")
    assert status == 202 and body["status"] == "STOPPED", body
    time.sleep(4)  # StartBuild runs now: it finds the record closed
    assert none_running(stack, name) == [], "no build is started after a cancel"
    rec = stack.record(name)
    assert (rec["status"], rec["error"]["type"]) == ("STOPPED", "Cancelled"), rec
    assert one_event(stack, name)["status"] == "STOPPED"


def test_cancel_during_start_stops_the_build_startbuild_was_starting(stack):
    """The cancel reads the marker (StartBuild asked CodeBuild, which has not answered): the
    record it closes names no build; StartBuild's RUNNING write then finds it closed and stops
    the build it just started."""
    api = api_url(stack)
    name = f"cancel-during-{uid()}"
    stack.script({"match": name, "hold": True, "startDelay": 3})
    stack.start(name, {"request": stack.request()})
    deadline = time.monotonic() + 20
    while not ((rec := stack.record(name)) and rec["codebuild"].get("startRequestedAt")):
        assert time.monotonic() < deadline, f"no start marker: {rec}"
        time.sleep(0.1)
    status, body, _ = stack.http("DELETE", f"{api}{stack.build_path(name)}")
    assert status == 202 and body["status"] == "STOPPED", body
    ids = none_running(stack, name)
    assert len(ids) == 1 and stack.build(ids[0])["buildStatus"] == "STOPPED", ids
    rec = stack.record(name)
    assert (rec["status"], rec["error"]["type"]) == ("STOPPED", "Cancelled"), rec
    assert one_event(stack, name)["status"] == "STOPPED"


def test_cancel_during_build_stops_it_and_says_so(stack):
    api = api_url(stack)
    name, running = held(stack)
    status, body, _ = stack.http("DELETE", f"{api}{stack.build_path(name)}")
    assert status == 202 and body["codebuild"]["stopped"] is True, body
    assert none_running(stack, name) == [running["codebuild"]["buildId"]]
    assert one_event(stack, name)["status"] == "STOPPED"


def test_cancel_during_deploy_is_too_late_and_the_record_tells_the_truth(stack):
    """CodeBuild has ended SUCCEEDED and the execution deploys the image: the cancel answers
    409 with the build's status and touches nothing; the execution records the deployment's
    true end (AgentCore has no cancel of an update under way)."""
    api = api_url(stack)
    name = f"cancel-deploy-{uid()}"
    stack.script({"match": name})  # ends SUCCEEDED right after StartBuild
    stack.inject("deploy-runtime", {"delay": 5, "match": name})  # DeployRuntime is held
    arn = stack.start(name, dict(stack.request(agent="bot"), deploy={}))
    deadline = time.monotonic() + 20
    while not ((ids := builds_of(stack, name)) and stack.build(ids[0])["buildStatus"] == "SUCCEEDED"):
        assert time.monotonic() < deadline, f"{name}: no finished build"
        time.sleep(0.2)
    time.sleep(1)  # the completion event ends the wait; DeployRuntime is held now
    status, body, _ = stack.http("DELETE", f"{api}{stack.build_path(name)}")
    assert status == 409, body
    assert (body["error"]["code"], body["error"]["status"]) == ("AlreadyFinished", "SUCCEEDED"), body
    assert stack.wait(arn, 60)["status"] == "SUCCEEDED"
    rec = stack.record(name)
    assert rec["status"] == "SUCCEEDED" and not rec["codebuild"].get("stopped"), rec
    assert rec["deployment"]["status"] == "READY", rec
    assert none_running(stack, name) == ids
    assert one_event(stack, name, closer=False)["status"] == "SUCCEEDED"
