#!/usr/bin/env python3
"""agentbuild's local stack: AWS emulated on loopback, the real ASL definition in a real engine,
the real Rust handlers answering its Lambda tasks.

    local/stack.py up      # build the handlers, start everything in the background, wait until healthy
    local/stack.py down    # stop every process `up` started (by process group), remove .local/*.pid
    local/stack.py status  # exit 0 when the stack answers
    local/stack.py env     # print .local/env

Pieces (one `serve` process, started by `up`, plus one `cargo lambda watch` process group):
  * moto's ThreadedMotoServer (S3, ECR, CodeBuild, Step Functions with LocalStack's ASL engine);
  * a bridge replacing moto's no-Docker Lambda backend: every Lambda invoke by the engine goes to
    `cargo lambda watch` (the workspace's real binaries), unless a test queued an injection;
  * the injection endpoint (AGENTBUILD_INJECT_URL), documented in local/README.md: queued Lambda
    outcomes, and scripts for moto's CodeBuild (builds that keep running until stopped, fail in
    a phase, or export variables);
  * the resources: bucket, ECR repository, CodeBuild project, the state machine from
    statemachine/build.asl.json with only its ${...} placeholders substituted.

Runs in the project's .venv (scripts/tools.sh). The bridge patches one moto method and the
CodeBuild scripts three, so the moto version is pinned and asserted (and their signatures).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Where env, pid and log files go; another folder runs a second, independent stack (tests do).
STATE_DIR = Path(os.environ.get("AGENTBUILD_LOCAL_DIR") or ROOT / ".local").resolve()
VENV_BIN = ROOT / ".venv" / "bin"

MOTO_VERSION = "5.2.5"  # the bridge below replaces LambdaSimpleBackend.invoke of exactly this version
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
BUCKET = "agentbuild-local"
REPOSITORY = "agentbuild"
CODEBUILD_PROJECT = "agentbuild-local"
STATE_MACHINE = "agentbuild-build"
# The workspace's Lambda binaries (the CLI is a binary too, but no Lambda).
LAMBDA_FUNCTIONS = ("validate-request", "start-build", "check-build", "record-result", "api", "rebuild")
DEFINITION = ROOT / "statemachine" / "build.asl.json"
# moto checks only the shape of these ARNs; nothing assumes them.
CODEBUILD_ROLE = f"arn:aws:iam::{ACCOUNT}:role/agentbuild-codebuild"
STATES_ROLE = f"arn:aws:iam::{ACCOUNT}:role/agentbuild-states"

# Handler configuration (docs/contracts.md). Short polls: locally a "build" is over at once.
HANDLER_SETTINGS = {
    "AGENTBUILD_BUCKET": BUCKET,
    "AGENTBUILD_CODEBUILD_PROJECT": CODEBUILD_PROJECT,
    "AGENTBUILD_BUILD_TIMEOUT_MINUTES": "60",
    "AGENTBUILD_QUEUED_TIMEOUT_MINUTES": "30",
    "AGENTBUILD_POLL_MIN_SECONDS": "1",
    "AGENTBUILD_POLL_MAX_SECONDS": "2",
    # Small, so that a local rebuild (and tests/e2e) shows the bound with a few agents.
    "AGENTBUILD_REBUILD_MAX_CONCURRENCY": "2",
    # AGENTBUILD_REPOSITORY_URI and AGENTBUILD_STATE_MACHINE_ARN come from the created resources.
}
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}

# Forwarded invokes may wait for a compile on a cold target dir; the ASL's own TimeoutSeconds
# (60 s per Task) is what the engine enforces, so this only has to be longer than that.
FORWARD_TIMEOUT_SECONDS = 900
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


class StackError(Exception):
    """A problem the user can fix; printed without a traceback."""


def log(msg: str) -> None:
    print(f"[stack {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------
# Definition substitution
# ------------------------------------------------------------------------------------------

def function_for_placeholder(name: str, functions: set[str]) -> str | None:
    """`ValidateRequestFunctionArn` -> `validate-request` when that binary exists."""
    m = re.fullmatch(r"([A-Z][A-Za-z0-9]*)FunctionArn", name)
    if not m:
        return None
    kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", m.group(1)).lower()
    return kebab if kebab in functions else None


def substitute(definition: str, functions: set[str], extra: dict[str, str] | None = None) -> str:
    """Replace every `${Name}` in an ASL definition; fail naming all the unknown ones.

    `${XxxFunctionArn}` becomes the bare function name `xxx` (the local runtime routes by binary
    name), provided such a binary exists; `extra` maps any other placeholder. Nothing else in the
    definition is touched.
    """
    extra = extra or {}
    values: dict[str, str] = {}
    unknown: list[str] = []
    for name in dict.fromkeys(PLACEHOLDER.findall(definition)):
        value = extra.get(name) or function_for_placeholder(name, functions)
        if value is None:
            unknown.append(name)
        else:
            values[name] = value
    if unknown:
        raise StackError(
            "unknown placeholder(s) in the state machine definition: "
            + ", ".join("${%s}" % u for u in unknown)
            + f" (known: ${{<Name>FunctionArn}} for the binaries {sorted(functions)}"
            + (f", and {sorted(extra)}" if extra else "")
            + "; add others to local/stack.py)"
        )
    out = PLACEHOLDER.sub(lambda m: values[m.group(1)], definition)
    json.loads(out)  # the substituted text must still be JSON
    return out


def cargo_metadata(manifest: Path) -> dict[str, Any]:
    meta = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1", "--manifest-path", str(manifest)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(meta.stdout)


def workspace_binaries(manifest: Path) -> set[str]:
    return {
        t["name"]
        for p in cargo_metadata(manifest)["packages"]
        for t in p["targets"]
        if "bin" in t["kind"]
    }


# ------------------------------------------------------------------------------------------
# Injection queue: "the next invocation of function X returns ..."
# ------------------------------------------------------------------------------------------

INJECTION_KINDS = ("payload", "error", "serviceError", "patch")


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
        kinds = [k for k in INJECTION_KINDS if k in entry]
        if len(kinds) != 1:
            raise ValueError(f"an injection has exactly one of {list(INJECTION_KINDS)}")
        allowed = {kinds[0], "times", "match"}
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


# ------------------------------------------------------------------------------------------
# CodeBuild scripting: builds that stay running, fail in a phase, or export variables
# ------------------------------------------------------------------------------------------

# CodeBuild's phases, in order; a scripted build runs in BUILD (where `docker buildx` runs).
CODEBUILD_PHASES = ("SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD",
                    "BUILD", "POST_BUILD", "UPLOAD_ARTIFACTS", "FINALIZING", "COMPLETED")
CODEBUILD_FINAL = ("SUCCEEDED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT")
# The phase context CodeBuild gives a phase that ended in each status (code, message).
PHASE_CONTEXTS = {
    "FAILED": ("COMMAND_EXECUTION_ERROR",
               "Error while executing command: docker buildx build. Reason: exit status 1 (scripted)"),
    "FAULT": ("CLIENT_ERROR", "CodeBuild service fault (scripted)"),
    "TIMED_OUT": ("BUILD_TIMED_OUT", "Build has timed out (scripted)"),
    "STOPPED": ("BUILD_STOPPED", "Build was stopped"),
}


def naive_utcnow() -> datetime:
    """UTC without tzinfo, as moto's CodeBuild timestamps are."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def parse_timestamp(text: str) -> datetime:
    """moto's CodeBuild timestamp text (naive UTC, `...Z`) -> naive UTC datetime."""
    from moto.core.parse import default_timestamp_parser

    return default_timestamp_parser(text).replace(tzinfo=None)


