"""End-to-end tests of the build pipeline on the local stack (local/README.md): the real
statemachine/build.asl.json in moto's ASL engine, the real handler binaries, real SDK calls to
moto. They assert on what a user and an operator see: the execution's status, output and
history (waits, looks, retries, what was *not* called), the S3 records, CodeBuild's builds, the API and
the CLI's exit codes (the fleet rebuild: test_rebuild.py).

They need a running stack: `make local-up` (or AGENTBUILD_LOCAL_DIR=<dir> local/stack.py up);
scripts/e2e.sh starts one when none runs. Without a stack every test fails (never skips).

Outcomes moto cannot produce come from the stack's injection endpoint: Lambda outcomes queued
per function (`/functions/<fn>/queue`) and CodeBuild scripts (`/codebuild/scripts`: builds that
run for a while or until released or stopped, fail in a phase, or export the image digest, and
announce their phases and end with CodeBuild's events). Every test uses its own
names (uuid) and `match`es on them; the injection state is cleared before each test.

Run: .venv/bin/python -m pytest tests/e2e -q
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, STATE_DIR, Stack, ended, entered, failures, parse_time, scheduled, uid

# ---------------------------------------------------------------------------------------------
# 1, 2 — success, then REUSED
# ---------------------------------------------------------------------------------------------

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def built(stack):
    """One successful build whose CodeBuild build runs 2 s, exports an image digest and ends the
    wait with its own event."""
    req = stack.request()
    name = f"ok-{uid()}"
    image_uri = f"{stack.env['AGENTBUILD_REPOSITORY_URI']}@{DIGEST}"
    stack.script({"match": name, "seconds": 2, "exported": {"IMAGE_DIGEST": DIGEST, "IMAGE_URI": image_uri}})
    t0 = time.monotonic()
    d = stack.run(name, req)
    return {"name": name, "request": req, "execution": d, "seconds": time.monotonic() - t0,
            "image_uri": image_uri}


def test_success_ends_succeeded_with_a_final_record_and_the_agents_latest(stack, built):
    d, name, req = built["execution"], built["name"], built["request"]
    assert d["status"] == "SUCCEEDED", d
    # deploymentStatus: READY | FAILED for a request with deploy (tests/e2e/test_deploy.py).
    assert json.loads(d["output"]) == {"buildId": name, "status": "SUCCEEDED",
                                       "recordKey": f"builds/{name}.json", "deploymentStatus": None}

    events = stack.history(d["executionArn"])
    assert [scheduled(events, f) for f in ("validate-request", "start-build", "await-build",
                                          "check-build", "record-result")] == [1, 1, 1, 1, 1]
    assert failures(events) == []
    # CodeBuild's event ended the wait (no fallback wait); the wake-up's payload is not taken:
    # CheckBuild reads the build's end from CodeBuild, once.
    assert "WaitForBuild" not in entered(events)
    assert entered(events).count("CheckBuild") == 1
    assert ended(events)["type"] == "ExecutionSucceeded"

    rec = stack.record(name)
    assert rec["status"] == "SUCCEEDED" and rec["buildId"] == name
    assert rec["executionArn"] == d["executionArn"] and rec["trigger"] == "console"
    assert (rec["project"], rec["agent"]) == (req["project"], req["agent"])
    sha = req["source"].rsplit("/", 1)[1].removesuffix(".zip")
    version = stack.s3.head_object(Bucket=stack.bucket, Key=req["source"].split("/", 3)[3])["VersionId"]
    assert rec["source"] == {"uri": req["source"], "bucket": stack.bucket,
                             "key": req["source"].split("/", 3)[3], "sha256": sha, "versionId": version}
    assert rec["image"]["repositoryUri"] == stack.env["AGENTBUILD_REPOSITORY_URI"]
    assert re.fullmatch(rf"{req['project']}\.{req['agent']}-[0-9a-f]{{24}}", rec["image"]["tag"])
    assert (rec["image"]["digest"], rec["image"]["uri"]) == (DIGEST, built["image_uri"])
    cb = rec["codebuild"]
    # One look counted: CheckBuild's, after the wake-up (AwaitBuild's look right after parking and
    # the event handler's only decide whether to wake the execution; their results are discarded).
    assert cb["buildId"].startswith(f"{stack.project}:") and cb["polls"] == 1
    assert cb["currentPhase"] == "COMPLETED" and cb["failedPhase"] is None
    assert [p["name"] for p in cb["phases"]][:7] == ["SUBMITTED", "QUEUED", "PROVISIONING",
                                                    "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD", "BUILD"]
    assert all(p["status"] == "SUCCEEDED" for p in cb["phases"] if p["name"] != "COMPLETED")
    ts = {k: parse_time(v) for k, v in rec["timestamps"].items()}
    assert ts["requestedAt"] <= ts["startedAt"] <= ts["finishedAt"]
    assert ts["finishedAt"] - ts["requestedAt"] < timedelta(seconds=built["seconds"] + 2)
    assert rec.get("error") is None
    assert rec["request"]["source"] == req["source"] and rec["force"] is False

    # The agent's latest.json is the same record, byte for byte.
    assert stack.get_bytes(f"agents/{req['project']}/{req['agent']}/latest.json") == \
        stack.get_bytes(f"builds/{name}.json")

    # What StartBuild asked CodeBuild for (the stack keeps moto's dropped overrides).
    build = stack.build(cb["buildId"])
    assert build["buildStatus"] == "SUCCEEDED"
    env = {v["name"]: v["value"] for v in build["environment"]["environmentVariables"]}
    assert env["AGENTBUILD_BUILD_ID"] == name
    assert env["AGENTBUILD_IMAGE_TAG"] == rec["image"]["tag"]
    assert env["AGENTBUILD_PLATFORM"] == "linux/arm64" and env["AGENTBUILD_DOCKERFILE"] == "Dockerfile"
    assert build["source"]["location"] == f"{stack.bucket}/{rec['source']['key']}"
    assert build["sourceVersion"] == version, "CodeBuild fetches the validated object version"
    assert env["AGENTBUILD_FORCE"] == "false"
    assert env["AGENTBUILD_CACHE_TAG"] == f"{req['project']}.{req['agent']}.arm64"


def test_resubmitting_the_same_source_is_reused_without_starting_codebuild(stack, built):
    assert built["execution"]["status"] == "SUCCEEDED"
    stack.wait_idle()
    before = stack.build_count()
    name = f"again-{uid()}"
    d = stack.run(name, built["request"])
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"])["status"] == "REUSED"
    assert stack.build_count() == before, "a REUSED build must not call StartBuild"

    events = stack.history(d["executionArn"])
    assert scheduled(events, "start-build") == 1
    assert scheduled(events, "check-build") == 0 and "AwaitBuild" not in entered(events)

    first = stack.record(built["name"])
    rec = stack.record(name)
    assert rec["status"] == "REUSED" and rec["reusedFrom"] == built["name"]
    assert rec["image"]["tag"] == first["image"]["tag"]
    assert rec["image"]["digest"] == DIGEST
    assert rec["codebuild"].get("buildId") is None
    assert rec.get("error") is None
    # REUSED is a success: it is now the agent's latest.
    p, a = built["request"]["project"], built["request"]["agent"]
    assert stack.get_json(f"agents/{p}/{a}/latest.json")["buildId"] == name


# ---------------------------------------------------------------------------------------------
# 3 — every failing CodeBuild status
# ---------------------------------------------------------------------------------------------

FAILURES = {
    # status: (phase it ends in, phase context code)
    "FAILED": ("BUILD", "COMMAND_EXECUTION_ERROR"),
    "FAULT": ("PROVISIONING", "CLIENT_ERROR"),
    "STOPPED": ("BUILD", "BUILD_STOPPED"),
    "TIMED_OUT": ("BUILD", "BUILD_TIMED_OUT"),
}


@pytest.fixture(scope="module")
def failed_builds(stack):
    """All four failing builds at once (each runs 1 s; its end event ends the wait)."""
    project = f"e2e-fail-{uid()}"
    runs = {}
    for status, (phase, _) in FAILURES.items():
        name = f"{status.lower().replace('_', '-')}-{uid()}"
        stack.script({"match": name, "seconds": 1, "status": status, "failedPhase": phase})
        req = stack.request(project, agent=status.lower().replace("_", "-"))
        runs[status] = (name, req, stack.start(name, req))
    return {s: (name, req, stack.wait(arn)) for s, (name, req, arn) in runs.items()}


@pytest.mark.parametrize("status", FAILURES)
def test_a_failing_build_fails_the_execution_with_its_status_and_is_recorded(stack, failed_builds, status):
    name, req, d = failed_builds[status]
    assert (d["status"], d["error"]) == ("FAILED", status), d
    assert "builds/<buildId>.json" in d["cause"]
    events = stack.history(d["executionArn"])
    assert scheduled(events, "check-build") == 1 and failures(events) == []
    assert scheduled(events, "await-build") == 1
    assert scheduled(events, "record-result") == 1
    assert ended(events)["type"] == "ExecutionFailed"

    rec = stack.record(name)
    assert rec["status"] == status and rec["buildId"] == name
    phase, code = FAILURES[status]
    fp = rec["codebuild"]["failedPhase"]
    assert (fp["name"], fp["status"], fp["code"]) == (phase, status, code)
    assert fp["message"]
    assert rec["timestamps"]["finishedAt"] and rec["codebuild"]["polls"] == 1
    assert rec["image"]["digest"] is None
    # A failure never becomes the agent's latest.
    assert stack.get_json(f"agents/{req['project']}/{req['agent']}/latest.json") is None


def test_a_held_then_released_build_records_the_time_that_really_passed(stack):
    """The record's times are CodeBuild's, and the local CodeBuild reports the times that passed
    (moto alone makes up an end 1–5 minutes after the start): held 4 s, the record says so."""
    name = f"clock-{uid()}"
    stack.script({"match": name, "hold": True})
    before = time.time()
    arn = stack.start(name, stack.request())
    stack.wait_started(name)
    time.sleep(4)
    assert stack.release(name), "the build was not held"
    released = time.time()
    assert stack.wait(arn)["status"] == "SUCCEEDED"
    rec = stack.record(name)
    ts = {k: parse_time(v).timestamp() for k, v in rec["timestamps"].items()}
    assert before - 1 <= ts["startedAt"] <= released - 4 + 1, (before, ts)
    assert abs(ts["finishedAt"] - released) < 2.0, (released, ts)
    took = ts["finishedAt"] - ts["startedAt"]
    assert abs(rec["durations"]["buildSeconds"] - took) < 1.0 and 4 <= took < 4 + 3, (took, rec["durations"])
    timed = [p for p in rec["codebuild"]["phases"] if p.get("durationSeconds") is not None]
    assert abs(sum(p["durationSeconds"] for p in timed) - took) < 1.0, rec["codebuild"]["phases"]
    assert all(ts["startedAt"] - 0.001 <= parse_time(p["endedAt"]).timestamp() <= ts["finishedAt"] + 0.001
               for p in timed if p.get("endedAt")), rec["codebuild"]["phases"]


# ---------------------------------------------------------------------------------------------
# 4 — the deadline stops the build
# ---------------------------------------------------------------------------------------------

def test_a_build_past_its_deadline_is_stopped_and_timed_out(stack):
    name = f"deadline-{uid()}"
    stack.script({"match": name, "hold": True})
    t0 = time.monotonic()
    d = stack.run(name, {"request": stack.request(),
                         "limits": {"deadlineSeconds": 3}})
    took = time.monotonic() - t0
    assert (d["status"], d["error"]) == ("FAILED", "TIMED_OUT"), d
    assert 3 <= took < 15, took

    events = stack.history(d["executionArn"])
    # The wait never outlasts the deadline: it times out right after it, and CheckBuild stops
    # the build.
    assert scheduled(events, "check-build") >= 1
    assert set(failures(events)) == {"States.Timeout"}
    # (AwaitBuild's own look at a running build is not carried on: the wait's result is.)
    polls = scheduled(events, "check-build")

    rec = stack.record(name)
    assert rec["status"] == "TIMED_OUT"
    assert rec["error"]["type"] == "DeadlineExceeded" and "stopped" in rec["error"]["message"]
    assert rec["codebuild"]["polls"] == polls
    build = stack.build(rec["codebuild"]["buildId"])
    assert build["buildStatus"] == "STOPPED" and build["buildComplete"] is True
    # ... and it stays stopped (moto alone would report it SUCCEEDED on the next look).
    assert stack.build(rec["codebuild"]["buildId"])["buildStatus"] == "STOPPED"


# ---------------------------------------------------------------------------------------------
# 5 — an invalid request
# ---------------------------------------------------------------------------------------------

def test_an_invalid_request_fails_at_once_naming_the_field_and_starts_nothing(stack):
    stack.wait_idle()
    before = stack.build_count()
    good = stack.request()
    cases = {
        "project": dict(good, project="Not_Valid"),
        "colour": dict(good, colour="red"),                     # unknown fields are rejected
        "source": dict(good, source=good["source"] + ".missing"),  # must exist
    }
    names = {field: f"bad-{field}-{uid()}" for field in cases}
    arns = {field: stack.start(names[field], req) for field, req in cases.items()}
    for field, arn in arns.items():
        d = stack.wait(arn)
        assert (d["status"], d["error"]) == ("FAILED", "InvalidRequest"), d
        cause = json.loads(d["cause"])
        assert cause["errorType"] == "InvalidRequest"
        assert field in cause["errorMessage"], cause
        events = stack.history(arn)
        assert entered(events) == ["ValidateRequest"]
        assert scheduled(events, "start-build") == 0 and scheduled(events, "record-result") == 0
        assert stack.record(names[field]) is None
        listed = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"builds/{names[field]}")
        assert listed.get("KeyCount", 0) == 0
    assert stack.build_count() == before
    # The API reports such an execution as REJECTED, naming the field, on its project's route.
    api = stack.env.get("AGENTBUILD_API_URL")
    if api:
        status, body, _ = stack.http("GET", f"{api}{stack.build_path(names['colour'], good['project'])}")
        assert status == 200 and body["status"] == "REJECTED", body
        assert "colour" in body["error"]["message"]


# ---------------------------------------------------------------------------------------------
# 6, 7 — transient errors are retried; anything else is caught and recorded as ERROR
# ---------------------------------------------------------------------------------------------

def test_transient_lambda_errors_are_retried_and_the_build_succeeds(stack):
    name = f"retry-{uid()}"
    stack.inject("start-build", {"serviceError": {"code": "TooManyRequestsException", "status": 429},
                                 "match": name})
    stack.inject("await-build", {"error": {"type": "TransientAwsError", "message": "S3.PutObject: 503"},
                                 "times": 2, "match": name})
    stack.wait_idle()
    before = stack.build_count()
    d = stack.run(name, stack.request())
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"])["status"] == "SUCCEEDED"
    events = stack.history(d["executionArn"])
    assert failures(events) == ["Lambda.TooManyRequestsException", "TransientAwsError", "TransientAwsError"]
    assert scheduled(events, "start-build") == 2 and scheduled(events, "await-build") == 3
    assert scheduled(events, "check-build") == 1
    assert stack.build_count() == before + 1, "the throttled StartBuild did not start a build"
    assert [c["injected"] for c in stack.invocations("await-build", name)] == ["error", "error", None]
    assert stack.record(name)["status"] == "SUCCEEDED"


def test_a_step_failing_for_good_is_caught_and_recorded_as_error(stack):
    """StartBuild's handler fails with a non-retried error (injected at the engine boundary)."""
    name = f"crash-{uid()}"
    message = "CodeBuild.StartBuild: AccessDeniedException: not authorized (injected)"
    stack.inject("start-build", {"error": {"type": "AwsServiceError", "message": message}, "match": name})
    stack.wait_idle()
    before = stack.build_count()
    d = stack.run(name, stack.request())
    assert (d["status"], d["error"]) == ("FAILED", "ERROR"), d
    events = stack.history(d["executionArn"])
    assert failures(events) == ["AwsServiceError"], "not retried"
    assert scheduled(events, "check-build") == 0 and scheduled(events, "record-result") == 1
    rec = stack.record(name)
    assert rec["status"] == "ERROR"
    assert rec["error"]["type"] == "AwsServiceError" and message in rec["error"]["message"]
    assert rec["codebuild"].get("buildId") is None
    assert stack.build_count() == before


