"""CodeBuild scripts: builds that run for a while, stay running, fail in a phase, or export
variables — and announce it with CodeBuild's events.

moto's CodeBuild has none of these (local/README.md, "CodeBuild scripts"). `CodeBuildScripts`
holds the scripts and the builds they bound to; `install_codebuild_scripts` patches three
methods of moto's CodeBuild (signatures checked first) so StartBuild, BatchGetBuilds and
StopBuild answer as the scripts say. A scripted build's phase changes and its end are sent as
CodeBuild's EventBridge events (codebuild_events.py) the moment they happen.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import datetime, timezone
from typing import Any

from .codebuild_events import EventDelivery, phase_changes, state_change
from . import ecr_scans, ecr_signing
from .config import REGION, checked_originals, log


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


def default_exported(build: dict[str, Any]) -> dict[str, str]:
    """What the buildspec would export for a successful build of this StartBuild's image:
    IMAGE_DIGEST, a digest derived from the repository and tag (deterministic: the same tag is
    the same image, a new tag a new one), and IMAGE_URI = repository@digest. {} without them."""
    env = {v.get("name"): v.get("value", "") for v in
           build.get("environment", {}).get("environmentVariables", [])}
    repo, tag = env.get("AGENTBUILD_IMAGE_REPOSITORY"), env.get("AGENTBUILD_IMAGE_TAG")
    if not repo or not tag:
        return {}
    digest = "sha256:" + hashlib.sha256(f"{repo}:{tag}".encode()).hexdigest()
    return {"IMAGE_DIGEST": digest, "IMAGE_URI": f"{repo}@{digest}"}


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
    cleared); that build then runs in phase BUILD and ends:
      * `hold: true` — at StopBuild (then STOPPED, for good) or at a release (at once, with the
        script's `status`);
      * `seconds: S` — S seconds after StartBuild (a timer), with `status`;
      * `polls: N` — at its (N+1)-th BatchGetBuilds (IN_PROGRESS for the first N), with `status`;
      * none of these — at once (right after StartBuild).
    `status` defaults to SUCCEEDED; a failure status ends phase `failedPhase` (default BUILD)
    with that status and CodeBuild's context for it; `exported` becomes the build's exported
    environment variables (as the buildspec's IMAGE_DIGEST / IMAGE_URI). When it starts and when
    it ends, its phase changes and state change go out as CodeBuild's events (`events`).
    Builds no script matched behave as moto's — SUCCEEDED at their first BatchGetBuilds,
    without events — except that a build stopped while IN_PROGRESS stays STOPPED (moto would
    report it SUCCEEDED on the next BatchGetBuilds), and that their times are the times that
    passed (`plain_ended`): moto makes up an end 1–5 minutes after the start and random phase
    durations, and adds nine more phases at every look.
    """

    FIELDS = {"match", "hold", "polls", "seconds", "status", "failedPhase", "exported", "startDelay"}

    def __init__(self, events: EventDelivery | None = None) -> None:
        self.events = events
        self._lock = threading.Lock()
        self._scripts: list[dict[str, Any]] = []
        # build id -> {"script", "request" (its JSON text), "polls" (BatchGetBuilds seen),
        #              "released", "final": None | (status, phase it ended in, when)}
        self._builds: dict[str, dict[str, Any]] = {}
        self._frozen: set[str] = set()  # unscripted builds stopped while IN_PROGRESS
        self._plain_ends: dict[str, datetime] = {}  # unscripted build id -> when it was first seen ended

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
        seconds = entry.get("seconds", 0)
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= 3600:
            raise ValueError("seconds must be a number from 0 to 3600")
        if sum(k in entry for k in ("hold", "polls", "seconds") if entry.get(k) not in (None, False)) > 1:
            raise ValueError("a script ends by one of hold, polls or seconds")
        delay = entry.get("startDelay", 0)
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= 60:
            raise ValueError("startDelay must be a number of seconds from 0 to 60")
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

    def bind(self, build: dict[str, Any], request_text: str) -> dict[str, Any] | None:
        """StartBuild of moto's `build` (kept: the scripts rewrite it in place): bind the first
        matching script, render the build running, announce its first phases; a timed build
        ends by a timer."""
        with self._lock:
            script = next((s for s in self._scripts if s["match"] in request_text), None)
            if script is None:
                return None
            b = {"script": script, "request": request_text, "polls": 0, "released": False,
                 "final": None, "build": build, "announced": 0}
            self._builds[build["id"]] = b
            render_build(build, parse_timestamp(build["startTime"]), None, {})
            events = self._announce(b)
        self._send(b, events)
        if not script.get("hold") and "polls" not in script:
            timer = threading.Timer(float(script.get("seconds", 0)), self.end, args=(build["id"],))
            timer.daemon = True
            timer.start()
        return script

    def _announce(self, b: dict[str, Any]) -> list[dict[str, Any]]:
        """The events for what changed since the last announcement (lock held)."""
        build = b["build"]
        events = phase_changes(build, parse_timestamp, b["announced"])
        b["announced"] += len(events)
        if b["final"] is not None or b["announced"] == len(events):
            events.append(state_change(build, parse_timestamp))
        return events

    def _send(self, b: dict[str, Any], events: list[dict[str, Any]]) -> None:
        if self.events is not None and events:
            self.events.send(b["request"], events)

    def _finish(self, build_id: str, status: str | None = None) -> bool:
        """End a bound build now (lock NOT held by the caller); False if it had ended."""
        with self._lock:
            b = self._builds[build_id]
            if b["final"] is not None:
                return False
            script = b["script"]
            b["final"] = (status or script.get("status", "SUCCEEDED"),
                          script.get("failedPhase", "BUILD") if status is None else "BUILD", naive_utcnow())
            render_build(b["build"], parse_timestamp(b["build"]["startTime"]), b["final"],
                         script.get("exported") or default_exported(b["build"]))
            events = self._announce(b)
        self._send(b, events)
        log(f"codebuild: {build_id} ended {b['final'][0]}")
        return True

    def end(self, build_id: str) -> None:
        """A timed build's timer ran out."""
        self._finish(build_id)

    def release(self, match: str) -> list[str]:
        """Held builds whose StartBuild request (or id) contains `match` ("" = every one) end
        at once with their script's status (and announce it); returns their ids."""
        with self._lock:
            out = []
            for build_id, b in self._builds.items():
                if (b["script"].get("hold") and not b["released"] and b["final"] is None
                        and (match in b["request"] or match in build_id)):
                    b["released"] = True
                    out.append(build_id)
        for build_id in out:
            self._finish(build_id)
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
        """BatchGetBuilds of a known build: rewrite moto's dict to what the script says now (a
        `polls` build ends at its (N+1)-th look, and announces it)."""
        events: list[dict[str, Any]] = []
        with self._lock:
            if build["id"] in self._frozen:
                return
            b = self._builds[build["id"]]
            script = b["script"]
            if b["final"] is None:
                b["polls"] += 1
                if "polls" in script and b["polls"] > script["polls"]:
                    b["final"] = (script.get("status", "SUCCEEDED"), script.get("failedPhase", "BUILD"),
                                  naive_utcnow())
                    render_build(build, parse_timestamp(build["startTime"]), b["final"],
                                 script.get("exported") or default_exported(build))
                    events = self._announce(b)
            render_build(build, parse_timestamp(build["startTime"]), b["final"],
                         script.get("exported") or default_exported(build))
        if events:
            self._send(b, events)

    def plain_ended(self, build: dict[str, Any]) -> None:
        """An unscripted build moto has just reported ended (BatchGetBuilds: SUCCEEDED; StopBuild:
        STOPPED). It ended when it was first seen ended: its phases and end become the times
        that passed — the start moto recorded at StartBuild, that moment — the same at every
        later look."""
        with self._lock:
            ended = self._plain_ends.setdefault(build["id"], naive_utcnow())
        render_build(build, parse_timestamp(build["startTime"]), (build["buildStatus"], "BUILD", ended),
                     default_exported(build))

    def stop(self, build: dict[str, Any]) -> bool:
        """StopBuild: a scripted build still running stops for good (True); an unscripted one
        still IN_PROGRESS is frozen once moto has marked it STOPPED (False: let moto stop it)."""
        with self._lock:
            b = self._builds.get(build["id"])
            if b is None:
                if build.get("buildStatus") == "IN_PROGRESS":
                    self._frozen.add(build["id"])
                return False
            events: list[dict[str, Any]] = []
            if b["final"] is None:
                b["final"] = ("STOPPED", "BUILD", naive_utcnow())
                render_build(build, parse_timestamp(build["startTime"]), b["final"],
                             b["script"].get("exported") or default_exported(build))
                events = self._announce(b)
            render_build(build, parse_timestamp(build["startTime"]), b["final"],
                         b["script"].get("exported") or default_exported(build))
        self._send(b, events)
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
    if status == "SUCCEEDED":
        push_image(build, exported)


