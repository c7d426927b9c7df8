"""End-to-end: the fleet rebuild (statemachine/rebuild.asl.json) on the local stack — the real
definition in moto's engine (its Distributed Map, ItemReader over S3 and startExecution.sync:2),
the real `rebuild` handler, and every child a real execution of the real build machine.

One module-scoped fleet: 60 agents of one project, each with a successful latest build (one
built through the pipeline, the others seeded from its record: the fleet is under test here, not
the first build). Then:
one run with N = 4 (the stack's AGENTBUILD_REBUILD_MAX_CONCURRENCY) rebuilds all 60 — each a new
forced build with trigger `schedule` — never more than 4 build executions running at once
(sampled), one agent's build failing (a CodeBuild script) and reported; a second run started
during the first ends at once, SUCCEEDED and SKIPPED; the same run retried starts nothing twice.
The run's wall time and state transitions are written to $AGENTBUILD_LOCAL_DIR/fleet-rebuild.json.
"""
from __future__ import annotations

import json
import random
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from conftest import ROOT, STATE_DIR, Stack, uid

AGENTS = 60
N = 4
BROKEN = "agent-07"


class Fleet:
    def __init__(self, stack: Stack):
        self.stack = stack
        self.machine = stack.env["AGENTBUILD_FLEET_STATE_MACHINE_ARN"]
        self.project = f"fleet-{uid()}"
        self.agents = [f"agent-{i:02d}" for i in range(AGENTS)]
        self.seeded: dict[str, str] = {}  # agent -> its first build's id
        # A (past: a future one is refused) scheduled time no other session used: the run's
        # executions are sched-<run>-...
        at = datetime(2001, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=random.randrange(4_000_000))
        self.scheduled_time = at.strftime("%Y-%m-%dT%H:%M:00Z")
        self.run_name = at.strftime("%Y%m%dT%H%M")
        self.first: dict[str, Any] = {}
        self.replaced = ""  # agent-00's second upload

    def start(self, name: str, run_input: dict[str, Any]) -> str:
        arn = self.stack.sfn.start_execution(stateMachineArn=self.machine, name=name,
                                             input=json.dumps(run_input))["executionArn"]
        self.stack.started.add(arn)
        return arn

    def input(self) -> dict[str, Any]:
        return {"scheduledTime": self.scheduled_time, "projects": [self.project]}

    def run_executions(self) -> list[dict[str, Any]]:
        """Build executions of this run (any status)."""
        pages = self.stack.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.stack.machine)
        return [e for p in pages for e in p["executions"] if e["name"].startswith(f"sched-{self.run_name}-")]


def seed_like(stack: Stack, template: str, first: dict[str, Any], project: str, agent: str) -> str:
    """Agent `agent` of `project` with a successful latest build, written as record-result writes
    one (its record, the same bytes as its latest.json, its upload tagged kept) from `first`'s
    record, with this agent's own upload, names and ids. Returns its build id."""
    uri, sha = stack.upload_source(project, agent)
    key = uri.split("/", 3)[3]
    version = stack.s3.head_object(Bucket=stack.bucket, Key=key)["VersionId"]
    src = first["source"]
    # The first agent's name is in its keys, ids, tags and ARNs; its sha256 and version in its source.
    text = (template.replace(src["sha256"], sha).replace(src["versionId"], version)
            .replace(first["agent"], agent))
    rec = json.loads(text)
    assert (rec["project"], rec["agent"], rec["source"]["uri"]) == (project, agent, uri), rec
    assert rec["buildId"] == f"seed-{project}-{agent}" and agent in rec["image"]["tag"], rec
    body = text.encode()
    stack.s3.put_object(Bucket=stack.bucket, Key=f"builds/{rec['buildId']}.json", Body=body)
    stack.s3.put_object(Bucket=stack.bucket, Key=f"agents/{project}/{agent}/latest.json", Body=body)
    # What record-result does when it moves latest.json: the named source is held (kept).
    stack.s3.put_object_legal_hold(Bucket=stack.bucket, Key=key, LegalHold={"Status": "ON"})
    return rec["buildId"]