class CodeBuildScripts:
    """What moto's CodeBuild reports for builds whose StartBuild request matches a script.

    moto turns every build SUCCEEDED on the first BatchGetBuilds and has no failures, no
    exported variables and no build that keeps running. A script binds, at StartBuild, to the
    build whose request JSON contains its `match` (first script added wins; scripts stay until
    cleared); that build then reports, on BatchGetBuilds:
      * `hold: true` — IN_PROGRESS in phase BUILD until StopBuild (then STOPPED, for good) or a
        release (then the script's `status`);
      * otherwise IN_PROGRESS for its first `polls` BatchGetBuilds (default 0), then `status`
        (default SUCCEEDED); a failure status ends phase `failedPhase` (default BUILD) with
        that status and CodeBuild's context for it; `exported` becomes the build's exported
        environment variables (as the buildspec's IMAGE_DIGEST / IMAGE_URI).
    Builds no script matched behave as moto's, except that a build stopped while IN_PROGRESS
    stays STOPPED (moto would report it SUCCEEDED on the next BatchGetBuilds).
    """

    FIELDS = {"match", "hold", "polls", "status", "failedPhase", "exported"}

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: list[dict[str, Any]] = []
        # build id -> {"script", "request" (its JSON text), "polls" (BatchGetBuilds seen),
        #              "released", "final": None | (status, phase it ended in, when)}
        self._builds: dict[str, dict[str, Any]] = {}
        self._frozen: set[str] = set()  # unscripted builds stopped while IN_PROGRESS

    @classmethod
    def validate(cls, entry: Any) -> dict[str, Any]:
        if not isinstance(entry, dict):
            raise ValueError("a CodeBuild script is a JSON object")
        if set(entry) - cls.FIELDS:
            raise ValueError(f"unknown field(s) {sorted(set(entry) - cls.FIELDS)}; "
                             f"allowed: {sorted(cls.FIELDS)}")
        if not isinstance(entry.get("match"), str):
            raise ValueError("match (text of the StartBuild request, e.g. the execution name) is required")
        if not isinstance(entry.get("hold", False), bool):
            raise ValueError("hold must be true or false")
        polls = entry.get("polls", 0)
        if not isinstance(polls, int) or isinstance(polls, bool) or polls < 0:
            raise ValueError("polls must be a non-negative integer")
        if entry.get("status", "SUCCEEDED") not in CODEBUILD_FINAL:
            raise ValueError(f"status must be one of {list(CODEBUILD_FINAL)}")
        if entry.get("failedPhase", "BUILD") not in CODEBUILD_PHASES[2:-1]:
            raise ValueError(f"failedPhase must be one of {list(CODEBUILD_PHASES[2:-1])}")
        exported = entry.get("exported", {})
        if not (isinstance(exported, dict) and all(isinstance(v, str) for v in exported.values())):
            raise ValueError('exported must be {"NAME": "value", ...}')
        return dict(entry)

    def add(self, entry: Any) -> int:
        checked = self.validate(entry)
        with self._lock:
            self._scripts.append(checked)
            return len(self._scripts)

    def clear(self) -> list[str]:
        """Drop every script; release the builds still held (so no execution polls forever)."""
        with self._lock:
            self._scripts.clear()
        return self.release("")

    def bind(self, build_id: str, request_text: str) -> dict[str, Any] | None:
        with self._lock:
            script = next((s for s in self._scripts if s["match"] in request_text), None)
            if script is not None:
                self._builds[build_id] = {"script": script, "request": request_text, "polls": 0,
                                          "released": False, "final": None}
            return script

    def release(self, match: str) -> list[str]:
        """Held builds whose StartBuild request (or id) contains `match` ("" = every one) end
        with their script's status at their next BatchGetBuilds; returns their ids."""
        with self._lock:
            out = []
            for build_id, b in self._builds.items():
                if (b["script"].get("hold") and not b["released"] and b["final"] is None
                        and (match in b["request"] or match in build_id)):
                    b["released"] = True
                    out.append(build_id)
            return out

    def knows(self, build_id: str) -> bool:
        with self._lock:
            return build_id in self._builds or build_id in self._frozen

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "scripts": [dict(s) for s in self._scripts],
                "builds": [{"id": i, "match": b["script"]["match"], "polls": b["polls"],
                            "state": b["final"][0] if b["final"] else
                            ("RELEASED" if b["released"] else "IN_PROGRESS")}
                           for i, b in self._builds.items()],
            }

    # -- called from moto's CodeBuild backend (patched below), with moto's build dict ----------

    def report(self, build: dict[str, Any]) -> None:
        """BatchGetBuilds of a known build: rewrite moto's dict to what the script says now."""
        with self._lock:
            if build["id"] in self._frozen:
                return
            b = self._builds[build["id"]]
            script = b["script"]
            if b["final"] is None:
                b["polls"] += 1
                running = (not b["released"]) if script.get("hold") else b["polls"] <= script.get("polls", 0)
                if not running:
                    status = script.get("status", "SUCCEEDED")
                    b["final"] = (status, script.get("failedPhase", "BUILD"), naive_utcnow())
            render_build(build, parse_timestamp(build["startTime"]), b["final"],
                         script.get("exported", {}))

    def stop(self, build: dict[str, Any]) -> bool:
        """StopBuild: a scripted build still running stops for good (True); an unscripted one
        still IN_PROGRESS is frozen once moto has marked it STOPPED (False: let moto stop it)."""
        with self._lock:
            b = self._builds.get(build["id"])
            if b is None:
                if build.get("buildStatus") == "IN_PROGRESS":
                    self._frozen.add(build["id"])
                return False
            if b["final"] is None:
                b["final"] = ("STOPPED", "BUILD", naive_utcnow())
            render_build(build, parse_timestamp(build["startTime"]), b["final"],
                         b["script"].get("exported", {}))
        return True