def test_a_real_handler_error_is_caught_and_recorded_as_error(stack):
    """The real check-build asks CodeBuild for a build it does not know: its own BuildNotFound
    error travels through the runtime emulator and the bridge, and the Catch records it. (The
    wait before it parks and looks — a failed look is no failure — and times out: no event
    comes for a build that does not exist.)"""
    name = f"lost-{uid()}"
    lost = f"{stack.project}:00000000-0000-0000-0000-{uid()}00"
    stack.inject("start-build", {"patch": {"codebuildBuildId": lost, "build": {"codebuildBuildId": lost}},
                                 "match": name})
    d = stack.run(name, stack.request())
    assert (d["status"], d["error"]) == ("FAILED", "ERROR"), d
    events = stack.history(d["executionArn"])
    assert failures(events) == ["States.Timeout", "BuildNotFound"]
    calls = stack.invocations("check-build", name)
    assert [(c["injected"], c["status"], c["errorType"]) for c in calls] == [(None, 500, "BuildNotFound")]
    rec = stack.record(name)
    assert rec["status"] == "ERROR" and rec["error"]["type"] == "BuildNotFound"
    assert lost in rec["error"]["message"]


# ---------------------------------------------------------------------------------------------
# 8, 9 — one execution name, one build; an aborted execution stops its build
# ---------------------------------------------------------------------------------------------

