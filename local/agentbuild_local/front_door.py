"""The API's front door (AGENTBUILD_API_URL): what API Gateway's HTTP API with AWS_IAM auth does
before the api Lambda runs, emulated on loopback, then the request forwarded to the real handler
(`cargo lambda watch`'s function URL).

For every request:
  1. SigV4: the `Authorization` header is checked for real — the access key's secret is looked up
     (the stack's own key `local`, or an IAM user's access key in moto), the canonical request is
     recomputed with botocore and the signatures compared; a request more than 15 minutes off is
     refused. Unsigned or badly signed: 403 `{"message":"Forbidden"}`.
  2. IAM: the caller's identity policies (an IAM user's inline, attached and group policies, read
     from moto) are evaluated for `execute-api:Invoke` on the route's ARN
     `arn:aws:execute-api:<region>:<account>:<API_ID>/$default/<METHOD>/<path>` with the offline
     evaluator of tests/policy — the one that checks the template's policies. Denied: 403
     `{"message":"Forbidden"}`, as API Gateway answers, and the Lambda never runs.
  3. Forwarded: method, path, query, body and headers to the function URL; its answer back.

The stack's own key (`local`/`local`, what every local client uses by default) stands for the
account's administrator: allowed everything, as an admin role is on AWS. What is emulated, not
real: API Gateway itself (route keys, throttling, the 10 MB / 30 s limits), the identity
policies' evaluation (tests/policy/evaluator.py: no SCPs, boundaries, session policies), and
roles (only IAM users' access keys are known here; moto's STS credentials are not).
"""
from __future__ import annotations

import hmac
import json
import re
import sys
import threading
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .config import ACCOUNT, DUMMY_CREDENTIALS, REGION, ROOT, log

# What the local API is called in execute-api ARNs (API Gateway's api id on AWS).
API_ID = "local"
STAGE = "$default"
# API Gateway refuses a signature whose time is further off than this.
MAX_SKEW = timedelta(minutes=15)
FORBIDDEN = {"message": "Forbidden"}
ADMIN = f"arn:aws:iam::{ACCOUNT}:root"

_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
                   r"SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$")


def _evaluator():
    sys.path.insert(0, str(ROOT / "tests" / "policy"))
    import evaluator  # noqa: PLC0415 - tests/policy is not a package
    return evaluator


class Denied(Exception):
    """Why the front door answers 403 (logged, never sent: API Gateway says only Forbidden)."""


def _iam_user(access_key_id: str):
    """(principal ARN, secret) of the IAM user in moto owning this access key, or None."""
    from moto.iam.models import iam_backends
    backend = iam_backends[ACCOUNT]["aws"]
    user = backend.get_user_from_access_key_id(access_key_id)
    if user is None:
        return None
    key = next(k for k in user.access_keys if k.access_key_id == access_key_id)
    if key.status != "Active":
        return None
    return user.arn, user.name, key.secret_access_key


def identity_policies(iam: Any, user_name: str) -> list[dict[str, Any]]:
    """Every statement of the user's inline, attached and group policies (IAM's API, on moto)."""
    documents = []

    def managed(arns: list[str]) -> None:
        for arn in arns:
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            documents.append(iam.get_policy_version(PolicyArn=arn, VersionId=version)
                             ["PolicyVersion"]["Document"])

    for name in iam.list_user_policies(UserName=user_name)["PolicyNames"]:
        documents.append(iam.get_user_policy(UserName=user_name, PolicyName=name)["PolicyDocument"])
    managed([p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=user_name)["AttachedPolicies"]])
    for group in iam.list_groups_for_user(UserName=user_name)["Groups"]:
        g = group["GroupName"]
        for name in iam.list_group_policies(GroupName=g)["PolicyNames"]:
            documents.append(iam.get_group_policy(GroupName=g, PolicyName=name)["PolicyDocument"])
        managed([p["PolicyArn"] for p in iam.list_attached_group_policies(GroupName=g)["AttachedPolicies"]])
    statements = []
    for doc in documents:
        doc = json.loads(doc) if isinstance(doc, str) else doc
        st = doc.get("Statement", [])
        statements += st if isinstance(st, list) else [st]
    return statements


