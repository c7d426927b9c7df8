"""The callback wait end to end (issue 11), in the real engine: a build's CodeBuild events end its
wait (AwaitBuild, `lambda:invoke.waitForTaskToken`), so it costs the same few state transitions
whatever its length; its record is final within 2 s of the build's end; with its events lost it
still ends, within one fallback interval (CheckBuild after the wait's timeout); and it is
announced exactly once.

The stack's callback timeout (the template's CallbackTimeoutSeconds) is short (5 s) so that a
lost event costs seconds. The length test raises it above its longest build first (as a redeploy
with another parameter value would: `POST /config` restarts the handlers) and restores it.
AGENTBUILD_E2E_LONG_BUILD_SECONDS sets the long build's length (default 20: four times the short
one, and four times the stack's fallback interval — a build the fallback alone would look at
several times; make it as long as you like, the count must not change).

Run: .venv/bin/python -m pytest tests/e2e/test_callback.py -q (needs a running stack).
"""
from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone
from typing import Any

import pytest

from conftest import Stack, entered, failures, uid
from test_events import Announcements, only

SHORT = 5
LONG = int(os.environ.get("AGENTBUILD_E2E_LONG_BUILD_SECONDS", "20"))
MAX_TRANSITIONS = 10


def fallback(stack: Stack) -> int:
    status, body, _ = stack.http("GET", f"{stack.inject_url}/config")
    assert status == 200, body
    return int(body["callbackTimeoutSeconds"])


def set_fallback(stack: Stack, seconds: int) -> None:
    stack.wait_idle(120)
    status, body, _ = stack.http("POST", f"{stack.inject_url}/config", {"callbackTimeoutSeconds": seconds})
    assert status == 200 and body["restarted"], body
    assert fallback(stack) == seconds
    time.sleep(1)  # the restarted handlers poll the runtime API again


def transitions(events: list[dict[str, Any]]) -> int:
    """Step Functions bills a state transition per state entered."""
    return sum(1 for e in events if e["type"].endswith("StateEntered"))


def codebuild_end(stack: Stack, rec: dict[str, Any]) -> datetime:
    end = stack.build(rec["codebuild"]["buildId"])["endTime"]
    return end if end.tzinfo else end.replace(tzinfo=timezone.utc)


def watch_final(stack: Stack, name: str, out: dict[str, float], stop: threading.Event) -> None:
    """Notes the wall-clock time the record first reads final."""
    while not stop.is_set():
        rec = stack.record(name)
        if rec and rec["status"] != "RUNNING":
            out[name] = time.time()
            return
        time.sleep(0.05)


def run_builds(stack: Stack, lengths: dict[str, float], drop: bool = False) -> dict[str, Any]:
    """Starts one build per (label, seconds) at once; returns per label its execution, history,
    record and how long after CodeBuild's end the record read final."""
    runs, seen, stop, threads = {}, {}, threading.Event(), []
    for label, seconds in lengths.items():
        name = f"cb-{label}-{uid()}"
        stack.script({"match": name, "seconds": seconds,
                      "exported": {"IMAGE_DIGEST": "sha256:" + "e" * 64, "IMAGE_URI": "r@sha256:" + "e" * 64}})
        if drop:
            status, body, _ = stack.http("POST", f"{stack.inject_url}/codebuild/events",
                                         {"drop": True, "match": name})
            assert status == 200, body
        runs[label] = (name, stack.start(name, stack.request()))
        t = threading.Thread(target=watch_final, args=(stack, name, seen, stop), daemon=True)
        t.start()
        threads.append(t)
    out = {}
    try:
        for label, (name, arn) in runs.items():
            d = stack.wait(arn, timeout=lengths[label] + 60)
            for t in threads:
                t.join(timeout=5)
            rec = stack.record(name)
            lag = seen[name] - codebuild_end(stack, rec).timestamp()
            out[label] = {"name": name, "execution": d, "events": stack.history(arn), "record": rec,
                          "lag": lag}
    finally:
        stop.set()
    return out


@pytest.fixture(scope="module")
def announced(stack):
    return Announcements(stack)


@pytest.fixture(scope="module")
def by_length(stack):
    """A 5 s and a LONG-second build at once, with the callback timeout above both."""
    stack.reset()
    original = fallback(stack)
    set_fallback(stack, LONG + 30)
    try:
        return run_builds(stack, {"short": SHORT, "long": LONG})
    finally:
        set_fallback(stack, original)


def test_a_build_costs_the_same_few_transitions_whatever_its_length(by_length):
    short, long = by_length["short"], by_length["long"]
    for run in (short, long):
        assert run["execution"]["status"] == "SUCCEEDED", run["execution"]
        assert failures(run["events"]) == []
    counts = {label: transitions(run["events"]) for label, run in by_length.items()}
    print(f"state transitions: {SHORT} s build {counts['short']}, {LONG} s build {counts['long']}")
    assert counts["short"] == counts["long"] <= MAX_TRANSITIONS, counts
    assert entered(short["events"]) == entered(long["events"]) == [
        "ValidateRequest", "Artifact", "StartBuild", "BuildStarted", "AwaitBuild", "CheckBuild", "BuildFinished",
        "RecordResult", "Outcome", "Done"]


def test_the_record_is_final_within_2_s_of_the_builds_end(by_length):
    for label, run in by_length.items():
        print(f"{label}: record final {run['lag']:.2f} s after CodeBuild's end")
        assert run["lag"] < 2.0, (label, run["lag"])
        assert run["record"]["status"] == "SUCCEEDED"


def test_each_build_is_announced_exactly_once(by_length, announced):
    for run in by_length.values():
        detail = only(announced.of(run["name"]), run["name"])
        assert detail["status"] == "SUCCEEDED"


def test_with_its_events_lost_a_build_still_ends_within_one_fallback_interval(stack, announced):
    interval = fallback(stack)
    assert interval <= 10, "the stack's fallback should be short for this test"
    run = run_builds(stack, {"lost": 2}, drop=True)["lost"]
    assert run["execution"]["status"] == "SUCCEEDED", run["execution"]
    assert stack.invocations("build-events", run["name"]) == []
    states = entered(run["events"])
    assert "CheckBuild" in states and failures(run["events"]) == ["States.Timeout"]
    print(f"events lost: record final {run['lag']:.2f} s after CodeBuild's end (fallback {interval} s)")
    # The wait began before the build ended: it times out at most `interval` after its end.
    assert run["lag"] < interval + 2.0, run["lag"]
    only(announced.of(run["name"]), run["name"])
