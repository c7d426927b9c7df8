"""Deploy what exists (issue 23 item 3, docs/deploy-runtime.md): a request that names an image
this stack built (`<repository>@sha256:<digest>`) or a code artifact version it made, instead
of a source, deploys it as the promote of the build that made it — through the API and the
console alike: no CodeBuild build, the named endpoint READY after its smoke test, `live` and
latest.json untouched. An artifact no recorded build of this agent made (another digest,
another repository, a tag, another agent's, another version) is refused naming the field.

Run: make test-e2e ARGS="-k deploy_prebuilt"
"""
from __future__ import annotations

from typing import Any

import pytest

from conftest import uid
from test_code_artifact import upload
from test_deploy import agentcore, deployed  # noqa: F401 (the fixture)
from test_pipeline import run_cli  # the `cli` fixture is conftest.py's
from test_safe_deploy import live

DONE = ("SUCCEEDED", "REUSED", "FAILED", "ERROR")


@pytest.fixture(scope="module")
def built(stack):
    """A container build of agent `shelf`, deployed to `live`."""
    req = dict(stack.request(agent="shelf"), deploy={})
    rec = deployed(stack, f"prebuilt-v1-{uid()}", req)
    ref = f"{rec['image']['repositoryUri']}@{rec['image']['digest']}"
    return req, rec, ref


def prebuilt(project: str, artifact: dict[str, Any], agent: str = "shelf", **deploy: Any) -> dict[str, Any]:
    return {"project": project, "agent": agent, "prebuilt": artifact, "deploy": deploy}


