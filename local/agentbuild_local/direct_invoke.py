"""Lambda invokes from inside the stack's own process, without the HTTP round trip.

The ASL engine (its `arn:aws:states:::lambda:invoke` tasks, with or without
`.waitForTaskToken`), the CodeBuild event delivery and the closer's relay all run in the same
process as moto's server, and each invoke used to go out through a boto3 client to that server
and back in: signing, serializing, a thread and a connection per request, Flask's dispatch,
moto's response serializer and CRC — all to reach `LambdaSimpleBackend.invoke`, which the
bridge (lambda_bridge.py) has replaced. `invoke` calls that backend method directly and answers
what moto's `LambdaResponse.invoke` answers for a RequestResponse invoke (its 6 MB payload
limit, the function-error header); a service error (an injected `serviceError`) is raised as the
`ClientError` botocore would have raised from moto's HTTP answer, so the engine names it
`Lambda.<Code>` as before. Everything the bridge does (injections, the invocation log, the
forward to the handler) is unchanged. local/test_stack.py checks both paths answer alike.
"""
from __future__ import annotations

import io
import json
import sys
import uuid
from typing import Any

from .config import ACCOUNT, REGION, checked_originals

# moto's LambdaResponse.invoke: a RequestResponse answer over this size is replaced by this error.
MAX_PAYLOAD = 6000000
TOO_LARGE = {"errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
             "errorType": "Function.ResponseSizeTooLarge"}

_ORIGINALS: dict[str, Any] = {}


def invoke(function_name: str, payload: bytes) -> tuple[bytes, str | None]:
    """A RequestResponse invoke of `function_name` (name or ARN) through moto's Lambda backend:
    (the response payload, the function error or None). Raises botocore's ClientError for a
    service error, as a client of moto's server would see it."""
    from moto.awslambda_simple.models import lambda_simple_backends
    from moto.core.exceptions import JsonRESTError

    headers: dict[str, str] = {}
    try:
        body = lambda_simple_backends[ACCOUNT][REGION].invoke(function_name, None, payload, {}, headers)
    except JsonRESTError as e:
        raise service_error(e.error_type, e.message, e.code) from None
    except Exception as e:  # noqa: BLE001 - over HTTP, moto's server answered 500 for it
        # e.g. the runtime dropping a connection mid-answer: a retryable Lambda.ServiceException,
        # as Lambda's own 500 is, not an uncatchable States.Runtime.
        raise service_error("ServiceException", f"local Lambda bridge: {e!r}", 500) from e
    if body is None:  # moto answers 404 "{}"; the bridge always answers
        raise service_error("ResourceNotFoundException", function_name, 404)
    body = body.encode() if isinstance(body, str) else body
    if sys.getsizeof(body) > MAX_PAYLOAD:
        return json.dumps(TOO_LARGE).encode(), "Unhandled"
    return body, headers.get("x-amz-function-error")


def service_error(code: str, message: str, status: int) -> Exception:
    """The botocore ClientError a client of moto's server gets for this HTTP error answer."""
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())}},
                       "Invoke")


def install_engine_direct_invoke() -> None:
    """The engine's lambda:invoke integration calls `invoke` (same process, no HTTP)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    checked_originals(_ORIGINALS, {
        (lambda_eval_utils, "_invoke_lambda_function"): "(parameters: dict, region: str, state_credentials: "
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials.StateCredentials)",
    }, "local/agentbuild_local/direct_invoke.py")
    over_http = _ORIGINALS["_invoke_lambda_function"]

    def invoke_directly(parameters: dict, region: str, state_credentials: Any) -> dict[str, Any]:
        # Our definitions pass FunctionName and Payload only; anything else goes the long way.
        if set(parameters) - {"FunctionName", "Payload"} or region != REGION:
            return over_http(parameters, region, state_credentials)
        payload = parameters.get("Payload")
        body, error = invoke(parameters["FunctionName"], payload if payload is not None else b"{}")
        response: dict[str, Any] = {"StatusCode": 200,
                                    "Payload": lambda_eval_utils._from_payload(io.BytesIO(body))}
        if error:
            response["FunctionError"] = error
        return response

    lambda_eval_utils._invoke_lambda_function = invoke_directly
