"""template.yaml's side of the build's trust boundary: repositories, pinned images, build role."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_TEXT = (ROOT / "template.yaml").read_text()
DIGEST_PINNED = re.compile(r"@sha256:[0-9a-f]{64}$")
PINNED_PARAMETERS = ("BuildkitImage", "BinfmtImage", "DockerfileFrontendImage")


class _Loader(yaml.SafeLoader):
    pass


def _any_tag(loader, suffix, node):  # CloudFormation's short forms: !Ref, !Sub, !GetAtt, ...
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


_Loader.add_multi_constructor("!", _any_tag)
TEMPLATE = yaml.load(TEMPLATE_TEXT, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
RESOURCES = TEMPLATE["Resources"]


def lifecycle(resource: str) -> list[dict]:
    text = RESOURCES[resource]["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"]["Sub"]
    return json.loads(re.sub(r"\$\{\w+\}", "1", text))["rules"]


def test_the_image_repository_is_fully_immutable() -> None:
    props = RESOURCES["Repository"]["Properties"]
    assert props["ImageTagMutability"] == "IMMUTABLE"
    assert "ImageTagMutabilityExclusionFilters" not in props
    assert "buildcache" not in json.dumps(lifecycle("Repository"))


def test_the_build_cache_has_its_own_expiring_repository() -> None:
    cache = RESOURCES["CacheRepository"]
    assert cache["Type"] == "AWS::ECR::Repository"
    assert cache["Properties"]["ImageTagMutability"] == "MUTABLE"
    rules = lifecycle("CacheRepository")
    assert {r["selection"]["tagStatus"] for r in rules} == {"untagged", "any"}
    assert all(r["action"]["type"] == "expire" for r in rules)
    env = {v["Name"]: v["Value"] for v in
           RESOURCES["BuildProject"]["Properties"]["Environment"]["EnvironmentVariables"]}
    assert env["AGENTBUILD_CACHE_REPOSITORY"] == {"GetAtt": "CacheRepository.RepositoryUri"}
    assert env["AGENTBUILD_DOCKERFILE_FRONTEND"] == {"Ref": "DockerfileFrontendImage"}
    assert env["AGENTBUILD_BUILDKIT_IMAGE"] == {"Ref": "BuildkitImage"}
    assert env["AGENTBUILD_BINFMT_IMAGE"] == {"Ref": "BinfmtImage"}


def test_the_build_role_touches_the_cache_only_as_buildkit_does() -> None:
    statements = RESOURCES["BuildRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    [cache] = [s for s in statements if isinstance(s, dict) and s.get("Sid") == "ReadAndWriteBuildCache"]
    assert cache["Resource"] == {"GetAtt": "CacheRepository.Arn"}
    assert not [a for a in cache["Action"] if re.search(r"Delete|Describe|List|Policy|Tag", a)]


@pytest.mark.parametrize("name", PINNED_PARAMETERS)
def test_default_images_are_digest_pinned_and_cited(name: str) -> None:
    parameter = TEMPLATE["Parameters"][name]
    default = parameter["Default"]
    assert DIGEST_PINNED.search(default), default
    assert re.fullmatch(parameter["AllowedPattern"], default)
    for unpinned in ("moby/buildkit:buildx-stable-1", "tonistiigi/binfmt:latest", "docker/dockerfile:1"):
        assert not re.fullmatch(parameter["AllowedPattern"], unpinned)
    # The comment right above the Default names where the digest was copied from.
    block = TEMPLATE_TEXT.split(f"\n  {name}:\n", 1)[1].split("\n    Default:", 1)[0]
    assert re.search(r"# Digest source: github\.com/[\w.-]+/[\w.-]+, \S+", block), block
