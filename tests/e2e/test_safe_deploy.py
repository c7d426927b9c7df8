"""Safe deploys (issue 23, docs/deploy-runtime.md): a new runtime version is smoke-tested on the
local data plane (the stand-in of a container really started on a loopback port, /ping then
POST /invocations) before the agent's named endpoint `live` moves to it; a version that crashes
on start, answers 500 or hangs leaves `live` where it was, its deployment FAILED naming the
reason, the execution failing DeployFailed and the build keeping its status.

Run: make test-e2e ARGS="-k safe_deploy"
"""
from __future__ import annotations

from typing import Any

import pytest

from conftest import uid
from test_deploy import agentcore, deployed  # noqa: F401 (the fixture)
from test_pipeline import run_cli  # the `cli` fixture is conftest.py's

FAULT = "AGENTBUILD_LOCAL_AGENT_FAULT"


def live(agentcore, rid: str, name: str = "live") -> dict[str, Any]:
    return agentcore.get_agent_runtime_endpoint(agentRuntimeId=rid, endpointName=name)


def version(stack, req: dict[str, Any], extra: str, **deploy: Any) -> dict[str, Any]:
    uri, _ = stack.upload_source(req["project"], "bot", extra=extra)
    return dict(req, source=uri, force=True, deploy={**req["deploy"], **deploy})


@pytest.fixture(scope="module")
def v1(stack, agentcore):
    req = dict(stack.request(agent="bot"), deploy={"smokeTest": {"payload": {"prompt": "hi"}, "timeoutSeconds": 4}})
    name = f"safe-v1-{uid()}"
    rec = deployed(stack, name, req)
    return req, rec


def test_the_first_good_version_goes_live_after_its_smoke_test(stack, agentcore, v1):
    _, rec = v1
    dep = rec["deployment"]
    assert (dep["status"], dep["endpoint"], dep["version"]) == ("READY", "live", "1"), dep
    assert dep["smoke"] == {"status": "PASSED"} and "previousVersion" not in dep, dep
    ep = live(agentcore, dep["runtimeId"])
    assert (ep["status"], ep["liveVersion"]) == ("READY", "1"), ep


@pytest.mark.parametrize("fault,reason", [
    ("crash", "exited with code"),
    ("500", "answered 500"),
    ("hang", "did not answer within"),
])
def test_a_failing_version_never_takes_live(stack, agentcore, v1, fault, reason):
    req, rec1 = v1
    rid = rec1["deployment"]["runtimeId"]
    before = live(agentcore, rid)["liveVersion"]
    name = f"safe-{fault}-{uid()}"
    d = stack.run(name, version(stack, req, f"bad-{fault}-{uid()}", environmentVariables={FAULT: fault}),
                  timeout=90)
    assert (d["status"], d["error"]) == ("FAILED", "DeployFailed"), d
    rec = stack.record(name)
    assert rec["status"] == "SUCCEEDED" and "error" not in rec, "the build's own status is kept"
    dep = rec["deployment"]
    assert dep["status"] == "FAILED" and dep["smoke"]["status"] == "FAILED", dep
    assert reason in dep["smoke"]["reason"] and reason in dep["failureReason"], dep
    assert dep["previousVersion"] == before and dep["version"] != before, dep
    assert f"version {dep['version']}" in dep["failureReason"]
    assert live(agentcore, rid)["liveVersion"] == before


def test_a_good_version_after_failures_goes_live_and_reports_what_it_replaced(stack, agentcore, v1):
    req, rec1 = v1
    rid = rec1["deployment"]["runtimeId"]
    before = live(agentcore, rid)["liveVersion"]
    name = f"safe-v3-{uid()}"
    rec = deployed(stack, name, version(stack, req, f"good-{uid()}"))
    dep = rec["deployment"]
    assert (dep["status"], dep["previousVersion"], dep["smoke"]["status"]) == ("READY", before, "PASSED"), dep
    assert live(agentcore, rid)["liveVersion"] == dep["version"] != before


def test_lifecycle_and_platform_version_pass_through(stack, agentcore):
    req = dict(stack.request(agent="bot"),
               deploy={"lifecycle": {"idleRuntimeSessionTimeout": 120, "maxLifetime": 3600},
                       "platformVersion": "V2"})
    rec = deployed(stack, f"safe-life-{uid()}", req)
    rt = agentcore.get_agent_runtime(agentRuntimeId=rec["deployment"]["runtimeId"])
    assert rt["lifecycleConfiguration"] == {"idleRuntimeSessionTimeout": 120, "maxLifetime": 3600}
    assert rt["platformVersion"] == "V2", rt
    assert rec["request"]["deploy"]["platformVersion"] == "V2", "the record keeps it"
    # (Out-of-range values are refused by name at both doors: test_deploy.BAD_DEPLOYS.)


