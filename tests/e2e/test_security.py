"""Hostile requests and sources, end to end on the local stack (issue: "Hostile sources and
requests cannot take over a build; a forced rebuild really rebuilds"): each rule is checked at
the doors a caller can use (a console execution and the API), and through what CodeBuild was
really asked to do (the stack keeps StartBuild's overrides, which moto drops)."""
from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from typing import Any

import pytest

from conftest import Stack, scheduled, uid

DIGEST = "sha256:" + "cd" * 32


def api(stack: Stack) -> str:
    url = stack.env.get("AGENTBUILD_API_URL")
    assert url, "the stack has no API (AGENTBUILD_API_URL)"
    return url


def zipped(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("Dockerfile", f"FROM scratch\n# {text}\n")
    return buf.getvalue()


def build_env(stack: Stack, codebuild_id: str) -> dict[str, str]:
    build = stack.build(codebuild_id)
    return {v["name"]: v["value"] for v in build["environment"]["environmentVariables"]}


@pytest.mark.parametrize("key", ["BUILDKIT_SYNTAX", "buildkit_syntax", "HTTPS_PROXY", "all_proxy"])
def test_reserved_build_args_are_rejected_naming_build_args_at_every_door(stack, key):
    req = dict(stack.request(), buildArgs={key: "docker.io/attacker/frontend:latest"})
    before = stack.build_count()

    d = stack.run(f"reserved-{uid()}", req)
    assert (d["status"], d["error"]) == ("FAILED", "InvalidRequest"), d
    message = json.loads(d["cause"])["errorMessage"]
    assert message.startswith(f"buildArgs.{key}:") and "reserved" in message, message
    assert stack.record(d["name"]) is None, "a rejected request writes nothing"

    status, body, _ = stack.http("POST", f"{api(stack)}/projects/{req['project']}/builds", req)
    assert status == 400, body
    assert body["error"]["field"] == f"buildArgs.{key}", body
    assert stack.build_count() == before, "no build may start"


def test_a_source_of_another_agent_is_rejected_naming_source(stack):
    project = f"e2e-{uid()}"
    theirs, _ = stack.upload_source(project, "victim")
    req = {"project": project, "agent": "attacker", "source": theirs}

    d = stack.run(f"steal-{uid()}", req)
    assert (d["status"], d["error"]) == ("FAILED", "InvalidRequest"), d
    message = json.loads(d["cause"])["errorMessage"]
    assert message.startswith("source:") and f"sources/{project}/attacker/" in message, message

    status, body, _ = stack.http("POST", f"{api(stack)}/projects/{req['project']}/builds", req)
    assert (status, body["error"]["field"]) == (400, "source"), body
    assert stack.get_json(f"agents/{project}/victim/latest.json") is None


def test_the_api_rejects_duplicate_keys_and_echoes_little_caller_text(stack):
    req = stack.request()
    body = json.dumps(req)[:-1] + ', "force": false, "force": true}'
    status, answer, _ = stack.http("POST", f"{api(stack)}/projects/{req['project']}/builds",
                                   raw=body.encode())
    assert status == 400 and answer["error"]["field"] == "force", answer

    long = "x" * 5000
    status, answer, _ = stack.http("POST", f"{api(stack)}/projects/{req['project']}/builds", dict(req, **{long: 1}))
    assert status == 400
    assert len(answer["error"]["field"]) <= 65, len(answer["error"]["field"])
    assert long[:100] not in json.dumps(answer)

    status, answer, _ = stack.http("POST", f"{api(stack)}/projects/{req['project']}/builds", dict(req, pad="y" * 70_000))
    assert status == 413, answer


def succeed(stack: Stack, name: str, req: dict[str, Any], timeout: float = 40) -> dict[str, Any]:
    stack.script({"match": name, "polls": 0,
                  "exported": {"IMAGE_DIGEST": DIGEST,
                               "IMAGE_URI": f"{stack.env['AGENTBUILD_REPOSITORY_URI']}@{DIGEST}"}})
    d = stack.run(name, req, timeout)
    assert d["status"] == "SUCCEEDED", d
    return stack.record(name)


def test_a_forced_rebuild_runs_codebuild_with_a_new_tag_that_latest_and_reuse_follow(stack):
    req = stack.request()
    latest_key = f"agents/{req['project']}/{req['agent']}/latest.json"
    first = succeed(stack, f"first-{uid()}", req)
    assert first["status"] == "SUCCEEDED" and "contentTag" not in first["image"]

    before = stack.build_count()
    forced_name = f"forced-{uid()}"
    forced = succeed(stack, forced_name, dict(req, force=True))
    assert stack.build_count() == before + 1, "force must start CodeBuild"
    assert forced["status"] == "SUCCEEDED" and forced["force"] is True
    assert forced["image"]["contentTag"] == first["image"]["tag"]
    assert re.fullmatch(re.escape(first["image"]["tag"]) + r"-r[0-9a-f]{10}", forced["image"]["tag"])
    env = build_env(stack, forced["codebuild"]["buildId"])
    assert env["AGENTBUILD_FORCE"] == "true"
    assert env["AGENTBUILD_IMAGE_TAG"] == forced["image"]["tag"]
    assert stack.get_json(latest_key)["buildId"] == forced_name

    # A second forced build gets yet another tag.
    again = succeed(stack, f"forced2-{uid()}", dict(req, force=True))
    assert again["image"]["tag"] not in (first["image"]["tag"], forced["image"]["tag"])

    # Unforced, same content: REUSED from the newest build of it, not a chain of reuses.
    reused_name = f"reuse-{uid()}"
    d = stack.run(reused_name, req)
    assert json.loads(d["output"])["status"] == "REUSED", d
    reused = stack.record(reused_name)
    assert reused["reusedFrom"] == again["buildId"] and reused["image"]["tag"] == again["image"]["tag"]
    d = stack.run(f"reuse2-{uid()}", req)
    assert stack.record(d["name"])["reusedFrom"] == again["buildId"], "reusedFrom never chains"


def test_codebuild_builds_the_validated_object_version_not_a_later_upload(stack):
    project, agent = f"e2e-{uid()}", "agent"
    key = f"sources/{project}/{agent}/context.zip"
    original = zipped("original")
    v1 = stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=original)["VersionId"]
    name = f"swap-{uid()}"
    stack.script({"match": name, "hold": True})
    arn = stack.start(name, {"project": project, "agent": agent, "source": f"s3://{stack.bucket}/{key}"})
    running = stack.wait_started(name)

    # The key is replaced while the build runs (or waits in CodeBuild's queue).
    v2 = stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=zipped("replaced"))["VersionId"]
    assert v2 != v1
    build = stack.build(running["codebuild"]["buildId"])
    assert build["sourceVersion"] == v1, "CodeBuild must fetch the validated version"
    assert build["source"]["location"] == f"{stack.bucket}/{key}"

    stack.release(name)
    d = stack.wait(arn)
    assert d["status"] == "SUCCEEDED", d
    rec = stack.record(name)
    assert rec["source"]["versionId"] == v1
    assert rec["source"]["sha256"] == hashlib.sha256(original).hexdigest()
    assert scheduled(stack.history(arn), "start-build") == 1
