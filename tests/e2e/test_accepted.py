"""Every accepted request ends with a record and an event (issue 20, item 7): once `POST /builds`
has answered 202 with a buildId, that build gets a final record and exactly one `Build Finished`,
whatever happens inside the execution — also when ValidateRequest then refuses it (the validated
source version deleted between the 202 and ValidateRequest) or cannot run (S3 failing past its
retries). The API writes the build's first record before it starts the execution; the
last-resort closer on the FAILED execution closes it `ERROR` with the execution's error and
announces it. A console input that fails validation still leaves nothing (design.md)."""
from __future__ import annotations

import time

from conftest import Stack, uid
from test_events import Announcements, closer_ran, only

# ValidateRequest's Retry: 4 attempts after the first (build.asl.json).
VALIDATE_ATTEMPTS = 5


def accept(stack: Stack, req: dict) -> str:
    api = stack.env.get("AGENTBUILD_API_URL")
    assert api, "the stack has no API (AGENTBUILD_API_URL)"
    status, body, _ = stack.http("POST", f"{api}/projects/{req['project']}/builds", req)
    assert status == 202, body
    return body["buildId"]


def test_a_source_version_deleted_after_the_202_ends_error_with_one_event(stack):
    announced = Announcements(stack)
    req = stack.request(f"acc-del-{uid()}")
    # Hold ValidateRequest of this project's execution for 3 s: the version goes meanwhile.
    stack.inject("validate-request", {"delay": 3, "match": req["project"]})
    bucket, key = req["source"][len("s3://"):].split("/", 1)
    version = stack.s3.head_object(Bucket=bucket, Key=key)["VersionId"]
    build_id = accept(stack, req)
    stack.s3.delete_object(Bucket=bucket, Key=key, VersionId=version)

    rec = stack.wait_record(build_id, ("ERROR",), timeout=40)
    assert rec["error"]["type"] == "InvalidRequest", rec
    assert "no longer exists" in rec["error"]["message"], rec
    assert (rec["project"], rec["agent"], rec["source"]["uri"]) == (req["project"], req["agent"], req["source"])
    assert rec["source"]["versionId"] == version and rec["trigger"] == "api"
    assert rec["timestamps"]["requestedAt"] and rec["timestamps"]["finishedAt"]
    assert rec["codebuild"].get("buildId") is None, "no build was started"
    closer_ran(stack, build_id)
    detail = only(announced.of(build_id), build_id)
    assert (detail["status"], detail["recordKey"]) == ("ERROR", f"builds/{build_id}.json")
    # GET answers the final record.
    status, got, _ = stack.http("GET", f"{stack.env['AGENTBUILD_API_URL']}{stack.build_path(build_id)}")
    assert (status, got) == (200, rec)


def test_s3_failing_past_validates_retries_ends_error_with_one_event(stack):
    announced = Announcements(stack)
    req = stack.request(f"acc-s3-{uid()}")
    stack.inject("validate-request", {"error": {"type": "TransientAwsError",
                                                "message": "S3.GetObject: SlowDown (injected)"},
                                      "times": VALIDATE_ATTEMPTS, "match": req["project"]})
    build_id = accept(stack, req)
    rec = stack.wait_record(build_id, ("ERROR",), timeout=60)
    assert rec["error"]["type"] == "TransientAwsError", rec
    assert "SlowDown" in rec["error"]["message"], rec
    closer_ran(stack, build_id)
    assert only(announced.of(build_id), build_id)["status"] == "ERROR"


def test_a_console_input_that_fails_validation_still_writes_nothing(stack):
    name = f"acc-console-{uid()}"
    d = stack.run(name, {"project": "Bad Name", "agent": "a", "source": "s3://x/y.zip"})
    assert (d["status"], d.get("error")) == ("FAILED", "InvalidRequest"), d
    time.sleep(2)  # the closer runs on the FAILED execution too
    assert stack.record(name) is None