def test_rollback_moves_live_back_to_a_good_version_and_is_recorded(stack, agentcore, v1, cli):
    req, rec1 = v1
    rid = rec1["deployment"]["runtimeId"]
    api = stack.env["AGENTBUILD_API_URL"]
    base = f"{api}/projects/{req['project']}/agents/bot"
    # A good version on top, so that there is something to roll back from.
    deployed(stack, f"safe-v4-{uid()}", version(stack, req, f"good-{uid()}"))
    serving = live(agentcore, rid)["liveVersion"]
    assert serving != "1"
    status, body, _ = stack.http("POST", f"{base}/rollback", {"to": rec1["buildId"]})
    assert status == 200, body
    assert (body["kind"], body["version"], body["previousVersion"], body["status"]) == \
        ("ROLLBACK", "1", serving, "READY"), body
    assert live(agentcore, rid)["liveVersion"] == "1"
    # A version whose smoke test failed is never a rollback target.
    status, history, _ = stack.http("GET", f"{base}/deployments")
    assert status == 200, history
    kinds = [(e["kind"], e["version"], e["status"]) for e in history["deployments"]]
    assert kinds[0] == ("DEPLOY", "1", "READY") and kinds[-1] == ("ROLLBACK", "1", "READY"), kinds
    failed = [e for e in history["deployments"] if e["status"] == "FAILED"]
    if failed:
        status, body, _ = stack.http("POST", f"{base}/rollback", {"to": failed[0]["version"]})
        assert (status, body["error"]["code"]) == (409, "NothingToRollBackTo"), body
    assert live(agentcore, rid)["liveVersion"] == "1"
    # The CLI's door (through the API): back to the version served before, by its number.
    code, entry, err = run_cli(stack, cli, "rollback", f"{req['project']}/bot", "--to", serving)
    assert code == 0, err[-2000:]
    assert (entry["kind"], entry["version"], entry["previousVersion"]) == ("ROLLBACK", serving, "1"), entry
    assert live(agentcore, rid)["liveVersion"] == serving
    assert entry["by"], "who rolled back is recorded"
    # The rollback pins live: a rebuild of the latest's submission (what the nightly fleet run
    # sends) builds and is recorded, but does not move live forward again.
    live_now = live(agentcore, rid)["liveVersion"]
    latest = stack.get_json(f"agents/{req['project']}/bot/latest.json")
    name = f"safe-rebuild-{uid()}"
    d = stack.run(name, {"rebuild": {"buildId": latest["buildId"], "run": "20261129T0300"}}, timeout=90)
    assert d["status"] == "SUCCEEDED", d
    dep = stack.record(name)["deployment"]
    assert dep["status"] == "SUPERSEDED" and "rolled back" in dep["superseded"]["reason"], dep
    assert live(agentcore, rid)["liveVersion"] == live_now, "the rollback holds"


def test_promote_deploys_an_existing_build_to_a_second_endpoint_without_building(stack, agentcore, v1):
    req, rec1 = v1
    rid = rec1["deployment"]["runtimeId"]
    api = stack.env["AGENTBUILD_API_URL"]
    # The agent's latest build: its image is the one the stack keeps (older ones may expire).
    rec1 = stack.record(stack.get_json(f"agents/{req['project']}/bot/latest.json")["buildId"])
    live_before = live(agentcore, rid)["liveVersion"]
    builds_before = stack.build_count()
    status, body, _ = stack.http("POST", f"{api}/projects/{req['project']}/builds/{rec1['buildId']}/promote",
                                 {"deploy": {"endpoint": "staging"}})
    assert status == 202, body
    rec = stack.wait_record(body["buildId"], ("SUCCEEDED", "REUSED", "FAILED", "ERROR"), timeout=90)
    assert rec["status"] == "REUSED" and stack.build_count() == builds_before, "no CodeBuild build"
    assert rec["image"]["uri"] == rec1["image"]["uri"]
    dep = rec["deployment"]
    assert (dep["status"], dep["endpoint"], dep["smoke"]["status"]) == ("READY", "staging", "PASSED"), dep
    assert live(agentcore, rid, "staging")["liveVersion"] == dep["version"]
    assert live(agentcore, rid)["liveVersion"] == live_before, "live did not move"
    # The same validation as every door: a bad deploy is refused by name.
    status, body, _ = stack.http("POST", f"{api}/projects/{req['project']}/builds/{rec1['buildId']}/promote",
                                 {"deploy": {"endpoint": "DEFAULT"}})
    assert (status, body["error"]["field"]) == (400, "deploy.endpoint"), body


