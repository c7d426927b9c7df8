"""AgentCore Runtime's control plane, as the deploy step needs it from moto 5.2.5.

moto emulates Create/Get/Update/List AgentRuntime(s) and their tags, with three gaps this module
closes by patching (signatures checked first, like the CodeBuild patches):
  * after UpdateAgentRuntime a runtime stays UPDATING for ever (moto's state model knows only
    CREATING -> READY): an updated runtime now goes UPDATING -> READY the same way;
  * tags live under the ARN a runtime had when it was created, and moto's ARN changes with every
    version (`agent/<uuid>:<version>`): tags now move to the new ARN on update, as AWS keeps a
    runtime's tags (its ARN there is `runtime/<id>`, without a version);
  * DeleteAgentRuntime (retire) removes the runtime but leaves its tags in the tagger: they now go
    with it, as AWS deletes a resource's tags with the resource (moto removes a deleted runtime at
    once; AWS reports it DELETING for a while — agentbuild reads neither);
  * no runtime ever fails: a *script* makes the runtime created or updated by a request that
    contains its `match` report `CREATE_FAILED` / `UPDATE_FAILED` with a `failureReason` on its
    next GetAgentRuntime (local/README.md, "AgentCore scripts");
  * an updated endpoint (UpdateAgentRuntimeEndpoint) stays UPDATING for ever and its
    liveVersion never follows its targetVersion: it now goes UPDATING -> READY at the next
    GetAgentRuntimeEndpoint, and READY serves the target version (liveVersion = targetVersion);
  * moto drops `platformVersion` (AgentCore's runtime platform, V1/V2): the value a create or
    update sent is kept on the runtime and GetAgentRuntime answers it (when one was sent).
The data plane (InvokeAgentRuntime) is dataplane.py's.
"""
from __future__ import annotations

import json
import threading
from typing import Any

from .config import checked_originals, log

RUNTIME_MODEL = "bedrock-agentcore-control::agent_runtime"
FAILURES = ("CREATE_FAILED", "UPDATE_FAILED")
# Two GetAgentRuntime calls before a created or updated runtime is READY: the deploy step's wait
# loop runs (moto's default, "immediate", would be READY at the first look).
TRANSITION = {"progression": "manual", "times": 2}


