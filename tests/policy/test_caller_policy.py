"""The example caller policy (template.yaml's ExampleCallerPolicy), evaluated offline over the
SAM-transformed template: a caller allowed one project may call every route of that project and
none of another's — the routes taken from the transformed API itself, so a route added without
the project in its path fails here. Both directions are tested.

Run: .venv/bin/python -m pytest tests/policy -q
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluator import ACCOUNT, as_list, decide, invoke, physical, s3_call  # noqa: E402
from test_bucket_policy import template  # noqa: E402,F401  (the fixture)

CALLER = f"arn:aws:iam::{ACCOUNT}:role/nexus-api-task-role"
API = physical("BuildApi")
STAGE = "$default"
# Values for the routes' other parameters.
SAMPLE = {"buildId": "api-3f9a1c7e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a", "agent": "sales-assistant",
          "runtimeName": "Sales_Bot"}
# Every route the API serves (crates/core/src/handlers/api/routes.rs), as template.yaml declares it.
EXPECTED = {
    ("POST", "/projects/{project}/builds"),
    ("GET", "/projects/{project}/builds/{buildId}"),
    ("DELETE", "/projects/{project}/builds/{buildId}"),
    ("GET", "/projects/{project}/builds/{buildId}/logs"),
    ("GET", "/projects/{project}/agents/{agent}"),
    ("GET", "/projects/{project}/agents/{agent}/runtimes"),
    ("DELETE", "/projects/{project}/agents/{agent}/runtimes/{runtimeName}"),
}


@pytest.fixture(scope="module")
def caller_policy(template) -> tuple[str, list[dict[str, Any]]]:
    """(the project it allows, its statements)."""
    project = template["Parameters"]["CallerPolicyProject"]["Default"]
    doc = template["Resources"]["ExampleCallerPolicy"]["Properties"]["PolicyDocument"]
    return project, as_list(doc["Statement"])


@pytest.fixture(scope="module")
def routes(template) -> list[tuple[str, str]]:
    """(METHOD, path pattern) of every route of the deployed HTTP API, with its authorization."""
    body = template["Resources"]["BuildApi"]["Properties"]["Body"]
    out = []
    for path, methods in body["paths"].items():
        for method, op in methods.items():
            assert op.get("security") == [{"AWS_IAM": []}], f"{method} {path} is not IAM-authorized"
            out.append((method.upper(), path))
    return out


def concrete(pattern: str, project: str) -> str:
    path = pattern.replace("{project}", project)
    for name, value in SAMPLE.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, pattern
    return path


def test_every_route_carries_the_project(routes):
    assert set(routes) == EXPECTED and len(routes) == len(EXPECTED), routes
    for method, path in routes:
        assert path.startswith("/projects/{project}/"), f"{method} {path} cannot be scoped by IAM"


def test_the_allowed_project_may_call_every_route(caller_policy, routes):
    project, statements = caller_policy
    for method, pattern in routes:
        r = invoke(CALLER, API, STAGE, method, concrete(pattern, project))
        assert decide(r, statements) == "Allow", (method, pattern)


@pytest.mark.parametrize("other", ["other-team", "nexus-ai-2", "nexus", "x"])
def test_another_project_is_denied_on_every_route(caller_policy, routes, other):
    project, statements = caller_policy
    assert other != project
    for method, pattern in routes:
        r = invoke(CALLER, API, STAGE, method, concrete(pattern, other))
        assert decide(r, statements) == "ImplicitDeny", (method, pattern, other)


def test_another_api_and_the_old_unscoped_paths_are_denied(caller_policy):
    project, statements = caller_policy
    assert decide(invoke(CALLER, "other-api", STAGE, "GET",
                         f"/projects/{project}/agents/a"), statements) == "ImplicitDeny"
    for method, path in (("POST", "/builds"), ("GET", f"/builds/{SAMPLE['buildId']}"),
                         ("GET", f"/agents/{project}/a")):
        assert decide(invoke(CALLER, API, STAGE, method, path), statements) == "ImplicitDeny", path


def test_the_caller_may_upload_its_projects_sources_only(caller_policy, template):
    project, statements = caller_policy
    bucket_policy = as_list(template["Resources"]["BucketPolicy"]["Properties"]["PolicyDocument"]["Statement"])
    own = s3_call("PutObject", CALLER, f"sources/{project}/sales-assistant/x.zip")
    assert all(decide(r, statements, bucket_policy) == "Allow" for r in own)
    multipart = [r for api in ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")
                 for r in s3_call(api, CALLER, f"sources/{project}/sales-assistant/x.zip")]
    assert all(decide(r, statements, bucket_policy) == "Allow" for r in multipart)
    other = s3_call("PutObject", CALLER, "sources/other-team/a/x.zip")
    assert all(decide(r, statements, bucket_policy) == "ImplicitDeny" for r in other)
