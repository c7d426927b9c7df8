"""The bucket policy's effect on uploads, evaluated offline over the SAM-transformed template
(scripts/sam_transform.py; IAM and bucket policies are not enforced by moto): uploads work the
way AWS clients send them — PutObject, multipart (CreateMultipartUpload, UploadPart,
CompleteMultipartUpload), CopyObject — with no tag asked; nobody but record-result's role can
keep an upload (a legal hold, on upload or after, or a retention period).

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
from evaluator import (ACCOUNT, Request, allowed, as_list, decide, resolve, role_arn,  # noqa: E402
                       s3_call, s3_object)

ROOT = Path(__file__).resolve().parents[2]
KEY = "sources/nexus-ai/sales-assistant/0f34.zip"
# A caller the platform team allowed to upload its sources (and an administrator of the account).
UPLOADER = f"arn:aws:iam::{ACCOUNT}:role/fargate-api"
UPLOADER_POLICY = [{"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
                    "Resource": "arn:aws:s3:::agentbuild-bucket/sources/nexus-ai/*"}]
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/admin"
ADMIN_POLICY = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
# A tagging header also needs s3:PutObjectTagging (what today's CLI upload needed).
TAGGING_POLICY = [{"Effect": "Allow", "Action": "s3:PutObjectTagging",
                   "Resource": "arn:aws:s3:::agentbuild-bucket/sources/*"}]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "sam_transform.py"),
                          str(ROOT / "template.yaml")], check=True, capture_output=True, text=True)
    raw = json.loads(out.stdout)
    params = {k: p.get("Default") for k, p in raw.get("Parameters", {}).items()}
    return resolve(raw, params)


@pytest.fixture(scope="module")
def bucket_policy(template) -> list[dict[str, Any]]:
    return as_list(template["Resources"]["BucketPolicy"]["Properties"]["PolicyDocument"]["Statement"])


def role_policy(template, role: str) -> list[dict[str, Any]]:
    props = template["Resources"][role]["Properties"]
    return [s for p in props.get("Policies", []) for s in as_list(p["PolicyDocument"]["Statement"])]


MULTIPART = ("CreateMultipartUpload", "UploadPart", "UploadPart", "CompleteMultipartUpload")


def upload(api_calls, headers=None, source_key=None):
    return [r for api in api_calls for r in s3_call(api, UPLOADER, KEY, headers, source_key)]


def test_plain_multipart_and_copied_uploads_are_allowed(bucket_policy):
    for calls in (("PutObject",), MULTIPART):
        assert allowed(upload(calls), UPLOADER_POLICY, bucket_policy), calls
    copy = upload(("CopyObject",), source_key="sources/nexus-ai/sales-assistant/old.zip")
    assert allowed(copy, UPLOADER_POLICY, bucket_policy)
    # Tags are neither asked nor refused (they keep nothing).
    tagged = {"x-amz-tagging": "agentbuild%3Alatest=true"}
    assert allowed(upload(("PutObject",), tagged), UPLOADER_POLICY + TAGGING_POLICY, bucket_policy)


@pytest.mark.parametrize("headers", [
    {"x-amz-object-lock-legal-hold": "ON"},
    {"x-amz-object-lock-mode": "COMPLIANCE", "x-amz-object-lock-retain-until-date": "2099-01-01T00:00:00Z"},
], ids=["legal-hold", "retention"])
def test_no_upload_can_keep_itself_whoever_sends_it(bucket_policy, headers):
    for calls in (("PutObject",), MULTIPART[:1], ("CopyObject",)):
        reqs = upload(calls, headers, source_key="sources/nexus-ai/sales-assistant/old.zip")
        assert not allowed(reqs, UPLOADER_POLICY, bucket_policy), calls
        put = reqs[0]
        assert decide(put, UPLOADER_POLICY, bucket_policy) == "ExplicitDeny", calls
        admin = Request(put.action, put.resource, ADMIN, put.context)
        assert decide(admin, ADMIN_POLICY, bucket_policy) == "ExplicitDeny", calls


def test_only_record_results_role_places_or_lifts_a_hold(template, bucket_policy):
    service = role_arn("RecordResultFunctionRole")
    hold = s3_call("PutObjectLegalHold", service, KEY)
    assert allowed(hold, role_policy(template, "RecordResultFunctionRole"), bucket_policy)
    # Not outside sources/ (its policy allows sources/* only).
    elsewhere = s3_call("PutObjectLegalHold", service, "builds/b.json")
    assert not allowed(elsewhere, role_policy(template, "RecordResultFunctionRole"), bucket_policy)
    for who, policy in ((UPLOADER, UPLOADER_POLICY + ADMIN_POLICY), (ADMIN, ADMIN_POLICY),
                        (role_arn("ApiFunctionRole"), ADMIN_POLICY)):
        r = s3_call("PutObjectLegalHold", who, KEY)[0]
        assert decide(r, policy, bucket_policy) == "ExplicitDeny", who
    retention = Request("s3:PutObjectRetention", s3_object(KEY), ADMIN, {"aws:SecureTransport": "true"})
    assert decide(retention, ADMIN_POLICY, bucket_policy) == "ExplicitDeny"


def test_the_bucket_keeps_held_versions_and_expires_every_other_upload(template):
    bucket = template["Resources"]["Bucket"]["Properties"]
    assert bucket["ObjectLockEnabled"] is True and "ObjectLockConfiguration" not in bucket
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    for rid in ("ExpireSources", "ExpireOldSourceVersions"):
        rule = rules[rid]
        assert rule["Prefix"] == "sources/" and "TagFilters" not in rule, rule


# -- the evaluator itself, on both outcomes -------------------------------------------------------

def test_the_evaluator_allows_denies_and_reads_conditions_as_iam_does():
    r = Request("s3:PutObject", s3_object(KEY), UPLOADER, {"aws:SecureTransport": "true"})
    allow = [{"Effect": "Allow", "Action": "s3:Put*", "Resource": "arn:aws:s3:::agentbuild-bucket/*"}]
    assert decide(r, allow) == "Allow"
    assert decide(r, []) == "ImplicitDeny"
    assert decide(Request("s3:GetObject", r.resource, UPLOADER), allow) == "ImplicitDeny"
    deny_untagged = [{"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "*",
                      "Condition": {"StringNotEquals": {"s3:RequestObjectTag/agentbuild:latest": "false"}}}]
    # A negated operator holds when the key is absent: the old policy's trap for UploadPart.
    assert decide(r, allow, deny_untagged) == "ExplicitDeny"
    tagged = Request(r.action, r.resource, r.principal,
                     {**r.context, "s3:RequestObjectTag/agentbuild:latest": "false"})
    assert decide(tagged, allow, deny_untagged) == "Allow"
    null = [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*",
             "Condition": {"Null": {"s3:object-lock-mode": "false"}}}]
    assert decide(r, allow, null) == "Allow"
    locked = Request(r.action, r.resource, r.principal, {**r.context, "s3:object-lock-mode": "GOVERNANCE"})
    assert decide(locked, allow, null) == "ExplicitDeny"
    arn_not = [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*",
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": UPLOADER}}}]
    r_with_arn = Request(r.action, r.resource, r.principal, {**r.context, "aws:PrincipalArn": UPLOADER})
    assert decide(r_with_arn, allow, arn_not) == "Allow"
    other = Request(r.action, r.resource, ADMIN, {**r.context, "aws:PrincipalArn": ADMIN})
    assert decide(other, allow, arn_not) == "ExplicitDeny"


def test_the_old_tag_requirement_denied_multipart_parts():
    """What the issue reported, reproduced by the evaluator: a policy requiring the tag on every
    s3:PutObject refuses UploadPart, which cannot carry it."""
    old = [{"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::agentbuild-bucket/sources/*",
            "Condition": {"StringNotEquals": {"s3:RequestObjectTag/agentbuild:latest": "false"}}}]
    headers = {"x-amz-tagging": "agentbuild%3Alatest=false"}
    caller = UPLOADER_POLICY + TAGGING_POLICY
    assert allowed(upload(("PutObject",), headers), caller, old)
    assert allowed(upload(("CreateMultipartUpload",), headers), caller, old)
    assert not allowed(upload(("UploadPart",), headers), caller, old)