def render_build(build: dict[str, Any], started: datetime,
                 final: tuple[str, str, datetime] | None, exported: dict[str, str]) -> None:
    """Rewrite a moto build dict: IN_PROGRESS in BUILD (final None), or ended with
    (status, the phase a failure ended in, when)."""
    from moto.core.utils import iso_8601_datetime_with_milliseconds as iso

    t0 = iso(started)

    def done(name: str, status: str = "SUCCEEDED", start: str = t0, end: str = t0,
             seconds: int = 0) -> dict[str, Any]:
        return {"phaseType": name, "phaseStatus": status, "startTime": start, "endTime": end,
                "durationInSeconds": seconds}

    if final is None:
        build["phases"] = [done(p) for p in CODEBUILD_PHASES[:6]] + [
            {"phaseType": "BUILD", "startTime": t0}]
        build.update(currentPhase="BUILD", buildStatus="IN_PROGRESS", buildComplete=False)
        build.pop("endTime", None)
        build["exportedEnvironmentVariables"] = []
        return
    status, failed, finished = final
    end, seconds = iso(finished), max(0, int((finished - started).total_seconds()))
    # The build's time goes to one phase: the one that failed (up to BUILD), else BUILD; the
    # phases before it take no time at the start, those after it none at the end.
    order = CODEBUILD_PHASES.index
    failing = status != "SUCCEEDED"
    timed = failed if failing and order(failed) <= order("BUILD") else "BUILD"
    phases = []
    for name in CODEBUILD_PHASES[:-1]:
        if order(name) < order(timed):
            phase = done(name)
        elif name == timed:
            phase = done(name, start=t0, end=end, seconds=seconds)
        else:
            phase = done(name, start=end, end=end)
        if failing and name == failed:
            code, message = PHASE_CONTEXTS[status]
            phases.append(dict(phase, phaseStatus=status,
                               contexts=[{"statusCode": code, "message": message}]))
            if name != "FINALIZING":
                phases.append(done("FINALIZING", start=end, end=end))
            break
        phases.append(phase)
    phases.append({"phaseType": "COMPLETED", "startTime": end})
    build.update(phases=phases, currentPhase="COMPLETED", buildStatus=status, buildComplete=True,
                 endTime=end)
    build["exportedEnvironmentVariables"] = (
        [{"name": k, "value": v} for k, v in exported.items()] if status == "SUCCEEDED" else [])


_CODEBUILD_ORIGINALS: dict[str, Any] = {}