def verify_signature(method: str, host: str, raw_path: str, headers: dict[str, str],
                     body: bytes, now: datetime) -> tuple[str, str]:
    """(principal ARN, IAM user name or "") of a correctly signed request; Denied otherwise."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    m = _AUTH.match(headers.get("authorization", ""))
    if not m:
        raise Denied("no SigV4 Authorization header")
    access_key, _, region, service, signed, signature = m.groups()
    if service != "execute-api":
        raise Denied(f"signed for {service}, not execute-api")
    amz_date = headers.get("x-amz-date", "")
    try:
        at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise Denied("no X-Amz-Date") from None
    if abs(now - at) > MAX_SKEW:
        raise Denied(f"signed at {amz_date}, more than 15 minutes off")
    if access_key == DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"]:
        principal, user, secret = ADMIN, "", DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    else:
        found = _iam_user(access_key)
        if found is None:
            raise Denied(f"unknown access key {access_key}")
        principal, user, secret = found
    names = signed.split(";")
    missing = [n for n in names if n != "host" and n not in headers]
    if missing or "host" not in names:
        raise Denied(f"signed headers missing: {missing or ['host']}")
    request = AWSRequest(method=method, url=f"http://{host}{raw_path}", data=body,
                         headers={n: (host if n == "host" else headers[n]) for n in names})
    request.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(access_key, secret), service, region)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    if not hmac.compare_digest(expected, signature):
        raise Denied("signature does not match")
    return principal, user


class FrontDoor:
    def __init__(self, target: str, moto_endpoint: str):
        from .engine import aws_client
        self.target = target.rstrip("/")
        self.iam = aws_client("iam", moto_endpoint)
        self.evaluator = _evaluator()
        self.lock = threading.Lock()

    def authorize(self, method: str, host: str, raw_path: str, headers: dict[str, str],
                  body: bytes) -> str:
        """The caller's ARN when API Gateway would let the request through; Denied otherwise."""
        principal, user = verify_signature(method, host, raw_path, headers, body,
                                           datetime.now(timezone.utc))
        if principal == ADMIN:
            return principal
        path = raw_path.split("?", 1)[0]
        with self.lock:  # one boto3 client, shared by the server's threads
            statements = identity_policies(self.iam, user)
        request = self.evaluator.invoke(principal, API_ID, STAGE, method, path)
        decision = self.evaluator.decide(request, statements)
        if decision != "Allow":
            raise Denied(f"{principal}: {decision} for execute-api:Invoke on {request.resource}")
        return principal

    def forward(self, method: str, raw_path: str, headers: dict[str, str],
                body: bytes) -> tuple[int, bytes, dict[str, str]]:
        keep = {k: v for k, v in headers.items()
                if k in ("content-type", "accept", "user-agent", "content-encoding")}
        req = urllib.request.Request(f"{self.target}{raw_path}", data=body or None,
                                     method=method, headers=keep)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)


def make_front_door(target: str, moto_endpoint: str, port: int = 0) -> ThreadingHTTPServer:
    door = FrontDoor(target, moto_endpoint)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() not in ("content-length", "transfer-encoding", "connection", "date",
                                     "server"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            method = self.command
            try:
                who = door.authorize(method, headers.get("host", ""), self.path, headers, body)
            except Denied as e:
                log(f"front door: 403 {method} {self.path.split('?')[0]}: {e}")
                return self._reply(403, json.dumps(FORBIDDEN).encode(),
                                   {"Content-Type": "application/json"})
            except Exception as e:  # noqa: BLE001 - API Gateway answers 500 then, and so do we
                log(f"front door: 500 {method} {self.path}: {e!r}")
                return self._reply(500, b'{"message":"Internal Server Error"}',
                                   {"Content-Type": "application/json"})
            status, out, out_headers = door.forward(method, self.path, headers, body)
            said = f": {out[:300].decode('utf-8', 'replace')}" if status >= 500 else ""
            log(f"front door: {method} {self.path.split('?')[0]} by {who} -> {status}{said}")
            self._reply(status, out, out_headers)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _handle

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)
