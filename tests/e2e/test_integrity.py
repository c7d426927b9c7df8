"""Only approved bytes, never backwards (issue 20): each test stages an attack on purpose through a
real door of the local stack and asserts the outcome in S3 (records, latest.json).

- new bytes are a new build: re-posting the same body after replacing the object at its key
  starts a new build of the new bytes (20.3);
- only trusted doors set trust-bearing fields: a console input claiming the schedule's door and a
  far-future submission time is refused, and latest.json keeps moving forward (20.2);
- a reused execution name never resumes someone else's build (20.6);
- a rebuild builds the recorded object version, checked against its recorded SHA-256, whatever is
  at the key now (20.1).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

from conftest import uid


def context(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("Dockerfile", f"FROM public.ecr.aws/docker/library/python:3.12-slim\n# {text}\n")
        z.writestr("app.py", f"print({text!r})\n")
    return buf.getvalue()


def put(stack, key: str, text: str) -> tuple[str, str]:
    """`context(text)` at `key` (a fixed key, not a content address); (versionId, sha256)."""
    data = context(text)
    out = stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=data)
    return out["VersionId"], hashlib.sha256(data).hexdigest()


def latest(stack, project: str, agent: str) -> dict:
    return stack.get_json(f"agents/{project}/{agent}/latest.json")


def test_new_bytes_at_the_same_key_are_a_new_build(stack):
    api = stack.env.get("AGENTBUILD_API_URL")
    assert api, "the stack has no API (AGENTBUILD_API_URL)"
    project, agent = f"e2e-{uid()}", "agent"
    key = f"sources/{project}/{agent}/context.zip"
    v1, sha1 = put(stack, key, "first")
    body = {"project": project, "agent": agent, "source": f"s3://{stack.bucket}/{key}"}
    status, first, _ = stack.http("POST", f"{api}/projects/{body['project']}/builds", body)
    assert status == 202, first
    assert stack.wait(first["executionArn"])["status"] == "SUCCEEDED"

    # The attack: the caller (or anyone who can write the key) replaces the bytes and re-posts
    # the very same body. Today's main answers the old build; the new bytes are never built.
    v2, sha2 = put(stack, key, "second")
    assert v2 != v1 and sha2 != sha1
    status, second, _ = stack.http("POST", f"{api}/projects/{body['project']}/builds", body)
    assert status == 202, second
    assert second["buildId"] != first["buildId"], "new bytes answered with the old build"
    assert stack.wait(second["executionArn"])["status"] == "SUCCEEDED"

    rec1, rec2 = stack.record(first["buildId"]), stack.record(second["buildId"])
    assert (rec1["source"]["versionId"], rec1["source"]["sha256"]) == (v1, sha1)
    assert (rec2["source"]["versionId"], rec2["source"]["sha256"]) == (v2, sha2)
    assert rec2["trigger"] == "api"
    assert latest(stack, project, agent)["buildId"] == second["buildId"]

    # The same body with the same bytes again: the same build, nothing started.
    status, again, _ = stack.http("POST", f"{api}/projects/{body['project']}/builds", body)
    assert status == 202 and again["buildId"] == second["buildId"]


def test_a_console_input_cannot_claim_the_schedule_or_pin_latest(stack):
    req = stack.request()
    project, agent = req["project"], req["agent"]
    d = stack.run(f"ok-{uid()}", req)
    assert d["status"] == "SUCCEEDED", d

    # The attack: a console execution claiming to be the schedule, submitted in 2999 — on
    # today's main it becomes latest for good (no later submission is "newer").
    pinned_uri, _ = stack.upload_source(project, agent, "pinned")
    attack = f"pin-{uid()}"
    d = stack.run(attack, {"trigger": "schedule", "submittedAt": "2999-01-01T00:00:00Z",
                           "request": dict(req, source=pinned_uri)})
    assert d["status"] == "FAILED" and d["error"] == "InvalidRequest", d
    assert json.loads(d["cause"])["errorMessage"].split(":")[0] in ("trigger", "submittedAt"), d
    assert stack.record(attack) is None, "a refused input writes nothing"

    # latest.json keeps moving forward: a later ordinary submission takes it.
    newer_uri, _ = stack.upload_source(project, agent, "newer")
    newer = f"ok-{uid()}"
    d = stack.run(newer, dict(req, source=newer_uri))
    assert d["status"] == "SUCCEEDED", d
    rec = stack.record(newer)
    assert rec["trigger"] == "console" and "submittedAt" not in rec["timestamps"]
    assert latest(stack, project, agent)["buildId"] == newer


def test_a_reused_execution_name_never_resumes_the_build_recorded_at_it(stack):
    req = stack.request()
    done = f"ok-{uid()}"
    d = stack.run(done, req)
    assert d["status"] == "SUCCEEDED", d
    old = stack.get_bytes(f"builds/{done}.json")

    # The attack, staged: the name of a closed execution whose final record is at builds/<name>
    # is started again (Step Functions frees a name 90 days after its execution closed; a console
    # user picks any name). Here the earlier record sits at the new execution's name. Today's
    # main validates, StartBuild resumes the recorded CodeBuild build: nothing is built, and the
    # old image is recorded as this request's.
    reused = f"reuse-{uid()}"
    stack.s3.put_object(Bucket=stack.bucket, Key=f"builds/{reused}.json",
                        Body=old.replace(done.encode(), reused.encode()))
    staged = stack.get_bytes(f"builds/{reused}.json")
    builds_before = stack.build_count()
    other_uri, _ = stack.upload_source(req["project"], req["agent"], "someone-else")
    d = stack.run(reused, dict(req, source=other_uri))
    assert d["status"] == "FAILED" and d["error"] == "InvalidRequest", d
    cause = json.loads(d["cause"])["errorMessage"]
    assert cause.startswith(f"executionName: build {reused} already has a SUCCEEDED record"), cause
    assert stack.get_bytes(f"builds/{reused}.json") == staged, "the earlier record is untouched"
    assert stack.build_count() == builds_before, "no CodeBuild build started or resumed"


def test_a_rebuild_builds_the_recorded_version_whatever_is_at_the_key_now(stack):
    project, agent = f"e2e-{uid()}", "agent"
    key = f"sources/{project}/{agent}/context.zip"
    v1, sha1 = put(stack, key, "approved")
    built = f"ok-{uid()}"
    d = stack.run(built, {"project": project, "agent": agent, "source": f"s3://{stack.bucket}/{key}"})
    assert d["status"] == "SUCCEEDED", d

    # The attack: bytes nobody built replace the key; then the agent is rebuilt. Today's main
    # validates and builds whatever is at the key now, and deploys it.
    v2, sha2 = put(stack, key, "never built")
    rebuild = f"rb-{uid()}"
    d = stack.run(rebuild, {"rebuild": {"buildId": built, "run": "20261129T0300"}})
    assert d["status"] == "SUCCEEDED", d
    rec = stack.record(rebuild)
    assert (rec["source"]["versionId"], rec["source"]["sha256"]) == (v1, sha1), rec["source"]
    assert rec["force"] is True and rec["trigger"] == "console", "no manifest vouches for it"
    assert rec["timestamps"]["submittedAt"] == stack.record(built)["timestamps"]["requestedAt"]

    # A recorded version that is gone: the rebuild is refused, naming the source.
    # (latest.json names it, so the service holds it: an administrator lifts the hold first.)
    stack.s3.put_object_legal_hold(Bucket=stack.bucket, Key=key, VersionId=v1, LegalHold={"Status": "OFF"})
    stack.s3.delete_object(Bucket=stack.bucket, Key=key, VersionId=v1)
    gone = f"rb-{uid()}"
    d = stack.run(gone, {"rebuild": {"buildId": built, "run": "20261129T0300"}})
    assert d["status"] == "FAILED" and d["error"] == "InvalidRequest", d
    assert json.loads(d["cause"])["errorMessage"].startswith("source: version "), d
    assert stack.record(gone) is None
