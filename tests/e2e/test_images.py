"""End-to-end: the images records name, in the local stack's ECR (moto's). The local CodeBuild
pushes a successful build's image under its tag with the digest it exports, as the buildspec
does. REUSED names only an image that still exists; the image an agent's latest.json names
carries its kept tag (KEPT.<tag>, which the repository's top-priority lifecycle rule never
expires), and the tag moves when latest moves.
"""
from __future__ import annotations

import json

import boto3

from conftest import Stack, uid


def ecr(stack: Stack):
    env = stack.env
    return boto3.client("ecr", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def repository(stack: Stack) -> str:
    return stack.env["AGENTBUILD_REPOSITORY_URI"].split("/", 1)[1]


def tags_of_image(stack: Stack, tag: str) -> set[str]:
    """Every tag of the image `tag` names ({} when no image has that tag)."""
    client = ecr(stack)
    try:
        found = client.describe_images(repositoryName=repository(stack), imageIds=[{"imageTag": tag}])
    except client.exceptions.ImageNotFoundException:
        return set()
    return {t for d in found["imageDetails"] for t in d.get("imageTags", [])}


def build(stack: Stack, req: dict, prefix: str) -> dict:
    name = f"{prefix}-{uid()}"
    stack.script({"match": name, "seconds": 0})
    d = stack.run(name, req)
    assert d["status"] == "SUCCEEDED", d
    return stack.record(name)


def test_a_request_builds_again_when_the_image_latest_names_was_deleted(stack):
    req = stack.request(agent="gone")
    first = build(stack, req, "img")
    assert first["status"] == "SUCCEEDED"
    tag = first["image"]["tag"]
    assert tag in tags_of_image(stack, tag), "the build pushed its image"
    # The image is deleted (by hand, or expired): every tag of it.
    client = ecr(stack)
    client.batch_delete_image(repositoryName=repository(stack),
                              imageIds=[{"imageTag": t} for t in tags_of_image(stack, tag)])
    assert tags_of_image(stack, tag) == set()

    again = f"again-{uid()}"
    stack.script({"match": again, "seconds": 0})
    d = stack.run(again, req)
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"])["status"] == "SUCCEEDED", "built, not REUSED of a deleted image"
    rec = stack.record(again)
    assert rec["codebuild"]["buildId"] and rec.get("reusedFrom") is None, rec
    assert tag in tags_of_image(stack, tag), "the image exists again"


def test_the_kept_tag_sits_on_the_image_latest_names_and_moves_with_latest(stack):
    project = f"e2e-{uid()}"
    first = build(stack, stack.request(project, "kept"), "k1")
    tag1 = first["image"]["tag"]
    assert tags_of_image(stack, tag1) == {tag1, f"KEPT.{tag1}"}

    uri, _ = stack.upload_source(project, "kept", extra="v2")
    second = build(stack, {"project": project, "agent": "kept", "source": uri}, "k2")
    tag2 = second["image"]["tag"]
    assert tag2 != tag1
    assert stack.get_json(f"agents/{project}/kept/latest.json")["buildId"] == second["buildId"]
    assert tags_of_image(stack, tag2) == {tag2, f"KEPT.{tag2}"}
    assert tags_of_image(stack, tag1) == {tag1}, "the kept tag left the replaced image, which stays"