def test_promote_of_an_older_build_deploys_its_own_image_and_leaves_latest_alone(stack, agentcore, v1):
    """Item 1 and 2 of the review: promoting a build that is not the agent's latest reuses that
    build's own image digest (no CodeBuild build), deploys it to the named endpoint, and neither
    moves `live` nor `latest.json` (what scheduled rebuilds rebuild and redeploy)."""
    req, rec1 = v1
    rid = rec1["deployment"]["runtimeId"]
    api = stack.env["AGENTBUILD_API_URL"]
    latest_key = f"agents/{req['project']}/bot/latest.json"
    # A newer good version makes v1 an older build (the module's other tests may run in another
    # process or lane, on another stack: this test makes its own).
    if stack.get_json(latest_key)["buildId"] == rec1["buildId"]:
        deployed(stack, f"safe-newer-{uid()}", version(stack, req, f"newer-{uid()}"))
    latest_before = stack.get_json(latest_key)
    assert latest_before["buildId"] != rec1["buildId"], "v1 is no longer the latest"
    assert latest_before["image"]["digest"] != rec1["image"]["digest"]
    live_before = live(agentcore, rid)["liveVersion"]
    builds_before = stack.build_count()
    url = f"{api}/projects/{req['project']}/builds/{rec1['buildId']}/promote"
    status, body, _ = stack.http("POST", url, {"deploy": {"endpoint": "canary"}})
    assert status == 202, body
    rec = stack.wait_record(body["buildId"], ("SUCCEEDED", "REUSED", "FAILED", "ERROR"), timeout=90)
    assert rec["status"] == "REUSED" and stack.build_count() == builds_before, "no CodeBuild build"
    assert rec["promotedFrom"] == rec1["buildId"], rec
    assert rec["image"]["digest"] == rec1["image"]["digest"], "the promoted build's own image"
    dep = rec["deployment"]
    assert (dep["status"], dep["endpoint"]) == ("READY", "canary"), dep
    assert dep["containerUri"].endswith("@" + rec1["image"]["digest"]), dep
    assert live(agentcore, rid, "canary")["liveVersion"] == dep["version"]
    served = agentcore.get_agent_runtime(agentRuntimeId=rid, agentRuntimeVersion=dep["version"])
    assert served["agentRuntimeArtifact"]["containerConfiguration"]["containerUri"] == dep["containerUri"]
    assert live(agentcore, rid)["liveVersion"] == live_before, "live did not move"
    assert stack.get_json(latest_key) == latest_before, "latest.json (and its deploy settings) kept"
    # The endpoint the agent's latest deploy serves is a rollback's to move, not a promote's.
    status, body, _ = stack.http("POST", url, {"deploy": {}})
    assert (status, body["error"]["field"]) == (400, "deploy.endpoint"), body
    assert "roll back" in body["error"]["message"], body
    assert live(agentcore, rid)["liveVersion"] == live_before


def test_a_rollback_stays_on_its_runtime_and_needs_its_image(stack, agentcore, v1):
    """Rollback is keyed by (runtime, endpoint): a `to` that names another runtime's version is
    refused naming `to`; and a version whose image is gone from ECR is refused before anything
    moves. (Last in the module: it deletes v1's image.)"""
    from test_images import ecr, repository, tags_of_image

    req, rec1 = v1
    rid = rec1["deployment"]["runtimeId"]
    api = stack.env["AGENTBUILD_API_URL"]
    base = f"{api}/projects/{req['project']}/agents/bot"
    # v1 promoted to `live` of another runtime: that runtime's version, not live's of rid.
    other = f"safe_other_{uid()}"
    status, body, _ = stack.http("POST", f"{api}/projects/{req['project']}/builds/{rec1['buildId']}/promote",
                                 {"deploy": {"runtimeName": other}})
    assert status == 202, body
    promoted = stack.wait_record(body["buildId"], ("SUCCEEDED", "REUSED", "FAILED", "ERROR"), timeout=90)
    dep = promoted["deployment"]
    assert (promoted["status"], dep["status"], dep["runtimeName"]) == ("REUSED", "READY", other), dep
    before = live(agentcore, rid)["liveVersion"]
    status, body, _ = stack.http("POST", f"{base}/rollback", {"to": promoted["buildId"]})
    assert (status, body["error"]["code"], body["error"].get("field")) == (409, "NothingToRollBackTo", "to"), body
    assert "of runtime" in body["error"]["message"], body
    assert live(agentcore, rid)["liveVersion"] == before
    # v1's image deleted from ECR (expired, or by hand): live of rid cannot go back to it.
    tag = rec1["image"]["tag"]
    tags = tags_of_image(stack, tag)
    assert tags, "v1's image is there before"
    ecr(stack).batch_delete_image(repositoryName=repository(stack), imageIds=[{"imageTag": t} for t in tags])
    status, body, _ = stack.http("POST", f"{base}/rollback", {"to": rec1["buildId"]})
    assert (status, body["error"].get("field")) == (409, "to"), body
    assert "no longer exists" in body["error"]["message"], body
    assert live(agentcore, rid)["liveVersion"] == before, "nothing moved"
