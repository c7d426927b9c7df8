"""Build secrets by reference, end to end on the local stack (issue 21 item 4): a request names
Secrets Manager ARNs under the stack's prefix; CodeBuild is asked for SECRETS_MANAGER variables
(their values the ARNs, which CodeBuild resolves) and a PLAINTEXT list of ids; the record, the GET
body, latest.json and the Build Finished event keep the ids and ARNs and never a value; an ARN
outside the prefix is refused naming its field at every door. (The buildspec's side, the
secret mount, is tests/buildspec's.)"""
from __future__ import annotations

import json

import pytest

from conftest import Stack, uid
from test_events import Announcements, only

DIGEST = "sha256:" + "ab" * 32
VALUE = "e2e-secret-VALUE-never-in-clear"


def api(stack: Stack) -> str:
    url = stack.env.get("AGENTBUILD_API_URL")
    assert url, "the stack has no API (AGENTBUILD_API_URL)"
    return url


@pytest.fixture(scope="module")
def secret_arn(stack) -> str:
    import boto3

    env = stack.env
    sm = boto3.client("secretsmanager", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    return sm.create_secret(Name=f"agentbuild/pypi-{uid()}", SecretString=VALUE)["ARN"]


def test_a_build_with_secrets_keeps_references_only_and_codebuild_resolves_them(stack, secret_arn):
    announced = Announcements(stack)
    req = dict(stack.request(f"sec-{uid()}"), buildSecrets={"PYPI_TOKEN": secret_arn})
    status, body, _ = stack.http("POST", f"{api(stack)}/projects/{req['project']}/builds", req)
    assert status == 202, body
    build_id = body["buildId"]
    stack.script({"match": build_id, "polls": 0,
                  "exported": {"IMAGE_DIGEST": DIGEST,
                               "IMAGE_URI": f"{stack.env['AGENTBUILD_REPOSITORY_URI']}@{DIGEST}"}})
    rec = stack.wait_record(build_id, ("SUCCEEDED",), timeout=40)

    # CodeBuild was asked for the secret by reference, under a name derived from its id.
    build = stack.build(rec["codebuild"]["buildId"])
    variables = {v["name"]: v for v in build["environment"]["environmentVariables"]}
    assert variables["AGENTBUILD_SECRET_PYPI_TOKEN"] == {
        "name": "AGENTBUILD_SECRET_PYPI_TOKEN", "value": secret_arn, "type": "SECRETS_MANAGER"}
    assert variables["AGENTBUILD_BUILD_SECRETS"]["value"] == '["PYPI_TOKEN"]'
    plaintext = {n: v["value"] for n, v in variables.items() if v["type"] == "PLAINTEXT"}
    assert not any(secret_arn in v or VALUE in v for v in plaintext.values()), plaintext
    assert "PYPI_TOKEN" not in json.loads(plaintext["AGENTBUILD_BUILD_ARGS"])

    # What agentbuild keeps and serves: the reference, never a value.
    assert rec["request"]["buildSecrets"] == {"PYPI_TOKEN": secret_arn}
    _, got, _ = stack.http("GET", f"{api(stack)}{stack.build_path(build_id)}")
    latest = stack.get_json(f"agents/{req['project']}/{req['agent']}/latest.json")
    event = only(announced.of(build_id), build_id)
    for what, doc in (("record", rec), ("GET body", got), ("latest.json", latest), ("event", event)):
        assert VALUE not in json.dumps(doc), what
    assert got["request"]["buildSecrets"] == {"PYPI_TOKEN": secret_arn}
    assert latest["buildId"] == build_id


def test_a_secret_outside_the_prefix_is_refused_naming_its_field_at_every_door(stack):
    outside = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/database-AbCdEf"
    req = dict(stack.request(f"sec-bad-{uid()}"), buildSecrets={"DB": outside})
    before = stack.build_count()
    status, body, _ = stack.http("POST", f"{api(stack)}/projects/{req['project']}/builds", req)
    assert status == 400, body
    assert body["error"]["field"] == "buildSecrets.DB", body
    assert "BuildSecretArnPrefix" in body["error"]["message"], body
    d = stack.run(f"sec-bad-{uid()}", req)
    assert (d["status"], d["error"]) == ("FAILED", "InvalidRequest"), d
    assert json.loads(d["cause"])["errorMessage"].startswith("buildSecrets.DB:"), d
    # A value in clear, where a reference belongs, is refused without being echoed.
    req["buildSecrets"] = {"DB": VALUE}
    status, body, _ = stack.http("POST", f"{api(stack)}/projects/{req['project']}/builds", req)
    assert (status, body["error"]["field"]) == (400, "buildSecrets.DB"), body
    assert VALUE not in json.dumps(body)
    assert stack.build_count() == before, "no build may start"
