"""CodeBuild's EventBridge events, as the local stack delivers them: "CodeBuild Build State
Change" and "CodeBuild Build Phase Change" in the JSON shape AWS sends (the CodeBuild user
guide's samples; `aws_lambda_events::codebuild::CodeBuildEvent` parses them), built from moto's
build dict, and handed to the rule's target — the build-events function — the way EventBridge
does: asynchronously (worker threads, through the same Lambda bridge as the engine's invokes:
logged, injectable), tried twice more when the function fails (Lambda's async retries).
EventBridge delivers each event on its own, in no guaranteed order, and Lambda runs them side
by side; locally one handler process takes them one at a time, so a build's state change is
delivered ahead of its phase changes still queued (otherwise its end would wait behind them).

`drop` switches delivery off (all events, or those of builds whose StartBuild request contains
a text): CodeBuild's events are best effort, and the pipeline must still end through its
fallback.
"""
from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from datetime import datetime
from typing import Any

from .config import ACCOUNT, REGION, log

STATE_CHANGE = "CodeBuild Build State Change"
PHASE_CHANGE = "CodeBuild Build Phase Change"
TARGET = "build-events"


def codebuild_time(at: datetime) -> str:
    """CodeBuild's event time format: `Sep 1, 2017 4:12:29 PM` (UTC)."""
    hour = at.hour % 12 or 12
    return f"{at:%b} {at.day}, {at.year} {hour}:{at:%M:%S} {'AM' if at.hour < 12 else 'PM'}"


def _event_phases(build: dict[str, Any], parse) -> list[dict[str, Any]]:
    out = []
    for p in build.get("phases", []):
        e: dict[str, Any] = {"start-time": codebuild_time(parse(p["startTime"])), "phase-type": p["phaseType"]}
        if "endTime" in p:
            e = {"phase-context": [{"statusCode": c.get("statusCode", ""), "message": c.get("message", "")}
                                   for c in p.get("contexts", [])],
                 **e, "end-time": codebuild_time(parse(p["endTime"])),
                 "duration-in-seconds": p.get("durationInSeconds", 0), "phase-status": p.get("phaseStatus")}
            e = {k: e[k] for k in ("phase-context", "start-time", "end-time", "duration-in-seconds",
                                   "phase-type", "phase-status")}
        out.append(e)
    return out


def _additional_information(build: dict[str, Any], parse) -> dict[str, Any]:
    env = build.get("environment", {})
    info = {
        "artifact": {"location": ""},
        "environment": {
            "image": env.get("image", ""),
            "privileged-mode": bool(env.get("privilegedMode", False)),
            "compute-type": env.get("computeType", ""),
            "type": env.get("type", ""),
            "environment-variables": [{"name": v.get("name"), "type": v.get("type", "PLAINTEXT"),
                                       "value": v.get("value")} for v in env.get("environmentVariables", [])],
        },
        "timeout-in-minutes": build.get("timeoutInMinutes", 60),
        "build-complete": bool(build.get("buildComplete", False)),
        "initiator": build.get("initiator", "agentbuild-local"),
        "build-start-time": codebuild_time(parse(build["startTime"])),
        "source": {"location": build.get("source", {}).get("location", ""),
                   "type": build.get("source", {}).get("type", "S3")},
        "logs": {"group-name": f"/aws/codebuild/{build['projectName']}",
                 "stream-name": build["id"].split(":", 1)[1],
                 "deep-link": "https://console.aws.amazon.com/cloudwatch/home?region=" + REGION},
        "phases": _event_phases(build, parse),
    }
    if build.get("sourceVersion"):
        info["source-version"] = build["sourceVersion"]
    return info


def _envelope(detail_type: str, build: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any]:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "aws.codebuild",
            "account": ACCOUNT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": REGION, "resources": [build["arn"]], "detail": detail}


def state_change(build: dict[str, Any], parse) -> dict[str, Any]:
    """The "Build State Change" event of moto's (rendered) build dict, as it is now."""
    return _envelope(STATE_CHANGE, build, {
        "build-status": build["buildStatus"], "project-name": build["projectName"], "build-id": build["arn"],
        "additional-information": _additional_information(build, parse),
        "current-phase": build.get("currentPhase", ""), "current-phase-context": "[]", "version": "1"})