@pytest.fixture(scope="module")
def fleet(stack: Stack) -> Fleet:
    """60 agents, each with a successful latest build. What this module tests is the fleet run,
    not 60 first builds (test_pipeline builds): agent-00 is built through the pipeline, the other
    59 are seeded from its record (`seed_like`). Then agent-00 submits a new upload, built too."""
    stack.wait_idle()
    f = Fleet(stack)
    # Scripted builds end at real times (moto's own draw random phase durations, and
    # latest.json keeps the build of one submission that finished last).
    stack.script({"match": f"sources/{f.project}/", "status": "SUCCEEDED"})
    t0 = time.monotonic()
    first = f.agents[0]
    name = f"seed-{f.project}-{first}"
    assert stack.wait(stack.start(name, stack.request(f.project, first)), 120)["status"] == "SUCCEEDED"
    f.seeded[first] = name
    template = stack.get_bytes(f"builds/{name}.json").decode()
    for agent in f.agents[1:]:
        f.seeded[agent] = seed_like(stack, template, json.loads(template), f.project, agent)
    # agent-00 submits a new upload: its first one is no longer named by its latest.json.
    f.replaced, _ = stack.upload_source(f.project, f.agents[0], extra="v2")
    arn = stack.start(f"seed-{f.project}-v2", {"project": f.project, "agent": f.agents[0], "source": f.replaced})
    assert stack.wait(arn, 60)["status"] == "SUCCEEDED"
    f.seeded[f.agents[0]] = f"seed-{f.project}-v2"
    print(f"\nfleet: {AGENTS} agents (1 built, {AGENTS - 1} seeded) in {time.monotonic() - t0:.1f} s")
    return f


def sample_running(stack: Stack, stop: threading.Event, out: list[int]) -> None:
    """Every 0.1 s: how many executions of the build machine are RUNNING."""
    while not stop.is_set():
        out.append(len(stack.running()))
        time.sleep(0.1)


def test_one_run_rebuilds_the_whole_fleet_at_most_n_at_a_time(stack, fleet):
    # The first script that matches a build binds to it: the broken agent's first.
    stack.script({"match": f"sources/{fleet.project}/{BROKEN}/", "status": "FAILED", "failedPhase": "BUILD"})
    stack.script({"match": f"sources/{fleet.project}/", "status": "SUCCEEDED"})
    builds_before = stack.build_count()
    samples: list[int] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_running, args=(stack, stop, samples), daemon=True)
    sampler.start()
    t0 = time.monotonic()
    arn = fleet.start(f"run-{fleet.run_name}-{uid()}", fleet.input())
    try:
        # A second run while the first one runs (a person, another selection): it ends at once.
        deadline = time.monotonic() + 60
        while not fleet.run_executions():
            assert time.monotonic() < deadline, "the run started no build execution"
            time.sleep(0.1)
        second = fleet.start(f"second-{uid()}", {"projects": [fleet.project]})
        d2 = stack.wait(second, 30)
        assert d2["status"] == "SUCCEEDED", d2
        skipped = json.loads(d2["output"])
        assert skipped["status"] == "SKIPPED" and skipped["started"] == 0, skipped
        assert fleet.run_name in skipped["reason"]
        assert "RebuildAgents" not in [e["stateEnteredEventDetails"]["name"] for e in stack.history(second)
                                       if "stateEnteredEventDetails" in e]
        assert (d2["stopDate"] - d2["startDate"]).total_seconds() < 10

        d = stack.wait(arn, 600)
    finally:
        stop.set()
        sampler.join()
    wall = time.monotonic() - t0
    assert d["status"] == "SUCCEEDED", (d.get("error"), d.get("cause"))

    # Never more than N build executions at once — and the bound was reached.
    assert max(samples) <= N, max(samples)
    assert max(samples) == N, f"never {N} at once: {sorted(set(samples))}"

    summary = json.loads(d["output"])
    assert summary == stack.get_json(f"rebuilds/{fleet.run_name}.json"), "returned = stored"
    assert summary["run"] == fleet.run_name and summary["status"] == "COMPLETED"
    assert summary["started"] == AGENTS and summary["succeeded"] == AGENTS - 1, summary
    assert [(x["agent"], x["status"]) for x in summary["failed"]] == [(f"{fleet.project}/{BROKEN}", "FAILED")]
    assert "BUILD" in summary["failed"][0]["reason"]
    assert summary["skipped"] == []

    # Each agent: a new forced build with trigger schedule, its own execution; the failed one
    # keeps its old latest.json, every other one's points at its rebuild.
    executions = fleet.run_executions()
    assert len(executions) == AGENTS
    assert stack.build_count() - builds_before == AGENTS
    for agent in fleet.agents:
        latest = stack.get_json(f"agents/{fleet.project}/{agent}/latest.json")
        if agent == BROKEN:
            assert latest["buildId"] == fleet.seeded[agent]
            continue
        assert latest["buildId"].startswith(f"sched-{fleet.run_name}-"), agent
        assert latest["trigger"] == "schedule" and latest["force"] is True
        assert latest["status"] == "SUCCEEDED"
    broken = stack.record(summary["failed"][0]["buildId"])
    assert broken["status"] == "FAILED" and broken["trigger"] == "schedule"

    fleet.first = {"arn": arn, "wall": wall, "samples": samples, "summary": summary}
    report(stack, fleet, d, wall, samples)