# Builds whose image push_image has made.
_PUSHED: set[str] = set()


def push_image(build: dict[str, Any], exported: dict[str, str]) -> None:
    """What the buildspec's push leaves in ECR: the image under its tag, with the digest the
    build exports (a manifest of no layers, in moto's ECR of the build's account and region).
    Once per tag: a later look at the build changes nothing, and an image deleted since (a test
    that expires it) stays deleted."""
    from moto.ecr.models import ecr_backends

    env = {v.get("name"): v.get("value", "") for v in
           build.get("environment", {}).get("environmentVariables", [])}
    repo_uri, tag = env.get("AGENTBUILD_IMAGE_REPOSITORY", ""), env.get("AGENTBUILD_IMAGE_TAG")
    digest = exported.get("IMAGE_DIGEST")
    if "/" not in repo_uri or not tag or not digest or build.get("id") in _PUSHED:
        return
    _PUSHED.add(build.get("id", ""))
    _, region, account = (build.get("arn", "").split(":") + ["", "", "", "", ""])[2:5]
    name = repo_uri.split("/", 1)[1]
    try:
        repo = ecr_backends[account][region].repositories.get(name) if region and account else None
        if repo is None or any(tag in i.image_tags for i in repo.images):
            return
        media = "application/vnd.oci.image.manifest.v1+json"
        manifest = json.dumps({"schemaVersion": 2, "mediaType": media, "layers": [],
                               "annotations": {"org.opencontainers.image.ref.name": tag}})
        ecr_backends[account][region].put_image(name, manifest, tag, media, digest)
        ecr_scans.scan_on_push(ecr_backends[account][region], name, tag, digest)
        ecr_signing.sign_on_push(account, region, name, tag, digest)
    except Exception as e:  # a failed push must not break BatchGetBuilds: REUSED then builds
        log(f"codebuild: could not push {name}:{tag}: {e!r}")
        return
    log(f"codebuild: pushed {name}:{tag} {digest}")