def test_the_same_execution_name_twice_is_one_execution_and_one_build(stack):
    name = f"twice-{uid()}"
    req = stack.request()
    stack.script({"match": name, "hold": True})
    stack.wait_idle()
    before = stack.build_count()
    first = stack.start(name, req)
    stack.wait_started(name)  # StartBuild has started the build
    assert stack.start(name, req) == first
    with pytest.raises(stack.sfn.exceptions.ExecutionAlreadyExists):
        stack.start(name, dict(req, force=True))  # same name, other input
    assert stack.release(name)
    d = stack.wait(first)
    assert d["status"] == "SUCCEEDED", d
    assert stack.build_count() == before + 1
    assert scheduled(stack.history(first), "start-build") == 1
    # A closed execution's name is taken for good.
    with pytest.raises(stack.sfn.exceptions.ExecutionAlreadyExists):
        stack.start(name, req)


def test_aborting_an_execution_stops_its_build_and_closes_the_record(stack):
    name = f"abort-{uid()}"
    stack.script({"match": name, "hold": True})
    arn = stack.start(name, stack.request())
    running = stack.wait_started(name)
    assert running["codebuild"]["buildId"]
    stack.sfn.stop_execution(executionArn=arn)
    assert stack.wait(arn)["status"] == "ABORTED"
    # The EventBridge rule's stand-in hands the ABORTED execution to record-result.
    rec = stack.wait_record(name, ("STOPPED",))
    assert rec["error"]["type"] == "ExecutionAborted"
    assert rec["timestamps"]["finishedAt"]
    build = stack.build(running["codebuild"]["buildId"])
    assert build["buildStatus"] == "STOPPED"
    # (The bridge logs an invocation once it has answered, just after its record write.)
    deadline = time.monotonic() + 5
    while True:
        relayed = [c for c in stack.invocations("record-result", name)
                   if c["request"].get("detail", {}).get("name") == name]
        if relayed or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(relayed) == 1 and relayed[0]["request"]["detail"]["status"] == "ABORTED"
    assert relayed[0]["status"] == 200


