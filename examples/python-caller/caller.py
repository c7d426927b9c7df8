#!/usr/bin/env python3
"""A Python service calling agentbuild, as the Fargate API that used to call the AgentCore
toolkit's `Runtime.launch()` would: upload a build context, submit it to the project-scoped
route, wait for `Build Finished` through SQS, print the live agent.

    python caller.py --project nexus-ai --agent sales-assistant --context ./agent [--deploy]

Needs boto3 (botocore signs; no hand-written crypto). Configuration from the environment:
  AGENTBUILD_API_URL   the stack's ApiUrl output (https://<id>.execute-api.<region>.amazonaws.com)
  AGENTBUILD_BUCKET    the stack's BucketName output
  AWS_REGION, and credentials by the default chain (the task role on Fargate). Locally also
  AWS_ENDPOINT_URL (the emulator); `make local-env` prints all of them.

What the caller's role needs (README "Access"): execute-api:Invoke on
…/<ApiId>/*/*/projects/<project>/* (the template's ExampleCallerPolicy), s3:PutObject on
sources/<project>/* of the bucket, and — unless the queue and rule exist already
(--no-setup) — sqs:CreateQueue/GetQueueAttributes/SetQueueAttributes, events:PutRule/PutTargets;
always sqs:ReceiveMessage/DeleteMessage on its queue.

The last stdout line is one JSON object: {buildId, status, image, deployment?, record}. Exit 0
when the build succeeded (or was REUSED) and any deployment is READY, 1 otherwise, 2 when the
API refused the request.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config

FINISHED = {"source": ["agentbuild"], "detail-type": ["Build Finished"]}


def clients(region: str) -> dict[str, Any]:
    session = boto3.session.Session(region_name=region)
    local = bool(os.environ.get("AWS_ENDPOINT_URL"))
    s3_config = Config(s3={"addressing_style": "path"}) if local else None
    return {"session": session, "s3": session.client("s3", config=s3_config),
            "sqs": session.client("sqs"), "events": session.client("events")}


# -- 1. the build context --------------------------------------------------------------------

def pack(context: Path, out: Path) -> str:
    """Zips `context` (files in name order, fixed times: the same tree gives the same bytes);
    returns the zip's SHA-256. (The agentbuild CLI's packer also honours .dockerignore.)"""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(p for p in context.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(context).as_posix(), (1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            z.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def upload(s3: Any, bucket: str, project: str, agent: str, context: Path) -> str:
    """Uploads the context the way AWS clients upload (boto3's managed transfer: multipart above
    8 MB; the bucket policy asks for no tag); returns its s3:// URI."""
    with tempfile.TemporaryDirectory() as tmp:
        zipped = Path(tmp) / "context.zip"
        sha = pack(context, zipped)
        key = f"sources/{project}/{agent}/{sha}.zip"
        s3.upload_file(str(zipped), bucket, key)
    return f"s3://{bucket}/{key}"


# -- 2. where Build Finished arrives ---------------------------------------------------------

def subscribe(sqs: Any, events: Any, name: str, project: str, bus: str) -> str:
    """An SQS queue and an EventBridge rule sending it this project's Build Finished events
    (idempotent: created or updated in place); returns the queue URL."""
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = dict(FINISHED, detail={"project": [project]})
    rule = events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))["RuleArn"]
    # EventBridge may send to the queue only for this rule.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                       "Action": "sqs:SendMessage", "Resource": arn,
                       "Condition": {"ArnEquals": {"aws:SourceArn": rule}}}]})})
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def queue_url(sqs: Any, name: str) -> str:
    return sqs.get_queue_url(QueueName=name)["QueueUrl"]


# -- 3. the API, SigV4-signed -----------------------------------------------------------------

def call(session: Any, region: str, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """One API call signed for `execute-api` with the session's credentials (botocore's signer)."""
    data = json.dumps(body).encode() if body is not None else b""
    request = AWSRequest(method=method, url=url, data=data,
                         headers={"Content-Type": "application/json", "Accept": "application/json"})
    SigV4Auth(session.get_credentials().get_frozen_credentials(), "execute-api", region).add_auth(request)
    prepared = urllib.request.Request(url, data=data or None, method=method, headers=dict(request.headers))
    try:
        with urllib.request.urlopen(prepared, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw or b"null")
        except ValueError:
            return e.code, raw.decode("utf-8", "replace")


# -- 4. waiting for the outcome ---------------------------------------------------------------

def wait_finished(sqs: Any, url: str, build_id: str, timeout: float) -> dict[str, Any] | None:
    """The Build Finished detail of `build_id` (delivery is at least once: the first one counts,
    duplicates are deleted too); None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wait = max(1, min(20, int(deadline - time.monotonic())))
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        for message in got.get("Messages", []):
            event = json.loads(message["Body"])
            detail = event.get("detail", {})
            if detail.get("buildId") == build_id:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                return detail
            # Another build of the project: someone else's to read (visible again later).
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--project", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--context", required=True, type=Path, help="the build context (a directory with a Dockerfile)")
    ap.add_argument("--deploy", action="store_true", help="run the image in AgentCore Runtime")
    ap.add_argument("--queue", help="queue and rule name (default agentbuild-<project>-finished)")
    ap.add_argument("--no-setup", action="store_true", help="the queue and rule exist already")
    ap.add_argument("--bus", default="default", help="the stack's event bus")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the build")
    args = ap.parse_args(argv)

    api = os.environ["AGENTBUILD_API_URL"].rstrip("/")
    bucket = os.environ["AGENTBUILD_BUCKET"]
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    aws = clients(region)
    name = args.queue or f"agentbuild-{args.project}-finished"
    queue = queue_url(aws["sqs"], name) if args.no_setup else subscribe(
        aws["sqs"], aws["events"], name, args.project, args.bus)

    source = upload(aws["s3"], bucket, args.project, args.agent, args.context)
    request: dict[str, Any] = {"project": args.project, "agent": args.agent, "source": source}
    if args.deploy:
        request["deploy"] = {}
    status, accepted = call(aws["session"], region, "POST", f"{api}/projects/{args.project}/builds", request)
    if status != 202:
        print(json.dumps({"status": "REFUSED", "http": status, "answer": accepted}))
        return 2
    build_id = accepted["buildId"]
    print(f"submitted {build_id} (source {source})", file=sys.stderr)

    detail = None
    if accepted.get("existing"):
        # Submitted before: it may have finished before this queue listened.
        status, current = call(aws["session"], region, "GET", f"{api}{accepted['statusUrl']}")
        if status == 200 and current.get("status") not in (None, "RUNNING"):
            detail = {"buildId": build_id, "status": current["status"], "image": current.get("image"),
                      "deployment": current.get("deployment")}
    detail = detail or wait_finished(aws["sqs"], queue, build_id, args.timeout)
    if detail is None:
        print(json.dumps({"buildId": build_id, "status": "TIMED_OUT_WAITING"}))
        return 1
    # The record (what the event's recordKey names), through the API.
    _, record = call(aws["session"], region, "GET", f"{api}{accepted['statusUrl']}")
    deployment = detail.get("deployment") or {}
    print(json.dumps({"buildId": build_id, "status": detail["status"], "image": detail.get("image"),
                      "deployment": deployment or None, "record": record}))
    ok = detail["status"] in ("SUCCEEDED", "REUSED") and deployment.get("status", "READY") == "READY"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
