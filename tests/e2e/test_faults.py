"""The fault matrix (issue 10): every fault end to end — the real statemachine/build.asl.json in
moto's ASL engine, the real handler binaries — injected through the stack's injection endpoint
(local/README.md), each judged by its OUTCOME:

  * exactly one final record `builds/<id>.json` for every execution that got past validation,
    final within CLOSER_GRACE of the execution's end (the EventBridge stand-in relays ended
    executions to the last-resort closer about once a second) and never replaced afterwards (no
    RUNNING after the end, no second final); one never final is counted lost;
  * no CodeBuild build left IN_PROGRESS once its execution has ended (every execution here has
    a CodeBuild script, so BatchGetBuilds tells the truth about its build);
  * `agents/<p>/<a>/latest.json` on the newest submission's newest image.

The scenarios run concurrently (CONCURRENCY threads) in the module fixture `matrix` — retries
and deadlines sleep in real time, and one after the other they would take minutes — each with
its own names, `match`ing injections and scripts on them, so none takes another's. Each test then
re-raises its scenario's failure. Every observation goes to `Matrix`; at the end of the module
the summary (faults injected, records lost, builds orphaned, rollbacks) is computed from them,
printed (pytest -s) and written to .local/fault-matrix.json.

Timeouts: the machine's TimeoutSeconds is 45 h. moto snapshots the definition at
StartExecution, so the timeout scenarios start while the machine's TimeoutSeconds is briefly
shortened (`short_machine_timeout`) and restored before anything else starts.

Run: .venv/bin/python -m pytest tests/e2e/test_faults.py -q -s
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Callable, Iterator

import pytest

from conftest import ROOT, Stack, entered, failures, parse_time, uid

FINAL = ("SUCCEEDED", "REUSED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT", "ERROR")
FUNCTIONS = ("validate-request", "start-build", "await-build", "check-build", "record-result")
# The closer: the relay looks at ended executions about once a second, then invokes
# record-result — one handler process per function locally, shared with the running
# executions' steps: under this module's load it has taken up to ~4.7 s (measured).
CLOSER_GRACE = 5.0
# A record still not final this long after its execution ended is counted lost.
LOST_AFTER = 10.0
# Executions that time out here do so after this many seconds (the real machine's: 45 h).
SHORT_TIMEOUT = 6
POLL = 0.25  # our own polling of moto (many scenarios at once: keep it light)
CONCURRENCY = 6
SUMMARY_FILE = ROOT / ".local" / "fault-matrix.json"


def transient(message: str, **kw: Any) -> dict[str, Any]:
    return {"error": {"type": "TransientAwsError", "message": f"{message} (injected)"}, **kw}


def fatal(message: str, **kw: Any) -> dict[str, Any]:
    return {"error": {"type": "AwsServiceError", "message": f"{message} (injected)"}, **kw}


def until(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(POLL)
    raise AssertionError(f"not within {timeout} s: {what}")


def task_failures(events: list[dict[str, Any]]) -> list[str]:
    """The failed Task attempts, without the callback wait's timeouts (the fallback's normal
    path when no event comes)."""
    return [f for f in failures(events) if f != "States.Timeout"]


def submitted(rec: dict[str, Any]) -> Any:
    t = rec["timestamps"]
    return parse_time(t.get("submittedAt") or t["requestedAt"])


# ---------------------------------------------------------------------------------------------
# What the scenarios observed
# ---------------------------------------------------------------------------------------------

class Matrix:
    """Observations of every scenario; `summary()` computes the figures from them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: Counter[str] = Counter()          # "<what>" -> how many were injected
        self.executions: dict[str, dict[str, Any]] = {}  # name -> what happened to its record
        self.builds: dict[str, dict[str, Any]] = {}      # CodeBuild id -> its state after the end
        self.latest: list[dict[str, Any]] = []           # latest.json checks
        self.accepted: set[str] = set()                  # buildIds the API handed out (202)
        self.errors: dict[str, BaseException | None] = {}
        self.seconds: dict[str, float] = {}
        self.wall = 0.0

    def fault(self, kind: str, n: int = 1) -> None:
        with self.lock:
            self.faults[kind] += n

    def summary(self, stack: Stack, wall: float) -> dict[str, Any]:
        # Records are re-read now that every scenario is over: a late writer (a CheckBuild in
        # flight, a retried RecordResult, a second closer) must not have replaced a final one.
        for name, ex in self.executions.items():
            if ex["final"] is not None:
                now = stack.get_bytes(f"builds/{name}.json")
                ex["replacedLater"] = now != ex["bytes"]
        past = [e for e in self.executions.values() if e["pastValidation"]]
        lost = sorted(n for n, e in self.executions.items() if e["pastValidation"] and e["final"] is None)
        stray = sorted(n for n, e in self.executions.items()
                       if not e["pastValidation"] and e["recordStatus"] is not None)
        replaced = sorted(n for n, e in self.executions.items() if e.get("replacedLater"))
        orphaned = sorted(i for i, b in self.builds.items() if b["status"] == "IN_PROGRESS")
        rollbacks = [c for c in self.latest if c["rollback"]]
        by_type: Counter[str] = Counter()
        for kind, n in self.faults.items():
            by_type[kind.rsplit(" [", 1)[0]] += n
        return {
            "faultsInjected": sum(self.faults.values()),
            "recordsLost": len(lost),
            "buildsOrphaned": len(orphaned),
            "rollbacks": len(rollbacks),
            "recordsReplacedAfterFinal": len(replaced),
            "executions": len(self.executions),
            "executionsPastValidation": len(past),
            "builds": len(self.builds),
            "latestChecks": len(self.latest),
            "recordsClosedLate": sum(1 for e in past if (e["closerSeconds"] or 0) > CLOSER_GRACE),
            "closedByCloser": sum(1 for e in self.executions.values() if e["closerSeconds"] is not None),
            "closerSecondsMax": max((e["closerSeconds"] for e in self.executions.values()
                                     if e["closerSeconds"] is not None), default=None),
            "scenarios": {sid: ("passed" if err is None else f"FAILED: {type(err).__name__}: "
                                f"{str(err).splitlines()[0][:300] if str(err) else ''}")
                          for sid, err in sorted(self.errors.items())},
            "faultsByType": dict(sorted(by_type.items())),
            "faultsByScenario": dict(sorted(self.faults.items())),
            "lost": {n: {k: v for k, v in self.executions[n].items() if k != "bytes"} for n in lost},
            "orphaned": {i: self.builds[i] for i in orphaned},
            "rollbackDetails": rollbacks,
            "replaced": replaced,
            "recordsWithoutValidation": stray,
            "scenarioSeconds": dict(sorted(self.seconds.items())),
            "wallSeconds": round(wall, 1),
        }