def install_codebuild_scripts(scripts: CodeBuildScripts) -> None:
    """Patch moto's CodeBuild (MOTO_VERSION only): StartBuild keeps the request's source and
    environment overrides on the build (moto drops them) and binds scripts; BatchGetBuilds and
    StopBuild report scripted builds as their script says. Other builds are moto's own."""
    import inspect

    from moto.codebuild.models import CodeBuildBackend
    from moto.codebuild.responses import CodeBuildResponse

    if not _CODEBUILD_ORIGINALS:
        expected = {
            (CodeBuildResponse, "start_build"): "(self) -> moto.core.responses.ActionResult",
            (CodeBuildBackend, "batch_get_builds"): "(self, ids: list[str]) -> list[dict[str, typing.Any]]",
            (CodeBuildBackend, "stop_build"): "(self, build_id: str) -> dict[str, typing.Any] | None",
        }
        for (cls, name), sig in expected.items():
            actual = str(inspect.signature(getattr(cls, name)))
            if actual != sig:
                raise StackError(f"moto's {cls.__name__}.{name}{actual} is not the {sig} "
                                 f"local/stack.py patches; re-check the CodeBuild scripts")
            _CODEBUILD_ORIGINALS[name] = getattr(cls, name)
    start_build = _CODEBUILD_ORIGINALS["start_build"]
    batch_get_builds = _CODEBUILD_ORIGINALS["batch_get_builds"]
    stop_build = _CODEBUILD_ORIGINALS["stop_build"]

    def patched_start_build(self: Any) -> Any:
        result = start_build(self)
        build = result.result["build"]
        text = self.body.decode("utf-8", "replace") if isinstance(self.body, bytes) else (self.body or "")
        try:
            request = json.loads(text or "{}")
        except ValueError:
            request = {}
        if request.get("sourceTypeOverride") or request.get("sourceLocationOverride"):
            build["source"] = {"type": request.get("sourceTypeOverride", "S3"),
                               "location": request.get("sourceLocationOverride", "")}
        if request.get("sourceVersion"):
            # The S3 object version CodeBuild would fetch: tests check it is the validated one.
            build["sourceVersion"] = request["sourceVersion"]
        if request.get("environmentVariablesOverride"):
            build["environment"]["environmentVariables"] = [
                {"name": v.get("name"), "value": v.get("value"), "type": v.get("type", "PLAINTEXT")}
                for v in request["environmentVariablesOverride"]]
        for key, field in (("timeoutInMinutesOverride", "timeoutInMinutes"),
                           ("queuedTimeoutInMinutesOverride", "queuedTimeoutInMinutes")):
            if request.get(key):
                build[field] = request[key]
        script = scripts.bind(build["id"], text)
        if script is not None:
            render_build(build, parse_timestamp(build["startTime"]), None, {})
            log(f"codebuild: {build['id']} scripted by {json.dumps(script)}")
        return result

    def patched_batch_get_builds(self: Any, ids: list[str]) -> list[dict[str, Any]]:
        plain = [i for i in ids if not scripts.knows(i)]
        out = batch_get_builds(self, plain) if plain else []
        for history in self.build_metadata_history.values():
            for build in history:
                if build["id"] in ids and build["id"] not in plain:
                    scripts.report(build)
                    out.append(build)
        return out

    def patched_stop_build(self: Any, build_id: str) -> dict[str, Any] | None:
        for history in self.build_metadata_history.values():
            for build in history:
                if build["id"] == build_id and scripts.stop(build):
                    log(f"codebuild: {build_id} stopped")
                    return build
        return stop_build(self, build_id)

    CodeBuildResponse.start_build = patched_start_build
    CodeBuildBackend.batch_get_builds = patched_batch_get_builds
    CodeBuildBackend.stop_build = patched_stop_build


# ------------------------------------------------------------------------------------------
# The injection endpoint (AGENTBUILD_INJECT_URL): the Lambda queues and the CodeBuild scripts
# ------------------------------------------------------------------------------------------

def make_inject_server(injector: Injector, port: int,
                       codebuild: CodeBuildScripts | None = None) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:  # the bridge logs what matters
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _parts(self) -> list[str]:
            return [p for p in self.path.split("?")[0].split("/") if p]

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"null")

        def do_GET(self) -> None:
            parts = self._parts()
            if parts == ["health"]:
                return self._send(200, {"ok": True})
            if parts == ["functions"]:
                return self._send(200, injector.pending())
            if parts == ["invocations"]:
                return self._send(200, injector.invocations())
            if len(parts) == 3 and parts[0] == "functions" and parts[2] == "invocations":
                return self._send(200, injector.invocations(parts[1]))
            if parts == ["codebuild"] and codebuild is not None:
                return self._send(200, codebuild.snapshot())
            self._send(404, {"error": f"no route GET {self.path}"})

        def do_POST(self) -> None:
            parts = self._parts()
            try:
                if len(parts) == 3 and parts[0] == "functions" and parts[2] == "queue":
                    body = self._body()
                    depth = injector.push(parts[1], body if isinstance(body, list) else [body])
                    return self._send(200, {"function": parts[1], "queued": depth})
                if codebuild is not None and parts in (["codebuild", "scripts"], ["codebuild", "hold"]):
                    body = self._body()
                    count = 0
                    for entry in (body if isinstance(body, list) else [body]):
                        if parts[1] == "hold" and isinstance(entry, dict):
                            entry = {**entry, "hold": True}
                        count = codebuild.add(entry)
                    return self._send(200, {"scripts": count})
                if codebuild is not None and parts == ["codebuild", "release"]:
                    body = self._body() or {}
                    match = body.get("match", "") if isinstance(body, dict) else None
                    if not isinstance(match, str):
                        raise ValueError('release takes {"match": "<text>"} ("" or nothing: every held build)')
                    return self._send(200, {"released": codebuild.release(match)})
            except (ValueError, json.JSONDecodeError) as e:
                return self._send(400, {"error": str(e)})
            self._send(404, {"error": f"no route POST {self.path}"})

        def do_DELETE(self) -> None:
            parts = self._parts()
            released: list[str] = []
            if parts == []:
                injector.clear()
                released = codebuild.clear() if codebuild is not None else []
            elif len(parts) == 3 and parts[0] == "functions" and parts[2] == "queue":
                injector.clear(parts[1])
            elif parts == ["codebuild", "scripts"] and codebuild is not None:
                released = codebuild.clear()
            else:
                return self._send(404, {"error": f"no route DELETE {self.path}"})
            self._send(200, {"ok": True, "released": released})

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


# ------------------------------------------------------------------------------------------
# The Lambda bridge: moto's engine -> injection queue or `cargo lambda watch`
# ------------------------------------------------------------------------------------------

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
        kind = next((k for k in INJECTION_KINDS if entry and k in entry), None)
        outcome: dict[str, Any] = {"function": name, "injected": kind}
        try:
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


# ------------------------------------------------------------------------------------------
# moto and the resources
# ------------------------------------------------------------------------------------------

