"""A small, offline IAM policy evaluator: enough of AWS's evaluation logic to say what the
SAM-transformed template's bucket policy and role policies do to a given S3 request.

What it models (from the IAM policy evaluation logic and the S3 authorization docs):
  * one account: a request is allowed when some identity or resource policy statement allows
    it and no statement denies it (an explicit Deny wins; nothing matching is an implicit deny);
  * Action / NotAction and Resource with `*` and `?` wildcards (actions case-insensitive);
  * Principal `"*"` or `{"AWS": ...}` against the caller's principal ARN;
  * conditions: Bool, Null, String{Equals,NotEquals,Like,NotLike}, Arn{Equals,NotEquals,Like,
    NotLike}, with `IfExists`, and the ForAllValues:/ForAnyValue: set operators. A key absent
    from the request makes a positive operator false and a negated one true, as in IAM;
  * CloudFormation intrinsics in the template (Ref, Fn::GetAtt, Fn::Sub, Fn::If, Fn::Join,
    Fn::Split) resolved against fixed names (ACCOUNT, REGION, STACK, the bucket's name).

What it does not: SCPs, permission boundaries, session policies, cross-account, KMS.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
STACK = "agentbuild"
BUCKET = "agentbuild-bucket"


def role_arn(logical_id: str) -> str:
    return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{STACK}-{logical_id}"


def physical(logical_id: str, attribute: str | None = None) -> str:
    """What Ref / GetAtt of a resource resolves to here (a name derived from its logical id)."""
    if logical_id == "Bucket":
        return f"arn:{PARTITION}:s3:::{BUCKET}" if attribute == "Arn" else BUCKET
    if attribute == "Arn":
        return role_arn(logical_id)
    return f"{STACK}-{logical_id}"


PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": PARTITION,
          "AWS::StackName": STACK, "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}


def resolve(v: Any, params: dict[str, Any], conditions: frozenset[str] = frozenset()) -> Any:
    """The template value `v` with its intrinsics resolved (a condition in Fn::If is true when
    `conditions` names it, else false)."""
    if isinstance(v, list):
        return [r for r in (resolve(x, params, conditions) for x in v) if r is not None]
    if not isinstance(v, dict):
        return v
    if len(v) == 1:
        (k, a), = v.items()
        if k == "Ref":
            if a in PSEUDO:
                return PSEUDO[a]
            return params[a] if a in params else physical(a)
        if k == "Fn::GetAtt":
            name, attr = a if isinstance(a, list) else a.split(".", 1)
            return physical(name, attr)
        if k == "Fn::Sub":
            text, extra = (a, {}) if isinstance(a, str) else (a[0], resolve(a[1], params, conditions))

            def sub(m: re.Match) -> str:
                name = m.group(1)
                if name in extra:
                    return str(extra[name])
                if name in PSEUDO:
                    return str(PSEUDO[name])
                if "." in name:
                    return physical(*name.split(".", 1))
                return str(params.get(name, physical(name)))
            return re.sub(r"\$\{([^}!]+)\}", sub, text)
        if k == "Fn::If":
            return resolve(a[1] if a[0] in conditions else a[2], params, conditions)
        if k == "Fn::Join":
            return a[0].join(str(x) for x in resolve(a[1], params, conditions))
        if k == "Fn::Split":
            return str(resolve(a[1], params, conditions)).split(a[0])
    return {k: resolve(x, params, conditions) for k, x in v.items()}


def as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def matches(pattern: str, value: str, case: bool = True) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


@dataclass
class Request:
    """One authorization check: what S3 asks IAM for one action of one API call."""
    action: str
    resource: str
    principal: str
    context: dict[str, Any] = field(default_factory=dict)


def _operator(op: str) -> tuple[str, bool, str | None]:
    """`ForAllValues:StringEqualsIfExists` -> ("StringEquals", if_exists, set operator)."""
    qualifier = None
    if ":" in op:
        qualifier, op = op.split(":", 1)
    if_exists = op.endswith("IfExists")
    return (op[: -len("IfExists")] if if_exists else op), if_exists, qualifier


def _compare(op: str, have: str, want: str) -> bool:
    base = op.replace("Not", "")
    if base == "StringEquals":
        return have == want
    if base == "StringEqualsIgnoreCase":
        return have.lower() == want.lower()
    if base in ("StringLike", "ArnLike", "ArnEquals"):
        return matches(want, have)
    if base == "Bool":
        return have.lower() == want.lower()
    raise NotImplementedError(f"condition operator {op}")


def condition_holds(op_name: str, key: str, wanted: Any, context: dict[str, Any]) -> bool:
    op, if_exists, qualifier = _operator(op_name)
    present = key in context
    if op == "Null":
        return (not present) == (str(wanted).lower() == "true")
    if not present:
        if if_exists:
            return True
        # Absent key: positive operators fail, negated ones hold (ForAllValues: vacuous truth).
        return qualifier == "ForAllValues" or "Not" in op
    values = [str(x) for x in as_list(context[key])]
    wants = [str(w) for w in as_list(wanted)]
    negated = "Not" in op

    def one(v: str) -> bool:
        hit = any(_compare(op, v, w) for w in wants)
        return not hit if negated else hit
    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    return any(one(v) for v in values)


def statement_applies(s: dict[str, Any], r: Request) -> bool:
    if "Action" in s and not any(matches(a, r.action, case=False) for a in as_list(s["Action"])):
        return False
    if "NotAction" in s and any(matches(a, r.action, case=False) for a in as_list(s["NotAction"])):
        return False
    if "Resource" in s and not any(matches(x, r.resource) for x in as_list(s["Resource"])):
        return False
    if "NotResource" in s and any(matches(x, r.resource) for x in as_list(s["NotResource"])):
        return False
    if "Principal" in s:
        p = s["Principal"]
        arns = ["*"] if p == "*" else as_list(p.get("AWS", []))
        if not any(a == "*" or matches(a, r.principal) for a in arns):
            return False
    # Global keys every request carries.
    context = {"aws:PrincipalArn": r.principal, "aws:PrincipalAccount": ACCOUNT, **r.context}
    for op, keys in (s.get("Condition") or {}).items():
        for key, wanted in keys.items():
            if not condition_holds(op, key, wanted, context):
                return False
    return True


def decide(r: Request, *policies: list[dict[str, Any]]) -> str:
    """"Allow", "ExplicitDeny" or "ImplicitDeny" for `r` under the statements of `policies`."""
    applying = [s for statements in policies for s in statements if statement_applies(s, r)]
    if any(s["Effect"] == "Deny" for s in applying):
        return "ExplicitDeny"
    return "Allow" if any(s["Effect"] == "Allow" for s in applying) else "ImplicitDeny"


# ---------------------------------------------------------------------------------------------
# S3 API calls -> the authorization requests S3 makes for them
# ---------------------------------------------------------------------------------------------

def s3_object(key: str) -> str:
    return f"arn:{PARTITION}:s3:::{BUCKET}/{key}"


def headers_context(headers: dict[str, str]) -> dict[str, Any]:
    """The condition keys S3 derives from an upload's headers."""
    ctx: dict[str, Any] = {"aws:SecureTransport": "true"}
    tagging = headers.get("x-amz-tagging")
    if tagging:
        pairs = [p.split("=", 1) for p in tagging.split("&") if p]
        for k, v in pairs:
            ctx[f"s3:RequestObjectTag/{k.replace('%3A', ':')}"] = v
        ctx["s3:RequestObjectTagKeys"] = [k.replace("%3A", ":") for k, _ in pairs]
    if "x-amz-object-lock-legal-hold" in headers:
        ctx["s3:object-lock-legal-hold"] = headers["x-amz-object-lock-legal-hold"]
    if "x-amz-object-lock-mode" in headers:
        ctx["s3:object-lock-mode"] = headers["x-amz-object-lock-mode"]
    return ctx


