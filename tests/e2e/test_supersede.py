"""A live agent never moves backwards (issue 20 item 4, docs/deploy-runtime.md): a deploy claims
the agent's deploy ledger before it touches the runtime; a deploy of an older submission than
the ledger names is not applied and its record says SUPERSEDED.

Run: bash scripts/e2e.sh -k supersede
"""
from __future__ import annotations

from conftest import uid
from test_deploy import agentcore, deployed, runtime  # noqa: F401 (the fixture)


def test_an_older_submission_that_finishes_after_a_newer_deploy_leaves_the_runtime_alone(stack, agentcore):
    req = dict(stack.request(agent="bot"), deploy={})
    old = f"dep-old-{uid()}"
    stack.script({"match": old, "hold": True})
    old_arn = stack.start(old, req)
    stack.wait_started(old)
    # A newer submission of the same agent is built and deployed while the older one builds.
    uri2, _ = stack.upload_source(req["project"], "bot", extra="newer")
    new = f"dep-new-{uid()}"
    rec_new = deployed(stack, new, dict(req, source=uri2))
    dep_new = rec_new["deployment"]
    assert dep_new["status"] == "READY", dep_new
    ledger = stack.get_json(f"agents/{req['project']}/bot/deployed.json")
    assert (ledger["buildId"], ledger["containerUri"]) == (new, rec_new["image"]["uri"]), ledger

    assert stack.release(old), "the older build was not held"
    d = stack.wait(old_arn, timeout=60)
    # A supersede is no deploy failure: the execution succeeds, the build keeps its status.
    assert d["status"] == "SUCCEEDED", d
    rec_old = stack.record(old)
    assert rec_old["status"] == "SUCCEEDED" and "error" not in rec_old, rec_old
    dep_old = rec_old["deployment"]
    assert dep_old["status"] == "SUPERSEDED", dep_old
    assert dep_old["superseded"]["by"] == new and "newer submission" in dep_old["superseded"]["reason"]
    assert dep_old["containerUri"] == rec_old["image"]["uri"] != rec_new["image"]["uri"]
    assert dep_old.get("runtimeId") is None and "failureReason" not in dep_old

    # The runtime still runs the newer image, at the version the newer deploy made.
    rt = runtime(agentcore, dep_new["runtimeId"])
    assert rt["agentRuntimeArtifact"]["containerConfiguration"]["containerUri"] == rec_new["image"]["uri"]
    assert rt["agentRuntimeVersion"] == dep_new["runtimeVersion"]
    assert stack.get_json(f"agents/{req['project']}/bot/latest.json")["buildId"] == new
    assert stack.get_json(f"agents/{req['project']}/bot/deployed.json")["buildId"] == new
    # ... and `live` still serves the newer deploy's version (a stale deploy never moves it).
    ep = agentcore.get_agent_runtime_endpoint(agentRuntimeId=dep_new["runtimeId"], endpointName="live")
    assert ep["liveVersion"] == dep_new["version"] == dep_new["runtimeVersion"], ep
