"""Per-project access (issue 21, item 1), end to end: a caller allowed one project — an IAM user
in moto whose only policy is template.yaml's ExampleCallerPolicy for that project — gets 403 on
every route of another project (API Gateway's answer: the local front door checks SigV4 and
evaluates the caller's policy for execute-api:Invoke on the route's ARN, as AWS does); its own
routes work as before; a build id of another project answers exactly what an unknown id answers
(never revealing it, never cancelling it); a body whose project is not the path's is a 400
naming `project`.

What is real here: the routes, the handler's checks, the SigV4 signatures (botocore signs; the
front door recomputes them), the policy document (the template's). What is emulated: API
Gateway's authorizer (local/agentbuild_local/front_door.py, with tests/policy/evaluator.py).
"""
from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import pytest

from conftest import ROOT, STATE_DIR, Stack, uid

FORBIDDEN = {"message": "Forbidden"}


def api(stack: Stack) -> str:
    url = stack.env.get("AGENTBUILD_API_URL")
    assert url, "the stack has no API (AGENTBUILD_API_URL)"
    return url


def held_build(stack: Stack, project: str) -> tuple[str, dict[str, Any]]:
    """A build of `project` submitted through the API by the stack's administrator, held
    running in CodeBuild; (build id, its request)."""
    req = stack.request(project)
    stack.script({"match": project, "hold": True})
    status, body, _ = stack.http("POST", f"{api(stack)}/projects/{project}/builds", req)
    assert status == 202, body
    stack.wait_started(body["buildId"])
    return body["buildId"], req


def routes(project: str, build_id: str, agent: str) -> list[tuple[str, str]]:
    """Every route of `project`: submit, status, cancel, logs, latest, runtimes, retire."""
    return [("POST", f"/projects/{project}/builds"),
            ("GET", f"/projects/{project}/builds/{build_id}"),
            ("DELETE", f"/projects/{project}/builds/{build_id}"),
            ("GET", f"/projects/{project}/builds/{build_id}/logs"),
            ("GET", f"/projects/{project}/agents/{agent}"),
            ("GET", f"/projects/{project}/agents/{agent}/runtimes"),
            ("DELETE", f"/projects/{project}/agents/{agent}/runtimes/Any_Name")]


def test_every_route_of_another_project_is_403_and_changes_nothing(stack):
    mine, theirs = f"e2e-mine-{uid()}", f"e2e-theirs-{uid()}"
    caller = stack.caller(mine)
    build_id, req = held_build(stack, theirs)
    before = stack.record(build_id)
    try:
        for method, path in routes(theirs, build_id, req["agent"]):
            body = req if method == "POST" else None
            status, answer, _ = stack.http(method, f"{api(stack)}{path}", body, credentials=caller)
            assert (status, answer) == (403, FORBIDDEN), (method, path, answer)
        # Nothing moved: not cancelled (the record only follows its build's phases).
        after = stack.record(build_id)
        assert after["status"] == before["status"] == "RUNNING" and "error" not in after
        arn = stack.machine.replace(":stateMachine:", ":execution:") + f":{build_id}"
        assert stack.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        # Unsigned, or signed with a wrong secret, or by an unknown key: 403 as well.
        path = f"{api(stack)}/projects/{mine}/agents/{req['agent']}"
        assert stack.http("GET", path, sign=False)[:2] == (403, FORBIDDEN)
        assert stack.http("GET", path, credentials=(caller[0], "wrong"))[:2] == (403, FORBIDDEN)
        assert stack.http("GET", path, credentials=("AKIAUNKNOWN000000000", "x"))[:2] == (403, FORBIDDEN)
    finally:
        stack.release(theirs)


def test_a_build_id_of_another_project_answers_as_an_unknown_id(stack):
    mine, theirs = f"e2e-mine-{uid()}", f"e2e-theirs-{uid()}"
    caller = stack.caller(mine)
    build_id, _ = held_build(stack, theirs)
    unknown = f"api-{uid()}"
    try:
        for method, suffix in (("GET", ""), ("GET", "/logs"), ("DELETE", "")):
            # Allowed by IAM (the path is the caller's project): the API answers.
            other = stack.http(method, f"{api(stack)}/projects/{mine}/builds/{build_id}{suffix}",
                               credentials=caller)
            none = stack.http(method, f"{api(stack)}/projects/{mine}/builds/{unknown}{suffix}",
                              credentials=caller)
            assert other[0] == none[0] == 404, (method, suffix, other, none)
            assert other[1] == {"error": {**none[1]["error"],
                                          "message": none[1]["error"]["message"].replace(unknown, build_id)}}
            assert set(other[2]) == set(none[2]), "the same headers"
        arn = stack.machine.replace(":stateMachine:", ":execution:") + f":{build_id}"
        assert stack.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING", "not cancelled"
        assert stack.record(build_id)["status"] == "RUNNING"
    finally:
        stack.release(theirs)


