"""The code path's function roles (prepare-code, assemble-artifact), evaluated offline over the
SAM-transformed template with the bucket policy: each can do exactly its step and nothing of
another's — PrepareCode reads sources and writes only canonical requirements; AssembleArtifact
reads sources and layers and writes only artifacts; neither writes a layer, a record or a source.

Run: .venv/bin/python -m pytest tests/policy -q
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluator import Request, decide, role_arn, s3_object  # noqa: E402
from test_bucket_policy import bucket_policy, role_policy, template  # noqa: E402,F401

SOURCE = "sources/nexus-ai/support/0f34.zip"
KEY = "9f" * 32
CTX = {"aws:SecureTransport": "true"}


def can(template, bucket_policy, role: str, action: str, key: str) -> bool:
    r = Request(action, s3_object(key), role_arn(role), CTX)
    return decide(r, role_policy(template, role), bucket_policy) == "Allow"


@pytest.mark.parametrize("action,key,expected", [
    ("s3:GetObjectVersion", SOURCE, True),
    ("s3:GetObject", "artifacts/nexus-ai/support/inputs/t.json", True),
    ("s3:GetObject", f"dependencies/{KEY}.zip", True),
    ("s3:PutObject", f"dependencies/{KEY}.requirements.txt", True),
    ("s3:PutObject", f"dependencies/{KEY}.zip", False),
    ("s3:PutObject", "artifacts/nexus-ai/support/ab.zip", False),
    ("s3:PutObject", "builds/b.json", False),
    ("s3:PutObject", SOURCE, False),
    ("s3:GetObject", "builds/b.json", False),
])
def test_prepare_code_reads_the_context_and_writes_only_requirements(template, bucket_policy,
                                                                     action, key, expected):
    assert can(template, bucket_policy, "PrepareCodeFunctionRole", action, key) is expected


@pytest.mark.parametrize("action,key,expected", [
    ("s3:GetObjectVersion", SOURCE, True),
    ("s3:GetObject", f"dependencies/{KEY}.zip", True),
    ("s3:PutObject", "artifacts/nexus-ai/support/ab.zip", True),
    ("s3:PutObject", "artifacts/nexus-ai/support/inputs/t.json", True),
    ("s3:GetObject", f"dependencies/{KEY}.requirements.txt", False),
    ("s3:PutObject", f"dependencies/{KEY}.zip", False),
    ("s3:PutObject", "builds/b.json", False),
    ("s3:PutObject", "agents/nexus-ai/support/latest.json", False),
    ("s3:PutObjectLegalHold", SOURCE, False),
])
def test_assemble_artifact_writes_only_artifacts(template, bucket_policy, action, key, expected):
    assert can(template, bucket_policy, "AssembleArtifactFunctionRole", action, key) is expected


def test_both_projects_builds_are_startable_and_stoppable_by_the_functions_that_must(template):
    def actions_on(role: str, project: str) -> set[str]:
        out = set()
        for s in role_policy(template, role):
            res = s.get("Resource")
            res = res if isinstance(res, list) else [res]
            if any(isinstance(r, str) and r.endswith(f"-{project}") for r in res):
                acts = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
                out.update(acts)
        return out
    for role in ("StartBuildFunctionRole", "CheckBuildFunctionRole", "AwaitBuildFunctionRole",
                 "BuildEventsFunctionRole", "RecordResultFunctionRole", "ApiFunctionRole"):
        image = actions_on(role, "BuildProject")
        layer = actions_on(role, "LayerProject")
        assert image and image == layer, (role, image, layer)
