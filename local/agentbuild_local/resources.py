"""The local AWS resources in moto: bucket, ECR repository, CodeBuild project, state machine; and
the bucket's contents kept across restarts in $STATE_DIR/s3, the repository's images in
$STATE_DIR/ecr.json."""
from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

from .config import (ACCOUNT, BUCKET, BUILD_FINISHED_QUEUE, CODEBUILD_PROJECT, CODEBUILD_ROLE, LAYER_PROJECT,
                     FLEET_STATE_MACHINE, HANDLER_SETTINGS, REGION, REPOSITORY, STATE_DIR, STATE_MACHINE,
                     STATES_ROLE)
from .engine import aws_client


# The bucket outlives the stack, as a real one would: records, agents' latest pointers and
# uploaded sources are saved here on `down` and restored on `up` — so an unchanged agent built
# before is REUSED after a restart. `rm -rf .local/s3` starts from an empty bucket.
BUCKET_DIR = STATE_DIR / "s3"


def _bucket_path(key: str) -> Path | None:
    parts = key.split("/")
    if key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return None  # not a key this stack writes; never a path outside BUCKET_DIR
    return BUCKET_DIR.joinpath(*parts)


def save_bucket(endpoint: str) -> int:
    s3 = aws_client("s3", endpoint)
    saved = 0
    tmp = BUCKET_DIR.with_name("s3.saving")
    shutil.rmtree(tmp, ignore_errors=True)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            path = _bucket_path(obj["Key"])
            if path is None:
                continue
            path = tmp.joinpath(path.relative_to(BUCKET_DIR))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
            saved += 1
    shutil.rmtree(BUCKET_DIR, ignore_errors=True)
    if tmp.exists():
        tmp.rename(BUCKET_DIR)
    return saved


def restore_bucket(endpoint: str) -> int:
    if not BUCKET_DIR.is_dir():
        return 0
    s3 = aws_client("s3", endpoint)
    restored = 0
    for path in sorted(p for p in BUCKET_DIR.rglob("*") if p.is_file()):
        key = path.relative_to(BUCKET_DIR).as_posix()
        body = path.read_bytes()
        extra = {}
        if key.startswith("sources/"):
            # As the CLI uploads them: with a SHA-256 checksum validate-request can read back
            # (legal holds are not saved: set below).
            extra["ChecksumSHA256"] = base64.b64encode(hashlib.sha256(body).digest()).decode()
        s3.put_object(Bucket=BUCKET, Key=key, Body=body, **extra)
        restored += 1
    # What record-result does when it moves a latest.json: the source it names is held (kept).
    for path in BUCKET_DIR.glob("agents/*/*/latest.json"):
        try:
            source = json.loads(path.read_text())["source"]
        except (ValueError, KeyError):
            continue
        source_path = _bucket_path(str(source.get("key", "")))
        if source.get("bucket") == BUCKET and source_path is not None and source_path.is_file():
            s3.put_object_legal_hold(Bucket=BUCKET, Key=source["key"], LegalHold={"Status": "ON"})
    return restored


# The image repository outlives the stack as the bucket does: the images its records name (so a
# REUSED after a restart finds its image, as StartBuild checks) are saved on `down` and pushed
# again, with their digests and tags, on `up`. moto's backend directly: the serve process hosts it.
IMAGES_FILE = STATE_DIR / "ecr.json"


def _repository():
    from moto.ecr.models import ecr_backends
    return ecr_backends[ACCOUNT][REGION].repositories.get(REPOSITORY)


def save_images() -> int:
    repo = _repository()
    images = [{"manifest": i.image_manifest, "media": i.image_manifest_media_type,
               "digest": i.image_digest, "tags": list(i.image_tags)}
              for i in (repo.images if repo else []) if i.image_tags]
    IMAGES_FILE.write_text(json.dumps(images))
    return len(images)


def restore_images() -> int:
    from moto.ecr.models import ecr_backends
    if not IMAGES_FILE.is_file():
        return 0
    backend = ecr_backends[ACCOUNT][REGION]
    images = json.loads(IMAGES_FILE.read_text())
    for image in images:
        for tag in image["tags"]:
            backend.put_image(REPOSITORY, image["manifest"], tag, image["media"], image["digest"])
    return len(images)


