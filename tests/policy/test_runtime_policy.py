"""Retiring runtimes (issue 21, item 3), evaluated offline over the SAM-transformed template:
the API's role may DeleteAgentRuntime only on a runtime tagged with this stack's name and an
agent (the code checks the agent is the route's); no other function may delete one; the name
bindings are writable only where they are claimed (validate, deploy, the API).

Run: .venv/bin/python -m pytest tests/policy -q
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluator import (ACCOUNT, PARTITION, REGION, STACK, Request, as_list, decide,  # noqa: E402
                       resolve, role_arn, s3_object)

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = f"arn:{PARTITION}:bedrock-agentcore:{REGION}:{ACCOUNT}:runtime/Old-0123456789"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "sam_transform.py"),
                          str(ROOT / "template.yaml")], check=True, capture_output=True, text=True)
    raw = json.loads(out.stdout)
    params = {k: p.get("Default") for k, p in raw.get("Parameters", {}).items()}
    return resolve(raw, params)


def role_policy(template, role: str) -> list[dict[str, Any]]:
    props = template["Resources"][role]["Properties"]
    return [s for p in props.get("Policies", []) for s in as_list(p["PolicyDocument"]["Statement"])]


def delete(role: str, tags: dict[str, str]) -> Request:
    context = {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
    return Request("bedrock-agentcore:DeleteAgentRuntime", RUNTIME, role_arn(role), context)


OURS = {"agentbuild:stack": STACK, "agentbuild:project": "nexus-ai", "agentbuild:agent": "sales"}


@pytest.mark.parametrize("tags,expected", [
    (OURS, "Allow"),
    ({**OURS, "agentbuild:stack": "agentbuild-staging"}, "ImplicitDeny"),
    ({k: v for k, v in OURS.items() if k != "agentbuild:agent"}, "ImplicitDeny"),
    ({}, "ImplicitDeny"),
], ids=["this-stack", "other-stack", "no-agent-tag", "untagged"])
def test_the_api_deletes_only_runtimes_tagged_for_this_stack(template, tags, expected):
    assert decide(delete("ApiFunctionRole", tags), role_policy(template, "ApiFunctionRole")) == expected


def test_no_other_function_may_delete_a_runtime(template):
    roles = [r for r, v in template["Resources"].items()
             if v["Type"] == "AWS::IAM::Role" and r != "ApiFunctionRole"]
    assert "DeployRuntimeFunctionRole" in roles
    for role in roles:
        assert decide(delete(role, OURS), role_policy(template, role)) != "Allow", role


@pytest.mark.parametrize("role", ["ValidateRequestFunctionRole", "DeployRuntimeFunctionRole",
                                  "ApiFunctionRole"])
def test_bindings_are_written_where_names_are_claimed(template, role):
    policy = role_policy(template, role)
    for key in ("runtimes/Sales_Bot.json", "agents/nexus-ai/sales/runtimes/Sales_Bot.json"):
        put = Request("s3:PutObject", s3_object(key), role_arn(role), {})
        assert decide(put, policy) == "Allow", (role, key)
    check = role_policy(template, "CheckRuntimeFunctionRole")
    put = Request("s3:PutObject", s3_object("runtimes/Sales_Bot.json"),
                  role_arn("CheckRuntimeFunctionRole"), {})
    assert decide(put, check) == "ImplicitDeny"


def test_the_prebuilt_index_is_written_by_record_result_only_and_read_where_it_resolves(template):
    """Deploy what exists (docs/deploy-runtime.md): RecordResult writes made/<p>/<a>/…; the API
    and ValidateRequest (the console door) read it, and ValidateRequest reads latest.json for a
    promote's target check. No other role — and no caller — may write the index."""
    key = "made/nexus-ai/sales/image-" + "ab" * 32 + ".json"
    latest = "agents/nexus-ai/sales/latest.json"

    def may(action: str, role: str, k: str) -> str:
        return decide(Request(action, s3_object(k), role_arn(role), {}), role_policy(template, role))

    assert may("s3:PutObject", "RecordResultFunctionRole", key) == "Allow"
    for role in ("ApiFunctionRole", "ValidateRequestFunctionRole"):
        assert may("s3:GetObject", role, key) == "Allow", role
    assert may("s3:GetObject", "ValidateRequestFunctionRole", latest) == "Allow"
    roles = [r for r, v in template["Resources"].items()
             if v["Type"] == "AWS::IAM::Role" and r != "RecordResultFunctionRole"]
    assert "ApiFunctionRole" in roles
    for role in roles:
        assert may("s3:PutObject", role, key) != "Allow", role
    caller = template["Resources"]["ExampleCallerPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    put = Request("s3:PutObject", s3_object(key), role_arn("Caller"), {})
    assert decide(put, as_list(caller)) != "Allow"
