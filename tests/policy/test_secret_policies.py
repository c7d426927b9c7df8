"""Build secrets by reference, evaluated offline over the SAM-transformed template: the CodeBuild
roles (BuildRole, LayerRole: they resolve a build's SECRETS_MANAGER variables) and RuntimeRole (whose agents read the
secrets their deploy.environmentVariables name) may read secrets under BuildSecretArnPrefix and
no other; with the parameter empty (the default) neither may read any secret.

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
from evaluator import ACCOUNT, REGION, Request, allowed, as_list, resolve  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PREFIX = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:agentbuild/"
UNDER = PREFIX + "pypi-token-AbCdEf"
OUTSIDE = [
    f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/database-AbCdEf",
    f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:agentbuild-AbCdEf",  # no '/': not under it
    f"arn:aws:secretsmanager:{REGION}:210987654321:secret:agentbuild/pypi-AbCdEf",
]
# LayerRole: the code path's dependency-layer builds resolve their buildSecrets too (issue 22).
ROLES = ("BuildRole", "LayerRole", "RuntimeRole")


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "sam_transform.py"),
                          str(ROOT / "template.yaml")], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def statements(raw: dict[str, Any], role: str, prefix: str) -> list[dict[str, Any]]:
    params = {k: p.get("Default") for k, p in raw.get("Parameters", {}).items()}
    params["BuildSecretArnPrefix"] = prefix
    conditions = frozenset({"HasBuildSecrets"}) if prefix else frozenset()
    props = resolve(raw["Resources"][role]["Properties"], params, conditions)
    return [s for p in props.get("Policies", []) for s in as_list(p["PolicyDocument"]["Statement"])]


def read(secret: str, role: str) -> list[Request]:
    return [Request("secretsmanager:GetSecretValue", secret, f"arn:aws:iam::{ACCOUNT}:role/{role}")]


@pytest.mark.parametrize("role", ROLES)
def test_a_role_reads_secrets_under_the_prefix_only(raw, role) -> None:
    policy = statements(raw, role, PREFIX)
    assert allowed(read(UNDER, role), policy)
    for secret in OUTSIDE:
        assert not allowed(read(secret, role), policy), secret
    # Reading is all: no listing, no writing, no other action on the secrets.
    for action in ("secretsmanager:ListSecrets", "secretsmanager:PutSecretValue",
                   "secretsmanager:DescribeSecret"):
        assert not allowed([Request(action, UNDER, role)], policy), action


@pytest.mark.parametrize("role", ROLES)
def test_without_a_prefix_no_role_reads_any_secret(raw, role) -> None:
    policy = statements(raw, role, "")
    for secret in [UNDER, *OUTSIDE, "*"]:
        assert not allowed(read(secret, role), policy), secret
    assert not any("secretsmanager" in json.dumps(s) for s in policy)


def test_no_other_role_of_the_stack_reads_secrets(raw) -> None:
    params = {k: p.get("Default") for k, p in raw.get("Parameters", {}).items()}
    params["BuildSecretArnPrefix"] = PREFIX
    resources = resolve(raw["Resources"], params, frozenset({"HasBuildSecrets"}))
    # Functions only carry the prefix in their environment; no policy of theirs names secrets.
    readers = [name for name, r in resources.items() if '"secretsmanager:' in json.dumps(r)]
    assert sorted(readers) == sorted(ROLES), readers
    assert '"secretsmanager:*"' not in json.dumps(resources)
