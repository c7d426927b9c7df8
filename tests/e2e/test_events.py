"""Completion events end to end: every final record is announced on EventBridge (`source`
agentbuild, `detail-type` Build Finished) — exactly once without faults. The local stack
subscribes as the README shows (a rule on the default bus -> the SQS queue in
AGENTBUILD_BUILD_FINISHED_QUEUE_URL); these tests read that queue and keep what they read, since
every test's events arrive there.

Run: .venv/bin/python -m pytest tests/e2e/test_events.py -q (needs a running stack; see
test_pipeline.py).
"""
from __future__ import annotations

import fcntl
import json
import time
from typing import Any

import pytest

from conftest import STATE_DIR, Stack, uid

# What every reader drained from the queue (one JSON event a line; build ids are unique).
ANNOUNCED = STATE_DIR / "announced.jsonl"

DIGEST = "sha256:" + "cd" * 32


class Announcements:
    """Everything read from the Build Finished queue, by buildId. Every reader (each module's
    fixture, each pytest-xdist worker) drains the one queue, so what is read goes to one file all
    of them read: ANNOUNCED (an event is received and deleted once, so it is written once)."""

    def __init__(self, stack: Stack):
        import boto3

        env = stack.env
        self.url = env["AGENTBUILD_BUILD_FINISHED_QUEUE_URL"]
        self.sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])

    def drain(self) -> None:
        while True:
            msgs = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=0).get("Messages", [])
            if not msgs:
                return
            with ANNOUNCED.open("a") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                for m in msgs:
                    f.write(json.dumps(json.loads(m["Body"])) + "\n")
                f.flush()
            for m in msgs:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])

    @staticmethod
    def seen(build_id: str) -> list[dict[str, Any]]:
        if not ANNOUNCED.exists():
            return []
        with ANNOUNCED.open() as f:
            fcntl.flock(f, fcntl.LOCK_SH)
            events = [json.loads(line) for line in f if build_id in line]
        return [e for e in events if e["detail"]["buildId"] == build_id]

    def of(self, build_id: str, settle: float = 2.0, timeout: float = 20) -> list[dict[str, Any]]:
        """The events of `build_id`: waits for the first, then `settle` seconds for any more."""
        deadline = time.monotonic() + timeout
        while not self.seen(build_id) and time.monotonic() < deadline:
            self.drain()
            time.sleep(0.2)
        time.sleep(settle)
        self.drain()
        return self.seen(build_id)


@pytest.fixture(scope="module")
def announced(stack):
    return Announcements(stack)


def closer_ran(stack: Stack, name: str, timeout: float = 20) -> None:
    """The ended-executions relay has handed `name`'s execution to record-result, which answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        calls = [c for c in stack.invocations("record-result", name)
                 if c["request"].get("detail", {}).get("name") == name and c.get("status")]
        if calls:
            assert all(c["status"] == 200 for c in calls), calls
            return
        time.sleep(0.2)
    raise AssertionError(f"the last-resort closer never ran for {name}")


def only(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    assert len(events) == 1, f"{name}: expected exactly one Build Finished event, got {events}"
    event = events[0]
    assert (event["source"], event["detail-type"]) == ("agentbuild", "Build Finished"), event
    return event["detail"]


def test_a_successful_build_is_announced_once_with_its_image(stack, announced):
    name = f"ev-ok-{uid()}"
    image_uri = f"{stack.env['AGENTBUILD_REPOSITORY_URI']}@{DIGEST}"
    stack.script({"match": name, "polls": 1, "exported": {"IMAGE_DIGEST": DIGEST, "IMAGE_URI": image_uri}})
    req = stack.request()
    d = stack.run(name, req)
    assert d["status"] == "SUCCEEDED", d
    detail = only(announced.of(name), name)
    rec = stack.record(name)
    # The image's signature: the record's (none here: the local stack signs only when a test
    # scripts it, as ImageSigning is off by default), so UNAVAILABLE with the reason.
    signature = rec["image"]["signature"]
    assert signature["status"] == "UNAVAILABLE", signature
    assert detail == {
        "buildId": name, "project": req["project"], "agent": req["agent"], "status": "SUCCEEDED",
        "image": {"repositoryUri": rec["image"]["repositoryUri"], "tag": rec["image"]["tag"],
                  "digest": DIGEST, "uri": image_uri, "signature": signature},
        "recordKey": f"builds/{name}.json",
    }


def test_a_failed_build_is_announced_once_by_recordresult_not_again_by_the_closer(stack, announced):
    name = f"ev-fail-{uid()}"
    stack.script({"match": name, "polls": 1, "status": "FAILED", "failedPhase": "BUILD"})
    req = stack.request()
    d = stack.run(name, req)
    assert (d["status"], d["error"]) == ("FAILED", "FAILED"), d
    # The failed execution reaches the last-resort closer too: it finds RecordResult's record.
    closer_ran(stack, name)
    detail = only(announced.of(name), name)
    assert (detail["status"], detail["project"], detail["agent"]) == ("FAILED", req["project"], req["agent"])
    assert detail["image"]["digest"] is None and detail["recordKey"] == f"builds/{name}.json"


def test_an_aborted_execution_is_announced_stopped_by_the_closer(stack, announced):
    name = f"ev-abort-{uid()}"
    stack.script({"match": name, "hold": True})
    arn = stack.start(name, stack.request())
    stack.wait_started(name)
    assert not announced.of(name, settle=0, timeout=1), "nothing is announced while it runs"
    stack.sfn.stop_execution(executionArn=arn)
    assert stack.wait(arn)["status"] == "ABORTED"
    rec = stack.wait_record(name, ("STOPPED",))
    assert rec["error"]["type"] == "ExecutionAborted"
    closer_ran(stack, name)
    detail = only(announced.of(name), name)
    assert detail["status"] == "STOPPED" and detail["buildId"] == name


def test_a_cancelled_build_is_announced_once_by_the_closer_of_its_abort(stack, announced):
    api = stack.env.get("AGENTBUILD_API_URL")
    assert api, "the stack has no API (AGENTBUILD_API_URL)"
    name = f"ev-cancel-{uid()}"
    stack.script({"match": name, "hold": True})
    stack.start(name, stack.request())
    stack.wait_started(name)
    status, body, _ = stack.http("DELETE", f"{api}{stack.build_path(name)}")
    assert status == 202 and body["status"] == "STOPPED", body
    closer_ran(stack, name)
    detail = only(announced.of(name), name)
    assert detail["status"] == "STOPPED" and detail["buildId"] == name