class Ctx:
    """One scenario's view of the stack: names it owns, and the observing helpers."""

    def __init__(self, stack: Stack, matrix: Matrix, sid: str):
        self.stack, self.m, self.sid = stack, matrix, sid
        self.names: list[str] = []

    def name(self, label: str = "") -> str:
        n = f"fx-{self.sid}{'-' + label if label else ''}-{uid()}"
        self.names.append(n)
        return n

    def fault(self, kind: str, n: int = 1) -> None:
        self.m.fault(f"{kind} [{self.sid}]", n)

    # -- CodeBuild scripts: every execution has one, so its build's state is always known ---

    def digest(self, name: str) -> str:
        return "sha256:" + hashlib.sha256(name.encode()).hexdigest()

    def exported(self, name: str) -> dict[str, str]:
        d = self.digest(name)
        return {"IMAGE_DIGEST": d, "IMAGE_URI": f"{self.stack.env['AGENTBUILD_REPOSITORY_URI']}@{d}"}

    def succeeds(self, name: str, seconds: float = 1, polls: int | None = None) -> None:
        """A build that ends SUCCEEDED after `seconds` (and says so with its events), or at its
        (polls+1)-th look."""
        end = {"seconds": seconds} if polls is None else {"polls": polls}
        self.stack.script({"match": name, **end, "exported": self.exported(name)})

    def drop_events(self, name: str) -> None:
        """CodeBuild's events of this execution's build are lost (best effort delivery)."""
        status, body, _ = self.stack.http("POST", f"{self.stack.inject_url}/codebuild/events",
                                          {"drop": True, "match": name})
        assert status == 200, body

    def hold(self, name: str) -> None:
        self.stack.script({"match": name, "hold": True, "exported": self.exported(name)})

    # -- outcomes ------------------------------------------------------------------------------

    def wait(self, arn: str, timeout: float = 60) -> dict[str, Any]:
        return until(f"{arn} ended", lambda: (lambda d: d if d["status"] != "RUNNING" else None)(
            self.stack.sfn.describe_execution(executionArn=arn)), timeout)

    def settle(self, name: str, arn: str, timeout: float = 60) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Waits for the execution's end, then for its final record (up to LOST_AFTER); notes
        what it found. (execution, the final record or None)."""
        d = self.wait(arn, timeout)
        ended_at = time.monotonic()
        rec = self.stack.record(name)
        at_end = rec is not None and rec["status"] in FINAL
        while (rec is None or rec["status"] not in FINAL) and time.monotonic() - ended_at < LOST_AFTER:
            time.sleep(0.1)
            rec = self.stack.record(name)
        seconds = round(time.monotonic() - ended_at, 2)
        final = rec if rec is not None and rec["status"] in FINAL else None
        # ValidateRequest succeeded, or the API handed the buildId out (202): from here on the
        # execution owes a final record. (From the bridge's log, not the history: moto once
        # answered an aborted execution's GetExecutionHistory with a 500.)
        validated = any(x.get("status") == 200 and "errorType" not in x
                        for x in self.stack.invocations("validate-request", name))
        past = validated or name in self.m.accepted
        with self.m.lock:
            self.m.executions[name] = {
                "scenario": self.sid, "execution": d["status"], "error": d.get("error"),
                "pastValidation": past, "recordStatus": rec and rec["status"],
                "final": final and final["status"],
                # closed after the end: by the last-resort closer
                "closerSeconds": seconds if final and not at_end else None,
                "bytes": self.stack.get_bytes(f"builds/{name}.json") if final else None,
            }
        if past:
            assert final is not None, (f"{name} ended {d['status']} but its record is not final "
                                       f"{LOST_AFTER} s later: {rec and rec['status']}")
            assert seconds <= CLOSER_GRACE, f"{name}: record final only {seconds} s after the end"
        return d, final

    def builds(self, name: str) -> list[dict[str, Any]]:
        """The CodeBuild builds of execution `name` (its script's), as CodeBuild reports them now."""
        out = []
        for b in self.stack.codebuild_scripted():
            if b["match"] == name:
                build = self.stack.build(b["id"])
                with self.m.lock:
                    self.m.builds[b["id"]] = {"scenario": self.sid, "execution": name,
                                              "status": build["buildStatus"]}
                out.append(build)
        return out

    def no_build_running(self, name: str, expect: int | None = None) -> list[dict[str, Any]]:
        builds = self.builds(name)
        if expect is not None:
            assert len(builds) == expect, f"{name}: {len(builds)} CodeBuild builds, expected {expect}"
        running = [b["id"] for b in builds if b["buildStatus"] == "IN_PROGRESS"]
        assert not running, f"{name} ended but its CodeBuild build(s) still run: {running}"
        return builds

    def latest(self, project: str, agent: str, newest: str) -> dict[str, Any] | None:
        """latest.json, checked against `newest` (the build of the newest submission)."""
        latest = self.stack.get_json(f"agents/{project}/{agent}/latest.json")
        expected = self.stack.record(newest)
        rollback = latest is None or submitted(latest) < submitted(expected)
        with self.m.lock:
            self.m.latest.append({"scenario": self.sid, "expected": newest,
                                  "actual": latest and latest["buildId"], "rollback": rollback})
        assert latest is not None and latest["buildId"] == newest, \
            f"latest.json names {latest and latest['buildId']}, not the newest submission's build {newest}"
        assert latest["image"]["digest"] == self.digest(newest) == expected["image"]["digest"]
        assert latest["source"]["sha256"] == expected["source"]["sha256"]
        return latest

    def count_injected(self) -> None:
        """The Lambda faults the bridge actually delivered to this scenario's executions."""
        for fn in FUNCTIONS:
            for name in self.names:
                for c in self.stack.invocations(fn, name):
                    if c["injected"] in ("error", "serviceError"):
                        self.m.fault(f"{fn} {c['errorType']} [{self.sid}]")

    def injected(self, fn: str, match: str) -> int:
        return sum(1 for c in self.stack.invocations(fn, match) if c["injected"])

    def abort(self, arn: str) -> None:
        self.stack.sfn.stop_execution(executionArn=arn)
        self.fault("StopExecution")


# ---------------------------------------------------------------------------------------------
# The scenarios (registered in order; CONCURRENCY at a time)
# ---------------------------------------------------------------------------------------------

SCENARIOS: dict[str, Callable[[Ctx], None]] = {}


def scenario(sid: str) -> Callable[[Callable[[Ctx], None]], Callable[[Ctx], None]]:
    def register(fn: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
        SCENARIOS[sid] = fn
        return fn
    return register


# 1 — S3 failing in StartBuild: short, long ------------------------------------------------------

@scenario("startbuild-s3-short")
def _(c: Ctx) -> None:
    """S3 fails the first two StartBuild attempts; the retries get through."""
    name, req = c.name(), c.stack.request()
    c.succeeds(name)
    c.stack.inject("start-build", transient("S3.GetObject: 503 SlowDown", times=2, match=name))
    d, rec = c.settle(name, c.stack.start(name, req))
    events = c.stack.history(d["executionArn"])
    c.no_build_running(name, expect=1)
    assert d["status"] == "SUCCEEDED", d
    assert failures(events) == ["TransientAwsError"] * 2
    assert rec["status"] == "SUCCEEDED"
    c.latest(req["project"], req["agent"], name)


@scenario("startbuild-s3-long")
def _(c: Ctx) -> None:
    """S3 fails every StartBuild attempt: Catch -> RecordResult -> ERROR; nothing runs."""
    name, req = c.name(), c.stack.request()
    c.hold(name)  # a build started by mistake would be held running: an orphan, visible
    c.stack.inject("start-build", transient("S3.PutObject: 503 SlowDown", times=50, match=name))
    d, rec = c.settle(name, c.stack.start(name, req))
    events = c.stack.history(d["executionArn"])
    c.no_build_running(name, expect=0)
    assert (d["status"], d["error"]) == ("FAILED", "ERROR"), d
    assert failures(events) == ["TransientAwsError"] * 5, "1 + 4 retries"
    assert rec["status"] == "ERROR" and rec["error"]["type"] == "TransientAwsError"
    assert "S3.PutObject" in rec["error"]["message"]
    assert c.stack.get_json(f"agents/{req['project']}/{req['agent']}/latest.json") is None


# 2 — CheckBuild failing past its retries: recovers / until the deadline ---------------------------

@scenario("checkbuild-recovers")
def _(c: Ctx) -> None:
    """One round of CheckBuild retries exhausted while the build is held running: the execution
    goes back to waiting, then succeeds once the build ends."""
    name, req = c.name(), c.stack.request()
    c.hold(name)
    c.stack.inject("check-build", transient("S3.PutObject: 503 SlowDown", times=5, match=name))
    arn = c.stack.start(name, req)
    # Five failed checks, then a real one again (the build still held).
    until("CheckBuild failed 5 times, then checked again",
          lambda: c.injected("check-build", name) == 5
          and len(c.stack.invocations("check-build", name)) >= 6, timeout=45)
    assert c.stack.record(name)["status"] == "RUNNING", "a failed check is no result"
    assert c.stack.release(name)
    d, rec = c.settle(name, arn)
    events = c.stack.history(d["executionArn"])
    c.no_build_running(name, expect=1)
    assert d["status"] == "SUCCEEDED", d
    states = entered(events)
    assert "CheckFailed" in states and "CheckGaveUp" not in states
    i = states.index("CheckFailed")
    assert states[i:i + 3] == ["CheckFailed", "KeepWaiting", "WaitForBuild"], states
    assert task_failures(events) == ["TransientAwsError"] * 5
    assert rec["status"] == "SUCCEEDED" and rec["codebuild"].get("stopped") is not True
    c.latest(req["project"], req["agent"], name)


@scenario("checkbuild-failing-past-deadline")
def _(c: Ctx) -> None:
    """Checks fail (two rounds of retries, ~15 s) until well past the build's short deadline,
    then one gets through: CheckBuild stops the build at its deadline -> TIMED_OUT. (The give-up
    path, CheckGaveUp after 30 failed rounds in a row, takes minutes: not run here.)"""
    name, req = c.name(), c.stack.request()
    c.hold(name)
    c.stack.inject("check-build", transient("CodeBuild.BatchGetBuilds: ThrottlingException", times=10,
                                            match=name))
    arn = c.stack.start(name, {"request": req, "limits": {"deadlineSeconds": 5}})
    d, rec = c.settle(name, arn)
    events = c.stack.history(d["executionArn"])
    builds = c.no_build_running(name, expect=1)
    assert (d["status"], d["error"]) == ("FAILED", "TIMED_OUT"), d
    states = entered(events)
    assert states.count("CheckFailed") == 2 and "CheckGaveUp" not in states, states
    assert task_failures(events) == ["TransientAwsError"] * 10
    assert rec["status"] == "TIMED_OUT" and rec["error"]["type"] == "DeadlineExceeded"
    assert parse_time(rec["timestamps"]["finishedAt"]) - parse_time(rec["timestamps"]["startedAt"]) \
        > timedelta(seconds=5), "the checks failed past the deadline"
    assert builds[0]["buildStatus"] == "STOPPED"


@scenario("checkbuild-fatal")
def _(c: Ctx) -> None:
    """CheckBuild fails for good (no retry) while the build runs: ERROR, and the build that the
    error leaves running is stopped (issue 10's orphan)."""
    name, req = c.name(), c.stack.request()
    c.hold(name)
    arn = c.stack.start(name, req)
    c.stack.wait_started(name)
    c.stack.inject("check-build", fatal("CodeBuild.BatchGetBuilds: AccessDeniedException", match=name))
    d, rec = c.settle(name, arn)
    builds = c.no_build_running(name, expect=1)
    assert (d["status"], d["error"]) == ("FAILED", "ERROR"), d
    assert rec["status"] == "ERROR" and rec["error"]["type"] == "AwsServiceError"
    assert rec["codebuild"]["stopped"] is True and builds[0]["buildStatus"] == "STOPPED"


# 3 — RecordResult failing: short, long -----------------------------------------------------------

@scenario("recordresult-s3-short")
def _(c: Ctx) -> None:
    name, req = c.name(), c.stack.request()
    c.succeeds(name)
    c.stack.inject("record-result", transient("S3.PutObject: 503 SlowDown", times=2, match=name))
    d, rec = c.settle(name, c.stack.start(name, req))
    events = c.stack.history(d["executionArn"])
    c.no_build_running(name, expect=1)
    assert d["status"] == "SUCCEEDED", d
    assert failures(events) == ["TransientAwsError"] * 2
    assert rec["status"] == "SUCCEEDED"
    c.latest(req["project"], req["agent"], name)


@scenario("recordresult-s3-long")
def _(c: Ctx) -> None:
    """CheckBuild fails for good while the build is held; RecordResult then fails past its
    retries: the execution FAILS, the closer closes the record (ERROR, the execution's error)
    and stops the build."""
    name, req = c.name(), c.stack.request()
    c.hold(name)
    arn = c.stack.start(name, req)
    running = c.stack.wait_started(name)
    # Match on the image tag: it is in the engine's payload (the plan), not in the relayed
    # event, so the closer's own invocation is the real handler's.
    c.stack.inject("record-result", transient("S3.PutObject: 503 SlowDown", times=100,
                                              match=running["image"]["tag"]))
    c.stack.inject("check-build", fatal("CodeBuild.BatchGetBuilds: AccessDeniedException", match=name))
    d, rec = c.settle(name, arn)
    events = c.stack.history(d["executionArn"])
    builds = c.no_build_running(name, expect=1)
    assert (d["status"], d["error"]) == ("FAILED", "TransientAwsError"), d
    assert task_failures(events) == ["AwsServiceError"] + ["TransientAwsError"] * 5
    assert rec["status"] == "ERROR"
    assert rec["error"]["type"] == "TransientAwsError" and "S3.PutObject" in rec["error"]["message"]
    assert rec["codebuild"]["stopped"] is True and builds[0]["buildStatus"] == "STOPPED"
    relayed = [x for x in c.stack.invocations("record-result", name)
               if x["request"].get("detail", {}).get("name") == name]
    assert [(x["injected"], x["status"]) for x in relayed] == [(None, 200)]
    assert relayed[0]["request"]["detail"]["status"] == "FAILED"


# 4, 9 — a handler crash; CodeBuild throttling and Lambda service errors ----------------------------

@scenario("lambda-unknown")
def _(c: Ctx) -> None:
    """Every step's handler crashes once (Lambda.Unknown): retried everywhere (the CodeBuild
    event handler's crash is retried by the asynchronous delivery)."""
    name, req = c.name(), c.stack.request()
    c.succeeds(name)
    for fn in ("validate-request", "start-build", "await-build", "record-result", "build-events"):
        c.stack.inject(fn, {"error": {"type": "Lambda.Unknown", "message": "Runtime exited (injected)"},
                            "match": name})
    d, rec = c.settle(name, c.stack.start(name, req))
    events = c.stack.history(d["executionArn"])
    c.no_build_running(name, expect=1)
    assert d["status"] == "SUCCEEDED", d
    assert failures(events) == ["Lambda.Unknown"] * 4
    assert rec["status"] == "SUCCEEDED"
    c.latest(req["project"], req["agent"], name)


@scenario("throttling-and-service-errors")
def _(c: Ctx) -> None:
    name, req = c.name(), c.stack.request()
    c.succeeds(name)
    c.stack.inject("validate-request", {"serviceError": {"code": "TooManyRequestsException", "status": 429},
                                        "match": name})
    c.stack.inject("start-build", transient("CodeBuild.StartBuild: ThrottlingException: Rate exceeded",
                                            times=2, match=name))
    c.stack.inject("await-build", {"serviceError": {"code": "ServiceException", "status": 500}, "match": name})
    c.stack.inject("record-result", {"serviceError": {"code": "ServiceException", "status": 500},
                                     "match": name})
    d, rec = c.settle(name, c.stack.start(name, req))
    events = c.stack.history(d["executionArn"])
    c.no_build_running(name, expect=1)
    assert d["status"] == "SUCCEEDED", d
    assert failures(events) == ["Lambda.TooManyRequestsException", "TransientAwsError", "TransientAwsError",
                                "Lambda.ServiceException", "Lambda.ServiceException"]
    assert rec["status"] == "SUCCEEDED"
    c.latest(req["project"], req["agent"], name)


# 5 — aborted at each state; a late CheckBuild after an abort ----------------------------------------

@scenario("abort-validate")
def _(c: Ctx) -> None:
    """Aborted before validation succeeded: no record is owed, none is written, nothing runs."""
    name, req = c.name(), c.stack.request()
    c.hold(name)
    c.stack.inject("validate-request", transient("S3.HeadObject: 503", times=50, match=name))
    arn = c.stack.start(name, req)
    until("ValidateRequest failed once", lambda: c.injected("validate-request", name) >= 1)
    c.abort(arn)
    d, rec = c.settle(name, arn)
    assert d["status"] == "ABORTED", d
    assert c.stack.invocations("start-build", name) == [], "never got past ValidateRequest"
    assert c.stack.record(name) is None
    c.no_build_running(name, expect=0)


@scenario("abort-startbuild")
def _(c: Ctx) -> None:
    """Aborted while StartBuild is retried with S3 failing — before any attempt wrote its marker
    (the RUNNING record StartBuild writes before calling CodeBuild). Validation passed, so a
    STOPPED record is owed; no build was started."""
    name, req = c.name(), c.stack.request()
    c.hold(name)
    c.stack.inject("start-build", transient("S3.GetObject: 503 SlowDown", times=50, match=name))
    arn = c.stack.start(name, req)
    until("StartBuild failed once", lambda: c.injected("start-build", name) >= 1)
    c.abort(arn)
    d, rec = c.settle(name, arn)
    c.no_build_running(name, expect=0)
    assert d["status"] == "ABORTED", d
    assert rec["status"] == "STOPPED"


@scenario("abort-waiting")
def _(c: Ctx) -> None:
    """Aborted while the build is held running (its wait parked)."""
    name, req = c.name(), c.stack.request()
    c.hold(name)
    arn = c.stack.start(name, req)
    c.stack.wait_started(name)
    until("parked", lambda: c.stack.get_json(f"callbacks/{name}.json") is not None)
    c.abort(arn)
    d, rec = c.settle(name, arn)
    builds = c.no_build_running(name, expect=1)
    assert d["status"] == "ABORTED"
    assert rec["status"] == "STOPPED" and rec["error"]["type"] == "ExecutionAborted"
    assert rec["codebuild"]["stopped"] is True and builds[0]["buildStatus"] == "STOPPED"


@scenario("abort-checkbuild-retrying")
def _(c: Ctx) -> None:
    """Aborted while CheckBuild is being retried (S3 failing)."""
    name, req = c.name(), c.stack.request()
    c.hold(name)
    arn = c.stack.start(name, req)
    c.stack.wait_started(name)
    c.stack.inject("check-build", transient("S3.PutObject: 503 SlowDown", times=50, match=name))
    until("CheckBuild failed once", lambda: c.injected("check-build", name) >= 1)
    c.abort(arn)
    d, rec = c.settle(name, arn)
    builds = c.no_build_running(name, expect=1)
    assert d["status"] == "ABORTED"
    assert rec["status"] == "STOPPED" and rec["codebuild"]["stopped"] is True
    assert builds[0]["buildStatus"] == "STOPPED"


@scenario("abort-recordresult")
def _(c: Ctx) -> None:
    """Aborted while RecordResult is being retried after the build succeeded: the closer closes
    the open record STOPPED (an aborted execution records STOPPED)."""
    name, req = c.name(), c.stack.request()
    c.hold(name)
    arn = c.stack.start(name, req)
    running = c.stack.wait_started(name)
    c.stack.inject("record-result", transient("S3.PutObject: 503 SlowDown", times=100,
                                              match=running["image"]["tag"]))
    assert c.stack.release(name)
    until("RecordResult failed once", lambda: c.injected("record-result", name) >= 1)
    c.abort(arn)
    d, rec = c.settle(name, arn)
    c.no_build_running(name, expect=1)
    assert d["status"] == "ABORTED", d
    assert rec["status"] == "STOPPED" and rec["error"]["type"] == "ExecutionAborted"
    assert c.stack.get_json(f"agents/{req['project']}/{req['agent']}/latest.json") is None


@scenario("late-checkbuild-after-abort")
def _(c: Ctx) -> None:
    """A CheckBuild in flight when the abort lands writes after the closer. The injection
    endpoint has no delays, so the race is played out deterministically: once the record is
    STOPPED, the real check-build runs with the payload the engine last sent it — pointed at a
    build that is still IN_PROGRESS, as the late check saw it — and its progress write must not
    turn STOPPED back into RUNNING."""
    name, req = c.name(), c.stack.request()
    c.hold(name)
    arn = c.stack.start(name, req)
    c.stack.wait_started(name)
    until("checked once", lambda: len(c.stack.invocations("check-build", name)) >= 1)
    c.abort(arn)
    d, rec = c.settle(name, arn)
    assert d["status"] == "ABORTED" and rec["status"] == "STOPPED"
    stopped = c.stack.get_bytes(f"builds/{name}.json")

    # A build that is still running (held), started outside any execution.
    other = c.name("running")
    c.hold(other)
    other_id = c.stack.codebuild.start_build(
        projectName=c.stack.project,
        environmentVariablesOverride=[{"name": "AGENTBUILD_BUILD_ID", "value": other, "type": "PLAINTEXT"}],
    )["build"]["id"]
    payload = [x for x in c.stack.invocations("check-build", name) if not x["injected"]][-1]["request"]
    payload["build"]["codebuildBuildId"] = payload["codebuildBuildId"] = other_id
    url = f"{c.stack.env['AGENTBUILD_RUNTIME_URL']}/2015-03-31/functions/check-build/invocations"
    status, out, _ = c.stack.http("POST", url, payload)
    c.fault("late CheckBuild write")
    try:
        assert status == 200 and out["build"]["status"] == "RUNNING", (status, out)
        assert c.stack.get_bytes(f"builds/{name}.json") == stopped, "a late CheckBuild reopened the record"
    finally:
        c.stack.codebuild.stop_build(id=other_id)
    c.no_build_running(name, expect=1)
    c.no_build_running(other, expect=1)


# 5 — timed out (started by `timeouts_start` while the machine's TimeoutSeconds is short) ---------

TIMEOUTS: dict[str, dict[str, Any]] = {}
# StartBuild's retries (S3 failing) span ~7.5 s on average, but FULL jitter can make them all
# short (below 3 s about 2 % of the time): each failing attempt is held 1 s, so the five take at
# least 5 s and the 3 s timeout always falls inside them.
START_TIMEOUT = 3


def timeouts_start(stack: Stack, m: Matrix) -> None:
    """Starts the timeout scenarios' executions while the machine's TimeoutSeconds is short
    (moto snapshots the definition at StartExecution; restored before anything else starts)."""
    windows = {SHORT_TIMEOUT: ("timeout-waiting", "timeout-recordresult"), START_TIMEOUT: ("timeout-startbuild",)}
    for seconds, sids in windows.items():
        plan = {}
        for sid in sids:
            ctx = Ctx(stack, m, sid)
            plan[sid] = {"name": ctx.name(), "request": stack.request(), "timeout": seconds}
            ctx.hold(plan[sid]["name"])
        if "timeout-startbuild" in plan:
            stack.inject("start-build", transient("S3.GetObject: 503 SlowDown", times=50, delay=1,
                                                  match=plan["timeout-startbuild"]["name"]))
        with short_machine_timeout(stack, seconds):
            for p in plan.values():
                p["arn"] = stack.start(p["name"], p["request"])
                p["t0"] = time.monotonic()
        TIMEOUTS.update(plan)


@contextmanager
def short_machine_timeout(stack: Stack, seconds: int) -> Iterator[None]:
    original = stack.sfn.describe_state_machine(stateMachineArn=stack.machine)["definition"]
    definition = json.loads(original)
    definition["TimeoutSeconds"] = seconds
    stack.sfn.update_state_machine(stateMachineArn=stack.machine, definition=json.dumps(definition))
    try:
        yield
    finally:
        stack.sfn.update_state_machine(stateMachineArn=stack.machine, definition=original)
        restored = json.loads(stack.sfn.describe_state_machine(stateMachineArn=stack.machine)["definition"])
        assert restored["TimeoutSeconds"] == json.loads(original)["TimeoutSeconds"]


def timed_out(c: Ctx) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    p = TIMEOUTS[c.sid]
    c.names = [p["name"]]
    try:
        d, rec = c.settle(p["name"], p["arn"], timeout=p["timeout"] + 30)
    finally:
        # Where it was when it timed out, from the bridge's log (the last step invoked).
        calls = sorted((x["seq"], fn) for fn in FUNCTIONS for x in c.stack.invocations(fn, p["name"])
                       if x["request"].get("detail") is None)  # not the closer's event
        c.fault(f"execution timeout (last step invoked: {calls[-1][1] if calls else '-'})")
    assert d["status"] == "TIMED_OUT", d
    return d, rec, p["name"]


@scenario("timeout-waiting")
def _(c: Ctx) -> None:
    d, rec, name = timed_out(c)
    builds = c.no_build_running(name, expect=1)
    assert rec["status"] == "TIMED_OUT" and rec["codebuild"]["stopped"] is True
    assert builds[0]["buildStatus"] == "STOPPED"


@scenario("timeout-startbuild")
def _(c: Ctx) -> None:
    """Timed out while StartBuild is retried with S3 failing (before its marker)."""
    d, rec, name = timed_out(c)
    c.no_build_running(name, expect=0)
    assert c.stack.invocations("start-build", name) and not c.stack.invocations("check-build", name)
    assert rec["status"] == "TIMED_OUT"


@scenario("timeout-recordresult")
def _(c: Ctx) -> None:
    p = TIMEOUTS[c.sid]
    running = c.stack.wait_started(p["name"])
    c.stack.inject("record-result", transient("S3.PutObject: 503 SlowDown", times=100,
                                              match=running["image"]["tag"]))
    # Released ~2 s before the timeout: the next check (1-2 s apart) finds the build ended and
    # RecordResult starts failing just before the execution times out. The engine's clock is
    # the execution's own: its timeout runs from ExecutionStarted (the worker's start, which
    # lags StartExecution's answer on a loaded machine), so the release is timed from there —
    # timed from our t0 instead, RecordResult could start seconds earlier and exhaust its
    # (jittered) retries first: FAILED, not TIMED_OUT.
    started = c.stack.history(p["arn"])[0]
    assert started["type"] == "ExecutionStarted", started
    deadline = started["timestamp"].timestamp() + p["timeout"]
    time.sleep(max(0.0, deadline - 2.2 - time.time()))
    assert c.stack.release(p["name"])
    d, rec, name = timed_out(c)
    c.no_build_running(name, expect=1)
    assert rec["status"] == "TIMED_OUT"
    assert c.stack.get_json(f"agents/{p['request']['project']}/{p['request']['agent']}/latest.json") is None


# 10 — the callback wait: a lost event, a token that cannot be parked, a completion refused,
#      late / duplicate / foreign events ------------------------------------------------------------

def fallback_seconds(stack: Stack) -> int:
    status, body, _ = stack.http("GET", f"{stack.inject_url}/config")
    assert status == 200, body
    return int(body["callbackTimeoutSeconds"])


@scenario("event-lost")
def _(c: Ctx) -> None:
    """Every CodeBuild event of the build is lost: the wait times out and CheckBuild finds the
    build ended — within one fallback interval of its end."""
    name, req = c.name(), c.stack.request()
    c.succeeds(name, seconds=1)
    c.drop_events(name)
    c.fault("CodeBuild events lost")
    d, rec = c.settle(name, c.stack.start(name, req))
    events = c.stack.history(d["executionArn"])
    c.no_build_running(name, expect=1)
    assert d["status"] == "SUCCEEDED", d
    assert c.stack.invocations("build-events", name) == [], "no event reached the handler"
    states = entered(events)
    assert states.count("AwaitBuild") == 1 and states.count("CheckBuild") == 1, states
    assert failures(events) == ["States.Timeout"]
    lag = parse_time(rec["timestamps"]["finishedAt"]) - parse_time(d["startDate"].isoformat())
    assert d["stopDate"] - d["startDate"] < timedelta(seconds=1 + fallback_seconds(c.stack) + 3), lag
    assert rec["status"] == "SUCCEEDED"


@scenario("token-store-failure")
def _(c: Ctx) -> None:
    """The token cannot be parked (S3 failing through every retry): counted as a failed look,
    then a wait and CheckBuild, which finds the build ended."""
    name, req = c.name(), c.stack.request()
    c.succeeds(name, seconds=1)
    c.stack.inject("await-build", transient("S3.PutObject: 503 SlowDown", times=5, match=name))
    d, rec = c.settle(name, c.stack.start(name, req))
    events = c.stack.history(d["executionArn"])
    c.no_build_running(name, expect=1)
    assert d["status"] == "SUCCEEDED", d
    states = entered(events)
    i = states.index("CheckFailed")
    assert states[i:i + 4] == ["CheckFailed", "KeepWaiting", "WaitForBuild", "CheckBuild"], states
    assert failures(events) == ["TransientAwsError"] * 5
    assert rec["status"] == "SUCCEEDED"
    c.latest(req["project"], req["agent"], name)


@scenario("completion-refused")
def _(c: Ctx) -> None:
    """SendTaskSuccess fails: the parked token is damaged before the build ends, so the event
    handler's completion is refused (InvalidToken, logged, harmless); the wait times out and
    CheckBuild ends the build."""
    name, req = c.name(), c.stack.request()
    c.hold(name)
    arn = c.stack.start(name, req)
    key = f"callbacks/{name}.json"
    parked = until("parked", lambda: c.stack.get_json(key))
    parked["token"] = "damaged-" + parked["token"][:16]
    c.stack.s3.put_object(Bucket=c.stack.bucket, Key=key, Body=json.dumps(parked).encode())
    c.fault("SendTaskSuccess refused")
    assert c.stack.release(name)
    d, rec = c.settle(name, arn)
    events = c.stack.history(d["executionArn"])
    c.no_build_running(name, expect=1)
    assert d["status"] == "SUCCEEDED", d
    handled = [x for x in c.stack.invocations("build-events", name)
               if x["request"]["detail-type"] == "CodeBuild Build State Change"
               and x["request"]["detail"]["build-status"] == "SUCCEEDED"]
    assert handled and all(x["status"] == 200 for x in handled), "a refused completion is no error"
    assert "CheckBuild" in entered(events) and failures(events) == ["States.Timeout"]
    assert rec["status"] == "SUCCEEDED"


@scenario("late-duplicate-foreign-events")
def _(c: Ctx) -> None:
    """After the build ended and its record is final, its end event arrives again (late and
    duplicate), and another project's build's event arrives: each is answered without error and
    changes nothing."""
    name, req = c.name(), c.stack.request()
    c.succeeds(name, seconds=0.5)
    d, rec = c.settle(name, c.stack.start(name, req))
    assert d["status"] == "SUCCEEDED", d
    final = c.stack.get_bytes(f"builds/{name}.json")
    end = [x for x in c.stack.invocations("build-events", name)
           if x["request"]["detail-type"] == "CodeBuild Build State Change"
           and x["request"]["detail"]["build-status"] == "SUCCEEDED"][-1]["request"]
    # Locally a build's phase changes are delivered after its state change (one handler process
    # takes them in turn): the execution can end before the first one is logged.
    phase = until("a phase change delivered", lambda: [
        x for x in c.stack.invocations("build-events", name)
        if x["request"]["detail-type"] == "CodeBuild Build Phase Change"])[0]["request"]
    foreign = json.loads(json.dumps(end).replace(c.stack.project, "other-team"))
    url = f"{c.stack.env['AGENTBUILD_RUNTIME_URL']}/2015-03-31/functions/build-events/invocations"
    for label, event, outcomes in (("late duplicate end event", end, ("alreadyClosed", "noWaiter")),
                                   ("late phase event", phase, ("ignored",)),
                                   ("foreign project's event", foreign, ("ignored",))):
        status, out, _ = c.stack.http("POST", url, event)
        c.fault(label)
        assert status == 200 and out in outcomes, (label, status, out)
        assert c.stack.get_bytes(f"builds/{name}.json") == final, f"{label} changed the record"
    c.no_build_running(name, expect=1)


# 6 — one execution name, one build ----------------------------------------------------------------

@scenario("duplicate-submission")
def _(c: Ctx) -> None:
    name, req = c.name(), c.stack.request()
    c.hold(name)
    first = c.stack.start(name, req)
    assert c.stack.start(name, req) == first  # at once, before StartBuild ran
    c.fault("duplicate StartExecution")
    c.stack.wait_started(name)
    assert c.stack.start(name, req) == first  # while the build runs
    c.fault("duplicate StartExecution")
    assert c.stack.release(name)
    d, rec = c.settle(name, first)
    c.no_build_running(name, expect=1)
    assert d["status"] == "SUCCEEDED" and rec["status"] == "SUCCEEDED"
    assert len([e for e in c.stack.sfn.list_executions(stateMachineArn=c.stack.machine)["executions"]
                if e["name"] == name]) == 1
    c.latest(req["project"], req["agent"], name)


# 7 — two builds of one agent finishing in either order --------------------------------------------

def two_builds(c: Ctx, order: str) -> None:
    project, agent = f"e2e-{uid()}", "twin"
    older, newer = c.name("older"), c.name("newer")
    runs = {}
    for n in (older, newer):
        c.hold(n)
        uri, _ = c.stack.upload_source(project, agent, n)
        runs[n] = c.stack.start(n, {"project": project, "agent": agent, "source": uri})
        c.stack.wait_started(n)  # the newer one is submitted strictly later
    c.fault(f"two builds of one agent, {order}")
    sequence = {"newer-first": [[newer], [older]], "older-first": [[older], [newer]],
                "together": [[older, newer]]}[order]
    for batch in sequence:
        for n in batch:
            assert c.stack.release(n)
        for n in batch:
            d, rec = c.settle(n, runs[n])
            assert d["status"] == "SUCCEEDED" and rec["status"] == "SUCCEEDED", d
    for n in runs:
        c.no_build_running(n, expect=1)
    assert submitted(c.stack.record(newer)) > submitted(c.stack.record(older))
    c.latest(project, agent, newer)


@scenario("two-builds-newer-finishes-first")
def _(c: Ctx) -> None:
    two_builds(c, "newer-first")


@scenario("two-builds-older-finishes-first")
def _(c: Ctx) -> None:
    two_builds(c, "older-first")


@scenario("two-builds-finish-together")
def _(c: Ctx) -> None:
    two_builds(c, "together")


# 8 — a scheduled rebuild of older source racing a user build of newer source ----------------------

def rebuild_race(c: Ctx, rebuild_last: bool) -> None:
    project, agent = f"e2e-{uid()}", "racer"
    old_uri, _ = c.stack.upload_source(project, agent, "old")
    new_uri, _ = c.stack.upload_source(project, agent, "new")
    first = c.name("old")
    c.succeeds(first, polls=0)
    d, old = c.settle(first, c.stack.start(first, {"project": project, "agent": agent, "source": old_uri}))
    assert d["status"] == "SUCCEEDED", d

    user, rebuild = c.name("user"), c.name("sched")
    c.hold(user)
    c.hold(rebuild)
    arns = {user: c.stack.start(user, {"project": project, "agent": agent, "source": new_uri})}
    c.stack.wait_started(user)
    # A rebuild names the build it rebuilds; its run's manifest (as the fleet's plan writes
    # it) vouches for it, so it counts as scheduled.
    # One run per scenario: the two races run concurrently and must not overwrite each other's
    # manifest (then the other's rebuild would not be vouched for).
    run = "20261129T0301" if rebuild_last else "20261129T0300"
    rebuild_input = {"rebuild": {"buildId": first, "run": run}}
    c.stack.s3.put_object(Bucket=c.stack.bucket, Key=f"rebuilds/{run}/manifest.json",
                          Body=json.dumps([{"name": rebuild, "agent": f"{project}/{agent}",
                                            "input": rebuild_input}]).encode())
    arns[rebuild] = c.stack.start(rebuild, rebuild_input)
    c.stack.wait_started(rebuild)
    c.fault("rebuild race")
    for n in ([user, rebuild] if rebuild_last else [rebuild, user]):
        assert c.stack.release(n)
        d, rec = c.settle(n, arns[n])
        assert d["status"] == "SUCCEEDED" and rec["status"] == "SUCCEEDED", d
    for n in (first, user, rebuild):
        c.no_build_running(n, expect=1)
    rb = c.stack.record(rebuild)
    assert rb["trigger"] == "schedule" and rb["timestamps"]["submittedAt"] == old["timestamps"]["requestedAt"]
    assert submitted(rb) < submitted(c.stack.record(user))
    c.latest(project, agent, user)


@scenario("rebuild-of-older-source-finishes-last")
def _(c: Ctx) -> None:
    rebuild_race(c, rebuild_last=True)


@scenario("rebuild-of-older-source-finishes-first")
def _(c: Ctx) -> None:
    rebuild_race(c, rebuild_last=False)


# 10 — cancel × {before start, during start, during build}; an accepted request refused later ----

def cancel(c: Ctx, name: str) -> tuple[int, Any]:
    status, body, _ = c.stack.http("DELETE", f"{c.stack.env['AGENTBUILD_API_URL']}{c.stack.build_path(name)}")
    c.fault("cancel")
    return status, body


def cancelled(c: Ctx, name: str, arn: str, expect_builds: int) -> list[dict[str, Any]]:
    d, rec = c.settle(name, arn)
    assert d["status"] == "ABORTED", d
    assert (rec["status"], rec["error"]["type"]) == ("STOPPED", "Cancelled"), rec
    time.sleep(4)  # a StartBuild still in flight has run by now
    return c.no_build_running(name, expect=expect_builds)


@scenario("cancel-before-start")
def _(c: Ctx) -> None:
    """Cancelled while StartBuild is held: it finds the record closed and starts nothing."""
    name = c.name()
    c.hold(name)
    c.stack.inject("start-build", {"delay": 3, "match": name})
    arn = c.stack.start(name, c.stack.request())
    c.stack.wait_record(name, ("RUNNING",))
    assert cancel(c, name)[0] == 202
    cancelled(c, name, arn, expect_builds=0)


@scenario("cancel-during-start")
def _(c: Ctx) -> None:
    """Cancelled while CodeBuild has not answered StartBuild (the record holds only the marker):
    StartBuild's RUNNING write finds the record closed and stops the build it started."""
    name = c.name()
    c.stack.script({"match": name, "hold": True, "startDelay": 3})
    arn = c.stack.start(name, c.stack.request())
    until("the start marker", lambda: ((r := c.stack.record(name)) and
                                       r["codebuild"].get("startRequestedAt")))
    assert cancel(c, name)[0] == 202
    builds = cancelled(c, name, arn, expect_builds=1)
    assert builds[0]["buildStatus"] == "STOPPED"


@scenario("cancel-during-build")
def _(c: Ctx) -> None:
    name = c.name()
    c.hold(name)
    arn = c.stack.start(name, c.stack.request())
    c.stack.wait_started(name)
    status, body = cancel(c, name)
    assert status == 202 and body["codebuild"]["stopped"] is True, body
    cancelled(c, name, arn, expect_builds=1)


@scenario("accepted-then-source-deleted")
def _(c: Ctx) -> None:
    """The API accepted the request (202); its source version is deleted before ValidateRequest
    reads it: the execution fails InvalidRequest, the closer closes the API's record ERROR."""
    req = c.stack.request(f"fx-acc-{uid()}")
    bucket, key = req["source"][len("s3://"):].split("/", 1)
    version = c.stack.s3.head_object(Bucket=bucket, Key=key)["VersionId"]
    c.stack.inject("validate-request", {"delay": 3, "match": req["project"]})
    status, body, _ = c.stack.http("POST", f"{c.stack.env['AGENTBUILD_API_URL']}/projects/{req['project']}/builds", req)
    assert status == 202, body
    name = body["buildId"]
    c.names.append(name)
    with c.m.lock:
        c.m.accepted.add(name)
    c.stack.s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
    c.fault("source version deleted after the 202")
    d, rec = c.settle(name, body["executionArn"])
    assert (d["status"], d.get("error")) == ("FAILED", "InvalidRequest"), d
    assert (rec["status"], rec["error"]["type"]) == ("ERROR", "InvalidRequest"), rec
    c.no_build_running(name, expect=0)


# ---------------------------------------------------------------------------------------------
# Running the matrix, the tests, the summary
# ---------------------------------------------------------------------------------------------

def run_one(stack: Stack, m: Matrix, sid: str) -> None:
    c = Ctx(stack, m, sid)
    if sid in TIMEOUTS:
        c.names = [TIMEOUTS[sid]["name"]]
    t0 = time.monotonic()
    try:
        SCENARIOS[sid](c)
        m.errors[sid] = None
    except BaseException as e:  # noqa: BLE001 - re-raised by the scenario's test
        m.errors[sid] = e
    finally:
        m.seconds[sid] = round(time.monotonic() - t0, 1)
        try:
            c.count_injected()
        except Exception as e:  # noqa: BLE001
            m.errors[sid] = m.errors[sid] or e


@pytest.fixture(scope="module")
def matrix(stack):
    stack.reset()
    m = Matrix()
    t0 = time.monotonic()
    timeouts_start(stack, m)
    # The local stack runs one process per handler: invocations of a function queue behind each
    # other. A bounded number of scenarios at once keeps the closer's relay within its grace.
    order = [*TIMEOUTS, *(sid for sid in SCENARIOS if sid not in TIMEOUTS)]
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        list(pool.map(lambda sid: run_one(stack, m, sid), order))
    m.wall = time.monotonic() - t0
    yield m
    # Computed at the end of the module: records are re-read once more (late writers).
    text = json.dumps(m.summary(stack, m.wall), indent=2, default=str)
    print(f"\n--- fault matrix ---\n{text}")
    SUMMARY_FILE.parent.mkdir(exist_ok=True)
    SUMMARY_FILE.write_text(text + "\n")


@pytest.mark.parametrize("sid", list(SCENARIOS))
def test_fault(matrix, sid):
    err = matrix.errors[sid]
    if err is not None:
        raise err


def test_matrix_figures(matrix, stack):
    """Nothing lost, nothing orphaned, nothing rolled back — over every scenario at once."""
    s = matrix.summary(stack, 0)
    assert s["faultsInjected"] >= len(SCENARIOS)
    assert s["executionsPastValidation"] >= 1 and s["builds"] >= 1 and s["latestChecks"] >= 1
    assert s["recordsWithoutValidation"] == [], "a record for an execution that never passed validation"
    figures = ("recordsLost", "buildsOrphaned", "rollbacks", "recordsReplacedAfterFinal", "recordsClosedLate")
    details = {k: s[k] for k in ("lost", "orphaned", "rollbackDetails", "replaced")}
    assert {k: s[k] for k in figures} == dict.fromkeys(figures, 0), json.dumps(details, default=str, indent=1)
