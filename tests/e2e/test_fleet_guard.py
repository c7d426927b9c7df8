"""The fleet run cannot be sabotaged by ordinary callers (issue 20 item 11, docs/fleet.md): a run
cannot claim a future scheduledTime; a child counts by what its record says it built, not by
its name; a cancelled child is reported `cancelled` and does not abort the run.

Fleet runs share one lock: these tests are `serial`. Run: bash scripts/e2e.sh -k fleet_guard
"""
from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from conftest import Stack, uid


def past_run() -> tuple[str, str]:
    """(scheduledTime, run name): a past minute no other session used."""
    at = datetime(2001, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=random.randrange(4_000_000))
    return at.strftime("%Y-%m-%dT%H:%M:00Z"), at.strftime("%Y%m%dT%H%M")


def child_name(run: str, project: str, agent: str) -> str:
    """domain::execution::schedule_execution_name."""
    h = hashlib.sha256()
    for f in ("agentbuild-schedule-v1", project, agent):
        h.update(len(f.encode()).to_bytes(8, "big"))
        h.update(f.encode())
    return f"sched-{run}-{h.hexdigest()[:16]}"


def start_run(stack: Stack, run_input: dict[str, Any]) -> str:
    machine = stack.env["AGENTBUILD_FLEET_STATE_MACHINE_ARN"]
    arn = stack.sfn.start_execution(stateMachineArn=machine, name=f"guard-{uid()}",
                                    input=json.dumps(run_input))["executionArn"]
    stack.started.add(arn)
    return arn


def seed(stack: Stack, project: str, agents: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Each agent with a successful latest build (scripted SUCCEEDED); their requests."""
    stack.script({"match": f"sources/{project}/", "status": "SUCCEEDED"})
    reqs = {a: stack.request(project, a) for a in agents}
    arns = [stack.start(f"seed-{project}-{a}", r) for a, r in reqs.items()]
    assert all(stack.wait(a, 60)["status"] == "SUCCEEDED" for a in arns)
    return reqs


@pytest.mark.serial
def test_a_run_claiming_a_future_scheduled_time_is_refused_and_takes_no_lock(stack):
    stack.wait_idle()
    later = (datetime.now(timezone.utc) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:00Z")
    arn = start_run(stack, {"scheduledTime": later, "projects": [f"none-{uid()}"]})
    d = stack.wait(arn, 60)
    assert (d["status"], d["error"]) == ("FAILED", "InvalidRequest"), d
    assert "scheduledTime" in d["cause"], d
    lock = stack.get_json("rebuilds/lock.json")
    assert lock is None or lock["execution"] != arn, lock


def test_a_child_whose_name_another_execution_took_is_not_counted_as_rebuilt(stack):
    stack.wait_idle()
    project = f"fleet-name-{uid()}"
    reqs = seed(stack, project, ("a", "b"))
    when, run = past_run()
    # A console execution takes agent a's predictable child name first: an unforced build
    # (REUSED: nothing built) that ends SUCCEEDED.
    taken = child_name(run, project, "a")
    d = stack.run(taken, reqs["a"], timeout=60)
    assert d["status"] == "SUCCEEDED" and stack.record(taken)["status"] == "REUSED", d
    arn = start_run(stack, {"scheduledTime": when, "projects": [project]})
    stack.wait(arn, 120)
    summary = stack.get_json(f"rebuilds/{run}.json")
    failed = {f["agent"]: f for f in summary["failed"]}
    assert failed[f"{project}/a"]["status"] == "NOT_REBUILT", summary
    assert "not a forced scheduled rebuild" in failed[f"{project}/a"]["reason"], summary
    assert summary["succeeded"] <= 1, summary  # b's at most: a is not rebuilt


def test_a_cancelled_child_is_reported_and_does_not_abort_the_run(stack):
    """1 of 3 children cancelled through the API (any caller may cancel a build): past the
    stack's 10 % tolerance were it a failure; the run completes and says `cancelled`."""
    stack.wait_idle()
    project = f"fleet-cx-{uid()}"
    seed(stack, project, ("a", "b", "c"))
    stack.reset()
    stack.script({"match": f"sources/{project}/b/", "hold": True})
    stack.script({"match": f"sources/{project}/", "status": "SUCCEEDED"})
    when, run = past_run()
    arn = start_run(stack, {"scheduledTime": when, "projects": [project]})
    child = child_name(run, project, "b")
    stack.wait_started(child, timeout=60)
    api = stack.env.get("AGENTBUILD_API_URL")
    assert api, "the stack has no API (AGENTBUILD_API_URL)"
    status, body, _ = stack.http("DELETE", f"{api}{stack.build_path(child)}")
    assert status == 202, body
    d = stack.wait(arn, 120)
    assert d["status"] == "SUCCEEDED", d
    summary = stack.get_json(f"rebuilds/{run}.json")
    assert summary["status"] == "COMPLETED", summary
    assert (summary["started"], summary["succeeded"], summary["failed"]) == (3, 2, []), summary
    assert [(c["agent"], c["buildId"]) for c in summary["cancelled"]] == [(f"{project}/b", child)]
    assert "Cancelled" in summary["cancelled"][0]["reason"], summary
    assert stack.record(child)["status"] == "STOPPED"
    lock = stack.get_json("rebuilds/lock.json")
    assert lock["execution"] == arn and lock.get("releasedAt"), lock