def s3_call(api: str, principal: str, key: str, headers: dict[str, str] | None = None,
            source_key: str | None = None) -> list[Request]:
    """The authorization requests of one S3 API call (S3's "actions for operations" table):
    UploadPart / CompleteMultipartUpload are s3:PutObject without the object's headers (they
    carry none); CopyObject is s3:PutObject on the target and s3:GetObject on the source; a
    legal-hold header also needs s3:PutObjectLegalHold, a tagging header s3:PutObjectTagging."""
    headers = headers or {}
    ctx = headers_context(headers)
    bare = {"aws:SecureTransport": "true"}
    put = lambda c: Request("s3:PutObject", s3_object(key), principal, c)  # noqa: E731
    extra = []
    if "x-amz-object-lock-legal-hold" in headers:
        extra.append(Request("s3:PutObjectLegalHold", s3_object(key), principal, ctx))
    if "x-amz-tagging" in headers:
        extra.append(Request("s3:PutObjectTagging", s3_object(key), principal, ctx))
    if api in ("PutObject", "CreateMultipartUpload"):
        return [put(ctx)] + extra
    if api in ("UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload"):
        return [put(bare)]
    if api == "CopyObject":
        assert source_key, "CopyObject needs a source"
        return [put(ctx), Request("s3:GetObject", s3_object(source_key), principal, bare)] + extra
    if api == "PutObjectLegalHold":
        return [Request("s3:PutObjectLegalHold", s3_object(key), principal, bare)]
    if api == "PutObjectTagging":
        return [Request("s3:PutObjectTagging", s3_object(key), principal, ctx)]
    raise NotImplementedError(api)


def allowed(requests: list[Request], *policies: list[dict[str, Any]]) -> bool:
    """An API call succeeds when every one of its authorization requests is allowed."""
    return all(decide(r, *policies) == "Allow" for r in requests)


# ---------------------------------------------------------------------------------------------
# API Gateway (HTTP API, AWS_IAM): the authorization request of one call
# ---------------------------------------------------------------------------------------------

def execute_api_arn(api_id: str, stage: str, method: str, path: str,
                    account: str = ACCOUNT, region: str = REGION) -> str:
    """The resource API Gateway authorizes `execute-api:Invoke` on for one request:
    arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/<METHOD>/<path without its '/'>."""
    return (f"arn:{PARTITION}:execute-api:{region}:{account}:{api_id}/{stage}/"
            f"{method.upper()}/{path.lstrip('/')}")


def invoke(principal: str, api_id: str, stage: str, method: str, path: str) -> Request:
    return Request("execute-api:Invoke", execute_api_arn(api_id, stage, method, path), principal,
                   {"aws:SecureTransport": "true"})