def check_moto_version() -> None:
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise StackError(
            f"local/stack.py patches moto {MOTO_VERSION}'s Lambda backend, but moto "
            f"{moto.__version__} is installed; run scripts/tools.sh (or re-check the bridge "
            f"against the new version and update MOTO_VERSION and the pin together)"
        )


def start_moto(port: int):
    """Start moto on 127.0.0.1:port (0 = a free port); returns (server, port)."""
    from moto.server import ThreadedMotoServer

    ensure_free(port, "moto")  # ThreadedMotoServer.start() would wait forever on a busy port
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    # The ASL engine calls Lambda (and other services) through localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    config = json.dumps({"stepfunctions": {"execute_state_machine": True},
                         "lambda": {"use_docker": False}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/config", data=config,
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10):
        pass
    # GET /moto-api/config does not echo the stepfunctions part; the server runs in this process.
    from moto.core.config import default_user_config

    if not default_user_config.get("stepfunctions", {}).get("execute_state_machine"):
        raise StackError(f"moto did not enable state machine execution: {default_user_config}")
    return server, port


def aws_client(service: str, endpoint: str):
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="local", aws_secret_access_key="local")


# The bucket outlives the stack, as a real one would: records, agents' latest pointers and
# uploaded sources are saved here on `down` and restored on `up` — so an unchanged agent built
# before is REUSED after a restart. `rm -rf .local/s3` starts from an empty bucket.
BUCKET_DIR = STATE_DIR / "s3"


def _bucket_path(key: str) -> Path | None:
    parts = key.split("/")
    if key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return None  # not a key this stack writes; never a path outside BUCKET_DIR
    return BUCKET_DIR.joinpath(*parts)


def save_bucket(endpoint: str) -> int:
    s3 = aws_client("s3", endpoint)
    saved = 0
    tmp = BUCKET_DIR.with_name("s3.saving")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            path = _bucket_path(obj["Key"])
            if path is None:
                continue
            path = tmp.joinpath(path.relative_to(BUCKET_DIR))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
            saved += 1
    shutil.rmtree(BUCKET_DIR, ignore_errors=True)
    if tmp.exists():
        tmp.rename(BUCKET_DIR)
    return saved


def restore_bucket(endpoint: str) -> int:
    if not BUCKET_DIR.is_dir():
        return 0
    import hashlib

    s3 = aws_client("s3", endpoint)
    restored = 0
    for path in sorted(p for p in BUCKET_DIR.rglob("*") if p.is_file()):
        key = path.relative_to(BUCKET_DIR).as_posix()
        body = path.read_bytes()
        extra = {}
        if key.startswith("sources/"):
            # As the CLI uploads them: with a SHA-256 checksum validate-request can read back.
            import base64

            extra["ChecksumSHA256"] = base64.b64encode(hashlib.sha256(body).digest()).decode()
        s3.put_object(Bucket=BUCKET, Key=key, Body=body, **extra)
        restored += 1
    return restored


def create_resources(endpoint: str, definition: str) -> dict[str, str]:
    """Bucket, ECR repository, CodeBuild project, state machine; returns their names for the env."""
    s3 = aws_client("s3", endpoint)
    s3.create_bucket(Bucket=BUCKET)
    # As in template.yaml: a build fetches the object version that was validated.
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    repo = aws_client("ecr", endpoint).create_repository(
        repositoryName=REPOSITORY, imageTagMutability="IMMUTABLE")["repository"]
    aws_client("codebuild", endpoint).create_project(
        name=CODEBUILD_PROJECT,
        # moto requires a location even for NO_SOURCE; start-build passes the real source per build.
        source={"type": "NO_SOURCE", "location": "local", "buildspec": "version: 0.2"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "ARM_CONTAINER", "image": "aws/codebuild/amazonlinux-aarch64-standard:3.0",
                     "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": True},
        serviceRole=CODEBUILD_ROLE,
        timeoutInMinutes=int(HANDLER_SETTINGS["AGENTBUILD_BUILD_TIMEOUT_MINUTES"]),
        queuedTimeoutInMinutes=int(HANDLER_SETTINGS["AGENTBUILD_QUEUED_TIMEOUT_MINUTES"]),
    )
    sm = aws_client("stepfunctions", endpoint).create_state_machine(
        name=STATE_MACHINE, definition=definition, roleArn=STATES_ROLE, type="STANDARD")
    return {
        "AGENTBUILD_REPOSITORY_URI": repo["repositoryUri"],
        "AGENTBUILD_STATE_MACHINE_ARN": sm["stateMachineArn"],
    }


# ------------------------------------------------------------------------------------------
# The EventBridge rule: executions that end TIMED_OUT / ABORTED -> record-result
# ------------------------------------------------------------------------------------------

RELAYED_STATUSES = ("TIMED_OUT", "ABORTED")


def execution_status_change(execution: dict[str, Any]) -> dict[str, Any]:
    """EventBridge's "Step Functions Execution Status Change" event for a described execution."""
    millis = lambda t: int(t.timestamp() * 1000) if t else None  # noqa: E731
    detail = {
        "executionArn": execution["executionArn"],
        "stateMachineArn": execution["stateMachineArn"],
        "name": execution["name"],
        "status": execution["status"],
        "startDate": millis(execution.get("startDate")),
        "stopDate": millis(execution.get("stopDate")),
        "input": execution.get("input"),
        "output": None,
        "error": execution.get("error"),
        "cause": execution.get("cause"),
    }
    stopped = execution.get("stopDate")
    return {
        "version": "0",
        "id": f"local-{execution['name']}-{execution['status'].lower()}",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": (stopped.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if stopped else None),
        "region": REGION,
        "resources": [execution["executionArn"]],
        "detail": detail,
    }