def test_a_callers_own_project_works_as_before(stack):
    mine = f"e2e-mine-{uid()}"
    caller = stack.caller(mine)
    req = stack.request(mine)
    base = f"{api(stack)}/projects/{mine}"
    status, accepted, headers = stack.http("POST", f"{base}/builds", req, credentials=caller)
    assert status == 202, accepted
    build_id = accepted["buildId"]
    assert accepted["statusUrl"] == f"/projects/{mine}/builds/{build_id}" == headers["location"]
    d = stack.wait(accepted["executionArn"])
    assert d["status"] == "SUCCEEDED", d
    status, record, _ = stack.http("GET", f"{base}/builds/{build_id}", credentials=caller)
    assert status == 200 and record == stack.record(build_id) and record["status"] == "SUCCEEDED"
    status, latest, _ = stack.http("GET", f"{base}/agents/{req['agent']}", credentials=caller)
    assert status == 200 and latest["buildId"] == build_id
    status, logs, _ = stack.http("GET", f"{base}/builds/{build_id}/logs", credentials=caller)
    assert status == 200 and logs["buildId"] == build_id and isinstance(logs["events"], list), logs
    status, refused, _ = stack.http("DELETE", f"{base}/builds/{build_id}", credentials=caller)
    assert (status, refused["error"]["code"]) == (409, "AlreadyFinished"), refused


def test_the_logs_route_pages_the_builds_stream(stack, cli):
    """GET .../logs reads the stream the record names (CloudWatch Logs in moto), in pages."""
    import boto3

    mine = f"e2e-mine-{uid()}"
    caller = stack.caller(mine)
    build_id, _ = held_build(stack, mine)
    try:
        # The stream is named once CodeBuild is looked at (BatchGetBuilds: the fallback poll).
        deadline = time.monotonic() + 30
        while not (at := (rec := stack.record(build_id))["codebuild"].get("logs")):
            if time.monotonic() > deadline:
                pytest.fail(f"the record names no log stream: {rec['codebuild']}")
            time.sleep(0.5)
        logs = boto3.client("logs", endpoint_url=stack.env["AWS_ENDPOINT_URL"],
                            region_name=stack.env["AWS_REGION"], aws_access_key_id="local",
                            aws_secret_access_key="local")
        try:
            logs.create_log_group(logGroupName=at["group"])
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        logs.create_log_stream(logGroupName=at["group"], logStreamName=at["stream"])
        now = int(time.time() * 1000)
        lines = [f"line {i}" for i in range(250)]
        logs.put_log_events(logGroupName=at["group"], logStreamName=at["stream"],
                            logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)])
        url = f"{api(stack)}/projects/{mine}/builds/{build_id}/logs"
        status, first, _ = stack.http("GET", url, credentials=caller)
        assert status == 200, first
        assert [e["message"] for e in first["events"]] == lines[:200], "a bounded page"
        from urllib.parse import quote
        status, second, _ = stack.http("GET", f"{url}?nextToken={quote(first['nextToken'], safe='')}",
                                       credentials=caller)
        assert status == 200, second
        assert [e["message"] for e in second["events"]] == lines[200:]
        # `agentbuild logs` reads the same route (the caller needs no CloudWatch access).
        p = subprocess.run([str(cli), "--env-file", str(STATE_DIR / "env"), "logs", build_id,
                            "--project", mine, "--tail", "3"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, env={**os.environ, **stack.env,
                                                        "AWS_ACCESS_KEY_ID": caller[0],
                                                        "AWS_SECRET_ACCESS_KEY": caller[1]})
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip().splitlines()[-3:] == lines[-3:], (p.stdout, p.stderr)
        p = subprocess.run([str(cli), "--env-file", str(STATE_DIR / "env"), "logs", build_id,
                            "--project", f"e2e-theirs-{uid()}"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, env={**os.environ, **stack.env,
                                                        "AWS_ACCESS_KEY_ID": caller[0],
                                                        "AWS_SECRET_ACCESS_KEY": caller[1]})
        assert p.returncode != 0 and "403" in p.stderr, (p.returncode, p.stderr)
    finally:
        stack.release(mine)


def test_a_body_whose_project_is_not_the_paths_is_400_naming_project(stack):
    mine = f"e2e-mine-{uid()}"
    caller = stack.caller(mine)
    other = stack.request(f"e2e-theirs-{uid()}")
    status, answer, _ = stack.http("POST", f"{api(stack)}/projects/{mine}/builds", other,
                                   credentials=caller)
    assert status == 400, answer
    assert (answer["error"]["code"], answer["error"]["field"]) == ("InvalidRequest", "project"), answer
    assert stack.record(answer.get("buildId", "none")) is None