def transitions(events: list[dict[str, Any]]) -> int:
    return sum(1 for e in events if e["type"].endswith("StateEntered"))


def report(stack: Stack, fleet: Fleet, d: dict[str, Any], wall: float, samples: list[int]) -> None:
    """The run's wall time and state transitions (parent, child workflows, build executions)."""
    parent = transitions(stack.history(d["executionArn"]))
    builds = [transitions(stack.history(e["executionArn"])) for e in fleet.run_executions()]
    figures = {
        "agents": AGENTS, "maxConcurrency": N, "wallSeconds": round(wall, 1),
        "engineSeconds": round((d["stopDate"] - d["startDate"]).total_seconds(), 1),
        "maxRunningSampled": max(samples),
        "transitions": {
            "fleetExecution": parent,
            # moto runs the Map's child workflows in process and keeps no history for them; each
            # enters Rebuild and Rebuilt (2), as on AWS.
            "childWorkflows": 2 * AGENTS,
            "buildExecutions": sum(builds),
            "perBuildExecution": round(sum(builds) / len(builds), 1),
        },
    }
    figures["transitions"]["total"] = parent + 2 * AGENTS + sum(builds)
    (STATE_DIR / "fleet-rebuild.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nfleet rebuild: {json.dumps(figures)}")


def test_a_retried_run_starts_nothing_twice(stack, fleet):
    assert fleet.first, "needs the first run"
    builds_before = stack.build_count()
    executions_before = {e["executionArn"] for e in fleet.run_executions()}
    # The same scheduled time again (a retried trigger) once the first run has ended: a new
    # execution of the fleet machine, the same run name, every child name already taken.
    arn = fleet.start(f"retry-{fleet.run_name}-{uid()}", fleet.input())
    d = stack.wait(arn, 300)
    assert d["status"] == "SUCCEEDED", (d.get("error"), d.get("cause"))
    summary = json.loads(d["output"])
    assert {e["executionArn"] for e in fleet.run_executions()} == executions_before
    assert stack.build_count() == builds_before, "no CodeBuild build started twice"
    # Each taken name was looked up (ExistingRebuild), and its outcome counts as before.
    existing = [c for c in stack.invocations("rebuild", '"existing"') if fleet.run_name in json.dumps(c["request"])]
    assert len(existing) == AGENTS
    first = fleet.first["summary"]
    assert (summary["started"], summary["succeeded"]) == (first["started"], first["succeeded"])
    assert [x["agent"] for x in summary["failed"]] == [x["agent"] for x in first["failed"]]


# ---------------------------------------------------------------------------------------------
# Sources a latest.json names never expire
# ---------------------------------------------------------------------------------------------