# ---------------------------------------------------------------------------------------------
# 10 — the API
# ---------------------------------------------------------------------------------------------

def test_the_api_accepts_answers_idempotently_validates_and_serves_records(stack):
    api = stack.env.get("AGENTBUILD_API_URL")
    assert api, "the stack has no API (AGENTBUILD_API_URL)"
    req = stack.request()
    key = f"k-{uid()}"
    stack.script({"match": req["project"], "hold": True})

    status, body, headers = stack.http("POST", f"{api}/projects/{req['project']}/builds", dict(req, idempotencyKey=key))
    assert status == 202, body
    build_id = body["buildId"]
    assert set(body) == {"buildId", "executionArn", "statusUrl", "existing"} and body["existing"] is False
    assert body["statusUrl"] == f"/projects/{req['project']}/builds/{build_id}" and headers.get("location") == body["statusUrl"]
    assert build_id.startswith("api-")

    # The same key again: the same build, no second execution.
    status, again, _ = stack.http("POST", f"{api}/projects/{req['project']}/builds", dict(req, idempotencyKey=key))
    assert status == 202 and again["buildId"] == build_id and again["executionArn"] == body["executionArn"]

    # While the build is held running: a live status.
    stack.wait_started(build_id)
    status, live, _ = stack.http("GET", f"{api}{stack.build_path(build_id)}")
    assert status == 200 and live["status"] == "RUNNING" and live["state"] in ("Starting", "Building"), live

    stack.release(req["project"])
    d = stack.wait(body["executionArn"])
    assert d["status"] == "SUCCEEDED", d
    # The door is ours to tell (by the execution name), not the input's to claim.
    assert "trigger" not in json.loads(d["input"])
    status, again, _ = stack.http("POST", f"{api}/projects/{req['project']}/builds", dict(req, idempotencyKey=key))
    assert again["buildId"] == build_id

    status, rec, _ = stack.http("GET", f"{api}{stack.build_path(build_id)}")
    assert status == 200 and rec == stack.record(build_id) and rec["status"] == "SUCCEEDED"
    assert rec["trigger"] == "api"
    status, latest, _ = stack.http("GET", f"{api}/projects/{req['project']}/agents/{req['agent']}")
    assert status == 200 and latest["buildId"] == build_id
    assert latest == stack.get_json(f"agents/{req['project']}/{req['agent']}/latest.json")

    status, err, _ = stack.http("POST", f"{api}/projects/{req['project']}/builds", dict(req, agent="Bad_Agent"))
    assert status == 400 and err["error"]["code"] == "InvalidRequest" and err["error"]["field"] == "agent"
    status, err, _ = stack.http("POST", f"{api}/projects/{req['project']}/builds", dict(req, colour="red"))
    assert status == 400 and err["error"]["field"] == "colour"
    assert stack.http("GET", f"{api}{stack.build_path('api-' + uid())}")[0] == 404
    assert stack.http("GET", f"{api}/projects/{req['project']}/agents/nobody")[0] == 404


