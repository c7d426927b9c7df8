"""Runtime names belong to one agent of one stack, and none are orphaned (issue 21, item 3): a
name is bound on first use (runtimes/<name>.json, a conditional write); another agent naming it
is refused with `deploy.runtimeName` at the API (400) and at the console door (the execution
fails InvalidRequest); a changed `runtimeName` leaves the old runtime listed SUPERSEDED until it
is retired (deleted in AgentCore, recorded RETIRED, the name kept as a tombstone). The routes
are the project's (`/projects/{project}/agents/{agent}/runtimes[/{name}]`): every call is signed,
and a caller allowed another project gets the front door's 403 (as on every route: test_access).

Run: scripts/e2e.sh -k runtimes (needs the local stack; see test_pipeline.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from conftest import ROOT, STATE_DIR, Stack, uid

FIELD = "deploy.runtimeName"
FORBIDDEN = {"message": "Forbidden"}


@pytest.fixture(scope="module")
def agentcore(stack):
    import boto3

    env = stack.env
    return boto3.client("bedrock-agentcore-control", endpoint_url=env["AWS_ENDPOINT_URL"],
                        region_name=env["AWS_REGION"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def api(stack: Stack) -> str:
    url = stack.env.get("AGENTBUILD_API_URL")
    assert url, "the stack has no API (AGENTBUILD_API_URL)"
    return url


def default_name(stack_name: str, project: str, agent: str) -> str:
    """domain::deploy_request::default_runtime_name."""
    readable = f"ab_{project}_{agent}".replace("-", "_")[:39]
    return f"{readable}_{hashlib.sha256(f'{stack_name}/{project}/{agent}'.encode()).hexdigest()[:8]}"


def post(stack: Stack, project: str, agent: str, deploy: dict[str, Any]) -> tuple[int, Any]:
    req = dict(stack.request(project, agent), deploy=deploy)
    status, body, _ = stack.http("POST", f"{api(stack)}/projects/{project}/builds", req)
    return status, body


def runtimes_of(stack: Stack, project: str, agent: str,
                credentials: tuple[str, str] | None = None) -> dict[str, dict[str, Any]]:
    url = f"{api(stack)}/projects/{project}/agents/{agent}/runtimes"
    status, body, _ = stack.http("GET", url, credentials=credentials)
    assert status == 200, body
    return {r["runtimeName"]: r for r in body["runtimes"]}


def run_cli_as(stack: Stack, cli, caller: tuple[str, str], *args: str) -> tuple[int, Any, str]:
    """`agentbuild …` signing with `caller`'s key (an IAM user of stack.caller)."""
    env = {**os.environ, **stack.env, "AWS_ACCESS_KEY_ID": caller[0],
           "AWS_SECRET_ACCESS_KEY": caller[1]}
    p = subprocess.run([str(cli), "--env-file", str(STATE_DIR / "env"), *args], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=120)
    lines = p.stdout.strip().splitlines()
    return p.returncode, json.loads(lines[-1]) if lines else None, p.stderr


def test_squatting_another_agents_name_or_default_name_is_refused_at_both_doors(stack):
    project = f"rt-sq-{uid()}"
    name = f"Owned_{uid().replace('-', '_')}"
    status, body = post(stack, project, "owner", {"runtimeName": name})
    assert status == 202, body
    binding = stack.get_json(f"runtimes/{name}.json")
    assert (binding["project"], binding["agent"]) == (project, "owner"), binding

    stack_name = stack.env.get("AGENTBUILD_STACK_NAME", "agentbuild-local")
    for taken in (name, default_name(stack_name, project, "victim")):
        status, body = post(stack, project, "squatter", {"runtimeName": taken})
        assert status == 400, body
        assert (body["error"]["code"], body["error"]["field"]) == ("InvalidRequest", FIELD), body
    assert stack.get_json(f"runtimes/{default_name(stack_name, project, 'victim')}.json") is None

    # The console door: the execution fails InvalidRequest naming the field; nothing is built.
    req = dict(stack.request(project, "squatter"), deploy={"runtimeName": name})
    d = stack.run(f"rt-sq-{uid()}", req, timeout=40)
    assert (d["status"], d.get("error")) == ("FAILED", "InvalidRequest"), d
    assert json.loads(d["cause"])["errorMessage"].startswith(f"{FIELD}: "), d["cause"]
    assert stack.get_json(f"runtimes/{name}.json")["agent"] == "owner"


