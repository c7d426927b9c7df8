"""The code path's dependency layer, built FOR REAL on the local stack (issue 22): a StartBuild of
the layer project runs buildspec-code.yml's commands — real pip and uv, real wheels from the
package index, the real zip uploaded to the stack's S3 — and BatchGetBuilds, CodeBuild's events
and CloudWatch Logs report what happened (local/agentbuild_local/codebuild_real.py).

Needs the network (the package index) and a running stack (scripts/e2e.sh starts one)."""
from __future__ import annotations

import hashlib
import io
import time
import zipfile

import boto3

from conftest import uid

REQUIREMENTS = "six==1.17.0\n"
LAYER_PROJECT = "agentbuild-local-layer"  # local/agentbuild_local/config.py


def layer_key(requirements: str, runtime: str) -> str:
    """codezip::dependencies_key (crates/codezip/src/dependencies.rs pins a golden value)."""
    header = f"agentbuild dependency layer v1\nruntime={runtime}\nplatform=aarch64-manylinux2014\n\n"
    return hashlib.sha256(header.encode() + requirements.encode()).hexdigest()


def start_layer(stack, requirements: str, runtime: str = "PYTHON_3_13") -> tuple[str, str]:
    key = layer_key(requirements, runtime)
    stack.s3.put_object(Bucket=stack.bucket, Key=f"dependencies/{key}.requirements.txt",
                        Body=requirements.encode())
    build = stack.codebuild.start_build(
        projectName=stack.env.get("AGENTBUILD_LAYER_PROJECT", LAYER_PROJECT),
        environmentVariablesOverride=[
            {"name": "AGENTBUILD_DEPENDENCIES_KEY", "value": key, "type": "PLAINTEXT"},
            {"name": "AGENTBUILD_RUNTIME", "value": runtime, "type": "PLAINTEXT"}])["build"]
    return build["id"], key


def wait_build(stack, build_id: str, timeout: float = 240) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        build = stack.codebuild.batch_get_builds(ids=[build_id])["builds"][0]
        if build["buildComplete"]:
            return build
        assert build["buildStatus"] == "IN_PROGRESS"
        time.sleep(1)
    raise AssertionError(f"{build_id} still running after {timeout} s")


def log_lines(stack, build: dict) -> list[str]:
    logs = boto3.client("logs", endpoint_url=stack.env["AWS_ENDPOINT_URL"], region_name=stack.env["AWS_REGION"],
                        aws_access_key_id="local", aws_secret_access_key="local")
    events = logs.get_log_events(logGroupName=build["logs"]["groupName"],
                                 logStreamName=build["logs"]["streamName"], startFromHead=True)["events"]
    return [e["message"] for e in events]


def test_a_layer_build_runs_for_real_and_uploads_its_zip(stack):
    requirements = REQUIREMENTS + f"# run {uid()}\n"  # a key of its own: no other run's layer
    build_id, key = start_layer(stack, requirements)
    build = wait_build(stack, build_id)
    assert build["buildStatus"] == "SUCCEEDED", log_lines(stack, build)[-30:]
    exported = {v["name"]: v["value"] for v in build["exportedEnvironmentVariables"]}
    obj = stack.s3.get_object(Bucket=stack.bucket, Key=f"dependencies/{key}.zip",
                              VersionId=exported["LAYER_VERSION_ID"])
    data = obj["Body"].read()
    assert exported["LAYER_KEY"] == key
    assert exported["LAYER_SHA256"] == hashlib.sha256(data).hexdigest()
    assert exported["LAYER_SIZE"] == str(len(data))
    assert "six.py" in zipfile.ZipFile(io.BytesIO(data)).namelist()
    phases = [(p["phaseType"], p.get("phaseStatus")) for p in build["phases"]]
    for phase in ("INSTALL", "PRE_BUILD", "BUILD"):
        assert (phase, "SUCCEEDED") in phases
    assert build["environment"]["type"] == "ARM_LAMBDA_CONTAINER"
    assert build["environment"]["privilegedMode"] is False
    lines = log_lines(stack, build)
    assert any("Entering phase BUILD" in line for line in lines)
    assert any(f"LAYER_KEY={key}" in line for line in lines)


def test_a_failing_layer_build_fails_its_phase_and_says_why(stack):
    requirements = f"this-package-does-not-exist-agentbuild-{uid()}==1.0\n"
    build_id, _ = start_layer(stack, requirements)
    build = wait_build(stack, build_id)
    assert build["buildStatus"] == "FAILED"
    failed = [p for p in build["phases"] if p.get("phaseStatus") == "FAILED"]
    assert [p["phaseType"] for p in failed] == ["BUILD"]
    assert failed[0]["contexts"][0]["statusCode"] == "COMMAND_EXECUTION_ERROR"
    assert build["exportedEnvironmentVariables"] == []
    assert any("this-package-does-not-exist-agentbuild" in line for line in log_lines(stack, build))


def test_stop_build_stops_a_running_layer_build(stack):
    build_id, key = start_layer(stack, REQUIREMENTS + f"# stop {uid()}\n")
    stack.codebuild.stop_build(id=build_id)
    build = wait_build(stack, build_id)
    assert build["buildStatus"] == "STOPPED"
    assert build["exportedEnvironmentVariables"] == []
    assert "Contents" not in stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"dependencies/{key}.zip")