def capture_build_finished(endpoint: str) -> str:
    """A subscriber as the README shows one: a rule on the bus the handlers announce on, matching
    Build Finished events, sends them to an SQS queue (moto delivers PutEvents to SQS targets).
    Returns the queue's URL."""
    import json

    sqs = aws_client("sqs", endpoint)
    url = sqs.create_queue(QueueName=BUILD_FINISHED_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = aws_client("events", endpoint)
    bus = HANDLER_SETTINGS["AGENTBUILD_EVENT_BUS"]
    events.put_rule(Name=BUILD_FINISHED_QUEUE, EventBusName=bus, EventPattern=json.dumps(
        {"source": ["agentbuild"], "detail-type": ["Build Finished"]}))
    events.put_targets(Rule=BUILD_FINISHED_QUEUE, EventBusName=bus,
                       Targets=[{"Id": "queue", "Arn": arn}])
    return url


def create_resources(endpoint: str, definition: str) -> dict[str, str]:
    """Bucket, ECR repository, CodeBuild project, state machine, the Build Finished queue;
    returns their names for the env."""
    s3 = aws_client("s3", endpoint)
    # As in template.yaml: Object Lock (legal holds keep the sources latest.json names), and a
    # build fetches the object version that was validated.
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    repo = aws_client("ecr", endpoint).create_repository(
        repositoryName=REPOSITORY, imageTagMutability="IMMUTABLE")["repository"]
    aws_client("codebuild", endpoint).create_project(
        name=CODEBUILD_PROJECT,
        # moto requires a location even for NO_SOURCE; start-build passes the real source per build.
        source={"type": "NO_SOURCE", "location": "local", "buildspec": "version: 0.2"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "ARM_CONTAINER", "image": "aws/codebuild/amazonlinux-aarch64-standard:3.0",
                     "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": True},
        serviceRole=CODEBUILD_ROLE,
        timeoutInMinutes=int(HANDLER_SETTINGS["AGENTBUILD_BUILD_TIMEOUT_MINUTES"]),
        queuedTimeoutInMinutes=int(HANDLER_SETTINGS["AGENTBUILD_QUEUED_TIMEOUT_MINUTES"]),
    )
    # The code path's layer project (template.yaml's LayerProject): its builds run
    # buildspec-code.yml for real (codebuild_real.py).
    from .codebuild_real import LAYER_ENVIRONMENT, LAYER_LOG_GROUP, LAYER_PROJECT_ENV

    aws_client("codebuild", endpoint).create_project(
        name=LAYER_PROJECT,
        source={"type": "NO_SOURCE", "location": "local", "buildspec": "version: 0.2"},
        artifacts={"type": "NO_ARTIFACTS"},
        # moto 5.2.5 knows no Lambda compute (ARM_LAMBDA_CONTAINER / BUILD_LAMBDA_*): the project
        # says ARM_CONTAINER; each build reports LAYER_ENVIRONMENT (codebuild_real.py).
        environment={"type": "ARM_CONTAINER", "image": LAYER_ENVIRONMENT["image"],
                     "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": False, "environmentVariables": [
            {"name": k, "value": v, "type": "PLAINTEXT"} for k, v in LAYER_PROJECT_ENV.items()]},
        serviceRole=CODEBUILD_ROLE, timeoutInMinutes=15,
        logsConfig={"cloudWatchLogs": {"status": "ENABLED", "groupName": LAYER_LOG_GROUP}},
    )
    sm = aws_client("stepfunctions", endpoint).create_state_machine(
        name=STATE_MACHINE, definition=definition, roleArn=STATES_ROLE, type="STANDARD")
    return {
        "AGENTBUILD_REPOSITORY_URI": repo["repositoryUri"],
        "AGENTBUILD_STATE_MACHINE_ARN": sm["stateMachineArn"],
        "AGENTBUILD_BUILD_FINISHED_QUEUE_URL": capture_build_finished(endpoint),
        "AGENTBUILD_LAYER_PROJECT": LAYER_PROJECT,
    }


def create_fleet_machine(endpoint: str, definition: str) -> str:
    """The fleet-rebuild machine (statemachine/rebuild.asl.json, substituted with the build
    machine's ARN); returns its ARN."""
    return aws_client("stepfunctions", endpoint).create_state_machine(
        name=FLEET_STATE_MACHINE, definition=definition, roleArn=STATES_ROLE,
        type="STANDARD")["stateMachineArn"]