def test_of_two_agents_claiming_one_free_name_at_once_exactly_one_wins(stack):
    project = f"rt-race-{uid()}"
    for round_ in range(4):
        name = f"Race_{round_}_{uid().replace('-', '_')}"
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda a: (a, post(stack, project, a, {"runtimeName": name})),
                                    ("left", "right")))
        statuses = sorted(status for _, (status, _) in answers)
        assert statuses == [202, 400], answers
        winner = next(a for a, (status, _) in answers if status == 202)
        loser = next(body for _, (status, body) in answers if status == 400)
        assert loser["error"]["field"] == FIELD, loser
        assert stack.get_json(f"runtimes/{name}.json")["agent"] == winner


def deploy(stack: Stack, project: str, agent: str, name: str) -> dict[str, Any]:
    req = dict(stack.request(project, agent), deploy={"runtimeName": name}, force=True)
    build_id = f"rt-{uid()}"
    d = stack.run(build_id, req, timeout=60)
    assert d["status"] == "SUCCEEDED", d
    rec = stack.record(build_id)
    assert rec["deployment"]["status"] == "READY", rec
    return rec


def test_a_changed_name_lists_the_old_runtime_and_retire_deletes_it_once(stack, agentcore, cli):
    project, agent = f"rt-mv-{uid()}", "bot"
    old, new = f"Old_{uid().replace('-', '_')}", f"New_{uid().replace('-', '_')}"
    first = deploy(stack, project, agent, old)
    second = deploy(stack, project, agent, new)
    old_id = first["deployment"]["runtimeId"]

    # A caller allowed this project only (the template's ExampleCallerPolicy) lists and retires;
    # one allowed another project gets 403 from the front door on both routes.
    mine, theirs = stack.caller(project), stack.caller(f"rt-other-{uid()}")
    listed = runtimes_of(stack, project, agent, credentials=mine)
    assert (listed[old]["status"], listed[new]["status"]) == ("SUPERSEDED", "ACTIVE"), listed
    assert listed[old]["lastBuildId"] == first["buildId"]
    assert listed[new]["lastBuildId"] == second["buildId"]
    assert listed[old]["runtimeId"] == old_id
    assert agentcore.get_agent_runtime(agentRuntimeId=old_id)["status"] == "READY"

    url = f"{api(stack)}/projects/{project}/agents/{agent}/runtimes"
    for method, path in (("GET", url), ("DELETE", f"{url}/{old}")):
        assert stack.http(method, path, credentials=theirs)[:2] == (403, FORBIDDEN), (method, path)
    code, _, err = run_cli_as(stack, cli, theirs, "retire", f"{project}/{agent}", old)
    assert code != 0 and "403" in err, (code, err[-2000:])
    assert agentcore.get_agent_runtime(agentRuntimeId=old_id)["status"] == "READY", "untouched"

    # The current runtime is retired only when forced.
    status, body, _ = stack.http("DELETE", f"{url}/{new}", credentials=mine)
    assert (status, body["error"]["code"], body["error"]["field"]) == (409, "RuntimeInUse", FIELD)
    # Another agent cannot retire it, nor learn of it.
    other = f"{api(stack)}/projects/{project}/agents/other/runtimes/{old}"
    status, _, _ = stack.http("DELETE", other, credentials=mine)
    assert status == 404

    code, out, err = run_cli_as(stack, cli, mine, "retire", f"{project}/{agent}", old,
                                "--output", "json")
    assert code == 0, (out, err[-2000:])
    assert out["status"] == "RETIRED" and out["retired"]["runtimeArn"], out
    with pytest.raises(agentcore.exceptions.ResourceNotFoundException):
        agentcore.get_agent_runtime(agentRuntimeId=old_id)
    stored = stack.get_json(f"runtimes/{old}.json")
    assert stored["retired"]["at"] and stored["retired"]["by"], stored

    status, again, _ = stack.http("DELETE", f"{url}/{old}", credentials=mine)
    assert (status, again) == (200, out), "retiring twice answers the same"
    code, listed_out, _ = run_cli_as(stack, cli, mine, "runtimes", f"{project}/{agent}",
                                     "--output", "json")
    assert code == 0
    states = {r["runtimeName"]: r["status"] for r in listed_out["runtimes"]}
    assert states == {old: "RETIRED", new: "ACTIVE"}, listed_out
    # The tombstone keeps the name the agent's.
    status, body = post(stack, project, "squatter", {"runtimeName": old})
    assert (status, body["error"]["field"]) == (400, FIELD), body