def submit(stack, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    api = stack.env["AGENTBUILD_API_URL"]
    status, answer, _ = stack.http("POST", f"{api}/projects/{body['project']}/builds", body)
    return status, answer


def test_an_image_by_digest_deploys_through_the_api_without_building(stack, agentcore, built):
    req, rec1, ref = built
    project, rid = req["project"], rec1["deployment"]["runtimeId"]
    latest_key = f"agents/{project}/shelf/latest.json"
    latest_before, live_before = stack.get_json(latest_key), live(agentcore, rid)["liveVersion"]
    builds_before = stack.build_count()
    status, body = submit(stack, prebuilt(project, {"image": ref}, endpoint="preview"))
    assert status == 202, body
    rec = stack.wait_record(body["buildId"], DONE, timeout=90)
    assert rec["status"] == "REUSED" and stack.build_count() == builds_before, "no CodeBuild build"
    assert (rec["promotedFrom"], rec["trigger"]) == (rec1["buildId"], "api"), rec
    assert rec["image"]["digest"] == rec1["image"]["digest"], "the named image, by digest"
    dep = rec["deployment"]
    assert (dep["status"], dep["endpoint"], dep["smoke"]["status"]) == ("READY", "preview", "PASSED"), dep
    assert dep["containerUri"] == ref, dep
    assert live(agentcore, rid, "preview")["liveVersion"] == dep["version"]
    assert live(agentcore, rid)["liveVersion"] == live_before, "live did not move"
    assert stack.get_json(latest_key) == latest_before, "latest.json kept"
    # Asked again once the first has ended, it deploys again (the endpoint may serve another
    # build by now): a build of its own, a new version of the runtime on `preview`.
    status, again = submit(stack, prebuilt(project, {"image": ref}, endpoint="preview"))
    assert status == 202 and again["buildId"] == body["buildId"] + "-r2", again
    rec2 = stack.wait_record(again["buildId"], DONE, timeout=90)
    assert rec2["deployment"]["status"] == "READY" and rec2["deployment"]["version"] != dep["version"], rec2
    assert live(agentcore, rid, "preview")["liveVersion"] == rec2["deployment"]["version"]
    # The route's project is the caller's scope: a body naming another project is refused.
    api = stack.env["AGENTBUILD_API_URL"]
    status, answer, _ = stack.http("POST", f"{api}/projects/other-{uid()}/builds",
                                   prebuilt(project, {"image": ref}, endpoint="preview"))
    assert (status, answer["error"]["field"]) == (400, "project"), answer


def test_the_console_door_resolves_the_same_artifact(stack, agentcore, built):
    req, rec1, ref = built
    name = f"prebuilt-console-{uid()}"
    d = stack.run(name, prebuilt(req["project"], {"image": ref}, endpoint="preview_console"), timeout=90)
    assert d["status"] == "SUCCEEDED", d
    rec = stack.record(name)
    assert (rec["status"], rec["trigger"], rec["promotedFrom"]) == ("REUSED", "console", rec1["buildId"]), rec
    dep = rec["deployment"]
    assert (dep["status"], dep["endpoint"]) == ("READY", "preview_console"), dep
    assert live(agentcore, rec1["deployment"]["runtimeId"], "preview_console")["liveVersion"] == dep["version"]


def test_the_cli_promotes_a_build_or_an_image_and_waits_for_the_deploy(stack, agentcore, built, cli):
    req, rec1, ref = built
    agent = f"{req['project']}/shelf"
    for what, endpoint in ((["--image", ref], "by_image"), (["--build", rec1["buildId"]], "by_build")):
        code, out, err = run_cli(stack, cli, "promote", agent, *what, "--endpoint", endpoint,
                                 "--wait", "--output", "json")
        assert code == 0, (out, err[-2000:])
        rec = out["record"]
        assert (out["status"], rec["promotedFrom"]) == ("REUSED", rec1["buildId"]), out
        assert (rec["deployment"]["status"], rec["deployment"]["endpoint"]) == ("READY", endpoint), rec
    # A refusal exits 2 naming the field, as `submit` does.
    code, out, err = run_cli(stack, cli, "promote", agent, "--image", ref.split("@")[0] + "@sha256:" + "0" * 64,
                             "--endpoint", "x", "--output", "json")
    assert (code, out["status"], out["error"]["field"]) == (2, "REJECTED", "prebuilt.image"), (out, err)


def test_an_artifact_no_build_of_this_agent_made_is_refused_naming_the_field(stack, built):
    req, rec1, ref = built
    project = req["project"]
    repo, digest = ref.split("@")
    unknown = f"{repo}@sha256:{'0' * 64}"
    cases = [
        (prebuilt(project, {"image": unknown}, endpoint="x"), "prebuilt.image", "no artifact"),
        (prebuilt(project, {"image": f"{repo}:{rec1['image']['tag']}"}, endpoint="x"), "prebuilt.image", "by digest"),
        (prebuilt(project, {"image": f"999999999999.dkr.ecr.us-east-1.amazonaws.com/other@{digest}"},
                  endpoint="x"), "prebuilt.image", "this stack's repository"),
        # Another agent of the project: the index is per agent.
        (prebuilt(project, {"image": ref}, agent=f"other-{uid()}", endpoint="x"), "prebuilt.image", "no artifact"),
        # What the agent's latest deploy serves is a rollback's to move, not a deploy of what exists.
        (prebuilt(project, {"image": ref}), "deploy.endpoint", "roll back"),
        (dict(prebuilt(project, {"image": ref}, endpoint="x"), source=req["source"]), "source", "unknown field"),
        ({k: v for k, v in prebuilt(project, {"image": ref}).items() if k != "deploy"}, "deploy", "required"),
    ]
    for body, field, says in cases:
        status, answer = submit(stack, body)
        assert (status, answer["error"]["field"]) == (400, field), (body, answer)
        assert says in answer["error"]["message"], answer
    # The console door applies the same rules: the execution fails naming the field.
    d = stack.run(f"prebuilt-bad-{uid()}", prebuilt(project, {"image": unknown}, endpoint="x"))
    assert (d["status"], d["error"]) == ("FAILED", "InvalidRequest"), d
    assert "prebuilt.image" in d["cause"], d


def test_a_code_artifact_version_deploys_by_that_version(stack, agentcore):
    project = f"prebuilt-code-{uid()}"
    files = {"main.py": "print('a code agent without dependencies')\n"}
    req = {"project": project, "agent": "shelf", "source": upload(stack, project, "shelf", files),
           "artifact": "code", "entryPoint": "main.py", "deploy": {}}
    rec1 = deployed(stack, f"prebuilt-code-1-{uid()}", req)
    art = rec1["artifact"]
    assert art["kind"] == "code" and art["versionId"], art
    code = {"uri": art["uri"], "versionId": art["versionId"]}
    builds_before = stack.build_count()
    status, body = submit(stack, prebuilt(project, {"code": code}, endpoint="preview"))
    assert status == 202, body
    rec = stack.wait_record(body["buildId"], DONE, timeout=90)
    assert rec["status"] in ("SUCCEEDED", "REUSED") and stack.build_count() == builds_before, rec
    assert rec["promotedFrom"] == rec1["buildId"], rec
    assert (rec["artifact"]["uri"], rec["artifact"]["versionId"]) == (art["uri"], art["versionId"]), rec
    dep = rec["deployment"]
    assert (dep["status"], dep["endpoint"]) == ("READY", "preview"), dep
    served = agentcore.get_agent_runtime(agentRuntimeId=dep["runtimeId"], agentRuntimeVersion=dep["version"])
    s3 = served["agentRuntimeArtifact"]["codeConfiguration"]["code"]["s3"]
    assert (s3["prefix"], s3["versionId"]) == (art["key"], art["versionId"]), s3
    # Another version of the same key is no version this stack recorded.
    status, answer = submit(stack, prebuilt(project, {"code": dict(code, versionId="not-a-version")}, endpoint="x"))
    assert (status, answer["error"]["field"]) == (400, "prebuilt.code"), answer
    # A forced rebuild assembles the same bytes again as a new version of the same key: that
    # version is deployable by its own id, and names its own build.
    rec2 = deployed(stack, f"prebuilt-code-2-{uid()}", dict(req, force=True))
    art2 = rec2["artifact"]
    assert (art2["key"], art2["sha256"]) == (art["key"], art["sha256"]) and art2["versionId"] != art["versionId"], art2
    status, body = submit(stack, prebuilt(project, {"code": {"uri": art2["uri"], "versionId": art2["versionId"]}},
                                          endpoint="preview2"))
    assert status == 202, body
    rec = stack.wait_record(body["buildId"], DONE, timeout=90)
    assert (rec["promotedFrom"], rec["artifact"]["versionId"]) == (rec2["buildId"], art2["versionId"]), rec
    assert rec["deployment"]["status"] == "READY", rec


def test_a_gone_image_is_refused_before_anything_starts(stack, built):
    """The image of the build deleted from ECR (expired, or by hand): the API refuses to deploy
    it by digest (400 naming `prebuilt.image`) or to promote its build (409 NotPromotable), and
    starts nothing. (Last in the module: it deletes the module's image.)"""
    from test_images import ecr, repository, tags_of_image

    req, rec1, ref = built
    project = req["project"]
    tags = tags_of_image(stack, rec1["image"]["tag"])
    assert tags, "the image is there before"
    ecr(stack).batch_delete_image(repositoryName=repository(stack), imageIds=[{"imageTag": t} for t in tags])
    running_before = len(stack.running())
    status, answer = submit(stack, prebuilt(project, {"image": ref}, endpoint="gone"))
    assert (status, answer["error"]["field"]) == (400, "prebuilt.image"), answer
    assert "no longer exists" in answer["error"]["message"], answer
    api = stack.env["AGENTBUILD_API_URL"]
    status, answer, _ = stack.http("POST", f"{api}/projects/{project}/builds/{rec1['buildId']}/promote",
                                   {"deploy": {"endpoint": "gone"}})
    assert (status, answer["error"]["code"]) == (409, "NotPromotable"), answer
    assert "no longer exists" in answer["error"]["message"], answer
    assert len(stack.running()) <= running_before, "nothing started"
