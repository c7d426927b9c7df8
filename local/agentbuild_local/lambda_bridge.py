"""The Lambda bridge: moto's ASL engine -> the injection queue, or `cargo lambda watch`.

moto's no-Docker Lambda backend cannot run a function; `install_lambda_bridge` replaces its
invoke so every Lambda task the engine runs either takes a queued injection (`Injector`, filled
through the injection endpoint) or is forwarded to the real handler over the Runtime API, and
function errors come back with their `errorType` so Retry and Catch behave as on AWS.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from .config import log


# Forwarded invokes may wait for a compile on a cold target dir; the ASL's own TimeoutSeconds
# (60 s per Task) is what the engine enforces, so this only has to be longer than that.
FORWARD_TIMEOUT_SECONDS = 900

# Injection queue: "the next invocation of function X returns ..."
INJECTION_KINDS = ("payload", "error", "serviceError", "patch", "delay")


def outcome_kinds(entry: dict[str, Any]) -> list[str]:
    """An entry's kinds: those besides `delay`, or `delay` alone. `delay` holds the invocation
    first; alone, the real handler answers after it, beside another kind, that kind's outcome
    does (e.g. an error that takes a second to come)."""
    return [k for k in INJECTION_KINDS if k in entry and k != "delay"] or \
        [k for k in ("delay",) if k in entry]


class Injector:
    """Per-function FIFO of injected outcomes, plus a log of every invocation the engine made."""

    LOG_LIMIT = 2000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, list[dict[str, Any]]] = {}
        self._log: list[dict[str, Any]] = []
        self._seq = 0

    @staticmethod
    def validate(entry: Any) -> dict[str, Any]:
        if not isinstance(entry, dict):
            raise ValueError("an injection is a JSON object")
        kinds = outcome_kinds(entry)
        if len(kinds) != 1:
            raise ValueError(f"an injection has exactly one of {list(INJECTION_KINDS)} "
                             "(or delay beside one of the others)")
        allowed = {kinds[0], "delay", "times", "match"}
        if set(entry) - allowed:
            raise ValueError(f"unknown field(s) {sorted(set(entry) - allowed)}")
        times = entry.get("times", 1)
        if not isinstance(times, int) or times < 1:
            raise ValueError("times must be a positive integer")
        if "match" in entry and not isinstance(entry["match"], str):
            raise ValueError("match must be a string")
        if "error" in entry:
            e = entry["error"]
            if not isinstance(e, dict) or not isinstance(e.get("type"), str):
                raise ValueError('error must be {"type": "...", "message": "..."}')
        if "serviceError" in entry:
            e = entry["serviceError"]
            if not isinstance(e, dict) or not isinstance(e.get("code"), str):
                raise ValueError('serviceError must be {"code": "...", "status": 500, "message": "..."}')
        if "delay" in entry and not (isinstance(entry["delay"], (int, float))
                                     and not isinstance(entry["delay"], bool)
                                     and 0 < entry["delay"] <= 60):
            raise ValueError("delay must be seconds (0 < delay <= 60) before the outcome")
        if "patch" in entry and not isinstance(entry["patch"], dict):
            raise ValueError("patch must be a JSON object (deep-merged into the real result)")
        return entry

    def push(self, function: str, entries: list[dict[str, Any]]) -> int:
        checked = [self.validate(e) for e in entries]
        with self._lock:
            q = self._queues.setdefault(function, [])
            for e in checked:
                q.append(dict(e, times=e.get("times", 1)))
            return len(q)

    def take(self, function: str, body: str) -> dict[str, Any] | None:
        """The first queued entry for `function` whose `match` occurs in the request body."""
        with self._lock:
            q = self._queues.get(function, [])
            for i, e in enumerate(q):
                if e.get("match", "") in body:
                    e["times"] -= 1
                    if e["times"] == 0:
                        q.pop(i)
                    return e
        return None

    def pending(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {k: list(v) for k, v in self._queues.items() if v}

    def clear(self, function: str | None = None) -> None:
        with self._lock:
            if function is None:
                self._queues.clear()
                self._log.clear()
            else:
                self._queues.pop(function, None)

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            self._log.append(dict(entry, seq=self._seq))
            del self._log[: -self.LOG_LIMIT]

    def invocations(self, function: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._log if function in (None, e["function"])]


# The bridge itself

def deep_merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = deep_merge(base.get(k), v)
        return out
    return patch


def forward(runtime_url: str, function: str, body: bytes) -> tuple[int, bytes]:
    """POST the payload to the runtime emulator; (status, body). Never raises for HTTP statuses."""
    req = urllib.request.Request(
        f"{runtime_url}/2015-03-31/functions/{function}/invocations",
        data=body, method="POST", headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=FORWARD_TIMEOUT_SECONDS) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def function_error(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def install_lambda_bridge(runtime_url: str, injector: Injector,
                          functions: set[str] | None = None) -> None:
    """Replace moto's no-Docker Lambda backend's invoke for this process. `functions`: the names
    the runtime serves (None: any); another name fails at once instead of waiting for a poller."""
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core.exceptions import JsonRESTError

    def invoke(self: Any, function_name: str, qualifier: Any, body: Any, headers: Any,
               response_headers: dict[str, str]) -> bytes:
        started = time.monotonic()
        raw = body.encode() if isinstance(body, str) else (body or b"{}")
        text = raw.decode("utf-8", "replace")
        # The engine may name the function by ARN; the runtime emulator routes by binary name.
        name = function_name.rsplit(":function:", 1)[-1].split(":")[0]
        entry = injector.take(name, text)
        kind = outcome_kinds(entry)[0] if entry else None
        outcome: dict[str, Any] = {"function": name, "injected": kind}
        try:
            if entry and "delay" in entry:
                # The invocation is held (a slow start, a race staged on purpose), then real or
                # the entry's outcome.
                time.sleep(float(entry["delay"]))
            if kind == "serviceError":
                e = entry["serviceError"]
                err = JsonRESTError(e["code"], e.get("message", "injected Lambda service error"))
                err.code = int(e.get("status", 500))
                outcome.update(status=err.code, errorType=f"Lambda.{e['code']}")
                raise err
            if kind == "error":
                e = entry["error"]
                response_headers["x-amz-function-error"] = "Unhandled"
                outcome.update(status=200, errorType=e["type"])
                return function_error(e["type"], e.get("message", "injected error"))
            if kind == "payload":
                outcome.update(status=200)
                return json.dumps(entry["payload"]).encode()

            try:
                if functions is not None and name not in functions:
                    raise LookupError(f"no handler named {name!r} (running: {sorted(functions)})")
                status, result = forward(runtime_url, name, raw)
            except LookupError as e:
                status, result = 404, function_error("Local.InvokeFailed", str(e))
            except (urllib.error.URLError, OSError) as e:
                status, result = 599, function_error(
                    "Local.RuntimeUnavailable", f"cargo lambda watch at {runtime_url}: {e}")
            if status == 200:
                if kind == "patch":
                    result = json.dumps(deep_merge(json.loads(result), entry["patch"])).encode()
                outcome.update(status=200)
                return result
            # A handler's error: cargo lambda answers 500 {errorType, errorMessage}. Anything else
            # (unknown function, runtime down) is reported as a function error too, with a name
            # no Retry matches, so it is visible instead of retried away.
            try:
                parsed = json.loads(result)
                if not (isinstance(parsed, dict) and isinstance(parsed.get("errorType"), str)):
                    raise ValueError
            except ValueError:
                result = function_error(
                    "Local.InvokeFailed",
                    f"runtime answered HTTP {status}: {result[:500].decode('utf-8', 'replace')}")
                parsed = json.loads(result)
            response_headers["x-amz-function-error"] = "Unhandled"
            outcome.update(status=status, errorType=parsed["errorType"],
                           errorMessage=str(parsed.get("errorMessage", ""))[:500])
            return result
        finally:
            outcome["ms"] = round((time.monotonic() - started) * 1000)
            try:
                outcome["request"] = json.loads(text)
            except ValueError:
                outcome["request"] = text
            injector.record(outcome)
            log(f"invoke {name}: {kind or 'forwarded'} -> {outcome.get('status')}"
                f"{' ' + outcome['errorType'] if 'errorType' in outcome else ''} ({outcome['ms']} ms)")

    LambdaSimpleBackend.invoke = invoke
    from .direct_invoke import install_engine_direct_invoke

    install_engine_direct_invoke()
