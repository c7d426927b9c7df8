"""Code artifacts end to end on the local stack (issue 22): the real sample agent
(examples/code-agent: real requirements) built as a code zip — its dependency layer by the layer
project's buildspec run for real (uv, real wheels), the artifact assembled by the
assemble-artifact Lambda — uploaded versioned, and deployed with `codeConfiguration` naming that
exact version. Then: a code-only change starts no CodeBuild build (the layer is reused); changed
requirements build a new layer; an identical source is REUSED.

All `serial`: they count the layer project's builds, which another test's build would move.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, Stack, entered, scheduled, uid

pytestmark = pytest.mark.serial

AGENT_DIR = ROOT / "examples" / "code-agent"
# A real dependency layer is a real uv install from the package index: minutes on a cold cache.
TIMEOUT = 900


def context_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, files[name])
    return buf.getvalue()


def agent_files(**changes: str) -> dict[str, str]:
    files = {p.name: p.read_text() for p in AGENT_DIR.iterdir()
             if p.is_file() and p.name in ("main.py", "requirements.txt")}
    files.update(changes)
    return files


def upload(stack: Stack, project: str, agent: str, files: dict[str, str]) -> str:
    data = context_zip(files)
    sha = hashlib.sha256(data).hexdigest()
    key = f"sources/{project}/{agent}/{sha}.zip"
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=data)
    return f"s3://{stack.bucket}/{key}"


def layer_builds(stack: Stack) -> list[str]:
    project = stack.env.get("AGENTBUILD_LAYER_PROJECT", "agentbuild-local-layer")
    return stack.codebuild.list_builds_for_project(projectName=project)["ids"]


def forget_layer(stack: Stack, key: str) -> None:
    """The layer is content-addressed and the bucket outlives the stack: a test that must see
    it built deletes it first (a delete marker: HeadObject answers 404)."""
    stack.s3.delete_object(Bucket=stack.bucket, Key=f"dependencies/{key}.zip")


def request(project: str, source: str) -> dict[str, Any]:
    return {"project": project, "agent": "support", "source": source, "artifact": "code",
            "entryPoint": "main.py", "runtime": "PYTHON_3_13", "deploy": {}}


def agentcore(stack: Stack):
    import boto3

    return boto3.client("bedrock-agentcore-control", endpoint_url=stack.env["AWS_ENDPOINT_URL"],
                        region_name=stack.env["AWS_REGION"],
                        aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="module")
def first(stack):
    """The real agent, its layer forgotten first: one real layer build, then the artifact."""
    project = f"code-{uid()}"
    files = agent_files()
    name = f"code-1-{uid()}"
    source = upload(stack, project, "support", files)
    before = len(layer_builds(stack))
    d = stack.run(name, request(project, source), timeout=TIMEOUT)
    return {"project": project, "name": name, "execution": d, "source": source,
            "files": files, "layer_builds_before": before}


def test_a_code_build_of_the_real_agent_is_a_versioned_artifact_deployed_by_that_version(stack, first):
    d, name = first["execution"], first["name"]
    assert d["status"] == "SUCCEEDED", d
    rec = stack.record(name)
    assert rec["status"] == "SUCCEEDED", rec
    art = rec["artifact"]
    assert art["kind"] == "code"
    key = art["key"]
    assert key == f"artifacts/{first['project']}/support/{art['sha256']}.zip"
    assert art["uri"] == f"s3://{stack.bucket}/{key}"
    obj = stack.s3.get_object(Bucket=stack.bucket, Key=key, VersionId=art["versionId"])
    body = obj["Body"].read()
    assert hashlib.sha256(body).hexdigest() == art["sha256"] and len(body) == art["size"]
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert "main.py" in names
    # Real wheels of the real requirements, for AgentCore's platform.
    assert any(n.startswith("strands/") for n in names), names[:20]
    assert any(n.startswith("bedrock_agentcore/") for n in names), names[:20]
    deps = art["dependencies"]
    assert len(deps["key"]) == 64
    assert stack.s3.head_object(Bucket=stack.bucket, Key=f"dependencies/{deps['key']}.zip")
    events = stack.history(d["executionArn"])
    assert scheduled(events, "prepare-code") == 1 and scheduled(events, "assemble-artifact") == 1
    # The Build Finished detail and the record agree (the record carries what the event does).
    dep = rec["deployment"]
    assert dep["status"] == "READY", dep
    got = agentcore(stack).get_agent_runtime(agentRuntimeId=dep["runtimeId"])
    code = got["agentRuntimeArtifact"]["codeConfiguration"]
    assert code["code"]["s3"] == {"bucket": stack.bucket, "prefix": key, "versionId": art["versionId"]}
    assert code["entryPoint"] == ["main.py"] and code["runtime"] == "PYTHON_3_13"


def test_a_code_only_change_starts_no_codebuild_build_and_reuses_the_layer(stack, first):
    assert first["execution"]["status"] == "SUCCEEDED"
    key = stack.record(first["name"])["artifact"]["dependencies"]["key"]
    builds = len(layer_builds(stack))
    files = agent_files(**{"main.py": first["files"]["main.py"] + "\n# a code-only change\n"})
    name = f"code-2-{uid()}"
    d = stack.run(name, request(first["project"], upload(stack, first["project"], "support", files)),
                  timeout=120)
    assert d["status"] == "SUCCEEDED", d
    assert len(layer_builds(stack)) == builds, "a code-only change started a CodeBuild build"
    events = stack.history(d["executionArn"])
    assert scheduled(events, "start-build") == 0
    assert "NoLayerBuild" in entered(events) and "AwaitBuild" not in entered(events)
    rec = stack.record(name)
    assert rec["artifact"]["dependencies"] == {"key": key, "reused": True}
    assert rec["codebuild"]["buildId"] is None
    assert rec["deployment"]["status"] == "READY"
    code = agentcore(stack).get_agent_runtime(agentRuntimeId=rec["deployment"]["runtimeId"])
    s3 = code["agentRuntimeArtifact"]["codeConfiguration"]["code"]["s3"]
    assert s3["versionId"] == rec["artifact"]["versionId"] and s3["prefix"] == rec["artifact"]["key"]


def test_identical_source_is_reused(stack, first):
    assert first["execution"]["status"] == "SUCCEEDED"
    art = stack.record(first["name"])["artifact"]
    builds = len(layer_builds(stack))
    name = f"code-3-{uid()}"
    d = stack.run(name, request(first["project"], first["source"]), timeout=120)
    assert d["status"] == "SUCCEEDED", d
    rec = stack.record(name)
    assert rec["status"] == "REUSED", rec
    assert {k: rec["artifact"][k] for k in ("key", "versionId", "sha256")} == \
        {k: art[k] for k in ("key", "versionId", "sha256")}
    assert rec["artifact"]["dependencies"]["reused"] is True
    assert len(layer_builds(stack)) == builds
    events = stack.history(d["executionArn"])
    assert scheduled(events, "start-build") == 0


def test_changed_requirements_build_a_new_layer(stack, first):
    assert first["execution"]["status"] == "SUCCEEDED"
    old = stack.record(first["name"])["artifact"]["dependencies"]["key"]
    files = agent_files()
    files["requirements.txt"] += "six==1.17.0\n"
    project = first["project"]
    name = f"code-4-{uid()}"
    source = upload(stack, project, "support", files)
    builds = len(layer_builds(stack))
    d = stack.run(name, request(project, source), timeout=TIMEOUT)
    assert d["status"] == "SUCCEEDED", d
    new = stack.record(name)["artifact"]["dependencies"]
    assert new["key"] != old
    if new["reused"]:
        # The bucket outlives the stack (a reused stack, e.g. `make local-up`): an earlier run
        # built this layer. Forget it and build again from scratch, forced.
        forget_layer(stack, new["key"])
        builds = len(layer_builds(stack))
        name = f"code-5-{uid()}"
        d = stack.run(name, {**request(project, source), "force": True}, timeout=TIMEOUT)
        assert d["status"] == "SUCCEEDED", d
    # Built for real, once: a new layer under the new key (on a fresh stack the first run).
    rec = stack.record(name)
    assert rec["artifact"]["dependencies"] == {"key": new["key"], "reused": False}
    assert len(layer_builds(stack)) == builds + 1
    assert stack.s3.head_object(Bucket=stack.bucket, Key=f"dependencies/{new['key']}.zip")