def template_rule(rule_id: str) -> tuple[dict[str, Any], int]:
    """The bucket's lifecycle rule `rule_id` from template.yaml, and its expiry in days (a
    parameter's default)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def cfn_tag(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            return {"Fn": suffix, "Value": loader.construct_scalar(node)}
        if isinstance(node, yaml.SequenceNode):
            return {"Fn": suffix, "Value": loader.construct_sequence(node)}
        return {"Fn": suffix, "Value": loader.construct_mapping(node)}

    Loader.add_multi_constructor("!", cfn_tag)
    t = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    rules = t["Resources"]["Bucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    rule = next(r for r in rules if r["Id"] == rule_id)
    days = rule["ExpirationInDays"]
    if isinstance(days, dict):  # !Ref <parameter>
        days = t["Parameters"][days["Value"]]["Default"]
    return rule, int(days)


def expires(rule: dict[str, Any], days: int, key: str, tags: dict[str, str], age_days: int) -> bool:
    """S3's reading of a rule with Prefix and TagFilters: the key starts with the prefix, the
    object has every tag, and it is at least `days` old."""
    return (rule["Status"] == "Enabled" and key.startswith(rule.get("Prefix", ""))
            and all(tags.get(f["Key"]) == f["Value"] for f in rule.get("TagFilters", []))
            and age_days >= days)


def test_sources_a_latest_json_names_are_spared_by_the_expiry_rule_at_any_age(stack, fleet):
    """moto runs no lifecycle: the template's rule expires every upload by age (no tag asked of
    uploaders), and what spares a source is the legal hold record-result placed on the version
    latest.json names (S3 deletes no held version, lifecycle included) — read back here."""
    assert fleet.first, "needs the first run"
    rule, days = template_rule("ExpireSources")
    assert "TagFilters" not in rule, rule
    for agent in fleet.agents:
        latest = stack.get_json(f"agents/{fleet.project}/{agent}/latest.json")
        key = latest["source"]["key"]
        # The version latest.json names (the one validated and built) is held.
        version = latest["source"]["versionId"]
        hold = stack.s3.get_object_legal_hold(Bucket=stack.bucket, Key=key, VersionId=version)
        assert hold["LegalHold"]["Status"] == "ON", (agent, hold)
        assert expires(rule, days, key, {}, days), "its current version still ages out"
    # agent-00 was rebuilt from its second upload; its first, replaced, is held no more.
    rebuilt = stack.get_json(f"agents/{fleet.project}/{fleet.agents[0]}/latest.json")
    assert rebuilt["buildId"].startswith(f"sched-{fleet.run_name}-")
    assert rebuilt["source"]["uri"] == fleet.replaced
    first_key = next(o["Key"] for o in stack.s3.list_objects_v2(
        Bucket=stack.bucket, Prefix=f"sources/{fleet.project}/{fleet.agents[0]}/")["Contents"]
        if f"s3://{stack.bucket}/{o['Key']}" != fleet.replaced)
    hold = stack.s3.get_object_legal_hold(Bucket=stack.bucket, Key=first_key)
    assert hold["LegalHold"]["Status"] == "OFF", hold
    assert expires(rule, days, first_key, {}, days) and not expires(rule, days, first_key, {}, days - 1)


# ---------------------------------------------------------------------------------------------
# Past the tolerated failures: the run stops, says so, and releases the lock
# ---------------------------------------------------------------------------------------------

def test_a_run_past_its_tolerated_failures_is_aborted_summarized_and_unlocked(stack):
    """1 of 3 rebuilds failing is 33 %, past the stack's 10 %: the Map fails with
    States.ExceedToleratedFailureThreshold, Summarize still writes the summary (ABORTED), the
    lock is released, and the run ends FAILED with RebuildAborted (the alarm's metric)."""
    stack.wait_idle()
    project = f"fleet-ab-{uid()}"
    stack.script({"match": f"sources/{project}/", "status": "SUCCEEDED"})
    arns = [stack.start(f"seed-{project}-{a}", stack.request(project, a)) for a in ("a", "b", "c")]
    assert all(stack.wait(a, 60)["status"] == "SUCCEEDED" for a in arns)
    stack.reset()
    stack.script({"match": f"sources/{project}/b/", "status": "FAILED", "failedPhase": "BUILD"})
    stack.script({"match": f"sources/{project}/", "status": "SUCCEEDED"})
    at = datetime(2001, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=random.randrange(4_000_000))
    run = at.strftime("%Y%m%dT%H%M")
    machine = stack.env["AGENTBUILD_FLEET_STATE_MACHINE_ARN"]
    arn = stack.sfn.start_execution(stateMachineArn=machine, name=f"abort-{uid()}", input=json.dumps(
        {"scheduledTime": at.strftime("%Y-%m-%dT%H:%M:00Z"), "projects": [project]}))["executionArn"]
    stack.started.add(arn)
    d = stack.wait(arn, 120)
    assert d["status"] == "FAILED" and d["error"] == "RebuildAborted", d
    summary = stack.get_json(f"rebuilds/{run}.json")
    assert summary["status"] == "ABORTED"
    assert summary["reason"].startswith("States.ExceedToleratedFailureThreshold"), summary
    assert [f["agent"] for f in summary["failed"]] == [f"{project}/b"]
    lock = stack.get_json("rebuilds/lock.json")
    assert lock["execution"] == arn and lock.get("releasedAt"), lock


def test_a_run_stopped_by_hand_does_not_keep_the_next_one_waiting(stack):
    """No state runs after StopExecution, so the lock is not released: the next run finds its
    holder ended and takes it over at once (not after the 6-day expiry)."""
    stack.wait_idle()
    project = f"fleet-stop-{uid()}"
    stack.script({"match": f"sources/{project}/", "status": "SUCCEEDED"})
    assert stack.wait(stack.start(f"seed-{project}-a", stack.request(project, "a")), 60)["status"] == "SUCCEEDED"
    stack.reset()
    stack.script({"match": f"sources/{project}/", "hold": True})
    machine = stack.env["AGENTBUILD_FLEET_STATE_MACHINE_ARN"]

    def start(name: str) -> str:
        arn = stack.sfn.start_execution(stateMachineArn=machine, name=name,
                                        input=json.dumps({"projects": [project]}))["executionArn"]
        stack.started.add(arn)
        return arn

    first = start(f"stopped-{uid()}")
    deadline = time.monotonic() + 60
    while not [e for e in stack.running() if e["name"].startswith("sched-")]:
        assert time.monotonic() < deadline, "the first run started no build"
        time.sleep(0.1)
    assert stack.get_json("rebuilds/lock.json")["execution"] == first
    stack.sfn.stop_execution(executionArn=first)
    assert stack.wait(first, 30)["status"] == "ABORTED"
    second = start(f"after-stop-{uid()}")
    deadline = time.monotonic() + 30
    while stack.get_json("rebuilds/lock.json")["execution"] != second:
        assert stack.sfn.describe_execution(executionArn=second)["status"] == "RUNNING", \
            "the second run ended without taking the lock"
        assert time.monotonic() < deadline, "the second run did not take the lock"
        time.sleep(0.1)
    # Drop the hold (and release what it holds): later builds are moto's own, over at once. The
    # second run's build may be the first run's (same minute, same name): either way it ends.
    stack.reset()
    d = stack.wait(second, 60)
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"])["status"] == "COMPLETED", d
    stack.wait_idle()


def test_an_agent_whose_recorded_source_version_is_gone_is_skipped_with_the_reason(stack):
    """A rebuild builds the version the latest build built. When that version is gone (deleted,
    or expired as non-current) while the key holds a newer upload, the plan skips the agent and
    says why in the summary: it is neither rebuilt from the newer bytes nor a failed item."""
    stack.wait_idle()
    project = f"fleet-gone-{uid()}"
    stack.script({"match": f"sources/{project}/", "status": "SUCCEEDED"})
    arns = [stack.start(f"seed-{project}-{a}", stack.request(project, a)) for a in ("a", "b")]
    assert all(stack.wait(a, 60)["status"] == "SUCCEEDED" for a in arns)
    src = stack.get_json(f"agents/{project}/b/latest.json")["source"]
    stack.s3.put_object(Bucket=stack.bucket, Key=src["key"], Body=b"never built")
    # The service holds the version latest names (a legal hold): an operator lifts it to delete it.
    stack.s3.put_object_legal_hold(Bucket=stack.bucket, Key=src["key"], VersionId=src["versionId"],
                                   LegalHold={"Status": "OFF"})
    stack.s3.delete_object(Bucket=stack.bucket, Key=src["key"], VersionId=src["versionId"])
    # A past scheduled time: a run may not claim a future one (domain::fleet_guard).
    at = datetime(2001, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=random.randrange(4_000_000))
    run = at.strftime("%Y%m%dT%H%M")
    machine = stack.env["AGENTBUILD_FLEET_STATE_MACHINE_ARN"]
    arn = stack.sfn.start_execution(stateMachineArn=machine, name=f"gone-{uid()}", input=json.dumps(
        {"scheduledTime": at.strftime("%Y-%m-%dT%H:%M:00Z"), "projects": [project]}))["executionArn"]
    stack.started.add(arn)
    d = stack.wait(arn, 120)
    assert d["status"] == "SUCCEEDED", d
    summary = stack.get_json(f"rebuilds/{run}.json")
    assert summary["failed"] == [], summary
    assert [s["agent"] for s in summary["skipped"]] == [f"{project}/b"], summary
    reason = summary["skipped"][0]["reason"]
    assert src["versionId"] in reason and "no longer exists" in reason, reason
    assert summary["started"] == 1, summary