def phase_changes(build: dict[str, Any], parse, already: int) -> list[dict[str, Any]]:
    """One "Build Phase Change" event per phase that ended since the first `already` ended
    phases (each with the phases known when it ended, as AWS sends them)."""
    phases = build.get("phases", [])
    out = []
    ended = [i for i, p in enumerate(phases) if "endTime" in p and p["phaseType"] != "COMPLETED"]
    for i in ended[already:]:
        p = phases[i]
        view = dict(build, phases=phases[: i + 1] + ([{"phaseType": phases[i + 1]["phaseType"],
                                                         "startTime": phases[i + 1]["startTime"]}]
                                                       if i + 1 < len(phases) else []))
        view["buildComplete"] = False
        out.append(_envelope(PHASE_CHANGE, build, {
            "completed-phase": p["phaseType"], "project-name": build["projectName"], "build-id": build["arn"],
            "completed-phase-context": "[]", "additional-information": _additional_information(view, parse),
            "completed-phase-status": p.get("phaseStatus", "SUCCEEDED"),
            "completed-phase-duration-seconds": p.get("durationInSeconds", 0), "version": "1",
            "completed-phase-start": codebuild_time(parse(p["startTime"])),
            "completed-phase-end": codebuild_time(parse(p["endTime"]))}))
    return out


class EventDelivery:
    """EventBridge's rule on the project's CodeBuild events -> build-events, asynchronously."""

    def __init__(self, drop_all: bool = False) -> None:
        self._lock = threading.Lock()
        # (priority: state changes first, sequence, event)
        self._queue: queue.PriorityQueue[tuple[int, int, dict[str, Any]]] = queue.PriorityQueue()
        self._seq = 0
        self._drop_all = drop_all
        self._drop_matches: set[str] = set()
        self.delivered = 0
        self.dropped = 0
        self._invoke = None

    def start(self, endpoint: str, workers: int = 2) -> None:
        """`endpoint` is moto's; the invokes go to its Lambda backend in this process
        (direct_invoke.py: what an Invoke through the server answers, without HTTP)."""
        from . import direct_invoke

        self._invoke = lambda payload: direct_invoke.invoke(TARGET, payload)
        for _ in range(workers):
            threading.Thread(target=self._work, daemon=True).start()

    def set_drop(self, drop: bool, match: str = "") -> dict[str, Any]:
        with self._lock:
            if match:
                (self._drop_matches.add if drop else self._drop_matches.discard)(match)
            else:
                self._drop_all = drop
                if not drop:
                    self._drop_matches.clear()
            return self.status()

    def status(self) -> dict[str, Any]:
        return {"dropAll": self._drop_all, "dropMatches": sorted(self._drop_matches),
                "delivered": self.delivered, "dropped": self.dropped}

    def send(self, request_text: str, events: list[dict[str, Any]]) -> None:
        """Queue `events` of the build whose StartBuild request is `request_text`."""
        with self._lock:
            drop = self._drop_all or any(m in request_text for m in self._drop_matches)
            if drop:
                self.dropped += len(events)
        if drop:
            log(f"codebuild events: dropped {len(events)} ({', '.join(e['detail-type'] for e in events)})")
            return
        with self._lock:
            for e in events:
                self._seq += 1
                self._queue.put((0 if e["detail-type"] == STATE_CHANGE else 1, self._seq, e))

    def _work(self) -> None:
        while True:
            _, _, event = self._queue.get()
            body = json.dumps(event).encode()
            for attempt in range(3):
                try:
                    answer, error = self._invoke(body)
                    if error is None:
                        break
                    log(f"codebuild event -> {TARGET}: {answer[:300]!r} (attempt {attempt + 1})")
                except Exception as e:  # noqa: BLE001 - like EventBridge: retry, then give up
                    log(f"codebuild event -> {TARGET}: {e} (attempt {attempt + 1})")
                time.sleep(0.5 * (attempt + 1))
            with self._lock:
                self.delivered += 1