# ---------------------------------------------------------------------------------------------
# 12 — the CLI's exit codes
# ---------------------------------------------------------------------------------------------

# The `cli` fixture (the built `agentbuild` binary) is in conftest.py: one build per session.

def run_cli(stack: Stack, cli: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    p = subprocess.run([str(cli), "--env-file", str(STATE_DIR / "env"), *args], cwd=ROOT,
                       env={**os.environ, **stack.env}, capture_output=True, text=True, timeout=120)
    lines = p.stdout.strip().splitlines()
    assert lines, f"no stdout (exit {p.returncode}); stderr: {p.stderr[-2000:]}"
    return p.returncode, json.loads(lines[-1]), p.stderr


def test_cli_submit_wait_exits_0_on_success_and_2_when_rejected(stack, cli):
    code, out, err = run_cli(stack, cli, "submit", "--request", "examples/requests/sample.json",
                             "--wait", "--output", "json")
    assert code == 0, (out, err[-2000:])
    assert out["status"] in ("SUCCEEDED", "REUSED") and out["buildId"]
    assert out["record"]["status"] == out["status"]
    assert stack.record(out["buildId"])["status"] == out["status"]

    code, out, err = run_cli(stack, cli, "submit", "--request", "examples/requests/invalid.json",
                             "--wait", "--output", "json")
    assert code == 2, (out, err[-2000:])
    assert out["status"] == "REJECTED" and out["error"]["field"] == "agent"