def relay_ended_executions(endpoint: str, state_machine_arn: str, stopping: threading.Event,
                           function: str = "record-result", period: float = 1.0) -> None:
    """Stand-in for the template's EventBridge rule, which moto does not emulate: each execution
    of the build state machine that ends TIMED_OUT or ABORTED is sent once to `function`, through
    the same Lambda bridge as the engine's invokes (logged, injectable). Like an async Lambda
    invoke, a failed delivery is tried twice more."""
    sfn = aws_client("stepfunctions", endpoint)
    lam = aws_client("lambda", endpoint)
    done: set[str] = set()
    while not stopping.wait(period):
        try:
            for status in RELAYED_STATUSES:
                pages = sfn.get_paginator("list_executions").paginate(
                    stateMachineArn=state_machine_arn, statusFilter=status)
                for ex in (e for page in pages for e in page["executions"]):
                    if ex["executionArn"] in done:
                        continue
                    done.add(ex["executionArn"])
                    described = sfn.describe_execution(executionArn=ex["executionArn"])
                    # moto leaves stopDate unset on TIMED_OUT executions; we see them within a period.
                    described.setdefault("stopDate", ex.get("stopDate") or datetime.now(timezone.utc))
                    event = json.dumps(execution_status_change(described), default=str)
                    for attempt in range(3):
                        resp = lam.invoke(FunctionName=function, Payload=event.encode())
                        if "FunctionError" not in resp:
                            break
                        log(f"relay {ex['name']} {status} -> {function}: {resp['Payload'].read()[:300]!r}"
                            f" (attempt {attempt + 1})")
                        time.sleep(1)
                    log(f"relayed {ex['name']} {status} to {function}")
        except Exception as e:  # noqa: BLE001 - keep relaying; the next round retries the listing
            log(f"relay: {e}")


# ------------------------------------------------------------------------------------------
# cargo lambda watch
# ------------------------------------------------------------------------------------------

