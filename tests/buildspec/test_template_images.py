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


# --------------------------------------------------------------------------- the build role's ECR reach

def build_statements() -> list[dict]:
    return RESOURCES["BuildRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]


def conditional(sid: str) -> dict:
    """A statement wrapped in !If [condition, statement, !Ref AWS::NoValue]."""
    [statement] = [s["If"][1] for s in build_statements()
                   if isinstance(s, dict) and "If" in s and s["If"][1].get("Sid") == sid]
    return statement


def evaluate(node, params: dict):
    """The few intrinsic functions the pull-through ARNs use, as CloudFormation evaluates them."""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return [evaluate(n, params) for n in node]
    [(fn, arg)] = node.items()
    if fn == "Ref":
        return params[arg]
    if fn == "Select":
        return evaluate(arg[1], params)[arg[0]]
    if fn == "Split":
        assert isinstance(arg[0], str), "Fn::Split takes a literal delimiter only"
        return evaluate(arg[1], params).split(arg[0])
    if fn == "Join":
        assert isinstance(arg[0], str), "Fn::Join takes a literal delimiter only"
        return arg[0].join(evaluate(arg[1], params))
    if fn == "Sub":
        text, names = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        values = {**params, **{k: evaluate(v, params) for k, v in names.items()}}
        return re.sub(r"\$\{([\w:]+)\}", lambda m: values[m[1]], text)
    raise AssertionError(f"unexpected intrinsic {fn}")


PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"}
MIRROR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/docker-hub"
DIGEST = "@sha256:" + "a" * 64


def test_the_build_role_pushes_images_but_cannot_download_their_layers() -> None:
    [push] = [s for s in build_statements() if isinstance(s, dict) and s.get("Sid") == "PushImages"]
    assert push["Resource"] == {"GetAtt": "Repository.Arn"}
    # BatchGetImage: the pusher's HEAD on the manifest before its PUT (see the template's comment).
    assert sorted(push["Action"]) == sorted([
        "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:DescribeImages",
        "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"])
    everything = json.dumps(build_statements())
    assert everything.count("ecr:GetDownloadUrlForLayer") == 2  # the cache, the mirrored images
    assert "ecr:*" not in everything


@pytest.mark.parametrize("region_suffix", ["amazonaws.com", "amazonaws.com.cn"])
def test_the_pull_through_grant_names_exactly_the_three_mirrored_repositories(region_suffix: str) -> None:
    statement = conditional("PullMirroredBuildImages")
    assert sorted(statement["Action"]) == sorted(
        ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchImportUpstreamImage"])
    mirror = MIRROR.replace("amazonaws.com", region_suffix)
    params = {**PSEUDO, "PullThroughCachePrefix": "docker-hub",
              "BuildkitImage": f"{mirror}/moby/buildkit:v0.33.1{DIGEST}",
              "BinfmtImage": f"{mirror}/tonistiigi/binfmt{DIGEST}",  # no tag
              "DockerfileFrontendImage": f"{mirror}/docker/dockerfile:1.26.0{DIGEST}"}
    arns = [evaluate(r, params) for r in statement["Resource"]]
    base = "arn:aws:ecr:eu-west-1:123456789012:repository/"
    assert arns == [base + "docker-hub/moby/buildkit", base + "docker-hub/tonistiigi/binfmt",
                    base + "docker-hub/docker/dockerfile"]
    assert "*" not in json.dumps(statement["Resource"])


def test_an_image_not_in_ecr_is_granted_no_repository() -> None:
    statement = conditional("PullMirroredBuildImages")
    params = {**PSEUDO, "PullThroughCachePrefix": "docker-hub",
              "BuildkitImage": f"{MIRROR}/moby/buildkit:v0.33.1{DIGEST}",
              "BinfmtImage": f"tonistiigi/binfmt:qemu-v10.2.3{DIGEST}",
              "DockerfileFrontendImage": f"ghcr.io:443/docker/dockerfile:1{DIGEST}"}
    arns = [evaluate(r, params) for r in statement["Resource"]]
    base = "arn:aws:ecr:eu-west-1:123456789012:repository/"
    assert arns == [base + "docker-hub/moby/buildkit", base, base]