_CODEBUILD_ORIGINALS: dict[str, Any] = {}


def log_location(build: dict[str, Any]) -> dict[str, Any]:
    """Where CodeBuild writes a build's log, as BatchGetBuilds reports it (moto reports none):
    the project's log group (the template's BuildLogGroup is /aws/codebuild/<stack>), the
    build's uuid as the stream. Nothing writes lines there locally (no real build runs)."""
    project, _, uuid = build["id"].partition(":")
    group = f"/aws/codebuild/{project}"
    logs = build.setdefault("logs", {}) or {}
    logs.update(groupName=group, streamName=uuid,
                deepLink=f"https://console.aws.amazon.com/cloudwatch/home?region={REGION}"
                         f"#logEvent:group={group};stream={uuid}")
    build["logs"] = logs
    return build


def install_codebuild_scripts(scripts: CodeBuildScripts, real: Any = None) -> None:
    """Patch moto's CodeBuild (MOTO_VERSION only): StartBuild keeps the request's source and
    environment overrides on the build (moto drops them) and binds scripts; BatchGetBuilds and
    StopBuild report scripted builds as their script says. Other builds are moto's own, with
    the times that passed (`CodeBuildScripts.plain_ended`). Builds of the layer project run for
    real when `real` (codebuild_real.RealBuilds) is given: no script applies to them."""
    from moto.codebuild.models import CodeBuildBackend
    from moto.codebuild.responses import CodeBuildResponse

    checked_originals(_CODEBUILD_ORIGINALS, {
        (CodeBuildResponse, "start_build"): "(self) -> moto.core.responses.ActionResult",
        (CodeBuildBackend, "batch_get_builds"): "(self, ids: list[str]) -> list[dict[str, typing.Any]]",
        (CodeBuildBackend, "stop_build"): "(self, build_id: str) -> dict[str, typing.Any] | None",
    }, "local/agentbuild_local/codebuild.py")
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
        if real is not None and real.start(build, text):
            return result
        script = scripts.bind(build, text)
        if script is not None:
            log(f"codebuild: {build['id']} scripted by {json.dumps(script)}")
            if script.get("startDelay"):
                # The build exists and runs; its StartBuild call answers later (a slow answer,
                # so a test can act while the caller has not learnt the build's id).
                time.sleep(float(script["startDelay"]))
        return result

    def patched_batch_get_builds(self: Any, ids: list[str]) -> list[dict[str, Any]]:
        known = real.knows if real is not None else (lambda _: False)
        plain = [i for i in ids if not scripts.knows(i) and not known(i)]
        out = batch_get_builds(self, plain) if plain else []
        for build in out:
            log_location(build)
        for build in out:
            # moto's made-up times -> the times that passed; moto exports nothing, a real build
            # of ours exports its image's digest.
            scripts.plain_ended(build)
        for history in self.build_metadata_history.values():
            for build in history:
                if build["id"] in ids and known(build["id"]):
                    out.append(build)
                elif build["id"] in ids and build["id"] not in plain:
                    scripts.report(build)
                    out.append(log_location(build))
        return out

    def patched_stop_build(self: Any, build_id: str) -> dict[str, Any] | None:
        for history in self.build_metadata_history.values():
            for build in history:
                if build["id"] == build_id and real is not None and real.knows(build_id):
                    real.stop(build)
                    return build
                if build["id"] == build_id and scripts.stop(build):
                    log(f"codebuild: {build_id} stopped")
                    return build
        stopped = stop_build(self, build_id)
        if stopped is not None:
            scripts.plain_ended(stopped)
        return stopped

    CodeBuildResponse.start_build = patched_start_build
    CodeBuildBackend.batch_get_builds = patched_batch_get_builds
    CodeBuildBackend.stop_build = patched_stop_build