class AgentCoreScripts:
    """Failure scripts: `{"match": "<text of the Create/UpdateAgentRuntime request>", "status":
    "UPDATE_FAILED" | "CREATE_FAILED", "failureReason": "..."}`. A script binds to the runtime
    the first matching request creates or updates (first script added wins; scripts stay until
    cleared); that runtime then reports the status and reason from its next GetAgentRuntime on,
    until it is updated again."""

    FIELDS = {"match", "status", "failureReason"}

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: list[dict[str, Any]] = []
        self._bound: dict[str, dict[str, Any]] = {}  # runtime id -> script

    @classmethod
    def validate(cls, entry: Any) -> dict[str, Any]:
        if not isinstance(entry, dict):
            raise ValueError("an AgentCore script is a JSON object")
        if set(entry) - cls.FIELDS:
            raise ValueError(f"unknown field(s) {sorted(set(entry) - cls.FIELDS)}; allowed: {sorted(cls.FIELDS)}")
        if not isinstance(entry.get("match"), str) or not entry["match"]:
            raise ValueError("match (text of the Create/UpdateAgentRuntime request, e.g. the runtime name) is required")
        if entry.get("status") not in FAILURES:
            raise ValueError(f"status must be one of {list(FAILURES)}")
        if not isinstance(entry.get("failureReason", ""), str):
            raise ValueError("failureReason must be a string")
        return dict(entry)

    def add(self, entry: Any) -> int:
        checked = self.validate(entry)
        with self._lock:
            self._scripts.append(checked)
            return len(self._scripts)

    def clear(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._bound.clear()

    def bind(self, runtime_id: str, request_text: str) -> dict[str, Any] | None:
        """A Create/UpdateAgentRuntime of `runtime_id`: the first matching script binds (and an
        earlier binding of that runtime ends: an update starts afresh)."""
        with self._lock:
            self._bound.pop(runtime_id, None)
            script = next((s for s in self._scripts if s["match"] in request_text), None)
            if script is not None:
                self._bound[runtime_id] = script
            return script

    def failure(self, runtime_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._bound.get(runtime_id)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"scripts": [dict(s) for s in self._scripts],
                    "runtimes": {i: s["match"] for i, s in self._bound.items()}}


# Two caches: the backend and the responses both have an `update_agent_runtime`.
_BACKEND_ORIGINALS: dict[str, Any] = {}
_RESPONSE_ORIGINALS: dict[str, Any] = {}


def _body_text(response: Any) -> str:
    body = response.body
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")


def install_agentcore_patches(scripts: AgentCoreScripts) -> None:
    """Patch moto's AgentCore control plane (MOTO_VERSION only): see the module's docstring."""
    from moto.bedrockagentcorecontrol.models import BedrockAgentCoreControlBackend
    from moto.bedrockagentcorecontrol.responses import BedrockAgentCoreControlResponse
    from moto.moto_api import state_manager

    checked_originals(_BACKEND_ORIGINALS, {
        (BedrockAgentCoreControlBackend, "update_agent_runtime"):
            "(self, agent_runtime_id: str, agent_runtime_artifact: dict[str, typing.Any], "
            "role_arn: str, network_configuration: dict[str, typing.Any], description: str | None, "
            "authorizer_configuration: dict[str, typing.Any] | None, "
            "request_header_configuration: dict[str, typing.Any] | None, "
            "protocol_configuration: dict[str, typing.Any] | None, "
            "lifecycle_configuration: dict[str, typing.Any] | None, "
            "environment_variables: dict[str, str] | None) -> "
            "moto.bedrockagentcorecontrol.models.AgentRuntime",
        (BedrockAgentCoreControlBackend, "update_agent_runtime_endpoint"):
            "(self, agent_runtime_id: str, endpoint_name: str, agent_runtime_version: str | None, "
            "description: str | None) -> moto.bedrockagentcorecontrol.models.AgentRuntimeEndpoint",
        (BedrockAgentCoreControlBackend, "delete_agent_runtime"):
            "(self, agent_runtime_id: str) -> moto.bedrockagentcorecontrol.models.AgentRuntime",
    }, "local/agentbuild_local/agentcore.py")
    checked_originals(_RESPONSE_ORIGINALS, {
        (BedrockAgentCoreControlResponse, "create_agent_runtime"): "(self) -> moto.core.responses.ActionResult",
        (BedrockAgentCoreControlResponse, "update_agent_runtime"): "(self) -> moto.core.responses.ActionResult",
        (BedrockAgentCoreControlResponse, "get_agent_runtime"): "(self) -> moto.core.responses.ActionResult",
        (BedrockAgentCoreControlResponse, "get_agent_runtime_endpoint"): "(self) -> moto.core.responses.ActionResult",
    }, "local/agentbuild_local/agentcore.py")
    update_backend = _BACKEND_ORIGINALS["update_agent_runtime"]
    delete_backend = _BACKEND_ORIGINALS["delete_agent_runtime"]
    create_response = _RESPONSE_ORIGINALS["create_agent_runtime"]
    update_response = _RESPONSE_ORIGINALS["update_agent_runtime"]
    get_response = _RESPONSE_ORIGINALS["get_agent_runtime"]
    update_endpoint_backend = _BACKEND_ORIGINALS["update_agent_runtime_endpoint"]
    get_endpoint_response = _RESPONSE_ORIGINALS["get_agent_runtime_endpoint"]
    state_manager.set_transition(RUNTIME_MODEL, TRANSITION)

    def patched_update_backend(self: Any, agent_runtime_id: str, *args: Any, **kwargs: Any) -> Any:
        runtime = self._get_runtime(agent_runtime_id)
        old_arn = runtime.agent_runtime_arn
        tags = self.tagger.get_tag_dict_for_resource(old_arn)
        runtime = update_backend(self, agent_runtime_id, *args, **kwargs)
        if ("UPDATING", "READY") not in runtime._transitions:
            runtime._transitions = [*runtime._transitions, ("UPDATING", "READY")]
        runtime._tick = 0
        if tags:
            self.tagger.tag_resource(runtime.agent_runtime_arn,
                                     [{"Key": k, "Value": v} for k, v in tags.items()])
        return runtime

    def patched_delete_backend(self: Any, agent_runtime_id: str) -> Any:
        runtime = delete_backend(self, agent_runtime_id)
        self.tagger.delete_all_tags_for_resource(runtime.agent_runtime_arn)
        scripts.bind(agent_runtime_id, "")  # a deleted runtime keeps no failure script
        return runtime

    def keep_platform_version(self: Any, runtime_id: str) -> None:
        try:
            sent = json.loads(_body_text(self) or "{}").get("platformVersion")
        except ValueError:
            sent = None
        if sent is not None:
            self.backend._get_runtime(runtime_id).platform_version = sent

    def patched_create_response(self: Any) -> Any:
        result = create_response(self)
        keep_platform_version(self, result.result["agentRuntimeId"])
        script = scripts.bind(result.result["agentRuntimeId"], _body_text(self))
        if script is not None:
            log(f"agentcore: {result.result['agentRuntimeId']} scripted by {json.dumps(script)}")
        return result

    def patched_update_response(self: Any) -> Any:
        result = update_response(self)
        keep_platform_version(self, result.result["agentRuntimeId"])
        script = scripts.bind(result.result["agentRuntimeId"], _body_text(self))
        if script is not None:
            log(f"agentcore: {result.result['agentRuntimeId']} scripted by {json.dumps(script)}")
        return result

    def patched_get_response(self: Any) -> Any:
        runtime_id = self._get_param("agentRuntimeId")
        script = scripts.failure(runtime_id)
        if script is not None:
            runtime = self.backend._get_runtime(runtime_id)
            runtime.status = script["status"]  # no transition leaves a *_FAILED status
        result = get_response(self)
        kept = getattr(self.backend._get_runtime(runtime_id), "platform_version", None)
        if kept is not None:
            result.result["platformVersion"] = kept
        if script is not None:
            result.result["failureReason"] = script.get("failureReason") or f"{script['status']} (scripted)"
        return result

    def patched_update_endpoint_backend(self: Any, *args: Any, **kwargs: Any) -> Any:
        endpoint = update_endpoint_backend(self, *args, **kwargs)
        if ("UPDATING", "READY") not in endpoint._transitions:
            endpoint._transitions = [*endpoint._transitions, ("UPDATING", "READY")]
        endpoint._tick = 0
        return endpoint

    def patched_get_endpoint_response(self: Any) -> Any:
        result = get_endpoint_response(self)
        if result.result.get("status") == "READY":
            endpoint = self.backend.get_agent_runtime_endpoint(
                self._get_param("agentRuntimeId"), self._get_param("endpointName"))
            endpoint.live_version = endpoint.target_version
            result.result["liveVersion"] = endpoint.target_version
        return result

    BedrockAgentCoreControlBackend.update_agent_runtime_endpoint = patched_update_endpoint_backend
    BedrockAgentCoreControlResponse.get_agent_runtime_endpoint = patched_get_endpoint_response
    BedrockAgentCoreControlBackend.update_agent_runtime = patched_update_backend
    BedrockAgentCoreControlBackend.delete_agent_runtime = patched_delete_backend
    BedrockAgentCoreControlResponse.create_agent_runtime = patched_create_response
    BedrockAgentCoreControlResponse.update_agent_runtime = patched_update_response
    BedrockAgentCoreControlResponse.get_agent_runtime = patched_get_response