def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def ensure_free(port: int, what: str) -> None:
    if not port:
        return
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise StackError(f"{what}: 127.0.0.1:{port} is not free ({e.strerror})") from None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"process {proc.pid} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise StackError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def start_watch(manifest: Path, port: int, env_file: Path, reload: bool, log_path: Path) -> subprocess.Popen:
    """The Lambda runtime emulator. By default it only serves the Runtime API (`--only-lambda-apis`)
    and the stack runs the binaries built by `up` (see Handlers): `cargo lambda watch` would
    otherwise `cargo run` each function on its first invoke, recompiling whatever changed since
    `up` — past the Task's 60 s timeout on this machine while others edit the workspace.
    `--reload` gives the plain watch mode (cargo run + recompile on change) for handler work."""
    cmd = ["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
           "--manifest-path", str(manifest), "--color", "never"]
    cmd += ["--env-file", str(env_file)] if reload else ["--only-lambda-apis"]
    log(f"starting {' '.join(cmd)}")
    out = open(log_path, "ab")
    # Its own process group, so `down` can end it (and in --reload mode the handlers it spawned).
    return subprocess.Popen(cmd, cwd=manifest.parent, env=tool_env(), stdout=out,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


class Handlers:
    """One process per function, from the pre-built binary, polling the emulator's Runtime API at
    /.rt/<function>; restarted if it exits (a Lambda environment is replaced the same way)."""

    def __init__(self, binaries: dict[str, Path], runtime_port: int, env: dict[str, str]):
        self.binaries = binaries
        self.runtime_port = runtime_port
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}
        self.started: dict[str, float] = {}

    def start(self, name: str) -> None:
        env = {**os.environ, **self.env,
               "AWS_LAMBDA_FUNCTION_NAME": name,
               "AWS_LAMBDA_FUNCTION_VERSION": "1",
               "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
               "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{self.runtime_port}/.rt/{name}"}
        out = open(STATE_DIR / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen([str(self.binaries[name])], cwd=ROOT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.started[name] = time.monotonic()

    def start_all(self) -> None:
        for name in self.binaries:
            self.start(name)
        log(f"handlers running: {', '.join(f'{n} (pid {p.pid})' for n, p in self.procs.items())}")

    def supervise(self) -> None:
        for name, proc in list(self.procs.items()):
            if proc.poll() is not None and time.monotonic() - self.started[name] > 2:
                log(f"handler {name} exited with {proc.returncode}; restarting (see .local/{name}.log)")
                self.start(name)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 5
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()


def handler_binaries(manifest: Path, functions: list[str], binaries: set[str]) -> dict[str, Path]:
    target = Path(cargo_metadata(manifest)["target_directory"]) / "debug"
    found = {f: target / f for f in functions if f in binaries}
    missing = [str(p) for p in found.values() if not p.exists()]
    if missing:
        raise StackError(f"not built: {', '.join(missing)} (run `up` without --no-build)")
    return found


# ------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------

def pid_file(name: str) -> Path:
    return STATE_DIR / f"{name}.pid"


# What each pid file's process runs; a pid whose command line lacks it was reused by another
# process, and is never signalled.
PID_MARKERS = {"stack": "stack.py", "watch": "cargo-lambda"}


def read_pid(name: str) -> int | None:
    try:
        pid = int(pid_file(name).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    return pid if PID_MARKERS[name] in cmdline else None


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        # A zombie still answers kill(0); look at its state.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def write_env(path: Path, values: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    tmp.replace(path)


def read_env(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k] = v
    return out


def api_url(watch_port: int, binaries: set[str]) -> str | None:
    """Hook for issue N (the API): the api Lambda behind cargo lambda's function-URL route."""
    if "api" in binaries:
        return f"http://127.0.0.1:{watch_port}/lambda-url/api"
    return None


def short_engine_errors(record: Any) -> bool:
    """The engine logs every state error, caught or not, with a repr of the whole state; keep
    the error and its details."""
    if isinstance(record.args, tuple) and len(record.args) == 2:
        record.msg, record.args = "engine: %s", (str(record.args[0])[:600],)
    return True


def cmd_serve(args: argparse.Namespace) -> int:
    """Foreground: run the whole stack until SIGTERM/SIGINT. `up` runs this in the background."""
    check_moto_version()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise here
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").addFilter(
        short_engine_errors)
    STATE_DIR.mkdir(exist_ok=True)
    (STATE_DIR / "ready").unlink(missing_ok=True)
    manifest = Path(args.manifest_path).resolve()
    binaries = workspace_binaries(manifest)
    definition = substitute(Path(args.definition).read_text(), binaries)

    injector = Injector()
    ensure_free(args.inject_port, "injection endpoint")
    ensure_free(args.watch_port, "cargo lambda watch")
    codebuild = CodeBuildScripts()
    install_codebuild_scripts(codebuild)
    inject = make_inject_server(injector, args.inject_port, codebuild)
    threading.Thread(target=inject.serve_forever, daemon=True).start()
    inject_url = f"http://127.0.0.1:{inject.server_address[1]}"

    watch_port = args.watch_port or free_port()
    runtime_url = f"http://127.0.0.1:{watch_port}"
    wanted = [f for f in args.functions.split(",") if f]
    handler_bins = None if args.reload else handler_binaries(manifest, wanted, binaries)
    install_lambda_bridge(runtime_url, injector, None if args.reload else set(handler_bins))
    moto_server, moto_port = start_moto(args.moto_port)
    endpoint = f"http://127.0.0.1:{moto_port}"
    log(f"moto {MOTO_VERSION} on {endpoint}; injections on {inject_url}")
    created = create_resources(endpoint, definition)
    restored = restore_bucket(endpoint)
    if restored:
        log(f"restored {restored} objects of {BUCKET} from {BUCKET_DIR}")

    aws = {"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
           **DUMMY_CREDENTIALS}
    handler_env = {**aws, **HANDLER_SETTINGS, **created, "RUST_LOG": os.environ.get("RUST_LOG", "info")}
    write_env(STATE_DIR / "handlers.env", handler_env)

    watch = start_watch(manifest, watch_port, STATE_DIR / "handlers.env", args.reload,
                        STATE_DIR / "watch.log")
    pid_file("watch").write_text(f"{watch.pid}\n")

    handlers = Handlers(handler_bins or {}, watch_port, handler_env)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        wait_for_port(watch_port, 60, watch)
        handlers.start_all()
        env = {
            **aws,
            "AGENTBUILD_BUCKET": BUCKET,
            "AGENTBUILD_STATE_MACHINE_ARN": created["AGENTBUILD_STATE_MACHINE_ARN"],
            "AGENTBUILD_REPOSITORY_URI": created["AGENTBUILD_REPOSITORY_URI"],
            "AGENTBUILD_CODEBUILD_PROJECT": CODEBUILD_PROJECT,
            "AGENTBUILD_INJECT_URL": inject_url,
            "AGENTBUILD_RUNTIME_URL": runtime_url,
        }
        url = api_url(watch_port, binaries)
        if url:
            env["AGENTBUILD_API_URL"] = url
        write_env(STATE_DIR / "env", env)
        if "record-result" in binaries:
            threading.Thread(target=relay_ended_executions, daemon=True, args=(
                endpoint, created["AGENTBUILD_STATE_MACHINE_ARN"], stopping)).start()
        (STATE_DIR / "ready").write_text(f"{os.getpid()}\n")
        log(f"ready: state machine {created['AGENTBUILD_STATE_MACHINE_ARN']}, handlers on {runtime_url}")
        while not stopping.wait(1):
            if watch.poll() is not None:
                raise StackError(f"cargo lambda watch exited with {watch.returncode}; see .local/watch.log")
            handlers.supervise()
    finally:
        (STATE_DIR / "ready").unlink(missing_ok=True)
        handlers.stop()
        stop_group(watch.pid, "cargo lambda watch")
        pid_file("watch").unlink(missing_ok=True)
        inject.shutdown()
        try:
            log(f"saved {save_bucket(endpoint)} objects of {BUCKET} to {BUCKET_DIR}")
        except Exception as e:  # never block stopping on it
            log(f"could not save {BUCKET}: {e}")
        moto_server.stop()
        log("stopped")
    return 0


def prebuild(manifest: Path, binaries: set[str], functions: list[str]) -> None:
    """Compile the handlers; the stack runs these very binaries until `down`."""
    wanted = [f for f in functions if f in binaries]
    t0 = time.monotonic()
    log(f"building {', '.join(wanted)} (debug)")
    for f in wanted:
        # One bin per cargo call, as `cargo lambda watch --reload` would `cargo run --bin <f>`:
        # the same feature resolution, so its run finds everything fresh.
        cmd = ["cargo", "build", "--manifest-path", str(manifest), "--bin", f]
        if subprocess.run(cmd, cwd=manifest.parent, env=tool_env()).returncode != 0:
            raise StackError(f"{f} does not compile; fix it or pass --no-build")
    log(f"built in {time.monotonic() - t0:.1f} s")


def cmd_up(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    check_moto_version()
    STATE_DIR.mkdir(exist_ok=True)
    if alive(read_pid("stack")) and (STATE_DIR / "ready").exists():
        log("already up (local/stack.py down first to restart)")
        print((STATE_DIR / "env").read_text(), end="")
        return 0
    if alive(read_pid("stack")) or alive(read_pid("watch")):
        raise StackError("a previous stack is still running but not ready; run local/stack.py down")
    manifest = Path(args.manifest_path).resolve()
    binaries = workspace_binaries(manifest)
    # Fail before starting anything if the definition cannot be substituted.
    substitute(Path(args.definition).read_text(), binaries)
    if not args.no_build:
        prebuild(manifest, binaries, args.functions.split(","))
    if not args.reload:
        handler_binaries(manifest, args.functions.split(","), binaries)  # fail now if one is missing

    (STATE_DIR / "env").unlink(missing_ok=True)
    serve = [sys.executable, str(Path(__file__).resolve()), "serve", "--functions", args.functions,
             "--moto-port", str(args.moto_port), "--watch-port", str(args.watch_port),
             "--inject-port", str(args.inject_port), "--manifest-path", str(manifest),
             "--definition", str(Path(args.definition).resolve())]
    if args.reload:
        serve.append("--reload")
    out = open(STATE_DIR / "stack.log", "ab")
    proc = subprocess.Popen(serve, cwd=ROOT, env=tool_env(), stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file("stack").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + args.timeout
    while not (STATE_DIR / "ready").exists():
        if proc.poll() is not None:
            tail = (STATE_DIR / "stack.log").read_text(errors="replace").splitlines()[-15:]
            cmd_down(args)
            raise StackError("the stack exited while starting:\n  " + "\n  ".join(tail))
        if time.monotonic() > deadline:
            cmd_down(args)
            raise StackError(f"not ready after {args.timeout} s; see .local/stack.log")
        time.sleep(0.2)
    health_check(read_env(STATE_DIR / "env"))
    log(f"up in {time.monotonic() - t0:.1f} s; environment in {STATE_DIR / 'env'}:")
    print((STATE_DIR / "env").read_text(), end="")
    return 0


def health_check(env: dict[str, str]) -> None:
    for url in (f"{env['AWS_ENDPOINT_URL']}/moto-api/config", f"{env['AGENTBUILD_INJECT_URL']}/health"):
        with urllib.request.urlopen(url, timeout=5) as resp:
            if resp.status != 200 and resp.status != 201:
                raise StackError(f"{url} answered {resp.status}")
    sfn = aws_client("stepfunctions", env["AWS_ENDPOINT_URL"])
    sfn.describe_state_machine(stateMachineArn=env["AGENTBUILD_STATE_MACHINE_ARN"])


def proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgid, state) for every process, from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
            table[int(stat.parent.name)] = (int(fields[1]), int(fields[2]), fields[0])
        except (OSError, IndexError, ValueError):
            continue
    return table


def descendants(pid: int) -> set[int]:
    table = proc_table()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, (ppid, _, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def stop_group(pid: int | None, what: str, grace: float = 10) -> None:
    """End the process group led by `pid` (started with start_new_session) and every descendant.

    cargo lambda watch starts each handler in a session of its own, so the group alone would
    miss them if watch died first; they are found through the process tree, by PID.
    """
    if not pid:
        return
    targets = descendants(pid) | {pid}

    def live() -> set[int]:
        table = proc_table()
        return {p for p, (_, pgid, state) in table.items()
                if state != "Z" and (p in targets or pgid == pid)}

    def signal_all(sig: int) -> None:
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        for p in targets:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while live() and time.monotonic() < deadline:
        time.sleep(0.1)
    if live():
        log(f"{what} (group {pid}) ignored SIGTERM; killing {sorted(live())}")
        signal_all(signal.SIGKILL)


def cmd_down(args: argparse.Namespace) -> int:
    # The serve process first: it stops watch itself. Then whatever is left of the watch group
    # (serve was killed, say); stop_group also ends the handlers, which have sessions of their own.
    for name, what in (("stack", "stack server"), ("watch", "cargo lambda watch")):
        pid = read_pid(name)
        if pid:
            stop_group(pid, what)
            log(f"stopped {what} (process group {pid})")
        pid_file(name).unlink(missing_ok=True)
    for name in ("ready", "env", "handlers.env"):
        (STATE_DIR / name).unlink(missing_ok=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    try:
        if not (alive(read_pid("stack")) and (STATE_DIR / "ready").exists()):
            raise StackError("down")
        health_check(read_env(STATE_DIR / "env"))
    except Exception as e:  # noqa: BLE001 - any failure means "not healthy"
        print(f"local stack: not running ({e})")
        return 1
    print("local stack: up")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    path = STATE_DIR / "env"
    if not path.exists():
        raise StackError("no .local/env: run local/stack.py up")
    print(path.read_text(), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    env_int = lambda name: int(os.environ.get(name, "0"))  # noqa: E731
    for name, fn in (("up", cmd_up), ("serve", cmd_serve), ("down", cmd_down),
                     ("status", cmd_status), ("env", cmd_env)):
        s = sub.add_parser(name)
        s.set_defaults(fn=fn)
        if name in ("up", "serve"):
            s.add_argument("--moto-port", type=int, default=env_int("AGENTBUILD_LOCAL_MOTO_PORT"),
                           help="0 = a free port (default; env AGENTBUILD_LOCAL_MOTO_PORT)")
            s.add_argument("--watch-port", type=int, default=env_int("AGENTBUILD_LOCAL_WATCH_PORT"))
            s.add_argument("--inject-port", type=int, default=env_int("AGENTBUILD_LOCAL_INJECT_PORT"))
            s.add_argument("--manifest-path", default=str(ROOT / "Cargo.toml"),
                           help="the Cargo workspace whose binaries answer the Lambda tasks")
            s.add_argument("--definition", default=str(DEFINITION))
            s.add_argument("--reload", action="store_true",
                           help="let cargo lambda watch recompile on source changes")
            s.add_argument("--functions", default=",".join(LAMBDA_FUNCTIONS),
                           help="the Lambda binaries to build and run (those that exist)")
        if name == "up":
            s.add_argument("--no-build", action="store_true", help="skip the debug pre-build")
            s.add_argument("--timeout", type=int, default=180)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except StackError as e:
        print(f"local/stack.py {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
